/* netc.h - the compiler's phases and the records that flow between them.
 *
 *   frontend_load   .net file      -> Model (graph of the forward pass + training config)
 *   autodiff        Model          -> backward nodes appended, grad_of[] filled
 *   sched_choose    Model          -> Sched per node (algorithm, and why)
 *   program_build   Model + Sched  -> Program: entries, memory plan, kernels (lowered)
 *   emit_c / emit_llvm  Program    -> files
 *
 * main.c calls them in that order, one per line.
 */
#ifndef NETC_NETC_H
#define NETC_NETC_H

#include <stdbool.h>
#include <stdio.h>

#include "diag.h"
#include "ir.h"
#include "loop.h"
#include "target.h"
#include "util.h"

/* How a node is computed (sched.c).  ALGO_NONE: sources, and "let the
 * schedule choose" where a choice is requested (Model.conv_algo).
 *   direct  loops over the op's own indices (lower_conv.c, lower_misc.c ...)
 *   im2col  convolutions: unfold patches into a scratch matrix, then a GEMM
 *   gemm    dense layers: a register-blocked GEMM over the batch
 *   winograd, winograd2  2D 3x3 stride-1 conv and conv_dx: Winograd
 *           F(4x4, 3x3) and F(2x2, 3x3), transforms + batched GEMMs
 *   fft     1D/2D stride-1 conv and conv_dx with kernels of 2 and more:
 *           tiled real FFTs + a complex GEMM per frequency bin */
typedef enum { ALGO_NONE, ALGO_DIRECT, ALGO_IM2COL, ALGO_GEMM, ALGO_WINOGRAD, ALGO_WINOGRAD2,
               ALGO_FFT, ALGO_COUNT } Algo;

/* ---- training configuration (the `train { }` section) ---- */

typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_STEP } SchedKind;

#define NETC_MAX_OPT_SETTINGS 8
typedef struct {
    const char *name;        /* "lr", "beta1", ...                     */
    double value;
} OptSetting;

/* A parameter the train section's freeze or lr_mult names. */
typedef struct {
    const char *param;       /* "c1.weight"                            */
    bool frozen;
    bool scaled;             /* lr_mult names it                       */
    float lr_mult;           /* 1 unless scaled                        */
} ParamTrain;

typedef struct {
    bool present;            /* the file has a train section          */
    SrcLoc loc;
    const char *data_kind;   /* a data source of schema.c             */
    const char *data_path;   /* its directory or file                 */
    const char *data_labels, *data_test, *data_test_labels; /* npy, images; NULL: none */
    float data_split;        /* held-out test fraction, 0: none        */
    int data_channels, data_size; /* IDX conversions, 0: as stored     */
    bool data_coarse;        /* cifar100 label=coarse                 */
    bool data_target_input;  /* target=self: the input is the target */
    SrcLoc target_input_loc; /* where target=self is written         */
    int target_input_len;
    int crop_pad;            /* augment: crop(pad), 0: none           */
    bool flip;               /* augment: flip                         */
    int nnorm;               /* augment: normalize, channels (0: none) */
    float mean[16], std[16];
    int loss_node;           /* the loss node in the graph             */
    const char *optimizer;   /* "sgd", "adam", ... (schema.c's table)  */
    OptSetting opt[NETC_MAX_OPT_SETTINGS]; /* every setting of it, in
                                schema order, defaults filled; booleans 0|1 */
    int nopt;
    float clip_norm;         /* > 0: clip gradients to this global norm */
    int warmup;              /* epochs of linear learning-rate warm-up  */
    ParamTrain *param_opt;   /* parameters frozen or with an lr_mult    */
    int nparam_opt;
    SchedKind schedule;      /* learning rate per epoch                */
    int sched_every;         /* step: epochs between decays            */
    float sched_gamma;       /* step: decay factor                     */
    int batch, epochs;
    unsigned long seed;
    InitKind default_init;   /* for layers that do not say init=       */
} TrainConfig;

