/* rt.h - the runtime's internal modules, shared between its files and its
 * tests.  Nothing here is part of the public ABI (that is netc_runtime.h);
 * every extern symbol carries the rt_ prefix so it cannot collide with the
 * NAME_meta / NAME_forward / NAME_train symbols of a generated model.
 *
 * Error convention: a function that can fail returns bool and, on failure,
 * fills an RtErr with "<file>: <what>" (or just "<what>").  Only netc_main
 * prints, as "PROG: error: <msg>", and chooses the exit status.  Nothing
 * below netc_main exits.
 */
#ifndef NETC_RT_H
#define NETC_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "netc_runtime.h"

#if defined(__GNUC__)
#define RT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RT_PRINTF(f, a)
#endif

/* ---- errors and memory (util.c) ---------------------------------------- */

typedef struct {
    char msg[1024];
} RtErr;

/* Formats "<file>: <what>" (file may be NULL) into e; returns false so a
 * caller can write `return rt_fail(e, path, "...")`. */
bool rt_fail(RtErr *e, const char *file, const char *fmt, ...) RT_PRINTF(3, 4);
/* Prefixes an existing message: "<file>: <old message>". */
bool rt_fail_wrap(RtErr *e, const char *file);

/* Every allocation of the runtime goes through these (and zlib's through
 * them too, see idx.c), so a test can make any one of them fail. */
void *rt_alloc(size_t n);               /* malloc that accepts 0; NULL on failure */
void *rt_calloc(size_t n, size_t size); /* zeroed; NULL on overflow or failure */
void *rt_realloc(void *p, size_t n);    /* realloc that accepts 0; NULL on failure (p kept) */
/* n bytes rounded up to a multiple of align, aligned to it; free() frees. */
void *rt_alloc_aligned(size_t align, size_t n);
/* Test hook: when > 0, the Nth allocation from now fails (and the hook
 * then reads 0); 0 disables it.  After a run, a value still > 0 means the
 * run made fewer than N allocations. */
extern long rt_alloc_fail_at;
char *rt_strdup(const char *s);
char *rt_strndup(const char *s, size_t n);
/* in into out (cap bytes, at least 1) with every byte that is not part of
 * valid UTF-8, and every control character, written as \xNN: file names
 * and file contents in messages cannot garble a terminal.  Truncates. */
void rt_escape(const char *in, char *out, size_t cap);
/* a * b into *out; false on size_t overflow. */
bool rt_mul_ok(size_t a, size_t b, size_t *out);

/* "[1,28,28]" into buf, with "N," in front when batched. */
void rt_shape_str(char *buf, size_t cap, const long *d, int rank, bool batched);

/* ---- files (io.c) ------------------------------------------------------- */

/* Whole file into memory (NUL-terminated for convenience). */
bool rt_read_file(const char *path, unsigned char **data, size_t *len, RtErr *e);

/* A whole regular file mapped read-only (mmap), so data larger than memory
 * can be read; *len is its size (an empty file is an error). */
bool rt_map_file(const char *path, void **map, size_t *len, RtErr *e);
void rt_unmap_file(void *map, size_t len);  /* NULL is a no-op */

/* Atomic replacement: write to a temporary file in the same directory,
 * then fflush + fsync + rename over the target, so readers see either the
 * old file or the complete new one.  On failure the temporary file is
 * removed and the old target is untouched. */
typedef struct {
    FILE *f;
    char *tmp;       /* the temporary path */
    char *dir;       /* the target's directory ("" for the working directory) */
    const char *path;
    bool failed;     /* a write failed; commit will report it */
    int err;         /* errno of that failure */
} RtAtomic;
bool rt_atomic_open(RtAtomic *a, const char *path, RtErr *e);
bool rt_atomic_write(RtAtomic *a, const void *buf, size_t n);
bool rt_atomic_commit(RtAtomic *a, RtErr *e);
void rt_atomic_abort(RtAtomic *a);
/* n bytes as the whole new content of path, atomically. */
bool rt_write_file(const char *path, const void *buf, size_t n, RtErr *e);
/* Test hook: when > 0, the Nth rt_atomic_write from now fails (as a full
 * disk would); 0 disables it. */
extern long rt_test_fail_write;

