#!/usr/bin/python3
"""Generate the PyTorch reference data for netc's op tests.

Run from anywhere:  /usr/bin/python3 tests/reference/gen.py

Every case is one row of CASES: a name (the same as tests/ops/<name>.net),
per-sample input shapes, the PyTorch layers (held under the labels the .net
file gives them, so parameter names match netc's "c.weight", "c.bias"), the
forward function, and how the input values are drawn.  For each case the
script writes tests/reference/<name>/ (see README.md beside this file for
the file conventions the harness relies on).

The references are computed in float64 from float32 inputs and parameters,
then stored as float32, so they do not depend on PyTorch's float32 kernels,
the thread count or the machine: rerunning rewrites identical files.

Before writing a case the script runs, in float32, the same central
finite-difference check that tests/op_harness.c runs, on every element of
every input and parameter, at half the harness tolerance.  Data whose
finite differences straddle a kink (relu at 0, a max-pool tie) would make
the harness fail for reasons that are not netc bugs; such data is redrawn
from the next seed.
"""
import copy
import os
import shutil
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OPS_DIR = os.path.join(os.path.dirname(HERE), "ops")
BATCH = 2

# Must match tests/op_harness.c.
FD_EPS = 1e-2
FD_RTOL = 1e-2   # |fd - g| <= FD_ATOL + FD_RTOL * |g|
FD_ATOL = 2e-3


class Net(nn.Module):
    """Layers under their netc labels plus a forward function over them."""

    def __init__(self, fwd, **layers):
        super().__init__()
        for name, layer in layers.items():
            setattr(self, name, layer)
        self._fwd = fwd

    def forward(self, x):
        return self._fwd(self, x)


class Case:
    def __init__(self, name, shape, build, loss=None, data="normal", classes=None,
                 loss_fn=None, target=None, infer=False, state=None):
        self.name = name
        self.shape = shape        # per-sample shape of input x
        self.build = build        # () -> Net
        self.loss = loss          # None, "softmax_cross_entropy" or "mse"
        self.data = data          # "normal", "spaced" or "wide" (see draw_input)
        self.classes = classes    # loss cases: number of classes
        self.loss_fn = loss_fn    # (y, target) -> loss; overrides `loss`
        self.target = target      # with loss_fn: (y, gen) -> target (see LOSS_TARGETS)
        self.infer = infer        # also write infer.out: the output in eval mode
        self.state = state or {}  # netc state tensors PyTorch lacks: name -> (value, next)


