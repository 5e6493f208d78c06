/* loop_outline.c - the heavy, self-contained parts of a kernel become
 * kernels of their own, which the kernel calls (outlining).
 *
 * Needs: a scheduled, verified kernel (after vectorise, unroll and
 * parallelise).  Provides: loop_outline.  A convolution's or a GEMM's
 * kernel is a light loop nest around a few heavy register blocks (the
 * micro-kernel over full row blocks, the tails, each k block); two layers
 * of other sizes have the same blocks with other constants, but different
 * tails or block counts make the whole kernels differ.  Outlined, each
 * block is a kernel of its own (its buffers, and the variables it reads
 * from around it as scalar arguments), which kernel sharing and kernel
 * families (loop_share.c, loop_family.c) then merge across the whole
 * program: the backends build each distinct block once instead of once
 * per layer.  The block's work is the same, and so are the results.
 *
 * What is outlined: the innermost statement runs that are at least
 * OUTLINE_MIN expression and statement nodes, hold no parallel loop, and
 * are self-contained: the locals they declare are not used after them, and
 * they assign no variable and read no vector from around them (the scalars
 * they read, locals declared before them included, become arguments).  A
 * run is cut wherever no local it declared is used later, and around every
 * statement that holds a parallel loop or an outlined part.  The whole body
 * of a kernel is never outlined (the kernel is that unit already).
 *
 *   before: kernel k31_conv(n; y[w] .., x .., wp[w] ..)
 *             parallel for jt in 0..24
 *               for mb in 0..4
 *                 int cb = yb + (mb*10976 + jt*32)
 *                 vec acc = y[cb ..+16]  ...  for k in 0..192 { ... fma ... }  ...  y[cb ..+16] = acc ...
 *   after:  kernel k31_conv_o0(n; y[w] .., x .., wp ..; int arg0, int arg1, int arg2)
 *             int yb = arg0; int mb = arg1; int jt = arg2
 *             int cb = yb + (mb*10976 + jt*32)  ...
 *           kernel k31_conv(...)
 *             parallel for jt in 0..24
 *               for mb in 0..4
 *                 call k31_conv_o0(y, x, wp; yb, mb, jt)
 *
 * `--dump=outline` prints every kernel after it.
 */
#include <stdlib.h>
#include <string.h>

#include "loop_outline.h"

enum { OUTLINE_MIN = 160 };

static long expr_weight(const Expr *e)
{
    return e ? 1 + expr_weight(e->a) + expr_weight(e->b) + expr_weight(e->c) : 0;
}

static long stmt_weight(const Stmt *s)
{
    long w = 1 + expr_weight(s->lo) + expr_weight(s->hi) + expr_weight(s->cond) + expr_weight(s->idx) +
             expr_weight(s->val);
    for (int i = 0; i < s->narg; i++)
        w += expr_weight(s->arg[i]);
    for (int i = 0; i < s->nbody; i++)
        w += stmt_weight(s->body[i]);
    for (int i = 0; i < s->nels; i++)
        w += stmt_weight(s->els[i]);
    return w;
}

/* Whether s holds a parallel loop or a call (an outlined part already). */
static bool has_par_or_call(const Stmt *s)
{
    if (s->k == S_CALL || (s->k == S_FOR && s->parallel))
        return true;
    for (int i = 0; i < s->nbody; i++)
        if (has_par_or_call(s->body[i]))
            return true;
    for (int i = 0; i < s->nels; i++)
        if (has_par_or_call(s->els[i]))
            return true;
    return false;
}

typedef struct {
    Arena *a;
    Kernel *k;
    Kernel **sub;        /* the kernels made so far */
    Stmt **call;         /* and the call of each */
    int nsub, capsub;
    int *last;           /* per variable: the last statement of the list using it */
    /* the run being outlined */
    int *seen;           /* per variable: 0 unseen, 1 bound inside, 2 read from outside */
    int *outer, nouter;  /* read from outside, in order of first use */
    bool closed;
    bool *bufused;       /* per buffer */
    bool *bufwritten;
} Outline;

static void uses_expr(Outline *O, const Expr *e, int at)
{
    if (!e)
        return;
    if (e->k == X_VAR)
        O->last[e->var] = at;
    uses_expr(O, e->a, at);
    uses_expr(O, e->b, at);
    uses_expr(O, e->c, at);
}

static void uses_stmt(Outline *O, const Stmt *s, int at)
{
    if (s->k == S_ASSIGN)
        O->last[s->var] = at;
    uses_expr(O, s->lo, at);
    uses_expr(O, s->hi, at);
    uses_expr(O, s->cond, at);
    uses_expr(O, s->idx, at);
    uses_expr(O, s->val, at);
    for (int i = 0; i < s->narg; i++)
        uses_expr(O, s->arg[i], at);
    for (int i = 0; i < s->nbody; i++)
        uses_stmt(O, s->body[i], at);
    for (int i = 0; i < s->nels; i++)
        uses_stmt(O, s->els[i], at);
}

