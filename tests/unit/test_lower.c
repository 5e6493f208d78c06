/* Tests of lowering (lower*.c): every op is lowered from a hand-built graph,
 * verified, run with the loop-IR interpreter and compared against plain
 * reference implementations written here with bounds checks.  Linear
 * gradients are checked with the adjoint identity against their forward
 * kernel, nonlinear ones by central finite differences of the forward
 * kernel. */
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

/* ---- a graph, its values and a batch size ---- */

#define MAXN 32

typedef struct {
    Arena *a;
    Model m;
    Sched s[MAXN];
    Kernel *kern[MAXN];
    float *val[MAXN];
    int n;             /* batch size */
    uint32_t rng;
    Algo conv_algo;    /* the schedule of conv, conv_dx and conv_dw nodes */
    float *scratch[8]; /* the kernels' scratch buffers, per run */
} T;

static T *t_new(int batch)
{
    T *t = calloc(1, sizeof *t);
    t->a = arena_new();
    t->m.arena = t->a;
    t->m.g = graph_new(t->a);
    t->m.grad_value = t->m.grad_seed = -1;
    t->n = batch;
    t->rng = 12345;
    t->conv_algo = ALGO_DIRECT;
    return t;
}

static void t_free(T *t)
{
    for (int i = 0; i < MAXN; i++)
        free(t->val[i]);
    for (int i = 0; i < 8; i++)
        free(t->scratch[i]);
    arena_free(t->a);
    free(t);
}

static Shape shape_of(bool batched, int rank, const int *d)
{
    Shape s = {0};
    s.rank = rank;
    s.batched = batched;
    for (int i = 0; i < rank; i++)
        s.d[i] = d[i];
    return s;
}
#define NARGS(...) ((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))
#define SB(...) shape_of(true, NARGS(__VA_ARGS__), (int[]){__VA_ARGS__})
#define SU(...) shape_of(false, NARGS(__VA_ARGS__), (int[]){__VA_ARGS__})
static const Shape scalar_u = {0, {0}, false};
static const Shape scalar_b = {0, {0}, true};

static Node *t_node(T *t, Op op, const char *name, Shape sh, int nin, const int *in)
{
    assert_true(t->m.g->nnode < MAXN);
    Node *n = graph_add(t->m.g, op, name, (SrcLoc){"test.net", 1, 1}, nin, in);
    n->shape = sh;
    Algo algo = ALGO_DIRECT;
    if (op_flags(op) & OPF_SOURCE)
        algo = ALGO_NONE;
    else if (op == OP_CONV || op == OP_CONV_DX || op == OP_CONV_DW)
        algo = t->conv_algo;
    if (op == OP_DENSE || op == OP_DENSE_DX || op == OP_DENSE_DW)
        algo = ALGO_GEMM;
    t->s[n->id] = (Sched){.algo = algo, .why = "test"};
    return n;
}

static int t_input(T *t, const char *name, Shape sh)
{
    return t_node(t, OP_INPUT, name, sh, 0, NULL)->id;
}

static int t_param(T *t, const char *name, Shape sh)
{
    return t_node(t, OP_PARAM, name, sh, 0, NULL)->id;
}

static const Node *t_at(const T *t, int id)
{
    return graph_node(t->m.g, id);
}

static long t_size(const T *t, int id)
{
    const Shape *s = &t_at(t, id)->shape;
    return shape_numel(s) * (s->batched ? t->n : 1);
}

static float *t_val(T *t, int id)
{
    if (!t->val[id])
        t->val[id] = calloc((size_t)t_size(t, id) + 1, sizeof(float));
    return t->val[id];
}

static float t_uniform(T *t, float lo, float hi)
{
    t->rng = t->rng * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(t->rng >> 8) / (float)(1u << 24);
}

static void t_rand(T *t, int id)
{
    float *v = t_val(t, id);
    for (long i = 0; i < t_size(t, id); i++)
        v[i] = t_uniform(t, -1.0f, 1.0f);
}

static bool has_if(const Stmt *s)
{
    if (s->k == S_IF)
        return true;
    for (int i = 0; i < s->nbody; i++)
        if (has_if(s->body[i]))
            return true;
    return false;
}

/* Lowers node id once: the kernel verifies, is named k<id>_<op>, has one
 * buffer per value sized like it (then its scratch buffers), and has no
 * per-element branches. */
static Kernel *t_kernel(T *t, int id)
{
    if (t->kern[id])
        return t->kern[id];
    const Node *n = t_at(t, id);
    Kernel *k = lower_node(t->a, &t->m, t->s, target_reference(), id);
    assert_non_null(k);
    if (!kernel_verify(k, stderr)) {
        kernel_print(stderr, k);
        fail_msg("kernel of %s does not verify", n->name);
    }
    char name[64];
    snprintf(name, sizeof name, "k%d_%s", id, op_name(n->op));
    assert_string_equal(k->name, name);
    assert_non_null(strstr(k->comment, n->name));
    assert_true(k->nbuf >= 1 + n->nin && k->nbuf <= 1 + n->nin + 8);
    for (int i = 1 + n->nin; i < k->nbuf; i++)
        assert_true(k->buf[i].scratch && k->buf[i].written);
    for (int i = 0; i < 1 + n->nin; i++) {
        const Shape *s = &t_at(t, i ? n->in[i - 1] : id)->shape;
        long e = shape_numel(s);
        assert_int_equal(k->buf[i].size_fixed, s->batched ? 0 : e);
        assert_int_equal(k->buf[i].size_per_n, s->batched ? e : 0);
        assert_int_equal(k->buf[i].written, i == 0);
    }
    assert_false(has_if(k->body));
    t->kern[id] = k;
    return k;
}

/* Computes node id from its inputs' current values.  The output and the
 * scratch buffers start as NaN so an element the kernel forgets to write
 * shows up. */
static void t_run(T *t, int id)
{
    Kernel *k = t_kernel(t, id);
    const Node *n = t_at(t, id);
    float *bufs[16];
    assert_true(n->nin < 8 && k->nbuf <= 16);
    bufs[0] = t_val(t, id);
    for (long i = 0; i < t_size(t, id); i++)
        bufs[0][i] = NAN;
    for (int i = 0; i < n->nin; i++)
        bufs[1 + i] = t_val(t, n->in[i]);
    for (int i = 1 + n->nin, j = 0; i < k->nbuf; i++, j++) {
        long e = k->buf[i].size_fixed + k->buf[i].size_per_n * t->n;
        free(t->scratch[j]);
        t->scratch[j] = malloc((size_t)(e + 1) * sizeof(float));
        for (long q = 0; q <= e; q++)
            t->scratch[j][q] = NAN;
        bufs[i] = t->scratch[j];
    }
    kernel_eval(k, t->n, bufs);
}

static double t_dot(T *t, int a, int b)
{
    assert_int_equal(t_size(t, a), t_size(t, b));
    const float *x = t_val(t, a), *y = t_val(t, b);
    double s = 0;
    for (long i = 0; i < t_size(t, a); i++)
        s += (double)x[i] * y[i];
    return s;
}

/* sum |a_i b_i|: the scale of a dot product's rounding error */
static double t_absdot(T *t, int a, int b)
{
    const float *x = t_val(t, a), *y = t_val(t, b);
    double s = 0;
    for (long i = 0; i < t_size(t, a); i++)
        s += fabs((double)x[i] * y[i]);
    return s;
}

