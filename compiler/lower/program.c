/* program.c - entry points, memory planning, lowering and the runtime's meta.
 *
 * Needs: a graph with its backward pass (when there is a loss or a grad
 * seed) and a schedule.  Provides: a Program whose entries list kernel calls
 * in execution order, with a Loc for every buffer argument.
 *
 * Entries (all share one signature, see runtime/netc_runtime.h):
 *   forward  in = user inputs            out = network outputs
 *   train    in = user inputs, target    out = outputs, loss     grads = dL/dparams
 *   grad     in = user inputs, seed      out = outputs, dL/dinputs  grads = dL/dparams
 *
 * forward is the inference entry; train and grad are training entries:
 * OPF_MODE ops (batch norm, dropout) get their training kernels there, and
 * grads[] receives, at each state tensor's offset, its next value
 * (Model.next_of) instead of a gradient.
 *
 * Memory: parameters and their gradients live in the caller's params[] and
 * grads[] arrays; entry inputs and outputs in the caller's buffers; every
 * other value in the arena.  The arena is planned over the entry's
 * execution order: each value lives from the kernel that writes it to the
 * last kernel that reads it, and values whose lifetimes do not overlap share
 * space (first fit).  Batched values scale with n, so they are planned in
 * floats per sample and sit after the fixed-size ones:
 *     arena = [ fixed values | per-sample values * n ]
 * A flatten or reshape that the interface does not bind is a view: no
 * call, the location of its input, whose lifetime grows to cover it.
 */
#include <stdlib.h>
#include <string.h>

#include "loop_hoist.h"
#include "loop_outline.h"
#include "loop_privatize.h"
#include "loop_parallel.h"
#include "loop_unroll.h"
#include "loop_vectorize.h"
#include "netc.h"

#define ALIGN_FLOATS 16 /* 64 bytes: one cache line, one AVX-512 vector */

