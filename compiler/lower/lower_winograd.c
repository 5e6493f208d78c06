/* lower_winograd.c - 3x3 stride-1 2D convolutions by Winograd minimal
 * filtering (ALGO_WINOGRAD: F(4x4, 3x3); ALGO_WINOGRAD2: F(2x2, 3x3)).
 *
 * Needs: a conv, conv_dx or conv_dw node that sched.c found fit (2D,
 * kernel 3x3, stride 1, dilation 1; conv_dx also padding at most 2 on each
 * side).  Provides: its kernel, and wino_mats / wino_block
 * (lower_winograd.h: the transform matrices, also read by the unit tests;
 * the samples per block, also read by the cost model).  Invalidates
 * nothing.  The output plane is cut into m x m tiles (the last row and
 * column of tiles ragged), each reading an a x a input tile, a = m + 2.
 * The tiles are columns (lower_tiles.h): per block of S samples and group,
 * column j = s T + t is tile t of sample s, hc = S T in whole vectors.
 * With B^T [a, a], G [a, 3] and A^T [m, a] the Lavin-Gray matrices of
 * wino_mats:
 *
 *   U [a*a, O, Cg]   = G w G^T            filter transform, once per call,
 *                                         each group's U_e packed for lgemm
 *   G_c [a*a, hc]                         channel c's tiles gathered
 *   V [a*a, Ci, hc]  = B^T d B            input transform, over the columns
 *   M_e [Co, hc]     = U_e V_e            a*a GEMMs (lgemm), e = (xi, nu)
 *   Y_o [m*m, hc]    = A^T M A            output transform, over the columns
 *   y                = Y (+ bias)         scattered, through the epilogue,
 *                                         clipped at the plane's edges
 *
 * A batch's last n % S samples run one at a time when that computes fewer
 * columns than one more block (wino_tail, tiles_single).
 *
 * The transforms' loops run over the columns with unit-stride loads and
 * stores (loop_vectorize widens them); the gather and scatter are the
 * only single-float moves.  The filter transform runs in every call of
 * the kernel, before the batch loop: once per forward call, once per
 * training step for each of conv and conv_dx (their transforms differ);
 * nothing persists between calls.  The transforms are straight-line code
 * generated from the matrices (lincomb drops zero terms and
 * multiplications by 1).  A padded layer, or one whose tiles reach past
 * the input, first copies each block's input planes into zeroed scratch
 * planes of (TH*m + 2) x (TW*m + 2), so the gather reads without bounds
 * checks.
 *
 * conv_dx is the same correlation of dy with the kernel flipped in both
 * axes and its channels swapped, padded by 2 - pad on each side: the GEMMs
 * read U transposed (A [Cg, Og] with strides 1, Cg) and the flip happens
 * in the filter transform.  conv_dw (lower_conv_dw_winograd, at the end)
 * runs the adjoints: dM = A dy A^T per dy tile, dU_e = sum dM_e V_e^T, dw
 * = G^T dU G.
 *
 *   %3 = conv(x [N, 64, 56, 56], w [64, 64, 3, 3]) [N, 64, 56, 56], pad 1
 *     => F(4x4): 14 x 14 tiles, S = 1, hc = 208 with 16 lanes,
 *        U [36, 64, 64], V [36, 64, 208], 36 GEMMs [64, 64] x [64, 208],
 *        then 13 vectors of columns per output channel
 *
 *     for c in 0..64 (indep)                 for oc in 0..64 (indep)
 *       gather G_c                             for j in 0..208 (vector)
 *       for j in 0..208 (vector)                 Y[oc][..][j] = A^T M[..][oc][j] A
 *         V[..][c][j] = B^T G_c[..][j] B       scatter Y[oc] to y
 */
#include "lower_winograd.h"

#include "lower_tiles.h"

