#!/usr/bin/env bash
# Generate the leak_fresh snapshot series:
#   tools/bench/leak_fresh/gen_all.sh OUTDIR        (JOBS=N for parallel runs, default 1)
# runs every progs/*.js for seeds 1 2 3 with NSNAP=5, then checks every
# ground-truth log: each planted leak must grow in every interval.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: gen_all.sh OUTDIR}"
jobs="${JOBS:-1}"
seeds="${SEEDS:-1 2 3}"
nsnap=5
node="${NODE:-node}"
mkdir -p "$out"

list="$(mktemp)"
trap 'rm -f "$list"' EXIT
for prog in "$here"/progs/*.js; do
  for seed in $seeds; do echo "$prog $seed"; done
done > "$list"

start=$(date +%s)
fail=0
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 sh -c '
  name=$(basename "$1" .js)
  if ! "$0" --expose-gc "$1" "'"$out"'" "$2" '"$nsnap"' > "'"$out"'/$name-$2.log" 2>&1; then
    echo "FAILED: $name seed $2 (see '"$out"'/$name-$2.log)" >&2; exit 255
  fi
  cat "'"$out"'/$name-$2.log"
' "$node" < "$list" || fail=1
end=$(date +%s)
echo "generation: $((end - start)) s (JOBS=$jobs)"
[ "$fail" = 0 ] || { echo "gen_all: a program failed" >&2; exit 1; }

python3 - "$here/manifest.json" "$out" "$nsnap" $seeds <<'PY'
import json, os, sys
manifest, out, nsnap, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
progs = json.load(open(manifest))["programs"]
bad = []
for prog, spec in sorted(progs.items()):
    for seed in seeds:
        tpath = os.path.join(out, f"{prog}-{seed}.truth.json")
        if not os.path.exists(tpath):
            bad.append(f"{prog} seed {seed}: no truth log"); continue
        truth = json.load(open(tpath))
        for i in range(nsnap):
            if not os.path.exists(os.path.join(out, f"{prog}-{seed}-{i}.heapsnapshot")):
                bad.append(f"{prog} seed {seed}: snapshot {i} missing")
        names = {l["name"] for l in spec["leaks"]}
        if set(truth["leaks"]) != names:
            bad.append(f"{prog} seed {seed}: truth leaks {sorted(truth['leaks'])} != manifest {sorted(names)}")
        for name in sorted(names & set(truth["leaks"])):
            sizes = truth["leaks"][name]
            if len(sizes) != nsnap or any(s is None for s in sizes):
                bad.append(f"{prog} seed {seed}: {name}: sizes {sizes}"); continue
            for i in range(1, nsnap):
                if not sizes[i] > sizes[i - 1]:
                    bad.append(f"{prog} seed {seed}: {name} does not grow in interval {i-1}->{i}: {sizes}")
        print(f"{prog:10s} seed {seed}: " + "  ".join(f"{n}={'/'.join(map(str, truth['leaks'][n]))}" for n in sorted(truth["leaks"])))
if bad:
    print("\nTRUTH CHECK FAILED:", file=sys.stderr)
    for b in bad: print("  " + b, file=sys.stderr)
    sys.exit(1)
print("truth check: every planted leak grows in every interval")
PY
