#!/usr/bin/env bash
# LeNet-5 on Fashion-MNIST: netc against PyTorch, same network, same
# hyperparameters, at 1 and 2 threads.  See bench/README.md.
#
#   bench/run.sh [--epochs N] [--quick] [--schedule constant|cosine]
#
# Builds netc in build-bench/ (Release), compiles examples/lenet.net with
# every backend this netc has, trains each program and bench/lenet_torch.py,
# and prints a table.  Logs and per-epoch metrics stay in
# build-bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

epochs=3
lr=0.01
momentum=0.9      # examples/lenet.net's optimizer line; netc reads it from the file
batch=64
schedule=constant # the comparison's setting; examples/lenet.net trains with cosine
threads_list=(1 2)
python=/usr/bin/python3   # the interpreter with PyTorch

while [ $# -gt 0 ]; do
  case $1 in
    --epochs) epochs=$2; shift 2 ;;
    --quick) epochs=1; shift ;;
    --schedule) schedule=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

data=/usr/share/datasets/fashion-mnist
[ -e "$data/train-images-idx3-ubyte.gz" ] || { echo "bench: Fashion-MNIST not found in $data" >&2; exit 1; }
"$python" -c "import torch" 2>/dev/null || { echo "bench: $python has no PyTorch" >&2; exit 1; }

build=build-bench
out=$build/results
mkdir -p "$out"
rm -f "$out"/*.jsonl "$out"/*.log

echo "== building netc (Release) in $build"
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNETC_TESTS=OFF &&
        cmake --build "$build" -j2 --target netc netcrt; } >"$out/cmake.log" 2>&1; then
  tail -n 30 "$out/cmake.log"; echo "bench: building netc failed (log: $out/cmake.log)" >&2; exit 1
fi

backends=()
for be in c llvm; do
  if "$build/netc" build examples/lenet.net -o "$build/lenet-$be" --backend "$be" \
       >"$out/build-$be.log" 2>&1; then
    backends+=("$be")
  else
    echo "   (no $be backend: $(tail -n 1 "$out/build-$be.log"))"
  fi
done
[ ${#backends[@]} -gt 0 ] || { echo "bench: netc could not build examples/lenet.net" >&2; exit 1; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "== $epochs epoch(s), batch $batch, lr $lr, momentum $momentum"

# Other work on the machine skews timings, the 2-thread rows most: a busy
# core stalls every synchronisation point of a multi-threaded run.
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== load average before the runs: $(loadavg)"

for t in "${threads_list[@]}"; do
  echo "-- PyTorch, $t thread(s); load average $(loadavg)"
  "$python" bench/lenet_torch.py --epochs "$epochs" --batch "$batch" --lr "$lr" \
      --momentum "$momentum" --schedule "$schedule" --threads "$t" --metrics "$out/pytorch-$t.jsonl" | tee "$out/pytorch-$t.log"
  for be in "${backends[@]}"; do
    echo "-- netc ($be), $t thread(s); load average $(loadavg)"
    "$build/lenet-$be" train --epochs "$epochs" --threads "$t" \
        --batch "$batch" --lr "$lr" --schedule "$schedule" --metrics "$out/netc-$be-$t.jsonl" | tee "$out/netc-$be-$t.log"
  done
done

echo
"$python" - "$out" "${threads_list[@]}" <<'EOF'
import json, os, statistics, sys
out, threads = sys.argv[1], sys.argv[2:]

def load(name):
    path = os.path.join(out, name + ".jsonl")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows or None

frameworks = ["pytorch"] + sorted({f.split("-")[1] for f in os.listdir(out)
                                   if f.startswith("netc-") and f.endswith(".jsonl")})
head = "%-12s %7s %9s %13s %10s %18s" % ("framework", "threads", "test acc",
                                         "s/epoch (med)", "images/s", "time vs PyTorch")
print(head)
print("-" * len(head))
for t in threads:
    base = load("pytorch-%s" % t)
    base_s = statistics.median(r["seconds"] for r in base) if base else None
    for fw in frameworks:
        rows = load("pytorch-%s" % t if fw == "pytorch" else "netc-%s-%s" % (fw, t))
        label = "PyTorch" if fw == "pytorch" else "netc (%s)" % fw
        if not rows:
            print("%-12s %7s   (no metrics: see %s/*.log)" % (label, t, out))
            continue
        sec = statistics.median(r["seconds"] for r in rows)
        ips = statistics.median(r["images_per_s"] for r in rows)
        ratio = "%.2fx" % (sec / base_s) if base_s else "-"
        print("%-12s %7s %9.4f %13.2f %10.0f %18s"
              % (label, t, rows[-1]["test_acc"], sec, ips, ratio))
EOF
echo
echo "time vs PyTorch = netc's median s/epoch / PyTorch's at the same thread count (lower is faster)"
echo "load average after the runs: $(loadavg) (on $(nproc) cores; well above 1 means the timings are shared)"
