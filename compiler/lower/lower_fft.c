/* lower_fft.c - 1D and 2D stride-1 convolutions by tiled real FFTs
 * (ALGO_FFT, overlap-save).
 *
 * Needs: a conv, conv_dx or conv_dw node that sched.c found fit (1D or
 * 2D, stride 1, dilation 1, kernel 2 or more along some axis; conv_dx
 * also padding at most K - 1 on each side) and a size from fft_size.
 * Provides: its kernel, and the float32 tile transforms of lower_fft.h
 * (for the unit tests).  Invalidates nothing.  The weight gradient
 * (lower_conv_dw_fft, at the end) reuses the forward pass's tiles and
 * transforms; what follows describes conv and conv_dx.
 *
 * With NH x NW transforms (powers of two) and a KH x KW kernel, the output
 * plane is cut into MH x MW tiles, MH = NH - KH + 1 (the last row and
 * column of tiles ragged), each read from the NH x NW input tile at the
 * same corner: the first MH x MW values of the circular correlation of
 * that tile with the kernel are the tile's outputs.  The DFT of a real
 * tile is kept as its half spectrum, NH x (NW/2 + 1) complex bins; the
 * correlation is, bin by bin, X conj(W) summed over input channels.  Per
 * call and then per block of S samples and group, with the block's S T
 * tiles as the columns j = s T + t, hc = S T rounded up to whole vectors:
 *
 *   U_e [Co, 2Ci]   = [Wr Wi] / (NH NW)        filter DFTs, once per call
 *   G [Ci, NH NW, hc]                          the tiles gathered: row
 *                                              i NW + j, column = tile
 *   V_e [2Ci, 2hc]  = [Xr Xi; Xi -Xr]          input DFTs, Xr in columns
 *                                              [0, hc), Xi in [hc, 2hc)
 *   M_e [Co, 2hc]   = U_e V_e = [Mr | Mi]      one real GEMM (lgemm) per bin e
 *   Y [Co, MH MW, hc]                          the inverse DFTs, full tiles
 *   y               = Y's tiles (+ bias), through the epilogue, clipped
 *                     at the plane's edges
 *
 * so each bin's complex product [Co, Ci] x [Ci, T] is one real GEMM of
 * twice the depth and width.  Per input channel (independent: each has
 * its own slice of G) a scalar gather (lower_tiles.c) copies the
 * channel's tiles of the block's samples into G, then the forward transform runs as one loop
 * over the hc columns with unit-stride loads of G and stores into V_e,
 * which loop_vectorize widens; per output channel the inverse runs the
 * same way from M_e into Y, then a scalar scatter stores the tiles' values
 * that fall inside the plane.  S (fft_block) is the power of two up to 8
 * giving at least 48 columns; the padding columns, and those of the
 * samples past the batch's end in its last block, are transformed,
 * multiplied and never read back (G is zeroed once per call, so they stay
 * finite).  A batch's last n % S samples run one at a time when that
 * computes fewer columns than one more block (fft_tail, tiles_single).
 * The scale 1/(NH NW) of the inverse is a
 * power of two, exact, folded into the filter's inputs.  The transforms
 * are straight-line code, emitted once each per kernel: a radix-2
 * decimation-in-time DFT evaluated
 * lazily, only the bins (or, inverse, the outputs) asked for, with a
 * real sequence's bins above the middle taken as conjugates, zero inputs
 * (the filter's padding) folded away, twiddles of 1, -1, i and -i without
 * multiplications; each butterfly's result is a local.  Rows first (real
 * to half spectrum), then columns; the inverse columns first, then rows
 * (only the real part of the output kept).  A padded layer, or one whose
 * tiles reach past the input, first copies each sample's input planes
 * into its zeroed scratch planes of (TH*MH + KH - 1) x (TW*MW + KW - 1).
 *
 * conv_dx is the correlation of dy, padded by K - 1 - pad, with the
 * kernel flipped in both axes and its channel axes swapped: the filter
 * transform reads the taps flipped and stores U_e as [Cg, 2Og].
 *
 *   %3 = conv(x [N, 64, 27, 27], w [192, 64, 5, 5]) [N, 192, 27, 27], pad 2
 *     => 8 x 16 transforms, 4 x 12 tiles, T = 7 * 3 = 21, S = 2, 16 lanes:
 *        hc = 48, U [72, 192, 128], G [64, 128, 48], V [72, 128, 96],
 *        72 GEMMs [192, 128] x [128, 96], Y [192, 48, 48] per 2 samples
 *
 *     for c in 0..64 (indep)                  for oc in 0..192 (indep)
 *       gather G[c]                             for j in 0..48 (vector)
 *       for j in 0..48 (vector)                   Y[oc][..][j] = inv(M[..][oc][j])
 *         V[..][c][j] = fwd(G[c][..][j])        scatter Y[oc] to y
 */
#include "lower_fft.h"

#include <math.h>
#include <string.h>

#include "lower_tiles.h"

enum { FFT_COLS = 16 };
static const double FFT_PI = 3.14159265358979323846;

/* ---- sizes ---- */

static int log2i(int n)
{
    int l = 0;
    while ((1 << l) < n)
        l++;
    return l;
}

int fft_block(int T)
{
    int S = 1;
    while (S < 8 && 2 * T * S < 48)
        S *= 2;
    return S;
}

