/* meta.c - parses the model description a compiled model carries
 * (NAME_meta; format in netc_runtime.h) into an RtMeta.
 *
 * The parser is strict because the compiler and the runtime ship together:
 * an unknown record, a missing or duplicate one, a malformed number or a
 * parameter that does not fit params[] means the two are out of step, and
 * the program should say so rather than guess.  Errors read
 * "model description, line 7: ...".
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static const char *const init_names[] = {
    "zero", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "uniform", "normal",
    "one",
};
_Static_assert(sizeof init_names / sizeof *init_names == RT_INIT_COUNT, "one name per RtInit");

const char *rt_init_name(RtInit k)
{
    return init_names[k];
}

static const char *const loss_names[] = {"softmax_cross_entropy", "mse", "nll", "bce_with_logits",
                                          "l1", "smooth_l1"};
_Static_assert(sizeof loss_names / sizeof *loss_names == RT_LOSS_COUNT, "one name per RtLoss");

const char *rt_loss_name(RtLoss k)
{
    return loss_names[k];
}

const char *rt_target_name(RtTargetKind k)
{
    return k == RT_TARGET_CLASS ? "class" : k == RT_TARGET_ONEHOT ? "onehot" : "tensor";
}

#define MAX_FIELDS 64

/* One line split into fields; the parse state for error messages. */
typedef struct {
    int line;
    char *f[MAX_FIELDS];
    int n;
    const char *rest;          /* text after the first three fields (paths) */
    RtErr *e;
} Line;

static bool bad(Line *l, const char *what, const char *field)
{
    if (field)
        return rt_fail(l->e, NULL, "model description, line %d: %s '%s'", l->line, what, field);
    return rt_fail(l->e, NULL, "model description, line %d: %s", l->line, what);
}

static bool get_long(Line *l, int i, long lo, long *out)
{
    if (i >= l->n)
        return bad(l, "missing field after", l->f[l->n - 1]);
    char *end;
    errno = 0;
    long v = strtol(l->f[i], &end, 10);
    if (errno || end == l->f[i] || *end || v < lo)
        return bad(l, lo > 0 ? "expected a positive integer, found" : "expected an integer, found",
                   l->f[i]);
    *out = v;
    return true;
}

static bool get_double(Line *l, int i, double *out)
{
    if (i >= l->n)
        return bad(l, "missing field after", l->f[l->n - 1]);
    char *end;
    errno = 0;
    double v = strtod(l->f[i], &end);
    if (end == l->f[i] || *end || !isfinite(v))
        return bad(l, "expected a number, found", l->f[i]);
    *out = v;
    return true;
}

/* RANK D1 .. DR starting at field i; returns the index after it in *next. */
static bool get_shape(Line *l, int i, RtTensor *t, int *next)
{
    long rank;
    if (!get_long(l, i, 0, &rank))
        return false;
    if (rank > RT_MAX_RANK)
        return bad(l, "rank too large:", l->f[i]);
    t->rank = (int)rank;
    t->numel = 1;
    for (int k = 0; k < rank; k++) {
        if (!get_long(l, i + 1 + k, 1, &t->d[k]))
            return false;
        if (t->numel > (1L << 40) / t->d[k])
            return bad(l, "tensor too large at", l->f[i + 1 + k]);
        t->numel *= t->d[k];
    }
    *next = i + 1 + (int)rank;
    return true;
}

static bool no_more(Line *l, int i)
{
    if (i < l->n)
        return bad(l, "unexpected field", l->f[i]);
    return true;
}

static bool name_field(Line *l, int i, char **out)
{
    if (i >= l->n)
        return bad(l, "missing name after", l->f[l->n - 1]);
    *out = rt_strdup(l->f[i]);
    return *out ? true : bad(l, "out of memory", NULL);
}

static bool add_tensor(Line *l, RtTensor **arr, int *n)
{
    RtTensor *na = rt_realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    if (!na)
        return bad(l, "out of memory", NULL);
    *arr = na;
    RtTensor *t = &na[*n];
    memset(t, 0, sizeof *t);
    int next;
    if (!name_field(l, 1, &t->name))
        return false;
    (*n)++;
    return get_shape(l, 2, t, &next) && no_more(l, next);
}

