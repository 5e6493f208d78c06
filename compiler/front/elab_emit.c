/* elab_emit.c - the last step of elaboration: the expanded layer instances
 * become graph nodes.
 *
 * Needs: the Elaborator after expansion (elab.c): instances in source
 * order, value slots resolved to their producers, outputs and the loss
 * named.  Provides: m->g with inputs first, then every instance after the
 * instances it reads (a depth-first walk, which is where cycles are found),
 * each conv and dense preceded by its weight and bias PARAMs, every shape
 * inferred as soon as its node is added; then the outputs, the loss target
 * and the loss.  An instance whose input failed is skipped without a word.
 * A convolution form becomes its convs (elab_forms.c, through
 * elab_emit_layer).
 *
 *   x -> c: conv(4, kernel=3) => a      %0 = input x
 *                                       %1 = param c.weight [4, 3, 3, 3]
 *                                       %2 = param c.bias [4]
 *                                       %3 = conv c(%0, %1, %2)
 */
#include "elab.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *value_name_of(const Elaborator *X, int i)
{
    return X->inst[i].value_name ? X->inst[i].value_name : X->inst[i].name;
}

/* stack[0..n) is a dependency path: stack[k+1] feeds stack[k], and
 * stack[n-1] reads stack[0]'s result. */
static void report_cycle(Elaborator *X, const int *stack, int n)
{
    int first = 0;
    for (int k = 1; k < n; k++)
        if (stack[k] < stack[first])
            first = k;
    /* Data flows stack[n-1] -> ... -> stack[0] -> stack[n-1]; print it
     * from the value the earliest layer reads. */
    Buf b = {0};
    int start = (first + 1) % n;
    for (int k = 0; k <= n; k++) {
        int idx = ((start - k) % n + n) % n;
        buf_printf(&b, "%s%s", k ? " -> " : "", value_name_of(X, stack[idx]));
    }
    const Inst *I = &X->inst[stack[first]];
    X->E.scope = I->scope;
    elab_error(&X->E, I->loc, I->len, "cycle: %s", b.s);
    elab_hint(&X->E, "a value cannot be computed from itself");
    buf_free(&b);
    for (int k = 0; k < n; k++)
        X->inst[stack[k]].bad = true;
}

static bool name_free(Elaborator *X, const char *name, SrcLoc loc, int len)
{
    if (strmap_get(&X->node_names, name) >= 0)
        return elab_error(&X->E, loc, len, "the name '%s' is used twice", name);
    strmap_put(X->E.a, &X->node_names, arena_strdup(X->E.a, name), 1);
    return true;
}

static Node *add_node(Elaborator *X, Op op, const char *name, SrcLoc loc, int len, int nin, const int *in)
{
    if (!name_free(X, name, loc, len))
        return NULL;
    return graph_add(X->E.m->g, op, name, loc, nin, in);
}

static const Value *attr_of(const Inst *I, const char *name)
{
    int k = schema_attr_index(I->schema, name);
    return k >= 0 ? I->attr[k] : NULL;
}

/* A default from the schema's documented text: "1", "true", "0". */
static Value default_of(Elaborator *X, const Inst *I, const char *name)
{
    Value v;
    memset(&v, 0, sizeof v);
    v.loc = I->loc;
    v.len = I->len;
    const AttrSpec *a = &I->schema->attr[schema_attr_index(I->schema, name)];
    NETC_ASSERT(a->def);
    if (a->def[0] >= '0' && a->def[0] <= '9' && strpbrk(a->def, ".e")) {
        v.kind = VAL_FLOAT;
        v.f = strtod(a->def, NULL);
    } else if (a->def[0] >= '0' && a->def[0] <= '9') {
        v.kind = VAL_INT;
        v.i = atoi(a->def);
    } else {
        v.kind = VAL_NAME;
        v.s = a->def;
    }
    (void)X;
    return v;
}

static const Value *attr_or_default(Elaborator *X, const Inst *I, const char *name, Value *tmp)
{
    const Value *v = attr_of(I, name);
    if (v)
        return v;
    *tmp = default_of(X, I, name);
    return tmp;
}

static const AttrSpec *spec_of(const Inst *I, const char *name)
{
    return &I->schema->attr[schema_attr_index(I->schema, name)];
}

static bool read_int(Elaborator *X, const Inst *I, const char *name, int *out)
{
    Value t;
    return value_int(&X->E, I->what, spec_of(I, name), attr_or_default(X, I, name, &t), out);
}

static bool read_bool(Elaborator *X, const Inst *I, const char *name, bool *out)
{
    Value t;
    return value_bool(&X->E, I->what, spec_of(I, name), attr_or_default(X, I, name, &t), out);
}

static bool read_axes(Elaborator *X, const Inst *I, const char *name, int nsp, int out[NETC_MAX_SPATIAL])
{
    Value t;
    return value_axes(&X->E, I->what, spec_of(I, name), attr_or_default(X, I, name, &t), nsp, out);
}

static bool read_pad(Elaborator *X, const Inst *I, int nsp, const int *in, const int *k,
                     const int *s, const int *d, int *lo, int *hi)
{
    Value t;
    return value_pad(&X->E, I->what, spec_of(I, "pad"), attr_or_default(X, I, "pad", &t), nsp, in, k,
                     s, d, lo, hi);
}

