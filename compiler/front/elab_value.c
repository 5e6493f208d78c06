/* elab_value.c - attribute values: evaluation, binding to a schema, and
 * typed reads (integers, per-axis lists, padding, initialisers).
 *
 * Needs: schema.h rows.  Provides the value_* functions of elab.h.  All
 * integer arithmetic stays within int (every attribute ends up as one), is
 * checked for overflow, and division must be exact: `ch/2` with ch = 3 is
 * an error, not 1.
 *
 *   conv(ch*4, kernel=[3, k], pad=same)   with ch = 16, k = 1
 *   -> out = 64, kernel = {3, 1}, pad = same (resolved against the input)
 */
#include "elab.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* ---- evaluation ---- */

static const Value *env_get(const Env *env, const char *name)
{
    if (!env)
        return NULL;
    for (int i = env->n - 1; i >= 0; i--)
        if (!strcmp(env->name[i], name))
            return &env->val[i];
    return NULL;
}

const char *value_describe(Elab *E, const Value *v)
{
    switch (v->kind) {
    case VAL_INT: return arena_printf(E->a, "integer %lld", v->i);
    case VAL_FLOAT: return arena_printf(E->a, "number %g", v->f);
    case VAL_NAME: return arena_printf(E->a, "name '%s'", v->s);
    case VAL_STRING: return arena_printf(E->a, "string \"%s\"", v->s);
    case VAL_LIST: return arena_printf(E->a, "a list of %d", v->n);
    case VAL_CALL: return arena_printf(E->a, "%s(...)", v->s);
    }
    return "a value";
}

static bool is_number(const Value *v)
{
    return v->kind == VAL_INT || v->kind == VAL_FLOAT;
}

static double as_double(const Value *v)
{
    return v->kind == VAL_INT ? (double)v->i : v->f;
}

/* An operand of arithmetic must be a number: a name here is most likely
 * a misspelt block parameter. */
static bool operand(Elab *E, const Env *env, const Value *v)
{
    if (is_number(v))
        return true;
    if (v->kind == VAL_NAME) {
        elab_error(E, v->loc, v->len, "unknown name '%s' in arithmetic", v->s);
        if (env && env->n > 0) {
            const char *s = diag_suggest(v->s, env->name, env->n);
            if (s)
                elab_hint(E, "did you mean '%s'?", s);
        } else {
            elab_hint(E, "only block parameters can be used in arithmetic");
        }
        return false;
    }
    return elab_error(E, v->loc, v->len, "cannot do arithmetic on %s", value_describe(E, v));
}

static bool arith(Elab *E, const AstExpr *e, const Value *l, const Value *r, Value *out)
{
    if (l->kind == VAL_FLOAT || r->kind == VAL_FLOAT) {
        double a = as_double(l), b = as_double(r), x = 0;
        switch (e->op) {
        case '+': x = a + b; break;
        case '-': x = a - b; break;
        case '*': x = a * b; break;
        case '/':
            if (b == 0)
                return elab_error(E, e->loc, e->len, "division by zero");
            x = a / b;
            break;
        }
        if (!isfinite(x))
            return elab_error(E, e->loc, e->len, "the result is too large");
        out->kind = VAL_FLOAT;
        out->f = x;
        return true;
    }
    long long a = l->i, b = r->i, x = 0;
    switch (e->op) {
    case '+': x = a + b; break;
    case '-': x = a - b; break;
    case '*':
        /* Operands are within int, so the product fits in long long. */
        x = a * b;
        break;
    case '/':
        if (b == 0)
            return elab_error(E, e->loc, e->len, "division by zero");
        if (a % b != 0) {
            elab_error(E, e->loc, e->len, "%lld / %lld is not a whole number", a, b);
            elab_hint(E, "integer attributes need exact division");
            return false;
        }
        x = a / b;
        break;
    }
    if (x > INT_MAX || x < -(long long)INT_MAX)
        return elab_error(E, e->loc, e->len, "the result %lld is out of range (at most %d)", x, INT_MAX);
    out->kind = VAL_INT;
    out->i = x;
    return true;
}