static bool parse_param(Line *l, RtMeta *m, bool state)
{
    RtParam *np = rt_realloc(m->param, (size_t)(m->nparam + 1) * sizeof *np);
    if (!np)
        return bad(l, "out of memory", NULL);
    m->param = np;
    RtParam *p = &np[m->nparam];
    memset(p, 0, sizeof *p);
    p->lr_mult = 1.0f;
    p->state = state;
    if (!name_field(l, 1, &p->t.name))
        return false;
    m->nparam++;
    long count;
    int i;
    if (!get_long(l, 2, 0, &p->offset) || !get_long(l, 3, 1, &count) ||
        !get_shape(l, 4, &p->t, &i))
        return false;
    if (count != p->t.numel)
        return bad(l, "COUNT is not the product of the dimensions of", p->t.name);
    if (i >= l->n)
        return bad(l, "missing INIT after the shape of", p->t.name);
    int k = 0;
    while (k < RT_INIT_COUNT && strcmp(l->f[i], init_names[k]) != 0)
        k++;
    if (k == RT_INIT_COUNT)
        return bad(l, "unknown INIT", l->f[i]);
    p->init = (RtInit)k;
    if (!get_double(l, i + 1, &p->a) || !get_double(l, i + 2, &p->b) ||
        !get_long(l, i + 3, 0, &p->fan_in) || !get_long(l, i + 4, 0, &p->fan_out) ||
        !no_more(l, i + 5))
        return false;
    if ((p->init == RT_INIT_HE_NORMAL || p->init == RT_INIT_HE_UNIFORM) && p->fan_in == 0)
        return bad(l, "He initialisation needs FAN_IN > 0 for", p->t.name);
    if ((p->init == RT_INIT_XAVIER_NORMAL || p->init == RT_INIT_XAVIER_UNIFORM) &&
        p->fan_in + p->fan_out == 0)
        return bad(l, "Xavier initialisation needs FAN_IN + FAN_OUT > 0 for", p->t.name);
    if (p->init == RT_INIT_NORMAL && p->b < 0)
        return bad(l, "normal initialisation needs a std >= 0 for", p->t.name);
    if (p->init == RT_INIT_UNIFORM && p->b < p->a)
        return bad(l, "uniform initialisation needs low <= high for", p->t.name);
    return true;
}

/* Which singleton records have been seen, to reject duplicates. */
enum {
    SEEN_NAME = 1 << 0, SEEN_PARAMS = 1 << 1, SEEN_ARENA = 1 << 2, SEEN_LOSS = 1 << 3,
    SEEN_TARGET = 1 << 4, SEEN_OPT = 1 << 5, SEEN_BATCH = 1 << 6, SEEN_EPOCHS = 1 << 7,
    SEEN_SEED = 1 << 8, SEEN_DATA = 1 << 9, SEEN_SCHEDULE = 1 << 10, SEEN_CLIP = 1 << 11,
    SEEN_WARMUP = 1 << 12, SEEN_PARAM_OPT = 1 << 13, /* lr_mult and freeze: once per param */
    SEEN_PREPARE = 1 << 14,
};

/* train optimizer KIND NAME=VALUE ... (every field of KIND, in any order),
 * or the first format, sgd LR MOMENTUM WEIGHT_DECAY NESTEROV (dampening 0). */
