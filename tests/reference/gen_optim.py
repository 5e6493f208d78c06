#!/usr/bin/python3
"""Generate the torch.optim reference data for netc's optimiser test.

Run from anywhere:  /usr/bin/python3 tests/reference/gen_optim.py

Every case is one row of CASES: a name, the torch.optim constructor and the
netc meta records that describe the same configuration (what netc writes
into a compiled model's description, see runtime/netc_runtime.h).  Three
parameters a [5], b [3] and c [2] (10 floats, in that order) take STEPS
optimiser steps with fixed gradients; a case may also clip the gradients by
their global norm (torch.nn.utils.clip_grad_norm_), scale b's learning rate
(a second param group) and freeze c (left out of the optimiser and the
norm, as a parameter with requires_grad=False is).

For each case the script writes tests/reference/optim/<name>/:
  meta.txt       the train records for netc
  params0.npy    [10]         the initial parameters
  grads.npy      [STEPS, 10]  the gradient given at each step
  params.npy     [STEPS, 10]  the parameters after each step
Unlike the op references these are computed in float32 by PyTorch's own
CPU kernels, as a user's training run would be; tests/runtime/test_optim.c
replays them through netc's runtime.  The data is seeded per case, so
rerunning rewrites the same files on the same PyTorch build.
"""
import os
import shutil
import zlib

import numpy as np
import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim")
STEPS = 5
SIZES = (("a", 5), ("b", 3), ("c", 2))
# Gradient scale per step: a large step then small ones, so AMSGrad's
# running maximum differs from the second moment.
SCALES = (2.0, 0.3, 1.0, 0.1, 1.5)


def sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    return (lambda groups: torch.optim.SGD(groups, lr=lr, momentum=momentum,
                                           dampening=dampening, weight_decay=weight_decay,
                                           nesterov=nesterov, foreach=False),
            "sgd lr=%r momentum=%r dampening=%r weight_decay=%r nesterov=%d"
            % (lr, momentum, dampening, weight_decay, nesterov))


def adagrad(lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    return (lambda groups: torch.optim.Adagrad(groups, lr=lr, lr_decay=lr_decay,
                                               weight_decay=weight_decay,
                                               initial_accumulator_value=initial_accumulator_value,
                                               eps=eps, foreach=False),
            "adagrad lr=%r lr_decay=%r weight_decay=%r initial_accumulator_value=%r eps=%r"
            % (lr, lr_decay, weight_decay, initial_accumulator_value, eps))


def rmsprop(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    return (lambda groups: torch.optim.RMSprop(groups, lr=lr, alpha=alpha, eps=eps,
                                               weight_decay=weight_decay, momentum=momentum,
                                               centered=centered, foreach=False),
            "rmsprop lr=%r alpha=%r eps=%r weight_decay=%r momentum=%r centered=%d"
            % (lr, alpha, eps, weight_decay, momentum, centered))


def adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    return (lambda groups: torch.optim.Adadelta(groups, lr=lr, rho=rho, eps=eps,
                                                weight_decay=weight_decay, foreach=False),
            "adadelta lr=%r rho=%r eps=%r weight_decay=%r" % (lr, rho, eps, weight_decay))


def adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, w=False):
    cls = torch.optim.AdamW if w else torch.optim.Adam
    return (lambda groups: cls(groups, lr=lr, betas=(beta1, beta2), eps=eps,
                               weight_decay=weight_decay, amsgrad=amsgrad, foreach=False),
            "%s lr=%r beta1=%r beta2=%r eps=%r weight_decay=%r amsgrad=%d"
            % ("adamw" if w else "adam", lr, beta1, beta2, eps, weight_decay, amsgrad))


# name, (constructor, netc record), clip_norm, lr multiplier of b, freeze c
CASES = [
    ("sgd", sgd(0.1), 0, 1, False),
    ("sgd_momentum", sgd(0.05, momentum=0.9, dampening=0.1, weight_decay=0.01), 0, 1, False),
    ("sgd_nesterov", sgd(0.05, momentum=0.9, weight_decay=0.001, nesterov=True), 0, 1, False),
    ("adagrad", adagrad(), 0, 1, False),
    ("adagrad_all", adagrad(0.1, lr_decay=0.01, weight_decay=0.01,
                            initial_accumulator_value=0.1, eps=1e-6), 0, 1, False),
    ("rmsprop", rmsprop(), 0, 1, False),
    ("rmsprop_momentum", rmsprop(0.01, momentum=0.9, weight_decay=0.01), 0, 1, False),
    ("rmsprop_centered", rmsprop(0.01, alpha=0.9, eps=1e-6, centered=True), 0, 1, False),
    ("rmsprop_all", rmsprop(0.005, alpha=0.95, weight_decay=0.01, momentum=0.5, centered=True),
     0, 1, False),
    ("adadelta", adadelta(), 0, 1, False),
    ("adadelta_wd", adadelta(0.5, rho=0.95, eps=1e-5, weight_decay=0.01), 0, 1, False),
    ("adam", adam(), 0, 1, False),
    ("adam_all", adam(0.01, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=0.1, amsgrad=True),
     0, 1, False),
    ("adamw", adam(0.01, weight_decay=0.1, w=True), 0, 1, False),
    ("adamw_amsgrad", adam(0.02, beta1=0.5, weight_decay=0.05, amsgrad=True, w=True), 0, 1, False),
    ("adam_clip_mult_freeze", adam(0.01), 0.5, 0.25, True),
    ("sgd_clip", sgd(0.1, momentum=0.9), 1.0, 1, False),
]


def save(d, name, a):
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(a, dtype=np.float32))


def write_case(name, make, record, clip, mult_b, freeze_c):
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    total = sum(n for _, n in SIZES)
    p0 = torch.randn(total, generator=g, dtype=torch.float32)
    grads = torch.stack([torch.randn(total, generator=g, dtype=torch.float32) * s for s in SCALES])
    params = {k: torch.nn.Parameter(t.clone()) for (k, _), t in
              zip(SIZES, torch.split(p0, [n for _, n in SIZES]))}
    trained = [params["a"], params["b"]] + ([] if freeze_c else [params["c"]])
    groups = [{"params": [params["a"]] + ([] if freeze_c else [params["c"]])},
              {"params": [params["b"]]}]
    opt = make(groups)
    # torch needs each group's lr; the second group is b's
    opt.param_groups[1]["lr"] = opt.param_groups[0]["lr"] * mult_b
    after = []
    for s in range(STEPS):
        for (k, _), gk in zip(SIZES, torch.split(grads[s], [n for _, n in SIZES])):
            params[k].grad = gk.clone()
        if clip:
            torch.nn.utils.clip_grad_norm_(trained, clip)
        opt.step()
        after.append(torch.cat([params[k].detach() for k, _ in SIZES]))
    d = os.path.join(HERE, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    lines = ["train optimizer " + record]
    if clip:
        lines.append("train clip_norm %r" % clip)
    if mult_b != 1:
        lines.append("train lr_mult b %r" % mult_b)
    if freeze_c:
        lines.append("train freeze c")
    with open(os.path.join(d, "meta.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    save(d, "params0", p0)
    save(d, "grads", grads)
    save(d, "params", torch.stack(after))
    print("%-24s %s" % (name, record))


def main():
    torch.set_num_threads(1)
    for name, (make, record), clip, mult_b, freeze_c in CASES:
        write_case(name, make, record, clip, mult_b, freeze_c)


if __name__ == "__main__":
    main()
