/* loop_hoist.c - a kernel's work on its weights alone, split off so that
 * inference does it once, when the weights are loaded (prepared weights).
 *
 * Needs: a scheduled, verified kernel (after vectorise, unroll, privatise
 * and parallelise; before outlining) and which of its buffers hold
 * parameters.  Provides: loop_hoist.  A Winograd convolution transforms
 * its filters into scratch (wt, then wu) before it touches the input, an
 * FFT convolution takes its filters' spectra (fu): work that depends on
 * the weights alone, which every inference call repeats although the
 * weights have not changed.  Such a top-level statement is split off
 * into a kernel of its own (`pre`), run once by the program's `prepare`
 * entry; the rest (`post`) reads what it wrote as an input (program.c
 * places it in the prepared-weights array, docs/codegen.md).
 *
 * A top-level statement is hoisted when
 *   - it reads only bound buffers (parameters) and scratch that hoisted
 *     statements write, and writes only scratch of a fixed size (no n);
 *   - it reads neither the batch size nor a variable from around it, and
 *     calls nothing;
 *   - no statement left behind writes what it writes, and none before it
 *     reads or writes that (it was workspace there).
 * Its scratch becomes `prepared` when the rest reads it, a temporary of
 * pre otherwise.  Moving the hoisted statements ahead of the others keeps
 * every value: what they read nothing else writes, what they write
 * nothing before them touches.
 *
 *   before: kernel k3_conv(n; y[w] 200704*n, x 200704*n, w 36864, b 64, wu[w] 147456, wt[w] 36864, ...)
 *             parallel for f in 0..4096        wt[f + 4096*t] = w[f*9 + t] ...
 *             parallel for f_1_o in 0..256     wu[...] = (filter transform of wt)
 *             parallel for i_o in 0..29952     wg[..] = 0 ...
 *             for nb in 0..n                   (the convolution, reading wu)
 *   after:  kernel k3_conv_prepare(n; wu[w] 147456, w 36864, wt[w] 36864)
 *             parallel for f in 0..4096 ...
 *             parallel for f_1_o in 0..256 ...
 *           kernel k3_conv_prepared(n; y[w] 200704*n, x 200704*n, w 36864, b 64, wu 147456, ...)
 *             parallel for i_o in 0..29952 ...
 *             for nb in 0..n ...
 *
 * `--dump=prepare` prints every pair.
 */
#include <stdlib.h>
#include <string.h>

#include "loop_hoist.h"

/* What one statement touches. */
typedef struct {
    bool *rd, *wr;      /* per buffer */
    bool *decl, *use;   /* per variable: declared inside, used (read or assigned) */
    bool batch, call;
} Touch;

static void touch_expr(Touch *t, const Expr *e)
{
    if (!e)
        return;
    if (e->k == X_LOAD)
        t->rd[e->buf] = true;
    else if (e->k == X_VAR)
        t->use[e->var] = true;
    else if (e->k == X_BATCH || e->k == X_ARG)
        t->batch = true; /* X_ARG: a value from the caller, as unknown as n */
    touch_expr(t, e->a);
    touch_expr(t, e->b);
    touch_expr(t, e->c);
}

