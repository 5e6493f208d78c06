/* idx.c - IDX files (the MNIST family's format) of unsigned bytes.
 *
 * Layout: magic 0x00 0x00 0x08 NDIM (0x08 = unsigned byte), NDIM big-endian
 * uint32 dimensions, then the bytes in row-major order.  Files are read
 * through zlib's gzopen, which reads gzipped and plain files alike.  The
 * buffer grows as data arrives rather than trusting the header's size up
 * front, so a corrupt header cannot ask for gigabytes before the
 * truncation is noticed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rt.h"

/* Sizes past this are not MNIST-like data sets but corrupt headers. */
#define MAX_BYTES (1L << 34)

static bool gz_fail(gzFile g, const char *path, const char *what, RtErr *e)
{
    int code;
    const char *msg = gzerror(g, &code);
    if (code == Z_ERRNO)
        return rt_fail(e, path, "%s: %s", what, strerror(errno));
    return rt_fail(e, path, "%s: %s", what, code ? msg : "unexpected end of file");
}

/* Reads up to n bytes; returns the count, or -1 on a zlib error. */
static long read_all(gzFile g, unsigned char *p, long n)
{
    long got = 0;
    while (got < n) {
        long want = n - got > (1L << 30) ? 1L << 30 : n - got;
        int k = gzread(g, p + got, (unsigned)want);
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        got += k;
    }
    return got;
}

bool rt_idx_read(const char *path, int ndim, RtIdx *x, RtErr *e)
{
    memset(x, 0, sizeof *x);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return rt_fail(e, path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    bool ok = false;
    unsigned char head[4 + 4 * 3];
    long hbytes = 4 + 4L * ndim;
    long got = read_all(g, head, hbytes);
    if (got < 0) {
        gz_fail(g, path, "cannot read", e);
        goto out;
    }
    if (got < 4 || head[0] || head[1] || head[2] != 0x08 || head[3] != ndim) {
        unsigned long m = 0;
        for (long i = 0; i < 4 && i < got; i++)
            m = m << 8 | head[i];
        rt_fail(e, path, "not an IDX %s file: magic 0x%08lx, expected 0x%08x", ndim == 1 ? "label"
                : "image", got < 4 ? 0ul : m, 0x800u | (unsigned)ndim);
        goto out;
    }
    if (got < hbytes) {
        rt_fail(e, path, "truncated IDX header");
        goto out;
    }
    x->ndim = ndim;
    long total = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *d = head + 4 + 4 * i;
        x->d[i] = (long)((unsigned long)d[0] << 24 | (unsigned long)d[1] << 16 |
                         (unsigned long)d[2] << 8 | d[3]);
        if (x->d[i] && total > MAX_BYTES / x->d[i]) {
            rt_fail(e, path, "implausible IDX dimensions (more than %ld bytes)", MAX_BYTES);
            goto out;
        }
        total *= x->d[i];
    }
    x->count = x->d[0];
    long cap = total < (1L << 24) ? total : 1L << 24, have = 0;
    x->data = rt_alloc((size_t)cap);
    while (x->data) {
        long k = read_all(g, x->data + have, cap - have);
        if (k < 0) {
            gz_fail(g, path, "cannot read", e);
            goto out;
        }
        have += k;
        if (have < cap || cap == total)
            break;
        cap = cap > total / 2 ? total : cap * 2;
        unsigned char *nd = rt_realloc(x->data, (size_t)cap);
        if (!nd)
            free(x->data);
        x->data = nd;
    }
    if (!x->data) {
        rt_fail(e, path, "out of memory");
        goto out;
    }
    if (have < total) {
        rt_fail(e, path, "truncated: the header announces %ld bytes of data, the file has %ld",
                total, have);
        goto out;
    }
    unsigned char extra;
    long more = read_all(g, &extra, 1);
    if (more < 0) {
        gz_fail(g, path, "cannot read", e);
        goto out;
    }
    if (more > 0) {
        rt_fail(e, path, "unexpected data after the %ld bytes the header announces", total);
        goto out;
    }
    ok = true;
out:
    gzclose(g);
    if (!ok)
        rt_idx_free(x);
    return ok;
}

void rt_idx_free(RtIdx *x)
{
    free(x->data);
    memset(x, 0, sizeof *x);
}
