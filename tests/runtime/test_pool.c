/* test_pool.c - the thread pool (runtime/pool.c, netc_pool.h): every
 * iteration exactly once, the documented partition, the caller doing the
 * share of a worker that is not running, nested and concurrent calls, the serial cases, worker start
 * failure, joining, and sleeping when idle.
 *
 * Also run under ThreadSanitizer by hand (the suite's sanitizer build is
 * ASan + UBSan, which cannot be combined with it):
 *   cc -std=c11 -g -O1 -fsanitize=thread -D_POSIX_C_SOURCE=200809L -Iruntime \
 *      tests/runtime/test_pool.c runtime/*.c -lcmocka -lz -lm -pthread -o /tmp/tp && /tmp/tp
 */
#include "rt_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "netc_pool.h"

/* ---- every iteration exactly once ---- */

/* Tasks run on workers, where a failing cmocka assertion cannot unwind:
 * they count what is wrong and the test checks the count. */
typedef struct {
    atomic_int *hits;
    int count;
    atomic_int bad;
} Hits;

static void hit(void *ctx, int lo, int hi)
{
    Hits *h = ctx;
    if (!(0 <= lo && lo < hi && hi <= h->count)) {
        atomic_fetch_add(&h->bad, 1);
        return;
    }
    for (int i = lo; i < hi; i++)
        atomic_fetch_add(&h->hits[i], 1);
}

static void run_hits(void *pool, int count)
{
    int n = count > 0 ? count : 1;
    Hits h = {rt_calloc((size_t)n, sizeof *h.hits), count};
    assert_non_null(h.hits);
    atomic_init(&h.bad, 0);
    for (int i = 0; i < n; i++)
        atomic_init(&h.hits[i], 0);
    netc_pool_run(pool, hit, &h, count);
    assert_int_equal(atomic_load(&h.bad), 0);
    for (int i = 0; i < count; i++)
        if (atomic_load(&h.hits[i]) != 1)
            fail_msg("count %d, %d threads: iteration %d ran %d times", count,
                     netc_pool_threads(pool), i, atomic_load(&h.hits[i]));
    if (count <= 0)
        assert_int_equal(atomic_load(&h.hits[0]), 0);
    free(h.hits);
}

static const int counts[] = {-3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 100, 1001, 65537};
static const int nthreads[] = {1, 2, 3, 4, 7, 8};
#define LEN(a) ((int)(sizeof(a) / sizeof *(a)))

static void every_iteration_once(void **state)
{
    (void)state;
    for (int t = 0; t < LEN(nthreads); t++) {
        NetcPool *p = netc_pool_new(nthreads[t]);
        assert_non_null(p);
        assert_int_equal(netc_pool_threads(p), nthreads[t]);
        for (int c = 0; c < LEN(counts); c++)
            run_hits(p, counts[c]);
        /* many calls back to back: the hand-over between jobs */
        for (int k = 0; k < 2000; k++)
            run_hits(p, k % 11);
        netc_pool_free(p);
    }
}

/* ---- the partition and who runs each chunk ---- */

enum { MAX_CHUNKS = 64 };

typedef struct {
    atomic_int n;
    struct { int lo, hi; pthread_t who; } rec[MAX_CHUNKS];
} Chunks;

static void record(void *ctx, int lo, int hi)
{
    Chunks *c = ctx;
    int k = atomic_fetch_add(&c->n, 1);
    if (k >= MAX_CHUNKS)
        return; /* the test sees n > MAX_CHUNKS */
    c->rec[k].lo = lo;
    c->rec[k].hi = hi;
    c->rec[k].who = pthread_self();
}

