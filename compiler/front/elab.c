/* elab.c - elaboration: the syntax tree becomes the graph IR.
 *
 * Needs: an AstFile without syntax errors.  Provides: m->g with every
 * input, parameter, layer and the loss in topological order, shapes
 * inferred, g->outputs/loss/target and m->train filled.  Every user error
 * found on the way is reported (several per run); elaboration of a branch
 * stops quietly where its input failed, so one mistake gives one message.
 *
 * Three steps:
 *   1. expand: walk the chains in source order, inlining block instances
 *      and `* N` repetitions, into a flat list of layer instances (Inst)
 *      joined through named value slots.  Names are resolved per scope after
 *      all of a scope's bindings are known, so definition order is free.
 *      Layers get their node names here, in source order (auto names like
 *      relu3 count per op in the order the user wrote them).
 *   2. check names: outputs, unused values and inputs.
 *   3. emit (elab_emit.c): a depth-first walk over the instances adds each node after
 *      the nodes it reads (this is where cycles are found), conv and
 *      dense nodes preceded by their weight and bias PARAMs, each shape
 *      inferred as soon as the node is added.
 *
 *   input x: [3, 8, 8]                %0 = input           [N, 3, 8, 8]
 *   y = a -> relu                     %1 = param c.weight  [4, 3, 3, 3]
 *   x -> c: conv(4, kernel=3) => a    %2 = param c.bias    [4]
 *                                     %3 = conv c(%0, %1, %2) [N, 4, 6, 6]
 *                                     %4 = relu relu1(%3)  [N, 4, 6, 6]
 */
#include "elab.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_INSTS = 100000,   /* layers after expanding blocks and repetitions */
    MAX_REPEAT = 10000,
};

/* ---- errors ---- */

bool elab_stop(const Elab *E)
{
    return E->d->nerror > E->d->max_errors;
}

void elab_flush(Elab *E)
{
    for (int i = 0; i < E->npend; i++)
        diag_note(E->d, E->pend[i].loc, E->pend[i].len, "%s", E->pend[i].msg);
    elab_instance_notes(E, E->pend_scope);
    E->npend = 0;
    E->pend_scope = NULL;
}

bool elab_error(Elab *E, SrcLoc loc, int len, const char *fmt, ...)
{
    elab_flush(E);
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    {
        va_list ap2;
        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        msg = arena_alloc(E->a, (size_t)n + 1);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
    }
    va_end(ap);
    /* A block body is expanded once per instance; say each mistake once. */
    const char *key = arena_printf(E->a, "%d:%d:%s", loc.line, loc.col, msg);
    E->said = strmap_get(&E->reported, key) < 0;
    if (!E->said)
        return false;
    strmap_put(E->a, &E->reported, key, 1);
    diag_error(E->d, loc, len, "%s", msg);
    E->pend_scope = E->scope;
    return false;
}

void elab_hint(Elab *E, const char *fmt, ...)
{
    if (!E->said)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    diag_hint(E->d, "%s", buf);
}

void elab_note(Elab *E, SrcLoc loc, int len, const char *fmt, ...)
{
    if (!E->said || E->npend == (int)(sizeof E->pend / sizeof E->pend[0]))
        return;
    va_list ap;
    va_start(ap, fmt);
    E->pend[E->npend].loc = loc;
    E->pend[E->npend].len = len;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    E->pend[E->npend++].msg = arena_strdup(E->a, buf);
}

/* Notes for a shape error (reported by shape.c) inside block instances. */
void elab_instance_notes(Elab *E, const Scope *s)
{
    for (; s && s->block; s = s->parent)
        diag_note(E->d, s->inst_loc, s->inst_len, "in '%s', an instance of block '%s'",
                  s->inst_name, s->block->name);
}

/* ---- growable arrays ---- */

#define GROW(arr, n, cap)                                                   \
    do {                                                                    \
        if ((n) == (cap)) {                                                 \
            (cap) = (cap) ? 2 * (cap) : 64;                                 \
            (arr) = netc_realloc((arr), sizeof *(arr) * (size_t)(cap));     \
        }                                                                   \
    } while (0)

static int slot_new(Elaborator *X, const char *name, SrcLoc loc, int len)
{
    GROW(X->slot, X->nslot, X->capslot);
    Slot *s = &X->slot[X->nslot];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->loc = loc;
    s->len = len;
    s->inst = s->input = s->alias = -1;
    return X->nslot++;
}

/* A stand-in for a value whose definition failed: chains go on through
 * it (so later mistakes are reported too), nothing reading it is emitted. */
static int bad_slot(Elaborator *X, SrcLoc loc, int len)
{
    int s = slot_new(X, NULL, loc, len);
    X->slot[s].bad = true;
    return s;
}

static int def_new(Elaborator *X, SrcLoc loc, int len)
{
    GROW(X->def, X->ndef, X->capdef);
    X->def[X->ndef] = (Def){loc, len};
    return X->ndef++;
}

