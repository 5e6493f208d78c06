/* npy.c - NumPy .npy files of float32, the format of predict's input and
 * output.
 *
 * Read: magic "\x93NUMPY", version 1.0 (2-byte header length) or 2.0/3.0
 * (4-byte), then a Python dict literal with exactly the keys 'descr',
 * 'fortran_order' and 'shape', then the data.  Only '<f4' in C order is
 * accepted; the data must be exactly as long as the shape says.  Write:
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

static bool parse_header(const char *path, Cursor *c, RtArray *a, RtErr *e)
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
            if (strcmp(val, "<f4") != 0)
                return rt_fail(e, path, "dtype '%s' not supported: expected '<f4' (float32, "
                               "little-endian)", val);
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

bool rt_npy_read(const char *path, RtArray *a, RtErr *e)
{
    memset(a, 0, sizeof *a);
    unsigned char *buf;
    size_t len;
    if (!rt_read_file(path, &buf, &len, e))
        return false;
    bool ok = false;
    if (len < 8 || memcmp(buf, magic, 6) != 0) {
        rt_fail(e, path, "not a .npy file (bad magic)");
        goto out;
    }
    size_t hstart, hlen;
    if (buf[6] == 1 && buf[7] == 0 && len >= 10) {
        hstart = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if ((buf[6] == 2 || buf[6] == 3) && buf[7] == 0 && len >= 12) {
        hstart = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
    } else if (buf[6] >= 1 && buf[6] <= 3 && buf[7] == 0) {
        rt_fail(e, path, "truncated .npy header");
        goto out;
    } else {
        rt_fail(e, path, "unsupported .npy version %u.%u (1.0, 2.0 and 3.0 are read)",
                buf[6], buf[7]);
        goto out;
    }
    if (hlen > len - hstart) {
        rt_fail(e, path, "truncated .npy header (%zu bytes announced, %zu present)", hlen,
                len - hstart);
        goto out;
    }
    Cursor c = {(const char *)buf + hstart, (const char *)buf + hstart + hlen};
    if (!parse_header(path, &c, a, e))
        goto out;
    size_t numel = 1, bytes;
    for (int i = 0; i < a->rank; i++)
        if (!rt_mul_ok(numel, (size_t)a->d[i], &numel)) {
            rt_fail(e, path, "shape too large");
            goto out;
        }
    size_t have = len - hstart - hlen;
    if (!rt_mul_ok(numel, 4, &bytes)) {
        rt_fail(e, path, "shape too large");
        goto out;
    }
    if (bytes > have) {
        char shape[128];
        rt_shape_str(shape, sizeof shape, a->d, a->rank, false);
        rt_fail(e, path, "truncated data: shape %s needs %zu bytes, the file has %zu",
                shape, bytes, have);
        goto out;
    }
    if (bytes < have) {
        rt_fail(e, path, "%zu bytes of unexpected data after the array", have - bytes);
        goto out;
    }
    a->numel = (long)numel;
    a->data = rt_alloc(bytes);
    if (!a->data) {
        rt_fail(e, path, "out of memory");
        goto out;
    }
    memcpy(a->data, buf + hstart + hlen, bytes);
    swap_to_host(a->data, numel);
    ok = true;
out:
    free(buf);
    return ok;
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
