/* elab.h - the elaborator's internals, shared by elab.c (names, chains,
 * blocks, outputs), elab_emit.c (graph construction), elab_value.c
 * (attribute values: evaluation, binding to a schema, typed reads) and
 * elab_train.c (the train section).  Not used outside the front end.
 */
#ifndef NETC_ELAB_H
#define NETC_ELAB_H

#include "ast.h"
#include "netc.h"
#include "schema.h"

/* AST -> Model.  Reports errors through d; returns false when any was
 * reported.  m->arena, m->g, m->name and m->file are filled by the caller
 * before (name and train from the AST here). */
bool elab_model(Model *m, const AstFile *ast, Diag *d);

/* ---- evaluated attribute values ---- */

typedef enum { VAL_INT, VAL_FLOAT, VAL_NAME, VAL_STRING, VAL_LIST, VAL_CALL } ValueKind;

typedef struct Value {
    ValueKind kind;
    SrcLoc loc;
    int len;
    long long i;
    double f;
    const char *s;            /* NAME, STRING, CALL (callee) */
    struct Value *item;       /* LIST items, CALL arguments */
    int n;
    const char *name;         /* as a CALL argument: its name, or NULL */
    SrcLoc name_loc;
    int name_len;
} Value;

/* Block parameters in scope while a block body is expanded. */
typedef struct {
    const char **name;
    Value *val;
    int n;
} Env;

typedef struct Elab {
    Diag *d;
    Arena *a;                 /* scratch: freed when elaboration ends */
    Model *m;
    StrMap reported;          /* "line:col:message" already said (block bodies
                                 expand once per instance) */
    int nerror0;
    /* the block instance being expanded, for "in instance ..." notes */
    const struct Scope *scope;
    bool said;                /* the last elab_error was printed */
    /* Notes wait until the error's hints are out, so a message reads
     * error, hints, notes. */
    struct {
        SrcLoc loc;
        int len;
        const char *msg;
    } pend[4];
    int npend;
    const struct Scope *pend_scope;
} Elab;

/* Errors through these are said once per location and message, and get a
 * note per enclosing block instance.  They return false so callers can
 * `return elab_error(...)`. */
