/* loop.h - the loop-level IR: how a kernel runs, as loops over buffers.
 *
 * Every graph node is lowered (lower.c) into one Kernel: a function of the
 * batch size `n` and a list of float buffers, whose body is a tree of
 * statements over integer loop variables and scalar locals.  Backends
 * (emit_c.c, emit_llvm.c) print kernels; they know nothing of
 * convolutions, only of loops, loads, stores and arithmetic.
 *
 * Semantics, which every printer must keep exactly:
 *   - integers are 32-bit signed two's complement (C int, LLVM i32);
 *     X_DIV / X_MOD truncate toward zero like C; lowering only divides
 *     non-negative values by positive constants;
 *   - floats are IEEE single precision; no fast-math reassociation is
 *     licensed by the IR; X_EXP/X_LOG/X_TANH/X_SQRT call libm's
 *     expf/logf/tanhf/sqrtf in both backends;
 *   - X_HASH(a, b) is loop_hash below, bit for bit, on every printer: a
 *     counter-based hash (no state), so dropout masks are a function of
 *     (key, step, element) whatever the thread count;
 *   - X_SELECT (a ? b : c) evaluates both b and c, so every load in them
 *     is in bounds whatever a is (a constant pad clamps its index and
 *     selects the fill): printers compute both arms and pick one without
 *     a branch, since a relu mask or a running max is no branch a CPU
 *     can predict;
 *   - S_FOR runs var = lo, lo+1, ..., hi-1 (nothing when lo >= hi);
 *     bounds are evaluated once, before the first iteration;
 *   - S_STORE writes buf[idx] = val, or buf[idx] += val when accum;
 *   - buffers of one kernel never alias (the memory plan guarantees it),
 *     so printers may mark them restrict/noalias.
 *
 * Vectors (T_V32, vlen lanes; the schedule picks vlen from the target):
 *   - X_LOAD of type T_V32 reads buf[a], buf[a+1], ..., buf[a+vlen-1];
 *     S_STORE of a T_V32 value writes (or adds into) the same lanes;
 *     indices need no alignment;
 *   - X_BCAST copies a float into every lane; arithmetic (X_ADD, X_SUB,
 *     X_MUL, X_DIV, X_MIN, X_MAX, X_NEG, X_FMA) works lane by lane with the
 *     scalar semantics of each lane;
 *   - X_SELECT of type T_V32 takes as its condition a comparison (X_LT,
 *     X_LE, X_EQ, X_NE) of two vectors and picks, lane by lane, b's lane
 *     where the lanes compare true and c's elsewhere; b and c are both
 *     evaluated (a comparison of vectors appears nowhere else);
 *   - X_FMA(a, b, c) is a*b + c rounded once (fused), on floats or vectors;
 *     lowering emits it only for targets with FMA;
 *   - X_HSUM(v) adds the lanes of a vector variable in lane order:
 *     ((v0 + v1) + v2) + ... + v(vlen-1);
 *   - X_ARG(i) is the value of the kernel's i-th scalar argument, which
 *     every call passes after the buffers (kernels identical up to
 *     constants share one function with the constants as arguments,
 *     loop_family.c); it is read outside parallel loops only;
 *   - S_CALL runs another kernel of the program (an outlined part of this
 *     one, loop_outline.c) with this kernel's n, some of its buffers and
 *     the call's scalar arguments, as if its body stood there;
 *   - S_FOR with `parallel` runs its iterations in any order, possibly at
 *     once on several threads: the lowering promises that no iteration
 *     reads what another writes, so results do not depend on the order
 *     or the thread count.  A parallel loop reads the variables in scope
 *     around it but assigns none of them, and holds no parallel loop.
 */
#ifndef NETC_LOOP_H
#define NETC_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

/* T_V32: a vector of the kernel's vlen floats (Kernel.vlen, a power of
 * two from 2 to NETC_VMAX), one machine vector register on the target. */
typedef enum { T_I32, T_F32, T_V32 } LType;
#define NETC_VMAX 16

typedef enum {
    X_INT,     /* ival                                 (i32)   */
    X_FLT,     /* fval                                 (f32)   */
    X_VAR,     /* variable `var` (loop var or local)   (its type) */
    X_BATCH,   /* the kernel's batch-size argument n   (i32)   */
    X_LOAD,    /* buf[a]                               (f32)   */
    /* binary, both operands of type t */
    X_ADD, X_SUB, X_MUL, X_DIV, X_MOD, X_MIN, X_MAX,
    /* comparisons: operands of one type, result i32 0/1 */
    X_LT, X_LE, X_EQ, X_NE,
    /* logic on i32 0/1 */
    X_AND, X_OR, X_NOT,
    /* unary f32 */
    X_NEG, X_EXP, X_LOG, X_TANH, X_SQRT,
    X_SELECT,  /* a ? b : c, a is i32 0/1, b and c of type t, both evaluated */
    X_I2F,     /* (float)a                                  */
    X_F2I,     /* (int)a, truncating                        */
    X_FMA,     /* a*b + c, one rounding     (f32 or v32)    */
    X_BCAST,   /* every lane = a (f32)                (v32) */
    X_HSUM,    /* lanes of vector variable a in order (f32) */
    X_HASH,    /* loop_hash(a, b) of two i32, in [0, 2^24)  (i32) */
    X_ARG,     /* the kernel's scalar argument ival (Kernel.arg_t[ival]) */
    X_COUNT
} ExprKind;

