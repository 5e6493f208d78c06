/* test_emit_c.c - the C backend on hand-built Programs: the generated C
 * compiles warning-free with gcc and clang, runs (through dlopen) to the
 * numbers the loop IR's semantics give, has the documented header, is
 * byte-for-byte deterministic, and unwritable paths are errors.  Also
 * compiles and runs docs/examples/lenet_predict.c against a generated
 * lenet.h.  Needs cc (gcc) and, when installed, clang; no front end. */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit_c.h"
#include "netc.h"

typedef void (*EntryFn)(int n, const float *params, float *grads, float *arena,
                        const float *const *in, float *const *out);

/* The C compilers to try and the flags the generated code must pass; a
 * stricter set than the contract, so users' own flags are unlikely to trip. */
static const char *const compilers[] = {"gcc", "clang"};
static const char *const strict =
    "-std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -Wshadow -Wstrict-prototypes "
    "-Wmissing-prototypes -Wconversion -Wdouble-promotion -Wcast-qual";

/* ---- small helpers ---- */

static bool have(const char *cc)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", cc);
    return system(cmd) == 0;
}

static void run_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run_ok(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return s;
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/netc_emit_c_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    return strdup(dir);
}

static void remove_tree(char *dir)
{
    run_ok("rm -rf '%s'", dir);
    free(dir);
}

static void *sym(void *lib, const char *name)
{
    void *p = dlsym(lib, name);
    if (!p)
        fail_msg("symbol %s missing: %s", name, dlerror());
    return p;
}

static EntryFn entry_fn(void *lib, const char *name)
{
    void *p = sym(lib, name);
    EntryFn f;
    memcpy(&f, &p, sizeof f); /* ISO C has no object-to-function cast */
    return f;
}

