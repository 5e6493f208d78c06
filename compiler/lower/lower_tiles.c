/* lower_tiles.c - the planes-to-columns moves of the tiled convolutions
 * (lower_tiles.h: the layout, an example).
 *
 * Needs: a Tiles geometry from tiles_geom.  Provides: the block loop, the
 * padded copy, the gather of one channel's tiles into columns and the
 * scatter of one channel's output tiles, as loop IR.  Invalidates nothing.
 * Every loop here is scalar (a gather or scatter has stride MW or hc in
 * the loop a vector would run over); the transforms between them are the
 * unit-stride loops.
 *
 *   gather, channel c, F(4x4, 3x3) on 56x56:
 *     for th in 0..14, tw in 0..14, i in 0..6, j in 0..6:
 *       G[(i*6 + j)*208 + th*14 + tw] = xp[c][th*4 + i][tw*4 + j]
 */
#include "lower_tiles.h"

void tiles_geom(Tiles *t, int (*block)(int ntile), int V)
{
    V = V > 1 ? V : 1;
    t->TH = (t->OH + t->MH - 1) / t->MH;
    t->TW = (t->OW + t->MW - 1) / t->MW;
    t->ntile = t->TH * t->TW;
    t->S = block(t->ntile);
    /* whole vectors: the transforms run over the columns without a scalar
     * tail, and lgemm's leftover columns would each run alone */
    t->hc = (t->ntile * t->S + V - 1) / V * V;
    t->HP = t->TH * t->MH + t->NH - t->MH;
    t->WP = t->TW * t->MW + t->NW - t->MW;
    t->copy = t->pt || t->pl || t->H < t->HP || t->W < t->WP;
    NETC_ASSERT(t->H + t->pt <= t->HP && t->W + t->pl <= t->WP);
}

int tiles_xstep(const Tiles *t)
{
    return t->groups * t->ci * t->H * t->W;
}

int tiles_ystep(const Tiles *t)
{
    return t->groups * t->co * t->OH * t->OW;
}

void tiles_scratch(Lower *L, const Tiles *t, const char *prefix, int *gb, int *xp)
{
    long P = (long)t->NH * t->NW, xps = (long)t->ci * t->HP * t->WP;
    *gb = kernel_scratch(L->a, L->k, arena_printf(L->a, "%sg", prefix), t->ci * P * t->hc, 0);
    *xp = t->copy ? kernel_scratch(L->a, L->k, "xpad", t->S * xps, 0) : -1;
    /* the padding columns, and those of the samples past the batch's end
     * in its last block: transformed and multiplied, never read back */
    if (t->hc > t->S * t->ntile || t->S > 1)
        lzero(L, L->k->body, *gb, li(L, 0), li(L, (int)(t->ci * P * t->hc)));
    if (*xp >= 0)
        lzero(L, L->k->body, *xp, li(L, 0), li(L, (int)(t->S * xps)));
}

void tiles_blocks(Lower *L, Stmt **p, const Tiles *t, Expr *lo, Expr *hi, Expr **g, Expr **ns, Expr **xb,
                  Expr **yb)
{
    int S = t->S;
    Expr *blk = lfor(L, p, "nb", li(L, 0), ldiv(L, ladd(L, lsub(L, hi, lo), li(L, S - 1)), li(L, S)));
    *g = lfor(L, p, "g", li(L, 0), li(L, t->groups));
    Expr *n0 = lbind(L, *p, "n0", ladd(L, lo, lmul(L, blk, li(L, S))));
    *ns = S == 1 ? li(L, 1) : lbind(L, *p, "ns", lmin(L, li(L, S), lsub(L, hi, n0)));
    Expr *ng = lmad(L, n0, t->groups, *g);
    *xb = lbind(L, *p, "xb", lmul(L, ng, li(L, t->ci * t->H * t->W)));
    *yb = lbind(L, *p, "yb", lmul(L, ng, li(L, t->co * t->OH * t->OW)));
}

void tiles_single(const Tiles *t, int V, Tiles *one)
{
    V = V > 1 ? V : 1;
    *one = *t;
    one->S = 1;
    one->hc = (t->ntile + V - 1) / V * V;
}

int tiles_tail_most(int T, int S, int V)
{
    V = V > 1 ? V : 1;
    int hc = (T * S + V - 1) / V * V, hc1 = (T + V - 1) / V * V;
    int most = (hc - 1) / hc1;
    return S == 1 ? 0 : most < S - 1 ? most : S - 1;
}

