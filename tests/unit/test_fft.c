/* Tests of the FFT convolution's tile transforms (lower_fft.c) and their
 * error.
 *
 * test_roundtrip: for every transform size, the inverse of the forward
 * transform (scaled by 1 / (NH NW)) gives the tile back, and the inverse
 * of X conj(W) is the tile's correlation with a kernel, within float32
 * rounding.
 *
 * test_choice: fft_size's picks for the layers docs/ir.md names.
 *
 * test_error: the numerical error of each transform size on 3x3 and 5x5
 * stride-1 layers (one sample, inputs uniform in [-1, 1), weights and bias
 * uniform in +-1/sqrt(fan-in)), against a double-precision direct
 * convolution.  The float32 FFT convolution here is the lowering's: its
 * transforms are fft_tile_fwd / fft_tile_inv, the generated code's
 * operations evaluated in its order, and each bin's GEMM sums its 2 Cg
 * terms in order with one fused multiply-add each, as lgemm.  Beside it a
 * float32 direct convolution summed in im2col's order.  Errors are max
 * |y - y64| and that divided by max |y64|; the table is printed, docs/ir.md
 * quotes it, and the bounds asserted keep it from regressing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_ref.h"
#include "lower_fft.h"

enum { NN = FFT_NMAX * FFT_NMAX, NB = FFT_NMAX * (FFT_NMAX / 2 + 1) };

static const int sizes[][2] = {{1, 4}, {1, 32}, {4, 4}, {8, 8}, {16, 16}, {8, 32}, {32, 16}, {16, 1}};

static void test_roundtrip(void **state)
{
    (void)state;
    static float d[NN], g[NN], re[NB], im[NB], wr[NB], wi[NB], y[NN];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int nh = sizes[s][0], nw = sizes[s][1], nb = nh * (nw / 2 + 1);
        int kh = nh > 1 ? 3 : 1, kw = nw > 1 ? 3 : 1;
        for (int i = 0; i < nh * nw; i++)
            d[i] = (float)uniform(-1, 1);
        fft_tile_fwd(nh, nw, d, 1.0f / (float)(nh * nw), re, im);
        fft_tile_inv(nh, nw, re, im, nh, nw, y);
        for (int i = 0; i < nh * nw; i++)
            assert_true(fabsf(y[i] - d[i]) < 1e-5f);
        /* the circular correlation with a kh x kw kernel, its first
         * (nh - kh + 1) x (nw - kw + 1) values */
        memset(g, 0, sizeof g);
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++)
                g[a * nw + b] = (float)uniform(-1, 1);
        fft_tile_fwd(nh, nw, g, 1.0f / (float)(nh * nw), wr, wi);
        fft_tile_fwd(nh, nw, d, 1.0f, re, im);
        for (int e = 0; e < nb; e++) {
            float r = re[e] * wr[e] + im[e] * wi[e], i = im[e] * wr[e] - re[e] * wi[e];
            re[e] = r;
            im[e] = i;
        }
        int mh = nh - kh + 1, mw = nw - kw + 1;
        fft_tile_inv(nh, nw, re, im, mh, mw, y);
        for (int i = 0; i < mh; i++)
            for (int j = 0; j < mw; j++) {
                double want = 0;
                for (int a = 0; a < kh; a++)
                    for (int b = 0; b < kw; b++)
                        want += (double)d[(i + a) * nw + j + b] * g[a * nw + b];
                assert_true(fabs(y[i * mw + j] - want) < 1e-4);
            }
    }
}

static void test_choice(void **state)
{
    (void)state;
    int nh, nw;
    /* AlexNet's conv2 (5x5 64->192 on 27x27) and its input gradient */
    assert_true(fft_size(5, 5, 27, 27, 64, 192, &nh, &nw));
    assert_int_equal(nh, 8);
    assert_int_equal(nw, 16);
    /* an 11x11 kernel needs 16 x 16 */
    assert_true(fft_size(11, 11, 27, 27, 64, 192, &nh, &nw));
    assert_int_equal(nh * nw, 256);
    /* LeNet's conv2 (5x5 6->16, 10x10 out) */
    assert_true(fft_size(5, 5, 10, 10, 6, 16, &nh, &nw));
    assert_int_equal(nh, 8);
    assert_int_equal(nw, 16);
    /* 1D: no transform across the unit axis */
    assert_true(fft_size(1, 9, 1, 45, 3, 4, &nh, &nw));
    assert_int_equal(nh, 1);
    /* a kernel wider than the widest transform does not fit */
    assert_false(fft_size(5, 33, 10, 100, 3, 4, &nh, &nw));
}

