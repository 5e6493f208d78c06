#!/usr/bin/env bash
# usage: e2e_direct.sh NETC BACKEND
# Builds examples/resnet_mini.net (stride-2, 1x1 and padded 3x3 layers)
# with every convolution direct (--algo=direct), trains one short
# epoch on 1 and on 3 threads and checks the two runs give the same bits,
# and that the loss is a number.
set -euo pipefail
netc=$1 backend=$2
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$netc" check examples/resnet_mini.net --algo=direct --dump=algo > "$tmp/algo.txt"
grep -q 'conv_dx ".*": direct ' "$tmp/algo.txt" || { echo "FAIL: no input gradient direct"; exit 1; }
"$netc" build examples/resnet_mini.net -o "$tmp/r" --backend "$backend" --algo=direct
for t in 1 3; do
  "$tmp/r" train --epochs 1 --limit 320 --test-limit 100 --threads $t --quiet \
      --metrics "$tmp/t$t.jsonl" > /dev/null
  sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$tmp/t$t.jsonl" > "$tmp/t$t.txt"
done
cat "$tmp/t1.txt"
cmp -s "$tmp/t1.txt" "$tmp/t3.txt" || { echo "FAIL: training differs between 1 and 3 threads"; cat "$tmp/t3.txt"; exit 1; }
grep -q '"train_loss":[0-9]' "$tmp/t1.txt" || { echo "FAIL: the loss is not a number"; exit 1; }
echo "PASS"