static void check_close(const char *what, const float *got, const double *want, long n, double atol,
                         double rtol)
{
    for (long i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= atol + rtol * fabs(want[i])))
            fail_msg("%s[%ld]: got %.9g, want %.9g", what, i, (double)got[i], want[i]);
    }
}

static void check_value(T *t, int id, const double *want)
{
    check_close(t_at(t, id)->name, t_val(t, id), want, t_size(t, id), 1e-5, 1e-4);
}

static void check_adjoint(const char *what, double lhs, double rhs, double scale)
{
    if (!(fabs(lhs - rhs) <= 1e-4 * scale + 1e-6))
        fail_msg("%s: adjoint identity off: %.9g vs %.9g (scale %.3g)", what, lhs, rhs, scale);
}

/* Checks gradient value gid (shaped like xid) against central differences
 * of f(x) = <seed, fwd(x)>, or of the scalar fwd(x) when seed < 0. */
static void check_fd(T *t, int fwd, int xid, int seed, int gid, float eps, double atol, double rtol)
{
    float *x = t_val(t, xid);
    const float *g = t_val(t, gid);
    for (long i = 0; i < t_size(t, xid); i++) {
        float old = x[i], hi = old + eps, lo = old - eps;
        x[i] = hi;
        t_run(t, fwd);
        double fp = seed >= 0 ? t_dot(t, seed, fwd) : t_val(t, fwd)[0];
        x[i] = lo;
        t_run(t, fwd);
        double fm = seed >= 0 ? t_dot(t, seed, fwd) : t_val(t, fwd)[0];
        x[i] = old;
        double fd = (fp - fm) / ((double)hi - lo);
        if (!(fabs(fd - g[i]) <= atol + rtol * fabs(fd)))
            fail_msg("%s[%ld]: gradient %.7g, finite difference %.7g", t_at(t, gid)->name, i,
                     (double)g[i], fd);
    }
}

/* ---- convolution ---- */

/* A convolution written in 3D form: the leading 3 - nsp axes have extent,
 * kernel, stride and dilation 1 and no padding. */
typedef struct {
    int nsp, N, C, O, groups;
    bool bias;
    int in[3], k[3], s[3], d[3], plo[3], phi[3];
} ConvCase;

static int conv_out(const ConvCase *c, int a)
{
    return (c->in[a] + c->plo[a] + c->phi[a] - c->d[a] * (c->k[a] - 1) - 1) / c->s[a] + 1;
}

/* y[n, o, od, oh, ow] = b[o] + sum over c of its group and k of w * x, taps
 * outside the input skipped. */
static void ref_conv(const ConvCase *c, const float *x, const float *w, const float *b, double *y)
{
    int out[3] = {conv_out(c, 0), conv_out(c, 1), conv_out(c, 2)};
    int cg = c->C / c->groups, og = c->O / c->groups;
    long yi = 0;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int od = 0; od < out[0]; od++)
                for (int oh = 0; oh < out[1]; oh++)
                    for (int ow = 0; ow < out[2]; ow++) {
                        double acc = c->bias ? b[o] : 0.0;
                        int g = o / og;
                        for (int ci = 0; ci < cg; ci++)
                            for (int kd = 0; kd < c->k[0]; kd++)
                                for (int kh = 0; kh < c->k[1]; kh++)
                                    for (int kw = 0; kw < c->k[2]; kw++) {
                                        int id = od * c->s[0] - c->plo[0] + kd * c->d[0];
                                        int ih = oh * c->s[1] - c->plo[1] + kh * c->d[1];
                                        int iw = ow * c->s[2] - c->plo[2] + kw * c->d[2];
                                        if (id < 0 || id >= c->in[0] || ih < 0 || ih >= c->in[1] ||
                                            iw < 0 || iw >= c->in[2])
                                            continue;
                                        int ch = g * cg + ci;
                                        long xi = (((long)n * c->C + ch) * c->in[0] + id) * c->in[1];
                                        xi = (xi + ih) * c->in[2] + iw;
                                        long wi = (((long)o * cg + ci) * c->k[0] + kd) * c->k[1];
                                        wi = (wi + kh) * c->k[2] + kw;
                                        acc += (double)w[wi] * x[xi];
                                    }
                        y[yi++] = acc;
                    }
}

/* The per-sample shape [C, spatial...] of a ConvCase tensor. */
static Shape conv_shape(const ConvCase *c, int ch, const int *sp, bool batched)
{
    Shape s = {0};
    s.batched = batched;
    s.rank = 1 + c->nsp;
    s.d[0] = ch;
    for (int i = 0; i < c->nsp; i++)
        s.d[1 + i] = sp[3 - c->nsp + i];
    return s;
}

static void run_conv_case_algo(const ConvCase *c, Algo algo)
{
    T *t = t_new(c->N);
    t->conv_algo = algo;
    int out[3] = {conv_out(c, 0), conv_out(c, 1), conv_out(c, 2)};
    ConvParam p = {0};
    p.nsp = c->nsp;
    p.out_channels = c->O;
    p.groups = c->groups;
    p.bias = c->bias;
    for (int i = 0; i < c->nsp; i++) {
        int a = 3 - c->nsp + i;
        p.kernel[i] = c->k[a];
        p.stride[i] = c->s[a];
        p.dilation[i] = c->d[a];
        p.pad_lo[i] = c->plo[a];
        p.pad_hi[i] = c->phi[a];
    }
    Shape xs = conv_shape(c, c->C, c->in, true), ys = conv_shape(c, c->O, out, true);
    Shape ws = {0};
    ws.rank = 2 + c->nsp;
    ws.d[0] = c->O;
    ws.d[1] = c->C / c->groups;
    for (int i = 0; i < c->nsp; i++)
        ws.d[2 + i] = c->k[3 - c->nsp + i];

    int x = t_input(t, "x", xs);
    int w = t_param(t, "c.weight", ws);
    int b = c->bias ? t_param(t, "c.bias", SU(c->O)) : -1;
    int in[3] = {x, w, b};
    Node *conv = t_node(t, OP_CONV, "c", ys, c->bias ? 3 : 2, in);
    conv->p.conv = p;
    int dy = t_input(t, "c.grad", ys);
    Node *dx = t_node(t, OP_CONV_DX, "c.dx", xs, 2, (int[]){dy, w});
    dx->p.conv = p;
    Node *dw = t_node(t, OP_CONV_DW, "c.dw", ws, 2, (int[]){x, dy});
    dw->p.conv = p;
    int db = t_node(t, OP_BIAS_GRAD, "c.db", SU(c->O), 1, &dy)->id;

    t_rand(t, x);
    t_rand(t, w);
    t_rand(t, dy);
    if (c->bias)
        t_rand(t, b);
    t_run(t, conv->id);
    double *want = calloc((size_t)t_size(t, conv->id), sizeof(double));
    ref_conv(c, t_val(t, x), t_val(t, w), c->bias ? t_val(t, b) : NULL, want);
    check_value(t, conv->id, want);
    free(want);

    /* <conv(x; w) + b, dy> == <x, conv_dx(dy; w)> + <b, db> == <w, conv_dw(x, dy)> + <b, db> */
    t_run(t, dx->id);
    t_run(t, dw->id);
    t_run(t, db);
    double lhs = t_dot(t, conv->id, dy), scale = t_absdot(t, conv->id, dy);
    double bias_term = c->bias ? t_dot(t, b, db) : 0.0;
    check_adjoint("conv_dx", lhs, t_dot(t, x, dx->id) + bias_term, scale);
    check_adjoint("conv_dw", lhs, t_dot(t, w, dw->id) + bias_term, scale);

    /* db[o] = sum of dy over batch and pixels */
    int osz = out[0] * out[1] * out[2];
    double *dbw = calloc((size_t)c->O, sizeof(double));
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int i = 0; i < osz; i++)
                dbw[o] += t_val(t, dy)[((long)n * c->O + o) * osz + i];
    check_value(t, db, dbw);
    free(dbw);
    t_free(t);
}

