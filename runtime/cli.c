/* cli.c - netc_main: the command line of every generated program.
 *
 *   PROG train | eval | predict | plot | info | help   (see usage() below)
 *
 * Parses the model description, the options (each allowed only with the
 * commands that use it), then runs one command.  Exit status: 0 on
 * success, 1 on an error ("PROG: error: <file>: <what>" on stderr), 2 on a
 * usage error (the message, then the usage text).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { CMD_TRAIN = 1, CMD_EVAL = 2, CMD_PREDICT = 4, CMD_INFO = 8, CMD_PLOT = 16 };

typedef enum {
    OPT_DATA, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_SEED, OPT_SAVE, OPT_RESUME, OPT_METRICS,
    OPT_LIMIT, OPT_TEST_LIMIT, OPT_QUIET, OPT_WEIGHTS, OPT_INPUT, OPT_OUTPUT, OPT_SCHEDULE,
    OPT_THREADS, OPT_ON_NONFINITE, OPT_ALLOW_NONFINITE, OPT_SKIP_BAD, OPT_PLOT, OPT_COUNT
} OptId;

static const struct {
    const char *name;
    unsigned cmds;
    bool takes_value;
} opts[] = {
    [OPT_DATA] = {"data", CMD_TRAIN | CMD_EVAL, true},
    [OPT_EPOCHS] = {"epochs", CMD_TRAIN, true},
    [OPT_BATCH] = {"batch", CMD_TRAIN | CMD_EVAL | CMD_PREDICT, true},
    [OPT_LR] = {"lr", CMD_TRAIN, true},
    [OPT_SEED] = {"seed", CMD_TRAIN, true},
    [OPT_SAVE] = {"save", CMD_TRAIN, true},
    [OPT_RESUME] = {"resume", CMD_TRAIN, true},
    [OPT_METRICS] = {"metrics", CMD_TRAIN | CMD_EVAL, true},
    [OPT_LIMIT] = {"limit", CMD_TRAIN, true},
    [OPT_TEST_LIMIT] = {"test-limit", CMD_TRAIN | CMD_EVAL, true},
    [OPT_QUIET] = {"quiet", CMD_TRAIN, false},
    [OPT_WEIGHTS] = {"weights", CMD_EVAL | CMD_PREDICT, true},
    [OPT_INPUT] = {"input", CMD_PREDICT, true},
    [OPT_OUTPUT] = {"output", CMD_PREDICT | CMD_PLOT, true},
    [OPT_SCHEDULE] = {"schedule", CMD_TRAIN, true},
    [OPT_THREADS] = {"threads", CMD_TRAIN | CMD_EVAL | CMD_PREDICT, true},
    [OPT_ON_NONFINITE] = {"on-nonfinite", CMD_TRAIN, true},
    [OPT_ALLOW_NONFINITE] = {"allow-nonfinite", CMD_PREDICT, false},
    [OPT_SKIP_BAD] = {"skip-bad", CMD_TRAIN | CMD_EVAL, false},
    [OPT_PLOT] = {"plot", CMD_TRAIN, true},
};
_Static_assert(sizeof opts / sizeof *opts == OPT_COUNT, "one row per OptId");

/* predict takes one --input per model input and one --output per output. */
#define MAX_IO 64

typedef struct {
    const char *prog;
    unsigned cmd;
    const char *val[OPT_COUNT]; /* NULL: not given; "" for flags */
    const char *file;           /* plot: the metrics file */
    /* predict: every --input and --output, in order */
    const char *io[2][MAX_IO];
    int nio[2];
    RtErr err;
    bool usage_error;
} Cli;

