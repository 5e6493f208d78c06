/* lower_pool.c - max, average, global and adaptive average pooling and
 * their gradients.
 *
 * Global pools are the pools below with one window over the whole input
 * (shape.c fills their PoolParam).  On a dilated axis of a max pool the
 * window range is in tap indices t (input coordinate start + t*d) instead
 * of input coordinates; ceil_mode needs nothing here, since the clipped
 * ranges already handle a last window that overhangs the padding.
 * Adaptive average pooling (at the end) averages bins whose edges depend
 * on the output index only.
 *
 * Pools are lowered as 3D (see Geom in lower_impl.h) over planes nc =
 * n*C + c.  For each output pixel the window's in-bounds part
 * [max(start, 0), min(start + k, I)) per axis, start = o*s - pad_lo, is
 * computed once, so the window loops have no bounds checks and padding is
 * simply never read: it acts as -inf for max and as 0 for the average.
 * Each row's outputs are split into the columns whose windows overhang
 * the left or right edge and those whose windows lie inside the input
 * (out_loops): inside, the window loop along the width runs over the
 * constant tap range 0..k, so it unrolls and, at stride 1, the loop over
 * the columns vectorises (the average pool's divisor there is k along the
 * width, with or without the padding counted).  A 2D max pool at stride 1
 * has a flat form instead (maxpool_flat: the plane copied with -inf around
 * it, the outputs one row at its pitch), which vectorises planes of any
 * width: the 3x3 pool with padding on 192x28x28 at batch 32 takes 4.2 ms,
 * 10.0 split as above, 28.4 with bounds per output; the same bits.
 *
 * The semantics follow PyTorch's CPU kernels exactly:
 *   - max: the first maximum in window order (kd, kh, kw) wins, a NaN
 *     replaces the running maximum (`v > m || isnan(v)`); the gradient goes
 *     to that element, accumulated since windows may overlap;
 *   - average: divisor prod(min(start+k, I+pad_hi) - start) with
 *     count_include_pad, else the number of in-bounds taps; a window with
 *     no in-bounds tap yields 0.
 *
 * Max pooling whose windows tile the input (stride == kernel, no padding,
 * every window inside it, at most MAX_TILE_TAPS taps: LeNet's 2x2 stride
 * 2) has its own loops: constant trip counts, no window bounds, the taps
 * unrolled and the innermost loop over output columns, so compilers can
 * vectorise across outputs.  The taps are compared in the same order and
 * by the same test (written as a sum, which C compilers keep branch-free),
 * so ties and NaNs give the same results.  Since every input element lies
 * in at most one window, the gradient needs no zeroing pass and no
 * accumulation: each window stores 0 to its taps, then 0.0 + dy at its
 * argmax (the +0.0 of the accumulating form kept for dy = -0.0); only
 * elements in no window are zeroed first.
 *
 *   maxpool [N, 6, 28, 28] -> [N, 6, 14, 14]:
 *     for ow in 0..14
 *       int x0 = xr + ow*2
 *       float m = x[x0]
 *       float v = x[x0 + 1]
 *       int take = (m < v) + (v != v)
 *       m = select(take, v, m)
 *       (the same for x[x0 + 28] and x[x0 + 29])
 *       y[yr + ow] = m
 */
#include "lower_impl.h"

#include <math.h>

typedef struct {
    Stmt *body;       /* innermost output loop body                 */
    Expr *yi;         /* flat output index                          */
    Expr *start[3];   /* o*s - pad_lo per axis                      */
    Expr *lo[3];      /* in-bounds window range per axis: input     */
    Expr *hi[3];      /* coordinates, or tap indices (taps[a])      */
    bool taps[3];     /* lo, hi count taps: coordinate start + t*d  */
    bool inside[3];   /* every tap inside the input: lo, hi = 0, k   */
} OutPixel;

/* The input coordinate of window position v along axis a (see OutPixel). */
static Expr *window_coord(Lower *L, const Geom *G, const OutPixel *px, int a, Expr *v)
{
    return px->taps[a] ? ladd(L, px->start[a], lmul(L, v, li(L, G->d[a]))) : v;
}