/* Every convolution case runs through each convolution algorithm. */
static void run_conv_case(const ConvCase *c)
{
    run_conv_case_algo(c, ALGO_DIRECT);
    run_conv_case_algo(c, ALGO_IM2COL);
}

static void test_conv1d(void **state)
{
    (void)state;
    /* stride 2, dilation 2, asymmetric padding */
    ConvCase c = {.nsp = 1, .N = 2, .C = 3, .O = 4, .groups = 1, .bias = true,
                  .in = {1, 1, 11}, .k = {1, 1, 3}, .s = {1, 1, 2}, .d = {1, 1, 2},
                  .plo = {0, 0, 2}, .phi = {0, 0, 1}};
    run_conv_case(&c);
}

static void test_conv2d(void **state)
{
    (void)state;
    /* groups 2, rectangular kernel, mixed stride/dilation, asymmetric pads */
    ConvCase c = {.nsp = 2, .N = 2, .C = 4, .O = 6, .groups = 2, .bias = true,
                  .in = {1, 7, 8}, .k = {1, 3, 2}, .s = {1, 2, 1}, .d = {1, 1, 2},
                  .plo = {0, 1, 0}, .phi = {0, 2, 1}};
    run_conv_case(&c);
    /* stride 3 with padding 2: some taps never land inside the input */
    ConvCase c2 = {.nsp = 2, .N = 1, .C = 2, .O = 3, .groups = 1, .bias = true,
                   .in = {1, 5, 5}, .k = {1, 3, 3}, .s = {1, 3, 3}, .d = {1, 1, 1},
                   .plo = {0, 2, 2}, .phi = {0, 2, 2}};
    run_conv_case(&c2);
    /* 1x1, no bias */
    ConvCase c3 = {.nsp = 2, .N = 3, .C = 5, .O = 3, .groups = 1, .bias = false,
                   .in = {1, 4, 4}, .k = {1, 1, 1}, .s = {1, 1, 1}, .d = {1, 1, 1}};
    run_conv_case(&c3);
}

/* Shapes that take conv_dw's other im2col forms: 16 output channels per
 * group (dw through its transpose) and >= 256 output pixels (the dot form
 * with lane sums), each with groups and padding. */
static void test_conv_dw_forms(void **state)
{
    (void)state;
    ConvCase t = {.nsp = 2, .N = 2, .C = 4, .O = 32, .groups = 2, .bias = true,
                  .in = {1, 5, 6}, .k = {1, 3, 3}, .s = {1, 1, 2}, .d = {1, 1, 1},
                  .plo = {0, 1, 0}, .phi = {0, 1, 1}};
    run_conv_case(&t);
    ConvCase dot = {.nsp = 2, .N = 2, .C = 2, .O = 6, .groups = 2, .bias = true,
                    .in = {1, 17, 18}, .k = {1, 3, 2}, .s = {1, 1, 1}, .d = {1, 2, 1},
                    .plo = {0, 2, 1}, .phi = {0, 1, 0}};
    run_conv_case(&dot);
    /* pointwise, 16 outputs and many pixels */
    ConvCase pw = {.nsp = 1, .N = 2, .C = 3, .O = 16, .groups = 1, .bias = false,
                   .in = {1, 1, 300}, .k = {1, 1, 1}, .s = {1, 1, 1}, .d = {1, 1, 1}};
    run_conv_case(&pw);
    ConvCase pwdot = {.nsp = 1, .N = 1, .C = 3, .O = 5, .groups = 1, .bias = false,
                      .in = {1, 1, 300}, .k = {1, 1, 1}, .s = {1, 1, 1}, .d = {1, 1, 1}};
    run_conv_case(&pwdot);
}

static void test_conv_depthwise(void **state)
{
    (void)state;
    /* groups = C with a channel multiplier of 2, no bias */
    ConvCase c = {.nsp = 2, .N = 2, .C = 3, .O = 6, .groups = 3, .bias = false,
                  .in = {1, 6, 6}, .k = {1, 3, 3}, .s = {1, 1, 1}, .d = {1, 1, 1},
                  .plo = {0, 1, 1}, .phi = {0, 1, 1}};
    run_conv_case(&c);
}

/* winograd */
/* 3x3 stride-1 layers through both Winograd tile sizes: ragged tiles
 * (planes of 7x5, 9x10), padding 0, 1, 2 and asymmetric, groups, batch 2
 * and 3; conv_dx and conv_dw by the adjoint identity.  6x6 planes have 4
 * (F(4x4)) or 9 (F(2x2)) tiles, so blocks of 8 samples: batch 11 ends in
 * a block of 3, whose missing samples' dy columns the weight gradient
 * must zero. */
