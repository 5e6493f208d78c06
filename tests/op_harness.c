/* op_harness.c - one op test: a tests/ops/<case>.net compiled by netc, run
 * forward and backward, and checked against PyTorch and finite differences.
 *
 *   op_harness CASE.net REFDIR [--backend c|llvm] [--algo auto|direct|im2col|winograd|winograd2] [--keep]
 *
 * REFDIR is tests/reference/<case>/, written by tests/reference/gen.py; its
 * README.md gives the file conventions.  The harness
 *   1. loads the case, differentiates it (the loss when the file has a train
 *      section, else the first output against an incoming gradient "seed"),
 *      schedules it and builds the program;
 *   2. compiles the "train" or "grad" entry into a shared object
 *      (compile_shared) and loads it with dlopen;
 *   3. fills params[] and the entry's inputs from the .npy files, runs the
 *      entry once with batch n = 2 and compares every output and every
 *      gradient with PyTorch's;
 *   4. checks the gradients again by central finite differences on up to
 *      FD_SAMPLES elements of every input and every parameter;
 *   5. when REFDIR has infer.out.npy, runs the "forward" entry (inference:
 *      running statistics, no dropout) on x and compares its output.
 * State tensors (batch norm's running statistics, dropout's step counter)
 * are loaded like parameters from <name>.npy; the value the training entry
 * leaves in grads[] at their offset is compared with next.<name>.npy, the
 * state after PyTorch's step, and they have no finite differences.
 * It prints one summary line and exits 0 (pass), 1 (fail) or 77 (skip, for
 * a backend this build lacks), which tests/ops.cmake declares to CTest.
 *
 * Memory handed to the entry (arena, outputs) is filled with NaN before
 * every call, so a kernel that reads a value nothing wrote shows up as NaN
 * instead of passing by luck on zeroed memory.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emit_llvm.h"
#include "netc.h"
#include "netc_runtime.h"

/* The optimisation of the generated code: -O2 as netc build compiles it;
 * the sanitizer build, which checks the compiler, uses -O0 (the same
 * numbers, compiled faster). */
#ifndef NETC_TEST_OPT
#define NETC_TEST_OPT 2
#endif
#define NETC_STR_(x) #x
#define NETC_STR(x) NETC_STR_(x)
#ifndef NETC_TEST_CC
#define NETC_TEST_CC "cc"
#endif

enum { RES_PASS = 0, RES_FAIL = 1, RES_SKIP = 77 };

#define BATCH 2
#define PATH_CAP 4096

/* Outputs and gradients against PyTorch: |a - ref| <= CMP_ATOL + CMP_RTOL*|ref|.
 * The references are float64 results rounded to float32, so this leaves
 * room for float32 accumulation in netc's kernels and nothing more. */
#define CMP_ATOL 1e-4
#define CMP_RTOL 1e-3

/* Finite differences: (L(v + eps) - L(v - eps)) / 2eps against the
 * analytic gradient g, passing when |fd - g| <= FD_ATOL + FD_RTOL*|g|.
 * With eps = 1e-2 in float32 the central difference is off by the O(eps^2)
 * truncation term (measured up to ~1.4e-3 for tanh of a conv, where |g| is
 * about 10) and by float32 rounding of L divided by 2eps (~1e-4); both fit
 * well inside.  gen.py redraws any data whose differences cross a kink
 * (relu at 0, a max-pool reordering), checking every element at half this
 * tolerance, so a failure here is a wrong gradient, not an unlucky sample.
 * Keep these three in sync with FD_* in tests/reference/gen.py. */
#define FD_EPS 1e-2
#define FD_ATOL 2e-3
#define FD_RTOL 1e-2
#define FD_SAMPLES 12

/* ---- .npy files (float32, little endian, C order) ------------------- */

#define NPY_MAX_DIMS 8

typedef struct {
    int ndim;
    long dim[NPY_MAX_DIMS];
    long n;                  /* element count */
    float *v;
} Npy;

/* Reads the header field `key` ("'shape':") and returns a pointer just past
 * it, or NULL. */
static const char *npy_field(const char *hdr, const char *key)
{
    const char *p = strstr(hdr, key);
    return p ? p + strlen(key) : NULL;
}

