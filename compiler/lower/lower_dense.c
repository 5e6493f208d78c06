/* lower_dense.c - the lowerings of the dense family that are not GEMMs.
 *
 * Needs: a shape-checked dense_db node (the bias gradient of a dense layer
 * on an input of rank > 1; rank 1 uses bias_grad).  Provides its lowering
 * (lower_impl.h).  The GEMMs themselves (dense, dense_dx, dense_dw) are in
 * lower_gemm.c.
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
