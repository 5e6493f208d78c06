/* sched.c - chooses how each node is computed, and says why.
 *
 * Needs: a complete graph (forward and backward).  Provides: one Sched per
 * node.  The graph is not modified: the schedule is a separate record, so
 * a different choice never changes what is computed, only how.
 *
 * Convolutions (conv, conv_dx, conv_dw) run `direct` (lower_direct.c,
 * lower_conv.c),
 * `im2col` (lower_im2col.c) or, for 2D 3x3 stride-1 conv and conv_dx,
 * `winograd` / `winograd2` (lower_winograd.c); Model.conv_algo forces one,
 * else a layer's `algo=` attribute asks for one, else conv_rule decides
 * per node.  Where an asked-for Winograd does not apply, conv_rule's
 * choice stands and the reason says why.  Dense layers run as a `gemm`
 * (lower_gemm.c); every other node runs `direct` loops.
 */
#include <string.h>

#include "netc.h"

static const char *const algo_names[] = {"none", "direct", "im2col", "gemm", "winograd", "winograd2"};
_Static_assert(sizeof algo_names / sizeof algo_names[0] == ALGO_COUNT, "algo_names out of sync");

const char *algo_name(Algo a)
{
    NETC_ASSERT(a >= 0 && a < ALGO_COUNT);
    return algo_names[a];
}

bool algo_parse(const char *name, Algo *out)
{
    if (strcmp(name, "auto") == 0) {
        *out = ALGO_NONE;
        return true;
    }
    if (strcmp(name, "winograd4") == 0) { /* the default tile, by its size */
        *out = ALGO_WINOGRAD;
        return true;
    }
    for (int a = ALGO_NONE + 1; a < ALGO_COUNT; a++)
        if (strcmp(name, algo_names[a]) == 0) {
            *out = (Algo)a;
            return true;
        }
    return false;
}

/* Output channels per group of a convolution node's forward layer: the
 * rows of its im2col GEMM (conv), or the k extent (conv_dx). */
static int conv_og(const Graph *g, const Node *n)
{
    bool dx = n->op == OP_CONV_DX || n->op == OP_CONV_TRANSPOSE; /* conv_transpose is a conv_dx */
    const Shape *ys = n->op == OP_CONV ? &n->shape
                      : dx             ? &graph_node(g, n->in[0])->shape
                                            : &graph_node(g, n->in[1])->shape;
    return ys->d[0] / n->p.conv.groups;
}

/* The rule, from measurements (perf samples of each kernel, same training
 * run of 3,000 Fashion-MNIST images, batch 64, C backend, Zen 4; direct /
 * im2col; Og = output channels per group, R = Cg*K the forward reduction,
 * P output pixels):
 *
 *   layer                           conv       conv_dx    conv_dw
 *   Og 8,  R 9,  P 784  (3x3)       104 / 24   -          565 / 31
 *   Og 1,  R 9,  P 784  (depthwise) 109 / 224  115 / 127  571 / 42
 *   Og 16, R 8,  P 784  (1x1)       146 / 45   116 / 44   1064 / 59
 *   Og 2,  R 144, P 784 (3x3)       420 / 163  382 / 268  2267 / 142
 *   Og 16, R 18, P 784  (3x3)       411 / 69   404 / 114  2254 / 221
 *   Og 16, R 72, P 196  (groups 2)  1714 / 195 1706 / 285 4251 / 141
 *
 * With the scalar direct loops those numbers were measured with, im2col won
 * everywhere but the forward and input-gradient passes of a depthwise
 * layer (Og = 1): a GEMM with one row reuses no load of the unfolded
 * matrix, so the unfold is pure overhead.  conv_dw always wins with im2col
 * (direct conv_dw is a scalar reduction).  The vector micro-kernel of
 * lower_direct.c (conv, stride-1 conv_dx) beats im2col where the GEMM
 * reuses each unfolded column little (Og <= DIRECT_MAX_OG) or the unfold
 * copies the input many times (DIRECT_MIN_TAPS taps or more, 2D/3D):
 * single layers, LLVM backend, 1 thread, batch 32, interleaved medians on a
 * loaded AVX-512 machine: LeNet conv1 2.4x and conv2 2.5x faster than
 * im2col, 3D 3x3x3 16->16 9x, AlexNet conv1 (11x11 stride 4, Og 64) 1.6x.
 * It also beats im2col on every 2D/3D layer with unit strides, whose
 * unfolded matrix would make a round trip through memory (same setting,
 * 3x3 batch 32: 64->64 56x56 1.7x, 128->128 28x28 1.0x, 4 groups 128->128
 * 28x28 1.8x, dilation 2 64->64 56x56 1.4x; a training step of two
 * stacked 64->64 56x56 layers 1.06x faster with a direct input gradient
 * than with im2col's); with stride 2 im2col stays faster (64->128 56x56:
 * 1.25x).  conv_dw with Og a multiple of DIRECT_DW_OG runs lower_direct.c's
 * weight-gradient kernel (no unfold): the training step of 3x3 64->64 56x56
 * 1.25-1.4x faster than with im2col's tiled conv_dw, 128->128 28x28
 * 1.06-1.25x, AlexNet conv1 1.2x, 1x1 256->64 1.2x, 3D 3x3x3 16->16 1.75x. */
