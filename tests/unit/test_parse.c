/* Tests of the front end: parsing, elaboration to the graph IR, naming,
 * blocks and repetition, padding, the train section, diagnostics, and
 * docs/language.md (every ```net example loads, every schema row is
 * documented). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "netc.h"
#include "schema.h"

/* ---- helpers ---- */

typedef struct {
    Model *m;
    char *out;      /* everything the Diag printed */
    size_t len;
    int nerror;
} Load;

static Load load_src(const char *src)
{
    Load r = {0};
    FILE *f = open_memstream(&r.out, &r.len);
    Diag d;
    diag_init(&d, f);
    r.m = frontend_load_string("t.net", src, &d);
    r.nerror = d.nerror;
    diag_free(&d);
    fclose(f);
    return r;
}

static void load_free(Load *r)
{
    model_free(r->m);
    free(r->out);
}

/* Loads src, which must be free of errors. */
static Model *ok(const char *src)
{
    Load r = load_src(src);
    if (!r.m)
        fprintf(stderr, "unexpected errors:\n%s", r.out);
    assert_non_null(r.m);
    free(r.out);
    assert_true(graph_verify(r.m->g, stderr));
    return r.m;
}

/* Loads src, which must fail with `substr` among the messages. */
static void fails(const char *src, const char *substr)
{
    Load r = load_src(src);
    if (r.m || !strstr(r.out, substr))
        fprintf(stderr, "wanted an error containing \"%s\", got:\n%s", substr, r.out);
    assert_null(r.m);
    assert_non_null(strstr(r.out, substr));
    assert_null(strstr(r.out, "internal error"));
    load_free(&r);
}

/* An optimizer setting of the train configuration, by name. */
static double setting(const TrainConfig *t, const char *name)
{
    for (int i = 0; i < t->nopt; i++)
        if (!strcmp(t->opt[i].name, name))
            return t->opt[i].value;
    fail_msg("no optimizer setting '%s'", name);
    return 0;
}

static const Node *node(const Model *m, const char *name)
{
    int id = graph_find(m->g, name);
    if (id < 0)
        fprintf(stderr, "no node named '%s'\n", name);
    assert_true(id >= 0);
    return graph_node(m->g, id);
}

