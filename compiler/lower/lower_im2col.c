/* lower_im2col.c - convolutions as im2col + GEMM (ALGO_IM2COL).
 *
 * Per sample and group, the input patches are unfolded into a scratch
 * matrix whose row (ic, kd, kh, kw) holds, for every output pixel, the
 * input value that tap multiplies (0 where it falls in the padding):
 *
 *   col [Cg*KD*KH*KW, OD*OH*OW]      Cg = C/g input channels per group
 *
 * and the convolution becomes a GEMM (lower_gemm.c) whose inner loop runs
 * over contiguous output pixels or weights.  With w_g [Og, Cg*K] the
 * weights of group g (Og = O/g) and dy_g [Og, OD*OH*OW]:
 *
 *   conv     y_g  [Og, P]   = b + w_g col                (P = OD*OH*OW)
 *   conv_dx  dcol [Cg*K, P] = w_g^T dy_g, then col2im: dx += dcol scattered
 *                             back to the input positions (tap_nest again)
 *   conv_dw  summed over the batch, in one of three forms:
 *            Og a multiple of 16:  dwt [Cg*K, Og] += col dy_g^T, then dw =
 *                                  dwt^T (inner loop over whole tiles of Og)
 *            P >= 256:             dw_g += dy_g col^T as lgemm_dot (each
 *                                  sum over P split into 16 lanes)
 *            otherwise:            dw_g [Og, Cg*K] += dy_g colT, colT
 *                                  [P, Cg*K] the transposed unfold
 *
 * The GEMM's A, the weights of conv and their transpose for conv_dx, is
 * packed into lgemm's row micro-panels (scratch wp) once per call, before
 * the batch loop: once per inference call or training step.  conv's col
 * is written in the GEMM's column-panel layout when that pays (long rows,
 * enough output channels): the unfold splits each output row's pixels at
 * panel boundaries, so its innermost loop copies consecutive floats.
 *
 * A pointwise convolution (1x1, stride 1, no padding) needs no unfold for
 * conv and conv_dx: x's planes of a group already are col [Cg, P].  The
 * unfold reuses the direct lowering's tap_nest, so the same bounds logic
 * covers stride, dilation, asymmetric padding and 1D/2D/3D (as 3D).
 * Scratch buffers are sized for one sample and group and reused; a padded
 * layer zeroes its matrix once per call (unfold_zero).
 *
 *   %3 = conv(x [N, 6, 12, 12], w [16, 6, 5, 5]) [N, 16, 8, 8]
 *     => wp = w [16, 150] packed, once; col [150, 64] per sample;
 *        y[nb] [16, 64] = b + wp col
 */
#include "lower_impl.h"

/* conv_dw takes the dot form from this many output pixels (the lane sums
 * then cost at most one pass of 16 chunks). */
#define DW_DOT_MIN_P 256
/* conv_dw takes the transposed form when the output channels per group
 * are a multiple of this (the GEMM's inner dimension is then Og). */
#define DW_T_OG 16

typedef struct {
    Geom G;
    int cg, og;     /* channels per group: input side, output side    */
    int rows;       /* cg * k_sz: the rows of col                      */
    bool pointwise; /* x's planes are col: no unfold (conv, conv_dx)   */
} Im2col;

static void im2col_geom(Im2col *c, const ConvParam *p, const Shape *xs, const Shape *ys)
{
    geom_conv(&c->G, p, xs, ys);
    c->cg = c->G.n_in / c->G.groups;
    c->og = c->G.n_out / c->G.groups;
    c->rows = c->cg * c->G.k_sz;
    c->pointwise = geom_pointwise(&c->G);
}

/* Flat offset of the first plane of group g of sample nb, for `per_group`
 * planes per group of `plane` floats each. */
static Expr *group_base(Lower *L, const Im2col *c, Expr *nb, Expr *g, int per_group, int plane)
{
    return lmul(L, lmad(L, nb, c->G.groups, g), li(L, per_group * plane));
}

/* Padding taps read nothing: their entries of col (or colT) are 0 for
 * every sample and group, so a padded convolution zeroes its matrix once
 * per call, before the batch loop, and the unfolds copy the rest.  (col
 * is -1, no matrix, for a pointwise convolution.) */