bool value_eval(Elab *E, const Env *env, const AstExpr *e, Value *out)
{
    memset(out, 0, sizeof *out);
    out->loc = e->loc;
    out->len = e->len;
    switch (e->kind) {
    case AST_INT:
        out->kind = VAL_INT;
        out->i = e->i;
        return true;
    case AST_FLOAT:
        out->kind = VAL_FLOAT;
        out->f = e->f;
        return true;
    case AST_STRING:
        out->kind = VAL_STRING;
        out->s = e->s;
        return true;
    case AST_NAME: {
        const Value *p = env_get(env, e->s);
        if (p) {
            /* A parameter's value, located where it is used. */
            *out = *p;
            out->loc = e->loc;
            out->len = e->len;
            out->name = NULL;
            return true;
        }
        out->kind = VAL_NAME;
        out->s = e->s;
        return true;
    }
    case AST_LIST:
    case AST_CALL: {
        out->kind = e->kind == AST_LIST ? VAL_LIST : VAL_CALL;
        out->s = e->s;
        out->n = e->nargs;
        out->item = arena_alloc(E->a, sizeof(Value) * (size_t)(e->nargs + 1));
        bool ok = true;
        int i = 0;
        for (const AstArg *a = e->args; a; a = a->next, i++) {
            ok &= value_eval(E, env, a->value, &out->item[i]);
            out->item[i].name = a->name;
            out->item[i].name_loc = a->name_loc;
            out->item[i].name_len = a->name_len;
        }
        return ok;
    }
    case AST_NEG: {
        Value x;
        if (!value_eval(E, env, e->lhs, &x) || !operand(E, env, &x))
            return false;
        out->kind = x.kind;
        out->i = -x.i;
        out->f = -x.f;
        return true;
    }
    case AST_BINARY: {
        Value l, r;
        bool ok = value_eval(E, env, e->lhs, &l);
        ok &= value_eval(E, env, e->rhs, &r);
        if (!ok || !operand(E, env, &l) || !operand(E, env, &r))
            return false;
        return arith(E, e, &l, &r, out);
    }
    }
    return false;
}

/* ---- binding arguments to a schema ---- */

static const char *noun_of(const Schema *s)
{
    return s->op != OP_COUNT && schema_layer(s->op) ? "attribute" : "parameter";
}

static void list_attrs(Elab *E, const Schema *s)
{
    char sig[256];
    schema_signature(s, sig, sizeof sig);
    elab_hint(E, "%s", sig);
}

bool value_bind(Elab *E, const Schema *s, const char *what, const Value *args, int nargs,
                SrcLoc call_loc, int call_len, const Value **out)
{
    bool ok = true, named = false;
    int npos = 0;
    for (int i = 0; i < s->nattr; i++)
        out[i] = NULL;
    for (int i = 0; i < nargs; i++)
        npos += args[i].name == NULL;
    int pos = 0;
    for (int i = 0; i < nargs; i++) {
        const Value *a = &args[i];
        int idx;
        if (!a->name) {
            if (named) {
                ok = elab_error(E, a->loc, a->len, "%s: a positional argument cannot follow named ones", what);
                continue;
            }
            if (pos >= s->npos) {
                if (s->nattr == 0)
                    elab_error(E, a->loc, a->len, "%s takes no arguments", what);
                else if (s->npos == 0)
                    elab_error(E, a->loc, a->len, "%s takes only named arguments, like %s=...", what,
                               s->attr[0].name);
                else
                    elab_error(E, a->loc, a->len, "%s takes %d positional argument%s, got %d", what,
                               s->npos, s->npos == 1 ? "" : "s", npos);
                if (s->nattr > 0)
                    list_attrs(E, s);
                return false;
            }
            idx = pos++;
        } else {
            named = true;
            idx = schema_attr_index(s, a->name);
            if (idx < 0) {
                ok = elab_error(E, a->name_loc, a->name_len, "%s has no %s '%s'", what, noun_of(s), a->name);
                const char *cands[SCHEMA_MAX_ATTR];
                for (int k = 0; k < s->nattr; k++)
                    cands[k] = s->attr[k].name;
                const char *sug = diag_suggest(a->name, cands, s->nattr);
                if (sug)
                    elab_hint(E, "did you mean '%s'?", sug);
                else if (s->nattr > 0)
                    list_attrs(E, s);
                continue;
            }
        }
        if (out[idx]) {
            const Value *p = out[idx];
            ok = elab_error(E, a->name ? a->name_loc : a->loc, a->name ? a->name_len : a->len,
                            "%s: '%s' is given twice", what, s->attr[idx].name);
            elab_note(E, p->name ? p->name_loc : p->loc, p->name ? p->name_len : p->len,
                      "first given here");
            continue;
        }
        out[idx] = a;
    }
    for (int i = 0; i < s->nattr && ok; i++) {
        if (!out[i] && !s->attr[i].def) {
            ok = elab_error(E, call_loc, call_len, "%s needs '%s'", what, s->attr[i].name);
            list_attrs(E, s);
        }
    }
    return ok;
}