static bool conv_param(Elaborator *X, const Inst *I, const Shape *x, ConvParam *p)
{
    int nsp = x->rank - 1;
    bool ok = true;
    memset(p, 0, sizeof *p);
    p->nsp = nsp;
    ok &= read_int(X, I, "out", &p->out_channels);
    ok &= read_axes(X, I, "kernel", nsp, p->kernel);
    ok &= read_axes(X, I, "stride", nsp, p->stride);
    ok &= read_axes(X, I, "dilation", nsp, p->dilation);
    ok &= read_int(X, I, "groups", &p->groups);
    ok &= read_bool(X, I, "bias", &p->bias);
    Value t;
    ok &= value_algo(&X->E, I->what, spec_of(I, "algo"), attr_or_default(X, I, "algo", &t), &p->algo);
    if (ok)
        ok = read_pad(X, I, nsp, &x->d[1], p->kernel, p->stride, p->dilation, p->pad_lo, p->pad_hi);
    return ok;
}

/* conv_transpose */
/* A located error at attribute `name` (or the layer when defaulted). */
static bool attr_error(Elaborator *X, const Inst *I, const char *name, const char *what)
{
    const Value *v = attr_of(I, name);
    return elab_error(&X->E, v ? v->loc : I->loc, v ? v->len : I->len, "%s: %s", I->what, what);
}

/* output_padding along each axis, given or derived from output_size: the
 * output extent beyond (in - 1)*stride - pads + dilation*(kernel - 1) + 1,
 * smaller than the stride (so the matching conv maps the output back onto
 * the input). */
static bool out_pad_error(Elaborator *X, const Inst *I, const ConvParam *p, int axis, bool sized, int size,
                          long base)
{
    char msg[160];
    if (sized)
        snprintf(msg, sizeof msg, "output_size %d along axis %d is impossible: it must be %ld to %ld", size,
                 axis, base, base + p->stride[axis] - 1);
    else
        snprintf(msg, sizeof msg, "output_padding %d along axis %d must be smaller than stride %d",
                 p->out_pad[axis], axis, p->stride[axis]);
    attr_error(X, I, sized ? "output_size" : "output_padding", msg);
    if (!sized && p->out_pad[axis] < p->dilation[axis])
        elab_hint(&X->E, "netc needs output_padding below the stride (PyTorch also accepts it below the "
                         "dilation)");
    else if (!sized)
        elab_hint(&X->E, "a larger output needs a larger stride, or output_size=; pad= removes output "
                         "pixels");
    return false;
}

static bool transpose_out_pad(Elaborator *X, const Inst *I, const Shape *x, ConvParam *p)
{
    int size[NETC_MAX_SPATIAL];
    bool sized = attr_of(I, "output_size") != NULL;
    if (sized && attr_of(I, "output_padding"))
        return attr_error(X, I, "output_size", "give output_size or output_padding, not both");
    bool ok = sized ? read_axes(X, I, "output_size", p->nsp, size)
                    : read_axes(X, I, "output_padding", p->nsp, p->out_pad);
    for (int i = 0; ok && i < p->nsp; i++) {
        long base = (long)(x->d[1 + i] - 1) * p->stride[i] - p->pad_lo[i] - p->pad_hi[i] +
                    (long)p->dilation[i] * (p->kernel[i] - 1) + 1;
        long pad = sized ? size[i] - base : p->out_pad[i];
        if (pad < 0 || pad >= p->stride[i])
            return out_pad_error(X, I, p, i, sized, sized ? size[i] : 0, base);
        p->out_pad[i] = (int)pad;
    }
    return ok;
}

/* The attributes of a conv_transpose, p->out_channels still the layer's
 * output channels (add_params reads them; conv_transpose_as_conv then
 * makes p the matching conv's). */
static bool conv_transpose_param(Elaborator *X, const Inst *I, const Shape *x, ConvParam *p)
{
    int nsp = x->rank - 1;
    bool ok = true;
    memset(p, 0, sizeof *p);
    p->nsp = nsp;
    ok &= read_int(X, I, "out", &p->out_channels);
    ok &= read_axes(X, I, "kernel", nsp, p->kernel);
    ok &= read_axes(X, I, "stride", nsp, p->stride);
    ok &= read_axes(X, I, "dilation", nsp, p->dilation);
    ok &= read_int(X, I, "groups", &p->groups);
    ok &= read_bool(X, I, "bias", &p->bias);
    if (!ok)
        return false;
    const Value *pad = attr_of(I, "pad");
    if (pad && pad->kind == VAL_NAME && !strcmp(pad->s, "same"))
        return attr_error(X, I, "pad",
                          "pad=same is not defined for a transposed convolution; give the padding");
    if (x->d[0] % p->groups || p->out_channels % p->groups) {
        char msg[128];
        snprintf(msg, sizeof msg, "groups=%d must divide the %d input and %d output channels", p->groups,
                 x->d[0], p->out_channels);
        return attr_error(X, I, "groups", msg);
    }
    return read_pad(X, I, nsp, &x->d[1], p->kernel, p->stride, p->dilation, p->pad_lo, p->pad_hi) &&
           transpose_out_pad(X, I, x, p);
}