static void usage(FILE *f, const char *prog)
{
    int w = (int)strlen(prog);
    fprintf(f, "usage: %s COMMAND [options]\n", prog);
    fprintf(f, "  %s train   [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N]\n", prog);
    fprintf(f, "  %*s         [--save CKPT] [--resume CKPT] [--metrics FILE.jsonl]\n", w, "");
    fprintf(f, "  %*s         [--limit N] [--test-limit N] [--quiet]\n", w, "");
    fprintf(f, "  %*s         [--schedule constant|cosine|step:EVERY:GAMMA] [--threads N]\n", w, "");
    fprintf(f, "  %*s         [--on-nonfinite=stop|skip-batch] [--skip-bad] [--plot FILE.svg]\n",
            w, "");
    fprintf(f, "  %s eval    --weights CKPT [--data DIR] [--batch N] [--test-limit N]\n", prog);
    fprintf(f, "  %*s         [--metrics FILE.json] [--skip-bad] [--threads N]\n", w, "");
    fprintf(f, "  %s predict --weights CKPT --input [NAME=]X.npy... --output [NAME=]Y.npy...\n",
            prog);
    fprintf(f, "  %*s         [--batch N] [--threads N] [--allow-nonfinite]\n", w, "");
    fprintf(f, "  %s plot    METRICS.jsonl -o FILE.svg\n", prog);
    fprintf(f, "  %s info\n  %s help\n", prog, prog);
    fputs("train trains the model on its data set (the train section's source, or\n"
          "--data PATH) and evaluates it after every epoch; --save writes a checkpoint\n"
          "after every epoch and --resume continues from one exactly.  eval scores a\n"
          "checkpoint on the test set (loss, top-1, top-5, confusion matrix); predict\n"
          "runs the model over float32 .npy arrays; plot draws a metrics file as SVG;\n"
          "info describes the model.\n"
          "--threads N runs the model's parallel loops on N threads (default: the CPUs\n"
          "this process may use).\n",
          f);
}

static bool usage_fail(Cli *c, const char *fmt, const char *arg)
{
    rt_fail(&c->err, NULL, fmt, arg);
    c->usage_error = true;
    return false;
}

static bool parse_args(Cli *c, int argc, char **argv)
{
    static const struct { const char *name; unsigned cmd; } cmds[] = {
        {"train", CMD_TRAIN}, {"eval", CMD_EVAL}, {"predict", CMD_PREDICT}, {"info", CMD_INFO},
        {"plot", CMD_PLOT},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            c->cmd = cmds[i].cmd;
    if (!c->cmd)
        return usage_fail(c, "unknown command '%s'", argv[1]);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (c->cmd == CMD_PLOT && !strcmp(a, "-o"))
            a = "--output";
        if (c->cmd == CMD_PLOT && a[0] != '-' && !c->file) {
            c->file = a;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return usage_fail(c, "unexpected argument '%s'", a);
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        int k = 0;
        while (k < OPT_COUNT && !(strlen(opts[k].name) == n && strncmp(a + 2, opts[k].name, n) == 0))
            k++;
        if (k == OPT_COUNT)
            return usage_fail(c, "unknown option '%s'", a);
        if (!(opts[k].cmds & c->cmd))
            return usage_fail(c, "option '%s' does not apply to this command", a);
        bool io = c->cmd == CMD_PREDICT && (k == OPT_INPUT || k == OPT_OUTPUT);
        if (c->val[k] && !io)
            return usage_fail(c, "option '%s' given twice", a);
        if (!opts[k].takes_value) {
            if (eq)
                return usage_fail(c, "option '%s' takes no value", a);
            c->val[k] = "";
        } else if (eq) {
            c->val[k] = eq + 1;
        } else if (i + 1 < argc) {
            c->val[k] = argv[++i];
        } else {
            return usage_fail(c, "option '%s' needs a value", a);
        }
        if (io) {
            int w = k == OPT_OUTPUT;
            if (c->nio[w] == MAX_IO)
                return usage_fail(c, "option '%s' given too often", a);
            c->io[w][c->nio[w]++] = c->val[k];
        }
    }
    return true;
}

/* A value of at least `min` (at most RT_MAX_BATCH for --batch), or -1 when
 * the option was not given. */
static bool opt_long(Cli *c, OptId k, long min, long *out)
{
    *out = -1;
    const char *v = c->val[k];
    if (!v)
        return true;
    long x;
    if (!rt_parse_long(v, min, k == OPT_BATCH ? RT_MAX_BATCH : LONG_MAX, &x)) {
        char msg[160];
        if (k == OPT_BATCH)
            snprintf(msg, sizeof msg, "--batch: expected an integer from 1 to %ld, found '%%s'",
                     RT_MAX_BATCH);
        else
            snprintf(msg, sizeof msg, "--%s: expected an integer >= %ld, found '%%s'",
                     opts[k].name, min);
        return usage_fail(c, msg, v);
    }
    *out = x;
    return true;
}

/* Beyond this, --threads is a typo, not a machine. */
#define MAX_THREADS 1024

/* --threads N, from 1 to MAX_THREADS; the usable CPUs (at most
 * MAX_THREADS) when not given.  Its own parser, since opt_long's messages
 * name only a lower bound. */
static bool opt_threads(Cli *c, int *out)
{
    int cpus = netc_cpu_count();
    *out = cpus < MAX_THREADS ? cpus : MAX_THREADS;
    const char *v = c->val[OPT_THREADS];
    if (!v)
        return true;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 1 || x > MAX_THREADS) {
        char msg[160];
        snprintf(msg, sizeof msg, "--threads: expected an integer from 1 to %d, found '%%s'",
                 MAX_THREADS);
        return usage_fail(c, msg, v);
    }
    *out = (int)x;
    return true;
}

