#!/usr/bin/env bash
# usage: e2e_data.sh NETC
# The data sources of the train section end to end, through `netc build`:
# tiny CIFAR-10 batches with crop, flip and normalisation (train, an exact
# resume, eval's report, plot), Fashion-MNIST-style IDX files fed to a
# [3, 32, 32] network (channels=3, size=32), .npy arrays with a held-out
# split, and bad files, each an error naming the file.  The data is written
# here by a small Python script (no numpy needed).
set -euo pipefail
netc=$1
command -v python3 > /dev/null || { echo "SKIP: no python3 to write the data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Class k: channel k % 3 bright, the row band k lighter; seeded noise.
python3 - "$tmp" <<'EOF'
import gzip, os, random, struct, sys
out = sys.argv[1]
rnd = random.Random(5)
def image(k):
    px = bytearray(3 * 32 * 32)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                v = rnd.randrange(40)
                if c == k % 3: v += 120
                if y // 3 == k: v += 80
                px[(c * 32 + y) * 32 + x] = min(v, 255)
    return bytes(px)
os.makedirs(out + "/cifar")
for b in range(1, 6):
    with open(f"{out}/cifar/data_batch_{b}.bin", "wb") as f:
        for i in range(20):
            k = (b + i) % 10
            f.write(bytes([k]) + image(k))
with open(f"{out}/cifar/test_batch.bin", "wb") as f:
    for i in range(20):
        f.write(bytes([i % 10]) + image(i % 10))
# IDX: 28x28 grey, class k has row band k bright
os.makedirs(out + "/idx")
def idx(name, n):
    imgs, labs = bytearray(), bytearray()
    for i in range(n):
        k = i % 10
        labs.append(k)
        for y in range(28):
            for x in range(28):
                imgs.append(200 if y // 3 == k else rnd.randrange(30))
    with gzip.open(f"{out}/idx/{name}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(imgs))
    with open(f"{out}/idx/{name}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labs))
idx("train", 60)
idx("t10k", 20)
# .npy: uint8 [40, 3, 32, 32] and int64 labels
def npy(path, descr, shape, data):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{s}, " for s in shape))
    pad = 64 - (10 + len(d) + 1) % 64
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d) + pad + 1) +
                d.encode() + b" " * pad + b"\n" + data)
labels = [i % 10 for i in range(40)]
npy(out + "/x.npy", "|u1", (40, 3, 32, 32), b"".join(image(k) for k in labels))
npy(out + "/y.npy", "<i8", (40,), struct.pack("<40q", *labels))
EOF

net() { # NAME DATA AUGMENT
  cat > "$tmp/$1.net" <<EOF
network $1
input image: [3, 32, 32]
image -> flatten -> dense(10) => logits
train {
  data $2
  loss softmax_cross_entropy(logits)
  optimizer sgd(lr=0.01, momentum=0.9)
  batch 16  epochs 3
  $3
}
EOF
  "$netc" build "$tmp/$1.net" -o "$tmp/$1"
}

# ---- CIFAR-10, augmented ----
net cifarnet "cifar10(\"$tmp/cifar\")" \
    "augment [crop(4), flip, normalize(mean=[0.3, 0.3, 0.3], std=[0.25, 0.25, 0.25])]"
"$tmp/cifarnet" info > "$tmp/info.txt"
grep -q "data cifar10 $tmp/cifar" "$tmp/info.txt" || fail "info does not name the data"
grep -q "augment crop 4 flip" "$tmp/info.txt" || fail "info does not show the augmentation"
grep -q "normalize mean 0.3 0.3 0.3 std 0.25 0.25 0.25" "$tmp/info.txt" || fail "info: normalize"
"$tmp/cifarnet" train --save "$tmp/full.ck" --metrics "$tmp/m.jsonl" --plot "$tmp/c.svg" > "$tmp/out.txt"
cat "$tmp/out.txt"
[ "$(wc -l < "$tmp/m.jsonl")" = 3 ] || fail "expected 3 metrics lines"
grep -q "<polyline" "$tmp/c.svg" || fail "no curves in the plot"
# Augmentation is drawn per epoch from the seed: a resumed run is the same.
"$tmp/cifarnet" train --epochs 1 --save "$tmp/part.ck" --quiet > /dev/null
"$tmp/cifarnet" train --epochs 3 --resume "$tmp/part.ck" --save "$tmp/part.ck" --quiet > /dev/null
cmp -s "$tmp/full.ck" "$tmp/part.ck" || fail "resuming an augmented run changed the result"
"$tmp/cifarnet" eval --weights "$tmp/full.ck" --metrics "$tmp/ev.json" > "$tmp/eval.txt"
cat "$tmp/eval.txt"
grep -q "top5 " "$tmp/eval.txt" || fail "eval prints no top-5 accuracy"
grep -q "^confusion matrix" "$tmp/eval.txt" || fail "eval prints no confusion matrix"
grep -q '"confusion":\[\[' "$tmp/ev.json" || fail "no confusion matrix in eval's JSON"
"$tmp/cifarnet" plot "$tmp/m.jsonl" -o "$tmp/p.svg" | grep -q "wrote $tmp/p.svg"

# ---- IDX, grey to RGB and resized ----
net fashion "fashion_mnist(\"$tmp/idx\", channels=3, size=32)" ""
"$tmp/fashion" train --epochs 2 --quiet | grep -q "test_acc" || fail "fashion_mnist(channels=3, size=32)"
net fashion_plain "fashion_mnist(\"$tmp/idx\")" ""
st=0
"$tmp/fashion_plain" train --quiet 2> "$tmp/err.txt" || st=$?
[ $st = 1 ] && grep -q "images are 28x28, the model's input 'image' is \[3,32,32\]" "$tmp/err.txt" \
  || { cat "$tmp/err.txt"; fail "28x28 IDX into [3,32,32] without channels/size"; }

# ---- .npy with a held-out split ----
net arrays "npy(\"$tmp/x.npy\", \"$tmp/y.npy\", split=0.25)" ""
"$tmp/arrays" train --quiet | grep -q "/10)" || fail "split=0.25 of 40 should test 10"
"$tmp/arrays" train --save "$tmp/a.ck" --quiet > /dev/null
"$tmp/arrays" eval --weights "$tmp/a.ck" | grep -q "/10)" || fail "eval of the held-out split"

# ---- predict: one file per input and per output ----
cat > "$tmp/two.net" <<'EOF2'
network two
input a: [4]
input b: [4]
(a, b) -> add -> s: dense(3) => y
y -> relu => r
output y, r
EOF2
"$netc" build "$tmp/two.net" -o "$tmp/two"
python3 - "$tmp" <<'EOF2'
import json, struct, sys
out = sys.argv[1]
def npy(path, rows):
    d = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 4), }" % len(rows)
    pad = 64 - (10 + len(d) + 1) % 64
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d) + pad + 1) + d.encode() +
                b" " * pad + b"\n" + b"".join(struct.pack("<4f", *r) for r in rows))
