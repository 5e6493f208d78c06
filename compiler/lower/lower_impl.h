/* lower_impl.h - helpers shared by the lowering files (lower*.c).
 *
 * Not a public interface: lower.c dispatches to the per-family lowerings
 * below, which build loop IR through the small helpers here.  The integer
 * helpers fold constants and drop identities (x+0, x*1, x/1) so that the
 * loops printed for 1D and 2D layers, which are lowered as 3D with unit
 * leading axes, carry no dead arithmetic.
 */
#ifndef NETC_LOWER_IMPL_H
#define NETC_LOWER_IMPL_H

#include "netc.h"

/* The epilogue of a kernel (graph/fuse.c, Node.epi) as its lowering sees
 * it: what the stores apply to the value v computed for output element i,
 * in this order:
 *   v = v + res[i]       res >= 0: a fused add (operands in the add's order)
 *   v = act(v)           act an activation, or
 *   v = act'(aux[i]) v   act an activation's gradient, aux its y or x
 * res and aux are buffers of the kernel (the inputs fuse.c appended). */
typedef struct {
    int res;
    bool res_first;  /* the add reads res before the node's value */
    const Node *act; /* or NULL */
    int aux;         /* -1 when act is an activation (or absent) */
} Epi;

/* The state of one node's lowering. */
typedef struct {
    Arena *a;
    const Graph *g;
    const Node *n;
    Kernel *k;
    Algo algo;      /* the node's schedule */
    const Target *t; /* the machine it is scheduled for */
    const Epi *epi;  /* the node's epilogue, or NULL */
    bool epi_done;   /* the lowering applied epi at its final stores; else
                        lower_node applies it in a pass over the output */
    bool training;   /* an OPF_MODE op lowered for a training entry */
} Lower;

/* ---- integer expressions (folded) ---- */
Expr *li(Lower *L, int v);
Expr *ladd(Lower *L, Expr *x, Expr *y);
Expr *lsub(Lower *L, Expr *x, Expr *y);
Expr *lmul(Lower *L, Expr *x, Expr *y);
Expr *ldiv(Lower *L, Expr *x, Expr *y); /* x >= 0, y > 0 */
Expr *lmin(Lower *L, Expr *x, Expr *y);
Expr *lmax(Lower *L, Expr *x, Expr *y);
/* x * c + y, the usual step of a row-major index */
Expr *lmad(Lower *L, Expr *x, int c, Expr *y);
bool lconst(const Expr *e, int *v);

/* ---- float expressions ---- */
Expr *lf(Lower *L, float v);
Expr *fadd(Lower *L, Expr *x, Expr *y);
Expr *fsub(Lower *L, Expr *x, Expr *y);
Expr *fmul(Lower *L, Expr *x, Expr *y);
Expr *fdiv(Lower *L, Expr *x, Expr *y);
Expr *lload(Lower *L, int buf, Expr *idx);
Expr *lvar(Lower *L, int var);
Expr *lbatch(Lower *L);

/* ---- statements ---- */
/* A loop over [lo, hi) appended to *parent, which then becomes the loop;
 * returns the loop variable.  A range of exactly one iteration known at
 * compile time makes no loop: *parent is unchanged and the constant is
 * returned. */
Expr *lfor(Lower *L, Stmt **parent, const char *name, Expr *lo, Expr *hi);
/* lfor for a loop whose iterations are independent: none reads what
 * another writes (Stmt.indep), so the schedule may run it in parallel. */
Expr *lfor_indep(Lower *L, Stmt **parent, const char *name, Expr *lo, Expr *hi);
/* Lists scratch buffer buf (-1: none) as a workspace of each iteration of
 * the top-level loop `loop` (Stmt.priv, for loop_privatize.c): an
 * iteration reads of it only what it wrote itself or what statements
 * before the loop wrote, and the loop's other writes are its iterations'
 * own, so that one copy of buf per chunk of iterations makes them
 * independent. */
void lpriv(Lower *L, Stmt *loop, int buf);
/* Lists scratch buffer buf as an accumulator of the top-level loop `loop`
 * (Stmt.sum): zeroed before the loop, added into by its iterations (and
 * otherwise as for lpriv), read only after it; the copies of its chunks
 * are summed, in chunk order, where it is read. */
