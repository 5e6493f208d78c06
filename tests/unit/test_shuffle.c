/* Tests of graph/shuffle.c: the warning for grouped convs whose groups never
 * exchange information, shuffle=auto inserting channel_shuffle (network and
 * block options), shuffle=off, and the layers that do or do not keep
 * channels apart between the two convs.  Training graphs built after an
 * inserted shuffle verify and differentiate. */
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

typedef struct {
    Model *m;
    int inserted;
    int nwarning;
    char text[4096];
} Run;

/* Loads src, runs the pass with its messages captured. */
static Run run(const char *src)
{
    Run r = {0};
    FILE *f = tmpfile();
    assert_non_null(f);
    Diag d;
    diag_init(&d, f);
    r.m = frontend_load_string("t.net", src, &d);
    if (!r.m) {
        rewind(f);
        size_t n = fread(r.text, 1, sizeof r.text - 1, f);
        r.text[n] = 0;
        fail_msg("did not load:\n%s", r.text);
    }
    r.inserted = shuffle_groups(r.m, &d);
    r.nwarning = d.nwarning;
    assert_int_equal(d.nerror, 0);
    rewind(f);
    size_t n = fread(r.text, 1, sizeof r.text - 1, f);
    r.text[n] = 0;
    fclose(f);
    diag_free(&d);
    assert_true(graph_verify(r.m->g, stderr));
    return r;
}

static char *net(const char *opts, const char *between, const char *second)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "network n%s\n"
             "input x: [12, 8, 8]\n"
             "x -> a: conv(12, kernel=1, groups=3)%s\n"
             "  -> %s -> flatten -> d: dense(4) => y\n"
             "output y\n"
             "train { loss softmax_cross_entropy(y) }\n",
             opts, between, second);
    return buf;
}

static const char *b3 = "b: conv(12, kernel=1, groups=3)";

static void test_warns(void **state)
{
    (void)state;
    Run r = run(net("", " -> relu -> batchnorm -> maxpool(2)", b3));
    assert_int_equal(r.inserted, 0);
    assert_int_equal(r.nwarning, 1);
    assert_non_null(strstr(r.text, "t.net:4:9: warning: conv 'b' (groups=3) reads each of its groups "
                                   "from a single group of conv 'a' (groups=3)"));
    assert_non_null(strstr(r.text, "t.net:3:9: note: 'a' is here"));
    assert_non_null(strstr(r.text, "hint: insert channel_shuffle(3) before 'b'"));
    model_free(r.m);
}

static void test_auto_inserts(void **state)
{
    (void)state;
    Run r = run(net("(shuffle=auto)", " -> relu", b3));
    assert_int_equal(r.inserted, 1);
    assert_int_equal(r.nwarning, 0);
    Graph *g = r.m->g;
    int s = graph_find(g, "b.shuffle"), b = graph_find(g, "b"), relu = graph_find(g, "relu1");
    assert_true(s >= 0 && b > s && relu >= 0 && relu < s);
    assert_int_equal(g->node[s]->op, OP_CHANNEL_SHUFFLE);
    assert_int_equal(g->node[s]->p.perm.factor, 3);
    assert_int_equal(g->node[s]->in[0], relu);
    assert_int_equal(g->node[b]->in[0], s);
    /* ids stay consistent: outputs, loss, parameter owners */
    assert_int_equal(g->node[g->outputs[0]]->op, OP_DENSE);
    assert_int_equal(g->node[g->loss]->op, OP_SOFTMAX_XENT);
    assert_int_equal(r.m->train.loss_node, g->loss);
    int w = graph_find(g, "b.weight");
    assert_int_equal(g->node[w]->p.param.owner, b);
    autodiff(r.m, g->loss, -1);
    assert_true(graph_verify(g, stderr));
    model_free(r.m);
}

static void test_off_and_mixing(void **state)
{
    (void)state;
    static const char *const quiet[][3] = {
        {"(shuffle=off)", "", "b: conv(12, kernel=1, groups=3)"},
        {"", " -> channel_shuffle(3)", "b: conv(12, kernel=1, groups=3)"},
        {"", " -> m: conv(12, kernel=1)", "b: conv(12, kernel=1, groups=3)"},
        {"", " -> lrn(3)", "b: conv(12, kernel=1, groups=3)"},
        /* groups of 6 channels span two of a's groups of 4: information crosses */
        {"", "", "b: conv(12, kernel=1, groups=2)"},
        /* a depthwise b keeps channels apart by design */
        {"", "", "b: conv(12, kernel=3, pad=1, groups=12)"},
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        Run r = run(net(quiet[i][0], quiet[i][1], quiet[i][2]));
        if (r.nwarning || r.inserted)
            fail_msg("case %zu: %d warnings, %d inserted:\n%s", i, r.nwarning, r.inserted, r.text);
        model_free(r.m);
    }
    /* groups of 2 inside a's groups of 4 do not cross; nor through a
     * depthwise conv with a channel multiplier */
    static const char *const loud[][2] = {
        {"", "b: conv(12, kernel=1, groups=6)"},
        {" -> dw: conv(24, kernel=3, pad=1, groups=12)", "b: conv(12, kernel=1, groups=3)"},
    };
    for (size_t i = 0; i < sizeof loud / sizeof loud[0]; i++) {
        Run r = run(net("", loud[i][0], loud[i][1]));
        if (r.nwarning != 1)
            fail_msg("case %zu: %d warnings:\n%s", i, r.nwarning, r.text);
        model_free(r.m);
    }
}

/* A block's option applies to the convs of its instances; one warning per
 * pair of source locations however many instances there are. */
static void test_blocks(void **state)
{
    (void)state;
    static const char *src_fmt =
        "network n\n"
        "input x: [12, 8, 8]\n"
        "block unit(c) %s{\n"
        "  in -> a: conv(c, kernel=1, groups=3) -> relu -> b: conv(c, kernel=1, groups=3) => out\n"
        "}\n"
        "x -> u: unit(12) * 4 -> flatten -> d: dense(4) => y\n"
        "output y\n";
    char src[1024];
    snprintf(src, sizeof src, src_fmt, "");
    Run r = run(src);
    /* inside each unit, and from one unit's b to the next unit's a */
    assert_int_equal(r.nwarning, 2);
    assert_int_equal(r.inserted, 0);
    model_free(r.m);
    snprintf(src, sizeof src, src_fmt, "(shuffle=auto) ");
    r = run(src);
    assert_int_equal(r.nwarning, 0);
    assert_int_equal(r.inserted, 7);
    assert_true(graph_find(r.m->g, "u.3.b.shuffle") >= 0);
    assert_true(graph_find(r.m->g, "u.0.a.shuffle") < 0);
    model_free(r.m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warns),
        cmocka_unit_test(test_auto_inserts),
        cmocka_unit_test(test_off_and_mixing),
        cmocka_unit_test(test_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