static bool load_weights(Cli *c, const RtMeta *m, const float *embedded, float *params)
{
    if (c->val[OPT_WEIGHTS])
        return rt_ckpt_load(c->val[OPT_WEIGHTS], m, params, NULL, NULL, &c->err);
    if (!embedded)
        return usage_fail(c, "%s needs --weights CKPT (this program has no built-in weights)",
                          c->cmd == CMD_EVAL ? "eval" : "predict");
    memcpy(params, embedded, (size_t)m->params * sizeof *params);
    return true;
}

static long default_batch(const RtMeta *m)
{
    return m->has_train ? m->batch : 64;
}

/* The confusion matrix as text: rows are true classes, columns predicted
 * ones; too wide for a terminal past MAX_PRINTED classes. */
#define MAX_PRINTED 32

static void print_confusion(const RtData *d, const long *cm)
{
    int k = d->classes;
    if (k > MAX_PRINTED) {
        printf("confusion matrix: %d classes, in the --metrics file\n", k);
        return;
    }
    long most = 1;
    for (long i = 0; i < (long)k * k; i++)
        most = cm[i] > most ? cm[i] : most;
    int w = snprintf(NULL, 0, "%ld", most) + 1;
    w = w < 4 ? 4 : w;
    printf("confusion matrix (rows: true class, columns: predicted class)\n%*s", w, "");
    for (int j = 0; j < k; j++)
        printf("%*d", w, j);
    printf("\n");
    for (int i = 0; i < k; i++) {
        printf("%*d", w, i);
        for (int j = 0; j < k; j++)
            printf("%*ld", w, cm[(long)i * k + j]);
        printf(d->class_name ? "  %s\n" : "\n", d->class_name ? d->class_name[i] : "");
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* eval --metrics FILE: one JSON object, written atomically. */
static bool write_eval_json(const char *path, const RtData *d, const RtScore *sc, RtErr *e)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return rt_fail(e, path, "out of memory");
    double n = sc->n ? (double)sc->n : 1;
    RtScoreKind kind = sc->kind;
    if (kind != RT_SCORE_CLASS) {
        /* a class per position: accuracy over the counted positions; a
         * tensor target: the loss alone */
        fprintf(f, "{\"test_loss\":%.9g,\"n\":%ld", sc->loss, sc->n);
        if (kind == RT_SCORE_POSITION)
            fprintf(f, ",\"test_acc\":%.9g,\"positions\":%ld,\"classes\":%d",
                    rt_score_acc(sc), sc->counted, d->classes);
        fprintf(f, "}\n");
    } else {
    fprintf(f, "{\"test_loss\":%.9g,\"test_acc\":%.9g,\"test_top5\":%.9g,\"n\":%ld,"
            "\"classes\":%d", sc->loss, (double)sc->correct / n, (double)sc->correct5 / n,
            sc->n, d->classes);
    if (d->class_name) {
        fprintf(f, ",\"class_names\":[");
        for (int i = 0; i < d->classes; i++) {
            fprintf(f, i ? "," : "");
            json_string(f, d->class_name[i]);
        }
        fprintf(f, "]");
    }
    fprintf(f, ",\"confusion\":[");
    for (int i = 0; i < d->classes; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (int j = 0; j < d->classes; j++)
            fprintf(f, "%s%ld", j ? "," : "", sc->confusion[(long)i * d->classes + j]);
        fprintf(f, "]");
    }
    fprintf(f, "]}\n");
    }
    bool ok = fclose(f) == 0;
    ok = ok ? rt_write_file(path, text, len, e) : rt_fail(e, path, "out of memory");
    free(text);
    return ok;
}

static bool cmd_eval(Cli *c, const RtMeta *m, const NetcModel *mod)
{
    const float *weights = mod->weights;
    long batch, test_limit;
    if (!opt_long(c, OPT_BATCH, 1, &batch) || !opt_long(c, OPT_TEST_LIMIT, 1, &test_limit))
        return false;
    if (batch < 0)
        batch = default_batch(m);
    const char *dir = c->val[OPT_DATA] ? c->val[OPT_DATA] : m->data_path;
    if (!dir)
        return usage_fail(c, "%s", "eval needs --data PATH (the model names no data set)");
    float *params = rt_calloc((size_t)m->params + 1, sizeof *params);
    if (!params)
        return rt_fail(&c->err, NULL, "out of memory");
    RtData d = {0};
    float *arena = NULL;
    RtScore sc = {0};
    bool ok = load_weights(c, m, weights, params) &&
              rt_data_load(&d, m, dir, false, 0, test_limit > 0 ? test_limit : 0,
                           c->val[OPT_SKIP_BAD] != NULL, &c->err) &&
              (arena = rt_arena_new(m, batch, &c->err));
    if (ok && !(sc.confusion = rt_calloc((size_t)d.classes * (size_t)d.classes, sizeof(long))))
        ok = rt_fail(&c->err, NULL, "out of memory");
    ok = ok && rt_evaluate(m, mod, params, arena, batch, &d, &sc, &c->err);
    if (ok) {
        double n = sc.n ? (double)sc.n : 1;
        if (d.skipped)
            printf("skipped %ld bad image%s (--skip-bad)\n", d.skipped, d.skipped == 1 ? "" : "s");
        RtScoreKind kind = sc.kind;
        if (kind == RT_SCORE_NONE) {
            printf("test_loss %.4f  (%ld samples)\n", sc.loss, sc.n);
        } else if (kind == RT_SCORE_POSITION) {
            printf("test_loss %.4f  test_acc %.2f%% (%ld/%ld positions)\n", sc.loss,
                   100.0 * rt_score_acc(&sc), sc.correct, sc.counted);
        } else {
            printf("test_loss %.4f  test_acc %.2f%% (%ld/%ld)  top5 %.2f%%\n", sc.loss,
                   100.0 * (double)sc.correct / n, sc.correct, sc.n,
                   100.0 * (double)sc.correct5 / n);
            print_confusion(&d, sc.confusion);
        }
    }
    if (ok && c->val[OPT_METRICS])
        ok = write_eval_json(c->val[OPT_METRICS], &d, &sc, &c->err);
    free(sc.confusion);
    rt_arena_free(arena);
    rt_data_free(&d);
    free(params);
    return ok;
}

/* The number of samples in x, which is [N, input...] or a single [input...]. */
static bool predict_count(const RtArray *x, const RtTensor *in, const char *path, long *n,
                          RtErr *e)
{
    bool batched = x->rank == in->rank + 1;
    bool same = batched || x->rank == in->rank;
    for (int i = 0; same && i < in->rank; i++)
        same = x->d[i + batched] == in->d[i];
    if (!same) {
        char want[160], got[160];
        rt_shape_str(want, sizeof want, in->d, in->rank, true);
        rt_shape_str(got, sizeof got, x->d, x->rank, false);
        return rt_fail(e, path, "shape mismatch: expected %s (or one sample, without N), found %s",
                       want, got);
    }
    *n = batched ? x->d[0] : 1;
    return true;
}

/* NaN or inf in an input gives NaN outputs that look like results. */
static bool finite_input(const RtArray *x, const char *path, long n, RtErr *e)
{
    long bad = 0, first = -1;
    for (long i = 0; i < x->numel; i++)
        if (!isfinite(x->data[i]) && bad++ == 0)
            first = i;
    if (!bad)
        return true;
    long per = n > 0 ? x->numel / n : 1;
    return rt_fail(e, path, "%ld non-finite value%s (the first at index %ld, in sample %ld); "
                   "give --allow-nonfinite to predict anyway", bad, bad == 1 ? "" : "s", first,
                   first / (per ? per : 1));
}

/* The tensor a --input or --output value names: "NAME=FILE" with NAME one
 * of t[0..n), or a plain FILE for the first (inputs: only with one). */
static int io_target(const RtTensor *t, int n, const char *v, bool plain_ok, const char **path)
{
    const char *eq = strchr(v, '=');
    for (int i = 0; eq && i < n; i++)
        if (strlen(t[i].name) == (size_t)(eq - v) && !strncmp(v, t[i].name, (size_t)(eq - v))) {
            *path = eq + 1;
            return i;
        }
    *path = v;
    return plain_ok ? 0 : -1;
}

/* A usage error about --input or --output, naming two things. */
static bool usage_fail_io(Cli *c, const char *fmt, const char *a, const char *b)
{
    rt_fail(&c->err, NULL, fmt, a, b);
    c->usage_error = true;
    return false;
}

/* The names of t[0..n) as "a, b and c", for messages. */
static void names_of(const RtTensor *t, int n, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " and ",
                              t[i].name);
}

