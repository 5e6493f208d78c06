/* Tests of graph/fold_bn.c: which batch norms fold into the convolution
 * before them (with the activation after, a depthwise convolution, an
 * output activation) and which keep their kernel (a convolution something
 * else reads, no running statistics, weights larger than the passes the
 * fold removes), in inference and training graphs; the forward entry calls
 * the fold and no batchnorm kernel, the train entry its usual kernels; the
 * verifier rejects a broken fold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "netc.h"

/* Loads src, runs the passes before the fold (autodiff when `train`) and
 * the fold; the graph verifies after it. */
static Model *load(const char *src, bool train, int *nfolded)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load_string("t.net", src, &d);
    assert_non_null(m);
    assert_int_equal(d.nerror, 0);
    diag_free(&d);
    if (train) {
        assert_true(m->g->loss >= 0);
        autodiff(m, m->g->loss, -1);
    }
    fuse_epilogues(m);
    fold_shuffles(m);
    *nfolded = fold_batchnorms(m);
    assert_true(graph_verify(m->g, stderr));
    return m;
}

static Node *named(const Model *m, const char *name)
{
    int id = graph_find(m->g, name);
    assert_true(id >= 0);
    return m->g->node[id];
}

static const char *const net =
    "network n\n"
    "input x: [2, 6, 6]\n"
    "x -> c1: conv(4, kernel=3, pad=1, bias=false) -> b1: batchnorm -> r1: relu\n"
    "  -> dw: conv(4, kernel=3, pad=1, groups=4) -> b2: batchnorm => t\n"
    "t -> c3: conv(4, kernel=1) => u\n"
    "u -> b3: batchnorm => v\n"
    "(u, v) -> add -> flatten -> f: dense(3) => y\n"
    "x -> c4: conv(2, kernel=1) -> b4: batchnorm(track_running_stats=false) -> relu => z\n"
    "x -> c5: conv(2, kernel=1) -> b5: batchnorm -> s5: sigmoid => w\n"
    "output y, z, w\n"
    "train { loss mse(y) }\n";

static void test_groups(void **state)
{
    (void)state;
    for (int train = 0; train < 2; train++) {
        int n;
        Model *m = load(net, train, &n);
        assert_int_equal(n, 3);
        const Node *c1 = named(m, "c1"), *b1 = named(m, "b1"), *r1 = named(m, "r1");
        assert_int_equal(c1->bn_fold, b1->id);
        assert_int_equal(c1->bn_epi, r1->id);
        assert_int_equal(b1->bn_into, c1->id);
        assert_int_equal(r1->bn_into, c1->id);
        /* depthwise: folded; its batchnorm's reader is a conv, no epilogue */
        const Node *dw = named(m, "dw");
        assert_int_equal(dw->bn_fold, named(m, "b2")->id);
        assert_int_equal(dw->bn_epi, -1);
        /* c3 is read by b3 and by the add */
        assert_int_equal(named(m, "c3")->bn_fold, -1);
        assert_int_equal(named(m, "b3")->bn_into, -1);
        /* no running statistics: batch statistics in inference too */
        assert_int_equal(named(m, "c4")->bn_fold, -1);
        /* the activation is a network output: the conv stores into it */
        assert_int_equal(named(m, "c5")->bn_epi, named(m, "s5")->id);
        /* no input list changes */
        assert_int_equal(r1->in[0], b1->id);
        model_free(m);
    }
}

/* Weights outnumbering the activations of a sample: the fold would cost
 * more than the batchnorm pass it removes. */
static void test_big_weights(void **state)
{
    (void)state;
    int n;
    Model *m = load("network n\ninput x: [64, 2, 2]\n"
                    "x -> c: conv(64, kernel=3, pad=1) -> b: batchnorm -> relu => y\noutput y\n",
                    false, &n);
    assert_int_equal(n, 0);
    model_free(m);
}

static int calls_of(const Entry *e, const char *kernel)
{
    int k = 0;
    for (int i = 0; i < e->ncall; i++)
        k += strstr(e->call[i].kernel->name, kernel) != NULL;
    return k;
}

static void test_entries(void **state)
{
    (void)state;
    int n;
    Model *m = load(net, true, &n);
    Sched *s = sched_choose(m);
    Program *p = program_build(m, s);
    const Entry *fwd = &p->entry[0], *train = &p->entry[1];
    assert_string_equal(train->name, "train");
    /* forward: a fold per group, then the folded conv; b3 and b4 remain */
    assert_int_equal(calls_of(fwd, "_batchnorm_fold"), 3);
    assert_int_equal(calls_of(fwd, "_conv_folded"), 3);
    assert_int_equal(calls_of(fwd, "_batchnorm") - calls_of(fwd, "_batchnorm_fold"), 2);
    assert_int_equal(calls_of(fwd, "_relu"), 1); /* after b4 */
    assert_int_equal(calls_of(fwd, "_sigmoid"), 0);
    for (int i = 0; i < fwd->ncall; i++)
        if (strstr(fwd->call[i].kernel->name, "_batchnorm_fold")) {
            assert_true(i + 1 < fwd->ncall);
            assert_int_equal(fwd->call[i + 1].node, m->g->node[fwd->call[i].node]->bn_into);
        }
    /* train: every batchnorm, relu and sigmoid its own kernel (a conv may
     * call a folded one's kernel: dw's, with a bias and no epilogue, is the
     * same code) */
    assert_int_equal(calls_of(train, "_batchnorm_fold"), 0);
    int bn_calls = 0;
    for (int i = 0; i < train->ncall; i++)
        bn_calls += m->g->node[train->call[i].node]->op == OP_BATCHNORM;
    assert_int_equal(bn_calls, 5);
    assert_int_equal(calls_of(train, "_sigmoid"), 1);
    program_free(p);
    model_free(m);
}

static void test_verifier(void **state)
{
    (void)state;
    int n;
    Model *m = load(net, false, &n);
    Node *c1 = named(m, "c1"), *b1 = named(m, "b1"), *r1 = named(m, "r1"), *c3 = named(m, "c3");
    FILE *null = fopen("/dev/null", "w");
    r1->bn_into = -1;
    assert_false(graph_verify(m->g, null));
    r1->bn_into = c1->id;
    c3->bn_fold = b1->id; /* b1 does not read c3 */
    assert_false(graph_verify(m->g, null));
    c3->bn_fold = -1;
    c3->bn_epi = r1->id; /* an epilogue without a batchnorm */
    assert_false(graph_verify(m->g, null));
    c3->bn_epi = -1;
    named(m, "b3")->bn_into = c3->id; /* c3 does not say so */
    assert_false(graph_verify(m->g, null));
    named(m, "b3")->bn_into = -1;
    assert_true(graph_verify(m->g, null));
    fclose(null);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_big_weights),
        cmocka_unit_test(test_entries),
        cmocka_unit_test(test_verifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
