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
 *
 *   x -> c: conv(4, kernel=3) => a      %0 = input x
 *                                       %1 = param c.weight [4, 3, 3, 3]
 *                                       %2 = param c.bias [4]
 *                                       %3 = conv c(%0, %1, %2)
 */
#include "elab.h"

#include <limits.h>
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
    if (a->def[0] >= '0' && a->def[0] <= '9') {
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
    if (ok)
        ok = read_pad(X, I, nsp, &x->d[1], p->kernel, p->stride, ones, p->pad_lo, p->pad_hi);
    return ok;
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
    if (I->op == OP_CONV) {
        const ConvParam *p = &tmpl->p.conv;
        int cin = x->shape.d[0];
        int per_group = p->groups > 0 ? cin / p->groups : cin;
        w.rank = 2 + p->nsp;
        w.d[0] = p->out_channels;
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
        fan_out = p->out_channels * k;
        b.d[0] = p->out_channels;
        bias = p->bias;
    } else {
        int units = tmpl->p.dense.units;
        int features = x->shape.rank == 1 ? x->shape.d[0] : 1;
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

static void emit_inst(Elaborator *X, int id)
{
    Elab *E = &X->E;
    Inst *I = &X->inst[id];
    if (I->bad || elab_stop(E))
        return;
    E->scope = I->scope;
    int *in = arena_alloc(E->a, sizeof(int) * (size_t)(I->nin + 2));
    for (int k = 0; k < I->nin; k++) {
        int pi, px;
        elab_slot_resolve(X, I->in[k], &pi, &px);
        in[k] = pi >= 0 ? X->inst[pi].node : px >= 0 ? X->input[px].node : -1;
        if (in[k] < 0) {
            I->bad = true; /* its input failed and said so */
            return;
        }
    }
    Graph *g = E->m->g;
    const Node *x = graph_node(g, in[0]);
    int nin = I->nin;
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
        }
        break;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
        if (spatial)
            ok = pool_param(X, I, &x->shape, &tmpl.p.pool);
        break;
    case OP_DENSE:
        ok = read_int(X, I, "units", &tmpl.p.dense.units) && read_bool(X, I, "bias", &tmpl.p.dense.bias) &&
             add_params(X, I, x, &tmpl, in, &nin);
        break;
    default:
        break;
    }
    if (!ok) {
        I->bad = true;
        return;
    }
    Node *n = add_node(X, I->op, I->name, I->loc, I->len, nin, in);
    if (!n) {
        I->bad = true;
        return;
    }
    n->p = tmpl.p;
    for (int k = I->nin; k < nin; k++)
        graph_node(g, in[k])->p.param.owner = n->id;
    int before = E->d->nerror;
    elab_flush(E);
    if (!shape_infer(g, n, E->d)) {
        if (E->d->nerror == before) /* shape.c must say why */
            diag_error(E->d, n->loc, I->len, "%s: invalid input shape", I->what);
        elab_instance_notes(E, I->scope);
        I->bad = true;
        return;
    }
    I->node = n->id;
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
    Node *t = add_node(X, OP_INPUT, "target", p->loss_loc, p->loss_len, 0, NULL);
    if (!t)
        return;
    t->shape.batched = true;
    if (p->loss->op == OP_MSE)
        t->shape = pn->shape;
    int in[2] = {pred, t->id};
    Node *l = add_node(X, p->loss->op, "loss", p->loss_loc, p->loss_len, 2, in);
    if (!l)
        return;
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
    if (X->plan.loss_name && strmap_get(&X->top->names, X->plan.loss_name) >= 0)
        emit_loss(X);
}