static void unfold_zero(Lower *L, Stmt *p, const Im2col *c, int col)
{
    if (col >= 0 && !geom_unpadded(&c->G))
        lzero(L, p, col, li(L, 0), li(L, (int)L->k->buf[col].size_fixed));
}

/* The loops every unfold starts with: the group's input channels (ic,
 * independent) and the taps; row: ic's row of col for this tap, xc: the
 * start of ic's input plane.  Returns the innermost loop. */
static Stmt *unfold_taps(Lower *L, Stmt *p, const Im2col *c, Expr *xb, Expr **tap, Expr **row, Expr **xc)
{
    Stmt *q = p;
    Expr *ic = lfor_indep(L, &q, "ic", li(L, 0), li(L, c->cg));
    Expr *toff = tap_loops(L, &q, &c->G, tap);
    *row = lbind(L, q, "row", lmad(L, ic, c->G.k_sz, toff));
    *xc = lbind(L, q, "xc", lmad(L, ic, c->G.in_sz, xb));
    return q;
}

/* col [rows, P] (colT [P, rows] when transposed) of the group whose
 * input planes start at xb: every tap's value where it lands inside the
 * input.  Rows are written by different iterations of the ic loop:
 * independent. */
static void unfold(Lower *L, Stmt *p, const Im2col *c, int col, int x, Expr *xb, bool transposed)
{
    const Geom *G = &c->G;
    Expr *tap[3], *row, *xc;
    Stmt *q = unfold_taps(L, p, c, xb, tap, &row, &xc);
    Inner in = tap_nest(L, q, G, tap, transposed ? li(L, 0) : lmul(L, row, li(L, G->out_sz)), xc);
    Expr *ci = transposed ? lmad(L, in.yi, c->rows, row) : in.yi;
    lstore(L, in.body, col, ci, lload(L, x, in.xi), false);
}

/* col in lgemm's column-panel layout (MatRef.panel): [P / panel][rows]
 * [panel].  The pixels [c0, c1) of one output row that a tap reads are
 * split at panel boundaries, so the innermost loop copies consecutive
 * floats with no division:
 *
 *   for pj in c0 / panel .. ceil(c1 / panel):
 *     for i in max(c0, pj*panel) .. min(c1, pj*panel + panel):
 *       col[pj*rows*panel + row*panel + i - pj*panel] = x[xrow + (i - yrow)*stride]
 */
static void unfold_panel(Lower *L, Stmt *p, const Im2col *c, int col, int x, Expr *xb, int panel)
{
    static const char *const oname[2] = {"od", "oh"};
    const Geom *G = &c->G;
    Expr *tap[3], *row, *xc;
    Stmt *q = unfold_taps(L, p, c, xb, tap, &row, &xc);
    Expr *yoff = li(L, 0), *xoff = li(L, 0);
    for (int a = 0; a < 2; a++) {
        TapRange t = tap_range(L, G, a, tap[a]);
        Expr *o = lfor(L, &q, oname[a], t.lo, t.hi);
        yoff = lmad(L, yoff, G->out[a], o);
        xoff = lmad(L, xoff, G->in[a], ladd(L, lmul(L, o, li(L, G->s[a])), t.shift));
    }
    TapRange t = tap_range(L, G, 2, tap[2]);
    int s = G->s[2];
    Expr *yrow = lbind(L, q, "yr", lmul(L, yoff, li(L, G->out[2])));
    /* x index of pixel i of this row: xrow + (i - yrow)*s = xi0 + i*s */
    Expr *xi0 = lbind(L, q, "xr",
                      lsub(L, ladd(L, ladd(L, xc, lmul(L, xoff, li(L, G->in[2]))), t.shift), lmul(L, yrow, li(L, s))));
    /* lo >= 0; an empty range (hi < lo) becomes [c0, c0) */
    Expr *c0 = lbind(L, q, "c0", ladd(L, yrow, t.lo));
    Expr *c1 = lbind(L, q, "c1", ladd(L, yrow, lmax(L, t.lo, t.hi)));
    Expr *pj = lfor(L, &q, "pj", ldiv(L, c0, li(L, panel)), ldiv(L, ladd(L, c1, li(L, panel - 1)), li(L, panel)));
    Expr *pc = lbind(L, q, "pc", lmul(L, pj, li(L, panel)));
    /* col index of pixel i: pj*rows*panel + row*panel + i - pj*panel */
    Expr *cb = lbind(L, q, "cp", ladd(L, lmul(L, pj, li(L, (c->rows - 1) * panel)), lmul(L, row, li(L, panel))));
    Expr *i = lfor(L, &q, "i", lmax(L, c0, pc), lmin(L, c1, ladd(L, pc, li(L, panel))));
    lstore(L, q, col, ladd(L, cb, i), lload(L, x, ladd(L, xi0, lmul(L, i, li(L, s)))), false);
}

