/* fuse.c - activations fused into the convolution or dense layer before
 * them (epilogue fusion).
 *
 * Needs: a verified graph, forward and backward (autodiff has run).
 * Provides: fuse_epilogues.  A conv or dense node P whose only reader is an
 * element-wise activation A (relu, tanh, sigmoid) takes A's place: P's
 * kernel applies A before it stores, every reader of A reads P instead, and
 * A is left without readers (no kernel, no memory).  P.epi = A and
 * A.fused_into = P record it for the lowering, the dumps and `netc check`.
 * The backward pass needs nothing from P's own value (a conv's and a dense
 * layer's gradients read its input and dy; an activation's gradient reads
 * its output, which P now holds), so training graphs fuse too.  Not fused:
 * an activation that is a network output (its name is the program's
 * interface), or a producer something else also reads.
 *
 *   before:  %5 = conv(%0, %1, %2) "c1" [N, 6, 28, 28]
 *            %6 = relu(%5) "relu1" [N, 6, 28, 28]
 *            %7 = maxpool(%6) "maxpool1" ...
 *   after:   %5 = conv(%0, %1, %2) "c1" [N, 6, 28, 28] epilogue relu %6
 *            %6 = relu(%5) "relu1" [N, 6, 28, 28] fused into %5
 *            %7 = maxpool(%5) "maxpool1" ...
 *
 * Invalidates: readers' input lists (rewritten).  Node ids and the
 * schedule's per-node entries stay valid.
 */
#include <stdlib.h>

#include "netc.h"

bool fuse_activation(Op op)
{
    return op == OP_RELU || op == OP_TANH || op == OP_SIGMOID;
}

static bool fuse_producer(Op op)
{
    return op == OP_CONV || op == OP_DENSE;
}

int fuse_epilogues(Model *m)
{
    Graph *g = m->g;
    int nn = g->nnode, nfused = 0;
    int *readers = netc_alloc(sizeof(int) * ((size_t)nn + 1));
    int *now = netc_alloc(sizeof(int) * ((size_t)nn + 1)); /* where a value is now */
    bool *is_output = netc_alloc(sizeof(bool) * ((size_t)nn + 1));
    for (int i = 0; i < nn; i++) {
        now[i] = i;
        for (int j = 0; j < g->node[i]->nin; j++)
            readers[g->node[i]->in[j]]++;
    }
    for (int i = 0; i < g->noutput; i++)
        is_output[g->outputs[i]] = true;
    /* One pass in topological order: a node's inputs are redirected before
     * the node itself is considered, so every rewrite is seen. */
    for (int i = 0; i < nn; i++) {
        Node *a = g->node[i];
        for (int j = 0; j < a->nin; j++)
            a->in[j] = now[a->in[j]];
        if (!fuse_activation(a->op) || a->nin != 1 || is_output[i] || i == g->loss)
            continue;
        Node *p = g->node[a->in[0]];
        if (!fuse_producer(p->op) || readers[p->id] != 1 || is_output[p->id] || p->epi >= 0)
            continue;
        p->epi = a->id;
        a->fused_into = p->id;
        now[a->id] = p->id;
        nfused++;
    }
    free(readers);
    free(now);
    free(is_output);
    return nfused;
}