typedef struct Expr {
    ExprKind k;
    LType t;          /* type of the result */
    int ival;
    float fval;
    int var;          /* X_VAR */
    int buf;          /* X_LOAD */
    struct Expr *a, *b, *c;
} Expr;

typedef enum { S_BLOCK, S_FOR, S_IF, S_STORE, S_DECL, S_ASSIGN, S_CALL } StmtKind;

typedef struct Stmt {
    StmtKind k;
    int var;              /* FOR: loop var; DECL/ASSIGN: local var        */
    Expr *lo, *hi;        /* FOR: [lo, hi)                                 */
    Expr *cond;           /* IF                                            */
    int buf;              /* STORE                                         */
    Expr *idx, *val;      /* STORE: buf[idx] (+)= val; DECL/ASSIGN: val    */
    bool accum;           /* STORE: += instead of =                        */
    bool parallel;        /* FOR: iterations run in any order, on threads  */
    bool indep;           /* FOR: the lowering's promise that iterations are
                             independent (what makes `parallel` legal)     */
    const int *priv;      /* FOR: scratch buffers each iteration uses as its
                             own workspace (loop_privatize.c), npriv of them */
    int npriv;
    const int *sum;       /* FOR: scratch accumulators every iteration adds
                             into, read after the loop (loop_privatize.c) */
    int nsum;
    struct Stmt **body;   /* BLOCK, FOR, IF (then)                         */
    int nbody, capbody;
    struct Stmt **els;    /* IF (else)                                     */
    int nels, capels;
    /* CALL: runs kernel `callee` (loop_outline.c) with this kernel's n,
     * its buffer cbuf[i] as the callee's buffer i, and the scalar
     * arguments arg[0..narg) (X_ARG in the callee).                     */
    const struct Kernel *callee;
    const int *cbuf;
    struct Expr **arg;
    int narg;
} Stmt;

typedef struct {
    const char *name;     /* printed name, e.g. "oc"; unique per kernel */
    LType t;
} LVar;

typedef struct {
    const char *name;     /* printed name: "x", "w", "dy", "y" ...       */
    bool written;         /* the kernel stores to it                      */
    long size_fixed;      /* element count = size_fixed + size_per_n * n  */
    long size_per_n;
    bool scratch;         /* workspace for this call only (im2col columns, a
                             transposed operand): placed in the arena by the
                             memory plan, alive during the call alone; comes
                             after the output and input buffers */
} LBuf;

/* The value of one scalar argument of a kernel call (X_ARG). */
typedef struct {
    int i;                /* T_I32 */
    float f;              /* T_F32 */
} KArg;

typedef struct Kernel {
    const char *name;     /* function name, unique within a program   */
    const char *comment;  /* one line: the node and its shapes         */
    LBuf *buf;
    int nbuf, capbuf;
    LVar *var;
    int nvar, capvar;
    Stmt *body;           /* an S_BLOCK */
    int vlen;             /* lanes of T_V32 (0: the kernel has no vectors) */
    int nshared;          /* further nodes that call this kernel (loop_share.c) */
    int index;            /* position in its program's kernel list (program.c) */
    bool outlined;        /* runs through S_CALL from other kernels (loop_outline.c) */
    /* Scalar arguments after the buffers (loop_family.c): their types. */
    LType *arg_t;
    int narg;
    /* A family member: calls of this kernel run `impl` with the call's own
     * arguments (narg) and then these values (impl->narg - narg of them);
     * NULL: the kernel runs itself.  A member's body stays intact (the
     * tests run both). */
    const struct Kernel *impl;
    const KArg *arg;
    /* Every buffer and variable name, for unique_name (loop.c): an
     * open-addressing set with, per name, the next "_N" suffix to try. */
    struct KName *names;
    int names_cap, names_n;
} Kernel;

/* The function a call of k runs. */
static inline const Kernel *kernel_callee(const Kernel *k)
{
    return k->impl ? k->impl : k;
}

/* X_HASH: with m(x) = x ^ x>>16; x *= 0x7feb352d; x ^= x>>15;
 * x *= 0x846ca68b; x ^= x>>16 on uint32 (wrapping), the value
 * m(m(a) ^ b) >> 8, so that chaining loop_hash(loop_hash(k, s), i) hashes
 * three integers. */
int loop_hash(int a, int b);

/* ---- builder (loop.c); all memory comes from the arena ---- */
Kernel *kernel_new(Arena *a, const char *name, const char *comment);
int kernel_buf(Arena *a, Kernel *k, const char *name, bool written, long size_fixed, long size_per_n);
/* A written workspace buffer of size_fixed floats, or size_per_n * n when
 * size_per_n > 0 (one of the two is 0).  Add scratch buffers after the
 * output and input buffers. */
