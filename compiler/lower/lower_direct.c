/* lower_direct.c - the register-blocked direct convolution (ALGO_DIRECT).
 *
 * Forward convolutions, and the input gradient of stride-1 ones, as one
 * micro-kernel: a tile of RC output channels x RH output rows x NV vectors
 * of V consecutive output pixels along the width lives in RC*RH*NV vector
 * accumulators for the whole reduction over (input channel, kd, kh, kw).
 * Each tap loads RH*NV vectors of the input and broadcasts RC weights:
 *
 *   for nb in 0..N:                         // only when xp is needed, else t
 *                                           // runs over the batch too
 *   xp [C, Dp, Hp, P, Wq] = x[nb] padded with zeros, split into P = stride_w
 *                           phases along w (only when padded or strided)
 *   for t in 0..G*(Og/RC)*OD*(OH/RH):                    // independent
 *     vec acc[r][rr][v] = bias[oc0 + r]
 *     for ic in 0..C/G: for kd: for kh: for kw (unrolled):
 *       vec xv[rr][v] = xp[ic, od*sd + kd*dd, (oh0+rr)*sh + kh*dh,
 *                          phase (kw*dw) % sw, ow0 + v*V + (kw*dw) / sw ..+V]
 *       acc[r][rr][v] = fma(bcast(w[oc0 + r, ic, kd, kh, kw]), xv[rr][v], acc)
 *     y[oc0 + r, od, oh0 + rr, ow0 + v*V ..+V] = epi(acc[r][rr][v])  // lepi
 *
 * In the phase-split copy every tap reads consecutive memory whatever the
 * stride and dilation, and no load needs a bounds check; it is made per
 * sample, right before the sample's tiles, so they read it from the cache.  Tiles are sized
 * from the target's lanes and vector registers (accumulators, one row of
 * input vectors and a broadcast); depthwise layers (Og = 1) take rows
 * instead of channels.  The width is covered by tiles of NV*V columns, then
 * one tile of the vectors left, which ends at OW and recomputes a few
 * columns of the one before it with the same summation, so it stores the
 * same bits.  A plane with unit strides may be computed as one long row at
 * the source's row pitch (its rows one after the other) into a scratch yx,
 * then copied out (per sample, right after the sample's tiles, when the
 * source is per sample: yx is then one sample's, read back from the
 * cache): always when it is narrower than V, and for wider planes
 * when the row tiles' tails cost more (dconv_flat).  So may a strided 2D
 * layer's: its copy then splits the rows into stride_h phases as well,
 * xp [C, sh, sw, Hq, Wq] (split_rows), so that output row oh + 1 reads Wq
 * floats after row oh for every tap (AlexNet's conv1: 57 columns computed
 * per row of 55 instead of 64, 4.5% faster at batch 32).  Other narrow
 * planes run the same tiles with floats.  Output-channel and row tails are
 * the same micro-kernel with smaller RC / RH, each region of tiles one independent
 * loop over the batch, groups, channel blocks, depth and row blocks
 * (threads at batch 1 too).  Every output is the bias plus its taps in the order
 * (ic, kd, kh, kw), whatever the thread count.
 *
 * conv_dx with stride 1 is the forward convolution of dy with the weights
 * flipped and their channel axes swapped, padded by (K-1)*d - pad; other
 * strides keep the scalar scatter of lower_conv.c.
 *
 * conv_dw (the weight gradient, lower_conv_dw_vec) reads the same source:
 * tiles of taps x output channels in vector accumulators, one input value
 * broadcast per tap and pixel against a vector of the transposed dy (see
 * "the weight gradient" below); a layer with one input channel per group
 * and output channels that are not whole vectors (depthwise) sums each
 * tap in vector lanes over copies of both planes instead (dwise_dw, "the
 * depthwise weight gradient").
 */
#include "lower_direct.h"
#include "lower_impl.h"

enum { RC_MAX = 8, RH_MAX = 4, NV_MAX = 4, KW_UNROLL = 16 };

/* One convolution as the micro-kernel sees it: y [N, O, out] from x
 * [N, C, in] with `groups` groups of og output and cg input channels. */
typedef struct {
    int y, x, w, b;            /* buffers; b < 0: no bias */
    int groups, og, cg, n_in, n_out;
    int in[3], out[3], k[3], s[3], d[3], plo[3];
    int k_sz;
    bool dx;                   /* weights read flipped, channel axes swapped */
    /* the tensor the taps read: x itself or its padded phase-split copy */
    int src, ext[3], phases, wq; /* extents Dp, Hp, (phases x wq) per channel */
    long plane;                /* floats per channel of src */
    /* a strided 2D layer in the flat form (dconv_flat): xp [C, rp, phases,
     * hq, wq], the rows split into rp = stride_h phases too, so that output
     * row oh + 1 reads wq floats after row oh for every tap */
    bool split_rows;
    int rp, hq;
    int V, nv, rc, rh;         /* lanes, vectors per tile, channels, rows */
    const Epi *epi;            /* applied at the stores, or NULL */
    bool xp1;                  /* src is xp of one sample (dconv_source_at) */
    bool y1;                   /* y is the flat form's yx of one sample */
} DConv;

