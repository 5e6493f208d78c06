/* loop.c - the loop IR: builder, constant folding, verifier, printer.
 *
 * Needs: an Arena for every node.  Provides: the functions of loop.h.
 * Invalidates: nothing (kernels are immutable once built, except by the
 * builder calls that append to them).
 *
 * The builder folds only what is exact under the semantics in loop.h:
 *
 *   ex_bin(X_ADD, ex_bin(X_MUL, b, 6), 0)   ->  b*6         (int identity)
 *   ex_bin(X_MUL, ex_int(4), ex_int(7))     ->  28          (int constants)
 *   ex_bin(X_ADD, x, ex_flt(0))             ->  x + 0.0     (kept: -0.0 + 0.0 is +0.0)
 *   ex_bin(X_MUL, ex_flt(0.5), ex_flt(3))   ->  1.5         (float constants)
 *
 * Floats are never reassociated; integer expressions have no side effects
 * (a load in one is only ever inside X_F2I), so x*0 -> 0 is safe for ints.
 */
#include "loop.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- arrays that grow inside an arena ---- */

/* Doubles *cap and copies; the old array stays in the arena until it is
 * freed, which costs little next to the kernel's own size. */
static void *grow(Arena *a, void *old, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return old;
    int ncap = *cap ? *cap * 2 : 8;
    void *p = arena_alloc(a, (size_t)ncap * elem);
    if (n)
        memcpy(p, old, (size_t)n * elem);
    *cap = ncap;
    return p;
}

/* ---- kernels, buffers, variables ---- */

Kernel *kernel_new(Arena *a, const char *name, const char *comment)
{
    NETC_ASSERT(name && *name);
    Kernel *k = arena_alloc(a, sizeof(Kernel));
    k->name = arena_strdup(a, name);
    k->comment = comment ? arena_strdup(a, comment) : NULL;
    k->body = st_block(a);
    return k;
}

/* Names the C backend cannot give a buffer or variable: the batch argument,
 * C99 keywords and the few library functions it calls.  Names starting
 * with netc_ belong to the generated helpers. */
static const char *const reserved[] = {
    "n", "auto", "break", "case", "char", "const", "continue", "default", "do",
    "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline",
    "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned",
    "void", "volatile", "while", "expf", "logf", "tanhf", "sqrtf", "size_t",
    "NULL",
};

struct KName {
    const char *name;  /* NULL: a free slot */
    int next;          /* the first suffix unique_name has not ruled out */
};

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The slot of name s in k's set: where it is, or the free slot it would take. */
static struct KName *name_slot(const Kernel *k, const char *s)
{
    uint32_t mask = (uint32_t)k->names_cap - 1, i = name_hash(s) & mask;
    while (k->names[i].name && strcmp(k->names[i].name, s))
        i = (i + 1) & mask;
    return &k->names[i];
}

/* Adds s to k's set (which grows at half full). */
static void name_add(Arena *a, Kernel *k, const char *s)
{
    if (2 * (k->names_n + 1) > k->names_cap) {
        struct KName *old = k->names;
        int cap = k->names_cap;
        k->names_cap = cap ? 2 * cap : 64;
        k->names = arena_alloc(a, sizeof(struct KName) * (size_t)k->names_cap);
        for (int i = 0; i < cap; i++)
            if (old[i].name)
                *name_slot(k, old[i].name) = old[i];
    }
    struct KName *e = name_slot(k, s);
    NETC_ASSERT(!e->name);
    *e = (struct KName){s, 1};
    k->names_n++;
}

static bool name_taken(const Kernel *k, const char *s)
{
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (s[0] == reserved[i][0] && !strcmp(s, reserved[i]))
            return true;
    if (!strncmp(s, "netc_", 5))
        return true;
    return k->names_cap && name_slot(k, s)->name;
}

/* A C identifier close to `want`, different from every buffer and
 * variable of k: "oc", then "oc_1", "oc_2", ... (the set remembers, per
 * name, how far its suffixes are taken); added to k's set. */
