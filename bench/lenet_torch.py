#!/usr/bin/python3
"""LeNet-5 on Fashion-MNIST in PyTorch: the baseline netc is measured against.

The network, initialisation, optimiser and data handling are those of
examples/lenet.net as netc compiles it, so the two runs differ only in who
computes them:
  conv 6 k5 pad 2, relu, maxpool 2, conv 16 k5, relu, maxpool 2, flatten,
  dense 120, relu, dense 84, relu, dense 10, softmax cross-entropy;
  he_uniform weights, U(+-sqrt(6 / fan_in)); zero biases;
  SGD with momentum; pixels / 255; shuffled every epoch; the last partial
  batch is kept.

  /usr/bin/python3 bench/lenet_torch.py --epochs 3 --threads 1 --metrics m.jsonl

Each epoch prints one line and, with --metrics, writes one JSON line with
the keys of a netc program's `train --metrics`: epoch, train_loss,
train_acc, test_loss, test_acc, seconds, images_per_s (accuracies as
fractions).  As in netc, seconds is the whole epoch (training pass plus
test evaluation) and images_per_s is training images over the training
pass's time alone.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load(data, split):
    images = read_idx(os.path.join(data, "%s-images-idx3-ubyte.gz" % split), 16)
    labels = read_idx(os.path.join(data, "%s-labels-idx1-ubyte.gz" % split), 8)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    assert x.shape[0] == y.shape[0], "image and label counts differ"
    return x, y


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = nn.Conv2d(6, 16, 5)
        self.f1 = nn.Linear(16 * 5 * 5, 120)
        self.f2 = nn.Linear(120, 84)
        self.f3 = nn.Linear(84, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.f1(x))
        x = F.relu(self.f2(x))
        return self.f3(x)


def evaluate(net, x, y, batch):
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = net(x[i:i + batch])
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    return loss / x.shape[0], correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--schedule", default="constant", choices=["constant", "cosine", "step"],
                    help="learning-rate schedule, stepped once per epoch like netc's")
    ap.add_argument("--step-every", type=int, default=3, help="step schedule: epochs between decays")
    ap.add_argument("--gamma", type=float, default=0.1, help="step schedule: decay factor")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--metrics", help="write per-epoch JSON lines to this file")
    ap.add_argument("--limit", type=int, default=0,
                    help="train on the first N images only (0: all), like netc's --limit")
    ap.add_argument("--test-limit", type=int, default=0,
                    help="evaluate on the first N test images only (0: all)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    order_rng = np.random.default_rng(args.seed)
    train_x, train_y = load(args.data, "train")
    test_x, test_y = load(args.data, "t10k")
    if args.limit > 0:
        train_x, train_y = train_x[:args.limit], train_y[:args.limit]
    if args.test_limit > 0:
        test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]

    net = LeNet()
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)
    if args.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    elif args.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=args.step_every, gamma=args.gamma)
    else:
        sched = None
    metrics = open(args.metrics, "w") if args.metrics else None
    n = train_x.shape[0]
    print("pytorch %s, %d thread(s), %d train / %d test images, batch %d, lr %g, momentum %g"
          % (torch.__version__, torch.get_num_threads(), n, test_x.shape[0],
             args.batch, args.lr, args.momentum))
    for epoch in range(1, args.epochs + 1):
        net.train()
        perm = torch.from_numpy(order_rng.permutation(n))
        loss_sum, correct = 0.0, 0
        t0 = time.perf_counter()
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = train_x[idx], train_y[idx]
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * idx.shape[0]
            correct += (out.argmax(1) == yb).sum().item()
        train_seconds = time.perf_counter() - t0
        if sched:
            sched.step()
        test_loss, test_acc = evaluate(net, test_x, test_y, 1000)
        seconds = time.perf_counter() - t0
        rec = {
            "epoch": epoch,
            "train_loss": loss_sum / n,
            "train_acc": correct / n,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "seconds": seconds,
            "images_per_s": n / train_seconds,
        }
        print("epoch %d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.2f s  %.0f img/s"
              % (epoch, rec["train_loss"], rec["train_acc"], test_loss, test_acc,
                 seconds, rec["images_per_s"]), flush=True)
        if metrics:
            metrics.write(json.dumps(rec) + "\n")
            metrics.flush()
    if metrics:
        metrics.close()


if __name__ == "__main__":
    main()