static bool parse_optimizer(Line *l, RtMeta *m)
{
    RtOptim o = {0};
    if (l->n < 3 || !rt_optim_kind(l->f[2], &o.kind))
        return bad(l, "unknown optimizer", l->n < 3 ? "" : l->f[2]);
    const char *const *names;
    int nf = rt_optim_fields(o.kind, &names);
    RtErr fe;
    char what[1100];
    bool positional = o.kind == RT_OPT_SGD && l->n > 3 && !strchr(l->f[3], '=');
    if (positional) {
        static const char *const old[] = {"lr", "momentum", "weight_decay", "nesterov"};
        if (l->n != 7)
            return bad(l, "expected 'train optimizer sgd LR MOMENTUM WEIGHT_DECAY NESTEROV'", NULL);
        for (int i = 0; i < 4; i++)
            if (!rt_optim_set(&o, old[i], l->f[3 + i], &fe)) {
                snprintf(what, sizeof what, "%s: %s", old[i], fe.msg);
                return bad(l, what, NULL);
            }
    } else {
        unsigned set = 0;
        for (int i = 3; i < l->n; i++) {
            char *eq = strchr(l->f[i], '=');
            if (!eq)
                return bad(l, "expected NAME=VALUE, found", l->f[i]);
            *eq = '\0';
            int k = 0;
            while (k < nf && strcmp(names[k], l->f[i]) != 0)
                k++;
            if (k < nf && (set & 1u << k))
                return bad(l, "optimizer setting given twice:", l->f[i]);
            if (!rt_optim_set(&o, l->f[i], eq + 1, &fe)) {
                snprintf(what, sizeof what, "%s: %s", l->f[i], fe.msg);
                return bad(l, what, NULL);
            }
            set |= 1u << k;
        }
        for (int k = 0; k < nf; k++)
            if (!(set & 1u << k))
                return bad(l, "missing optimizer setting", names[k]);
    }
    if (!rt_optim_check(&o, &fe))
        return bad(l, fe.msg, NULL);
    m->opt = o;
    return true;
}

/* train lr_mult PARAM X | train freeze PARAM: after the param records. */
static bool parse_param_opt(Line *l, RtMeta *m, bool freeze)
{
    if (l->n != (freeze ? 3 : 4))
        return bad(l, freeze ? "expected 'train freeze PARAM'" : "expected 'train lr_mult PARAM X'",
                   NULL);
    RtParam *p = NULL;
    for (int i = 0; i < m->nparam; i++)
        if (strcmp(m->param[i].t.name, l->f[2]) == 0)
            p = &m->param[i];
    if (!p)
        return bad(l, "no param record before this line names", l->f[2]);
    if (p->frozen || p->lr_mult != 1.0f)
        return bad(l, "a second lr_mult or freeze record for", l->f[2]);
    if (freeze) {
        p->frozen = true;
        return true;
    }
    if (!rt_parse_real(l->f[3], RT_REAL_POSITIVE, &p->lr_mult))
        return bad(l, "expected a positive LR multiplier, found", l->f[3]);
    return true;
}

static bool known_kind(const char *k)
{
    static const char *const kinds[] = {"fashion_mnist", "mnist", "idx", "npy", "cifar10",
                                        "cifar100", "images"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(k, kinds[i]) == 0)
            return true;
    return false;
}

/* A path field: the original text from `rest` to the end of its line. */
static char *rest_of_line(const char *rest)
{
    const char *nl = strchr(rest, '\n');
    return nl ? rt_strndup(rest, (size_t)(nl - rest)) : rt_strdup(rest);
}

/* train datafile labels|test|test_labels PATH */
static bool parse_datafile(Line *l, RtMeta *m)
{
    if (l->n < 4)
        return bad(l, "expected 'train datafile ROLE PATH'", NULL);
    char **slot = !strcmp(l->f[2], "labels") ? &m->data_labels
                  : !strcmp(l->f[2], "test") ? &m->data_test
                  : !strcmp(l->f[2], "test_labels") ? &m->data_test_labels : NULL;
    if (!slot)
        return bad(l, "unknown data file role", l->f[2]);
    if (*slot)
        return bad(l, "duplicate data file", l->f[2]);
    *slot = rest_of_line(l->rest);
    return *slot ? true : bad(l, "out of memory", NULL);
}

