/* train.c - the training loop and evaluation.
 *
 * One epoch: shuffle the sample order with the data stream of the seed,
 * gather each batch (the last, partial one included) as floats with the
 * epoch's crops and flips (rt_gather, batch.c), call the
 * train entry (in = {x, target}, out = {outputs..., loss[1]}), apply the
 * optimiser (rt_optim_update: clipping, per-parameter rates, frozen
 * parameters; the epoch's scheduled rate times the warm-up factor), then
 * score the test set: the loss through the train entry (the model's own
 * loss, whatever it is; its gradients go to scratch memory and are
 * dropped) unless the model computes differently in training (state
 * tensors: batch norm, dropout), then through the forward entry and the
 * runtime's own loss of the first output; accuracy as argmax(first
 * output) == label, top-5 accuracy and, for eval, the confusion matrix.
 * Both the train and the test loss are means per sample (a batch's mean
 * loss weighted by its size; with reduction sum, the sums divided by the
 * sample count).
 *
 * Before each update the loss and every parameter's gradient are checked
 * (rt_nonfinite_param, one pass); a non-finite one stops the run or, with
 * --on-nonfinite=skip-batch, skips the update.  After each epoch the
 * weights are checked, so a checkpoint never holds a non-finite value, and
 * a metrics file that cannot be written stops the run only after the
 * epoch's checkpoint is saved.
 *
 * Resuming restores the parameters, the optimiser's state and step count,
 * the data stream and the hyper-parameters from the checkpoint, so epoch
 * k+1 after a resume is the same computation as epoch k+1 of an
 * uninterrupted run.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

/* The train entry's out[] holds the outputs then the loss. */
#define MAX_OUTPUTS 64

float *rt_arena_new(const RtMeta *m, long n, RtErr *e)
{
    /* fixed + per_n * n floats, in whole 64-byte lines (rt_alloc_aligned
     * rounds up, as aligned_alloc wants a multiple of the alignment). */
    if (m->arena_per_n && n > (LONG_MAX / 8 - m->arena_fixed) / m->arena_per_n) {
        rt_fail(e, NULL, "arena for batch %ld is too large", n);
        return NULL;
    }
    size_t bytes = ((size_t)(m->arena_fixed + m->arena_per_n * n) * sizeof(float) + 63) / 64 * 64;
    float *a = rt_alloc_aligned(64, bytes ? bytes : 64);
    if (!a) {
        rt_fail(e, NULL, "cannot allocate the %zu-byte arena for batch %ld", bytes, n);
        return NULL;
    }
    memset(a, 0, bytes);
    return a;
}

void rt_arena_free(float *a)
{
    free(a);
}

static long argmax(const float *y, long n)
{
    long best = 0;
    for (long k = 1; k < n; k++)
        if (y[k] > y[best])
            best = k;
    return best;
}

/* Whether the true class is among the k largest of y[0..n) (ties count
 * against it: a value equal to the label's, at a lower index, ranks
 * first). */
static bool in_top_k(const float *y, long n, int label, int k)
{
    int above = 0;
    for (long j = 0; j < n; j++)
        if (y[j] > y[label] || (y[j] == y[label] && j < label))
            above++;
    return above < k;
}

/* The loss of one sample: mean squared error against the one-hot label,
 * or softmax cross-entropy of the logits. */
static double sample_loss(const RtMeta *m, const float *yi, long width, int label)
{
    if (m->has_train && m->loss == RT_LOSS_MSE) {
        double sq = 0;
        for (long k = 0; k < width; k++) {
            double d = (double)yi[k] - (k == label ? 1.0 : 0.0);
            sq += d * d;
        }
        return sq / (double)width;
    }
    double mx = yi[0], sum = 0;
    for (long k = 1; k < width; k++)
        mx = yi[k] > mx ? yi[k] : mx;
    for (long k = 0; k < width; k++)
        sum += exp((double)yi[k] - mx);
    return mx + log(sum) - (double)yi[label];
}

