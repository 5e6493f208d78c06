/* lower.c - lowers one graph node into one loop-IR kernel.
 *
 * Needs: a shape-checked graph and a schedule (ALGO_DIRECT, ALGO_IM2COL for
 * convolutions, ALGO_WINOGRAD(2) for 3x3 stride-1 conv and conv_dx,
 * ALGO_FFT for 1D/2D stride-1 conv and conv_dx,
 * ALGO_GEMM for dense layers).  Provides: lower_node, a Kernel whose buffers are the
 * node's output (written) followed by its inputs in node order (read).
 * Invalidates nothing.  Sources (INPUT, PARAM) have no kernel.
 *
 * This file holds the dispatch table (one row per op: the lowering and
 * its buffer names), the shared expression helpers of lower_impl.h and the
 * 3D geometry of convolutions and pools.  The lowerings themselves live in
 * lower_conv.c, lower_im2col.c, lower_winograd.c, lower_gemm.c, lower_pool.c,
 * lower_misc.c, lower_loss.c, lower_act.c (activations, broadcasting
 * arithmetic), lower_norm.c and lower_move.c (pad, upsample, shuffles,
 * concat, slice).  A scheduled kernel may add scratch buffers after its
 * inputs (an im2col matrix, a transposed weight).  Example, a ReLU:
 *
 *   %6 = relu(%5) "relu1" [N, 6, 24, 24]
 *     =>
 *   kernel k6_relu(n, y[n*3456], x[n*3456]):
 *     for i in [0, n*3456): y[i] = select(x[i] < 0, 0, x[i])
 */
#include <limits.h>
#include <string.h>

#include "lower_impl.h"

/* ---- integer expressions ---- */

bool lconst(const Expr *e, int *v)
{
    if (e->k != X_INT)
        return false;
    if (v)
        *v = e->ival;
    return true;
}

Expr *li(Lower *L, int v)
{
    return ex_int(L->a, v);
}

/* A folded constant must itself fit the IR's 32-bit integers. */
static Expr *lfold(Lower *L, long v)
{
    NETC_ASSERT(v >= INT_MIN && v <= INT_MAX);
    return li(L, (int)v);
}

Expr *ladd(Lower *L, Expr *x, Expr *y)
{
    int a = 0, b = 0;
    bool ca = lconst(x, &a), cb = lconst(y, &b);
    if (ca && cb)
        return lfold(L, (long)a + b);
    if (ca && a == 0)
        return y;
    if (cb && b == 0)
        return x;
    return ex_bin(L->a, X_ADD, x, y);
}

Expr *lsub(Lower *L, Expr *x, Expr *y)
{
    int a = 0, b = 0;
    bool ca = lconst(x, &a), cb = lconst(y, &b);
    if (ca && cb)
        return lfold(L, (long)a - b);
    if (cb && b == 0)
        return x;
    return ex_bin(L->a, X_SUB, x, y);
}

Expr *lmul(Lower *L, Expr *x, Expr *y)
{
    int a = 0, b = 0;
    bool ca = lconst(x, &a), cb = lconst(y, &b);
    if (ca && cb)
        return lfold(L, (long)a * b);
    if ((ca && a == 0) || (cb && b == 0))
        return li(L, 0);
    if (ca && a == 1)
        return y;
    if (cb && b == 1)
        return x;
    return ex_bin(L->a, X_MUL, x, y);
}

Expr *ldiv(Lower *L, Expr *x, Expr *y)
{
    int a = 0, b = 0;
    /* The IR divides truncating; lowering only divides non-negative values
     * by positive constants, where that equals floor division. */
    NETC_ASSERT(lconst(y, &b) && b > 0);
    if (lconst(x, &a)) {
        NETC_ASSERT(a >= 0);
        return li(L, a / b);
    }
    if (b == 1)
        return x;
    return ex_bin(L->a, X_DIV, x, y);
}

