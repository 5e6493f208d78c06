/* cifar.c - the CIFAR-10 and CIFAR-100 binary formats.
 *
 * Needs: the directory of the "binary version" of either set.  Provides
 * rt_cifar_load.  A file is a sequence of records, each the label byte(s)
 * then a 3x32x32 image in channel-planar order (1024 red, 1024 green,
 * 1024 blue bytes, rows top to bottom), which is the model's [3, 32, 32]:
 *   cifar10   data_batch_1.bin .. data_batch_5.bin, test_batch.bin;
 *             records of 1 + 3072 bytes, labels 0..9
 *   cifar100  train.bin, test.bin; records of 2 + 3072 bytes: the coarse
 *             label (0..19), then the fine one (0..99); `label=coarse`
 *             picks the first (the default is fine)
 * A file that is empty or not a whole number of records, and a label
 * past the set's classes or the model's, is an error naming the file and
 * the record.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

enum { IMAGE_BYTES = 3 * 32 * 32 };

typedef struct {
    const char *name;          /* for messages */
    int label_bytes;           /* per record */
    int label_at;              /* which label byte is used */
    int classes;
} Format;

/* Appends the records of DIR/FILE to s (its own and own_y grown). */
static bool read_batch(RtSplit *s, const Format *f, const char *dir, const char *file, RtErr *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    unsigned char *buf;
    size_t len, rec = (size_t)f->label_bytes + IMAGE_BYTES;
    if (!rt_read_file(path, &buf, &len, e))
        return false;
    if (len == 0 || len % rec) {
        free(buf);
        return rt_fail(e, path, "%zu bytes: not a whole number of %zu-byte %s records (%d label "
                       "byte%s and a 3x32x32 image)", len, rec, f->name, f->label_bytes,
                       f->label_bytes == 1 ? "" : "s");
    }
    long k = (long)(len / rec);
    unsigned char *x = rt_realloc(s->own, (size_t)(s->n + k) * IMAGE_BYTES);
    if (x)
        s->own = x;
    uint16_t *y = x ? rt_realloc(s->own_y, (size_t)(s->n + k) * sizeof *y) : NULL;
    if (y)
        s->own_y = y;
    bool ok = x && y;
    if (!ok)
        rt_fail(e, path, "out of memory for %ld more images", k);
    for (long i = 0; ok && i < k; i++) {
        const unsigned char *r = buf + (size_t)i * rec;
        int label = r[f->label_at];
        if (label >= f->classes)
            ok = rt_fail(e, path, "record %ld: label %d is out of range: %s has %d classes", i,
                         label, f->name, f->classes);
        y[s->n + i] = (uint16_t)label;
        memcpy(x + (size_t)(s->n + i) * IMAGE_BYTES, r + f->label_bytes, IMAGE_BYTES);
    }
    free(buf);
    if (ok)
        s->n += k;
    return ok;
}

static bool load_split(RtSplit *s, RtData *d, const RtMeta *m, const Format *f, const char *dir,
                       const char *const *files, int nfiles, RtErr *e)
{
    *s = (RtSplit){.c = 3, .h = 32, .w = 32, .pixels = IMAGE_BYTES};
    for (int i = 0; i < nfiles; i++)
        if (!read_batch(s, f, dir, files[i], e))
            return false;
    s->x8 = s->own;
    s->y = s->own_y;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, files[0]);
    return rt_data_fit(d, m, s, 0, 0, path, e) && rt_data_check_labels(s, d, path, e);
}

bool rt_cifar_load(RtData *d, const RtMeta *m, const char *dir, bool want_train, RtErr *e)
{
    static const char *const train10[] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
    static const char *const test10[] = {"test_batch.bin"};
    static const char *const train100[] = {"train.bin"};
    static const char *const test100[] = {"test.bin"};
    bool ten = !strcmp(m->data_kind, "cifar10");
    Format f = ten ? (Format){"CIFAR-10", 1, 0, 10}
                   : m->data_coarse ? (Format){"CIFAR-100", 2, 0, 20}
                                    : (Format){"CIFAR-100", 2, 1, 100};
    if (d->classes != f.classes)
        return rt_fail(e, NULL, "the model predicts %d classes; %s%s has %d", d->classes, f.name,
                       ten ? "" : m->data_coarse ? " (coarse labels)" : " (fine labels)",
                       f.classes);
    if (want_train && !load_split(&d->train, d, m, &f, dir, ten ? train10 : train100,
                                  ten ? 5 : 1, e))
        return false;
    return m->data_split > 0 || load_split(&d->test, d, m, &f, dir, ten ? test10 : test100, 1, e);
}
