/* main.c - the netc driver.
 *
 * The whole compiler, one phase per line (see compile()):
 *   frontend_load -> autodiff -> sched_choose -> program_build -> emit
 * Each phase's result can be printed with --dump=ast,ir,shuffle,grad,fuse,fold,
 * foldbn,algo,vectorize,unroll,privatize,prepare,outline,family,loops,mem.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autotune.h"
#include "emit_c.h"
#include "emit_llvm.h"
#include "netc.h"
#include "timing.h"

#define NETC_VERSION "0.1.0"

/* Extra link flags for generated programs: the sanitizer build's runtime
 * library needs the sanitizer runtimes (CMake sets this). */
#ifndef NETC_PROGRAM_LDFLAGS
#define NETC_PROGRAM_LDFLAGS NULL
#endif

typedef struct {
    const char *cmd;
    const char *input;
    const char *output;
    const char *weights;    /* emit-c --weights: safetensors to embed */
    const char *backend;    /* build: "c" or "llvm" */
    const char *cc;
    bool portable;          /* build: no -march=native */
    const char *dump;       /* comma-separated phase names */
    Algo conv_algo;         /* --algo: ALGO_NONE lets the schedule choose */
    const char *target, *cpu, *features;
    int opt_level;
    bool no_fuse;           /* --no-fuse: every add and activation its own kernel */
    bool no_batch_algo;     /* --no-batch-algo: one algorithm per conv at every batch */
    bool no_fold;           /* --no-fold: every channel shuffle its own kernel */
    ShareMode share;        /* --share=families|exact|none */
    bool no_fold_bn;        /* --no-fold-bn: batch norm its own kernel in inference */
    const char *after;      /* graph --after=PHASE: ir, grad or fuse (default) */
    bool backward;          /* graph --backward: the backward nodes too */
    const char *plan;       /* --plan=FILE: measured algorithms to apply */
    bool autotune;          /* build --autotune[=FILE]: measure, write a plan */
    const char *autotune_out; /* its plan file (NULL: <output>.plan) */
} Options;

static void usage(FILE *f)
{
    fputs("usage: netc COMMAND model.net [options]\n"
          "\n"
          "commands:\n"
          "  check     parse and check; print the layer table (name, op, shape, params, MACs)\n"
          "  emit-c    write DIR/<name>.c and DIR/<name>.h            (-o DIR)\n"
          "  emit-llvm write DIR/<name>.ll                            (-o DIR)\n"
          "  emit-obj  write DIR/<name>.o and DIR/<name>.h            (-o DIR)\n"
          "  build     write a standalone program                     (-o PROG)\n"
          "  graph     draw the graph as DOT, or SVG through Graphviz (-o G.dot|G.svg, default stdout)\n"
          "            --after=ir|grad|fuse: before autodiff, after it, after the passes (default)\n"
          "            --backward: the backward nodes too\n"
          "\n"
          "options:\n"
          "  -o PATH              output directory or program\n"
          "  --backend c|llvm     build: code generator (default: llvm when built with it)\n"
          "  --weights W.safetensors  embed trained weights as NAME_weights (all but check)\n"
          "  --cc CC              build: C compiler / linker driver (default: $CC or cc)\n"
          "  --portable           build: no -march=native\n"
          "  --target TRIPLE --cpu NAME --features LIST -O0..3   LLVM code generation\n"
          "  --dump=PHASES        print phases: ast, ir, shuffle, grad, fuse, fold, foldbn, algo,\n"
          "                       vectorize, unroll, privatize, prepare, outline, family, loops,\n"
          "                       mem, all (comma-separated)\n"
          "  --algo=auto|direct|im2col|winograd|winograd2|winograd4|fft\n"
          "                       convolution algorithm (default auto: per node, the cost\n"
          "                       model's cheapest estimate); winograd = winograd4,\n"
          "                       F(4x4,3x3), winograd2 F(2x2,3x3), fft tiled FFTs, where\n"
          "                       they apply\n"
          "  --no-batch-algo      one algorithm per convolution at every batch size (by default a\n"
          "                       convolution whose cheapest estimate differs at batch 1 runs\n"
          "                       that algorithm too, for the batches it is cheaper at)\n"
          "  --autotune[=FILE]    build: time every candidate algorithm of every convolution on\n"
          "                       this machine, use the fastest, write them to FILE (default\n"
          "                       PROG.plan)\n"
          "  --plan=FILE          use the algorithms of a plan written by --autotune (under --algo\n"
          "                       and a layer's algo=)\n"
          "  --no-fuse            no epilogue fusion: every residual add and activation its own kernel\n"
          "  --no-fold            keep every channel shuffle its own kernel (no shuffle folding)\n"
          "  --no-fold-bn         keep every batch norm its own kernel in inference (no folding\n"
          "                       into the convolution before it)\n"
          "  --share=families|exact|none\n"
          "                       heavy blocks outlined and one function for kernels identical up\n"
          "                       to constants (default), for identical kernels only, or none\n"
          "  --time               print where the compile time went (wall and CPU per phase) on stderr\n"
          "  --help, --version\n",
          f);
}

