/* data.c - the training and test sets of a model, from the data source
 * its train section names.
 *
 * Needs: the meta's data records (kind, path, files, options).  Provides
 * rt_data_load: two splits and the view that turns their samples into the
 * model's input (batch.c).  The sources:
 *   fashion_mnist, mnist, idx   the four IDX files of the MNIST layout in
 *                               one directory, each NAME.gz if present,
 *                               else NAME; channels=C replicates the grey
 *                               channel, size=S resizes to SxS (bilinear)
 *   npy                         images [N, C, H, W] or [N, H, W] (volumes
 *                               [N, C, D, H, W]), uint8 (read as x / 255)
 *                               or float32, labels [N] of any integer
 *                               dtype, or a target per sample (a class per
 *                               position, a tensor); memory-mapped
 *   cifar10, cifar100           the binary batches (cifar.c)
 *   images                      one folder per class (image.c)
 * A source without test files takes a held-out split: a fraction of the
 * training samples, chosen by a permutation drawn from the train
 * section's seed (stream RT_STREAM_SPLIT), so train and eval agree on it
 * whatever --seed says.  Every file is checked against the model: sample
 * shape against the input shape, labels against the number of classes,
 * image and label counts against each other.  Byte images stay bytes in
 * memory (a quarter of the floats' size).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

int rt_model_classes(const RtMeta *m)
{
    if (m->has_train && m->target_kind == RT_TARGET_ONEHOT)
        return (int)m->target.numel;
    /* a class per position: the first output's class axis */
    if (m->has_train && m->target_kind == RT_TARGET_CLASS && m->target.rank > 0)
        return m->output[0].numel % m->target.numel ? 0
                                                    : (int)(m->output[0].numel / m->target.numel);
    return (int)m->output[0].numel;
}

RtScoreKind rt_score_kind(const RtMeta *m, const RtSplit *s)
{
    if (!m->has_train)
        return RT_SCORE_CLASS;
    if (m->target_kind == RT_TARGET_CLASS && m->target.rank > 0)
        return RT_SCORE_POSITION;
    /* tensor targets, the input, or float targets per sample */
    if (m->target_input || m->target_kind == RT_TARGET_TENSOR || s->t)
        return RT_SCORE_NONE;
    return RT_SCORE_CLASS;
}

/* The view of the model's input for samples shaped [c, h, w] (volumes
 * [c, depth, h / depth, w]) after the source's conversions; false when
 * they do not fit it. */
static bool view_of(RtView *v, const RtTensor *in, int c, int h, int w, int depth)
{
    if ((in->rank == 4) != (depth > 0))
        return false;
    switch (in->rank) {
    case 4: /* a volume [C, D, H, W], stored with its D*H rows as [C, D*H, W] */
        *v = (RtView){.c = (int)in->d[0], .h = (int)(in->d[1] * in->d[2]), .w = (int)in->d[3],
                      .depth = (int)in->d[1]};
        return in->d[0] == c && in->d[1] == depth && in->d[1] * in->d[2] == h && in->d[3] == w;
    case 3:
        *v = (RtView){.c = (int)in->d[0], .h = (int)in->d[1], .w = (int)in->d[2]};
        return in->d[0] == c && in->d[1] == h && in->d[2] == w;
    case 2:
        *v = (RtView){.c = 1, .h = (int)in->d[0], .w = (int)in->d[1]};
        return c == 1 && in->d[0] == h && in->d[1] == w;
    case 1:
        *v = (RtView){.c = c, .h = h, .w = w};
        return in->d[0] == (long)c * h * w;
    default:
        return false;
    }
}

/* The augmentation and normalisation of the meta, on the view. */
static bool set_augment(RtView *v, const RtMeta *m, RtErr *e)
{
    v->crop_pad = m->crop_pad;
    v->flip = m->flip;
    if (v->depth && v->crop_pad)
        return rt_fail(e, NULL, "augment crop works on images; the model's input '%s' is a volume",
                       m->input[0].name);
    if (!m->nnorm)
        return true;
    if (m->nnorm != v->c)
        return rt_fail(e, NULL, "normalize has %d means and stds; the model's input '%s' has %d "
                       "channel%s", m->nnorm, m->input[0].name, v->c, v->c == 1 ? "" : "s");
    v->nnorm = m->nnorm;
    memcpy(v->mean, m->mean, sizeof v->mean);
    memcpy(v->std, m->std, sizeof v->std);
    return true;
}

