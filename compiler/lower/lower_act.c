/* lower_act.c - activations and element-wise arithmetic, with their
 * gradients, and the fused epilogues of graph/fuse.c.
 *
 * Needs: shape-checked nodes of the activation layers (leaky_relu, prelu,
 * elu, selu, softplus, hard_sigmoid, hard_swish, relu6, clip, log_softmax),
 * of add/sub/mul and of their gradient ops (act_dx, prelu_dx, prelu_dw,
 * log_softmax_dx, bcast_dx).  Provides their lowerings (lower_impl.h), and
 * lact / lact_grad: the one formula of each element-wise activation and of
 * its gradient (relu, tanh and sigmoid too, for lower_misc.c), on floats or
 * vectors, which the unfused kernels and the epilogues (lepi,
 * lepilogue_pass) share, so that fusing changes no bit.
 *
 * The formulas, kinks included, are PyTorch's CPU kernels: at x = 0
 * leaky_relu, prelu and elu take the negative side; relu6 (Hardtanh) has
 * gradient 0 at 0 and 6, clip (torch.clamp) gradient 1 at its bounds.
 *
 * Element-wise kernels are one unit-stride loop marked indep, so the
 * parallelise pass (and a vectoriser) may take them.  Broadcasting
 * arithmetic merges the output's axes into runs along which every input is
 * either whole or broadcast, and loops over those runs (all indep), the
 * innermost unit-stride in the output; an input's stride along a run it is
 * broadcast over is 0.  bcast_dx loops over dx's runs outside and sums
 * dy over the broadcast runs inside, in order, in a local.
 *
 *   %3 = mul(%1, %2) [N, 4, 6, 6]  with %2 [N, 4, 1, 1]
 *     for nb in [0, n) indep:
 *       for k0 in [0, 4) indep:
 *         for k1 in [0, 36) indep:
 *           y[nb*144 + k0*36 + k1] = a[nb*144 + k0*36 + k1] * b[nb*4 + k0]
 */
#include <string.h>

#include "lower_impl.h"

/* torch.nn.SELU's constants */
#define SELU_ALPHA 1.6732632423543772848170429916717f
#define SELU_SCALE 1.0507009873554804934193349852946f

/* ---- small expression helpers (floats, or vectors like x) ---- */

static Expr *lt(Lower *L, Expr *x, Expr *y)
{
    return ex_bin(L->a, X_LT, x, y);
}

static Expr *le(Lower *L, Expr *x, Expr *y)
{
    return ex_bin(L->a, X_LE, x, y);
}

static Expr *sel(Lower *L, Expr *c, Expr *t, Expr *f)
{
    return ex_select(L->a, c, t, f);
}

/* c1 && c2 ? t : f; a vector select takes one comparison, so vectors
 * nest two selects (the same lanes) */
static Expr *sel_and(Lower *L, Expr *c1, Expr *c2, Expr *t, Expr *f)
{
    if (t->t == T_V32)
        return sel(L, c1, sel(L, c2, t, f), f);
    return sel(L, ex_bin(L->a, X_AND, c1, c2), t, f);
}

static Expr *fexp(Lower *L, Expr *x)
{
    return ex_un(L->a, X_EXP, x);
}

/* The constant v as a float, or in every lane when `like` is a vector. */
static Expr *cst(Lower *L, const Expr *like, float v)
{
    return like->t == T_V32 ? ex_bcast(L->a, lf(L, v)) : lf(L, v);
}

static Expr *fmaxf_(Lower *L, Expr *x, float v)
{
    return ex_bin(L->a, X_MAX, x, cst(L, x, v));
}

static Expr *fminf_(Lower *L, Expr *x, float v)
{
    return ex_bin(L->a, X_MIN, x, cst(L, x, v));
}

/* A local holding e (a float or a vector), so a value used several times
 * is loaded once. */
static Expr *flocal(Lower *L, Stmt *p, const char *name, Expr *e)
{
    return lvar(L, ldecl(L, p, name, e->t == T_V32 ? T_V32 : T_F32, e));
}

