/* emit_llvm.c - the LLVM backend: builds a Program's kernels and entry
 * points with the LLVM C API, optimises and compiles them.
 *
 * Needs: a Program whose kernels pass kernel_verify.  Provides the same
 * symbols, with the same meaning, as emit_c.c's C:
 *
 *   internal void KERNEL(i32 n, ptr noalias b0, ptr noalias b1, ...)
 *   void NAME_forward(i32 n, ptr params, ptr grads, ptr arena, ptr in, ptr out)
 *   void NAME_train(...)                    (when the program has it)
 *   constant [L x i8] NAME_meta             (NUL-terminated)
 *   constant [P x float] NAME_weights       (when p->weights)
 *   i32 main(i32, ptr)                      (emit_llvm_obj with_main)
 *
 * For example the loop IR
 *     for i in [0, 6*n): y[i] = max(x[i], 0.0)
 * becomes (before optimisation)
 *     %i = alloca i32 ... store 0, %i; br %i.cond
 *   i.cond: %c = icmp slt (load %i), %hi; br %c, %i.body, %i.end
 *   i.body: %v = load (gep x, i); store (select (fcmp ogt %v, 0), %v, 0), (gep y, i) ...
 *
 * Variables live in allocas made in the entry block, which the standard
 * pipeline's mem2reg/SROA turn into SSA registers.  Floating-point ops carry
 * no fast-math flags: the loop IR licenses no reassociation, and keeping
 * IEEE semantics is what makes this backend agree with the C backend bit
 * for bit.  Everything an LLVM call can fail on (unknown target or CPU,
 * verifier, pass pipeline, unwritable file) becomes a netc error; LLVM's
 * own stderr chatter during target creation is captured and turned into
 * errors too.
 */
#include "emit_llvm.h"
#include "timing.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/ErrorHandling.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- per-module and per-kernel state ---------------------------------- */

enum { MATH_EXP, MATH_LOG, MATH_TANH, MATH_SQRT, MATH_COUNT };
static const char *const math_name[MATH_COUNT] = {"expf", "logf", "tanhf", "sqrtf"};

typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef t_void, t_i1, t_i32, t_i64, t_f32, t_ptr;
    LLVMTypeRef t_math;                 /* float (float) */
    LLVMValueRef math[MATH_COUNT];      /* declared on first use */
    const char *cpu, *features;         /* for function attributes */
    LLVMValueRef pf, pool;              /* the parallel-for hook's globals */
    LLVMValueRef par_for;               /* internal netc_parallel_for */
    LLVMTypeRef t_task, t_pf, t_par_for; /* their function types */
    /* Split code generation (emit_llvm_parts): part `part` of `nparts`
     * defines the kernels i with owner[i] == part; part 0 also the entries,
     * meta, weights and main, and declares the other parts' kernels. */
    int part, nparts;
    const int *owner;
    LLVMValueRef *kfn;                  /* per kernel of the program: its function, or NULL */
} Gen;

typedef struct {
    Gen *g;
    const Kernel *k;
    LLVMValueRef fn;
    LLVMValueRef n;                     /* the batch-size argument */
    LLVMTypeRef t_vec;                  /* <vlen x float>, when k->vlen */
    LLVMValueRef *buf;                  /* one pointer argument per buffer */
    LLVMValueRef *var;                  /* one alloca per variable */
    LLVMBasicBlockRef entry;            /* where allocas go */
    int npar;                           /* parallel loops outlined so far */
} KGen;

static LLVMTypeRef ltype(const Gen *g, LType t)
{
    NETC_ASSERT(t != T_V32);
    return t == T_I32 ? g->t_i32 : g->t_f32;
}

static LLVMTypeRef ktype(const KGen *kg, LType t)
{
    return t == T_V32 ? kg->t_vec : ltype(kg->g, t);
}

/* An overloaded intrinsic (llvm.fma, llvm.vector.reduce.fadd) for type t. */
static LLVMValueRef intrinsic(Gen *g, const char *name, LLVMTypeRef t, LLVMTypeRef *fnty)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    NETC_ASSERT(id != 0);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->mod, id, &t, 1);
    *fnty = LLVMIntrinsicGetType(g->ctx, id, &t, 1);
    return fn;
}

static void add_enum_attr(Gen *g, LLVMValueRef fn, LLVMAttributeIndex at, const char *name,
                          uint64_t val)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    NETC_ASSERT(kind != 0);
    LLVMAddAttributeAtIndex(fn, at, LLVMCreateEnumAttribute(g->ctx, kind, val));
}

static void add_str_attr(Gen *g, LLVMValueRef fn, const char *k, const char *v)
{
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(g->ctx, k, (unsigned)strlen(k), v,
                                                      (unsigned)strlen(v)));
}

/* What clang puts on every C function, so that our functions are compiled
 * like the C backend's: no exceptions, unwind tables for debuggers and
 * profilers, and the chosen CPU recorded in the .ll itself. */
static void add_fn_attrs(Gen *g, LLVMValueRef fn)
{
    add_enum_attr(g, fn, LLVMAttributeFunctionIndex, "nounwind", 0);
    add_enum_attr(g, fn, LLVMAttributeFunctionIndex, "uwtable", 2); /* async */
    if (g->cpu[0])
        add_str_attr(g, fn, "target-cpu", g->cpu);
    if (g->features[0])
        add_str_attr(g, fn, "target-features", g->features);
}

static LLVMValueRef math_fn(Gen *g, int which)
{
    if (!g->math[which])
        g->math[which] = LLVMAddFunction(g->mod, math_name[which], g->t_math);
    return g->math[which];
}

/* ---- expressions ------------------------------------------------------- */

static LLVMValueRef gen_expr(KGen *kg, const Expr *e);

/* Whether evaluating e could fault: a load from a computed index, or an
 * integer division.  C's && and || evaluate their right operand only when
 * it decides the result, so such an operand becomes a branch.  (A select
 * evaluates both arms, loop.h.) */
static bool may_trap(const Expr *e)
{
    if (!e)
        return false;
    if (e->k == X_LOAD)
        return true;
    if ((e->k == X_DIV || e->k == X_MOD) && e->t == T_I32)
        return true;
    return may_trap(e->a) || may_trap(e->b) || may_trap(e->c);
}

static LLVMValueRef truth(KGen *kg, LLVMValueRef v, const char *name)
{
    return LLVMBuildICmp(kg->g->b, LLVMIntNE, v, LLVMConstInt(kg->g->t_i32, 0, 0), name);
}

static LLVMValueRef to_i32(KGen *kg, LLVMValueRef bit)
{
    return LLVMBuildZExt(kg->g->b, bit, kg->g->t_i32, "");
}

/* a && b / a || b on i32 truth values, short-circuiting when b may trap. */
static LLVMValueRef gen_logic(KGen *kg, const Expr *e)
{
    Gen *g = kg->g;
    bool is_and = e->k == X_AND;
    LLVMValueRef a = truth(kg, gen_expr(kg, e->a), "");
    if (!may_trap(e->b)) {
        LLVMValueRef b = truth(kg, gen_expr(kg, e->b), "");
        return to_i32(kg, is_and ? LLVMBuildAnd(g->b, a, b, "") : LLVMBuildOr(g->b, a, b, ""));
    }
    LLVMBasicBlockRef from = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef brhs = LLVMAppendBasicBlockInContext(g->ctx, kg->fn, "logic.rhs");
    LLVMBasicBlockRef bj = LLVMAppendBasicBlockInContext(g->ctx, kg->fn, "logic.end");
    if (is_and)
        LLVMBuildCondBr(g->b, a, brhs, bj);
    else
        LLVMBuildCondBr(g->b, a, bj, brhs);
    LLVMPositionBuilderAtEnd(g->b, brhs);
    LLVMValueRef b = truth(kg, gen_expr(kg, e->b), "");
    LLVMBasicBlockRef brhs_end = LLVMGetInsertBlock(g->b);
    LLVMBuildBr(g->b, bj);
    LLVMPositionBuilderAtEnd(g->b, bj);
    LLVMValueRef phi = LLVMBuildPhi(g->b, g->t_i1, "logic");
    LLVMValueRef vals[2] = {LLVMConstInt(g->t_i1, is_and ? 0 : 1, 0), b};
    LLVMBasicBlockRef blocks[2] = {from, brhs_end};
    LLVMAddIncoming(phi, vals, blocks, 2);
    return to_i32(kg, phi);
}

/* An index in 64 bits: its sums and products computed there (nsw), the
 * other terms (variables, divisions, loads of ints) sign-extended. The
 * value is the int the C backend computes (whose overflow is undefined
 * there too), and the address arithmetic stays linear for LLVM: a sign
 * extension of a sum would hide that b[(k + i) + 1] follows b[k + i]
 * once i is unrolled, which costs vectorised loops their contiguous
 * loads. */
static LLVMValueRef gen_index64(KGen *kg, const Expr *e)
{
    Gen *g = kg->g;
    switch (e->k) {
    case X_INT: return LLVMConstInt(g->t_i64, (unsigned long long)(long long)e->ival, 1);
    case X_ADD: return LLVMBuildNSWAdd(g->b, gen_index64(kg, e->a), gen_index64(kg, e->b), "");
    case X_SUB: return LLVMBuildNSWSub(g->b, gen_index64(kg, e->a), gen_index64(kg, e->b), "");
    case X_MUL: return LLVMBuildNSWMul(g->b, gen_index64(kg, e->a), gen_index64(kg, e->b), "");
    default: return LLVMBuildSExt(g->b, gen_expr(kg, e), g->t_i64, "");
    }
}

