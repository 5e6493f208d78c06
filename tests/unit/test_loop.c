/* test_loop.c - the loop IR: builder names, folding, verifier, printer. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loop.h"
#include "loop_eval.h"

/* ---- helpers ---- */

/* Everything a test prints into a FILE, as a string to free. */
typedef struct {
    char *s;
    size_t len;
    FILE *f;
} Capture;

static void cap_open(Capture *c)
{
    c->s = NULL;
    c->len = 0;
    c->f = open_memstream(&c->s, &c->len);
    assert_non_null(c->f);
}

static char *cap_close(Capture *c)
{
    fclose(c->f);
    return c->s;
}

/* Runs the verifier; returns its message (empty when it accepts). */
static char *verify_msg(const Kernel *k, bool *ok)
{
    Capture c;
    cap_open(&c);
    *ok = kernel_verify(k, c.f);
    return cap_close(&c);
}

static void expect_reject(const Kernel *k, const char *needle)
{
    bool ok;
    char *msg = verify_msg(k, &ok);
    if (ok || !strstr(msg, needle))
        fail_msg("expected rejection mentioning '%s', got %s: %s", needle, ok ? "accepted" : "rejected", msg);
    free(msg);
}

static void expect_accept(const Kernel *k)
{
    bool ok;
    char *msg = verify_msg(k, &ok);
    if (!ok)
        fail_msg("verifier rejected a good kernel: %s", msg);
    free(msg);
}

static char *print_kernel(const Kernel *k)
{
    Capture c;
    cap_open(&c);
    kernel_print(c.f, k);
    return cap_close(&c);
}

