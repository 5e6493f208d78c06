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
    if (!spatial_input(c, x))
        return false;
    int nsp = x->rank - 1;
    if (p->nsp != nsp)
        return fail(c, "its attributes are for %d spatial axes, the input %s has %d", p->nsp, dims(x).s, nsp);
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

static bool infer_pool(Ctx *c)
{
    Node *n = c->n;
    const PoolParam *p = &n->p.pool;
    const Shape *x = in_shape(c, 0);
    if (!spatial_input(c, x))
        return false;
    int nsp = x->rank - 1;
    if (p->nsp != nsp)
        return fail(c, "its attributes are for %d spatial axes, the input %s has %d", p->nsp, dims(x).s, nsp);
    for (int i = 0; i < nsp; i++) {
        int worst = p->pad_lo[i] > p->pad_hi[i] ? p->pad_lo[i] : p->pad_hi[i];
        if (worst > p->kernel[i] / 2) {
            fail(c, "pad %d is more than half the kernel %d", worst, p->kernel[i]);
            diag_hint(c->d, "pooling padding must be at most kernel/2 (as in PyTorch)");
            return false;
        }
    }
    static const int ones[3] = {1, 1, 1};
    Shape y = {.rank = x->rank, .batched = true};
    y.d[0] = x->d[0];
    if (!windows(c, x, nsp, p->kernel, p->stride, ones, p->pad_lo, p->pad_hi, &y.d[1]))
        return false;
    n->shape = y;
    return true;
}

static bool infer_dense(Ctx *c)
{
    Node *n = c->n;
    const DenseParam *p = &n->p.dense;
    const Shape *x = in_shape(c, 0);
    if (!x->batched || x->rank != 1) {
        fail(c, "expects a rank-1 input, got %s", dims(x).s);
        if (x->rank > 1)
            diag_hint(c->d, "insert `flatten` before it");
        return false;
    }
    if (p->units < 1)
        return fail(c, "units must be at least 1");
    if (n->nin != 2 + (p->bias ? 1 : 0))
        return fail(c, "has %d inputs; expected the input, the weight%s", n->nin, p->bias ? " and the bias" : "");
    Shape w = {.rank = 2, .d = {p->units, x->d[0]}};
    if (!expect_param(c, 1, &w, "weight"))
        return false;
    if (p->bias) {
        Shape b = {.rank = 1, .d = {p->units}};
        if (!expect_param(c, 2, &b, "bias"))
            return false;
    }
    n->shape = (Shape){.rank = 1, .d = {p->units}, .batched = true};
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
    long channels = a->d[0];
    for (int k = 1; k < n->nin; k++) {
        const Shape *b = in_shape(c, k);
        if (b->rank != a->rank || !b->batched)
            return fail(c, "input %d has shape %s, input 1 has %s; they must have the same rank", k + 1,
                        dims(b).s, dims(a).s);
        for (int i = 1; i < a->rank; i++)
            if (a->d[i] != b->d[i])
                return fail(c, "input %d has spatial size %s, input 1 has %s", k + 1, spatial(b).s,
                            spatial(a).s);
        channels += b->d[0];
    }
    if (channels > INT_MAX)
        return fail(c, "too many channels");
    y.d[0] = (int)channels;
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
        return (long)x->d[0] * n->p.dense.units;
    }
    /* normalisation: a multiply-add per element (batch norm's scale and
     * shift), one per window tap (lrn's sum of squares) */
    case OP_BATCHNORM: return shape_numel(&n->shape);
    case OP_LRN: return shape_numel(&n->shape) * n->p.lrn.size;
    default:
        return 0;
    }
}
