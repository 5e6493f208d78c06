/* lower_move.c - data movement: pad, upsample, the shuffles (pixel_shuffle,
 * depth_to_space, channel_shuffle, ... and their gradient PERMUTE), concat
 * and slice along any axis, with their gradients.
 *
 * Needs: shape-checked nodes (shape.c fills PermParam's view).  Provides
 * the kernels of those ops.  Reshape and flatten are views (program.c
 * gives them their input's memory), lowered by lower_copy (lower_misc.c)
 * only where an entry's interface needs their own buffer.
 *
 * Spatial ops are lowered as 3D over planes nc = n*C + c, like pooling
 * (lower_pool.c): a 1D or 2D input has leading axes of size 1.  Every
 * forward kernel is a gather, one store per output element, so its loops
 * are independent (lfor_indep); gradients that several outputs feed
 * (reflect and replicate padding, upsampling) zero dx and accumulate in
 * output order, which keeps only their plane loop independent.
 *
 *   pad [N, 2, 3, 3] -> [N, 2, 5, 5], mode=reflect pad=1:
 *     for nc in [0, n*2) indep
 *       for oh in [0, 5) indep
 *         int jh = 2 - |2 - |oh - 1||       (|v| as max(v, 0 - v))
 *         for ow in [0, 5) indep
 *           y[nc*25 + oh*5 + ow] = x[nc*9 + jh*3 + jw]
 */
#include "lower_impl.h"

/* lfor or lfor_indep */
typedef Expr *LowerFor(Lower *L, Stmt **parent, const char *name, Expr *lo, Expr *hi);

/* ---- 3D planes ---- */

typedef struct {
    int planes;            /* N is outside: channels C                    */
    int in[3], out[3];     /* spatial extents, right-aligned (leading 1s) */
    int in_sz, out_sz;
} Planes;

/* xs is the small side (the input of pad and upsample), ys the big one. */
static Planes planes_of(const Shape *xs, const Shape *ys)
{
    Planes P;
    int nsp = xs->rank - 1, off = 3 - nsp;
    NETC_ASSERT(nsp >= 1 && nsp <= 3 && ys->rank == xs->rank && xs->d[0] == ys->d[0]);
    P.planes = xs->d[0];
    P.in_sz = P.out_sz = 1;
    for (int a = 0; a < 3; a++) {
        P.in[a] = a < off ? 1 : xs->d[1 + a - off];
        P.out[a] = a < off ? 1 : ys->d[1 + a - off];
        P.in_sz *= P.in[a];
        P.out_sz *= P.out[a];
    }
    return P;
}

/* The per-axis arrays of an nsp-axis parameter, right-aligned into 3 axes
 * (fill for the leading ones). */
static void align3(int nsp, const int *v, int fill, int out[3])
{
    for (int a = 0; a < 3; a++)
        out[a] = a < 3 - nsp ? fill : v[a - (3 - nsp)];
}

/* The plane loop nc in [0, n*C) and the flat offsets of plane nc in the
 * input and the output. */
static Stmt *plane_loop(Lower *L, const Planes *P, Expr **xb, Expr **yb)
{
    Stmt *p = L->k->body;
    Expr *nc = lfor_indep(L, &p, "nc", li(L, 0), lmul(L, lbatch(L), li(L, P->planes)));
    *xb = lbind(L, p, "xb", lmul(L, nc, li(L, P->in_sz)));
    *yb = lbind(L, p, "yb", lmul(L, nc, li(L, P->out_sz)));
    return p;
}

static Expr *iabs(Lower *L, Expr *v)
{
    return lmax(L, v, lsub(L, li(L, 0), v));
}

/* ---- pad ---- */

/* The input coordinate read by output coordinate o along an axis of input
 * size n with low padding lo; *inside (constant mode) tells whether o
 * lies in the input.  The coordinate is always in [0, n), so the load is
 * safe even where constant mode selects the fill instead. */
