/* lower_loss.c - the losses and their gradients (dloss = 1).
 *
 * Needs: a loss node (pred, target) -> unbatched scalar, or its _DX node
 * (pred, target) -> dpred, each carrying the forward loss's LossParam.
 * Provides the lowerings lower.c dispatches to.  Every loss reduces with
 * `mean` or `sum` (LossParam.reduction) exactly as torch.nn.functional:
 *
 *   class losses (softmax_cross_entropy, nll): pred [N, C, S...], target
 *   [N, S...] holding class indices.  Per position, with w = weight[t] (1
 *   without weights) and v = 0 when t == ignore_index, else 1:
 *     xent  l = (1-e) w (lse - x_t) + e/C sum_c w_c (lse - x_c)
 *     nll   l = -w x_t
 *   sum: sum v*l;  mean: sum v*l / sum v*w (the weights of the counted
 *   targets, so an all-ignored batch gives NaN, as in PyTorch).
 *
 *   elementwise losses (mse, l1, smooth_l1, bce_with_logits): target of
 *   pred's shape; mean divides by every element, n * numel.
 *
 * The class weights and bce's per-channel pos_weight are compile-time
 * constants: the loops over classes or channels that need one per class
 * are unrolled (each class's weight a constant), and the weight of a
 * target class is a chain of selects.  A class index outside [0, C) is
 * clamped, so a bad label cannot make the generated code read out of
 * bounds.  Reductions accumulate in a float local and store once; an
 * element-wise loss sums runs of 16 positions lane by lane into a scratch
 * part[17] (position s into lane s % 16 of its channel's runs, a loop
 * loop_vectorize widens; the positions past the last whole run into
 * part[16]), then adds part in order: a fixed order on every target.  The
 * samples' loop lists part as an accumulator, so loop_privatize may give
 * each core's chunk of samples its own copy (their sums added in chunk
 * order).  The gradients' loops over samples are independent.
 *
 *   loss = softmax_cross_entropy(logits [N, 5], target [N]) reduction=sum
 *   -> total = 0; for nb: m, s = max and sum exp over k; t = clamp(target[nb]);
 *      total += log(s) + m - logits[nb*5 + t]; loss[0] = total
 */
#include "lower_impl.h"

enum { OUT, PRED, TARGET }; /* every loss kernel's buffers */
enum { LOSS_LANES = 16 };  /* an element-wise loss's partial sums */

static const LossParam *param(const Lower *L)
{
    return &L->n->p.loss;
}

/* Elements of value `id` across the batch: n*numel. */
static Expr *count_of(Lower *L, int id)
{
    return lmul(L, lbatch(L), li(L, lnumel(L, id)));
}

static Expr *fabs_of(Lower *L, Expr *x)
{
    return ex_bin(L->a, X_MAX, x, ex_un(L->a, X_NEG, x));
}

/* -1, 0 or 1 (torch.sign) */
static Expr *fsign(Lower *L, Expr *x)
{
    Expr *neg = ex_select(L->a, ex_bin(L->a, X_LT, x, lf(L, 0.0f)), lf(L, -1.0f), lf(L, 0.0f));
    return ex_select(L->a, ex_bin(L->a, X_LT, lf(L, 0.0f), x), lf(L, 1.0f), neg);
}

/* w[idx] for a constant table and an i32 index in [0, n): a chain of
 * selects, or the constant when every entry is the same. */
static Expr *table_at(Lower *L, const float *w, int n, Expr *idx)
{
    bool same = true;
    for (int i = 1; i < n; i++)
        same &= w[i] == w[0];
    Expr *e = lf(L, w[n - 1]);
    for (int i = n - 2; !same && i >= 0; i--)
        e = ex_select(L->a, ex_bin(L->a, X_EQ, idx, li(L, i)), lf(L, w[i]), e);
    return e;
}

/* The body of a loop over classes or channels: c and its weight. */
typedef void ClassBody(Lower *L, Stmt *p, Expr *c, Expr *w, void *ctx);

/* for c in [0, C): body(c, w[c]): a loop with w = 1 when w is NULL,
 * else unrolled with each weight a constant. */
static void each_class(Lower *L, Stmt *p, int C, const float *w, ClassBody *body, void *ctx)
{
    if (!w) {
        Stmt *q = p;
        Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
        body(L, q, c, lf(L, 1.0f), ctx);
        return;
    }
    for (int c = 0; c < C; c++)
        body(L, p, li(L, c), lf(L, w[c]), ctx);
}

