/* npy.c - NumPy .npy files: float32 arrays read and written (predict's
 * input and output), and arrays of bytes, floats and integers mapped with
 * mmap (data sets larger than memory).
 *
 * Read: magic "\x93NUMPY", version 1.0 (2-byte header length) or 2.0/3.0
 * (4-byte), then a Python dict literal with exactly the keys 'descr',
 * 'fortran_order' and 'shape', then the data.  Only '<f4' in C order is
 * accepted by rt_npy_read; rt_npy_map also takes '|u1', '|i1' and
 * little-endian integers of 2, 4 and 8 bytes.  The data must be exactly as
 * long as the shape says.  Write:
 * version 1.0, header padded with spaces to a multiple of 64 bytes and
 * ended by '\n', as numpy itself writes it; atomically.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static bool host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Converts n floats between little-endian bytes and host order (in place;
 * the conversion is its own inverse). */
static void swap_to_host(float *x, size_t n)
{
    if (host_is_le())
        return;
    unsigned char *b = (unsigned char *)x;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t = b[0];
        b[0] = b[3];
        b[3] = t;
        t = b[1];
        b[1] = b[2];
        b[2] = t;
    }
}

typedef struct {
    const char *s, *end;
} Cursor;

static void skip_sp(Cursor *c)
{
    while (c->s < c->end && *c->s == ' ')
        c->s++;
}

