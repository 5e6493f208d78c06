/* ir.c - the graph IR: op tables, shapes, node storage, printer, verifier. */
#include "ir.h"

#include <string.h>

#include "diag.h"

static const struct {
    const char *name;
    int arity;
    unsigned flags;
} op_info[] = {
#define OP(e, name, arity, flags) {name, arity, flags},
#include "ops.def"
#undef OP
};
_Static_assert(sizeof op_info / sizeof op_info[0] == OP_COUNT, "op_info out of sync with ops.def");

const char *op_name(Op op)
{
    NETC_ASSERT(op >= 0 && op < OP_COUNT);
    return op_info[op].name;
}

int op_arity(Op op)
{
    NETC_ASSERT(op >= 0 && op < OP_COUNT);
    return op_info[op].arity;
}

unsigned op_flags(Op op)
{
    NETC_ASSERT(op >= 0 && op < OP_COUNT);
    return op_info[op].flags;
}

Op op_lookup(const char *name)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(op_info[i].name, name) == 0)
            return (Op)i;
    return OP_COUNT;
}

static const char *const init_names[] = {
    "default", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "uniform", "normal", "zero",
    "one",
};
_Static_assert(sizeof init_names / sizeof init_names[0] == INIT_COUNT, "init_names out of sync");

const char *init_name(InitKind k)
{
    NETC_ASSERT(k >= 0 && k < INIT_COUNT);
    return init_names[k];
}

/* ---- shapes ---- */

long shape_numel(const Shape *s)
{
    long n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->d[i];
    return n;
}

bool shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank || a->batched != b->batched)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i])
            return false;
    return true;
}

void shape_print(FILE *f, const Shape *s)
{
    fputc('[', f);
    const char *sep = "";
    if (s->batched) {
        fputs("N", f);
        sep = ", ";
    }
    for (int i = 0; i < s->rank; i++) {
        fprintf(f, "%s%d", sep, s->d[i]);
        sep = ", ";
    }
    fputc(']', f);
}

/* ---- graph storage ---- */

Graph *graph_new(Arena *a)
{
    Graph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->loss = -1;
    g->target = -1;
    return g;
}

int node_own_nin(const Node *n)
{
    return n->nin - n->epi.nin;
}

Node *graph_add(Graph *g, Op op, const char *name, SrcLoc loc, int nin, const int *in)
{
    if (g->nnode == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        Node **nn = arena_alloc(g->arena, sizeof(Node *) * (size_t)cap);
        if (g->nnode)
            memcpy(nn, g->node, sizeof(Node *) * (size_t)g->nnode);
        g->node = nn;
        g->cap = cap;
    }
    Node *n = arena_alloc(g->arena, sizeof *n);
    n->id = g->nnode;
    n->op = op;
    n->name = arena_strdup(g->arena, name);
    n->loc = loc;
    n->nin = nin;
    n->epi = (Epilogue){-1, -1, 0};
    n->fused_into = -1;
    n->shuf_out = n->shuf_in = 0;
    n->folded_into = -1;
    n->bn_fold = n->bn_epi = n->bn_into = -1;
    n->in = arena_alloc(g->arena, sizeof(int) * (size_t)(nin ? nin : 1));
    for (int i = 0; i < nin; i++) {
        NETC_ASSERT(in[i] >= 0 && in[i] < g->nnode);
        n->in[i] = in[i];
    }
    g->node[g->nnode++] = n;
    return n;
}

Node *graph_node(const Graph *g, int id)
{
    NETC_ASSERT(id >= 0 && id < g->nnode);
    return g->node[id];
}

int graph_find(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nnode; i++)
        if (strcmp(g->node[i]->name, name) == 0)
            return i;
    return -1;
}

/* ---- printer ---- */

static void print_ints(FILE *f, const char *key, const int *v, int n)
{
    fprintf(f, " %s=", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? "x" : "", v[i]);
}

