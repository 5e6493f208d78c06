/* io.c - reading whole files and replacing files atomically.
 *
 * Every file the runtime writes (checkpoints, predictions) goes through
 * RtAtomic: the bytes go to "DIR/.NAME.XXXXXX" (same directory, so rename
 * cannot cross file systems), which is flushed, fsync'ed and renamed over
 * the target.  A crash or a full disk therefore leaves either the old file
 * or the complete new one, never a half-written one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

long rt_test_fail_write;

bool rt_read_file(const char *path, unsigned char **data, size_t *len, RtErr *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rt_fail(e, path, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = rt_alloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap > ((size_t)-1 - 1) / 2) {
            free(buf);
            buf = NULL;
            break;
        }
        cap *= 2;
        unsigned char *nb = rt_realloc(buf, cap + 1);
        if (!nb)
            free(buf);
        buf = nb;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf)
        return rt_fail(e, path, "out of memory reading the file");
    if (bad) {
        free(buf);
        return rt_fail(e, path, "read error");
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return true;
}

bool rt_atomic_open(RtAtomic *a, const char *path, RtErr *e)
{
    memset(a, 0, sizeof *a);
    a->path = path;
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
    const char *base = path + dirlen;
    if (!*base)
        return rt_fail(e, path, "is a directory name, not a file name");
    size_t n = strlen(path) + 16;
    a->tmp = rt_alloc(n);
    if (!a->tmp)
        return rt_fail(e, path, "out of memory");
    snprintf(a->tmp, n, "%.*s.%s.XXXXXX", (int)dirlen, path, base);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        rt_fail(e, path, "cannot create a temporary file beside it: %s", strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        return false;
    }
    /* mkstemp makes the file 0600; give it the mode fopen would have. */
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        rt_fail(e, path, "cannot write the temporary file: %s", strerror(errno));
        close(fd);
        rt_atomic_abort(a);
        return false;
    }
    return true;
}

bool rt_atomic_write(RtAtomic *a, const void *buf, size_t n)
{
    if (a->failed)
        return false;
    if (rt_test_fail_write > 0 && --rt_test_fail_write == 0) {
        a->err = ENOSPC;
        a->failed = true;
        return false;
    }
    if (n && fwrite(buf, 1, n, a->f) != n) {
        a->err = errno;
        a->failed = true;
    }
    return !a->failed;
}

void rt_atomic_abort(RtAtomic *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp) {
        unlink(a->tmp);
        free(a->tmp);
    }
    a->f = NULL;
    a->tmp = NULL;
}

/* Makes the rename itself durable; a failure here is not worth an error
 * since the data is already safe in the file. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? rt_strndup(path, (size_t)(slash - path) + 1) : rt_strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

bool rt_atomic_commit(RtAtomic *a, RtErr *e)
{
    int err = a->err;
    bool ok = !a->failed;
    if (ok && fflush(a->f) != 0) {
        ok = false;
        err = errno;
    }
    if (ok && fsync(fileno(a->f)) != 0) {
        ok = false;
        err = errno;
    }
    int rc = fclose(a->f);
    a->f = NULL;
    if (ok && rc != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        rt_fail(e, a->path, "write failed: %s", strerror(err ? err : EIO));
        rt_atomic_abort(a);
        return false;
    }
    if (rename(a->tmp, a->path) != 0) {
        rt_fail(e, a->path, "cannot replace the file: %s", strerror(errno));
        rt_atomic_abort(a);
        return false;
    }
    sync_dir(a->path);
    free(a->tmp);
    a->tmp = NULL;
    return true;
}
