#!/usr/bin/python3
"""The rows of bench/rows.py in PyTorch: the other side of bench/suite.sh.

  /usr/bin/python3 bench/layers_torch.py [--rows PATTERN] [--threads 1,2] [--reps 7] [--seconds 0.2]
  /usr/bin/python3 bench/layers_torch.py --serve [--seconds 0.2]
  /usr/bin/python3 bench/layers_torch.py --info

Each row is the one torch module (nn.Conv2d, nn.Conv3d or nn.Linear, with
bias) that matches the netc layer; "lenet" is bench/lenet_torch.py's LeNet
(forward only).  Forward runs under torch.no_grad().
The training step is what netc's train entry does: forward, the mse loss
against a target, and .backward(), which computes the weight and bias
gradients (zero_grad(set_to_none=True) first, so every step writes them
afresh, as netc does).  The input has requires_grad=False: netc computes no
input gradient for a network's first layer, and every row is one.  No
optimizer step, on either side.

Inputs are uniform in [-1, 1), targets zero, as in bench/layer_main.c.  A
repetition times `iters` back-to-back calls after a warm-up call, `iters`
calibrated once per (row, mode, batch, threads) to last about --seconds.
One line per repetition:

  torch model=NAME mode=train batch=32 threads=2 iters=3 sec_per_iter=0.0123

torch.set_num_threads does not reach OpenBLAS's own threads in Debian's
generic-BLAS build, so the worker also calls openblas_set_num_threads when
OpenBLAS is the loaded BLAS (nn.Linear's matmul runs there; convolutions
run in oneDNN).

--serve reads "run ROW MODE BATCH THREADS" and "quit" lines on stdin, so
bench/suite.py can interleave repetitions with netc's.  --info prints the
torch version, its build configuration and its threading.

OMP_WAIT_POLICY=PASSIVE is set before torch is imported (unless already
set): with 2 threads on 2 shared cores, spinning OpenMP workers would steal
the core the other framework or the system needs.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rows  # noqa: E402


def module(r):
    if isinstance(r, rows.Net):
        if r.torchvision:
            import torchvision
            return getattr(torchvision.models, r.torchvision)(weights=None).eval()
        import lenet_torch
        assert r.name == "lenet"
        return lenet_torch.LeNet().eval()
    if r.op == "dense":
        return nn.Linear(r.inp[0], r.out)
    conv = {2: nn.Conv1d, 3: nn.Conv2d, 4: nn.Conv3d}[len(r.inp)]
    return conv(r.inp[0], r.out, r.k, stride=r.stride, padding=r.pad,
                dilation=r.dilation, groups=r.groups)


class Case:
    """One row's module and its tensors for the largest batch asked for."""

    def __init__(self, r):
        torch.manual_seed(1)
        self.row = r
        self.m = module(r)
        self.batch = 0

    def reserve(self, batch):
        if batch > self.batch:
            self.batch = batch
            self.x = torch.rand(batch, *self.row.inp) * 2 - 1
            if isinstance(self.row, rows.Row):
                self.target = torch.zeros(batch, *rows.out_shape(self.row))
            else:
                self.target = torch.zeros(batch, dtype=torch.long)

    def call(self, mode, batch):
        x = self.x[:batch]
        self.m.train(mode == "train")   # batch norm: running or batch statistics
        if mode == "forward":
            with torch.no_grad():
                self.m(x)
        else:
            self.m.zero_grad(set_to_none=True)
            loss = F.mse_loss if isinstance(self.row, rows.Row) else F.cross_entropy
            loss(self.m(x), self.target[:batch]).backward()


def loaded_blas():
    """The BLAS library this process has mapped (after a matmul has run)."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
    return sorted(libs)


def openblas():
    """The loaded OpenBLAS as a ctypes library, or None."""
    import ctypes
    for path in loaded_blas():
        if "openblas" in os.path.basename(path):
            lib = ctypes.CDLL(path)
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib
    return None


cases, calibrated = {}, {}
_openblas = []


def set_threads(t):
    """torch.set_num_threads sets OpenMP's and oneDNN's threads; a generic
    BLAS build does not pass it on to OpenBLAS's own pthreads, so do it."""
    torch.set_num_threads(t)
    if not _openblas:
        _openblas.append(openblas())
    if _openblas[0] is not None:
        _openblas[0].openblas_set_num_threads(t)


def time_calls(case, mode, batch, iters):
    t0 = time.perf_counter()
    for _ in range(iters):
        case.call(mode, batch)
    return time.perf_counter() - t0


def measure(name, mode, batch, threads, seconds):
    r = rows.find(name)
    case = cases.get(name)
    if case is None:
        case = cases[name] = Case(r)
    case.reserve(batch)
    set_threads(threads)
    key = (name, mode, batch, threads)
    if key not in calibrated:
        case.call(mode, batch)   # warm-up
        iters = 1
        while True:
            t = time_calls(case, mode, batch, iters)
            if t >= seconds / 4:
                break
            iters *= 2
        calibrated[key] = max(1, int(iters * seconds / t + 0.5))
    iters = calibrated[key]
    t = time_calls(case, mode, batch, iters)
    print("torch model=%s mode=%s batch=%d threads=%d iters=%d sec_per_iter=%.9g"
          % (name, mode, batch, threads, iters, t / iters), flush=True)


def serve(seconds):
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["quit"]:
            break
        try:
            assert len(words) == 5 and words[0] == "run" and words[2] in ("forward", "train")
            measure(words[1], words[2], int(words[3]), int(words[4]), seconds)
        except Exception as e:  # one bad row must not end the suite
            print("error %s: %s" % (line.strip(), e), flush=True)


def info():
    print("torch_version=%s" % torch.__version__)
    ob = openblas()
    print("blas_loaded=%s" % ",".join(loaded_blas()))
    if ob is not None:
        print("openblas=%s core=%s" % (ob.openblas_get_config().decode().strip(),
                                        ob.openblas_get_corename().decode()))
    # A forced OPENBLAS_CORETYPE must still compute right: sgemm against float64.
    a, b = torch.rand(300, 200), torch.rand(200, 100)
    ref = a.double() @ b.double()
    print("blas_check max_rel_err=%.1e" % ((a @ b).double() - ref).abs().div(ref.abs().max()).max())
    print(torch.__config__.show().rstrip())
    print(torch.__config__.parallel_info().rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", help="regular expression on row names (default: all)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.2, help="length of one repetition")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--info", action="store_true")
    args = ap.parse_args()
    if args.info:
        return info()
    if args.serve:
        return serve(args.seconds)
    for r in rows.select(args.rows):
        for mode, batch in rows.CONFIGS:
            for t in map(int, args.threads.split(",")):
                for _ in range(args.reps):
                    measure(r.name, mode, batch, t, args.seconds)


if __name__ == "__main__":
    main()