static void test_conv_winograd(void **state)
{
    (void)state;
    static const ConvCase cases[] = {
        {.nsp = 2, .N = 2, .C = 3, .O = 5, .groups = 1, .bias = true,
         .in = {1, 7, 5}, .k = {1, 3, 3}, .s = {1, 1, 1}, .d = {1, 1, 1}},
        {.nsp = 2, .N = 3, .C = 4, .O = 6, .groups = 2, .bias = false,
         .in = {1, 9, 10}, .k = {1, 3, 3}, .s = {1, 1, 1}, .d = {1, 1, 1},
         .plo = {0, 1, 1}, .phi = {0, 1, 1}},
        {.nsp = 2, .N = 2, .C = 2, .O = 3, .groups = 1, .bias = true,
         .in = {1, 6, 8}, .k = {1, 3, 3}, .s = {1, 1, 1}, .d = {1, 1, 1},
         .plo = {0, 2, 0}, .phi = {0, 1, 2}},
        {.nsp = 2, .N = 11, .C = 4, .O = 4, .groups = 2, .bias = true,
         .in = {1, 6, 6}, .k = {1, 3, 3}, .s = {1, 1, 1}, .d = {1, 1, 1},
         .plo = {0, 1, 1}, .phi = {0, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_conv_case_algo(&cases[i], ALGO_WINOGRAD);
        run_conv_case_algo(&cases[i], ALGO_WINOGRAD2);
    }
}

/* fft: blocks of several samples (6x6 planes are a few tiles each),
 * batch 11 ending in a ragged block, through the forward pass and both
 * gradients (conv_dw zeroes the missing samples' dy columns). */
static void test_conv_fft_blocks(void **state)
{
    (void)state;
    ConvCase c = {.nsp = 2, .N = 11, .C = 4, .O = 4, .groups = 2, .bias = true,
                  .in = {1, 6, 6}, .k = {1, 3, 3}, .s = {1, 1, 1}, .d = {1, 1, 1},
                  .plo = {0, 1, 1}, .phi = {0, 1, 1}};
    run_conv_case_algo(&c, ALGO_FFT);
}

static void test_conv3d(void **state)
{
    (void)state;
    ConvCase c = {.nsp = 3, .N = 2, .C = 2, .O = 3, .groups = 1, .bias = true,
                  .in = {4, 5, 6}, .k = {2, 3, 3}, .s = {1, 2, 1}, .d = {1, 1, 2},
                  .plo = {0, 1, 2}, .phi = {1, 0, 1}};
    run_conv_case(&c);
}

/* ---- pooling ---- */

typedef struct {
    int nsp, N, C;
    int in[3], k[3], s[3], plo[3], phi[3];
    bool include_pad;
} PoolCase;

static int pool_out(const PoolCase *c, int a)
{
    return (c->in[a] + c->plo[a] + c->phi[a] - c->k[a]) / c->s[a] + 1;
}

/* The running state of one window: max or sum, the first maximum's flat
 * input index (-1 before any tap), and the number of in-bounds taps. */
typedef struct {
    double acc;
    long arg;
    int taps;
} Win;

/* PyTorch's average divisor (see the pool lowering): per axis
 * min(start + k, I + pad_hi) - start with padding counted, else the taps. */
static int ref_avg_divisor(const PoolCase *c, const int *o, int taps)
{
    if (!c->include_pad)
        return taps ? taps : 1;
    int div = 1;
    for (int a = 0; a < 3; a++) {
        int start = o[a] * c->s[a] - c->plo[a];
        int end = start + c->k[a] < c->in[a] + c->phi[a] ? start + c->k[a] : c->in[a] + c->phi[a];
        div *= end - start;
    }
    return div;
}

/* y (max or average) and, given dy, the max pool's dx by routing. */
static void ref_pool(const PoolCase *c, bool max, const float *x, const float *dy, double *y, double *dx)
{
    int out[3] = {pool_out(c, 0), pool_out(c, 1), pool_out(c, 2)};
    long yi = 0;
    for (long plane = 0; plane < (long)c->N * c->C; plane++)
        for (int od = 0; od < out[0]; od++)
            for (int oh = 0; oh < out[1]; oh++)
                for (int ow = 0; ow < out[2]; ow++, yi++) {
                    Win w = {0.0, -1, 0};
                    double sum = 0;
                    for (int kd = 0; kd < c->k[0]; kd++)
                        for (int kh = 0; kh < c->k[1]; kh++)
                            for (int kw = 0; kw < c->k[2]; kw++) {
                                int id = od * c->s[0] - c->plo[0] + kd;
                                int ih = oh * c->s[1] - c->plo[1] + kh;
                                int iw = ow * c->s[2] - c->plo[2] + kw;
                                if (id < 0 || id >= c->in[0] || ih < 0 || ih >= c->in[1] || iw < 0 ||
                                    iw >= c->in[2])
                                    continue;
                                long i = ((plane * c->in[0] + id) * c->in[1] + ih) * c->in[2] + iw;
                                w.taps++;
                                sum += x[i];
                                /* the first maximum in window order wins */
                                if (w.arg < 0 || x[i] > w.acc) {
                                    w.arg = i;
                                    w.acc = x[i];
                                }
                            }
                    if (max) {
                        y[yi] = w.acc;
                        if (dx)
                            dx[w.arg] += dy[yi];
                    } else {
                        int o[3] = {od, oh, ow};
                        y[yi] = w.taps ? sum / ref_avg_divisor(c, o, w.taps) : 0.0;
                    }
                }
}

static Shape pool_shape(const PoolCase *c, const int *sp)
{
    Shape s = {0};
    s.batched = true;
    s.rank = 1 + c->nsp;
    s.d[0] = c->C;
    for (int i = 0; i < c->nsp; i++)
        s.d[1 + i] = sp[3 - c->nsp + i];
    return s;
}

static PoolParam pool_param(const PoolCase *c)
{
    PoolParam p = {0};
    p.nsp = c->nsp;
    p.count_include_pad = c->include_pad;
    for (int i = 0; i < c->nsp; i++) {
        int a = 3 - c->nsp + i;
        p.kernel[i] = c->k[a];
        p.stride[i] = c->s[a];
        p.pad_lo[i] = c->plo[a];
        p.pad_hi[i] = c->phi[a];
    }
    return p;
}

/* Distinct values 0.05 apart in a shuffled order, so a finite-difference
 * step of 1e-3 never changes which element is a window's maximum. */
static void distinct_values(T *t, int id)
{
    long n = t_size(t, id);
    float *v = t_val(t, id);
    for (long i = 0; i < n; i++)
        v[i] = 0.05f * (float)(i - n / 2);
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(t_uniform(t, 0.0f, 1.0f) * (float)(i + 1)) % (i + 1);
        float tmp = v[i];
        v[i] = v[j];
        v[j] = tmp;
    }
}

static void run_maxpool_case(const PoolCase *c)
{
    T *t = t_new(c->N);
    int out[3] = {pool_out(c, 0), pool_out(c, 1), pool_out(c, 2)};
    Shape xs = pool_shape(c, c->in), ys = pool_shape(c, out);
    int x = t_input(t, "x", xs);
    Node *y = t_node(t, OP_MAXPOOL, "mp", ys, 1, &x);
    y->p.pool = pool_param(c);
    int dy = t_input(t, "mp.grad", ys);
    Node *dx = t_node(t, OP_MAXPOOL_DX, "mp.dx", xs, 2, (int[]){x, dy});
    dx->p.pool = y->p.pool;

    long nx = t_size(t, x), ny = t_size(t, y->id);
    double *wy = calloc((size_t)ny, sizeof(double)), *wdx = calloc((size_t)nx, sizeof(double));
    distinct_values(t, x);
    t_rand(t, dy);
    t_run(t, y->id);
    t_run(t, dx->id);
    ref_pool(c, true, t_val(t, x), t_val(t, dy), wy, wdx);
    check_value(t, y->id, wy);
    check_value(t, dx->id, wdx);
    check_fd(t, y->id, x, dy, dx->id, 1e-3f, 1e-3, 1e-3);

    /* All-equal windows: the gradient goes to each window's first element. */
    for (long i = 0; i < nx; i++)
        t_val(t, x)[i] = 0.5f;
    memset(wdx, 0, sizeof(double) * (size_t)nx);
    t_run(t, y->id);
    t_run(t, dx->id);
    ref_pool(c, true, t_val(t, x), t_val(t, dy), wy, wdx);
    check_value(t, y->id, wy);
    check_value(t, dx->id, wdx);
    free(wy);
    free(wdx);
    t_free(t);
}

static void run_avgpool_case(const PoolCase *c)
{
    T *t = t_new(c->N);
    int out[3] = {pool_out(c, 0), pool_out(c, 1), pool_out(c, 2)};
    Shape xs = pool_shape(c, c->in), ys = pool_shape(c, out);
    int x = t_input(t, "x", xs);
    Node *y = t_node(t, OP_AVGPOOL, "ap", ys, 1, &x);
    y->p.pool = pool_param(c);
    int dy = t_input(t, "ap.grad", ys);
    Node *dx = t_node(t, OP_AVGPOOL_DX, "ap.dx", xs, 1, &dy);
    dx->p.pool = y->p.pool;

    double *wy = calloc((size_t)t_size(t, y->id), sizeof(double));
    t_rand(t, x);
    t_rand(t, dy);
    t_run(t, y->id);
    ref_pool(c, false, t_val(t, x), NULL, wy, NULL);
    check_value(t, y->id, wy);
    free(wy);
    /* <avgpool(x), dy> == <x, avgpool_dx(dy)> */
    t_run(t, dx->id);
    check_adjoint("avgpool_dx", t_dot(t, y->id, dy), t_dot(t, x, dx->id), t_absdot(t, y->id, dy));
    t_free(t);
}

static const PoolCase pool_cases[] = {
    /* 1D, overlapping windows, padding */
    {.nsp = 1, .N = 2, .C = 2, .in = {1, 1, 9}, .k = {1, 1, 3}, .s = {1, 1, 2},
     .plo = {0, 0, 1}, .phi = {0, 0, 1}, .include_pad = true},
    /* 2D 3x3 stride 2 (AlexNet-style overlap), asymmetric padding */
    {.nsp = 2, .N = 2, .C = 3, .in = {1, 7, 6}, .k = {1, 3, 3}, .s = {1, 2, 2},
     .plo = {0, 1, 0}, .phi = {0, 1, 1}, .include_pad = true},
    {.nsp = 2, .N = 2, .C = 3, .in = {1, 7, 6}, .k = {1, 3, 3}, .s = {1, 2, 2},
     .plo = {0, 1, 0}, .phi = {0, 1, 1}, .include_pad = false},
    /* 2D 2x2 stride 2, no padding */
    {.nsp = 2, .N = 3, .C = 2, .in = {1, 6, 6}, .k = {1, 2, 2}, .s = {1, 2, 2}, .include_pad = true},
    /* windows that tile the input (stride == kernel, no padding): rows of
     * 8 windows and of fewer, and input rows and columns in no window */
    {.nsp = 2, .N = 2, .C = 2, .in = {1, 7, 17}, .k = {1, 2, 2}, .s = {1, 2, 2}, .include_pad = true},
    {.nsp = 1, .N = 2, .C = 3, .in = {1, 1, 20}, .k = {1, 1, 3}, .s = {1, 1, 3}, .include_pad = true},
    {.nsp = 3, .N = 2, .C = 2, .in = {4, 5, 6}, .k = {2, 2, 2}, .s = {2, 2, 2}, .include_pad = true},
    /* 3D with padding on every axis */
    {.nsp = 3, .N = 2, .C = 2, .in = {4, 5, 5}, .k = {2, 3, 2}, .s = {2, 1, 2},
     .plo = {0, 1, 0}, .phi = {1, 1, 1}, .include_pad = true},
    {.nsp = 3, .N = 1, .C = 2, .in = {4, 5, 5}, .k = {2, 3, 2}, .s = {2, 1, 2},
     .plo = {1, 1, 1}, .phi = {1, 0, 1}, .include_pad = false},
};

static void test_maxpool(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++)
        run_maxpool_case(&pool_cases[i]);
}

