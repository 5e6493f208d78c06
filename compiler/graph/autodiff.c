/* autodiff.c - derives the backward pass as ordinary graph IR.
 *
 * Needs: a shape-checked forward graph.  Provides: backward nodes appended
 * after the forward ones and m->grad_of[v] = the node holding dL/dv for
 * every value v on a path from a PARAM or a user INPUT to the differentiated
 * value.  Invalidates nothing (the forward nodes are untouched).
 *
 * One rule per op, applied in reverse topological order.  A value used by
 * several consumers receives several contributions, summed by an `add`
 * node.  Because the result is plain IR, scheduling, memory planning and
 * lowering treat the backward pass like any other code.
 *
 *   %5 = conv(%0, %1, %2) "c1"           %9  = conv_dx(%8, %1) "c1.dx"
 *   %6 = relu(%5) "relu1"          =>    %10 = conv_dw(%0, %8) "c1.dw"
 *   %7 = softmax_cross_entropy(...)      %11 = bias_grad(%8) "c1.db"
 */
#include <string.h>

#include "netc.h"

typedef struct {
    Model *m;
    Graph *g;
    bool *need;      /* forward node lies between a source and `of` */
    int **contrib;   /* per forward node: gradient contributions    */
    int *ncontrib;
    int nfwd;
} Ad;

static void contribute(Ad *ad, int v, int grad)
{
    if (!ad->need[v])
        return;
    Arena *a = ad->g->arena;
    int *c = arena_alloc(a, sizeof(int) * (size_t)(ad->ncontrib[v] + 1));
    if (ad->ncontrib[v])
        memcpy(c, ad->contrib[v], sizeof(int) * (size_t)ad->ncontrib[v]);
    c[ad->ncontrib[v]++] = grad;
    ad->contrib[v] = c;
}

/* Adds a backward node shaped like forward value `like`. */
static int emit(Ad *ad, Op op, const Node *fwd, const char *suffix, int like, int nin, const int *in)
{
    const char *name = arena_printf(ad->g->arena, "%s.%s", fwd->name, suffix);
    Node *n = graph_add(ad->g, op, name, fwd->loc, nin, in);
    n->shape = graph_node(ad->g, like)->shape;
    n->p = fwd->p;
    return n->id;
}

/* Sums the contributions to v into one node (or returns the only one). */
static int total_grad(Ad *ad, int v)
{
    if (ad->ncontrib[v] == 0)
        return -1;
    if (ad->ncontrib[v] == 1)
        return ad->contrib[v][0];
    const Node *n = graph_node(ad->g, v);
    return emit(ad, OP_ADD, n, "gsum", v, ad->ncontrib[v], ad->contrib[v]);
}

/* The gradient op of a loss: (pred, target) -> dpred for dloss = 1. */
static Op loss_grad_op(Op op)
{
    switch (op) {
    case OP_SOFTMAX_XENT: return OP_SOFTMAX_XENT_DX;
    case OP_MSE: return OP_MSE_DX;
    case OP_NLL: return OP_NLL_DX;
    case OP_BCE_LOGITS: return OP_BCE_LOGITS_DX;
    case OP_L1: return OP_L1_DX;
    case OP_SMOOTH_L1: return OP_SMOOTH_L1_DX;
    default: NETC_ASSERT(!"loss_grad_op: not a loss"); return OP_COUNT;
    }
}

/* add, sub, mul: the gradient of input j, summed over the axes along which
 * it was broadcast (bcast_dx); an input of the output's shape takes gy itself
 * for add (and for sub's first input). */
static int arith_rule(Ad *ad, const Node *n, int j, int gy)
{
    const Node *x = graph_node(ad->g, n->in[j]);
    bool same = shape_eq(&x->shape, &n->shape);
    float scale = n->op == OP_SUB && j == 1 ? -1.0f : 1.0f;
    if (n->op != OP_MUL && same && scale > 0)
        return gy;
    int in[2] = {gy, n->op == OP_MUL ? n->in[1 - j] : -1};
    const char *suffix = arena_printf(ad->g->arena, "dx%d", j);
    int dx = emit(ad, OP_BCAST_DX, n, suffix, n->in[j], n->op == OP_MUL ? 2 : 1, in);
    graph_node(ad->g, dx)->p.act.a = scale;
    return dx;
}

