/* lower_misc.c - elementwise ops and softmax, with their gradients (dense
 * layers are in lower_gemm.c, losses in lower_loss.c, concat and slice in
 * lower_move.c).
 *
 * Elementwise kernels are one flat loop over every element of the batch
 * (n * numel), which the C compiler vectorises.
 */
#include "lower_impl.h"

/* Elements of value `id` across the batch: n*numel or numel. */
static Expr *total_of(Lower *L, int id)
{
    Expr *e = li(L, lnumel(L, id));
    return graph_node(L->g, id)->shape.batched ? lmul(L, lbatch(L), e) : e;
}

/* A flat loop over all elements of the output; returns its body and index. */
static Stmt *flat_loop(Lower *L, Expr **i)
{
    Stmt *p = L->k->body;
    *i = lfor(L, &p, "i", li(L, 0), total_of(L, L->n->id));
    return p;
}

static void check_same(const Lower *L, int id)
{
    const Shape *a = &graph_node(L->g, id)->shape, *b = &L->n->shape;
    NETC_ASSERT(a->batched == b->batched && shape_numel(a) == shape_numel(b));
}

/* ---- elementwise ---- */

/* flatten, reshape: the same elements in the same order */
void lower_copy(Lower *L)
{
    enum { Y, X };
    check_same(L, lin(L, 0)->id);
    Expr *i;
    Stmt *p = flat_loop(L, &i);
    lstore(L, p, Y, i, lload(L, X, i), false);
}

/* y = relu(x) | tanh(x) | sigmoid(x) */
void lower_unary(Lower *L)
{
    enum { Y, X };
    check_same(L, lin(L, 0)->id);
    Expr *i, *yi;
    Stmt *p = L->n->shuf_out ? lshuffled_loop(L, L->n->shuf_out, &i, &yi) : flat_loop(L, &i);
    lstore(L, p, Y, L->n->shuf_out ? yi : i, lact(L, p, L->n, lload(L, X, i)), false);
}

/* dx from the forward output y and dy (lact_grad) */
void lower_unary_dx(Lower *L)
{
    enum { DX, Y, DY };
    check_same(L, lin(L, 0)->id);
    check_same(L, lin(L, 1)->id);
    Expr *i, *yi;
    Stmt *p = L->n->shuf_out ? lshuffled_loop(L, L->n->shuf_out, &i, &yi) : flat_loop(L, &i);
    lstore(L, p, DX, L->n->shuf_out ? yi : i, lact_grad(L, p, L->n, lload(L, Y, i), lload(L, DY, i)), false);
}

/* y = x0 + x1 + ... (same shapes) */
void lower_add(Lower *L)
{
    NETC_ASSERT(L->n->nin >= 1);
    Expr *i;
    Stmt *p = flat_loop(L, &i);
    Expr *v = NULL;
    for (int j = 0; j < L->n->nin; j++) {
        check_same(L, lin(L, j)->id);
        Expr *x = lload(L, 1 + j, i);
        v = v ? fadd(L, v, x) : x;
    }
    lstore(L, p, 0, i, v, false);
}

/* ---- softmax along an axis ---- */

/* The running maximum of buf[base + c*stride] over c in [0, C). */
int chan_max(Lower *L, Stmt *p, int buf, Expr *base, int C, int stride)
{
    int m = ldecl(L, p, "m", T_F32, lload(L, buf, base));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 1), li(L, C));
    Expr *v = lvar(L, ldecl(L, q, "v", T_F32, lload(L, buf, lmad(L, c, stride, base))));
    lassign(L, q, m, ex_select(L->a, ex_bin(L->a, X_LT, lvar(L, m), v), v, lvar(L, m)));
    return m;
}

/* y [N*O, C, S] = exp(x - max_c x) / sum_c exp(x - max_c x), per (n, s),
 * C along the node's axis (O = 1 for the channels) */
void lower_softmax(Lower *L)
{
    enum { Y, X };
    int O, C, S;
    axis_split(L, L->n->id, L->n->p.act.axis, &O, &C, &S);
    check_same(L, lin(L, 0)->id);
    Stmt *p = L->k->body;
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lmul(L, lbatch(L), li(L, O)));
    Expr *s = lfor(L, &p, "s", li(L, 0), li(L, S));
    Expr *base = lbind(L, p, "base", lmad(L, nb, C * S, s));
    Expr *m = lvar(L, chan_max(L, p, X, base, C, S));
    int sum = ldecl(L, p, "sum", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *idx = lmad(L, c, S, base);
    Expr *e = lvar(L, ldecl(L, q, "e", T_F32, ex_un(L->a, X_EXP, fsub(L, lload(L, X, idx), m))));
    lstore(L, q, Y, idx, e, false);
    lassign(L, q, sum, fadd(L, lvar(L, sum), e));
    q = p;
    c = lfor(L, &q, "c", li(L, 0), li(L, C));
    idx = lmad(L, c, S, base);
    lstore(L, q, Y, idx, fdiv(L, lload(L, Y, idx), lvar(L, sum)), false);
}

/* dx = y * (dy - sum_c y*dy), per (n, s) */
void lower_softmax_dx(Lower *L)
{
    enum { DX, Y, DY };
    int O, C, S;
    axis_split(L, L->n->id, L->n->p.act.axis, &O, &C, &S);
    check_same(L, lin(L, 0)->id);
    check_same(L, lin(L, 1)->id);
    Stmt *p = L->k->body;
    Expr *nb = lfor(L, &p, "nb", li(L, 0), lmul(L, lbatch(L), li(L, O)));
    Expr *s = lfor(L, &p, "s", li(L, 0), li(L, S));
    Expr *base = lbind(L, p, "base", lmad(L, nb, C * S, s));
    int dot = ldecl(L, p, "dot", T_F32, lf(L, 0.0f));
    Stmt *q = p;
    Expr *c = lfor(L, &q, "c", li(L, 0), li(L, C));
    Expr *idx = lmad(L, c, S, base);
    lassign(L, q, dot, fadd(L, lvar(L, dot), fmul(L, lload(L, Y, idx), lload(L, DY, idx))));
    q = p;
    c = lfor(L, &q, "c", li(L, 0), li(L, C));
    idx = lmad(L, c, S, base);
    lstore(L, q, DX, idx, fmul(L, lload(L, Y, idx), fsub(L, lload(L, DY, idx), lvar(L, dot))), false);
}

