/* loop_eval.c - a tree-walking interpreter of the loop IR.
 *
 * Needs: a kernel that passes kernel_verify.  Provides: kernel_eval.
 * Exactly the semantics of loop.h: integers wrap at 32 bits (computed in
 * uint32_t so overflow is defined here too), X_DIV/X_MOD truncate toward
 * zero, floats are single precision with no reassociation, and the math
 * functions are libm's expf/logf/tanhf/sqrtf.  For the unspecified corners
 * it follows what a C backend prints: float min/max as `a < b ? a : b` and
 * `a > b ? a : b`, F2I as a C cast.
 *
 * It is a test tool, so it checks what compiled code cannot: every index
 * against its buffer's size, division by zero, and stores to read-only
 * buffers all stop with NETC_ASSERT.
 */
#include "loop_eval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    int32_t i;
    float f;
    float v[NETC_VMAX];   /* T_V32 lanes */
} Val;

typedef struct {
    const Kernel *k;
    int n;
    float *const *bufs;
    long *size;   /* elements per buffer at this batch size */
    Val *var;
    const KArg *arg; /* the scalar arguments (k->narg) */
} Eval;

static int32_t wrap(uint32_t u)
{
    /* two's complement reinterpretation without implementation-defined casts */
    return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - 2147483648u) - INT32_MAX - 1;
}

static Val eval(const Eval *E, const Expr *e);
static Val flt_bin(ExprKind k, float a, float b);

static Val vi(int32_t i)
{
    Val v = {0};
    v.i = i;
    return v;
}

static Val vf(float f)
{
    Val v = {0};
    v.f = f;
    return v;
}

/* Lane-wise arithmetic, each lane with the scalar semantics. */
static Val vec_op(const Eval *E, const Expr *e)
{
    Val r = {0};
    if (e->k == X_SELECT) {
        Val p = eval(E, e->a->a), q = eval(E, e->a->b), x = eval(E, e->b), y = eval(E, e->c);
        for (int l = 0; l < E->k->vlen; l++)
            r.v[l] = flt_bin(e->a->k, p.v[l], q.v[l]).i ? x.v[l] : y.v[l];
        return r;
    }
    Val a = eval(E, e->a);
    Val b = e->b ? eval(E, e->b) : a;
    Val c = e->c ? eval(E, e->c) : a;
    for (int l = 0; l < E->k->vlen; l++) {
        float x = a.v[l], y = b.v[l];
        switch (e->k) {
        case X_NEG: r.v[l] = -x; break;
        case X_FMA: r.v[l] = fmaf(x, y, c.v[l]); break;
        case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MIN: case X_MAX:
            r.v[l] = flt_bin(e->k, x, y).f;
            break;
        default: NETC_ASSERT(!"vec_op: no vector form"); break;
        }
    }
    return r;
}

static long checked_index(const Eval *E, int buf, int32_t idx)
{
    NETC_ASSERT(buf >= 0 && buf < E->k->nbuf);
    if (idx < 0 || idx >= E->size[buf]) {
        fprintf(stderr, "kernel_eval: %s: index %d out of bounds of %s[%ld]\n", E->k->name,
                (int)idx, E->k->buf[buf].name, E->size[buf]);
        NETC_ASSERT(!"kernel_eval: index out of bounds");
    }
    return idx;
}


static Val int_bin(ExprKind k, int32_t a, int32_t b)
{
    switch (k) {
    case X_ADD: return vi(wrap((uint32_t)a + (uint32_t)b));
    case X_SUB: return vi(wrap((uint32_t)a - (uint32_t)b));
    case X_MUL: return vi(wrap((uint32_t)a * (uint32_t)b));
    case X_DIV:
        NETC_ASSERT(b != 0 && !(a == INT32_MIN && b == -1));
        return vi(a / b);
    case X_MOD:
        NETC_ASSERT(b != 0 && !(a == INT32_MIN && b == -1));
        return vi(a % b);
    case X_MIN: return vi(a < b ? a : b);
    case X_MAX: return vi(a > b ? a : b);
    case X_LT: return vi(a < b);
    case X_LE: return vi(a <= b);
    case X_EQ: return vi(a == b);
    case X_NE: return vi(a != b);
    case X_AND: return vi(a && b);
    case X_OR: return vi(a || b);
    default: NETC_ASSERT(!"int_bin: not a binary kind"); return vi(0);
    }
}

