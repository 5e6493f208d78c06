/* state.c - how a training step advances the model's persistent state.
 *
 * Needs: a graph whose state PARAMs (ParamParam.state: batch norm's running
 * statistics and num_batches_tracked, dropout's step counter) name their
 * owning layer.  Provides: one node per state PARAM computing its value
 * after a training step, appended to the graph, and m->next_of.
 * Invalidates nothing.
 *
 * The train and grad entries write each next value into grads[] at the
 * state's offset (program.c), so the entry signature stays the same and
 * params[] stays read-only for the generated code; the runtime copies them
 * into params[] where it would take an optimiser step (runtime/train.c).
 * Within one step every kernel therefore reads the state as it was before
 * the step, like PyTorch, which updates the buffers after using them.
 *
 *   %4 = param "bn.running_mean" state       %9  = running_stat(%0, %4) "bn.running_mean.next" mean
 *   %6 = param "bn.num_batches_tracked" =>   %11 = step_count(%6) "bn.num_batches_tracked.next"
 *   %7 = batchnorm(%0, %2, %3, %4, %5) "bn"
 */
#include <string.h>

#include "netc.h"

/* The node computing the next value of state PARAM s. */
static int next_value(Graph *g, const Node *s)
{
    const Node *owner = graph_node(g, s->p.param.owner);
    const char *name = arena_printf(g->arena, "%s.next", s->name);
    bool stat = !strcmp(s->p.param.role, "running_mean") || !strcmp(s->p.param.role, "running_var");
    int in[2] = {owner->in[0], s->id};
    Node *n = stat ? graph_add(g, OP_RUNNING_STAT, name, s->loc, 2, in)
                   : graph_add(g, OP_STEP_COUNT, name, s->loc, 1, &in[1]);
    n->shape = s->shape;
    if (stat) {
        NETC_ASSERT(owner->op == OP_BATCHNORM);
        n->p.norm = owner->p.norm;
        n->p.norm.stat = !strcmp(s->p.param.role, "running_var");
    }
    return n->id;
}

void state_updates(Model *m)
{
    Graph *g = m->g;
    int nn = g->nnode;
    m->next_of = arena_alloc(g->arena, sizeof(int) * (size_t)(nn + 1));
    for (int i = 0; i < nn; i++) {
        const Node *n = g->node[i];
        m->next_of[i] = n->op == OP_PARAM && n->p.param.state ? next_value(g, n) : -1;
    }
}
