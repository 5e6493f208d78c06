/* train.c - the training loop and evaluation.
 *
 * One epoch: shuffle the sample order with the data stream of the seed,
 * gather each batch (the last, partial one included) as floats with the
 * epoch's crops and flips (rt_gather, batch.c), call the
 * train entry (in = {x, target}, out = {outputs..., loss[1]}), apply SGD,
 * then run the forward entry over the test set and score it here, in
 * double: softmax cross-entropy from the logits, or mean squared error
 * against the one-hot label (mean over samples and classes, as PyTorch's
 * MSELoss), accuracy as argmax(first output) == label, top-5 accuracy and,
 * for eval, the confusion matrix.
 *
 * Before each update the loss and every parameter's gradient are checked
 * (rt_nonfinite_param, one pass); a non-finite one stops the run or, with
 * --on-nonfinite=skip-batch, skips the update.  After each epoch the
 * weights are checked, so a checkpoint never holds a non-finite value, and
 * a metrics file that cannot be written stops the run only after the
 * epoch's checkpoint is saved.
 *
 * Resuming restores the parameters, velocities, the data stream and the
 * hyper-parameters from the checkpoint, so epoch k+1 after a resume is
 * the same computation as epoch k+1 of an uninterrupted run.
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

bool rt_evaluate(const RtMeta *m, NetcEntryFn forward, const float *params, float *arena,
                 long batch, const RtData *d, RtScore *out, RtErr *e)
{
    long *confusion = out->confusion;
    memset(out, 0, sizeof *out);
    out->confusion = confusion;
    const RtSplit *s = &d->test;
    int classes = d->classes;
    if (confusion)
        memset(confusion, 0, (size_t)classes * (size_t)classes * sizeof *confusion);
    long nb = batch < s->n ? batch : s->n;
    long width = m->output[0].numel;
    if (width < classes)
        return rt_fail(e, NULL, "the model's first output has %ld values for %d classes", width,
                       classes);
    float *x = rt_calloc((size_t)(nb ? nb : 1), (size_t)m->input[0].numel * sizeof *x);
    float **y = rt_calloc((size_t)m->noutput, sizeof *y);
    bool ok = x && y;
    for (int i = 0; ok && i < m->noutput; i++)
        ok = (y[i] = rt_calloc((size_t)(nb ? nb : 1), (size_t)m->output[i].numel * sizeof(float)));
    double loss = 0;
    for (long first = 0; ok && first < s->n; first += batch) {
        long n = s->n - first < batch ? s->n - first : batch;
        rt_gather(x, s, &d->view, NULL, first, n, NULL);
        const float *in[1] = {x};
        forward((int)n, params, NULL, arena, in, y);
        for (long i = 0; i < n; i++) {
            const float *yi = y[0] + i * width;
            int label = rt_split_label(s, first + i);
            long guess = argmax(yi, width);
            out->correct += guess == label;
            out->correct5 += in_top_k(yi, width, label, 5);
            if (confusion && guess < classes)
                confusion[(long)label * classes + guess]++;
            loss += sample_loss(m, yi, width, label);
        }
    }
    out->n = s->n;
    out->loss = s->n ? loss / (double)s->n : 0;
    for (int i = 0; y && i < m->noutput; i++)
        free(y[i]);
    free(y);
    free(x);
    return ok ? true : rt_fail(e, NULL, "out of memory for a batch of %ld", nb);
}

/* Everything one training run holds. */
typedef struct {
    const RtMeta *m;
    NetcEntryFn forward, train;
    float *params, *grads, *velocity, *arena;
    float *x, *target, **y, loss;
    uint32_t *order;
    RtData data;
    RtTrainState st;
    FILE *metrics;
    long first_epoch;
    float lr_now;              /* this epoch's learning rate */
} Run;