int fft_tail(int T, int V)
{
    return tiles_tail_most(T, fft_block(T), V);
}

/* Arithmetic per sample and group of one size: the GEMMs' multiply-adds
 * and about N log N per transform of each input and output channel's
 * columns (the tiles, each half's columns rounded up to FFT_COLS, whole
 * vectors with 16 lanes: the size does not depend on the target). */
static double fft_cost(int nh, int nw, int kh, int kw, int oh, int ow, int ci, int co)
{
    int mh = nh - kh + 1, mw = nw - kw + 1;
    int tiles = ((oh + mh - 1) / mh) * ((ow + mw - 1) / mw), S = fft_block(tiles);
    double bins = (double)nh * (nw / 2 + 1);
    double half = ceil((double)tiles * S / FFT_COLS) * FFT_COLS / S;
    double gemm = bins * co * 2.0 * ci * 2 * half;
    double xform = half * (ci + co) * (double)nh * nw * (log2i(nh * nw) + 1);
    return gemm + xform;
}

static int pow2_above(int k)
{
    int n = 1;
    while (n < k + 1 && k > 1)
        n *= 2;
    return n;
}

bool fft_size(int kh, int kw, int oh, int ow, int ci, int co, int *nh, int *nw)
{
    /* the smallest transform the kernel fits, or up to FFT_AREA_PREF
     * points: larger transforms gain little and their straight-line code
     * makes the generated kernels slow to compile */
    int least = pow2_above(kh) * pow2_above(kw);
    int area = least > FFT_AREA_PREF ? least : FFT_AREA_PREF;
    if (least > FFT_AREA_MAX)
        return false;
    double best = -1;
    for (int a = kh == 1 ? 1 : 4; a <= FFT_NMAX; a *= 2) {
        if (a < kh + 1 && kh > 1)
            continue;
        for (int b = kw == 1 ? 1 : 4; b <= FFT_NMAX; b *= 2) {
            if ((b < kw + 1 && kw > 1) || a * b > area || a * b < 2)
                continue;
            double c = fft_cost(a, b, kh, kw, oh, ow, ci, co);
            if (best < 0 || c < best) {
                best = c;
                *nh = a;
                *nw = b;
            }
            if (kw == 1)
                break;
        }
        if (kh == 1)
            break;
    }
    return best >= 0;
}

/* ---- dead locals: the transforms compute complex values whose parts a
 * kept output may not need (an inverse keeps the real part only); their
 * declarations are dropped so that the C backend's code declares no
 * unused variable (LLVM would delete them anyway) ---- */

/* Drops the declarations in block b (not nested) whose local nothing after
 * them reads; a declaration's value has no side effects. */
static void drop_dead_locals(Lower *L, Stmt *b)
{
    bool *used = arena_alloc(L->a, sizeof(bool) * (size_t)(L->k->nvar + 1));
    memset(used, 0, sizeof(bool) * (size_t)(L->k->nvar + 1));
    int n = b->nbody, w = n;
    for (int i = n - 1; i >= 0; i--) {
        Stmt *s = b->body[i];
        if (s->k == S_DECL && !used[s->var])
            continue;
        stmt_vars_used(s, used);
        b->body[--w] = s;
    }
    memmove(b->body, b->body + w, sizeof(Stmt *) * (size_t)(n - w));
    b->nbody = n - w;
}

/* ---- straight-line DFTs over values that are loop-IR locals (L set) or
 * float32 numbers (L NULL: the same operations, evaluated) ---- */

typedef struct {
    bool zero; /* structurally 0: folded away */
    bool neg;  /* the value is -var (IR) */
    int var;   /* IR: the local holding it */
    float f;   /* float mode: the value */
} Fv;

typedef struct {
    Fv re, im;
} Cx;

typedef struct {
    Lower *L; /* NULL: evaluate in float32 */
    Stmt *p;  /* where the locals are declared */
} Fx;

static const Fv fv_zero = {true, false, -1, 0.0f};

static Fv fv_neg(Fv a)
{
    if (!a.zero) {
        a.neg = !a.neg;
        a.f = -a.f;
    }
    return a;
}

static Expr *fv_expr(Fx *x, Fv a)
{
    Expr *e = lvar(x->L, a.var);
    return a.neg ? ex_un(x->L->a, X_NEG, e) : e;
}

/* |c| a, c != 0, as an expression (IR) or a float */
static Expr *scaled(Fx *x, double c, Fv a, float *f)
{
    double m = fabs(c);
    float av = a.f; /* float mode: f is the value, neg is not used */
    if (!x->L) {
        *f = m == 1 ? av : (float)m * av;
        return NULL;
    }
    Expr *e = lvar(x->L, a.var);
    return m == 1 ? e : fmul(x->L, lf(x->L, (float)m), e);
}

/* A name no local of the kernel has yet (the transforms declare
 * thousands: numbered names keep the search for a free one short). */
static const char *local_name(Lower *L, const char *base)
{
    return arena_printf(L->a, "%s%d", base, L->k->nvar);
}

static Fv fv_bind(Fx *x, Expr *e, float f, bool neg)
{
    Fv r = {false, neg, -1, f};
    if (x->L) {
        r.var = ldecl(x->L, x->p, local_name(x->L, "t"), T_F32, e);
        r.f = 0;
    } else if (neg) {
        r.f = -f;
        r.neg = false;
    }
    return r;
}

