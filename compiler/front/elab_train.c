/* elab_train.c - the train section: data, loss, optimizer, batch, epochs,
 * seed, the default initialiser, the schedule and the augmentation.
 *
 * Needs: the schema rows of train keys, data sources, losses, optimizers
 * and initialisers.  Provides: m->train with every default filled (also
 * when there is no train section) and a TrainPlan naming the loss and the
 * value it scores; elab.c adds the loss node once the graph exists, and
 * train_params then matches freeze and lr_mult to the parameters.
 *
 *   train { loss mse(y)  optimizer sgd(lr=0.1)  batch 32 }
 *   -> sgd lr 0.1, momentum 0, ..., batch 32, epochs 10, seed 1, loss mse of y
 *   train { loss mse(y)  optimizer adam  freeze [c1]  lr_mult [f(0.1)] }
 *   -> adam lr 0.001, beta1 0.9, ...; c1.weight, c1.bias frozen; f.* at 0.1 lr
 */
#include "elab.h"

#include <float.h>
#include <stdlib.h>
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
    if ((v = arg_of(s, arg, "target"))) {
        if ((v->kind != VAL_NAME && v->kind != VAL_STRING) ||
            (strcmp(v->s, "labels") && strcmp(v->s, "self")))
            elab_error(E, v->loc, v->len, "%s: target must be labels or self, got %s", s->name,
                       value_describe(E, v));
        else if (!strcmp(v->s, "self")) {
            t->data_target_input = true;
            t->target_input_loc = v->loc;
            t->target_input_len = v->len;
        }
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

/* What each optimizer setting may hold, by name (the kinds are the
 * schema's); the runtime checks the same rules (runtime/optim.c). */
typedef enum { RULE_POSITIVE, RULE_NONNEG, RULE_FRACTION } Rule;

static Rule setting_rule(const char *name)
{
    static const char *const positive[] = {"lr", "eps"};
    static const char *const fraction[] = {"momentum", "dampening", "alpha", "rho", "beta1", "beta2"};
    for (size_t i = 0; i < sizeof positive / sizeof *positive; i++)
        if (!strcmp(name, positive[i]))
            return RULE_POSITIVE;
    for (size_t i = 0; i < sizeof fraction / sizeof *fraction; i++)
        if (!strcmp(name, fraction[i]))
            return RULE_FRACTION;
    return RULE_NONNEG;
}

/* x within its rule and, as the optimiser works in float, a float's range. */
static bool setting_ok(Elab *E, const char *opt, const char *name, const Value *v, double x)
{
    switch (setting_rule(name)) {
    case RULE_POSITIVE:
        if (!(x > 0))
            return elab_error(E, v->loc, v->len, "%s: %s must be greater than 0, got %g", opt, name, x);
        break;
    case RULE_FRACTION:
        if (!(x >= 0 && x < 1))
            return elab_error(E, v->loc, v->len, "%s: %s must be in [0, 1), got %g", opt, name, x);
        break;
    case RULE_NONNEG:
        if (!(x >= 0))
            return elab_error(E, v->loc, v->len, "%s: %s must be at least 0, got %g", opt, name, x);
        break;
    }
    if (x > FLT_MAX || (x != 0 && x < FLT_MIN))
        return elab_error(E, v->loc, v->len, "%s: %s = %g is outside the range of a float "
                          "(1.2e-38 to 3.4e38)", opt, name, x);
    return true;
}

static double setting_default(const AttrSpec *a)
{
    if (a->kind == ATTR_BOOL)
        return !strcmp(a->def, "true");
    return strtod(a->def, NULL);
}

/* Optimizers torch has and netc does not: named as such, not "unknown". */
static bool unsupported_optimizer(Elab *E, const Value *v)
{
    static const char *const later[] = {"adamax", "nadam", "radam", "sparse_adam", "lbfgs", "asgd",
                                        "rprop"};
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        if (!strcmp(v->s, later[i])) {
            elab_error(E, v->loc, v->len, "optimizer '%s' is not supported", v->s);
            elab_hint(E, "netc trains with sgd, adagrad, rmsprop, adadelta, adam and adamw");
            return true;
        }
    }
    return false;
}

