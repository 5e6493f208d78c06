/* fuse.c - element-wise nodes fused into the kernel of the convolution or
 * matrix product before them (epilogue fusion).
 *
 * Needs: a verified graph, forward and backward (autodiff has run).
 * Provides: fuse_epilogues.  A producer P (conv, dense, conv_dx, dense_dx,
 * maxpool_dx: the gradient of a pooled activation, relu -> maxpool, is the
 * pooling gradient's epilogue; and batchnorm, whose normalising pass in
 * training takes a residual add and the activation after it, and which in
 * inference hands them to the conv it folds into, fold_bn.c; and slice,
 * whose copy takes the gradient of the activation whose dy it is: the
 * gradient of a concat is slices of dy) takes into its kernel's stores,
 * in this order (Node.epi):
 *   add   an add(P, r) of two values of P's shape, r computed before P
 *         (a residual connection, or the sum of two gradients);
 *   act   an element-wise activation of the value so far (relu, tanh,
 *         sigmoid, leaky_relu, elu, selu, softplus, hard_sigmoid,
 *         hard_swish, relu6, clip), or an activation's gradient whose dy
 *         it is (relu_dx, tanh_dx, sigmoid_dx, act_dx), reading y (or x).
 * Each fused node F must be the only reader of the value so far; F then
 * takes P's place: every reader of F reads P instead, F is left with no
 * readers (no kernel, no memory), F.fused_into = P.  The values the
 * epilogue reads besides P's own (r, the gradient's y or x) are appended
 * to P's inputs, so the memory plan keeps them alive until P runs and
 * never places P's output over them (they are inputs of one kernel).
 * Not fused: a value the program's interface binds (a network output, the
 * loss, a gradient or next state an entry returns), a gradient whose y or
 * x is P itself or is computed after P, an add of more than two values or
 * with broadcasting, an activation after a batchnorm that a channel
 * shuffle reads (the shuffle folds into the activation's stores instead,
 * fold_shuffle.c).
 *
 * In training graphs the forward activations whose gradient reads their
 * output (relu, tanh, sigmoid, relu6) fuse: a conv's or dense layer's
 * gradients read its input and dy, never its own output.  The others'
 * gradient (act_dx) reads their input, P's own value, so P has two readers
 * and only inference graphs fuse them; their gradients fuse into the
 * conv_dx before them either way.
 *
 *   before:  %12 = conv(%7, %10, %11) "b" [N, 8, 28, 28]
 *            %13 = add(%12, %6) "add1" [N, 8, 28, 28]
 *            %14 = relu(%13) "relu2" [N, 8, 28, 28]
 *   after:   %12 = conv(%7, %10, %11, %6) "b" [N, 8, 28, 28] epilogue add %13 relu %14
 *            %13 = add(%12, %6) "add1" [N, 8, 28, 28] fused into %12
 *            %14 = relu(%12) "relu2" [N, 8, 28, 28] fused into %12
 *
 * Invalidates: readers' input lists (rewritten), producers' input lists
 * (extended).  Node ids and the schedule's per-node entries stay valid.
 */
#include <stdlib.h>
#include <string.h>

#include "netc.h"

bool fuse_producer(Op op)
{
    return op == OP_CONV || op == OP_DENSE || op == OP_CONV_DX || op == OP_DENSE_DX ||
           op == OP_MAXPOOL_DX || op == OP_BATCHNORM || op == OP_SLICE;
}

bool fuse_activation(Op op)
{
    switch (op) {
    case OP_RELU: case OP_TANH: case OP_SIGMOID: case OP_LEAKY_RELU: case OP_ELU: case OP_SELU:
    case OP_SOFTPLUS: case OP_HARD_SIGMOID: case OP_HARD_SWISH: case OP_RELU6: case OP_CLIP:
        return true;
    default:
        return false;
    }
}

bool fuse_activation_grad(const Node *n)
{
    if (n->op == OP_ACT_DX)
        return fuse_activation(n->p.act.fwd);
    return n->op == OP_RELU_DX || n->op == OP_TANH_DX || n->op == OP_SIGMOID_DX;
}

typedef struct {
    Graph *g;
    int *readers; /* per value, as the rewrites so far leave them */
    int *now;     /* where a value is now */
    bool *fixed;  /* bound by the interface */
} Fuse;

/* Appends value v to p's inputs, for its epilogue. */
static void append_input(Graph *g, Node *p, int v)
{
    int *in = arena_alloc(g->arena, sizeof(int) * (size_t)(p->nin + 1));
    memcpy(in, p->in, sizeof(int) * (size_t)p->nin);
    in[p->nin++] = v;
    p->in = in;
    p->epi.nin++;
}

