/* Tests of autodiff, scheduling and the program builder (entries, memory
 * plan, meta) on small networks loaded from source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "netc.h"

static Model *load(const char *src)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load_string("test.net", src, &d);
    diag_free(&d);
    assert_non_null(m);
    return m;
}

static const char *lenet_src =
    "network lenet\n"
    "input image: [1, 28, 28]\n"
    "image -> c1: conv(6, kernel=5, pad=2) -> relu -> maxpool(2)\n"
    "      -> c2: conv(16, kernel=5) -> relu -> maxpool(2)\n"
    "      -> flatten -> f1: dense(120) -> relu -> f2: dense(84) -> relu\n"
    "      -> f3: dense(10) => logits\n"
    "output logits\n"
    "train { loss softmax_cross_entropy(logits) batch 64 epochs 1 }\n";

static const char *branchy_src =
    "network branchy\n"
    "input x: [3, 8, 8]\n"
    "x -> a: conv(4, kernel=3, pad=1) -> relu => p\n"
    "x -> b: conv(4, kernel=1) => q\n"
    "(p, q) -> add => s\n"
    "(s, p) -> concat -> flatten -> d: dense(5) => y\n"
    "output y\n"
    "train { loss softmax_cross_entropy(y) }\n";

static int find(const Model *m, const char *name)
{
    int id = graph_find(m->g, name);
    assert_true(id >= 0);
    return id;
}

/* Every parameter gets a gradient node of its own shape; the backward graph
 * verifies like any other IR. */
static void test_autodiff_params(void **state)
{
    (void)state;
    Model *m = load(lenet_src);
    autodiff(m, m->g->loss, -1);
    assert_true(graph_verify(m->g, stderr));
    int nparam = 0;
    for (int i = 0; i < m->g->nnode; i++) {
        const Node *n = m->g->node[i];
        if (n->op != OP_PARAM)
            continue;
        nparam++;
        int gid = m->grad_of[i];
        assert_true(gid > m->g->loss);
        assert_true(shape_eq(&graph_node(m->g, gid)->shape, &n->shape));
    }
    assert_int_equal(nparam, 10);
    /* The input image needs no gradient for training: c1 has no conv_dx. */
    assert_int_equal(graph_find(m->g, "c1.dx"), -1);
    assert_int_equal(m->grad_of[find(m, "image")], -1);
    assert_int_equal(graph_node(m->g, m->grad_of[find(m, "c1.weight")])->op, OP_CONV_DW);
    assert_int_equal(graph_node(m->g, m->grad_of[find(m, "c1.bias")])->op, OP_BIAS_GRAD);
    model_free(m);
}

/* A value with two consumers gets its contributions summed; concat's
 * gradient is a slice per input. */
static void test_autodiff_fanout(void **state)
{
    (void)state;
    Model *m = load(branchy_src);
    autodiff(m, m->g->loss, -1);
    assert_true(graph_verify(m->g, stderr));
    int p = find(m, "relu1");
    const Node *gp = graph_node(m->g, m->grad_of[p]);
    assert_int_equal(gp->op, OP_ADD); /* from add and from concat */
    int x = find(m, "x");
    assert_int_equal(m->grad_of[x], -1);
    bool saw_slice = false;
    for (int i = m->g->loss + 1; i < m->g->nnode; i++)
        if (m->g->node[i]->op == OP_SLICE && m->g->node[i]->p.slice.begin == 4)
            saw_slice = true;
    assert_true(saw_slice);
    model_free(m);
}

/* Within an entry no two arena values that are alive at the same time
 * overlap, and every kernel argument is placed. */
static void check_plan(const Program *p, const Entry *e)
{
    const Graph *g = p->m->g;
    int nn = g->nnode;
    int first[1024], last[1024];
    const Loc *loc[1024];
    assert_true(nn <= 1024);
    for (int i = 0; i < nn; i++) {
        first[i] = last[i] = -1;
        loc[i] = NULL;
    }
    for (int c = 0; c < e->ncall; c++) {
        const Call *call = &e->call[c];
        const Node *n = graph_node(g, call->node);
        if (call->weights)
            continue; /* a split kernel's weight work: the node's values are its other half's */
        int nscratch = 0;
        for (int b = 0; b < call->kernel->nbuf; b++)
            nscratch += call->kernel->buf[b].scratch;
        /* the node's output and inputs, and the prepared weights of a
         * split kernel's second half */
        assert_true(call->kernel->nbuf - nscratch >= n->nin + 1);
        if (first[n->id] < 0)
            first[n->id] = c;
        last[n->id] = c;
        loc[n->id] = &call->arg[0];
        for (int j = 0; j < n->nin; j++) {
            last[n->in[j]] = c;
            loc[n->in[j]] = &call->arg[j + 1];
        }
    }
    for (int a = 0; a < nn; a++) {
        if (!loc[a] || loc[a]->k != LOC_ARENA || first[a] < 0)
            continue;
        const Node *na = graph_node(g, a);
        for (int b = a + 1; b < nn; b++) {
            if (!loc[b] || loc[b]->k != LOC_ARENA || first[b] < 0)
                continue;
            const Node *nb = graph_node(g, b);
            if (na->shape.batched != nb->shape.batched)
                continue; /* separate pools */
            if (last[a] < first[b] || last[b] < first[a])
                continue;
            long oa = na->shape.batched ? loc[a]->off_per_n : loc[a]->off_fixed;
            long ob = nb->shape.batched ? loc[b]->off_per_n : loc[b]->off_fixed;
            long sa = shape_numel(&na->shape), sb = shape_numel(&nb->shape);
            if (oa < ob + sb && ob < oa + sa)
                fail_msg("%s and %s overlap while both alive", na->name, nb->name);
        }
    }
}

