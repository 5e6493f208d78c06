/* alloc_walk.c - every allocation of the runtime can fail cleanly.
 *
 * LeNet (examples/lenet.net, emitted as C at build time) trains one short
 * epoch on a synthetic 28x28 data set with --save and --metrics, then is
 * resumed, evaluated and run by predict.  For each of those runs, the
 * test makes allocation 1, 2, 3, ... fail (rt_alloc_fail_at) until the run
 * makes fewer allocations than that, and checks each failing run exits
 * with status 1 and an "error:" line, leaves no temporary file, and
 * leaves the previous checkpoint intact.  Under AddressSanitizer the
 * same walk finds what a failure path leaks.
 */
#include "rt_test.h"

#include "lenet.h"

enum { NTRAIN = 8, NTEST = 4 };

static char *dir;
static char ckpt[600], metrics[600], xin[600], yout[600];

static int lenet_main(int argc, char **argv)
{
    return netc_main(argc, argv, lenet_meta, lenet_forward, lenet_train, NULL, lenet_set_parallel);
}

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    static unsigned char pix[NTRAIN * 784], lab[NTRAIN];
    for (int i = 0; i < NTRAIN * 784; i++)
        pix[i] = (unsigned char)(i * 31 % 251);
    for (int i = 0; i < NTRAIN; i++)
        lab[i] = (unsigned char)(i % 10);
    long di[3] = {NTRAIN, 28, 28}, dl[1] = {NTRAIN}, ti[3] = {NTEST, 28, 28}, tl[1] = {NTEST};
    write_idx(path_in(dir, "train-images-idx3-ubyte.gz"), 3, di, pix);
    write_idx(path_in(dir, "train-labels-idx1-ubyte"), 1, dl, lab);
    write_idx(path_in(dir, "t10k-images-idx3-ubyte"), 3, ti, pix);
    write_idx(path_in(dir, "t10k-labels-idx1-ubyte.gz"), 1, tl, lab);
    snprintf(ckpt, sizeof ckpt, "%s/ck.safetensors", dir);
    snprintf(metrics, sizeof metrics, "%s/m.jsonl", dir);
    snprintf(xin, sizeof xin, "%s/x.npy", dir);
    snprintf(yout, sizeof yout, "%s/y.npy", dir);
    static float x[2 * 784];
    for (int i = 0; i < 2 * 784; i++)
        x[i] = (float)(i % 97) / 97.0f;
    RtArray xa = {.rank = 4, .d = {2, 1, 28, 28}, .numel = 2 * 784, .data = x};
    RtErr e;
    return rt_npy_write(xin, &xa, &e) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tmpdir_remove(dir);
    return 0;
}

/* No .NAME.netc-tmp.PID file is left in the directory. */
static void no_temporaries(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".netc-tmp."))
            fail_msg("temporary file %s left behind", de->d_name);
    closedir(d);
}

/* Runs args with allocation n failing, for n = 1, 2, ... until the run
 * makes fewer than n allocations; returns the number of allocations. */
static long walk(const char *const *args, const char *keep)
{
    size_t n0 = 0;
    unsigned char *before = keep ? read_bytes(keep, &n0) : NULL;
    long n = 1;
    for (;; n++) {
        rt_alloc_fail_at = n;
        Captured c = run_captured(lenet_main, args);
        bool injected = rt_alloc_fail_at == 0;
        rt_alloc_fail_at = 0;
        if (!injected) {
            expect_status(&c, 0);
            captured_free(&c);
            break;
        }
        if (c.status != 1 || !strstr(c.err, "lenet: error: "))
            fail_msg("allocation %ld failing: status %d, stderr:\n%s", n, c.status, c.err);
        captured_free(&c);
        no_temporaries();
        if (keep) {
            size_t n1;
            unsigned char *after = read_bytes(keep, &n1);
            if (n1 != n0 || memcmp(before, after, n0) != 0)
                fail_msg("allocation %ld failing: %s changed", n, keep);
            free(after);
        }
    }
    free(before);
    return n - 1;
}

static void train_walk(void **state)
{
    (void)state;
    const char *first[] = {"lenet", "train", "--data", dir, "--epochs", "1", "--batch", "4",
                           "--save", ckpt, "--quiet", NULL};
    Captured c = run_captured(lenet_main, first);
    expect_status(&c, 0);
    captured_free(&c);
    /* A second epoch over the first: the checkpoint survives every failure. */
    const char *args[] = {"lenet", "train", "--data", dir, "--epochs", "2", "--resume", ckpt,
                          "--save", ckpt, "--metrics", metrics, "--quiet", NULL};
    long n = walk(args, ckpt);
    assert_true(n > 10);
    /* Training from scratch has its own allocations (the initialisers). */
    char other[600];
    snprintf(other, sizeof other, "%s/other.safetensors", dir);
    const char *fresh[] = {"lenet", "train", "--data", dir, "--epochs", "1", "--batch", "4",
                           "--save", other, "--quiet", NULL};
    assert_true(walk(fresh, NULL) > 10);
}

static void eval_predict_walk(void **state)
{
    (void)state;
    const char *ev[] = {"lenet", "eval", "--weights", ckpt, "--data", dir, NULL};
    assert_true(walk(ev, NULL) > 5);
    const char *pr[] = {"lenet", "predict", "--weights", ckpt, "--input", xin, "--output", yout,
                        NULL};
    assert_true(walk(pr, NULL) > 5);
    const char *info[] = {"lenet", "info", NULL};
    walk(info, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(train_walk),
        cmocka_unit_test(eval_predict_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