/* ---- the thread pool (pool.c; the API is netc_pool.h) ------------------- */

/* Test hook: when > 0, the Nth worker start from now fails (as
 * pthread_create does with EAGAIN); 0 disables it. */
extern long rt_test_fail_thread;

/* ---- settings (settings.c) ---------------------------------------------- */

/* Batches are passed to entries as int; far below that, a batch this large
 * is a typo, not a configuration. */
#define RT_MAX_BATCH (1L << 24)

/* A decimal integer in [min, max] (an optional '-', then digits only). */
bool rt_parse_long(const char *s, long min, long max, long *out);
/* A real that converts to a normal float (or 0 where allowed): finite, not
 * negative (not even -0), no overflow to inf and no underflow to 0 or a
 * subnormal. */
typedef enum {
    RT_REAL_POSITIVE,          /* > 0: learning rates */
    RT_REAL_NONNEG,            /* >= 0: weight decay */
    RT_REAL_FRACTION           /* in [0, 1): momentum */
} RtReal;
bool rt_parse_real(const char *s, RtReal kind, float *out);
/* What rt_parse_real(kind) accepts, for messages: "expected <rule>". */
const char *rt_real_rule(RtReal kind);

/* ---- the model description (meta.c) ------------------------------------ */

#define RT_MAX_RANK 8
/* Channels a per-channel normalisation covers. */
#define RT_MAX_CHANNELS 16

typedef struct {
    char *name;
    int rank;
    long d[RT_MAX_RANK];
    long numel;                /* product of d (1 for rank 0) */
} RtTensor;

typedef enum {
    RT_INIT_ZERO, RT_INIT_HE_NORMAL, RT_INIT_HE_UNIFORM, RT_INIT_XAVIER_NORMAL,
    RT_INIT_XAVIER_UNIFORM, RT_INIT_UNIFORM, RT_INIT_NORMAL, RT_INIT_ONE, RT_INIT_COUNT
} RtInit;

typedef struct {
    RtTensor t;
    long offset;               /* floats into params[] */
    RtInit init;
    double a, b;               /* uniform: low, high; normal: mean, std */
    long fan_in, fan_out;
    float lr_mult;             /* the learning rate's factor (1 unless set) */
    bool frozen;               /* never updated, left out of clipping */
    bool state;                /* a "state" record: not trained; a training
                                  step leaves its next value in grads[] */
} RtParam;

/* The losses, in the order of their names in meta.c; the runtime only
 * names them (the train entry computes the loss). */
typedef enum { RT_LOSS_SOFTMAX_XENT, RT_LOSS_MSE, RT_LOSS_NLL, RT_LOSS_BCE_LOGITS, RT_LOSS_L1,
               RT_LOSS_SMOOTH_L1, RT_LOSS_COUNT } RtLoss;
typedef enum { RT_TARGET_CLASS, RT_TARGET_ONEHOT, RT_TARGET_TENSOR } RtTargetKind;

/* The optimisers of torch.optim, with its hyper-parameter names (Adam's
 * betas are beta1 and beta2).  Every kind reads lr and weight_decay; the
 * other fields belong to the kinds named beside them (optim.c's table
 * says which, in the order of the meta and checkpoint records). */
typedef enum {
    RT_OPT_SGD, RT_OPT_ADAGRAD, RT_OPT_RMSPROP, RT_OPT_ADADELTA, RT_OPT_ADAM, RT_OPT_ADAMW,
    RT_OPT_COUNT
} RtOptKind;

typedef struct {
    RtOptKind kind;
    /* doubles, as torch's Python floats are: 1 - beta2 is computed from
     * 0.999, not from 0.999 rounded to float */
    double lr, weight_decay;
    double momentum;           /* sgd, rmsprop */
    double dampening;          /* sgd */
    bool nesterov;             /* sgd */
    double lr_decay, initial_accumulator_value; /* adagrad */
    double alpha;              /* rmsprop */
    bool centered;             /* rmsprop */
    double rho;                /* adadelta */
    double beta1, beta2;       /* adam, adamw */
    bool amsgrad;              /* adam, adamw */
    double eps;                /* all but sgd */
} RtOptim;

