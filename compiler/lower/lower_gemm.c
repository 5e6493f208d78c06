/* lower_gemm.c - the GEMMs of loop IR, and dense layers lowered onto them.
 *
 * Two register-blocked micro-kernels, sized from the target (vector lanes
 * V, vector registers), that every matrix product of the lowerings uses:
 *
 * lgemm: C [M, N] (+)= A [M, K] B [K, N], B and C with contiguous rows.
 * A block of MR rows x NV vectors of C lives in MR*NV vector locals over a
 * run of k steps (the BLIS micro-kernel shape): each k step loads NV
 * vectors of B's row k, broadcasts MR scalars of A's column k and issues
 * MR*NV fused multiply-adds.  Column tiles of NR = NV*V are the outer
 * loop; K is cut into blocks of at most KC steps so that B's micro-panel
 * (KC x NR floats) stays in half of L1 while every row block passes over
 * it (gemm_kc, from the target's L1 size):
 *
 *   for jt in 0..N/NR:                     // independent
 *     for kb in 0..ceil(K/KC):             // in order
 *       for mb in 0..M/MR:                 // independent
 *         vec acc[MR][NV] = C (kb > 0 or acc) or 0
 *         for k in kb*KC .. min(K, kb*KC + KC):
 *           vec b[v] = B[k, j0 + v*V ..+V]
 *           acc[r][v] = fma(bcast(A[m0 + r, k]), b[v], acc[r][v])
 *         C[m0 + r, j0 + v*V ..+V] = acc[r][v]   // epilogue: last kb only
 *   (leftover vectors of columns, then leftover columns one scalar at a
 *    time; leftover rows with a smaller block)
 *
 * A k block reloads what the block before stored, so every C element is
 * still summed k = 0, 1, ..., K-1.  B is read fastest in the column-panel
 * layout (MatRef.panel: a k step reads NR consecutive floats), A in row
 * micro-panels (lgemm_pack: a k step broadcasts MR consecutive floats
 * instead of one from each of MR rows K floats apart):
 *
 *   A [M, K] row-major           packed: panel mb = [K][MR]
 *   a00 a01 a02 ...              a00 a10 .. a(MR-1)0  a01 a11 .. a(MR-1)1 ...
 *
 * lgemm_dot: C [M, N] += A [M, K] B [N, K]^T, rows of A and B contiguous
 * along k (dense layers' forward pass, the weight gradient of a
 * convolution).  A block of MR x NB outputs holds one vector of partial
 * sums each; lane l sums k = l, l + V, l + 2V, ... in order; the lanes are
 * then added in lane order (hsum) and the K % V tail after them.
 *
 * Every output's summation order is fixed by the IR, so both backends and
 * every thread count give the same bits.  On a target without FMA the
 * same loops use a multiply and an add; with one lane (no vector unit) the
 * vectors are plain floats of the same shape.
 *
 * Dense layers (ALGO_GEMM) work on the last axis: with x [M, I] (M = the
 * batch times the leading axes of a sample), w [U, I], y and dy [M, U]:
 *   dense     y  = b + x w^T      lgemm_dot over the batch: w is read as it is
 *   dense_dx  dx = dy w           lgemm over the batch
 *   dense_dw  dw = dy^T x         lgemm over units, k runs over the M rows
 */
#include "lower_impl.h"

enum { MR_MAX = 16, NV_MAX = 4 };

Expr *lmat_at(Lower *L, const MatRef *m, Expr *r, Expr *c)
{
    if (m->panel) {
        Expr *pan = lmul(L, ldiv(L, c, li(L, m->panel)), li(L, m->prows * m->panel));
        Expr *in = ex_bin(L->a, X_MOD, c, li(L, m->panel));
        return ladd(L, m->base, ladd(L, pan, lmad(L, r, m->panel, in)));
    }
    return ladd(L, m->base, ladd(L, lmul(L, r, li(L, m->rs)), lmul(L, c, li(L, m->cs))));
}


