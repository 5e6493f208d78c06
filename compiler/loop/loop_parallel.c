/* loop_parallel.c - the parallelise pass of the loop-IR schedule.
 *
 * Needs: a verified kernel whose lowering marked the loops with
 * independent iterations (Stmt.indep: no iteration reads what another
 * writes), and the target description (its core count).
 * Provides: Stmt.parallel on the outermost independent loops worth a
 * parallel dispatch; kernel_verify holds after it (a parallel loop holds
 * no parallel loop and assigns nothing declared outside it).
 *
 * A loop is worth it when one dispatch carries at least PAR_MIN_WORK
 * element operations (estimated at batch PAR_EST_BATCH, a vector operation
 * counting its lanes): below that the threads' wake-up costs more than it
 * saves.  Loops inside a parallel one stay serial.  Which loops may run in
 * parallel is the lowering's promise; which do is decided here, so every
 * op gets threads from the same rule.
 *
 *   for jt in 0..98          (indep)          parallel for jt in 0..98
 *     for mb in 0..4         (indep)    =>      for mb in 0..4
 *       ...                                       ...
 */
#include "loop_parallel.h"

#include <stdlib.h>
#include <string.h>

enum { PAR_EST_BATCH = 32, PAR_UNKNOWN_TRIP = 8 };
#define PAR_MIN_WORK 40000.0

/* The value of an integer expression made of constants and n, if it is one. */
static bool known(const Expr *e, long *v)
{
    long a, b;
    switch (e->k) {
    case X_INT: *v = e->ival; return true;
    case X_BATCH: *v = PAR_EST_BATCH; return true;
    case X_ADD: case X_SUB: case X_MUL: case X_DIV:
        if (!known(e->a, &a) || !known(e->b, &b))
            return false;
        if (e->k == X_DIV && b == 0)
            return false;
        *v = e->k == X_ADD ? a + b : e->k == X_SUB ? a - b : e->k == X_MUL ? a * b : a / b;
        return true;
    default:
        return false;
    }
}

static double trip(const Stmt *s)
{
    long lo, hi;
    if (known(s->lo, &lo) && known(s->hi, &hi))
        return hi > lo ? (double)(hi - lo) : 0.0;
    return PAR_UNKNOWN_TRIP;
}

/* Element operations of one execution of s. */
static double work(const Kernel *k, const Stmt *s)
{
    double w = 0;
    for (int i = 0; i < s->nbody; i++)
        w += work(k, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        w += work(k, s->els[i]);
    switch (s->k) {
    case S_FOR: return w * trip(s);
    case S_STORE: case S_DECL: case S_ASSIGN:
        return w + (s->val && s->val->t == T_V32 ? k->vlen : 1);
    default: return w;
    }
}

static bool captures_vectors(const Kernel *k, const Stmt *s)
{
    bool *cap = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
    loop_captures(k, s, cap);
    bool any = false;
    for (int v = 0; v < k->nvar; v++)
        any = any || (cap[v] && k->var[v].t == T_V32);
    free(cap);
    return any;
}

static void visit(const Kernel *k, Stmt *s)
{
    if (s->k == S_FOR && s->indep && trip(s) >= 2 && work(k, s) >= PAR_MIN_WORK &&
        !captures_vectors(k, s)) {
        s->parallel = true;
        return;
    }
    for (int i = 0; i < s->nbody; i++)
        visit(k, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        visit(k, s->els[i]);
}

void loop_parallelize(Kernel *k, const Target *t)
{
    if (t->cores < 2)
        return;
    visit(k, k->body);
}
