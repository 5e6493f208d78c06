#!/usr/bin/env bash
# The whole test suite: set up, build with -Werror, run every test; then
# the same under AddressSanitizer + UBSan, without the tests that only
# retrain generated programs (tests/CMakeLists.txt lists them).  Both
# halves always run to the end and every failing test is listed; the
# exit status is non-zero if either half failed.  Test timeouts are
# scaled for loaded machines (see tests/CMakeLists.txt,
# NETC_TEST_TIMEOUT_SCALE).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=()
scripts/setup.sh || exit 1
echo "== tests (Release, -Werror)"
(cd build && ctest -j2 --output-on-failure) || failed+=("Release")
echo "== tests (AddressSanitizer + UBSan)"
if NETC_BUILD=build-asan NETC_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DNETC_SANITIZE=ON" scripts/setup.sh; then
  (cd build-asan && ctest -j2 --output-on-failure) || failed+=("AddressSanitizer + UBSan")
else
  failed+=("AddressSanitizer + UBSan (build)")
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf '== FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "== all tests passed"