Expr *lmin(Lower *L, Expr *x, Expr *y)
{
    int a = 0, b = 0;
    if (lconst(x, &a) && lconst(y, &b))
        return li(L, a < b ? a : b);
    return ex_bin(L->a, X_MIN, x, y);
}

Expr *lmax(Lower *L, Expr *x, Expr *y)
{
    int a = 0, b = 0;
    if (lconst(x, &a) && lconst(y, &b))
        return li(L, a > b ? a : b);
    return ex_bin(L->a, X_MAX, x, y);
}

Expr *lmad(Lower *L, Expr *x, int c, Expr *y)
{
    return ladd(L, lmul(L, x, li(L, c)), y);
}

/* ---- float expressions ---- */

Expr *lf(Lower *L, float v)
{
    return ex_flt(L->a, v);
}

Expr *fadd(Lower *L, Expr *x, Expr *y)
{
    return ex_bin(L->a, X_ADD, x, y);
}

Expr *fsub(Lower *L, Expr *x, Expr *y)
{
    return ex_bin(L->a, X_SUB, x, y);
}

Expr *fmul(Lower *L, Expr *x, Expr *y)
{
    return ex_bin(L->a, X_MUL, x, y);
}

Expr *fdiv(Lower *L, Expr *x, Expr *y)
{
    return ex_bin(L->a, X_DIV, x, y);
}

Expr *lload(Lower *L, int buf, Expr *idx)
{
    return ex_load(L->a, buf, idx);
}

Expr *lvar(Lower *L, int var)
{
    return ex_var(L->a, L->k, var);
}

Expr *lbatch(Lower *L)
{
    return ex_batch(L->a);
}

/* ---- statements ---- */

Expr *lfor(Lower *L, Stmt **parent, const char *name, Expr *lo, Expr *hi)
{
    int a = 0, b = 0;
    if (lconst(lo, &a) && lconst(hi, &b) && b - a == 1)
        return lo;
    int v = kernel_var(L->a, L->k, name, T_I32);
    Stmt *s = st_for(L->a, v, lo, hi);
    st_append(L->a, *parent, s);
    *parent = s;
    return lvar(L, v);
}

static void list_add(Lower *L, const int **list, int *n, int buf)
{
    int *p = arena_alloc(L->a, sizeof(int) * ((size_t)*n + 1));
    for (int i = 0; i < *n; i++)
        p[i] = (*list)[i];
    p[*n] = buf;
    *list = p;
    ++*n;
}

void lpriv(Lower *L, Stmt *loop, int buf)
{
    if (buf >= 0 && loop->k == S_FOR)
        list_add(L, &loop->priv, &loop->npriv, buf);
}

void lpriv_sum(Lower *L, Stmt *loop, int buf)
{
    if (buf >= 0 && loop->k == S_FOR)
        list_add(L, &loop->sum, &loop->nsum, buf);
}

Expr *lfor_indep(Lower *L, Stmt **parent, const char *name, Expr *lo, Expr *hi)
{
    Stmt *before = *parent;
    Expr *v = lfor(L, parent, name, lo, hi);
    if (*parent != before)
        (*parent)->indep = true;
    return v;
}

Expr *lfma(Lower *L, Expr *x, Expr *y, Expr *z)
{
    if (L->t->fma)
        return ex_fma(L->a, x, y, z);
    return ex_bin(L->a, X_ADD, ex_bin(L->a, X_MUL, x, y), z);
}

LType lvt(int V)
{
    return V >= 2 ? T_V32 : T_F32;
}

Expr *lvld(Lower *L, int V, int buf, Expr *idx)
{
    return V >= 2 ? ex_vload(L->a, buf, idx) : lload(L, buf, idx);
}

Expr *lvsplat(Lower *L, int V, Expr *x)
{
    return V >= 2 ? ex_bcast(L->a, x) : x;
}

