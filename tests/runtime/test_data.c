/* test_data.c - the data sources, conversions and augmentation.
 *
 * Each source is written here in miniature (.npy arrays, CIFAR batches,
 * IDX files; the PNG and JPEG files are committed in tests/runtime/data,
 * written by gen_images.py) and loaded through rt_data_load; rt_gather
 * then shows the values the model would see.  Resized values are checked
 * against PyTorch's interpolate(mode="bilinear", align_corners=False),
 * computed once and written here.  Then every kind of bad file, which must
 * give an error naming it.
 */
#include "rt_test.h"

#include <math.h>

static char *dir;

/* A temporary tree (the image folders have sub-folders). */
static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        remove_tree(p);
    }
    closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_tree(dir);
    free(dir);
    return 0;
}

/* A .npy file of `descr` with the given shape and raw data. */
static void write_npy(const char *path, const char *descr, const long *d, int rank,
                      const void *data, size_t bytes)
{
    char dict[256];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < rank; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%ld,%s", d[i], i + 1 < rank ? " " : "");
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    size_t total = (10 + (size_t)k + 1 + 63) / 64 * 64, hlen = total - 10;
    unsigned char *buf = calloc(1, total + bytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)k);
    memset(buf + 10 + k, ' ', hlen - (size_t)k - 1);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, bytes);
    write_bytes(path, buf, total + bytes);
    free(buf);
}

/* A model description with input [c, h, w], `classes` outputs and the
 * given data records. */
static void meta_for(RtMeta *m, int c, int h, int w, int classes, const char *data)
{
    char text[4096];
    snprintf(text, sizeof text,
             "netc 1\nname t\nparams 0\narena 0 0\ninput x 3 %d %d %d\noutput y 1 %d\n"
             "train loss softmax_cross_entropy\ntrain target class 0\n"
             "train optimizer sgd 0.1 0 0 0\ntrain batch 4\ntrain epochs 1\ntrain seed 1\n"
             "%send\n", c, h, w, classes, data);
    RtErr e;
    assert_ok(rt_meta_parse(m, text, &e), e);
}

static void load_ok(RtData *d, const RtMeta *m, bool train, bool skip_bad)
{
    RtErr e;
    if (!rt_data_load(d, m, NULL, train, 0, 0, skip_bad, &e))
        fail_msg("%s", e.msg);
}

static void expect_error(const RtMeta *m, bool train, const char *needle)
{
    RtData d;
    RtErr e;
    if (rt_data_load(&d, m, NULL, train, 0, 0, false, &e))
        fail_msg("loaded a bad data set (wanted '%s')", needle);
    expect_contains(e.msg, needle);
}

/* The model's view of test sample i (no augmentation). */
static void sample(const RtData *d, const RtSplit *s, long i, float *x)
{
    rt_gather(x, s, &d->view, NULL, i, 1, NULL);
}

/* ---- .npy ---------------------------------------------------------------- */

static void npy_set(const char *name, const char *ldescr, int n, unsigned char first_label)
{
    unsigned char x[8 * 12];
    long long y[8];
    for (int i = 0; i < n * 12; i++)
        x[i] = (unsigned char)(i * 7 % 256);
    for (int i = 0; i < n; i++)
        y[i] = (first_label + i) % 3;
    long dx[4] = {n, 3, 2, 2}, dy[1] = {n};
    char p[64];
    snprintf(p, sizeof p, "%s_x.npy", name);
    write_npy(path_in(dir, p), "|u1", dx, 4, x, (size_t)n * 12);
    snprintf(p, sizeof p, "%s_y.npy", name);
    unsigned char y8[8];
    for (int i = 0; i < n; i++)
        y8[i] = (unsigned char)y[i];
    bool bytes = !strcmp(ldescr, "|u1");
    write_npy(path_in(dir, p), ldescr, dy, 1, bytes ? (void *)y8 : (void *)y,
              (size_t)n * (bytes ? 1 : 8));
}

static const char *npy_records(const char *extra)
{
    static char r[2048];
    snprintf(r, sizeof r, "train data npy %s/train_x.npy\ntrain datafile labels %s/train_y.npy\n%s",
             dir, dir, extra);
    return r;
}