def same_pad(size, k, s, d=1):
    """netc's pad=same for one axis: (lo, hi), the extra pixel on the high side."""
    o = -(-size // s)
    total = max((o - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv(cin, cout, k, **kw):
    return nn.Conv2d(cin, cout, k, **kw)


# Losses (issue 8): each case's loss as torch.nn.functional computes it, and
# its target.  Class weights and pos_weight are created in y's dtype so the
# float64 reference stays float64.

def xent(**kw):
    w = kw.pop("weight", None)
    return lambda y, t: F.cross_entropy(
        y, t.long(), weight=None if w is None else torch.tensor(w, dtype=y.dtype), **kw)


def nll(**kw):
    w = kw.pop("weight", None)
    return lambda y, t: F.nll_loss(
        y, t.long(), weight=None if w is None else torch.tensor(w, dtype=y.dtype), **kw)


def bce(pos_weight=None, **kw):
    def f(y, t):
        pw = None
        if pos_weight is not None:
            # one per channel: [C] for [N, C] logits, [C, 1, ...] for [N, C, ...]
            pw = torch.tensor(pos_weight, dtype=y.dtype).reshape((-1,) + (1,) * (y.dim() - 2))
        return F.binary_cross_entropy_with_logits(y, t, pos_weight=pw, **kw)
    return f


def class_target(ignore=None, every=None):
    """Class indices of y's shape without the class axis, as floats; with
    ignore, every `every`-th position (offset by the seed) holds it."""
    def draw(y, gen):
        shape = (y.shape[0],) + tuple(y.shape[2:])
        t = torch.randint(0, y.shape[1], shape, generator=gen)
        if ignore is not None:
            flat = t.view(-1)
            start = int(torch.randint(0, every, (1,), generator=gen))
            flat[start::every] = ignore
        return t.float()
    return draw


def prob_target(y, gen):
    return torch.rand(y.shape, generator=gen)


def normal_target(y, gen):
    return torch.randn(y.shape, generator=gen)


def prelu(n):
    """nn.PReLU with slopes drawn in [0.1, 0.5), not the constant 0.25 that
    would hide a per-channel indexing bug."""
    p = nn.PReLU(n)
    with torch.no_grad():
        p.weight.copy_(0.1 + 0.4 * torch.rand(n))
    return p


CASES = [
    Case("conv_basic", (3, 7, 7),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 3))),
    # 32 output channels over 12x12 pixels: the unfold in the GEMM's panel layout
    Case("conv_wide", (2, 12, 12),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 32, 3, padding=1))),
    Case("conv_stride2", (3, 7, 7),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 3, stride=2))),
    # pad=[top, bottom, left, right] = [0, 1, 2, 1]; F.pad takes (left, right, top, bottom)
    Case("conv_pad_asym", (3, 7, 7),
         lambda: Net(lambda m, x: m.c(F.pad(x, (2, 1, 0, 1))), c=conv(3, 4, 3))),
    # 8x8, k 3, s 2: output 4x4 needs one pixel of padding, on the high side
    Case("conv_same_stride2", (3, 8, 8),
         lambda: Net(lambda m, x: m.c(F.pad(x, same_pad(8, 3, 2) + same_pad(8, 3, 2))),
                     c=conv(3, 4, 3, stride=2))),
    Case("conv_dilation2", (3, 9, 9),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 3, dilation=2, padding=1))),
    Case("conv_groups2", (4, 7, 7),
         lambda: Net(lambda m, x: m.c(x), c=conv(4, 6, 3, groups=2, padding=1))),
    # depthwise with channel multiplier 2
    Case("conv_depthwise", (3, 7, 7),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 6, 3, groups=3, padding=1))),
    Case("conv_1x1", (3, 5, 5),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 1))),
    # GEMM blocking: K = 401 input channels (k blocks of the L1 size with a
    # shorter last one), 17 output channels (not a multiple of the row
    # block), 25 pixels (column tails)
    Case("gemm_kblock_1x1", (401, 5, 5),
         lambda: Net(lambda m, x: m.c(x), c=conv(401, 17, 1))),
    # K = 24*9 = 216 over a panel unfold of 144 pixels, 40 output channels
    Case("gemm_kblock_panel", (24, 12, 12),
         lambda: Net(lambda m, x: m.c(x), c=conv(24, 40, 3, padding=1))),
    # the weight gradient's GEMM over P = 400 pixels in k blocks (Og 32)
    Case("gemm_kblock_dw", (3, 20, 20),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 32, 3, padding=1))),
    # dense_dx's GEMM over K = 260 units, N = 37 inputs
    Case("gemm_kblock_dense", (37,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(37, 260))),
    Case("conv_rect_3x1", (3, 7, 6),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, (3, 1)))),
    Case("conv_rect_1x3", (3, 7, 6),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, (1, 3)))),
    Case("conv_nobias", (3, 7, 7),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 3, bias=False))),
    Case("conv_k5_pad2", (3, 8, 8),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 5, padding=2))),
    Case("conv1d", (3, 11),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv1d(3, 4, 3, padding=1))),
    Case("conv3d", (2, 4, 5, 5),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv3d(2, 3, 3, padding=1))),
    # the direct micro-kernel's tails: 7 output channels, rows of 19, 13 rows
    Case("conv_direct_tails", (3, 13, 19),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 7, 3, padding=1))),
    # AlexNet conv1's geometry, small: the phase-split input of stride 4
    Case("conv_stride4_k11", (3, 23, 47),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 5, 11, stride=4, padding=2))),
    # strided layers in the direct kernel's flat form: the copy splits rows
    # into stride_h phases as it splits columns, output rows wq apart (rows
    # of 17 at strides 2 x 3 with a dilated width; a depthwise plane of 7
    # columns, narrower than a vector, at stride 2)
    Case("conv_flat_stride", (8, 15, 53),
         lambda: Net(lambda m, x: m.c(x), c=conv(8, 12, 3, stride=(2, 3), padding=1, dilation=(1, 2)))),
    Case("conv_flat_stride_dw", (16, 14, 14),
         lambda: Net(lambda m, x: m.c(x), c=conv(16, 16, 3, stride=2, padding=1, groups=16))),
    Case("conv_dil2_wide", (2, 11, 21),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 3, 3, dilation=2, padding=2))),
    # rows of 20 and 22 wider than a vector: the direct kernel's flat form
    # (one long row at the input's pitch) when the row tiles' tail costs more
    Case("conv_flat_rows", (8, 9, 20),
         lambda: Net(lambda m, x: m.c(x), c=conv(8, 20, 3, padding=1))),
    Case("conv_flat_dil2", (12, 10, 22),
         lambda: Net(lambda m, x: m.c(x), c=conv(12, 24, 3, dilation=2, padding=2))),
    # the weight gradient's row tiles (16 output channels): 7 rows of 48
    # pixels at 432 unfolded rows are a tile of 6 rows and one of 1 on a
    # 2 MiB L2, and the depth loop of a 3D layer
    Case("conv_dw_tiles", (48, 7, 48),
         lambda: Net(lambda m, x: m.c(x), c=conv(48, 16, 3, padding=1))),
    Case("conv3d_dw_tiles", (2, 4, 6, 19),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv3d(2, 16, 3, padding=1))),
    # the direct weight-gradient kernel (output channels per group a multiple
    # of 16): stride 3 through the phase-split input with a row tail of 5
    # (75 rows); a column tail (48 channels: blocks of 32 and 16) with
    # dilation; two groups of 16
    Case("conv_dw_strided", (3, 17, 19),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 32, 5, stride=3, padding=2))),
    Case("conv_dw_coltail", (4, 9, 11),
         lambda: Net(lambda m, x: m.c(x), c=conv(4, 48, 3, dilation=2, padding=2))),
    Case("conv_dw_grouped", (4, 8, 8),
         lambda: Net(lambda m, x: m.c(x), c=conv(4, 32, 3, padding=1, groups=2))),
    Case("conv3d_wide", (2, 4, 6, 19),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv3d(2, 5, 3, padding=1))),
    # depthwise with channel multiplier 2, and plain depthwise with a row tail
    Case("conv_depthwise_mult", (4, 9, 18),
         lambda: Net(lambda m, x: m.c(x), c=conv(4, 8, 3, groups=4, padding=1))),
    Case("conv_depthwise_rows", (3, 10, 20),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 3, 3, groups=3, padding=1))),
    # the depthwise weight gradient (lower_direct.c, dwise_dw): a 7x7 kernel
    # (49 taps: passes of 29 taps with 32 vector registers, 13 with 16);
    # 3D in the flat form (zeros between the rows and depth planes of dy's
    # copy) with a dilated width; 3D strided, each output row in whole
    # vectors, with channel multiplier 2
    Case("conv_depthwise_k7", (4, 12, 21),
         lambda: Net(lambda m, x: m.c(x), c=conv(4, 4, 7, groups=4, padding=3))),
    Case("conv3d_depthwise", (4, 5, 6, 19),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv3d(4, 4, 3, groups=4, padding=(1, 1, 2), dilation=(1, 1, 2)))),
    Case("conv3d_depthwise_strided", (3, 5, 7, 18),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv3d(3, 6, 3, groups=3, stride=(2, 1, 2), padding=1))),
    # a kernel wider than the direct micro-kernel unrolls: its kw loop
    Case("conv1d_k17", (2, 40),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv1d(2, 3, 17, padding=8, dilation=2))),
    # padding beyond the kernel: the input gradient crops dy
    Case("conv_pad3_k3", (2, 6, 17),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 4, 3, padding=3))),
    Case("maxpool2", (3, 6, 6),
         lambda: Net(lambda m, x: F.max_pool2d(x, 2)), data="spaced"),
    Case("maxpool3_s2", (3, 7, 7),
         lambda: Net(lambda m, x: F.max_pool2d(x, 3, stride=2)), data="spaced"),
    Case("maxpool_pad1", (3, 6, 6),
         lambda: Net(lambda m, x: F.max_pool2d(x, 3, stride=2, padding=1)), data="spaced"),
    Case("avgpool2", (3, 6, 6),
         lambda: Net(lambda m, x: F.avg_pool2d(x, 2))),
    Case("avgpool3_s2_p1", (3, 7, 7),
         lambda: Net(lambda m, x: F.avg_pool2d(x, 3, stride=2, padding=1,
                                               count_include_pad=True))),
    Case("maxpool3d", (2, 4, 4, 4),
         lambda: Net(lambda m, x: F.max_pool3d(x, 2)), data="spaced"),
    Case("dense_basic", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5))),
    Case("dense_nobias", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5, bias=False))),
    Case("flatten_dense", (2, 5, 5),
         lambda: Net(lambda m, x: m.d(torch.flatten(m.c(x), 1)),
                     c=conv(2, 3, 3), d=nn.Linear(27, 4))),
    # on the input itself, drawn away from 0, so no finite difference crosses the kink
    Case("relu_input", (3, 5, 5),
         lambda: Net(lambda m, x: F.relu(x)), data="spaced"),
    Case("tanh_conv", (3, 6, 6),
         lambda: Net(lambda m, x: torch.tanh(m.c(x)), c=conv(3, 4, 3))),
    Case("sigmoid_conv", (3, 6, 6),
         lambda: Net(lambda m, x: torch.sigmoid(m.c(x)), c=conv(3, 4, 3))),
    # softmax over channels at every pixel
    Case("softmax_conv", (3, 6, 6),
         lambda: Net(lambda m, x: torch.softmax(m.c(x), dim=1), c=conv(3, 4, 3))),
    Case("concat_branches", (3, 6, 6),
         lambda: Net(lambda m, x: torch.cat([m.c(x), m.d(x)], dim=1),
                     c=conv(3, 4, 3, padding=1), d=conv(3, 2, 1))),
    Case("add_residual", (3, 6, 6),
         lambda: Net(lambda m, x: x + m.c(x), c=conv(3, 3, 3, padding=1))),
    # epilogue fusion: a residual add and relus in the convolutions, and
    # activation gradients in the conv_dx and dense_dx before them
    Case("fuse_resblock", (3, 6, 6),
         lambda: Net(lambda m, x: (lambda h: m.c(torch.tanh(m.b(torch.sigmoid(m.a(h))) + h)))(
             torch.tanh(m.s(x))),
                     s=conv(3, 4, 3, padding=1), a=conv(4, 4, 3, padding=1),
                     b=conv(4, 4, 3, padding=1), c=conv(4, 3, 3, padding=1))),
    Case("fuse_act_grads", (3, 6, 6),
         lambda: Net(lambda m, x: m.f(F.leaky_relu(m.e(torch.flatten(torch.tanh(m.d(torch.sigmoid(m.c(
             F.elu(m.b(F.softplus(m.a(x), beta=2, threshold=3))))))), 1)), 0.2)),
                     a=conv(3, 4, 3, padding=1), b=conv(4, 4, 3, padding=1), c=conv(4, 4, 1),
                     d=conv(4, 2, 3, padding=1), e=nn.Linear(72, 8), f=nn.Linear(8, 5))),
    Case("fuse_pool_grads", (2, 7, 7),
         lambda: Net(lambda m, x: m.d(torch.flatten(F.max_pool2d(torch.sigmoid(m.b(
             F.max_pool2d(torch.tanh(m.a(x)), 3, stride=2, padding=1))), 2), 1)),
             a=conv(2, 3, 3, padding=1), b=conv(3, 4, 1), d=nn.Linear(16, 5)),
         loss="softmax_cross_entropy", classes=5),
    Case("loss_xent", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5)),
         loss="softmax_cross_entropy", classes=5),
    Case("loss_mse", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 4)),
         loss="mse", classes=4),
    Case("mini_lenet", (1, 6, 6),
         lambda: Net(lambda m, x: m.e(F.relu(m.d(torch.flatten(
             F.max_pool2d(F.relu(m.c(x)), 2), 1)))),
             c=conv(1, 2, 3), d=nn.Linear(8, 6), e=nn.Linear(6, 5)),
         loss="softmax_cross_entropy", classes=5),
    # losses (issue 8): class weights, ignore_index, label smoothing and
    # reductions, on [C] and per-position [C, H, W] / [C, L] scores
    Case("loss_xent_weight", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5)),
         loss_fn=xent(weight=[0.5, 2.0, 1.0, 3.0, 0.25]), target=class_target()),
    Case("loss_xent_smooth_sum", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5)),
         loss_fn=xent(label_smoothing=0.2, reduction="sum"), target=class_target()),
    Case("loss_xent_seg", (3, 5, 3),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 4, 1)),
         loss_fn=xent(weight=[1.0, 0.5, 2.0, 1.5], ignore_index=-100, label_smoothing=0.1),
         target=class_target(ignore=-100, every=4)),
    Case("loss_xent_seg1d_sum", (3, 7),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv1d(3, 3, 3, padding=1)),
         loss_fn=xent(ignore_index=2, label_smoothing=0.3, reduction="sum"),
         target=class_target()),
    Case("loss_nll_seg", (3, 4, 5),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 3, 1)),
         loss_fn=nll(weight=[2.0, 0.5, 1.25], ignore_index=1), target=class_target()),
    # the target declared as an input of the .net file (target=mask)
    Case("loss_nll_target", (2, 3, 4),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 3, 1)),
         loss_fn=nll(ignore_index=0, reduction="sum"), target=class_target()),
    Case("loss_nll_sum", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 4)),
         loss_fn=nll(reduction="sum"), target=class_target()),
    Case("loss_bce", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 4)),
         loss_fn=bce(pos_weight=[1.0, 3.0, 0.5, 2.0]), target=prob_target),
    Case("loss_bce_seg_sum", (2, 4, 3),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 3, 1)),
         loss_fn=bce(pos_weight=[2.0, 0.5, 1.5], reduction="sum"), target=prob_target),
    Case("loss_bce_plain", (2, 5),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv1d(2, 3, 3)),
         loss_fn=bce(), target=prob_target),
    Case("loss_mse_sum", (2, 3, 3),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 3, 1)),
         loss_fn=lambda y, t: F.mse_loss(y, t, reduction="sum"), target=normal_target),
    Case("loss_l1", (2, 4, 3),
         lambda: Net(lambda m, x: m.c(x), c=conv(2, 3, 1)),
         loss_fn=lambda y, t: F.l1_loss(y, t), target=normal_target),
    Case("loss_smooth_l1", (6,),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5)),
         loss_fn=lambda y, t: F.smooth_l1_loss(y, t, beta=0.5), target=normal_target),
    Case("loss_smooth_l1_sum", (2, 5),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv1d(2, 3, 1)),
         loss_fn=lambda y, t: F.smooth_l1_loss(y, t, reduction="sum"), target=normal_target),
    # activations
    Case("act_leaky_relu", (3, 5, 5),
         lambda: Net(lambda m, x: F.leaky_relu(x, 0.2)), data="spaced"),
    Case("act_prelu_channels", (3, 5, 5),
         lambda: Net(lambda m, x: m.c(x), c=prelu(3)), data="spaced"),
    Case("act_prelu_one", (4, 5, 3),
         lambda: Net(lambda m, x: m.c(x), c=prelu(1)), data="spaced"),
    Case("act_prelu_features", (6,),
         lambda: Net(lambda m, x: m.c(m.d(x)), d=nn.Linear(6, 5), c=prelu(5))),
    Case("act_elu", (3, 5, 4),
         lambda: Net(lambda m, x: F.elu(x, alpha=0.7)), data="spaced"),
    Case("act_selu", (2, 5, 3),
         lambda: Net(lambda m, x: F.selu(x)), data="spaced"),
    Case("act_softplus", (3, 5, 5),
         lambda: Net(lambda m, x: F.softplus(x, beta=2, threshold=3))),
    Case("act_hard_sigmoid", (3, 5, 5),
         lambda: Net(lambda m, x: F.hardsigmoid(x)), data="wide"),
    Case("act_hard_swish", (3, 5, 5),
         lambda: Net(lambda m, x: F.hardswish(x)), data="wide"),
    Case("act_relu6", (3, 5, 5),
         lambda: Net(lambda m, x: F.relu6(x)), data="wide"),
    Case("act_clip", (3, 5, 5),
         lambda: Net(lambda m, x: torch.clamp(x, -1.5, 2)), data="wide"),
    Case("act_log_softmax", (3, 5, 5),
         lambda: Net(lambda m, x: F.log_softmax(m.c(x), dim=1), c=conv(3, 4, 3))),
    Case("act_log_softmax_last", (2, 3, 5),
         lambda: Net(lambda m, x: F.log_softmax(m.c(x), dim=-1), c=conv(2, 3, 1))),
    Case("act_softmax_axis1", (3, 4, 5),
         lambda: Net(lambda m, x: torch.softmax(m.c(x), dim=2), c=conv(3, 2, 1))),
    # element-wise arithmetic with broadcasting
    Case("arith_mul_channel", (3, 5, 4),
         lambda: Net(lambda m, x: m.c(x) * F.avg_pool2d(x, (5, 4)), c=conv(3, 3, 1))),
    Case("arith_sub_channel", (3, 5, 4),
         lambda: Net(lambda m, x: F.avg_pool2d(x, (5, 4)) - m.c(x), c=conv(3, 3, 1))),
    Case("arith_add_last", (3, 5, 4),
         # netc broadcasts per sample: [N, 4] is [N, 1, 1, 4] here
         lambda: Net(lambda m, x: m.c(x) + m.e(torch.flatten(x, 1))[:, None, None, :] + x,
                     c=conv(3, 3, 1), e=nn.Linear(60, 4))),
    Case("arith_mul_same", (2, 5, 3),
         lambda: Net(lambda m, x: m.c(x) * x, c=conv(2, 2, 1))),
    Case("arith_add_both", (3, 5, 4),
         lambda: Net(lambda m, x: F.avg_pool2d(x, (5, 1)) + m.c(x), c=conv(3, 1, (1, 4)))),
    Case("arith_mul_both", (3, 5, 4),
         lambda: Net(lambda m, x: m.c(x) * F.avg_pool2d(x, (5, 1)), c=conv(3, 1, (1, 4)))),
    # pooling and data movement
    Case("maxpool_dil2", (3, 9, 8),
         lambda: Net(lambda m, x: F.max_pool2d(x, 3, stride=2, padding=1, dilation=2)), data="spaced"),
    Case("maxpool_ceil", (3, 8, 7),
         lambda: Net(lambda m, x: F.max_pool2d(x, 3, stride=2, ceil_mode=True)), data="spaced"),
    # padding beyond PyTorch's limit: explicit -inf padding, then no padding
    Case("maxpool_bigpad", (2, 7, 6),
         lambda: Net(lambda m, x: F.max_pool2d(F.pad(x, (0, 2, 2, 1), value=-float("inf")), 3, stride=2)),
         data="spaced"),
    Case("avgpool_ceil_exclude", (3, 7, 8),
         lambda: Net(lambda m, x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                               count_include_pad=False))),
    Case("avgpool_ceil_include", (3, 7, 7),
         lambda: Net(lambda m, x: F.avg_pool2d(x, 2, stride=2, padding=1, ceil_mode=True))),
    # pad=[2, 1] with count_include_pad: the mean of the zero-padded input
    Case("avgpool1d_asym", (3, 11),
         lambda: Net(lambda m, x: F.avg_pool1d(F.pad(x, (2, 1)), 4, stride=3))),
    Case("global_avgpool", (3, 5, 7),
         lambda: Net(lambda m, x: F.adaptive_avg_pool2d(x, 1))),
    Case("global_maxpool", (3, 5, 7),
         lambda: Net(lambda m, x: F.adaptive_max_pool2d(x, 1)), data="spaced"),
    Case("adaptive_avgpool", (3, 7, 9),
         lambda: Net(lambda m, x: F.adaptive_avg_pool2d(x, (3, 4)))),
    Case("adaptive_avgpool3d", (2, 5, 4, 6),
         lambda: Net(lambda m, x: F.adaptive_avg_pool3d(x, (2, 3, 4)))),
    # netc's pad lists are [top, bottom, left, right]; F.pad's (left, right, top, bottom)
    Case("pad_constant", (3, 5, 6),
         lambda: Net(lambda m, x: F.pad(x, (0, 3, 1, 2), value=0.5))),
    Case("pad_reflect", (3, 5, 6),
         lambda: Net(lambda m, x: F.pad(x, (3, 0, 2, 1), mode="reflect"))),
    Case("pad_replicate", (3, 5, 6),
         lambda: Net(lambda m, x: F.pad(x, (2, 2, 1, 3), mode="replicate"))),
    Case("pad_reflect1d", (3, 7),
         lambda: Net(lambda m, x: F.pad(x, (3, 2), mode="reflect"))),
    Case("upsample_nearest", (3, 4, 5),
         lambda: Net(lambda m, x: F.interpolate(x, scale_factor=(2, 3), mode="nearest"))),
    Case("upsample_nearest_size", (3, 4, 5),
         lambda: Net(lambda m, x: F.interpolate(x, size=(7, 3), mode="nearest"))),
    Case("upsample_nearest3d", (2, 3, 2, 3),
         lambda: Net(lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest"))),
    Case("upsample_bilinear", (3, 4, 5),
         lambda: Net(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))),
    Case("upsample_bilinear_size", (3, 4, 5),
         lambda: Net(lambda m, x: F.interpolate(x, size=(7, 3), mode="bilinear", align_corners=False))),
    Case("upsample_bilinear_align", (3, 4, 5),
         lambda: Net(lambda m, x: F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=True))),
    Case("pixel_shuffle", (8, 3, 5),
         lambda: Net(lambda m, x: F.pixel_shuffle(x, 2))),
    Case("pixel_unshuffle", (3, 6, 4),
         lambda: Net(lambda m, x: F.pixel_unshuffle(x, 2))),
    # ONNX DepthToSpace (DCR) and SpaceToDepth, written as reshape + permute
    Case("depth_to_space", (8, 3, 5),
         lambda: Net(lambda m, x: x.reshape(BATCH, 2, 2, 2, 3, 5).permute(0, 3, 4, 1, 5, 2)
                     .reshape(BATCH, 2, 6, 10))),
    Case("space_to_depth", (3, 6, 4),
         lambda: Net(lambda m, x: x.reshape(BATCH, 3, 3, 2, 2, 2).permute(0, 3, 5, 1, 2, 4)
                     .reshape(BATCH, 12, 3, 2))),
    Case("channel_shuffle", (6, 3, 5),
         lambda: Net(lambda m, x: x.reshape(BATCH, 3, 2, 3, 5).transpose(1, 2).reshape(BATCH, 6, 3, 5))),
    Case("slice_concat", (5, 4, 6),
         lambda: Net(lambda m, x: torch.cat([x[:, :, 1:4], x[:, :, 0:2]], dim=2))),
    Case("reshape_conv", (2, 6, 5),
         lambda: Net(lambda m, x: m.c(x.reshape(BATCH, 3, 4, 5)), c=conv(3, 2, 3))),
    Case("concat_width", (3, 5, 6),
         lambda: Net(lambda m, x: torch.cat([m.c(x), m.d(x)], dim=3),
                     c=conv(3, 2, (1, 3)), d=conv(3, 2, 1))),
    Case("upsample_nearest1d", (3, 5),
         lambda: Net(lambda m, x: F.interpolate(x, size=8, mode="nearest"))),
    Case("pad_replicate3d", (2, 3, 4, 3),
         lambda: Net(lambda m, x: F.pad(x, (1, 1, 0, 2, 1, 0), mode="replicate"))),
    Case("maxpool1d_dil_ceil", (3, 12),
         lambda: Net(lambda m, x: F.max_pool1d(x, 3, stride=2, dilation=2, padding=1, ceil_mode=True)),
         data="spaced"),
    Case("avgpool3d_ceil", (2, 5, 4, 5),
         lambda: Net(lambda m, x: F.avg_pool3d(x, (2, 3, 2), stride=2, padding=(1, 1, 0), ceil_mode=True,
                                               count_include_pad=False))),
    Case("upsample_linear1d", (3, 5),
         lambda: Net(lambda m, x: F.interpolate(x, size=9, mode="linear", align_corners=True))),
    Case("upsample_trilinear", (2, 3, 2, 4),
         lambda: Net(lambda m, x: F.interpolate(x, size=(5, 4, 7), mode="trilinear", align_corners=False))),
    # winograd: odd planes, so F(4x4) and F(2x2) tiles are ragged at the edges
    Case("conv_wino_ragged", (5, 11, 9),
         lambda: Net(lambda m, x: m.c(x), c=conv(5, 6, 3, padding=1))),
    # fft: 5x5 pad 2 with groups on ragged 4x4 tiles; an unpadded 7x7 (input
    # gradient padded by 6); a 1D kernel of 9, pad 4, on ragged tiles of 8
    Case("conv_fft_k5_groups", (4, 13, 11),
         lambda: Net(lambda m, x: m.c(x), c=conv(4, 6, 5, padding=2, groups=2))),
    # planes of many tiles, ragged in both axes: the FFT's columns span
    # several vectors and a fused activation follows the grouped layer
    Case("conv_fft_cols", (4, 20, 30),
         lambda: Net(lambda m, x: m.d(torch.tanh(m.c(x))),
                     c=conv(4, 6, 3, padding=1, groups=2), d=conv(6, 3, 3, padding=1))),
    Case("conv_fft_k7", (3, 15, 12),
         lambda: Net(lambda m, x: m.c(x), c=conv(3, 5, 7))),
    Case("conv1d_fft_k9", (3, 45),
         lambda: Net(lambda m, x: m.c(x), c=nn.Conv1d(3, 4, 9, padding=4))),
    # unpadded then padded: the input gradients are correlations padded by 2 and 1
    Case("conv_wino_chain", (4, 10, 13),
         lambda: Net(lambda m, x: m.b(torch.tanh(m.a(x))),
                     a=conv(4, 6, 3), b=conv(6, 3, 3, padding=1))),
]