/* Whether value `id` can take one more epilogue node f, which reads it. */
static bool takes(const Fuse *F, int id, const Node *f)
{
    const Node *p = F->g->node[id];
    return fuse_producer(p->op) && F->readers[id] == 1 && !F->fixed[id] && p->epi.act < 0 &&
           shape_eq(&p->shape, &f->shape) && p->shape.batched;
}

/* f now lives in p: its readers read p. */
static void fused(Fuse *F, Node *p, Node *f)
{
    f->fused_into = p->id;
    F->now[f->id] = p->id;
    F->readers[p->id] = F->readers[f->id];
    F->readers[f->id] = 0;
}

/* add(a, b): into the later of the two, when it can take it (the other
 * is then computed before it). */
static bool fuse_add(Fuse *F, Node *f)
{
    if (f->nin != 2 || f->in[0] == f->in[1])
        return false;
    int pi = f->in[0] > f->in[1] ? f->in[0] : f->in[1];
    int r = f->in[0] + f->in[1] - pi;
    Node *p = F->g->node[pi];
    if (!takes(F, pi, f) || p->epi.add >= 0 || !shape_eq(&F->g->node[r]->shape, &f->shape))
        return false;
    p->epi.add = f->id;
    append_input(F->g, p, r);
    fused(F, p, f);
    return true;
}

/* Whether a channel shuffle reads value id: shuffle folding (fold_shuffle.c)
 * makes an activation's kernel store in the shuffled order, which a
 * batchnorm's kernel does not do, so such an activation keeps its kernel. */
static bool read_by_shuffle(const Graph *g, int id)
{
    for (int i = id + 1; i < g->nnode; i++)
        for (int j = 0; j < g->node[i]->nin; j++)
            if (g->node[i]->in[j] == id && shuffle_groups_of(g->node[i]) > 0)
                return true;
    return false;
}

static bool fuse_act(Fuse *F, Node *f)
{
    if (fuse_activation(f->op)) {
        if (f->nin != 1 || !takes(F, f->in[0], f))
            return false;
        Node *p = F->g->node[f->in[0]];
        if (p->op == OP_BATCHNORM && read_by_shuffle(F->g, f->id))
            return false;
        p->epi.act = f->id;
        fused(F, p, f);
        return true;
    }
    /* (y or x, dy): dy the producer's value, y or x computed before it */
    if (!fuse_activation_grad(f) || f->nin != 2 || f->in[0] >= f->in[1] || !takes(F, f->in[1], f) ||
        !shape_eq(&F->g->node[f->in[0]]->shape, &f->shape))
        return false;
    Node *p = F->g->node[f->in[1]];
    p->epi.act = f->id;
    append_input(F->g, p, f->in[0]);
    fused(F, p, f);
    return true;
}

int fuse_epilogues(Model *m)
{
    Graph *g = m->g;
    int nn = g->nnode, nfused = 0;
    Fuse F = {g, netc_alloc(sizeof(int) * ((size_t)nn + 1)), netc_alloc(sizeof(int) * ((size_t)nn + 1)),
              netc_alloc(sizeof(bool) * ((size_t)nn + 1))};
    for (int i = 0; i < nn; i++) {
        F.now[i] = i;
        for (int j = 0; j < g->node[i]->nin; j++)
            F.readers[g->node[i]->in[j]]++;
    }
    /* the interface: outputs, the loss, the gradients and next states that
     * the training and grad entries return */
    for (int i = 0; i < g->noutput; i++)
        F.fixed[g->outputs[i]] = true;
    if (g->loss >= 0)
        F.fixed[g->loss] = true;
    for (int i = 0; i < nn && m->grad_of && i < m->ngrad_of; i++) {
        Op op = g->node[i]->op;
        if ((op == OP_PARAM || op == OP_INPUT) && m->grad_of[i] >= 0)
            F.fixed[m->grad_of[i]] = true;
        if (op == OP_PARAM && m->next_of && m->next_of[i] >= 0)
            F.fixed[m->next_of[i]] = true;
    }
    /* One pass in topological order: a node's inputs are redirected before
     * the node itself is considered, so every rewrite is seen. */
    for (int i = 0; i < nn; i++) {
        Node *f = g->node[i];
        for (int j = 0; j < f->nin; j++)
            f->in[j] = F.now[f->in[j]];
        if (F.fixed[i] || f->fused_into >= 0)
            continue;
        if (f->op == OP_ADD ? fuse_add(&F, f) : fuse_act(&F, f))
            nfused++;
    }
    free(F.readers);
    free(F.now);
    free(F.fixed);
    return nfused;
}
