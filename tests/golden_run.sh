#!/usr/bin/env bash
# usage: golden_run.sh NETC FILE.net
# Compares `netc check --cpu x86-64-v3 --dump=PHASES FILE.net` (a fixed target, so
# the dumps do not depend on the machine) with FILE.<phase>.expected for
# every expected file beside it.  UPDATE=1 rewrites the expected files.
set -euo pipefail
netc=$1 net=$2
base=${net%.net}
status=0
for exp in "$base".*.expected; do
  phase=${exp#"$base".}
  phase=${phase%.expected}
  out=$("$netc" check --cpu x86-64-v3 "--dump=$phase" "$net" | sed '/^network /,$d')
  if [ "${UPDATE:-0}" = 1 ]; then
    printf '%s\n' "$out" > "$exp"
  elif ! diff -u "$exp" <(printf '%s\n' "$out"); then
    echo "FAIL: $net --dump=$phase differs from $exp"
    status=1
  fi
done
exit $status