/* The weights w [O, Cg*K] of every group, as the GEMM's A, copied into a
 * scratch wp in lgemm's row micro-panels (lgemm_pack), before the batch
 * loop: a kernel call processes the whole batch, so this is once per
 * inference call or training step.  A_g is w_g [Og, Cg*K] (conv) or
 * w_g^T [Cg*K, Og] (conv_dx), for a product with N columns. */
typedef struct {
    int buf, mr, M, K;
    long group; /* floats per group */
} Packed;

static Packed pack_weights(Lower *L, Stmt *p, const Im2col *c, int w, bool transposed, int N)
{
    Packed k;
    k.M = transposed ? c->rows : c->og;
    k.K = transposed ? c->og : c->rows;
    k.mr = lgemm_pack_mr(L, k.M, N);
    k.group = (long)(k.M + k.mr - 1) / k.mr * k.mr * k.K;
    k.buf = kernel_scratch(L->a, L->k, "wp", k.group * c->G.groups, 0);
    Stmt *q = p;
    Expr *g = lfor_indep(L, &q, "g", li(L, 0), li(L, c->G.groups));
    Expr *wb = lmul(L, g, li(L, c->og * c->rows));
    MatRef a = transposed ? (MatRef){w, wb, 1, c->rows, 0, 0} : (MatRef){w, wb, c->rows, 1, 0, 0};
    MatRef dst = {k.buf, lmul(L, g, li(L, (int)k.group)), 0, 0, k.mr, k.K};
    lgemm_pack(L, q, dst, a, k.M, k.K);
    return k;
}

/* A_g of group g in the packed weights. */
static MatRef packed_at(Lower *L, const Packed *k, Expr *g)
{
    return (MatRef){k->buf, lmul(L, g, li(L, (int)k->group)), 0, 0, k->mr, k->K};
}

/* y [N, O, OD, OH, OW] = b + conv(x [N, C, D, H, W], w [O, C/g, KD, KH, KW]) */
void lower_conv_im2col(Lower *L)
{
    const Node *n = L->n;
    Im2col c;
    im2col_geom(&c, &n->p.conv, &lin(L, 0)->shape, &n->shape);
    check_weight(&c.G, lin(L, 1));
    const Geom *G = &c.G;
    enum { Y, X, W, B };
    int P = G->out_sz;
    /* col in the GEMM's panel layout, so its k steps read consecutive memory */
    int panel = lgemm_panel(L, P);
    /* Worth it when the rows of col are long (a k step of the plain layout
     * then lands on a new page) and enough output channels share each
     * unfolded value to pay for the panel index arithmetic.  Measured on
     * LeNet's conv2 (P 100, 16 channels per group): the plain layout is
     * faster; on 64->64 3x3 at 56x56: the panel layout, by 25%. */
    if (P < 4 * panel || c.og < 32)
        panel = 0;
    long cols = panel ? (long)(P + panel - 1) / panel * panel : P;
    int col = c.pointwise ? -1 : kernel_scratch(L->a, L->k, "col", (long)c.rows * cols, 0);

    Stmt *p = L->k->body;
    unfold_zero(L, p, &c, col);
    Packed wp = pack_weights(L, p, &c, W, false, P);
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    lpriv(L, p, col); /* each sample's unfold: a workspace */
    /* y[nb] [O, P] = b */
    Stmt *q = p;
    Expr *oc = lfor_indep(L, &q, "oc", li(L, 0), li(L, G->n_out));
    Expr *i = lfor(L, &q, "i", li(L, 0), li(L, P));
    lstore(L, q, Y, ladd(L, lmul(L, lmad(L, nb, G->n_out, oc), li(L, P)), i),
           node_own_nin(n) == 3 ? lload(L, B, oc) : lf(L, 0.0f), false);

    q = p;
    Expr *g = lfor(L, &q, "g", li(L, 0), li(L, G->groups));
    Expr *xb = lbind(L, q, "xb", group_base(L, &c, nb, g, c.cg, G->in_sz));
    Expr *yb = lbind(L, q, "yb", group_base(L, &c, nb, g, c.og, P));
    MatRef bm = {X, xb, G->in_sz, 1, 0, 0};
    if (!c.pointwise) {
        if (panel)
            unfold_panel(L, q, &c, col, X, xb, panel);
        else
            unfold(L, q, &c, col, X, xb, false);
        bm = (MatRef){col, li(L, 0), P, 1, panel, c.rows};
    }
    /* y_g [Og, P] += w_g [Og, rows] col [rows, P]: each output is stored
     * once, so a fused epilogue with a vector form is applied in
     * registers as the micro-kernel stores */
    const Epi *epi = lepi_vector(L->epi) ? L->epi : NULL;
    lgemm_epi(L, q, (MatRef){Y, yb, P, 1, 0, 0}, packed_at(L, &wp, g), bm, li(L, c.og), P, li(L, c.rows), true, epi);
    L->epi_done = epi != NULL;
}

