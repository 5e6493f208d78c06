/* test_hoist.c - prepared weights: the split of a kernel's weight work
 * (loop_hoist.c) and the prepare / _prepared entries program.c builds
 * from it.
 *
 * A hand-built kernel checks what moves and what stays; whole programs
 * (a Winograd, an FFT, a 1x1 and a batch-norm-folding network) run their
 * forward entry and prepare + forward_prepared through the interpreter
 * (loop_eval.c), which must give the same bits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loop_eval.h"
#include "loop_hoist.h"
#include "netc.h"

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fill(float *v, long n, uint32_t *s)
{
    for (long i = 0; i < n; i++)
        v[i] = (float)(rng_next(s) % 4001) / 1000.0f - 2.0f;
}

/* y[i] = x[i] * t2[i % 4] + z[0] with
 *   t1 = w * 2        (weights only: moves, a temporary of pre)
 *   t2 = t1 + w       (weights only: moves, prepared: the rest reads it)
 *   z  = 0; z += x[0] (workspace of the rest: stays)
 * Buffers: y, x, w (bound), t1, t2, z (scratch). */
static Kernel *sample(Arena *a, bool with_batch_in_prep)
{
    Kernel *k = kernel_new(a, "k_s", "sample");
    int y = kernel_buf(a, k, "y", true, 0, 8), x = kernel_buf(a, k, "x", false, 0, 8);
    int w = kernel_buf(a, k, "w", false, 4, 0);
    int t1 = kernel_scratch(a, k, "t1", 4, 0), t2 = kernel_scratch(a, k, "t2", 4, 0);
    int z = kernel_scratch(a, k, "z", 1, 0);
    int i = kernel_var(a, k, "i", T_I32), j = kernel_var(a, k, "j", T_I32);
    int m = kernel_var(a, k, "m", T_I32);
    Stmt *l1 = st_for(a, i, ex_int(a, 0), with_batch_in_prep ? ex_bin(a, X_MIN, ex_batch(a), ex_int(a, 4))
                                                             : ex_int(a, 4));
    st_append(a, l1, st_store(a, t1, ex_var(a, k, i),
                              ex_bin(a, X_MUL, ex_load(a, w, ex_var(a, k, i)), ex_flt(a, 2.0f)), false));
    st_append(a, k->body, l1);
    Stmt *l2 = st_for(a, j, ex_int(a, 0), ex_int(a, 4));
    st_append(a, l2, st_store(a, t2, ex_var(a, k, j),
                              ex_bin(a, X_ADD, ex_load(a, t1, ex_var(a, k, j)),
                                     ex_load(a, w, ex_var(a, k, j))), false));
    st_append(a, k->body, l2);
    st_append(a, k->body, st_store(a, z, ex_int(a, 0), ex_flt(a, 0.0f), false));
    st_append(a, k->body, st_store(a, z, ex_int(a, 0), ex_load(a, x, ex_int(a, 0)), true));
    Stmt *l3 = st_for(a, m, ex_int(a, 0), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, 8)));
    Expr *v = ex_bin(a, X_MUL, ex_load(a, x, ex_var(a, k, m)),
                     ex_load(a, t2, ex_bin(a, X_MOD, ex_var(a, k, m), ex_int(a, 4))));
    st_append(a, l3, st_store(a, y, ex_var(a, k, m), ex_bin(a, X_ADD, v, ex_load(a, z, ex_int(a, 0))),
                              false));
    st_append(a, k->body, l3);
    assert_true(kernel_verify(k, stderr));
    return k;
}

static void test_split(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = sample(a, false);
    bool bound[6] = {false, false, true, false, false, false};
    Hoist h;
    assert_true(loop_hoist(a, k, bound, &h));
    assert_int_equal(h.role[0], HOIST_KEEP);
    assert_int_equal(h.role[2], HOIST_KEEP);
    assert_int_equal(h.role[3], HOIST_TEMP);
    assert_int_equal(h.role[4], HOIST_PREP);
    assert_int_equal(h.role[5], HOIST_KEEP);
    /* pre: t2 (prepared), w, t1 (temporary); post: k's buffers but t1 */
    assert_int_equal(h.pre->nbuf, 3);
    assert_int_equal(h.pre_buf[0], 4);
    assert_int_equal(h.pre_buf[1], 2);
    assert_int_equal(h.pre_buf[2], 3);
    assert_true(h.pre->buf[0].written && !h.pre->buf[0].scratch && h.pre->buf[2].scratch);
    assert_int_equal(h.pre->body->nbody, 2);
    assert_int_equal(h.post->nbuf, 5);
    assert_false(h.post->buf[3].written || h.post->buf[3].scratch); /* t2, read */
    assert_true(h.post->buf[4].scratch);                            /* z */
    assert_int_equal(h.post->body->nbody, 3);

    /* pre then post computes k's y */
    int n = 2;
    uint32_t s = 7;
    float x[16], w[4], y0[16], y1[16], t1[4], t2[4], z[1], u[4], v[1];
    fill(x, 16, &s);
    fill(w, 4, &s);
    float *kb[6] = {y0, x, w, t1, t2, z};
    kernel_eval(k, n, kb);
    float *pb[3] = {u, w, t1};
    kernel_eval(h.pre, n, pb);
    float *qb[5] = {y1, x, w, u, v};
    kernel_eval(h.post, n, qb);
    assert_memory_equal(y0, y1, sizeof y0);

    /* nothing moves when the weights are not bound, or the work reads n */
    bool unbound[6] = {false};
    assert_false(loop_hoist(a, k, unbound, &h));
    assert_false(loop_hoist(a, sample(a, true), bound, &h) && h.role[3] == HOIST_TEMP);
    arena_free(a);
}