/* A command-line mistake, as "netc: error: ..." with the bytes of the
 * user's arguments escaped like any other message (diag.c). */
static void arg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void arg_error(const char *fmt, ...)
{
    Buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    Diag d;
    diag_init(&d, stderr);
    diag_plain(&d, "%s", b.s);
    diag_free(&d);
    buf_free(&b);
}

/* The phases --dump can print, in pipeline order; "all" prints them all.
 * A new phase is a row here and a dumping() call in compile(). */
static const char *const dump_phases[] = {"ast",    "ir",      "shuffle", "grad",   "fuse",
                                          "fold",   "foldbn",  "algo",    "vectorize", "unroll",
                                          "privatize", "prepare", "outline", "family", "loops", "mem"};
enum { NDUMP_PHASES = sizeof dump_phases / sizeof dump_phases[0] };

static bool is_dump_phase(const char *s, size_t len)
{
    if (len == 3 && strncmp(s, "all", 3) == 0)
        return true;
    for (int i = 0; i < NDUMP_PHASES; i++)
        if (strlen(dump_phases[i]) == len && strncmp(s, dump_phases[i], len) == 0)
            return true;
    return false;
}

/* Every comma-separated name in `list` is a phase; otherwise says which
 * is not, with the valid ones and the closest. */
static bool check_dump_phases(const char *list)
{
    for (const char *s = list;;) {
        size_t len = strcspn(s, ",");
        if (!is_dump_phase(s, len)) {
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)len, s);
            Buf b = {0};
            for (int i = 0; i < NDUMP_PHASES; i++)
                buf_printf(&b, "%s%s", dump_phases[i], i + 1 < NDUMP_PHASES ? ", " : " or all");
            const char *close = len ? diag_suggest(word, dump_phases, NDUMP_PHASES) : NULL;
            if (close)
                arg_error("unknown dump phase '%s' (expected %s); did you mean '%s'?", word, b.s, close);
            else
                arg_error("unknown dump phase '%s' (expected %s)", word, b.s);
            buf_free(&b);
            return false;
        }
        if (!s[len])
            return true;
        s += len + 1;
    }
}

static bool dumping(const Options *o, const char *phase)
{
    if (!o->dump)
        return false;
    size_t n = strlen(phase);
    for (const char *s = o->dump; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && strncmp(s, phase, n) == 0)
            return true;
        if (len == 3 && strncmp(s, "all", 3) == 0)
            return true;
        s += len + (e != NULL);
    }
    return false;
}