bool elab_error(Elab *E, SrcLoc loc, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A hint for the error just reported (dropped when that one was). */
void elab_hint(Elab *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void elab_note(Elab *E, SrcLoc loc, int len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool elab_stop(const Elab *E); /* too many errors: stop early */
void elab_flush(Elab *E);      /* prints the notes still waiting */

/* elab_value.c */

/* Evaluates an attribute expression: block parameters are substituted,
 * integer arithmetic is exact and overflow-checked. */
bool value_eval(Elab *E, const Env *env, const AstExpr *e, Value *out);
const char *value_describe(Elab *E, const Value *v);

/* Binds call arguments to a schema: positional ones in order (at most
 * s->npos), named ones by name.  Reports unknown (with did-you-mean),
 * repeated, missing required and surplus positional arguments.  out[i] is
 * the value of attribute i or NULL.  `what` names the call in messages
 * ("conv c1", "block conv_relu", "sgd"). */
bool value_bind(Elab *E, const Schema *s, const char *what, const Value *args, int nargs,
                SrcLoc call_loc, int call_len, const Value **out);
/* Same, from the AST (evaluates each argument in env). */
bool value_bind_ast(Elab *E, const Schema *s, const char *what, const AstArg *args,
                    const Env *env, SrcLoc call_loc, int call_len, const Value **out);

/* Typed reads; each reports a wrong kind or range against the attribute. */
bool value_int(Elab *E, const char *what, const AttrSpec *a, const Value *v, int *out);
bool value_float(Elab *E, const char *what, const AttrSpec *a, const Value *v, double *out);
bool value_bool(Elab *E, const char *what, const AttrSpec *a, const Value *v, bool *out);
bool value_string(Elab *E, const char *what, const AttrSpec *a, const Value *v, const char **out);
/* A list of numbers (or one number, *n = 1) into an array in the model's arena. */
bool value_floats(Elab *E, const char *what, const AttrSpec *a, const Value *v, float **out, int *n);
bool value_reduction(Elab *E, const char *what, const AttrSpec *a, const Value *v, Reduction *out);

typedef struct {
    InitKind kind;
    float a, b;
} InitSpec;
bool value_init(Elab *E, const char *what, const Value *v, InitSpec *out);
/* winograd */
bool value_algo(Elab *E, const char *what, const AttrSpec *a, const Value *v, int *out); /* an Algo */

/* One value per spatial axis.  nsp < 0: the rank is not known yet, so only
 * kinds and ranges are checked. */
bool value_axes(Elab *E, const char *what, const AttrSpec *a, const Value *v, int nsp, int out[NETC_MAX_SPATIAL]);

/* Padding per side of each axis.  `same` needs the input's spatial size,
 * kernel, stride and dilation. */
bool value_pad(Elab *E, const char *what, const AttrSpec *a, const Value *v, int nsp,
               const int *in, const int *kernel, const int *stride, const int *dilation,
               int lo[NETC_MAX_SPATIAL], int hi[NETC_MAX_SPATIAL]);

/* Checks every attribute of a layer that can be checked before its input
 * rank is known (kinds and ranges). */
bool value_check_layer(Elab *E, const Schema *s, const char *what, const Value **attr);

/* elab_train.c */

typedef struct {
    const Schema *loss;        /* NULL when there is no loss */
    SrcLoc loss_loc;           /* the loss call */
    int loss_len;
    const char *loss_name;     /* the value it scores */
    SrcLoc loss_name_loc;
    int loss_name_len;
    LossParam param;           /* the loss's attributes */
    const Value *weight;       /* weight= or pos_weight= as written (its length is
                                  checked against the classes), or NULL */
    const Value *target;       /* target=NAME: a declared input, or NULL */
    InitSpec init;             /* the default initialiser */
    Value freeze, lr_mult;     /* the lists, checked; VAL_LIST when given */
} TrainPlan;

/* Reads the train section (NULL: none) into m->train and plan. */
void train_read(Elab *E, const AstStmt *train, TrainPlan *plan);
/* Once the graph exists: matches plan's freeze and lr_mult names against
 * the parameters (a name selects the parameters of that layer or block
 * instance) into m->train.param_opt; located errors otherwise. */
void train_params(Elab *E, const TrainPlan *plan);

/* ---- the elaborator's state (elab.c expands, elab_emit.c builds the graph) ---- */

enum { MAX_BLOCK_DEPTH = 64 }; /* blocks instantiating blocks */

typedef struct Scope {
    const struct Scope *parent;
    const char *prefix;       /* prepended to node names: "" or "s1." */
    const AstStmt *block;     /* NULL at top level */
    const char *inst_name;    /* "s1" */
    SrcLoc inst_loc;
    int inst_len;
    Env env;
    StrMap names;             /* value name -> slot */
    StrMap labels;            /* names taken in this scope -> def */
    StrMap counters;          /* auto-name base -> last number used */
    int *bind;                /* slots bound here, in source order */
    int nbind;
    int *loose;               /* unnamed chain results, in source order */
    SrcLoc *loose_loc;
    int nloose;
} Scope;

typedef struct {
    const char *name;         /* NULL: an unnamed chain result */
    SrcLoc loc;
    int len;
    int inst, input, alias;   /* what it stands for; -1 when not that */
    bool used;                /* referenced anywhere */
    bool consumed;            /* read by a layer */
    bool bad;                 /* its definition failed: uses stay quiet */
    bool output;
    bool is_in;               /* a block's `in` */
} Slot;

typedef struct {
    Op op;
    const Schema *schema;
    const char *name;         /* node name */
    const char *what;         /* "conv c1", for messages */
    SrcLoc loc;
    int len;
    const Value *attr[SCHEMA_MAX_ATTR];
    int *in;                  /* slots */
    int nin;
    int out;                  /* slot */
    const Scope *scope;
    const char *value_name;   /* a name bound to its result (cycle messages) */
    int node;
    int state;                /* depth-first walk: 0 new, 1 open, 2 done */
    bool bad;
} Inst;

typedef struct {
    const AstStmt *stmt;
    Shape shape;
    bool bad;
    int node;
    int slot;
} Input;

typedef struct {
    SrcLoc loc;
    int len;
} Def;

typedef struct {
    Elab E;
    Slot *slot;
    int nslot, capslot;
    Inst *inst;
    int ninst, capinst;
    Input *input;
    int ninput;
    Def *def;
    int ndef, capdef;
    StrMap blocks;            /* block name -> index into block[] */
    const AstStmt **block;
    int nblock;
    const AstStmt *stack[MAX_BLOCK_DEPTH]; /* blocks being expanded */
    int depth;
    bool too_big;
    StrMap dup_labels;        /* layers whose label repeats an earlier one */
    bool had_undefined;       /* an undefined name was reported */
    int *outputs;             /* output slots in the order they were named */
    int noutputs;
    StrMap node_names;
    TrainPlan plan;
    Scope *top;
    int shuffle;              /* `network NAME(shuffle=...)`: a ShuffleMode */
} Elaborator;

/* The shuffle mode in force for a layer of scope sc: the innermost block
 * with a `shuffle=` option, else the network's (elab.c). */
int elab_shuffle_mode(const Elaborator *X, const Scope *sc);

/* What a slot finally stands for: *inst or *input >= 0, or both -1 when
 * its definition failed. */
void elab_slot_resolve(const Elaborator *X, int s, int *inst, int *input);
/* Whether a value's definition already failed (and said why). */
bool elab_slot_failed(const Elaborator *X, int s);
/* "in 's1', an instance of block 'b'" notes for every enclosing instance. */
void elab_instance_notes(Elab *E, const struct Scope *s);
/* elab_emit.c: adds inputs, instances, outputs and the loss to the graph. */
void elab_emit(Elaborator *X);
/* One layer instance reading nodes args[0..nargs) (its params are added
 * before it); returns its node id, or -1 after reporting why. */
int elab_emit_layer(Elaborator *X, const Inst *I, const int *args, int nargs);
/* elab_forms.c: a convolution form (schema_is_form) reading node x becomes
 * its convs; returns the last node's id, or -1 after reporting why. */
int elab_emit_form(Elaborator *X, const Inst *I, int x);

#endif