bool value_bind_ast(Elab *E, const Schema *s, const char *what, const AstArg *args,
                    const Env *env, SrcLoc call_loc, int call_len, const Value **out)
{
    int n = 0;
    for (const AstArg *a = args; a; a = a->next)
        n++;
    Value *v = arena_alloc(E->a, sizeof(Value) * (size_t)(n + 1));
    bool ok = true;
    int i = 0;
    for (const AstArg *a = args; a; a = a->next, i++) {
        /* A failed value still takes its place, so it is not also
         * reported as missing. */
        ok &= value_eval(E, env, a->value, &v[i]);
        v[i].name = a->name;
        v[i].name_loc = a->name_loc;
        v[i].name_len = a->name_len;
    }
    return value_bind(E, s, what, v, n, call_loc, call_len, out) && ok;
}

/* ---- typed reads ---- */

static bool kind_error(Elab *E, const char *what, const AttrSpec *a, const Value *v, const char *want)
{
    elab_error(E, v->loc, v->len, "%s: %s expects %s, got %s", what, a->name, want, value_describe(E, v));
    /* A name where a number belongs is usually a block parameter used
     * outside its block, or misspelt. */
    static const char *const words[] = {"same", "valid", "true", "false"};
    bool word = false;
    for (size_t i = 0; v->kind == VAL_NAME && i < sizeof words / sizeof words[0]; i++)
        word |= !strcmp(v->s, words[i]);
    if (v->kind == VAL_NAME && !word && a->kind != ATTR_BOOL && a->kind != ATTR_INIT &&
        a->kind != ATTR_REDUCTION)
        elab_hint(E, "a name in an attribute must be a parameter of the enclosing block");
    return false;
}

static bool int_in_range(Elab *E, const char *what, const AttrSpec *a, const Value *v)
{
    if (v->i < a->min)
        return elab_error(E, v->loc, v->len, "%s: %s must be at least %d, got %lld", what, a->name,
                          a->min, v->i);
    return true;
}

bool value_int(Elab *E, const char *what, const AttrSpec *a, const Value *v, int *out)
{
    if (v->kind != VAL_INT)
        return kind_error(E, what, a, v, "an integer");
    if (!int_in_range(E, what, a, v))
        return false;
    *out = (int)v->i;
    return true;
}

bool value_float(Elab *E, const char *what, const AttrSpec *a, const Value *v, double *out)
{
    if (!is_number(v))
        return kind_error(E, what, a, v, "a number");
    *out = as_double(v);
    return true;
}

