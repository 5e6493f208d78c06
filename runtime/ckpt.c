/* ckpt.c - checkpoints and weights files (safetensors, see safetensors.c).
 *
 * A checkpoint holds, for a model with params P1..Pk:
 *   P1 .. Pk                     the parameters, named and shaped as in the
 *                                meta (PyTorch's state-dict names and layout)
 *   optimizer.momentum.P1 ..     the SGD velocity of each parameter
 *   __metadata__                 netc.model, netc.kind ("checkpoint"),
 *                                netc.epoch (completed), netc.epochs,
 *                                netc.rng (data stream: 16 hex digits of
 *                                state then 16 of inc), netc.lr,
 *                                netc.momentum, netc.weight_decay,
 *                                netc.nesterov, netc.batch, netc.limit,
 *                                netc.seed; plus "format": "pt"
 * which is everything a resumed run needs to continue bit for bit.  A
 * weights file is any safetensors file with the parameters (for instance a
 * PyTorch state dict saved with safetensors); optimizer.* tensors in it are
 * ignored by --weights, anything else unexpected is an error.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define MOMENTUM_PREFIX "optimizer.momentum."

static char *momentum_name(const char *param)
{
    size_t n = strlen(MOMENTUM_PREFIX) + strlen(param) + 1;
    char *s = rt_alloc(n);
    if (s)
        snprintf(s, n, "%s%s", MOMENTUM_PREFIX, param);
    return s;
}

bool rt_ckpt_save(const char *path, const RtMeta *m, const float *params, const float *velocity,
                  const RtTrainState *s, RtErr *e)
{
    int n = 2 * m->nparam;
    StOut *t = rt_calloc((size_t)n + 1, sizeof *t);
    char **names = rt_calloc((size_t)m->nparam + 1, sizeof *names);
    bool ok = t && names;
    for (int i = 0; ok && i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        names[i] = momentum_name(p->t.name);
        ok = names[i] != NULL;
        t[i] = (StOut){p->t.name, p->t.rank, p->t.d, params + p->offset};
        t[m->nparam + i] = (StOut){names[i], p->t.rank, p->t.d, velocity + p->offset};
    }
    if (ok) {
        char v[12][64];
        rt_schedule_str(&s->schedule, v[10], 64);
        snprintf(v[0], 64, "%ld", s->epoch);
        snprintf(v[1], 64, "%ld", s->epochs);
        snprintf(v[2], 64, "%016" PRIx64 "%016" PRIx64, s->rng.state, s->rng.inc);
        snprintf(v[3], 64, "%.9g", (double)s->sgd.lr);
        snprintf(v[4], 64, "%.9g", (double)s->sgd.momentum);
        snprintf(v[5], 64, "%.9g", (double)s->sgd.weight_decay);
        snprintf(v[6], 64, "%d", s->sgd.nesterov ? 1 : 0);
        snprintf(v[7], 64, "%ld", s->batch);
        snprintf(v[8], 64, "%ld", s->limit);
        snprintf(v[9], 64, "%" PRIu64, s->seed);
        const char *kv[] = {
            "format", "pt", "netc.model", m->name, "netc.kind", "checkpoint",
            "netc.epoch", v[0], "netc.epochs", v[1], "netc.rng", v[2], "netc.lr", v[3],
            "netc.momentum", v[4], "netc.weight_decay", v[5], "netc.nesterov", v[6],
            "netc.batch", v[7], "netc.limit", v[8], "netc.seed", v[9],
            "netc.schedule", v[10],
        };
        ok = rt_st_write(path, t, n, kv, (int)(sizeof kv / sizeof *kv / 2), e);
    } else {
        rt_fail(e, path, "out of memory");
    }
    for (int i = 0; names && i < m->nparam; i++)
        free(names[i]);
    free(names);
    free(t);
    return ok;
}

/* Copies tensor `name` into dst after checking it against p's shape. */
static bool load_tensor(const StFile *f, const char *path, const char *name, const RtParam *p,
                        float *dst, RtErr *e)
{
    char want[128], got[128];
    rt_shape_str(want, sizeof want, p->t.d, p->t.rank, false);
    const StTensor *t = rt_st_find(f, name);
    if (!t)
        return rt_fail(e, path, "tensor '%s' is missing (expected F32 %s)", name, want);
    if (strcmp(t->dtype, "F32") != 0)
        return rt_fail(e, path, "tensor '%s': expected dtype F32, found %s", name, t->dtype);
    bool same = t->rank == p->t.rank;
    for (int i = 0; same && i < t->rank; i++)
        same = t->shape[i] == p->t.d[i];
    if (!same) {
        rt_shape_str(got, sizeof got, t->shape, t->rank, false);
        return rt_fail(e, path, "tensor '%s': expected shape %s, found %s", name, want, got);
    }
    memcpy(dst, f->data + t->begin, (size_t)p->t.numel * sizeof *dst);
    /* A ruined file (NaN weights from a diverged run) is refused here,
     * not discovered as NaN losses. */
    for (long i = 0; i < p->t.numel; i++)
        if (!isfinite(dst[i]))
            return rt_fail(e, path, "tensor '%s' holds a non-finite value (%g at index %ld)",
                           name, (double)dst[i], i);
    return true;
}

/* Metadata values follow the command line's rules (settings.c); errors
 * name the file and the field. */
