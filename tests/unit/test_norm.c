/* test_norm.c - dropout's masks and the state of a training step, on the
 * loop-IR interpreter (the op tests run p = 0 through both backends, since
 * PyTorch cannot draw netc's masks).
 *
 *   - the training kernel keeps element i exactly when
 *     loop_hash(loop_hash(key, step), i) >= p * 2^24 and scales it by
 *     1/(1-p); the same step gives the same mask, another step another one;
 *   - dropout2d keeps or drops whole channels, keyed by nb*C + c;
 *   - the inference kernel is the identity;
 *   - the gradient is mask * scale * dy with the forward's mask;
 *   - the step counter and num_batches_tracked advance by one per step,
 *     and every state PARAM has a next value (Model.next_of);
 *   - loop_hash spreads its values: masks keep about 1 - p of the elements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop_eval.h"
#include "netc.h"

enum { N = 3, C = 4, S = 10, NUMEL = C * S };

typedef struct {
    Diag d;
    Model *m;
    Sched *s;
    Arena *a;
} M;

static M load(const char *text)
{
    M t;
    diag_init(&t.d, stderr);
    t.m = frontend_load_string("t.net", text, &t.d);
    assert_non_null(t.m);
    autodiff_seeded(t.m, t.m->g->outputs[0]);
    t.s = sched_choose(t.m);
    t.a = arena_new();
    return t;
}

static void unload(M *t)
{
    arena_free(t->a);
    model_free(t->m);
    diag_free(&t->d);
}

static int node(const M *t, const char *name)
{
    int id = graph_find(t->m->g, name);
    assert_true(id >= 0);
    return id;
}

/* Runs node `name`'s kernel (training or not) on bufs (output first). */
static void run(M *t, const char *name, bool training, float *const *bufs)
{
    Kernel *k = lower_node_mode(t->a, t->m, t->s, target_reference(), node(t, name), training);
    assert_true(kernel_verify(k, stderr));
    kernel_eval(k, N, bufs);
}

static void fill(float *v, int n, float base)
{
    for (int i = 0; i < n; i++)
        v[i] = base + 0.01f * (float)(i + 1);
}

static const char *const DROPOUT = "network d\ninput x: [4, 10]\nx -> c: dropout(0.3) => y\noutput y\n";
static const char *const DROPOUT2D =
    "network d\ninput x: [4, 10]\nx -> c: dropout2d(0.5) => y\noutput y\n";

/* The kept-or-not of unit u at `step`, as the kernels must compute it. */
static bool kept(const Node *n, float step, int u)
{
    int key = loop_hash((int)(n->p.drop.key & 0x7fffffffu), (int)step);
    return loop_hash(key, u) >= (int)ceil((double)n->p.drop.p * 16777216.0);
}

static void test_dropout_mask(void **state)
{
    (void)state;
    M t = load(DROPOUT);
    const Node *c = graph_node(t.m->g, node(&t, "c"));
    float x[N * NUMEL], y[N * NUMEL], y2[N * NUMEL], step = 7;
    fill(x, N * NUMEL, 1.0f);
    run(&t, "c", true, (float *[]){y, x, &step});
    float scale = (float)(1.0 / (1.0 - 0.3));
    int nkept = 0;
    for (int i = 0; i < N * NUMEL; i++) {
        bool k = kept(c, step, i);
        nkept += k;
        assert_true(y[i] == (k ? x[i] * scale : 0.0f));
    }
    /* about 70% of 120 */
    assert_in_range(nkept, 60, 108);
    run(&t, "c", true, (float *[]){y2, x, &step});
    assert_memory_equal(y, y2, sizeof y);
    step = 8;
    run(&t, "c", true, (float *[]){y2, x, &step});
    assert_memory_not_equal(y, y2, sizeof y);
    /* inference: the identity */
    run(&t, "c", false, (float *[]){y, x, &step});
    assert_memory_equal(y, x, sizeof y);
    unload(&t);
}

static void test_dropout_grad(void **state)
{
    (void)state;
    M t = load(DROPOUT);
    float x[N * NUMEL], y[N * NUMEL], dy[N * NUMEL], dx[N * NUMEL], step = 11;
    fill(x, N * NUMEL, 1.0f);
    fill(dy, N * NUMEL, -2.0f);
    run(&t, "c", true, (float *[]){y, x, &step});
    run(&t, "c.dx", true, (float *[]){dx, dy, &step});
    float scale = (float)(1.0 / (1.0 - 0.3));
    for (int i = 0; i < N * NUMEL; i++)
        assert_true(dx[i] == (y[i] != 0.0f ? dy[i] * scale : 0.0f));
    unload(&t);
}

static void test_dropout2d_channels(void **state)
{
    (void)state;
    M t = load(DROPOUT2D);
    const Node *c = graph_node(t.m->g, node(&t, "c"));
    float x[N * NUMEL], y[N * NUMEL], step = 3;
    fill(x, N * NUMEL, 1.0f);
    run(&t, "c", true, (float *[]){y, x, &step});
    int nkept = 0;
    for (int u = 0; u < N * C; u++) {
        bool k = kept(c, step, u);
        nkept += k;
        for (int s = 0; s < S; s++)
            assert_true(y[u * S + s] == (k ? x[u * S + s] * 2.0f : 0.0f));
    }
    assert_in_range(nkept, 1, N * C - 1);
    unload(&t);
}

/* Every state PARAM has a next value; counters add one. */
static void test_state_updates(void **state)
{
    (void)state;
    M t = load("network b\ninput x: [4, 10]\nx -> bn: batchnorm -> c: dropout(0.1) => y\noutput y\n");
    const Graph *g = t.m->g;
    int nstate = 0;
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (n->op != OP_PARAM)
            continue;
        bool trained = !strcmp(n->p.param.role, "weight") || !strcmp(n->p.param.role, "bias");
        assert_int_equal(n->p.param.state, !trained);
        if (!n->p.param.state)
            continue;
        nstate++;
        assert_true(t.m->next_of[i] >= 0);
        /* no gradient: the optimiser never sees a state */
        assert_int_equal(t.m->grad_of[i], -1);
    }
    assert_int_equal(nstate, 4); /* running_mean, running_var, num_batches_tracked, step */
    float count = 41, next = 0;
    run(&t, "c.step.next", true, (float *[]){&next, &count});
    assert_true(next == 42.0f);
    run(&t, "bn.num_batches_tracked.next", true, (float *[]){&next, &count});
    assert_true(next == 42.0f);
    unload(&t);
}

/* loop_hash: fixed values (the printers must match them bit for bit) and
 * a spread over [0, 2^24). */
static void test_hash(void **state)
{
    (void)state;
    assert_int_equal(loop_hash(0, 0), 0);
    int lo = 1 << 24, hi = -1;
    long sum = 0;
    for (int i = 0; i < 4096; i++) {
        int h = loop_hash(12345, i);
        assert_in_range(h, 0, (1 << 24) - 1);
        lo = h < lo ? h : lo;
        hi = h > hi ? h : hi;
        sum += h;
    }
    assert_true(lo < (1 << 24) / 100 && hi > (1 << 24) / 100 * 99);
    double mean = (double)sum / 4096 / (1 << 24);
    assert_true(mean > 0.45 && mean < 0.55);
    assert_int_not_equal(loop_hash(1, 2), loop_hash(2, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_dropout_grad),
        cmocka_unit_test(test_dropout2d_channels),
        cmocka_unit_test(test_state_updates),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
