/* fold_shuffle.c - channel shuffles folded into the indexing of a copy
 * next to them, so that they cost no memory pass of their own.
 *
 * Needs: a verified graph, forward and backward (autodiff and fusion have
 * run).  Provides: fold_shuffles.  A channel shuffle is a channel_shuffle
 * node or a permute that moves whole channels the same way (the gradient
 * of a channel_shuffle(g) of C channels is the channel_shuffle(C/g) that
 * undoes it).  Such a node S of g groups is folded
 *   - into its producer P when P is a concat along channels that only S
 *     reads: P stores channel c of its result at the place S would move
 *     it to (P.shuf_out = g; readers of S read P);
 *   - else into its readers when they all are slices along channels (the
 *     gradient of a concat, ShuffleNet v2's split): each reads its
 *     channels through S (shuf_in = g, in[0] = S's input).
 * S then has no readers and no kernel (S.folded_into names the node that
 * took it).  A shuffle that is a network output, or whose neighbours are
 * neither, keeps its copy kernel.  The graph keeps its meaning: a concat
 * with shuf_out = g is channel_shuffle(g) of the concat, a slice with
 * shuf_in = g is the slice of channel_shuffle(g) of its input.
 *
 *   before:  %40 = concat(%22, %39) "s2b.concat" [N, 48, 7, 7]
 *            %41 = channel_shuffle(%40) "s2b.channel_shuffle" [N, 48, 7, 7] groups=2
 *            %42 = slice(%41) "s3a.slice" [N, 24, 7, 7] axis=0 begin=0 end=24
 *   after:   %40 = concat(%22, %39) "s2b.concat" [N, 48, 7, 7] then channel_shuffle(2)
 *            %41 = channel_shuffle(%40) "s2b.channel_shuffle" [N, 48, 7, 7] groups=2 folded into %40
 *            %42 = slice(%40) "s3a.slice" [N, 24, 7, 7] axis=0 begin=0 end=24
 *
 * Invalidates: readers' input lists (rewritten).  Node ids and the
 * schedule's per-node entries stay valid.
 */
#include <stdlib.h>

#include "netc.h"

int shuffle_groups_of(const Node *n)
{
    if (n->op != OP_CHANNEL_SHUFFLE && n->op != OP_PERMUTE)
        return 0;
    const PermParam *p = &n->p.perm;
    const Shape *s = &n->shape;
    if (p->rank != 3 || p->perm[0] != 1 || p->perm[1] != 0 || p->perm[2] != 2 || !s->batched ||
        s->rank < 1 || p->dims[0] * p->dims[1] != s->d[0] || (long)p->dims[2] * s->d[0] != shape_numel(s))
        return 0;
    return p->dims[0];
}

static bool channel_concat(const Node *n)
{
    return n->op == OP_CONCAT && n->p.concat.axis == 0 && n->shuf_out == 0;
}

static bool channel_slice(const Node *n)
{
    return n->op == OP_SLICE && n->p.slice.axis == 0 && n->shuf_in == 0;
}

/* The gradient rule of activation op, when it reads the activation's output
 * (and the output gradient): relu, tanh, sigmoid. */
static Op output_grad(Op op)
{
    return op == OP_RELU ? OP_RELU_DX : op == OP_TANH ? OP_TANH_DX : op == OP_SIGMOID ? OP_SIGMOID_DX
                                                                                     : OP_COUNT;
}

/* Shuffle s (groups g) of activation a: a stores its output shuffled when
 * nothing else reads it but, in training, its gradient t = a_dx(a, q),
 * with q the inverse shuffle of some dy (s's gradient).  Element-wise,
 * a_dx(a, q) is the inverse shuffle of a_dx(shuffle(a), dy), so t reads
 * dy and stores through the inverse shuffle, and q folds into t. */
static bool fold_into_activation(Graph *g, Node *s, Node *a, int groups, int *readers, const bool *fixed)
{
    if (output_grad(a->op) == OP_COUNT || a->shuf_out || a->fused_into >= 0 || fixed[a->id])
        return false;
    Node *t = NULL, *q = NULL;
    if (readers[a->id] == 2) {
        for (int j = a->id + 1; j < g->nnode && !t; j++) {
            Node *r = g->node[j];
            if (r != s && r->nin >= 1 && r->in[0] == a->id)
                t = r;
        }
        if (!t || t->op != output_grad(a->op) || t->nin != 2 || t->in[1] == a->id || t->shuf_out ||
            t->fused_into >= 0)
            return false;
        q = g->node[t->in[1]];
        if (shuffle_groups_of(q) != a->shape.d[0] / groups || readers[q->id] != 1 || fixed[q->id] ||
            q->folded_into >= 0 || fixed[t->id])
            return false;
    } else if (readers[a->id] != 1) {
        return false;
    }
    a->shuf_out = groups;
    s->folded_into = a->id;
    readers[a->id] += readers[s->id] - 1;
    readers[s->id] = 0;
    if (t) {
        t->in[1] = q->in[0];
        t->shuf_out = q->p.perm.dims[0];
        q->folded_into = t->id;
        readers[q->id] = 0;
    }
    return true;
}

int fold_shuffles(Model *m)
{
    Graph *g = m->g;
    int nn = g->nnode, nfolded = 0;
    int *readers = netc_alloc(sizeof(int) * ((size_t)nn + 1));
    int *now = netc_alloc(sizeof(int) * ((size_t)nn + 1)); /* where a value is now */
    bool *fixed = netc_alloc(sizeof(bool) * ((size_t)nn + 1)); /* outputs and the loss */
    for (int i = 0; i < nn; i++) {
        now[i] = i;
        for (int j = 0; j < g->node[i]->nin; j++)
            readers[g->node[i]->in[j]]++;
    }
    for (int i = 0; i < g->noutput; i++)
        fixed[g->outputs[i]] = true;
    if (g->loss >= 0)
        fixed[g->loss] = true;
    /* One pass in topological order, as in fuse.c: a node's inputs are
     * redirected before the node itself is considered. */
    for (int i = 0; i < nn; i++) {
        Node *s = g->node[i];
        for (int j = 0; j < s->nin; j++)
            s->in[j] = now[s->in[j]];
        int groups = shuffle_groups_of(s);
        if (!groups || fixed[i] || readers[i] == 0 || s->folded_into >= 0)
            continue;
        Node *p = g->node[s->in[0]];
        if (channel_concat(p) && readers[p->id] == 1 && !fixed[p->id]) {
            p->shuf_out = groups;
            s->folded_into = p->id;
            now[i] = p->id;
            readers[p->id] = readers[i];
            readers[i] = 0;
            nfolded++;
            continue;
        }
        if (fold_into_activation(g, s, p, groups, readers, fixed)) {
            now[i] = p->id;
            nfolded++;
            continue;
        }
        bool all_slices = true;
        for (int j = i + 1; j < nn && all_slices; j++)
            for (int k = 0; k < g->node[j]->nin; k++)
                if (g->node[j]->in[k] == i && !channel_slice(g->node[j]))
                    all_slices = false;
        if (!all_slices)
            continue;
        for (int j = i + 1; j < nn; j++) {
            Node *r = g->node[j];
            if (r->op != OP_SLICE || r->in[0] != i)
                continue;
            r->in[0] = p->id;
            r->shuf_in = groups;
            if (s->folded_into < 0)
                s->folded_into = j;
        }
        readers[p->id] += readers[i] - 1;
        readers[i] = 0;
        nfolded++;
    }
    free(readers);
    free(now);
    free(fixed);
    return nfolded;
}