/* Returns false with a message in err when the file is missing or is not a
 * float32 C-order array. */
static bool npy_read(const char *path, Npy *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return false;
    }
    unsigned char pre[12];
    bool ok = false;
    char *hdr = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        snprintf(err, errlen, "%s: not a .npy file", path);
        goto done;
    }
    /* version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one */
    unsigned long hlen = pre[8] | (unsigned long)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            snprintf(err, errlen, "%s: truncated header", path);
            goto done;
        }
        hlen |= (unsigned long)pre[10] << 16 | (unsigned long)pre[11] << 24;
    }
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        snprintf(err, errlen, "%s: truncated header", path);
        goto done;
    }
    hdr[hlen] = '\0';
    const char *descr = npy_field(hdr, "'descr':");
    const char *order = npy_field(hdr, "'fortran_order':");
    const char *shape = npy_field(hdr, "'shape':");
    if (!descr || !strstr(descr, "'<f4'") || strstr(descr, "'<f4'") > strchr(descr, ',')) {
        snprintf(err, errlen, "%s: not float32 little-endian ('<f4')", path);
        goto done;
    }
    if (!order || strncmp(order + strspn(order, " "), "False", 5) != 0) {
        snprintf(err, errlen, "%s: Fortran order is not supported", path);
        goto done;
    }
    if (!shape || !(shape = strchr(shape, '('))) {
        snprintf(err, errlen, "%s: no shape in header", path);
        goto done;
    }
    t->n = 1;
    for (const char *p = shape + 1; *p && *p != ')';) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (t->ndim == NPY_MAX_DIMS) {
            snprintf(err, errlen, "%s: more than %d dims", path, NPY_MAX_DIMS);
            goto done;
        }
        t->dim[t->ndim++] = d;
        t->n *= d;
        p = end;
    }
    t->v = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof(float));
    if (!t->v || fread(t->v, sizeof(float), (size_t)t->n, f) != (size_t)t->n) {
        snprintf(err, errlen, "%s: expected %ld floats of data", path, t->n);
        goto done;
    }
    ok = true;
done:
    free(hdr);
    fclose(f);
    if (!ok) {
        free(t->v);
        t->v = NULL;
    }
    return ok;
}