/* Learning-rate schedules, stepped once per epoch (as PyTorch's
 * CosineAnnealingLR / StepLR are when called after each epoch). */
typedef enum { RT_SCHED_CONSTANT, RT_SCHED_COSINE, RT_SCHED_STEP } RtSchedKind;
typedef struct {
    RtSchedKind kind;
    long every;                /* step: epochs between decays */
    double gamma;              /* step: decay factor */
} RtSchedule;

typedef struct {
    char *name;
    long params;               /* floats in params[] */
    long arena_fixed, arena_per_n;
    long prep_floats;          /* the prepared weights ("prepare" record), or 0 */
    RtTensor *input;
    int ninput;
    RtTensor *output;
    int noutput;
    RtParam *param;
    int nparam;
    /* the train records; has_train is false when there are none */
    bool has_train;
    RtLoss loss;
    bool loss_sum;             /* reduction sum: the entry's loss adds over the batch */
    bool has_ignore;           /* class targets equal to ignore_index count for nothing */
    int ignore_index;
    RtTargetKind target_kind;
    RtTensor target;           /* per-sample target shape */
    RtOptim opt;
    float clip_norm;           /* > 0: clip gradients to this global norm */
    long warmup;               /* epochs of linear learning-rate warm-up */
    RtSchedule schedule;       /* constant when there is no schedule record */
    long batch, epochs;
    uint64_t seed;
    char *data_kind;           /* fashion_mnist | mnist | idx | npy | cifar10 | cifar100 | images */
    char *data_path;
    /* train datafile ROLE PATH: npy label and test arrays, the test folder */
    char *data_labels, *data_test, *data_test_labels;
    /* train dataopt KEY VALUE */
    double data_split;         /* held-out test fraction, 0: none */
    int data_channels, data_size; /* IDX conversions, 0: as stored */
    bool data_coarse;          /* cifar100: the 20 coarse labels */
    bool target_input;         /* target=self: the target is the input as fed */
    /* train augment crop PAD | flip; train normalize C MEAN.. STD.. */
    int crop_pad;
    bool flip;
    int nnorm;
    float mean[RT_MAX_CHANNELS], std[RT_MAX_CHANNELS];
} RtMeta;

const char *rt_init_name(RtInit k);
const char *rt_loss_name(RtLoss k);
const char *rt_target_name(RtTargetKind k);
bool rt_meta_parse(RtMeta *m, const char *text, RtErr *e);
void rt_meta_free(RtMeta *m);
const RtParam *rt_meta_param(const RtMeta *m, const char *name);

/* ---- random numbers (rng.c) --------------------------------------------- */

/* PCG32 (XSH-RR, 64-bit state), as published by M. O'Neill. */
typedef struct {
    uint64_t state, inc;
} RtRng;

void rt_rng_seed(RtRng *r, uint64_t seed, uint64_t stream);
uint32_t rt_rng_next(RtRng *r);
uint32_t rt_rng_below(RtRng *r, uint32_t bound); /* uniform in [0, bound), unbiased */
double rt_rng_uniform(RtRng *r);                 /* uniform in [0, 1), 53 bits */
double rt_rng_normal(RtRng *r);                  /* N(0, 1), Box-Muller */
void rt_rng_shuffle(RtRng *r, uint32_t *a, uint32_t n); /* Fisher-Yates */

/* ---- initialisation and optimiser (init.c, optim.c) --------------------- */

/* Streams of one seed: parameters and shuffling draw from separate
 * sequences, so the data order does not depend on the model's size.  The
 * held-out split draws from RT_STREAM_SPLIT, epoch k's augmentation from
 * RT_STREAM_AUG + k. */
enum { RT_STREAM_INIT = 1, RT_STREAM_DATA = 2, RT_STREAM_SPLIT = 3, RT_STREAM_AUG = 16 };

/* Fills params[] from each param's INIT record, in meta order. */
void rt_init_params(const RtMeta *m, float *params, uint64_t seed);

/* Optimisers (optim.c).  Every kind keeps up to RT_OPT_SLOTS buffers per
 * parameter float ("state"), laid out as RT_OPT_SLOTS arrays of
 * m->params floats: slot k of float i is state[k * m->params + i]. */