static int parse_args(int argc, char **argv, Options *o)
{
    *o = (Options){.opt_level = 3};
    o->cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    o->backend = emit_llvm_available() ? "llvm" : "c";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field)                                                            \
    do {                                                                       \
        if (!val) {                                                            \
            arg_error("option '%s' needs a value", a);                        \
            return 2;                                                          \
        }                                                                      \
        o->field = val;                                                        \
        i++;                                                                   \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("netc %s\n", NETC_VERSION);
            exit(0);
        } else if (strcmp(a, "-o") == 0) {
            TAKE(output);
        } else if (strcmp(a, "--weights") == 0) {
            TAKE(weights);
        } else if (strcmp(a, "--backend") == 0) {
            TAKE(backend);
        } else if (strcmp(a, "--cc") == 0) {
            TAKE(cc);
        } else if (strcmp(a, "--target") == 0) {
            TAKE(target);
        } else if (strcmp(a, "--cpu") == 0) {
            TAKE(cpu);
        } else if (strcmp(a, "--features") == 0) {
            TAKE(features);
        } else if (strcmp(a, "--portable") == 0) {
            o->portable = true;
        } else if (strncmp(a, "--after=", 8) == 0) {
            o->after = a + 8;
            if (strcmp(o->after, "ir") && strcmp(o->after, "grad") && strcmp(o->after, "fuse")) {
                arg_error("unknown phase '%s' for --after (expected ir, grad or fuse)", o->after);
                return 2;
            }
        } else if (strcmp(a, "--backward") == 0) {
            o->backward = true;
        } else if (strcmp(a, "--no-fuse") == 0) {
            o->no_fuse = true;
        } else if (strcmp(a, "--no-batch-algo") == 0) {
            o->no_batch_algo = true;
        } else if (strcmp(a, "--no-fold") == 0) {
            o->no_fold = true;
        } else if (strcmp(a, "--no-fold-bn") == 0) {
            o->no_fold_bn = true;
        } else if (strncmp(a, "--share=", 8) == 0) {
            static const char *const modes[] = {"families", "exact", "none"};
            int m = 0;
            while (m < 3 && strcmp(a + 8, modes[m]))
                m++;
            if (m == 3) {
                arg_error("unknown sharing '%s' for --share (expected families, exact or none)", a + 8);
                return 2;
            }
            o->share = (ShareMode)m;
        } else if (strcmp(a, "--time") == 0) {
            timing_enable(true);
        } else if (strncmp(a, "--dump=", 7) == 0) {
            if (!check_dump_phases(a + 7))
                return 2;
            o->dump = a + 7;
        } else if (strcmp(a, "--autotune") == 0 || strncmp(a, "--autotune=", 11) == 0) {
            o->autotune = true;
            o->autotune_out = a[10] == '=' ? a + 11 : NULL;
            if (o->autotune_out && !*o->autotune_out) {
                arg_error("--autotune= needs a file name (or write --autotune for PROG.plan)");
                return 2;
            }
        } else if (strncmp(a, "--plan=", 7) == 0) {
            o->plan = a + 7;
            if (!*o->plan) {
                arg_error("--plan= needs a plan file (written by netc build --autotune)");
                return 2;
            }
        } else if (strncmp(a, "--algo=", 7) == 0) {
            if (!algo_parse(a + 7, &o->conv_algo) || o->conv_algo == ALGO_GEMM) {
                arg_error("unknown algorithm '%s' (expected auto, direct, im2col, winograd, winograd2, winograd4 or fft)",
                          a + 7);
                return 2;
            }
        } else if (a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt_level = a[2] - '0';
        } else if (a[0] == '-' && a[1]) {
            arg_error("unknown option '%s'", a);
            usage(stderr);
            return 2;
        } else if (!o->cmd) {
            o->cmd = a;
        } else if (!o->input) {
            o->input = a;
        } else {
            arg_error("unexpected argument '%s'", a);
            return 2;
        }
#undef TAKE
    }
    if (!o->cmd) {
        usage(stderr);
        return 2;
    }
    static const char *const cmds[] = {"check", "emit-c", "emit-llvm", "emit-obj", "build", "graph"};
    bool known = false;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        known |= strcmp(o->cmd, cmds[i]) == 0;
    if (!known) {
        const char *s = diag_suggest(o->cmd, cmds, (int)(sizeof cmds / sizeof cmds[0]));
        if (s)
            arg_error("unknown command '%s'; did you mean '%s'?", o->cmd, s);
        else
            arg_error("unknown command '%s'", o->cmd);
        return 2;
    }
    if (!o->input) {
        arg_error("'%s' needs a model file (netc %s model.net)", o->cmd, o->cmd);
        return 2;
    }
    if (strcmp(o->cmd, "check") != 0 && strcmp(o->cmd, "graph") != 0 && !o->output) {
        arg_error("'%s' needs an output: -o %s", o->cmd,
                strcmp(o->cmd, "build") == 0 ? "PROG" : "DIR");
        return 2;
    }
    if (o->weights && (strcmp(o->cmd, "check") == 0 || strcmp(o->cmd, "graph") == 0)) {
        arg_error("--weights embeds a checkpoint in generated code; '%s' generates none", o->cmd);
        return 2;
    }
    if (o->autotune && strcmp(o->cmd, "build") != 0) {
        arg_error("--autotune times kernels for 'netc build'; '%s' reads a plan with --plan=FILE", o->cmd);
        return 2;
    }
    if (o->autotune && o->plan) {
        arg_error("--autotune writes a plan and --plan reads one: give one of them");
        return 2;
    }
    if (o->autotune && (o->target || (o->cpu && strcmp(o->cpu, "native") != 0))) {
        arg_error("--autotune times the kernels on this machine; it cannot tune for --target or --cpu");
        return 2;
    }
    if (o->plan && strcmp(o->cmd, "graph") == 0) {
        arg_error("--plan applies to check, emit-c, emit-llvm, emit-obj and build");
        return 2;
    }
    if (strcmp(o->backend, "c") != 0 && strcmp(o->backend, "llvm") != 0) {
        arg_error("unknown backend '%s' (expected 'c' or 'llvm')", o->backend);
        return 2;
    }
    return 0;
}