static Val flt_bin(ExprKind k, float a, float b)
{
    switch (k) {
    case X_ADD: return vf(a + b);
    case X_SUB: return vf(a - b);
    case X_MUL: return vf(a * b);
    case X_DIV: return vf(a / b);
    case X_MIN: return vf(a < b ? a : b);
    case X_MAX: return vf(a > b ? a : b);
    case X_LT: return vi(a < b);
    case X_LE: return vi(a <= b);
    case X_EQ: return vi(a == b);
    case X_NE: return vi(a != b);
    default: NETC_ASSERT(!"flt_bin: not a float binary kind"); return vi(0);
    }
}

static Val eval(const Eval *E, const Expr *e)
{
    if (e->t == T_V32 && e->k != X_VAR && e->k != X_LOAD && e->k != X_BCAST)
        return vec_op(E, e);
    switch (e->k) {
    case X_INT: return vi(e->ival);
    case X_FLT: return vf(e->fval);
    case X_VAR: return E->var[e->var];
    case X_BATCH: return vi(E->n);
    case X_ARG:
        NETC_ASSERT(e->ival >= 0 && e->ival < E->k->narg && E->arg);
        return E->k->arg_t[e->ival] == T_I32 ? vi(E->arg[e->ival].i) : vf(E->arg[e->ival].f);
    case X_LOAD: {
        int32_t idx = eval(E, e->a).i;
        if (e->t == T_V32) {
            Val r = {0};
            for (int l = 0; l < E->k->vlen; l++)
                r.v[l] = E->bufs[e->buf][checked_index(E, e->buf, wrap((uint32_t)idx + (uint32_t)l))];
            return r;
        }
        return vf(E->bufs[e->buf][checked_index(E, e->buf, idx)]);
    }
    case X_BCAST: {
        Val r = {0};
        float f = eval(E, e->a).f;
        for (int l = 0; l < E->k->vlen; l++)
            r.v[l] = f;
        return r;
    }
    case X_HSUM: {
        Val a = eval(E, e->a);
        float acc = a.v[0];
        for (int l = 1; l < E->k->vlen; l++)
            acc += a.v[l];
        return vf(acc);
    }
    case X_FMA: return vf(fmaf(eval(E, e->a).f, eval(E, e->b).f, eval(E, e->c).f));
    case X_HASH: return vi(loop_hash(eval(E, e->a).i, eval(E, e->b).i));
    case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MOD: case X_MIN: case X_MAX:
    case X_LT: case X_LE: case X_EQ: case X_NE: {
        Val a = eval(E, e->a), b = eval(E, e->b);
        /* comparisons take their operand type from the operands */
        return e->a->t == T_I32 ? int_bin(e->k, a.i, b.i) : flt_bin(e->k, a.f, b.f);
    }
    /* && and || on 0/1 values; both sides are side-effect free, but
     * short-circuit like C anyway. */
    case X_AND: return vi(eval(E, e->a).i ? eval(E, e->b).i != 0 : 0);
    case X_OR: return vi(eval(E, e->a).i ? 1 : eval(E, e->b).i != 0);
    case X_NOT: return vi(!eval(E, e->a).i);
    case X_NEG: return vf(-eval(E, e->a).f);
    case X_EXP: return vf(expf(eval(E, e->a).f));
    case X_LOG: return vf(logf(eval(E, e->a).f));
    case X_TANH: return vf(tanhf(eval(E, e->a).f));
    case X_SQRT: return vf(sqrtf(eval(E, e->a).f));
    case X_SELECT: return eval(E, e->a).i ? eval(E, e->b) : eval(E, e->c);
    case X_I2F: return vf((float)eval(E, e->a).i);
    case X_F2I: {
        float f = eval(E, e->a).f;
        /* (int)f is undefined outside int's range or for NaN */
        NETC_ASSERT(f > -2147483649.0f && f < 2147483648.0f);
        return vi((int32_t)f);
    }
    case X_COUNT: break;
    }
    NETC_ASSERT(!"eval: unknown expression kind");
    return vi(0);
}

static void exec(const Eval *E, const Stmt *s);