int ldecl(Lower *L, Stmt *parent, const char *name, LType t, Expr *init)
{
    int v = kernel_var(L->a, L->k, name, t);
    st_append(L->a, parent, st_decl(L->a, v, init));
    return v;
}

Expr *lbind(Lower *L, Stmt *parent, const char *name, Expr *e)
{
    if (e->k == X_INT || e->k == X_VAR)
        return e;
    return lvar(L, ldecl(L, parent, name, T_I32, e));
}

void lstore(Lower *L, Stmt *parent, int buf, Expr *idx, Expr *val, bool accum)
{
    st_append(L->a, parent, st_store(L->a, buf, idx, val, accum));
}

void lassign(Lower *L, Stmt *parent, int var, Expr *val)
{
    st_append(L->a, parent, st_assign(L->a, var, val));
}

void lfill(Lower *L, Stmt *parent, int buf, Expr *base, Expr *count, float v)
{
    Stmt *p = parent;
    Expr *i = lfor(L, &p, "i", li(L, 0), count);
    lstore(L, p, buf, ladd(L, base, i), lf(L, v), false);
}

void lzero(Lower *L, Stmt *parent, int buf, Expr *base, Expr *count)
{
    lfill(L, parent, buf, base, count, 0.0f);
}

/* ---- buffers ---- */

const Node *lin(const Lower *L, int i)
{
    NETC_ASSERT(i >= 0 && i < L->n->nin);
    return graph_node(L->g, L->n->in[i]);
}

int lnumel(const Lower *L, int id)
{
    long e = shape_numel(&graph_node(L->g, id)->shape);
    NETC_ASSERT(e > 0 && e <= INT_MAX);
    return (int)e;
}

int lbuf(Lower *L, const char *name, int id, bool written)
{
    const Shape *s = &graph_node(L->g, id)->shape;
    long e = lnumel(L, id);
    return kernel_buf(L->a, L->k, name, written, s->batched ? 0 : e, s->batched ? e : 0);
}

/* ---- geometry ---- */

static void geom_fill(Geom *G, int nsp, const Shape *xs, const Shape *ys)
{
    NETC_ASSERT(nsp >= 1 && nsp <= NETC_MAX_SPATIAL);
    NETC_ASSERT(xs->rank == 1 + nsp && ys->rank == 1 + nsp);
    NETC_ASSERT(xs->batched && ys->batched);
    G->n_in = xs->d[0];
    G->n_out = ys->d[0];
    for (int a = 0; a < 3; a++) {
        G->in[a] = G->out[a] = G->k[a] = G->s[a] = G->d[a] = 1;
        G->plo[a] = G->phi[a] = 0;
    }
    int off = 3 - nsp;
    for (int i = 0; i < nsp; i++) {
        G->in[off + i] = xs->d[1 + i];
        G->out[off + i] = ys->d[1 + i];
    }
}

static void geom_sizes(Geom *G)
{
    G->in_sz = G->in[0] * G->in[1] * G->in[2];
    G->out_sz = G->out[0] * G->out[1] * G->out[2];
    G->k_sz = G->k[0] * G->k[1] * G->k[2];
    for (int a = 0; a < 3; a++)
        NETC_ASSERT(G->k[a] >= 1 && G->s[a] >= 1 && G->d[a] >= 1 && G->plo[a] >= 0 &&
                    G->phi[a] >= 0 && G->out[a] >= 1);
}

/* The attributes of the nsp real spatial axes, right-aligned into the 3
 * lowered axes. */
static void geom_axes(Geom *G, int nsp, const int *k, const int *s, const int *d, const int *lo,
                      const int *hi)
{
    for (int i = 0, a = 3 - nsp; i < nsp; i++, a++) {
        G->k[a] = k[i];
        G->s[a] = s[i];
        G->d[a] = d[i];
        G->plo[a] = lo[i];
        G->phi[a] = hi[i];
    }
}

