/* idx.c - IDX files (the MNIST family's format) of unsigned bytes, plain
 * or gzipped.
 *
 * Layout: magic 0x00 0x00 0x08 NDIM (0x08 = unsigned byte), NDIM big-endian
 * uint32 dimensions, then the bytes in row-major order.  The file is read
 * whole (rt_read_file: regular files only, bounded by their size); a file
 * starting with the gzip magic 1f 8b is inflated from memory with zlib's
 * inflate, which checks each member's CRC-32 and length.  The size the
 * header announces is checked before anything is allocated for it: a
 * plain file must be exactly header + data, and gzipped data cannot be
 * more than deflate's maximum ratio (1032:1) times the compressed size.
 * A gzip stream that stops short (a missing CRC trailer included) and
 * bytes after the last gzip member are errors; so is data after the
 * announced end.  zlib allocates through rt_calloc.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rt.h"

/* Sizes past this are not MNIST-like data sets but corrupt headers. */
#define MAX_BYTES (1L << 34)
/* Deflate cannot expand less than 1032:1 (RFC 1951's stored and fixed
 * blocks bound the ratio); gzip adds at least 18 bytes per member. */
#define MAX_RATIO 1032

typedef struct {
    z_stream z;
    bool done;                 /* the last member ended at the end of the file */
    const char *path;
} Gz;

static voidpf gz_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return rt_calloc(items, size);
}

static void gz_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

/* Inflates up to n bytes into out; returns the count (less than n only at
 * the end of the data), or -1 with e filled. */
static long gz_read(Gz *g, unsigned char *out, long n, RtErr *e)
{
    long got = 0;
    while (got < n && !g->done) {
        uInt want = n - got > (1L << 30) ? 1u << 30 : (uInt)(n - got);
        g->z.next_out = out + got;
        g->z.avail_out = want;
        int rc = inflate(&g->z, Z_NO_FLUSH);
        got += (long)(want - g->z.avail_out);
        if (rc == Z_STREAM_END) {
            if (g->z.avail_in == 0) {
                g->done = true;
            } else if (g->z.avail_in >= 2 && g->z.next_in[0] == 0x1f && g->z.next_in[1] == 0x8b) {
                inflateReset(&g->z); /* concatenated members are one gzip file */
            } else {
                rt_fail(e, g->path, "%u bytes after the end of the gzip data that are not gzip",
                        g->z.avail_in);
                return -1;
            }
        } else if (rc == Z_BUF_ERROR || (rc == Z_OK && g->z.avail_in == 0 && g->z.avail_out)) {
            rt_fail(e, g->path, "truncated gzip data: the stream ends before its end marker and "
                    "CRC trailer");
            return -1;
        } else if (rc == Z_MEM_ERROR) {
            rt_fail(e, g->path, "out of memory");
            return -1;
        } else if (rc != Z_OK) {
            rt_fail(e, g->path, "corrupt gzip data: %s", g->z.msg ? g->z.msg : "invalid stream");
            return -1;
        }
    }
    return got;
}

/* The dimensions from the header, the product checked against MAX_BYTES. */
static bool dims(const char *path, const unsigned char *head, int ndim, RtIdx *x, long *total,
                 RtErr *e)
{
    if (head[0] || head[1] || head[2] != 0x08 || head[3] != ndim) {
        unsigned long m = (unsigned long)head[0] << 24 | (unsigned long)head[1] << 16 |
                          (unsigned long)head[2] << 8 | head[3];
        return rt_fail(e, path, "not an IDX %s file: magic 0x%08lx, expected 0x%08x",
                       ndim == 1 ? "label" : "image", m, 0x800u | (unsigned)ndim);
    }
    x->ndim = ndim;
    *total = 1;
    for (int i = 0; i < ndim; i++) {
        const unsigned char *d = head + 4 + 4 * i;
        x->d[i] = (long)((unsigned long)d[0] << 24 | (unsigned long)d[1] << 16 |
                         (unsigned long)d[2] << 8 | d[3]);
        if (x->d[i] && *total > MAX_BYTES / x->d[i])
            return rt_fail(e, path, "implausible IDX dimensions (more than %ld bytes)", MAX_BYTES);
        *total *= x->d[i];
    }
    x->count = x->d[0];
    return true;
}