/* What a slot finally stands for: *inst or *input >= 0, or both -1 when
 * its definition failed. */
void elab_slot_resolve(const Elaborator *X, int s, int *inst, int *input)
{
    *inst = *input = -1;
    for (int steps = 0; s >= 0 && steps <= X->nslot; steps++) {
        const Slot *p = &X->slot[s];
        if (p->bad)
            return;
        if (p->inst >= 0) {
            *inst = p->inst;
            return;
        }
        if (p->input >= 0) {
            *input = p->input;
            return;
        }
        s = p->alias;
    }
}

/* Whether a value's definition already failed (and said why). */
bool elab_slot_failed(const Elaborator *X, int s)
{
    int pi, px;
    elab_slot_resolve(X, s, &pi, &px);
    return pi >= 0 ? X->inst[pi].bad : px < 0;
}

/* ---- names ---- */

static const char **scope_names(Elaborator *X, const Scope *sc, int *n)
{
    const char **c = arena_alloc(X->E.a, sizeof(char *) * (size_t)(sc->names.n + 1));
    int k = 0;
    for (int i = 0; i < sc->names.cap; i++)
        if (sc->names.key[i])
            c[k++] = sc->names.key[i];
    *n = k;
    return c;
}

static void suggest_name(Elaborator *X, const Scope *sc, const char *name)
{
    int n;
    const char **c = scope_names(X, sc, &n);
    /* Hash order is arbitrary; sort so a tie picks the same name every run. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(c[j - 1], c[j]) > 0; j--) {
            const char *t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    const char *s = diag_suggest(name, c, n);
    if (s)
        elab_hint(&X->E, "did you mean '%s'?", s);
}

/* A name used as a value that is not defined. */
static void undefined(Elaborator *X, const Scope *sc, const char *name, SrcLoc loc, int len)
{
    /* A misspelt name leaves the intended one unused: do not say that too. */
    X->had_undefined = true;
    elab_error(&X->E, loc, len, "undefined name '%s'", name);
    if (sc->block && strmap_get(&X->top->names, name) >= 0) {
        elab_hint(&X->E, "a block sees only its input `in`, its parameters and the values it binds");
        return;
    }
    if (schema_find_layer(name) || schema_find_form(name) || strmap_get(&X->blocks, name) >= 0) {
        elab_hint(&X->E, "'%s' is a layer; is '->' missing before it?", name);
        return;
    }
    for (int i = 0; i < X->ninst; i++)
        if (X->inst[i].scope == sc && !strcmp(X->inst[i].name + strlen(sc->prefix), name)) {
            elab_hint(&X->E, "'%s' labels a layer; name its result with `=> %s` to use it", name, name);
            return;
        }
    suggest_name(X, sc, name);
}

/* Node names count per op from 1 in source order, skipping any name a
 * label of the same scope already takes. */
static const char *auto_name(Elaborator *X, Scope *sc, const char *base)
{
    int k = strmap_get(&sc->counters, base);
    if (k < 0)
        k = 0;
    const char *name;
    do
        name = arena_printf(X->E.a, "%s%d", base, ++k);
    while (strmap_get(&sc->labels, name) >= 0);
    strmap_put(X->E.a, &sc->counters, base, k);
    return name;
}

static const char *what_of(Elaborator *X, const char *op, const char *name)
{
    return arena_printf(X->E.a, "%s %s", op, name);
}

/* ---- expansion ---- */

static void expand_scope(Elaborator *X, Scope *sc, const AstStmt *stmts);

static const char *stmt_keyword(AstStmtKind k)
{
    switch (k) {
    case AST_NETWORK: return "network";
    case AST_INPUT: return "input";
    case AST_OUTPUT: return "output";
    case AST_BLOCK: return "block";
    case AST_TRAIN: return "train";
    case AST_CHAIN: return "chain";
    }
    return "?";
}

/* First pass over a scope: the names its chains bind and the labels they
 * use, so chains may refer to names bound further down. */
static void collect(Elaborator *X, Scope *sc, const AstStmt *stmts)
{
    int nchain = 0;
    for (const AstStmt *s = stmts; s; s = s->next)
        nchain += s->kind == AST_CHAIN;
    sc->bind = arena_alloc(X->E.a, sizeof(int) * (size_t)(nchain + 1));
    sc->loose = arena_alloc(X->E.a, sizeof(int) * (size_t)(nchain + 1));
    sc->loose_loc = arena_alloc(X->E.a, sizeof(SrcLoc) * (size_t)(nchain + 1));
    for (const AstStmt *s = stmts; s; s = s->next) {
        if (s->kind != AST_CHAIN) {
            if (sc->block)
                elab_error(&X->E, s->loc, s->len, "'%s' is not allowed inside a block",
                           stmt_keyword(s->kind));
            continue;
        }
        for (const AstLayer *l = s->layers; l; l = l->next) {
            if (!l->label)
                continue;
            int prev = strmap_get(&sc->labels, l->label);
            if (prev >= 0) {
                elab_error(&X->E, l->label_loc, l->label_len, "duplicate name '%s'", l->label);
                elab_note(&X->E, X->def[prev].loc, X->def[prev].len, "'%s' is first defined here",
                          l->label);
                strmap_put(X->E.a, &X->dup_labels, arena_printf(X->E.a, "%p", (const void *)l), 1);
                continue;
            }
            strmap_put(X->E.a, &sc->labels, l->label, def_new(X, l->label_loc, l->label_len));
        }
        if (!s->name)
            continue;
        if (sc->block && !strcmp(s->name, "in")) {
            elab_error(&X->E, s->name_loc, s->name_len,
                       "'in' is the block's input; it cannot be bound");
            continue;
        }
        int prev = strmap_get(&sc->names, s->name);
        if (prev >= 0) {
            const Slot *p = &X->slot[prev];
            elab_error(&X->E, s->name_loc, s->name_len, "'%s' is already defined", s->name);
            elab_note(&X->E, p->loc, p->len, "'%s' is first defined here", s->name);
            continue;
        }
        int id = slot_new(X, s->name, s->name_loc, s->name_len);
        strmap_put(X->E.a, &sc->names, s->name, id);
        sc->bind[sc->nbind++] = id;
    }
}

static int inst_new(Elaborator *X)
{
    GROW(X->inst, X->ninst, X->capinst);
    Inst *in = &X->inst[X->ninst];
    memset(in, 0, sizeof *in);
    in->node = -1;
    return X->ninst++;
}

/* A layer instance reading slots in[0..nin).  Returns its result slot;
 * a failed layer still gets one (marked bad) so the chain goes on and
 * later mistakes in it are reported too. */
static int add_layer(Elaborator *X, Scope *sc, const AstLayer *L, const Schema *sch,
                     const char *label, const int *in, int nin)
{
    Elab *E = &X->E;
    const char *name = label ? arena_printf(E->a, "%s%s", sc->prefix, label)
                             : arena_printf(E->a, "%s%s", sc->prefix, auto_name(X, sc, sch->name));
    int id = inst_new(X);
    Inst *I = &X->inst[id];
    I->op = sch->op;
    I->schema = sch;
    I->name = name;
    I->what = what_of(X, sch->name, name);
    I->loc = L->loc;
    I->len = L->len;
    I->scope = sc;
    I->nin = nin;
    I->in = arena_alloc(E->a, sizeof(int) * (size_t)nin);
    memcpy(I->in, in, sizeof(int) * (size_t)nin);
    bool ok = true;
    if (nin < sch->min_in) {
        ok = elab_error(E, L->loc, L->len, "%s needs at least %d inputs, got %d", sch->name,
                        sch->min_in, nin);
        elab_hint(E, "give it a tuple: (a, b) -> %s", sch->name);
    } else if (sch->max_in >= 0 && nin > sch->max_in) {
        if (sch->max_in == 1) {
            ok = elab_error(E, L->loc, L->len, "%s takes one input, got a tuple of %d", sch->name, nin);
            elab_hint(E, "only concat, add, sub and mul take several inputs");
        } else {
            ok = elab_error(E, L->loc, L->len, "%s takes %d inputs, got a tuple of %d", sch->name,
                            sch->max_in, nin);
        }
    }
    ok &= value_bind_ast(E, sch, I->what, L->args, &sc->env, L->loc, L->len, I->attr);
    if (ok)
        ok = value_check_layer(E, sch, I->what, I->attr);
    if (L->label && strmap_get(&X->dup_labels, arena_printf(E->a, "%p", (const void *)L)) >= 0)
        ok = false; /* said in collect() */
    I->bad = !ok;
    int out = slot_new(X, NULL, L->loc, L->len);
    X->slot[out].inst = id;
    return out;
}

/* The block's parameters as a schema, so instances are checked like
 * layers. */
static bool block_schema(Elaborator *X, const AstStmt *b, Schema *s)
{
    memset(s, 0, sizeof *s);
    s->name = b->name;
    s->op = OP_COUNT;
    if (b->nparams > SCHEMA_MAX_ATTR)
        return elab_error(&X->E, b->name_loc, b->name_len, "block '%s' has %d parameters; the limit is %d",
                          b->name, b->nparams, SCHEMA_MAX_ATTR);
    s->npos = b->nparams;
    s->nattr = b->nparams;
    int i = 0;
    for (const AstArg *p = b->params; p; p = p->next, i++) {
        s->attr[i].name = p->name;
        s->attr[i].kind = ATTR_VALUE;
        s->attr[i].def = p->value ? ast_expr_text(X->E.a, p->value) : NULL;
        for (const AstArg *q = b->params; q != p; q = q->next)
            if (!strcmp(q->name, p->name))
                return elab_error(&X->E, p->name_loc, p->name_len,
                                  "block '%s' has two parameters named '%s'", b->name, p->name);
    }
    return true;
}

static int expand_instance(Elaborator *X, Scope *sc, const AstStmt *b, const AstLayer *L,
                           const char *label, const int *in, int nin)
{
    Elab *E = &X->E;
    if (nin != 1) {
        elab_error(E, L->loc, L->len, "block '%s' takes one input, got a tuple of %d", b->name, nin);
        return -1;
    }
    for (int i = 0; i < X->depth; i++) {
        if (X->stack[i] != b)
            continue;
        Buf path = {0};
        for (int j = i; j < X->depth; j++)
            buf_printf(&path, "%s -> ", X->stack[j]->name);
        buf_puts(&path, b->name);
        elab_error(E, L->loc, L->len, "block '%s' instantiates itself: %s", b->name, path.s);
        elab_hint(E, "blocks cannot be recursive; repeat a layer with `* N` instead");
        buf_free(&path);
        return -1;
    }
    if (X->depth == MAX_BLOCK_DEPTH) {
        elab_error(E, L->loc, L->len, "blocks are nested more than %d deep", MAX_BLOCK_DEPTH);
        return -1;
    }
    Schema bs;
    if (!block_schema(X, b, &bs))
        return -1;
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    const char *what = arena_printf(E->a, "block %s", b->name);
    if (!value_bind_ast(E, &bs, what, L->args, &sc->env, L->loc, L->len, arg))
        return -1;

    Scope *in_sc = arena_alloc(E->a, sizeof *in_sc);
    in_sc->parent = sc;
    in_sc->block = b;
    in_sc->inst_name = label ? arena_printf(E->a, "%s%s", sc->prefix, label)
                             : arena_printf(E->a, "%s%s", sc->prefix, auto_name(X, sc, b->name));
    in_sc->prefix = arena_printf(E->a, "%s.", in_sc->inst_name);
    in_sc->inst_loc = L->loc;
    in_sc->inst_len = L->len;
    /* Parameters in order; a default may use the parameters before it. */
    in_sc->env.name = arena_alloc(E->a, sizeof(char *) * (size_t)(b->nparams + 1));
    in_sc->env.val = arena_alloc(E->a, sizeof(Value) * (size_t)(b->nparams + 1));
    int i = 0;
    bool ok = true;
    const Scope *outer = E->scope;
    E->scope = in_sc;
    for (const AstArg *p = b->params; p; p = p->next, i++) {
        Value v;
        if (arg[i])
            v = *arg[i];
        else
            ok &= value_eval(E, &in_sc->env, p->value, &v);
        in_sc->env.name[i] = p->name;
        in_sc->env.val[i] = v;
        in_sc->env.n = i + 1;
    }
    int result = -1;
    if (ok) {
        int s = slot_new(X, "in", L->loc, L->len);
        X->slot[s].alias = in[0];
        X->slot[s].is_in = true;
        strmap_put(E->a, &in_sc->names, "in", s);
        X->stack[X->depth++] = b;
        expand_scope(X, in_sc, b->body);
        X->depth--;
        int out = strmap_get(&in_sc->names, "out");
        if (out < 0) {
            elab_error(E, b->name_loc, b->name_len, "block '%s' never binds 'out'", b->name);
            elab_hint(E, "end its last chain with `=> out`; that is the block's result");
        } else {
            X->slot[out].used = X->slot[out].consumed = true;
            result = out;
        }
        if (!X->slot[s].used) {
            elab_error(E, b->name_loc, b->name_len, "block '%s' never uses its input 'in'", b->name);
            elab_hint(E, "start a chain with `in -> ...`");
        }
        for (int k = 0; k < in_sc->nbind && !X->had_undefined; k++) {
            const Slot *p = &X->slot[in_sc->bind[k]];
            if (!p->used && !elab_slot_failed(X, in_sc->bind[k]) && strcmp(p->name, "out"))
                elab_error(E, p->loc, p->len, "value '%s' is never used", p->name);
        }
        for (int k = 0; k < in_sc->nloose; k++) {
            elab_error(E, in_sc->loose_loc[k], 1, "the result of this chain is never used");
            elab_hint(E, "end it with `=> out` (the block's result) or `=> name`");
        }
    }
    E->scope = outer;
    return result;
}

/* "conv, maxpool, ... and add", then the blocks. */
static const char *layer_list(Elaborator *X)
{
    int n;
    const Schema *rows = schema_layers(&n);
    Buf b = {0};
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? (i == n - 1 && !X->nblock ? " and " : ", ") : "", rows[i].name);
    for (int i = 0; i < X->nblock; i++)
        buf_printf(&b, "%s%s", i == X->nblock - 1 ? " and the block " : ", the block ", X->block[i]->name);
    const char *s = arena_strdup(X->E.a, b.s);
    buf_free(&b);
    return s;
}

