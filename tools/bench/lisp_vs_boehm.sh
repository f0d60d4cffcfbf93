#!/usr/bin/env bash
# lisp_vs_boehm.sh -- examples/lisp.c on tenure against the same interpreter
# on Boehm GC 8.2 (lisp_boehm, built from the same source with -DLISP_BOEHM),
# on every program of examples/lisp/, side by side.
#
# usage: tools/bench/lisp_vs_boehm.sh [BUILD_DIR]     (default: build)
# env:   RUNS=5           runs per build and program
#        PROGRAMS="trees lists closures deriv"   which examples/lisp/*.scm
#        WAIT_QUIET=2     before each run wait up to N s for an idle machine
#                         (measure.py's noise guard; it samples 2 s; 0 = off)
#        MAX_FOREIGN=0    redo a run when other processes used > F x its wall
#                         time in CPU (0 = only record)
#        MEASURE=/work/shared/peers/gc/measure.py   the peers' runner
#        RESULTS_DIR=<repo>/results/lisp-bench      raw data (tsv, logs)
#        TENURE_OPTIONS   heap flags for the tenure build, shown in the header
#
# Builds nothing: BUILD_DIR must hold examples/lisp and examples/lisp_boehm
# (cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo, i.e. -O2 -g, for both; the
# script warns about another build type).  The runs of the two builds are
# interleaved (measure.py: run 1 of each, then run 2 of each ...); every run
# must print exactly tests/examples/lisp_PROGRAM.expected.  Then one extra
# run each with --stats for the collectors' counters.
# Prints a markdown table: median wall and peak RSS of each build, their
# ratios (tenure / Boehm) and the issue's targets (wall <= 0.6x, peak RSS
# <= 1.5x).
# Exit status: 0; 1 when a check failed (an output differs, a run crashed);
# 2 on a setup error.  Missed targets do not fail it.
set -euo pipefail

