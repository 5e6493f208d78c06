/* plan.c - plan files: measured convolution algorithms, read and written.
 *
 * Needs: nothing but the text.  Provides: a Plan (netc.h), one entry per
 * line, for sched.c to apply (sched_choose_for) and for autotune.c to fill
 * and write.  A plan is plain text:
 *
 *   # netc plan: ...                         comments (#) and blank lines
 *   c1 conv [1,28,28]->[6,28,28],k5x5,s1x1,d1x1,p2:2x2:2,g1 direct direct=0.021 im2col=0.045
 *
 * one line per convolution node: the layer (node name), the pass (conv,
 * conv_dx, conv_dw or conv_transpose), the node's signature
 * (sched_signature: the forward layer's input and output shapes, kernel,
 * strides, dilations, paddings, groups), the algorithm to run, then the
 * measured milliseconds per call of each candidate (NAME=MS), which only
 * document the choice.  A forward conv's algorithm may be followed by the
 * batches another one computes (sched.c, "the algorithm by batch"),
 * `below=N:ALGO` or `from=N:ALGO`:
 *
 *   c conv [128,7,7]->[128,7,7],k3x3,s1x1,d1x1,p1:1x1:1,g1 winograd below=5:winograd2 winograd=0.7
 *
 * A line that does not have this form is an error
 * at its line and column; whether an entry still fits the model (layer,
 * signature, algorithm) is sched.c's to judge, with warnings.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netc.h"

static const Op plan_passes[] = {OP_CONV, OP_CONV_DX, OP_CONV_DW, OP_CONV_TRANSPOSE};

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* The next token of line [p, e): its start and length, 0 at the end. */
static const char *token(const char **p, const char *e, int *len)
{
    const char *s = *p;
    while (s < e && is_space(*s))
        s++;
    const char *t = s;
    while (t < e && !is_space(*t) && *t != '#')
        t++;
    *p = t;
    *len = (int)(t - s);
    return s;
}

static SrcLoc at(const char *file, int line, const char *line_start, const char *p)
{
    return (SrcLoc){file, line, (int)(p - line_start) + 1};
}

/* "below=N:ALGO" / "from=N:ALGO" [tok, tok + len) into e; false when malformed. */
static bool parse_alt(Arena *a, PlanEntry *e, const char *tok, int len)
{
    bool below = tok[0] == 'b';
    const char *p = tok + (below ? 6 : 5), *end = tok + len;
    long batch = 0;
    while (p < end && *p >= '0' && *p <= '9' && batch < 1000000000)
        batch = batch * 10 + (*p++ - '0');
    if (p == end || *p != ':' || p + 1 == end || batch < 2 || batch >= 1000000000)
        return false;
    e->alt_name = arena_printf(a, "%.*s", (int)(end - p - 1), p + 1);
    if (!algo_parse(e->alt_name, &e->alt) || e->alt == ALGO_GEMM)
        e->alt = ALGO_NONE; /* sched.c warns */
    e->alt_lo = below ? 0 : (int)batch;
    e->alt_hi = below ? (int)batch : 0;
    return true;
}