static int cdiv_floor(int a, int b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The next factor of a flattened index, innermost first: t % ext, and
 * t becomes t / ext (no code for an extent of 1). */
static Expr *unflatten(Lower *L, Stmt *p, Expr **t, int ext, const char *name)
{
    if (ext == 1)
        return li(L, 0);
    Expr *v = lbind(L, p, name, ex_bin(L->a, X_MOD, *t, li(L, ext)));
    *t = lbind(L, p, "t", ldiv(L, *t, li(L, ext)));
    return v;
}

/* Tile sizes from the target: accumulators plus the vectors of one row of
 * x and a broadcast weight fit the vector registers. */
static void dconv_tiles(Lower *L, DConv *D)
{
    int V = L->t->vlen;
    D->V = V >= 2 && D->out[2] >= V ? V : 1;
    if (D->V >= 2)
        kernel_vectors(L->k, V);
    /* vectors per tile: at most the row's width, more with more registers */
    int cols = D->out[2] / D->V, nvmax = D->V >= 2 ? (L->t->vregs >= 32 ? 3 : 2) : 4;
    D->nv = cols < nvmax ? cols : nvmax;
    int amax = L->t->vregs - D->nv - 1;
    if (amax < D->nv)
        amax = D->nv;
    int rc = amax / D->nv;
    rc = rc > RC_MAX ? RC_MAX : rc;
    D->rc = rc > D->og ? D->og : rc;
    int rh = amax / (D->nv * D->rc);
    rh = rh > RH_MAX ? RH_MAX : rh < 1 ? 1 : rh;
    D->rh = rh > D->out[1] ? D->out[1] : rh;
}

/* Extent of the input that the outputs read along axis a, from the padded
 * origin. */
static int need(const DConv *D, int a)
{
    return (D->out[a] - 1) * D->s[a] + (D->k[a] - 1) * D->d[a] + 1;
}

/* The source the taps read: x itself when unpadded with unit width stride,
 * else xp, zero-padded and split into stride_w phases along w: of the whole
 * batch at the kernel's start (nb NULL), or, appended to p, of sample nb
 * alone (D->xp1: xp [C, ...] then holds one sample). */
static bool dconv_reads_x(const DConv *D)
{
    bool direct = D->s[2] == 1;
    for (int a = 0; a < 3; a++)
        direct = direct && D->plo[a] == 0 && need(D, a) <= D->in[a];
    return direct;
}

/* Floats between the column phases of one source row: a row's phases
 * follow each other, or, with split rows, whole phase planes do. */
static int phase_stride(const DConv *D)
{
    return D->split_rows ? D->hq * D->wq : D->wq;
}

/* The padded copy's extents (D->ext, phases, wq, plane per channel). */
static void dconv_xp_geom(DConv *D)
{
    int P = D->s[2];
    D->ext[0] = need(D, 0);
    D->ext[1] = need(D, 1);
    D->phases = P;
    D->wq = D->out[2] + (D->k[2] - 1) * D->d[2] / P;
    D->plane = (long)D->ext[0] * D->ext[1] * P * D->wq;
    if (D->split_rows) {
        NETC_ASSERT(D->ext[0] == 1 && D->rp * D->hq >= D->ext[1]);
        D->plane = (long)D->rp * P * D->hq * D->wq;
    }
}

/* The source's extents: x's own, or the padded copy's. */
static void dconv_src_geom(DConv *D)
{
    if (!dconv_reads_x(D)) {
        dconv_xp_geom(D);
        return;
    }
    D->ext[0] = D->in[0];
    D->ext[1] = D->in[1];
    D->phases = 1;
    D->wq = D->in[2];
    D->plane = (long)D->in[0] * D->in[1] * D->in[2];
}

/* Appends to p the copy of channel xc of x (counted over the whole batch)
 * into the padded phase-split plane of src at cb: planes and rows outside
 * the input are zeroed, the others copied with zero borders. */
static void dconv_copy(Lower *L, const DConv *D, Stmt *p, Expr *xc, Expr *cb)
{
    int P = D->phases, rowlen = P * D->wq, lo[2], hi[2];
    for (int a = 0; a < 2; a++) {
        /* padded rows [lo, hi) come from input rows [lo - plo, hi - plo) */
        lo[a] = D->plo[a] < 0 ? 0 : D->plo[a] > D->ext[a] ? D->ext[a] : D->plo[a];
        hi[a] = D->plo[a] + D->in[a];
        hi[a] = hi[a] > D->ext[a] ? D->ext[a] : hi[a] < lo[a] ? lo[a] : hi[a];
    }
    long slice = (long)D->ext[1] * rowlen;
    if (D->split_rows) /* rows of a phase are not contiguous: all of it */
        lzero(L, p, D->src, cb, li(L, (int)D->plane));
    if (lo[0] > 0)
        lzero(L, p, D->src, cb, li(L, (int)(lo[0] * slice)));
    if (hi[0] < D->ext[0])
        lzero(L, p, D->src, ladd(L, cb, li(L, (int)(hi[0] * slice))), li(L, (int)((D->ext[0] - hi[0]) * slice)));
    Stmt *q = p;
    Expr *dp = lfor(L, &q, "dp", li(L, lo[0]), li(L, hi[0]));
    Expr *sb = lbind(L, q, "sb", ladd(L, cb, lmul(L, dp, li(L, (int)slice))));
    if (lo[1] > 0 && !D->split_rows)
        lzero(L, q, D->src, sb, li(L, lo[1] * rowlen));
    if (hi[1] < D->ext[1] && !D->split_rows)
        lzero(L, q, D->src, ladd(L, sb, li(L, hi[1] * rowlen)), li(L, (D->ext[1] - hi[1]) * rowlen));
    Stmt *copy = q;
    Expr *hp = lfor(L, &copy, "hp", li(L, lo[1]), li(L, hi[1]));
    /* padded row hp starts at (hp % rp, phase 0, hp / rp) when split */
    Expr *ob = lbind(L, copy, "ob", ladd(L, sb, D->split_rows
        ? lmul(L, lmad(L, ex_bin(L->a, X_MOD, hp, li(L, D->rp)), P * D->hq, ldiv(L, hp, li(L, D->rp))), li(L, D->wq))
        : lmul(L, hp, li(L, rowlen))));
    int pstride = phase_stride(D);
    Expr *sd = lsub(L, dp, li(L, D->plo[0])), *sh = lsub(L, hp, li(L, D->plo[1]));
    Expr *xr = lbind(L, copy, "xr",
                     lmul(L, lmad(L, lmad(L, xc, D->in[0], sd), D->in[1], sh), li(L, D->in[2])));
    for (int ph = 0; ph < P; ph++) {
        /* xp[.., ph, q] = x[.., q*P + ph - plo] where 0 <= q*P + ph - plo < W */
        int qlo = -cdiv_floor(-(D->plo[2] - ph), P), qhi = -cdiv_floor(-(D->in[2] + D->plo[2] - ph), P);
        qlo = qlo < 0 ? 0 : qlo > D->wq ? D->wq : qlo;
        qhi = qhi > D->wq ? D->wq : qhi < qlo ? qlo : qhi;
        Expr *pb = ladd(L, ob, li(L, ph * pstride));
        if (qlo > 0 && !D->split_rows)
            lzero(L, copy, D->src, pb, li(L, qlo));
        if (qhi > qlo) {
            Stmt *r = copy;
            Expr *qi = lfor(L, &r, "q", li(L, qlo), li(L, qhi));
            lstore(L, r, D->src, ladd(L, pb, qi),
                   lload(L, D->x, ladd(L, xr, ladd(L, lmul(L, qi, li(L, P)), li(L, ph - D->plo[2])))), false);
        }
        if (qhi < D->wq && !D->split_rows)
            lzero(L, copy, D->src, ladd(L, pb, li(L, qhi)), li(L, D->wq - qhi));
    }
}

/* The source the taps read, appended to p: x itself, or xp [N*C, ...] of
 * the whole batch (nb NULL), or xp [C, ...] of sample nb alone (D->xp1). */
static void dconv_source_at(Lower *L, DConv *D, Stmt *p, Expr *nb)
{
    dconv_src_geom(D);
    D->xp1 = false;
    if (dconv_reads_x(D)) {
        D->src = D->x;
        return;
    }
    D->xp1 = nb != NULL;
    D->src = nb ? kernel_scratch(L->a, L->k, "xp", (long)D->n_in * D->plane, 0)
                : kernel_scratch(L->a, L->k, "xp", 0, (long)D->n_in * D->plane);
    /* one channel per iteration */
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), nb ? li(L, D->n_in) : lmul(L, lbatch(L), li(L, D->n_in)));
    Expr *xc = nb ? lmad(L, nb, D->n_in, nc) : nc; /* the channel of x it copies */
    dconv_copy(L, D, p, xc, lbind(L, p, "cb", lmul(L, nc, li(L, (int)D->plane))));
}

