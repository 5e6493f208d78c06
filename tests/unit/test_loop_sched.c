/* test_loop_sched.c - the loop-IR schedule transformations: split
 * (loop_split.c), vectorise (loop_vectorize.c), unroll (loop_unroll.c)
 * and privatise (loop_privatize.c).
 *
 * Each transformation runs on hand-built kernels and on every kernel that
 * the op nets and LeNet lower to; the verifier must accept the result and
 * the interpreter (loop_eval.c) must compute the same bits before and
 * after on random inputs. */
#include <dirent.h>
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
#include "loop_parallel.h"
#include "loop_privatize.h"
#include "loop_split.h"
#include "loop_unroll.h"
#include "loop_vectorize.h"
#include "netc.h"

/* ---- helpers ---- */

static char *print_kernel(const Kernel *k)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    assert_non_null(f);
    kernel_print(f, k);
    fclose(f);
    return s;
}

static void expect_text(const Kernel *k, const char *needle, bool present)
{
    char *s = print_kernel(k);
    if ((strstr(s, needle) != NULL) != present)
        fail_msg("expected '%s' %s in:\n%s", needle, present ? "present" : "absent", s);
    free(s);
}

static void expect_verified(const Kernel *k)
{
    if (!kernel_verify(k, stderr)) {
        char *s = print_kernel(k);
        fail_msg("verifier rejected:\n%s", s);
    }
}

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random buffers for kernel k at batch n; with `special`, some elements
 * are -0.0, 0.0 or NaN. */
static float **make_bufs(const Kernel *k, int n, uint32_t seed, bool special)
{
    float **b = calloc((size_t)k->nbuf + 1, sizeof *b);
    uint32_t s = seed | 1;
    for (int i = 0; i < k->nbuf; i++) {
        long size = k->buf[i].size_fixed + k->buf[i].size_per_n * n;
        b[i] = calloc((size_t)size + 1, sizeof(float));
        for (long j = 0; j < size; j++) {
            uint32_t r = rng_next(&s);
            float v = (float)(r % 4001) / 1000.0f - 2.0f;
            if (special && r % 13 == 0)
                v = (r >> 8) % 3 == 0 ? -0.0f : (r >> 8) % 3 == 1 ? 0.0f : NAN;
            b[i][j] = v;
        }
    }
    return b;
}

static void free_bufs(const Kernel *k, float **b)
{
    for (int i = 0; i < k->nbuf; i++)
        free(b[i]);
    free(b);
}

/* x and y (the same kernel before and after a transformation) write the
 * same bits into every buffer but their scratch (a workspace, which
 * loop_privatize resizes), from the same random inputs. */
/* With tol > 0, within tol relative to the buffer's largest value instead
 * of bit for bit (a privatised accumulator sums its chunks apart). */
static void expect_results(const Kernel *x, const Kernel *y, int n, bool special, double tol)
{
    assert_int_equal(x->nbuf, y->nbuf);
    for (uint32_t seed = 1; seed <= 2; seed++) {
        float **bx = make_bufs(x, n, seed * 7919u, special);
        float **by = make_bufs(y, n, seed * 7919u, special);
        kernel_eval(x, n, bx);
        kernel_eval(y, n, by);
        for (int i = 0; i < x->nbuf; i++) {
            long size = x->buf[i].size_fixed + x->buf[i].size_per_n * n;
            if (x->buf[i].scratch)
                continue;
            if (tol > 0) {
                double big = 0, worst = 0;
                for (long j = 0; j < size; j++) {
                    big = fmax(big, fabs(bx[i][j]));
                    worst = fmax(worst, fabs((double)bx[i][j] - by[i][j]));
                }
                if (worst > tol * fmax(big, 1.0))
                    fail_msg("kernel %s: buffer %s off by %g (largest %g) after the transformation (n = %d)",
                             x->name, x->buf[i].name, worst, big, n);
                continue;
            }
            if (memcmp(bx[i], by[i], sizeof(float) * (size_t)size) != 0)
                fail_msg("kernel %s: buffer %s differs after the transformation (n = %d)", x->name,
                         x->buf[i].name, n);
        }
        free_bufs(x, bx);
        free_bufs(y, by);
    }
}

static void expect_same_results(const Kernel *x, const Kernel *y, int n, bool special)
{
    expect_results(x, y, n, special, 0);
}

