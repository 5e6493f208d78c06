/* Tests of shape inference (shape.c): output sizes of every layer, the
 * error messages that explain a bad shape, and MAC counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc.h"

/* ---- graphs built by hand ---- */

static Graph *g_new(Arena **a)
{
    *a = arena_new();
    return graph_new(*a);
}

static int add_src(Graph *g, Op op, const char *name, bool batched, int rank, const int *d)
{
    Node *n = graph_add(g, op, name, (SrcLoc){"h.net", 1, 1}, 0, NULL);
    n->shape.batched = batched;
    n->shape.rank = rank;
    for (int i = 0; i < rank; i++)
        n->shape.d[i] = d[i];
    return n->id;
}

/* Runs shape_infer; returns the messages (caller frees) or NULL when it
 * succeeded without any. */
static char *infer(Graph *g, Node *n, bool *ok)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, f);
    *ok = shape_infer(g, n, &d);
    diag_free(&d);
    fclose(f);
    if (len == 0) {
        free(out);
        return NULL;
    }
    return out;
}

static void dims_are(const Shape *s, bool batched, int rank, const int *d)
{
    assert_int_equal(s->batched, batched);
    assert_int_equal(s->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(s->d[i], d[i]);
}

/* A conv over x [c, sp...] with square attributes on every axis. */
static Node *conv(Graph *g, int x, int out, int k, int s, int p, int dil, int groups)
{
    const Shape *xs = &graph_node(g, x)->shape;
    int nsp = xs->rank - 1;
    int wd[5] = {out, xs->d[0] / groups, k, k, k};
    int w = add_src(g, OP_PARAM, "c.weight", false, 2 + nsp, wd);
    int in[2] = {x, w};
    Node *n = graph_add(g, OP_CONV, "c", (SrcLoc){"h.net", 2, 3}, 2, in);
    ConvParam *c = &n->p.conv;
    c->nsp = nsp;
    c->out_channels = out;
    c->groups = groups;
    for (int i = 0; i < 3; i++) {
        c->kernel[i] = i < nsp ? k : 1;
        c->stride[i] = i < nsp ? s : 1;
        c->dilation[i] = i < nsp ? dil : 1;
        c->pad_lo[i] = c->pad_hi[i] = i < nsp ? p : 0;
    }
    return n;
}

static void test_conv_sizes(void **state)
{
    (void)state;
    struct {
        int rank, in[4], out, k, s, p, dil, groups, want[4];
    } cases[] = {
        {3, {3, 28, 28}, 6, 5, 1, 2, 1, 1, {6, 28, 28}},
        {3, {3, 28, 28}, 6, 5, 1, 0, 1, 1, {6, 24, 24}},
        {3, {3, 7, 7}, 4, 3, 2, 1, 1, 1, {4, 4, 4}},
        {3, {3, 9, 9}, 4, 3, 2, 1, 2, 1, {4, 4, 4}},   /* dilated: effective 5 */
        {3, {4, 8, 8}, 6, 3, 1, 1, 1, 2, {6, 8, 8}},   /* grouped */
        {3, {4, 8, 8}, 8, 3, 1, 1, 1, 4, {8, 8, 8}},   /* depthwise x2 */
        {2, {3, 11}, 4, 3, 1, 1, 1, 1, {4, 11}},       /* 1D */
        {2, {3, 10}, 4, 4, 3, 0, 1, 1, {4, 3}},        /* floor((10-4)/3)+1 */
        {4, {2, 4, 5, 5}, 3, 3, 1, 1, 1, 1, {3, 4, 5, 5}}, /* 3D */
        {3, {1, 5, 5}, 1, 5, 1, 0, 1, 1, {1, 1, 1}},   /* kernel = input */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Arena *a;
        Graph *g = g_new(&a);
        int x = add_src(g, OP_INPUT, "x", true, cases[i].rank, cases[i].in);
        Node *n = conv(g, x, cases[i].out, cases[i].k, cases[i].s, cases[i].p, cases[i].dil, cases[i].groups);
        bool ok;
        char *msg = infer(g, n, &ok);
        if (msg)
            fprintf(stderr, "case %zu: %s", i, msg);
        assert_true(ok);
        assert_null(msg);
        dims_are(&n->shape, true, cases[i].rank, cases[i].want);
        arena_free(a);
    }
}

static void expect_error(Graph *g, Node *n, const char *text)
{
    bool ok;
    char *msg = infer(g, n, &ok);
    assert_false(ok);
    assert_non_null(msg);
    if (!strstr(msg, text))
        fprintf(stderr, "wanted \"%s\" in:\n%s", text, msg);
    assert_non_null(strstr(msg, text));
    free(msg);
}

static void test_conv_errors(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, (int[]){6, 3, 3});
    expect_error(g, conv(g, x, 8, 5, 1, 0, 1, 1),
                 "h.net:2:3: error: conv c: kernel 5 (dilated 5) is larger than the padded input 3x3 (pad 0+0)\n");
    expect_error(g, conv(g, x, 8, 3, 1, 1, 3, 1),
                 "conv c: kernel 3 (dilated 7) is larger than the padded input 5x5 (pad 1+1)");
    Node *n = conv(g, x, 8, 1, 1, 0, 1, 1);
    n->p.conv.groups = 4;
    expect_error(g, n, "conv c: input has 6 channels, not divisible by groups=4");
    n = conv(g, x, 9, 1, 1, 0, 1, 3);
    n->p.conv.out_channels = 8;
    expect_error(g, n, "conv c: 8 output channels are not divisible by groups=3");
    n = conv(g, x, 8, 1, 1, 0, 1, 1);
    graph_node(g, n->in[1])->shape.d[1] = 5;
    expect_error(g, n, "conv c: the weight has shape [8, 5, 1, 1], expected [8, 6, 1, 1]");
    int f = add_src(g, OP_INPUT, "f", true, 1, (int[]){10});
    Node *c = graph_add(g, OP_CONV, "c1", (SrcLoc){"h.net", 3, 1}, 1, &f);
    expect_error(g, c, "conv c1: expects a [C, L], [C, H, W] or [C, D, H, W] input, got [10]");
    /* asymmetric axes print per axis */
    int y = add_src(g, OP_INPUT, "y", true, 3, (int[]){1, 4, 9});
    n = conv(g, y, 1, 5, 1, 0, 1, 1);
    n->p.conv.kernel[1] = 3;
    graph_node(g, n->in[1])->shape.d[3] = 3;
    expect_error(g, n, "kernel 5x3 (dilated 5x3) is larger than the padded input 4x9 (pad 0+0)");
    arena_free(a);
}

