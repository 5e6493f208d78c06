/* test_ckpt.c - checkpoints: round trip of parameters, optimiser state and
 * training state; atomic replacement; every loading error. */
#include <math.h>

#include "rt_test.h"

static char *dir;

static const char *meta_text =
    "netc 1\nname small\nparams 10\narena 0 0\ninput x 1 4\noutput y 1 2\n"
    "param l.weight 0 8 2 2 4 xavier_uniform 0 0 4 2\n"
    "param l.bias 8 2 1 2 zero 0 0 4 2\n"
    "train loss mse\ntrain target onehot 1 2\ntrain optimizer sgd 0.1 0.9 0 0\n"
    "train batch 4\ntrain epochs 3\ntrain seed 5\nend\n";

static RtMeta meta;

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    RtErr e;
    return rt_meta_parse(&meta, meta_text, &e) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rt_meta_free(&meta);
    tmpdir_remove(dir);
    return 0;
}

static RtTrainState sample_state(void)
{
    RtTrainState s = {.epoch = 2, .epochs = 3, .batch = 4, .limit = 100, .seed = 5,
                      .opt = {.kind = RT_OPT_SGD, .lr = 0.1, .momentum = 0.9,
                              .weight_decay = 0.0001, .nesterov = true}};
    rt_rng_seed(&s.rng, 5, RT_STREAM_DATA);
    rt_rng_next(&s.rng);
    return s;
}

static void round_trip(void **state)
{
    (void)state;
    /* v: the optimiser state, RT_OPT_SLOTS * 10 floats; SGD keeps the first 10 */
    float p[10], v[30] = {0}, p2[10], v2[30];
    for (int i = 0; i < 10; i++) {
        p[i] = (float)i / 3.0f;
        v[i] = -(float)i / 7.0f;
    }
    memset(v2, 0xff, sizeof v2);
    RtTrainState s = sample_state(), s2;
    RtErr e;
    const char *path = path_in(dir, "a.ckpt");
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_ok(rt_ckpt_load(path, &meta, p2, v2, &s2, &e), e);
    assert_memory_equal(p, p2, sizeof p);
    assert_memory_equal(v, v2, sizeof v);
    assert_int_equal(s2.epoch, 2);
    assert_int_equal(s2.epochs, 3);
    assert_int_equal(s2.batch, 4);
    assert_int_equal(s2.limit, 100);
    assert_true(s2.seed == 5);
    assert_true(s2.rng.state == s.rng.state && s2.rng.inc == s.rng.inc);
    assert_int_equal(s2.opt.kind, RT_OPT_SGD);
    assert_true(s2.opt.lr == 0.1 && s2.opt.momentum == 0.9 && s2.opt.weight_decay == 0.0001);
    assert_true(s2.opt.nesterov && s2.opt.dampening == 0);
    /* The file is plain safetensors with the documented names. */
    StFile f;
    assert_ok(rt_st_read(&f, path, &e), e);
    assert_non_null(rt_st_find(&f, "l.weight"));
    assert_non_null(rt_st_find(&f, "optimizer.momentum.l.bias"));
    assert_string_equal(rt_st_meta(&f, "netc.model"), "small");
    rt_st_free(&f);
    /* As weights only, the optimiser tensors are ignored. */
    memset(p2, 0, sizeof p2);
    assert_ok(rt_ckpt_load(path, &meta, p2, NULL, NULL, &e), e);
    assert_memory_equal(p, p2, sizeof p);
}

