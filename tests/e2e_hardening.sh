#!/usr/bin/env bash
# usage: e2e_hardening.sh NETC
# LeNet as a user can break it: a learning rate that ruins the weights,
# checkpoints with bad metadata or a wrong header length, saving over
# links, devices and full disks, stdout on a full disk, truncated or padded
# gzip data and files that never end.  Every case must exit non-zero with
# a message naming the file (or the flag), never crash, never exit 0, and
# never damage the last good checkpoint.
set -uo pipefail
netc=$1
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "SKIP: Fashion-MNIST not installed ($data)"; exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
fail() { fails=$((fails+1)); echo "FAIL: $*"; sed 's/^/    /' "$tmp/err" | head -5; }
# expect STATUS PATTERN NAME -- command...: the status, and PATTERN on stderr.
expect() {
  local want=$1 pat=$2 name=$3; shift 4
  timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" != "$want" ]; then fail "$name: exit status $got, expected $want"
  elif [ -n "$pat" ] && ! grep -qF -- "$pat" "$tmp/err"; then fail "$name: expected '$pat' on stderr"
  else passes=$((passes+1)); fi
}
check() { # name, then a command that must succeed
  local name=$1; shift
  if "$@" >"$tmp/out" 2>"$tmp/err"; then passes=$((passes+1)); else fail "$name"; fi
}

"$netc" build examples/lenet.net -o "$tmp/lenet" --backend c || exit 1
# Runs that a regression would let read /dev/zero or allocate without
# bound get a limited address space (not under AddressSanitizer, whose
# shadow memory needs more than the limit).
# (grep reads all of nm's output: with pipefail, -q would make nm die of SIGPIPE)
if nm "$tmp/lenet" 2>/dev/null | grep __asan_init >/dev/null; then
  limited=()
else
  limited=(sh -c 'ulimit -v 4000000; exec "$@"' limited)
fi
run=("$tmp/lenet")
small=(--limit 256 --test-limit 64 --batch 32 --quiet)
ck=$tmp/ck.safetensors
check "a short run saves a checkpoint" "${run[@]}" train --epochs 1 "${small[@]}" --save "$ck"
cp "$ck" "$tmp/good"

# 4: a ruinous learning rate stops the run; the checkpoint stays good.
expect 1 "is not finite at epoch 2" "--lr 1e6 stops" -- \
  "${run[@]}" train --epochs 2 "${small[@]}" --resume "$ck" --save "$ck" --lr 1e6
check "--resume X --save X keeps X" cmp "$ck" "$tmp/good"
expect 0 "" "--on-nonfinite=skip-batch goes on" -- \
  "${run[@]}" train --epochs 1 "${small[@]}" --lr 1e6 --on-nonfinite=skip-batch
cp "$tmp/out" "$tmp/skip.out"
check "and reports the skipped batches" grep -q "^skipped [0-9]* batch" "$tmp/skip.out"

# 6: values a float cannot hold are refused like inf and 0.
expect 2 "--lr: expected a positive number" "--lr 1e39" -- \
  "${run[@]}" train --epochs 1 "${small[@]}" --lr 1e39
expect 2 "--lr: expected a positive number" "--lr 1e-50" -- \
  "${run[@]}" train --epochs 1 "${small[@]}" --lr 1e-50

# 1, 5: checkpoint metadata is checked like the command line.
meta() { # KEY VALUE OUT: the good checkpoint with one metadata value changed
  python3 - "$tmp/good" "$3" "$1" "$2" <<'PY'
import json, struct, sys
src, dst, key, value = sys.argv[1:]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
if value == "-": del h["__metadata__"][key]
else: h["__metadata__"][key] = value
t = json.dumps(h, separators=(",", ":")).encode()
t += b" " * (-len(t) % 8)
open(dst, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
}
for v in 0 -0 000; do
  meta netc.batch "$v" "$tmp/b.ck"
  expect 1 "b.ck: checkpoint metadata 'netc.batch'" "netc.batch $v" -- \
    "${run[@]}" train --epochs 2 "${small[@]}" --resume "$tmp/b.ck"
done
for kv in "netc.lr inf" "netc.lr -0" "netc.lr 1e-45" "netc.momentum 1e11" \
          "netc.weight_decay 1e999" "netc.model -" "netc.batch 999999999999"; do
  set -- $kv
  meta "$1" "$2" "$tmp/m.ck"
  expect 1 "m.ck: checkpoint metadata '$1'" "$1 $2" -- \
    "${run[@]}" train --epochs 2 "${small[@]}" --resume "$tmp/m.ck"
done

# 7: a header length one byte short is not read one byte off.
python3 - "$tmp/good" "$tmp/short.ck" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
open(sys.argv[2], "wb").write(struct.pack("<Q", n - 1) + b[8:])
PY
expect 1 "short.ck: 1 data bytes after the last tensor" "header length one short" -- \
  "${run[@]}" eval --weights "$tmp/short.ck" --test-limit 64

# 2, 8: saving replaces only regular files.
ln -s good "$tmp/link.ck"
expect 1 "link.ck: is a symbolic link; refusing to replace it" "--save over a symlink" -- \
  "${run[@]}" train --epochs 1 "${small[@]}" --save "$tmp/link.ck"
check "the link is still a link" test -L "$tmp/link.ck"
python3 - "$tmp/x.npy" <<'PY'
import struct, sys
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 28, 28), }"
h += " " * (63 - (len(h) + 10) % 64) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode()
                              + struct.pack("<1568f", *[0.5] * 1568))