/* One indep loop over every element of the (batched) output. */
static Stmt *flat_indep(Lower *L, Expr **i)
{
    Stmt *p = L->k->body;
    Expr *count = lmul(L, lbatch(L), li(L, lnumel(L, L->n->id)));
    *i = lfor_indep(L, &p, "i", li(L, 0), count);
    return p;
}

static void check_like(const Lower *L, int id)
{
    const Shape *a = &graph_node(L->g, id)->shape, *b = &L->n->shape;
    NETC_ASSERT(a->batched && b->batched && shape_eq(a, b));
}

void axis_split(const Lower *L, int id, int axis, int *outer, int *C, int *S)
{
    const Shape *s = &graph_node(L->g, id)->shape;
    NETC_ASSERT(s->batched && axis >= 0 && axis < s->rank);
    *outer = *S = 1;
    for (int k = 0; k < axis; k++)
        *outer *= s->d[k];
    for (int k = axis + 1; k < s->rank; k++)
        *S *= s->d[k];
    *C = s->d[axis];
}

/* ---- activations ---- */

static Expr *scaled(Lower *L, Expr *x, float scale)
{
    return scale == 1.0f ? x : fmul(L, x, cst(L, x, scale));
}

/* negative side of elu and selu: (exp(x) - 1) * alpha*scale */
static Expr *elu_neg(Lower *L, Expr *x, float alpha, float scale)
{
    return scaled(L, fsub(L, fexp(L, x), lf(L, 1.0f)), alpha * scale);
}

/* Whether activation op (or the one act_dx differentiates) is computed
 * with exp, log or tanh, which have no vector form. */
static bool needs_libm(Op op)
{
    return op == OP_TANH || op == OP_SIGMOID || op == OP_ELU || op == OP_SELU || op == OP_SOFTPLUS;
}

Expr *lact(Lower *L, Stmt *p, const Node *act, Expr *x)
{
    const ActParam *a = &act->p.act;
    if (x->t == T_V32 && needs_libm(act->op))
        return NULL;
    Expr *zero = cst(L, x, 0.0f);
    bool selu = act->op == OP_SELU;
    switch (act->op) {
    case OP_RELU:
        /* x < 0 ? 0 : x keeps a NaN, as PyTorch's relu does; max(0, x) =
         * 0 > x ? 0 : x, lane by lane, is the same bits, NaN and -0.0 included */
        if (x->t == T_V32)
            return ex_bin(L->a, X_MAX, zero, x);
        return sel(L, lt(L, x, zero), zero, x);
    case OP_TANH:
        return ex_un(L->a, X_TANH, x);
    case OP_SIGMOID:
        return fdiv(L, lf(L, 1.0f), fadd(L, lf(L, 1.0f), fexp(L, ex_un(L->a, X_NEG, x))));
    case OP_LEAKY_RELU:
        return sel(L, lt(L, zero, x), x, fmul(L, x, cst(L, x, a->a)));
    case OP_ELU:
    case OP_SELU:
        return sel(L, lt(L, zero, x), scaled(L, x, selu ? SELU_SCALE : 1.0f),
                   elu_neg(L, x, selu ? SELU_ALPHA : a->a, selu ? SELU_SCALE : 1.0f));
    case OP_SOFTPLUS: {
        /* beta*x > threshold ? x : log(1 + exp(beta*x)) / beta */
        Expr *bx = flocal(L, p, "bx", fmul(L, x, lf(L, a->a)));
        Expr *soft = fdiv(L, ex_un(L->a, X_LOG, fadd(L, lf(L, 1.0f), fexp(L, bx))), lf(L, a->a));
        return sel(L, lt(L, lf(L, a->b), bx), x, soft);
    }
    case OP_HARD_SIGMOID:
        return fdiv(L, fminf_(L, fmaxf_(L, fadd(L, x, cst(L, x, 3.0f)), 0.0f), 6.0f), cst(L, x, 6.0f));
    case OP_HARD_SWISH:
        return fdiv(L, fmul(L, x, fminf_(L, fmaxf_(L, fadd(L, x, cst(L, x, 3.0f)), 0.0f), 6.0f)),
                    cst(L, x, 6.0f));
    case OP_RELU6:
        return fminf_(L, fmaxf_(L, x, 0.0f), 6.0f);
    case OP_CLIP:
        return fminf_(L, fmaxf_(L, x, a->a), a->b);
    default:
        NETC_ASSERT(!"lact: not an activation");
        return NULL;
    }
}

