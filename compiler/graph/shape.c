/* shape.c - shape inference and MAC counts for the graph IR (see ir.h).
 *
 * Needs: a node whose inputs already have shapes and whose parameter struct
 * is filled.  Provides: n->shape, or an error that explains the arithmetic:
 *
 *   conv c1: kernel 5 (dilated 5) is larger than the padded input 3x3 (pad 0+0)
 *
 * Shapes in messages are per sample, as the user writes them in `input`.
 * Output size per spatial axis (floor mode, for conv and pooling alike):
 *   o = (i + pad_lo + pad_hi - dilation*(k-1) - 1) / stride + 1
 * Pools may round up instead (ceil_mode, PyTorch's rule) and take any
 * padding that leaves every window an input element (ONNX allows any
 * padding; PyTorch at most kernel/2).  The data-movement ops (pad,
 * upsample, the shuffles, slice, reshape, concat along an axis) have
 * their rules at the end; for the shuffles shape_infer also fills the
 * node's PermParam (the view and permutation the lowering and gradient
 * use), and for global pools its PoolParam (one window, the whole input).
 * Gradient ops are shaped by autodiff; shape_infer leaves them alone.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "ir.h"

/* ---- formatting ---- */

typedef struct {
    char s[96];
} Str;

static Str dims(const Shape *sh)
{
    Str r;
    int k = snprintf(r.s, sizeof r.s, "[");
    for (int i = 0; i < sh->rank; i++)
        k += snprintf(r.s + k, sizeof r.s - (size_t)k, "%s%d", i ? ", " : "", sh->d[i]);
    snprintf(r.s + k, sizeof r.s - (size_t)k, "]");
    return r;
}

/* "5" when every axis agrees (or always_axes is false and they agree),
 * else "5x3". */
static Str per_axis(const long *v, int n, bool always_axes)
{
    Str r;
    bool same = true;
    for (int i = 1; i < n; i++)
        same &= v[i] == v[0];
    int k = 0;
    for (int i = 0; i < (same && !always_axes ? 1 : n); i++)
        k += snprintf(r.s + k, sizeof r.s - (size_t)k, "%s%ld", i ? "x" : "", v[i]);
    return r;
}

static Str pads(const int *lo, const int *hi, int n)
{
    Str r;
    bool same = true;
    for (int i = 1; i < n; i++)
        same &= lo[i] == lo[0] && hi[i] == hi[0];
    int k = 0;
    for (int i = 0; i < (same ? 1 : n); i++)
        k += snprintf(r.s + k, sizeof r.s - (size_t)k, "%s%d+%d", i ? ", " : "", lo[i], hi[i]);
    return r;
}

typedef struct {
    Graph *g;
    Node *n;
    struct Diag *d;
    char what[160];
} Ctx;

