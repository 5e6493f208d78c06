/* Tests of the Winograd transforms (lower_winograd.c) and their error.
 *
 * test_transforms_1d/2d: in double precision, A^T [(G g) * (B^T d)] (and
 * its 2D nesting A^T [(G g G^T) * (B^T d B)] A) equals the correlation of
 * the input tile d with the 3x3 filter g, for both tile sizes: the tabled
 * matrices are right.
 *
 * test_error: the numerical error of each tile size on the 3x3 stride-1
 * layers of bench/rows.py (one sample, inputs uniform in [-1, 1), weights
 * and bias uniform in +-1/sqrt(fan_in) like PyTorch's defaults), against a
 * double-precision direct convolution.  The float32 Winograd here does the
 * lowering's arithmetic in the lowering's order (transforms term by term
 * as lincomb emits them, channel sums in order with one fused multiply-add
 * each, as lgemm); beside it a float32 direct convolution summed in
 * im2col's order.  Errors are max |y - y64| and that divided by max |y64|;
 * the table is printed, docs/ir.md quotes it, and the bounds asserted
 * keep it from regressing.
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
#include "lower_winograd.h"

/* ---- the transforms, exactly ---- */

/* y [r] = M [r, k] x [k] in double */
static void matvec(const double *M, int r, int k, const double *x, double *y)
{
    for (int i = 0; i < r; i++) {
        y[i] = 0;
        for (int l = 0; l < k; l++)
            y[i] += M[i * k + l] * x[l];
    }
}

static void test_transforms_1d(void **state)
{
    (void)state;
    for (int m = 2; m <= 4; m += 2) {
        const WinoMats *T = wino_mats(m);
        assert_int_equal(T->m, m);
        assert_int_equal(T->a, m + 2);
        for (int trial = 0; trial < 20; trial++) {
            double d[WINO_AMAX], g[3], u[WINO_AMAX], v[WINO_AMAX], uv[WINO_AMAX], y[WINO_AMAX];
            for (int i = 0; i < T->a; i++)
                d[i] = uniform(-1, 1);
            for (int i = 0; i < 3; i++)
                g[i] = uniform(-1, 1);
            matvec(T->g, T->a, 3, g, u);
            matvec(T->bt, T->a, T->a, d, v);
            for (int i = 0; i < T->a; i++)
                uv[i] = u[i] * v[i];
            matvec(T->at, m, T->a, uv, y);
            for (int i = 0; i < m; i++) {
                double want = d[i] * g[0] + d[i + 1] * g[1] + d[i + 2] * g[2];
                assert_true(fabs(y[i] - want) < 1e-12);
            }
        }
    }
}

/* out [r, c] = M [r, k] X [k, k2] N^T [k2, c] in double */
static void sandwich(const double *M, int r, int k, const double *X, int k2, const double *N, int c, double *out)
{
    double t[WINO_AMAX * WINO_AMAX];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < k2; j++) {
            t[i * k2 + j] = 0;
            for (int l = 0; l < k; l++)
                t[i * k2 + j] += M[i * k + l] * X[l * k2 + j];
        }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) {
            out[i * c + j] = 0;
            for (int l = 0; l < k2; l++)
                out[i * c + j] += t[i * k2 + l] * N[j * k2 + l];
        }
}

static void test_transforms_2d(void **state)
{
    (void)state;
    for (int m = 2; m <= 4; m += 2) {
        const WinoMats *T = wino_mats(m);
        int a = T->a;
        for (int trial = 0; trial < 20; trial++) {
            double d[WINO_AMAX * WINO_AMAX], g[9], u[WINO_AMAX * WINO_AMAX], v[WINO_AMAX * WINO_AMAX];
            double y[WINO_AMAX * WINO_AMAX];
            for (int i = 0; i < a * a; i++)
                d[i] = uniform(-1, 1);
            for (int i = 0; i < 9; i++)
                g[i] = uniform(-1, 1);
            sandwich(T->g, a, 3, g, 3, T->g, a, u);
            sandwich(T->bt, a, a, d, a, T->bt, a, v);
            for (int i = 0; i < a * a; i++)
                u[i] *= v[i];
            sandwich(T->at, m, a, u, a, T->at, m, y);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < m; j++) {
                    double want = 0;
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            want += d[(i + kh) * a + j + kw] * g[kh * 3 + kw];
                    assert_true(fabs(y[i * m + j] - want) < 1e-12);
                }
        }
    }
}

/* ---- the error of float32 Winograd ---- */

/* lincomb's float arithmetic: terms in order, zeros dropped, +-1 as adds. */
static float lincomb_f(const double *c, int n, const float *x, int xstep)
{
    float s = 0;
    bool first = true;
    for (int l = 0; l < n; l++) {
        if (c[l] == 0)
            continue;
        float mag = (float)fabs(c[l]);
        float t = mag == 1.0f ? x[l * xstep] : mag * x[l * xstep];
        if (first)
            s = c[l] < 0 ? -t : t;
        else
            s = c[l] < 0 ? s - t : s + t;
        first = false;
    }
    return s;
}

/* transform()'s float arithmetic: out [r, c] = M X N^T, M X first. */
static void transform_f(const double *M, int r, int k, const double *N, int c, int k2, const float *X, float *out)
{
    float t[WINO_AMAX * WINO_AMAX];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < k2; j++)
            t[i * k2 + j] = lincomb_f(M + i * k, k, X + j, k2);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++)
            out[i * c + j] = lincomb_f(N + j * k2, k2, t + i * k2, 1);
}

