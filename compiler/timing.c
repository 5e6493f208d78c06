/* timing.c - the phase timer of timing.h. */
#include "timing.h"

#include <time.h>

#include "util.h"

enum { TIMING_MAX = 64, TIMING_DEPTH = 8 };

typedef struct {
    const char *phase;
    int depth;
    double wall, cpu; /* seconds */
} Phase;

static struct {
    bool on;
    Phase phase[TIMING_MAX];
    int n;
    int open[TIMING_DEPTH]; /* indices of the open phases, innermost last */
    double wall0[TIMING_DEPTH], cpu0[TIMING_DEPTH];
    int depth;
} T;

static double now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void timing_enable(bool on)
{
    T.on = on;
}

bool timing_enabled(void)
{
    return T.on;
}

void timing_begin(const char *phase)
{
    if (!T.on)
        return;
    NETC_ASSERT(T.n < TIMING_MAX && T.depth < TIMING_DEPTH);
    T.phase[T.n] = (Phase){phase, T.depth, 0, 0};
    T.open[T.depth] = T.n++;
    T.wall0[T.depth] = now(CLOCK_MONOTONIC);
    T.cpu0[T.depth] = now(CLOCK_PROCESS_CPUTIME_ID);
    T.depth++;
}

void timing_end(void)
{
    if (!T.on)
        return;
    NETC_ASSERT(T.depth > 0);
    T.depth--;
    Phase *p = &T.phase[T.open[T.depth]];
    p->wall += now(CLOCK_MONOTONIC) - T.wall0[T.depth];
    p->cpu += now(CLOCK_PROCESS_CPUTIME_ID) - T.cpu0[T.depth];
}

void timing_add_child_cpu(double seconds)
{
    if (!T.on || T.depth == 0)
        return;
    T.phase[T.open[T.depth - 1]].cpu += seconds;
}

void timing_report(FILE *f)
{
    if (!T.on)
        return;
    fprintf(f, "netc: time     wall ms   cpu ms  phase\n");
    double wall = 0, cpu = 0;
    for (int i = 0; i < T.n; i++) {
        const Phase *p = &T.phase[i];
        fprintf(f, "netc: time  %10.1f %8.1f  %*s%s\n", p->wall * 1e3, p->cpu * 1e3,
                2 * p->depth, "", p->phase);
        if (p->depth == 0) {
            wall += p->wall;
            cpu += p->cpu;
        }
    }
    fprintf(f, "netc: time  %10.1f %8.1f  total\n", wall * 1e3, cpu * 1e3);
}