/* ---- what a run reads from around it ---- */

static void scan_expr(Outline *O, const Expr *e)
{
    if (!e)
        return;
    if (e->k == X_VAR && !O->seen[e->var]) {
        O->seen[e->var] = 2;
        O->outer[O->nouter++] = e->var;
        if (O->k->var[e->var].t == T_V32)
            O->closed = false;
    }
    if (e->k == X_LOAD)
        O->bufused[e->buf] = true;
    if (e->k == X_ARG)
        O->closed = false;
    scan_expr(O, e->a);
    scan_expr(O, e->b);
    scan_expr(O, e->c);
}

static void scan_stmt(Outline *O, const Stmt *s)
{
    scan_expr(O, s->lo);
    scan_expr(O, s->hi);
    scan_expr(O, s->cond);
    scan_expr(O, s->idx);
    scan_expr(O, s->val);
    if (s->k == S_FOR || s->k == S_DECL) {
        if (!O->seen[s->var])
            O->seen[s->var] = 1;
    } else if (s->k == S_ASSIGN && O->seen[s->var] != 1) {
        O->closed = false; /* assigns a variable of the surroundings */
    }
    if (s->k == S_STORE)
        O->bufused[s->buf] = O->bufwritten[s->buf] = true;
    for (int i = 0; i < s->nbody; i++)
        scan_stmt(O, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        scan_stmt(O, s->els[i]);
}

/* ---- the outlined kernel: the run with variables and buffers renumbered ---- */

typedef struct {
    Arena *a;
    const Kernel *from;
    Kernel *to;
    int *var;            /* per variable of `from`: its variable in `to`, or -1 */
    const int *buf;      /* per buffer of `from`: its buffer in `to`, or -1 */
} Copy;

static int copy_var(Copy *C, int v)
{
    if (C->var[v] < 0)
        C->var[v] = kernel_var(C->a, C->to, C->from->var[v].name, C->from->var[v].t);
    return C->var[v];
}

static Expr *copy_expr(Copy *C, const Expr *e)
{
    if (!e)
        return NULL;
    Expr *c = arena_alloc(C->a, sizeof *c);
    *c = *e;
    if (e->k == X_VAR)
        c->var = copy_var(C, e->var);
    if (e->k == X_LOAD)
        c->buf = C->buf[e->buf];
    c->a = copy_expr(C, e->a);
    c->b = copy_expr(C, e->b);
    c->c = copy_expr(C, e->c);
    return c;
}

static Stmt *copy_stmt(Copy *C, const Stmt *s)
{
    Stmt *c = arena_alloc(C->a, sizeof *c);
    *c = *s;
    c->lo = copy_expr(C, s->lo);
    c->hi = copy_expr(C, s->hi);
    c->cond = copy_expr(C, s->cond);
    c->idx = copy_expr(C, s->idx);
    c->val = copy_expr(C, s->val);
    if (s->k == S_FOR || s->k == S_DECL || s->k == S_ASSIGN)
        c->var = copy_var(C, s->var);
    if (s->k == S_STORE)
        c->buf = C->buf[s->buf];
    c->body = s->nbody ? arena_alloc(C->a, sizeof(Stmt *) * (size_t)s->nbody) : NULL;
    c->capbody = s->nbody;
    for (int i = 0; i < s->nbody; i++)
        c->body[i] = copy_stmt(C, s->body[i]);
    c->els = s->nels ? arena_alloc(C->a, sizeof(Stmt *) * (size_t)s->nels) : NULL;
    c->capels = s->nels;
    for (int i = 0; i < s->nels; i++)
        c->els[i] = copy_stmt(C, s->els[i]);
    return c;
}

/* The run run[0..n) as a kernel, and the call that replaces it; NULL when
 * the run is not self-contained. */
static Stmt *outline_run(Outline *O, Stmt *const *run, int n)
{
    const Kernel *k = O->k;
    memset(O->seen, 0, sizeof(int) * (size_t)k->nvar);
    memset(O->bufused, 0, sizeof(bool) * (size_t)k->nbuf);
    memset(O->bufwritten, 0, sizeof(bool) * (size_t)k->nbuf);
    O->nouter = 0;
    O->closed = true;
    for (int i = 0; i < n; i++)
        scan_stmt(O, run[i]);
    if (!O->closed)
        return NULL;

    Arena *a = O->a;
    Kernel *sub = kernel_new(a, arena_printf(a, "%s_o%d", k->name, O->nsub), k->comment);
    sub->outlined = true;
    int *bufmap = netc_alloc(sizeof(int) * ((size_t)k->nbuf + 1));
    int *cbuf = netc_alloc(sizeof(int) * ((size_t)k->nbuf + 1));
    for (int b = 0; b < k->nbuf; b++) {
        bufmap[b] = -1;
        if (!O->bufused[b])
            continue;
        const LBuf *lb = &k->buf[b];
        bufmap[b] = kernel_buf(a, sub, lb->name, O->bufwritten[b], lb->size_fixed, lb->size_per_n);
        sub->buf[bufmap[b]].scratch = lb->scratch;
        cbuf[bufmap[b]] = b;
    }
    bool vec = false;
    for (int i = 0; i < n && !vec; i++)
        vec = stmt_has_vectors(k, run[i]);
    if (vec)
        kernel_vectors(sub, k->vlen);
    Copy C = {a, k, sub, netc_alloc(sizeof(int) * ((size_t)k->nvar + 1)), bufmap};
    for (int v = 0; v < k->nvar; v++)
        C.var[v] = -1;
    sub->narg = O->nouter;
    sub->arg_t = arena_alloc(a, sizeof(LType) * ((size_t)O->nouter + 1));
    Expr **args = arena_alloc(a, sizeof(Expr *) * ((size_t)O->nouter + 1));
    for (int j = 0; j < O->nouter; j++) {
        int v = O->outer[j];
        sub->arg_t[j] = k->var[v].t;
        st_append(a, sub->body, st_decl(a, copy_var(&C, v), ex_arg(a, sub, j)));
        args[j] = ex_var(a, k, v);
    }
    for (int i = 0; i < n; i++)
        st_append(a, sub->body, copy_stmt(&C, run[i]));
    NETC_ASSERT(kernel_verify(sub, stderr));
    Stmt *call = st_call(a, sub, cbuf, args, O->nouter);
    free(C.var);
    free(bufmap);
    free(cbuf);
    if (O->nsub == O->capsub) {
        O->capsub = O->capsub ? 2 * O->capsub : 8;
        O->sub = netc_realloc(O->sub, sizeof(Kernel *) * (size_t)O->capsub);
        O->call = netc_realloc(O->call, sizeof(Stmt *) * (size_t)O->capsub);
    }
    O->sub[O->nsub] = sub;
    O->call[O->nsub++] = call;
    return call;
}

/* Outlines in the list *v (of *n statements), innermost runs first. */
static void outline_list(Outline *O, Stmt ***v, int *n, int *cap, bool top)
{
    Stmt **s = *v;
    for (int i = 0; i < *n; i++)
        if (s[i]->k == S_FOR || s[i]->k == S_IF || s[i]->k == S_BLOCK) {
            outline_list(O, &s[i]->body, &s[i]->nbody, &s[i]->capbody, false);
            outline_list(O, &s[i]->els, &s[i]->nels, &s[i]->capels, false);
        }
    if (*n == 0)
        return;
    for (int i = 0; i < *n; i++) /* a local nothing reads lives to its declaration */
        if (s[i]->k == S_DECL)
            O->last[s[i]->var] = i;
    for (int i = 0; i < *n; i++)
        uses_stmt(O, s[i], i);
    Stmt **out = arena_alloc(O->a, sizeof(Stmt *) * (size_t)*n);
    int nout = 0;
    /* Runs lie between statements that hold a parallel loop or a call
     * (those stay); a local declared before a run is an argument of it. */
    for (int start = 0, end = -1, i = 0; i < *n; i++) {
        if (has_par_or_call(s[i])) {
            for (int j = start; j <= i; j++)
                out[nout++] = s[j];
            start = i + 1;
            end = -1;
            continue;
        }
        if (s[i]->k == S_DECL && O->last[s[i]->var] > end)
            end = O->last[s[i]->var];
        if (i < end)
            continue;
        /* s[start..i] is a run: nothing it declares is used after it */
        long w = 0;
        for (int j = start; j <= i; j++)
            w += stmt_weight(s[j]);
        bool whole = top && start == 0 && i == *n - 1;
        Stmt *call = !whole && w >= OUTLINE_MIN ? outline_run(O, s + start, i - start + 1) : NULL;
        if (call)
            out[nout++] = call;
        else
            for (int j = start; j <= i; j++)
                out[nout++] = s[j];
        start = i + 1;
    }
    *v = out;
    *n = *cap = nout;
}

int loop_outline(Arena *a, Kernel *k, Kernel ***subs, Stmt ***calls)
{
    Outline O = {a, k, NULL, NULL, 0, 0, netc_alloc(sizeof(int) * ((size_t)k->nvar + 1)),
                 netc_alloc(sizeof(int) * ((size_t)k->nvar + 1)),
                 netc_alloc(sizeof(int) * ((size_t)k->nvar + 1)), 0, true,
                 netc_alloc(sizeof(bool) * ((size_t)k->nbuf + 1)),
                 netc_alloc(sizeof(bool) * ((size_t)k->nbuf + 1))};
    if (stmt_weight(k->body) >= 2 * OUTLINE_MIN)
        outline_list(&O, &k->body->body, &k->body->nbody, &k->body->capbody, true);
    free(O.last);
    free(O.seen);
    free(O.outer);
    free(O.bufused);
    free(O.bufwritten);
    *subs = O.sub;
    *calls = O.call;
    return O.nsub;
}