static LLVMValueRef elem_ptr(KGen *kg, int buf, const Expr *idx)
{
    Gen *g = kg->g;
    NETC_ASSERT(buf >= 0 && buf < kg->k->nbuf);
    /* C indexes with an int, which it sign-extends; the same value, with
     * the address arithmetic 64-bit */
    LLVMValueRef i = gen_index64(kg, idx);
    return LLVMBuildInBoundsGEP2(g->b, g->t_f32, kg->buf[buf], &i, 1, "");
}

static LLVMValueRef gen_minmax(KGen *kg, const Expr *e)
{
    Gen *g = kg->g;
    LLVMValueRef a = gen_expr(kg, e->a), b = gen_expr(kg, e->b);
    bool is_min = e->k == X_MIN;
    LLVMValueRef c;
    /* The C backend's `a < b ? a : b` / `a > b ? a : b`: with a NaN
     * operand the comparison is false and the result is b. */
    if (e->t == T_I32)
        c = LLVMBuildICmp(g->b, is_min ? LLVMIntSLT : LLVMIntSGT, a, b, "");
    else
        c = LLVMBuildFCmp(g->b, is_min ? LLVMRealOLT : LLVMRealOGT, a, b, "");
    return LLVMBuildSelect(g->b, c, a, b, is_min ? "min" : "max");
}

static LLVMValueRef gen_cmp(KGen *kg, const Expr *e)
{
    Gen *g = kg->g;
    LLVMValueRef a = gen_expr(kg, e->a), b = gen_expr(kg, e->b);
    LLVMValueRef c;
    if (e->a->t == T_I32) {
        static const LLVMIntPredicate ip[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntEQ, LLVMIntNE};
        c = LLVMBuildICmp(g->b, ip[e->k - X_LT], a, b, "");
    } else {
        /* C's float comparisons: <, <=, == are false on NaN, != is true. */
        static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOEQ,
                                               LLVMRealUNE};
        c = LLVMBuildFCmp(g->b, fp[e->k - X_LT], a, b, "");
    }
    return to_i32(kg, c);
}

static LLVMValueRef gen_arith(KGen *kg, const Expr *e)
{
    Gen *g = kg->g;
    LLVMValueRef a = gen_expr(kg, e->a), b = gen_expr(kg, e->b);
    if (e->t == T_I32) {
        /* nsw: signed overflow is undefined in the C backend too, and it
         * lets LLVM widen index arithmetic to 64 bits in loops. */
        switch (e->k) {
        case X_ADD: return LLVMBuildNSWAdd(g->b, a, b, "");
        case X_SUB: return LLVMBuildNSWSub(g->b, a, b, "");
        case X_MUL: return LLVMBuildNSWMul(g->b, a, b, "");
        case X_DIV: return LLVMBuildSDiv(g->b, a, b, "");
        case X_MOD: return LLVMBuildSRem(g->b, a, b, "");
        default: break;
        }
    } else {
        switch (e->k) {
        case X_ADD: return LLVMBuildFAdd(g->b, a, b, "");
        case X_SUB: return LLVMBuildFSub(g->b, a, b, "");
        case X_MUL: return LLVMBuildFMul(g->b, a, b, "");
        case X_DIV: return LLVMBuildFDiv(g->b, a, b, "");
        default: break;
        }
    }
    NETC_ASSERT(!"not an arithmetic expression (X_MOD is int-only)");
    return NULL;
}

/* loop_hash's mixing step, on i32 with wrapping (no nsw) arithmetic */
static LLVMValueRef gen_hash_mix(Gen *g, LLVMValueRef x)
{
    static const unsigned long long mul[2] = {0x7feb352du, 0x846ca68bu};
    static const unsigned shift[3] = {16, 15, 16};
    for (int i = 0; i < 3; i++) {
        x = LLVMBuildXor(g->b, x, LLVMBuildLShr(g->b, x, LLVMConstInt(g->t_i32, shift[i], 0), ""), "");
        if (i < 2)
            x = LLVMBuildMul(g->b, x, LLVMConstInt(g->t_i32, mul[i], 0), "");
    }
    return x;
}

static LLVMValueRef gen_expr(KGen *kg, const Expr *e)
{
    Gen *g = kg->g;
    switch (e->k) {
    case X_INT:
        return LLVMConstInt(g->t_i32, (unsigned long long)(long long)e->ival, 1);
    case X_FLT:
        /* A float widened to double is exact, and LLVM narrows it back
         * exactly: the constant keeps every bit, -0.0 and infinities too. */
        return LLVMConstReal(g->t_f32, (double)e->fval);
    case X_VAR:
        NETC_ASSERT(e->var >= 0 && e->var < kg->k->nvar);
        return LLVMBuildLoad2(g->b, ktype(kg, kg->k->var[e->var].t), kg->var[e->var],
                              kg->k->var[e->var].name);
    case X_BATCH:
        return kg->n;
    case X_ARG:
        NETC_ASSERT(e->ival >= 0 && e->ival < kg->k->narg);
        return LLVMGetParam(kg->fn, (unsigned)(1 + kg->k->nbuf + e->ival));
    case X_LOAD: {
        /* vectors need no alignment (loop.h): align 4, like a float */
        LLVMValueRef v = LLVMBuildLoad2(g->b, ktype(kg, e->t), elem_ptr(kg, e->buf, e->a), "");
        if (e->t == T_V32)
            LLVMSetAlignment(v, 4);
        return v;
    }
    case X_BCAST: {
        LLVMValueRef x = gen_expr(kg, e->a);
        LLVMValueRef one = LLVMBuildInsertElement(g->b, LLVMGetPoison(kg->t_vec), x,
                                                  LLVMConstInt(g->t_i32, 0, 0), "");
        LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(g->t_i32, (unsigned)kg->k->vlen));
        return LLVMBuildShuffleVector(g->b, one, LLVMGetPoison(kg->t_vec), zeros, "splat");
    }
    case X_FMA: {
        LLVMTypeRef ft;
        LLVMValueRef fn = intrinsic(g, "llvm.fma", ktype(kg, e->t), &ft);
        LLVMValueRef args[3] = {gen_expr(kg, e->a), gen_expr(kg, e->b), gen_expr(kg, e->c)};
        return LLVMBuildCall2(g->b, ft, fn, args, 3, "");
    }
    case X_HSUM: {
        /* without reassoc the reduction is ordered: ((-0 + v0) + v1) + ...,
         * and -0 + v0 is v0 exactly */
        LLVMTypeRef ft;
        LLVMValueRef fn = intrinsic(g, "llvm.vector.reduce.fadd", kg->t_vec, &ft);
        LLVMValueRef args[2] = {LLVMConstReal(g->t_f32, -0.0), gen_expr(kg, e->a)};
        return LLVMBuildCall2(g->b, ft, fn, args, 2, "");
    }
    case X_HASH: {
        LLVMValueRef m = gen_hash_mix(g, gen_expr(kg, e->a));
        LLVMValueRef h = gen_hash_mix(g, LLVMBuildXor(g->b, m, gen_expr(kg, e->b), ""));
        return LLVMBuildLShr(g->b, h, LLVMConstInt(g->t_i32, 8, 0), "hash");
    }
    case X_ADD: case X_SUB: case X_MUL: case X_DIV: case X_MOD:
        return gen_arith(kg, e);
    case X_MIN: case X_MAX:
        return gen_minmax(kg, e);
    case X_LT: case X_LE: case X_EQ: case X_NE:
        return gen_cmp(kg, e);
    case X_AND: case X_OR:
        return gen_logic(kg, e);
    case X_NOT:
        return to_i32(kg, LLVMBuildICmp(g->b, LLVMIntEQ, gen_expr(kg, e->a),
                                        LLVMConstInt(g->t_i32, 0, 0), ""));
    case X_NEG:
        if (e->t == T_I32)
            return LLVMBuildNSWNeg(g->b, gen_expr(kg, e->a), "");
        return LLVMBuildFNeg(g->b, gen_expr(kg, e->a), "");
    case X_EXP: case X_LOG: case X_TANH: case X_SQRT: {
        LLVMValueRef arg = gen_expr(kg, e->a);
        return LLVMBuildCall2(g->b, g->t_math, math_fn(g, e->k - X_EXP), &arg, 1, "");
    }
    case X_SELECT: {
        if (e->t == T_V32) {
            /* lane by lane, both sides evaluated (loop.h); the predicates
             * of gen_cmp */
            static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOEQ,
                                                   LLVMRealUNE};
            LLVMValueRef m = LLVMBuildFCmp(g->b, fp[e->a->k - X_LT], gen_expr(kg, e->a->a),
                                           gen_expr(kg, e->a->b), "");
            LLVMValueRef t = gen_expr(kg, e->b), f = gen_expr(kg, e->c);
            return LLVMBuildSelect(g->b, m, t, f, "");
        }
        /* both arms evaluated (loop.h): no branch */
        LLVMValueRef c = truth(kg, gen_expr(kg, e->a), "");
        LLVMValueRef t = gen_expr(kg, e->b), f = gen_expr(kg, e->c);
        return LLVMBuildSelect(g->b, c, t, f, "");
    }
    case X_I2F:
        return LLVMBuildSIToFP(g->b, gen_expr(kg, e->a), g->t_f32, "");
    case X_F2I:
        return LLVMBuildFPToSI(g->b, gen_expr(kg, e->a), g->t_i32, "");
    case X_COUNT:
        break;
    }
    NETC_ASSERT(!"unknown expression kind");
    return NULL;
}

