/* lower_misc.c - elementwise ops, softmax and the losses, with their
 * gradients (dense layers are in lower_gemm.c, concat and slice in
 * lower_move.c).
 *
 * Elementwise kernels are one flat loop over every element of the batch
 * (n * numel), which the C compiler vectorises.  Reductions over the batch
 * (the losses) accumulate in a float local and store once.
 */
#include "lower_impl.h"

/* Elements of value `id` across the batch: n*numel or numel. */
static Expr *total_of(Lower *L, int id)
{
    Expr *e = li(L, lnumel(L, id));
    return graph_node(L->g, id)->shape.batched ? lmul(L, lbatch(L), e) : e;
}

/* A flat loop over all elements of the output; returns its body and index. */
static Stmt *flat_loop(Lower *L, Expr **i)
{
    Stmt *p = L->k->body;
    *i = lfor(L, &p, "i", li(L, 0), total_of(L, L->n->id));
    return p;
}

static void check_same(const Lower *L, int id)
{
    const Shape *a = &graph_node(L->g, id)->shape, *b = &L->n->shape;
    NETC_ASSERT(a->batched == b->batched && shape_numel(a) == shape_numel(b));
}

/* ---- elementwise ---- */

/* flatten, reshape: the same elements in the same order */
void lower_copy(Lower *L)
{
    enum { Y, X };
    check_same(L, lin(L, 0)->id);
    Expr *i;
    Stmt *p = flat_loop(L, &i);
    lstore(L, p, Y, i, lload(L, X, i), false);
}

/* y = relu(x) | tanh(x) | sigmoid(x) */
void lower_unary(Lower *L)
{
    enum { Y, X };
    check_same(L, lin(L, 0)->id);
    Expr *i;
    Stmt *p = flat_loop(L, &i);
    Expr *x = lload(L, X, i), *v = NULL;
    switch (L->n->op) {
    case OP_RELU:
        /* x < 0 ? 0 : x keeps a NaN, as PyTorch's relu does */
        v = ex_select(L->a, ex_bin(L->a, X_LT, x, lf(L, 0.0f)), lf(L, 0.0f), x);
        break;
    case OP_TANH:
        v = ex_un(L->a, X_TANH, x);
        break;
    case OP_SIGMOID:
        v = fdiv(L, lf(L, 1.0f), fadd(L, lf(L, 1.0f), ex_un(L->a, X_EXP, ex_un(L->a, X_NEG, x))));
        break;
    default:
        NETC_ASSERT(!"lower_unary: not a unary op");
    }
    lstore(L, p, Y, i, v, false);
}

/* dx from the forward output y and dy: relu dy*(y > 0), tanh dy*(1 - y^2),
 * sigmoid dy*(1 - y)*y */
void lower_unary_dx(Lower *L)
{
    enum { DX, Y, DY };
    check_same(L, lin(L, 0)->id);
    check_same(L, lin(L, 1)->id);
    Expr *i;
    Stmt *p = flat_loop(L, &i);
    Expr *y = lload(L, Y, i), *dy = lload(L, DY, i), *v = NULL;
    Expr *one = lf(L, 1.0f);
    switch (L->n->op) {
    case OP_RELU_DX:
        v = ex_select(L->a, ex_bin(L->a, X_LE, y, lf(L, 0.0f)), lf(L, 0.0f), dy);
        break;
    case OP_TANH_DX:
        v = fmul(L, dy, fsub(L, one, fmul(L, y, y)));
        break;
    case OP_SIGMOID_DX:
        v = fmul(L, fmul(L, dy, fsub(L, one, y)), y);
        break;
    default:
        NETC_ASSERT(!"lower_unary_dx: not a unary gradient");
    }
    lstore(L, p, DX, i, v, false);
}

/* y = x0 + x1 + ... (same shapes) */
void lower_add(Lower *L)
{
    NETC_ASSERT(L->n->nin >= 1);
    Expr *i;
    Stmt *p = flat_loop(L, &i);
    Expr *v = NULL;
    for (int j = 0; j < L->n->nin; j++) {
        check_same(L, lin(L, j)->id);
        Expr *x = lload(L, 1 + j, i);
        v = v ? fadd(L, v, x) : x;
    }
    lstore(L, p, 0, i, v, false);
}

