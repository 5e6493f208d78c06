/* shuffle.c - grouped convolutions that never exchange information, and
 * the channel shuffle that makes them.
 *
 * Needs: the forward graph from the front end, with shapes (before
 * autodiff).  Provides: shuffle_groups.  For every grouped conv B (groups
 * > 1, more than one input channel per group) it walks back from B's input
 * through layers that keep each channel to itself (element-wise
 * activations, batch norm, dropout, pooling, pad, upsample, depthwise
 * convs) to the nearest grouped conv A.  When every group of B reads
 * channels of one single group of A, no information crosses A's groups
 * (ShuffleNet's observation).  Then, by B's shuffle mode (the innermost
 * block's `shuffle=` option, else the network's):
 *   warn (default)  a warning at B, with a note at A and the fix;
 *   auto            a channel_shuffle(groups of A) is inserted before B;
 *   off             nothing.
 * Stops at anything that mixes or rearranges channels (a dense or plain
 * conv, concat, slice, add, lrn, an existing channel_shuffle ...), so a
 * network that shuffles already is left alone.
 *
 *   network n(shuffle=auto)
 *   x -> a: conv(12, kernel=1, groups=3) -> relu -> b: conv(12, kernel=1, groups=3)
 *
 *   before:  %3 = conv(%0, %1, %2) "a" [N, 12, 8, 8]
 *            %4 = relu(%3) "relu1" [N, 12, 8, 8]
 *            %7 = conv(%4, %5, %6) "b" [N, 12, 8, 8]
 *   after:   %4 = relu(%3) "relu1" [N, 12, 8, 8]
 *            %5 = channel_shuffle(%4) "b.shuffle" [N, 12, 8, 8] groups=3
 *            %8 = conv(%5, %6, %7) "b" [N, 12, 8, 8]
 *
 * Invalidates: node ids (the graph is renumbered when a shuffle is
 * inserted, as at the end of the front end; Model.train.loss_node
 * follows).
 */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "netc.h"

/* A walk back through at most this many layers; a longer chain of
 * channel-wise layers between two grouped convs is not looked at. */
#define WALK_LIMIT 256

static bool real_groups(const Graph *g, const Node *n)
{
    if (n->op != OP_CONV || n->p.conv.groups <= 1)
        return false;
    int cin = graph_node(g, n->in[0])->shape.d[0];
    return cin / n->p.conv.groups > 1; /* depthwise keeps channels apart by design */
}

static bool depthwise(const Graph *g, const Node *n)
{
    return n->op == OP_CONV && n->p.conv.groups > 1 && !real_groups(g, n);
}

/* Does n pass each channel through on its own (output channel c reads
 * input channel c of in[0])? */
static bool channelwise(const Node *n)
{
    switch (n->op) {
    case OP_BATCHNORM: case OP_DROPOUT: case OP_DROPOUT2D: case OP_PRELU:
    case OP_MAXPOOL: case OP_AVGPOOL: case OP_GLOBAL_AVGPOOL: case OP_GLOBAL_MAXPOOL:
    case OP_ADAPTIVE_AVGPOOL: case OP_PAD: case OP_UPSAMPLE:
        return true;
    default:
        return (op_flags(n->op) & OPF_ELEMENTWISE) && n->nin == 1;
    }
}

/* The grouped conv A that B's input channels come from one to one (map:
 * B's input channel -> A's output channel), or NULL. */
static const Node *source_groups(const Graph *g, const Node *b, int *map, int nc)
{
    for (int c = 0; c < nc; c++)
        map[c] = c;
    const Node *v = graph_node(g, b->in[0]);
    for (int step = 0; step < WALK_LIMIT; step++) {
        if (real_groups(g, v))
            return v;
        if (depthwise(g, v)) { /* output channel c reads input channel c / multiplier */
            int mult = v->shape.d[0] / graph_node(g, v->in[0])->shape.d[0];
            for (int c = 0; c < nc; c++)
                map[c] /= mult;
        } else if (!channelwise(v)) {
            return NULL;
        }
        v = graph_node(g, v->in[0]);
    }
    return NULL;
}

/* Does every group of b read channels of one group of a only? */
static bool groups_isolated(const Node *a, const Node *b, const int *map, int nc)
{
    int per_b = nc / b->p.conv.groups, per_a = a->shape.d[0] / a->p.conv.groups;
    for (int c = 0; c < nc; c++)
        if (map[c] / per_a != map[c - c % per_b] / per_a)
            return false;
    return true;
}

/* Puts the nodes back in topological order after appended nodes were
 * made inputs of earlier ones: each node comes right after the last of
 * its inputs' subtrees, original order otherwise.  Renumbers every id the
 * model holds at this stage. */
