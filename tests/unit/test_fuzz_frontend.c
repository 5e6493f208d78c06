/* Deterministic mutation fuzzing of the front end.
 *
 * Every .net under examples/, tests/errors/ and tests/ops/ is mutated a few
 * thousand times in total (bytes and tokens deleted, inserted, swapped and
 * duplicated, numbers inflated, the text truncated) with a fixed seed, and
 * each mutant goes through frontend_load_string.  The test asserts that the
 * front end returns, that any model it accepts passes graph_verify, and
 * that errors were reported exactly when it refused; the sanitizer build
 * turns any memory error or undefined behaviour into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netc.h"

enum { MUTANTS = 20000, MAX_FILES = 512 };

typedef struct {
    char *text[MAX_FILES];
    size_t len[MAX_FILES];
    int n;
} Corpus;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_dir(Corpus *c, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char *names[MAX_FILES];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_FILES) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".net"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    /* readdir order is the file system's; sort for a reproducible run. */
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        FILE *f = fopen(path, "rb");
        if (!f || c->n == MAX_FILES) {
            if (f)
                fclose(f);
            continue;
        }
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *s = malloc((size_t)len + 1);
        size_t got = fread(s, 1, (size_t)len, f);
        fclose(f);
        s[got] = 0;
        c->text[c->n] = s;
        c->len[c->n++] = got;
    }
}

/* xorshift64*: small, fast and the same everywhere. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

typedef struct {
    char *s;
    size_t len, cap;
} Text;

static void reserve(Text *t, size_t extra)
{
    if (t->len + extra + 1 > t->cap) {
        t->cap = (t->len + extra + 1) * 2;
        t->s = realloc(t->s, t->cap);
    }
}

static void insert(Text *t, size_t at, const char *src, size_t n)
{
    reserve(t, n);
    memmove(t->s + at + n, t->s + at, t->len - at);
    memcpy(t->s + at, src, n);
    t->len += n;
    t->s[t->len] = 0;
}

static void erase(Text *t, size_t at, size_t n)
{
    if (at + n > t->len)
        n = t->len - at;
    memmove(t->s + at, t->s + at + n, t->len - at - n);
    t->len -= n;
    t->s[t->len] = 0;
}

/* The extent of the token around position i: a word, a number, or one
 * punctuation character. */
static void token_at(const Text *t, size_t i, size_t *b, size_t *e)
{
    *b = *e = i;
    if (i >= t->len)
        return;
    char ch = t->s[i];
    bool word = ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!word) {
        *e = i + 1;
        return;
    }
    while (*b > 0) {
        char p = t->s[*b - 1];
        if (!(p == '_' || (p >= 'a' && p <= 'z') || (p >= 'A' && p <= 'Z') || (p >= '0' && p <= '9')))
            break;
        (*b)--;
    }
    while (*e < t->len) {
        char p = t->s[*e];
        if (!(p == '_' || (p >= 'a' && p <= 'z') || (p >= 'A' && p <= 'Z') || (p >= '0' && p <= '9')))
            break;
        (*e)++;
    }
}

static const char *const snippets[] = {
    "->", "=>", "(", ")", "[", "]", "{", "}", ",", ":", "=", "*", "/", "+", "-", "\"", "#", "\n", "\t",
    " ", "0", "1", "-1", "99999999999", "2147483647", "1e400", "0.5", "same", "valid", "in", "out",
    "conv", "dense(3)", "relu", "concat", "add", "block", "train", "network", "input", "output",
    "* 3", "* 10000", "x", "image", "logits", "\xc3\xa9", "\xff", "\x01", "((((((((", "[[[[",
    "kernel=", "pad=same", "groups=", "loss mse(x)", "batch 0", "(a, b) -> add", "block b(c) { in -> relu => out }",
};