npy(out + "/a.npy", [[i, 1, 2, 3] for i in range(5)])
npy(out + "/b.npy", [[1, -i, 0, 5] for i in range(5)])
npy(out + "/b4.npy", [[1, 1, 1, 1]] * 4)
w = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, -1]
bias = [0.5, -0.5, 0]
head = json.dumps({"s.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
                   "s.bias": {"dtype": "F32", "shape": [3], "data_offsets": [48, 60]}}).encode()
with open(out + "/w.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(head)) + head + struct.pack("<15f", *(w + bias)))
EOF2
"$tmp/two" predict --weights "$tmp/w.safetensors" --input "a=$tmp/a.npy" --input "b=$tmp/b.npy" \
    --output "s=$tmp/s.npy" --output "relu1=$tmp/r.npy" > "$tmp/pred.txt"
grep -q "wrote $tmp/s.npy \[5,3\]" "$tmp/pred.txt" && grep -q "wrote $tmp/r.npy \[5,3\]" "$tmp/pred.txt" \
  || { cat "$tmp/pred.txt"; fail "predict should write both outputs"; }
python3 - "$tmp" <<'EOF2' || fail "predict's outputs are wrong"
import struct, sys
out = sys.argv[1]
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<H", data[8:10])[0]
    body = data[10 + n:]
    return struct.unpack("<%df" % (len(body) // 4), body)
s, r = load(out + "/s.npy"), load(out + "/r.npy")
for i in range(5):
    x = [i + 1, 1 - i, 2, 8]            # a + b
    want = [x[0] + 0.5, x[1] - 0.5, x[2] - x[3]]
    for k in range(3):
        assert abs(s[3 * i + k] - want[k]) < 1e-6, (i, k, s[3 * i + k], want[k])
        assert abs(r[3 * i + k] - max(want[k], 0)) < 1e-6
EOF2
st=0
"$tmp/two" predict --weights "$tmp/w.safetensors" --input "a=$tmp/a.npy" --output "$tmp/s.npy" \
    2> "$tmp/err.txt" || st=$?
[ $st = 2 ] && grep -q "predict needs --input b=X.npy (the model's inputs: a and b)" "$tmp/err.txt" \
  || { cat "$tmp/err.txt"; fail "predict without input b"; }
st=0
"$tmp/two" predict --weights "$tmp/w.safetensors" --input "a=$tmp/a.npy" --input "b=$tmp/b4.npy" \
    --output "$tmp/s.npy" 2> "$tmp/err.txt" || st=$?
[ $st = 1 ] && grep -q "b4.npy: 4 samples, but .*a.npy has 5" "$tmp/err.txt" \
  || { cat "$tmp/err.txt"; fail "predict with inputs of different sample counts"; }

# ---- bad files ----
expect_error() { # WHAT NEEDLE PROG ARGS...
  local what=$1 needle=$2; shift 2
  st=0
  "$@" > /dev/null 2> "$tmp/err.txt" || st=$?
  [ $st = 1 ] && grep -qF -- "$needle" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "$what"; }
}
head -c 3000 "$tmp/cifar/test_batch.bin" > "$tmp/cifar/cut.bin"
mv "$tmp/cifar/cut.bin" "$tmp/cifar/test_batch.bin"
expect_error "truncated CIFAR file" "test_batch.bin: 3000 bytes: not a whole number of 3073-byte" \
    "$tmp/cifarnet" eval --weights "$tmp/full.ck"
printf 'not an array' > "$tmp/y.npy"
expect_error "bad labels file" "y.npy: not a .npy file" "$tmp/arrays" train --quiet
echo "e2e_data: all checks passed"