static void expand_chain(Elaborator *X, Scope *sc, const AstStmt *st)
{
    Elab *E = &X->E;
    int nin = st->nnames;
    int *in = arena_alloc(E->a, sizeof(int) * (size_t)nin);
    bool ok = true;
    int k = 0;
    for (const AstName *n = st->names; n; n = n->next, k++) {
        in[k] = strmap_get(&sc->names, n->name);
        if (in[k] < 0) {
            undefined(X, sc, n->name, n->loc, n->len);
            in[k] = bad_slot(X, n->loc, n->len);
            continue;
        }
        Slot *s = &X->slot[in[k]];
        s->used = s->consumed = true;
    }
    int bind = st->name ? strmap_get(&sc->names, st->name) : -1;
    /* A name bound twice keeps its first definition. */
    if (bind >= 0 && (X->slot[bind].loc.line != st->name_loc.line ||
                      X->slot[bind].loc.col != st->name_loc.col))
        bind = -1;
    for (const AstLayer *L = st->layers; L && ok; L = L->next) {
        const Schema *sch = schema_find_layer(L->op);
        if (!sch)
            sch = schema_find_form(L->op);
        int bi = strmap_get(&X->blocks, L->op);
        if (!sch && bi < 0) {
            elab_error(E, L->loc, L->len, "unknown layer '%s'", L->op);
            int nl;
            const Schema *rows = schema_layers(&nl);
            int nf;
            const Schema *forms = schema_forms(&nf);
            const char **c = arena_alloc(E->a, sizeof(char *) * (size_t)(nl + X->nblock + nf + 1));
            for (int i = 0; i < nl; i++)
                c[i] = rows[i].name;
            for (int i = 0; i < X->nblock; i++)
                c[nl + i] = X->block[i]->name;
            for (int i = 0; i < nf; i++) /* convolution forms */
                c[nl + X->nblock + i] = forms[i].name;
            const char *s = diag_suggest(L->op, c, nl + X->nblock + nf);
            int nloss;
            const Schema *losses = schema_losses(&nloss);
            if (schema_lookup(losses, nloss, L->op))
                elab_hint(E, "a loss goes in the train section: `loss %s(value)`", L->op);
            else if (strmap_get(&sc->names, L->op) >= 0)
                elab_hint(E, "'%s' is a value; a chain's steps are layers", L->op);
            else if (s)
                elab_hint(E, "did you mean '%s'?", s);
            else
                elab_hint(E, "the layers are %s", layer_list(X));
            in[0] = bad_slot(X, L->loc, L->len);
            nin = 1;
            continue;
        }
        int reps = 1;
        if (L->repeat) {
            Value v;
            int r = 0;
            bool counted = value_eval(E, &sc->env, L->repeat, &v);
            if (counted && v.kind != VAL_INT)
                counted = elab_error(E, v.loc, v.len, "a repetition count must be an integer, got %s",
                                     value_describe(E, &v));
            else if (counted && (v.i < 1 || v.i > MAX_REPEAT))
                counted = elab_error(E, v.loc, v.len, "repetition count %lld is out of range (1 to %d)",
                                     v.i, MAX_REPEAT);
            r = counted ? (int)v.i : 0;
            if (!counted) {
                in[0] = bad_slot(X, L->loc, L->len);
                nin = 1;
                continue;
            }
            reps = r;
        }
        for (int r = 0; r < reps && ok; r++) {
            if (X->ninst >= MAX_INSTS) {
                if (!X->too_big)
                    elab_error(E, L->loc, L->len, "the network expands to more than %d layers",
                               MAX_INSTS);
                X->too_big = true;
                ok = false;
                break;
            }
            const char *label = !L->label ? NULL
                                : L->repeat ? arena_printf(E->a, "%s.%d", L->label, r)
                                            : L->label;
            int res = bi >= 0 ? expand_instance(X, sc, X->block[bi], L, label, in, nin)
                              : add_layer(X, sc, L, sch, label, in, nin);
            in[0] = res >= 0 ? res : bad_slot(X, L->loc, L->len);
            nin = 1;
            if (res < 0)
                break;
        }
        if (elab_stop(E))
            ok = false;
    }
    if (!ok) {
        if (bind >= 0)
            X->slot[bind].bad = true;
        return;
    }
    int last_inst, last_input;
    elab_slot_resolve(X, in[0], &last_inst, &last_input);
    if (bind >= 0) {
        X->slot[bind].alias = in[0];
        if (last_inst >= 0 && !X->inst[last_inst].value_name)
            X->inst[last_inst].value_name = st->name;
    } else if (!st->name) {
        sc->loose[sc->nloose] = in[0];
        sc->loose_loc[sc->nloose++] = st->last->loc;
    }
}