def randomize_norm(net, gen):
    """Batch norm layers start from weight 1, bias 0, running mean 0 and
    variance 1; draw them instead, so no term of the formula hides."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                    m.bias.copy_(0.5 * torch.randn(c, generator=gen))
                if m.track_running_stats:
                    m.running_mean.copy_(0.5 * torch.randn(c, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                    m.num_batches_tracked.fill_(3)


def draw_input(case, gen):
    shape = (BATCH,) + case.shape
    if case.data == "normal":
        return torch.randn(shape, generator=gen)
    # "spaced": distinct magnitudes 0.05, 0.075, ... with random signs, in
    # random positions.  Any two values differ by at least 0.025 and none is
    # within 0.05 of 0, so a +-FD_EPS step never reorders a max-pool window
    # or crosses relu's kink.
    # "wide": magnitudes 0.07, 0.12, ..., which stay at least 0.02 from the
    # kinks of hard_sigmoid, hard_swish, relu6 and clip at 0, 1.5, 2, 3 and 6.
    n = int(np.prod(shape))
    perm = torch.randperm(n, generator=gen).double()
    sign = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
    if case.data == "wide":
        return ((0.07 + 0.05 * perm) * sign).reshape(shape).float()
    return ((0.05 + 0.025 * perm) * sign).reshape(shape).float()


def draw_target(case, gen):
    cls = torch.randint(0, case.classes, (BATCH,), generator=gen)
    if case.loss == "softmax_cross_entropy":
        return cls.float()
    return F.one_hot(cls, case.classes).float()


def objective(case, net, x, seed, target):
    """The scalar whose gradient the harness checks: the loss, or sum(y * seed)."""
    y = net(x)
    if case.loss_fn:
        return y, case.loss_fn(y, target)
    if case.loss == "softmax_cross_entropy":
        return y, F.cross_entropy(y, target.long())
    if case.loss == "mse":
        return y, F.mse_loss(y, target)
    return y, (y * seed).sum()


def fd_problems(case, net, x, seed, target):
    """Every element whose float32 central difference misses its float64
    analytic gradient by more than half the harness tolerance."""
    net64 = _clone(net).double()
    x64 = x.double().requires_grad_(True)
    _, obj = objective(case, net64, x64, seed.double(), target.double())
    tensors = [("x", x)] + [(k, p) for k, p in net.named_parameters()]
    grads = torch.autograd.grad(obj, [x64] + list(net64.parameters()))
    bad = []
    with torch.no_grad():
        for (name, t), g in zip(tensors, grads):
            flat, gflat = t.view(-1), g.view(-1)
            for i in range(flat.numel()):
                old = flat[i].item()
                flat[i] = old + FD_EPS
                up = objective(case, net, x, seed, target)[1].double().item()
                flat[i] = old - FD_EPS
                down = objective(case, net, x, seed, target)[1].double().item()
                flat[i] = old
                fd = (up - down) / (2 * FD_EPS)
                an = gflat[i].item()
                if abs(fd - an) > 0.5 * (FD_ATOL + FD_RTOL * abs(an)):
                    bad.append((name, i, fd, an))
    return bad


def _clone(net):
    return copy.deepcopy(net)


def save(d, name, t):
    arr = np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))
    np.save(os.path.join(d, name + ".npy"), arr)


def make_case(case):
    base = zlib.crc32(case.name.encode()) & 0x7FFFFFFF
    for attempt in range(200):
        torch.manual_seed(base + attempt)
        gen = torch.Generator().manual_seed(base + attempt)
        net = case.build()
        randomize_norm(net, gen)
        # biases drawn like weights, never the zeros that would hide a bias bug
        x = draw_input(case, gen)
        if case.loss_fn:
            with torch.no_grad():
                target = case.target(net(x), gen)
            seed = torch.ones(1)
        elif case.loss:
            target = draw_target(case, gen)
            seed = torch.ones(1)
        else:
            target = torch.zeros(1)
            with torch.no_grad():
                seed = torch.randn(net(x).shape, generator=gen)
        # training-mode forwards update running statistics: keep the drawn ones
        state = copy.deepcopy(net.state_dict())
        bad = fd_problems(case, net, x, seed, target)
        net.load_state_dict(state)
        if not bad:
            return net, x, seed, target
        print("  %s: seed %d: %d finite differences near a kink, redrawing"
              % (case.name, base + attempt, len(bad)))
    raise SystemExit("%s: no seed gives kink-free finite differences" % case.name)


def write_case(case):
    net, x, seed, target = make_case(case)
    d = os.path.join(HERE, case.name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)

    for name, b in net.named_buffers():
        save(d, name, b.float())
    for name, (value, after) in case.state.items():
        save(d, name, torch.tensor([float(value)]))
        save(d, "next." + name, torch.tensor([float(after)]))
    if case.infer:
        with torch.no_grad():
            save(d, "infer.out", _clone(net).double().eval()(x.double()))

    # reference values in float64 from the float32 data
    net64 = _clone(net).double()
    x64 = x.double().requires_grad_(True)
    y, obj = objective(case, net64, x64, seed.double(), target.double())
    params = list(net64.named_parameters())
    grads = torch.autograd.grad(obj, [x64] + [p for _, p in params])

    save(d, "x", x)
    for name, p in net.named_parameters():
        save(d, name, p)
    save(d, "seed", seed)
    if case.loss or case.loss_fn:
        save(d, "out", obj.reshape(1))
        save(d, "pred", y)
        save(d, "target", target)
    else:
        save(d, "out", y)
    save(d, "grad.x", grads[0])
    for (name, _), g in zip(params, grads[1:]):
        save(d, "grad." + name, g)
    # the state after the step (training-mode forward: batch statistics)
    for name, b in net64.named_buffers():
        save(d, "next." + name, b.float())
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print("%-18s out %-16s params %-24s %6d bytes"
          % (case.name, list(y.shape), ",".join(n for n, _ in params) or "-", size))


def bn(layer):
    return Net(lambda m, x: m.c(x), c=layer)


def lrn(size, **kw):
    return Net(lambda m, x: m.c(x), c=nn.LocalResponseNorm(size, **kw))


# normalisation and regularisation: batch norm in training mode (batch
# statistics; the running ones updated with momentum) and, with infer=True,
# in eval mode from the drawn running statistics; dropout at p = 0 (the
# masks of p > 0 are netc's own, tested in tests/unit/test_norm.c)
CASES += [
    Case("bn2d", (3, 5, 5), lambda: bn(nn.BatchNorm2d(3)), infer=True),
    Case("bn1d", (3, 7), lambda: bn(nn.BatchNorm1d(3)), infer=True),
    Case("bn3d", (2, 3, 4, 4), lambda: bn(nn.BatchNorm3d(2, eps=1e-3, momentum=0.3)), infer=True),
    Case("bn_noaffine", (3, 5, 5), lambda: bn(nn.BatchNorm2d(3, affine=False)), infer=True),
    Case("bn_notrack", (3, 4, 4), lambda: bn(nn.BatchNorm2d(3, track_running_stats=False)),
         infer=True),
    Case("bn_conv_loss", (2, 6, 6),
         lambda: Net(lambda m, x: m.d(torch.flatten(F.relu(m.b(m.c(x))), 1)),
                     c=conv(2, 3, 3), b=nn.BatchNorm2d(3), d=nn.Linear(48, 4)),
         loss="softmax_cross_entropy", classes=4, infer=True),
    Case("lrn5", (7, 3, 3), lambda: lrn(5, alpha=0.5, beta=0.75, k=2.0)),
    Case("lrn4_1d", (6, 5), lambda: lrn(4, alpha=1.0, beta=0.6, k=1.5)),
    Case("lrn_default", (5, 4, 4), lambda: lrn(3)),
    Case("dropout_p0", (3, 4, 4), lambda: Net(lambda m, x: F.dropout(x, 0.0, training=True)),
         infer=True, state={"c.step": (4, 5)}),
    Case("dropout2d_p0", (3, 4, 4), lambda: Net(lambda m, x: F.dropout2d(x, 0.0, training=True)),
         infer=True, state={"c.step": (0, 1)}),
]


def netc_hash(a, b):
    """netc's X_HASH (loop_hash in compiler/loop/loop.h), in [0, 2^24)."""
    def mix(x):
        x &= 0xFFFFFFFF
        x ^= x >> 16
        x = (x * 0x7FEB352D) & 0xFFFFFFFF
        x ^= x >> 15
        x = (x * 0x846CA68B) & 0xFFFFFFFF
        return x ^ (x >> 16)
    return mix(mix(a) ^ (b & 0xFFFFFFFF)) >> 8


