#!/usr/bin/env bash
# test.sh -- installs what is missing, builds, and runs every test:
# the unit suites, then each again under --stress-gc --verify-heap
# (label stress), valgrind memcheck (label valgrind) and an ASan+UBSan build
# (label sanitize), the install check, the tools' tests and a short fuzz run.
# usage: tools/test.sh [extra ctest args]     env: BUILD_DIR (default build-test)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test
build=${BUILD_DIR:-build-test}
fuzz=OFF
command -v clang >/dev/null 2>&1 && fuzz=ON
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENURE_WERROR=ON \
  -DTENURE_FUZZ=$fuzz > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest -j"$(nproc)" --output-on-failure --timeout 900 "$@"
