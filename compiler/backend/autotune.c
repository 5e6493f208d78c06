/* autotune.c - measures each convolution node's candidate algorithms.
 *
 * Needs: a model after the graph passes (the nodes sched_choose_for
 * schedules) and the host's target.  Provides: a Plan with one entry per
 * convolution node an entry calls: its signature, the fastest candidate
 * and every candidate's median milliseconds per call.  Nothing else is
 * changed; the schedule applies the plan like one read from a file.
 *
 * How: for each algorithm some node can run, the whole program is built
 * through the ordinary pipeline with that algorithm on every node it fits
 * (the cost model's choice elsewhere), so a timed kernel is exactly the
 * one a build would contain.  A second, tiny program is made of its
 * kernels: one entry per timed node, calling just that node's kernel with
 * every buffer in an arena of its own.  It is emitted by the chosen
 * backend (LLVM: an object; C: a source the C compiler builds), linked
 * into a shared object with `cc -shared`, and loaded with dlopen.  Every
 * buffer is filled with uniform random numbers in [-1, 1) (fixed seed);
 * each candidate runs once to warm up, then 5 repetitions of enough calls
 * to last about 2 ms, timed in CPU time of this thread (the kernels run
 * serially: no thread pool is set), and the median counts.  Candidates
 * run in the cost model's order; one whose warm-up call takes more than 4
 * times the best so far is not repeated (its one call is its time).  A
 * forward conv's candidates are also timed at batch 1 (at 32 for a model
 * whose batch is 1); when another is faster there by SCHED_ALT_GAIN, the
 * two are timed at the powers of two in between, and the entry names the
 * other's batches (below=N:ALGO, from=N:ALGO; sched.c, "the algorithm by
 * batch").
 *
 * Example: `netc build lenet.net -o lenet --autotune` writes lenet.plan:
 *
 *   c1 conv [1,28,28]->[6,28,28],k5x5,s1x1,d1x1,p2:2x2:2,g1 direct direct=0.11 im2col=0.3
 */
#include "autotune.h"

#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emit_c.h"

extern char **environ;

enum { REPS = 5, SLOW = 4 };
#define REP_SECONDS 2e-3

typedef void (*EntryFn)(int n, float *params, float *grads, float *arena, float **in, float **out);

/* One candidate's build: its shared object and, per node, whether it
 * has an entry timing the node's kernel, and that entry (NULL: the
 * algorithm does not fit the node, or no entry calls it). */
typedef struct {
    Algo algo;
    void *so;
    bool *timed;
    EntryFn *fn;
    long arena_floats;
} Build;

