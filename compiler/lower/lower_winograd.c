/* lower_winograd.c - 3x3 stride-1 2D convolutions by Winograd minimal
 * filtering (ALGO_WINOGRAD: F(4x4, 3x3); ALGO_WINOGRAD2: F(2x2, 3x3)).
 *
 * Needs: a conv or conv_dx node that sched.c found fit (2D, kernel 3x3,
 * stride 1, dilation 1; conv_dx also padding at most 2 on each side).
 * Provides: its kernel, and wino_mats (lower_winograd.h: the transform
 * matrices, also read by the unit tests).  Invalidates nothing.  The
 * output plane is cut into m x m tiles (the last row and column of tiles
 * ragged when m does not divide it); each reads an a x a input tile,
 * a = m + 2.  With B^T [a, a], G [a, 3] and A^T [m, a] the
 * Lavin-Gray matrices of wino_mats, per sample and group:
 *
 *   U [a*a, O, Cg]   = G w G^T            filter transform, once per call
 *   V [a*a, Ci, T]   = B^T d B            input transform, T tiles per plane
 *   M_e [Co, T]      = U_e V_e            a*a GEMMs (lgemm), e = (xi, nu)
 *   y tile [m, m]    = A^T M A (+ bias)   output transform, ragged at edges,
 *                                        storing through the epilogue (lepi)
 *
 * The filter transform runs in every call of the kernel, before the batch
 * loop: once per forward call, once per training step for each of conv
 * and conv_dx (their transforms differ); nothing persists between calls.
 * The transforms are straight-line code generated from the matrices
 * (lincomb drops zero terms and multiplications by 1).  A padded layer,
 * or one whose tiles reach past the input, first copies each group's input
 * planes into a zeroed scratch plane of (TH*m + 2) x (TW*m + 2), so the
 * input transform reads without bounds checks.
 *
 * conv_dx is the same correlation of dy with the kernel flipped in both
 * axes and its channels swapped, padded by 2 - pad on each side: the GEMMs
 * read U transposed (A [Cg, Og] with strides 1, Cg) and the flip happens
 * in the filter transform.
 *
 *   %3 = conv(x [N, 64, 56, 56], w [64, 64, 3, 3]) [N, 64, 56, 56], pad 1
 *     => F(4x4): 14 x 14 tiles, U [36, 64, 64], V [36, 64, 196],
 *        36 GEMMs [64, 64] x [64, 196], then 196 output tiles per channel
 */
#include "lower_winograd.h"

#include "lower_impl.h"

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

/* One node's correlation: Ci input planes of H x W per group, read with
 * padding pt (top) and pl (left), into Co output planes of OH x OW. */
typedef struct {
    const WinoMats *T;
    bool dx;                 /* conv_dx: flipped filter, swapped channels  */
    int groups, ci, co;      /* channels per group: reduced, produced      */
    int H, W, OH, OW;        /* the correlation's input and output planes  */
    int pt, pl;              /* its padding above and left of the input    */
    int TH, TW, ntile;       /* tiles per plane                            */
    int HP, WP;              /* the plane the tiles read                   */
    bool copy;               /* through a zero-padded copy of the input    */
} Wino;

static void wino_geom(Wino *w, Algo algo, bool dx, const Geom *G)
{
    /* Geom holds 2D layers in its last two axes */
    w->T = wino_mats(algo == ALGO_WINOGRAD2 ? 2 : 4);
    w->dx = dx;
    w->groups = G->groups;
    int m = w->T->m;
    int cg = G->n_in / G->groups, og = G->n_out / G->groups;
    w->ci = dx ? og : cg;
    w->co = dx ? cg : og;
    w->H = dx ? G->out[1] : G->in[1];
    w->W = dx ? G->out[2] : G->in[2];
    w->OH = dx ? G->in[1] : G->out[1];
    w->OW = dx ? G->in[2] : G->out[2];
    w->pt = dx ? 2 - G->plo[1] : G->plo[1];
    w->pl = dx ? 2 - G->plo[2] : G->plo[2];
    NETC_ASSERT(G->k_sz == 9 && G->k[1] == 3 && G->k[2] == 3 && w->pt >= 0 && w->pl >= 0);
    w->TH = (w->OH + m - 1) / m;
    w->TW = (w->OW + m - 1) / m;
    w->ntile = w->TH * w->TW;
    w->HP = w->TH * m + 2;
    w->WP = w->TW * m + 2;
    w->copy = w->pt || w->pl || w->H < w->HP || w->W < w->WP;
    NETC_ASSERT(w->H + w->pt <= w->HP && w->W + w->pl <= w->WP);
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

/* n loads buf[base + offs[i]] into locals named `name`. */
static void load_tile(Lower *L, Stmt *p, const char *name, Expr **v, int buf, Expr *base, const int *offs, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = lvar(L, ldecl(L, p, name, T_F32, lload(L, buf, ladd(L, base, li(L, offs[i])))));
}

/* U [a*a, O, Cg] = G w G^T for every w [O, Cg, 3, 3] filter (flipped for
 * conv_dx).  Each (o, c) writes its own entries: independent. */
static void filter_transform(Lower *L, Stmt *p, const Wino *w, int wbuf, int u)
{
    const WinoMats *T = w->T;
    int O = w->groups * (w->dx ? w->ci : w->co), cg = w->dx ? w->co : w->ci;
    int a = T->a, offs[9];
    for (int i = 0; i < 9; i++)
        offs[i] = w->dx ? 8 - i : i;
    Stmt *q = p;
    Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, O));
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, cg));
    Expr *f = lbind(L, q, "f", lmad(L, o, cg, c));
    Expr *g[9], *out[WINO_AMAX * WINO_AMAX];
    load_tile(L, q, "g", g, wbuf, lmul(L, f, li(L, 9)), offs, 9);
    transform(L, q, T->g, a, 3, T->g, a, 3, g, out);
    for (int e = 0; e < a * a; e++)
        lstore(L, q, u, ladd(L, f, li(L, e * O * cg)), out[e], false);
}