static void shape_is(const Node *n, bool batched, int rank, const int *d)
{
    assert_int_equal(n->shape.batched, batched);
    assert_int_equal(n->shape.rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(n->shape.d[i], d[i]);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* ---- LeNet, the reference example ---- */

static void test_lenet(void **state)
{
    (void)state;
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load("examples/lenet.net", &d);
    assert_non_null(m);
    assert_int_equal(d.nerror, 0);
    Graph *g = m->g;
    assert_string_equal(m->name, "lenet");
    assert_string_equal(m->file, "examples/lenet.net");
    assert_true(graph_verify(g, stderr));
    /* input, 3 x (conv|dense) params pairs x 5, 5 layers, 4 relu, 2 pool,
     * flatten, target, loss */
    assert_int_equal(g->nnode, 25);

    shape_is(node(m, "image"), true, 3, (int[]){1, 28, 28});
    shape_is(node(m, "c1"), true, 3, (int[]){6, 28, 28});
    shape_is(node(m, "maxpool1"), true, 3, (int[]){6, 14, 14});
    shape_is(node(m, "c2"), true, 3, (int[]){16, 10, 10});
    shape_is(node(m, "maxpool2"), true, 3, (int[]){16, 5, 5});
    shape_is(node(m, "flatten1"), true, 1, (int[]){400});
    shape_is(node(m, "f1"), true, 1, (int[]){120});
    shape_is(node(m, "f3"), true, 1, (int[]){10});
    assert_int_equal(node(m, "relu4")->op, OP_RELU);

    const Node *c1 = node(m, "c1"), *w = node(m, "c1.weight"), *b = node(m, "c1.bias");
    assert_int_equal(c1->op, OP_CONV);
    assert_int_equal(c1->nin, 3);
    assert_int_equal(c1->in[1], w->id);
    assert_int_equal(c1->in[2], b->id);
    assert_int_equal(c1->p.conv.nsp, 2);
    assert_int_equal(c1->p.conv.out_channels, 6);
    assert_int_equal(c1->p.conv.kernel[0], 5);
    assert_int_equal(c1->p.conv.kernel[1], 5);
    assert_int_equal(c1->p.conv.kernel[2], 1);
    assert_int_equal(c1->p.conv.stride[0], 1);
    assert_int_equal(c1->p.conv.pad_lo[0], 2);
    assert_int_equal(c1->p.conv.pad_hi[1], 2);
    assert_int_equal(c1->p.conv.pad_lo[2], 0);
    assert_int_equal(c1->p.conv.groups, 1);
    assert_true(c1->p.conv.bias);
    assert_int_equal(c1->loc.line, 7);
    assert_int_equal(c1->loc.col, 14);

    shape_is(w, false, 4, (int[]){6, 1, 5, 5});
    assert_int_equal(w->op, OP_PARAM);
    assert_int_equal(w->p.param.init, INIT_HE_UNIFORM);
    assert_int_equal(w->p.param.fan_in, 25);
    assert_int_equal(w->p.param.fan_out, 150);
    assert_int_equal(w->p.param.owner, c1->id);
    assert_string_equal(w->p.param.role, "weight");
    shape_is(b, false, 1, (int[]){6});
    assert_int_equal(b->p.param.init, INIT_ZERO);
    assert_string_equal(b->p.param.role, "bias");
    assert_int_equal(b->p.param.owner, c1->id);

    const Node *f1w = node(m, "f1.weight");
    shape_is(f1w, false, 2, (int[]){120, 400});
    assert_int_equal(f1w->p.param.fan_in, 400);
    assert_int_equal(f1w->p.param.fan_out, 120);
    assert_int_equal(node(m, "f1")->p.dense.units, 120);

    assert_int_equal(g->noutput, 1);
    assert_int_equal(g->outputs[0], node(m, "f3")->id);
    const Node *t = node(m, "target"), *l = node(m, "loss");
    assert_int_equal(g->target, t->id);
    assert_int_equal(g->loss, l->id);
    assert_int_equal(m->train.loss_node, l->id);
    shape_is(t, true, 0, NULL);
    shape_is(l, false, 0, NULL);
    assert_int_equal(l->op, OP_SOFTMAX_XENT);
    assert_int_equal(l->in[0], node(m, "f3")->id);
    assert_int_equal(l->in[1], t->id);

    TrainConfig *tc = &m->train;
    assert_true(tc->present);
    assert_string_equal(tc->data_kind, "fashion_mnist");
    assert_string_equal(tc->data_path, "/usr/share/datasets/fashion-mnist");
    assert_string_equal(tc->optimizer, "sgd");
    assert_true(setting(tc, "lr") == 0.01);
    assert_true(setting(tc, "momentum") == 0.9);
    assert_true(setting(tc, "weight_decay") == 0);
    assert_true(setting(tc, "nesterov") == 0);
    assert_true(setting(tc, "dampening") == 0);
    assert_true(tc->clip_norm == 0 && tc->warmup == 0 && tc->nparam_opt == 0);
    assert_int_equal(tc->batch, 64);
    assert_int_equal(tc->epochs, 10);
    assert_int_equal(tc->seed, 1);
    assert_int_equal(tc->default_init, INIT_HE_UNIFORM);
    assert_null(m->grad_of);
    assert_int_equal(m->grad_value, -1);
    assert_int_equal(m->grad_seed, -1);
    model_free(m);
    diag_free(&d);
}

/* ---- naming, blocks, repetition ---- */

static void test_blocks_expand(void **state)
{
    (void)state;
    Model *m = ok("network b\n"
                  "input x: [3, 16, 16]\n"
                  "block conv_relu(ch, k=3) {\n"
                  "  in -> c: conv(ch, kernel=k, pad=same) -> relu => out\n"
                  "}\n"
                  "block pair(ch) {\n"
                  "  in -> conv_relu(ch) -> conv_relu(ch=ch*2, k=1) => out\n"
                  "}\n"
                  "x -> s1: conv_relu(4) -> s2: conv_relu(ch=8, k=5) -> conv_relu(2) -> pair(3) => y\n");
    shape_is(node(m, "s1.c.weight"), false, 4, (int[]){4, 3, 3, 3});
    shape_is(node(m, "s2.c.weight"), false, 4, (int[]){8, 4, 5, 5});
    assert_int_equal(node(m, "s2.c")->p.conv.pad_lo[0], 2);
    assert_int_equal(node(m, "s1.relu1")->op, OP_RELU);
    assert_int_equal(node(m, "conv_relu1.c")->p.conv.out_channels, 2);
    /* nested instances: pair1 holds conv_relu1 and conv_relu2 */
    assert_int_equal(node(m, "pair1.conv_relu1.c")->p.conv.out_channels, 3);
    assert_int_equal(node(m, "pair1.conv_relu2.c")->p.conv.out_channels, 6);
    assert_int_equal(node(m, "pair1.conv_relu2.c")->p.conv.kernel[0], 1);
    shape_is(node(m, "pair1.conv_relu2.relu1"), true, 3, (int[]){6, 16, 16});
    assert_int_equal(m->g->noutput, 1);
    assert_int_equal(m->g->outputs[0], node(m, "pair1.conv_relu2.relu1")->id);
    assert_int_equal(m->g->loss, -1);
    assert_int_equal(m->g->target, -1);
    assert_false(m->train.present);
    model_free(m);
}

static void test_repetition(void **state)
{
    (void)state;
    Model *m = ok("network r\n"
                  "input x: [2, 8, 8]\n"
                  "block cr(ch) { in -> conv(ch, kernel=3, pad=1) -> relu => out }\n"
                  "x -> c: conv(4, kernel=3, pad=1) * 3 -> relu * 2 -> b: cr(4) * 2 -> cr(4) * 2 => y\n");
    assert_int_equal(node(m, "c.0")->in[0], node(m, "x")->id);
    assert_int_equal(node(m, "c.1")->in[0], node(m, "c.0")->id);
    assert_int_equal(node(m, "c.2")->in[0], node(m, "c.1")->id);
    shape_is(node(m, "c.1.weight"), false, 4, (int[]){4, 4, 3, 3});
    assert_int_equal(node(m, "relu2")->in[0], node(m, "relu1")->id);
    assert_int_equal(node(m, "b.0.conv1")->in[0], node(m, "relu2")->id);
    assert_int_equal(node(m, "b.1.conv1")->in[0], node(m, "b.0.relu1")->id);
    assert_int_equal(node(m, "cr1.conv1")->in[0], node(m, "b.1.relu1")->id);
    assert_int_equal(node(m, "cr2.conv1")->in[0], node(m, "cr1.relu1")->id);
    assert_int_equal(graph_find(m->g, "c"), -1);
    model_free(m);
}

/* Auto names count per op in source order and skip names labels take. */
static void test_auto_names(void **state)
{
    (void)state;
    Model *m = ok("network n\n"
                  "input x: [4]\n"
                  "y = a -> relu -> relu1: tanh -> relu\n"
                  "x -> relu => a\n");
    /* source order: relu (line 3) is relu2 since relu1 is a label; the
     * second relu of line 3 is relu3, line 4's is relu4 */
    assert_int_equal(node(m, "relu1")->op, OP_TANH);
    assert_int_equal(node(m, "relu2")->in[0], node(m, "relu4")->id);
    assert_int_equal(node(m, "relu3")->in[0], node(m, "relu1")->id);
    model_free(m);
}

/* Definition order is free; nodes still come out in topological order. */
static void test_forward_references(void **state)
{
    (void)state;
    Model *m = ok("network f\n"
                  "output z\n"
                  "z = y -> d: dense(3)\n"
                  "x -> flatten => f\n"
                  "input x: [2, 3, 3]\n"
                  "f -> e: dense(5) => y\n"
                  "train { loss mse(z)  batch 8 }\n");
    const Node *d = node(m, "d"), *e = node(m, "e");
    assert_true(e->id < d->id);
    assert_true(node(m, "flatten1")->id < e->id);
    shape_is(d, true, 1, (int[]){3});
    /* mse: the target has the prediction's shape */
    shape_is(node(m, "target"), true, 1, (int[]){3});
    assert_int_equal(node(m, "loss")->op, OP_MSE);
    assert_int_equal(m->train.batch, 8);
    model_free(m);
}

static void test_tuples_and_newlines(void **state)
{
    (void)state;
    /* A '(' starting a line is a tuple, not relu's arguments. */
    Model *m = ok("network t\n"
                  "input x: [3, 6, 6]\n"
                  "x -> a: conv(4, kernel=3, pad=1) => p\n"
                  "x -> relu\n"
                  "  -> b: conv (2, kernel=1) => q\n"
                  "(p, q) -> m: concat => c\n"
                  "r = (x, x, x) -> s: add\n"
                  "  -> relu\n"
                  "(c, c) -> add => d\n"
                  "output d, r\n");
    shape_is(node(m, "m"), true, 3, (int[]){6, 6, 6});
    shape_is(node(m, "s"), true, 3, (int[]){3, 6, 6});
    assert_int_equal(node(m, "s")->nin, 3);
    assert_int_equal(m->g->noutput, 2);
    assert_int_equal(m->g->outputs[0], node(m, "add1")->id);
    model_free(m);
}

/* ---- padding ---- */

static const Node *conv_of(Model **mp, const char *input, const char *attrs)
{
    char src[512];
    snprintf(src, sizeof src, "network p\ninput x: %s\nx -> c: conv(%s) => y\n", input, attrs);
    *mp = ok(src);
    return node(*mp, "c");
}

static void pads_are(const Node *c, int nsp, const int *lo, const int *hi)
{
    for (int i = 0; i < nsp; i++) {
        assert_int_equal(c->p.conv.pad_lo[i], lo[i]);
        assert_int_equal(c->p.conv.pad_hi[i], hi[i]);
    }
}

static void test_pad_same(void **state)
{
    (void)state;
    Model *m;
    /* in 7, stride 2: out 4, total = 3*2 + 3 - 7 = 2 */
    const Node *c = conv_of(&m, "[1, 7, 7]", "2, kernel=3, stride=2, pad=same");
    pads_are(c, 2, (int[]){1, 1}, (int[]){1, 1});
    shape_is(c, true, 3, (int[]){2, 4, 4});
    model_free(m);
    /* even kernel: total 3, the high side gets the extra one */
    c = conv_of(&m, "[1, 8, 8]", "2, kernel=4, pad=same");
    pads_are(c, 2, (int[]){1, 1}, (int[]){2, 2});
    shape_is(c, true, 3, (int[]){2, 8, 8});
    model_free(m);
    /* dilation counts: effective kernel 5 */
    c = conv_of(&m, "[1, 9, 9]", "1, kernel=3, dilation=2, pad=same");
    pads_are(c, 2, (int[]){2, 2}, (int[]){2, 2});
    model_free(m);
    /* stride larger than the kernel needs no padding: max(..., 0) */
    c = conv_of(&m, "[1, 8]", "1, kernel=1, stride=4, pad=same");
    pads_are(c, 1, (int[]){0}, (int[]){0});
    shape_is(c, true, 2, (int[]){1, 2});
    model_free(m);
    /* per axis kernel in 3D; valid is zero */
    c = conv_of(&m, "[1, 5, 6, 7]", "1, kernel=[3, 1, 2], pad=same");
    pads_are(c, 3, (int[]){1, 0, 0}, (int[]){1, 0, 1});
    shape_is(c, true, 4, (int[]){1, 5, 6, 7});
    model_free(m);
    c = conv_of(&m, "[1, 5, 5]", "1, kernel=3, pad=valid");
    pads_are(c, 2, (int[]){0, 0}, (int[]){0, 0});
    model_free(m);
}

static void test_pad_lists(void **state)
{
    (void)state;
    Model *m;
    const Node *c = conv_of(&m, "[1, 7, 7]", "1, kernel=3, pad=[1, 2]");
    pads_are(c, 2, (int[]){1, 2}, (int[]){1, 2});
    model_free(m);
    c = conv_of(&m, "[1, 7, 7]", "1, kernel=3, pad=[0, 1, 2, 1]");
    pads_are(c, 2, (int[]){0, 2}, (int[]){1, 1});
    shape_is(c, true, 3, (int[]){1, 6, 8});
    model_free(m);
    /* 1D: a 2-list is the two sides */
    c = conv_of(&m, "[1, 7]", "1, kernel=3, pad=[1, 2]");
    pads_are(c, 1, (int[]){1}, (int[]){2});
    model_free(m);
    c = conv_of(&m, "[1, 7]", "1, kernel=3, pad=[3]");
    pads_are(c, 1, (int[]){3}, (int[]){3});
    model_free(m);
    c = conv_of(&m, "[1, 4, 4, 4]", "1, kernel=1, pad=[1, 2, 3, 4, 5, 6]");
    pads_are(c, 3, (int[]){1, 3, 5}, (int[]){2, 4, 6});
    model_free(m);
    fails("network p\ninput x: [1, 7, 7]\nx -> c: conv(1, kernel=3, pad=[1, 2, 3]) => y\n",
          "pad has 3 values; for the input [C, H, W] give 2 (one per axis) or 4 [top, bottom, left, right]");
}

static void test_pool_params(void **state)
{
    (void)state;
    Model *m = ok("network p\ninput x: [2, 7, 7]\n"
                  "x -> a: maxpool(3, stride=2, pad=1) -> b: avgpool([2, 1], count_include_pad=false)\n"
                  "  -> c: maxpool(2) => y\n");
    const Node *a = node(m, "a"), *b = node(m, "b"), *c = node(m, "c");
    shape_is(a, true, 3, (int[]){2, 4, 4});
    assert_int_equal(a->p.pool.stride[1], 2);
    assert_int_equal(a->p.pool.pad_hi[0], 1);
    /* stride defaults to the kernel, per axis */
    assert_int_equal(b->p.pool.stride[0], 2);
    assert_int_equal(b->p.pool.stride[1], 1);
    assert_false(b->p.pool.count_include_pad);
    assert_true(a->p.pool.count_include_pad);
    shape_is(b, true, 3, (int[]){2, 2, 4});
    shape_is(c, true, 3, (int[]){2, 1, 2});
    model_free(m);
}

/* ---- attribute values ---- */

static void test_attribute_arithmetic(void **state)
{
    (void)state;
    Model *m = ok("network a\ninput x: [4, 8, 8]\n"
                  "block b(ch, mid=ch*4, k=(ch+2)/3) {\n"
                  "  in -> e: conv(mid, kernel=k, pad=same, groups=ch/2) -> d: conv(ch - 1 + 2 * 2, kernel=1) => out\n"
                  "}\n"
                  "x -> b(4) => y\n");
    const Node *e = node(m, "b1.e"), *d = node(m, "b1.d");
    assert_int_equal(e->p.conv.out_channels, 16);
    assert_int_equal(e->p.conv.kernel[0], 2);
    assert_int_equal(e->p.conv.groups, 2);
    assert_int_equal(d->p.conv.out_channels, 7);
    model_free(m);
    fails("network a\ninput x: [4, 8, 8]\nblock b(ch) { in -> conv(ch/3, kernel=1) => out }\nx -> b(4) => y\n",
          "4 / 3 is not a whole number");
    fails("network a\ninput x: [4, 8, 8]\nblock b(ch) { in -> conv(8/(ch-4), kernel=1) => out }\nx -> b(4) => y\n",
          "division by zero");
    fails("network a\ninput x: [4, 8, 8]\nblock b(ch) { in -> conv(ch*ch*ch, kernel=1) => out }\nx -> b(65536) => y\n",
          "out of range");
}

static void test_inits(void **state)
{
    (void)state;
    Model *m = ok("network i\ninput x: [3]\n"
                  "x -> a: dense(4, init=uniform(-0.5, 0.25)) -> b: dense(2, init=normal(0, 0.1), bias=false)\n"
                  "  -> c: dense(2) => y\n"
                  "train { loss mse(y)  init xavier_normal  optimizer sgd(lr=0.5, momentum=0.5, nesterov=true, weight_decay=0.001) }\n");
    const Node *a = node(m, "a.weight"), *b = node(m, "b.weight"), *c = node(m, "c.weight");
    assert_int_equal(a->p.param.init, INIT_UNIFORM);
    assert_true(a->p.param.init_a == -0.5f && a->p.param.init_b == 0.25f);
    assert_int_equal(b->p.param.init, INIT_NORMAL);
    assert_true(b->p.param.init_b == 0.1f);
    assert_int_equal(graph_find(m->g, "b.bias"), -1);
    assert_int_equal(node(m, "b")->nin, 2);
    assert_int_equal(c->p.param.init, INIT_XAVIER_NORMAL);
    assert_int_equal(m->train.default_init, INIT_XAVIER_NORMAL);
    assert_true(setting(&m->train, "lr") == 0.5);
    assert_true(setting(&m->train, "nesterov") == 1);
    assert_true(setting(&m->train, "weight_decay") == 0.001);
    /* the train section's default is used when no init= is given, with its bounds */
    model_free(m);
    m = ok("network i\ninput x: [3]\nx -> a: dense(4) => y\n"
           "train { loss mse(y) init uniform(-1, 1) data idx(\"/tmp/d\") }\n");
    a = node(m, "a.weight");
    assert_int_equal(a->p.param.init, INIT_UNIFORM);
    assert_true(a->p.param.init_a == -1.0f && a->p.param.init_b == 1.0f);
    assert_string_equal(m->train.data_kind, "idx");
    assert_string_equal(m->train.data_path, "/tmp/d");
    model_free(m);
}

static void test_conv_params(void **state)
{
    (void)state;
    Model *m = ok("network g\ninput x: [4, 9, 9]\n"
                  "x -> c: conv(6, kernel=[3, 1], stride=[2, 1], dilation=[1, 2], groups=2, bias=false) => y\n");
    const Node *c = node(m, "c");
    assert_int_equal(c->nin, 2);
    assert_int_equal(c->p.conv.groups, 2);
    assert_false(c->p.conv.bias);
    assert_int_equal(c->p.conv.dilation[1], 2);
    shape_is(node(m, "c.weight"), false, 4, (int[]){6, 2, 3, 1});
    assert_int_equal(node(m, "c.weight")->p.param.fan_in, 6);
    assert_int_equal(node(m, "c.weight")->p.param.fan_out, 18);
    shape_is(c, true, 3, (int[]){6, 4, 9});
    model_free(m);
}

/* ---- errors ---- */

static void test_several_errors(void **state)
{
    (void)state;
    Load r = load_src("network e\n"
                      "input x: [1, 8, 8]\n"
                      "x -> conv2d(3, kernel=3) => a\n"
                      "x -> conv(3, kernal=3) => b\n"
                      "x -> dense(0) => c\n"
                      "output a, b, c, d\n");
    assert_null(r.m);
    assert_int_equal(r.nerror, 4);
    assert_non_null(strstr(r.out, "t.net:3:6: error: unknown layer 'conv2d'\n"
                                  "    x -> conv2d(3, kernel=3) => a\n"
                                  "         ^~~~~~\n"
                                  "  hint: did you mean 'conv'?\n"));
    assert_non_null(strstr(r.out, "t.net:4:14: error: conv conv1 has no attribute 'kernal'"));
    assert_non_null(strstr(r.out, "t.net:6:17: error: undefined name 'd'"));
    assert_non_null(strstr(r.out, "t.net:5:12: error: dense dense1: units must be at least 1, got 0\n"));
    load_free(&r);
}

static void test_several_syntax_errors(void **state)
{
    (void)state;
    Load r = load_src("network e\n"
                      "input x: [1, 8, 8\n"
                      "x -> conv(3, kernel=3 => a\n"
                      "x -> relu -> => b\n"
                      "block q(ch) {\n"
                      "  in -> relu => out\n");
    assert_null(r.m);
    assert_int_equal(r.nerror, 4);
    assert_non_null(strstr(r.out, "t.net:2:18: error: expected ']' to close '[' at 2:10, found name 'x'"));
    assert_non_null(strstr(r.out, "t.net:3:23: error: expected ')' to close '(' at 3:10, found '=>'"));
    assert_non_null(strstr(r.out, "t.net:4:14: error: expected a name, found '=>'"));
    assert_non_null(strstr(r.out, "t.net:6:20: error: expected '}' to close '{' at 5:13, found end of file"));
    load_free(&r);
}

static void test_error_cap(void **state)
{
    (void)state;
    Buf src = {0};
    buf_puts(&src, "network e\ninput x: [4]\n");
    for (int i = 0; i < 40; i++)
        buf_printf(&src, "x -> bogus%d => v%d\n", i, i);
    FILE *f = fopen("/dev/null", "w");
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, mem);
    d.max_errors = 5;
    Model *m = frontend_load_string("t.net", src.s, &d);
    assert_null(m);
    fclose(mem);
    int shown = 0;
    for (const char *p = out; (p = strstr(p, ": error: ")); p++)
        shown++;
    assert_int_equal(shown, 5);
    assert_non_null(strstr(out, "too many errors"));
    diag_free(&d);
    free(out);
    fclose(f);
    buf_free(&src);
}

static void test_diag_format(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, mem);
    diag_add_source(&d, "f.net", "a\n\tx -> \xc3\xa9t conv2d\nlast");
    diag_error(&d, (SrcLoc){"f.net", 2, 10}, 6, "unknown layer '%s'", "conv2d");
    diag_hint(&d, "did you mean '%s'?", "conv");
    diag_note(&d, (SrcLoc){"f.net", 3, 1}, 100, "here");
    diag_plain(&d, "no place");
    diag_error(&d, (SrcLoc){"f.net", 9, 1}, 1, "past the end");
    fclose(mem);
    assert_string_equal(out, "f.net:2:10: error: unknown layer 'conv2d'\n"
                             "    \tx -> \xc3\xa9t conv2d\n"
                             "    \t        ^~~~~~\n"
                             "  hint: did you mean 'conv'?\n"
                             "f.net:3:1: note: here\n"
                             "    last\n"
                             "    ^~~~\n"
                             "netc: error: no place\n"
                             "f.net:9:1: error: past the end\n");
    assert_int_equal(d.nerror, 3);
    diag_free(&d);
    free(out);
}