/* Vector lanes of the target: V >= 2 uses T_V32, otherwise floats. */
static int lanes(Lower *L)
{
    int v = L->t->vlen;
    if (v >= 2) {
        kernel_vectors(L->k, v);
        return v;
    }
    return 1;
}

/* Rows per block of lgemm for nv vectors: what fits the registers beside
 * the nv vectors of B and one broadcast. */
static int gemm_mr(Lower *L, int nv)
{
    int mr = (L->t->vregs - nv - 1) / nv;
    return mr < 1 ? 1 : mr > 14 ? 14 : mr;
}

/* Vectors per column tile of a product with N columns. */
static int gemm_nv(int N, int V)
{
    return N >= 2 * V ? 2 : 1;
}

/* The k block: B's micro-panel of kc rows x NR columns takes half of L1,
 * the other half holds the MR x kc micro-panel of A and C's tile. */
static int gemm_kc(Lower *L, int NR)
{
    long kc = L->t->l1d / 2 / ((long)NR * (long)sizeof(float));
    return kc < 32 ? 32 : kc > 512 ? 512 : (int)kc;
}

/* The k range [k0, k1) of one k block, and what its micro-kernels do
 * with C: load it (else start from 0) and apply epi at the stores (only
 * in the last block). */
typedef struct {
    Expr *k0, *k1;
    bool load;
    const Epi *epi;
} KBlock;

/* rows x nv vectors of C from (m0, j0), k in [kb->k0, kb->k1): the
 * micro-kernel.  A packed A (A->panel) holds this block's rows, m0 a
 * multiple of the panel height, as one micro-panel [K][panel]. */
static void gemm_block(Lower *L, Stmt *p, const MatRef *C, const MatRef *A, const MatRef *B, Expr *m0,
                       int rows, Expr *j0, int nv, int V, const KBlock *kb)
{
    int accv[MR_MAX][NV_MAX];
    NETC_ASSERT(rows >= 1 && rows <= MR_MAX && nv >= 1 && nv <= NV_MAX);
    Expr *cb = lbind(L, p, "cb", lmat_at(L, C, m0, j0));
    /* A's block at ab, its k step at ak = ab + k*kstep, row r at ak +
     * r*rstep: a constant offset from one index per k step, so each
     * broadcast addresses base + displacement, without a running sum of
     * row strides (packed: rows of the micro-panel consecutive, k steps
     * a panel apart; plain: rows rs apart, k steps cs) */
    int rstep = A->panel ? 1 : A->rs, kstep = A->panel ? A->panel : A->cs;
    Expr *ab = lbind(L, p, "ab", ladd(L, A->base, lmul(L, m0, li(L, A->panel ? A->prows : A->rs))));
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) {
            Expr *ci = ladd(L, cb, li(L, r * C->rs + v * V));
            accv[r][v] = ldecl(L, p, "acc", lvt(V), kb->load ? lvld(L, V, C->buf, ci) : lvsplat(L, V, lf(L, 0.0f)));
        }
    Stmt *q = p;
    Expr *k = lfor(L, &q, "k", kb->k0, kb->k1);
    Expr *bb = lbind(L, q, "bb", lmat_at(L, B, k, j0));
    Expr *ak = lbind(L, q, "ak", lmad(L, k, kstep, ab));
    int bv[NV_MAX];
    for (int v = 0; v < nv; v++)
        bv[v] = ldecl(L, q, "bv", lvt(V), lvld(L, V, B->buf, ladd(L, bb, li(L, v * V))));
    for (int r = 0; r < rows; r++) {
        Expr *ai = ladd(L, ak, li(L, r * rstep));
        Expr *a = lvsplat(L, V, lload(L, A->buf, ai));
        for (int v = 0; v < nv; v++)
            lassign(L, q, accv[r][v], lfma(L, a, lvar(L, bv[v]), lvar(L, accv[r][v])));
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) {
            Expr *c = lvar(L, accv[r][v]), *ci = ladd(L, cb, li(L, r * C->rs + v * V));
            lstore(L, p, C->buf, ci, kb->epi ? lepi(L, p, kb->epi, c, ci) : c, false);
        }
}

