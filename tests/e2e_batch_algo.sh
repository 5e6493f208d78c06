#!/usr/bin/env bash
# usage: e2e_batch_algo.sh NETC BACKEND
# The algorithm by batch (sched.c, "the algorithm by batch"; program.c's
# guarded calls): tests/batch_algo/alt.net, scheduled for x86-64-v3, runs
# its convolutions by Winograd F(4x4) from batch 5 and by F(2x2) below.
# predict on 11 samples in batches of 1 and 4 gives the bits of the program
# built with --algo=winograd2, in batches of 6 (6 + 5) and 11 those of the program
# built with --no-batch-algo (F(4x4) at every batch), and the two agree
# within 1e-4; the C code's calls carry the guards.
set -euo pipefail
netc=$1 backend=$2
net=tests/batch_algo/alt.net
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cpu=(--cpu x86-64-v3)
"$netc" check "$net" "${cpu[@]}" --dump=algo > "$tmp/algo.txt"
for c in c1 c2; do
  grep -q "conv \"$c\": winograd .*; below batch 5: winograd2, est" "$tmp/algo.txt" ||
    { echo "FAIL: $c has no winograd2 below batch 5"; cat "$tmp/algo.txt"; exit 1; }
done
"$netc" check "$net" "${cpu[@]}" --dump=algo --no-batch-algo | grep -q 'below batch' &&
  { echo "FAIL: --no-batch-algo still chooses by batch"; exit 1; }
"$netc" emit-c "$net" "${cpu[@]}" -o "$tmp/c" > /dev/null
grep -q 'if (n < 5) k[0-9]*_conv_winograd2' "$tmp/c/alt.c" && grep -Eq 'if \(n >= 5\) k[0-9]+_conv(_prepared)?\(' "$tmp/c/alt.c" ||
  { echo "FAIL: no guarded calls in the C code"; exit 1; }

python3 - "$tmp/w.safetensors" <<'PY'
import json, struct, sys
# c1 and c2 [128,128,3,3] and [128]: small values of a fixed sequence
names = [("c1.weight", [128, 128, 3, 3]), ("c1.bias", [128]), ("c2.weight", [128, 128, 3, 3]), ("c2.bias", [128])]
header, data, off = {}, b"", 0
for k, (name, shape) in enumerate(names):
    n = 1
    for d in shape:
        n *= d
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * n]}
    data += struct.pack("<%df" % n, *[(((i + 7 * k) * 29) % 97) / 970.0 - 0.05 for i in range(n)])
    off += 4 * n
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
python3 tests/npy_tool.py input "$tmp/x.npy" 11 128 7 7
predict() { # PROG BATCH OUT
  "$1" predict --weights "$tmp/w.safetensors" --input "$tmp/x.npy" --output "$3" --batch "$2"
}
"$netc" build "$net" "${cpu[@]}" -o "$tmp/alt" --backend "$backend"
"$netc" build "$net" "${cpu[@]}" -o "$tmp/w4" --backend "$backend" --no-batch-algo
"$netc" build "$net" "${cpu[@]}" -o "$tmp/w2" --backend "$backend" --algo=winograd2
for b in 1 4 6 11; do predict "$tmp/alt" $b "$tmp/alt$b.npy"; done
predict "$tmp/w4" 11 "$tmp/w4.npy"
predict "$tmp/w2" 11 "$tmp/w2.npy"
for b in 1 4; do
  cmp -s "$tmp/alt$b.npy" "$tmp/w2.npy" || { echo "FAIL: batches of $b are not winograd2's bits"; exit 1; }
done
for b in 6 11; do
  cmp -s "$tmp/alt$b.npy" "$tmp/w4.npy" || { echo "FAIL: batches of $b are not winograd's bits"; exit 1; }
done
python3 tests/npy_tool.py close "winograd2 against winograd" "$tmp/w2.npy" "$tmp/w4.npy" $((11 * 128 * 49))
echo "PASS"