def netc_dropout(name, p, step, shape, channels, seed=1):
    """netc's dropout in training: the layer's key mixes the train seed with
    its name (FNV-1a); unit u (an element, or channel nb*C + c) is kept when
    hash(hash(key, step), u) >= p * 2^24, and scaled by 1/(1-p)."""
    h = (2166136261 ^ seed ^ (seed >> 32)) & 0xFFFFFFFF
    for ch in name.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    k2 = netc_hash(h & 0x7FFFFFFF, step)
    cut = int(np.ceil(float(np.float32(p)) * 2.0 ** 24))
    full = (BATCH,) + shape
    units = BATCH * shape[0] if channels else int(np.prod(full))
    keep = np.array([netc_hash(k2, u) >= cut for u in range(units)], dtype=np.float64)
    if channels:
        keep = np.repeat(keep, int(np.prod(shape[1:])))
    mask = torch.tensor(keep.reshape(full) / (1.0 - float(np.float32(p))))
    return lambda m, x: x * mask.to(x.dtype)


# dropout with p > 0 through both backends: the mask drawn by netc's hash,
# reimplemented above, and the gradient mask * scale * dy
CASES += [
    Case("dropout_p03", (3, 4, 4), lambda: Net(netc_dropout("c", 0.3, 9, (3, 4, 4), False)),
         state={"c.step": (9, 10)}),
    Case("dropout2d_p05", (4, 3, 5), lambda: Net(netc_dropout("c", 0.5, 2, (4, 3, 5), True)),
         state={"c.step": (2, 3)}),
]