/* ---- check: the layer table ---- */

static void print_layer_table(const Model *m, const Program *p)
{
    const Graph *g = m->g;
    long total_params = 0, total_macs = 0, total_state = 0;
    printf("network %s\n", m->name);
    printf("%-24s %-12s %-20s %10s %12s\n", "layer", "op", "output", "params", "MACs");
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (n->op == OP_PARAM || i == g->target || (op_flags(n->op) & OPF_LOSS) ||
            (m->grad_seed >= 0 && i >= m->grad_seed))
            continue;
        if (m->grad_of && i >= m->ngrad_of)
            continue;
        if (n->op != OP_INPUT && m->grad_of && g->loss >= 0 && i > g->loss)
            continue;
        long params = 0;
        for (int j = 0; j < n->nin; j++) {
            const Node *in = graph_node(g, n->in[j]);
            if (in->op == OP_PARAM && !in->p.param.state)
                params += shape_numel(&in->shape);
        }
        long macs = node_macs(g, n);
        total_params += params;
        total_macs += macs;
        char shape[96];
        FILE *sf = fmemopen(shape, sizeof shape, "w");
        shape_print(sf, &n->shape);
        fclose(sf);
        printf("%-24s %-12s %-20s %10ld %12ld", n->name, op_name(n->op), shape, params, macs);
        if (n->fused_into >= 0)
            printf("  fused into %s", g->node[n->fused_into]->name);
        if (n->folded_into >= 0)
            printf("  folded into %s", g->node[n->folded_into]->name);
        if (n->bn_into >= 0)
            printf("  inference: in %s", g->node[n->bn_into]->name);
        putchar('\n');
    }
    for (int i = 0; i < g->nnode; i++)
        if (g->node[i]->op == OP_PARAM && g->node[i]->p.param.state)
            total_state += shape_numel(&g->node[i]->shape);
    printf("total: %ld parameters (%ld bytes), %ld MACs per sample\n", total_params, total_params * 4,
           total_macs);
    if (total_state)
        printf("state: %ld floats (%ld bytes) not trained: running statistics, step counters\n",
               total_state, total_state * 4);
    for (int i = 0; i < p->nentry; i++) {
        const Entry *e = &p->entry[i];
        printf("%s arena: %ld + %ld*n floats (%ld bytes at n=1)\n", e->name, e->arena_fixed,
               e->arena_per_n, (e->arena_fixed + e->arena_per_n) * 4);
    }
    if (p->prep_floats)
        printf("prepared weights: %ld floats (%ld bytes), written once by prepare\n",
               p->prep_floats, p->prep_floats * 4);
}

/* ---- build: runs the C compiler / linker driver ---- */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The runtime library and header: $NETC_RUNTIME_LIB / $NETC_RUNTIME_INCLUDE,
 * else the build tree, else next to an installed netc (../lib/netc). */
static void runtime_paths(const char **lib, const char **inc, char *buf1, char *buf2, size_t n)
{
    *lib = getenv("NETC_RUNTIME_LIB");
    *inc = getenv("NETC_RUNTIME_INCLUDE");
    if (!*lib)
        *lib = NETC_RUNTIME_LIB;
    if (!*inc)
        *inc = NETC_RUNTIME_INCLUDE;
    if (file_exists(*lib) && file_exists(*inc))
        return;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = 0;
    snprintf(buf1, n, "%s/../lib/netc/libnetcrt.a", exe);
    snprintf(buf2, n, "%s/../include/netc", exe);
    if (file_exists(buf1) && file_exists(buf2)) {
        *lib = buf1;
        *inc = buf2;
    }
}

