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
    def __init__(self, name, shape, build, loss=None, data="normal", classes=None):
        self.name = name
        self.shape = shape        # per-sample shape of input x
        self.build = build        # () -> Net
        self.loss = loss          # None, "softmax_cross_entropy" or "mse"
        self.data = data          # "normal" or "spaced" (see draw_input)
        self.classes = classes    # loss cases: number of classes


def same_pad(size, k, s, d=1):
    """netc's pad=same for one axis: (lo, hi), the extra pixel on the high side."""
    o = -(-size // s)
    total = max((o - 1) * s + d * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv(cin, cout, k, **kw):
    return nn.Conv2d(cin, cout, k, **kw)


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
    # winograd: odd planes, so F(4x4) and F(2x2) tiles are ragged at the edges
    Case("conv_wino_ragged", (5, 11, 9),
         lambda: Net(lambda m, x: m.c(x), c=conv(5, 6, 3, padding=1))),
    # unpadded then padded: the input gradients are correlations padded by 2 and 1
    Case("conv_wino_chain", (4, 10, 13),
         lambda: Net(lambda m, x: m.b(torch.tanh(m.a(x))),
                     a=conv(4, 6, 3), b=conv(6, 3, 3, padding=1))),
]


def draw_input(case, gen):
    shape = (BATCH,) + case.shape
    if case.data == "normal":
        return torch.randn(shape, generator=gen)
    # "spaced": distinct magnitudes 0.05, 0.075, ... with random signs, in
    # random positions.  Any two values differ by at least 0.025 and none is
    # within 0.05 of 0, so a +-FD_EPS step never reorders a max-pool window
    # or crosses relu's kink.
    n = int(np.prod(shape))
    perm = torch.randperm(n, generator=gen).double()
    sign = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
    return ((0.05 + 0.025 * perm) * sign).reshape(shape).float()


def draw_target(case, gen):
    cls = torch.randint(0, case.classes, (BATCH,), generator=gen)
    if case.loss == "softmax_cross_entropy":
        return cls.float()
    return F.one_hot(cls, case.classes).float()


def objective(case, net, x, seed, target):
    """The scalar whose gradient the harness checks: the loss, or sum(y * seed)."""
    y = net(x)
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
        # biases drawn like weights, never the zeros that would hide a bias bug
        x = draw_input(case, gen)
        if case.loss:
            target = draw_target(case, gen)
            seed = torch.ones(1)
        else:
            target = torch.zeros(1)
            with torch.no_grad():
                seed = torch.randn(net(x).shape, generator=gen)
        bad = fd_problems(case, net, x, seed, target)
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
    if case.loss:
        save(d, "out", obj.reshape(1))
        save(d, "pred", y)
        save(d, "target", target)
    else:
        save(d, "out", y)
    save(d, "grad.x", grads[0])
    for (name, _), g in zip(params, grads[1:]):
        save(d, "grad." + name, g)
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print("%-18s out %-16s params %-24s %6d bytes"
          % (case.name, list(y.shape), ",".join(n for n, _ in params) or "-", size))


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
