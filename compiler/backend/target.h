/* target.h - the target description: the machine facts the schedule uses.
 *
 * One record says what the generated code may assume about the processor
 * it runs on: the vector width, whether a fused multiply-add exists, how
 * many vector registers there are, the cache sizes and the core count.
 * Lowerings and schedule passes read these facts from here and nowhere
 * else (no #ifdef in a pass).  The record comes from the host, from a
 * named CPU (--cpu) with feature changes (--features), or, for tests and
 * golden dumps, from a fixed reference description.
 */
#ifndef NETC_TARGET_H
#define NETC_TARGET_H

#include <stdbool.h>
#include <stdio.h>

#include "diag.h"

typedef struct {
    const char *name;   /* the CPU it describes: "skylake-avx512", "host (...)" */
    int vlen;           /* floats per vector register: 16, 8, 4 (1: no vectors) */
    bool fma;           /* fused multiply-add instructions                      */
    int vregs;          /* architectural vector registers                       */
    long l1d, l2, l3;   /* data cache bytes: per core, per core, shared         */
    int cores;          /* cores the program may use                            */
} Target;

/* The description of the host processor. */
void target_host(Target *t);
/* From an LLVM-style triple (NULL: the host's architecture), CPU name
 * (NULL or "native": the host) and feature list ("+avx2,-fma"; NULL: none).
 * A named CPU gets the reference caches and core count, so that what is
 * generated for it does not depend on the machine netc runs on.
 * Unknown names fall back to the architecture's baseline and are left to
 * the backend to reject.  Returns false after reporting through d only for
 * a malformed feature list. */
bool target_describe(Target *t, const char *triple, const char *cpu, const char *features, Diag *d);
/* The fixed description tests and golden dumps use: AVX2 + FMA (8 lanes,
 * 16 registers), 32 KiB L1d, 1 MiB L2, 32 MiB L3, 2 cores. */
const Target *target_reference(void);
/* One line: "x86-64-v3: 8 lanes, fma, 16 vector registers, L1d 32 KiB ..." */
void target_print(FILE *f, const Target *t);

#endif