bool value_bool(Elab *E, const char *what, const AttrSpec *a, const Value *v, bool *out)
{
    if (v->kind == VAL_NAME && (!strcmp(v->s, "true") || !strcmp(v->s, "false"))) {
        *out = !strcmp(v->s, "true");
        return true;
    }
    kind_error(E, what, a, v, "true or false");
    return false;
}

bool value_string(Elab *E, const char *what, const AttrSpec *a, const Value *v, const char **out)
{
    if (v->kind != VAL_STRING)
        return kind_error(E, what, a, v, "a string");
    *out = v->s;
    return true;
}

bool value_floats(Elab *E, const char *what, const AttrSpec *a, const Value *v, float **out, int *n)
{
    if (is_number(v)) {
        *out = arena_alloc(E->m->arena, sizeof(float));
        (*out)[0] = (float)as_double(v);
        *n = 1;
        return true;
    }
    if (v->kind != VAL_LIST || v->n == 0)
        return kind_error(E, what, a, v, "a list of numbers");
    float *x = arena_alloc(E->m->arena, sizeof(float) * (size_t)v->n);
    bool ok = true;
    for (int i = 0; i < v->n; i++) {
        if (!is_number(&v->item[i]))
            ok = kind_error(E, what, a, &v->item[i], "numbers in its list");
        else
            x[i] = (float)as_double(&v->item[i]);
    }
    *out = x;
    *n = v->n;
    return ok;
}

bool value_reduction(Elab *E, const char *what, const AttrSpec *a, const Value *v, Reduction *out)
{
    if (v->kind == VAL_NAME && (!strcmp(v->s, "mean") || !strcmp(v->s, "sum"))) {
        *out = !strcmp(v->s, "sum") ? RED_SUM : RED_MEAN;
        return true;
    }
    kind_error(E, what, a, v, "mean or sum");
    if (v->kind == VAL_NAME && !strcmp(v->s, "none"))
        elab_hint(E, "netc losses are scalars: use mean or sum");
    return false;
}

bool value_init(Elab *E, const char *what, const Value *v, InitSpec *out)
{
    int n;
    const Schema *rows = schema_inits(&n);
    if (v->kind != VAL_NAME && v->kind != VAL_CALL)
        return elab_error(E, v->loc, v->len, "%s: init expects an initialiser like he_uniform, got %s",
                          what, value_describe(E, v));
    const Schema *s = schema_lookup(rows, n, v->s);
    if (!s) {
        elab_error(E, v->loc, v->len, "unknown initialiser '%s'", v->s);
        /* Other frameworks' names for the same initialisers. */
        static const char *const alias[][2] = {
            {"kaiming_uniform", "he_uniform"}, {"kaiming_normal", "he_normal"},
            {"glorot_uniform", "xavier_uniform"}, {"glorot_normal", "xavier_normal"},
        };
        for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++) {
            if (!strcmp(v->s, alias[i][0])) {
                elab_hint(E, "netc calls it '%s'", alias[i][1]);
                return false;
            }
        }
        const char *c[16];
        for (int i = 0; i < n && i < 16; i++)
            c[i] = rows[i].name;
        const char *sug = diag_suggest(v->s, c, n);
        if (sug)
            elab_hint(E, "did you mean '%s'?", sug);
        else
            elab_hint(E, "the initialisers are he_uniform, he_normal, xavier_uniform, xavier_normal, "
                         "uniform(a, b) and normal(mean, std)");
        return false;
    }
    out->kind = s->init;
    out->a = out->b = 0;
    if (v->kind == VAL_NAME) {
        if (s->nattr == 0)
            return true;
        char sig[128];
        schema_signature(s, sig, sizeof sig);
        return elab_error(E, v->loc, v->len, "initialiser '%s' needs its arguments: %s", s->name, sig);
    }
    const Value *arg[SCHEMA_MAX_ATTR];
    const char *w = arena_printf(E->a, "initialiser %s", s->name);
    if (!value_bind(E, s, w, v->item, v->n, v->loc, v->len, arg))
        return false;
    double x[2] = {0, 0};
    for (int i = 0; i < s->nattr; i++)
        if (!value_float(E, w, &s->attr[i], arg[i], &x[i]))
            return false;
    if (s->init == INIT_UNIFORM && !(x[0] < x[1]))
        return elab_error(E, v->loc, v->len, "uniform(%g, %g): the lower bound must be below the upper",
                          x[0], x[1]);
    if (s->init == INIT_NORMAL && !(x[1] > 0))
        return elab_error(E, v->loc, v->len, "normal(%g, %g): std must be greater than 0", x[0], x[1]);
    out->a = (float)x[0];
    out->b = (float)x[1];
    return true;
}