/* Columns [j0, j0 + nv*V) of every row of C over one k block: blocks of
 * MR rows, then the rows left over (M % MR when M is a constant, else one
 * at a time).  A packed A fixes MR: its panel height. */
static void gemm_cols(Lower *L, Stmt *p, const MatRef *C, const MatRef *A, const MatRef *B, Expr *M,
                      Expr *j0, int nv, int V, const KBlock *kb)
{
    int MR = A->panel ? A->panel : gemm_mr(L, nv), mc;
    if (lconst(M, &mc)) {
        NETC_ASSERT(mc >= 1 && (!A->panel || MR <= mc));
        MR = MR > mc ? mc : MR;
        if (mc / MR > 0) {
            Stmt *q = p;
            Expr *mb = lfor_indep(L, &q, "mb", li(L, 0), li(L, mc / MR));
            gemm_block(L, q, C, A, B, lmul(L, mb, li(L, MR)), MR, j0, nv, V, kb);
        }
        if (mc % MR)
            gemm_block(L, p, C, A, B, li(L, mc / MR * MR), mc % MR, j0, nv, V, kb);
        return;
    }
    NETC_ASSERT(!A->panel);
    Stmt *q = p;
    Expr *mb = lfor_indep(L, &q, "mb", li(L, 0), ldiv(L, M, li(L, MR)));
    gemm_block(L, q, C, A, B, lmul(L, mb, li(L, MR)), MR, j0, nv, V, kb);
    q = p;
    Expr *m = lfor_indep(L, &q, "m", lmul(L, ldiv(L, M, li(L, MR)), li(L, MR)), M);
    gemm_block(L, q, C, A, B, m, 1, j0, nv, V, kb);
}

/* The columns [j0, j0 + nv*V) over k in blocks of at most kc (gemm_kc),
 * in k order: the first block starts from C (acc) or 0, later ones from
 * the C the block before stored, and only the last applies epi.  Storing
 * and reloading a float changes no bit, so every element of C is still
 * summed k = 0, 1, ..., K-1 as without blocks.  A K that depends on the
 * batch is one block. */
static void gemm_kblocks(Lower *L, Stmt *p, const MatRef *C, const MatRef *A, const MatRef *B, Expr *M,
                         Expr *j0, int nv, int V, Expr *K, bool acc, const Epi *epi)
{
    int kn, kmax = gemm_kc(L, nv * V);
    if (!lconst(K, &kn) || kn <= kmax) {
        KBlock kb = {li(L, 0), K, acc, epi};
        gemm_cols(L, p, C, A, B, M, j0, nv, V, &kb);
        return;
    }
    /* nk blocks of equal size kc (the last one shorter by the remainder) */
    int nk = (kn + kmax - 1) / kmax, kc = (kn + nk - 1) / nk;
    int full = kn / kc, last = (kn + kc - 1) / kc - 1;
    int lo = acc ? 0 : 1, hi = epi ? last : last + 1; /* blocks [lo, hi) are plain */
    if (!acc) {
        KBlock kb = {li(L, 0), li(L, kc), false, NULL};
        gemm_cols(L, p, C, A, B, M, j0, nv, V, &kb);
    }
    int hf = hi < full ? hi : full; /* the plain full blocks [lo, hf): a loop */
    if (hf > lo) {
        Stmt *q = p;
        Expr *b = lfor(L, &q, "kb", li(L, lo), li(L, hf));
        Expr *k0 = lbind(L, q, "k0", lmul(L, b, li(L, kc)));
        KBlock kb = {k0, ladd(L, k0, li(L, kc)), true, NULL};
        gemm_cols(L, q, C, A, B, M, j0, nv, V, &kb);
    }
    for (int b = hf > lo ? hf : lo; b < hi; b++) { /* a plain short last block */
        KBlock kb = {li(L, b * kc), li(L, kn), true, NULL};
        gemm_cols(L, p, C, A, B, M, j0, nv, V, &kb);
    }
    if (epi) {
        KBlock kb = {li(L, last * kc), li(L, kn), true, epi};
        gemm_cols(L, p, C, A, B, M, j0, nv, V, &kb);
    }
}

