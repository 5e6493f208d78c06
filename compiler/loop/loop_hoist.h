/* loop_hoist.h - the work of a kernel that depends on its weights alone,
 * split off so that inference can do it once (loop_hoist.c). */
#ifndef NETC_LOOP_HOIST_H
#define NETC_LOOP_HOIST_H

#include "loop.h"

/* What becomes of each buffer of the kernel that was split. */
typedef enum {
    HOIST_KEEP, /* the rest reads or writes it as before                  */
    HOIST_PREP, /* scratch that the hoisted part writes and the rest reads:
                   the prepared weights (an input of the rest)            */
    HOIST_TEMP  /* scratch that only the hoisted part uses                */
} HoistRole;

typedef struct {
    Kernel *pre;      /* the hoisted statements                          */
    Kernel *post;     /* the kernel without them                         */
    HoistRole *role;  /* per buffer of the split kernel                  */
    int *pre_buf;     /* pre's buffer i is the split kernel's pre_buf[i] */
    int *post_buf;    /* post's buffer i is the split kernel's post_buf[i] */
} Hoist;

/* Splits k when some of its top-level statements read nothing but the
 * buffers marked `bound` (bound[b]: buffer b holds the same values on
 * every call, a parameter) and the scratch those statements write, and
 * write nothing but scratch of a fixed size that the rest reads.  Returns
 * false (h untouched) when there is no such statement.  pre's buffers are
 * the prepared ones (written), the bound ones it reads, then its
 * temporaries (scratch); post's are k's without the temporaries, the
 * prepared ones read-only and no longer scratch.  Running pre and then
 * post computes what k computes. */
bool loop_hoist(Arena *a, const Kernel *k, const bool *bound, Hoist *h);

#endif
