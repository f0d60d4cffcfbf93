#!/usr/bin/env bash
# gc_vs_peers.sh -- tenure against its peers (Boehm GC, glibc malloc, jemalloc,
# node, node --single-threaded-gc; on binary-trees also a bump arena with no GC
# at all, the lower bound) on GCBench and binary-trees, side by side.
#
# usage: tools/bench/gc_vs_peers.sh          full run: gcbench + binary-trees $BT_N (21), ~10-15 min
#        tools/bench/gc_vs_peers.sh quick    smoke run: gcbench + binary-trees 16, 3 runs (~1-2 min)
# env:   QUICK=1          same as `quick`
#        RUNS=5           runs per implementation for gcbench (quick: 3)
#        BT_RUNS=3        runs per implementation for binary-trees (default: RUNS when RUNS
#                         is given, else 3 in the full run: depth 21 is 6-20 s a run)
#        BT_N=21          binary-trees depth of the full run (quick: 16)
#        WAIT_QUIET=5     before each run wait up to N s for an idle machine (measure.py's
#                         noise guard; it samples 2 s at least; 0 = off; quick: 2)
#        MAX_FOREIGN=0    redo a run when other processes used > F x its wall time in CPU (0 = only record)
#        SKIP_INSTALL=1   do not check/install Debian packages
#        BUILD_DIR=build-bench   tenure's build dir (relative paths are relative to the repo)
#        PEERS_SRC=<repo>/../shared/peers/gc   the peers (read only; copied, never written)
#        PEERS_WORK=/tmp/tenure-peers-gc       where the peers are copied and built
#        RESULTS_DIR=<repo>/results            the table goes to $RESULTS_DIR/gc-bench.md,
#                                              raw data (tsv, logs, traces) to $RESULTS_DIR/gc-bench/
#        BUILD_RETRIES=5  the library may be mid-edit: retry a failed build every 60 s
#        TENURE_OPTIONS   passed through to tenure (heap flags), reported in the header
#
# What it does: installs what is missing, builds tenure (RelWithDebInfo, -O2) and
# the peers (-O2, on a copy), runs every implementation of a workload interleaved
# (the peers' measure.py: run 1 of each, then run 2 of each ...) and checks that
# every one prints the same stdout, then one extra run each for the pause
# statistics (tenure: TENURE_STATS=1 --trace-gc; node: --trace-gc; Boehm:
# GC_PRINT_STATS=1), and in the full run the heap-limit checks.  Prints a
# markdown table (stdout and $RESULTS_DIR/gc-bench.md).
# Exit status: 0; 1 when a check failed (output mismatch, crash, heap-limit
# behaviour); 2 on a setup error.  Missed performance targets do not fail it.
set -euo pipefail

say() { printf '[gc_vs_peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'gc_vs_peers: error: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- options
# the exact command, as typed (options given through the environment included)
cmd_env=()
for v in QUICK RUNS BT_RUNS BT_N WAIT_QUIET MAX_FOREIGN SKIP_INSTALL BUILD_DIR PEERS_SRC PEERS_WORK \
         RESULTS_DIR BUILD_RETRIES TENURE_OPTIONS NODE_OPTIONS; do
  [ -n "${!v+x}" ] && cmd_env+=("$v=$(printf '%q' "${!v}")")
done
CMDLINE="${cmd_env[*]:+${cmd_env[*]} }$0${*:+ $*}"

QUICK=${QUICK:-0}
for arg in "$@"; do
  case $arg in
    quick) QUICK=1 ;;
    full) QUICK=0 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (use: quick | full | --help)" ;;
  esac