/* Value k of the dense targets of the sample stored at position at. */
static float dense_value(const RtSplit *s, size_t at, long k)
{
    const unsigned char *p = s->t + (at * (size_t)s->t_width + (size_t)k) * (size_t)s->t_item;
    switch (s->t_kind) {
    case 'f': { float v; memcpy(&v, p, 4); return v; }
    case 'b': return (float)p[0] / 255.0f;
    default: break;
    }
    /* class indices: little-endian integers of t_item bytes (rt_npy_map
     * maps little-endian hosts only) */
    uint64_t u = 0;
    memcpy(&u, p, (size_t)s->t_item);
    if (s->t_kind == 'i' && s->t_item < 8 && (u >> (8 * s->t_item - 1)) & 1)
        u |= ~(uint64_t)0 << (8 * s->t_item);
    return (float)(int64_t)u;
}

/* The batch's targets, as the meta's target record says (docs/runtime.md):
 * with target=self the batch's input x itself; with dense targets each
 * sample's values; else from the labels, the class index as a float, or
 * the label's one-hot row of `classes` floats. */
static void gather_target(const RtMeta *m, float *t, const float *x, const RtSplit *s,
                          const uint32_t *idx, long first, long n, int classes)
{
    if (m->target_input) {
        memcpy(t, x, (size_t)n * (size_t)m->target.numel * sizeof *t);
        return;
    }
    if (s->t) {
        for (long i = 0; i < n; i++) {
            size_t at = rt_split_at(s, idx ? idx[first + i] : first + i);
            for (long k = 0; k < s->t_width; k++)
                t[i * s->t_width + k] = dense_value(s, at, k);
        }
        return;
    }
    for (long i = 0; i < n; i++) {
        int label = rt_split_label(s, idx ? idx[first + i] : first + i);
        if (m->target_kind == RT_TARGET_CLASS) {
            t[i] = (float)label;
        } else {
            for (int k = 0; k < classes; k++)
                t[i * classes + k] = k == label ? 1.0f : 0.0f;
        }
    }
}

/* Floats of one sample's target. */
static size_t target_width(const RtMeta *m, int classes)
{
    if (m->target_input || m->target_kind == RT_TARGET_TENSOR ||
        (m->target_kind == RT_TARGET_CLASS && m->target.rank > 0))
        return (size_t)m->target.numel;
    return m->target_kind == RT_TARGET_CLASS ? 1 : (size_t)classes;
}

/* Scores n samples' first outputs y (width floats each) against their
 * targets t (as gather_target wrote them) or labels: one class per sample
 * (accuracy, top-5, confusion when given), a class per position (the
 * argmax over the class axis at each counted position), or nothing. */
static void score_batch(const RtMeta *m, RtScore *sc, const float *y, long width, const float *t,
                        const RtSplit *s, const uint32_t *idx, long first, long n, int classes)
{
    if (sc->kind == RT_SCORE_NONE)
        return;
    if (sc->kind == RT_SCORE_POSITION) {
        long P = m->target.numel;
        for (long i = 0; i < n; i++)
            for (long p = 0; p < P; p++) {
                int label = (int)t[i * P + p];
                if (m->has_ignore && label == m->ignore_index)
                    continue;
                const float *yi = y + i * width + p;
                long best = 0;
                for (long k = 1; k < classes; k++)
                    if (yi[k * P] > yi[best * P])
                        best = k;
                sc->correct += best == label;
                sc->counted++;
            }
        return;
    }
    for (long i = 0; i < n; i++) {
        const float *yi = y + i * width;
        int label = rt_split_label(s, idx ? idx[first + i] : first + i);
        long guess = argmax(yi, width);
        sc->correct += guess == label;
        sc->correct5 += in_top_k(yi, width, label, 5);
        if (sc->confusion && guess < classes)
            sc->confusion[(long)label * classes + guess]++;
        sc->counted++;
    }
}

