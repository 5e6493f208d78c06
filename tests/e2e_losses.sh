#!/usr/bin/env bash
# usage: e2e_losses.sh NETC
# Trains small Fashion-MNIST models with losses other than LeNet's through
# the runtime: bce_with_logits with reduction=sum against one-hot labels,
# smooth_l1, and softmax_cross_entropy with class weights and label
# smoothing.  Each must report finite train and test losses that fall, and
# `info` must name the loss; a per-position target must be refused with a
# clear error, as IDX data has one label per image.
set -euo pipefail
netc=$1
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
model() { # NAME LOSS LR
  cat > "$tmp/$1.net" <<NET
network $1
input image: [1, 28, 28]
image -> flatten -> dense(32) -> relu -> dense(10) => logits
output logits
train {
  loss $2
  optimizer sgd(lr=$3)
  batch 32
}
NET
  "$netc" build "$tmp/$1.net" -o "$tmp/$1"
}
check() { # NAME INFO-LINE
  "$tmp/$1" info | grep -qF "$2" || { echo "FAIL: $1 info lacks '$2'"; "$tmp/$1" info; exit 1; }
  "$tmp/$1" train --epochs 2 --limit 1000 --test-limit 300 --metrics "$tmp/$1.jsonl" > "$tmp/$1.txt"
  cat "$tmp/$1.txt"
  l1=$(sed -n 1p "$tmp/$1.jsonl" | sed 's/.*"test_loss":\([0-9.e+-]*\).*/\1/')
  l2=$(sed -n 2p "$tmp/$1.jsonl" | sed 's/.*"test_loss":\([0-9.e+-]*\).*/\1/')
  awk -v a="$l1" -v b="$l2" 'BEGIN { exit !(b < a && b > 0) }' ||
    { echo "FAIL: $1: test loss $l1 -> $l2 did not fall"; exit 1; }
}
model bce "bce_with_logits(logits, pos_weight=2, reduction=sum)" 0.002
check bce "train   loss bce_with_logits (sum), target onehot [N,10]"
model huber "smooth_l1(logits, beta=0.5)" 0.05
check huber "train   loss smooth_l1, target onehot [N,10]"
model xent "softmax_cross_entropy(logits, weight=[1, 1, 2, 1, 1, 1, 2, 1, 1, 1], label_smoothing=0.1)" 0.05
check xent "train   loss softmax_cross_entropy, target class [N]"
# a class index per pixel: the runtime cannot make one from an image label
cat > "$tmp/seg.net" <<'NET'
network seg
input image: [1, 28, 28]
image -> conv(3, kernel=1) => logits
output logits
train {
  loss softmax_cross_entropy(logits)
}
NET
"$netc" build "$tmp/seg.net" -o "$tmp/seg"
if "$tmp/seg" train --epochs 1 --limit 64 2> "$tmp/err.txt"; then
  echo "FAIL: a per-position target was fed from IDX labels"; exit 1
fi
grep -q "the model.s target is a class index per position (rank 2); [a-z_0-9]* data provides one class label per image" "$tmp/err.txt" ||
  { echo "FAIL: seg error"; cat "$tmp/err.txt"; exit 1; }
echo "PASS e2e.losses"
