/* lower_gemm.c - the GEMM of loop IR, and dense layers lowered onto it.
 *
 * lgemm computes C [M, N] += A [M, K] B [K, N] as loops whose innermost
 * loop runs over j: contiguous, independent elements of a row of C and of
 * B.  The loop IR licenses no float reassociation, so a reduction loop over
 * k would stay scalar; a loop over j needs none, and C compilers and LLVM
 * both vectorise it.  Register blocking: GEMM_MR rows of C share each load
 * of B, with the A values of those rows held in locals, and the columns
 * are cut into tiles of exactly GEMM_JT, so the j loop has a constant trip
 * count of one vector and the compilers can keep the GEMM_MR x GEMM_JT
 * block of C in registers across the whole k loop:
 *
 *   for jt in 0..N/16:                     // columns j0 = 16jt .. j0+15
 *     for mb in 0..M/4:                    // rows m = 4mb .. 4mb+3
 *       for k in 0..K:
 *         float a0 = A[m, k], ..., a3 = A[m+3, k]
 *         for j in 0..16:
 *           float bv = B[k, j0 + j]
 *           C[m, j0 + j] += a0*bv; ...; C[m+3, j0 + j] += a3*bv
 *     (the N % 16 columns left over: the same, j over them)
 *   (the M % 4 rows left over: the same with fewer locals)
 *
 * Each C element is summed in k order 0..K-1 in both backends.
 *
 * Dense layers (ALGO_GEMM), with x [N, I], w [U, I], y and dy [N, U]:
 *   dense     y  = b + x w^T      GEMM over the batch with w^T [I, U] in scratch
 *   dense_dx  dx = dy w           GEMM over the batch
 *   dense_dw  dw = dy^T x         GEMM over units, k runs over the batch
 */
#include "lower_impl.h"

/* Measured on LeNet's GEMMs (Zen 4, AVX-512; images/s of training, C
 * backend / LLVM backend): one tile as wide as N 6,900 / 12,000; tiles of
 * 16 columns 10,700 / 12,900; of 32 10,500 / 11,800; of 64 10,600 /
 * 12,600; 8 rows with 16 columns 10,000 / 13,200. */
#define GEMM_MR 4  /* rows of C updated per pass over a row of B      */
#define DOT_LANES 16 /* lgemm_dot: partial sums per output              */
/* GEMM_JT (lower_impl.h), 16 columns per tile: one AVX-512 vector, two AVX2 */

static Expr *mat_at(Lower *L, const MatRef *m, Expr *r, Expr *c)
{
    return ladd(L, m->base, ladd(L, lmul(L, r, li(L, m->rs)), lmul(L, c, li(L, m->cs))));
}

/* One k step for `rows` rows of C (row base cb, already offset by the
 * tile's first column j0) from row m0, `width` columns:
 * C[m0 + r, j0 + j] (+)= A[m0 + r, k] * B[k, j0 + j].  The j loop has
 * constant bounds, so the compilers see exactly one vector of work. */
static void gemm_step(Lower *L, Stmt *q, const MatRef *C, const MatRef *A, const MatRef *B, Expr *m0,
                      int rows, Expr *cb, Expr *j0, int width, Expr *k, bool acc)
{
    Expr *av[GEMM_MR];
    NETC_ASSERT(rows >= 1 && rows <= GEMM_MR);
    for (int r = 0; r < rows; r++)
        av[r] = lvar(L, ldecl(L, q, "a", T_F32, lload(L, A->buf, mat_at(L, A, ladd(L, m0, li(L, r)), k))));
    Expr *bb = lbind(L, q, "bb", mat_at(L, B, k, j0));
    Expr *j = lfor(L, &q, "j", li(L, 0), li(L, width));
    Expr *bv = lvar(L, ldecl(L, q, "bv", T_F32, lload(L, B->buf, ladd(L, bb, j))));
    for (int r = 0; r < rows; r++)
        lstore(L, q, C->buf, ladd(L, ladd(L, cb, li(L, r * C->rs)), j), fmul(L, av[r], bv), acc);
}

/* `rows` rows of C from row m0, columns [j0, j0 + width).  Without acc the
 * k = 0 step stores (C = A B, no zeroing pass) and the loop runs from 1. */
static void gemm_rows(Lower *L, Stmt *p, const MatRef *C, const MatRef *A, const MatRef *B, Expr *m0,
                      int rows, Expr *j0, int width, Expr *K, bool acc)
{
    Expr *cb = lbind(L, p, "cb", mat_at(L, C, m0, j0));
    if (!acc)
        gemm_step(L, p, C, A, B, m0, rows, cb, j0, width, li(L, 0), false);
    Stmt *q = p;
    Expr *k = lfor(L, &q, "k", li(L, acc ? 0 : 1), K);
    gemm_step(L, q, C, A, B, m0, rows, cb, j0, width, k, true);
}