double rt_score_acc(const RtScore *sc)
{
    if (sc->kind == RT_SCORE_NONE)
        return NAN;
    return sc->counted ? (double)sc->correct / (double)sc->counted : 0;
}

/* A batch's loss as a sum over its n samples: a mean times n, or the sum
 * itself (reduction sum); divided by the sample count, the reported loss
 * is then the mean per sample either way. */
static double batch_loss_sum(const RtMeta *m, double loss, long n)
{
    return m->loss_sum ? loss : loss * (double)n;
}

/* Whether the model computes differently in training than in inference
 * (it keeps state tensors: batch norm's statistics, dropout's counter). */
static bool has_mode(const RtMeta *m)
{
    for (int i = 0; i < m->nparam; i++)
        if (m->param[i].state)
            return true;
    return false;
}

float *rt_prepare(const RtMeta *m, const NetcModel *mod, const float *params, float *arena)
{
    if (!mod->prepare || m->prep_floats <= 0)
        return NULL;
    float *prep = rt_calloc((size_t)m->prep_floats, sizeof *prep);
    if (prep)
        mod->prepare(params, prep, arena);
    return prep;
}

void rt_forward(const NetcModel *mod, const float *prep, int n, const float *params, float *arena,
                const float *const *in, float *const *out)
{
    if (prep && mod->forward_prepared)
        mod->forward_prepared(n, params, prep, arena, in, out);
    else
        mod->forward(n, params, NULL, arena, in, out);
}

bool rt_evaluate(const RtMeta *m, const NetcModel *mod, const float *params, float *arena,
                 long batch, const RtData *d, RtScore *out, RtErr *e)
{
    NetcEntryFn train = mod->train, eval = mod->eval;
    long *confusion = out->confusion;
    memset(out, 0, sizeof *out);
    out->confusion = confusion;
    const RtSplit *s = &d->test;
    int classes = d->classes;
    if (confusion)
        memset(confusion, 0, (size_t)classes * (size_t)classes * sizeof *confusion);
    bool own = m->has_train && m->noutput <= MAX_OUTPUTS && (eval || (train && !has_mode(m)));
    RtScoreKind kind = out->kind = rt_score_kind(m, s);
    if (kind != RT_SCORE_CLASS && !own)
        return rt_fail(e, NULL, "a model with a %s target is scored through its eval entry, "
                       "which this program lacks (rebuild it)", rt_target_name(m->target_kind));
    long nb = batch < s->n ? batch : s->n;
    size_t nb1 = (size_t)(nb ? nb : 1);
    long width = m->output[0].numel;
    if (kind == RT_SCORE_CLASS && width < classes)
        return rt_fail(e, NULL, "the model's first output has %ld values for %d classes", width,
                       classes);
    float *x = rt_calloc(nb1, (size_t)m->input[0].numel * sizeof *x);
    float **y = rt_calloc((size_t)m->noutput + 1, sizeof *y);
    float *target = own ? rt_calloc(nb1, target_width(m, classes) * sizeof(float)) : NULL;
    float *grads = own && !eval ? rt_calloc((size_t)m->params + 1, sizeof(float)) : NULL;
    float loss = 0;
    bool ok = x && y && (!own || (target && (eval || grads)));
    for (int i = 0; ok && i < m->noutput; i++)
        ok = (y[i] = rt_calloc(nb1, (size_t)m->output[i].numel * sizeof(float))) != NULL;
    double loss_sum = 0;
    float *prep = ok ? rt_prepare(m, mod, params, arena) : NULL;
    for (long first = 0; ok && first < s->n; first += batch) {
        long n = s->n - first < batch ? s->n - first : batch;
        rt_gather(x, s, &d->view, NULL, first, n, NULL);
        if (own) {
            gather_target(m, target, x, s, NULL, first, n, classes);
            const float *in[2] = {x, target};
            float *outs[MAX_OUTPUTS + 1];
            memcpy(outs, y, sizeof(float *) * (size_t)m->noutput);
            outs[m->noutput] = &loss;
            if (eval && prep && mod->eval_prepared)
                mod->eval_prepared((int)n, params, prep, arena, in, outs);
            else if (eval)
                eval((int)n, params, NULL, arena, in, outs);
            else
                train((int)n, params, grads, arena, in, outs);
            loss_sum += batch_loss_sum(m, loss, n);
        } else {
            const float *in[1] = {x};
            rt_forward(mod, prep, (int)n, params, arena, in, y);
        }
        score_batch(m, out, y[0], width, target, s, NULL, first, n, classes);
        for (long i = 0; !own && i < n; i++)
            loss_sum += sample_loss(m, y[0] + i * width, width, rt_split_label(s, first + i));
    }
    free(prep);
    out->n = s->n;
    out->loss = s->n ? loss_sum / (double)s->n : 0;
    for (int i = 0; y && i < m->noutput; i++)
        free(y[i]);
    free(y);
    free(x);
    free(target);
    free(grads);
    return ok ? true : rt_fail(e, NULL, "out of memory for a batch of %ld", nb);
}