static Node *pool(Graph *g, Op op, int x, int k, int s, int p)
{
    Node *n = graph_add(g, op, "p", (SrcLoc){"h.net", 4, 1}, 1, &x);
    int nsp = graph_node(g, x)->shape.rank - 1;
    n->p.pool.nsp = nsp;
    n->p.pool.count_include_pad = true;
    for (int i = 0; i < 3; i++) {
        n->p.pool.kernel[i] = i < nsp ? k : 1;
        n->p.pool.stride[i] = i < nsp ? s : 1;
        n->p.pool.pad_lo[i] = n->p.pool.pad_hi[i] = i < nsp ? p : 0;
    }
    return n;
}

static void test_pool(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, (int[]){6, 28, 28});
    bool ok;
    Node *n = pool(g, OP_MAXPOOL, x, 2, 2, 0);
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){6, 14, 14});
    n = pool(g, OP_AVGPOOL, x, 3, 2, 1);
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){6, 14, 14});
    n = pool(g, OP_MAXPOOL, x, 3, 2, 0); /* floor((28-3)/2)+1 = 13 */
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){6, 13, 13});
    n = pool(g, OP_MAXPOOL, x, 3, 1, 2); /* more than half the kernel, as ONNX allows */
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){6, 30, 30});
    expect_error(g, pool(g, OP_MAXPOOL, x, 3, 1, 3),
                 "maxpool p: window 0 of spatial axis 1 lies entirely in the padding (pad 3+3, input 28)");
    expect_error(g, pool(g, OP_AVGPOOL, x, 30, 1, 0),
                 "avgpool p: kernel 30 is larger than the padded input 28x28 (pad 0+0)");
    int v = add_src(g, OP_INPUT, "v", true, 4, (int[]){2, 4, 6, 8});
    n = pool(g, OP_MAXPOOL, v, 2, 2, 0);
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 4, (int[]){2, 2, 3, 4});
    arena_free(a);
}

