/* test_optim.c - every optimiser against torch.optim, step for step, and
 * the settings around them (clipping, lr multipliers, freezing, warm-up,
 * schedules).
 *
 * tests/reference/optim/<case>/ (written by tests/reference/gen_optim.py)
 * holds the train records of a configuration, initial parameters, the
 * gradient of each step and torch's parameters after it; each case is
 * replayed here through the model description parser and rt_optim_update. */
#include <math.h>

#include "rt_test.h"

#define REF_DIR "tests/reference/optim"

/* The model: params a [5], b [3], c [2], as gen_optim.py lays them out. */
static void parse_case_meta(const char *records, RtMeta *m)
{
    char text[2048];
    snprintf(text, sizeof text,
             "netc 1\nname opt\nparams 10\narena 0 0\ninput x 1 1\noutput y 1 1\n"
             "param a 0 5 1 5 zero 0 0 1 1\nparam b 5 3 1 3 zero 0 0 1 1\n"
             "param c 8 2 1 2 zero 0 0 1 1\ntrain loss mse\ntrain target onehot 1 1\n"
             "%strain batch 1\ntrain epochs 1\ntrain seed 1\nend\n", records);
    RtErr e;
    assert_ok(rt_meta_parse(m, text, &e), e);
}

static RtArray load(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    RtArray a;
    RtErr e;
    assert_ok(rt_npy_read(path, &a, &e), e);
    return a;
}

/* Replays one case; returns the largest relative error. */
static double replay(const char *dir)
{
    size_t n;
    char path[600];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    char *records = (char *)read_bytes(path, &n);
    RtMeta m;
    parse_case_meta(records, &m);
    free(records);
    RtArray p0 = load(dir, "params0"), grads = load(dir, "grads"), want = load(dir, "params");
    assert_int_equal(p0.numel, 10);
    assert_int_equal(grads.numel, want.numel);
    long steps = want.d[0];
    float p[10], g[10], state[10 * RT_OPT_SLOTS];
    memcpy(p, p0.data, sizeof p);
    rt_optim_init_state(&m.opt, state, m.params);
    double worst = 0;
    for (long s = 0; s < steps; s++) {
        memcpy(g, grads.data + s * 10, sizeof g);
        rt_optim_update(&m, &m.opt, m.opt.lr, s + 1, p, g, state);
        for (int i = 0; i < 10; i++) {
            double w = want.data[s * 10 + i], err = fabs((double)p[i] - w) / fmax(fabs(w), 0.1);
            if (err > 1e-6)
                fail_msg("%s: step %ld, float %d: got %.9g, torch %.9g", dir, s + 1, i,
                         (double)p[i], w);
            worst = fmax(worst, err);
        }
    }
    rt_array_free(&p0);
    rt_array_free(&grads);
    rt_array_free(&want);
    rt_meta_free(&m);
    return worst;
}

static void matches_torch(void **state)
{
    (void)state;
    DIR *d = opendir(REF_DIR);
    assert_non_null(d);
    struct dirent *de;
    int cases = 0;
    bool kind_seen[RT_OPT_COUNT] = {0};
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", REF_DIR, de->d_name);
        double worst = replay(dir);
        print_message("%-24s max relative error %.2g\n", de->d_name, worst);
        RtOptKind k;
        char kind[32];
        snprintf(kind, sizeof kind, "%s", de->d_name);
        kind[strcspn(kind, "_")] = '\0';
        if (rt_optim_kind(kind, &k))
            kind_seen[k] = true;
        cases++;
    }
    closedir(d);
    assert_true(cases >= 17);
    for (int k = 0; k < RT_OPT_COUNT; k++)
        if (!kind_seen[k])
            fail_msg("no reference case for %s", rt_optim_name((RtOptKind)k));
}

/* Frozen parameters keep their values and state, and stay out of the
 * norm; a multiplier scales the rate. */
static void freeze_and_multipliers(void **state)
{
    (void)state;
    RtMeta m;
    parse_case_meta("train optimizer sgd lr=1 momentum=0 dampening=0 weight_decay=0 nesterov=0\n"
                    "train lr_mult b 0.5\ntrain freeze c\ntrain clip_norm 10\n", &m);
    float p[10] = {0}, g[10], st[10 * RT_OPT_SLOTS] = {0};
    for (int i = 0; i < 10; i++)
        g[i] = 1.0f;
    /* the norm of a and b only: sqrt(8) < 10, so nothing is clipped */
    assert_float_equal(rt_clip_grad_norm(&m, g, 10.0f), sqrtf(8.0f), 1e-6);
    rt_optim_update(&m, &m.opt, 1.0f, 1, p, g, st);
    assert_float_equal(p[0], -1.0f, 0);
    assert_float_equal(p[5], -0.5f, 0);
    assert_float_equal(p[8], 0.0f, 0);
    assert_float_equal(st[8], 0.0f, 0);
    /* clipping scales a and b to norm 1, c's gradient untouched */
    for (int i = 0; i < 10; i++)
        g[i] = 2.0f;
    rt_clip_grad_norm(&m, g, 1.0f);
    assert_float_equal(g[0], 2.0f * (1.0f / (sqrtf(32.0f) + 1e-6f)), 1e-7);
    assert_float_equal(g[9], 2.0f, 0);
    rt_meta_free(&m);
}