Expr *lact_grad(Lower *L, Stmt *p, const Node *g, Expr *x, Expr *dy)
{
    const ActParam *a = &g->p.act;
    Op fwd = g->op == OP_ACT_DX ? a->fwd : OP_COUNT;
    if (dy->t == T_V32 && needs_libm(fwd))
        return NULL;
    Expr *zero = cst(L, dy, 0.0f), *one = cst(L, dy, 1.0f);
    switch (g->op) {
    /* from the forward output y (x here): relu dy*(y > 0), tanh dy*(1 - y^2),
     * sigmoid dy*(1 - y)*y */
    case OP_RELU_DX:
        return sel(L, le(L, x, zero), zero, dy);
    case OP_TANH_DX:
        return fmul(L, dy, fsub(L, one, fmul(L, x, x)));
    case OP_SIGMOID_DX:
        return fmul(L, fmul(L, dy, fsub(L, one, x)), x);
    case OP_ACT_DX:
        break;
    default:
        NETC_ASSERT(!"lact_grad: not an activation gradient");
    }
    bool selu = fwd == OP_SELU;
    switch (fwd) {
    case OP_LEAKY_RELU:
        dy = flocal(L, p, "g", dy);
        return sel(L, lt(L, zero, x), dy, fmul(L, dy, cst(L, dy, a->a)));
    case OP_ELU:
    case OP_SELU: {
        float alpha = selu ? SELU_ALPHA : a->a, scale = selu ? SELU_SCALE : 1.0f;
        dy = flocal(L, p, "g", dy);
        return sel(L, lt(L, zero, x), scaled(L, dy, scale), fmul(L, scaled(L, dy, alpha * scale), fexp(L, x)));
    }
    case OP_SOFTPLUS: {
        /* beta*x > threshold ? dy : dy * z / (z + 1), z = exp(beta*x) */
        Expr *bx = flocal(L, p, "bx", fmul(L, x, lf(L, a->a)));
        Expr *z = flocal(L, p, "z", fexp(L, bx));
        dy = flocal(L, p, "g", dy);
        return sel(L, lt(L, lf(L, a->b), bx), dy, fdiv(L, fmul(L, dy, z), fadd(L, z, lf(L, 1.0f))));
    }
    case OP_HARD_SIGMOID:
        return sel_and(L, lt(L, cst(L, x, -3.0f), x), lt(L, x, cst(L, x, 3.0f)),
                       fmul(L, dy, cst(L, dy, 1.0f / 6.0f)), zero);
    case OP_HARD_SWISH: {
        /* x < -3: 0; x <= 3: dy * (x/3 + 1/2); else dy */
        dy = flocal(L, p, "g", dy);
        Expr *mid = fmul(L, dy, fadd(L, fdiv(L, x, cst(L, x, 3.0f)), cst(L, x, 0.5f)));
        return sel(L, lt(L, x, cst(L, x, -3.0f)), zero, sel(L, le(L, x, cst(L, x, 3.0f)), mid, dy));
    }
    case OP_RELU6:
        return sel_and(L, lt(L, zero, x), lt(L, x, cst(L, x, 6.0f)), dy, zero);
    case OP_CLIP:
        return sel_and(L, le(L, cst(L, x, a->a), x), le(L, x, cst(L, x, a->b)), dy, zero);
    default:
        NETC_ASSERT(!"lact_grad: not an activation");
        return NULL;
    }
}

/* y = f(x) for the activations of one input and no parameter */
void lower_act(Lower *L)
{
    enum { Y, X };
    check_like(L, lin(L, 0)->id);
    Expr *i;
    Stmt *p = flat_indep(L, &i);
    Expr *x = flocal(L, p, "v", lload(L, X, i));
    lstore(L, p, Y, i, lact(L, p, L->n, x), false);
}

/* dx = f'(x) * dy, with f the activation p.act.fwd */
void lower_act_dx(Lower *L)
{
    enum { DX, X, DY };
    check_like(L, lin(L, 0)->id);
    check_like(L, lin(L, 1)->id);
    Expr *i;
    Stmt *p = flat_indep(L, &i);
    Expr *x = flocal(L, p, "v", lload(L, X, i));
    lstore(L, p, DX, i, lact_grad(L, p, L->n, x, lload(L, DY, i)), false);
}

