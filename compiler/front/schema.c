/* schema.c - the one table of what layers and the train section accept.
 *
 * Everything the elaborator checks about attributes comes from here:
 * names, kinds, positional order, required or default.  docs/language.md
 * shows the same signatures (tests/unit/test_parse.c checks it does).
 * Adding a layer: a row in ops.def, a row in `layers` below (the
 * _Static_assert counts them), a shape rule in shape.c.
 */
#include "schema.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define INIT_DOC "the weight initialiser; biases start at zero"
#define AXIS_DOC "the axis of the per-sample shape (0 = channels); negative counts from the last"

static const Schema layers[] = {
    {"conv", OP_CONV, 2, 1, 1, 9, {
        {"out", ATTR_INT, NULL, 1, "output channels"},
        {"kernel", ATTR_AXES, NULL, 1, "kernel size, one for all axes or a list per axis"},
        {"stride", ATTR_AXES, "1", 1, "step between windows"},
        {"pad", ATTR_PAD, "0", 0, "zero padding: per axis, per side, same or valid"},
        {"dilation", ATTR_AXES, "1", 1, "spacing between kernel taps"},
        {"groups", ATTR_INT, "1", 1, "channel groups; must divide in and out channels"},
        {"bias", ATTR_BOOL, "true", 0, "add a learned bias per output channel"},
        {"init", ATTR_INIT, "<train default>", 0, INIT_DOC},
        {"algo", ATTR_ALGO, "auto", 0, "how to compute it: auto, direct, im2col, winograd (winograd4), winograd2 or fft"},
    }, INIT_DEFAULT, "convolution (1D, 2D or 3D from the input's rank)"},
    {"maxpool", OP_MAXPOOL, 1, 1, 1, 5, {
        {"kernel", ATTR_AXES, NULL, 1, "window size"},
        {"stride", ATTR_AXES, "kernel", 1, "step between windows"},
        {"pad", ATTR_PAD, "0", 0, "implicit padding (never chosen as the maximum); every window must overlap the input"},
        {"dilation", ATTR_AXES, "1", 1, "spacing between window taps"},
        {"ceil_mode", ATTR_BOOL, "false", 0, "round the output size up (a last partial window)"},
    }, INIT_DEFAULT, "max pooling"},
    {"avgpool", OP_AVGPOOL, 1, 1, 1, 5, {
        {"kernel", ATTR_AXES, NULL, 1, "window size"},
        {"stride", ATTR_AXES, "kernel", 1, "step between windows"},
        {"pad", ATTR_PAD, "0", 0, "zero padding; every window must overlap the input"},
        {"count_include_pad", ATTR_BOOL, "true", 0, "divide by the whole window, padding included"},
        {"ceil_mode", ATTR_BOOL, "false", 0, "round the output size up (a last partial window)"},
    }, INIT_DEFAULT, "average pooling"},
    {"dense", OP_DENSE, 1, 1, 1, 3, {
        {"units", ATTR_INT, NULL, 1, "output features"},
        {"bias", ATTR_BOOL, "true", 0, "add a learned bias per unit"},
        {"init", ATTR_INIT, "<train default>", 0, INIT_DOC},
    }, INIT_DEFAULT, "fully connected layer on a rank-1 input"},
    {"flatten", OP_FLATTEN, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "reshape to [C*H*W]"},
    {"relu", OP_RELU, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "max(x, 0)"},
    {"tanh", OP_TANH, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "hyperbolic tangent"},
    {"sigmoid", OP_SIGMOID, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "1 / (1 + exp(-x))"},
    {"softmax", OP_SOFTMAX, 1, 1, 1, 1, {
        {"axis", ATTR_INT, "0", INT_MIN, AXIS_DOC},
    }, INIT_DEFAULT, "softmax along one axis (the channels by default)"},
    {"concat", OP_CONCAT, 0, 2, -1, 1, {
        {"axis", ATTR_INT, "0", 0, "the non-batch axis joined; 0 is channels"},
    }, INIT_DEFAULT, "join 2+ inputs along an axis"},
    {"add", OP_ADD, 0, 2, -1, 0, {{0}}, INIT_DEFAULT, "element-wise sum of 2+ inputs (broadcasting)"},
    /* activations */
    {"leaky_relu", OP_LEAKY_RELU, 1, 1, 1, 1, {
        {"slope", ATTR_FLOAT, "0.01", 0, "the slope for x <= 0"},
    }, INIT_DEFAULT, "x for x > 0, slope*x otherwise"},
    {"prelu", OP_PRELU, 1, 1, 1, 1, {
        {"per_channel", ATTR_BOOL, "false", 0, "one learned slope per channel instead of one for all"},
    }, INIT_DEFAULT, "leaky_relu with a learned slope `weight`, starting at 0.25"},
    {"elu", OP_ELU, 1, 1, 1, 1, {
        {"alpha", ATTR_FLOAT, "1", 0, "the scale of the negative side"},
    }, INIT_DEFAULT, "x for x > 0, alpha*(exp(x) - 1) otherwise"},
    {"selu", OP_SELU, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "scale * elu(x, alpha) with the self-normalising constants"},
    {"softplus", OP_SOFTPLUS, 2, 1, 1, 2, {
        {"beta", ATTR_FLOAT, "1", 0, "sharpness, > 0"},
        {"threshold", ATTR_FLOAT, "20", 0, "where beta*x > threshold the result is x"},
    }, INIT_DEFAULT, "log(1 + exp(beta*x)) / beta"},
    {"hard_sigmoid", OP_HARD_SIGMOID, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "min(max(x/6 + 1/2, 0), 1)"},
    {"hard_swish", OP_HARD_SWISH, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "x * hard_sigmoid(x)"},
    {"relu6", OP_RELU6, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "min(max(x, 0), 6)"},
    {"clip", OP_CLIP, 2, 1, 1, 2, {
        {"min", ATTR_FLOAT, NULL, 0, "the lower bound"},
        {"max", ATTR_FLOAT, NULL, 0, "the upper bound, >= min"},
    }, INIT_DEFAULT, "min(max(x, min), max)"},
    {"log_softmax", OP_LOG_SOFTMAX, 1, 1, 1, 1, {
        {"axis", ATTR_INT, "0", INT_MIN, AXIS_DOC},
    }, INIT_DEFAULT, "log of softmax along one axis, computed stably"},
    /* element-wise arithmetic */
    {"sub", OP_SUB, 0, 2, 2, 0, {{0}}, INIT_DEFAULT, "element-wise difference a - b (broadcasting)"},
    {"mul", OP_MUL, 0, 2, 2, 0, {{0}}, INIT_DEFAULT, "element-wise product (broadcasting)"},
    /* normalisation and regularisation */
    {"batchnorm", OP_BATCHNORM, 0, 1, 1, 4, {
        {"eps", ATTR_FLOAT, "1e-5", 0, "added to the variance, > 0"},
        {"momentum", ATTR_FLOAT, "0.1", 0,
         "weight of the batch statistics in the running ones, in [0, 1]"},
        {"affine", ATTR_BOOL, "true", 0, "learn a weight and a bias per channel"},
        {"track_running_stats", ATTR_BOOL, "true", 0,
         "keep running statistics for inference (else inference uses the batch's)"},
    }, INIT_DEFAULT, "batch normalisation over N and the spatial axes, per channel"},
    {"lrn", OP_LRN, 1, 1, 1, 4, {
        {"size", ATTR_INT, NULL, 1, "channels in the window"},
        {"alpha", ATTR_FLOAT, "1e-4", 0, "scale of the sum of squares"},
        {"beta", ATTR_FLOAT, "0.75", 0, "exponent"},
        {"k", ATTR_FLOAT, "1.0", 0, "additive constant, > 0"},
    }, INIT_DEFAULT, "local response normalisation across channels"},
    {"dropout", OP_DROPOUT, 1, 1, 1, 1, {
        {"p", ATTR_FLOAT, "0.5", 0, "probability of zeroing an element, in [0, 1)"},
    }, INIT_DEFAULT, "zeroes elements in training, scales the rest by 1/(1-p)"},
    {"dropout2d", OP_DROPOUT2D, 1, 1, 1, 1, {
        {"p", ATTR_FLOAT, "0.5", 0, "probability of zeroing a channel, in [0, 1)"},
    }, INIT_DEFAULT, "zeroes whole channels in training, scales the rest by 1/(1-p)"},
    /* pooling and data movement */
    {"reshape", OP_RESHAPE, 1, 1, 1, 1, {
        {"shape", ATTR_DIMS, NULL, 0, "the new per-sample shape; one entry may be -1"},
    }, INIT_DEFAULT, "the same elements in a new shape"},
    {"slice", OP_SLICE, 3, 1, 1, 3, {
        {"axis", ATTR_INT, NULL, 0, "the non-batch axis; 0 is channels"},
        {"begin", ATTR_INT, NULL, 0, "first index kept"},
        {"end", ATTR_INT, NULL, 1, "one past the last index kept"},
    }, INIT_DEFAULT, "the indices [begin, end) of one axis"},
    {"global_avgpool", OP_GLOBAL_AVGPOOL, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "mean over all spatial positions"},
    {"global_maxpool", OP_GLOBAL_MAXPOOL, 0, 1, 1, 0, {{0}}, INIT_DEFAULT, "maximum over all spatial positions"},
    {"adaptive_avgpool", OP_ADAPTIVE_AVGPOOL, 1, 1, 1, 1, {
        {"size", ATTR_AXES, NULL, 1, "output size, one for all axes or a list per axis"},
    }, INIT_DEFAULT, "average pooling to a fixed output size"},
    {"pad", OP_PAD, 1, 1, 1, 3, {
        {"pad", ATTR_PAD, NULL, 0, "per axis or per side, like conv's pad"},
        {"mode", ATTR_WORD, "constant", 0, "constant, reflect or replicate"},
        {"value", ATTR_FLOAT, "0", 0, "the fill of constant mode"},
    }, INIT_DEFAULT, "explicit padding of the spatial axes"},
    {"upsample", OP_UPSAMPLE, 1, 1, 1, 4, {
        {"scale", ATTR_AXES, "1", 1, "integer factor, one for all axes or a list per axis"},
        {"size", ATTR_AXES, "none", 1, "output size instead of scale"},
        {"mode", ATTR_WORD, "nearest", 0, "nearest, or linear, bilinear, trilinear for 1D, 2D, 3D"},
        {"align_corners", ATTR_BOOL, "false", 0, "linear modes: corner pixels align"},
    }, INIT_DEFAULT, "resize as torch.nn.functional.interpolate"},
    {"pixel_shuffle", OP_PIXEL_SHUFFLE, 1, 1, 1, 1, {
        {"r", ATTR_INT, NULL, 1, "block size"},
    }, INIT_DEFAULT, "[C*r*r, H, W] -> [C, H*r, W*r] (PyTorch's order)"},
    {"pixel_unshuffle", OP_PIXEL_UNSHUFFLE, 1, 1, 1, 1, {
        {"r", ATTR_INT, NULL, 1, "block size"},
    }, INIT_DEFAULT, "[C, H*r, W*r] -> [C*r*r, H, W] (PyTorch's order)"},
    {"depth_to_space", OP_DEPTH_TO_SPACE, 1, 1, 1, 1, {
        {"r", ATTR_INT, NULL, 1, "block size"},
    }, INIT_DEFAULT, "[r*r*C, H, W] -> [C, H*r, W*r] (ONNX's DCR order)"},
    {"space_to_depth", OP_SPACE_TO_DEPTH, 1, 1, 1, 1, {
        {"r", ATTR_INT, NULL, 1, "block size"},
    }, INIT_DEFAULT, "[C, H*r, W*r] -> [r*r*C, H, W] (ONNX's order)"},
    {"channel_shuffle", OP_CHANNEL_SHUFFLE, 1, 1, 1, 1, {
        {"groups", ATTR_INT, NULL, 1, "channel groups; must divide the channels"},
    }, INIT_DEFAULT, "interleave the channels of groups (ShuffleNet)"},
    /* dense and matmul */
    {"matmul", OP_MATMUL, 0, 2, 2, 0, {{0}}, INIT_DEFAULT,
     "matrix product of the last two axes, [.., M, K] x [.., K, N] -> [.., M, N] (torch.matmul)"},
    /* transposed convolution */
    {"conv_transpose", OP_CONV_TRANSPOSE, 2, 1, 1, 10, {
        {"out", ATTR_INT, NULL, 1, "output channels"},
        {"kernel", ATTR_AXES, NULL, 1, "kernel size, one for all axes or a list per axis"},
        {"stride", ATTR_AXES, "1", 1, "step between the input pixels' windows in the output"},
        {"pad", ATTR_PAD, "0", 0, "removed from each side of the output (the matching conv's padding)"},
        {"dilation", ATTR_AXES, "1", 1, "spacing between kernel taps"},
        {"groups", ATTR_INT, "1", 1, "channel groups; must divide in and out channels"},
        {"output_padding", ATTR_AXES, "0", 0, "added to the high side of the output; less than stride"},
        {"output_size", ATTR_AXES, "none", 1, "the output's spatial size; derives output_padding"},
        {"bias", ATTR_BOOL, "true", 0, "add a learned bias per output channel"},
        {"init", ATTR_INIT, "<train default>", 0, INIT_DOC},
    }, INIT_DEFAULT, "transposed convolution (the input gradient of a conv), 1D, 2D or 3D"},
};

