#!/usr/bin/env bash
# What the optimiser's passes buy: each network trained with netc's default
# pipeline and with --no-fuse (every activation its own kernel), side by
# side on one machine, at 1 and 2 threads.
#
#   bench/fuse.sh [--build DIR] [--reps N] [--limit IMAGES] [--quick]
#
# The networks: examples/fmnist_cnn.net (conv + bias + relu, pooling,
# dense), examples/resnet_mini.net (ResNet blocks), and the same two kinds
# with batch norm: examples/fmnist_cnn_bn.net and
# examples/zoo/small/resnet_small.net (conv -> bn -> relu, and a ResNet
# block's bn -> add -> relu, which fuse into the batch norm). Each program trains
# one epoch on the first --limit Fashion-MNIST images (default 10000),
# --reps times (default 5), fused and unfused interleaved; the table gives
# the median images/s, the ratio, and the arena sizes `info` reports (the
# fused arena must be no larger). Builds netc in build-bench/ (Release)
# unless --build names an existing build. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-bench
reps=5
limit=10000
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --limit) limit=$2; shift 2 ;;
    --quick) reps=1; limit=640; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
data=/usr/share/datasets/fashion-mnist
[ -e "$data/train-images-idx3-ubyte.gz" ] || { echo "bench: Fashion-MNIST not found in $data" >&2; exit 1; }
out=$build/fuse
mkdir -p "$out"
if [ ! -x "$build/netc" ] || [ "$build" = build-bench ]; then
  echo "== building netc (Release) in $build"
  if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNETC_TESTS=OFF &&
          cmake --build "$build" -j2 --target netc netcrt; } >"$out/cmake.log" 2>&1; then
    tail -n 30 "$out/cmake.log"; echo "bench: building netc failed (log: $out/cmake.log)" >&2; exit 1
  fi
fi
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

paths=(examples/fmnist_cnn.net examples/resnet_mini.net examples/fmnist_cnn_bn.net
       examples/zoo/small/resnet_small.net)
nets=()
for f in "${paths[@]}"; do
  n=$(basename "$f" .net)
  nets+=("$n")
  "$build/netc" build "$f" -o "$out/$n-fused" > /dev/null
  "$build/netc" build "$f" -o "$out/$n-unfused" --no-fuse > /dev/null
done

# images/s of one run: the metrics line of its only epoch
ips() { # PROG THREADS
  rm -f "$out/m.jsonl"
  "$1" train --epochs 1 --limit "$limit" --test-limit 1 --threads "$2" --quiet \
      --metrics "$out/m.jsonl" > /dev/null
  sed 's/.*"images_per_s":\([0-9.e+]*\).*/\1/' "$out/m.jsonl"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
arena() { "$1" info | sed -n 's/^arena .*, \([0-9]*\) bytes for batch 64/\1 B/p'; }

echo
echo "| network | threads | fused images/s | --no-fuse images/s | fused / unfused | arena fused | arena --no-fuse |"
echo "|---|---:|---:|---:|---:|---|---|"
for n in "${nets[@]}"; do
  for t in 1 2; do
    : > "$out/$n-$t-fused.txt"
    : > "$out/$n-$t-unfused.txt"
    for _ in $(seq "$reps"); do
      ips "$out/$n-fused" "$t" >> "$out/$n-$t-fused.txt"
      ips "$out/$n-unfused" "$t" >> "$out/$n-$t-unfused.txt"
    done
    f=$(median < "$out/$n-$t-fused.txt")
    u=$(median < "$out/$n-$t-unfused.txt")
    awk -v n="$n" -v t="$t" -v f="$f" -v u="$u" -v af="$(arena "$out/$n-fused")" \
        -v au="$(arena "$out/$n-unfused")" \
        'BEGIN { printf "| %s | %d | %.0f | %.0f | %.2fx | %s | %s |\n", n, t, f, u, f / u, af, au }'
  done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
