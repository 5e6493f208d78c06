/* fold_bn_forward: the forward entry of one netc model on a fixed
 * generated batch, and one call of its train entry, for comparing builds
 * with and without batch-norm folding (tests/fold_bn.sh).
 *
 * The parameters start as the model's initialisers say (its train
 * section's seed), then every running mean, running variance and rank-1
 * weight and bias is moved to a generated value, so that folding them into
 * a convolution is not the identity.  Prints the train entry's loss and
 * every output of the forward entry, one float per line, to 9 digits
 * (every bit of a float):
 *
 *   cc -std=gnu11 -Iruntime -DFB_META=NAME_meta -DFB_FORWARD=NAME_forward \
 *      -DFB_TRAIN=NAME_train tests/fold_bn_forward.c gen/NAME.o build/libnetcrt.a -lz -lm -pthread
 *   ./a.out [--batch N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc_runtime.h"
#include "rt.h"

#if !defined(FB_META) || !defined(FB_FORWARD) || !defined(FB_TRAIN)
#error "compile with -DFB_META=NAME_meta -DFB_FORWARD=NAME_forward -DFB_TRAIN=NAME_train"
#endif

typedef void EntryFn(int n, const float *params, float *grads, float *arena, const float *const *in,
                     float *const *out);
extern const char FB_META[];
EntryFn FB_FORWARD, FB_TRAIN;

static float *floats(size_t n)
{
    float *p = rt_alloc_aligned(64, (n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "fold_bn_forward: out of memory (%zu floats)\n", n);
        exit(1);
    }
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int main(int argc, char **argv)
{
    long n = 3;
    if (argc == 3 && !strcmp(argv[1], "--batch") && !rt_parse_long(argv[2], 1, 4096, &n))
        return 2;
    RtMeta m;
    RtErr e;
    if (!rt_meta_parse(&m, FB_META, &e)) {
        fprintf(stderr, "fold_bn_forward: %s\n", e.msg);
        return 1;
    }
    if (!m.has_train || m.ninput != 1) {
        fprintf(stderr, "fold_bn_forward: model '%s' needs a train section and one input\n", m.name);
        return 1;
    }
    size_t np = (size_t)m.params;
    float *params = floats(np), *grads = floats(np);
    rt_init_params(&m, params, m.seed);
    RtRng rng;
    rt_rng_seed(&rng, 11, 3);
    for (int i = 0; i < m.nparam; i++) {
        const RtParam *p = &m.param[i];
        float lo, hi;
        if (ends_with(p->t.name, ".running_var") || (p->t.rank == 1 && ends_with(p->t.name, ".weight")))
            lo = 0.5f, hi = 1.5f;
        else if (ends_with(p->t.name, ".running_mean") || (p->t.rank == 1 && ends_with(p->t.name, ".bias")))
            lo = -0.5f, hi = 0.5f;
        else
            continue;
        for (long j = 0; j < p->t.numel; j++)
            params[p->offset + j] = lo + (hi - lo) * (float)rt_rng_uniform(&rng);
    }
    float *arena = floats((size_t)m.arena_fixed + (size_t)m.arena_per_n * (size_t)n);
    size_t xn = (size_t)m.input[0].numel * (size_t)n;
    float *x = floats(xn);
    for (size_t i = 0; i < xn; i++)
        x[i] = (float)rt_rng_uniform(&rng);
    size_t tn = (size_t)(m.target.numel ? m.target.numel : 1) * (size_t)n;
    float *target = floats(tn);
    long classes = m.target.rank > 0 ? m.output[0].d[0] : m.output[0].numel;
    for (size_t i = 0; i < tn; i++)
        target[i] = m.target_kind == RT_TARGET_CLASS ? (float)rt_rng_below(&rng, (uint32_t)classes)
                                                     : (float)rt_rng_uniform(&rng);

    float **out = calloc((size_t)m.noutput + 1, sizeof *out);
    for (int k = 0; k < m.noutput; k++)
        out[k] = floats((size_t)m.output[k].numel * (size_t)n);
    float loss = 0;
    out[m.noutput] = &loss;
    const float *in[2] = {x, target};
    FB_TRAIN((int)n, params, grads, arena, in, out);
    printf("loss %.9g\n", (double)loss);
    for (size_t i = 0; i < np; i++)
        if (grads[i] != grads[i]) {
            printf("FAIL: gradient %zu is not a number\n", i);
            return 1;
        }
    double gsum = 0;
    for (size_t i = 0; i < np; i++)
        gsum += grads[i];
    printf("grads %.17g\n", gsum);
    FB_FORWARD((int)n, params, NULL, arena, in, out);
    for (int k = 0; k < m.noutput; k++)
        for (long i = 0; i < m.output[k].numel * n; i++)
            printf("out %d %ld %.9g\n", k, i, (double)out[k][i]);
    for (int k = 0; k < m.noutput; k++)
        free(out[k]);
    free(out);
    free(x);
    free(target);
    free(arena);
    free(grads);
    free(params);
    rt_meta_free(&m);
    return 0;
}
