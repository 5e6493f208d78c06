/* ckpt.c - checkpoints and weights files (safetensors, see safetensors.c).
 *
 * A checkpoint holds, for a model with params P1..Pk:
 *   P1 .. Pk                     the parameters, named and shaped as in the
 *                                meta (PyTorch's state-dict names and layout)
 *   optimizer.SLOT.P1 ..         every state buffer the optimiser keeps, per
 *                                parameter: momentum (sgd), sum (adagrad),
 *                                square_avg, momentum, grad_avg (rmsprop;
 *                                the last two with momentum > 0, centered),
 *                                square_avg, acc_delta (adadelta), exp_avg,
 *                                exp_avg_sq, max_exp_avg_sq (adam, adamw;
 *                                the last with amsgrad) - torch's names
 *   __metadata__                 netc.model, netc.kind ("checkpoint"),
 *                                netc.epoch (completed), netc.epochs,
 *                                netc.rng (data stream: 16 hex digits of
 *                                state then 16 of inc), netc.batch,
 *                                netc.limit, netc.seed, netc.schedule,
 *                                netc.optimizer (sgd, adam, ...), netc.step
 *                                (optimiser steps taken) and netc.FIELD for
 *                                each of the optimiser's hyper-parameters
 *                                (netc.lr, netc.beta1, ...); "format": "pt"
 * which is everything a resumed run needs to continue bit for bit.  A
 * checkpoint written before netc.optimizer existed is SGD's: it has
 * netc.lr, netc.momentum, netc.weight_decay and netc.nesterov and no step
 * count, and still resumes (dampening 0).  A weights file is any
 * safetensors file with the parameters (for instance a PyTorch state dict
 * saved with safetensors); optimizer.* tensors in it are ignored by
 * --weights, anything else unexpected is an error.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* "optimizer.<slot>.<param>": a state buffer of one parameter. */
static char *slot_name(const char *slot, const char *param)
{
    size_t n = strlen("optimizer.") + strlen(slot) + 1 + strlen(param) + 1;
    char *s = rt_alloc(n);
    if (s)
        snprintf(s, n, "optimizer.%s.%s", slot, param);
    return s;
}

/* Metadata pairs before the optimiser's fields. */
enum { KV_FIXED = 12 };
#define KV_MAX (KV_FIXED + 8)

