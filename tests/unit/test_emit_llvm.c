/* test_emit_llvm.c - the LLVM backend against the C backend.
 *
 * A Program is built by hand (no front end): four kernels that between
 * them use every ExprKind and StmtKind, and "forward" / "train" entries
 * whose calls take their buffers from every Loc kind (ARENA with a
 * per-batch offset, PARAM, GRAD, IN, OUT).  The program is compiled by both
 * backends into shared objects (emit_c + cc -shared, emit_llvm_obj + cc
 * -shared), both are loaded with dlopen and run on the same inputs, which
 * include NaN, infinities and -0.0, and their outputs, arenas and gradients
 * are compared: bit for bit for kernels of exact operations, within 1 ulp
 * where libm is called (both call the same libm, so they agree exactly in
 * practice).  Also: .ll output, byte-identical repeated output, an object
 * for aarch64 (checked by its ELF header), and errors, not aborts, for an
 * unknown target, CPU or feature and an unwritable path.
 *
 * Exits 77 (skipped) when netc is built without LLVM.
 */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit_c.h"
#include "emit_llvm.h"
#include "netc.h"
#include "netc_runtime.h"

#ifndef NETC_TEST_CC
#define NETC_TEST_CC "cc"
#endif
/* Extra flags to link a program against this build's runtime (the
 * sanitizers when the runtime is built with them). */
#ifndef NETC_TEST_LINK_FLAGS
#define NETC_TEST_LINK_FLAGS ""
#endif

enum { NIN = 3, NHID = 4, NPARAM = 20, BATCH = 3 };
#define ARENA_FIXED 8L
#define ARENA_PER_N 8L

static char tmpdir[256];
static Program *prog;

/* ---- the hand-built program ------------------------------------------- */

/* h[bi*4+o] = b[o]; h[bi*4+o] += W[o*3+k] * x[bi*3+k]  (S_FOR, accum) */
static Kernel *kernel_dense(Arena *a)
{
    Kernel *k = kernel_new(a, "t_dense", "dense [N, 3] -> [N, 4]");
    int h = kernel_buf(a, k, "h", true, 0, NHID);
    int W = kernel_buf(a, k, "W", false, NHID * NIN, 0);
    int b = kernel_buf(a, k, "b", false, NHID, 0);
    int x = kernel_buf(a, k, "x", false, 0, NIN);
    int bi = kernel_var(a, k, "bi", T_I32), o = kernel_var(a, k, "o", T_I32);
    int kk = kernel_var(a, k, "k", T_I32);
    Stmt *lb = st_for(a, bi, ex_int(a, 0), ex_batch(a));
    Stmt *lo = st_for(a, o, ex_int(a, 0), ex_int(a, NHID));
    Expr *hi = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, bi), ex_int(a, NHID)), ex_var(a, k, o));
    st_append(a, lo, st_store(a, h, hi, ex_load(a, b, ex_var(a, k, o)), false));
    Stmt *lk = st_for(a, kk, ex_int(a, 0), ex_int(a, NIN));
    Expr *wi = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, o), ex_int(a, NIN)), ex_var(a, k, kk));
    Expr *xi = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, bi), ex_int(a, NIN)), ex_var(a, k, kk));
    st_append(a, lk, st_store(a, h, hi, ex_bin(a, X_MUL, ex_load(a, W, wi), ex_load(a, x, xi)), true));
    st_append(a, lo, lk);
    st_append(a, lb, lo);
    st_append(a, k->body, lb);
    return k;
}

