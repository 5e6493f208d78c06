#!/usr/bin/env bash
# usage: e2e_norm.sh NETC BACKEND
# examples/lenet_bn.net (batch norm and dropout) as a program: a training
# step advances the state tensors (num_batches_tracked and the dropout step
# count one per batch, the running statistics move) and checkpoints keep
# them; training is bit-identical on 1 and 3 threads and when resumed from
# a checkpoint (the dropout masks are a hash of the step, not an RNG
# stream); eval, which runs the inference entry on the running statistics,
# reproduces the accuracy training reported.
set -euo pipefail
netc=$1 backend=$2
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$netc" build examples/lenet_bn.net -o "$tmp/net" --backend "$backend"
"$tmp/net" info | grep -q "b1.running_var .* one (state, not trained)"
strip() { sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$1"; }
# 320 images, batch 64: 5 steps per epoch
for t in 1 3; do
  "$tmp/net" train --epochs 2 --limit 320 --test-limit 200 --threads $t --quiet \
      --metrics "$tmp/t$t.jsonl" --save "$tmp/t$t.safetensors" > "$tmp/t$t.out"
  strip "$tmp/t$t.jsonl" > "$tmp/t$t.txt"
done
cmp -s "$tmp/t1.txt" "$tmp/t3.txt" || { echo "FAIL: training differs between 1 and 3 threads"; cat "$tmp/t1.txt" "$tmp/t3.txt"; exit 1; }
# one epoch, then resume for the second
"$tmp/net" train --epochs 1 --limit 320 --test-limit 200 --quiet --save "$tmp/half.safetensors" > /dev/null
"$tmp/net" train --epochs 2 --limit 320 --test-limit 200 --quiet --resume "$tmp/half.safetensors" \
    --metrics "$tmp/r.jsonl" --save "$tmp/r.safetensors" > /dev/null
strip "$tmp/r.jsonl" > "$tmp/r.txt"
sed -n 2p "$tmp/t1.txt" > "$tmp/second.txt"
tail -n 1 "$tmp/r.txt" | cmp -s - "$tmp/second.txt" || { echo "FAIL: a resumed run differs"; cat "$tmp/r.txt" "$tmp/t1.txt"; exit 1; }
# the state in the checkpoints, read with the standard library only
state() {
  python3 - "$1" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    raw = f.read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
def get(name):
    a, b = head[name]["data_offsets"]
    body = raw[8 + n + a:8 + n + b]
    return struct.unpack("<%df" % (len(body) // 4), body)
print(get("b1.num_batches_tracked")[0], get("b2.num_batches_tracked")[0], get("d1.step")[0],
      int(any(v != 0 for v in get("b1.running_mean"))), int(any(v != 1 for v in get("b2.running_var"))))
PY
}
[ "$(state "$tmp/half.safetensors")" = "5.0 5.0 5.0 1 1" ] || { echo "FAIL: state after 5 steps: $(state "$tmp/half.safetensors")"; exit 1; }
[ "$(state "$tmp/t1.safetensors")" = "10.0 10.0 10.0 1 1" ] || { echo "FAIL: state after 10 steps: $(state "$tmp/t1.safetensors")"; exit 1; }
cmp -s "$tmp/t1.safetensors" "$tmp/r.safetensors" || { echo "FAIL: the resumed run saved different weights or state"; exit 1; }
# eval (inference entry: running statistics, no dropout) agrees with the
# accuracy training printed after its last epoch
"$tmp/net" eval --weights "$tmp/t1.safetensors" --test-limit 200 > "$tmp/eval.txt"
want=$(grep -o 'test_acc [0-9.]*%' "$tmp/t1.out" | tail -n 1)
grep -q "$want" "$tmp/eval.txt" || { echo "FAIL: eval says $(cat "$tmp/eval.txt"), training said $want"; exit 1; }
echo "PASS e2e.norm.$backend: state advances per step, 1 and 3 threads and resume give the same bits, eval $want"