/* Points 0, 1, -1 and infinity. */
static const double bt2[] = {
    1, 0, -1, 0,
    0, 1, 1, 0,
    0, -1, 1, 0,
    0, 1, 0, -1,
};
static const double g2[] = {
    1, 0, 0,
    0.5, 0.5, 0.5,
    0.5, -0.5, 0.5,
    0, 0, 1,
};
static const double at2[] = {
    1, 1, 1, 0,
    0, 1, -1, -1,
};

/* Points 0, 1, -1, 2, -2 and infinity. */
static const double bt4[] = {
    4, 0, -5, 0, 1, 0,
    0, -4, -4, 1, 1, 0,
    0, 4, -4, -1, 1, 0,
    0, -2, -1, 2, 1, 0,
    0, 2, -1, -2, 1, 0,
    0, 4, 0, -5, 0, 1,
};
static const double g4[] = {
    1.0 / 4, 0, 0,
    -1.0 / 6, -1.0 / 6, -1.0 / 6,
    -1.0 / 6, 1.0 / 6, -1.0 / 6,
    1.0 / 24, 1.0 / 12, 1.0 / 6,
    1.0 / 24, -1.0 / 12, 1.0 / 6,
    0, 0, 1,
};
static const double at4[] = {
    1, 1, 1, 1, 1, 0,
    0, 1, -1, 2, -2, 0,
    0, 1, 1, 4, 4, 0,
    0, 1, -1, 8, -8, 1,
};

static const WinoMats mats[] = {
    {2, 4, bt2, g2, at2},
    {4, 6, bt4, g4, at4},
};

const WinoMats *wino_mats(int m)
{
    NETC_ASSERT(m == 2 || m == 4);
    return &mats[m == 4];
}

int wino_block(int T)
{
    int S = 1;
    while (S < 8 && S * T < 48)
        S *= 2;
    return S;
}

int wino_tail(int T, int V)
{
    return tiles_tail_most(T, wino_block(T), V);
}

/* One node's correlation: its tiles (lower_tiles.h: input tile a x a,
 * output tile m x m) and transform. */
typedef struct {
    Tiles t;   /* per group                                              */
    Tiles all; /* every group's channels as one: the data moves and the
                  transforms run over all of them, the GEMMs per group   */
    const WinoMats *T;
    bool dx;   /* conv_dx: flipped filter, swapped channels              */
    int mr;    /* U_e's micro-panel height (lgemm_pack layout)           */
    int pb;    /* floats of one group's packed U_e [Co, Ci]              */
} Wino;

static void wino_geom(Wino *w, Lower *L, bool dx, const Geom *G)
{
    /* Geom holds 2D layers in its last two axes */
    w->T = wino_mats(L->algo == ALGO_WINOGRAD2 ? 2 : 4);
    w->dx = dx;
    Tiles *t = &w->t;
    t->groups = G->groups;
    int cg = G->n_in / G->groups, og = G->n_out / G->groups;
    t->ci = dx ? og : cg;
    t->co = dx ? cg : og;
    t->H = dx ? G->out[1] : G->in[1];
    t->W = dx ? G->out[2] : G->in[2];
    t->OH = dx ? G->in[1] : G->out[1];
    t->OW = dx ? G->in[2] : G->out[2];
    t->pt = dx ? 2 - G->plo[1] : G->plo[1];
    t->pl = dx ? 2 - G->plo[2] : G->plo[2];
    NETC_ASSERT(G->k_sz == 9 && G->k[1] == 3 && G->k[2] == 3 && t->pt >= 0 && t->pl >= 0);
    t->NH = t->NW = w->T->a;
    t->MH = t->MW = w->T->m;
    tiles_geom(t, wino_block, L->t->vlen);
    w->all = *t;
    w->all.groups = 1;
    w->all.ci *= t->groups;
    w->all.co *= t->groups;
}

