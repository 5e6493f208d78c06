/* test_npy.c - .npy reading and writing: round trips and every malformed
 * file predict can be handed. */
#include "rt_test.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmpdir_remove(dir);
    return 0;
}

/* A .npy file from a header dict and n floats, as numpy would lay it out
 * (version 1.0). */
static void write_npy(const char *path, const char *dict, const float *data, size_t n,
                      int major)
{
    unsigned char buf[4096];
    size_t hl = strlen(dict), k = 0;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    if (major == 1) {
        buf[8] = (unsigned char)hl;
        buf[9] = (unsigned char)(hl >> 8);
        k = 10;
    } else {
        buf[8] = (unsigned char)hl;
        buf[9] = (unsigned char)(hl >> 8);
        buf[10] = buf[11] = 0;
        k = 12;
    }
    memcpy(buf + k, dict, hl);
    k += hl;
    memcpy(buf + k, data, n * 4);
    write_bytes(path, buf, k + n * 4);
}

static void expect_error(const char *path, const char *needle)
{
    RtArray a;
    RtErr e;
    assert_false(rt_npy_read(path, &a, &e));
    expect_contains(e.msg, path);
    expect_contains(e.msg, needle);
}

static void round_trip(void **state)
{
    (void)state;
    float v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (float)i * 0.5f - 3.0f;
    RtArray a = {.rank = 3, .d = {2, 3, 4}, .numel = 24, .data = v};
    RtErr e;
    const char *p = path_in(dir, "x.npy");
    assert_true(rt_npy_write(p, &a, &e));
    size_t n;
    unsigned char *raw = read_bytes(p, &n);
    /* numpy's layout: the data starts on a 64-byte boundary after '\n'. */
    assert_int_equal((n - 24 * 4) % 64, 0);
    assert_int_equal(raw[n - 24 * 4 - 1], '\n');
    assert_non_null(strstr((char *)raw + 10, "'shape': (2, 3, 4)"));
    free(raw);
    RtArray b;
    if (!rt_npy_read(p, &b, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(b.rank, 3);
    assert_int_equal(b.d[0], 2);
    assert_int_equal(b.d[2], 4);
    assert_memory_equal(b.data, v, sizeof v);
    rt_array_free(&b);

    /* Rank 1 needs the tuple comma: (5,). */
    RtArray c = {.rank = 1, .d = {5}, .numel = 5, .data = v};
    assert_true(rt_npy_write(p, &c, &e));
    raw = read_bytes(p, &n);
    assert_non_null(strstr((char *)raw + 10, "'shape': (5,)"));
    free(raw);
    assert_true(rt_npy_read(p, &b, &e));
    assert_int_equal(b.rank, 1);
    rt_array_free(&b);
    assert_int_equal(tmpdir_count(dir), 1); /* no temporary left behind */
}

static void reads_numpy_variants(void **state)
{
    (void)state;
    float v[6] = {1, 2, 3, 4, 5, 6};
    const char *p = path_in(dir, "v.npy");
    RtArray a;
    RtErr e;
    /* Keys in another order, double quotes, no trailing comma, version 2.0. */
    write_npy(p, "{\"shape\": (2, 3), 'fortran_order': False, 'descr': '<f4'}   \n", v, 6, 2);
    if (!rt_npy_read(p, &a, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(a.rank, 2);
    assert_int_equal(a.d[1], 3);
    assert_true(a.data[5] == 6.0f);
    rt_array_free(&a);
    /* A scalar: shape (). */
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", v, 1, 1);
    assert_true(rt_npy_read(p, &a, &e));
    assert_int_equal(a.rank, 0);
    assert_int_equal(a.numel, 1);
    rt_array_free(&a);
}

static void malformed(void **state)
{
    (void)state;
    float v[6] = {0};
    const char *p = path_in(dir, "bad.npy");
    expect_error(path_in(dir, "missing.npy"), "cannot open");
    write_bytes(p, "PK\3\4 not numpy", 15);
    expect_error(p, "bad magic");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n", v, 6, 1);
    unsigned char *raw;
    size_t n;
    raw = read_bytes(p, &n);
    raw[6] = 4;
    write_bytes(p, raw, n);
    expect_error(p, "unsupported .npy version 4.0");
    free(raw);
    write_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }\n", v, 6, 1);
    expect_error(p, "expected '<f4'");
    write_npy(p, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }\n", v, 6, 1);
    expect_error(p, "'>f4' not supported");
    write_npy(p, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", v, 6, 1);
    expect_error(p, "Fortran-order");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }\n", v, 6, 1);
    expect_error(p, "truncated data: shape [2,4] needs 32 bytes, the file has 24");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n", v, 6, 1);
    expect_error(p, "4 bytes of unexpected data");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False}\n", v, 6, 1);
    expect_error(p, "no 'shape'");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (6), }\n", v, 6, 1);
    expect_error(p, "'shape' is not a tuple");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}\n", v, 6, 1);
    expect_error(p, "unexpected or duplicate key");
    write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999,)}\n", v, 6,
              1);
    expect_error(p, "dimension too large");
    /* Header length past the end of the file. */
    write_bytes(p, "\x93NUMPY\1\0\xff\x7f{", 11);
    expect_error(p, "truncated .npy header");
    write_bytes(p, "\x93NUMPY\1", 7);
    expect_error(p, "bad magic");
}

/* Truncating or damaging any byte of the header never crashes the reader. */
static void survives_corruption(void **state)
{
    (void)state;
    float v[12] = {0};
    RtArray a = {.rank = 2, .d = {3, 4}, .numel = 12, .data = v}, b;
    RtErr e;
    const char *good = path_in(dir, "good.npy"), *bad = path_in(dir, "damaged.npy");
    assert_ok(rt_npy_write(good, &a, &e), e);
    size_t n;
    unsigned char *raw = read_bytes(good, &n);
    for (size_t len = 0; len < n; len++) {
        write_bytes(bad, raw, len);
        assert_false(rt_npy_read(bad, &b, &e));
    }
    static const unsigned char junk[] = {0, 0xff, '(', ')', ',', '\'', '9', ' ', '{', '}'};
    for (size_t i = 0; i < n - sizeof v; i++)
        for (size_t k = 0; k < sizeof junk; k++) {
            unsigned char old = raw[i];
            raw[i] = junk[k];
            write_bytes(bad, raw, n);
            if (rt_npy_read(bad, &b, &e))
                rt_array_free(&b);
            raw[i] = old;
        }
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(reads_numpy_variants),
        cmocka_unit_test(malformed),
        cmocka_unit_test(survives_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
