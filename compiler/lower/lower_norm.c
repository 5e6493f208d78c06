/* lower_norm.c - batch norm, local response norm and dropout, with their
 * gradients and the state updates of a training step.
 *
 * Needs: a node of the normalisation family and its schedule (always
 * direct).  Provides: its kernel (see lower.c for the buffer order).
 *
 * Values are [N, C, S] with S the product of the spatial axes.  Batch-norm
 * statistics are per channel over N*S elements, summed in one fixed order
 * in vector lanes (chan_sums, below) in a loop per channel; the channel
 * loops are independent, so the parallel schedule splits channels and the
 * sums are bit-identical for every thread count.  The variance is two-pass (mean
 * first, then the mean squared deviation), biased for normalising and
 * scaled by M/(M-1) for the running estimate, as PyTorch does.  Training
 * kernels recompute the statistics from x instead of saving them: every
 * kernel keeps one output and the gradients see exactly the forward's
 * values.
 *
 *   %7 = batchnorm(%0, %2, %3, %4, %5) "bn" [N, 4, 5, 5]
 *     => (training)
 *   kernel k7_batchnorm_train(n, y, x, weight, bias, running_mean, running_var):
 *     parallel for c in [0, 4):
 *       sum = 0; for nb, s: sum += x[(nb*4 + c)*25 + s]  (in lanes: chan_sums)
 *       mean = sum / float(n*25); sq = 0; for nb, s: sq += (x - mean)^2
 *       inv = 1 / sqrt(sq / float(n*25) + eps)
 *       for nb, s: y[...] = (x[...] - mean) * (weight[c] * inv) + bias[c]
 *
 * Dropout draws no random numbers: an element is kept when
 * hash(hash(key, step), index) >= p * 2^24 (X_HASH, loop.h), with the
 * layer's key, the step counter from params[] and the element's index in
 * the batch (dropout2d: the channel's), so the gradient recomputes the same
 * mask and a resumed run draws the masks the uninterrupted one would.
 */
#include <math.h>

#include "lower_impl.h"

/* Channels and positions per channel of value `id`: [C, S]. */
static void chan_geom(const Lower *L, int id, int *C, int *S)
{
    const Shape *s = &graph_node(L->g, id)->shape;
    NETC_ASSERT(s->batched && s->rank >= 1);
    *C = s->d[0];
    *S = lnumel(L, id) / *C;
}

/* for nb in [0, n), s in [0, S) appended to *p; returns the index of
 * element (nb, c, s). */
static Expr *chan_elems(Lower *L, Stmt **p, Expr *c, int C, int S)
{
    Expr *nb = lfor(L, p, "nb", li(L, 0), lbatch(L));
    Expr *base = lbind(L, *p, "base", lmul(L, lmad(L, nb, C, c), li(L, S)));
    Expr *s = lfor(L, p, "s", li(L, 0), li(L, S));
    return ladd(L, base, s);
}

/* Elements per channel across the batch, as a float: n*S. */
static Expr *chan_count(Lower *L, int S)
{
    return ex_un(L->a, X_I2F, lmul(L, lbatch(L), li(L, S)));
}

typedef struct {
    Expr *mean, *var; /* biased variance */
} Stats;

/* ---- sums over a channel ----
 *
 * A channel's sums run in the lanes of vector accumulators: per sample,
 * U accumulators of V lanes take the positions s = (k*U + u)*V + lane,
 * the vectors left after the last whole group go to the first ones, the
 * floats left (S % V) to a scalar; at the end the accumulators are added
 * in order, their lanes in order (hsum), then the scalar.  A fixed order
 * for a given target, independent of the thread count (threads split
 * channels), instead of one serial chain of n*S additions.  Planes
 * narrower than a vector keep the chain. */
enum { SUM_MAX = 2, SUM_U = 4 };

typedef enum {
    SUM_X,      /* x                        */
    SUM_SQDEV,  /* (x - mean)^2             */
    SUM_DY,     /* dy and dy * xhat         */
    SUM_DYXHAT, /* dy * xhat                */
} SumKind;

