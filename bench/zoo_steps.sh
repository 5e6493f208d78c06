#!/usr/bin/env bash
# usage: bench/zoo_steps.sh [--build DIR] [--only REGEX] [-O LEVEL] [--steps K] [--batch N]
#                           [--max-lr X]
#
# The expensive half of the zoo tests (the cheap half is tests/zoo.cmake):
# for every network of examples/zoo at 1e8 MACs per sample or more
# (`tests/zoo_run.sh ... list big`, so files added later are included):
#
#   1. the C backend's whole output compiled: `netc emit-c`, then
#      `cc -std=gnu11 -O0 -c` (the suite only checks its syntax);
#   2. a few training steps through the LLVM backend (`netc emit-obj -O
#      LEVEL`, default 1, which compiles in a fraction of -O2's time):
#      tests/zoo_steps.c on a fixed batch of generated data (default 2
#      samples, 3 steps, the network's own optimiser with its learning
#      rate capped at --max-lr, default 0.01: ShuffleNet's 0.5, meant for
#      batches of 256, diverges on 2 samples, and so does 0.05), which
#      passes when the loss after the steps is below the loss before them.
#
# Prints one line per network and step, then a summary table; exit status
# 1 when anything failed.  Needs no data set and no PyTorch.  Times are
# wall-clock seconds on whatever else the machine is doing.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=build level=1 steps=3 batch=2 only=. max_lr=0.01
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -O) level=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --max-lr) max_lr=$2; shift 2 ;;
    *) echo "usage: bench/zoo_steps.sh [--build DIR] [--only REGEX] [-O LEVEL] [--steps K] [--batch N] [--max-lr X]"; exit 2 ;;
  esac
done
netc=$build/netc netcrt=$build/libnetcrt.a
for f in "$netc" "$netcrt"; do
  [ -e "$f" ] || { echo "no $f: build netc first (cmake --build $build)"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

status=0
rows=()
for f in $(bash tests/zoo_run.sh "$netc" "$netcrt" list big | grep -E -- "$only"); do
  name=$(basename "$f" .net)
  t0=$(now)
  if "$netc" emit-c "$f" -o "$tmp/$name" >"$tmp/log" 2>&1 &&
     cc -std=gnu11 -O0 -c -Iruntime "$tmp/$name/$name.c" -o "$tmp/$name/$name.o" >>"$tmp/log" 2>&1; then
    c="ok $(secs "$t0" "$(now)") s"
  else
    c="FAIL"; status=1; sed 's/^/    /' "$tmp/log" | head -20
  fi
  rm -rf "${tmp:?}/$name"
  echo "$name: C backend, emit-c + cc -O0 -c: $c"
  t0=$(now)
  bash tests/zoo_run.sh "$netc" "$netcrt" steps "$f" llvm -O "$level" --steps "$steps" --batch "$batch" \
      --max-lr "$max_lr" \
      >"$tmp/steps" 2>&1
  rc=$?
  sed 's/^/    /' "$tmp/steps"
  line=$(grep -E '^(PASS|FAIL) ' "$tmp/steps" | tail -1)
  if [ $rc -eq 0 ]; then s="ok"; else s="FAIL"; status=1; fi
  loss=$(echo "$line" | sed -n 's/.*: loss \(.*\) after.*/\1/p')
  rows+=("| $name | $c | $s ${loss:-} | $(secs "$t0" "$(now)") s |")
done
echo
echo "| network | C: emit-c + cc -O0 -c | LLVM -O$level: $steps steps, batch $batch (loss) | build + steps |"
echo "|---|---|---|---|"
for r in "${rows[@]}"; do echo "$r"; done
exit $status