static int run_cmd(char **argv)
{
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool is_conv(Op op)
{
    return op == OP_CONV || op == OP_CONV_DX || op == OP_CONV_DW || op == OP_CONV_TRANSPOSE;
}

static bool fits(const Graph *g, const Node *n, const Target *t, Algo a)
{
    Algo c[ALGO_COUNT];
    int k = sched_candidates(g, n, t, 1, c, NULL);
    for (int i = 0; i < k; i++)
        if (c[i] == a)
            return true;
    return false;
}

/* The program of timing entries "t<node>" for build b, each calling the
 * node's first kernel call in p with its buffers laid out in one arena. */
static Program timing_program(const Program *p, const int *nodes, int nnode, Build *b, Arena *a)
{
    Program q = *p;
    q.entry = arena_alloc(a, sizeof(Entry) * (size_t)(nnode ? nnode : 1));
    q.nentry = 0;
    b->arena_floats = 0;
    for (int k = 0; k < nnode; k++) {
        const Call *found = NULL;
        for (int e = 0; e < p->nentry && !found; e++)
            for (int c = 0; c < p->entry[e].ncall && !found; c++)
                if (p->entry[e].call[c].node == nodes[k] && p->sched[nodes[k]].algo == b->algo)
                    found = &p->entry[e].call[c];
        if (!found)
            continue;
        const Kernel *kern = found->kernel;
        Call *call = arena_alloc(a, sizeof *call);
        *call = *found;
        call->n_lo = call->n_hi = 0; /* timed at every batch */
        call->arg = arena_alloc(a, sizeof(Loc) * (size_t)(kern->nbuf ? kern->nbuf : 1));
        long fixed = 0, per_n = 0;
        for (int i = 0; i < kern->nbuf; i++) {
            /* each buffer 16-float aligned: fixed part and per-sample part */
            call->arg[i] = (Loc){LOC_ARENA, fixed, per_n, 0};
            fixed += (kern->buf[i].size_fixed + 15) / 16 * 16;
            per_n += (kern->buf[i].size_per_n + 15) / 16 * 16;
        }
        Entry *en = &q.entry[q.nentry++];
        *en = (Entry){0};
        en->name = arena_printf(a, "t%d", nodes[k]);
        en->call = call;
        en->ncall = 1;
        en->arena_fixed = en->naive_fixed = fixed;
        en->arena_per_n = en->naive_per_n = per_n;
        b->timed[k] = true; /* its entry is resolved after loading */
    }
    return q;
}

/* Emits q, links it into DIR/a<algo>.so and loads it. */
static bool load(const Program *q, const AutotuneOptions *o, const char *dir, Build *b, Diag *d)
{
    char src[4400], obj[4200], so[4200], sub[4200];
    snprintf(so, sizeof so, "%s/a%d.so", dir, (int)b->algo);
    int rc;
    if (!strcmp(o->backend, "c")) {
        snprintf(sub, sizeof sub, "%s/a%d", dir, (int)b->algo);
        if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
            diag_plain(d, "autotune: cannot create '%s': %s", sub, strerror(errno));
            return false;
        }
        if (!emit_c(q, sub, d))
            return false;
        snprintf(src, sizeof src, "%s/%s.c", sub, q->m->name);
        char *argv[] = {(char *)o->cc, "-std=c99", "-O2", "-march=native", "-fPIC", "-shared",
                        "-o", so, src, "-lm", NULL};
        rc = run_cmd(argv);
    } else {
        snprintf(obj, sizeof obj, "%s/a%d.o", dir, (int)b->algo);
        if (!emit_llvm_obj(q, &o->llvm, obj, false, d))
            return false;
        char *argv[] = {(char *)o->cc, "-shared", "-o", so, obj, "-lm", NULL};
        rc = run_cmd(argv);
    }
    if (rc != 0) {
        diag_plain(d, "autotune: '%s' failed (exit status %d) building the %s kernels", o->cc, rc,
                   algo_name(b->algo));
        return false;
    }
    b->so = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!b->so) {
        diag_plain(d, "autotune: cannot load '%s': %s", so, dlerror());
        return false;
    }
    return true;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds per call of f; after the warm-up only, when that took
 * more than `cutoff` (> 0). */
static double time_entry(EntryFn f, int batch, float *arena, double cutoff)
{
    double t0 = cpu_seconds();
    f(batch, NULL, NULL, arena, NULL, NULL);
    double once = cpu_seconds() - t0;
    if (cutoff > 0 && once > cutoff)
        return once;
    int inner = once > 0 ? (int)(REP_SECONDS / once) + 1 : 1000;
    if (inner > 1000)
        inner = 1000;
    double rep[REPS];
    for (int r = 0; r < REPS; r++) {
        t0 = cpu_seconds();
        for (int i = 0; i < inner; i++)
            f(batch, NULL, NULL, arena, NULL, NULL);
        rep[r] = (cpu_seconds() - t0) / inner;
    }
    qsort(rep, REPS, sizeof rep[0], cmp_double);
    return rep[REPS / 2];
}

/* Node k's build of algorithm a, or NULL. */
static const Build *build_of(const Build *builds, int nb, int k, Algo a)
{
    for (int b = 0; b < nb; b++)
        if (builds[b].algo == a && builds[b].fn[k])
            return &builds[b];
    return NULL;
}

/* A forward conv's second algorithm: its candidates timed at batch
 * `probe`; when the fastest there is not the entry's and faster by
 * SCHED_ALT_GAIN, the two are timed at the powers of two between probe
 * and `batch` to find where they cross, and e gets the other's batches. */
