#!/usr/bin/env bash
# usage: cli.sh NETC
# The driver as a user meets it: usage errors, emitted C that compiles
# cleanly under gcc and clang in strict C99, byte-identical output for the
# same input, and emit-c --weights embedding a checkpoint.
set -uo pipefail
netc=$1
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

expect_fail "no command" "usage" "$netc"
expect_fail "unknown command" "did you mean 'check'" "$netc" chek examples/lenet.net
expect_fail "missing model" "needs a model file" "$netc" check
expect_fail "missing output" "needs an output" "$netc" emit-c examples/lenet.net
expect_fail "unknown option" "unknown option '--bogus'" "$netc" check examples/lenet.net --bogus
expect_fail "bytes of arguments are escaped" 'unknown option .--\\xff\\x1b.$' "$netc" check examples/lenet.net $'--\xff\x1b'
expect_fail "unknown backend" "unknown backend" "$netc" build examples/lenet.net -o "$tmp/p" --backend x
expect_fail "missing file" "nonexistent.net" "$netc" check "$tmp/nonexistent.net"
check "check prints the layer table" grep -q "c1 *conv" <("$netc" check examples/lenet.net)
expect_fail "unknown algorithm" "unknown algorithm 'fourier' (expected auto, direct, im2col, winograd" "$netc" check examples/lenet.net --algo=fourier
check "--algo=fft computes lenet's 5x5 layers by FFT" grep -q 'conv "c2": fft ' \
  <("$netc" check examples/lenet.net --algo=fft --dump=algo)
check "--algo=winograd says why lenet's 5x5 layers stay direct" grep -q 'conv "c2": direct .*not winograd: kernel is not 3x3' \
  <("$netc" check examples/lenet.net --algo=winograd --dump=algo)
check "--algo=direct forces direct convolutions" grep -q 'conv "c2": direct' \
  <("$netc" check examples/lenet.net --algo=direct --dump=algo)
expect_fail "unknown dump phase" "unknown dump phase 'lops' (expected ast, ir, .*); did you mean 'loops'" \
  "$netc" check examples/lenet.net --dump=ir,lops
expect_fail "empty dump phase" "unknown dump phase ''" "$netc" check examples/lenet.net --dump=
check "--dump=all" grep -q "^params:" <("$netc" check examples/lenet.net --dump=all)
check "--algo=auto lets the schedule choose" grep -q 'conv "c2": direct' \
  <("$netc" check examples/lenet.net --algo=auto --dump=algo)