bool rt_data_fit(RtData *d, const RtMeta *m, const RtSplit *s, int channels, int size,
                 const char *path, RtErr *e)
{
    int c = channels ? channels : s->c, h = size ? size : s->h, w = size ? size : s->w;
    RtView v;
    if (s->depth && (channels || size))
        return rt_fail(e, path, "volumes are not converted: channels= and size= are for images");
    if ((c == s->c || s->c == 1) && view_of(&v, &m->input[0], c, h, w, s->depth) &&
        c <= RT_MAX_CHANNELS) {
        if (!set_augment(&v, m, e))
            return false;
        d->view = v;
        return true;
    }
    char want[128], got[128];
    long dims[4] = {c, h, w}, vdims[4] = {c, s->depth, s->depth ? h / s->depth : 0, w};
    rt_shape_str(want, sizeof want, m->input[0].d, m->input[0].rank, false);
    if (s->depth)
        rt_shape_str(got, sizeof got, vdims, 4, false);
    else
        rt_shape_str(got, sizeof got, dims, 3, false);
    if (s->depth || m->input[0].rank == 4)
        return rt_fail(e, path, "samples are %s (%s), the model's input '%s' is %s", got,
                       s->depth ? "volumes [C, D, H, W]" : "images", m->input[0].name, want);
    if (s->c == 1 && !channels && !size)
        return rt_fail(e, path, "images are %dx%d, the model's input '%s' is %s", s->h, s->w,
                       m->input[0].name, want);
    if (c != s->c && s->c != 1)
        return rt_fail(e, path, "images have %d channels; only 1 channel can be replicated to "
                       "%d", s->c, c);
    return rt_fail(e, path, "samples are %s%s, the model's input '%s' is %s", got,
                   channels || size ? " after conversion" : "", m->input[0].name, want);
}

bool rt_data_check_labels(const RtSplit *s, const RtData *d, const char *path, RtErr *e)
{
    for (long i = 0; i < s->n; i++)
        if (s->y[i] >= d->classes)
            return rt_fail(e, path, "label %d of sample %ld is out of range: the model has %d "
                           "classes", s->y[i], i, d->classes);
    return true;
}

/* ---- IDX ---------------------------------------------------------------- */

/* DIR/NAME.gz when it exists, else DIR/NAME; NULL when neither does. */
static char *find(const char *dir, const char *name, RtErr *e)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = rt_alloc(n);
    if (!p) {
        rt_fail(e, NULL, "out of memory");
        return NULL;
    }
    snprintf(p, n, "%s/%s.gz", dir, name);
    if (access(p, F_OK) == 0)
        return p;
    snprintf(p, n, "%s/%s", dir, name);
    if (access(p, F_OK) == 0)
        return p;
    rt_fail(e, dir, "no %s or %s.gz in this directory", name, name);
    free(p);
    return NULL;
}

static bool idx_split(RtSplit *s, RtData *d, const RtMeta *m, const char *dir,
                      const char *images, const char *labels, RtErr *e)
{
    char *ip = find(dir, images, e), *lp = ip ? find(dir, labels, e) : NULL;
    RtIdx x = {0}, y = {0};
    bool ok = ip && lp && rt_idx_read(ip, 3, &x, e) && rt_idx_read(lp, 1, &y, e);
    if (ok) {
        uint16_t *y16 = rt_alloc(((size_t)y.count + 1) * sizeof *y16);
        for (long i = 0; y16 && i < y.count; i++)
            y16[i] = y.data[i];
        *s = (RtSplit){.n = x.count, .c = 1, .h = (int)x.d[1], .w = (int)x.d[2],
                       .pixels = x.d[1] * x.d[2], .x8 = x.data, .y = y16, .own = x.data,
                       .own_y = y16};
        x.data = NULL;
        ok = y16 ? rt_data_fit(d, m, s, m->data_channels, m->data_size, ip, e)
                 : rt_fail(e, lp, "out of memory for %ld labels", y.count);
    }
    if (ok && x.count != y.count)
        ok = rt_fail(e, lp, "%ld labels for %ld images in %s", y.count, x.count, ip);
    ok = ok && rt_data_check_labels(s, d, lp, e);
    rt_idx_free(&x);
    rt_idx_free(&y);
    free(ip);
    free(lp);
    return ok;
}

/* Each loader reads the training split when want_train and the test
 * split unless it is held out of the training one. */
static bool idx_load(RtData *d, const RtMeta *m, const char *dir, bool want_train, RtErr *e)
{
    if (want_train && !idx_split(&d->train, d, m, dir, "train-images-idx3-ubyte",
                                 "train-labels-idx1-ubyte", e))
        return false;
    return m->data_split > 0 || idx_split(&d->test, d, m, dir, "t10k-images-idx3-ubyte",
                                      "t10k-labels-idx1-ubyte", e);
}