static bool pool_param(Elaborator *X, const Inst *I, const Shape *x, PoolParam *p)
{
    int nsp = x->rank - 1;
    memset(p, 0, sizeof *p);
    p->nsp = nsp;
    bool ok = read_axes(X, I, "kernel", nsp, p->kernel);
    if (attr_of(I, "stride"))
        ok &= read_axes(X, I, "stride", nsp, p->stride);
    else
        memcpy(p->stride, p->kernel, sizeof p->stride);
    p->count_include_pad = true;
    if (I->op == OP_AVGPOOL)
        ok &= read_bool(X, I, "count_include_pad", &p->count_include_pad);
    static const int ones[NETC_MAX_SPATIAL] = {1, 1, 1};
    memcpy(p->dilation, ones, sizeof p->dilation);
    if (I->op == OP_MAXPOOL)
        ok &= read_axes(X, I, "dilation", nsp, p->dilation);
    ok &= read_bool(X, I, "ceil_mode", &p->ceil_mode);
    if (ok)
        ok = read_pad(X, I, nsp, &x->d[1], p->kernel, p->stride, p->dilation, p->pad_lo, p->pad_hi);
    return ok;
}

/* ---- pooling and data movement ---- */

/* An ATTR_WORD: *out is the index of the value among words[0..n). */
static bool read_word(Elaborator *X, const Inst *I, const char *name, const char *const *words, int n,
                      int *out)
{
    Value t;
    const Value *v = attr_or_default(X, I, name, &t);
    for (int i = 0; v->kind == VAL_NAME && i < n; i++) {
        if (!strcmp(v->s, words[i])) {
            *out = i;
            return true;
        }
    }
    char list[128] = "";
    for (int i = 0, k = 0; i < n; i++)
        k += snprintf(list + k, sizeof list - (size_t)k, "%s%s", i ? (i == n - 1 ? " or " : ", ") : "",
                      words[i]);
    elab_error(&X->E, v->loc, v->len, "%s: %s expects %s, got %s", I->what, name, list,
               value_describe(&X->E, v));
    const char *sug = v->kind == VAL_NAME || v->kind == VAL_STRING ? diag_suggest(v->s, words, n) : NULL;
    if (sug)
        elab_hint(&X->E, "did you mean '%s'?", sug);
    return false;
}

/* An ATTR_DIMS list: reshape's shape. */
static bool read_dims(Elaborator *X, const Inst *I, ReshapeParam *p)
{
    const Value *v = attr_of(I, "shape");
    if (v->kind != VAL_LIST || v->n < 1 || v->n > NETC_MAX_RANK)
        return elab_error(&X->E, v->loc, v->len, "%s: shape expects a list of 1 to %d integers, got %s",
                          I->what, NETC_MAX_RANK, value_describe(&X->E, v));
    int free_axes = 0;
    p->rank = v->n;
    for (int i = 0; i < v->n; i++) {
        const Value *d = &v->item[i];
        if (d->kind != VAL_INT || d->i == 0 || d->i < -1 || d->i > INT_MAX)
            return elab_error(&X->E, d->loc, d->len, "%s: shape entries must be integers >= 1 or -1, got %s",
                              I->what, value_describe(&X->E, d));
        free_axes += d->i == -1;
        p->d[i] = (int)d->i;
    }
    if (free_axes > 1)
        return elab_error(&X->E, v->loc, v->len, "%s: shape has %d entries of -1; at most one is inferred",
                          I->what, free_axes);
    return true;
}

static bool pad_param(Elaborator *X, const Inst *I, const Shape *x, PadParam *p)
{
    static const char *const modes[] = {"constant", "reflect", "replicate"};
    const Value *v = attr_of(I, "pad");
    if (v->kind == VAL_NAME)
        return elab_error(&X->E, v->loc, v->len, "%s: pad expects a number or a list, got name '%s'", I->what,
                          v->s);
    int mode = 0;
    double value = 0;
    Value t;
    bool ok = read_word(X, I, "mode", modes, 3, &mode) &&
              value_float(&X->E, I->what, spec_of(I, "value"), attr_or_default(X, I, "value", &t), &value);
    p->nsp = x->rank - 1;
    p->mode = (PadMode)mode;
    p->value = (float)value;
    return ok && value_pad(&X->E, I->what, spec_of(I, "pad"), v, p->nsp, NULL, NULL, NULL, NULL, p->lo, p->hi);
}

static bool upsample_param(Elaborator *X, const Inst *I, const Shape *x, UpsampleParam *p)
{
    static const char *const modes[] = {"nearest", "linear", "bilinear", "trilinear"};
    int nsp = x->rank - 1, mode = 0;
    p->nsp = nsp;
    p->by_size = attr_of(I, "size") != NULL;
    if (p->by_size && attr_of(I, "scale")) {
        const Value *v = attr_of(I, "size");
        return elab_error(&X->E, v->loc, v->len, "%s: give scale or size, not both", I->what);
    }
    bool ok = read_word(X, I, "mode", modes, 4, &mode) && read_bool(X, I, "align_corners", &p->align_corners);
    ok = ok && (p->by_size ? read_axes(X, I, "size", nsp, p->size) : read_axes(X, I, "scale", nsp, p->scale));
    p->linear = mode;
    if (ok && p->align_corners && !p->linear) {
        const Value *v = attr_of(I, "align_corners");
        return elab_error(&X->E, v->loc, v->len, "%s: align_corners applies to the linear modes only",
                          I->what);
    }
    return ok;
}

