/* test_train.c - netc_main end to end on a hand-written model.
 *
 * The model is docs/examples/softmax_regression.c (softmax regression on
 * 4x4 images, 3 classes), compiled here with its main() renamed so the
 * test can call it as a program.  The data is a small synthetic IDX set
 * this test writes: class k has bright pixels where column % 3 == k, so
 * the classes are linearly separable.
 */
#define main tiny_example_main
#include "../../docs/examples/softmax_regression.c"
#undef main

#include "rt_test.h"

enum { NTRAIN = 150, NTEST = 30 };

static char *dir;       /* the temp dir; data files live in it */
static char ckpt_a[600];

static int notrain_main(int argc, char **argv)
{
    return netc_main(argc, argv, tiny_meta, tiny_forward, NULL, NULL, NULL);
}

static int badmeta_main(int argc, char **argv)
{
    return netc_main(argc, argv, "netc 1\nname x\nend\n", tiny_forward, tiny_train, NULL, NULL);
}

static void make_set(const char *images, const char *labels, long n, uint32_t seed,
                     unsigned char *pix, unsigned char *lab)
{
    for (long i = 0; i < n; i++) {
        lab[i] = (unsigned char)(i % 3);
        for (int j = 0; j < 16; j++) {
            seed = seed * 1664525u + 1013904223u;
            unsigned noise = (seed >> 24) % 60;
            pix[i * 16 + j] = (unsigned char)((j % 4) % 3 == lab[i] ? 160 + noise : noise);
        }
    }
    long di[3] = {n, 4, 4}, dl[1] = {n};
    write_idx(path_in(dir, images), 3, di, pix);
    write_idx(path_in(dir, labels), 1, dl, lab);
}

static unsigned char test_pix[NTEST * 16], test_lab[NTEST];

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    unsigned char pix[NTRAIN * 16], lab[NTRAIN];
    /* train plain, test gzipped: both kinds of IDX file in one run */
    make_set("train-images-idx3-ubyte", "train-labels-idx1-ubyte", NTRAIN, 1, pix, lab);
    make_set("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", NTEST, 2, test_pix,
             test_lab);
    snprintf(ckpt_a, sizeof ckpt_a, "%s/a.ckpt", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tmpdir_remove(dir);
    return 0;
}

static Captured run(const char *const *args)
{
    return run_captured(tiny_example_main, args);
}

/* Reads the metrics file, checking each line is a JSON object with the
 * documented keys; returns the number of lines and the first and last
 * train_loss and the last test_acc. */
static int read_metrics(const char *path, double *loss0, double *loss_last, double *acc_last)
{
    size_t n;
    char *text = (char *)read_bytes(path, &n);
    int lines = 0;
    static const char *keys[] = {"epoch", "train_loss", "train_acc", "test_loss",
                                 "test_acc", "seconds", "images_per_s"};
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        JsonVal v;
        RtErr e;
        assert_ok(rt_json_parse(&v, line, (size_t)(nl - line), &e), e);
        assert_int_equal(v.kind, JSON_OBJ);
        assert_int_equal(v.n, 7);
        for (int k = 0; k < 7; k++) {
            const JsonVal *x = rt_json_get(&v, keys[k]);
            if (!x || x->kind != JSON_NUM)
                fail_msg("metrics line %d: no number '%s'", lines + 1, keys[k]);
        }
        lines++;
        assert_int_equal(atoi(rt_json_get(&v, "epoch")->s), lines);
        double loss = atof(rt_json_get(&v, "train_loss")->s);
        if (lines == 1)
            *loss0 = loss;
        *loss_last = loss;
        *acc_last = atof(rt_json_get(&v, "test_acc")->s);
        assert_true(*acc_last >= 0 && *acc_last <= 1);
        rt_json_free(&v);
    }
    free(text);
    return lines;
}

static void trains_and_learns(void **state)
{
    (void)state;
    char metrics[600];
    snprintf(metrics, sizeof metrics, "%s/m.jsonl", dir);
    const char *args[] = {"tiny", "train", "--data", dir, "--epochs", "4", "--metrics", metrics,
                          "--save", ckpt_a, NULL};
    Captured c = run(args);
    expect_status(&c, 0);
    /* Not a terminal: one plain line per epoch, then the final accuracy. */
    expect_contains(c.out, "epoch 1/4  train_loss ");
    expect_contains(c.out, "epoch 4/4  train_loss ");
    expect_contains(c.out, "test_acc ");
    assert_null(strchr(c.out, '\r'));
    assert_string_equal(c.err, "");
    double l0, l1, acc;
    assert_int_equal(read_metrics(metrics, &l0, &l1, &acc), 4);
    if (!(l1 < 0.5 * l0) || acc < 0.9)
        fail_msg("did not learn: train_loss %g -> %g, test_acc %g\n%s", l0, l1, acc, c.out);
    captured_free(&c);
}