static void expand_scope(Elaborator *X, Scope *sc, const AstStmt *stmts)
{
    collect(X, sc, stmts);
    for (const AstStmt *s = stmts; s && !elab_stop(&X->E); s = s->next)
        if (s->kind == AST_CHAIN)
            expand_chain(X, sc, s);
}

/* ---- the top level ---- */

static bool read_input(Elaborator *X, const AstStmt *s, Shape *shape)
{
    Elab *E = &X->E;
    memset(shape, 0, sizeof *shape);
    shape->batched = true;
    Value v;
    if (!value_eval(E, NULL, s->shape, &v))
        return false;
    if (v.kind != VAL_LIST) {
        elab_error(E, v.loc, v.len, "input '%s': the shape must be a list like [1, 28, 28], got %s",
                   s->name, value_describe(E, &v));
        return false;
    }
    if (v.n == 0) {
        elab_error(E, v.loc, v.len, "input '%s' has an empty shape", s->name);
        elab_hint(E, "give channels then spatial dims: [C, H, W], or [F] for plain features");
        return false;
    }
    if (v.n > 4) {
        elab_error(E, v.loc, v.len, "input '%s' has %d dimensions; at most 4 are supported ([C, D, H, W])",
                   s->name, v.n);
        return false;
    }
    long numel = 1;
    bool ok = true;
    for (int i = 0; i < v.n; i++) {
        const Value *d = &v.item[i];
        if (d->kind != VAL_INT) {
            ok = elab_error(E, d->loc, d->len, "input '%s': dimension %d must be an integer, got %s",
                            s->name, i + 1, value_describe(E, d));
            continue;
        }
        if (d->i < 1) {
            ok = elab_error(E, d->loc, d->len, "input '%s': dimension %d is %lld; dimensions must be at least 1",
                            s->name, i + 1, d->i);
            continue;
        }
        shape->d[i] = (int)d->i;
        numel *= d->i;
        if (numel > INT_MAX) {
            ok = elab_error(E, v.loc, v.len, "input '%s' has more than %d elements per sample",
                            s->name, INT_MAX);
            break;
        }
    }
    shape->rank = v.n;
    return ok;
}