/* Every input's array, from the --input values, each checked against its
 * input; *n: the common sample count. */
static bool predict_inputs(Cli *c, const RtMeta *m, RtArray *x, long *n)
{
    const char *path[MAX_IO] = {0};
    char names[512];
    names_of(m->input, m->ninput, names, sizeof names);
    for (int i = 0; i < c->nio[0]; i++) {
        const char *p;
        int k = io_target(m->input, m->ninput, c->io[0][i], m->ninput == 1 && c->nio[0] == 1, &p);
        if (k < 0)
            return usage_fail_io(c, "--input: expected NAME=X.npy, NAME one of the model's inputs "
                                 "(%s), found '%s'", names, c->io[0][i]);
        if (path[k])
            return usage_fail_io(c, "--input: input '%s' given twice (the model's inputs: %s)",
                                 m->input[k].name, names);
        path[k] = p;
    }
    for (int k = 0; k < m->ninput; k++) {
        long nk = 0;
        if (!path[k])
            return usage_fail_io(c, "predict needs --input %s=X.npy (the model's inputs: %s)",
                                 m->input[k].name, names);
        if (!rt_npy_read(path[k], &x[k], &c->err) ||
            !predict_count(&x[k], &m->input[k], path[k], &nk, &c->err) ||
            (!c->val[OPT_ALLOW_NONFINITE] && !finite_input(&x[k], path[k], nk, &c->err)))
            return false;
        if (k > 0 && nk != *n)
            return rt_fail(&c->err, path[k], "%ld samples, but %s has %ld", nk, path[0], *n);
        *n = nk;
    }
    return true;
}