/* The window bounds of px along axis a, locals of px->body; an interior
 * output (its whole window inside the input) has the constant tap range
 * 0..k, the loop over it no bounds that depend on the output. */
static void window_bounds(Lower *L, const Geom *G, OutPixel *px, int a, bool interior)
{
    static const char *const loname[3] = {"d0", "h0", "w0"};
    static const char *const hiname[3] = {"d1", "h1", "w1"};
    Stmt *p = px->body;
    px->taps[a] = interior || G->d[a] > 1;
    px->inside[a] = interior;
    if (interior) {
        px->lo[a] = li(L, 0);
        px->hi[a] = li(L, G->k[a]);
    } else if (G->d[a] > 1) {
        /* taps t with 0 <= start + t*d < in: from ceil(-start/d) to ceil((in - start)/d) */
        Expr *d1 = li(L, G->d[a] - 1), *d = li(L, G->d[a]);
        Expr *below = lmax(L, lsub(L, li(L, 0), px->start[a]), li(L, 0));
        Expr *room = lmax(L, lsub(L, li(L, G->in[a]), px->start[a]), li(L, 0));
        px->lo[a] = lbind(L, p, loname[a], ldiv(L, ladd(L, below, d1), d));
        px->hi[a] = lbind(L, p, hiname[a], lmin(L, ldiv(L, ladd(L, room, d1), d), li(L, G->k[a])));
    } else {
        px->lo[a] = lbind(L, p, loname[a], lmax(L, px->start[a], li(L, 0)));
        px->hi[a] = lbind(L, p, hiname[a], lmin(L, ladd(L, px->start[a], li(L, G->k[a])), li(L, G->in[a])));
    }
}

/* The output columns [*lo, *hi) whose windows lie inside the input along
 * the width: start = ow*s - pad_lo >= 0 and start + (k-1)*d < in. */
static void interior_cols(const Geom *G, int *lo, int *hi)
{
    int s = G->s[2], p = G->plo[2], last = G->in[2] - 1 - (G->k[2] - 1) * G->d[2] + p;
    *lo = (p + s - 1) / s;
    *hi = last < 0 ? 0 : last / s + 1;
    if (*lo > G->out[2])
        *lo = G->out[2];
    if (*hi > G->out[2])
        *hi = G->out[2];
    if (*hi < *lo)
        *hi = *lo;
}

enum { MAX_SEGS = 3 };

/* Loops over the output pixels of the plane at yb, and the window bounds:
 * the output columns split into up to three loops, the columns whose
 * windows overhang the left edge, those inside the input, those that
 * overhang the right edge, each with its own body (px[i], returns how
 * many).  Inside, the loop over window columns has a constant trip count
 * and no bounds per output, so it unrolls, and with stride 1 the loop
 * over output columns vectorises; every output still compares its taps in
 * window order, so the results are the same bits. */
static int out_loops(Lower *L, Stmt *p, const Geom *G, Expr *yb, OutPixel px[MAX_SEGS])
{
    static const char *const oname[3] = {"od", "oh", "ow"};
    static const char *const sname[3] = {"sd", "sh", "sw"};
    Expr *o[3];
    Expr *yrow = li(L, 0);
    for (int a = 0; a < 2; a++) {
        o[a] = lfor(L, &p, oname[a], li(L, 0), li(L, G->out[a]));
        yrow = lmad(L, yrow, G->out[a], o[a]);
    }
    /* the depth and height bounds, once per row for every segment */
    OutPixel row = {.body = p};
    for (int a = 0; a < 2; a++) {
        row.start[a] = lbind(L, p, sname[a], lsub(L, lmul(L, o[a], li(L, G->s[a])), li(L, G->plo[a])));
        window_bounds(L, G, &row, a, false);
    }
    int ilo, ihi;
    interior_cols(G, &ilo, &ihi);
    int cut[MAX_SEGS + 1] = {0, ilo, ihi, G->out[2]};
    int n = 0;
    for (int i = 0; i < MAX_SEGS; i++) {
        if (cut[i + 1] <= cut[i])
            continue;
        OutPixel *r = &px[n++];
        /* a block each, so a one-column segment's statements (no loop)
         * stay in column order */
        Stmt *q = st_block(L->a);
        st_append(L->a, p, q);
        Expr *ow = lfor(L, &q, oname[2], li(L, cut[i]), li(L, cut[i + 1]));
        *r = row;
        r->body = q;
        r->yi = ladd(L, yb, lmad(L, yrow, G->out[2], ow));
        r->start[2] = lbind(L, q, sname[2], lsub(L, lmul(L, ow, li(L, G->s[2])), li(L, G->plo[2])));
        window_bounds(L, G, r, 2, i == 1);
    }
    return n;
}