static void exec_list(const Eval *E, Stmt *const *v, int n)
{
    for (int i = 0; i < n; i++)
        exec(E, v[i]);
}

static void exec(const Eval *E, const Stmt *s)
{
    switch (s->k) {
    case S_BLOCK:
        exec_list(E, s->body, s->nbody);
        break;
    case S_FOR: {
        /* bounds are evaluated once, before the first iteration */
        int32_t lo = eval(E, s->lo).i, hi = eval(E, s->hi).i;
        /* A parallel loop runs backwards here: a lowering whose iterations
         * depend on each other then disagrees with the compiled code. */
        if (s->parallel) {
            for (int32_t i = hi - 1; i >= lo && hi > lo; i--) {
                E->var[s->var].i = i;
                exec_list(E, s->body, s->nbody);
            }
            break;
        }
        for (int32_t i = lo; i < hi; i++) {
            E->var[s->var].i = i;
            exec_list(E, s->body, s->nbody);
        }
        break;
    }
    case S_IF:
        if (eval(E, s->cond).i)
            exec_list(E, s->body, s->nbody);
        else
            exec_list(E, s->els, s->nels);
        break;
    case S_STORE: {
        NETC_ASSERT(E->k->buf[s->buf].written);
        int32_t idx = eval(E, s->idx).i;
        Val v = eval(E, s->val);
        if (s->val->t == T_V32) {
            for (int l = 0; l < E->k->vlen; l++) {
                float *p = &E->bufs[s->buf][checked_index(E, s->buf, wrap((uint32_t)idx + (uint32_t)l))];
                *p = s->accum ? *p + v.v[l] : v.v[l];
            }
            break;
        }
        float *p = &E->bufs[s->buf][checked_index(E, s->buf, idx)];
        *p = s->accum ? *p + v.f : v.f;
        break;
    }
    case S_DECL:
    case S_ASSIGN:
        E->var[s->var] = eval(E, s->val);
        break;
    case S_CALL: {
        /* the callee's accesses are checked against the caller's sizes */
        const Kernel *c = s->callee;
        NETC_ASSERT(c && c->narg == s->narg);
        KArg *arg = netc_alloc(sizeof(KArg) * ((size_t)s->narg + 1));
        for (int i = 0; i < s->narg; i++) {
            Val v = eval(E, s->arg[i]);
            arg[i] = (KArg){v.i, v.f};
        }
        float **bufs = netc_alloc(sizeof(float *) * ((size_t)c->nbuf + 1));
        long *size = netc_alloc(sizeof(long) * ((size_t)c->nbuf + 1));
        for (int i = 0; i < c->nbuf; i++) {
            bufs[i] = E->bufs[s->cbuf[i]];
            size[i] = E->size[s->cbuf[i]];
        }
        Eval C = {c, E->n, bufs, size, netc_alloc(sizeof(Val) * ((size_t)c->nvar + 1)), arg};
        exec(&C, c->body);
        free(C.var);
        free(arg);
        free(bufs);
        free(size);
        break;
    }
    }
}

/* Runs f with the arguments `arg`, checking every access against the
 * buffer sizes of `sized` (f itself, or a member of f's family). */
static void run(const Kernel *f, const Kernel *sized, const KArg *arg, int n, float *const *bufs)
{
    NETC_ASSERT(n >= 0 && f->nbuf == sized->nbuf);
    Eval E = {f, n, bufs, NULL, NULL, arg};
    E.size = netc_alloc(sizeof(long) * ((size_t)f->nbuf + 1));
    E.var = netc_alloc(sizeof(Val) * ((size_t)f->nvar + 1));
    for (int i = 0; i < f->nbuf; i++) {
        E.size[i] = sized->buf[i].size_fixed + sized->buf[i].size_per_n * n;
        NETC_ASSERT(bufs[i] || E.size[i] == 0);
    }
    exec(&E, f->body);
    free(E.size);
    free(E.var);
}

void kernel_eval(const Kernel *k, int n, float *const *bufs)
{
    NETC_ASSERT(k->narg == 0);
    run(k, k, NULL, n, bufs);
}

void kernel_eval_call(const Kernel *k, int n, float *const *bufs)
{
    run(kernel_callee(k), k, k->impl ? k->arg : NULL, n, bufs);
}