/* xp [Ci, HP, WP] interior = the group's input planes at xb. */
static void copy_planes(Lower *L, Stmt *p, const Wino *w, int xp, int x, Expr *xb)
{
    Stmt *q = p;
    Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, w->ci));
    Expr *h = lfor(L, &q, "h", li(L, 0), li(L, w->H));
    Expr *dst = lbind(L, q, "xr", lmad(L, lmad(L, c, w->HP, ladd(L, h, li(L, w->pt))), w->WP, li(L, w->pl)));
    Expr *src = lbind(L, q, "sr", ladd(L, xb, lmul(L, lmad(L, c, w->H, h), li(L, w->W))));
    Expr *i = lfor(L, &q, "i", li(L, 0), li(L, w->W));
    lstore(L, q, xp, ladd(L, dst, i), lload(L, x, ladd(L, src, i)), false);
}

/* V [a*a, Ci, T] = B^T d B for every a x a tile d of the planes in `src`
 * (plane c at base + c*plane, rows rs apart).  Planes are independent. */
static void input_transform(Lower *L, Stmt *p, const Wino *w, int v, int src, Expr *base, int plane, int rs)
{
    const WinoMats *T = w->T;
    int a = T->a, m = T->m, offs[WINO_AMAX * WINO_AMAX];
    for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++)
            offs[i * a + j] = i * rs + j;
    Stmt *q = p;
    Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, w->ci));
    Expr *th = lfor(L, &q, "th", li(L, 0), li(L, w->TH));
    Expr *tw = lfor(L, &q, "tw", li(L, 0), li(L, w->TW));
    Expr *tb = lbind(L, q, "tb", ladd(L, lmad(L, c, plane, base), lmad(L, th, m * rs, lmul(L, tw, li(L, m)))));
    Expr *d[WINO_AMAX * WINO_AMAX], *out[WINO_AMAX * WINO_AMAX];
    load_tile(L, q, "d", d, src, tb, offs, a * a);
    transform(L, q, T->bt, a, a, T->bt, a, a, d, out);
    Expr *vi = lbind(L, q, "vi", lmad(L, c, w->ntile, lmad(L, th, w->TW, tw)));
    for (int e = 0; e < a * a; e++)
        lstore(L, q, v, ladd(L, vi, li(L, e * w->ci * w->ntile)), out[e], false);
}

/* M_e [Co, T] = U_e V_e for each of the a*a tile positions e: with U_e
 * [O, Cg] read as group g's [Co, Ci] block (conv) or its transpose
 * (conv_dx). */
static void tile_gemms(Lower *L, Stmt *p, const Wino *w, int mb, int u, int v, Expr *g)
{
    int a = w->T->a, T = w->ntile, per = w->groups * w->ci * w->co;
    Stmt *q = p;
    Expr *e = lfor_indep(L, &q, "e", li(L, 0), li(L, a * a));
    Expr *ub = ladd(L, lmul(L, e, li(L, per)), lmul(L, g, li(L, w->ci * w->co)));
    MatRef A = w->dx ? (MatRef){u, ub, 1, w->co, 0, 0} : (MatRef){u, ub, w->ci, 1, 0, 0};
    lgemm(L, q, (MatRef){mb, lmul(L, e, li(L, w->co * T)), T, 1, 0, 0}, A,
          (MatRef){v, lmul(L, e, li(L, w->ci * T)), T, 1, 0, 0}, li(L, w->co), T, li(L, w->ci), false);
}

/* Output tiles (th, tw) in [th0, th1) x [tw0, tw1) of channel oc, each
 * storing its first rows x cols values: y = A^T M A (+ bias). */