static void npy_loads(void **state)
{
    (void)state;
    npy_set("train", "<i8", 8, 0);
    float tx[2 * 12];
    for (int i = 0; i < 24; i++)
        tx[i] = (float)i / 10;
    long dtx[4] = {2, 3, 2, 2}, dty[1] = {2};
    int32_t ty[2] = {2, 1};
    write_npy(path_in(dir, "test_x.npy"), "<f4", dtx, 4, tx, sizeof tx);
    write_npy(path_in(dir, "test_y.npy"), "<i4", dty, 1, ty, sizeof ty);
    char extra[1024];
    snprintf(extra, sizeof extra, "train datafile test %s/test_x.npy\n"
             "train datafile test_labels %s/test_y.npy\n", dir, dir);
    RtMeta m;
    meta_for(&m, 3, 2, 2, 3, npy_records(extra));
    RtData d;
    load_ok(&d, &m, true, false);
    assert_int_equal(d.train.n, 8);
    assert_int_equal(d.test.n, 2);
    float x[12];
    sample(&d, &d.train, 5, x);
    for (int k = 0; k < 12; k++)
        assert_float_equal(x[k], (float)((5 * 12 + k) * 7 % 256) / 255.0f, 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(rt_split_label(&d.train, i), i % 3);
    sample(&d, &d.test, 1, x);
    for (int k = 0; k < 12; k++)
        assert_float_equal(x[k], (float)(12 + k) / 10, 0);
    assert_int_equal(rt_split_label(&d.test, 0), 2);
    rt_data_free(&d);
    rt_meta_free(&m);
}

static void npy_split(void **state)
{
    (void)state;
    npy_set("train", "|u1", 8, 0);
    RtMeta m;
    meta_for(&m, 3, 2, 2, 3, npy_records("train dataopt split 0.25\n"));
    RtData d, again;
    load_ok(&d, &m, true, false);
    load_ok(&again, &m, true, false);
    assert_int_equal(d.train.n, 6);
    assert_int_equal(d.test.n, 2);
    int seen[8] = {0};
    for (long i = 0; i < d.train.n; i++)
        seen[rt_split_at(&d.train, i)]++;
    for (long i = 0; i < d.test.n; i++) {
        seen[rt_split_at(&d.test, i)]++;
        assert_int_equal(rt_split_at(&d.test, i), rt_split_at(&again.test, i));
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(seen[i], 1); /* disjoint, and everything used */
    rt_data_free(&again);
    /* eval sees the same held-out samples */
    load_ok(&again, &m, false, false);
    assert_int_equal(again.train.n, 0);
    for (long i = 0; i < d.test.n; i++)
        assert_int_equal(rt_split_at(&d.test, i), rt_split_at(&again.test, i));
    rt_data_free(&again);
    rt_data_free(&d);
    rt_meta_free(&m);
}

/* Labels past 255: a 1000-class model (ImageNet's) reads them back whole. */
static void npy_many_classes(void **state)
{
    (void)state;
    npy_set("train", "<i8", 8, 0);
    long long y[8] = {999, 256, 300, 0, 5, 998, 257, 1};
    long dy[1] = {8};
    write_npy(path_in(dir, "train_y.npy"), "<i8", dy, 1, y, sizeof y);
    RtMeta m;
    meta_for(&m, 3, 2, 2, 1000, npy_records("train dataopt split 0.25\n"));
    RtData d;
    load_ok(&d, &m, true, false);
    assert_int_equal(d.classes, 1000);
    for (long i = 0; i < d.train.n; i++)
        assert_int_equal(rt_split_label(&d.train, i), y[rt_split_at(&d.train, i)]);
    for (long i = 0; i < d.test.n; i++)
        assert_int_equal(rt_split_label(&d.test, i), y[rt_split_at(&d.test, i)]);
    rt_data_free(&d);
    y[3] = 1000;
    write_npy(path_in(dir, "train_y.npy"), "<i8", dy, 1, y, sizeof y);
    expect_error(&m, true, "label 1000 of sample 3 is out of range: the model has 1000");
    rt_meta_free(&m);
}

static void npy_errors(void **state)
{
    (void)state;
    RtMeta m;
    meta_for(&m, 3, 2, 2, 3, npy_records("train dataopt split 0.25\n"));
    npy_set("train", "<i8", 8, 0);
    long d5[4] = {8, 3, 2, 2}, d1[1] = {8};
    double f64[96] = {0};
    write_npy(path_in(dir, "train_x.npy"), "<f8", d5, 4, f64, 96 * 8);
    expect_error(&m, true, "train_x.npy: dtype '<f8' not supported: expected uint8");
    int32_t i32[96] = {0};
    write_npy(path_in(dir, "train_x.npy"), "<i4", d5, 4, i32, sizeof i32);
    expect_error(&m, true, "images of dtype '<i4': expected uint8 ('|u1', read as x / 255)");
    long d33[4] = {8, 1, 3, 3};
    unsigned char b[96] = {0};
    write_npy(path_in(dir, "train_x.npy"), "|u1", d33, 4, b, 72);
    expect_error(&m, true, "train_x.npy: images are 3x3, the model's input 'x' is [3,2,2]");
    write_npy(path_in(dir, "train_x.npy"), "|u1", d5, 4, b, 95);
    expect_error(&m, true, "train_x.npy: truncated data: shape [8,3,2,2] needs 96 bytes");
    float nan[96] = {0};
    nan[50] = NAN;
    write_npy(path_in(dir, "train_x.npy"), "<f4", d5, 4, nan, sizeof nan);
    expect_error(&m, true, "train_x.npy: value 50 (in sample 4) is not finite");
    npy_set("train", "<i8", 8, 0);
    long long y[8] = {0, 1, 2, 7, 0, 1, 2, 0};
    write_npy(path_in(dir, "train_y.npy"), "<i8", d1, 1, y, sizeof y);
    expect_error(&m, true, "train_y.npy: label 7 of sample 3 is out of range: the model has 3");
    y[3] = -1;
    write_npy(path_in(dir, "train_y.npy"), "<i8", d1, 1, y, sizeof y);
    expect_error(&m, true, "label -1 of sample 3 is out of range");
    long d4[1] = {4};
    write_npy(path_in(dir, "train_y.npy"), "<i8", d4, 1, y, 32);
    expect_error(&m, true, "train_y.npy: 4 labels for 8 images");
    write_npy(path_in(dir, "train_y.npy"), "<f4", d1, 1, nan, 32);
    expect_error(&m, true, "labels of dtype '<f4': expected an integer dtype");
    write_bytes(path_in(dir, "train_y.npy"), "not numpy", 9);
    expect_error(&m, true, "train_y.npy: not a .npy file");
    rt_meta_free(&m);
    meta_for(&m, 3, 2, 2, 3, npy_records(""));
    expect_error(&m, true, "npy data needs test arrays");
    rt_meta_free(&m);
}

/* ---- CIFAR --------------------------------------------------------------- */

/* n records of label_bytes labels (label i % 10 and i % 100 for record i
 * of the file, fine = coarse + 0) and pixels (i * 3 + k) % 256. */
static void cifar_file(const char *name, int n, int label_bytes, int first, size_t cut)
{
    size_t rec = (size_t)label_bytes + 3072;
    unsigned char *buf = calloc((size_t)n, rec);
    for (int i = 0; i < n; i++) {
        unsigned char *r = buf + (size_t)i * rec;
        r[0] = (unsigned char)((first + i) % (label_bytes == 1 ? 10 : 20));
        if (label_bytes == 2)
            r[1] = (unsigned char)((first + i) * 7 % 100);
        for (int k = 0; k < 3072; k++)
            r[label_bytes + k] = (unsigned char)((first + i) * 3 + k);
    }
    write_bytes(path_in(dir, name), buf, (size_t)n * rec - cut);
    free(buf);
}

static void cifar10_loads(void **state)
{
    (void)state;
    char name[64];
    for (int b = 1; b <= 5; b++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        cifar_file(name, 2, 1, 2 * (b - 1), 0);
    }
    cifar_file("test_batch.bin", 3, 1, 100, 0);
    char rec[1024];
    snprintf(rec, sizeof rec, "train data cifar10 %s\n", dir);
    RtMeta m;
    meta_for(&m, 3, 32, 32, 10, rec);
    RtData d;
    load_ok(&d, &m, true, false);
    assert_int_equal(d.train.n, 10);
    assert_int_equal(d.test.n, 3);
    float *x = malloc(3072 * sizeof *x);
    sample(&d, &d.train, 7, x);
    for (int k = 0; k < 3072; k += 97)
        assert_float_equal(x[k], (float)((7 * 3 + k) % 256) / 255.0f, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rt_split_label(&d.train, i), i);
    assert_int_equal(rt_split_label(&d.test, 2), 102 % 10);
    free(x);
    rt_data_free(&d);

    cifar_file("data_batch_3.bin", 2, 1, 0, 5);
    expect_error(&m, true, "data_batch_3.bin: 6141 bytes: not a whole number of 3073-byte "
                 "CIFAR-10 records");
    write_bytes(path_in(dir, "data_batch_3.bin"), "", 0);
    expect_error(&m, true, "data_batch_3.bin: 0 bytes");
    cifar_file("data_batch_3.bin", 2, 1, 0, 0);
    unsigned char bad[3073] = {11};
    write_bytes(path_in(dir, "test_batch.bin"), bad, sizeof bad);
    expect_error(&m, false, "test_batch.bin: record 0: label 11 is out of range: CIFAR-10 has 10");
    unlink(path_in(dir, "data_batch_5.bin"));
    expect_error(&m, true, "data_batch_5.bin: cannot open");
    rt_meta_free(&m);
    meta_for(&m, 3, 32, 32, 5, rec);
    expect_error(&m, false, "the model predicts 5 classes; CIFAR-10 has 10");
    rt_meta_free(&m);
    meta_for(&m, 1, 32, 32, 10, rec);
    cifar_file("test_batch.bin", 3, 1, 100, 0);
    expect_error(&m, false, "test_batch.bin: samples are [3,32,32], the model's input 'x' is "
                 "[1,32,32]");
    rt_meta_free(&m);
}

static void cifar100_labels(void **state)
{
    (void)state;
    cifar_file("train.bin", 4, 2, 0, 0);
    cifar_file("test.bin", 3, 2, 10, 0);
    char rec[1024];
    snprintf(rec, sizeof rec, "train data cifar100 %s\n", dir);
    RtMeta m;
    meta_for(&m, 3, 32, 32, 100, rec);
    RtData d;
    load_ok(&d, &m, true, false);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rt_split_label(&d.train, i), i * 7 % 100);
    rt_data_free(&d);
    rt_meta_free(&m);
    snprintf(rec, sizeof rec, "train data cifar100 %s\ntrain dataopt label coarse\n", dir);
    meta_for(&m, 3, 32, 32, 20, rec);
    load_ok(&d, &m, true, false);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rt_split_label(&d.test, i), (10 + i) % 20);
    rt_data_free(&d);
    cifar_file("test.bin", 3, 1, 0, 0); /* CIFAR-10 records: 9219 bytes */
    expect_error(&m, false, "test.bin: 9219 bytes: not a whole number of 3074-byte CIFAR-100");
    rt_meta_free(&m);
}