static double children_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

/* Runs the commands, at most `jobs` at a time; 0 when all succeeded, else
 * the first failure's exit status (-1: could not run). */
static int run_all(char **const *argv, int n, int jobs)
{
    int rc = 0, started = 0, done = 0, running = 0;
    double cpu0 = children_cpu();
    while (done < n) {
        while (started < n && running < jobs) {
            pid_t c = fork();
            if (c == 0) {
                execvp(argv[started][0], argv[started]);
                fprintf(stderr, "netc: error: cannot run '%s': %s\n", argv[started][0],
                        strerror(errno));
                _exit(127);
            }
            started++;
            if (c < 0) {
                rc = rc ? rc : -1;
                done++;
            } else {
                running++;
            }
        }
        if (!running)
            continue;
        int status;
        pid_t w = wait(&status);
        if (w < 0)
            return -1;
        running--;
        done++;
        int st = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (st && !rc)
            rc = st;
    }
    timing_add_child_cpu(children_cpu() - cpu0);
    return rc;
}

/* Runs one command and waits for it: its exit status (-1: could not run);
 * its CPU time counts in the open timing phase, as run_all's do. */
static int run(char **argv)
{
    return run_all(&argv, 1, 1);
}

static void remove_tree(const char *dir, const char *name)
{
    static const char *const ext[] = {".c", ".h", ".o", "_main.c", "_main.o"};
    char path[4096];
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, name, ext[i]);
        unlink(path);
    }
    for (int i = 0; i < PROGRAM_MAX_PARTS; i++) {
        snprintf(path, sizeof path, "%s/%s.%d.o", dir, name, i);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.%d.c", dir, name, i);
        unlink(path);
    }
    rmdir(dir);
}

/* `build` through LLVM splits the program into this many objects, built on
 * as many threads as the machine has CPUs (fixed, so that the program is
 * the same whatever machine builds it). */
enum { BUILD_PARTS = 4 };

/* Through C, each part's compiler parses the headers again (a sixth of a
 * second each while gcc parsed <immintrin.h>, less now), so a program of
 * fewer statements than BUILD_C_SMALL (program_weight) is two parts:
 * LeNet's build 1.36 -> 1.16 s, ResNet-18's 5.5 -> 5.3 s, VGG-16's 3.9 ->
 * 3.4 s on 2 cores; GoogLeNet (20,218) builds faster in four.  Like
 * BUILD_PARTS, it depends on the program alone. */
enum { BUILD_C_SMALL = 16000 };

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > EMIT_LLVM_MAX_PARTS ? EMIT_LLVM_MAX_PARTS : (int)n;
}