static const char *unique_name(Arena *a, Kernel *k, const char *want)
{
    size_t len = want ? strlen(want) : 0;
    char *base = arena_alloc(a, len + 2);
    size_t j = 0;
    /* no suffix can free a name that starts with a digit or netc_ */
    if (len == 0 || (want[0] >= '0' && want[0] <= '9') || !strncmp(want, "netc_", 5))
        base[j++] = 'v';
    for (size_t i = 0; i < len; i++) {
        char c = want[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_';
        base[j++] = ok ? c : '_';
    }
    base[j] = '\0';
    const char *s = base;
    if (name_taken(k, base)) {
        struct KName *e = k->names_cap ? name_slot(k, base) : NULL;
        int i = e && e->name ? e->next : 1; /* a reserved word: from 1 */
        char buf[32];
        for (;; i++) {
            snprintf(buf, sizeof buf, "_%d", i);
            char *t = arena_alloc(a, j + strlen(buf) + 1);
            memcpy(t, base, j);
            strcpy(t + j, buf);
            if (!name_taken(k, t)) {
                s = t;
                break;
            }
        }
        if (e && e->name)
            e->next = i + 1;
    }
    name_add(a, k, s);
    return s;
}

int kernel_buf(Arena *a, Kernel *k, const char *name, bool written, long size_fixed, long size_per_n)
{
    NETC_ASSERT(size_fixed >= 0 && size_per_n >= 0);
    const char *s = unique_name(a, k, name);
    k->buf = grow(a, k->buf, k->nbuf, &k->capbuf, sizeof(LBuf));
    k->buf[k->nbuf] = (LBuf){s, written, size_fixed, size_per_n, false};
    return k->nbuf++;
}

int kernel_scratch(Arena *a, Kernel *k, const char *name, long size_fixed, long size_per_n)
{
    NETC_ASSERT((size_fixed > 0) != (size_per_n > 0));
    int b = kernel_buf(a, k, name, true, size_fixed, size_per_n);
    k->buf[b].scratch = true;
    return b;
}

int kernel_var(Arena *a, Kernel *k, const char *name, LType t)
{
    const char *s = unique_name(a, k, name);
    k->var = grow(a, k->var, k->nvar, &k->capvar, sizeof(LVar));
    k->var[k->nvar] = (LVar){s, t};
    return k->nvar++;
}

/* ---- expressions ---- */

static Expr *expr_new(Arena *a, ExprKind kind, LType t)
{
    Expr *e = arena_alloc(a, sizeof(Expr));
    e->k = kind;
    e->t = t;
    return e;
}

Expr *ex_int(Arena *a, int v)
{
    Expr *e = expr_new(a, X_INT, T_I32);
    e->ival = v;
    return e;
}

Expr *ex_flt(Arena *a, float v)
{
    Expr *e = expr_new(a, X_FLT, T_F32);
    e->fval = v;
    return e;
}

Expr *ex_var(Arena *a, const Kernel *k, int var)
{
    NETC_ASSERT(var >= 0 && var < k->nvar);
    Expr *e = expr_new(a, X_VAR, k->var[var].t);
    e->var = var;
    return e;
}

Expr *ex_batch(Arena *a)
{
    return expr_new(a, X_BATCH, T_I32);
}

Expr *ex_arg(Arena *a, const Kernel *k, int i)
{
    NETC_ASSERT(i >= 0 && i < k->narg);
    Expr *e = expr_new(a, X_ARG, k->arg_t[i]);
    e->ival = i;
    return e;
}

Expr *ex_load(Arena *a, int buf, Expr *idx)
{
    Expr *e = expr_new(a, X_LOAD, T_F32);
    e->buf = buf;
    e->a = idx;
    return e;
}

static bool is_int(const Expr *e, int v)
{
    return e->k == X_INT && e->t == T_I32 && e->ival == v;
}

static bool is_cmp(ExprKind k)
{
    return k == X_LT || k == X_LE || k == X_EQ || k == X_NE;
}

static bool is_logic(ExprKind k)
{
    return k == X_AND || k == X_OR;
}

static bool is_arith(ExprKind k)
{
    return k >= X_ADD && k <= X_MAX;
}

/* Folds two int constants when the result is defined and fits in 32 bits;
 * returns false otherwise (overflow and division by zero stay in the code,
 * where they are lowering bugs the verifier cannot see). */
static bool fold_int(ExprKind k, long long x, long long y, long long *r)
{
    switch (k) {
    case X_ADD: *r = x + y; break;
    case X_SUB: *r = x - y; break;
    case X_MUL: *r = x * y; break;
    case X_DIV: if (y == 0) return false; *r = x / y; break;
    case X_MOD: if (y == 0) return false; *r = x % y; break;
    case X_MIN: *r = x < y ? x : y; break;
    case X_MAX: *r = x > y ? x : y; break;
    case X_LT: *r = x < y; break;
    case X_LE: *r = x <= y; break;
    case X_EQ: *r = x == y; break;
    case X_NE: *r = x != y; break;
    case X_AND: *r = x && y; break;
    case X_OR: *r = x || y; break;
    default: return false;
    }
    return *r >= INT_MIN && *r <= INT_MAX;
}

/* The four basic operations are computed in double and rounded once to
 * float: double carries more than 2*24+2 bits, so this equals the
 * correctly rounded float result the target computes. */
static bool fold_flt(ExprKind k, float x, float y, Expr *out)
{
    out->t = T_F32;
    switch (k) {
    case X_ADD: out->fval = (float)((double)x + (double)y); break;
    case X_SUB: out->fval = (float)((double)x - (double)y); break;
    case X_MUL: out->fval = (float)((double)x * (double)y); break;
    case X_DIV: out->fval = (float)((double)x / (double)y); break;
    case X_MIN: out->fval = x < y ? x : y; break;
    case X_MAX: out->fval = x > y ? x : y; break;
    case X_LT: out->t = T_I32; out->ival = x < y; break;
    case X_LE: out->t = T_I32; out->ival = x <= y; break;
    case X_EQ: out->t = T_I32; out->ival = x == y; break;
    case X_NE: out->t = T_I32; out->ival = x != y; break;
    default: return false;
    }
    return true;
}

static uint32_t hash_mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

int loop_hash(int a, int b)
{
    return (int)(hash_mix(hash_mix((uint32_t)a) ^ (uint32_t)b) >> 8);
}

Expr *ex_bin(Arena *a, ExprKind k, Expr *l, Expr *r)
{
    NETC_ASSERT(l && r);
    NETC_ASSERT(is_arith(k) || is_cmp(k) || is_logic(k) || k == X_HASH);
    bool ints = l->t == T_I32 && r->t == T_I32;
    if (ints && l->k == X_INT && r->k == X_INT) {
        long long v;
        if (fold_int(k, l->ival, r->ival, &v))
            return ex_int(a, (int)v);
    }
    if (l->t == T_F32 && r->t == T_F32 && l->k == X_FLT && r->k == X_FLT) {
        Expr tmp = {0};
        if (fold_flt(k, l->fval, r->fval, &tmp))
            return tmp.t == T_F32 ? ex_flt(a, tmp.fval) : ex_int(a, tmp.ival);
    }
    if (ints) {
        switch (k) {
        case X_ADD:
            if (is_int(l, 0)) return r;
            if (is_int(r, 0)) return l;
            /* (x + c1) + c2 -> x + (c1 + c2): index arithmetic reads better */
            if (r->k == X_INT && l->k == X_ADD && l->b->k == X_INT) {
                long long v;
                if (fold_int(X_ADD, l->b->ival, r->ival, &v))
                    return ex_bin(a, X_ADD, l->a, ex_int(a, (int)v));
            }
            break;
        case X_SUB:
            if (is_int(r, 0)) return l;
            break;
        case X_MUL:
            if (is_int(l, 0) || is_int(r, 0)) return ex_int(a, 0);
            if (is_int(l, 1)) return r;
            if (is_int(r, 1)) return l;
            break;
        case X_DIV:
            if (is_int(r, 1)) return l;
            break;
        case X_MOD:
            if (is_int(r, 1)) return ex_int(a, 0);
            break;
        /* Operands of AND/OR are 0/1 by contract, so a constant decides
         * or disappears. */
        case X_AND:
            if (is_int(l, 0) || is_int(r, 0)) return ex_int(a, 0);
            if (is_int(l, 1)) return r;
            if (is_int(r, 1)) return l;
            break;
        case X_OR:
            if (is_int(l, 1) || is_int(r, 1)) return ex_int(a, 1);
            if (is_int(l, 0)) return r;
            if (is_int(r, 0)) return l;
            break;
        default:
            break;
        }
    }
    LType t = is_cmp(k) || is_logic(k) ? T_I32 : l->t;
    Expr *e = expr_new(a, k, t);
    e->a = l;
    e->b = r;
    return e;
}

Expr *ex_un(Arena *a, ExprKind k, Expr *x)
{
    NETC_ASSERT(x);
    LType t;
    switch (k) {
    case X_NOT:
        if (x->k == X_INT && x->t == T_I32)
            return ex_int(a, !x->ival);
        t = T_I32;
        break;
    case X_NEG:
        if (x->k == X_FLT && x->t == T_F32)
            return ex_flt(a, -x->fval);
        t = x->t == T_V32 ? T_V32 : T_F32;
        break;
    /* Not folded: the host's libm need not round like the target's. */
    case X_EXP: case X_LOG: case X_TANH: case X_SQRT:
        t = T_F32;
        break;
    case X_I2F:
        if (x->k == X_INT && x->t == T_I32)
            return ex_flt(a, (float)x->ival);
        t = T_F32;
        break;
    case X_F2I:
        /* (int)f is undefined outside int's range, so only fold inside it */
        if (x->k == X_FLT && x->t == T_F32 && x->fval > -2147483649.0f && x->fval < 2147483648.0f)
            return ex_int(a, (int)x->fval);
        t = T_I32;
        break;
    default:
        NETC_ASSERT(!"ex_un: not a unary expression kind");
        return NULL;
    }
    Expr *e = expr_new(a, k, t);
    e->a = x;
    return e;
}

void kernel_vectors(Kernel *k, int vlen)
{
    NETC_ASSERT(vlen >= 2 && vlen <= NETC_VMAX && (vlen & (vlen - 1)) == 0);
    NETC_ASSERT(k->vlen == 0 || k->vlen == vlen);
    k->vlen = vlen;
}

Expr *ex_vload(Arena *a, int buf, Expr *idx)
{
    Expr *e = ex_load(a, buf, idx);
    e->t = T_V32;
    return e;
}

Expr *ex_bcast(Arena *a, Expr *x)
{
    NETC_ASSERT(x && x->t == T_F32);
    Expr *e = expr_new(a, X_BCAST, T_V32);
    e->a = x;
    return e;
}

Expr *ex_fma(Arena *a, Expr *x, Expr *y, Expr *z)
{
    NETC_ASSERT(x && y && z && x->t != T_I32);
    Expr *e = expr_new(a, X_FMA, x->t);
    e->a = x;
    e->b = y;
    e->c = z;
    return e;
}

Expr *ex_hsum(Arena *a, const Kernel *k, int var)
{
    Expr *e = expr_new(a, X_HSUM, T_F32);
    e->a = ex_var(a, k, var);
    return e;
}

Expr *ex_select(Arena *a, Expr *c, Expr *t, Expr *f)
{
    NETC_ASSERT(c && t && f);
    if (c->k == X_INT && c->t == T_I32)
        return c->ival ? t : f;
    Expr *e = expr_new(a, X_SELECT, t->t);
    e->a = c;
    e->b = t;
    e->c = f;
    return e;
}

/* ---- statements ---- */

static Stmt *stmt_new(Arena *a, StmtKind k)
{
    Stmt *s = arena_alloc(a, sizeof(Stmt));
    s->k = k;
    return s;
}

Stmt *st_block(Arena *a)
{
    return stmt_new(a, S_BLOCK);
}

Stmt *st_for(Arena *a, int var, Expr *lo, Expr *hi)
{
    Stmt *s = stmt_new(a, S_FOR);
    s->var = var;
    s->lo = lo;
    s->hi = hi;
    return s;
}

Stmt *st_if(Arena *a, Expr *cond)
{
    Stmt *s = stmt_new(a, S_IF);
    s->cond = cond;
    return s;
}

Stmt *st_store(Arena *a, int buf, Expr *idx, Expr *val, bool accum)
{
    Stmt *s = stmt_new(a, S_STORE);
    s->buf = buf;
    s->idx = idx;
    s->val = val;
    s->accum = accum;
    return s;
}

Stmt *st_decl(Arena *a, int var, Expr *init)
{
    Stmt *s = stmt_new(a, S_DECL);
    s->var = var;
    s->val = init;
    return s;
}

Stmt *st_assign(Arena *a, int var, Expr *val)
{
    Stmt *s = stmt_new(a, S_ASSIGN);
    s->var = var;
    s->val = val;
    return s;
}

Stmt *st_call(Arena *a, const Kernel *callee, const int *cbuf, Expr **args, int nargs)
{
    Stmt *s = stmt_new(a, S_CALL);
    s->callee = callee;
    int *m = arena_alloc(a, sizeof(int) * ((size_t)callee->nbuf + 1));
    memcpy(m, cbuf, sizeof(int) * (size_t)callee->nbuf);
    s->cbuf = m;
    s->narg = nargs;
    s->arg = nargs ? arena_alloc(a, sizeof(Expr *) * (size_t)nargs) : NULL;
    for (int i = 0; i < nargs; i++)
        s->arg[i] = args[i];
    return s;
}

void st_append(Arena *a, Stmt *parent, Stmt *child)
{
    NETC_ASSERT(parent && child);
    NETC_ASSERT(parent->k == S_BLOCK || parent->k == S_FOR || parent->k == S_IF);
    parent->body = grow(a, parent->body, parent->nbody, &parent->capbody, sizeof(Stmt *));
    parent->body[parent->nbody++] = child;
}

void st_append_else(Arena *a, Stmt *parent, Stmt *child)
{
    NETC_ASSERT(parent && child && parent->k == S_IF);
    parent->els = grow(a, parent->els, parent->nels, &parent->capels, sizeof(Stmt *));
    parent->els[parent->nels++] = child;
}

/* ---- rewriting, for the schedule passes ---- */

bool ex_same(const Expr *x, const Expr *y)
{
    if (!x || !y)
        return x == y;
    uint32_t fx, fy;
    memcpy(&fx, &x->fval, sizeof fx);
    memcpy(&fy, &y->fval, sizeof fy);
    return x->k == y->k && x->t == y->t && x->ival == y->ival && fx == fy && x->var == y->var &&
           x->buf == y->buf && ex_same(x->a, y->a) && ex_same(x->b, y->b) && ex_same(x->c, y->c);
}

typedef struct {
    Arena *a;
    Kernel *k;
    int var;       /* replaced by `with` (-1: none) */
    Expr *with;
    int *ren;      /* per variable of the source: its new id, or -1 */
    int nren;
    bool fresh;    /* every S_DECL of the copy declares a new variable */
} Rewrite;

static Expr *rewrite_expr(const Rewrite *r, Expr *e)
{
    if (!e)
        return NULL;
    if (e->k == X_VAR) {
        if (e->var == r->var)
            return r->with;
        if (e->var < r->nren && r->ren[e->var] >= 0)
            return ex_var(r->a, r->k, r->ren[e->var]);
        return e;
    }
    Expr *a = rewrite_expr(r, e->a), *b = rewrite_expr(r, e->b), *c = rewrite_expr(r, e->c);
    if (a == e->a && b == e->b && c == e->c)
        return e;
    /* rebuilt through the builder, which folds what the substitution made
     * constant (x + 0 when a loop variable becomes 0) */
    if (e->t != T_V32 && (is_arith(e->k) || is_cmp(e->k) || is_logic(e->k) || e->k == X_HASH))
        return ex_bin(r->a, e->k, a, b);
    if (e->k == X_NOT || e->k == X_F2I ||
        (e->t == T_F32 && (e->k == X_NEG || e->k == X_I2F || (e->k >= X_EXP && e->k <= X_SQRT))))
        return ex_un(r->a, e->k, a);
    if (e->k == X_SELECT && e->t != T_V32 && e->a->t == T_I32)
        return ex_select(r->a, a, b, c);
    Expr *n = expr_new(r->a, e->k, e->t);
    *n = *e;
    n->a = a;
    n->b = b;
    n->c = c;
    return n;
}

static Stmt *rewrite_stmt(const Rewrite *r, const Stmt *s)
{
    Stmt *n = stmt_new(r->a, s->k);
    *n = *s;
    n->body = NULL;
    n->nbody = n->capbody = 0;
    n->els = NULL;
    n->nels = n->capels = 0;
    n->lo = rewrite_expr(r, s->lo);
    n->hi = rewrite_expr(r, s->hi);
    n->cond = rewrite_expr(r, s->cond);
    n->idx = rewrite_expr(r, s->idx);
    n->val = rewrite_expr(r, s->val);
    if (s->narg) {
        n->arg = arena_alloc(r->a, sizeof(Expr *) * (size_t)s->narg);
        for (int i = 0; i < s->narg; i++)
            n->arg[i] = rewrite_expr(r, s->arg[i]);
    }
    if (s->k == S_DECL && r->fresh && s->var < r->nren) {
        r->ren[s->var] = kernel_var(r->a, r->k, r->k->var[s->var].name, r->k->var[s->var].t);
        n->var = r->ren[s->var];
    } else if ((s->k == S_ASSIGN || s->k == S_DECL) && s->var < r->nren && r->ren[s->var] >= 0) {
        n->var = r->ren[s->var];
    }
    for (int i = 0; i < s->nbody; i++)
        st_append(r->a, n, rewrite_stmt(r, s->body[i]));
    for (int i = 0; i < s->nels; i++)
        st_append_else(r->a, n, rewrite_stmt(r, s->els[i]));
    return n;
}

Expr *ex_subst(Arena *a, Kernel *k, Expr *e, int var, Expr *with)
{
    Rewrite r = {a, k, var, with, NULL, 0, false};
    return rewrite_expr(&r, e);
}

Stmt *st_clone(Arena *a, Kernel *k, const Stmt *s, int var, Expr *with, bool fresh_locals)
{
    int nren = k->nvar;
    int *ren = netc_alloc(sizeof(int) * ((size_t)nren + 1));
    for (int i = 0; i < nren; i++)
        ren[i] = -1;
    Rewrite r = {a, k, var, with, ren, nren, fresh_locals};
    Stmt *n = rewrite_stmt(&r, s);
    free(ren);
    return n;
}

/* ---- printing ---- */

/* Precedence for parenthesising, C's order: || && ==,!= <,<= +,- *,/,%
 * unary, primary. */
enum { P_OR = 1, P_AND, P_EQ, P_REL, P_ADD, P_MUL, P_UNARY, P_PRIMARY };

static int prec(const Expr *e)
{
    switch (e->k) {
    case X_OR: return P_OR;
    case X_AND: return P_AND;
    case X_EQ: case X_NE: return P_EQ;
    case X_LT: case X_LE: return P_REL;
    case X_ADD: case X_SUB: return P_ADD;
    case X_MUL: case X_DIV: case X_MOD: return P_MUL;
    case X_NEG: case X_NOT: return P_UNARY;
    case X_INT: return e->ival < 0 ? P_UNARY : P_PRIMARY;
    case X_FLT: return signbit(e->fval) ? P_UNARY : P_PRIMARY;
    default: return P_PRIMARY;
    }
}

static const char *binop(ExprKind k)
{
    switch (k) {
    case X_ADD: return " + ";
    case X_SUB: return " - ";
    case X_MUL: return "*";
    case X_DIV: return "/";
    case X_MOD: return "%";
    case X_LT: return " < ";
    case X_LE: return " <= ";
    case X_EQ: return " == ";
    case X_NE: return " != ";
    case X_AND: return " && ";
    case X_OR: return " || ";
    default: return NULL;
    }
}

static const char *fn_name(ExprKind k)
{
    switch (k) {
    case X_MIN: return "min";
    case X_MAX: return "max";
    case X_EXP: return "exp";
    case X_LOG: return "log";
    case X_TANH: return "tanh";
    case X_SQRT: return "sqrt";
    case X_I2F: return "float";
    case X_F2I: return "int";
    case X_FMA: return "fma";
    case X_BCAST: return "bcast";
    case X_HSUM: return "hsum";
    case X_HASH: return "hash";
    default: return NULL;
    }
}

/* The shortest decimal that reads back as the same float, with a '.' or
 * exponent so it reads as a float: 0.1 rather than 0.100000001. */
static void put_float(Buf *b, float v)
{
    if (isnan(v)) {
        buf_puts(b, "nan");
        return;
    }
    if (isinf(v)) {
        buf_puts(b, v < 0 ? "-inf" : "inf");
        return;
    }
    char s[32];
    float_shortest(s, sizeof s, v);
    buf_puts(b, s);
    if (!strpbrk(s, ".e"))
        buf_puts(b, ".0");
}

static void put_var(Buf *b, const Kernel *k, int v)
{
    if (v >= 0 && v < k->nvar && k->var[v].name)
        buf_puts(b, k->var[v].name);
    else
        buf_printf(b, "var#%d", v);
}

static void put_bufname(Buf *b, const Kernel *k, int i)
{
    if (i >= 0 && i < k->nbuf && k->buf[i].name)
        buf_puts(b, k->buf[i].name);
    else
        buf_printf(b, "buf#%d", i);
}

/* Prints e; parenthesised when its precedence is below `min`.  Tolerates
 * malformed trees, since the verifier prints the statement it rejects. */
static void put_expr(Buf *b, const Kernel *k, const Expr *e, int min)
{
    if (!e) {
        buf_puts(b, "<null>");
        return;
    }
    int p = prec(e);
    bool paren = p < min;
    if (paren)
        buf_puts(b, "(");
    const char *op = binop(e->k);
    const char *fn = fn_name(e->k);
    switch (e->k) {
    case X_INT: buf_printf(b, "%d", e->ival); break;
    case X_FLT: put_float(b, e->fval); break;
    case X_VAR: put_var(b, k, e->var); break;
    case X_BATCH: buf_puts(b, "n"); break;
    case X_ARG: buf_printf(b, "arg%d", e->ival); break;
    case X_LOAD:
        put_bufname(b, k, e->buf);
        buf_puts(b, "[");
        put_expr(b, k, e->a, 0);
        if (e->t == T_V32)
            buf_printf(b, " ..+%d", k->vlen);
        buf_puts(b, "]");
        break;
    case X_NEG: case X_NOT: {
        buf_puts(b, e->k == X_NEG ? "-" : "!");
        /* "-(-x)", never "--x" */
        bool wrap = e->a && prec(e->a) == P_UNARY;
        put_expr(b, k, e->a, wrap ? P_PRIMARY + 1 : P_UNARY);
        break;
    }
    case X_SELECT: case X_FMA:
        buf_puts(b, e->k == X_FMA ? "fma(" : "select(");
        put_expr(b, k, e->a, 0);
        buf_puts(b, ", ");
        put_expr(b, k, e->b, 0);
        buf_puts(b, ", ");
        put_expr(b, k, e->c, 0);
        buf_puts(b, ")");
        break;
    default:
        if (op) {
            put_expr(b, k, e->a, p);
            buf_puts(b, op);
            put_expr(b, k, e->b, p + 1);
        } else if (fn) {
            buf_printf(b, "%s(", fn);
            put_expr(b, k, e->a, 0);
            if (e->k == X_MIN || e->k == X_MAX || e->k == X_HASH) {
                buf_puts(b, ", ");
                put_expr(b, k, e->b, 0);
            }
            buf_puts(b, ")");
        } else {
            buf_printf(b, "expr#%d", (int)e->k);
        }
        break;
    }
    if (paren)
        buf_puts(b, ")");
}

static const char *type_name(LType t)
{
    return t == T_I32 ? "int" : t == T_F32 ? "float" : t == T_V32 ? "vec" : "type?";
}

/* One line for s, without its body: "for oc in 0..6", "y[i] += v". */
static void put_stmt_head(Buf *b, const Kernel *k, const Stmt *s)
{
    switch (s->k) {
    case S_BLOCK:
        buf_puts(b, "block");
        break;
    case S_FOR:
        buf_puts(b, s->parallel ? "parallel for " : "for ");
        put_var(b, k, s->var);
        buf_puts(b, " in ");
        put_expr(b, k, s->lo, 0);
        buf_puts(b, "..");
        put_expr(b, k, s->hi, 0);
        break;
    case S_IF:
        buf_puts(b, "if ");
        put_expr(b, k, s->cond, 0);
        break;
    case S_STORE:
        put_bufname(b, k, s->buf);
        buf_puts(b, "[");
        put_expr(b, k, s->idx, 0);
        if (s->val && s->val->t == T_V32)
            buf_printf(b, " ..+%d", k->vlen);
        buf_puts(b, s->accum ? "] += " : "] = ");
        put_expr(b, k, s->val, 0);
        break;
    case S_DECL:
        buf_printf(b, "%s ", s->var >= 0 && s->var < k->nvar ? type_name(k->var[s->var].t) : "?");
        put_var(b, k, s->var);
        buf_puts(b, " = ");
        put_expr(b, k, s->val, 0);
        break;
    case S_ASSIGN:
        put_var(b, k, s->var);
        buf_puts(b, " = ");
        put_expr(b, k, s->val, 0);
        break;
    case S_CALL:
        buf_printf(b, "call %s(", s->callee ? s->callee->name : "?");
        for (int i = 0; s->callee && i < s->callee->nbuf; i++) {
            buf_puts(b, i ? ", " : "");
            put_bufname(b, k, s->cbuf[i]);
        }
        for (int i = 0; i < s->narg; i++) {
            buf_puts(b, i ? ", " : "; ");
            put_expr(b, k, s->arg[i], 0);
        }
        buf_puts(b, ")");
        break;
    }
}

static void put_stmts(Buf *b, const Kernel *k, Stmt *const *v, int n, int depth);

static void put_stmt(Buf *b, const Kernel *k, const Stmt *s, int depth)
{
    if (s->k == S_BLOCK) {
        put_stmts(b, k, s->body, s->nbody, depth);
        return;
    }
    buf_printf(b, "%*s", 2 * depth, "");
    put_stmt_head(b, k, s);
    buf_puts(b, "\n");
    if (s->k == S_FOR || s->k == S_IF)
        put_stmts(b, k, s->body, s->nbody, depth + 1);
    if (s->k == S_IF && s->nels) {
        buf_printf(b, "%*selse\n", 2 * depth, "");
        put_stmts(b, k, s->els, s->nels, depth + 1);
    }
}

static void put_stmts(Buf *b, const Kernel *k, Stmt *const *v, int n, int depth)
{
    for (int i = 0; i < n; i++)
        if (v[i])
            put_stmt(b, k, v[i], depth);
}

static void put_size(Buf *b, long fixed, long per_n)
{
    if (per_n == 0)
        buf_printf(b, "%ld", fixed);
    else if (fixed == 0)
        buf_printf(b, "%ld*n", per_n);
    else
        buf_printf(b, "%ld + %ld*n", fixed, per_n);
}

void kernel_print(FILE *f, const Kernel *k)
{
    Buf b = {0};
    kernel_print_buf(&b, k);
    fputs(b.s, f);
    buf_free(&b);
}

void kernel_print_buf(Buf *out, const Kernel *k)
{
    Buf b = {0};
    buf_printf(&b, "kernel %s(n", k->name);
    for (int i = 0; i < k->nbuf; i++) {
        buf_printf(&b, "%s%s%s ", i ? ", " : "; ", k->buf[i].name, k->buf[i].written ? "[w]" : "");
        put_size(&b, k->buf[i].size_fixed, k->buf[i].size_per_n);
    }
    for (int i = 0; i < k->narg; i++)
        buf_printf(&b, "%s%s arg%d", i || k->nbuf ? ", " : "; ", k->arg_t[i] == T_I32 ? "int" : "float", i);
    buf_puts(&b, ")");
    if (k->vlen)
        buf_printf(&b, " vec%d", k->vlen);
    if (k->comment)
        buf_printf(&b, "   // %s", k->comment);
    if (k->nshared)
        buf_printf(&b, " (+%d identical)", k->nshared);
    buf_puts(&b, "\n");
    if (k->body)
        put_stmt(&b, k, k->body, 1);
    buf_puts(out, b.s);
    buf_free(&b);
}

/* ---- verifier ---- */

typedef struct {
    const Kernel *k;
    FILE *err;
    const Stmt *at;     /* the statement being checked, for the message */
    bool *inscope;      /* per variable */
    bool *isloop;       /* per variable: some S_FOR binds it */
    bool ok;
    bool *outer;        /* inside a parallel loop: in scope around it */
} Verify;

static void fail(Verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Verify *v, const char *fmt, ...)
{
    if (!v->ok)
        return;
    v->ok = false;
    Buf b = {0};
    buf_printf(&b, "kernel %s: ", v->k->name);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (v->at) {
        buf_puts(&b, "\n  in: ");
        put_stmt_head(&b, v->k, v->at);
    }
    buf_puts(&b, "\n");
    if (v->err)
        fputs(b.s, v->err);
    buf_free(&b);
}

static bool var_ok(Verify *v, int var)
{
    if (var >= 0 && var < v->k->nvar)
        return true;
    fail(v, "variable %d out of range (kernel has %d)", var, v->k->nvar);
    return false;
}

static bool buf_ok(Verify *v, int buf)
{
    if (buf >= 0 && buf < v->k->nbuf)
        return true;
    fail(v, "buffer %d out of range (kernel has %d)", buf, v->k->nbuf);
    return false;
}

static void check_expr(Verify *v, const Expr *e);

/* Checks operand e (if non-NULL) and that it has type t. */
static void operand(Verify *v, const Expr *parent, const Expr *e, LType t)
{
    if (!e) {
        fail(v, "operand of %s missing", fn_name(parent->k) ? fn_name(parent->k) : "expression");
        return;
    }
    check_expr(v, e);
    if (v->ok && e->t != t) {
        Buf b = {0};
        put_expr(&b, v->k, e, 0);
        fail(v, "'%s' has type %s, expected %s", b.s, type_name(e->t), type_name(t));
        buf_free(&b);
    }
}

static void check_expr(Verify *v, const Expr *e)
{
    if (!v->ok)
        return;
    if ((int)e->k < 0 || e->k >= X_COUNT) {
        fail(v, "unknown expression kind %d", (int)e->k);
        return;
    }
    if (e->t != T_I32 && e->t != T_F32 && e->t != T_V32) {
        fail(v, "expression of unknown type %d", (int)e->t);
        return;
    }
    if (e->t == T_V32 && !v->k->vlen) {
        fail(v, "vector expression in a kernel without vectors (vlen 0)");
        return;
    }
    bool vec_ok = e->k == X_LOAD || e->k == X_VAR || e->k == X_FMA || e->k == X_BCAST ||
                  e->k == X_NEG || e->k == X_SELECT || (is_arith(e->k) && e->k != X_MOD);
    if (e->t == T_V32 && !vec_ok) {
        fail(v, "%s has no vector form", fn_name(e->k) ? fn_name(e->k) : "this expression");
        return;
    }
    /* The type every kind requires of its result. */
    LType want = e->t;
    switch (e->k) {
    case X_INT: case X_BATCH:
        want = T_I32;
        break;
    case X_ARG:
        if (e->ival < 0 || e->ival >= v->k->narg) {
            fail(v, "argument %d of a kernel with %d", e->ival, v->k->narg);
            return;
        }
        if (v->outer) {
            fail(v, "argument %d read inside a parallel loop", e->ival);
            return;
        }
        want = v->k->arg_t[e->ival];
        break;
    case X_FLT:
        want = T_F32;
        break;
    case X_VAR:
        if (!var_ok(v, e->var))
            return;
        if (!v->inscope[e->var]) {
            fail(v, "'%s' used outside its scope", v->k->var[e->var].name);
            return;
        }
        want = v->k->var[e->var].t;
        break;
    case X_LOAD:
        if (!buf_ok(v, e->buf))
            return;
        operand(v, e, e->a, T_I32);
        want = e->t == T_V32 ? T_V32 : T_F32;
        break;
    case X_FMA:
        operand(v, e, e->a, e->t);
        operand(v, e, e->b, e->t);
        operand(v, e, e->c, e->t);
        want = e->t == T_V32 ? T_V32 : T_F32;
        break;
    case X_BCAST:
        operand(v, e, e->a, T_F32);
        want = T_V32;
        break;
    case X_HASH:
        operand(v, e, e->a, T_I32);
        operand(v, e, e->b, T_I32);
        want = T_I32;
        break;
    case X_HSUM:
        if (!e->a || e->a->k != X_VAR) {
            fail(v, "hsum of something other than a vector variable");
            return;
        }
        operand(v, e, e->a, T_V32);
        want = T_F32;
        break;
    case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MIN: case X_MAX:
        operand(v, e, e->a, e->t);
        operand(v, e, e->b, e->t);
        break;
    case X_MOD:
        operand(v, e, e->a, T_I32);
        operand(v, e, e->b, T_I32);
        want = T_I32;
        break;
    case X_LT: case X_LE: case X_EQ: case X_NE:
        if (!e->a || !e->b) {
            fail(v, "comparison with a missing operand");
            return;
        }
        operand(v, e, e->a, e->a->t);
        operand(v, e, e->b, e->a->t);
        if (v->ok && e->a->t == T_V32)
            fail(v, "comparison of vectors");
        want = T_I32;
        break;
    case X_AND: case X_OR:
        operand(v, e, e->a, T_I32);
        operand(v, e, e->b, T_I32);
        want = T_I32;
        break;
    case X_NOT:
        operand(v, e, e->a, T_I32);
        want = T_I32;
        break;
    case X_NEG:
        operand(v, e, e->a, e->t == T_V32 ? T_V32 : T_F32);
        want = e->t == T_V32 ? T_V32 : T_F32;
        break;
    case X_EXP: case X_LOG: case X_TANH: case X_SQRT:
        operand(v, e, e->a, T_F32);
        want = T_F32;
        break;
    case X_SELECT:
        if (e->t == T_V32) {
            /* a lane-wise choice: the condition compares two vectors */
            const Expr *c = e->a;
            if (!c || !is_cmp(c->k) || c->t != T_I32) {
                fail(v, "the condition of a vector select is not a comparison");
                return;
            }
            operand(v, c, c->a, T_V32);
            operand(v, c, c->b, T_V32);
        } else {
            operand(v, e, e->a, T_I32);
        }
        operand(v, e, e->b, e->t);
        operand(v, e, e->c, e->t);
        break;
    case X_I2F:
        operand(v, e, e->a, T_I32);
        want = T_F32;
        break;
    case X_F2I:
        operand(v, e, e->a, T_F32);
        want = T_I32;
        break;
    case X_COUNT:
        break;
    }
    if (v->ok && e->t != want) {
        Buf b = {0};
        put_expr(&b, v->k, e, 0);
        fail(v, "'%s' is marked %s but computes %s", b.s, type_name(e->t), type_name(want));
        buf_free(&b);
    }
}

static void check_top(Verify *v, const Expr *e, LType t, const char *what)
{
    if (!e) {
        fail(v, "%s missing", what);
        return;
    }
    check_expr(v, e);
    if (v->ok && e->t != t)
        fail(v, "%s has type %s, expected %s", what, type_name(e->t), type_name(t));
}

static void check_stmts(Verify *v, Stmt *const *s, int n);

static void check_stmt(Verify *v, const Stmt *s)
{
    if (!v->ok)
        return;
    const Kernel *k = v->k;
    v->at = s;
    switch (s->k) {
    case S_BLOCK:
        v->at = NULL;
        check_stmts(v, s->body, s->nbody);
        break;
    case S_FOR:
        if (!var_ok(v, s->var))
            return;
        if (k->var[s->var].t != T_I32) {
            fail(v, "loop variable '%s' is not an int", k->var[s->var].name);
            return;
        }
        if (v->inscope[s->var]) {
            fail(v, "loop variable '%s' is already bound here", k->var[s->var].name);
            return;
        }
        check_top(v, s->lo, T_I32, "loop start");
        check_top(v, s->hi, T_I32, "loop end");
        if (!v->ok)
            return;
        if (s->parallel) {
            if (v->outer) {
                fail(v, "parallel loop inside a parallel loop");
                return;
            }
            v->outer = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
            memcpy(v->outer, v->inscope, sizeof(bool) * (size_t)k->nvar);
        }
        v->inscope[s->var] = true;
        check_stmts(v, s->body, s->nbody);
        v->inscope[s->var] = false;
        if (s->parallel) {
            free(v->outer);
            v->outer = NULL;
        }
        break;
    case S_IF:
        check_top(v, s->cond, T_I32, "condition");
        check_stmts(v, s->body, s->nbody);
        check_stmts(v, s->els, s->nels);
        break;
    case S_STORE:
        if (!buf_ok(v, s->buf))
            return;
        if (!k->buf[s->buf].written) {
            fail(v, "store to read-only buffer '%s'", k->buf[s->buf].name);
            return;
        }
        check_top(v, s->idx, T_I32, "store index");
        if (!s->val) {
            fail(v, "stored value missing");
            return;
        }
        check_top(v, s->val, s->val->t == T_V32 ? T_V32 : T_F32, "stored value");
        break;
    case S_DECL: case S_ASSIGN:
        if (!var_ok(v, s->var))
            return;
        if (v->isloop[s->var]) {
            fail(v, "loop variable '%s' is assigned", k->var[s->var].name);
            return;
        }
        if (s->k == S_DECL && v->inscope[s->var]) {
            fail(v, "'%s' declared again while in scope", k->var[s->var].name);
            return;
        }
        if (s->k == S_ASSIGN && !v->inscope[s->var]) {
            fail(v, "'%s' assigned outside its scope", k->var[s->var].name);
            return;
        }
        if (s->k == S_ASSIGN && v->outer && v->outer[s->var]) {
            fail(v, "'%s' is assigned inside a parallel loop but declared outside it",
                 k->var[s->var].name);
            return;
        }
        check_top(v, s->val, k->var[s->var].t, "value");
        /* in scope from the next statement to the end of the block */
        if (v->ok && s->k == S_DECL)
            v->inscope[s->var] = true;
        break;
    case S_CALL: {
        const Kernel *c = s->callee;
        if (!c || !s->cbuf || c->narg != s->narg) {
            fail(v, "call of %s with %d arguments for %d", c ? c->name : "nothing", s->narg, c ? c->narg : 0);
            return;
        }
        for (int i = 0; i < c->nbuf; i++) {
            if (!buf_ok(v, s->cbuf[i]))
                return;
            if (c->buf[i].written && !k->buf[s->cbuf[i]].written) {
                fail(v, "call of %s writes '%s', which this kernel only reads", c->name,
                     k->buf[s->cbuf[i]].name);
                return;
            }
            for (int j = 0; j < i; j++)
                if (s->cbuf[j] == s->cbuf[i]) {
                    fail(v, "call of %s passes '%s' twice", c->name, k->buf[s->cbuf[i]].name);
                    return;
                }
        }
        for (int i = 0; i < s->narg && v->ok; i++)
            check_top(v, s->arg[i], c->arg_t[i], "call argument");
        break;
    }
    default:
        fail(v, "unknown statement kind %d", (int)s->k);
        break;
    }
}

/* One scope: locals declared here go out of scope at the end. */
static void check_stmts(Verify *v, Stmt *const *s, int n)
{
    int nvar = v->k->nvar;
    bool *saved = netc_alloc(sizeof(bool) * ((size_t)nvar + 1));
    memcpy(saved, v->inscope, sizeof(bool) * (size_t)nvar);
    for (int i = 0; i < n && v->ok; i++) {
        if (!s[i]) {
            fail(v, "null statement");
            break;
        }
        check_stmt(v, s[i]);
    }
    memcpy(v->inscope, saved, sizeof(bool) * (size_t)nvar);
    free(saved);
}

static void mark_loops(bool *isloop, int nvar, const Stmt *s)
{
    if (!s)
        return;
    if (s->k == S_FOR && s->var >= 0 && s->var < nvar)
        isloop[s->var] = true;
    for (int i = 0; i < s->nbody; i++)
        mark_loops(isloop, nvar, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        mark_loops(isloop, nvar, s->els[i]);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A name two of k's buffers and variables share, or NULL (sorted, so a
 * kernel of thousands of variables is cheap to check after every pass). */
static const char *first_duplicate(const Kernel *k)
{
    int n = k->nbuf + k->nvar;
    const char **name = netc_alloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int i = 0; i < k->nbuf; i++)
        name[i] = k->buf[i].name;
    for (int i = 0; i < k->nvar; i++)
        name[k->nbuf + i] = k->var[i].name;
    qsort(name, (size_t)n, sizeof *name, name_cmp);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(name[i - 1], name[i]))
            dup = name[i];
    free(name);
    return dup;
}

