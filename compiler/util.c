/* util.c - allocation with a failure hook, arenas, text buffers. */
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

long netc_alloc_fail_at = 0;
long netc_alloc_count = 0;

_Noreturn void netc_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "netc: internal error: %s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}

static void *check(void *p, size_t n)
{
    if (!p && n) {
        fprintf(stderr, "netc: error: out of memory (%zu bytes)\n", n);
        exit(3);
    }
    return p;
}

static bool should_fail(void)
{
    return ++netc_alloc_count == netc_alloc_fail_at;
}

void *netc_alloc(size_t n)
{
    return check(should_fail() ? NULL : calloc(1, n ? n : 1), n ? n : 1);
}

void *netc_realloc(void *p, size_t n)
{
    return check(should_fail() ? NULL : realloc(p, n ? n : 1), n ? n : 1);
}

char *netc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(netc_alloc(n), s, n);
}

/* ---- arenas: a list of chunks, freed together ---- */

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} Chunk;

struct Arena {
    Chunk *head;
};

Arena *arena_new(void)
{
    return netc_alloc(sizeof(Arena));
}

void arena_free(Arena *a)
{
    if (!a)
        return;
    for (Chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc(Arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        Chunk *c = netc_alloc(sizeof(Chunk) + cap);
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *arena_strdup(Arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(arena_alloc(a, n), s, n);
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(a, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

/* ---- string -> int map: open addressing, linear probing ---- */

/* FNV-1a, then a multiply-shift mix: names differ mostly in their last
 * digits ("dense9", "dense10"), which alone would fill runs of
 * neighbouring slots and make linear probing slow. */
static unsigned long str_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211u;
    h ^= h >> 32;
    h *= 0x9E3779B97F4A7C15u;
    return (unsigned long)(h ^ (h >> 29));
}

int strmap_get(const StrMap *m, const char *key)
{
    if (!m->cap)
        return -1;
    for (unsigned long i = str_hash(key) & (unsigned long)(m->cap - 1);; i = (i + 1) & (unsigned long)(m->cap - 1)) {
        if (!m->key[i])
            return -1;
        if (!strcmp(m->key[i], key))
            return m->val[i];
    }
}

void strmap_put(Arena *a, StrMap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        StrMap bigger = {0};
        bigger.cap = m->cap ? 2 * m->cap : 16;
        bigger.key = arena_alloc(a, sizeof(char *) * (size_t)bigger.cap);
        bigger.val = arena_alloc(a, sizeof(int) * (size_t)bigger.cap);
        for (int i = 0; i < m->cap; i++)
            if (m->key[i])
                strmap_put(a, &bigger, m->key[i], m->val[i]);
        *m = bigger;
    }
    unsigned long i = str_hash(key) & (unsigned long)(m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], key))
        i = (i + 1) & (unsigned long)(m->cap - 1);
    if (!m->key[i]) {
        m->key[i] = key;
        m->n++;
    }
    m->val[i] = val;
}

/* ---- text buffers ---- */

void buf_vprintf(Buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        b->s = netc_realloc(b->s, cap);
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
    b->len += (size_t)n;
    va_end(ap2);
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_puts(Buf *b, const char *s)
{
    buf_printf(b, "%s", s);
}

void buf_free(Buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

void float_shortest(char *buf, size_t cap, float v)
{
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 1 << 20;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}