/* w * x, or x when w is the constant 1 (no weights) */
static Expr *wmul(Lower *L, Expr *w, Expr *x)
{
    return w->k == X_FLT && w->fval == 1.0f ? x : fmul(L, w, x);
}

static float weight_sum(const float *w, int C)
{
    if (!w)
        return (float)C;
    float s = 0;
    for (int c = 0; c < C; c++)
        s += w[c];
    return s;
}

/* ---- class losses: pred [N, C, S], target [N, S] ---- */

/* One position (nb, s) of a class loss. */
typedef struct {
    int C, S;
    Expr *base;   /* pred index of class 0: nb*C*S + s; class c at base + c*S */
    Expr *t;      /* the target class, clamped into [0, C)                    */
    Expr *valid;  /* i32: the target is not ignore_index                      */
    Expr *w;      /* its class weight                                         */
    Expr *m, *lse; /* xent: the maximum and logsumexp over classes            */
} Pos;

static void class_dims(const Lower *L, int *C, int *S)
{
    const Shape *p = &lin(L, 0)->shape;
    NETC_ASSERT(p->batched && p->rank >= 1 &&
                lnumel(L, lin(L, 1)->id) * p->d[0] == lnumel(L, lin(L, 0)->id));
    *C = p->d[0];
    *S = lnumel(L, lin(L, 1)->id);
}

/* Loops nb and s appended to *p; fills P for the position (and, for
 * xent, its max and logsumexp). */
static void position(Lower *L, Stmt **p, Pos *P, bool xent, bool indep)
{
    const LossParam *lp = param(L);
    class_dims(L, &P->C, &P->S);
    int C = P->C, S = P->S;
    Expr *nb = (indep ? lfor_indep : lfor)(L, p, "nb", li(L, 0), lbatch(L));
    Expr *s = lfor(L, p, "s", li(L, 0), li(L, S));
    P->base = lbind(L, *p, "base", lmad(L, nb, C * S, s));
    Expr *cls = ex_un(L->a, X_F2I, lload(L, TARGET, lmad(L, nb, S, s)));
    Expr *raw = lvar(L, ldecl(L, *p, "tc", T_I32, cls));
    P->t = lvar(L, ldecl(L, *p, "t", T_I32, lmin(L, lmax(L, raw, li(L, 0)), li(L, C - 1))));
    P->valid = lp->has_ignore ? ex_bin(L->a, X_NE, raw, li(L, lp->ignore_index)) : NULL;
    P->w = lp->weight ? lvar(L, ldecl(L, *p, "w", T_F32, table_at(L, lp->weight, C, P->t)))
                      : lf(L, 1.0f);
    if (!xent)
        return;
    P->m = lvar(L, chan_max(L, *p, PRED, P->base, C, S));
    int sum = ldecl(L, *p, "sum", T_F32, lf(L, 0.0f));
    Stmt *q = *p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *x = lload(L, PRED, lmad(L, c, S, P->base));
    lassign(L, q, sum, fadd(L, lvar(L, sum), ex_un(L->a, X_EXP, fsub(L, x, P->m))));
    P->lse = lvar(L, ldecl(L, *p, "lse", T_F32, fadd(L, P->m, ex_un(L->a, X_LOG, lvar(L, sum)))));
}

/* v ? x : 0 (an ignored target counts for nothing, even a NaN) */
static Expr *if_valid(Lower *L, const Pos *P, Expr *x)
{
    return P->valid ? ex_select(L->a, P->valid, x, lf(L, 0.0f)) : x;
}

typedef struct {
    const Pos *P;
    int acc;      /* the float local summed into */
} SmoothCtx;

/* acc += w_c (lse - x_c) */
static void smooth_term(Lower *L, Stmt *p, Expr *c, Expr *w, void *ctx)
{
    const SmoothCtx *k = ctx;
    Expr *x = lload(L, PRED, lmad(L, c, k->P->S, k->P->base));
    lassign(L, p, k->acc, fadd(L, lvar(L, k->acc), wmul(L, w, fsub(L, k->P->lse, x))));
}