/* ---- statements -------------------------------------------------------- */

static void gen_stmt(KGen *kg, const Stmt *s);

static void gen_list(KGen *kg, Stmt *const *list, int n)
{
    for (int i = 0; i < n; i++)
        gen_stmt(kg, list[i]);
}

static LLVMBasicBlockRef new_block(KGen *kg, const char *base, const char *suffix)
{
    char name[128];
    snprintf(name, sizeof name, "%s.%s", base, suffix);
    return LLVMAppendBasicBlockInContext(kg->g->ctx, kg->fn, name);
}

/* Marks the back edge br of a loop `llvm.loop.unroll.disable`: a loop ID
 * node whose first operand is itself (made through a temporary, which LLVM
 * turns into a distinct node). */
static void no_unroll(Gen *g, LLVMValueRef br)
{
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(g->ctx, NULL, 0);
    LLVMMetadataRef str = LLVMMDStringInContext2(g->ctx, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef ops[2] = {tmp, LLVMMDNodeInContext2(g->ctx, &str, 1)};
    LLVMMetadataRef id = LLVMMDNodeInContext2(g->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, id);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(g->ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(g->ctx, id));
}

/* At most how many iterations loop s runs, known at compile time: its
 * bounds are constants, or its upper bound is a min() with one (a tile's
 * edge); -1 when unknown. */
static long trip_bound(const Stmt *s)
{
    if (s->lo->k != X_INT)
        return -1;
    const Expr *hi = s->hi;
    if (hi->k == X_MIN && hi->a->k == X_INT)
        hi = hi->a;
    else if (hi->k == X_MIN && hi->b->k == X_INT)
        hi = hi->b;
    if (hi->k != X_INT)
        return -1;
    long trip = (long)hi->ival - s->lo->ival;
    return trip > 0 ? trip : 0;
}

/* The statements s becomes when LLVM unrolls every loop in it whose trip
 * count it can know (an inner loop it cannot unroll counts once). */
static long unrolled_size(const Stmt *s)
{
    long n = s->k == S_BLOCK || s->k == S_FOR ? 0 : 1;
    for (int i = 0; i < s->nbody; i++)
        n += unrolled_size(s->body[i]);
    for (int i = 0; i < s->nels; i++)
        n += unrolled_size(s->els[i]);
    if (s->k == S_FOR) {
        long trip = trip_bound(s);
        n = trip < 0 ? 1 : trip * n;
        if (n > 1L << 30)   /* saturated: well past any limit, no overflow */
            n = 1L << 30;
    }
    return n;
}

static bool has_inner_loop(const Stmt *s)
{
    for (int i = 0; i < s->nbody; i++)
        if (s->body[i]->k == S_FOR || has_inner_loop(s->body[i]))
            return true;
    for (int i = 0; i < s->nels; i++)
        if (s->els[i]->k == S_FOR || has_inner_loop(s->els[i]))
            return true;
    return false;
}

/* A loop nest that LLVM could unroll fully into more than this many
 * statements stays a loop at every level above that size.  Unrolled, the
 * copies land in one loop further out, whose dependence analysis (for the
 * loop vectoriser and load elimination) grows with the square of its
 * memory accesses: a Winograd output tile copied out in four nested loops
 * of 4 became 196 loads and stores in the loop over tiles, and took 0.4 s
 * of LLVM's time per kernel. */
enum { LLVM_UNROLL_MAX = 64 };

/* for (v = lo; v < hi; v++) with lo and hi evaluated once, before the
 * first iteration (loop.h). */
static void gen_for_range(KGen *kg, const Stmt *s, LLVMValueRef lo, LLVMValueRef hi)
{
    Gen *g = kg->g;
    const char *vn = kg->k->var[s->var].name;
    LLVMValueRef slot = kg->var[s->var];
    LLVMBuildStore(g->b, lo, slot);
    LLVMBasicBlockRef bcond = new_block(kg, vn, "cond");
    LLVMBasicBlockRef bbody = new_block(kg, vn, "body");
    LLVMBasicBlockRef bend = new_block(kg, vn, "end");
    LLVMBuildBr(g->b, bcond);

    LLVMPositionBuilderAtEnd(g->b, bcond);
    LLVMValueRef v = LLVMBuildLoad2(g->b, g->t_i32, slot, vn);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLT, v, hi, ""), bbody, bend);

    LLVMPositionBuilderAtEnd(g->b, bbody);
    gen_list(kg, s->body, s->nbody);
    LLVMValueRef cur = LLVMBuildLoad2(g->b, g->t_i32, slot, vn);
    LLVMBuildStore(g->b, LLVMBuildNSWAdd(g->b, cur, LLVMConstInt(g->t_i32, 1, 0), ""), slot);
    LLVMValueRef back = LLVMBuildBr(g->b, bcond);
    /* the lowering (or the schedule) has laid a vector loop's work out in
     * registers already; a big nest stays loops (LLVM_UNROLL_MAX) */
    if (stmt_has_vectors(kg->k, s) || (has_inner_loop(s) && unrolled_size(s) > LLVM_UNROLL_MAX))
        no_unroll(g, back);

    LLVMPositionBuilderAtEnd(g->b, bend);
}

static void gen_parallel(KGen *kg, const Stmt *s);

static void gen_for(KGen *kg, const Stmt *s)
{
    if (s->parallel) {
        gen_parallel(kg, s);
        return;
    }
    LLVMValueRef lo = gen_expr(kg, s->lo);
    LLVMValueRef hi = gen_expr(kg, s->hi);
    gen_for_range(kg, s, lo, hi);
}

static void gen_if(KGen *kg, const Stmt *s)
{
    Gen *g = kg->g;
    LLVMValueRef c = truth(kg, gen_expr(kg, s->cond), "");
    LLVMBasicBlockRef bthen = new_block(kg, "if", "then");
    LLVMBasicBlockRef bels = s->nels ? new_block(kg, "if", "else") : NULL;
    LLVMBasicBlockRef bend = new_block(kg, "if", "end");
    LLVMBuildCondBr(g->b, c, bthen, bels ? bels : bend);

    LLVMPositionBuilderAtEnd(g->b, bthen);
    gen_list(kg, s->body, s->nbody);
    LLVMBuildBr(g->b, bend);
    if (bels) {
        LLVMPositionBuilderAtEnd(g->b, bels);
        gen_list(kg, s->els, s->nels);
        LLVMBuildBr(g->b, bend);
    }
    LLVMPositionBuilderAtEnd(g->b, bend);
}

static void gen_stmt(KGen *kg, const Stmt *s)
{
    Gen *g = kg->g;
    switch (s->k) {
    case S_BLOCK:
        gen_list(kg, s->body, s->nbody);
        return;
    case S_FOR:
        gen_for(kg, s);
        return;
    case S_IF:
        gen_if(kg, s);
        return;
    case S_STORE: {
        LLVMValueRef val = gen_expr(kg, s->val);
        LLVMValueRef ptr = elem_ptr(kg, s->buf, s->idx);
        LLVMTypeRef t = ktype(kg, s->val->t);
        if (s->accum) { /* buf[i] = buf[i] + val, as C's += */
            LLVMValueRef old = LLVMBuildLoad2(g->b, t, ptr, "");
            if (s->val->t == T_V32)
                LLVMSetAlignment(old, 4);
            val = LLVMBuildFAdd(g->b, old, val, "");
        }
        LLVMValueRef st = LLVMBuildStore(g->b, val, ptr);
        if (s->val->t == T_V32)
            LLVMSetAlignment(st, 4);
        return;
    }
    case S_DECL:
    case S_ASSIGN:
        NETC_ASSERT(s->var >= 0 && s->var < kg->k->nvar);
        LLVMBuildStore(g->b, gen_expr(kg, s->val), kg->var[s->var]);
        return;
    case S_CALL: {
        const Kernel *c = s->callee;
        LLVMValueRef fn = g->kfn[c->index];
        NETC_ASSERT(fn);
        int na = 1 + c->nbuf + s->narg;
        LLVMValueRef *args = netc_alloc(sizeof *args * (size_t)na);
        args[0] = kg->n;
        for (int i = 0; i < c->nbuf; i++)
            args[1 + i] = kg->buf[s->cbuf[i]];
        for (int i = 0; i < s->narg; i++)
            args[1 + c->nbuf + i] = gen_expr(kg, s->arg[i]);
        LLVMBuildCall2(g->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)na, "");
        free(args);
        return;
    }
    }
    NETC_ASSERT(!"unknown statement kind");
}

static LLVMValueRef exported(LLVMValueRef v, const char *name);

/* The entry block, with one alloca per variable of the kernel. */
static void start_body(KGen *kg)
{
    Gen *g = kg->g;
    const Kernel *k = kg->k;
    kg->entry = LLVMAppendBasicBlockInContext(g->ctx, kg->fn, "entry");
    LLVMPositionBuilderAtEnd(g->b, kg->entry);
    kg->var = netc_alloc(sizeof *kg->var * (size_t)(k->nvar ? k->nvar : 1));
    for (int i = 0; i < k->nvar; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s.addr", k->var[i].name);
        kg->var[i] = LLVMBuildAlloca(g->b, ktype(kg, k->var[i].t), name);
    }
}

/* internal void netc_parallel_for(ptr task, ptr ctx, i32 count): the hook
 * installed by NAME_set_parallel, or task(ctx, 0, count) without one. */