typedef struct {
    SumKind kind;
    int x, dy;        /* buffers (dy < 0 when not read) */
    Expr *mean, *inv; /* scalars, when the terms need them */
} SumTerms;

static int sum_count(SumKind k)
{
    return k == SUM_DY ? 2 : 1;
}

/* The terms at elements i ..+V (V >= 2: vectors) into t[]. */
static void sum_terms(Lower *L, Stmt *p, const SumTerms *T, Expr *i, int V, Expr **t)
{
    Expr *x = lvar(L, ldecl(L, p, "xv", lvt(V), lvld(L, V, T->x, i)));
    if (T->kind == SUM_X) {
        t[0] = x;
        return;
    }
    Expr *d = lvar(L, ldecl(L, p, "d", lvt(V), fsub(L, x, lvsplat(L, V, T->mean))));
    if (T->kind == SUM_SQDEV) {
        t[0] = fmul(L, d, d);
        return;
    }
    Expr *dy = lvar(L, ldecl(L, p, "gv", lvt(V), lvld(L, V, T->dy, i)));
    Expr *dyx = fmul(L, dy, fmul(L, d, lvsplat(L, V, T->inv))); /* dy * xhat */
    t[0] = T->kind == SUM_DY ? dy : dyx;
    t[1] = dyx;
}

/* The sums of T's terms over channel c's elements of every sample,
 * declared in p as floats. */
static void chan_sums(Lower *L, Stmt *p, const SumTerms *T, Expr *c, int C, int S, Expr **out)
{
    int n = sum_count(T->kind), V = L->t->vlen;
    Expr *t[SUM_MAX];
    if (V < 2 || S < V) {
        int acc[SUM_MAX];
        for (int k = 0; k < n; k++)
            acc[k] = ldecl(L, p, "sum", T_F32, lf(L, 0.0f));
        Stmt *q = p;
        Expr *i = chan_elems(L, &q, c, C, S);
        sum_terms(L, q, T, i, 1, t);
        for (int k = 0; k < n; k++) {
            lassign(L, q, acc[k], fadd(L, lvar(L, acc[k]), t[k]));
            out[k] = lvar(L, acc[k]);
        }
        return;
    }
    kernel_vectors(L->k, V);
    int W = SUM_U * V, groups = S / W, left = S % W / V, floats = S % V;
    int acc[SUM_MAX][SUM_U], tail[SUM_MAX];
    for (int k = 0; k < n; k++) {
        for (int u = 0; u < SUM_U; u++)
            acc[k][u] = ldecl(L, p, "acc", T_V32, ex_bcast(L->a, lf(L, 0.0f)));
        if (floats > 0)
            tail[k] = ldecl(L, p, "sum", T_F32, lf(L, 0.0f));
    }
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    Expr *base = lbind(L, q, "base", lmul(L, lmad(L, nb, C, c), li(L, S)));
    if (groups > 0) {
        Stmt *r = q;
        Expr *g = lfor(L, &r, "sg", li(L, 0), li(L, groups));
        Expr *gb = lbind(L, r, "gb", ladd(L, base, lmul(L, g, li(L, W))));
        for (int u = 0; u < SUM_U; u++) {
            sum_terms(L, r, T, ladd(L, gb, li(L, u * V)), V, t);
            for (int k = 0; k < n; k++)
                lassign(L, r, acc[k][u], fadd(L, lvar(L, acc[k][u]), t[k]));
        }
    }
    for (int u = 0; u < left; u++) {
        sum_terms(L, q, T, ladd(L, base, li(L, groups * W + u * V)), V, t);
        for (int k = 0; k < n; k++)
            lassign(L, q, acc[k][u], fadd(L, lvar(L, acc[k][u]), t[k]));
    }
    if (floats > 0) {
        Stmt *r = q;
        Expr *s = lfor(L, &r, "s", li(L, S - floats), li(L, S));
        sum_terms(L, r, T, ladd(L, base, s), 1, t);
        for (int k = 0; k < n; k++)
            lassign(L, r, tail[k], fadd(L, lvar(L, tail[k]), t[k]));
    }
    for (int k = 0; k < n; k++) {
        Expr *v = lvar(L, acc[k][0]);
        for (int u = 1; u < SUM_U; u++)
            v = fadd(L, v, lvar(L, acc[k][u]));
        Expr *sum = ex_hsum(L->a, L->k, ldecl(L, p, "a", T_V32, v));
        out[k] = lvar(L, ldecl(L, p, "sum", T_F32, floats > 0 ? fadd(L, sum, lvar(L, tail[k])) : sum));
    }
}