bool kernel_verify(const Kernel *k, FILE *err)
{
    Verify v = {k, err, NULL, NULL, NULL, true, NULL};
    if (!k->body || k->body->k != S_BLOCK) {
        fail(&v, "body is not a block");
        return false;
    }
    const char *dup = first_duplicate(k);
    if (dup)
        fail(&v, "two buffers or variables named '%s'", dup);
    if (k->vlen && (k->vlen < 2 || k->vlen > NETC_VMAX || (k->vlen & (k->vlen - 1))))
        fail(&v, "vector length %d is not a power of two from 2 to %d", k->vlen, NETC_VMAX);
    for (int i = 0; i < k->nvar && v.ok; i++) {
        if (k->var[i].t != T_I32 && k->var[i].t != T_F32 && !(k->var[i].t == T_V32 && k->vlen))
            fail(&v, "variable '%s' has unknown type", k->var[i].name);
    }
    for (int i = 0; i < k->narg && v.ok; i++)
        if (k->arg_t[i] != T_I32 && k->arg_t[i] != T_F32)
            fail(&v, "argument %d is neither int nor float", i);
    if (!v.ok)
        return false;
    v.inscope = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
    v.isloop = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
    mark_loops(v.isloop, k->nvar, k->body);
    check_stmt(&v, k->body);
    free(v.inscope);
    free(v.isloop);
    return v.ok;
}