/* The attributes of the pooling and data-movement layers into tmpl. */
static bool move_param(Elaborator *X, const Inst *I, const Shape *x, bool spatial, Node *tmpl)
{
    switch (I->op) {
    case OP_ADAPTIVE_AVGPOOL:
        if (!spatial)
            return true;
        tmpl->p.pool.nsp = x->rank - 1;
        return read_axes(X, I, "size", x->rank - 1, tmpl->p.pool.size);
    case OP_PAD: return !spatial || pad_param(X, I, x, &tmpl->p.pad);
    case OP_UPSAMPLE: return !spatial || upsample_param(X, I, x, &tmpl->p.up);
    case OP_PIXEL_SHUFFLE:
    case OP_PIXEL_UNSHUFFLE:
    case OP_DEPTH_TO_SPACE:
    case OP_SPACE_TO_DEPTH: return read_int(X, I, "r", &tmpl->p.perm.factor);
    case OP_CHANNEL_SHUFFLE: return read_int(X, I, "groups", &tmpl->p.perm.factor);
    case OP_CONCAT: return read_int(X, I, "axis", &tmpl->p.concat.axis);
    case OP_SLICE:
        return read_int(X, I, "axis", &tmpl->p.slice.axis) && read_int(X, I, "begin", &tmpl->p.slice.begin) &&
               read_int(X, I, "end", &tmpl->p.slice.end);
    case OP_RESHAPE: return read_dims(X, I, &tmpl->p.reshape);
    default: return true;
    }
}

static bool init_of(Elaborator *X, const Inst *I, InitSpec *init)
{
    const Value *v = attr_of(I, "init");
    if (!v) {
        *init = X->plan.init;
        return true;
    }
    return value_init(&X->E, I->what, v, init);
}

static Node *add_param(Elaborator *X, const Inst *I, const char *role, const Shape *shape,
                       const InitSpec *init, int fan_in, int fan_out)
{
    Node *n = add_node(X, OP_PARAM, arena_printf(X->E.a, "%s.%s", I->name, role), I->loc, I->len, 0, NULL);
    if (!n)
        return NULL;
    n->shape = *shape;
    n->p.param.init = init->kind;
    n->p.param.init_a = init->a;
    n->p.param.init_b = init->b;
    n->p.param.fan_in = fan_in;
    n->p.param.fan_out = fan_out;
    n->p.param.owner = -1; /* fixed once the layer is added */
    n->p.param.role = role;
    return n;
}

/* Weight (and bias) PARAMs for conv and dense; fills in[1..]. */
static bool add_params(Elaborator *X, const Inst *I, const Node *x, Node *tmpl, int *in, int *nin)
{
    InitSpec init, zero = {INIT_ZERO, 0, 0};
    if (!init_of(X, I, &init))
        return false;
    Shape w = {0}, b = {0};
    long fan_in, fan_out;
    bool bias;
    if (I->op == OP_CONV || I->op == OP_CONV_TRANSPOSE) {
        const ConvParam *p = &tmpl->p.conv;
        bool transposed = I->op == OP_CONV_TRANSPOSE; /* w [C_in, C_out/g, k...] */
        int cin = x->shape.d[0];
        int per_group = p->groups > 0 ? (transposed ? p->out_channels : cin) / p->groups : cin;
        w.rank = 2 + p->nsp;
        w.d[0] = transposed ? cin : p->out_channels;
        w.d[1] = per_group > 0 ? per_group : 1;
        /* Every factor is an int, so checking after each product keeps
         * the running value within long. */
        long numel = (long)w.d[0] * w.d[1], k = 1;
        for (int i = 0; i < p->nsp && numel <= INT_MAX; i++) {
            w.d[2 + i] = p->kernel[i];
            k *= p->kernel[i];
            numel *= p->kernel[i];
        }
        if (numel > INT_MAX)
            return elab_error(&X->E, I->loc, I->len, "%s: the weight has more than %d elements",
                              I->what, INT_MAX);
        fan_in = w.d[1] * k;
        fan_out = w.d[0] * k;
        b.d[0] = p->out_channels;
        bias = p->bias;
    } else {
        int units = tmpl->p.dense.units;
        int features = x->shape.rank >= 1 ? x->shape.d[x->shape.rank - 1] : 1;
        w.rank = 2;
        w.d[0] = units;
        w.d[1] = features;
        fan_in = features;
        fan_out = units;
        b.d[0] = units;
        bias = tmpl->p.dense.bias;
        if ((long)units * features > INT_MAX)
            return elab_error(&X->E, I->loc, I->len, "%s: the weight has more than %d elements",
                              I->what, INT_MAX);
    }
    b.rank = 1;
    if (fan_in > INT_MAX || fan_out > INT_MAX)
        return elab_error(&X->E, I->loc, I->len, "%s is too large", I->what);
    Node *wn = add_param(X, I, "weight", &w, &init, (int)fan_in, (int)fan_out);
    if (!wn)
        return false;
    in[(*nin)++] = wn->id;
    if (bias) {
        Node *bn = add_param(X, I, "bias", &b, &zero, (int)fan_in, (int)fan_out);
        if (!bn)
            return false;
        in[(*nin)++] = bn->id;
    }
    return true;
}

/* ---- activations and element-wise arithmetic ---- */

