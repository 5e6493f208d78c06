#!/usr/bin/env bash
# usage: e2e_optim.sh NETC
# The optimisers through the whole tool chain: a small .net file per
# optimiser (with freeze, lr_mult, clip_norm, warm-up and a schedule among
# them) is built with the C backend, trained four short epochs in one run
# and two plus two with --resume; the two checkpoints must be the same
# bytes, the loss must fall, and the frozen layer must keep its initial
# weights.  (No cosine schedule here: it depends on --epochs, which the
# two-epoch run changes.)
set -euo pipefail
netc=$1
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

configs=(
  "optimizer adam(lr=0.002, amsgrad=true)  warmup 1  clip_norm 1.0  freeze [h]"
  "optimizer rmsprop(lr=0.001, momentum=0.5, centered=true)  lr_mult [o(2)]  schedule step(every=1, gamma=0.7)"
  "optimizer adamw(lr=0.002, weight_decay=0.05)  schedule step(every=2, gamma=0.5)"
  "optimizer adagrad(lr=0.02, lr_decay=0.001, initial_accumulator_value=0.1)"
  "optimizer adadelta  clip_norm 5"
  "optimizer sgd(lr=0.05, momentum=0.9, dampening=0.1)  freeze [h]  lr_mult [o(0.5)]"
)
for i in "${!configs[@]}"; do
  cfg=${configs[$i]}
  cat > "$tmp/m$i.net" <<NET
network m$i
input image: [1, 28, 28]
image -> flatten -> h: dense(16) -> relu -> o: dense(10) => logits
train {
  loss softmax_cross_entropy(logits)
  $cfg
  batch 64
  epochs 4
}
NET
  prog=$tmp/m$i
  "$netc" build "$tmp/m$i.net" -o "$prog" --backend c
  small=(--limit 512 --test-limit 256 --quiet)
  "$prog" train "${small[@]}" --save "$tmp/full$i.ck" --metrics "$tmp/full$i.jsonl" > /dev/null
  "$prog" train "${small[@]}" --epochs 2 --save "$tmp/part$i.ck" > /dev/null
  "$prog" train --epochs 4 --resume "$tmp/part$i.ck" --save "$tmp/part$i.ck" --quiet > /dev/null
  l1=$(sed -n 1p "$tmp/full$i.jsonl" | sed 's/.*"train_loss":\([0-9.e+-]*\).*/\1/')
  l4=$(sed -n 4p "$tmp/full$i.jsonl" | sed 's/.*"train_loss":\([0-9.e+-]*\).*/\1/')
  if ! cmp -s "$tmp/full$i.ck" "$tmp/part$i.ck"; then
    echo "FAIL: $cfg: 4 epochs and 2 + resume + 2 differ"; fails=$((fails + 1))
  elif ! awk -v a="$l1" -v b="$l4" 'BEGIN { exit !(b < a) }'; then
    echo "FAIL: $cfg: the loss did not fall ($l1 -> $l4)"; fails=$((fails + 1))
  else
    echo "ok: $cfg: resume exact, train_loss $l1 -> $l4"
  fi
done

# A frozen layer keeps its initial weights: configs 0 and 5 both freeze h
# and share the seed, so after training with different optimisers their h
# tensors are still the same bytes (and their o tensors are not).
python3 - "$tmp/full0.ck" "$tmp/full5.ck" <<'PY' || fails=$((fails + 1))
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    data = b[8 + n:]
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in head.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
for name in ("h.weight", "h.bias"):
    if a[name] != b[name]:
        sys.exit("FAIL: frozen %s changed in training" % name)
if a["o.weight"] == b["o.weight"]:
    sys.exit("FAIL: o.weight did not train")
print("ok: frozen h kept its initial values")
PY
[ $fails = 0 ] && echo "PASS e2e.optim"
exit $fails