static void test_suggest(void **state)
{
    (void)state;
    const char *layers[] = {"conv", "maxpool", "avgpool", "dense", "relu"};
    assert_string_equal(diag_suggest("conv2d", layers, 5), "conv");
    assert_string_equal(diag_suggest("dens", layers, 5), "dense");
    assert_string_equal(diag_suggest("maxpool2d", layers, 5), "maxpool");
    assert_string_equal(diag_suggest("Relu", layers, 5), "relu");
    assert_null(diag_suggest("lstm", layers, 5));
    assert_null(diag_suggest("x", layers, 5));
}

static void test_load_file_errors(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, mem);
    assert_null(frontend_load("tests/unit/no-such-file.net", &d));
    assert_null(frontend_load("tests/unit", &d));
    assert_null(frontend_load_string("bin.net", "network x\n\xff\xfe", &d));
    fclose(mem);
    assert_non_null(strstr(out, "cannot open 'tests/unit/no-such-file.net'"));
    assert_non_null(strstr(out, "'tests/unit' is a directory"));
    assert_non_null(strstr(out, "bin.net:2:1: error: the file is not UTF-8 text (byte 0xff)"));
    /* The bad byte is escaped in the quoted line, not echoed raw. */
    assert_non_null(strstr(out, "    \\xff\\xfe\n    ^\n"));
    assert_int_equal(d.nerror, 3);
    diag_free(&d);
    free(out);
}