static Expr *pad_source(Lower *L, Stmt *p, PadMode mode, Expr *o, int lo, int n, const char *name,
                        Expr **inside)
{
    Expr *j = lsub(L, o, li(L, lo));
    if (mode == PAD_REFLECT) {
        /* shape.c keeps pad < n: one reflection at each edge suffices */
        Expr *last = li(L, n - 1);
        Expr *low = lbind(L, p, "d", iabs(L, lbind(L, p, "d", j)));        /* mirrored at 0 */
        Expr *high = lbind(L, p, "e", lsub(L, last, low));                 /* < 0 past n-1  */
        return lbind(L, p, name, lsub(L, last, iabs(L, high)));
    }
    Expr *clamped = lbind(L, p, name, lmin(L, lmax(L, j, li(L, 0)), li(L, n - 1)));
    if (inside)
        *inside = ex_bin(L->a, X_EQ, clamped, j);
    return clamped;
}

/* y [N, C, O...] = x [N, C, I...] padded */
void lower_pad(Lower *L)
{
    const PadParam *pp = &L->n->p.pad;
    Planes P = planes_of(&lin(L, 0)->shape, &L->n->shape);
    int lo[3];
    align3(pp->nsp, pp->lo, 0, lo);
    enum { Y, X };
    Expr *xb, *yb;
    Stmt *p = plane_loop(L, &P, &xb, &yb);
    static const char *const oname[3] = {"od", "oh", "ow"}, *const jname[3] = {"jd", "jh", "jw"};
    Expr *yoff = li(L, 0), *xoff = li(L, 0), *inside = NULL;
    for (int a = 0; a < 3; a++) {
        Expr *o = lfor_indep(L, &p, oname[a], li(L, 0), li(L, P.out[a]));
        Expr *in_a = NULL;
        Expr *j = pad_source(L, p, pp->mode, o, lo[a], P.in[a], jname[a],
                             pp->mode == PAD_CONSTANT ? &in_a : NULL);
        if (in_a && !lconst(in_a, NULL))
            inside = inside ? ex_bin(L->a, X_AND, inside, in_a) : in_a;
        yoff = lmad(L, yoff, P.out[a], o);
        xoff = lmad(L, xoff, P.in[a], j);
    }
    Expr *v = lload(L, X, ladd(L, xb, xoff));
    if (inside)
        v = ex_select(L->a, inside, v, lf(L, pp->value));
    lstore(L, p, Y, ladd(L, yb, yoff), v, false);
}

/* dx [N, C, I...]: constant mode reads dy's interior; reflect and
 * replicate add every dy element into the input element it read. */
void lower_pad_dx(Lower *L)
{
    const PadParam *pp = &L->n->p.pad;
    Planes P = planes_of(&L->n->shape, &lin(L, 0)->shape);
    int lo[3];
    align3(pp->nsp, pp->lo, 0, lo);
    enum { DX, DY };
    Expr *xb, *yb;
    Stmt *p = plane_loop(L, &P, &xb, &yb);
    static const char *const oname[3] = {"od", "oh", "ow"}, *const jname[3] = {"jd", "jh", "jw"};
    Expr *yoff = li(L, 0), *xoff = li(L, 0);
    if (pp->mode == PAD_CONSTANT) {
        for (int a = 0; a < 3; a++) {
            Expr *j = lfor_indep(L, &p, jname[a], li(L, 0), li(L, P.in[a]));
            xoff = lmad(L, xoff, P.in[a], j);
            yoff = lmad(L, yoff, P.out[a], ladd(L, j, li(L, lo[a])));
        }
        lstore(L, p, DX, ladd(L, xb, xoff), lload(L, DY, ladd(L, yb, yoff)), false);
        return;
    }
    lzero(L, p, DX, xb, li(L, P.in_sz));
    for (int a = 0; a < 3; a++) {
        Expr *o = lfor(L, &p, oname[a], li(L, 0), li(L, P.out[a]));
        Expr *j = pad_source(L, p, pp->mode, o, lo[a], P.in[a], jname[a], NULL);
        yoff = lmad(L, yoff, P.out[a], o);
        xoff = lmad(L, xoff, P.in[a], j);
    }
    lstore(L, p, DX, ladd(L, xb, xoff), lload(L, DY, ladd(L, yb, yoff)), true);
}

/* ---- upsample ---- */