static void print_pads(FILE *f, const int *lo, const int *hi, int n)
{
    fputs(" pad=", f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d+%d", i ? "x" : "", lo[i], hi[i]);
}

static void print_floats(FILE *f, const char *key, const float *v, int n)
{
    fprintf(f, " %s=[", key);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%g", i ? ", " : "", (double)v[i]);
    fputc(']', f);
}

/* Only what differs from the defaults, so plain losses print as before. */
static void print_loss(FILE *f, const LossParam *l, bool smooth_l1)
{
    if (l->reduction == RED_SUM)
        fputs(" reduction=sum", f);
    if (l->weight)
        print_floats(f, "weight", l->weight, l->nweight);
    if (l->pos_weight)
        print_floats(f, "pos_weight", l->pos_weight, l->npos_weight);
    if (l->has_ignore)
        fprintf(f, " ignore_index=%d", l->ignore_index);
    if (l->label_smoothing != 0)
        fprintf(f, " label_smoothing=%g", (double)l->label_smoothing);
    if (smooth_l1)
        fprintf(f, " beta=%g", (double)l->beta);
}

/* ---- pooling and data movement ---- */

static void print_axis(FILE *f, int axis)
{
    if (axis)
        fprintf(f, " axis=%d", axis);
}

/* dilation and ceil_mode, when not the defaults */
static void print_pool_extras(FILE *f, const PoolParam *p)
{
    bool dilated = false;
    for (int i = 0; i < p->nsp; i++)
        dilated |= pool_dilation(p, i) != 1;
    if (dilated) {
        fputs(" dilation=", f);
        for (int i = 0; i < p->nsp; i++)
            fprintf(f, "%s%d", i ? "x" : "", pool_dilation(p, i));
    }
    if (p->ceil_mode)
        fputs(" ceil_mode", f);
}

static void print_move_params(FILE *f, const Node *n)
{
    static const char *const pad_modes[] = {"constant", "reflect", "replicate"};
    static const char *const up_modes[] = {"nearest", "linear", "bilinear", "trilinear"};
    switch (n->op) {
    case OP_CONCAT:
        print_axis(f, n->p.concat.axis);
        break;
    case OP_SLICE_DX:
        fprintf(f, " begin=%d", n->p.slice.begin);
        print_axis(f, n->p.slice.axis);
        break;
    case OP_ADAPTIVE_AVGPOOL:
    case OP_ADAPTIVE_AVGPOOL_DX:
        print_ints(f, "size", n->p.pool.size, n->p.pool.nsp);
        break;
    case OP_PAD:
    case OP_PAD_DX:
        print_pads(f, n->p.pad.lo, n->p.pad.hi, n->p.pad.nsp);
        fprintf(f, " mode=%s", pad_modes[n->p.pad.mode]);
        if (n->p.pad.mode == PAD_CONSTANT)
            fprintf(f, " value=%g", (double)n->p.pad.value);
        break;
    case OP_UPSAMPLE:
    case OP_UPSAMPLE_DX:
        fprintf(f, " mode=%s%s", up_modes[n->p.up.linear],
                n->p.up.align_corners ? " align_corners" : "");
        if (n->p.up.by_size)
            print_ints(f, "size", n->p.up.size, n->p.up.nsp);
        else
            print_ints(f, "scale", n->p.up.scale, n->p.up.nsp);
        break;
    case OP_PIXEL_SHUFFLE:
    case OP_PIXEL_UNSHUFFLE:
    case OP_DEPTH_TO_SPACE:
    case OP_SPACE_TO_DEPTH:
    case OP_CHANNEL_SHUFFLE:
    case OP_PERMUTE:
        if (n->op != OP_PERMUTE)
            fprintf(f, " %s=%d", n->op == OP_CHANNEL_SHUFFLE ? "groups" : "r", n->p.perm.factor);
        print_ints(f, "view", n->p.perm.dims, n->p.perm.rank);
        print_ints(f, "perm", n->p.perm.perm, n->p.perm.rank);
        break;
    default:
        break;
    }
}

static void print_params(FILE *f, const Node *n)
{
    switch (n->op) {
    case OP_CONV:
    case OP_CONV_DX:
    case OP_CONV_DW: {
        const ConvParam *c = &n->p.conv;
        fprintf(f, " out=%d", c->out_channels);
        print_ints(f, "kernel", c->kernel, c->nsp);
        print_ints(f, "stride", c->stride, c->nsp);
        print_ints(f, "dilation", c->dilation, c->nsp);
        print_pads(f, c->pad_lo, c->pad_hi, c->nsp);
        fprintf(f, " groups=%d%s", c->groups, c->bias ? " bias" : "");
        break;
    }
    case OP_CONV_TRANSPOSE: { /* as written: out is the output's channels */
        const ConvParam *c = &n->p.conv;
        fprintf(f, " out=%d", n->shape.d[0]);
        print_ints(f, "kernel", c->kernel, c->nsp);
        print_ints(f, "stride", c->stride, c->nsp);
        print_ints(f, "dilation", c->dilation, c->nsp);
        print_pads(f, c->pad_lo, c->pad_hi, c->nsp);
        print_ints(f, "output_padding", c->out_pad, c->nsp);
        fprintf(f, " groups=%d%s", c->groups, c->bias ? " bias" : "");
        break;
    }
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_MAXPOOL_DX:
    case OP_AVGPOOL_DX: {
        const PoolParam *p = &n->p.pool;
        print_ints(f, "kernel", p->kernel, p->nsp);
        print_ints(f, "stride", p->stride, p->nsp);
        print_pads(f, p->pad_lo, p->pad_hi, p->nsp);
        if ((n->op == OP_AVGPOOL || n->op == OP_AVGPOOL_DX) && !p->count_include_pad)
            fputs(" exclude_pad", f);
        print_pool_extras(f, p);
        break;
    }
    case OP_DENSE:
        fprintf(f, " units=%d%s", n->p.dense.units, n->p.dense.bias ? " bias" : "");
        break;
    case OP_PARAM:
        fprintf(f, " init=%s fan_in=%d fan_out=%d", init_name(n->p.param.init), n->p.param.fan_in,
                n->p.param.fan_out);
        if (n->p.param.init == INIT_UNIFORM || n->p.param.init == INIT_NORMAL)
            fprintf(f, "(%g, %g)", (double)n->p.param.init_a, (double)n->p.param.init_b);
        if (n->p.param.state)
            fputs(" state", f);
        break;
    case OP_SLICE:
        fprintf(f, " begin=%d", n->p.slice.begin);
        print_axis(f, n->p.slice.axis);
        break;
    case OP_SOFTMAX_XENT:
    case OP_MSE:
    case OP_NLL:
    case OP_BCE_LOGITS:
    case OP_L1:
    case OP_SMOOTH_L1:
    case OP_SOFTMAX_XENT_DX:
    case OP_MSE_DX:
    case OP_NLL_DX:
    case OP_BCE_LOGITS_DX:
    case OP_L1_DX:
    case OP_SMOOTH_L1_DX:
        print_loss(f, &n->p.loss, n->op == OP_SMOOTH_L1 || n->op == OP_SMOOTH_L1_DX);
        break;
    /* activations and element-wise arithmetic */
    case OP_LEAKY_RELU: fprintf(f, " slope=%g", (double)n->p.act.a); break;
    case OP_ELU: fprintf(f, " alpha=%g", (double)n->p.act.a); break;
    case OP_SOFTPLUS:
        fprintf(f, " beta=%g threshold=%g", (double)n->p.act.a, (double)n->p.act.b);
        break;
    case OP_CLIP: fprintf(f, " min=%g max=%g", (double)n->p.act.a, (double)n->p.act.b); break;
    case OP_PRELU:
    case OP_PRELU_DX:
    case OP_PRELU_DW:
        if (n->p.act.per_channel)
            fputs(" per_channel", f);
        break;
    case OP_SOFTMAX:
    case OP_SOFTMAX_DX:
    case OP_LOG_SOFTMAX:
    case OP_LOG_SOFTMAX_DX:
        if (n->p.act.axis) /* the channels (0) go without saying */
            fprintf(f, " axis=%d", n->p.act.axis);
        break;
    case OP_ACT_DX: fprintf(f, " of=%s", op_name(n->p.act.fwd)); break;
    case OP_BCAST_DX: fprintf(f, " scale=%g", (double)n->p.act.a); break;
    /* normalisation and regularisation */
    case OP_BATCHNORM:
    case OP_BATCHNORM_DX:
    case OP_BATCHNORM_DW:
    case OP_RUNNING_STAT: {
        const NormParam *q = &n->p.norm;
        fprintf(f, " eps=%g momentum=%g%s%s", (double)q->eps, (double)q->momentum,
                q->affine ? " affine" : "", q->track ? " track" : "");
        if (n->op == OP_RUNNING_STAT)
            fputs(q->stat ? " var" : " mean", f);
        break;
    }
    case OP_LRN:
    case OP_LRN_DX:
        fprintf(f, " size=%d alpha=%g beta=%g k=%g", n->p.lrn.size, (double)n->p.lrn.alpha,
                (double)n->p.lrn.beta, (double)n->p.lrn.k);
        break;
    case OP_DROPOUT:
    case OP_DROPOUT2D:
    case OP_DROPOUT_DX:
        fprintf(f, " p=%g%s key=%u", (double)n->p.drop.p, n->p.drop.channels ? " channels" : "",
                n->p.drop.key);
        break;
    default:
        print_move_params(f, n);
        break;
    }
}

void graph_print(FILE *f, const Graph *g)
{
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        fprintf(f, "%%%d = %s(", n->id, op_name(n->op));
        for (int j = 0; j < n->nin; j++)
            fprintf(f, "%s%%%d", j ? ", " : "", n->in[j]);
        fprintf(f, ") \"%s\" ", n->name);
        shape_print(f, &n->shape);
        print_params(f, n);
        if (n->epi.add >= 0 || n->epi.act >= 0)
            fputs(" epilogue", f);
        if (n->epi.add >= 0)
            fprintf(f, " add %%%d", n->epi.add);
        if (n->epi.act >= 0)
            fprintf(f, " %s %%%d", op_name(g->node[n->epi.act]->op), n->epi.act);
        if (n->fused_into >= 0)
            fprintf(f, " fused into %%%d", n->fused_into);
        if (n->shuf_out)
            fprintf(f, " then channel_shuffle(%d)", n->shuf_out);
        if (n->shuf_in)
            fprintf(f, " through channel_shuffle(%d)", n->shuf_in);
        if (n->folded_into >= 0)
            fprintf(f, " folded into %%%d", n->folded_into);
        if (n->bn_fold >= 0)
            fprintf(f, " inference: folds batchnorm %%%d", n->bn_fold);
        if (n->bn_epi >= 0)
            fprintf(f, ", then %s %%%d", op_name(g->node[n->bn_epi]->op), n->bn_epi);
        if (n->bn_into >= 0)
            fprintf(f, " inference: in %%%d", n->bn_into);
        if (n->loc.file)
            fprintf(f, " @%d:%d", n->loc.line, n->loc.col);
        fputc('\n', f);
    }
    if (g->noutput) {
        fputs("outputs", f);
        for (int i = 0; i < g->noutput; i++)
            fprintf(f, " %%%d", g->outputs[i]);
        fputc('\n', f);
    }
    if (g->loss >= 0)
        fprintf(f, "loss %%%d target %%%d\n", g->loss, g->target);
}

