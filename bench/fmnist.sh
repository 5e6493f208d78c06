#!/usr/bin/env bash
# The Fashion-MNIST examples trained to their targets: examples/fmnist_cnn.net
# (no batch norm, target 0.916 test accuracy) and examples/fmnist_cnn_bn.net
# (batch norm, target 0.934), each trained with `PROG train` and no flags,
# that is with the settings written in its train section.
#
#   bench/fmnist.sh [--backend llvm|c] [--build DIR] [--only fmnist_cnn|fmnist_cnn_bn] [--quick]
#
# Builds netc in build-bench/ (Release; --build DIR uses an existing build),
# compiles each example, trains it on all 60,000 training images for the
# file's epochs, and prints the final test accuracy (10,000 test images) and
# the wall time. Exits 1 if a network misses its target. Logs and per-epoch
# metrics stay in DIR/fmnist/. This is the full-length check (tens of
# minutes on 2 cores); the test suite's e2e.fmnist_* tests are the short one.
# --quick checks that the script works: one epoch on 2000 images, scored
# on 500, and no target enforced.
set -euo pipefail
cd "$(dirname "$0")/.."

backend=llvm
build=build-bench
only=
quick=()
while [ $# -gt 0 ]; do
  case $1 in
    --backend) backend=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --quick) quick=(--epochs 1 --limit 2000 --test-limit 500); shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $backend in llvm|c) ;; *) echo "bench: --backend is llvm or c, not '$backend'" >&2; exit 2 ;; esac

data=/usr/share/datasets/fashion-mnist
[ -e "$data/train-images-idx3-ubyte.gz" ] || { echo "bench: Fashion-MNIST not found in $data" >&2; exit 1; }

out=$build/fmnist
mkdir -p "$out"
if [ ! -x "$build/netc" ] || [ "$build" = build-bench ]; then
  echo "== building netc (Release) in $build"
  if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNETC_TESTS=OFF &&
          cmake --build "$build" -j2 --target netc netcrt; } >"$out/cmake.log" 2>&1; then
    tail -n 30 "$out/cmake.log"; echo "bench: building netc failed (log: $out/cmake.log)" >&2; exit 1
  fi
fi

echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), backend $backend"
status=0
summary=()
for entry in fmnist_cnn:0.916 fmnist_cnn_bn:0.934; do
  name=${entry%%:*} target=${entry#*:}
  [ -z "$only" ] || [ "$only" = "$name" ] || continue
  prog=$out/$name-$backend
  if ! "$build/netc" build "examples/$name.net" -o "$prog" --backend "$backend" >"$out/$name-build.log" 2>&1; then
    cat "$out/$name-build.log"; echo "bench: building examples/$name.net failed" >&2; exit 1
  fi
  rm -f "$out/$name-$backend.jsonl"
  how="(the file's settings)"; [ ${#quick[@]} -eq 0 ] || how="${quick[*]}"
  echo "== $name: $prog train $how"
  start=$(date +%s)
  if ! "$prog" train ${quick[@]+"${quick[@]}"} --metrics "$out/$name-$backend.jsonl" | tee "$out/$name-$backend.log"; then
    echo "bench: $name: training failed" >&2; exit 1
  fi
  seconds=$(( $(date +%s) - start ))
  acc=$(tail -n 1 "$out/$name-$backend.jsonl" | sed 's/.*"test_acc":\([0-9.e+-]*\).*/\1/')
  epochs=$(wc -l < "$out/$name-$backend.jsonl")
  if [ ${#quick[@]} -gt 0 ]; then verdict=quick
  elif awk -v a="$acc" -v t="$target" 'BEGIN { exit !(a >= t) }'; then verdict=ok
  else verdict=MISSED; status=1; fi
  summary+=("$(printf '%-14s test_acc %.4f  target %.3f  %-6s  %d epochs  %d s  (%d s/epoch)' \
                "$name" "$acc" "$target" "$verdict" "$epochs" "$seconds" $(( seconds / epochs )))")
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${summary[@]}"
exit $status
