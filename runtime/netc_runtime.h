/* netc_runtime.h - the runtime that turns a compiled model into a program.
 *
 * netc emits, for a network called NAME:
 *   const char NAME_meta[];        the model's description (format below)
 *   void NAME_forward(...);        inference entry        (NetcEntryFn)
 *   void NAME_train(...);          forward + loss + grads (NetcEntryFn), when
 *                                  the .net file has a train section
 *   void NAME_eval(...);           forward + loss in inference mode, no grads
 *                                  (NetcEntryFn), with NAME_train
 * and, for `netc build`, a main() that calls netc_run().  The runtime
 * parses the description, initialises or loads parameters, reads data,
 * runs the optimiser and implements the train / eval / predict / info
 * commands.  See docs/runtime.md.
 *
 * Entry-point convention (both backends):
 *   n       batch size of this call
 *   params  all parameters, one flat float array (offsets in the meta)
 *   grads   same layout as params; written by train entries (NULL otherwise):
 *           gradients of params, next values of state tensors
 *   arena   working memory of at least fixed + per_n * n floats ("arena" line)
 *   in      the entry's inputs  (forward: {x};  train, eval: {x, target})
 *   out     the entry's outputs (forward: {y};  train, eval: {y, loss[1]})
 *   Tensors are float32, row-major NCHW with the batch first.
 *
 * Meta format: UTF-8 text, one record per line, fields separated by one
 * space, numbers in C syntax (floats printed with %.9g):
 *   netc 1                                   format version, first line
 *   name NAME
 *   params TOTAL                             floats in params[]
 *   arena FIXED PER_N                        max over entries, floats
 *   prepare FLOATS                           optional: the prepared weights'
 *                                            size (NetcModel.prepare)
 *   input NAME RANK D1 .. DR                 per-sample shape, in in[] order
 *   output NAME RANK D1 .. DR                forward outputs, in out[] order
 *   param NAME OFFSET COUNT RANK D1 .. DR INIT A B FAN_IN FAN_OUT
 *   state NAME OFFSET COUNT RANK D1 .. DR INIT A B FAN_IN FAN_OUT
 *        a state tensor (running statistics, step counters): in params[]
 *        and checkpoints like a param, not trained; train entries write its
 *        next value into grads[] at OFFSET, which the runtime copies into
 *        params[] after the step
 *        INIT: zero one he_normal he_uniform xavier_normal xavier_uniform
 *              uniform (A, B = low, high) normal (A, B = mean, std)
 *   train loss KIND [REDUCTION]              softmax_cross_entropy | mse | nll |
 *                                            bce_with_logits | l1 | smooth_l1;
 *                                            REDUCTION mean (default) | sum
 *   train target KIND RANK D1 .. DR          class (class indices as floats, one
 *                                            per position: rank 0 for [C] scores,
 *                                            [H, W] for [C, H, W]) | onehot (rank 1,
 *                                            a label's one-hot row) | tensor
 *   train optimizer KIND NAME=VALUE ...      sgd | adagrad | rmsprop | adadelta |
 *                                            adam | adamw, with every setting
 *                                            of KIND (torch.optim's names,
 *                                            beta1 beta2 for betas; booleans
 *                                            0|1), e.g. adam lr=0.001
 *                                            beta1=0.9 beta2=0.999 eps=1e-08
 *                                            weight_decay=0 amsgrad=0; or the
 *                                            first format, sgd LR MOMENTUM
 *                                            WEIGHT_DECAY NESTEROV(0|1)
 *   train clip_norm X                        optional: clip to global norm X
 *   train warmup E                           optional: E epochs of linear warm-up
 *   train lr_mult PARAM X                    optional, after PARAM's record:
 *   train freeze PARAM                       its rate times X / never updated
 *   train batch B
 *   train epochs E
 *   train seed S
 *   train data KIND PATH                     fashion_mnist | mnist | idx | npy |
 *                                            cifar10 | cifar100 | images
 *   train datafile ROLE PATH                 labels | test | test_labels
 *   train dataopt KEY VALUE                  split F | channels C | size S |
 *                                            label coarse|fine
 *   train augment crop PAD | flip
 *   train normalize C MEAN1 .. MEANC STD1 .. STDC
 *   end                                      last line
 * Unknown record names are an error (the runtime and compiler ship together).
 */
