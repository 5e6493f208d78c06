/* emit_c.h - the C backend's extra entry points.
 *
 * emit_c() and emit_c_main() are declared in netc.h with the other phases.
 * The header writer is public on its own because the LLVM backend
 * (netc emit-obj) pairs an object file with the same header.
 */
#ifndef NETC_EMIT_C_H
#define NETC_EMIT_C_H

#include <stdbool.h>

#include "netc.h"

/* Writes the generated-code header (docs/codegen.md) to `path`, replacing
 * it atomically.  Returns false after reporting an unwritable path. */
bool emit_c_header(const Program *p, const char *path, Diag *d);

/* Writes the program as nparts sources DIR/NAME.0.c .. DIR/NAME.K.c and
 * DIR/NAME.h, for a build that compiles the parts in parallel: owner[i]
 * is the part of kernel i (program_split); part 0 holds the entries. */
bool emit_c_parts(const Program *p, const char *dir, int nparts, const int *owner, Diag *d);

#endif