static bool read_float(Elaborator *X, const Inst *I, const char *name, float *out)
{
    Value t;
    double d;
    if (!value_float(&X->E, I->what, spec_of(I, name), attr_or_default(X, I, name, &t), &d))
        return false;
    *out = (float)d;
    return true;
}

/* axis in [-rank, rank) of the per-sample shape, stored as 0..rank-1. */
static bool read_axis(Elaborator *X, const Inst *I, const Shape *x, int *axis)
{
    Value t;
    const Value *v = attr_or_default(X, I, "axis", &t);
    if (!read_int(X, I, "axis", axis))
        return false;
    if (x->rank < 1 || *axis < -x->rank || *axis >= x->rank) {
        elab_error(&X->E, v->loc, v->len, "%s: axis %d is out of range for a value of rank %d", I->what,
                   *axis, x->rank);
        if (x->rank == 1)
            elab_hint(&X->E, "this value has one axis: 0 (or -1)");
        else if (x->rank > 1)
            elab_hint(&X->E, "the axes of this value are 0 to %d, or -%d to -1 from the end", x->rank - 1,
                      x->rank);
        return false;
    }
    if (*axis < 0)
        *axis += x->rank;
    return true;
}

static bool act_param(Elaborator *X, const Inst *I, const Shape *x, ActParam *p)
{
    memset(p, 0, sizeof *p);
    switch (I->op) {
    case OP_LEAKY_RELU: return read_float(X, I, "slope", &p->a);
    case OP_ELU: return read_float(X, I, "alpha", &p->a);
    case OP_PRELU: return read_bool(X, I, "per_channel", &p->per_channel);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: return read_axis(X, I, x, &p->axis);
    case OP_SOFTPLUS:
        if (!read_float(X, I, "beta", &p->a) || !read_float(X, I, "threshold", &p->b))
            return false;
        if (!(p->a > 0))
            return elab_error(&X->E, attr_of(I, "beta")->loc, attr_of(I, "beta")->len,
                              "%s: beta must be greater than 0, got %g", I->what, (double)p->a);
        return true;
    case OP_CLIP:
        if (!read_float(X, I, "min", &p->a) || !read_float(X, I, "max", &p->b))
            return false;
        if (!(p->a <= p->b)) {
            elab_error(&X->E, attr_of(I, "max")->loc, attr_of(I, "max")->len,
                       "%s: max %g is below min %g", I->what, (double)p->b, (double)p->a);
            elab_hint(&X->E, "give the bounds in order: clip(min, max)");
            return false;
        }
        return true;
    default:
        return true;
    }
}

/* prelu's slope: [C] per channel (the first axis), else [1]; 0.25 to start,
 * like torch.nn.PReLU (a normal initialiser with std 0 is that constant). */
static bool add_prelu_weight(Elaborator *X, const Inst *I, const Node *x, const ActParam *p, int *in,
                             int *nin)
{
    Shape w = {.rank = 1, .d = {p->per_channel && x->shape.rank >= 1 ? x->shape.d[0] : 1}};
    InitSpec init = {INIT_NORMAL, 0.25f, 0.0f};
    Node *wn = add_param(X, I, "weight", &w, &init, 1, 1);
    if (!wn)
        return false;
    in[(*nin)++] = wn->id;
    return true;
}

/* ---- normalisation and regularisation ---- */

/* A float attribute (or its default) in [lo, hi], the bounds open where
 * lo_open / hi_open say; an error at the value otherwise. */
static bool read_float_in(Elaborator *X, const Inst *I, const char *name, double lo, bool lo_open,
                          double hi, bool hi_open, float *out)
{
    Value t;
    const Value *v = attr_or_default(X, I, name, &t);
    double f;
    if (!value_float(&X->E, I->what, spec_of(I, name), v, &f))
        return false;
    if (f < lo || (lo_open && f == lo) || f > hi || (hi_open && f == hi)) {
        if (hi == HUGE_VAL)
            return elab_error(&X->E, v->loc, v->len, "%s: %s must be %s %g, got %g", I->what, name,
                              lo_open ? ">" : ">=", lo, f);
        return elab_error(&X->E, v->loc, v->len, "%s: %s must be in %s%g, %g%s, got %g", I->what, name,
                          lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]", f);
    }
    *out = (float)f;
    return true;
}

/* A state PARAM of the layer (running statistics, a step counter). */
static Node *add_state(Elaborator *X, const Inst *I, const char *role, const Shape *shape, InitKind init)
{
    InitSpec spec = {init, 0, 0};
    Node *n = add_param(X, I, role, shape, &spec, 0, 0);
    if (n)
        n->p.param.state = true;
    return n;
}

/* batchnorm: attributes, then weight and bias (affine) and running_mean,
 * running_var (track) as inputs, and num_batches_tracked, read only by
 * its own update (state.c).  The owner of num_batches_tracked is set by
 * the caller with the others'. */