static void dconv_source(Lower *L, DConv *D)
{
    dconv_source_at(L, D, L->k->body, NULL);
}

/* Output tile: channels oc0 .. +rc (oc0 the global channel, cl0 its index
 * in the group g), rows oh0 .. +rh of depth od, columns ow0 .. +nv*V. */
static void dconv_tile(Lower *L, Stmt *p, const DConv *D, Expr *nb, Expr *g, Expr *cl0, Expr *od,
                       Expr *oh0, Expr *ow0, int rc, int rh, int nv)
{
    int V = D->V;
    int acc[RC_MAX][RH_MAX][NV_MAX];
    NETC_ASSERT(rc >= 1 && rc <= RC_MAX && rh >= 1 && rh <= RH_MAX && nv >= 1 && nv <= NV_MAX);
    Expr *oc0 = ladd(L, lmul(L, g, li(L, D->og)), cl0);
    for (int r = 0; r < rc; r++) {
        Expr *init = lf(L, 0.0f);
        if (D->b >= 0)
            init = lload(L, D->b, ladd(L, oc0, li(L, r)));
        for (int rr = 0; rr < rh; rr++)
            for (int v = 0; v < nv; v++)
                acc[r][rr][v] = ldecl(L, p, "acc", lvt(V), lvsplat(L, V, init));
    }
    int rowlen = D->phases * D->wq;
    Stmt *q = p;
    Expr *ic = lfor(L, &q, "ic", li(L, 0), li(L, D->cg));
    Expr *c = ladd(L, lmul(L, g, li(L, D->cg)), ic);
    Expr *xb = lbind(L, q, "xb",
                     ladd(L, lmul(L, D->xp1 ? c : lmad(L, nb, D->n_in, c), li(L, (int)D->plane)),
                          lmul(L, lmad(L, lmul(L, od, li(L, D->s[0])), D->ext[1], lmul(L, oh0, li(L, D->s[1]))),
                               li(L, rowlen))));
    /* w [O, C/g, K] read at (oc0 + r, ic, tap); conv_dx reads w [g*cg + ic,
     * cl0 + r, K - 1 - tap] (its og is the forward layer's C/g) */
    Expr *wb;
    int wr, ws;
    if (!D->dx) {
        wb = lbind(L, q, "wb", lmul(L, lmad(L, oc0, D->cg, ic), li(L, D->k_sz)));
        wr = D->cg * D->k_sz;
        ws = 1;
    } else {
        wb = lbind(L, q, "wb",
                   ladd(L, lmul(L, lmad(L, lmad(L, g, D->cg, ic), D->og, cl0), li(L, D->k_sz)), li(L, D->k_sz - 1)));
        wr = D->k_sz;
        ws = -1;
    }
    Expr *kd = lfor(L, &q, "kd", li(L, 0), li(L, D->k[0]));
    Expr *kh = lfor(L, &q, "kh", li(L, 0), li(L, D->k[1]));
    Expr *tb = lmad(L, kd, D->k[1], kh); /* (kd, kh) of the flat tap */
    Expr *rb;
    if (D->split_rows) {
        /* row kh*dh of output row 0: phase (kh*dh) % rp, row (kh*dh) / rp */
        Expr *r = lmul(L, kh, li(L, D->d[1]));
        rb = lbind(L, q, "rb", ladd(L, xb, lmul(L, lmad(L, ex_bin(L->a, X_MOD, r, li(L, D->rp)), D->phases * D->hq,
                                                        ldiv(L, r, li(L, D->rp))),
                                               li(L, D->wq))));
    } else {
        rb = lbind(L, q, "rb",
                   ladd(L, xb, lmul(L, lmad(L, lmul(L, kd, li(L, D->d[0])), D->ext[1], lmul(L, kh, li(L, D->d[1]))),
                                    li(L, rowlen))));
    }
    int pstride = phase_stride(D);
    Expr *wt = lbind(L, q, "wt", ladd(L, wb, lmul(L, tb, li(L, ws * D->k[2]))));
    bool unroll = D->k[2] <= KW_UNROLL;
    int nkw = unroll ? D->k[2] : 1;
    Stmt *kq = q;
    Expr *kwv = unroll ? NULL : lfor(L, &kq, "kw", li(L, 0), li(L, D->k[2]));
    for (int u = 0; u < nkw; u++) {
        Expr *kw = unroll ? li(L, u) : kwv;
        Expr *sh = lmul(L, kw, li(L, D->d[2]));
        Expr *ph = D->phases == 1 ? li(L, 0) : ex_bin(L->a, X_MOD, sh, li(L, D->phases));
        Expr *qo = ldiv(L, sh, li(L, D->phases));
        Expr *xo = ladd(L, rb, ladd(L, lmul(L, ph, li(L, pstride)), ladd(L, ow0, qo)));
        int xv[RH_MAX][NV_MAX];
        for (int rr = 0; rr < rh; rr++)
            for (int v = 0; v < nv; v++)
                xv[rr][v] = ldecl(L, kq, "xv", lvt(V),
                                  lvld(L, V, D->src, ladd(L, xo, li(L, rr * D->s[1] * rowlen + v * V))));
        Expr *wk = ladd(L, wt, lmul(L, kw, li(L, ws)));
        for (int r = 0; r < rc; r++) {
            int wv = ldecl(L, kq, "wv", lvt(V), lvsplat(L, V, lload(L, D->w, ladd(L, wk, li(L, r * wr)))));
            for (int rr = 0; rr < rh; rr++)
                for (int v = 0; v < nv; v++)
                    lassign(L, kq, acc[r][rr][v], lfma(L, lvar(L, wv), lvar(L, xv[rr][v]), lvar(L, acc[r][rr][v])));
        }
    }
    int osz = D->out[0] * D->out[1] * D->out[2];
    Expr *yb = lbind(L, p, "yo",
                     ladd(L, lmul(L, D->y1 ? oc0 : lmad(L, nb, D->n_out, oc0), li(L, osz)),
                          ladd(L, lmul(L, lmad(L, od, D->out[1], oh0), li(L, D->out[2])), ow0)));
    for (int r = 0; r < rc; r++)
        for (int rr = 0; rr < rh; rr++)
            for (int v = 0; v < nv; v++) {
                Expr *a = lvar(L, acc[r][rr][v]), *yi = ladd(L, yb, li(L, r * osz + rr * D->out[2] + v * V));
                lstore(L, p, D->y, yi, D->epi ? lepi(L, p, D->epi, a, yi) : a, false);
            }
}

