/* test_idx.c - IDX files, plain and gzipped, and the data-set checks
 * against a model. */
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

static void expect_idx_error(const char *path, int ndim, const char *needle)
{
    RtIdx x;
    RtErr e;
    if (rt_idx_read(path, ndim, &x, &e))
        fail_msg("accepted %s", path);
    expect_contains(e.msg, path);
    expect_contains(e.msg, needle);
}

static void plain_and_gzipped(void **state)
{
    (void)state;
    unsigned char pix[3 * 2 * 4];
    for (int i = 0; i < 24; i++)
        pix[i] = (unsigned char)(i * 10);
    long d[3] = {3, 2, 4};
    const char *names[2] = {"img", "img.gz"};
    for (int k = 0; k < 2; k++) {
        const char *p = path_in(dir, names[k]);
        write_idx(p, 3, d, pix);
        RtIdx x;
        RtErr e;
        if (!rt_idx_read(p, 3, &x, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(x.count, 3);
        assert_int_equal(x.d[1], 2);
        assert_int_equal(x.d[2], 4);
        assert_memory_equal(x.data, pix, sizeof pix);
        rt_idx_free(&x);
    }
    /* Larger than the reader's first buffer is not needed to test growth:
     * an empty set is the other edge. */
    long z[1] = {0};
    write_idx(path_in(dir, "empty"), 1, z, pix);
    RtIdx x;
    RtErr e;
    assert_true(rt_idx_read(path_in(dir, "empty"), 1, &x, &e));
    assert_int_equal(x.count, 0);
    rt_idx_free(&x);
}

static void malformed(void **state)
{
    (void)state;
    unsigned char pix[24] = {0};
    long d[3] = {3, 2, 4};
    const char *p = path_in(dir, "bad");
    expect_idx_error(path_in(dir, "missing"), 3, "cannot open");
    write_idx(p, 1, d, pix);
    expect_idx_error(p, 3, "not an IDX image file: magic 0x00000801, expected 0x00000803");
    write_bytes(p, "\0\0\x0d\3", 4);
    expect_idx_error(p, 3, "magic 0x00000d03");
    write_bytes(p, "\0\0", 2);
    expect_idx_error(p, 3, "not an IDX image file");
    write_bytes(p, "\0\0\x08\3\0\0\0\3\0\0", 10);
    expect_idx_error(p, 3, "truncated IDX header");
    /* Announce 3 images, deliver 2 (plain and gzipped). */
    write_bytes(p, "\0\0\x08\3\0\0\0\3\0\0\0\2\0\0\0\4" "0123456789abcdef", 32);
    expect_idx_error(p, 3, "truncated: the header announces 24 bytes of data, the file has 16");
    /* A gzip stream cut in the middle of the pixels. */
    unsigned char noise[64 * 8 * 8];
    uint32_t s = 1;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)((s = s * 1664525u + 1013904223u) >> 24);
    long d2[3] = {64, 8, 8};
    write_idx(path_in(dir, "full.gz"), 3, d2, noise);
    size_t n;
    unsigned char *gz = read_bytes(path_in(dir, "full.gz"), &n);
    write_bytes(path_in(dir, "cut.gz"), gz, n * 2 / 3);
    free(gz);
    RtIdx x;
    RtErr e;
    assert_false(rt_idx_read(path_in(dir, "cut.gz"), 3, &x, &e));
    expect_contains(e.msg, path_in(dir, "cut.gz"));
    if (!strstr(e.msg, "truncated") && !strstr(e.msg, "unexpected end of file"))
        fail_msg("not reported as truncated: %s", e.msg);
    write_bytes(p, "\0\0\x08\1\0\0\0\2" "abc", 11);
    expect_idx_error(p, 1, "unexpected data after the 2 bytes");
    write_bytes(p, "\0\0\x08\3\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 16);
    expect_idx_error(p, 3, "implausible IDX dimensions");
}

/* The four files of a data set: n images of rows x cols, labels i % 3. */
/* Counts the occurrences of needle in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* gzip as the data sets ship it: a trailer missing or cut short, bytes
 * after the stream, a corrupt CRC; and what is not a regular file. */
static void gzip_and_files(void **state)
{
    (void)state;
    unsigned char pix[5 * 4 * 4];
    for (size_t i = 0; i < sizeof pix; i++)
        pix[i] = (unsigned char)(i * 7);
    long d[3] = {5, 4, 4};
    const char *good = path_in(dir, "g.gz"), *p = path_in(dir, "bad.gz");
    write_idx(good, 3, d, pix);
    size_t n;
    unsigned char *raw = read_bytes(good, &n);
    unsigned char *buf = malloc(2 * n + 8);
    /* The CRC-32 and length trailer is the last 8 bytes. */
    for (size_t cut = 1; cut <= 8; cut++) {
        write_bytes(p, raw, n - cut);
        expect_idx_error(p, 3, "truncated gzip data");
    }
    memcpy(buf, raw, n);
    memcpy(buf + n, "junk", 4);
    write_bytes(p, buf, n + 4);
    expect_idx_error(p, 3, "4 bytes after the end of the gzip data that are not gzip");
    memset(buf + n, 0, 4);
    write_bytes(p, buf, n + 4);
    expect_idx_error(p, 3, "after the end of the gzip data");
    memcpy(buf, raw, n);
    buf[n - 8] ^= 1; /* the CRC */
    write_bytes(p, buf, n);
    RtIdx x;
    RtErr e;
    assert_false(rt_idx_read(p, 3, &x, &e));
    expect_contains(e.msg, "corrupt gzip data: incorrect data check");
    /* The path once, not again from zlib's own message. */
    assert_int_equal(count_of(e.msg, p), 1);
    /* Two members make one file (gzip's concatenation). */
    const char *half = path_in(dir, "half.gz");
    write_idx(half, 3, d, pix);
    unsigned char *h = read_bytes(half, &n);
    gzFile gz = gzopen(path_in(dir, "tail.gz"), "wb");
    assert_int_equal(gzwrite(gz, pix, 1), 1);
    gzclose(gz);
    size_t tn;
    unsigned char *tail = read_bytes(path_in(dir, "tail.gz"), &tn);
    memcpy(buf, h, n);
    memcpy(buf + n, tail, tn);
    write_bytes(p, buf, n + tn);
    expect_idx_error(p, 3, "unexpected data after the 80 bytes");
    free(h);
    free(tail);
    free(raw);
    free(buf);
    /* A header announcing more than the compressed bytes can hold is
     * refused before anything is allocated for it. */
    long huge[3] = {60000, 28, 28};
    gz = gzopen(p, "wb");
    unsigned char head[16] = {0, 0, 8, 3};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++)
            head[4 + 4 * i + k] = (unsigned char)(huge[i] >> (24 - 8 * k));
    gzwrite(gz, head, 16);
    gzclose(gz);
    expect_idx_error(p, 3, "truncated: the header announces 47040000 bytes of data, more than");

    expect_idx_error("/dev/zero", 3, "/dev/zero: is a character device, not a regular file");
    expect_idx_error(dir, 3, ": is a directory, not a file");
}

static void write_set(const char *prefix, long n, long rows, long cols, int label_max)
{
    unsigned char *pix = calloc((size_t)(n * rows * cols) + 1, 1), *lab = calloc((size_t)n + 1, 1);
    for (long i = 0; i < n; i++)
        lab[i] = (unsigned char)(i % label_max);
    char name[64];
    long di[3] = {n, rows, cols}, dl[1] = {n};
    snprintf(name, sizeof name, "%s-images-idx3-ubyte.gz", prefix);
    write_idx(path_in(dir, name), 3, di, pix);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    write_idx(path_in(dir, name), 1, dl, lab);
    free(pix);
    free(lab);
}

static const char *model_meta =
    "netc 1\nname m\nparams 0\narena 0 0\ninput x 3 1 4 4\noutput y 1 3\n"
    "train loss softmax_cross_entropy\ntrain target class 0\n"
    "train optimizer sgd 0.1 0 0 0\ntrain batch 4\ntrain epochs 1\ntrain seed 1\nend\n";

static void expect_load_error(const RtMeta *m, const char *needle)
{
    RtData d;
    RtErr e;
    if (rt_data_load(&d, m, dir, true, 0, 0, false, &e))
        fail_msg("loaded a bad data set");
    expect_contains(e.msg, needle);
}

static void data_set_checks(void **state)
{
    (void)state;
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, model_meta, &e), e);
    expect_load_error(&m, "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz");
    write_set("train", 10, 4, 4, 3);
    write_set("t10k", 5, 4, 4, 3);
    RtData d;
    if (!rt_data_load(&d, &m, dir, true, 6, 0, false, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(d.classes, 3);
    assert_int_equal(d.train.n, 6); /* --limit */
    assert_int_equal(d.test.n, 5);
    assert_int_equal(d.train.pixels, 16);
    rt_data_free(&d);

    write_set("t10k", 5, 5, 4, 3);
    expect_load_error(&m, "images are 5x4, the model's input 'x' is [1,4,4]");
    write_set("t10k", 5, 4, 4, 4);
    expect_load_error(&m, "label 3 of sample 3 is out of range: the model has 3 classes");
    write_set("t10k", 5, 4, 4, 3);
    long dl[1] = {4};
    unsigned char lab[4] = {0};
    write_idx(path_in(dir, "t10k-labels-idx1-ubyte"), 1, dl, lab);
    expect_load_error(&m, "4 labels for 5 images");
    rt_meta_free(&m);

    /* One label per image cannot be a class index per position. */
    static const char *seg_meta =
        "netc 1\nname m\nparams 0\narena 0 0\ninput x 3 1 4 4\noutput y 3 3 4 4\n"
        "train loss softmax_cross_entropy\ntrain target class 2 4 4\n"
        "train optimizer sgd 0.1 0 0 0\ntrain batch 4\ntrain epochs 1\ntrain seed 1\nend\n";
    assert_ok(rt_meta_parse(&m, seg_meta, &e), e);
    expect_load_error(&m, "the model's target is a class index per position (rank 2); idx data "
                      "provides one class label per image");
    rt_meta_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_and_gzipped),
        cmocka_unit_test(malformed),
        cmocka_unit_test(gzip_and_files),
        cmocka_unit_test(data_set_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
