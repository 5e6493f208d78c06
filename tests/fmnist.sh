#!/usr/bin/env bash
# usage: fmnist.sh NETC BACKEND NAME MIN_ACC
# Builds examples/NAME.net, trains it for a fraction of an epoch (the first
# 2000 training images, scored on the first 500 test images) and checks the
# test accuracy is above MIN_ACC; first, 256 images trained on 1 and on 2
# threads must give the same bits. The full-length run, which
# must reach the accuracy the file's header states, is bench/fmnist.sh.
set -euo pipefail
netc=$1 backend=$2 name=$3 min_acc=$4
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$netc" build "examples/$name.net" -o "$tmp/$name" --backend "$backend"
strip_times() { sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$1"; }
for t in 1 2; do
  "$tmp/$name" train --epochs 1 --limit 256 --test-limit 100 --threads $t --quiet \
      --metrics "$tmp/t$t.jsonl" > /dev/null
  strip_times "$tmp/t$t.jsonl" > "$tmp/t$t.txt"
done
cmp -s "$tmp/t1.txt" "$tmp/t2.txt" || {
  echo "FAIL: $name trains differently on 1 and 2 threads"; cat "$tmp/t1.txt" "$tmp/t2.txt"; exit 1; }
"$tmp/$name" train --epochs 1 --limit 2000 --test-limit 500 --metrics "$tmp/m.jsonl"
acc=$(sed -n 1p "$tmp/m.jsonl" | sed 's/.*"test_acc":\([0-9.e+-]*\).*/\1/')
awk -v a="$acc" -v m="$min_acc" 'BEGIN { exit !(a > m) }' ||
  { echo "FAIL: $name: test accuracy $acc after 2000 images, expected above $min_acc"; exit 1; }
echo "$name: test_acc $acc after 2000 images (above $min_acc)"