# transposed convolution: stride, padding, output_padding, groups, dilation,
# output_size, odd sizes, 1D/2D/3D
CASES += [
    Case("convt2d_s2_groups", (4, 5, 6),
         lambda: Net(lambda m, x: m.c(x), c=nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                               output_padding=1, groups=2))),
    Case("convt1d_dilation", (3, 7),
         lambda: Net(lambda m, x: m.c(x), c=nn.ConvTranspose1d(3, 4, 3, stride=2, padding=2,
                                                               dilation=2, output_padding=1,
                                                               bias=False))),
    Case("convt3d", (2, 3, 4, 3),
         lambda: Net(lambda m, x: m.c(x), c=nn.ConvTranspose3d(2, 3, (2, 3, 2), stride=(2, 1, 2),
                                                               padding=(0, 1, 1)))),
    Case("convt2d_output_size", (3, 4, 5),
         lambda: Net(lambda m, x: m.c(x, output_size=[13, 9]),
                     c=nn.ConvTranspose2d(3, 2, (4, 3), stride=(3, 2), padding=1))),
    # encoder-decoder: the gradient flows through conv_transpose into a conv
    Case("convt_after_conv", (3, 7, 7),
         lambda: Net(lambda m, x: m.t(torch.tanh(m.c(x))), c=conv(3, 4, 3, stride=2),
                     t=nn.ConvTranspose2d(4, 3, 3, stride=2))),
]