/* Everything one training run holds. */
typedef struct {
    const RtMeta *m;
    const NetcModel *mod;
    NetcEntryFn train;
    float *params, *grads, *state, *arena; /* state: RT_OPT_SLOTS * params floats */
    float *x, *target, **y, loss;
    uint32_t *order;
    RtData data;
    RtTrainState st;
    FILE *metrics;
    long first_epoch;
    double lr_now;             /* this epoch's learning rate (before warm-up) */
    long warmup_steps;         /* the warm-up's length in steps */
} Run;

static void run_free(Run *r)
{
    free(r->params);
    free(r->grads);
    free(r->state);
    rt_arena_free(r->arena);
    free(r->x);
    free(r->target);
    for (int i = 0; r->y && i < r->m->noutput; i++)
        free(r->y[i]);
    free(r->y);
    free(r->order);
    rt_data_free(&r->data);
    if (r->metrics)
        fclose(r->metrics);
}

int rt_nonfinite_param(const RtMeta *m, const float *x)
{
    for (int i = 0; i < m->nparam; i++) {
        const float *v = x + m->param[i].offset;
        double ss = 0;
        for (long k = 0; k < m->param[i].t.numel; k++)
            ss += (double)v[k] * (double)v[k];
        if (!isfinite(ss))
            return i;
    }
    return -1;
}

/* One pass over the shuffled training set; fills the running score.
 * Every step checks the loss and every gradient before the update: a
 * non-finite one stops the run (an error naming the parameter, the epoch
 * and the batch) or, with skip_nonfinite, skips that batch's update. */