PY
check "predict writes y.npy" "${run[@]}" predict --weights "$ck" --input "$tmp/x.npy" \
  --output "$tmp/y.npy"
ln -s y.npy "$tmp/ylink.npy"
expect 1 "ylink.npy: is a symbolic link" "predict --output over a symlink" -- \
  "${run[@]}" predict --weights "$ck" --input "$tmp/x.npy" --output "$tmp/ylink.npy"
if mknod "$tmp/full" c 1 7 2>/dev/null; then
  expect 1 "full: is a character device, not a regular file; refusing" "--save over a device" -- \
    "${run[@]}" train --epochs 1 "${small[@]}" --save "$tmp/full"
  check "the device is still a device" test -c "$tmp/full"
fi
echo stale > "$tmp/.ck.safetensors.netc-tmp.2147483647"
check "a save after a crash" "${run[@]}" train --epochs 1 "${small[@]}" --save "$ck"
check "removes the dead run's temporary" test ! -e "$tmp/.ck.safetensors.netc-tmp.2147483647"
expect 1 "/proc/x.ck: cannot create a temporary file beside it" "--save in an unwritable directory" -- \
  "${run[@]}" train --epochs 1 "${small[@]}" --save /proc/x.ck

# 2: a really full disk and a read-only one, on a small tmpfs in a private
# mount namespace (where unshare and mount are allowed, as for root).  A
# LeNet checkpoint is about 494 KB: the first fits in 700 KB, a second
# beside it does not.
cat > "$tmp/disk.sh" <<'SH'
set -u
lenet=$1 mnt=$2 limit=$3
shift 3
mount -t tmpfs -o size=700k netc-test "$mnt" || exit 77
st=0
"$lenet" train --epochs 1 $limit --save "$mnt/ck" || { echo "FAIL: first save on tmpfs"; st=1; }
cp "$mnt/ck" "$mnt/../ck.copy"
if "$lenet" train --epochs 2 $limit --resume "$mnt/ck" --save "$mnt/ck" 2>"$mnt/../err"; then
  echo "FAIL: a save on a full disk succeeded"; st=1
fi
grep -q "ck: write failed: No space left on device" "$mnt/../err" ||
  { echo "FAIL: full disk: wrong message"; cat "$mnt/../err"; st=1; }
cmp -s "$mnt/ck" "$mnt/../ck.copy" || { echo "FAIL: the last good checkpoint was damaged"; st=1; }
[ "$(ls -A "$mnt")" = ck ] || { echo "FAIL: left behind: $(ls -A "$mnt")"; st=1; }
head -c 300k /dev/zero > "$mnt/fill" 2>/dev/null
if "$lenet" info > "$mnt/info.txt" 2>"$mnt/../err"; then
  echo "FAIL: info to a full disk exited 0"; st=1
fi
grep -q "standard output: write failed: No space left on device" "$mnt/../err" ||
  { echo "FAIL: stdout on a full disk: wrong message"; cat "$mnt/../err"; st=1; }
rm -f "$mnt/fill" "$mnt/info.txt"
mount -o remount,ro "$mnt"
if "$lenet" train --epochs 1 $limit --save "$mnt/new.ck" 2>"$mnt/../err"; then
  echo "FAIL: a save on a read-only disk succeeded"; st=1
fi
grep -q "new.ck: cannot create a temporary file beside it: Read-only file system" "$mnt/../err" ||
  { echo "FAIL: read-only disk: wrong message"; cat "$mnt/../err"; st=1; }