/* Loads a file written with these bytes; returns what the Diag printed. */
static char *load_bytes(const char *path, const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(bytes, 1, n, f);
    fclose(f);
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, mem);
    Model *m = frontend_load(path, &d);
    model_free(m);
    diag_free(&d);
    fclose(mem);
    remove(path);
    return out;
}

static void test_line_endings_and_bytes(void **state)
{
    (void)state;
    /* CR, LF and CRLF all end lines, for line:col and for the quote. */
    static const char cr[] = "# old Mac\rnetwork a\rinput x: [3]\rx -> rel => y\routput y\r";
    char *out = load_bytes("/tmp/netc-test-cr.net", cr, sizeof cr - 1);
    assert_non_null(strstr(out, "netc-test-cr.net:4:6: error: unknown layer 'rel'\n    x -> rel => y\n         ^~~\n"));
    free(out);
    static const char crlf[] = "network a\r\ninput x: [3]\r\nx -> rel => y\r\noutput y\r\n";
    out = load_bytes("/tmp/netc-test-crlf.net", crlf, sizeof crlf - 1);
    assert_non_null(strstr(out, "netc-test-crlf.net:3:6: error: unknown layer 'rel'\n    x -> rel => y\n"));
    free(out);
    static const char mixed[] = "network a\rinput x: [3]\r\n\nx -> \"a\rb\" => y\n";
    out = load_bytes("/tmp/netc-test-mixed.net", mixed, sizeof mixed - 1);
    assert_non_null(strstr(out, "netc-test-mixed.net:4:6: error: unterminated string"));
    free(out);
    /* A NUL byte is located. */
    static const char nul[] = "network a\ninput x: [3]\nx -> re\0lu => y\n";
    out = load_bytes("/tmp/netc-test-nul.net", nul, sizeof nul - 1);
    assert_non_null(strstr(out, "netc-test-nul.net:3:8: error: the file is not text (a NUL byte)\n    x -> re\n"));
    free(out);
    /* Control characters in the quote and non-UTF-8 bytes in names are
     * escaped. */
    Load r = load_src("network a\ninput x: [3]\nx -> relu\x01 => y\n");
    assert_non_null(strstr(r.out, "t.net:3:10: error: invalid character (byte 0x01)\n    x -> relu\\x01 => y\n"
                                  "             ^\n"));
    load_free(&r);
    char *out2 = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out2, &len);
    Diag d;
    diag_init(&d, mem);
    assert_null(frontend_load("/tmp/no-such-\xff\x1b[31m.net", &d));
    diag_free(&d);
    fclose(mem);
    assert_non_null(strstr(out2, "cannot open '/tmp/no-such-\\xff\\x1b[31m.net'"));
    free(out2);
}

