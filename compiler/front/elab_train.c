/* elab_train.c - the train section: data, loss, optimizer, batch, epochs,
 * seed and the default initialiser.
 *
 * Needs: the schema rows of train keys, data sources, losses, optimizers
 * and initialisers.  Provides: m->train with every default filled (also
 * when there is no train section) and a TrainPlan naming the loss and the
 * value it scores; elab.c adds the loss node once the graph exists.
 *
 *   train { loss mse(y)  optimizer sgd(lr=0.1)  batch 32 }
 *   -> lr 0.1, momentum 0, batch 32, epochs 10, seed 1, loss mse of y
 */
#include "elab.h"

#include <string.h>

/* The schema documents a default path quoted: "\"/usr/...\"". */
static const char *default_path(Elab *E, const Schema *data)
{
    const char *def = data->attr[0].def;
    if (!def)
        return NULL;
    size_t n = strlen(def);
    if (n >= 2 && def[0] == '"')
        return arena_printf(E->m->arena, "%.*s", (int)(n - 2), def + 1);
    return def;
}

static void suggest(Elab *E, const char *word, const Schema *rows, int n, const char *kind)
{
    const char *c[16];
    Buf all = {0};
    for (int i = 0; i < n && i < 16; i++) {
        c[i] = rows[i].name;
        buf_printf(&all, "%s%s", i ? (i == n - 1 ? " and " : ", ") : "", rows[i].name);
    }
    const char *s = diag_suggest(word, c, n < 16 ? n : 16);
    if (s)
        elab_hint(E, "did you mean '%s'?", s);
    else
        elab_hint(E, "the %s %s %s", kind, n == 1 ? "is" : "are", all.s);
    buf_free(&all);
}

/* `data fashion_mnist("dir")`, `data mnist`, `data idx("dir")` */
static void read_data(Elab *E, TrainConfig *t, const Value *v)
{
    int n;
    const Schema *rows = schema_data(&n);
    if (v->kind != VAL_NAME && v->kind != VAL_CALL) {
        elab_error(E, v->loc, v->len, "data expects a data source like fashion_mnist(\"DIR\"), got %s",
                   value_describe(E, v));
        return;
    }
    const Schema *s = schema_lookup(rows, n, v->s);
    if (!s) {
        elab_error(E, v->loc, v->len, "unknown data source '%s'", v->s);
        suggest(E, v->s, rows, n, "data sources");
        return;
    }
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    if (v->kind == VAL_CALL && !value_bind(E, s, s->name, v->item, v->n, v->loc, v->len, arg))
        return;
    if (v->kind == VAL_NAME && !s->attr[0].def) {
        elab_error(E, v->loc, v->len, "data source '%s' needs the directory of its files: %s(\"DIR\")",
                   s->name, s->name);
        return;
    }
    const char *path = default_path(E, s);
    if (arg[0] && !value_string(E, s->name, &s->attr[0], arg[0], &path))
        return;
    t->data_kind = s->name;
    t->data_path = path ? arena_strdup(E->m->arena, path) : NULL;
}

/* The attributes after the scored value, by name (each loss has its own
 * subset, so the schema row decides which exist).  Returns false after an
 * error. */
static bool read_loss_attrs(Elab *E, TrainPlan *plan, const Schema *s, const Value **arg)
{
    LossParam *l = &plan->param;
    memset(l, 0, sizeof *l);
    l->beta = 1.0f;
    bool ok = true;
    for (int i = 1; i < s->nattr; i++) {
        const AttrSpec *a = &s->attr[i];
        const Value *v = arg[i];
        /* `none`, the documented default of optional ones, leaves them unset */
        if (!v || (v->kind == VAL_NAME && !strcmp(v->s, "none") && a->def && !strcmp(a->def, "none")))
            continue;
        double x;
        float *w;
        int n;
        if (a->kind == ATTR_VALUE) {
            if (v->kind != VAL_NAME)
                ok = elab_error(E, v->loc, v->len, "%s: target expects the name of an input, got %s",
                                s->name, value_describe(E, v));
            else
                plan->target = v;
        } else if (a->kind == ATTR_REDUCTION) {
            ok &= value_reduction(E, s->name, a, v, &l->reduction);
        } else if (!strcmp(a->name, "ignore_index")) {
            l->has_ignore = value_int(E, s->name, a, v, &l->ignore_index);
            ok &= l->has_ignore;
        } else if (a->kind == ATTR_FLOATS) {
            if (!value_floats(E, s->name, a, v, &w, &n)) {
                ok = false;
                continue;
            }
            plan->weight = v;
            if (!strcmp(a->name, "weight")) {
                l->weight = w;
                l->nweight = n;
            } else {
                l->pos_weight = w;
                l->npos_weight = n;
            }
        } else if (!value_float(E, s->name, a, v, &x)) {
            ok = false;
        } else if (!strcmp(a->name, "label_smoothing")) {
            if (!(x >= 0 && x <= 1))
                ok = elab_error(E, v->loc, v->len, "%s: label_smoothing must be in [0, 1], got %g",
                                s->name, x);
            l->label_smoothing = (float)x;
        } else {
            NETC_ASSERT(!strcmp(a->name, "beta"));
            if (!(x >= 0))
                ok = elab_error(E, v->loc, v->len, "%s: beta must be at least 0, got %g", s->name, x);
            l->beta = (float)x;
        }
    }
    return ok;
}