static void mutate(Text *t)
{
    size_t at = below(t->len + 1);
    size_t b, e;
    switch (below(9)) {
    case 0: /* delete a few bytes */
        erase(t, at, 1 + below(4));
        break;
    case 1: { /* insert a random byte */
        char ch = (char)(1 + below(255));
        insert(t, at, &ch, 1);
        break;
    }
    case 2: { /* insert a snippet */
        const char *s = snippets[below(sizeof snippets / sizeof snippets[0])];
        insert(t, at, s, strlen(s));
        break;
    }
    case 3: /* delete a token */
        token_at(t, at, &b, &e);
        erase(t, b, e - b);
        break;
    case 4: { /* duplicate a token */
        token_at(t, at, &b, &e);
        char tok[256];
        size_t n = e - b < sizeof tok ? e - b : sizeof tok - 1;
        memcpy(tok, t->s + b, n);
        insert(t, e, tok, n);
        break;
    }
    case 5: { /* swap two tokens' first bytes */
        size_t other = below(t->len);
        if (at < t->len) {
            char tmp = t->s[at];
            t->s[at] = t->s[other];
            t->s[other] = tmp;
        }
        break;
    }
    case 6: { /* duplicate a range (a line, often) */
        size_t n = below(64);
        if (at + n > t->len)
            n = t->len - at;
        char *copy = malloc(n + 1);
        memcpy(copy, t->s + at, n);
        insert(t, below(t->len + 1), copy, n);
        free(copy);
        break;
    }
    case 7: /* truncate */
        if (below(4) == 0)
            erase(t, at, t->len - at);
        break;
    default: { /* replace a token by a snippet */
        token_at(t, at, &b, &e);
        erase(t, b, e - b);
        const char *s = snippets[below(sizeof snippets / sizeof snippets[0])];
        insert(t, b, s, strlen(s));
        break;
    }
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    Corpus c = {0};
    add_dir(&c, "examples");
    add_dir(&c, "tests/errors");
    add_dir(&c, "tests/ops");
    assert_true(c.n >= 10);
    FILE *null = fopen("/dev/null", "w");
    assert_non_null(null);
    int accepted = 0;
    for (int i = 0; i < MUTANTS; i++) {
        int k = (int)below((size_t)c.n);
        Text t = {0};
        reserve(&t, c.len[k]);
        memcpy(t.s, c.text[k], c.len[k] + 1);
        t.len = c.len[k];
        int nmut = 1 + (int)below(4);
        for (int j = 0; j < nmut; j++)
            mutate(&t);
        /* A NUL inside would only shorten the string; keep it honest. */
        t.len = strlen(t.s);

        Diag d;
        diag_init(&d, null);
        char name[32];
        snprintf(name, sizeof name, "fuzz%d.net", i);
        Model *m = frontend_load_string(name, t.s, &d);
        if (m) {
            accepted++;
            assert_int_equal(d.nerror, 0);
            if (!graph_verify(m->g, stderr)) {
                fprintf(stderr, "mutant %d verifies badly:\n%s\n", i, t.s);
                fail();
            }
            model_free(m);
        } else if (d.nerror == 0) {
            fprintf(stderr, "mutant %d refused without an error:\n%s\n", i, t.s);
            fail();
        }
        diag_free(&d);
        free(t.s);
    }
    /* Some mutants (in comments, say) stay valid; most do not. */
    fprintf(stderr, "fuzz: %d of %d mutants accepted\n", accepted, MUTANTS);
    assert_true(accepted > 0 && accepted < MUTANTS);
    fclose(null);
    for (int i = 0; i < c.n; i++)
        free(c.text[i]);
}

/* The originals: examples and op tests load, error tests do not. */
static void test_corpus_baseline(void **state)
{
    (void)state;
    Corpus ok = {0}, bad = {0};
    add_dir(&ok, "examples");
    add_dir(&ok, "tests/ops");
    add_dir(&bad, "tests/errors");
    FILE *null = fopen("/dev/null", "w");
    for (int i = 0; i < ok.n + bad.n; i++) {
        const char *src = i < ok.n ? ok.text[i] : bad.text[i - ok.n];
        Diag d;
        diag_init(&d, i < ok.n ? stderr : null);
        Model *m = frontend_load_string("corpus.net", src, &d);
        if (i < ok.n)
            assert_non_null(m);
        else
            assert_null(m);
        model_free(m);
        diag_free(&d);
    }
    fclose(null);
    for (int i = 0; i < ok.n; i++)
        free(ok.text[i]);
    for (int i = 0; i < bad.n; i++)
        free(bad.text[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_baseline),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
