/* ast.c - builds the syntax tree for the grammar actions, and prints it.
 *
 * Every grammar action is one call here.  Builders only record what was
 * written and where; they never judge it (elab.c does).  Lists are built
 * newest first by the grammar and reversed by the builder that owns them.
 */
#include "ast.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

SrcLoc ast_srcloc(const ParseCtx *c, const AstLoc *l)
{
    return (SrcLoc){c->file, l->first_line, l->first_column};
}

/* Spans that cross a line are underlined to the end of the first line. */
int ast_loclen(const AstLoc *l)
{
    if (l->last_line != l->first_line)
        return INT_MAX / 2;
    return l->last_column > l->first_column ? l->last_column - l->first_column : 1;
}

#define NEW(c, T) ((T *)arena_alloc((c)->arena, sizeof(T)))

#define REVERSE(T, list, count)                 \
    do {                                        \
        T *rev_ = NULL, *nx_;                   \
        int n_ = 0;                             \
        for (T *p_ = (list); p_; p_ = nx_) {    \
            nx_ = p_->next;                     \
            p_->next = rev_;                    \
            rev_ = p_;                          \
            n_++;                               \
        }                                       \
        (list) = rev_;                          \
        (count) = n_;                           \
    } while (0)

AstFile *ast_file(ParseCtx *c, AstStmt *stmts)
{
    AstFile *f = NEW(c, AstFile);
    f->file = c->file;
    f->stmts = stmts;
    REVERSE(AstStmt, f->stmts, f->nstmts);
    c->root = f;
    return f;
}

AstStmt *ast_stmt_push(AstStmt *list, AstStmt *s)
{
    if (!s)
        return list;
    s->next = list;
    return s;
}

static AstStmt *stmt_new(ParseCtx *c, AstStmtKind k, const AstLoc *kw)
{
    AstStmt *s = NEW(c, AstStmt);
    s->kind = k;
    s->loc = ast_srcloc(c, kw);
    s->len = ast_loclen(kw);
    return s;
}

static void stmt_name(ParseCtx *c, AstStmt *s, const char *name, const AstLoc *nl)
{
    s->name = name;
    s->name_loc = ast_srcloc(c, nl);
    s->name_len = ast_loclen(nl);
}

AstStmt *ast_network(ParseCtx *c, const AstLoc *kw, const char *name, const AstLoc *nl,
                     AstArg *options)
{
    AstStmt *s = stmt_new(c, AST_NETWORK, kw);
    stmt_name(c, s, name, nl);
    s->options = options;
    REVERSE(AstArg, s->options, s->noptions);
    return s;
}

AstStmt *ast_input(ParseCtx *c, const AstLoc *kw, const char *name, const AstLoc *nl,
                   AstExpr *shape)
{
    AstStmt *s = stmt_new(c, AST_INPUT, kw);
    stmt_name(c, s, name, nl);
    s->shape = shape;
    return s;
}

AstStmt *ast_output(ParseCtx *c, const AstLoc *kw, AstName *names)
{
    AstStmt *s = stmt_new(c, AST_OUTPUT, kw);
    s->names = names;
    REVERSE(AstName, s->names, s->nnames);
    return s;
}

AstStmt *ast_block(ParseCtx *c, const AstLoc *kw, const char *name, const AstLoc *nl,
                   bool has_params, AstArg *params, AstArg *options, AstStmt *body)
{
    AstStmt *s = stmt_new(c, AST_BLOCK, kw);
    stmt_name(c, s, name, nl);
    s->has_params = has_params;
    s->params = params;
    REVERSE(AstArg, s->params, s->nparams);
    s->options = options;
    REVERSE(AstArg, s->options, s->noptions);
    int n;
    s->body = body;
    REVERSE(AstStmt, s->body, n);
    (void)n;
    return s;
}

AstStmt *ast_train(ParseCtx *c, const AstLoc *kw, AstArg *entries)
{
    AstStmt *s = stmt_new(c, AST_TRAIN, kw);
    s->entries = entries;
    REVERSE(AstArg, s->entries, s->nentries);
    return s;
}

AstStmt *ast_chain(ParseCtx *c, const char *src, AstName *tuple, const AstLoc *sl, AstLayer *first)
{
    AstStmt *s = stmt_new(c, AST_CHAIN, sl);
    if (src) {
        s->names = ast_name(c, NULL, src, sl);
        s->nnames = 1;
    } else {
        s->tuple = true;
        s->names = tuple;
        REVERSE(AstName, s->names, s->nnames);
    }
    s->layers = s->last = first;
    s->nlayers = 1;
    return s;
}