/* sum_l c[l] x[l] for l < n, without its zero terms; additions in l order. */
static Expr *lincomb(Lower *L, const double *c, int n, Expr *const *x, int xstep)
{
    Expr *s = NULL;
    for (int l = 0; l < n; l++) {
        if (c[l] == 0)
            continue;
        double mag = c[l] < 0 ? -c[l] : c[l];
        Expr *t = mag == 1 ? x[l * xstep] : fmul(L, lf(L, (float)mag), x[l * xstep]);
        if (!s)
            s = c[l] < 0 ? ex_un(L->a, X_NEG, t) : t;
        else
            s = c[l] < 0 ? fsub(L, s, t) : fadd(L, s, t);
    }
    return s ? s : lf(L, 0.0f);
}

/* out [r, c] = M [r, k] X [k, k2] N^T [k2, c]: M X in locals declared in
 * p, out as expressions over them. */
static void transform(Lower *L, Stmt *p, const double *M, int r, int k, const double *N, int c, int k2,
                      Expr *const *X, Expr **out)
{
    Expr *t[WINO_AMAX * WINO_AMAX];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < k2; j++)
            t[i * k2 + j] = lvar(L, ldecl(L, p, "t", T_F32, lincomb(L, M + i * k, k, X + j, k2)));
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++)
            out[i * c + j] = lincomb(L, N + j * k2, k2, t + i * k2, 1);
}

/* n loads buf[base + i*step] into locals named `name`. */
static void load_tile(Lower *L, Stmt *p, const char *name, Expr **v, int buf, Expr *base, int step, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = lvar(L, ldecl(L, p, name, T_F32, lload(L, buf, ladd(L, base, li(L, i * step)))));
}

/* U_e = G w G^T for every w [O, Cg, 3, 3] filter (flipped for conv_dx),
 * each group's U_e [Co, Ci] packed for lgemm (lgemm_pack's layout, w->mr
 * rows a micro-panel, w->pb floats): the taps first copied tap-major into
 * the packed order, wt [9, G pb] (scalar; the panel's unused rows zero),
 * then one loop over the G pb positions with unit-stride loads and
 * stores, which loop_vectorize widens.  conv reads U_e's row o, column c
 * from filter (o, c), conv_dx row c, column o. */
static void filter_transform(Lower *L, Stmt *p, const Wino *w, int wbuf, int u)
{
    const WinoMats *T = w->T;
    int G = w->t.groups, M = w->t.co, K = w->t.ci, mr = w->mr, F = G * w->pb, a = T->a;
    int wt = kernel_scratch(L->a, L->k, "wt", 9L * F, 0);
    if (w->pb > M * K)
        lzero(L, p, wt, li(L, 0), li(L, 9 * F));
    {
        /* filter (o, c) of group g: w[((g*O + o)*Cg + c)*9 + tap] */
        int O = w->dx ? K : M, cg = w->dx ? M : K;
        Stmt *q = p;
        Expr *g = lfor_indep(L, &q, "g", li(L, 0), li(L, G));
        Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, O));
        Expr *c = lfor(L, &q, "c", li(L, 0), li(L, cg));
        Expr *r = w->dx ? c : o, *k = w->dx ? o : c;
        Expr *panel = lmad(L, ldiv(L, r, li(L, mr)), mr * K, lmul(L, k, li(L, mr)));
        Expr *at = lbind(L, q, "pu", ladd(L, lmad(L, g, w->pb, panel), ex_bin(L->a, X_MOD, r, li(L, mr))));
        Expr *fb = lbind(L, q, "fb", lmul(L, lmad(L, lmad(L, g, O, o), cg, c), li(L, 9)));
        for (int i = 0; i < 9; i++)
            lstore(L, q, wt, ladd(L, at, li(L, i * F)), lload(L, wbuf, ladd(L, fb, li(L, w->dx ? 8 - i : i))), false);
    }
    Stmt *q = p;
    Expr *f = lfor_indep(L, &q, "f", li(L, 0), li(L, F));
    Expr *g[9], *out[WINO_AMAX * WINO_AMAX];
    for (int i = 0; i < 9; i++)
        g[i] = lvar(L, ldecl(L, q, "g", T_F32, lload(L, wt, ladd(L, f, li(L, i * F)))));
    transform(L, q, T->g, a, 3, T->g, a, 3, g, out);
    for (int e = 0; e < a * a; e++)
        lstore(L, q, u, ladd(L, f, li(L, e * F)), out[e], false);
}