/* PyTorch's source-index scale of one axis, in float as its kernels
 * compute it: align_corners (in-1)/(out-1); else 1/scale for scale=, or
 * in/out for size=. */
static float up_scale(const UpsampleParam *u, int a3, int nsp, int in, int out)
{
    int scale[3];
    align3(nsp, u->scale, 1, scale);
    if (u->align_corners)
        return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    if (!u->by_size)
        return (float)(1.0 / scale[a3]);
    return (float)in / (float)out;
}

/* nearest: min(floor(o * scale), in - 1), o >= 0 */
static Expr *nearest_source(Lower *L, Stmt *p, Expr *o, float scale, int in, const char *name)
{
    Expr *f = fmul(L, ex_un(L->a, X_I2F, o), lf(L, scale));
    return lbind(L, p, name, lmin(L, ex_un(L->a, X_F2I, f), li(L, in - 1)));
}

/* Bilinear taps of one axis: coordinates i0, i1 and weights w0, w1. */
typedef struct {
    Expr *i0, *i1, *w0, *w1;
} Lerp;

static Lerp lerp_axis(Lower *L, Stmt *p, Expr *o, float scale, bool align, int in, const char *tag)
{
    Expr *of = ex_un(L->a, X_I2F, o), *src;
    if (align) {
        src = fmul(L, lf(L, scale), of);
    } else {
        Expr *c = fsub(L, fmul(L, lf(L, scale), fadd(L, of, lf(L, 0.5f))), lf(L, 0.5f));
        Expr *s = lvar(L, ldecl(L, p, arena_printf(L->a, "c%s", tag), T_F32, c));
        src = ex_select(L->a, ex_bin(L->a, X_LT, s, lf(L, 0.0f)), lf(L, 0.0f), s);
    }
    Lerp r;
    Expr *sv = lvar(L, ldecl(L, p, arena_printf(L->a, "src%s", tag), T_F32, src));
    r.i0 = lbind(L, p, arena_printf(L->a, "%s0", tag), ex_un(L->a, X_F2I, sv));
    r.i1 = lbind(L, p, arena_printf(L->a, "%s1", tag),
                 ladd(L, r.i0, ex_bin(L->a, X_LT, r.i0, li(L, in - 1))));
    r.w1 = lvar(L, ldecl(L, p, arena_printf(L->a, "l%s1", tag), T_F32,
                         fsub(L, sv, ex_un(L->a, X_I2F, r.i0))));
    r.w0 = lvar(L, ldecl(L, p, arena_printf(L->a, "l%s0", tag), T_F32, fsub(L, lf(L, 1.0f), r.w1)));
    return r;
}

/* What one output element of an upsample reads: ntap input indices and
 * their weights (NULL: weight 1, nearest), in the innermost loop body. */
typedef struct {
    Stmt *body;
    Expr *yi;
    int ntap;
    Expr *xi[8], *w[8];
} Taps;

/* Loops over the output pixels of plane (xb, yb), appended to p: one tap
 * (nearest), or the 2^nsp corners of the input cell around the source
 * position, weighted by the product of the axes' weights (linear modes). */