/* Ties, signed zeros, infinities and NaNs in windows that tile the input
 * (rows of 9 and of 3 windows): y and dx bit for bit as PyTorch's kernel
 * computes them, the first maximum in window order winning, a NaN
 * replacing the running maximum, dx zeroed and then dy added at the argmax. */
static void test_maxpool_special(void **state)
{
    (void)state;
    static const float vals[] = {0.0f, -0.0f, 1.0f, NAN, -INFINITY, 1.0f, -0.0f, 2.0f, INFINITY};
    const int nv = (int)(sizeof vals / sizeof vals[0]);
    for (int wide = 0; wide < 2; wide++) {
        PoolCase c = {.nsp = 2, .N = 2, .C = 2, .in = {1, 4, wide ? 18 : 6}, .k = {1, 2, 2},
                      .s = {1, 2, 2}};
        T *t = t_new(c.N);
        int out[3] = {1, 2, wide ? 9 : 3};
        Shape xs = pool_shape(&c, c.in), ys = pool_shape(&c, out);
        int x = t_input(t, "x", xs);
        Node *y = t_node(t, OP_MAXPOOL, "mp", ys, 1, &x);
        y->p.pool = pool_param(&c);
        int dy = t_input(t, "mp.grad", ys);
        Node *dx = t_node(t, OP_MAXPOOL_DX, "mp.dx", xs, 2, (int[]){x, dy});
        dx->p.pool = y->p.pool;
        long nx = t_size(t, x), ny = t_size(t, y->id);
        float *xv = t_val(t, x), *dyv = t_val(t, dy);
        for (long i = 0; i < nx; i++)
            xv[i] = vals[(i * 7 + i / 5) % nv];
        for (long i = 0; i < ny; i++)
            dyv[i] = i % 3 ? (float)i - 4.5f : -0.0f;
        t_run(t, y->id);
        t_run(t, dx->id);
        float *wy = calloc((size_t)ny, sizeof(float)), *wdx = calloc((size_t)nx, sizeof(float));
        int iw = c.in[2], ow = out[2];
        for (long yi = 0; yi < ny; yi++) {
            long plane = yi / (2 * ow), oh = yi / ow % 2, o = yi % ow;
            long first = (plane * 4 + oh * 2) * iw + o * 2, arg = first;
            float m = xv[first];
            for (int tap = 1; tap < 4; tap++) {
                long i = first + tap / 2 * iw + tap % 2;
                if (xv[i] > m || isnan(xv[i])) {
                    m = xv[i];
                    arg = i;
                }
            }
            wy[yi] = m;
            wdx[arg] += dyv[yi];
        }
        if (memcmp(wy, t_val(t, y->id), sizeof(float) * (size_t)ny) != 0)
            fail_msg("maxpool special values: y differs (wide %d)", wide);
        if (memcmp(wdx, t_val(t, dx->id), sizeof(float) * (size_t)nx) != 0)
            fail_msg("maxpool special values: dx differs (wide %d)", wide);
        free(wy);
        free(wdx);
        t_free(t);
    }
}

static void test_avgpool(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++)
        run_avgpool_case(&pool_cases[i]);
}

/* ---- dense ---- */

static void run_dense(bool bias)
{
    enum { N = 3, I = 7, U = 5 };
    T *t = t_new(N);
    int x = t_input(t, "x", SB(I));
    int w = t_param(t, "d.weight", SU(U, I));
    int b = bias ? t_param(t, "d.bias", SU(U)) : -1;
    Node *y = t_node(t, OP_DENSE, "d", SB(U), bias ? 3 : 2, (int[]){x, w, b});
    y->p.dense = (DenseParam){U, bias};
    int dy = t_input(t, "d.grad", SB(U));
    int dx = t_node(t, OP_DENSE_DX, "d.dx", SB(I), 2, (int[]){dy, w})->id;
    int dw = t_node(t, OP_DENSE_DW, "d.dw", SU(U, I), 2, (int[]){x, dy})->id;
    int db = t_node(t, OP_BIAS_GRAD, "d.db", SU(U), 1, &dy)->id;
    t_rand(t, x);
    t_rand(t, w);
    t_rand(t, dy);
    if (bias)
        t_rand(t, b);
    t_run(t, y->id);
    double want[N * U];
    for (int n = 0; n < N; n++)
        for (int u = 0; u < U; u++) {
            double acc = bias ? t_val(t, b)[u] : 0.0;
            for (int i = 0; i < I; i++)
                acc += (double)t_val(t, x)[n * I + i] * t_val(t, w)[u * I + i];
            want[n * U + u] = acc;
        }
    check_value(t, y->id, want);
    t_run(t, dx);
    t_run(t, dw);
    t_run(t, db);
    double lhs = t_dot(t, y->id, dy), scale = t_absdot(t, y->id, dy);
    double bias_term = bias ? t_dot(t, b, db) : 0.0;
    check_adjoint("dense_dx", lhs, t_dot(t, x, dx) + bias_term, scale);
    check_adjoint("dense_dw", lhs, t_dot(t, w, dw) + bias_term, scale);
    double wdb[U] = {0};
    for (int n = 0; n < N; n++)
        for (int u = 0; u < U; u++)
            wdb[u] += t_val(t, dy)[n * U + u];
    check_value(t, db, wdb);
    t_free(t);
}