void geom_conv(Geom *G, const ConvParam *p, const Shape *xs, const Shape *ys)
{
    geom_fill(G, p->nsp, xs, ys);
    geom_axes(G, p->nsp, p->kernel, p->stride, p->dilation, p->pad_lo, p->pad_hi);
    G->groups = p->groups;
    geom_sizes(G);
    NETC_ASSERT(G->groups >= 1 && G->n_in % G->groups == 0 && G->n_out % G->groups == 0);
    NETC_ASSERT(G->n_out == p->out_channels);
    for (int a = 0; a < 3; a++)
        NETC_ASSERT(G->out[a] ==
                    (G->in[a] + G->plo[a] + G->phi[a] - G->d[a] * (G->k[a] - 1) - 1) / G->s[a] + 1);
}

bool geom_unpadded(const Geom *G)
{
    for (int a = 0; a < 3; a++)
        if (G->plo[a] || G->phi[a])
            return false;
    return true;
}

bool geom_pointwise(const Geom *G)
{
    return G->k_sz == 1 && G->s[0] == 1 && G->s[1] == 1 && G->s[2] == 1 && geom_unpadded(G);
}

void geom_pool(Geom *G, const PoolParam *p, const Shape *xs, const Shape *ys)
{
    int dil[NETC_MAX_SPATIAL];
    for (int i = 0; i < NETC_MAX_SPATIAL; i++)
        dil[i] = pool_dilation(p, i);
    geom_fill(G, p->nsp, xs, ys);
    geom_axes(G, p->nsp, p->kernel, p->stride, dil, p->pad_lo, p->pad_hi);
    G->groups = G->n_in;
    geom_sizes(G);
    NETC_ASSERT(G->n_in == G->n_out);
}

/* ---- dispatch ---- */

typedef struct {
    LowerFn *fn;        /* NULL: a source, no kernel; else the direct (or gemm) lowering */
    const char *out;    /* output buffer name               */
    const char *in[3];  /* input names; NULL past the last; variadic ops number in[0] */
    LowerFn *im2col;    /* the ALGO_IM2COL lowering, for convolutions */
    LowerFn *winograd;  /* the ALGO_WINOGRAD(2) lowering, for conv, conv_dx and conv_dw */
    LowerFn *fft;       /* the ALGO_FFT lowering, for conv, conv_dx and conv_dw */
} LowerRow;

