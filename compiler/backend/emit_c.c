/* emit_c.c - the C backend: a Program as portable C99.
 *
 * Needs: a built Program (kernels verified, memory planned).  Provides:
 * DIR/<name>.c and DIR/<name>.h (emit_c), the header alone (emit_c_header)
 * and a main() for `netc build` (emit_c_main).  docs/codegen.md describes
 * the generated API and the exact C each loop-IR construct becomes; the
 * LLVM backend mirrors it.
 *
 *   kernel k1_relu(n; y[w] 16*n, x 16*n)      static void k1_relu(int n, float *restrict y,
 *     for i in 0..n*16                  ->                        const float *restrict x)
 *       y[i] = max(x[i], 0.0)              {
 *                                              const int i_end = n*16;
 *                                              for (int i = 0; i < i_end; i++) {
 *                                                  y[i] = netc_fmax(x[i], 0.0f);
 *                                              ...
 *
 * The output uses only <math.h> and <stddef.h>: no heap, no stdio, no
 * writable globals, and it is deterministic (no dates, no host paths).
 */
#include "emit_c.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- names ---- */

static bool is_ident(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* NAME in upper case, for macros: lenet -> LENET. */
static const char *upper(Arena *a, const char *s)
{
    char *u = arena_strdup(a, s);
    for (char *c = u; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    return u;
}

/* Text for a C comment: one line, and never a comment terminator. */
static void put_comment_text(Buf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\n' || *s == '\r' || *s == '\t')
            buf_puts(b, " ");
        else if (*s == '*' && s[1] == '/')
            buf_puts(b, "* ");
        else if ((unsigned char)*s >= 0x20)
            buf_printf(b, "%c", *s);
    }
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static const Node *node_of(const Program *p, int id)
{
    const Graph *g = p->m->g;
    NETC_ASSERT(g && id >= 0 && id < g->nnode);
    return g->node[id];
}

/* "[N, 1, 28, 28]", "[10]", "scalar". */
static void put_shape(Buf *b, const Shape *s)
{
    if (s->rank == 0 && !s->batched) {
        buf_puts(b, "scalar");
        return;
    }
    buf_puts(b, "[");
    if (s->batched)
        buf_puts(b, s->rank ? "N, " : "N");
    for (int i = 0; i < s->rank; i++)
        buf_printf(b, "%s%d", i ? ", " : "", s->d[i]);
    buf_puts(b, "]");
}

static long shape_floats(const Shape *s)
{
    long v = 1;
    for (int i = 0; i < s->rank; i++)
        v *= s->d[i];
    return v;
}

/* ---- literals ---- */

/* The shortest decimal that reads back as the same float, as a C float
 * constant: 0.1f, 1.0f, -0.0f, 1e-05f.  Decimal to float conversion is
 * correctly rounded in gcc and clang, so the value is exact. */
static void put_c_float(Buf *b, float v)
{
    if (isnan(v)) {
        buf_puts(b, "NAN");
        return;
    }
    if (isinf(v)) {
        buf_puts(b, v < 0 ? "-INFINITY" : "INFINITY");
        return;
    }
    char s[32];
    float_shortest(s, sizeof s, v);
    buf_puts(b, s);
    buf_puts(b, strpbrk(s, ".e") ? "f" : ".0f");
}

static void put_c_int(Buf *b, int v)
{
    /* -2147483648 would be the negation of a constant too big for int */
    if (v == INT_MIN)
        buf_puts(b, "(-2147483647 - 1)");
    else
        buf_printf(b, "%d", v);
}

/* A C string literal per line of text; trigraph-safe ("??" -> "?\?"). */
static void put_c_string(Buf *b, const char *s, const char *indent)
{
    if (!*s) {
        buf_printf(b, "%s\"\"", indent);
        return;
    }
    while (*s) {
        buf_printf(b, "%s\"", indent);
        char prev = 0;
        for (; *s; s++) {
            unsigned char c = (unsigned char)*s;
            if (c == '\n') {
                buf_puts(b, "\\n");
                s++;
                break;
            }
            if (c == '"' || c == '\\')
                buf_printf(b, "\\%c", c);
            else if (c == '?' && prev == '?')
                buf_puts(b, "\\?");
            else if (c < 0x20 || c >= 0x7f)
                buf_printf(b, "\\%03o", c);
            else
                buf_printf(b, "%c", c);
            prev = (char)c;
        }
        buf_puts(b, *s ? "\"\n" : "\"");
    }
}

/* ---- expressions, with C's precedence ---- */

enum { P_COND, P_OR, P_AND, P_EQ, P_REL, P_ADD, P_MUL, P_UNARY, P_PRIMARY };

static int prec(const Expr *e)
{
    switch (e->k) {
    case X_OR: return P_OR;
    case X_AND: return P_AND;
    case X_EQ: case X_NE: return P_EQ;
    case X_LT: case X_LE: return P_REL;
    case X_ADD: case X_SUB: return P_ADD;
    case X_MUL: case X_DIV: case X_MOD: return P_MUL;
    case X_NEG: case X_NOT: case X_I2F: case X_F2I: return P_UNARY;
    case X_INT: return e->ival < 0 ? P_UNARY : P_PRIMARY;
    case X_FLT: return signbit(e->fval) && !isnan(e->fval) ? P_UNARY : P_PRIMARY;
    default: return P_PRIMARY; /* loads, calls, and selects (printed in parentheses) */
    }
}

static const char *c_binop(ExprKind k)
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

static bool has_load(const Expr *e)
{
    return e && (e->k == X_LOAD || has_load(e->a) || has_load(e->b) || has_load(e->c));
}

/* A select evaluates both arms (loop.h), but C's ?: evaluates one, and a
 * compiler that cannot prove a load in the other safe keeps the branch
 * (on a relu mask, a misprediction every other element).  Passing both
 * arms to a function evaluates them first, so it picks without one. */
static bool sel_call(const Expr *e)
{
    return has_load(e->b) || has_load(e->c);
}

static const char *c_call(ExprKind k, LType t)
{
    switch (k) {
    case X_MIN: return t == T_I32 ? "netc_imin" : "netc_fmin";
    case X_MAX: return t == T_I32 ? "netc_imax" : "netc_fmax";
    case X_EXP: return "expf";
    case X_LOG: return "logf";
    case X_TANH: return "tanhf";
    case X_SQRT: return "sqrtf";
    case X_HASH: return "netc_hash";
    default: return NULL;
    }
}

/* Lane netc_l of a vector expression (T_V32), printed inside the lane loop
 * of its statement: loads read buf[i + netc_l], variables are float arrays,
 * and a broadcast is its scalar. */
static void put_c_expr(Buf *b, const Kernel *k, const Expr *e, int min);

/* fmaf(a, b, c) with each operand printed by `put` (scalar or lane). */
static void put_c_fma(Buf *b, const Kernel *k, const Expr *e,
                      void (*put)(Buf *, const Kernel *, const Expr *, int))
{
    buf_puts(b, "fmaf(");
    put(b, k, e->a, P_COND);
    buf_puts(b, ", ");
    put(b, k, e->b, P_COND);
    buf_puts(b, ", ");
    put(b, k, e->c, P_COND);
    buf_puts(b, ")");
}

static void put_c_lane(Buf *b, const Kernel *k, const Expr *e, int min)
{
    switch (e->k) {
    case X_LOAD:
        buf_printf(b, "%s[", k->buf[e->buf].name);
        put_c_expr(b, k, e->a, P_ADD);
        buf_puts(b, " + netc_l]");
        return;
    case X_VAR:
        buf_printf(b, "%s[netc_l]", k->var[e->var].name);
        return;
    case X_BCAST:
        put_c_expr(b, k, e->a, min);
        return;
    case X_FMA:
        put_c_fma(b, k, e, put_c_lane);
        return;
    case X_NEG:
        if (min > P_UNARY)
            buf_puts(b, "(");
        buf_puts(b, "-");
        put_c_lane(b, k, e->a, P_PRIMARY + 1);
        if (min > P_UNARY)
            buf_puts(b, ")");
        return;
    case X_MIN: case X_MAX:
        buf_printf(b, "%s(", c_call(e->k, T_F32));
        put_c_lane(b, k, e->a, P_COND);
        buf_puts(b, ", ");
        put_c_lane(b, k, e->b, P_COND);
        buf_puts(b, ")");
        return;
    case X_SELECT: {
        /* both sides are evaluated, as in the vector form (sel_call) */
        bool call = sel_call(e);
        buf_puts(b, call ? "netc_fsel(" : "(");
        put_c_lane(b, k, e->a->a, P_REL + 1);
        buf_puts(b, c_binop(e->a->k));
        put_c_lane(b, k, e->a->b, P_REL + 1);
        buf_puts(b, call ? ", " : " ? ");
        put_c_lane(b, k, e->b, call ? P_COND : P_OR);
        buf_puts(b, call ? ", " : " : ");
        put_c_lane(b, k, e->c, call ? P_COND : P_OR);
        buf_puts(b, ")");
        return;
    }
    default: {
        const char *op = c_binop(e->k);
        NETC_ASSERT(op);
        int p = prec(e);
        if (p < min)
            buf_puts(b, "(");
        put_c_lane(b, k, e->a, p);
        buf_puts(b, op);
        put_c_lane(b, k, e->b, p + 1);
        if (p < min)
            buf_puts(b, ")");
        return;
    }
    }
}

/* A vector expression in the GNU vector-extension form (NETC_VEXT). */
static void put_c_vexpr(Buf *b, const Kernel *k, const Expr *e)
{
    int w = k->vlen;
    switch (e->k) {
    case X_LOAD:
        buf_printf(b, "netc_vload%d(%s + ", w, k->buf[e->buf].name);
        put_c_expr(b, k, e->a, P_ADD);
        buf_puts(b, ")");
        return;
    case X_VAR:
        buf_puts(b, k->var[e->var].name);
        return;
    case X_BCAST:
        buf_printf(b, "netc_vbcast%d(", w);
        put_c_expr(b, k, e->a, P_COND);
        buf_puts(b, ")");
        return;
    case X_NEG:
        buf_puts(b, "(-");
        put_c_vexpr(b, k, e->a);
        buf_puts(b, ")");
        return;
    case X_SELECT:
        /* a GNU vector comparison is a vector of int lanes, -1 where true */
        buf_printf(b, "netc_vsel%d(", w);
        put_c_vexpr(b, k, e->a->a);
        buf_puts(b, c_binop(e->a->k));
        put_c_vexpr(b, k, e->a->b);
        buf_puts(b, ", ");
        put_c_vexpr(b, k, e->b);
        buf_puts(b, ", ");
        put_c_vexpr(b, k, e->c);
        buf_puts(b, ")");
        return;
    case X_FMA: case X_MIN: case X_MAX:
        buf_printf(b, "netc_v%s%d(", e->k == X_FMA ? "fma" : e->k == X_MIN ? "min" : "max", w);
        put_c_vexpr(b, k, e->a);
        buf_puts(b, ", ");
        put_c_vexpr(b, k, e->b);
        if (e->k == X_FMA) {
            buf_puts(b, ", ");
            put_c_vexpr(b, k, e->c);
        }
        buf_puts(b, ")");
        return;
    default: {
        const char *op = c_binop(e->k);
        NETC_ASSERT(op);
        buf_puts(b, "(");
        put_c_vexpr(b, k, e->a);
        buf_puts(b, op);
        put_c_vexpr(b, k, e->b);
        buf_puts(b, ")");
        return;
    }
    }
}

static void put_c_expr(Buf *b, const Kernel *k, const Expr *e, int min)
{
    if (e->k == X_HSUM) {
        buf_printf(b, "netc_hsum%d(%s)", k->vlen, k->var[e->a->var].name);
        return;
    }
    if (e->k == X_FMA) {
        put_c_fma(b, k, e, put_c_expr);
        return;
    }
    int p = prec(e);
    bool paren = p < min;
    if (paren)
        buf_puts(b, "(");
    const char *op = c_binop(e->k);
    const char *fn = c_call(e->k, e->t);
    switch (e->k) {
    case X_INT: put_c_int(b, e->ival); break;
    case X_FLT: put_c_float(b, e->fval); break;
    case X_VAR: buf_puts(b, k->var[e->var].name); break;
    case X_BATCH: buf_puts(b, "n"); break;
    case X_ARG: buf_printf(b, "netc_arg%d", e->ival); break;
    case X_LOAD:
        buf_printf(b, "%s[", k->buf[e->buf].name);
        put_c_expr(b, k, e->a, P_COND);
        buf_puts(b, "]");
        break;
    case X_NEG: case X_NOT: case X_I2F: case X_F2I: {
        static const char *const pre[] = {"-", "!", "(float)", "(int)"};
        int i = e->k == X_NEG ? 0 : e->k == X_NOT ? 1 : e->k == X_I2F ? 2 : 3;
        buf_puts(b, pre[i]);
        /* "-(-x)", never "--x", which C reads as a decrement */
        bool wrap = i < 2 && prec(e->a) == P_UNARY;
        put_c_expr(b, k, e->a, wrap ? P_PRIMARY + 1 : P_UNARY);
        break;
    }
    case X_SELECT: {
        /* netc_fsel(c, a, b) when an arm loads (sel_call), else (c ? a : b) */
        bool call = sel_call(e);
        int arg = call ? P_COND : P_OR;
        buf_puts(b, !call ? "(" : e->t == T_I32 ? "netc_isel(" : "netc_fsel(");
        put_c_expr(b, k, e->a, arg);
        buf_puts(b, call ? ", " : " ? ");
        put_c_expr(b, k, e->b, arg);
        buf_puts(b, call ? ", " : " : ");
        put_c_expr(b, k, e->c, arg);
        buf_puts(b, ")");
        break;
    }
    default:
        if (op) {
            put_c_expr(b, k, e->a, p);
            buf_puts(b, op);
            put_c_expr(b, k, e->b, p + 1);
        } else {
            NETC_ASSERT(fn);
            buf_printf(b, "%s(", fn);
            put_c_expr(b, k, e->a, P_COND);
            if (e->k == X_MIN || e->k == X_MAX || e->k == X_HASH) {
                buf_puts(b, ", ");
                put_c_expr(b, k, e->b, P_COND);
            }
            buf_puts(b, ")");
        }
        break;
    }
    if (paren)
        buf_puts(b, ")");
}

/* ---- what a kernel uses ---- */

/* H_VFMIN/H_VFMAX: float min/max inside vector expressions, which need the
 * scalar helper only in the lane-loop form (!NETC_VEXT). */
enum { H_IMIN = 1, H_IMAX = 2, H_FMIN = 4, H_FMAX = 8, H_HSUM = 16, H_VFMIN = 32, H_VFMAX = 64,
       H_HASH = 128, H_ISEL = 256, H_FSEL = 512, H_VFSEL = 1024 };

typedef struct {
    bool batch;         /* n is read */
    bool *buf;          /* per buffer: loaded or stored */
    unsigned helpers;   /* H_* */
} Uses;

static void uses_expr(Uses *u, const Expr *e)
{
    if (!e)
        return;
    if (e->k == X_BATCH)
        u->batch = true;
    if (e->k == X_LOAD)
        u->buf[e->buf] = true;
    if (e->k == X_MIN)
        u->helpers |= e->t == T_I32 ? H_IMIN : e->t == T_V32 ? H_VFMIN : H_FMIN;
    if (e->k == X_MAX)
        u->helpers |= e->t == T_I32 ? H_IMAX : e->t == T_V32 ? H_VFMAX : H_FMAX;
    if (e->k == X_HSUM)
        u->helpers |= H_HSUM;
    if (e->k == X_HASH)
        u->helpers |= H_HASH;
    if (e->k == X_SELECT && sel_call(e))
        u->helpers |= e->t == T_I32 ? H_ISEL : e->t == T_V32 ? H_VFSEL : H_FSEL;
    uses_expr(u, e->a);
    uses_expr(u, e->b);
    uses_expr(u, e->c);
}

static void uses_stmt(Uses *u, const Stmt *s)
{
    if (s->k == S_CALL) {
        u->batch = true;
        for (int i = 0; i < s->callee->nbuf; i++)
            u->buf[s->cbuf[i]] = true;
        for (int i = 0; i < s->narg; i++)
            uses_expr(u, s->arg[i]);
    }
    if (s->k == S_STORE)
        u->buf[s->buf] = true;
    uses_expr(u, s->lo);
    uses_expr(u, s->hi);
    uses_expr(u, s->cond);
    uses_expr(u, s->idx);
    uses_expr(u, s->val);
    for (int i = 0; i < s->nbody; i++)
        uses_stmt(u, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        uses_stmt(u, s->els[i]);
}

/* ---- kernels ---- */

typedef struct {
    Buf *b;
    Arena *a;
    const Kernel *k;
    const char **hoisted;   /* names of hoisted loop ends, unique per function */
    int nhoisted, caphoisted;
    Buf *pre;               /* functions outlined from parallel loops, printed
                               before the kernel */
    int npar;               /* parallel loops outlined so far */
} KEmit;

static bool name_used(const KEmit *ke, const char *s)
{
    const Kernel *k = ke->k;
    if (!strcmp(s, "n"))
        return true;
    for (int i = 0; i < k->nbuf; i++)
        if (!strcmp(s, k->buf[i].name))
            return true;
    for (int i = 0; i < k->nvar; i++)
        if (!strcmp(s, k->var[i].name))
            return true;
    for (int i = 0; i < ke->nhoisted; i++)
        if (!strcmp(s, ke->hoisted[i]))
            return true;
    return false;
}

/* "oc_end", or "oc_end_2" ... when taken. */
static const char *hoist_name(KEmit *ke, const char *var)
{
    const char *s = arena_printf(ke->a, "%s_end", var);
    for (int i = 2; name_used(ke, s); i++)
        s = arena_printf(ke->a, "%s_end_%d", var, i);
    if (ke->nhoisted == ke->caphoisted) {
        ke->caphoisted = ke->caphoisted ? 2 * ke->caphoisted : 8;
        const char **nv = arena_alloc(ke->a, (size_t)ke->caphoisted * sizeof *nv);
        if (ke->nhoisted)
            memcpy(nv, ke->hoisted, (size_t)ke->nhoisted * sizeof *nv);
        ke->hoisted = nv;
    }
    ke->hoisted[ke->nhoisted++] = s;
    return s;
}

static void indent(Buf *b, int depth)
{
    buf_printf(b, "%*s", 4 * depth, "");
}

static void put_c_stmt(KEmit *ke, const Stmt *s, int depth);

static void put_c_body(KEmit *ke, Stmt *const *v, int n, int depth)
{
    for (int i = 0; i < n; i++)
        put_c_stmt(ke, v[i], depth);
}

/* A parallel loop becomes three pieces: a body function with the kernel's
 * restrict buffers, the loop's range and its captured variables as
 * arguments; a task (void *ctx, int a, int b) that unpacks a context
 * struct and runs iterations lo+a .. lo+b-1; and, in place of the loop,
 * the context filled in and handed to netc_parallel_for.
 *
 *   struct k3_conv_par0 { int n; int lo; float *y; const float *x; int g; };
 *   static void k3_conv_par0_body(int n, float *restrict y, const float *restrict x,
 *                                 int netc_lo, int netc_hi, const int g) {...}
 *   static void k3_conv_par0(void *netc_ctx, int netc_a, int netc_b) {...}
 */
static void put_c_parallel(KEmit *ke, const Stmt *s, int depth)
{
    Buf *b = ke->b;
    Arena *a = ke->a;
    const Kernel *k = ke->k;
    const char *fn = arena_printf(a, "%s_par%d", k->name, ke->npar++);
    bool *cap = arena_alloc(a, sizeof(bool) * ((size_t)k->nvar + 1));
    loop_captures(k, s, cap);
    Uses u = {false, arena_alloc(a, sizeof(bool) * ((size_t)k->nbuf + 1)), 0};
    for (int i = 0; i < s->nbody; i++) /* the body alone: the bounds stay outside */
        uses_stmt(&u, s->body[i]);

    Buf *pb = ke->pre;
    buf_printf(pb, "struct %s {\n    int n;\n    int lo;\n", fn);
    for (int i = 0; i < k->nbuf; i++)
        buf_printf(pb, "    %sfloat *%s;\n", k->buf[i].written ? "" : "const ", k->buf[i].name);
    for (int v = 0; v < k->nvar; v++)
        if (cap[v]) {
            NETC_ASSERT(k->var[v].t != T_V32);
            buf_printf(pb, "    %s %s;\n", k->var[v].t == T_I32 ? "int" : "float", k->var[v].name);
        }
    buf_puts(pb, "};\n\n");

    buf_printf(pb, "static void %s_body(int n", fn);
    for (int i = 0; i < k->nbuf; i++)
        buf_printf(pb, ", %sfloat *restrict %s", k->buf[i].written ? "" : "const ", k->buf[i].name);
    buf_puts(pb, ", int netc_lo, int netc_hi");
    for (int v = 0; v < k->nvar; v++)
        if (cap[v])
            buf_printf(pb, ", const %s %s", k->var[v].t == T_I32 ? "int" : "float", k->var[v].name);
    buf_puts(pb, ")\n{\n");
    if (!u.batch)
        buf_puts(pb, "    (void)n;\n");
    for (int i = 0; i < k->nbuf; i++)
        if (!u.buf[i])
            buf_printf(pb, "    (void)%s;\n", k->buf[i].name);
    const char *v = k->var[s->var].name;
    buf_printf(pb, "    for (int %s = netc_lo; %s < netc_hi; %s++) {\n", v, v, v);
    Buf body = {0};
    KEmit sub = {&body, a, k, NULL, 0, 0, NULL, 0};
    put_c_body(&sub, s->body, s->nbody, 2);
    if (body.s)
        buf_puts(pb, body.s);
    buf_free(&body);
    buf_puts(pb, "    }\n}\n\n");

    buf_printf(pb, "static void %s(void *netc_ctx, int netc_a, int netc_b)\n{\n"
                   "    const struct %s *netc_t = (const struct %s *)netc_ctx;\n"
                   "    %s_body(netc_t->n", fn, fn, fn, fn);
    for (int i = 0; i < k->nbuf; i++)
        buf_printf(pb, ", netc_t->%s", k->buf[i].name);
    buf_puts(pb, ", netc_t->lo + netc_a, netc_t->lo + netc_b");
    for (int w = 0; w < k->nvar; w++)
        if (cap[w])
            buf_printf(pb, ", netc_t->%s", k->var[w].name);
    buf_puts(pb, ");\n}\n\n");

    indent(b, depth);
    buf_puts(b, "{\n");
    indent(b, depth + 1);
    buf_printf(b, "struct %s netc_t;\n", fn);
    indent(b, depth + 1);
    buf_puts(b, "netc_t.n = n;\n");
    for (int i = 0; i < k->nbuf; i++) {
        indent(b, depth + 1);
        buf_printf(b, "netc_t.%s = %s;\n", k->buf[i].name, k->buf[i].name);
    }
    for (int w = 0; w < k->nvar; w++)
        if (cap[w]) {
            indent(b, depth + 1);
            buf_printf(b, "netc_t.%s = %s;\n", k->var[w].name, k->var[w].name);
        }
    indent(b, depth + 1);
    buf_puts(b, "netc_t.lo = ");
    put_c_expr(b, k, s->lo, P_COND);
    buf_puts(b, ";\n");
    indent(b, depth + 1);
    buf_printf(b, "netc_parallel_for(%s, &netc_t, ", fn);
    put_c_expr(b, k, s->hi, P_ADD);
    buf_puts(b, " - netc_t.lo);\n");
    indent(b, depth);
    buf_puts(b, "}\n");
}

static void put_c_stmt(KEmit *ke, const Stmt *s, int depth)
{
    Buf *b = ke->b;
    const Kernel *k = ke->k;
    if (s->k == S_FOR && s->parallel) {
        put_c_parallel(ke, s, depth);
        return;
    }
    switch (s->k) {
    case S_BLOCK:
        indent(b, depth);
        buf_puts(b, "{\n");
        put_c_body(ke, s->body, s->nbody, depth + 1);
        indent(b, depth);
        buf_puts(b, "}\n");
        break;
    case S_FOR: {
        const char *v = k->var[s->var].name;
        /* The end is evaluated once: constants and n as they are, anything
         * else into a const local before the loop. */
        const char *end = NULL;
        if (s->hi->k != X_INT && s->hi->k != X_BATCH) {
            end = hoist_name(ke, v);
            indent(b, depth);
            buf_printf(b, "const int %s = ", end);
            put_c_expr(b, k, s->hi, P_COND);
            buf_puts(b, ";\n");
        }
        indent(b, depth);
        buf_printf(b, "for (int %s = ", v);
        put_c_expr(b, k, s->lo, P_COND);
        buf_printf(b, "; %s < ", v);
        if (end)
            buf_puts(b, end);
        else
            put_c_expr(b, k, s->hi, P_REL + 1);
        buf_printf(b, "; %s++) {\n", v);
        put_c_body(ke, s->body, s->nbody, depth + 1);
        indent(b, depth);
        buf_puts(b, "}\n");
        break;
    }
    case S_IF:
        indent(b, depth);
        buf_puts(b, "if (");
        put_c_expr(b, k, s->cond, P_COND);
        buf_puts(b, ") {\n");
        put_c_body(ke, s->body, s->nbody, depth + 1);
        indent(b, depth);
        if (s->nels) {
            buf_puts(b, "} else {\n");
            put_c_body(ke, s->els, s->nels, depth + 1);
            indent(b, depth);
        }
        buf_puts(b, "}\n");
        break;
    case S_STORE:
        indent(b, depth);
        if (s->val->t == T_V32) {
            /* GNU vector extensions where the compiler has them; else one
             * loop over lanes, which compilers turn back into one vector
             * instruction */
            const char *bn = k->buf[s->buf].name;
            buf_puts(b, "#if NETC_VEXT\n");
            indent(b, depth);
            buf_printf(b, "netc_vstore%d(%s + ", k->vlen, bn);
            put_c_expr(b, k, s->idx, P_ADD);
            buf_puts(b, ", ");
            if (s->accum) {
                buf_printf(b, "netc_vload%d(%s + ", k->vlen, bn);
                put_c_expr(b, k, s->idx, P_ADD);
                buf_puts(b, ") + ");
            }
            put_c_vexpr(b, k, s->val);
            buf_puts(b, ");\n#else\n");
            indent(b, depth);
            buf_printf(b, "for (int netc_l = 0; netc_l < %d; netc_l++) %s[", k->vlen, k->buf[s->buf].name);
            put_c_expr(b, k, s->idx, P_ADD);
            buf_puts(b, s->accum ? " + netc_l] += " : " + netc_l] = ");
            put_c_lane(b, k, s->val, P_COND);
            buf_puts(b, ";\n#endif\n");
            break;
        }
        buf_printf(b, "%s[", k->buf[s->buf].name);
        put_c_expr(b, k, s->idx, P_COND);
        buf_puts(b, s->accum ? "] += " : "] = ");
        put_c_expr(b, k, s->val, P_COND);
        buf_puts(b, ";\n");
        break;
    case S_DECL: case S_ASSIGN:
        indent(b, depth);
        if (k->var[s->var].t == T_V32) {
            const char *v = k->var[s->var].name;
            buf_puts(b, "#if NETC_VEXT\n");
            indent(b, depth);
            buf_printf(b, "%s%s = ", s->k == S_DECL ? arena_printf(ke->a, "netc_v%d ", k->vlen) : "", v);
            put_c_vexpr(b, k, s->val);
            buf_puts(b, ";\n#else\n");
            indent(b, depth);
            if (s->k == S_DECL) {
                buf_printf(b, "float %s[%d];\n", v, k->vlen);
                indent(b, depth);
            }
            buf_printf(b, "for (int netc_l = 0; netc_l < %d; netc_l++) %s[netc_l] = ", k->vlen, v);
            put_c_lane(b, k, s->val, P_COND);
            buf_puts(b, ";\n#endif\n");
            break;
        }
        if (s->k == S_DECL)
            buf_puts(b, k->var[s->var].t == T_I32 ? "int " : "float ");
        buf_printf(b, "%s = ", k->var[s->var].name);
        put_c_expr(b, k, s->val, P_COND);
        buf_puts(b, ";\n");
        break;
    case S_CALL:
        indent(b, depth);
        buf_printf(b, "%s(n", s->callee->name);
        for (int i = 0; i < s->callee->nbuf; i++)
            buf_printf(b, ", %s", k->buf[s->cbuf[i]].name);
        for (int i = 0; i < s->narg; i++) {
            buf_puts(b, ", ");
            put_c_expr(b, k, s->arg[i], P_COND);
        }
        buf_puts(b, ");\n");
        break;
    }
}

/* `void NAME(int n, float *restrict y, ...)`: a kernel's signature. */
static void put_kernel_sig(Buf *b, const Kernel *k)
{
    buf_printf(b, "void %s(int n", k->name);
    for (int i = 0; i < k->nbuf; i++)
        buf_printf(b, ", %sfloat *restrict %s", k->buf[i].written ? "" : "const ", k->buf[i].name);
    for (int i = 0; i < k->narg; i++)
        buf_printf(b, ", %s netc_arg%d", k->arg_t[i] == T_I32 ? "int" : "float", i);
    buf_puts(b, ")");
}

/* A kernel's definition: static in a whole program, external in a part
 * of a split one (the entries in part 0 call it). */
static void put_kernel(Buf *out, Arena *a, const Kernel *k, bool external)
{
    Buf text = {0}, pre = {0};
    Buf *b = &text;
    Uses u = {false, arena_alloc(a, sizeof(bool) * ((size_t)k->nbuf + 1)), 0};
    uses_stmt(&u, k->body);
    if (k->comment) {
        buf_puts(b, "/* ");
        put_comment_text(b, k->comment);
        buf_puts(b, " */\n");
    }
    buf_puts(b, external ? "" : "static ");
    buf_puts(b, k->outlined ? "NETC_NOINLINE " : "");
    put_kernel_sig(b, k);
    buf_puts(b, "\n{\n");
    if (!u.batch)
        buf_puts(b, "    (void)n;\n");
    for (int i = 0; i < k->nbuf; i++)
        if (!u.buf[i])
            buf_printf(b, "    (void)%s;\n", k->buf[i].name);
    KEmit ke = {b, a, k, NULL, 0, 0, &pre, 0};
    put_c_body(&ke, k->body->body, k->body->nbody, 1);
    buf_puts(b, "}\n\n");
    if (pre.s)
        buf_puts(out, pre.s);
    buf_puts(out, text.s);
    buf_free(&pre);
    buf_free(&text);
}

static bool has_parallel(const Stmt *s)
{
    if (s->k == S_FOR && s->parallel)
        return true;
    for (int i = 0; i < s->nbody; i++)
        if (has_parallel(s->body[i]))
            return true;
    for (int i = 0; i < s->nels; i++)
        if (has_parallel(s->els[i]))
            return true;
    return false;
}

/* The parallel-for hook: serial until the embedder (or the runtime)
 * installs one with NAME_set_parallel.  In a split program the other parts
 * call part 0's netc_parallel_for. */
static void put_parallel_hook(Buf *b, const char *name, bool external)
{
    buf_printf(b, "static NetcParallelFn netc_pf;\n"
                  "static void *netc_pool;\n\n"
                  "void %s_set_parallel(NetcParallelFn pf, void *pool)\n"
                  "{\n"
                  "    netc_pf = pf;\n"
                  "    netc_pool = pf ? pool : NULL;\n"
                  "}\n\n"
                  "%svoid netc_parallel_for(NetcTaskFn task, void *ctx, int count)\n"
                  "{\n"
                  "    if (count <= 0)\n"
                  "        return;\n"
                  "    if (netc_pf)\n"
                  "        netc_pf(netc_pool, task, ctx, count);\n"
                  "    else\n"
                  "        task(ctx, 0, count);\n"
                  "}\n\n", name, external ? "" : "static ");
}

static unsigned kernel_helpers(Arena *a, const Kernel *k)
{
    Uses u = {false, arena_alloc(a, sizeof(bool) * ((size_t)k->nbuf + 1)), 0};
    uses_stmt(&u, k->body);
    return u.helpers;
}

/* ---- entries ---- */

static bool entry_uses(const Entry *e, LocKind kind)
{
    for (int c = 0; c < e->ncall; c++)
        for (int i = 0; i < e->call[c].kernel->nbuf; i++)
            if (e->call[c].arg[i].k == kind)
                return true;
    return false;
}

/* Catches a plan that would make the generated code cast away const,
 * read a missing input or run past a buffer. */
static void check_loc(const Program *p, const Entry *e, const Kernel *k, int i, const Loc *l)
{
    const LBuf *kb = &k->buf[i];
    switch (l->k) {
    case LOC_ARENA: {
        /* fits for every n >= 1: at n = 1, and in the per-n slope */
        long end_fixed = l->off_fixed + kb->size_fixed, end_per_n = l->off_per_n + kb->size_per_n;
        NETC_ASSERT(l->off_fixed >= 0 && l->off_per_n >= 0);
        NETC_ASSERT(end_per_n <= e->arena_per_n);
        NETC_ASSERT(end_fixed + end_per_n <= e->arena_fixed + e->arena_per_n);
        break;
    }
    case LOC_PARAM: case LOC_GRAD:
        /* params and grads share one layout; grads exist only in entries
         * that write them */
        NETC_ASSERT(l->k == LOC_GRAD || !kb->written);
        NETC_ASSERT(l->k == LOC_PARAM || e->writes_grads);
        NETC_ASSERT(kb->size_per_n == 0);
        NETC_ASSERT(l->off_fixed >= 0 && l->off_fixed + kb->size_fixed <= p->param_floats);
        break;
    case LOC_IN:
        NETC_ASSERT(!kb->written);
        NETC_ASSERT(l->idx >= 0 && l->idx < e->nin);
        break;
    case LOC_OUT:
        NETC_ASSERT(l->idx >= 0 && l->idx < e->nout);
        break;
    case LOC_PREP:
        /* prepare writes the prepared weights, its twins only read them */
        NETC_ASSERT(e->kind != ENTRY_PLAIN && (e->kind == ENTRY_PREPARE || !kb->written));
        NETC_ASSERT(kb->size_per_n == 0);
        NETC_ASSERT(l->off_fixed >= 0 && l->off_fixed + kb->size_fixed <= p->prep_floats);
        break;
    }
}

/* Whether two buffers of one call share memory for some batch size: the
 * kernels mark every buffer restrict, so a written buffer must not
 * overlap any other.  Offsets are linear in n; three sizes cover the
 * plans program.c makes (fixed pool first, then the per-n pool). */
static bool overlap(const Loc *a, const LBuf *ba, const Loc *b, const LBuf *bb)
{
    if (a->k != b->k)
        return false; /* different arrays: arena, params, grads, in[], out[] */
    if (a->k == LOC_IN || a->k == LOC_OUT)
        return a->idx == b->idx;
    static const long ns[] = {1, 64, 1L << 20};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        long n = ns[i];
        long sa = a->off_fixed + a->off_per_n * n, ea = sa + ba->size_fixed + ba->size_per_n * n;
        long sb = b->off_fixed + b->off_per_n * n, eb = sb + bb->size_fixed + bb->size_per_n * n;
        if (sa < eb && sb < ea)
            return true;
    }
    return false;
}

static void check_no_alias(const Call *call)
{
    const Kernel *k = call->kernel;
    for (int i = 0; i < k->nbuf; i++)
        for (int j = i + 1; j < k->nbuf; j++)
            if (k->buf[i].written || k->buf[j].written)
                NETC_ASSERT(!overlap(&call->arg[i], &k->buf[i], &call->arg[j], &k->buf[j]));
}

static void put_loc(Buf *b, const Loc *l)
{
    switch (l->k) {
    case LOC_ARENA:
        if (l->off_per_n == 0 && l->off_fixed == 0)
            buf_puts(b, "arena");
        else if (l->off_per_n == 0)
            buf_printf(b, "arena + %ld", l->off_fixed);
        else if (l->off_fixed == 0)
            buf_printf(b, "arena + (size_t)%ld*(size_t)n", l->off_per_n);
        else
            buf_printf(b, "arena + ((size_t)%ld + (size_t)%ld*(size_t)n)", l->off_fixed, l->off_per_n);
        break;
    case LOC_PARAM: case LOC_GRAD: {
        const char *base = l->k == LOC_PARAM ? "params" : "grads";
        if (l->off_fixed)
            buf_printf(b, "%s + %ld", base, l->off_fixed);
        else
            buf_puts(b, base);
        break;
    }
    case LOC_IN: buf_printf(b, "in[%d]", l->idx); break;
    case LOC_OUT: buf_printf(b, "out[%d]", l->idx); break;
    case LOC_PREP:
        if (l->off_fixed)
            buf_printf(b, "prep + %ld", l->off_fixed);
        else
            buf_puts(b, "prep");
        break;
    }
}

/* The parameter list of an entry of this kind (docs/codegen.md). */
static const char *entry_params(EntryKind kind)
{
    switch (kind) {
    case ENTRY_PREPARE:
        return "(const float *params, float *prep, float *arena)";
    case ENTRY_PREPARED:
        return "(int n, const float *params, const float *prep, float *arena,\n"
               "    const float *const *in, float *const *out)";
    default:
        return "(int n, const float *params, float *grads, float *arena,\n"
               "    const float *const *in, float *const *out)";
    }
}

static void put_entry(Buf *b, const Program *p, const Entry *e)
{
    const char *name = p->m->name;
    bool prepare = e->kind == ENTRY_PREPARE;
    buf_printf(b, "void %s_%s%s\n{\n", name, e->name, entry_params(e->kind));
    if (e->ncall == 0 && !prepare)
        buf_puts(b, "    (void)n;\n");
    /* the pointer parameters (entry_params' order), each marked used when
     * no call reads it */
    static const struct { LocKind k; const char *name; } args[] = {
        {LOC_PARAM, "params"}, {LOC_GRAD, "grads"}, {LOC_PREP, "prep"}, {LOC_ARENA, "arena"},
        {LOC_IN, "in"}, {LOC_OUT, "out"},
    };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        LocKind k = args[i].k;
        if ((k == LOC_GRAD && e->kind != ENTRY_PLAIN) || (k == LOC_PREP && e->kind == ENTRY_PLAIN) ||
            ((k == LOC_IN || k == LOC_OUT) && prepare))
            continue; /* not a parameter of this kind of entry */
        if (!entry_uses(e, k))
            buf_printf(b, "    (void)%s;\n", args[i].name);
    }
    for (int c = 0; c < e->ncall; c++) {
        const Call *call = &e->call[c];
        const Kernel *k = call->kernel, *f = kernel_callee(k);
        /* prepare has no batch: its kernels do not read n */
        buf_puts(b, "    ");
        if (call->n_lo && call->n_hi)
            buf_printf(b, "if (n >= %d && n < %d) ", call->n_lo, call->n_hi);
        else if (call->n_lo || call->n_hi)
            buf_printf(b, "if (n %s %d) ", call->n_lo ? ">=" : "<", call->n_lo ? call->n_lo : call->n_hi);
        buf_printf(b, "%s(%s", f->name, prepare ? "1" : "n");
        for (int i = 0; i < k->nbuf; i++) {
            check_loc(p, e, k, i, &call->arg[i]);
            buf_puts(b, ", ");
            put_loc(b, &call->arg[i]);
        }
        for (int i = 0; i < f->narg; i++) {
            buf_puts(b, ", ");
            if (f->arg_t[i] == T_I32)
                put_c_int(b, k->arg[i].i);
            else
                put_c_float(b, k->arg[i].f);
        }
        check_no_alias(call);
        buf_puts(b, ");");
        if (call->node >= 0 && call->node < p->m->g->nnode) {
            buf_puts(b, " /* ");
            put_comment_text(b, node_of(p, call->node)->name);
            buf_puts(b, " */");
        }
        buf_puts(b, "\n");
    }
    buf_puts(b, "}\n");
}

/* ---- the header ---- */

static const Entry *find_entry(const Program *p, const char *name)
{
    for (int i = 0; i < p->nentry; i++)
        if (!strcmp(p->entry[i].name, name))
            return &p->entry[i];
    return NULL;
}

static bool has_weights(const Program *p)
{
    return p->weights && p->param_floats > 0;
}

static const char *entry_what(const char *name)
{
    static const struct { const char *name, *what; } what[] = {
        {"forward", "inference: inputs -> outputs"},
        {"train", "training step: inputs, target -> outputs, loss; gradients into grads"},
        {"eval", "evaluation: inputs, target -> outputs, loss, in inference mode; no grads"},
        {"grad", "gradient: inputs, incoming gradient -> outputs, input gradients; grads"},
        {"forward_prepared", "forward, reading the weight work prepare did from prep"},
        {"eval_prepared", "eval, reading the weight work prepare did from prep"},
    };
    for (size_t i = 0; i < sizeof what / sizeof what[0]; i++)
        if (!strcmp(name, what[i].name))
            return what[i].what;
    return "entry point";
}

/* "#define LENET_FORWARD_IN0_FLOATS(n) ((size_t)784*(size_t)(n))", with
 * the value's name and shape in a comment above. */
static void put_io(Buf *b, const Program *p, const char *UE, bool in, int i, int node)
{
    const char *kind = in ? "in" : "out", *KIND = in ? "IN" : "OUT";
    const Node *nd = node_of(p, node);
    buf_printf(b, "/*   %s[%d] ", kind, i);
    put_comment_text(b, nd->name);
    buf_puts(b, " ");
    put_shape(b, &nd->shape);
    buf_puts(b, " */\n");
    long f = shape_floats(&nd->shape);
    if (nd->shape.batched)
        buf_printf(b, "#define %s_%s%d_FLOATS(n) ((size_t)%ld*(size_t)(n))\n", UE, KIND, i, f);
    else
        buf_printf(b, "#define %s_%s%d_FLOATS(n) ((size_t)%ld)\n", UE, KIND, i, f);
}

static void gen_header(Buf *b, Arena *a, const Program *p)
{
    const char *name = p->m->name, *U = upper(a, name);
    buf_printf(b, "/* %s.h - generated by netc", name);
    if (p->m->file) {
        buf_puts(b, " from ");
        put_comment_text(b, base_name(p->m->file));
    }
    buf_puts(b, "; do not edit.\n");
    buf_printf(b,
        " *\n"
        " * The network as plain C functions: no heap, no I/O; the only global\n"
        " * state is the parallel-for installed by %s_set_parallel.\n"
        " * Every entry point takes the batch size n, the parameters (%s_PARAM_FLOATS\n"
        " * floats, offsets in %s_meta), a gradient array of the same layout (train\n"
        " * entries only, else NULL), a scratch arena of %s_<ENTRY>_ARENA_FLOATS(n)\n"
        " * floats, and arrays of input and output pointers.  Tensors are float32,\n"
        " * row-major, batch first.  See docs/codegen.md.\n"
        " */\n", name, U, name, U);
    buf_printf(b, "#ifndef %s_H_NETC\n#define %s_H_NETC\n\n#include <stddef.h>\n\n", U, U);
    buf_puts(b, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    buf_printf(b, "#define %s_PARAM_FLOATS %ld\n", U, p->param_floats);

    long maxf = 0, maxn = 0;
    for (int i = 0; i < p->nentry; i++) {
        maxf = p->entry[i].arena_fixed > maxf ? p->entry[i].arena_fixed : maxf;
        maxn = p->entry[i].arena_per_n > maxn ? p->entry[i].arena_per_n : maxn;
    }
    buf_puts(b, "/* an arena large enough for every entry point */\n");
    buf_printf(b, "#define %s_ARENA_FLOATS(n) ((size_t)%ld + (size_t)%ld*(size_t)(n))\n", U, maxf, maxn);

    for (int i = 0; i < p->nentry; i++) {
        const Entry *e = &p->entry[i];
        const char *UE = arena_printf(a, "%s_%s", U, upper(a, e->name));
        if (e->kind == ENTRY_PREPARE) {
            buf_printf(b, "\n/* %s_prepare: the work on the weights alone that the _prepared\n"
                          " * entries leave out (filter transforms, folded batch norms): call it\n"
                          " * once after loading or changing params, then any _prepared entry\n"
                          " * with the same params and prep.  prep: %s_PREP_FLOATS floats;\n"
                          " * arena: %ld floats of scratch (NULL when 0). */\n",
                       name, U, e->arena_fixed);
            buf_printf(b, "#define %s_PREP_FLOATS %ld\n", U, p->prep_floats);
            buf_printf(b, "#define %s_ARENA_FLOATS ((size_t)%ld)\n", UE, e->arena_fixed);
            buf_printf(b, "void %s_%s%s;\n", name, e->name, entry_params(e->kind));
            continue;
        }
        buf_printf(b, "\n/* %s_%s: %s.\n", name, e->name, entry_what(e->name));
        buf_printf(b, " * arena: %ld + %ld*n floats (%ld + %ld*n without reuse)%s */\n",
                   e->arena_fixed, e->arena_per_n, e->naive_fixed, e->naive_per_n,
                   e->kind == ENTRY_PREPARED ? "; prep as written by prepare"
                   : e->writes_grads          ? "; writes grads"
                                              : "; grads unused, may be NULL");
        buf_printf(b, "#define %s_ARENA_FLOATS(n) ((size_t)%ld + (size_t)%ld*(size_t)(n))\n",
                   UE, e->arena_fixed, e->arena_per_n);
        for (int j = 0; j < e->nin; j++)
            put_io(b, p, UE, true, j, e->in[j]);
        for (int j = 0; j < e->nout; j++)
            put_io(b, p, UE, false, j, e->out[j]);
        buf_printf(b, "void %s_%s%s;\n", name, e->name, entry_params(e->kind));
    }
    if (!find_entry(p, "prepare"))
        buf_printf(b, "\n/* No weight work to prepare: no %s_prepare or _prepared entries. */\n"
                      "#define %s_PREP_FLOATS 0\n", name, U);

    buf_printf(b,
        "\n/* Threads.  Kernels run their parallel loops through a parallel-for:\n"
        " * pf(pool, task, ctx, count) must call task(ctx, lo, hi) on disjoint\n"
        " * ranges covering [0, count) and return when all are done.  The default\n"
        " * (and pf == NULL) runs task(ctx, 0, count) on the calling thread.  The\n"
        " * runtime's pthread pool (netc_pool.h: netc_pool_run) is one such pf.\n"
        " * Results are bit-identical whatever pf does with the ranges. */\n"
        "#ifndef NETC_PARALLEL_TYPES_DEFINED\n"
        "#define NETC_PARALLEL_TYPES_DEFINED\n"
        "typedef void (*NetcTaskFn)(void *ctx, int lo, int hi);\n"
        "typedef void (*NetcParallelFn)(void *pool, NetcTaskFn task, void *ctx, int count);\n"
        "#endif\n"
        "#define %s_HAS_SET_PARALLEL 1\n"
        "void %s_set_parallel(NetcParallelFn pf, void *pool);\n", U, name);
    buf_printf(b, "\n/* The model's description for the runtime (docs/runtime.md). */\n");
    buf_printf(b, "extern const char %s_meta[];\n", name);
    if (has_weights(p)) {
        buf_puts(b, "/* Trained parameters, embedded at compile time. */\n");
        buf_printf(b, "extern const float %s_weights[%s_PARAM_FLOATS];\n", name, U);
    }

    const Entry *fwd = find_entry(p, "forward");
    if (fwd && fwd->nin == 1 && fwd->nout == 1) {
        buf_printf(b,
            "\n/* Inference on n samples: x holds %s_FORWARD_IN0_FLOATS(n) floats, y\n"
            " * receives %s_FORWARD_OUT0_FLOATS(n), arena has %s_FORWARD_ARENA_FLOATS(n). */\n"
            "static inline void %s_predict(int n, const float *params, float *arena,\n"
            "    const float *x, float *y)\n"
            "{\n"
            "    const float *in[1];\n"
            "    float *out[1];\n"
            "    in[0] = x;\n"
            "    out[0] = y;\n"
            "    %s_forward(n, params, NULL, arena, in, out);\n"
            "}\n", U, U, U, name, name);
    }
    buf_printf(b, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* ---- the source ---- */

static void put_helpers(Buf *b, unsigned h, int vlen)
{
    if (vlen) {
        int w = vlen;
        buf_printf(b, "/* Vectors of %d floats: GNU C's vector extension where the compiler\n"
                      " * has it (gcc, clang) and the target's vector unit is enabled, else\n"
                      " * arrays and loops over lanes; both compute\n"
                      " * the same bits.  -DNETC_PORTABLE_VECTORS forces the arrays. */\n"
                      "#if defined(__GNUC__) && !defined(NETC_PORTABLE_VECTORS) && (%s)\n"
                      "#define NETC_VEXT 1\n"
                      "typedef float netc_v%d __attribute__((vector_size(%d)));\n", w,
                   w >= 16 ? "defined(__AVX512F__)" : w == 8 ? "defined(__AVX__)"
                                                      : "defined(__SSE2__) || defined(__ARM_NEON)",
                   w, 4 * w);
        /* GCC tunes some AVX-512 CPUs (-march=native on them) for 256-bit
         * vectors: the 16-lane loops below are then built from halves
         * through the stack, and every load of such a value stalls on
         * store forwarding (LeNet's training 4x slower). */
        if (w >= 16)
            buf_puts(b, "#if !defined(__clang__)\n#pragma GCC target(\"prefer-vector-width=512\")\n#endif\n");
        buf_printf(b, "static inline __attribute__((unused)) netc_v%d netc_vload%d(const float *p)\n"
                      "{\n    netc_v%d v = {0};\n    __builtin_memcpy(&v, p, sizeof v);\n    return v;\n}\n", w, w, w);
        buf_printf(b, "static inline __attribute__((unused)) void netc_vstore%d(float *p, netc_v%d v)\n"
                      "{\n    __builtin_memcpy(p, &v, sizeof v);\n}\n", w, w);
        /* A broadcast is a vector literal.  fma, min and max: x86's
         * instructions where the target has them (the same bits: one
         * rounding in fma, and MINPS/MAXPS are exactly a < b ? a : b and
         * a > b ? a : b); they compile twice as fast as the lane loops,
         * which the compiler must vectorise.  gcc reaches them through the
         * builtins behind <immintrin.h>'s intrinsics: parsing that header
         * was a quarter of a LeNet part's compile (1.08 -> 0.84 s, the same
         * machine code); clang's builtins differ, so clang includes it. */
        buf_printf(b, "static inline __attribute__((unused)) netc_v%d netc_vbcast%d(float s)\n{\n"
                      "    return (netc_v%d){", w, w, w);
        for (int l = 0; l < w; l++)
            buf_puts(b, l ? ", s" : "s");
        buf_puts(b, "};\n}\n");
        const char *mm = w >= 16 ? "_mm512" : w == 8 ? "_mm256" : "_mm";
        const char *mt = w >= 16 ? "__m512" : w == 8 ? "__m256" : "__m128";
        const char *bi = w >= 16 ? "512_mask" : w == 8 ? "256" : "";
        const char *mask = w >= 16 ? ", a, (unsigned short)-1, 4" : "";
        const char *fmask = w >= 16 ? ", (unsigned short)-1, 4" : "";
        if (w >= 8) /* the AVX guards above: x86 */
            buf_puts(b, "#define NETC_X86 1\n");
        else
            buf_puts(b, "#if defined(__SSE2__)\n#define NETC_X86 1\n#else\n#define NETC_X86 0\n#endif\n");
        buf_puts(b, "#if NETC_X86 && defined(__clang__)\n#include <immintrin.h>\n#endif\n");
        buf_printf(b, "#if NETC_X86%s\n"
                      "static inline __attribute__((unused)) netc_v%d netc_vfma%d(netc_v%d a, netc_v%d b, netc_v%d c)\n{\n"
                      "#if defined(__clang__)\n"
                      "    return (netc_v%d)%s_fmadd_ps((%s)a, (%s)b, (%s)c);\n"
                      "#else\n"
                      "    return __builtin_ia32_vfmaddps%s(a, b, c%s);\n"
                      "#endif\n}\n#else\n",
                   w >= 16 ? "" : " && defined(__FMA__)", w, w, w, w, w, w, mm, mt, mt, mt, bi, fmask);
        buf_printf(b, "static inline __attribute__((unused)) netc_v%d netc_vfma%d(netc_v%d a, netc_v%d b, netc_v%d c)\n{\n"
                      "    netc_v%d r = c;\n    for (int l = 0; l < %d; l++)\n        r[l] = fmaf(a[l], b[l], c[l]);\n"
                      "    return r;\n}\n#endif\n", w, w, w, w, w, w, w);
        buf_puts(b, "#if NETC_X86\n");
        for (int mx = 0; mx < 2; mx++)
            buf_printf(b, "static inline __attribute__((unused)) netc_v%d netc_v%s%d(netc_v%d a, netc_v%d b)\n{\n"
                          "#if defined(__clang__)\n"
                          "    return (netc_v%d)%s_%s_ps((%s)a, (%s)b);\n"
                          "#else\n"
                          "    return __builtin_ia32_%sps%s(a, b%s);\n"
                          "#endif\n}\n",
                       w, mx ? "max" : "min", w, w, w, w, mm, mx ? "max" : "min", mt, mt,
                       mx ? "max" : "min", bi, mask);
        buf_puts(b, "#else\n");
        for (int mx = 0; mx < 2; mx++)
            buf_printf(b, "static inline __attribute__((unused)) netc_v%d netc_v%s%d(netc_v%d a, netc_v%d b)\n{\n"
                          "    netc_v%d r = a;\n    for (int l = 0; l < %d; l++)\n        r[l] = a[l] %s b[l] ? a[l] : b[l];\n"
                          "    return r;\n}\n", w, mx ? "max" : "min", w, w, w, w, w, mx ? ">" : "<");
        buf_puts(b, "#endif\n");
        buf_printf(b, "typedef int netc_vi%d __attribute__((vector_size(%d)));\n"
                      "static inline __attribute__((unused)) netc_v%d netc_vsel%d(netc_vi%d m, netc_v%d a, netc_v%d b)\n{\n"
                      "    return (netc_v%d)((m & (netc_vi%d)a) | (~m & (netc_vi%d)b));\n}\n",
                   w, 4 * w, w, w, w, w, w, w, w, w);
        buf_printf(b, "static inline __attribute__((unused)) float netc_hsum%d(netc_v%d v)\n{\n    float s = v[0];\n"
                      "    for (int l = 1; l < %d; l++)\n        s += v[l];\n    return s;\n}\n", w, w, w);
        buf_printf(b, "#else\n#define NETC_VEXT 0\n"
                      "/* the lanes of a vector added in lane order, as loop.h's hsum */\n"
                      "static inline float netc_hsum%d(const float *v)\n"
                      "{\n"
                      "    float s = v[0];\n"
                      "    for (int l = 1; l < %d; l++)\n"
                      "        s += v[l];\n"
                      "    return s;\n"
                      "}\n#endif\n\n", w, w);
    }
    h &= ~(unsigned)H_HSUM;
    if (h & H_HASH)
        buf_puts(b, "/* the loop IR's X_HASH (loop_hash in netc's loop.h), on 32-bit unsigned\n"
                    " * arithmetic that wraps: a counter-based hash, in [0, 2^24) */\n"
                    "static inline unsigned long netc_hash_mix(unsigned long x)\n{\n"
                    "    x &= 0xffffffffUL;\n"
                    "    x ^= x >> 16;\n    x = (x * 0x7feb352dUL) & 0xffffffffUL;\n"
                    "    x ^= x >> 15;\n    x = (x * 0x846ca68bUL) & 0xffffffffUL;\n"
                    "    return x ^ (x >> 16);\n}\n"
                    "static inline int netc_hash(int a, int b)\n{\n"
                    "    unsigned long m = netc_hash_mix((unsigned long)(unsigned)a);\n"
                    "    return (int)(netc_hash_mix(m ^ (unsigned long)(unsigned)b) >> 8);\n}\n\n");
    h &= ~(unsigned)H_HASH;
    if (!h)
        return;
    if (h & (H_IMIN | H_IMAX | H_FMIN | H_FMAX | H_VFMIN | H_VFMAX))
        buf_puts(b, "/* min and max keep the loop IR's exact semantics: max(a, b) is\n"
                    " * a > b ? a : b, so a NaN in either operand yields b, and\n"
                    " * max(-0.0f, 0.0f) is 0.0f but max(0.0f, -0.0f) is -0.0f (fmaxf differs). */\n");
    if (h & H_IMIN)
        buf_puts(b, "static inline int netc_imin(int a, int b) { return a < b ? a : b; }\n");
    if (h & H_IMAX)
        buf_puts(b, "static inline int netc_imax(int a, int b) { return a > b ? a : b; }\n");
    if (h & (H_ISEL | H_FSEL | H_VFSEL))
        buf_puts(b, "/* c ? a : b with both arms evaluated, as the loop IR's select, so\n"
                    " * that the compiler picks without a branch */\n");
    if (h & H_ISEL)
        buf_puts(b, "static inline int netc_isel(int c, int a, int b) { return c ? a : b; }\n");
    /* used only by vector lanes: only the lane-loop form needs them */
    unsigned lanes_only = (h & H_VFMIN && !(h & H_FMIN) ? H_FMIN : 0) |
                          (h & H_VFMAX && !(h & H_FMAX) ? H_FMAX : 0) |
                          (h & H_VFSEL && !(h & H_FSEL) ? H_FSEL : 0);
    h |= (h & H_VFMIN ? H_FMIN : 0) | (h & H_VFMAX ? H_FMAX : 0) | (h & H_VFSEL ? H_FSEL : 0);
    for (int pass = 0; pass < 2; pass++) {
        unsigned want = pass == 0 ? h & ~lanes_only : lanes_only;
        if (pass == 1 && lanes_only)
            buf_puts(b, "#if !NETC_VEXT\n");
        if (want & H_FMIN)
            buf_puts(b, "static inline float netc_fmin(float a, float b) { return a < b ? a : b; }\n");
        if (want & H_FMAX)
            buf_puts(b, "static inline float netc_fmax(float a, float b) { return a > b ? a : b; }\n");
        if (want & H_FSEL)
            buf_puts(b, "static inline float netc_fsel(int c, float a, float b) { return c ? a : b; }\n");
    }
    if (lanes_only)
        buf_puts(b, "#endif\n");
    buf_puts(b, "\n");
}

static void put_meta(Buf *b, const Program *p)
{
    const char *meta = p->meta ? p->meta : "";
    buf_printf(b, "const char %s_meta[] =\n", p->m->name);
    /* C99 compilers need only accept 4095-character literals (gcc
     * -Wpedantic says so), so a long text becomes a list of codes. */
    if (strlen(meta) < 4000) {
        put_c_string(b, meta, "    ");
        buf_puts(b, ";\n\n");
        return;
    }
    buf_puts(b, "{\n");
    size_t i = 0;
    for (; meta[i]; i++)
        buf_printf(b, "%s%d,%s", i % 16 ? " " : "    ", (unsigned char)meta[i], i % 16 == 15 ? "\n" : "");
    buf_printf(b, "%s0\n};\n\n", i % 16 ? " " : "    ");
}

static void put_weights(Buf *b, const Program *p, const char *U)
{
    if (!has_weights(p))
        return;
    buf_printf(b, "const float %s_weights[%s_PARAM_FLOATS] = {\n", p->m->name, U);
    for (long i = 0; i < p->param_floats; i++) {
        buf_puts(b, i % 8 ? " " : "    ");
        put_c_float(b, p->weights[i]);
        buf_puts(b, i + 1 < p->param_floats ? "," : "");
        if (i % 8 == 7 || i + 1 == p->param_floats)
            buf_puts(b, "\n");
    }
    buf_puts(b, "};\n\n");
}

/* The source of part `part` of a program split into nparts (owner[i]:
 * the part of kernel i); nparts 1 is the whole program in one file.
 * Part 0 holds the entries, the model description, the weights and the
 * parallel hook; every part its kernels. */
static void gen_source(Buf *b, Arena *a, const Program *p, int part, int nparts, const int *owner)
{
    const char *name = p->m->name, *U = upper(a, name);
    bool split = nparts > 1;
    if (split)
        buf_printf(b, "/* %s.%d.c - part %d of %d of %s, generated by netc", name, part, part + 1,
                   nparts, name);
    else
        buf_printf(b, "/* %s.c - generated by netc", name);
    if (p->m->file) {
        buf_puts(b, " from ");
        put_comment_text(b, base_name(p->m->file));
    }
    if (split)
        buf_puts(b, "; do not edit.\n"
                    " * Kernels are external, for a parallel build; float arithmetic as in\n"
                    " * the whole program's source. */\n");
    else
        buf_printf(b, "; do not edit.\n"
                      " * The API is in %s.h; kernels are static.  Float arithmetic is\n"
                      " * IEEE single precision, one rounding per operation: build without\n"
                      " * -ffast-math (and with -ffp-contract=off on gcc in GNU mode) to get\n"
                      " * the same bits as the LLVM backend. */\n", name);
    buf_printf(b, "#include <math.h>\n#include <stddef.h>\n\n#include \"%s.h\"\n\n", name);
    buf_puts(b, "#if defined(__clang__)\n#pragma STDC FP_CONTRACT OFF\n#endif\n\n");
    /* A kernel family is one function on purpose (loop_family.c), and a
     * kernel's scalar arguments are its node's constants: GCC's
     * interprocedural constant propagation cloned them back per call
     * site.  The second scheduling pass buys little on out-of-order x86
     * cores.  Without both, GoogLeNet's four sources took 16.4-17.5 s of
     * GCC's time instead of 20.8 s, with the same run times within noise
     * (docs/codegen.md). */
    buf_puts(b, "/* one function per kernel family, not a clone per call site */\n"
                "#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)\n"
                "#pragma GCC optimize(\"no-ipa-cp\")\n"
                "#if defined(__x86_64__) || defined(__i386__)\n"
                "#pragma GCC optimize(\"no-schedule-insns2\")\n"
                "#endif\n"
                "#endif\n\n");

    bool *used = program_kernels_used(p);
    unsigned helpers = 0;
    int vlen = 0;
    for (int i = 0; i < p->nkernel; i++) {
        const Kernel *k = p->kernel[i];
        NETC_ASSERT(is_ident(k->name) && strncmp(k->name, "netc_", 5) != 0);
        for (int j = 0; j < i; j++)
            NETC_ASSERT(strcmp(k->name, p->kernel[j]->name) != 0);
        if (!used[i])
            continue;
        /* printing assumes a well-formed kernel (names, types, indices) */
        NETC_ASSERT(kernel_verify(k, stderr));
        /* one vector width per program (the target's) */
        NETC_ASSERT(!k->vlen || !vlen || k->vlen == vlen);
        vlen = k->vlen ? k->vlen : vlen;
        if (split && owner[i] != part)
            continue;
        helpers |= kernel_helpers(a, k);
    }
    /* every part declares the vector type: the prototypes use no vectors,
     * but one width per program keeps the parts alike */
    put_helpers(b, helpers, vlen);
    bool par = false;
    for (int i = 0; i < p->nkernel; i++)
        par = par || (used[i] && has_parallel(p->kernel[i]->body));
    if (part > 0) {
        if (par)
            buf_puts(b, "void netc_parallel_for(NetcTaskFn task, void *ctx, int count);\n\n");
    } else if (par) {
        put_parallel_hook(b, name, split);
    } else {
        buf_printf(b, "void %s_set_parallel(NetcParallelFn pf, void *pool)\n"
                      "{\n"
                      "    (void)pf;\n"
                      "    (void)pool;\n"
                      "}\n\n", name);
    }
    /* Outlined kernels stay functions (what makes a build of many layers
     * fast), declared before any kernel calls them. */
    bool outlined = false;
    for (int i = 0; i < p->nkernel; i++)
        outlined = outlined || (used[i] && p->kernel[i]->outlined);
    if (outlined)
        buf_puts(b, "#if defined(__GNUC__)\n#define NETC_NOINLINE __attribute__((noinline))\n#else\n"
                    "#define NETC_NOINLINE\n#endif\n");
    for (int i = 0; i < p->nkernel; i++)
        if (used[i] && p->kernel[i]->outlined) {
            buf_puts(b, split ? "NETC_NOINLINE " : "static NETC_NOINLINE ");
            put_kernel_sig(b, p->kernel[i]);
            buf_puts(b, ";\n");
        }
    if (outlined)
        buf_puts(b, "\n");
    for (int i = 0; i < p->nkernel; i++)
        if (used[i] && (!split || owner[i] == part))
            put_kernel(b, a, p->kernel[i], split);
    if (part > 0) {
        free(used);
        return;
    }
    /* the kernels the entries call from the other parts */
    for (int i = 0; split && i < p->nkernel; i++)
        if (used[i] && owner[i] != 0) {
            put_kernel_sig(b, p->kernel[i]);
            buf_puts(b, ";\n");
        }
    if (split)
        buf_puts(b, "\n");
    put_meta(b, p);
    put_weights(b, p, U);
    for (int i = 0; i < p->nentry; i++) {
        put_entry(b, p, &p->entry[i]);
        buf_puts(b, i + 1 < p->nentry ? "\n" : "");
    }
    free(used);
}

/* ---- files ---- */

/* Writes b to a temporary file next to `path`; *tmp receives its name.
 * Returns false after reporting the failure. */
static bool write_temp(Arena *a, const char *path, const Buf *b, char **tmp, Diag *d)
{
    *tmp = arena_printf(a, "%s.tmpXXXXXX", path);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        diag_plain(d, "cannot write '%s': %s", path, strerror(errno));
        *tmp = NULL;
        return false;
    }
    /* mkstemp makes the file private; generated sources should be
     * readable like any file the user creates. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "wb");
    bool ok = f && fwrite(b->s, 1, b->len, f) == b->len;
    int err = errno;
    if (f) {
        ok = fclose(f) == 0 && ok;
        err = ok ? 0 : (err ? err : errno);
    } else {
        close(fd);
    }
    if (!ok) {
        diag_plain(d, "cannot write '%s': %s", path, strerror(err ? err : EIO));
        remove(*tmp);
        *tmp = NULL;
    }
    return ok;
}

/* Writes every (path, text) pair, renaming into place only once all the
 * temporaries are written, so a failure leaves the old files. */
static bool write_files(Arena *a, int nfile, const char *const *path, const Buf *text, Diag *d)
{
    char *tmp[PROGRAM_MAX_PARTS + 1] = {NULL};
    NETC_ASSERT(nfile <= PROGRAM_MAX_PARTS + 1);
    bool ok = true;
    for (int i = 0; i < nfile && ok; i++)
        ok = write_temp(a, path[i], &text[i], &tmp[i], d);
    for (int i = 0; i < nfile && ok; i++)
        if (rename(tmp[i], path[i]) != 0) {
            diag_plain(d, "cannot write '%s': %s", path[i], strerror(errno));
            ok = false;
        } else {
            tmp[i] = NULL;
        }
    for (int i = 0; i < nfile; i++)
        if (tmp[i])
            remove(tmp[i]);
    return ok;
}

static void check_program(const Program *p)
{
    NETC_ASSERT(p && p->m && p->m->g);
    NETC_ASSERT(is_ident(p->m->name));
    for (int i = 0; i < p->nentry; i++)
        NETC_ASSERT(is_ident(p->entry[i].name));
}

/* The output directory, created when missing (one level, like mkdir). */
static bool ensure_dir(const char *dir, Diag *d)
{
    struct stat st;
    if (!*dir)
        return true;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return true;
        diag_plain(d, "cannot write into '%s': not a directory", dir);
        return false;
    }
    if (errno == ENOENT && mkdir(dir, 0777) == 0)
        return true;
    diag_plain(d, "cannot create directory '%s': %s", dir, strerror(errno));
    return false;
}

static const char *join(Arena *a, const char *dir, const char *file)
{
    size_t n = strlen(dir);
    if (n == 0)
        return file;
    return arena_printf(a, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", file);
}

bool emit_c_parts(const Program *p, const char *dir, int nparts, const int *owner, Diag *d)
{
    check_program(p);
    NETC_ASSERT(nparts >= 1 && nparts <= PROGRAM_MAX_PARTS);
    Arena *a = arena_new();
    Buf text[PROGRAM_MAX_PARTS + 1] = {{0}};
    const char *path[PROGRAM_MAX_PARTS + 1];
    for (int i = 0; i < nparts; i++) {
        gen_source(&text[i], a, p, i, nparts, owner);
        path[i] = join(a, dir, arena_printf(a, "%s.%d.c", p->m->name, i));
    }
    gen_header(&text[nparts], a, p);
    path[nparts] = join(a, dir, arena_printf(a, "%s.h", p->m->name));
    bool ok = ensure_dir(dir, d) && write_files(a, nparts + 1, path, text, d);
    for (int i = 0; i <= nparts; i++)
        buf_free(&text[i]);
    arena_free(a);
    return ok;
}

bool emit_c(const Program *p, const char *dir, Diag *d)
{
    check_program(p);
    Arena *a = arena_new();
    Buf text[2] = {{0}, {0}};
    gen_source(&text[0], a, p, 0, 1, NULL);
    gen_header(&text[1], a, p);
    const char *path[2] = {
        join(a, dir, arena_printf(a, "%s.c", p->m->name)),
        join(a, dir, arena_printf(a, "%s.h", p->m->name)),
    };
    bool ok = ensure_dir(dir, d) && write_files(a, 2, path, text, d);
    buf_free(&text[0]);
    buf_free(&text[1]);
    arena_free(a);
    return ok;
}

bool emit_c_header(const Program *p, const char *path, Diag *d)
{
    check_program(p);
    Arena *a = arena_new();
    Buf text = {0};
    gen_header(&text, a, p);
    bool ok = write_files(a, 1, &path, &text, d);
    buf_free(&text);
    arena_free(a);
    return ok;
}

bool emit_c_main(const Program *p, const char *path, Diag *d)
{
    check_program(p);
    const char *name = p->m->name;
    NETC_ASSERT(find_entry(p, "forward"));
    Buf text = {0};
    buf_printf(&text,
        "/* main for %s - generated by netc; do not edit.\n"
        " * Hands the compiled model to the runtime (docs/runtime.md). */\n"
        "#include <stddef.h>\n\n"
        "#include \"netc_runtime.h\"\n"
        "#include \"%s.h\"\n\n"
        "static const NetcModel model = {%s_meta, %s_forward, ",
        name, name, name, name);
    static const char *const optional[2] = {"train", "eval"};
    for (int i = 0; i < 2; i++)
        if (find_entry(p, optional[i]))
            buf_printf(&text, "%s_%s, ", name, optional[i]);
        else
            buf_puts(&text, "NULL, ");
    if (has_weights(p))
        buf_printf(&text, "%s_weights, %s_set_parallel", name, name);
    else
        buf_printf(&text, "NULL, %s_set_parallel", name);
    static const char *const prepared[3] = {"prepare", "forward_prepared", "eval_prepared"};
    for (int i = 0; i < 3; i++)
        if (find_entry(p, prepared[i]))
            buf_printf(&text, ", %s_%s", name, prepared[i]);
        else
            buf_puts(&text, ", NULL");
    buf_puts(&text, "};\n\n");
    buf_puts(&text, "int main(int argc, char **argv)\n"
                    "{\n"
                    "    return netc_run(argc, argv, &model);\n"
                    "}\n");
    Arena *a = arena_new();
    bool ok = write_files(a, 1, &path, &text, d);
    buf_free(&text);
    arena_free(a);
    return ok;
}
