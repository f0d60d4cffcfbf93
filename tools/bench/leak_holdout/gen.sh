#!/usr/bin/env bash
# Generate one heap-snapshot series.
#   gen.sh OUTDIR PROG SEED SNAPSHOTS
# Writes OUTDIR/PROG-SEED-<i>.heapsnapshot (i = 0..SNAPSHOTS-1), prints their
# paths in order on stdout, and saves the program's size log (stderr) as
# OUTDIR/PROG-SEED.log.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 OUTDIR PROG SEED [SNAPSHOTS=5]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir=$1
prog=$2
seed=$3
snaps=${4:-5}
src="$here/progs/$prog.js"
[ -f "$src" ] || { echo "no such program: $prog" >&2; exit 2; }
mkdir -p "$outdir"
log="$outdir/$prog-$seed.log"
if ! timeout 180 node --expose-gc --max-old-space-size=256 "$src" "$outdir" "$snaps" "$seed" 2>"$log"; then
  echo "gen.sh: $prog seed $seed failed; log tail:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