/* Whether a top-level loop of k lists an accumulator. */
static bool has_sum_loop(const Kernel *k)
{
    for (int i = 0; i < k->body->nbody; i++)
        if (k->body->body[i]->k == S_FOR && k->body->body[i]->nsum > 0)
            return true;
    return false;
}

/* ---- hand-built kernels, each built twice (before / after) ---- */

typedef Kernel *Builder(Arena *a, Stmt **loop);

/* y[i] = x[i]*2 + 1 over i in lo..hi (hi < 0: n*-hi) */
static Kernel *affine_over(Arena *a, Stmt **loop, int lo, int hi)
{
    Kernel *k = kernel_new(a, "k_affine", NULL);
    long fixed = hi < 0 ? 0 : hi, per_n = hi < 0 ? -hi : 0;
    int y = kernel_buf(a, k, "y", true, fixed, per_n), x = kernel_buf(a, k, "x", false, fixed, per_n);
    int i = kernel_var(a, k, "i", T_I32);
    Expr *end = hi < 0 ? ex_bin(a, X_MUL, ex_batch(a), ex_int(a, -hi)) : ex_int(a, hi);
    Stmt *f = st_for(a, i, ex_int(a, lo), end);
    Expr *v = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_load(a, x, ex_var(a, k, i)), ex_flt(a, 2.0f)), ex_flt(a, 1.0f));
    st_append(a, f, st_store(a, y, ex_var(a, k, i), v, false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

static Kernel *affine13(Arena *a, Stmt **loop) { return affine_over(a, loop, 0, 13); }
static Kernel *affine_n10(Arena *a, Stmt **loop) { return affine_over(a, loop, 0, -10); }
static Kernel *affine_n16(Arena *a, Stmt **loop) { return affine_over(a, loop, 0, -16); }
static Kernel *affine_from3(Arena *a, Stmt **loop) { return affine_over(a, loop, 3, 22); }

/* y[i] = relu(x[i]) as the lowering writes it: v = x[i]; v < 0 ? 0 : v;
 * and dx[i] = y[i] <= 0 ? 0 : dy[i]-like selects that have no min/max form */
static Kernel *relu_flat(Arena *a, Stmt **loop)
{
    Kernel *k = kernel_new(a, "k_relu", NULL);
    int y = kernel_buf(a, k, "y", true, 0, 37), x = kernel_buf(a, k, "x", false, 0, 37);
    int i = kernel_var(a, k, "i", T_I32), v = kernel_var(a, k, "v", T_F32);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, 37)));
    st_append(a, f, st_decl(a, v, ex_load(a, x, ex_var(a, k, i))));
    Expr *vv = ex_var(a, k, v), *zero = ex_flt(a, 0.0f);
    st_append(a, f, st_store(a, y, ex_var(a, k, i), ex_select(a, ex_bin(a, X_LT, vv, zero), zero, vv), false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

/* min(x[i], 6) through the other select pattern, plus a scalar broadcast:
 * y[c*S + s] = (x < b[c] ? x : b[c]) * w[c] over c (indep), s */
static Kernel *chan_min(Arena *a, Stmt **loop)
{
    enum { C = 3, S = 20 };
    Kernel *k = kernel_new(a, "k_chan", NULL);
    int y = kernel_buf(a, k, "y", true, C * S, 0), x = kernel_buf(a, k, "x", false, C * S, 0);
    int b = kernel_buf(a, k, "b", false, C, 0), w = kernel_buf(a, k, "w", false, C, 0);
    int c = kernel_var(a, k, "c", T_I32), s = kernel_var(a, k, "s", T_I32), base = kernel_var(a, k, "base", T_I32);
    Stmt *fc = st_for(a, c, ex_int(a, 0), ex_int(a, C));
    fc->indep = true;
    st_append(a, fc, st_decl(a, base, ex_bin(a, X_MUL, ex_var(a, k, c), ex_int(a, S))));
    Stmt *fs = st_for(a, s, ex_int(a, 0), ex_int(a, S));
    Expr *idx = ex_bin(a, X_ADD, ex_var(a, k, base), ex_var(a, k, s));
    Expr *xv = ex_load(a, x, idx), *bv = ex_load(a, b, ex_var(a, k, c));
    Expr *m = ex_select(a, ex_bin(a, X_LT, xv, bv), xv, bv);
    st_append(a, fs, st_store(a, y, idx, ex_bin(a, X_MUL, m, ex_load(a, w, ex_var(a, k, c))), false));
    st_append(a, fc, fs);
    st_append(a, k->body, fc);
    *loop = fs;
    return k;
}

/* a pooling window: y[o] = max over t in 0..3 of x[o + t] (stride 1), in a
 * running local; the window loop is a reduction, the output loop is not */
static Kernel *window(Arena *a, Stmt **loop)
{
    enum { O = 21 };
    Kernel *k = kernel_new(a, "k_window", NULL);
    int y = kernel_buf(a, k, "y", true, 0, O), x = kernel_buf(a, k, "x", false, 0, O + 2);
    int nb = kernel_var(a, k, "nb", T_I32), o = kernel_var(a, k, "o", T_I32), t = kernel_var(a, k, "t", T_I32);
    int xb = kernel_var(a, k, "xb", T_I32), m = kernel_var(a, k, "m", T_F32), v = kernel_var(a, k, "v", T_F32);
    Stmt *fn = st_for(a, nb, ex_int(a, 0), ex_batch(a));
    Stmt *fo = st_for(a, o, ex_int(a, 0), ex_int(a, O));
    fo->indep = true;
    st_append(a, fo, st_decl(a, xb, ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, nb), ex_int(a, O + 2)), ex_var(a, k, o))));
    st_append(a, fo, st_decl(a, m, ex_load(a, x, ex_var(a, k, xb))));
    Stmt *ft = st_for(a, t, ex_int(a, 1), ex_int(a, 3));
    st_append(a, ft, st_decl(a, v, ex_load(a, x, ex_bin(a, X_ADD, ex_var(a, k, xb), ex_var(a, k, t)))));
    Expr *mv = ex_var(a, k, m), *vv = ex_var(a, k, v);
    st_append(a, ft, st_assign(a, m, ex_select(a, ex_bin(a, X_LT, mv, vv), vv, mv)));
    st_append(a, fo, ft);
    Expr *yi = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, nb), ex_int(a, O)), ex_var(a, k, o));
    st_append(a, fo, st_store(a, y, yi, ex_bin(a, X_ADD, ex_var(a, k, m), ex_flt(a, 0.5f)), false));
    st_append(a, fn, fo);
    st_append(a, k->body, fn);
    *loop = fo;
    return k;
}

