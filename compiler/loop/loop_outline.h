/* loop_outline.h - outlining of heavy, self-contained kernel parts
 * (loop_outline.c). */
#ifndef NETC_LOOP_OUTLINE_H
#define NETC_LOOP_OUTLINE_H

#include "loop.h"

/* Moves k's heavy, self-contained statement runs into kernels of their own
 * and calls them there.  Returns how many; (*subs)[i] is one and
 * (*calls)[i] the S_CALL in k that runs it (both arrays malloc'd, NULL
 * when none), so that a caller may point the call at an identical kernel
 * instead.  The verifier accepts k and every new kernel after it. */
int loop_outline(Arena *a, Kernel *k, Kernel ***subs, Stmt ***calls);

#endif