static void run_free(Run *r)
{
    free(r->params);
    free(r->grads);
    free(r->velocity);
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
static bool train_epoch(Run *r, const RtSgd *sgd, bool skip_nonfinite, long epoch, RtProgress *pg,
                        RtScore *sc, RtErr *e)
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
        for (long i = 0; i < n; i++) {
            int label = rt_split_label(s, r->order[first + i]);
            if (m->target_kind == RT_TARGET_CLASS) {
                r->target[i] = (float)label;
            } else {
                for (int k = 0; k < classes; k++)
                    r->target[i * classes + k] = k == label ? 1.0f : 0.0f;
            }
        }
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
                return rt_fail(e, NULL, "the gradient of '%s' is not finite at epoch %ld, batch "
                               "%ld (loss %g); stopping before the update (the learning rate may "
                               "be too large; --on-nonfinite=skip-batch skips such batches)",
                               m->param[bad].t.name, epoch, b + 1, (double)r->loss);
            return rt_fail(e, NULL, "the loss is not finite (%g) at epoch %ld, batch %ld; "
                           "stopping before the update (--on-nonfinite=skip-batch skips such "
                           "batches)", (double)r->loss, epoch, b + 1);
        }
        rt_sgd_step(sgd, r->params, r->grads, r->velocity, m->params);
        loss_sum += (double)r->loss * (double)n;
        for (long i = 0; i < n; i++)
            if (argmax(r->y[0] + i * width, width) == rt_split_label(s, r->order[first + i]))
                sc->correct++;
        sc->n += n;
        rt_progress_update(pg, b + 1, sc->n ? loss_sum / (double)sc->n : 0,
                           sc->n ? (double)sc->correct / (double)sc->n : 0, sc->n);
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
    double tr_acc = tr->n ? (double)tr->correct / (double)tr->n : 0;
    double te_acc = te->n ? (double)te->correct / (double)te->n : 0;
    if (!o->quiet) {
        printf("epoch %ld/%ld  train_loss %.4f  train_acc %.2f%%  test_loss %.4f  test_acc "
               "%.2f%%  %.1f s  %.0f img/s  lr %.3g\n",
               epoch, r->st.epochs, tr->loss, 100 * tr_acc, te->loss, 100 * te_acc, secs, ips,
               (double)r->lr_now);
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
    r->velocity = rt_calloc(np + 1, sizeof(float));
    if (!r->params || !r->grads || !r->velocity)
        return rt_fail(e, NULL, "out of memory for %zu parameters", np);
    RtTrainState *st = &r->st;
    *st = (RtTrainState){.epochs = m->epochs, .sgd = m->sgd, .schedule = m->schedule,
                         .batch = m->batch, .seed = m->seed};
    if (o->resume) {
        if (!rt_ckpt_load(o->resume, m, r->params, r->velocity, st, e))
            return false;
    } else {
        if (o->seed >= 0)
            st->seed = (uint64_t)o->seed;
        if (weights)
            memcpy(r->params, weights, np * sizeof(float));
        else
            rt_init_params(m, r->params, st->seed);
        rt_rng_seed(&st->rng, st->seed, RT_STREAM_DATA);
    }
    /* Flags win over the checkpoint, which wins over the meta. */
    if (o->epochs >= 0)
        st->epochs = o->epochs;
    if (o->batch > 0)
        st->batch = o->batch;
    if (o->lr > 0)
        st->sgd.lr = (float)o->lr;
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
    size_t tw = m->target_kind == RT_TARGET_CLASS ? 1 : (size_t)r->data.classes;
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

bool rt_cmd_train(const RtMeta *m, NetcEntryFn forward, NetcEntryFn train, const float *weights,
                  const RtTrainOpts *o, RtErr *e)
{
    if (!train || !m->has_train)
        return rt_fail(e, NULL, "model '%s' has no train section, so it cannot be trained",
                       m->name);
    if (m->noutput > MAX_OUTPUTS)
        return rt_fail(e, NULL, "model '%s' has too many outputs to train", m->name);
    const char *dir = o->data ? o->data : m->data_path;
    if (!dir)
        return rt_fail(e, NULL, "no data: the model names none, give --data PATH");
    Run r = {.m = m, .forward = forward, .train = train};
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
        RtSgd sgd = r.st.sgd;
        sgd.lr = rt_schedule_lr(&r.st.schedule, r.st.sgd.lr, ep, r.st.epochs);
        r.lr_now = sgd.lr;
        ok = train_epoch(&r, &sgd, o->skip_nonfinite, ep + 1, &pg, &tr, e);
        skipped += tr.skipped;
        double t1 = rt_now();
        ok = ok && rt_evaluate(m, forward, r.params, r.arena, r.st.batch, &r.data, &te, e);
        rt_progress_clear(&pg);
        r.st.epoch = ep + 1;
        /* A metrics file that cannot be written stops the run, but only
         * after this epoch's checkpoint is safe. */
        RtErr merr;
        bool metrics_ok = !ok || report_epoch(&r, o, ep + 1, &tr, &te, rt_now() - t0, t1 - t0,
                                              &merr);
        if (ok && o->save)
            ok = rt_ckpt_save(o->save, m, r.params, r.velocity, &r.st, e);
        if (ok && !metrics_ok) {
            *e = merr;
            ok = false;
        }
    }
    if (ok && r.first_epoch >= r.st.epochs)
        ok = rt_evaluate(m, forward, r.params, r.arena, r.st.batch, &r.data, &te, e);
    if (ok)
        printf("test_acc %.2f%% (%ld/%ld)\n", te.n ? 100.0 * (double)te.correct / (double)te.n : 0,
               te.correct, te.n);
    if (skipped)
        printf("skipped %ld batch%s with a non-finite loss or gradient\n", skipped,
               skipped == 1 ? "" : "es");
    run_free(&r);
    return ok;
}