static void partition(void **state)
{
    (void)state;
    for (int t = 0; t < LEN(nthreads); t++) {
        int T = nthreads[t];
        NetcPool *p = netc_pool_new(T);
        assert_non_null(p);
        for (int ci = 0; ci < LEN(counts); ci++) {
            int count = counts[ci];
            Chunks c;
            atomic_init(&c.n, 0);
            netc_pool_run(p, record, &c, count);
            int n = atomic_load(&c.n);
            int want = count <= 0 ? 0 : T == 1 ? 1 : count < 2 * T ? count : 2 * T;
            assert_int_equal(netc_pool_chunks(T, count), want);
            assert_int_equal(n, want);
            /* Chunk k starts where chunk k-1 ended and is count / n long,
             * one longer for the first count % n. */
            int lo = 0;
            for (int k = 0; k < n; k++) {
                int j = 0;
                while (j < n && c.rec[j].lo != lo)
                    j++;
                if (j == n)
                    fail_msg("count %d, %d threads: no chunk starts at %d", count, T, lo);
                int len = count / n + (k < count % n);
                assert_int_equal(c.rec[j].hi - lo, len);
                lo = c.rec[j].hi;
            }
            assert_int_equal(lo, count > 0 ? count : 0);
        }
        netc_pool_free(p);
    }
}

/* A worker that is not running holds nothing up: the caller takes the
 * chunks the worker does not.  Here the worker, in whichever chunk it
 * takes first, waits until the caller has run the job's three others
 * (giving up after 5 s, which the test reports). */
typedef struct {
    pthread_t caller;
    atomic_int by_caller, by_worker, timed_out;
} Late;

static void late_task(void *ctx, int lo, int hi)
{
    (void)lo;
    (void)hi;
    Late *l = ctx;
    if (pthread_equal(l->caller, pthread_self())) {
        atomic_fetch_add(&l->by_caller, 1);
        return;
    }
    atomic_fetch_add(&l->by_worker, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&l->by_caller) < 3) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 5) {
            atomic_store(&l->timed_out, 1);
            return;
        }
    }
}

static void caller_takes_a_missing_workers_share(void **state)
{
    (void)state;
    NetcPool *p = netc_pool_new(2);
    assert_non_null(p);
    assert_int_equal(netc_pool_chunks(2, 4), 4);
    for (int i = 0; i < 50; i++) {
        Late l = {pthread_self()};
        atomic_init(&l.by_caller, 0);
        atomic_init(&l.by_worker, 0);
        atomic_init(&l.timed_out, 0);
        netc_pool_run(p, late_task, &l, 4);
        assert_int_equal(atomic_load(&l.timed_out), 0);
        assert_int_equal(atomic_load(&l.by_caller) + atomic_load(&l.by_worker), 4);
        assert_true(atomic_load(&l.by_worker) <= 1);
    }
    netc_pool_free(p);
}

/* ---- results do not depend on the thread count ---- */

typedef struct {
    const float *x;
    float *y;
} Map;

static void map(void *ctx, int lo, int hi)
{
    Map *m = ctx;
    for (int i = lo; i < hi; i++)
        m->y[i] = m->x[i] * m->x[i] * 0.1f + (float)i / 3.0f;
}

static void independent_iterations_are_deterministic(void **state)
{
    (void)state;
    enum { N = 10007 };
    float *x = rt_calloc(N, sizeof *x), *want = rt_calloc(N, sizeof *x),
          *got = rt_calloc(N, sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 97) / 7.0f;
    Map m = {x, want};
    netc_pool_run(NULL, map, &m, N);
    for (int T = 1; T <= 9; T++) {
        NetcPool *p = netc_pool_new(T);
        assert_non_null(p);
        memset(got, 0, N * sizeof *got);
        m.y = got;
        netc_pool_run(p, map, &m, N);
        assert_memory_equal(got, want, N * sizeof *got);
        netc_pool_free(p);
    }
    free(x);
    free(want);
    free(got);
}

/* ---- nested calls ---- */

typedef struct {
    NetcPool *inner_pool;
    atomic_int inner_hits, serial_calls, bad;
} Nest;

typedef struct {
    Nest *nest;
    pthread_t outer;
} Inner;

static void inner_task(void *ctx, int lo, int hi)
{
    Inner *in = ctx;
    /* a nested call is one serial call on the thread that made it */
    if (lo != 0 || hi != 5 || !pthread_equal(in->outer, pthread_self()))
        atomic_fetch_add(&in->nest->bad, 1);
    atomic_fetch_add(&in->nest->serial_calls, 1);
    atomic_fetch_add(&in->nest->inner_hits, hi - lo);
}