bool rt_ckpt_save(const char *path, const RtMeta *m, const float *params, const float *state,
                  const RtTrainState *s, RtErr *e)
{
    int n = (1 + RT_OPT_SLOTS) * m->nparam;
    StOut *t = rt_calloc((size_t)n + 1, sizeof *t);
    char **names = rt_calloc((size_t)n + 1, sizeof *names);
    bool ok = t && names;
    int nt = 0;
    for (int i = 0; ok && i < m->nparam; i++) {
        const RtParam *p = &m->param[i];
        t[nt++] = (StOut){p->t.name, p->t.rank, p->t.d, params + p->offset};
    }
    for (int k = 0; ok && k < RT_OPT_SLOTS; k++) {
        const char *slot = rt_optim_slot(&s->opt, k);
        for (int i = 0; ok && slot && i < m->nparam; i++) {
            const RtParam *p = &m->param[i];
            ok = (names[nt] = slot_name(slot, p->t.name)) != NULL;
            t[nt] = (StOut){names[nt], p->t.rank, p->t.d,
                            state + (size_t)k * (size_t)m->params + p->offset};
            nt++;
        }
    }
    if (ok) {
        char v[KV_MAX][64];
        const char *kv[2 * KV_MAX] = {
            "format", "pt", "netc.model", m->name, "netc.kind", "checkpoint",
            "netc.epoch", v[0], "netc.epochs", v[1], "netc.rng", v[2], "netc.batch", v[3],
            "netc.limit", v[4], "netc.seed", v[5], "netc.schedule", v[6], "netc.optimizer",
            rt_optim_name(s->opt.kind), "netc.step", v[7],
        };
        snprintf(v[0], 64, "%ld", s->epoch);
        snprintf(v[1], 64, "%ld", s->epochs);
        snprintf(v[2], 64, "%016" PRIx64 "%016" PRIx64, s->rng.state, s->rng.inc);
        snprintf(v[3], 64, "%ld", s->batch);
        snprintf(v[4], 64, "%ld", s->limit);
        snprintf(v[5], 64, "%" PRIu64, s->seed);
        rt_schedule_str(&s->schedule, v[6], 64);
        snprintf(v[7], 64, "%ld", s->step);
        /* then netc.<field> for every field of the optimiser */
        const char *const *fields;
        int nf = rt_optim_fields(s->opt.kind, &fields), nkv = KV_FIXED;
        char keys[KV_MAX][64];
        for (int i = 0; i < nf; i++, nkv++) {
            snprintf(keys[nkv], 64, "netc.%s", fields[i]);
            rt_optim_get(&s->opt, fields[i], v[nkv], 64);
            kv[2 * nkv] = keys[nkv];
            kv[2 * nkv + 1] = v[nkv];
        }
        ok = rt_st_write(path, t, nt, kv, nkv, e);
    } else {
        rt_fail(e, path, "out of memory");
    }
    for (int i = 0; names && i < n; i++)
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

/* The optimiser: netc.optimizer and a netc.<field> per field, or, in a
 * checkpoint from before netc.optimizer existed, SGD's four fields. */
static bool load_optim(const StFile *f, const char *path, RtOptim *o, RtErr *e)
{
    const char *kind = rt_st_meta(f, "netc.optimizer");
    *o = (RtOptim){0};
    if (kind && !rt_optim_kind(kind, &o->kind))
        return rt_fail(e, path, "checkpoint metadata 'netc.optimizer': unknown optimizer '%s'",
                       kind);
    static const char *const first[] = {"lr", "momentum", "weight_decay", "nesterov"};
    const char *const *fields = first;
    int nf = 4;
    if (kind)
        nf = rt_optim_fields(o->kind, &fields);
    for (int i = 0; i < nf; i++) {
        char key[64];
        snprintf(key, sizeof key, "netc.%s", fields[i]);
        const char *v = rt_st_meta(f, key);
        RtErr fe;
        if (!v)
            return rt_fail(e, path, "checkpoint metadata '%s' is missing", key);
        if (!rt_optim_set(o, fields[i], v, &fe))
            return rt_fail(e, path, "checkpoint metadata '%s': %s", key, fe.msg);
    }
    RtErr ce;
    if (!rt_optim_check(o, &ce))
        return rt_fail(e, path, "checkpoint metadata 'netc.nesterov': %s", ce.msg);
    return true;
}

static bool load_state(const StFile *f, const char *path, RtTrainState *s, RtErr *e)
{
    long seed;
    const char *rng = rt_st_meta(f, "netc.rng");
    if (!meta_long(f, path, "netc.epoch", 0, LONG_MAX, &s->epoch, e) ||
        !meta_long(f, path, "netc.epochs", 0, LONG_MAX, &s->epochs, e) ||
        !meta_long(f, path, "netc.batch", 1, RT_MAX_BATCH, &s->batch, e) ||
        !meta_long(f, path, "netc.limit", 0, LONG_MAX, &s->limit, e) ||
        !meta_long(f, path, "netc.seed", 0, LONG_MAX, &seed, e) ||
        !load_optim(f, path, &s->opt, e))
        return false;
    /* A checkpoint without a step count is SGD's first format, whose
     * update does not depend on it once the first step is done. */
    if (rt_st_meta(f, "netc.optimizer")) {
        if (!meta_long(f, path, "netc.step", 0, LONG_MAX, &s->step, e))
            return false;
    } else {
        s->step = s->epoch;
    }
    const char *sched = rt_st_meta(f, "netc.schedule");
    if (!sched)
        return rt_fail(e, path, "checkpoint metadata 'netc.schedule' is missing");
    if (!rt_schedule_parse(sched, &s->schedule, e))
        return rt_fail_wrap(e, path);
    if (!rng || strlen(rng) != 32 || !parse_hex64(rng, &s->rng.state) ||
        !parse_hex64(rng + 16, &s->rng.inc) || !(s->rng.inc & 1))
        return rt_fail(e, path, "checkpoint metadata 'netc.rng' is missing or malformed");
    s->seed = (uint64_t)seed;
    return true;
}

/* Every state slot the checkpoint's optimiser uses, per parameter. */
static bool load_slots(const StFile *f, const char *path, const RtMeta *m, const RtOptim *o,
                       float *state, RtErr *e)
{
    bool ok = true;
    for (int k = 0; ok && k < RT_OPT_SLOTS; k++) {
        const char *slot = rt_optim_slot(o, k);
        for (int i = 0; ok && slot && i < m->nparam; i++) {
            const RtParam *p = &m->param[i];
            char *name = slot_name(slot, p->t.name);
            ok = name ? load_tensor(f, path, name, p,
                                    state + (size_t)k * (size_t)m->params + p->offset, e)
                      : rt_fail(e, path, "out of memory");
            free(name);
        }
    }
    return ok;
}

bool rt_ckpt_load(const char *path, const RtMeta *m, float *params, float *state,
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
    if (ok && state) {
        const char *kind = rt_st_meta(&f, "netc.kind");
        if (!kind || strcmp(kind, "checkpoint") != 0)
            ok = rt_fail(e, path, "holds weights but no optimizer state, so training cannot "
                         "resume from it; use it with --weights, or resume from a checkpoint "
                         "written by train --save");
        else if (!model)
            ok = rt_fail(e, path, "checkpoint metadata 'netc.model' is missing");
        /* Into a copy, so a failed load leaves *s as it was. */
        RtTrainState t = *s;
        ok = ok && load_state(&f, path, &t, e);
        if (ok) {
            rt_optim_init_state(&t.opt, state, m->params);
            ok = load_slots(&f, path, m, &t.opt, state, e);
        }
        if (ok)
            *s = t;
    }
    rt_st_free(&f);
    return ok;
}
