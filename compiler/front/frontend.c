/* frontend.c - the front end's entry points: a .net file in, a Model out.
 *
 *   read the file (text, UTF-8, not huge) -> register it with the Diag
 *   -> parse (ast_parse) -> stop if there were syntax errors
 *   -> elaborate (elab_model) -> the Model, or NULL after errors.
 *
 * The Model's arena owns the graph, its names and the file name its
 * locations point at; the syntax tree has its own arena, freed here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ast.h"
#include "elab.h"
#include "netc.h"

enum { MAX_SOURCE = 8 << 20 }; /* bytes; a network description is small */

/* The first byte that breaks UTF-8, or NULL. */
static const char *bad_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && *p < 0xC2) || (n == 3 && *p > 0xF4))
            return (const char *)p;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return (const char *)p;
        p += n + 1;
    }
    return NULL;
}

/* The line and column of `at`, counted as the scanner does: lines end at
 * LF, CRLF or a lone CR; UTF-8 continuation bytes take no column. */
static SrcLoc loc_of(const char *file, const char *text, const char *at)
{
    SrcLoc l = {file, 1, 1};
    for (const char *p = text; p < at; p++) {
        if (*p == '\n' || *p == '\r') {
            if (*p == '\r' && p + 1 < at && p[1] == '\n')
                p++;
            l.line++;
            l.col = 1;
        } else if (((unsigned char)*p & 0xC0) != 0x80) {
            l.col++;
        }
    }
    return l;
}

static Model *load_string(const char *file, const char *text, Diag *d, FILE *dump_ast)
{
    int nerror0 = d->nerror;
    Arena *arena = arena_new();
    Model *m = arena_alloc(arena, sizeof *m);
    m->arena = arena;
    m->file = arena_strdup(arena, file);
    m->name = "network";
    m->g = graph_new(arena);
    m->grad_of = NULL;
    m->next_of = NULL;
    m->grad_value = m->grad_seed = -1;

    diag_add_source(d, m->file, text);
    const char *bad = bad_utf8(text);
    if (bad) {
        diag_error(d, loc_of(m->file, text, bad), 1, "the file is not UTF-8 text (byte 0x%02x)",
                   (unsigned char)*bad);
        model_free(m);
        return NULL;
    }
    /* A byte-order mark is not text. */
    const char *src = strncmp(text, "\xEF\xBB\xBF", 3) ? text : text + 3;

    Arena *ast_arena = arena_new();
    AstFile *ast = ast_parse(ast_arena, d, m->file, src, strlen(src));
    if (ast && dump_ast)
        ast_print(dump_ast, ast);
    bool ok = ast && d->nerror == nerror0 && elab_model(m, ast, d);
    arena_free(ast_arena);
    if (!ok || d->nerror != nerror0) {
        model_free(m);
        return NULL;
    }
    return m;
}

Model *frontend_load_string(const char *file, const char *text, Diag *d)
{
    return load_string(file, text, d, NULL);
}

Model *frontend_load_dump(const char *path, Diag *d, FILE *dump_ast)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_plain(d, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        diag_plain(d, "'%s' is a directory, not a network description", path);
        fclose(f);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    bool too_big = false;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            text = netc_realloc(text, cap);
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (len > MAX_SOURCE) {
            too_big = true;
            break;
        }
        if (got == 0)
            break;
    }
    bool failed = ferror(f);
    int err = errno;
    fclose(f);
    if (failed || too_big) {
        if (too_big)
            diag_plain(d, "'%s' is too large for a network description (more than %d MiB)", path,
                       MAX_SOURCE >> 20);
        else
            diag_plain(d, "cannot read '%s': %s", path, strerror(err));
        free(text);
        return NULL;
    }
    text[len] = 0;
    size_t nul = strlen(text);
    if (nul != len) {
        /* The text up to the NUL is what the message can quote. */
        diag_add_source(d, path, text);
        diag_error(d, loc_of(path, text, text + nul), 1, "the file is not text (a NUL byte)");
        free(text);
        return NULL;
    }
    Model *m = load_string(path, text, d, dump_ast);
    free(text);
    return m;
}

Model *frontend_load(const char *path, Diag *d)
{
    return frontend_load_dump(path, d, NULL);
}

void model_free(Model *m)
{
    if (m)
        arena_free(m->arena);
}