static void outer_task(void *ctx, int lo, int hi)
{
    Nest *n = ctx;
    for (int i = lo; i < hi; i++) {
        Inner in = {n, pthread_self()};
        netc_pool_run(n->inner_pool, inner_task, &in, 5);
    }
}

static void nested_calls_run_serially(void **state)
{
    (void)state;
    NetcPool *p = netc_pool_new(4), *q = netc_pool_new(3);
    assert_non_null(p);
    assert_non_null(q);
    /* the same pool, and another pool, from inside a task */
    NetcPool *inner[2] = {p, q};
    for (int k = 0; k < 2; k++)
        for (int rep = 0; rep < 50; rep++) {
            Nest n = {.inner_pool = inner[k]};
            atomic_init(&n.inner_hits, 0);
            atomic_init(&n.serial_calls, 0);
            atomic_init(&n.bad, 0);
            netc_pool_run(p, outer_task, &n, 37);
            assert_int_equal(atomic_load(&n.bad), 0);
            assert_int_equal(atomic_load(&n.serial_calls), 37);
            assert_int_equal(atomic_load(&n.inner_hits), 37 * 5);
        }
    /* the pool still works in parallel after them */
    Chunks c;
    atomic_init(&c.n, 0);
    netc_pool_run(p, record, &c, 8);
    assert_int_equal(atomic_load(&c.n), 8);
    netc_pool_free(q);
    netc_pool_free(p);
}

/* ---- callers on several application threads ---- */

enum { CALLERS = 4, CALLS = 500 };

typedef struct {
    NetcPool *pool;
    int id;
    int bad;
} Caller;

typedef struct {
    Caller *c;
    atomic_long sum;
} CallerJob;

static void add_ids(void *ctx, int lo, int hi)
{
    CallerJob *j = ctx;
    long s = 0;
    for (int i = lo; i < hi; i++)
        s += i + j->c->id;
    atomic_fetch_add(&j->sum, s);
}

static void *caller_main(void *arg)
{
    Caller *c = arg;
    for (int k = 0; k < CALLS; k++) {
        int count = 1 + (k * 7 + c->id) % 50;
        CallerJob j = {c};
        atomic_init(&j.sum, 0);
        netc_pool_run(c->pool, add_ids, &j, count);
        long want = (long)count * (count - 1) / 2 + (long)count * c->id;
        c->bad += atomic_load(&j.sum) != want;
    }
    return NULL;
}

static void concurrent_callers(void **state)
{
    (void)state;
    NetcPool *p = netc_pool_new(3);
    assert_non_null(p);
    pthread_t t[CALLERS];
    Caller c[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        c[i] = (Caller){p, 1000 * (i + 1), 0};
        assert_int_equal(pthread_create(&t[i], NULL, caller_main, &c[i]), 0);
    }
    for (int i = 0; i < CALLERS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(c[i].bad, 0);
    }
    netc_pool_free(p);
}

/* ---- the serial cases ---- */

static void serial_null_pool_and_one_thread(void **state)
{
    (void)state;
    assert_int_equal(netc_pool_threads(NULL), 1);
    NetcPool *one = netc_pool_new(1);
    assert_non_null(one);
    assert_int_equal(netc_pool_threads(one), 1);
    void *pools[2] = {NULL, one};
    for (int k = 0; k < 2; k++) {
        for (int ci = 0; ci < LEN(counts); ci++) {
            Chunks c;
            atomic_init(&c.n, 0);
            netc_pool_run(pools[k], record, &c, counts[ci]);
            if (counts[ci] <= 0) {
                assert_int_equal(atomic_load(&c.n), 0);
                continue;
            }
            /* one call over everything, on the caller */
            assert_int_equal(atomic_load(&c.n), 1);
            assert_int_equal(c.rec[0].lo, 0);
            assert_int_equal(c.rec[0].hi, counts[ci]);
            assert_true(pthread_equal(c.rec[0].who, pthread_self()));
        }
        run_hits(pools[k], 1001);
    }
    netc_pool_free(one);
    netc_pool_free(NULL);
}

