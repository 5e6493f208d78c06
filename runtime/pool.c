/* pool.c - the thread pool behind netc_pool_run (netc_pool.h).
 *
 * One job at a time: the caller publishes (task, ctx, count, chunks), bumps
 * the generation counter `gen`, runs chunk 0 itself and waits until every
 * worker has acknowledged the job through `pending`.  Every worker
 * acknowledges every job, even one with fewer chunks than threads, so no
 * worker can still be reading the job when the next one is written.
 *
 * Waiting, on both sides, is a bounded spin on the atomic (SPIN_NS), then
 * a sleep on a condition variable, so back-to-back calls of a training
 * step stay cheap and an idle program uses no CPU.  A sleeper announces
 * itself (`sleepers`, `caller_asleep`) before it checks the condition for
 * the last time, and the other side reads that announcement after it
 * changed the condition; both are sequentially consistent, so one of the
 * two always sees the other and a wakeup is never lost, without taking the
 * mutex on the hot path.
 *
 * Nesting: a thread that is running a task (a worker, or the caller during
 * chunk 0) is marked; netc_pool_run from a marked thread runs serially.
 * Callers from different threads take turns on `call_lock`.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "netc_pool.h"
#include "rt.h"

/* How long a waiting thread spins before it sleeps.  A training step's
 * calls come a few microseconds apart, well inside this; an idle pool is
 * asleep after it.  A pool with more threads than CPUs does not spin
 * (as libgomp throttles): a spinning thread would hold the CPU that the
 * thread it waits for needs. */
#define SPIN_NS 50000

long rt_test_fail_thread;

typedef struct {
    NetcPool *pool;
    int index; /* 1 .. threads - 1: the chunk this worker runs */
    pthread_t tid;
} Worker;

struct NetcPool {
    int threads;
    int started; /* workers running, for cleanup after a failed start */
    long long spin_ns;
    Worker *worker;
    pthread_mutex_t call_lock; /* one caller at a time */
    pthread_mutex_t lock;      /* guards the two sleeps below */
    pthread_cond_t work;       /* workers sleep here for a new gen */
    pthread_cond_t done;       /* the caller sleeps here for pending == 0 */
    /* Three cache lines: the job and its generation, which the caller
     * writes and every worker reads, one transfer per worker; the
     * acknowledgements, which workers write; and the rest. */
    char pad0[64];
    NetcTaskFn task; /* the job: written only while no worker reads it */
    void *ctx;
    int count, chunks;
    bool stop;
    atomic_uint gen;
    atomic_int sleepers;
    char pad1[64];
    atomic_int pending;
    atomic_bool caller_asleep;
    char pad2[64];
};

/* Set while this thread runs a task, so that a nested call runs serially. */
static _Thread_local bool in_task;

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Spins until *a differs from old, for at most `ns`; the value seen. */
static unsigned spin_gen(atomic_uint *a, unsigned old, long long ns)
{
    if (!ns)
        return atomic_load_explicit(a, memory_order_acquire);
    long long end = 0;
    for (unsigned i = 1;; i++) {
        unsigned v = atomic_load_explicit(a, memory_order_acquire);
        if (v != old)
            return v;
        if (i % 64 == 0) {
            long long t = now_ns();
            if (!end)
                end = t + ns;
            else if (t >= end)
                return v;
        }
        cpu_relax();
    }
}

/* Spins until *a is 0, for at most `ns`; whether it is. */
static bool spin_zero(atomic_int *a, long long ns)
{
    if (!ns)
        return atomic_load_explicit(a, memory_order_acquire) == 0;
    long long end = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(a, memory_order_acquire) == 0)
            return true;
        if (i % 64 == 0) {
            long long t = now_ns();
            if (!end)
                end = t + ns;
            else if (t >= end)
                return false;
        }
        cpu_relax();
    }
}

/* Chunk k of [0, count) split into n: the first count % n chunks are one
 * longer. */