/* ---- verifier ---- */

/* Shuffle folding: a folded shuffle has no readers and names the node
 * that took its groups; a concat or slice carries them only along
 * channels, in whole groups. */
static bool verify_folds(const Graph *g, const Node *n, FILE *err)
{
    int i = n->id;
    for (int j = 0; j < n->nin; j++)
        if (g->node[n->in[j]]->folded_into >= 0) {
            fprintf(err, "verify: %%%d %s reads %%%d, a shuffle folded away\n", i, op_name(n->op),
                    n->in[j]);
            return false;
        }
    bool stores_shuffled = (n->op == OP_CONCAT && n->p.concat.axis == 0) || n->op == OP_RELU ||
                           n->op == OP_TANH || n->op == OP_SIGMOID || n->op == OP_RELU_DX ||
                           n->op == OP_TANH_DX || n->op == OP_SIGMOID_DX;
    if (n->shuf_out && (!stores_shuffled || n->shuf_out < 1 || !n->shape.batched || n->shape.rank < 1 ||
                        n->shape.d[0] % n->shuf_out)) {
        fprintf(err, "verify: %%%d %s: shuffle of %d groups at its stores\n", i, op_name(n->op), n->shuf_out);
        return false;
    }
    if (n->shuf_in && (n->op != OP_SLICE || n->p.slice.axis != 0 || n->shuf_in < 1 ||
                       g->node[n->in[0]]->shape.d[0] % n->shuf_in)) {
        fprintf(err, "verify: %%%d %s: shuffle of %d groups at its loads\n", i, op_name(n->op), n->shuf_in);
        return false;
    }
    if (n->folded_into >= 0) {
        int groups = shuffle_groups_of(n);
        const Node *t = n->folded_into < g->nnode ? g->node[n->folded_into] : NULL;
        bool reads = false; /* t reads n's input instead of n */
        for (int j = 0; t && t->id > i && j < t->nin; j++)
            reads |= t->in[j] == n->in[0];
        bool ok = groups && t && ((t->id == n->in[0] && t->shuf_out == groups) ||
                                  (reads && (t->shuf_in == groups || t->shuf_out == groups)));
        if (!ok) {
            fprintf(err, "verify: %%%d %s: folded into %%%d, which does not apply it\n", i,
                    op_name(n->op), n->folded_into);
            return false;
        }
    }
    return true;
}

