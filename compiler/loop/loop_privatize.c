/* loop_privatize.c - the privatise pass of the loop-IR schedule: a loop
 * over samples whose iterations share only a workspace (or an accumulator)
 * gets one copy of it per core, and becomes independent.
 *
 * Needs: a verified kernel after vectorise and unroll, whose lowering
 * listed on a top-level loop the scratch buffers its iterations share:
 *   - workspaces (Stmt.priv): an iteration reads of them only what it
 *     wrote before, or what statements before the loop wrote (a zeroed
 *     border, the same for every iteration);
 *   - accumulators (Stmt.sum): zeroed before the loop, added into by every
 *     iteration, read only after the loop;
 * and whose other writes are the iteration's own (a sample's outputs).
 * And the target description (its core count t->cores and L2 size).
 * Provides: such a loop, when the target has P = t->cores >= 2 cores and
 * P copies of the listed buffers fit in half the L2, rewritten into P
 * chunks of its range, chunk c using copy c of every listed buffer (the
 * buffers grow P-fold; each access in the loop gets + c * size), and the
 * chunk loop marked `indep`; statements before the loop that write a
 * listed buffer run for every copy; reads of an accumulator after the loop
 * become the sum of its copies in chunk order.  Anything else outside the
 * loop touching a listed buffer leaves the kernel as it is.  Invalidates
 * nothing; kernel_verify holds after it; loop_parallelize (after it) then
 * finds the chunk loop, so the samples are spread over the threads (one
 * dispatch per call instead of one per sample's small loops).
 *
 * Results: every sample is computed as before, in the same order within
 * its iteration; an accumulator sums each chunk's samples in order and
 * then the chunks in order, which may differ in the last bits from one
 * pass over the batch.  The chunks depend only on the batch and P (a
 * target fact), not on the thread count: the same bits on any number of
 * threads.
 *
 *   for nb in 0..n   (priv col)          for c in 0..2   (indep)
 *     col[i] = x[nb*784 + i]      =>       for nb in c*n/2..(c + 1)*n/2
 *     y[nb*6 + j] = f(col)                   col[c*784 + i] = x[nb*784 + i]
 *                                            y[nb*6 + j] = f(col[c*784 ...])
 *
 *   acc[j] = 0                           for cp in 0..2: acc[cp*4 + j] = 0
 *   for nb in 0..n   (sum acc)    =>     for c in 0..2
 *     acc[j] += x[nb*4 + j]                for nb in c*n/2..(c + 1)*n/2
 *   y[j] = acc[j]                            acc[c*4 + j] += x[nb*4 + j]
 *                                        y[j] = acc[j] + acc[4 + j]
 */
#include "loop_privatize.h"

#include <string.h>

/* Rewriting the accesses to the listed buffers: at copy c (c set), or,
 * for reads of accumulators after the loop (c NULL), the sum of the P
 * copies. */
typedef struct {
    Arena *a;
    Kernel *k;
    const bool *bufs; /* k->nbuf entries: the buffers rewritten */
    Expr *c;          /* the copy index */
    int P;
} Rebase;

static bool expr_reads(const Expr *e, const bool *priv)
{
    if (!e)
        return false;
    if (e->k == X_LOAD && priv[e->buf])
        return true;
    return expr_reads(e->a, priv) || expr_reads(e->b, priv) || expr_reads(e->c, priv);
}

/* Whether s reads (reads == true) or writes a listed buffer. */
static bool stmt_uses(const Stmt *s, const bool *priv, bool reads)
{
    if (reads) {
        if (expr_reads(s->lo, priv) || expr_reads(s->hi, priv) || expr_reads(s->cond, priv) ||
            expr_reads(s->idx, priv) || expr_reads(s->val, priv))
            return true;
    } else if (s->k == S_STORE && priv[s->buf]) {
        return true;
    }
    if (s->k == S_CALL)
        return true; /* not looked into: treated as using everything */
    for (int i = 0; i < s->nbody; i++)
        if (stmt_uses(s->body[i], priv, reads))
            return true;
    for (int i = 0; i < s->nels; i++)
        if (stmt_uses(s->els[i], priv, reads))
            return true;
    return false;
}

static Expr *offset(Rebase *r, int buf, Expr *idx)
{
    long size = r->k->buf[buf].size_fixed;
    return ex_bin(r->a, X_ADD, ex_bin(r->a, X_MUL, r->c, ex_int(r->a, (int)size)), idx);
}

/* A load of listed buffer b at idx, rewritten: at copy c (rebase), or
 * the sum of its P copies in copy order, ((b[i] + b[s + i]) + b[2s + i])
 * ... (sum). */
static Expr *rewrite_load(Rebase *r, const Expr *e, Expr *idx)
{
    if (!r->c) {
        long size = r->k->buf[e->buf].size_fixed;
        Expr *acc = NULL;
        for (int c = 0; c < r->P; c++) {
            Expr *at = c ? ex_bin(r->a, X_ADD, ex_int(r->a, (int)(c * size)), idx) : idx;
            Expr *ld = e->t == T_V32 ? ex_vload(r->a, e->buf, at) : ex_load(r->a, e->buf, at);
            acc = acc ? ex_bin(r->a, X_ADD, acc, ld) : ld;
        }
        return acc;
    }
    Expr *n = arena_alloc(r->a, sizeof *n);
    *n = *e;
    n->a = offset(r, e->buf, idx);
    return n;
}