/* Every column of rows oh0 .. +rh: tiles of nv*V, then one tile of the
 * vectors left, ending at the row's end (nv*V <= OW, so it starts inside
 * the row). */
static void dconv_row(Lower *L, Stmt *p, const DConv *D, Expr *nb, Expr *g, Expr *cl0, Expr *od, Expr *oh0,
                      int rc, int rh)
{
    int V = D->V, W = D->out[2], tw = D->nv * V;
    Stmt *q = p;
    Expr *ot = lfor(L, &q, "owt", li(L, 0), li(L, W / tw));
    dconv_tile(L, q, D, nb, g, cl0, od, oh0, lmul(L, ot, li(L, tw)), rc, rh, D->nv);
    int nt = (W % tw + V - 1) / V;
    if (nt > 0)
        dconv_tile(L, p, D, nb, g, cl0, od, oh0, li(L, W - nt * V), rc, rh, nt);
}

/* The tiles of rc channels x rh rows at channel blocks [cb0, cb0 + ncb)
 * and row blocks [hb0, hb0 + nhb) (blocks of D->rc channels, D->rh rows)
 * of every sample, group and depth: one independent loop. */
static void dconv_region(Lower *L, const DConv *D, Stmt *p, Expr *nb, int ncb, int cb0, int rc, int nhb, int hb0,
                         int rh)
{
    if (ncb == 0 || nhb == 0)
        return;
    Expr *count = li(L, D->groups * ncb * D->out[0] * nhb);
    Expr *t = lfor_indep(L, &p, "t", li(L, 0), nb ? count : lmul(L, lbatch(L), count));
    Expr *hb = unflatten(L, p, &t, nhb, "hb");
    Expr *od = unflatten(L, p, &t, D->out[0], "od");
    Expr *cb = unflatten(L, p, &t, ncb, "cb");
    /* of sample nb only: what is left of t is the group */
    Expr *g = nb ? t : unflatten(L, p, &t, D->groups, "g");
    Expr *cl0 = lbind(L, p, "cl0", lmul(L, ladd(L, cb, li(L, cb0)), li(L, D->rc)));
    Expr *oh0 = lbind(L, p, "oh0", lmul(L, ladd(L, hb, li(L, hb0)), li(L, D->rh)));
    dconv_row(L, p, D, nb ? nb : t, g, cl0, od, oh0, rc, rh);
}

/* Vector columns of the row tiles over one output row of width W: tiles of
 * nv vectors, then one of the vectors left (dconv_row), which keeps fewer
 * accumulators busy for the same loads and so counts half again. */
static double row_cost(int W, int V, int nvmax)
{
    int cols = W / V, nv = cols < nvmax ? cols : nvmax;
    if (nv < 1)
        return V * 1.5;
    int tw = nv * V, nt = (W % tw + V - 1) / V;
    return W / tw * tw + nt * V * (nt < nv ? 1.5 : 1.0);
}

/* Floats of work per output pixel that copying the flat form's yx out
 * costs, in units of one lane of an FMA (measured: 64->64 3x3 56x56 gains,
 * 4 groups of 32->32 at 28x28 loses). */
#define FLAT_COPY_COST 20

/* With unit strides the rows of the source, one after the other, are one
 * long row of pitch wq, and so are the outputs computed over it (the wq -
 * OW columns past each row's end are computed and dropped, the rest copied
 * out of a scratch yx).  Taken for a plane narrower than a vector, which
 * row tiles would cover with floats, and wherever the row tiles' tail
 * computes more columns than the dropped ones and the copy cost: a 56-wide
 * row of 16-lane vectors is a tile of 48 and a tail of 16 (64 columns),
 * its flat form 58 per row.  A strided 2D layer has the same form when its
 * copy xp splits the rows into stride_h phases as it splits the columns
 * (split_rows): AlexNet's conv1, 55 columns at stride 4, computes 57 per
 * row instead of 64.  Returns the flat width, or 0. */
static int flat_width(const Lower *L, const DConv *D, int wq)
{
    int V = L->t->vlen;
    bool strided = D->s[1] != 1 || D->s[2] != 1;
    if (V < 2 || D->out[1] == 1)
        return 0;
    if (strided && (dconv_reads_x(D) || D->in[0] != 1 || D->out[0] != 1 || D->k[0] != 1))
        return 0;
    int F = (D->out[1] - 1) * wq + D->out[2];
    if (F < V)
        return 0;
    if (D->out[2] < V)
        return F;
    double red = (double)D->cg * D->k_sz; /* FMAs per output */
    int nvmax = L->t->vregs >= 32 ? 3 : 2;
    double rows = D->out[1] * row_cost(D->out[2], V, nvmax) * red;
    double flat = row_cost(F, V, nvmax) * red + FLAT_COPY_COST * (double)D->out[1] * D->out[2];
    return flat < rows ? F : 0;
}

/* Sets D->split_rows when a strided layer takes the flat form; before the
 * source is made (it decides its layout). */
static void dconv_split_rows(const Lower *L, DConv *D)
{
    if (D->s[1] == 1 && D->s[2] == 1)
        return;
    int wq = D->out[2] + (D->k[2] - 1) * D->d[2] / D->s[2];
    if (!flat_width(L, D, wq))
        return;
    D->split_rows = true;
    D->rp = D->s[1];
    D->hq = D->out[1] + (D->k[1] - 1) * D->d[1] / D->rp;
}