for ex in examples/*.net; do
  name=$(basename "$ex" .net)
  check "emit-c $name" "$netc" emit-c "$ex" -o "$tmp/a-$name"
  check "emit-c $name again" "$netc" emit-c "$ex" -o "$tmp/b-$name"
  check "emit-c $name is deterministic" diff -r "$tmp/a-$name" "$tmp/b-$name"
  for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    check "$cc compiles $name strictly" $cc -std=c99 -Wall -Wextra -Wpedantic -Werror -c \
      "$tmp/a-$name/"*.c -o "$tmp/$name-$cc.o"
    # with the host's vector unit on, the vector-extension form is compiled
    if [ "$name" = lenet ]; then
      check "$cc compiles $name strictly with -march=native" $cc -std=c99 -O2 -march=native \
        -Wall -Wextra -Wpedantic -Werror -c "$tmp/a-$name/"*.c -o "$tmp/$name-$cc-native.o"
      # and the x86 vector forms, whatever this machine has (compiled, not
      # run): 16 lanes, 8 with and without FMA (its lane loop), 4
      if [ "$(uname -m)" = x86_64 ]; then
        for cpu in skylake-avx512 haswell sandybridge x86-64; do
          "$netc" emit-c "$ex" --cpu $cpu -o "$tmp/$cpu-$name" > /dev/null
          check "$cc compiles $name's vectors for $cpu strictly" $cc -std=c99 -O2 \
            -march=$cpu -Wall -Wextra -Wpedantic -Werror -c "$tmp/$cpu-$name/"*.c \
            -o "$tmp/$name-$cc-$cpu.o"
        done
      fi
    fi
  done
  # The inference path uses no heap and no stdio.
  if nm "$tmp/$name-gcc.o" 2>/dev/null | grep -E ' U (malloc|calloc|free|printf|fprintf|fopen|puts)$'; then
    fails=$((fails+1)); echo "FAIL: $name's generated code calls the heap or stdio"
  else passes=$((passes+1)); fi
done

# Every algorithm's C is strict: the FFT's straight-line transforms declare
# no unused local (their imaginary parts an inverse does not keep).
check "emit-c golden fft.net" "$netc" emit-c tests/golden/fft.net -o "$tmp/fft"
for cc in gcc clang; do
  command -v $cc >/dev/null || continue
  check "$cc compiles the FFT's C strictly" $cc -std=c99 -Wall -Wextra -Wpedantic -Werror -c \
    "$tmp/fft/"*.c -o "$tmp/fft-$cc.o"
done

# emit-c --weights embeds a safetensors file; wrong or missing tensors are errors.
printf 'network w\ninput x: [3]\nx -> d: dense(2) => y\noutput y\n' > "$tmp/w.net"
/usr/bin/env python3 - "$tmp/w.safetensors" "$tmp/bad.safetensors" <<'PY' || exit 1
import json, struct, sys
def write(path, tensors):
    header, data = {}, b""
    for name, (shape, vals) in tensors.items():
        raw = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
write(sys.argv[1], {"d.weight": ([2, 3], [1, 2, 3, 4, 5, 6]), "d.bias": ([2], [0.5, -0.5])})
write(sys.argv[2], {"d.weight": ([3, 2], [1, 2, 3, 4, 5, 6])})
PY
check "emit-c --weights" "$netc" emit-c "$tmp/w.net" -o "$tmp/w" --weights "$tmp/w.safetensors"
check "weights are embedded" grep -q "w_weights" "$tmp/w/w.h"
expect_fail "weights with the wrong shape" "d.weight" "$netc" emit-c "$tmp/w.net" -o "$tmp/w2" --weights "$tmp/bad.safetensors"
expect_fail "weights file missing" "nope.safetensors" "$netc" emit-c "$tmp/w.net" -o "$tmp/w3" --weights "$tmp/nope.safetensors"
# build --weights embeds them too: the program predicts without a checkpoint.
/usr/bin/env python3 - "$tmp/x.npy" <<'PY' || exit 1
import struct, sys
h = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }"
h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + struct.pack("<3f", 1, 1, 1))
PY
for backend in c llvm; do
  [ $backend = llvm ] && ! "$netc" emit-llvm "$tmp/w.net" -o "$tmp/probe" >/dev/null 2>&1 && continue
  check "build --weights ($backend)" "$netc" build "$tmp/w.net" -o "$tmp/wprog-$backend" --backend $backend \
    --weights "$tmp/w.safetensors"
  check "the built program has the weights ($backend)" "$tmp/wprog-$backend" predict --input "$tmp/x.npy" \
    --output "$tmp/y-$backend.npy"
  check "and uses them ($backend)" /usr/bin/env python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read()
assert struct.unpack('<2f', d[-8:]) == (6.5, 14.5), struct.unpack('<2f', d[-8:])" "$tmp/y-$backend.npy"
done
expect_fail "build --weights with the wrong shape" "d.weight" "$netc" build "$tmp/w.net" -o "$tmp/wprog2" \
  --weights "$tmp/bad.safetensors"
expect_fail "check --weights" "'check' generates none" "$netc" check "$tmp/w.net" --weights "$tmp/w.safetensors"

# A failed build leaves an existing program untouched and no temporary file.
echo "previous program" > "$tmp/prog"
expect_fail "build with a failing linker" "failed" "$netc" build examples/lenet.net -o "$tmp/prog" --backend c --cc false
check "the old program survives" grep -q "previous program" "$tmp/prog"
check "no temporary file is left" test ! -e "$tmp/prog.netc-tmp"

# graph: DOT on stdout (fused groups and algorithms in the boxes), SVG
# through Graphviz when it is installed.
check "graph writes DOT with the fused groups" grep -q 'conv + relu' <("$netc" graph examples/lenet.net)
check "graph --after=grad is before fusion" bash -c '! "$0" graph examples/lenet.net --after=grad | grep -q "conv + relu"' "$netc"
check "graph --backward draws the gradients" grep -q 'conv_dw' <("$netc" graph examples/lenet.net --backward)
check "graph names a second algorithm and its batches" grep -q '\\nwinograd\\nwinograd2 below batch 5"' \
  <("$netc" graph tests/batch_algo/alt.net --cpu x86-64-v3)
expect_fail "graph --after=x" "unknown phase 'x' for --after" "$netc" graph examples/lenet.net --after=x
if command -v dot >/dev/null; then
  check "graph draws SVG through dot" "$netc" graph examples/resnet_mini.net -o "$tmp/g.svg"
  check "the SVG is one" grep -q "<svg" "$tmp/g.svg"
  check "no temporary file is left by graph" test ! -e "$tmp/g.svg.netc-tmp"
fi

# build --time says where the compile time went.  An LLVM build is split
# into objects built on threads; the program is the same every time.
if "$netc" emit-llvm "$tmp/w.net" -o "$tmp/probe" >/dev/null 2>&1; then
  check "build --time reports the phases" grep -q "llvm: build, optimise, code generation" \
    <("$netc" build examples/lenet.net -o "$tmp/lenet1" --time 2>&1)
  check "build lenet again" "$netc" build examples/lenet.net -o "$tmp/lenet2"
  check "an LLVM build is deterministic" cmp "$tmp/lenet1" "$tmp/lenet2"
fi
check "build --time reports the C compiler" grep -q "cc: compile (parallel)" \
  <("$netc" build "$tmp/w.net" -o "$tmp/wtime" --backend c --time 2>&1)
# The C build compiles the program's parts in parallel; the program is the
# same on every build, and computes what the LLVM build computes.
check "build lenet through C" "$netc" build examples/lenet.net --backend c -o "$tmp/lenetc1"
check "build lenet through C again" "$netc" build examples/lenet.net --backend c -o "$tmp/lenetc2"
check "a split C build is deterministic" cmp "$tmp/lenetc1" "$tmp/lenetc2"
check "emit-c still writes one source" "$netc" emit-c examples/lenet.net -o "$tmp/emitc"
check "emit-c's one source" test -f "$tmp/emitc/lenet.c" -a ! -e "$tmp/emitc/lenet.0.c"

# Size: the front end, verifier and memory plan are linear, so a chain at
# the documented limit of 100,000 layers checks in about a second; one
# more layer is a located error.  (No timing is asserted: CTest's timeout
# catches a quadratic regression, which takes minutes here.)
chain() { # layers, file
  { printf 'network big\ninput x: [8]\nx'; for ((i = 0; i < $1; i++)); do printf ' -> relu'; done
    printf ' => y\noutput y\n'; } > "$2"
}
chain 100000 "$tmp/chain.net"
check "a 100,000-layer chain checks" "$netc" check "$tmp/chain.net"
chain 100001 "$tmp/chain1.net"
expect_fail "100,001 layers are too many" "chain1.net:3:[0-9]*: error: the network expands to more than 100000 layers" \
  "$netc" check "$tmp/chain1.net"
# Under the sanitizers (several times slower; NETC_SANITIZED, tests/cli.cmake)
# the two graphs below are a fifth as deep: the same code paths, while the
# Release build keeps the scale.
if [ -n "${NETC_SANITIZED:-}" ]; then dense_reps=4 train_reps=1999; else dense_reps=20 train_reps=9999; fi
printf 'network big\ninput x: [8]\nblock d() { in -> dense(8) * 1000 => out }\nx -> d * %d => y\noutput y\n' \
  $dense_reps > "$tmp/dense.net"
check "$((dense_reps * 1000)) repeated dense layers check" "$netc" check "$tmp/dense.net"
# Training keeps every activation alive until the backward pass: the
# memory plan must not rescan them for each of the 200,000 values.
printf 'network big\ninput x: [8]\nblock b() { in -> dense(8) -> tanh * 9 => out }
x -> b * %d -> dense(2) => y\noutput y
train { loss softmax_cross_entropy(y) optimizer sgd(lr=0.1) batch 2 epochs 1 }\n' $train_reps > "$tmp/train.net"
check "a $((train_reps * 10 + 1))-layer training chain checks" "$netc" check "$tmp/train.net"

# convolution forms: the layer table shows the convs each expands to
check "check lists a form's parts" grep -q "^s.kw *conv" <("$netc" check tests/golden/forms.net)
check "check lists a form's shuffle" grep -q "^g.shuffle *channel_shuffle" <("$netc" check tests/golden/forms.net)

echo "$passes passed, $fails failed"
[ $fails = 0 ]
