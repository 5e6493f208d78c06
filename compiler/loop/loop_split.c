/* loop_split.c - split(loop, factor): an outer loop over blocks of
 * `factor` iterations, an inner loop over one block, and a tail.
 *
 * Needs: a verified kernel and one of its serial loops whose bounds read no
 * buffer and no variable its body assigns (the bounds are evaluated again
 * for the tail).
 * Provides: loop_split, the primitive of the loop-IR schedule: the
 * vectoriser (loop_vectorize.c) splits by the vector width and widens the
 * inner loop, the unroller (loop_unroll.c) splits by its factor and copies
 * the inner body.  The iterations run in the original order, so any loop
 * may be split and the results stay the same bit for bit.  The outer,
 * inner and tail loops keep the loop's `indep`.  kernel_verify holds after
 * it.  Invalidates: nothing else (the statement is rewritten in place).
 *
 *   for i in 0..n*10                 for i_o in 0..n*10/4
 *     y[i] = x[i]           =>         for i_i in 0..4
 *                                        y[i_o*4 + i_i] = x[i_o*4 + i_i]
 *                                    for i in n*10/4*4..n*10
 *                                      y[i] = x[i]
 *
 * The tail is left out when the factor divides the trip count: a constant
 * one, or a product with a divisible factor such as n*16 split by 8, whose
 * outer loop then runs over n*2 blocks.
 */
#include "loop_split.h"

#include <stdlib.h>
#include <string.h>

static bool reads_memory(const Expr *e)
{
    return e && (e->k == X_LOAD || reads_memory(e->a) || reads_memory(e->b) || reads_memory(e->c));
}

static bool uses_var(const Expr *e, const bool *set)
{
    if (!e)
        return false;
    if (e->k == X_VAR && set[e->var])
        return true;
    return uses_var(e->a, set) || uses_var(e->b, set) || uses_var(e->c, set);
}

static void mark_assigned(const Stmt *s, bool *set)
{
    if (s->k == S_ASSIGN)
        set[s->var] = true;
    for (int i = 0; i < s->nbody; i++)
        mark_assigned(s->body[i], set);
    for (int i = 0; i < s->nels; i++)
        mark_assigned(s->els[i], set);
}

/* e is a multiple of f for every value of its variables and n. */
static bool divisible(const Expr *e, int f)
{
    switch (e->k) {
    case X_INT: return e->ival % f == 0;
    case X_MUL: return divisible(e->a, f) || divisible(e->b, f);
    case X_ADD: case X_SUB: return divisible(e->a, f) && divisible(e->b, f);
    default: return false;
    }
}

/* e / f for an e that divisible() accepts, without a division. */
static Expr *div_exact(Arena *a, Expr *e, int f)
{
    switch (e->k) {
    case X_INT: return ex_int(a, e->ival / f);
    case X_MUL:
        if (divisible(e->a, f))
            return ex_bin(a, X_MUL, div_exact(a, e->a, f), e->b);
        return ex_bin(a, X_MUL, e->a, div_exact(a, e->b, f));
    default: return ex_bin(a, e->k, div_exact(a, e->a, f), div_exact(a, e->b, f));
    }
}

bool loop_split(Arena *a, Kernel *k, Stmt *s, int factor, LoopSplit *out)
{
    NETC_ASSERT(s->k == S_FOR && !s->parallel && factor >= 2);
    if (reads_memory(s->lo) || reads_memory(s->hi))
        return false;
    bool *assigned = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
    mark_assigned(s, assigned);
    bool clash = uses_var(s->lo, assigned) || uses_var(s->hi, assigned);
    free(assigned);
    if (clash)
        return false;

    Stmt orig = *s;
    const char *name = k->var[orig.var].name;
    Expr *trip = ex_bin(a, X_SUB, orig.hi, orig.lo);
    bool exact = divisible(trip, factor);
    /* truncating division: a negative trip count gives an empty outer
     * loop and a tail that starts at or after hi, as it should */
    Expr *blocks = exact ? div_exact(a, trip, factor) : ex_bin(a, X_DIV, trip, ex_int(a, factor));
    int vo = kernel_var(a, k, arena_printf(a, "%s_o", name), T_I32);
    int vi = kernel_var(a, k, arena_printf(a, "%s_i", name), T_I32);

    Stmt *outer = st_for(a, vo, ex_int(a, 0), blocks);
    Stmt *inner = st_for(a, vi, ex_int(a, 0), ex_int(a, factor));
    outer->indep = inner->indep = orig.indep;
    st_append(a, outer, inner);
    /* i = lo + i_o*factor + i_i */
    Expr *at = ex_bin(a, X_ADD, ex_bin(a, X_ADD, orig.lo, ex_bin(a, X_MUL, ex_var(a, k, vo), ex_int(a, factor))),
                      ex_var(a, k, vi));
    for (int i = 0; i < orig.nbody; i++)
        st_append(a, inner, st_clone(a, k, orig.body[i], orig.var, at, false));

    Stmt *tail = NULL;
    if (!exact) {
        tail = st_for(a, orig.var, ex_bin(a, X_ADD, orig.lo, ex_bin(a, X_MUL, blocks, ex_int(a, factor))),
                      orig.hi);
        tail->indep = orig.indep;
        tail->body = orig.body;
        tail->nbody = orig.nbody;
        tail->capbody = orig.capbody;
    }

    memset(s, 0, sizeof *s);
    s->k = S_BLOCK;
    st_append(a, s, outer);
    if (tail)
        st_append(a, s, tail);
    *out = (LoopSplit){outer, inner, tail};
    return true;
}