static const LowerRow rows[] = {
    [OP_INPUT] = {NULL, NULL, {NULL}},
    [OP_PARAM] = {NULL, NULL, {NULL}},
    [OP_CONV] = {lower_conv, "y", {"x", "w", "b"}, lower_conv_im2col, lower_conv_winograd,
                  lower_conv_fft},
    [OP_MAXPOOL] = {lower_maxpool, "y", {"x"}},
    [OP_AVGPOOL] = {lower_avgpool, "y", {"x"}},
    [OP_DENSE] = {lower_dense, "y", {"x", "w", "b"}},
    [OP_FLATTEN] = {lower_copy, "y", {"x"}},
    [OP_RELU] = {lower_unary, "y", {"x"}},
    [OP_TANH] = {lower_unary, "y", {"x"}},
    [OP_SIGMOID] = {lower_unary, "y", {"x"}},
    [OP_SOFTMAX] = {lower_softmax, "y", {"x"}},
    [OP_CONCAT] = {lower_concat, "y", {"x"}},
    [OP_ADD] = {lower_arith, "y", {"x"}},
    [OP_SOFTMAX_XENT] = {lower_class_loss, "loss", {"logits", "target"}},
    [OP_MSE] = {lower_elem_loss, "loss", {"pred", "target"}},
    [OP_CONV_DX] = {lower_conv_dx, "dx", {"dy", "w"}, lower_conv_dx_im2col,
                     lower_conv_dx_winograd, lower_conv_dx_fft},
    [OP_CONV_DW] = {lower_conv_dw, "dw", {"x", "dy"}, lower_conv_dw_im2col, lower_conv_dw_winograd,
                     lower_conv_dw_fft},
    [OP_BIAS_GRAD] = {lower_bias_grad, "db", {"dy"}},
    [OP_MAXPOOL_DX] = {lower_maxpool_dx, "dx", {"x", "dy"}},
    [OP_AVGPOOL_DX] = {lower_avgpool_dx, "dx", {"dy"}},
    [OP_DENSE_DX] = {lower_dense_dx, "dx", {"dy", "w"}},
    [OP_DENSE_DW] = {lower_dense_dw, "dw", {"x", "dy"}},
    [OP_RESHAPE] = {lower_copy, "y", {"x"}},
    [OP_RELU_DX] = {lower_unary_dx, "dx", {"y", "dy"}},
    [OP_TANH_DX] = {lower_unary_dx, "dx", {"y", "dy"}},
    [OP_SIGMOID_DX] = {lower_unary_dx, "dx", {"y", "dy"}},
    [OP_SOFTMAX_DX] = {lower_softmax_dx, "dx", {"y", "dy"}},
    [OP_SLICE] = {lower_slice, "y", {"x"}},
    [OP_SOFTMAX_XENT_DX] = {lower_class_loss_dx, "dlogits", {"logits", "target"}},
    [OP_MSE_DX] = {lower_elem_loss_dx, "dpred", {"pred", "target"}},
    /* losses (issue 8) */
    [OP_NLL] = {lower_class_loss, "loss", {"logprobs", "target"}},
    [OP_BCE_LOGITS] = {lower_elem_loss, "loss", {"logits", "target"}},
    [OP_L1] = {lower_elem_loss, "loss", {"pred", "target"}},
    [OP_SMOOTH_L1] = {lower_elem_loss, "loss", {"pred", "target"}},
    [OP_NLL_DX] = {lower_class_loss_dx, "dlogprobs", {"logprobs", "target"}},
    [OP_BCE_LOGITS_DX] = {lower_elem_loss_dx, "dlogits", {"logits", "target"}},
    [OP_L1_DX] = {lower_elem_loss_dx, "dpred", {"pred", "target"}},
    [OP_SMOOTH_L1_DX] = {lower_elem_loss_dx, "dpred", {"pred", "target"}},
    /* activations and element-wise arithmetic (lower_act.c) */
    [OP_LEAKY_RELU] = {lower_act, "y", {"x"}},
    [OP_PRELU] = {lower_prelu, "y", {"x", "w"}},
    [OP_ELU] = {lower_act, "y", {"x"}},
    [OP_SELU] = {lower_act, "y", {"x"}},
    [OP_SOFTPLUS] = {lower_act, "y", {"x"}},
    [OP_HARD_SIGMOID] = {lower_act, "y", {"x"}},
    [OP_HARD_SWISH] = {lower_act, "y", {"x"}},
    [OP_RELU6] = {lower_act, "y", {"x"}},
    [OP_CLIP] = {lower_act, "y", {"x"}},
    [OP_LOG_SOFTMAX] = {lower_log_softmax, "y", {"x"}},
    [OP_ACT_DX] = {lower_act_dx, "dx", {"x", "dy"}},
    [OP_PRELU_DX] = {lower_prelu_dx, "dx", {"x", "w", "dy"}},
    [OP_PRELU_DW] = {lower_prelu_dw, "dw", {"x", "dy"}},
    [OP_LOG_SOFTMAX_DX] = {lower_log_softmax_dx, "dx", {"y", "dy"}},
    [OP_SUB] = {lower_arith, "y", {"a", "b"}},
    [OP_MUL] = {lower_arith, "y", {"a", "b"}},
    [OP_BCAST_DX] = {lower_bcast_dx, "dx", {"dy", "other"}},
    /* normalisation and regularisation (lower_norm.c); batchnorm's
     * parameter inputs are named by their role */
    [OP_BATCHNORM] = {lower_batchnorm, "y", {"x"}},
    [OP_LRN] = {lower_lrn, "y", {"x"}},
    [OP_DROPOUT] = {lower_dropout, "y", {"x", "step"}},
    [OP_DROPOUT2D] = {lower_dropout, "y", {"x", "step"}},
    [OP_BATCHNORM_DX] = {lower_batchnorm_dx, "dx", {"x", "dy", "w"}},
    [OP_BATCHNORM_DW] = {lower_batchnorm_dw, "dw", {"x", "dy"}},
    [OP_RUNNING_STAT] = {lower_running_stat, "next", {"x", "state"}},
    [OP_STEP_COUNT] = {lower_step_count, "next", {"count"}},
    [OP_LRN_DX] = {lower_lrn_dx, "dx", {"x", "dy"}},
    [OP_DROPOUT_DX] = {lower_dropout_dx, "dx", {"dy", "step"}},
    /* pooling and data movement */
    [OP_GLOBAL_AVGPOOL] = {lower_avgpool, "y", {"x"}},
    [OP_GLOBAL_MAXPOOL] = {lower_maxpool, "y", {"x"}},
    [OP_ADAPTIVE_AVGPOOL] = {lower_adaptive_avgpool, "y", {"x"}},
    [OP_PAD] = {lower_pad, "y", {"x"}},
    [OP_UPSAMPLE] = {lower_upsample, "y", {"x"}},
    [OP_PIXEL_SHUFFLE] = {lower_permute, "y", {"x"}},
    [OP_PIXEL_UNSHUFFLE] = {lower_permute, "y", {"x"}},
    [OP_DEPTH_TO_SPACE] = {lower_permute, "y", {"x"}},
    [OP_SPACE_TO_DEPTH] = {lower_permute, "y", {"x"}},
    [OP_CHANNEL_SHUFFLE] = {lower_permute, "y", {"x"}},
    [OP_ADAPTIVE_AVGPOOL_DX] = {lower_adaptive_avgpool_dx, "dx", {"dy"}},
    [OP_PAD_DX] = {lower_pad_dx, "dx", {"dy"}},
    [OP_UPSAMPLE_DX] = {lower_upsample_dx, "dx", {"dy"}},
    [OP_PERMUTE] = {lower_permute, "dx", {"dy"}},
    [OP_SLICE_DX] = {lower_slice_dx, "dx", {"dy"}},
    /* dense and matmul (lower_dense.c) */
    [OP_DENSE_DB] = {lower_dense_db, "db", {"dy"}},
    [OP_MATMUL] = {lower_matmul, "y", {"a", "b"}},
    [OP_MATMUL_DA] = {lower_matmul_da, "da", {"dy", "b"}},
    [OP_MATMUL_DB] = {lower_matmul_db, "db", {"a", "dy"}},
    /* transposed convolution (lower_convt.c) */
    [OP_CONV_TRANSPOSE] = {lower_conv_transpose, "y", {"x", "w", "b"}, lower_conv_transpose_im2col},
};
_Static_assert(sizeof rows / sizeof rows[0] == OP_COUNT, "lower.c rows out of sync with ops.def");