static long align_up(long x)
{
    return (x + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

typedef struct {
    long off, size;
    int first, last; /* positions in the execution order, inclusive */
} Block;

/* One pool of the arena being planned.  Blocks are placed in execution
 * order (their `first` never decreases), so a block that has died before
 * the current one starts can never overlap a later one either.  The pool
 * keeps only the live blocks, sorted by offset (they are disjoint), drops
 * each one when its lifetime ends (a list per end time), and remembers how
 * many of them are packed from offset 0 without a gap (`packed`), which
 * first fit can skip: a training graph's activations stay alive until the
 * backward pass, and rescanning them for every block was quadratic. */
typedef struct {
    Block *block;
    int n;
    int *live;         /* indices into block[], by increasing offset */
    int nlive;
    int packed;        /* live[0..packed) are contiguous from offset 0 */
    int *dies;         /* per position: the first block whose last it is */
    int *next_dying;   /* per block: the next with the same last */
    int now;           /* blocks ending before `now` have been dropped */
} Pool;

static Pool pool_new(int nblocks, int npos)
{
    Pool pl = {netc_alloc(sizeof(Block) * (size_t)nblocks), 0,
               netc_alloc(sizeof(int) * (size_t)nblocks), 0, 0,
               netc_alloc(sizeof(int) * (size_t)(npos + 1)),
               netc_alloc(sizeof(int) * (size_t)nblocks), 0};
    for (int t = 0; t <= npos; t++)
        pl.dies[t] = -1;
    return pl;
}

static void pool_free(Pool *pl)
{
    free(pl->block);
    free(pl->live);
    free(pl->dies);
    free(pl->next_dying);
}

static long block_end(const Pool *pl, int i)
{
    return pl->block[pl->live[i]].off + pl->block[pl->live[i]].size;
}

static void drop(Pool *pl, int bi)
{
    long off = pl->block[bi].off;
    int lo = 0, hi = pl->nlive; /* the first live block at or above off */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (pl->block[pl->live[mid]].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (pl->live[lo] != bi) /* empty blocks may share an offset */
        lo++;
    memmove(pl->live + lo, pl->live + lo + 1, sizeof(int) * (size_t)(pl->nlive - lo - 1));
    pl->nlive--;
    if (lo < pl->packed)
        pl->packed = lo;
}

/* Greedy by size, the second opinion on a pool first fit has placed:
 * blocks from the largest down, each at the lowest offset clear of every
 * block already placed that is alive at the same time.  First fit in
 * execution order fragments when a long-lived value is placed after
 * short-lived ones (a training graph's activations); this order does not
 * depend on it.  Quadratic, so only for pools of at most PACK_MAX blocks.
 * Rewrites the offsets and returns the new top when it is lower. */
enum { PACK_MAX = 4096 };

typedef struct {
    long key;  /* size (to place), or offset (placed neighbours) */
    int idx;
} Keyed;

/* key descending, then index: a total order, so qsort's result is unique */
static int key_desc(const void *pa, const void *pb)
{
    const Keyed *x = pa, *y = pb;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->idx - y->idx;
}

static int key_asc(const void *pa, const void *pb)
{
    return -key_desc(pa, pb);
}

static long pack_by_size(Pool *pl, long top)
{
    int n = pl->n;
    if (n == 0 || n > PACK_MAX)
        return top;
    Keyed *order = netc_alloc(sizeof(Keyed) * (size_t)n);
    Keyed *near = netc_alloc(sizeof(Keyed) * (size_t)n); /* placed, alive together */
    long *off = netc_alloc(sizeof(long) * (size_t)n);
    for (int i = 0; i < n; i++)
        order[i] = (Keyed){pl->block[i].size, i};
    qsort(order, (size_t)n, sizeof *order, key_desc);
    long new_top = 0;
    for (int i = 0; i < n; i++) {
        const Block *b = &pl->block[order[i].idx];
        int nn = 0;
        for (int j = 0; j < i; j++) {
            const Block *q = &pl->block[order[j].idx];
            if (q->size > 0 && q->first <= b->last && b->first <= q->last)
                near[nn++] = (Keyed){off[order[j].idx], order[j].idx};
        }
        qsort(near, (size_t)nn, sizeof *near, key_asc);
        long at = 0; /* the first gap between placed neighbours that fits */
        for (int x = 0; x < nn && b->size > 0; x++) {
            if (near[x].key >= at + b->size)
                break;
            long end = near[x].key + pl->block[near[x].idx].size;
            at = end > at ? end : at;
        }
        off[order[i].idx] = at;
        if (at + b->size > new_top)
            new_top = at + b->size;
    }
    if (new_top < top) {
        for (int i = 0; i < n; i++)
            pl->block[i].off = off[i];
        top = new_top;
    }
    free(order);
    free(near);
    free(off);
    return top;
}

/* First fit: places `b` at the lowest offset where it overlaps no live
 * block; returns its index. */
static int place(Pool *pl, Block b)
{
    for (; pl->now < b.first; pl->now++)
        for (int i = pl->dies[pl->now]; i >= 0; i = pl->next_dying[i])
            drop(pl, i);
    long off = 0;
    int at = 0;
    if (b.size > 0) {
        /* No gap among the packed blocks: start after them. */
        at = pl->packed;
        off = at ? block_end(pl, at - 1) : 0;
        for (; at < pl->nlive; at++) {
            const Block *q = &pl->block[pl->live[at]];
            if (q->off >= off + b.size)
                break; /* the gap before q fits */
            if (at == pl->packed && q->off == off)
                pl->packed++;
            if (q->off + q->size > off)
                off = q->off + q->size;
        }
    }
    /* live[] stays sorted: every block before `at` ends at or below off. */
    b.off = off;
    int bi = pl->n++;
    pl->block[bi] = b;
    memmove(pl->live + at + 1, pl->live + at, sizeof(int) * (size_t)(pl->nlive - at));
    pl->live[at] = bi;
    pl->nlive++;
    if (at < pl->packed)
        pl->packed = at;
    pl->next_dying[bi] = pl->dies[b.last];
    pl->dies[b.last] = bi;
    return bi;
}

typedef struct {
    Program *p;
    const Graph *g;
    bool *used;        /* node is computed or read by this entry */
    Loc *loc;          /* per node */
    bool *has_loc;
} Builder;

/* Marks everything the marked nodes read.  Inputs have smaller ids, so
 * one backward sweep reaches them all (no recursion: chains are deep). */
static void mark_inputs(const Graph *g, bool *used)
{
    for (int i = g->nnode - 1; i >= 0; i--) {
        if (!used[i])
            continue;
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->nin; j++)
            used[n->in[j]] = true;
    }
}

/* Appends to an array grown by doubling: its capacity is implicit, the
 * next power of two at or above n. */
static void *grow(void *arr, int n, size_t elem)
{
    if (n == 0 || (n & (n - 1)) == 0)
        arr = netc_realloc(arr, elem * (size_t)(n ? 2 * n : 1));
    return arr;
}

static void add_kernel(Program *p, Kernel *k)
{
    p->kernel = grow(p->kernel, p->nkernel, sizeof(Kernel *));
    k->index = p->nkernel;
    p->kernel[p->nkernel++] = k;
}

typedef struct {
    const Program *p;
    bool *used;
} Uses;

static void mark_used(const Kernel *k, void *ctx)
{
    Uses *u = ctx;
    NETC_ASSERT(k->index >= 0 && k->index < u->p->nkernel && u->p->kernel[k->index] == k);
    u->used[k->index] = true;
}

bool *program_kernels_used(const Program *p)
{
    Uses u = {p, netc_alloc(sizeof(bool) * ((size_t)p->nkernel + 1))};
    for (int i = 0; i < p->nentry; i++)
        for (int c = 0; c < p->entry[i].ncall; c++)
            mark_used(kernel_callee(p->entry[i].call[c].kernel), &u);
    /* and what they call (outlined kernels call nothing themselves) */
    for (int i = 0; i < p->nkernel; i++)
        if (u.used[i] && !p->kernel[i]->outlined)
            stmt_each_call(p->kernel[i]->body, mark_used, &u);
    return u.used;
}

/* The kernels of the program being built: each node's, and one table of
 * the distinct ones (identical kernels are shared, see loop_share.c).
 * by_node has two halves: kernels of inference entries, then those of
 * training entries; an op that computes the same in both (not OPF_MODE)
 * has one kernel, kept in the first half.  Two more halves hold the
 * kernels of Sched.alt the same way. */
typedef struct Split Split;
typedef struct {
    Kernel **by_node;
    KernelTable distinct;
    const ProgramOptions *dump; /* or NULL */
    Buf after_vectorize, after_unroll, after_privatize;
    Split **split;              /* every split tried (in p->arena): split_for */
    int nsplit;
} Kernels;

/* The loop-IR schedule of a kernel, each pass followed by the verifier:
 * vectorise, unroll, privatise, parallelise.  The dumps asked for are kept
 * in `vec`, `unr` and `prv` (NULL: not asked; prv gets the kernels the
 * pass changed). */
static void schedule(Program *p, Kernel *k, Buf *vec, Buf *unr, Buf *prv)
{
    loop_vectorize(p->arena, k, p->target);
    NETC_ASSERT(kernel_verify(k, stderr));
    if (vec)
        kernel_print_buf(vec, k);
    loop_unroll_pass(p->arena, k, p->target);
    NETC_ASSERT(kernel_verify(k, stderr));
    if (unr)
        kernel_print_buf(unr, k);
    bool changed = loop_privatize(p->arena, k, p->target);
    NETC_ASSERT(kernel_verify(k, stderr));
    if (prv && changed)
        kernel_print_buf(prv, k);
    loop_parallelize(k, p->target);
    NETC_ASSERT(kernel_verify(k, stderr));
}

/* Schedules k; when the caller keeps it (`keep` says so once kernel
 * sharing has had its say), its dumps join the program's. */
typedef struct {
    Buf vec, unr, prv;
} KernelDumps;

static void schedule_dumped(Program *p, Kernels *ks, Kernel *k, KernelDumps *kd)
{
    const ProgramOptions *d = ks->dump;
    schedule(p, k, d && d->vectorize ? &kd->vec : NULL, d && d->unroll ? &kd->unr : NULL,
             d && d->privatize ? &kd->prv : NULL);
}

static void keep_dumps(Kernels *ks, KernelDumps *kd, bool keep)
{
    if (keep && kd->vec.s)
        buf_puts(&ks->after_vectorize, kd->vec.s);
    if (keep && kd->unr.s)
        buf_puts(&ks->after_unroll, kd->unr.s);
    if (keep && kd->prv.s)
        buf_puts(&ks->after_privatize, kd->prv.s);
    buf_free(&kd->vec);
    buf_free(&kd->unr);
    buf_free(&kd->prv);
}

/* Drops the kernels no entry calls: a split kernel whose two halves every
 * entry calls instead (whole_split), before outlining looks at it. */
static void drop_unused(Program *p)
{
    bool *used = program_kernels_used(p);
    int nk = 0;
    for (int i = 0; i < p->nkernel; i++)
        if (used[i])
            p->kernel[nk++] = p->kernel[i];
    p->nkernel = nk;
    for (int i = 0; i < nk; i++)
        p->kernel[i]->index = i;
    free(used);
}

/* Outlines the heavy blocks of every kernel (loop_outline.c) into kernels
 * of their own, shared when identical, listed before their first caller. */
static void outline_all(Program *p, FILE *dump)
{
    Kernel **old = p->kernel;
    int nold = p->nkernel;
    p->kernel = NULL;
    p->nkernel = 0;
    KernelTable subs = {0};
    for (int i = 0; i < nold; i++) {
        Kernel *k = old[i], **sub;
        Stmt **call;
        int n = loop_outline(p->arena, k, &sub, &call);
        for (int j = 0; j < n; j++) {
            Kernel *s = kernel_share(&subs, sub[j]);
            call[j]->callee = s;
            if (s == sub[j])
                add_kernel(p, s);
        }
        add_kernel(p, k);
        if (dump && n) {
            for (int j = 0; j < n; j++)
                if (call[j]->callee == sub[j])
                    kernel_print(dump, sub[j]);
            kernel_print(dump, k);
        }
        free(sub);
        free(call);
    }
    kernel_table_free(&subs);
    free(old);
}

/* Node id's kernel in an entry that trains or not; with `alt`, the one of
 * its Sched.alt (named after the algorithm: k12_conv_winograd2). */
static Kernel *kernel_for(Program *p, Kernels *ks, int id, bool training, bool alt)
{
    const Node *n = graph_node(p->m->g, id);
    training &= (op_flags(n->op) & OPF_MODE) || n->bn_fold >= 0; /* folded: its own inference kernel */
    Kernel **slot = &ks->by_node[id + p->m->g->nnode * ((training ? 1 : 0) + (alt ? 2 : 0))];
    if (!*slot) {
        Kernel *k;
        if (alt) {
            Algo a = p->sched[id].alt;
            k = lower_node_algo(p->arena, p->m, a, p->target, id, training);
            k->name = arena_printf(p->arena, "%s_%s", k->name, algo_name(a));
        } else {
            k = lower_node_mode(p->arena, p->m, p->sched, p->target, id, training);
        }
        NETC_ASSERT(k);
        KernelDumps kd = {{0}, {0}, {0}};
        schedule_dumped(p, ks, k, &kd);
        *slot = ks->dump && ks->dump->share == SHARE_NONE ? k : kernel_share(&ks->distinct, k);
        keep_dumps(ks, &kd, *slot == k);
        if (*slot == k)
            add_kernel(p, k);
    }
    return *slot;
}

/* A kernel that zeroes one buffer: the gradient of a parameter that does
 * not influence the loss. */
static Kernel *zero_kernel(Program *p, Kernels *ks, const Node *param)
{
    Arena *a = p->arena;
    long count = shape_numel(&param->shape);
    Kernel *k = kernel_new(a, arena_printf(a, "k%d_zero_grad", param->id),
                           arena_printf(a, "%s does not affect the loss: its gradient is 0", param->name));
    int b = kernel_buf(a, k, "g", true, count, 0);
    int i = kernel_var(a, k, "i", T_I32);
    Stmt *loop = st_for(a, i, ex_int(a, 0), ex_int(a, (int)count));
    st_append(a, loop, st_store(a, b, ex_var(a, k, i), ex_flt(a, 0.0f), false));
    st_append(a, k->body, loop);
    KernelDumps kd = {{0}, {0}, {0}};
    schedule_dumped(p, ks, k, &kd);
    keep_dumps(ks, &kd, true);
    add_kernel(p, k);
    return k;
}

/* e->call has room for every call (build_entry counts them first). */
static void add_call(Entry *e, int node, Kernel *k, Loc *args)
{
    e->call[e->ncall++] = (Call){.node = node, .kernel = k, .arg = args};
}

/* The arguments of layer `layer`'s batch-norm fold (lower_norm.c): wb, its
 * output (w' then b'), then the layer's w [, b] and the batchnorm's
 * parameters, where loc places them. */
static Loc *fold_args(Program *p, const Kernel *fold, int layer, Loc wb, const Loc *loc)
{
    const Node *n = graph_node(p->m->g, layer), *bn = graph_node(p->m->g, n->bn_fold);
    Loc *fargs = arena_alloc(p->arena, sizeof(Loc) * (size_t)fold->nbuf);
    int nf = 0;
    fargs[nf++] = wb;
    for (int j = 1; j < n->nin; j++)
        fargs[nf++] = loc[n->in[j]];
    for (int j = 1; j < node_own_nin(bn); j++) /* not its epilogue's operands */
        fargs[nf++] = loc[bn->in[j]];
    NETC_ASSERT(nf == fold->nbuf);
    return fargs;
}

/* ---- prepared weights ----
 *
 * An inference entry's kernels may start with work on the weights alone
 * (a Winograd or FFT filter transform, a batchnorm folded into the
 * convolution before it).  The prepared twin of such an entry leaves that
 * work to the `prepare` entry, which writes it into the prepared-weights
 * array once (loop_hoist.c splits the kernels); the twin reads it there.
 * Both prepared twins (forward, eval) share one prepare entry and one
 * layout of the array: a node's prepared buffers are placed when the
 * first twin meets it. */
struct Split {
    const Kernel *k;     /* the kernel split */
    bool *bound;         /* per buffer of k: a parameter (or prepared) */
    Hoist h;
    bool dumped;         /* its halves are in --dump=prepare */
};

typedef struct {
    bool done;           /* a prepared entry has met the node */
    const Split *split;  /* its kernel's split, or NULL */
    long *off;           /* per buffer of split->k: where a HOIST_PREP one lives */
    long fold_off;       /* where its folded batchnorm's w', b' live, or -1 */
} PrepNode;

typedef struct {
    PrepNode *node;      /* per graph node, then per node for its Sched.alt */
    Call *call;          /* the prepare entry's calls */
    int ncall;
    long top;            /* floats of the prepared weights */
    long temp;           /* the prepare entry's arena: its largest call's temporaries */
    FILE *dump;
} Prep;

static Loc prep_loc(long off)
{
    return (Loc){.k = LOC_PREP, .off_fixed = off};
}

static long prep_place(Prep *pp, long floats)
{
    long at = pp->top;
    pp->top += align_up(floats);
    return at;
}

static void prep_add_call(Prep *pp, int node, Kernel *k, Loc *args, bool weights)
{
    pp->call = grow(pp->call, pp->ncall, sizeof(Call));
    pp->call[pp->ncall++] = (Call){.node = node, .kernel = k, .arg = args, .weights = weights};
}

/* The split of k for these bound buffers: made (and its kernels added to
 * the program) the first time, NULL when nothing hoists.  The halves go
 * to `dump` (--dump=prepare) the first time a prepared entry asks. */
static const Split *split_for(Program *p, Kernels *ks, Kernel *k, bool *bound, FILE *dump)
{
    Split *sp = NULL;
    for (int i = 0; i < ks->nsplit && !sp; i++)
        if (ks->split[i]->k == k && !memcmp(ks->split[i]->bound, bound, (size_t)k->nbuf))
            sp = ks->split[i];
    if (!sp) {
        sp = arena_alloc(p->arena, sizeof *sp);
        *sp = (Split){k, bound, {0}, false};
        ks->split = grow(ks->split, ks->nsplit, sizeof(Split *));
        ks->split[ks->nsplit++] = sp;
        if (!loop_hoist(p->arena, k, bound, &sp->h))
            return NULL;
        add_kernel(p, sp->h.pre);
        add_kernel(p, sp->h.post);
    }
    if (!sp->h.pre)
        return NULL;
    if (dump && !sp->dumped) {
        sp->dumped = true;
        kernel_print(dump, sp->h.pre);
        kernel_print(dump, sp->h.post);
    }
    return sp;
}

/* Per buffer of node id's kernel k: whether it holds the same values
 * whenever the kernel runs, so that weight work may read it: a parameter
 * (loc places the node's inputs), or, with `folded`, the w' and b' of the
 * batchnorm folded into the node (buffers 2 and 3, written before the
 * kernel by the fold or by prepare).  The prepared twins and the plain
 * entries ask with the same answer, and so find the same split. */
static bool *bound_buffers(Program *p, int id, const Kernel *k, bool folded, const Loc *loc)
{
    const Node *n = graph_node(p->m->g, id);
    bool *bound = arena_alloc(p->arena, (size_t)k->nbuf + 1);
    int ninb = folded && n->nin < 3 ? 3 : n->nin; /* w', b' of a fold */
    for (int b = 1; b <= ninb && b < k->nbuf; b++)
        bound[b] = !k->buf[b].scratch &&
                   ((folded && (b == 2 || b == 3)) || loc[n->in[b - 1]].k == LOC_PARAM);
    return bound;
}

/* In an entry without prepared weights: the split of node id's kernel k
 * (its primary or Sched.alt one), whose two halves the entry calls one
 * after the other instead of k, or NULL.  The halves are the prepared
 * twins' (the same bound buffers: parameters, and a folded batchnorm's w'
 * and b', which the fold writes just before), so a kernel whose weight
 * work hoists exists once, as its `_prepared` half, and not also whole.
 * Running the halves back to back computes what k computes, to the bit,
 * in k's memory: the half's prepared weights are k's scratch. */
static const Split *whole_split(Program *p, Kernels *ks, int id, Kernel *k, bool folded, const Loc *loc)
{
    return split_for(p, ks, k, bound_buffers(p, id, k, folded, loc), NULL);
}

/* args[] of the split kernel, as its half h's (pre or post) arguments. */
static Loc *half_args(Arena *a, const Kernel *h, const int *h_buf, const Loc *args)
{
    Loc *ha = arena_alloc(a, sizeof(Loc) * (size_t)h->nbuf);
    for (int j = 0; j < h->nbuf; j++)
        ha[j] = args[h_buf[j]];
    return ha;
}

/* Where layer `id` reads buffer b (an input, 1 .. nin) in a prepared
 * entry: a folded batchnorm's w' and b' are prepared, the rest as loc. */
static Loc prep_input(const Program *p, const Prep *pp, int id, int b, const Loc *loc)
{
    const PrepNode *pn = &pp->node[id];
    const Node *n = graph_node(p->m->g, id);
    if (pn->fold_off >= 0 && (b == 2 || b == 3))
        return prep_loc(pn->fold_off + (b == 3 ? lower_bn_fold_bias_at(p->m->g, id) : 0));
    if (n->bn_fold >= 0) {
        int in[LOWER_FOLD_INPUTS];
        NETC_ASSERT(b <= lower_fold_inputs(p->m->g, id, in));
        return loc[in[b - 1]];
    }
    return loc[n->in[b - 1]];
}

/* In a prepared entry: moves node id's weight work into the prepare
 * entry (once per node) and gives the entry what is left of it.  With
 * `alt`, of the node's Sched.alt kernel, after its own kernel (whose
 * batchnorm fold, fold NULL here, it reads too). */
static void prep_node(Program *p, Kernels *ks, Prep *pp, int id, Kernel **kern, Kernel **fold, const Loc *loc,
                      bool alt)
{
    const Graph *g = p->m->g;
    const Node *n = graph_node(g, id);
    PrepNode *pn = &pp->node[id + (alt ? g->nnode : 0)];
    if (!pn->done) {
        pn->done = true;
        pn->fold_off = alt ? pp->node[id].fold_off : -1;
        if (!alt && *fold) { /* it moves whole when all it reads are parameters */
            Loc *fargs = fold_args(p, *fold, id, prep_loc(0), loc);
            bool all = true;
            for (int j = 1; j < (*fold)->nbuf; j++)
                all &= fargs[j].k == LOC_PARAM;
            if (all) {
                pn->fold_off = prep_place(pp, (*fold)->buf[0].size_fixed);
                fargs[0] = prep_loc(pn->fold_off);
                prep_add_call(pp, n->bn_fold, *fold, fargs, false);
            }
        }
        Kernel *k = *kern;
        const Split *sp = split_for(p, ks, k, bound_buffers(p, id, k, pn->fold_off >= 0, loc), pp->dump);
        if (sp) {
            pn->split = sp;
            pn->off = arena_alloc(p->arena, sizeof(long) * (size_t)k->nbuf);
            for (int b = 0; b < k->nbuf; b++)
                if (sp->h.role[b] == HOIST_PREP)
                    pn->off[b] = prep_place(pp, k->buf[b].size_fixed);
            const Kernel *pre = sp->h.pre;
            Loc *args = arena_alloc(p->arena, sizeof(Loc) * (size_t)pre->nbuf);
            long temp = 0;
            for (int j = 0; j < pre->nbuf; j++) {
                int b = sp->h.pre_buf[j];
                if (sp->h.role[b] == HOIST_PREP) {
                    args[j] = prep_loc(pn->off[b]);
                } else if (sp->h.role[b] == HOIST_TEMP) {
                    args[j] = (Loc){.k = LOC_ARENA, .off_fixed = temp};
                    temp += align_up(k->buf[b].size_fixed);
                } else {
                    args[j] = prep_input(p, pp, id, b, loc);
                }
            }
            pp->temp = temp > pp->temp ? temp : pp->temp;
            prep_add_call(pp, id, sp->h.pre, args, true);
        }
    }
    if (pn->fold_off >= 0 && !alt)
        *fold = NULL;
    if (pn->split)
        *kern = pn->split->h.post;
}

/* ---- scratch buffers ---- */

static long scratch_size(const LBuf *lb)
{
    return align_up(lb->size_per_n > 0 ? lb->size_per_n : lb->size_fixed);
}

/* A block of `size` floats in pool w (0: fixed, 1: per sample) that lives
 * from position `first` to `last`; top and naive grow with it. */
static int place_block(Pool *pool, long *top, long *naive, int w, long size, int first, int last)
{
    int bi = place(&pool[w], (Block){0, size, first, last});
    const Block *b = &pool[w].block[bi];
    if (b->off + b->size > top[w])
        top[w] = b->off + b->size;
    naive[w] += b->size;
    return bi;
}

/* The scratch of a node with two kernels k0 and k1, of which a call runs
 * one: one block per pool at position `at`, as large as the larger
 * kernel's buffers there, each kernel's packed from its start.  Records
 * them from index ns in the calls' order (k0's, k1's): block, pool and
 * offset in the block; returns the next index. */
static int place_shared_scratch(Pool *pool, long *top, long *naive, int at, const Kernel *k0,
                                const Kernel *k1, int ns, int *block, int *in_pool, long *off)
{
    const Kernel *k[2] = {k0, k1};
    long size[2][2] = {{0, 0}, {0, 0}}; /* [kernel][pool] */
    for (int v = 0; v < 2; v++)
        for (int b = 0; b < k[v]->nbuf; b++)
            if (k[v]->buf[b].scratch)
                size[v][k[v]->buf[b].size_per_n > 0] += scratch_size(&k[v]->buf[b]);
    int bi[2];
    for (int w = 0; w < 2; w++)
        bi[w] = place_block(pool, top, naive, w, size[0][w] > size[1][w] ? size[0][w] : size[1][w], at, at);
    for (int v = 0; v < 2; v++) {
        long run[2] = {0, 0};
        for (int b = 0; b < k[v]->nbuf; b++) {
            const LBuf *lb = &k[v]->buf[b];
            if (!lb->scratch)
                continue;
            int w = lb->size_per_n > 0;
            block[ns] = bi[w];
            in_pool[ns] = w;
            off[ns++] = run[w];
            run[w] += scratch_size(lb);
        }
    }
    return ns;
}

static bool is_user_input(const Model *m, const Node *n)
{
    return n->op == OP_INPUT && n->id != m->g->target && n->id != m->grad_seed;
}

/* Builds one entry: in/out lists are node ids; grads[i] is the gradient
 * node of param slot i (or, for a state, its next value; or -1) when the
 * entry writes grads, which is when it trains.  With pp, an inference
 * entry's prepared twin: its weight work goes to pp's prepare entry. */
static Entry build_entry(Program *p, Kernels *ks, const char *name, int nin, const int *in,
                         int nout, const int *out, const int *grads, Prep *pp)
{
    bool training = grads != NULL;
    NETC_ASSERT(!training || !pp);
    const Graph *g = p->m->g;
    Arena *a = p->arena;
    int nn = g->nnode;
    Entry e = {.name = name, .kind = pp ? ENTRY_PREPARED : ENTRY_PLAIN, .nin = nin, .nout = nout,
               .writes_grads = grads != NULL};
    e.in = arena_alloc(a, sizeof(int) * (size_t)(nin + 1));
    e.out = arena_alloc(a, sizeof(int) * (size_t)(nout + 1));
    memcpy(e.in, in, sizeof(int) * (size_t)nin);
    memcpy(e.out, out, sizeof(int) * (size_t)nout);

    bool *used = netc_alloc(sizeof(bool) * (size_t)nn);
    Loc *loc = netc_alloc(sizeof(Loc) * (size_t)nn);
    bool *placed = netc_alloc(sizeof(bool) * (size_t)nn);
    int *pos = netc_alloc(sizeof(int) * (size_t)nn);
    int *last = netc_alloc(sizeof(int) * (size_t)nn);

    for (int i = 0; i < nout; i++)
        used[out[i]] = true;
    for (int i = 0; grads && i < p->nparam; i++)
        if (grads[i] >= 0)
            used[grads[i]] = true;
    mark_inputs(g, used);

    /* Locations fixed by the interface. */
    for (int i = 0; i < nin; i++) {
        loc[in[i]] = (Loc){.k = LOC_IN, .idx = i};
        placed[in[i]] = true;
    }
    for (int i = 0; i < nout; i++) {
        loc[out[i]] = (Loc){.k = LOC_OUT, .idx = i};
        placed[out[i]] = true;
    }
    for (int i = 0; i < p->nparam; i++) {
        loc[p->param[i].node] = (Loc){.k = LOC_PARAM, .off_fixed = p->param[i].offset};
        placed[p->param[i].node] = true;
        if (grads && grads[i] >= 0 && !placed[grads[i]]) {
            loc[grads[i]] = (Loc){.k = LOC_GRAD, .off_fixed = p->param[i].offset};
            placed[grads[i]] = true;
        }
    }
    for (int i = 0; i < nn; i++)
        NETC_ASSERT(!used[i] || graph_node(g, i)->op != OP_INPUT || placed[i]);
    /* Batch-norm folding (graph/fold_bn.c), in inference: the layer's
     * kernel stores the value of the last node of its group, the batchnorm
     * or the activation after it; when the interface binds that one, the
     * layer stores there. */
    for (int i = 0; !training && i < nn; i++) {
        const Node *n = graph_node(g, i);
        int top = n->bn_epi >= 0 ? n->bn_epi : n->bn_fold;
        if (used[i] && top >= 0 && placed[top]) {
            loc[i] = loc[top];
            placed[i] = true;
        }
    }

    /* Lifetimes over the execution order (node order is topological). */
    int t = 0;
    for (int i = 0; i < nn; i++) {
        if (!used[i])
            continue;
        pos[i] = last[i] = t++;
        const Node *n = graph_node(g, i);
        for (int j = 0; j < n->nin; j++)
            last[n->in[j]] = pos[i];
    }

    /* Views: a flatten or reshape that is not bound to the interface gets
     * no kernel and no memory of its own; it reads its input's, which then
     * lives as long as the view (chains of views too: later ones first).
     * So do, in inference, a batchnorm folded into the layer before it and
     * the activation after it (their values are the layer's). */
    bool *view = netc_alloc(sizeof(bool) * (size_t)nn);
    for (int i = nn - 1; i >= 0; i--) {
        const Node *n = graph_node(g, i);
        bool in_layer = !training && n->bn_into >= 0;
        view[i] = used[i] && !placed[i] && (n->op == OP_FLATTEN || n->op == OP_RESHAPE || in_layer);
        if (view[i] && last[n->in[0]] < last[i])
            last[n->in[0]] = last[i];
    }

    /* Kernels are lowered first: their scratch buffers are planned too.
     * A layer with a folded batchnorm (inference) first calls the
     * batchnorm's kernel, the fold (fold[i]), whose output lives during
     * the layer's call alone, like a scratch buffer.  A node with a
     * Sched.alt has a second kernel (alt[i]), called instead of kern[i]
     * in its range of batches. */
    Kernel **kern = netc_alloc(sizeof(Kernel *) * ((size_t)nn + 1));
    Kernel **alt = netc_alloc(sizeof(Kernel *) * ((size_t)nn + 1));
    Kernel **fold = netc_alloc(sizeof(Kernel *) * ((size_t)nn + 1));
    const Split **whole = netc_alloc(sizeof(Split *) * (2 * (size_t)nn + 1)); /* then for alt[] */
    int nscratch = 0;
    for (int i = 0; i < nn; i++) {
        const Node *n = graph_node(g, i);
        if (!used[i] || view[i] || (op_flags(n->op) & OPF_SOURCE) || (!training && n->bn_into >= 0))
            continue;
        kern[i] = kernel_for(p, ks, i, training, false);
        if (p->sched[i].alt != ALGO_NONE)
            alt[i] = kernel_for(p, ks, i, training, true);
        if (!training && n->bn_fold >= 0)
            fold[i] = kernel_for(p, ks, n->bn_fold, false, false);
        if (pp) {
            prep_node(p, ks, pp, i, &kern[i], &fold[i], loc, false);
            if (alt[i])
                prep_node(p, ks, pp, i, &alt[i], NULL, loc, true);
        } else {
            whole[i] = whole_split(p, ks, i, kern[i], fold[i] != NULL, loc);
            if (alt[i])
                whole[i + nn] = whole_split(p, ks, i, alt[i], fold[i] != NULL, loc);
        }
        for (int v = 0; v < 2; v++) {
            const Kernel *k = v ? alt[i] : kern[i];
            for (int b = 0; k && b < k->nbuf; b++)
                nscratch += k->buf[b].scratch;
        }
        nscratch += fold[i] != NULL;
    }

    /* First-fit placement in two pools: fixed-size and per-sample.  A
     * scratch buffer lives during its kernel's call alone.  The scratch
     * buffers of a node with two kernels (only one of which runs) share
     * one block per pool, as large as the larger kernel's, each kernel's
     * buffers packed from its start (scratch_at). */
    int cap = nn + nscratch + 1;
    Pool pool[2] = {pool_new(cap, t), pool_new(cap, t)};
    long top[2] = {0, 0}, naive[2] = {0, 0};
    int *which = netc_alloc(sizeof(int) * (size_t)nn);
    int *scratch_block = netc_alloc(sizeof(int) * ((size_t)nscratch + 1));
    int *scratch_pool = netc_alloc(sizeof(int) * ((size_t)nscratch + 1));
    long *scratch_at = netc_alloc(sizeof(long) * ((size_t)nscratch + 1));
    int ns = 0;
    for (int i = 0; i < nn; i++) {
        if (!used[i])
            continue;
        const Node *n = graph_node(g, i);
        if (!placed[i] && !view[i]) {
            int w = n->shape.batched;
            which[i] = place_block(pool, top, naive, w, align_up(shape_numel(&n->shape)), pos[i], last[i]);
        }
        /* the fold's output, then the kernel's scratch (or both kernels') */
        for (int k = fold[i] ? -1 : 0; kern[i] && k < (alt[i] ? 0 : kern[i]->nbuf); k++) {
            const LBuf *lb = k < 0 ? &fold[i]->buf[0] : &kern[i]->buf[k];
            if (k >= 0 && !lb->scratch)
                continue;
            int w = lb->size_per_n > 0;
            scratch_at[ns] = 0;
            scratch_block[ns] = place_block(pool, top, naive, w, scratch_size(lb), pos[i], pos[i]);
            scratch_pool[ns++] = w;
        }
        if (alt[i])
            ns = place_shared_scratch(pool, top, naive, pos[i], kern[i], alt[i], ns, scratch_block, scratch_pool,
                                      scratch_at);
    }
    for (int w = 0; w < 2; w++)
        top[w] = pack_by_size(&pool[w], top[w]);
    for (int i = 0; i < nn; i++) {
        if (!used[i] || placed[i])
            continue;
        const Node *n = graph_node(g, i);
        if (view[i]) {
            loc[i] = loc[n->in[0]]; /* the input's node is earlier: already located */
            continue;
        }
        const Block *b = &pool[n->shape.batched].block[which[i]];
        loc[i] = n->shape.batched ? (Loc){.k = LOC_ARENA, .off_fixed = top[0], .off_per_n = b->off}
                                  : (Loc){.k = LOC_ARENA, .off_fixed = b->off};
    }
    e.arena_fixed = top[0];
    e.arena_per_n = top[1];
    e.naive_fixed = naive[0];
    e.naive_per_n = naive[1];

    /* Calls in execution order: output, inputs (lower.c's order), scratch;
     * a node with two kernels calls each in its range of batches; then a
     * zeroing call per parameter gradient the loss does not reach. */
    int ncall = 0;
    for (int i = 0; i < nn; i++)
        ncall += (kern[i] != NULL) + (alt[i] != NULL) + (fold[i] != NULL) + (whole[i] != NULL) +
                 (whole[i + nn] != NULL);
    for (int i = 0; grads && i < p->nparam; i++)
        ncall += grads[i] < 0;
    e.call = arena_alloc(a, sizeof(Call) * (size_t)(ncall + 1));
    ns = 0;
    for (int i = 0; i < nn; i++) {
        const Node *n = graph_node(g, i);
        if (!kern[i])
            continue;
        Loc wb = {.k = LOC_ARENA};
        if (fold[i]) {
            /* the fold: wb = w' then b', from the layer's w [, b] and the
             * batchnorm's parameters; the layer reads them as w and b */
            NETC_ASSERT(scratch_pool[ns] == 0 && scratch_at[ns] == 0);
            wb.off_fixed = pool[0].block[scratch_block[ns++]].off;
            add_call(&e, n->bn_fold, fold[i], fold_args(p, fold[i], i, wb, loc));
        }
        for (int v = 0; v < 2; v++) {
            Kernel *k = v ? alt[i] : kern[i];
            if (!k)
                continue;
            Loc *args = arena_alloc(a, sizeof(Loc) * (size_t)k->nbuf);
            args[0] = loc[i];
            /* a folded batchnorm's layer: lower_fold_inputs, w' and b' in
             * place of w and its bias */
            int fin[LOWER_FOLD_INPUTS];
            bool folded = fold[i] || (pp && pp->node[i].fold_off >= 0);
            int nk = folded ? lower_fold_inputs(g, i, fin) : n->nin;
            for (int j = 0; j < nk; j++)
                args[j + 1] = loc[folded ? fin[j] : n->in[j]];
            int nargs = nk + 1;
            if (fold[i]) {
                NETC_ASSERT(k->nbuf >= 4);
                args[2] = wb;
                args[3] = wb;
                args[3].off_fixed += lower_bn_fold_bias_at(g, i);
            } else if (folded) {
                args[2] = prep_input(p, pp, i, 2, loc);
                args[3] = prep_input(p, pp, i, 3, loc);
            }
            const PrepNode *pn = pp ? &pp->node[i + (v ? nn : 0)] : NULL;
            for (int b = nargs; b < k->nbuf; b++) {
                if (pn && pn->split && !k->buf[b].scratch) { /* prepared weights */
                    args[b] = prep_loc(pn->off[pn->split->h.post_buf[b]]);
                    continue;
                }
                NETC_ASSERT(k->buf[b].scratch);
                int w = scratch_pool[ns];
                long at = pool[w].block[scratch_block[ns]].off + scratch_at[ns];
                ns++;
                args[b] = w ? (Loc){.k = LOC_ARENA, .off_fixed = top[0], .off_per_n = at}
                            : (Loc){.k = LOC_ARENA, .off_fixed = at};
            }
            int c0 = e.ncall;
            const Split *sp = whole[i + (v ? nn : 0)];
            if (sp) {
                add_call(&e, i, sp->h.pre, half_args(a, sp->h.pre, sp->h.pre_buf, args));
                e.call[e.ncall - 1].weights = true;
                add_call(&e, i, sp->h.post, half_args(a, sp->h.post, sp->h.post_buf, args));
            } else {
                add_call(&e, i, k, args);
            }
            for (Call *c = &e.call[c0]; alt[i] && c < &e.call[e.ncall]; c++) {
                /* the alternative's range, and the rest */
                const Sched *sc = &p->sched[i];
                if (v)
                    c->n_lo = sc->alt_lo, c->n_hi = sc->alt_hi;
                else if (sc->alt_lo == 0)
                    c->n_lo = sc->alt_hi;
                else
                    c->n_hi = sc->alt_lo;
            }
        }
    }
    for (int i = 0; grads && i < p->nparam; i++) {
        if (grads[i] >= 0)
            continue;
        Loc *args = arena_alloc(a, sizeof(Loc));
        args[0] = (Loc){.k = LOC_GRAD, .off_fixed = p->param[i].offset};
        add_call(&e, p->param[i].node, zero_kernel(p, ks, graph_node(g, p->param[i].node)), args);
    }

    pool_free(&pool[0]);
    pool_free(&pool[1]);
    free(which);
    free(view);
    free(kern);
    free(alt);
    free(fold);
    free(whole);
    free(scratch_block);
    free(scratch_pool);
    free(scratch_at);
    free(used);
    free(loc);
    free(placed);
    free(pos);
    free(last);
    return e;
}

/* ---- the runtime's description of the model (runtime/netc_runtime.h) ---- */

static void meta_shape(Buf *b, const Shape *s)
{
    buf_printf(b, " %d", s->rank);
    for (int i = 0; i < s->rank; i++)
        buf_printf(b, " %d", s->d[i]);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as x: the runtime
 * keeps optimizer settings as doubles, as torch does. */
static void meta_double(Buf *b, double x)
{
    char s[32];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(s, sizeof s, "%.*g", digits, x);
        if (strtod(s, NULL) == x)
            break;
    }
    buf_puts(b, s);
}

/* train optimizer NAME k=v ..., then clipping, warm-up and the parameters
 * that are frozen or have an lr_mult. */
static void meta_optimizer(Buf *b, const TrainConfig *t)
{
    buf_printf(b, "train optimizer %s", t->optimizer);
    for (int i = 0; i < t->nopt; i++) {
        buf_printf(b, " %s=", t->opt[i].name);
        meta_double(b, t->opt[i].value);
    }
    buf_puts(b, "\n");
    if (t->clip_norm > 0)
        buf_printf(b, "train clip_norm %.9g\n", (double)t->clip_norm);
    if (t->warmup > 0)
        buf_printf(b, "train warmup %d\n", t->warmup);
    for (int i = 0; i < t->nparam_opt; i++) {
        const ParamTrain *p = &t->param_opt[i];
        if (p->frozen)
            buf_printf(b, "train freeze %s\n", p->param);
        else if (p->lr_mult != 1.0f)
            buf_printf(b, "train lr_mult %s %.9g\n", p->param, (double)p->lr_mult);
    }
}

static const char *meta_init(InitKind k)
{
    switch (k) {
    case INIT_ZERO: return "zero";
    case INIT_ONE: return "one";
    case INIT_HE_NORMAL: return "he_normal";
    case INIT_XAVIER_NORMAL: return "xavier_normal";
    case INIT_XAVIER_UNIFORM: return "xavier_uniform";
    case INIT_UNIFORM: return "uniform";
    case INIT_NORMAL: return "normal";
    default: return "he_uniform";
    }
}

/* What the runtime feeds as the target (docs/runtime.md): class indices
 * for class losses; for the others a tensor, which for a [classes]
 * prediction a class label can stand for as its one-hot row. */
static const char *target_kind(Op loss, const Shape *target)
{
    if (loss_takes_class(loss))
        return "class";
    return target->rank == 1 ? "onehot" : "tensor";
}

/* The data source's files and options and the augmentation, as the
 * runtime's `train datafile|dataopt|augment|normalize` records. */
static void meta_data_options(Buf *b, const TrainConfig *t)
{
    const char *role[] = {"labels", "test", "test_labels"};
    const char *file[] = {t->data_labels, t->data_test, t->data_test_labels};
    for (int i = 0; i < 3; i++)
        if (file[i])
            buf_printf(b, "train datafile %s %s\n", role[i], file[i]);
    if (t->data_split > 0)
        buf_printf(b, "train dataopt split %.9g\n", (double)t->data_split);
    if (t->data_channels > 1)
        buf_printf(b, "train dataopt channels %d\n", t->data_channels);
    if (t->data_size > 0)
        buf_printf(b, "train dataopt size %d\n", t->data_size);
    if (t->data_coarse)
        buf_puts(b, "train dataopt label coarse\n");
    if (t->data_target_input)
        buf_puts(b, "train dataopt target self\n");
    if (t->crop_pad > 0)
        buf_printf(b, "train augment crop %d\n", t->crop_pad);
    if (t->flip)
        buf_puts(b, "train augment flip\n");
    if (t->nnorm > 0) {
        buf_printf(b, "train normalize %d", t->nnorm);
        for (int i = 0; i < 2 * t->nnorm; i++)
            buf_printf(b, " %.9g", (double)(i < t->nnorm ? t->mean[i] : t->std[i - t->nnorm]));
        buf_puts(b, "\n");
    }
}

static char *build_meta(const Program *p)
{
    const Model *m = p->m;
    const Graph *g = m->g;
    Buf b = {0};
    long fixed = 0, per_n = 0;
    for (int i = 0; i < p->nentry; i++) {
        if (p->entry[i].arena_fixed > fixed)
            fixed = p->entry[i].arena_fixed;
        if (p->entry[i].arena_per_n > per_n)
            per_n = p->entry[i].arena_per_n;
    }
    buf_printf(&b, "netc 1\nname %s\nparams %ld\narena %ld %ld\n", m->name, p->param_floats, fixed,
               per_n);
    if (p->prep_floats > 0)
        buf_printf(&b, "prepare %ld\n", p->prep_floats);
    const Entry *fwd = &p->entry[0];
    for (int i = 0; i < fwd->nin; i++) {
        const Node *n = graph_node(g, fwd->in[i]);
        buf_printf(&b, "input %s", n->name);
        meta_shape(&b, &n->shape);
        buf_puts(&b, "\n");
    }
    for (int i = 0; i < fwd->nout; i++) {
        const Node *n = graph_node(g, fwd->out[i]);
        buf_printf(&b, "output %s", n->name);
        meta_shape(&b, &n->shape);
        buf_puts(&b, "\n");
    }
    for (int i = 0; i < p->nparam; i++) {
        const Node *n = graph_node(g, p->param[i].node);
        const ParamParam *pp = &n->p.param;
        buf_printf(&b, "%s %s %ld %ld", pp->state ? "state" : "param", n->name, p->param[i].offset,
                   p->param[i].count);
        meta_shape(&b, &n->shape);
        buf_printf(&b, " %s %.9g %.9g %d %d\n", meta_init(pp->init), (double)pp->init_a,
                   (double)pp->init_b, pp->fan_in, pp->fan_out);
    }
    if (m->train.present && g->loss >= 0) {
        const TrainConfig *t = &m->train;
        const Node *loss = graph_node(g, g->loss);
        const Node *target = graph_node(g, g->target);
        buf_printf(&b, "train loss %s%s", op_name(loss->op),
                   loss->p.loss.reduction == RED_SUM ? " sum" : "");
        if (loss->p.loss.has_ignore)
            buf_printf(&b, "%s ignore %d", loss->p.loss.reduction == RED_SUM ? "" : " mean",
                       loss->p.loss.ignore_index);
        buf_puts(&b, "\n");
        buf_printf(&b, "train target %s", target_kind(loss->op, &target->shape));
        meta_shape(&b, &target->shape);
        buf_puts(&b, "\n");
        meta_optimizer(&b, t);
        if (t->schedule == SCHED_COSINE)
            buf_puts(&b, "train schedule cosine\n");
        else if (t->schedule == SCHED_STEP)
            buf_printf(&b, "train schedule step %d %.9g\n", t->sched_every, (double)t->sched_gamma);
        buf_printf(&b, "train batch %d\ntrain epochs %d\ntrain seed %lu\n", t->batch, t->epochs, t->seed);
        buf_printf(&b, "train data %s %s\n", t->data_kind ? t->data_kind : "fashion_mnist",
                   t->data_path && *t->data_path ? t->data_path : "/usr/share/datasets/fashion-mnist");
        meta_data_options(&b, t);
    }
    buf_puts(&b, "end\n");
    return b.s;
}

/* ---- splitting, for parallel code generation ---- */

/* A kernel's size in loop-IR statements: what its optimisation and code
 * generation cost grows with. */
static long stmt_weight(const Stmt *s)
{
    long w = 1;
    for (int i = 0; i < s->nbody; i++)
        w += stmt_weight(s->body[i]);
    for (int i = 0; i < s->nels; i++)
        w += stmt_weight(s->els[i]);
    return w;
}

long program_weight(const Program *p)
{
    bool *used = program_kernels_used(p);
    long w = 0;
    for (int i = 0; i < p->nkernel; i++)
        if (used[i])
            w += stmt_weight(p->kernel[i]->body);
    free(used);
    return w;
}

/* Deals the called kernels out to nparts parts, heaviest first, each to the
 * lightest part so far (ties: the lowest part); part 0 starts with the
 * weight of the entries it also holds.  Depends on the program only, so a
 * build is the same on every machine.  Returns the number of parts. */
int program_split(const Program *p, int max_parts, int *owner)
{
    bool *used = program_kernels_used(p);
    int n = 0;
    long *w = netc_alloc(sizeof(long) * ((size_t)p->nkernel + 1));
    int *order = netc_alloc(sizeof(int) * ((size_t)p->nkernel + 1));
    for (int i = 0; i < p->nkernel; i++) {
        owner[i] = 0;
        if (used[i]) {
            w[i] = stmt_weight(p->kernel[i]->body);
            order[n++] = i;
        }
    }
    if (max_parts > PROGRAM_MAX_PARTS)
        max_parts = PROGRAM_MAX_PARTS;
    int nparts = n < max_parts ? (n ? n : 1) : max_parts;
    /* insertion sort by weight, heaviest first, stable by index */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && w[order[j]] > w[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    long load[PROGRAM_MAX_PARTS] = {0};
    for (int e = 0; e < p->nentry; e++)
        load[0] += p->entry[e].ncall;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int q = 1; q < nparts; q++)
            if (load[q] < load[best])
                best = q;
        owner[order[i]] = best;
        load[best] += w[order[i]];
    }
    free(used);
    free(w);
    free(order);
    return nparts;
}

/* ---- building ---- */

Program *program_build(const Model *m, const Sched *s)
{
    return program_build_for(m, s, target_reference());
}

Program *program_build_for(const Model *m, const Sched *s, const Target *t)
{
    return program_build_opts(m, s, t, NULL);
}

Program *program_build_opts(const Model *m, const Sched *s, const Target *t, const ProgramOptions *dump)
{
    const Graph *g = m->g;
    Program *p = netc_alloc(sizeof *p);
    p->m = m;
    p->sched = s;
    p->target = t;
    p->arena = arena_new();
    Arena *a = p->arena;

    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (n->op != OP_PARAM)
            continue;
        p->param = grow(p->param, p->nparam, sizeof(ParamSlot));
        long count = shape_numel(&n->shape);
        p->param[p->nparam++] = (ParamSlot){i, p->param_floats, count};
        p->param_floats += count;
    }

    int nn = g->nnode;
    Kernels ks = {netc_alloc(sizeof(Kernel *) * (4 * (size_t)nn + 1)), {0}, dump, {0}, {0}, {0}, NULL, 0};
    int *in = netc_alloc(sizeof(int) * ((size_t)nn + 2));
    int *out = netc_alloc(sizeof(int) * ((size_t)nn + 2));
    int *grads = netc_alloc(sizeof(int) * ((size_t)p->nparam + 1));
    int nin = 0;
    for (int i = 0; i < nn; i++)
        if (is_user_input(m, g->node[i]))
            in[nin++] = i;
    for (int i = 0; i < p->nparam; i++) {
        int node = p->param[i].node;
        bool state = graph_node(g, node)->p.param.state;
        grads[i] = state ? (m->next_of ? m->next_of[node] : -1) : m->grad_of ? m->grad_of[node] : -1;
    }

    p->entry = arena_alloc(a, sizeof(Entry) * 8);
    memcpy(out, g->outputs, sizeof(int) * (size_t)g->noutput);
    p->entry[p->nentry++] = build_entry(p, &ks, "forward", nin, in, g->noutput, out, NULL, NULL);
    Prep pp = {netc_alloc(sizeof(PrepNode) * (2 * (size_t)nn + 1)), NULL, 0, 0, 0, dump ? dump->prepare : NULL};
    Entry prepared[2];
    int nprepared = 0;
    prepared[nprepared++] = build_entry(p, &ks, "forward_prepared", nin, in, g->noutput, out, NULL, &pp);

    if (g->loss >= 0 && m->grad_of && m->grad_seed < 0) {
        in[nin] = g->target;
        out[g->noutput] = g->loss;
        p->entry[p->nentry++] =
            build_entry(p, &ks, "train", nin + 1, in, g->noutput + 1, out, grads, NULL);
        /* The loss without the backward pass, in inference mode: what
         * `eval` and the test pass after each epoch score. */
        p->entry[p->nentry++] = build_entry(p, &ks, "eval", nin + 1, in, g->noutput + 1, out, NULL, NULL);
        prepared[nprepared++] =
            build_entry(p, &ks, "eval_prepared", nin + 1, in, g->noutput + 1, out, NULL, &pp);
    }
    if (m->grad_seed >= 0) {
        in[nin] = m->grad_seed;
        int nout = g->noutput;
        for (int i = 0; i < nin; i++) {
            NETC_ASSERT(m->grad_of[in[i]] >= 0);
            out[nout++] = m->grad_of[in[i]];
        }
        p->entry[p->nentry++] = build_entry(p, &ks, "grad", nin + 1, in, nout, out, grads, NULL);
    }
    /* The prepared twins and their prepare entry, when some weight work
     * hoists: the twins of the inference entries, then prepare. */
    if (pp.ncall > 0) {
        for (int i = 0; i < nprepared; i++)
            p->entry[p->nentry++] = prepared[i];
        Entry e = {.name = "prepare", .kind = ENTRY_PREPARE, .ncall = pp.ncall,
                   .arena_fixed = pp.temp, .naive_fixed = pp.temp};
        e.in = arena_alloc(a, sizeof(int));
        e.out = arena_alloc(a, sizeof(int));
        e.call = arena_alloc(a, sizeof(Call) * (size_t)pp.ncall);
        memcpy(e.call, pp.call, sizeof(Call) * (size_t)pp.ncall);
        p->entry[p->nentry++] = e;
        p->prep_floats = pp.top;
    }
    free(pp.call);
    free(ks.split);
    free(pp.node);
    if (dump && dump->vectorize && ks.after_vectorize.s)
        fputs(ks.after_vectorize.s, dump->vectorize);
    if (dump && dump->unroll && ks.after_unroll.s)
        fputs(ks.after_unroll.s, dump->unroll);
    if (dump && dump->privatize && ks.after_privatize.s)
        fputs(ks.after_privatize.s, dump->privatize);
    buf_free(&ks.after_vectorize);
    buf_free(&ks.after_unroll);
    buf_free(&ks.after_privatize);
    free(ks.by_node);
    kernel_table_free(&ks.distinct);
    drop_unused(p);
    if (!dump || dump->share == SHARE_FAMILIES) {
        outline_all(p, dump ? dump->outline : NULL);
        p->nkernel = kernel_families(a, p->kernel, p->nkernel, dump ? dump->family : NULL);
        for (int i = 0; i < p->nkernel; i++)
            p->kernel[i]->index = i;
    }
    free(in);
    free(out);
    free(grads);
    p->meta = build_meta(p);
    return p;
}

