/* schema.c - the one table of what layers and the train section accept.
 *
 * Everything the elaborator checks about attributes comes from here:
 * names, kinds, positional order, required or default.  docs/language.md
 * shows the same signatures (tests/unit/test_parse.c checks it does).
 * Adding a layer: a row in ops.def, a row in `layers` below (the
 * _Static_assert counts them), a shape rule in shape.c.
 */
#include "schema.h"

#include <stdio.h>
#include <string.h>

#define INIT_DOC "the weight initialiser; biases start at zero"

static const Schema layers[] = {
    {"conv", OP_CONV, 2, 1, 1, 8, {
        {"out", ATTR_INT, NULL, 1, "output channels"},
        {"kernel", ATTR_AXES, NULL, 1, "kernel size, one for all axes or a list per axis"},
        {"stride", ATTR_AXES, "1", 1, "step between windows"},
        {"pad", ATTR_PAD, "0", 0, "zero padding: per axis, per side, same or valid"},
        {"dilation", ATTR_AXES, "1", 1, "spacing between kernel taps"},
        {"groups", ATTR_INT, "1", 1, "channel groups; must divide in and out channels"},
        {"bias", ATTR_BOOL, "true", 0, "add a learned bias per output channel"},
        {"init", ATTR_INIT, "<train default>", 0, INIT_DOC},
    }, INIT_DEFAULT, "convolution (1D, 2D or 3D from the input's rank)"},
    {"maxpool", OP_MAXPOOL, 1, 1, 1, 3, {
        {"kernel", ATTR_AXES, NULL, 1, "window size"},
        {"stride", ATTR_AXES, "kernel", 1, "step between windows"},
        {"pad", ATTR_PAD, "0", 0, "implicit padding (never chosen as the maximum); at most kernel/2"},
    }, INIT_DEFAULT, "max pooling (floor mode)"},
    {"avgpool", OP_AVGPOOL, 1, 1, 1, 4, {
        {"kernel", ATTR_AXES, NULL, 1, "window size"},
        {"stride", ATTR_AXES, "kernel", 1, "step between windows"},
        {"pad", ATTR_PAD, "0", 0, "zero padding; at most kernel/2"},
        {"count_include_pad", ATTR_BOOL, "true", 0, "divide by the whole window, padding included"},
    }, INIT_DEFAULT, "average pooling (floor mode)"},
    {"dense", OP_DENSE, 1, 1, 1, 3, {
        {"units", ATTR_INT, NULL, 1, "output features"},
        {"bias", ATTR_BOOL, "true", 0, "add a learned bias per unit"},
        {"init", ATTR_INIT, "<train default>", 0, INIT_DOC},
    }, INIT_DEFAULT, "fully connected layer on a rank-1 input"},
    {"flatten", OP_FLATTEN, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "reshape to [C*H*W]"},
    {"relu", OP_RELU, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "max(x, 0)"},
    {"tanh", OP_TANH, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "hyperbolic tangent"},
    {"sigmoid", OP_SIGMOID, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "1 / (1 + exp(-x))"},
    {"softmax", OP_SOFTMAX, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "softmax over channels"},
    {"concat", OP_CONCAT, 0, 2, -1, 0, {{0}}, INIT_DEFAULT, "join 2+ inputs along channels"},
    {"add", OP_ADD, 0, 2, -1, 0, {{0}}, INIT_DEFAULT, "element-wise sum of 2+ inputs of one shape"},
};

/* Every OPF_LAYER row of ops.def, counted at compile time. */
enum {
    NLAYER = 0
#define OP(e, name, arity, flags) + (((flags) & OPF_LAYER) ? 1 : 0)
#include "ops.def"
#undef OP
};
_Static_assert(sizeof layers / sizeof layers[0] == NLAYER, "schema: a layer of ops.def has no row");

static const Schema optimizers[] = {
    {"sgd", OP_COUNT, 1, 0, 0, 4, {
        {"lr", ATTR_FLOAT, "0.01", 0, "learning rate, > 0"},
        {"momentum", ATTR_FLOAT, "0", 0, "in [0, 1)"},
        {"weight_decay", ATTR_FLOAT, "0", 0, "L2 penalty, >= 0"},
        {"nesterov", ATTR_BOOL, "false", 0, "Nesterov momentum (needs momentum > 0)"},
    }, INIT_DEFAULT, "stochastic gradient descent with momentum"},
};

