/* Tests of plan files (plan.c) and how the schedule applies them
 * (sched_choose_for): a round trip through plan_read and plan_write,
 * malformed lines as located errors, entries that no longer fit the model
 * as located warnings that leave the cost model's choice, and the
 * precedence --algo > a layer's algo= > plan > cost model. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netc.h"

/* conv c: 2 output channels, its conv_dw c.dw; b: a 1x1 conv after it */
static const char *net_src =
    "network p\n"
    "input x: [3, 8, 8]\n"
    "x -> c: conv(2, kernel=3) -> b: conv(4, kernel=1) -> flatten -> d: dense(3) => y\n"
    "output y\n"
    "train { loss softmax_cross_entropy(y) batch 4 }\n";

static const char *c_sig = "[3,8,8]->[2,6,6],k3x3,s1x1,d1x1,p0:0x0:0,g1";

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof path, "/tmp/netc-test-plan-%d.plan", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static Model *load(const char *src)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load_string("p.net", src, &d);
    diag_free(&d);
    assert_non_null(m);
    autodiff(m, m->g->loss, -1);
    return m;
}

/* plan_read then plan_write gives back the same text. */
static void test_round_trip(void **state)
{
    (void)state;
    static const char *header = "# netc plan: a test\n# second comment line\n";
    char text[1024];
    snprintf(text, sizeof text,
             "%sc conv %s im2col below=3:direct direct=0.1611 im2col=0.05188\n"
             "c.dw conv_dw %s direct direct=2.5 im2col=3\n",
             header, c_sig, c_sig);
    write_file(text);
    Arena *a = arena_new();
    Diag d;
    diag_init(&d, stderr);
    Plan *p = plan_read(a, path, &d);
    assert_non_null(p);
    assert_int_equal(p->n, 2);
    assert_string_equal(p->e[0].layer, "c");
    assert_int_equal(p->e[0].pass, OP_CONV);
    assert_string_equal(p->e[0].sig, c_sig);
    assert_int_equal(p->e[0].algo, ALGO_IM2COL);
    assert_int_equal(p->e[0].ntime, 2);
    assert_string_equal(p->e[0].time_name[1], "im2col");
    assert_true(p->e[0].time_ms[1] == 0.05188);
    assert_int_equal(p->e[0].alt, ALGO_DIRECT);
    assert_int_equal(p->e[0].alt_lo, 0);
    assert_int_equal(p->e[0].alt_hi, 3);
    assert_null(p->e[1].alt_name);
    assert_int_equal(p->e[1].loc.line, 4);
    assert_int_equal(p->e[1].algo_loc.col, (int)strlen("c.dw conv_dw ") + (int)strlen(c_sig) + 2);
    char out[80];
    snprintf(out, sizeof out, "%s.out", path);
    assert_true(plan_write(p, header, out, &d));
    assert_string_equal(slurp(out), text);
    assert_int_equal(d.nerror, 0);
    unlink(out);
    unlink(path);
    diag_free(&d);
    arena_free(a);
}