/* ---- IDX conversions, augmentation --------------------------------------- */

/* 4x4 images of bytes 16 * k (+ i for sample i), labels i % 3. */
static void idx_set(const char *prefix, long n)
{
    unsigned char pix[16 * 16], lab[16];
    for (long i = 0; i < n; i++) {
        lab[i] = (unsigned char)(i % 3);
        for (int k = 0; k < 16; k++)
            pix[i * 16 + k] = (unsigned char)(16 * k + i);
    }
    long di[3] = {n, 4, 4}, dl[1] = {n};
    char p[128];
    snprintf(p, sizeof p, "%s-images-idx3-ubyte", prefix);
    write_idx(path_in(dir, p), 3, di, pix);
    snprintf(p, sizeof p, "%s-labels-idx1-ubyte", prefix);
    write_idx(path_in(dir, p), 1, dl, lab);
}

static void idx_grey_to_rgb_resized(void **state)
{
    (void)state;
    idx_set("train", 6);
    idx_set("t10k", 3);
    char rec[1024];
    snprintf(rec, sizeof rec, "train data fashion_mnist %s\ntrain dataopt channels 3\n"
             "train dataopt size 6\n", dir);
    RtMeta m;
    meta_for(&m, 3, 6, 6, 3, rec);
    RtData d;
    load_ok(&d, &m, true, false);
    float x[3 * 36];
    sample(&d, &d.test, 0, x);
    /* F.interpolate(x, size=(6, 6), mode="bilinear"), first two rows */
    static const float want[12] = {0.0f, 0.031373f, 0.073203f, 0.115033f, 0.156863f, 0.188235f,
                                   0.12549f, 0.156863f, 0.198693f, 0.240523f, 0.282353f,
                                   0.313726f};
    for (int k = 0; k < 12; k++)
        assert_float_equal(x[k], want[k], 1e-5);
    for (int k = 0; k < 36; k++) {
        assert_float_equal(x[36 + k], x[k], 0);
        assert_float_equal(x[72 + k], x[k], 0);
    }
    rt_data_free(&d);
    rt_meta_free(&m);
    snprintf(rec, sizeof rec, "train data fashion_mnist %s\n", dir);
    meta_for(&m, 3, 6, 6, 3, rec);
    expect_error(&m, true, "train-images-idx3-ubyte: images are 4x4, the model's input 'x' is "
                 "[3,6,6]");
    rt_meta_free(&m);
}