/* The network's outputs: the `output` statements, or else the one value
 * no layer reads. */
static void resolve_outputs(Elaborator *X, const AstStmt *const *outs, int nouts)
{
    Elab *E = &X->E;
    Scope *top = X->top;
    int most = top->nloose + 1;
    for (int i = 0; i < nouts; i++)
        most += outs[i]->nnames;
    X->outputs = arena_alloc(E->a, sizeof(int) * (size_t)most);
    if (nouts > 0) {
        for (int i = 0; i < nouts; i++) {
            for (const AstName *n = outs[i]->names; n; n = n->next) {
                int s = strmap_get(&top->names, n->name);
                if (s < 0) {
                    undefined(X, top, n->name, n->loc, n->len);
                    continue;
                }
                Slot *p = &X->slot[s];
                if (p->input >= 0) {
                    elab_error(E, n->loc, n->len, "output '%s' is an input; outputs are computed by layers",
                               n->name);
                    continue;
                }
                if (p->output) {
                    elab_error(E, n->loc, n->len, "'%s' is already an output", n->name);
                    continue;
                }
                p->used = p->output = true;
                X->outputs[X->noutputs++] = s;
            }
        }
        for (int k = 0; k < top->nloose; k++) {
            elab_error(E, top->loose_loc[k], 1, "the result of this chain is never used");
            elab_hint(E, "bind it with `=> name` and list it in `output`");
        }
        return;
    }
    int cand[8], ncand = 0, nbad = 0;
    SrcLoc cloc[8];
    const char *cname[8];
    for (int k = 0; k < top->nloose; k++) {
        nbad += elab_slot_failed(X, top->loose[k]);
        if (ncand < 8) {
            cloc[ncand] = top->loose_loc[k];
            cname[ncand] = NULL;
            cand[ncand] = top->loose[k];
        }
        ncand++;
    }
    for (int k = 0; k < top->nbind; k++) {
        Slot *p = &X->slot[top->bind[k]];
        if (p->consumed)
            continue;
        nbad += elab_slot_failed(X, top->bind[k]);
        if (ncand < 8) {
            cloc[ncand] = p->loc;
            cname[ncand] = p->name;
            cand[ncand] = top->bind[k];
        }
        ncand++;
    }
    if (ncand == 1) {
        X->slot[cand[0]].used = X->slot[cand[0]].output = true;
        X->outputs[X->noutputs++] = cand[0];
        return;
    }
    if (ncand == 0) {
        if (E->d->nerror == E->nerror0 && X->ninst > 0)
            elab_error(E, X->inst[0].loc, X->inst[0].len,
                       "cannot tell the network's output: every value is read by a layer");
        else if (E->d->nerror == E->nerror0)
            elab_error(E, (SrcLoc){E->m->file, 1, 1}, 1, "the network has no layers");
        return;
    }
    if (nbad)
        return;
    Buf list = {0};
    for (int i = 0; i < ncand && i < 8; i++)
        buf_printf(&list, "%s%s%s", i ? ", " : "", cname[i] ? cname[i] : "an unnamed result",
                   cname[i] ? "" : arena_printf(E->a, " at %d:%d", cloc[i].line, cloc[i].col));
    elab_error(E, cloc[0], 1, "cannot tell the network's output: %d values are not read by any layer (%s)",
               ncand, list.s ? list.s : "");
    elab_hint(E, "say which are outputs, e.g. `output %s`", cname[0] ? cname[0] : "name");
    buf_free(&list);
    for (int i = 0; i < ncand && i < 8; i++)
        X->slot[cand[i]].output = true; /* said once here, not again as unused */
    for (int k = 0; k < top->nbind; k++)
        if (!X->slot[top->bind[k]].consumed)
            X->slot[top->bind[k]].output = true;
}

