/* ast.h - the syntax tree of a .net file.
 *
 * Needs: the scanner (grammar/lexer.l) and parser (grammar/parser.y).
 * Provides: ast_parse, which turns source text into an AstFile, and the
 * builder functions the grammar actions call (one call per action).  The
 * tree holds what the user wrote and where, nothing checked: names are not
 * resolved, attributes are not validated, shapes are unknown.  elab.c does
 * all of that when it turns the tree into the graph IR.
 *
 *   image -> c1: conv(6, kernel=5) => x
 *
 * becomes one AST_CHAIN statement with source [image], layers
 * [c1: conv(6, kernel=5)] and bound name x.
 */
#ifndef NETC_AST_H
#define NETC_AST_H

#include <stdbool.h>
#include <stdio.h>

#include "diag.h"
#include "util.h"

/* Bison's location type (%define api.location.type).  Columns are 1-based;
 * last_column is one past the token's last character. */
typedef struct AstLoc {
    int first_line, first_column, last_line, last_column;
} AstLoc;

/* ---- attribute values and expressions ---- */

typedef enum {
    AST_INT,    /* 42                          */
    AST_FLOAT,  /* 0.01, 1e-3                  */
    AST_NAME,   /* same, he_uniform, ch, true  */
    AST_STRING, /* "/data/mnist"               */
    AST_LIST,   /* [3, 1]                      */
    AST_CALL,   /* uniform(-0.1, 0.1)          */
    AST_BINARY, /* ch * 4                      */
    AST_NEG,    /* -x                          */
} AstExprKind;

typedef struct AstArg AstArg;

typedef struct AstExpr {
    AstExprKind kind;
    SrcLoc loc;
    int len;                  /* characters spanned on loc's line */
    long long i;              /* AST_INT */
    double f;                 /* AST_FLOAT */
    const char *s;            /* AST_NAME, AST_STRING, AST_CALL (callee) */
    int op;                   /* AST_BINARY: '+', '-', '*' or '/' */
    struct AstExpr *lhs, *rhs;/* AST_BINARY; AST_NEG uses lhs */
    AstArg *args;             /* AST_LIST items (unnamed), AST_CALL arguments */
    int nargs;
} AstExpr;

/* A positional (name == NULL) or named argument; also a block parameter
 * (value = its default or NULL) and a train entry (name = key). */
struct AstArg {
    const char *name;
    SrcLoc name_loc;
    int name_len;
    AstExpr *value;
    AstArg *next;
};

/* ---- chains ---- */

typedef struct AstName {
    const char *name;
    SrcLoc loc;
    int len;
    struct AstName *next;
} AstName;

/* One step of a chain: [label:] op[(args)] [* repeat] */
typedef struct AstLayer {
    const char *label;        /* NULL when unlabelled */
    SrcLoc label_loc;
    int label_len;
    const char *op;           /* layer or block name as written */
    SrcLoc loc;               /* of op */
    int len;
    bool has_args;            /* written with parentheses */
    AstArg *args;
    int nargs;
    AstExpr *repeat;          /* NULL when not repeated */
    SrcLoc repeat_loc;        /* of the '*' */
    struct AstLayer *next;
} AstLayer;

/* ---- statements ---- */

typedef enum {
    AST_NETWORK, /* network NAME                        */
    AST_INPUT,   /* input NAME: [dims]                  */
    AST_OUTPUT,  /* output a, b                         */
    AST_BLOCK,   /* block NAME(params) { statements }   */
    AST_TRAIN,   /* train { key value ... }             */
    AST_CHAIN,   /* src -> layer -> ... [=> NAME]       */
} AstStmtKind;

typedef struct AstStmt {
    AstStmtKind kind;
    SrcLoc loc;               /* first token */
    int len;
    const char *name;         /* NETWORK, INPUT, BLOCK; CHAIN: bound name or NULL */
    SrcLoc name_loc;
    int name_len;
    bool bind_first;          /* CHAIN written `name = src -> ...` */
    AstExpr *shape;           /* INPUT */
    AstName *names;           /* OUTPUT list; CHAIN source (one name or a tuple) */
    int nnames;
    bool tuple;               /* CHAIN source written in parentheses */
    AstLayer *layers, *last;  /* CHAIN */
    int nlayers;
    bool has_params;          /* BLOCK written with a parameter list */
    AstArg *params;           /* BLOCK */
    int nparams;
    struct AstStmt *body;     /* BLOCK */
    AstArg *options;          /* NETWORK, BLOCK: `(shuffle=auto)`, or NULL */
    int noptions;
    AstArg *entries;          /* TRAIN */
    int nentries;
    struct AstStmt *next;
} AstStmt;

typedef struct {
    const char *file;
    AstStmt *stmts;
    int nstmts;
} AstFile;

/* Parses `text` (len bytes, NUL-terminated) from `file`.  Reports lexical
 * and syntax errors through d; returns the tree (possibly partial) or NULL
 * when nothing could be built.  Callers check d->nerror.  The tree lives in
 * `a`; its locations point at `file`, which must outlive them. */