/* A very long line is quoted as a window around the caret. */
static void test_long_line_quote(void **state)
{
    (void)state;
    Buf b = {0};
    buf_puts(&b, "network a\ninput x: [3]\nx");
    for (int i = 0; i < 1000; i++)
        buf_puts(&b, " -> relu");
    buf_puts(&b, " -> rel -> relu => y\n");
    Load r = load_src(b.s);
    assert_non_null(strstr(r.out, "t.net:3:8006: error: unknown layer 'rel'\n    ...> relu -> relu"));
    const char *quote = strchr(r.out, '\n') + 1;
    const char *caret = strchr(quote, '\n') + 1;
    assert_true(strchr(quote, '\n') - quote < 160);
    /* The caret sits under 'rel' in the window. */
    const char *rel = strstr(quote, "rel ->");
    assert_non_null(rel);
    assert_int_equal(strchr(caret, '^') - caret, rel - quote);
    load_free(&r);
    buf_free(&b);
}

static void test_misc_errors(void **state)
{
    (void)state;
    fails("", "the file is empty");
    fails("input x: [3]\nx -> relu => y\n", "the file must start with `network NAME`");
    fails("network a\ninput x: [3]\nx -> relu => y\nx -> tanh => z\n",
          "cannot tell the network's output: 2 values are not read by any layer (y, z)");
    fails("network a\ninput x: [3]\nx -> relu => y\nx -> tanh\noutput y\n",
          "the result of this chain is never used");
    fails("network a\ninput x: [3]\nblock b { in -> relu => out }\nx -> b * 2 -> relu(1) => y\n",
          "relu relu1 takes no arguments");
    fails("network a\ninput x: [3]\nx -> relu => y\noutput y\ntrain { batch 3 }\n",
          "the train section has no loss");
    fails("network a\ninput x: [3]\nx -> relu => y\ny -> relu => x\n", "'x' is already defined");
    fails("network a\ninput x: [3, 4, 4]\nx -> c1: conv(2, kernel=1) -> c1: relu => y\n", "duplicate name 'c1'");
    fails("network a\ninput x: [3]\nx -> relu => y\noutput y\ntrain { loss softmax_cross_entropy(y)\n"
          "  optimizer sgd(momentum=0.9, lr=-1) }\n",
          "sgd: lr must be greater than 0, got -1");
    fails("network a\ninput x: [3]\nx -> relu => y\nx -> y => z\n", "'y' is a value; a chain's steps are layers");
    fails("network a\ninput x: [3]\nx -> softmax_cross_entropy => z\n", "a loss goes in the train section");
    fails("network a\ninput x: [3]\nx -> relu => out\noutput y\n", "undefined name 'y'");
}

