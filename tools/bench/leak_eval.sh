#!/usr/bin/env bash
# Scores `tenure-heap leaks` on the blind corpora of node programs with
# planted leaks (tools/bench/leak_eval, and leak_holdout when present):
# generates every program's series (seeds 1-3, 5 snapshots) into WORK,
# then runs leaks on sub-series of 3, 4 and 5 snapshots and prints found,
# missed and false flags (leak_eval_score.py).
#   tools/bench/leak_eval.sh TENURE_HEAP [WORK]     (WORK: /tmp/tenure-leak-eval)
# Needs node; about 8 GB of disk per corpus in WORK while it runs; KEEP=1
# keeps the snapshots.
set -euo pipefail
tool=$(realpath "$1")
work=${2:-/tmp/tenure-leak-eval}
here=$(cd "$(dirname "$0")" && pwd)
for corpus in leak_eval leak_holdout; do
  [ -f "$here/$corpus/manifest.json" ] || continue
  out="$work/$corpus"
  if [ ! -f "$out/.done" ]; then
    rm -rf "$out"
    mkdir -p "$out"
    JOBS=${JOBS:-2} "$here/$corpus/gen_all.sh" "$out" > "$out/gen.log" 2>&1
    touch "$out/.done"
  fi
  echo "## $corpus"
  python3 "$here/leak_eval_score.py" "$tool" "$out" \
    --manifest "$here/$corpus/manifest.json"
  [ -n "${KEEP:-}" ] || rm -rf "$out"
done