/* Fusion: P's epilogue nodes come after it, in order, name it in
 * fused_into, have its shape and read it (and the inputs appended to P)
 * as fuse.c wires them. */
static bool verify_epilogue(const Graph *g, const Node *n, FILE *err)
{
    int i = n->id, own = node_own_nin(n), extra = 0;
    const Epilogue *e = &n->epi;
    if (e->add < 0 && e->act < 0 && e->nin == 0)
        return true;
    bool ok = fuse_producer(n->op);
    if (ok && e->add >= 0) {
        const Node *a = e->add < g->nnode ? g->node[e->add] : NULL;
        int r = own + extra++;
        ok = a && e->add > i && a->op == OP_ADD && a->fused_into == i && a->nin == 2 && r < n->nin &&
             ((a->in[0] == i && a->in[1] == n->in[r]) || (a->in[1] == i && a->in[0] == n->in[r])) &&
             shape_eq(&a->shape, &n->shape) && shape_eq(&g->node[n->in[r]]->shape, &n->shape);
    }
    if (ok && e->act >= 0) {
        const Node *f = e->act < g->nnode ? g->node[e->act] : NULL;
        ok = f && e->act > i && e->act > e->add && f->fused_into == i && shape_eq(&f->shape, &n->shape);
        if (ok && fuse_activation(f->op)) {
            ok = f->nin == 1 && f->in[0] == i;
        } else if (ok) {
            int a = own + extra++;
            ok = fuse_activation_grad(f) && f->nin == 2 && f->in[1] == i && a < n->nin && f->in[0] == n->in[a];
        }
    }
    if (!ok || extra != e->nin) {
        fprintf(err, "verify: %%%d %s: its epilogue is not the nodes fused into it\n", i, op_name(n->op));
        return false;
    }
    return true;
}

