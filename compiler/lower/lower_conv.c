/* lower_conv.c - the scalar direct convolution gradients, the bias gradient,
 * and the tap ranges every convolution lowering shares.
 *
 * Every convolution is lowered as 3D (see Geom in lower_impl.h).  The
 * forward pass and stride-1 conv_dx run lower_direct.c's register-blocked
 * micro-kernel, conv_dw with whole vectors of output channels per group its
 * weight-gradient kernel; the nests here serve the rest.  For each (output channel,
 * input channel of its group, tap kd/kh/kw) they walk the output pixels
 * whose tap lands inside the input.  That range is computed from
 * pad/stride/dilation once per tap, so the innermost loop over output
 * width has no bounds checks and walks the output row contiguously (and
 * the input row with the stride):
 *
 *   for od in [lo_d(kd), hi_d(kd)): for oh in ...: for ow in ...:
 *       dx[od*sd - pd + kd*dd, ...] += w[kd, kh, kw] * dy[od, oh, ow]
 *
 * conv_dx  dx += w * dy      (strided layers: scattering into dx, the
 *                             transposed convolution)
 * conv_dw  dw  = sum over batch and pixels of x * dy
 *
 * These are ALGO_DIRECT lowerings; lower_im2col.c has the GEMM ones,
 * which reuse tap_nest for unfolding and folding back.
 */
#include "lower_impl.h"

TapRange tap_range(Lower *L, const Geom *G, int a, Expr *tap)
{
    int s = G->s[a];
    /* input coordinate i = o*s + shift, shift = tap*d - pad_lo */
    TapRange r = {NULL, NULL, lsub(L, lmul(L, tap, li(L, G->d[a])), li(L, G->plo[a]))};
    if (geom_unpadded(G)) {
        /* every tap of every output lands inside the input */
        r.lo = li(L, 0);
        r.hi = li(L, G->out[a]);
        return r;
    }
    /* i >= 0 <=> o >= ceil(first / s), first = pad_lo - tap*d;
     * i < I  <=> o <= floor(last / s),  last = I - 1 + pad_lo - tap*d.
     * The numerators are clamped non-negative so truncating division is
     * floor division; with stride 1 no division is needed. */
    Expr *first = lsub(L, li(L, G->plo[a]), lmul(L, tap, li(L, G->d[a])));
    Expr *last = lsub(L, li(L, G->in[a] - 1 + G->plo[a]), lmul(L, tap, li(L, G->d[a])));
    if (s == 1) {
        r.lo = lmax(L, li(L, 0), first);
        /* last + 1; lo >= 0 makes the loop empty when last < 0 */
        r.hi = lsub(L, li(L, G->in[a] + G->plo[a]), lmul(L, tap, li(L, G->d[a])));
    } else {
        r.lo = ldiv(L, ladd(L, lmax(L, li(L, 0), first), li(L, s - 1)), li(L, s));
        r.hi = ldiv(L, ladd(L, lmax(L, last, li(L, -1)), li(L, s)), li(L, s));
    }
    r.hi = lmin(L, li(L, G->out[a]), r.hi);
    return r;
}

/* The output-pixel loops of one tap.  `tap` holds kd, kh, kw; yb and xb
 * are the flat offsets of the output and input planes. */
Inner tap_nest(Lower *L, Stmt *p, const Geom *G, Expr *const tap[3], Expr *yb, Expr *xb)
{
    static const char *const oname[3] = {"od", "oh", "ow"};
    Expr *yoff = li(L, 0), *xoff = li(L, 0);
    Inner r = {0};
    for (int a = 0; a < 3; a++) {
        int s = G->s[a];
        TapRange t = tap_range(L, G, a, tap[a]);
        if (a == 2) {
            /* Row bases, so the innermost index is base + ow (+ ow*stride). */
            Expr *yrow = lbind(L, p, "yr", ladd(L, yb, lmul(L, yoff, li(L, G->out[2]))));
            Expr *xrow = lbind(L, p, "xr", ladd(L, ladd(L, xb, lmul(L, xoff, li(L, G->in[2]))), t.shift));
            Expr *o = lfor(L, &p, oname[a], t.lo, t.hi);
            r.body = p;
            r.yi = ladd(L, yrow, o);
            r.xi = ladd(L, xrow, lmul(L, o, li(L, s)));
        } else {
            Expr *o = lfor(L, &p, oname[a], t.lo, t.hi);
            yoff = lmad(L, yoff, G->out[a], o);
            xoff = lmad(L, xoff, G->in[a], ladd(L, lmul(L, o, li(L, s)), t.shift));
        }
    }
    return r;
}