/* Which file each output goes to (NULL: not written). */
static bool predict_outputs(Cli *c, const RtMeta *m, const char **path)
{
    char names[512];
    names_of(m->output, m->noutput, names, sizeof names);
    for (int i = 0; i < c->nio[1]; i++) {
        const char *p;
        int k = io_target(m->output, m->noutput, c->io[1][i], true, &p);
        if (path[k])
            return usage_fail_io(c, "--output: output '%s' given twice (the model's outputs: %s; "
                                 "NAME=Y.npy writes the others)", m->output[k].name, names);
        path[k] = p;
    }
    return true;
}

static bool cmd_predict(Cli *c, const RtMeta *m, const NetcModel *mod)
{
    const float *weights = mod->weights;
    if (!c->val[OPT_WEIGHTS] && !weights)
        return usage_fail(c, "%s", "predict needs --weights CKPT");
    if (!c->nio[0] || !c->nio[1])
        return usage_fail(c, "predict needs %s", !c->nio[0] ? "--input X.npy" : "--output Y.npy");
    if (m->ninput > MAX_IO || m->noutput > MAX_IO)
        return rt_fail(&c->err, NULL, "the model has too many inputs or outputs to predict");
    long batch;
    if (!opt_long(c, OPT_BATCH, 1, &batch))
        return false;
    if (batch < 0)
        batch = default_batch(m);
    const char *out_path[MAX_IO] = {0};
    RtArray x[MAX_IO] = {{0}}, y[MAX_IO] = {{0}};
    float *params = rt_calloc((size_t)m->params + 1, sizeof *params), *arena = NULL;
    long n = 0;
    bool ok = params ? true : rt_fail(&c->err, NULL, "out of memory");
    ok = ok && predict_outputs(c, m, out_path) && load_weights(c, m, weights, params) &&
         predict_inputs(c, m, x, &n);
    if (ok && n < batch)
        batch = n > 0 ? n : 1;
    /* Every output gets [N, ...]; those not asked for are computed anyway. */
    for (int i = 0; ok && i < m->noutput; i++) {
        y[i].rank = m->output[i].rank + 1;
        y[i].d[0] = n;
        memcpy(y[i].d + 1, m->output[i].d, (size_t)m->output[i].rank * sizeof *y[i].d);
        y[i].numel = n * m->output[i].numel;
        if (!(y[i].data = rt_calloc((size_t)y[i].numel + 1, sizeof(float))))
            ok = rt_fail(&c->err, NULL, "out of memory");
    }
    ok = ok && (arena = rt_arena_new(m, batch, &c->err));
    float *prep = ok ? rt_prepare(m, mod, params, arena) : NULL;
    for (long first = 0; ok && first < n; first += batch) {
        long k = n - first < batch ? n - first : batch;
        const float *in[MAX_IO];
        float *outs[MAX_IO];
        for (int i = 0; i < m->ninput; i++)
            in[i] = x[i].data + first * m->input[i].numel;
        for (int i = 0; i < m->noutput; i++)
            outs[i] = y[i].data + first * m->output[i].numel;
        rt_forward(mod, prep, (int)k, params, arena, in, outs);
    }
    free(prep);
    for (int i = 0; ok && i < m->noutput; i++) {
        if (!out_path[i])
            continue;
        ok = rt_npy_write(out_path[i], &y[i], &c->err);
        char shape[160];
        rt_shape_str(shape, sizeof shape, y[i].d, y[i].rank, false);
        if (ok)
            printf("wrote %s %s\n", out_path[i], shape);
    }
    for (int i = 0; i < MAX_IO; i++) {
        rt_array_free(&x[i]);
        rt_array_free(&y[i]);
    }
    rt_arena_free(arena);
    free(params);
    return ok;
}