static bool same_bits(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

/* ---- builder ---- */

static void test_names_unique(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k1_conv", "conv c1");
    int x = kernel_buf(a, k, "x", false, 0, 784);
    int x2 = kernel_buf(a, k, "x", false, 10, 0);
    int oc = kernel_var(a, k, "oc", T_I32);
    int oc1 = kernel_var(a, k, "oc", T_I32);
    int oc2 = kernel_var(a, k, "oc", T_I32);
    int vx = kernel_var(a, k, "x", T_F32);
    int vn = kernel_var(a, k, "n", T_I32);
    int kw = kernel_var(a, k, "for", T_I32);
    int dot = kernel_var(a, k, "c1.dx", T_F32);
    int dig = kernel_var(a, k, "2d", T_I32);
    int helper = kernel_var(a, k, "netc_fmax", T_F32);
    assert_string_equal(k->buf[x].name, "x");
    assert_string_equal(k->buf[x2].name, "x_1");
    assert_string_equal(k->var[oc].name, "oc");
    assert_string_equal(k->var[oc1].name, "oc_1");
    assert_string_equal(k->var[oc2].name, "oc_2");
    assert_string_equal(k->var[vx].name, "x_2");
    assert_string_equal(k->var[vn].name, "n_1");
    assert_string_equal(k->var[kw].name, "for_1");
    assert_string_equal(k->var[dot].name, "c1_dx");
    assert_string_equal(k->var[dig].name, "v2d");
    assert_string_equal(k->var[helper].name, "vnetc_fmax");
    assert_int_equal(k->var[vx].t, T_F32);
    assert_true(k->buf[x].size_per_n == 784 && k->buf[x2].size_fixed == 10);
    /* many variables: the arrays grow */
    for (int i = 0; i < 100; i++)
        kernel_var(a, k, "t", T_I32);
    assert_string_equal(k->var[k->nvar - 1].name, "t_99");
    assert_string_equal(k->var[oc].name, "oc");
    arena_free(a);
}

static void test_fold_int(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k", NULL);
    int iv = kernel_var(a, k, "i", T_I32);
    Expr *i = ex_var(a, k, iv);

    Expr *e = ex_bin(a, X_MUL, ex_int(a, 4), ex_int(a, 7));
    assert_int_equal(e->k, X_INT);
    assert_int_equal(e->ival, 28);
    assert_int_equal(ex_bin(a, X_SUB, ex_int(a, 3), ex_int(a, 10))->ival, -7);
    assert_int_equal(ex_bin(a, X_DIV, ex_int(a, -7), ex_int(a, 2))->ival, -3); /* truncates */
    assert_int_equal(ex_bin(a, X_MOD, ex_int(a, -7), ex_int(a, 2))->ival, -1);
    assert_int_equal(ex_bin(a, X_MIN, ex_int(a, 3), ex_int(a, -2))->ival, -2);
    assert_int_equal(ex_bin(a, X_MAX, ex_int(a, 3), ex_int(a, -2))->ival, 3);
    assert_int_equal(ex_bin(a, X_LT, ex_int(a, 3), ex_int(a, 4))->ival, 1);
    assert_int_equal(ex_bin(a, X_EQ, ex_int(a, 3), ex_int(a, 4))->ival, 0);
    assert_int_equal(ex_bin(a, X_OR, ex_int(a, 0), ex_int(a, 1))->ival, 1);

    /* identities */
    assert_ptr_equal(ex_bin(a, X_ADD, i, ex_int(a, 0)), i);
    assert_ptr_equal(ex_bin(a, X_ADD, ex_int(a, 0), i), i);
    assert_ptr_equal(ex_bin(a, X_SUB, i, ex_int(a, 0)), i);
    assert_ptr_equal(ex_bin(a, X_MUL, ex_int(a, 1), i), i);
    assert_ptr_equal(ex_bin(a, X_MUL, i, ex_int(a, 1)), i);
    assert_ptr_equal(ex_bin(a, X_DIV, i, ex_int(a, 1)), i);
    e = ex_bin(a, X_MUL, i, ex_int(a, 0));
    assert_true(e->k == X_INT && e->ival == 0);
    e = ex_bin(a, X_MOD, i, ex_int(a, 1));
    assert_true(e->k == X_INT && e->ival == 0);
    Expr *c = ex_bin(a, X_LT, i, ex_int(a, 5));
    assert_ptr_equal(ex_bin(a, X_AND, ex_int(a, 1), c), c);
    assert_int_equal(ex_bin(a, X_AND, c, ex_int(a, 0))->ival, 0);
    assert_ptr_equal(ex_bin(a, X_OR, c, ex_int(a, 0)), c);
    assert_int_equal(ex_bin(a, X_OR, ex_int(a, 1), c)->ival, 1);
    assert_int_equal(c->t, T_I32);

    /* (i + 2) + 3 -> i + 5 */
    e = ex_bin(a, X_ADD, ex_bin(a, X_ADD, i, ex_int(a, 2)), ex_int(a, 3));
    assert_true(e->k == X_ADD && e->a == i && e->b->k == X_INT && e->b->ival == 5);
    /* (i + 2) - 2 is left alone: only additions of constants combine */
    e = ex_bin(a, X_SUB, ex_bin(a, X_ADD, i, ex_int(a, 2)), ex_int(a, 2));
    assert_int_equal(e->k, X_SUB);

    /* undefined results stay in the code */
    assert_int_equal(ex_bin(a, X_DIV, ex_int(a, 1), ex_int(a, 0))->k, X_DIV);
    assert_int_equal(ex_bin(a, X_MOD, ex_int(a, 1), ex_int(a, 0))->k, X_MOD);
    assert_int_equal(ex_bin(a, X_ADD, ex_int(a, 2147483647), ex_int(a, 1))->k, X_ADD);
    assert_int_equal(ex_bin(a, X_DIV, ex_int(a, -2147483647 - 1), ex_int(a, -1))->k, X_DIV);
    arena_free(a);
}

static void test_fold_float(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k", NULL);
    int xv = kernel_var(a, k, "x", T_F32);
    Expr *x = ex_var(a, k, xv);

    /* never x + 0.0 -> x (x = -0.0 gives +0.0), nor x*0.0 -> 0.0 (NaN, inf) */
    Expr *e = ex_bin(a, X_ADD, x, ex_flt(a, 0.0f));
    assert_int_equal(e->k, X_ADD);
    assert_int_equal(e->t, T_F32);
    assert_int_equal(ex_bin(a, X_MUL, x, ex_flt(a, 0.0f))->k, X_MUL);
    assert_int_equal(ex_bin(a, X_MUL, x, ex_flt(a, 1.0f))->k, X_MUL);
    /* nor reassociate */
    e = ex_bin(a, X_ADD, ex_bin(a, X_ADD, x, ex_flt(a, 1.0f)), ex_flt(a, 2.0f));
    assert_true(e->k == X_ADD && e->a->k == X_ADD);

    volatile float p = 0.1f, q = 0.2f, r = 3.0f;
    e = ex_bin(a, X_ADD, ex_flt(a, p), ex_flt(a, q));
    assert_true(e->k == X_FLT && same_bits(e->fval, p + q));
    e = ex_bin(a, X_DIV, ex_flt(a, p), ex_flt(a, r));
    assert_true(e->k == X_FLT && same_bits(e->fval, p / r));
    e = ex_bin(a, X_MUL, ex_flt(a, p), ex_flt(a, r));
    assert_true(e->k == X_FLT && same_bits(e->fval, p * r));
    e = ex_bin(a, X_SUB, ex_flt(a, p), ex_flt(a, r));
    assert_true(e->k == X_FLT && same_bits(e->fval, p - r));
    /* max(a, b) = a > b ? a : b, also for NaN and signed zeros */
    e = ex_bin(a, X_MAX, ex_flt(a, NAN), ex_flt(a, 1.0f));
    assert_true(e->k == X_FLT && e->fval == 1.0f);
    e = ex_bin(a, X_MAX, ex_flt(a, 1.0f), ex_flt(a, NAN));
    assert_true(e->k == X_FLT && isnan(e->fval));
    e = ex_bin(a, X_MAX, ex_flt(a, 0.0f), ex_flt(a, -0.0f));
    assert_true(same_bits(e->fval, -0.0f));
    e = ex_bin(a, X_MIN, ex_flt(a, -1.0f), ex_flt(a, 2.0f));
    assert_true(same_bits(e->fval, -1.0f));
    e = ex_bin(a, X_LE, ex_flt(a, 1.0f), ex_flt(a, 1.0f));
    assert_true(e->k == X_INT && e->t == T_I32 && e->ival == 1);
    e = ex_bin(a, X_EQ, ex_flt(a, NAN), ex_flt(a, NAN));
    assert_true(e->k == X_INT && e->ival == 0);
    arena_free(a);
}

static void test_fold_unary_select(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k", NULL);
    int xv = kernel_var(a, k, "x", T_F32);
    Expr *x = ex_var(a, k, xv);

    Expr *e = ex_un(a, X_NEG, ex_flt(a, 0.0f));
    assert_true(e->k == X_FLT && same_bits(e->fval, -0.0f));
    e = ex_un(a, X_I2F, ex_int(a, 16777217)); /* rounds like (float) */
    assert_true(e->k == X_FLT && e->fval == 16777216.0f);
    e = ex_un(a, X_F2I, ex_flt(a, -2.75f));
    assert_true(e->k == X_INT && e->ival == -2);
    assert_int_equal(ex_un(a, X_F2I, ex_flt(a, 3e9f))->k, X_F2I); /* out of range */
    assert_int_equal(ex_un(a, X_NOT, ex_int(a, 0))->ival, 1);
    e = ex_un(a, X_EXP, ex_flt(a, 1.0f)); /* libm is the target's */
    assert_true(e->k == X_EXP && e->t == T_F32);
    e = ex_un(a, X_NEG, x);
    assert_true(e->k == X_NEG && e->a == x);

    Expr *one = ex_flt(a, 1.0f);
    assert_ptr_equal(ex_select(a, ex_int(a, 1), x, one), x);
    assert_ptr_equal(ex_select(a, ex_int(a, 0), x, one), one);
    e = ex_select(a, ex_bin(a, X_LT, x, one), x, one);
    assert_true(e->k == X_SELECT && e->t == T_F32);
    arena_free(a);
}

/* ---- a well-formed kernel: s[b] = sum_j x[b, j] * w[0] + w[1] ---- */

typedef struct {
    Arena *a;
    Kernel *k;
    int s, x, w;      /* buffers */
    int b, j, acc;    /* variables */
    Stmt *forb, *forj;
} Rowsum;

static void rowsum(Rowsum *r)
{
    Arena *a = r->a = arena_new();
    Kernel *k = r->k = kernel_new(a, "k2_rowsum", "rowsum r [N, 16] -> [N, 1]");
    r->s = kernel_buf(a, k, "s", true, 0, 1);
    r->x = kernel_buf(a, k, "x", false, 0, 16);
    r->w = kernel_buf(a, k, "w", false, 2, 0);
    r->b = kernel_var(a, k, "b", T_I32);
    r->j = kernel_var(a, k, "j", T_I32);
    r->acc = kernel_var(a, k, "acc", T_F32);
    r->forb = st_for(a, r->b, ex_int(a, 0), ex_batch(a));
    st_append(a, k->body, r->forb);
    st_append(a, r->forb, st_decl(a, r->acc, ex_flt(a, 0.0f)));
    r->forj = st_for(a, r->j, ex_int(a, 0), ex_int(a, 16));
    st_append(a, r->forb, r->forj);
    Expr *idx = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, r->b), ex_int(a, 16)), ex_var(a, k, r->j));
    st_append(a, r->forj, st_assign(a, r->acc, ex_bin(a, X_ADD, ex_var(a, k, r->acc), ex_load(a, r->x, idx))));
    Expr *v = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, r->acc), ex_load(a, r->w, ex_int(a, 0))),
                     ex_load(a, r->w, ex_int(a, 1)));
    st_append(a, r->forb, st_store(a, r->s, ex_var(a, k, r->b), v, false));
}