static bool train_epoch(Run *r, bool skip_nonfinite, long epoch, RtProgress *pg, RtScore *sc,
                        RtErr *e)
{
    const RtMeta *m = r->m;
    const RtSplit *s = &r->data.train;
    long batch = r->st.batch, width = m->output[0].numel;
    int classes = r->data.classes;
    for (uint32_t i = 0; i < (uint32_t)s->n; i++)
        r->order[i] = i;
    rt_rng_shuffle(&r->st.rng, r->order, (uint32_t)s->n);
    RtRng aug;
    rt_aug_seed(&aug, r->st.seed, epoch - 1);
    bool augment = r->data.view.crop_pad > 0 || r->data.view.flip;
    memset(sc, 0, sizeof *sc);
    sc->kind = rt_score_kind(m, s);
    double loss_sum = 0;
    float *out[MAX_OUTPUTS + 1];
    for (int i = 0; i < m->noutput; i++)
        out[i] = r->y[i];
    out[m->noutput] = &r->loss;
    const float *in[2] = {r->x, r->target};
    long b = 0;
    for (long first = 0; first < s->n; first += batch, b++) {
        long n = s->n - first < batch ? s->n - first : batch;
        rt_gather(r->x, s, &r->data.view, r->order, first, n, augment ? &aug : NULL);
        gather_target(m, r->target, r->x, s, r->order, first, n, classes);
        /* Entries write every gradient, but zeroing first also makes an
         * entry that accumulates correct; it costs one pass over params. */
        memset(r->grads, 0, (size_t)m->params * sizeof *r->grads);
        r->train((int)n, r->params, r->grads, r->arena, in, out);
        int bad = rt_nonfinite_param(m, r->grads);
        if (bad >= 0 || !isfinite(r->loss)) {
            if (skip_nonfinite) {
                sc->skipped++;
                continue;
            }
            if (bad >= 0)
                return rt_fail(e, NULL, "the %s of '%s' is not finite at epoch %ld, batch "
                               "%ld (loss %g); stopping before the update (the learning rate may "
                               "be too large; --on-nonfinite=skip-batch skips such batches)",
                               m->param[bad].state ? "next value" : "gradient",
                               m->param[bad].t.name, epoch, b + 1, (double)r->loss);
            return rt_fail(e, NULL, "the loss is not finite (%g) at epoch %ld, batch %ld; "
                           "stopping before the update (--on-nonfinite=skip-batch skips such "
                           "batches)", (double)r->loss, epoch, b + 1);
        }
        r->st.step++;
        double lr = r->lr_now * rt_warmup_factor(r->st.step, r->warmup_steps);
        rt_optim_update(m, &r->st.opt, lr, r->st.step, r->params, r->grads, r->state);
        loss_sum += batch_loss_sum(m, r->loss, n);
        score_batch(m, sc, r->y[0], width, r->target, s, r->order, first, n, classes);
        sc->n += n;
        rt_progress_update(pg, b + 1, sc->n ? loss_sum / (double)sc->n : 0, rt_score_acc(sc),
                           sc->n);
    }
    sc->loss = sc->n ? loss_sum / (double)sc->n : 0;
    /* An update can overflow finite gradients into inf weights; those are
     * never saved. */
    int bad = rt_nonfinite_param(m, r->params);
    if (bad >= 0)
        return rt_fail(e, NULL, "parameter '%s' is not finite after epoch %ld; stopping without "
                       "saving it (the learning rate may be too large)", m->param[bad].t.name,
                       epoch);
    return true;
}

static void json_num(FILE *f, const char *key, double v, bool last)
{
    if (isfinite(v))
        fprintf(f, "\"%s\":%.9g%s", key, v, last ? "" : ",");
    else
        fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
}

static bool report_epoch(Run *r, const RtTrainOpts *o, long epoch, const RtScore *tr,
                         const RtScore *te, double secs, double train_secs, RtErr *e)
{
    double ips = train_secs > 0 ? (double)tr->n / train_secs : 0;
    double tr_acc = rt_score_acc(tr), te_acc = rt_score_acc(te);
    if (!o->quiet && isnan(tr_acc)) {
        printf("epoch %ld/%ld  train_loss %.4f  test_loss %.4f  %.1f s  %.0f img/s  lr %.3g\n",
               epoch, r->st.epochs, tr->loss, te->loss, secs, ips, r->lr_now);
    } else if (!o->quiet) {
        printf("epoch %ld/%ld  train_loss %.4f  train_acc %.2f%%  test_loss %.4f  test_acc "
               "%.2f%%  %.1f s  %.0f img/s  lr %.3g\n",
               epoch, r->st.epochs, tr->loss, 100 * tr_acc, te->loss, 100 * te_acc, secs, ips,
               r->lr_now);
    }
    if (!o->quiet) {
        if (tr->skipped)
            printf("epoch %ld/%ld  skipped %ld of %ld batches (non-finite loss or gradient)\n",
                   epoch, r->st.epochs, tr->skipped,
                   (r->data.train.n + r->st.batch - 1) / r->st.batch);
        fflush(stdout);
    }
    if (r->metrics) {
        fprintf(r->metrics, "{\"epoch\":%ld,", epoch);
        json_num(r->metrics, "train_loss", tr->loss, false);
        json_num(r->metrics, "train_acc", tr_acc, false);
        json_num(r->metrics, "test_loss", te->loss, false);
        json_num(r->metrics, "test_acc", te_acc, false);
        json_num(r->metrics, "seconds", secs, false);
        json_num(r->metrics, "images_per_s", ips, !o->skip_nonfinite);
        if (o->skip_nonfinite)
            json_num(r->metrics, "skipped_batches", (double)tr->skipped, true);
        fprintf(r->metrics, "}\n");
        errno = 0;
        if (fflush(r->metrics) != 0 || ferror(r->metrics))
            return rt_fail(e, o->metrics, "cannot write the metrics of epoch %ld%s%s", epoch,
                           errno ? ": " : "", errno ? strerror(errno) : "");
    }
    return true;
}