static void renumber(Model *m)
{
    Graph *g = m->g;
    int n = g->nnode;
    int *new_id = netc_alloc(sizeof(int) * (size_t)n);
    int *stack = netc_alloc(sizeof(int) * (size_t)n * 2);
    Node **order = netc_alloc(sizeof(Node *) * (size_t)n);
    int norder = 0;
    for (int i = 0; i < n; i++)
        new_id[i] = -1;
    for (int root = 0; root < n; root++) {
        if (new_id[root] >= 0)
            continue;
        /* iterative depth-first post-order: (node, next input) pairs */
        int sp = 0;
        stack[sp++] = root;
        stack[sp++] = 0;
        new_id[root] = -2; /* open */
        while (sp) {
            int v = stack[sp - 2], k = stack[sp - 1];
            const Node *nv = g->node[v];
            if (k < nv->nin) {
                stack[sp - 1] = k + 1;
                int u = nv->in[k];
                if (new_id[u] == -1) {
                    new_id[u] = -2;
                    stack[sp++] = u;
                    stack[sp++] = 0;
                }
                continue;
            }
            sp -= 2;
            new_id[v] = norder;
            order[norder++] = g->node[v];
        }
    }
    NETC_ASSERT(norder == n);
    for (int i = 0; i < n; i++) {
        Node *v = order[i];
        v->id = i;
        for (int j = 0; j < v->nin; j++)
            v->in[j] = new_id[v->in[j]];
        if (v->op == OP_PARAM && v->p.param.owner >= 0)
            v->p.param.owner = new_id[v->p.param.owner];
        if (v->epi.add >= 0)
            v->epi.add = new_id[v->epi.add];
        if (v->epi.act >= 0)
            v->epi.act = new_id[v->epi.act];
        if (v->fused_into >= 0)
            v->fused_into = new_id[v->fused_into];
        g->node[i] = v;
    }
    for (int i = 0; i < g->noutput; i++)
        g->outputs[i] = new_id[g->outputs[i]];
    if (g->loss >= 0)
        g->loss = new_id[g->loss];
    if (g->target >= 0)
        g->target = new_id[g->target];
    if (m->train.loss_node >= 0)
        m->train.loss_node = new_id[m->train.loss_node];
    NETC_ASSERT(!m->grad_of && !m->next_of);
    free(new_id);
    free(stack);
    free(order);
}

static int insert_shuffle(Model *m, Node *b, int groups, StrMap *names, Diag *d)
{
    Graph *g = m->g;
    if (!names->n) /* the node names, once */
        for (int i = 0; i < g->nnode; i++)
            strmap_put(g->arena, names, g->node[i]->name, i);
    const char *name = arena_printf(g->arena, "%s.shuffle", b->name);
    for (int k = 2; strmap_get(names, name) >= 0; k++)
        name = arena_printf(g->arena, "%s.shuffle%d", b->name, k);
    int x = b->in[0];
    Node *s = graph_add(g, OP_CHANNEL_SHUFFLE, name, b->loc, 1, &x);
    s->p.perm.factor = groups;
    if (!shape_infer(g, s, d))
        return 0;
    strmap_put(g->arena, names, s->name, s->id);
    b->in[0] = s->id;
    return 1;
}

/* A block instantiated many times has the same two convs in each
 * instance: one warning per pair of source locations. */
typedef struct {
    SrcLoc *at;
    int n, cap;
} Said;

static bool same_loc(SrcLoc x, SrcLoc y)
{
    return x.line == y.line && x.col == y.col && x.file == y.file;
}

static bool said_before(Said *s, const Node *b, const Node *a)
{
    for (int i = 0; i < s->n; i += 2)
        if (same_loc(s->at[i], b->loc) && same_loc(s->at[i + 1], a->loc))
            return true;
    if (s->n + 2 > s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->at = netc_realloc(s->at, sizeof *s->at * (size_t)s->cap);
    }
    s->at[s->n++] = b->loc;
    s->at[s->n++] = a->loc;
    return false;
}

int shuffle_groups(Model *m, Diag *d)
{
    Said said = {0};
    Graph *g = m->g;
    int inserted = 0, nn = g->nnode;
    StrMap names = {0};
    for (int i = 0; i < nn; i++) {
        Node *b = g->node[i];
        if (!real_groups(g, b) || b->p.conv.shuffle == SHUFFLE_OFF)
            continue;
        int nc = graph_node(g, b->in[0])->shape.d[0];
        int *map = netc_alloc(sizeof(int) * (size_t)nc);
        const Node *a = source_groups(g, b, map, nc);
        if (a && groups_isolated(a, b, map, nc)) {
            int ga = a->p.conv.groups;
            if (b->p.conv.shuffle == SHUFFLE_AUTO) {
                inserted += insert_shuffle(m, b, ga, &names, d);
            } else if (!said_before(&said, b, a)) {
                diag_warning(d, b->loc, (int)strlen(op_name(b->op)),
                             "conv '%s' (groups=%d) reads each of its groups from a single group of "
                             "conv '%s' (groups=%d): no information crosses the groups",
                             b->name, b->p.conv.groups, a->name, ga);
                diag_note(d, a->loc, (int)strlen(op_name(a->op)), "'%s' is here", a->name);
                diag_hint(d, "insert channel_shuffle(%d) before '%s', or write `network %s(shuffle=auto)` "
                          "(or `(shuffle=auto)` after a block's parameters) to have netc insert it; "
                          "shuffle=off silences this", ga, b->name, m->name);
            }
        }
        free(map);
    }
    free(said.at);
    if (inserted)
        renumber(m);
    return inserted;
}