/* The batch statistics of channel c of buffer x, computed in p (the
 * variance only when want_var). */
static Stats batch_stats(Lower *L, Stmt *p, int x, Expr *c, int C, int S, bool want_var)
{
    Expr *sum;
    chan_sums(L, p, &(SumTerms){SUM_X, x, -1, NULL, NULL}, c, C, S, &sum);
    Expr *mean = lvar(L, ldecl(L, p, "mean", T_F32, fdiv(L, sum, chan_count(L, S))));
    if (!want_var)
        return (Stats){mean, NULL};
    Expr *sq;
    chan_sums(L, p, &(SumTerms){SUM_SQDEV, x, -1, mean, NULL}, c, C, S, &sq);
    Expr *var = lvar(L, ldecl(L, p, "var", T_F32, fdiv(L, sq, chan_count(L, S))));
    return (Stats){mean, var};
}

/* 1 / sqrt(var + eps) */
static Expr *inv_std(Lower *L, Stmt *p, Expr *var)
{
    Expr *sd = ex_un(L->a, X_SQRT, fadd(L, var, lf(L, L->n->p.norm.eps)));
    return lvar(L, ldecl(L, p, "inv", T_F32, fdiv(L, lf(L, 1.0f), sd)));
}

/* ---- batch norm ---- */

/* y = (x - mean) * (w * inv) + b per channel: batch statistics when
 * training (or without running statistics), the running ones otherwise. */
void lower_batchnorm(Lower *L)
{
    const NormParam *q = &L->n->p.norm;
    enum { Y, X, W };
    int B = W + 1, RM = q->affine ? W + 2 : W, RV = RM + 1;
    int C, S;
    chan_geom(L, L->n->id, &C, &S);
    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Stats st;
    if (L->training || !q->track)
        st = batch_stats(L, p, X, c, C, S, true);
    else
        st = (Stats){lload(L, RM, c), lload(L, RV, c)};
    Expr *inv = inv_std(L, p, st.var);
    Expr *scale = q->affine ? lvar(L, ldecl(L, p, "scale", T_F32, fmul(L, lload(L, W, c), inv))) : inv;
    Stmt *r = p;
    Expr *i = chan_elems(L, &r, c, C, S);
    Expr *y = fmul(L, fsub(L, lload(L, X, i), st.mean), scale);
    if (q->affine)
        y = fadd(L, y, lload(L, B, c));
    /* a fused residual add and activation (fuse.c) at the store */
    lstore(L, r, Y, i, L->epi ? lepi(L, r, L->epi, y, i) : y, false);
    L->epi_done = true;
}

long lower_bn_fold_bias_at(const Graph *g, int layer)
{
    long w = shape_numel(&graph_node(g, graph_node(g, layer)->in[1])->shape);
    return (w + 15) / 16 * 16;
}

/* Inference, folded into the conv P before it (P's output channels are
 * the batchnorm's; P's weight is [C, K], K = C/groups * kernel taps):
 *   scale = weight[c] / sqrt(running_var[c] + eps)
 *   wb[c*K + k] = w[c*K + k] * scale
 *   wb[bias_at + c] = (b[c] - running_mean[c]) * scale + bias[c]
 * the terms of P's bias b, and of the batchnorm's weight and bias, only
 * when they exist.  y = (P(x) - mean) * scale + bias is then P with w', b'. */