typedef struct Model {
    const char *name;        /* the network name: a C identifier       */
    const char *file;
    Arena *arena;            /* owns the graph and everything below    */
    Graph *g;
    TrainConfig train;
    int *grad_of;            /* autodiff: node id -> its gradient node, or -1 */
    int ngrad_of;
    /* state_updates: state PARAM node id -> the node computing its value
     * after a training step, or -1 (NULL before autodiff). */
    int *next_of;
    /* Set by tests (and `netc emit-c --entry grad`) to request a "grad"
     * entry: the gradient of value grad_value given incoming gradient
     * grad_seed (an INPUT node); -1 when unused. */
    int grad_value, grad_seed;
    /* The algorithm for every conv, conv_dx and conv_dw (direct, im2col or
     * winograd(2) where it applies), set by `netc --algo` and the op tests;
     * ALGO_NONE lets sched choose. */
    Algo conv_algo;
    /* `netc --no-batch-algo`: every convolution runs one algorithm at all
     * batch sizes (no Sched.alt). */
    bool no_batch_algo;
} Model;

/* frontend (grammar/, ast.c, elab.c, schema.c, shape.c).  Returns NULL
 * after reporting errors through d. */
Model *frontend_load(const char *path, Diag *d);
Model *frontend_load_string(const char *file, const char *text, Diag *d);
/* frontend_load that also prints the syntax tree to dump_ast (--dump=ast). */
Model *frontend_load_dump(const char *path, Diag *d, FILE *dump_ast);
void model_free(Model *m);

/* autodiff.c: appends the backward graph of value `of` and fills
 * m->grad_of for every node on a path from a PARAM or INPUT to it.  When
 * seed < 0, `of` must be a loss (OPF_LOSS, unbatched scalar) and its
 * gradient is 1; otherwise seed is an INPUT node of of's shape holding the
 * incoming gradient. */
void autodiff(Model *m, int of, int seed);
/* state.c (called by autodiff): appends, for every state PARAM (running
 * statistics, step counters), the node computing its value after one
 * training step, and fills m->next_of. */
void state_updates(Model *m);
/* Adds an INPUT node "<name>.grad" shaped like node `of`, records
 * grad_value/grad_seed and runs autodiff(m, of, seed). */
void autodiff_seeded(Model *m, int of);

/* ---- schedule: how each node is computed ---- */

const char *algo_name(Algo a);
/* The Algo named `name` ("auto" is ALGO_NONE); false when there is none. */
bool algo_parse(const char *name, Algo *out);

typedef struct {
    Algo algo;
    const char *why;         /* one line, printed by --dump=algo */
    /* A convolution whose best algorithm depends on the batch: `alt`
     * computes calls with alt_lo <= n < alt_hi (0: no bound), algo the
     * others (program.c guards the two calls).  ALGO_NONE: algo always. */
    Algo alt;
    int alt_lo, alt_hi;
} Sched;
/* The batch a second algorithm is looked for at when the model's is 1 (at
 * 1 otherwise), and how much faster there it must be (sched.c, autotune.c). */
enum { SCHED_ALT_PROBE = 32 };
#define SCHED_ALT_GAIN 0.9

/* A plan file (plan.c): measured algorithms per convolution node, as
 * `netc build --autotune` writes them and --plan reads them. */
enum { PLAN_MAX_TIMES = 8 };
typedef struct {
    const char *layer;       /* the node's name                              */
    Op pass;                 /* OP_CONV, OP_CONV_DX, OP_CONV_DW, OP_CONV_TRANSPOSE */
    const char *sig;         /* sched_signature of the node it was measured on */
    const char *algo_name;   /* the algorithm as written                     */
    Algo algo;               /* ALGO_NONE: not an algorithm netc knows        */
    SrcLoc loc, sig_loc, algo_loc; /* the line's layer, signature, algorithm  */
    int sig_len, algo_len;
    /* An optional "below=N:ALGO" or "from=N:ALGO" after the algorithm: the
     * batches another algorithm computes (Sched.alt); alt_name NULL: none. */
    const char *alt_name;
    Algo alt;                /* ALGO_NONE: not an algorithm netc knows        */
    int alt_lo, alt_hi;      /* as Sched's                                     */
    SrcLoc alt_loc;
    int alt_len;
    int ntime;               /* each candidate's measured ms per call         */
    const char *time_name[PLAN_MAX_TIMES];
    double time_ms[PLAN_MAX_TIMES];
} PlanEntry;
typedef struct {
    const char *file;
    PlanEntry *e;
    int n, cap;
} Plan;
/* Reads a plan file (allocating in a); NULL after reporting a malformed
 * line (file:line:col) or an unreadable file through d. */
Plan *plan_read(Arena *a, const char *path, Diag *d);
/* Writes `header` (comment lines) and then one line per entry. */
bool plan_write(const Plan *plan, const char *header, const char *path, Diag *d);

/* sched.c: one Sched per node, indexed by node id, for target_reference()
 * and no plan. */
