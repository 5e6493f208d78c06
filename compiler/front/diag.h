/* diag.h - user-facing diagnostics.
 *
 * Every user error is reported here, never by exit() below main():
 *
 *   lenet.net:4:18: error: unknown layer 'conv2d'
 *       image -> conv2d(6, kernel=5)
 *                ^~~~~~
 *     hint: did you mean 'conv'?
 *
 * Errors are collected (up to max_errors) so one run reports several.
 */
#ifndef NETC_DIAG_H
#define NETC_DIAG_H

#include <stdio.h>

#include "util.h"

typedef struct DiagSource {
    const char *file;
    const char *text;        /* whole file, NUL-terminated */
    struct DiagSource *next;
} DiagSource;

typedef struct Diag {
    FILE *out;               /* stderr by default */
    int nerror;
    int nwarning;            /* reported, but the compile goes on */
    int max_errors;          /* stop reporting after this many (default 20) */
    DiagSource *sources;
} Diag;

void diag_init(Diag *d, FILE *out);
void diag_free(Diag *d);
/* Registers a file's text so errors can quote its lines.  `text` must
 * outlive the Diag. */
void diag_add_source(Diag *d, const char *file, const char *text);

/* "file:line:col: error: <msg>", the source line, a caret under the column
 * spanning `len` characters (1 when len <= 0).  Counts toward nerror. */
void diag_error(Diag *d, SrcLoc loc, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "file:line:col: warning: <msg>" with the source line; the compile
 * goes on (counts toward nwarning only). */
void diag_warning(Diag *d, SrcLoc loc, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "file:line:col: note: <msg>" with the source line; does not count. */
void diag_note(Diag *d, SrcLoc loc, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "  hint: <msg>" attached to the previous error. */
void diag_hint(Diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with no source position: "netc: error: <msg>". */
void diag_plain(Diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The closest of `n` candidates to `word` (NULL when none is close enough),
 * for "did you mean" hints. */
const char *diag_suggest(const char *word, const char *const *cands, int n);

#endif
