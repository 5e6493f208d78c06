/* graph_dot.c - the graph as Graphviz DOT (`netc graph`).
 *
 * Needs: a verified graph and, optionally, its schedule.  Provides:
 * graph_dot.  One box per value (parameters are folded into the layer that
 * reads them, listed under its shape), an edge per input; each box says
 * the layer's name, op, output shape and, with a schedule, the algorithm
 * chosen for it and any second one for a range of batches ("winograd2
 * below batch 3"; the backward nodes only on request).  An activation fused into the layer before it (fuse.c) is
 * drawn inside that layer's box, whose fill colour marks the fused group;
 * backward nodes (autodiff's) are drawn grey and dashed.  Example, LeNet's
 * first layer after the passes:
 *
 *   n3 [label="c1\nconv + relu\n[N, 6, 28, 28]\nw [6, 1, 5, 5]\nim2col",
 *       fillcolor="#cfe8ff"];
 *   n0 -> n3;
 *
 * The output is plain DOT; `dot -Tsvg` (Debian's graphviz) draws it.
 */
#include <stdio.h>

#include "netc.h"

/* A fused group's fill: a small palette, cycled. */
static const char *const group_fill[] = {"#cfe8ff", "#d9f2d0", "#ffe3c2", "#ecd9f7", "#fff3b0",
                                         "#f9d0d9"};

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void put_shape(FILE *f, const Shape *s)
{
    fputc('[', f);
    if (s->batched)
        fputs(s->rank ? "N, " : "N", f);
    for (int i = 0; i < s->rank; i++)
        fprintf(f, "%s%d", i ? ", " : "", s->d[i]);
    fputc(']', f);
}

/* The forward part: nodes before the first one autodiff added. */
static int first_backward(const Model *m)
{
    const Graph *g = m->g;
    if (!m->grad_of || m->ngrad_of <= 0 || g->loss < 0)
        return m->grad_seed >= 0 ? m->grad_seed : g->nnode;
    return g->loss + 1;
}

void graph_dot(FILE *f, const Model *m, const Sched *s, bool backward)
{
    const Graph *g = m->g;
    int back = first_backward(m), groups = 0;
    fprintf(f, "digraph \"%s\" {\n", m->name);
    fputs("  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, "
          "fontname=\"Helvetica\", fontsize=10];\n  edge [color=\"#555555\"];\n", f);
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (n->op == OP_PARAM || n->fused_into >= 0 || n->folded_into >= 0 || (i >= back && !backward))
            continue;
        fprintf(f, "  n%d [label=\"", i);
        put_escaped(f, n->name);
        fprintf(f, "\\n%s", op_name(n->op));
        if (n->epi.add >= 0)
            fputs(" + add", f);
        if (n->epi.act >= 0)
            fprintf(f, " + %s", op_name(g->node[n->epi.act]->op));
        if (n->shuf_out || n->shuf_in)
            fprintf(f, " + channel_shuffle(%d)", n->shuf_out ? n->shuf_out : n->shuf_in);
        if (n->bn_fold >= 0) /* graph/fold_bn.c */
            fprintf(f, "\\ninference: + batchnorm%s%s", n->bn_epi >= 0 ? " + " : "",
                    n->bn_epi >= 0 ? op_name(g->node[n->bn_epi]->op) : "");
        fputs("\\n", f);
        put_shape(f, &n->shape);
        for (int j = 0; j < n->nin; j++) {
            const Node *in = g->node[n->in[j]];
            if (in->op != OP_PARAM)
                continue;
            fputs("\\n", f);
            put_escaped(f, in->name);
            fputc(' ', f);
            put_shape(f, &in->shape);
        }
        if (s && s[i].algo != ALGO_NONE && s[i].algo != ALGO_GEMM && s[i].algo != ALGO_DIRECT)
            fprintf(f, "\\n%s", algo_name(s[i].algo));
        else if (s && s[i].algo == ALGO_DIRECT && (n->op == OP_CONV || n->op == OP_CONV_DX ||
                                                   n->op == OP_CONV_DW))
            fputs("\\ndirect", f);
        if (s && s[i].alt != ALGO_NONE) /* the algorithm by batch (sched.c) */
            fprintf(f, "\\n%s %s batch %d", algo_name(s[i].alt), s[i].alt_hi ? "below" : "from",
                    s[i].alt_hi ? s[i].alt_hi : s[i].alt_lo);
        fputc('"', f);
        if (n->epi.add >= 0 || n->epi.act >= 0)
            fprintf(f, ", fillcolor=\"%s\"", group_fill[groups++ % (sizeof group_fill / sizeof *group_fill)]);
        if (i >= back)
            fputs(", style=\"rounded,dashed\", color=\"#999999\", fontcolor=\"#666666\"", f);
        else if (n->op == OP_INPUT)
            fputs(", shape=ellipse", f);
        fputs("];\n", f);
        for (int j = 0; j < n->nin; j++) {
            int from = n->in[j];
            if (g->node[from]->op == OP_PARAM)
                continue;
            fprintf(f, "  n%d -> n%d%s;\n", from, i, i >= back ? " [style=dashed, color=\"#999999\"]" : "");
        }
    }
    for (int i = 0; i < g->noutput; i++)
        fprintf(f, "  out%d [label=\"output\", shape=plaintext, style=\"\"];\n  n%d -> out%d;\n", i,
                g->outputs[i], i);
    fputs("}\n", f);
}