void lower_batchnorm_fold(Lower *L)
{
    const Node *bn = L->n, *layer = graph_node(L->g, bn->bn_into);
    const NormParam *q = &bn->p.norm;
    NETC_ASSERT(q->track && bn->in[0] == layer->id);
    int C, S;
    chan_geom(L, bn->id, &C, &S);
    int K = lnumel(L, layer->in[1]) / C;
    NETC_ASSERT(K * C == lnumel(L, layer->in[1]));
    long at = lower_bn_fold_bias_at(L->g, layer->id);
    int WB = kernel_buf(L->a, L->k, "wb", true, at + C, 0);
    int W = lbuf(L, "w", layer->in[1], false);
    int B = layer->nin == 3 ? lbuf(L, "b", layer->in[2], false) : -1;
    int G = q->affine ? lbuf(L, "weight", bn->in[1], false) : -1;
    int BE = q->affine ? lbuf(L, "bias", bn->in[2], false) : -1;
    int RM = lbuf(L, "running_mean", bn->in[node_own_nin(bn) - 2], false);
    int RV = lbuf(L, "running_var", bn->in[node_own_nin(bn) - 1], false);
    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Expr *inv = inv_std(L, p, lload(L, RV, c));
    Expr *scale = q->affine ? lvar(L, ldecl(L, p, "scale", T_F32, fmul(L, lload(L, G, c), inv))) : inv;
    Stmt *r = p;
    Expr *k = lfor(L, &r, "k", li(L, 0), li(L, K));
    Expr *i = lmad(L, c, K, k);
    lstore(L, r, WB, i, fmul(L, lload(L, W, i), scale), false);
    Expr *b = B >= 0 ? fsub(L, lload(L, B, c), lload(L, RM, c)) : ex_un(L->a, X_NEG, lload(L, RM, c));
    b = fmul(L, b, scale);
    lstore(L, p, WB, ladd(L, li(L, (int)at), c), q->affine ? fadd(L, b, lload(L, BE, c)) : b, false);
}

/* Per channel, with xhat = (x - mean) * inv and M = n*S:
 *   dx = (w * inv) * (dy - sum(dy)/M - xhat * sum(dy*xhat)/M) */
void lower_batchnorm_dx(Lower *L)
{
    enum { DX, X, DY, W };
    bool affine = L->n->nin == 3;
    int C, S;
    chan_geom(L, L->n->id, &C, &S);
    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Stats st = batch_stats(L, p, X, c, C, S, true);
    Expr *inv = inv_std(L, p, st.var);
    Expr *sums[2]; /* sum(dy), sum(dy*xhat) */
    chan_sums(L, p, &(SumTerms){SUM_DY, X, DY, st.mean, inv}, c, C, S, sums);
    Expr *m = chan_count(L, S);
    Expr *mdy = lvar(L, ldecl(L, p, "mdy", T_F32, fdiv(L, sums[0], m)));
    Expr *mdyx = lvar(L, ldecl(L, p, "mdyx", T_F32, fdiv(L, sums[1], m)));
    Expr *scale = affine ? lvar(L, ldecl(L, p, "scale", T_F32, fmul(L, lload(L, W, c), inv))) : inv;
    Stmt *r = p;
    Expr *i = chan_elems(L, &r, c, C, S);
    Expr *xhat = fmul(L, fsub(L, lload(L, X, i), st.mean), inv);
    Expr *g = fsub(L, fsub(L, lload(L, DY, i), mdy), fmul(L, xhat, mdyx));
    lstore(L, r, DX, i, fmul(L, scale, g), false);
}

/* dw[c] = sum(dy * xhat) */
void lower_batchnorm_dw(Lower *L)
{
    enum { DW, X, DY };
    int C, S;
    chan_geom(L, lin(L, 0)->id, &C, &S);
    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Stats st = batch_stats(L, p, X, c, C, S, true);
    Expr *inv = inv_std(L, p, st.var);
    Expr *sum;
    chan_sums(L, p, &(SumTerms){SUM_DYXHAT, X, DY, st.mean, inv}, c, C, S, &sum);
    lstore(L, p, DW, c, sum, false);
}

