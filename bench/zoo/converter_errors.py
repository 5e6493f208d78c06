#!/usr/bin/python3
"""scripts/from_torchvision.py refuses bad state dicts, naming the key.

    /usr/bin/python3 bench/zoo/converter_errors.py

Saves resnet18 state dicts with a key missing, a key added, a wrong shape
and a non-dict, and checks that the converter exits 1 with the key named
and writes no output file; then that a good one converts. Needs PyTorch,
so it lives in bench/, not in the test suite.
"""
import os
import subprocess
import sys
import tempfile

import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERT = os.path.join(ROOT, "scripts", "from_torchvision.py")


def convert(work, sd, name="resnet18"):
    path = os.path.join(work, "sd.pt")
    out = os.path.join(work, "w.safetensors")
    if os.path.exists(out):
        os.unlink(out)
    torch.save(sd, path)
    p = subprocess.run([sys.executable, CONVERT, name, path, "-o", out], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr, os.path.exists(out)


def main():
    good = torchvision.models.resnet18().state_dict()
    cases = []
    sd = dict(good); del sd["layer2.0.downsample.1.running_var"]
    cases.append(("missing key", sd, "missing key 'layer2.0.downsample.1.running_var'"))
    sd = dict(good); sd["fc2.weight"] = torch.zeros(3)
    cases.append(("extra key", sd, "unexpected key 'fc2.weight'"))
    sd = dict(good); sd["fc.weight"] = torch.zeros(10, 512)
    cases.append(("wrong shape", sd, "key 'fc.weight': expected shape [1000, 512], found [10, 512]"))
    sd = dict(good); sd["conv1.weight"] = good["conv1.weight"].double()
    cases.append(("wrong dtype", sd, "key 'conv1.weight': expected float32, found torch.float64"))
    cases.append(("not a dict", [1, 2], "expected a state dict"))
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for what, sd, want in cases:
            rc, out, wrote = convert(work, sd)
            ok = rc == 1 and want in out and not wrote
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {what}: exit {rc}: {out.strip()}")
        rc, out, wrote = convert(work, good)
        ok = rc == 0 and wrote
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} good state dict: exit {rc}: {out.strip()}")
        rc, out, wrote = convert(work, good, name="resnet34")
        ok = rc == 1 and "unknown network 'resnet34'" in out and not wrote
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} unknown network: exit {rc}: {out.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