static Node *dense(Graph *g, int x, int units, int in_features)
{
    int w = add_src(g, OP_PARAM, "d.weight", false, 2, (int[]){units, in_features});
    int in[2] = {x, w};
    Node *n = graph_add(g, OP_DENSE, "f1", (SrcLoc){"h.net", 5, 1}, 2, in);
    n->p.dense.units = units;
    return n;
}

static void test_dense_flatten(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, (int[]){16, 5, 5});
    Node *fl = graph_add(g, OP_FLATTEN, "fl", (SrcLoc){"h.net", 1, 1}, 1, &x);
    bool ok;
    assert_null(infer(g, fl, &ok));
    dims_are(&fl->shape, true, 1, (int[]){400});
    Node *d = dense(g, fl->id, 120, 400);
    assert_null(infer(g, d, &ok));
    dims_are(&d->shape, true, 1, (int[]){120});
    /* without flatten, over the last axis (torch.nn.Linear) */
    Node *last = dense(g, x, 120, 5);
    assert_null(infer(g, last, &ok));
    dims_are(&last->shape, true, 3, (int[]){16, 5, 120});
    expect_error(g, dense(g, x, 120, 16), "dense f1: the weight has shape [120, 16], expected [120, 5]");
    expect_error(g, dense(g, fl->id, 10, 399), "dense f1: the weight has shape [10, 399], expected [10, 400]");
    arena_free(a);
}

static void test_join(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int p = add_src(g, OP_INPUT, "p", true, 3, (int[]){6, 28, 28});
    int q = add_src(g, OP_INPUT, "q", true, 3, (int[]){2, 28, 28});
    int r = add_src(g, OP_INPUT, "r", true, 3, (int[]){6, 14, 14});
    int f = add_src(g, OP_INPUT, "f", true, 1, (int[]){6});
    bool ok;
    Node *n = graph_add(g, OP_CONCAT, "m", (SrcLoc){"h.net", 1, 1}, 3, (int[]){p, q, p});
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){14, 28, 28});
    expect_error(g, graph_add(g, OP_CONCAT, "m", (SrcLoc){"h.net", 1, 1}, 2, (int[]){p, r}),
                 "concat m: input 2 has spatial size 14x14, input 1 has 28x28");
    expect_error(g, graph_add(g, OP_CONCAT, "m", (SrcLoc){"h.net", 1, 1}, 2, (int[]){p, f}),
                 "concat m: input 2 has shape [6], input 1 has [6, 28, 28]");
    expect_error(g, graph_add(g, OP_CONCAT, "m", (SrcLoc){"h.net", 1, 1}, 1, (int[]){p}),
                 "concat m: needs at least 2 inputs, got 1");
    n = graph_add(g, OP_ADD, "s", (SrcLoc){"h.net", 1, 1}, 2, (int[]){p, p});
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){6, 28, 28});
    expect_error(g, graph_add(g, OP_ADD, "s", (SrcLoc){"h.net", 1, 1}, 2, (int[]){p, r}),
                 "add s: input 2 has shape [6, 14, 14], input 1 has [6, 28, 28]");
    arena_free(a);
}