AstFile *ast_parse(Arena *a, Diag *d, const char *file, const char *text, size_t len);

/* Prints the tree in the surface syntax, one statement per line
 * (--dump=ast). */
void ast_print(FILE *f, const AstFile *ast);

/* A short description of an expression for messages: "integer 3",
 * "name 'same'", "list [...]" (allocated in a). */
const char *ast_describe(Arena *a, const AstExpr *e);
/* The expression as source text: "ch * 4" (allocated in a). */
const char *ast_expr_text(Arena *a, const AstExpr *e);

/* ---- shared by the scanner, the parser and the builders below ---- */

#define PARSE_MAX_OPEN 256

typedef struct {
    int kind;                 /* parser token kind */
    AstLoc loc;
    long long i;
    double f;
    const char *s;
    bool line_start;          /* first token on its line */
} ParseTok;

typedef struct ParseCtx {
    Arena *arena;
    Diag *diag;
    const char *file;
    AstFile *root;
    /* scanner position */
    int line, col;
    /* open brackets, innermost last, for "expected ')' to close '(' at" */
    ParseTok open[PARSE_MAX_OPEN];
    int nopen, open_overflow;
    /* the last four tokens delivered, newest first */
    ParseTok hist[4];
    int nhist;
    /* error recovery (see the yylex wrapper in lexer.l) */
    bool resync, replay, have_replayed, stop;
    AstLoc replayed, last_error;
    bool have_error;
    int lex_error_line;       /* line of the last lexical error, 0: none */
} ParseCtx;

SrcLoc ast_srcloc(const ParseCtx *c, const AstLoc *l);
int ast_loclen(const AstLoc *l);

/* ---- builders, called by grammar actions ----
 * Lists arrive newest first (the grammar prepends, which is O(1)); the
 * builder that owns a list reverses it into source order. */

AstFile *ast_file(ParseCtx *c, AstStmt *stmts);
AstStmt *ast_stmt_push(AstStmt *list, AstStmt *s);

/* options: `network NAME(shuffle=auto)`, or NULL */
AstStmt *ast_network(ParseCtx *c, const AstLoc *kw, const char *name, const AstLoc *nl,
                     AstArg *options);
AstStmt *ast_input(ParseCtx *c, const AstLoc *kw, const char *name, const AstLoc *nl,
                   AstExpr *shape);
AstStmt *ast_output(ParseCtx *c, const AstLoc *kw, AstName *names);
AstStmt *ast_block(ParseCtx *c, const AstLoc *kw, const char *name, const AstLoc *nl,
                   bool has_params, AstArg *params, AstArg *options, AstStmt *body);
AstStmt *ast_train(ParseCtx *c, const AstLoc *kw, AstArg *entries);

/* The source is one name (src) or a parenthesised tuple (tuple, newest first). */
AstStmt *ast_chain(ParseCtx *c, const char *src, AstName *tuple, const AstLoc *sl, AstLayer *first);
AstStmt *ast_chain_push(AstStmt *chain, AstLayer *l);
/* `chain => name` (first = false) or `name = chain` (first = true) */
AstStmt *ast_chain_bind(ParseCtx *c, AstStmt *chain, const char *name, const AstLoc *nl,
                        bool first);

AstLayer *ast_layer(ParseCtx *c, const char *op, const AstLoc *l, bool has_args, AstArg *args);
AstLayer *ast_layer_label(ParseCtx *c, AstLayer *l, const char *label, const AstLoc *ll);
AstLayer *ast_layer_repeat(ParseCtx *c, AstLayer *l, const AstLoc *star, AstExpr *n);

AstName *ast_name(ParseCtx *c, AstName *list, const char *name, const AstLoc *l);
/* Prepends a new argument to list; ast_arg_push prepends an existing one
 * (NULL, from a recovered error, leaves the list as it is). */
AstArg *ast_arg(ParseCtx *c, AstArg *list, const char *name, const AstLoc *nl, AstExpr *value);
AstArg *ast_arg_push(AstArg *list, AstArg *a);

AstExpr *ast_int(ParseCtx *c, long long v, const AstLoc *l);
AstExpr *ast_float(ParseCtx *c, double v, const AstLoc *l);
AstExpr *ast_ident(ParseCtx *c, const char *s, const AstLoc *l);
AstExpr *ast_string(ParseCtx *c, const char *s, const AstLoc *l);
AstExpr *ast_list(ParseCtx *c, AstArg *items, const AstLoc *l);
AstExpr *ast_call(ParseCtx *c, const char *name, AstArg *args, const AstLoc *l);
AstExpr *ast_binary(ParseCtx *c, int op, AstExpr *lhs, AstExpr *rhs, const AstLoc *l);
AstExpr *ast_neg(ParseCtx *c, AstExpr *e, const AstLoc *l);
/* `( expr )`: the same expression, its span widened to the parentheses */
AstExpr *ast_paren(ParseCtx *c, AstExpr *e, const AstLoc *l);

#endif