/* ---- epilogues ---- */

bool lepi_vector(const Epi *e)
{
    if (!e || !e->act)
        return true;
    Op op = e->act->op == OP_ACT_DX ? e->act->p.act.fwd : e->act->op;
    return !needs_libm(op);
}

Expr *lepi(Lower *L, Stmt *p, const Epi *e, Expr *v, Expr *idx)
{
    bool vec = v->t == T_V32;
    if (vec && !lepi_vector(e))
        return NULL;
    if (e->res >= 0) {
        Expr *r = vec ? ex_vload(L->a, e->res, idx) : lload(L, e->res, idx);
        v = e->res_first ? fadd(L, r, v) : fadd(L, v, r);
    }
    if (!e->act)
        return v;
    if (e->aux < 0) {
        /* an activation may read its argument several times: a sum once */
        if (v->k != X_VAR && v->k != X_LOAD)
            v = flocal(L, p, "e", v);
        return lact(L, p, e->act, v);
    }
    Expr *a = flocal(L, p, "v", vec ? ex_vload(L->a, e->aux, idx) : lload(L, e->aux, idx));
    return lact_grad(L, p, e->act, a, v);
}

void lepilogue_pass(Lower *L)
{
    Expr *i;
    Stmt *p = flat_indep(L, &i);
    lstore(L, p, 0, i, lepi(L, p, L->epi, lload(L, 0, i), i), false);
}

/* ---- prelu ---- */

/* Loops over x [N, C, S] (indep): nb, then c when the slope is per
 * channel (else the channels join S).  Returns the body, the flat index
 * and the slope's index. */
static Stmt *prelu_loops(Lower *L, int x, Expr **idx, Expr **wi)
{
    int O, C, S;
    axis_split(L, x, 0, &O, &C, &S);
    if (!L->n->p.act.per_channel) {
        S *= C;
        C = 1;
    }
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    *wi = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Expr *s = lfor_indep(L, &p, "s", li(L, 0), li(L, S));
    *idx = ladd(L, lmul(L, lmad(L, nb, C, *wi), li(L, S)), s);
    return p;
}

/* y [N, C, S] = x > 0 ? x : w[c]*x */
void lower_prelu(Lower *L)
{
    enum { Y, X, W };
    check_like(L, lin(L, 0)->id);
    Expr *idx, *wi;
    Stmt *p = prelu_loops(L, lin(L, 0)->id, &idx, &wi);
    Expr *x = flocal(L, p, "v", lload(L, X, idx));
    lstore(L, p, Y, idx, sel(L, lt(L, lf(L, 0.0f), x), x, fmul(L, lload(L, W, wi), x)), false);
}

/* dx = x > 0 ? dy : w[c]*dy */
void lower_prelu_dx(Lower *L)
{
    enum { DX, X, W, DY };
    check_like(L, lin(L, 0)->id);
    check_like(L, lin(L, 2)->id);
    Expr *idx, *wi;
    Stmt *p = prelu_loops(L, lin(L, 0)->id, &idx, &wi);
    Expr *dy = flocal(L, p, "g", lload(L, DY, idx));
    lstore(L, p, DX, idx, sel(L, lt(L, lf(L, 0.0f), lload(L, X, idx)), dy, fmul(L, lload(L, W, wi), dy)),
           false);
}

