#!/usr/bin/env bash
# usage: scripts/fuzz.sh [SECONDS [TARGET...]]
# Builds the libFuzzer targets (fuzz/, clang with ASan + UBSan) in
# build-fuzz/ (or $NETC_FUZZ_BUILD) and runs each for SECONDS (default 60)
# from its seed corpus in fuzz/corpus/<target>/.  New inputs go to
# build-fuzz/corpus/<target>/ (the committed seeds are not touched); a
# crash is written to build-fuzz/crash-<target>-* and fails the run.
# Targets: frontend safetensors npy idx ckpt meta (default: all).
# Exit status 77: clang's libFuzzer is not installed (the test suite skips).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frontend safetensors npy idx ckpt meta)
build=${NETC_FUZZ_BUILD:-build-fuzz}
cc=${NETC_FUZZ_CC:-clang}

# Is libFuzzer there?  (Debian: libclang-rt-14-dev.)
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { (void)d; (void)n; return 0; }' > "$probe/p.c"
if ! command -v "$cc" >/dev/null || ! "$cc" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>/dev/null; then
  echo "fuzz: $cc cannot link -fsanitize=fuzzer (install libclang-rt-14-dev); skipped"
  exit 77
fi

CC=$cc cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNETC_FUZZ=ON -DNETC_TESTS=OFF \
  -DNETC_LLVM=OFF -DNETC_WERROR=OFF >/dev/null || exit 1
cmake --build "$build" -j"${NETC_FUZZ_JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}") \
  >"$build/build.log" 2>&1 || { tail -30 "$build/build.log"; exit 1; }

status=0
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t"
  log="$build/fuzz-$t.log"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  # -rss_limit_mb: the front end's limits keep a model small; more is a bug.
  "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$build/crash-$t-" "${dict[@]}" \
    "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [ $rc = 0 ]; then
    echo "fuzz $t: ${execs:-?} executions in ${secs} s, no crash"
  else
    echo "fuzz $t: FAILED (exit $rc); the input is in $build/crash-$t-*:"
    grep -E "ERROR|SUMMARY|runtime error|internal error|Test unit written" "$log" | head -10 | sed 's/^/    /'
    status=1
  fi
done
exit $status
