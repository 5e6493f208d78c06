/* loop_privatize.c - the privatise pass of the loop-IR schedule: a loop
 * over samples whose only shared writes are to a per-iteration workspace
 * gets one copy of the workspace per core, and becomes independent.
 *
 * Needs: a verified kernel after vectorise and unroll, whose lowering
 * listed on a top-level loop (Stmt.priv) the scratch buffers each of its
 * iterations uses as a workspace: an iteration reads of them only what it
 * wrote before, or what statements before the loop wrote (a zeroed
 * border, the same for every iteration); and whose other writes are the
 * iteration's own (a sample's outputs).  And the target description (its
 * core count t->cores and L2 size).
 * Provides: such a loop, when the target has P = t->cores >= 2 cores and
 * P copies of its workspace fit in half the L2, rewritten into P chunks of
 * its range, chunk c using copy c of every listed buffer (the buffers
 * grow P-fold; each access gets + c * size), and the chunk loop marked
 * `indep`; statements outside the loop that write a listed buffer are
 * repeated for every copy.  A kernel that reads a listed buffer outside
 * the loop is left as it is.  Invalidates nothing; kernel_verify holds
 * after it; loop_parallelize (after it) then finds the chunk loop, so the
 * samples are spread over the threads instead of each sample's small
 * loops (one dispatch per call instead of one per sample).
 *
 * Results: every iteration computes what it computed before, in the same
 * order within the iteration, so they are the same bits for every thread
 * count.  The chunks depend only on the batch and P (a target fact), not
 * on the thread count.
 *
 *   for nb in 0..n   (priv col)          for c in 0..2   (indep)
 *     col[i] = x[nb*784 + i]      =>       int lo = c*n/2, hi = (c + 1)*n/2
 *     y[nb*6 + j] = f(col)                 for nb in lo..hi
 *                                            col[c*784 + i] = x[nb*784 + i]
 *                                            y[nb*6 + j] = f(col[c*784 ...])
 */
#include "loop_privatize.h"

#include <string.h>

typedef struct {
    Arena *a;
    Kernel *k;
    const bool *priv; /* k->nbuf entries */
    Expr *c;          /* the copy index */
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

/* e with every load of a listed buffer at copy c (new nodes; e unchanged). */
static Expr *rebase_expr(Rebase *r, Expr *e)
{
    if (!e || !expr_reads(e, r->priv))
        return e;
    Expr *n = arena_alloc(r->a, sizeof *n);
    *n = *e;
    n->a = rebase_expr(r, e->a);
    n->b = rebase_expr(r, e->b);
    n->c = rebase_expr(r, e->c);
    if (e->k == X_LOAD && r->priv[e->buf])
        n->a = offset(r, e->buf, n->a);
    return n;
}

static void rebase_stmt(Rebase *r, Stmt *s)
{
    s->lo = rebase_expr(r, s->lo);
    s->hi = rebase_expr(r, s->hi);
    s->cond = rebase_expr(r, s->cond);
    s->val = rebase_expr(r, s->val);
    s->idx = rebase_expr(r, s->idx);
    if (s->k == S_STORE && r->priv[s->buf])
        s->idx = offset(r, s->buf, s->idx);
    for (int i = 0; i < s->nbody; i++)
        rebase_stmt(r, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        rebase_stmt(r, s->els[i]);
}

/* A new loop for c in 0..P holding `inner`, rebased to copy c. */
static Stmt *per_copy(Arena *a, Kernel *k, const bool *priv, int P, Stmt *inner, const char *name)
{
    int c = kernel_var(a, k, name, T_I32);
    Stmt *loop = st_for(a, c, ex_int(a, 0), ex_int(a, P));
    loop->indep = true;
    Rebase r = {a, k, priv, ex_var(a, k, c)};
    rebase_stmt(&r, inner);
    st_append(a, loop, inner);
    return loop;
}

/* Privatises k->body->body[at] (a loop with priv buffers), or leaves the
 * kernel as it is; whether it did. */
static bool privatize_loop(Arena *a, Kernel *k, const Target *t, int at)
{
    Stmt *body = k->body, *s = body->body[at];
    bool *priv = arena_alloc(a, sizeof(bool) * ((size_t)k->nbuf + 1));
    memset(priv, 0, sizeof(bool) * ((size_t)k->nbuf + 1));
    long bytes = 0;
    for (int i = 0; i < s->npriv; i++) {
        const LBuf *b = &k->buf[s->priv[i]];
        if (!b->scratch || b->size_per_n != 0 || priv[s->priv[i]])
            return false;
        priv[s->priv[i]] = true;
        bytes += b->size_fixed * (long)sizeof(float);
    }
    int P = t->cores;
    if (P < 2 || bytes * P > t->l2 / 2 || s->parallel)
        return false;
    /* outside the loop: no reads; writes are initialisation, per copy */
    for (int i = 0; i < body->nbody; i++)
        if (i != at && stmt_uses(body->body[i], priv, true))
            return false;
    for (int i = 0; i < body->nbody; i++)
        if (i != at && stmt_uses(body->body[i], priv, false))
            body->body[i] = per_copy(a, k, priv, P, body->body[i], "cp");

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
    Rebase r = {a, k, priv, cv};
    for (int i = 0; i < s->nbody; i++)
        rebase_stmt(&r, s->body[i]);
    s->lo = lo;
    s->hi = hi;
    s->priv = NULL;
    s->npriv = 0;
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
        if (s->k == S_FOR && s->npriv > 0)
            changed |= privatize_loop(a, k, t, i);
    }
    return changed;
}