/* Output of crop (dy, dx) then flip of the 4x4 sample i, as batch.c
 * defines it, written independently. */
static float expected_aug(long i, int pad, int dy, int dx, bool flip, int y, int x)
{
    int fx = flip ? 3 - x : x, sy = y + dy - pad, sx = fx + dx - pad;
    if (sy < 0 || sy > 3 || sx < 0 || sx > 3)
        return 0;
    return (float)(16 * (sy * 4 + sx) + i) / 255.0f;
}

static bool matches_some_aug(const float *x, long i, int pad)
{
    for (int dy = 0; dy <= 2 * pad; dy++)
        for (int dx = 0; dx <= 2 * pad; dx++)
            for (int f = 0; f < 2; f++) {
                bool same = true;
                for (int k = 0; k < 16 && same; k++)
                    same = x[k] == expected_aug(i, pad, dy, dx, f, k / 4, k % 4);
                if (same)
                    return true;
            }
    return false;
}

static void augmentation_reproducible(void **state)
{
    (void)state;
    idx_set("train", 16);
    idx_set("t10k", 3);
    char rec[1024];
    snprintf(rec, sizeof rec, "train data idx %s\ntrain augment crop 1\ntrain augment flip\n", dir);
    RtMeta m;
    meta_for(&m, 1, 4, 4, 3, rec);
    RtData d;
    load_ok(&d, &m, true, false);
    assert_int_equal(d.view.crop_pad, 1);
    assert_true(d.view.flip);
    float a[16 * 16], b[16 * 16], c[16 * 16];
    RtRng r;
    rt_aug_seed(&r, 7, 0);
    rt_gather(a, &d.train, &d.view, NULL, 0, 16, &r);
    rt_aug_seed(&r, 7, 0);
    rt_gather(b, &d.train, &d.view, NULL, 0, 16, &r);
    rt_aug_seed(&r, 7, 1);
    rt_gather(c, &d.train, &d.view, NULL, 0, 16, &r);
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);
    int changed = 0;
    for (long i = 0; i < 16; i++) {
        assert_true(matches_some_aug(a + i * 16, i, 1));
        changed += a[i * 16 + 5] != expected_aug(i, 1, 1, 1, false, 1, 1);
    }
    assert_true(changed > 0);
    /* the test set is never augmented */
    sample(&d, &d.test, 2, a);
    for (int k = 0; k < 16; k++)
        assert_float_equal(a[k], (float)(16 * k + 2) / 255.0f, 0);
    rt_data_free(&d);
    rt_meta_free(&m);
}

