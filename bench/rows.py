"""The layers bench/suite.sh measures, in one table both sides read.

Each row is one layer on one input shape.  For netc, net_text() writes a
one-layer network with an mse train section (so the generated code has a
train entry); bench/layers_torch.py builds the same layer as a torch module.
Shapes are per sample, as in a .net file's input statement.

FLOPs follow one convention for both frameworks (bench/README.md):
  forward            2 * MACs  (MACs: output elements * C/groups * prod(kernel),
                                or in * out for dense; bias adds not counted)
  forward + backward 3 * forward when the layer's input gradient is computed,
                     2 * forward when it is not.  Every row here is a
                     network's first layer, for which netc computes no input
                     gradient, so the torch side runs its input with
                     requires_grad=False and the factor is 2.
The mse loss of the train step is not counted.
"""
from collections import namedtuple
from math import prod

# op: "conv" or "dense"; inp: per-sample input shape; out: output channels or
# units; k/stride/pad/dilation: one integer for every spatial axis.
Row = namedtuple("Row", "name op inp out k stride pad dilation groups")


def conv(name, inp, out, k, stride=1, pad=0, dilation=1, groups=1):
    return Row(name, "conv", tuple(inp), out, k, stride, pad, dilation, groups)


ROWS = [
    conv("conv3x3_64_56", [64, 56, 56], 64, 3, pad=1),
    conv("conv3x3_128_28", [128, 28, 28], 128, 3, pad=1),
    conv("conv1x1_256to64_56", [256, 56, 56], 64, 1),
    conv("lenet_conv1", [1, 28, 28], 6, 5, pad=2),
    conv("lenet_conv2", [6, 14, 14], 16, 5),
    conv("depthwise3x3_128_56", [128, 56, 56], 128, 3, pad=1, groups=128),
    conv("grouped3x3_128_g4_28", [128, 28, 28], 128, 3, pad=1, groups=4),
    conv("dilated3x3_64_56", [64, 56, 56], 64, 3, pad=2, dilation=2),
    conv("conv3d_16_16x32x32", [16, 16, 32, 32], 16, 3, pad=1),
    conv("alexnet_conv1", [3, 224, 224], 64, 11, stride=4, pad=2),
    conv("alexnet_conv2", [64, 27, 27], 192, 5, pad=2),
    Row("dense_4096", "dense", (4096,), 4096, 0, 0, 0, 0, 1),
]

# (mode, batch) of every measurement of a row, in the order they are run.
CONFIGS = [("forward", 1), ("forward", 32), ("train", 32)]

# Whole networks timed through the same driver, each at its (mode, batch)
# configs.  The torch side: bench/lenet_torch.py's LeNet, or torchvision's
# model of the same name (the zoo's networks have torchvision's layers and
# parameter counts, tests/zoo_tv.sh); "train" is one step's forward and
# backward against a cross-entropy loss (labels 0), batch norm on batch
# statistics, no optimiser update on either side.  macs: per sample, as
# `netc check` prints them (the suite checks that it still does); LeNet's:
# conv1 117,600 + conv2 240,000 + dense 48,000 + 10,080 + 840.
Net = namedtuple("Net", "name path inp macs first_layer_macs configs torchvision")
IMAGENET_CONFIGS = [("forward", 1), ("forward", 8), ("train", 8)]
NETS = [
    Net("lenet", "examples/lenet.net", (1, 28, 28), 416520, 117600,
        [("forward", 1), ("forward", 64)], None),
    Net("mobilenet_v2", "examples/zoo/mobilenet_v2.net", (3, 224, 224), 307452384, 10838016,
        IMAGENET_CONFIGS, "mobilenet_v2"),
    Net("resnet18", "examples/zoo/resnet18.net", (3, 224, 224), 1816557056, 118013952,
        IMAGENET_CONFIGS, "resnet18"),
    Net("vgg16", "examples/zoo/vgg16.net", (3, 224, 224), 15470264320, 86704128,
        IMAGENET_CONFIGS, "vgg16"),
]


def net_train_flops(n):
    """One training image's FLOPs: 3x forward, but 2x for the first layer."""
    return 2 * (3 * n.macs - n.first_layer_macs)


def out_shape(r):
    if r.op == "dense":
        return (r.out,)
    spatial = tuple((i + 2 * r.pad - r.dilation * (r.k - 1) - 1) // r.stride + 1
                    for i in r.inp[1:])
    return (r.out,) + spatial


def macs(r):
    """Multiply-accumulates of one sample's forward pass."""
    if isinstance(r, Net):
        return r.macs
    if r.op == "dense":
        return r.inp[0] * r.out
    return prod(out_shape(r)) * (r.inp[0] // r.groups) * r.k ** (len(r.inp) - 1)


TRAIN_FACTOR = 2   # first layer: forward + weight gradient, no input gradient


def flops(r, mode, batch):
    if isinstance(r, Net):
        return (net_train_flops(r) if mode == "train" else 2 * r.macs) * batch
    f = 2 * macs(r) * batch
    return f * TRAIN_FACTOR if mode == "train" else f


def net_text(r):
    """A one-layer netc network for row r, named like the row."""
    if r.op == "dense":
        layer = "dense(%d)" % r.out
    else:
        attrs = ["%d" % r.out, "kernel=%d" % r.k]
        for key, val, default in (("stride", r.stride, 1), ("pad", r.pad, 0),
                                  ("dilation", r.dilation, 1), ("groups", r.groups, 1)):
            if val != default:
                attrs.append("%s=%d" % (key, val))
        layer = "conv(%s)" % ", ".join(attrs)
    return ("# bench/rows.py: %s, generated by bench/suite.sh\n"
            "network %s\n"
            "input x: [%s]\n"
            "x -> layer: %s => y\n"
            "output y\n"
            "train {\n"
            "  loss mse(y)\n"
            "  batch 32\n"
            "}\n") % (r.name, r.name, ", ".join(map(str, r.inp)), layer)


def select(pattern, table=None):
    """The rows (or NETS) whose name matches the regular expression (all for None)."""
    import re
    return [r for r in (ROWS if table is None else table)
            if pattern is None or re.search(pattern, r.name)]


def find(name):
    return next(r for r in ROWS + NETS if r.name == name)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "net":
        sys.stdout.write(net_text(next(r for r in ROWS if r.name == sys.argv[2])))
    else:
        for r in ROWS:
            print("%-22s %-5s in %-16s out %-14s MACs/sample %d"
                  % (r.name, r.op, list(r.inp), list(out_shape(r)), macs(r)))