Expr *tiles_tail_start(Lower *L, const Tiles *t, int most)
{
    Expr *r = lbind(L, L->k->body, "nr", ex_bin(L->a, X_MOD, lbatch(L), li(L, t->S)));
    Expr *start = lsub(L, lbatch(L), r);
    if (most < t->S - 1)
        start = ex_select(L->a, ex_bin(L->a, X_LE, r, li(L, most)), start, lbatch(L));
    return lbind(L, L->k->body, "nt", start);
}

void tiles_copy(Lower *L, Stmt *p, const Tiles *t, int xp, int x, Expr *xb, int xstep, Expr *ns)
{
    Stmt *q = p;
    Expr *s = lfor(L, &q, "s", li(L, 0), ns);
    Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, t->ci));
    Expr *h = lfor(L, &q, "h", li(L, 0), li(L, t->H));
    Expr *xpb = lmul(L, s, li(L, t->ci * t->HP * t->WP));
    Expr *dst = lbind(L, q, "xr", ladd(L, xpb, lmad(L, lmad(L, c, t->HP, ladd(L, h, li(L, t->pt))), t->WP, li(L, t->pl))));
    Expr *src = lbind(L, q, "sr", ladd(L, lmad(L, s, xstep, xb), lmul(L, lmad(L, c, t->H, h), li(L, t->W))));
    Expr *i = lfor(L, &q, "i", li(L, 0), li(L, t->W));
    lstore(L, q, xp, ladd(L, dst, i), lload(L, x, ladd(L, src, i)), false);
}

void tiles_gather(Lower *L, Stmt *p, const Tiles *t, int gb, Expr *gc, int src, Expr *sb, int sstride, Expr *c,
                  int plane, int rs, Expr *ns)
{
    /* tw innermost but one: each (th, i)'s run of tiles stores unit
     * stride into G's rows and loads MW apart from the plane's row, a
     * pattern the C compiler or LLVM widens with shuffles */
    Stmt *q = p;
    Expr *s = lfor(L, &q, "s", li(L, 0), ns);
    Expr *th = lfor(L, &q, "th", li(L, 0), li(L, t->TH));
    Expr *i = lfor(L, &q, "i", li(L, 0), li(L, t->NH));
    Expr *sr = lbind(L, q, "sr", ladd(L, ladd(L, sb, lmad(L, s, sstride, lmul(L, c, li(L, plane)))),
                                      lmul(L, lmad(L, th, t->MH, i), li(L, rs))));
    Expr *gr = lbind(L, q, "gr", ladd(L, gc, ladd(L, lmad(L, i, t->NW * t->hc, lmul(L, s, li(L, t->ntile))),
                                                  lmul(L, th, li(L, t->TW)))));
    Expr *tw = lfor(L, &q, "tw", li(L, 0), li(L, t->TW));
    Expr *sw = lbind(L, q, "sw", lmad(L, tw, t->MW, sr));
    Expr *gw = lbind(L, q, "gw", ladd(L, gr, tw));
    for (int j = 0; j < t->NW; j++)
        lstore(L, q, gb, ladd(L, gw, li(L, j * t->hc)), lload(L, src, ladd(L, sw, li(L, j))), false);
}

void tiles_gather_input(Lower *L, Stmt *p, const Tiles *t, int gb, Expr *gc, int in, Expr *xb, int xstep, int xp,
                        Expr *c, Expr *ns)
{
    if (xp >= 0)
        tiles_gather(L, p, t, gb, gc, xp, li(L, 0), t->ci * t->HP * t->WP, c, t->HP * t->WP, t->WP, ns);
    else
        tiles_gather(L, p, t, gb, gc, in, xb, xstep, c, t->H * t->W, t->W, ns);
}

Expr *tiles_clip(Lower *L, Expr *i, int m, int n)
{
    return n % m == 0 ? li(L, m) : lmin(L, li(L, m), lsub(L, li(L, n), lmul(L, i, li(L, m))));
}

