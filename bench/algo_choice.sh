#!/usr/bin/env bash
# bench/algo_choice.sh - the cost model's convolution algorithm against measurements.
#
#   bench/algo_choice.sh [--build DIR] [--rows REGEX] [--backend llvm|c] [--out FILE]
#                        [--plans DIR]
#
# For every convolution row of bench/rows.py (or those matching REGEX), a
# network with that layer behind a cheap 1x1 depthwise conv (so that the
# layer's input gradient is computed too) is built with `netc build
# --autotune` at batch 32: every applicable candidate of the layer's conv,
# conv_dx and conv_dw is timed on this machine (one thread, median CPU
# time, bench/../compiler/backend/autotune.c).  `netc check --dump=algo`
# gives the cost model's pick for the same nodes.  Prints a markdown table:
# each candidate's milliseconds, the fastest, the model's pick, and the
# pick's time over the fastest (the model's bar: at most 1.10).  With
# --plans DIR the measured plans are kept in DIR, and a row whose plan is
# already there is not measured again (to compare a changed cost model
# against the same measurements).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build
rows=.
backend=llvm
out=
plans=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --plans) plans=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--rows REGEX] [--backend llvm|c] [--out FILE] [--plans DIR]" >&2
       exit 2 ;;
  esac
done
netc=$build/netc
[ -x "$netc" ] || { echo "no $netc: build netc first (scripts/setup.sh)" >&2; exit 1; }
work=$(mktemp -d /tmp/netc-algo-XXXXXX)
trap '[ -n "${NETC_KEEP:-}" ] || rm -rf "$work"' EXIT
[ -z "$plans" ] || mkdir -p "$plans"

python3 - "$root/bench" "$rows" "$work" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import rows
for r in rows.select(sys.argv[2]):
    if r.op != "conv":
        continue
    text = rows.net_text(r).replace(
        "x -> layer:", "x -> pre: conv(%d, kernel=1, groups=%d) -> layer:" % (r.inp[0], r.inp[0]))
    open("%s/%s.net" % (sys.argv[3], r.name), "w").write(text)
PY

report() {
  echo "| row | pass | candidates (ms per call, batch 32, 1 thread) | fastest | model | model / fastest | within 10% |"
  echo "|---|---|---|---|---|---:|---|"
  for net in "$work"/*.net; do
    name=$(basename "$net" .net)
    plan=${plans:-$work}/$name.plan
    if [ -z "$plans" ] || [ ! -s "$plan" ]; then
      "$netc" build "$net" -o "$work/$name" --backend "$backend" --autotune="$plan" >/dev/null
    fi
    "$netc" check "$net" --dump=algo > "$work/$name.algo"
    for pass in conv conv_dx conv_dw; do
      node=layer; [ $pass = conv ] || node=layer.${pass#conv_}
      line=$(awk -v n="$node" -v p="$pass" '$1 == n && $2 == p' "$plan")
      [ -n "$line" ] || continue
      pick=$(sed -n "s/^%[0-9]* $pass \"$node\": \([a-z0-9]*\) .*/\1/p" "$work/$name.algo")
      echo "$line" | awk -v row="$name" -v pass="$pass" -v pick="$pick" '{
        best = ""; bt = 0; cands = ""; pt = -1
        for (i = 5; i <= NF; i++) {
          split($i, kv, "="); t = kv[2] + 0
          cands = cands (cands ? ", " : "") kv[1] " " kv[2]
          if (best == "" || t < bt) { best = kv[1]; bt = t }
          if (kv[1] == pick) pt = t
        }
        r = pt > 0 && bt > 0 ? pt / bt : 0
        printf "| %s | %s | %s | %s | %s | %.2f | %s |\n", row, pass, cands, best, pick, r, r <= 1.10 ? "yes" : "**no**"
      }'
    done
  done
}
if [ -n "$out" ]; then report | tee "$out"; else report; fi
