/* loop_eval.h - a reference interpreter of the loop IR.
 *
 * Runs a kernel directly on float buffers, with exactly the semantics
 * documented in loop.h (32-bit wrapping integers, truncating division,
 * IEEE single-precision floats, libm's expf/logf/tanhf/sqrtf).  Unit tests
 * use it to check lowerings without a C compiler, and it is the reference
 * the backends are compared against.
 */
#ifndef NETC_LOOP_EVAL_H
#define NETC_LOOP_EVAL_H

#include "loop.h"

/* Runs kernel k with batch size n; bufs[i] is buffer i of the kernel, with
 * room for size_fixed + size_per_n * n floats.  Every load and store is
 * bounds-checked (NETC_ASSERT), as are integer division by zero and
 * stores to buffers the kernel does not declare as written. */
void kernel_eval(const Kernel *k, int n, float *const *bufs);
/* What a call of k runs: its family's kernel with k's arguments (or k
 * itself), with the accesses checked against k's buffer sizes. */
void kernel_eval_call(const Kernel *k, int n, float *const *bufs);

#endif
