/* loop_split.h - splitting a loop into outer, inner and tail (loop_split.c). */
#ifndef NETC_LOOP_SPLIT_H
#define NETC_LOOP_SPLIT_H

#include "loop.h"

typedef struct {
    Stmt *outer;  /* over blocks of `factor` iterations              */
    Stmt *inner;  /* over the iterations of one block (0..factor)    */
    Stmt *tail;   /* the iterations after the last block, or NULL    */
} LoopSplit;

/* Splits the serial loop s of k by factor (>= 2) in place: s becomes a
 * block of the outer loop and the tail.  Returns false, changing nothing,
 * when the bounds read a buffer or a variable the body assigns. */
bool loop_split(Arena *a, Kernel *k, Stmt *s, int factor, LoopSplit *out);

#endif