static bool build_program(const Program *p, const Options *o, Diag *d)
{
    char tmpl[] = "/tmp/netc-build-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        diag_plain(d, "cannot create a temporary directory: %s", strerror(errno));
        return false;
    }
    const char *name = p->m->name;
    char mainsrc[4200], libbuf[4200], incbuf[4200], incflag[4300];
    snprintf(mainsrc, sizeof mainsrc, "%s/%s_main.c", dir, name);
    const char *lib, *inc;
    runtime_paths(&lib, &inc, libbuf, incbuf, sizeof libbuf);
    snprintf(incflag, sizeof incflag, "-I%s", inc);
    /* Link to a temporary name beside the target, then rename: a failed
     * or interrupted build never leaves a half-written program. */
    char tmpout[4200];
    snprintf(tmpout, sizeof tmpout, "%s.netc-tmp", o->output);

    bool ok = false;
    int rc = -1;
    if (strcmp(o->backend, "c") == 0) {
        /* The parts compile in parallel, one compiler per CPU, then link. */
        int owner_buf[1], *owner = p->nkernel ? netc_alloc(sizeof(int) * (size_t)p->nkernel)
                                              : owner_buf;
        int nparts = program_split(p, program_weight(p) < BUILD_C_SMALL ? 2 : BUILD_PARTS, owner);
        timing_begin("emit C");
        bool emitted = emit_c_parts(p, dir, nparts, owner, d) && emit_c_main(p, mainsrc, d);
        timing_end();
        if (owner != owner_buf)
            free(owner);
        if (!emitted)
            goto out;
        char src[PROGRAM_MAX_PARTS + 1][4300], obj[PROGRAM_MAX_PARTS + 1][4300];
        char *cargv[PROGRAM_MAX_PARTS + 1][12], **cmds[PROGRAM_MAX_PARTS + 1];
        char *largv[PROGRAM_MAX_PARTS + 16];
        int nl = 0;
        largv[nl++] = (char *)o->cc;
        largv[nl++] = "-o";
        largv[nl++] = tmpout;
        for (int i = 0; i <= nparts; i++) {
            if (i < nparts) {
                snprintf(src[i], sizeof src[i], "%s/%s.%d.c", dir, name, i);
                snprintf(obj[i], sizeof obj[i], "%s/%s.%d.o", dir, name, i);
            } else {
                snprintf(src[i], sizeof src[i], "%s", mainsrc);
                snprintf(obj[i], sizeof obj[i], "%s/%s_main.o", dir, name);
            }
            /* -O2: the kernels are vectorised, unrolled and blocked by netc
             * already; gcc's -O3 took twice as long for the same run time */
            char *a[] = {(char *)o->cc, "-std=c99", "-O2", o->portable ? "-O2" : "-march=native",
                         "-c", "-o", obj[i], src[i], incflag, NULL};
            memcpy(cargv[i], a, sizeof a);
            cmds[i] = cargv[i];
            largv[nl++] = obj[i];
        }
        char *tail[] = {(char *)lib, "-lz", "-lm", "-pthread", NETC_PROGRAM_LDFLAGS, NULL};
        for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
            largv[nl++] = tail[i];
        timing_begin("cc: compile (parallel)");
        rc = run_all(cmds, nparts + 1, online_cpus());
        timing_end();
        if (rc == 0) {
            timing_begin("cc: link");
            rc = run(largv);
            timing_end();
        }
    } else {
        LlvmOptions lo = {o->target, o->cpu, o->features, o->opt_level};
        char prefix[4200], objs[EMIT_LLVM_MAX_PARTS][4300];
        snprintf(prefix, sizeof prefix, "%s/%s", dir, name);
        int nobj = emit_llvm_parts(p, &lo, prefix, BUILD_PARTS, online_cpus(), true, d);
        if (nobj == 0)
            goto out;
        char *argv[EMIT_LLVM_MAX_PARTS + 16];
        int na = 0;
        argv[na++] = (char *)o->cc;
        argv[na++] = "-o";
        argv[na++] = tmpout;
        for (int i = 0; i < nobj; i++) {
            snprintf(objs[i], sizeof objs[i], "%s.%d.o", prefix, i);
            argv[na++] = objs[i];
        }
        char *tail[] = {(char *)lib, "-lz", "-lm", "-pthread", NETC_PROGRAM_LDFLAGS, NULL};
        for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
            argv[na++] = tail[i];
        timing_begin("link");
        rc = run(argv);
        timing_end();
    }
    if (rc != 0)
        diag_plain(d, "'%s' failed (exit status %d) while building '%s'", o->cc, rc, o->output);
    else if (rename(tmpout, o->output) != 0)
        diag_plain(d, "cannot write '%s': %s", o->output, strerror(errno));
    else
        ok = true;
    if (!ok)
        unlink(tmpout);
out:
    remove_tree(dir, name);
    return ok;
}

static bool ensure_dir(const char *dir, Diag *d)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        diag_plain(d, "cannot create directory '%s': %s", dir, strerror(errno));
        return false;
    }
    return true;
}

/* ---- graph: DOT, or SVG through Graphviz's dot ---- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Writes the DOT text to o->output (stdout without -o); a .svg output is
 * drawn by `dot -Tsvg`, written beside the target and renamed, so a failed
 * drawing leaves no half-written file. */