static void normalisation(void **state)
{
    (void)state;
    idx_set("train", 4);
    idx_set("t10k", 2);
    char rec[1024];
    snprintf(rec, sizeof rec, "train data idx %s\ntrain dataopt channels 3\n"
             "train normalize 3 0.5 0 0.25 0.25 2 1\n", dir);
    RtMeta m;
    meta_for(&m, 3, 4, 4, 3, rec);
    RtData d;
    load_ok(&d, &m, true, false);
    float x[48];
    sample(&d, &d.test, 1, x);
    for (int k = 0; k < 16; k++) {
        float v = (float)(16 * k + 1) / 255.0f;
        assert_float_equal(x[k], (v - 0.5f) / 0.25f, 1e-6);
        assert_float_equal(x[16 + k], v / 2, 1e-6);
        assert_float_equal(x[32 + k], (v - 0.25f) / 1, 1e-6);
    }
    rt_data_free(&d);
    rt_meta_free(&m);
    snprintf(rec, sizeof rec, "train data idx %s\ntrain normalize 3 0.5 0 0.25 0.25 2 1\n", dir);
    meta_for(&m, 1, 4, 4, 3, rec);
    expect_error(&m, true, "normalize has 3 means and stds; the model's input 'x' has 1 channel");
    rt_meta_free(&m);
}