/* The data source's files and options and the augmentation, for info. */
static void info_data_options(const RtMeta *m)
{
    const char *role[] = {"labels", "test", "test_labels"};
    const char *file[] = {m->data_labels, m->data_test, m->data_test_labels};
    for (int i = 0; i < 3; i++)
        if (file[i])
            printf("        data %s %s\n", role[i], file[i]);
    if (m->data_split > 0)
        printf("        data split %g (held out for testing)\n", m->data_split);
    if (m->data_channels || m->data_size)
        printf("        data as %d channel%s, size %d\n", m->data_channels ? m->data_channels : 1,
               m->data_channels > 1 ? "s" : "", m->data_size);
    if (m->data_coarse)
        printf("        data label coarse\n");
    if (m->target_input)
        printf("        data target self (the loss compares with the input)\n");
    if (m->has_ignore)
        printf("        loss ignores target %d\n", m->ignore_index);
    if (m->crop_pad || m->flip) {
        printf("        augment");
        if (m->crop_pad)
            printf(" crop %d", m->crop_pad);
        printf("%s\n", m->flip ? " flip" : "");
    }
    if (m->nnorm) {
        printf("        normalize mean");
        for (int i = 0; i < m->nnorm; i++)
            printf(" %g", (double)m->mean[i]);
        printf(" std");
        for (int i = 0; i < m->nnorm; i++)
            printf(" %g", (double)m->std[i]);
        printf("\n");
    }
}

