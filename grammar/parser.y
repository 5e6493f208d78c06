/* parser.y - the grammar of .net files.
 *
 * A pure, located parser.  Every action is one call into the AST builder
 * (compiler/front/ast.c); nothing here checks meaning (unknown layers, attribute
 * types, undefined names are elab.c's job), so the grammar reads as the
 * language reference.  Newlines are not tokens: a statement ends where the
 * next token cannot continue it, and the scanner's CALL token (a '(' glued
 * to a name on its line) keeps `relu` + newline + `(a, b) -> add` apart
 * from `conv(6)`.
 *
 * Errors are phrased by yyreport_syntax_error below ("expected ')' to
 * close '(' at 3:14, found name 'x'").  Recovery: `error SYNC` in statement
 * lists; the scanner emits SYNC at the next statement start, so one run
 * reports several syntax errors.
 */
%define api.pure full
%define api.location.type {AstLoc}
%define parse.error custom
%define parse.lac full
%locations
%param {yyscan_t scanner}
%expect 0

%code requires {
#include "ast.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
}

%union {
    long long i;
    double f;
    const char *s;
    AstExpr *expr;
    AstArg *arg;
    AstName *name;
    AstLayer *layer;
    AstStmt *stmt;
}

%code {
#include <stdlib.h>
#include <string.h>

/* From the scanner (lexer.h is generated after this file). */
struct ParseCtx *yyget_extra(yyscan_t scanner);
#define CTX (yyget_extra(scanner))
/* The parser's stacks, when they outgrow their start, come from netc_alloc
 * like every other allocation (tests fail the Nth one). */
#define YYMALLOC netc_alloc
#define YYFREE free
static void yyerror(const YYLTYPE *loc, yyscan_t scanner, const char *msg);
}

%token NETWORK INPUT OUTPUT BLOCK TRAIN
%token ARROW BIND CALL SYNC
%token <s> IDENT STRING
%token <i> INT
%token <f> FLOAT

%type <stmt> stmts stmt chain
%type <layer> layer layer_call layer_rep
%type <name> names
%type <arg> args arglist arg params paramlist param entries entry items itemlist
%type <expr> value expr primary

%left '+' '-'
%left '*' '/'
%precedence NEG

%%

file: stmts                                 { ast_file(CTX, $1); }
    ;

stmts: %empty                               { $$ = NULL; }
     | stmts stmt                           { $$ = ast_stmt_push($1, $2); }
     ;

stmt: NETWORK IDENT                         { $$ = ast_network(CTX, &@1, $2, &@2, NULL); }
    | NETWORK IDENT CALL args ')'           { $$ = ast_network(CTX, &@1, $2, &@2, $4); }
    | INPUT IDENT ':' value                 { $$ = ast_input(CTX, &@1, $2, &@2, $4); }
    | OUTPUT names                          { $$ = ast_output(CTX, &@1, $2); }
    | BLOCK IDENT '{' stmts '}'             { $$ = ast_block(CTX, &@1, $2, &@2, false, NULL, NULL, $4); }
    | BLOCK IDENT CALL params ')' '{' stmts '}'
                                            { $$ = ast_block(CTX, &@1, $2, &@2, true, $4, NULL, $7); }
    | BLOCK IDENT CALL params ')' '(' args ')' '{' stmts '}'
                                            { $$ = ast_block(CTX, &@1, $2, &@2, true, $4, $7, $10); }
    | TRAIN '{' entries '}'                 { $$ = ast_train(CTX, &@1, $3); }
    | chain                                 { $$ = $1; }
    | chain BIND IDENT                      { $$ = ast_chain_bind(CTX, $1, $3, &@3, false); }
    | IDENT '=' chain                       { $$ = ast_chain_bind(CTX, $3, $1, &@1, true); }
    | error SYNC                            { $$ = NULL; yyerrok; }
    ;

/* src -> layer -> layer ... */
chain: IDENT ARROW layer                    { $$ = ast_chain(CTX, $1, NULL, &@1, $3); }
     | '(' names ')' ARROW layer            { $$ = ast_chain(CTX, NULL, $2, &@1, $5); }
     | chain ARROW layer                    { $$ = ast_chain_push($1, $3); }
     ;

layer: layer_rep                            { $$ = $1; }
     | IDENT ':' layer_rep                  { $$ = ast_layer_label(CTX, $3, $1, &@1); }
     ;

layer_rep: layer_call                       { $$ = $1; }
         | layer_call '*' primary           { $$ = ast_layer_repeat(CTX, $1, &@2, $3); }
         ;