/* dx [N, C, D, H, W] = conv_transpose(dy [N, O, OD, OH, OW], w [O, C/g, K...]) */
void lower_conv_dx_im2col(Lower *L)
{
    const Node *n = L->n;
    Im2col c;
    im2col_geom(&c, &n->p.conv, &n->shape, &lin(L, 0)->shape);
    check_weight(&c.G, lin(L, 1));
    const Geom *G = &c.G;
    enum { DX, DY, W };
    int P = G->out_sz;
    int dcol = c.pointwise ? -1 : kernel_scratch(L->a, L->k, "dcol", (long)c.rows * P, 0);

    Stmt *p = L->k->body;
    Packed wp = pack_weights(L, p, &c, W, true, P);
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    lpriv(L, p, dcol); /* each sample's dx[nb] comes from its own dcol */
    /* pointwise: the GEMM stores every dx element; else col2im adds into dx */
    if (!c.pointwise)
        lzero(L, p, DX, lmul(L, nb, li(L, G->n_in * G->in_sz)), li(L, G->n_in * G->in_sz));
    Stmt *q = p;
    Expr *g = lfor(L, &q, "g", li(L, 0), li(L, G->groups));
    Expr *xb = lbind(L, q, "xb", group_base(L, &c, nb, g, c.cg, G->in_sz));
    Expr *yb = lbind(L, q, "yb", group_base(L, &c, nb, g, c.og, P));
    /* A [rows, Og] = w_g^T, packed */
    MatRef wt = packed_at(L, &wp, g);
    MatRef dy = {DY, yb, P, 1, 0, 0};
    if (c.pointwise) {
        /* dx_g [Cg, P] = w_g^T dy_g, each stored once: the epilogue applies */
        const Epi *epi = lepi_vector(L->epi) ? L->epi : NULL;
        lgemm_epi(L, q, (MatRef){DX, xb, G->in_sz, 1, 0, 0}, wt, dy, li(L, c.rows), P, li(L, c.og), false, epi);
        L->epi_done = epi != NULL;
        return;
    }
    /* dcol [rows, P] = w_g^T dy_g */
    lgemm(L, q, (MatRef){dcol, li(L, 0), P, 1, 0, 0}, wt, dy, li(L, c.rows), P, li(L, c.og), false);
    /* col2im: every dcol entry back to the input position its tap read */
    Expr *ic = lfor(L, &q, "ic", li(L, 0), li(L, c.cg));
    Expr *tap[3];
    Expr *toff = tap_loops(L, &q, G, tap);
    Expr *row = lbind(L, q, "row", lmad(L, ic, G->k_sz, toff));
    Expr *xc = lbind(L, q, "xc", lmad(L, ic, G->in_sz, xb));
    Inner in = tap_nest(L, q, G, tap, lmul(L, row, li(L, P)), xc);
    lstore(L, in.body, DX, in.xi, lload(L, dcol, in.yi), true);
}