/* Columns [j0, j0 + width) of every row of C: blocks of GEMM_MR rows, then the
 * rows left over (M % GEMM_MR when M is a constant, else one at a time). */
static void gemm_cols(Lower *L, Stmt *p, const MatRef *C, const MatRef *A, const MatRef *B, Expr *M,
                      Expr *j0, int width, Expr *K, bool acc)
{
    enum { MR = GEMM_MR };
    int mc;
    if (lconst(M, &mc)) {
        NETC_ASSERT(mc >= 1);
        if (mc / MR > 0) {
            Stmt *q = p;
            Expr *mb = lfor(L, &q, "mb", li(L, 0), li(L, mc / MR));
            gemm_rows(L, q, C, A, B, lmul(L, mb, li(L, MR)), MR, j0, width, K, acc);
        }
        if (mc % MR)
            gemm_rows(L, p, C, A, B, li(L, mc / MR * MR), mc % MR, j0, width, K, acc);
        return;
    }
    Stmt *q = p;
    Expr *mb = lfor(L, &q, "mb", li(L, 0), ldiv(L, M, li(L, MR)));
    gemm_rows(L, q, C, A, B, lmul(L, mb, li(L, MR)), MR, j0, width, K, acc);
    q = p;
    Expr *m = lfor(L, &q, "m", lmul(L, ldiv(L, M, li(L, MR)), li(L, MR)), M);
    gemm_rows(L, q, C, A, B, m, 1, j0, width, K, acc);
}

/* Column tiles of exactly GEMM_JT (a constant trip count the compilers
 * turn into whole vectors, kept in registers across k), then the N %
 * GEMM_JT columns left over.  Tiles are the outer loop so that one tile of
 * B (K rows of GEMM_JT floats) stays in cache while every row block of C
 * passes over it. */
void lgemm(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, Expr *K, bool acc)
{
    int kc;
    NETC_ASSERT(C.cs == 1 && B.cs == 1 && N >= 1);
    NETC_ASSERT(acc || (lconst(K, &kc) && kc >= 1));
    enum { JT = GEMM_JT };
    if (N / JT > 0) {
        Stmt *q = p;
        Expr *jt = lfor(L, &q, "jt", li(L, 0), li(L, N / JT));
        gemm_cols(L, q, &C, &A, &B, M, lmul(L, jt, li(L, JT)), JT, K, acc);
    }
    if (N % JT)
        gemm_cols(L, p, &C, &A, &B, M, li(L, N / JT * JT), N % JT, K, acc);
}

/* ---- the dot form: C += A B^T with the reduction split into lanes ---- */

/* A chunk of `width` <= DOT_LANES consecutive k from k0: lane s of row r
 * accumulates A[m0 + r, k0 + s] * B[n, k0 + s] into part[r, s]. */
static void dot_chunk(Lower *L, Stmt *p, const MatRef *ab, int part, Expr *m0, int rows, Expr *brow,
                      Expr *k0, int width)
{
    Expr *s = lfor(L, &p, "s", li(L, 0), li(L, width));
    Expr *k = ladd(L, k0, s);
    Expr *bv = lvar(L, ldecl(L, p, "bv", T_F32, lload(L, ab[1].buf, ladd(L, brow, k))));
    for (int r = 0; r < rows; r++) {
        Expr *ai = mat_at(L, &ab[0], ladd(L, m0, li(L, r)), k);
        lstore(L, p, part, ladd(L, li(L, r * DOT_LANES), s), fmul(L, lload(L, ab[0].buf, ai), bv), true);
    }
}