/* Every optimizer with its defaults; clipping, warm-up, freeze and
 * lr_mult reach the train configuration per parameter. */
static void test_optimizers(void **state)
{
    (void)state;
    Model *m = ok("network o\ninput x: [3]\nblock blk { in -> d: dense(3) => out }\n"
                  "x -> a: dense(4) -> b1: blk -> c: dense(2) => y\n"
                  "train { loss mse(y)  optimizer adam(beta2=0.99, amsgrad=true)  clip_norm 1.5\n"
                  "  warmup 2  freeze [a]  lr_mult [b1(0.5), c(10)] }\n");
    const TrainConfig *t = &m->train;
    assert_string_equal(t->optimizer, "adam");
    assert_int_equal(t->nopt, 6);
    assert_true(setting(t, "lr") == 0.001 && setting(t, "beta1") == 0.9);
    assert_true(setting(t, "beta2") == 0.99 && setting(t, "eps") == 1e-8);
    assert_true(setting(t, "amsgrad") == 1 && setting(t, "weight_decay") == 0);
    assert_true(t->clip_norm == 1.5f);
    assert_int_equal(t->warmup, 2);
    assert_int_equal(t->nparam_opt, 6);
    for (int i = 0; i < t->nparam_opt; i++) {
        const ParamTrain *p = &t->param_opt[i];
        if (!strncmp(p->param, "a.", 2))
            assert_true(p->frozen);
        else
            assert_true(!p->frozen && p->lr_mult == (p->param[0] == 'c' ? 10.0f : 0.5f));
    }
    model_free(m);
    static const struct { const char *name, *def[2]; } defaults[] = {
        {"adagrad", {"lr", "eps"}}, {"rmsprop", {"alpha", "eps"}}, {"adadelta", {"lr", "rho"}},
        {"adamw", {"weight_decay", "beta2"}},
    };
    static const double want[][2] = {{0.01, 1e-10}, {0.99, 1e-8}, {1.0, 0.9}, {0.01, 0.999}};
    for (size_t i = 0; i < sizeof defaults / sizeof *defaults; i++) {
        char src[256];
        snprintf(src, sizeof src, "network o\ninput x: [3]\nx -> dense(2) => y\n"
                 "train { loss mse(y)  optimizer %s }\n", defaults[i].name);
        m = ok(src);
        assert_string_equal(m->train.optimizer, defaults[i].name);
        assert_true(setting(&m->train, defaults[i].def[0]) == want[i][0]);
        assert_true(setting(&m->train, defaults[i].def[1]) == want[i][1]);
        model_free(m);
    }
    fails("network o\ninput x: [3]\nx -> a: dense(2) => y\n"
          "train { loss mse(y)  freeze [a]  lr_mult [a(2)] }\n",
          "lr_mult: 'a.weight' is frozen, so it has no learning rate to scale");
    fails("network o\ninput x: [3]\nx -> a: dense(2) => y\ntrain { loss mse(y)  lr_mult [a(1), a(2)] }\n",
          "lr_mult: 'a.weight' already has a factor");
    fails("network o\ninput x: [3]\nx -> a: dense(2) => y\ntrain { loss mse(y)  freeze [b] }\n",
          "freeze: no layer 'b' with parameters");
    fails("network o\ninput x: [3]\nx -> a: dense(2) => y\ntrain { loss mse(y)  lr_mult [a] }\n",
          "lr_mult expects a list of layer(factor)");
    fails("network o\ninput x: [3]\nx -> a: dense(2) => y\ntrain { loss mse(y)  clip_norm 0 }\n",
          "clip_norm must be a positive number");
    fails("network o\ninput x: [3]\nx -> a: dense(2) => y\n"
          "train { loss mse(y)  optimizer adam(lr=1e-50) }\n", "adam: lr = 1e-50 is outside the range of a float");
}

