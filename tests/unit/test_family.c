/* test_family.c - kernel families (loop_family.c): kernels identical up to
 * constants share one function with the differing constants as arguments.
 *
 * Hand-built kernels check what joins a family and what does not; whole
 * programs (the small zoo nets, training entries included) check that
 * every member's calls compute, through the family's function and the
 * member's arguments, the same bits as the member's own body, in the
 * interpreter (loop_eval.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loop_eval.h"
#include "netc.h"

/* y[i] = x[i]*mul + add over i in 0..count, inside a loop over n that
 * reads x at j*count/div (div inside a sequential loop: it stays).  vlen
 * is the kernel's vector width: 0 marks a scalar kernel, whose loops the
 * backend compiler vectorises and which keeps its constants. */
static Kernel *affine(Arena *a, const char *name, int count, float mul, float add, int div,
                      int vlen)
{
    Kernel *k = kernel_new(a, name, name);
    k->vlen = vlen;
    int y = kernel_buf(a, k, "y", true, 0, count);
    int x = kernel_buf(a, k, "x", false, 0, count);
    int b = kernel_var(a, k, "b", T_I32), i = kernel_var(a, k, "i", T_I32);
    Stmt *outer = st_for(a, b, ex_int(a, 0), ex_batch(a));
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_int(a, count));
    Expr *at = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, b), ex_int(a, count)), ex_var(a, k, i));
    Expr *src = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, b), ex_int(a, count)),
                       ex_bin(a, X_DIV, ex_var(a, k, i), ex_int(a, div)));
    Expr *v = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_load(a, x, src), ex_flt(a, mul)), ex_flt(a, add));
    st_append(a, f, st_store(a, y, at, v, false));
    st_append(a, outer, f);
    st_append(a, k->body, outer);
    NETC_ASSERT(kernel_verify(k, stderr));
    return k;
}

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static float **make_bufs(const Kernel *k, int n, uint32_t seed)
{
    float **b = calloc((size_t)k->nbuf + 1, sizeof *b);
    uint32_t s = seed | 1;
    for (int i = 0; i < k->nbuf; i++) {
        long size = k->buf[i].size_fixed + k->buf[i].size_per_n * n;
        b[i] = calloc((size_t)size + 1, sizeof(float));
        for (long j = 0; j < size; j++)
            b[i][j] = (float)(rng_next(&s) % 4001) / 1000.0f - 2.0f;
    }
    return b;
}

static void free_bufs(const Kernel *k, float **b)
{
    for (int i = 0; i < k->nbuf; i++)
        free(b[i]);
    free(b);
}

/* A member's body and its call (the family's kernel with its arguments)
 * write the same bits. */
static void expect_call_same(const Kernel *k, int n)
{
    float **own = make_bufs(k, n, 4242u), **call = make_bufs(k, n, 4242u);
    kernel_eval(k, n, own);
    kernel_eval_call(k, n, call);
    for (int i = 0; i < k->nbuf; i++) {
        long size = k->buf[i].size_fixed + k->buf[i].size_per_n * n;
        if (memcmp(own[i], call[i], sizeof(float) * (size_t)size) != 0)
            fail_msg("kernel %s: buffer %s differs when run as %s", k->name, k->buf[i].name,
                     kernel_callee(k)->name);
    }
    free_bufs(k, own);
    free_bufs(k, call);
}

static void test_families(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *ks[7] = {
        affine(a, "k_a", 12, 2.0f, 1.0f, 2, 8),
        affine(a, "k_b", 20, 3.0f, 1.0f, 2, 8), /* k_a's family: count and mul differ */
        affine(a, "k_c", 12, 2.0f, 1.0f, 3, 8), /* another divisor in a loop: its own */
        affine(a, "k_d", 30, 2.0f, 1.0f, 2, 8), /* k_a's family again */
        NULL,
        affine(a, "k_f", 40, 2.0f, 1.0f, 2, 0), /* scalar, a family of two: */
        affine(a, "k_g", 50, 2.0f, 1.0f, 2, 0), /* each keeps its constants */
    };
    ks[4] = kernel_new(a, "k_e", NULL); /* another structure */
    kernel_buf(a, ks[4], "y", true, 4, 0);
    st_append(a, ks[4]->body, st_store(a, 0, ex_int(a, 0), ex_flt(a, 1.0f), false));
    Kernel *orig[7];
    memcpy(orig, ks, sizeof orig);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int n = kernel_families(a, ks, 7, f);
    fclose(f);
    assert_int_equal(n, 5);
    /* the family's kernel stands where its first member was */
    assert_ptr_equal(orig[0]->impl, ks[0]);
    assert_ptr_equal(orig[1]->impl, ks[0]);
    assert_ptr_equal(orig[3]->impl, ks[0]);
    assert_ptr_equal(ks[1], orig[2]);
    assert_ptr_equal(ks[2], orig[4]);
    assert_ptr_equal(ks[3], orig[5]);
    assert_ptr_equal(ks[4], orig[6]);
    assert_null(orig[2]->impl);
    assert_null(orig[5]->impl);
    assert_null(orig[6]->impl);
    assert_int_equal(orig[6]->narg, 0);
    assert_true(kernel_verify(ks[0], stderr));
    /* count (in the bound and the stride: one argument) and mul vary;
     * add and the divisor are the same in all three */
    assert_int_equal(ks[0]->narg, 2);
    assert_int_equal(ks[0]->arg_t[0], T_I32);
    assert_int_equal(ks[0]->arg_t[1], T_F32);
    assert_int_equal(orig[1]->arg[0].i, 20);
    assert_true(orig[1]->arg[1].f == 3.0f);
    assert_int_equal(ks[0]->nshared, 2);
    assert_non_null(strstr(text, "family k_a: 3 kernels, 2 arguments"));
    assert_non_null(strstr(text, "k_d"));
    free(text);
    for (int i = 0; i < 4; i++)
        expect_call_same(orig[i], 3);
    arena_free(a);
}