/* ---- threads started, joined, and the failures ---- */

/* Threads of this process, from /proc; -1 where there is no /proc. */
static int thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    return n;
}

static void threads_started_and_joined(void **state)
{
    (void)state;
    int base = thread_count();
    NetcPool *one = netc_pool_new(1);
    assert_int_equal(thread_count(), base); /* 1: no thread started */
    NetcPool *p = netc_pool_new(5);
    assert_non_null(p);
    if (base > 0)
        assert_int_equal(thread_count(), base + 4);
    run_hits(p, 100);
    netc_pool_free(p);
    assert_int_equal(thread_count(), base); /* all joined */
    netc_pool_free(one);
}

static void failures(void **state)
{
    (void)state;
    errno = 0;
    assert_null(netc_pool_new(0));
    assert_int_equal(errno, EINVAL);
    assert_null(netc_pool_new(-2));
    int base = thread_count();
    /* the third worker fails to start: the first two are stopped and
     * joined, nothing leaks (the sanitizer build checks) */
    for (int k = 1; k <= 3; k++) {
        rt_test_fail_thread = k;
        errno = 0;
        assert_null(netc_pool_new(4));
        assert_int_equal(errno, EAGAIN);
        assert_int_equal(thread_count(), base);
    }
    rt_test_fail_thread = 0;
    NetcPool *p = netc_pool_new(4);
    assert_non_null(p);
    netc_pool_free(p);
}

/* ---- an idle pool sleeps ---- */

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
    struct timespec t = {0, ms * 1000000L};
    nanosleep(&t, NULL);
}

static void idle_pool_sleeps(void **state)
{
    (void)state;
    /* one pool that spins before it sleeps, one with more threads than
     * CPUs, which sleeps at once */
    int sizes[2] = {netc_cpu_count() > 1 ? 2 : 1, netc_cpu_count() + 2};
    for (int rep = 0; rep < 4; rep++) {
        NetcPool *p = netc_pool_new(sizes[rep % 2]);
        assert_non_null(p);
        run_hits(p, 1000);
        sleep_ms(10); /* past the spin: every worker and the caller asleep */
        double t0 = cpu_seconds();
        sleep_ms(100);
        double used = cpu_seconds() - t0;
        /* A spinning worker would use 0.1 s; sleeping ones none. */
        if (used > 0.03)
            fail_msg("the idle pool used %.3f s of CPU in 0.1 s", used);
        /* and a sleeping pool wakes for the next call */
        run_hits(p, 7);
        netc_pool_free(p);
    }
}

/* Calls spaced around the spin time, so that workers and the caller go to
 * sleep just as the other side hands over: wakeups must not be lost. */
static void calls_at_the_spin_boundary(void **state)
{
    (void)state;
    int sizes[2] = {2, netc_cpu_count() + 1};
    for (int k = 0; k < 2; k++) {
        NetcPool *p = netc_pool_new(sizes[k]);
        assert_non_null(p);
        for (int i = 0; i < 300; i++) {
            struct timespec t = {0, (i % 9) * 12000L};
            nanosleep(&t, NULL);
            run_hits(p, 1 + i % 5);
        }
        netc_pool_free(p);
    }
}

static void cpu_count(void **state)
{
    (void)state;
    int n = netc_cpu_count();
    assert_true(n >= 1);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0)
        assert_true(n <= online);
}

int main(void)
{
    /* a deadlock fails the test instead of hanging it */
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_iteration_once),
        cmocka_unit_test(partition),
        cmocka_unit_test(caller_takes_a_missing_workers_share),
        cmocka_unit_test(independent_iterations_are_deterministic),
        cmocka_unit_test(nested_calls_run_serially),
        cmocka_unit_test(concurrent_callers),
        cmocka_unit_test(serial_null_pool_and_one_thread),
        cmocka_unit_test(threads_started_and_joined),
        cmocka_unit_test(failures),
        cmocka_unit_test(idle_pool_sleeps),
        cmocka_unit_test(calls_at_the_spin_boundary),
        cmocka_unit_test(cpu_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