static bool read_plain(const char *path, unsigned char *file, size_t len, int ndim, RtIdx *x,
                       RtErr *e)
{
    long hbytes = 4 + 4L * ndim, total;
    if (len < 4)
        return rt_fail(e, path, "not an IDX %s file: %zu bytes, too short for the magic number",
                       ndim == 1 ? "label" : "image", len);
    unsigned char head[4 + 4 * 3] = {0};
    memcpy(head, file, len < (size_t)hbytes ? len : (size_t)hbytes);
    if (!dims(path, head, ndim, x, &total, e))
        return false;
    if (len < (size_t)hbytes)
        return rt_fail(e, path, "truncated IDX header");
    size_t have = len - (size_t)hbytes;
    if (have < (size_t)total)
        return rt_fail(e, path, "truncated: the header announces %ld bytes of data, the file has "
                       "%zu", total, have);
    if (have > (size_t)total)
        return rt_fail(e, path, "unexpected data after the %ld bytes the header announces", total);
    memmove(file, file + hbytes, (size_t)total);
    x->data = file;
    return true;
}

static bool read_gz(const char *path, const unsigned char *file, size_t len, int ndim, RtIdx *x,
                    RtErr *e)
{
    Gz g = {.path = path};
    g.z.zalloc = gz_alloc;
    g.z.zfree = gz_free;
    g.z.next_in = (unsigned char *)file;
    if (len > UINT_MAX)
        return rt_fail(e, path, "too large for a gzipped IDX file (%zu bytes)", len);
    g.z.avail_in = (uInt)len;
    int rc = inflateInit2(&g.z, 16 + MAX_WBITS); /* gzip only */
    if (rc != Z_OK)
        return rt_fail(e, path, rc == Z_MEM_ERROR ? "out of memory" : "cannot start zlib");
    bool ok = false;
    unsigned char head[4 + 4 * 3] = {0}, extra;
    long hbytes = 4 + 4L * ndim, total = 0, got = gz_read(&g, head, hbytes, e);
    if (got < 0)
        goto out;
    if (got < 4) {
        rt_fail(e, path, "not an IDX %s file: %ld bytes, too short for the magic number",
                ndim == 1 ? "label" : "image", got);
        goto out;
    }
    if (!dims(path, head, ndim, x, &total, e))
        goto out;
    if (got < hbytes) {
        rt_fail(e, path, "truncated IDX header");
        goto out;
    }
    if ((double)total > (double)len * MAX_RATIO) {
        rt_fail(e, path, "truncated: the header announces %ld bytes of data, more than %zu "
                "gzipped bytes can hold", total, len);
        goto out;
    }
    x->data = rt_alloc((size_t)total);
    if (!x->data) {
        rt_fail(e, path, "out of memory for %ld bytes of data", total);
        goto out;
    }
    got = gz_read(&g, x->data, total, e);
    if (got < 0)
        goto out;
    if (got < total) {
        rt_fail(e, path, "truncated: the header announces %ld bytes of data, the file has %ld",
                total, got);
        goto out;
    }
    got = gz_read(&g, &extra, 1, e);
    if (got < 0)
        goto out;
    if (got > 0) {
        rt_fail(e, path, "unexpected data after the %ld bytes the header announces", total);
        goto out;
    }
    ok = true;
out:
    inflateEnd(&g.z);
    return ok;
}

bool rt_idx_read(const char *path, int ndim, RtIdx *x, RtErr *e)
{
    memset(x, 0, sizeof *x);
    unsigned char *file;
    size_t len;
    if (!rt_read_file(path, &file, &len, e))
        return false;
    bool ok;
    if (len >= 2 && file[0] == 0x1f && file[1] == 0x8b) {
        ok = read_gz(path, file, len, ndim, x, e);
        free(file);
    } else {
        ok = read_plain(path, file, len, ndim, x, e);
        if (!ok)
            free(file);
    }
    if (!ok)
        rt_idx_free(x);
    return ok;
}

void rt_idx_free(RtIdx *x)
{
    free(x->data);
    memset(x, 0, sizeof *x);
}