int lgemm_panel(Lower *L, int N)
{
    int V = L->t->vlen;
    return V >= 2 ? gemm_nv(N, V) * V : 0;
}

int lgemm_pack_mr(Lower *L, int M, int N)
{
    int V = L->t->vlen >= 2 ? L->t->vlen : 1;
    int mr = gemm_mr(L, gemm_nv(N, V));
    return mr > M ? M : mr;
}

void lgemm_pack(Lower *L, Stmt *p, MatRef dst, MatRef A, int M, int K)
{
    int MR = dst.panel;
    NETC_ASSERT(M >= 1 && K >= 1 && MR >= 1 && MR <= M && dst.prows == K && !A.panel);
    for (int part = 0; part < 2; part++) {
        /* part 0: the M / MR full micro-panels; part 1: the M % MR rows left */
        int w = part == 0 ? MR : M % MR;
        if (w == 0 || (part == 0 && M / MR == 0))
            continue;
        Stmt *q = p;
        Expr *m0 = part == 0 ? lmul(L, lfor_indep(L, &q, "mb", li(L, 0), li(L, M / MR)), li(L, MR))
                             : li(L, M / MR * MR);
        Expr *db = lbind(L, q, "pb", ladd(L, dst.base, lmul(L, m0, li(L, K))));
        Expr *k = lfor(L, &q, "k", li(L, 0), li(L, K));
        Expr *r = lfor(L, &q, "r", li(L, 0), li(L, w));
        lstore(L, q, dst.buf, ladd(L, db, lmad(L, k, MR, r)), lload(L, A.buf, lmat_at(L, &A, ladd(L, m0, r), k)),
               false);
    }
}

void lgemm(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, Expr *K, bool acc)
{
    lgemm_epi(L, p, C, A, B, M, N, K, acc, NULL);
}

void lgemm_epi(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, Expr *K, bool acc,
               const Epi *epi)
{
    NETC_ASSERT(C.cs == 1 && B.cs == 1 && N >= 1 && !C.panel);
    NETC_ASSERT(!epi || (C.buf == 0 && (L->t->vlen < 2 || lepi_vector(epi))));
    int V = lanes(L);
    int nv = gemm_nv(N, V), NR = nv * V;
    NETC_ASSERT(!B.panel || B.panel == NR);
    if (N / NR > 0) {
        Stmt *q = p;
        Expr *jt = lfor_indep(L, &q, "jt", li(L, 0), li(L, N / NR));
        gemm_kblocks(L, q, &C, &A, &B, M, lmul(L, jt, li(L, NR)), nv, V, K, acc, epi);
    }
    int j = N / NR * NR;
    if ((N - j) / V > 0) { /* one more vector's width */
        gemm_kblocks(L, p, &C, &A, &B, M, li(L, j), (N - j) / V, V, K, acc, epi);
        j += (N - j) / V * V;
    }
    if (j < N) { /* the last N % V columns, as floats, one at a time */
        Stmt *q = p;
        Expr *jj = lfor_indep(L, &q, "j", li(L, j), li(L, N));
        gemm_kblocks(L, q, &C, &A, &B, M, jj, 1, 1, K, acc, epi);
    }
}

/* ---- the dot form ---- */

