#!/usr/bin/env bash
# Generate the whole corpus: every program in progs/, seeds 1 2 3, 5 snapshots
# each, JOBS (default 2) series at a time. Snapshots and size logs go to OUTDIR
# (see gen.sh for the file names).
#   gen_all.sh OUTDIR
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir=$1
JOBS=${JOBS:-2}
SEEDS=${SEEDS:-"1 2 3"}
SNAPSHOTS=${SNAPSHOTS:-5}
mkdir -p "$outdir"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
start=$(ms)
# one line per job: PROG SEED
for f in "$here"/progs/*.js; do
  p=$(basename "$f" .js)
  for s in $SEEDS; do echo "$p $s"; done
done | xargs -P "$JOBS" -L 1 bash -c '
  here=$0 outdir=$1 snaps=$2 prog=$3 seed=$4
  t0=$(( $(date +%s%N) / 1000000 ))
  if "$here/gen.sh" "$outdir" "$prog" "$seed" "$snaps" >/dev/null; then
    t1=$(( $(date +%s%N) / 1000000 ))
    printf "%-20s seed %s  %6d ms\n" "$prog" "$seed" $(( t1 - t0 ))
  else
    echo "FAILED $prog seed $seed" >&2
    exit 255
  fi' "$here" "$outdir" "$SNAPSHOTS"
end=$(ms)
echo "total $(( end - start )) ms with JOBS=$JOBS"
