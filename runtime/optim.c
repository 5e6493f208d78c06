/* optim.c - stochastic gradient descent, as torch.optim.SGD defines it
 * with dampening 0:
 *   g = grad + weight_decay * p
 *   v = momentum * v + g              (v starts at 0, so v1 = g1)
 *   p = p - lr * v                    (nesterov: p = p - lr * (g + momentum * v))
 * in float, one rounding per operation in that order (the build uses ISO C
 * mode, so the compiler does not contract these into fused multiply-adds
 * and the result is the same on every machine).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

void rt_sgd_step(const RtSgd *o, float *p, const float *grad, float *v, long n)
{
    const float lr = o->lr, mom = o->momentum, wd = o->weight_decay;
    for (long i = 0; i < n; i++) {
        float g = grad[i];
        if (wd != 0.0f)
            g = g + wd * p[i];
        float vi = mom * v[i] + g;
        v[i] = vi;
        float d = o->nesterov ? g + mom * vi : vi;
        p[i] = p[i] - lr * d;
    }
}

float rt_schedule_lr(const RtSchedule *s, float base, long epoch, long epochs)
{
    switch (s->kind) {
    case RT_SCHED_COSINE:
        if (epochs <= 0)
            return base;
        return (float)((double)base * (1.0 + cos(3.14159265358979323846 * (double)epoch / (double)epochs)) / 2.0);
    case RT_SCHED_STEP:
        return (float)((double)base * pow(s->gamma, (double)(epoch / s->every)));
    default:
        return base;
    }
}

bool rt_schedule_parse(const char *text, RtSchedule *s, RtErr *e)
{
    *s = (RtSchedule){RT_SCHED_CONSTANT, 1, 1.0};
    if (strcmp(text, "constant") == 0)
        return true;
    if (strcmp(text, "cosine") == 0) {
        s->kind = RT_SCHED_COSINE;
        return true;
    }
    char *end;
    if (strncmp(text, "step:", 5) == 0) {
        long every = strtol(text + 5, &end, 10);
        if (end != text + 5 && *end == ':' && every >= 1) {
            const char *g = end + 1;
            double gamma = strtod(g, &end);
            if (end != g && !*end && gamma > 0 && gamma <= 1) {
                *s = (RtSchedule){RT_SCHED_STEP, every, gamma};
                return true;
            }
        }
    }
    return rt_fail(e, NULL,
                   "unknown learning-rate schedule '%s' (expected constant, cosine or "
                   "step:EVERY:GAMMA, e.g. step:3:0.1)",
                   text);
}

void rt_schedule_str(const RtSchedule *s, char *buf, size_t cap)
{
    if (s->kind == RT_SCHED_COSINE)
        snprintf(buf, cap, "cosine");
    else if (s->kind == RT_SCHED_STEP)
        snprintf(buf, cap, "step:%ld:%.9g", s->every, s->gamma);
    else
        snprintf(buf, cap, "constant");
}