static void check_unused(Elaborator *X)
{
    Elab *E = &X->E;
    for (int i = 0; i < X->ninput; i++) {
        const Slot *p = &X->slot[X->input[i].slot];
        if (!p->used && !p->bad)
            elab_error(E, p->loc, p->len, "input '%s' is never used", p->name);
    }
    for (int k = 0; k < X->top->nbind && !X->had_undefined; k++) {
        const Slot *p = &X->slot[X->top->bind[k]];
        if (!p->used && !p->output && !elab_slot_failed(X, X->top->bind[k])) {
            elab_error(E, p->loc, p->len, "value '%s' is never used", p->name);
            elab_hint(E, "use it, list it in `output`, or remove the binding");
        }
    }
}

/* ---- entry ---- */


/* `(shuffle=warn|auto|off)` after `network NAME` or a block's parameters:
 * the only option so far.  *mode is left SHUFFLE_WARN when not given or
 * wrong (the mistake is reported). */
static const char *const shuffle_words[] = {"warn", "auto", "off"};

static int option_mode(const AstArg *a)
{
    if (a->name && !strcmp(a->name, "shuffle") && a->value && a->value->kind == AST_NAME)
        for (int i = 0; i < 3; i++)
            if (!strcmp(a->value->s, shuffle_words[i]))
                return i;
    return -1;
}