static bool eat(Cursor *c, char ch)
{
    skip_sp(c);
    if (c->s < c->end && *c->s == ch) {
        c->s++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes (all the header ever holds). */
static bool pystr(Cursor *c, char *out, size_t cap)
{
    skip_sp(c);
    if (c->s >= c->end || (*c->s != '\'' && *c->s != '"'))
        return false;
    char q = *c->s++;
    size_t n = 0;
    while (c->s < c->end && *c->s != q) {
        if (*c->s == '\\' || n + 1 >= cap)
            return false;
        out[n++] = *c->s++;
    }
    if (c->s >= c->end)
        return false;
    c->s++;
    out[n] = '\0';
    return true;
}

static bool header_fail(RtErr *e, const char *path, const char *what)
{
    return rt_fail(e, path, "malformed .npy header: %s", what);
}

/* The dict of the header into a's shape and descr (checked by the caller). */
static bool parse_header(const char *path, Cursor *c, RtArray *a, char descr[8], RtErr *e)
{
    bool have_descr = false, have_order = false, have_shape = false;
    if (!eat(c, '{'))
        return header_fail(e, path, "expected '{'");
    while (!eat(c, '}')) {
        char key[32], val[32];
        if (!pystr(c, key, sizeof key) || !eat(c, ':'))
            return header_fail(e, path, "expected 'key': value");
        skip_sp(c);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = true;
            if (!pystr(c, val, sizeof val))
                return header_fail(e, path, "'descr' is not a string");
            if (strlen(val) >= 8)
                return rt_fail(e, path, "dtype '%s' not supported", val);
            strcpy(descr, val);
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            have_order = true;
            if ((size_t)(c->end - c->s) >= 4 && memcmp(c->s, "True", 4) == 0)
                return rt_fail(e, path, "Fortran-order arrays are not supported: expected "
                               "C order (np.ascontiguousarray)");
            if ((size_t)(c->end - c->s) < 5 || memcmp(c->s, "False", 5) != 0)
                return header_fail(e, path, "'fortran_order' is not True or False");
            c->s += 5;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = true;
            if (!eat(c, '('))
                return header_fail(e, path, "'shape' is not a tuple");
            a->rank = 0;
            while (!eat(c, ')')) {
                skip_sp(c);
                if (a->rank == RT_MAX_RANK)
                    return rt_fail(e, path, "more than %d dimensions", RT_MAX_RANK);
                long v = 0;
                const char *start = c->s;
                while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
                    if (v > (1L << 40))
                        return header_fail(e, path, "dimension too large");
                    v = v * 10 + (*c->s++ - '0');
                }
                if (c->s == start)
                    return header_fail(e, path, "'shape' holds a non-integer");
                a->d[a->rank++] = v;
                if (!eat(c, ',')) {
                    if (!eat(c, ')'))
                        return header_fail(e, path, "expected ',' or ')' in 'shape'");
                    /* "(5)" is an int in parentheses, not a tuple. */
                    if (a->rank == 1)
                        return header_fail(e, path, "'shape' is not a tuple");
                    break;
                }
            }
        } else {
            return header_fail(e, path, "unexpected or duplicate key");
        }
        if (!eat(c, ',')) {
            if (!eat(c, '}'))
                return header_fail(e, path, "expected ',' or '}'");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return header_fail(e, path, !have_descr ? "no 'descr'"
                                    : !have_order ? "no 'fortran_order'" : "no 'shape'");
    while (c->s < c->end && (*c->s == ' ' || *c->s == '\n'))
        c->s++;
    if (c->s != c->end)
        return header_fail(e, path, "unexpected text after the dict");
    return true;
}

/* Magic, version and header of the file in buf; *data_at is where the
 * data starts.  The shape is in a, the dtype in descr. */
static bool read_header(const char *path, const unsigned char *buf, size_t len, RtArray *a,
                        char descr[8], size_t *data_at, RtErr *e)
{
    if (len < 8 || memcmp(buf, magic, 6) != 0)
        return rt_fail(e, path, "not a .npy file (bad magic)");
    size_t hstart, hlen;
    if (buf[6] == 1 && buf[7] == 0 && len >= 10) {
        hstart = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if ((buf[6] == 2 || buf[6] == 3) && buf[7] == 0 && len >= 12) {
        hstart = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
    } else if (buf[6] >= 1 && buf[6] <= 3 && buf[7] == 0) {
        return rt_fail(e, path, "truncated .npy header");
    } else {
        return rt_fail(e, path, "unsupported .npy version %u.%u (1.0, 2.0 and 3.0 are read)",
                       buf[6], buf[7]);
    }
    if (hlen > len - hstart)
        return rt_fail(e, path, "truncated .npy header (%zu bytes announced, %zu present)", hlen,
                       len - hstart);
    Cursor c = {(const char *)buf + hstart, (const char *)buf + hstart + hlen};
    descr[0] = '\0';
    if (!parse_header(path, &c, a, descr, e))
        return false;
    *data_at = hstart + hlen;
    return true;
}

/* The element count of a's shape, and that the data after the header
 * (have bytes) is exactly that many items of `item` bytes. */
static bool check_length(const char *path, RtArray *a, size_t item, size_t have, RtErr *e)
{
    size_t numel = 1, bytes;
    for (int i = 0; i < a->rank; i++)
        if (!rt_mul_ok(numel, (size_t)a->d[i], &numel))
            return rt_fail(e, path, "shape too large");
    if (!rt_mul_ok(numel, item, &bytes))
        return rt_fail(e, path, "shape too large");
    if (bytes > have) {
        char shape[128];
        rt_shape_str(shape, sizeof shape, a->d, a->rank, false);
        return rt_fail(e, path, "truncated data: shape %s needs %zu bytes, the file has %zu",
                       shape, bytes, have);
    }
    if (bytes < have)
        return rt_fail(e, path, "%zu bytes of unexpected data after the array", have - bytes);
    a->numel = (long)numel;
    return true;
}

bool rt_npy_read(const char *path, RtArray *a, RtErr *e)
{
    memset(a, 0, sizeof *a);
    unsigned char *buf;
    size_t len, at;
    char descr[8];
    if (!rt_read_file(path, &buf, &len, e))
        return false;
    bool ok = read_header(path, buf, len, a, descr, &at, e);
    if (ok && strcmp(descr, "<f4") != 0)
        ok = rt_fail(e, path, "dtype '%s' not supported: expected '<f4' (float32, little-endian)",
                     descr);
    ok = ok && check_length(path, a, 4, len - at, e);
    if (ok && !(a->data = rt_alloc((size_t)a->numel * 4)))
        ok = rt_fail(e, path, "out of memory");
    if (ok) {
        memcpy(a->data, buf + at, (size_t)a->numel * 4);
        swap_to_host(a->data, (size_t)a->numel);
    }
    free(buf);
    return ok;
}

/* The dtypes a mapped array may have, with their item sizes. */
static int item_size(const char *descr)
{
    static const struct { const char *d; int size; } types[] = {
        {"|u1", 1}, {"|i1", 1}, {"<u2", 2}, {"<i2", 2}, {"<u4", 4}, {"<i4", 4}, {"<u8", 8},
        {"<i8", 8}, {"<f4", 4},
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcmp(descr, types[i].d) == 0)
            return types[i].size;
    return 0;
}

bool rt_npy_map(const char *path, RtNpyMap *a, RtErr *e)
{
    memset(a, 0, sizeof *a);
    if (!host_is_le())
        return rt_fail(e, path, "mapping .npy files needs a little-endian host");
    if (!rt_map_file(path, &a->map, &a->map_len, e))
        return false;
    RtArray shape = {0};
    size_t at;
    bool ok = read_header(path, a->map, a->map_len, &shape, a->descr, &at, e);
    if (ok && !(a->item = item_size(a->descr)))
        ok = rt_fail(e, path, "dtype '%s' not supported: expected uint8 ('|u1'), float32 "
                     "('<f4') or a little-endian integer type", a->descr);
    ok = ok && check_length(path, &shape, (size_t)a->item, a->map_len - at, e);
    if (ok && at % (size_t)a->item)
        ok = rt_fail(e, path, "the data starts at byte %zu, not aligned to its %d-byte items",
                     at, a->item);
    if (!ok) {
        rt_npy_unmap(a);
        return false;
    }
    a->rank = shape.rank;
    memcpy(a->d, shape.d, sizeof a->d);
    a->numel = shape.numel;
    a->data = (const unsigned char *)a->map + at;
    return true;
}

void rt_npy_unmap(RtNpyMap *a)
{
    rt_unmap_file(a->map, a->map_len);
    memset(a, 0, sizeof *a);
}

long long rt_npy_int(const RtNpyMap *a, long i)
{
    const unsigned char *p = a->data + (size_t)i * (size_t)a->item;
    switch (a->descr[1] == 'i' ? -a->item : a->item) {
    case 1: return p[0];
    case -1: return (signed char)p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case -2: { int16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    case -4: { int32_t v; memcpy(&v, p, 4); return v; }
    case -8: { int64_t v; memcpy(&v, p, 8); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v > INT64_MAX ? -1 : (long long)v; }
    }
}

bool rt_npy_write(const char *path, const RtArray *a, RtErr *e)
{
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < a->rank; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%ld%s", a->d[i],
                      a->rank == 1 ? "," : i + 1 < a->rank ? ", " : "");
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    /* Pad so the data starts on a 64-byte boundary; the header ends in '\n'. */
    size_t total = ((10 + (size_t)k + 1 + 63) / 64) * 64;
    size_t hlen = total - 10;
    unsigned char head[10 + sizeof dict + 64];
    memcpy(head, magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)(hlen & 0xFF);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, (size_t)k);
    memset(head + 10 + k, ' ', hlen - (size_t)k - 1);
    head[total - 1] = '\n';

    RtAtomic at;
    if (!rt_atomic_open(&at, path, e))
        return false;
    rt_atomic_write(&at, head, total);
    if (host_is_le()) {
        rt_atomic_write(&at, a->data, (size_t)a->numel * 4);
    } else {
        for (long i = 0; i < a->numel; i++) {
            float v = a->data[i];
            swap_to_host(&v, 1);
            rt_atomic_write(&at, &v, 4);
        }
    }
    return rt_atomic_commit(&at, e);
}

void rt_array_free(RtArray *a)
{
    free(a->data);
    memset(a, 0, sizeof *a);
}
