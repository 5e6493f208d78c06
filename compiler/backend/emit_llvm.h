/* emit_llvm.h - the LLVM backend: a Program's loop IR as an LLVM module.
 *
 * Needs: a built Program (program_build).  Provides: a readable .ll file,
 * or a native object file with the same symbols as the C backend's .c
 * (NAME_forward, NAME_train, NAME_meta, NAME_weights and, on request, a
 * main() that calls netc_main).  The module is verified, optimised with
 * LLVM's standard pipeline at opt_level, and compiled for the host or for
 * the given target.  See docs/llvm.md.
 *
 * When netc is built without LLVM (NETC_LLVM=OFF or LLVM missing), the
 * functions exist but report that the backend is unavailable, so callers
 * need no #ifdef.
 */
#ifndef NETC_EMIT_LLVM_H
#define NETC_EMIT_LLVM_H

#include <stdbool.h>

#include "diag.h"
#include "netc.h"

/* What to compile for.  A NULL triple means the host; then a NULL cpu or
 * features means the host's CPU and features.  With an explicit triple, a
 * NULL cpu means "generic" and NULL features means none. */
typedef struct {
    const char *triple;
    const char *cpu;
    const char *features;   /* LLVM syntax: "+avx2,-fma" */
    int opt_level;          /* 0..3, LLVM's default<On> pipeline */
} LlvmOptions;

/* True when this netc was built with the LLVM backend. */
bool emit_llvm_available(void);
/* e.g. "LLVM 22.1.8", or "no LLVM" when unavailable. */
const char *emit_llvm_version(void);

/* Writes the module, after optimisation at o->opt_level, as LLVM assembly
 * to path_ll (no main()).  Returns false after reporting through d. */
bool emit_llvm_ir(const Program *p, const LlvmOptions *o, const char *path_ll, Diag *d);
/* Writes a relocatable (PIC) object file to path_o; with_main adds
 * int main(argc, argv) handing the model to netc_main. */
bool emit_llvm_obj(const Program *p, const LlvmOptions *o, const char *path_o,
                   bool with_main, Diag *d);
/* The same program as up to max_parts objects PREFIX.0.o, PREFIX.1.o, ...,
 * built on up to `threads` threads: part 0 holds the entry points (and main
 * with with_main), the kernels are dealt out by size.  Which kernel goes to
 * which part depends on the program alone, never on the thread count.  The
 * parts must be linked together.  Returns the number of parts written, 0
 * after reporting an error. */
enum { EMIT_LLVM_MAX_PARTS = 8 };
int emit_llvm_parts(const Program *p, const LlvmOptions *o, const char *prefix, int max_parts,
                    int threads, bool with_main, Diag *d);

#endif
