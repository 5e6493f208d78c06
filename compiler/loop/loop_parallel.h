/* loop_parallel.h - the parallelise pass (loop_parallel.c). */
#ifndef NETC_LOOP_PARALLEL_H
#define NETC_LOOP_PARALLEL_H

#include "loop.h"
#include "target.h"

/* Marks the outermost independent loops that carry enough work parallel. */
void loop_parallelize(Kernel *k, const Target *t);

#endif