static int dconv_flat(const Lower *L, const DConv *D)
{
    bool strided = D->s[1] != 1 || D->s[2] != 1;
    if (strided && !D->split_rows)
        return 0;
    return flat_width(L, D, D->wq);
}

/* y [N*O*OD, OH, OW] = act(yx [N*O*OD, OH, wq]) for the flat form; with
 * nb, appended to p, of sample nb alone from its yx [O*OD, OH, wq] */
static void dconv_unflat(Lower *L, const DConv *D, int yx, int F, const Epi *epi, Stmt *p, Expr *nb)
{
    int OH = D->out[1], OW = D->out[2], planes = D->n_out * D->out[0];
    if (!nb)
        p = L->k->body;
    Expr *t = lfor_indep(L, &p, "t", li(L, 0), nb ? li(L, planes) : lmul(L, lbatch(L), li(L, planes)));
    Expr *oh = lfor(L, &p, "oh", li(L, 0), li(L, OH));
    Expr *ow = lfor(L, &p, "ow", li(L, 0), li(L, OW));
    Expr *v = lload(L, yx, ladd(L, lmad(L, t, F, lmul(L, oh, li(L, D->wq))), ow));
    Expr *yi = lmad(L, lmad(L, nb ? lmad(L, nb, planes, t) : t, OH, oh), OW, ow);
    lstore(L, p, D->y, yi, epi ? lepi(L, p, epi, v, yi) : v, false);
}

/* Returns whether the activation D->epi was applied. */
static bool dconv_emit(Lower *L, DConv *D)
{
    /* A copied source is made per sample, right before the sample's tiles
     * read it (it stays in the cache); tiles reading x itself take the
     * whole batch in each loop. */
    Stmt *p = L->k->body;
    Expr *nb = NULL;
    dconv_split_rows(L, D);
    if (!dconv_reads_x(D)) {
        nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
        dconv_source_at(L, D, p, nb);
        lpriv(L, p, D->src); /* the sample's padded copy: a workspace */
    } else {
        dconv_source(L, D);
    }
    int F = dconv_flat(L, D), OH = D->out[1], OW = D->out[2];
    const Epi *epi = D->epi;
    int y = D->y, yx = -1;
    if (F) {
        /* per sample when the source is: copied out while in the cache */
        long floats = (long)D->n_out * D->out[0] * F;
        D->out[1] = 1;
        D->out[2] = F;
        D->y1 = nb != NULL;
        D->y = yx = kernel_scratch(L->a, L->k, "yx", nb ? floats : 0, nb ? 0 : floats);
        if (nb)
            lpriv(L, p, yx);
        D->epi = NULL;
    }
    dconv_tiles(L, D);
    if (!F && D->V >= 2 && !lepi_vector(epi))
        D->epi = NULL;
    /* full tiles, then the row tail, the channel tail and both */
    int nfc = D->og / D->rc, nfh = D->out[1] / D->rh, rct = D->og % D->rc, rht = D->out[1] % D->rh;
    dconv_region(L, D, p, nb, nfc, 0, D->rc, nfh, 0, D->rh);
    dconv_region(L, D, p, nb, nfc, 0, D->rc, rht ? 1 : 0, nfh, rht);
    dconv_region(L, D, p, nb, rct ? 1 : 0, nfc, rct, nfh, 0, D->rh);
    dconv_region(L, D, p, nb, rct ? 1 : 0, nfc, rct, rht ? 1 : 0, nfh, rht);
    if (F) {
        D->y = y;
        D->out[1] = OH;
        D->out[2] = OW;
        dconv_unflat(L, D, yx, F, epi, p, nb);
        D->y1 = false;
        return epi != NULL;
    }
    return D->epi != NULL;
}

static void dconv_axes(DConv *D, const Geom *G)
{
    for (int a = 0; a < 3; a++) {
        D->k[a] = G->k[a];
        D->d[a] = G->d[a];
    }
    D->groups = G->groups;
    D->k_sz = G->k_sz;
}

/* D's sizes from G: the layer's own, or, for its input gradient (dx: a
 * stride-1 convolution of dy with the flipped weights), with the
 * channels and planes swapped and the padding mirrored. */
static void dconv_sizes(DConv *D, const Geom *G, bool dx)
{
    dconv_axes(D, G);
    D->n_in = dx ? G->n_out : G->n_in;
    D->n_out = dx ? G->n_in : G->n_out;
    D->og = D->n_out / G->groups;
    D->cg = D->n_in / G->groups;
    for (int a = 0; a < 3; a++) {
        D->in[a] = dx ? G->out[a] : G->in[a];
        D->out[a] = dx ? G->in[a] : G->out[a];
        D->s[a] = dx ? 1 : G->s[a];
        D->plo[a] = dx ? (G->k[a] - 1) * G->d[a] - G->plo[a] : G->plo[a];
    }
}

/* y [N, O, OD, OH, OW] = conv(x [N, C, D, H, W], w [O, C/g, KD, KH, KW]) + b [O] */
void lower_conv(Lower *L)
{
    const Node *n = L->n;
    Geom G;
    geom_conv(&G, &n->p.conv, &lin(L, 0)->shape, &n->shape);
    check_weight(&G, lin(L, 1));
    DConv D = {.y = 0, .x = 1, .w = 2, .b = node_own_nin(n) == 3 ? 3 : -1};
    dconv_sizes(&D, &G, false);
    D.epi = L->epi;
    L->epi_done = dconv_emit(L, &D);
}

/* dx [N, C, D, H, W] of a stride-1 layer, or false for lower_conv.c */
bool lower_conv_dx_vec(Lower *L)
{
    const Node *n = L->n;
    Geom G;
    geom_conv(&G, &n->p.conv, &n->shape, &lin(L, 0)->shape);
    check_weight(&G, lin(L, 1));
    for (int a = 0; a < 3; a++)
        if (G.s[a] != 1)
            return false;
    /* dx [N, C, in] = conv(dy [N, O, out], flipped w), channels swapped */
    DConv D = {.y = 0, .x = 1, .w = 2, .b = -1, .dx = true};
    dconv_sizes(&D, &G, true);
    D.epi = L->epi;
    L->epi_done = dconv_emit(L, &D);
    return true;
}