/* Every remaining expression kind, elementwise over h ([N, 4]) into y. */
static Kernel *kernel_all(Arena *a)
{
    Kernel *k = kernel_new(a, "t_all", "every expression kind");
    int y = kernel_buf(a, k, "y", true, 0, NHID);
    int h = kernel_buf(a, k, "h", false, 0, NHID);
    int w = kernel_buf(a, k, "w", false, NHID, 0);
    int i = kernel_var(a, k, "i", T_I32);
    int v = kernel_var(a, k, "v", T_F32), q = kernel_var(a, k, "q", T_I32);
    int r = kernel_var(a, k, "r", T_I32), t = kernel_var(a, k, "t", T_I32);
#define I (ex_var(a, k, i))
#define V (ex_var(a, k, v))
#define Q (ex_var(a, k, q))
#define R (ex_var(a, k, r))
    Stmt *li = st_for(a, i, ex_int(a, 0), ex_bin(a, X_MUL, ex_batch(a), ex_int(a, NHID)));
    st_append(a, li, st_decl(a, v, ex_load(a, h, I)));
    st_append(a, li, st_decl(a, q, ex_bin(a, X_DIV, I, ex_int(a, 3))));
    st_append(a, li, st_decl(a, r, ex_bin(a, X_MOD, I, ex_int(a, NHID))));
    /* v = (q < 2 || !(r != 1)) ? v*2 - 1 : v / 3 */
    Expr *c = ex_bin(a, X_OR, ex_bin(a, X_LT, Q, ex_int(a, 2)),
                     ex_un(a, X_NOT, ex_bin(a, X_NE, R, ex_int(a, 1))));
    st_append(a, li, st_assign(a, v, ex_select(a, c,
        ex_bin(a, X_SUB, ex_bin(a, X_MUL, V, ex_flt(a, 2.0f)), ex_flt(a, 1.0f)),
        ex_bin(a, X_DIV, V, ex_flt(a, 3.0f)))));
    /* if (i <= 5 && r == 2) y[i] = min(v, w[r]) else y[i] = max(v, w[r]) */
    Stmt *sif = st_if(a, ex_bin(a, X_AND, ex_bin(a, X_LE, I, ex_int(a, 5)),
                                ex_bin(a, X_EQ, R, ex_int(a, 2))));
    st_append(a, sif, st_store(a, y, I, ex_bin(a, X_MIN, V, ex_load(a, w, R)), false));
    st_append_else(a, sif, st_store(a, y, I, ex_bin(a, X_MAX, V, ex_load(a, w, R)), false));
    st_append(a, li, sif);
    /* libm: y[i] += exp(-v*0.25) + tanh(v) + log(v*v + 1) + sqrt(v*v + 0.5) */
    Expr *vv = ex_bin(a, X_MUL, V, V);
    Expr *m = ex_bin(a, X_ADD,
                     ex_bin(a, X_ADD, ex_un(a, X_EXP, ex_bin(a, X_MUL, ex_un(a, X_NEG, V), ex_flt(a, 0.25f))),
                            ex_un(a, X_TANH, V)),
                     ex_bin(a, X_ADD, ex_un(a, X_LOG, ex_bin(a, X_ADD, vv, ex_flt(a, 1.0f))),
                            ex_un(a, X_SQRT, ex_bin(a, X_ADD, vv, ex_flt(a, 0.5f)))));
    st_append(a, li, st_store(a, y, I, m, true));
    /* int t = int(v * 10); y[i] += float(min(t % 7, max(q, 1)) - t / 5) */
    st_append(a, li, st_decl(a, t, ex_un(a, X_F2I, ex_bin(a, X_MUL, V, ex_flt(a, 10.0f)))));
    Expr *T = ex_var(a, k, t);
    Expr *im = ex_bin(a, X_SUB, ex_bin(a, X_MIN, ex_bin(a, X_MOD, T, ex_int(a, 7)),
                                       ex_bin(a, X_MAX, Q, ex_int(a, 1))),
                      ex_bin(a, X_DIV, T, ex_int(a, 5)));
    st_append(a, li, st_store(a, y, I, ex_un(a, X_I2F, im), true));
    /* y[i] += float(hash(t, i) % 1000): the counter-based hash, bit for bit */
    st_append(a, li, st_store(a, y, I, ex_un(a, X_I2F, ex_bin(a, X_MOD, ex_bin(a, X_HASH, T, I),
                                                              ex_int(a, 1000))), true));
    /* y[i] += 0 < i ? h[max(i - 1, 0)] : -0.0 -- a select evaluates both
     * arms (loop.h), so the index clamps at i == 0, where -0.0 is picked */
    Expr *prev = ex_select(a, ex_bin(a, X_LT, ex_int(a, 0), I),
                           ex_load(a, h, ex_bin(a, X_MAX, ex_bin(a, X_SUB, I, ex_int(a, 1)), ex_int(a, 0))),
                           ex_flt(a, -0.0f));
    st_append(a, li, st_store(a, y, I, prev, true));
#undef I
#undef V
#undef Q
#undef R
    st_append(a, k->body, li);
    return k;
}