Sched *sched_choose(const Model *m);
/* The same for target t, with plan entries (may be NULL) applied below
 * --algo and a layer's algo=; entries that no longer fit the model are
 * warnings through d. */
Sched *sched_choose_for(const Model *m, const Target *t, const Plan *plan, Diag *d);
/* A convolution node's signature in plans: the forward layer's input and
 * output shapes, kernel, strides, dilations, paddings and groups, one
 * token ("[1,28,28]->[6,28,28],k5x5,s1x1,d1x1,p2:2x2:2,g1"). */
const char *sched_signature(Arena *a, const Graph *g, const Node *n);
/* The algorithms that can compute convolution node n, in the order of the
 * candidate table (at most ALGO_COUNT); their estimated seconds for a call
 * at batch `batch` on t in est (may be NULL). */
int sched_candidates(const Graph *g, const Node *n, const Target *t, int batch, Algo *out, double *est);
/* The batch the cost model assumes for m: its training batch, else 1. */
int sched_batch(const Model *m);

/* graph/fuse.c: residual adds, activations and activation gradients fused
 * into the conv, dense, conv_dx or dense_dx node before them (see the
 * file); returns how many nodes were fused. */
int fuse_epilogues(Model *m);

/* graph/fold_shuffle.c: channel shuffles folded into the concat before
 * them or the slices after them (see the file); returns how many. */
int fold_shuffles(Model *m);

/* graph/fold_bn.c: batch norms (running statistics) folded into the conv
 * before them, in inference entries only (see the file);
 * returns how many. */
int fold_batchnorms(Model *m);

/* graph/shuffle.c: warns where a grouped conv reads each group from one
 * group of an earlier grouped conv, or inserts a channel_shuffle there
 * (shuffle=auto); before autodiff.  Returns the shuffles inserted. */
struct Diag;
int shuffle_groups(Model *m, struct Diag *d);
/* graph/graph_dot.c: the graph as Graphviz DOT, the backward nodes too when
 * `backward`; s may be NULL. */
void graph_dot(FILE *f, const Model *m, const Sched *s, bool backward);
void sched_print(FILE *f, const Model *m, const Sched *s);

/* ---- program: entry points, memory plan, kernels ---- */

/* Where a value lives while an entry runs. */
typedef enum { LOC_ARENA, LOC_PARAM, LOC_GRAD, LOC_IN, LOC_OUT, LOC_PREP } LocKind;
typedef struct {
    LocKind k;
    long off_fixed;          /* ARENA: floats from arena start = off_fixed + off_per_n * n */
    long off_per_n;          /* PARAM / GRAD / PREP: offset in floats is off_fixed */
    int idx;                 /* IN / OUT: index into in[] / out[] */
} Loc;

/* A call to a kernel: one Loc per kernel buffer, in the kernel's order.
 * It runs when n_lo <= n < n_hi (0: no bound; a node's Sched.alt and
 * algo run in calls of complementary ranges).  `weights`: the call is the
 * node's weight work alone (the `_prepare` half of a split kernel,
 * loop_hoist.c): its buffers are the prepared weights it writes, the
 * parameters it reads and its temporaries, not the node's value and
 * inputs. */
typedef struct {
    int node;
    Kernel *kernel;
    Loc *arg;
    int n_lo, n_hi;
    bool weights;
} Call;

/* What an entry's third pointer is: grads[], or the prepared weights,
 * which ENTRY_PREPARE writes from params[] alone and ENTRY_PREPARED
 * inference entries read (program.c, docs/codegen.md). */
typedef enum { ENTRY_PLAIN, ENTRY_PREPARE, ENTRY_PREPARED } EntryKind;

typedef struct {
    const char *name;        /* "forward", "train", "grad", "eval", "prepare",
                                "forward_prepared", "eval_prepared" */
    EntryKind kind;
    int nin, nout;
    int *in;                 /* node ids bound to in[i]  */
    int *out;                /* node ids bound to out[i] */
    bool writes_grads;
    Call *call;
    int ncall;
    long arena_fixed, arena_per_n;      /* floats, after planning */
    long naive_fixed, naive_per_n;      /* floats, one buffer per value */
} Entry;

typedef struct {
    int node;                /* the PARAM node */
    long offset, count;      /* floats within params[] / grads[] */
} ParamSlot;

