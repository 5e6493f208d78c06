/* loop_unroll.h - loop unrolling (loop_unroll.c). */
#ifndef NETC_LOOP_UNROLL_H
#define NETC_LOOP_UNROLL_H

#include "loop.h"
#include "target.h"

/* The pass: fully unrolls the short innermost loops of k. */
void loop_unroll_pass(Arena *a, Kernel *k, const Target *t);
/* The transformation it applies: unrolls the serial loop s by factor
 * (>= 2) in place; a loop of at most `factor` iterations known at compile
 * time disappears into copies of its body.  Returns false, changing
 * nothing, when it cannot (see loop_split). */
bool loop_unroll(Arena *a, Kernel *k, Stmt *s, int factor);

#endif