#ifndef NETC_RUNTIME_H
#define NETC_RUNTIME_H

#include "netc_pool.h"

typedef void (*NetcEntryFn)(int n, const float *params, float *grads, float *arena,
                            const float *const *in, float *const *out);

/* Runs the command line of a generated program:
 *   PROG train   [--data DIR] [--epochs N] [--batch N] [--lr X] [--seed N]
 *                [--save CKPT] [--resume CKPT] [--metrics FILE.jsonl]
 *                [--limit N] [--test-limit N] [--quiet] [--threads N]
 *                [--schedule constant|cosine|step:EVERY:GAMMA]
 *                [--on-nonfinite=stop|skip-batch] [--skip-bad] [--plot FILE.svg]
 *   PROG eval    --weights CKPT [--data DIR] [--batch N] [--test-limit N]
 *                [--threads N] [--metrics FILE.json] [--skip-bad]
 *   PROG predict --weights CKPT --input [NAME=]X.npy... --output [NAME=]Y.npy...
 *                [--batch N] [--threads N] [--allow-nonfinite]
 *   PROG plot    METRICS.jsonl -o FILE.svg
 *   PROG info
 *   PROG help
 * train may be NULL (no train section); weights may be NULL (no embedded
 * weights; otherwise `params` floats, used as the initial parameters and as
 * the default for --weights).
 *
 * set_parallel is the model's parallel-for hook setter (netc_pool.h), or
 * NULL for a model without parallel loops (then every command is serial,
 * whatever --threads says).  For train, eval and predict netc_main makes a
 * pool of --threads N threads (default netc_cpu_count(), at most 1024),
 * calls set_parallel(netc_pool_run, pool) before the command and
 * set_parallel(NULL, NULL), meaning "serial again", before it frees the pool.
 *
 * Returns the process exit status: 0, 1 after an error ("PROG: error: FILE:
 * WHAT" on stderr; a failed write to stdout is one), 2 after a usage error.
 * Never calls exit(). */
int netc_main(int argc, char **argv, const char *meta, NetcEntryFn forward,
              NetcEntryFn train, const float *weights,
              void (*set_parallel)(NetcParallelFn pf, void *pool));

/* Everything netc_main takes, and the eval entry: with it, `eval` and the
 * test pass after each training epoch score the model's own loss with one
 * forward pass in inference mode; without it (netc_main), they run the
 * train entry, or for a model with state tensors the forward entry and
 * the runtime's cross-entropy (see rt_evaluate).  Generated programs call
 * netc_run. */
/* The prepared entries (docs/codegen.md): prepare writes what the
 * weights alone determine (filter transforms, folded batch norms) into
 * prep, which forward_prepared and eval_prepared read in place of that
 * work; their arguments are a plain entry's with prep for grads. */
typedef void (*NetcPrepareFn)(const float *params, float *prep, float *arena);
typedef void (*NetcPreparedFn)(int n, const float *params, const float *prep, float *arena,
                               const float *const *in, float *const *out);

typedef struct {
    const char *meta;
    NetcEntryFn forward, train, eval; /* train, eval: NULL without a train section */
    const float *weights;
    void (*set_parallel)(NetcParallelFn pf, void *pool);
    /* NULL when the model has no weight work to prepare ("prepare" meta
     * record absent); eval_prepared also NULL without a train section */
    NetcPrepareFn prepare;
    NetcPreparedFn forward_prepared, eval_prepared;
} NetcModel;

int netc_run(int argc, char **argv, const NetcModel *model);

#endif
