/* rt_test.h - helpers shared by the runtime's tests: temporary
 * directories, small files, and running a main-like function with its
 * stdout and stderr captured.  Header-only (static functions) because each
 * test is one source file. */
#ifndef NETC_RT_TEST_H
#define NETC_RT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

/* A fresh directory under $TMPDIR (or /tmp); the caller frees it with
 * tmpdir_remove. */
static inline char *tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char buf[512];
    snprintf(buf, sizeof buf, "%s/netc-rt-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(buf);
    assert_non_null(d);
    return rt_strdup(d);
}

/* Removes the directory's files (it holds no subdirectories) and it. */
static inline void tmpdir_remove(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

static inline int tmpdir_count(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

/* DIR/NAME in a static ring of buffers, so a few can be alive at once. */
static inline const char *path_in(const char *dir, const char *name)
{
    static char ring[8][1024];
    static int next;
    char *p = ring[next++ % 8];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

static inline void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static inline unsigned char *read_bytes(const char *path, size_t *n)
{
    unsigned char *data;
    RtErr e;
    if (!rt_read_file(path, &data, n, &e))
        fail_msg("%s", e.msg);
    return data;
}

/* Output of one captured run; freed by captured_free. */
typedef struct {
    int status;
    char *out, *err;
} Captured;

static inline char *slurp_fd(int fd)
{
    lseek(fd, 0, SEEK_SET);
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    ssize_t k;
    while ((k = read(fd, s + n, cap - n - 1)) > 0) {
        n += (size_t)k;
        if (cap - n < 2)
            s = realloc(s, cap *= 2);
    }
    s[n] = '\0';
    close(fd);
    return s;
}

/* Runs fn(argc, argv) with stdout and stderr sent to temporary files, or
 * stdout to the file `out` (such as /dev/full) when it is not NULL. */
static inline Captured run_captured_to(int (*fn)(int, char **), const char *const *args,
                                       const char *out)
{
    char *argv[64];
    int argc = 0;
    while (args[argc] && argc < 63) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    char o[] = "/tmp/netc-rt-out-XXXXXX", e[] = "/tmp/netc-rt-err-XXXXXX";
    int fo = mkstemp(o), fe = mkstemp(e);
    assert_true(fo >= 0 && fe >= 0);
    unlink(o);
    unlink(e);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fout = out ? open(out, O_WRONLY) : -1;
    assert_true(!out || fout >= 0);
    dup2(out ? fout : fo, 1);
    if (out)
        close(fout);
    dup2(fe, 2);
    Captured c;
    c.status = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    c.out = slurp_fd(fo);
    c.err = slurp_fd(fe);
    return c;
}

static inline Captured run_captured(int (*fn)(int, char **), const char *const *args)
{
    return run_captured_to(fn, args, NULL);
}

static inline void captured_free(Captured *c)
{
    free(c->out);
    free(c->err);
}

/* Fails the test with the captured output when the status differs. */
static inline void expect_status(const Captured *c, int status)
{
    if (c->status != status)
        fail_msg("exit status %d, expected %d\nstdout:\n%s\nstderr:\n%s", c->status, status, c->out,
                 c->err);
}

static inline void expect_contains(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("expected to find \"%s\" in:\n%s", needle, text);
}

/* Writes an IDX file of unsigned bytes with dims d[0..ndim), gzipped when
 * the name ends in .gz (through zlib, as real data sets are). */
#include <zlib.h>
static inline void write_idx(const char *path, int ndim, const long *d, const unsigned char *data)
{
    unsigned char head[16] = {0, 0, 8, (unsigned char)ndim};
    long total = 1;
    for (int i = 0; i < ndim; i++) {
        head[4 + 4 * i] = (unsigned char)(d[i] >> 24);
        head[5 + 4 * i] = (unsigned char)(d[i] >> 16);
        head[6 + 4 * i] = (unsigned char)(d[i] >> 8);
        head[7 + 4 * i] = (unsigned char)d[i];
        total *= d[i];
    }
    size_t hl = 4 + 4 * (size_t)ndim, n = strlen(path);
    if (n > 3 && !strcmp(path + n - 3, ".gz")) {
        gzFile g = gzopen(path, "wb");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, head, (unsigned)hl), (int)hl);
        if (total)
            assert_int_equal(gzwrite(g, data, (unsigned)total), (int)total);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(head, 1, hl, f);
        fwrite(data, 1, (size_t)total, f);
        fclose(f);
    }
}


/* Fails with the runtime's message when a call that should succeed fails. */
#define assert_ok(call, err)                                                                       \
    do {                                                                                           \
        if (!(call))                                                                               \
            fail_msg("%s", (err).msg);                                                             \
    } while (0)

#endif
