/* loop_vectorize.h - the vectorise pass of the loop-IR schedule (loop_vectorize.c). */
#ifndef NETC_LOOP_VECTORIZE_H
#define NETC_LOOP_VECTORIZE_H

#include "loop.h"
#include "target.h"

/* Rewrites the independent unit-stride loops of k into vector statements
 * of the target's width, with a scalar tail. */
void loop_vectorize(Arena *a, Kernel *k, const Target *t);

#endif