/* next = (1 - momentum) * state + momentum * stat, the stat being the
 * batch mean or the unbiased batch variance var * M/(M-1). */
void lower_running_stat(Lower *L)
{
    const NormParam *q = &L->n->p.norm;
    enum { NEXT, X, STATE };
    int C, S;
    chan_geom(L, lin(L, 0)->id, &C, &S);
    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Stats st = batch_stats(L, p, X, c, C, S, q->stat);
    Expr *stat = st.mean;
    if (q->stat) {
        Expr *m = chan_count(L, S);
        stat = fdiv(L, fmul(L, st.var, m), fsub(L, m, lf(L, 1.0f)));
    }
    Expr *old = fmul(L, lf(L, 1.0f - q->momentum), lload(L, STATE, c));
    lstore(L, p, NEXT, c, fadd(L, fmul(L, lf(L, q->momentum), stat), old), false);
}

/* next = count + 1 (num_batches_tracked, dropout steps) */
void lower_step_count(Lower *L)
{
    enum { NEXT, COUNT };
    lstore(L, L->k->body, NEXT, li(L, 0), fadd(L, lload(L, COUNT, li(L, 0)), lf(L, 1.0f)), false);
}

/* ---- local response normalisation ---- */

/* d^e as exp(e * log(d)); d > 0 */
static Expr *lpow(Lower *L, Expr *d, float e)
{
    return ex_un(L->a, X_EXP, fmul(L, lf(L, e), ex_un(L->a, X_LOG, d)));
}

/* d = k + alpha/size * sum of x^2 over channels [c - size/2, c + (size-1)/2]
 * of the element at base + c*S, declared in p. */
static Expr *lrn_denom(Lower *L, Stmt *p, int x, Expr *base, Expr *c, int C, int S)
{
    const LrnParam *q = &L->n->p.lrn;
    int sum = ldecl(L, p, "sq", T_F32, lf(L, 0.0f));
    Stmt *r = p;
    Expr *lo = lmax(L, lsub(L, c, li(L, q->size / 2)), li(L, 0));
    Expr *hi = lmin(L, ladd(L, c, li(L, (q->size - 1) / 2 + 1)), li(L, C));
    Expr *j = lfor(L, &r, "j", lo, hi);
    Expr *v = lvar(L, ldecl(L, r, "v", T_F32, lload(L, x, lmad(L, j, S, base))));
    lassign(L, r, sum, fadd(L, lvar(L, sum), fmul(L, v, v)));
    Expr *d = fadd(L, lf(L, q->k), fmul(L, lf(L, q->alpha / (float)q->size), lvar(L, sum)));
    return lvar(L, ldecl(L, p, "d", T_F32, d));
}

/* y = x / d^beta, per (n, position), across channels */
void lower_lrn(Lower *L)
{
    enum { Y, X };
    int C, S;
    chan_geom(L, L->n->id, &C, &S);
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *s = lfor_indep(L, &p, "s", li(L, 0), li(L, S));
    Expr *base = lbind(L, p, "base", lmad(L, nb, C * S, s));
    Expr *c = lfor(L, &p, "c", li(L, 0), li(L, C));
    Expr *d = lrn_denom(L, p, X, base, c, C, S);
    Expr *i = lmad(L, c, S, base);
    lstore(L, p, Y, i, fmul(L, lload(L, X, i), lpow(L, d, -L->n->p.lrn.beta)), false);
}

/* With t_c = dy_c * x_c * d_c^(-beta-1) (in scratch t):
 *   dx_i = dy_i * d_i^-beta - (2 alpha beta / size) * x_i * sum of t_c over the
 *          channels c whose window holds i: [i - (size-1)/2, i + size/2] */