/* Loops over the in-bounds window of `px` in the input plane at xb;
 * returns the innermost body and sets *xi to the flat input index. */
static Stmt *window_loops(Lower *L, Stmt *p, const Geom *G, const OutPixel *px, Expr *xb, Expr **xi)
{
    Expr *id = window_coord(L, G, px, 0, lfor(L, &p, "id", px->lo[0], px->hi[0]));
    Expr *ih = window_coord(L, G, px, 1, lfor(L, &p, "ih", px->lo[1], px->hi[1]));
    Expr *row = lbind(L, p, "xr", ladd(L, xb, lmul(L, lmad(L, id, G->in[1], ih), li(L, G->in[2]))));
    Expr *iw = window_coord(L, G, px, 2, lfor(L, &p, "iw", px->lo[2], px->hi[2]));
    *xi = ladd(L, row, iw);
    return p;
}

/* The first in-bounds element of the window: where the running maximum
 * starts, as in PyTorch (so an all -inf window routes to it). */
static Expr *window_first(Lower *L, const Geom *G, const OutPixel *px, Expr *xb)
{
    Expr *c[3];
    for (int a = 0; a < 3; a++)
        c[a] = window_coord(L, G, px, a, px->lo[a]);
    Expr *off = lmad(L, lmad(L, c[0], G->in[1], c[1]), G->in[2], c[2]);
    return ladd(L, xb, off);
}

/* `v > m || isnan(v)`: whether element v replaces the running maximum m. */
static Expr *replaces_max(Lower *L, Expr *v, Expr *m)
{
    return ex_bin(L->a, X_OR, ex_bin(L->a, X_LT, m, v), ex_bin(L->a, X_NE, v, v));
}

/* replaces_max as the sum of its two terms, which never hold together
 * (a NaN v is not above m): the same 0/1 with no short-circuit, which C
 * compilers would otherwise turn into branches. */
static Expr *replaces_max_sum(Lower *L, Expr *v, Expr *m)
{
    return ex_bin(L->a, X_ADD, ex_bin(L->a, X_LT, m, v), ex_bin(L->a, X_NE, v, v));
}

/* Emits the running max (and its index when mi != NULL) over a window. */
static int window_max(Lower *L, Stmt *p, const Geom *G, const OutPixel *px, Expr *xb, int xbuf,
                      int *mi)
{
    Expr *first = lbind(L, p, "first", window_first(L, G, px, xb));
    int m = ldecl(L, p, "m", T_F32, lload(L, xbuf, first));
    if (mi)
        *mi = ldecl(L, p, "mi", T_I32, first);
    Expr *xi;
    Stmt *q = window_loops(L, p, G, px, xb, &xi);
    Expr *v = lvar(L, ldecl(L, q, "v", T_F32, lload(L, xbuf, xi)));
    if (!mi) {
        /* the comparison inside the select, where the vectoriser takes it */
        lassign(L, q, m, ex_select(L->a, replaces_max(L, v, lvar(L, m)), v, lvar(L, m)));
        return m;
    }
    int c = ldecl(L, q, "take", T_I32, replaces_max(L, v, lvar(L, m)));
    lassign(L, q, m, ex_select(L->a, lvar(L, c), v, lvar(L, m)));
    lassign(L, q, *mi, ex_select(L->a, lvar(L, c), xi, lvar(L, *mi)));
    return m;
}