def channel_shuffle(x, g):
    n, c = x.shape[:2]
    return x.reshape(n, g, c // g, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


def parts(**convs):
    """A convolution form: its convs under their part names (c.kh.weight, ...)."""
    return nn.ModuleDict(convs)


# convolution forms: the equivalent chains of torch convs, parameters under
# <label>.<part>
CASES += [
    Case("form_separable", (3, 7, 6),
         lambda: Net(lambda m, x: m.c.kw(m.c.kh(x)),
                     c=parts(kh=conv(3, 4, (3, 1), padding=(1, 0)), kw=conv(4, 4, (1, 3), padding=(0, 1))))),
    Case("form_depthwise_separable", (3, 7, 7),
         lambda: Net(lambda m, x: m.c.pointwise(m.c.depthwise(x)),
                     c=parts(depthwise=conv(3, 6, 3, stride=2, padding=1, groups=3),
                             pointwise=conv(6, 5, 1)))),
    Case("form_flattened", (3, 6, 5),
         lambda: Net(lambda m, x: m.c.kw(m.c.kh(m.c.channel(x))),
                     c=parts(channel=conv(3, 4, 1), kh=conv(4, 4, (3, 1), groups=4),
                             kw=conv(4, 4, (1, 3), groups=4)))),
    Case("form_pointwise_grouped", (4, 5, 3),
         lambda: Net(lambda m, x: m.c.pointwise(x), c=parts(pointwise=conv(4, 6, 1, groups=2)))),
    Case("form_shuffled_grouped", (4, 5, 5),
         lambda: Net(lambda m, x: m.c.conv2(channel_shuffle(m.c.conv1(x), 2)),
                     c=parts(conv1=conv(4, 6, 3, padding=1, groups=2),
                             conv2=conv(6, 6, 3, padding=1, groups=2)))),
    # 1D inputs: k on the one spatial axis; no biases
    Case("form_depthwise_separable1d", (3, 9),
         lambda: Net(lambda m, x: m.c.pointwise(m.c.depthwise(x)),
                     c=parts(depthwise=nn.Conv1d(3, 6, 3, stride=2, padding=1, groups=3),
                             pointwise=nn.Conv1d(6, 4, 1)))),
    Case("form_shuffled_grouped1d", (6, 7),
         lambda: Net(lambda m, x: m.c.conv2(channel_shuffle(m.c.conv1(x), 3)),
                     c=parts(conv1=nn.Conv1d(6, 9, 3, groups=3, bias=False),
                             conv2=nn.Conv1d(9, 9, 3, groups=3, bias=False)))),
]

# dense and matmul: dense over the last axis of inputs of rank > 1
CASES += [
    Case("dense_rank2", (3, 6),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(6, 5))),
    Case("dense_rank3_nobias", (2, 3, 7),
         lambda: Net(lambda m, x: m.c(x), c=nn.Linear(7, 4, bias=False))),
    Case("dense_rank2_tanh", (5, 3),
         lambda: Net(lambda m, x: m.d(torch.tanh(m.c(x))),
                     c=nn.Linear(3, 9), d=nn.Linear(9, 2))),
    # matmul: [3, 5] x [5, 4], M, K, N all different; both inputs from x
    Case("matmul_basic", (6, 5),
         lambda: Net(lambda m, x: torch.matmul(x[:, 0:3], m.e(x[:, 1:6])), e=nn.Linear(5, 4))),
    # per sample [2, 4, 4] x [2, 4, 3]: two matrices per sample
    Case("matmul_batched", (2, 4, 3),
         lambda: Net(lambda m, x: torch.matmul(m.c(x), x), c=nn.Linear(3, 4))),
    # [9, 9] x [9, 19]: N and the dot form's k span full vectors and a tail
    Case("matmul_wide", (9, 19),
         lambda: Net(lambda m, x: torch.matmul(m.c(x[:, :, 0:5]), x), c=nn.Linear(5, 9))),
]


def main():
    torch.set_num_threads(1)
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names), "duplicate case names"
    only = sys.argv[1:]
    for case in CASES:
        if not only or case.name in only:
            write_case(case)
    # drop data of cases that left the table
    for entry in sorted(os.listdir(HERE)):
        p = os.path.join(HERE, entry)
        if os.path.isdir(p) and entry not in names and entry != "__pycache__":
            if all(f.endswith(".npy") for f in os.listdir(p)):
                shutil.rmtree(p)
                print("removed stale", entry)
    nets = {f[:-4] for f in os.listdir(OPS_DIR) if f.endswith(".net")} if os.path.isdir(OPS_DIR) else set()
    for n in names:
        if n not in nets:
            print("warning: no tests/ops/%s.net for case %s" % (n, n))
    for n in sorted(nets - set(names)):
        print("warning: tests/ops/%s.net has no reference case" % n)


if __name__ == "__main__":
    main()
