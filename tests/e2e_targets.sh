#!/usr/bin/env bash
# usage: e2e_targets.sh NETC
# Targets other than one class label per image, fed by `train` itself:
# a class per position from .npy masks (segmentation, with ignore_index),
# float targets per sample (regression), the input as its own target
# (target=self: an autoencoder), and volumes [N, C, D, H, W] for a 3D
# network; each trains (its loss falls), evaluates and reports what its
# target allows, and bad target files are errors naming the file.  The data
# is written here by a small Python script (no numpy needed).
set -euo pipefail
netc=$1
command -v python3 > /dev/null || { echo "SKIP: no python3 to write the data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

python3 - "$tmp" <<'EOF'
import gzip, random, struct, sys
out = sys.argv[1]
rnd = random.Random(3)
def npy(path, descr, shape, data):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join(f"{s}, " for s in shape))
    pad = 64 - (10 + len(d) + 1) % 64
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d) + pad + 1) +
                d.encode() + b" " * pad + b"\n" + data)
# Segmentation: 8x8 grey images; class 1 where the pixel is bright, 2 in the
# bright rows' neighbours, 0 elsewhere; the border is 255 (ignored).
imgs, masks = bytearray(), []
for i in range(48):
    band = i % 6
    for y in range(8):
        for x in range(8):
            bright = y in (band, band + 1)
            imgs.append(220 if bright else rnd.randrange(40))
            m = 1 if bright else 2 if y in (band - 1, band + 2) else 0
            masks.append(255 if x == 0 else m)
npy(out + "/seg_x.npy", "|u1", (48, 1, 8, 8), bytes(imgs))
npy(out + "/seg_y.npy", "<i8", (48, 8, 8), struct.pack(f"<{len(masks)}q", *masks))
npy(out + "/seg_bad_shape.npy", "<i8", (48, 8, 7), struct.pack(f"<{48*56}q", *([0] * 48 * 56)))
bad = masks[:]
bad[64 * 5 + 9] = 3
npy(out + "/seg_bad_class.npy", "<i8", (48, 8, 8), struct.pack(f"<{len(bad)}q", *bad))
npy(out + "/seg_float.npy", "<f4", (48, 8, 8), struct.pack(f"<{len(masks)}f", *masks))
# Regression: x [40, 6] float32, y = a fixed linear map of x, [40, 2].
xs, ys = [], []
for i in range(40):
    v = [rnd.uniform(-1, 1) for _ in range(6)]
    xs += v
    ys += [v[0] - 0.5 * v[3], 0.25 * v[1] + v[5]]
npy(out + "/reg_x.npy", "<f4", (40, 1, 1, 6), struct.pack(f"<{len(xs)}f", *xs))
npy(out + "/reg_y.npy", "<f4", (40, 2), struct.pack(f"<{len(ys)}f", *ys))
nan = ys[:]
nan[7] = float("nan")
npy(out + "/reg_nan.npy", "<f4", (40, 2), struct.pack(f"<{len(nan)}f", *nan))
npy(out + "/labels40.npy", "<i8", (40,), struct.pack("<40q", *([0] * 40)))
# Volumes [N, 1, 4, 8, 8]: class 1 has a bright slab at depth 1..2.
vol, vl = bytearray(), []
for i in range(32):
    k = i % 2
    vl.append(k)
    for d in range(4):
        for p in range(64):
            vol.append(200 if k and d in (1, 2) else rnd.randrange(60))