static const Schema inits[] = {
    {"he_uniform", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_HE_UNIFORM,
     "U(-b, b), b = sqrt(6 / fan_in) (Kaiming, for ReLU)"},
    {"he_normal", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_HE_NORMAL, "N(0, 2 / fan_in)"},
    {"xavier_uniform", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_XAVIER_UNIFORM,
     "U(-b, b), b = sqrt(6 / (fan_in + fan_out)) (Glorot)"},
    {"xavier_normal", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_XAVIER_NORMAL,
     "N(0, 2 / (fan_in + fan_out))"},
    {"uniform", OP_COUNT, 2, 0, 0, 2, {
        {"a", ATTR_FLOAT, NULL, 0, "lower bound"},
        {"b", ATTR_FLOAT, NULL, 0, "upper bound, > a"},
    }, INIT_UNIFORM, "U(a, b)"},
    {"normal", OP_COUNT, 2, 0, 0, 2, {
        {"mean", ATTR_FLOAT, NULL, 0, "mean"},
        {"std", ATTR_FLOAT, NULL, 0, "standard deviation, > 0"},
    }, INIT_NORMAL, "N(mean, std^2)"},
};

#define CHANNELS_DOC "channels fed to the model: 3 replicates the grey channel"
#define SIZE_DOC "resize to size x size (bilinear); default: as stored"
#define SPLIT_DOC "fraction of the training set held out for testing, in (0, 1); 0: the test files"