/* Rows [m0, m0 + rows) of C, every column n; ab holds A and B. */
static void dot_rows(Lower *L, Stmt *p, const MatRef *C, const MatRef *ab, int part, Expr *m0, int rows,
                     int N, int K)
{
    Expr *n = lfor(L, &p, "n", li(L, 0), li(L, N));
    lzero(L, p, part, li(L, 0), li(L, rows * DOT_LANES));
    Expr *brow = lbind(L, p, "brow", mat_at(L, &ab[1], n, li(L, 0)));
    if (K / DOT_LANES > 0) {
        Stmt *q = p;
        Expr *kq = lfor(L, &q, "kq", li(L, 0), li(L, K / DOT_LANES));
        Expr *k0 = lbind(L, q, "k0", lmul(L, kq, li(L, DOT_LANES)));
        dot_chunk(L, q, ab, part, m0, rows, brow, k0, DOT_LANES);
    }
    if (K % DOT_LANES)
        dot_chunk(L, p, ab, part, m0, rows, brow, li(L, K / DOT_LANES * DOT_LANES), K % DOT_LANES);
    /* C[m0 + r, n] += part[r, 0] + part[r, 1] + ... + part[r, 15], in lane order */
    for (int r = 0; r < rows; r++) {
        int acc = ldecl(L, p, "acc", T_F32, lload(L, part, li(L, r * DOT_LANES)));
        Stmt *q = p;
        Expr *s = lfor(L, &q, "s", li(L, 1), li(L, DOT_LANES));
        lassign(L, q, acc, fadd(L, lvar(L, acc), lload(L, part, ladd(L, li(L, r * DOT_LANES), s))));
        lstore(L, p, C->buf, mat_at(L, C, ladd(L, m0, li(L, r)), n), lvar(L, acc), true);
    }
}

void lgemm_dot(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, int M, int N, int K)
{
    NETC_ASSERT(A.cs == 1 && B.cs == 1 && M >= 1 && N >= 1 && K >= 1);
    int part = kernel_scratch(L->a, L->k, "part", GEMM_MR * DOT_LANES, 0);
    MatRef ab[2] = {A, B};
    if (M / GEMM_MR > 0) {
        Stmt *q = p;
        Expr *mb = lfor(L, &q, "mb", li(L, 0), li(L, M / GEMM_MR));
        dot_rows(L, q, &C, ab, part, lmul(L, mb, li(L, GEMM_MR)), GEMM_MR, N, K);
    }
    if (M % GEMM_MR)
        dot_rows(L, p, &C, ab, part, li(L, M / GEMM_MR * GEMM_MR), M % GEMM_MR, N, K);
}

/* ---- dense ---- */

static void dense_sizes(Lower *L, int xid, int yid, int *I, int *U)
{
    *I = lnumel(L, xid);
    *U = lnumel(L, yid);
}

/* y [N, U] = b [U] + x [N, I] w[U, I]^T: w^T [I, U] is copied to scratch
 * once per call so the GEMM's inner loop runs over units. */
void lower_dense(Lower *L)
{
    enum { Y, X, W, B };
    int I, U;
    dense_sizes(L, lin(L, 0)->id, L->n->id, &I, &U);
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == U * I);
    int wt = kernel_scratch(L->a, L->k, "wt", (long)I * U, 0);
    Stmt *p = L->k->body;

    /* wt [I, U] = w^T */
    Stmt *q = p;
    Expr *i = lfor(L, &q, "i", li(L, 0), li(L, I));
    Expr *u = lfor(L, &q, "u", li(L, 0), li(L, U));
    lstore(L, q, wt, lmad(L, i, U, u), lload(L, W, lmad(L, u, I, i)), false);

    /* y [N, U] = b, or 0 */
    q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), lbatch(L));
    u = lfor(L, &q, "u", li(L, 0), li(L, U));
    lstore(L, q, Y, lmad(L, nb, U, u), L->n->nin == 3 ? lload(L, B, u) : lf(L, 0.0f), false);

    lgemm(L, p, (MatRef){Y, li(L, 0), U, 1}, (MatRef){X, li(L, 0), I, 1}, (MatRef){wt, li(L, 0), U, 1},
          lbatch(L), U, li(L, I), true);
}

/* dx [N, I] = dy [N, U] w [U, I] */
void lower_dense_dx(Lower *L)
{
    enum { DX, DY, W };
    int I, U;
    dense_sizes(L, L->n->id, lin(L, 0)->id, &I, &U);
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == U * I);
    lgemm(L, L->k->body, (MatRef){DX, li(L, 0), I, 1}, (MatRef){DY, li(L, 0), U, 1},
          (MatRef){W, li(L, 0), I, 1}, lbatch(L), I, li(L, U), false);
}

/* dw [U, I] = dy^T [U, N] x [N, I]: the reduction over the batch is GEMM's k */
void lower_dense_dw(Lower *L)
{
    enum { DW, X, DY };
    int I, U;
    dense_sizes(L, lin(L, 0)->id, lin(L, 1)->id, &I, &U);
    NETC_ASSERT(lnumel(L, L->n->id) == U * I);
    Stmt *p = L->k->body;
    lzero(L, p, DW, li(L, 0), li(L, U * I));
    /* k runs over the batch, which may be empty: zero, then accumulate */
    lgemm(L, p, (MatRef){DW, li(L, 0), I, 1}, (MatRef){DY, li(L, 0), 1, U}, (MatRef){X, li(L, 0), I, 1},
          li(L, U), I, lbatch(L), true);
}