/* V [a*a, Ci, hc] = B^T d B for the a x a tile d of every column of
 * channel c's gathered tiles G at gc: one loop over the columns, unit
 * stride in every load and store. */
static void input_transform(Lower *L, Stmt *p, const Wino *w, int v, int gb, Expr *gc, Expr *c)
{
    const WinoMats *T = w->T;
    int a = T->a, H = w->all.hc;
    Stmt *q = p;
    Expr *j = lfor_indep(L, &q, "j", li(L, 0), li(L, H));
    Expr *d[WINO_AMAX * WINO_AMAX] = {0}, *out[WINO_AMAX * WINO_AMAX];
    load_tile(L, q, "d", d, gb, lbind(L, q, "gj", ladd(L, gc, j)), H, a * a);
    transform(L, q, T->bt, a, a, T->bt, a, a, d, out);
    Expr *vi = lbind(L, q, "vi", lmad(L, c, H, j));
    for (int e = 0; e < a * a; e++)
        lstore(L, q, v, ladd(L, vi, li(L, e * w->all.ci * H)), out[e], false);
}

/* The block's input tiles, transformed: its samples' planes copied into
 * the zeroed padded planes xp (when xp >= 0), each channel's tiles
 * gathered into G and transformed into V (input_transform). */
static void transform_inputs(Lower *L, Stmt *b, const Wino *w, int in, Expr *xb, Expr *ns, int xp, int gb, int v)
{
    const Tiles *t = &w->all;
    int H = t->hc, a2 = w->T->a * w->T->a;
    if (xp >= 0)
        tiles_copy(L, b, t, xp, in, xb, tiles_xstep(t), ns);
    Stmt *q = b;
    Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, t->ci));
    Expr *gc = lbind(L, q, "gc", lmul(L, c, li(L, a2 * H)));
    tiles_gather_input(L, q, t, gb, gc, in, xb, tiles_xstep(t), xp, c, ns);
    input_transform(L, q, w, v, gb, gc, c);
}

/* M_e [Co, hc] = U_e V_e for each of the a*a tile positions e and group
 * g (V_e and M_e hold every group's channels, group g's from row g*Cg and
 * g*Co), with U_e group g's packed [Co, Ci] (filter_transform). */
static void tile_gemms(Lower *L, Stmt *p, const Wino *w, int mb, int u, int v)
{
    int a = w->T->a, H = w->t.hc, ci = w->t.ci, co = w->t.co, G = w->t.groups;
    Stmt *q = p;
    Expr *eg = lfor_indep(L, &q, "e", li(L, 0), li(L, a * a * G));
    Expr *e = G == 1 ? eg : lbind(L, q, "ep", ldiv(L, eg, li(L, G)));
    Expr *g = G == 1 ? li(L, 0) : lbind(L, q, "g", lsub(L, eg, lmul(L, e, li(L, G))));
    MatRef A = {u, lmul(L, eg, li(L, w->pb)), 0, 0, w->mr, ci};
    Expr *mrow = lmad(L, e, G * co, lmul(L, g, li(L, co))), *vrow = lmad(L, e, G * ci, lmul(L, g, li(L, ci)));
    lgemm(L, q, (MatRef){mb, lmul(L, mrow, li(L, H)), H, 1, 0, 0}, A, (MatRef){v, lmul(L, vrow, li(L, H)), H, 1, 0, 0},
          li(L, co), H, li(L, ci), false);
}

/* Y [m*m, hc] at yo = A^T M A for channel oc's column of M (row oc at
 * mc) in every column: one loop over the columns, unit stride. */