#define RT_OPT_SLOTS 3
const char *rt_optim_name(RtOptKind k);
bool rt_optim_kind(const char *name, RtOptKind *k);
/* The hyper-parameters kind k reads, in record order; returns how many. */
int rt_optim_fields(RtOptKind k, const char *const **names);
/* Sets one hyper-parameter from text ("0.9"; booleans "0" or "1");
 * false with a message when kind o->kind has no such field or the text
 * breaks its rule ("expected ..., found '...'": callers name the field). */
bool rt_optim_set(RtOptim *o, const char *field, const char *text, RtErr *e);
/* The value as text a later rt_optim_set reads back exactly (%.17g at
 * most). */
void rt_optim_get(const RtOptim *o, const char *field, char *buf, size_t cap);
/* "adam lr 0.001 beta1 0.9 ... amsgrad false", for people (info). */
void rt_optim_str(const RtOptim *o, char *buf, size_t cap);
/* The rules between fields: nesterov needs momentum > 0 and dampening 0. */
bool rt_optim_check(const RtOptim *o, RtErr *e);
/* The name of state slot k ("exp_avg", ...), or NULL when o uses none. */
const char *rt_optim_slot(const RtOptim *o, int k);
/* Fills the state of a fresh run (zeros; adagrad: its initial value). */
void rt_optim_init_state(const RtOptim *o, float *state, long params);
/* One step over n floats: p and its gradient g, slot[k] the k-th state
 * buffer of the same floats (NULL where unused); step is the number of
 * this step, from 1; lr the rate for these floats. */
void rt_optim_step(const RtOptim *o, double lr, long step, float *p, const float *g,
                   float *const slot[RT_OPT_SLOTS], long n);
/* torch.nn.utils.clip_grad_norm_ over the parameters that are not frozen:
 * when their global L2 norm exceeds max_norm, every such gradient is
 * scaled by max_norm / (norm + 1e-6).  Returns the norm. */
float rt_clip_grad_norm(const RtMeta *m, float *grads, float max_norm);
/* One update of every parameter that is not frozen: clipping (when
 * m->clip_norm > 0) then rt_optim_step at lr * lr_mult. */
void rt_optim_update(const RtMeta *m, const RtOptim *o, double lr, long step, float *params,
                     float *grads, float *state);
/* The warm-up factor of step `step` (from 1) when warm-up lasts `steps`
 * steps: step / steps, then 1. */
double rt_warmup_factor(long step, long steps);
/* The learning rate of epoch `epoch` (0-based) of `epochs`:
 * constant: base; cosine: base * (1 + cos(pi * epoch / epochs)) / 2;
 * step: base * gamma^floor(epoch / every). */
double rt_schedule_lr(const RtSchedule *s, double base, long epoch, long epochs);
/* "constant", "cosine" or "step:EVERY:GAMMA" (the --schedule syntax, also
 * used in checkpoints). */
bool rt_schedule_parse(const char *text, RtSchedule *s, RtErr *e);
void rt_schedule_str(const RtSchedule *s, char *buf, size_t cap);

/* ---- file formats (json.c, npy.c, safetensors.c, idx.c) ----------------- */

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ } JsonKind;

typedef struct JsonVal {
    JsonKind kind;
    bool b;
    char *s;                   /* STR: the decoded string; NUM: its text */
    struct JsonVal *item;      /* ARR, OBJ: n values */
    char **key;                /* OBJ: n keys, unique */
    int n;
} JsonVal;

/* Strict RFC 8259 JSON of exactly len bytes (trailing whitespace allowed);
 * on error e holds "<what> at byte <offset>". */
bool rt_json_parse(JsonVal *v, const char *text, size_t len, RtErr *e);
void rt_json_free(JsonVal *v);
const JsonVal *rt_json_get(const JsonVal *obj, const char *key);
/* NUM holding a non-negative integer below 2^63, exactly. */
bool rt_json_u64(const JsonVal *v, uint64_t *out);

typedef struct {
    int rank;
    long d[RT_MAX_RANK];
    long numel;
    float *data;
} RtArray;

/* .npy, float32 little-endian, C order (versions 1.0, 2.0, 3.0 read). */
bool rt_npy_read(const char *path, RtArray *a, RtErr *e);
bool rt_npy_write(const char *path, const RtArray *a, RtErr *e); /* atomic */
void rt_array_free(RtArray *a);

