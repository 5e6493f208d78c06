/* zoo_steps: a few training steps of one netc model on a fixed generated
 * batch, through the model's train entry; succeeds when the loss after the
 * steps is below the loss before them.
 *
 * Works for every target kind of the train entry (docs/runtime.md, "The
 * target contract"), including those no data source feeds: a class index
 * per sample or per position, a one-hot row, or a tensor (the input itself
 * when the prediction has the input's size, as an autoencoder's, else
 * uniform values in [0, 1)).  Inputs are uniform in [0, 1); the parameters
 * start as the model's initialisers say, from its train section's seed.
 *
 * Compiled once per model against the model's object (netc emit-obj, or
 * netc emit-c and cc -c) and the runtime library:
 *
 *   cc -std=gnu11 -Iruntime -DZOO_META=NAME_meta -DZOO_TRAIN=NAME_train \
 *      tests/zoo_steps.c gen/NAME.o build/libnetcrt.a -lz -lm -pthread -o steps
 *   ./steps [--steps K] [--batch N] [--lr X] [--max-lr X] [--sgd]
 *
 * --steps K (default 3) updates, then one more train call without an
 * update gives the final loss.  --batch N (default 2) samples.  --lr X
 * replaces the optimiser's learning rate, --max-lr X lowers it to X when it
 * is larger (a rate tuned for batches of hundreds can diverge on a batch of
 * two); --sgd replaces the optimiser by
 * plain SGD (no momentum, no weight decay) at that rate.  Prints the loss
 * of each call (to 9 digits, every bit of a float) and "PASS"/"FAIL";
 * exit status 0 when the last loss is
 * finite and below the first.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc_runtime.h"
#include "rt.h"

#if !defined(ZOO_META) || !defined(ZOO_TRAIN)
#error "compile with -DZOO_META=NAME_meta -DZOO_TRAIN=NAME_train"
#endif

extern const char ZOO_META[];
void ZOO_TRAIN(int n, const float *params, float *grads, float *arena, const float *const *in,
               float *const *out);

static float *floats(size_t n)
{
    float *p = rt_alloc_aligned(64, (n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "zoo_steps: out of memory (%zu floats)\n", n);
        exit(1);
    }
    memset(p, 0, (n ? n : 1) * sizeof(float));
    return p;
}

static long arg_long(const char *s, long lo, long hi, const char *what)
{
    long v;
    if (!rt_parse_long(s, lo, hi, &v)) {
        fprintf(stderr, "zoo_steps: %s: expected an integer from %ld to %ld, found '%s'\n", what,
                lo, hi, s);
        exit(2);
    }
    return v;
}

static double arg_positive(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0) || !isfinite(v)) {
        fprintf(stderr, "zoo_steps: %s: expected a positive number, found '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long steps = 3, n = 2;
    double lr = 0, max_lr = 0;
    int plain_sgd = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = arg_long(argv[++i], 1, 1000, "--steps");
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            n = arg_long(argv[++i], 1, 4096, "--batch");
        else if (!strcmp(argv[i], "--lr") && i + 1 < argc)
            lr = arg_positive(argv[++i], "--lr");
        else if (!strcmp(argv[i], "--max-lr") && i + 1 < argc)
            max_lr = arg_positive(argv[++i], "--max-lr");
        else if (!strcmp(argv[i], "--sgd"))
            plain_sgd = 1;
        else {
            fprintf(stderr, "usage: %s [--steps K] [--batch N] [--lr X] [--max-lr X] [--sgd]\n",
                    argv[0]);
            return 2;
        }
    }

    RtMeta m;
    RtErr e;
    if (!rt_meta_parse(&m, ZOO_META, &e)) {
        fprintf(stderr, "zoo_steps: %s\n", e.msg);
        return 1;
    }
    if (!m.has_train || m.ninput != 1) {
        fprintf(stderr, "zoo_steps: model '%s' needs a train section and one input\n", m.name);
        return 1;
    }
    RtOptim opt = m.opt;
    if (plain_sgd) {
        memset(&opt, 0, sizeof opt);
        opt.kind = RT_OPT_SGD;
        opt.lr = m.opt.lr;
    }
    if (lr > 0)
        opt.lr = lr;
    if (max_lr > 0 && opt.lr > max_lr)
        opt.lr = max_lr;

    size_t np = (size_t)m.params;
    float *params = floats(np), *grads = floats(np);
    /* RT_OPT_SLOTS buffers of np floats; calloc'd, so the unused ones cost
     * no memory. */
    float *state = rt_calloc(np * RT_OPT_SLOTS + 1, sizeof(float));
    if (!state) {
        fprintf(stderr, "zoo_steps: out of memory\n");
        return 1;
    }
    rt_init_params(&m, params, m.seed);
    rt_optim_init_state(&opt, state, m.params);
    float *arena = floats((size_t)m.arena_fixed + (size_t)m.arena_per_n * (size_t)n);

    /* The fixed batch. */
    RtRng rng;
    rt_rng_seed(&rng, 7, 1);
    size_t xn = (size_t)m.input[0].numel * (size_t)n;
    float *x = floats(xn);
    for (size_t i = 0; i < xn; i++)
        x[i] = (float)rt_rng_uniform(&rng);
    size_t tn = (size_t)(m.target.numel ? m.target.numel : 1) * (size_t)n;
    float *target = floats(tn);
    const char *what;
    if (m.target_kind == RT_TARGET_CLASS) {
        /* per sample: the first output's size; per position: its first axis */
        long classes = m.target.rank > 0 ? m.output[0].d[0] : m.output[0].numel;
        tn = m.target.rank > 0 ? tn : (size_t)n;
        for (size_t i = 0; i < tn; i++)
            target[i] = (float)rt_rng_below(&rng, (uint32_t)classes);
        what = m.target.rank > 0 ? "a random class per position" : "a random class per sample";
    } else if (m.target_kind == RT_TARGET_ONEHOT) {
        long k = m.target.numel;
        for (long s = 0; s < n; s++)
            target[(size_t)s * (size_t)k + rt_rng_below(&rng, (uint32_t)k)] = 1;
        what = "one-hot rows of random classes";
    } else if (tn == xn) {
        memcpy(target, x, xn * sizeof *x);
        what = "the input itself";
    } else {
        for (size_t i = 0; i < tn; i++)
            target[i] = (float)rt_rng_uniform(&rng);
        what = "uniform values";
    }

    float **out = calloc((size_t)m.noutput + 1, sizeof *out);
    for (int k = 0; k < m.noutput; k++)
        out[k] = floats((size_t)m.output[k].numel * (size_t)n);
    float loss = 0;
    out[m.noutput] = &loss;
    const float *in[2] = {x, target};

    printf("%s: %ld params, batch %ld of generated data, target %s, %s lr %g, %ld steps\n",
           m.name, m.params, n, what, rt_optim_name(opt.kind), opt.lr, steps);
    float first = 0, last = 0;
    for (long step = 1; step <= steps + 1; step++) {
        memset(grads, 0, np * sizeof *grads);
        ZOO_TRAIN((int)n, params, grads, arena, in, out);
        printf("  loss %ld: %.9g\n", step, (double)loss);
        if (!isfinite(loss)) {
            printf("FAIL %s: the loss is not finite\n", m.name);
            return 1;
        }
        if (step == 1)
            first = loss;
        last = loss;
        if (step <= steps)
            rt_optim_update(&m, &opt, opt.lr, step, params, grads, state);
    }
    int ok = last < first;
    printf("%s %s: loss %.6g -> %.6g after %ld steps\n", ok ? "PASS" : "FAIL", m.name,
           (double)first, (double)last, steps);
    for (int k = 0; k < m.noutput; k++)
        free(out[k]);
    free(out);
    free(x);
    free(target);
    free(arena);
    free(state);
    free(grads);
    free(params);
    rt_meta_free(&m);
    return ok ? 0 : 1;
}