static bool write_graph(const Options *o, const Model *m, const Sched *s, Diag *d)
{
    if (!o->output) {
        graph_dot(stdout, m, s, o->backward);
        return true;
    }
    bool svg = ends_with(o->output, ".svg");
    char dotpath[4200], tmpout[4200];
    snprintf(dotpath, sizeof dotpath, "%s.netc-tmp.dot", o->output);
    snprintf(tmpout, sizeof tmpout, "%s.netc-tmp", o->output);
    const char *target = svg ? dotpath : tmpout;
    FILE *f = fopen(target, "w");
    if (!f) {
        diag_plain(d, "cannot write '%s': %s", o->output, strerror(errno));
        return false;
    }
    graph_dot(f, m, s, o->backward);
    bool ok = fclose(f) == 0;
    if (ok && svg) {
        char *argv[] = {"dot", "-Tsvg", dotpath, "-o", tmpout, NULL};
        int rc = run(argv);
        unlink(dotpath);
        if (rc == 127) {
            diag_plain(d, "drawing '%s' needs Graphviz's 'dot' (Debian: apt-get install graphviz); "
                          "or write DOT: -o %.*s.dot", o->output, (int)(strlen(o->output) - 4), o->output);
            return false;
        }
        ok = rc == 0;
        if (!ok)
            diag_plain(d, "'dot' failed (exit status %d) drawing '%s'", rc, o->output);
    }
    if (ok && rename(tmpout, o->output) != 0) {
        diag_plain(d, "cannot write '%s': %s", o->output, strerror(errno));
        ok = false;
    }
    if (!ok)
        unlink(tmpout);
    return ok;
}

static bool graph_after(const Options *o, const char *phase)
{
    return strcmp(o->cmd, "graph") == 0 && strcmp(o->after ? o->after : "fuse", phase) == 0;
}

/* ---- the pipeline ---- */

/* The command's output: the layer table, or the generated code. */
static bool write_output(const Options *o, Program *p, Diag *d)
{
    const Model *m = p->m;
    bool ok = true;
    if (strcmp(o->cmd, "check") == 0) {
        print_layer_table(m, p);
    } else if (strcmp(o->cmd, "emit-c") == 0) {
        ok = ensure_dir(o->output, d) && emit_c(p, o->output, d);
    } else if (strcmp(o->cmd, "build") == 0) {
        ok = build_program(p, o, d);
    } else {
        LlvmOptions lo = {o->target, o->cpu, o->features, o->opt_level};
        char path[4096];
        ok = ensure_dir(o->output, d);
        if (ok && strcmp(o->cmd, "emit-llvm") == 0) {
            snprintf(path, sizeof path, "%s/%s.ll", o->output, m->name);
            ok = emit_llvm_ir(p, &lo, path, d);
        } else if (ok) {
            snprintf(path, sizeof path, "%s/%s.o", o->output, m->name);
            ok = emit_llvm_obj(p, &lo, path, false, d);
            snprintf(path, sizeof path, "%s/%s.h", o->output, m->name);
            ok = ok && emit_c_header(p, path, d);
        }
    }
    return ok;
}

/* build --autotune: times the candidates (autotune.c) and writes the
 * plan the build then uses. */
static Plan *tune(const Options *o, const Model *m, const Target *t, Diag *d)
{
    AutotuneOptions ao = {o->backend, o->cc, {o->target, o->cpu, o->features, o->opt_level}, o->share,
                          sched_batch(m)};
    Plan *plan = arena_alloc(m->arena, sizeof *plan);
    timing_begin("autotune");
    bool ok = autotune(m, t, &ao, plan, d);
    timing_end();
    if (!ok)
        return NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s.plan", o->output);
    plan->file = arena_strdup(m->arena, o->autotune_out ? o->autotune_out : path);
    char *header = arena_printf(
        m->arena,
        "# netc plan: the convolution algorithm of each node of network '%s' (%s),\n"
        "# measured by netc build --autotune on %s, %s backend, batch %d,\n"
        "# one thread: median CPU milliseconds per call of each candidate.\n"
        "# netc build, check, emit-c and emit-obj read it with --plan=FILE (--algo= and a\n"
        "# layer's algo= come first); a line: layer pass signature algorithm\n"
        "# [below=BATCH:algorithm | from=BATCH:algorithm] candidate=ms...\n",
        m->name, m->file ? m->file : o->input, t->name, o->backend, ao.batch);
    return plan_write(plan, header, plan->file, d) ? plan : NULL;
}