static void test_dense(void **state)
{
    (void)state;
    run_dense(true);
    run_dense(false);
}

/* ---- elementwise ---- */

static void test_activations(void **state)
{
    (void)state;
    static const Op fwd[] = {OP_RELU, OP_TANH, OP_SIGMOID};
    static const Op bwd[] = {OP_RELU_DX, OP_TANH_DX, OP_SIGMOID_DX};
    for (int j = 0; j < 3; j++) {
        T *t = t_new(2);
        Shape s = SB(3, 2, 2);
        int x = t_input(t, "x", s);
        int y = t_node(t, fwd[j], "act", s, 1, &x)->id;
        int dy = t_input(t, "act.grad", s);
        int dx = t_node(t, bwd[j], "act.dx", s, 2, (int[]){y, dy})->id;
        t_rand(t, x);
        t_rand(t, dy);
        /* keep relu's input away from its kink for the finite differences */
        float *xv = t_val(t, x);
        for (long i = 0; i < t_size(t, x); i++)
            xv[i] = xv[i] < 0 ? xv[i] - 0.1f : xv[i] + 0.1f;
        t_run(t, y);
        double want[24];
        for (long i = 0; i < t_size(t, x); i++) {
            double v = xv[i];
            want[i] = j == 0 ? (v > 0 ? v : 0) : j == 1 ? tanh(v) : 1 / (1 + exp(-v));
        }
        check_value(t, y, want);
        t_run(t, dx);
        check_fd(t, y, x, dy, dx, 1e-2f, 1e-3, 1e-3);
        t_free(t);
    }
}

static void test_add_copy(void **state)
{
    (void)state;
    T *t = t_new(3);
    Shape s = SB(2, 3, 2);
    int a = t_input(t, "a", s), b = t_input(t, "b", s), c = t_input(t, "c", s);
    int sum = t_node(t, OP_ADD, "sum", s, 3, (int[]){a, b, c})->id;
    int flat = t_node(t, OP_FLATTEN, "flat", SB(12), 1, &sum)->id;
    int back = t_node(t, OP_RESHAPE, "flat.dx", s, 1, &flat)->id;
    /* gradient sums of parameters are unbatched */
    int p = t_param(t, "p", SU(4, 2)), q = t_param(t, "q", SU(4, 2));
    int psum = t_node(t, OP_ADD, "p.gsum", SU(4, 2), 2, (int[]){p, q})->id;
    t_rand(t, a);
    t_rand(t, b);
    t_rand(t, c);
    t_rand(t, p);
    t_rand(t, q);
    t_run(t, sum);
    t_run(t, flat);
    t_run(t, back);
    t_run(t, psum);
    double want[36];
    for (int i = 0; i < 36; i++)
        want[i] = (double)t_val(t, a)[i] + t_val(t, b)[i] + t_val(t, c)[i];
    check_value(t, sum, want);
    check_value(t, flat, want);
    check_value(t, back, want);
    for (int i = 0; i < 8; i++)
        want[i] = (double)t_val(t, p)[i] + t_val(t, q)[i];
    check_value(t, psum, want);
    t_free(t);
}

/* ---- broadcasting arithmetic (lower_act.c) ---- */

/* The loops of a kernel from the outside in, following first children. */
static int loop_chain(const Kernel *k, const Stmt **loops, int max)
{
    int n = 0;
    for (const Stmt *s = k->body; s && n < max;) {
        const Stmt *next = NULL;
        for (int i = 0; i < s->nbody && !next; i++)
            if (s->body[i]->k == S_FOR)
                next = s->body[i];
        if (next)
            loops[n++] = next;
        s = next;
    }
    return n;
}

static void test_broadcast(void **state)
{
    (void)state;
    T *t = t_new(2);
    Shape s = SB(3, 2, 5), c = SB(3, 1, 1);
    int x = t_input(t, "x", s), m = t_input(t, "m", c);
    int y = t_node(t, OP_MUL, "y", s, 2, (int[]){x, m})->id;
    int dy = t_input(t, "y.grad", s);
    Node *dm = t_node(t, OP_BCAST_DX, "y.dx1", c, 2, (int[]){dy, x});
    dm->p.act.a = 1.0f;
    Node *dn = t_node(t, OP_BCAST_DX, "y.dneg", c, 1, &dy);
    dn->p.act.a = -1.0f;
    t_rand(t, x);
    t_rand(t, m);
    t_rand(t, dy);
    t_run(t, y);
    t_run(t, dm->id);
    t_run(t, dn->id);
    const float *xv = t_val(t, x), *mv = t_val(t, m), *gv = t_val(t, dy);
    double want[60], wm[6], wn[6];
    for (int i = 0; i < 60; i++)
        want[i] = (double)xv[i] * mv[i / 10];
    for (int j = 0; j < 6; j++) {
        wm[j] = wn[j] = 0;
        for (int i = 0; i < 10; i++) {
            wm[j] += (double)gv[j * 10 + i] * xv[j * 10 + i];
            wn[j] -= gv[j * 10 + i];
        }
    }
    check_value(t, y, want);
    check_value(t, dm->id, wm);
    check_value(t, dn->id, wn);
    /* nb, channels, pixels: every loop of the product independent, the
     * innermost over contiguous pixels; the gradient's sum over the pixels
     * is serial */
    const Stmt *l[8];
    assert_int_equal(loop_chain(t_kernel(t, y), l, 8), 3);
    assert_true(l[0]->indep && l[1]->indep && l[2]->indep);
    assert_int_equal(loop_chain(t_kernel(t, dm->id), l, 8), 3);
    assert_true(l[0]->indep && l[1]->indep && !l[2]->indep);
    t_free(t);
}

static void test_act_flat_loop(void **state)
{
    (void)state;
    static const Op ops[] = {OP_LEAKY_RELU, OP_ELU, OP_SELU, OP_SOFTPLUS, OP_HARD_SIGMOID,
                             OP_HARD_SWISH, OP_RELU6, OP_CLIP};
    for (size_t j = 0; j < sizeof ops / sizeof ops[0]; j++) {
        T *t = t_new(2);
        Shape s = SB(3, 5);
        int x = t_input(t, "x", s);
        Node *n = t_node(t, ops[j], "act", s, 1, &x);
        n->p.act.a = 0.5f;
        n->p.act.b = 2.0f;
        Node *d = t_node(t, OP_ACT_DX, "act.dx", s, 2, (int[]){x, x});
        d->p.act = n->p.act;
        d->p.act.fwd = ops[j];
        for (int k = 0; k < 2; k++) {
            const Stmt *l[4];
            assert_int_equal(loop_chain(t_kernel(t, k ? d->id : n->id), l, 4), 1);
            assert_true(l[0]->indep);
        }
        t_free(t);
    }
}

/* ---- softmax ---- */

