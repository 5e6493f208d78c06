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
    OPF_MODE = 1 << 5,        /* lowered differently in training and in
                                 inference (batch norm, dropout)          */
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
               INIT_ONE, INIT_COUNT } InitKind;
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
    int out_pad[NETC_MAX_SPATIAL];  /* conv_transpose: output_padding  */
    int shuffle;                    /* a ShuffleMode: what graph/shuffle.c does
                                       when this grouped conv reads each group
                                       from one group of an earlier one */
} ConvParam;

/* `shuffle=` on a network or block: warn (the default), insert a
 * channel_shuffle (auto), or say nothing (off). */
typedef enum { SHUFFLE_WARN, SHUFFLE_AUTO, SHUFFLE_OFF } ShuffleMode;

typedef struct {
    int nsp;
    int kernel[NETC_MAX_SPATIAL];
    int stride[NETC_MAX_SPATIAL];
    int pad_lo[NETC_MAX_SPATIAL];
    int pad_hi[NETC_MAX_SPATIAL];
    bool count_include_pad;         /* avgpool: divide by k*k even at borders */
    int dilation[NETC_MAX_SPATIAL]; /* maxpool; 0 (zero-initialised) means 1 */
    bool ceil_mode;                 /* output size rounds up (see shape.c)   */
    int size[NETC_MAX_SPATIAL];     /* adaptive_avgpool: the output size     */
} PoolParam;
int pool_dilation(const PoolParam *p, int axis); /* dilation[axis], 1 when unset */

typedef struct {
    int units;
    bool bias;
} DenseParam;

typedef struct {
    InitKind init;
    float init_a, init_b;           /* uniform: [a, b]; normal: mean a, std b */
    int fan_in, fan_out;
    int owner;                      /* node id of the layer that owns it */
    const char *role;               /* "weight", "bias", "running_mean", ... */
    /* Persistent state, not trained (batch norm's running statistics, a
     * dropout step counter): it lives in params[] like a parameter and is
     * saved with it, but the optimiser never touches it.  A training step
     * writes the state's next value into grads[] at its offset
     * (Model.next_of), which the runtime copies into params[]. */
    bool state;
} ParamParam;

typedef struct {
    int begin;                      /* first index along axis              */
    int axis;                       /* non-batch axis; 0 is channels       */
    int end;                        /* one past the last (0: begin + the node's size) */
} SliceParam;

typedef struct {
    int axis;                       /* non-batch axis joined; 0 is channels */
} ConcatParam;

typedef struct {
    int rank;                       /* the shape asked for; one d may be -1 */
    int d[NETC_MAX_RANK];
} ReshapeParam;

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE } PadMode;

typedef struct {
    int nsp;
    PadMode mode;
    float value;                    /* constant mode                        */
    int lo[NETC_MAX_SPATIAL];       /* per spatial axis, top / front / left */
    int hi[NETC_MAX_SPATIAL];
} PadParam;

typedef struct {
    int nsp;
    int linear;                     /* 0: nearest; 1, 2, 3: linear, bilinear,
                                       trilinear (as many as spatial axes) */
    bool align_corners;             /* linear modes only                    */
    bool by_size;                   /* size= given, else scale=             */
    int scale[NETC_MAX_SPATIAL];    /* integer factor per axis (scale=)     */
    int size[NETC_MAX_SPATIAL];     /* output size per axis (size=)         */
} UpsampleParam;

/* pixel_shuffle and friends are a transpose of a reshaped view: the input
 * seen as dims[0..rank) is read in the order perm (output view axis i is
 * input view axis perm[i]).  shape.c fills rank, dims and perm from the
 * op, `factor` and the input shape; PERMUTE (their gradient) carries the
 * inverse. */
#define NETC_MAX_VIEW 8
typedef struct {
    int factor;                     /* r (block size) or channel groups     */
    int rank;
    int dims[NETC_MAX_VIEW];
    int perm[NETC_MAX_VIEW];
} PermParam;

typedef struct {
    int nd;                         /* ConvParam/PoolParam of the forward op */
} GradRef;

/* losses: a zeroed LossParam is the default of every loss but beta */
typedef enum { RED_MEAN, RED_SUM } Reduction;

typedef struct {
    Reduction reduction;
    const float *weight;            /* class weights (xent, nll), or NULL: all 1 */
    const float *pos_weight;        /* bce_with_logits: per channel, or NULL: all 1 */
    int nweight, npos_weight;       /* both equal the classes / channels d[0] */
    bool has_ignore;                /* targets equal to ignore_index count for nothing */
    int ignore_index;
    float label_smoothing;          /* xent: in [0, 1] */
    float beta;                     /* smooth_l1: > 0 (0 is l1) */
} LossParam;

/* Activations and element-wise arithmetic. */
typedef struct {
    Op fwd;                         /* ACT_DX: the activation differentiated */
    float a, b;                     /* leaky_relu slope; elu alpha; softplus beta,
                                       threshold; clip min, max; bcast_dx: a = scale */
    int axis;                       /* softmax, log_softmax: non-batch axis, 0 = channels */
    bool per_channel;               /* prelu: one slope per channel */
} ActParam;

typedef struct {
    float eps, momentum;            /* momentum: weight of the batch statistic */
    bool affine;                    /* has weight and bias inputs */
    bool track;                     /* has running_mean, running_var inputs */
    int stat;                       /* RUNNING_STAT: 0 mean, 1 variance */
} NormParam;