static int compile(const Options *o)
{
    Diag d;
    diag_init(&d, stderr);
    int status = 1;
    Program *p = NULL;

    timing_begin("front end");
    Model *m = frontend_load_dump(o->input, &d, dumping(o, "ast") ? stdout : NULL);
    timing_end();
    if (!m)
        goto done;
    if (dumping(o, "ir"))
        graph_print(stdout, m->g);
    if (graph_after(o, "ir")) {
        status = write_graph(o, m, NULL, &d) ? 0 : 1;
        goto done;
    }
    timing_begin("shuffle");
    shuffle_groups(m, &d);
    timing_end();
    if (d.nerror)
        goto done;
    if (dumping(o, "shuffle"))
        graph_print(stdout, m->g);
    NETC_ASSERT(graph_verify(m->g, stderr));
    timing_begin("autodiff");
    if (m->g->loss >= 0)
        autodiff(m, m->g->loss, -1);
    timing_end();
    if (dumping(o, "grad"))
        graph_print(stdout, m->g);
    NETC_ASSERT(graph_verify(m->g, stderr));
    timing_begin("fuse");
    if (!o->no_fuse && !graph_after(o, "grad"))
        fuse_epilogues(m);
    timing_end();
    if (dumping(o, "fuse"))
        graph_print(stdout, m->g);
    NETC_ASSERT(graph_verify(m->g, stderr));
    timing_begin("fold");
    if (!o->no_fold && !graph_after(o, "grad"))
        fold_shuffles(m);
    timing_end();
    if (dumping(o, "fold"))
        graph_print(stdout, m->g);
    NETC_ASSERT(graph_verify(m->g, stderr));
    timing_begin("fold batch norm");
    if (!o->no_fold_bn && !graph_after(o, "grad"))
        fold_batchnorms(m);
    timing_end();
    if (dumping(o, "foldbn"))
        graph_print(stdout, m->g);
    NETC_ASSERT(graph_verify(m->g, stderr));
    m->conv_algo = o->conv_algo;
    m->no_batch_algo = o->no_batch_algo;
    /* The C backend compiles with -march=native unless --portable: then
     * the code may assume only the architecture's baseline. */
    bool portable = !strcmp(o->cmd, "build") && !strcmp(o->backend, "c") && o->portable;
    Target tgt;
    if (!target_describe(&tgt, o->target, portable ? "x86-64" : o->cpu, o->features, &d))
        goto done;
    Plan *plan = o->plan ? plan_read(m->arena, o->plan, &d) : NULL;
    if (o->plan && !plan)
        goto done;
    if (o->autotune && !(plan = tune(o, m, &tgt, &d)))
        goto done;
    timing_begin("schedule");
    Sched *s = sched_choose_for(m, &tgt, plan, &d);
    timing_end();
    if (graph_after(o, "grad") || graph_after(o, "fuse")) {
        status = write_graph(o, m, s, &d) ? 0 : 1;
        goto done;
    }
    if (dumping(o, "algo")) {
        target_print(stdout, &tgt);
        sched_print(stdout, m, s);
    }
    timing_begin("lower and plan memory");
    ProgramOptions po = {dumping(o, "vectorize") ? stdout : NULL, dumping(o, "unroll") ? stdout : NULL,
                         dumping(o, "privatize") ? stdout : NULL, dumping(o, "outline") ? stdout : NULL,
                         dumping(o, "family") ? stdout : NULL, dumping(o, "prepare") ? stdout : NULL,
                         o->share};
    p = program_build_opts(m, s, &tgt, &po);
    timing_end();
    if (dumping(o, "loops"))
        for (int i = 0; i < p->nkernel; i++)
            kernel_print(stdout, p->kernel[i]);
    if (dumping(o, "mem"))
        program_print_mem(stdout, p);

    /* Every command that generates code embeds the weights it is given. */
    bool ok = (!o->weights || program_load_weights(p, o->weights, &d)) && write_output(o, p, &d);
    status = ok && d.nerror == 0 ? 0 : 1;
done:
    timing_report(stderr);
    if (d.nerror)
        fprintf(stderr, "%d error%s\n", d.nerror, d.nerror == 1 ? "" : "s");
    program_free(p);
    model_free(m);
    diag_free(&d);
    return status;
}

int main(int argc, char **argv)
{
    Options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    return compile(&o);
}
