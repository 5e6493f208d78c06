#!/usr/bin/env bash
# usage: e2e_backends.sh NETC [MODEL.net]
# Builds MODEL (default examples/lenet.net) through the LLVM backend and through the C
# backend, trains both for one short epoch with the same seed, and compares
# the losses.  Both backends compute the same IEEE operations in the same
# order and call the same libm (docs/llvm.md), so the losses are expected to
# be identical; the test allows a relative difference of 1e-4, room for a
# few roundings to differ and grow over the 8 SGD steps, and says whether
# they matched exactly.  Also prints each backend's build time and binary
# size.
set -euo pipefail
netc=$1
model=${2:-examples/lenet.net}
name=$(basename "$model" .net)
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for backend in llvm c; do
  start=$(date +%s.%N)
  "$netc" build "$model" -o "$tmp/$name-$backend" --backend "$backend"
  end=$(date +%s.%N)
  size=$(stat -c %s "$tmp/$name-$backend")
  awk -v b="$backend" -v s="$start" -v e="$end" -v z="$size" \
    'BEGIN { printf "%-4s build %.2f s, binary %d bytes\n", b, e - s, z }'
  "$tmp/$name-$backend" train --epochs 1 --limit 512 --test-limit 256 --quiet \
      --metrics "$tmp/m-$backend.jsonl"
done

field() { sed -n 1p "$1" | sed "s/.*\"$2\":\([^,}]*\).*/\1/"; }
status=0
for key in train_loss test_loss test_acc; do
  a=$(field "$tmp/m-llvm.jsonl" "$key")
  b=$(field "$tmp/m-c.jsonl" "$key")
  if [ "$a" = "$b" ]; then
    echo "$key: llvm $a, c $b (identical)"
  elif awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d;
                                       m = b < 0 ? -b : b; exit !(d <= 1e-4 * m) }'; then
    echo "$key: llvm $a, c $b (within 1e-4 relative)"
  else
    echo "FAIL $key: llvm $a, c $b differ by more than 1e-4 relative"; status=1
  fi
done
[ $status -eq 0 ] && echo "PASS e2e.$name.backends"
exit $status
