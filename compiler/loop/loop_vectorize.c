/* loop_vectorize.c - the vectorise pass of the loop-IR schedule.
 *
 * Needs: a verified kernel, straight from its lowering, and the target
 * description (its vector width t->vlen).
 * Provides: the loops it can widen rewritten into T_V32 statements of
 * t->vlen lanes (Kernel.vlen set), through loop_split by the width: the
 * outer loop runs over whole vectors, the scalar tail over what is left.
 * kernel_verify holds after it; `indep` and the loops' order of
 * evaluation are kept, so `parallel` is decided afterwards as before.
 *
 * A loop is widened when
 *   - its iterations are independent: the lowering marked it `indep`, or
 *     the pass proves it: every buffer the loop writes is read and written
 *     only at one index, of stride 1 in the loop variable and otherwise
 *     made of variables bound outside the loop, and the body assigns no
 *     variable declared outside it;
 *   - every load and store is unit-stride in the loop variable (lane l
 *     reads buf[a + l]) or does not depend on it (a scalar, broadcast),
 *     inner loops and conditions do not depend on it, and every float
 *     local of the body becomes a vector local;
 *   - every value that depends on it has a vector form: + - * /, min, max,
 *     negation, fma, and selects on float comparisons (&&, || and ! of
 *     them too, as selects of selects); a select that is exactly min or
 *     max becomes one (x < y ? y : x is max(y, x); x < y ? x : y is
 *     min(x, y)), any other a lane-wise select, which evaluates both arms,
 *     so a load in an arm must read an element the iteration reads or
 *     writes unconditionally (the same index, a buffer no smaller).  exp, log,
 *     tanh and sqrt are libm calls per lane in both backends, so loops
 *     that need them stay scalar, as do integer vectors (dropout's hash),
 *     gathers (stride != 1), reductions into a variable declared outside
 *     the loop (sums, running maxima), and loops that already hold vector
 *     statements (the GEMM and Winograd lowerings write their own).
 * Loops are tried innermost first; a loop whose inner loop was widened is
 * left alone.  An outer loop may be widened over inner serial loops (a
 * pooling window), each lane running the inner loop for its own
 * iteration.
 *
 * Every lane computes what its scalar iteration computed, operation for
 * operation, so results are the same bits as the scalar loop, in both
 * backends and for every thread count.
 *
 *   for i in 0..n*784  (relu)        for i_o in 0..n*98
 *     float v = x[i]          =>       vec v_1 = x[i_o*8 ..+8]
 *     y[i] = select(v < 0.0, 0.0, v)   y[i_o*8 ..+8] = max(bcast(0.0), v_1)
 */
#include "loop_vectorize.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "loop_split.h"

/* How the loop being widened sees each variable. */
enum {
    VK_OUTER,  /* bound outside the loop: the same in every lane         */
    VK_INNER,  /* the variable of an inner loop: the same in every lane  */
    VK_INT,    /* an int local of the body: affine in the loop variable, coef[] */
    VK_VEC     /* a float local of the body: one per lane, a vector local */
};
#define NONLIN LONG_MIN   /* depends on the loop variable, not affinely */
#define COEF_MAX (1L << 24)

typedef struct {
    Arena *a;
    Kernel *k;
    int v;              /* the loop variable */
    bool build;         /* false: only check */
    bool ok;
    int nvar;           /* variables at the start (vectors come after) */
    unsigned char *kind;
    long *coef;         /* VK_INT */
    int *vec;           /* VK_VEC: its vector variable (build) */
} Vec;

static bool fail(Vec *w)
{
    w->ok = false;
    return false;
}

/* How e changes with the loop variable: 0 not at all, c for an integer
 * expression that is c*v + (the same in every lane), NONLIN otherwise. */