/* ---- image folders ------------------------------------------------------- */

static void copy_image(const char *name, const char *to)
{
    char from[1024];
    snprintf(from, sizeof from, "tests/runtime/data/%s", name);
    size_t n;
    unsigned char *b = read_bytes(from, &n);
    write_bytes(to, b, n);
    free(b);
}

/* root/CLASS/FILE from the committed image NAME */
static void put(const char *root, const char *cls, const char *file, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, root);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/%s", dir, root, cls);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/%s/%s", dir, root, cls, file);
    copy_image(name, p);
}

static const char *image_records(const char *train, const char *test)
{
    static char r[2048];
    snprintf(r, sizeof r, "train data images %s/%s\ntrain datafile test %s/%s\n", dir, train,
             dir, test);
    return r;
}

static void images_load(void **state)
{
    (void)state;
    if (!rt_images_supported())
        skip();
    put("tr", "cats", "a.png", "rgb_3x2.png");
    put("tr", "cats", "b.JPG", "solid_8x8.jpg");
    put("tr", "dogs", "c.png", "grey_2x2.png");
    put("tr", "dogs", "d.jpeg", "grey_8x8.jpg");
    put("tr", "dogs", "notes.txt", "grey_2x2.png"); /* not an image name: skipped */
    put("te", "cats", "a.png", "rgb_3x2.png");
    put("te", "dogs", "c.png", "grey_2x2.png");
    RtMeta m;
    meta_for(&m, 3, 4, 5, 2, image_records("tr", "te"));
    RtData d;
    load_ok(&d, &m, true, false);
    assert_int_equal(d.train.n, 4);
    assert_int_equal(d.test.n, 2);
    assert_string_equal(d.class_name[0], "cats");
    assert_string_equal(d.class_name[1], "dogs");
    int labels[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++)
        assert_int_equal(rt_split_label(&d.train, i), labels[i]);
    /* rgb_3x2.png resized to 4x5 by F.interpolate, rounded to bytes */
    static const int want[60] = {
        0, 4, 10, 16, 20, 25, 29, 35, 41, 45, 75, 79, 85, 91, 95, 100, 104, 110, 116, 120,
        50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50,
        255, 239, 215, 191, 175, 255, 239, 215, 191, 175, 255, 239, 215, 191, 175, 255, 239,
        215, 191, 175};
    float x[60];
    sample(&d, &d.train, 0, x);
    for (int k = 0; k < 60; k++)
        assert_float_equal(x[k] * 255, want[k], 1.01);
    sample(&d, &d.train, 1, x); /* the solid JPEG */
    for (int k = 0; k < 20; k++) {
        assert_float_equal(x[k] * 255, 200, 3);
        assert_float_equal(x[20 + k] * 255, 30, 3);
        assert_float_equal(x[40 + k] * 255, 60, 3);
    }
    sample(&d, &d.test, 1, x); /* grey replicated to RGB */
    for (int k = 0; k < 20; k++) {
        assert_float_equal(x[20 + k], x[k], 0);
        assert_float_equal(x[40 + k], x[k], 0);
    }
    rt_data_free(&d);
    rt_meta_free(&m);
    /* one channel: the grey image, resized 2x2 -> 4x4 */
    meta_for(&m, 1, 4, 4, 2, image_records("tr", "te"));
    load_ok(&d, &m, true, false);
    static const int grey[16] = {0, 20, 60, 80, 40, 60, 100, 120, 120, 140, 180, 200, 160, 180,
                                 220, 240};
    sample(&d, &d.test, 1, x);
    for (int k = 0; k < 16; k++)
        assert_float_equal(x[k] * 255, grey[k], 0.01);
    rt_data_free(&d);
    rt_meta_free(&m);
}