/* dx[i] = y[i] <= 0 ? 0 : dy[i] (relu's gradient), and with `guarded`
 * dx[i] = y[i] < 0 ? dy[i] : 0 with dy read only in an arm and smaller
 * than dx */
static Kernel *select_over(Arena *a, Stmt **loop, bool guarded)
{
    Kernel *k = kernel_new(a, guarded ? "k_guard" : "k_relu_dx", NULL);
    int dx = kernel_buf(a, k, "dx", true, 0, 19), y = kernel_buf(a, k, "y", false, 0, 19);
    int dy = kernel_buf(a, k, "dy", false, 0, guarded ? 18 : 19);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, guarded ? 18 : 19)));
    Expr *iv = ex_var(a, k, i), *zero = ex_flt(a, 0.0f);
    Expr *c = ex_bin(a, guarded ? X_LT : X_LE, ex_load(a, y, iv), zero);
    Expr *v = guarded ? ex_select(a, c, ex_load(a, dy, iv), zero) : ex_select(a, c, zero, ex_load(a, dy, iv));
    st_append(a, f, st_store(a, dx, iv, v, false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

static Kernel *relu_dx(Arena *a, Stmt **loop) { return select_over(a, loop, false); }
static Kernel *guarded(Arena *a, Stmt **loop) { return select_over(a, loop, true); }

/* hard_sigmoid's gradient: -3 < x && x < 3 ? dy/6 : 0 */
static Kernel *inside(Arena *a, Stmt **loop)
{
    Kernel *k = kernel_new(a, "k_inside", NULL);
    int dx = kernel_buf(a, k, "dx", true, 0, 11), x = kernel_buf(a, k, "x", false, 0, 11);
    int dy = kernel_buf(a, k, "dy", false, 0, 11);
    int i = kernel_var(a, k, "i", T_I32), v = kernel_var(a, k, "v", T_F32);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, 11)));
    f->indep = true;
    Expr *iv = ex_var(a, k, i);
    st_append(a, f, st_decl(a, v, ex_bin(a, X_MUL, ex_load(a, x, iv), ex_flt(a, 2.0f))));
    Expr *vv = ex_var(a, k, v);
    Expr *in = ex_bin(a, X_AND, ex_bin(a, X_LT, ex_flt(a, -3.0f), vv), ex_bin(a, X_LT, vv, ex_flt(a, 3.0f)));
    Expr *val = ex_select(a, ex_un(a, X_NOT, in), ex_flt(a, 0.0f), ex_bin(a, X_MUL, ex_load(a, dy, iv), ex_flt(a, 1.0f / 6.0f)));
    st_append(a, f, st_store(a, dx, iv, val, false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

/* loops that must stay scalar */
static Kernel *strided(Arena *a, Stmt **loop)  /* y[i] = x[2*i] */
{
    Kernel *k = kernel_new(a, "k_strided", NULL);
    int y = kernel_buf(a, k, "y", true, 16, 0), x = kernel_buf(a, k, "x", false, 32, 0);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_int(a, 16));
    f->indep = true;
    st_append(a, f, st_store(a, y, ex_var(a, k, i), ex_load(a, x, ex_bin(a, X_MUL, ex_var(a, k, i), ex_int(a, 2))), false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

static Kernel *recurrence(Arena *a, Stmt **loop)  /* y[i] = y[i-1] + x[i] */
{
    Kernel *k = kernel_new(a, "k_scan", NULL);
    int y = kernel_buf(a, k, "y", true, 32, 0), x = kernel_buf(a, k, "x", false, 32, 0);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *f = st_for(a, i, ex_int(a, 1), ex_int(a, 32));
    Expr *prev = ex_load(a, y, ex_bin(a, X_SUB, ex_var(a, k, i), ex_int(a, 1)));
    st_append(a, f, st_store(a, y, ex_var(a, k, i), ex_bin(a, X_ADD, prev, ex_load(a, x, ex_var(a, k, i))), false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

static Kernel *sum_into(Arena *a, Stmt **loop)  /* s = s + x[i]; y[0] = s */
{
    Kernel *k = kernel_new(a, "k_sum", NULL);
    int y = kernel_buf(a, k, "y", true, 1, 0), x = kernel_buf(a, k, "x", false, 40, 0);
    int i = kernel_var(a, k, "i", T_I32), s = kernel_var(a, k, "s", T_F32);
    st_append(a, k->body, st_decl(a, s, ex_flt(a, 0.0f)));
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_int(a, 40));
    st_append(a, f, st_assign(a, s, ex_bin(a, X_ADD, ex_var(a, k, s), ex_load(a, x, ex_var(a, k, i)))));
    st_append(a, k->body, f);
    st_append(a, k->body, st_store(a, y, ex_int(a, 0), ex_var(a, k, s), false));
    *loop = f;
    return k;
}

static Kernel *with_exp(Arena *a, Stmt **loop)  /* y[i] = exp(x[i]) */
{
    Kernel *k = kernel_new(a, "k_exp", NULL);
    int y = kernel_buf(a, k, "y", true, 40, 0), x = kernel_buf(a, k, "x", false, 40, 0);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_int(a, 40));
    f->indep = true;
    st_append(a, f, st_store(a, y, ex_var(a, k, i), ex_un(a, X_EXP, ex_load(a, x, ex_var(a, k, i))), false));
    st_append(a, k->body, f);
    *loop = f;
    return k;
}

/* ---- split ---- */

static void check_split(Builder *build, int factor, const char *outer, const char *tail, int n)
{
    Arena *a = arena_new();
    Stmt *l0, *l1;
    Kernel *before = build(a, &l0), *after = build(a, &l1);
    LoopSplit sp;
    assert_true(loop_split(a, after, l1, factor, &sp));
    expect_verified(after);
    expect_text(after, outer, true);
    if (tail)
        expect_text(after, tail, true);
    else
        assert_null(sp.tail);
    assert_int_equal(sp.inner->hi->ival, factor);
    expect_same_results(before, after, n, false);
    arena_free(a);
}

static void test_split(void **state)
{
    (void)state;
    check_split(affine13, 4, "for i_o in 0..3\n", "for i in 12..13\n", 1);
    check_split(affine_n10, 4, "for i_o in 0..n*10/4\n", "for i in n*10/4*4..n*10\n", 3);
    check_split(affine_n10, 4, "y[i_o*4 + i_i] = x[i_o*4 + i_i]", "for i in n*10/4*4..n*10\n", 5);
    check_split(affine_n16, 8, "for i_o in 0..n*2\n", NULL, 3);
    check_split(affine_from3, 5, "y[3 + i_o*5 + i_i]", "for i in 18..22\n", 1);
    check_split(window, 4, "for o_o in 0..5\n", "for o in 20..21\n", 2);
}

static void test_split_refuses(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k_bound", NULL);
    int y = kernel_buf(a, k, "y", true, 8, 0), x = kernel_buf(a, k, "x", false, 8, 0);
    int i = kernel_var(a, k, "i", T_I32), m = kernel_var(a, k, "m", T_I32);
    /* a bound read from memory, and one the body changes */
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_un(a, X_F2I, ex_load(a, x, ex_int(a, 0))));
    st_append(a, f, st_store(a, y, ex_var(a, k, i), ex_flt(a, 1.0f), false));
    st_append(a, k->body, f);
    st_append(a, k->body, st_decl(a, m, ex_int(a, 8)));
    Stmt *g = st_for(a, i, ex_int(a, 0), ex_var(a, k, m));
    st_append(a, g, st_assign(a, m, ex_int(a, 4)));
    st_append(a, k->body, g);
    expect_verified(k);
    char *before = print_kernel(k);
    LoopSplit sp;
    assert_false(loop_split(a, k, f, 4, &sp));
    assert_false(loop_split(a, k, g, 4, &sp));
    char *after = print_kernel(k);
    assert_string_equal(before, after);
    free(before);
    free(after);
    arena_free(a);
}

/* ---- unroll ---- */

static void check_unroll(Builder *build, int factor, const char *has, const char *hasnt, int n)
{
    Arena *a = arena_new();
    Stmt *l0, *l1;
    Kernel *before = build(a, &l0), *after = build(a, &l1);
    assert_true(loop_unroll(a, after, l1, factor));
    expect_verified(after);
    if (has)
        expect_text(after, has, true);
    if (hasnt)
        expect_text(after, hasnt, false);
    expect_same_results(before, after, n, false);
    arena_free(a);
}

static void test_unroll(void **state)
{
    (void)state;
    /* fully: no loop left */
    check_unroll(affine13, 16, "y[12] = x[12]*2.0 + 1.0\n", "for i", 1);
    /* by a factor: split, then the inner loop's copies */
    check_unroll(affine_n10, 4, "y[i_o*4 + 3] = x[i_o*4 + 3]*2.0 + 1.0\n", "for i_i", 3);
    check_unroll(affine_from3, 4, "for i in 19..22\n", NULL, 1);
    /* a window with locals: each copy declares its own */
    Arena *a = arena_new();
    Stmt *l0, *l1;
    Kernel *before = window(a, &l0), *after = window(a, &l1);
    Stmt *t = l1->body[2];
    assert_int_equal(t->k, S_FOR);
    assert_true(loop_unroll(a, after, t, 4));
    expect_verified(after);
    expect_text(after, "float v_1 = x[xb + 2]\n", true);
    expect_same_results(before, after, 3, false);
    /* the pass: the short window loop goes, the long ones stay */
    Kernel *p = window(a, &l1);
    loop_unroll_pass(a, p, target_reference());
    expect_verified(p);
    expect_text(p, "for t", false);
    expect_text(p, "for o in 0..21\n", true);
    expect_same_results(before, p, 2, false);
    arena_free(a);
}

/* ---- vectorise ---- */

static void check_vec(Builder *build, const Target *t, const char *has, const char *hasnt, int n)
{
    Arena *a = arena_new();
    Stmt *l0, *l1;
    Kernel *before = build(a, &l0), *after = build(a, &l1);
    loop_vectorize(a, after, t);
    expect_verified(after);
    if (has)
        expect_text(after, has, true);
    if (hasnt)
        expect_text(after, hasnt, false);
    expect_same_results(before, after, n, true);
    /* then the rest of the schedule, as program.c runs it */
    loop_unroll_pass(a, after, t);
    expect_verified(after);
    loop_parallelize(after, t);
    expect_verified(after);
    expect_same_results(before, after, n, true);
    arena_free(a);
}

static void test_vectorize(void **state)
{
    (void)state;
    const Target *t = target_reference(); /* 8 lanes */
    Target t4 = *t, t16 = *t;
    t4.vlen = 4;
    t16.vlen = 16;
    /* relu: proven independent, select -> max, n-dependent tail */
    check_vec(relu_flat, t, "y[i_o*8 ..+8] = max(bcast(0.0), v_1)\n", NULL, 3);
    check_vec(relu_flat, t, "for i in n*37/8*8..n*37\n", NULL, 1);
    check_vec(relu_flat, &t4, "vec v_1 = x[i_o*4 ..+4]\n", NULL, 2);
    check_vec(relu_flat, &t16, "..+16]", NULL, 2);
    /* a constant trip count divisible by the width: no tail */
    check_vec(affine_n16, t, "y[i_o*8 ..+8] = x[i_o*8 ..+8]*bcast(2.0) + bcast(1.0)\n", "for i in", 2);
    /* broadcast scalars, min, an inner loop inside an indep one */
    check_vec(chan_min, t, "y[base + s_o*8 ..+8] = min(x[base + s_o*8 ..+8], bcast(b[c]))*bcast(w[c])\n",
              NULL, 1);
    check_vec(chan_min, &t16, "for s in 16..20\n", NULL, 1);
    /* an outer loop over a serial window, its running maximum a vector */
    check_vec(window, t, "m_1 = max(v_1, m_1)\n", NULL, 3);
    check_vec(window, t, "vec v_1 = x[xb + t ..+8]\n", NULL, 2);
    /* lane-wise selects; && and ! as selects of selects */
    check_vec(relu_dx, t, "dx[i_o*8 ..+8] = select(y[i_o*8 ..+8] <= bcast(0.0), bcast(0.0), dy[i_o*8 ..+8])\n",
              NULL, 3);
    check_vec(inside, t, "select(bcast(-3.0) < v_1, select(v_1 < bcast(3.0), dy[i_o*8 ..+8]*bcast(", NULL, 3);
    /* a load only an arm makes, from a smaller buffer: a select evaluates
     * both arms (loop.h), so it is in bounds in every lane */
    check_vec(guarded, t, "dx[i_o*8 ..+8] = select(y[i_o*8 ..+8] < bcast(0.0), dy[i_o*8 ..+8], bcast(0.0))\n",
              NULL, 2);
    /* scalar: stride 2, a recurrence, a sum, exp */
    check_vec(strided, t, NULL, "vec", 1);
    check_vec(recurrence, t, NULL, "vec", 1);
    check_vec(sum_into, t, NULL, "vec", 1);
    check_vec(with_exp, t, NULL, "vec", 1);
    /* no vectors on the target: nothing */
    Target t1 = *t;
    t1.vlen = 1;
    check_vec(relu_flat, &t1, NULL, "vec", 2);
}

/* A kernel that already holds vector code is left as it is. */
static void test_vectorize_skips_vector_code(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k_hand", NULL);
    kernel_vectors(k, 8);
    int y = kernel_buf(a, k, "y", true, 64, 0), x = kernel_buf(a, k, "x", false, 64, 0);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_int(a, 8));
    f->indep = true;
    Expr *at = ex_bin(a, X_MUL, ex_var(a, k, i), ex_int(a, 8));
    st_append(a, f, st_store(a, y, at, ex_vload(a, x, at), false));
    st_append(a, k->body, f);
    char *before = print_kernel(k);
    loop_vectorize(a, k, target_reference());
    char *after = print_kernel(k);
    assert_string_equal(before, after);
    free(before);
    free(after);
    arena_free(a);
}

/* ---- every kernel of the op nets and LeNet ---- */

static bool reads_index(const Expr *e)
{
    return e && (e->k == X_F2I || reads_index(e->a) || reads_index(e->b) || reads_index(e->c));
}

static bool stmt_reads_index(const Stmt *s)
{
    if (reads_index(s->lo) || reads_index(s->hi) || reads_index(s->cond) || reads_index(s->idx) ||
        reads_index(s->val))
        return true;
    for (int i = 0; i < s->nbody; i++)
        if (stmt_reads_index(s->body[i]))
            return true;
    for (int i = 0; i < s->nels; i++)
        if (stmt_reads_index(s->els[i]))
            return true;
    return false;
}

/* for nb in 0..n (priv col): col[i] = x[nb*8 + i]; y[nb*8 + i] = col[7 - i]*2,
 * after a statement that zeroes col (and, with read_after, a loop that
 * reads col after it) */
static Kernel *workspace_kernel(Arena *a, bool read_after, long col_size)
{
    Kernel *k = kernel_new(a, "k_ws", NULL);
    int y = kernel_buf(a, k, "y", true, 0, 8), x = kernel_buf(a, k, "x", false, 0, 8);
    int z = kernel_buf(a, k, "z", true, 1, 0);
    int col = kernel_scratch(a, k, "col", col_size, 0);
    int i0 = kernel_var(a, k, "i", T_I32);
    Stmt *zero = st_for(a, i0, ex_int(a, 0), ex_int(a, 8));
    st_append(a, zero, st_store(a, col, ex_var(a, k, i0), ex_flt(a, 0.0f), false));
    st_append(a, k->body, zero);
    int nb = kernel_var(a, k, "nb", T_I32), i = kernel_var(a, k, "i", T_I32), j = kernel_var(a, k, "j", T_I32);
    Stmt *f = st_for(a, nb, ex_int(a, 0), ex_batch(a));
    static const int priv[1] = {3};
    f->priv = priv;
    f->npriv = 1;
    Stmt *fi = st_for(a, i, ex_int(a, 0), ex_int(a, 8));
    Expr *base = ex_bin(a, X_MUL, ex_var(a, k, nb), ex_int(a, 8));
    st_append(a, fi, st_store(a, col, ex_var(a, k, i), ex_load(a, x, ex_bin(a, X_ADD, base, ex_var(a, k, i))), false));
    st_append(a, f, fi);
    Stmt *fj = st_for(a, j, ex_int(a, 0), ex_int(a, 8));
    Expr *v = ex_bin(a, X_MUL, ex_load(a, col, ex_bin(a, X_SUB, ex_int(a, 7), ex_var(a, k, j))), ex_flt(a, 2.0f));
    st_append(a, fj, st_store(a, y, ex_bin(a, X_ADD, base, ex_var(a, k, j)), v, false));
    st_append(a, f, fj);
    st_append(a, k->body, f);
    if (read_after)
        st_append(a, k->body, st_store(a, z, ex_int(a, 0), ex_load(a, col, ex_int(a, 0)), false));
    assert_int_equal(col, 3);
    return k;
}

/* acc[j] = 0; for nb in 0..n (sum acc): acc[j] += x[nb*4 + j]; y[j] = acc[j] */
static Kernel *accumulator_kernel(Arena *a)
{
    Kernel *k = kernel_new(a, "k_acc", NULL);
    int y = kernel_buf(a, k, "y", true, 4, 0), x = kernel_buf(a, k, "x", false, 0, 4);
    int acc = kernel_scratch(a, k, "acc", 4, 0);
    int j0 = kernel_var(a, k, "j", T_I32), nb = kernel_var(a, k, "nb", T_I32), j = kernel_var(a, k, "j", T_I32);
    int j2 = kernel_var(a, k, "j", T_I32);
    Stmt *zero = st_for(a, j0, ex_int(a, 0), ex_int(a, 4));
    st_append(a, zero, st_store(a, acc, ex_var(a, k, j0), ex_flt(a, 0.0f), false));
    st_append(a, k->body, zero);
    Stmt *f = st_for(a, nb, ex_int(a, 0), ex_batch(a));
    static const int sum[1] = {2};
    f->sum = sum;
    f->nsum = 1;
    Stmt *fj = st_for(a, j, ex_int(a, 0), ex_int(a, 4));
    Expr *xi = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, nb), ex_int(a, 4)), ex_var(a, k, j));
    st_append(a, fj, st_store(a, acc, ex_var(a, k, j), ex_load(a, x, xi), true));
    st_append(a, f, fj);
    st_append(a, k->body, f);
    Stmt *out = st_for(a, j2, ex_int(a, 0), ex_int(a, 4));
    st_append(a, out, st_store(a, y, ex_var(a, k, j2), ex_load(a, acc, ex_var(a, k, j2)), false));
    st_append(a, k->body, out);
    assert_int_equal(acc, 2);
    return k;
}

