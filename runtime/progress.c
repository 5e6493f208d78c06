/* progress.c - the live progress line of `train` on a terminal.
 *
 * One line redrawn with '\r' at most ten times a second (drawing every
 * batch of a small model would cost more than the batch): epoch,
 * batch/total, running loss and accuracy, images/s and the time left for
 * the whole run, extrapolated from this epoch's rate.  When stdout is not
 * a terminal nothing is drawn and train prints one line per epoch.
 */
#include <string.h>
#include <time.h>

#include <math.h>

#include "rt.h"

#define LINE_WIDTH 79 /* fits an 80-column terminal, so the \r redraw never wraps */

double rt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void rt_progress_start(RtProgress *p, long epoch, long epochs, long total_batches, bool live)
{
    memset(p, 0, sizeof *p);
    p->live = live;
    p->start = rt_now();
    p->epoch = epoch;
    p->epochs = epochs;
    p->total_batches = total_batches;
}

static void fmt_duration(char *buf, size_t cap, double s)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, cap, "%lds", t);
}

void rt_progress_update(RtProgress *p, long batch, double loss, double acc, long images)
{
    if (!p->live)
        return;
    double now = rt_now();
    if (now - p->last_draw < 0.1 && batch < p->total_batches)
        return;
    p->last_draw = now;
    double el = now - p->start;
    double rate = el > 0 ? (double)images / el : 0;
    double per_batch = batch > 0 ? el / (double)batch : 0;
    long left = p->total_batches - batch + (p->epochs - p->epoch) * p->total_batches;
    char eta[32];
    fmt_duration(eta, sizeof eta, per_batch * (double)left);
    char line[LINE_WIDTH + 64], accs[32] = "";
    if (!isnan(acc)) /* NaN: the model's target has no accuracy */
        snprintf(accs, sizeof accs, "  acc %.2f%%", 100.0 * acc);
    int n = snprintf(line, sizeof line,
                     "epoch %ld/%ld  batch %ld/%ld  loss %.4f%s  %.0f img/s  ETA %s",
                     p->epoch, p->epochs, batch, p->total_batches, loss, accs, rate, eta);
    /* Pad so a shorter line fully covers the previous one. */
    printf("\r%s%*s", line, n < LINE_WIDTH ? LINE_WIDTH - n : 0, "");
    fflush(stdout);
}

void rt_progress_clear(RtProgress *p)
{
    if (!p->live || p->last_draw == 0)
        return;
    printf("\r%*s\r", LINE_WIDTH, "");
    fflush(stdout);
}
