#!/usr/bin/env bash
# run.sh -- installs what is missing, builds, and starts the main program:
# tenure-server, the demo HTTP/1.1 application (examples/tenure_server.c),
# on http://127.0.0.1:8080/ unless told otherwise.  Every argument goes to
# tenure-server unchanged; heap flags may also come from TENURE_OPTIONS,
# which tenure-server reads itself.
#
# usage: tools/run.sh [tenure-server options] [heap flags]
#        tools/run.sh --listen 0.0.0.0:9000 --static DIR --max-old-space-size=64
#        tools/run.sh --help                 (tenure-server's flags)
# env:   BUILD_DIR=build          build directory (relative to the repository)
#        TENURE_RUN_NO_BUILD=1    neither install packages nor build: start the
#                                 tenure-server already in BUILD_DIR
#        TENURE_SERVER=PATH       start this binary instead (implies
#                                 TENURE_RUN_NO_BUILD=1); the server test
#                                 (tests/server/test_tenure_server.sh) starts
#                                 the server this way, through this script
#
# The collector benchmark that run.sh used to run is
# tools/bench/gc_vs_peers.sh (`tools/bench/gc_vs_peers.sh quick`: 2 minutes).
#
# The server is started with exec: it keeps this script's pid, and SIGINT
# (Ctrl-C) and SIGTERM reach it directly; it stops gracefully (in-flight
# requests finish) and exits 0.  The working directory is not changed, so
# relative paths in the arguments mean what they say.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
case ${1:-} in
  quick|bench)
    echo "run.sh: tools/run.sh now starts tenure-server; the benchmark is" \
      "tools/bench/gc_vs_peers.sh [quick] (see README.md)" >&2
    exit 2 ;;
esac
bin=${TENURE_SERVER:-}
if [ -z "$bin" ]; then
  build=${BUILD_DIR:-build}
  case $build in /*) ;; *) build=$repo/$build ;; esac
  bin=$build/examples/tenure-server
  if [ "${TENURE_RUN_NO_BUILD:-0}" != 1 ]; then
    "$repo/tools/deps.sh" run >&2
    # Configure only once (an existing build dir keeps its own settings);
    # the build itself is incremental: nothing to do when it is current.
    if [ ! -f "$build/CMakeCache.txt" ]; then
      echo "run.sh: configuring $build (RelWithDebInfo)" >&2
      mkdir -p "$build"
      cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DTENURE_FUZZ=OFF > "$build/configure.log" 2>&1 ||
        { cat "$build/configure.log" >&2; exit 1; }
    fi
    cmake --build "$build" -j2 --target tenure-server > "$build/run-build.log" 2>&1 ||
      { cat "$build/run-build.log" >&2; echo "run.sh: build failed" >&2; exit 1; }
  fi
fi
if [ ! -x "$bin" ]; then
  echo "run.sh: $bin is missing (drop TENURE_RUN_NO_BUILD to build it)" >&2
  exit 1
fi
echo "run.sh: starting $bin $* (Ctrl-C or SIGTERM stops it)" >&2
exec "$bin" "$@"
