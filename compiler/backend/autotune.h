/* autotune.h - times each convolution node's candidate algorithms on the host.
 *
 * `netc build --autotune` calls autotune() before the schedule: it fills a
 * Plan (netc.h, plan.c) whose entries the schedule then applies, and which
 * main.c writes as the plan file.
 */
#ifndef NETC_AUTOTUNE_H
#define NETC_AUTOTUNE_H

#include <stdbool.h>

#include "emit_llvm.h"
#include "netc.h"

typedef struct {
    const char *backend;   /* "llvm", or "c": the C backend and cc      */
    const char *cc;        /* compiles (C) and links the shared objects */
    LlvmOptions llvm;      /* the LLVM backend's code generation         */
    ShareMode share;
    int batch;             /* the batch size every call is timed at      */
} AutotuneOptions;

/* For every conv, conv_dx, conv_dw and conv_transpose node an entry calls:
 * builds each applicable candidate's kernel through the pipeline (target
 * t), runs it on random data of the node's shapes a few times on this
 * thread and records the median CPU time per call; the fastest is the
 * entry's algorithm.  plan's entries are allocated in m->arena.  Returns
 * false after reporting through d. */
bool autotune(const Model *m, const Target *t, const AutotuneOptions *o, Plan *plan, Diag *d);

#endif
