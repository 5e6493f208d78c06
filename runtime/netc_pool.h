/* netc_pool.h - parallel loops: the hook generated code calls, and the
 * runtime's thread pool that fills it.
 *
 * A kernel loop marked parallel becomes a call of a NetcParallelFn with the
 * loop body as a NetcTaskFn.  Generated code links without pthreads: its
 * default hook runs the task serially.  netc_main (netc_runtime.h) hands the
 * model netc_pool_run and a pool made with --threads N threads.
 *
 * Partition: netc_pool_run with T threads splits [0, count) into
 * netc_pool_chunks(T, count) = min(2T, count) contiguous chunks (one for
 * T = 1), as equal as possible, the first count % chunks of them one
 * iteration longer.
 * Each chunk runs once, on whichever thread takes it first: the caller
 * takes chunks like the workers, so a worker the system is not running
 * holds nothing up.  The split depends only on count and T.
 *
 * Determinism contract: a caller whose iterations are independent (each
 * writes only its own outputs and reads nothing another iteration writes)
 * gets results that do not depend on the thread count.  A task that
 * combines iterations (a sum over its range, say) sees ranges that change
 * with T, so such a result may differ in the last bits between thread
 * counts; it is still the same on every run with the same T.
 */
#ifndef NETC_POOL_H
#define NETC_POOL_H

/* The same two types are declared by every generated model header, under
 * the same guard, so the two headers can be included together. */
#ifndef NETC_PARALLEL_TYPES_DEFINED
#define NETC_PARALLEL_TYPES_DEFINED
/* A task runs iterations [lo, hi) of a parallel loop; ctx is the loop's captured state. */
typedef void (*NetcTaskFn)(void *ctx, int lo, int hi);
/* A parallel-for: runs task over [0, count) split into disjoint contiguous ranges, possibly
 * on several threads, and returns when all are done. `pool` is the implementation's state. */
typedef void (*NetcParallelFn)(void *pool, NetcTaskFn task, void *ctx, int count);
#endif

typedef struct NetcPool NetcPool;

/* A pool of `threads` threads counting the caller, so threads - 1 workers are
 * started (none for 1).  NULL on failure (threads < 1, no memory, a thread
 * that cannot be started), with errno set; nothing is left running. */
NetcPool *netc_pool_new(int threads);
/* Stops and joins the workers and frees the pool; NULL is fine.  No call of
 * netc_pool_run on the pool may be running. */
void netc_pool_free(NetcPool *p);
/* The pool's thread count; 1 for NULL. */
int netc_pool_threads(const NetcPool *p);
/* A NetcParallelFn: runs task over [0, count) as partitioned above and
 * returns when every chunk is done; count <= 0 does nothing.  pool may be
 * NULL: one serial call task(ctx, 0, count).  A call from inside a task
 * (of any pool) runs serially on that thread.  Calls from several
 * application threads on one pool are safe and take turns. */
void netc_pool_run(void *pool, NetcTaskFn task, void *ctx, int count);
/* The number of chunks netc_pool_run cuts [0, count) into with `threads`
 * threads (above); 0 for count <= 0. */
int netc_pool_chunks(int threads, int count);
/* The CPUs this process may run on (sched_getaffinity where available, else
 * the online CPUs); at least 1. */
int netc_cpu_count(void);

#endif