static void chunk(int count, int n, int k, int *lo, int *hi)
{
    int base = count / n, rem = count % n;
    *lo = k * base + (k < rem ? k : rem);
    *hi = *lo + base + (k < rem);
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    NetcPool *p = w->pool;
    in_task = true; /* for good: anything a worker runs is inside a task */
    unsigned seen = 0;
    for (;;) {
        unsigned g = spin_gen(&p->gen, seen, p->spin_ns);
        if (g == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->work, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        seen = g;
        if (p->stop)
            return NULL;
        if (w->index < p->chunks) {
            int lo, hi;
            chunk(p->count, p->chunks, w->index, &lo, &hi);
            p->task(p->ctx, lo, hi);
        }
        /* The job is not read after this. */
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

/* Publishes the job in p's fields to every worker. */
static void post(NetcPool *p)
{
    atomic_store(&p->pending, p->threads - 1);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->lock);
    }
}

static void wait_done(NetcPool *p)
{
    if (spin_zero(&p->pending, p->spin_ns))
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->caller_asleep, true);
    while (atomic_load(&p->pending) != 0)
        pthread_cond_wait(&p->done, &p->lock);
    atomic_store(&p->caller_asleep, false);
    pthread_mutex_unlock(&p->lock);
}

void netc_pool_run(void *pool, NetcTaskFn task, void *ctx, int count)
{
    NetcPool *p = pool;
    if (count <= 0)
        return;
    int chunks = p ? (p->threads < count ? p->threads : count) : 1;
    if (chunks == 1 || in_task) {
        task(ctx, 0, count);
        return;
    }
    pthread_mutex_lock(&p->call_lock);
    p->task = task;
    p->ctx = ctx;
    p->count = count;
    p->chunks = chunks;
    post(p);
    int lo, hi;
    chunk(count, chunks, 0, &lo, &hi);
    in_task = true;
    task(ctx, lo, hi);
    in_task = false;
    wait_done(p);
    pthread_mutex_unlock(&p->call_lock);
}

static int start_thread(Worker *w)
{
    if (rt_test_fail_thread > 0 && --rt_test_fail_thread == 0)
        return EAGAIN;
    return pthread_create(&w->tid, NULL, worker_main, w);
}

/* Stops the started workers and frees everything. */
static void pool_destroy(NetcPool *p)
{
    if (p->started > 0) {
        p->stop = true;
        post(p);
        for (int i = 0; i < p->started; i++)
            pthread_join(p->worker[i].tid, NULL);
    }
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->call_lock);
    free(p->worker);
    free(p);
}

NetcPool *netc_pool_new(int threads)
{
    if (threads < 1) {
        errno = EINVAL;
        return NULL;
    }
    NetcPool *p = rt_calloc(1, sizeof *p);
    Worker *w = rt_calloc((size_t)threads, sizeof *w);
    if (!p || !w) {
        free(p);
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    int err = pthread_mutex_init(&p->call_lock, NULL);
    if (!err && (err = pthread_mutex_init(&p->lock, NULL)))
        pthread_mutex_destroy(&p->call_lock);
    if (!err && (err = pthread_cond_init(&p->work, NULL))) {
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->call_lock);
    }
    if (!err && (err = pthread_cond_init(&p->done, NULL))) {
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        pthread_mutex_destroy(&p->call_lock);
    }
    if (err) {
        free(p);
        free(w);
        errno = err;
        return NULL;
    }
    p->threads = threads;
    p->spin_ns = threads > netc_cpu_count() ? 0 : SPIN_NS;
    p->worker = w;
    atomic_init(&p->gen, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->caller_asleep, false);
    for (int i = 0; i < threads - 1; i++) {
        w[i].pool = p;
        w[i].index = i + 1;
        if ((err = start_thread(&w[i]))) {
            pool_destroy(p);
            errno = err;
            return NULL;
        }
        p->started++;
    }
    return p;
}

void netc_pool_free(NetcPool *p)
{
    if (p)
        pool_destroy(p);
}

int netc_pool_threads(const NetcPool *p)
{
    return p ? p->threads : 1;
}

int netc_cpu_count(void)
{
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1)
        return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > INT_MAX ? INT_MAX : (int)n;
}