/* ---- the weight gradient ----
 *
 * dw [O, Cg, K] as its transpose dwt [G, Cg*K, Og]: row r = (ic, tap) of
 * group g, column o, summed over the batch and the output pixels:
 *
 *   dwt [g, r, o] = sum over nb, pixels f of src[nb, g*Cg + ic, f + tap] dyt [g, f, o]
 *
 * with src = x or its padded phase-split copy xp (dconv_source, as the
 * forward pass reads it) and dyt [G, P, Og] one sample's dy with the pixels
 * and channels swapped.  A tile of MR rows x NV vectors of Og lives in
 * vector accumulators across the sample's pixels: each pixel loads NV
 * vectors of dyt's row f and broadcasts MR input values, MR*NV fused
 * multiply-adds.  No unfold: a row's input values are read from src at
 * the row's offset (its channel and tap, fixed per tile), and the pixels
 * step through src as the forward kernel's taps do.  Per sample, first
 * dyt (independent over groups and rows), then every tile (independent
 * over groups, column blocks and row blocks) reloads its dwt, adds the
 * sample's pixels in order and stores it: each weight is summed over the
 * samples in order and over each sample's pixels in (od, oh, ow) order,
 * for any thread count.  Last, dw [g*Og + o, r] = dwt [g, r, o]. */
typedef struct {
    DConv D;       /* the forward geometry and the source the taps read */
    int rows, P;   /* Cg*K and the output pixels                        */
    int dyt, dwt;  /* scratch                                           */
    int V, nv, mr; /* lanes, vectors of Og per tile, rows per tile      */
} DwConv;

enum { DW_MR_MAX = 16, DW_NV_MAX = 2 };

bool direct_dw_tile(int vlen, int vregs, int og, int rows, int *V, int *mr, int *nv)
{
    *V = vlen > 1 ? vlen : 1;
    if (og % *V != 0)
        return false;
    int cols = og / *V;
    *nv = cols < DW_NV_MAX ? cols : DW_NV_MAX;
    int m = (vregs - *nv - 1) / *nv;
    m = m > DW_MR_MAX ? DW_MR_MAX : m < 1 ? 1 : m;
    *mr = m > rows ? rows : m;
    return true;
}

/* Tile of rows r0 .. +mr and columns o0 .. +nv*V of group g for sample nb */
static void dw_tile(Lower *L, Stmt *p, const DwConv *W, Expr *nb, Expr *g, Expr *r0, Expr *o0, int mr, int nv)
{
    enum { DW, X, DY };
    const DConv *D = &W->D;
    int V = W->V, og = D->og, K = D->k_sz, rowlen = D->phases * D->wq;
    int acc[DW_MR_MAX][DW_NV_MAX];
    Expr *cb = lbind(L, p, "cb", lmad(L, lmad(L, g, W->rows, r0), og, o0));
    /* each row's offset in src: its channel's plane and its tap's shift */
    Expr *rb[DW_MR_MAX];
    for (int i = 0; i < mr; i++) {
        Expr *r = ladd(L, r0, li(L, i));
        Expr *ic = ldiv(L, r, li(L, K)), *t = ex_bin(L->a, X_MOD, r, li(L, K));
        Expr *kw = ex_bin(L->a, X_MOD, t, li(L, D->k[2]));
        Expr *kh = ex_bin(L->a, X_MOD, ldiv(L, t, li(L, D->k[2])), li(L, D->k[1]));
        Expr *kd = ldiv(L, t, li(L, D->k[2] * D->k[1]));
        Expr *sh = lmul(L, kw, li(L, D->d[2]));
        Expr *ph = D->phases == 1 ? li(L, 0) : ex_bin(L->a, X_MOD, sh, li(L, D->phases));
        Expr *c = lmad(L, g, D->cg, ic);
        if (!D->xp1)
            c = lmad(L, nb, D->n_in, c);
        Expr *off = lmad(L, lmul(L, kd, li(L, D->d[0])), D->ext[1], lmul(L, kh, li(L, D->d[1])));
        rb[i] = lbind(L, p, "rb",
                      ladd(L, lmul(L, c, li(L, (int)D->plane)),
                           ladd(L, lmul(L, off, li(L, rowlen)),
                                ladd(L, lmul(L, ph, li(L, D->wq)), ldiv(L, sh, li(L, D->phases))))));
        for (int v = 0; v < nv; v++)
            acc[i][v] = ldecl(L, p, "acc", lvt(V), lvld(L, V, W->dwt, ladd(L, cb, li(L, i * og + v * V))));
    }
    Stmt *q = p;
    Expr *od = lfor(L, &q, "od", li(L, 0), li(L, D->out[0]));
    Expr *oh = lfor(L, &q, "oh", li(L, 0), li(L, D->out[1]));
    Expr *xr = lbind(L, q, "xr",
                     lmul(L, lmad(L, lmul(L, od, li(L, D->s[0])), D->ext[1], lmul(L, oh, li(L, D->s[1]))),
                          li(L, rowlen)));
    Expr *fr = lbind(L, q, "fr", lmad(L, lmad(L, g, D->out[0], od), D->out[1], oh));
    Expr *ow = lfor(L, &q, "ow", li(L, 0), li(L, D->out[2]));
    Expr *fb = lbind(L, q, "fb", ladd(L, lmul(L, lmad(L, fr, D->out[2], ow), li(L, og)), o0));
    int dv[DW_NV_MAX];
    for (int v = 0; v < nv; v++)
        dv[v] = ldecl(L, q, "dv", lvt(V), lvld(L, V, W->dyt, ladd(L, fb, li(L, v * V))));
    /* in the phase-split source, pixel ow of every tap is column ow of its phase */
    Expr *xo = lbind(L, q, "xo", ladd(L, xr, ow));
    for (int i = 0; i < mr; i++) {
        int xv = ldecl(L, q, "xv", lvt(V), lvsplat(L, V, lload(L, D->src, ladd(L, rb[i], xo))));
        for (int v = 0; v < nv; v++)
            lassign(L, q, acc[i][v], lfma(L, lvar(L, xv), lvar(L, dv[v]), lvar(L, acc[i][v])));
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < nv; v++)
            lstore(L, p, W->dwt, ladd(L, cb, li(L, i * og + v * V)), lvar(L, acc[i][v]), false);
}

/* The tiles of mr rows at row blocks [rb0, rb0 + nrb) (blocks of W->mr)
 * and nv vectors at column blocks [ob0, ob0 + nob) (blocks of W->nv*V) of
 * every group, for sample nb: one independent loop in p. */
