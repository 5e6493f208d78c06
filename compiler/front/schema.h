/* schema.h - what every layer, optimizer, initialiser, data source, loss
 * and train key accepts: attribute names, kinds, positional order,
 * defaults.  One table (schema.c) feeds the elaborator's checks, the
 * did-you-mean hints and the reference in docs/language.md (a unit test
 * checks that every row appears there).
 */
#ifndef NETC_SCHEMA_H
#define NETC_SCHEMA_H

#include <stdbool.h>

#include "ir.h"

typedef enum {
    ATTR_INT,    /* an integer >= min                                       */
    ATTR_AXES,   /* an integer >= min for every spatial axis, or a list with
                    one per axis: kernel=3, kernel=[3, 1]                   */
    ATTR_PAD,    /* an integer >= 0, a per-axis or per-side list, `same`
                    or `valid`                                              */
    ATTR_BOOL,   /* true or false                                           */
    ATTR_INIT,   /* an initialiser: he_uniform, ..., uniform(a, b)          */
    ATTR_FLOAT,  /* a number                                                */
    ATTR_STRING, /* "text"                                                  */
    ATTR_VALUE,  /* the name of a value in the network (losses)             */
    ATTR_FLOATS, /* a list of numbers, or one number for every entry        */
    ATTR_REDUCTION, /* mean or sum (losses)                                 */
    /* train keys only */
    ATTR_DATA,   /* fashion_mnist("dir"), mnist("dir"), idx("dir")          */
    ATTR_LOSS,   /* softmax_cross_entropy(v), mse(v)                        */
    ATTR_OPTIM,  /* sgd(lr=..., ...)                                        */
    ATTR_SCHEDULE, /* constant, cosine, step(every=3, gamma=0.1)            */
    ATTR_LAYERS, /* a list of layer (or block instance) names: [c1, c2]    */
    ATTR_LR_MULTS, /* a list of NAME(factor): [c1(0.1), f3(10)]             */
    /* pooling and data movement */
    ATTR_WORD,   /* one bare word of a fixed set, listed in the doc: reflect */
    ATTR_DIMS,   /* a list of integers >= 1, one of which may be -1         */
    /* winograd */
    ATTR_ALGO,   /* a convolution algorithm: auto, direct, im2col, winograd  */
    ATTR_AUGMENT, /* crop(4), flip, normalize(...), or a list of them       */
} AttrKind;

typedef struct {
    const char *name;
    AttrKind kind;
    const char *def;      /* the default as documented; NULL: required */
    int min;              /* ATTR_INT, ATTR_AXES: the smallest value allowed */
    const char *doc;
} AttrSpec;

#define SCHEMA_MAX_ATTR 16

typedef struct {
    const char *name;     /* as written in .net files */
    Op op;                /* layers and losses; OP_COUNT otherwise */
    int npos;             /* the first npos attributes may be positional */
    int min_in, max_in;   /* layers: inputs accepted (-1: any number) */
    int nattr;
    AttrSpec attr[SCHEMA_MAX_ATTR];
    InitKind init;        /* initialisers */
    const char *doc;
} Schema;

/* The schema row of a user layer, or NULL (internal ops, unknown). */
const Schema *schema_layer(Op op);
const Schema *schema_find_layer(const char *name);

/* Rows by kind; *n receives the count. */
const Schema *schema_layers(int *n);
const Schema *schema_optimizers(int *n);
const Schema *schema_inits(int *n);
const Schema *schema_data(int *n);
const Schema *schema_losses(int *n);
const Schema *schema_schedules(int *n);
const Schema *schema_augments(int *n);
/* The train section's keys, as a schema whose attributes are the keys. */
const Schema *schema_train(void);

/* convolution forms: layers that elaborate into several convs. */
const Schema *schema_forms(int *n);
const Schema *schema_find_form(const char *name);
bool schema_is_form(const Schema *s);

const Schema *schema_lookup(const Schema *rows, int n, const char *name);
int schema_attr_index(const Schema *s, const char *name); /* -1 when absent */

/* "conv(out, kernel, stride=1, pad=0, ...)": the signature as documented. */
void schema_signature(const Schema *s, char *buf, int size);

#endif