static bool batchnorm_params(Elaborator *X, const Inst *I, const Node *x, Node *tmpl, int *in, int *nin,
                             int *extra)
{
    NormParam *q = &tmpl->p.norm;
    bool ok = read_float_in(X, I, "eps", 0, true, HUGE_VAL, false, &q->eps);
    ok &= read_float_in(X, I, "momentum", 0, false, 1, false, &q->momentum);
    ok &= read_bool(X, I, "affine", &q->affine) && read_bool(X, I, "track_running_stats", &q->track);
    if (!ok)
        return false;
    Shape c = {.rank = 1, .d = {x->shape.d[0]}};
    InitSpec one = {INIT_ONE, 0, 0}, zero = {INIT_ZERO, 0, 0};
    const Node *w = NULL, *b = NULL, *rm = NULL, *rv = NULL, *nbt = NULL;
    if (q->affine) {
        w = add_param(X, I, "weight", &c, &one, c.d[0], c.d[0]);
        b = w ? add_param(X, I, "bias", &c, &zero, c.d[0], c.d[0]) : NULL;
        if (!b)
            return false;
        in[(*nin)++] = w->id;
        in[(*nin)++] = b->id;
    }
    if (q->track) {
        rm = add_state(X, I, "running_mean", &c, INIT_ZERO);
        rv = rm ? add_state(X, I, "running_var", &c, INIT_ONE) : NULL;
        nbt = rv ? add_state(X, I, "num_batches_tracked", &(Shape){.rank = 0}, INIT_ZERO) : NULL;
        if (!nbt)
            return false;
        in[(*nin)++] = rm->id;
        in[(*nin)++] = rv->id;
        *extra = nbt->id;
    }
    return true;
}

/* The dropout mask's key: the train seed mixed with the layer's name, so
 * layers draw different masks and a seed gives the same ones every run. */
static unsigned dropout_key(unsigned long seed, const char *name)
{
    uint32_t h = 2166136261u ^ (uint32_t)seed ^ (uint32_t)(seed >> 32);
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 16777619u;
    return h;
}

static bool dropout_params(Elaborator *X, const Inst *I, Node *tmpl, int *in, int *nin)
{
    DropoutParam *q = &tmpl->p.drop;
    if (!read_float_in(X, I, "p", 0, false, 1, true, &q->p))
        return false;
    q->channels = I->op == OP_DROPOUT2D;
    q->key = dropout_key(X->E.m->train.seed, I->name);
    Node *step = add_state(X, I, "step", &(Shape){.rank = 0}, INIT_ZERO);
    if (!step)
        return false;
    in[(*nin)++] = step->id;
    return true;
}

static bool lrn_params(Elaborator *X, const Inst *I, Node *tmpl)
{
    LrnParam *q = &tmpl->p.lrn;
    bool ok = read_int(X, I, "size", &q->size);
    ok &= read_float_in(X, I, "alpha", -HUGE_VAL, false, HUGE_VAL, false, &q->alpha);
    ok &= read_float_in(X, I, "beta", -HUGE_VAL, false, HUGE_VAL, false, &q->beta);
    ok &= read_float_in(X, I, "k", 0, true, HUGE_VAL, false, &q->k);
    return ok;
}
int elab_emit_layer(Elaborator *X, const Inst *I, const int *args, int nargs)
{
    Elab *E = &X->E;
    int *in = arena_alloc(E->a, sizeof(int) * (size_t)(nargs + 4));
    memcpy(in, args, sizeof(int) * (size_t)nargs);
    int extra = -1; /* a state PARAM the layer owns but does not read */
    Graph *g = E->m->g;
    const Node *x = graph_node(g, in[0]);
    int nin = nargs;
    Node tmpl;
    memset(&tmpl, 0, sizeof tmpl);
    bool spatial = x->shape.batched && x->shape.rank >= 2 && x->shape.rank <= NETC_MAX_SPATIAL + 1;
    bool ok = true;
    switch (I->op) {
    case OP_CONV:
        /* Without spatial axes there is nothing to convolve: let shape.c
         * say so from a node holding just the input. */
        if (spatial) {
            ok = conv_param(X, I, &x->shape, &tmpl.p.conv) && add_params(X, I, x, &tmpl, in, &nin);
            tmpl.p.conv.shuffle = elab_shuffle_mode(X, I->scope);
        }
        break;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
        if (spatial)
            ok = pool_param(X, I, &x->shape, &tmpl.p.pool);
        break;
    case OP_CONV_TRANSPOSE:
        if (spatial) {
            ok = conv_transpose_param(X, I, &x->shape, &tmpl.p.conv) && add_params(X, I, x, &tmpl, in, &nin);
            tmpl.p.conv.out_channels = x->shape.d[0]; /* now the matching conv's */
        }
        break;
    case OP_DENSE:
        ok = read_int(X, I, "units", &tmpl.p.dense.units) && read_bool(X, I, "bias", &tmpl.p.dense.bias) &&
             add_params(X, I, x, &tmpl, in, &nin);
        break;
    case OP_PRELU:
        ok = act_param(X, I, &x->shape, &tmpl.p.act) && add_prelu_weight(X, I, x, &tmpl.p.act, in, &nin);
        break;
    case OP_LEAKY_RELU:
    case OP_ELU:
    case OP_SOFTPLUS:
    case OP_CLIP:
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX:
        ok = act_param(X, I, &x->shape, &tmpl.p.act);
        break;
    /* normalisation and regularisation; a rank batchnorm does not take is
     * reported by shape.c */
    case OP_BATCHNORM:
        if (spatial)
            ok = batchnorm_params(X, I, x, &tmpl, in, &nin, &extra);
        break;
    case OP_LRN:
        ok = lrn_params(X, I, &tmpl);
        break;
    case OP_DROPOUT:
    case OP_DROPOUT2D:
        ok = dropout_params(X, I, &tmpl, in, &nin);
        break;
    default:
        ok = move_param(X, I, &x->shape, spatial, &tmpl);
        break;
    }
    if (!ok)
        return -1;
    Node *n = add_node(X, I->op, I->name, I->loc, I->len, nin, in);
    if (!n)
        return -1;
    n->p = tmpl.p;
    for (int k = nargs; k < nin; k++)
        graph_node(g, in[k])->p.param.owner = n->id;
    if (extra >= 0)
        graph_node(g, extra)->p.param.owner = n->id;
    int before = E->d->nerror;
    elab_flush(E);
    if (!shape_infer(g, n, E->d)) {
        if (E->d->nerror == before) /* shape.c must say why */
            diag_error(E->d, n->loc, I->len, "%s: invalid input shape", I->what);
        elab_instance_notes(E, I->scope);
        return -1;
    }
    return n->id;
}

