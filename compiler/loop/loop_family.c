/* loop_family.c - kernels identical up to constants share one function
 * (kernel families).
 *
 * Needs: a program's distinct, scheduled, verified kernels (after
 * loop_share.c has merged the exactly identical ones).  Provides:
 * kernel_families.  Most of a network's kernels differ from another one in
 * constants only: GoogLeNet's inceptions and ResNeXt's stages repeat the
 * same convolutions at other channel counts and sizes, so their loop nests,
 * register blocks and vector code are the same and only trip counts,
 * strides and offsets differ.  Such kernels form a family: the program
 * defines one function for it, the first member's body with every constant
 * that differs between members read from a scalar argument (X_ARG, bound
 * to a local at the top), and every member's calls pass its own values.
 * Building one function instead of many is what makes large networks
 * compile fast (each backend builds, optimises and generates code per
 * function); the computation is the same, operation for operation, so the
 * results are the same bits.
 *
 * A kernel's skeleton is its structure without those constants: statement
 * and expression kinds, types, variables, buffers (by position and role,
 * not size), vector width and schedule marks.  Two kernels are in one
 * family when their skeletons are equal.  Constants that stay in the
 * skeleton (are never arguments): divisors and moduli inside a sequential
 * loop, so that no inner loop divides by a run-time value.  Constants
 * equal in every member stay constants; constants that differ in the same
 * way share one argument.
 *
 *   before: kernel k206_conv(n; y[w] 50176*n, x 50176*n, w 36864)   // l2.b
 *             parallel for t in [0, n*56) {  ... for k in [0, 576) ... x[... + 3136*ci ...] }
 *           kernel k219_conv(n; y[w] 25088*n, x 25088*n, w 147456)  // l3.b
 *             parallel for t in [0, n*28) {  ... for k in [0, 1152) ... x[... + 784*ci ...] }
 *   after:  kernel k206_conv(n; y[w] .., x .., w ..; int arg0, int arg1, int arg2)
 *             a0 = arg0; a1 = arg1; a2 = arg2
 *             parallel for t in [0, n*a0) { ... for k in [0, a1) ... x[... + a2*ci ...] }
 *           l2.b calls k206_conv(.., 56, 576, 3136), l3.b k206_conv(.., 28, 1152, 784)
 *
 * Kernels without vectors of their own (scalar loops that the backend
 * compilers vectorise, which needs the constants) form a family only when
 * it has SCALAR_MIN_FAMILY members or more, where it saves enough code;
 * in smaller ones each keeps its constants.  `--dump=family` prints each
 * family with its members' values; `--share=exact` turns families off
 * (identical kernels are still shared).
 */
#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* The smallest family of scalar kernels: two LeNet max-pool gradients
 * sharing one function ran 3x slower than each with its constants, while
 * GoogLeNet's dozens of batch-norm statistics kernels build in a fraction
 * of the time as one. */
enum { SCALAR_MIN_FAMILY = 3 };

/* ---- skeletons: a token stream, and the constants taken out of it ---- */

typedef struct {
    uint64_t *tok;
    size_t ntok, captok;
    KArg *val;      /* the constants left out of tok, in walk order */
    LType *vt;
    int nval, capval;
} Skel;

static void tok(Skel *s, uint64_t t)
{
    if (s->ntok == s->captok) {
        s->captok = s->captok ? 2 * s->captok : 256;
        s->tok = netc_realloc(s->tok, s->captok * sizeof *s->tok);
    }
    s->tok[s->ntok++] = t;
}

static void val(Skel *s, LType t, int i, float f)
{
    if (s->nval == s->capval) {
        s->capval = s->capval ? 2 * s->capval : 64;
        s->val = netc_realloc(s->val, (size_t)s->capval * sizeof *s->val);
        s->vt = netc_realloc(s->vt, (size_t)s->capval * sizeof *s->vt);
    }
    s->val[s->nval] = (KArg){i, f};
    s->vt[s->nval++] = t;
}

static uint64_t pack(unsigned kind, unsigned type, int var, int buf)
{
    return (uint64_t)kind << 56 | (uint64_t)type << 52 | ((uint64_t)(uint32_t)(var + 1) & 0xffffff) << 24 |
           ((uint64_t)(uint32_t)(buf + 1) & 0xffffff);
}