done
[ "$QUICK" = 1 ] || QUICK=0

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
[ -f "$REPO/CMakeLists.txt" ] && [ -d "$REPO/gc" ] || die "cannot find the tenure repo above $SCRIPT_DIR"
abspath() { case $1 in /*) realpath -m -- "$1" ;; *) realpath -m -- "$REPO/$1" ;; esac; }

# binary-trees 21 takes 6-20 s per run and implementation: 3 runs keep a full
# run within ~10-15 min on the 2-core machine (an explicit RUNS applies to it too)
if [ "$QUICK" = 1 ]; then
  RUNS=${RUNS:-3} BT_RUNS=${BT_RUNS:-${RUNS}} BT_DEPTH=16 WAIT_QUIET=${WAIT_QUIET:-2}
else
  BT_RUNS=${BT_RUNS:-${RUNS:-3}} RUNS=${RUNS:-5} BT_DEPTH=${BT_N:-21} WAIT_QUIET=${WAIT_QUIET:-5}
fi
MAX_FOREIGN=${MAX_FOREIGN:-0}
BUILD_RETRIES=${BUILD_RETRIES:-5}
BUILD_DIR=$(abspath "${BUILD_DIR:-build-bench}")
PEERS_SRC=$(abspath "${PEERS_SRC:-../shared/peers/gc}")
PEERS_WORK=$(abspath "${PEERS_WORK:-${TMPDIR:-/tmp}/tenure-peers-gc}")
RESULTS_DIR=$(abspath "${RESULTS_DIR:-results}")
RAW=$RESULTS_DIR/gc-bench
OUT_MD=$RESULTS_DIR/gc-bench.md
for n in RUNS BT_RUNS BT_DEPTH BUILD_RETRIES; do
  [[ ${!n} =~ ^[0-9]+$ ]] && [ "${!n}" -ge 1 ] || die "$n must be a positive integer (got '${!n}')"
done
[[ $WAIT_QUIET =~ ^[0-9.]+$ ]] || die "WAIT_QUIET must be a number of seconds (got '$WAIT_QUIET')"
[[ $MAX_FOREIGN =~ ^[0-9.]+$ ]] || die "MAX_FOREIGN must be a number (got '$MAX_FOREIGN')"
[ -d "$PEERS_SRC" ] || die "peers not found at $PEERS_SRC (set PEERS_SRC)"
case $PEERS_WORK/ in "$PEERS_SRC"/*) die "PEERS_WORK must not be inside PEERS_SRC (read only)" ;; esac
case $RESULTS_DIR/ in "$PEERS_SRC"/*) die "RESULTS_DIR must not be inside PEERS_SRC (read only)" ;; esac
unset TENURE_STATS GC_PRINT_STATS   # no statistics output in the timed runs

# ---------------------------------------------------------------- install
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  need=()
  for pkg in gcc make cmake pkg-config libgc-dev libjemalloc-dev libcmocka-dev hyperfine time python3; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing missing Debian packages: ${need[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}"
  fi
fi
for t in cmake make python3 /usr/bin/time; do
  command -v "$t" >/dev/null 2>&1 || die "$t not found (run without SKIP_INSTALL=1, or install it)"
done
HAVE_NODE=1
command -v node >/dev/null 2>&1 || { HAVE_NODE=0; say "warning: node not on PATH, the node rows are skipped"; }

# ---------------------------------------------------------------- build tenure
build_tenure() {
  cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF \
        -DTENURE_SANITIZE_TESTS=OFF >"$RAW/build.log" 2>&1 &&
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target gcbench binarytrees >>"$RAW/build.log" 2>&1
}
mkdir -p "$RAW" || die "cannot create $RAW"
say "building tenure in $BUILD_DIR (RelWithDebInfo)"
attempt=1
until build_tenure; do
  if [ "$attempt" -ge "$BUILD_RETRIES" ]; then
    tail -n 30 "$RAW/build.log" >&2
    die "tenure build failed $attempt times (log: $RAW/build.log)"
  fi
  say "build failed (gc/ may be mid-edit), attempt $attempt of $BUILD_RETRIES; retrying in 60 s. Last lines:"
  tail -n 5 "$RAW/build.log" >&2
  sleep 60
  attempt=$((attempt + 1))
done
T_GCBENCH=$BUILD_DIR/examples/gcbench
T_BT=$BUILD_DIR/examples/binarytrees
[ -x "$T_GCBENCH" ] && [ -x "$T_BT" ] || die "build finished but $T_GCBENCH / $T_BT are missing"
CC_PATH=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
CC_VERSION=$("${CC_PATH:-cc}" --version 2>/dev/null | head -n 1 || echo unknown)
TENURE_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- build the peers (on a copy)
say "copying the peers from $PEERS_SRC to $PEERS_WORK and building them"
mkdir -p "$PEERS_WORK"
# -p keeps the sources' mtimes, so make only rebuilds what changed
cp -p "$PEERS_SRC"/*.c "$PEERS_SRC"/*.js "$PEERS_SRC"/*.py "$PEERS_SRC"/Makefile "$PEERS_WORK"/
chmod -R u+w "$PEERS_WORK"
make -s -C "$PEERS_WORK" all >"$RAW/peers-build.log" 2>&1 ||
  { tail -n 30 "$RAW/peers-build.log" >&2; die "building the peers failed (log: $RAW/peers-build.log)"; }
PB=$PEERS_WORK/bin

# ---------------------------------------------------------------- measure
q() { printf '%q' "$1"; }   # measure.py splits its case commands with shlex
rm -f "$RAW"/measure.tsv "$RAW"/measure_*.log "$RAW"/expect_*.txt "$RAW"/tenure_stats_* \
      "$RAW"/trace_*.txt "$RAW"/heaplimit.tsv
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$SECONDS
status=0

measure() {   # measure WORKLOAD RUNS CASE...   (one interleaved measure.py run)
  local wl=$1 runs=$2; shift 2
  local args=() c
  for c in "$@"; do args+=(--case "$c"); done
  say "measuring $wl: $# implementations x $runs runs, interleaved"
  if ! python3 "$PEERS_WORK/measure.py" --runs "$runs" --wait-quiet "$WAIT_QUIET" \
        --max-foreign "$MAX_FOREIGN" --expect "$RAW/expect_$wl.txt" --tsv "$RAW/measure.tsv" \
        "${args[@]}" >"$RAW/measure_$wl.log" 2>&1; then
    say "measure.py reported a failed check for $wl:"
    grep -v '^[a-z0-9-]*/[a-z-]* *wall median' "$RAW/measure_$wl.log" | tail -n 20 >&2 || true
    status=1
  fi
  sed 's/^/    /' "$RAW/measure_$wl.log" >&2
}