static void test_program_plan(void **state)
{
    (void)state;
    const char *srcs[] = {lenet_src, branchy_src};
    for (int k = 0; k < 2; k++) {
        Model *m = load(srcs[k]);
        autodiff(m, m->g->loss, -1);
        Sched *s = sched_choose(m);
        Program *p = program_build(m, s);
        assert_int_equal(p->nentry, 3);
        assert_string_equal(p->entry[0].name, "forward");
        assert_string_equal(p->entry[1].name, "train");
        /* eval: the forward's inputs and outputs plus target and loss, no
         * gradients, and no more memory than the training step */
        const Entry *ev = &p->entry[2];
        assert_string_equal(ev->name, "eval");
        assert_false(ev->writes_grads);
        assert_int_equal(ev->nin, p->entry[1].nin);
        assert_int_equal(ev->nout, p->entry[1].nout);
        assert_int_equal(ev->out[ev->nout - 1], m->g->loss);
        assert_true(ev->arena_per_n <= p->entry[1].arena_per_n);
        assert_true(ev->ncall < p->entry[1].ncall);
        for (int i = 0; i < p->nentry; i++) {
            check_plan(p, &p->entry[i]);
            assert_true(p->entry[i].arena_per_n <= p->entry[i].naive_per_n);
        }
        /* Reuse pays off in the forward pass. */
        assert_true(p->entry[0].arena_per_n < p->entry[0].naive_per_n);
        for (int i = 0; i < p->nkernel; i++)
            assert_true(kernel_verify(p->kernel[i], stderr));
        program_free(p);
        model_free(m);
    }
}

static void test_program_meta(void **state)
{
    (void)state;
    Model *m = load(lenet_src);
    autodiff(m, m->g->loss, -1);
    Program *p = program_build(m, sched_choose(m));
    assert_int_equal(p->param_floats, 61706);
    assert_non_null(strstr(p->meta, "netc 1\nname lenet\nparams 61706\n"));
    assert_non_null(strstr(p->meta, "\ninput image 3 1 28 28\n"));
    assert_non_null(strstr(p->meta, "\noutput f3 1 10\n"));
    assert_non_null(strstr(p->meta, "\nparam c1.weight 0 150 4 6 1 5 5 he_uniform 0 0 25 150\n"));
    assert_non_null(strstr(p->meta, "\nparam c1.bias 150 6 1 6 zero "));
    assert_non_null(strstr(p->meta, "\ntrain loss softmax_cross_entropy\n"));
    assert_non_null(strstr(p->meta, "\ntrain target class 0\n"));
    assert_non_null(strstr(p->meta, "\ntrain batch 64\n"));
    assert_non_null(strstr(p->meta, "\nend\n"));
    program_free(p);
    model_free(m);
}

/* The meta's loss and target records follow the target contract: a class
 * index per position, a one-hot row for a [K] float target, else a tensor;
 * a declared target= input is the target, not a model input. */
static void test_program_meta_losses(void **state)
{
    (void)state;
    static const struct {
        const char *loss, *input, *want;
    } cases[] = {
        {"nll(y, reduction=sum)", "", "\ntrain loss nll sum\ntrain target class 2 4 5\n"},
        {"bce_with_logits(y, target=t)", "input t: [3, 4, 5]\n",
         "\ntrain loss bce_with_logits\ntrain target tensor 3 3 4 5\n"},
        {"l1(f)", "", "\ntrain loss l1\ntrain target onehot 1 6\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "network s\ninput x: [2, 4, 5]\n%sx -> conv(3, kernel=1) => y\n"
                 "x -> flatten -> dense(6) => f\noutput y, f\ntrain {\n  loss %s\n}\n",
                 cases[i].input, cases[i].loss);
        Model *m = load(src);
        autodiff(m, m->g->loss, -1);
        Program *p = program_build(m, sched_choose(m));
        if (!strstr(p->meta, cases[i].want))
            fprintf(stderr, "wanted %s in:\n%s", cases[i].want, p->meta);
        assert_non_null(strstr(p->meta, cases[i].want));
        assert_null(strstr(p->meta, "\ninput t "));
        program_free(p);
        model_free(m);
    }
}

