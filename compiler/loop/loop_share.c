/* loop_share.c - identical kernels are built once (kernel sharing).
 *
 * Needs: verified, scheduled kernels.  Provides: kernel_share, which
 * returns an earlier kernel that computes exactly the same thing as k (same
 * buffers by position, size and role, same variable types, same statements
 * and expressions, same vector width and schedule marks) or records k as
 * new.  Names of buffers and variables and the comment do not take part:
 * they only make the printed code readable.  A network's repeated blocks
 * (ResNeXt's bottlenecks, GoogLeNet's inceptions) lower to the same
 * kernels, so a program keeps one function per distinct kernel and every
 * node calls it with its own buffers:
 *
 *   before: k219_conv(n; y[w] 50176*n, x 50176*n, w 294912, ...)   // l4.1.b
 *           k206_conv(n; y[w] 50176*n, x 50176*n, w 294912, ...)   // l4.0.b
 *   after:  k206_conv(...)   // l4.0.b ... (+1 identical)
 *           calls of both nodes go to k206_conv
 *
 * Hash-consed: an open-addressing table over a structural hash, so sharing
 * n kernels costs O(total kernel size).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0x100000001b3ull;
}

static uint64_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static uint64_t hash_expr(uint64_t h, const Expr *e)
{
    if (!e)
        return mix(h, 0xe0);
    h = mix(h, (uint64_t)e->k * 8 + (uint64_t)e->t);
    h = mix(h, (uint64_t)(uint32_t)e->ival);
    h = mix(h, float_bits(e->fval));
    h = mix(h, (uint64_t)(uint32_t)e->var * 131 + (uint64_t)(uint32_t)e->buf);
    h = hash_expr(h, e->a);
    h = hash_expr(h, e->b);
    return hash_expr(h, e->c);
}

static uint64_t hash_stmt(uint64_t h, const Stmt *s)
{
    h = mix(h, (uint64_t)s->k * 16 + (uint64_t)s->accum * 4 + (uint64_t)s->parallel * 2 +
                   (uint64_t)s->indep);
    h = mix(h, (uint64_t)(uint32_t)s->var * 131 + (uint64_t)(uint32_t)s->buf);
    h = hash_expr(h, s->lo);
    h = hash_expr(h, s->hi);
    h = hash_expr(h, s->cond);
    h = hash_expr(h, s->idx);
    h = hash_expr(h, s->val);
    h = mix(h, (uint64_t)s->nbody * 31 + (uint64_t)s->nels);
    for (int i = 0; i < s->nbody; i++)
        h = hash_stmt(h, s->body[i]);
    for (int i = 0; i < s->nels; i++)
        h = hash_stmt(h, s->els[i]);
    return h;
}

static uint64_t kernel_hash(const Kernel *k)
{
    uint64_t h = mix(0xcbf29ce484222325ull, (uint64_t)k->vlen);
    h = mix(h, (uint64_t)k->nbuf);
    for (int i = 0; i < k->nbuf; i++) {
        const LBuf *b = &k->buf[i];
        h = mix(h, (uint64_t)b->written * 2 + (uint64_t)b->scratch);
        h = mix(h, (uint64_t)b->size_fixed);
        h = mix(h, (uint64_t)b->size_per_n);
    }
    h = mix(h, (uint64_t)k->nvar);
    for (int i = 0; i < k->nvar; i++)
        h = mix(h, (uint64_t)k->var[i].t);
    return hash_stmt(h, k->body);
}

static bool same_stmt(const Stmt *x, const Stmt *y)
{
    if (x->k != y->k || x->var != y->var || x->buf != y->buf || x->accum != y->accum ||
        x->parallel != y->parallel || x->indep != y->indep || x->nbody != y->nbody ||
        x->nels != y->nels || !ex_same(x->lo, y->lo) || !ex_same(x->hi, y->hi) ||
        !ex_same(x->cond, y->cond) || !ex_same(x->idx, y->idx) || !ex_same(x->val, y->val))
        return false;
    for (int i = 0; i < x->nbody; i++)
        if (!same_stmt(x->body[i], y->body[i]))
            return false;
    for (int i = 0; i < x->nels; i++)
        if (!same_stmt(x->els[i], y->els[i]))
            return false;
    return true;
}

static bool kernel_same(const Kernel *x, const Kernel *y)
{
    if (x->vlen != y->vlen || x->nbuf != y->nbuf || x->nvar != y->nvar)
        return false;
    for (int i = 0; i < x->nbuf; i++) {
        const LBuf *a = &x->buf[i], *b = &y->buf[i];
        if (a->written != b->written || a->scratch != b->scratch ||
            a->size_fixed != b->size_fixed || a->size_per_n != b->size_per_n)
            return false;
    }
    for (int i = 0; i < x->nvar; i++)
        if (x->var[i].t != y->var[i].t)
            return false;
    return same_stmt(x->body, y->body);
}

void kernel_table_free(KernelTable *t)
{
    free(t->slot);
    free(t->hash);
    *t = (KernelTable){0};
}

static void table_put(KernelTable *t, Kernel *k, uint64_t h)
{
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slot[i])
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = k;
    t->hash[i] = h;
}

static void table_grow(KernelTable *t)
{
    KernelTable old = *t;
    t->cap = old.cap ? old.cap * 2 : 64;
    t->slot = netc_alloc(t->cap * sizeof *t->slot);
    t->hash = netc_alloc(t->cap * sizeof *t->hash);
    for (size_t i = 0; i < old.cap; i++)
        if (old.slot[i])
            table_put(t, old.slot[i], old.hash[i]);
    free(old.slot);
    free(old.hash);
}

Kernel *kernel_share(KernelTable *t, Kernel *k)
{
    uint64_t h = kernel_hash(k);
    for (size_t i = t->cap ? (size_t)h & (t->cap - 1) : 0; t->cap && t->slot[i];
         i = (i + 1) & (t->cap - 1))
        if (t->hash[i] == h && kernel_same(t->slot[i], k)) {
            t->slot[i]->nshared++;
            return t->slot[i];
        }
    if (2 * (t->n + 1) > t->cap)
        table_grow(t);
    table_put(t, k, h);
    t->n++;
    return k;
}