/* ---- what a parallel loop captures ---- */

static void refs_expr(const Expr *e, bool *used)
{
    if (!e)
        return;
    if (e->k == X_VAR)
        used[e->var] = true;
    refs_expr(e->a, used);
    refs_expr(e->b, used);
    refs_expr(e->c, used);
}

static void refs_stmt(const Stmt *s, bool *used, bool *bound)
{
    if ((s->k == S_FOR || s->k == S_DECL) && bound)
        bound[s->var] = true;
    if (s->k == S_ASSIGN)
        used[s->var] = true;
    refs_expr(s->lo, used);
    refs_expr(s->hi, used);
    refs_expr(s->cond, used);
    refs_expr(s->idx, used);
    refs_expr(s->val, used);
    for (int i = 0; i < s->narg; i++)
        refs_expr(s->arg[i], used);
    for (int i = 0; i < s->nbody; i++)
        refs_stmt(s->body[i], used, bound);
    for (int i = 0; i < s->nels; i++)
        refs_stmt(s->els[i], used, bound);
}

void stmt_vars_used(const Stmt *s, bool *used)
{
    refs_stmt(s, used, NULL);
}

void loop_captures(const Kernel *k, const Stmt *loop, bool *out)
{
    NETC_ASSERT(loop->k == S_FOR);
    bool *bound = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
    memset(bound, 0, sizeof(bool) * ((size_t)k->nvar + 1));
    memset(out, 0, sizeof(bool) * (size_t)k->nvar);
    bound[loop->var] = true;
    for (int i = 0; i < loop->nbody; i++)
        refs_stmt(loop->body[i], out, bound);
    for (int i = 0; i < k->nvar; i++)
        out[i] = out[i] && !bound[i];
    free(bound);
}

/* ---- queries ---- */

void stmt_each_call(const Stmt *s, void (*f)(const Kernel *callee, void *ctx), void *ctx)
{
    if (s->k == S_CALL)
        f(s->callee, ctx);
    for (int i = 0; i < s->nbody; i++)
        stmt_each_call(s->body[i], f, ctx);
    for (int i = 0; i < s->nels; i++)
        stmt_each_call(s->els[i], f, ctx);
}

static bool has_vectors_expr(const Expr *e)
{
    return e && (e->t == T_V32 || has_vectors_expr(e->a) || has_vectors_expr(e->b) ||
                 has_vectors_expr(e->c));
}

bool stmt_has_vectors(const Kernel *k, const Stmt *s)
{
    if ((s->k == S_DECL || s->k == S_ASSIGN) && k->var[s->var].t == T_V32)
        return true;
    if (has_vectors_expr(s->val) || has_vectors_expr(s->idx) || has_vectors_expr(s->cond))
        return true;
    for (int i = 0; i < s->nbody; i++)
        if (stmt_has_vectors(k, s->body[i]))
            return true;
    for (int i = 0; i < s->nels; i++)
        if (stmt_has_vectors(k, s->els[i]))
            return true;
    return false;
}