/* ---- .npy --------------------------------------------------------------- */

/* The first non-finite value of a float array, for the error naming it. */
static bool finite_floats(const RtSplit *s, const char *path, RtErr *e)
{
    for (long i = 0; i < s->n * s->pixels; i++)
        if (!isfinite(s->xf[i]))
            return rt_fail(e, path, "value %ld (in sample %ld) is not finite", i, i / s->pixels);
    return true;
}

static bool npy_images(RtSplit *s, const char *path, RtErr *e)
{
    RtNpyMap a;
    if (!rt_npy_map(path, &a, e))
        return false;
    bool u8 = !strcmp(a.descr, "|u1"), f32 = !strcmp(a.descr, "<f4");
    char shape[128];
    rt_shape_str(shape, sizeof shape, a.d, a.rank, false);
    if (!u8 && !f32) {
        rt_fail(e, path, "images of dtype '%s': expected uint8 ('|u1', read as x / 255) or "
                "float32 ('<f4')", a.descr);
        rt_npy_unmap(&a);
        return false;
    }
    /* a volume [N, C, D, H, W] is stored as images [N, C, D*H, W] */
    long rows = a.rank == 5 ? a.d[2] * a.d[3] : a.d[a.rank - 2];
    if (a.rank < 3 || a.rank > 5 || a.d[0] < 1 || a.d[a.rank - 1] < 1 || a.d[a.rank - 2] < 1 ||
        (a.rank >= 4 && (a.d[1] < 1 || a.d[1] > RT_MAX_CHANNELS)) || (a.rank == 5 && a.d[2] < 1) ||
        a.d[a.rank - 1] > 65536 || rows > 65536) {
        rt_npy_unmap(&a);
        return rt_fail(e, path, "images of shape %s: expected [N, C, H, W], [N, H, W] or volumes "
                       "[N, C, D, H, W] with N >= 1, C <= %d and H, W (D*H) <= 65536", shape,
                       RT_MAX_CHANNELS);
    }
    int c = a.rank >= 4 ? (int)a.d[1] : 1;
    *s = (RtSplit){.n = a.d[0], .c = c, .h = (int)rows, .w = (int)a.d[a.rank - 1],
                   .depth = a.rank == 5 ? (int)a.d[2] : 0, .map = a.map, .map_len = a.map_len};
    s->pixels = (long)s->c * s->h * s->w;
    if (u8)
        s->x8 = a.data;
    else
        s->xf = (const float *)(const void *)a.data;
    return f32 ? finite_floats(s, path, e) : true;
}

/* A labels array that holds a target per sample: [N, ...the target's
 * shape...] (a one-hot target's [N, K] too).  Class indices per position
 * are integers in [0, classes) or the loss's ignore_index; a tensor target
 * is float32 (finite) or uint8 (read as x / 255).  The array stays mapped. */
static bool npy_dense_targets(RtSplit *s, const RtData *d, const RtMeta *m, RtNpyMap *a,
                              const char *path, RtErr *e)
{
    const RtTensor *t = &m->target;
    bool cls = m->target_kind == RT_TARGET_CLASS;
    char want[128], got[128];
    long dims[RT_MAX_RANK + 1] = {s->n};
    memcpy(dims + 1, t->d, (size_t)t->rank * sizeof *dims);
    rt_shape_str(want, sizeof want, dims, t->rank + 1, false);
    rt_shape_str(got, sizeof got, a->d, a->rank, false);
    bool ok = a->rank == t->rank + 1 && a->d[0] == s->n;
    for (int i = 0; ok && i < t->rank; i++)
        ok = a->d[i + 1] == t->d[i];
    if (!ok)
        return rt_fail(e, path, "targets of shape %s: the model's target for %ld samples is %s",
                       got, s->n, want);
    bool f32 = !strcmp(a->descr, "<f4"), u8 = !strcmp(a->descr, "|u1");
    bool integer = a->descr[1] == 'u' || a->descr[1] == 'i';
    if (cls && !integer)
        return rt_fail(e, path, "targets of dtype '%s': class indices per position need an "
                       "integer dtype", a->descr);
    if (!cls && !f32 && !u8)
        return rt_fail(e, path, "targets of dtype '%s': expected float32 ('<f4') or uint8 ('|u1', "
                       "read as x / 255)", a->descr);
    long width = t->numel;
    for (long i = 0; i < s->n * width; i++) {
        if (cls) {
            long long v = rt_npy_int(a, i);
            if ((v < 0 || v >= d->classes) && !(m->has_ignore && v == m->ignore_index))
                return rt_fail(e, path, "class %lld at position %ld of sample %ld is out of range: "
                               "the model has %d classes%s", v, i % width, i / width, d->classes,
                               m->has_ignore ? " (and the ignore_index)" : "");
        } else if (f32) {
            float v;
            memcpy(&v, a->data + (size_t)i * 4, 4);
            if (!isfinite(v))
                return rt_fail(e, path, "target value %ld (in sample %ld) is not finite", i,
                               i / width);
        }
    }
    s->t = a->data;
    s->t_width = width;
    s->t_item = a->item;
    s->t_kind = cls ? a->descr[1] : f32 ? 'f' : 'b';
    s->t_map = a->map;
    s->t_map_len = a->map_len;
    return true;
}