/* Winograd F(m x m, 3x3) in float, in the lowering's order. */
static void winograd(const Layer *l, const Data *D, int m, float *y)
{
    const WinoMats *T = wino_mats(m);
    int a = T->a, aa = a * a, TH = (D->OH + m - 1) / m, TW = (D->OW + m - 1) / m, nt = TH * TW;
    float *U = malloc(sizeof(float) * (size_t)l->O * D->cg * aa);
    float *V = malloc(sizeof(float) * (size_t)l->C * nt * aa);
    for (long f = 0; f < (long)l->O * D->cg; f++)
        transform_f(T->g, a, 3, T->g, a, 3, D->w + f * 9, U + f * aa);
    for (int c = 0; c < l->C; c++)
        for (int t = 0; t < nt; t++) {
            float d[WINO_AMAX * WINO_AMAX];
            for (int i = 0; i < aa; i++)
                d[i] = xat(l, D, c, t / TW * m + i / a, t % TW * m + i % a);
            transform_f(T->bt, a, a, T->bt, a, a, d, V + ((long)c * nt + t) * aa);
        }
    for (int o = 0; o < l->O; o++)
        for (int t = 0; t < nt; t++) {
            float M[WINO_AMAX * WINO_AMAX], out[4 * 4];
            for (int e = 0; e < aa; e++) {
                /* lgemm: the k = 0 step stores, the others fuse */
                int c0 = o / D->og * D->cg;
                M[e] = U[((long)o * D->cg) * aa + e] * V[((long)c0 * nt + t) * aa + e];
                for (int c = 1; c < D->cg; c++)
                    M[e] = fmaf(U[((long)o * D->cg + c) * aa + e], V[((long)(c0 + c) * nt + t) * aa + e], M[e]);
            }
            transform_f(T->at, m, a, T->at, m, a, M, out);
            for (int i = 0; i < m * m; i++) {
                int oh = t / TW * m + i / m, ow = t % TW * m + i % m;
                if (oh < D->OH && ow < D->OW)
                    y[((long)o * D->OH + oh) * D->OW + ow] = out[i] + D->b[o];
            }
        }
    free(U);
    free(V);
}

static void test_error(void **state)
{
    (void)state;
    /* bench/rows.py's 3x3 stride-1 undilated layers */
    static const Layer layers[] = {
        {"conv3x3_64_56", 64, 56, 56, 64, 3, 1, 1},
        {"conv3x3_128_28", 128, 28, 28, 128, 3, 1, 1},
        {"depthwise3x3_128_56", 128, 56, 56, 128, 3, 1, 128},
        {"grouped3x3_128_g4_28", 128, 28, 28, 128, 3, 1, 4},
    };
    printf("%-22s %-21s %-21s %-21s\n", "layer (max abs, rel)", "direct f32", "F(2x2,3x3)", "F(4x4,3x3)");
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const Layer *l = &layers[i];
        Data D = data_new(l);
        long ny = data_outputs(l, &D);
        double *y64 = malloc(sizeof(double) * (size_t)ny);
        float *y32 = malloc(sizeof(float) * (size_t)ny);
        direct(l, &D, y64, y32);
        double ea[3], er[3];
        errors(y32, y64, ny, &ea[0], &er[0]);
        for (int t = 1; t <= 2; t++) {
            winograd(l, &D, 2 * t, y32);
            errors(y32, y64, ny, &ea[t], &er[t]);
        }
        printf("%-22s %9.2e %9.2e   %9.2e %9.2e   %9.2e %9.2e\n", l->name, ea[0], er[0], ea[1], er[1], ea[2],
               er[2]);
        /* far inside the op tests' 1e-4 + 1e-3 relative (tests/op_harness.c) */
        assert_true(er[1] < 4e-6);
        assert_true(er[2] < 5e-5);
        data_free(&D);
        free(y64);
        free(y32);
    }
}

/* The samples per block and the single-sample tail (wino_block,
 * wino_tail): a block takes up to 8 samples while it holds fewer than 48
 * tiles; a batch's last r samples run alone while r single samples'
 * columns (T rounded up to V lanes, each) are fewer than a block's. */
static void test_blocks(void **state)
{
    (void)state;
    /* 7x7 planes by F(4x4): 4 tiles, blocks of 8, 32 columns */
    assert_int_equal(wino_block(4), 8);
    assert_int_equal(wino_tail(4, 16), 1);  /* 16 columns a sample */
    assert_int_equal(wino_tail(4, 8), 3);   /* 8 a sample */
    assert_int_equal(wino_tail(4, 1), 7);   /* no vectors: every r < 8 */
    /* 14x14 by F(4x4): 16 tiles, blocks of 4, 64 columns */
    assert_int_equal(wino_block(16), 4);
    assert_int_equal(wino_tail(16, 16), 3);
    /* 28x28 by F(2x2): 196 tiles, one sample a block, no tail */
    assert_int_equal(wino_block(196), 1);
    assert_int_equal(wino_tail(196, 16), 0);
    /* 20 tiles, blocks of 4 (80 columns with 16 lanes, 32 a sample): 2 */
    assert_int_equal(wino_block(20), 4);
    assert_int_equal(wino_tail(20, 16), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transforms_1d),
        cmocka_unit_test(test_transforms_2d),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