/* Output rows per tile of the tiled weight gradient: the tile's unfolded
 * columns (rows x TR*OW floats) take a quarter of L2, beside dwt, the
 * tile's dyt and the input rows it reads. */
static int dw_tile_rows(Lower *L, const Im2col *c)
{
    long per_row = (long)c->rows * c->G.out[2] * (long)sizeof(float);
    long tr = L->t->l2 / 4 / (per_row > 0 ? per_row : 1);
    return tr < 1 ? 1 : tr > c->G.out[1] ? c->G.out[1] : (int)tr;
}

/* col [rows, nr*OW] of output rows oh0 .. +nr at depth od: every tap's
 * value where it lands inside the input (the rest is left as it is). */
static void unfold_rows(Lower *L, Stmt *p, const Im2col *c, int col, int x, Expr *xb, Expr *od, Expr *oh0,
                        int nr)
{
    const Geom *G = &c->G;
    int NC = nr * G->out[2];
    Expr *tap[3], *row, *xc;
    Stmt *q = unfold_taps(L, p, c, xb, tap, &row, &xc);
    /* depth od: a loop of one iteration, or none where its tap is outside */
    TapRange td = tap_range(L, G, 0, tap[0]);
    Expr *d = lfor(L, &q, "od", lmax(L, td.lo, od), lmin(L, td.hi, ladd(L, od, li(L, 1))));
    Expr *xd = ladd(L, lmul(L, d, li(L, G->s[0])), td.shift);
    TapRange th = tap_range(L, G, 1, tap[1]);
    Expr *oh = lfor(L, &q, "oh", lmax(L, th.lo, oh0), lmin(L, th.hi, ladd(L, oh0, li(L, nr))));
    Expr *xh = ladd(L, lmul(L, oh, li(L, G->s[1])), th.shift);
    TapRange tw = tap_range(L, G, 2, tap[2]);
    Expr *cr = lbind(L, q, "cr", ladd(L, lmul(L, row, li(L, NC)), lmul(L, lsub(L, oh, oh0), li(L, G->out[2]))));
    Expr *xr = lbind(L, q, "xr", ladd(L, ladd(L, xc, lmul(L, lmad(L, xd, G->in[1], xh), li(L, G->in[2]))), tw.shift));
    Expr *ow = lfor(L, &q, "ow", tw.lo, tw.hi);
    lstore(L, q, col, ladd(L, cr, ow), lload(L, x, ladd(L, xr, lmul(L, ow, li(L, G->s[2])))), false);
}

/* One tile of the tiled weight gradient: output rows oh0 .. +nr at depth
 * od of sample nb, group g, as NC = nr*OW steps of the GEMM's k:
 *   col [rows, NC] = the tile unfolded (zeroed first when padded)
 *   dyt [NC, Og]   = the tile's dy_g^T
 *   dwt_g [rows, Og] += col dyt */
static void dw_tile(Lower *L, Stmt *p, const Im2col *c, int col, int dyt, int dwt, Expr *g, Expr *xb, Expr *yb,
                    Expr *od, Expr *oh0, int nr)
{
    enum { DW, X, DY };
    const Geom *G = &c->G;
    int NC = nr * G->out[2];
    if (!geom_unpadded(G))
        lzero(L, p, col, li(L, 0), li(L, c->rows * NC));
    unfold_rows(L, p, c, col, X, xb, od, oh0, nr);
    Expr *pb = lbind(L, p, "pb", ladd(L, yb, lmul(L, lmad(L, od, G->out[1], oh0), li(L, G->out[2]))));
    Stmt *t = p;
    Expr *o = lfor(L, &t, "o", li(L, 0), li(L, c->og));
    Expr *pix = lfor(L, &t, "p", li(L, 0), li(L, NC));
    lstore(L, t, dyt, lmad(L, pix, c->og, o), lload(L, DY, ladd(L, pb, lmad(L, o, G->out_sz, pix))), false);
    lgemm(L, p, (MatRef){dwt, lmul(L, g, li(L, c->rows * c->og)), c->og, 1, 0, 0}, (MatRef){col, li(L, 0), NC, 1, 0, 0},
          (MatRef){dyt, li(L, 0), c->og, 1, 0, 0}, li(L, c->rows), c->og, li(L, NC), true);
}