static void files_equal(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *x = read_bytes(a, &na), *y = read_bytes(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
}

static void resume_continues_exactly(void **state)
{
    (void)state;
    char full[600], part[600];
    snprintf(full, sizeof full, "%s/full.ckpt", dir);
    snprintf(part, sizeof part, "%s/part.ckpt", dir);
    /* --limit and --lr are remembered by the checkpoint, so the resumed
     * run does not repeat them. */
    const char *a[] = {"tiny", "train", "--data", dir, "--epochs", "5", "--limit", "100",
                       "--lr", "0.05", "--save", full, "--quiet", NULL};
    const char *b[] = {"tiny", "train", "--data", dir, "--epochs", "2", "--limit", "100",
                       "--lr", "0.05", "--save", part, "--quiet", NULL};
    const char *r[] = {"tiny", "train", "--data", dir, "--epochs", "5", "--resume", part,
                       "--save", part, "--quiet", NULL};
    Captured c1 = run(a), c2 = run(b), c3 = run(r);
    expect_status(&c1, 0);
    expect_status(&c2, 0);
    expect_status(&c3, 0);
    /* --quiet: only the final accuracy. */
    assert_null(strstr(c1.out, "epoch"));
    expect_contains(c1.out, "test_acc");
    /* Same weights, momenta, RNG state and metadata: the same bytes. */
    files_equal(full, part);
    assert_string_equal(c1.out, c3.out);
    captured_free(&c1);
    captured_free(&c2);
    captured_free(&c3);
    /* Resuming a finished run only evaluates. */
    const char *again[] = {"tiny", "train", "--data", dir, "--resume", part, NULL};
    Captured c4 = run(again);
    expect_status(&c4, 0);
    expect_contains(c4.out, "already trained 5 of 5 epochs");
    captured_free(&c4);
}

/* The tiny model with its optimizer record replaced (plus any records
 * after it), for the runs below. */
static char opt_meta[2048];

static int opt_main(int argc, char **argv)
{
    return netc_main(argc, argv, opt_meta, tiny_forward, tiny_train, NULL, NULL);
}

static void set_optimizer(const char *records)
{
    const char *at = strstr(tiny_meta, "train optimizer");
    snprintf(opt_meta, sizeof opt_meta, "%.*s%s%s", (int)(at - tiny_meta), tiny_meta, records,
             strchr(at, '\n') + 1);
}

/* Every optimiser's state (moments, the step count of the bias
 * corrections, warm-up) survives a checkpoint: 4 epochs straight and 2 +
 * resume + 2 give the same bytes. */
static void resume_every_optimizer(void **state)
{
    (void)state;
    static const char *const records[] = {
        "train optimizer adam lr=0.01 beta1=0.9 beta2=0.999 eps=1e-08 weight_decay=0.001 "
        "amsgrad=1\ntrain warmup 1\n",
        "train optimizer rmsprop lr=0.001 alpha=0.99 eps=1e-08 weight_decay=0 momentum=0.5 "
        "centered=1\ntrain clip_norm 0.5\n",
        "train optimizer adamw lr=0.01 beta1=0.9 beta2=0.999 eps=1e-08 weight_decay=0.01 "
        "amsgrad=0\ntrain lr_mult fc.bias 10\n",
        "train optimizer adadelta lr=1 rho=0.9 eps=1e-06 weight_decay=0\n",
        "train optimizer sgd lr=0.05 momentum=0.9 dampening=0.1 weight_decay=0 nesterov=0\n",
        "train optimizer adagrad lr=0.05 lr_decay=0.01 weight_decay=0 "
        "initial_accumulator_value=0.1 eps=1e-10\ntrain freeze fc.bias\n",
    };
    char full[600], part[600];
    snprintf(full, sizeof full, "%s/opt_full.ckpt", dir);
    snprintf(part, sizeof part, "%s/opt_part.ckpt", dir);
    for (size_t i = 0; i < sizeof records / sizeof *records; i++) {
        set_optimizer(records[i]);
        const char *a[] = {"tiny", "train", "--data", dir, "--epochs", "4", "--limit", "60",
                           "--save", full, "--quiet", NULL};
        const char *b[] = {"tiny", "train", "--data", dir, "--epochs", "2", "--limit", "60",
                           "--save", part, "--quiet", NULL};
        const char *r[] = {"tiny", "train", "--data", dir, "--epochs", "4", "--resume", part,
                           "--save", part, "--quiet", NULL};
        Captured c1 = run_captured(opt_main, a), c2 = run_captured(opt_main, b),
                 c3 = run_captured(opt_main, r);
        if (c1.status || c2.status || c3.status)
            fail_msg("%s: status %d %d %d\n%s%s%s", records[i], c1.status, c2.status, c3.status,
                     c1.err, c2.err, c3.err);
        files_equal(full, part);
        assert_string_equal(c1.out, c3.out);
        captured_free(&c1);
        captured_free(&c2);
        captured_free(&c3);
    }
    /* Frozen parameters keep their initial values through training (the
     * last run's). */
    RtMeta m;
    RtErr e;
    assert_ok(rt_meta_parse(&m, opt_meta, &e), e);
    float p[51], st[51 * RT_OPT_SLOTS];
    RtTrainState ts = {0};
    assert_ok(rt_ckpt_load(full, &m, p, st, &ts, &e), e);
    assert_int_equal(ts.opt.kind, RT_OPT_ADAGRAD);
    assert_true(ts.step == 4 * 8); /* 60 samples in batches of 8 */
    for (int k = 48; k < 51; k++)
        assert_true(p[k] == 0.0f); /* fc.bias starts at zero */
    rt_meta_free(&m);
}

static void eval_and_predict(void **state)
{
    (void)state;
    const char *ev[] = {"tiny", "eval", "--weights", ckpt_a, "--data", dir, NULL};
    Captured c = run(ev);
    expect_status(&c, 0);
    expect_contains(c.out, "test_loss ");
    expect_contains(c.out, "/30)");
    captured_free(&c);

    /* predict over the test images, in batches of 7 (a partial last one) */
    float x[NTEST * 16];
    for (int i = 0; i < NTEST * 16; i++)
        x[i] = (float)test_pix[i] / 255.0f;
    char in[600], out[600];
    snprintf(in, sizeof in, "%s/x.npy", dir);
    snprintf(out, sizeof out, "%s/y.npy", dir);
    RtArray xa = {.rank = 4, .d = {NTEST, 1, 4, 4}, .numel = NTEST * 16, .data = x};
    RtErr e;
    assert_ok(rt_npy_write(in, &xa, &e), e);
    const char *pr[] = {"tiny", "predict", "--weights", ckpt_a, "--input", in, "--output", out,
                        "--batch", "7", NULL};
    c = run(pr);
    expect_status(&c, 0);
    expect_contains(c.out, "[30,3]");
    captured_free(&c);
    RtArray y;
    assert_ok(rt_npy_read(out, &y, &e), e);
    assert_int_equal(y.rank, 2);
    assert_int_equal(y.d[0], NTEST);
    assert_int_equal(y.d[1], 3);
    /* The same numbers as calling the forward entry directly. */
    float params[51], want[NTEST * 3];
    RtMeta m;
    assert_ok(rt_meta_parse(&m, tiny_meta, &e), e);
    assert_ok(rt_ckpt_load(ckpt_a, &m, params, NULL, NULL, &e), e);
    const float *ins[1] = {x};
    float *outs[1] = {want};
    tiny_forward(NTEST, params, NULL, NULL, ins, outs);
    assert_memory_equal(y.data, want, sizeof want);
    rt_array_free(&y);

    /* One sample without the batch dimension. */
    xa = (RtArray){.rank = 3, .d = {1, 4, 4}, .numel = 16, .data = x};
    assert_ok(rt_npy_write(in, &xa, &e), e);
    c = run(pr);
    expect_status(&c, 0);
    captured_free(&c);
    assert_ok(rt_npy_read(out, &y, &e), e);
    assert_int_equal(y.d[0], 1);
    assert_memory_equal(y.data, want, 3 * sizeof(float));
    rt_array_free(&y);

    /* A wrong shape names the file and both shapes. */
    xa = (RtArray){.rank = 4, .d = {2, 3, 4, 4}, .numel = 96, .data = x};
    assert_ok(rt_npy_write(in, &xa, &e), e);
    c = run(pr);
    expect_status(&c, 1);
    expect_contains(c.err, "tiny: error: ");
    expect_contains(c.err, in);
    expect_contains(c.err, "shape mismatch: expected [N,1,4,4]");
    expect_contains(c.err, "found [2,3,4,4]");
    captured_free(&c);
    rt_meta_free(&m);
}

/* Runs args through fn and checks the status and a piece of stderr. */
static void expect_failure(int (*fn)(int, char **), const char *const *args, int status,
                           const char *needle)
{
    Captured c = run_captured(fn, args);
    expect_status(&c, status);
    expect_contains(c.err, needle);
    if (status == 2)
        expect_contains(c.err, "usage: tiny COMMAND");
    captured_free(&c);
}

static void errors(void **state)
{
    (void)state;
    char weights[600], bad[600], nodata[600];
    snprintf(weights, sizeof weights, "%s/w.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    snprintf(nodata, sizeof nodata, "%s/nowhere", dir);

    const char *none[] = {"tiny", NULL};
    expect_failure(tiny_example_main, none, 2, "usage:");
    const char *unk[] = {"tiny", "fly", NULL};
    expect_failure(tiny_example_main, unk, 2, "tiny: error: unknown command 'fly'");
    const char *opt[] = {"tiny", "train", "--epoch", "3", NULL};
    expect_failure(tiny_example_main, opt, 2, "unknown option '--epoch'");
    const char *num[] = {"tiny", "train", "--epochs", "three", NULL};
    expect_failure(tiny_example_main, num, 2, "--epochs: expected an integer >= 0, found 'three'");
    const char *big[] = {"tiny", "train", "--batch", "99999999999", NULL};
    expect_failure(tiny_example_main, big, 2, "--batch: expected an integer from 1 to 16777216");
    const char *lr[] = {"tiny", "train", "--lr=-1", NULL};
    expect_failure(tiny_example_main, lr, 2, "--lr: expected a positive number a float holds "
                   "(1.2e-38 to 3.4e38), found '-1'");
    const char *wrongcmd[] = {"tiny", "info", "--weights", "x", NULL};
    expect_failure(tiny_example_main, wrongcmd, 2, "does not apply to this command");
    const char *noweights[] = {"tiny", "eval", "--data", dir, NULL};
    expect_failure(tiny_example_main, noweights, 2, "eval needs --weights CKPT");
    const char *missing[] = {"tiny", "eval", "--weights", bad, "--data", dir, NULL};
    expect_failure(tiny_example_main, missing, 1, "cannot open");
    const char *nod[] = {"tiny", "train", "--data", nodata, NULL};
    expect_failure(tiny_example_main, nod, 1, "no train-images-idx3-ubyte or");

    /* A truncated checkpoint and a plain weights file given to --resume. */
    size_t n;
    unsigned char *raw = read_bytes(ckpt_a, &n);
    write_bytes(bad, raw, n - 10);
    free(raw);
    const char *trunc[] = {"tiny", "eval", "--weights", bad, "--data", dir, NULL};
    expect_failure(tiny_example_main, trunc, 1, "out of range");
    static const float zero[51];
    long ws[2] = {3, 16}, bs[1] = {3};
    StOut t[2] = {{"fc.weight", 2, ws, zero}, {"fc.bias", 1, bs, zero + 48}};
    RtErr e;
    assert_ok(rt_st_write(weights, t, 2, NULL, 0, &e), e);
    const char *res[] = {"tiny", "train", "--data", dir, "--resume", weights, NULL};
    expect_failure(tiny_example_main, res, 1, "no optimizer state");
    /* ...while the same file is fine for eval. */
    const char *ev[] = {"tiny", "eval", "--weights", weights, "--data", dir, "--test-limit", "9",
                        NULL};
    Captured c = run(ev);
    expect_status(&c, 0);
    expect_contains(c.out, "/9)");
    captured_free(&c);

    /* A label outside the model's classes. */
    unsigned char lab[NTEST];
    memcpy(lab, test_lab, sizeof lab);
    lab[4] = 7;
    long dl[1] = {NTEST};
    write_idx(path_in(dir, "t10k-labels-idx1-ubyte.gz"), 1, dl, lab);
    const char *ev2[] = {"tiny", "eval", "--weights", weights, "--data", dir, NULL};
    expect_failure(tiny_example_main, ev2, 1, "label 7 of sample 4 is out of range");
    write_idx(path_in(dir, "t10k-labels-idx1-ubyte.gz"), 1, dl, test_lab);

    const char *tr[] = {"tiny", "train", "--data", dir, NULL};
    expect_failure(notrain_main, tr, 1, "model 'tiny' has no train section");
    const char *info[] = {"tiny", "info", NULL};
    expect_failure(badmeta_main, info, 1, "tiny: error: model description: no 'params' record");
}

/* Copies checkpoint src to dst with metadata `key` set to `value` (removed
 * when value is NULL). */
static void rewrite_meta(const char *src, const char *dst, const char *key, const char *value)
{
    StFile f;
    RtErr e;
    assert_ok(rt_st_read(&f, src, &e), e);
    StOut t[8];
    long shapes[8][RT_MAX_RANK];
    assert_true(f.n <= 8);
    for (int i = 0; i < f.n; i++) {
        for (int k = 0; k < f.t[i].rank; k++)
            shapes[i][k] = f.t[i].shape[k];
        t[i] = (StOut){f.t[i].name, f.t[i].rank, shapes[i], (const float *)(f.data + f.t[i].begin)};
    }
    const char *kv[64];
    int n = 0;
    for (int i = 0; i < f.nmeta; i++) {
        if (strcmp(f.meta_key[i], key) == 0 && !value)
            continue;
        kv[2 * n] = f.meta_key[i];
        kv[2 * n + 1] = strcmp(f.meta_key[i], key) == 0 ? value : f.meta_val[i];
        n++;
    }
    assert_ok(rt_st_write(dst, t, f.n, kv, n, &e), e);
    rt_st_free(&f);
}

/* Checkpoint metadata follows the command line's rules: a bad value is an
 * error naming the file and the field, never a crash (a batch of 0 used to
 * divide by zero) or a run with inf or 0 as its learning rate. */
static void resume_checks_metadata(void **state)
{
    (void)state;
    char bad[600];
    snprintf(bad, sizeof bad, "%s/meta.ckpt", dir);
    static const struct {
        const char *key, *value, *msg;
    } cases[] = {
        {"netc.batch", "0", "'netc.batch': expected an integer from 1 to 16777216, found '0'"},
        {"netc.batch", "-0", "'netc.batch': expected an integer from 1 to 16777216"},
        {"netc.batch", "000", "'netc.batch': expected an integer from 1 to 16777216"},
        {"netc.batch", "99999999999", "'netc.batch': expected an integer from 1 to 16777216"},
        {"netc.batch", " 8", "'netc.batch': expected an integer"},
        {"netc.lr", "inf", "'netc.lr': expected a positive number a float holds"},
        {"netc.lr", "-0", "'netc.lr': expected a positive number"},
        {"netc.lr", "1e-45", "'netc.lr': expected a positive number"},
        {"netc.lr", "1e39", "'netc.lr': expected a positive number"},
        {"netc.lr", "nan", "'netc.lr': expected a positive number"},
        {"netc.momentum", "1e11", "'netc.momentum': expected a number in [0, 1), found '1e11'"},
        {"netc.momentum", "1", "'netc.momentum': expected a number in [0, 1)"},
        {"netc.weight_decay", "1e999", "'netc.weight_decay': expected 0 or a positive number"},
        {"netc.weight_decay", "-1", "'netc.weight_decay': expected 0 or a positive number"},
        {"netc.epochs", "-1", "'netc.epochs': expected an integer >= 0"},
        {"netc.nesterov", "2", "'netc.nesterov': expected 0 or 1, found '2'"},
        {"netc.dampening", "1", "'netc.dampening': expected a number in [0, 1)"},
        {"netc.optimizer", "adamax", "'netc.optimizer': unknown optimizer 'adamax'"},
        {"netc.step", NULL, "checkpoint metadata 'netc.step' is missing"},
        {"netc.step", "-3", "'netc.step': expected an integer >= 0"},
        {"netc.model", NULL, "checkpoint metadata 'netc.model' is missing"},
        {"netc.lr", NULL, "checkpoint metadata 'netc.lr' is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite_meta(ckpt_a, bad, cases[i].key, cases[i].value);
        const char *args[] = {"tiny", "train", "--data", dir, "--epochs", "5", "--resume", bad,
                              "--quiet", NULL};
        Captured c = run(args);
        if (c.status != 1 || !strstr(c.err, cases[i].msg) || !strstr(c.err, bad))
            fail_msg("%s = '%s': status %d, stderr:\n%s", cases[i].key,
                     cases[i].value ? cases[i].value : "(none)", c.status, c.err);
        captured_free(&c);
    }
    /* The unchanged checkpoint resumes. */
    rewrite_meta(ckpt_a, bad, "netc.lr", "0.05");
    const char *ok[] = {"tiny", "train", "--data", dir, "--epochs", "5", "--resume", bad, "--quiet",
                        NULL};
    Captured c = run(ok);
    expect_status(&c, 0);
    captured_free(&c);
}

/* --lr takes only what a float holds as a positive normal number: 1e39
 * (inf as a float) and 1e-50 (0) are refused like inf and 0. */
static void lr_range(void **state)
{
    (void)state;
    static const char *bad[] = {"1e39", "1e-50", "1e-45", "inf", "0", "-0", "nan", "1e999", " 1",
                                "0x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[] = {"tiny", "train", "--data", dir, "--lr", bad[i], NULL};
        char want[80];
        snprintf(want, sizeof want, "--lr: expected a positive number a float holds (1.2e-38 to "
                 "3.4e38), found '%s'", bad[i]);
        expect_failure(tiny_example_main, args, 2, want);
    }
    const char *args[] = {"tiny", "train", "--data", dir, "--epochs", "1", "--lr", "1e-30",
                          "--quiet", NULL};
    Captured c = run(args);
    expect_status(&c, 0);
    captured_free(&c);
}

/* Setup failing for want of memory is an error, not a division by the batch
 * size that was never set (SIGFPE). */
static void setup_out_of_memory(void **state)
{
    (void)state;
    const char *args[] = {"tiny", "train", "--data", dir, "--quiet", NULL};
    for (long n = 1; n <= 12; n++) {
        rt_alloc_fail_at = n;
        Captured c = run(args);
        rt_alloc_fail_at = 0;
        expect_status(&c, 1);
        expect_contains(c.err, "out of memory");
        captured_free(&c);
    }
}

/* Results lost on a full disk are an error: stdout's flush is checked, and
 * training still saves its checkpoint. */
static void stdout_full(void **state)
{
    (void)state;
    char ck[600];
    snprintf(ck, sizeof ck, "%s/full-stdout.ckpt", dir);
    const char *info[] = {"tiny", "info", NULL};
    const char *help[] = {"tiny", "help", NULL};
    const char *train[] = {"tiny", "train", "--data", dir, "--epochs", "1", "--save", ck, NULL};
    const char *ev[] = {"tiny", "eval", "--weights", ckpt_a, "--data", dir, NULL};
    const char *const *runs[] = {info, help, train, ev};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        Captured c = run_captured_to(tiny_example_main, runs[i], "/dev/full");
        expect_status(&c, 1);
        expect_contains(c.err, "tiny: error: standard output: write failed");
        captured_free(&c);
    }
    assert_int_equal(access(ck, F_OK), 0);
}

/* Bytes that are not UTF-8 are echoed as \xNN, never raw. */
static void messages_escape_bytes(void **state)
{
    (void)state;
    char odd[600];
    snprintf(odd, sizeof odd, "%s/caf\xc3\xa9-\xff\x1b[31m", dir);
    const char *args[] = {"tiny", "train", "--data", odd, NULL};
    Captured c = run(args);
    expect_status(&c, 1);
    expect_contains(c.err, "/caf\xc3\xa9-\\xff\\x1b[31m: no train-images-idx3-ubyte");
    assert_null(strchr(c.err, '\xff'));
    assert_null(strchr(c.err, '\x1b'));
    captured_free(&c);
}

/* A metrics file that cannot be written stops training with the reason,
 * after the epoch's checkpoint is saved. */
static void metrics_failure(void **state)
{
    (void)state;
    char ck[600];
    snprintf(ck, sizeof ck, "%s/metrics-fail.ckpt", dir);
    const char *args[] = {"tiny", "train", "--data", dir, "--epochs", "2", "--metrics",
                          "/dev/full", "--save", ck, "--quiet", NULL};
    Captured c = run(args);
    expect_status(&c, 1);
    expect_contains(c.err, "tiny: error: /dev/full: cannot write the metrics of epoch 1: No space "
                    "left on device");
    captured_free(&c);
    RtMeta m;
    RtErr e;
    float params[51], opt_state[51 * RT_OPT_SLOTS];
    RtTrainState st = {0};
    assert_ok(rt_meta_parse(&m, tiny_meta, &e), e);
    assert_ok(rt_ckpt_load(ck, &m, params, opt_state, &st, &e), e);
    assert_int_equal(st.epoch, 1);
    rt_meta_free(&m);
    const char *d[] = {"tiny", "train", "--data", dir, "--metrics", dir, NULL};
    expect_failure(tiny_example_main, d, 1, ": cannot open for appending: Is a directory");
}

/* tiny_train with one call (nan_at, counting from 1) spoilt: a NaN
 * gradient of fc.bias, an infinite loss, or a huge finite gradient of
 * fc.weight that a large learning rate turns into inf weights. */
enum { SPOIL_GRAD, SPOIL_LOSS, SPOIL_HUGE };
static int nan_calls, nan_at, nan_what;

static void nan_train(int n, const float *params, float *grads, float *arena,
                      const float *const *in, float *const *out)
{
    tiny_train(n, params, grads, arena, in, out);
    if (++nan_calls != nan_at)
        return;
    if (nan_what == SPOIL_GRAD)
        grads[49] = NAN;
    else if (nan_what == SPOIL_LOSS)
        out[1][0] = INFINITY;
    else
        grads[0] = 3e38f;
}

static int nan_main(int argc, char **argv)
{
    return netc_main(argc, argv, tiny_meta, tiny_forward, nan_train, NULL, NULL);
}

static Captured run_spoilt(int what, int at, const char *const *args)
{
    nan_calls = 0;
    nan_at = at;
    nan_what = what;
    return run_captured(nan_main, args);
}

/* 150 samples in batches of 8: 19 batches an epoch, then the 30 test
 * samples score through the train entry too, 4 calls: the third batch of
 * epoch 2 is call 19 + 4 + 3. */
enum { EPOCH_CALLS = 19 + 4 };
static void nonfinite_training(void **state)
{
    (void)state;
    char ck[600], metrics[600];
    snprintf(ck, sizeof ck, "%s/nan.ckpt", dir);
    snprintf(metrics, sizeof metrics, "%s/nan.jsonl", dir);
    RtMeta m;
    RtErr e;
    float params[51], opt_state[51 * RT_OPT_SLOTS];
    assert_ok(rt_meta_parse(&m, tiny_meta, &e), e);

    const char *args[] = {"tiny", "train", "--data", dir, "--epochs", "2", "--save", ck, NULL};
    Captured c = run_spoilt(SPOIL_GRAD, EPOCH_CALLS + 3, args);
    expect_status(&c, 1);
    expect_contains(c.err, "tiny: error: the gradient of 'fc.bias' is not finite at epoch 2, "
                    "batch 3 (loss ");
    expect_contains(c.err, "--on-nonfinite=skip-batch");
    captured_free(&c);
    /* The checkpoint is epoch 1's, with finite weights. */
    RtTrainState st = {0};
    assert_ok(rt_ckpt_load(ck, &m, params, opt_state, &st, &e), e);
    assert_int_equal(st.epoch, 1);
    assert_int_equal(rt_nonfinite_param(&m, params), -1);

    c = run_spoilt(SPOIL_LOSS, 5, args);
    expect_status(&c, 1);
    expect_contains(c.err, "the loss is not finite (inf) at epoch 1, batch 5");
    captured_free(&c);

    /* inf weights after the last update of an epoch are never saved. */
    size_t n0, n1;
    unsigned char *before = read_bytes(ck, &n0);
    const char *big[] = {"tiny", "train", "--data", dir, "--epochs", "1", "--save", ck, "--lr",
                         "10", "--limit", "8", NULL};
    c = run_spoilt(SPOIL_HUGE, 1, big);
    expect_status(&c, 1);
    expect_contains(c.err, "parameter 'fc.weight' is not finite after epoch 1; stopping without "
                    "saving it");
    captured_free(&c);
    unsigned char *after = read_bytes(ck, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(after);
    free(before);

    /* skip-batch: the run goes on, and says how many batches it skipped. */
    const char *skip[] = {"tiny", "train", "--data", dir, "--epochs", "2", "--save", ck,
                          "--on-nonfinite=skip-batch", "--metrics", metrics, NULL};
    c = run_spoilt(SPOIL_GRAD, EPOCH_CALLS + 3, skip);
    expect_status(&c, 0);
    expect_contains(c.out, "epoch 2/2  skipped 1 of 19 batches (non-finite loss or gradient)");
    expect_contains(c.out, "skipped 1 batch with a non-finite loss or gradient");
    assert_null(strstr(c.out, "epoch 1/2  skipped"));
    captured_free(&c);
    size_t n;
    char *text = (char *)read_bytes(metrics, &n);
    expect_contains(text, "\"skipped_batches\":0}\n");
    expect_contains(text, "\"skipped_batches\":1}\n");
    free(text);
    assert_ok(rt_ckpt_load(ck, &m, params, opt_state, &st, &e), e);
    assert_int_equal(st.epoch, 2);

    const char *bad[] = {"tiny", "train", "--data", dir, "--on-nonfinite", "ignore", NULL};
    expect_failure(tiny_example_main, bad, 2,
                   "--on-nonfinite: expected 'stop' or 'skip-batch', found 'ignore'");

    /* A learning rate that ruins the weights stops the run; resuming with
     * it and saving over the checkpoint leaves the good one in place. */
    const char *ruin[] = {"tiny", "train", "--data", dir, "--epochs", "4", "--resume", ck,
                          "--save", ck, "--lr", "1e30", NULL};
    c = run(ruin);
    expect_status(&c, 1);
    expect_contains(c.err, "not finite");
    assert_null(strstr(c.out, "nan"));
    captured_free(&c);
    assert_ok(rt_ckpt_load(ck, &m, params, opt_state, &st, &e), e);
    assert_int_equal(st.epoch, 2);
    assert_int_equal(rt_nonfinite_param(&m, params), -1);
    rt_meta_free(&m);
}

/* predict refuses NaN or inf inputs unless told. */
static void nonfinite_predict(void **state)
{
    (void)state;
    float x[3 * 16] = {0};
    x[17] = NAN;
    x[40] = -INFINITY;
    char in[600], out[600];
    snprintf(in, sizeof in, "%s/nan-x.npy", dir);
    snprintf(out, sizeof out, "%s/nan-y.npy", dir);
    RtArray xa = {.rank = 4, .d = {3, 1, 4, 4}, .numel = 48, .data = x};
    RtErr e;
    assert_ok(rt_npy_write(in, &xa, &e), e);
    const char *pr[] = {"tiny", "predict", "--weights", ckpt_a, "--input", in, "--output", out,
                        NULL};
    Captured c = run(pr);
    expect_status(&c, 1);
    expect_contains(c.err, "nan-x.npy: 2 non-finite values (the first at index 17, in sample 1); "
                    "give --allow-nonfinite to predict anyway");
    assert_int_equal(access(out, F_OK), -1);
    captured_free(&c);
    const char *allow[] = {"tiny", "predict", "--weights", ckpt_a, "--input", in, "--output", out,
                           "--allow-nonfinite", NULL};
    c = run(allow);
    expect_status(&c, 0);
    captured_free(&c);
}

/* Every reader is bounded by a regular file's size: a device or a pipe is
 * refused instead of read until memory runs out, and a directory is named
 * as one. */
static void only_regular_files(void **state)
{
    (void)state;
    char out[600], fifo[600];
    snprintf(out, sizeof out, "%s/dev-y.npy", dir);
    snprintf(fifo, sizeof fifo, "%s/pipe.npy", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *w[] = {"tiny", "eval", "--weights", "/dev/zero", "--data", dir, NULL};
    expect_failure(tiny_example_main, w, 1, "/dev/zero: is a character device, not a regular file");
    const char *wd[] = {"tiny", "eval", "--weights", dir, "--data", dir, NULL};
    expect_failure(tiny_example_main, wd, 1, ": is a directory, not a file");
    const char *in[] = {"tiny", "predict", "--weights", ckpt_a, "--input", "/dev/zero",
                        "--output", out, NULL};
    expect_failure(tiny_example_main, in, 1, "/dev/zero: is a character device");
    const char *pipe[] = {"tiny", "predict", "--weights", ckpt_a, "--input", fifo, "--output", out,
                          NULL};
    expect_failure(tiny_example_main, pipe, 1, "pipe.npy: is a named pipe, not a regular file");
    const char *r[] = {"tiny", "train", "--data", dir, "--resume", "/dev/zero", NULL};
    expect_failure(tiny_example_main, r, 1, "/dev/zero: is a character device");
    unlink(fifo);
}

static void info_and_help(void **state)
{
    (void)state;
    const char *info[] = {"tiny", "info", NULL};
    Captured c = run(info);
    expect_status(&c, 0);
    expect_contains(c.out, "model tiny");
    expect_contains(c.out, "input   x [N,1,4,4]");
    expect_contains(c.out, "output  y [N,3]");
    expect_contains(c.out, "fc.weight  [3,16]");
    expect_contains(c.out, "total 51 parameters, 204 bytes");
    expect_contains(c.out, "arena 12 bytes for batch 1, 96 bytes for batch 8");
    expect_contains(c.out, "sgd lr 0.1 momentum 0.9 dampening 0 weight_decay 0.0001 nesterov false");
    captured_free(&c);
    const char *help[] = {"./build/tiny", "--help", NULL};
    c = run(help);
    expect_status(&c, 0);
    expect_contains(c.out, "usage: tiny COMMAND");
    expect_contains(c.out, "tiny predict --weights CKPT --input [NAME=]X.npy... --output");
    captured_free(&c);
}

/* ---- --threads and the parallel-for hook ---- */

/* What netc_main handed the model's hook setter. */
static struct {
    int calls;
    NetcParallelFn first, pf;
    void *pool;
    int threads;
} hook;

static void record_set_parallel(NetcParallelFn pf, void *pool)
{
    if (!hook.calls++)
        hook.first = pf;
    hook.pf = pf;
    hook.pool = pool;
    if (pool)
        hook.threads = netc_pool_threads(pool);
}

/* The forward entry with its batch loop run through the hook, as a
 * generated model's parallel loops are. */
typedef struct {
    const float *params;
    const float *const *in;
    float *const *out;
} Fwd;

static void forward_range(void *ctx, int lo, int hi)
{
    Fwd *f = ctx;
    const float *in[1] = {f->in[0] + lo * 16};
    float *out[1] = {f->out[0] + lo * 3};
    tiny_forward(hi - lo, f->params, NULL, NULL, in, out);
}

static void parallel_forward(int n, const float *params, float *grads, float *arena,
                             const float *const *in, float *const *out)
{
    (void)grads;
    (void)arena;
    Fwd f = {params, in, out};
    if (hook.pf)
        hook.pf(hook.pool, forward_range, &f, n);
    else
        forward_range(&f, 0, n);
}

static int parallel_main(int argc, char **argv)
{
    return netc_main(argc, argv, tiny_meta, parallel_forward, tiny_train, NULL,
                     record_set_parallel);
}

static Captured run_parallel(const char *const *args)
{
    memset(&hook, 0, sizeof hook);
    return run_captured(parallel_main, args);
}

static void threads(void **state)
{
    (void)state;
    int cpus = netc_cpu_count() < 1024 ? netc_cpu_count() : 1024;
    char line[128];

    /* Bad values are usage errors, like the other numeric flags. */
    static const char *bad[] = {"0", "-1", "1025", "two", "", "4x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[] = {"tiny", "train", "--threads", bad[i], NULL};
        snprintf(line, sizeof line, "--threads: expected an integer from 1 to 1024, found '%s'",
                 bad[i]);
        expect_failure(tiny_example_main, args, 2, line);
    }
    const char *on_info[] = {"tiny", "info", "--threads", "2", NULL};
    expect_failure(tiny_example_main, on_info, 2, "does not apply to this command");

    /* info tells the thread count the other commands would use. */
    const char *info[] = {"tiny", "info", NULL};
    Captured c = run(info);
    expect_status(&c, 0);
    expect_contains(c.out, "threads 1 (this program has no parallel loops)");
    captured_free(&c);
    c = run_parallel(info);
    expect_status(&c, 0);
    snprintf(line, sizeof line, "threads %d (the CPUs this process may use; --threads N", cpus);
    expect_contains(c.out, line);
    assert_int_equal(hook.calls, 0); /* info runs no model code */
    captured_free(&c);

    /* predict through the hook: the pool is set before the command and
     * unset after it, and the numbers do not depend on the thread count. */
    float x[NTEST * 16];
    for (int i = 0; i < NTEST * 16; i++)
        x[i] = (float)test_pix[i] / 255.0f;
    char in[600], out1[600], outn[600];
    snprintf(in, sizeof in, "%s/px.npy", dir);
    snprintf(out1, sizeof out1, "%s/py1.npy", dir);
    snprintf(outn, sizeof outn, "%s/pyn.npy", dir);
    RtArray xa = {.rank = 4, .d = {NTEST, 1, 4, 4}, .numel = NTEST * 16, .data = x};
    RtErr e;
    assert_ok(rt_npy_write(in, &xa, &e), e);
    const char *serial[] = {"tiny", "predict", "--weights", ckpt_a, "--input", in, "--output",
                            out1, "--threads", "1", NULL};
    c = run_parallel(serial);
    expect_status(&c, 0);
    assert_int_equal(hook.calls, 2);
    assert_int_equal(hook.threads, 1);
    captured_free(&c);
    const char *par[] = {"tiny", "predict", "--weights", ckpt_a, "--input", in, "--output", outn,
                         "--threads=3", NULL};
    c = run_parallel(par);
    expect_status(&c, 0);
    assert_int_equal(hook.calls, 2);
    assert_true(hook.first == netc_pool_run);
    assert_int_equal(hook.threads, 3);
    assert_null(hook.pf);
    assert_null(hook.pool);
    captured_free(&c);
    files_equal(out1, outn);

    /* Without --threads: the usable CPUs.  eval and train take it too. */
    const char *ev[] = {"tiny", "eval", "--weights", ckpt_a, "--data", dir, NULL};
    c = run_parallel(ev);
    expect_status(&c, 0);
    assert_int_equal(hook.threads, cpus);
    captured_free(&c);
    const char *tr[] = {"tiny", "train", "--data", dir, "--epochs", "1", "--quiet", "--threads",
                        "2", NULL};
    c = run_parallel(tr);
    expect_status(&c, 0);
    assert_int_equal(hook.calls, 2);
    assert_int_equal(hook.threads, 2);
    captured_free(&c);

    /* A program without the hook accepts --threads and runs serially. */
    const char *ev2[] = {"tiny", "eval", "--weights", ckpt_a, "--data", dir, "--threads", "4",
                         NULL};
    c = run(ev2);
    expect_status(&c, 0);
    captured_free(&c);

    /* Threads that cannot be started are an error, not a serial run. */
    rt_test_fail_thread = 2;
    const char *fail[] = {"tiny", "eval", "--weights", ckpt_a, "--data", dir, "--threads", "4",
                          NULL};
    c = run_parallel(fail);
    rt_test_fail_thread = 0;
    expect_status(&c, 1);
    expect_contains(c.err, "tiny: error: cannot start 4 threads: ");
    assert_int_equal(hook.calls, 0);
    captured_free(&c);
}

/* The live line (drawn when stdout is a terminal): '\r' redraws with the
 * documented fields, then a clear so the epoch line starts clean. */
static int progress_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    RtProgress p;
    rt_progress_start(&p, 2, 3, 10, true);
    rt_progress_update(&p, 1, 0.75, 0.5, 64);
    rt_progress_update(&p, 2, 0.70, 0.5, 128); /* within 0.1 s: not drawn */
    rt_progress_update(&p, 10, 0.5, 0.875, 640); /* the last batch always is */
    rt_progress_clear(&p);
    RtProgress quiet;
    rt_progress_start(&quiet, 1, 1, 10, false);
    rt_progress_update(&quiet, 10, 0.5, 0.875, 640);
    rt_progress_clear(&quiet);
    return 0;
}

static void progress_line(void **state)
{
    (void)state;
    const char *args[] = {"progress", NULL};
    Captured c = run_captured(progress_main, args);
    expect_contains(c.out, "\repoch 2/3  batch 1/10  loss 0.7500  acc 50.00%  ");
    expect_contains(c.out, "img/s  ETA ");
    assert_null(strstr(c.out, "batch 2/10"));
    expect_contains(c.out, "\repoch 2/3  batch 10/10  loss 0.5000  acc 87.50%  ");
    /* ends with the clear: '\r', spaces, '\r' */
    size_t n = strlen(c.out);
    assert_true(n > 2 && c.out[n - 1] == '\r' && c.out[n - 2] == ' ');
    captured_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trains_and_learns),
        cmocka_unit_test(resume_continues_exactly),
        cmocka_unit_test(resume_every_optimizer),
        cmocka_unit_test(eval_and_predict),
        cmocka_unit_test(errors),
        cmocka_unit_test(resume_checks_metadata),
        cmocka_unit_test(lr_range),
        cmocka_unit_test(setup_out_of_memory),
        cmocka_unit_test(stdout_full),
        cmocka_unit_test(messages_escape_bytes),
        cmocka_unit_test(metrics_failure),
        cmocka_unit_test(nonfinite_training),
        cmocka_unit_test(nonfinite_predict),
        cmocka_unit_test(only_regular_files),
        cmocka_unit_test(info_and_help),
        cmocka_unit_test(threads),
        cmocka_unit_test(progress_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
