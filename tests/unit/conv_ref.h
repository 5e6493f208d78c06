/* conv_ref.h - the reference a fast convolution's float32 error is
 * measured against, shared by test_winograd.c and test_fft.c: a random
 * layer (one sample, inputs uniform in [-1, 1), weights and bias uniform
 * in +-1/sqrt(fan-in) like PyTorch's defaults), its direct convolution in
 * double and in float (summed in im2col's order with one fused
 * multiply-add each), and the max error against the double result.
 * Header-only: each test is one file (tests/CMakeLists.txt). */
#ifndef NETC_TEST_CONV_REF_H
#define NETC_TEST_CONV_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static uint32_t rng = 12345;

static double uniform(double lo, double hi)
{
    rng = rng * 1664525u + 1013904223u;
    return lo + (hi - lo) * (double)(rng >> 8) / (double)(1u << 24);
}

/* A stride-1 K x K convolution C -> O on H x W, padded by pad. */
typedef struct {
    const char *name;
    int C, H, W, O, K, pad, groups;
} Layer;

typedef struct {
    int OH, OW, cg, og;
    float *x, *w, *b; /* x [C, H, W], w [O, Cg, K, K], b [O] */
} Data;

/* The layer's sizes and random data (free with data_free). */
static Data data_new(const Layer *l)
{
    Data D = {l->H + 2 * l->pad - l->K + 1, l->W + 2 * l->pad - l->K + 1, l->C / l->groups, l->O / l->groups,
              NULL, NULL, NULL};
    long nx = (long)l->C * l->H * l->W, nw = (long)l->O * D.cg * l->K * l->K;
    D.x = malloc(sizeof(float) * (size_t)nx);
    D.w = malloc(sizeof(float) * (size_t)nw);
    D.b = malloc(sizeof(float) * (size_t)l->O);
    double bound = 1 / sqrt((double)D.cg * l->K * l->K);
    for (long j = 0; j < nx; j++)
        D.x[j] = (float)uniform(-1, 1);
    for (long j = 0; j < nw; j++)
        D.w[j] = (float)uniform(-bound, bound);
    for (int j = 0; j < l->O; j++)
        D.b[j] = (float)uniform(-bound, bound);
    return D;
}

static void data_free(Data *D)
{
    free(D->x);
    free(D->w);
    free(D->b);
}

static long data_outputs(const Layer *l, const Data *D)
{
    return (long)l->O * D->OH * D->OW;
}

/* x at (c, h, w) of the padded input */
static float xat(const Layer *l, const Data *D, int c, int h, int w)
{
    h -= l->pad;
    w -= l->pad;
    return h < 0 || h >= l->H || w < 0 || w >= l->W ? 0.0f : D->x[((long)c * l->H + h) * l->W + w];
}

/* Direct convolution: double, or float summed in im2col's order with fmaf. */
static void direct(const Layer *l, const Data *D, double *y64, float *y32)
{
    int kk = l->K * l->K;
    for (int o = 0; o < l->O; o++)
        for (int oh = 0; oh < D->OH; oh++)
            for (int ow = 0; ow < D->OW; ow++) {
                double s = D->b[o];
                float f = D->b[o];
                for (int c = 0; c < D->cg; c++)
                    for (int k = 0; k < kk; k++) {
                        float xv = xat(l, D, o / D->og * D->cg + c, oh + k / l->K, ow + k % l->K);
                        float wv = D->w[((long)o * D->cg + c) * kk + k];
                        s += (double)xv * wv;
                        f = fmaf(wv, xv, f);
                    }
                long i = ((long)o * D->OH + oh) * D->OW + ow;
                y64[i] = s;
                y32[i] = f;
            }
}

/* max |y - ref| and that over max |ref| */
static void errors(const float *y, const double *ref, long n, double *abs_err, double *rel_err)
{
    double e = 0, big = 0;
    for (long i = 0; i < n; i++) {
        e = fmax(e, fabs(y[i] - ref[i]));
        big = fmax(big, fabs(ref[i]));
    }
    *abs_err = e;
    *rel_err = e / big;
}

#endif