void program_free(Program *p)
{
    if (!p)
        return;
    free(p->kernel);
    free(p->param);
    free((char *)p->meta);
    arena_free(p->arena);
    free(p);
}

void program_print_mem(FILE *f, const Program *p)
{
    fprintf(f, "params: %ld floats (%ld bytes)\n", p->param_floats, p->param_floats * 4);
    if (p->prep_floats)
        fprintf(f, "prep: %ld floats (%ld bytes)\n", p->prep_floats, p->prep_floats * 4);
    for (int i = 0; i < p->nentry; i++) {
        const Entry *e = &p->entry[i];
        fprintf(f, "%s: planned %ld + %ld*n floats (naive %ld + %ld*n); batch 64: %ld bytes (naive %ld)\n",
                e->name, e->arena_fixed, e->arena_per_n, e->naive_fixed, e->naive_per_n,
                (e->arena_fixed + e->arena_per_n * 64) * 4, (e->naive_fixed + e->naive_per_n * 64) * 4);
        for (int j = 0; j < e->ncall; j++) {
            const Call *c = &e->call[j];
            const Node *n = graph_node(p->m->g, c->node);
            const Loc *l = &c->arg[0];
            static const char *const kinds[] = {"arena", "params", "grads", "in", "out", "prep"};
            if (c->weights) { /* a split kernel's weight work: arg[0] is its prepared weights */
                char w[300];
                snprintf(w, sizeof w, "%s (weights)", n->name);
                fprintf(f, "  %-28s %-8s", w, kinds[l->k]);
            } else {
                fprintf(f, "  %-28s %-8s", n->name, kinds[l->k]);
            }
            if (l->k == LOC_ARENA)
                fprintf(f, " @%ld+%ld*n", l->off_fixed, l->off_per_n);
            else if (l->k == LOC_IN || l->k == LOC_OUT)
                fprintf(f, " [%d]", l->idx);
            else
                fprintf(f, " @%ld", l->off_fixed);
            fputc('\n', f);
        }
    }
}
