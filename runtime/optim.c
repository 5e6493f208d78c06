/* optim.c - the optimisers of torch.optim, step for step, and what a
 * training step does around them (clipping, per-parameter rates, warm-up).
 *
 * Needs: the parameters, their gradients and the state slots of one
 * contiguous range.  Provides: the update torch.optim's single-tensor
 * (foreach=False) code makes, with its operations in its order, in float,
 * one rounding per operation (the build uses ISO C mode, so the compiler
 * does not contract them into fused multiply-adds and the result is the
 * same on every machine).  Scalars that torch computes in Python (bias
 * corrections, step sizes) are computed here in double and rounded to
 * float once.  torch's AVX2 kernels fuse a few multiply-adds (add with
 * alpha, addcmul), so the two agree to a few units in the last place, not
 * bit for bit; tests/runtime/test_optim.c checks 1e-6.
 *
 * With g = grad + weight_decay * p (AdamW: p = p * (1 - lr * wd) instead)
 * and step t counted from 1:
 *   sgd       v = g at t = 1, then v = momentum v + (1 - dampening) g;
 *             p = p - lr v   (nesterov: p = p - lr (g + momentum v))
 *   adagrad   s = s + g g;  p = p - (lr / (1 + (t - 1) lr_decay)) g / (sqrt s + eps)
 *   rmsprop   a = alpha a + (1 - alpha) g g;  centered: m = alpha m + (1 - alpha) g,
 *             d = sqrt(a - m m) + eps, else d = sqrt a + eps;
 *             momentum: b = momentum b + g / d, p = p - lr b; else p = p - lr g / d
 *   adadelta  a = rho a + (1 - rho) g g;  u = sqrt(q + eps) / sqrt(a + eps) g;
 *             q = rho q + (1 - rho) u u;  p = p - lr u
 *   adam(w)   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g g;
 *             amsgrad: w = max(w, v), else w = v;
 *             p = p - (lr / (1 - beta1^t)) m / (sqrt w / sqrt(1 - beta2^t) + eps)
 * Each loop is unit-stride with no branch inside: the configuration picks
 * the loop, outside it, so compilers vectorise them (GCC and Clang do at
 * -O2/-O3 given -fno-math-errno, which CMakeLists.txt sets for this file).
 *
 *   rt_optim_step(&adam, 0.001f, 1, p, g, slot, n)   (slot: exp_avg, exp_avg_sq)
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* ---- hyper-parameters ---------------------------------------------------- */

#define FIELD_BOOL (-1)

typedef struct {
    const char *name;
    size_t off;                /* into RtOptim */
    int rule;                  /* an RtReal, or FIELD_BOOL */
} Field;

static const Field fields[] = {
    {"lr", offsetof(RtOptim, lr), RT_REAL_POSITIVE},
    {"momentum", offsetof(RtOptim, momentum), RT_REAL_FRACTION},
    {"dampening", offsetof(RtOptim, dampening), RT_REAL_FRACTION},
    {"weight_decay", offsetof(RtOptim, weight_decay), RT_REAL_NONNEG},
    {"nesterov", offsetof(RtOptim, nesterov), FIELD_BOOL},
    {"lr_decay", offsetof(RtOptim, lr_decay), RT_REAL_NONNEG},
    {"initial_accumulator_value", offsetof(RtOptim, initial_accumulator_value), RT_REAL_NONNEG},
    {"alpha", offsetof(RtOptim, alpha), RT_REAL_FRACTION},
    {"centered", offsetof(RtOptim, centered), FIELD_BOOL},
    {"rho", offsetof(RtOptim, rho), RT_REAL_FRACTION},
    {"beta1", offsetof(RtOptim, beta1), RT_REAL_FRACTION},
    {"beta2", offsetof(RtOptim, beta2), RT_REAL_FRACTION},
    {"amsgrad", offsetof(RtOptim, amsgrad), FIELD_BOOL},
    {"eps", offsetof(RtOptim, eps), RT_REAL_POSITIVE},
};

