/* Tests of the graph IR: op tables, shapes, the printer and each failure
 * the verifier reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc.h"

static SrcLoc here = {"t.net", 1, 1};

static char *verify_message(const Graph *g, bool *ok)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    *ok = graph_verify(g, f);
    fclose(f);
    return text;
}

/* x [N, 2, 4, 4] -> relu, with shapes set by hand. */
static Graph *small(Arena *a)
{
    Graph *g = graph_new(a);
    Node *x = graph_add(g, OP_INPUT, "x", here, 0, NULL);
    x->shape = (Shape){3, {2, 4, 4}, true};
    Node *r = graph_add(g, OP_RELU, "r", here, 1, (int[]){0});
    r->shape = x->shape;
    g->outputs = arena_alloc(a, sizeof(int));
    g->outputs[0] = 1;
    g->noutput = 1;
    return g;
}

static void test_op_table(void **state)
{
    (void)state;
    assert_string_equal(op_name(OP_CONV), "conv");
    assert_int_equal(op_lookup("maxpool"), OP_MAXPOOL);
    assert_int_equal(op_lookup("no_such_op"), OP_COUNT);
    assert_true(op_flags(OP_SOFTMAX_XENT) & OPF_LOSS);
    assert_true(op_flags(OP_PARAM) & OPF_SOURCE);
    assert_int_equal(op_arity(OP_CONCAT), -1);
    for (int i = 0; i < OP_COUNT; i++)
        assert_int_equal(op_lookup(op_name((Op)i)), i);
}

static void test_shapes(void **state)
{
    (void)state;
    Shape a = {3, {6, 28, 28}, true}, b = {3, {6, 28, 28}, false};
    assert_int_equal(shape_numel(&a), 6 * 28 * 28);
    assert_false(shape_eq(&a, &b));
    char buf[64];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    shape_print(f, &a);
    fputc(' ', f);
    shape_print(f, &(Shape){0, {0}, false});
    fclose(f);
    assert_string_equal(buf, "[N, 6, 28, 28] []");
}

static void test_print(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Graph *g = small(a);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    graph_print(f, g);
    fclose(f);
    assert_string_equal(text, "%0 = input() \"x\" [N, 2, 4, 4] @1:1\n"
                              "%1 = relu(%0) \"r\" [N, 2, 4, 4] @1:1\n"
                              "outputs %1\n");
    free(text);
    arena_free(a);
}

static void expect_rejected(Graph *g, const char *what)
{
    bool ok;
    char *msg = verify_message(g, &ok);
    assert_false(ok);
    if (!strstr(msg, what))
        fail_msg("verifier said '%s', expected '%s'", msg, what);
    free(msg);
}

static void test_verify(void **state)
{
    (void)state;
    Arena *a = arena_new();
    bool ok;
    free(verify_message(small(a), &ok));
    assert_true(ok);

    Graph *g = small(a);
    g->node[1]->in[0] = 1; /* reads itself */
    expect_rejected(g, "not an earlier node");

    g = small(a);
    g->node[1]->name = "x";
    expect_rejected(g, "both named 'x'");

    g = small(a);
    g->node[1]->shape.d[1] = 0;
    expect_rejected(g, "dim 1 = 0");

    g = small(a);
    g->node[1]->shape.d[2] = 5; /* relu keeps its input's shape */
    expect_rejected(g, "disagrees with shape inference");

    g = small(a);
    g->node[1]->nin = 2;
    expect_rejected(g, "has 2 inputs, expected 1");

    g = small(a);
    g->loss = 1; /* a relu is no loss */
    expect_rejected(g, "not an unbatched scalar loss");

    g = small(a);
    g->outputs[0] = 7;
    expect_rejected(g, "output 0 is %7");
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