/* Whether constant e, operand `slot` (0 a, 1 b, 2 c) of parent, stays in
 * the skeleton.  `serial`: inside a sequential loop. */
static bool pinned(const Expr *parent, int slot, bool serial)
{
    return serial && parent && slot == 1 && (parent->k == X_DIV || parent->k == X_MOD) &&
           parent->t == T_I32;
}

static bool is_const(const Expr *e)
{
    return e->k == X_INT || e->k == X_FLT;
}

static void skel_expr(Skel *s, const Expr *e, const Expr *parent, int slot, bool serial)
{
    if (!e) {
        tok(s, 0);
        return;
    }
    tok(s, pack((unsigned)e->k + 1, (unsigned)e->t, e->var, e->buf));
    if (is_const(e)) {
        if (pinned(parent, slot, serial))
            tok(s, (uint64_t)(uint32_t)e->ival | 1ull << 32);
        else
            val(s, e->t, e->ival, e->fval);
        return;
    }
    if (e->k == X_HSUM || e->k == X_VAR || e->k == X_BATCH || e->k == X_ARG)
        tok(s, (uint64_t)(uint32_t)e->ival);
    skel_expr(s, e->a, e, 0, serial);
    skel_expr(s, e->b, e, 1, serial);
    skel_expr(s, e->c, e, 2, serial);
}

static void skel_stmt(Skel *s, const Stmt *st, bool serial)
{
    tok(s, pack(0x80u + (unsigned)st->k, 0, st->var, st->buf));
    tok(s, (uint64_t)st->accum | (uint64_t)st->parallel << 1 | (uint64_t)st->indep << 2 |
               (uint64_t)(uint32_t)st->nbody << 8 | (uint64_t)(uint32_t)st->nels << 36);
    skel_expr(s, st->lo, NULL, 0, serial);
    skel_expr(s, st->hi, NULL, 0, serial);
    skel_expr(s, st->cond, NULL, 0, serial);
    skel_expr(s, st->idx, NULL, 0, serial);
    skel_expr(s, st->val, NULL, 0, serial);
    if (st->k == S_CALL) { /* the callee by its place in the program (set for this) */
        tok(s, (uint64_t)(uint32_t)st->callee->index << 32 | (uint32_t)st->narg);
        for (int i = 0; i < st->callee->nbuf; i++)
            tok(s, (uint64_t)(uint32_t)st->cbuf[i]);
        for (int i = 0; i < st->narg; i++)
            skel_expr(s, st->arg[i], NULL, 0, serial);
    }
    bool inner = serial || (st->k == S_FOR && !st->parallel);
    for (int i = 0; i < st->nbody; i++)
        skel_stmt(s, st->body[i], inner);
    for (int i = 0; i < st->nels; i++)
        skel_stmt(s, st->els[i], serial);
}

static void skel_kernel(Skel *s, const Kernel *k)
{
    tok(s, (uint64_t)(uint32_t)k->vlen << 32 | (uint32_t)k->nbuf);
    for (int i = 0; i < k->nbuf; i++)
        tok(s, (uint64_t)k->buf[i].written | (uint64_t)k->buf[i].scratch << 1);
    tok(s, (uint64_t)(uint32_t)k->nvar);
    for (int i = 0; i < k->nvar; i++)
        tok(s, (uint64_t)k->var[i].t);
    tok(s, (uint64_t)(uint32_t)k->narg);
    for (int i = 0; i < k->narg; i++)
        tok(s, (uint64_t)k->arg_t[i]);
    skel_stmt(s, k->body, false);
}