static void emit_inst(Elaborator *X, int id)
{
    Elab *E = &X->E;
    Inst *I = &X->inst[id];
    if (I->bad || elab_stop(E))
        return;
    E->scope = I->scope;
    int *in = arena_alloc(E->a, sizeof(int) * (size_t)(I->nin + 1));
    for (int k = 0; k < I->nin; k++) {
        int pi, px;
        elab_slot_resolve(X, I->in[k], &pi, &px);
        in[k] = pi >= 0 ? X->inst[pi].node : px >= 0 ? X->input[px].node : -1;
        if (in[k] < 0) {
            I->bad = true; /* its input failed and said so */
            return;
        }
    }
    /* convolution forms */
    I->node = schema_is_form(I->schema) ? elab_emit_form(X, I, in[0]) : elab_emit_layer(X, I, in, I->nin);
    I->bad = I->node < 0;
}

/* Depth-first over the instances so each node follows what it reads;
 * an edge back to an open instance is a cycle. */
static void emit_all(Elaborator *X)
{
    int *stack = netc_alloc(sizeof(int) * (size_t)(X->ninst + 1));
    int *next = netc_alloc(sizeof(int) * (size_t)(X->ninst + 1));
    for (int root = 0; root < X->ninst && !elab_stop(&X->E); root++) {
        if (X->inst[root].state)
            continue;
        int sp = 0;
        stack[sp] = root;
        next[sp++] = 0;
        X->inst[root].state = 1;
        while (sp > 0) {
            int j = stack[sp - 1];
            Inst *I = &X->inst[j];
            if (next[sp - 1] < I->nin) {
                int pi, px;
                elab_slot_resolve(X, I->in[next[sp - 1]++], &pi, &px);
                if (pi < 0)
                    continue;
                if (X->inst[pi].state == 0) {
                    X->inst[pi].state = 1;
                    stack[sp] = pi;
                    next[sp++] = 0;
                } else if (X->inst[pi].state == 1) {
                    int from = sp - 1;
                    while (stack[from] != pi)
                        from--;
                    if (!X->inst[pi].bad)
                        report_cycle(X, stack + from, sp - from);
                }
                continue;
            }
            sp--;
            I->state = 2;
            emit_inst(X, j);
        }
    }
    free(stack);
    free(next);
}

static void emit_outputs(Elaborator *X)
{
    Graph *g = X->E.m->g;
    g->outputs = arena_alloc(g->arena, sizeof(int) * (size_t)(X->noutputs + 1));
    for (int i = 0; i < X->noutputs; i++) {
        int pi, px;
        elab_slot_resolve(X, X->outputs[i], &pi, &px);
        if (pi >= 0 && X->inst[pi].node >= 0)
            g->outputs[g->noutput++] = X->inst[pi].node;
    }
}

/* weight= has one value per class, pos_weight= one per channel (or one
 * for all); said at the list, with the count the prediction needs. */
static bool loss_weights_fit(Elab *E, TrainPlan *p, const Node *pred)
{
    LossParam *l = &p->param;
    const Shape *s = &pred->shape;
    if (!p->weight || !s->batched || s->rank < 1)
        return true; /* shape_infer says what is wrong with the prediction */
    int want = s->d[0];
    if (l->pos_weight && l->npos_weight == 1 && want > 1) {
        float *w = arena_alloc(E->m->arena, sizeof(float) * (size_t)want);
        for (int i = 0; i < want; i++)
            w[i] = l->pos_weight[0];
        l->pos_weight = w;
        l->npos_weight = want;
    }
    int have = l->weight ? l->nweight : l->npos_weight;
    if (have == want)
        return true;
    bool cls = loss_takes_class(p->loss->op);
    Buf dims = {0};
    for (int i = 0; i < s->rank; i++)
        buf_printf(&dims, "%s%d", i ? ", " : "", s->d[i]);
    elab_error(E, p->weight->loc, p->weight->len, "%s: %s has %d value%s, but %s [%s] has %d %s%s",
               p->loss->name, cls ? "weight" : "pos_weight", have, have == 1 ? "" : "s", p->loss_name,
               dims.s, want, cls ? "class" : "channel", want == 1 ? "" : cls ? "es" : "s");
    buf_free(&dims);
    elab_hint(E, "give one number per %s (the first axis), %d in all", cls ? "class" : "channel", want);
    return false;
}