static void output_transform(Lower *L, Stmt *p, const Wino *w, int yt, Expr *yo, int mb, Expr *mc)
{
    const WinoMats *T = w->T;
    int a = T->a, m = T->m, H = w->all.hc;
    Stmt *q = p;
    Expr *j = lfor_indep(L, &q, "j", li(L, 0), li(L, H));
    Expr *mv[WINO_AMAX * WINO_AMAX] = {0}, *out[WINO_AMAX * WINO_AMAX];
    load_tile(L, q, "m", mv, mb, lbind(L, q, "mj", ladd(L, mc, j)), w->all.co * H, a * a);
    transform(L, q, T->at, m, a, T->at, m, a, mv, out);
    Expr *yj = lbind(L, q, "yj", ladd(L, yo, j));
    for (int i = 0; i < m * m; i++)
        lstore(L, q, yt, ladd(L, yj, li(L, i * H)), out[i], false);
}

/* The scratch of one correlation: U, V, M, Y, the gathered tiles G and
 * the padded planes xp (-1: none), sized for its widest blocks. */
typedef struct {
    int u, v, mb, yt, gb, xp;
} WinoBufs;

/* The samples [lo, hi) in blocks of w's S: their tiles transformed,
 * multiplied, transformed back and scattered into out. */
static void wino_samples(Lower *L, const Wino *w, const WinoBufs *s, int out, int in, int bbuf, Expr *lo, Expr *hi)
{
    const Tiles *t = &w->all;
    long H = t->hc, Q = (long)w->T->m * w->T->m;
    Stmt *p = L->k->body;
    Expr *g, *ns, *xb, *yb;
    tiles_blocks(L, &p, t, lo, hi, &g, &ns, &xb, &yb);
    transform_inputs(L, p, w, in, xb, ns, s->xp, s->gb, s->v);
    tile_gemms(L, p, w, s->mb, s->u, s->v);
    Stmt *q = p;
    Expr *oc = lfor_indep(L, &q, "oc", li(L, 0), li(L, t->co));
    Expr *yo = lbind(L, q, "yo", lmul(L, oc, li(L, (int)(Q * H))));
    output_transform(L, q, w, s->yt, yo, s->mb, lmul(L, oc, li(L, (int)H)));
    Expr *bias = bbuf < 0 ? NULL : lvar(L, ldecl(L, q, "bias", T_F32, lload(L, bbuf, oc)));
    tiles_scatter(L, q, t, out, lbind(L, q, "yc", lmad(L, oc, t->OH * t->OW, yb)), tiles_ystep(t), s->yt, yo, bias,
                  ns);
}

/* The whole correlation, buffers out (y or dx), in (x or dy), w and the
 * bias (-1: none): blocks of S samples, then the batch's last samples one
 * at a time where that computes fewer columns (wino_tail).  The single
 * sample's columns reuse the blocks' scratch; what the blocks left in its
 * padding columns is multiplied and never read back, as each column's
 * GEMM result depends on that column alone. */
static void lower_wino(Lower *L, Wino *w, int out, int in, int wbuf, int bbuf)
{
    const Tiles *t = &w->all;
    long a2 = (long)w->T->a * w->T->a, H = t->hc, Q = (long)w->T->m * w->T->m;
    int most = wino_tail(t->ntile, L->t->vlen);
    Tiles t1;
    tiles_single(&w->t, L->t->vlen, &t1);
    /* one packing serves the blocks and the single samples: the smaller
     * panel height fits the registers of both micro-kernels */
    int M = w->t.co, mr = lgemm_pack_mr(L, M, w->t.hc), mr1 = lgemm_pack_mr(L, M, t1.hc);
    w->mr = most && mr1 < mr ? mr1 : mr;
    w->pb = (M + w->mr - 1) / w->mr * w->mr * w->t.ci;
    Wino one = *w;
    one.t = t1;
    tiles_single(&w->all, L->t->vlen, &one.all);
    WinoBufs s;
    s.u = kernel_scratch(L->a, L->k, "wu", a2 * w->t.groups * w->pb, 0);
    s.v = kernel_scratch(L->a, L->k, "wv", a2 * t->ci * H, 0);
    s.mb = kernel_scratch(L->a, L->k, "wm", a2 * t->co * H, 0);
    s.yt = kernel_scratch(L->a, L->k, "wy", t->co * Q * H, 0);
    filter_transform(L, L->k->body, w, wbuf, s.u);
    tiles_scratch(L, t, "w", &s.gb, &s.xp);
    Expr *tail = most ? tiles_tail_start(L, t, most) : lbatch(L);
    wino_samples(L, w, &s, out, in, bbuf, li(L, 0), tail);
    if (most)
        wino_samples(L, &one, &s, out, in, bbuf, tail, lbatch(L));
}