cases() {   # cases WORKLOAD TENURE_BIN PEER_PREFIX JS [ARG]
  local wl=$1 tb=$2 pp=$3 js=$4 arg=${5:-}
  C=("$wl/boehm=$(q "$PB/${pp}_boehm") $arg" "$wl/glibc=$(q "$PB/${pp}_malloc") $arg"
     "$wl/jemalloc=$(q "$PB/${pp}_jemalloc") $arg")
  if [ "$HAVE_NODE" = 1 ]; then
    C+=("$wl/node=node $(q "$PEERS_WORK/$js") $arg"
        "$wl/node-stgc=node --single-threaded-gc $(q "$PEERS_WORK/$js") $arg")
  fi
  # binary-trees also against the bump arena (no GC at all: the lower bound)
  [ "$pp" = binarytrees ] && C+=("$wl/arena=$(q "$PB/${pp}_arena") $arg")
  C+=("$wl/tenure=$(q "$tb") $arg")   # last: the reference stdout is a peer's (Boehm's)
}

BT=binarytrees$BT_DEPTH
WORKLOADS=(gcbench "$BT")
cases gcbench "$T_GCBENCH" gcbench gcbench.js
measure gcbench "$RUNS" "${C[@]}"
cases "$BT" "$T_BT" binarytrees binarytrees.js "$BT_DEPTH"
measure "$BT" "$BT_RUNS" "${C[@]}"