static Taps upsample_taps(Lower *L, Stmt *p, const Planes *P, Expr *xb, Expr *yb, bool indep)
{
    const UpsampleParam *u = &L->n->p.up;
    static const char *const oname[3] = {"od", "oh", "ow"}, *const jname[3] = {"jd", "jh", "jw"};
    static const char *const tag[3] = {"d", "h", "w"};
    LowerFor *loop = indep ? lfor_indep : lfor;
    Taps t = {0};
    Lerp ax[3];
    Expr *yoff = li(L, 0);
    for (int a = 0; a < 3; a++) {
        float sc = up_scale(u, a, u->nsp, P->in[a], P->out[a]);
        Expr *o = loop(L, &p, oname[a], li(L, 0), li(L, P->out[a]));
        yoff = lmad(L, yoff, P->out[a], o);
        if (a < 3 - u->nsp) {
            ax[a] = (Lerp){o, o, NULL, NULL}; /* a leading axis of size 1 */
        } else if (u->linear) {
            ax[a] = lerp_axis(L, p, o, sc, u->align_corners, P->in[a], tag[a]);
        } else {
            Expr *j = P->out[a] == P->in[a] ? o : nearest_source(L, p, o, sc, P->in[a], jname[a]);
            ax[a] = (Lerp){j, j, NULL, NULL};
        }
    }
    t.body = p;
    t.yi = ladd(L, yb, yoff);
    t.ntap = u->linear ? 1 << u->nsp : 1;
    for (int k = 0; k < t.ntap; k++) {
        /* bit (2 - a) of k: the high neighbour along axis a */
        Expr *xoff = li(L, 0), *w = NULL;
        for (int a = 0; a < 3; a++) {
            bool high = (k >> (2 - a)) & 1;
            xoff = lmad(L, xoff, P->in[a], high ? ax[a].i1 : ax[a].i0);
            Expr *wa = high ? ax[a].w1 : ax[a].w0;
            if (wa)
                w = w ? fmul(L, w, wa) : wa;
        }
        t.xi[k] = ladd(L, xb, xoff);
        t.w[k] = w;
    }
    return t;
}

/* y [N, C, O...] = x [N, C, I...] resized: the nearest input, or the sum
 * over the cell's corners of weight * x (2D: h0*w0*x00 + h0*w1*x01 + ...) */
void lower_upsample(Lower *L)
{
    Planes P = planes_of(&lin(L, 0)->shape, &L->n->shape);
    enum { Y, X };
    Expr *xb, *yb;
    Stmt *p = plane_loop(L, &P, &xb, &yb);
    Taps t = upsample_taps(L, p, &P, xb, yb, true);
    Expr *v = NULL;
    for (int k = 0; k < t.ntap; k++) {
        Expr *x = lload(L, X, t.xi[k]);
        Expr *term = t.w[k] ? fmul(L, t.w[k], x) : x;
        v = v ? fadd(L, v, term) : term;
    }
    lstore(L, t.body, Y, t.yi, v, false);
}

/* dx [N, C, I...] += each dy element into the inputs it read, weighted */
void lower_upsample_dx(Lower *L)
{
    Planes P = planes_of(&L->n->shape, &lin(L, 0)->shape);
    enum { DX, DY };
    Expr *xb, *yb;
    Stmt *p = plane_loop(L, &P, &xb, &yb);
    lzero(L, p, DX, xb, li(L, P.in_sz));
    Taps t = upsample_taps(L, p, &P, xb, yb, false);
    Expr *g = lvar(L, ldecl(L, t.body, "g", T_F32, lload(L, DY, t.yi)));
    for (int k = 0; k < t.ntap; k++)
        lstore(L, t.body, DX, t.xi[k], t.w[k] ? fmul(L, t.w[k], g) : g, true);
}

/* ---- shuffles: a transpose of a reshaped view ---- */

/* y = x viewed as dims[] and read in the order perm[] (PermParam, ir.h):
 * loops over the output view in order, each reading its input element. */
void lower_permute(Lower *L)
{
    const PermParam *pp = &L->n->p.perm;
    int numel = lnumel(L, L->n->id);
    NETC_ASSERT(pp->rank >= 1 && pp->rank <= NETC_MAX_VIEW && lnumel(L, lin(L, 0)->id) == numel);
    int stride[NETC_MAX_VIEW];
    long count = 1;
    for (int i = pp->rank - 1; i >= 0; i--) {
        stride[i] = (int)count;
        count *= pp->dims[i];
    }
    NETC_ASSERT(count == numel);
    enum { Y, X };
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *base = lbind(L, p, "b", lmul(L, nb, li(L, numel)));
    Expr *yoff = li(L, 0), *xoff = base;
    for (int i = 0; i < pp->rank; i++) {
        int from = pp->perm[i];
        Expr *v = lfor_indep(L, &p, arena_printf(L->a, "v%d", i), li(L, 0), li(L, pp->dims[from]));
        yoff = lmad(L, yoff, pp->dims[from], v);
        xoff = ladd(L, xoff, lmul(L, v, li(L, stride[from])));
    }
    lstore(L, p, Y, ladd(L, base, yoff), lload(L, X, xoff), false);
}

