#!/usr/bin/env bash
# heap_vs_memlab.sh -- tenure-heap side by side with memlab on the same
# snapshot files, in one run.
#
#   tools/bench/heap_vs_memlab.sh [TENURE_HEAP]
#
# 1. Writes, with node, one ~400 MB snapshot of a heap shaped like a
#    service's (heap_gen.js big $BIG_SCALE; BIG_MODE=records writes the
#    old one of $BIG_RECORDS copies of one record shape instead) and a
#    series of five ~20 MB snapshots of a server-like heap with two leaks
#    (heap_gen.js series), into $WORK (default /tmp/tenure-heap-bench;
#    files are reused if present, delete them to regenerate).
# 2. Installs memlab $MEMLAB_VERSION into $MEMLAB_DIR (default
#    /tmp/tenure-memlab) if it is not there (npm, browser download
#    skipped).
# 3. Load + retained sizes: `tenure-heap summary` vs `memlab analyze
#    object-size` on the big snapshot.  Leaks: `tenure-heap leaks s1..s5`
#    vs `memlab analyze unbound-collection --snapshot-dir`.
# 4. Prints wall time and peak RSS (GNU time %e, %M) of each and the
#    ratios, then tenure-heap's own per-stage timings of the summary run
#    (TENURE_HEAP_TIMINGS=1, a separate run).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TENURE_HEAP=${1:-${TENURE_HEAP:-$here/../../build/tools/heap/tenure-heap}}
WORK=${WORK:-/tmp/tenure-heap-bench}
MEMLAB_DIR=${MEMLAB_DIR:-/tmp/tenure-memlab}
MEMLAB_VERSION=${MEMLAB_VERSION:-2.0.5}
BIG_MODE=${BIG_MODE:-big}
BIG_SCALE=${BIG_SCALE:-1}
BIG_RECORDS=${BIG_RECORDS:-850000}
SERIES_RECORDS=${SERIES_RECORDS:-30000}
TIME=/usr/bin/time

[ -x "$TENURE_HEAP" ] || { echo "no tenure-heap at $TENURE_HEAP" >&2; exit 2; }
[ -x "$TIME" ] || { echo "needs GNU time at $TIME (apt-get install time)" >&2; exit 2; }
command -v node >/dev/null || { echo "needs node" >&2; exit 2; }

memlab="$MEMLAB_DIR/node_modules/.bin/memlab"
if [ ! -x "$memlab" ]; then
  echo "installing memlab@$MEMLAB_VERSION into $MEMLAB_DIR" >&2
  mkdir -p "$MEMLAB_DIR"
  (cd "$MEMLAB_DIR" && [ -f package.json ] || npm init -y >/dev/null)
  PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=true \
    npm install --prefix "$MEMLAB_DIR" --no-audit --no-fund \
    "memlab@$MEMLAB_VERSION" >&2
fi

mkdir -p "$WORK/series"
if [ "$BIG_MODE" = records ]; then
  big="$WORK/big.heapsnapshot"
  big_arg=$BIG_RECORDS
else
  big="$WORK/service-$BIG_SCALE.heapsnapshot"
  big_arg=$BIG_SCALE
fi
if [ ! -s "$big" ]; then
  echo "writing $big ($BIG_MODE $big_arg)" >&2
  node --expose-gc --max-old-space-size=16000 "$here/heap_gen.js" \
    "$BIG_MODE" "$big" "$big_arg"
fi
if [ ! -s "$WORK/series/s5.heapsnapshot" ]; then
  echo "writing $WORK/series/s1..s5" >&2
  node --expose-gc "$here/heap_gen.js" series "$WORK/series" 5 \
    "$SERIES_RECORDS"
fi
series=("$WORK"/series/s{1,2,3,4,5}.heapsnapshot)

# run NAME CMD...: runs CMD with GNU time; output in $WORK/NAME.out.
run() {
  local name=$1
  shift
  local rc=0
  "$TIME" -f "%e %M" -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>&1 ||
    rc=$?
  read -r secs kb <"$WORK/$name.time" || true
  # GNU time prepends "Command exited with non-zero status N" on failure.
  secs=$(tail -1 "$WORK/$name.time" | cut -d' ' -f1)
  kb=$(tail -1 "$WORK/$name.time" | cut -d' ' -f2)
  eval "${name}_s=$secs ${name}_mb=$((kb / 1024)) ${name}_rc=$rc"
}

sync
echo "big snapshot: $(du -m "$big" | cut -f1) MB; series: $(du -mc "${series[@]}" | tail -1 | cut -f1) MB in 5 files" >&2
run th_big "$TENURE_HEAP" summary "$big" --top 20
run ml_big "$memlab" analyze object-size --snapshot "$big"
run th_leaks "$TENURE_HEAP" leaks "${series[@]}" --json
run ml_leaks "$memlab" analyze unbound-collection --snapshot-dir "$WORK/series"

th_found=$(node -e "const d=JSON.parse(require('fs').readFileSync('$WORK/th_leaks.out','utf8'));console.log(d.findings.map(f=>f.name+' ('+f.container.name+')').join(', '))")
ml_found=$(grep -E '^· ' "$WORK/ml_leaks.out" | sed 's/^· //; s/:.*//' | paste -sd, - || true)
nodes=$(head -1 "$WORK/th_big.out" | sed 's/.*: \([0-9]*\) nodes, \([0-9]*\) edges.*/\1 nodes, \2 edges/')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
cat <<TABLE
| task | tool | wall (s) | peak RSS (MB) | exit |
|---|---|---:|---:|---:|
| load + retained sizes, $(du -m "$big" | cut -f1) MB ($nodes) | tenure-heap summary | $th_big_s | $th_big_mb | $th_big_rc |
| | memlab analyze object-size | $ml_big_s | $ml_big_mb | $ml_big_rc |
| | **ratio memlab / tenure-heap** | **$(ratio "$ml_big_s" "$th_big_s")x** | **$(ratio "$ml_big_mb" "$th_big_mb")x** | |
| leaks, 5 snapshots, $(du -mc "${series[@]}" | tail -1 | cut -f1) MB | tenure-heap leaks | $th_leaks_s | $th_leaks_mb | $th_leaks_rc |
| | memlab analyze unbound-collection | $ml_leaks_s | $ml_leaks_mb | $ml_leaks_rc |
| | **ratio memlab / tenure-heap** | **$(ratio "$ml_leaks_s" "$th_leaks_s")x** | **$(ratio "$ml_leaks_mb" "$th_leaks_mb")x** | |

Leaks in the series (planted: userCache (Map), retryQueue (Array)):
- tenure-heap flagged: $th_found
- memlab reported: $ml_found
TABLE
echo
echo "tenure-heap summary, per stage (TENURE_HEAP_TIMINGS=1):"
TENURE_HEAP_TIMINGS=1 "$TENURE_HEAP" summary "$big" --top 20 2>&1 >/dev/null |
  grep '^tenure-heap: timing' || true
