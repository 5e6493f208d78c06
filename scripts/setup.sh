#!/usr/bin/env bash
# Installs what netc needs on Debian 12 (as root), then configures and
# builds it in build/ (or $NETC_BUILD).  Safe to run again: it installs only
# what is missing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# libclang-rt-14-dev: libFuzzer, for the fuzz.smoke test (scripts/fuzz.sh).
pkgs=(build-essential cmake flex bison libcmocka-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev clang libclang-rt-14-dev llvm-22-dev python3 graphviz
      dataset-fashion-mnist)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build=${NETC_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DNETC_WERROR=ON ${NETC_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