static void images_errors(void **state)
{
    (void)state;
    if (!rt_images_supported())
        skip();
    put("e1", "a", "x.png", "rgb_3x2.png");
    put("e1", "b", "y.png", "truncated.png");
    put("t1", "a", "x.png", "rgb_3x2.png");
    put("t1", "b", "y.png", "rgb_3x2.png");
    RtMeta m;
    meta_for(&m, 3, 4, 4, 2, image_records("e1", "t1"));
    expect_error(&m, true, "e1/b/y.png: corrupt PNG");
    RtData d;
    load_ok(&d, &m, true, true); /* --skip-bad */
    assert_int_equal(d.skipped, 1);
    assert_int_equal(d.train.n, 1);
    rt_data_free(&d);
    put("e1", "b", "y.png", "truncated.jpg");
    char p[1024];
    snprintf(p, sizeof p, "%s/e1/b/y.png", dir);
    expect_error(&m, true, "e1/b/y.png: not a PNG file (bad signature)");
    unlink(p);
    put("e1", "b", "y.jpg", "truncated.jpg");
    expect_error(&m, true, "e1/b/y.jpg: corrupt JPEG");
    snprintf(p, sizeof p, "%s/e1/b/y.jpg", dir);
    unlink(p);
    expect_error(&m, true, "e1/b: empty class folder");
    put("e1", "b", "y.jpg", "solid_8x8.jpg");
    put("e1", "c", "z.jpg", "solid_8x8.jpg");
    expect_error(&m, true, "e1: 3 class folders; the model predicts 2 classes");
    snprintf(p, sizeof p, "%s/e1/c/z.jpg", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/e1/c", dir);
    rmdir(p);
    put("t1", "c", "z.jpg", "solid_8x8.jpg");
    snprintf(p, sizeof p, "%s/t1/b/y.png", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/t1/b", dir);
    rmdir(p);
    expect_error(&m, true, "t1: class folder 'c' is not a class of the training folder");
    rt_meta_free(&m);
}

/* Every allocation of a load can fail: the load then fails with a
 * message, frees what it took (AddressSanitizer checks), and a later
 * allocation count loads. */
static void walk_allocations(const RtMeta *m)
{
    for (long k = 1;; k++) {
        RtData d;
        RtErr e = {{0}};
        rt_alloc_fail_at = k;
        bool ok = rt_data_load(&d, m, NULL, true, 0, 0, false, &e);
        long left = rt_alloc_fail_at;
        rt_alloc_fail_at = 0;
        if (ok) {
            rt_data_free(&d);
            if (left == 0)
                fail_msg("allocation %ld failed, yet the load succeeded", k);
            return;
        }
        if (!e.msg[0])
            fail_msg("allocation %ld failed without a message", k);
    }
}

static void allocation_failures(void **state)
{
    (void)state;
    RtMeta m;
    npy_set("train", "<i8", 8, 0);
    meta_for(&m, 3, 2, 2, 3, npy_records("train dataopt split 0.25\n"));
    walk_allocations(&m);
    rt_meta_free(&m);
    char rec[1024], name[64];
    for (int b = 1; b <= 5; b++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        cifar_file(name, 2, 1, 0, 0);
    }
    cifar_file("test_batch.bin", 3, 1, 0, 0);
    snprintf(rec, sizeof rec, "train data cifar10 %s\n", dir);
    meta_for(&m, 3, 32, 32, 10, rec);
    walk_allocations(&m);
    rt_meta_free(&m);
    idx_set("train", 4);
    idx_set("t10k", 2);
    snprintf(rec, sizeof rec, "train data idx %s\ntrain dataopt channels 3\n", dir);
    meta_for(&m, 3, 4, 4, 3, rec);
    walk_allocations(&m);
    rt_meta_free(&m);
    if (!rt_images_supported())
        return;
    put("w", "a", "x.png", "rgb_3x2.png");
    put("w", "b", "y.jpg", "solid_8x8.jpg");
    meta_for(&m, 3, 4, 4, 2, image_records("w", "w"));
    walk_allocations(&m);
    rt_meta_free(&m);
}

/* A runtime without image support (or without the libraries at run
 * time) says how to get it. */
static void images_unsupported(void **state)
{
    (void)state;
    if (rt_images_supported())
        skip();
    put("u", "a", "x.png", "rgb_3x2.png");
    RtMeta m;
    meta_for(&m, 3, 4, 4, 1, image_records("u", "u"));
    expect_error(&m, true, "image folders need");
    rt_meta_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(npy_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(npy_split, setup, teardown),
        cmocka_unit_test_setup_teardown(npy_many_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(npy_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(cifar10_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(cifar100_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(idx_grey_to_rgb_resized, setup, teardown),
        cmocka_unit_test_setup_teardown(augmentation_reproducible, setup, teardown),
        cmocka_unit_test_setup_teardown(normalisation, setup, teardown),
        cmocka_unit_test_setup_teardown(images_load, setup, teardown),
        cmocka_unit_test_setup_teardown(images_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(images_unsupported, setup, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