/* ---- the syntax tree printer (--dump=ast) ---- */

static void test_ast_print(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Diag d;
    diag_init(&d, stderr);
    const char *src = "network p\nblock b(ch, k=3) { in -> c: conv(ch * 2, kernel=[k, 1]) * 2 => out }\n"
                      "(x, y) -> concat => z\ntrain { data idx(\"/d\") init uniform(-0.5, 1e-3) }\n";
    AstFile *f = ast_parse(a, &d, "p.net", src, strlen(src));
    assert_non_null(f);
    assert_int_equal(d.nerror, 0);
    assert_int_equal(f->nstmts, 4);
    char *out = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&out, &len);
    ast_print(mem, f);
    fclose(mem);
    assert_string_equal(out, "network p    # 1:1\n"
                             "block b(ch, k=3) {\n"
                             "  in -> c: conv((ch * 2), kernel=[k, 1]) * 2 => out    # 2:20\n"
                             "}    # 2:1\n"
                             "(x, y) -> concat => z    # 3:1\n"
                             "train {\n"
                             "  data idx(\"/d\")\n"
                             "  init uniform(-0.5, 0.001)\n"
                             "}    # 4:1\n");
    free(out);
    diag_free(&d);
    arena_free(a);
}

/* ---- docs/language.md ---- */