static void warmup(void **state)
{
    (void)state;
    assert_true(rt_warmup_factor(1, 4) == 0.25);
    assert_true(rt_warmup_factor(3, 4) == 0.75);
    assert_true(rt_warmup_factor(4, 4) == 1.0);
    assert_true(rt_warmup_factor(9, 4) == 1.0);
    assert_true(rt_warmup_factor(1, 0) == 1.0);
}

/* Settings are checked as strictly as the command line's. */
static void settings(void **state)
{
    (void)state;
    RtOptim o = {.kind = RT_OPT_ADAM};
    RtErr e;
    char buf[64];
    assert_ok(rt_optim_set(&o, "beta2", "0.999", &e), e);
    rt_optim_get(&o, "beta2", buf, sizeof buf);
    assert_string_equal(buf, "0.999");
    assert_ok(rt_optim_set(&o, "amsgrad", "1", &e), e);
    assert_true(o.amsgrad);
    assert_non_null(rt_optim_slot(&o, 2));
    assert_false(rt_optim_set(&o, "beta1", "1", &e));
    expect_contains(e.msg, "expected a number in [0, 1), found '1'");
    assert_false(rt_optim_set(&o, "lr", "-0.1", &e));
    expect_contains(e.msg, "expected a positive number");
    assert_false(rt_optim_set(&o, "momentum", "0.9", &e));
    expect_contains(e.msg, "optimizer adam has no setting 'momentum'");
    assert_false(rt_optim_set(&o, "amsgrad", "yes", &e));
    expect_contains(e.msg, "expected 0 or 1");
    RtOptim s = {.kind = RT_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .dampening = 0.5f,
                 .nesterov = true};
    assert_false(rt_optim_check(&s, &e));
    expect_contains(e.msg, "nesterov needs a momentum greater than 0 and dampening 0");
    RtOptim r = {.kind = RT_OPT_RMSPROP};
    assert_null(rt_optim_slot(&r, 1));
    assert_null(rt_optim_slot(&r, 2));
    RtOptKind k;
    assert_false(rt_optim_kind("adamax", &k));
    assert_true(rt_optim_kind("adadelta", &k) && k == RT_OPT_ADADELTA);
}

/* Schedules are stepped per epoch: cosine from base down towards 0 (as
 * PyTorch's CosineAnnealingLR with eta_min 0), step by gamma every N. */
static void schedules(void **state)
{
    (void)state;
    RtSchedule c = {RT_SCHED_CONSTANT, 1, 1.0}, cos_ = {RT_SCHED_COSINE, 1, 1.0},
               st = {RT_SCHED_STEP, 3, 0.1};
    assert_float_equal(rt_schedule_lr(&c, 0.5f, 7, 10), 0.5f, 0);
    assert_float_equal(rt_schedule_lr(&cos_, 0.01f, 0, 10), 0.01f, 1e-9);
    assert_float_equal(rt_schedule_lr(&cos_, 0.01f, 5, 10), 0.005f, 1e-9);
    assert_float_equal(rt_schedule_lr(&cos_, 0.01f, 9, 10), 0.01f * (1 + cos(0.9 * 3.14159265358979323846)) / 2, 1e-9);
    assert_float_equal(rt_schedule_lr(&st, 1.0f, 2, 10), 1.0f, 0);
    assert_float_equal(rt_schedule_lr(&st, 1.0f, 3, 10), 0.1f, 1e-7);
    assert_float_equal(rt_schedule_lr(&st, 1.0f, 6, 10), 0.01f, 1e-8);

    RtSchedule s;
    RtErr e;
    char buf[64];
    assert_true(rt_schedule_parse("step:4:0.5", &s, &e));
    assert_int_equal(s.kind, RT_SCHED_STEP);
    assert_int_equal(s.every, 4);
    rt_schedule_str(&s, buf, sizeof buf);
    assert_string_equal(buf, "step:4:0.5");
    assert_true(rt_schedule_parse("cosine", &s, &e));
    rt_schedule_str(&s, buf, sizeof buf);
    assert_string_equal(buf, "cosine");
    const char *bad[] = {"cosin", "step", "step:0:0.5", "step:3:0", "step:3:1.5", "step:3:x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(rt_schedule_parse(bad[i], &s, &e));
        assert_non_null(strstr(e.msg, "schedule"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_torch),
        cmocka_unit_test(freeze_and_multipliers),
        cmocka_unit_test(warmup),
        cmocka_unit_test(settings),
        cmocka_unit_test(schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
