/* Tests of the schedule (sched.c): the algorithm each node of LeNet and of
 * a depthwise/pointwise network gets, the reasons recorded, the algorithm
 * by batch and the calls it makes, and the Model.conv_algo override
 * (netc --algo), Winograd's included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "netc.h"

static const char *lenet_src =
    "network lenet\n"
    "input image: [1, 28, 28]\n"
    "image -> c1: conv(6, kernel=5, pad=2) -> relu -> maxpool(2)\n"
    "      -> c2: conv(16, kernel=5) -> relu -> maxpool(2)\n"
    "      -> flatten -> f1: dense(120) -> relu -> f2: dense(84) -> relu\n"
    "      -> f3: dense(10) => logits\n"
    "output logits\n"
    "train { loss softmax_cross_entropy(logits) batch 64 epochs 1 }\n";

/* depthwise 3x3 (one output channel per group), then pointwise 1x1 */
static const char *separable_src =
    "network sep\n"
    "input x: [4, 8, 8]\n"
    "x -> dw: conv(4, kernel=3, pad=1, groups=4) -> relu\n"
    "  -> pw: conv(8, kernel=1) -> flatten -> d: dense(3) => y\n"
    "output y\n"
    "train { loss softmax_cross_entropy(y) }\n";

static Model *load_diff(const char *src, Algo conv_algo)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load_string("test.net", src, &d);
    diag_free(&d);
    assert_non_null(m);
    autodiff(m, m->g->loss, -1);
    m->conv_algo = conv_algo;
    return m;
}

static const Sched *at(const Model *m, const Sched *s, const char *name)
{
    int id = graph_find(m->g, name);
    assert_true(id >= 0);
    assert_non_null(s[id].why);
    return &s[id];
}

static void expect(const Model *m, const Sched *s, const char *name, Algo a)
{
    const Sched *x = at(m, s, name);
    if (x->algo != a)
        fail_msg("%s: %s (%s), expected %s", name, algo_name(x->algo), x->why, algo_name(a));
}

/* LeNet (the cost model, reference target): conv runs the direct
 * micro-kernel, c2's input gradient (6 channels written) an im2col GEMM,
 * both weight gradients direct kernels, dense layers GEMMs, sources
 * nothing, the rest direct loops. */
static void test_lenet_auto(void **state)
{
    (void)state;
    Model *m = load_diff(lenet_src, ALGO_NONE);
    Sched *s = sched_choose(m);
    /* c2.dw: 16 output channels, whole vectors for the direct weight
     * gradient's tiles; c1.dw's 6 are not, but its one input channel
     * takes the depthwise form */
    static const char *const direct[] = {"c1", "c2", "c2.dw", "c1.dw"};
    for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
        expect(m, s, direct[i], ALGO_DIRECT);
    static const char *const im2col[] = {"c2.dx"};
    for (size_t i = 0; i < sizeof im2col / sizeof im2col[0]; i++)
        expect(m, s, im2col[i], ALGO_IM2COL);
    static const char *const gemm[] = {"f1", "f2", "f3", "f1.dx", "f1.dw", "f3.dx", "f3.dw"};
    for (size_t i = 0; i < sizeof gemm / sizeof gemm[0]; i++)
        expect(m, s, gemm[i], ALGO_GEMM);
    expect(m, s, "c1.weight", ALGO_NONE);
    expect(m, s, "image", ALGO_NONE);
    expect(m, s, "relu1", ALGO_DIRECT);
    expect(m, s, "maxpool2", ALGO_DIRECT);
    assert_non_null(strstr(at(m, s, "c2")->why, "direct: est "));
    assert_non_null(strstr(at(m, s, "c2")->why, "(im2col "));
    /* the schedule always yields a program that builds */
    program_free(program_build(m, s));
    model_free(m);
}

/* Depthwise forward, input and weight gradient run direct; the small pointwise layer runs direct, its input gradient im2col
 * and its weight gradient direct (whole vectors of output channels). */
