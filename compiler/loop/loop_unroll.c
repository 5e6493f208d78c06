/* loop_unroll.c - the unroll pass of the loop-IR schedule.
 *
 * Needs: a verified kernel (after the vectoriser, whose scalar tails it
 * takes) and the target description.
 * Provides: loop_unroll(s, f), which copies the body of loop s f times:
 * a loop of at most f iterations known at compile time becomes its
 * copies, any other is split by f (loop_split) and its inner loop of f
 * iterations unrolled.  Each copy declares its own locals, so the copies
 * share one scope.  The pass unrolls fully the innermost serial loops of
 * at most UNROLL_TRIP iterations whose body is at most UNROLL_BODY
 * statements: vector tails, small pooling and convolution windows, where
 * the loop's counter and branch cost as much as its body.  The copies run
 * in the original order, so results are the same bits.  kernel_verify
 * holds after it.
 *
 *   for kw in 0..3                       float v = x[xr]
 *     float v = x[xr + kw]         =>    s = s + v
 *     s = s + v                          float v_1 = x[xr + 1]
 *                                        s = s + v_1
 *                                        float v_2 = x[xr + 2]
 *                                        s = s + v_2
 */
#include "loop_unroll.h"

#include <string.h>

#include "loop_split.h"

enum { UNROLL_TRIP = 4, UNROLL_BODY = 4 };

/* s, a loop over lo..lo+trip, becomes a block of trip copies of its body. */
static void unroll_full(Arena *a, Kernel *k, Stmt *s, int lo, int trip)
{
    Stmt orig = *s;
    /* the body as one block, so that a copy's renamed locals reach all of
     * its statements */
    Stmt body = {0};
    body.k = S_BLOCK;
    body.body = orig.body;
    body.nbody = orig.nbody;
    memset(s, 0, sizeof *s);
    s->k = S_BLOCK;
    for (int j = 0; j < trip; j++) {
        Stmt *c = st_clone(a, k, &body, orig.var, ex_int(a, lo + j), j > 0);
        for (int i = 0; i < c->nbody; i++)
            st_append(a, s, c->body[i]);
    }
}

bool loop_unroll(Arena *a, Kernel *k, Stmt *s, int factor)
{
    NETC_ASSERT(s->k == S_FOR && !s->parallel && factor >= 2);
    if (s->lo->k == X_INT && s->hi->k == X_INT) {
        long trip = (long)s->hi->ival - s->lo->ival;
        if (trip <= factor) {
            unroll_full(a, k, s, s->lo->ival, trip > 0 ? (int)trip : 0);
            return true;
        }
    }
    LoopSplit sp;
    if (!loop_split(a, k, s, factor, &sp))
        return false;
    unroll_full(a, k, sp.inner, 0, factor);
    return true;
}

/* Statements in s, itself included; loops count as UNROLL_BODY + 1. */
static int size(const Stmt *s)
{
    if (s->k == S_FOR)
        return UNROLL_BODY + 1;
    int n = s->k == S_BLOCK ? 0 : 1;
    for (int i = 0; i < s->nbody; i++)
        n += size(s->body[i]);
    for (int i = 0; i < s->nels; i++)
        n += size(s->els[i]);
    return n;
}

static void visit(Arena *a, Kernel *k, Stmt *s)
{
    for (int i = 0; i < s->nbody; i++)
        visit(a, k, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        visit(a, k, s->els[i]);
    if (s->k != S_FOR || s->parallel || s->lo->k != X_INT || s->hi->k != X_INT)
        return;
    long trip = (long)s->hi->ival - s->lo->ival;
    int body = 0;
    for (int i = 0; i < s->nbody; i++)
        body += size(s->body[i]);
    if (trip >= 1 && trip <= UNROLL_TRIP && body <= UNROLL_BODY)
        loop_unroll(a, k, s, UNROLL_TRIP);
}

void loop_unroll_pass(Arena *a, Kernel *k, const Target *t)
{
    (void)t;
    visit(a, k, k->body);
}