static void test_elementwise_and_losses(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, (int[]){3, 4, 4});
    int z = add_src(g, OP_INPUT, "z", true, 1, (int[]){10});
    int t = add_src(g, OP_INPUT, "t", true, 0, NULL);
    bool ok;
    Op same[] = {OP_RELU, OP_TANH, OP_SIGMOID, OP_SOFTMAX};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        Node *n = graph_add(g, same[i], "e", (SrcLoc){"h.net", 1, 1}, 1, &x);
        assert_null(infer(g, n, &ok));
        dims_are(&n->shape, true, 3, (int[]){3, 4, 4});
    }
    Node *l = graph_add(g, OP_SOFTMAX_XENT, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){z, t});
    assert_null(infer(g, l, &ok));
    dims_are(&l->shape, false, 0, NULL);
    expect_error(g, graph_add(g, OP_SOFTMAX_XENT, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, t}),
                 "softmax_cross_entropy loss: the target has shape []; the scores [3, 4, 4] need one "
                 "class index per position, [4, 4]");
    /* a class index per position: [3, 4, 4] scored against [4, 4] */
    int tp = add_src(g, OP_INPUT, "tp", true, 2, (int[]){4, 4});
    l = graph_add(g, OP_NLL, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, tp});
    assert_null(infer(g, l, &ok));
    dims_are(&l->shape, false, 0, NULL);
    Shape want = loss_target_shape(OP_NLL, &graph_node(g, x)->shape);
    assert_true(shape_eq(&want, &graph_node(g, tp)->shape));
    l = graph_add(g, OP_NLL, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, tp});
    l->p.loss.weight = (const float[]){1, 2};
    l->p.loss.nweight = 2;
    expect_error(g, l, "nll loss: has 2 class weights for the 3 classes of [3, 4, 4]");
    l = graph_add(g, OP_BCE_LOGITS, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, x});
    assert_null(infer(g, l, &ok));
    expect_error(g, graph_add(g, OP_L1, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, tp}),
                 "l1 loss: the prediction has shape [3, 4, 4], the target [4, 4]");
    l = graph_add(g, OP_MSE, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, x});
    assert_null(infer(g, l, &ok));
    dims_are(&l->shape, false, 0, NULL);
    expect_error(g, graph_add(g, OP_MSE, "loss", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, z}),
                 "mse loss: the prediction has shape [3, 4, 4], the target [10]");
    /* gradient ops keep the shape autodiff gave them */
    Node *dx = graph_add(g, OP_RELU_DX, "dx", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, x});
    dx->shape = (Shape){.rank = 2, .d = {7, 7}, .batched = true};
    assert_null(infer(g, dx, &ok));
    assert_true(ok);
    dims_are(&dx->shape, true, 2, (int[]){7, 7});
    arena_free(a);
}

/* activations and element-wise arithmetic: PyTorch broadcasting per sample */
static void test_broadcast(void **state)
{
    (void)state;
    Shape y;
    int axis = 0;
    Shape chw = {.rank = 3, .d = {4, 6, 5}, .batched = true};
    Shape c11 = {.rank = 3, .d = {4, 1, 1}, .batched = true};
    Shape w = {.rank = 1, .d = {5}, .batched = true};
    Shape c1w = {.rank = 3, .d = {4, 1, 5}, .batched = true};
    Shape h1 = {.rank = 2, .d = {6, 1}, .batched = true};
    Shape c = {.rank = 1, .d = {4}, .batched = true};
    assert_true(shape_broadcast(&chw, &c11, &y, &axis));
    dims_are(&y, true, 3, (int[]){4, 6, 5});
    assert_true(shape_broadcast(&w, &chw, &y, &axis));
    dims_are(&y, true, 3, (int[]){4, 6, 5});
    assert_true(shape_broadcast(&c1w, &h1, &y, &axis));
    dims_are(&y, true, 3, (int[]){4, 6, 5});
    assert_false(shape_broadcast(&chw, &c, &y, &axis));
    assert_int_equal(axis, -1);

    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, chw.d);
    int m = add_src(g, OP_INPUT, "m", true, 3, c11.d);
    int f = add_src(g, OP_INPUT, "f", true, 1, c.d);
    bool ok;
    Op ops[] = {OP_ADD, OP_SUB, OP_MUL};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        Node *n = graph_add(g, ops[i], "e", (SrcLoc){"h.net", 1, 1}, 2, (int[]){m, x});
        assert_null(infer(g, n, &ok));
        dims_are(&n->shape, true, 3, (int[]){4, 6, 5});
    }
    expect_error(g, graph_add(g, OP_MUL, "e", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, f}),
                 "mul e: input 2 has shape [4], input 1 has [4, 6, 5]");
    expect_error(g, graph_add(g, OP_ADD, "e", (SrcLoc){"h.net", 1, 1}, 3, (int[]){m, x, f}),
                 "add e: input 3 has shape [4], the inputs before it broadcast to [4, 6, 5]");

    Node *s = graph_add(g, OP_LOG_SOFTMAX, "s", (SrcLoc){"h.net", 1, 1}, 1, &x);
    s->p.act.axis = 2;
    assert_null(infer(g, s, &ok));
    dims_are(&s->shape, true, 3, (int[]){4, 6, 5});
    Node *bad = graph_add(g, OP_SOFTMAX, "s", (SrcLoc){"h.net", 1, 1}, 1, &x);
    bad->p.act.axis = 3;
    expect_error(g, bad, "softmax s: axis 3 is out of range for [4, 6, 5]");

    int pw = add_src(g, OP_PARAM, "p.weight", false, 1, (int[]){4});
    Node *p = graph_add(g, OP_PRELU, "p", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, pw});
    p->p.act.per_channel = true;
    assert_null(infer(g, p, &ok));
    p = graph_add(g, OP_PRELU, "p", (SrcLoc){"h.net", 1, 1}, 2, (int[]){x, pw});
    expect_error(g, p, "prelu p: the weight has shape [4], expected [1]");
    arena_free(a);
}