static void test_separable_auto(void **state)
{
    (void)state;
    Model *m = load_diff(separable_src, ALGO_NONE);
    Sched *s = sched_choose(m);
    expect(m, s, "dw", ALGO_DIRECT);
    expect(m, s, "dw.dw", ALGO_DIRECT);
    expect(m, s, "pw", ALGO_DIRECT);
    expect(m, s, "pw.dx", ALGO_IM2COL);
    expect(m, s, "pw.dw", ALGO_DIRECT);
    assert_non_null(strstr(at(m, s, "pw.dw")->why, "winograd, winograd2 n/a: kernel is not 3x3"));
    model_free(m);
}

/* The algorithm by batch (reference target): a 128-channel 7x7 layer
 * runs Winograd F(4x4) at the training batch of 8 and F(2x2) below batch
 * 5; the program calls the two kernels in complementary ranges, both
 * inference and training entries, with the arena the larger kernel's
 * scratch needs and no more.  Without a training batch the choice is made
 * at 1 and the alternative runs from a larger batch; a layer's algo= and
 * Model.no_batch_algo keep one algorithm. */
static const char *by_batch_src =
    "network bb\n"
    "input x: [128, 7, 7]\n"
    "x -> c: conv(128, kernel=3, pad=1) => y\n"
    "output y\n"
    "train { loss mse(y) batch 8 }\n";

static void test_by_batch(void **state)
{
    (void)state;
    Model *m = load_diff(by_batch_src, ALGO_NONE);
    Sched *s = sched_choose(m);
    const Sched *c = at(m, s, "c");
    expect(m, s, "c", ALGO_WINOGRAD);
    assert_int_equal(c->alt, ALGO_WINOGRAD2);
    assert_int_equal(c->alt_lo, 0);
    assert_int_equal(c->alt_hi, 5);
    assert_non_null(strstr(c->why, "; below batch 5: winograd2, est "));
    assert_int_equal(at(m, s, "c.dw")->alt, ALGO_NONE); /* forward layers only */
    Program *p = program_build(m, s);
    Model *one = load_diff(by_batch_src, ALGO_NONE);
    one->no_batch_algo = true;
    Sched *s1 = sched_choose(one);
    assert_int_equal(at(one, s1, "c")->alt, ALGO_NONE);
    Program *p1 = program_build(one, s1);
    int cid = graph_find(m->g, "c");
    for (int e = 0; e < p->nentry; e++) {
        const Entry *en = &p->entry[e];
        int nc = 0, nweights = 0;
        for (int i = 0; i < en->ncall; i++) {
            const Call *call = &en->call[i];
            if (call->node != cid)
                continue;
            if (en->kind == ENTRY_PREPARE) { /* both kernels' filters, at every batch */
                assert_true(call->n_lo == 0 && call->n_hi == 0);
                nc++;
                continue;
            }
            /* a split kernel's two halves run in the same range */
            bool alt = strstr(call->kernel->name, "_winograd2") != NULL;
            assert_int_equal(call->n_lo, alt ? 0 : 5);
            assert_int_equal(call->n_hi, alt ? 5 : 0);
            nc++;
            nweights += call->weights;
        }
        /* the plain entries run both kernels' weight work, the prepared
         * ones have it done by prepare */
        assert_int_equal(nweights, en->kind == ENTRY_PLAIN ? 2 : 0);
        assert_int_equal(nc, 2 + nweights);
        /* only one kernel runs: the scratch is the larger one's */
        assert_int_equal(en->arena_per_n, p1->entry[e].arena_per_n);
        assert_int_equal(en->arena_fixed, p1->entry[e].arena_fixed);
    }
    program_free(p1);
    model_free(one);
    program_free(p);
    model_free(m);

    /* no training batch: chosen at 1, the alternative for larger batches */
    static const char *const variants[] = {
        "network bb\ninput x: [128, 7, 7]\nx -> c: conv(128, kernel=3, pad=1) => y\noutput y\n",
        "network bb\ninput x: [128, 7, 7]\nx -> c: conv(128, kernel=3, pad=1, algo=winograd2) => y\noutput y\n",
    };
    for (int v = 0; v < 2; v++) {
        Diag d;
        diag_init(&d, stderr);
        Model *q = frontend_load_string("test.net", variants[v], &d);
        diag_free(&d);
        assert_non_null(q);
        Sched *sq = sched_choose(q);
        const Sched *cq = at(q, sq, "c");
        expect(q, sq, "c", ALGO_WINOGRAD2);
        if (v == 0) {
            assert_int_equal(cq->alt, ALGO_WINOGRAD);
            assert_true(cq->alt_lo >= 2 && cq->alt_hi == 0);
            assert_non_null(strstr(cq->why, "; from batch "));
        } else {
            assert_int_equal(cq->alt, ALGO_NONE);
        }
        program_free(program_build(q, sq));
        model_free(q);
    }
}

