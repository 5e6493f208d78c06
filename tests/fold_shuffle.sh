#!/usr/bin/env bash
# usage: fold_shuffle.sh NETC LIBNETCRT BACKENDS
# Shuffle folding (compiler/graph/fold_shuffle.c) end to end:
#  - ShuffleNets (v1 and v2, the zoo's and tests/golden/fold.net) have no
#    channel_shuffle or permute kernel left in --dump=loops, and had some
#    with --no-fold;
#  - tests/golden/fold.net and the small ShuffleNet take the same training
#    steps (tests/zoo_steps.c, losses to every bit) with and without the
#    fold, through each backend: the fold only moves where values are
#    stored or read, so the arithmetic is the same.
set -uo pipefail
netc=$1 netcrt=$2 backends=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passes=0 fails=0
ok() { passes=$((passes+1)); }
fail() { fails=$((fails+1)); echo "FAIL: $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -20; }
libs=(-lz -lm -pthread)

shuffle_kernels() { # file, netc flags...: the number of shuffle kernels
  local f=$1; shift
  "$netc" check --dump=loops "$@" "$f" | grep -c '^kernel k[0-9]*_\(channel_shuffle\|permute\)('
}

for f in tests/golden/fold.net examples/zoo/small/shufflenet_small.net; do
  with=$(shuffle_kernels "$f") without=$(shuffle_kernels "$f" --no-fold)
  if [ "$with" = 0 ] && [ "$without" -gt 0 ]; then ok; else
    fail "$f: $with shuffle kernels with the fold, $without without"; fi
done
# the ImageNet-size ShuffleNets: no shuffle kernel left (their shuffles are
# the small one's, so --no-fold is not built again)
for f in examples/zoo/shufflenet_v1_g3.net examples/zoo/shufflenet_v2_x1_0.net; do
  with=$(shuffle_kernels "$f")
  if [ "$with" = 0 ]; then ok; else fail "$f: $with shuffle kernels with the fold"; fi
done

steps() { # file, backend, dir, netc flags...: the losses of a few steps
  local f=$1 backend=$2 d=$3; shift 3
  local name
  name=$(sed -n 's/^network \([A-Za-z0-9_]*\).*/\1/p' "$f" | head -1)
  if [ "$backend" = llvm ]; then
    "$netc" emit-obj -O2 "$@" "$f" -o "$d" || return 1
  else
    "$netc" emit-c "$@" "$f" -o "$d" &&
      cc -std=gnu11 -O1 -c -Iruntime "$d/$name.c" -o "$d/$name.o" || return 1
  fi
  # $ZOO_LDFLAGS: the sanitizer runtimes, for the sanitizer build's library
  # shellcheck disable=SC2086
  cc -std=gnu11 -O1 -Iruntime -DZOO_META="${name}_meta" -DZOO_TRAIN="${name}_train" \
     ${ZOO_LDFLAGS:-} tests/zoo_steps.c "$d/$name.o" "$netcrt" "${libs[@]}" -o "$d/steps" &&
    "$d/steps" --steps 3
}

for f in tests/golden/fold.net examples/zoo/small/shufflenet_small.net; do
  for b in $backends; do
    n=$(basename "$f" .net)
    if ! steps "$f" "$b" "$tmp/$n.$b" >"$tmp/with" 2>&1; then
      fail "$f ($b): training steps with the fold" "$tmp/with"; continue; fi
    if ! steps "$f" "$b" "$tmp/$n.$b.nofold" --no-fold >"$tmp/without" 2>&1; then
      fail "$f ($b): training steps with --no-fold" "$tmp/without"; continue; fi
    if diff -u "$tmp/without" "$tmp/with" >"$tmp/diff"; then ok; else
      fail "$f ($b): the losses differ with the fold" "$tmp/diff"; fi
  done
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