# ---------------------------------------------------------------- pauses (one run each)
pause_runs() {   # pause_runs WORKLOAD TENURE_BIN PEER_PREFIX JS [ARG]
  local wl=$1 tb=$2 pp=$3 js=$4 arg=${5:-} rc=0
  say "pause statistics for $wl (one run each: tenure, node, node --single-threaded-gc, Boehm)"
  # shellcheck disable=SC2086   # $arg is empty or one number
  TENURE_STATS=1 "$tb" --trace-gc $arg >"$RAW/tenure_stats_$wl.out" 2>"$RAW/tenure_stats_$wl.err" || rc=$?
  if [ "$rc" != 0 ]; then
    say "tenure statistics run for $wl exited $rc"; tail -n 5 "$RAW/tenure_stats_$wl.err" >&2; status=1
  elif [ -f "$RAW/expect_$wl.txt" ] && ! cmp -s "$RAW/tenure_stats_$wl.out" "$RAW/expect_$wl.txt"; then
    say "tenure stdout with TENURE_STATS=1 --trace-gc differs from the peers' for $wl"; status=1
  fi
  if [ "$HAVE_NODE" = 1 ]; then
    # shellcheck disable=SC2086
    node --trace-gc "$PEERS_WORK/$js" $arg >"$RAW/trace_${wl}_node.txt" 2>&1 || say "node --trace-gc $js failed"
    # shellcheck disable=SC2086
    node --trace-gc --single-threaded-gc "$PEERS_WORK/$js" $arg >"$RAW/trace_${wl}_node-stgc.txt" 2>&1 ||
      say "node --trace-gc --single-threaded-gc $js failed"
  fi
  # shellcheck disable=SC2086
  GC_PRINT_STATS=1 "$PB/${pp}_boehm" $arg 2>"$RAW/trace_${wl}_boehm.txt" >/dev/null || say "${pp}_boehm failed"
}
pause_runs gcbench "$T_GCBENCH" gcbench gcbench.js
pause_runs "$BT" "$T_BT" binarytrees binarytrees.js "$BT_DEPTH"

