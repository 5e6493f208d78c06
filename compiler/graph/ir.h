/* ir.h - the graph IR: what is computed.
 *
 * A Graph is a list of Nodes in topological order (a node's inputs always
 * have smaller ids).  Every node produces exactly one tensor value, named by
 * the node's id.  Each node holds its op, inputs, inferred shape, source
 * location and a typed per-op parameter struct.  How a node is computed
 * (algorithm, fusion, buffer) lives in the schedule (sched.h), never here.
 *
 * Shapes leave the batch dimension implicit: a batched value of rank 3 with
 * dims [1, 28, 28] is the tensor [N, 1, 28, 28] at run time.  Parameters and
 * losses are unbatched.
 */
#ifndef NETC_IR_H
#define NETC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util.h"

typedef enum {
#define OP(e, name, arity, flags) OP_##e,
#include "ops.def"
#undef OP
    OP_COUNT
} Op;

enum {
    OPF_SOURCE = 1 << 0,      /* no inputs: graph input or parameter      */
    OPF_LAYER = 1 << 1,       /* user-visible layer with a schema row     */
    OPF_HAS_PARAMS = 1 << 2,  /* owns weight (and bias) PARAM inputs      */
    OPF_ELEMENTWISE = 1 << 3, /* output[i] depends only on inputs[i]      */
    OPF_LOSS = 1 << 4,        /* (pred, target) -> unbatched scalar       */
};

const char *op_name(Op op);
int op_arity(Op op);          /* -1: variadic */
unsigned op_flags(Op op);
Op op_lookup(const char *name); /* OP_COUNT when unknown */

#define NETC_MAX_RANK 5 /* non-batch dims: C, D, H, W plus one spare */
#define NETC_MAX_SPATIAL 3

typedef struct {
    int rank;                /* number of non-batch dims        */
    int d[NETC_MAX_RANK];    /* d[0] is channels for batched    */
    bool batched;            /* leading implicit batch dim N    */
} Shape;

long shape_numel(const Shape *s); /* per sample when batched */
bool shape_eq(const Shape *a, const Shape *b);
/* "[6, 28, 28]" (batched values print as "[N, 6, 28, 28]") */
void shape_print(FILE *f, const Shape *s);

/* ---- per-op parameters -------------------------------------------- */

typedef enum { INIT_DEFAULT, INIT_HE_NORMAL, INIT_HE_UNIFORM, INIT_XAVIER_NORMAL,
               INIT_XAVIER_UNIFORM, INIT_UNIFORM, INIT_NORMAL, INIT_ZERO,
               INIT_COUNT } InitKind;
const char *init_name(InitKind k);

typedef struct {
    int nsp;                        /* spatial dims: 1, 2 or 3         */
    int out_channels;
    int kernel[NETC_MAX_SPATIAL];
    int stride[NETC_MAX_SPATIAL];
    int dilation[NETC_MAX_SPATIAL];
    int pad_lo[NETC_MAX_SPATIAL];   /* top / front / left per axis     */
    int pad_hi[NETC_MAX_SPATIAL];
    int groups;
    bool bias;
    int algo;                       /* algo=: an Algo (netc.h) the layer asks
                                       for; 0 (ALGO_NONE): the schedule's */
} ConvParam;

typedef struct {
    int nsp;
    int kernel[NETC_MAX_SPATIAL];
    int stride[NETC_MAX_SPATIAL];
    int pad_lo[NETC_MAX_SPATIAL];
    int pad_hi[NETC_MAX_SPATIAL];
    bool count_include_pad;         /* avgpool: divide by k*k even at borders */
} PoolParam;

typedef struct {
    int units;
    bool bias;
} DenseParam;

typedef struct {
    InitKind init;
    float init_a, init_b;           /* uniform: [a, b]; normal: mean a, std b */
    int fan_in, fan_out;
    int owner;                      /* node id of the layer that owns it */
    const char *role;               /* "weight" or "bias" */
} ParamParam;

typedef struct {
    int begin;                      /* first channel */
} SliceParam;

typedef struct {
    int nd;                         /* ConvParam/PoolParam of the forward op */
} GradRef;

typedef struct Node {
    int id;
    Op op;
    const char *name;   /* unique; "c1", "c1.weight", "c1.dx", ... */
    SrcLoc loc;         /* where the user wrote it (or its forward op) */
    int nin;
    int *in;            /* value (node) ids */
    Shape shape;
    union {
        ConvParam conv;     /* CONV, CONV_DX, CONV_DW                    */
        PoolParam pool;     /* MAXPOOL, AVGPOOL and their _DX            */
        DenseParam dense;   /* DENSE                                     */
        ParamParam param;   /* PARAM                                     */
        SliceParam slice;   /* SLICE                                     */
    } p;
} Node;

typedef struct {
    Arena *arena;       /* owns nodes, names and input arrays */
    Node **node;
    int nnode, cap;
    int *outputs;       /* network outputs (forward) */
    int noutput;
    int loss;           /* loss node id, -1 when none */
    int target;         /* INPUT node holding the loss target, -1 when none */
} Graph;

Graph *graph_new(Arena *a);
/* Appends a node; copies `in`.  Shape is left empty for shape_infer. */
Node *graph_add(Graph *g, Op op, const char *name, SrcLoc loc, int nin, const int *in);
Node *graph_node(const Graph *g, int id);
int graph_find(const Graph *g, const char *name); /* -1 when absent */

/* One node per line, stable: "%3 = conv(%1, %2) [N, 6, 28, 28] kernel=5x5 ... @lenet.net:4:10" */
void graph_print(FILE *f, const Graph *g);
/* Checks topological order, arities, shapes against shape_infer; on failure
 * prints what is wrong and returns false. */
bool graph_verify(const Graph *g, FILE *err);

/* shape.c: computes n->shape from its inputs and params.  On a user error
 * reports through `d` (at n->loc) and returns false. */
struct Diag;
bool shape_infer(Graph *g, Node *n, struct Diag *d);

/* MACs of one sample through node n (for the layer table). */
long node_macs(const Graph *g, const Node *n);

#endif
