#!/usr/bin/env bash
# usage: e2e_lenet.sh NETC BACKEND
# Builds examples/lenet.net, trains 2 short epochs on 3000 images, checks the
# loss falls and accuracy beats chance, then exercises save/resume, eval,
# predict, info and --threads, and a bad checkpoint.
set -euo pipefail
netc=$1 backend=$2
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$netc" build examples/lenet.net -o "$tmp/lenet" --backend "$backend"
"$tmp/lenet" info > "$tmp/info.txt"
grep -q "c1.weight" "$tmp/info.txt"
# main() hands the model a thread pool: info reports the thread count.
grep -q "^threads [0-9]* (the CPUs this process may use" "$tmp/info.txt"
# Every thread count gives the same bits: one short epoch on 1 and on 3 threads.
for t in 1 3; do
  "$tmp/lenet" train --epochs 1 --limit 640 --test-limit 200 --threads $t --quiet \
      --metrics "$tmp/t$t.jsonl" > /dev/null
  sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$tmp/t$t.jsonl" > "$tmp/t$t.txt"
done
cmp -s "$tmp/t1.txt" "$tmp/t3.txt" || { echo "FAIL: training differs between 1 and 3 threads"; cat "$tmp/t1.txt" "$tmp/t3.txt"; exit 1; }
# Fusing the activations into the layers before them changes no bit.
"$netc" build examples/lenet.net -o "$tmp/lenet-nofuse" --backend "$backend" --no-fuse
"$tmp/lenet-nofuse" train --epochs 1 --limit 640 --test-limit 200 --threads 1 --quiet \
    --metrics "$tmp/nofuse.jsonl" > /dev/null
sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$tmp/nofuse.jsonl" > "$tmp/nofuse.txt"
cmp -s "$tmp/t1.txt" "$tmp/nofuse.txt" || { echo "FAIL: --no-fuse trains differently"; cat "$tmp/t1.txt" "$tmp/nofuse.txt"; exit 1; }
"$tmp/lenet" train --epochs 2 --limit 3000 --test-limit 1000 --save "$tmp/ck.safetensors" \
    --metrics "$tmp/m.jsonl" > "$tmp/train.txt"
cat "$tmp/train.txt"
l1=$(sed -n 1p "$tmp/m.jsonl" | sed 's/.*"train_loss":\([0-9.e+-]*\).*/\1/')
l2=$(sed -n 2p "$tmp/m.jsonl" | sed 's/.*"train_loss":\([0-9.e+-]*\).*/\1/')
acc=$(sed -n 2p "$tmp/m.jsonl" | sed 's/.*"test_acc":\([0-9.e+-]*\).*/\1/')
echo "train_loss $l1 -> $l2, test_acc $acc"
awk -v a="$l1" -v b="$l2" 'BEGIN { exit !(b < a) }' || { echo "FAIL: loss did not fall"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || { echo "FAIL: accuracy $acc too low"; exit 1; }
"$tmp/lenet" eval --weights "$tmp/ck.safetensors" --test-limit 1000 > "$tmp/eval.txt"
cat "$tmp/eval.txt"
# --threads changes no result; 0 is a usage error.
"$tmp/lenet" eval --weights "$tmp/ck.safetensors" --test-limit 1000 --threads 2 > "$tmp/eval2.txt"
cmp -s "$tmp/eval.txt" "$tmp/eval2.txt" || { echo "FAIL: eval --threads 2 differs"; exit 1; }
st=0
"$tmp/lenet" eval --weights "$tmp/ck.safetensors" --threads 0 2> "$tmp/err.txt" || st=$?
[ "$st" = 2 ] && grep -q -- "--threads: expected an integer from 1 to 1024, found '0'" "$tmp/err.txt" ||
  { echo "FAIL: --threads 0: status $st"; cat "$tmp/err.txt"; exit 1; }
# predict: [2, 1, 28, 28] in, [2, 10] out; a wrong shape is an error naming the file.
python3 - "$tmp/x.npy" "$tmp/bad.npy" <<'PY'
import struct, sys
def npy(path, shape):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    n = 1
    for d in shape: n *= d
    data = struct.pack("<%df" % n, *[(i % 255) / 255.0 for i in range(n)])
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
npy(sys.argv[1], [2, 1, 28, 28])
npy(sys.argv[2], [2, 3, 28, 28])
PY
"$tmp/lenet" predict --weights "$tmp/ck.safetensors" --input "$tmp/x.npy" --output "$tmp/y.npy"
python3 - "$tmp/y.npy" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"\x93NUMPY", "not an npy file"
hl = int.from_bytes(b[8:10], "little")
assert "(2, 10)" in b[10:10 + hl].decode(), b[10:10 + hl]
assert len(b) == 10 + hl + 2 * 10 * 4
PY
if "$tmp/lenet" predict --weights "$tmp/ck.safetensors" --input "$tmp/bad.npy" --output "$tmp/y2.npy" 2> "$tmp/err.txt"; then
  echo "FAIL: a [2,3,28,28] input was accepted"; exit 1
fi
grep -q "bad.npy" "$tmp/err.txt" || { echo "FAIL: npy error does not name the file"; cat "$tmp/err.txt"; exit 1; }
# A truncated checkpoint is reported, not crashed on, and exits non-zero.
head -c 100 "$tmp/ck.safetensors" > "$tmp/bad.safetensors"
if "$tmp/lenet" eval --weights "$tmp/bad.safetensors" 2> "$tmp/err.txt"; then
  echo "FAIL: truncated checkpoint accepted"; exit 1
fi
grep -q "bad.safetensors" "$tmp/err.txt" || { echo "FAIL: error does not name the file"; cat "$tmp/err.txt"; exit 1; }
echo "PASS e2e.lenet.$backend"