/* The optimizer record carries every setting, exactly; clipping, warm-up,
 * freeze and lr_mult follow it, one record per parameter. */
static void test_program_meta_optimizer(void **state)
{
    (void)state;
    Model *m = load("network o\ninput x: [3]\nx -> a: dense(4) -> b: dense(2) => y\n"
                    "train { loss mse(y)  optimizer rmsprop(lr=0.001, centered=true)  clip_norm 2\n"
                    "  warmup 3  freeze [a]  lr_mult [b(0.5)] }\n");
    autodiff(m, m->g->loss, -1);
    Program *p = program_build(m, sched_choose(m));
    assert_non_null(strstr(p->meta, "\ntrain optimizer rmsprop lr=0.001 alpha=0.99 eps=1e-08 "
                                    "weight_decay=0 momentum=0 centered=1\n"
                                    "train clip_norm 2\ntrain warmup 3\n"));
    assert_non_null(strstr(p->meta, "\ntrain freeze a.weight\ntrain freeze a.bias\n"));
    assert_non_null(strstr(p->meta, "\ntrain lr_mult b.weight 0.5\ntrain lr_mult b.bias 0.5\n"));
    program_free(p);
    model_free(m);
    m = load(lenet_src);
    autodiff(m, m->g->loss, -1);
    p = program_build(m, sched_choose(m));
    assert_non_null(strstr(p->meta, "\ntrain optimizer sgd lr="));
    assert_null(strstr(p->meta, "clip_norm"));
    assert_null(strstr(p->meta, "freeze"));
    program_free(p);
    model_free(m);
}

/* The grad entry (used by the op tests) returns input gradients. */
static void test_program_grad_entry(void **state)
{
    (void)state;
    Model *m = load("network g\ninput x: [2, 5, 5]\nx -> c: conv(3, kernel=3) => y\noutput y\n");
    autodiff_seeded(m, m->g->outputs[0]);
    Program *p = program_build(m, sched_choose(m));
    assert_int_equal(p->nentry, 2);
    const Entry *e = &p->entry[1];
    assert_string_equal(e->name, "grad");
    assert_int_equal(e->nin, 2);
    assert_int_equal(e->nout, 2);
    assert_string_equal(graph_node(m->g, e->in[1])->name, "c.grad");
    assert_int_equal(graph_node(m->g, e->out[1])->op, OP_CONV_DX);
    check_plan(p, e);
    program_free(p);
    model_free(m);
}

/* A kernel whose weight work hoists exists once: every entry calls its
 * two halves (the plain ones back to back, the weight work marked
 * `weights`; the prepared ones the second alone), never the whole. */
static void test_program_split_halves(void **state)
{
    (void)state;
    /* c: a 1x1 conv whose GEMM reads its weight transposed (the golden
     * act.net's), which hoists */
    Model *m = load("network h\ninput x: [2, 3, 4]\nx -> c: conv(2, kernel=1) => y\noutput y\n"
                    "train { loss mse(y) }\n");
    autodiff(m, m->g->loss, -1);
    Program *p = program_build(m, sched_choose(m));
    int halves = 0;
    assert_true(p->prep_floats > 0);
    for (int i = 0; i < p->nkernel; i++) {
        char twin[600];
        snprintf(twin, sizeof twin, "%s_prepared", p->kernel[i]->name);
        for (int j = 0; j < p->nkernel; j++)
            assert_string_not_equal(p->kernel[j]->name, twin);
    }
    for (int e = 0; e < p->nentry; e++) {
        const Entry *en = &p->entry[e];
        for (int c = 0; c < en->ncall; c++) {
            const Call *call = &en->call[c];
            const char *name = call->kernel->name;
            size_t len = strlen(name);
            bool post = len > 9 && strcmp(name + len - 9, "_prepared") == 0;
            if (!post || en->kind == ENTRY_PREPARED)
                continue;
            /* right after its weight work, of the same node */
            assert_true(c > 0 && en->call[c - 1].weights && en->call[c - 1].node == call->node);
            halves++;
        }
    }
    assert_true(halves >= 3); /* forward, train, eval */
    program_free(p);
    model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_program_meta_optimizer),
        cmocka_unit_test(test_autodiff_params),   cmocka_unit_test(test_autodiff_fanout),
        cmocka_unit_test(test_program_plan),      cmocka_unit_test(test_program_meta),
        cmocka_unit_test(test_program_grad_entry), cmocka_unit_test(test_program_meta_losses),
        cmocka_unit_test(test_program_split_halves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
