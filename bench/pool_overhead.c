/* pool_overhead.c - what one netc_pool_run call costs with an empty task.
 *
 *   build/pool_overhead [THREADS ...]     (default: 1 2)
 *
 * For each thread count, the median (and the best) over 7 rounds of:
 *   hot    back-to-back calls, count = threads (one iteration per thread),
 *          as in a training step whose calls come microseconds apart: the
 *          workers are still spinning when the next call comes;
 *   cold   one call after 2 ms of idleness, when every worker is asleep on
 *          its condition variable and has to be woken.
 * The serial line is the same call on a NULL pool (a plain indirect call).
 * Other load on the machine shows in the medians first: a worker that is
 * not running when the call comes costs a scheduler wakeup.  The best
 * round is the cost when every thread has a CPU.
 * Built with the project, not run by the tests; bench/README.md has numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "netc_pool.h"

enum { HOT_CALLS = 100000, COLD_CALLS = 50, ROUNDS = 7 };

static void empty(void *ctx, int lo, int hi)
{
    (void)ctx;
    (void)lo;
    (void)hi;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* ns per call of back-to-back calls: the median round, the best in *best */
static double hot(void *pool, int count, double *best)
{
    double r[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        double t0 = now();
        for (int i = 0; i < HOT_CALLS; i++)
            netc_pool_run(pool, empty, NULL, count);
        r[k] = (now() - t0) / HOT_CALLS * 1e9;
    }
    double m = median(r, ROUNDS);
    *best = r[0];
    return m;
}

/* ns of a call made after the pool went idle: the median, the best in *best */
static double cold(void *pool, int count, double *best)
{
    double r[COLD_CALLS];
    struct timespec idle = {0, 2000000};
    for (int k = 0; k < COLD_CALLS; k++) {
        nanosleep(&idle, NULL);
        double t0 = now();
        netc_pool_run(pool, empty, NULL, count);
        r[k] = (now() - t0) * 1e9;
    }
    double m = median(r, COLD_CALLS);
    *best = r[0];
    return m;
}

int main(int argc, char **argv)
{
    int def[] = {1, 2}, n = argc > 1 ? argc - 1 : 2;
    double hb, cb;
    printf("usable CPUs: %d\n", netc_cpu_count());
    printf("serial (NULL pool): %8.1f ns/call\n", hot(NULL, 2, &hb));
    printf("             ns/call:   hot median   (best)    cold median   (best)\n");
    for (int i = 0; i < n; i++) {
        int t = argc > 1 ? atoi(argv[i + 1]) : def[i];
        NetcPool *p = netc_pool_new(t);
        if (!p) {
            fprintf(stderr, "pool_overhead: cannot make a pool of %d threads\n", t);
            return 1;
        }
        for (int k = 0; k < HOT_CALLS / 10; k++) /* warm up: workers started and running */
            netc_pool_run(p, empty, NULL, t);
        double h = hot(p, t, &hb), c = cold(p, t, &cb);
        printf("threads %4d:          %9.0f %8.0f      %9.0f %8.0f\n", t, h, hb, c, cb);
        netc_pool_free(p);
    }
    return 0;
}