static void read_options(Elab *E, const AstStmt *s, int *mode)
{
    *mode = SHUFFLE_WARN;
    const char *where = s->kind == AST_NETWORK ? "network" : "block";
    for (const AstArg *a = s->options; a; a = a->next) {
        SrcLoc at = a->name ? a->name_loc : a->value->loc;
        int len = a->name ? a->name_len : a->value->len;
        if (!a->name) {
            elab_error(E, at, len, "a %s option is written name=value", where);
            elab_hint(E, "the options are: shuffle=warn|auto|off");
        } else if (strcmp(a->name, "shuffle")) {
            elab_error(E, at, len, "unknown %s option '%s'", where, a->name);
            elab_hint(E, "the options are: shuffle=warn|auto|off");
        } else if (option_mode(a) < 0) {
            elab_error(E, a->value->loc, a->value->len, "shuffle must be warn, auto or off, not '%s'",
                       ast_expr_text(E->a, a->value));
        } else {
            for (const AstArg *b = s->options; b != a; b = b->next)
                if (b->name && !strcmp(b->name, a->name)) {
                    elab_error(E, at, len, "option '%s' is given twice", a->name);
                    break;
                }
            *mode = option_mode(a);
        }
    }
}

int elab_shuffle_mode(const Elaborator *X, const Scope *sc)
{
    for (; sc; sc = sc->parent)
        if (sc->block)
            for (const AstArg *a = sc->block->options; a; a = a->next)
                if (option_mode(a) >= 0)
                    return option_mode(a);
    return X->shuffle;
}