static void put_shape(Buf *b, const Shape *s)
{
    buf_puts(b, "[");
    const char *sep = "";
    if (s->batched) {
        buf_puts(b, "N");
        sep = ", ";
    }
    for (int i = 0; i < s->rank; i++) {
        buf_printf(b, "%s%d", sep, s->d[i]);
        sep = ", ";
    }
    buf_puts(b, "]");
}

/* "c1: conv([N, 1, 28, 28], [6, 1, 5, 5], [6]) -> [N, 6, 24, 24]"; a layer
 * with a folded batchnorm says so, and n is then its stand-in (see
 * lower_node_mode). */
static const char *comment_of(Arena *a, const Graph *g, const Node *n)
{
    Buf b = {0};
    buf_printf(&b, "%s: %s(", n->name, op_name(n->op));
    for (int i = 0; i < n->nin; i++) {
        if (i)
            buf_puts(&b, ", ");
        put_shape(&b, &graph_node(g, n->in[i])->shape);
    }
    buf_puts(&b, ") -> ");
    put_shape(&b, &n->shape);
    if (n->bn_fold >= 0 && n != g->node[n->id])
        buf_printf(&b, ", then %s (folded: weight and bias from it)", graph_node(g, n->bn_fold)->name);
    if (n->epi.add >= 0 || n->epi.act >= 0)
        buf_printf(&b, ", then %s%s%s (fused)", n->epi.add >= 0 ? "add" : "",
                   n->epi.add >= 0 && n->epi.act >= 0 ? ", " : "",
                   n->epi.act >= 0 ? op_name(graph_node(g, n->epi.act)->op) : "");
    if (n->shuf_out)
        buf_printf(&b, ", then channel_shuffle(%d) (folded)", n->shuf_out);
    if (n->shuf_in)
        buf_printf(&b, ", of channel_shuffle(%d) (folded)", n->shuf_in);
    char *s = arena_strdup(a, b.s);
    buf_free(&b);
    return s;
}