/* winograd */
/* algo=: the name of a convolution algorithm (gemm is the dense layers'). */
bool value_algo(Elab *E, const char *what, const AttrSpec *a, const Value *v, int *out)
{
    static const char *const names[] = {"auto", "direct", "im2col", "winograd", "winograd2", "winograd4", "fft"};
    if (v->kind != VAL_NAME)
        return kind_error(E, what, a, v, "an algorithm name");
    Algo algo;
    if (algo_parse(v->s, &algo) && algo != ALGO_GEMM) {
        *out = (int)algo;
        return true;
    }
    elab_error(E, v->loc, v->len, "%s: unknown algorithm '%s'", what, v->s);
    const char *sug = diag_suggest(v->s, names, (int)(sizeof names / sizeof names[0]));
    if (sug)
        elab_hint(E, "did you mean '%s'?", sug);
    else
        elab_hint(E, "the algorithms are auto, direct, im2col, winograd (winograd4), winograd2 and fft");
    return false;
}

static const char *axes_form(int nsp)
{
    return nsp == 1 ? "[C, L]" : nsp == 2 ? "[C, H, W]" : "[C, D, H, W]";
}

bool value_axes(Elab *E, const char *what, const AttrSpec *a, const Value *v, int nsp, int out[NETC_MAX_SPATIAL])
{
    for (int i = 0; i < NETC_MAX_SPATIAL; i++)
        out[i] = 1;
    if (v->kind == VAL_INT) {
        if (!int_in_range(E, what, a, v))
            return false;
        for (int i = 0; i < (nsp > 0 ? nsp : NETC_MAX_SPATIAL); i++)
            out[i] = (int)v->i;
        return true;
    }
    if (v->kind != VAL_LIST)
        return kind_error(E, what, a, v, "an integer or a list of integers");
    if (v->n == 0 || v->n > NETC_MAX_SPATIAL)
        return elab_error(E, v->loc, v->len, "%s: %s has %d values; give 1 to %d, one per spatial axis",
                          what, a->name, v->n, NETC_MAX_SPATIAL);
    bool ok = true;
    for (int i = 0; i < v->n; i++) {
        const Value *x = &v->item[i];
        if (x->kind != VAL_INT)
            ok = kind_error(E, what, a, x, "integers in its list");
        else if (!int_in_range(E, what, a, x))
            ok = false;
        else
            out[i] = (int)x->i;
    }
    if (ok && nsp > 0 && v->n != nsp) {
        elab_error(E, v->loc, v->len, "%s: %s has %d values, but the input %s has %d spatial ax%s",
                   what, a->name, v->n, axes_form(nsp), nsp, nsp == 1 ? "is" : "es");
        elab_hint(E, "give one value per spatial axis, or a single number for all");
        return false;
    }
    return ok;
}