/* ---- whole programs through the interpreter ---- */

typedef struct {
    float *params, *prep, *arena, **in, **out;
} Mem;

static float *loc_ptr(const Mem *m, const Loc *l, int n)
{
    switch (l->k) {
    case LOC_ARENA: return m->arena + l->off_fixed + l->off_per_n * n;
    case LOC_PARAM: return m->params + l->off_fixed;
    case LOC_PREP: return m->prep + l->off_fixed;
    case LOC_IN: return m->in[l->idx];
    case LOC_OUT: return m->out[l->idx];
    default: fail_msg("unexpected Loc kind %d", (int)l->k);
    }
    return NULL;
}

static void run_entry(const Entry *e, const Mem *m, int n)
{
    for (int c = 0; c < e->ncall; c++) {
        const Call *call = &e->call[c];
        float **bufs = calloc((size_t)call->kernel->nbuf + 1, sizeof *bufs);
        for (int b = 0; b < call->kernel->nbuf; b++)
            bufs[b] = loc_ptr(m, &call->arg[b], n);
        kernel_eval_call(call->kernel, n, bufs);
        free(bufs);
    }
}

static const Entry *entry(const Program *p, const char *name)
{
    for (int i = 0; i < p->nentry; i++)
        if (!strcmp(p->entry[i].name, name))
            return &p->entry[i];
    return NULL;
}

static float *nans(long n)
{
    float *v = malloc(sizeof(float) * (size_t)(n + 1));
    for (long i = 0; i < n; i++)
        v[i] = NAN;
    return v;
}

static long value_floats(const Program *p, int node, int n)
{
    const Node *nd = graph_node(p->m->g, node);
    return shape_numel(&nd->shape) * (nd->shape.batched ? n : 1);
}

static int programs_checked;

static void check_program(const char *path, const char *algo)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load(path, &d);
    assert_non_null(m);
    if (m->g->loss >= 0)
        autodiff(m, m->g->loss, -1);
    fuse_epilogues(m);
    fold_batchnorms(m);
    if (algo)
        assert_true(algo_parse(algo, &m->conv_algo));
    Sched *s = sched_choose(m);
    Program *p = program_build_for(m, s, target_reference());
    const Entry *f = entry(p, "forward"), *fp = entry(p, "forward_prepared"), *pe = entry(p, "prepare");
    if (!pe)
        fail_msg("%s: no prepare entry", path);
    assert_non_null(fp);
    assert_true(p->prep_floats > 0);
    int n = 2;
    uint32_t seed = 11;
    Mem mem = {malloc(sizeof(float) * (size_t)(p->param_floats + 1)), nans(p->prep_floats), NULL,
               calloc((size_t)f->nin + 1, sizeof(float *)), calloc((size_t)f->nout + 1, sizeof(float *))};
    fill(mem.params, p->param_floats, &seed);
    /* variances must stay positive */
    for (long i = 0; i < p->param_floats; i++)
        mem.params[i] = fabsf(mem.params[i]) + 0.25f;
    for (int i = 0; i < f->nin; i++) {
        long len = value_floats(p, f->in[i], n);
        mem.in[i] = malloc(sizeof(float) * (size_t)(len + 1));
        fill(mem.in[i], len, &seed);
    }
    long na = f->arena_fixed + f->arena_per_n * n;
    long nb = fp->arena_fixed + fp->arena_per_n * n;
    na = na > nb ? na : nb;
    na = na > pe->arena_fixed ? na : pe->arena_fixed;
    float **y = calloc((size_t)f->nout + 1, sizeof *y);
    for (int i = 0; i < f->nout; i++)
        mem.out[i] = nans(value_floats(p, f->out[i], n));
    mem.arena = nans(na);
    run_entry(f, &mem, n);
    for (int i = 0; i < f->nout; i++) {
        y[i] = mem.out[i];
        mem.out[i] = nans(value_floats(p, f->out[i], n));
    }
    free(mem.arena);
    mem.arena = nans(na);
    run_entry(pe, &mem, 1);
    free(mem.arena);
    mem.arena = nans(na);
    run_entry(fp, &mem, n);
    for (int i = 0; i < f->nout; i++) {
        long len = value_floats(p, f->out[i], n);
        if (memcmp(y[i], mem.out[i], sizeof(float) * (size_t)len) != 0)
            fail_msg("%s: forward_prepared's output %d differs from forward's", path, i);
        free(y[i]);
        free(mem.out[i]);
    }
    for (int i = 0; i < f->nin; i++)
        free(mem.in[i]);
    free(y);
    free(mem.in);
    free(mem.out);
    free(mem.arena);
    free(mem.prep);
    free(mem.params);
    program_free(p);
    model_free(m);
    diag_free(&d);
    programs_checked++;
}

static void test_programs(void **state)
{
    (void)state;
    check_program("tests/golden/act.net", NULL);           /* a 1x1 conv's packed weight */
    check_program("tests/golden/foldbn.net", NULL);        /* folded batch norms */
    check_program("tests/ops/conv_wino_chain.net", "winograd");
    check_program("tests/ops/conv_fft_k7.net", "fft");
    check_program("examples/lenet_bn.net", "winograd");    /* folded, then transformed */
    assert_int_equal(programs_checked, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_programs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