/* ---- concat and slice along an axis ---- */

/* A batched value seen as [n * outer, size of axis, inner]. */
typedef struct {
    int outer, len, inner;
} AxisSplit;

static AxisSplit axis_view(const Lower *L, int id, int axis)
{
    const Shape *s = &graph_node(L->g, id)->shape;
    NETC_ASSERT(s->batched && axis >= 0 && axis < s->rank);
    AxisSplit r = {1, s->d[axis], 1};
    for (int i = 0; i < axis; i++)
        r.outer *= s->d[i];
    for (int i = axis + 1; i < s->rank; i++)
        r.inner *= s->d[i];
    return r;
}

/* The loop over n * outer; returns it as the parent of the copies. */
static Stmt *outer_loop(Lower *L, int outer, Expr **o)
{
    Stmt *p = L->k->body;
    *o = lfor_indep(L, &p, "no", li(L, 0), lmul(L, lbatch(L), li(L, outer)));
    return p;
}

/* for i in [0, count): to[tb + i] = epi(from[fb + i]) (or 0 with from
 * < 0; epi NULL: none), epi applied at to's index */
static void copy_run_epi(Lower *L, Stmt *p, int to, Expr *tb, int from, Expr *fb, int count,
                         const Epi *epi)
{
    if (count <= 0)
        return;
    Expr *i = lfor_indep(L, &p, "i", li(L, 0), li(L, count));
    Expr *ti = ladd(L, tb, i);
    Expr *v = from < 0 ? lf(L, 0.0f) : lload(L, from, ladd(L, fb, i));
    lstore(L, p, to, ti, epi ? lepi(L, p, epi, v, ti) : v, false);
}

static void copy_run(Lower *L, Stmt *p, int to, Expr *tb, int from, Expr *fb, int count)
{
    copy_run_epi(L, p, to, tb, from, fb, count, NULL);
}

/* Channel c of a value of C channels goes to channel (c % (C/g)) * g +
 * c / (C/g) of its channel_shuffle(g) (graph/fold_shuffle.c), and channel
 * q of the shuffle reads channel (q % g) * (C/g) + q / g. */
static Expr *shuffled_to(Lower *L, Expr *c, int C, int g)
{
    Expr *per = li(L, C / g), *k = ldiv(L, c, per);
    return lmad(L, lsub(L, c, lmul(L, k, per)), g, k);
}

static Expr *shuffled_from(Lower *L, Expr *q, int C, int g)
{
    Expr *j = ldiv(L, q, li(L, g));
    return lmad(L, lsub(L, q, lmul(L, j, li(L, g))), C / g, j);
}

Stmt *lshuffled_loop(Lower *L, int g, Expr **i, Expr **yi)
{
    const Shape *sh = &L->n->shape;
    int numel = lnumel(L, L->n->id), C = sh->d[0], S = numel / C;
    NETC_ASSERT(sh->batched && g >= 1 && C % g == 0);
    Stmt *p = L->k->body;
    Expr *nb = lfor_indep(L, &p, "nb", li(L, 0), lbatch(L));
    Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, C));
    Expr *xb = lbind(L, p, "xb", lmad(L, nb, numel, lmul(L, c, li(L, S))));
    Expr *yb = lbind(L, p, "yb", lmad(L, nb, numel, lmul(L, shuffled_to(L, c, C, g), li(L, S))));
    Expr *s = lfor_indep(L, &p, "s", li(L, 0), li(L, S));
    *i = ladd(L, xb, s);
    *yi = ladd(L, yb, s);
    return p;
}

/* y [N*outer, C0+C1+..., inner] = [x0 [N*outer, C0, inner], x1, ...]; with
 * a folded channel shuffle (n->shuf_out), each channel plane is stored at
 * its shuffled place. */