/* Whether the model's target comes from a labels array of one value per
 * target element, rather than one class label per sample. */
static bool dense_target(const RtMeta *m, const RtNpyMap *a)
{
    if (!m->has_train || m->target_input)
        return false;
    if (m->target_kind == RT_TARGET_ONEHOT)
        return a->rank > 1; /* [N, K] targets, or [N] labels made one-hot */
    return m->target_kind == RT_TARGET_TENSOR || m->target.rank > 0;
}

static bool npy_labels(RtSplit *s, const RtData *d, const RtMeta *m, const char *path, RtErr *e)
{
    RtNpyMap a;
    if (!rt_npy_map(path, &a, e))
        return false;
    if (dense_target(m, &a)) {
        if (npy_dense_targets(s, d, m, &a, path, e))
            return true;
        rt_npy_unmap(&a);
        return false;
    }
    bool ok = true;
    if (a.descr[1] != 'u' && a.descr[1] != 'i')
        ok = rt_fail(e, path, "labels of dtype '%s': expected an integer dtype", a.descr);
    else if (a.rank != 1)
        ok = rt_fail(e, path, "labels of rank %d: expected [N]", a.rank);
    else if (a.d[0] != s->n)
        ok = rt_fail(e, path, "%ld labels for %ld images", a.d[0], s->n);
    uint16_t *y = ok ? rt_alloc(((size_t)s->n + 1) * sizeof *y) : NULL;
    if (ok && !y)
        ok = rt_fail(e, path, "out of memory for %ld labels", s->n);
    for (long i = 0; ok && i < s->n; i++) {
        long long v = rt_npy_int(&a, i);
        if (v < 0 || v >= d->classes)
            ok = rt_fail(e, path, "label %lld of sample %ld is out of range: the model has %d "
                         "classes", v, i, d->classes);
        else
            y[i] = (uint16_t)v;
    }
    rt_npy_unmap(&a);
    if (!ok) {
        free(y);
        return false;
    }
    s->y = s->own_y = y;
    return true;
}

static bool npy_split(RtSplit *s, RtData *d, const RtMeta *m, const char *images,
                      const char *labels, RtErr *e)
{
    if (!labels)
        return rt_fail(e, images, "no labels for these images: give labels=\"Y.npy\"");
    return npy_images(s, images, e) && rt_data_fit(d, m, s, 0, 0, images, e) &&
           npy_labels(s, d, m, labels, e);
}

static bool npy_load(RtData *d, const RtMeta *m, const char *path, bool want_train, RtErr *e)
{
    if (!m->data_test && m->data_split <= 0)
        return rt_fail(e, path, "npy data needs test arrays (test=, test_labels=) or split=");
    if (want_train && !npy_split(&d->train, d, m, path, m->data_labels, e))
        return false;
    return m->data_split > 0 || npy_split(&d->test, d, m, m->data_test, m->data_test_labels, e);
}

/* ---- held-out split, limits -------------------------------------------- */

/* Moves round(split * n) samples of train, at least 1 and leaving at
 * least 1, into test, by a permutation of the meta's seed. */