static void run_softmax(Shape s)
{
    T *t = t_new(2);
    int x = t_input(t, "x", s);
    int y = t_node(t, OP_SOFTMAX, "sm", s, 1, &x)->id;
    int dy = t_input(t, "sm.grad", s);
    int dx = t_node(t, OP_SOFTMAX_DX, "sm.dx", s, 2, (int[]){y, dy})->id;
    t_rand(t, x);
    t_rand(t, dy);
    float *xv = t_val(t, x);
    xv[0] = 30.0f; /* large logits must not overflow: the max is subtracted */
    t_run(t, y);
    int C = s.d[0], S = (int)(shape_numel(&s) / C);
    double want[64];
    for (int n = 0; n < t->n; n++)
        for (int sp = 0; sp < S; sp++) {
            double m = -INFINITY, z = 0;
            for (int c = 0; c < C; c++)
                m = fmax(m, xv[(n * C + c) * S + sp]);
            for (int c = 0; c < C; c++)
                z += exp(xv[(n * C + c) * S + sp] - m);
            for (int c = 0; c < C; c++)
                want[(n * C + c) * S + sp] = exp(xv[(n * C + c) * S + sp] - m) / z;
        }
    check_value(t, y, want);
    t_run(t, dx);
    check_fd(t, y, x, dy, dx, 3e-3f, 2e-3, 1e-2);
    t_free(t);
}

static void test_softmax(void **state)
{
    (void)state;
    run_softmax(SB(6));
    run_softmax(SB(4, 2, 3));
}

/* ---- concat and slice ---- */

static void test_concat_slice(void **state)
{
    (void)state;
    T *t = t_new(2);
    int a = t_input(t, "a", SB(2, 3, 2)), b = t_input(t, "b", SB(1, 3, 2)),
        c = t_input(t, "c", SB(3, 3, 2));
    int y = t_node(t, OP_CONCAT, "cat", SB(6, 3, 2), 3, (int[]){a, b, c})->id;
    int dy = t_input(t, "cat.grad", SB(6, 3, 2));
    int ids[3] = {a, b, c}, begin[3] = {0, 2, 3}, sl[3];
    for (int j = 0; j < 3; j++) {
        Node *s = t_node(t, OP_SLICE, j == 0 ? "cat.dx0" : j == 1 ? "cat.dx1" : "cat.dx2",
                         t_at(t, ids[j])->shape, 1, &dy);
        s->p.slice.begin = begin[j];
        sl[j] = s->id;
    }
    for (int j = 0; j < 3; j++)
        t_rand(t, ids[j]);
    t_rand(t, dy);
    t_run(t, y);
    double want[72];
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 3; j++) {
            int cj = t_at(t, ids[j])->shape.d[0];
            for (int i = 0; i < cj * 6; i++)
                want[n * 36 + begin[j] * 6 + i] = t_val(t, ids[j])[n * cj * 6 + i];
        }
    check_value(t, y, want);
    /* each slice is the matching block of dy; together they are concat's adjoint */
    double rhs = 0;
    for (int j = 0; j < 3; j++) {
        t_run(t, sl[j]);
        int cj = t_at(t, ids[j])->shape.d[0];
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < cj * 6; i++)
                want[n * cj * 6 + i] = t_val(t, dy)[n * 36 + begin[j] * 6 + i];
        check_value(t, sl[j], want);
        rhs += t_dot(t, ids[j], sl[j]);
    }
    check_adjoint("slice", t_dot(t, y, dy), rhs, t_absdot(t, y, dy));
    t_free(t);
}

/* ---- losses ---- */

static void test_softmax_xent(void **state)
{
    (void)state;
    enum { N = 4, K = 5 };
    T *t = t_new(N);
    int x = t_input(t, "logits", SB(K));
    int tg = t_input(t, "target", scalar_b);
    int loss = t_node(t, OP_SOFTMAX_XENT, "loss", scalar_u, 2, (int[]){x, tg})->id;
    int dx = t_node(t, OP_SOFTMAX_XENT_DX, "loss.dx", SB(K), 2, (int[]){x, tg})->id;
    t_rand(t, x);
    float *xv = t_val(t, x), *tv = t_val(t, tg);
    xv[3] = 40.0f; /* a large logit: logsumexp must subtract the max */
    static const float labels[N] = {3, 0, 4, 2};
    memcpy(tv, labels, sizeof labels);
    t_run(t, loss);
    double want = 0;
    for (int n = 0; n < N; n++) {
        double m = -INFINITY, z = 0;
        for (int k = 0; k < K; k++)
            m = fmax(m, xv[n * K + k]);
        for (int k = 0; k < K; k++)
            z += exp(xv[n * K + k] - m);
        want += log(z) + m - xv[n * K + (int)labels[n]];
    }
    want /= N;
    check_value(t, loss, &want);
    t_run(t, dx);
    check_fd(t, loss, x, -1, dx, 1e-2f, 1e-3, 1e-2);
    t_free(t);
}

static void test_mse(void **state)
{
    (void)state;
    T *t = t_new(3);
    Shape s = SB(2, 3);
    int p = t_input(t, "pred", s), tg = t_input(t, "target", s);
    int loss = t_node(t, OP_MSE, "loss", scalar_u, 2, (int[]){p, tg})->id;
    int dx = t_node(t, OP_MSE_DX, "loss.dx", s, 2, (int[]){p, tg})->id;
    t_rand(t, p);
    t_rand(t, tg);
    t_run(t, loss);
    double want = 0;
    for (int i = 0; i < 18; i++) {
        double d = (double)t_val(t, p)[i] - t_val(t, tg)[i];
        want += d * d;
    }
    want /= 18;
    check_value(t, loss, &want);
    t_run(t, dx);
    check_fd(t, loss, p, -1, dx, 1e-2f, 1e-4, 1e-3);
    t_free(t);
}

/* Per-position softmax cross-entropy, [N, 3, 2] against [N, 2], with class
 * weights, ignore_index and label smoothing, in the interpreter:
 * sum v*l / sum v*w[t], l = (1-e) w[t] (lse - x_t) + e/C sum_c w_c (lse - x_c). */
static void test_xent_per_position(void **state)
{
    (void)state;
    enum { N = 2, C = 3, S = 2 };
    static const float w[C] = {0.5f, 2.0f, 1.5f};
    T *t = t_new(N);
    int x = t_input(t, "logits", SB(C, S));
    int tg = t_input(t, "target", SB(S));
    Node *l = t_node(t, OP_SOFTMAX_XENT, "loss", scalar_u, 2, (int[]){x, tg});
    Node *d = t_node(t, OP_SOFTMAX_XENT_DX, "loss.dx", SB(C, S), 2, (int[]){x, tg});
    LossParam lp = {.weight = w, .nweight = C, .has_ignore = true, .ignore_index = -1,
                    .label_smoothing = 0.2f};
    l->p.loss = d->p.loss = lp;
    t_rand(t, x);
    static const float labels[N * S] = {2, -1, 0, 1}; /* one ignored position */
    memcpy(t_val(t, tg), labels, sizeof labels);
    t_run(t, l->id);
    const float *xv = t_val(t, x);
    double num = 0, den = 0;
    for (int n = 0; n < N; n++)
        for (int p = 0; p < S; p++) {
            int c0 = (int)labels[n * S + p];
            if (c0 < 0)
                continue;
            double z = 0;
            for (int c = 0; c < C; c++)
                z += exp(xv[(n * C + c) * S + p]);
            double lse = log(z), smooth = 0;
            for (int c = 0; c < C; c++)
                smooth += w[c] * (lse - xv[(n * C + c) * S + p]);
            num += 0.8 * w[c0] * (lse - xv[(n * C + c0) * S + p]) + 0.2 / C * smooth;
            den += w[c0];
        }
    double want = num / den;
    check_value(t, l->id, &want);
    t_run(t, d->id);
    check_fd(t, l->id, x, -1, d->id, 1e-2f, 1e-3, 1e-2);
    t_free(t);
}

/* bce_with_logits with a pos_weight per channel, reduction sum; the
 * gradient by finite differences. */
