/* lower_fft.h - the tile sizes and tile transforms of lower_fft.c.
 *
 * Provides fft_size, the transform size the lowering picks for a layer
 * (also read by the schedule for its reason), and fft_tile_fwd /
 * fft_tile_inv, the lowering's tile transforms evaluated in float32 with
 * the generated code's operations in its order (tests/unit/test_fft.c
 * measures the error of each size with them).  Example: a 5x5 kernel on a
 * 27x27 plane with 64 -> 192 channels gets 16 x 16 transforms, output
 * tiles of 12 x 12.
 */
#ifndef NETC_LOWER_FFT_H
#define NETC_LOWER_FFT_H

#include <stdbool.h>

enum {
    FFT_NMAX = 32,     /* the largest transform side            */
    FFT_AREA_MAX = 512, /* the largest transform, NH * NW points      */
    FFT_AREA_PREF = 128 /* the largest where a smaller one fits too */
};

/* The transform size NH x NW (powers of two, 1 along an axis whose kernel
 * is 1) for a correlation of kernel kh x kw producing oh x ow planes,
 * ci -> co channels per group; false when no size fits (a kernel side
 * above FFT_NMAX - 1, or both too large for FFT_AREA_MAX). */
bool fft_size(int kh, int kw, int oh, int ow, int ci, int co, int *nh, int *nw);

/* Samples per GEMM for T tiles a sample: enough for 48 columns (3
 * vectors of 16), at most 8. */
int fft_block(int T);

/* The most samples the forward and input-gradient kernels run one at a
 * time after their blocks (lower_tiles.h, tiles_tail_most), for T tiles a
 * sample and V lanes. */
int fft_tail(int T, int V);

/* re/im [nh, nw/2 + 1] = the 2D DFT of the real tile d [nh, nw], times
 * scale (a power of two, applied to the inputs). */
void fft_tile_fwd(int nh, int nw, const float *d, float scale, float *re, float *im);
/* y [mh, mw] = the first mh x mw values of the real inverse 2D DFT (not
 * scaled) of the half spectrum re/im [nh, nw/2 + 1]. */
void fft_tile_inv(int nh, int nw, const float *re, const float *im, int mh, int mw, float *y);

#endif