/* gy reshaped back to the shape of n's input (flatten, reshape). */
static int reshape_back(Ad *ad, const Node *n, int gy)
{
    int dx = emit(ad, OP_RESHAPE, n, "dx", n->in[0], 1, &gy);
    Node *r = graph_node(ad->g, dx);
    r->p.reshape.rank = r->shape.rank;
    memcpy(r->p.reshape.d, r->shape.d, sizeof r->p.reshape.d);
    return dx;
}

/* A shuffle's gradient: the inverse permutation of the output's view. */
static int permute_back(Ad *ad, const Node *n, int gy)
{
    int dx = emit(ad, OP_PERMUTE, n, "dx", n->in[0], 1, &gy);
    const PermParam *f = &n->p.perm;
    PermParam *b = &graph_node(ad->g, dx)->p.perm;
    for (int i = 0; i < f->rank; i++) {
        b->dims[i] = f->dims[f->perm[i]];
        b->perm[f->perm[i]] = i;
    }
    return dx;
}

/* The rule for one forward node with output gradient gy. */
static void rule(Ad *ad, const Node *n, int gy)
{
    const int *x = n->in;
    switch (n->op) {
    case OP_INPUT:
    case OP_PARAM:
        break;
    case OP_CONV:
    case OP_DENSE: {
        bool conv = n->op == OP_CONV;
        if (ad->need[x[0]])
            contribute(ad, x[0], emit(ad, conv ? OP_CONV_DX : OP_DENSE_DX, n, "dx", x[0], 2,
                                      (int[]){gy, x[1]}));
        if (ad->need[x[1]])
            contribute(ad, x[1], emit(ad, conv ? OP_CONV_DW : OP_DENSE_DW, n, "dw", x[1], 2,
                                      (int[]){x[0], gy}));
        /* a dense layer's bias is on the last axis: rank 1, the same thing */
        bool last = !conv && n->shape.rank > 1;
        if (n->nin == 3 && ad->need[x[2]])
            contribute(ad, x[2], emit(ad, last ? OP_DENSE_DB : OP_BIAS_GRAD, n, "db", x[2], 1, &gy));
        break;
    }
    /* dense and matmul */
    case OP_MATMUL:
        if (ad->need[x[0]])
            contribute(ad, x[0], emit(ad, OP_MATMUL_DA, n, "da", x[0], 2, (int[]){gy, x[1]}));
        if (ad->need[x[1]])
            contribute(ad, x[1], emit(ad, OP_MATMUL_DB, n, "db", x[1], 2, (int[]){x[0], gy}));
        break;
    case OP_MAXPOOL:
        contribute(ad, x[0], emit(ad, OP_MAXPOOL_DX, n, "dx", x[0], 2, (int[]){x[0], gy}));
        break;
    case OP_AVGPOOL:
        contribute(ad, x[0], emit(ad, OP_AVGPOOL_DX, n, "dx", x[0], 1, &gy));
        break;
    case OP_FLATTEN:
        contribute(ad, x[0], reshape_back(ad, n, gy));
        break;
    case OP_RELU:
        contribute(ad, x[0], emit(ad, OP_RELU_DX, n, "dx", x[0], 2, (int[]){n->id, gy}));
        break;
    case OP_TANH:
        contribute(ad, x[0], emit(ad, OP_TANH_DX, n, "dx", x[0], 2, (int[]){n->id, gy}));
        break;
    case OP_SIGMOID:
        contribute(ad, x[0], emit(ad, OP_SIGMOID_DX, n, "dx", x[0], 2, (int[]){n->id, gy}));
        break;
    case OP_SOFTMAX:
        contribute(ad, x[0], emit(ad, OP_SOFTMAX_DX, n, "dx", x[0], 2, (int[]){n->id, gy}));
        break;
    case OP_CONCAT: {
        int begin = 0;
        for (int j = 0; j < n->nin; j++) {
            const Node *in = graph_node(ad->g, x[j]);
            if (ad->need[x[j]]) {
                const char *suffix = arena_printf(ad->g->arena, "dx%d", j);
                int s = emit(ad, OP_SLICE, n, suffix, x[j], 1, &gy);
                int axis = n->p.concat.axis;
                graph_node(ad->g, s)->p.slice = (SliceParam){begin, axis, begin + in->shape.d[axis]};
                contribute(ad, x[j], s);
            }
            begin += in->shape.d[n->p.concat.axis];
        }
        break;
    }
    case OP_ADD:
    case OP_SUB:
    case OP_MUL:
        for (int j = 0; j < n->nin; j++)
            if (ad->need[x[j]])
                contribute(ad, x[j], arith_rule(ad, n, j, gy));
        break;
    case OP_LEAKY_RELU:
    case OP_ELU:
    case OP_SELU:
    case OP_SOFTPLUS:
    case OP_HARD_SIGMOID:
    case OP_HARD_SWISH:
    case OP_RELU6:
    case OP_CLIP: {
        /* relu6's mask 0 < v < 6 holds for its output exactly where it
         * holds for its input (NaN included: relu6(NaN) is 0), so its
         * gradient reads the output, as relu's does, and the relu6 fuses
         * into the kernel before it in training too (fuse.c) */
        int v = n->op == OP_RELU6 ? n->id : x[0];
        int dx = emit(ad, OP_ACT_DX, n, "dx", x[0], 2, (int[]){v, gy});
        graph_node(ad->g, dx)->p.act.fwd = n->op;
        contribute(ad, x[0], dx);
        break;
    }
    case OP_PRELU:
        if (ad->need[x[0]])
            contribute(ad, x[0], emit(ad, OP_PRELU_DX, n, "dx", x[0], 3, (int[]){x[0], x[1], gy}));
        if (ad->need[x[1]])
            contribute(ad, x[1], emit(ad, OP_PRELU_DW, n, "dw", x[1], 2, (int[]){x[0], gy}));
        break;
    case OP_LOG_SOFTMAX:
        contribute(ad, x[0], emit(ad, OP_LOG_SOFTMAX_DX, n, "dx", x[0], 2, (int[]){n->id, gy}));
        break;
    case OP_SOFTMAX_XENT:
    case OP_MSE:
    case OP_NLL:
    case OP_BCE_LOGITS:
    case OP_L1:
    case OP_SMOOTH_L1:
        /* Losses are terminal: their rule ignores gy (dloss = 1).  The
         * gradient node copies the LossParam (emit copies n->p). */
        NETC_ASSERT(gy < 0);
        contribute(ad, x[0], emit(ad, loss_grad_op(n->op), n, "dx", x[0], 2, x));
        break;
    /* normalisation and regularisation: batch norm's gradient is the
     * training-mode one (batch statistics); running statistics get none */
    case OP_BATCHNORM: {
        bool affine = n->p.norm.affine;
        if (ad->need[x[0]])
            contribute(ad, x[0], emit(ad, OP_BATCHNORM_DX, n, "dx", x[0], affine ? 3 : 2,
                                      (int[]){x[0], gy, affine ? x[1] : -1}));
        if (affine && ad->need[x[1]])
            contribute(ad, x[1], emit(ad, OP_BATCHNORM_DW, n, "dw", x[1], 2, (int[]){x[0], gy}));
        if (affine && ad->need[x[2]])
            contribute(ad, x[2], emit(ad, OP_BIAS_GRAD, n, "db", x[2], 1, &gy));
        break;
    }
    case OP_LRN:
        contribute(ad, x[0], emit(ad, OP_LRN_DX, n, "dx", x[0], 2, (int[]){x[0], gy}));
        break;
    case OP_DROPOUT:
    case OP_DROPOUT2D:
        contribute(ad, x[0], emit(ad, OP_DROPOUT_DX, n, "dx", x[0], 2, (int[]){gy, x[1]}));
        break;
    /* pooling and data movement */
    case OP_GLOBAL_MAXPOOL:
        contribute(ad, x[0], emit(ad, OP_MAXPOOL_DX, n, "dx", x[0], 2, (int[]){x[0], gy}));
        break;
    case OP_GLOBAL_AVGPOOL:
        contribute(ad, x[0], emit(ad, OP_AVGPOOL_DX, n, "dx", x[0], 1, &gy));
        break;
    case OP_ADAPTIVE_AVGPOOL:
        contribute(ad, x[0], emit(ad, OP_ADAPTIVE_AVGPOOL_DX, n, "dx", x[0], 1, &gy));
        break;
    case OP_PAD:
        contribute(ad, x[0], emit(ad, OP_PAD_DX, n, "dx", x[0], 1, &gy));
        break;
    case OP_UPSAMPLE:
        contribute(ad, x[0], emit(ad, OP_UPSAMPLE_DX, n, "dx", x[0], 1, &gy));
        break;
    case OP_PIXEL_SHUFFLE:
    case OP_PIXEL_UNSHUFFLE:
    case OP_DEPTH_TO_SPACE:
    case OP_SPACE_TO_DEPTH:
    case OP_CHANNEL_SHUFFLE:
        contribute(ad, x[0], permute_back(ad, n, gy));
        break;
    case OP_SLICE:
        contribute(ad, x[0], emit(ad, OP_SLICE_DX, n, "dx", x[0], 1, &gy));
        break;
    case OP_RESHAPE:
        contribute(ad, x[0], reshape_back(ad, n, gy));
        break;
    /* transposed convolution (the matching conv's conv_dx): dx is that
     * conv of gy, dw its conv_dw with x as the output gradient */
    case OP_CONV_TRANSPOSE: {
        if (ad->need[x[0]]) {
            int dx = emit(ad, OP_CONV, n, "dx", x[0], 2, (int[]){gy, x[1]});
            graph_node(ad->g, dx)->p.conv.bias = false;
            contribute(ad, x[0], dx);
        }
        if (ad->need[x[1]])
            contribute(ad, x[1], emit(ad, OP_CONV_DW, n, "dw", x[1], 2, (int[]){gy, x[0]}));
        if (n->nin == 3 && ad->need[x[2]])
            contribute(ad, x[2], emit(ad, OP_BIAS_GRAD, n, "db", x[2], 1, &gy));
        break;
    }
    default:
        NETC_ASSERT(!"autodiff: op has no gradient rule");
    }
}