static void touch_stmt(Touch *t, const Stmt *s)
{
    touch_expr(t, s->lo);
    touch_expr(t, s->hi);
    touch_expr(t, s->cond);
    touch_expr(t, s->idx);
    touch_expr(t, s->val);
    switch (s->k) {
    case S_STORE:
        t->wr[s->buf] = true;
        t->rd[s->buf] |= s->accum;
        break;
    case S_FOR: case S_DECL:
        t->decl[s->var] = true;
        break;
    case S_ASSIGN:
        t->use[s->var] = true;
        break;
    case S_CALL:
        t->call = true;
        break;
    default:
        break;
    }
    for (int i = 0; i < s->nsum; i++)
        t->rd[s->sum[i]] = t->wr[s->sum[i]] = true;
    for (int i = 0; i < s->nbody; i++)
        touch_stmt(t, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        touch_stmt(t, s->els[i]);
}

/* ---- copies with the buffers renumbered ---- */

static Expr *copy_expr(Arena *a, const Expr *e, const int *map)
{
    if (!e)
        return NULL;
    Expr *n = arena_alloc(a, sizeof *n);
    *n = *e;
    if (e->k == X_LOAD)
        n->buf = map[e->buf];
    n->a = copy_expr(a, e->a, map);
    n->b = copy_expr(a, e->b, map);
    n->c = copy_expr(a, e->c, map);
    return n;
}

static const int *copy_bufs(Arena *a, const int *bufs, int nb, const int *map)
{
    if (!nb)
        return NULL;
    int *out = arena_alloc(a, sizeof(int) * (size_t)nb);
    for (int i = 0; i < nb; i++)
        out[i] = map[bufs[i]];
    return out;
}

static Stmt *copy_stmt(Arena *a, const Stmt *s, const int *map)
{
    Stmt *n = arena_alloc(a, sizeof *n);
    *n = *s;
    n->lo = copy_expr(a, s->lo, map);
    n->hi = copy_expr(a, s->hi, map);
    n->cond = copy_expr(a, s->cond, map);
    n->idx = copy_expr(a, s->idx, map);
    n->val = copy_expr(a, s->val, map);
    if (s->k == S_STORE)
        n->buf = map[s->buf];
    n->priv = copy_bufs(a, s->priv, s->npriv, map);
    n->sum = copy_bufs(a, s->sum, s->nsum, map);
    n->body = NULL;
    n->nbody = n->capbody = 0;
    n->els = NULL;
    n->nels = n->capels = 0;
    for (int i = 0; i < s->nbody; i++)
        st_append(a, n, copy_stmt(a, s->body[i], map));
    for (int i = 0; i < s->nels; i++)
        st_append_else(a, n, copy_stmt(a, s->els[i], map));
    return n;
}

/* A kernel with k's variables and the buffers k->buf[from[i]], i < nb. */
static Kernel *derived(Arena *a, const Kernel *k, const char *suffix, const int *from, int nb)
{
    Kernel *d = kernel_new(a, arena_printf(a, "%s_%s", k->name, suffix), k->comment);
    for (int i = 0; i < k->nvar; i++) { /* the same ids: the statements are copied as they are */
        int v = kernel_var(a, d, k->var[i].name, k->var[i].t);
        NETC_ASSERT(v == i);
    }
    for (int i = 0; i < nb; i++) {
        const LBuf *b = &k->buf[from[i]];
        int j = b->scratch ? kernel_scratch(a, d, b->name, b->size_fixed, b->size_per_n)
                           : kernel_buf(a, d, b->name, b->written, b->size_fixed, b->size_per_n);
        NETC_ASSERT(j == i);
    }
    if (k->vlen)
        kernel_vectors(d, k->vlen);
    return d;
}

bool loop_hoist(Arena *a, const Kernel *k, const bool *bound, Hoist *h)
{
    int ns = k->body->nbody, nb = k->nbuf, nv = k->nvar;
    if (ns < 2 || k->narg || k->outlined)
        return false;
    Touch *t = netc_alloc(sizeof(Touch) * (size_t)ns);
    bool *cand = netc_alloc(sizeof(bool) * (size_t)ns);
    for (int i = 0; i < ns; i++) {
        t[i] = (Touch){netc_alloc((size_t)nb), netc_alloc((size_t)nb), netc_alloc((size_t)nv + 1),
                       netc_alloc((size_t)nv + 1), false, false};
        touch_stmt(&t[i], k->body->body[i]);
        bool ok = !t[i].batch && !t[i].call;
        for (int v = 0; ok && v < nv; v++)
            ok = !t[i].use[v] || t[i].decl[v];
        bool writes = false;
        for (int b = 0; ok && b < nb; b++) {
            const LBuf *lb = &k->buf[b];
            if (t[i].wr[b]) {
                ok = lb->scratch && lb->size_per_n == 0;
                writes = true;
            }
            if (t[i].rd[b] && !lb->scratch)
                ok = ok && bound[b];
        }
        cand[i] = ok && writes;
    }
    /* Drop candidates until the rules hold for all that are left. */
    for (bool changed = true; changed;) {
        changed = false;
        for (int j = 0; j < ns; j++) {
            if (!cand[j])
                continue;
            bool ok = true;
            for (int b = 0; ok && b < nb; b++) {
                if (t[j].rd[b] && k->buf[b].scratch) {
                    bool by_cand = false; /* written by an earlier candidate, or by j itself */
                    for (int i = 0; i <= j && !by_cand; i++)
                        by_cand = cand[i] && t[i].wr[b];
                    ok = by_cand;
                }
                for (int i = 0; ok && i < ns; i++)
                    if (!cand[i] && t[j].wr[b] && (t[i].wr[b] || (i < j && t[i].rd[b])))
                        ok = false;
            }
            if (!ok) {
                cand[j] = false;
                changed = true;
            }
        }
    }
    HoistRole *role = arena_alloc(a, sizeof(HoistRole) * (size_t)nb);
    bool *rd_cand = netc_alloc((size_t)nb + 1); /* a hoisted statement reads it */
    int nprep = 0;
    for (int b = 0; b < nb; b++) {
        bool wr_cand = false, rd_rest = false;
        for (int i = 0; i < ns; i++) {
            wr_cand |= cand[i] && t[i].wr[b];
            rd_cand[b] |= cand[i] && t[i].rd[b];
            rd_rest |= !cand[i] && t[i].rd[b];
        }
        role[b] = !wr_cand ? HOIST_KEEP : rd_rest ? HOIST_PREP : HOIST_TEMP;
        nprep += role[b] == HOIST_PREP;
    }
    bool split = nprep > 0;
    if (split) {
        /* pre: prepared, then the bound buffers it reads, then temporaries */
        int *pre_buf = arena_alloc(a, sizeof(int) * (size_t)nb), npre = 0;
        int *post_buf = arena_alloc(a, sizeof(int) * (size_t)nb), npost = 0;
        int *pre_map = netc_alloc(sizeof(int) * (size_t)nb), *post_map = netc_alloc(sizeof(int) * (size_t)nb);
        static const HoistRole order[3] = {HOIST_PREP, HOIST_KEEP, HOIST_TEMP};
        for (int pass = 0; pass < 3; pass++)
            for (int b = 0; b < nb; b++)
                if (role[b] == order[pass] && (role[b] != HOIST_KEEP || rd_cand[b])) {
                    pre_map[b] = npre;
                    pre_buf[npre++] = b;
                }
        for (int b = 0; b < nb; b++)
            if (role[b] != HOIST_TEMP) {
                post_map[b] = npost;
                post_buf[npost++] = b;
            }
        Kernel *pre = derived(a, k, "prepare", pre_buf, npre);
        for (int i = 0; i < npre; i++)
            if (role[pre_buf[i]] == HOIST_PREP)
                pre->buf[i].scratch = false;
        Kernel *post = derived(a, k, "prepared", post_buf, npost);
        for (int i = 0; i < npost; i++)
            if (role[post_buf[i]] == HOIST_PREP)
                post->buf[i].scratch = post->buf[i].written = false;
        for (int i = 0; i < ns; i++)
            st_append(a, cand[i] ? pre->body : post->body,
                      copy_stmt(a, k->body->body[i], cand[i] ? pre_map : post_map));
        NETC_ASSERT(kernel_verify(pre, stderr));
        NETC_ASSERT(kernel_verify(post, stderr));
        *h = (Hoist){pre, post, role, pre_buf, post_buf};
        free(pre_map);
        free(post_map);
    }
    for (int i = 0; i < ns; i++) {
        free(t[i].rd);
        free(t[i].wr);
        free(t[i].decl);
        free(t[i].use);
    }
    free(t);
    free(cand);
    free(rd_cand);
    return split;
}