void lpriv_sum(Lower *L, Stmt *loop, int buf);
/* x*y + z: fused on targets with FMA, a multiply and an add otherwise;
 * floats or vectors. */
Expr *lfma(Lower *L, Expr *x, Expr *y, Expr *z);
/* For V lanes (V < 2: a float): the type, a load of V elements from idx,
 * and x broadcast to V lanes. */
LType lvt(int V);
Expr *lvld(Lower *L, int V, int buf, Expr *idx);
Expr *lvsplat(Lower *L, int V, Expr *x);
/* A local initialised to `init`, declared in parent; returns its id. */
int ldecl(Lower *L, Stmt *parent, const char *name, LType t, Expr *init);
/* Names an integer expression with a local so inner loops reuse it;
 * constants and variables are returned as they are. */
Expr *lbind(Lower *L, Stmt *parent, const char *name, Expr *e);
void lstore(Lower *L, Stmt *parent, int buf, Expr *idx, Expr *val, bool accum);
void lassign(Lower *L, Stmt *parent, int var, Expr *val);
/* for i in [0, count): buf[base + i] = v (lzero: 0), a loop appended to parent */
void lfill(Lower *L, Stmt *parent, int buf, Expr *base, Expr *count, float v);
void lzero(Lower *L, Stmt *parent, int buf, Expr *base, Expr *count);

/* ---- buffers ---- */
/* A buffer sized for value `id` (per sample when batched). */
int lbuf(Lower *L, const char *name, int id, bool written);
int lnumel(const Lower *L, int id);     /* per sample when batched */
const Node *lin(const Lower *L, int i); /* the node's i-th input   */

/* ---- convolution and pooling geometry, as 3 spatial axes ----
 * An nsp-D layer becomes 3D with 3 - nsp leading axes of size 1, kernel
 * 1, stride 1, dilation 1 and no padding, so one loop nest serves 1D, 2D
 * and 3D. */
typedef struct {
    int n_in, n_out;    /* channels of the input side and the output side */
    int groups;
    int in[3], out[3];  /* spatial extents D, H, W                         */
    int k[3], s[3], d[3], plo[3], phi[3];
    int in_sz, out_sz, k_sz; /* products of in[], out[], k[]            */
} Geom;

/* `xs` is the input-side shape [C, spatial...], `ys` the output side. */
void geom_conv(Geom *G, const ConvParam *p, const Shape *xs, const Shape *ys);
void geom_pool(Geom *G, const PoolParam *p, const Shape *xs, const Shape *ys);
/* A convolution with every tap of every output inside the input (no
 * padding), and one that is a per-pixel matrix product (1x1 kernel, stride
 * 1, no padding): its input planes already are the im2col matrix. */
bool geom_unpadded(const Geom *G);
bool geom_pointwise(const Geom *G);

/* ---- convolution pieces shared by the direct and im2col lowerings
 * (lower_conv.c) ---- */
typedef struct {
    Stmt *body;     /* the innermost loop (over output width)  */
    Expr *yi, *xi;  /* flat output-side and input-side indices */
} Inner;
/* Along axis a, the outputs o in [lo, hi) whose tap lands inside the
 * input, at input coordinate o*stride + shift (hi may be below lo, and lo
 * above the output extent, when no output does). */
typedef struct {
    Expr *lo, *hi, *shift;
} TapRange;
TapRange tap_range(Lower *L, const Geom *G, int a, Expr *tap);
/* The output pixels whose tap (kd, kh, kw) = tap[] lands inside the input:
 * loops appended to p.  yb and xb are the flat offsets of the output and
 * input planes; the innermost loop runs over contiguous output width. */
Inner tap_nest(Lower *L, Stmt *p, const Geom *G, Expr *const tap[3], Expr *yb, Expr *xb);
/* kd, kh, kw loops appended to *p; returns the flat tap offset. */
Expr *tap_loops(Lower *L, Stmt **p, const Geom *G, Expr *tap[3]);
/* Asserts w [O, C/g, K...] matches the geometry. */
void check_weight(const Geom *G, const Node *w);

/* ---- activations and epilogues (lower_act.c) ---- */
/* act(x) for an element-wise activation node (graph/fuse.c's
 * fuse_activation), x a float or a vector; locals in p.  NULL when x is a
 * vector and the activation has no vector form in the loop IR (exp, log,
 * tanh: libm per lane). */
