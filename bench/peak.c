/* peak: this machine's fp32 FMA throughput and memory bandwidth, the
 * ceilings bench/suite.sh divides netc's numbers by.
 *
 *   cc -std=gnu11 -O2 -march=native -pthread bench/peak.c -o peak
 *   ./peak [--seconds S] [--reps R]
 *
 * FMA: each thread runs CHAINS independent accumulator chains of the widest
 * vector the compiler targets (64 bytes with AVX-512, 32 with AVX2, else 16),
 * acc = acc * m + c, which the compiler contracts into one FMA per chain per
 * step (gcc contracts by default in GNU mode, clang within an expression).
 * Enough chains hide the FMA latency (4 cycles x 2 ports = 8 in flight on
 * current x86), so the loop runs at the issue rate: 2 flops per lane per FMA.
 * bench/suite.sh checks with objdump that fma_kernel is vfmadd.
 *
 * Bandwidth: the STREAM triad a[i] = b[i] + s * c[i] over three 256 MiB
 * arrays (well past any cache here), counting 12 bytes per element (two
 * loads, one store; the write-allocate read of a[] is not counted, as in
 * STREAM).
 *
 * Each measurement is run with 1 thread and with every online CPU, and each
 * is the best of R repetitions of about S seconds: a peak is the best the
 * machine does, not its typical.  Output, one line each:
 *   peak kind=fma threads=1 vec_bytes=64 chains=16 gflops=...
 *   peak kind=triad threads=1 mib=768 gbs=...
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__)
#define VEC_BYTES 64
#elif defined(__AVX2__)
#define VEC_BYTES 32
#else
#define VEC_BYTES 16
#endif
#define LANES (VEC_BYTES / 4)
#define CHAINS 16

typedef float vf __attribute__((vector_size(VEC_BYTES)));

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CHAINS independent chains, spelled out so the accumulators stay in
 * registers at -O2 whatever the unrolling heuristics.  m < 1 keeps every
 * chain bounded (it converges to c / (1 - m)) and away from denormals. */
__attribute__((noinline)) float fma_kernel(long iters, float seed)
{
    vf m = (vf){0} + 0.999999f, c = (vf){0} + 1e-6f;
    vf a0 = (vf){0} + seed, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3;
    vf a4 = a0 + 4, a5 = a0 + 5, a6 = a0 + 6, a7 = a0 + 7;
    vf a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11;
    vf a12 = a0 + 12, a13 = a0 + 13, a14 = a0 + 14, a15 = a0 + 15;
    for (long i = 0; i < iters; i++) {
        a0 = a0 * m + c;   a1 = a1 * m + c;   a2 = a2 * m + c;   a3 = a3 * m + c;
        a4 = a4 * m + c;   a5 = a5 * m + c;   a6 = a6 * m + c;   a7 = a7 * m + c;
        a8 = a8 * m + c;   a9 = a9 * m + c;   a10 = a10 * m + c; a11 = a11 * m + c;
        a12 = a12 * m + c; a13 = a13 * m + c; a14 = a14 * m + c; a15 = a15 * m + c;
    }
    vf s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
         + ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
    float r = 0;
    for (int l = 0; l < LANES; l++)
        r += s[l];
    return r;
}

#define TRIAD_BYTES ((size_t)256 << 20)     /* per array */
#define TRIAD_N (TRIAD_BYTES / sizeof(float))

static float *ta, *tb, *tc;

typedef struct {
    int kind;               /* 0 fma, 1 triad */
    long iters;             /* fma: loop trips; triad: passes */
    size_t lo, hi;          /* triad: this thread's slice */
    pthread_barrier_t *go;
    float sink;
} Job;

__attribute__((noinline)) static void triad(float *restrict a, const float *restrict b,
                                             const float *restrict c, size_t lo, size_t hi)
{
    for (size_t i = lo; i < hi; i++)
        a[i] = b[i] + 3.0f * c[i];
}

static void *worker(void *p)
{
    Job *j = p;
    pthread_barrier_wait(j->go);
    if (j->kind == 0) {
        j->sink = fma_kernel(j->iters, 1.0f + (float)(j->lo & 7));
    } else {
        for (long r = 0; r < j->iters; r++)
            triad(ta, tb, tc, j->lo, j->hi);
        j->sink = ta[j->lo];
    }
    pthread_barrier_wait(j->go);
    return NULL;
}

/* Seconds of wall time for `threads` threads each doing `iters` of `kind`,
 * from a common start to the last finisher. */
static double run(int kind, int threads, long iters)
{
    pthread_t th[256];
    Job jobs[256];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (Job){kind, iters, TRIAD_N * (size_t)t / (size_t)threads,
                        TRIAD_N * (size_t)(t + 1) / (size_t)threads, &go, 0};
        if (kind == 0)
            jobs[t].lo = (size_t)t;
        pthread_create(&th[t], NULL, worker, &jobs[t]);
    }
    pthread_barrier_wait(&go);
    double t0 = now();
    pthread_barrier_wait(&go);
    double t1 = now();
    float sink = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        sink += jobs[t].sink;
    }
    pthread_barrier_destroy(&go);
    if (sink == 12345.678f)   /* keeps the results live */
        puts("");
    return t1 - t0;
}

/* Best rate over `reps` runs of about `seconds` each; `work` is the
 * flops (or bytes) one iteration of one thread does. */
static double best_rate(int kind, int threads, double seconds, int reps, double work)
{
    long iters = 1;
    double t;
    while ((t = run(kind, threads, iters)) < seconds / 4 && iters < (1L << 40))
        iters *= 2;
    iters = (long)((double)iters * seconds / t) + 1;
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double rate = work * (double)iters * threads / run(kind, threads, iters);
        if (rate > best)
            best = rate;
    }
    return best;
}

int main(int argc, char **argv)
{
    double seconds = 0.5;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--reps R]\n", argv[0]);
            return 2;
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    if (ncpu > 256)
        ncpu = 256;
    int counts[2] = {1, (int)ncpu};
    int ncounts = ncpu > 1 ? 2 : 1;

    for (int k = 0; k < ncounts; k++) {
        double flops = best_rate(0, counts[k], seconds, reps, 2.0 * CHAINS * LANES);
        printf("peak kind=fma threads=%d vec_bytes=%d chains=%d gflops=%.1f\n",
               counts[k], VEC_BYTES, CHAINS, flops * 1e-9);
        fflush(stdout);
    }

    ta = aligned_alloc(64, TRIAD_BYTES);
    tb = aligned_alloc(64, TRIAD_BYTES);
    tc = aligned_alloc(64, TRIAD_BYTES);
    if (!ta || !tb || !tc) {
        fprintf(stderr, "peak: cannot allocate 3 x %zu MiB\n", TRIAD_BYTES >> 20);
        return 1;
    }
    for (size_t i = 0; i < TRIAD_N; i++) {
        ta[i] = 0;
        tb[i] = 1;
        tc[i] = 2;
    }
    for (int k = 0; k < ncounts; k++) {
        /* One pass of the whole arrays is the unit; a thread does its slice. */
        double bytes = 3.0 * (double)TRIAD_BYTES / counts[k];
        double bw = best_rate(1, counts[k], seconds, reps, bytes);
        printf("peak kind=triad threads=%d mib=%zu gbs=%.1f\n", counts[k],
               3 * (TRIAD_BYTES >> 20), bw * 1e-9);
        fflush(stdout);
    }
    free(ta);
    free(tb);
    free(tc);
    return 0;
}