/* dw through its transpose: dwt [g, Cg*K, Og] accumulates col dy_g^T over
 * the batch, then dw [g*Og + o, r] = dwt [g, r, o].  A convolution that
 * needs an unfold takes its pixels in tiles of whole output rows, each
 * unfolded into a cache-sized col right before the GEMM reads it, so the
 * unfolded matrix never goes through memory; the GEMM's k runs over the
 * pixels of the tiles in order, so every weight is still summed over the
 * pixels in order (sample by sample):
 *
 *   for nb, g: for od: for oh0 in steps of TR (dw_tile_rows):
 *     col [rows, TR*OW] = unfold of rows oh0 .. +TR;  dyt [TR*OW, Og] = dy^T
 *     dwt_g [rows, Og] += col dyt */
static void lower_conv_dw_t(Lower *L, const Im2col *c)
{
    const Geom *G = &c->G;
    enum { DW, X, DY };
    int P = G->out_sz;
    int TR = c->pointwise ? 0 : dw_tile_rows(L, c);
    int NC = c->pointwise ? P : TR * G->out[2];
    int col = c->pointwise ? -1 : kernel_scratch(L->a, L->k, "col", (long)c->rows * NC, 0);
    int dyt = kernel_scratch(L->a, L->k, "dyt", (long)NC * c->og, 0);
    int dwt = kernel_scratch(L->a, L->k, "dwt", (long)G->n_out * c->rows, 0);

    Stmt *p = L->k->body;
    lzero(L, p, dwt, li(L, 0), li(L, G->n_out * c->rows));
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    lpriv(L, q, col);
    lpriv(L, q, dyt);
    lpriv_sum(L, q, dwt); /* each chunk's samples summed apart, then in chunk order */
    Expr *g = lfor(L, &q, "g", li(L, 0), li(L, G->groups));
    Expr *xb = lbind(L, q, "xb", group_base(L, c, nb, g, c->cg, G->in_sz));
    Expr *yb = lbind(L, q, "yb", group_base(L, c, nb, g, c->og, P));
    if (!c->pointwise) {
        Expr *od = lfor(L, &q, "od", li(L, 0), li(L, G->out[0]));
        int full = G->out[1] / TR, rest = G->out[1] % TR;
        Stmt *r = q;
        Expr *ht = lfor(L, &r, "ht", li(L, 0), li(L, full));
        dw_tile(L, r, c, col, dyt, dwt, g, xb, yb, od, lmul(L, ht, li(L, TR)), TR);
        if (rest)
            dw_tile(L, q, c, col, dyt, dwt, g, xb, yb, od, li(L, full * TR), rest);
    } else {
        /* dyt [P, Og] = dy_g^T */
        Stmt *t = q;
        Expr *pix = lfor(L, &t, "p", li(L, 0), li(L, P));
        Expr *o = lfor(L, &t, "o", li(L, 0), li(L, c->og));
        lstore(L, t, dyt, lmad(L, pix, c->og, o), lload(L, DY, ladd(L, yb, lmad(L, o, P, pix))), false);
        /* dwt_g [rows, Og] += x_g [rows, P] dyt [P, Og] */
        lgemm(L, q, (MatRef){dwt, lmul(L, g, li(L, c->rows * c->og)), c->og, 1, 0, 0},
              (MatRef){X, xb, G->in_sz, 1, 0, 0}, (MatRef){dyt, li(L, 0), c->og, 1, 0, 0}, li(L, c->rows), c->og,
              li(L, P), true);
    }

    /* dw [g*Og + o, r] = dwt [g, r, o] */
    q = p;
    g = lfor(L, &q, "g", li(L, 0), li(L, G->groups));
    Expr *o = lfor(L, &q, "o", li(L, 0), li(L, c->og));
    Expr *r = lfor(L, &q, "r", li(L, 0), li(L, c->rows));
    lstore(L, q, DW, lmad(L, lmad(L, g, c->og, o), c->rows, r),
           lload(L, dwt, lmad(L, lmad(L, g, c->rows, r), c->og, o)), false);
}

