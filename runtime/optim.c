/* optim.c - stochastic gradient descent, as torch.optim.SGD defines it
 * with dampening 0:
 *   g = grad + weight_decay * p
 *   v = momentum * v + g              (v starts at 0, so v1 = g1)
 *   p = p - lr * v                    (nesterov: p = p - lr * (g + momentum * v))
 * in float, one rounding per operation in that order (the build uses ISO C
 * mode, so the compiler does not contract these into fused multiply-adds
 * and the result is the same on every machine).
 */
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
