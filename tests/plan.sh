#!/usr/bin/env bash
# usage: plan.sh NETC [BACKEND...]
# Autotuning and plan files from the command line: `netc build --autotune`
# on a tiny net writes a plan (default PROG.plan, or --autotune=FILE) with a
# line per convolution node; a second build and `check --dump=algo` read
# it with --plan and show "plan: ..." as the reason; --algo still wins; a
# stale entry is a warning with file:line and the cost model decides; a
# malformed plan is an error with file:line:col; an entry's second
# algorithm (below=N:ALGO, from=N:ALGO) is applied with its batches.  No
# timings are asserted.
set -uo pipefail
netc=$1; shift
backends=${*:-c}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
check() { # name, then a command that must succeed
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then passes=$((passes+1)); else
    fails=$((fails+1)); echo "FAIL: $name"; sed 's/^/    /' "$tmp/out" | head -20; fi
}
expect_fail() { # name, pattern, command...
  local name=$1 pat=$2; shift 2
  if "$@" >"$tmp/out" 2>&1; then fails=$((fails+1)); echo "FAIL: $name: succeeded"; return; fi
  if grep -q -- "$pat" "$tmp/out" && ! grep -q "internal error" "$tmp/out"; then passes=$((passes+1)); else
    fails=$((fails+1)); echo "FAIL: $name: expected '$pat'"; sed 's/^/    /' "$tmp/out" | head -10; fi
}
net=tests/golden/tiny.net
sig='\[1,6,6\]->\[2,4,4\],k3x3,s1x1,d1x1,p0:0x0:0,g1'

for b in $backends; do
  check "$b: build --autotune" "$netc" build $net -o "$tmp/tiny-$b" --backend $b --autotune
  plan=$tmp/tiny-$b.plan
  check "$b: the plan's header says what it is" grep -q '^# netc plan: .*network .tiny.' "$plan"
  check "$b: a line for conv c" grep -Eq "^c conv $sig (direct|im2col|winograd|winograd2|fft) .*direct=[0-9.e+-]+ .*im2col=" "$plan"
  check "$b: a line for conv_dw c.dw" grep -Eq "^c.dw conv_dw $sig (direct|im2col|winograd|winograd2|fft) .*direct=[0-9.e+-]+ " "$plan"
  check "$b: --plan shows it in --dump=algo" grep -q '^%3 conv "c": .*(plan: .*, measured direct=.*tiny-'$b'.plan:7)' \
    <("$netc" check $net --plan="$plan" --dump=algo)
  check "$b: a build reads the plan" "$netc" build $net -o "$tmp/tiny2-$b" --backend $b --plan="$plan"
  check "$b: the program runs" "$tmp/tiny2-$b" info
done
plan=$tmp/tiny-c.plan
check "--autotune=FILE" "$netc" build $net -o "$tmp/t3" --backend c --autotune="$tmp/named.plan"
check "--autotune=FILE writes FILE" test -s "$tmp/named.plan"
check "builds with a plan are deterministic" cmp <("$netc" check $net --plan="$plan" --dump=loops) \
  <("$netc" check $net --plan="$plan" --dump=loops)
check "--algo beats the plan" grep -q 'conv "c": im2col  (im2col: forced by --algo)' \
  <("$netc" check $net --plan="$plan" --algo=im2col --dump=algo)

sed 's/^c conv \[1,6,6\]/c conv [1,7,7]/' "$plan" > "$tmp/stale.plan"
check "a stale entry is a warning and the cost model decides" \
  grep -q 'stale.plan:7:8: warning: plan: .c. was measured as \[1,7,7\].*the cost model decides' \
  <("$netc" check $net --plan="$tmp/stale.plan" --dump=algo 2>&1)
check "... and the dump shows the estimate" grep -q '^%3 conv "c": [a-z0-9]*  ([a-z0-9]*: est ' \
  <("$netc" check $net --plan="$tmp/stale.plan" --dump=algo 2>/dev/null)
printf 'nothere conv [1] direct\nc conv %s fourier\n' "$(echo "$sig" | tr -d '\\')" > "$tmp/unknown.plan"
check "unknown layer and algorithm: warnings" grep -c 'warning: plan:' \
  <("$netc" check $net --plan="$tmp/unknown.plan" 2>&1)
check "unknown layer at its line" grep -q 'unknown.plan:1:1: warning: plan: the model has no node .nothere.' \
  <("$netc" check $net --plan="$tmp/unknown.plan" 2>&1)
check "unknown algorithm at its column" grep -q "unknown.plan:2:$((${#sig} + 5)): warning: plan: unknown algorithm 'fourier'" \
  <("$netc" check $net --plan="$tmp/unknown.plan" 2>&1)
printf '# a plan\nc conv\n' > "$tmp/bad.plan"
expect_fail "a malformed plan is an error at file:line:col" "bad.plan:2:7: error: plan: expected the node's signature" \
  "$netc" check $net --plan="$tmp/bad.plan"
expect_fail "a missing plan" "cannot read the plan" "$netc" check $net --plan="$tmp/none.plan"
expect_fail "--autotune is for build" "--autotune times kernels for 'netc build'" "$netc" check $net --autotune
expect_fail "--autotune and --plan" "give one of them" "$netc" build $net -o "$tmp/x" --autotune --plan="$plan"
expect_fail "--autotune for another CPU" "cannot tune for --target or --cpu" \
  "$netc" build $net -o "$tmp/x" --autotune --cpu skylake

# a forward conv's second algorithm, by batch (tests/batch_algo/alt.net):
# applied with its batches, shown in --dump=algo, guarded calls in the C
# code; --no-batch-algo ignores it
asig='[128,7,7]->[128,7,7],k3x3,s1x1,d1x1,p1:1x1:1,g1'
printf 'c1 conv %s winograd below=5:winograd2 winograd=0.7\nc2 conv %s winograd2 from=3:winograd\n' \
  "$asig" "$asig" > "$tmp/alt.plan"
anet=tests/batch_algo/alt.net
check "a plan's second algorithm in --dump=algo" grep -q '^%3 conv "c1": winograd  (plan: winograd, measured winograd=0.7 ms (.*alt.plan:1); below batch 5: winograd2)' \
  <("$netc" check $anet --plan="$tmp/alt.plan" --dump=algo)
check "... and from a batch on" grep -q '^%7 conv "c2": winograd2  (plan: winograd2 (.*alt.plan:2); from batch 3: winograd)' \
  <("$netc" check $anet --plan="$tmp/alt.plan" --dump=algo)
"$netc" emit-c $anet --plan="$tmp/alt.plan" -o "$tmp/altc" > /dev/null 2>&1
check "... guarded calls in the C code" grep -q 'if (n < 5) k3_conv_winograd2_prepared(' "$tmp/altc/alt.c"
check "... from batch 3" grep -q 'if (n >= 3) k7_conv_winograd_prepared(' "$tmp/altc/alt.c"
check "--no-batch-algo ignores it" grep -q '^%3 conv "c1": winograd  (plan: winograd, measured winograd=0.7 ms (.*alt.plan:1))$' \
  <("$netc" check $anet --plan="$tmp/alt.plan" --dump=algo --no-batch-algo)

echo "plan: $passes passed, $fails failed"
[ $fails -eq 0 ]