static bool hold_out(RtData *d, double split, uint64_t seed, const char *path, RtErr *e)
{
    RtSplit *tr = &d->train;
    long n = tr->n, nt = lround(split * (double)n);
    nt = nt < 1 ? 1 : nt;
    if (n < 2 || nt >= n)
        return rt_fail(e, path, "%ld samples cannot be split %g for testing: both parts need one",
                       n, split);
    if (n > (long)UINT32_MAX)
        return rt_fail(e, path, "too many samples to split");
    uint32_t *perm = rt_calloc((size_t)n, sizeof *perm);
    uint32_t *rest = rt_calloc((size_t)(n - nt), sizeof *rest);
    if (!perm || !rest) {
        free(perm);
        free(rest);
        return rt_fail(e, NULL, "out of memory for the split of %ld samples", n);
    }
    for (long i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    RtRng r;
    rt_rng_seed(&r, seed, RT_STREAM_SPLIT);
    rt_rng_shuffle(&r, perm, (uint32_t)n);
    memcpy(rest, perm + nt, (size_t)(n - nt) * sizeof *rest);
    d->test = *tr;
    d->test.own = d->test.own_y = d->test.map = d->test.t_map = NULL;
    d->test.n = nt;
    d->test.index = perm;
    tr->n = n - nt;
    tr->index = rest;
    return true;
}

bool rt_data_load(RtData *d, const RtMeta *m, const char *path, bool want_train, long limit,
                  long test_limit, bool skip_bad, RtErr *e)
{
    memset(d, 0, sizeof *d);
    const char *kind = m->data_kind ? m->data_kind : "idx";
    if (!path)
        path = m->data_path;
    if (!path)
        return rt_fail(e, NULL, "no data: the model names none, give --data PATH");
    if (m->ninput != 1)
        return rt_fail(e, NULL, "the model has %d inputs; %s data feeds exactly one", m->ninput,
                       kind);
    bool npy = !strcmp(kind, "npy");
    if (m->has_train && !m->target_input && !npy && m->target_kind == RT_TARGET_TENSOR)
        return rt_fail(e, NULL, "the model's target is a tensor; %s data provides class labels "
                       "(npy data can hold tensor targets; target=self makes the input the "
                       "target)", kind);
    if (m->has_train && !npy && m->target_kind == RT_TARGET_CLASS && m->target.rank > 0)
        return rt_fail(e, NULL, "the model's target is a class index per position (rank %d); %s "
                       "data provides one class label per image (npy labels can hold one per "
                       "position)", m->target.rank, kind);
    if (m->has_train && (m->crop_pad || m->flip) && !m->target_input &&
        (m->target_kind == RT_TARGET_TENSOR || m->target.rank > 1 ||
         (m->target_kind == RT_TARGET_CLASS && m->target.rank > 0)))
        return rt_fail(e, NULL, "augment crop and flip move the image but not its target; leave "
                       "them out for a model with a %s target", rt_target_name(m->target_kind));
    d->classes = rt_model_classes(m);
    if (d->classes < 1 || d->classes > RT_MAX_CLASSES)
        return rt_fail(e, NULL, "the model predicts %d values; class labels need 1 to %d "
                       "classes", d->classes, RT_MAX_CLASSES);
    /* A held-out test split comes out of the training split. */
    bool need_train = want_train || m->data_split > 0, ok;
    if (npy)
        ok = npy_load(d, m, path, need_train, e);
    else if (!strcmp(kind, "cifar10") || !strcmp(kind, "cifar100"))
        ok = rt_cifar_load(d, m, path, need_train, e);
    else if (!strcmp(kind, "images"))
        ok = (!need_train || rt_images_load(&d->train, d, m, path, skip_bad, e)) &&
             (m->data_split > 0 || rt_images_load(&d->test, d, m, m->data_test, skip_bad, e));
    else
        ok = idx_load(d, m, path, need_train, e);
    if (ok && m->data_split > 0)
        ok = hold_out(d, m->data_split, m->seed, path, e);
    if (!ok) {
        rt_data_free(d);
        return false;
    }
    if (limit > 0 && limit < d->train.n)
        d->train.n = limit;
    if (test_limit > 0 && test_limit < d->test.n)
        d->test.n = test_limit;
    if (!want_train)
        d->train.n = 0; /* eval: a held-out split's storage stays with train */
    return true;
}

void rt_split_free(RtSplit *s)
{
    free(s->own);
    free(s->own_y);
    free(s->index);
    rt_unmap_file(s->map, s->map_len);
    rt_unmap_file(s->t_map, s->t_map_len);
    memset(s, 0, sizeof *s);
}

void rt_data_free(RtData *d)
{
    /* A held-out test split shares the train split's storage: free the
     * test's index first, then the storage with the train split. */
    rt_split_free(&d->test);
    rt_split_free(&d->train);
    for (int i = 0; d->class_name && i < d->classes; i++)
        free(d->class_name[i]);
    free(d->class_name);
    memset(d, 0, sizeof *d);
}