/* ---- through the front end ---- */

static Model *load(const char *src)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load_string("s.net", src, &d);
    diag_free(&d);
    assert_non_null(m);
    return m;
}

static long macs(const Model *m, const char *name)
{
    int id = graph_find(m->g, name);
    assert_true(id >= 0);
    return node_macs(m->g, graph_node(m->g, id));
}

static void test_macs_lenet(void **state)
{
    (void)state;
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load("examples/lenet.net", &d);
    assert_non_null(m);
    assert_int_equal(macs(m, "c1"), 6L * 28 * 28 * 1 * 25);  /* 117600 */
    assert_int_equal(macs(m, "c2"), 16L * 10 * 10 * 6 * 25); /* 240000 */
    assert_int_equal(macs(m, "f1"), 400L * 120);
    assert_int_equal(macs(m, "f2"), 120L * 84);
    assert_int_equal(macs(m, "f3"), 84L * 10);
    assert_int_equal(macs(m, "relu1"), 0);
    assert_int_equal(macs(m, "maxpool1"), 0);
    assert_int_equal(macs(m, "c1.weight"), 0);
    long total = 0;
    for (int i = 0; i < m->g->nnode; i++)
        total += node_macs(m->g, m->g->node[i]);
    assert_int_equal(total, 117600 + 240000 + 48000 + 10080 + 840);
    model_free(m);
    diag_free(&d);
}

static void test_macs_grouped(void **state)
{
    (void)state;
    Model *m = load("network g\ninput x: [8, 10, 10]\n"
                    "x -> dw: conv(8, kernel=3, pad=1, groups=8) -> pw: conv(16, kernel=1)\n"
                    "  -> c1d: conv(4, kernel=[1, 3]) => y\n");
    assert_int_equal(macs(m, "dw"), 8L * 10 * 10 * 1 * 9);
    assert_int_equal(macs(m, "pw"), 16L * 10 * 10 * 8);
    assert_int_equal(macs(m, "c1d"), 4L * 10 * 8 * 16 * 3);
    model_free(m);
    m = load("network v\ninput x: [2, 6, 6, 6]\nx -> c: conv(3, kernel=3) => y\n");
    assert_int_equal(macs(m, "c"), 3L * 4 * 4 * 4 * 2 * 27);
    model_free(m);
}

