#!/usr/bin/env bash
# json_vs_node.sh -- JSON.parse / JSON.stringify against tenure's runtime, on
# the same generated document, in process and as whole processes (issue 3).
#
# usage: tools/bench/json_vs_node.sh [SIZE_MB]      (default 10)
# env:   BUILD_DIR=build-bench   tenure's build dir (relative to the repo)
#        ROUNDS=3     in-process rounds, interleaved tenure/node, each of
#        ITERS=10     parse+stringify iterations (best and median reported)
#        RUNS=11      whole-process runs of each, interleaved (median wall
#                     time and median peak RSS)
#        WORK=/tmp/tenure-json-bench   where the document goes
#        OUT=<repo>/runtime/README.md  where the results section is written
#                                      (OUT=- : stdout only)
#
# (a) in process: tools/bench/json_bench (C, links tenure_runtime) against
#     tools/bench/json_node_bench.js, both timing parse and serialize of the
#     file read once; (b) whole processes: `json2heap FILE` against
#     `node -e "JSON.parse(require('fs').readFileSync(FILE,'utf8'))"`, wall
#     time from the shell and peak RSS from /usr/bin/time -f %M.
# Needs node, cmake, a C compiler and /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
size=${1:-10}
build=${BUILD_DIR:-build-bench}
rounds=${ROUNDS:-3}
iters=${ITERS:-10}
runs=${RUNS:-11}
work=${WORK:-/tmp/tenure-json-bench}
out=${OUT:-$repo/runtime/README.md}
say() { printf '[json_vs_node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v node > /dev/null || { echo "json_vs_node: node is required" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "json_vs_node: /usr/bin/time is required" >&2; exit 2; }
mkdir -p "$work"
say "building json2heap and json_bench in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 2; }
cmake --build "$build" -j"$(nproc)" --target json2heap json_bench > "$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 2; }
j2h=$(find "$build" -name json2heap -type f -perm -u+x | head -1)
jb=$(find "$build" -name json_bench -type f -perm -u+x | head -1)

doc=$work/doc-${size}mb.json
[ -s "$doc" ] || node tools/bench/json_gen.js "$doc" "$size"
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$doc"
"$j2h" "$doc" > /dev/null

# (a) In process, interleaved rounds.
: > "$work/inproc.tsv"
for r in $(seq "$rounds"); do
  say "in-process round $r/$rounds"
  printf 'tenure\t%s\n' "$("$jb" "$doc" "$iters")" >> "$work/inproc.tsv"
  printf 'node\t%s\n' "$(node tools/bench/json_node_bench.js "$doc" "$iters")" >> "$work/inproc.tsv"
done

# (b) Whole processes, interleaved runs.
: > "$work/proc.tsv"
run() { # name cmd...
  local name=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f %M -o "$work/rss.txt" "$@" > /dev/null
  t1=$(date +%s%N)
  printf '%s\t%s\t%s\n' "$name" "$(( (t1 - t0) / 1000 ))" "$(tail -1 "$work/rss.txt")" >> "$work/proc.tsv"
}
for r in $(seq "$runs"); do
  [ $((r % 4)) -eq 1 ] && say "process run $r/$runs"
  run tenure "$j2h" "$doc"
  run node node -e "JSON.parse(require('fs').readFileSync('$doc','utf8'))"
done

cmdline="tools/bench/json_vs_node.sh $size  (ROUNDS=$rounds ITERS=$iters RUNS=$runs)"
table=$(node tools/bench/json_table.js "$work/inproc.tsv" "$work/proc.tsv" "$doc" "$cmdline" "$iters")
printf '%s\n' "$table"
if [ "$out" != "-" ]; then
  node tools/bench/json_table.js --merge "$out" <<< "$table"
  say "results written to $out"
fi
