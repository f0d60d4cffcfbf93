#!/usr/bin/env bash
# Generate one heap-snapshot series.
#   gen.sh OUTDIR PROG SEED SNAPSHOTS
# Writes OUTDIR/PROG-SEED-<i>.heapsnapshot (i = 0..SNAPSHOTS-1) and prints their
# paths in order on stdout.  The program's ground-truth size log (planted leak
# and noise collection sizes at each snapshot) goes to OUTDIR/PROG-SEED.log and
# is echoed to stderr.
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 OUTDIR PROG SEED SNAPSHOTS" >&2
  exit 2
fi
outdir=$1 prog=$2 seed=$3 n=$4
here=$(cd "$(dirname "$0")" && pwd)
src="$here/progs/$prog.js"
[ -f "$src" ] || { echo "no such program: $prog (see $here/progs)" >&2; exit 2; }
mkdir -p "$outdir"
log="$outdir/$prog-$seed.log"
rc=0
node --expose-gc --max-old-space-size=512 "$src" "$outdir" "$n" "$seed" 2>"$log" || rc=$?
cat "$log" >&2
exit $rc