/* Resolves the configuration and fills params from --resume, the embedded
 * weights or the initialisers. */
static bool setup(Run *r, const float *weights, const RtTrainOpts *o, RtErr *e)
{
    const RtMeta *m = r->m;
    size_t np = (size_t)m->params;
    r->params = rt_calloc(np + 1, sizeof(float));
    r->grads = rt_calloc(np + 1, sizeof(float));
    r->state = rt_calloc(np * RT_OPT_SLOTS + 1, sizeof(float));
    if (!r->params || !r->grads || !r->state)
        return rt_fail(e, NULL, "out of memory for %zu parameters", np);
    RtTrainState *st = &r->st;
    *st = (RtTrainState){.epochs = m->epochs, .opt = m->opt, .schedule = m->schedule,
                         .batch = m->batch, .seed = m->seed};
    if (o->resume) {
        if (!rt_ckpt_load(o->resume, m, r->params, r->state, st, e))
            return false;
    } else {
        if (o->seed >= 0)
            st->seed = (uint64_t)o->seed;
        if (weights)
            memcpy(r->params, weights, np * sizeof(float));
        else
            rt_init_params(m, r->params, st->seed);
        rt_optim_init_state(&st->opt, r->state, m->params);
        rt_rng_seed(&st->rng, st->seed, RT_STREAM_DATA);
    }
    /* Flags win over the checkpoint, which wins over the meta. */
    if (o->epochs >= 0)
        st->epochs = o->epochs;
    if (o->batch > 0)
        st->batch = o->batch;
    if (o->lr > 0)
        st->opt.lr = o->lr;
    if (o->schedule && !rt_schedule_parse(o->schedule, &st->schedule, e))
        return false;
    if (o->limit >= 0)
        st->limit = o->limit;
    r->first_epoch = st->epoch;
    return true;
}

static bool alloc_batch(Run *r, RtErr *e)
{
    const RtMeta *m = r->m;
    size_t b = (size_t)r->st.batch;
    size_t tw = target_width(m, r->data.classes);
    r->x = rt_calloc(b, (size_t)m->input[0].numel * sizeof(float));
    r->target = rt_calloc(b, tw * sizeof(float));
    r->y = rt_calloc((size_t)m->noutput, sizeof *r->y);
    r->order = rt_calloc((size_t)r->data.train.n + 1, sizeof *r->order);
    bool ok = r->x && r->target && r->y && r->order;
    for (int i = 0; ok && i < m->noutput; i++)
        ok = (r->y[i] = rt_calloc(b, (size_t)m->output[i].numel * sizeof(float))) != NULL;
    if (!ok)
        return rt_fail(e, NULL, "out of memory for a batch of %zu", b);
    r->arena = rt_arena_new(m, r->st.batch, e);
    return r->arena != NULL;
}