static LLVMValueRef par_for_fn(Gen *g)
{
    if (g->par_for)
        return g->par_for;
    LLVMTypeRef pt[3] = {g->t_ptr, g->t_ptr, g->t_i32};
    g->t_par_for = LLVMFunctionType(g->t_void, pt, 3, 0);
    LLVMValueRef fn = g->par_for = LLVMAddFunction(g->mod, "netc_parallel_for", g->t_par_for);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_fn_attrs(g, fn);
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(g->b);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->ctx, fn, "entry");
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(g->ctx, fn, "run");
    LLVMBasicBlockRef hook = LLVMAppendBasicBlockInContext(g->ctx, fn, "hook");
    LLVMBasicBlockRef serial = LLVMAppendBasicBlockInContext(g->ctx, fn, "serial");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->ctx, fn, "done");
    LLVMValueRef task = LLVMGetParam(fn, 0), ctx = LLVMGetParam(fn, 1), count = LLVMGetParam(fn, 2);
    LLVMPositionBuilderAtEnd(g->b, entry);
    LLVMBuildCondBr(g->b, LLVMBuildICmp(g->b, LLVMIntSLE, count, LLVMConstInt(g->t_i32, 0, 0), ""), done, run);
    LLVMPositionBuilderAtEnd(g->b, run);
    LLVMValueRef pf = LLVMBuildLoad2(g->b, g->t_ptr, g->pf, "pf");
    LLVMBuildCondBr(g->b, LLVMBuildIsNull(g->b, pf, ""), serial, hook);
    LLVMPositionBuilderAtEnd(g->b, hook);
    LLVMValueRef hargs[4] = {LLVMBuildLoad2(g->b, g->t_ptr, g->pool, "pool"), task, ctx, count};
    LLVMBuildCall2(g->b, g->t_pf, pf, hargs, 4, "");
    LLVMBuildBr(g->b, done);
    LLVMPositionBuilderAtEnd(g->b, serial);
    LLVMValueRef sargs[3] = {ctx, LLVMConstInt(g->t_i32, 0, 0), count};
    LLVMBuildCall2(g->b, g->t_task, task, sargs, 3, "");
    LLVMBuildBr(g->b, done);
    LLVMPositionBuilderAtEnd(g->b, done);
    LLVMBuildRetVoid(g->b);
    if (saved)
        LLVMPositionBuilderAtEnd(g->b, saved);
    return fn;
}

/* A parallel loop, as emit_c.c prints it: a body function
 *   internal void K.parI.body(i32 n, ptr noalias b0, ..., i32 lo, i32 hi, captures...)
 * a task that unpacks the context { i32 n, i32 lo, ptr b0, ..., captures }
 *   internal void K.parI(ptr ctx, i32 a, i32 b)   -> body(..., lo + a, lo + b, ...)
 * and, in place of the loop, the context filled in (an alloca of the
 * kernel's entry block) and netc_parallel_for(task, ctx, hi - lo). */
static void gen_parallel(KGen *kg, const Stmt *s)
{
    Gen *g = kg->g;
    const Kernel *k = kg->k;
    char name[512];
    snprintf(name, sizeof name, "%s.par%d", k->name, kg->npar++);
    bool *cap = netc_alloc(sizeof(bool) * ((size_t)k->nvar + 1));
    loop_captures(k, s, cap);
    int ncap = 0;
    for (int v = 0; v < k->nvar; v++)
        ncap += cap[v];

    /* the context's type: n, lo, buffers, captures */
    int nf = 2 + k->nbuf + ncap;
    LLVMTypeRef *ft = netc_alloc(sizeof *ft * (size_t)nf);
    ft[0] = ft[1] = g->t_i32;
    for (int i = 0; i < k->nbuf; i++)
        ft[2 + i] = g->t_ptr;
    for (int v = 0, j = 2 + k->nbuf; v < k->nvar; v++)
        if (cap[v]) {
            NETC_ASSERT(k->var[v].t != T_V32);
            ft[j++] = ltype(g, k->var[v].t);
        }
    LLVMTypeRef t_ctx = LLVMStructTypeInContext(g->ctx, ft, (unsigned)nf, 0);

    /* the body function: n, buffers, lo, hi, captures */
    int np = 1 + k->nbuf + 2 + ncap;
    LLVMTypeRef *pt = netc_alloc(sizeof *pt * (size_t)np);
    pt[0] = g->t_i32;
    for (int i = 0; i < k->nbuf; i++)
        pt[1 + i] = g->t_ptr;
    pt[1 + k->nbuf] = pt[2 + k->nbuf] = g->t_i32;
    for (int j = 0; j < ncap; j++)
        pt[3 + k->nbuf + j] = ft[2 + k->nbuf + j];
    LLVMTypeRef t_body = LLVMFunctionType(g->t_void, pt, (unsigned)np, 0);
    char bname[600];
    snprintf(bname, sizeof bname, "%s.body", name);
    LLVMValueRef body = LLVMAddFunction(g->mod, bname, t_body);
    LLVMSetLinkage(body, LLVMInternalLinkage);
    add_fn_attrs(g, body);
    for (int i = 0; i < k->nbuf; i++)
        add_enum_attr(g, body, (LLVMAttributeIndex)(2 + i), "noalias", 0);
    /* Never inlined into its task (nor, through netc_parallel_for's serial
     * path, into the kernel): inlined, the loop existed twice and lost its
     * noalias parameters, and the vectorisers' alias checks on it cost
     * GoogLeNet at -O3 on a Zen 4 76 s of optimisation (26 s so), for no
     * faster code. */
    add_enum_attr(g, body, LLVMAttributeFunctionIndex, "noinline", 0);

    LLVMBasicBlockRef saved = LLVMGetInsertBlock(g->b);
    KGen sub = {.g = g, .k = k, .fn = body, .t_vec = kg->t_vec};
    sub.n = LLVMGetParam(body, 0);
    sub.buf = netc_alloc(sizeof *sub.buf * (size_t)(k->nbuf ? k->nbuf : 1));
    for (int i = 0; i < k->nbuf; i++)
        sub.buf[i] = LLVMGetParam(body, (unsigned)(1 + i));
    start_body(&sub);
    for (int v = 0, j = 0; v < k->nvar; v++)
        if (cap[v])
            LLVMBuildStore(g->b, LLVMGetParam(body, (unsigned)(3 + k->nbuf + j++)), sub.var[v]);
    gen_for_range(&sub, s, LLVMGetParam(body, (unsigned)(1 + k->nbuf)),
                  LLVMGetParam(body, (unsigned)(2 + k->nbuf)));
    LLVMBuildRetVoid(g->b);
    free(sub.buf);
    free(sub.var);

    /* the task */
    LLVMValueRef task = LLVMAddFunction(g->mod, name, g->t_task);
    LLVMSetLinkage(task, LLVMInternalLinkage);
    add_fn_attrs(g, task);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, task, "entry"));
    LLVMValueRef ctx = LLVMGetParam(task, 0);
    LLVMValueRef *args = netc_alloc(sizeof *args * (size_t)np);
    LLVMValueRef f[2];
    for (int i = 0; i < 2; i++)
        f[i] = LLVMBuildLoad2(g->b, g->t_i32, LLVMBuildStructGEP2(g->b, t_ctx, ctx, (unsigned)i, ""), "");
    args[0] = f[0];
    for (int i = 0; i < k->nbuf; i++)
        args[1 + i] = LLVMBuildLoad2(g->b, g->t_ptr, LLVMBuildStructGEP2(g->b, t_ctx, ctx, (unsigned)(2 + i), ""),
                                     k->buf[i].name);
    args[1 + k->nbuf] = LLVMBuildNSWAdd(g->b, f[1], LLVMGetParam(task, 1), "");
    args[2 + k->nbuf] = LLVMBuildNSWAdd(g->b, f[1], LLVMGetParam(task, 2), "");
    for (int j = 0; j < ncap; j++)
        args[3 + k->nbuf + j] = LLVMBuildLoad2(
            g->b, ft[2 + k->nbuf + j], LLVMBuildStructGEP2(g->b, t_ctx, ctx, (unsigned)(2 + k->nbuf + j), ""), "");
    LLVMBuildCall2(g->b, t_body, body, args, (unsigned)np, "");
    LLVMBuildRetVoid(g->b);
    free(args);

    /* the call site */
    LLVMValueRef pfor = par_for_fn(g);
    LLVMPositionBuilderAtEnd(g->b, saved);
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(g->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(kg->entry);
    if (first)
        LLVMPositionBuilderBefore(eb, first);
    else
        LLVMPositionBuilderAtEnd(eb, kg->entry);
    LLVMValueRef slot = LLVMBuildAlloca(eb, t_ctx, "par.ctx");
    LLVMDisposeBuilder(eb);
    LLVMValueRef lo = gen_expr(kg, s->lo);
    LLVMValueRef hi = gen_expr(kg, s->hi);
    LLVMBuildStore(g->b, kg->n, LLVMBuildStructGEP2(g->b, t_ctx, slot, 0, ""));
    LLVMBuildStore(g->b, lo, LLVMBuildStructGEP2(g->b, t_ctx, slot, 1, ""));
    for (int i = 0; i < k->nbuf; i++)
        LLVMBuildStore(g->b, kg->buf[i], LLVMBuildStructGEP2(g->b, t_ctx, slot, (unsigned)(2 + i), ""));
    for (int v = 0, j = 0; v < k->nvar; v++)
        if (cap[v]) {
            LLVMValueRef x = LLVMBuildLoad2(g->b, ltype(g, k->var[v].t), kg->var[v], "");
            LLVMBuildStore(g->b, x, LLVMBuildStructGEP2(g->b, t_ctx, slot, (unsigned)(2 + k->nbuf + j++), ""));
        }
    LLVMValueRef cargs[3] = {task, slot, LLVMBuildNSWSub(g->b, hi, lo, "")};
    LLVMBuildCall2(g->b, g->t_par_for, pfor, cargs, 3, "");
    free(cap);
    free(ft);
    free(pt);
}