/* dw_g [Og, Cg*K] += dy_g [Og, P] col [Cg*K, P]^T as a dot-form GEMM (its
 * reduction over P split into lanes), from the contiguous unfold. */
static void lower_conv_dw_dot(Lower *L, const Im2col *c)
{
    const Geom *G = &c->G;
    enum { DW, X, DY };
    int P = G->out_sz;
    int col = c->pointwise ? -1 : kernel_scratch(L->a, L->k, "col", (long)c->rows * P, 0);
    /* the sums go to dwt, then to dw: a scratch accumulator, which the
     * privatise pass can give each chunk of samples a copy of */
    long ndw = (long)G->n_out * c->rows;
    int dwt = kernel_scratch(L->a, L->k, "dwt", ndw, 0);
    Stmt *p = L->k->body;
    unfold_zero(L, p, c, col);
    lzero(L, p, dwt, li(L, 0), li(L, (int)ndw));
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    lpriv(L, q, col);
    lpriv_sum(L, q, dwt);
    Expr *g = lfor(L, &q, "g", li(L, 0), li(L, G->groups));
    Expr *xb = lbind(L, q, "xb", group_base(L, c, nb, g, c->cg, G->in_sz));
    Expr *yb = lbind(L, q, "yb", group_base(L, c, nb, g, c->og, P));
    MatRef b = {X, xb, G->in_sz, 1, 0, 0};
    if (!c->pointwise) {
        unfold(L, q, c, col, X, xb, false);
        b = (MatRef){col, li(L, 0), P, 1, 0, 0};
    }
    lgemm_dot(L, q, (MatRef){dwt, lmul(L, g, li(L, c->og * c->rows)), c->rows, 1, 0, 0}, (MatRef){DY, yb, P, 1, 0, 0},
              b, li(L, c->og), c->rows, P);
    Expr *i = lfor_indep(L, &p, "i", li(L, 0), li(L, (int)ndw));
    lstore(L, p, DW, i, lload(L, dwt, i), false);
}

/* dw [O, C/g, K...] = sum over n of dy_g [Og, P] colT [P, Cg*K], the inner
 * loop over Cg*K; or, when Og fills whole GEMM column tiles, the transpose
 * dw_g^T [Cg*K, Og] = sum over n of col [Cg*K, P] dy_g^T [P, Og], whose
 * unfold is contiguous and whose inner loop runs over Og. */
void lower_conv_dw_im2col(Lower *L)
{
    const Node *n = L->n;
    Im2col c;
    im2col_geom(&c, &n->p.conv, &lin(L, 0)->shape, &lin(L, 1)->shape);
    check_weight(&c.G, n);
    const Geom *G = &c.G;
    enum { DW, X, DY };
    int P = G->out_sz;
    if (c.og % DW_T_OG == 0) {
        lower_conv_dw_t(L, &c);
        return;
    }
    if (P >= DW_DOT_MIN_P) {
        lower_conv_dw_dot(L, &c);
        return;
    }
    int colt = kernel_scratch(L->a, L->k, "colt", (long)c.rows * P, 0);

    Stmt *p = L->k->body;
    unfold_zero(L, p, &c, colt);
    lzero(L, p, DW, li(L, 0), li(L, G->n_out * c.rows));
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *g = lfor(L, &p, "g", li(L, 0), li(L, G->groups));
    Expr *xb = lbind(L, p, "xb", group_base(L, &c, nb, g, c.cg, G->in_sz));
    Expr *yb = lbind(L, p, "yb", group_base(L, &c, nb, g, c.og, P));
    unfold(L, p, &c, colt, X, xb, true);
    lgemm(L, p, (MatRef){DW, lmul(L, g, li(L, c.og * c.rows)), c.rows, 1, 0, 0}, (MatRef){DY, yb, P, 1, 0, 0},
          (MatRef){colt, li(L, 0), c.rows, 1, 0, 0}, li(L, c.og), c.rows, li(L, P), true);
}
