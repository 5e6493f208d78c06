/* elab_train.c - the train section: data, loss, optimizer, batch, epochs,
 * seed, the default initialiser, the schedule and the augmentation.
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

/* The argument of attribute `name` of s among the bound args, or NULL. */
static const Value *arg_of(const Schema *s, const Value **arg, const char *name)
{
    int k = schema_attr_index(s, name);
    return k < 0 ? NULL : arg[k];
}

/* The data source's options: files, conversions, split, labels. */
static bool read_data_options(Elab *E, TrainConfig *t, const Schema *s, const Value **arg)
{
    int before = E->d->nerror;
    static const char *const files[] = {"labels", "test", "test_labels"};
    const char **slot[] = {&t->data_labels, &t->data_test, &t->data_test_labels};
    for (int i = 0; i < 3; i++) {
        const Value *v = arg_of(s, arg, files[i]);
        const char *p;
        if (v && value_string(E, s->name, &s->attr[schema_attr_index(s, files[i])], v, &p))
            *slot[i] = arena_strdup(E->m->arena, p);
    }
    const Value *v;
    int x;
    if ((v = arg_of(s, arg, "channels")) &&
        value_int(E, s->name, &s->attr[schema_attr_index(s, "channels")], v, &x)) {
        if (x != 1 && x != 3)
            elab_error(E, v->loc, v->len, "%s: channels must be 1 or 3, got %d", s->name, x);
        t->data_channels = x;
    }
    if ((v = arg_of(s, arg, "size")) &&
        value_int(E, s->name, &s->attr[schema_attr_index(s, "size")], v, &x))
        t->data_size = x;
    double split;
    if ((v = arg_of(s, arg, "split")) &&
        value_float(E, s->name, &s->attr[schema_attr_index(s, "split")], v, &split)) {
        if (!(split >= 0 && split < 1))
            elab_error(E, v->loc, v->len, "%s: split must be in [0, 1), got %g", s->name, split);
        t->data_split = (float)split;
    }
    if ((v = arg_of(s, arg, "label"))) {
        if ((v->kind != VAL_NAME && v->kind != VAL_STRING) ||
            (strcmp(v->s, "coarse") && strcmp(v->s, "fine")))
            elab_error(E, v->loc, v->len, "%s: label must be coarse or fine, got %s", s->name,
                       value_describe(E, v));
        else
            t->data_coarse = !strcmp(v->s, "coarse");
    }
    return E->d->nerror == before;
}

/* Sources with test files need them, or a split. */
static void check_data(Elab *E, const TrainConfig *t, const Schema *s, const Value *call)
{
    bool npy = !strcmp(s->name, "npy"), images = !strcmp(s->name, "images");
    if (npy && !t->data_test != !t->data_test_labels)
        elab_error(E, call->loc, call->len, "npy: test and test_labels go together");
    else if ((npy || images) && !t->data_test && !t->data_split) {
        elab_error(E, call->loc, call->len, "%s: no test set", s->name);
        elab_hint(E, "give %s, or hold out part of the training set with split=0.1",
                  npy ? "test=\"X.npy\" and test_labels=\"Y.npy\"" : "test=\"DIR\"");
    } else if (t->data_test && t->data_split)
        elab_error(E, call->loc, call->len, "%s: give test files or split, not both", s->name);
}

/* `data fashion_mnist("dir", channels=3, size=32)`, `data mnist`,
 * `data npy("x.npy", "y.npy", split=0.1)`, `data cifar10("dir")` */
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
        elab_error(E, v->loc, v->len, "data source '%s' needs %s: %s(\"%s\"%s)", s->name,
                   s->attr[0].doc, s->name, s->nattr > 1 && !s->attr[1].def ? "X.npy" : "DIR",
                   s->nattr > 1 && !s->attr[1].def ? ", \"Y.npy\"" : "");
        return;
    }
    const char *path = default_path(E, s);
    if (arg[0] && !value_string(E, s->name, &s->attr[0], arg[0], &path))
        return;
    if (!read_data_options(E, t, s, arg))
        return;
    check_data(E, t, s, v);
    t->data_kind = s->name;
    t->data_path = path ? arena_strdup(E->m->arena, path) : NULL;
}