static void dw_region(Lower *L, Stmt *p, const DwConv *W, Expr *nb, int nrb, int rb0, int mr, int nob, int ob0,
                      int nv)
{
    if (nrb == 0 || nob == 0)
        return;
    Expr *t = lfor_indep(L, &p, "t", li(L, 0), li(L, W->D.groups * nob * nrb));
    Expr *rb = unflatten(L, p, &t, nrb, "rbk");
    Expr *ob = unflatten(L, p, &t, nob, "ob");
    Expr *r0 = lbind(L, p, "r0", lmul(L, ladd(L, rb, li(L, rb0)), li(L, W->mr)));
    Expr *o0 = lbind(L, p, "o0", lmul(L, ladd(L, ob, li(L, ob0)), li(L, W->nv * W->V)));
    dw_tile(L, p, W, nb, t, r0, o0, mr, nv);
}

/* ---- the depthwise weight gradient ----
 *
 * dw [O, 1, K] of a layer with one input channel per group whose og
 * output channels per group are not whole vectors (a depthwise layer: og
 * = 1), which the tiles above need.  Per sample in order (the batch
 * read once, in order) and group g, the plane of input channel g is
 * copied padded and phase-split as the forward kernel's source
 * (dconv_copy, xp); per output channel oc of the group, dy's plane into
 * dyp with zeros around its rows, then every tap's sum runs in the lanes
 * of vector accumulators acc [O, K, V] over the positions f of dyp:
 *
 *   acc[oc, t] += dyp[f ..+V] * xp[f + off(t) ..+V]     (TB taps at a time)
 *
 * With unit strides (the flat form) dyp has xp's row pitch and f runs
 * over the plane as one row, the columns and rows between the outputs
 * zero; with strides f runs over each output row, its dyp row whole
 * vectors (zeros past OW), reading xp's row oh*sh + kh*dh at the tap's
 * phase.  The zeros drop the products at positions that are no output.
 * Last, dw [oc, t] = hsum(acc[oc, t]).  Both copies stay in L1 for the
 * taps.  The sample loop's copies are workspaces and acc an accumulator
 * of it (loop_privatize: one per core, the samples in chunks, the chunks'
 * sums added in order; the same bits on any thread count).
 *
 *   conv_dw(x [N, 128, 56, 56], dy [N, 128, 56, 56]) -> [128, 1, 3, 3], pad 1
 *     => xp [58 x 58], dyp [56 rows at pitch 58], F = 3246 positions,
 *        203 vectors x 9 taps, 9 accumulators */
enum { DWW_TB_MAX = 16 };

int direct_dwise_taps(int vregs)
{
    int tb = vregs - 3;
    return tb > DWW_TB_MAX ? DWW_TB_MAX : tb < 1 ? 1 : tb;
}

static bool dwise_dw(Lower *L, DConv *D)
{
    enum { DW, X, DY };
    int V = L->t->vlen, K = D->k_sz;
    if (D->cg != 1 || V < 2)
        return false;
    kernel_vectors(L->k, V);
    bool flat = D->s[0] == 1 && D->s[1] == 1 && D->s[2] == 1;
    int OD = D->out[0], OH = D->out[1], OW = D->out[2], OWv = (OW + V - 1) / V * V;
    dconv_xp_geom(D);
    if (!flat) /* whole vectors per output row, read at any tap */
        D->wq = OWv + (D->k[2] - 1) * D->d[2] / D->phases;
    int rowlen = D->phases * D->wq;
    D->plane = (long)D->ext[0] * D->ext[1] * rowlen;
    /* positions f: rows of dyp (segments) x vectors per row */
    int nseg = flat ? 1 : OD * OH, pitch = flat ? rowlen : OWv;
    int nvec = flat ? (((OD - 1) * D->ext[1] + OH - 1) * rowlen + OW + V - 1) / V : OWv / V;
    long xsz = D->plane + V, dsz = flat ? D->plane + V : (long)nseg * OWv;
    D->src = kernel_scratch(L->a, L->k, "xp", xsz, 0);
    int dyp = kernel_scratch(L->a, L->k, "dyp", dsz, 0);
    int accb = kernel_scratch(L->a, L->k, "acc", (long)D->n_out * K * V, 0);
    D->xp1 = true;

    Stmt *p = L->k->body;
    /* the slack past xp's plane and dyp's gaps: zero in every copy */
    lzero(L, p, D->src, li(L, (int)D->plane), li(L, V));
    lzero(L, p, dyp, li(L, 0), li(L, (int)dsz));
    lzero(L, p, accb, li(L, 0), li(L, D->n_out * K * V));
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    lpriv(L, q, D->src);
    lpriv(L, q, dyp);
    lpriv_sum(L, q, accb);
    Expr *g = lfor(L, &q, "g", li(L, 0), li(L, D->groups));
    dconv_copy(L, D, q, lmad(L, nb, D->n_in, g), li(L, 0)); /* cg = 1: channel g */
    Expr *o = lfor(L, &q, "o", li(L, 0), li(L, D->og));
    Expr *oc = lbind(L, q, "oc", lmad(L, g, D->og, o));
    Expr *ab = lbind(L, q, "ab", lmul(L, oc, li(L, K * V)));
    /* dyp's row (od, oh) at (od * E + oh) * pitch */
    int E = flat ? D->ext[1] : OH;
    Stmt *c = q;
    Expr *od = lfor(L, &c, "od", li(L, 0), li(L, OD));
    Expr *oh = lfor(L, &c, "oh", li(L, 0), li(L, OH));
    Expr *yr = lbind(L, c, "yr", lmul(L, lmad(L, lmad(L, lmad(L, nb, D->n_out, oc), OD, od), OH, oh), li(L, OW)));
    Expr *dr = lbind(L, c, "dr", lmul(L, lmad(L, od, E, oh), li(L, pitch)));
    Expr *ow = lfor_indep(L, &c, "ow", li(L, 0), li(L, OW));
    lstore(L, c, dyp, ladd(L, dr, ow), lload(L, DY, ladd(L, yr, ow)), false);
    /* the taps, TB at a time: their sums over every position */
    int TB = direct_dwise_taps(L->t->vregs);
    for (int t0 = 0; t0 < K; t0 += TB) {
        int nt = K - t0 < TB ? K - t0 : TB, acc[DWW_TB_MAX], off[DWW_TB_MAX];
        for (int i = 0; i < nt; i++) {
            int t = t0 + i, kw = t % D->k[2], kh = t / D->k[2] % D->k[1], kd = t / (D->k[2] * D->k[1]);
            int sh = kw * D->d[2];
            off[i] = ((kd * D->d[0]) * D->ext[1] + kh * D->d[1]) * rowlen + sh % D->phases * D->wq + sh / D->phases;
            acc[i] = ldecl(L, q, "acc", T_V32, ex_vload(L->a, accb, ladd(L, ab, li(L, t * V))));
        }
        Stmt *r = q;
        Expr *sg = lfor(L, &r, "sg", li(L, 0), li(L, nseg));
        /* segment sg = output row (od, oh) reads xp from row (od*sd, oh*sh) */
        Expr *xb = li(L, 0), *db = li(L, 0);
        if (!flat) {
            Expr *sod = ldiv(L, sg, li(L, OH)), *soh = ex_bin(L->a, X_MOD, sg, li(L, OH));
            xb = lbind(L, r, "xb", lmul(L, lmad(L, lmul(L, sod, li(L, D->s[0])), D->ext[1], lmul(L, soh, li(L, D->s[1]))),
                                         li(L, rowlen)));
            db = lbind(L, r, "db", lmul(L, sg, li(L, OWv)));
        }
        Expr *v = lfor(L, &r, "v", li(L, 0), li(L, nvec));
        Expr *f = lbind(L, r, "f", lmul(L, v, li(L, V)));
        int dv = ldecl(L, r, "dv", T_V32, ex_vload(L->a, dyp, ladd(L, db, f)));
        Expr *xf = lbind(L, r, "xf", ladd(L, xb, f));
        for (int i = 0; i < nt; i++) {
            int xv = ldecl(L, r, "xv", T_V32, ex_vload(L->a, D->src, ladd(L, xf, li(L, off[i]))));
            lassign(L, r, acc[i], lfma(L, lvar(L, xv), lvar(L, dv), lvar(L, acc[i])));
        }
        for (int i = 0; i < nt; i++)
            lstore(L, q, accb, ladd(L, ab, li(L, (t0 + i) * V)), lvar(L, acc[i]), false);
    }
    /* dw [oc, t] = the sum of its lanes */
    Expr *ot = lfor_indep(L, &p, "ot", li(L, 0), li(L, D->n_out * K));
    int a = ldecl(L, p, "a", T_V32, ex_vload(L->a, accb, lmul(L, ot, li(L, V))));
    lstore(L, p, DW, ot, ex_hsum(L->a, L->k, a), false);
    return true;
}

