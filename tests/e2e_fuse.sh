#!/usr/bin/env bash
# usage: e2e_fuse.sh NETC BACKEND [ALGO...]
# Epilogue fusion changes no bit.  For each convolution algorithm (default:
# auto, which runs both nets' convolutions direct and im2col, then im2col
# and winograd forced), builds examples/resnet_mini.net (residual
# add + relu, forward and backward) and tests/fuse/acts.net (every fusable
# activation and its gradient, a residual add, strided, 1x1 and dense
# layers) and tests/fuse/bn.net (batch norms taking a relu, a relu6, and a
# residual add and relu) with and without --no-fuse, trains one short
# epoch of each, and
# compares every metric; the fused program also on 3 threads, and, with
# NETC_FUSE_CROSS=OTHER_BACKEND, built by the other backend.  The inference
# graphs of acts.net and bn.net (no train section: every activation fuses
# forward, batch norms fold) run `predict` from the trained weights, fused
# and unfused, and the outputs must be the same bytes.
set -euo pipefail
netc=$1 backend=$2
shift 2
algos=("$@")
[ ${#algos[@]} -gt 0 ] || algos=(auto im2col winograd)
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The inference graph of acts.net: the same layers without a train section.
sed '/^train {/,/^}/d' tests/fuse/acts.net > "$tmp/acts_infer.net"
sed '/^train {/,/^}/d' tests/fuse/bn.net > "$tmp/bn_infer.net"
python3 - "$tmp/x.npy" <<'PY'
import struct, sys
shape = [3, 1, 28, 28]
header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(shape),)
header += " " * (63 - (len(header) + 10) % 64) + "\n"
n = 3 * 28 * 28
data = struct.pack("<%df" % n, *[((i * 37) % 101) / 50.0 - 1.0 for i in range(n)])
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
PY

metrics() { # PROG THREADS OUT [--save CKPT]
  local prog=$1 t=$2 out=$3
  shift 3
  "$prog" train --epochs 1 --limit 96 --test-limit 64 --threads "$t" --quiet --metrics "$out.jsonl" "$@" > /dev/null
  sed 's/"seconds":[0-9.e+-]*//; s/"images_per_s":[0-9.e+-]*//' "$out.jsonl" > "$out"
}

fail=0
for algo in "${algos[@]}"; do
  for net in examples/resnet_mini.net tests/fuse/acts.net tests/fuse/bn.net; do
    name=$(basename "$net" .net)
    tag="$name-$algo"
    "$netc" build "$net" -o "$tmp/$tag" --backend "$backend" "--algo=$algo"
    "$netc" build "$net" -o "$tmp/$tag-nofuse" --backend "$backend" "--algo=$algo" --no-fuse
    metrics "$tmp/$tag" 1 "$tmp/$tag.txt" --save "$tmp/$tag.safetensors"
    metrics "$tmp/$tag" 3 "$tmp/$tag-t3.txt"
    metrics "$tmp/$tag-nofuse" 1 "$tmp/$tag-nofuse.txt"
    if ! cmp -s "$tmp/$tag.txt" "$tmp/$tag-nofuse.txt"; then
      echo "FAIL: $name --algo=$algo [$backend]: --no-fuse trains differently"
      cat "$tmp/$tag.txt" "$tmp/$tag-nofuse.txt"; fail=1
    fi
    if ! cmp -s "$tmp/$tag.txt" "$tmp/$tag-t3.txt"; then
      echo "FAIL: $name --algo=$algo [$backend]: 3 threads train differently"
      cat "$tmp/$tag.txt" "$tmp/$tag-t3.txt"; fail=1
    fi
    if [ -n "${NETC_FUSE_CROSS:-}" ]; then
      "$netc" build "$net" -o "$tmp/$tag-cross" --backend "$NETC_FUSE_CROSS" "--algo=$algo"
      metrics "$tmp/$tag-cross" 1 "$tmp/$tag-cross.txt"
      if ! cmp -s "$tmp/$tag.txt" "$tmp/$tag-cross.txt"; then
        echo "FAIL: $name --algo=$algo: $backend and $NETC_FUSE_CROSS train differently"
        cat "$tmp/$tag.txt" "$tmp/$tag-cross.txt"; fail=1
      fi
    fi
  done
  # inference: every activation fused into the layer before it
  for name in acts bn; do
    tag="$name-$algo"
    "$netc" build "$tmp/${name}_infer.net" -o "$tmp/$tag-infer" --backend "$backend" "--algo=$algo"
    "$netc" build "$tmp/${name}_infer.net" -o "$tmp/$tag-infer-nofuse" --backend "$backend" "--algo=$algo" --no-fuse
    for v in infer infer-nofuse; do
      "$tmp/$tag-$v" predict --weights "$tmp/$tag.safetensors" --input "$tmp/x.npy" --output "$tmp/$tag-$v.npy" > /dev/null
    done
    if ! cmp -s "$tmp/$tag-infer.npy" "$tmp/$tag-infer-nofuse.npy"; then
      echo "FAIL: $name inference --algo=$algo [$backend]: --no-fuse predicts differently"; fail=1
    fi
  done
  echo "ok: --algo=$algo [$backend]"
done
# the fused inference graph really holds every activation in an epilogue
fused=$("$netc" check "$tmp/acts_infer.net" | grep -c "fused into" || true)
[ "$fused" = 11 ] || { echo "FAIL: acts inference: $fused nodes fused, expected 11"; fail=1; }
# and bn.net's graphs no kernel of their own for any relu, relu6 or add
left=$("$netc" check tests/fuse/bn.net --dump=loops | grep -cE '^kernel k[0-9]+_(relu|relu6|add)[(_]' || true)
[ "$left" = 0 ] || { echo "FAIL: bn: $left relu, relu6 or add kernels left"; fail=1; }
exit $fail