/* train dataopt split F | channels C | size S | label coarse|fine | target self */
static bool parse_dataopt(Line *l, RtMeta *m)
{
    if (l->n != 4)
        return bad(l, "expected 'train dataopt KEY VALUE'", NULL);
    const char *k = l->f[2];
    long v;
    if (!strcmp(k, "split")) {
        double f;
        if (!get_double(l, 3, &f))
            return false;
        if (!(f > 0 && f < 1))
            return bad(l, "the split must be in (0, 1), found", l->f[3]);
        m->data_split = f;
        return true;
    }
    if (!strcmp(k, "channels") || !strcmp(k, "size")) {
        if (!get_long(l, 3, 1, &v))
            return false;
        if (v > 4096)
            return bad(l, "too large:", l->f[3]);
        *(!strcmp(k, "size") ? &m->data_size : &m->data_channels) = (int)v;
        return true;
    }
    if (!strcmp(k, "target")) {
        if (strcmp(l->f[3], "self"))
            return bad(l, "expected self, found", l->f[3]);
        m->target_input = true;
        return true;
    }
    if (!strcmp(k, "label")) {
        if (strcmp(l->f[3], "coarse") && strcmp(l->f[3], "fine"))
            return bad(l, "expected coarse or fine, found", l->f[3]);
        m->data_coarse = !strcmp(l->f[3], "coarse");
        return true;
    }
    return bad(l, "unknown data option", k);
}

/* train augment crop PAD | flip */
static bool parse_augment(Line *l, RtMeta *m)
{
    long v;
    if (l->n == 3 && !strcmp(l->f[2], "flip")) {
        m->flip = true;
        return true;
    }
    if (l->n == 4 && !strcmp(l->f[2], "crop")) {
        if (!get_long(l, 3, 1, &v))
            return false;
        if (v > 4096)
            return bad(l, "crop padding too large:", l->f[3]);
        m->crop_pad = (int)v;
        return true;
    }
    return bad(l, "expected 'train augment crop PAD' or 'train augment flip'", NULL);
}

/* train normalize C MEAN1 .. MEANC STD1 .. STDC */
static bool parse_normalize(Line *l, RtMeta *m)
{
    long c;
    if (!get_long(l, 2, 1, &c))
        return false;
    if (c > RT_MAX_CHANNELS)
        return bad(l, "too many channels to normalise:", l->f[2]);
    for (int i = 0; i < c; i++) {
        double mu, sd;
        if (!get_double(l, 3 + i, &mu) || !get_double(l, 3 + (int)c + i, &sd))
            return false;
        if (!(sd > 0))
            return bad(l, "a std must be positive, found", l->f[3 + (int)c + i]);
        m->mean[i] = (float)mu;
        m->std[i] = (float)sd;
    }
    m->nnorm = (int)c;
    return no_more(l, 3 + 2 * (int)c);
}