exit $st
SH
mkdir "$tmp/mnt"
if unshare -m true 2>/dev/null; then
  unshare -m bash "$tmp/disk.sh" "$tmp/lenet" "$tmp/mnt" "${small[*]}" >"$tmp/err" 2>&1
  case $? in
    0) passes=$((passes+1)) ;;
    77) echo "note: tmpfs not mountable; full-disk checks skipped" ;;
    *) fail "full and read-only disks" ;;
  esac
fi

# 9, 10: full disks.
expect 1 "/dev/full: cannot write the metrics of epoch 1: No space left on device" \
  "--metrics on a full disk" -- \
  "${run[@]}" train --epochs 1 "${small[@]}" --metrics /dev/full --save "$tmp/m1.ck"
check "still saves the checkpoint" test -s "$tmp/m1.ck"
expect 1 "standard output: write failed" "info >/dev/full" -- sh -c '"$0" info >/dev/full' "$tmp/lenet"
expect 1 "standard output: write failed" "train >/dev/full" -- \
  sh -c '"$0" train --epochs 1 --limit 256 --test-limit 64 >/dev/full' "$tmp/lenet"
expect 1 "standard output: write failed" "eval >/dev/full" -- \
  sh -c '"$0" eval --weights "$1" --test-limit 64 >/dev/full' "$tmp/lenet" "$ck"

# 11: gzip data cut short or followed by garbage.
mkdir "$tmp/d"
cp "$data"/t10k-images-idx3-ubyte.gz "$tmp/d/"
lab=$data/t10k-labels-idx1-ubyte.gz
head -c $(($(stat -c %s "$lab") - 4)) "$lab" > "$tmp/d/t10k-labels-idx1-ubyte.gz"
expect 1 "t10k-labels-idx1-ubyte.gz: truncated gzip data" "gzip without its trailer" -- \
  "${run[@]}" eval --weights "$ck" --data "$tmp/d"
{ cat "$lab"; printf 'garbage'; } > "$tmp/d/t10k-labels-idx1-ubyte.gz"
expect 1 "t10k-labels-idx1-ubyte.gz: 7 bytes after the end of the gzip data" "gzip with garbage" -- \
  "${run[@]}" eval --weights "$ck" --data "$tmp/d"

# 12, 13: files that never end, directories.
expect 1 "/dev/zero: is a character device, not a regular file" "--weights /dev/zero" -- \
  "${limited[@]}" "${run[@]}" eval --weights /dev/zero
expect 1 "/dev/zero: is a character device, not a regular file" "--input /dev/zero" -- \
  "${limited[@]}" "${run[@]}" predict --weights "$ck" --input /dev/zero --output "$tmp/z.npy"
expect 1 "$tmp: is a directory, not a file" "--weights DIR" -- "${run[@]}" eval --weights "$tmp"
expect 1 '\xff' "a non-UTF-8 file name is escaped" -- \
  "${run[@]}" eval --weights "$tmp/$(printf 'w\377')"

# 4: predict refuses NaN inputs unless told.
python3 - "$tmp/nan.npy" <<'PY'
import struct, sys
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 28, 28), }"
h += " " * (63 - (len(h) + 10) % 64) + "\n"
v = [0.0] * 784; v[5] = float("nan")
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode()
                              + struct.pack("<784f", *v))
PY
expect 1 "nan.npy: 1 non-finite value (the first at index 5, in sample 0)" "predict NaN input" -- \
  "${run[@]}" predict --weights "$ck" --input "$tmp/nan.npy" --output "$tmp/n.npy"
expect 0 "" "predict --allow-nonfinite" -- \
  "${run[@]}" predict --weights "$ck" --input "$tmp/nan.npy" --output "$tmp/n.npy" --allow-nonfinite

# 1: parameters that do not fit in memory are an error, not SIGFPE (with
# the address space limited, so the allocation fails at once).
printf 'network big\ninput image: [1, 28, 28]\nimage -> flatten -> f1: dense(2000000) => y\noutput y\ntrain {\n  data fashion_mnist("%s")\n  loss softmax_cross_entropy(y)\n  optimizer sgd(lr=0.01)\n  batch 64\n  epochs 1\n  seed 1\n}\n' "$data" > "$tmp/big.net"
if "$netc" build "$tmp/big.net" -o "$tmp/big" --backend c >"$tmp/err" 2>&1; then
  if [ ${#limited[@]} -gt 0 ]; then
    expect 1 "out of memory for 1570000000 parameters" "dense(2000000) without the memory" -- \
      "${limited[@]}" "$tmp/big" train --limit 64 --test-limit 64
  fi
else
  fail "netc build big.net"
fi

echo "$passes passed, $fails failed"
[ $fails = 0 ]
