#!/usr/bin/env bash
# The benchmark suite: the machine's peak, single layers and LeNet-5, netc
# against PyTorch, in one run.  See bench/README.md.
#
#   bench/suite.sh [--quick] [--rows PATTERN] [--build DIR] [--backends llvm,c]
#
#   --quick          a smoke run: 1 repetition of ~0.02 s, 1 short epoch
#   --rows PATTERN   only rows whose name matches the extended regex
#                    (layer rows, "lenet" inference, "lenet_train")
#   --build DIR      netc's build directory (default build-bench, as bench/run.sh)
#   --backends LIST  netc backends to measure (default llvm,c)
#
# Writes bench/results/latest.txt (raw lines) and bench/results/latest.md
# (the tables), and prints the tables.  Run it on a quiet machine: other
# work on the cores skews every number, the 2-thread ones most.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
rows=""
build="build-bench"
backends=llvm,c
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; shift ;;
    --rows) rows=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "suite: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

if [ $quick = 1 ]; then
  reps=1 seconds=0.02 peak_args="--seconds 0.05 --reps 1" epochs=1 limit=640
else
  reps=7 seconds=0.2 peak_args="--seconds 0.5 --reps 5" epochs=2 limit=0
fi
python=/usr/bin/python3     # Debian's python3-torch; the default python3 may lack it
cc=${CC:-cc}                # compiles peak.c, layer_main.c and the C backend's output
out=bench/results
work=$build/suite
raw=$out/latest.txt
mkdir -p "$out" "$work"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(loadavg)

# ---- packages: PyTorch, torchvision (the networks), the BLAS, GNU time for peak RSS ----
pkgs=(python3-torch python3-torchvision libopenblas0-pthread time)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# ---- netc ----
echo "== building netc in $build"
if [ ! -e "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNETC_TESTS=OFF >"$work/cmake.log" 2>&1 ||
    { tail -n 30 "$work/cmake.log"; exit 1; }
fi
cmake --build "$build" -j2 --target netc netcrt >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log"; echo "suite: building netc failed" >&2; exit 1; }
netc=$build/netc

# ---- which BLAS PyTorch calls ----
# Debian's torch is built with BLAS_INFO=generic: it calls whatever
# libblas.so.3 the alternatives system points at.  OpenBLAS 0.3.21 falls
# back to its Prescott (SSE3) kernels on CPUs newer than it knows; then the
# suite names the kernels this CPU can run, unless the caller chose some.
torch_info=$("$python" bench/layers_torch.py --info)
core=$(sed -n 's/^openblas=.* core=//p' <<<"$torch_info")
blas_note=""
if [ -z "${OPENBLAS_CORETYPE+set}" ] && [ "$core" = Prescott ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
  if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
    blas_note=" (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE set by the suite: OpenBLAS picked Prescott on this CPU)"
    torch_info=$("$python" bench/layers_torch.py --info)
  fi
elif [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  blas_note=" (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE from the environment)"
fi
blas_alt=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')
blas="torch $(grep -o 'BLAS_INFO=[^,]*' <<<"$torch_info" | head -1), libblas.so.3 -> ${blas_alt:-?}; \
$(sed -n 's/^openblas=\(OpenBLAS [0-9.]*\).* core=\(.*\)/\1, \2 kernels/p' <<<"$torch_info")$blas_note; \
$(sed -n 's/^blas_check //p' <<<"$torch_info")"

# ---- the header ----
flags=$(grep -m1 -o -w -E 'avx2|avx512f|avx512_fp16|avx512_bf16|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ' || true)
{
  echo "meta date $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "meta commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)') $(git log -1 --format=%s)"
  echo "meta cpu $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "meta cores $(nproc) online, $(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core"
  echo "meta flags ${flags:-none of avx2/avx512}"
  echo "meta cc $("$cc" --version | head -1)"
  echo "meta llvm $(ldd "$netc" | grep -o 'libLLVM[^ ]*' | head -1 || echo 'none (C backend only)')"
  echo "meta torch $(sed -n 's/^torch_version=//p' <<<"$torch_info") ($python), OMP_WAIT_POLICY=PASSIVE"
  echo "meta blas $blas"
  echo "meta mode $([ $quick = 1 ] && echo 'quick (smoke run, not a measurement)' || echo 'full'): $reps repetition(s) of ~$seconds s, rows ${rows:-all}"
  echo "meta load_before $load_before"
} >"$raw"
sed 's/^meta //' "$raw"

# ---- peak ----
echo "== peak (bench/peak.c)"
"$cc" -std=gnu11 -O2 -march=native -pthread bench/peak.c -o "$work/peak"
nfma=$(objdump -d --no-show-raw-insn "$work/peak" | awk '/<fma_kernel>:/,/ret/' | grep -c vfmadd || true)
echo "meta peak_check fma_kernel has $nfma vfmadd instructions" >>"$raw"
[ "$nfma" -gt 0 ] || echo "suite: warning: bench/peak.c's loop is not FMA on this compiler" >&2
# shellcheck disable=SC2086
"$work/peak" $peak_args | tee -a "$raw"

# ---- layers and LeNet inference, interleaved with PyTorch ----
echo "== layers (netc backends: $backends)"
"$python" bench/suite.py layers --netc "$netc" --netcrt "$build/libnetcrt.a" --work "$work" \
    ${rows:+--rows "$rows"} --reps "$reps" --seconds "$seconds" --backends "$backends" --cc "$cc" >>"$raw"

# ---- LeNet training ----
if [ -z "$rows" ] || grep -qE -- "$rows" <<<"lenet_train"; then
  if [ "$limit" = 0 ]; then images="all 60,000 images"; else images="the first $limit images"; fi
  echo "== LeNet training: $epochs epoch(s) on $images"
  built=()
  for be in ${backends//,/ }; do
    if "$netc" build examples/lenet.net -o "$work/lenet-$be" --backend "$be" >"$work/lenet-build-$be.log" 2>&1; then
      built+=("$be")
    else
      echo "error side=netc-$be model=lenet_train msg=netc_build_failed" >>"$raw"
    fi
  done
  "$python" bench/suite.py lenet-train --prog-dir "$work" --work "$work/lenet" --epochs "$epochs" \
      --limit "$limit" --backends "$(IFS=,; echo "${built[*]:-none}")" >>"$raw"
fi

echo "meta load_after $(loadavg)" >>"$raw"
"$python" bench/suite.py report "$raw" >"$out/latest.md"
echo
cat "$out/latest.md"
echo
echo "raw lines: $raw; tables: $out/latest.md"
