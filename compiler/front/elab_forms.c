/* elab_forms.c - convolution forms: built-in layers that elaborate into a
 * short chain of ordinary convs, so every later pass sees plain convs.
 *
 * Needs: a form instance (schema_is_form; its attributes already checked
 * for kind and range by elab.c) and the node it reads.  Provides: one
 * conv (or channel_shuffle) node per part, named `<name>.<part>`, each
 * with its own `<name>.<part>.weight` and `.bias` PARAMs, added through
 * elab_emit_layer like any layer; the form's value is the last part.
 * Checks what the parts cannot say well themselves (groups dividing the
 * channels, a 2D input for the k x 1 / 1 x k forms), located at the
 * attribute or the form.
 *
 *   x -> s: separable_conv(8, kernel=3)    %1 = param s.kh.weight [8, C, 3, 1]
 *                                          %3 = conv s.kh(%0, %1, %2)
 *                                          %4 = param s.kw.weight [8, 8, 1, 3]
 *                                          %6 = conv s.kw(%3, %4, %5)
 *
 * Parts (C = input channels; docs/layers.md "Convolution forms"):
 *   separable_conv(out, kernel=k)       kh: k x 1, C -> out;  kw: 1 x k, out -> out
 *   depthwise_separable(out, kernel=k)  depthwise: k x k, groups=C, C -> C*multiplier;
 *                                       pointwise: 1x1, C*multiplier -> out
 *   flattened_conv(out, kernel=k)       channel: 1x1, C -> out; kh: k x 1 and kw: 1 x k,
 *                                       both depthwise (groups=out)
 *   pointwise_grouped(out, groups=g)    pointwise: 1x1, groups=g
 *   shuffled_grouped(out, kernel=k, groups=g)
 *                                       conv1: k x k, groups=g; shuffle: channel_shuffle(g);
 *                                       conv2: k x k, groups=g
 */
#include "elab.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* One conv of a form: kernel and padding per axis of a 2D input, or
 * square (ky == 0) for any rank. */
typedef struct {
    const char *part;
    int out, groups, stride;
    int ky, kx, py, px;
} ConvPart;

/* A form attribute: as written, else its schema default (elab.c checked
 * the kind and range). */
static int form_int(const Inst *I, const char *name)
{
    int k = schema_attr_index(I->schema, name);
    return I->attr[k] ? (int)I->attr[k]->i : atoi(I->schema->attr[k].def);
}

static const Value *form_attr(const Inst *I, const char *name)
{
    int k = schema_attr_index(I->schema, name);
    return k >= 0 ? I->attr[k] : NULL;
}

static Value *int_value(Elaborator *X, const Inst *I, int v)
{
    Value *r = arena_alloc(X->E.a, sizeof *r);
    memset(r, 0, sizeof *r);
    r->kind = VAL_INT;
    r->loc = I->loc;
    r->len = I->len;
    r->i = v;
    return r;
}

/* An int for a square part, [a, b] for a 2D one. */
static Value *axes_value(Elaborator *X, const Inst *I, bool square, int a, int b)
{
    if (square)
        return int_value(X, I, a);
    Value *r = int_value(X, I, 0);
    r->kind = VAL_LIST;
    r->n = 2;
    r->item = arena_alloc(X->E.a, sizeof(Value) * 2);
    r->item[0] = *int_value(X, I, a);
    r->item[1] = *int_value(X, I, b);
    return r;
}

/* A part instance: same place and scope as the form, its own name. */
static Inst part_inst(Elaborator *X, const Inst *I, const char *layer, const char *part)
{
    Inst P;
    memset(&P, 0, sizeof P);
    P.schema = schema_find_layer(layer);
    P.op = P.schema->op;
    P.name = arena_printf(X->E.a, "%s.%s", I->name, part);
    P.what = arena_printf(X->E.a, "%s %s", layer, P.name);
    P.loc = I->loc;
    P.len = I->len;
    P.scope = I->scope;
    P.node = -1;
    return P;
}

static void set_attr(Inst *P, const char *name, const Value *v)
{
    P->attr[schema_attr_index(P->schema, name)] = v;
}