/* ---- softmax over channels ---- */

/* Channels C and positions S per channel of a batched value [C, S...]. */
static void chan_split(const Lower *L, int id, int *C, int *S)
{
    const Shape *s = &graph_node(L->g, id)->shape;
    NETC_ASSERT(s->batched && s->rank >= 1);
    *C = s->d[0];
    *S = lnumel(L, id) / *C;
}

/* The running maximum of buf[base + c*stride] over c in [0, C). */
static int chan_max(Lower *L, Stmt *p, int buf, Expr *base, int C, int stride)
{
    int m = ldecl(L, p, "m", T_F32, lload(L, buf, base));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 1), li(L, C));
    Expr *v = lvar(L, ldecl(L, q, "v", T_F32, lload(L, buf, lmad(L, c, stride, base))));
    lassign(L, q, m, ex_select(L->a, ex_bin(L->a, X_LT, lvar(L, m), v), v, lvar(L, m)));
    return m;
}

/* y [N, C, S] = exp(x - max_c x) / sum_c exp(x - max_c x), per (n, s) */
void lower_softmax(Lower *L)
{
    enum { Y, X };
    int C, S;
    chan_split(L, L->n->id, &C, &S);
    check_same(L, lin(L, 0)->id);
    Stmt *p = L->k->body;
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *s = lfor(L, &p, "s", li(L, 0), li(L, S));
    Expr *base = lbind(L, p, "base", lmad(L, nb, C * S, s));
    Expr *m = lvar(L, chan_max(L, p, X, base, C, S));
    int sum = ldecl(L, p, "sum", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *idx = lmad(L, c, S, base);
    Expr *e = lvar(L, ldecl(L, q, "e", T_F32, ex_un(L->a, X_EXP, fsub(L, lload(L, X, idx), m))));
    lstore(L, q, Y, idx, e, false);
    lassign(L, q, sum, fadd(L, lvar(L, sum), e));
    q = p;
    c = lfor(L, &q, "c", li(L, 0), li(L, C));
    idx = lmad(L, c, S, base);
    lstore(L, q, Y, idx, fdiv(L, lload(L, Y, idx), lvar(L, sum)), false);
}

/* dx = y * (dy - sum_c y*dy), per (n, s) */
void lower_softmax_dx(Lower *L)
{
    enum { DX, Y, DY };
    int C, S;
    chan_split(L, L->n->id, &C, &S);
    check_same(L, lin(L, 0)->id);
    check_same(L, lin(L, 1)->id);
    Stmt *p = L->k->body;
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *s = lfor(L, &p, "s", li(L, 0), li(L, S));
    Expr *base = lbind(L, p, "base", lmad(L, nb, C * S, s));
    int dot = ldecl(L, p, "dot", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *idx = lmad(L, c, S, base);
    lassign(L, q, dot, fadd(L, lvar(L, dot), fmul(L, lload(L, Y, idx), lload(L, DY, idx))));
    q = p;
    c = lfor(L, &q, "c", li(L, 0), li(L, C));
    idx = lmad(L, c, S, base);
    lstore(L, q, DX, idx, fmul(L, lload(L, Y, idx), fsub(L, lload(L, DY, idx), lvar(L, dot))), false);
}

/* ---- losses ---- */

/* For one sample's logits at lb: m = max, s = sum exp(l - m), t = target
 * class.  The class is clamped into [0, K) so a bad label cannot make the
 * generated code read out of bounds. */
static void xent_sample(Lower *L, Stmt *p, Expr *nb, Expr *lb, int K, Expr **m, Expr **s, Expr **t)
{
    enum { LOGITS = 1, TARGET = 2 };
    *m = lvar(L, chan_max(L, p, LOGITS, lb, K, 1));
    int sum = ldecl(L, p, "s", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *k = lfor(L, &q, "k", li(L, 0), li(L, K));
    lassign(L, q, sum,
            fadd(L, lvar(L, sum), ex_un(L->a, X_EXP, fsub(L, lload(L, LOGITS, ladd(L, lb, k)), *m))));
    *s = lvar(L, sum);
    Expr *cls = ex_un(L->a, X_F2I, lload(L, TARGET, nb));
    *t = lvar(L, ldecl(L, p, "t", T_I32, lmin(L, lmax(L, cls, li(L, 0)), li(L, K - 1))));
}

static int xent_classes(const Lower *L)
{
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == 1);
    return lnumel(L, lin(L, 0)->id);
}

/* loss = mean over n of logsumexp(logits[n]) - logits[n, target[n]] */
void lower_xent(Lower *L)
{
    enum { LOSS, LOGITS };
    int K = xent_classes(L);
    Stmt *p = L->k->body;
    int total = ldecl(L, p, "total", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    Expr *lb = lbind(L, q, "lb", lmul(L, nb, li(L, K)));
    Expr *m, *s, *t;
    xent_sample(L, q, nb, lb, K, &m, &s, &t);
    Expr *term = fsub(L, fadd(L, ex_un(L->a, X_LOG, s), m), lload(L, LOGITS, ladd(L, lb, t)));
    lassign(L, q, total, fadd(L, lvar(L, total), term));
    lstore(L, p, LOSS, li(L, 0), fdiv(L, lvar(L, total), ex_un(L->a, X_I2F, lbatch(L))), false);
}

/* dlogits [N, K] = (softmax(logits) - onehot(target)) / n */
void lower_xent_dx(Lower *L)
{
    enum { DL, LOGITS };
    int K = xent_classes(L);
    Stmt *p = L->k->body;
    Expr *fn = lvar(L, ldecl(L, p, "fn", T_F32, ex_un(L->a, X_I2F, lbatch(L))));
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *lb = lbind(L, p, "lb", lmul(L, nb, li(L, K)));
    Expr *m, *s, *t;
    xent_sample(L, p, nb, lb, K, &m, &s, &t);
    Expr *k = lfor(L, &p, "k", li(L, 0), li(L, K));
    Expr *sm = fdiv(L, ex_un(L->a, X_EXP, fsub(L, lload(L, LOGITS, ladd(L, lb, k)), m)), s);
    Expr *hot = ex_select(L->a, ex_bin(L->a, X_EQ, k, t), lf(L, 1.0f), lf(L, 0.0f));
    lstore(L, p, DL, ladd(L, lb, k), fdiv(L, fsub(L, sm, hot), fn), false);
}

/* loss = mean over all n*numel elements of (pred - target)^2 */
void lower_mse(Lower *L)
{
    enum { LOSS, PRED, TARGET };
    const Node *pred = lin(L, 0);
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == lnumel(L, pred->id));
    Stmt *p = L->k->body;
    int total = ldecl(L, p, "total", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *i = lfor(L, &q, "i", li(L, 0), total_of(L, pred->id));
    Expr *d = lvar(L, ldecl(L, q, "d", T_F32, fsub(L, lload(L, PRED, i), lload(L, TARGET, i))));
    lassign(L, q, total, fadd(L, lvar(L, total), fmul(L, d, d)));
    Expr *count = ex_un(L->a, X_I2F, total_of(L, pred->id));
    lstore(L, p, LOSS, li(L, 0), fdiv(L, lvar(L, total), count), false);
}

/* dpred = 2 (pred - target) / (n*numel) */
void lower_mse_dx(Lower *L)
{
    enum { DP, PRED, TARGET };
    check_same(L, lin(L, 0)->id);
    check_same(L, lin(L, 1)->id);
    Stmt *p = L->k->body;
    Expr *count = ex_un(L->a, X_I2F, total_of(L, L->n->id));
    Expr *scale = lvar(L, ldecl(L, p, "scale", T_F32, fdiv(L, lf(L, 2.0f), count)));
    Expr *i;
    p = flat_loop(L, &i);
    lstore(L, p, DP, i, fmul(L, scale, fsub(L, lload(L, PRED, i), lload(L, TARGET, i))), false);
}