Expr *lact(Lower *L, Stmt *p, const Node *act, Expr *x);
/* dx for activation gradient node g (fuse_activation_grad) from a, the y
 * or x it reads, and dy; floats or vectors, NULL as lact. */
Expr *lact_grad(Lower *L, Stmt *p, const Node *g, Expr *a, Expr *dy);
/* The value an epilogue e stores for v computed at output index idx (a
 * float, or a vector of the lanes idx, idx+1, ...); locals in p.  NULL
 * when v is a vector and lepi_vector(e) is false. */
Expr *lepi(Lower *L, Stmt *p, const Epi *e, Expr *v, Expr *idx);
bool lepi_vector(const Epi *e); /* e (or NULL) has a vector form */
/* y = epi(y) over the kernel's whole output: the epilogue of a lowering
 * that could not apply it at its stores. */
void lepilogue_pass(Lower *L);

/* ---- GEMM (lower_gemm.c) ---- */
/* A matrix in a buffer: element (r, c) is buf[base + r*rs + c*cs]; or,
 * with panel > 0 (the packed layout lgemm reads fastest as B), buf[base +
 * (c / panel)*prows*panel + r*panel + c % panel]: column panels of `panel`
 * columns, each stored row after row, so a k step of the micro-kernel reads
 * consecutive memory.  lgemm's A with panel > 0 is packed (lgemm_pack):
 * A^T [K, M] in that layout (prows = K), that is row micro-panels of
 * `panel` rows, each stored column after column: (r, c) at base +
 * (r / panel)*K*panel + c*panel + r % panel. */
typedef struct {
    int buf;
    Expr *base;
    int rs, cs;
    int panel, prows;
} MatRef;
/* The panel width lgemm's micro-kernel uses for a product with N columns
 * (0 when the target has no vectors): a B in that panel layout is read
 * contiguously. */
int lgemm_panel(Lower *L, int N);
/* Index of element (r, c) of m (plain or column-panel layout). */
Expr *lmat_at(Lower *L, const MatRef *m, Expr *r, Expr *c);
/* The micro-panel height of a packed A [M, K] for a product with N
 * columns: the packed A is {buf, base, 0, 0, mr, K}, of ceil(M / mr) * mr
 * * K floats (the rows past M unused). */
int lgemm_pack_mr(Lower *L, int M, int N);
/* Copies A [M, K] (any strides) into the packed dst (as above), appended
 * to p.  A k step of the micro-kernel then broadcasts mr consecutive
 * floats instead of one from each of mr rows K apart. */
void lgemm_pack(Lower *L, Stmt *p, MatRef dst, MatRef A, int M, int K);
/* C [M, N] += A [M, K] B [K, N] (acc), or C = A B (!acc: the k = 0 step
 * stores, so C needs no zeroing; K must be a constant >= 1), appended to p.  C and B have contiguous
 * rows (cs == 1); A is read one scalar at a time, so any strides do, or
 * packed (lgemm_pack, for the same N and a constant M).  A constant K is split into blocks sized from the L1 cache, each
 * accumulated into C in k order.  The
 * innermost loop runs over j, independent contiguous outputs, so C
 * compilers and LLVM vectorise it without reassociating: every C element
 * is summed in k order 0, 1, ..., K-1, the same in both backends.  M and K
 * may depend on the batch size; N is a constant. */
void lgemm(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, Expr *K, bool acc);
/* lgemm whose stores of C apply the epilogue epi (lepi; NULL: none), C
 * the node's output (buffer 0) and epi with a vector form when the target
 * has vectors: each element of C is stored with its final value once. */
void lgemm_epi(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, Expr *K, bool acc,
               const Epi *epi);
/* C [M, N] += A [M, K] B [N, K]^T for long K and few outputs: A and B have
 * contiguous rows (cs == 1).  Each output's sum over k is split, in the IR,
 * into 16 lanes (lane s sums k = s, s+16, s+32, ... in order) that are then
 * added in lane order, so the inner loop runs over independent lanes and
 * the result is the same in both backends.  Adds a scratch buffer. */