die() { printf 'lisp_vs_boehm: error: %s\n' "$*" >&2; exit 2; }
say() { printf '[lisp_vs_boehm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
case ${1:-} in -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;; esac
[ $# -le 1 ] || die "usage: $0 [BUILD_DIR]"
BUILD_DIR=${1:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
RUNS=${RUNS:-5}
PROGRAMS=${PROGRAMS:-trees lists closures deriv}
WAIT_QUIET=${WAIT_QUIET:-2}
MAX_FOREIGN=${MAX_FOREIGN:-0}
MEASURE=${MEASURE:-/work/shared/peers/gc/measure.py}
RESULTS_DIR=${RESULTS_DIR:-$REPO/results/lisp-bench}
[[ $RUNS =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "RUNS must be a positive integer"
T=$BUILD_DIR/examples/lisp
B=$BUILD_DIR/examples/lisp_boehm
[ -x "$T" ] || die "$T not found (cmake --build $BUILD_DIR --target lisp lisp_boehm)"
[ -x "$B" ] || die "$B not found (it needs libgc-dev: pkg-config bdw-gc)"
[ -f "$MEASURE" ] || die "measure.py not found at $MEASURE (set MEASURE)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
BT=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
case $BT in RelWithDebInfo|Release) ;; *) say "warning: $BUILD_DIR is a '$BT' build, not -O2 (RelWithDebInfo)" ;; esac
for p in $PROGRAMS; do
  [ -f "$REPO/examples/lisp/$p.scm" ] || die "no examples/lisp/$p.scm"
  [ -f "$REPO/tests/examples/lisp_$p.expected" ] || die "no tests/examples/lisp_$p.expected"
done
mkdir -p "$RESULTS_DIR"
TSV=$RESULTS_DIR/measure.tsv
rm -f "$TSV" "$RESULTS_DIR"/measure_*.log "$RESULTS_DIR"/stats_*
unset TENURE_STATS GC_PRINT_STATS

q() { printf '%q' "$1"; }
status=0
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for p in $PROGRAMS; do
  scm=$REPO/examples/lisp/$p.scm
  say "$p: tenure and Boehm x $RUNS runs, interleaved"
  if ! python3 "$MEASURE" --runs "$RUNS" --wait-quiet "$WAIT_QUIET" --max-foreign "$MAX_FOREIGN" \
        --expect "$REPO/tests/examples/lisp_$p.expected" --tsv "$TSV" \
        --case "$p/tenure=$(q "$T") $(q "$scm")" --case "$p/boehm=$(q "$B") $(q "$scm")" \
        >"$RESULTS_DIR/measure_$p.log" 2>&1; then
    say "measure.py reported a failed check for $p:"; tail -n 20 "$RESULTS_DIR/measure_$p.log" >&2
    status=1
  fi
  sed 's/^/    /' "$RESULTS_DIR/measure_$p.log" >&2
  "$T" --stats "$scm" >/dev/null 2>"$RESULTS_DIR/stats_${p}_tenure.json" || status=1
  "$B" --stats "$scm" >/dev/null 2>"$RESULTS_DIR/stats_${p}_boehm.txt" || status=1
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

echo "# lisp (examples/lisp.c): tenure vs Boehm GC"
echo
echo "- date: $DATE_START; machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average $LOAD_START at start, $LOAD_END at end"
echo "- tenure $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?'), $BUILD_DIR ($BT); libgc $(dpkg-query -W -f='${Version}' libgc-dev 2>/dev/null || echo '?')"
echo "- $RUNS runs per build, interleaved by measure.py (wall: monotonic clock around the process; peak RSS: GNU time %M; WAIT_QUIET=$WAIT_QUIET, MAX_FOREIGN=$MAX_FOREIGN)${TENURE_OPTIONS:+; TENURE_OPTIONS=$TENURE_OPTIONS}"
echo
python3 - "$TSV" "$RESULTS_DIR" $PROGRAMS <<'EOF'
import csv, json, sys
tsv, res, progs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = {r["label"]: r for r in csv.DictReader(open(tsv), delimiter="\t")}
def f(x): return float(x)
print("| program | tenure wall s | Boehm wall s | wall ratio | tenure cpu s | Boehm cpu s | cpu ratio "
      "| tenure peak RSS MiB | Boehm peak RSS MiB | RSS ratio | wall <= 0.6x | RSS <= 1.5x | check |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|:-:|:-:|")
for p in progs:
    t, b = rows.get(p + "/tenure"), rows.get(p + "/boehm")
    if t is None or b is None:
        print(f"| {p} | – | – | – | – | – | – | – | – | – | – | – | missing |"); continue
    wr = f(t["wall_median_s"]) / f(b["wall_median_s"])
    cr = f(t["cpu_median_s"]) / max(f(b["cpu_median_s"]), 1e-9)
    rr = f(t["rss_median_mib"]) / f(b["rss_median_mib"])
    ok = "ok" if t["ok"] == "ok" and b["ok"] == "ok" else "FAIL"
    print(f"| {p} | {f(t['wall_median_s']):.3f} | {f(b['wall_median_s']):.3f} | {wr:.2f}x "
          f"| {f(t['cpu_median_s']):.2f} | {f(b['cpu_median_s']):.2f} | {cr:.2f}x "
          f"| {f(t['rss_median_mib']):.1f} | {f(b['rss_median_mib']):.1f} | {rr:.2f}x "
          f"| {'yes' if wr <= 0.6 else 'no'} | {'yes' if rr <= 1.5 else 'no'} | {ok} |")
print()
print("Collectors, one extra run each (`--stats`):")
print()
print("| program | tenure scavenges | tenure full GCs | tenure pause total ms | promoted MB | semispace MB | old space MB | Boehm collections | Boehm heap KiB |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for p in progs:
    try:
        d = json.load(open(f"{res}/stats_{p}_tenure.json"))
        g = d.get("gc", {})
        old = next((s["space_size"] for s in d.get("spaces", []) if s.get("space_name") == "old_space"), 0)
        tcols = (f"{g.get('scavenges', '?')} | {g.get('full_gcs', '?')} | {g.get('total_pause_ms', 0):.1f} "
                 f"| {g.get('bytes_promoted', 0) / 2**20:.1f} | {g.get('semi_space_size', 0) / 2**20:.0f} | {old / 2**20:.1f}")
    except (OSError, ValueError, KeyError, StopIteration):
        tcols = "? | ? | ? | ? | ? | ?"
    try:
        w = open(f"{res}/stats_{p}_boehm.txt").read().split()
        bcols = f"{w[1]} | {w[4]}"
    except (OSError, IndexError):
        bcols = "? | ?"
    print(f"| {p} | {tcols} | {bcols} |")
EOF
say "raw data in $RESULTS_DIR ($([ "$status" = 0 ] && echo 'all checks passed' || echo 'SOME CHECKS FAILED'))"
exit "$status"