static void test_verify_accepts(void **state)
{
    (void)state;
    Rowsum r;
    rowsum(&r);
    expect_accept(r.k);
    /* a local declared in two sibling scopes is two variables */
    Stmt *again = st_for(r.a, r.j, ex_int(r.a, 0), ex_int(r.a, 2));
    st_append(r.a, r.k->body, again);
    st_append(r.a, again, st_decl(r.a, r.acc, ex_flt(r.a, 1.0f)));
    expect_accept(r.k);
    arena_free(r.a);
}

/* Each case builds the good kernel, breaks one thing, and expects the
 * verifier to name it. */
static void test_verify_rejects(void **state)
{
    (void)state;
    Rowsum r;
    Arena *a;
    Kernel *k;
#define CASE(setup, needle)            \
    do {                               \
        rowsum(&r);                    \
        a = r.a;                       \
        k = r.k;                       \
        (void)a;                       \
        setup;                         \
        expect_reject(k, needle);      \
        arena_free(r.a);               \
    } while (0)

    /* int + float */
    CASE(st_append(a, r.forb, st_assign(a, r.acc, ex_bin(a, X_ADD, ex_var(a, k, r.acc), ex_var(a, k, r.b)))),
         "has type int, expected float");
    /* store of an int */
    CASE(st_append(a, r.forb, st_store(a, r.s, ex_int(a, 0), ex_var(a, k, r.b), false)),
         "stored value has type int");
    /* float index */
    CASE(st_append(a, r.forb, st_store(a, r.s, ex_flt(a, 0.0f), ex_flt(a, 1.0f), false)),
         "store index has type float");
    CASE(st_append(a, r.forb, st_store(a, r.s, ex_int(a, 0), ex_load(a, r.x, ex_flt(a, 1.0f)), false)),
         "has type float, expected int");
    /* hash of a float */
    CASE(st_append(a, r.forb, st_store(a, r.s, ex_bin(a, X_HASH, ex_int(a, 0), ex_flt(a, 1.0f)),
                                       ex_flt(a, 0.0f), false)),
         "has type float, expected int");
    /* read-only buffer */
    CASE(st_append(a, r.forb, st_store(a, r.x, ex_int(a, 0), ex_flt(a, 1.0f), false)),
         "store to read-only buffer 'x'");
    /* buffer out of range, in a load and in a store */
    CASE(st_append(a, r.forb, st_store(a, r.s, ex_int(a, 0), ex_load(a, 7, ex_int(a, 0)), false)),
         "buffer 7 out of range");
    CASE(st_append(a, r.forb, st_store(a, -1, ex_int(a, 0), ex_flt(a, 0.0f), false)),
         "buffer -1 out of range");
    /* loop variable assigned */
    CASE(st_append(a, r.forj, st_assign(a, r.b, ex_int(a, 0))), "loop variable 'b' is assigned");
    /* a loop variable used after its loop */
    CASE(st_append(a, k->body, st_store(a, r.s, ex_var(a, k, r.j), ex_flt(a, 0.0f), false)),
         "'j' used outside its scope");
    /* a local used after its block */
    CASE(st_append(a, k->body, st_store(a, r.s, ex_int(a, 0), ex_var(a, k, r.acc), false)),
         "'acc' used outside its scope");
    /* used before its declaration */
    CASE({
        int t = kernel_var(a, k, "t", T_F32);
        st_append(a, r.forb, st_assign(a, t, ex_flt(a, 1.0f)));
        st_append(a, r.forb, st_decl(a, t, ex_flt(a, 0.0f)));
    }, "'t' assigned outside its scope");
    /* declared twice while in scope */
    CASE(st_append(a, r.forj, st_decl(a, r.acc, ex_flt(a, 0.0f))), "'acc' declared again while in scope");
    /* a loop nested in a loop over the same variable */
    CASE(st_append(a, r.forj, st_for(a, r.j, ex_int(a, 0), ex_int(a, 1))), "'j' is already bound");
    /* a float loop variable, a float bound */
    CASE({
        int t = kernel_var(a, k, "t", T_F32);
        st_append(a, k->body, st_for(a, t, ex_int(a, 0), ex_int(a, 1)));
    }, "loop variable 't' is not an int");
    /* one variable both a loop variable and a local */
    CASE(st_append(a, k->body, st_for(a, r.acc, ex_int(a, 0), ex_int(a, 1))), "loop variable 'acc' is assigned");
    CASE({
        int t = kernel_var(a, k, "t", T_I32);
        st_append(a, k->body, st_for(a, t, ex_int(a, 0), ex_flt(a, 1.0f)));
    }, "loop end has type float");
    /* a float condition */
    CASE(st_append(a, r.forb, st_if(a, ex_flt(a, 1.0f))), "condition has type float");
    /* % on floats */
    CASE(st_append(a, r.forb, st_assign(a, r.acc, ex_bin(a, X_MOD, ex_var(a, k, r.acc), ex_flt(a, 2.0f)))),
         "expected int");
    /* exp of an int */
    CASE(st_append(a, r.forb, st_assign(a, r.acc, ex_un(a, X_EXP, ex_var(a, k, r.b)))), "expected float");
    /* a declaration without a value */
    CASE({
        int t = kernel_var(a, k, "t", T_F32);
        st_append(a, r.forb, st_decl(a, t, NULL));
    }, "value missing");
    /* variable out of range */
    CASE(st_append(a, r.forb, st_assign(a, 42, ex_flt(a, 0.0f))), "variable 42 out of range");
    /* a mislabelled node */
    CASE({
        Expr *e = ex_bin(a, X_LT, ex_var(a, k, r.b), ex_int(a, 3));
        e->t = T_F32;
        st_append(a, r.forb, st_if(a, e));
    }, "is marked float but computes int");
#undef CASE
}

