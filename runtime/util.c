/* util.c - error messages, checked allocation and shape printing for the
 * runtime's modules. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

bool rt_fail(RtErr *e, const char *file, const char *fmt, ...)
{
    int k = 0;
    if (file)
        k = snprintf(e->msg, sizeof e->msg, "%s: ", file);
    if (k < 0 || (size_t)k >= sizeof e->msg)
        k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + k, sizeof e->msg - (size_t)k, fmt, ap);
    va_end(ap);
    return false;
}

bool rt_fail_wrap(RtErr *e, const char *file)
{
    char old[sizeof e->msg];
    memcpy(old, e->msg, sizeof old);
    return rt_fail(e, file, "%s", old);
}

long rt_alloc_fail_at;

/* The test hook: true for the allocation that is to fail. */
static bool should_fail(void)
{
    return rt_alloc_fail_at > 0 && --rt_alloc_fail_at == 0;
}

void *rt_alloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *rt_calloc(size_t n, size_t size)
{
    size_t total;
    if (!rt_mul_ok(n, size, &total) || should_fail())
        return NULL;
    return calloc(total ? total : 1, 1);
}

void *rt_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void *rt_alloc_aligned(size_t align, size_t n)
{
    size_t bytes = (n + align - 1) / align * align;
    if (bytes < n || should_fail())
        return NULL;
    return aligned_alloc(align, bytes ? bytes : align);
}

char *rt_strndup(const char *s, size_t n)
{
    char *d = rt_alloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *rt_strdup(const char *s)
{
    return rt_strndup(s, strlen(s));
}

bool rt_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > (size_t)-1 / a)
        return false;
    *out = a * b;
    return true;
}

void rt_shape_str(char *buf, size_t cap, const long *d, int rank, bool batched)
{
    size_t k = 0;
    int w = snprintf(buf, cap, batched ? "[N" : "[");
    k = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < rank && k < cap; i++) {
        w = snprintf(buf + k, cap - k, "%s%ld", (i || batched) ? "," : "", d[i]);
        k += w > 0 ? (size_t)w : 0;
    }
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

void rt_escape(const char *in, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t k = 0;
    while (*s && k + 5 < cap) {
        int n = utf8_len(s);
        if (n == 1 && *s >= 0x20 && *s != 0x7F) {
            out[k++] = (char)*s++;
        } else if (n > 1) {
            memcpy(out + k, s, (size_t)n);
            k += (size_t)n;
            s += n;
        } else {
            k += (size_t)snprintf(out + k, cap - k, "\\x%02x", *s++);
        }
    }
    out[k] = '\0';
}