static void test_privatize(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Target t2 = *target_reference();
    t2.cores = 2;
    Kernel *before = workspace_kernel(a, false, 8), *after = workspace_kernel(a, false, 8);
    loop_privatize(a, after, &t2);
    expect_verified(after);
    assert_int_equal(after->buf[3].size_fixed, 16);
    expect_text(after, "for c in 0..2", true);
    expect_text(after, "col[c*8 + i_1]", true);
    expect_text(after, "col[cp*8 + i]", true); /* the zeroing, per copy */
    for (int n = 1; n <= 5; n++)
        expect_same_results(before, after, n, false);
    loop_parallelize(after, &t2);
    expect_verified(after);

    /* refused: one core; col read after the loop; copies too large */
    Target t1 = t2;
    t1.cores = 1;
    Kernel *one = workspace_kernel(a, false, 8);
    loop_privatize(a, one, &t1);
    assert_int_equal(one->buf[3].size_fixed, 8);
    Kernel *read = workspace_kernel(a, true, 8);
    loop_privatize(a, read, &t2);
    assert_int_equal(read->buf[3].size_fixed, 8);
    expect_text(read, "for c in", false);
    /* an accumulator: each chunk sums its samples, the copies are added
     * where it is read */
    Kernel *sb = accumulator_kernel(a), *sa = accumulator_kernel(a);
    assert_true(loop_privatize(a, sa, &t2));
    expect_verified(sa);
    assert_int_equal(sa->buf[2].size_fixed, 8);
    expect_text(sa, "y[j_2] = acc[j_2] + acc[4 + j_2]", true);
    for (int n = 1; n <= 5; n++)
        expect_results(sb, sa, n, false, 1e-6);

    Kernel *big = workspace_kernel(a, false, t2.l2 / 4);
    loop_privatize(a, big, &t2);
    assert_int_equal(big->buf[3].size_fixed, t2.l2 / 4);
    arena_free(a);
}