/* The average's divisor as a float, per PyTorch (see the file comment). */
static Expr *avg_divisor(Lower *L, const Geom *G, const OutPixel *px, bool include_pad)
{
    Expr *cnt = li(L, 1);
    for (int a = 0; a < 3; a++) {
        Expr *len;
        if (px->inside[a]) {
            len = li(L, G->k[a]); /* the same either way, and no min per output */
        } else if (include_pad) {
            Expr *end = lmin(L, ladd(L, px->start[a], li(L, G->k[a])), li(L, G->in[a] + G->phi[a]));
            len = lsub(L, end, px->start[a]);
        } else {
            len = lmax(L, lsub(L, px->hi[a], px->lo[a]), li(L, 0));
        }
        cnt = lmul(L, cnt, len);
    }
    /* An empty window sums to 0; dividing by 1 keeps that 0 as PyTorch does. */
    return ex_un(L->a, X_I2F, lmax(L, cnt, li(L, 1)));
}

/* Past this many taps a tiling window keeps the general loops rather than
 * being unrolled. */
#define MAX_TILE_TAPS 16

/* Whether the windows tile the input: stride == kernel, no padding, each
 * window inside the input (rows and columns past the last window are in
 * none), and few enough taps to unroll. */
static bool windows_tile(const Geom *G)
{
    for (int a = 0; a < 3; a++)
        if (G->s[a] != G->k[a] || G->d[a] != 1 || G->out[a] * G->k[a] > G->in[a])
            return false;
    return geom_unpadded(G) && G->k_sz <= MAX_TILE_TAPS;
}

/* Whether some input element lies in no window (tiling windows only). */
static bool tiles_leave_gaps(const Geom *G)
{
    return G->out[0] * G->k[0] != G->in[0] || G->out[1] * G->k[1] != G->in[1] ||
           G->out[2] * G->k[2] != G->in[2];
}

/* Offset of tap t (in window order kd, kh, kw) from a window's first element. */
static int tap_offset(const Geom *G, int t)
{
    int kw = t % G->k[2], kh = t / G->k[2] % G->k[1], kd = t / (G->k[2] * G->k[1]);
    return (kd * G->in[1] + kh) * G->in[2] + kw;
}

/* The rows of tiling windows of the plane pair (xb, yb): loops over od and
 * oh; sets *xr and *yr to the first input element of the row and to its
 * first output. */
static Stmt *tile_rows(Lower *L, Stmt *p, const Geom *G, Expr *xb, Expr *yb, Expr **xr, Expr **yr)
{
    Expr *od = lfor(L, &p, "od", li(L, 0), li(L, G->out[0]));
    Expr *oh = lfor(L, &p, "oh", li(L, 0), li(L, G->out[1]));
    /* input row (od*KD, oh*KH) and output row (od, oh) */
    Expr *xrow = ladd(L, lmul(L, od, li(L, G->k[0] * G->in[1] * G->in[2])),
                      lmul(L, oh, li(L, G->k[1] * G->in[2])));
    *xr = lbind(L, p, "xr", ladd(L, xb, xrow));
    *yr = lbind(L, p, "yr", ladd(L, yb, lmul(L, lmad(L, od, G->out[1], oh), li(L, G->out[2]))));
    return p;
}

/* The windows of one row: a loop over ow appended to p; sets *yi and *x0 to
 * the output index and the window's first input element. */
static Stmt *tile_cols(Lower *L, Stmt *p, const Geom *G, Expr *xr, Expr *yr, Expr **yi, Expr **x0)
{
    Expr *ow = lfor(L, &p, "ow", li(L, 0), li(L, G->out[2]));
    *yi = ladd(L, yr, ow);
    *x0 = lbind(L, p, "x0", ladd(L, xr, lmul(L, ow, li(L, G->k[2]))));
    return p;
}

/* The running max over a tiling window, taps unrolled in window order; with
 * mt != NULL also the winning tap's offset from the window's first element. */