static uint64_t hash_words(const uint64_t *w, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool same_val(LType t, KArg a, KArg b)
{
    if (t == T_I32)
        return a.i == b.i;
    uint32_t x, y;
    memcpy(&x, &a.f, sizeof x);
    memcpy(&y, &b.f, sizeof y);
    return x == y;
}

/* ---- the family's kernel: member 0's body with arguments for constants ---- */

typedef struct {
    Arena *a;
    Kernel *k;
    const int *param;   /* per constant position: its argument, or -1 */
    const int *local;   /* per argument: the local holding it */
    int pos;
} Build;

static Expr *build_expr(Build *B, const Expr *e, const Expr *parent, int slot, bool serial)
{
    if (!e)
        return NULL;
    Expr *c = arena_alloc(B->a, sizeof *c);
    *c = *e;
    if (is_const(e)) {
        if (!pinned(parent, slot, serial)) {
            int p = B->param[B->pos++];
            if (p >= 0)
                *c = *ex_var(B->a, B->k, B->local[p]);
        }
        return c;
    }
    c->a = build_expr(B, e->a, e, 0, serial);
    c->b = build_expr(B, e->b, e, 1, serial);
    c->c = build_expr(B, e->c, e, 2, serial);
    return c;
}

static Stmt *build_stmt(Build *B, const Stmt *st, bool serial)
{
    Stmt *c = arena_alloc(B->a, sizeof *c);
    *c = *st;
    c->lo = build_expr(B, st->lo, NULL, 0, serial);
    c->hi = build_expr(B, st->hi, NULL, 0, serial);
    c->cond = build_expr(B, st->cond, NULL, 0, serial);
    c->idx = build_expr(B, st->idx, NULL, 0, serial);
    c->val = build_expr(B, st->val, NULL, 0, serial);
    if (st->narg) {
        c->arg = arena_alloc(B->a, sizeof(Expr *) * (size_t)st->narg);
        for (int i = 0; i < st->narg; i++)
            c->arg[i] = build_expr(B, st->arg[i], NULL, 0, serial);
    }
    bool inner = serial || (st->k == S_FOR && !st->parallel);
    c->body = st->nbody ? arena_alloc(B->a, sizeof(Stmt *) * (size_t)st->nbody) : NULL;
    c->capbody = st->nbody;
    for (int i = 0; i < st->nbody; i++)
        c->body[i] = build_stmt(B, st->body[i], inner);
    c->els = st->nels ? arena_alloc(B->a, sizeof(Stmt *) * (size_t)st->nels) : NULL;
    c->capels = st->nels;
    for (int i = 0; i < st->nels; i++)
        c->els[i] = build_stmt(B, st->els[i], serial);
    return c;
}

/* One family: its members (kernel indices) and their skeletons. */
typedef struct {
    int *member;
    int n, cap;
} Family;

/* The family's kernel and each member's arguments. */
static Kernel *build_family(Arena *a, Kernel **ks, const Family *f, const Skel *sk, FILE *dump)
{
    const Kernel *k0 = ks[f->member[0]];
    const Skel *s0 = &sk[f->member[0]];
    int npos = s0->nval, nm = f->n;
    int *param = netc_alloc(sizeof(int) * ((size_t)npos + 1));
    int *first_pos = netc_alloc(sizeof(int) * ((size_t)npos + 1)); /* per argument: a position */
    int narg = 0;
    /* Positions whose values differ; those whose columns are equal share
     * an argument (the columns are compared directly: families are small
     * and arguments few). */
    for (int p = 0; p < npos; p++) {
        param[p] = -1;
        bool differs = false;
        for (int m = 1; m < nm && !differs; m++)
            differs = !same_val(s0->vt[p], s0->val[p], sk[f->member[m]].val[p]);
        if (!differs)
            continue;
        for (int q = 0; q < narg && param[p] < 0; q++) {
            int r = first_pos[q];
            if (s0->vt[r] != s0->vt[p])
                continue;
            bool same = true;
            for (int m = 0; m < nm && same; m++)
                same = same_val(s0->vt[p], sk[f->member[m]].val[p], sk[f->member[m]].val[r]);
            if (same)
                param[p] = q;
        }
        if (param[p] < 0) {
            first_pos[narg] = p;
            param[p] = narg++;
        }
    }

    Kernel *k = kernel_new(a, k0->name, arena_printf(a, "%s; +%d of this family", k0->comment ? k0->comment : k0->name, nm - 1));
    for (int i = 0; i < k0->nbuf; i++) {
        const LBuf *b = &k0->buf[i];
        long fixed = b->size_fixed, per_n = b->size_per_n;
        for (int m = 1; m < nm; m++) {
            const LBuf *o = &ks[f->member[m]]->buf[i];
            fixed = o->size_fixed > fixed ? o->size_fixed : fixed;
            per_n = o->size_per_n > per_n ? o->size_per_n : per_n;
        }
        /* the largest any member passes: what the interpreter checks */
        int j = kernel_buf(a, k, b->name, b->written, fixed, per_n);
        NETC_ASSERT(j == i);
        k->buf[j].scratch = b->scratch;
    }
    for (int i = 0; i < k0->nvar; i++) {
        int v = kernel_var(a, k, k0->var[i].name, k0->var[i].t);
        NETC_ASSERT(v == i);
    }
    if (k0->vlen)
        kernel_vectors(k, k0->vlen);
    k->outlined = k0->outlined;
    /* the members' own arguments first (outlined blocks have some), then
     * the family's */
    int own = k0->narg;
    k->narg = own + narg;
    k->arg_t = arena_alloc(a, sizeof(LType) * ((size_t)k->narg + 1));
    for (int q = 0; q < own; q++)
        k->arg_t[q] = k0->arg_t[q];
    int *local = arena_alloc(a, sizeof(int) * ((size_t)narg + 1));
    for (int q = 0; q < narg; q++) {
        k->arg_t[own + q] = s0->vt[first_pos[q]];
        local[q] = kernel_var(a, k, arena_printf(a, "a%d", q), k->arg_t[own + q]);
        st_append(a, k->body, st_decl(a, local[q], ex_arg(a, k, own + q)));
    }
    Build B = {a, k, param, local, 0};
    for (int i = 0; i < k0->body->nbody; i++)
        st_append(a, k->body, build_stmt(&B, k0->body->body[i], false));
    NETC_ASSERT(B.pos == npos);
    k->nshared = nm - 1;
    for (int m = 0; m < nm; m++)
        k->nshared += ks[f->member[m]]->nshared;

    for (int m = 0; m < nm; m++) {
        Kernel *mk = ks[f->member[m]];
        KArg *args = arena_alloc(a, sizeof(KArg) * ((size_t)narg + 1));
        for (int q = 0; q < narg; q++)
            args[q] = sk[f->member[m]].val[first_pos[q]];
        mk->impl = k;
        mk->arg = args;
    }
    if (dump) {
        fprintf(dump, "family %s: %d kernels, %d argument%s\n", k->name, nm, narg, narg == 1 ? "" : "s");
        for (int m = 0; m < nm; m++) {
            const Kernel *mk = ks[f->member[m]];
            fprintf(dump, "  %-24s", mk->name);
            for (int q = 0; q < narg; q++) {
                if (k->arg_t[own + q] == T_I32)
                    fprintf(dump, " %d", mk->arg[q].i);
                else
                    fprintf(dump, " %.9g", (double)mk->arg[q].f);
            }
            if (mk->comment)
                fprintf(dump, "   // %s", mk->comment);
            fputc('\n', dump);
        }
    }
    free(param);
    free(first_pos);
    NETC_ASSERT(kernel_verify(k, stderr));
    return k;
}

/* Groups the kernels ks[i] with take[i] by skeleton and builds each
 * family's kernel: emit[i] is what the program defines in ks[i]'s place
 * (NULL: a member after the first). */
static void group(Arena *a, Kernel **ks, int n, const bool *take, Kernel **emit, FILE *dump)
{
    Skel *sk = netc_alloc(sizeof(Skel) * ((size_t)n + 1));
    uint64_t *h = netc_alloc(sizeof(uint64_t) * ((size_t)n + 1));
    int *fam = netc_alloc(sizeof(int) * ((size_t)n + 1)); /* per kernel: its family */
    Family *f = netc_alloc(sizeof(Family) * ((size_t)n + 1));
    int nf = 0;
    size_t cap = 64;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    int *slot = netc_alloc(sizeof(int) * cap); /* family + 1, or 0 */
    for (int i = 0; i < n; i++) {
        if (!take[i])
            continue;
        NETC_ASSERT(!ks[i]->impl);
        skel_kernel(&sk[i], ks[i]);
        h[i] = hash_words(sk[i].tok, sk[i].ntok);
        size_t j = (size_t)h[i] & (cap - 1);
        fam[i] = -1;
        for (; slot[j]; j = (j + 1) & (cap - 1)) {
            int r = f[slot[j] - 1].member[0];
            if (h[r] == h[i] && sk[r].ntok == sk[i].ntok && sk[r].nval == sk[i].nval &&
                !memcmp(sk[r].tok, sk[i].tok, sk[i].ntok * sizeof *sk[i].tok) &&
                !memcmp(sk[r].vt, sk[i].vt, (size_t)sk[i].nval * sizeof *sk[i].vt)) {
                fam[i] = slot[j] - 1;
                break;
            }
        }
        if (fam[i] < 0) {
            fam[i] = nf++;
            slot[j] = fam[i] + 1;
        }
        Family *g = &f[fam[i]];
        if (g->n == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 2;
            g->member = netc_realloc(g->member, sizeof(int) * (size_t)g->cap);
        }
        g->member[g->n++] = i;
    }
    for (int i = 0; i < n; i++) {
        if (!take[i])
            continue;
        const Family *g = &f[fam[i]];
        if (g->n < SCALAR_MIN_FAMILY && ks[i]->vlen == 0)
            emit[i] = ks[i]; /* keeps its constants */
        else
            emit[i] = g->member[0] != i ? NULL
                      : g->n == 1       ? ks[i]
                                        : build_family(a, ks, g, sk, dump);
    }
    for (int i = 0; i < n; i++) {
        free(sk[i].tok);
        free(sk[i].val);
        free(sk[i].vt);
    }
    for (int i = 0; i < nf; i++)
        free(f[i].member);
    free(sk);
    free(h);
    free(fam);
    free(f);
    free(slot);
}

static void note_call(const Kernel *callee, void *ctx)
{
    (void)callee;
    *(bool *)ctx = true;
}

static bool has_call(const Stmt *s)
{
    bool any = false;
    stmt_each_call(s, note_call, &any);
    return any;
}

/* Points every call of a family member at the family's kernel, with the
 * member's arguments after the call's own. */
static void redirect_calls(Arena *a, Stmt *s)
{
    if (s->k == S_CALL && s->callee->impl) {
        const Kernel *m = s->callee, *f = m->impl;
        Expr **arg = arena_alloc(a, sizeof(Expr *) * ((size_t)(s->narg + f->narg) + 1));
        for (int i = 0; i < s->narg; i++)
            arg[i] = s->arg[i];
        for (int i = 0; i < f->narg - s->narg; i++) {
            int q = s->narg + i;
            arg[q] = f->arg_t[q] == T_I32 ? ex_int(a, m->arg[i].i) : ex_flt(a, m->arg[i].f);
        }
        s->arg = arg;
        s->narg = f->narg;
        s->callee = f;
    }
    for (int i = 0; i < s->nbody; i++)
        redirect_calls(a, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        redirect_calls(a, s->els[i]);
}

/* Callees first (kernels that call none), then their callers, whose
 * calls by then name the callees' families. */
int kernel_families(Arena *a, Kernel **ks, int n, FILE *dump)
{
    bool *caller = netc_alloc(sizeof(bool) * ((size_t)n + 1));
    bool *callee = netc_alloc(sizeof(bool) * ((size_t)n + 1));
    Kernel **emit = netc_alloc(sizeof(Kernel *) * ((size_t)n + 1));
    for (int i = 0; i < n; i++) {
        caller[i] = has_call(ks[i]->body);
        callee[i] = !caller[i];
    }
    group(a, ks, n, callee, emit, dump);
    int id = 0;
    for (int i = 0; i < n; i++)
        if (callee[i] && emit[i])
            emit[i]->index = id++;
    for (int i = 0; i < n; i++)
        if (caller[i])
            redirect_calls(a, ks[i]->body);
    group(a, ks, n, caller, emit, dump);
    int out = 0;
    for (int i = 0; i < n; i++)
        if (emit[i])
            ks[out++] = emit[i];
    free(caller);
    free(callee);
    free(emit);
    return out;
}