static void test_verify_message(void **state)
{
    (void)state;
    Rowsum r;
    rowsum(&r);
    st_append(r.a, r.forj, st_store(r.a, r.x, ex_var(r.a, r.k, r.j), ex_flt(r.a, 0.5f), true));
    bool ok;
    char *msg = verify_msg(r.k, &ok);
    assert_false(ok);
    assert_string_equal(msg, "kernel k2_rowsum: store to read-only buffer 'x'\n"
                             "  in: x[j] += 0.5\n");
    free(msg);
    assert_false(kernel_verify(r.k, NULL)); /* no stream: just the answer */
    arena_free(r.a);
}

/* ---- printer ---- */

static void test_print_golden(void **state)
{
    (void)state;
    Rowsum r;
    rowsum(&r);
    char *s = print_kernel(r.k);
    assert_string_equal(s,
        "kernel k2_rowsum(n; s[w] 1*n, x 16*n, w 2)   // rowsum r [N, 16] -> [N, 1]\n"
        "  for b in 0..n\n"
        "    float acc = 0.0\n"
        "    for j in 0..16\n"
        "      acc = acc + x[b*16 + j]\n"
        "    s[b] = acc*w[0] + w[1]\n");
    free(s);
    arena_free(r.a);
}

/* Parentheses follow C precedence; unary minus never doubles into "--". */
static void test_print_expressions(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k9_misc", NULL);
    int y = kernel_buf(a, k, "y", true, 10, 2);
    int x = kernel_buf(a, k, "x", false, 0, 0);
    int i = kernel_var(a, k, "i", T_I32);
    int t = kernel_var(a, k, "t", T_F32);
    Expr *vi = ex_var(a, k, i), *vt = ex_var(a, k, t);
    Stmt *f = st_for(a, i, ex_int(a, 1), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, 3)));
    st_append(a, k->body, f);
    st_append(a, f, st_decl(a, t, ex_un(a, X_NEG, ex_un(a, X_NEG, ex_load(a, x, vi)))));
    Expr *cond = ex_bin(a, X_AND, ex_bin(a, X_LE, ex_int(a, 0), vi),
                        ex_un(a, X_NOT, ex_bin(a, X_OR, ex_bin(a, X_EQ, vi, ex_int(a, 4)),
                                               ex_bin(a, X_NE, vi, ex_int(a, -5)))));
    Stmt *s_if = st_if(a, cond);
    st_append(a, f, s_if);
    Expr *sum = ex_bin(a, X_SUB, vi, ex_bin(a, X_SUB, ex_int(a, 1), ex_batch(a)));
    Expr *idx = ex_bin(a, X_MUL, sum, ex_bin(a, X_MOD, ex_bin(a, X_DIV, vi, ex_int(a, 2)), ex_int(a, 3)));
    st_append(a, s_if, st_store(a, y, idx, ex_select(a, ex_bin(a, X_LT, vt, ex_flt(a, 0.1f)),
                                                        ex_un(a, X_EXP, vt), ex_flt(a, -2.5f)), true));
    st_append_else(a, s_if, st_assign(a, t, ex_bin(a, X_MAX, ex_un(a, X_I2F, ex_bin(a, X_MIN, vi, ex_int(a, 7))),
                                                   ex_un(a, X_NEG, ex_flt(a, 1e-5f)))));
    st_append_else(a, s_if, st_store(a, y, ex_un(a, X_F2I, vt), ex_bin(a, X_MUL, vt, ex_un(a, X_NEG, vt)), false));
    expect_accept(k);
    char *s = print_kernel(k);
    assert_string_equal(s,
        "kernel k9_misc(n; y[w] 10 + 2*n, x 0)\n"
        "  for i in 1..n*3\n"
        "    float t = -(-x[i])\n"
        "    if 0 <= i && !(i == 4 || i != -5)\n"
        "      y[(i - (1 - n))*(i/2%3)] += select(t < 0.1, exp(t), -2.5)\n"
        "    else\n"
        "      t = max(float(min(i, 7)), -1e-05)\n"
        "      y[int(t)] = t*-t\n");
    free(s);
    arena_free(a);
}

