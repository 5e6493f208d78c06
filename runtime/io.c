/* io.c - reading whole files and replacing files atomically.
 *
 * Reading: regular files only, of the size fstat reports (so every reader
 * is bounded by the file, and a header can be checked against the size),
 * read whole or mapped read-only (rt_map_file, for data sets).
 *
 * Writing: every file the runtime writes (checkpoints, predictions) goes
 * through RtAtomic: the bytes go to "DIR/.NAME.netc-tmp.PID", created with
 * O_EXCL in the target's directory (so rename cannot cross file systems),
 * which is flushed, fsync'ed and renamed over the target, then the
 * directory is fsync'ed.  A crash or a full disk therefore leaves either the old file or
 * the complete new one, never a half-written one.  Only regular files are
 * replaced: a symbolic link, a device or a directory at the target is an
 * error.  A run killed during a save leaves its temporary; the next save
 * to the same name removes temporaries whose process is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

long rt_test_fail_write;

/* What stands at a path, for messages. */
static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISCHR(m) ? "a character device"
           : S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a named pipe"
           : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symbolic link" : "not a regular file";
}

bool rt_write_file(const char *path, const void *buf, size_t n, RtErr *e)
{
    RtAtomic at;
    if (!rt_atomic_open(&at, path, e))
        return false;
    rt_atomic_write(&at, buf, n);
    return rt_atomic_commit(&at, e);
}

bool rt_map_file(const char *path, void **map, size_t *len, RtErr *e)
{
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return rt_fail(e, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return rt_fail(e, path, "cannot open: %s", strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode))
            return rt_fail(e, path, "is a directory, not a file");
        return rt_fail(e, path, "is %s, not a regular file", kind_of(st.st_mode));
    }
    if (st.st_size == 0) {
        close(fd);
        return rt_fail(e, path, "the file is empty");
    }
    if ((off_t)(size_t)st.st_size != st.st_size) {
        close(fd);
        return rt_fail(e, path, "too large to map (%lld bytes)", (long long)st.st_size);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED)
        return rt_fail(e, path, "cannot map: %s", strerror(err));
    *map = p;
    *len = (size_t)st.st_size;
    return true;
}

void rt_unmap_file(void *map, size_t len)
{
    if (map)
        munmap(map, len);
}

bool rt_read_file(const char *path, unsigned char **data, size_t *len, RtErr *e)
{
    /* O_NONBLOCK: opening a named pipe must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return rt_fail(e, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return rt_fail(e, path, "cannot open: %s", strerror(err));
    }
    /* Only a regular file has a size to check a header against; reading
     * /dev/zero or a pipe would go on until memory runs out. */
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (S_ISDIR(st.st_mode))
            return rt_fail(e, path, "is a directory, not a file");
        return rt_fail(e, path, "is %s, not a regular file", kind_of(st.st_mode));
    }
    size_t size = (size_t)st.st_size, n = 0;
    if ((off_t)size != st.st_size || size == (size_t)-1) {
        close(fd);
        return rt_fail(e, path, "too large to read (%lld bytes)", (long long)st.st_size);
    }
    unsigned char *buf = rt_alloc(size + 1);
    if (!buf) {
        close(fd);
        return rt_fail(e, path, "out of memory reading the file (%zu bytes)", size);
    }
    /* One byte more than the size, to see a file that grows meanwhile. */
    int err = 0;
    while (n < size + 1) {
        ssize_t k = read(fd, buf + n, size + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            err = errno;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    if (err || n != size) {
        free(buf);
        if (err)
            return rt_fail(e, path, "read error: %s", strerror(err));
        return rt_fail(e, path, "changed size while being read");
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return true;
}

#define TMP_TAG ".netc-tmp."

/* Removes DIR/.BASE.netc-tmp.PID files whose process is gone: what a run
 * killed during a save leaves.  Temporaries of live processes (another
 * run saving to the same name) stay. */
static void remove_stale(const char *dir, const char *base)
{
    DIR *d = opendir(*dir ? dir : ".");
    if (!d)
        return;
    size_t bl = strlen(base), tl = strlen(TMP_TAG);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) != 0 || strncmp(n + 1 + bl, TMP_TAG, tl) != 0)
            continue;
        const char *digits = n + 1 + bl + tl;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (*digits < '0' || *digits > '9' || *end || errno || pid <= 0 || pid > INT_MAX)
            continue;
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) != 0 && errno == ESRCH))
            continue;
        size_t len = strlen(dir) + strlen(n) + 1;
        char *p = rt_alloc(len);
        if (p) {
            snprintf(p, len, "%s%s", dir, n);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
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
    /* Only a regular file is replaced: renaming over a symbolic link would
     * replace the link (not the file it names) and renaming over a device
     * would turn /dev/full into a regular file. */
    struct stat st;
    bool exists = lstat(path, &st) == 0;
    if (!exists && errno != ENOENT)
        return rt_fail(e, path, "cannot write: %s", strerror(errno));
    if (exists && S_ISLNK(st.st_mode))
        return rt_fail(e, path, "is a symbolic link; refusing to replace it (give the path of "
                       "the file it points to)");
    if (exists && !S_ISREG(st.st_mode))
        return rt_fail(e, path, "is %s, not a regular file; refusing to replace it",
                       kind_of(st.st_mode));
    char *dir = rt_strndup(path, dirlen);
    size_t n = strlen(path) + strlen(TMP_TAG) + 24;
    a->tmp = rt_alloc(n);
    if (!dir || !a->tmp) {
        free(dir);
        free(a->tmp);
        a->tmp = NULL;
        return rt_fail(e, path, "out of memory");
    }

    remove_stale(dir, base);
    a->dir = dir; /* for the sync after the rename, which must not allocate */
    snprintf(a->tmp, n, "%.*s.%s" TMP_TAG "%ld", (int)dirlen, path, base, (long)getpid());
    /* O_EXCL: never write through something that appeared at the name. */
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  exists ? st.st_mode & 07777 : 0666);
    if (fd < 0) {
        rt_fail(e, path, "cannot create a temporary file beside it: %s", strerror(errno));
        free(a->tmp);
        a->tmp = NULL;
        rt_atomic_abort(a);
        return false;
    }
    /* A replaced file keeps its permissions (open applied the umask). */
    if (exists)
        fchmod(fd, st.st_mode & 07777);
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
    free(a->dir);
    a->f = NULL;
    a->tmp = NULL;
    a->dir = NULL;
}

/* Makes the rename itself durable.  File systems that cannot sync a
 * directory say EINVAL; that is no error. */
static bool sync_dir(const RtAtomic *a, RtErr *e)
{
    int fd = open(*a->dir ? a->dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rt_fail(e, a->path, "written, but its directory cannot be opened to sync it: %s",
                       strerror(errno));
    bool ok = fsync(fd) == 0 || errno == EINVAL;
    if (!ok)
        rt_fail(e, a->path, "written, but syncing its directory failed: %s", strerror(errno));
    close(fd);
    return ok;
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
    free(a->tmp);
    a->tmp = NULL;
    bool synced = sync_dir(a, e);
    rt_atomic_abort(a);
    return synced;
}