static void npy_shape_str(const Npy *t, char *s, size_t cap)
{
    size_t len = (size_t)snprintf(s, cap, "(");
    for (int i = 0; i < t->ndim && len < cap; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%ld", i ? ", " : "", t->dim[i]);
    if (len < cap)
        snprintf(s + len, cap - len, ")");
}

/* ---- the run ---------------------------------------------------------- */

typedef struct {
    const char *refdir;
    const Model *m;
    const Entry *e;
    NetcEntryFn fn;
    bool train;              /* "train" entry: the objective is out[1], the loss */
    int seed_idx;            /* in[] index of the incoming gradient (grad entry), or -1 */
    int target_idx;          /* in[] index of the loss target (train entry), or -1 */
    float *params, *grads, *scratch_grads, *arena;
    long nparams, narena;
    float **in, **out;
    long *in_len, *out_len;
    int ncheck, nfail;       /* tensors compared, and failures of any check */
    double cmp_worst;        /* largest |a - ref| / tolerance against PyTorch */
    int nfd, nfd_fail;       /* finite-difference samples */
    double fd_worst;         /* largest |fd - g| / tolerance seen */
    uint64_t rng;
} Run;

static long value_floats(const Model *m, int node)
{
    const Node *nd = graph_node(m->g, node);
    return shape_numel(&nd->shape) * (nd->shape.batched ? BATCH : 1);
}

static const char *node_name(const Model *m, int node)
{
    return graph_node(m->g, node)->name;
}

static void fail(Run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("  FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    r->nfail++;
}

/* Loads REFDIR/<file>.npy and checks it holds `want` floats. */
static bool ref_load(Run *r, const char *file, long want, Npy *t)
{
    char path[PATH_CAP], err[PATH_CAP + 128];
    snprintf(path, sizeof path, "%s/%s.npy", r->refdir, file);
    if (!npy_read(path, t, err, sizeof err)) {
        fail(r, "%s", err);
        return false;
    }
    if (t->n != want) {
        char s[128];
        npy_shape_str(t, s, sizeof s);
        fail(r, "%s.npy holds %s = %ld floats but netc's value has %ld", file, s, t->n, want);
        free(t->v);
        t->v = NULL;
        return false;
    }
    return true;
}

/* Compares `got` with the reference; on failure names the worst element
 * by its index in the reference's shape. */
static void check_close(Run *r, const char *what, const float *got, const Npy *ref)
{
    long worst = -1, nbad = 0;
    double worst_ratio = 0;
    r->ncheck++;
    for (long i = 0; i < ref->n; i++) {
        double a = got[i], b = ref->v[i];
        double tol = CMP_ATOL + CMP_RTOL * fabs(b);
        double ratio = fabs(a - b) / tol;
        if (isnan(ratio))
            ratio = INFINITY;
        if (ratio > r->cmp_worst)
            r->cmp_worst = ratio;
        if (ratio > 1) {
            nbad++;
            if (worst < 0 || ratio > worst_ratio) {
                worst = i;
                worst_ratio = ratio;
            }
        }
    }
    if (worst < 0)
        return;
    char idx[128];
    size_t len = 0;
    long rem = worst;
    long stride[NPY_MAX_DIMS];
    long s = 1;
    for (int d = ref->ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= ref->dim[d];
    }
    idx[0] = '\0';
    for (int d = 0; d < ref->ndim && len < sizeof idx; d++) {
        len += (size_t)snprintf(idx + len, sizeof idx - len, "%s%ld", d ? ", " : "", rem / stride[d]);
        rem %= stride[d];
    }
    fail(r, "%s: %ld of %ld elements differ from PyTorch; worst [%s]: netc %.8g, "
         "PyTorch %.8g (|diff| %.3g > tol %.3g)",
         what, nbad, ref->n, idx, got[worst], ref->v[worst],
         fabs((double)got[worst] - ref->v[worst]), CMP_ATOL + CMP_RTOL * fabs(ref->v[worst]));
}

static void fill_nan(float *v, long n)
{
    for (long i = 0; i < n; i++)
        v[i] = NAN;
}

static void run_entry(Run *r, float *grads)
{
    fill_nan(r->arena, r->narena);
    for (int k = 0; k < r->e->nout; k++)
        fill_nan(r->out[k], r->out_len[k]);
    r->fn(BATCH, r->params, grads, r->arena, (const float *const *)r->in, r->out);
}

/* The scalar whose gradient the entry computes: the loss, or sum(y * seed)
 * accumulated in double so rounding stays far below the FD tolerance. */
static double objective(Run *r)
{
    run_entry(r, r->scratch_grads);
    if (r->train)
        return r->out[1][0];
    double s = 0;
    const float *seed = r->in[r->seed_idx];
    for (long i = 0; i < r->out_len[0]; i++)
        s += (double)r->out[0][i] * seed[i];
    return s;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Central differences on up to FD_SAMPLES distinct random elements of
 * vals[0..n), against analytic[]. */
static void fd_check(Run *r, const char *what, float *vals, long n, const float *analytic)
{
    long pick[FD_SAMPLES];
    int npick = 0;
    while (npick < FD_SAMPLES && npick < n) {
        long i = n <= FD_SAMPLES ? npick : (long)(rng_next(&r->rng) % (uint64_t)n);
        bool dup = false;
        for (int k = 0; k < npick; k++)
            dup |= pick[k] == i;
        if (!dup)
            pick[npick++] = i;
    }
    int bad = 0;
    for (int k = 0; k < npick; k++) {
        long i = pick[k];
        float old = vals[i];
        float up = (float)(old + FD_EPS), down = (float)(old - FD_EPS);
        vals[i] = up;
        double lu = objective(r);
        vals[i] = down;
        double ld = objective(r);
        vals[i] = old;
        /* divide by the step float32 actually took, not the nominal 2eps */
        double fd = (lu - ld) / ((double)up - (double)down);
        double g = analytic[i];
        double tol = FD_ATOL + FD_RTOL * fabs(g);
        double ratio = fabs(fd - g) / tol;
        if (isnan(ratio))
            ratio = INFINITY;
        if (ratio > r->fd_worst)
            r->fd_worst = ratio;
        r->nfd++;
        if (ratio > 1) {
            r->nfd_fail++;
            if (bad++ == 0)
                fail(r, "finite differences of %s[%ld]: fd %.6g, analytic %.6g "
                     "(|diff| %.3g > tol %.3g)", what, i, fd, g, fabs(fd - g), tol);
        }
    }
    if (bad > 1)
        printf("       (%d of %d sampled elements of %s disagree)\n", bad, npick, what);
}

/* ---- compiling the program to a shared object ----------------------- */

static bool run_cmd(const char *cmd)
{
    int st = system(cmd);
    if (st != 0) {
        fprintf(stderr, "op_harness: command failed (status %d): %s\n", st, cmd);
        return false;
    }
    return true;
}

/* Compiles program p for `backend` into DIR and writes the path of the
 * shared object, which exports <name>_<entry> for every entry, into
 * so_path (PATH_CAP bytes).  Returns RES_PASS, RES_FAIL or RES_SKIP.
 *
 * The LLVM backend plugs in here: emit an object file for p into dir and
 * link it with `cc -shared` like the C path below. */
int compile_shared(const Program *p, const char *backend, const char *dir, char *so_path);
int compile_shared(const Program *p, const char *backend, const char *dir, char *so_path)
{
    const char *name = p->m->name;
    snprintf(so_path, PATH_CAP, "%s/%s.so", dir, name);
    if (strcmp(backend, "c") == 0) {
        Diag d;
        diag_init(&d, stderr);
        bool ok = emit_c(p, dir, &d);
        diag_free(&d);
        if (!ok) {
            fprintf(stderr, "op_harness: emit_c failed\n");
            return RES_FAIL;
        }
        /* for the host, as `netc build --backend c` compiles (the program
         * is scheduled for the host; without -march, every fmaf would be a
         * libm call) */
        char cmd[4 * PATH_CAP];
        snprintf(cmd, sizeof cmd,
                 "'%s' -O" NETC_STR(NETC_TEST_OPT) " -march=native -std=c99 -shared -fPIC -I'%s' -o '%s' '%s/%s.c' -lm",
                 NETC_TEST_CC, NETC_RUNTIME_INCLUDE, so_path, dir, name);
        return run_cmd(cmd) ? RES_PASS : RES_FAIL;
    }
    if (strcmp(backend, "llvm") == 0) {
        if (!emit_llvm_available()) {
            fprintf(stderr, "op_harness: not built with LLVM\n");
            return RES_SKIP;
        }
        /* -O2 for the host, like the C path's cc -O2 -march=native; an object, then the
         * same cc -shared link. */
        char obj[PATH_CAP];
        snprintf(obj, sizeof obj, "%s/%s.o", dir, name);
        Diag d;
        diag_init(&d, stderr);
        LlvmOptions lo = {NULL, NULL, NULL, NETC_TEST_OPT};
        bool ok = emit_llvm_obj(p, &lo, obj, false, &d);
        diag_free(&d);
        if (!ok) {
            fprintf(stderr, "op_harness: emit_llvm_obj failed\n");
            return RES_FAIL;
        }
        char cmd[4 * PATH_CAP];
        snprintf(cmd, sizeof cmd, "'%s' -shared -o '%s' '%s' -lm", NETC_TEST_CC, so_path, obj);
        return run_cmd(cmd) ? RES_PASS : RES_FAIL;
    }
    fprintf(stderr, "op_harness: unknown backend '%s' (c or llvm)\n", backend);
    return RES_FAIL;
}

static void remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[PATH_CAP];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(dp);
    rmdir(dir);
}

/* ---- the checks ---------------------------------------------------- */

static const char *input_file(const Run *r, int k)
{
    if (k == r->seed_idx)
        return "seed";
    if (k == r->target_idx)
        return "target";
    return node_name(r->m, r->e->in[k]);
}

/* The in[] index whose gradient out[k] is (grad entry, k >= 1): by
 * m->grad_of when it names it, else the documented order (inputs in in[]
 * order, seed excluded). */
static int grad_output_input(const Run *r, int k)
{
    for (int i = 0; i < r->e->nin; i++)
        if (i != r->seed_idx && r->m->grad_of && r->e->in[i] < r->m->ngrad_of &&
            r->m->grad_of[r->e->in[i]] == r->e->out[k])
            return i;
    int seen = 0;
    for (int i = 0; i < r->e->nin; i++)
        if (i != r->seed_idx && i != r->target_idx && ++seen == k)
            return i;
    return -1;
}

static void check_outputs(Run *r)
{
    const Entry *e = r->e;
    for (int k = 0; k < e->nout; k++) {
        char file[256], what[300];
        if (r->train) {
            if (k > 1)
                break;
            snprintf(file, sizeof file, "%s", k == 0 ? "pred" : "out");
            snprintf(what, sizeof what, "%s (%s)", k == 0 ? "prediction" : "loss",
                     node_name(r->m, e->out[k]));
        } else if (k == 0) {
            snprintf(file, sizeof file, "out");
            snprintf(what, sizeof what, "output %s", node_name(r->m, e->out[0]));
        } else {
            int i = grad_output_input(r, k);
            if (i < 0) {
                fail(r, "out[%d] (%s) is not the gradient of any input", k,
                     node_name(r->m, e->out[k]));
                continue;
            }
            snprintf(file, sizeof file, "grad.%s", input_file(r, i));
            snprintf(what, sizeof what, "gradient of input %s", input_file(r, i));
        }
        Npy ref;
        if (ref_load(r, file, r->out_len[k], &ref))
            check_close(r, what, r->out[k], &ref);
        free(ref.v);
    }
}

static bool is_state(const Run *r, const ParamSlot *sl)
{
    return graph_node(r->m->g, sl->node)->p.param.state;
}

static void check_param_grads(Run *r, const Program *p)
{
    for (int s = 0; s < p->nparam; s++) {
        const ParamSlot *sl = &p->param[s];
        char file[300], what[300];
        bool state = is_state(r, sl);
        snprintf(file, sizeof file, "%s.%s", state ? "next" : "grad", node_name(r->m, sl->node));
        snprintf(what, sizeof what, "%s of %s", state ? "next value" : "gradient",
                 node_name(r->m, sl->node));
        Npy ref;
        if (ref_load(r, file, sl->count, &ref))
            check_close(r, what, r->grads + sl->offset, &ref);
        free(ref.v);
    }
}

/* Entries write grads[]; they must not add to what a previous call left. */
static void check_grads_written(Run *r)
{
    if (r->nparams == 0)
        return;
    float *first = malloc((size_t)r->nparams * sizeof(float));
    memcpy(first, r->grads, (size_t)r->nparams * sizeof(float));
    run_entry(r, r->grads);
    long diff = 0;
    for (long i = 0; i < r->nparams; i++)
        diff += memcmp(&first[i], &r->grads[i], sizeof(float)) != 0;
    if (diff)
        fail(r, "a second call changed %ld of %ld gradients: the entry must write grads[], "
             "not add to them", diff, r->nparams);
    memcpy(r->grads, first, (size_t)r->nparams * sizeof(float));
    free(first);
}

static void check_fd(Run *r, const Program *p)
{
    /* inputs: against netc's input gradients (grad entry) or, when the
     * train entry has none, against PyTorch's */
    for (int i = 0; i < r->e->nin; i++) {
        if (i == r->seed_idx || i == r->target_idx)
            continue;
        Npy ref = {0};
        for (int k = 1; !r->train && k < r->e->nout; k++)
            if (grad_output_input(r, k) == i) {
                /* out[k] is overwritten by the FD calls: keep a copy */
                ref.n = r->out_len[k];
                ref.v = malloc((size_t)ref.n * sizeof(float));
                memcpy(ref.v, r->out[k], (size_t)ref.n * sizeof(float));
            }
        char file[300];
        snprintf(file, sizeof file, "grad.%s", input_file(r, i));
        if (!ref.v && !ref_load(r, file, r->in_len[i], &ref))
            continue;
        fd_check(r, input_file(r, i), r->in[i], r->in_len[i], ref.v);
        free(ref.v);
    }
    for (int s = 0; s < p->nparam; s++) {
        const ParamSlot *sl = &p->param[s];
        if (!is_state(r, sl))
            fd_check(r, node_name(r->m, sl->node), r->params + sl->offset, sl->count,
                     r->grads + sl->offset);
    }
}

/* The forward entry (inference) on x against infer.out.npy, when the case
 * has one. */
static void check_inference(Run *r, const Program *p, void *so)
{
    char path[PATH_CAP], sym[512];
    snprintf(path, sizeof path, "%s/infer.out.npy", r->refdir);
    if (access(path, F_OK) != 0)
        return;
    const Entry *f = &p->entry[0];
    snprintf(sym, sizeof sym, "%s_%s", r->m->name, f->name);
    void *fnp = dlsym(so, sym);
    if (!fnp || f->nin != 1 || f->nout < 1) {
        fail(r, "no single-input forward entry %s", sym);
        return;
    }
    NetcEntryFn fn;
    memcpy(&fn, &fnp, sizeof fn);
    long narena = f->arena_fixed + f->arena_per_n * BATCH;
    float *arena = malloc((size_t)(narena > 0 ? narena : 1) * sizeof(float));
    long ylen = value_floats(r->m, f->out[0]);
    float *y = malloc((size_t)ylen * sizeof(float));
    fill_nan(arena, narena);
    fill_nan(y, ylen);
    Npy x, ref;
    if (ref_load(r, "x", value_floats(r->m, f->in[0]), &x)) {
        const float *in[1] = {x.v};
        float *out[1] = {y};
        fn(BATCH, r->params, NULL, arena, in, out);
        if (ref_load(r, "infer.out", ylen, &ref))
            check_close(r, "inference output", y, &ref);
        free(ref.v);
    }
    free(x.v);
    free(arena);
    free(y);
}

static const Entry *entry_named(const Program *p, const char *name)
{
    for (int i = 0; i < p->nentry; i++)
        if (strcmp(p->entry[i].name, name) == 0)
            return &p->entry[i];
    return NULL;
}

static void *entry_symbol(Run *r, void *so, const char *name)
{
    char sym[512];
    snprintf(sym, sizeof sym, "%s_%s", r->m->name, name);
    void *fnp = dlsym(so, sym);
    if (!fnp)
        fail(r, "no entry %s", sym);
    return fnp;
}

/* When the program has prepared entries (loop_hoist.c): prepare, then
 * forward_prepared gives the forward entry's outputs to every bit, on
 * the case's inputs, with params untouched and every buffer the entries
 * get (prep included) filled with NaN first. */
static void check_prepared(Run *r, const Program *p, void *so)
{
    const Entry *f = entry_named(p, "forward"), *fp = entry_named(p, "forward_prepared"),
                *pe = entry_named(p, "prepare");
    if (!pe)
        return;
    void *sf = entry_symbol(r, so, "forward"), *sfp = entry_symbol(r, so, "forward_prepared"),
         *spe = entry_symbol(r, so, "prepare");
    if (!f || !fp || !sf || !sfp || !spe || f->nin > r->e->nin) {
        fail(r, "prepared entries incomplete");
        return;
    }
    NetcEntryFn fwd;
    NetcPreparedFn fwd_prep;
    NetcPrepareFn prepare;
    memcpy(&fwd, &sf, sizeof fwd);
    memcpy(&fwd_prep, &sfp, sizeof fwd_prep);
    memcpy(&prepare, &spe, sizeof prepare);
    long na = f->arena_fixed + f->arena_per_n * BATCH, nap = fp->arena_fixed + fp->arena_per_n * BATCH;
    na = na > nap ? na : nap;
    na = na > pe->arena_fixed ? na : pe->arena_fixed;
    float *arena = malloc((size_t)(na + 1) * sizeof(float));
    float *prep = malloc((size_t)(p->prep_floats + 1) * sizeof(float));
    float *saved = malloc((size_t)(r->nparams + 1) * sizeof(float));
    float **y[2] = {calloc((size_t)f->nout, sizeof(float *)), calloc((size_t)f->nout, sizeof(float *))};
    memcpy(saved, r->params, (size_t)r->nparams * sizeof(float));
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < f->nout; k++) {
            long len = value_floats(r->m, f->out[k]);
            y[t][k] = malloc((size_t)(len + 1) * sizeof(float));
            fill_nan(y[t][k], len);
        }
    fill_nan(arena, na);
    fwd(BATCH, r->params, NULL, arena, (const float *const *)r->in, y[0]);
    fill_nan(prep, p->prep_floats);
    fill_nan(arena, na);
    prepare(r->params, prep, arena);
    fill_nan(arena, na);
    fwd_prep(BATCH, r->params, prep, arena, (const float *const *)r->in, y[1]);
    r->ncheck++;
    if (memcmp(saved, r->params, (size_t)r->nparams * sizeof(float)) != 0)
        fail(r, "prepare or forward_prepared wrote params");
    for (int k = 0; k < f->nout; k++) {
        long len = value_floats(r->m, f->out[k]);
        if (memcmp(y[0][k], y[1][k], (size_t)len * sizeof(float)) != 0)
            fail(r, "forward_prepared's output %d differs from forward's", k);
        free(y[0][k]);
        free(y[1][k]);
    }
    free(y[0]);
    free(y[1]);
    free(saved);
    free(prep);
    free(arena);
}

/* ---- main ------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: op_harness CASE.net REFDIR [--backend c|llvm] [--algo auto|direct|im2col|winograd|winograd2]\n"
                    "                  [--cpu NAME (default: the host)] [--keep]\n");
    return RES_FAIL;
}

static const Entry *find_entry(const Program *p)
{
    for (int i = 0; i < p->nentry; i++)
        if (strcmp(p->entry[i].name, "train") == 0 || strcmp(p->entry[i].name, "grad") == 0)
            return &p->entry[i];
    return NULL;
}

static bool load_inputs(Run *r)
{
    const Entry *e = r->e;
    r->in = calloc((size_t)e->nin, sizeof *r->in);
    r->in_len = calloc((size_t)e->nin, sizeof *r->in_len);
    for (int k = 0; k < e->nin; k++) {
        Npy t;
        r->in_len[k] = value_floats(r->m, e->in[k]);
        if (!ref_load(r, input_file(r, k), r->in_len[k], &t))
            return false;
        r->in[k] = t.v;
    }
    r->out = calloc((size_t)e->nout, sizeof *r->out);
    r->out_len = calloc((size_t)e->nout, sizeof *r->out_len);
    for (int k = 0; k < e->nout; k++) {
        r->out_len[k] = value_floats(r->m, e->out[k]);
        r->out[k] = malloc((size_t)(r->out_len[k] > 0 ? r->out_len[k] : 1) * sizeof(float));
    }
    return true;
}

static bool load_params(Run *r, const Program *p)
{
    r->nparams = p->param_floats;
    size_t bytes = (size_t)(r->nparams > 0 ? r->nparams : 1) * sizeof(float);
    r->params = calloc(1, bytes);
    r->grads = calloc(1, bytes);
    r->scratch_grads = calloc(1, bytes);
    for (int s = 0; s < p->nparam; s++) {
        const ParamSlot *sl = &p->param[s];
        Npy t;
        if (!ref_load(r, node_name(r->m, sl->node), sl->count, &t))
            return false;
        memcpy(r->params + sl->offset, t.v, (size_t)sl->count * sizeof(float));
        free(t.v);
    }
    return true;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

int main(int argc, char **argv)
{
    const char *net = NULL, *refdir = NULL, *backend = "c", *cpu = NULL;
    bool keep = false;
    Algo conv_algo = ALGO_NONE; /* --algo: every convolution node runs this algorithm */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--algo") == 0 && i + 1 < argc) {
            if (!algo_parse(argv[++i], &conv_algo) || conv_algo == ALGO_GEMM)
                return usage();
        }
        else if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc)
            cpu = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = true;
        else if (argv[i][0] == '-')
            return usage();
        else if (!net)
            net = argv[i];
        else if (!refdir)
            refdir = argv[i];
        else
            return usage();
    }
    if (!net || !refdir)
        return usage();

    Diag d;
    diag_init(&d, stderr);
    Model *m = frontend_load(net, &d);
    if (!m) {
        printf("FAIL %s [%s]: the front end rejected it\n", net, backend);
        return RES_FAIL;
    }
    if (m->g->loss >= 0)
        autodiff(m, m->g->loss, -1);
    else
        autodiff_seeded(m, m->g->outputs[0]);
    /* as netc builds it: activations fused into the layers before them */
    fuse_epilogues(m);
    NETC_ASSERT(graph_verify(m->g, stderr));
    m->conv_algo = conv_algo;
    Sched *sched = sched_choose(m);
    Target tgt;
    if (!target_describe(&tgt, NULL, cpu, NULL, &d))
        return usage();
    Program *p = program_build_for(m, sched, &tgt);

    Run r = {.refdir = refdir, .m = m, .seed_idx = -1, .target_idx = -1};
    r.rng = hash_str(m->name);
    r.e = find_entry(p);
    if (!r.e) {
        printf("FAIL %s [%s]: the program has no train or grad entry\n", m->name, backend);
        return RES_FAIL;
    }
    r.train = strcmp(r.e->name, "train") == 0;
    for (int k = 0; k < r.e->nin; k++) {
        if (!r.train && r.e->in[k] == m->grad_seed)
            r.seed_idx = k;
        if (r.train && r.e->in[k] == m->g->target)
            r.target_idx = k;
    }
    if (r.train ? r.e->nout < 2 || r.target_idx < 0 : r.seed_idx < 0) {
        printf("FAIL %s [%s]: the %s entry lacks its %s\n", m->name, backend, r.e->name,
               r.train ? "loss output or target input" : "seed input");
        return RES_FAIL;
    }

    char dir[] = "/tmp/netc_op_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("op_harness: mkdtemp");
        return RES_FAIL;
    }
    char so_path[PATH_CAP];
    int res = compile_shared(p, backend, dir, so_path);
    if (res != RES_PASS) {
        if (!keep)
            remove_dir(dir);
        printf("%s %s [%s]: %s\n", res == RES_SKIP ? "SKIP" : "FAIL", m->name, backend,
               res == RES_SKIP ? "backend not available" : "compiling the program failed");
        return res;
    }
    void *so = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    char sym[512];
    snprintf(sym, sizeof sym, "%s_%s", m->name, r.e->name);
    void *fnp = so ? dlsym(so, sym) : NULL;
    if (!fnp) {
        printf("FAIL %s [%s]: cannot load %s from %s: %s\n", m->name, backend, sym, so_path,
               dlerror());
        return RES_FAIL;
    }
    /* POSIX guarantees a dlsym result converts to a function pointer */
    memcpy(&r.fn, &fnp, sizeof r.fn);

    r.narena = r.e->arena_fixed + r.e->arena_per_n * BATCH;
    r.arena = malloc((size_t)(r.narena > 0 ? r.narena : 1) * sizeof(float));
    if (load_params(&r, p) && load_inputs(&r)) {
        run_entry(&r, r.grads);
        check_outputs(&r);
        check_param_grads(&r, p);
        check_grads_written(&r);
        check_fd(&r, p);
        check_inference(&r, p, so);
        check_prepared(&r, p, so);
    }

    printf("%s %s [%s]: %s entry; %d tensors vs PyTorch (worst %.3f of tolerance); "
           "%d/%d finite differences (worst %.3f of tolerance)\n",
           r.nfail ? "FAIL" : "PASS", m->name, backend, r.e->name, r.ncheck, r.cmp_worst,
           r.nfd - r.nfd_fail, r.nfd, r.fd_worst);
    if (keep)
        printf("  generated files kept in %s\n", dir);
    else
        remove_dir(dir);

    dlclose(so);
    for (int k = 0; r.in && k < r.e->nin; k++)
        free(r.in[k]);
    for (int k = 0; r.out && k < r.e->nout; k++)
        free(r.out[k]);
    free(r.in);
    free(r.out);
    free(r.in_len);
    free(r.out_len);
    free(r.params);
    free(r.grads);
    free(r.scratch_grads);
    free(r.arena);
    program_free(p);
    model_free(m);
    diag_free(&d);
    return r.nfail ? RES_FAIL : RES_PASS;
}