/* dw[c] = sum over nb, s of (x > 0 ? 0 : x*dy), in that order */
void lower_prelu_dw(Lower *L)
{
    enum { DW, X, DY };
    int x = lin(L, 0)->id, O, C, S;
    axis_split(L, x, 0, &O, &C, &S);
    if (!L->n->p.act.per_channel) {
        S *= C;
        C = 1;
    }
    NETC_ASSERT(lnumel(L, L->n->id) == C && !L->n->shape.batched);
    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    int acc = ldecl(L, p, "acc", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    Expr *s = lfor(L, &q, "s", li(L, 0), li(L, S));
    Expr *idx = ladd(L, lmul(L, lmad(L, nb, C, c), li(L, S)), s);
    Expr *v = flocal(L, q, "v", lload(L, X, idx));
    Expr *term = sel(L, lt(L, lf(L, 0.0f), v), lf(L, 0.0f), fmul(L, v, lload(L, DY, idx)));
    lassign(L, q, acc, fadd(L, lvar(L, acc), term));
    lstore(L, p, DW, c, lvar(L, acc), false);
}

/* ---- log_softmax along an axis ---- */

/* Loops over the (n*outer, s) columns of [N*O, C, S] (indep); returns the
 * body and the column's base index. */
static Stmt *column_loops(Lower *L, int *C, int *S, Expr **base)
{
    int O;
    axis_split(L, L->n->id, L->n->p.act.axis, &O, C, S);
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lmul(L, lbatch(L), li(L, O)));
    Expr *s = lfor_indep(L, &p, "s", li(L, 0), li(L, *S));
    *base = lbind(L, p, "base", lmad(L, nb, *C * *S, s));
    return p;
}