static void time_alt(const Build *builds, int nb, int k, const Algo *cand, int nc, int besti, int batch,
                     int probe, float *arena, PlanEntry *e)
{
    const Build *primary = build_of(builds, nb, k, cand[besti]);
    double tp = time_entry(primary->fn[k], probe, arena, 0), best = tp;
    int alti = besti;
    for (int i = 0; i < nc; i++) {
        const Build *b = build_of(builds, nb, k, cand[i]);
        if (i == besti || !b)
            continue;
        double sec = time_entry(b->fn[k], probe, arena, SLOW * best);
        if (sec < best) {
            best = sec;
            alti = i;
        }
    }
    if (alti == besti || best >= SCHED_ALT_GAIN * tp)
        return;
    const Build *alt = build_of(builds, nb, k, cand[alti]);
    bool small = batch > probe; /* the second algorithm is for the smaller batches */
    int last = small ? batch : probe, cross = 2;
    for (; cross < last; cross *= 2) {
        double ta = time_entry(alt->fn[k], cross, arena, 0), tq = time_entry(primary->fn[k], cross, arena, 0);
        if (small ? tq <= ta : ta < tq)
            break;
    }
    if (cross > last)
        cross = last;
    e->alt = cand[alti];
    e->alt_name = algo_name(e->alt);
    e->alt_lo = small ? 0 : cross;
    e->alt_hi = small ? cross : 0;
}

static void fill_random(float *x, long n)
{
    unsigned long s = 0x2545F4914F6CDD1DUL;
    for (long i = 0; i < n; i++) {
        s = s * 6364136223846793005UL + 1442695040888963407UL;
        x[i] = (float)((double)(s >> 40) / (double)(1UL << 24) * 2.0 - 1.0);
    }
}

static void remove_dir(const char *dir, const Model *m)
{
    char path[4300];
    for (int a = 0; a < ALGO_COUNT; a++) {
        snprintf(path, sizeof path, "%s/a%d.so", dir, a);
        unlink(path);
        snprintf(path, sizeof path, "%s/a%d.o", dir, a);
        unlink(path);
        snprintf(path, sizeof path, "%s/a%d/%s.c", dir, a, m->name);
        unlink(path);
        snprintf(path, sizeof path, "%s/a%d/%s.h", dir, a, m->name);
        unlink(path);
        snprintf(path, sizeof path, "%s/a%d", dir, a);
        rmdir(path);
    }
    rmdir(dir);
}

