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
mkdir -p "$build" "$build-fuzz"
# memlab's heap parser checks our snapshots too (tests/gc/snapshot_check.js).
export TENURE_MEMLAB_DIR=${TENURE_MEMLAB_DIR:-/tmp/tenure-memlab}
if [ ! -d "$TENURE_MEMLAB_DIR/node_modules/@memlab/heap-analysis" ]; then
  mkdir -p "$TENURE_MEMLAB_DIR"
  (cd "$TENURE_MEMLAB_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=true \
    npm install --no-audit --no-fund memlab@2.0.5 >/dev/null 2>&1) ||
    echo "test.sh: WARNING: could not install memlab; the memlab snapshot check will SKIP" >&2
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTENURE_WERROR=ON -DTENURE_FUZZ=OFF \
  > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j"$(nproc)"
# The fuzzers need clang's libFuzzer: a second, small build of just them.
CC=clang cmake -S . -B "$build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTENURE_FUZZ=ON -DTENURE_SANITIZE_TESTS=OFF -DTENURE_VALGRIND_TESTS=OFF \
  -DTENURE_JEMALLOC=OFF > "$build-fuzz/configure.log" 2>&1 ||
  { cat "$build-fuzz/configure.log"; exit 1; }
cmake --build "$build-fuzz" -j"$(nproc)" --target fuzz_heap_reader fuzz_json fuzz_http_parser fuzz_cookie \
  fuzz_urlencoded fuzz_multipart fuzz_encoding fuzz_request
status=0
(cd "$build" && ctest -j"$(nproc)" --output-on-failure --timeout 900 "$@") || status=$?
(cd "$build-fuzz" && ctest -L fuzz --output-on-failure) || status=$?
exit $status