void autodiff(Model *m, int of, int seed)
{
    Graph *g = m->g;
    Ad ad = {.m = m, .g = g, .nfwd = g->nnode};
    Arena *a = g->arena;
    ad.need = arena_alloc(a, sizeof(bool) * (size_t)ad.nfwd);
    ad.contrib = arena_alloc(a, sizeof(int *) * (size_t)ad.nfwd);
    ad.ncontrib = arena_alloc(a, sizeof(int) * (size_t)ad.nfwd);
    NETC_ASSERT(of >= 0 && of < ad.nfwd);
    if (seed < 0)
        NETC_ASSERT(op_flags(graph_node(g, of)->op) & OPF_LOSS);

    /* need[v]: v depends on a parameter (or, with a seed, a user input) and
     * `of` depends on v.  Training needs no gradient for the data, so a
     * first conv gets no conv_dx. */
    bool *from_src = arena_alloc(a, sizeof(bool) * (size_t)ad.nfwd);
    for (int i = 0; i < ad.nfwd; i++) {
        const Node *n = g->node[i];
        from_src[i] = n->op == OP_PARAM ||
                      (seed >= 0 && n->op == OP_INPUT && i != g->target && i != seed);
        for (int j = 0; j < n->nin; j++)
            from_src[i] |= from_src[n->in[j]];
    }
    ad.need[of] = from_src[of];
    for (int i = of; i >= 0; i--) {
        if (!ad.need[i])
            continue;
        const Node *n = g->node[i];
        for (int j = 0; j < n->nin; j++)
            if (from_src[n->in[j]])
                ad.need[n->in[j]] = true;
    }

    if (seed >= 0)
        contribute(&ad, of, seed);
    int *final = arena_alloc(a, sizeof(int) * (size_t)ad.nfwd);
    for (int i = 0; i < ad.nfwd; i++)
        final[i] = -1;
    for (int i = of; i >= 0; i--) {
        if (!ad.need[i])
            continue;
        int gy = -1; /* a loss differentiated without a seed: dloss = 1 */
        if (i != of || seed >= 0) {
            gy = total_grad(&ad, i);
            if (gy < 0)
                continue;
        }
        final[i] = gy;
        rule(&ad, g->node[i], gy);
    }

    m->ngrad_of = g->nnode;
    m->grad_of = arena_alloc(a, sizeof(int) * (size_t)g->nnode);
    for (int i = 0; i < g->nnode; i++)
        m->grad_of[i] = i < ad.nfwd ? final[i] : -1;
    /* The entries that take gradients are the training ones: they also
     * advance the state. */
    state_updates(m);
}

void autodiff_seeded(Model *m, int of)
{
    Graph *g = m->g;
    const Node *o = graph_node(g, of);
    const char *name = arena_printf(g->arena, "%s.grad", o->name);
    Node *s = graph_add(g, OP_INPUT, name, o->loc, 0, NULL);
    s->shape = o->shape;
    m->grad_value = of;
    m->grad_seed = s->id;
    autodiff(m, of, s->id);
}