/* y = (x - m) - log(sum_c exp(x - m)), m = max_c x, per column */
void lower_log_softmax(Lower *L)
{
    enum { Y, X };
    check_like(L, lin(L, 0)->id);
    int C, S;
    Expr *base;
    Stmt *p = column_loops(L, &C, &S, &base);
    Expr *m = lvar(L, chan_max(L, p, X, base, C, S));
    int sum = ldecl(L, p, "sum", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    lassign(L, q, sum, fadd(L, lvar(L, sum), fexp(L, fsub(L, lload(L, X, lmad(L, c, S, base)), m))));
    Expr *lse = flocal(L, p, "lse", ex_un(L->a, X_LOG, lvar(L, sum)));
    q = p;
    c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *idx = lmad(L, c, S, base);
    lstore(L, q, Y, idx, fsub(L, fsub(L, lload(L, X, idx), m), lse), false);
}

/* dx = dy - exp(y) * sum_c dy, per column */
void lower_log_softmax_dx(Lower *L)
{
    enum { DX, Y, DY };
    check_like(L, lin(L, 0)->id);
    check_like(L, lin(L, 1)->id);
    int C, S;
    Expr *base;
    Stmt *p = column_loops(L, &C, &S, &base);
    int sum = ldecl(L, p, "sum", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    lassign(L, q, sum, fadd(L, lvar(L, sum), lload(L, DY, lmad(L, c, S, base))));
    q = p;
    c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *idx = lmad(L, c, S, base);
    Expr *dx = fsub(L, lload(L, DY, idx), fmul(L, fexp(L, lload(L, Y, idx)), lvar(L, sum)));
    lstore(L, q, DX, idx, dx, false);
}

/* ---- broadcasting ---- */

/* The output's axes of size > 1, merged into runs along which each value
 * is either whole (full) or broadcast. */
typedef struct {
    int nd;
    int dim[NETC_MAX_RANK];
    int nv;                            /* values: 0 is the output side */
    bool (*full)[NETC_MAX_RANK];       /* full[v][k] */
    int *numel;                        /* per sample, per value */
} Runs;

/* Whether value x spans output axis k of y (x aligned at the last axis). */
static bool spans(const Shape *y, const Shape *x, int k)
{
    int j = k - (y->rank - x->rank);
    return j >= 0 && x->d[j] == y->d[k];
}

static void runs_of(Lower *L, const Shape *y, const int *ids, int nv, Runs *R)
{
    memset(R, 0, sizeof *R);
    R->nv = nv;
    R->full = arena_alloc(L->a, sizeof *R->full * (size_t)nv);
    R->numel = arena_alloc(L->a, sizeof(int) * (size_t)nv);
    for (int v = 0; v < nv; v++)
        R->numel[v] = lnumel(L, ids[v]);
    for (int k = 0; k < y->rank; k++) {
        if (y->d[k] == 1)
            continue;
        bool same = R->nd > 0;
        for (int v = 0; v < nv && same; v++)
            same = spans(y, &graph_node(L->g, ids[v])->shape, k) == R->full[v][R->nd - 1];
        if (same) {
            R->dim[R->nd - 1] *= y->d[k];
            continue;
        }
        for (int v = 0; v < nv; v++)
            R->full[v][R->nd] = spans(y, &graph_node(L->g, ids[v])->shape, k);
        R->dim[R->nd++] = y->d[k];
    }
}

/* Value v's index at run indices i[0..nd) in sample nb: nb*numel plus
 * i[k]*stride over the runs it spans, outermost first. */
static Expr *run_index(Lower *L, const Runs *R, int v, Expr *nb, Expr *const *i)
{
    int stride[NETC_MAX_RANK], s = 1;
    for (int k = R->nd - 1; k >= 0; k--) {
        stride[k] = R->full[v][k] ? s : 0;
        s *= R->full[v][k] ? R->dim[k] : 1;
    }
    NETC_ASSERT(s == R->numel[v]);
    Expr *idx = lmul(L, nb, li(L, R->numel[v]));
    for (int k = 0; k < R->nd; k++)
        idx = ladd(L, idx, lmul(L, i[k], li(L, stride[k])));
    return idx;
}

static bool all_like_output(const Lower *L)
{
    for (int j = 0; j < L->n->nin; j++)
        if (!shape_eq(&lin(L, j)->shape, &L->n->shape))
            return false;
    return true;
}

/* y = x0 + x1 + ... | a - b | a * b, broadcasting.  add of one shape keeps
 * lower_add's flat loop. */
void lower_arith(Lower *L)
{
    const Node *n = L->n;
    if (n->op == OP_ADD && all_like_output(L)) {
        lower_add(L);
        return;
    }
    int *ids = arena_alloc(L->a, sizeof(int) * (size_t)(n->nin + 1));
    ids[0] = n->id;
    memcpy(ids + 1, n->in, sizeof(int) * (size_t)n->nin);
    Runs R;
    runs_of(L, &n->shape, ids, n->nin + 1, &R);
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *i[NETC_MAX_RANK] = {0};
    for (int k = 0; k < R.nd; k++)
        i[k] = lfor_indep(L, &p, arena_printf(L->a, "k%d", k), li(L, 0), li(L, R.dim[k]));
    Expr *y = NULL;
    for (int j = 0; j < n->nin; j++) {
        Expr *x = lload(L, 1 + j, run_index(L, &R, 1 + j, nb, i));
        y = !y ? x : n->op == OP_SUB ? fsub(L, y, x) : n->op == OP_MUL ? fmul(L, y, x) : fadd(L, y, x);
    }
    lstore(L, p, 0, run_index(L, &R, 0, nb, i), y, false);
}

/* dx = scale * sum over x's broadcast runs of dy [* other] */
void lower_bcast_dx(Lower *L)
{
    enum { DX, DY, OTHER };
    const Node *n = L->n;
    const Node *dy = lin(L, 0);
    NETC_ASSERT(n->shape.batched && dy->shape.batched);
    int ids[3] = {n->id, dy->id, n->nin > 1 ? n->in[1] : dy->id};
    Runs R;
    runs_of(L, &dy->shape, ids, 3, &R);
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *i[NETC_MAX_RANK] = {0};
    int nred = 0;
    for (int k = 0; k < R.nd; k++) {
        if (R.full[0][k])
            i[k] = lfor_indep(L, &p, arena_printf(L->a, "k%d", k), li(L, 0), li(L, R.dim[k]));
        else
            nred++;
    }
    int acc = nred ? ldecl(L, p, "acc", T_F32, lf(L, 0.0f)) : -1;
    Stmt *q = p;
    for (int k = 0; k < R.nd; k++)
        if (!R.full[0][k])
            i[k] = lfor(L, &q, arena_printf(L->a, "r%d", k), li(L, 0), li(L, R.dim[k]));
    Expr *term = lload(L, DY, run_index(L, &R, 1, nb, i));
    if (n->nin > 1)
        term = fmul(L, term, lload(L, OTHER, run_index(L, &R, 2, nb, i)));
    if (nred) {
        lassign(L, q, acc, fadd(L, lvar(L, acc), term));
        term = lvar(L, acc);
    }
    float scale = n->p.act.a;
    Expr *dx = scale == -1.0f ? ex_un(L->a, X_NEG, term) : scaled(L, term, scale);
    lstore(L, p, DX, run_index(L, &R, 0, nb, i), dx, false);
}