/* A .npy file mapped in place: '|u1', '<f4' or a little-endian integer
 * dtype (item bytes each), data aligned to its items. */
typedef struct {
    int rank;
    long d[RT_MAX_RANK];
    long numel;
    char descr[8];
    int item;
    const unsigned char *data;
    void *map;
    size_t map_len;
} RtNpyMap;

bool rt_npy_map(const char *path, RtNpyMap *a, RtErr *e);
void rt_npy_unmap(RtNpyMap *a);
/* Element i of an integer array (-1 for a uint64 beyond int64). */
long long rt_npy_int(const RtNpyMap *a, long i);

typedef struct {
    char *name;
    char dtype[8];
    int rank;
    long shape[RT_MAX_RANK];
    size_t begin, end;         /* byte offsets into data */
} StTensor;

typedef struct {
    StTensor *t;
    int n;
    char **meta_key, **meta_val;
    int nmeta;
    unsigned char *file;       /* the whole file */
    const unsigned char *data; /* after the header */
    size_t data_len;
} StFile;

bool rt_st_read(StFile *f, const char *path, RtErr *e);
void rt_st_free(StFile *f);
const StTensor *rt_st_find(const StFile *f, const char *name);
const char *rt_st_meta(const StFile *f, const char *key);

typedef struct {
    const char *name;
    int rank;
    const long *shape;
    const float *data;         /* F32, product(shape) floats */
} StOut;

/* Writes F32 tensors in the given order plus string metadata (nmeta
 * key/value pairs in kv[2*i], kv[2*i+1]); atomic. */
bool rt_st_write(const char *path, const StOut *t, int n, const char *const *kv, int nmeta,
                 RtErr *e);

/* IDX files of unsigned bytes, plain or gzipped (zlib reads both). */
typedef struct {
    int ndim;
    long d[3];
    long count;                /* d[0] */
    unsigned char *data;
} RtIdx;

bool rt_idx_read(const char *path, int ndim, RtIdx *x, RtErr *e);
void rt_idx_free(RtIdx *x);

/* ---- data sets (data.c, cifar.c, image.c, batch.c) --------------------- */

#define RT_MAX_CLASSES 65536   /* labels are uint16_t */

/* One split of a data set: n samples of [c, h, w] values, stored either
 * as bytes (x8, read as x / 255) or as floats (xf), with a 16-bit label
 * each (up to RT_MAX_CLASSES classes).  Sample i is stored at position index[i] (identity when index is
 * NULL), so a held-out split shares the storage of the set it comes from.
 * own, own_y and map (map_len bytes, from mmap) are released by
 * rt_data_free; a held-out split owns nothing but its index. */
typedef struct {
    long n;                    /* samples */
    int c, h, w;               /* per-sample shape as stored */
    int depth;                 /* volumes [c, depth, h / depth, w]; 0: images */
    long pixels;               /* c * h * w */
    const unsigned char *x8;   /* [*, c, h, w] bytes, or NULL */
    const float *xf;           /* [*, c, h, w] floats, or NULL */
    const uint16_t *y;         /* [*] labels */
    uint32_t *index;           /* [n] positions, or NULL */
    void *own, *own_y, *map;
    size_t map_len;
    /* Dense targets (an npy labels array of more than one value per
     * sample: a class per position, or a tensor), or NULL: the labels y.
     * t_width values per sample of t_item bytes; t_kind is 'f' (float32),
     * 'b' (uint8, read as x / 255), 'u' or 'i' (unsigned or signed
     * integers: class indices). */
    const unsigned char *t;
    long t_width;
    int t_item;
    char t_kind;
    void *t_map;
    size_t t_map_len;
} RtSplit;

/* The position of sample i of s in its storage. */
static inline size_t rt_split_at(const RtSplit *s, long i)
{
    return s->index ? s->index[i] : (size_t)i;
}

static inline int rt_split_label(const RtSplit *s, long i)
{
    return s->y[rt_split_at(s, i)];
}

/* What becomes of a stored sample on its way into the model's input
 * (batch.c): channel replication (1 -> c), bilinear resizing, and, for
 * training only, a random crop of the zero-padded image and a random
 * horizontal flip; then (x - mean[c]) / std[c]. */
