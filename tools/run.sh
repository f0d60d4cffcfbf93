#!/usr/bin/env bash
# run.sh -- installs what is missing, builds, and runs the main program:
# for now the benchmark of tenure against its peers (Boehm GC, malloc,
# jemalloc, node) on GCBench and binary-trees, printing the results table.
# usage: tools/run.sh [quick]      (quick: binary-trees 16, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh run
exec tools/bench/gc_vs_peers.sh "$@"