/* rows x cols outputs C[m0 + r, n0 + c] += sum_k A[m0 + r, k] B[n0 + c, k]. */
static void dot_block(Lower *L, Stmt *p, const MatRef *C, const MatRef *A, const MatRef *B, Expr *m0,
                      int rows, Expr *n0, int cols, int V, int K, const Epi *epi)
{
    enum { DB = 4 };
    int accv[DB][DB];
    NETC_ASSERT(rows >= 1 && rows <= DB && cols >= 1 && cols <= DB);
    Expr *ab = lbind(L, p, "ab", lmat_at(L, A, m0, li(L, 0)));
    Expr *bb = lbind(L, p, "bb", lmat_at(L, B, n0, li(L, 0)));
    if (K / V > 0) {
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                accv[r][c] = ldecl(L, p, "acc", lvt(V), lvsplat(L, V, lf(L, 0.0f)));
        Stmt *q = p;
        Expr *kv = lfor(L, &q, "kv", li(L, 0), li(L, K / V));
        Expr *k = lbind(L, q, "k", lmul(L, kv, li(L, V)));
        int av[DB], bv[DB];
        for (int r = 0; r < rows; r++)
            av[r] = ldecl(L, q, "av", lvt(V), lvld(L, V, A->buf, ladd(L, ladd(L, ab, li(L, r * A->rs)), k)));
        for (int c = 0; c < cols; c++)
            bv[c] = ldecl(L, q, "bv", lvt(V), lvld(L, V, B->buf, ladd(L, ladd(L, bb, li(L, c * B->rs)), k)));
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                lassign(L, q, accv[r][c], lfma(L, lvar(L, av[r]), lvar(L, bv[c]), lvar(L, accv[r][c])));
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            Expr *init = K / V > 0 ? (V >= 2 ? ex_hsum(L->a, L->k, accv[r][c]) : lvar(L, accv[r][c]))
                                   : lf(L, 0.0f);
            int s = ldecl(L, p, "s", T_F32, init);
            if (K % V) {
                Stmt *q = p;
                Expr *k = lfor(L, &q, "k", li(L, K / V * V), li(L, K));
                Expr *x = lload(L, A->buf, ladd(L, ladd(L, ab, li(L, r * A->rs)), k));
                Expr *y = lload(L, B->buf, ladd(L, ladd(L, bb, li(L, c * B->rs)), k));
                lassign(L, q, s, lfma(L, x, y, lvar(L, s)));
            }
            Expr *ci = lmat_at(L, C, ladd(L, m0, li(L, r)), ladd(L, n0, li(L, c)));
            if (epi)
                lstore(L, p, C->buf, ci, lepi(L, p, epi, fadd(L, lload(L, C->buf, ci), lvar(L, s)), ci), false);
            else
                lstore(L, p, C->buf, ci, lvar(L, s), true);
        }
}

/* Column blocks outside, row blocks inside: a block of B's rows (cols x K
 * floats) stays in cache while every row of A passes over it. */
void lgemm_dot(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, int K)
{
    lgemm_dot_epi(L, p, C, A, B, M, N, K, NULL);
}

void lgemm_dot_epi(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, int K,
                   const Epi *epi)
{
    NETC_ASSERT(A.cs == 1 && B.cs == 1 && N >= 1 && K >= 1 && (!epi || C.buf == 0));
    int V = lanes(L);
    int DB = L->t->vregs >= 32 ? 4 : 3;
    int mc = 0;
    bool mconst = lconst(M, &mc);
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: the N / DB full column blocks; pass 1: the N % DB left over */
        int cols = pass == 0 ? DB : N % DB;
        if (cols == 0 || (pass == 0 && N / DB == 0))
            continue;
        Stmt *q = p;
        Expr *n0 = pass == 0 ? lmul(L, lfor_indep(L, &q, "nb", li(L, 0), li(L, N / DB)), li(L, DB))
                             : li(L, N / DB * DB);
        if (mconst) {
            int rb = DB > mc ? mc : DB;
            if (mc / rb > 0) {
                Stmt *r = q;
                Expr *mb = lfor_indep(L, &r, "mb", li(L, 0), li(L, mc / rb));
                dot_block(L, r, &C, &A, &B, lmul(L, mb, li(L, rb)), rb, n0, cols, V, K, epi);
            }
            if (mc % rb)
                dot_block(L, q, &C, &A, &B, li(L, mc / rb * rb), mc % rb, n0, cols, V, K, epi);
        } else {
            Stmt *r = q;
            Expr *mb = lfor_indep(L, &r, "mb", li(L, 0), ldiv(L, M, li(L, DB)));
            dot_block(L, r, &C, &A, &B, lmul(L, mb, li(L, DB)), DB, n0, cols, V, K, epi);
            r = q;
            Expr *m = lfor_indep(L, &r, "m", lmul(L, ldiv(L, M, li(L, DB)), li(L, DB)), M);
            dot_block(L, r, &C, &A, &B, m, 1, n0, cols, V, K, epi);
        }
    }
}

