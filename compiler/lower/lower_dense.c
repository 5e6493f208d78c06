/* lower_dense.c - matmul and its gradients on the GEMM micro-kernels of
 * lower_gemm.c, and the bias gradient of a dense layer on the last axis.
 *
 * Needs: shape-checked matmul, matmul_da, matmul_db and dense_db nodes
 * (dense_db: a dense layer's input has rank > 1; rank 1 uses bias_grad).
 * Provides their lowerings (lower_impl.h).  Dense's own GEMMs are in
 * lower_gemm.c.
 *
 * matmul, a [T, M, K] x b [T, K, N] -> y [T, M, N] where T is the batch
 * times the leading axes of a sample; one independent loop over t, each
 * step one GEMM on matrices at offsets t*M*K, t*K*N, t*M*N:
 *   matmul     y  = a b       lgemm
 *   matmul_da  da = dy b^T    lgemm_dot (b's rows run along N, dy's too)
 *   matmul_db  db = a^T dy    lgemm, a read transposed (rs 1, cs K)
 *
 * dense_db: db [U] = sum of dy [N, R..., U] over every axis but the last,
 * one serial sum per unit over the N*R rows in order:
 *
 *   for u in [0, U) indep:
 *     acc = 0
 *     for r in [0, n*R): acc = acc + dy[r*U + u]
 *     db[u] = acc
 */
#include "lower_impl.h"

void lower_dense_db(Lower *L)
{
    enum { DB, DY };
    const Node *dy = lin(L, 0);
    NETC_ASSERT(dy->shape.batched && dy->shape.rank >= 1);
    int U = dy->shape.d[dy->shape.rank - 1];
    int R = lnumel(L, dy->id) / U;
    NETC_ASSERT(lnumel(L, L->n->id) == U);

    Stmt *p = L->k->body;
    Expr *u = lfor_indep(L, &p, "u", li(L, 0), li(L, U));
    int acc = ldecl(L, p, "acc", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *r = lfor(L, &q, "r", li(L, 0), lmul(L, lbatch(L), li(L, R)));
    lassign(L, q, acc, fadd(L, lvar(L, acc), lload(L, DY, lmad(L, r, U, u))));
    lstore(L, p, DB, u, lvar(L, acc), false);
}

/* The sizes of matmul a [.., M, K] x b [.., K, N]; returns T, the batch
 * times the leading axes, as the bound of the loop over matrices. */
static Expr *matmul_sizes(Lower *L, const Node *a, const Node *b, int *M, int *K, int *N)
{
    int r = a->shape.rank;
    NETC_ASSERT(r >= 2 && b->shape.rank == r && a->shape.d[r - 1] == b->shape.d[r - 2]);
    *M = a->shape.d[r - 2];
    *K = a->shape.d[r - 1];
    *N = b->shape.d[r - 1];
    int lead = lnumel(L, a->id) / (*M * *K);
    return lead == 1 ? lbatch(L) : lmul(L, lbatch(L), li(L, lead));
}

/* A row-major matrix of buf with rows of n floats, the t-th of its size. */
static MatRef mat(Lower *L, int buf, Expr *t, int size, int n)
{
    return (MatRef){buf, lmul(L, t, li(L, size)), n, 1, 0, 0};
}

/* y [M, N] = a [M, K] b [K, N] */
void lower_matmul(Lower *L)
{
    enum { Y, A, B };
    int M, K, N;
    Expr *T = matmul_sizes(L, lin(L, 0), lin(L, 1), &M, &K, &N);
    Stmt *p = L->k->body;
    Expr *t = lfor_indep(L, &p, "t", li(L, 0), T);
    lgemm(L, p, mat(L, Y, t, M * N, N), mat(L, A, t, M * K, K), mat(L, B, t, K * N, N), li(L, M), N,
          li(L, K), false);
}

/* da [M, K] = dy [M, N] b [K, N]^T: lgemm_dot adds to da, so zero it first */
void lower_matmul_da(Lower *L)
{
    enum { DA, DY, B };
    int M, K, N;
    Expr *T = matmul_sizes(L, L->n, lin(L, 1), &M, &K, &N);
    Stmt *p = L->k->body;
    lzero(L, p, DA, li(L, 0), lmul(L, T, li(L, M * K)));
    Expr *t = lfor_indep(L, &p, "t", li(L, 0), T);
    lgemm_dot(L, p, mat(L, DA, t, M * K, K), mat(L, DY, t, M * N, N), mat(L, B, t, K * N, N), li(L, M),
              K, N);
}

/* db [K, N] = a [M, K]^T dy [M, N]: k of the GEMM runs over M */
void lower_matmul_db(Lower *L)
{
    enum { DB, A, DY };
    int M, K, N;
    Expr *T = matmul_sizes(L, lin(L, 0), L->n, &M, &K, &N);
    Stmt *p = L->k->body;
    Expr *t = lfor_indep(L, &p, "t", li(L, 0), T);
    MatRef at = {A, lmul(L, t, li(L, M * K)), 1, K, 0, 0};
    lgemm(L, p, mat(L, DB, t, K * N, N), at, mat(L, DY, t, M * N, N), li(L, K), N, li(L, M), false);
}