static bool parse_train(Line *l, RtMeta *m, unsigned *seen)
{
    if (l->n < 2)
        return bad(l, "'train' needs a record name", NULL);
    const char *r = l->f[1];
    if (!strcmp(r, "datafile"))
        return parse_datafile(l, m);
    if (!strcmp(r, "dataopt"))
        return parse_dataopt(l, m);
    if (!strcmp(r, "augment"))
        return parse_augment(l, m);
    if (!strcmp(r, "normalize")) {
        if (m->nnorm)
            return bad(l, "duplicate train record", r);
        return parse_normalize(l, m);
    }
    static const struct { const char *name; unsigned bit; } rec[] = {
        {"loss", SEEN_LOSS}, {"target", SEEN_TARGET}, {"optimizer", SEEN_OPT},
        {"batch", SEEN_BATCH}, {"epochs", SEEN_EPOCHS}, {"seed", SEEN_SEED}, {"data", SEEN_DATA},
        {"schedule", SEEN_SCHEDULE}, {"clip_norm", SEEN_CLIP}, {"warmup", SEEN_WARMUP},
        {"lr_mult", SEEN_PARAM_OPT}, {"freeze", SEEN_PARAM_OPT},
    };
    unsigned bit = 0;
    for (size_t i = 0; i < sizeof rec / sizeof *rec; i++)
        if (strcmp(r, rec[i].name) == 0)
            bit = rec[i].bit;
    if (!bit)
        return bad(l, "unknown train record", r);
    if ((*seen & bit) && bit != SEEN_PARAM_OPT)
        return bad(l, "duplicate train record", r);
    *seen |= bit;
    m->has_train = true;
    long v;
    int next;
    switch (bit) {
    case SEEN_LOSS:
        if (l->n < 3)
            return bad(l, "missing loss kind", NULL);
    {
        int k = 0;
        while (k < RT_LOSS_COUNT && strcmp(l->f[2], loss_names[k]) != 0)
            k++;
        if (k == RT_LOSS_COUNT)
            return bad(l, "unknown loss", l->f[2]);
        m->loss = (RtLoss)k;
        /* an optional reduction, mean when absent, then `ignore N` */
        if (l->n > 3 && strcmp(l->f[3], "sum") != 0 && strcmp(l->f[3], "mean") != 0)
            return bad(l, "unknown reduction (mean or sum)", l->f[3]);
        m->loss_sum = l->n > 3 && strcmp(l->f[3], "sum") == 0;
        next = l->n > 3 ? 4 : 3;
        if (l->n > next && strcmp(l->f[next], "ignore") == 0) {
            if (l->n < next + 2 || !get_long(l, next + 1, LONG_MIN, &v) || v < INT_MIN ||
                v > INT_MAX)
                return bad(l, "expected 'ignore INDEX' (an int)", NULL);
            m->has_ignore = true;
            m->ignore_index = (int)v;
            next += 2;
        }
        return no_more(l, next);
    }
    case SEEN_TARGET:
        if (l->n < 3)
            return bad(l, "missing target kind", NULL);
        if (strcmp(l->f[2], "class") == 0)
            m->target_kind = RT_TARGET_CLASS;
        else if (strcmp(l->f[2], "onehot") == 0)
            m->target_kind = RT_TARGET_ONEHOT;
        else if (strcmp(l->f[2], "tensor") == 0)
            m->target_kind = RT_TARGET_TENSOR;
        else
            return bad(l, "unknown target kind", l->f[2]);
        if (!get_shape(l, 3, &m->target, &next) || !no_more(l, next))
            return false;
        if (m->target_kind == RT_TARGET_ONEHOT && m->target.rank != 1)
            return bad(l, "a onehot target has rank 1", NULL);
        return true;
    case SEEN_OPT:
        return parse_optimizer(l, m);
    case SEEN_PARAM_OPT:
        return parse_param_opt(l, m, strcmp(r, "freeze") == 0);
    case SEEN_CLIP:
        if (l->n != 3 || !rt_parse_real(l->f[2], RT_REAL_POSITIVE, &m->clip_norm))
            return bad(l, "expected 'train clip_norm X' with X > 0", NULL);
        return true;
    case SEEN_WARMUP:
        if (!get_long(l, 2, 0, &m->warmup) || !no_more(l, 3))
            return false;
        return true;
    case SEEN_BATCH:
        if (!get_long(l, 2, 1, &v) || !no_more(l, 3))
            return false;
        m->batch = v;
        return true;
    case SEEN_EPOCHS:
        if (!get_long(l, 2, 0, &v) || !no_more(l, 3))
            return false;
        m->epochs = v;
        return true;
    case SEEN_SEED: {
        if (l->n != 3)
            return bad(l, "expected 'train seed S'", NULL);
        char *end;
        errno = 0;
        unsigned long long s = strtoull(l->f[2], &end, 10);
        if (errno || end == l->f[2] || *end || l->f[2][0] == '-')
            return bad(l, "expected an unsigned integer seed, found", l->f[2]);
        m->seed = (uint64_t)s;
        return true;
    }
    case SEEN_SCHEDULE: {
        /* train schedule constant | cosine | step EVERY GAMMA */
        char text[96];
        if (l->n == 3)
            snprintf(text, sizeof text, "%s", l->f[2]);
        else if (l->n == 5 && strcmp(l->f[2], "step") == 0)
            snprintf(text, sizeof text, "step:%s:%s", l->f[3], l->f[4]);
        else
            return bad(l, "expected 'train schedule constant|cosine|step EVERY GAMMA'", NULL);
        RtErr se;
        if (!rt_schedule_parse(text, &m->schedule, &se))
            return bad(l, "bad schedule", l->f[2]);
        return true;
    }
    default: /* SEEN_DATA: the path is the rest of the line, spaces and all */
        if (l->n < 4)
            return bad(l, "expected 'train data KIND PATH'", NULL);
        if (!known_kind(l->f[2]))
            return bad(l, "unknown data kind", l->f[2]);
        m->data_kind = rt_strdup(l->f[2]);
        m->data_path = rest_of_line(l->rest);
        if (!m->data_kind || !m->data_path)
            return bad(l, "out of memory", NULL);
        return true;
    }
}