/* convolution forms: built-in layers that elaborate into ordinary convs
 * (elab_forms.c); op is OP_CONV, what every part of them is. */
#define FORM_OUT {"out", ATTR_INT, NULL, 1, "output channels"}
#define FORM_KERNEL {"kernel", ATTR_INT, NULL, 1, "kernel size k"}
#define FORM_PAD {"pad", ATTR_INT, "0", 0, "zero padding of every k-sized kernel axis, each side"}
#define FORM_BIAS {"bias", ATTR_BOOL, "true", 0, "a learned bias in every part"}
#define FORM_INIT {"init", ATTR_INIT, "<train default>", 0, INIT_DOC}
static const Schema forms[] = {
    {"separable_conv", OP_CONV, 2, 1, 1, 5, {FORM_OUT, FORM_KERNEL, FORM_PAD, FORM_BIAS, FORM_INIT},
     INIT_DEFAULT, "spatially separable conv: k x 1 (part kh), then 1 x k (part kw)"},
    {"depthwise_separable", OP_CONV, 2, 1, 1, 7, {
        FORM_OUT, FORM_KERNEL,
        {"multiplier", ATTR_INT, "1", 1, "depthwise output channels per input channel"},
        {"stride", ATTR_INT, "1", 1, "step of the depthwise conv"},
        FORM_PAD, FORM_BIAS, FORM_INIT,
    }, INIT_DEFAULT, "depthwise k x k conv (part depthwise), then 1x1 conv (part pointwise)"},
    {"flattened_conv", OP_CONV, 2, 1, 1, 5, {FORM_OUT, FORM_KERNEL, FORM_PAD, FORM_BIAS, FORM_INIT},
     INIT_DEFAULT, "1x1 conv (part channel), then depthwise k x 1 (kh), then depthwise 1 x k (kw)"},
    {"pointwise_grouped", OP_CONV, 2, 1, 1, 4, {
        FORM_OUT,
        {"groups", ATTR_INT, NULL, 1, "channel groups; must divide in and out channels"},
        FORM_BIAS, FORM_INIT,
    }, INIT_DEFAULT, "grouped 1x1 conv (part pointwise)"},
    {"shuffled_grouped", OP_CONV, 3, 1, 1, 6, {
        FORM_OUT, FORM_KERNEL,
        {"groups", ATTR_INT, NULL, 1, "channel groups; must divide in and out channels"},
        FORM_PAD, FORM_BIAS, FORM_INIT,
    }, INIT_DEFAULT, "grouped k x k conv (conv1), channel_shuffle (shuffle), grouped k x k conv (conv2)"},
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
    {"sgd", OP_COUNT, 1, 0, 0, 5, {
        {"lr", ATTR_FLOAT, "0.01", 0, "learning rate, > 0"},
        {"momentum", ATTR_FLOAT, "0", 0, "in [0, 1)"},
        {"weight_decay", ATTR_FLOAT, "0", 0, "L2 penalty, >= 0"},
        {"nesterov", ATTR_BOOL, "false", 0, "Nesterov momentum (needs momentum > 0, dampening 0)"},
        {"dampening", ATTR_FLOAT, "0", 0, "in [0, 1): the gradient enters the momentum times 1 - dampening"},
    }, INIT_DEFAULT, "stochastic gradient descent with momentum"},
    /* optimisers */
    {"adagrad", OP_COUNT, 1, 0, 0, 5, {
        {"lr", ATTR_FLOAT, "0.01", 0, "learning rate, > 0"},
        {"lr_decay", ATTR_FLOAT, "0", 0, "the rate of step t is lr / (1 + (t - 1) lr_decay), >= 0"},
        {"weight_decay", ATTR_FLOAT, "0", 0, "L2 penalty, >= 0"},
        {"initial_accumulator_value", ATTR_FLOAT, "0", 0, "the sum of squares at the start, >= 0"},
        {"eps", ATTR_FLOAT, "1e-10", 0, "added to the root of the sum, > 0"},
    }, INIT_DEFAULT, "AdaGrad: per-weight rates from the sum of squared gradients"},
    {"rmsprop", OP_COUNT, 1, 0, 0, 6, {
        {"lr", ATTR_FLOAT, "0.01", 0, "learning rate, > 0"},
        {"alpha", ATTR_FLOAT, "0.99", 0, "smoothing of the squared gradient, in [0, 1)"},
        {"eps", ATTR_FLOAT, "1e-08", 0, "added to the root, > 0"},
        {"weight_decay", ATTR_FLOAT, "0", 0, "L2 penalty, >= 0"},
        {"momentum", ATTR_FLOAT, "0", 0, "in [0, 1)"},
        {"centered", ATTR_BOOL, "false", 0, "divide by the variance estimate instead"},
    }, INIT_DEFAULT, "RMSProp: the gradient over a running root mean square"},
    {"adadelta", OP_COUNT, 1, 0, 0, 4, {
        {"lr", ATTR_FLOAT, "1.0", 0, "scales the step, > 0"},
        {"rho", ATTR_FLOAT, "0.9", 0, "smoothing of the averages, in [0, 1)"},
        {"eps", ATTR_FLOAT, "1e-06", 0, "added inside both roots, > 0"},
        {"weight_decay", ATTR_FLOAT, "0", 0, "L2 penalty, >= 0"},
    }, INIT_DEFAULT, "AdaDelta: steps scaled by the ratio of running roots"},
    {"adam", OP_COUNT, 1, 0, 0, 6, {
        {"lr", ATTR_FLOAT, "0.001", 0, "learning rate, > 0"},
        {"beta1", ATTR_FLOAT, "0.9", 0, "smoothing of the gradient, in [0, 1)"},
        {"beta2", ATTR_FLOAT, "0.999", 0, "smoothing of the squared gradient, in [0, 1)"},
        {"eps", ATTR_FLOAT, "1e-08", 0, "added to the root, > 0"},
        {"weight_decay", ATTR_FLOAT, "0", 0, "L2 penalty added to the gradient, >= 0"},
        {"amsgrad", ATTR_BOOL, "false", 0, "divide by the largest second moment so far"},
    }, INIT_DEFAULT, "Adam"},
    {"adamw", OP_COUNT, 1, 0, 0, 6, {
        {"lr", ATTR_FLOAT, "0.001", 0, "learning rate, > 0"},
        {"beta1", ATTR_FLOAT, "0.9", 0, "smoothing of the gradient, in [0, 1)"},
        {"beta2", ATTR_FLOAT, "0.999", 0, "smoothing of the squared gradient, in [0, 1)"},
        {"eps", ATTR_FLOAT, "1e-08", 0, "added to the root, > 0"},
        {"weight_decay", ATTR_FLOAT, "0.01", 0, "decoupled decay: p = p (1 - lr weight_decay), >= 0"},
        {"amsgrad", ATTR_BOOL, "false", 0, "divide by the largest second moment so far"},
    }, INIT_DEFAULT, "Adam with decoupled weight decay"},
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
#define TARGET_DOC "labels, or self: the target is the input as fed (an autoencoder's)"
#define SPLIT_DOC "fraction of the training set held out for testing, in (0, 1); 0: the test files"

static const Schema data[] = {
    {"fashion_mnist", OP_COUNT, 1, 0, 0, 5, {
        {"path", ATTR_STRING, "\"/usr/share/datasets/fashion-mnist\"", 0, "directory of the IDX files"},
        {"channels", ATTR_INT, "1", 1, CHANNELS_DOC},
        {"size", ATTR_INT, "<stored>", 1, SIZE_DOC},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
    }, INIT_DEFAULT, "Fashion-MNIST (IDX files, optionally gzipped)"},
    {"mnist", OP_COUNT, 1, 0, 0, 5, {
        {"path", ATTR_STRING, "\"/usr/share/datasets/mnist\"", 0, "directory of the IDX files"},
        {"channels", ATTR_INT, "1", 1, CHANNELS_DOC},
        {"size", ATTR_INT, "<stored>", 1, SIZE_DOC},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
    }, INIT_DEFAULT, "MNIST digits (IDX files)"},
    {"idx", OP_COUNT, 1, 0, 0, 5, {
        {"path", ATTR_STRING, NULL, 0, "directory of the IDX files"},
        {"channels", ATTR_INT, "1", 1, CHANNELS_DOC},
        {"size", ATTR_INT, "<stored>", 1, SIZE_DOC},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
    }, INIT_DEFAULT, "any dataset in the MNIST IDX layout"},
    /* data sources: arrays, CIFAR, image folders */
    {"npy", OP_COUNT, 2, 0, 0, 6, {
        {"path", ATTR_STRING, NULL, 0, "training images, [N, C, H, W] or [N, H, W], uint8 or float32"},
        {"labels", ATTR_STRING, NULL, 0, "training labels, [N], an integer dtype"},
        {"test", ATTR_STRING, "none", 0, "test images (with test_labels)"},
        {"test_labels", ATTR_STRING, "none", 0, "test labels"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
    }, INIT_DEFAULT, "NumPy arrays, memory-mapped"},
    {"cifar10", OP_COUNT, 1, 0, 0, 3, {
        {"path", ATTR_STRING, NULL, 0, "directory of data_batch_1.bin .. data_batch_5.bin, test_batch.bin"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
    }, INIT_DEFAULT, "CIFAR-10, binary version"},
    {"cifar100", OP_COUNT, 1, 0, 0, 4, {
        {"path", ATTR_STRING, NULL, 0, "directory of train.bin and test.bin"},
        {"label", ATTR_STRING, "fine", 0, "fine (100 classes) or coarse (20)"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
    }, INIT_DEFAULT, "CIFAR-100, binary version"},
    {"images", OP_COUNT, 1, 0, 0, 4, {
        {"path", ATTR_STRING, NULL, 0, "folder with one sub-folder of PNG/JPEG files per class"},
        {"test", ATTR_STRING, "none", 0, "the test folder, with the same class folders"},
        {"split", ATTR_FLOAT, "0", 0, SPLIT_DOC},
        {"target", ATTR_STRING, "labels", 0, TARGET_DOC},
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

#define REDUCTION_DOC "mean (over the batch and every position) or sum"
#define TARGET_ATTR \
    {"target", ATTR_VALUE, "none", 0, "an input declared with the target's shape; none: netc adds one named target"}

static const Schema losses[] = {
    {"softmax_cross_entropy", OP_SOFTMAX_XENT, 1, 0, 0, 6, {
        {"value", ATTR_VALUE, NULL, 0, "logits [C] or [C, positions...]; the target is a class index per position"},
        {"weight", ATTR_FLOATS, "none", 0, "a weight per class; mean divides by the weights of the counted targets"},
        {"ignore_index", ATTR_INT, "none", INT_MIN, "targets of this class count for nothing"},
        {"label_smoothing", ATTR_FLOAT, "0", 0, "in [0, 1]: the target is (1-e) one-hot + e/C"},
        {"reduction", ATTR_REDUCTION, "mean", 0, REDUCTION_DOC},
        TARGET_ATTR,
    }, INIT_DEFAULT, "softmax over classes then cross-entropy"},
    {"mse", OP_MSE, 1, 0, 0, 3, {
        {"value", ATTR_VALUE, NULL, 0, "prediction; the target has its shape"},
        {"reduction", ATTR_REDUCTION, "mean", 0, REDUCTION_DOC},
        TARGET_ATTR,
    }, INIT_DEFAULT, "squared error (pred - target)^2"},
    /* losses (issue 8) */
    {"nll", OP_NLL, 1, 0, 0, 5, {
        {"value", ATTR_VALUE, NULL, 0, "log-probabilities [C] or [C, positions...]; the target is a class index"},
        {"weight", ATTR_FLOATS, "none", 0, "a weight per class; mean divides by the weights of the counted targets"},
        {"ignore_index", ATTR_INT, "none", INT_MIN, "targets of this class count for nothing"},
        {"reduction", ATTR_REDUCTION, "mean", 0, REDUCTION_DOC},
        TARGET_ATTR,
    }, INIT_DEFAULT, "negative log-likelihood -value[target]"},
    {"bce_with_logits", OP_BCE_LOGITS, 1, 0, 0, 4, {
        {"value", ATTR_VALUE, NULL, 0, "logits; the target (probabilities in [0, 1]) has its shape"},
        {"pos_weight", ATTR_FLOATS, "none", 0, "a weight of positive targets per channel"},
        {"reduction", ATTR_REDUCTION, "mean", 0, REDUCTION_DOC},
        TARGET_ATTR,
    }, INIT_DEFAULT, "sigmoid then binary cross-entropy"},
    {"l1", OP_L1, 1, 0, 0, 3, {
        {"value", ATTR_VALUE, NULL, 0, "prediction; the target has its shape"},
        {"reduction", ATTR_REDUCTION, "mean", 0, REDUCTION_DOC},
        TARGET_ATTR,
    }, INIT_DEFAULT, "absolute error |pred - target|"},
    {"smooth_l1", OP_SMOOTH_L1, 1, 0, 0, 4, {
        {"value", ATTR_VALUE, NULL, 0, "prediction; the target has its shape"},
        {"beta", ATTR_FLOAT, "1", 0, "at least 0: squared below beta, absolute above (0 is l1)"},
        {"reduction", ATTR_REDUCTION, "mean", 0, REDUCTION_DOC},
        TARGET_ATTR,
    }, INIT_DEFAULT, "Huber-like error: 0.5 d^2 / beta below beta, |d| - beta/2 above"},
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
    "train", OP_COUNT, 0, 0, 0, 13, {
        {"data", ATTR_DATA, "fashion_mnist", 0, "the dataset"},
        {"loss", ATTR_LOSS, NULL, 0, "the loss and the value it scores"},
        {"optimizer", ATTR_OPTIM, "sgd", 0, "the optimiser and its settings"},
        {"batch", ATTR_INT, "64", 1, "samples per step"},
        {"epochs", ATTR_INT, "10", 1, "passes over the training set"},
        {"seed", ATTR_INT, "1", 0, "seed of the weight initialisation and shuffling"},
        {"init", ATTR_INIT, "he_uniform", 0, "default weight initialiser"},
        {"schedule", ATTR_SCHEDULE, "constant", 0, "learning-rate schedule, stepped per epoch"},
        /* optimisers */
        {"clip_norm", ATTR_FLOAT, "none", 0, "clip the gradients to this global L2 norm, > 0"},
        {"warmup", ATTR_INT, "0", 0, "epochs of linear learning-rate warm-up, stepped per batch"},
        {"freeze", ATTR_LAYERS, "[]", 0, "layers whose parameters are never updated"},
        {"lr_mult", ATTR_LR_MULTS, "[]", 0, "per-layer factors of the learning rate"},
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

/* convolution forms */
const Schema *schema_forms(int *n)
{
    *n = (int)(sizeof forms / sizeof forms[0]);
    return forms;
}

const Schema *schema_find_form(const char *name)
{
    int n;
    const Schema *rows = schema_forms(&n);
    return schema_lookup(rows, n, name);
}

bool schema_is_form(const Schema *s)
{
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (s == &forms[i])
            return true;
    return false;
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
