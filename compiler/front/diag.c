/* diag.c - user-facing error messages (see diag.h).
 *
 *   lenet.net:4:18: error: unknown layer 'conv2d'
 *       image -> conv2d(6, kernel=5)
 *                ^~~~~~
 *     hint: did you mean 'conv'?
 *
 * Columns count characters (UTF-8 sequences are one column each); lines
 * end at LF, CRLF or a lone CR.  The caret line copies the tabs of the
 * source line, so the caret sits under the token whatever the reader's tab
 * width.  Bytes that are not text (invalid UTF-8, control characters) are
 * echoed as \xNN, in quoted lines and in messages alike, and a line longer
 * than QUOTE_MAX columns is shown as a window around the caret.  After max_errors errors the
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

/* A line ends at LF, CRLF or a lone CR (old Mac files), as in the scanner. */
static const char *line_end(const char *p)
{
    return p + strcspn(p, "\r\n");
}

static const char *next_line(const char *e)
{
    return e + (e[0] == '\r' && e[1] == '\n' ? 2 : e[0] ? 1 : 0);
}

/* The start of 1-based line `line`, or NULL past the end. */
static const char *find_line(const char *text, int line)
{
    const char *p = text;
    for (int l = 1; l < line; l++) {
        const char *e = line_end(p);
        if (!*e)
            return NULL;
        p = next_line(e);
    }
    return p;
}

/* The bytes of one character at p (< end): a whole UTF-8 sequence, or 0
 * when p does not start one. */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    int n = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && p[0] < 0xC2) || (n == 4 && p[0] > 0xF4) || end - p < n)
        return 0;
    for (int i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* One character of echoed text: its bytes and its width on the terminal.
 * A byte that is not UTF-8 text, or a control character other than tab,
 * shows as \xNN (four columns). */
typedef struct {
    int bytes, width;
    bool escaped;
} Glyph;

static Glyph glyph_at(const char *p, const char *end)
{
    const unsigned char *u = (const unsigned char *)p;
    int n = utf8_len(u, (const unsigned char *)end);
    if (n == 0 || (n == 1 && ((u[0] < 0x20 && u[0] != '\t') || u[0] == 0x7f)))
        return (Glyph){1, 4, true};
    return (Glyph){n, 1, false};
}

static void put_glyphs(FILE *f, const char *p, const char *end)
{
    while (p < end) {
        Glyph g = glyph_at(p, end);
        if (g.escaped)
            fprintf(f, "\\x%02x", (unsigned char)*p);
        else
            fwrite(p, 1, (size_t)g.bytes, f);
        p += g.bytes;
    }
}

/* Text for a message (names, paths): echoed like the source, with
 * newlines kept. */
static void put_text(FILE *f, const char *s)
{
    for (const char *e; *s; s = e + 1) {
        e = s + strcspn(s, "\n");
        put_glyphs(f, s, e);
        if (!*e)
            break;
        fputc('\n', f);
    }
}

enum {
    QUOTE_MAX = 150,     /* a longer line shows a window around the caret */
    QUOTE_BEFORE = 50,   /* columns kept before the caret in a window */
};

static void print_quote(Diag *d, SrcLoc loc, int len)
{
    const char *text = find_source(d, loc.file);
    const char *line = text && loc.line > 0 ? find_line(text, loc.line) : NULL;
    if (!line)
        return;
    const char *end = line_end(line);
    /* The caret's character, and display widths up to it and in all. */
    const char *caret = line;
    int caret_w = 0;
    for (int col = 1; caret < end && col < loc.col; col++) {
        Glyph g = glyph_at(caret, end);
        caret += g.bytes;
        caret_w += g.width;
    }
    int total_w = caret_w;
    for (const char *p = caret; p < end;) {
        Glyph g = glyph_at(p, end);
        p += g.bytes;
        total_w += g.width;
    }
    const char *from = line, *to = end;
    if (total_w > QUOTE_MAX) {
        int w = 0;
        while (from < caret && caret_w - w > QUOTE_BEFORE) {
            Glyph g = glyph_at(from, end);
            from += g.bytes;
            w += g.width;
        }
        to = from;
        for (int tw = 0; to < end;) {
            Glyph g = glyph_at(to, end);
            if (tw + g.width > QUOTE_MAX - 6 && to > caret)
                break;
            to += g.bytes;
            tw += g.width;
        }
    }
    fputs("    ", d->out);
    if (from > line)
        fputs("...", d->out);
    put_glyphs(d->out, from, to);
    if (to < end)
        fputs("...", d->out);
    fputs("\n    ", d->out);
    if (from > line)
        fputs("   ", d->out);
    /* Walk to the column, echoing tabs so the caret stays aligned. */
    const char *p = from;
    while (p < caret) {
        Glyph g = glyph_at(p, end);
        if (*p == '\t')
            fputc('\t', d->out);
        else
            fprintf(d->out, "%*s", g.width, "");
        p += g.bytes;
    }
    fputc('^', d->out);
    /* The rest of the span, clipped at the end of what is shown. */
    if (p < to)
        p += glyph_at(p, end).bytes;
    for (int i = 1; i < len && p < to; i++) {
        Glyph g = glyph_at(p, end);
        for (int k = 0; k < g.width; k++)
            fputc('~', d->out);
        p += g.bytes;
    }
    fputc('\n', d->out);
}

static void put_message(FILE *f, const char *fmt, va_list ap)
{
    Buf b = {0};
    buf_vprintf(&b, fmt, ap);
    put_text(f, b.s);
    buf_free(&b);
}

static bool quiet(const Diag *d)
{
    return d->nerror > d->max_errors;
}

static void report(Diag *d, const char *what, SrcLoc loc, int len, const char *fmt, va_list ap)
{
    if (loc.file) {
        put_text(d->out, loc.file);
        fprintf(d->out, ":%d:%d: %s: ", loc.line, loc.col, what);
    } else {
        fprintf(d->out, "netc: %s: ", what);
    }
    put_message(d->out, fmt, ap);
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

void diag_warning(Diag *d, SrcLoc loc, int len, const char *fmt, ...)
{
    d->nwarning++;
    if (quiet(d))
        return;
    va_list ap;
    va_start(ap, fmt);
    report(d, "warning", loc, len, fmt, ap);
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
    put_message(d->out, fmt, ap);
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
    put_message(d->out, fmt, ap);
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
