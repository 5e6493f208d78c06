/* sched.c - chooses how each node is computed, and says why.
 *
 * Needs: a complete graph (forward and backward).  Provides: one Sched per
 * node.  The graph is not modified: the schedule is a separate record, so
 * a different choice never changes what is computed, only how.
 *
 * Today every computing node runs the direct algorithm; im2col, Winograd
 * and FFT convolutions slot in here as further choices with their reasons.
 */
#include "netc.h"

static const char *const algo_names[] = {"none", "direct"};
_Static_assert(sizeof algo_names / sizeof algo_names[0] == ALGO_COUNT, "algo_names out of sync");

const char *algo_name(Algo a)
{
    NETC_ASSERT(a >= 0 && a < ALGO_COUNT);
    return algo_names[a];
}

Sched *sched_choose(const Model *m)
{
    const Graph *g = m->g;
    Sched *s = arena_alloc(m->arena, sizeof(Sched) * (size_t)(g->nnode ? g->nnode : 1));
    for (int i = 0; i < g->nnode; i++) {
        const Node *n = g->node[i];
        if (op_flags(n->op) & OPF_SOURCE) {
            s[i] = (Sched){ALGO_NONE, "source: no computation"};
        } else if (n->op == OP_CONV || n->op == OP_CONV_DX || n->op == OP_CONV_DW) {
            s[i] = (Sched){ALGO_DIRECT, "direct: the only convolution algorithm implemented"};
        } else {
            s[i] = (Sched){ALGO_DIRECT, "direct loops"};
        }
    }
    return s;
}

void sched_print(FILE *f, const Model *m, const Sched *s)
{
    for (int i = 0; i < m->g->nnode; i++) {
        const Node *n = m->g->node[i];
        if (s[i].algo == ALGO_NONE)
            continue;
        fprintf(f, "%%%d %s \"%s\": %s  (%s)\n", i, op_name(n->op), n->name, algo_name(s[i].algo),
                s[i].why);
    }
}