/* Batch-norm folding: a conv or dense layer names a batchnorm with
 * running statistics that reads it, and maybe the activation that reads
 * that; both name it back. */
static bool verify_bn_fold(const Graph *g, const Node *n, FILE *err)
{
    int i = n->id;
    if (n->bn_fold >= 0) {
        const Node *b = n->bn_fold > i && n->bn_fold < g->nnode ? g->node[n->bn_fold] : NULL;
        const Node *e = n->bn_epi < 0 ? NULL : b && n->bn_epi > b->id && n->bn_epi < g->nnode
                                                   ? g->node[n->bn_epi] : b;
        bool ok = n->op == OP_CONV && b && b->op == OP_BATCHNORM &&
                  b->in[0] == i && b->bn_into == i && b->p.norm.track &&
                  (n->bn_epi < 0 || (e != b && e->nin == 1 && e->in[0] == b->id && e->bn_into == i &&
                                     (op_flags(e->op) & OPF_ELEMENTWISE)));
        if (!ok) {
            fprintf(err, "verify: %%%d %s: batchnorm %%%d folded into it does not read it\n", i,
                    op_name(n->op), n->bn_fold);
            return false;
        }
    } else if (n->bn_epi >= 0) {
        fprintf(err, "verify: %%%d %s: an inference epilogue without a folded batchnorm\n", i, op_name(n->op));
        return false;
    }
    if (n->bn_into >= 0) {
        const Node *c = n->bn_into < i ? g->node[n->bn_into] : NULL;
        if (!c || (c->bn_fold != i && c->bn_epi != i)) {
            fprintf(err, "verify: %%%d %s: in %%%d, which does not say so\n", i, op_name(n->op), n->bn_into);
            return false;
        }
    }
    return true;
}