/* c1 a + c2 b, without zero terms and multiplications by 1 */
static Fv fv_lin(Fx *x, double c1, Fv a, double c2, Fv b)
{
    if (a.zero || c1 == 0) {
        a = b;
        c1 = c2;
        b = fv_zero;
        c2 = 0;
    }
    if (a.zero || c1 == 0)
        return fv_zero;
    /* the signs of the variables' terms (IR: neg flags; float mode: none) */
    double s1 = (a.neg ? -c1 : c1), s2 = (b.neg ? -c2 : c2);
    if (!x->L) {
        s1 = c1;
        s2 = c2;
        a.neg = b.neg = false;
    }
    if (b.zero || c2 == 0) {
        if (fabs(s1) == 1) {
            Fv r = a;
            if (x->L) {
                r.neg = s1 < 0;
            } else {
                r.f = s1 < 0 ? -a.f : a.f;
            }
            return r;
        }
        float f = 0;
        Expr *e = scaled(x, s1, a, &f);
        return fv_bind(x, e, f, s1 < 0);
    }
    float f1 = 0, f2 = 0;
    Expr *e1 = scaled(x, s1, a, &f1), *e2 = scaled(x, s2, b, &f2);
    if (s1 > 0 && s2 > 0)
        return fv_bind(x, x->L ? fadd(x->L, e1, e2) : NULL, f1 + f2, false);
    if (s1 > 0)
        return fv_bind(x, x->L ? fsub(x->L, e1, e2) : NULL, f1 - f2, false);
    if (s2 > 0)
        return fv_bind(x, x->L ? fsub(x->L, e2, e1) : NULL, f2 - f1, false);
    return fv_bind(x, x->L ? fadd(x->L, e1, e2) : NULL, f1 + f2, true);
}

static Cx cx_conj(Cx a)
{
    a.im = fv_neg(a.im);
    return a;
}

/* a exp(sign 2 pi i k / n), 0 <= k < n/2 */
static Cx cx_twiddle(Fx *x, Cx a, int k, int n, int sign)
{
    if (k == 0)
        return a;
    if (4 * k == n) /* sign i */
        return sign > 0 ? (Cx){fv_neg(a.im), a.re} : (Cx){a.im, fv_neg(a.re)};
    double th = sign * 2 * FFT_PI * k / n, c = cos(th), s = sin(th);
    return (Cx){fv_lin(x, c, a.re, -s, a.im), fv_lin(x, s, a.re, c, a.im)};
}

enum { DFT_LEVELS = 6, DFT_MEMO = FFT_NMAX * DFT_LEVELS };

/* One DFT of n points (a power of two): out(k) = sum_j leaf(j) w^(jk), w =
 * exp(sign 2 pi i / n), evaluated lazily by decimation in time.  The
 * subsequence at level l and offset o holds leaves o, o + 2^l, ... */
typedef struct {
    Fx *x;
    int n, sign;
    bool real; /* every leaf real: bins k and len - k are conjugates */
    const Cx *leaf;
    int stride;
    bool done[DFT_MEMO], tdone[DFT_MEMO];
    Cx memo[DFT_MEMO], tw[DFT_MEMO];
} Dft;

static void dft_init(Dft *d, Fx *x, int n, int sign, const Cx *leaf, int stride)
{
    NETC_ASSERT(n >= 1 && n <= FFT_NMAX && (n & (n - 1)) == 0);
    d->x = x;
    d->n = n;
    d->sign = sign;
    d->leaf = leaf;
    d->stride = stride;
    d->real = true;
    for (int j = 0; j < n; j++)
        d->real = d->real && leaf[j * stride].im.zero;
    for (int i = 0; i < DFT_MEMO; i++)
        d->done[i] = d->tdone[i] = false;
}

static Cx dft_bin(Dft *d, int lev, int o, int k)
{
    int len = d->n >> lev;
    if (len == 1)
        return d->leaf[o * d->stride];
    if (d->real && 2 * k > len)
        return cx_conj(dft_bin(d, lev, o, len - k));
    int idx = lev * d->n + o * len + k, h = len / 2, kk = k % h;
    if (d->done[idx])
        return d->memo[idx];
    Cx e = dft_bin(d, lev + 1, o, kk);
    int ti = lev * d->n + o * len + kk;
    if (!d->tdone[ti]) {
        d->tw[ti] = cx_twiddle(d->x, dft_bin(d, lev + 1, o + (1 << lev), kk), kk, len, d->sign);
        d->tdone[ti] = true;
    }
    Cx t = d->tw[ti];
    double s = k < h ? 1 : -1;
    Cx r = {fv_lin(d->x, 1, e.re, s, t.re), fv_lin(d->x, 1, e.im, s, t.im)};
    if (d->real && (k == 0 || 2 * k == len))
        r.im = fv_zero; /* a real sequence's bins 0 and len/2 are real */
    d->done[idx] = true;
    d->memo[idx] = r;
    return r;
}

/* The real part of output k alone (the last butterfly's imaginary part
 * is not computed). */