bool autotune(const Model *m, const Target *t, const AutotuneOptions *o, Plan *plan, Diag *d)
{
    const Graph *g = m->g;
    *plan = (Plan){0};
    int *nodes = arena_alloc(m->arena, sizeof(int) * (size_t)(g->nnode ? g->nnode : 1));
    int nnode = 0;
    bool want[ALGO_COUNT] = {false};
    for (int i = 0; i < g->nnode; i++)
        if (is_conv(g->node[i]->op)) {
            Algo c[ALGO_COUNT];
            int k = sched_candidates(g, g->node[i], t, o->batch, c, NULL);
            for (int j = 0; j < k; j++)
                want[c[j]] = true;
            nodes[nnode++] = i;
        }
    if (!nnode)
        return true;

    char tmpl[] = "/tmp/netc-autotune-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        diag_plain(d, "autotune: cannot create a temporary directory: %s", strerror(errno));
        return false;
    }
    Build builds[ALGO_COUNT];
    int nb = 0;
    /* the batches timed: the model's, and for a forward conv's second
     * algorithm (sched.c, "the algorithm by batch") the probe */
    int probe = o->batch > 1 ? 1 : SCHED_ALT_PROBE, most = o->batch > probe ? o->batch : probe;
    bool ok = true;
    Sched *base = sched_choose_for(m, t, NULL, NULL);
    for (int a = 0; a < ALGO_COUNT && ok; a++) {
        if (!want[a])
            continue;
        Build *b = &builds[nb++];
        *b = (Build){(Algo)a, NULL, arena_alloc(m->arena, sizeof(bool) * (size_t)nnode),
                     arena_alloc(m->arena, sizeof(EntryFn) * (size_t)nnode), 0};
        Sched *s = arena_alloc(m->arena, sizeof(Sched) * (size_t)g->nnode);
        memcpy(s, base, sizeof(Sched) * (size_t)g->nnode);
        for (int i = 0; i < g->nnode; i++)
            s[i].alt = ALGO_NONE; /* only the timed kernels matter */
        for (int k = 0; k < nnode; k++)
            if (fits(g, g->node[nodes[k]], t, (Algo)a))
                s[nodes[k]] = (Sched){.algo = (Algo)a, .why = "autotune"};
        ProgramOptions po = {.share = o->share};
        Program *p = program_build_opts(m, s, t, &po);
        Program q = timing_program(p, nodes, nnode, b, m->arena);
        if (q.nentry)
            ok = load(&q, o, dir, b, d);
        for (int k = 0; k < nnode && ok; k++) {
            if (!b->timed[k])
                continue;
            char sym[512];
            snprintf(sym, sizeof sym, "%s_t%d", m->name, nodes[k]);
            /* POSIX: a function's address read through a void * */
            void *addr = dlsym(b->so, sym);
            memcpy(&b->fn[k], &addr, sizeof addr);
            if (!b->fn[k]) {
                diag_plain(d, "autotune: no symbol '%s' in the %s kernels", sym, algo_name(b->algo));
                ok = false;
            }
            for (int e = 0; e < q.nentry; e++)
                if (!strcmp(q.entry[e].name, sym + strlen(m->name) + 1)) {
                    long f = q.entry[e].arena_fixed + q.entry[e].arena_per_n * most;
                    b->arena_floats = f > b->arena_floats ? f : b->arena_floats;
                }
        }
        program_free(p);
    }

    long arena_floats = 16;
    for (int i = 0; i < nb; i++)
        arena_floats = builds[i].arena_floats > arena_floats ? builds[i].arena_floats : arena_floats;
    float *arena = ok ? aligned_alloc(64, (size_t)(arena_floats + 15) / 16 * 16 * sizeof(float)) : NULL;
    if (ok && !arena) {
        diag_plain(d, "autotune: cannot allocate %ld floats of data", arena_floats);
        ok = false;
    }
    if (ok) {
        fill_random(arena, arena_floats);
        plan->e = arena_alloc(m->arena, sizeof(PlanEntry) * (size_t)nnode);
        plan->cap = nnode;
    }
    for (int k = 0; k < nnode && ok; k++) {
        const Node *n = g->node[nodes[k]];
        Algo cand[ALGO_COUNT];
        double est[ALGO_COUNT], ms[ALGO_COUNT];
        int nc = sched_candidates(g, n, t, o->batch, cand, est);
        /* in the cost model's order, so a slow candidate can stop early */
        int order[ALGO_COUNT];
        for (int i = 0; i < nc; i++) {
            int j = i;
            while (j > 0 && est[order[j - 1]] > est[i]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = i;
        }
        double best = 0;
        int besti = -1;
        for (int r = 0; r < nc; r++) {
            int i = order[r];
            ms[i] = -1;
            for (int b = 0; b < nb; b++)
                if (builds[b].algo == cand[i] && builds[b].fn[k]) {
                    double sec = time_entry(builds[b].fn[k], o->batch, arena, besti >= 0 ? SLOW * best : 0);
                    ms[i] = sec * 1e3;
                    if (besti < 0 || sec < best) {
                        best = sec;
                        besti = i;
                    }
                }
        }
        if (besti < 0)
            continue; /* no entry calls the node */
        PlanEntry *e = &plan->e[plan->n++];
        *e = (PlanEntry){0};
        e->layer = n->name;
        e->pass = n->op;
        e->sig = sched_signature(m->arena, g, n);
        e->algo = cand[besti];
        e->algo_name = algo_name(e->algo);
        if (n->op == OP_CONV)
            time_alt(builds, nb, k, cand, nc, besti, o->batch, probe, arena, e);
        for (int i = 0; i < nc && e->ntime < PLAN_MAX_TIMES; i++)
            if (ms[i] >= 0) {
                e->time_name[e->ntime] = algo_name(cand[i]);
                e->time_ms[e->ntime++] = ms[i];
            }
    }
    free(arena);
    for (int i = 0; i < nb; i++)
        if (builds[i].so)
            dlclose(builds[i].so);
    remove_dir(dir, m);
    return ok;
}
