#!/usr/bin/python3
"""Agreement of examples/zoo/NAME.net with torchvision 0.14, network by network.

    /usr/bin/python3 bench/zoo_check.py [NAME ...] [--train-step] [--no-c] [--keep DIR]

For each network (all ten of examples/zoo when none is named):

1. build torchvision's model with torch.manual_seed(0), randomise every
   batch norm's running mean (N(0, 0.2^2)), running variance (U(0.5, 2)),
   weight (U(0.5, 1.5)), bias (N(0, 0.1^2)) and num_batches_tracked, so the
   inference-mode statistics matter, and save its state dict;
2. convert it with scripts/from_torchvision.py (checked against `PROG info`);
3. `netc check` the .net (parameters, MACs), `netc build` it with
   `--backend llvm` and `--backend c` (wall time of each build command);
4. run `PROG predict` of both programs on one random input of batch 2
   (N(0, 1), seed 0) and compare with torchvision's model.eval() output
   computed in float64 (model and input cast to double).

Agreement: err = max |netc - ref| over all outputs, rel = err / max |ref|
(the error relative to the largest reference output). The target is
rel <= 1e-4; a network above it, or whose parameter count differs from
torchvision's, makes the script exit with status 1.

--train-step also times training steps: `PROG train` on a generated .npy
data set (the train section's zoo_images.npy / zoo_labels.npy, written in the
work directory), `--limit` K batches of the train section's batch size, its
images per second turned into seconds per step; and torch's SGD step
(the same optimiser settings, cross-entropy loss, model.train()) on the same
batch size, K steps, in a fresh process with 1 and with 2 threads and
OMP_WAIT_POLICY=PASSIVE. netc runs with --threads 1 and 2 too. The better
of each is reported. Both include the first step.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import from_torchvision  # noqa: E402

NETWORKS = from_torchvision.NETWORKS
TARGET_REL = 1e-4


def run(cmd, cwd=None, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout, dt


def randomise_batchnorm(model, torch):
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))


def netc_check(netc, net):
    out, _ = run([netc, "check", net])
    m = re.search(r"^total: (\d+) parameters .*?, (\d+) MACs per sample", out, re.M)
    if not m:
        raise RuntimeError(f"netc check {net}: no total line in:\n{out}")
    return int(m.group(1)), int(m.group(2))


def train_section(net):
    text = open(net).read()
    batch = int(re.search(r"^\s*batch\s+(\d+)", text, re.M).group(1))
    opt = re.search(r"optimizer\s+sgd\(([^)]*)\)", text).group(1)
    settings = dict(kv.split("=") for kv in opt.replace(" ", "").split(","))
    return batch, {k: float(v) for k, v in settings.items()}


def agreement(y, ref, np):
    y = np.asarray(y, dtype=np.float64)
    if y.shape != ref.shape:
        raise RuntimeError(f"output shape {y.shape}, reference {ref.shape}")
    err = float(np.max(np.abs(y - ref)))
    return err, err / float(np.max(np.abs(ref)))


def time_netc_train(prog, work, batch, steps, threads):
    best = None
    for t in threads:
        metrics = os.path.join(work, f"metrics{t}.jsonl")
        if os.path.exists(metrics):
            os.unlink(metrics)
        run([prog, "train", "--epochs", "1", "--limit", str(steps * batch), "--test-limit", "1",
             "--quiet", "--threads", str(t), "--metrics", metrics], cwd=work)
        ips = json.loads(open(metrics).read().splitlines()[-1])["images_per_s"]
        per_step = batch / ips
        best = per_step if best is None else min(best, per_step)
    return best


def time_torch_train(name, batch, sgd, steps, threads):
    best = None
    for t in threads:
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=str(t))
        out, _ = run([sys.executable, os.path.join(HERE, "zoo", "torch_step.py"), name,
                      str(batch), str(steps), str(t), json.dumps(sgd)], env=env)
        per_step = float(out.split()[-1])
        best = per_step if best is None else min(best, per_step)
    return best


def check_one(name, a, torch, np):
    net = os.path.join(ROOT, "examples", "zoo", name + ".net")
    work = os.path.join(a.work, name)
    os.makedirs(work, exist_ok=True)
    row = {"name": name}

    torch.manual_seed(0)
    model = from_torchvision.build_model(name)
    randomise_batchnorm(model, torch)
    model.eval()
    row["tv_params"] = sum(p.numel() for p in model.parameters())
    sd_path = os.path.join(work, name + ".pt")
    torch.save(model.state_dict(), sd_path)

    row["params"], row["macs"] = netc_check(a.netc, net)

    prog_llvm = os.path.join(work, name + "_llvm")
    _, row["build_llvm"] = run([a.netc, "build", net, "--backend", "llvm", "-o", prog_llvm])
    progs = [("llvm", prog_llvm)]
    if not a.no_c:
        prog_c = os.path.join(work, name + "_c")
        _, row["build_c"] = run([a.netc, "build", net, "--backend", "c", "-o", prog_c])
        progs.append(("c", prog_c))

    weights = os.path.join(work, name + ".safetensors")
    run([sys.executable, os.path.join(ROOT, "scripts", "from_torchvision.py"), name, sd_path,
         "-o", weights, "--prog", prog_llvm])

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 224, 224, generator=g)
    x_path = os.path.join(work, "x.npy")
    np.save(x_path, x.numpy().astype("<f4"))
    with torch.no_grad():
        ref = model.double()(x.double()).numpy()
    model.float()

    for backend, prog in progs:
        y_path = os.path.join(work, f"y_{backend}.npy")
        run([prog, "predict", "--weights", weights, "--input", x_path, "--output", y_path])
        row["err_" + backend], row["rel_" + backend] = agreement(np.load(y_path), ref, np)

    if a.train_step:
        batch, sgd = train_section(net)
        n = 2 * a.steps * batch  # split=0.5: half of it trains
        rng = np.random.default_rng(0)
        np.save(os.path.join(work, "zoo_images.npy"),
                rng.standard_normal((n, 3, 224, 224), dtype=np.float32))
        np.save(os.path.join(work, "zoo_labels.npy"), rng.integers(0, 1000, n, dtype=np.int64))
        row["batch"] = batch
        row["step_netc"] = time_netc_train(prog_llvm, work, batch, a.steps, a.threads)
        row["step_torch"] = time_torch_train(name, batch, sgd, a.steps, a.threads)
    return row


def print_row(row, a):
    ok_params = row["params"] == row["tv_params"]
    rel = max(v for k, v in row.items() if k.startswith("rel_"))
    ok = ok_params and rel <= TARGET_REL
    cells = [f"{row['name']:<20}", f"{row['params']:>11}", f"{row['tv_params']:>11}",
             f"{row['macs'] / 1e9:>7.3f}G", f"{row['build_llvm']:>7.1f}s"]
    cells.append(f"{row['build_c']:>7.1f}s" if "build_c" in row else f"{'-':>8}")
    cells.append(f"{row['err_llvm']:>9.2e} {row['rel_llvm']:>9.2e}")
    cells.append(f"{row['rel_c']:>9.2e}" if "rel_c" in row else f"{'-':>9}")
    if a.train_step:
        cells.append(f"{row['batch']:>3} {row['step_netc']:>8.3f}s {row['step_torch']:>8.3f}s")
    cells.append("ok" if ok else ("PARAMS DIFFER" if not ok_params else "ABOVE 1e-4"))
    print("  ".join(cells), flush=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="networks to check (default: all)")
    ap.add_argument("--netc", default=os.path.join(ROOT, "build", "netc"))
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory)")
    ap.add_argument("--no-c", action="store_true", help="skip the C backend (its build and predict)")
    ap.add_argument("--train-step", action="store_true", help="also time training steps, netc and torch")
    ap.add_argument("--steps", type=int, default=2, help="training steps to time (default 2)")
    ap.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2],
                    help="thread counts to try for the step timings (default 1,2)")
    a = ap.parse_args()
    for n in a.names:
        if n not in NETWORKS:
            ap.error(f"unknown network '{n}'; known: {', '.join(NETWORKS)}")
    names = a.names or list(NETWORKS)

    import numpy as np
    import torch
    torch.set_num_threads(2)

    a.work = a.keep or tempfile.mkdtemp(prefix="zoo_check.")
    os.makedirs(a.work, exist_ok=True)
    head = ["network             ", "netc params", "  tv params", "    MACs", " llvm cc", "    c cc",
            "  max err   rel err", "  rel (c)"]
    if a.train_step:
        head.append("  B  netc step  torch step")
    head.append("")
    print("  ".join(head))
    all_ok = True
    try:
        for name in names:
            try:
                all_ok &= print_row(check_one(name, a, torch, np), a)
            except RuntimeError as e:
                all_ok = False
                print(f"{name:<20}  FAILED: {e}", flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(a.work, ignore_errors=True)
    print(f"rel err = max|netc - torch| / max|torch|, torch in float64; target {TARGET_REL:g}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
