/* test_eval.c - eval's report (loss, top-1, top-5, confusion matrix, the
 * --metrics JSON) and the plot command, through netc_main; and, through
 * netc_run, that an eval entry scores the test set without the train
 * entry.
 *
 * The model is docs/examples/softmax_regression.c (4x4 images, 3
 * classes), as in test_train.c; the data is a small IDX set written here
 * whose label is i % 3, so every class has a known count.
 */
#define main tiny_example_main
#include "../../docs/examples/softmax_regression.c"
#undef main

#include "rt_test.h"

enum { NTRAIN = 60, NTEST = 30 };

static char *dir;

static const char *in_dir(const char *name)
{
    return path_in(dir, name);
}

static void make_set(const char *prefix, long n)
{
    unsigned char pix[NTRAIN * 16], lab[NTRAIN];
    uint32_t seed = (uint32_t)n;
    for (long i = 0; i < n; i++) {
        lab[i] = (unsigned char)(i % 3);
        for (int j = 0; j < 16; j++) {
            seed = seed * 1664525u + 1013904223u;
            pix[i * 16 + j] = (unsigned char)((j % 4) % 3 == lab[i] ? 150 + (seed >> 26) : seed >> 26);
        }
    }
    long di[3] = {n, 4, 4}, dl[1] = {n};
    char p[64];
    snprintf(p, sizeof p, "%s-images-idx3-ubyte", prefix);
    write_idx(in_dir(p), 3, di, pix);
    snprintf(p, sizeof p, "%s-labels-idx1-ubyte", prefix);
    write_idx(in_dir(p), 1, dl, lab);
}

static int setup(void **state)
{
    (void)state;
    dir = tmpdir_new();
    make_set("train", NTRAIN);
    make_set("t10k", NTEST);
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

static long json_long(const JsonVal *obj, const char *key)
{
    const JsonVal *v = rt_json_get(obj, key);
    assert_non_null(v);
    assert_int_equal(v->kind, JSON_NUM);
    return atol(v->s);
}

static void count(const char *text, const char *needle, int want)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    if (n != want)
        fail_msg("%d times '%s', expected %d", n, needle, want);
}

static void eval_reports(void **state)
{
    (void)state;
    char metrics[600], ck[600], svg[600], ev[600];
    snprintf(metrics, sizeof metrics, "%s", in_dir("m.jsonl"));
    snprintf(ck, sizeof ck, "%s", in_dir("ck"));
    snprintf(svg, sizeof svg, "%s", in_dir("c.svg"));
    snprintf(ev, sizeof ev, "%s", in_dir("ev.json"));
    const char *tr[] = {"tiny", "train", "--data", dir, "--epochs", "3", "--metrics", metrics,
                        "--save", ck, "--plot", svg, "--quiet", NULL};
    Captured c = run(tr);
    expect_status(&c, 0);
    captured_free(&c);
    size_t n;
    char *text = (char *)read_bytes(svg, &n);
    assert_int_equal(strncmp(text, "<?xml", 5), 0);
    expect_contains(text, "<title>tiny: training curves</title>");
    count(text, "<polyline", 4);
    count(text, "<circle", 12); /* 4 curves of 3 epochs */
    expect_contains(text, "</svg>\n");
    free(text);

    const char *e[] = {"tiny", "eval", "--weights", ck, "--data", dir, "--metrics", ev, NULL};
    c = run(e);
    expect_status(&c, 0);
    expect_contains(c.out, "top5 100.00%"); /* 3 classes: always in the top 5 */
    expect_contains(c.out, "confusion matrix (rows: true class, columns: predicted class)");
    text = (char *)read_bytes(ev, &n);
    JsonVal v;
    RtErr err;
    assert_ok(rt_json_parse(&v, text, n, &err), err);
    assert_int_equal(json_long(&v, "n"), NTEST);
    assert_int_equal(json_long(&v, "classes"), 3);
    const JsonVal *cm = rt_json_get(&v, "confusion");
    assert_non_null(cm);
    assert_int_equal(cm->n, 3);
    long diag = 0;
    char row[64];
    for (int i = 0; i < 3; i++) {
        long sum = 0;
        assert_int_equal(cm->item[i].n, 3);
        for (int j = 0; j < 3; j++)
            sum += atol(cm->item[i].item[j].s);
        assert_int_equal(sum, NTEST / 3); /* every true class: 10 samples */
        diag += atol(cm->item[i].item[i].s);
        snprintf(row, sizeof row, "\n   %d", i);
        expect_contains(c.out, row);
    }
    double acc = atof(rt_json_get(&v, "test_acc")->s);
    assert_float_equal(acc, (double)diag / NTEST, 1e-9);
    assert_float_equal(atof(rt_json_get(&v, "test_top5")->s), 1.0, 0);
    snprintf(row, sizeof row, "(%ld/%d)", diag, NTEST);
    expect_contains(c.out, row);
    rt_json_free(&v);
    free(text);
    captured_free(&c);
}