static Fv dft_re(Dft *d, int k)
{
    if (d->n == 1)
        return d->leaf[0].re;
    if (d->real)
        return dft_bin(d, 0, 0, k).re;
    int h = d->n / 2, kk = k % h;
    Cx e = dft_bin(d, 1, 0, kk), o = dft_bin(d, 1, 1, kk);
    double s = k < h ? 1 : -1;
    if (kk == 0)
        return fv_lin(d->x, 1, e.re, s, o.re);
    if (4 * kk == d->n) /* o times sign i: real part -sign o.im */
        return fv_lin(d->x, 1, e.re, -s * d->sign, o.im);
    double th = d->sign * 2 * FFT_PI * kk / d->n, c = cos(th), sn = sin(th);
    Fv tr = fv_lin(d->x, c, o.re, -sn, o.im);
    return fv_lin(d->x, 1, e.re, s, tr);
}

/* out [nh, nw/2+1] = the 2D DFT of the real tile d [nh, nw] */
static void fft2_fwd(Fx *x, int nh, int nw, const Fv *d, Cx *out)
{
    int hw = nw / 2 + 1;
    static Dft D; /* large: not on the stack */
    Cx row[FFT_NMAX], rows[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    for (int r = 0; r < nh; r++) {
        for (int j = 0; j < nw; j++)
            row[j] = (Cx){d[r * nw + j], fv_zero};
        dft_init(&D, x, nw, -1, row, 1);
        for (int k = 0; k < hw; k++)
            rows[r * hw + k] = dft_bin(&D, 0, 0, k);
    }
    for (int k = 0; k < hw; k++) {
        dft_init(&D, x, nh, -1, rows + k, hw);
        for (int k1 = 0; k1 < nh; k1++)
            out[k1 * hw + k] = dft_bin(&D, 0, 0, k1);
    }
}

/* y [mh, mw] = the first mh x mw values of the real inverse DFT of the
 * half spectrum m [nh, nw/2+1] (not scaled) */
static void fft2_inv(Fx *x, int nh, int nw, const Cx *m, int mh, int mw, Fv *y)
{
    int hw = nw / 2 + 1;
    static Dft D;
    Cx z[FFT_NMAX * (FFT_NMAX / 2 + 1)], row[FFT_NMAX];
    for (int k = 0; k < hw; k++) {
        dft_init(&D, x, nh, 1, m + k, hw);
        for (int r = 0; r < mh; r++)
            z[r * hw + k] = dft_bin(&D, 0, 0, r);
    }
    for (int r = 0; r < mh; r++) {
        for (int j = 0; j < nw; j++)
            row[j] = j < hw ? z[r * hw + j] : cx_conj(z[r * hw + nw - j]);
        /* the half spectrum's bins 0 and nw/2 of a real row are real */
        row[0].im = fv_zero;
        if (nw > 1)
            row[nw / 2].im = fv_zero;
        dft_init(&D, x, nw, 1, row, 1);
        for (int c = 0; c < mw; c++)
            y[r * mw + c] = dft_re(&D, c);
    }
}

void fft_tile_fwd(int nh, int nw, const float *d, float scale, float *re, float *im)
{
    Fx x = {NULL, NULL};
    Fv in[FFT_NMAX * FFT_NMAX];
    Cx out[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    for (int i = 0; i < nh * nw; i++)
        in[i] = (Fv){d[i] == 0, false, -1, d[i] * scale};
    fft2_fwd(&x, nh, nw, in, out);
    for (int i = 0; i < nh * (nw / 2 + 1); i++) {
        re[i] = out[i].re.zero ? 0 : out[i].re.f;
        im[i] = out[i].im.zero ? 0 : out[i].im.f;
    }
}

void fft_tile_inv(int nh, int nw, const float *re, const float *im, int mh, int mw, float *y)
{
    Fx x = {NULL, NULL};
    Cx in[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    Fv out[FFT_NMAX * FFT_NMAX];
    for (int i = 0; i < nh * (nw / 2 + 1); i++)
        in[i] = (Cx){{false, false, -1, re[i]}, {false, false, -1, im[i]}};
    fft2_inv(&x, nh, nw, in, mh, mw, out);
    for (int i = 0; i < mh * mw; i++)
        y[i] = out[i].zero ? 0 : out[i].f;
}

/* ---- the lowering ---- */

/* One node's correlation: its tiles and columns (lower_tiles.h) and the
 * transform's bins. */
typedef struct {
    Tiles t;                /* input tile NH x NW, output tile MH x MW   */
    bool dx;                /* conv_dx: flipped filter, swapped channels */
    int KH, KW;             /* kernel                                    */
    int hw;                 /* NW/2 + 1                                  */
    int nbin;               /* NH * hw                                   */
    int cols;               /* the GEMMs' columns: 2 hc                  */
} Fft;

static void fft_geom(Fft *f, Lower *L, bool dx, const Geom *G)
{
    NETC_ASSERT(G->in[0] == 1 && G->out[0] == 1 && G->k[0] == 1);
    f->dx = dx;
    f->t.groups = G->groups;
    int cg = G->n_in / G->groups, og = G->n_out / G->groups;
    f->t.ci = dx ? og : cg;
    f->t.co = dx ? cg : og;
    f->t.H = dx ? G->out[1] : G->in[1];
    f->t.W = dx ? G->out[2] : G->in[2];
    f->t.OH = dx ? G->in[1] : G->out[1];
    f->t.OW = dx ? G->in[2] : G->out[2];
    f->KH = G->k[1];
    f->KW = G->k[2];
    f->t.pt = dx ? f->KH - 1 - G->plo[1] : G->plo[1];
    f->t.pl = dx ? f->KW - 1 - G->plo[2] : G->plo[2];
    NETC_ASSERT(f->t.pt >= 0 && f->t.pl >= 0);
    bool ok = fft_size(f->KH, f->KW, f->t.OH, f->t.OW, f->t.ci, f->t.co, &f->t.NH, &f->t.NW);
    NETC_ASSERT(ok);
    f->t.MH = f->t.NH - f->KH + 1;
    f->t.MW = f->t.NW - f->KW + 1;
    f->hw = f->t.NW / 2 + 1;
    f->nbin = f->t.NH * f->hw;
    tiles_geom(&f->t, fft_block, L->t->vlen);
    f->cols = 2 * f->t.hc;
}

static void store_fv(Lower *L, Stmt *p, int buf, Expr *idx, Fv v, bool neg)
{
    Fx x = {L, p};
    if (v.zero) {
        lstore(L, p, buf, idx, lf(L, 0.0f), false);
        return;
    }
    if (neg)
        v = fv_neg(v);
    lstore(L, p, buf, idx, fv_expr(&x, v), false);
}

/* U_e [groups][Co][2Ci] = [Wr Wi] of the filter's DFT over 1/(NH NW),
 * for every filter w [O, Cg, KH, KW] (flipped, channels swapped, for
 * conv_dx).  Each (o, c) writes its own entries: independent. */
static void filter_transform(Lower *L, Stmt *p, const Fft *f, int wbuf, int u)
{
    int og = f->dx ? f->t.ci : f->t.co, cg = f->dx ? f->t.co : f->t.ci, O = f->t.groups * og;
    int kk = f->KH * f->KW, per = f->t.groups * f->t.co * 2 * f->t.ci;
    float scale = 1.0f / (float)(f->t.NH * f->t.NW);
    Stmt *q = p;
    Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, O));
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, cg));
    Expr *wb = lbind(L, q, "wb", lmul(L, lmad(L, o, cg, c), li(L, kk)));
    /* the entry of bin 0's Wr: forward row o, column c; conv_dx row c of
     * group o / og, column o % og */
    Expr *ub;
    if (f->dx) {
        Expr *g = ldiv(L, o, li(L, og));
        Expr *oo = lsub(L, o, lmul(L, g, li(L, og)));
        ub = lbind(L, q, "ub", ladd(L, lmul(L, lmad(L, g, f->t.co, c), li(L, 2 * f->t.ci)), oo));
    } else {
        ub = lbind(L, q, "ub", lmad(L, o, 2 * f->t.ci, c));
    }
    Fv d[FFT_NMAX * FFT_NMAX];
    for (int i = 0; i < f->t.NH * f->t.NW; i++)
        d[i] = fv_zero;
    for (int a = 0; a < f->KH; a++)
        for (int b = 0; b < f->KW; b++) {
            int tap = f->dx ? kk - 1 - (a * f->KW + b) : a * f->KW + b;
            Expr *g = lload(L, wbuf, ladd(L, wb, li(L, tap)));
            d[a * f->t.NW + b] = (Fv){false, false, ldecl(L, q, local_name(L, "g"), T_F32, fmul(L, g, lf(L, scale))), 0};
        }
    Cx out[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    Fx x = {L, q};
    fft2_fwd(&x, f->t.NH, f->t.NW, d, out);
    for (int e = 0; e < f->nbin; e++) {
        store_fv(L, q, u, ladd(L, ub, li(L, e * per)), out[e].re, false);
        store_fv(L, q, u, ladd(L, ub, li(L, e * per + f->t.ci)), out[e].im, false);
    }
    drop_dead_locals(L, q);
}

