#!/usr/bin/env bash
# usage: zoo_run.sh NETC LIBNETCRT MODE [ARGS]
# The networks of examples/zoo/*.net and examples/zoo/small/*.net, whichever
# are there when it runs:
#
#   check              every file passes `netc check`; a file whose header
#                      has a "Size (netc check): P parameters, M MACs per
#                      sample" line must have exactly those totals
#   compile BACKENDS   every file through each backend named ("c llvm"):
#                      llvm: `netc emit-obj -O0`, linked with tests/zoo_steps.c
#                      and the runtime; c: `netc emit-c`, then `cc -c -O0` for
#                      networks below --big MACs per sample (default 1e8) and
#                      `cc -fsyntax-only` for larger ones (their C takes 10 s
#                      and more to compile; bench/zoo_steps.sh compiles it all)
#   small FILE BACKEND FILE (a small variant with a data source) built with
#                      `netc build`, trained 2 epochs on its first 256 images;
#                      the epoch-2 train loss must be below epoch 1's
#   steps FILE BACKEND [-O LEVEL] [DRIVER FLAGS]
#                      FILE compiled (LLVM at -O LEVEL, default 2; C at
#                      cc -OLEVEL, default 1) and linked with tests/zoo_steps.c,
#                      which takes a few steps on a fixed generated batch and
#                      checks that the loss falls (any target kind)
#   steps-all BACKEND  `steps FILE BACKEND` for each file of `list steps`
#   list small|steps|big   the files each kind of test covers: small
#                      variants; other files below 1e8 MACs; the rest
set -uo pipefail
netc=$1 netcrt=$2 mode=$3
shift 3
big=100000000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
libs=(-lz -lm -pthread -ldl)

zoo_files() { ls examples/zoo/*.net examples/zoo/small/*.net 2>/dev/null; }
name_of() { sed -n 's/^network[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$1" | head -1; }
macs_of() { "$netc" check "$1" 2>/dev/null | sed -n 's/^total: .*, \([0-9]*\) MACs per sample$/\1/p'; }

ok() { passes=$((passes+1)); }
fail() { # message, then a file whose head to show
  fails=$((fails+1)); echo "FAIL: $1"; [ -n "${2:-}" ] && sed 's/^/    /' "$2" | head -20; }
run() { # description, command...: passes when the command succeeds
  local what=$1; shift
  if "$@" >"$tmp/out" 2>&1; then ok; else fail "$what" "$tmp/out"; fi
}
finish() {
  echo "$passes passed, $fails failed"
  [ "$fails" -eq 0 ]
  exit
}

# $ZOO_LDFLAGS: extra flags for linking with the runtime library (the
# sanitizer build's is instrumented and needs the sanitizer runtimes).
link_driver() { # name, object, output
  # shellcheck disable=SC2086
  cc -std=gnu11 -O1 -Iruntime -DZOO_META="$1_meta" -DZOO_TRAIN="$1_train" ${ZOO_LDFLAGS:-} \
     tests/zoo_steps.c "$2" "$netcrt" "${libs[@]}" -o "$3"
}

case $mode in
list)
  for f in $(zoo_files); do
    case $f in examples/zoo/small/*) kind=small ;;
      *) m=$(macs_of "$f"); if [ -n "$m" ] && [ "$m" -lt $big ]; then kind=steps; else kind=big; fi ;;
    esac
    [ "$kind" = "$1" ] && echo "$f"
  done
  exit 0 ;;

check)
  n=0
  for f in $(zoo_files); do
    n=$((n+1))
    if ! "$netc" check "$f" >"$tmp/check" 2>&1; then fail "netc check $f" "$tmp/check"; continue; fi
    ok
    want=$(sed -n 's/^# Size (netc check): \([0-9]*\) parameters, \([0-9]*\) MACs per sample.*/\1 \2/p' "$f")
    if [ -n "$want" ]; then
      got=$(sed -n 's/^total: \([0-9]*\) parameters .*, \([0-9]*\) MACs per sample$/\1 \2/p' "$tmp/check")
      if [ "$want" = "$got" ]; then ok; else
        fail "$f: header says '$want' (parameters, MACs), netc check counts '$got'"; fi
    fi
  done
  [ "$n" -gt 0 ] || fail "no networks in examples/zoo"
  finish ;;

compile)
  for f in $(zoo_files); do
    name=$(name_of "$f")
    for backend in $1; do
      d=$tmp/$name-$backend
      case $backend in
      llvm)
        run "$f: netc emit-obj -O0" "$netc" emit-obj -O0 "$f" -o "$d" &&
        if grep -q "^train {" "$f"; then
          run "$f: the LLVM object links with tests/zoo_steps.c" link_driver "$name" "$d/$name.o" "$d/steps"
        fi ;;
      c)
        if ! "$netc" emit-c "$f" -o "$d" >"$tmp/out" 2>&1; then fail "$f: netc emit-c" "$tmp/out"; continue; fi
        ok
        m=$(macs_of "$f")
        if [ -n "$m" ] && [ "$m" -lt $big ]; then
          run "$f: cc -c -O0 of the generated C" cc -std=gnu11 -O0 -c -Iruntime "$d/$name.c" -o "$d/$name.o"
        else
          run "$f: cc -fsyntax-only of the generated C" cc -std=gnu11 -fsyntax-only -Iruntime "$d/$name.c"
        fi ;;
      esac
      rm -rf "$d"
    done
  done
  finish ;;

