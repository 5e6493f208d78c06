/* lower_winograd.h - the Winograd transform matrices of lower_winograd.c.
 *
 * Provides wino_mats, for the lowering and for the unit tests
 * (tests/unit/test_winograd.c), which check the matrices and measure the
 * error of each tile size.  Example: wino_mats(4)->bt is F(4x4, 3x3)'s
 * B^T, 6 x 6.
 */
#ifndef NETC_LOWER_WINOGRAD_H
#define NETC_LOWER_WINOGRAD_H

enum { WINO_AMAX = 6 }; /* the largest input tile side, a = m + 2 */

/* The transform matrices of one tile size, row-major: B^T [a, a], G [a,
 * 3], A^T [m, a]; y = A^T [(G g G^T) * (B^T d B)] A for an a x a input
 * tile d and a 3x3 filter g. */
typedef struct {
    int m, a;
    const double *bt, *g, *at;
} WinoMats;
const WinoMats *wino_mats(int m); /* m = 2 or 4 */

/* Samples per block of columns for T tiles a sample (lower_tiles.h): enough for 48 columns, at most 8 (more samples
 * per block would waste a small batch's columns: 49 tiles, 16 lanes, pairs
 * of samples would save an eighth of the padding at batch 32 and double
 * the work at batch 1). */
int wino_block(int T);

/* The most samples that the forward and input-gradient kernels run one at
 * a time after their blocks, for T tiles a sample and V lanes
 * (lower_tiles.h, tiles_tail_most).  Example: 7x7 planes by F(4x4), T = 4,
 * S = 8, 32 columns a block; with 16 lanes 16 a sample, so 1. */
int wino_tail(int T, int V);

#endif