void lower_lrn_dx(Lower *L)
{
    const LrnParam *q = &L->n->p.lrn;
    enum { DX, X, DY };
    int C, S;
    chan_geom(L, L->n->id, &C, &S);
    int T = kernel_scratch(L->a, L->k, "t", 0, lnumel(L, L->n->id));
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *s = lfor_indep(L, &p, "s", li(L, 0), li(L, S));
    Expr *base = lbind(L, p, "base", lmad(L, nb, C * S, s));
    Stmt *r = p;
    Expr *c = lfor(L, &r, "c", li(L, 0), li(L, C));
    Expr *d = lrn_denom(L, r, X, base, c, C, S);
    Expr *i = lbind(L, r, "i", lmad(L, c, S, base));
    Expr *pw = lvar(L, ldecl(L, r, "pw", T_F32, lpow(L, d, -q->beta)));
    Expr *dy = lvar(L, ldecl(L, r, "g", T_F32, lload(L, DY, i)));
    lstore(L, r, T, i, fdiv(L, fmul(L, fmul(L, dy, lload(L, X, i)), pw), d), false);
    lstore(L, r, DX, i, fmul(L, dy, pw), false);
    r = p;
    c = lfor(L, &r, "c", li(L, 0), li(L, C));
    int acc = ldecl(L, r, "acc", T_F32, lf(L, 0.0f));
    Stmt *w = r;
    Expr *lo = lmax(L, lsub(L, c, li(L, (q->size - 1) / 2)), li(L, 0));
    Expr *hi = lmin(L, ladd(L, c, li(L, q->size / 2 + 1)), li(L, C));
    Expr *j = lfor(L, &w, "j", lo, hi);
    lassign(L, w, acc, fadd(L, lvar(L, acc), lload(L, T, lmad(L, j, S, base))));
    i = lmad(L, c, S, base);
    float coef = 2.0f * q->alpha * q->beta / (float)q->size;
    lstore(L, r, DX, i, fmul(L, fmul(L, lf(L, -coef), lload(L, X, i)), lvar(L, acc)), true);
}

/* ---- dropout ---- */

/* out = keep ? in * 1/(1-p) : 0 over every element of the batch, where
 * unit u (an element, or for dropout2d a channel nb*C + c) is kept when
 * hash(hash(key, step), u) >= p * 2^24. */
static void drop_apply(Lower *L, int out, int in, int step)
{
    const DropoutParam *q = &L->n->p.drop;
    int C, S;
    chan_geom(L, L->n->id, &C, &S);
    if (!q->channels) {
        S *= C;
        C = 1;
    }
    Stmt *p = L->k->body;
    Expr *key = lbind(L, p, "key",
                      ex_bin(L->a, X_HASH, li(L, (int)(q->key & 0x7fffffffu)),
                             ex_un(L->a, X_F2I, lload(L, step, li(L, 0)))));
    Expr *cut = li(L, (int)ceil((double)q->p * 16777216.0));
    Expr *unit, *i, *keep;
    if (q->channels) {
        unit = lfor_indep(L, &p, "u", li(L, 0), lmul(L, lbatch(L), li(L, C)));
        keep = lbind(L, p, "keep", ex_bin(L->a, X_LE, cut, ex_bin(L->a, X_HASH, key, unit)));
        Expr *base = lbind(L, p, "base", lmul(L, unit, li(L, S)));
        i = ladd(L, base, lfor(L, &p, "s", li(L, 0), li(L, S)));
    } else {
        i = lfor_indep(L, &p, "i", li(L, 0), lmul(L, lbatch(L), li(L, S)));
        keep = ex_bin(L->a, X_LE, cut, ex_bin(L->a, X_HASH, key, i));
    }
    float scale = (float)(1.0 / (1.0 - (double)q->p));
    Expr *kept = fmul(L, lload(L, in, i), lf(L, scale));
    lstore(L, p, out, i, ex_select(L->a, keep, kept, lf(L, 0.0f)), false);
}

/* training: the mask; inference: the identity */
void lower_dropout(Lower *L)
{
    enum { Y, X, STEP };
    if (L->training)
        drop_apply(L, Y, X, STEP);
    else
        lower_copy(L); /* y = x, its buffers first */
}

/* dx = mask * scale * dy, the forward's mask */
void lower_dropout_dx(Lower *L)
{
    enum { DX, DY, STEP };
    drop_apply(L, DX, DY, STEP);
}