/* void NAME_set_parallel(ptr pf, ptr pool): installs the hook. */
static LLVMValueRef gen_set_parallel(Gen *g, const Program *p)
{
    char name[512];
    snprintf(name, sizeof name, "%s_set_parallel", p->m->name);
    LLVMTypeRef pt[2] = {g->t_ptr, g->t_ptr};
    LLVMValueRef fn = exported(LLVMAddFunction(g->mod, name, LLVMFunctionType(g->t_void, pt, 2, 0)), name);
    add_fn_attrs(g, fn);
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    LLVMValueRef pf = LLVMGetParam(fn, 0);
    LLVMBuildStore(g->b, pf, g->pf);
    LLVMBuildStore(g->b, LLVMBuildSelect(g->b, LLVMBuildIsNull(g->b, pf, ""), LLVMConstNull(g->t_ptr),
                                         LLVMGetParam(fn, 1), ""), g->pool);
    LLVMBuildRetVoid(g->b);
    return fn;
}

/* A symbol private to the program: internal in one module; hidden and
 * named after the model when the program is split over several objects,
 * so that the parts link with each other and with nothing else. */
static LLVMValueRef private_symbol(Gen *g, LLVMValueRef v)
{
    if (g->nparts <= 1) {
        LLVMSetLinkage(v, LLVMInternalLinkage);
        return v;
    }
    LLVMSetLinkage(v, LLVMExternalLinkage);
    LLVMSetVisibility(v, LLVMHiddenVisibility);
    return v;
}

static void private_name(const Gen *g, const Program *p, const char *name, char *out, size_t cap)
{
    if (g->nparts <= 1)
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "%s.%s", p->m->name, name);
}

static LLVMTypeRef kernel_type(Gen *g, const Kernel *k)
{
    int np = 1 + k->nbuf + k->narg;
    LLVMTypeRef *pt = netc_alloc(sizeof *pt * (size_t)np);
    pt[0] = g->t_i32;
    for (int i = 0; i < k->nbuf; i++)
        pt[1 + i] = g->t_ptr;
    for (int i = 0; i < k->narg; i++)
        pt[1 + k->nbuf + i] = k->arg_t[i] == T_I32 ? g->t_i32 : g->t_f32;
    LLVMTypeRef ft = LLVMFunctionType(g->t_void, pt, (unsigned)np, 0);
    free(pt);
    return ft;
}

/* A kernel another part defines. */
static LLVMValueRef declare_kernel(Gen *g, const Program *p, const Kernel *k)
{
    char name[512];
    private_name(g, p, k->name, name, sizeof name);
    return private_symbol(g, exported(LLVMAddFunction(g->mod, name, kernel_type(g, k)), name));
}

/* internal void KERNEL(i32 n, ptr noalias b0, ..., args): the C
 * backend's static function with restrict pointers.  Never inlined: an
 * outlined kernel's point is to stay one function, and a kernel inlined
 * into its entry (the only caller of most) made GoogLeNet's train entry
 * 35,000 instructions that every pass and the register allocator worked
 * through again, 8% of its build's CPU time, for a call saved per kernel. */
static LLVMValueRef add_kernel_fn(Gen *g, const Program *p, const Kernel *k)
{
    char name[512];
    private_name(g, p, k->name, name, sizeof name);
    LLVMValueRef fn = LLVMAddFunction(g->mod, name, kernel_type(g, k));
    if (g->nparts > 1)
        exported(fn, name);
    private_symbol(g, fn);
    add_fn_attrs(g, fn);
    add_enum_attr(g, fn, LLVMAttributeFunctionIndex, "noinline", 0);
    return fn;
}

static void gen_kernel(Gen *g, const Kernel *k, LLVMValueRef fn)
{
    KGen kg = {.g = g, .k = k, .fn = fn};
    if (k->vlen)
        kg.t_vec = LLVMVectorType(g->t_f32, (unsigned)k->vlen);
    kg.n = LLVMGetParam(fn, 0);
    LLVMSetValueName2(kg.n, "n", 1);
    kg.buf = netc_alloc(sizeof *kg.buf * (size_t)(k->nbuf ? k->nbuf : 1));
    for (int i = 0; i < k->nbuf; i++) {
        kg.buf[i] = LLVMGetParam(fn, (unsigned)(1 + i));
        LLVMSetValueName2(kg.buf[i], k->buf[i].name, strlen(k->buf[i].name));
        add_enum_attr(g, fn, (LLVMAttributeIndex)(2 + i), "noalias", 0);
    }

    start_body(&kg);
    gen_stmt(&kg, k->body);
    LLVMBuildRetVoid(g->b);
    free(kg.buf);
    free(kg.var);
}

/* ---- entry points, meta, weights, main --------------------------------- */

/* An entry's parameters: n, params, grads or prep, arena, in, out; a
 * prepare entry has params, prep and arena only (n is 1, in and out NULL). */
typedef struct {
    LLVMValueRef n, params, third, arena, in, out;
} EntryArgs;

/* The pointer a kernel gets for one Loc. */
static LLVMValueRef loc_ptr(Gen *g, const EntryArgs *ea, const Loc *l)
{
    LLVMValueRef n = ea->n, params = ea->params, grads = ea->third, arena = ea->arena;
    LLVMValueRef in = ea->in, out = ea->out;
    LLVMValueRef off, idx;
    switch (l->k) {
    case LOC_ARENA:
        /* arena + off_fixed + off_per_n * n floats, in 64 bits so large
         * batches cannot overflow the offset. */
        off = LLVMConstInt(g->t_i64, (unsigned long long)(long long)l->off_fixed, 1);
        if (l->off_per_n) {
            LLVMValueRef n64 = LLVMBuildSExt(g->b, n, g->t_i64, "");
            LLVMValueRef per = LLVMConstInt(g->t_i64, (unsigned long long)(long long)l->off_per_n, 1);
            off = LLVMBuildNSWAdd(g->b, off, LLVMBuildNSWMul(g->b, per, n64, ""), "");
        }
        return LLVMBuildInBoundsGEP2(g->b, g->t_f32, arena, &off, 1, "");
    case LOC_PARAM:
    case LOC_GRAD:
    case LOC_PREP: /* prep is the third pointer, where grads is elsewhere */
        off = LLVMConstInt(g->t_i64, (unsigned long long)(long long)l->off_fixed, 1);
        return LLVMBuildInBoundsGEP2(g->b, g->t_f32, l->k == LOC_PARAM ? params : grads, &off, 1, "");
    case LOC_IN:
    case LOC_OUT:
        idx = LLVMConstInt(g->t_i64, (unsigned long long)l->idx, 0);
        return LLVMBuildLoad2(g->b, g->t_ptr,
                              LLVMBuildInBoundsGEP2(g->b, g->t_ptr, l->k == LOC_IN ? in : out,
                                                    &idx, 1, ""),
                              l->k == LOC_IN ? "in.p" : "out.p");
    }
    NETC_ASSERT(!"unknown Loc kind");
    return NULL;
}

/* An exported symbol must keep its name: LLVM silently renames a symbol
 * that clashes ("t_forward.1"), which would break the program's link. */
static LLVMValueRef exported(LLVMValueRef v, const char *name)
{
    size_t len;
    const char *got = LLVMGetValueName2(v, &len);
    NETC_ASSERT(len == strlen(name) && !memcmp(got, name, len));
    return v;
}

static LLVMTypeRef entry_type(Gen *g, EntryKind kind)
{
    LLVMTypeRef pt[6] = {g->t_i32, g->t_ptr, g->t_ptr, g->t_ptr, g->t_ptr, g->t_ptr};
    if (kind == ENTRY_PREPARE) /* (params, prep, arena) */
        return LLVMFunctionType(g->t_void, pt + 1, 3, 0);
    return LLVMFunctionType(g->t_void, pt, 6, 0);
}

