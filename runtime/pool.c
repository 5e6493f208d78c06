/* pool.c - the thread pool behind netc_pool_run (netc_pool.h).
 *
 * One job at a time: the caller publishes (task, ctx, count, chunks) and a
 * new `ticket`, then takes chunks like any worker until none is left, and
 * waits until every chunk is finished.  The ticket is one 64-bit atomic:
 * the job's generation (high 32 bits), its chunk count and the next chunk
 * to take (16 bits each); a thread takes chunk k by a compare-and-swap of
 * (gen, chunks, k) to k + 1, so each chunk runs exactly once, on whichever
 * thread gets there first.  A worker reads the job's fields only after it
 * took a chunk of it, and the caller writes the next job only after every
 * chunk it handed out is finished, so the fields need no lock.  Nobody
 * waits for a worker that is not running: a descheduled worker (a loaded
 * machine, more threads than CPUs) just takes no chunk, and the caller
 * does its share.  `finished` is reset before the ticket is published; a
 * worker that finishes the last chunk wakes a sleeping caller.
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
 * Nesting: a thread that is running a task (a worker, or the caller while
 * it runs chunks) is marked; netc_pool_run from a marked thread runs
 * serially.  Callers from different threads take turns on `call_lock`.
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

/* Chunks a job is cut into per thread: more than one, so a thread that
 * finishes early (or a worker the system did not run) leaves less for the
 * others to wait on; few, so each chunk stays long.  The ticket holds the
 * chunk count in 16 bits. */
enum { CHUNKS_PER_THREAD = 2, MAX_CHUNKS = 0xffff };

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
    pthread_cond_t work;       /* workers sleep here for a new generation */
    pthread_cond_t done;       /* the caller sleeps here for every chunk finished */
    /* Three cache lines: the job and its generation, which the caller
     * writes and every worker reads, one transfer per worker; the
     * acknowledgements, which workers write; and the rest. */
    char pad0[64];
    NetcTaskFn task; /* the job: written only while no chunk is handed out */
    void *ctx;
    int count;
    atomic_bool stop; /* read by workers that may be late for a job */
    _Atomic unsigned long long ticket; /* gen << 32 | chunks << 16 | next */
    atomic_int sleepers;
    char pad1[64];
    atomic_int finished; /* chunks of the current job done */
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

typedef unsigned long long Ticket;

static unsigned ticket_gen(Ticket t) { return (unsigned)(t >> 32); }
static int ticket_chunks(Ticket t) { return (int)((t >> 16) & 0xffff); }
static int ticket_next(Ticket t) { return (int)(t & 0xffff); }

/* Spins until the ticket's generation differs from old, for at most `ns`;
 * the ticket seen. */
static Ticket spin_gen(_Atomic Ticket *a, unsigned old, long long ns)
{
    if (!ns)
        return atomic_load(a);
    long long end = 0;
    for (unsigned i = 1;; i++) {
        Ticket v = atomic_load(a);
        if (ticket_gen(v) != old)
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

/* Spins until *a is n, for at most `ns`; whether it is. */
static bool spin_until(atomic_int *a, int n, long long ns)
{
    if (!ns)
        return atomic_load(a) == n;
    long long end = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load(a) == n)
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

/* Takes and runs chunks of job `gen` until none is left (or a newer job
 * was published); the thread that finishes the job's last chunk wakes a
 * sleeping caller. */
static void take_chunks(NetcPool *p, unsigned gen)
{
    Ticket t = atomic_load(&p->ticket);
    while (ticket_gen(t) == gen && ticket_next(t) < ticket_chunks(t)) {
        if (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1))
            continue; /* t now holds the ticket seen */
        /* chunk k of job gen is ours: the job's fields stay as they are
         * until it is finished */
        int k = ticket_next(t), n = ticket_chunks(t), lo, hi;
        chunk(p->count, n, k, &lo, &hi);
        p->task(p->ctx, lo, hi);
        if (atomic_fetch_add(&p->finished, 1) + 1 == n && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
        t = atomic_load(&p->ticket);
    }
}

static void *worker_main(void *arg)
{
    Worker *w = arg;
    NetcPool *p = w->pool;
    in_task = true; /* for good: anything a worker runs is inside a task */
    unsigned seen = 0;
    for (;;) {
        Ticket t = spin_gen(&p->ticket, seen, p->spin_ns);
        if (ticket_gen(t) == seen) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (ticket_gen(t = atomic_load(&p->ticket)) == seen)
                pthread_cond_wait(&p->work, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        seen = ticket_gen(t);
        if (atomic_load(&p->stop))
            return NULL;
        take_chunks(p, seen);
    }
}

/* Publishes the job in p's fields (chunks of it; 0 with stop). */
static unsigned post(NetcPool *p, int chunks)
{
    atomic_store(&p->finished, 0);
    unsigned gen = ticket_gen(atomic_load(&p->ticket)) + 1;
    atomic_store(&p->ticket, (Ticket)gen << 32 | (Ticket)chunks << 16);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->lock);
    }
    return gen;
}

static void wait_done(NetcPool *p, int chunks)
{
    if (spin_until(&p->finished, chunks, p->spin_ns))
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->caller_asleep, true);
    while (atomic_load(&p->finished) != chunks)
        pthread_cond_wait(&p->done, &p->lock);
    atomic_store(&p->caller_asleep, false);
    pthread_mutex_unlock(&p->lock);
}

void netc_pool_run(void *pool, NetcTaskFn task, void *ctx, int count)
{
    NetcPool *p = pool;
    if (count <= 0)
        return;
    int chunks = p ? netc_pool_chunks(p->threads, count) : 1;
    if (chunks == 1 || in_task) {
        task(ctx, 0, count);
        return;
    }
    pthread_mutex_lock(&p->call_lock);
    p->task = task;
    p->ctx = ctx;
    p->count = count;
    unsigned gen = post(p, chunks);
    in_task = true;
    take_chunks(p, gen);
    in_task = false;
    wait_done(p, chunks);
    pthread_mutex_unlock(&p->call_lock);
}

int netc_pool_chunks(int threads, int count)
{
    long n = threads > 1 ? (long)CHUNKS_PER_THREAD * threads : 1;
    if (n > MAX_CHUNKS)
        n = MAX_CHUNKS;
    return count < n ? (count > 0 ? count : 0) : (int)n;
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
        atomic_store(&p->stop, true);
        post(p, 0);
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
    atomic_init(&p->ticket, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->finished, 0);
    atomic_init(&p->stop, false);
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