Kernel *lower_node(Arena *a, const Model *m, const Sched *s, const Target *t, int id)
{
    return lower_node_mode(a, m, s, t, id, false);
}

/* An input's buffer name: the epilogue's (res, act_y or act_x), the
 * row's, else (parameters past the row's names) the parameter's role. */
static const char *input_name(Arena *a, const LowerRow *r, const Graph *g, const Node *n, int i)
{
    int own = node_own_nin(n);
    if (i >= own) {
        if (i == own && n->epi.add >= 0)
            return "res";
        return graph_node(g, n->epi.act)->op == OP_ACT_DX ? "act_x" : "act_y";
    }
    int named = 0;
    while (named < 3 && r->in[named])
        named++;
    /* concat, add: one name, numbered */
    bool variadic = op_arity(n->op) < 0 && !(op_flags(n->op) & OPF_HAS_PARAMS) && named == 1;
    if (variadic)
        return arena_printf(a, "%s%d", r->in[0], i);
    if (i < named)
        return r->in[i];
    const Node *in = graph_node(g, n->in[i]);
    NETC_ASSERT(in->op == OP_PARAM);
    return in->p.param.role;
}

Kernel *lower_node_mode(Arena *a, const Model *m, const Sched *s, const Target *t, int id,
                        bool training)
{
    NETC_ASSERT(s);
    return lower_node_algo(a, m, s[id].algo, t, id, training);
}

int lower_fold_inputs(const Graph *g, int layer, int in[LOWER_FOLD_INPUTS])
{
    const Node *n = graph_node(g, layer), *bn = graph_node(g, n->bn_fold);
    int own = node_own_nin(bn);
    NETC_ASSERT(bn->epi.nin <= LOWER_FOLD_INPUTS - 3);
    in[0] = n->in[0];
    in[1] = n->in[1];
    in[2] = bn->in[own - 2]; /* b' has running_mean's shape [C] */
    for (int j = 0; j < bn->epi.nin; j++)
        in[3 + j] = bn->in[own + j];
    return 3 + bn->epi.nin;
}