static LLVMValueRef gen_entry(Gen *g, const Program *p, const Entry *en, LLVMValueRef *kfn)
{
    static const char *const pname[6] = {"n", "params", "grads", "arena", "in", "out"};
    static const char *const prep_pname[6] = {"n", "params", "prep", "arena", "in", "out"};
    char name[512];
    snprintf(name, sizeof name, "%s_%s", p->m->name, en->name);
    LLVMValueRef fn = exported(LLVMAddFunction(g->mod, name, entry_type(g, en->kind)), name);
    add_fn_attrs(g, fn);
    EntryArgs ea;
    if (en->kind == ENTRY_PREPARE) {
        LLVMValueRef null = LLVMConstPointerNull(g->t_ptr);
        ea = (EntryArgs){LLVMConstInt(g->t_i32, 1, 0), LLVMGetParam(fn, 0), LLVMGetParam(fn, 1),
                         LLVMGetParam(fn, 2), null, null};
        for (unsigned i = 0; i < 3; i++)
            LLVMSetValueName2(LLVMGetParam(fn, i), prep_pname[i + 1], strlen(prep_pname[i + 1]));
    } else {
        ea = (EntryArgs){LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2),
                         LLVMGetParam(fn, 3), LLVMGetParam(fn, 4), LLVMGetParam(fn, 5)};
        const char *const *names = en->kind == ENTRY_PREPARED ? prep_pname : pname;
        for (unsigned i = 0; i < 6; i++)
            LLVMSetValueName2(LLVMGetParam(fn, i), names[i], strlen(names[i]));
    }
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    for (int c = 0; c < en->ncall; c++) {
        const Call *call = &en->call[c];
        const Kernel *k = call->kernel, *f = kernel_callee(k);
        int ki = f->index;
        NETC_ASSERT(ki < p->nkernel && kfn[ki]);
        LLVMValueRef *args = netc_alloc(sizeof *args * (size_t)(1 + k->nbuf + f->narg));
        args[0] = ea.n;
        for (int b = 0; b < k->nbuf; b++)
            args[1 + b] = loc_ptr(g, &ea, &call->arg[b]);
        for (int i = 0; i < f->narg; i++)
            args[1 + k->nbuf + i] = f->arg_t[i] == T_I32
                                        ? LLVMConstInt(g->t_i32, (unsigned long long)(long long)k->arg[i].i, 1)
                                        : LLVMConstReal(g->t_f32, (double)k->arg[i].f);
        /* a call for a range of batches: a branch around it */
        LLVMValueRef in_range = NULL;
        if (call->n_lo)
            in_range = LLVMBuildICmp(g->b, LLVMIntSGE, ea.n, LLVMConstInt(g->t_i32, (unsigned)call->n_lo, 0), "");
        if (call->n_hi) {
            LLVMValueRef below = LLVMBuildICmp(g->b, LLVMIntSLT, ea.n, LLVMConstInt(g->t_i32, (unsigned)call->n_hi, 0), "");
            in_range = in_range ? LLVMBuildAnd(g->b, in_range, below, "") : below;
        }
        LLVMBasicBlockRef after = NULL;
        if (in_range) {
            LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(g->ctx, fn, "batch");
            after = LLVMAppendBasicBlockInContext(g->ctx, fn, "next");
            LLVMBuildCondBr(g->b, in_range, then, after);
            LLVMPositionBuilderAtEnd(g->b, then);
        }
        LLVMBuildCall2(g->b, LLVMGlobalGetValueType(kfn[ki]), kfn[ki], args,
                       (unsigned)(1 + k->nbuf + f->narg), "");
        if (after) {
            LLVMBuildBr(g->b, after);
            LLVMPositionBuilderAtEnd(g->b, after);
        }
        free(args);
    }
    LLVMBuildRetVoid(g->b);
    return fn;
}

static LLVMValueRef add_const_global(Gen *g, const char *name, LLVMValueRef init, unsigned align)
{
    LLVMValueRef gv = exported(LLVMAddGlobal(g->mod, LLVMTypeOf(init), name), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, 1);
    LLVMSetAlignment(gv, align);
    return gv;
}

static LLVMValueRef gen_meta(Gen *g, const Program *p)
{
    char name[512];
    snprintf(name, sizeof name, "%s_meta", p->m->name);
    const char *meta = p->meta ? p->meta : "";
    /* DontNullTerminate = 0: the array keeps C's terminating NUL. */
    return add_const_global(g, name, LLVMConstStringInContext2(g->ctx, meta, strlen(meta), 0), 1);
}

static LLVMValueRef gen_weights(Gen *g, const Program *p)
{
    char name[512];
    snprintf(name, sizeof name, "%s_weights", p->m->name);
    size_t n = (size_t)p->param_floats;
    LLVMValueRef *v = netc_alloc(sizeof *v * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        v[i] = LLVMConstReal(g->t_f32, (double)p->weights[i]);
    LLVMValueRef arr = LLVMConstArray2(g->t_f32, v, n);
    free(v);
    return add_const_global(g, name, arr, 64);
}

/* A private constant NetcModel {meta, forward, train, eval, weights,
 * set_parallel, prepare, forward_prepared, eval_prepared} (nulls where
 * absent) and
 * i32 main(i32 argc, ptr argv) { return netc_run(argc, argv, &model); } */
static void gen_main(Gen *g, const Program *p, LLVMValueRef meta, const LLVMValueRef entry[6],
                     LLVMValueRef weights, LLVMValueRef set_parallel)
{
    LLVMValueRef null = LLVMConstPointerNull(g->t_ptr);
    LLVMValueRef field[9] = {meta, entry[0], entry[1] ? entry[1] : null, entry[2] ? entry[2] : null,
                             weights ? weights : null, set_parallel,
                             entry[3] ? entry[3] : null, entry[4] ? entry[4] : null,
                             entry[5] ? entry[5] : null};
    LLVMValueRef init = LLVMConstStructInContext(g->ctx, field, 9, 0);
    char name[512];
    private_name(g, p, "netc.model", name, sizeof name);
    LLVMValueRef model = LLVMAddGlobal(g->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(model, init);
    LLVMSetGlobalConstant(model, 1);
    LLVMSetLinkage(model, LLVMInternalLinkage);

    LLVMTypeRef mt_args[2] = {g->t_i32, g->t_ptr};
    LLVMValueRef fn =
        exported(LLVMAddFunction(g->mod, "main", LLVMFunctionType(g->t_i32, mt_args, 2, 0)), "main");
    add_fn_attrs(g, fn);
    LLVMTypeRef nt_args[3] = {g->t_i32, g->t_ptr, g->t_ptr};
    LLVMTypeRef nt = LLVMFunctionType(g->t_i32, nt_args, 3, 0);
    LLVMValueRef run = exported(LLVMAddFunction(g->mod, "netc_run", nt), "netc_run");
    LLVMPositionBuilderAtEnd(g->b, LLVMAppendBasicBlockInContext(g->ctx, fn, "entry"));
    LLVMValueRef args[3] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), model};
    LLVMBuildRet(g->b, LLVMBuildCall2(g->b, nt, run, args, 3, "status"));
}

/* Unused math declarations would only clutter the .ll. */
static void drop_unused_math(Gen *g)
{
    for (int i = 0; i < MATH_COUNT; i++)
        if (!LLVMGetFirstUse(g->math[i]))
            LLVMDeleteFunction(g->math[i]);
}

static void gen_program(Gen *g, const Program *p, bool with_main)
{
    /* libm first, so that a kernel that happens to be called "expf" is
     * renamed by LLVM rather than captured as the math function. */
    for (int i = 0; i < MATH_COUNT; i++)
        math_fn(g, i);
    /* The parallel-for hook: NAME_set_parallel fills two internal globals. */
    LLVMTypeRef tt[3] = {g->t_ptr, g->t_i32, g->t_i32};
    g->t_task = LLVMFunctionType(g->t_void, tt, 3, 0);
    LLVMTypeRef pft[4] = {g->t_ptr, g->t_ptr, g->t_ptr, g->t_i32};
    g->t_pf = LLVMFunctionType(g->t_void, pft, 4, 0);
    for (int i = 0; i < 2; i++) {
        char name[512];
        private_name(g, p, i ? "netc.pool" : "netc.pf", name, sizeof name);
        LLVMValueRef gv = LLVMAddGlobal(g->mod, g->t_ptr, name);
        if (g->nparts > 1)
            exported(gv, name);
        private_symbol(g, gv);
        if (g->part == 0)
            LLVMSetInitializer(gv, LLVMConstNull(g->t_ptr));
        *(i ? &g->pool : &g->pf) = gv;
    }
    /* Like the C backend, only kernels some entry calls, each checked
     * first: building assumes well-formed names, types and indices. */
    LLVMValueRef *kfn = netc_alloc(sizeof *kfn * (size_t)(p->nkernel ? p->nkernel : 1));
    bool *used = program_kernels_used(p);
    /* every part declares what it may call (entries in part 0, outlined
     * kernels anywhere), then defines its own kernels */
    g->kfn = kfn;
    for (int i = 0; i < p->nkernel; i++) {
        kfn[i] = NULL;
        int owner = g->owner ? g->owner[i] : 0;
        if (!used[i] || (owner != g->part && g->part != 0 && !p->kernel[i]->outlined))
            continue;
        kfn[i] = owner == g->part ? add_kernel_fn(g, p, p->kernel[i]) : declare_kernel(g, p, p->kernel[i]);
    }
    for (int i = 0; i < p->nkernel; i++)
        if (used[i] && (g->owner ? g->owner[i] : 0) == g->part) {
            NETC_ASSERT(kernel_verify(p->kernel[i], stderr));
            gen_kernel(g, p->kernel[i], kfn[i]);
        }
    free(used);
    if (g->part != 0) {
        free(kfn);
        drop_unused_math(g);
        return;
    }
    LLVMValueRef setp = gen_set_parallel(g, p);
    LLVMValueRef entry[6] = {NULL, NULL, NULL, NULL, NULL, NULL}; /* NetcModel's order */
    for (int i = 0; i < p->nentry; i++) {
        LLVMValueRef fn = gen_entry(g, p, &p->entry[i], kfn);
        static const char *const main_entry[6] = {"forward", "train", "eval", "prepare",
                                                  "forward_prepared", "eval_prepared"};
        for (int k = 0; k < 6; k++)
            if (!strcmp(p->entry[i].name, main_entry[k]))
                entry[k] = fn;
    }
    free(kfn);
    LLVMValueRef meta = gen_meta(g, p);
    LLVMValueRef weights = p->weights && p->param_floats > 0 ? gen_weights(g, p) : NULL;
    if (with_main) {
        NETC_ASSERT(entry[0]);
        gen_main(g, p, meta, entry, weights, setp);
    }
    drop_unused_math(g);
}

/* ---- target machine ---------------------------------------------------- */

static void fatal_handler(const char *reason)
{
    /* LLVM exits after this returns; at least say who is talking. */
    fprintf(stderr, "netc: internal error: LLVM: %s\n", reason);
}