/* gw[j] += sum over the batch of h[bi*4+j]  (writes a GRAD buffer) */
static Kernel *kernel_grad(Arena *a)
{
    Kernel *k = kernel_new(a, "t_grad", "sum over the batch");
    int gw = kernel_buf(a, k, "gw", true, NHID, 0);
    int h = kernel_buf(a, k, "h", false, 0, NHID);
    int j = kernel_var(a, k, "j", T_I32), bi = kernel_var(a, k, "bi", T_I32);
    Stmt *lj = st_for(a, j, ex_int(a, 0), ex_int(a, NHID));
    Stmt *lb = st_for(a, bi, ex_int(a, 0), ex_batch(a));
    st_append(a, lb, st_store(a, gw, ex_var(a, k, j),
                              ex_load(a, h, ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, bi),
                                                                    ex_int(a, NHID)),
                                                   ex_var(a, k, j))), true));
    st_append(a, lj, lb);
    st_append(a, k->body, lj);
    return k;
}

/* g[a*4 + b] += h[c % 4] for a < 4, b < min(4, 7 - a), c < 5: a nest
 * LLVM could unroll fully into 80 statements, so the backend keeps its
 * outer loop a loop (the inner two, 20, it may unroll). */
static Kernel *kernel_tile(Arena *a)
{
    Kernel *k = kernel_new(a, "t_tile", "a tile's edge loops");
    int g = kernel_buf(a, k, "g", true, 16, 0);
    int h = kernel_buf(a, k, "h", false, 0, NHID);
    int va = kernel_var(a, k, "a", T_I32), vb = kernel_var(a, k, "b", T_I32);
    int vc = kernel_var(a, k, "c", T_I32);
    Stmt *la = st_for(a, va, ex_int(a, 0), ex_int(a, 4));
    Stmt *lb = st_for(a, vb, ex_int(a, 0),
                      ex_bin(a, X_MIN, ex_int(a, 4), ex_bin(a, X_SUB, ex_int(a, 7), ex_var(a, k, va))));
    Stmt *lc = st_for(a, vc, ex_int(a, 0), ex_int(a, 5));
    Expr *gi = ex_bin(a, X_ADD, ex_bin(a, X_MUL, ex_var(a, k, va), ex_int(a, 4)), ex_var(a, k, vb));
    st_append(a, lc, st_store(a, g, gi, ex_load(a, h, ex_bin(a, X_MOD, ex_var(a, k, vc), ex_int(a, 4))),
                              true));
    st_append(a, lb, lc);
    st_append(a, la, lb);
    st_append(a, k->body, la);
    return k;
}

static Loc loc(LocKind kind, long fixed, long per_n, int idx)
{
    return (Loc){.k = kind, .off_fixed = fixed, .off_per_n = per_n, .idx = idx};
}

static const char meta_text[] =
    "netc 1\n"
    "name t\n"
    "params 20\n"
    "arena 8 8\n"
    "input x 1 3\n"
    "output y 1 4\n"
    "param W 0 12 2 4 3 uniform -1 1 3 4\n"
    "param b 12 4 1 4 zero 0 0 3 4\n"
    "param w 16 4 1 4 normal 0 1 4 4\n"
    "end\n";

static const float weights[NPARAM] = {
    0.5f, -0.25f, 1.5f, 0.125f, 2.0f, -1.0f, 0.75f, 0.3f, -0.7f, 1.1f, 0.9f, -2.5f,
    0.1f, -0.2f, 0.0f, 0.4f,
    0.25f, -0.5f, 1.0f, -1.5f,
};