enum { DIRECT_MAX_OG = 16, DIRECT_MIN_TAPS = 25, DIRECT_DW_OG = 16 };

static bool pointwise(const ConvParam *p)
{
    for (int i = 0; i < p->nsp; i++)
        if (p->kernel[i] != 1 || p->stride[i] != 1 || p->pad_lo[i] || p->pad_hi[i])
            return false;
    return true;
}

/* Taps of the kernel, and whether every stride is 1. */
static int conv_taps(const ConvParam *p, bool *unit_stride)
{
    int t = 1;
    *unit_stride = true;
    for (int i = 0; i < p->nsp; i++) {
        t *= p->kernel[i];
        *unit_stride = *unit_stride && p->stride[i] == 1;
    }
    return t;
}

static Sched conv_rule(const Graph *g, const Node *n)
{
    if (n->op == OP_CONV_DW && conv_og(g, n) % DIRECT_DW_OG == 0 && n->p.conv.nsp >= 2)
        return (Sched){ALGO_DIRECT, "direct: dw tiles of taps x output channels in vector registers, no unfold"};
    if (n->op == OP_CONV_DW)
        return (Sched){ALGO_IM2COL, "im2col: dw as a GEMM over independent weights"};
    if (conv_og(g, n) == 1)
        return (Sched){ALGO_DIRECT, "direct: one output channel per group, a GEMM would reuse nothing"};
    if (pointwise(&n->p.conv))
        return (Sched){ALGO_IM2COL, "im2col: 1x1 stride 1 unpadded, a plain GEMM on x (no unfold)"};
    /* lower_direct.c's micro-kernel covers conv and stride-1 conv_dx; other
     * input gradients scatter one scalar at a time there */
    bool unit;
    int taps = conv_taps(&n->p.conv, &unit);
    bool vec = n->op == OP_CONV || unit;
    if (vec && conv_og(g, n) <= DIRECT_MAX_OG)
        return (Sched){ALGO_DIRECT, "direct: few output channels per group read each unfolded column too "
                                    "few times to pay for the unfold"};
    if (vec && taps >= DIRECT_MIN_TAPS && n->p.conv.nsp >= 2)
        return (Sched){ALGO_DIRECT, "direct: a large kernel unfolds to many copies of the input"};
    if (unit && n->p.conv.nsp >= 2)
        return (Sched){ALGO_DIRECT, "direct: stride 1, the unfolded matrix would make a round trip "
                                    "through memory"};
    return (Sched){ALGO_IM2COL, "im2col: several output channels per group share each unfolded column"};
}

/* winograd */
/* Why Winograd F(m x m, 3x3) cannot compute node n, or NULL when it can.
 * conv_dx is a correlation of dy padded by 2 - pad, so its padding must
 * not exceed 2. */
