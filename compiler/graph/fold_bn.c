/* fold_bn.c - batch norms folded into the convolution before them, in the
 * inference entries (forward, eval).
 *
 * Needs: a verified graph, forward and backward (autodiff, fusion and
 * shuffle folding have run).  Provides: fold_batchnorms.  In inference a
 * batchnorm B with running statistics is an affine map per channel,
 *   s = gamma / sqrt(var + eps),  B(y) = (y - mean) * s + beta,
 * so when its input is a convolution P that nothing else of the inference
 * graph reads, P can compute B's value itself:
 *   B(P(x)) = conv(x, w') + b',  w'[oc, ...] = w[oc, ...] * s[oc],
 *                                b'[oc] = (b[oc] - mean[oc]) * s[oc] + beta[oc]
 * (b = 0 without a bias; gamma = 1, beta = 0 without affine; grouped and
 * depthwise convolutions too: w' scales each output channel's filter).  An
 * activation A that fuse.c could fuse (relu, tanh, sigmoid) and that is
 * B's only reader then becomes P's epilogue as well, so conv -> bn -> relu
 * is one kernel; so does the epilogue fuse.c gave B (its activation, or a
 * residual add and the activation after it, whose other operand is then
 * read by P's kernel and must be computed before P), so a ResNet block's
 * conv -> bn -> add -> relu is one kernel too.  The pass only records the
 * group: P.bn_fold = B, P.bn_epi = A (or -1), B.bn_into = A.bn_into = P.
 * Training entries (train, grad) keep B as it is: it normalises with
 * batch statistics there, with B's epilogue in its kernel.  A dense layer never
 * qualifies: batchnorm normalises axis 0 of a value of rank 2 or more,
 * and a dense layer's weight works on the last axis, the same for every
 * index of axis 0.
 *
 * The parameters are the caller's (params[] is read-only for forward), so
 * w' and b' are computed per call: in an inference entry B's kernel is the
 * fold (lower_norm.c: w' then b' into arena space that the memory plan
 * counts, alive during P's call only), called just before P, whose kernel
 * reads w' and b' as its weight and bias and applies A at its stores; B
 * and A are views of P's value (program.c).  The fold costs a pass over
 * the weights, the batchnorm (and activation) passes it removes cost
 * passes over the activations, so a group is folded only when the weights
 * are no more than the elements those passes touch for one sample: C*S,
 * twice that with an activation.  Folding then never costs more than it
 * saves, at any batch size; the big late layers of a wide network keep
 * their batchnorm kernel.  Not folded either: a P that is a network output
 * (B or A may be one: P stores into it), a batchnorm without running
 * statistics (it normalises with batch statistics in inference too).
 *
 *   before:  %5 = conv(%0, %1) "c1" [N, 8, 14, 14]
 *            %10 = batchnorm(%5, %6, %7, %8, %9) "bn1" [N, 8, 14, 14]
 *            %11 = relu(%10) "r1" [N, 8, 14, 14]
 *   after:   %5 = conv(%0, %1) "c1" [N, 8, 14, 14] inference: folds batchnorm %10, then relu %11
 *            %10 = batchnorm(%5, %6, %7, %8, %9) "bn1" [N, 8, 14, 14] inference: in %5
 *            %11 = relu(%10) "r1" [N, 8, 14, 14] inference: in %5
 *
 * Invalidates nothing: no input list changes, node ids and the schedule's
 * per-node entries stay valid.
 */
#include <stdlib.h>

#include "netc.h"

/* The node's only reader among the inference nodes, or NULL. */
static Node *only_reader(const Graph *g, int id, const bool *inf)
{
    Node *r = NULL;
    for (int j = id + 1; j < g->nnode; j++) {
        Node *n = g->node[j];
        if (!inf[j])
            continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == id) {
                if (r)
                    return NULL;
                r = n;
            }
    }
    return r;
}

int fold_batchnorms(Model *m)
{
    Graph *g = m->g;
    int nn = g->nnode, nfolded = 0;
    bool *inf = netc_alloc(sizeof(bool) * ((size_t)nn + 1));   /* inference reads it */
    bool *fixed = netc_alloc(sizeof(bool) * ((size_t)nn + 1)); /* outputs and the loss */
    for (int i = 0; i < g->noutput; i++)
        inf[g->outputs[i]] = fixed[g->outputs[i]] = true;
    if (g->loss >= 0)
        inf[g->loss] = fixed[g->loss] = true;
    for (int i = nn - 1; i >= 0; i--)
        for (int j = 0; inf[i] && j < g->node[i]->nin; j++)
            inf[g->node[i]->in[j]] = true;

    for (int i = 0; i < nn; i++) {
        Node *b = g->node[i];
        if (!inf[i] || b->op != OP_BATCHNORM || !b->p.norm.track)
            continue;
        Node *p = g->node[b->in[0]];
        if (p->op != OP_CONV || fixed[p->id] || p->epi.add >= 0 || p->epi.act >= 0 || p->bn_fold >= 0 ||
            only_reader(g, p->id, inf) != b)
            continue;
        /* a batchnorm that took a residual add and its activation (fuse.c)
         * hands them to P, whose kernel then reads the add's other operand:
         * it must be computed before P */
        if (b->epi.add >= 0 && b->in[node_own_nin(b)] > p->id)
            continue;
        bool own_epi = b->epi.add >= 0 || b->epi.act >= 0;
        Node *a = own_epi ? (b->epi.act >= 0 ? g->node[b->epi.act] : NULL)
                          : fixed[i] ? NULL : only_reader(g, i, inf);
        if (a && !own_epi &&
            (!fuse_activation(a->op) || a->nin != 1 || a->shuf_out || a->fused_into >= 0))
            a = NULL;
        long weights = shape_numel(&graph_node(g, p->in[1])->shape);
        if (weights > shape_numel(&p->shape) * (a ? 2 : 1))
            continue;
        p->bn_fold = i;
        b->bn_into = p->id;
        if (a) {
            p->bn_epi = a->id;
            a->bn_into = p->id;
        }
        nfolded++;
    }
    free(inf);
    free(fixed);
    return nfolded;
}