/* `optimizer adam(lr=0.001, amsgrad=true)`: every setting of the schema
 * row, given or defaulted, into t->opt. */
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
        if (unsupported_optimizer(E, v))
            return;
        elab_error(E, v->loc, v->len, "unknown optimizer '%s'", v->s);
        suggest(E, v->s, rows, n, "optimizers");
        return;
    }
    /* torch's betas=(b1, b2) is two settings here */
    for (int i = 0; v->kind == VAL_CALL && i < v->n; i++) {
        const Value *it = &v->item[i];
        if (it->name && !strcmp(it->name, "betas") && schema_attr_index(s, "beta1") >= 0) {
            elab_error(E, it->name_loc, it->name_len, "%s takes beta1 and beta2, not betas", s->name);
            elab_hint(E, "write %s(beta1=0.9, beta2=0.999)", s->name);
            return;
        }
    }
    const Value *arg[SCHEMA_MAX_ATTR] = {0};
    if (v->kind == VAL_CALL && !value_bind(E, s, s->name, v->item, v->n, v->loc, v->len, arg))
        return;
    NETC_ASSERT(s->nattr <= NETC_MAX_OPT_SETTINGS);
    OptSetting opt[NETC_MAX_OPT_SETTINGS];
    int before = E->d->nerror;
    for (int i = 0; i < s->nattr; i++) {
        const AttrSpec *a = &s->attr[i];
        opt[i] = (OptSetting){a->name, setting_default(a)};
        if (!arg[i])
            continue;
        if (a->kind == ATTR_BOOL) {
            bool b;
            if (value_bool(E, s->name, a, arg[i], &b))
                opt[i].value = b;
        } else if (value_float(E, s->name, a, arg[i], &opt[i].value)) {
            setting_ok(E, s->name, a->name, arg[i], opt[i].value);
        }
    }
    int nest = schema_attr_index(s, "nesterov");
    if (nest >= 0 && arg[nest] && opt[nest].value != 0) {
        if (!(opt[schema_attr_index(s, "momentum")].value > 0))
            elab_error(E, arg[nest]->loc, arg[nest]->len, "%s: nesterov needs momentum greater than 0",
                       s->name);
        else if (opt[schema_attr_index(s, "dampening")].value != 0)
            elab_error(E, arg[nest]->loc, arg[nest]->len, "%s: nesterov needs dampening 0", s->name);
    }
    if (E->d->nerror != before)
        return;
    t->optimizer = s->name;
    t->nopt = s->nattr;
    memcpy(t->opt, opt, sizeof opt);
}

/* `clip_norm 1.0` */
static void read_clip_norm(Elab *E, TrainConfig *t, const AttrSpec *a, const Value *v)
{
    double x;
    if (!value_float(E, "train", a, v, &x))
        return;
    if (!(x > 0) || x > FLT_MAX || x < FLT_MIN) {
        elab_error(E, v->loc, v->len, "clip_norm must be a positive number a float holds, got %g", x);
        return;
    }
    t->clip_norm = (float)x;
}

/* `freeze [c1, block1]` and `lr_mult [c1(0.1), f3(10)]`: checked here,
 * matched against the parameters by train_params once the graph exists. */
static void read_layer_list(Elab *E, TrainPlan *plan, const AttrSpec *a, const Value *v)
{
    bool mults = a->kind == ATTR_LR_MULTS;
    const char *want = mults ? "a list of layer(factor), e.g. [c1(0.1), f3(10)]"
                             : "a list of layer names, e.g. [c1, c2]";
    if (v->kind != VAL_LIST) {
        elab_error(E, v->loc, v->len, "%s expects %s, got %s", a->name, want, value_describe(E, v));
        return;
    }
    int before = E->d->nerror;
    for (int i = 0; i < v->n; i++) {
        const Value *it = &v->item[i];
        if (it->kind != (mults ? VAL_CALL : VAL_NAME)) {
            elab_error(E, it->loc, it->len, "%s expects %s, got %s", a->name, want,
                       value_describe(E, it));
            continue;
        }
        if (!mults)
            continue;
        double x = 0;
        const Value *f = it->n == 1 && !it->item[0].name ? &it->item[0] : NULL;
        if (!f || (f->kind != VAL_INT && f->kind != VAL_FLOAT)) {
            elab_error(E, it->loc, it->len, "lr_mult: '%s' needs one factor, e.g. %s(0.1)", it->s, it->s);
            continue;
        }
        x = f->kind == VAL_INT ? (double)f->i : f->f;
        if (!(x > 0) || x > FLT_MAX || x < FLT_MIN)
            elab_error(E, f->loc, f->len, "lr_mult: the factor of '%s' must be a positive number a "
                       "float holds, got %g", it->s, x);
    }
    if (E->d->nerror != before)
        return;
    if (mults)
        plan->lr_mult = *v;
    else
        plan->freeze = *v;
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
    int nopt;
    const Schema *sgd = &schema_optimizers(&nopt)[0];
    t->optimizer = sgd->name;
    t->nopt = sgd->nattr;
    for (int i = 0; i < sgd->nattr; i++)
        t->opt[i] = (OptSetting){sgd->attr[i].name, setting_default(&sgd->attr[i])};
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
                             "schedule, clip_norm, warmup, freeze, lr_mult and augment");
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
        case ATTR_FLOAT: read_clip_norm(E, t, a, &v); break;
        case ATTR_LAYERS:
        case ATTR_LR_MULTS: read_layer_list(E, plan, a, &v); break;
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
            else if (!strcmp(a->name, "warmup"))
                t->warmup = x;
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