/* ---- dense ---- */

/* A dense layer works on the last axis: x [N, R..., I] is the matrix
 * [N*R, I] and y [N, R..., U] the matrix [N*R, U] (R is 1 for a rank-1 x).
 * Returns the row count N*R. */
static Expr *dense_sizes(Lower *L, int xid, int yid, int *I, int *U)
{
    const Shape *x = &graph_node(L->g, xid)->shape, *y = &graph_node(L->g, yid)->shape;
    *I = x->d[x->rank - 1];
    *U = y->d[y->rank - 1];
    int R = lnumel(L, xid) / *I;
    return R == 1 ? lbatch(L) : lmul(L, lbatch(L), li(L, R));
}

/* y [M, U] = b [U] + x [M, I] w[U, I]^T: the dot form reads w as it is. */
void lower_dense(Lower *L)
{
    enum { Y, X, W, B };
    int I, U;
    Expr *M = dense_sizes(L, lin(L, 0)->id, L->n->id, &I, &U);
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == U * I);
    Stmt *p = L->k->body;

    /* y [M, U] = b, or 0 */
    Stmt *q = p;
    Expr *nb = lfor(L, &q, "nb", li(L, 0), M);
    Expr *u = lfor(L, &q, "u", li(L, 0), li(L, U));
    lstore(L, q, Y, lmad(L, nb, U, u), node_own_nin(L->n) == 3 ? lload(L, B, u) : lf(L, 0.0f), false);

    /* a fused epilogue is applied as each output is stored (scalars) */
    lgemm_dot_epi(L, p, (MatRef){Y, li(L, 0), U, 1, 0, 0}, (MatRef){X, li(L, 0), I, 1, 0, 0},
                  (MatRef){W, li(L, 0), I, 1, 0, 0}, M, U, I, L->epi);
    L->epi_done = true;
}

/* dx [M, I] = dy [M, U] w [U, I]; each dx is stored once, so a fused
 * epilogue with a vector form is applied in registers */
void lower_dense_dx(Lower *L)
{
    enum { DX, DY, W };
    int I, U;
    Expr *M = dense_sizes(L, L->n->id, lin(L, 0)->id, &I, &U);
    NETC_ASSERT(lnumel(L, lin(L, 1)->id) == U * I);
    const Epi *epi = lepi_vector(L->epi) ? L->epi : NULL;
    lgemm_epi(L, L->k->body, (MatRef){DX, li(L, 0), I, 1, 0, 0}, (MatRef){DY, li(L, 0), U, 1, 0, 0},
              (MatRef){W, li(L, 0), I, 1, 0, 0}, M, I, li(L, U), false, epi);
    L->epi_done = epi != NULL;
}

/* dw [U, I] = dy^T [U, M] x [M, I]: the reduction over the rows is GEMM's k */
void lower_dense_dw(Lower *L)
{
    enum { DW, X, DY };
    int I, U;
    Expr *M = dense_sizes(L, lin(L, 0)->id, lin(L, 1)->id, &I, &U);
    NETC_ASSERT(lnumel(L, L->n->id) == U * I);
    Stmt *p = L->k->body;
    lzero(L, p, DW, li(L, 0), li(L, U * I));
    /* k runs over the batch, which may be empty: zero, then accumulate */
    lgemm(L, p, (MatRef){DW, li(L, 0), I, 1, 0, 0}, (MatRef){DY, li(L, 0), 1, U, 0, 0}, (MatRef){X, li(L, 0), I, 1, 0, 0},
          li(L, U), I, M, true);
}