/* e with every load of a listed buffer rewritten (new nodes; e unchanged). */
static Expr *rewrite_expr(Rebase *r, Expr *e)
{
    if (!e || !expr_reads(e, r->bufs))
        return e;
    if (e->k == X_LOAD && r->bufs[e->buf])
        return rewrite_load(r, e, rewrite_expr(r, e->a));
    Expr *n = arena_alloc(r->a, sizeof *n);
    *n = *e;
    n->a = rewrite_expr(r, e->a);
    n->b = rewrite_expr(r, e->b);
    n->c = rewrite_expr(r, e->c);
    return n;
}

/* s and everything in it rewritten; when rebasing, stores too. */
static void rewrite_stmt(Rebase *r, Stmt *s)
{
    s->lo = rewrite_expr(r, s->lo);
    s->hi = rewrite_expr(r, s->hi);
    s->cond = rewrite_expr(r, s->cond);
    s->val = rewrite_expr(r, s->val);
    s->idx = rewrite_expr(r, s->idx);
    if (r->c && s->k == S_STORE && r->bufs[s->buf])
        s->idx = offset(r, s->buf, s->idx);
    for (int i = 0; i < s->nbody; i++)
        rewrite_stmt(r, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        rewrite_stmt(r, s->els[i]);
}

/* A new loop for c in 0..P holding `inner`, rebased to copy c. */
static Stmt *per_copy(Arena *a, Kernel *k, const bool *priv, int P, Stmt *inner, const char *name)
{
    int c = kernel_var(a, k, name, T_I32);
    Stmt *loop = st_for(a, c, ex_int(a, 0), ex_int(a, P));
    loop->indep = true;
    Rebase r = {a, k, priv, ex_var(a, k, c), P};
    rewrite_stmt(&r, inner);
    st_append(a, loop, inner);
    return loop;
}

/* Privatises k->body->body[at] (a loop with priv buffers), or leaves the
 * kernel as it is; whether it did. */
static bool privatize_loop(Arena *a, Kernel *k, const Target *t, int at)
{
    Stmt *body = k->body, *s = body->body[at];
    size_t nb = (size_t)k->nbuf + 1;
    /* priv: every listed buffer; sum: the accumulators; ws: the workspaces */
    bool *priv = arena_alloc(a, sizeof(bool) * nb), *sum = arena_alloc(a, sizeof(bool) * nb);
    bool *ws = arena_alloc(a, sizeof(bool) * nb);
    memset(priv, 0, sizeof(bool) * nb);
    memset(sum, 0, sizeof(bool) * nb);
    memset(ws, 0, sizeof(bool) * nb);
    long bytes = 0;
    for (int i = 0; i < s->npriv + s->nsum; i++) {
        int b = i < s->npriv ? s->priv[i] : s->sum[i - s->npriv];
        const LBuf *lb = &k->buf[b];
        if (!lb->scratch || lb->size_per_n != 0 || priv[b])
            return false;
        priv[b] = true;
        sum[b] = i >= s->npriv;
        ws[b] = !sum[b];
        bytes += lb->size_fixed * (long)sizeof(float);
    }
    int P = t->cores;
    if (P < 2 || bytes * P > t->l2 / 2 || s->parallel)
        return false;
    /* before the loop: writes only (initialisation, repeated per copy);
     * after it: reads of accumulators only (their copies summed) */
    for (int i = 0; i < body->nbody; i++) {
        const Stmt *o = body->body[i];
        if (i < at && stmt_uses(o, priv, true))
            return false;
        if (i > at && (stmt_uses(o, priv, false) || stmt_uses(o, ws, true)))
            return false;
    }
    for (int i = 0; i < at; i++)
        if (stmt_uses(body->body[i], priv, false))
            body->body[i] = per_copy(a, k, priv, P, body->body[i], "cp");
    Rebase m = {a, k, sum, NULL, P};
    for (int i = at + 1; i < body->nbody; i++)
        rewrite_stmt(&m, body->body[i]);

    /* for c in 0..P: for v in lo + c*len/P .. lo + (c+1)*len/P */
    int c = kernel_var(a, k, "c", T_I32);
    Expr *cv = ex_var(a, k, c), *len = ex_bin(a, X_SUB, s->hi, s->lo);
    Expr *lo = ex_bin(a, X_ADD, s->lo,
                      ex_bin(a, X_DIV, ex_bin(a, X_MUL, cv, len), ex_int(a, P)));
    Expr *hi = ex_bin(a, X_ADD, s->lo,
                      ex_bin(a, X_DIV, ex_bin(a, X_MUL, ex_bin(a, X_ADD, cv, ex_int(a, 1)), len),
                             ex_int(a, P)));
    Stmt *chunk = st_for(a, c, ex_int(a, 0), ex_int(a, P));
    chunk->indep = true;
    Rebase r = {a, k, priv, cv, P};
    for (int i = 0; i < s->nbody; i++)
        rewrite_stmt(&r, s->body[i]);
    s->lo = lo;
    s->hi = hi;
    s->priv = s->sum = NULL;
    s->npriv = s->nsum = 0;
    st_append(a, chunk, s);
    body->body[at] = chunk;
    for (int i = 0; i < k->nbuf; i++)
        if (priv[i])
            k->buf[i].size_fixed *= P;
    return true;
}

bool loop_privatize(Arena *a, Kernel *k, const Target *t)
{
    bool changed = false;
    for (int i = 0; i < k->body->nbody; i++) {
        Stmt *s = k->body->body[i];
        if (s->k == S_FOR && s->npriv + s->nsum > 0)
            changed |= privatize_loop(a, k, t, i);
    }
    return changed;
}