static void out_tiles(Lower *L, Stmt *p, const Wino *w, int y, int mb, Expr *oc, Expr *yc, Expr *bias,
                      const int th[2], const int tw[2], int rows, int cols)
{
    const WinoMats *T = w->T;
    int a = T->a, m = T->m, offs[WINO_AMAX * WINO_AMAX];
    for (int e = 0; e < a * a; e++)
        offs[e] = e * w->co * w->ntile;
    Stmt *q = p;
    Expr *i = lfor(L, &q, "th", li(L, th[0]), li(L, th[1]));
    Expr *j = lfor(L, &q, "tw", li(L, tw[0]), li(L, tw[1]));
    Expr *mv[WINO_AMAX * WINO_AMAX], *out[WINO_AMAX * WINO_AMAX];
    load_tile(L, q, "m", mv, mb, lbind(L, q, "mi", lmad(L, oc, w->ntile, lmad(L, i, w->TW, j))), offs, a * a);
    transform(L, q, T->at, rows, a, T->at, cols, a, mv, out);
    Expr *yb = lbind(L, q, "yt", ladd(L, yc, lmad(L, i, m * w->OW, lmul(L, j, li(L, m)))));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            Expr *v = bias ? fadd(L, out[r * cols + c], bias) : out[r * cols + c];
            Expr *yi = ladd(L, yb, li(L, r * w->OW + c));
            lstore(L, q, y, yi, L->epi ? lepi(L, q, L->epi, v, yi) : v, false);
        }
}

/* The output planes at yb from M: per channel, the full tiles and the
 * ragged last row and column (when m does not divide OH or OW). */
static void output_transform(Lower *L, Stmt *p, const Wino *w, int y, int mb, Expr *yb, int bbuf, Expr *g)
{
    int m = w->T->m;
    Stmt *q = p;
    Expr *oc = lfor_indep(L, &q, "oc", li(L, 0), li(L, w->co));
    Expr *yc = lbind(L, q, "yc", lmad(L, oc, w->OH * w->OW, yb));
    Expr *bias = bbuf < 0 ? NULL
                          : lvar(L, ldecl(L, q, "bias", T_F32, lload(L, bbuf, lmad(L, g, w->co, oc))));
    for (int vh = 0; vh < 2; vh++)
        for (int vw = 0; vw < 2; vw++) {
            int rows = vh ? w->OH % m : m, cols = vw ? w->OW % m : m;
            int th[2] = {vh ? w->OH / m : 0, vh ? w->TH : w->OH / m};
            int tw[2] = {vw ? w->OW / m : 0, vw ? w->TW : w->OW / m};
            if (rows && cols && th[1] > th[0] && tw[1] > tw[0])
                out_tiles(L, q, w, y, mb, oc, yc, bias, th, tw, rows, cols);
        }
}

/* The whole correlation, buffers out (y or dx), in (x or dy), w and the
 * bias (-1: none). */
static void lower_wino(Lower *L, const Wino *w, int out, int in, int wbuf, int bbuf)
{
    int a = w->T->a, T = w->ntile;
    int u = kernel_scratch(L->a, L->k, "wu", (long)a * a * w->groups * w->ci * w->co, 0);
    int v = kernel_scratch(L->a, L->k, "wv", (long)a * a * w->ci * T, 0);
    int mb = kernel_scratch(L->a, L->k, "wm", (long)a * a * w->co * T, 0);
    int xp = w->copy ? kernel_scratch(L->a, L->k, "xpad", (long)w->ci * w->HP * w->WP, 0) : -1;

    Stmt *p = L->k->body;
    filter_transform(L, p, w, wbuf, u);
    if (xp >= 0)
        lzero(L, p, xp, li(L, 0), li(L, w->ci * w->HP * w->WP));
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *g = lfor(L, &p, "g", li(L, 0), li(L, w->groups));
    Expr *ng = lmad(L, nb, w->groups, g);
    Expr *xb = lbind(L, p, "xb", lmul(L, ng, li(L, w->ci * w->H * w->W)));
    Expr *yb = lbind(L, p, "yb", lmul(L, ng, li(L, w->co * w->OH * w->OW)));
    if (xp >= 0) {
        copy_planes(L, p, w, xp, in, xb);
        input_transform(L, p, w, v, xp, li(L, 0), w->HP * w->WP, w->WP);
    } else {
        input_transform(L, p, w, v, in, xb, w->H * w->W, w->W);
    }
    tile_gemms(L, p, w, mb, u, v, g);
    output_transform(L, p, w, out, mb, yb, bbuf, g);
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
    wino_geom(&w, L->algo, false, &G);
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
    wino_geom(&w, L->algo, true, &G);
    lower_wino(L, &w, DX, DY, W, -1);
    L->epi_done = true;
}