layer_call: IDENT                           { $$ = ast_layer(CTX, $1, &@1, false, NULL); }
          | IDENT CALL args ')'             { $$ = ast_layer(CTX, $1, &@1, true, $3); }
          ;

names: IDENT                                { $$ = ast_name(CTX, NULL, $1, &@1); }
     | names ',' IDENT                      { $$ = ast_name(CTX, $1, $3, &@3); }
     ;

/* arguments: positional or name=value, a trailing comma allowed */
args: %empty                                { $$ = NULL; }
    | arglist                               { $$ = $1; }
    | arglist ','                           { $$ = $1; }
    ;

arglist: arg                                { $$ = $1; }
       | arglist ',' arg                    { $$ = ast_arg_push($1, $3); }
       ;

arg: value                                  { $$ = ast_arg(CTX, NULL, NULL, NULL, $1); }
   | IDENT '=' value                        { $$ = ast_arg(CTX, NULL, $1, &@1, $3); }
   ;

params: %empty                              { $$ = NULL; }
      | paramlist                           { $$ = $1; }
      | paramlist ','                       { $$ = $1; }
      ;

paramlist: param                            { $$ = $1; }
         | paramlist ',' param              { $$ = ast_arg_push($1, $3); }
         ;

param: IDENT                                { $$ = ast_arg(CTX, NULL, $1, &@1, NULL); }
     | IDENT '=' value                      { $$ = ast_arg(CTX, NULL, $1, &@1, $3); }
     ;

/* train { key value ... } */
entries: %empty                             { $$ = NULL; }
       | entries entry                      { $$ = ast_arg_push($1, $2); }
       ;

entry: IDENT value                          { $$ = ast_arg(CTX, NULL, $1, &@1, $2); }
     | error SYNC                           { $$ = NULL; yyerrok; }
     ;

value: expr                                 { $$ = $1; }
     | STRING                               { $$ = ast_string(CTX, $1, &@1); }
     | '[' items ']'                        { $$ = ast_list(CTX, $2, &@$); }
     | IDENT CALL args ')'                  { $$ = ast_call(CTX, $1, $3, &@$); }
     ;

items: %empty                               { $$ = NULL; }
     | itemlist                             { $$ = $1; }
     | itemlist ','                         { $$ = $1; }
     ;

itemlist: value                             { $$ = ast_arg(CTX, NULL, NULL, NULL, $1); }
        | itemlist ',' value                { $$ = ast_arg(CTX, $1, NULL, NULL, $3); }
        ;

expr: expr '+' expr                         { $$ = ast_binary(CTX, '+', $1, $3, &@$); }
    | expr '-' expr                         { $$ = ast_binary(CTX, '-', $1, $3, &@$); }
    | expr '*' expr                         { $$ = ast_binary(CTX, '*', $1, $3, &@$); }
    | expr '/' expr                         { $$ = ast_binary(CTX, '/', $1, $3, &@$); }
    | '-' expr %prec NEG                    { $$ = ast_neg(CTX, $2, &@$); }
    | primary                               { $$ = $1; }
    ;

primary: INT                                { $$ = ast_int(CTX, $1, &@1); }
       | FLOAT                              { $$ = ast_float(CTX, $1, &@1); }
       | IDENT                              { $$ = ast_ident(CTX, $1, &@1); }
       | '(' expr ')'                       { $$ = ast_paren(CTX, $2, &@$); }
       ;

%%

/* How a token is named in messages. */
static const char *tok_desc(yysymbol_kind_t k)
{
    switch (k) {
    case YYSYMBOL_YYEOF: return "end of file";
    case YYSYMBOL_NETWORK: return "'network'";
    case YYSYMBOL_INPUT: return "'input'";
    case YYSYMBOL_OUTPUT: return "'output'";
    case YYSYMBOL_BLOCK: return "'block'";
    case YYSYMBOL_TRAIN: return "'train'";
    case YYSYMBOL_ARROW: return "'->'";
    case YYSYMBOL_BIND: return "'=>'";
    case YYSYMBOL_CALL: return "'('";
    case YYSYMBOL_IDENT: return "a name";
    case YYSYMBOL_STRING: return "a string";
    case YYSYMBOL_INT: return "an integer";
    case YYSYMBOL_FLOAT: return "a number";
    default: return yysymbol_name(k);
    }
}

/* The found token, with its text when that helps: "name 'relu'". */
static void tok_found(Buf *b, yysymbol_kind_t k, const ParseTok *t)
{
    if (k == YYSYMBOL_IDENT && t && t->s)
        buf_printf(b, "name '%s'", t->s);
    else if (k == YYSYMBOL_INT && t)
        buf_printf(b, "integer %lld", t->i);
    else if (k == YYSYMBOL_STRING)
        buf_puts(b, "string");
    else
        buf_puts(b, tok_desc(k));
}