/* The group of output channel oc; constant 0 without groups. */
static Expr *group_of(Lower *L, const Geom *G, Expr *oc)
{
    if (G->groups == 1)
        return li(L, 0);
    return ldiv(L, oc, li(L, G->n_out / G->groups));
}

/* kd, kh, kw loops appended to *p; returns the flat tap offset. */
Expr *tap_loops(Lower *L, Stmt **p, const Geom *G, Expr *tap[3])
{
    static const char *const kname[3] = {"kd", "kh", "kw"};
    for (int a = 0; a < 3; a++)
        tap[a] = lfor(L, p, kname[a], li(L, 0), li(L, G->k[a]));
    return lmad(L, lmad(L, tap[0], G->k[1], tap[1]), G->k[2], tap[2]);
}

void check_weight(const Geom *G, const Node *w)
{
    const Shape *s = &w->shape;
    int nsp = s->rank - 2;
    NETC_ASSERT(!s->batched && nsp >= 1 && nsp <= 3);
    NETC_ASSERT(s->d[0] == G->n_out && s->d[1] == G->n_in / G->groups);
    for (int i = 0; i < nsp; i++)
        NETC_ASSERT(s->d[2 + i] == G->k[3 - nsp + i]);
}

/* dx [N, C, D, H, W] = conv_transpose(dy [N, O, OD, OH, OW], w [O, C/g, K...]):
 * stride 1 runs lower_direct.c's micro-kernel; other strides the forward nest with the roles of x and y swapped, scattering w * dy
 * into dx.  Scattering needs no divisibility tests for strides. */
void lower_conv_dx(Lower *L)
{
    if (lower_conv_dx_vec(L))
        return;
    const Node *n = L->n;
    Geom G;
    geom_conv(&G, &n->p.conv, &n->shape, &lin(L, 0)->shape);
    check_weight(&G, lin(L, 1));
    enum { DX, DY, W };
    int cg = G.n_in / G.groups;

    Stmt *p = L->k->body;
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    lzero(L, p, DX, lmul(L, nb, li(L, G.n_in * G.in_sz)), li(L, G.n_in * G.in_sz));
    Expr *oc = lfor(L, &p, "oc", li(L, 0), li(L, G.n_out));
    Expr *yb = lbind(L, p, "yb", lmul(L, lmad(L, nb, G.n_out, oc), li(L, G.out_sz)));
    Expr *g = group_of(L, &G, oc);
    Expr *ic = lfor(L, &p, "ic", li(L, 0), li(L, cg));
    Expr *c = ladd(L, lmul(L, g, li(L, cg)), ic);
    Expr *xb = lbind(L, p, "xb", lmul(L, lmad(L, nb, G.n_in, c), li(L, G.in_sz)));
    Expr *wb = lbind(L, p, "wb", lmul(L, lmad(L, oc, cg, ic), li(L, G.k_sz)));
    Expr *tap[3];
    Expr *toff = tap_loops(L, &p, &G, tap);
    Expr *wv = lvar(L, ldecl(L, p, "wv", T_F32, lload(L, W, ladd(L, wb, toff))));
    Inner in = tap_nest(L, p, &G, tap, yb, xb);
    lstore(L, in.body, DX, in.xi, fmul(L, wv, lload(L, DY, in.yi)), true);
}

/* dw [O, C/g, KD, KH, KW] = sum over n, od, oh, ow of x[n, c, shifted] * dy[n, o, od, oh, ow]:
 * lower_direct.c's vector kernel when the output channels per group are
 * whole vectors, else scalar loops. */