static bool parse_line(Arena *a, Plan *plan, const char *file, int line, const char *ls, const char *le,
                       Diag *d)
{
    const char *p = ls;
    int len;
    const char *tok = token(&p, le, &len);
    if (!len)
        return true; /* blank or comment */
    PlanEntry e = {0};
    e.loc = at(file, line, ls, tok);
    e.layer = arena_printf(a, "%.*s", len, tok);

    tok = token(&p, le, &len);
    if (!len) {
        diag_error(d, at(file, line, ls, tok), 1,
                   "plan: expected a pass (conv, conv_dx, conv_dw or conv_transpose) after the layer '%s'",
                   e.layer);
        return false;
    }
    e.pass = OP_COUNT;
    for (size_t i = 0; i < sizeof plan_passes / sizeof plan_passes[0]; i++)
        if ((int)strlen(op_name(plan_passes[i])) == len && !strncmp(tok, op_name(plan_passes[i]), (size_t)len))
            e.pass = plan_passes[i];
    if (e.pass == OP_COUNT) {
        diag_error(d, at(file, line, ls, tok), len,
                   "plan: unknown pass '%.*s' (expected conv, conv_dx, conv_dw or conv_transpose)", len, tok);
        return false;
    }

    tok = token(&p, le, &len);
    if (!len) {
        diag_error(d, at(file, line, ls, tok), 1, "plan: expected the node's signature after the pass");
        return false;
    }
    e.sig = arena_printf(a, "%.*s", len, tok);
    e.sig_loc = at(file, line, ls, tok);
    e.sig_len = len;

    tok = token(&p, le, &len);
    if (!len) {
        diag_error(d, at(file, line, ls, tok), 1, "plan: expected an algorithm after the signature");
        return false;
    }
    e.algo_name = arena_printf(a, "%.*s", len, tok);
    e.algo_loc = at(file, line, ls, tok);
    e.algo_len = len;
    if (!algo_parse(e.algo_name, &e.algo) || e.algo == ALGO_GEMM)
        e.algo = ALGO_NONE; /* sched.c warns */

    for (bool first = true;; first = false) {
        tok = token(&p, le, &len);
        if (!len)
            break;
        if (first && ((len > 6 && !strncmp(tok, "below=", 6)) || (len > 5 && !strncmp(tok, "from=", 5)))) {
            if (!parse_alt(a, &e, tok, len)) {
                diag_error(d, at(file, line, ls, tok), len,
                           "plan: expected the batches of a second algorithm as below=BATCH:ALGORITHM or "
                           "from=BATCH:ALGORITHM with BATCH 2 or more (like below=5:winograd2), not '%.*s'",
                           len, tok);
                return false;
            }
            e.alt_loc = at(file, line, ls, tok);
            e.alt_len = len;
            continue;
        }
        const char *eq = memchr(tok, '=', (size_t)len);
        char *end = NULL;
        double ms = 0;
        if (eq && eq > tok) {
            errno = 0;
            ms = strtod(eq + 1, &end);
        }
        if (!eq || eq == tok || end != tok + len || end == eq + 1 || errno || !isfinite(ms) || ms < 0) {
            diag_error(d, at(file, line, ls, tok), len,
                       "plan: expected a candidate's time as ALGORITHM=MILLISECONDS (like im2col=0.25), "
                       "not '%.*s'", len, tok);
            return false;
        }
        if (e.ntime < PLAN_MAX_TIMES) {
            e.time_name[e.ntime] = arena_printf(a, "%.*s", (int)(eq - tok), tok);
            e.time_ms[e.ntime++] = ms;
        }
    }
    if (plan->n == plan->cap) {
        int cap = plan->cap ? plan->cap * 2 : 16;
        PlanEntry *ne = arena_alloc(a, sizeof *ne * (size_t)cap);
        if (plan->n)
            memcpy(ne, plan->e, sizeof *ne * (size_t)plan->n);
        plan->e = ne;
        plan->cap = cap;
    }
    plan->e[plan->n++] = e;
    return true;
}

Plan *plan_read(Arena *a, const char *path, Diag *d)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_plain(d, "cannot read the plan '%s': %s", path, strerror(errno));
        return NULL;
    }
    Buf b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_printf(&b, "%.*s", (int)got, chunk);
    fclose(f);
    const char *text = b.s ? b.s : "";
    if (strlen(text) != b.len) {
        diag_plain(d, "the plan '%s' is not text (it holds a NUL byte)", path);
        buf_free(&b);
        return NULL;
    }
    const char *file = arena_strdup(a, path);
    diag_add_source(d, file, text);
    Plan *plan = arena_alloc(a, sizeof *plan);
    plan->file = file;
    bool ok = true;
    int line = 1;
    for (const char *ls = text; *ls; line++) {
        const char *le = ls + strcspn(ls, "\r\n");
        ok = parse_line(a, plan, file, line, ls, le, d) && ok;
        ls = le + (le[0] == '\r' && le[1] == '\n' ? 2 : le[0] ? 1 : 0);
    }
    buf_free(&b);
    return ok ? plan : NULL;
}

bool plan_write(const Plan *plan, const char *header, const char *path, Diag *d)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.netc-tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        diag_plain(d, "cannot write the plan '%s': %s", path, strerror(errno));
        return false;
    }
    fputs(header, f);
    for (int i = 0; i < plan->n; i++) {
        const PlanEntry *e = &plan->e[i];
        fprintf(f, "%s %s %s %s", e->layer, op_name(e->pass), e->sig, algo_name(e->algo));
        if (e->alt != ALGO_NONE)
            fprintf(f, " %s=%d:%s", e->alt_hi ? "below" : "from", e->alt_hi ? e->alt_hi : e->alt_lo,
                    algo_name(e->alt));
        for (int t = 0; t < e->ntime; t++)
            fprintf(f, " %s=%.4g", e->time_name[t], e->time_ms[t]);
        fputc('\n', f);
    }
    bool ok = fclose(f) == 0;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        diag_plain(d, "cannot write the plan '%s': %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}