static void cmd_info(const RtMeta *m, const float *weights, bool parallel, int threads)
{
    char shape[160];
    printf("model %s\n", m->name);
    for (int i = 0; i < m->ninput; i++) {
        rt_shape_str(shape, sizeof shape, m->input[i].d, m->input[i].rank, true);
        printf("input   %s %s\n", m->input[i].name, shape);
    }
    for (int i = 0; i < m->noutput; i++) {
        rt_shape_str(shape, sizeof shape, m->output[i].d, m->output[i].rank, true);
        printf("output  %s %s\n", m->output[i].name, shape);
    }
    int wn = 4;
    for (int i = 0; i < m->nparam; i++)
        wn = (int)strlen(m->param[i].t.name) > wn ? (int)strlen(m->param[i].t.name) : wn;
    printf("\n%-*s  %-16s %10s  %s\n", wn, "param", "shape", "count", "init");
    for (int i = 0; i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        rt_shape_str(shape, sizeof shape, p->t.d, p->t.rank, false);
        printf("%-*s  %-16s %10ld  %s%s\n", wn, p->t.name, shape, p->t.numel, rt_init_name(p->init),
               p->state ? " (state, not trained)" : "");
    }
    printf("total %ld parameters, %ld bytes%s\n\n", m->params, m->params * 4,
           weights ? " (weights built in)" : "");
    long b = default_batch(m);
    printf("arena %ld bytes for batch 1, %ld bytes for batch %ld\n",
           (m->arena_fixed + m->arena_per_n) * 4, (m->arena_fixed + m->arena_per_n * b) * 4, b);
    if (m->prep_floats)
        printf("prepared weights %ld bytes (eval and predict compute them once)\n", m->prep_floats * 4);
    if (parallel)
        printf("threads %d (the CPUs this process may use; --threads N to change)\n", threads);
    else
        printf("threads 1 (this program has no parallel loops)\n");
    if (!m->has_train) {
        printf("no training configuration\n");
        return;
    }
    rt_shape_str(shape, sizeof shape, m->target.d, m->target.rank, true);
    printf("train   loss %s%s, target %s %s\n", rt_loss_name(m->loss), m->loss_sum ? " (sum)" : "",
           rt_target_name(m->target_kind), shape);
    char opt[256];
    rt_optim_str(&m->opt, opt, sizeof opt);
    printf("        %s\n", opt);
    if (m->clip_norm > 0)
        printf("        clip_norm %g\n", (double)m->clip_norm);
    if (m->warmup > 0)
        printf("        warmup %ld epoch%s\n", m->warmup, m->warmup == 1 ? "" : "s");
    for (int i = 0; i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        if (p->frozen)
            printf("        freeze %s\n", p->t.name);
        else if (p->lr_mult != 1.0f)
            printf("        lr_mult %s %g\n", p->t.name, (double)p->lr_mult);
    }
    char sched[64];
    rt_schedule_str(&m->schedule, sched, sizeof sched);
    printf("        schedule %s\n", sched);
    printf("        batch %ld, epochs %ld, seed %llu\n", m->batch, m->epochs,
           (unsigned long long)m->seed);
    if (m->data_kind)
        printf("        data %s %s\n", m->data_kind, m->data_path);
    info_data_options(m);
}

static bool cmd_train(Cli *c, const RtMeta *m, const NetcModel *mod)
{
    RtTrainOpts o = {.data = c->val[OPT_DATA], .lr = -1, .schedule = c->val[OPT_SCHEDULE],
                     .save = c->val[OPT_SAVE],
                     .resume = c->val[OPT_RESUME], .metrics = c->val[OPT_METRICS],
                     .quiet = c->val[OPT_QUIET] != NULL,
                     .skip_bad = c->val[OPT_SKIP_BAD] != NULL};
    long seed;
    if (!opt_long(c, OPT_EPOCHS, 0, &o.epochs) || !opt_long(c, OPT_BATCH, 1, &o.batch) ||
        !opt_long(c, OPT_LIMIT, 1, &o.limit) || !opt_long(c, OPT_TEST_LIMIT, 1, &o.test_limit) ||
        !opt_long(c, OPT_SEED, 0, &seed))
        return false;
    o.seed = seed;
    const char *nf = c->val[OPT_ON_NONFINITE];
    if (nf && strcmp(nf, "stop") != 0 && strcmp(nf, "skip-batch") != 0)
        return usage_fail(c, "--on-nonfinite: expected 'stop' or 'skip-batch', found '%s'", nf);
    o.skip_nonfinite = nf && strcmp(nf, "skip-batch") == 0;
    if (c->val[OPT_LR]) {
        float lr;
        if (!rt_parse_real(c->val[OPT_LR], RT_REAL_POSITIVE, &lr)) {
            char msg[160];
            snprintf(msg, sizeof msg, "--lr: expected %s, found '%%s'",
                     rt_real_rule(RT_REAL_POSITIVE));
            return usage_fail(c, msg, c->val[OPT_LR]);
        }
        o.lr = lr;
    }
    if (c->val[OPT_PLOT] && !o.metrics)
        return usage_fail(c, "%s",
                          "--plot draws the --metrics file: give --metrics FILE.jsonl too");
    return rt_cmd_train(m, mod, &o, &c->err) &&
           (!c->val[OPT_PLOT] || rt_plot(o.metrics, c->val[OPT_PLOT], m->name, &c->err));
}

