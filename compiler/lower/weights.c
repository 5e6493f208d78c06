/* weights.c - embeds trained weights: reads a safetensors file (the same
 * reader the runtime uses for checkpoints) into Program.weights, checking
 * that every parameter is present with its shape and dtype. */
#include <string.h>

#include "netc.h"
#include "rt.h"

bool program_load_weights(Program *p, const char *path, Diag *d)
{
    StFile f;
    RtErr e;
    if (!rt_st_read(&f, path, &e)) {
        diag_plain(d, "%s", e.msg);
        return false;
    }
    float *w = arena_alloc(p->arena, sizeof(float) * (size_t)(p->param_floats ? p->param_floats : 1));
    bool ok = true;
    for (int i = 0; i < p->nparam; i++) {
        const Node *n = graph_node(p->m->g, p->param[i].node);
        const StTensor *t = rt_st_find(&f, n->name);
        if (!t) {
            diag_plain(d, "%s: tensor '%s' is missing (expected F32 of %ld values)", path, n->name,
                       p->param[i].count);
            ok = false;
            continue;
        }
        bool same = strcmp(t->dtype, "F32") == 0 && t->rank == n->shape.rank;
        for (int j = 0; same && j < t->rank; j++)
            same = t->shape[j] == n->shape.d[j];
        if (!same) {
            char want[96];
            FILE *sf = fmemopen(want, sizeof want, "w");
            shape_print(sf, &n->shape);
            fclose(sf);
            diag_plain(d, "%s: tensor '%s' is %s of rank %d; expected F32 %s", path, n->name, t->dtype,
                       t->rank, want);
            ok = false;
            continue;
        }
        memcpy(w + p->param[i].offset, f.data + t->begin, sizeof(float) * (size_t)p->param[i].count);
    }
    rt_st_free(&f);
    if (ok)
        p->weights = w;
    return ok;
}