bool rt_cmd_train(const RtMeta *m, const NetcModel *mod, const RtTrainOpts *o, RtErr *e)
{
    const float *weights = mod->weights;
    if (!mod->train || !m->has_train)
        return rt_fail(e, NULL, "model '%s' has no train section, so it cannot be trained",
                       m->name);
    if (m->noutput > MAX_OUTPUTS)
        return rt_fail(e, NULL, "model '%s' has too many outputs to train", m->name);
    const char *dir = o->data ? o->data : m->data_path;
    if (!dir)
        return rt_fail(e, NULL, "no data: the model names none, give --data PATH");
    Run r = {.m = m, .mod = mod, .train = mod->train};
    bool ok = setup(&r, weights, o, e) &&
              rt_data_load(&r.data, m, dir, true, r.st.limit,
                           o->test_limit > 0 ? o->test_limit : 0, o->skip_bad, e) &&
              alloc_batch(&r, e);
    if (ok && r.data.train.n > UINT32_MAX)
        ok = rt_fail(e, dir, "too many training samples");
    if (ok && o->metrics && !(r.metrics = fopen(o->metrics, "a")))
        ok = rt_fail(e, o->metrics, "cannot open for appending: %s", strerror(errno));
    if (ok && r.data.skipped && !o->quiet)
        printf("skipped %ld bad image%s (--skip-bad)\n", r.data.skipped,
               r.data.skipped == 1 ? "" : "s");
    bool live = !o->quiet && isatty(fileno(stdout));
    /* Only after a successful setup is the batch known to be at least 1. */
    long batches = ok ? (r.data.train.n + r.st.batch - 1) / r.st.batch : 0;
    r.warmup_steps = m->warmup * batches;
    RtScore te = {0};
    long skipped = 0;
    if (ok && o->resume && r.first_epoch >= r.st.epochs && !o->quiet)
        printf("the checkpoint has already trained %ld of %ld epochs; evaluating only\n",
               r.first_epoch, r.st.epochs);
    for (long ep = r.first_epoch; ok && ep < r.st.epochs; ep++) {
        RtProgress pg;
        RtScore tr;
        rt_progress_start(&pg, ep + 1, r.st.epochs, batches, live);
        double t0 = rt_now();
        r.lr_now = rt_schedule_lr(&r.st.schedule, r.st.opt.lr, ep, r.st.epochs);
        ok = train_epoch(&r, o->skip_nonfinite, ep + 1, &pg, &tr, e);
        skipped += tr.skipped;
        double t1 = rt_now();
        ok = ok && rt_evaluate(m, mod, r.params, r.arena, r.st.batch, &r.data, &te, e);
        rt_progress_clear(&pg);
        r.st.epoch = ep + 1;
        /* A metrics file that cannot be written stops the run, but only
         * after this epoch's checkpoint is safe. */
        RtErr merr;
        bool metrics_ok = !ok || report_epoch(&r, o, ep + 1, &tr, &te, rt_now() - t0, t1 - t0,
                                              &merr);
        if (ok && o->save)
            ok = rt_ckpt_save(o->save, m, r.params, r.state, &r.st, e);
        if (ok && !metrics_ok) {
            *e = merr;
            ok = false;
        }
    }
    if (ok && r.first_epoch >= r.st.epochs)
        ok = rt_evaluate(m, mod, r.params, r.arena, r.st.batch, &r.data, &te, e);
    if (ok && te.kind == RT_SCORE_NONE)
        printf("test_loss %.4f (%ld samples)\n", te.loss, te.n);
    else if (ok)
        printf("test_acc %.2f%% (%ld/%ld%s)\n", 100.0 * rt_score_acc(&te), te.correct,
               te.counted, te.kind == RT_SCORE_POSITION ? " positions" : "");
    if (skipped)
        printf("skipped %ld batch%s with a non-finite loss or gradient\n", skipped,
               skipped == 1 ? "" : "es");
    run_free(&r);
    return ok;
}
