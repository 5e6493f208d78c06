#!/usr/bin/env bash
# usage: fold_bn.sh NETC LIBNETCRT BACKENDS
# Batch-norm folding (compiler/graph/fold_bn.c) end to end:
#  - the forward entry of a net with conv/dense -> batchnorm (-> relu) has
#    no batchnorm kernel left in the inference entries' calls, and had
#    them with --no-fold-bn; the training entry keeps them;
#  - through each backend, the forward outputs with and without the fold
#    agree within 1e-5 relative (tests/fold_bn_forward.c, with running
#    statistics moved away from 0 and 1), and the train entry's loss and
#    gradients are the same to every bit (training does not fold); for
#    tests/golden/foldbn.net also with every convolution algorithm forced.
set -uo pipefail
netc=$1 netcrt=$2 backends=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passes=0 fails=0
ok() { passes=$((passes+1)); }
fail() { fails=$((fails+1)); echo "FAIL: $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -20; }
libs=(-lz -lm -pthread)
nets="examples/lenet_bn.net examples/fmnist_cnn_bn.net tests/golden/foldbn.net examples/zoo/small/resnet_small.net examples/zoo/small/mobilenet_v2_small.net"

folded() { "$netc" check "$@" | grep -c 'inference: in'; }

for f in $nets; do
  with=$(folded "$f") without=$(folded "$f" --no-fold-bn)
  loops=$("$netc" check --dump=loops "$f" | grep -c '^kernel k[0-9]*_batchnorm_fold(')
  if [ "$with" -gt 0 ] && [ "$without" = 0 ] && [ "$loops" -gt 0 ]; then ok; else
    fail "$f: $with nodes folded ($loops fold kernels), $without with --no-fold-bn"; fi
  train=$("$netc" check --dump=loops "$f" | grep -c '^kernel k[0-9]*_batchnorm_train(')
  train0=$("$netc" check --dump=loops --no-fold-bn "$f" | grep -c '^kernel k[0-9]*_batchnorm_train(')
  if [ "$train" = "$train0" ] && [ "$train" -gt 0 ]; then ok; else
    fail "$f: $train training batchnorm kernels with the fold, $train0 without"; fi
done

run() { # file, backend, dir, netc flags...: the driver's output
  local f=$1 backend=$2 d=$3; shift 3
  local name
  name=$(sed -n 's/^network \([A-Za-z0-9_]*\).*/\1/p' "$f" | head -1)
  if [ "$backend" = llvm ]; then
    "$netc" emit-obj -O2 "$@" "$f" -o "$d" || return 1
  else
    "$netc" emit-c "$@" "$f" -o "$d" &&
      cc -std=gnu11 -O1 -c -Iruntime "$d/$name.c" -o "$d/$name.o" || return 1
  fi
  # shellcheck disable=SC2086
  cc -std=gnu11 -O1 -Iruntime -DFB_META="${name}_meta" -DFB_FORWARD="${name}_forward" \
     -DFB_TRAIN="${name}_train" ${ZOO_LDFLAGS:-} tests/fold_bn_forward.c "$d/$name.o" "$netcrt" \
     "${libs[@]}" -o "$d/fb" && "$d/fb" --batch 3
}

# the two small nets through each backend, the larger ones through one
# each (LeNet-BN's and ResNet's layers are Fashion-MNIST CNN-BN's kinds,
# MobileNet's through the other backend); tests/golden/foldbn.net's folded
# convolutions also through each convolution algorithm (the last backend)
cases=""
first=${backends%% *} last=${backends##* }
for f in $nets; do
  case $f in
  *lenet_bn* | *resnet_small*) cases="$cases $f:$last:auto" ;;
  *mobilenet*) cases="$cases $f:$first:auto" ;;
  *) for b in $backends; do cases="$cases $f:$b:auto"; done ;;
  esac
done
for algo in direct im2col winograd; do cases="$cases tests/golden/foldbn.net:$last:$algo"; done

for c in $cases; do
    f=${c%%:*} b=${c#*:} algo=${c##*:}
    b=${b%%:*}
    n=$(basename "$f" .net)
    if ! run "$f" "$b" "$tmp/$n.$b.$algo" "--algo=$algo" >"$tmp/with" 2>&1; then
      fail "$f ($b, $algo): with the fold" "$tmp/with"; continue; fi
    if ! run "$f" "$b" "$tmp/$n.$b.$algo.nofold" "--algo=$algo" --no-fold-bn >"$tmp/without" 2>&1; then
      fail "$f ($b, $algo): with --no-fold-bn" "$tmp/without"; continue; fi
    if diff <(grep -v '^out' "$tmp/without") <(grep -v '^out' "$tmp/with") >"$tmp/diff"; then ok; else
      fail "$f ($b, $algo): the train entry differs with the fold" "$tmp/diff"; fi
    # |a - b| <= 1e-5 * max(|b|, max over the outputs of |b|)
    if paste -d' ' <(grep '^out' "$tmp/without") <(grep '^out' "$tmp/with") | awk '
         { a = $4; b = $8; d = a - b; if (d < 0) d = -d; if (b < 0) b = -b
           if (b > big) big = b; diff[NR] = d; ref[NR] = b }
         END { if (NR == 0) { print "no outputs"; exit 1 }
               for (i = 1; i <= NR; i++) if (diff[i] > 1e-5 * (ref[i] > big ? ref[i] : big)) {
                 printf "output %d: differs by %g (largest output %g)\n", i, diff[i], big; bad = 1 }
               exit bad }' >"$tmp/cmp"; then ok; else
      fail "$f ($b, $algo): the forward outputs differ with the fold" "$tmp/cmp"; fi
done
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