static int tile_max(Lower *L, Stmt *p, const Geom *G, Expr *x0, int xbuf, int *mt)
{
    int m = ldecl(L, p, "m", T_F32, lload(L, xbuf, x0));
    if (mt)
        *mt = ldecl(L, p, "mt", T_I32, li(L, 0));
    for (int t = 1; t < G->k_sz; t++) {
        Expr *xi = ladd(L, x0, li(L, tap_offset(G, t)));
        Expr *v = lvar(L, ldecl(L, p, "v", T_F32, lload(L, xbuf, xi)));
        int c = ldecl(L, p, "take", T_I32, replaces_max_sum(L, v, lvar(L, m)));
        lassign(L, p, m, ex_select(L->a, lvar(L, c), v, lvar(L, m)));
        if (mt)
            lassign(L, p, *mt, ex_select(L->a, lvar(L, c), li(L, tap_offset(G, t)), lvar(L, *mt)));
    }
    return m;
}

/* Whether a max pool takes the flat form: 2D, stride 1, undilated, every
 * window with a tap inside the input (padding below the kernel size). */
static bool pool_flat(const Geom *G)
{
    if (G->in[0] != 1 || G->out[0] != 1 || G->k[0] != 1)
        return false;
    for (int a = 1; a < 3; a++)
        if (G->s[a] != 1 || G->d[a] != 1 || G->plo[a] >= G->k[a] || G->phi[a] >= G->k[a])
            return false;
    return true;
}

/* The flat form of a stride-1 max pool (pool_flat), per plane: the plane
 * copied into xpad [OH + k - 1, Wp = OW + k - 1] with -inf around it, the
 * outputs computed as one row of pitch Wp (output f reads xpad[f + kh*Wp +
 * kw], unit stride in f, so the loop vectorises whatever the width; the
 * Wp - OW columns past each row's end are computed and dropped), then
 * copied out.  -inf stands for the padding that the bounded windows never
 * read: every window holds a tap of the input, and no element replaces a
 * running maximum it equals, so each output is the same bits. */
static void maxpool_flat(Lower *L, Stmt *p, const Geom *G, Expr *xb, Expr *yb)
{
    enum { Y, X };
    int KH = G->k[1], KW = G->k[2], OH = G->out[1], OW = G->out[2], H = G->in[1], W = G->in[2];
    int Hp = OH + KH - 1, Wp = OW + KW - 1, F = (OH - 1) * Wp + OW;
    int xpad = kernel_scratch(L->a, L->k, "xpad", (long)Hp * Wp, 0);
    int yf = kernel_scratch(L->a, L->k, "yf", F, 0);
    lpriv(L, p, xpad); /* p: the loop over planes */
    lpriv(L, p, yf);
    /* rows above and below the input, then each input row between its borders */
    int top = G->plo[1], bottom = Hp - top - H, left = G->plo[2], right = Wp - left - W;
    if (top > 0)
        lfill(L, p, xpad, li(L, 0), li(L, top * Wp), -INFINITY);
    if (bottom > 0)
        lfill(L, p, xpad, li(L, (top + H) * Wp), li(L, bottom * Wp), -INFINITY);
    Stmt *q = p;
    Expr *h = lfor(L, &q, "h", li(L, 0), li(L, H));
    Expr *rb = lbind(L, q, "rb", lmul(L, ladd(L, h, li(L, top)), li(L, Wp)));
    if (left > 0)
        lfill(L, q, xpad, rb, li(L, left), -INFINITY);
    if (right > 0)
        lfill(L, q, xpad, ladd(L, rb, li(L, left + W)), li(L, right), -INFINITY);
    Stmt *c = q;
    Expr *w = lfor_indep(L, &c, "w", li(L, 0), li(L, W));
    lstore(L, c, xpad, ladd(L, rb, ladd(L, w, li(L, left))), lload(L, X, ladd(L, xb, lmad(L, h, W, w))), false);
    /* the window of output f in window order, from its first tap */
    q = p;
    Expr *fo = lfor_indep(L, &q, "f", li(L, 0), li(L, F));
    int m = ldecl(L, q, "m", T_F32, lload(L, xpad, fo));
    Stmt *t = q;
    Expr *kh = lfor(L, &t, "kh", li(L, 0), li(L, KH));
    Expr *kw = lfor(L, &t, "kw", li(L, 0), li(L, KW));
    Expr *v = lvar(L, ldecl(L, t, "v", T_F32, lload(L, xpad, ladd(L, fo, lmad(L, kh, Wp, kw)))));
    lassign(L, t, m, ex_select(L->a, replaces_max(L, v, lvar(L, m)), v, lvar(L, m)));
    lstore(L, q, yf, fo, lvar(L, m), false);
    /* y = the kept columns */
    q = p;
    Expr *oh = lfor(L, &q, "oh", li(L, 0), li(L, OH));
    Expr *ow = lfor_indep(L, &q, "ow", li(L, 0), li(L, OW));
    lstore(L, q, Y, ladd(L, yb, lmad(L, oh, OW, ow)), lload(L, yf, lmad(L, oh, Wp, ow)), false);
}