Kernel *lower_node_algo(Arena *a, const Model *m, Algo algo, const Target *t, int id, bool training)
{
    const Node *n = graph_node(m->g, id);
    const LowerRow *r = &rows[n->op];
    if (!r->fn) {
        NETC_ASSERT(op_flags(n->op) & OPF_SOURCE);
        return NULL;
    }
    bool gemm = n->op == OP_DENSE || n->op == OP_DENSE_DX || n->op == OP_DENSE_DW ||
                n->op == OP_MATMUL || n->op == OP_MATMUL_DA || n->op == OP_MATMUL_DB;
    bool winograd = algo == ALGO_WINOGRAD || algo == ALGO_WINOGRAD2;
    NETC_ASSERT(algo == (gemm ? ALGO_GEMM : ALGO_DIRECT) || (algo == ALGO_IM2COL && r->im2col) ||
                (winograd && r->winograd) || (algo == ALGO_FFT && r->fft));
    NETC_ASSERT(op_arity(n->op) < 0 || node_own_nin(n) == op_arity(n->op) ||
                (n->op == OP_CONV || n->op == OP_DENSE));

    NETC_ASSERT(t);
    /* Batch-norm folding (graph/fold_bn.c), in inference: the batchnorm's
     * kernel computes the folded weight and bias, and the conv is lowered
     * as a stand-in with a bias input (b' has running_mean's shape [C]) and
     * the activation after the batchnorm as its epilogue; program.c binds
     * its weight and bias buffers to the folded ones. */
    if (!training && n->op == OP_BATCHNORM && n->bn_into >= 0) {
        Lower L = {.a = a, .g = m->g, .n = n, .algo = algo, .t = t};
        L.k = kernel_new(a, arena_printf(a, "k%d_batchnorm_fold", id),
                         arena_printf(a, "%s: batchnorm folded into the weight and bias of %s", n->name,
                                      graph_node(m->g, n->bn_into)->name));
        lower_batchnorm_fold(&L);
        return L.k;
    }
    Node stand_in;
    int stand_in_inputs[LOWER_FOLD_INPUTS];
    bool folded = !training && n->bn_fold >= 0;
    int host = id; /* the node whose value the epilogue's add reads */
    if (folded) {
        /* the batchnorm's own epilogue (fuse.c: a residual add, its
         * activation, with the add's operand appended to its inputs), or
         * the activation after it (fold_bn.c) */
        const Node *bn = graph_node(m->g, n->bn_fold);
        NETC_ASSERT(n->epi.add < 0 && n->epi.act < 0 && n->epi.nin == 0);
        stand_in = *n;
        stand_in.in = stand_in_inputs;
        stand_in.nin = lower_fold_inputs(m->g, id, stand_in_inputs);
        stand_in.epi = bn->epi;
        if (bn->epi.add < 0 && bn->epi.act < 0)
            stand_in.epi.act = n->bn_epi;
        stand_in.p.conv.bias = true;
        host = bn->id;
        n = &stand_in;
    }
    training &= (op_flags(n->op) & OPF_MODE) != 0;
    /* the epilogue's buffers follow the node's own inputs, in fuse.c's order */
    Epi epi = {-1, false, NULL, -1};
    int eb = 1 + node_own_nin(n);
    if (n->epi.add >= 0) {
        epi.res = eb++;
        epi.res_first = graph_node(m->g, n->epi.add)->in[0] != host;
    }
    if (n->epi.act >= 0) {
        epi.act = graph_node(m->g, n->epi.act);
        epi.aux = fuse_activation(epi.act->op) ? -1 : eb++;
    }
    NETC_ASSERT(eb == 1 + n->nin);
    Lower L = {.a = a, .g = m->g, .n = n, .algo = algo, .t = t, .training = training,
               .epi = n->epi.add >= 0 || n->epi.act >= 0 ? &epi : NULL};
    L.k = kernel_new(a, arena_printf(a, "k%d_%s%s", id, op_name(n->op),
                                     training ? "_train" : folded ? "_folded" : ""),
                     comment_of(a, m->g, n));
    lbuf(&L, r->out, id, true);
    for (int i = 0; i < n->nin; i++)
        lbuf(&L, input_name(a, r, m->g, n, i), n->in[i], false);
    (algo == ALGO_IM2COL ? r->im2col : winograd ? r->winograd : algo == ALGO_FFT ? r->fft : r->fn)(&L);
    if (L.epi && !L.epi_done)
        lepilogue_pass(&L);
    return L.k;
}
