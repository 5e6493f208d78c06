#!/usr/bin/env bash
# usage: e2e_winograd.sh NETC BACKEND
# Builds examples/resnet_mini.net with every 3x3 stride-1 convolution and
# input gradient in Winograd F(4x4,3x3) (--algo=winograd), trains one short
# epoch on 1 and on 3 threads and checks the two runs give the same bits,
# and that the loss is a number; that predict gives the same bits in any
# batching of the samples and agrees with --algo=direct; then trains LeNet
# with --algo=fft and with the default schedule, with the same checks of
# predict (below).
set -euo pipefail
netc=$1 backend=$2
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$netc" check examples/resnet_mini.net --algo=winograd --dump=algo > "$tmp/algo.txt"
grep -q 'conv_dx ".*": winograd ' "$tmp/algo.txt" || { echo "FAIL: no input gradient in winograd"; exit 1; }
"$netc" build examples/resnet_mini.net -o "$tmp/r" --backend "$backend" --algo=winograd
for t in 1 3; do
  "$tmp/r" train --epochs 1 --limit 320 --test-limit 100 --threads $t --quiet \
      --metrics "$tmp/t$t.jsonl" > /dev/null
  sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$tmp/t$t.jsonl" > "$tmp/t$t.txt"
done
cat "$tmp/t1.txt"
cmp -s "$tmp/t1.txt" "$tmp/t3.txt" || { echo "FAIL: training differs between 1 and 3 threads"; cat "$tmp/t3.txt"; exit 1; }
grep -q '"train_loss":[0-9]' "$tmp/t1.txt" || { echo "FAIL: the loss is not a number"; exit 1; }
# Blocks of samples: the 14x14 layers run blocks of 4 samples, and a
# batch's last 1-3 samples one at a time (wino_tail in lower_winograd.c).
# predict on 11 images gives the same bits in batches of 1 (every sample
# alone), 4 (whole blocks), 7 (a block and a tail of 3) and 11, and
# agrees with the direct convolutions' program within 1e-4.
"$tmp/r" train --epochs 1 --limit 64 --test-limit 10 --quiet --save "$tmp/r.safetensors" > /dev/null
python3 tests/npy_tool.py input "$tmp/x.npy" 11 1 28 28
# batchings PROG WEIGHTS NET BATCH...: PROG's predictions of x.npy are the
# same bits in batches of every BATCH (the last is the reference), and
# within 1e-4 of NET built with --algo=direct, from the same weights.
batchings() {
  local prog=$1 weights=$2 net=$3
  shift 3
  local ref=${!#} b
  for b in "$@"; do
    "$prog" predict --weights "$weights" --input "$tmp/x.npy" --output "$tmp/y$b.npy" --batch "$b"
  done
  for b in "$@"; do
    cmp -s "$tmp/y$b.npy" "$tmp/y$ref.npy" ||
      { echo "FAIL: $prog: predict in batches of $b differs from batches of $ref"; exit 1; }
  done
  "$netc" build "$net" -o "$tmp/direct" --backend "$backend" --algo=direct
  "$tmp/direct" predict --weights "$weights" --input "$tmp/x.npy" --output "$tmp/yd.npy" --batch "$ref"
  python3 tests/npy_tool.py close "against direct" "$tmp/y$ref.npy" "$tmp/yd.npy" 110 || { echo "FAIL: $prog and direct disagree"; exit 1; }
}
batchings "$tmp/r" "$tmp/r.safetensors" examples/resnet_mini.net 1 4 7 11
# LeNet with every convolution and input gradient by tiled FFTs
# (--algo=fft) reaches the default schedule's test accuracy within 1.5
# points after the same short training (one epoch of 12,000 images, about
# 77%: rounding in another summation order moves it by about a point), and
# gives the same bits on 1 and 3 threads.
"$netc" check examples/lenet.net --algo=fft --dump=algo > "$tmp/fft.txt"
grep -q 'conv_dx "c2.dx": fft ' "$tmp/fft.txt" || { echo "FAIL: no input gradient in fft"; exit 1; }
for a in auto fft; do
  "$netc" build examples/lenet.net -o "$tmp/l_$a" --backend "$backend" --algo=$a
  "$tmp/l_$a" train --epochs 1 --limit 12000 --quiet --metrics "$tmp/l_$a.jsonl" --save "$tmp/l_$a.safetensors" > /dev/null
  cat "$tmp/l_$a.jsonl"
done
# the same bits on 3 threads
"$tmp/l_fft" train --epochs 1 --limit 12000 --quiet --threads 3 --metrics "$tmp/l_fft3.jsonl" > /dev/null
for f in l_fft l_fft3; do sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$tmp/$f.jsonl" > "$tmp/$f.txt"; done
cmp -s "$tmp/l_fft.txt" "$tmp/l_fft3.txt" || { echo "FAIL: fft training differs between 1 and 3 threads"; exit 1; }
# FFT blocks of samples too: LeNet's layers run blocks of 2 and 8, and a
# batch's last samples one at a time (fft_tail in lower_fft.c): predict
# gives the same bits in batches of 1, 2, 7 and 11, and agrees with the
# direct convolutions' program.
batchings "$tmp/l_fft" "$tmp/l_fft.safetensors" examples/lenet.net 1 2 7 11
acc() { sed 's/.*"test_acc":\([0-9.]*\).*/\1/' "$1"; }
awk -v d="$(acc "$tmp/l_auto.jsonl")" -v f="$(acc "$tmp/l_fft.jsonl")" 'BEGIN { exit !(f >= d - 0.015) }' ||
  { echo "FAIL: lenet with fft below the default's accuracy by more than 1.5 points"; exit 1; }
echo "PASS"