static yysymbol_kind_t tok_symbol(int closer)
{
    return YYTRANSLATE(closer);
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner)
{
    ParseCtx *c = CTX;
    const YYLTYPE *la = yypcontext_location(yyctx);
    yysymbol_kind_t found = yypcontext_token(yyctx);
    c->resync = true;
    /* The token replayed after recovery can fail again at the same place;
     * say it once. */
    if (c->have_error && c->last_error.first_line == la->first_line &&
        c->last_error.first_column == la->first_column)
        return 0;
    c->have_error = true;
    c->last_error = *la;
    /* After an unterminated string or a bad character the parser's
     * complaint on the same line is an echo of that; stay quiet. */
    if (c->lex_error_line && (c->lex_error_line == la->first_line ||
                              (c->nhist > 1 && c->lex_error_line == c->hist[1].loc.last_line)))
        return 0;

    yysymbol_kind_t exp[YYNTOKENS];
    int nexp = yypcontext_expected_tokens(yyctx, exp, YYNTOKENS);
    if (nexp < 0)
        nexp = 0;
    /* The found token is the newest one lexed (hist[0]); hist[1] is the
     * last one the parser accepted. */
    const ParseTok *t = c->nhist > 0 ? &c->hist[0] : NULL;
    const ParseTok *prev = c->nhist > 1 ? &c->hist[1] : NULL;

    Buf msg = {0};
    const ParseTok *open = c->nopen ? &c->open[c->nopen - 1] : NULL;
    bool closes = false;
    if (open) {
        yysymbol_kind_t want = tok_symbol(open->kind == '[' ? ']' : open->kind == '{' ? '}' : ')');
        for (int i = 0; i < nexp; i++)
            closes |= exp[i] == want;
    }
    if (closes) {
        char ch = open->kind == CALL ? '(' : (char)open->kind;
        buf_printf(&msg, "expected '%c' to close '%c' at %d:%d, found ",
                   ch == '(' ? ')' : ch == '[' ? ']' : '}', ch,
                   open->loc.first_line, open->loc.first_column);
    } else if (nexp > 0 && nexp <= 3) {
        buf_puts(&msg, "expected ");
        for (int i = 0; i < nexp; i++)
            buf_printf(&msg, "%s%s", i == 0 ? "" : i == nexp - 1 ? " or " : ", ", tok_desc(exp[i]));
        buf_puts(&msg, ", found ");
    } else {
        buf_puts(&msg, "unexpected ");
    }
    tok_found(&msg, found, t);

    /* Something missing at the end of a line is reported there, not at the
     * next line's first token. */
    AstLoc at = *la;
    int len = ast_loclen(la);
    bool specific = closes || (nexp > 0 && nexp <= 3);
    if (specific && prev && prev->loc.last_line < la->first_line) {
        at.first_line = at.last_line = prev->loc.last_line;
        at.first_column = prev->loc.last_column;
        at.last_column = at.first_column + 1;
        len = 1;
    }
    if (found == YYSYMBOL_YYEOF)
        len = 1;
    diag_error(c->diag, ast_srcloc(c, &at), len, "%s", msg.s);
    buf_free(&msg);

    /* `x -> conv(6) relu => y`: a layer after a layer on the same line
     * starts a new statement, which then fails on its second token. */
    int before = c->nhist > 2 ? c->hist[2].kind : 0;
    int bound = c->nhist > 3 && c->hist[3].kind == BIND; /* `=> y` ends a statement */
    if (prev && prev->kind == IDENT && !prev->line_start &&
        (before == ')' || (before == IDENT && !bound) || before == INT))
        diag_hint(c->diag, "is '->' missing before '%s'?", prev->s);
    /* `data mnist(/data/mnist)` */
    if (found == YYTRANSLATE('/') && prev && (prev->kind == CALL || prev->kind == ',' || prev->kind == '('))
        diag_hint(c->diag, "write paths as strings: \"/like/this\"");
    if (c->diag->nerror >= c->diag->max_errors)
        c->stop = true;
    return 0;
}

static void yyerror(const YYLTYPE *loc, yyscan_t scanner, const char *msg)
{
    ParseCtx *c = CTX;
    if (!strcmp(msg, "memory exhausted"))
        diag_error(c->diag, ast_srcloc(c, loc), 1, "the text is nested too deeply");
    else
        diag_error(c->diag, ast_srcloc(c, loc), 1, "%s", msg);
}