static long dep(const Vec *w, const Expr *e)
{
    if (!e)
        return 0;
    switch (e->k) {
    case X_INT: case X_FLT: case X_BATCH:
        return 0;
    case X_VAR:
        if (e->var == w->v)
            return 1;
        if (e->var >= w->nvar)
            return NONLIN;
        return w->kind[e->var] == VK_INT ? w->coef[e->var] : w->kind[e->var] == VK_VEC ? NONLIN : 0;
    case X_LOAD:
        return dep(w, e->a) ? NONLIN : 0;
    case X_ADD: case X_SUB: case X_MUL:
        if (e->t == T_I32) {
            long x = dep(w, e->a), y = dep(w, e->b), r;
            if (x == NONLIN || y == NONLIN)
                return NONLIN;
            if (e->k == X_MUL) {
                if (x && y)
                    return NONLIN;
                if (!x && !y)
                    return 0;
                const Expr *c = x ? e->b : e->a;
                if (c->k != X_INT)
                    return NONLIN;
                r = (x ? x : y) * c->ival;
            } else {
                r = e->k == X_ADD ? x + y : x - y;
            }
            return r > COEF_MAX || r < -COEF_MAX ? NONLIN : r;
        }
        break;
    default:
        break;
    }
    return dep(w, e->a) || dep(w, e->b) || dep(w, e->c) ? NONLIN : 0;
}

/* e with the loop variable at lane 0 of the vector (the lowest iteration). */
static Expr *lane0(Vec *w, Expr *e)
{
    return ex_subst(w->a, w->k, e, w->v, ex_int(w->a, 0));
}

static bool is_cmp(ExprKind k)
{
    return k == X_LT || k == X_LE || k == X_EQ || k == X_NE;
}

/* The vector of e's values in the lanes, e a float; NULL (and !ok) when
 * it has no vector form.  When only checking, returns e. */
static Expr *vexpr(Vec *w, Expr *e)
{
    if (!w->ok)
        return NULL;
    Arena *a = w->a;
    long d = dep(w, e);
    if (d == 0)
        return w->build ? ex_bcast(a, lane0(w, e)) : e;
    switch (e->k) {
    case X_LOAD:
        if (dep(w, e->a) != 1)
            return fail(w), NULL;
        return w->build ? ex_vload(a, e->buf, lane0(w, e->a)) : e;
    case X_VAR:
        if (w->kind[e->var] != VK_VEC)
            return fail(w), NULL;
        return w->build ? ex_var(a, w->k, w->vec[e->var]) : e;
    case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MIN: case X_MAX: {
        Expr *x = vexpr(w, e->a), *y = vexpr(w, e->b);
        if (!w->ok)
            return NULL;
        return w->build ? ex_bin(a, e->k, x, y) : e;
    }
    case X_NEG: {
        Expr *x = vexpr(w, e->a);
        if (!w->ok)
            return NULL;
        return w->build ? ex_un(a, X_NEG, x) : e;
    }
    case X_FMA: {
        Expr *x = vexpr(w, e->a), *y = vexpr(w, e->b), *z = vexpr(w, e->c);
        if (!w->ok)
            return NULL;
        return w->build ? ex_fma(a, x, y, z) : e;
    }
    case X_SELECT: {
        /* p < q ? q : p is max(q, p), p < q ? p : q is min(p, q): the same
         * comparison picks the same operand, NaN and -0.0 included */
        const Expr *c = e->a;
        if (c->k == X_LT && c->a->t == T_F32) {
            if (ex_same(e->b, c->b) && ex_same(e->c, c->a)) {
                Expr *q = vexpr(w, c->b), *p = vexpr(w, c->a);
                return w->ok && w->build ? ex_bin(a, X_MAX, q, p) : w->ok ? e : NULL;
            }
            if (ex_same(e->b, c->a) && ex_same(e->c, c->b)) {
                Expr *p = vexpr(w, c->a), *q = vexpr(w, c->b);
                return w->ok && w->build ? ex_bin(a, X_MIN, p, q) : w->ok ? e : NULL;
            }
        }
        /* logic on conditions as selects of selects: a && b ? x : y is
         * a ? (b ? x : y) : y, and so on */
        if (c->k == X_AND)
            return vexpr(w, ex_select(a, c->a, ex_select(a, c->b, e->b, e->c), e->c));
        if (c->k == X_OR)
            return vexpr(w, ex_select(a, c->a, e->b, ex_select(a, c->b, e->b, e->c)));
        if (c->k == X_NOT)
            return vexpr(w, ex_select(a, c->a, e->c, e->b));
        /* a lane-wise select evaluates both arms, as the scalar one does */
        if (!is_cmp(c->k) || c->a->t != T_F32)
            return fail(w), NULL;
        Expr *p = vexpr(w, c->a), *q = vexpr(w, c->b), *x = vexpr(w, e->b), *y = vexpr(w, e->c);
        if (!w->ok)
            return NULL;
        return w->build ? ex_select(a, ex_bin(a, c->k, p, q), x, y) : e;
    }
    default:
        return fail(w), NULL;
    }
}