typedef struct {
    int c, h, w;               /* the model's input as [c, h, w] */
    int depth;                 /* a volume [c, depth, h / depth, w], or 0 */
    int crop_pad;              /* 0: no random crop */
    bool flip;
    int nnorm;                 /* 0 (no normalisation) or c */
    float mean[RT_MAX_CHANNELS], std[RT_MAX_CHANNELS];
} RtView;

typedef struct {
    RtSplit train, test;
    int classes;
    RtView view;
    long skipped;              /* bad images skipped (--skip-bad) */
    char **class_name;         /* images: the class folders' names, [classes] */
} RtData;

/* The classes a model predicts: the first output's size. */
int rt_model_classes(const RtMeta *m);
/* Loads the model's data set (the meta's data records) from `path` (the
 * meta's path when NULL): the train split only when want_train; limits of
 * 0 mean all; skip_bad skips undecodable images instead of failing.
 * Checks every file against the model. */
bool rt_data_load(RtData *d, const RtMeta *m, const char *path, bool want_train, long limit,
                  long test_limit, bool skip_bad, RtErr *e);
void rt_data_free(RtData *d);
void rt_split_free(RtSplit *s);

/* Fits split s (loaded from path) to the model and sets d->view: its
 * samples, with channel replication (to `channels`, 0: none) and resizing
 * (to size x size, 0: none), must be the model's input. */
bool rt_data_fit(RtData *d, const RtMeta *m, const RtSplit *s, int channels, int size,
                 const char *path, RtErr *e);
/* Every label of s below d->classes; the error names path and sample. */
bool rt_data_check_labels(const RtSplit *s, const RtData *d, const char *path, RtErr *e);

/* The other sources, each filling splits of d checked against the model.
 * CIFAR (cifar.c): the binary batches of DIR; the test split always, the
 * training split when want_train. */
bool rt_cifar_load(RtData *d, const RtMeta *m, const char *dir, bool want_train, RtErr *e);
/* Image folders (image.c): DIR/CLASS/FILE.png|.jpg|.jpeg, classes in name
 * order, each image decoded and resized to the model's input. */
bool rt_images_load(RtSplit *s, RtData *d, const RtMeta *m, const char *dir, bool skip_bad,
                    RtErr *e);
/* Whether the runtime was built with PNG and JPEG support. */
bool rt_images_supported(void);

/* Bilinear resizing of one [h, w] plane to [oh, ow] (PyTorch's
 * interpolate(mode="bilinear", align_corners=False), no antialiasing). */
void rt_resize_bilinear(const float *src, int h, int w, float *dst, int oh, int ow);
/* Samples order[first .. first+n) of s (order NULL: first .. first+n) as
 * floats into x, [n, v->c, v->h, v->w].  With aug non-NULL the random crop
 * and flip of v are drawn from it, sample by sample (batch.c lists the
 * draws). */
void rt_gather(float *x, const RtSplit *s, const RtView *v, const uint32_t *order, long first,
               long n, RtRng *aug);
/* The generator of epoch `epoch`'s augmentation: a stream of the seed of
 * its own, so a resumed run draws the same crops and flips. */
void rt_aug_seed(RtRng *r, uint64_t seed, long epoch);

/* ---- checkpoints (ckpt.c) ----------------------------------------------- */

/* What a checkpoint holds beyond the parameters, so a resumed run goes on
 * exactly as if it had not stopped. */
typedef struct {
    long epoch;                /* epochs completed */
    long epochs;               /* epochs asked for */
    RtRng rng;                 /* the data stream after `epoch` epochs */
    RtOptim opt;               /* opt.lr is the base rate of the schedule */
    long step;                 /* optimiser steps taken (warm-up, bias corrections) */
    RtSchedule schedule;
    long batch, limit;
    uint64_t seed;
} RtTrainState;

/* state: RT_OPT_SLOTS * m->params floats, as rt_optim_step keeps them. */
bool rt_ckpt_save(const char *path, const RtMeta *m, const float *params, const float *state,
                  const RtTrainState *s, RtErr *e);
/* Loads parameters into params.  With state and s non-NULL (resume) the
 * file must be a checkpoint and the optimiser state is loaded too (and
 * s->opt says which optimiser: the checkpoint's). */