void lgemm_dot(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, int K);
/* lgemm_dot storing epi(C + A Bt) (any epilogue, applied to floats; C the
 * node's output). */
void lgemm_dot_epi(Lower *L, Stmt *p, MatRef C, MatRef A, MatRef B, Expr *M, int N, int K,
                   const Epi *epi);

/* ---- the lowerings, one per op family and algorithm (lower_conv.c,
 * lower_im2col.c, lower_winograd.c, lower_gemm.c, lower_pool.c, lower_move.c, lower_misc.c); each fills
 * L->k, whose output buffer is already 0 ---- */
typedef void LowerFn(Lower *L);
LowerFn lower_conv, lower_conv_dx, lower_conv_dw, lower_bias_grad; /* lower_direct.c, lower_conv.c */
/* conv_dx of a stride-1 layer by lower_direct.c's micro-kernel; false
 * (nothing lowered) for other strides */
bool lower_conv_dx_vec(Lower *L);
/* conv_dw by lower_direct.c's weight-gradient kernel; false (nothing
 * lowered) when the output channels per group are not whole vectors */
bool lower_conv_dw_vec(Lower *L);
LowerFn lower_conv_im2col, lower_conv_dx_im2col, lower_conv_dw_im2col; /* lower_im2col.c */
LowerFn lower_conv_winograd, lower_conv_dx_winograd, lower_conv_dw_winograd; /* lower_winograd.c */
LowerFn lower_conv_fft, lower_conv_dx_fft, lower_conv_dw_fft;         /* lower_fft.c */
LowerFn lower_maxpool, lower_maxpool_dx, lower_avgpool, lower_avgpool_dx;
LowerFn lower_dense, lower_dense_dx, lower_dense_dw;
LowerFn lower_dense_db, lower_matmul, lower_matmul_da, lower_matmul_db; /* lower_dense.c */
LowerFn lower_copy, lower_unary, lower_unary_dx, lower_add;
LowerFn lower_softmax, lower_softmax_dx, lower_concat, lower_slice; /* concat, slice: lower_move.c */
/* lower_loss.c: softmax_cross_entropy and nll; mse, l1, smooth_l1 and
 * bce_with_logits */
LowerFn lower_class_loss, lower_class_loss_dx, lower_elem_loss, lower_elem_loss_dx;

/* activations and element-wise arithmetic (lower_act.c) */
LowerFn lower_act, lower_act_dx, lower_prelu, lower_prelu_dx, lower_prelu_dw;
LowerFn lower_log_softmax, lower_log_softmax_dx, lower_arith, lower_bcast_dx;

/* A batched value seen along `axis` of its per-sample shape as
 * [N*outer, C, S]: outer = the dims before the axis, C = its size, S = the
 * dims after it (lower_act.c). */
void axis_split(const Lower *L, int id, int axis, int *outer, int *C, int *S);
/* The running maximum of buf[base + c*stride] over c in [0, C), as a local
 * declared in p (lower_misc.c). */
int chan_max(Lower *L, Stmt *p, int buf, Expr *base, int C, int stride);

/* normalisation and regularisation (lower_norm.c) */
LowerFn lower_batchnorm, lower_batchnorm_dx, lower_batchnorm_dw, lower_running_stat;
LowerFn lower_step_count, lower_lrn, lower_lrn_dx, lower_dropout, lower_dropout_dx;
/* A batchnorm folded into the conv before it (graph/fold_bn.c), in
 * inference: its own buffers, the folded weight and bias (see
 * lower_bn_fold_bias_at) from the layer's and its own parameters. */
LowerFn lower_batchnorm_fold;

LowerFn lower_adaptive_avgpool, lower_adaptive_avgpool_dx;
LowerFn lower_pad, lower_pad_dx, lower_upsample, lower_upsample_dx;
LowerFn lower_permute, lower_slice_dx;
/* The loops of an element-wise kernel whose stores apply a folded
 * channel_shuffle(g) (graph/fold_shuffle.c): *i is the flat index of an
 * element of the node's value in channel order, *yi where it is stored
 * (lower_move.c). */
Stmt *lshuffled_loop(Lower *L, int g, Expr **i, Expr **yi);

/* transposed convolution (lower_convt.c) */
LowerFn lower_conv_transpose, lower_conv_transpose_im2col;

#endif