static void atomic_replacement(void **state)
{
    (void)state;
    float p[10] = {1}, v[30] = {2}, q[10] = {3};
    RtTrainState s = sample_state();
    RtErr e;
    char *d = tmpdir_new();
    const char *path = path_in(d, "c.ckpt");
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_int_equal(tmpdir_count(d), 1); /* no temporary left on success */
    size_t n0, n1;
    unsigned char *before = read_bytes(path, &n0);
    /* A write that fails part way (a full disk) leaves the old file whole
     * and removes the temporary. */
    for (long k = 1; k <= 3; k++) {
        rt_test_fail_write = k;
        assert_false(rt_ckpt_save(path, &meta, q, v, &s, &e));
        rt_test_fail_write = 0;
        expect_contains(e.msg, path);
        expect_contains(e.msg, "write failed");
        unsigned char *after = read_bytes(path, &n1);
        assert_int_equal(n0, n1);
        assert_memory_equal(before, after, n0);
        free(after);
        assert_int_equal(tmpdir_count(d), 1);
    }
    free(before);
    /* A missing directory fails before touching anything. */
    assert_false(rt_ckpt_save(path_in(d, "nodir/x.ckpt"), &meta, p, v, &s, &e));
    expect_contains(e.msg, "cannot create a temporary file");
    tmpdir_remove(d);
}

/* Saving replaces only regular files: a symbolic link, a named pipe or a
 * directory at the target is refused and left as it was. */
/* Non-finite weights or velocities are refused on load, naming the tensor. */
static void refuses_nonfinite(void **state)
{
    (void)state;
    float p[10] = {1}, v[30] = {2}, p2[10], v2[30];
    RtTrainState s = sample_state(), s2;
    RtErr e;
    const char *path = path_in(dir, "nan.ckpt");
    p[9] = NAN;
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_false(rt_ckpt_load(path, &meta, p2, NULL, NULL, &e));
    expect_contains(e.msg, "nan.ckpt: tensor 'l.bias' holds a non-finite value (nan at index 1)");
    p[9] = 0;
    v[0] = -INFINITY;
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_ok(rt_ckpt_load(path, &meta, p2, NULL, NULL, &e), e);
    assert_false(rt_ckpt_load(path, &meta, p2, v2, &s2, &e));
    expect_contains(e.msg, "tensor 'optimizer.momentum.l.weight' holds a non-finite value (-inf");
}

static void refuses_what_is_not_a_file(void **state)
{
    (void)state;
    float p[10] = {1}, v[30] = {2};
    RtTrainState s = sample_state();
    RtErr e;
    char *d = tmpdir_new();
    const char *target = path_in(d, "real.ckpt"), *link = path_in(d, "link.ckpt");
    write_bytes(target, "keep", 4);
    assert_int_equal(symlink("real.ckpt", link), 0);
    assert_false(rt_ckpt_save(link, &meta, p, v, &s, &e));
    expect_contains(e.msg, link);
    expect_contains(e.msg, "is a symbolic link; refusing to replace it");
    struct stat st;
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    size_t n;
    unsigned char *b = read_bytes(target, &n);
    assert_int_equal(n, 4);
    free(b);
    /* A dangling link too. */
    const char *dangling = path_in(d, "dangling.ckpt");
    assert_int_equal(symlink("nowhere", dangling), 0);
    assert_false(rt_ckpt_save(dangling, &meta, p, v, &s, &e));
    expect_contains(e.msg, "is a symbolic link");
    const char *fifo = path_in(d, "fifo.ckpt");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_false(rt_ckpt_save(fifo, &meta, p, v, &s, &e));
    expect_contains(e.msg, "is a named pipe, not a regular file; refusing to replace it");
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_false(rt_ckpt_save(".", &meta, p, v, &s, &e));
    expect_contains(e.msg, ".: is a directory, not a regular file");
    /* Nothing else was created. */
    assert_int_equal(tmpdir_count(d), 4);
    /* A directory where the temporary cannot be created names the file. */
    assert_false(rt_ckpt_save("/proc/netc-test.ckpt", &meta, p, v, &s, &e));
    expect_contains(e.msg, "/proc/netc-test.ckpt: cannot create a temporary file beside it");
    tmpdir_remove(d);
}

/* The temporary is DIR/.NAME.netc-tmp.PID; one left by a process that is
 * gone (a run killed during a save) is removed by the next save, those of
 * live processes and other files are not.  A replaced file keeps its mode. */