small)
  f=$1 backend=$2
  data=/usr/share/datasets/fashion-mnist
  if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
  fi
  name=$(name_of "$f")
  run "$f: netc build --backend $backend" "$netc" build "$f" -o "$tmp/$name" --backend "$backend" || finish
  run "$f: train 2 epochs on 256 images" "$tmp/$name" train --epochs 2 --limit 256 --test-limit 128 \
      --batch 32 --threads 1 --quiet --metrics "$tmp/m.jsonl" || finish
  l1=$(sed -n 1p "$tmp/m.jsonl" | sed 's/.*"train_loss":\([^,}]*\).*/\1/')
  l2=$(sed -n 2p "$tmp/m.jsonl" | sed 's/.*"train_loss":\([^,}]*\).*/\1/')
  echo "$name ($backend): train_loss epoch 1 $l1, epoch 2 $l2"
  if awk -v a="$l1" -v b="$l2" 'BEGIN { exit !(b + 0 < a + 0) }'; then ok; else
    fail "$f: the train loss did not fall ($l1 -> $l2)"; fi
  finish ;;

steps)
  f=$1 backend=$2
  shift 2
  level=
  if [ "${1:-}" = "-O" ]; then level=$2; shift 2; fi
  name=$(name_of "$f")
  d=$tmp/$name
  if [ "$backend" = llvm ]; then
    run "$f: netc emit-obj -O${level:-2}" "$netc" emit-obj "-O${level:-2}" "$f" -o "$d" || finish
  else
    { run "$f: netc emit-c" "$netc" emit-c "$f" -o "$d" &&
      run "$f: cc -O${level:-1} -march=native -c" cc -std=gnu11 "-O${level:-1}" -march=native -c \
          -Iruntime "$d/$name.c" -o "$d/$name.o"; } || finish
  fi
  run "$f: link with tests/zoo_steps.c" link_driver "$name" "$d/$name.o" "$d/steps" || finish
  if "$d/steps" "$@" >"$tmp/out" 2>&1; then ok; else fail "$f: the loss did not fall" "$tmp/out"; fi
  cat "$tmp/out"
  finish ;;

steps-all)
  for f in $(bash "$0" "$netc" "$netcrt" list steps); do
    if bash "$0" "$netc" "$netcrt" steps "$f" "$1" >"$tmp/all" 2>&1; then ok; else fails=$((fails+1)); fi
    cat "$tmp/all"
  done
  [ $((passes + fails)) -gt 0 ] || fail "no networks for steps in examples/zoo"
  finish ;;

*)
  echo "usage: zoo_run.sh NETC LIBNETCRT check | compile BACKENDS | small FILE BACKEND | steps FILE BACKEND [-O L] [FLAGS] | steps-all BACKEND | list KIND"
  exit 2 ;;
esac
