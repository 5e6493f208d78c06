/* Tests of graph/fold_shuffle.c: which channel shuffles fold (after a
 * concat, after an activation with its gradient, before slices) and which
 * keep their kernel (a network output, between two convolutions, a concat
 * something else reads), in inference and training graphs; the verifier
 * rejects a broken fold. */
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
    *nfolded = fold_shuffles(m);
    assert_true(graph_verify(m->g, stderr));
    return m;
}

static const Node *named(const Model *m, const char *name)
{
    int id = graph_find(m->g, name);
    assert_true(id >= 0);
    return m->g->node[id];
}

static const char *const v2 =
    "network n\n"
    "input x: [8, 4, 4]\n"
    "x -> slice(0, 0, 4) => x1\n"
    "x -> slice(0, 4, 8) -> a: conv(4, kernel=3, pad=1) => x2\n"
    "(x1, x2) -> cat: concat -> s: channel_shuffle(2) -> p: slice(0, 0, 4) -> flatten -> d: dense(2) => y\n"
    "output y\n"
    "train { loss softmax_cross_entropy(y) }\n";

static void test_concat(void **state)
{
    (void)state;
    for (int train = 0; train < 2; train++) {
        int n;
        Model *m = load(v2, train, &n);
        const Node *cat = named(m, "cat"), *s = named(m, "s"), *p = named(m, "p");
        assert_int_equal(cat->shuf_out, 2);
        assert_int_equal(s->folded_into, cat->id);
        assert_int_equal(p->in[0], cat->id);
        /* training: the permute of the gradient folds into the concat's
         * gradient slices */
        assert_int_equal(n, train ? 2 : 1);
        if (train) {
            const Node *dx = named(m, "s.dx");
            assert_int_equal(dx->op, OP_PERMUTE);
            assert_true(dx->folded_into > dx->id);
            assert_int_equal(m->g->node[dx->folded_into]->shuf_in, 4);
        }
        model_free(m);
    }
}

static void test_activation(void **state)
{
    (void)state;
    const char *src = "network n\n"
                      "input x: [6, 4, 4]\n"
                      "x -> a: conv(6, kernel=1, groups=3) -> r: relu -> s: channel_shuffle(3)\n"
                      "  -> b: conv(6, kernel=1, groups=3) -> flatten -> d: dense(2) => y\n"
                      "output y\n"
                      "train { loss softmax_cross_entropy(y) }\n";
    for (int train = 0; train < 2; train++) {
        int n;
        Model *m = load(src, train, &n);
        /* the conv's relu is fused into it: the shuffle sits between two
         * convolutions and keeps its kernel */
        assert_int_equal(n, 0);
        assert_int_equal(named(m, "s")->folded_into, -1);
        model_free(m);
    }
    const char *bn = "network n\n"
                     "input x: [6, 4, 4]\n"
                     "x -> a: conv(6, kernel=1, groups=3) -> batchnorm -> r: relu -> s: channel_shuffle(3)\n"
                     "  -> b: conv(6, kernel=1, groups=3) -> flatten -> d: dense(2) => y\n"
                     "output y\n"
                     "train { loss softmax_cross_entropy(y) }\n";
    for (int train = 0; train < 2; train++) {
        int n;
        Model *m = load(bn, train, &n);
        const Node *r = named(m, "r"), *s = named(m, "s");
        assert_int_equal(r->shuf_out, 3);
        assert_int_equal(s->folded_into, r->id);
        assert_int_equal(named(m, "b")->in[0], r->id);
        if (train) {
            const Node *rdx = named(m, "r.dx");
            assert_int_equal(rdx->shuf_out, 2); /* the inverse of 3 groups of 6 */
            assert_int_equal(named(m, "s.dx")->folded_into, rdx->id);
        }
        model_free(m);
    }
}

static void test_kept(void **state)
{
    (void)state;
    int n;
    /* the shuffle is the network's output */
    Model *m = load("network n\ninput x: [4, 2, 2]\n"
                    "x -> a: conv(2, kernel=1) => p\n"
                    "x -> b: conv(2, kernel=1) => q\n"
                    "(p, q) -> cat: concat -> s: channel_shuffle(2) => y\noutput y\n",
                    false, &n);
    assert_int_equal(n, 0);
    model_free(m);
    /* the concat is read twice */
    m = load("network n\ninput x: [4, 2, 2]\n"
             "x -> a: conv(2, kernel=1) => p\n"
             "x -> b: conv(2, kernel=1) => q\n"
             "(p, q) -> cat: concat => c\n"
             "c -> s: channel_shuffle(2) => t\n"
             "(c, t) -> add -> flatten => y\noutput y\n",
             false, &n);
    assert_int_equal(n, 0);
    model_free(m);
}

/* A node reading a folded shuffle, or a shuffle folded into a node that
 * does not apply it, fails to verify. */
static void test_verifier(void **state)
{
    (void)state;
    int n;
    Model *m = load(v2, false, &n);
    Node *cat = m->g->node[graph_find(m->g, "cat")];
    Node *s = m->g->node[graph_find(m->g, "s")];
    Node *p = m->g->node[graph_find(m->g, "p")];
    FILE *null = fopen("/dev/null", "w");
    p->in[0] = s->id;
    assert_false(graph_verify(m->g, null));
    p->in[0] = cat->id;
    cat->shuf_out = 4;
    assert_false(graph_verify(m->g, null));
    cat->shuf_out = 3; /* 8 channels are not 3 groups */
    assert_false(graph_verify(m->g, null));
    cat->shuf_out = 2;
    assert_true(graph_verify(m->g, null));
    p->shuf_out = 2; /* a slice cannot store shuffled */
    assert_false(graph_verify(m->g, null));
    fclose(null);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_activation),
        cmocka_unit_test(test_kept),
        cmocka_unit_test(test_verifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
