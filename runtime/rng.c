/* rng.c - the runtime's one random number generator.
 *
 * PCG32 (XSH-RR: 64-bit LCG state, 32-bit output by xorshift-high and a
 * random rotation), seeded the way the reference pcg32_srandom_r does:
 *   inc = (stream << 1) | 1;  state = 0;  step;  state += seed;  step.
 * Everything derived from it is specified down to the bit so a seed gives
 * the same numbers on every platform:
 *   uniform  = (next() >> 5) * 2^26 + (next() >> 6), times 2^-53  (53 bits)
 *   below(b) = rejection: draw x until x >= (2^32 - b) % b, then
 *              return x % b (unbiased)
 *   normal   = Box-Muller, z = sqrt(-2 ln(1 - u1)) * cos(2 pi u2), one
 *              value per call (the sine partner is discarded, so the
 *              generator state alone determines the sequence)
 *   shuffle  = Fisher-Yates from the back: for i = n-1 .. 1, swap a[i]
 *              with a[below(i + 1)]
 * Box-Muller goes through libm's log and cos, which are not required to
 * be correctly rounded; the result is rounded to float before use, which
 * hides last-bit differences between libms in all but rare cases.
 */
#include <math.h>

#include "rt.h"

#define PCG_MULT 6364136223846793005ULL

static void step(RtRng *r)
{
    r->state = r->state * PCG_MULT + r->inc;
}

void rt_rng_seed(RtRng *r, uint64_t seed, uint64_t stream)
{
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    step(r);
    r->state += seed;
    step(r);
}

uint32_t rt_rng_next(RtRng *r)
{
    uint64_t old = r->state;
    step(r);
    uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    uint32_t rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

uint32_t rt_rng_below(RtRng *r, uint32_t bound)
{
    if (bound <= 1)
        return 0;
    uint32_t threshold = (0u - bound) % bound;
    for (;;) {
        uint32_t x = rt_rng_next(r);
        if (x >= threshold)
            return x % bound;
    }
}

double rt_rng_uniform(RtRng *r)
{
    uint64_t hi = rt_rng_next(r) >> 5, lo = rt_rng_next(r) >> 6;
    return (double)(hi * 67108864u + lo) * (1.0 / 9007199254740992.0);
}

double rt_rng_normal(RtRng *r)
{
    double u1 = rt_rng_uniform(r), u2 = rt_rng_uniform(r);
    /* 1 - u1 is in (0, 1], so the log is finite. */
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

void rt_rng_shuffle(RtRng *r, uint32_t *a, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rt_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}