static void test_bce_pos_weight(void **state)
{
    (void)state;
    static const float pw[2] = {3.0f, 0.5f};
    T *t = t_new(2);
    Shape s = SB(2, 3);
    int x = t_input(t, "logits", s), tg = t_input(t, "target", s);
    Node *l = t_node(t, OP_BCE_LOGITS, "loss", scalar_u, 2, (int[]){x, tg});
    Node *d = t_node(t, OP_BCE_LOGITS_DX, "loss.dx", s, 2, (int[]){x, tg});
    LossParam lp = {.reduction = RED_SUM, .pos_weight = pw, .npos_weight = 2};
    l->p.loss = d->p.loss = lp;
    t_rand(t, x);
    float *y = t_val(t, tg);
    for (int i = 0; i < 12; i++)
        y[i] = (float)(i % 5) / 4.0f;
    t_run(t, l->id);
    double want = 0;
    for (int i = 0; i < 12; i++) {
        double xi = t_val(t, x)[i], yi = y[i], p = pw[(i / 3) % 2];
        want += -(p * yi * log(1 / (1 + exp(-xi))) + (1 - yi) * log(1 - 1 / (1 + exp(-xi))));
    }
    check_value(t, l->id, &want);
    t_run(t, d->id);
    check_fd(t, l->id, x, -1, d->id, 1e-2f, 1e-3, 1e-2);
    t_free(t);
}

/* ---- the dispatch itself ---- */

static void test_sources_and_names(void **state)
{
    (void)state;
    T *t = t_new(1);
    int x = t_input(t, "image", SB(1, 5, 5));
    int w = t_param(t, "c1.weight", SU(2, 1, 3, 3));
    Node *c = t_node(t, OP_CONV, "c1", SB(2, 3, 3), 2, (int[]){x, w});
    c->p.conv = (ConvParam){.nsp = 2, .out_channels = 2, .kernel = {3, 3}, .stride = {1, 1},
                            .dilation = {1, 1}, .groups = 1};
    assert_null(lower_node(t->a, &t->m, t->s, target_reference(), x));
    assert_null(lower_node(t->a, &t->m, t->s, target_reference(), w));
    Kernel *k = t_kernel(t, c->id);
    assert_string_equal(k->name, "k2_conv");
    assert_string_equal(k->comment, "c1: conv([N, 1, 5, 5], [2, 1, 3, 3]) -> [N, 2, 3, 3]");
    assert_string_equal(k->buf[0].name, "y");
    assert_string_equal(k->buf[1].name, "x");
    assert_string_equal(k->buf[2].name, "w");
    t_free(t);
}

/* ---- the interpreter's corner cases (loop.h semantics) ---- */

static void test_eval_semantics(void **state)
{
    (void)state;
    Arena *a = arena_new();
    Kernel *k = kernel_new(a, "k_sem", "interpreter corner cases");
    int out = kernel_buf(a, k, "out", true, 9, 0);
    Stmt *b = k->body;
    /* locals keep the builder from folding what is under test */
    int big = kernel_var(a, k, "big", T_I32), neg = kernel_var(a, k, "neg", T_I32);
    int f = kernel_var(a, k, "f", T_F32), cnt = kernel_var(a, k, "cnt", T_I32);
    st_append(a, b, st_decl(a, big, ex_int(a, 2147483647)));
    st_append(a, b, st_decl(a, neg, ex_int(a, -7)));
    st_append(a, b, st_decl(a, f, ex_flt(a, -2.7f)));
    st_append(a, b, st_decl(a, cnt, ex_int(a, 3)));
    Expr *two = ex_int(a, 2);
    /* division and remainder truncate toward zero */
    Expr *q = ex_bin(a, X_DIV, ex_var(a, k, neg), two), *r = ex_bin(a, X_MOD, ex_var(a, k, neg), two);
    st_append(a, b, st_store(a, out, ex_int(a, 0), ex_un(a, X_I2F, q), false));
    st_append(a, b, st_store(a, out, ex_int(a, 1), ex_un(a, X_I2F, r), false));
    /* 32-bit wrap-around */
    st_append(a, b, st_store(a, out, ex_int(a, 2),
                             ex_un(a, X_I2F, ex_bin(a, X_ADD, ex_var(a, k, big), ex_int(a, 1))), false));
    /* float to int truncates */
    st_append(a, b, st_store(a, out, ex_int(a, 3), ex_un(a, X_I2F, ex_un(a, X_F2I, ex_var(a, k, f))), false));
    /* loop bounds are evaluated once: changing cnt inside does not stop it */
    int i = kernel_var(a, k, "i", T_I32);
    st_append(a, b, st_store(a, out, ex_int(a, 4), ex_flt(a, 0.0f), false));
    Stmt *loop = st_for(a, i, ex_int(a, 0), ex_var(a, k, cnt));
    st_append(a, loop, st_assign(a, cnt, ex_int(a, 0)));
    st_append(a, loop, st_store(a, out, ex_int(a, 4), ex_flt(a, 1.0f), true));
    st_append(a, b, loop);
    /* an empty range runs nothing */
    int j = kernel_var(a, k, "j", T_I32);
    st_append(a, b, st_store(a, out, ex_int(a, 5), ex_flt(a, 7.0f), false));
    Stmt *empty = st_for(a, j, ex_int(a, 5), ex_var(a, k, cnt));
    st_append(a, empty, st_store(a, out, ex_int(a, 5), ex_flt(a, -1.0f), false));
    st_append(a, b, empty);
    /* NaN compares unequal to itself; if/else */
    Expr *nan = ex_bin(a, X_MUL, ex_var(a, k, f), ex_flt(a, NAN));
    Expr *isnan_ = ex_select(a, ex_bin(a, X_NE, nan, nan), ex_flt(a, 1.0f), ex_flt(a, 0.0f));
    st_append(a, b, st_store(a, out, ex_int(a, 6), isnan_, false));
    Stmt *cond = st_if(a, ex_bin(a, X_LT, ex_var(a, k, neg), ex_int(a, 0)));
    st_append(a, cond, st_store(a, out, ex_int(a, 7), ex_flt(a, 2.0f), false));
    st_append_else(a, cond, st_store(a, out, ex_int(a, 7), ex_flt(a, 3.0f), false));
    st_append(a, b, cond);
    Expr *e = ex_un(a, X_EXP, ex_un(a, X_NEG, ex_var(a, k, f)));
    st_append(a, b, st_store(a, out, ex_int(a, 8), e, false));
    assert_true(kernel_verify(k, stderr));

    float v[9];
    float *bufs[1] = {v};
    kernel_eval(k, 0, bufs);
    assert_true(v[0] == -3.0f && v[1] == -1.0f);
    assert_true(v[2] == -2147483648.0f);
    assert_true(v[3] == -2.0f);
    assert_true(v[4] == 3.0f && v[5] == 7.0f && v[6] == 1.0f && v[7] == 2.0f);
    assert_true(v[8] == expf(2.7f));
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_semantics),
        cmocka_unit_test(test_sources_and_names),
        cmocka_unit_test(test_conv1d),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_conv_dw_forms),
        cmocka_unit_test(test_conv3d),
        cmocka_unit_test(test_conv_winograd),
        cmocka_unit_test(test_conv_fft_blocks),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_maxpool_special),
        cmocka_unit_test(test_avgpool),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_add_copy),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_act_flat_loop),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_concat_slice),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_xent_per_position),
        cmocka_unit_test(test_bce_pos_weight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