static void vstmt(Vec *w, const Stmt *s, Stmt *out);

static void vstmts(Vec *w, Stmt *const *v, int n, Stmt *out, bool els)
{
    for (int i = 0; i < n && w->ok; i++) {
        if (!w->build) {
            vstmt(w, v[i], NULL);
            continue;
        }
        Stmt *b = st_block(w->a);
        vstmt(w, v[i], b);
        for (int j = 0; j < b->nbody; j++) {
            if (els)
                st_append_else(w->a, out, b->body[j]);
            else
                st_append(w->a, out, b->body[j]);
        }
    }
}

/* The widened form of s appended to out (when building). */
static void vstmt(Vec *w, const Stmt *s, Stmt *out)
{
    Arena *a = w->a;
    Kernel *k = w->k;
    switch (s->k) {
    case S_BLOCK: {
        Stmt *b = w->build ? st_block(a) : NULL;
        vstmts(w, s->body, s->nbody, b, false);
        if (w->build && w->ok)
            st_append(a, out, b);
        return;
    }
    case S_STORE: {
        if (dep(w, s->idx) != 1) {
            fail(w);
            return;
        }
        Expr *val = vexpr(w, s->val);
        if (w->build && w->ok)
            st_append(a, out, st_store(a, s->buf, lane0(w, s->idx), val, s->accum));
        return;
    }
    case S_DECL:
        if (s->var >= w->nvar) {
            fail(w);
            return;
        }
        if (k->var[s->var].t == T_F32) {
            Expr *val = vexpr(w, s->val);
            w->kind[s->var] = VK_VEC;
            if (w->build && w->ok) {
                w->vec[s->var] = kernel_var(a, k, k->var[s->var].name, T_V32);
                st_append(a, out, st_decl(a, w->vec[s->var], val));
            }
            return;
        }
        w->kind[s->var] = VK_INT;
        w->coef[s->var] = dep(w, s->val);
        if (w->build)
            st_append(a, out, st_decl(a, s->var, lane0(w, s->val)));
        return;
    case S_CALL: /* outlining runs after vectorising */
        fail(w);
        return;
    case S_ASSIGN: {
        if (s->var >= w->nvar || w->kind[s->var] != VK_VEC) {
            fail(w);
            return;
        }
        Expr *val = vexpr(w, s->val);
        if (w->build && w->ok)
            st_append(a, out, st_assign(a, w->vec[s->var], val));
        return;
    }
    case S_FOR: {
        if (dep(w, s->lo) || dep(w, s->hi) || s->parallel) {
            fail(w);
            return;
        }
        w->kind[s->var] = VK_INNER;
        Stmt *f = w->build ? st_for(a, s->var, lane0(w, s->lo), lane0(w, s->hi)) : NULL;
        if (f)
            f->indep = s->indep;
        vstmts(w, s->body, s->nbody, f, false);
        if (w->build && w->ok)
            st_append(a, out, f);
        return;
    }
    case S_IF: {
        if (dep(w, s->cond)) {
            fail(w);
            return;
        }
        Stmt *f = w->build ? st_if(a, lane0(w, s->cond)) : NULL;
        vstmts(w, s->body, s->nbody, f, false);
        vstmts(w, s->els, s->nels, f, true);
        if (w->build && w->ok)
            st_append(a, out, f);
        return;
    }
    }
}

/* Checks (build false) or builds the widened body of loop s into out. */
static bool widen(Arena *a, Kernel *k, const Stmt *s, bool build, Stmt *out)
{
    size_t nv = (size_t)k->nvar + 1;
    Vec w = {a, k, s->var, build, true, k->nvar, netc_alloc(nv), netc_alloc(sizeof(long) * nv),
             netc_alloc(sizeof(int) * nv)};
    vstmts(&w, s->body, s->nbody, out, false);
    free(w.kind);
    free(w.coef);
    free(w.vec);
    return w.ok;
}

/* ---- independence, when the lowering did not promise it ---- */

typedef struct {
    const Kernel *k;
    int v;
    bool *bound;       /* declared or looped over inside the loop */
    const Expr **at;   /* per buffer: the index it is written at, or NULL */
    bool ok;
} Indep;

static bool index_ok(const Indep *d, const Expr *e)
{
    if (!e)
        return true;
    if (e->k == X_VAR && d->bound[e->var])
        return false;
    if (e->k == X_LOAD)
        return false;
    return index_ok(d, e->a) && index_ok(d, e->b) && index_ok(d, e->c);
}