AstStmt *ast_chain_push(AstStmt *chain, AstLayer *l)
{
    chain->last->next = l;
    chain->last = l;
    chain->nlayers++;
    return chain;
}

AstStmt *ast_chain_bind(ParseCtx *c, AstStmt *chain, const char *name, const AstLoc *nl,
                        bool first)
{
    stmt_name(c, chain, name, nl);
    chain->bind_first = first;
    if (first) {
        /* `x = src -> ...`: the statement starts at x. */
        chain->loc = chain->name_loc;
        chain->len = chain->name_len;
    }
    return chain;
}

AstLayer *ast_layer(ParseCtx *c, const char *op, const AstLoc *l, bool has_args, AstArg *args)
{
    AstLayer *y = NEW(c, AstLayer);
    y->op = op;
    y->loc = ast_srcloc(c, l);
    y->len = ast_loclen(l);
    y->has_args = has_args;
    y->args = args;
    REVERSE(AstArg, y->args, y->nargs);
    return y;
}

AstLayer *ast_layer_label(ParseCtx *c, AstLayer *l, const char *label, const AstLoc *ll)
{
    l->label = label;
    l->label_loc = ast_srcloc(c, ll);
    l->label_len = ast_loclen(ll);
    return l;
}

AstLayer *ast_layer_repeat(ParseCtx *c, AstLayer *l, const AstLoc *star, AstExpr *n)
{
    l->repeat = n;
    l->repeat_loc = ast_srcloc(c, star);
    return l;
}

AstName *ast_name(ParseCtx *c, AstName *list, const char *name, const AstLoc *l)
{
    AstName *n = NEW(c, AstName);
    n->name = name;
    n->loc = ast_srcloc(c, l);
    n->len = ast_loclen(l);
    n->next = list;
    return n;
}

AstArg *ast_arg(ParseCtx *c, AstArg *list, const char *name, const AstLoc *nl, AstExpr *value)
{
    AstArg *a = NEW(c, AstArg);
    a->name = name;
    if (nl) {
        a->name_loc = ast_srcloc(c, nl);
        a->name_len = ast_loclen(nl);
    } else if (value) {
        a->name_loc = value->loc;
        a->name_len = value->len;
    }
    a->value = value;
    a->next = list;
    return a;
}

AstArg *ast_arg_push(AstArg *list, AstArg *a)
{
    if (!a)
        return list;
    a->next = list;
    return a;
}

static AstExpr *expr_new(ParseCtx *c, AstExprKind k, const AstLoc *l)
{
    AstExpr *e = NEW(c, AstExpr);
    e->kind = k;
    e->loc = ast_srcloc(c, l);
    e->len = ast_loclen(l);
    return e;
}

AstExpr *ast_int(ParseCtx *c, long long v, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_INT, l);
    e->i = v;
    return e;
}

AstExpr *ast_float(ParseCtx *c, double v, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_FLOAT, l);
    e->f = v;
    return e;
}

AstExpr *ast_ident(ParseCtx *c, const char *s, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_NAME, l);
    e->s = s;
    return e;
}

AstExpr *ast_string(ParseCtx *c, const char *s, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_STRING, l);
    e->s = s;
    return e;
}

AstExpr *ast_list(ParseCtx *c, AstArg *items, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_LIST, l);
    e->args = items;
    REVERSE(AstArg, e->args, e->nargs);
    return e;
}

AstExpr *ast_call(ParseCtx *c, const char *name, AstArg *args, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_CALL, l);
    e->s = name;
    e->args = args;
    REVERSE(AstArg, e->args, e->nargs);
    return e;
}

AstExpr *ast_binary(ParseCtx *c, int op, AstExpr *lhs, AstExpr *rhs, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_BINARY, l);
    e->op = op;
    e->lhs = lhs;
    e->rhs = rhs;
    return e;
}

AstExpr *ast_neg(ParseCtx *c, AstExpr *x, const AstLoc *l)
{
    AstExpr *e = expr_new(c, AST_NEG, l);
    e->lhs = x;
    return e;
}

AstExpr *ast_paren(ParseCtx *c, AstExpr *e, const AstLoc *l)
{
    e->loc = ast_srcloc(c, l);
    e->len = ast_loclen(l);
    return e;
}

/* ---- printing ---- */

static void print_args(FILE *f, const AstArg *a, const char *sep);