# ---------------------------------------------------------------- heap limit (full run only)
limit_check() {   # limit_check EXPECT(fail|ok) CMD...
  local expect=$1; shift
  local tf of ef rc=0 wall rss msg result=ok why=
  tf=$(mktemp) of=$(mktemp) ef=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$of" 2>"$ef" || rc=$?
  read -r wall rss < <(tail -n 1 "$tf") || { wall=?; rss=0; }
  # first match only (-o prints every match of the line: node's says both)
  msg=$(grep -oE 'Reached heap limit|JavaScript heap out of memory|out of memory' "$ef" | head -n 1 || true)
  if [ "$expect" = fail ]; then
    if [ "$rc" != 134 ]; then result=FAIL why="exit status $rc, expected 134"
    elif [ "$1" != node ] && [ "$msg" != "Reached heap limit" ]; then result=FAIL why="no 'Reached heap limit' message"
    fi
  else
    if [ "$rc" != 0 ]; then result=FAIL why="exit status $rc, expected 0"
    elif ! cmp -s "$of" "$RAW/expect_$BT.txt"; then result=FAIL why="stdout differs from the peers'"
    fi
  fi
  [ "$1" = node ] && [ "$result" = ok ] && result="ok (reference)"
  [ "$1" = node ] && [ "$result" = FAIL ] && result="differs (reference)"   # node is only a reference
  [ "$result" = FAIL ] && status=1
  local shown=${*/#$BUILD_DIR\//}; shown=${shown//$PEERS_WORK\//}
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shown" "$rc" \
    "$([ "$expect" = fail ] && echo "134, 'Reached heap limit'" || echo "0, complete")" \
    "$wall" "$((rss / 1024))" "$msg" "$result" "$why" >>"$RAW/heaplimit.tsv"
  { echo "\$ $*"; echo "exit $rc, wall $wall s, peak RSS $((rss / 1024)) MiB"; tail -n 8 "$ef"; echo; } >>"$RAW/heaplimit.log"
  rm -f "$tf" "$of" "$ef"
}
if [ "$QUICK" = 0 ]; then
  say "heap-limit checks (binarytrees $BT_DEPTH with --max-old-space-size=64 and =512; node for reference)"
  : >"$RAW/heaplimit.log"
  printf 'command\trc\texpected\twall_s\trss_mib\tmessage\tresult\twhy\n' >"$RAW/heaplimit.tsv"
  limit_check fail "$T_BT" --max-old-space-size=64 "$BT_DEPTH"
  limit_check ok "$T_BT" --max-old-space-size=512 "$BT_DEPTH"
  if [ "$HAVE_NODE" = 1 ]; then
    limit_check fail node --max-old-space-size=64 "$PEERS_WORK/binarytrees.js" "$BT_DEPTH"
    limit_check ok node --max-old-space-size=512 "$PEERS_WORK/binarytrees.js" "$BT_DEPTH"
  fi
fi

# ---------------------------------------------------------------- report
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T0))
labels=tenure,boehm,glibc,jemalloc,arena
[ "$HAVE_NODE" = 1 ] && labels+=,node,node-stgc
{
  echo "# tenure vs peers: GCBench and binary-trees $BT_DEPTH"
  echo
  echo "- date: $DATE_START ($([ "$QUICK" = 1 ] && echo 'quick smoke run' || echo 'full run'), measuring took $((ELAPSED / 60)) min $((ELAPSED % 60)) s)"
  echo "- command: \`$CMDLINE\`"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
  echo "- load average: $LOAD_START at start, $LOAD_END at end (the machine is shared: compare the ratios, which come from interleaved runs)"
  echo "- compiler: $CC_VERSION; tenure $TENURE_REV built RelWithDebInfo (-O2 -g) in $BUILD_DIR; peers -O2"
  echo "- peers: libgc $(dpkg-query -W -f='${Version}' libgc-dev 2>/dev/null || echo '?'), jemalloc $(dpkg-query -W -f='${Version}' libjemalloc-dev 2>/dev/null || echo '?'), node $([ "$HAVE_NODE" = 1 ] && node --version || echo 'absent'); sources copied from $PEERS_SRC to $PEERS_WORK"
  echo "- runs: gcbench $RUNS, binary-trees $BT_RUNS per implementation, interleaved by the peers' measure.py (wall = monotonic clock around the process; peak RSS = GNU time %M; WAIT_QUIET=$WAIT_QUIET s, MAX_FOREIGN=$MAX_FOREIGN; foreign cpu = CPU used by other processes during a run)"
  [ -n "${TENURE_OPTIONS:-}" ] && echo "- TENURE_OPTIONS=$TENURE_OPTIONS (applies to every tenure run)"
  [ -n "${NODE_OPTIONS:-}" ] && echo "- NODE_OPTIONS=$NODE_OPTIONS (applies to every node run)"
  echo "- raw data: $RAW/ (measure.tsv, measure_*.log, tenure_stats_*, trace_*, heaplimit.*)"
  echo
  python3 "$SCRIPT_DIR/gc_table.py" --raw "$RAW" --peers "$PEERS_WORK" \
    --workloads "$(IFS=,; echo "${WORKLOADS[*]}")" --labels "$labels" || status=1
} >"$OUT_MD.tmp"
mv "$OUT_MD.tmp" "$OUT_MD"
cat "$OUT_MD"
say "table written to $OUT_MD ($([ "$status" = 0 ] && echo 'all checks passed' || echo 'SOME CHECKS FAILED, see above'))"
exit "$status"