static bool meta_long(const StFile *f, const char *path, const char *key, long min, long max,
                      long *out, RtErr *e)
{
    const char *v = rt_st_meta(f, key);
    if (!v)
        return rt_fail(e, path, "checkpoint metadata '%s' is missing", key);
    if (!rt_parse_long(v, min, max, out))
        return max == LONG_MAX
                   ? rt_fail(e, path, "checkpoint metadata '%s': expected an integer >= %ld, "
                             "found '%s'", key, min, v)
                   : rt_fail(e, path, "checkpoint metadata '%s': expected an integer from %ld "
                             "to %ld, found '%s'", key, min, max, v);
    return true;
}

static bool meta_real(const StFile *f, const char *path, const char *key, RtReal kind, float *out,
                      RtErr *e)
{
    const char *v = rt_st_meta(f, key);
    if (!v)
        return rt_fail(e, path, "checkpoint metadata '%s' is missing", key);
    if (!rt_parse_real(v, kind, out))
        return rt_fail(e, path, "checkpoint metadata '%s': expected %s, found '%s'", key,
                       rt_real_rule(kind), v);
    return true;
}

static bool parse_hex64(const char *s, uint64_t *out)
{
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *out = x;
    return true;
}

static bool load_state(const StFile *f, const char *path, RtTrainState *s, RtErr *e)
{
    long nest, seed;
    const char *rng = rt_st_meta(f, "netc.rng");
    if (!meta_long(f, path, "netc.epoch", 0, LONG_MAX, &s->epoch, e) ||
        !meta_long(f, path, "netc.epochs", 0, LONG_MAX, &s->epochs, e) ||
        !meta_long(f, path, "netc.batch", 1, RT_MAX_BATCH, &s->batch, e) ||
        !meta_long(f, path, "netc.limit", 0, LONG_MAX, &s->limit, e) ||
        !meta_long(f, path, "netc.nesterov", 0, 1, &nest, e) ||
        !meta_long(f, path, "netc.seed", 0, LONG_MAX, &seed, e) ||
        !meta_real(f, path, "netc.lr", RT_REAL_POSITIVE, &s->sgd.lr, e) ||
        !meta_real(f, path, "netc.momentum", RT_REAL_FRACTION, &s->sgd.momentum, e) ||
        !meta_real(f, path, "netc.weight_decay", RT_REAL_NONNEG, &s->sgd.weight_decay, e))
        return false;
    if (nest && s->sgd.momentum == 0)
        return rt_fail(e, path, "checkpoint metadata 'netc.nesterov': Nesterov needs a momentum "
                       "greater than 0 ('netc.momentum' is 0)");
    const char *sched = rt_st_meta(f, "netc.schedule");
    if (!sched)
        return rt_fail(e, path, "checkpoint metadata 'netc.schedule' is missing");
    if (!rt_schedule_parse(sched, &s->schedule, e))
        return rt_fail_wrap(e, path);
    if (!rng || strlen(rng) != 32 || !parse_hex64(rng, &s->rng.state) ||
        !parse_hex64(rng + 16, &s->rng.inc) || !(s->rng.inc & 1))
        return rt_fail(e, path, "checkpoint metadata 'netc.rng' is missing or malformed");
    s->sgd.nesterov = nest == 1;
    s->seed = (uint64_t)seed;
    return true;
}

bool rt_ckpt_load(const char *path, const RtMeta *m, float *params, float *velocity,
                  RtTrainState *s, RtErr *e)
{
    StFile f;
    if (!rt_st_read(&f, path, e))
        return false;
    bool ok = true;
    const char *model = rt_st_meta(&f, "netc.model");
    if (model && strcmp(model, m->name) != 0)
        ok = rt_fail(e, path, "is a checkpoint of model '%s', this program is model '%s'", model,
                     m->name);
    for (int i = 0; ok && i < f.n; i++)
        if (!rt_meta_param(m, f.t[i].name) && strncmp(f.t[i].name, "optimizer.", 10) != 0)
            ok = rt_fail(e, path, "unexpected tensor '%s': model '%s' has no such parameter",
                         f.t[i].name, m->name);
    for (int i = 0; ok && i < m->nparam; i++)
        ok = load_tensor(&f, path, m->param[i].t.name, &m->param[i], params + m->param[i].offset,
                         e);
    if (ok && velocity) {
        const char *kind = rt_st_meta(&f, "netc.kind");
        if (!kind || strcmp(kind, "checkpoint") != 0)
            ok = rt_fail(e, path, "holds weights but no optimizer state, so training cannot "
                         "resume from it; use it with --weights, or resume from a checkpoint "
                         "written by train --save");
        else if (!model)
            ok = rt_fail(e, path, "checkpoint metadata 'netc.model' is missing");
        for (int i = 0; ok && i < m->nparam; i++) {
            char *name = momentum_name(m->param[i].t.name);
            ok = name ? load_tensor(&f, path, name, &m->param[i],
                                    velocity + m->param[i].offset, e)
                      : rt_fail(e, path, "out of memory");
            free(name);
        }
        /* Into a copy, so a failed load leaves *s as it was. */
        RtTrainState t = *s;
        if (ok && (ok = load_state(&f, path, &t, e)))
            *s = t;
    }
    rt_st_free(&f);
    return ok;
}