static void read_loss(Elab *E, TrainPlan *plan, const Value *v)
{
    int n;
    const Schema *rows = schema_losses(&n);
    if (v->kind != VAL_NAME && v->kind != VAL_CALL) {
        elab_error(E, v->loc, v->len, "loss expects a loss like softmax_cross_entropy(logits), got %s",
                   value_describe(E, v));
        return;
    }
    const Schema *s = schema_lookup(rows, n, v->s);
    if (!s) {
        elab_error(E, v->loc, v->len, "unknown loss '%s'", v->s);
        suggest(E, v->s, rows, n, "losses");
        return;
    }
    if (v->kind == VAL_NAME) {
        elab_error(E, v->loc, v->len, "loss '%s' needs the value it scores: %s(logits)", s->name, s->name);
        return;
    }
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    if (!value_bind(E, s, s->name, v->item, v->n, v->loc, v->len, arg))
        return;
    if (arg[0]->kind != VAL_NAME) {
        elab_error(E, arg[0]->loc, arg[0]->len, "%s expects the name of a value, got %s", s->name,
                   value_describe(E, arg[0]));
        return;
    }
    /* The scored value is named even when an attribute is wrong, so it
     * does not also read as unused. */
    plan->loss_loc = v->loc;
    plan->loss_len = v->len;
    plan->loss_name = arg[0]->s;
    plan->loss_name_loc = arg[0]->loc;
    plan->loss_name_len = arg[0]->len;
    if (read_loss_attrs(E, plan, s, arg))
        plan->loss = s;
}

static void read_optimizer(Elab *E, TrainConfig *t, const Value *v)
{
    int n;
    const Schema *rows = schema_optimizers(&n);
    if (v->kind != VAL_NAME && v->kind != VAL_CALL) {
        elab_error(E, v->loc, v->len, "optimizer expects an optimizer like sgd(lr=0.01), got %s",
                   value_describe(E, v));
        return;
    }
    const Schema *s = schema_lookup(rows, n, v->s);
    if (!s) {
        static const char *const later[] = {"adam", "adamw", "rmsprop", "adagrad", "adadelta"};
        for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
            if (!strcmp(v->s, later[i])) {
                elab_error(E, v->loc, v->len, "optimizer '%s' is not supported", v->s);
                elab_hint(E, "netc trains with sgd (with momentum, nesterov and weight_decay)");
                return;
            }
        }
        elab_error(E, v->loc, v->len, "unknown optimizer '%s'", v->s);
        suggest(E, v->s, rows, n, "optimizers");
        return;
    }
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    if (v->kind == VAL_CALL && !value_bind(E, s, s->name, v->item, v->n, v->loc, v->len, arg))
        return;
    double lr = t->lr, momentum = t->momentum, wd = t->weight_decay;
    bool nesterov = t->nesterov;
    int before = E->d->nerror;
    /* Attribute order in the schema: lr, momentum, weight_decay, nesterov. */
    if (arg[0] && value_float(E, "sgd", &s->attr[0], arg[0], &lr) && !(lr > 0))
        elab_error(E, arg[0]->loc, arg[0]->len, "sgd: lr must be greater than 0, got %g", lr);
    if (arg[1] && value_float(E, "sgd", &s->attr[1], arg[1], &momentum) && !(momentum >= 0 && momentum < 1))
        elab_error(E, arg[1]->loc, arg[1]->len, "sgd: momentum must be in [0, 1), got %g", momentum);
    if (arg[2] && value_float(E, "sgd", &s->attr[2], arg[2], &wd) && !(wd >= 0))
        elab_error(E, arg[2]->loc, arg[2]->len, "sgd: weight_decay must be at least 0, got %g", wd);
    if (arg[3] && value_bool(E, "sgd", &s->attr[3], arg[3], &nesterov) && nesterov && momentum == 0)
        elab_error(E, arg[3]->loc, arg[3]->len, "sgd: nesterov needs momentum greater than 0");
    bool ok = E->d->nerror == before;
    if (!ok)
        return;
    t->optimizer = OPT_SGD;
    t->lr = (float)lr;
    t->momentum = (float)momentum;
    t->weight_decay = (float)wd;
    t->nesterov = nesterov;
}