static void init_llvm(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    LLVMInstallFatalErrorHandler(fatal_handler);
}

/* LLVM reports an unknown CPU or feature by printing to stderr while it
 * creates the target machine and then carries on; we capture fd 2 around
 * such calls and turn what it says into netc errors. */
typedef struct {
    FILE *tmp;
    int saved;
} Capture;

static void capture_begin(Capture *c)
{
    fflush(stderr);
    c->saved = -1;
    c->tmp = tmpfile();
    if (!c->tmp)
        return;
    c->saved = dup(2);
    if (c->saved < 0 || dup2(fileno(c->tmp), 2) < 0) {
        if (c->saved >= 0)
            close(c->saved);
        c->saved = -1;
        fclose(c->tmp);
        c->tmp = NULL;
    }
}

/* Restores stderr and returns what was written (malloc'd, never NULL). */
static char *capture_end(Capture *c)
{
    if (!c->tmp)
        return netc_strdup("");
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    Buf b = {0};
    char chunk[4096];
    size_t got;
    rewind(c->tmp);
    while ((got = fread(chunk, 1, sizeof chunk - 1, c->tmp)) > 0) {
        chunk[got] = 0;
        buf_puts(&b, chunk);
    }
    fclose(c->tmp);
    return b.s ? b.s : netc_strdup("");
}

typedef struct {
    LLVMTargetMachineRef tm;
    char *triple, *cpu, *features;      /* malloc'd */
} LlvmTarget;

static void target_free(LlvmTarget *t)
{
    if (t->tm)
        LLVMDisposeTargetMachine(t->tm);
    free(t->triple);
    free(t->cpu);
    free(t->features);
    memset(t, 0, sizeof *t);
}

/* An LLVM-allocated string as a malloc'd one. */
static char *llvm_str(char *s)
{
    char *r = netc_strdup(s ? s : "");
    LLVMDisposeMessage(s);
    return r;
}

/* LLVM's list of a target's CPUs and features, as it prints it for the
 * CPU name "help".  LLVM prints that list once per process, so a child
 * process asks for it: the list then stays available for every later
 * error in this process.  Only used to explain an error.  Returns
 * malloc'd text, "" when it cannot be had. */
static char *target_help(LLVMTargetRef t, const char *triple)
{
    int fd[2];
    fflush(NULL);
    if (pipe(fd) != 0)
        return netc_strdup("");
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return netc_strdup("");
    }
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        LLVMCreateTargetMachine(t, triple, "help", "", LLVMCodeGenLevelNone, LLVMRelocDefault,
                                LLVMCodeModelDefault);
        _exit(0);
    }
    close(fd[1]);
    Buf b = {0};
    char chunk[4096];
    ssize_t got;
    while ((got = read(fd[0], chunk, sizeof chunk - 1)) > 0) {
        chunk[got] = 0;
        buf_puts(&b, chunk);
    }
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return b.s ? b.s : netc_strdup("");
}

/* The names listed under `header` ("Available CPUs" or "Available
 * features") in LLVM's help text: lines "  name  - description". */
static int parse_help(const char *text, const char *header, char ***names_out)
{
    char **names = NULL;
    int n = 0, cap = 0;
    const char *s = strstr(text, header);
    s = s ? strchr(s, '\n') : NULL;
    while (s && *s) {
        s++;                              /* past '\n' */
        const char *eol = strchr(s, '\n');
        if (!eol)
            eol = s + strlen(s);
        if (s[0] == ' ' && s[1] == ' ') {
            const char *w = s;
            while (*w == ' ')
                w++;
            const char *we = w;
            while (we < eol && *we != ' ')
                we++;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                names = netc_realloc(names, sizeof *names * (size_t)cap);
            }
            char *nm = netc_alloc((size_t)(we - w) + 1);
            memcpy(nm, w, (size_t)(we - w));
            nm[we - w] = 0;
            names[n++] = nm;
        } else if (eol > s && n > 0) {
            break;                        /* the next section's header */
        }
        s = *eol ? eol : NULL;
    }
    *names_out = names;
    return n;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* "did you mean 'x'?" when one name is close, else the whole list. */
static void hint_names(Diag *d, const char *help, const char *header, const char *what,
                       const char *word, const char *prefix)
{
    char **names;
    int n = parse_help(help, header, &names);
    const char *best = n ? diag_suggest(word, (const char *const *)names, n) : NULL;
    if (best) {
        diag_hint(d, "did you mean '%s%s'?", prefix, best);
    } else if (n) {
        Buf b = {0};
        for (int i = 0; i < n; i++)
            buf_printf(&b, "%s%s", i ? " " : "", names[i]);
        diag_hint(d, "this target's %s: %s", what, b.s);
        buf_free(&b);
    }
    free_names(names, n);
}

/* Checks what LLVM would not report itself: every item of a feature list
 * has its sign (LLVM quietly accepts "avx2"), and neither the CPU nor a
 * feature is "help", for which LLVM prints its lists instead of a
 * target machine -- once per process, which would leave target_help
 * nothing to read later. */
static bool check_names(LLVMTargetRef target, const LlvmTarget *t, Diag *d)
{
    bool ok = true;
    char *help = NULL;
    if (!strcmp(t->cpu, "help")) {
        diag_plain(d, "unknown CPU 'help' for target '%s'", t->triple);
        help = target_help(target, t->triple);
        hint_names(d, help, "Available CPUs", "CPUs", "help", "");
        ok = false;
    }
    for (const char *f = t->features; *f;) {
        size_t len = strcspn(f, ",");
        if (len > 0 && *f != '+' && *f != '-') {
            diag_plain(d, "unknown feature '%.*s': features are written +name or -name", (int)len, f);
            diag_hint(d, "did you mean '+%.*s'?", (int)len, f);
            ok = false;
        } else if (len == 5 && !strncmp(f + 1, "help", 4)) {
            diag_plain(d, "unknown feature '%.*s' for target '%s'", (int)len, f, t->triple);
            if (!help)
                help = target_help(target, t->triple);
            hint_names(d, help, "Available features", "features", "help", "+");
            ok = false;
        }
        f += len + (f[len] == ',');
    }
    free(help);
    return ok;
}

/* Turns what LLVM printed while creating a target machine into errors:
 *   'skylak' is not a recognized processor for this target (ignoring processor)
 *   '+avx9' is not a recognized feature for this target (ignoring feature)
 * Anything else it said is passed on. */
static bool check_llvm_said(const char *said, LLVMTargetRef target, const LlvmTarget *t, Diag *d)
{
    bool ok = true;
    char *help = NULL;
    bool cpu_bad = strstr(said, "not a recognized processor") != NULL;
    if (cpu_bad) {
        diag_plain(d, "unknown CPU '%s' for target '%s'", t->cpu, t->triple);
        help = target_help(target, t->triple);
        hint_names(d, help, "Available CPUs", "CPUs", t->cpu, "");
        ok = false;
    }
    static const char feat_msg[] = "' is not a recognized feature";
    for (const char *s = strstr(said, feat_msg); s; s = strstr(s + 1, feat_msg)) {
        const char *q = s;
        while (q > said && q[-1] != '\'' && q[-1] != '\n')
            q--;
        if (q == said || q[-1] != '\'')
            continue;
        int len = (int)(s - q);
        diag_plain(d, "unknown feature '%.*s' for target '%s'", len, q, t->triple);
        if (!help)
            help = target_help(target, t->triple);
        char word[256];
        int wl = len - 1 < (int)sizeof word - 1 ? len - 1 : (int)sizeof word - 1;
        memcpy(word, q + 1, (size_t)(wl > 0 ? wl : 0));
        word[wl > 0 ? wl : 0] = 0;
        char sign[2] = {q[0], 0};
        hint_names(d, help, "Available features", "features", word, sign);
        ok = false;
    }
    if (ok && said[0])
        fputs(said, d->out ? d->out : stderr); /* anything else, as LLVM said it */
    free(help);
    return ok;
}

static bool target_make(const LlvmOptions *o, LlvmTarget *t, Diag *d)
{
    memset(t, 0, sizeof *t);
    init_llvm();
    if (o->opt_level < 0 || o->opt_level > 3) {
        diag_plain(d, "optimisation level -O%d is out of range (0..3)", o->opt_level);
        return false;
    }
    bool host = !o->triple;
    t->triple = llvm_str(host ? LLVMGetDefaultTargetTriple() : LLVMNormalizeTargetTriple(o->triple));
    if (o->cpu)
        t->cpu = netc_strdup(o->cpu);
    else
        t->cpu = host ? llvm_str(LLVMGetHostCPUName()) : netc_strdup("generic");
    if (o->features)
        t->features = netc_strdup(o->features);
    else
        t->features = host ? llvm_str(LLVMGetHostCPUFeatures()) : netc_strdup("");

    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
        diag_plain(d, "unknown target '%s': %s", o->triple ? o->triple : t->triple,
                   err ? err : "not supported by this LLVM");
        LLVMDisposeMessage(err);
        target_free(t);
        return false;
    }
    if (!check_names(target, t, d)) {
        target_free(t);
        return false;
    }
    static const LLVMCodeGenOptLevel cg[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                              LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
    /* PIC: the object is linked into position-independent executables (the
     * default on current distributions) or shared libraries. */
    Capture c;
    capture_begin(&c);
    t->tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features, cg[o->opt_level],
                                    LLVMRelocPIC, LLVMCodeModelDefault);
    char *said = capture_end(&c);
    bool ok = t->tm != NULL;
    if (!ok)
        diag_plain(d, "LLVM cannot create a target machine for '%s' (CPU '%s')", t->triple, t->cpu);
    else
        ok = check_llvm_said(said, target, t, d);
    free(said);
    if (!ok)
        target_free(t);
    return ok;
}