/* y [N, C, OD, OH, OW] = max over the window of x [N, C, D, H, W] */
void lower_maxpool(Lower *L)
{
    Geom G;
    geom_pool(&G, &L->n->p.pool, &lin(L, 0)->shape, &L->n->shape);
    enum { Y, X };
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, G.n_in)));
    Expr *xb = lbind(L, p, "xb", lmul(L, nc, li(L, G.in_sz)));
    Expr *yb = lbind(L, p, "yb", lmul(L, nc, li(L, G.out_sz)));
    if (windows_tile(&G)) {
        Expr *xr, *yr, *yi, *x0;
        Stmt *row = tile_rows(L, p, &G, xb, yb, &xr, &yr);
        Stmt *q = tile_cols(L, row, &G, xr, yr, &yi, &x0);
        lstore(L, q, Y, yi, lvar(L, tile_max(L, q, &G, x0, X, NULL)), false);
        return;
    }
    if (pool_flat(&G) && L->t->vlen >= 2) {
        maxpool_flat(L, p, &G, xb, yb);
        return;
    }
    OutPixel px[MAX_SEGS];
    for (int i = 0, n = out_loops(L, p, &G, yb, px); i < n; i++) {
        int m = window_max(L, px[i].body, &G, &px[i], xb, X, NULL);
        lstore(L, px[i].body, Y, px[i].yi, lvar(L, m), false);
    }
}

/* dx [N, C, D, H, W] += dy [N, C, OD, OH, OW] at each window's argmax in x */
void lower_maxpool_dx(Lower *L)
{
    Geom G;
    geom_pool(&G, &L->n->p.pool, &L->n->shape, &lin(L, 1)->shape);
    NETC_ASSERT(shape_eq(&lin(L, 0)->shape, &L->n->shape));
    enum { DX, X, DY };
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, G.n_in)));
    Expr *xb = lbind(L, p, "xb", lmul(L, nc, li(L, G.in_sz)));
    Expr *yb = lbind(L, p, "yb", lmul(L, nc, li(L, G.out_sz)));
    if (windows_tile(&G)) {
        /* Only elements in no window need zeroing; the rest are stored once. */
        if (tiles_leave_gaps(&G))
            lzero(L, p, DX, xb, li(L, G.in_sz));
        /* Each tap stores dy where it is the window's argmax and 0
         * elsewhere: no store's index depends on a comparison, so the
         * loop over a row's windows vectorises (stride-k accesses). */
        Expr *xr, *yr, *yi, *x0;
        Stmt *row = tile_rows(L, p, &G, xb, yb, &xr, &yr);
        Stmt *q = tile_cols(L, row, &G, xr, yr, &yi, &x0);
        int mt;
        tile_max(L, q, &G, x0, X, &mt);
        Expr *g = lvar(L, ldecl(L, q, "g", T_F32, fadd(L, lf(L, 0.0f), lload(L, DY, yi))));
        for (int t = 0; t < G.k_sz; t++) {
            Expr *at = ex_bin(L->a, X_EQ, lvar(L, mt), li(L, tap_offset(&G, t)));
            Expr *i = ladd(L, x0, li(L, tap_offset(&G, t)));
            Expr *v = ex_select(L->a, at, g, lf(L, 0.0f));
            /* the final value: a fused activation gradient applies here */
            lstore(L, q, DX, i, L->epi ? lepi(L, q, L->epi, v, i) : v, false);
        }
        L->epi_done = true;
        return;
    }
    /* overlapping windows add into dx: an epilogue runs after, over dx */
    lzero(L, p, DX, xb, li(L, G.in_sz));
    OutPixel px[MAX_SEGS];
    for (int i = 0, n = out_loops(L, p, &G, yb, px); i < n; i++) {
        int mi;
        window_max(L, px[i].body, &G, &px[i], xb, X, &mi);
        lstore(L, px[i].body, DX, lvar(L, mi), lload(L, DY, px[i].yi), true);
    }
}