/* --algo forces every convolution pass and nothing else. */
static void test_override(void **state)
{
    (void)state;
    static const Algo forced[] = {ALGO_DIRECT, ALGO_IM2COL};
    for (int f = 0; f < 2; f++) {
        Model *m = load_diff(separable_src, forced[f]);
        Sched *s = sched_choose(m);
        static const char *const convs[] = {"dw", "dw.dw", "pw", "pw.dx", "pw.dw"};
        for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
            expect(m, s, convs[i], forced[f]);
            assert_non_null(strstr(at(m, s, convs[i])->why, "forced"));
        }
        expect(m, s, "d", ALGO_GEMM);
        expect(m, s, "relu1", ALGO_DIRECT);
        program_free(program_build(m, s));
        model_free(m);
    }
}

static void test_algo_names(void **state)
{
    (void)state;
    Algo a = ALGO_COUNT;
    assert_true(algo_parse("auto", &a));
    assert_int_equal(a, ALGO_NONE);
    assert_true(algo_parse("im2col", &a));
    assert_int_equal(a, ALGO_IM2COL);
    assert_true(algo_parse("direct", &a));
    assert_int_equal(a, ALGO_DIRECT);
    assert_true(algo_parse("winograd4", &a));
    assert_int_equal(a, ALGO_WINOGRAD);
    assert_false(algo_parse("winograd3", &a));
    for (int i = 0; i < ALGO_COUNT; i++) {
        assert_true(algo_parse(algo_name((Algo)i), &a) || i == ALGO_NONE);
        if (i != ALGO_NONE)
            assert_int_equal(a, i);
    }
}

/* winograd */
/* A forced Winograd takes the 3x3 stride-1 conv, conv_dx and conv_dw
 * passes; every other convolution keeps the cost model's choice and says
 * why not. */
static void test_override_winograd(void **state)
{
    (void)state;
    static const char *src =
        "network w\n"
        "input x: [3, 9, 9]\n"
        "x -> a: conv(4, kernel=3, pad=1) -> e: conv(5, kernel=3) -> b: conv(4, kernel=3, stride=2)\n"
        "  -> c: conv(4, kernel=3, pad=3) -> flatten -> d: dense(3) => y\n"
        "output y\n"
        "train { loss softmax_cross_entropy(y) }\n";
    static const Algo forced[] = {ALGO_WINOGRAD, ALGO_WINOGRAD2};
    for (int f = 0; f < 2; f++) {
        Model *m = load_diff(src, forced[f]);
        Sched *s = sched_choose(m);
        expect(m, s, "a", forced[f]);
        expect(m, s, "e", forced[f]);
        expect(m, s, "e.dx", forced[f]);
        assert_non_null(strstr(at(m, s, "a")->why, f ? "F(2x2,3x3)" : "F(4x4,3x3)"));
        expect(m, s, "a.dw", forced[f]);
        expect(m, s, "c.dw", forced[f]);  /* padded by 3: the forward's tiles */
        expect(m, s, "b.dw", ALGO_IM2COL);
        assert_non_null(strstr(at(m, s, "b.dw")->why, "not winograd: stride is not 1"));
        expect(m, s, "b", ALGO_IM2COL); /* strided, narrower than a vector */
        assert_non_null(strstr(at(m, s, "b")->why, "not winograd: stride is not 1"));
        expect(m, s, "b.dx", ALGO_IM2COL); /* strided: no vector direct conv_dx */
        expect(m, s, "c", forced[f]);
        expect(m, s, "c.dx", ALGO_IM2COL);
        assert_non_null(strstr(at(m, s, "c.dx")->why, "padded by more than 2"));
        expect(m, s, "d", ALGO_GEMM);
        program_free(program_build(m, s));
        model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_auto),
        cmocka_unit_test(test_separable_auto),
        cmocka_unit_test(test_override),
        cmocka_unit_test(test_by_batch),
        cmocka_unit_test(test_algo_names),
        cmocka_unit_test(test_override_winograd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