/* A list of numbers, at most max of them, each > 0 when positive. */
static int read_floats(Elab *E, const char *what, const AttrSpec *a, const Value *v, float *out,
                       int max, bool positive)
{
    if (v->kind != VAL_LIST || v->n < 1 || v->n > max) {
        elab_error(E, v->loc, v->len, "%s: %s expects a list of 1 to %d numbers, got %s", what,
                   a->name, max, value_describe(E, v));
        return 0;
    }
    for (int i = 0; i < v->n; i++) {
        double x;
        if (!value_float(E, what, a, &v->item[i], &x))
            return 0;
        if (positive && !(x > 0)) {
            elab_error(E, v->item[i].loc, v->item[i].len, "%s: %s must be greater than 0, got %g",
                       what, a->name, x);
            return 0;
        }
        out[i] = (float)x;
    }
    return v->n;
}

/* One item of `augment`: crop(pad), flip, normalize(mean=[..], std=[..]);
 * seen[] holds the item given earlier for each row, to reject repeats. */
static void read_augment_item(Elab *E, TrainConfig *t, const Value *v, const Value **seen)
{
    int n;
    const Schema *rows = schema_augments(&n);
    bool named = v->kind == VAL_NAME || v->kind == VAL_CALL;
    const Schema *s = named ? schema_lookup(rows, n, v->s) : NULL;
    if (!s) {
        if (named) {
            elab_error(E, v->loc, v->len, "unknown augmentation '%s'", v->s);
            suggest(E, v->s, rows, n, "augmentations");
        } else {
            elab_error(E, v->loc, v->len, "augment expects crop(pad), flip or normalize(mean, "
                       "std), got %s", value_describe(E, v));
        }
        return;
    }
    if (seen[s - rows]) {
        elab_error(E, v->loc, v->len, "augmentation '%s' is given twice", s->name);
        elab_note(E, seen[s - rows]->loc, seen[s - rows]->len, "first given here");
        return;
    }
    seen[s - rows] = v;
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    if (v->kind == VAL_CALL && !value_bind(E, s, s->name, v->item, v->n, v->loc, v->len, arg))
        return;
    if (v->kind == VAL_NAME && s->nattr > 0) {
        elab_error(E, v->loc, v->len, "augmentation '%s' needs '%s'", s->name, s->attr[0].name);
        return;
    }
    if (!strcmp(s->name, "flip")) {
        t->flip = true;
    } else if (!strcmp(s->name, "crop")) {
        value_int(E, "crop", &s->attr[0], arg[0], &t->crop_pad);
    } else {
        float mean[16] = {0}, std[16] = {0};
        int nm = read_floats(E, "normalize", &s->attr[0], arg[0], mean, 16, false);
        int ns = nm ? read_floats(E, "normalize", &s->attr[1], arg[1], std, 16, true) : 0;
        if (nm && ns && nm != ns) {
            elab_error(E, arg[1]->loc, arg[1]->len, "normalize: %d means but %d stds", nm, ns);
        } else if (nm && ns) {
            t->nnorm = nm;
            memcpy(t->mean, mean, sizeof mean);
            memcpy(t->std, std, sizeof std);
        }
    }
}

/* `augment [crop(4), flip, normalize(mean=[0.5], std=[0.25])]` or one item */
static void read_augment(Elab *E, TrainConfig *t, const Value *v)
{
    const Value *seen[SCHEMA_MAX_ATTR] = {0};
    if (v->kind != VAL_LIST) {
        read_augment_item(E, t, v, seen);
        return;
    }
    for (int i = 0; i < v->n; i++)
        read_augment_item(E, t, &v->item[i], seen);
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
    plan->loss = s;
    plan->loss_loc = v->loc;
    plan->loss_len = v->len;
    plan->loss_name = arg[0]->s;
    plan->loss_name_loc = arg[0]->loc;
    plan->loss_name_len = arg[0]->len;
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
                elab_hint(E, "the settings are data, loss, optimizer, batch, epochs, seed, init, "
                             "schedule and augment");
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
        case ATTR_AUGMENT: read_augment(E, t, &v); break;
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