/* Each malformed line: NULL, one error at line:col, saying what was expected. */
static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *line, *at, *says;
    } cases[] = {
        {"c\n", ":2:2:", "expected a pass"},
        {"c convolution [1]->[2] direct\n", ":2:3:", "unknown pass 'convolution'"},
        {"c conv\n", ":2:7:", "expected the node's signature"},
        {"c conv [1]->[2]   # no algorithm\n", ":2:19:", "expected an algorithm"},
        {"c conv [1]->[2] direct direct=fast\n", ":2:24:", "expected a candidate's time"},
        {"c conv [1]->[2] direct =1\n", ":2:24:", "ALGORITHM=MILLISECONDS"},
        {"c conv [1]->[2] direct direct=-1\n", ":2:24:", "ALGORITHM=MILLISECONDS"},
        {"c conv [1]->[2] direct direct\n", ":2:24:", "ALGORITHM=MILLISECONDS"},
        {"c conv [1]->[2] direct below=1:im2col\n", ":2:24:", "below=BATCH:ALGORITHM"},
        {"c conv [1]->[2] direct from=4\n", ":2:24:", "BATCH 2 or more"},
        {"c conv [1]->[2] direct below=4:\n", ":2:24:", "like below=5:winograd2"},
        {"c conv [1]->[2] direct below=x:im2col\n", ":2:24:", "below=BATCH:ALGORITHM"},
        {"c conv [1]->[2] direct direct=1 below=4:im2col\n", ":2:33:", "ALGORITHM=MILLISECONDS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "# header\n%s", cases[i].line);
        write_file(text);
        char msg[2048] = {0};
        FILE *f = fmemopen(msg, sizeof msg - 1, "w");
        Arena *a = arena_new();
        Diag d;
        diag_init(&d, f);
        Plan *p = plan_read(a, path, &d);
        fclose(f);
        if (p || d.nerror != 1 || !strstr(msg, cases[i].at) || !strstr(msg, cases[i].says))
            fail_msg("case %zu '%s': %d errors:\n%s", i, cases[i].line, d.nerror, msg);
        diag_free(&d);
        arena_free(a);
    }
    unlink(path);
    Arena *a = arena_new();
    Diag d;
    char msg[512] = {0};
    FILE *f = fmemopen(msg, sizeof msg - 1, "w");
    diag_init(&d, f);
    assert_null(plan_read(a, "/nonexistent/x.plan", &d));
    fclose(f);
    assert_non_null(strstr(msg, "cannot read the plan '/nonexistent/x.plan'"));
    diag_free(&d);
    arena_free(a);
}

/* Applies plan `text` to the model; returns the number of warnings and the
 * messages in msg. */
static Sched *apply(Model *m, const char *text, int *nwarn, char *msg, size_t cap)
{
    write_file(text);
    FILE *f = fmemopen(msg, cap - 1, "w");
    Diag d;
    diag_init(&d, f);
    Plan *p = plan_read(m->arena, path, &d);
    assert_non_null(p);
    Sched *s = sched_choose_for(m, target_reference(), p, &d);
    fclose(f);
    *nwarn = d.nwarning;
    assert_int_equal(d.nerror, 0);
    diag_free(&d);
    unlink(path);
    return s;
}

/* Entries that no longer fit are warnings at their line and column and
 * the cost model decides; a fitting entry is applied. */
static void test_mismatch(void **state)
{
    (void)state;
    Model *m = load(net_src);
    char text[2048];
    snprintf(text, sizeof text,
             "c9 conv %s im2col\n"                            /* no such node      */
             "b conv_dx %s im2col\n"                          /* b is a conv       */
             "c conv [3,9,9]->[2,7,7],k3x3,s1x1,d1x1,p0:0x0:0,g1 im2col\n" /* shapes */
             "c.dw conv_dw %s fastest\n"                      /* unknown algorithm */
             "b conv [2,6,6]->[4,6,6],k1x1,s1x1,d1x1,p0:0x0:0,g1 winograd\n" /* does not apply */
             "c.dw conv_dw %s direct below=4:im2col\n"       /* not a forward conv */
             "b conv [2,6,6]->[4,6,6],k1x1,s1x1,d1x1,p0:0x0:0,g1 direct from=4:fourier\n"
             "c conv %s im2col from=8:winograd im2col=1 direct=2\n", /* fits          */
             c_sig, c_sig, c_sig, c_sig, c_sig);
    char msg[8192] = {0};
    int nwarn;
    Sched *s = apply(m, text, &nwarn, msg, sizeof msg);
    if (nwarn != 7)
        fail_msg("%d warnings:\n%s", nwarn, msg);
    static const char *const says[] = {
        ":1:1: warning: plan: the model has no node 'c9'",
        ":2:1: warning: plan: 'b' is a conv node, not conv_dx",
        ":3:8: warning: plan: 'c' was measured as [3,9,9]",
        ":4:", "unknown algorithm 'fastest' for 'c.dw'",
        ":5:", "winograd cannot compute 'b' (kernel is not 3x3",
        "the cost model decides instead",
        ":6:", ": warning: plan: below=4:im2col is ignored for 'c.dw': only a forward conv",
        ":7:59: warning: plan: from=4:fourier is ignored for 'b': it is not an algorithm",
    };
    for (size_t i = 0; i < sizeof says / sizeof says[0]; i++)
        if (!strstr(msg, says[i]))
            fail_msg("no '%s' in:\n%s", says[i], msg);
    int c = graph_find(m->g, "c"), cdw = graph_find(m->g, "c.dw");
    assert_int_equal(s[c].algo, ALGO_IM2COL);
    assert_non_null(strstr(s[c].why, "plan: im2col, measured im2col=1 direct=2 ms ("));
    assert_non_null(strstr(s[c].why, ".plan:8); from batch 8: winograd"));
    assert_int_equal(s[c].alt, ALGO_WINOGRAD);
    assert_int_equal(s[c].alt_lo, 8);
    assert_int_equal(s[c].alt_hi, 0);
    assert_int_equal(s[cdw].algo, ALGO_DIRECT);
    assert_int_equal(s[cdw].alt, ALGO_NONE);
    int b = graph_find(m->g, "b");
    assert_int_equal(s[b].algo, ALGO_DIRECT);
    assert_int_equal(s[b].alt, ALGO_NONE);
    model_free(m);
}