static Program *build_program(void)
{
    Arena *a = arena_new();
    Model *m = arena_alloc(a, sizeof *m);
    m->name = "t";
    m->file = "test_emit_llvm.net";
    m->arena = a;
    m->g = graph_new(a);
    SrcLoc sl = {"test_emit_llvm.net", 1, 1};
    /* Nodes only for the C backend's comments and header: x [N, 3] -> y [N, 4]. */
    Node *nx = graph_add(m->g, OP_INPUT, "x", sl, 0, NULL);
    nx->shape = (Shape){.rank = 1, .d = {NIN}, .batched = true};
    Node *nh = graph_add(m->g, OP_INPUT, "h", sl, 0, NULL);
    nh->shape = (Shape){.rank = 1, .d = {NHID}, .batched = true};
    Node *ny = graph_add(m->g, OP_INPUT, "y", sl, 0, NULL);
    ny->shape = nh->shape;
    Node *ngw = graph_add(m->g, OP_INPUT, "gw", sl, 0, NULL);
    ngw->shape = (Shape){.rank = 1, .d = {NHID}, .batched = false};
    m->g->loss = m->g->target = -1;
    m->grad_value = m->grad_seed = -1;

    Program *p = arena_alloc(a, sizeof *p);
    p->m = m;
    p->arena = a;
    p->nkernel = 4;
    p->kernel = arena_alloc(a, sizeof *p->kernel * 4);
    p->kernel[0] = kernel_dense(a);
    p->kernel[1] = kernel_all(a);
    p->kernel[2] = kernel_grad(a);
    p->kernel[3] = kernel_tile(a);
    for (int i = 0; i < 4; i++) {
        p->kernel[i]->index = i;
        assert_true(kernel_verify(p->kernel[i], stderr));
    }

    /* h lives in the arena after an 8-float gap and a per-sample gap, so a
     * wrong per-n offset shows up as a difference. */
    Loc lh = loc(LOC_ARENA, ARENA_FIXED, 4, 0);
    Loc dense_args[4] = {lh, loc(LOC_PARAM, 0, 0, 0), loc(LOC_PARAM, 12, 0, 0), loc(LOC_IN, 0, 0, 0)};
    Loc all_args[3] = {loc(LOC_OUT, 0, 0, 0), lh, loc(LOC_PARAM, 16, 0, 0)};
    Loc grad_args[2] = {loc(LOC_GRAD, 16, 0, 0), lh};
    Loc tile_args[2] = {loc(LOC_GRAD, 0, 0, 0), lh};
    Loc *args[4] = {dense_args, all_args, grad_args, tile_args};
    int nargs[4] = {4, 3, 2, 2};

    p->nentry = 2;
    p->entry = arena_alloc(a, sizeof *p->entry * 2);
    for (int e = 0; e < 2; e++) {
        Entry *en = &p->entry[e];
        en->name = e == 0 ? "forward" : "train";
        en->nin = 1;
        en->nout = 1;
        en->in = arena_alloc(a, sizeof(int));
        en->in[0] = nx->id;
        en->out = arena_alloc(a, sizeof(int));
        en->out[0] = ny->id;
        en->writes_grads = e == 1;
        en->ncall = e == 0 ? 2 : 4;
        en->call = arena_alloc(a, sizeof *en->call * (size_t)en->ncall);
        for (int c = 0; c < en->ncall; c++) {
            en->call[c].node = 1 + c;
            en->call[c].kernel = p->kernel[c];
            en->call[c].arg = arena_alloc(a, sizeof(Loc) * (size_t)nargs[c]);
            memcpy(en->call[c].arg, args[c], sizeof(Loc) * (size_t)nargs[c]);
        }
        en->arena_fixed = en->naive_fixed = ARENA_FIXED;
        en->arena_per_n = en->naive_per_n = ARENA_PER_N;
    }
    p->param_floats = NPARAM;
    p->meta = meta_text;
    p->weights = weights;
    return p;
}

/* ---- helpers ----------------------------------------------------------- */

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st != 0)
        fprintf(stderr, "command failed (%d): %s\n", st, cmd);
    return st;
}

/* The whole file, NUL-terminated (caller frees); NULL if unreadable. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = 0;
    if (len)
        *len = got;
    return s;
}

typedef struct {
    Diag d;
    FILE *f;
} Captured;

static void cap_begin(Captured *c)
{
    c->f = tmpfile();
    assert_non_null(c->f);
    diag_init(&c->d, c->f);
}

/* The diagnostics printed since cap_begin (caller frees). */
static char *cap_end(Captured *c)
{
    fflush(c->f);
    long n = ftell(c->f);
    rewind(c->f);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, c->f);
    s[got] = 0;
    fclose(c->f);
    diag_free(&c->d);
    return s;
}

static bool llvm_obj(const LlvmOptions *o, const char *path, bool with_main)
{
    Diag d;
    diag_init(&d, stderr);
    bool ok = emit_llvm_obj(prog, o, path, with_main, &d);
    diag_free(&d);
    return ok;
}

static void *load_so(const char *so)
{
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        fprintf(stderr, "dlopen %s: %s\n", so, dlerror());
    assert_non_null(h);
    return h;
}