/* ---- the error of float32 FFT convolution ---- */

/* The FFT convolution with n x n transforms, in float, in the lowering's
 * order. */
static void fftconv(const Layer *l, const Data *D, int n, float *y)
{
    int K = l->K, m = n - K + 1, TH = (D->OH + m - 1) / m, TW = (D->OW + m - 1) / m, nt = TH * TW;
    int nb = n * (n / 2 + 1), C = l->C;
    float *Ur = malloc(sizeof(float) * (size_t)l->O * C * nb), *Ui = malloc(sizeof(float) * (size_t)l->O * C * nb);
    float *Vr = malloc(sizeof(float) * (size_t)C * nt * nb), *Vi = malloc(sizeof(float) * (size_t)C * nt * nb);
    static float t[NN], re[NB], im[NB], out[NN];
    for (long f = 0; f < (long)l->O * C; f++) {
        memset(t, 0, sizeof t);
        for (int i = 0; i < K * K; i++)
            t[i / K * n + i % K] = D->w[f * K * K + i];
        fft_tile_fwd(n, n, t, 1.0f / (float)(n * n), Ur + f * nb, Ui + f * nb);
    }
    for (int c = 0; c < C; c++)
        for (int tt = 0; tt < nt; tt++) {
            for (int i = 0; i < n * n; i++)
                t[i] = xat(l, D, c, tt / TW * m + i / n, tt % TW * m + i % n);
            fft_tile_fwd(n, n, t, 1.0f, Vr + ((long)c * nt + tt) * nb, Vi + ((long)c * nt + tt) * nb);
        }
    for (int o = 0; o < l->O; o++)
        for (int tt = 0; tt < nt; tt++) {
            for (int e = 0; e < nb; e++) {
                /* [Mr Mi] = [Wr Wi] [Xr Xi; Xi -Xr]: the k = 0 step stores,
                 * the others fuse */
                float mr = 0, mi = 0;
                for (int k = 0; k < 2 * C; k++) {
                    int c = k % C;
                    long ui = ((long)o * C + c) * nb + e, vi = ((long)c * nt + tt) * nb + e;
                    float a = k < C ? Ur[ui] : Ui[ui];
                    float br = k < C ? Vr[vi] : Vi[vi], bi = k < C ? Vi[vi] : -Vr[vi];
                    mr = k == 0 ? a * br : fmaf(a, br, mr);
                    mi = k == 0 ? a * bi : fmaf(a, bi, mi);
                }
                re[e] = mr;
                im[e] = mi;
            }
            fft_tile_inv(n, n, re, im, m, m, out);
            for (int i = 0; i < m * m; i++) {
                int oh = tt / TW * m + i / m, ow = tt % TW * m + i % m;
                if (oh < D->OH && ow < D->OW)
                    y[((long)o * D->OH + oh) * D->OW + ow] = out[i] + D->b[o];
            }
        }
    free(Ur);
    free(Ui);
    free(Vr);
    free(Vi);
}

static void test_error(void **state)
{
    (void)state;
    static const Layer layers[] = {
        {"conv3x3_64_28", 64, 28, 28, 32, 3, 1, 1},
        {"conv5x5_64_27", 64, 27, 27, 32, 5, 2, 1},
        {"lenet_conv2", 6, 14, 14, 16, 5, 0, 1},
    };
    static const int ns[] = {4, 8, 16, 32};
    printf("%-16s %-21s", "layer", "direct f32");
    for (int s = 0; s < 4; s++)
        printf(" %2dx%-2d               ", ns[s], ns[s]);
    printf("\n");
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const Layer *l = &layers[i];
        Data D = data_new(l);
        long ny = data_outputs(l, &D);
        double *y64 = malloc(sizeof(double) * (size_t)ny);
        float *y32 = malloc(sizeof(float) * (size_t)ny);
        direct(l, &D, y64, y32);
        double ea, er;
        errors(y32, y64, ny, &ea, &er);
        printf("%-16s %9.2e %9.2e  ", l->name, ea, er);
        for (int s = 0; s < 4; s++) {
            if (ns[s] < l->K + 1) {
                printf(" %-21s", "-");
                continue;
            }
            fftconv(l, &D, ns[s], y32);
            errors(y32, y64, ny, &ea, &er);
            printf(" %9.2e %9.2e  ", ea, er);
            /* far inside the op tests' 1e-4 + 1e-3 relative (tests/op_harness.c) */
            assert_true(er < 2e-6);
        }
        printf("\n");
        data_free(&D);
        free(y64);
        free(y32);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