/* dw [O, C/g, K...] by the vector kernel above or, for a depthwise layer,
 * dwise_dw; false (nothing lowered) when neither applies. */
bool lower_conv_dw_vec(Lower *L)
{
    enum { DW, X, DY };
    const Node *n = L->n;
    Geom G;
    geom_conv(&G, &n->p.conv, &lin(L, 0)->shape, &lin(L, 1)->shape);
    check_weight(&G, n);
    DwConv W = {.D = {.y = -1, .x = X, .w = -1, .b = -1}};
    DConv *D = &W.D;
    dconv_sizes(D, &G, false);
    W.rows = D->cg * D->k_sz;
    if (!direct_dw_tile(L->t->vlen, L->t->vregs, D->og, W.rows, &W.V, &W.mr, &W.nv))
        return dwise_dw(L, D);
    int V = W.V;
    if (V >= 2)
        kernel_vectors(L->k, V);
    W.P = G.out_sz;
    W.dyt = kernel_scratch(L->a, L->k, "dyt", (long)G.n_out * W.P, 0);
    W.dwt = kernel_scratch(L->a, L->k, "dwt", (long)G.n_out * W.rows, 0);

    Stmt *p = L->k->body;
    lzero(L, p, W.dwt, li(L, 0), li(L, G.n_out * W.rows));
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    /* the sample's source (when it is not x), then dyt [g, f, o] = dy [nb,
     * g*Og + o, f], one output row per iteration: both stay in the cache
     * for the tiles that read them */
    dconv_source_at(L, D, p, nb);
    if (D->xp1)
        lpriv(L, p, D->src);
    lpriv(L, p, W.dyt);
    lpriv_sum(L, p, W.dwt);
    Stmt *q = p;
    int OH = D->out[0] * D->out[1], OW = D->out[2];
    Expr *t = lfor_indep(L, &q, "t", li(L, 0), li(L, G.groups * OH));
    Expr *ow = lfor(L, &q, "ow", li(L, 0), li(L, OW));
    Expr *f = lbind(L, q, "f", lmad(L, t, OW, ow)); /* g*P + pixel */
    Expr *g = ldiv(L, t, li(L, OH));
    Expr *yb = lbind(L, q, "yb", ladd(L, lmul(L, lmad(L, nb, G.n_out, lmul(L, g, li(L, D->og))), li(L, W.P)),
                                      lsub(L, f, lmul(L, g, li(L, W.P)))));
    Expr *o = lfor(L, &q, "o", li(L, 0), li(L, D->og));
    lstore(L, q, W.dyt, lmad(L, f, D->og, o), lload(L, DY, lmad(L, o, W.P, yb)), false);
    /* the tiles: full ones, then the row tail, the column tail and both */
    int bw = W.nv * V;
    int nfr = W.rows / W.mr, rt = W.rows % W.mr, nfo = D->og / bw, ot = D->og % bw / V;
    dw_region(L, p, &W, nb, nfr, 0, W.mr, nfo, 0, W.nv);
    dw_region(L, p, &W, nb, rt ? 1 : 0, nfr, rt, nfo, 0, W.nv);
    dw_region(L, p, &W, nb, nfr, 0, W.mr, ot ? 1 : 0, nfo, ot);
    dw_region(L, p, &W, nb, rt ? 1 : 0, nfr, rt, ot ? 1 : 0, nfo, ot);
    /* dw [g*Og + o, r] = dwt [g, r, o] */
    q = L->k->body;
    Expr *go = lfor_indep(L, &q, "go", li(L, 0), li(L, G.n_out));
    Expr *gg = ldiv(L, go, li(L, D->og));
    Expr *ol = lbind(L, q, "ol", lsub(L, go, lmul(L, gg, li(L, D->og))));
    Expr *r = lfor(L, &q, "r", li(L, 0), li(L, W.rows));
    lstore(L, q, DW, lmad(L, go, W.rows, r), lload(L, W.dwt, lmad(L, lmad(L, gg, W.rows, r), D->og, ol)), false);
    return true;
}
