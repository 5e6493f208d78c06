#!/usr/bin/env bash
# usage: e2e_winograd.sh NETC BACKEND
# Builds examples/resnet_mini.net with every 3x3 stride-1 convolution and
# input gradient in Winograd F(4x4,3x3) (--algo=winograd), trains one short
# epoch on 1 and on 3 threads and checks the two runs give the same bits,
# and that the loss is a number; then trains LeNet with --algo=fft and with
# the default schedule (below).
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
# LeNet with every convolution and input gradient by tiled FFTs
# (--algo=fft) reaches the default schedule's test accuracy within 1.5
# points after the same short training (one epoch of 12,000 images, about
# 77%: rounding in another summation order moves it by about a point), and
# gives the same bits on 1 and 3 threads.
"$netc" check examples/lenet.net --algo=fft --dump=algo > "$tmp/fft.txt"
grep -q 'conv_dx "c2.dx": fft ' "$tmp/fft.txt" || { echo "FAIL: no input gradient in fft"; exit 1; }
for a in auto fft; do
  "$netc" build examples/lenet.net -o "$tmp/l_$a" --backend "$backend" --algo=$a
  "$tmp/l_$a" train --epochs 1 --limit 12000 --quiet --metrics "$tmp/l_$a.jsonl" > /dev/null
  cat "$tmp/l_$a.jsonl"
done
# the same bits on 3 threads
"$tmp/l_fft" train --epochs 1 --limit 12000 --quiet --threads 3 --metrics "$tmp/l_fft3.jsonl" > /dev/null
for f in l_fft l_fft3; do sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$tmp/$f.jsonl" > "$tmp/$f.txt"; done
cmp -s "$tmp/l_fft.txt" "$tmp/l_fft3.txt" || { echo "FAIL: fft training differs between 1 and 3 threads"; exit 1; }
acc() { sed 's/.*"test_acc":\([0-9.]*\).*/\1/' "$1"; }
awk -v d="$(acc "$tmp/l_auto.jsonl")" -v f="$(acc "$tmp/l_fft.jsonl")" 'BEGIN { exit !(f >= d - 0.015) }' ||
  { echo "FAIL: lenet with fft below the default's accuracy by more than 1.5 points"; exit 1; }
echo "PASS"
