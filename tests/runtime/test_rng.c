/* test_rng.c - the generator's determinism and documented sequence, the
 * shuffle, and the statistics of every initialiser. */
#include <math.h>

#include "rt_test.h"

static void pcg32_reference(void **state)
{
    (void)state;
    /* pcg32-demo's published output for pcg32_srandom(42, 54). */
    static const uint32_t want[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
                                     0x83d2f293, 0xbfa4784b, 0xcbed606e};
    RtRng r;
    rt_rng_seed(&r, 42, 54);
    for (int i = 0; i < 6; i++)
        assert_int_equal(rt_rng_next(&r), want[i]);
}

static void deterministic(void **state)
{
    (void)state;
    RtRng a, b, c;
    rt_rng_seed(&a, 7, RT_STREAM_DATA);
    rt_rng_seed(&b, 7, RT_STREAM_DATA);
    rt_rng_seed(&c, 8, RT_STREAM_DATA);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        double x = rt_rng_normal(&a);
        assert_true(x == rt_rng_normal(&b));
        same_c += x == rt_rng_normal(&c);
    }
    assert_int_equal(same_c, 0);
    for (int i = 0; i < 1000; i++) {
        double u = rt_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        assert_true(rt_rng_below(&a, 7) < 7);
    }
}

static void shuffle_is_a_permutation(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint32_t a[N], b[N], seen[N] = {0};
    RtRng r1, r2;
    rt_rng_seed(&r1, 3, RT_STREAM_DATA);
    rt_rng_seed(&r2, 3, RT_STREAM_DATA);
    for (uint32_t i = 0; i < N; i++)
        a[i] = b[i] = i;
    rt_rng_shuffle(&r1, a, N);
    rt_rng_shuffle(&r2, b, N);
    assert_memory_equal(a, b, sizeof a);
    int fixed = 0;
    for (uint32_t i = 0; i < N; i++) {
        seen[a[i]]++;
        fixed += a[i] == i;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_true(fixed < 10); /* expected 1 for a random permutation */
}

static void moments(const float *w, long n, double *mean, double *std, double *lo, double *hi)
{
    double s = 0, s2 = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (long i = 0; i < n; i++) {
        s += w[i];
        s2 += (double)w[i] * w[i];
        *lo = w[i] < *lo ? w[i] : *lo;
        *hi = w[i] > *hi ? w[i] : *hi;
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

static void init_statistics(void **state)
{
    (void)state;
    /* 20000 values per param: the sample std is within ~1% of the truth. */
    const char *text =
        "netc 1\nname init\nparams 140005\narena 0 0\ninput x 1 1\noutput y 1 1\n"
        "param hu 0 20000 2 100 200 he_uniform 0 0 50 10\n"
        "param hn 20000 20000 2 100 200 he_normal 0 0 50 10\n"
        "param xu 40000 20000 2 100 200 xavier_uniform 0 0 50 100\n"
        "param xn 60000 20000 2 100 200 xavier_normal 0 0 50 100\n"
        "param un 80000 20000 1 20000 uniform -2 6 1 1\n"
        "param no 100000 20000 1 20000 normal 3 0.5 1 1\n"
        "param ze 120000 20000 1 20000 zero 0 0 1 1\n"
        "end\n";
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, text, &e), e);
    float *p = calloc((size_t)m.params, sizeof *p), *q = calloc((size_t)m.params, sizeof *q);
    for (long i = 0; i < m.params; i++)
        p[i] = 99.0f; /* gaps and zero params must come out 0 */
    rt_init_params(&m, p, 11);
    rt_init_params(&m, q, 11);
    assert_memory_equal(p, q, (size_t)m.params * sizeof *p);
    static const struct {
        const char *name;
        /* normal: the std; uniform: the bounds lo, hi (std (hi-lo)/sqrt(12)) */
        double mean, std, lo, hi;
    } want[] = {
        {"hu", 0, 0, -0.34641016, 0.34641016}, /* sqrt(6/50) */
        {"hn", 0, 0.2, 0, 0},                  /* sqrt(2/50) */
        {"xu", 0, 0, -0.2, 0.2},               /* sqrt(6/150) */
        {"xn", 0, 0.11547005, 0, 0},           /* sqrt(2/150) */
        {"un", 2, 0, -2, 6},
        {"no", 3, 0.5, 0, 0},
        {"ze", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const RtParam *pa = rt_meta_param(&m, want[i].name);
        double mean, std, lo, hi, wstd = want[i].std;
        moments(p + pa->offset, pa->t.numel, &mean, &std, &lo, &hi);
        if (want[i].hi != 0)
            wstd = (want[i].hi - want[i].lo) / sqrt(12.0);
        if (fabs(mean - want[i].mean) > 0.03 * (wstd > 0 ? wstd : 1) + 1e-12 ||
            fabs(std - wstd) > 0.02 * wstd + 1e-12)
            fail_msg("%s: mean %g std %g, expected %g and %g", want[i].name, mean, std,
                     want[i].mean, wstd);
        if (want[i].hi != 0 && (lo < want[i].lo || hi > want[i].hi))
            fail_msg("%s: values in [%g, %g], expected within [%g, %g]", want[i].name, lo, hi,
                     want[i].lo, want[i].hi);
    }
    assert_true(p[140000] == 0.0f);
    rt_init_params(&m, q, 12);
    assert_true(memcmp(p, q, 20000 * sizeof *p) != 0);
    free(p);
    free(q);
    rt_meta_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pcg32_reference),
        cmocka_unit_test(deterministic),
        cmocka_unit_test(shuffle_is_a_permutation),
        cmocka_unit_test(init_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