/* ---- kernel sharing ---- */

/* y[i] = x[i] * c over `size` elements, names chosen by the caller. */
static Kernel *scale_kernel(Arena *a, const char *name, const char *xname, long size, float c)
{
    Kernel *k = kernel_new(a, name, name);
    int y = kernel_buf(a, k, "y", true, 0, size);
    int x = kernel_buf(a, k, xname, false, 0, size);
    int i = kernel_var(a, k, "i", T_I32);
    Expr *n = ex_bin(a, X_MUL, ex_batch(a), ex_int(a, (int)size));
    Stmt *loop = st_for(a, i, ex_int(a, 0), n);
    loop->indep = true;
    st_append(a, loop, st_store(a, y, ex_var(a, k, i),
                                ex_bin(a, X_MUL, ex_load(a, x, ex_var(a, k, i)), ex_flt(a, c)), false));
    st_append(a, k->body, loop);
    return k;
}

static void test_share(void **state)
{
    (void)state;
    Arena *a = arena_new();
    KernelTable t = {0};
    Kernel *first = scale_kernel(a, "k1", "x", 8, 2.0f);
    assert_ptr_equal(kernel_share(&t, first), first);
    /* names do not matter */
    assert_ptr_equal(kernel_share(&t, scale_kernel(a, "k2", "dy", 8, 2.0f)), first);
    assert_int_equal(first->nshared, 1);
    /* a constant, a size or a schedule mark does */
    Kernel *other_c = scale_kernel(a, "k3", "x", 8, 3.0f);
    assert_ptr_equal(kernel_share(&t, other_c), other_c);
    Kernel *other_n = scale_kernel(a, "k4", "x", 9, 2.0f);
    assert_ptr_equal(kernel_share(&t, other_n), other_n);
    Kernel *par = scale_kernel(a, "k5", "x", 8, 2.0f);
    par->body->body[0]->parallel = true;
    assert_ptr_equal(kernel_share(&t, par), par);
    /* many distinct kernels: the table grows and still finds each */
    Kernel *many[200];
    for (int i = 0; i < 200; i++) {
        many[i] = scale_kernel(a, "km", "x", 16 + i, 1.0f);
        assert_ptr_equal(kernel_share(&t, many[i]), many[i]);
    }
    for (int i = 0; i < 200; i++)
        assert_ptr_equal(kernel_share(&t, scale_kernel(a, "kn", "z", 16 + i, 1.0f)), many[i]);
    char *text = print_kernel(first);
    assert_non_null(strstr(text, "(+1 identical)"));
    free(text);
    kernel_table_free(&t);
    arena_free(a);
}