/* ---- the pipeline ------------------------------------------------------ */

/* Which part of a split program a module holds (whole: {0, 1, NULL}). */
typedef struct {
    int part, nparts;
    const int *owner;  /* per kernel: the part that defines it */
} Split;

/* Builds, verifies and optimises the module (part sp of the program); the
 * caller disposes ctx.  Phases are timed when the build is not split over
 * threads (the phase timer belongs to the driver's thread). */
static LLVMModuleRef build_module(LLVMContextRef ctx, const Program *p, const LlvmTarget *t,
                                  int opt_level, bool with_main, Split sp, Diag *d)
{
    Gen g = {.ctx = ctx, .cpu = t->cpu, .features = t->features, .part = sp.part,
             .nparts = sp.nparts, .owner = sp.owner};
    bool timed = sp.nparts == 1;
    g.mod = LLVMModuleCreateWithNameInContext(p->m->name, ctx);
    /* The base name only, as in the C backend's header comment: an object
     * should not depend on where the model file was. */
    const char *src = p->m->file ? p->m->file : p->m->name;
    const char *slash = strrchr(src, '/');
    src = slash ? slash + 1 : src;
    LLVMSetSourceFileName(g.mod, src, strlen(src));
    LLVMSetTarget(g.mod, t->triple);
    /* The data layout first: loads, stores and allocas take their ABI
     * alignment from it (pointers are 4 bytes on 32-bit targets). */
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(t->tm);
    LLVMSetModuleDataLayout(g.mod, dl);
    LLVMDisposeTargetData(dl);

    g.b = LLVMCreateBuilderInContext(ctx);
    g.t_void = LLVMVoidTypeInContext(ctx);
    g.t_i1 = LLVMInt1TypeInContext(ctx);
    g.t_i32 = LLVMInt32TypeInContext(ctx);
    g.t_i64 = LLVMInt64TypeInContext(ctx);
    g.t_f32 = LLVMFloatTypeInContext(ctx);
    g.t_ptr = LLVMPointerTypeInContext(ctx, 0);
    g.t_math = LLVMFunctionType(g.t_f32, &g.t_f32, 1, 0);
    if (timed)
        timing_begin("llvm: build IR");
    gen_program(&g, p, with_main);
    LLVMDisposeBuilder(g.b);

    char *msg = NULL;
    if (LLVMVerifyModule(g.mod, LLVMReturnStatusAction, &msg)) {
        diag_plain(d, "internal error: the LLVM module for '%s' does not verify: %s", p->m->name,
                   msg ? msg : "");
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(g.mod);
        if (timed)
            timing_end();
        return NULL;
    }
    LLVMDisposeMessage(msg);
    if (timed)
        timing_end();

    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    /* As clang does at -O2 and above: the pass builder leaves the
     * vectorisers off unless asked. */
    LLVMPassBuilderOptionsSetLoopVectorization(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, opt_level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, opt_level >= 1);
    if (timed)
        timing_begin("llvm: optimise");
    LLVMErrorRef perr = LLVMRunPasses(g.mod, pipeline, t->tm, po);
    if (timed)
        timing_end();
    LLVMDisposePassBuilderOptions(po);
    if (perr) {
        char *pm = LLVMGetErrorMessage(perr);
        diag_plain(d, "internal error: LLVM pipeline '%s' failed: %s", pipeline, pm);
        LLVMDisposeErrorMessage(pm);
        LLVMDisposeModule(g.mod);
        return NULL;
    }
    return g.mod;
}

static bool emit(const Program *p, const LlvmOptions *o, const char *path, bool obj,
                 bool with_main, Diag *d)
{
    static const LlvmOptions host = {NULL, NULL, NULL, 2};
    if (!o)
        o = &host;
    LlvmTarget t;
    if (!target_make(o, &t, d))
        return false;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = build_module(ctx, p, &t, o->opt_level, with_main, (Split){0, 1, NULL}, d);
    bool ok = mod != NULL;
    if (ok) {
        char *err = NULL;
        timing_begin(obj ? "llvm: code generation" : "llvm: print IR");
        LLVMBool failed = obj ? LLVMTargetMachineEmitToFile(t.tm, mod, path, LLVMObjectFile, &err)
                              : LLVMPrintModuleToFile(mod, path, &err);
        timing_end();
        if (failed) {
            diag_plain(d, "cannot write '%s': %s", path, err ? err : "unknown error");
            ok = false;
        }
        LLVMDisposeMessage(err);
        LLVMDisposeModule(mod);
    }
    LLVMContextDispose(ctx);
    target_free(&t);
    return ok;
}

/* ---- split code generation ------------------------------------------- */

typedef struct {
    const Program *p;
    const LlvmTarget *t;     /* the validated target; each job makes its own machine */
    int opt_level;
    bool with_main;
    Split sp;
    char path[4096];
    Diag d;                  /* this part's errors, merged by the caller */
} PartJob;

static void run_part(PartJob *j)
{
    LlvmTarget t = {NULL, j->t->triple, j->t->cpu, j->t->features};
    LLVMTargetRef target = LLVMGetTargetMachineTarget(j->t->tm);
    static const LLVMCodeGenOptLevel cg[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess,
                                              LLVMCodeGenLevelDefault, LLVMCodeGenLevelAggressive};
    t.tm = LLVMCreateTargetMachine(target, t.triple, t.cpu, t.features, cg[j->opt_level],
                                   LLVMRelocPIC, LLVMCodeModelDefault);
    if (!t.tm) {
        diag_plain(&j->d, "LLVM cannot create a target machine for '%s'", t.triple);
        return;
    }
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = build_module(ctx, j->p, &t, j->opt_level, j->with_main && j->sp.part == 0,
                                     j->sp, &j->d);
    if (mod) {
        char *err = NULL;
        if (LLVMTargetMachineEmitToFile(t.tm, mod, j->path, LLVMObjectFile, &err))
            diag_plain(&j->d, "cannot write '%s': %s", j->path, err ? err : "unknown error");
        LLVMDisposeMessage(err);
        LLVMDisposeModule(mod);
    }
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(t.tm);
}

typedef struct {
    PartJob *job;
    int njob, first, stride;
} PartWorker;

static void *part_worker(void *arg)
{
    PartWorker *w = arg;
    for (int i = w->first; i < w->njob; i += w->stride)
        run_part(&w->job[i]);
    return NULL;
}

int emit_llvm_parts(const Program *p, const LlvmOptions *o, const char *prefix, int max_parts,
                    int threads, bool with_main, Diag *d)
{
    LlvmTarget t;
    if (!target_make(o, &t, d))
        return 0;
    if (max_parts < 1)
        max_parts = 1;
    if (max_parts > EMIT_LLVM_MAX_PARTS)
        max_parts = EMIT_LLVM_MAX_PARTS;
    if (max_parts > PROGRAM_MAX_PARTS)
        max_parts = PROGRAM_MAX_PARTS;
    int *owner = netc_alloc(sizeof(int) * ((size_t)p->nkernel + 1));
    int nparts = program_split(p, max_parts, owner);
    PartJob *job = netc_alloc(sizeof *job * (size_t)nparts);
    for (int i = 0; i < nparts; i++) {
        job[i] = (PartJob){p, &t, o->opt_level, with_main, {i, nparts, owner}, {0}, {0}};
        snprintf(job[i].path, sizeof job[i].path, "%s.%d.o", prefix, i);
        diag_init(&job[i].d, d->out);
    }
    if (threads > nparts)
        threads = nparts;
    if (threads < 1 || !LLVMIsMultithreaded())
        threads = 1;
    timing_begin("llvm: build, optimise, code generation (split)");
    PartWorker w[EMIT_LLVM_MAX_PARTS];
    pthread_t tid[EMIT_LLVM_MAX_PARTS];
    int started = 0;
    for (int i = 0; i < threads; i++) {
        w[i] = (PartWorker){job, nparts, i, threads};
        if (i > 0 && pthread_create(&tid[i], NULL, part_worker, &w[i]) == 0)
            started |= 1 << i;
    }
    /* this thread takes worker 0, and any worker whose thread did not start */
    for (int i = 0; i < threads; i++)
        if (i == 0 || !(started & (1 << i)))
            part_worker(&w[i]);
    for (int i = 1; i < threads; i++)
        if (started & (1 << i))
            pthread_join(tid[i], NULL);
    timing_end();
    int errors = 0;
    for (int i = 0; i < nparts; i++) {
        errors += job[i].d.nerror;
        diag_free(&job[i].d);
    }
    d->nerror += errors;
    free(job);
    free(owner);
    target_free(&t);
    return errors ? 0 : nparts;
}

bool emit_llvm_available(void)
{
    return true;
}

const char *emit_llvm_version(void)
{
    static char v[32];
    unsigned maj, min, pat;
    LLVMGetVersion(&maj, &min, &pat);
    snprintf(v, sizeof v, "LLVM %u.%u.%u", maj, min, pat);
    return v;
}

bool emit_llvm_ir(const Program *p, const LlvmOptions *o, const char *path_ll, Diag *d)
{
    return emit(p, o, path_ll, false, false, d);
}

bool emit_llvm_obj(const Program *p, const LlvmOptions *o, const char *path_o, bool with_main,
                   Diag *d)
{
    return emit(p, o, path_o, true, with_main, d);
}