static bool parse_line(Line *l, RtMeta *m, unsigned *seen)
{
    const char *r = l->f[0];
    long v;
    if (strcmp(r, "train") == 0)
        return parse_train(l, m, seen);
    if (strcmp(r, "input") == 0)
        return add_tensor(l, &m->input, &m->ninput);
    if (strcmp(r, "output") == 0)
        return add_tensor(l, &m->output, &m->noutput);
    if (strcmp(r, "param") == 0 || strcmp(r, "state") == 0)
        return parse_param(l, m, r[0] == 's');
    unsigned bit = strcmp(r, "name") == 0     ? SEEN_NAME
                   : strcmp(r, "params") == 0 ? SEEN_PARAMS
                   : strcmp(r, "arena") == 0  ? SEEN_ARENA
                   : strcmp(r, "prepare") == 0 ? SEEN_PREPARE
                                              : 0;
    if (!bit)
        return bad(l, strcmp(r, "netc") == 0 ? "'netc' must be the first line only"
                      : strcmp(r, "end") == 0 ? "'end' must be the last line"
                                              : "unknown record",
                   r);
    if (*seen & bit)
        return bad(l, "duplicate record", r);
    *seen |= bit;
    if (bit == SEEN_NAME)
        return name_field(l, 1, &m->name) && no_more(l, 2);
    if (bit == SEEN_PARAMS) {
        if (!get_long(l, 1, 0, &v) || !no_more(l, 2))
            return false;
        m->params = v;
        return true;
    }
    if (bit == SEEN_PREPARE)
        return get_long(l, 1, 1, &m->prep_floats) && no_more(l, 2);
    return get_long(l, 1, 0, &m->arena_fixed) && get_long(l, 2, 0, &m->arena_per_n) &&
           no_more(l, 3);
}