/* The sum of x over the window of output pixel px, as a local declared in
 * px.body (x is buffer 1 of the pooling kernels). */
static Expr *window_sum(Lower *L, const Geom *G, const OutPixel *px, Expr *xb)
{
    int sum = ldecl(L, px->body, "sum", T_F32, lf(L, 0.0f));
    Expr *xi;
    Stmt *q = window_loops(L, px->body, G, px, xb, &xi);
    lassign(L, q, sum, fadd(L, lvar(L, sum), lload(L, 1, xi)));
    return lvar(L, sum);
}

/* y [N, C, OD, OH, OW] = sum over the window of x [N, C, D, H, W] / divisor */
void lower_avgpool(Lower *L)
{
    Geom G;
    geom_pool(&G, &L->n->p.pool, &lin(L, 0)->shape, &L->n->shape);
    enum { Y, X };
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, G.n_in)));
    Expr *xb = lbind(L, p, "xb", lmul(L, nc, li(L, G.in_sz)));
    Expr *yb = lbind(L, p, "yb", lmul(L, nc, li(L, G.out_sz)));
    OutPixel px[MAX_SEGS];
    for (int i = 0, n = out_loops(L, p, &G, yb, px); i < n; i++) {
        Expr *sum = window_sum(L, &G, &px[i], xb);
        Expr *div = avg_divisor(L, &G, &px[i], L->n->p.pool.count_include_pad);
        lstore(L, px[i].body, Y, px[i].yi, fdiv(L, sum, div), false);
    }
}

/* dx [N, C, D, H, W] += dy [N, C, OD, OH, OW] / divisor over each window */
void lower_avgpool_dx(Lower *L)
{
    Geom G;
    geom_pool(&G, &L->n->p.pool, &L->n->shape, &lin(L, 0)->shape);
    enum { DX, DY };
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, G.n_in)));
    Expr *xb = lbind(L, p, "xb", lmul(L, nc, li(L, G.in_sz)));
    Expr *yb = lbind(L, p, "yb", lmul(L, nc, li(L, G.out_sz)));
    lzero(L, p, DX, xb, li(L, G.in_sz));
    OutPixel px[MAX_SEGS];
    for (int i = 0, n = out_loops(L, p, &G, yb, px); i < n; i++) {
        Expr *div = avg_divisor(L, &G, &px[i], L->n->p.pool.count_include_pad);
        Expr *gv = lvar(L, ldecl(L, px[i].body, "g", T_F32, fdiv(L, lload(L, DY, px[i].yi), div)));
        Expr *xi;
        Stmt *q = window_loops(L, px[i].body, &G, &px[i], xb, &xi);
        lstore(L, q, DX, xi, gv, true);
    }
}

/* ---- adaptive average pooling ----
 * Output o of an axis averages the input bin [floor(o*I/O), ceil((o+1)*I/O)),
 * the bin edges of torch.nn.AdaptiveAvgPool; bins may overlap. */

typedef struct {
    int in[3], out[3];      /* spatial extents, right-aligned as in Geom */
    int in_sz, out_sz, C;
} Bins;

static Bins bins_of(const Shape *xs, const Shape *ys)
{
    Bins B;
    int nsp = xs->rank - 1, off = 3 - nsp;
    NETC_ASSERT(nsp >= 1 && nsp <= 3 && ys->rank == xs->rank && xs->d[0] == ys->d[0]);
    B.C = xs->d[0];
    B.in_sz = B.out_sz = 1;
    for (int a = 0; a < 3; a++) {
        B.in[a] = a < off ? 1 : xs->d[1 + a - off];
        B.out[a] = a < off ? 1 : ys->d[1 + a - off];
        B.in_sz *= B.in[a];
        B.out_sz *= B.out[a];
    }
    return B;
}