/* V_e [2Ci, 2hc] = [Xr Xi; Xi -Xr] of channel c (rows c and Ci + c) for
 * the DFT X of every column of its gathered tiles G at gc, Ci = ci
 * channels: one loop over the columns, unit stride in every load and
 * store.  Without `both`, only the upper rows [Xr Xi] (V_e [Ci, 2hc]). */
static void input_transform(Lower *L, Stmt *p, const Fft *f, int ci, bool both, int v, int gb, Expr *gc,
                            Expr *c)
{
    int H = f->t.hc;
    /* the bins' and the lower half's strides as locals: a kernel family
     * (loop_family.c) of a layer and its input gradient then passes two
     * arguments, not one per store */
    Expr *bs = lvar(L, ldecl(L, p, "vs", T_I32, li(L, (both ? 2 : 1) * ci * f->cols)));
    Expr *lo = both ? lvar(L, ldecl(L, p, "vlo", T_I32, li(L, ci * f->cols))) : NULL;
    Stmt *q = p;
    Expr *j = lfor_indep(L, &q, "j", li(L, 0), li(L, H));
    Expr *gj = lbind(L, q, "gj", ladd(L, gc, j));
    Fv d[FFT_NMAX * FFT_NMAX];
    for (int i = 0; i < f->t.NH * f->t.NW; i++)
        d[i] = (Fv){false, false, ldecl(L, q, local_name(L, "d"), T_F32, lload(L, gb, ladd(L, gj, li(L, i * H)))), 0};
    Cx out[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    Fx x = {L, q};
    fft2_fwd(&x, f->t.NH, f->t.NW, d, out);
    Expr *vi = lbind(L, q, "vi", lmad(L, c, f->cols, j));
    Expr *vl = both ? lbind(L, q, "vl", ladd(L, vi, lo)) : NULL; /* the lower half's rows */
    for (int e = 0; e < f->nbin; e++) {
        Expr *eb = lmul(L, li(L, e), bs);
        store_fv(L, q, v, ladd(L, ladd(L, vi, eb), li(L, 0)), out[e].re, false);
        store_fv(L, q, v, ladd(L, ladd(L, vi, eb), li(L, H)), out[e].im, false);
        if (both) {
            store_fv(L, q, v, ladd(L, ladd(L, vl, eb), li(L, 0)), out[e].im, false);
            store_fv(L, q, v, ladd(L, ladd(L, vl, eb), li(L, H)), out[e].re, true);
        }
    }
    drop_dead_locals(L, q);
}

/* The block's input tiles, transformed: its samples' planes copied into
 * the zeroed padded planes xp (when xp >= 0), each channel's tiles
 * gathered into G and transformed into V (input_transform, both halves).
 * Sample s's planes of the group at xb + s*xstep of buffer in. */
static void transform_inputs(Lower *L, Stmt *b, const Fft *f, int in, Expr *xb, int xstep, Expr *ns, int xp,
                             int gb, int v)
{
    long P = (long)f->t.NH * f->t.NW;
    if (xp >= 0)
        tiles_copy(L, b, &f->t, xp, in, xb, xstep, ns);
    Stmt *q = b;
    Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, f->t.ci));
    Expr *gc = lbind(L, q, "gc", lmul(L, c, li(L, (int)(P * f->t.hc))));
    tiles_gather_input(L, q, &f->t, gb, gc, in, xb, xstep, xp, c, ns);
    input_transform(L, q, f, f->t.ci, true, v, gb, gc, c);
}

