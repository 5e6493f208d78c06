/* layer_main: times one netc-generated network's entries, for bench/suite.sh.
 *
 * Compiled once per network against a shim header that names the model's
 * entries and sizes (bench/suite.py writes it next to the generated NAME.h):
 *
 *   #include "NAME.h"
 *   #define MODEL_NAME "NAME"
 *   #define MODEL_PARAM_FLOATS           NAME_UC_PARAM_FLOATS
 *   #define MODEL_ARENA_FLOATS(n)        NAME_UC_ARENA_FLOATS(n)
 *   #define MODEL_FORWARD                NAME_forward
 *   #define MODEL_FORWARD_IN0_FLOATS(n)  ...   (and _OUT0_)
 *   #define MODEL_TRAIN                  NAME_train   (when there is one)
 *   #define MODEL_TRAIN_IN0_FLOATS(n)    ...   (and _IN1_, _OUT0_, _OUT1_)
 *   #define MODEL_SET_PARALLEL           NAME_set_parallel  (when NAME_UC_HAS_SET_PARALLEL)
 *   #define MODEL_PREPARE                NAME_prepare       (when there is one, with
 *   #define MODEL_FORWARD_PREPARED       NAME_forward_prepared   MODEL_PREP_FLOATS)
 *
 * With MODEL_PREPARE, forward mode times the prepared entry, as a program
 * that deploys the network runs it: NAME_prepare once for the parameters,
 * then NAME_forward_prepared per batch (docs/codegen.md, "Prepared
 * weights").  --plain times NAME_forward, which redoes that work per call.
 *
 *   cc -std=gnu11 -O2 -include shim.h -Igen bench/layer_main.c gen/NAME.o -lm
 *   ./a.out [--mode forward|train] [--batch N] [--threads N] [--seconds S] [--reps R] [--plain]
 *   ./a.out --serve        (commands on stdin, one result line each)
 *
 * One measurement ("repetition") times `iters` back-to-back calls of the
 * entry with clock_gettime, after one warm-up call; `iters` is calibrated
 * once per (mode, batch, threads) so that a repetition lasts about S
 * seconds.  Each repetition prints one line:
 *
 *   netc model=NAME mode=train batch=32 threads=2 threading=serial iters=3 sec_per_iter=0.0123
 *
 * threading is "pool" when the network has NAME_set_parallel and the entries
 * run on a netc_pool of `threads` threads (a pool of 1 thread for --threads 1,
 * so the 1-thread number includes the pool's overhead), "serial" when the
 * generated code is single-threaded: then --threads only labels the line.
 *
 * Inputs are uniform in [-1, 1), parameters in [-0.1, 0.1); the train
 * entry's target is all zeros, which is a valid mse target and class 0 for
 * softmax cross-entropy.  The values do not change the work done.
 *
 * --serve reads lines "run MODE BATCH THREADS" and "quit", so bench/suite.py
 * can interleave repetitions of netc and PyTorch over one warmed-up process
 * per side.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef MODEL_FORWARD
#error "compile with -include SHIM.h (see the comment at the top of bench/layer_main.c)"
#endif

#ifdef MODEL_SET_PARALLEL
#include "netc_pool.h"
#endif

enum { MODE_FORWARD, MODE_TRAIN };
#define MAX_THREADS 64

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;   /* aligned_alloc wants a multiple */
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "layer_main: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static void fill(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        p[i] = scale * ((float)(rng_state >> 40) * (2.0f / 16777216.0f) - 1.0f);
    }
}

/* Buffers for the largest batch asked for so far; both entries share them. */
static struct {
    int batch;
    float *params, *grads, *arena, *x, *target, *y, *loss, *prep;
    int plain;   /* forward mode runs NAME_forward even when there is a prepared entry */
} B;

static void reserve(int batch)
{
    if (!B.params) {
        B.params = alloc_floats(MODEL_PARAM_FLOATS);
        B.grads = alloc_floats(MODEL_PARAM_FLOATS);
        fill(B.params, MODEL_PARAM_FLOATS, 0.1f);
        B.loss = alloc_floats(1);
    }
    if (batch <= B.batch)
        return;
    free(B.arena);
    free(B.x);
    free(B.y);
    free(B.target);
    B.batch = batch;
    B.arena = alloc_floats(MODEL_ARENA_FLOATS(batch));
    B.x = alloc_floats(MODEL_FORWARD_IN0_FLOATS(batch));
    B.y = alloc_floats(MODEL_FORWARD_OUT0_FLOATS(batch));
    fill(B.x, MODEL_FORWARD_IN0_FLOATS(batch), 1.0f);
#ifdef MODEL_PREPARE
    if (!B.prep) {
        B.prep = alloc_floats(MODEL_PREP_FLOATS);
        MODEL_PREPARE(B.params, B.prep, B.arena);
    }
#endif
#ifdef MODEL_TRAIN
    B.target = alloc_floats(MODEL_TRAIN_IN1_FLOATS(batch));
    memset(B.target, 0, MODEL_TRAIN_IN1_FLOATS(batch) * sizeof(float));
    /* The train entry reads the same input and writes the same output. */
    _Static_assert(MODEL_TRAIN_IN0_FLOATS(1) == MODEL_FORWARD_IN0_FLOATS(1), "one input");
    _Static_assert(MODEL_TRAIN_OUT0_FLOATS(1) == MODEL_FORWARD_OUT0_FLOATS(1), "one output");
#endif
}