bool rt_ckpt_load(const char *path, const RtMeta *m, float *params, float *state,
                  RtTrainState *s, RtErr *e);

/* ---- training and evaluation (train.c, progress.c) ---------------------- */

typedef struct {
    const char *data;          /* NULL: the meta's */
    long epochs, batch, limit, test_limit;   /* -1: default */
    double lr;                 /* < 0: default */
    const char *schedule;      /* NULL: default */
    long long seed;            /* < 0: default */
    const char *save, *resume, *metrics;
    bool quiet;
    bool skip_nonfinite;       /* --on-nonfinite=skip-batch (default: stop) */
    bool skip_bad;             /* --skip-bad: skip undecodable images */
} RtTrainOpts;

/* How a model's outputs are scored against the targets of split s:
 * one class per sample (accuracy, top-5, confusion matrix), a class per
 * position (accuracy over the counted positions), or a tensor or float
 * target (the loss alone). */
typedef enum { RT_SCORE_CLASS, RT_SCORE_POSITION, RT_SCORE_NONE } RtScoreKind;
RtScoreKind rt_score_kind(const RtMeta *m, const RtSplit *s);

typedef struct {
    RtScoreKind kind;
    double loss;
    long correct, n;
    long counted;              /* what accuracy divides by: n, or the counted positions */
    long correct5;             /* the label among the 5 largest outputs */
    long skipped;              /* batches skipped for a non-finite loss or gradient */
    long *confusion;           /* NULL, or [classes, classes]: true x predicted counts */
} RtScore;
/* correct / counted, or NaN when the targets have no accuracy. */
double rt_score_acc(const RtScore *sc);

/* The first parameter of m whose values in x (laid out as params[]) are
 * not all finite, or -1.  One pass, summing squares in double (which no
 * finite float can overflow), as cheap as a norm. */
int rt_nonfinite_param(const RtMeta *m, const float *x);

bool rt_cmd_train(const RtMeta *m, const NetcModel *mod, const RtTrainOpts *o, RtErr *e);
/* Runs the test split of d in batches and scores it against the labels:
 * accuracy and top-5 from the first output, out->confusion when the caller
 * set it; the loss from the eval entry (the model's own loss, inference
 * mode), else from the train entry (gradients into scratch memory), or,
 * for a model with neither (no train records) or with state tensors and
 * no eval entry (it computes differently in training), the softmax
 * cross-entropy (mse: squared error) of the first output after the
 * forward entry. */
/* The prepared weights of params (NetcModel.prepare, run with arena), or
 * NULL when the model has none or they do not fit in memory: then the
 * plain entries run, which compute the same. */
float *rt_prepare(const RtMeta *m, const NetcModel *mod, const float *params, float *arena);
/* The forward entry on a batch: forward_prepared with prep (rt_prepare's,
 * for these params) when there is one, else forward. */
void rt_forward(const NetcModel *mod, const float *prep, int n, const float *params, float *arena,
                const float *const *in, float *const *out);
bool rt_evaluate(const RtMeta *m, const NetcModel *mod, const float *params, float *arena,
                 long batch, const RtData *d, RtScore *out, RtErr *e);
/* Arena for batch n: fixed + per_n * n floats, 64-byte aligned, zeroed. */
float *rt_arena_new(const RtMeta *m, long n, RtErr *e);
void rt_arena_free(float *a);

double rt_now(void);           /* seconds, CLOCK_MONOTONIC */

/* Draws a training metrics file (JSON lines of epoch, train_loss,
 * train_acc, test_loss, test_acc) as an SVG of two charts, loss and
 * accuracy per epoch (plot.c); written atomically.  title: the model. */
bool rt_plot(const char *metrics, const char *svg, const char *title, RtErr *e);

typedef struct {
    bool live;                 /* redraw one line with '\r' */
    double start, last_draw;
    long epoch, epochs, total_batches;
} RtProgress;

void rt_progress_start(RtProgress *p, long epoch, long epochs, long total_batches, bool live);
void rt_progress_update(RtProgress *p, long batch, double loss, double acc, long images);
void rt_progress_clear(RtProgress *p);

#endif