static int kernels_checked, kernels_vectorized, kernels_privatized;

static void check_net(const char *path, const Target *t)
{
    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load(path, &d);
    if (!m)
        fail_msg("%s does not load", path);
    if (m->g->loss >= 0)
        autodiff(m, m->g->loss, -1);
    Sched *s = sched_choose(m);
    Arena *a = arena_new();
    for (int id = 0; id < m->g->nnode; id++) {
        if (op_flags(graph_node(m->g, id)->op) & OPF_SOURCE)
            continue;
        for (int training = 0; training < 2; training++) {
            Kernel *before = lower_node_mode(a, m, s, t, id, training);
            Kernel *after = lower_node_mode(a, m, s, t, id, training);
            /* class indices read as floats would index out of bounds */
            if (stmt_reads_index(before->body))
                continue;
            bool had_vectors = before->vlen != 0;
            loop_vectorize(a, after, t);
            expect_verified(after);
            loop_unroll_pass(a, after, t);
            expect_verified(after);
            bool sums = has_sum_loop(after);
            bool privatized = loop_privatize(a, after, t);
            expect_verified(after);
            kernels_privatized += privatized;
            loop_parallelize(after, t);
            expect_verified(after);
            expect_results(before, after, 3, false, privatized && sums ? 1e-5 : 0);
            kernels_checked++;
            kernels_vectorized += !had_vectors && after->vlen != 0;
        }
    }
    arena_free(a);
    model_free(m);
    diag_free(&d);
}