static void read_top(Elaborator *X, const AstFile *ast, const AstStmt **train,
                     const AstStmt ***outs, int *nouts)
{
    Elab *E = &X->E;
    Model *m = E->m;
    const AstStmt *network = NULL;
    int nstmt = 0;
    for (const AstStmt *s = ast->stmts; s; s = s->next)
        nstmt++;
    *outs = arena_alloc(E->a, sizeof(AstStmt *) * (size_t)(nstmt + 1));
    X->input = arena_alloc(E->a, sizeof(Input) * (size_t)(nstmt + 1));
    X->block = arena_alloc(E->a, sizeof(AstStmt *) * (size_t)(nstmt + 1));
    for (const AstStmt *s = ast->stmts; s; s = s->next) {
        switch (s->kind) {
        case AST_NETWORK:
            read_options(E, s, &X->shuffle);
            if (network) {
                elab_error(E, s->loc, s->len, "a second 'network' statement");
                elab_note(E, network->loc, network->len, "the network is named here");
            } else {
                network = s;
                m->name = arena_strdup(m->arena, s->name);
                if (s != ast->stmts)
                    elab_error(E, s->loc, s->len, "'network' must be the first statement");
            }
            break;
        case AST_INPUT:
            X->input[X->ninput++].stmt = s;
            break;
        case AST_OUTPUT:
            (*outs)[(*nouts)++] = s;
            break;
        case AST_TRAIN:
            if (*train) {
                elab_error(E, s->loc, s->len, "a second 'train' section");
                elab_note(E, (*train)->loc, (*train)->len, "the first is here");
            } else {
                *train = s;
            }
            break;
        case AST_BLOCK: {
            int prev = strmap_get(&X->blocks, s->name);
            if (prev >= 0) {
                elab_error(E, s->name_loc, s->name_len, "block '%s' is already defined", s->name);
                elab_note(E, X->block[prev]->name_loc, X->block[prev]->name_len, "first defined here");
            } else if (schema_find_layer(s->name) || schema_find_form(s->name)) {
                elab_error(E, s->name_loc, s->name_len, "a block cannot be named '%s': that is a layer",
                           s->name);
            } else {
                int mode;
                read_options(E, s, &mode);
                strmap_put(E->a, &X->blocks, s->name, X->nblock);
                X->block[X->nblock++] = s;
            }
            break;
        }
        case AST_CHAIN:
            break;
        }
    }
    if (!network) {
        SrcLoc at = ast->stmts ? ast->stmts->loc : (SrcLoc){m->file, 1, 1};
        elab_error(E, at, ast->stmts ? ast->stmts->len : 1,
                   ast->stmts ? "the file must start with `network NAME`" : "the file is empty");
        elab_hint(E, "name the network first: `network mynet`");
        m->name = "network";
    }
}

static void add_inputs(Elaborator *X)
{
    Elab *E = &X->E;
    Scope *top = X->top;
    for (int i = 0; i < X->ninput; i++) {
        Input *in = &X->input[i];
        const AstStmt *s = in->stmt;
        in->node = -1;
        in->bad = !read_input(X, s, &in->shape);
        int prev = strmap_get(&top->labels, s->name);
        if (prev >= 0) {
            elab_error(E, s->name_loc, s->name_len, "duplicate name '%s'", s->name);
            elab_note(E, X->def[prev].loc, X->def[prev].len, "'%s' is first defined here", s->name);
            in->slot = slot_new(X, s->name, s->name_loc, s->name_len);
            X->slot[in->slot].used = X->slot[in->slot].bad = true;
            continue;
        }
        strmap_put(E->a, &top->labels, s->name, def_new(X, s->name_loc, s->name_len));
        in->slot = slot_new(X, s->name, s->name_loc, s->name_len);
        X->slot[in->slot].input = i;
        X->slot[in->slot].bad = in->bad;
        strmap_put(E->a, &top->names, s->name, in->slot);
    }
}

bool elab_model(Model *m, const AstFile *ast, Diag *d)
{
    Elaborator X;
    memset(&X, 0, sizeof X);
    X.E.d = d;
    X.E.a = arena_new();
    X.E.m = m;
    X.E.nerror0 = d->nerror;
    X.E.said = true;

    const AstStmt *train = NULL;
    const AstStmt **outs = NULL;
    int nouts = 0;
    read_top(&X, ast, &train, &outs, &nouts);
    train_read(&X.E, train, &X.plan);

    X.top = arena_alloc(X.E.a, sizeof *X.top);
    X.top->prefix = "";
    add_inputs(&X);
    /* Loss targets and the loss get fixed names; keep them free. */
    if (train) {
        strmap_put(X.E.a, &X.top->labels, "target", def_new(&X, train->loc, train->len));
        strmap_put(X.E.a, &X.top->labels, "loss", def_new(&X, train->loc, train->len));
    }
    expand_scope(&X, X.top, ast->stmts);
    if (!elab_stop(&X.E)) {
        resolve_outputs(&X, outs, nouts);
        if (X.plan.loss_name) {
            int s = strmap_get(&X.top->names, X.plan.loss_name);
            if (s < 0)
                undefined(&X, X.top, X.plan.loss_name, X.plan.loss_name_loc, X.plan.loss_name_len);
            else
                X.slot[s].used = true;
        }
        const Value *t = X.plan.target;
        if (t) {
            int s = strmap_get(&X.top->names, t->s);
            if (s < 0)
                undefined(&X, X.top, t->s, t->loc, t->len);
            else
                X.slot[s].used = true;
        }
        check_unused(&X);
    }
    if (!elab_stop(&X.E)) {
        elab_emit(&X);
        train_params(&X.E, &X.plan);
    }
    elab_flush(&X.E);
    bool ok = d->nerror == X.E.nerror0;
    free(X.slot);
    free(X.inst);
    free(X.def);
    arena_free(X.E.a);
    return ok;
}
