/* lower_convt.c - transposed convolution (conv_transpose).
 *
 * Needs: lower_conv.c / lower_im2col.c (conv_dx).  Provides the direct and
 * im2col lowerings of conv_transpose.  The node's ConvParam describes the
 * matching conv, whose input gradient the layer is: out_channels are the
 * layer's input channels and the weight [C_in, C_out/g, k...] is that
 * conv's.  So its forward is that conv's conv_dx with x as the output
 * gradient, and the bias is added after:
 *
 *   y = conv_dx(dy = x, w) ;  y[n, c, ...] += b[c]
 *
 * Its gradients need no kernels of their own (autodiff.c): dx is the
 * matching conv of dy, dw its conv_dw(dy, x), db a bias_grad.
 */
#include "lower_impl.h"

/* y[n, c, pixels] += b[c], after the accumulation of the conv_dx nest */
static void add_bias(Lower *L)
{
    enum { Y, X, W, B };
    if (L->n->nin < 3)
        return;
    int C = L->n->shape.d[0];
    int pix = lnumel(L, L->n->id) / C;
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Expr *base = lbind(L, p, "base", lmul(L, lmad(L, nb, C, c), li(L, pix)));
    Expr *bv = lvar(L, ldecl(L, p, "bv", T_F32, lload(L, B, c)));
    Expr *i = lfor_indep(L, &p, "i", li(L, 0), li(L, pix));
    lstore(L, p, Y, ladd(L, base, i), bv, true);
}

void lower_conv_transpose(Lower *L)
{
    lower_conv_dx(L);
    add_bias(L);
}

void lower_conv_transpose_im2col(Lower *L)
{
    lower_conv_dx_im2col(L);
    add_bias(L);
}
