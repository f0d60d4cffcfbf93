#!/usr/bin/env python3
"""Score a leak detector on the leak_fresh corpus.

  score.py TENURE_HEAP SNAPDIR

For every (program, seed) found in SNAPDIR and each series of snapshots
  [0,1,2] [2,3,4]  [0,1,2,3] [1,2,3,4]  [0,1,2,3,4]
runs `TENURE_HEAP leaks <files> --json` and reads {"findings": [...],
"suspects": [...]}. A planted leak (manifest.json) is found when a finding's
"name" equals the leak's name, or the last hop of its "path" (the text before
" (" in the last " -> " segment) does. Every finding that matches no planted
leak of that program is a false flag. Suspects are counted apart: a missed
leak that a suspect names is reported as "missed (suspect)"; suspects are
never found and never false.
"""
import json, os, subprocess, sys, time
from collections import defaultdict

SERIES = [(0, 1, 2), (2, 3, 4), (0, 1, 2, 3), (1, 2, 3, 4), (0, 1, 2, 3, 4)]


def last_hop(path):
    if not isinstance(path, str) or not path:
        return None
    return path.split(" -> ")[-1].split(" (")[0].strip()


def names_of(item):
    if isinstance(item, dict):
        return {n for n in (item.get("name"), last_hop(item.get("path"))) if n}
    if isinstance(item, str):
        return {item, last_hop(item)} - {None}
    return set()


def describe(item):
    if isinstance(item, dict):
        return f"{item.get('name')!s}  [{item.get('path')!s}]"
    return str(item)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    tool, snapdir = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    manifest = json.load(open(os.path.join(here, "manifest.json")))
    progs = manifest["programs"]

    runs = []
    for prog in sorted(progs):
        for seed in manifest.get("seeds", [1, 2, 3]):
            if os.path.exists(os.path.join(snapdir, f"{prog}-{seed}.truth.json")):
                runs.append((prog, seed))
            else:
                print(f"warning: no run of {prog} seed {seed} in {snapdir}", file=sys.stderr)

    rows = defaultdict(lambda: dict(runs=0, planted=0, found=0, missed=0, suspect=0, false=0, errors=0, secs=0.0))
    misses = defaultdict(list)      # (prog, leak) -> [(seed, series, as_suspect)]
    tries = defaultdict(int)        # (prog, leak) -> runs
    false_flags = []                # (prog, seed, series, finding)
    errors = []
    for prog, seed in runs:
        leaks = [l["name"] for l in progs[prog]["leaks"]]
        for series in SERIES:
            files = [os.path.join(snapdir, f"{prog}-{seed}-{i}.heapsnapshot") for i in series]
            label = ",".join(map(str, series))
            row = rows[label]
            row["runs"] += 1
            row["planted"] += len(leaks)
            t0 = time.time()
            proc = subprocess.run([tool, "leaks", *files, "--json"], capture_output=True, text=True)
            row["secs"] += time.time() - t0
            try:
                out = json.loads(proc.stdout)
                findings = out.get("findings", []) or []
                suspects = out.get("suspects", []) or []
            except (json.JSONDecodeError, AttributeError):
                row["errors"] += 1
                errors.append((prog, seed, label, proc.returncode, (proc.stderr or proc.stdout)[-300:]))
                findings, suspects = [], []
            found = set()
            for f in findings:
                hit = names_of(f) & set(leaks)
                if hit:
                    found |= hit
                else:
                    row["false"] += 1
                    false_flags.append((prog, seed, label, describe(f)))
            suspected = set()
            for s in suspects:
                suspected |= names_of(s) & set(leaks)
            for leak in leaks:
                tries[(prog, leak)] += 1
                if leak in found:
                    row["found"] += 1
                else:
                    row["missed"] += 1
                    sus = leak in suspected
                    if sus:
                        row["suspect"] += 1
                    misses[(prog, leak)].append((seed, label, sus))

    total_planted = sum(len(p["leaks"]) for p in progs.values())
    print(f"leak_fresh: {len(progs)} programs, {total_planted} planted leaks, "
          f"{len(runs)} (program, seed) runs; detector: {tool}")
    hdr = f"{'series':<12} {'runs':>5} {'planted':>8} {'found':>6} {'missed':>7} {'(suspect)':>10} {'false flags':>12} {'errors':>7} {'tool s':>7}"
    for n in (3, 4, 5):
        labels = [",".join(map(str, s)) for s in SERIES if len(s) == n]
        print(f"\n{n}-snapshot series")
        print(hdr)
        tot = defaultdict(float)
        for label in labels:
            r = rows[label]
            for k, v in r.items():
                tot[k] += v
            print(f"{label:<12} {r['runs']:>5} {r['planted']:>8} {r['found']:>6} {r['missed']:>7} {r['suspect']:>10} {r['false']:>12} {r['errors']:>7} {r['secs']:>7.1f}")
        if len(labels) > 1:
            print(f"{'total':<12} {int(tot['runs']):>5} {int(tot['planted']):>8} {int(tot['found']):>6} {int(tot['missed']):>7} "
                  f"{int(tot['suspect']):>10} {int(tot['false']):>12} {int(tot['errors']):>7} {tot['secs']:>7.1f}")

    print("\nmisses per planted leak (seed:series, * = named by a suspect)")
    any_miss = False
    for prog in sorted(progs):
        for l in progs[prog]["leaks"]:
            key = (prog, l["name"])
            ms = misses.get(key, [])
            if not ms:
                continue
            any_miss = True
            detail = " ".join(f"{s}:{lab}{'*' if sus else ''}" for s, lab, sus in ms)
            print(f"  {prog}.{l['name']} ({l['kind']}): missed {len(ms)}/{tries[key]}  {detail}")
    if not any_miss:
        print("  (none)")

    print("\nfalse flags (program seed series: finding)")
    if not false_flags:
        print("  (none)")
    agg = defaultdict(list)
    for prog, seed, label, desc in false_flags:
        agg[(prog, desc)].append(f"{seed}:{label}")
    for (prog, desc), where in sorted(agg.items()):
        print(f"  {prog}: {desc}  x{len(where)}  ({' '.join(where)})")

    if errors:
        print("\nerrors (no JSON from the detector)")
        for prog, seed, label, rc, tail in errors:
            print(f"  {prog} seed {seed} series {label}: exit {rc}: {tail.strip()}")


main()