/* The loss of one position before masking: xent or nll. */
static Expr *class_term(Lower *L, Stmt *p, const Pos *P)
{
    const LossParam *lp = param(L);
    Expr *xt = lload(L, PRED, lmad(L, P->t, P->S, P->base));
    if (L->n->op == OP_NLL)
        return wmul(L, P->w, ex_un(L->a, X_NEG, xt));
    Expr *term = wmul(L, P->w, fsub(L, P->lse, xt));
    float e = lp->label_smoothing;
    if (e == 0)
        return term;
    SmoothCtx k = {P, ldecl(L, p, "smooth", T_F32, lf(L, 0.0f))};
    each_class(L, p, P->C, lp->weight, smooth_term, &k);
    return fadd(L, fmul(L, lf(L, 1.0f - e), term), fmul(L, lf(L, e / (float)P->C), lvar(L, k.acc)));
}

/* Whether a mean divides by n*S: every position counts, with weight 1. */
static bool plain_mean(const Lower *L)
{
    return !param(L)->weight && !param(L)->has_ignore;
}

static Expr *positions(Lower *L)
{
    return ex_un(L->a, X_I2F, lmul(L, lbatch(L), li(L, lnumel(L, lin(L, 1)->id))));
}

/* loss = sum v*l (sum) or sum v*l / sum v*w (mean) */
void lower_class_loss(Lower *L)
{
    bool sum = param(L)->reduction == RED_SUM;
    Stmt *p = L->k->body;
    int num = ldecl(L, p, "num", T_F32, lf(L, 0.0f));
    int den = sum || plain_mean(L) ? -1 : ldecl(L, p, "den", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Pos P;
    position(L, &q, &P, L->n->op == OP_SOFTMAX_XENT, false);
    lassign(L, q, num, fadd(L, lvar(L, num), if_valid(L, &P, class_term(L, q, &P))));
    if (den >= 0)
        lassign(L, q, den, fadd(L, lvar(L, den), if_valid(L, &P, P.w)));
    Expr *loss = lvar(L, num);
    if (!sum)
        loss = fdiv(L, loss, den >= 0 ? lvar(L, den) : positions(L));
    lstore(L, p, OUT, li(L, 0), loss, false);
}

/* The divisor of a mean: sum v*w over the batch, computed first in p. */
static Expr *class_den(Lower *L, Stmt *p)
{
    if (plain_mean(L))
        return lvar(L, ldecl(L, p, "den", T_F32, positions(L)));
    int den = ldecl(L, p, "den", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Pos P;
    position(L, &q, &P, false, false);
    lassign(L, q, den, fadd(L, lvar(L, den), if_valid(L, &P, P.w)));
    return lvar(L, den);
}

typedef struct {
    const Pos *P;
    Expr *coef;   /* v / den: the position's share of the reduction */
} GradCtx;

/* xent: dx_c = coef [(1-e) w_t (p_c - [c == t]) + e/C (W p_c - w_c)], W = sum_c w_c
 * nll:  dx_c = -coef w_t [c == t] */
static void class_grad(Lower *L, Stmt *p, Expr *c, Expr *w, void *ctx)
{
    const GradCtx *k = ctx;
    const Pos *P = k->P;
    const LossParam *lp = param(L);
    Expr *idx = lmad(L, c, P->S, P->base);
    Expr *hot = ex_select(L->a, ex_bin(L->a, X_EQ, c, P->t), lf(L, 1.0f), lf(L, 0.0f));
    Expr *g;
    if (L->n->op == OP_NLL_DX) {
        g = ex_un(L->a, X_NEG, wmul(L, P->w, hot));
    } else {
        Expr *sm = ex_un(L->a, X_EXP, fsub(L, lload(L, PRED, idx), P->lse));
        Expr *pc = lvar(L, ldecl(L, p, "p", T_F32, sm));
        g = wmul(L, P->w, fsub(L, pc, hot));
        float e = lp->label_smoothing;
        if (e != 0) {
            Expr *smooth = fsub(L, fmul(L, lf(L, weight_sum(lp->weight, P->C)), pc), w);
            g = fadd(L, fmul(L, lf(L, 1.0f - e), g), fmul(L, lf(L, e / (float)P->C), smooth));
        }
    }
    lstore(L, p, OUT, idx, wmul(L, k->coef, g), false);
}

void lower_class_loss_dx(Lower *L)
{
    const LossParam *lp = param(L);
    Stmt *p = L->k->body;
    Expr *den = lp->reduction == RED_SUM ? NULL : class_den(L, p);
    Expr *coef = den ? lvar(L, ldecl(L, p, "coef", T_F32, fdiv(L, lf(L, 1.0f), den))) : lf(L, 1.0f);
    Stmt *q = p;
    Pos P;
    position(L, &q, &P, L->n->op == OP_SOFTMAX_XENT_DX, true); /* each sample its own gradient */
    if (P.valid)
        coef = lvar(L, ldecl(L, q, "cv", T_F32, if_valid(L, &P, coef)));
    GradCtx k = {&P, coef};
    /* Class weights are needed per class only by label smoothing. */
    each_class(L, q, P.C, lp->label_smoothing != 0 ? lp->weight : NULL, class_grad, &k);
}

/* ---- elementwise losses: pred and target [N, C, S] ---- */

/* The loss of one element and its derivative by the prediction. */
static void elem(Lower *L, Stmt *p, Expr *x, Expr *y, Expr *pw, Expr **loss, Expr **grad)
{
    const LossParam *lp = param(L);
    Op op = L->n->op;
    if (op == OP_BCE_LOGITS || op == OP_BCE_LOGITS_DX) {
        /* (1 - y) x + lw softplus(-x), lw = 1 + (pw - 1) y, softplus(-x) =
         * log(1 + exp(-|x|)) + max(-x, 0); d/dx = (1 - y) - lw sigmoid(-x) */
        Expr *one = lf(L, 1.0f);
        Expr *lw = lvar(L, ldecl(L, p, "lw", T_F32, fadd(L, one, fmul(L, fsub(L, pw, one), y))));
        Expr *omy = fsub(L, one, y);
        if (loss) {
            Expr *tail = ex_un(L->a, X_EXP, ex_un(L->a, X_NEG, fabs_of(L, x)));
            Expr *sp = fadd(L, ex_un(L->a, X_LOG, fadd(L, one, tail)),
                            ex_bin(L->a, X_MAX, ex_un(L->a, X_NEG, x), lf(L, 0.0f)));
            *loss = fadd(L, fmul(L, omy, x), fmul(L, lw, sp));
        }
        if (grad)
            *grad = fsub(L, omy, fdiv(L, lw, fadd(L, lf(L, 1.0f), ex_un(L->a, X_EXP, x))));
        return;
    }
    Expr *d = lvar(L, ldecl(L, p, "d", T_F32, fsub(L, x, y)));
    bool smooth = (op == OP_SMOOTH_L1 || op == OP_SMOOTH_L1_DX) && lp->beta > 0;
    if (op == OP_MSE || op == OP_MSE_DX) {
        if (loss)
            *loss = fmul(L, d, d);
        if (grad)
            *grad = fmul(L, lf(L, 2.0f), d);
    } else if (!smooth) { /* l1, and smooth_l1 with beta 0 */
        if (loss)
            *loss = fabs_of(L, d);
        if (grad)
            *grad = fsign(L, d);
    } else {
        /* |d| < beta: 0.5 d^2 / beta, d / beta; else |d| - beta/2, sign(d) */
        Expr *ad = lvar(L, ldecl(L, p, "ad", T_F32, fabs_of(L, d)));
        Expr *in = lvar(L, ldecl(L, p, "in", T_I32, ex_bin(L->a, X_LT, ad, lf(L, lp->beta))));
        if (loss)
            *loss = ex_select(L->a, in, fdiv(L, fmul(L, lf(L, 0.5f), fmul(L, d, d)), lf(L, lp->beta)),
                              fsub(L, ad, lf(L, 0.5f * lp->beta)));
        if (grad)
            *grad = ex_select(L->a, in, fdiv(L, d, lf(L, lp->beta)), fsign(L, d));
    }
}

typedef struct {
    Expr *nb;     /* the sample                          */
    int C, S;     /* channels and positions per channel  */
    bool dx;      /* the gradient, not the loss          */
    int acc;      /* forward: the float local summed into, or -1 */
    int part;     /* forward: the lane sums (scratch), or -1 */
    Expr *count;  /* dx: the divisor of the reduction    */
} ElemCtx;

/* The loss or gradient of position s of channel c of sample nb (index i),
 * weighted by pw; the forward's loss added into part[lane] (lane >= 0)
 * or the local acc. */
static void elem_at(Lower *L, Stmt *q, const ElemCtx *k, Expr *i, Expr *pw, Expr *lane)
{
    Expr *x = lvar(L, ldecl(L, q, "x", T_F32, lload(L, PRED, i)));
    Expr *y = lvar(L, ldecl(L, q, "y", T_F32, lload(L, TARGET, i)));
    Expr *loss, *grad;
    bool dx = k->dx;
    elem(L, q, x, y, pw, dx ? NULL : &loss, dx ? &grad : NULL);
    if (dx)
        lstore(L, q, OUT, i, k->count ? fdiv(L, grad, k->count) : grad, false);
    else if (lane)
        lstore(L, q, k->part, lane, loss, true);
    else
        lassign(L, q, k->acc, fadd(L, lvar(L, k->acc), loss));
}

/* Every position s of channel c of sample nb, weighted by pw = pos_weight[c].
 * The forward sums whole runs of LOSS_LANES positions lane by lane into
 * part (s into lane s % LOSS_LANES: a loop loop_vectorize widens, the same
 * order on every target) and the rest into part[LOSS_LANES] (or, without
 * part, every position into acc). */
static void elem_channel(Lower *L, Stmt *p, Expr *c, Expr *pw, void *ctx)
{
    const ElemCtx *k = ctx;
    Expr *base = lbind(L, p, "ib", lmul(L, lmad(L, k->nb, k->C, c), li(L, k->S)));
    int runs = k->part >= 0 ? k->S / LOSS_LANES : 0, rest = runs * LOSS_LANES;
    if (runs) {
        Stmt *q = p;
        Expr *r = lfor(L, &q, "r", li(L, 0), li(L, runs));
        Expr *rb = lbind(L, q, "rb", lmad(L, r, LOSS_LANES, base));
        Expr *l = lfor_indep(L, &q, "l", li(L, 0), li(L, LOSS_LANES));
        elem_at(L, q, k, lbind(L, q, "i", ladd(L, rb, l)), pw, l);
    }
    if (rest < k->S) {
        /* dx: every position its own gradient */
        Stmt *q = p;
        Expr *s = (k->dx ? lfor_indep : lfor)(L, &q, "s", li(L, rest), li(L, k->S));
        elem_at(L, q, k, lbind(L, q, "i", ladd(L, base, s)), pw, k->part >= 0 ? li(L, LOSS_LANES) : NULL);
    }
}

/* Loops over the batch, then channels (unrolled with pos_weight) and
 * positions, calling elem_channel. */
static void elem_nest(Lower *L, Stmt *p, ElemCtx *k)
{
    const Node *pred = lin(L, 0);
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == lnumel(L, pred->id));
    const LossParam *lp = param(L);
    /* Without per-channel weights all of a sample is one channel. */
    k->C = lp->pos_weight ? pred->shape.d[0] : 1;
    k->S = lnumel(L, pred->id) / k->C;
    Stmt *q = p;
    /* dx: each sample its own gradient; the forward with lane sums: the
     * samples' chunks sum into their own copies of part (loop_privatize) */
    k->nb = (k->dx ? lfor_indep : lfor)(L, &q, "nb", li(L, 0), lbatch(L));
    if (k->part >= 0)
        lpriv_sum(L, p->body[p->nbody - 1], k->part);
    each_class(L, q, k->C, lp->pos_weight, elem_channel, k);
}

void lower_elem_loss(Lower *L)
{
    Stmt *p = L->k->body;
    ElemCtx k = {.acc = -1, .part = -1};
    if (lnumel(L, lin(L, 0)->id) / (param(L)->pos_weight ? lin(L, 0)->shape.d[0] : 1) >= LOSS_LANES) {
        k.part = kernel_scratch(L->a, L->k, "part", LOSS_LANES + 1, 0);
        lzero(L, p, k.part, li(L, 0), li(L, LOSS_LANES + 1));
    } else {
        k.acc = ldecl(L, p, "total", T_F32, lf(L, 0.0f));
    }
    elem_nest(L, p, &k);
    Expr *total = k.part >= 0 ? NULL : lvar(L, k.acc);
    /* the lanes in order, then the rest */
    if (k.part >= 0) {
        total = lload(L, k.part, li(L, 0));
        for (int l = 1; l <= LOSS_LANES; l++)
            total = fadd(L, total, lload(L, k.part, li(L, l)));
    }
    if (param(L)->reduction == RED_MEAN)
        total = fdiv(L, total, ex_un(L->a, X_I2F, count_of(L, lin(L, 0)->id)));
    lstore(L, p, OUT, li(L, 0), total, false);
}

void lower_elem_loss_dx(Lower *L)
{
    Stmt *p = L->k->body;
    ElemCtx k = {.dx = true, .acc = -1, .part = -1};
    if (param(L)->reduction == RED_MEAN)
        k.count = lvar(L, ldecl(L, p, "count", T_F32, ex_un(L->a, X_I2F, count_of(L, L->n->id))));
    elem_nest(L, p, &k);
}