/* `schedule cosine`, `schedule step(every=3, gamma=0.1)` */
static void read_schedule(Elab *E, TrainConfig *t, const Value *v)
{
    int n;
    const Schema *rows = schema_schedules(&n);
    if (v->kind != VAL_NAME && v->kind != VAL_CALL) {
        elab_error(E, v->loc, v->len, "schedule expects constant, cosine or step(every=N), got %s",
                   value_describe(E, v));
        return;
    }
    const Schema *s = schema_lookup(rows, n, v->s);
    if (!s) {
        elab_error(E, v->loc, v->len, "unknown schedule '%s'", v->s);
        suggest(E, v->s, rows, n, "schedules");
        return;
    }
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    if (v->kind == VAL_CALL && !value_bind(E, s, s->name, v->item, v->n, v->loc, v->len, arg))
        return;
    if (strcmp(s->name, "step") != 0) {
        t->schedule = strcmp(s->name, "cosine") == 0 ? SCHED_COSINE : SCHED_CONSTANT;
        return;
    }
    if (v->kind == VAL_NAME || !arg[0]) {
        elab_error(E, v->loc, v->len, "schedule 'step' needs the epochs between decays: step(every=3)");
        return;
    }
    int every;
    double gamma = 0.1;
    if (!value_int(E, "step", &s->attr[0], arg[0], &every))
        return;
    if (arg[1] && value_float(E, "step", &s->attr[1], arg[1], &gamma) && !(gamma > 0 && gamma <= 1)) {
        elab_error(E, arg[1]->loc, arg[1]->len, "step: gamma must be in (0, 1], got %g", gamma);
        return;
    }
    t->schedule = SCHED_STEP;
    t->sched_every = every;
    t->sched_gamma = (float)gamma;
}

void train_read(Elab *E, const AstStmt *train, TrainPlan *plan)
{
    TrainConfig *t = &E->m->train;
    memset(plan, 0, sizeof *plan);
    plan->init.kind = INIT_HE_UNIFORM;
    memset(t, 0, sizeof *t);
    t->data_kind = "fashion_mnist";
    int ndata;
    t->data_path = default_path(E, &schema_data(&ndata)[0]);
    t->loss_node = -1;
    t->optimizer = OPT_SGD;
    t->lr = 0.01f;
    t->batch = 64;
    t->epochs = 10;
    t->seed = 1;
    t->default_init = INIT_HE_UNIFORM;
    if (!train)
        return;
    t->present = true;
    t->loc = train->loc;

    const Schema *ts = schema_train();
    const AstArg *seen[SCHEMA_MAX_ATTR] = {0};
    for (const AstArg *e = train->entries; e; e = e->next) {
        if (!e->name || !e->value)
            continue;
        int k = schema_attr_index(ts, e->name);
        if (k < 0) {
            elab_error(E, e->name_loc, e->name_len, "unknown train setting '%s'", e->name);
            const char *c[SCHEMA_MAX_ATTR];
            for (int i = 0; i < ts->nattr; i++)
                c[i] = ts->attr[i].name;
            const char *s = diag_suggest(e->name, c, ts->nattr);
            if (s)
                elab_hint(E, "did you mean '%s'?", s);
            else
                elab_hint(E, "the settings are data, loss, optimizer, batch, epochs, seed, init and "
                             "schedule");
            continue;
        }
        if (seen[k]) {
            elab_error(E, e->name_loc, e->name_len, "'%s' is set twice", e->name);
            elab_note(E, seen[k]->name_loc, seen[k]->name_len, "first set here");
            continue;
        }
        seen[k] = e;
        Value v;
        if (!value_eval(E, NULL, e->value, &v))
            continue;
        const AttrSpec *a = &ts->attr[k];
        int x;
        InitSpec init;
        switch (a->kind) {
        case ATTR_DATA: read_data(E, t, &v); break;
        case ATTR_LOSS: read_loss(E, plan, &v); break;
        case ATTR_OPTIM: read_optimizer(E, t, &v); break;
        case ATTR_SCHEDULE: read_schedule(E, t, &v); break;
        case ATTR_INIT:
            if (value_init(E, "train", &v, &init)) {
                plan->init = init;
                t->default_init = init.kind;
            }
            break;
        case ATTR_INT:
            if (!value_int(E, "train", a, &v, &x))
                break;
            if (!strcmp(a->name, "batch"))
                t->batch = x;
            else if (!strcmp(a->name, "epochs"))
                t->epochs = x;
            else
                t->seed = (unsigned long)x;
            break;
        default:
            NETC_ASSERT(!"train key of an unexpected kind");
        }
    }
    if (!seen[schema_attr_index(ts, "loss")]) {
        elab_error(E, train->loc, train->len, "the train section has no loss");
        elab_hint(E, "add one, e.g. `loss softmax_cross_entropy(logits)`");
    }
}