static int emit_conv(Elaborator *X, const Inst *I, const ConvPart *c, int x)
{
    Inst P = part_inst(X, I, "conv", c->part);
    bool square = c->ky == 0;
    set_attr(&P, "out", int_value(X, I, c->out));
    set_attr(&P, "kernel", axes_value(X, I, square, square ? c->kx : c->ky, c->kx));
    set_attr(&P, "pad", axes_value(X, I, square, square ? c->px : c->py, c->px));
    set_attr(&P, "stride", int_value(X, I, c->stride > 0 ? c->stride : 1));
    set_attr(&P, "groups", int_value(X, I, c->groups > 0 ? c->groups : 1));
    set_attr(&P, "bias", form_attr(I, "bias"));
    set_attr(&P, "init", form_attr(I, "init"));
    return elab_emit_layer(X, &P, &x, 1);
}

static int emit_shuffle(Elaborator *X, const Inst *I, int groups, int x)
{
    Inst P = part_inst(X, I, "channel_shuffle", "shuffle");
    set_attr(&P, "groups", int_value(X, I, groups));
    return elab_emit_layer(X, &P, &x, 1);
}

/* groups must divide both channel counts; said at the attribute. */
static bool groups_fit(Elaborator *X, const Inst *I, int cin, int out)
{
    int g = form_int(I, "groups");
    const Value *v = form_attr(I, "groups");
    if (cin % g == 0 && out % g == 0)
        return true;
    bool in_bad = cin % g != 0;
    elab_error(&X->E, v->loc, v->len, "%s: groups=%d does not divide the %d %s channels", I->what, g,
               in_bad ? cin : out, in_bad ? "input" : "output");
    elab_hint(&X->E, "choose groups dividing both the input channels (%d) and out (%d)", cin, out);
    return false;
}

static int emit_chain(Elaborator *X, const Inst *I, const ConvPart *parts, int n, int x)
{
    for (int i = 0; i < n && x >= 0; i++)
        x = emit_conv(X, I, &parts[i], x);
    return x;
}

int elab_emit_form(Elaborator *X, const Inst *I, int x)
{
    const Shape *s = &graph_node(X->E.m->g, x)->shape;
    const char *form = I->schema->name;
    bool planar = !strcmp(form, "separable_conv") || !strcmp(form, "flattened_conv");
    /* Other ranks are the first part's to report (shape.c). */
    if (planar && (!s->batched || s->rank != 3)) {
        elab_error(&X->E, I->loc, I->len, "%s needs a 2D input [C, H, W]; its input has %d axes", I->what,
                   s->rank);
        elab_hint(&X->E, "its parts are a k x 1 and a 1 x k conv");
        return -1;
    }
    int cin = s->d[0], out = form_int(I, "out");
    int k = !strcmp(form, "pointwise_grouped") ? 1 : form_int(I, "kernel");
    int p = !strcmp(form, "pointwise_grouped") ? 0 : form_int(I, "pad");
    if (!strcmp(form, "separable_conv")) {
        ConvPart c[] = {{"kh", out, 1, 1, k, 1, p, 0}, {"kw", out, 1, 1, 1, k, 0, p}};
        return emit_chain(X, I, c, 2, x);
    }
    if (!strcmp(form, "flattened_conv")) {
        ConvPart c[] = {{"channel", out, 1, 1, 0, 1, 0, 0},
                        {"kh", out, out, 1, k, 1, p, 0},
                        {"kw", out, out, 1, 1, k, 0, p}};
        return emit_chain(X, I, c, 3, x);
    }
    if (!strcmp(form, "depthwise_separable")) {
        long mid = (long)cin * form_int(I, "multiplier");
        if (mid > INT_MAX) {
            elab_error(&X->E, I->loc, I->len, "%s: %d channels x multiplier is too large", I->what, cin);
            return -1;
        }
        ConvPart c[] = {{"depthwise", (int)mid, cin, form_int(I, "stride"), 0, k, 0, p},
                        {"pointwise", out, 1, 1, 0, 1, 0, 0}};
        return emit_chain(X, I, c, 2, x);
    }
    if (!groups_fit(X, I, cin, out))
        return -1;
    int g = form_int(I, "groups");
    if (!strcmp(form, "pointwise_grouped")) {
        ConvPart c = {"pointwise", out, g, 1, 0, 1, 0, 0};
        return emit_conv(X, I, &c, x);
    }
    NETC_ASSERT(!strcmp(form, "shuffled_grouped"));
    ConvPart c1 = {"conv1", out, g, 1, 0, k, 0, p}, c2 = {"conv2", out, g, 1, 0, k, 0, p};
    x = emit_conv(X, I, &c1, x);
    x = x >= 0 ? emit_shuffle(X, I, g, x) : -1;
    return x >= 0 ? emit_conv(X, I, &c2, x) : -1;
}