static bool cmd_plot(Cli *c, const char *name)
{
    if (!c->file || !c->val[OPT_OUTPUT])
        return usage_fail(c, "%s", !c->file ? "plot needs a metrics file: plot METRICS.jsonl -o "
                          "FILE.svg" : "plot needs -o FILE.svg");
    if (!rt_plot(c->file, c->val[OPT_OUTPUT], name, &c->err))
        return false;
    printf("wrote %s\n", c->val[OPT_OUTPUT]);
    return true;
}

/* "PROG: error: MSG" on stderr, MSG escaped (file names and contents may
 * hold any bytes). */
static void print_error(const char *prog, const char *msg)
{
    char esc[4 * sizeof(RtErr)], name[256];
    rt_escape(msg, esc, sizeof esc);
    rt_escape(prog, name, sizeof name);
    fprintf(stderr, "%s: error: %s\n", name, esc);
}

/* Results that never reach stdout (a full disk, a closed pipe) are a
 * failure of the run, not a success with nothing to show. */
static bool stdout_ok(Cli *c)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return true;
    /* An earlier write may have failed, its errno long gone. */
    return rt_fail(&c->err, "standard output", "write failed%s%s", errno ? ": " : "",
                   errno ? strerror(errno) : "");
}

int netc_main(int argc, char **argv, const char *meta, NetcEntryFn forward, NetcEntryFn train,
              const float *weights, void (*set_parallel)(NetcParallelFn pf, void *pool))
{
    NetcModel mod = {meta, forward, train, NULL, weights, set_parallel, NULL, NULL, NULL};
    return netc_run(argc, argv, &mod);
}

int netc_run(int argc, char **argv, const NetcModel *mod)
{
    const char *meta = mod->meta;
    const float *weights = mod->weights;
    void (*set_parallel)(NetcParallelFn pf, void *pool) = mod->set_parallel;
    Cli c = {0};
    const char *slash = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    c.prog = argc > 0 && argv[0] ? (slash ? slash + 1 : argv[0]) : "netc-model";
    if (argc < 2) {
        usage(stderr, c.prog);
        return 2;
    }
    clearerr(stdout);
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout, c.prog);
        if (stdout_ok(&c))
            return 0;
        print_error(c.prog, c.err.msg);
        return 1;
    }
    RtMeta m;
    int threads = 1;
    bool ok = parse_args(&c, argc, argv) && opt_threads(&c, &threads);
    if (ok && !rt_meta_parse(&m, meta, &c.err)) {
        print_error(c.prog, c.err.msg);
        return 1;
    }
    /* The model's parallel loops run on the pool until the command ends. */
    NetcPool *pool = NULL;
    if (ok && set_parallel && c.cmd != CMD_INFO && c.cmd != CMD_PLOT) {
        pool = netc_pool_new(threads);
        if (pool) {
            set_parallel(netc_pool_run, pool);
        } else {
            ok = rt_fail(&c.err, NULL, "cannot start %d threads: %s (try a smaller --threads)",
                         threads, strerror(errno));
            rt_meta_free(&m);
        }
    }
    if (ok) {
        switch (c.cmd) {
        case CMD_TRAIN:
            ok = cmd_train(&c, &m, mod);
            break;
        case CMD_EVAL:
            ok = cmd_eval(&c, &m, mod);
            break;
        case CMD_PREDICT:
            ok = cmd_predict(&c, &m, mod);
            break;
        case CMD_PLOT:
            ok = cmd_plot(&c, m.name);
            break;
        default:
            cmd_info(&m, weights, set_parallel != NULL, threads);
            break;
        }
        rt_meta_free(&m);
    }
    if (pool) {
        set_parallel(NULL, NULL);
        netc_pool_free(pool);
    }
    /* Whatever failed first is the error to report; a failed stdout after
     * a successful command is one too. */
    if (ok && stdout_ok(&c))
        return 0;
    fflush(stdout);
    print_error(c.prog, c.err.msg);
    if (c.usage_error) {
        usage(stderr, c.prog);
        return 2;
    }
    return 1;
}