void lower_conv_dw(Lower *L)
{
    if (lower_conv_dw_vec(L))
        return;
    const Node *n = L->n;
    Geom G;
    geom_conv(&G, &n->p.conv, &lin(L, 0)->shape, &lin(L, 1)->shape);
    check_weight(&G, n);
    enum { DW, X, DY };
    int cg = G.n_in / G.groups;

    Stmt *p = L->k->body;
    Expr *oc = lfor(L, &p, "oc", li(L, 0), li(L, G.n_out));
    Expr *g = group_of(L, &G, oc);
    Expr *ic = lfor(L, &p, "ic", li(L, 0), li(L, cg));
    Expr *c = ladd(L, lmul(L, g, li(L, cg)), ic);
    Expr *wb = lbind(L, p, "wb", lmul(L, lmad(L, oc, cg, ic), li(L, G.k_sz)));
    Expr *tap[3];
    Expr *toff = tap_loops(L, &p, &G, tap);
    int acc = ldecl(L, p, "acc", T_F32, lf(L, 0.0f));

    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    Expr *yb = lbind(L, q, "yb", lmul(L, lmad(L, nb, G.n_out, oc), li(L, G.out_sz)));
    Expr *xb = lbind(L, q, "xb", lmul(L, lmad(L, nb, G.n_in, c), li(L, G.in_sz)));
    Inner in = tap_nest(L, q, &G, tap, yb, xb);
    lassign(L, in.body, acc,
            fadd(L, lvar(L, acc), fmul(L, lload(L, X, in.xi), lload(L, DY, in.yi))));

    lstore(L, p, DW, ladd(L, wb, toff), lvar(L, acc), false);
}

/* db [C] = sum of dy [N, C, rest...] over n and rest (rest is empty for a
 * dense layer's dy [N, C]).  With 16 or more positions per channel the sum
 * is split in the IR into 16 lanes, part[s] summing positions s, s+16, ...
 * over the batch in order, then added in lane order: the inner loop runs
 * over independent lanes (vectorised, the same in both backends) instead
 * of one serial chain.  Channels are independent (each has its own lanes),
 * so they may run on different threads. */
void lower_bias_grad(Lower *L)
{
    enum { LANES = 16 };
    const Node *dy = lin(L, 0);
    NETC_ASSERT(dy->shape.batched && dy->shape.rank >= 1);
    int C = dy->shape.d[0];
    int rest = lnumel(L, dy->id) / C;
    NETC_ASSERT(lnumel(L, L->n->id) == C);
    enum { DB, DY };

    Stmt *p = L->k->body;
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    if (rest < LANES) {
        int acc = ldecl(L, p, "acc", T_F32, lf(L, 0.0f));
        Stmt *q = p;
        Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
        Expr *base = lbind(L, q, "base", lmul(L, lmad(L, nb, C, c), li(L, rest)));
        Expr *r = lfor(L, &q, "r", li(L, 0), li(L, rest));
        lassign(L, q, acc, fadd(L, lvar(L, acc), lload(L, DY, ladd(L, base, r))));
        lstore(L, p, DB, c, lvar(L, acc), false);
        return;
    }
    /* one row of lanes per channel: the channels are independent */
    int part = kernel_scratch(L->a, L->k, "part", (long)C * LANES, 0);
    Expr *pb = lbind(L, p, "pb", lmul(L, c, li(L, LANES)));
    lzero(L, p, part, pb, li(L, LANES));
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    Expr *base = lbind(L, q, "base", lmul(L, lmad(L, nb, C, c), li(L, rest)));
    Stmt *t = q;
    Expr *rq = lfor(L, &t, "rq", li(L, 0), li(L, rest / LANES));
    Expr *r0 = lbind(L, t, "r0", ladd(L, base, lmul(L, rq, li(L, LANES))));
    Expr *s = lfor(L, &t, "s", li(L, 0), li(L, LANES));
    lstore(L, t, part, ladd(L, pb, s), lload(L, DY, ladd(L, r0, s)), true);
    if (rest % LANES) {
        t = q;
        s = lfor(L, &t, "s", li(L, 0), li(L, rest % LANES));
        lstore(L, t, part, ladd(L, pb, s), lload(L, DY, ladd(L, ladd(L, base, li(L, rest / LANES * LANES)), s)), true);
    }
    int acc = ldecl(L, p, "acc", T_F32, lload(L, part, pb));
    q = p;
    s = lfor(L, &q, "s", li(L, 1), li(L, LANES));
    lassign(L, q, acc, fadd(L, lvar(L, acc), lload(L, part, ladd(L, pb, s))));
    lstore(L, p, DB, c, lvar(L, acc), false);
}