npy(out + "/vol_x.npy", "|u1", (32, 1, 4, 8, 8), bytes(vol))
npy(out + "/vol_y.npy", "<i8", (32,), struct.pack("<32q", *vl))
# IDX, 28x28 grey, for the autoencoder.
def idx(name, n):
    im, lb = bytearray(), bytearray()
    for i in range(n):
        k = i % 10
        lb.append(k)
        for y in range(28):
            for x in range(28):
                im.append(200 if y // 3 == k else rnd.randrange(30))
    with gzip.open(f"{out}/{name}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(im))
    with open(f"{out}/{name}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(lb))
idx("train", 64)
idx("t10k", 16)
EOF

# The first and last loss of a metrics file: the last must be below the first.
falls() { # METRICS WHAT
  python3 - "$1" "$2" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
a, b = rows[0]["train_loss"], rows[-1]["train_loss"]
print(f"{sys.argv[2]}: train_loss {a:.4f} -> {b:.4f}")
sys.exit(0 if b < a else 1)
EOF
}

# ---- a class per position, from .npy masks ----
seg() { # NAME LABELS AUGMENT
  cat > "$tmp/$1.net" <<EOF
network $1
input image: [1, 8, 8]
image -> conv(8, kernel=3, pad=1) -> relu -> conv(3, kernel=1) => logits
output logits
train {
  data npy("$tmp/seg_x.npy", "$2", split=0.25)
  loss softmax_cross_entropy(logits, ignore_index=255)
  optimizer adam(lr=0.02)
  batch 8  epochs 6  seed 2
  $3
}
EOF
  "$netc" build "$tmp/$1.net" -o "$tmp/$1"
}
seg segnet "$tmp/seg_y.npy" ""
"$tmp/segnet" train --save "$tmp/seg.ck" --metrics "$tmp/seg.jsonl" > "$tmp/out.txt"
cat "$tmp/out.txt"
falls "$tmp/seg.jsonl" segmentation || fail "the segmentation loss did not fall"
# 12 held-out samples of 8x8 positions, the 8 border positions of each ignored
grep -q "^test_acc .*/672 positions)" "$tmp/out.txt" || fail "train's accuracy is not per position"
"$tmp/segnet" eval --weights "$tmp/seg.ck" --metrics "$tmp/seg_ev.json" > "$tmp/eval.txt"
cat "$tmp/eval.txt"
grep -q "test_acc .*/672 positions)" "$tmp/eval.txt" || fail "eval's accuracy is not per position"
grep -q '"positions":672' "$tmp/seg_ev.json" || fail "eval's JSON: positions"
! grep -q "confusion" "$tmp/eval.txt" || fail "a per-position model printed a confusion matrix"

expect_error() { # PROG MESSAGE
  local st=0
  "$1" train --quiet 2> "$tmp/err.txt" || st=$?
  [ $st = 1 ] && grep -qF -- "$2" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "expected: $2"; }
}
seg seg_shape "$tmp/seg_bad_shape.npy" ""
expect_error "$tmp/seg_shape" "seg_bad_shape.npy: targets of shape [48,8,7]: the model's target for 48 samples is [48,8,8]"
seg seg_class "$tmp/seg_bad_class.npy" ""
expect_error "$tmp/seg_class" "seg_bad_class.npy: class 3 at position 9 of sample 5 is out of range: the model has 3 classes (and the ignore_index)"
seg seg_float "$tmp/seg_float.npy" ""
expect_error "$tmp/seg_float" "seg_float.npy: targets of dtype '<f4': class indices per position need an integer dtype"
seg seg_flip "$tmp/seg_y.npy" "augment flip"
expect_error "$tmp/seg_flip" "augment crop and flip move the image but not its target"

# ---- float targets per sample ----
reg() { # NAME LABELS
  cat > "$tmp/$1.net" <<EOF
network $1
input x: [1, 1, 6]
x -> flatten -> dense(2) => y
output y
train {
  data npy("$tmp/reg_x.npy", "$2", split=0.2)
  loss mse(y)
  optimizer sgd(lr=0.1, momentum=0.9)
  batch 8  epochs 8  seed 1
}
EOF
  "$netc" build "$tmp/$1.net" -o "$tmp/$1"
}
reg regnet "$tmp/reg_y.npy"
"$tmp/regnet" train --save "$tmp/reg.ck" --metrics "$tmp/reg.jsonl" > "$tmp/out.txt"
cat "$tmp/out.txt"
falls "$tmp/reg.jsonl" regression || fail "the regression loss did not fall"
grep -q '"train_acc":null' "$tmp/reg.jsonl" || fail "a regression has no accuracy (null)"
grep -q "^test_loss .*(8 samples)" "$tmp/out.txt" || fail "train's final report: loss only"
"$tmp/regnet" eval --weights "$tmp/reg.ck" | grep -q "^test_loss .*(8 samples)" || fail "eval: loss only"
reg reg_nan "$tmp/reg_nan.npy"
expect_error "$tmp/reg_nan" "reg_nan.npy: target value 7 (in sample 3) is not finite"
reg reg_labels "$tmp/labels40.npy"
"$tmp/reg_labels" train --epochs 1 --quiet > /dev/null || fail "[N] labels for a one-hot target"

# ---- the input as its own target: an autoencoder on IDX images ----
sed "s|data fashion_mnist(target=self)|data fashion_mnist(\"$tmp\", target=self)|; s|epochs 10|epochs 3|" \
    "$(dirname "$0")/../examples/zoo/autoencoder_convt.net" > "$tmp/ae.net"
grep -q "target=self" "$tmp/ae.net" || fail "could not set the autoencoder's data"
"$netc" build "$tmp/ae.net" -o "$tmp/ae"
"$tmp/ae" info | grep -q "target self" || fail "info does not show target=self"
"$tmp/ae" train --lr 0.01 --save "$tmp/ae.ck" --metrics "$tmp/ae.jsonl" > "$tmp/out.txt"
cat "$tmp/out.txt"
falls "$tmp/ae.jsonl" autoencoder || fail "the autoencoder's loss did not fall"
grep -q "^test_loss .*(16 samples)" "$tmp/out.txt" || fail "the autoencoder's final report"

# ---- volumes ----
cat > "$tmp/vol.net" <<EOF
network vol
input v: [1, 4, 8, 8]
v -> conv(4, kernel=3, pad=1) -> relu -> global_avgpool -> flatten -> dense(2) => logits
output logits
train {
  data npy("$tmp/vol_x.npy", "$tmp/vol_y.npy", split=0.25)
  loss softmax_cross_entropy(logits)
  optimizer adam(lr=0.05)
  batch 8  epochs 6  seed 1
}
EOF
"$netc" build "$tmp/vol.net" -o "$tmp/vol"
"$tmp/vol" train --metrics "$tmp/vol.jsonl" > "$tmp/out.txt"
cat "$tmp/out.txt"
falls "$tmp/vol.jsonl" volumes || fail "the 3D network's loss did not fall"
grep -q "^test_acc .*/8)" "$tmp/out.txt" || fail "the 3D network's final report"
sed 's|  batch 8|  augment crop(1)\n  batch 8|' "$tmp/vol.net" > "$tmp/vol_crop.net"
"$netc" build "$tmp/vol_crop.net" -o "$tmp/vol_crop"
expect_error "$tmp/vol_crop" "augment crop works on images; the model's input 'v' is a volume"
# Volumes never feed a 2D network whose input has their flattened size.
sed 's|input v: \[1, 4, 8, 8\]|input v: [1, 32, 8]|; s|-> conv(4, kernel=3, pad=1) ||' \
    "$tmp/vol.net" > "$tmp/vol2d.net"
"$netc" build "$tmp/vol2d.net" -o "$tmp/vol2d"
expect_error "$tmp/vol2d" "vol_x.npy: samples are [1,4,8,8] (volumes [C, D, H, W]), the model's input 'v' is [1,32,8]"
echo "all target kinds train"
