/* data.c - the training and test sets of a model, from IDX files.
 *
 * The data kinds fashion_mnist, mnist and idx all read the four files of
 * the MNIST layout from one directory, each as NAME.gz if present, else
 * NAME.  Every file is checked against the model: image size against the
 * input shape ([1,H,W], [H,W] or [H*W]), labels against the number of
 * classes, and image and label counts against each other.  Images stay
 * bytes in memory (a quarter of the floats' size); batches convert them
 * to floats in [0, 1] as they are gathered (train.c).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

int rt_model_classes(const RtMeta *m)
{
    if (m->has_train && m->target_kind == RT_TARGET_ONEHOT)
        return (int)m->target.numel;
    return (int)m->output[0].numel;
}

static bool fits_input(const RtTensor *in, long rows, long cols)
{
    switch (in->rank) {
    case 3:
        return in->d[0] == 1 && in->d[1] == rows && in->d[2] == cols;
    case 2:
        return in->d[0] == rows && in->d[1] == cols;
    case 1:
        return in->d[0] == rows * cols;
    default:
        return false;
    }
}

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

static bool load_split(RtSplit *s, const RtMeta *m, const char *dir, const char *images,
                       const char *labels, int classes, long limit, RtErr *e)
{
    char *ip = find(dir, images, e), *lp = ip ? find(dir, labels, e) : NULL;
    RtIdx x = {0}, y = {0};
    bool ok = ip && lp && rt_idx_read(ip, 3, &x, e) && rt_idx_read(lp, 1, &y, e);
    if (ok && !fits_input(&m->input[0], x.d[1], x.d[2])) {
        char shape[128];
        rt_shape_str(shape, sizeof shape, m->input[0].d, m->input[0].rank, false);
        ok = rt_fail(e, ip, "images are %ldx%ld, the model's input '%s' is %s", x.d[1], x.d[2],
                     m->input[0].name, shape);
    }
    if (ok && x.count != y.count)
        ok = rt_fail(e, lp, "%ld labels for %ld images in %s", y.count, x.count, ip);
    for (long i = 0; ok && i < y.count; i++)
        if (y.data[i] >= classes)
            ok = rt_fail(e, lp, "label %d of sample %ld is out of range: the model has %d classes",
                         y.data[i], i, classes);
    if (ok) {
        s->n = limit > 0 && limit < x.count ? limit : x.count;
        s->pixels = x.d[1] * x.d[2];
        s->x = x.data;
        s->y = y.data;
    } else {
        rt_idx_free(&x);
        rt_idx_free(&y);
    }
    free(ip);
    free(lp);
    return ok;
}

bool rt_data_load(RtData *d, const RtMeta *m, const char *dir, bool want_train, long limit,
                  long test_limit, RtErr *e)
{
    memset(d, 0, sizeof *d);
    if (m->ninput != 1)
        return rt_fail(e, NULL, "the model has %d inputs; IDX data feeds exactly one", m->ninput);
    if (m->has_train && m->target_kind == RT_TARGET_TENSOR)
        return rt_fail(e, NULL, "the model's target is a tensor; IDX data provides class labels");
    if (m->has_train && m->target_kind == RT_TARGET_CLASS && m->target.rank > 0)
        return rt_fail(e, NULL, "the model's target is a class index per position (rank %d); IDX "
                       "data provides one class label per image", m->target.rank);
    d->classes = rt_model_classes(m);
    if (d->classes < 1 || d->classes > 256)
        return rt_fail(e, NULL, "the model predicts %d values; IDX labels need 1 to 256 classes",
                       d->classes);
    if (want_train && !load_split(&d->train, m, dir, "train-images-idx3-ubyte",
                                  "train-labels-idx1-ubyte", d->classes, limit, e))
        return false;
    if (!load_split(&d->test, m, dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                    d->classes, test_limit, e)) {
        rt_data_free(d);
        return false;
    }
    return true;
}

void rt_data_free(RtData *d)
{
    free(d->train.x);
    free(d->train.y);
    free(d->test.x);
    free(d->test.y);
    memset(d, 0, sizeof *d);
}
