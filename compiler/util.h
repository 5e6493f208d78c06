/* util.h - allocation, arenas, strings and invariants shared by the compiler.
 *
 * Every allocation goes through netc_alloc, which has a hook so tests can
 * fail the Nth allocation.  Memory with one lifetime (the AST, the graph,
 * a pass's scratch) comes from an Arena and is freed in one call.
 */
#ifndef NETC_UTIL_H
#define NETC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Always-on internal invariant: names the file and line, then aborts.
 * Only for compiler bugs; user errors go through Diag. */
#define NETC_ASSERT(c) \
    ((c) ? (void)0 : netc_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void netc_assert_fail(const char *expr, const char *file, int line);

/* malloc/realloc that report exhaustion and exit with status 3.  Tests may
 * set netc_alloc_fail_at to N to make the Nth allocation fail (0: never);
 * netc_alloc_count counts the allocations made so far. */
extern long netc_alloc_fail_at;
extern long netc_alloc_count;
void *netc_alloc(size_t n);
void *netc_realloc(void *p, size_t n);
char *netc_strdup(const char *s);

typedef struct Arena Arena;
Arena *arena_new(void);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n);      /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* String -> int map (open addressing, arena-backed).  Keys are not
 * copied: they must live as long as the map. */
typedef struct {
    const char **key;
    int *val;
    int cap, n;
} StrMap;

int strmap_get(const StrMap *m, const char *key); /* -1 when absent */
void strmap_put(Arena *a, StrMap *m, const char *key, int val);

/* Growable byte buffer for building text. */
typedef struct {
    char *s;
    size_t len, cap;
} Buf;
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(Buf *b, const char *fmt, va_list ap);
void buf_puts(Buf *b, const char *s);
void buf_free(Buf *b);

/* Source location: file name (owned elsewhere), 1-based line and column. */
typedef struct {
    const char *file;
    int line, col;
} SrcLoc;

/* The shortest decimal ("%.Ng", N <= 9) that reads back as exactly v, for
 * finite v; the printers add what their syntax needs (a suffix, a '.'). */
void float_shortest(char *buf, size_t cap, float v);

/* Damerau-free Levenshtein distance, for did-you-mean suggestions. */
int edit_distance(const char *a, const char *b);

#endif