static bool fail(Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(Ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(c->d, c->n->loc, (int)strlen(op_name(c->n->op)), "%s: %s", c->what, msg);
    return false;
}

static const Shape *in_shape(const Ctx *c, int k)
{
    return &graph_node(c->g, c->n->in[k])->shape;
}

static bool check_numel(Ctx *c, const Shape *s)
{
    long n = 1;
    for (int i = 0; i < s->rank; i++) {
        n *= s->d[i];
        if (n > INT_MAX)
            return fail(c, "the output %s has more than %d elements per sample", dims(s).s, INT_MAX);
    }
    return true;
}

/* ---- spatial ops ---- */

static bool spatial_input(Ctx *c, const Shape *x)
{
    if (x->batched && x->rank >= 2 && x->rank <= 4)
        return true;
    fail(c, "expects a [C, L], [C, H, W] or [C, D, H, W] input, got %s", dims(x).s);
    if (x->rank == 1)
        diag_hint(c->d, "a rank-1 value has no spatial axes; `dense` works on features");
    return false;
}

/* A spatial input whose axes the attributes (given for nsp axes) match. */
static bool spatial_attrs(Ctx *c, const Shape *x, int nsp)
{
    if (!spatial_input(c, x))
        return false;
    if (nsp != x->rank - 1)
        return fail(c, "its attributes are for %d spatial axes, the input %s has %d", nsp, dims(x).s,
                    x->rank - 1);
    return true;
}

/* Output size along each axis, or an error when the (dilated) window does
 * not fit in the padded input. */
static bool windows(Ctx *c, const Shape *x, int nsp, const int *k, const int *s, const int *dil,
                    const int *lo, const int *hi, int *out)
{
    long kk[3], eff[3], padded[3];
    bool fits = true;
    for (int i = 0; i < nsp; i++) {
        if (k[i] < 1 || s[i] < 1 || dil[i] < 1 || lo[i] < 0 || hi[i] < 0)
            return fail(c, "kernel, stride and dilation must be at least 1 and padding at least 0");
        kk[i] = k[i];
        eff[i] = (long)dil[i] * (k[i] - 1) + 1;
        padded[i] = (long)x->d[1 + i] + lo[i] + hi[i];
        fits &= padded[i] >= eff[i];
    }
    if (!fits) {
        bool dilated = false;
        for (int i = 0; i < nsp; i++)
            dilated |= dil[i] != 1;
        if (dilated || c->n->op == OP_CONV)
            return fail(c, "kernel %s (dilated %s) is larger than the padded input %s (pad %s)",
                        per_axis(kk, nsp, false).s, per_axis(eff, nsp, false).s,
                        per_axis(padded, nsp, true).s, pads(lo, hi, nsp).s);
        return fail(c, "kernel %s is larger than the padded input %s (pad %s)", per_axis(kk, nsp, false).s,
                    per_axis(padded, nsp, true).s, pads(lo, hi, nsp).s);
    }
    for (int i = 0; i < nsp; i++)
        out[i] = (int)((padded[i] - eff[i]) / s[i] + 1);
    return true;
}

static bool expect_param(Ctx *c, int k, const Shape *want, const char *role)
{
    const Shape *have = in_shape(c, k);
    if (shape_eq(have, want))
        return true;
    return fail(c, "the %s has shape %s, expected %s", role, dims(have).s, dims(want).s);
}

static bool infer_conv(Ctx *c)
{
    Node *n = c->n;
    const ConvParam *p = &n->p.conv;
    const Shape *x = in_shape(c, 0);
    if (!spatial_attrs(c, x, p->nsp))
        return false;
    int nsp = p->nsp;
    int cin = x->d[0];
    if (p->groups < 1 || p->out_channels < 1)
        return fail(c, "out and groups must be at least 1");
    if (cin % p->groups)
        return fail(c, "input has %d channel%s, not divisible by groups=%d", cin, cin == 1 ? "" : "s",
                    p->groups);
    if (p->out_channels % p->groups)
        return fail(c, "%d output channels are not divisible by groups=%d", p->out_channels, p->groups);
    if (n->nin != 2 + (p->bias ? 1 : 0))
        return fail(c, "has %d inputs; expected the input, the weight%s", n->nin, p->bias ? " and the bias" : "");
    Shape w = {0};
    w.rank = 2 + nsp;
    w.d[0] = p->out_channels;
    w.d[1] = cin / p->groups;
    for (int i = 0; i < nsp; i++)
        w.d[2 + i] = p->kernel[i];
    if (!expect_param(c, 1, &w, "weight"))
        return false;
    if (p->bias) {
        Shape b = {.rank = 1, .d = {p->out_channels}};
        if (!expect_param(c, 2, &b, "bias"))
            return false;
    }
    Shape y = {.rank = 1 + nsp, .batched = true};
    y.d[0] = p->out_channels;
    if (!windows(c, x, nsp, p->kernel, p->stride, p->dilation, p->pad_lo, p->pad_hi, &y.d[1]))
        return false;
    if (!check_numel(c, &y))
        return false;
    n->shape = y;
    return true;
}

/* ---- pooling and data movement ---- */

int pool_dilation(const PoolParam *p, int axis)
{
    return p->dilation[axis] > 0 ? p->dilation[axis] : 1;
}

/* ceil_mode's output size along one axis, as PyTorch: the window count
 * rounded up, less a last window that would start in the high padding. */
static int ceil_windows(int in, int k, int s, int d, int lo, int hi)
{
    long span = (long)in + lo + hi - ((long)d * (k - 1) + 1);
    long o = (span + s - 1) / s + 1;
    if ((o - 1) * s >= (long)in + lo)
        o--;
    return (int)o;
}

/* Every window along axis i must hold an input element: padding alone has
 * no maximum (netc allows any padding, as ONNX does, rather than PyTorch's
 * at most kernel/2, but no window may lie wholly in it). */
static bool windows_overlap(Ctx *c, const Shape *x, int i, int out, int d)
{
    const PoolParam *p = &c->n->p.pool;
    int in = x->d[1 + i];
    for (int o = 0; o < out; o++) {
        long start = (long)o * p->stride[i] - p->pad_lo[i];
        if (start >= 0 && start < in)
            continue; /* the first tap is inside */
        bool hit = false;
        for (int t = 0; t < p->kernel[i] && !hit; t++)
            hit = start + (long)t * d >= 0 && start + (long)t * d < in;
        if (!hit) {
            fail(c, "window %d of spatial axis %d lies entirely in the padding (pad %d+%d, input %d)", o,
                 i + 1, p->pad_lo[i], p->pad_hi[i], in);
            diag_hint(c->d, "use less padding or a larger kernel");
            return false;
        }
    }
    return true;
}

static bool infer_pool(Ctx *c)
{
    Node *n = c->n;
    const PoolParam *p = &n->p.pool;
    const Shape *x = in_shape(c, 0);
    if (!spatial_attrs(c, x, p->nsp))
        return false;
    int nsp = p->nsp;
    int dil[NETC_MAX_SPATIAL] = {0};
    for (int i = 0; i < nsp; i++)
        dil[i] = pool_dilation(p, i);
    Shape y = {.rank = x->rank, .batched = true};
    y.d[0] = x->d[0];
    if (!windows(c, x, nsp, p->kernel, p->stride, dil, p->pad_lo, p->pad_hi, &y.d[1]))
        return false;
    for (int i = 0; i < nsp; i++) {
        if (p->ceil_mode)
            y.d[1 + i] = ceil_windows(x->d[1 + i], p->kernel[i], p->stride[i], dil[i], p->pad_lo[i],
                                      p->pad_hi[i]);
        if (!windows_overlap(c, x, i, y.d[1 + i], dil[i]))
            return false;
    }
    n->shape = y;
    return true;
}

static bool infer_dense(Ctx *c)
{
    Node *n = c->n;
    const DenseParam *p = &n->p.dense;
    const Shape *x = in_shape(c, 0);
    if (!x->batched || x->rank < 1)
        return fail(c, "expects a per-sample input of rank 1 or more, got %s", dims(x).s);
    if (p->units < 1)
        return fail(c, "units must be at least 1");
    if (n->nin != 2 + (p->bias ? 1 : 0))
        return fail(c, "has %d inputs; expected the input, the weight%s", n->nin, p->bias ? " and the bias" : "");
    /* like torch.nn.Linear: over the last axis, [..., I] -> [..., units] */
    int last = x->rank - 1;
    Shape w = {.rank = 2, .d = {p->units, x->d[last]}};
    if (!expect_param(c, 1, &w, "weight"))
        return false;
    if (p->bias) {
        Shape b = {.rank = 1, .d = {p->units}};
        if (!expect_param(c, 2, &b, "bias"))
            return false;
    }
    n->shape = *x;
    n->shape.d[last] = p->units;
    return true;
}

/* ---- shape-preserving and joining ops ---- */

static bool infer_same(Ctx *c, int min_rank)
{
    const Shape *x = in_shape(c, 0);
    if (!x->batched || x->rank < min_rank)
        return fail(c, "expects a value with channels, got %s", dims(x).s);
    c->n->shape = *x;
    return true;
}

static bool infer_flatten(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    if (!x->batched || x->rank < 1)
        return fail(c, "expects a batched value, got %s", dims(x).s);
    Shape y = {.rank = 1, .batched = true};
    y.d[0] = (int)shape_numel(x);
    c->n->shape = y;
    return true;
}

static Str spatial(const Shape *s)
{
    Str r;
    int k = 0;
    r.s[0] = 0;
    for (int i = 1; i < s->rank; i++)
        k += snprintf(r.s + k, sizeof r.s - (size_t)k, "%s%d", i > 1 ? "x" : "", s->d[i]);
    return r;
}

static bool infer_join(Ctx *c)
{
    Node *n = c->n;
    if (n->nin < 2)
        return fail(c, "needs at least 2 inputs, got %d", n->nin);
    const Shape *a = in_shape(c, 0);
    if (!a->batched || a->rank < 1)
        return fail(c, "input 1 is not a batched value");
    Shape y = *a;
    int axis = n->op == OP_CONCAT ? n->p.concat.axis : 0;
    if (axis < 0 || axis >= a->rank)
        return fail(c, "axis %d is not an axis of the input %s (0 to %d)", axis, dims(a).s, a->rank - 1);
    long channels = a->d[axis];
    for (int k = 1; k < n->nin; k++) {
        const Shape *b = in_shape(c, k);
        if (b->rank != a->rank || !b->batched)
            return fail(c, "input %d has shape %s, input 1 has %s; they must have the same rank", k + 1,
                        dims(b).s, dims(a).s);
        for (int i = axis == 0 ? 1 : 0; i < a->rank; i++) {
            if (i == axis || a->d[i] == b->d[i])
                continue;
            if (axis == 0)
                return fail(c, "input %d has spatial size %s, input 1 has %s", k + 1, spatial(b).s,
                            spatial(a).s);
            return fail(c, "input %d has shape %s, input 1 has %s; they may differ only along axis %d",
                        k + 1, dims(b).s, dims(a).s, axis);
        }
        channels += b->d[axis];
    }
    if (channels > INT_MAX)
        return fail(c, "too many channels");
    y.d[axis] = (int)channels;
    if (!check_numel(c, &y))
        return false;
    n->shape = y;
    return true;
}

/* ---- activations and element-wise arithmetic ---- */

static bool infer_prelu(Ctx *c)
{
    Node *n = c->n;
    const Shape *x = in_shape(c, 0);
    if (!infer_same(c, 1))
        return false;
    if (n->nin != 2)
        return fail(c, "has %d inputs; expected the input and the weight", n->nin);
    Shape w = {.rank = 1, .d = {n->p.act.per_channel ? x->d[0] : 1}};
    return expect_param(c, 1, &w, "weight");
}

static bool infer_axis(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    if (!infer_same(c, 1))
        return false;
    int axis = c->n->p.act.axis;
    if (axis < 0 || axis >= x->rank)
        return fail(c, "axis %d is out of range for %s", axis, dims(x).s);
    return true;
}

/* Broadcasting as in PyTorch, over the per-sample shapes: they are aligned
 * at their last axes, the shorter one padded with 1s in front; along each
 * axis the sizes must agree or one of them be 1, and the result takes the
 * larger.  [4, 6, 6] with [4, 1, 1] gives [4, 6, 6]; [4, 6, 6] with [6]
 * broadcasts along the last axis. */
bool shape_broadcast(const Shape *a, const Shape *b, Shape *out, int *bad_axis)
{
    Shape y = {.rank = a->rank > b->rank ? a->rank : b->rank, .batched = a->batched};
    for (int k = 1; k <= y.rank; k++) {
        int da = k <= a->rank ? a->d[a->rank - k] : 1;
        int db = k <= b->rank ? b->d[b->rank - k] : 1;
        if (da != db && da != 1 && db != 1) {
            *bad_axis = -k;
            return false;
        }
        y.d[y.rank - k] = da > db ? da : db;
    }
    *out = y;
    return true;
}

static bool infer_bcast(Ctx *c)
{
    Node *n = c->n;
    if (n->nin < 2)
        return fail(c, "needs at least 2 inputs, got %d", n->nin);
    Shape y = *in_shape(c, 0);
    for (int k = 0; k < n->nin; k++) {
        const Shape *b = in_shape(c, k);
        if (!b->batched)
            return fail(c, "input %d is not a batched value", k + 1);
        int axis;
        if (shape_broadcast(&y, b, &y, &axis))
            continue;
        if (k == 1)
            fail(c, "input 2 has shape %s, input 1 has %s", dims(b).s, dims(&y).s);
        else
            fail(c, "input %d has shape %s, the inputs before it broadcast to %s", k + 1, dims(b).s,
                 dims(&y).s);
        diag_hint(c->d, "the shapes do not broadcast at axis %d (from the end): shapes align at "
                  "their last axes and each size must agree or be 1, so a per-channel value is "
                  "[C, 1, 1]", axis);
        return false;
    }
    if (!check_numel(c, &y))
        return false;
    n->shape = y;
    return true;
}

/* ---- dense and matmul ---- */

/* matmul: [.., M, K] x [.., K, N] -> [.., M, N], the leading axes equal. */
static bool infer_matmul(Ctx *c)
{
    const Shape *a = in_shape(c, 0), *b = in_shape(c, 1);
    if (!a->batched || !b->batched || a->rank < 2 || b->rank < 2)
        return fail(c, "expects two per-sample values of rank 2 or more, got %s and %s", dims(a).s,
                    dims(b).s);
    int r = a->rank;
    if (b->rank != r || memcmp(a->d, b->d, sizeof(int) * (size_t)(r - 2)) != 0) {
        fail(c, "the leading axes differ: %s x %s", dims(a).s, dims(b).s);
        diag_hint(c->d, "both inputs need the same rank and the same sizes before the last two axes");
        return false;
    }
    if (a->d[r - 1] != b->d[r - 2]) {
        fail(c, "inner sizes differ: %s x %s (%d columns, %d rows)", dims(a).s, dims(b).s, a->d[r - 1],
             b->d[r - 2]);
        diag_hint(c->d, "a [.., M, K] times b [.., K, N]: a's last axis must equal b's second-to-last");
        return false;
    }
    Shape y = *a;
    y.d[r - 1] = b->d[r - 1];
    if (!check_numel(c, &y))
        return false;
    c->n->shape = y;
    return true;
}

bool loss_takes_class(Op op)
{
    return op == OP_SOFTMAX_XENT || op == OP_NLL;
}

Shape loss_target_shape(Op op, const Shape *pred)
{
    Shape t = *pred;
    t.batched = true;
    if (loss_takes_class(op) && t.rank >= 1) {
        for (int i = 1; i < t.rank; i++)
            t.d[i - 1] = t.d[i];
        t.rank--;
    }
    return t;
}

/* Class losses: pred [C, S...] scored against one class index per
 * position [S...]; the others: a target of the prediction's shape. */
static bool infer_loss(Ctx *c)
{
    Node *n = c->n;
    if (n->nin != 2)
        return fail(c, "needs a prediction and a target");
    const Shape *p = in_shape(c, 0), *t = in_shape(c, 1);
    const LossParam *l = &n->p.loss;
    if (!p->batched)
        return fail(c, "the prediction %s is not a batched value", dims(p).s);
    Shape want = loss_target_shape(n->op, p);
    if (loss_takes_class(n->op)) {
        if (p->rank < 1)
            return fail(c, "expects scores with a class axis ([C] or [C, positions...]), got %s",
                        dims(p).s);
        if (l->weight && l->nweight != p->d[0])
            return fail(c, "has %d class weights for the %d classes of %s", l->nweight, p->d[0],
                        dims(p).s);
        if (!shape_eq(t, &want))
            return fail(c, "the target has shape %s; the scores %s need one class index per "
                        "position, %s", dims(t).s, dims(p).s, dims(&want).s);
    } else {
        if (l->pos_weight && l->npos_weight != (p->rank ? p->d[0] : 1))
            return fail(c, "has %d positive weights for the %d channels of %s", l->npos_weight,
                        p->rank ? p->d[0] : 1, dims(p).s);
        if (!shape_eq(t, &want))
            return fail(c, "the prediction has shape %s, the target %s", dims(p).s, dims(t).s);
    }
    n->shape = (Shape){.rank = 0, .batched = false};
    return true;
}

/* ---- pooling and data movement (continued) ---- */

/* A global pool is the pool whose one window is the whole input: its
 * PoolParam is filled here, for the pooling lowerings and gradients. */
static bool infer_global_pool(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    if (!spatial_input(c, x))
        return false;
    PoolParam *p = &c->n->p.pool;
    memset(p, 0, sizeof *p);
    p->nsp = x->rank - 1;
    p->count_include_pad = true;
    Shape y = *x;
    for (int i = 1; i < y.rank; i++) {
        p->kernel[i - 1] = p->stride[i - 1] = x->d[i];
        y.d[i] = 1;
    }
    c->n->shape = y;
    return true;
}

static bool infer_adaptive_pool(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    const PoolParam *p = &c->n->p.pool;
    if (!spatial_input(c, x))
        return false;
    if (p->nsp != x->rank - 1)
        return fail(c, "its size is for %d spatial axes, the input %s has %d", p->nsp, dims(x).s, x->rank - 1);
    Shape y = *x;
    for (int i = 0; i < p->nsp; i++) {
        if (p->size[i] < 1)
            return fail(c, "size must be at least 1");
        y.d[1 + i] = p->size[i];
    }
    c->n->shape = y;
    return check_numel(c, &y);
}

static const char *const axis_names[3][3] = {{"L"}, {"H", "W"}, {"D", "H", "W"}};

static bool infer_pad(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    const PadParam *p = &c->n->p.pad;
    if (!spatial_input(c, x))
        return false;
    int nsp = x->rank - 1;
    if (p->nsp != nsp)
        return fail(c, "its pad is for %d spatial axes, the input %s has %d", p->nsp, dims(x).s, nsp);
    Shape y = *x;
    for (int i = 0; i < nsp; i++) {
        if (p->lo[i] < 0 || p->hi[i] < 0)
            return fail(c, "padding must be at least 0");
        int in = x->d[1 + i], worst = p->lo[i] > p->hi[i] ? p->lo[i] : p->hi[i];
        if (p->mode == PAD_REFLECT && worst >= in) {
            fail(c, "reflect pad %d on axis %s must be less than its size %d", worst, axis_names[nsp - 1][i],
                 in);
            diag_hint(c->d, "reflection mirrors the input without repeating its edge; mode=replicate "
                            "repeats the edge and allows any padding");
            return false;
        }
        long o = (long)in + p->lo[i] + p->hi[i];
        if (o > INT_MAX)
            return fail(c, "the padded size is too large");
        y.d[1 + i] = (int)o;
    }
    c->n->shape = y;
    return check_numel(c, &y);
}

static bool infer_upsample(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    const UpsampleParam *p = &c->n->p.up;
    if (!spatial_input(c, x))
        return false;
    int nsp = x->rank - 1;
    if (p->nsp != nsp)
        return fail(c, "its %s is for %d spatial axes, the input %s has %d", p->by_size ? "size" : "scale",
                    p->nsp, dims(x).s, nsp);
    static const char *const modes[] = {"", "linear", "bilinear", "trilinear"};
    static const char *const forms[] = {"", "[C, L]", "[C, H, W]", "[C, D, H, W]"};
    if (p->linear && p->linear != nsp) {
        fail(c, "mode=%s is for %s inputs, got %s", modes[p->linear], forms[p->linear], dims(x).s);
        diag_hint(c->d, "mode=%s interpolates a %s input", modes[nsp], forms[nsp]);
        return false;
    }
    Shape y = *x;
    for (int i = 0; i < nsp; i++) {
        long o = p->by_size ? p->size[i] : (long)x->d[1 + i] * p->scale[i];
        if (o < 1 || o > INT_MAX)
            return fail(c, "the output size along axis %s is out of range", axis_names[nsp - 1][i]);
        y.d[1 + i] = (int)o;
    }
    c->n->shape = y;
    return check_numel(c, &y);
}

/* The view and permutation of a shuffle (see PermParam in ir.h). */
static void set_view(PermParam *p, int rank, const int *dims, const int *perm)
{
    p->rank = rank;
    for (int i = 0; i < rank; i++) {
        p->dims[i] = dims[i];
        p->perm[i] = perm[i];
    }
}

static bool infer_shuffle(Ctx *c)
{
    Node *n = c->n;
    PermParam *p = &n->p.perm;
    const Shape *x = in_shape(c, 0);
    int r = p->factor;
    if (r < 1)
        return fail(c, "%s must be at least 1", n->op == OP_CHANNEL_SHUFFLE ? "groups" : "r");
    Shape y = *x;
    if (n->op == OP_CHANNEL_SHUFFLE) {
        if (!x->batched || x->rank < 1)
            return fail(c, "expects a value with channels, got %s", dims(x).s);
        if (x->d[0] % r)
            return fail(c, "input has %d channels, not divisible by groups=%d", x->d[0], r);
        int rest = (int)(shape_numel(x) / x->d[0]);
        set_view(p, 3, (int[]){r, x->d[0] / r, rest}, (int[]){1, 0, 2});
        n->shape = y;
        return true;
    }
    if (!x->batched || x->rank != 3)
        return fail(c, "expects a [C, H, W] input, got %s", dims(x).s);
    int C = x->d[0], H = x->d[1], W = x->d[2];
    bool to_space = n->op == OP_PIXEL_SHUFFLE || n->op == OP_DEPTH_TO_SPACE;
    if (to_space) {
        if ((long)r * r > C || C % (r * r)) {
            fail(c, "input has %d channels, not divisible by r*r = %ld", C, (long)r * r);
            diag_hint(c->d, "the channels hold r*r blocks of the output channels");
            return false;
        }
        if ((long)H * r > INT_MAX || (long)W * r > INT_MAX)
            return fail(c, "the output is too large");
        int Co = C / (r * r);
        y.d[0] = Co;
        y.d[1] = H * r;
        y.d[2] = W * r;
        if (n->op == OP_PIXEL_SHUFFLE)
            set_view(p, 5, (int[]){Co, r, r, H, W}, (int[]){0, 3, 1, 4, 2});
        else
            set_view(p, 5, (int[]){r, r, Co, H, W}, (int[]){2, 3, 0, 4, 1});
    } else {
        if (H % r || W % r)
            return fail(c, "input size %dx%d is not divisible by r=%d", H, W, r);
        if ((long)C * r * r > INT_MAX)
            return fail(c, "the output has too many channels");
        y.d[0] = C * r * r;
        y.d[1] = H / r;
        y.d[2] = W / r;
        int v[5] = {C, H / r, r, W / r, r};
        if (n->op == OP_PIXEL_UNSHUFFLE)
            set_view(p, 5, v, (int[]){0, 2, 4, 1, 3});
        else
            set_view(p, 5, v, (int[]){2, 4, 0, 1, 3});
    }
    n->shape = y;
    return true;
}

static bool infer_slice(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    const SliceParam *p = &c->n->p.slice;
    if (!x->batched || x->rank < 1)
        return fail(c, "expects a batched value, got %s", dims(x).s);
    if (p->axis < 0 || p->axis >= x->rank)
        return fail(c, "axis %d is not an axis of the input %s (0 to %d)", p->axis, dims(x).s, x->rank - 1);
    int size = x->d[p->axis];
    if (p->begin < 0 || p->begin >= p->end || p->end > size) {
        fail(c, "[%d, %d) is not a non-empty range of axis %d, whose size is %d", p->begin, p->end, p->axis,
             size);
        diag_hint(c->d, "begin and end must satisfy 0 <= begin < end <= %d", size);
        return false;
    }
    Shape y = *x;
    y.d[p->axis] = p->end - p->begin;
    c->n->shape = y;
    return true;
}

static bool infer_reshape(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    const ReshapeParam *p = &c->n->p.reshape;
    if (!x->batched)
        return fail(c, "expects a batched value, got %s", dims(x).s);
    if (p->rank < 1 || p->rank > NETC_MAX_RANK)
        return fail(c, "shape must have 1 to %d entries", NETC_MAX_RANK);
    Shape y = {.rank = p->rank, .batched = true};
    long known = 1;
    int free_axis = -1;
    for (int i = 0; i < p->rank; i++) {
        if (p->d[i] == -1 && free_axis < 0) {
            free_axis = i;
            continue;
        }
        if (p->d[i] < 1)
            return fail(c, "shape entries must be at least 1, with one -1 at most");
        known *= p->d[i];
        if (known > INT_MAX)
            return fail(c, "the shape has more than %d elements", INT_MAX);
        y.d[i] = p->d[i];
    }
    long numel = shape_numel(x);
    if (free_axis >= 0) {
        if (numel % known)
            return fail(c, "the input %s has %ld elements, not a multiple of %ld", dims(x).s, numel, known);
        y.d[free_axis] = (int)(numel / known);
    }
    if (shape_numel(&y) != numel)
        return fail(c, "the input %s has %ld elements, the shape %s has %ld", dims(x).s, numel, dims(&y).s,
                    shape_numel(&y));
    c->n->shape = y;
    return true;
}

/* ---- normalisation and regularisation ---- */

/* batchnorm: [C, ...] with 1 to 3 spatial axes; weight, bias, running
 * mean and variance are [C]. */
static bool infer_batchnorm(Ctx *c)
{
    const Shape *x = in_shape(c, 0);
    if (!spatial_input(c, x))
        return false;
    const NormParam *q = &c->n->p.norm;
    int want = 1 + 2 * q->affine + 2 * q->track;
    if (c->n->nin != want)
        return fail(c, "has %d inputs, expected %d", c->n->nin, want);
    Shape ch = {.rank = 1, .d = {x->d[0]}};
    static const char *const roles[] = {"weight", "bias", "running mean", "running variance"};
    for (int k = 1; k < want; k++)
        if (!expect_param(c, k, &ch, roles[q->affine ? k - 1 : k + 1]))
            return false;
    c->n->shape = *x;
    return true;
}

static bool infer_dropout(Ctx *c)
{
    const Shape *step = in_shape(c, 1);
    if (c->n->nin != 2 || step->batched || step->rank != 0)
        return fail(c, "expects a value and its step counter");
    return infer_same(c, c->n->op == OP_DROPOUT2D ? 2 : 0);
}

/* conv_transpose: p describes the matching conv (out_channels = this
 * layer's input channels); the weight [C_in, C_out/g, k...] gives C_out. */
static bool infer_conv_transpose(Ctx *c)
{
    Node *n = c->n;
    const ConvParam *p = &n->p.conv;
    const Shape *x = in_shape(c, 0);
    if (!spatial_attrs(c, x, p->nsp))
        return false;
    int nsp = p->nsp;
    if (n->nin != 2 + (p->bias ? 1 : 0))
        return fail(c, "has %d inputs; expected the input, the weight%s", n->nin,
                    p->bias ? " and the bias" : "");
    const Shape *w = in_shape(c, 1);
    if (p->groups < 1 || x->d[0] % p->groups || w->rank != 2 + nsp)
        return fail(c, "input channels %d and groups=%d do not match the weight %s", x->d[0], p->groups,
                    dims(w).s);
    Shape want = *w;
    want.d[0] = x->d[0];
    for (int i = 0; i < nsp; i++)
        want.d[2 + i] = p->kernel[i];
    if (!expect_param(c, 1, &want, "weight"))
        return false;
    Shape y = {.rank = 1 + nsp, .batched = true};
    y.d[0] = w->d[1] * p->groups;
    if (p->bias) {
        Shape b = {.rank = 1, .d = {y.d[0]}};
        if (!expect_param(c, 2, &b, "bias"))
            return false;
    }
    for (int i = 0; i < nsp; i++) {
        if (p->kernel[i] < 1 || p->stride[i] < 1 || p->dilation[i] < 1 || p->pad_lo[i] < 0 ||
            p->pad_hi[i] < 0)
            return fail(c, "kernel, stride and dilation must be at least 1 and padding at least 0");
        long o = (long)(x->d[1 + i] - 1) * p->stride[i] - p->pad_lo[i] - p->pad_hi[i] +
                 (long)p->dilation[i] * (p->kernel[i] - 1) + 1 + p->out_pad[i];
        if (o < 1 || o > INT_MAX)
            return fail(c, "the padding %s leaves an output of %ld along axis %d",
                        pads(p->pad_lo, p->pad_hi, nsp).s, o, i);
        y.d[1 + i] = (int)o;
    }
    if (!check_numel(c, &y))
        return false;
    n->shape = y;
    return true;
}

bool shape_infer(Graph *g, Node *n, struct Diag *d)
{
    unsigned f = op_flags(n->op);
    if (f & OPF_SOURCE)
        return true;
    if (!(f & (OPF_LAYER | OPF_LOSS)))
        return true; /* gradient ops: autodiff sets their shapes */
    Ctx c = {g, n, d, ""};
    snprintf(c.what, sizeof c.what, "%s %s", op_name(n->op), n->name);
    if (n->nin < 1)
        return fail(&c, "has no input");
    switch (n->op) {
    case OP_CONV: return infer_conv(&c);
    case OP_MAXPOOL:
    case OP_AVGPOOL: return infer_pool(&c);
    case OP_DENSE: return infer_dense(&c);
    case OP_FLATTEN: return infer_flatten(&c);
    case OP_RELU:
    case OP_TANH:
    case OP_SIGMOID: return infer_same(&c, 0);
    case OP_CONCAT: return infer_join(&c);
    case OP_LEAKY_RELU:
    case OP_ELU:
    case OP_SELU:
    case OP_SOFTPLUS:
    case OP_HARD_SIGMOID:
    case OP_HARD_SWISH:
    case OP_RELU6:
    case OP_CLIP: return infer_same(&c, 0);
    case OP_PRELU: return infer_prelu(&c);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: return infer_axis(&c);
    case OP_ADD:
    case OP_SUB:
    case OP_MUL: return infer_bcast(&c);
    case OP_SOFTMAX_XENT:
    case OP_MSE:
    case OP_NLL:
    case OP_BCE_LOGITS:
    case OP_L1:
    case OP_SMOOTH_L1: return infer_loss(&c);
    /* normalisation and regularisation */
    case OP_BATCHNORM: return infer_batchnorm(&c);
    case OP_LRN: return infer_same(&c, 2);
    case OP_DROPOUT:
    case OP_DROPOUT2D: return infer_dropout(&c);
    /* pooling and data movement */
    case OP_GLOBAL_AVGPOOL:
    case OP_GLOBAL_MAXPOOL: return infer_global_pool(&c);
    case OP_ADAPTIVE_AVGPOOL: return infer_adaptive_pool(&c);
    case OP_PAD: return infer_pad(&c);
    case OP_UPSAMPLE: return infer_upsample(&c);
    case OP_PIXEL_SHUFFLE:
    case OP_PIXEL_UNSHUFFLE:
    case OP_DEPTH_TO_SPACE:
    case OP_SPACE_TO_DEPTH:
    case OP_CHANNEL_SHUFFLE: return infer_shuffle(&c);
    case OP_SLICE: return infer_slice(&c);
    case OP_RESHAPE: return infer_reshape(&c);
    /* dense and matmul */
    case OP_MATMUL: return infer_matmul(&c);
    /* transposed convolution */
    case OP_CONV_TRANSPOSE: return infer_conv_transpose(&c);
    default: return fail(&c, "has no shape rule");
    }
}

long node_macs(const Graph *g, const Node *n)
{
    switch (n->op) {
    case OP_CONV: {
        const Shape *x = &graph_node(g, n->in[0])->shape;
        const ConvParam *p = &n->p.conv;
        long k = 1;
        for (int i = 0; i < p->nsp; i++)
            k *= p->kernel[i];
        return shape_numel(&n->shape) * (x->d[0] / (p->groups > 0 ? p->groups : 1)) * k;
    }
    case OP_DENSE: {
        const Shape *x = &graph_node(g, n->in[0])->shape;
        return shape_numel(x) * n->p.dense.units;
    }
    /* normalisation: a multiply-add per element (batch norm's scale and
     * shift), one per window tap (lrn's sum of squares) */
    case OP_BATCHNORM: return shape_numel(&n->shape);
    case OP_LRN: return shape_numel(&n->shape) * n->p.lrn.size;
    /* dense and matmul: K per output */
    case OP_MATMUL: {
        const Shape *a = &graph_node(g, n->in[0])->shape;
        return shape_numel(&n->shape) * a->d[a->rank - 1];
    }
    /* transposed convolution: the matching conv's count, x its output */
    case OP_CONV_TRANSPOSE: {
        const Shape *x = &graph_node(g, n->in[0])->shape;
        const ConvParam *p = &n->p.conv;
        long k = 1;
        for (int i = 0; i < p->nsp; i++)
            k *= p->kernel[i];
        return shape_numel(x) * (n->shape.d[0] / (p->groups > 0 ? p->groups : 1)) * k;
    }
    default:
        return 0;
    }
}