static const char *dims_of(Elab *E, const Shape *s)
{
    Buf b = {0};
    buf_puts(&b, "[");
    for (int i = 0; i < s->rank; i++)
        buf_printf(&b, "%s%d", i ? ", " : "", s->d[i]);
    buf_puts(&b, "]");
    const char *r = arena_strdup(E->a, b.s);
    buf_free(&b);
    return r;
}

/* target=NAME: an input of its own (not read by the network) whose shape
 * is the loss's target contract; NULL after saying why not. */
static Node *declared_target(Elaborator *X, const Node *pred)
{
    Elab *E = &X->E;
    TrainPlan *p = &X->plan;
    const Value *v = p->target;
    int s = strmap_get(&X->top->names, v->s), pi, px;
    elab_slot_resolve(X, s, &pi, &px);
    if (pi >= 0 || px < 0) {
        if (pi >= 0)
            elab_error(E, v->loc, v->len, "%s: target '%s' is a layer's result; the target must be an "
                       "input", p->loss->name, v->s);
        return NULL;
    }
    const Input *in = &X->input[px];
    if (X->slot[s].consumed || X->slot[in->slot].consumed) {
        elab_error(E, v->loc, v->len, "%s: target '%s' is also read by the network", p->loss->name,
                   v->s);
        elab_hint(E, "a target must be an input of its own; declare another with the same shape");
        return NULL;
    }
    if (in->node < 0)
        return NULL;
    Node *t = graph_node(E->m->g, in->node);
    Shape want = loss_target_shape(p->loss->op, &pred->shape);
    if (!shape_eq(&t->shape, &want)) {
        bool cls = loss_takes_class(p->loss->op);
        elab_error(E, v->loc, v->len, "%s: target '%s' has shape %s, but %s %s needs %s", p->loss->name,
                   v->s, dims_of(E, &t->shape), p->loss_name, dims_of(E, &pred->shape),
                   dims_of(E, &want));
        elab_hint(E, cls ? "the target of a class loss holds one class index per position: the "
                           "scores' shape without the class axis"
                         : "the target has the prediction's shape");
        return NULL;
    }
    return t;
}

/* data ...(target=self): the loss compares with the network's input, so
 * the target must be a tensor of as many values as the input. */
static bool target_input_fits(Elaborator *X, const TrainPlan *p, const Node *t)
{
    Elab *E = &X->E;
    const TrainConfig *tc = &E->m->train;
    if (!tc->data_target_input)
        return true;
    const Node *in = NULL;
    for (int i = 0; i < X->ninput && !in; i++)
        if (X->input[i].node >= 0 && X->input[i].node != t->id)
            in = graph_node(E->m->g, X->input[i].node);
    if (loss_takes_class(p->loss->op)) {
        elab_error(E, tc->target_input_loc, tc->target_input_len, "target=self: %s compares "
                   "with class indices, not with the input", p->loss->name);
        elab_hint(E, "target=self is for losses against a tensor: mse, l1, smooth_l1, "
                  "bce_with_logits");
        return false;
    }
    if (in && shape_numel(&in->shape) != shape_numel(&t->shape)) {
        elab_error(E, tc->target_input_loc, tc->target_input_len, "target=self: the input '%s' "
                   "is %s, but the loss's target is %s", in->name, dims_of(E, &in->shape),
                   dims_of(E, &t->shape));
        elab_hint(E, "the prediction must have the input's shape to reconstruct it");
        return false;
    }
    return true;
}

static void emit_loss(Elaborator *X)
{
    Elab *E = &X->E;
    TrainPlan *p = &X->plan;
    Graph *g = E->m->g;
    int s = strmap_get(&X->top->names, p->loss_name);
    int pi, px;
    elab_slot_resolve(X, s, &pi, &px);
    int pred = pi >= 0 ? X->inst[pi].node : px >= 0 ? X->input[px].node : -1;
    if (pred < 0)
        return;
    const Node *pn = graph_node(g, pred);
    if (!loss_weights_fit(E, p, pn))
        return;
    Node *t;
    if (p->target) {
        t = declared_target(X, pn);
    } else {
        t = add_node(X, OP_INPUT, "target", p->loss_loc, p->loss_len, 0, NULL);
        if (t)
            t->shape = loss_target_shape(p->loss->op, &pn->shape);
    }
    if (!t || !target_input_fits(X, p, t))
        return;
    int in[2] = {pred, t->id};
    Node *l = add_node(X, p->loss->op, "loss", p->loss_loc, p->loss_len, 2, in);
    if (!l)
        return;
    l->p.loss = p->param;
    elab_flush(E);
    if (!shape_infer(g, l, E->d))
        return;
    g->loss = l->id;
    g->target = t->id;
    E->m->train.loss_node = l->id;
}

static void emit_inputs(Elaborator *X)
{
    for (int i = 0; i < X->ninput; i++) {
        Input *in = &X->input[i];
        if (in->bad || X->slot[in->slot].input != i)
            continue;
        Node *n = add_node(X, OP_INPUT, in->stmt->name, in->stmt->name_loc, in->stmt->name_len, 0, NULL);
        if (!n)
            continue;
        n->shape = in->shape;
        in->node = n->id;
    }
}

void elab_emit(Elaborator *X)
{
    emit_inputs(X);
    emit_all(X);
    X->E.scope = NULL; /* what follows is at the top level */
    emit_outputs(X);
    if (X->plan.loss && strmap_get(&X->top->names, X->plan.loss_name) >= 0)
        emit_loss(X);
}