/* X_HASH: printed as hash(a, b), interpreted as loop_hash */
static void test_hash_expr(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k1_hash", NULL);
    int y = kernel_buf(a, k, "y", true, 0, 4);
    int i = kernel_var(a, k, "i", T_I32);
    Expr *vi = ex_var(a, k, i);
    Stmt *f = st_for(a, i, ex_int(a, 0), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, 4)));
    st_append(a, k->body, f);
    Expr *h = ex_bin(a, X_HASH, ex_bin(a, X_HASH, ex_int(a, 77), ex_int(a, 3)), vi);
    assert_int_equal(h->t, T_I32);
    st_append(a, f, st_store(a, y, vi, ex_un(a, X_I2F, h), false));
    expect_accept(k);
    char *s = print_kernel(k);
    assert_string_equal(s, "kernel k1_hash(n; y[w] 4*n)\n"
                           "  for i in 0..n*4\n"
                           "    y[i] = float(hash(hash(77, 3), i))\n");
    free(s);
    float out[8];
    kernel_eval(k, 2, (float *[]){out});
    for (int j = 0; j < 8; j++)
        assert_true(out[j] == (float)loop_hash(loop_hash(77, 3), j));
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_fold_int),
        cmocka_unit_test(test_fold_float),
        cmocka_unit_test(test_fold_unary_select),
        cmocka_unit_test(test_verify_accepts),
        cmocka_unit_test(test_verify_rejects),
        cmocka_unit_test(test_verify_message),
        cmocka_unit_test(test_print_golden),
        cmocka_unit_test(test_print_expressions),
        cmocka_unit_test(test_share),
        cmocka_unit_test(test_hash_expr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