#define MAX_FIELDS 6

static const struct {
    const char *name;
    const char *field[MAX_FIELDS];
    const char *slot[RT_OPT_SLOTS];
} kinds[RT_OPT_COUNT] = {
    [RT_OPT_SGD] = {"sgd", {"lr", "momentum", "dampening", "weight_decay", "nesterov"},
                    {"momentum"}},
    [RT_OPT_ADAGRAD] = {"adagrad",
                        {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"},
                        {"sum"}},
    [RT_OPT_RMSPROP] = {"rmsprop", {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"},
                        {"square_avg", "momentum", "grad_avg"}},
    [RT_OPT_ADADELTA] = {"adadelta", {"lr", "rho", "eps", "weight_decay"},
                         {"square_avg", "acc_delta"}},
    [RT_OPT_ADAM] = {"adam", {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"},
                     {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
    [RT_OPT_ADAMW] = {"adamw", {"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"},
                      {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}},
};

const char *rt_optim_name(RtOptKind k)
{
    return k < RT_OPT_COUNT ? kinds[k].name : "?";
}

bool rt_optim_kind(const char *name, RtOptKind *k)
{
    for (int i = 0; i < RT_OPT_COUNT; i++)
        if (strcmp(kinds[i].name, name) == 0) {
            *k = (RtOptKind)i;
            return true;
        }
    return false;
}

int rt_optim_fields(RtOptKind k, const char *const **names)
{
    *names = kinds[k].field;
    int n = 0;
    while (n < MAX_FIELDS && kinds[k].field[n])
        n++;
    return n;
}

/* The field of kind k called name, or NULL. */
static const Field *find_field(RtOptKind k, const char *name)
{
    const char *const *names;
    int n = rt_optim_fields(k, &names);
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            for (size_t j = 0; j < sizeof fields / sizeof *fields; j++)
                if (strcmp(fields[j].name, name) == 0)
                    return &fields[j];
    return NULL;
}

bool rt_optim_set(RtOptim *o, const char *field, const char *text, RtErr *e)
{
    const Field *f = find_field(o->kind, field);
    if (!f)
        return rt_fail(e, NULL, "optimizer %s has no setting '%s'", rt_optim_name(o->kind), field);
    char *at = (char *)o + f->off;
    if (f->rule == FIELD_BOOL) {
        if (strcmp(text, "0") != 0 && strcmp(text, "1") != 0)
            return rt_fail(e, NULL, "expected 0 or 1, found '%s'", text);
        *(bool *)at = text[0] == '1';
        return true;
    }
    /* The float rules (what the element loops can use), the double value. */
    float check;
    if (!rt_parse_real(text, (RtReal)f->rule, &check))
        return rt_fail(e, NULL, "expected %s, found '%s'", rt_real_rule((RtReal)f->rule), text);
    *(double *)at = strtod(text, NULL);
    return true;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as x. */
static void print_exact(char *buf, size_t cap, double x)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

void rt_optim_get(const RtOptim *o, const char *field, char *buf, size_t cap)
{
    const Field *f = find_field(o->kind, field);
    const char *at = (const char *)o + (f ? f->off : 0);
    if (!f)
        snprintf(buf, cap, "?");
    else if (f->rule == FIELD_BOOL)
        snprintf(buf, cap, "%d", *(const bool *)at ? 1 : 0);
    else
        print_exact(buf, cap, *(const double *)at);
}

void rt_optim_str(const RtOptim *o, char *buf, size_t cap)
{
    const char *const *names;
    int nf = rt_optim_fields(o->kind, &names);
    size_t k = (size_t)snprintf(buf, cap, "%s", rt_optim_name(o->kind));
    for (int i = 0; i < nf && k < cap; i++) {
        const Field *f = find_field(o->kind, names[i]);
        const char *at = (const char *)o + f->off;
        if (f->rule == FIELD_BOOL)
            k += (size_t)snprintf(buf + k, cap - k, " %s %s", f->name,
                                  *(const bool *)at ? "true" : "false");
        else
            k += (size_t)snprintf(buf + k, cap - k, " %s %g", f->name, *(const double *)at);
    }
}

bool rt_optim_check(const RtOptim *o, RtErr *e)
{
    if (o->kind == RT_OPT_SGD && o->nesterov && !(o->momentum > 0 && o->dampening == 0))
        return rt_fail(e, NULL, "nesterov needs a momentum greater than 0 and dampening 0 "
                       "(momentum %g, dampening %g)", o->momentum, o->dampening);
    return true;
}

const char *rt_optim_slot(const RtOptim *o, int k)
{
    if (o->kind == RT_OPT_RMSPROP && ((k == 1 && !(o->momentum > 0)) || (k == 2 && !o->centered)))
        return NULL;
    if ((o->kind == RT_OPT_ADAM || o->kind == RT_OPT_ADAMW) && k == 2 && !o->amsgrad)
        return NULL;
    return kinds[o->kind].slot[k];
}

void rt_optim_init_state(const RtOptim *o, float *state, long params)
{
    memset(state, 0, (size_t)params * RT_OPT_SLOTS * sizeof *state);
    if (o->kind == RT_OPT_ADAGRAD)
        for (long i = 0; i < params; i++)
            state[i] = (float)o->initial_accumulator_value;
}

/* ---- the steps ----------------------------------------------------------- */

static float f32(double x)
{
    return (float)x;
}

static void sgd_step(const RtOptim *o, double lr, long step, float *p, const float *g, float *v,
                     long n)
{
    const float wd = f32(o->weight_decay), mom = f32(o->momentum);
    /* torch starts the buffer at g; without momentum it keeps none, so
     * the update is g whatever the dampening. */
    const bool first = step == 1 || o->momentum == 0;
    const float keep = first ? 0.0f : mom;
    const float take = first ? 1.0f : f32(1.0 - o->dampening);
    /* the direction d = dg g + dv v: nesterov g + momentum v, else v */
    const float dg = o->nesterov ? 1.0f : 0.0f, dv = o->nesterov ? mom : 1.0f;
    const float nlr = f32(-lr);
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        float vi = keep * v[i] + take * gi;
        v[i] = vi;
        p[i] = p[i] + nlr * (dg * gi + dv * vi);
    }
}

static void adagrad_step(const RtOptim *o, double lr, long step, float *p, const float *g,
                         float *sum, long n)
{
    const float wd = f32(o->weight_decay), eps = f32(o->eps);
    const float nclr = f32(-lr / (1.0 + (double)(step - 1) * o->lr_decay));
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        float s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] = p[i] + nclr * gi / (sqrtf(s) + eps);
    }
}

/* RMSProp's four loops share these. */
typedef struct {
    float alpha, calpha, wd, eps, mom, nlr;
} Rms;

static void rms_plain(const Rms *c, float *p, const float *g, float *sq, long n)
{
    for (long i = 0; i < n; i++) {
        float gi = g[i] + c->wd * p[i];
        float a = sq[i] * c->alpha + c->calpha * gi * gi;
        sq[i] = a;
        p[i] = p[i] + c->nlr * gi / (sqrtf(a) + c->eps);
    }
}

static void rms_centered(const Rms *c, float *p, const float *g, float *sq, float *ga, long n)
{
    for (long i = 0; i < n; i++) {
        float gi = g[i] + c->wd * p[i];
        float a = sq[i] * c->alpha + c->calpha * gi * gi;
        float m = ga[i] * c->alpha + c->calpha * gi;
        sq[i] = a;
        ga[i] = m;
        p[i] = p[i] + c->nlr * gi / (sqrtf(a - m * m) + c->eps);
    }
}

static void rms_momentum(const Rms *c, float *p, const float *g, float *sq, float *buf, long n)
{
    for (long i = 0; i < n; i++) {
        float gi = g[i] + c->wd * p[i];
        float a = sq[i] * c->alpha + c->calpha * gi * gi;
        float b = buf[i] * c->mom + gi / (sqrtf(a) + c->eps);
        sq[i] = a;
        buf[i] = b;
        p[i] = p[i] + c->nlr * b;
    }
}

static void rms_centered_momentum(const Rms *c, float *p, const float *g, float *sq, float *buf,
                                  float *ga, long n)
{
    for (long i = 0; i < n; i++) {
        float gi = g[i] + c->wd * p[i];
        float a = sq[i] * c->alpha + c->calpha * gi * gi;
        float m = ga[i] * c->alpha + c->calpha * gi;
        float b = buf[i] * c->mom + gi / (sqrtf(a - m * m) + c->eps);
        sq[i] = a;
        ga[i] = m;
        buf[i] = b;
        p[i] = p[i] + c->nlr * b;
    }
}

static void rmsprop_step(const RtOptim *o, double lr, float *p, const float *g,
                         float *const slot[RT_OPT_SLOTS], long n)
{
    const Rms c = {f32(o->alpha), f32(1.0 - o->alpha), f32(o->weight_decay), f32(o->eps),
                   f32(o->momentum), f32(-lr)};
    if (o->momentum > 0 && o->centered)
        rms_centered_momentum(&c, p, g, slot[0], slot[1], slot[2], n);
    else if (o->momentum > 0)
        rms_momentum(&c, p, g, slot[0], slot[1], n);
    else if (o->centered)
        rms_centered(&c, p, g, slot[0], slot[2], n);
    else
        rms_plain(&c, p, g, slot[0], n);
}

static void adadelta_step(const RtOptim *o, double lr, float *p, const float *g, float *sq,
                          float *acc, long n)
{
    const float rho = f32(o->rho), crho = f32(1.0 - o->rho), wd = f32(o->weight_decay);
    const float eps = f32(o->eps), nlr = f32(-lr);
    for (long i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        float a = sq[i] * rho + crho * gi * gi;
        float u = sqrtf(acc[i] + eps) / sqrtf(a + eps) * gi;
        sq[i] = a;
        acc[i] = acc[i] * rho + crho * u * u;
        p[i] = p[i] + nlr * u;
    }
}

/* Adam and AdamW: decay scales p first (AdamW), wd adds to g (Adam). */
typedef struct {
    float decay, wd, b1, c1, b2, c2, bc2_sqrt, eps, nstep;
} AdamC;

static void adam_plain(const AdamC *c, float *p, const float *g, float *m, float *v, long n)
{
    for (long i = 0; i < n; i++) {
        float pi = p[i] * c->decay;
        float gi = g[i] + c->wd * pi;
        float mi = m[i] * c->b1 + c->c1 * gi;
        float vi = v[i] * c->b2 + c->c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + c->nstep * mi / (sqrtf(vi) / c->bc2_sqrt + c->eps);
    }
}

static void adam_amsgrad(const AdamC *c, float *p, const float *g, float *m, float *v, float *w,
                         long n)
{
    for (long i = 0; i < n; i++) {
        float pi = p[i] * c->decay;
        float gi = g[i] + c->wd * pi;
        float mi = m[i] * c->b1 + c->c1 * gi;
        float vi = v[i] * c->b2 + c->c2 * gi * gi;
        float wi = w[i] > vi ? w[i] : vi;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi;
        p[i] = pi + c->nstep * mi / (sqrtf(wi) / c->bc2_sqrt + c->eps);
    }
}

static void adam_step(const RtOptim *o, double lr, long step, float *p, const float *g,
                      float *const slot[RT_OPT_SLOTS], long n)
{
    const bool w = o->kind == RT_OPT_ADAMW;
    const double b1 = o->beta1, b2 = o->beta2, t = (double)step;
    const AdamC c = {
        .decay = w ? f32(1.0 - lr * o->weight_decay) : 1.0f,
        .wd = w ? 0.0f : f32(o->weight_decay),
        .b1 = f32(b1), .c1 = f32(1.0 - b1), .b2 = f32(b2), .c2 = f32(1.0 - b2),
        .bc2_sqrt = f32(sqrt(1.0 - pow(b2, t))), .eps = f32(o->eps),
        .nstep = f32(-lr / (1.0 - pow(b1, t))),
    };
    if (o->amsgrad)
        adam_amsgrad(&c, p, g, slot[0], slot[1], slot[2], n);
    else
        adam_plain(&c, p, g, slot[0], slot[1], n);
}

void rt_optim_step(const RtOptim *o, double lr, long step, float *p, const float *g,
                   float *const slot[RT_OPT_SLOTS], long n)
{
    switch (o->kind) {
    case RT_OPT_SGD: sgd_step(o, lr, step, p, g, slot[0], n); break;
    case RT_OPT_ADAGRAD: adagrad_step(o, lr, step, p, g, slot[0], n); break;
    case RT_OPT_RMSPROP: rmsprop_step(o, lr, p, g, slot, n); break;
    case RT_OPT_ADADELTA: adadelta_step(o, lr, p, g, slot[0], slot[1], n); break;
    default: adam_step(o, lr, step, p, g, slot, n); break;
    }
}

/* ---- around the step ----------------------------------------------------- */

float rt_clip_grad_norm(const RtMeta *m, float *grads, float max_norm)
{
    double ss = 0;
    for (int i = 0; i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        const float *g = grads + p->offset;
        if (p->frozen || p->state)
            continue;
        for (long k = 0; k < p->t.numel; k++)
            ss += (double)g[k] * (double)g[k];
    }
    float norm = (float)sqrt(ss);
    float coef = max_norm / (norm + 1e-6f);
    if (!(coef < 1.0f))
        return norm;
    for (int i = 0; i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        float *g = grads + p->offset;
        if (p->frozen || p->state)
            continue;
        for (long k = 0; k < p->t.numel; k++)
            g[k] = g[k] * coef;
    }
    return norm;
}

void rt_optim_update(const RtMeta *m, const RtOptim *o, double lr, long step, float *params,
                     float *grads, float *state)
{
    if (m->clip_norm > 0)
        rt_clip_grad_norm(m, grads, m->clip_norm);
    for (int i = 0; i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        /* a state tensor (running statistics, a step counter) takes the
         * next value the train entry left in grads[]; it is not trained */
        if (p->state) {
            memcpy(params + p->offset, grads + p->offset, (size_t)p->t.numel * sizeof *params);
            continue;
        }
        if (p->frozen)
            continue;
        float *slot[RT_OPT_SLOTS];
        for (int k = 0; k < RT_OPT_SLOTS; k++)
            slot[k] = rt_optim_slot(o, k) ? state + (size_t)k * (size_t)m->params + p->offset : NULL;
        rt_optim_step(o, lr * (double)p->lr_mult, step, params + p->offset, grads + p->offset, slot,
                      p->t.numel);
    }
}

double rt_warmup_factor(long step, long steps)
{
    return steps > 0 && step < steps ? (double)step / (double)steps : 1.0;
}

double rt_schedule_lr(const RtSchedule *s, double base, long epoch, long epochs)
{
    switch (s->kind) {
    case RT_SCHED_COSINE:
        if (epochs <= 0)
            return base;
        return base * (1.0 + cos(3.14159265358979323846 * (double)epoch / (double)epochs)) / 2.0;
    case RT_SCHED_STEP:
        return base * pow(s->gamma, (double)(epoch / s->every));
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