static const char *wino_unfit(const Node *n)
{
    const ConvParam *p = &n->p.conv;
    if (n->op == OP_CONV_DW)
        return "the weight gradient stays im2col/direct";
    if (n->op == OP_CONV_TRANSPOSE)
        return "conv_transpose has no winograd lowering";
    if (p->nsp != 2)
        return "not a 2D convolution";
    for (int i = 0; i < 2; i++) {
        if (p->kernel[i] != 3)
            return "kernel is not 3x3";
        if (p->stride[i] != 1)
            return "stride is not 1";
        if (p->dilation[i] != 1)
            return "dilation is not 1";
        if (n->op == OP_CONV_DX && (p->pad_lo[i] > 2 || p->pad_hi[i] > 2))
            return "input gradient of a layer padded by more than 2";
    }
    return NULL;
}

/* Winograd `algo` (asked for by `by`) where it applies, else conv_rule's
 * choice with the reason it does not. */
static Sched wino_rule(const Model *m, const Node *n, Algo algo, const char *by)
{
    const char *unfit = wino_unfit(n);
    const char *tile = algo == ALGO_WINOGRAD2 ? "F(2x2,3x3)" : "F(4x4,3x3)";
    if (!unfit)
        return (Sched){algo, arena_printf(m->arena, "%s %s: %s", algo_name(algo), tile, by)};
    Sched s = conv_rule(m->g, n);
    s.why = arena_printf(m->arena, "%s; not winograd: %s", s.why, unfit);
    return s;
}

/* --algo forces every convolution; else the layer's algo= (copied to its
 * conv_dx and conv_dw) asks for its three passes; else conv_rule. */
static Sched conv_choice(const Model *m, const Node *n)
{
    Algo a = m->conv_algo;
    bool forced = a != ALGO_NONE;
    if (!forced)
        a = (Algo)n->p.conv.algo;
    NETC_ASSERT(a >= ALGO_NONE && a < ALGO_COUNT && a != ALGO_GEMM);
    if (a == ALGO_WINOGRAD || a == ALGO_WINOGRAD2)
        return wino_rule(m, n, a, forced ? "forced by --algo" : "the layer's algo=");
    if (a == ALGO_DIRECT)
        return (Sched){ALGO_DIRECT, forced ? "direct: forced by --algo" : "direct: the layer's algo="};
    if (a == ALGO_IM2COL)
        return (Sched){ALGO_IM2COL, forced ? "im2col: forced by --algo" : "im2col: the layer's algo="};
    return conv_rule(m->g, n);
}

Sched *sched_choose(const Model *m)
{
    const Graph *g = m->g;
    Sched *s = arena_alloc(m->arena, sizeof(Sched) * (size_t)(g->nnode ? g->nnode : 1));
    NETC_ASSERT(m->conv_algo != ALGO_GEMM);
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (op_flags(n->op) & OPF_SOURCE) {
            s[i] = (Sched){ALGO_NONE, "source: no computation"};
        } else if (n->op == OP_CONV || n->op == OP_CONV_DX || n->op == OP_CONV_DW ||
                   n->op == OP_CONV_TRANSPOSE) {
            s[i] = conv_choice(m, n);
        } else if (n->op == OP_DENSE || n->op == OP_DENSE_DX || n->op == OP_DENSE_DW) {
            s[i] = (Sched){ALGO_GEMM, "gemm: inner loop over independent outputs"};
        } else if (n->op == OP_MATMUL || n->op == OP_MATMUL_DA || n->op == OP_MATMUL_DB) {
            s[i] = (Sched){ALGO_GEMM, "gemm: one per matrix of the batch"};
        } else {
            s[i] = (Sched){ALGO_DIRECT, "direct loops"};
        }
    }
    return s;
}

void sched_print(FILE *f, const Model *m, const Sched *s)
{
    for (int i = 0; i < m->g->nnode; i++) {
        const Node *n = m->g->node[i];
        if (s[i].algo == ALGO_NONE)
            continue;
        fprintf(f, "%%%d %s \"%s\": %s  (%s)\n", i, op_name(n->op), n->name, algo_name(s[i].algo),
                s[i].why);
    }
}