/* --algo > a layer's algo= > plan > cost model. */
static void test_precedence(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text, "c conv %s im2col\nc.dw conv_dw %s direct\n", c_sig, c_sig);
    char msg[2048];
    int nwarn;

    Model *m = load(net_src);
    Sched *s = apply(m, text, &nwarn, msg, sizeof msg);
    int c = graph_find(m->g, "c"), cdw = graph_find(m->g, "c.dw"), b = graph_find(m->g, "b");
    assert_int_equal(nwarn, 0);
    assert_int_equal(s[c].algo, ALGO_IM2COL);
    assert_int_equal(s[cdw].algo, ALGO_DIRECT);
    assert_non_null(strstr(s[cdw].why, "plan: direct"));
    assert_non_null(strstr(s[b].why, ": est ")); /* not in the plan */
    program_free(program_build(m, s));
    model_free(m);

    /* the layer's algo= beats the plan */
    char src[1024];
    snprintf(src, sizeof src, "%s", net_src);
    char *at = strstr(src, "kernel=3)");
    memmove(at + strlen("kernel=3, algo=direct)"), at + strlen("kernel=3)"), strlen(at + strlen("kernel=3)")) + 1);
    memcpy(at, "kernel=3, algo=direct)", strlen("kernel=3, algo=direct)"));
    m = load(src);
    s = apply(m, text, &nwarn, msg, sizeof msg);
    assert_int_equal(s[c].algo, ALGO_DIRECT);
    assert_non_null(strstr(s[c].why, "the layer's algo="));
    model_free(m);

    /* --algo beats both */
    m = load(net_src);
    m->conv_algo = ALGO_DIRECT;
    s = apply(m, text, &nwarn, msg, sizeof msg);
    assert_int_equal(s[c].algo, ALGO_DIRECT);
    assert_non_null(strstr(s[c].why, "forced by --algo"));
    model_free(m);
}

/* The cost model names every candidate's estimate, deterministically. */
static void test_model_reason(void **state)
{
    (void)state;
    Model *m = load(net_src);
    Sched *s1 = sched_choose(m), *s2 = sched_choose(m);
    int c = graph_find(m->g, "c"), cdw = graph_find(m->g, "c.dw");
    assert_string_equal(s1[c].why, s2[c].why);
    assert_non_null(strstr(s1[c].why, "est "));
    assert_non_null(strstr(s1[c].why, "batch 4)"));
    assert_non_null(strstr(s1[cdw].why, "winograd "));
    Algo cand[ALGO_COUNT];
    double est[ALGO_COUNT];
    int n = sched_candidates(m->g, m->g->node[c], target_reference(), 4, cand, est);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++)
        assert_true(est[i] > 0 && isfinite(est[i]));
    /* every candidate has an estimate, fft too, and the reason names it */
    assert_int_equal(cand[4], ALGO_FFT);
    assert_non_null(strstr(s1[c].why, "fft"));
    /* direct, im2col, winograd, winograd2, fft */
    assert_int_equal(sched_candidates(m->g, m->g->node[cdw], target_reference(), 4, cand, NULL), 5);
    assert_string_equal(sched_signature(m->arena, m->g, m->g->node[cdw]), c_sig);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_model_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