static void *build_c_so(void)
{
    Diag d;
    diag_init(&d, stderr);
    assert_true(emit_c(prog, tmpdir, &d));
    diag_free(&d);
    char so[512];
    path_in(so, sizeof so, "t_c.so");
    assert_int_equal(sh("'%s' -O2 -std=c99 -shared -fPIC -I'%s' -o '%s' '%s/t.c' -lm", NETC_TEST_CC,
                        NETC_RUNTIME_INCLUDE, so, tmpdir), 0);
    return load_so(so);
}

static void *build_llvm_so(int opt_level, const char *tag)
{
    char obj[512], so[512], name[64];
    snprintf(name, sizeof name, "t_llvm%s.o", tag);
    path_in(obj, sizeof obj, name);
    snprintf(name, sizeof name, "t_llvm%s.so", tag);
    path_in(so, sizeof so, name);
    LlvmOptions o = {NULL, NULL, NULL, opt_level};
    assert_true(llvm_obj(&o, obj, false));
    assert_int_equal(sh("'%s' -shared -o '%s' '%s' -lm", NETC_TEST_CC, so, obj), 0);
    return load_so(so);
}

/* Everything one run of an entry produces. */
typedef struct {
    float y[BATCH * NHID];
    float arena[ARENA_FIXED + ARENA_PER_N * BATCH];
    float grads[NPARAM];
} Run;

static const float input[BATCH * NIN] = {
    0.5f, -1.25f, 2.0f,
    NAN, 0.75f, -0.0f,
    INFINITY, 3.5f, -2.0f,
};

static void run_entry(void *so, const char *entry, Run *r)
{
    char sym[64];
    snprintf(sym, sizeof sym, "t_%s", entry);
    NetcEntryFn fn = (NetcEntryFn)(uintptr_t)dlsym(so, sym);
    assert_non_null(fn);
    const float *meta_params = dlsym(so, "t_weights");
    assert_non_null(meta_params);
    assert_memory_equal(meta_params, weights, sizeof weights);
    /* Poison what the entry should overwrite, set grads to known values
     * (the train entry accumulates into them). */
    for (size_t i = 0; i < sizeof r->y / sizeof r->y[0]; i++)
        r->y[i] = 12345.0f;
    for (size_t i = 0; i < sizeof r->arena / sizeof r->arena[0]; i++)
        r->arena[i] = -777.0f;
    for (int i = 0; i < NPARAM; i++)
        r->grads[i] = 0.125f * (float)i;
    const float *in[1] = {input};
    float *out[1] = {r->y};
    fn(BATCH, weights, r->grads, r->arena, in, out);
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Distance in units in the last place; 0 for equal values and for two
 * NaNs (whose payloads neither backend promises). */
static long ulps(float a, float b)
{
    if (isnan(a) && isnan(b))
        return 0;
    if (isnan(a) || isnan(b))
        return 1L << 40;
    int32_t ia = (int32_t)bits(a), ib = (int32_t)bits(b);
    if (ia < 0)
        ia = INT32_MIN - ia;
    if (ib < 0)
        ib = INT32_MIN - ib;
    long d = (long)ia - (long)ib;
    return d < 0 ? -d : d;
}

static void compare(const char *what, const float *c, const float *l, int n, long max_ulps)
{
    for (int i = 0; i < n; i++) {
        long u = ulps(c[i], l[i]);
        if (u > max_ulps) {
            fprintf(stderr, "%s[%d]: C %.9g (0x%08x), LLVM %.9g (0x%08x): %ld ulps\n", what, i,
                    (double)c[i], bits(c[i]), (double)l[i], bits(l[i]), u);
            fail();
        }
    }
}

static void compare_runs(const Run *c, const Run *l)
{
    /* The dense kernel (arena) and the gradient sum are exact arithmetic in
     * the same order in both backends: bit for bit. */
    compare("arena", c->arena, l->arena, (int)(sizeof c->arena / sizeof c->arena[0]), 0);
    compare("grads", c->grads, l->grads, NPARAM, 0);
    /* y calls expf/logf/tanhf/sqrtf: the same libm, so 1 ulp is slack. */
    compare("y", c->y, l->y, BATCH * NHID, 1);
}

/* ---- tests ------------------------------------------------------------- */

static void test_backends_agree(void **state)
{
    (void)state;
    void *cso = build_c_so();
    void *l3 = build_llvm_so(3, "3");
    void *l0 = build_llvm_so(0, "0");
    const char *entries[2] = {"forward", "train"};
    for (int e = 0; e < 2; e++) {
        Run rc, r3, r0;
        run_entry(cso, entries[e], &rc);
        run_entry(l3, entries[e], &r3);
        run_entry(l0, entries[e], &r0);
        compare_runs(&rc, &r3);
        compare_runs(&rc, &r0);
        /* The poisoned outputs were all written. */
        for (int i = 0; i < BATCH * NHID; i++)
            assert_true(r3.y[i] != 12345.0f);
    }
    const char *mc = dlsym(cso, "t_meta"), *ml = dlsym(l3, "t_meta");
    assert_non_null(mc);
    assert_non_null(ml);
    assert_string_equal(mc, meta_text);
    assert_string_equal(ml, meta_text);
    assert_null(dlsym(l3, "main"));
    dlclose(cso);
    dlclose(l3);
    dlclose(l0);
}

static void test_ll_text(void **state)
{
    (void)state;
    char ll[512], ll0[512];
    path_in(ll, sizeof ll, "t.ll");
    path_in(ll0, sizeof ll0, "t0.ll");
    Diag d;
    diag_init(&d, stderr);
    LlvmOptions o3 = {NULL, NULL, NULL, 3}, o0 = {NULL, NULL, NULL, 0};
    assert_true(emit_llvm_ir(prog, &o3, ll, &d));
    assert_true(emit_llvm_ir(prog, &o0, ll0, &d));
    diag_free(&d);
    char *s = read_file(ll0, NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "define void @t_forward(i32 "));
    assert_non_null(strstr(s, "define void @t_train(i32 "));
    assert_non_null(strstr(s, "define internal void @t_dense(i32 "));
    assert_non_null(strstr(s, "ptr noalias"));
    assert_non_null(strstr(s, "@t_meta = constant ["));
    assert_non_null(strstr(s, "@t_weights = constant [20 x float]"));
    assert_non_null(strstr(s, "declare float @expf(float)"));
    assert_non_null(strstr(s, "declare float @tanhf(float)"));
    assert_non_null(strstr(s, "sdiv i32"));
    assert_non_null(strstr(s, "srem i32"));
    assert_null(strstr(s, "fast"));        /* no fast-math flags */
    assert_null(strstr(s, "@main"));
    /* indices: sums and products in 64 bits over sign-extended leaves */
    assert_non_null(strstr(s, "add nsw i64"));
    assert_non_null(strstr(s, "mul nsw i64"));
    /* t_tile's outer loop, and no other, keeps LLVM from unrolling it */
    assert_non_null(strstr(s, "!\"llvm.loop.unroll.disable\""));
    int marked = 0;
    for (const char *q = s; (q = strstr(q, ", !llvm.loop !")); q++)
        marked++;
    assert_int_equal(marked, 1);
    free(s);
    s = read_file(ll, NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "define void @t_forward("));
    assert_null(strstr(s, " fast "));
    free(s);
}