static int cmp_offset(const void *a, const void *b)
{
    const RtParam *x = *(const RtParam *const *)a, *y = *(const RtParam *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Whole-description checks once every line is in. */
static bool check(RtMeta *m, unsigned seen, RtErr *e)
{
    const char *what = !(seen & SEEN_NAME)     ? "name"
                       : !(seen & SEEN_PARAMS) ? "params"
                       : !(seen & SEEN_ARENA)  ? "arena"
                       : !m->ninput            ? "input"
                       : !m->noutput           ? "output"
                                               : NULL;
    if (what)
        return rt_fail(e, NULL, "model description: no '%s' record", what);
    if (m->has_train) {
        static const struct { unsigned bit; const char *name; } need[] = {
            {SEEN_LOSS, "loss"}, {SEEN_TARGET, "target"}, {SEEN_OPT, "optimizer"},
            {SEEN_BATCH, "batch"}, {SEEN_EPOCHS, "epochs"}, {SEEN_SEED, "seed"},
        };
        for (size_t i = 0; i < sizeof need / sizeof *need; i++)
            if (!(seen & need[i].bit))
                return rt_fail(e, NULL, "model description: no 'train %s' record", need[i].name);
    }
    const RtParam **by = rt_calloc((size_t)m->nparam + 1, sizeof *by);
    if (!by)
        return rt_fail(e, NULL, "out of memory");
    for (int i = 0; i < m->nparam; i++) {
        by[i] = &m->param[i];
        for (int j = 0; j < i; j++)
            if (strcmp(m->param[i].t.name, m->param[j].t.name) == 0) {
                free(by);
                return rt_fail(e, NULL, "model description: duplicate param '%s'",
                               m->param[i].t.name);
            }
        if (m->param[i].t.numel > m->params ||
            m->param[i].offset > m->params - m->param[i].t.numel) {
            free(by);
            return rt_fail(e, NULL, "model description: param '%s' ends at %ld, past params %ld",
                           m->param[i].t.name, m->param[i].offset + m->param[i].t.numel,
                           m->params);
        }
    }
    qsort(by, (size_t)m->nparam, sizeof *by, cmp_offset);
    for (int i = 1; i < m->nparam; i++)
        if (by[i - 1]->offset + by[i - 1]->t.numel > by[i]->offset) {
            const char *a = by[i - 1]->t.name, *b = by[i]->t.name;
            free(by);
            return rt_fail(e, NULL, "model description: params '%s' and '%s' overlap", a, b);
        }
    free(by);
    return true;
}

bool rt_meta_parse(RtMeta *m, const char *text, RtErr *e)
{
    memset(m, 0, sizeof *m);
    char *buf = rt_strdup(text ? text : "");
    if (!buf)
        return rt_fail(e, NULL, "out of memory");
    Line l = {.e = e};
    unsigned seen = 0;
    bool ok = true, ended = false;
    char *p = buf;
    while (ok && *p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        l.line++;
        if (ended) {
            ok = bad(&l, "text after 'end'", NULL);
            break;
        }
        l.n = 0;
        l.rest = NULL;
        char *q = p;
        for (;;) {
            char *sp = strchr(q, ' ');
            if (l.n == 3 && !l.rest)
                l.rest = text + (q - buf);
            if (l.n == MAX_FIELDS) {
                ok = bad(&l, "too many fields", NULL);
                break;
            }
            l.f[l.n++] = q;
            if (!sp)
                break;
            *sp = '\0';
            q = sp + 1;
        }
        for (int i = 0; ok && i < l.n; i++)
            if (!*l.f[i])
                ok = bad(&l, l.n == 1 ? "empty line" : "fields must be separated by one space",
                         NULL);
        if (!ok)
            break;
        if (l.line == 1) {
            if (strcmp(l.f[0], "netc") != 0)
                ok = bad(&l, "expected 'netc 1', found", l.f[0]);
            else if (l.n != 2 || strcmp(l.f[1], "1") != 0)
                ok = bad(&l, "unsupported format version", l.n > 1 ? l.f[1] : "");
        } else if (strcmp(l.f[0], "end") == 0 && l.n == 1) {
            ended = true;
        } else {
            ok = parse_line(&l, m, &seen);
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    free(buf);
    if (ok && l.line == 0)
        ok = rt_fail(e, NULL, "model description is empty");
    if (ok && !ended)
        ok = rt_fail(e, NULL, "model description: no 'end' line (truncated?)");
    if (ok)
        ok = check(m, seen, e);
    if (!ok)
        rt_meta_free(m);
    return ok;
}

void rt_meta_free(RtMeta *m)
{
    for (int i = 0; i < m->ninput; i++)
        free(m->input[i].name);
    for (int i = 0; i < m->noutput; i++)
        free(m->output[i].name);
    for (int i = 0; i < m->nparam; i++)
        free(m->param[i].t.name);
    free(m->input);
    free(m->output);
    free(m->param);
    free(m->name);
    free(m->data_kind);
    free(m->data_path);
    free(m->data_labels);
    free(m->data_test);
    free(m->data_test_labels);
    memset(m, 0, sizeof *m);
}

const RtParam *rt_meta_param(const RtMeta *m, const char *name)
{
    for (int i = 0; i < m->nparam; i++)
        if (strcmp(m->param[i].t.name, name) == 0)
            return &m->param[i];
    return NULL;
}