/* Messages from the elaborator's side point at the layer as written. */
static void test_messages_in_source(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    Diag d;
    diag_init(&d, f);
    Model *m = frontend_load_string("s.net",
                                    "network s\ninput image: [1, 28, 28]\n"
                                    "image -> c1: conv(6, kernel=5) -> c2: conv(8, kernel=3, groups=4) => a\n"
                                    "image -> maxpool(2) => b\n"
                                    "(a, b) -> m: concat => c\n"
                                    "output c\n",
                                    &d);
    fclose(f);
    assert_null(m);
    assert_non_null(strstr(out, "s.net:3:39: error: conv c2: input has 6 channels, not divisible by groups=4\n"
                                "    image -> c1: conv(6, kernel=5) -> c2: conv(8, kernel=3, groups=4) => a\n"
                                "    " "                                      ^~~~\n"));
    assert_int_equal(d.nerror, 1);
    diag_free(&d);
    free(out);

    out = NULL;
    f = open_memstream(&out, &len);
    diag_init(&d, f);
    m = frontend_load_string("s.net",
                             "network s\ninput image: [1, 28, 28]\n"
                             "image -> c1: conv(6, kernel=5, pad=2) => a\n"
                             "image -> maxpool(2) -> c3: conv(6, kernel=1) => b\n"
                             "(a, b) -> m: concat => c\n",
                             &d);
    fclose(f);
    assert_null(m);
    assert_non_null(strstr(out, "s.net:5:14: error: concat m: input 2 has spatial size 14x14, input 1 has 28x28\n"));
    diag_free(&d);
    free(out);
}

/* ---- pooling and data movement ---- */

/* ceil_mode rounds up, but drops a last window starting in the high
 * padding (PyTorch's rule); global pools keep the rank. */
static void test_pool_ceil_global(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, (int[]){2, 5, 6});
    bool ok;
    Node *n = pool(g, OP_MAXPOOL, x, 2, 2, 0); /* 5: floor 2, ceil 3; 6: 3 either way */
    n->p.pool.ceil_mode = true;
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){2, 3, 3});
    n = pool(g, OP_AVGPOOL, x, 2, 2, 1); /* 5+2: ceil((7-2)/2)+1 = 4, (4-1)*2 = 6 >= 5+1: 3 */
    n->p.pool.ceil_mode = true;
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){2, 3, 4});
    n = graph_add(g, OP_GLOBAL_AVGPOOL, "gp", (SrcLoc){"h.net", 4, 1}, 1, &x);
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){2, 1, 1});
    assert_int_equal(n->p.pool.kernel[0], 5);
    assert_int_equal(n->p.pool.kernel[1], 6);
    arena_free(a);
}

static Node *one(Graph *g, Op op, int x)
{
    return graph_add(g, op, "m", (SrcLoc){"h.net", 4, 1}, 1, &x);
}

static void test_data_movement(void **state)
{
    (void)state;
    Arena *a;
    Graph *g = g_new(&a);
    int x = add_src(g, OP_INPUT, "x", true, 3, (int[]){8, 3, 5});
    bool ok;
    Node *n = one(g, OP_PIXEL_SHUFFLE, x);
    n->p.perm.factor = 2;
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){2, 6, 10});
    assert_int_equal(n->p.perm.rank, 5);
    n = one(g, OP_RESHAPE, x);
    n->p.reshape = (ReshapeParam){3, {4, -1, 3}};
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){4, 10, 3});
    n = one(g, OP_RESHAPE, x);
    n->p.reshape = (ReshapeParam){2, {7, -1}};
    expect_error(g, n, "reshape m: the input [8, 3, 5] has 120 elements, not a multiple of 7");
    n = one(g, OP_SLICE, x);
    n->p.slice = (SliceParam){1, 2, 4};
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){8, 3, 3});
    n = one(g, OP_PAD, x);
    n->p.pad = (PadParam){2, PAD_REFLECT, 0, {2, 0}, {0, 4}};
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){8, 5, 9});
    n->p.pad.hi[1] = 5;
    expect_error(g, n, "pad m: reflect pad 5 on axis W must be less than its size 5");
    n = one(g, OP_UPSAMPLE, x);
    n->p.up = (UpsampleParam){2, 2, false, false, {2, 3}, {0}}; /* bilinear */
    assert_null(infer(g, n, &ok));
    dims_are(&n->shape, true, 3, (int[]){8, 6, 15});
    n = one(g, OP_CHANNEL_SHUFFLE, x);
    n->p.perm.factor = 3;
    expect_error(g, n, "channel_shuffle m: input has 8 channels, not divisible by groups=3");
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_sizes),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_dense_flatten),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_elementwise_and_losses),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_macs_lenet),
        cmocka_unit_test(test_macs_grouped),
        cmocka_unit_test(test_messages_in_source),
        cmocka_unit_test(test_pool_ceil_global),
        cmocka_unit_test(test_data_movement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