/* y [N, O, OH, OW] = b + conv(x [N, C, H, W], w [O, C/g, 3, 3]); the
 * output transform stores each value once, applying the epilogue */
void lower_conv_winograd(Lower *L)
{
    enum { Y, X, W, B };
    Geom G;
    geom_conv(&G, &L->n->p.conv, &lin(L, 0)->shape, &L->n->shape);
    check_weight(&G, lin(L, 1));
    Wino w;
    wino_geom(&w, L, false, &G);
    lower_wino(L, &w, Y, X, W, node_own_nin(L->n) == 3 ? B : -1);
    L->epi_done = true;
}

/* dx [N, C, H, W] = conv_transpose(dy [N, O, OH, OW], w [O, C/g, 3, 3]) */
void lower_conv_dx_winograd(Lower *L)
{
    enum { DX, DY, W };
    Geom G;
    geom_conv(&G, &L->n->p.conv, &L->n->shape, &lin(L, 0)->shape);
    check_weight(&G, lin(L, 1));
    Wino w;
    wino_geom(&w, L, true, &G);
    lower_wino(L, &w, DX, DY, W, -1);
    L->epi_done = true;
}

/* M [rows, cols] transposed into out [cols, rows]. */
static void transposed(const double *M, int rows, int cols, double *out)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            out[j * rows + i] = M[i * cols + j];
}

/* dw [O, C/g, 3, 3] = sum over the batch of the correlation of x with dy,
 * on the forward layer's tiles, by the adjoints of its transforms: per
 * block and group the input's tiles transformed as the forward pass does
 * (V_e [Cg, hc]); the m x m dy tiles (zero past the plane's edges)
 * gathered channel-fastest, Gd [m*m, hc, Og], and transformed over the
 * channels to dM = A dy A^T, D_e [hc, Og]; per position e
 * dU_e^T [Cg, Og] += V_e D_e on the micro-kernel (lgemm), into
 * dU [G, Cg, a*a, Og] (position e's rows a*a*Og apart).  After the
 * batch each (o, c)'s a x a sums go back to its taps, dw = G^T dU G.
 * Every sum in a fixed order: the blocks in turn, each position's columns
 * as lgemm sums them. */