typedef struct Program {
    const Model *m;
    const Sched *sched;
    const Target *target;    /* what the kernels were scheduled for */
    Arena *arena;
    Entry *entry;
    int nentry;
    Kernel **kernel;         /* every kernel once, in first-use order */
    int nkernel;
    ParamSlot *param;
    int nparam;
    long param_floats;
    long prep_floats;        /* the prepared weights (0: no prepare entry) */
    const char *meta;        /* the runtime's description (see docs/runtime.md) */
    const float *weights;    /* embedded initial weights, or NULL */
} Program;

/* program.c: the entries are "forward" (inputs -> outputs) and, when the
 * model has a loss, "train" (inputs, target -> outputs, loss; grads), or,
 * with grad_seed, "grad" (inputs, seed -> outputs, input gradients; grads).
 * Plans memory and lowers each node with lower_node. */
Program *program_build(const Model *m, const Sched *s);  /* for target_reference() */
Program *program_build_for(const Model *m, const Sched *s, const Target *t);
/* How far kernels are shared (loop_share.c, loop_family.c): identical
 * ones and those identical up to constants (the default), identical ones
 * only, or none (every node its own function). */
typedef enum { SHARE_FAMILIES, SHARE_EXACT, SHARE_NONE } ShareMode;
/* program_build_for with options: each distinct kernel printed after the
 * loop-IR schedule passes and outlining that have a file (NULL members:
 * not printed), the kernel families printed to `family`, and the sharing
 * mode (outlining is part of SHARE_FAMILIES). */
typedef struct {
    FILE *vectorize, *unroll, *privatize, *outline, *family, *prepare;
    ShareMode share;
} ProgramOptions;
Program *program_build_opts(const Model *m, const Sched *s, const Target *t, const ProgramOptions *o);
void program_free(Program *p);
/* used[i]: some entry calls p->kernel[i] (malloc'd, p->nkernel entries). */
bool *program_kernels_used(const Program *p);
/* Deals the called kernels out to at most max_parts parts for separate
 * compilation (owner[i]: the part of p->kernel[i]; part 0 also holds the
 * entries), balanced by size, from the program alone, so a build is the
 * same on every machine.  Returns the number of parts. */
enum { PROGRAM_MAX_PARTS = 8 };
int program_split(const Program *p, int max_parts, int *owner);
/* The statements of the kernels the entries call: the work code
 * generation grows with (program_split deals it out). */
long program_weight(const Program *p);
void program_print_mem(FILE *f, const Program *p);

/* weights.c: reads a safetensors file whose tensors are named and shaped
 * like the model's parameters into p->weights (for embedding). */
bool program_load_weights(Program *p, const char *path, Diag *d);

/* lower.c: the kernel that computes node `id` under its schedule.  The
 * kernel's buffers are, in order: the node's output, then its inputs, then
 * any scratch buffers the algorithm needs (LBuf.scratch). */
Kernel *lower_node(Arena *a, const Model *m, const Sched *s, const Target *t, int id);
/* The same for an entry that trains (train, grad: batch statistics, dropout
 * masks) or not (forward: running statistics, dropout is the identity).
 * Only OPF_MODE ops differ; lower_node is lower_node_mode(..., false). */
Kernel *lower_node_mode(Arena *a, const Model *m, const Sched *s, const Target *t, int id,
                        bool training);
/* lower_node_mode by algorithm `algo` (one the node's op has a lowering
 * for), whatever its Sched says: how program.c lowers Sched.alt. */
Kernel *lower_node_algo(Arena *a, const Model *m, Algo algo, const Target *t, int id, bool training);

/* lower_norm.c: in inference, the kernel of a batchnorm folded into conv
 * `layer` (graph/fold_bn.c) writes one buffer, the layer's
 * folded weight w' (its weight's shape) and then, at this offset in floats
 * (w' rounded up to 16 floats), its folded bias b' [C]. */
long lower_bn_fold_bias_at(const Graph *g, int layer);
/* The inputs of conv `layer`'s kernel when a batchnorm is folded into it
 * (inference): x, w (read as w'), the place of b', then the operands of
 * the batchnorm's fused epilogue (a residual).  Returns their count. */
#define LOWER_FOLD_INPUTS 5
int lower_fold_inputs(const Graph *g, int layer, int in[LOWER_FOLD_INPUTS]);

/* emit_c.c: writes DIR/<name>.c and DIR/<name>.h.  Returns false after
 * printing an error (e.g. an unwritable directory). */
bool emit_c(const Program *p, const char *dir, Diag *d);
/* The C for a main() that hands the model to the runtime (netc build). */
bool emit_c_main(const Program *p, const char *path, Diag *d);

#endif