void tiles_scatter(Lower *L, Stmt *p, const Tiles *t, int y, Expr *yb, int sstride, int yt, Expr *yo, Expr *bias,
                   Expr *ns)
{
    Stmt *q = p;
    Expr *s = lfor(L, &q, "s", li(L, 0), ns);
    Expr *ys = lbind(L, q, "ys", lmad(L, s, sstride, yb));
    Expr *js = lbind(L, q, "js", ladd(L, yo, lmul(L, s, li(L, t->ntile))));
    Expr *th = lfor(L, &q, "th", li(L, 0), li(L, t->TH));
    Expr *r = lfor(L, &q, "r", li(L, 0), tiles_clip(L, th, t->MH, t->OH));
    Expr *yr = lbind(L, q, "yr", ladd(L, ys, lmul(L, lmad(L, th, t->MH, r), li(L, t->OW))));
    Expr *jr = lbind(L, q, "jr", ladd(L, lmad(L, th, t->TW, js), lmul(L, r, li(L, t->MW * t->hc))));
    Expr *tw = lfor(L, &q, "tw", li(L, 0), li(L, t->TW));
    Expr *yw = lbind(L, q, "yw", lmad(L, tw, t->MW, yr));
    Expr *jw = lbind(L, q, "jw", ladd(L, jr, tw));
    Expr *c = lfor(L, &q, "c", li(L, 0), tiles_clip(L, tw, t->MW, t->OW));
    Expr *v = lload(L, yt, lmad(L, c, t->hc, jw));
    if (bias)
        v = fadd(L, v, bias);
    Expr *yi = ladd(L, yw, c);
    lstore(L, q, y, yi, L->epi ? lepi(L, q, L->epi, v, yi) : v, false);
}

void tiles_gather_dy(Lower *L, Stmt *p, const Tiles *t, int gd, Expr *gc, int rowlen, int ps, int cs, int dy,
                     Expr *yb, int ystep, Expr *o, Expr *ns)
{
    int plane = t->OH * t->OW;
    Stmt *q = p;
    Expr *s = lfor(L, &q, "s", li(L, 0), ns);
    /* each tile row its own columns: independent (the channel-fastest
     * form is one pass over all channels, worth spreading) */
    Expr *th = o ? lfor(L, &q, "th", li(L, 0), li(L, t->TH)) : lfor_indep(L, &q, "th", li(L, 0), li(L, t->TH));
    Expr *tw = lfor(L, &q, "tw", li(L, 0), li(L, t->TW));
    Expr *tb = lbind(L, q, "tb", ladd(L, ladd(L, yb, lmad(L, s, ystep, o ? lmul(L, o, li(L, plane)) : li(L, 0))),
                                      lmad(L, th, t->MH * t->OW, lmul(L, tw, li(L, t->MW)))));
    Expr *col = lbind(L, q, "gj", ladd(L, gc, lmul(L, ladd(L, lmul(L, s, li(L, t->ntile)), lmad(L, th, t->TW, tw)),
                                                  li(L, cs))));
    Expr *i = lfor(L, &q, "i", li(L, 0), tiles_clip(L, th, t->MH, t->OH));
    Expr *sr = lbind(L, q, "sr", lmad(L, i, t->OW, tb));
    Expr *gr = lbind(L, q, "gr", lmad(L, i, rowlen * ps, col));
    Expr *j = lfor(L, &q, "j", li(L, 0), tiles_clip(L, tw, t->MW, t->OW));
    if (o) {
        lstore(L, q, gd, lmad(L, j, ps, gr), lload(L, dy, ladd(L, sr, j)), false);
        return;
    }
    Expr *sj = lbind(L, q, "sj", ladd(L, sr, j));
    Expr *gjj = lbind(L, q, "gp", lmad(L, j, ps, gr));
    Expr *c = lfor(L, &q, "o", li(L, 0), li(L, t->co));
    lstore(L, q, gd, ladd(L, gjj, c), lload(L, dy, lmad(L, c, plane, sj)), false);
}

void tiles_zero_missing(Lower *L, Stmt *p, const Tiles *t, int gd, int rows, int os, int ps, int cs, Expr *ns)
{
    if (t->S == 1)
        return;
    Stmt *q = p;
    Expr *o = lfor_indep(L, &q, "o", li(L, 0), li(L, t->co));
    Expr *s = lfor(L, &q, "s", ns, li(L, t->S));
    Expr *pt = lfor(L, &q, "pt", li(L, 0), li(L, rows));
    Expr *tt = lfor(L, &q, "t", li(L, 0), li(L, t->ntile));
    Expr *col = lmad(L, s, t->ntile, tt);
    lstore(L, q, gd, ladd(L, lmad(L, o, os, lmul(L, pt, li(L, ps))), lmul(L, col, li(L, cs))), lf(L, 0.0f), false);
}