typedef struct {
    int size;                       /* channels in the window */
    float alpha, beta, k;
} LrnParam;

typedef struct {
    float p;                        /* probability of dropping */
    bool channels;                  /* dropout2d: whole channels */
    unsigned key;                   /* the train seed mixed with the layer's name */
} DropoutParam;

/* The epilogue of a node P (graph/fuse.c), applied in this order to each
 * element v of P's own result:
 *   add   v = v + r    an add of P and one other value r of P's shape
 *   act   v = f(v)     an element-wise activation, or
 *         v = f'(a) v  an activation's gradient with dy = v, reading a (the
 *                      activation's output y, or its input x for act_dx)
 * The values r and a are appended to P's inputs, after its own (nin of
 * them: 0, 1 or 2), so that the memory plan keeps them alive until P runs
 * and P's kernel reads them as buffers; node_arity_in gives P's own. */
typedef struct {
    int add, act;       /* the fused nodes, -1: none */
    int nin;            /* inputs appended to P for them */
} Epilogue;

typedef struct Node {
    int id;
    Op op;
    const char *name;   /* unique; "c1", "c1.weight", "c1.dx", ... */
    SrcLoc loc;         /* where the user wrote it (or its forward op) */
    int nin;
    int *in;            /* value (node) ids */
    Shape shape;
    /* Fusion (graph/fuse.c): on a conv, dense, conv_dx or dense_dx node,
     * the element-wise nodes its kernel applies before it stores (its
     * epilogue), and on each of them the node it was fused into (-1 when
     * unfused).  A fused node has no readers and no kernel of its own. */
    Epilogue epi;
    int fused_into;
    /* Shuffle folding (graph/fold_shuffle.c): on a concat along channels,
     * the groups of a channel shuffle its stores apply (its value is that
     * shuffle of the concat); on a slice along channels, the groups of one
     * it reads its input through; 0: none.  On the folded shuffle, the node
     * that took it (it has no readers and no kernel); -1 when kept. */
    int shuf_out, shuf_in, folded_into;
    /* Batch-norm folding (graph/fold_bn.c), for inference entries only
     * (forward, eval): on a conv node, the batchnorm its kernel
     * computes through folded weights (bn_fold) and the activation after it
     * that its stores apply (bn_epi); on that batchnorm and activation, the
     * conv node (bn_into).  -1: none.  Training entries ignore them. */
    int bn_fold, bn_epi, bn_into;
    union {
        ConvParam conv;     /* CONV, CONV_DX, CONV_DW, CONV_TRANSPOSE    */
        PoolParam pool;     /* MAXPOOL, AVGPOOL and their _DX            */
        DenseParam dense;   /* DENSE                                     */
        ParamParam param;   /* PARAM                                     */
        SliceParam slice;   /* SLICE                                     */
        LossParam loss;     /* every OPF_LOSS op and its _DX             */
        ActParam act;       /* activations, SOFTMAX, SUB, MUL, their gradients */
        NormParam norm;     /* BATCHNORM, BATCHNORM_DX/_DW, RUNNING_STAT */
        LrnParam lrn;       /* LRN, LRN_DX                               */
        DropoutParam drop;  /* DROPOUT, DROPOUT2D, DROPOUT_DX            */
        ConcatParam concat; /* CONCAT                                    */
        ReshapeParam reshape; /* RESHAPE                                 */
        PadParam pad;       /* PAD, PAD_DX                               */
        UpsampleParam up;   /* UPSAMPLE, UPSAMPLE_DX                     */
        PermParam perm;     /* PIXEL_SHUFFLE, ..., CHANNEL_SHUFFLE, PERMUTE */
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

/* The node's own inputs: n->nin without those its epilogue appended. */
int node_own_nin(const Node *n);

/* graph/fuse.c: what an epilogue may hold.  fuse_producer: the ops whose
 * kernels take an epilogue (conv, dense, conv_dx, dense_dx, maxpool_dx,
 * batchnorm, slice);
 * fuse_activation: the element-wise activations that are a function of
 * the value alone; fuse_activation_grad: the gradient of one of them,
 * (y or x, dy) -> dx. */
bool fuse_producer(Op op);
bool fuse_activation(Op op);
bool fuse_activation_grad(const Node *n);

/* shape.c: computes n->shape from its inputs and params.  On a user error
 * reports through `d` (at n->loc) and returns false. */
struct Diag;
bool shape_infer(Graph *g, Node *n, struct Diag *d);

/* The target contract of a loss (shape.c): class losses (softmax
 * cross-entropy, nll) score pred [C, S...] against one class index per
 * position, a batched [S...] of floats holding integers; every other loss
 * takes a float target of the prediction's shape. */
bool loss_takes_class(Op op);
Shape loss_target_shape(Op op, const Shape *pred);

/* PyTorch broadcasting of two per-sample shapes (aligned at the last axis,
 * sizes agree or one is 1).  False when they do not broadcast; *bad_axis
 * then names the axis counted from the end (-1 is the last). */
bool shape_broadcast(const Shape *a, const Shape *b, Shape *out, int *bad_axis);

/* fold_shuffle.c: the groups of a node that is a channel shuffle (a
 * channel_shuffle, or a permute moving whole channels the same way), else 0. */
int shuffle_groups_of(const Node *n);

/* MACs of one sample through node n (for the layer table). */
long node_macs(const Graph *g, const Node *n);

#endif
