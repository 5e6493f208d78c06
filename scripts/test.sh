#!/usr/bin/env bash
# The whole test suite: set up, build with -Werror, run every test; then
# the same under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== tests (Release, -Werror)"
(cd build && ctest -j2 --output-on-failure)
echo "== tests (AddressSanitizer + UBSan)"
NETC_BUILD=build-asan NETC_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DNETC_SANITIZE=ON" scripts/setup.sh
(cd build-asan && ctest -j2 --output-on-failure)
