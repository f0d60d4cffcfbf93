#!/usr/bin/env bash
# snapshot_bench.sh -- time of writing a heap snapshot of N objects (issue 3:
# 1 million objects in under 1 s).
#
# usage: tools/bench/snapshot_bench.sh [N] [RUNS]     (default 1000000, 5)
# env:   BUILD_DIR=build-snap   a configured tenure build (libtenure.so)
#        CHECK=1                also parse the result with node (JSON.parse)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-build-snap}
case $build in /*) ;; *) build=$repo/$build ;; esac
n=${1:-1000000}
runs=${2:-5}
cmake --build "$build" --target tenure -j2 >/dev/null
exe=$(mktemp -d)/snapshot_bench
cc -O2 -std=gnu11 -I"$repo/gc/include" "$here/snapshot_bench.c" \
  -L"$build/gc" -Wl,-rpath,"$build/gc" -ltenure -o "$exe"
out=/tmp/tenure-bench.$$.heapsnapshot
for i in $(seq "$runs"); do
  "$exe" "$n" "$out"
done
if [ "${CHECK:-0}" = 1 ] && command -v node >/dev/null; then
  node -e "const s=JSON.parse(require('fs').readFileSync('$out','utf8'));
console.log('node: nodes', s.snapshot.node_count, 'edges', s.snapshot.edge_count)"
fi
rm -f "$out" "$exe"
rmdir "$(dirname "$exe")"
