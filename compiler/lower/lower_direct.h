/* lower_direct.h - the weight-gradient tile of lower_direct.c, for the
 * schedule's cost model.
 *
 * direct_dw_tile gives the tile lower_conv_dw_vec uses for a conv_dw:
 * `mr` rows (input channel x tap) by `nv` vectors of output channels, each
 * of `V` lanes, all accumulators in registers.  Example: 64 output
 * channels per group, 576 rows, 16 lanes and 32 vector registers give 14
 * rows x 2 vectors.
 */
#ifndef NETC_LOWER_DIRECT_H
#define NETC_LOWER_DIRECT_H

#include <stdbool.h>

/* The tile for og output channels per group and `rows` = Cg*K, on a target
 * with vlen lanes (<= 1: scalar) and vregs vector registers; false when
 * og is not whole vectors (the scalar loops of lower_conv.c run then). */
bool direct_dw_tile(int vlen, int vregs, int og, int rows, int *V, int *mr, int *nv);

/* Taps per pass of the depthwise weight gradient (dwise_dw): one vector
 * accumulator each, beside dy's vector and the loads, on vregs registers. */
int direct_dwise_taps(int vregs);

#endif
