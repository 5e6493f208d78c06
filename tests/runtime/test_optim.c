/* test_optim.c - SGD, momentum, weight decay and Nesterov against values
 * computed by hand from torch.optim.SGD's definition. */
#include <math.h>

#include "rt_test.h"

static void expect_near(float got, double want)
{
    if (fabs((double)got - want) > 1e-6 * (1 + fabs(want)))
        fail_msg("got %.9g, expected %.9g", (double)got, want);
}

static void plain_sgd(void **state)
{
    (void)state;
    RtSgd o = {.lr = 0.1f};
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, -1.0f}, v[2] = {0};
    rt_sgd_step(&o, p, g, v, 2);
    expect_near(p[0], 0.95); /* 1 - 0.1 * 0.5 */
    expect_near(p[1], -1.9); /* -2 - 0.1 * -1 */
}

static void momentum_and_weight_decay(void **state)
{
    (void)state;
    RtSgd o = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
    float p[1] = {1.0f}, v[1] = {0}, g[1] = {0.5f};
    /* step 1: g' = 0.5 + 0.01*1 = 0.51; v = 0.51; p = 1 - 0.051 = 0.949 */
    rt_sgd_step(&o, p, g, v, 1);
    expect_near(v[0], 0.51);
    expect_near(p[0], 0.949);
    /* step 2: g' = 0.5 + 0.00949 = 0.50949; v = 0.9*0.51 + 0.50949 = 0.96849;
     *         p = 0.949 - 0.096849 = 0.852151 */
    rt_sgd_step(&o, p, g, v, 1);
    expect_near(v[0], 0.96849);
    expect_near(p[0], 0.852151);
}

static void nesterov(void **state)
{
    (void)state;
    RtSgd o = {.lr = 0.1f, .momentum = 0.9f, .nesterov = true};
    float p[1] = {1.0f}, v[1] = {0}, g[1] = {0.5f};
    /* step 1: v = 0.5; d = 0.5 + 0.9*0.5 = 0.95; p = 1 - 0.095 = 0.905 */
    rt_sgd_step(&o, p, g, v, 1);
    expect_near(v[0], 0.5);
    expect_near(p[0], 0.905);
    /* step 2 (g = -0.2): v = 0.45 - 0.2 = 0.25; d = -0.2 + 0.225 = 0.025;
     *                    p = 0.905 - 0.0025 = 0.9025 */
    g[0] = -0.2f;
    rt_sgd_step(&o, p, g, v, 1);
    expect_near(v[0], 0.25);
    expect_near(p[0], 0.9025);
}

static void zero_momentum_keeps_no_history(void **state)
{
    (void)state;
    RtSgd o = {.lr = 1.0f, .weight_decay = 0.5f};
    float p[1] = {2.0f}, v[1] = {123.0f}, g[1] = {1.0f};
    /* momentum 0: v = g + wd*p = 2 whatever v held; p = 2 - 2 = 0 */
    rt_sgd_step(&o, p, g, v, 1);
    expect_near(v[0], 2.0);
    expect_near(p[0], 0.0);
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
        cmocka_unit_test(plain_sgd),
        cmocka_unit_test(momentum_and_weight_decay),
        cmocka_unit_test(nesterov),
        cmocka_unit_test(zero_momentum_keeps_no_history),
        cmocka_unit_test(schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