/* Every ```net block of the reference is a complete network that loads. */
static void test_docs_examples(void **state)
{
    (void)state;
    char *doc = read_text("docs/language.md");
    int n = 0;
    for (char *p = doc; (p = strstr(p, "\n```net\n"));) {
        p += 8;
        char *end = strstr(p, "\n```");
        assert_non_null(end);
        char *src = strndup(p, (size_t)(end - p + 1));
        int line = 1;
        for (const char *q = doc; q < p; q++)
            line += *q == '\n';
        char name[64];
        snprintf(name, sizeof name, "docs/language.md@%d", line);
        Load r = {0};
        FILE *f = open_memstream(&r.out, &r.len);
        Diag d;
        diag_init(&d, f);
        r.m = frontend_load_string(name, src, &d);
        diag_free(&d);
        fclose(f);
        if (!r.m)
            fprintf(stderr, "example at line %d fails:\n%s", line, r.out);
        assert_non_null(r.m);
        assert_true(graph_verify(r.m->g, stderr));
        load_free(&r);
        free(src);
        n++;
        p = end;
    }
    assert_true(n >= 8);
    free(doc);
}

/* Every schema row's signature is in the reference, verbatim. */
static void test_docs_schema(void **state)
{
    (void)state;
    char *doc = read_text("docs/language.md");
    const Schema *(*tables[])(int *) = {schema_layers, schema_optimizers, schema_inits, schema_data,
                                        schema_losses, schema_schedules, schema_augments,
                                        schema_forms};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        int n;
        const Schema *rows = tables[t](&n);
        for (int i = 0; i < n; i++) {
            char sig[512], quoted[520];
            schema_signature(&rows[i], sig, sizeof sig);
            snprintf(quoted, sizeof quoted, "`%s`", sig);
            if (!strstr(doc, quoted))
                fprintf(stderr, "docs/language.md lacks %s\n", quoted);
            assert_non_null(strstr(doc, quoted));
        }
    }
    const Schema *t = schema_train();
    for (int i = 0; i < t->nattr; i++) {
        char key[64];
        snprintf(key, sizeof key, "| `%s` |", t->attr[i].name);
        if (!strstr(doc, key))
            fprintf(stderr, "docs/language.md lacks the train key row %s\n", key);
        assert_non_null(strstr(doc, key));
    }
    free(doc);
}

/* Every layer of ops.def has a schema row (and only those). */
static void test_schema_complete(void **state)
{
    (void)state;
    for (int op = 0; op < OP_COUNT; op++) {
        const Schema *s = schema_layer((Op)op);
        if (op_flags((Op)op) & OPF_LAYER) {
            assert_non_null(s);
            assert_string_equal(s->name, op_name((Op)op));
        } else {
            assert_null(s);
        }
    }
    char sig[256];
    schema_signature(schema_find_layer("maxpool"), sig, sizeof sig);
    assert_string_equal(sig, "maxpool(kernel, stride=kernel, pad=0, dilation=1, ceil_mode=false)");
    schema_signature(schema_find_layer("relu"), sig, sizeof sig);
    assert_string_equal(sig, "relu");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet),
        cmocka_unit_test(test_blocks_expand),
        cmocka_unit_test(test_repetition),
        cmocka_unit_test(test_auto_names),
        cmocka_unit_test(test_forward_references),
        cmocka_unit_test(test_tuples_and_newlines),
        cmocka_unit_test(test_pad_same),
        cmocka_unit_test(test_pad_lists),
        cmocka_unit_test(test_pool_params),
        cmocka_unit_test(test_attribute_arithmetic),
        cmocka_unit_test(test_inits),
        cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_conv_params),
        cmocka_unit_test(test_several_errors),
        cmocka_unit_test(test_several_syntax_errors),
        cmocka_unit_test(test_error_cap),
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_line_endings_and_bytes),
        cmocka_unit_test(test_long_line_quote),
        cmocka_unit_test(test_misc_errors),
        cmocka_unit_test(test_ast_print),
        cmocka_unit_test(test_docs_examples),
        cmocka_unit_test(test_docs_schema),
        cmocka_unit_test(test_schema_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
