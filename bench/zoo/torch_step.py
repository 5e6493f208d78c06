#!/usr/bin/python3
"""Seconds per torch SGD training step of a torchvision network (bench/zoo_check.py).

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/zoo/torch_step.py NAME BATCH STEPS THREADS SGD_JSON

Builds torchvision's NAME (as scripts/from_torchvision.py does), in training
mode, and takes STEPS steps of torch.optim.SGD (settings from SGD_JSON:
lr, momentum, weight_decay) with cross-entropy on random [BATCH, 3, 224, 224]
images and labels; prints the mean wall time per step, first step included,
as the last word of its output.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import torch  # noqa: E402
import from_torchvision  # noqa: E402


def main():
    name, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sgd = json.loads(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = from_torchvision.build_model(name).train()
    opt = torch.optim.SGD(model.parameters(), lr=sgd["lr"], momentum=sgd.get("momentum", 0.0),
                          weight_decay=sgd.get("weight_decay", 0.0))
    x = torch.randn(batch, 3, 224, 224)
    y = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    dt = (time.perf_counter() - t0) / steps
    print(f"{name} batch {batch} threads {threads} seconds/step {dt:.6f}")


if __name__ == "__main__":
    main()