static bool same_bits(float a, float b)
{
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

#define assert_same_float(a, b) \
    do { \
        float a_ = (a), b_ = (b); \
        if (!same_bits(a_, b_)) \
            fail_msg("%s = %.9g, expected %.9g", #a, (double)a_, (double)b_); \
    } while (0)

/* ---- a hand-built program "toy" ----
 *
 * forward(x [N,16]) -> s [N,1]        relu, then s = sum(relu(x)) * w0 + w1
 * train(x [N,16])   -> s, loss; grads  also m = misc(x), grads += (sum m, n),
 *                                       loss = mean(s^2)
 */

typedef struct {
    Arena *a;
    Model m;
    Program p;
    float weights[2];
} Toy;

static Loc loc_arena(long f, long pn) { return (Loc){LOC_ARENA, f, pn, 0}; }
static Loc loc_param(long off) { return (Loc){LOC_PARAM, off, 0, 0}; }
static Loc loc_grad(long off) { return (Loc){LOC_GRAD, off, 0, 0}; }
static Loc loc_in(int i) { return (Loc){LOC_IN, 0, 0, i}; }
static Loc loc_out(int i) { return (Loc){LOC_OUT, 0, 0, i}; }

static Expr *V(Arena *a, const Kernel *k, int v) { return ex_var(a, k, v); }
static Expr *I(Arena *a, int v) { return ex_int(a, v); }
static Expr *F(Arena *a, float v) { return ex_flt(a, v); }
static Expr *B(Arena *a, ExprKind k, Expr *l, Expr *r) { return ex_bin(a, k, l, r); }

/* y[i] = max(x[i], 0.0) for i in 0..n*16 (an end that is hoisted) */
static Kernel *k_relu(Arena *a)
{
    Kernel *k = kernel_new(a, "k1_relu", "relu r [N, 16] -> [N, 16]");
    int y = kernel_buf(a, k, "y", true, 0, 16), x = kernel_buf(a, k, "x", false, 0, 16);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *f = st_for(a, i, I(a, 0), B(a, X_MUL, ex_batch(a), I(a, 16)));
    st_append(a, k->body, f);
    st_append(a, f, st_store(a, y, V(a, k, i), B(a, X_MAX, ex_load(a, x, V(a, k, i)), F(a, 0.0f)), false));
    return k;
}

/* s[b] = (x[b,0] + x[b,1] + ... + x[b,15]) * w[0] + w[1] */
static Kernel *k_rowsum(Arena *a)
{
    Kernel *k = kernel_new(a, "k2_rowsum", "rowsum s [N, 16] -> [N, 1]");
    int s = kernel_buf(a, k, "s", true, 0, 1), x = kernel_buf(a, k, "x", false, 0, 16);
    int w = kernel_buf(a, k, "w", false, 2, 0);
    int b = kernel_var(a, k, "b", T_I32), j = kernel_var(a, k, "j", T_I32);
    int acc = kernel_var(a, k, "acc", T_F32);
    Stmt *fb = st_for(a, b, I(a, 0), ex_batch(a));
    st_append(a, k->body, fb);
    Expr *row = B(a, X_MUL, V(a, k, b), I(a, 16));
    st_append(a, fb, st_decl(a, acc, ex_load(a, x, row)));
    Stmt *fj = st_for(a, j, I(a, 1), I(a, 16));
    st_append(a, fb, fj);
    st_append(a, fj, st_assign(a, acc, B(a, X_ADD, V(a, k, acc), ex_load(a, x, B(a, X_ADD, row, V(a, k, j))))));
    st_append(a, fb, st_store(a, s, V(a, k, b),
                              B(a, X_ADD, B(a, X_MUL, V(a, k, acc), ex_load(a, w, I(a, 0))),
                                ex_load(a, w, I(a, 1))), false));
    return k;
}

/* Every other expression kind, element by element:
 *   v = x[b,i]; prev = i >= 1 ? x[b,max(i-1, 0)] : 0.5 (both arms evaluated); q = i/3
 *   t = i%3 == 0 ? exp(v*0.25) + tanh(prev) : -sqrt(max(v, 0)) + log(1 + float(min(q, 3)))
 *   m[b,i] = t + float(max(int(v*4), -2)) + min(v, prev) */
static Kernel *k_misc(Arena *a)
{
    Kernel *k = kernel_new(a, "k3_misc", "misc m [N, 16] -> [N, 16]");
    int m = kernel_buf(a, k, "m", true, 0, 16), x = kernel_buf(a, k, "x", false, 0, 16);
    int b = kernel_var(a, k, "b", T_I32), i = kernel_var(a, k, "i", T_I32);
    int v = kernel_var(a, k, "v", T_F32), prev = kernel_var(a, k, "prev", T_F32);
    int q = kernel_var(a, k, "q", T_I32), t = kernel_var(a, k, "t", T_F32);
    Stmt *fb = st_for(a, b, I(a, 0), ex_batch(a));
    st_append(a, k->body, fb);
    Stmt *fi = st_for(a, i, I(a, 0), I(a, 16));
    st_append(a, fb, fi);
    Expr *idx = B(a, X_ADD, B(a, X_MUL, V(a, k, b), I(a, 16)), V(a, k, i));
    st_append(a, fi, st_decl(a, v, ex_load(a, x, idx)));
    Expr *before = B(a, X_ADD, B(a, X_MUL, V(a, k, b), I(a, 16)), B(a, X_MAX, B(a, X_SUB, V(a, k, i), I(a, 1)), I(a, 0)));
    st_append(a, fi, st_decl(a, prev, ex_select(a, B(a, X_LE, I(a, 1), V(a, k, i)),
                                                ex_load(a, x, before), F(a, 0.5f))));
    st_append(a, fi, st_decl(a, q, B(a, X_DIV, V(a, k, i), I(a, 3))));
    st_append(a, fi, st_decl(a, t, F(a, 0.0f)));
    Stmt *s_if = st_if(a, B(a, X_EQ, B(a, X_MOD, V(a, k, i), I(a, 3)), I(a, 0)));
    st_append(a, fi, s_if);
    st_append(a, s_if, st_assign(a, t, B(a, X_ADD, ex_un(a, X_EXP, B(a, X_MUL, V(a, k, v), F(a, 0.25f))),
                                         ex_un(a, X_TANH, V(a, k, prev)))));
    Expr *root = ex_un(a, X_NEG, ex_un(a, X_SQRT, B(a, X_MAX, V(a, k, v), F(a, 0.0f))));
    Expr *lg = ex_un(a, X_LOG, B(a, X_ADD, F(a, 1.0f), ex_un(a, X_I2F, B(a, X_MIN, V(a, k, q), I(a, 3)))));
    st_append_else(a, s_if, st_assign(a, t, B(a, X_ADD, root, lg)));
    Expr *clip = ex_un(a, X_I2F, B(a, X_MAX, ex_un(a, X_F2I, B(a, X_MUL, V(a, k, v), F(a, 4.0f))), I(a, -2)));
    st_append(a, fi, st_store(a, m, idx, B(a, X_ADD, B(a, X_ADD, V(a, k, t), clip),
                                           B(a, X_MIN, V(a, k, v), V(a, k, prev))), false));
    return k;
}

/* g[0] += sum(m); g[1] += float(n); loss[0] = sum(s*s) / float(n) */
static Kernel *k_grad(Arena *a)
{
    Kernel *k = kernel_new(a, "k4_grad", "grad */ sneaky comment");
    int g = kernel_buf(a, k, "g", true, 2, 0), loss = kernel_buf(a, k, "loss", true, 1, 0);
    int m = kernel_buf(a, k, "m", false, 0, 16), s = kernel_buf(a, k, "s", false, 0, 1);
    int tot = kernel_var(a, k, "tot", T_F32), i = kernel_var(a, k, "i", T_I32);
    int ls = kernel_var(a, k, "ls", T_F32), b = kernel_var(a, k, "b", T_I32);
    st_append(a, k->body, st_decl(a, tot, F(a, 0.0f)));
    Stmt *fi = st_for(a, i, I(a, 0), B(a, X_MUL, ex_batch(a), I(a, 16)));
    st_append(a, k->body, fi);
    st_append(a, fi, st_assign(a, tot, B(a, X_ADD, V(a, k, tot), ex_load(a, m, V(a, k, i)))));
    st_append(a, k->body, st_store(a, g, I(a, 0), V(a, k, tot), true));
    st_append(a, k->body, st_store(a, g, I(a, 1), ex_un(a, X_I2F, ex_batch(a)), true));
    st_append(a, k->body, st_decl(a, ls, F(a, 0.0f)));
    Stmt *fb = st_for(a, b, I(a, 0), ex_batch(a));
    st_append(a, k->body, fb);
    Expr *sb = ex_load(a, s, V(a, k, b));
    st_append(a, fb, st_assign(a, ls, B(a, X_ADD, V(a, k, ls), B(a, X_MUL, sb, ex_load(a, s, V(a, k, b))))));
    st_append(a, k->body, st_store(a, loss, I(a, 0), B(a, X_DIV, V(a, k, ls), ex_un(a, X_I2F, ex_batch(a))), false));
    return k;
}

/* A graph of named, shaped nodes: all the backend reads of it.  Built by
 * hand so this test needs nothing of the front end. */
static Graph *fake_graph(Arena *a)
{
    Graph *g = arena_alloc(a, sizeof(Graph));
    g->arena = a;
    g->cap = 16;
    g->node = arena_alloc(a, sizeof(Node *) * 16);
    g->loss = g->target = -1;
    return g;
}

static int add_node(Graph *g, const char *name, bool batched, int rank, int d0, int d1, int d2)
{
    NETC_ASSERT(g->nnode < g->cap);
    Node *n = arena_alloc(g->arena, sizeof(Node));
    n->id = g->nnode;
    n->op = OP_INPUT;
    n->name = name;
    n->loc = (SrcLoc){"toy.net", 1, 1};
    n->shape = (Shape){rank, {d0, d1, d2, 0, 0}, batched};
    g->node[g->nnode++] = n;
    return n->id;
}

static Call call(Arena *a, int node, Kernel *k, int nloc, const Loc *locs)
{
    NETC_ASSERT(nloc == k->nbuf);
    Loc *arg = arena_alloc(a, sizeof(Loc) * (size_t)nloc);
    memcpy(arg, locs, sizeof(Loc) * (size_t)nloc);
    return (Call){.node = node, .kernel = k, .arg = arg};
}

static int *ids(Arena *a, int n, const int *v)
{
    int *p = arena_alloc(a, sizeof(int) * (size_t)(n ? n : 1));
    memcpy(p, v, sizeof(int) * (size_t)n);
    return p;
}

static void toy_build(Toy *t, bool with_weights, const char *meta)
{
    memset(t, 0, sizeof *t);
    Arena *a = t->a = arena_new();
    Graph *g = fake_graph(a);
    int x = add_node(g, "x", true, 1, 16, 0, 0);
    int w = add_node(g, "fc.weight", false, 1, 2, 0, 0);
    int r = add_node(g, "r", true, 1, 16, 0, 0);
    int s = add_node(g, "s", true, 1, 1, 0, 0);
    int m = add_node(g, "m", true, 1, 16, 0, 0);
    int loss = add_node(g, "loss", false, 0, 0, 0, 0);
    t->m.name = "toy";
    t->m.file = "some/dir/toy.net";
    t->m.arena = a;
    t->m.g = g;

    Kernel *kr = k_relu(a), *ks = k_rowsum(a), *km = k_misc(a), *kg = k_grad(a);
    Kernel *unused = kernel_new(a, "k9_unused", NULL);
    Program *p = &t->p;
    p->m = &t->m;
    p->arena = a;
    p->nkernel = 5;
    p->kernel = arena_alloc(a, sizeof(Kernel *) * 5);
    p->kernel[0] = kr;
    p->kernel[1] = ks;
    p->kernel[2] = km;
    p->kernel[3] = kg;
    p->kernel[4] = unused;
    for (int i = 0; i < 5; i++)
        p->kernel[i]->index = i;
    p->nentry = 2;
    p->entry = arena_alloc(a, sizeof(Entry) * 2);

    Entry *fw = &p->entry[0];
    fw->name = "forward";
    fw->nin = fw->nout = 1;
    fw->in = ids(a, 1, &x);
    fw->out = ids(a, 1, &s);
    fw->ncall = 2;
    fw->call = arena_alloc(a, sizeof(Call) * 2);
    fw->call[0] = call(a, r, kr, 2, (Loc[]){loc_arena(3, 0), loc_in(0)});
    fw->call[1] = call(a, s, ks, 3, (Loc[]){loc_out(0), loc_arena(3, 0), loc_param(0)});
    fw->arena_fixed = 3, fw->arena_per_n = 16;
    fw->naive_fixed = 0, fw->naive_per_n = 17;

    Entry *tr = &p->entry[1];
    tr->name = "train";
    tr->nin = 1, tr->nout = 2;
    tr->in = ids(a, 1, &x);
    tr->out = ids(a, 2, (int[]){s, loss});
    tr->writes_grads = true;
    tr->ncall = 4;
    tr->call = arena_alloc(a, sizeof(Call) * 4);
    tr->call[0] = call(a, r, kr, 2, (Loc[]){loc_arena(0, 0), loc_in(0)});
    tr->call[1] = call(a, s, ks, 3, (Loc[]){loc_out(0), loc_arena(0, 0), loc_param(0)});
    tr->call[2] = call(a, m, km, 2, (Loc[]){loc_arena(5, 16), loc_in(0)});
    tr->call[3] = call(a, loss, kg, 4, (Loc[]){loc_grad(0), loc_out(1), loc_arena(5, 16), loc_out(0)});
    tr->arena_fixed = 5, tr->arena_per_n = 32;
    tr->naive_fixed = 5, tr->naive_per_n = 48;

    p->nparam = 1;
    p->param = arena_alloc(a, sizeof(ParamSlot));
    p->param[0] = (ParamSlot){w, 0, 2};
    p->param_floats = 2;
    p->meta = meta;
    t->weights[0] = 1.5f;
    t->weights[1] = -0.25f;
    p->weights = with_weights ? t->weights : NULL;
}

/* The meta text exercises the string escaping: quotes, backslashes, a
 * trigraph, a tab and a non-ASCII byte. */
static const char toy_meta_text[] =
    "netc 1\nname toy\nparams 2\narena 5 32\nnote \"quoted\" back\\slash ?\?= tab\there \xc3\xa9\nend\n";

/* ---- expected numbers, computed here by the semantics in loop.h ---- */

static float fmax_ir(float a, float b) { return a > b ? a : b; }
static float fmin_ir(float a, float b) { return a < b ? a : b; }

static void toy_input(float *x, int n)
{
    for (int i = 0; i < n * 16; i++)
        x[i] = (float)((i * 7) % 23 - 11) * 0.37f;
}

static void expect_forward(const float *x, int n, const float *w, float *s)
{
    for (int b = 0; b < n; b++) {
        float acc = fmax_ir(x[b * 16], 0.0f);
        for (int j = 1; j < 16; j++)
            acc = acc + fmax_ir(x[b * 16 + j], 0.0f);
        s[b] = acc * w[0] + w[1];
    }
}

static float expect_misc(const float *x, int b, int i)
{
    float v = x[b * 16 + i];
    float prev = 1 <= i ? x[b * 16 + i - 1] : 0.5f;
    int q = i / 3;
    float t;
    if (i % 3 == 0)
        t = expf(v * 0.25f) + tanhf(prev);
    else
        t = -sqrtf(fmax_ir(v, 0.0f)) + logf(1.0f + (float)(q < 3 ? q : 3));
    int c = (int)(v * 4.0f);
    return t + (float)(c > -2 ? c : -2) + fmin_ir(v, prev);
}

/* Runs forward and train from a compiled library and checks every value,
 * and that nothing is written past the arena. */
static void check_library(const char *so)
{
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        fail_msg("dlopen %s: %s", so, dlerror());
    EntryFn fwd = entry_fn(lib, "toy_forward"), train = entry_fn(lib, "toy_train");
    const char *meta = sym(lib, "toy_meta");
    const float *weights = sym(lib, "toy_weights");
    assert_string_equal(meta, toy_meta_text);
    assert_same_float(weights[0], 1.5f);
    assert_same_float(weights[1], -0.25f);

    enum { N = 3, GUARD = 8 };
    float x[N * 16], s[N], want_s[N], loss[1], grads[2] = {10.0f, 20.0f};
    float arena[5 + 32 * N + GUARD];
    toy_input(x, N);
    for (size_t i = 0; i < sizeof arena / sizeof arena[0]; i++)
        arena[i] = -777.0f;
    const float *in[1] = {x};
    float *out1[1] = {s};
    fwd(N, weights, NULL, arena, in, out1);
    expect_forward(x, N, weights, want_s);
    for (int b = 0; b < N; b++)
        assert_same_float(s[b], want_s[b]);
    for (int i = 3 + 16 * N; i < 5 + 32 * N + GUARD; i++)
        assert_same_float(arena[i], -777.0f);
    for (int i = 0; i < 3; i++) /* the forward entry's first 3 floats are unused */
        assert_same_float(arena[i], -777.0f);

    float *out2[2] = {s, loss};
    memset(s, 0, sizeof s);
    train(N, weights, grads, arena, in, out2);
    for (int b = 0; b < N; b++)
        assert_same_float(s[b], want_s[b]);
    float tot = 0.0f, ls = 0.0f;
    for (int b = 0; b < N; b++)
        for (int i = 0; i < 16; i++) {
            float m = expect_misc(x, b, i);
            assert_same_float(arena[5 + 16 * N + b * 16 + i], m);
            tot = tot + m;
        }
    for (int b = 0; b < N; b++)
        ls = ls + want_s[b] * want_s[b];
    assert_same_float(grads[0], 10.0f + tot);
    assert_same_float(grads[1], 20.0f + (float)N);
    assert_same_float(loss[0], ls / (float)N);
    for (int i = 5 + 32 * N; i < 5 + 32 * N + GUARD; i++)
        assert_same_float(arena[i], -777.0f);
    dlclose(lib);
}

static void emit_ok(const Program *p, const char *dir)
{
    Diag d;
    diag_init(&d, stderr);
    assert_true(emit_c(p, dir, &d));
    assert_int_equal(d.nerror, 0);
    diag_free(&d);
}

/* ---- tests ---- */

static void test_compiles_and_runs(void **state)
{
    (void)state;
    Toy t;
    toy_build(&t, true, toy_meta_text);
    char *dir = make_tmpdir();
    emit_ok(&t.p, dir);
    int ran = 0;
    for (size_t c = 0; c < sizeof compilers / sizeof compilers[0]; c++) {
        if (!have(compilers[c])) {
            printf("  (no %s: skipped)\n", compilers[c]);
            continue;
        }
        char so[512];
        snprintf(so, sizeof so, "%s/toy_%s.so", dir, compilers[c]);
        run_ok("%s %s -shared -fPIC -o %s %s/toy.c -lm", compilers[c], strict, so, dir);
        check_library(so);
        ran++;
    }
    assert_true(ran > 0);
    remove_tree(dir);
    arena_free(t.a);
}

static void test_source_shape(void **state)
{
    (void)state;
    Toy t;
    toy_build(&t, true, toy_meta_text);
    char *dir = make_tmpdir(), path[512];
    emit_ok(&t.p, dir);
    snprintf(path, sizeof path, "%s/toy.c", dir);
    char *c = slurp(path, NULL);
    assert_non_null(c);
    static const char *const want[] = {
        "/* toy.c - generated by netc from toy.net; do not edit.\n",
        "#include <math.h>\n#include <stddef.h>\n\n#include \"toy.h\"\n",
        "static void k1_relu(int n, float *restrict y, const float *restrict x)\n{\n"
        "    const int i_end = n*16;\n"
        "    for (int i = 0; i < i_end; i++) {\n"
        "        y[i] = netc_fmax(x[i], 0.0f);\n"
        "    }\n}\n",
        "static void k4_grad(int n, float *restrict g, float *restrict loss, "
        "const float *restrict m, const float *restrict s)\n",
        "/* grad * / sneaky comment */\n",
        /* a select with a load in an arm: both evaluated, then picked */
        "        float prev = netc_fsel(1 <= i, x[b*16 + netc_imax(i - 1, 0)], 0.5f);\n",
        "static inline float netc_fsel(int c, float a, float b) { return c ? a : b; }\n",
        "static inline int netc_imin(int a, int b) { return a < b ? a : b; }\n",
        "static inline float netc_fmax(float a, float b) { return a > b ? a : b; }\n",
        "    k3_misc(n, arena + ((size_t)5 + (size_t)16*(size_t)n), in[0]); /* m */\n",
        "    k4_grad(n, grads, out[1], arena + ((size_t)5 + (size_t)16*(size_t)n), out[0]); /* loss */\n",
        "    k1_relu(n, arena + 3, in[0]); /* r */\n",
        "void toy_forward(int n, const float *params, float *grads, float *arena,\n"
        "    const float *const *in, float *const *out)\n{\n    (void)grads;\n",
        "    \"note \\\"quoted\\\" back\\\\slash ?\\?= tab\\011here \\303\\251\\n\"\n",
        "const float toy_weights[TOY_PARAM_FLOATS] = {\n    1.5f, -0.25f\n};\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(c, want[i]))
            fail_msg("toy.c lacks:\n%s\n--- toy.c:\n%s", want[i], c);
    /* no heap, no stdio, no host path, and unused kernels left out */
    assert_null(strstr(c, "malloc"));
    assert_null(strstr(c, "stdio"));
    assert_null(strstr(c, "some/dir"));
    assert_null(strstr(c, "k9_unused"));
    assert_non_null(strstr(c, "static inline int netc_imax(int a, int b)"));
    assert_non_null(strstr(c, "static inline float netc_fmin(float a, float b)"));
    free(c);
    remove_tree(dir);
    arena_free(t.a);
}

static void test_header(void **state)
{
    (void)state;
    Toy t;
    toy_build(&t, true, toy_meta_text);
    char *dir = make_tmpdir(), path[512];
    emit_ok(&t.p, dir);
    snprintf(path, sizeof path, "%s/toy.h", dir);
    char *h = slurp(path, NULL);
    assert_non_null(h);
    static const char *const want[] = {
        "#ifndef TOY_H_NETC\n#define TOY_H_NETC\n",
        "#include <stddef.h>\n",
        "#define TOY_PARAM_FLOATS 2\n",
        "#define TOY_ARENA_FLOATS(n) ((size_t)5 + (size_t)32*(size_t)(n))\n",
        "#define TOY_FORWARD_ARENA_FLOATS(n) ((size_t)3 + (size_t)16*(size_t)(n))\n",
        "#define TOY_TRAIN_ARENA_FLOATS(n) ((size_t)5 + (size_t)32*(size_t)(n))\n",
        "/*   in[0] x [N, 16] */\n#define TOY_FORWARD_IN0_FLOATS(n) ((size_t)16*(size_t)(n))\n",
        "/*   out[0] s [N, 1] */\n#define TOY_FORWARD_OUT0_FLOATS(n) ((size_t)1*(size_t)(n))\n",
        "/*   out[1] loss scalar */\n#define TOY_TRAIN_OUT1_FLOATS(n) ((size_t)1)\n",
        "void toy_forward(int n, const float *params, float *grads, float *arena,\n"
        "    const float *const *in, float *const *out);\n",
        "void toy_train(int n,",
        "extern const char toy_meta[];\n",
        "extern const float toy_weights[TOY_PARAM_FLOATS];\n",
        "static inline void toy_predict(int n, const float *params, float *arena,\n"
        "    const float *x, float *y)\n",
        "arena: 5 + 32*n floats (5 + 48*n without reuse); writes grads",
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(h, want[i]))
            fail_msg("toy.h lacks:\n%s\n--- toy.h:\n%s", want[i], h);
    free(h);

    /* The header alone, as emit-obj writes it, is the same text. */
    char alone[512];
    snprintf(alone, sizeof alone, "%s/alone.h", dir);
    Diag d;
    diag_init(&d, stderr);
    assert_true(emit_c_header(&t.p, alone, &d));
    diag_free(&d);
    size_t l1, l2;
    char *h1 = slurp(path, &l1), *h2 = slurp(alone, &l2);
    assert_true(l1 == l2 && memcmp(h1, h2, l1) == 0);
    free(h1);
    free(h2);

    /* Without weights: no weights symbol, and still compiles; a program
     * using the header's constants for static buffers compiles too. */
    arena_free(t.a);
    toy_build(&t, false, toy_meta_text);
    emit_ok(&t.p, dir);
    h = slurp(path, NULL);
    assert_null(strstr(h, "toy_weights"));
    free(h);
    snprintf(path, sizeof path, "%s/use.c", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("#include \"toy.h\"\n"
          "static float arena[TOY_FORWARD_ARENA_FLOATS(4)], x[TOY_FORWARD_IN0_FLOATS(4)];\n"
          "static float y[TOY_FORWARD_OUT0_FLOATS(4)], params[TOY_PARAM_FLOATS];\n"
          "int main(void) { toy_predict(4, params, arena, x, y); return y[0] != 0.0f; }\n", f);
    fclose(f);
    run_ok("cc %s -o %s/use %s %s/toy.c -lm && %s/use", strict, dir, path, dir, dir);
    remove_tree(dir);
    arena_free(t.a);
}

static void test_deterministic(void **state)
{
    (void)state;
    Toy t;
    toy_build(&t, true, toy_meta_text);
    char *d1 = make_tmpdir(), *d2 = make_tmpdir();
    emit_ok(&t.p, d1);
    emit_ok(&t.p, d2);
    emit_ok(&t.p, d2); /* over existing files */
    static const char *const files[] = {"toy.c", "toy.h"};
    for (int i = 0; i < 2; i++) {
        char p1[512], p2[512];
        snprintf(p1, sizeof p1, "%s/%s", d1, files[i]);
        snprintf(p2, sizeof p2, "%s/%s", d2, files[i]);
        size_t l1, l2;
        char *s1 = slurp(p1, &l1), *s2 = slurp(p2, &l2);
        assert_non_null(s1);
        assert_non_null(s2);
        assert_true(l1 == l2 && memcmp(s1, s2, l1) == 0);
        free(s1);
        free(s2);
    }
    /* no temporaries left behind */
    run_ok("test $(ls -A '%s' | wc -l) -eq 2", d2);
    remove_tree(d1);
    remove_tree(d2);
    arena_free(t.a);
}

static void test_unwritable(void **state)
{
    (void)state;
    Toy t;
    toy_build(&t, true, toy_meta_text);
    char *dir = make_tmpdir(), bad[512];
    emit_ok(&t.p, dir);
    FILE *null = fopen("/dev/null", "w");
    Diag d;

    /* toy.c is a file, so a directory under it cannot exist */
    diag_init(&d, null);
    snprintf(bad, sizeof bad, "%s/toy.c/sub", dir);
    assert_false(emit_c(&t.p, bad, &d));
    assert_true(d.nerror > 0);
    diag_free(&d);

    diag_init(&d, null);
    snprintf(bad, sizeof bad, "%s/toy.c", dir); /* a file where a directory should be */
    assert_false(emit_c(&t.p, bad, &d));
    assert_true(d.nerror > 0);
    diag_free(&d);

    diag_init(&d, null);
    snprintf(bad, sizeof bad, "%s/missing/deeper/main.c", dir);
    assert_false(emit_c_main(&t.p, bad, &d));
    assert_true(d.nerror > 0);
    diag_free(&d);

    diag_init(&d, null);
    snprintf(bad, sizeof bad, "%s/missing/toy.h", dir);
    assert_false(emit_c_header(&t.p, bad, &d));
    assert_true(d.nerror > 0);
    diag_free(&d);

    /* a missing output directory is created */
    diag_init(&d, null);
    snprintf(bad, sizeof bad, "%s/fresh", dir);
    assert_true(emit_c(&t.p, bad, &d));
    assert_int_equal(d.nerror, 0);
    diag_free(&d);
    fclose(null);
    remove_tree(dir);
    arena_free(t.a);
}

static void test_main(void **state)
{
    (void)state;
    Toy t;
    toy_build(&t, true, toy_meta_text);
    char *dir = make_tmpdir(), path[512];
    emit_ok(&t.p, dir);
    snprintf(path, sizeof path, "%s/toy_main.c", dir);
    Diag d;
    diag_init(&d, stderr);
    assert_true(emit_c_main(&t.p, path, &d));
    diag_free(&d);
    char *s = slurp(path, NULL);
    assert_non_null(strstr(s, "#include \"netc_runtime.h\"\n#include \"toy.h\"\n"));
    /* the toy has forward and train entries, no eval entry */
    assert_non_null(strstr(s, "static const NetcModel model = {toy_meta, toy_forward, toy_train, NULL, toy_weights, toy_set_parallel, NULL, NULL, NULL};"));
    assert_non_null(strstr(s, "return netc_run(argc, argv, &model);"));
    free(s);
    run_ok("cc %s -fsyntax-only -Iruntime -I%s %s", strict, dir, path);

    /* no weights, no train entry: NULLs */
    arena_free(t.a);
    toy_build(&t, false, toy_meta_text);
    t.p.nentry = 1;
    diag_init(&d, stderr);
    assert_true(emit_c_main(&t.p, path, &d));
    diag_free(&d);
    s = slurp(path, NULL);
    assert_non_null(strstr(s, "model = {toy_meta, toy_forward, NULL, NULL, NULL, toy_set_parallel, NULL, NULL, NULL};"));
    free(s);
    remove_tree(dir);
    arena_free(t.a);
}

/* A meta text longer than C99's 4095-character literal limit is emitted
 * as character codes, which -Wpedantic accepts; the bytes are the same. */
static void test_long_meta(void **state)
{
    (void)state;
    size_t n = 9000;
    char *meta = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        meta[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
    meta[n] = '\0';
    Toy t;
    toy_build(&t, true, meta);
    char *dir = make_tmpdir(), so[512];
    emit_ok(&t.p, dir);
    snprintf(so, sizeof so, "%s/toy.so", dir);
    run_ok("cc %s -shared -fPIC -o %s %s/toy.c -lm", strict, so, dir);
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    assert_string_equal((const char *)sym(lib, "toy_meta"), meta);
    dlclose(lib);
    free(meta);
    remove_tree(dir);
    arena_free(t.a);
}

/* Float constants are printed exactly: every special value survives. */
static void test_float_literals(void **state)
{
    (void)state;
    static const float vals[] = {0.0f, -0.0f, 0.1f, 1.0f / 3.0f, 16777216.0f, 3.4028235e38f,
                                 1.17549435e-38f, 1.4e-45f, -2.5e-7f, 1e10f, 123456.789f};
    Toy t;
    toy_build(&t, false, toy_meta_text);
    size_t nv = sizeof vals / sizeof vals[0];
    float *w = arena_alloc(t.a, sizeof(float) * nv);
    memcpy(w, vals, sizeof vals);
    /* weights: a program with nv params and no calls */
    t.p.param_floats = (long)nv;
    t.p.weights = w;
    char *dir = make_tmpdir(), so[512];
    emit_ok(&t.p, dir);
    snprintf(so, sizeof so, "%s/toy.so", dir);
    run_ok("cc %s -shared -fPIC -o %s %s/toy.c -lm", strict, so, dir);
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    const float *got = sym(lib, "toy_weights");
    for (size_t i = 0; i < nv; i++)
        assert_same_float(got[i], vals[i]);
    dlclose(lib);
    remove_tree(dir);
    arena_free(t.a);
}

/* ---- plans the C backend refuses to print ----
 * Each breaks one rule of the calling convention; emit_c must stop with an
 * internal error (abort) rather than write C that casts away const, writes
 * through NULL grads, runs past the arena or breaks restrict. */

static void written_param(Toy *t) { t->p.entry[0].call[0].arg[0] = loc_param(0); }
static void written_input(Toy *t) { t->p.entry[0].call[0].arg[0] = loc_in(0); }
static void grad_in_forward(Toy *t) { t->p.entry[0].call[1].arg[2] = loc_grad(0); }
static void arena_too_small(Toy *t) { t->p.entry[0].arena_per_n = 15; }
static void param_past_end(Toy *t) { t->p.entry[0].call[1].arg[2] = loc_param(1); }
static void alias_out(Toy *t) { t->p.entry[1].call[3].arg[1] = loc_out(0); }
static void alias_arena(Toy *t) { t->p.entry[0].call[1].arg[0] = loc_arena(3, 0); }
static void bad_kernel(Toy *t) { t->p.kernel[0]->buf[0].written = false; }
static void unlisted_kernel(Toy *t) { t->p.nkernel = 1; }

static void test_plan_checks(void **state)
{
    (void)state;
    static void (*const breakers[])(Toy *) = {
        written_param, written_input, grad_in_forward, arena_too_small, param_past_end,
        alias_out, alias_arena, bad_kernel, unlisted_kernel,
    };
    char *dir = make_tmpdir();
    for (size_t i = 0; i < sizeof breakers / sizeof breakers[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stderr))
                _exit(2);
            Toy t;
            toy_build(&t, true, toy_meta_text);
            breakers[i](&t);
            Diag d;
            diag_init(&d, stderr);
            emit_c(&t.p, dir, &d);
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
            fail_msg("breaker %zu: emit_c did not stop with an internal error", i);
    }
    /* the unbroken program passes the same checks */
    Toy t;
    toy_build(&t, true, toy_meta_text);
    emit_ok(&t.p, dir);
    arena_free(t.a);
    remove_tree(dir);
}

/* ---- docs/examples/lenet_predict.c against a stand-in "lenet" ----
 * forward(x [N,1,28,28]) -> y [N,10]: y[o] = sum_i x[i]*W[o,i] + bias[o],
 * with W[o,i] = 0.01 when i%10 == o, so an image lit at columns i%10 == 7
 * is class 7. */
static void test_docs_example(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Graph *g = fake_graph(a);
    int xn = add_node(g, "image", true, 3, 1, 28, 28);
    int yn = add_node(g, "fc3", true, 1, 10, 0, 0);
    Model m = {0};
    m.name = "lenet";
    m.arena = a;
    m.g = g;

    Kernel *k = kernel_new(a, "k1_dense", "dense fc3 [N, 784] -> [N, 10]");
    int y = kernel_buf(a, k, "y", true, 0, 10), x = kernel_buf(a, k, "x", false, 0, 784);
    int w = kernel_buf(a, k, "w", false, 7850, 0), h = kernel_buf(a, k, "h", true, 0, 10);
    int b = kernel_var(a, k, "b", T_I32), o = kernel_var(a, k, "o", T_I32), i = kernel_var(a, k, "i", T_I32);
    int acc = kernel_var(a, k, "acc", T_F32);
    Stmt *fb = st_for(a, b, I(a, 0), ex_batch(a));
    st_append(a, k->body, fb);
    Stmt *fo = st_for(a, o, I(a, 0), I(a, 10));
    st_append(a, fb, fo);
    st_append(a, fo, st_decl(a, acc, ex_load(a, w, B(a, X_ADD, I(a, 7840), V(a, k, o)))));
    Stmt *fi = st_for(a, i, I(a, 0), I(a, 784));
    st_append(a, fo, fi);
    Expr *xv = ex_load(a, x, B(a, X_ADD, B(a, X_MUL, V(a, k, b), I(a, 784)), V(a, k, i)));
    Expr *wv = ex_load(a, w, B(a, X_ADD, B(a, X_MUL, V(a, k, o), I(a, 784)), V(a, k, i)));
    st_append(a, fi, st_assign(a, acc, B(a, X_ADD, V(a, k, acc), B(a, X_MUL, xv, wv))));
    Expr *out = B(a, X_ADD, B(a, X_MUL, V(a, k, b), I(a, 10)), V(a, k, o));
    st_append(a, fo, st_store(a, h, out, V(a, k, acc), false)); /* through the arena */
    st_append(a, fo, st_store(a, y, out, ex_load(a, h, out), false));

    float *wts = arena_alloc(a, sizeof(float) * 7850);
    for (int oo = 0; oo < 10; oo++) {
        for (int ii = 0; ii < 784; ii++)
            wts[oo * 784 + ii] = ii % 10 == oo ? 0.01f : 0.0f;
        wts[7840 + oo] = 0.001f * (float)oo;
    }
    Program p = {0};
    p.m = &m;
    p.arena = a;
    p.nkernel = 1;
    p.kernel = &k;
    k->index = 0;
    p.nentry = 1;
    Entry e = {0};
    e.name = "forward";
    e.nin = e.nout = 1;
    e.in = &xn;
    e.out = &yn;
    e.ncall = 1;
    Call c = call(a, yn, k, 4, (Loc[]){loc_out(0), loc_in(0), loc_param(0), loc_arena(0, 0)});
    e.call = &c;
    e.arena_per_n = 10;
    e.naive_per_n = 10;
    p.entry = &e;
    p.param_floats = 7850;
    p.weights = wts;
    p.meta = "netc 1\nname lenet\nend\n";

    char *dir = make_tmpdir();
    emit_ok(&p, dir);
    run_ok("cc %s -I%s -o %s/lenet_predict docs/examples/lenet_predict.c %s/lenet.c -lm",
           strict, dir, dir, dir);
    char img[512];
    snprintf(img, sizeof img, "%s/shoe.raw", dir);
    FILE *f = fopen(img, "wb");
    assert_non_null(f);
    for (int ii = 0; ii < 784; ii++)
        fputc(ii % 10 == 7 ? 255 : 0, f);
    fclose(f);
    run_ok("%s/lenet_predict %s > %s/out.txt", dir, img, dir);
    char outp[512];
    snprintf(outp, sizeof outp, "%s/out.txt", dir);
    char *txt = slurp(outp, NULL);
    assert_non_null(strstr(txt, "predicted class 7 (Sneaker)\n"));
    free(txt);
    remove_tree(dir);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compiles_and_runs),
        cmocka_unit_test(test_source_shape),
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_unwritable),
        cmocka_unit_test(test_main),
        cmocka_unit_test(test_long_meta),
        cmocka_unit_test(test_float_literals),
        cmocka_unit_test(test_plan_checks),
        cmocka_unit_test(test_docs_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
