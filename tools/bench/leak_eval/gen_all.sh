#!/usr/bin/env bash
# Generate every program's series for seeds 1 2 3, 5 snapshots each, into OUTDIR,
# then check the ground-truth logs (every planted leak grows in every interval).
#   gen_all.sh OUTDIR            (JOBS=2 gen_all.sh OUTDIR runs two at a time)
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
outdir=$1
here=$(cd "$(dirname "$0")" && pwd)
jobs=${JOBS:-1}
mkdir -p "$outdir"
start=$(date +%s)
tasks=()
for f in "$here"/progs/*.js; do
  prog=$(basename "$f" .js)
  for seed in 1 2 3; do tasks+=("$prog $seed"); done
done
printf '%s\n' "${tasks[@]}" | xargs -P "$jobs" -L 1 sh -c '
  t0=$(date +%s)
  "$0" "$1" "$2" "$3" 5 2>/dev/null || { echo "FAILED: $2 seed $3 (see $1/$2-$3.log)" >&2; exit 255; }
  echo "# $2 seed $3: $(( $(date +%s) - t0 ))s" >&2
' "$here/gen.sh" "$outdir"
echo "# all series generated in $(( $(date +%s) - start ))s" >&2
node "$here/check_logs.js" "$outdir" >&2