bool value_pad(Elab *E, const char *what, const AttrSpec *a, const Value *v, int nsp,
               const int *in, const int *kernel, const int *stride, const int *dilation,
               int lo[NETC_MAX_SPATIAL], int hi[NETC_MAX_SPATIAL])
{
    for (int i = 0; i < NETC_MAX_SPATIAL; i++)
        lo[i] = hi[i] = 0;
    int axes = nsp > 0 ? nsp : NETC_MAX_SPATIAL;
    if (v->kind == VAL_INT) {
        if (!int_in_range(E, what, a, v))
            return false;
        for (int i = 0; i < axes; i++)
            lo[i] = hi[i] = (int)v->i;
        return true;
    }
    if (v->kind == VAL_NAME) {
        if (!strcmp(v->s, "valid"))
            return true;
        if (strcmp(v->s, "same")) {
            elab_error(E, v->loc, v->len, "%s: pad expects a number, a list, same or valid, got name '%s'",
                       what, v->s);
            static const char *const forms[] = {"same", "valid"};
            const char *s = diag_suggest(v->s, forms, 2);
            if (s)
                elab_hint(E, "did you mean '%s'?", s);
            return false;
        }
        if (nsp <= 0 || !in)
            return true; /* resolved when the input's size is known */
        /* Output ceil(in/stride); the padding that needs, low side first. */
        for (int i = 0; i < nsp; i++) {
            long o = (in[i] + stride[i] - 1) / stride[i];
            long total = (o - 1) * stride[i] + (long)dilation[i] * (kernel[i] - 1) + 1 - in[i];
            if (total < 0)
                total = 0;
            lo[i] = (int)(total / 2);
            hi[i] = (int)(total - total / 2);
        }
        return true;
    }
    if (v->kind != VAL_LIST)
        return kind_error(E, what, a, v, "a number, a list, same or valid");
    if (v->n == 0 || v->n > 2 * NETC_MAX_SPATIAL)
        return elab_error(E, v->loc, v->len, "%s: pad has %d values; give one per axis or two per axis",
                          what, v->n);
    int x[2 * NETC_MAX_SPATIAL];
    bool ok = true;
    for (int i = 0; i < v->n; i++) {
        const Value *p = &v->item[i];
        if (p->kind != VAL_INT)
            ok = kind_error(E, what, a, p, "integers in its list");
        else if (!int_in_range(E, what, a, p))
            ok = false;
        else
            x[i] = (int)p->i;
    }
    if (!ok || nsp <= 0)
        return ok;
    /* One axis: a 2-list can only mean its two sides. */
    if (v->n == nsp && !(nsp == 1 && v->n == 2)) {
        for (int i = 0; i < nsp; i++)
            lo[i] = hi[i] = x[i];
        return true;
    }
    if (v->n == 2 * nsp) {
        for (int i = 0; i < nsp; i++) {
            lo[i] = x[2 * i];
            hi[i] = x[2 * i + 1];
        }
        return true;
    }
    static const char *const sides[] = {
        "", "[left, right]", "[top, bottom, left, right]", "[front, back, top, bottom, left, right]"};
    elab_error(E, v->loc, v->len, "%s: pad has %d values; for the input %s give %d (one per axis) or %d %s",
               what, v->n, axes_form(nsp), nsp, 2 * nsp, sides[nsp]);
    return false;
}

bool value_check_layer(Elab *E, const Schema *s, const char *what, const Value **attr)
{
    bool ok = true;
    for (int i = 0; i < s->nattr; i++) {
        const Value *v = attr[i];
        const AttrSpec *a = &s->attr[i];
        if (!v)
            continue;
        int ints[NETC_MAX_SPATIAL], lo[NETC_MAX_SPATIAL], hi[NETC_MAX_SPATIAL], n;
        bool b;
        InitSpec init;
        switch (a->kind) {
        case ATTR_INT: ok &= value_int(E, what, a, v, &n); break;
        case ATTR_AXES: ok &= value_axes(E, what, a, v, -1, ints); break;
        case ATTR_PAD: ok &= value_pad(E, what, a, v, -1, NULL, NULL, NULL, NULL, lo, hi); break;
        case ATTR_BOOL: ok &= value_bool(E, what, a, v, &b); break;
        case ATTR_INIT: ok &= value_init(E, what, v, &init); break;
        case ATTR_ALGO: ok &= value_algo(E, what, a, v, &n); break;
        default: break;
        }
    }
    return ok;
}