static void plot_command(void **state)
{
    (void)state;
    char m[600], svg[600];
    snprintf(m, sizeof m, "%s", in_dir("p.jsonl"));
    snprintf(svg, sizeof svg, "%s", in_dir("p.svg"));
    /* two runs appended: the last line of each epoch counts; nulls are gaps */
    const char *lines = "{\"epoch\":1,\"train_loss\":1.5,\"train_acc\":0.3,\"test_loss\":1.4,"
                        "\"test_acc\":0.35}\n{\"epoch\":1,\"train_loss\":1.0,\"train_acc\":0.5,"
                        "\"test_loss\":0.9,\"test_acc\":0.55}\n{\"epoch\":2,\"train_loss\":null,"
                        "\"train_acc\":0.7,\"test_loss\":0.6,\"test_acc\":0.65}\n";
    write_bytes(m, lines, strlen(lines));
    const char *p[] = {"tiny", "plot", m, "-o", svg, NULL};
    Captured c = run(p);
    expect_status(&c, 0);
    expect_contains(c.out, "wrote ");
    captured_free(&c);
    size_t n;
    char *text = (char *)read_bytes(svg, &n);
    count(text, "<circle", 7); /* 8 points, one null */
    expect_contains(text, ">50%</text>"); /* the accuracy axis spans 50 .. 70 % */
    expect_contains(text, ">70%</text>");
    expect_contains(text, ">1</text>"); /* loss 0 .. 1: the first run's 1.5 is replaced */
    assert_null(strstr(text, ">1.2</text>"));
    free(text);

    const char *no_o[] = {"tiny", "plot", m, NULL};
    c = run(no_o);
    expect_status(&c, 2);
    expect_contains(c.err, "plot needs -o FILE.svg");
    captured_free(&c);
    write_bytes(m, "{\"epoch\":1}\n{oops}\n", 19);
    c = run(p);
    expect_status(&c, 1);
    expect_contains(c.err, "p.jsonl: line 2: ");
    captured_free(&c);
    write_bytes(m, "{\"epoch\":0}\n", 12);
    c = run(p);
    expect_status(&c, 1);
    expect_contains(c.err, "p.jsonl: line 1: expected an object with \"epoch\" from 1");
    captured_free(&c);
    write_bytes(m, "\n", 1);
    c = run(p);
    expect_status(&c, 1);
    expect_contains(c.err, "p.jsonl: no epochs in the metrics file");
    captured_free(&c);
    const char *tr[] = {"tiny", "train", "--data", dir, "--plot", svg, NULL};
    c = run(tr);
    expect_status(&c, 2);
    expect_contains(c.err, "--plot draws the --metrics file");
    captured_free(&c);
}

/* An eval entry that says it ran: the train entry's outputs, a loss of
 * 42 per sample; train counts its calls. */
static int train_calls, eval_calls;

static void counting_train(int n, const float *params, float *grads, float *arena,
                           const float *const *in, float *const *out)
{
    train_calls++;
    tiny_train(n, params, grads, arena, in, out);
}

static void marked_eval(int n, const float *params, float *grads, float *arena,
                        const float *const *in, float *const *out)
{
    assert_null(grads);
    eval_calls++;
    float g[51];
    tiny_train(n, params, g, arena, in, out);
    out[1][0] = 42.0f;
}

static int with_eval_main(int argc, char **argv)
{
    static const NetcModel model = {tiny_meta, tiny_forward, counting_train, marked_eval, NULL, NULL};
    return netc_run(argc, argv, &model);
}

static void eval_entry(void **state)
{
    (void)state;
    char ck[600];
    snprintf(ck, sizeof ck, "%s", in_dir("ck2"));
    const char *tr[] = {"tiny", "train", "--data", dir, "--epochs", "1", "--save", ck, "--quiet", NULL};
    train_calls = eval_calls = 0;
    Captured c = run_captured(with_eval_main, tr);
    expect_status(&c, 0);
    captured_free(&c);
    assert_int_equal(train_calls, (NTRAIN + 7) / 8); /* the epoch's batches of 8 */
    assert_int_equal(eval_calls, (NTEST + 7) / 8);   /* the test pass */
    const char *e[] = {"tiny", "eval", "--weights", ck, "--data", dir, NULL};
    train_calls = eval_calls = 0;
    c = run_captured(with_eval_main, e);
    expect_status(&c, 0);
    expect_contains(c.out, "test_loss 42.0000");
    assert_int_equal(train_calls, 0);
    assert_int_equal(eval_calls, (NTEST + 7) / 8);
    captured_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eval_reports),
        cmocka_unit_test(eval_entry),
        cmocka_unit_test(plot_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