/* Loops over the output pixels of the plane at yb with each bin's range:
 * the same OutPixel as for windows (start unused). */
static OutPixel bin_loops(Lower *L, Stmt *p, const Bins *B, Expr *yb)
{
    static const char *const oname[3] = {"od", "oh", "ow"};
    static const char *const loname[3] = {"d0", "h0", "w0"};
    static const char *const hiname[3] = {"d1", "h1", "w1"};
    OutPixel r = {0};
    Expr *yoff = li(L, 0);
    for (int a = 0; a < 3; a++) {
        Expr *o = lfor(L, &p, oname[a], li(L, 0), li(L, B->out[a]));
        yoff = lmad(L, yoff, B->out[a], o);
        Expr *lo = ldiv(L, lmul(L, o, li(L, B->in[a])), li(L, B->out[a]));
        Expr *hi = ldiv(L, ladd(L, lmul(L, ladd(L, o, li(L, 1)), li(L, B->in[a])), li(L, B->out[a] - 1)),
                        li(L, B->out[a]));
        r.lo[a] = lbind(L, p, loname[a], lo);
        r.hi[a] = lbind(L, p, hiname[a], hi);
        r.start[a] = r.lo[a];
    }
    r.body = p;
    r.yi = ladd(L, yb, yoff);
    return r;
}

/* The number of inputs in a bin, as a float. */
static Expr *bin_count(Lower *L, const OutPixel *px)
{
    Expr *cnt = li(L, 1);
    for (int a = 0; a < 3; a++)
        cnt = lmul(L, cnt, lsub(L, px->hi[a], px->lo[a]));
    return ex_un(L->a, X_I2F, cnt);
}

/* A Geom with just the extents, for window_loops over a bin. */
static Geom bins_geom(const Bins *B)
{
    Geom G = {0};
    for (int a = 0; a < 3; a++) {
        G.in[a] = B->in[a];
        G.out[a] = B->out[a];
        G.k[a] = G.s[a] = G.d[a] = 1;
    }
    return G;
}

/* y [N, C, OD, OH, OW] = the mean of x [N, C, D, H, W] over each bin */
void lower_adaptive_avgpool(Lower *L)
{
    Bins B = bins_of(&lin(L, 0)->shape, &L->n->shape);
    Geom G = bins_geom(&B);
    enum { Y, X };
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, B.C)));
    Expr *xb = lbind(L, p, "xb", lmul(L, nc, li(L, B.in_sz)));
    Expr *yb = lbind(L, p, "yb", lmul(L, nc, li(L, B.out_sz)));
    OutPixel px = bin_loops(L, p, &B, yb);
    lstore(L, px.body, Y, px.yi, fdiv(L, window_sum(L, &G, &px, xb), bin_count(L, &px)), false);
}

/* dx [N, C, D, H, W] += dy [N, C, OD, OH, OW] / count over each bin */
void lower_adaptive_avgpool_dx(Lower *L)
{
    Bins B = bins_of(&L->n->shape, &lin(L, 0)->shape);
    Geom G = bins_geom(&B);
    enum { DX, DY };
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, B.C)));
    Expr *xb = lbind(L, p, "xb", lmul(L, nc, li(L, B.in_sz)));
    Expr *yb = lbind(L, p, "yb", lmul(L, nc, li(L, B.out_sz)));
    lzero(L, p, DX, xb, li(L, B.in_sz));
    OutPixel px = bin_loops(L, p, &B, yb);
    Expr *g = lvar(L, ldecl(L, px.body, "g", T_F32, fdiv(L, lload(L, DY, px.yi), bin_count(L, &px))));
    Expr *xi;
    Stmt *q = window_loops(L, px.body, &G, &px, xb, &xi);
    lstore(L, q, DX, xi, g, true);
}