static int members_checked;

/* Every call of every entry of the net's program runs what the member's
 * own body computes. */
/* The net at path with its backward pass, fused and scheduled, as netc
 * builds it. */
static Model *load(const char *path, Diag *d, Sched **s)
{
    diag_init(d, stderr);
    Model *m = frontend_load(path, d);
    if (!m)
        fail_msg("%s does not load", path);
    if (m->g->loss >= 0)
        autodiff(m, m->g->loss, -1);
    fuse_epilogues(m);
    *s = sched_choose(m);
    return m;
}

static void check_net(const char *path)
{
    Diag d;
    Sched *s;
    Model *m = load(path, &d, &s);
    Program *p = program_build_for(m, s, target_reference());
    int families = 0;
    for (int i = 0; i < p->nkernel; i++) {
        families += p->kernel[i]->narg > 0 || p->kernel[i]->nshared > 0;
        assert_true(kernel_verify(p->kernel[i], stderr));
        assert_null(p->kernel[i]->impl);
    }
    assert_true(families > 0);
    for (int e = 0; e < p->nentry; e++)
        for (int c = 0; c < p->entry[e].ncall; c++) {
            const Kernel *k = p->entry[e].call[c].kernel;
            assert_ptr_equal(p->kernel[kernel_callee(k)->index], kernel_callee(k));
            if (k->impl && k->buf[0].size_per_n * 2 + k->buf[0].size_fixed < 200000) {
                expect_call_same(k, 2);
                members_checked++;
            }
        }
    program_free(p);
    model_free(m);
    diag_free(&d);
}

/* Every call of the program built with outlining and families computes
 * what the same call computes without either (--share=exact). */
static int calls_compared;

static void check_outlined(const char *path)
{
    Diag d;
    Sched *s;
    Model *m = load(path, &d, &s);
    ProgramOptions exact = {.share = SHARE_EXACT};
    Program *p = program_build_for(m, s, target_reference());
    Program *q = program_build_opts(m, s, target_reference(), &exact);
    int outlined = 0;
    for (int i = 0; i < p->nkernel; i++)
        outlined += p->kernel[i]->outlined;
    assert_true(outlined > 0);
    assert_int_equal(p->nentry, q->nentry);
    for (int e = 0; e < p->nentry; e++) {
        assert_int_equal(p->entry[e].ncall, q->entry[e].ncall);
        for (int c = 0; c < p->entry[e].ncall; c++) {
            const Kernel *kp = p->entry[e].call[c].kernel, *kq = q->entry[e].call[c].kernel;
            assert_int_equal(kp->nbuf, kq->nbuf);
            if (kq->buf[0].size_per_n * 2 + kq->buf[0].size_fixed >= 200000)
                continue;
            float **bp = make_bufs(kq, 2, 99u), **bq = make_bufs(kq, 2, 99u);
            kernel_eval_call(kp, 2, bp);
            kernel_eval(kq, 2, bq);
            for (int i = 0; i < kq->nbuf; i++) {
                long size = kq->buf[i].size_fixed + kq->buf[i].size_per_n * 2;
                if (memcmp(bp[i], bq[i], sizeof(float) * (size_t)size) != 0)
                    fail_msg("%s: %s differs in buffer %s when outlined", path, kq->name, kq->buf[i].name);
            }
            free_bufs(kq, bp);
            free_bufs(kq, bq);
            calls_compared++;
        }
    }
    program_free(p);
    program_free(q);
    model_free(m);
    diag_free(&d);
}

static void test_outlined(void **state)
{
    (void)state;
    check_outlined("examples/lenet.net");
    check_outlined("examples/inception_mini.net");
    check_outlined("examples/zoo/small/googlenet_small.net");
    check_outlined("examples/zoo/small/mobilenet_v2_small.net");
    printf("%d calls compared\n", calls_compared);
    assert_true(calls_compared > 100);
}

static void test_programs(void **state)
{
    (void)state;
    check_net("examples/inception_mini.net");
    check_net("examples/resnet_mini.net");
    check_net("examples/zoo/small/googlenet_small.net");
    check_net("examples/zoo/small/shufflenet_small.net");
    printf("%d family members checked\n", members_checked);
    assert_true(members_checked > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families),
        cmocka_unit_test(test_programs),
        cmocka_unit_test(test_outlined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