/* Puts the entries on `threads` threads; returns the threading label. */
static const char *set_threads(int threads)
{
#ifdef MODEL_SET_PARALLEL
    static void *pools[MAX_THREADS + 1];   /* kept for the process's life */
    if (!pools[threads])
        pools[threads] = netc_pool_new(threads);
    MODEL_SET_PARALLEL(netc_pool_run, pools[threads]);
    return "pool";
#else
    (void)threads;
    return "serial";
#endif
}

static void call(int mode, int batch)
{
    if (mode == MODE_FORWARD) {
        const float *in[1] = {B.x};
        float *out[1] = {B.y};
#ifdef MODEL_PREPARE
        if (!B.plain) {
            MODEL_FORWARD_PREPARED(batch, B.params, B.prep, B.arena, in, out);
            return;
        }
#endif
        MODEL_FORWARD(batch, B.params, NULL, B.arena, in, out);
    } else {
#ifdef MODEL_TRAIN
        const float *in[2] = {B.x, B.target};
        float *out[2] = {B.y, B.loss};
        MODEL_TRAIN(batch, B.params, B.grads, B.arena, in, out);
#endif
    }
}

static double time_calls(int mode, int batch, long iters)
{
    double t0 = now();
    for (long i = 0; i < iters; i++)
        call(mode, batch);
    return now() - t0;
}

/* Calibrated iteration counts, per (mode, batch, threads). */
typedef struct { int mode, batch, threads; long iters; } Cal;
static Cal cal[64];
static int ncal;

static long calibrate(int mode, int batch, int threads, double seconds)
{
    for (int i = 0; i < ncal; i++)
        if (cal[i].mode == mode && cal[i].batch == batch && cal[i].threads == threads)
            return cal[i].iters;
    call(mode, batch);   /* warm-up: page faults, caches */
    long iters = 1;
    double t;
    while ((t = time_calls(mode, batch, iters)) < seconds / 4)
        iters *= 2;
    iters = (long)((double)iters * seconds / t + 0.5);
    if (iters < 1)
        iters = 1;
    if (ncal < (int)(sizeof cal / sizeof *cal))
        cal[ncal++] = (Cal){mode, batch, threads, iters};
    return iters;
}

static int measure(int mode, int batch, int threads, double seconds)
{
#ifndef MODEL_TRAIN
    if (mode == MODE_TRAIN) {
        fprintf(stderr, "layer_main: %s has no train entry\n", MODEL_NAME);
        return 1;
    }
#endif
    if (batch < 1 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "layer_main: need batch >= 1 and 1 <= threads <= %d\n", MAX_THREADS);
        return 1;
    }
    reserve(batch);
    const char *threading = set_threads(threads);
    long iters = calibrate(mode, batch, threads, seconds);
    double t = time_calls(mode, batch, iters);
    printf("netc model=%s mode=%s batch=%d threads=%d threading=%s iters=%ld sec_per_iter=%.9g\n",
           MODEL_NAME, mode == MODE_FORWARD ? "forward" : "train", batch, threads, threading,
           iters, t / (double)iters);
    fflush(stdout);
    return 0;
}

static int parse_mode(const char *s)
{
    return !strcmp(s, "forward") ? MODE_FORWARD : !strcmp(s, "train") ? MODE_TRAIN : -1;
}

static int serve(double seconds)
{
    char line[256], mode[32];
    int batch, threads;
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4))
            break;
        if (sscanf(line, "run %31s %d %d", mode, &batch, &threads) != 3 || parse_mode(mode) < 0) {
            printf("error bad command: %s", line);
            fflush(stdout);
            continue;
        }
        if (measure(parse_mode(mode), batch, threads, seconds)) {
            printf("error measurement failed\n");
            fflush(stdout);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int mode = MODE_FORWARD, batch = 1, threads = 1, reps = 1, serving = 0;
    double seconds = 0.2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--serve"))
            serving = 1;
        else if (!strcmp(a, "--plain"))
            B.plain = 1;
        else if (v && !strcmp(a, "--mode") && (mode = parse_mode(v)) >= 0)
            i++;
        else if (v && !strcmp(a, "--batch"))
            batch = atoi(argv[++i]);
        else if (v && !strcmp(a, "--threads"))
            threads = atoi(argv[++i]);
        else if (v && !strcmp(a, "--seconds"))
            seconds = atof(argv[++i]);
        else if (v && !strcmp(a, "--reps"))
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--mode forward|train] [--batch N] [--threads N] "
                            "[--seconds S] [--reps R] [--plain] | --serve [--plain]\n", argv[0]);
            return 2;
        }
    }
    if (serving)
        return serve(seconds);
    for (int r = 0; r < reps; r++)
        if (measure(mode, batch, threads, seconds))
            return 1;
    return 0;
}