static const Schema data[] = {
    {"fashion_mnist", OP_COUNT, 1, 0, 0, 4, {
        {"path", ATTR_STRING, "\"/usr/share/datasets/fashion-mnist\"", 0, "directory of the IDX files"},
        {"channels", ATTR_INT, "1", 1, CHANNELS_DOC},
        {"size", ATTR_INT, "<stored>", 1, SIZE_DOC},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "Fashion-MNIST (IDX files, optionally gzipped)"},
    {"mnist", OP_COUNT, 1, 0, 0, 4, {
        {"path", ATTR_STRING, "\"/usr/share/datasets/mnist\"", 0, "directory of the IDX files"},
        {"channels", ATTR_INT, "1", 1, CHANNELS_DOC},
        {"size", ATTR_INT, "<stored>", 1, SIZE_DOC},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "MNIST digits (IDX files)"},
    {"idx", OP_COUNT, 1, 0, 0, 4, {
        {"path", ATTR_STRING, NULL, 0, "directory of the IDX files"},
        {"channels", ATTR_INT, "1", 1, CHANNELS_DOC},
        {"size", ATTR_INT, "<stored>", 1, SIZE_DOC},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "any dataset in the MNIST IDX layout"},
    /* data sources: arrays, CIFAR, image folders */
    {"npy", OP_COUNT, 2, 0, 0, 5, {
        {"path", ATTR_STRING, NULL, 0, "training images, [N, C, H, W] or [N, H, W], uint8 or float32"},
        {"labels", ATTR_STRING, NULL, 0, "training labels, [N], an integer dtype"},
        {"test", ATTR_STRING, "none", 0, "test images (with test_labels)"},
        {"test_labels", ATTR_STRING, "none", 0, "test labels"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "NumPy arrays, memory-mapped"},
    {"cifar10", OP_COUNT, 1, 0, 0, 2, {
        {"path", ATTR_STRING, NULL, 0, "directory of data_batch_1.bin .. data_batch_5.bin, test_batch.bin"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "CIFAR-10, binary version"},
    {"cifar100", OP_COUNT, 1, 0, 0, 3, {
        {"path", ATTR_STRING, NULL, 0, "directory of train.bin and test.bin"},
        {"label", ATTR_STRING, "fine", 0, "fine (100 classes) or coarse (20)"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "CIFAR-100, binary version"},
    {"images", OP_COUNT, 1, 0, 0, 3, {
        {"path", ATTR_STRING, NULL, 0, "folder with one sub-folder of PNG/JPEG files per class"},
        {"test", ATTR_STRING, "none", 0, "the test folder, with the same class folders"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
    }, INIT_DEFAULT, "image folders, resized to the input (bilinear)"},
};

/* augmentation: the items of `augment [...]` */
static const Schema augments[] = {
    {"crop", OP_COUNT, 1, 0, 0, 1, {
        {"pad", ATTR_INT, NULL, 1, "zero padding on every side before a random crop"},
    }, INIT_DEFAULT, "random crop of the padded image (training only)"},
    {"flip", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_DEFAULT,
     "random horizontal flip, probability 1/2 (training only)"},
    {"normalize", OP_COUNT, 0, 0, 0, 2, {
        {"mean", ATTR_FLOATS, NULL, 0, "one mean per channel"},
        {"std", ATTR_FLOATS, NULL, 0, "one standard deviation per channel, > 0"},
    }, INIT_DEFAULT, "(x - mean) / std per channel (training and test)"},
};

static const Schema losses[] = {
    {"softmax_cross_entropy", OP_SOFTMAX_XENT, 1, 0, 0, 1, {
        {"value", ATTR_VALUE, NULL, 0, "logits [classes]; the target is a class index"},
    }, INIT_DEFAULT, "softmax then cross-entropy, mean over the batch"},
    {"mse", OP_MSE, 1, 0, 0, 1, {
        {"value", ATTR_VALUE, NULL, 0, "prediction; the target has its shape"},
    }, INIT_DEFAULT, "mean squared error, mean over the batch"},
};

static const Schema schedules[] = {
    {"constant", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_DEFAULT, "the optimiser's lr throughout"},
    {"cosine", OP_COUNT, 0, 0, 0, 0, {{0}}, INIT_DEFAULT,
     "lr * (1 + cos(pi * epoch / epochs)) / 2 in epoch 0, 1, ..."},
    {"step", OP_COUNT, 2, 0, 0, 2, {
        {"every", ATTR_INT, NULL, 1, "epochs between decays"},
        {"gamma", ATTR_FLOAT, "0.1", 0, "decay factor, in (0, 1]"},
    }, INIT_DEFAULT, "lr * gamma^floor(epoch / every)"},
};

static const Schema train = {
    "train", OP_COUNT, 0, 0, 0, 9, {
        {"data", ATTR_DATA, "fashion_mnist", 0, "the dataset"},
        {"loss", ATTR_LOSS, NULL, 0, "the loss and the value it scores"},
        {"optimizer", ATTR_OPTIM, "sgd", 0, "the optimiser and its settings"},
        {"batch", ATTR_INT, "64", 1, "samples per step"},
        {"epochs", ATTR_INT, "10", 1, "passes over the training set"},
        {"seed", ATTR_INT, "1", 0, "seed of the weight initialisation and shuffling"},
        {"init", ATTR_INIT, "he_uniform", 0, "default weight initialiser"},
        {"schedule", ATTR_SCHEDULE, "constant", 0, "learning-rate schedule, stepped per epoch"},
        {"augment", ATTR_AUGMENT, "[]", 0, "augmentation and normalisation of the images"},
    }, INIT_DEFAULT, "training configuration",
};

const Schema *schema_layers(int *n)
{
    *n = (int)(sizeof layers / sizeof layers[0]);
    return layers;
}

const Schema *schema_optimizers(int *n)
{
    *n = (int)(sizeof optimizers / sizeof optimizers[0]);
    return optimizers;
}

const Schema *schema_inits(int *n)
{
    *n = (int)(sizeof inits / sizeof inits[0]);
    return inits;
}

const Schema *schema_data(int *n)
{
    *n = (int)(sizeof data / sizeof data[0]);
    return data;
}

const Schema *schema_augments(int *n)
{
    *n = (int)(sizeof augments / sizeof augments[0]);
    return augments;
}

const Schema *schema_losses(int *n)
{
    *n = (int)(sizeof losses / sizeof losses[0]);
    return losses;
}

const Schema *schema_schedules(int *n)
{
    *n = (int)(sizeof schedules / sizeof schedules[0]);
    return schedules;
}

const Schema *schema_train(void)
{
    return &train;
}

const Schema *schema_lookup(const Schema *rows, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

const Schema *schema_layer(Op op)
{
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (layers[i].op == op)
            return &layers[i];
    return NULL;
}

const Schema *schema_find_layer(const char *name)
{
    int n;
    const Schema *rows = schema_layers(&n);
    return schema_lookup(rows, n, name);
}

int schema_attr_index(const Schema *s, const char *name)
{
    for (int i = 0; i < s->nattr; i++)
        if (!strcmp(s->attr[i].name, name))
            return i;
    return -1;
}

void schema_signature(const Schema *s, char *buf, int size)
{
    int k = snprintf(buf, (size_t)size, "%s", s->name);
    if (s->nattr > 0) {
        for (int i = 0; i < s->nattr && k < size; i++) {
            const AttrSpec *a = &s->attr[i];
            k += snprintf(buf + k, (size_t)(size - k), "%s%s%s%s", i ? ", " : "(", a->name,
                          a->def ? "=" : "", a->def ? a->def : "");
        }
        if (k < size)
            snprintf(buf + k, (size_t)(size - k), ")");
    }
}
