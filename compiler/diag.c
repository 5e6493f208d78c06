/* diag.c - user-facing error messages (see diag.h).
 *
 *   lenet.net:4:18: error: unknown layer 'conv2d'
 *       image -> conv2d(6, kernel=5)
 *                ^~~~~~
 *     hint: did you mean 'conv'?
 *
 * Columns count characters (UTF-8 sequences are one column each).  The
 * caret line copies the tabs of the source line, so the caret sits under
 * the token whatever the reader's tab width.  After max_errors errors the
 * rest are counted but not printed, and neither are their notes and hints.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->out = out ? out : stderr;
    d->max_errors = 20;
}

void diag_free(Diag *d)
{
    for (DiagSource *s = d->sources, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    d->sources = NULL;
}

/* The Diag keeps its own copy of the text, so a message about a model
 * can still quote the source after the front end's buffers are gone.
 * Newer registrations of the same file shadow older ones. */
void diag_add_source(Diag *d, const char *file, const char *text)
{
    size_t fl = strlen(file) + 1, tl = strlen(text) + 1;
    DiagSource *s = netc_alloc(sizeof *s + fl + tl);
    char *copy = (char *)(s + 1);
    memcpy(copy, file, fl);
    memcpy(copy + fl, text, tl);
    s->file = copy;
    s->text = copy + fl;
    s->next = d->sources;
    d->sources = s;
}

static const char *find_source(const Diag *d, const char *file)
{
    if (!file)
        return NULL;
    for (const DiagSource *s = d->sources; s; s = s->next)
        if (s->file == file || (s->file && !strcmp(s->file, file)))
            return s->text;
    return NULL;
}

/* The start of 1-based line `line`, or NULL past the end. */
static const char *find_line(const char *text, int line)
{
    const char *p = text;
    for (int l = 1; l < line; l++) {
        p = strchr(p, '\n');
        if (!p)
            return NULL;
        p++;
    }
    return p;
}

static bool is_cont(unsigned char ch)
{
    return (ch & 0xC0) == 0x80;
}

static void print_quote(Diag *d, SrcLoc loc, int len)
{
    const char *text = find_source(d, loc.file);
    const char *line = text && loc.line > 0 ? find_line(text, loc.line) : NULL;
    if (!line)
        return;
    size_t n = strcspn(line, "\n");
    if (n > 0 && line[n - 1] == '\r')
        n--;
    fprintf(d->out, "    %.*s\n    ", (int)n, line);
    /* Walk to the column, echoing tabs so the caret stays aligned. */
    const char *p = line, *end = line + n;
    for (int col = 1; col < loc.col && p < end; col++) {
        fputc(*p == '\t' ? '\t' : ' ', d->out);
        p++;
        while (p < end && is_cont((unsigned char)*p))
            p++;
    }
    fputc('^', d->out);
    /* The rest of the span, clipped at the end of the line. */
    if (p < end) {
        p++;
        while (p < end && is_cont((unsigned char)*p))
            p++;
    }
    for (int i = 1; i < len && p < end; i++) {
        fputc('~', d->out);
        p++;
        while (p < end && is_cont((unsigned char)*p))
            p++;
    }
    fputc('\n', d->out);
}

static bool quiet(const Diag *d)
{
    return d->nerror > d->max_errors;
}

static void report(Diag *d, const char *what, SrcLoc loc, int len, const char *fmt, va_list ap)
{
    if (loc.file)
        fprintf(d->out, "%s:%d:%d: %s: ", loc.file, loc.line, loc.col, what);
    else
        fprintf(d->out, "netc: %s: ", what);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (loc.file)
        print_quote(d, loc, len);
}

void diag_error(Diag *d, SrcLoc loc, int len, const char *fmt, ...)
{
    d->nerror++;
    if (d->nerror == d->max_errors + 1)
        fprintf(d->out, "netc: too many errors (%d), stopping\n", d->max_errors);
    if (quiet(d))
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "error", loc, len, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, int len, const char *fmt, ...)
{
    if (quiet(d))
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "note", loc, len, fmt, ap);
    va_end(ap);
}

void diag_hint(Diag *d, const char *fmt, ...)
{
    if (quiet(d))
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("  hint: ", d->out);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
}

void diag_plain(Diag *d, const char *fmt, ...)
{
    d->nerror++;
    if (d->nerror == d->max_errors + 1)
        fprintf(d->out, "netc: too many errors (%d), stopping\n", d->max_errors);
    if (quiet(d))
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("netc: error: ", d->out);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    va_end(ap);
}

/* Close enough to be a typo: at most a third of the word's letters edited
 * (at least one), or one name a prefix of the other ("conv2d"/"conv").
 * Ties go to the earlier candidate, so callers list common names first. */
const char *diag_suggest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 1 << 20;
    size_t wl = strlen(word);
    int limit = (int)(wl + 2) / 3;
    if (limit < 1)
        limit = 1;
    for (int i = 0; i < n; i++) {
        if (!cands[i] || !strcmp(cands[i], word))
            continue;
        int dist = edit_distance(word, cands[i]);
        size_t cl = strlen(cands[i]);
        bool prefix = cl >= 3 && wl >= 3 &&
                      (!strncmp(word, cands[i], cl) || !strncmp(word, cands[i], wl));
        if (dist > limit && !prefix)
            continue;
        if (prefix && dist > limit)
            dist = limit; /* rank a prefix match like the worst typo */
        if (dist < best_d) {
            best_d = dist;
            best = cands[i];
        }
    }
    return best;
}