static void test_deterministic(void **state)
{
    (void)state;
    char a[512], b[512];
    LlvmOptions o = {NULL, NULL, NULL, 3};
    const char *ext[2] = {"o", "ll"};
    for (int k = 0; k < 2; k++) {
        char na[32], nb[32];
        snprintf(na, sizeof na, "det_a.%s", ext[k]);
        snprintf(nb, sizeof nb, "det_b.%s", ext[k]);
        path_in(a, sizeof a, na);
        path_in(b, sizeof b, nb);
        Diag d;
        diag_init(&d, stderr);
        if (k == 0) {
            assert_true(emit_llvm_obj(prog, &o, a, true, &d));
            assert_true(emit_llvm_obj(prog, &o, b, true, &d));
        } else {
            assert_true(emit_llvm_ir(prog, &o, a, &d));
            assert_true(emit_llvm_ir(prog, &o, b, &d));
        }
        diag_free(&d);
        size_t la, lb;
        char *sa = read_file(a, &la), *sb = read_file(b, &lb);
        assert_non_null(sa);
        assert_non_null(sb);
        assert_int_equal(la, lb);
        assert_memory_equal(sa, sb, la);
        free(sa);
        free(sb);
    }
}

/* An object with main() links against the runtime into a program whose
 * `info` command reads the embedded description. */