static void print_expr(FILE *f, const AstExpr *e)
{
    if (!e) {
        fputs("?", f);
        return;
    }
    switch (e->kind) {
    case AST_INT: fprintf(f, "%lld", e->i); break;
    case AST_FLOAT: fprintf(f, "%g", e->f); break;
    case AST_NAME: fputs(e->s, f); break;
    case AST_STRING: fprintf(f, "\"%s\"", e->s); break;
    case AST_LIST:
        fputc('[', f);
        print_args(f, e->args, ", ");
        fputc(']', f);
        break;
    case AST_CALL:
        fprintf(f, "%s(", e->s);
        print_args(f, e->args, ", ");
        fputc(')', f);
        break;
    case AST_BINARY:
        fputc('(', f);
        print_expr(f, e->lhs);
        fprintf(f, " %c ", e->op);
        print_expr(f, e->rhs);
        fputc(')', f);
        break;
    case AST_NEG:
        fputc('-', f);
        print_expr(f, e->lhs);
        break;
    }
}

static void print_args(FILE *f, const AstArg *a, const char *sep)
{
    for (; a; a = a->next) {
        if (a->name)
            fprintf(f, a->value ? "%s=" : "%s", a->name);
        if (a->value)
            print_expr(f, a->value);
        if (a->next)
            fputs(sep, f);
    }
}

static void print_stmts(FILE *f, const AstStmt *s, int indent);

static void print_stmt(FILE *f, const AstStmt *s, int indent)
{
    fprintf(f, "%*s", indent, "");
    switch (s->kind) {
    case AST_NETWORK:
        fprintf(f, "network %s", s->name);
        if (s->options) {
            fputc('(', f);
            print_args(f, s->options, ", ");
            fputc(')', f);
        }
        break;
    case AST_INPUT:
        fprintf(f, "input %s: ", s->name);
        print_expr(f, s->shape);
        break;
    case AST_OUTPUT:
        fputs("output ", f);
        for (const AstName *n = s->names; n; n = n->next)
            fprintf(f, "%s%s", n->name, n->next ? ", " : "");
        break;
    case AST_BLOCK:
        fprintf(f, "block %s(", s->name);
        print_args(f, s->params, ", ");
        fputs(")", f);
        if (s->options) {
            fputs(" (", f);
            print_args(f, s->options, ", ");
            fputc(')', f);
        }
        fputs(" {\n", f);
        print_stmts(f, s->body, indent + 2);
        fprintf(f, "%*s}", indent, "");
        break;
    case AST_TRAIN:
        fputs("train {\n", f);
        for (const AstArg *a = s->entries; a; a = a->next) {
            fprintf(f, "%*s%s ", indent + 2, "", a->name);
            print_expr(f, a->value);
            fputc('\n', f);
        }
        fprintf(f, "%*s}", indent, "");
        break;
    case AST_CHAIN:
        if (s->tuple)
            fputc('(', f);
        for (const AstName *n = s->names; n; n = n->next)
            fprintf(f, "%s%s", n->name, n->next ? ", " : "");
        if (s->tuple)
            fputc(')', f);
        for (const AstLayer *l = s->layers; l; l = l->next) {
            fputs(" -> ", f);
            if (l->label)
                fprintf(f, "%s: ", l->label);
            fputs(l->op, f);
            if (l->has_args) {
                fputc('(', f);
                print_args(f, l->args, ", ");
                fputc(')', f);
            }
            if (l->repeat) {
                fputs(" * ", f);
                print_expr(f, l->repeat);
            }
        }
        if (s->name)
            fprintf(f, " => %s", s->name);
        break;
    }
    fprintf(f, "    # %d:%d\n", s->loc.line, s->loc.col);
}

static void print_stmts(FILE *f, const AstStmt *s, int indent)
{
    for (; s; s = s->next)
        print_stmt(f, s, indent);
}

void ast_print(FILE *f, const AstFile *ast)
{
    if (ast)
        print_stmts(f, ast->stmts, 0);
}

const char *ast_expr_text(Arena *a, const AstExpr *e)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return "...";
    print_expr(f, e);
    fclose(f);
    const char *r = arena_strdup(a, text);
    free(text);
    return r;
}

const char *ast_describe(Arena *a, const AstExpr *e)
{
    switch (e->kind) {
    case AST_INT: return arena_printf(a, "integer %lld", e->i);
    case AST_FLOAT: return arena_printf(a, "number %g", e->f);
    case AST_NAME: return arena_printf(a, "name '%s'", e->s);
    case AST_STRING: return "a string";
    case AST_LIST: return "a list";
    case AST_CALL: return arena_printf(a, "call %s(...)", e->s);
    case AST_BINARY:
    case AST_NEG: return "an expression";
    }
    return "a value";
}