void lower_concat(Lower *L)
{
    int axis = L->n->p.concat.axis, g = L->n->shuf_out;
    AxisSplit y = axis_view(L, L->n->id, axis);
    NETC_ASSERT(!g || axis == 0);
    Expr *o;
    Stmt *p = outer_loop(L, y.outer, &o);
    int off = 0;
    for (int j = 0; j < L->n->nin; j++) {
        AxisSplit x = axis_view(L, lin(L, j)->id, axis);
        NETC_ASSERT(x.outer == y.outer && x.inner == y.inner);
        if (g) {
            Stmt *q = p;
            Expr *c = lfor_indep(L, &q, "c", li(L, 0), li(L, x.len));
            int per = y.len / g;
            /* inputs within one block of C/g channels (ShuffleNet v2's
             * halves) move by a constant pattern */
            Expr *to = off / per == (off + x.len - 1) / per
                           ? lmad(L, ladd(L, c, li(L, off % per)), g, li(L, off / per))
                           : shuffled_to(L, ladd(L, c, li(L, off)), y.len, g);
            copy_run(L, q, 0, lmad(L, o, y.len * y.inner, lmul(L, to, li(L, y.inner))), 1 + j,
                     lmad(L, o, x.len * x.inner, lmul(L, c, li(L, x.inner))), x.inner);
        } else {
            copy_run(L, p, 0, lmad(L, o, y.len * y.inner, li(L, off * y.inner)), 1 + j,
                     lmul(L, o, li(L, x.len * x.inner)), x.len * x.inner);
        }
        off += x.len;
    }
    NETC_ASSERT(off == y.len);
}

/* y [N*outer, end-begin, inner] = x [N*outer, begin:end, inner]; with a
 * folded channel shuffle (n->shuf_in), of the shuffle of x. */
void lower_slice(Lower *L)
{
    enum { Y, X };
    const SliceParam *sp = &L->n->p.slice;
    int g = L->n->shuf_in;
    AxisSplit y = axis_view(L, L->n->id, sp->axis), x = axis_view(L, lin(L, 0)->id, sp->axis);
    NETC_ASSERT(x.outer == y.outer && x.inner == y.inner && sp->begin >= 0 && sp->begin + y.len <= x.len);
    NETC_ASSERT(!g || sp->axis == 0);
    Expr *o;
    Stmt *p = outer_loop(L, y.outer, &o);
    /* a fused activation (or its gradient: a concat's gradient is slices
     * of dy, graph/fuse.c) at the stores */
    L->epi_done = true;
    if (g) {
        Expr *c = lfor_indep(L, &p, "c", li(L, 0), li(L, y.len));
        Expr *from = shuffled_from(L, ladd(L, c, li(L, sp->begin)), x.len, g);
        copy_run_epi(L, p, Y, lmad(L, o, y.len * y.inner, lmul(L, c, li(L, y.inner))), X,
                     lmad(L, o, x.len * x.inner, lmul(L, from, li(L, x.inner))), y.inner, L->epi);
        return;
    }
    copy_run_epi(L, p, Y, lmul(L, o, li(L, y.len * y.inner)), X,
                 lmad(L, o, x.len * x.inner, li(L, sp->begin * x.inner)), y.len * y.inner, L->epi);
}

/* dx [N*outer, C, inner]: dy [N*outer, begin:end, inner], 0 elsewhere */
void lower_slice_dx(Lower *L)
{
    enum { DX, DY };
    const SliceParam *sp = &L->n->p.slice;
    AxisSplit x = axis_view(L, L->n->id, sp->axis), y = axis_view(L, lin(L, 0)->id, sp->axis);
    NETC_ASSERT(x.outer == y.outer && x.inner == y.inner && sp->begin >= 0 && sp->begin + y.len <= x.len);
    Expr *o;
    Stmt *p = outer_loop(L, x.outer, &o);
    Expr *xb = lbind(L, p, "xb", lmul(L, o, li(L, x.len * x.inner)));
    int lo = sp->begin * x.inner, mid = y.len * x.inner;
    copy_run(L, p, DX, xb, -1, NULL, lo);
    copy_run(L, p, DX, ladd(L, xb, li(L, lo)), DY, lmul(L, o, li(L, mid)), mid);
    copy_run(L, p, DX, ladd(L, xb, li(L, lo + mid)), -1, NULL, x.len * x.inner - lo - mid);
}
