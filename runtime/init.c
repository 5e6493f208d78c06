/* init.c - parameter initialisation from the meta's INIT records.
 *
 * Parameters are drawn in meta order from one PCG32 stream
 * (seed, RT_STREAM_INIT), element by element in row-major order:
 *   he_uniform      U(-a, a),  a = sqrt(6 / fan_in)
 *   he_normal       N(0, sqrt(2 / fan_in))
 *   xavier_uniform  U(-a, a),  a = sqrt(6 / (fan_in + fan_out))
 *   xavier_normal   N(0, sqrt(2 / (fan_in + fan_out)))
 *   uniform         U(A, B)
 *   normal          N(A, B)
 *   zero            0 (draws nothing)
 *   one             1 (draws nothing)
 * A uniform draw is low + (high - low) * u with u in [0, 1), computed in
 * double and rounded to float once.
 */
#include <math.h>
#include <string.h>

#include "rt.h"

void rt_init_params(const RtMeta *m, float *params, uint64_t seed)
{
    RtRng r;
    rt_rng_seed(&r, seed, RT_STREAM_INIT);
    memset(params, 0, (size_t)m->params * sizeof *params);
    for (int i = 0; i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        float *w = params + p->offset;
        double fan_sum = (double)(p->fan_in + p->fan_out);
        double lo = 0, hi = 0, mean = 0, std = 0;
        bool normal = false;
        switch (p->init) {
        case RT_INIT_ZERO:
            continue;
        case RT_INIT_ONE:
            for (long k = 0; k < p->t.numel; k++)
                w[k] = 1.0f;
            continue;
        case RT_INIT_HE_UNIFORM:
            hi = sqrt(6.0 / (double)p->fan_in);
            lo = -hi;
            break;
        case RT_INIT_HE_NORMAL:
            normal = true;
            std = sqrt(2.0 / (double)p->fan_in);
            break;
        case RT_INIT_XAVIER_UNIFORM:
            hi = sqrt(6.0 / fan_sum);
            lo = -hi;
            break;
        case RT_INIT_XAVIER_NORMAL:
            normal = true;
            std = sqrt(2.0 / fan_sum);
            break;
        case RT_INIT_UNIFORM:
            lo = p->a;
            hi = p->b;
            break;
        case RT_INIT_NORMAL:
            normal = true;
            mean = p->a;
            std = p->b;
            break;
        case RT_INIT_COUNT:
            continue;
        }
        for (long k = 0; k < p->t.numel; k++)
            w[k] = normal ? (float)(mean + std * rt_rng_normal(&r))
                          : (float)(lo + (hi - lo) * rt_rng_uniform(&r));
    }
}
