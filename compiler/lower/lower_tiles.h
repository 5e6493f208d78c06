/* lower_tiles.h - the tiled convolutions' columns (lower_tiles.c), shared by
 * the FFT (lower_fft.c) and Winograd (lower_winograd.c) lowerings.
 *
 * Both compute a stride-1 correlation tile by tile: the output plane is cut
 * into MH x MW tiles (the last row and column ragged), each computed from
 * the NH x NW input tile at the same corner.  Their transforms run as one
 * loop over columns, unit stride in every load and store, which
 * loop_vectorize widens: per block of S samples and group, column
 * j = s T + t holds tile t of sample s, hc = S T rounded up to whole
 * vectors.  These helpers move the data between the planes and the
 * columns (scalar copies); the transforms between them are the callers':
 *
 *   xp [S][Ci, HP, WP]   the zero-padded planes, when the layer is padded
 *                        or its tiles reach past the input (tiles_copy)
 *   G [NH NW, hc]        one channel's input tiles (tiles_gather): row
 *                        i NW + j, column = tile
 *   Y [MH MW, hc]        one channel's output tiles (the caller's inverse
 *                        transform) -> y, plus the bias, through the
 *                        epilogue, clipped at the plane's edges
 *                        (tiles_scatter)
 *
 * Example: a 3x3 layer on 56x56 planes by F(4x4, 3x3): NH = NW = 6, MH =
 * MW = 4, 14 x 14 tiles, S = 1, hc = 208 columns with 16 lanes.
 */
#ifndef NETC_LOWER_TILES_H
#define NETC_LOWER_TILES_H

#include "lower_impl.h"

typedef struct {
    int groups, ci, co;  /* groups; channels per group: read, produced  */
    int H, W, OH, OW;    /* the correlation's input and output planes   */
    int pt, pl;          /* its padding above and left of the input     */
    int NH, NW, MH, MW;  /* input tile, output tile                     */
    int TH, TW, ntile;   /* tiles per plane                             */
    int S;               /* samples per block                           */
    int hc;              /* columns: ntile S, whole vectors             */
    int HP, WP;          /* the plane the tiles read                    */
    bool copy;           /* through a zero-padded copy of the input     */
} Tiles;

/* The rest of t from its fields up to MW, for vectors of V lanes: S =
 * block(the tiles per plane). */
void tiles_geom(Tiles *t, int (*block)(int ntile), int V);

/* One sample's input (output) planes of every group: the distance between
 * two samples' group g. */
int tiles_xstep(const Tiles *t);
int tiles_ystep(const Tiles *t);

/* G [Ci, NH NW, hc] (scratch named prefix "g") and, when t->copy, the
 * padded planes xp [S][Ci, HP, WP] (else -1), zeroed where nothing
 * writes: appended to the kernel's body, so called before its loops. */
void tiles_scratch(Lower *L, const Tiles *t, const char *prefix, int *gb, int *xp);

/* The block loop over the samples [lo, hi): p moves into the loops over
 * the blocks of t->S samples and the groups; *g is the group, *ns the
 * block's samples (fewer in the last block), *xb and *yb the block's
 * first sample's group g in the input and output. */
void tiles_blocks(Lower *L, Stmt **p, const Tiles *t, Expr *lo, Expr *hi, Expr **g, Expr **ns, Expr **xb,
                  Expr **yb);

/* A block of S > 1 samples computes all its S T columns even when it
 * holds fewer samples: the batch's last r = batch % S samples can run one
 * at a time instead, each on T columns rounded up to whole vectors of V
 * lanes (the caller decides for which r: wino_tail).  In one, t's geometry
 * for blocks of one sample. */
void tiles_single(const Tiles *t, int V, Tiles *one);

/* The most samples that run one at a time after the blocks of S for T
 * tiles a sample and V lanes: a batch's last r = batch % S samples run so
 * when r single samples' columns (T rounded up to vectors, each) are
 * fewer than one block's; 0 when S = 1.  (wino_tail, fft_tail.) */
int tiles_tail_most(int T, int S, int V);

/* The first sample of the tail run one at a time: the batch minus its
 * last r = batch % S samples when r <= most, else the batch (no tail). */
Expr *tiles_tail_start(Lower *L, const Tiles *t, int most);

/* The padded planes xp [S][Ci, HP, WP] (zeroed once per call by
 * tiles_scratch) of the block's ns samples, sample s's group at xb + s*xstep. */
void tiles_copy(Lower *L, Stmt *p, const Tiles *t, int xp, int x, Expr *xb, int xstep, Expr *ns);

/* Channel c's tiles of the block's samples: G [NH NW, hc] at gc.  Sample
 * s's plane c starts at sb + s*sstride + c*plane, rows rs apart. */
void tiles_gather(Lower *L, Stmt *p, const Tiles *t, int gb, Expr *gc, int src, Expr *sb, int sstride, Expr *c,
                  int plane, int rs, Expr *ns);

/* Channel c's input tiles gathered into G at gc from the padded planes
 * (xp >= 0) or from the input itself (block start xb, xstep apart). */
void tiles_gather_input(Lower *L, Stmt *p, const Tiles *t, int gb, Expr *gc, int in, Expr *xb, int xstep, int xp,
                        Expr *c, Expr *ns);

/* The rows (columns) of tile i inside a plane of n: m, or fewer at its
 * edge. */
Expr *tiles_clip(Lower *L, Expr *i, int m, int n);

/* The block's output planes of one channel (sample s's at yb + s*sstride)
 * from its tiles Y [MH MW, hc] at yo (+ bias, NULL: none), through the
 * epilogue, clipped at the plane's edges. */
void tiles_scatter(Lower *L, Stmt *p, const Tiles *t, int y, Expr *yb, int sstride, int yt, Expr *yo, Expr *bias,
                   Expr *ns);

/* Output channel o's dy tiles of the block's samples (the weight
 * gradient's), gathered: point (i, j) of column c (= s T + t, tile t of
 * sample s) at gc + (i*rowlen + j)*ps + c*cs (FFT: ps = hc, cs = 1, rows
 * rowlen = NW apart, the tile zero-padded to the input tile), tile t's
 * MH x MW values clipped at the plane's edges: points past them are never
 * written (0 from the zeroed buffer).  Sample s's planes at yb + s*ystep.
 * With o NULL, every channel, innermost: channel o's points at + o (cs =
 * the channels, the transposing gather of a channel-fastest layout). */
void tiles_gather_dy(Lower *L, Stmt *p, const Tiles *t, int gd, Expr *gc, int rowlen, int ps, int cs, int dy,
                     Expr *yb, int ystep, Expr *o, Expr *ns);

/* Zeroes the columns of the samples past ns in a block's gathered dy
 * tiles (a last block of fewer samples: what the block before left there
 * would be summed into the weight gradient): point pt of column c of
 * channel o at o*os + pt*ps + c*cs, rows points a column (FFT: os = rows
 * hc, ps = hc, cs = 1); nothing when S = 1. */
void tiles_zero_missing(Lower *L, Stmt *p, const Tiles *t, int gd, int rows, int os, int ps, int cs, Expr *ns);

#endif
