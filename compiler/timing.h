/* timing.h - where the compile time went (`netc build --time`).
 *
 * The driver turns timing on; each phase then brackets its work with
 * timing_begin / timing_end (nested phases are indented in the report).
 * Off, the calls do nothing measurable.  The report gives wall and CPU
 * time per phase, in the order the phases ran:
 *
 *   netc: time     wall ms   cpu ms  phase
 *   netc: time         4.1      4.0  front end
 *   netc: time       812.3   1620.0  llvm: optimise
 *   ...
 * One process-wide table: the compiler runs one compile per process.
 */
#ifndef NETC_TIMING_H
#define NETC_TIMING_H

#include <stdbool.h>
#include <stdio.h>

void timing_enable(bool on);
bool timing_enabled(void);
void timing_begin(const char *phase); /* phase: a string literal */
void timing_end(void);
/* CPU time spent outside this process (a C compiler run by `build`) is
 * added to the open phase with timing_add_child_cpu after the child exits. */
void timing_add_child_cpu(double seconds);
void timing_report(FILE *f);

#endif