int kernel_scratch(Arena *a, Kernel *k, const char *name, long size_fixed, long size_per_n);
int kernel_var(Arena *a, Kernel *k, const char *name, LType t); /* names made unique */

Expr *ex_int(Arena *a, int v);
Expr *ex_flt(Arena *a, float v);
Expr *ex_var(Arena *a, const Kernel *k, int var);
Expr *ex_batch(Arena *a);
Expr *ex_arg(Arena *a, const Kernel *k, int i);        /* X_ARG, of type k->arg_t[i] */
Expr *ex_load(Arena *a, int buf, Expr *idx);
Expr *ex_bin(Arena *a, ExprKind k, Expr *l, Expr *r);  /* folds constants */
Expr *ex_un(Arena *a, ExprKind k, Expr *x);
Expr *ex_select(Arena *a, Expr *c, Expr *t, Expr *f);  /* both arms evaluated */
/* Vectors of k->vlen lanes (kernel_vectors sets vlen first). */
void kernel_vectors(Kernel *k, int vlen);
Expr *ex_vload(Arena *a, int buf, Expr *idx);
Expr *ex_bcast(Arena *a, Expr *x);
Expr *ex_fma(Arena *a, Expr *x, Expr *y, Expr *z);  /* x*y + z, fused */
Expr *ex_hsum(Arena *a, const Kernel *k, int var);

Stmt *st_block(Arena *a);
Stmt *st_for(Arena *a, int var, Expr *lo, Expr *hi);       /* body: append to it */
Stmt *st_if(Arena *a, Expr *cond);
Stmt *st_store(Arena *a, int buf, Expr *idx, Expr *val, bool accum);
Stmt *st_decl(Arena *a, int var, Expr *init);
Stmt *st_assign(Arena *a, int var, Expr *val);
/* A call of `callee`: its buffer i is the caller's cbuf[i]; args[0..nargs). */
Stmt *st_call(Arena *a, const struct Kernel *callee, const int *cbuf, Expr **args, int nargs);
void st_append(Arena *a, Stmt *parent, Stmt *child);       /* to body */
void st_append_else(Arena *a, Stmt *parent, Stmt *child);  /* to IF's else */

/* ---- rewriting (loop.c), for the schedule passes ---- */
/* x and y are the same tree: kinds, types, constants, variables, buffers. */
bool ex_same(const Expr *x, const Expr *y);
/* e with every use of variable var replaced by `with`; unchanged subtrees
 * are shared with e, changed ones rebuilt (and folded) by the builder. */
Expr *ex_subst(Arena *a, Kernel *k, Expr *e, int var, Expr *with);
/* A deep copy of s with var replaced by `with` (var -1: none).  With
 * fresh_locals every local the copy declares is a new variable, so that the
 * copy can sit in the same scope as s. */
Stmt *st_clone(Arena *a, Kernel *k, const Stmt *s, int var, Expr *with, bool fresh_locals);

/* Checks types, variable scoping and buffer indices; prints the first
 * problem to err and returns false. */
bool kernel_verify(const Kernel *k, FILE *err);
/* The variables a parallel loop's body reads from around it, in id order:
 * out[i] true for each (out has k->nvar entries). */
void loop_captures(const Kernel *k, const Stmt *loop, bool *out);
/* Sets used[v] for every local v that s (and the statements in it) reads
 * or assigns; used has a flag per local of s's kernel. */
void stmt_vars_used(const Stmt *s, bool *used);
/* Calls f(callee) for every S_CALL in s. */
void stmt_each_call(const Stmt *s, void (*f)(const Kernel *callee, void *ctx), void *ctx);
/* Whether s (or a statement in it) computes on vectors. */
bool stmt_has_vectors(const Kernel *k, const Stmt *s);
/* Readable pseudo-code, one statement per line (for --dump=loops). */
void kernel_print(FILE *f, const Kernel *k);
void kernel_print_buf(Buf *b, const Kernel *k);

/* ---- kernel sharing (loop_share.c) ---- */
typedef struct {
    Kernel **slot;
    uint64_t *hash;
    size_t cap, n;
} KernelTable;
/* An earlier kernel of the table identical to k (its nshared counts one
 * more caller), or k itself, now in the table. */
Kernel *kernel_share(KernelTable *t, Kernel *k);
void kernel_table_free(KernelTable *t);

/* ---- kernel families (loop_family.c) ---- */
/* Kernels of ks[0..n) that are identical up to integer and float constants
 * become members of one family: one new kernel (the first member's body,
 * the differing constants read from scalar arguments) that each member's
 * calls run with its own values (Kernel.impl, Kernel.arg).  Rewrites ks to
 * the kernels a program defines (in first-use order: the family's kernel
 * where its first member was) and returns their count.  When `dump` is not
 * NULL, prints each family, its arguments and every member's values. */
int kernel_families(Arena *a, Kernel **ks, int n, FILE *dump);

#endif