static void mark_bound(Indep *d, const Stmt *s)
{
    if (s->k == S_FOR || s->k == S_DECL)
        d->bound[s->var] = true;
    for (int i = 0; i < s->nbody; i++)
        mark_bound(d, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        mark_bound(d, s->els[i]);
}

static void collect_stores(Indep *d, const Stmt *s)
{
    if (s->k == S_STORE) {
        if (!d->at[s->buf])
            d->at[s->buf] = s->idx;
        else if (!ex_same(d->at[s->buf], s->idx))
            d->ok = false;
    }
    if (s->k == S_ASSIGN && !d->bound[s->var])
        d->ok = false;
    for (int i = 0; i < s->nbody; i++)
        collect_stores(d, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        collect_stores(d, s->els[i]);
}

static void check_loads(Indep *d, const Expr *e)
{
    if (!e)
        return;
    if (e->k == X_LOAD && d->at[e->buf] && !ex_same(d->at[e->buf], e->a))
        d->ok = false;
    check_loads(d, e->a);
    check_loads(d, e->b);
    check_loads(d, e->c);
}

static void check_stmt_loads(Indep *d, const Stmt *s)
{
    check_loads(d, s->lo);
    check_loads(d, s->hi);
    check_loads(d, s->cond);
    check_loads(d, s->idx);
    check_loads(d, s->val);
    for (int i = 0; i < s->nbody; i++)
        check_stmt_loads(d, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        check_stmt_loads(d, s->els[i]);
}

/* Stride 1 in v, made only of v and variables bound outside: distinct
 * iterations touch distinct elements. */
static bool unit_index(const Indep *d, const Expr *e)
{
    if (!index_ok(d, e))
        return false;
    size_t nv = (size_t)d->k->nvar + 1;
    Vec w = {NULL, (Kernel *)d->k, d->v, false, true, d->k->nvar, netc_alloc(nv), NULL, NULL};
    long c = dep(&w, e);
    free(w.kind);
    return c == 1;
}

static bool proven_indep(const Kernel *k, const Stmt *s)
{
    Indep d = {k, s->var, netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1)),
               netc_alloc(sizeof(Expr *) * ((size_t)k->nbuf + 1)), true};
    for (int i = 0; i < s->nbody; i++)
        mark_bound(&d, s->body[i]);
    for (int i = 0; i < s->nbody && d.ok; i++)
        collect_stores(&d, s->body[i]);
    for (int b = 0; b < k->nbuf && d.ok; b++)
        if (d.at[b] && !unit_index(&d, d.at[b]))
            d.ok = false;
    for (int i = 0; i < s->nbody && d.ok; i++)
        check_stmt_loads(&d, s->body[i]);
    free(d.bound);
    free(d.at);
    return d.ok;
}

/* ---- the pass ---- */

/* Fewer iterations than lanes, known at compile time. */
static bool too_short(const Stmt *s, int vlen)
{
    return s->lo->k == X_INT && s->hi->k == X_INT && (long)s->hi->ival - s->lo->ival < vlen;
}

static void vectorize_loop(Arena *a, Kernel *k, Stmt *s, int vlen)
{
    if (s->parallel || too_short(s, vlen) || stmt_has_vectors(k, s))
        return;
    if (!s->indep && !proven_indep(k, s))
        return;
    if (!widen(a, k, s, false, NULL))
        return;
    /* the lowering's promise or the proof: the tail and the blocks are
     * independent too */
    s->indep = true;
    LoopSplit sp;
    if (!loop_split(a, k, s, vlen, &sp))
        return;
    kernel_vectors(k, vlen);
    Stmt *outer = sp.outer;
    outer->nbody = 0;
    bool ok = widen(a, k, sp.inner, true, outer);
    NETC_ASSERT(ok);
}

static void visit(Arena *a, Kernel *k, Stmt *s, int vlen)
{
    for (int i = 0; i < s->nbody; i++)
        visit(a, k, s->body[i], vlen);
    for (int i = 0; i < s->nels; i++)
        visit(a, k, s->els[i], vlen);
    if (s->k == S_FOR)
        vectorize_loop(a, k, s, vlen);
}

void loop_vectorize(Arena *a, Kernel *k, const Target *t)
{
    if (t->vlen < 2 || (k->vlen && k->vlen != t->vlen))
        return;
    visit(a, k, k->body, t->vlen);
}