static void test_with_main_links(void **state)
{
    (void)state;
    char obj[512], exe[512];
    path_in(obj, sizeof obj, "prog.o");
    path_in(exe, sizeof exe, "prog");
    LlvmOptions o = {NULL, NULL, NULL, 2};
    assert_true(llvm_obj(&o, obj, true));
    assert_int_equal(sh("'%s' %s -o '%s' '%s' '%s' -lz -lm", NETC_TEST_CC, NETC_TEST_LINK_FLAGS, exe,
                        obj, NETC_RUNTIME_LIB), 0);
    assert_int_equal(sh("'%s' info > '%s.info' 2>&1", exe, exe), 0);
}

static void cross_object(const char *triple, const char *cpu, int e_machine)
{
    char obj[512], name[128];
    snprintf(name, sizeof name, "cross-%s.o", triple);
    path_in(obj, sizeof obj, name);
    LlvmOptions o = {triple, cpu, NULL, 2};
    assert_true(llvm_obj(&o, obj, true));
    size_t n;
    unsigned char *s = (unsigned char *)read_file(obj, &n);
    assert_non_null(s);
    assert_true(n > 64);
    assert_memory_equal(s, "\177ELF", 4);
    assert_int_equal(s[4], 2);                         /* ELFCLASS64 */
    assert_int_equal(s[5], 1);                         /* little-endian */
    assert_int_equal(s[16] | s[17] << 8, 1);           /* ET_REL */
    assert_int_equal(s[18] | s[19] << 8, e_machine);
    free(s);
}

static void test_cross_targets(void **state)
{
    (void)state;
    cross_object("aarch64-linux-gnu", NULL, 183);      /* EM_AARCH64 */
    cross_object("aarch64-linux-gnu", "cortex-a72", 183);
    cross_object("riscv64-linux-gnu", NULL, 243);      /* EM_RISCV */
    cross_object("x86_64-linux-gnu", "haswell", 62);   /* EM_X86_64 */
}

static void expect_error(const LlvmOptions *o, const char *path, const char *want1,
                         const char *want2)
{
    Captured c;
    cap_begin(&c);
    assert_false(emit_llvm_obj(prog, o, path, false, &c.d));
    int nerr = c.d.nerror;
    char *msg = cap_end(&c);
    if (!strstr(msg, want1) || (want2 && !strstr(msg, want2)))
        fprintf(stderr, "unexpected diagnostics:\n%s", msg);
    assert_true(nerr > 0);
    assert_non_null(strstr(msg, want1));
    if (want2)
        assert_non_null(strstr(msg, want2));
    free(msg);
}

static void test_errors(void **state)
{
    (void)state;
    char obj[512];
    path_in(obj, sizeof obj, "err.o");
    LlvmOptions bad_target = {"foo-bar", NULL, NULL, 2};
    expect_error(&bad_target, obj, "netc: error: unknown target 'foo-bar'", NULL);
    LlvmOptions bad_cpu = {"x86_64-linux-gnu", "skylak", NULL, 2};
    expect_error(&bad_cpu, obj, "unknown CPU 'skylak'", "did you mean 'skylake'?");
    LlvmOptions help_cpu = {"aarch64-linux-gnu", "help", NULL, 2};
    expect_error(&help_cpu, obj, "unknown CPU 'help'", "cortex-a72");
    LlvmOptions bad_feat = {"x86_64-linux-gnu", NULL, "+avx2,+avx9", 2};
    expect_error(&bad_feat, obj, "unknown feature '+avx9'", NULL);
    LlvmOptions bare_feat = {"x86_64-linux-gnu", NULL, "avx2", 2};
    expect_error(&bare_feat, obj, "unknown feature 'avx2'", "'+avx2'");
    LlvmOptions bad_opt = {NULL, NULL, NULL, 7};
    expect_error(&bad_opt, obj, "-O7", NULL);
    LlvmOptions ok = {NULL, NULL, NULL, 2};
    expect_error(&ok, "/nonexistent-dir/x.o", "cannot write '/nonexistent-dir/x.o'", NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/netc-test-emit-llvm-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    prog = build_program();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!getenv("NETC_KEEP"))
        sh("rm -rf '%s'", tmpdir);
    else
        fprintf(stderr, "kept %s\n", tmpdir);
    arena_free(prog->arena);
    return 0;
}

int main(void)
{
    if (!emit_llvm_available()) {
        printf("SKIP: netc was built without LLVM\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backends_agree),
        cmocka_unit_test(test_ll_text),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_with_main_links),
        cmocka_unit_test(test_cross_targets),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
