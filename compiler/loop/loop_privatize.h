/* loop_privatize.h - the privatise pass of the loop-IR schedule (loop_privatize.c). */
#ifndef NETC_LOOP_PRIVATIZE_H
#define NETC_LOOP_PRIVATIZE_H

#include "loop.h"
#include "target.h"

/* The pass: gives the top-level loops whose lowering listed a workspace
 * or an accumulator (Stmt.priv, Stmt.sum) one copy of it per core and
 * chunks of their range, marked independent; whether it changed k. */
bool loop_privatize(Arena *a, Kernel *k, const Target *t);

#endif