static void test_every_kernel(void **state)
{
    (void)state;
    Target t4 = *target_reference();
    t4.vlen = 4;
    DIR *dir = opendir("tests/ops");
    assert_non_null(dir);
    char **names = NULL;
    int nnames = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".net")) {
            names = realloc(names, sizeof *names * (size_t)(nnames + 1));
            names[nnames++] = strdup(e->d_name);
        }
    }
    closedir(dir);
    for (int i = 0; i < nnames; i++) {
        char path[512];
        snprintf(path, sizeof path, "tests/ops/%s", names[i]);
        check_net(path, i % 2 ? &t4 : target_reference());
        free(names[i]);
    }
    free(names);
    check_net("examples/lenet.net", target_reference());
    printf("%d kernels checked, %d newly vectorised, %d privatised\n", kernels_checked, kernels_vectorized,
           kernels_privatized);
    assert_true(kernels_privatized >= 10);
    /* the pass must reach a good part of them */
    assert_true(kernels_checked > 100);
    assert_true(kernels_vectorized > 100 && kernels_vectorized * 5 > kernels_checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_refuses),
        cmocka_unit_test(test_unroll),
        cmocka_unit_test(test_vectorize),
        cmocka_unit_test(test_vectorize_skips_vector_code),
        cmocka_unit_test(test_privatize),
        cmocka_unit_test(test_every_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