void lower_conv_dw_winograd(Lower *L)
{
    enum { DW, X, DY };
    Geom G;
    geom_conv(&G, &L->n->p.conv, &lin(L, 0)->shape, &lin(L, 1)->shape);
    Wino w;
    wino_geom(&w, L, false, &G);
    const Tiles *t = &w.all; /* every group's channels; ci, co per group */
    const WinoMats *T = w.T;
    int a = T->a, m = T->m, a2 = a * a, mm = m * m, ci = w.t.ci, co = w.t.co, H = t->hc;
    int NG = w.t.groups, per = NG * co * ci, CO = t->co;
    int v = kernel_scratch(L->a, L->k, "wv", (long)a2 * t->ci * H, 0);
    int d = kernel_scratch(L->a, L->k, "wd", (long)a2 * H * CO, 0);
    int acc = kernel_scratch(L->a, L->k, "ww", (long)a2 * per, 0);
    int gd = kernel_scratch(L->a, L->k, "wgd", (long)mm * H * CO, 0);
    int gb, xp;
    Stmt *p = L->k->body;
    lzero(L, p, acc, li(L, 0), li(L, a2 * per));
    lzero(L, p, gd, li(L, 0), li(L, mm * H * CO));
    tiles_scratch(L, t, "w", &gb, &xp);
    double A[WINO_AMAX * WINO_AMAX], Gt[3 * WINO_AMAX];
    transposed(T->at, m, a, A);
    transposed(T->g, a, 3, Gt);
    {
        Stmt *b = p;
        Expr *g, *ns, *xb, *yb;
        tiles_blocks(L, &b, t, li(L, 0), lbatch(L), &g, &ns, &xb, &yb);
        transform_inputs(L, b, &w, X, xb, ns, xp, gb, v);
        tiles_zero_missing(L, b, t, gd, mm, 1, H * CO, CO, ns);
        tiles_gather_dy(L, b, t, gd, li(L, 0), m, H * CO, CO, DY, yb, tiles_ystep(t), NULL, ns);
        {
            /* dM over the channels, per column */
            Stmt *q = b;
            Expr *j = lfor_indep(L, &q, "j", li(L, 0), li(L, H));
            Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, CO));
            Expr *di = lbind(L, q, "di", lmad(L, j, CO, o));
            Expr *dv[WINO_AMAX * WINO_AMAX] = {0}, *out[WINO_AMAX * WINO_AMAX];
            load_tile(L, q, "d", dv, gd, di, H * CO, mm);
            transform(L, q, A, a, m, A, a, m, dv, out);
            for (int e = 0; e < a2; e++)
                lstore(L, q, d, ladd(L, di, li(L, e * H * CO)), out[e], false);
        }
        {
            /* per position and group (independent: each its own sums) */
            Stmt *q = b;
            Expr *eg = lfor_indep(L, &q, "e", li(L, 0), li(L, a2 * NG));
            Expr *e = NG == 1 ? eg : lbind(L, q, "ep", ldiv(L, eg, li(L, NG)));
            Expr *gr = NG == 1 ? li(L, 0) : lbind(L, q, "gr", lsub(L, eg, lmul(L, e, li(L, NG))));
            Expr *cb = lmul(L, lmad(L, gr, ci * a2, e), li(L, co));
            Expr *vrow = lmad(L, e, NG * ci, lmul(L, gr, li(L, ci)));
            Expr *dcol = ladd(L, lmul(L, e, li(L, H * CO)), lmul(L, gr, li(L, co)));
            lgemm(L, q, (MatRef){acc, cb, a2 * co, 1, 0, 0}, (MatRef){v, lmul(L, vrow, li(L, H)), H, 1, 0, 0},
                  (MatRef){d, dcol, CO, 1, 0, 0}, li(L, ci), co, li(L, H), true);
        }
    }
    /* each filter's a x a sums to its taps: dU [G, Cg, a*a, Og], group g's
     * dU_e^T [Cg, Og] row c at ((g*Cg + c)*a*a + e)*Og, so that one input
     * channel's sums for every position and output channel are one
     * contiguous block; the output channels innermost, each of the a*a
     * loads running along a row of it */
    Stmt *q = p;
    Expr *gg = lfor_indep(L, &q, "g", li(L, 0), li(L, NG));
    Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, ci));
    Expr *og = lfor(L, &q, "o", li(L, 0), li(L, co));
    Expr *o = lbind(L, q, "of", lmad(L, gg, co, og));
    Expr *ab = lbind(L, q, "ab", lmad(L, lmad(L, gg, ci, c), a2 * co, og));
    Expr *du[WINO_AMAX * WINO_AMAX] = {0}, *out[9];
    load_tile(L, q, "u", du, acc, ab, co, a2);
    transform(L, q, Gt, 3, a, Gt, 3, a, du, out);
    Expr *wb = lbind(L, q, "wb", lmul(L, lmad(L, o, ci, c), li(L, 9)));
    for (int i = 0; i < 9; i++)
        lstore(L, q, DW, ladd(L, wb, li(L, i)), out[i], false);
}