/* M_e [Co, 2hc] = U_e V_e for each bin e, with U_e read as group g's
 * [Co, 2Ci] block. */
static void bin_gemms(Lower *L, Stmt *p, const Fft *f, int mb, int u, int v, Expr *g)
{
    int T2 = f->cols, K = 2 * f->t.ci, per = f->t.groups * f->t.co * K;
    Stmt *q = p;
    Expr *e = lfor_indep(L, &q, "e", li(L, 0), li(L, f->nbin));
    Expr *ub = ladd(L, lmul(L, e, li(L, per)), lmul(L, g, li(L, f->t.co * K)));
    lgemm(L, q, (MatRef){mb, lmul(L, e, li(L, f->t.co * T2)), T2, 1, 0, 0}, (MatRef){u, ub, K, 1, 0, 0},
          (MatRef){v, lmul(L, e, li(L, K * T2)), T2, 1, 0, 0}, li(L, f->t.co), T2, li(L, K), false);
}

/* Y [MH MW, hc] at yo = the inverse DFTs of channel oc's columns of M
 * (row oc at mc): the full MH x MW values of every column's tile, one loop
 * over the columns. */
static void inverse_transform(Lower *L, Stmt *p, const Fft *f, int yt, Expr *yo, int mb, Expr *mc)
{
    int H = f->t.hc;
    Expr *bs = lvar(L, ldecl(L, p, "ms", T_I32, li(L, f->t.co * f->cols))); /* as input_transform's */
    Stmt *q = p;
    Expr *j = lfor_indep(L, &q, "j", li(L, 0), li(L, H));
    Expr *mj = lbind(L, q, "mj", ladd(L, mc, j));
    Cx m[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    for (int e = 0; e < f->nbin; e++) {
        Expr *eo = ladd(L, mj, lmul(L, li(L, e), bs));
        m[e].re = (Fv){false, false, ldecl(L, q, local_name(L, "d"), T_F32, lload(L, mb, ladd(L, eo, li(L, 0)))), 0};
        m[e].im = (Fv){false, false, ldecl(L, q, local_name(L, "d"), T_F32, lload(L, mb, ladd(L, eo, li(L, H)))), 0};
    }
    Fv out[FFT_NMAX * FFT_NMAX];
    Fx x = {L, q};
    fft2_inv(&x, f->t.NH, f->t.NW, m, f->t.MH, f->t.MW, out);
    Expr *yj = lbind(L, q, "yj", ladd(L, yo, j));
    for (int i = 0; i < f->t.MH * f->t.MW; i++) {
        Fv o = out[i];
        lstore(L, q, yt, ladd(L, yj, li(L, i * H)), o.zero ? lf(L, 0.0f) : fv_expr(&x, o), false);
    }
    drop_dead_locals(L, q);
}

/* The scratch of one correlation: the spectra U, V, M, the output tiles
 * Y, the gathered tiles G and the padded planes xp (-1: none), sized for
 * its widest blocks. */
typedef struct {
    int u, v, mb, yt, gb, xp;
} FftBufs;

/* The samples [lo, hi) in blocks of f's S: their tiles transformed,
 * multiplied per bin, inverted and scattered into out. */
static void fft_samples(Lower *L, const Fft *f, const FftBufs *s, int out, int in, int bbuf, Expr *lo, Expr *hi)
{
    long H = f->t.hc, Q = (long)f->t.MH * f->t.MW;
    Stmt *p = L->k->body;
    Expr *g, *ns, *xb, *yb;
    tiles_blocks(L, &p, &f->t, lo, hi, &g, &ns, &xb, &yb);
    transform_inputs(L, p, f, in, xb, tiles_xstep(&f->t), ns, s->xp, s->gb, s->v);
    bin_gemms(L, p, f, s->mb, s->u, s->v, g);
    Stmt *q = p;
    Expr *oc = lfor_indep(L, &q, "oc", li(L, 0), li(L, f->t.co));
    Expr *yo = lbind(L, q, "yo", lmul(L, oc, li(L, (int)(Q * H))));
    inverse_transform(L, q, f, s->yt, yo, s->mb, lmul(L, oc, li(L, f->cols)));
    Expr *bias = bbuf < 0 ? NULL : lvar(L, ldecl(L, q, "bias", T_F32, lload(L, bbuf, lmad(L, g, f->t.co, oc))));
    tiles_scatter(L, q, &f->t, out, lbind(L, q, "yc", lmad(L, oc, f->t.OH * f->t.OW, yb)), tiles_ystep(&f->t),
                  s->yt, yo, bias, ns);
}

/* The whole correlation, buffers out (y or dx), in (x or dy), w and the
 * bias (-1: none): blocks of S samples, then the batch's last samples one
 * at a time where that computes fewer columns (fft_tail), in the blocks'
 * scratch (each column pair's GEMM result depends on that pair alone, so
 * what the blocks left in the single sample's padding columns is never
 * read back). */
static void lower_fft(Lower *L, const Fft *f, int out, int in, int wbuf, int bbuf)
{
    long nb = f->nbin, H = f->t.hc, Q = (long)f->t.MH * f->t.MW;
    FftBufs s;
    s.u = kernel_scratch(L->a, L->k, "fu", nb * f->t.groups * f->t.co * 2 * f->t.ci, 0);
    s.v = kernel_scratch(L->a, L->k, "fv", nb * 2 * f->t.ci * f->cols, 0);
    s.mb = kernel_scratch(L->a, L->k, "fm", nb * f->t.co * f->cols, 0);
    s.yt = kernel_scratch(L->a, L->k, "fy", f->t.co * Q * H, 0);
    filter_transform(L, L->k->body, f, wbuf, s.u);
    tiles_scratch(L, &f->t, "f", &s.gb, &s.xp);
    int most = fft_tail(f->t.ntile, L->t->vlen);
    Fft one = *f;
    tiles_single(&f->t, L->t->vlen, &one.t);
    one.cols = 2 * one.t.hc;
    Expr *tail = most ? tiles_tail_start(L, &f->t, most) : lbatch(L);
    fft_samples(L, f, &s, out, in, bbuf, li(L, 0), tail);
    if (most)
        fft_samples(L, &one, &s, out, in, bbuf, tail, lbatch(L));
}

/* y [N, O, OH, OW] = b + conv(x [N, C, H, W], w [O, C/g, KH, KW]) */
void lower_conv_fft(Lower *L)
{
    enum { Y, X, W, B };
    Geom G;
    geom_conv(&G, &L->n->p.conv, &lin(L, 0)->shape, &L->n->shape);
    check_weight(&G, lin(L, 1));
    Fft f;
    fft_geom(&f, L, false, &G);
    lower_fft(L, &f, Y, X, W, node_own_nin(L->n) == 3 ? B : -1);
    L->epi_done = true;
}

/* dx [N, C, H, W] = conv_transpose(dy [N, O, OH, OW], w [O, C/g, KH, KW]) */
void lower_conv_dx_fft(Lower *L)
{
    enum { DX, DY, W };
    Geom G;
    geom_conv(&G, &L->n->p.conv, &L->n->shape, &lin(L, 0)->shape);
    check_weight(&G, lin(L, 1));
    Fft f;
    fft_geom(&f, L, true, &G);
    lower_fft(L, &f, DX, DY, W, -1);
    L->epi_done = true;
}

/* dw [O, C/g, KH, KW] = sum over the batch of the correlation of x with
 * dy, on the forward layer's tiles: per block and group, the input's tiles
 * transformed as the forward pass does (V_e [2Cg, 2hc] = [Xr Xi; Xi -Xr])
 * and the dy tiles, zero-padded to NH x NW, by the same transform, upper
 * rows only (D_e [Og, 2hc] = [Dr Di]); per bin D_e copied transposed and
 * dW_e^T [2Cg, Og] += V_e D_e^T on the micro-kernel (lgemm): the sum over
 * the tiles of conj(D) X, real parts in rows c, imaginary in Cg + c.
 * After the batch each (o, c)'s spectrum is inverted, its first KH x KW
 * values over NH NW.  Every sum in a fixed order: the blocks in turn, each
 * bin's columns as lgemm sums them. */
void lower_conv_dw_fft(Lower *L)
{
    enum { DW, X, DY };
    Geom G;
    geom_conv(&G, &L->n->p.conv, &lin(L, 0)->shape, &lin(L, 1)->shape);
    Fft f;
    fft_geom(&f, L, false, &G);
    long nb = f.nbin, H = f.t.hc, P = (long)f.t.NH * f.t.NW;
    int per = f.t.groups * f.t.co * 2 * f.t.ci, O = f.t.groups * f.t.co, kk = f.KH * f.KW;
    int v = kernel_scratch(L->a, L->k, "fv", nb * 2 * f.t.ci * f.cols, 0);
    int d = kernel_scratch(L->a, L->k, "fd", nb * f.t.co * f.cols, 0);
    int dt = kernel_scratch(L->a, L->k, "fdt", nb * f.cols * f.t.co, 0);
    int acc = kernel_scratch(L->a, L->k, "fw", nb * per, 0);
    int gd = kernel_scratch(L->a, L->k, "fgd", f.t.co * P * H, 0);
    int gb, xp;

    Stmt *p = L->k->body;
    lzero(L, p, acc, li(L, 0), li(L, (int)(nb * per)));
    lzero(L, p, gd, li(L, 0), li(L, (int)(f.t.co * P * H)));
    tiles_scratch(L, &f.t, "f", &gb, &xp);
    {
        Stmt *b = p;
        Expr *g, *ns, *xb, *yb;
        tiles_blocks(L, &b, &f.t, li(L, 0), lbatch(L), &g, &ns, &xb, &yb);
        int xstep = tiles_xstep(&f.t), ystep = tiles_ystep(&f.t);
        transform_inputs(L, b, &f, X, xb, xstep, ns, xp, gb, v);
        tiles_zero_missing(L, b, &f.t, gd, (int)P, (int)(P * H), (int)H, 1, ns);
        {
            Stmt *q = b;
            Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, f.t.co));
            Expr *gc = lbind(L, q, "gc", lmul(L, o, li(L, (int)(P * H))));
            tiles_gather_dy(L, q, &f.t, gd, gc, f.t.NW, f.t.hc, 1, DY, yb, ystep, o, ns);
            input_transform(L, q, &f, f.t.co, false, d, gd, gc, o);
        }
        {
            /* per bin (independent: each has its own copy and sums) */
            Stmt *q = b;
            int T2 = f.cols;
            Expr *e = lfor_indep(L, &q, "e", li(L, 0), li(L, f.nbin));
            Expr *db = lbind(L, q, "db", lmul(L, e, li(L, f.t.co * T2)));
            Expr *tb = lbind(L, q, "tb", lmul(L, e, li(L, T2 * f.t.co)));
            {
                Stmt *r = q;
                Expr *o = lfor_indep(L, &r, "o", li(L, 0), li(L, f.t.co));
                Expr *j = lfor(L, &r, "j", li(L, 0), li(L, T2));
                lstore(L, r, dt, ladd(L, tb, lmad(L, j, f.t.co, o)), lload(L, d, ladd(L, db, lmad(L, o, T2, j))), false);
            }
            Expr *cb = ladd(L, lmul(L, e, li(L, per)), lmul(L, g, li(L, f.t.co * 2 * f.t.ci)));
            lgemm(L, q, (MatRef){acc, cb, f.t.co, 1, 0, 0}, (MatRef){v, lmul(L, e, li(L, 2 * f.t.ci * T2)), T2, 1, 0, 0},
                  (MatRef){dt, tb, f.t.co, 1, 0, 0}, li(L, 2 * f.t.ci), f.t.co, li(L, T2), true);
        }
    }
    /* each filter's spectrum to its taps */
    float scale = 1.0f / (float)(f.t.NH * f.t.NW);
    Stmt *q = p;
    Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, O));
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, f.t.ci));
    /* group g's dW_e^T [2Cg, Og] at e*per + g*2Cg*Og: row c, column o % Og */
    Expr *gg = ldiv(L, o, li(L, f.t.co));
    Expr *ab = lbind(L, q, "ab", ladd(L, lmul(L, lmad(L, gg, 2 * f.t.ci, c), li(L, f.t.co)), lsub(L, o, lmul(L, gg, li(L, f.t.co)))));
    Cx m[FFT_NMAX * (FFT_NMAX / 2 + 1)];
    for (int e = 0; e < f.nbin; e++) {
        m[e].re = (Fv){false, false, ldecl(L, q, local_name(L, "d"), T_F32, lload(L, acc, ladd(L, ab, li(L, e * per)))), 0};
        m[e].im = (Fv){false, false,
                       ldecl(L, q, local_name(L, "d"), T_F32, lload(L, acc, ladd(L, ab, li(L, e * per + f.t.ci * f.t.co)))), 0};
    }
    Fv out[FFT_NMAX * FFT_NMAX];
    Fx x = {L, q};
    fft2_inv(&x, f.t.NH, f.t.NW, m, f.KH, f.KW, out);
    Expr *wb = lbind(L, q, "wb", lmul(L, lmad(L, o, f.t.ci, c), li(L, kk)));
    for (int i = 0; i < kk; i++) {
        Fv r = out[i];
        lstore(L, q, DW, ladd(L, wb, li(L, i)), r.zero ? lf(L, 0.0f) : fmul(L, fv_expr(&x, r), lf(L, scale)), false);
    }
    drop_dead_locals(L, q);
}