static void temporaries(void **state)
{
    (void)state;
    float p[10] = {1}, v[30] = {2};
    RtTrainState s = sample_state();
    RtErr e;
    char *d = tmpdir_new();
    const char *path = path_in(d, "c.ckpt");
    RtAtomic a;
    assert_ok(rt_atomic_open(&a, path, &e), e);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/.c.ckpt.netc-tmp.%ld", d, (long)getpid());
    assert_string_equal(a.tmp, tmp);
    assert_int_equal(access(tmp, F_OK), 0);
    rt_atomic_abort(&a);
    assert_int_equal(tmpdir_count(d), 0);

    const char *dead = path_in(d, ".c.ckpt.netc-tmp.2147483647");
    const char *live = path_in(d, ".c.ckpt.netc-tmp.1");
    const char *other = path_in(d, ".c.ckpt.netc-tmp.x1");
    const char *other2 = path_in(d, ".d.ckpt.netc-tmp.2147483647");
    write_bytes(dead, "stale", 5);
    write_bytes(live, "in use", 6);
    write_bytes(other, "x", 1);
    write_bytes(other2, "x", 1);
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_int_equal(access(dead, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(access(other2, F_OK), 0);
    assert_int_equal(tmpdir_count(d), 4);

    assert_int_equal(chmod(path, 0640), 0);
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    tmpdir_remove(d);
}

/* Writes a safetensors file with the given tensors (data all zero). */
static void write_tensors(const char *path, const StOut *t, int n, const char *const *kv,
                          int nmeta)
{
    RtErr e;
    assert_ok(rt_st_write(path, t, n, kv, nmeta, &e), e);
}

static void expect_load_error(const char *path, bool resume, const char *needle)
{
    float p[10], v[30];
    RtTrainState s;
    RtErr e;
    if (rt_ckpt_load(path, &meta, p, resume ? v : NULL, resume ? &s : NULL, &e))
        fail_msg("loaded %s", path);
    expect_contains(e.msg, path);
    expect_contains(e.msg, needle);
}

static void load_errors(void **state)
{
    (void)state;
    static const float zero[16];
    long w[2] = {2, 4}, b[1] = {2}, wrong[2] = {4, 2}, one[1] = {1};
    const char *path = path_in(dir, "w.safetensors");
    StOut good[2] = {{"l.weight", 2, w, zero}, {"l.bias", 1, b, zero}};

    expect_load_error(path_in(dir, "none.ckpt"), false, "cannot open");
    write_bytes(path, "\x10\0\0\0\0\0\0\0{\"a\":", 13);
    expect_load_error(path, false, "header length 16 exceeds the file size");

    /* A weights file (as from PyTorch): loads with --weights... */
    write_tensors(path, good, 2, NULL, 0);
    float p[10];
    RtErr e;
    assert_ok(rt_ckpt_load(path, &meta, p, NULL, NULL, &e), e);
    /* ...but cannot be resumed from. */
    expect_load_error(path, true, "holds weights but no optimizer state");

    write_tensors(path, good, 1, NULL, 0);
    expect_load_error(path, false, "tensor 'l.bias' is missing (expected F32 [2])");
    StOut bad_shape[2] = {{"l.weight", 2, wrong, zero}, {"l.bias", 1, b, zero}};
    write_tensors(path, bad_shape, 2, NULL, 0);
    expect_load_error(path, false, "tensor 'l.weight': expected shape [2,4], found [4,2]");
    StOut extra[3] = {{"l.weight", 2, w, zero}, {"l.bias", 1, b, zero}, {"l.scale", 1, one, zero}};
    write_tensors(path, extra, 3, NULL, 0);
    expect_load_error(path, false, "unexpected tensor 'l.scale': model 'small' has no such "
                                   "parameter");
    const char *foreign[] = {"netc.model", "lenet"};
    write_tensors(path, good, 2, foreign, 1);
    expect_load_error(path, false, "is a checkpoint of model 'lenet', this program is model "
                                   "'small'");
    /* F16 bias: a valid file, the wrong dtype. */
    const char *h16 = "{\"l.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]},"
                      "\"l.bias\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[32,36]}}";
    unsigned char buf[256] = {(unsigned char)strlen(h16)};
    memcpy(buf + 8, h16, strlen(h16));
    write_bytes(path, buf, 8 + strlen(h16) + 36);
    expect_load_error(path, false, "tensor 'l.bias': expected dtype F32, found F16");

    /* A checkpoint whose optimiser state is incomplete or corrupt. */
    float v[30] = {0};
    RtTrainState s = sample_state();
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    StFile f;
    assert_ok(rt_st_read(&f, path, &e), e);
    const char *kv[2 * 32], *kv_all[2 * 32];
    int nkv = 0;
    for (int i = 0; i < f.nmeta; i++) {
        kv_all[2 * i] = f.meta_key[i];
        kv_all[2 * i + 1] = f.meta_val[i];
        if (strcmp(f.meta_key[i], "netc.rng") != 0) {
            kv[2 * nkv] = f.meta_key[i];
            kv[2 * nkv + 1] = f.meta_val[i];
            nkv++;
        }
    }
    write_tensors(path_in(dir, "norng.ckpt"), good, 2, kv, nkv);
    StOut with_mom[3] = {good[0], good[1], {"optimizer.momentum.l.weight", 2, w, zero}};
    write_tensors(path_in(dir, "nomom.ckpt"), with_mom, 3, kv_all, f.nmeta);
    expect_load_error(path_in(dir, "nomom.ckpt"), true,
                      "tensor 'optimizer.momentum.l.bias' is missing");
    StOut all[4] = {good[0], good[1], with_mom[2], {"optimizer.momentum.l.bias", 1, b, zero}};
    write_tensors(path_in(dir, "norng.ckpt"), all, 4, kv, nkv);
    expect_load_error(path_in(dir, "norng.ckpt"), true, "'netc.rng' is missing or malformed");
    rt_st_free(&f); /* kv points into it */
}

/* Adam's buffers and step count round-trip, under torch's state names. */
static void adam_state(void **state)
{
    (void)state;
    float p[10] = {0}, v[30], v2[30];
    for (int i = 0; i < 30; i++)
        v[i] = (float)i / 10.0f;
    RtTrainState s = sample_state(), s2;
    s.opt = (RtOptim){.kind = RT_OPT_ADAM, .lr = 0.001, .beta1 = 0.9, .beta2 = 0.999,
                      .eps = 1e-8, .amsgrad = true};
    s.step = 17;
    RtErr e;
    const char *path = path_in(dir, "adam.ckpt");
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_ok(rt_ckpt_load(path, &meta, p, v2, &s2, &e), e);
    assert_memory_equal(v, v2, sizeof v);
    assert_int_equal(s2.opt.kind, RT_OPT_ADAM);
    assert_int_equal(s2.step, 17);
    assert_true(s2.opt.beta2 == 0.999 && s2.opt.eps == 1e-8 && s2.opt.amsgrad);
    StFile f;
    assert_ok(rt_st_read(&f, path, &e), e);
    assert_non_null(rt_st_find(&f, "optimizer.exp_avg.l.weight"));
    assert_non_null(rt_st_find(&f, "optimizer.max_exp_avg_sq.l.bias"));
    assert_string_equal(rt_st_meta(&f, "netc.optimizer"), "adam");
    assert_string_equal(rt_st_meta(&f, "netc.beta2"), "0.999");
    rt_st_free(&f);
    /* Without amsgrad the third buffer is neither written nor read. */
    s.opt.amsgrad = false;
    assert_ok(rt_ckpt_save(path, &meta, p, v, &s, &e), e);
    assert_ok(rt_st_read(&f, path, &e), e);
    assert_null(rt_st_find(&f, "optimizer.max_exp_avg_sq.l.bias"));
    rt_st_free(&f);
    assert_ok(rt_ckpt_load(path, &meta, p, v2, &s2, &e), e);
    assert_memory_equal(v, v2, 20 * sizeof *v);
}

/* A checkpoint of the first format (SGD, no netc.optimizer, no step count)
 * still resumes, as SGD with dampening 0. */
static void first_format(void **state)
{
    (void)state;
    static const float zero[16];
    static const float mom[16] = {0.5f, 0.25f};
    long w[2] = {2, 4}, b[1] = {2};
    StOut t[4] = {{"l.weight", 2, w, zero}, {"l.bias", 1, b, zero},
                  {"optimizer.momentum.l.weight", 2, w, mom},
                  {"optimizer.momentum.l.bias", 1, b, zero}};
    const char *kv[] = {
        "format", "pt", "netc.model", "small", "netc.kind", "checkpoint", "netc.epoch", "2",
        "netc.epochs", "3", "netc.rng", "00000000000000050000000000000003", "netc.lr", "0.1",
        "netc.momentum", "0.9", "netc.weight_decay", "0", "netc.nesterov", "0",
        "netc.batch", "4", "netc.limit", "0", "netc.seed", "5", "netc.schedule", "constant",
    };
    const char *path = path_in(dir, "old.ckpt");
    write_tensors(path, t, 4, kv, (int)(sizeof kv / sizeof *kv / 2));
    float p[10], v[30];
    RtTrainState s = {0};
    RtErr e;
    assert_ok(rt_ckpt_load(path, &meta, p, v, &s, &e), e);
    assert_int_equal(s.opt.kind, RT_OPT_SGD);
    assert_true(s.opt.lr == 0.1 && s.opt.momentum == 0.9 && s.opt.dampening == 0);
    assert_int_equal(s.epoch, 2);
    assert_true(s.step > 0);
    assert_true(v[0] == 0.5f && v[1] == 0.25f);
    /* ...and one that lacks a field says which, naming the file. */
    write_tensors(path, t, 4, kv, (int)(sizeof kv / sizeof *kv / 2) - 7);
    expect_load_error(path, true, "old.ckpt: checkpoint metadata 'netc.batch' is missing");
}

/* Every truncation of a checkpoint fails cleanly, and damaging any header
 * byte never crashes the loader (run under the sanitizers in CI). */
static void survives_corruption(void **state)
{
    (void)state;
    float p[10] = {0}, v[30] = {0}, q[10], w[30];
    RtTrainState s = sample_state(), s2;
    RtErr e;
    const char *good = path_in(dir, "good.ckpt"), *bad = path_in(dir, "damaged.ckpt");
    assert_ok(rt_ckpt_save(good, &meta, p, v, &s, &e), e);
    size_t n;
    unsigned char *raw = read_bytes(good, &n);
    for (size_t len = 0; len < n; len++) {
        write_bytes(bad, raw, len);
        assert_false(rt_ckpt_load(bad, &meta, q, w, &s2, &e));
        expect_contains(e.msg, bad);
    }
    size_t hlen = raw[0] | (size_t)raw[1] << 8;
    static const unsigned char junk[] = {0, 0xff, '"', '}', ',', '9'};
    for (size_t i = 0; i < 8 + hlen; i++)
        for (size_t k = 0; k < sizeof junk; k++) {
            unsigned char old = raw[i];
            raw[i] = junk[k];
            write_bytes(bad, raw, n);
            if (!rt_ckpt_load(bad, &meta, q, w, &s2, &e))
                expect_contains(e.msg, bad);
            raw[i] = old;
        }
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(atomic_replacement),
        cmocka_unit_test(refuses_nonfinite),
        cmocka_unit_test(refuses_what_is_not_a_file),
        cmocka_unit_test(temporaries),
        cmocka_unit_test(load_errors),
        cmocka_unit_test(survives_corruption),
        cmocka_unit_test(adam_state),
        cmocka_unit_test(first_format),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