/* "c1.weight" belongs to layer "c1" and to any block instance it is in. */
static bool selects(const char *sel, const char *param)
{
    size_t n = strlen(sel);
    return !strncmp(sel, param, n) && param[n] == '.';
}

static ParamTrain *param_entry(TrainConfig *t, const char *param)
{
    for (int i = 0; i < t->nparam_opt; i++)
        if (!strcmp(t->param_opt[i].param, param))
            return &t->param_opt[i];
    t->param_opt[t->nparam_opt] = (ParamTrain){param, false, false, 1.0f};
    return &t->param_opt[t->nparam_opt++];
}

/* "no layer 'c9' has parameters", with the nearest layer that has. */
static void no_such_layer(Elab *E, const char *key, const Value *it, const Graph *g)
{
    elab_error(E, it->loc, it->len, "%s: no layer '%s' with parameters", key, it->s);
    const char *c[64];
    int n = 0;
    for (int i = 0; i < g->nnode && n < 64; i++)
        if (g->node[i]->op == OP_PARAM) {
            const char *name = g->node[i]->name, *dot = strrchr(name, '.');
            c[n++] = dot ? arena_printf(E->a, "%.*s", (int)(dot - name), name) : name;
        }
    const char *s = diag_suggest(it->s, c, n);
    if (s)
        elab_hint(E, "did you mean '%s'?", s);
}

static void apply_list(Elab *E, const char *key, const Value *list)
{
    TrainConfig *t = &E->m->train;
    const Graph *g = E->m->g;
    bool mults = !strcmp(key, "lr_mult");
    for (int i = 0; list->kind == VAL_LIST && i < list->n; i++) {
        const Value *it = &list->item[i];
        int matched = 0;
        for (int k = 0; k < g->nnode; k++) {
            const Node *n = g->node[k];
            if (n->op != OP_PARAM || !selects(it->s, n->name))
                continue;
            matched++;
            ParamTrain *p = param_entry(t, n->name);
            if (!mults) {
                p->frozen = true;
                continue;
            }
            const Value *f = &it->item[0];
            if (p->frozen || p->scaled) {
                elab_error(E, it->loc, it->len, "lr_mult: '%s' %s", n->name,
                           p->frozen ? "is frozen, so it has no learning rate to scale"
                                     : "already has a factor");
                break;
            }
            p->scaled = true;
            p->lr_mult = (float)(f->kind == VAL_INT ? (double)f->i : f->f);
        }
        if (!matched)
            no_such_layer(E, key, it, g);
    }
}

void train_params(Elab *E, const TrainPlan *plan)
{
    TrainConfig *t = &E->m->train;
    const Graph *g = E->m->g;
    int nparam = 0;
    for (int i = 0; i < g->nnode; i++)
        nparam += g->node[i]->op == OP_PARAM;
    t->param_opt = arena_alloc(E->m->arena, sizeof *t->param_opt * (size_t)(nparam + 1));
    t->nparam_opt = 0;
    apply_list(E, "freeze", &plan->freeze);
    apply_list(E, "lr_mult", &plan->lr_mult);
}