static bool verify_nodes(const Graph *g, FILE *err, Arena *a, StrMap *seen)
{
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (n->id != i) {
            fprintf(err, "verify: node %d has id %d\n", i, n->id);
            return false;
        }
        int ar = op_arity(n->op), own = node_own_nin(n);
        if (n->epi.nin < 0 || own < 0) {
            fprintf(err, "verify: %%%d %s: %d epilogue inputs of %d\n", i, op_name(n->op), n->epi.nin, n->nin);
            return false;
        }
        if (ar >= 0 && own != ar &&
            !((n->op == OP_CONV || n->op == OP_DENSE) && (own == 2 || own == 3))) {
            fprintf(err, "verify: %%%d %s has %d inputs, expected %d\n", i, op_name(n->op), own, ar);
            return false;
        }
        if ((n->op == OP_CONV || n->op == OP_DENSE) && own != 2 && own != 3) {
            fprintf(err, "verify: %%%d %s has %d inputs, expected 2 or 3\n", i, op_name(n->op), own);
            return false;
        }
        for (int j = 0; j < n->nin; j++) {
            if (n->in[j] < 0 || n->in[j] >= i) {
                fprintf(err, "verify: %%%d %s input %d is %%%d (not an earlier node)\n", i,
                        op_name(n->op), j, n->in[j]);
                return false;
            }
        }
        if (n->shape.rank < 0 || n->shape.rank > NETC_MAX_RANK) {
            fprintf(err, "verify: %%%d %s has rank %d\n", i, op_name(n->op), n->shape.rank);
            return false;
        }
        for (int j = 0; j < n->shape.rank; j++) {
            if (n->shape.d[j] <= 0) {
                fprintf(err, "verify: %%%d %s has dim %d = %d\n", i, op_name(n->op), j, n->shape.d[j]);
                return false;
            }
        }
        if (!verify_epilogue(g, n, err))
            return false;
        if (n->fused_into >= 0 && (n->fused_into >= i || (g->node[n->fused_into]->epi.add != i &&
                                                           g->node[n->fused_into]->epi.act != i))) {
            fprintf(err, "verify: %%%d %s: fused into %%%d, which does not say so\n", i, op_name(n->op),
                    n->fused_into);
            return false;
        }
        for (int j = 0; j < n->nin; j++)
            if (g->node[n->in[j]]->fused_into >= 0) {
                fprintf(err, "verify: %%%d %s reads %%%d, an activation fused away\n", i,
                        op_name(n->op), n->in[j]);
                return false;
            }
        if (!verify_folds(g, n, err) || !verify_bn_fold(g, n, err))
            return false;
        int dup = strmap_get(seen, n->name);
        if (dup >= 0) {
            fprintf(err, "verify: %%%d and %%%d are both named '%s'\n", dup, i, n->name);
            return false;
        }
        strmap_put(a, seen, n->name, i);
        /* Re-infer the shape of user-level ops and compare. */
        if (op_flags(n->op) & (OPF_LAYER | OPF_LOSS)) {
            Node copy = *n;
            copy.nin = own;
            Diag d;
            diag_init(&d, err);
            bool ok = shape_infer((Graph *)g, &copy, &d);
            diag_free(&d);
            if (!ok || !shape_eq(&copy.shape, &n->shape)) {
                fprintf(err, "verify: %%%d %s: stored shape disagrees with shape inference\n", i,
                        op_name(n->op));
                return false;
            }
        }
    }
    for (int i = 0; i < g->noutput; i++) {
        if (g->outputs[i] < 0 || g->outputs[i] >= g->nnode) {
            fprintf(err, "verify: output %d is %%%d\n", i, g->outputs[i]);
            return false;
        }
    }
    if (g->loss >= 0) {
        const Node *l = graph_node(g, g->loss);
        if (!(op_flags(l->op) & OPF_LOSS) || l->shape.batched || l->shape.rank != 0) {
            fprintf(err, "verify: loss %%%d is not an unbatched scalar loss\n", g->loss);
            return false;
        }
    }
    return true;
}

bool graph_verify(const Graph *g, FILE *err)
{
    Arena *names = arena_new(); /* node names seen so far, for duplicates */
    StrMap seen = {0};
    bool ok = verify_nodes(g, err, names, &seen);
    arena_free(names);
    return ok;
}
