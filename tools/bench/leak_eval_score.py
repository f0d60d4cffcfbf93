#!/usr/bin/env python3
"""Scores `tenure-heap leaks` on the blind corpus in tools/bench/leak_eval.

Usage: leak_eval_score.py TENURE_HEAP SNAPDIR [--manifest FILE]
                          [--seeds 1,2,3] [--progs a,b] [--verbose]

SNAPDIR holds <prog>-<seed>-<i>.heapsnapshot, i = 0..4 (gen_all.sh).  Every
(prog, seed) gives five series: snapshots 0-2 and 2-4 (3 snapshots), 0-3
and 1-4 (4), and 0-4 (5).  A planted leak is found when a finding's name
(the last edge of its path) or the last hop of its path is the leak's name;
every other finding is a false flag.  Suspects are counted apart: they do
not count for the exit status.
"""
import json
import os
import subprocess
import sys

SERIES = [(3, [0, 1, 2]), (3, [2, 3, 4]), (4, [0, 1, 2, 3]),
          (4, [1, 2, 3, 4]), (5, [0, 1, 2, 3, 4])]


def last_hop(path):
    hop = path.split(' -> ')[-1]
    return hop.split(' (')[0]


def matches(f, leak):
    name = leak['name']
    return f.get('name') == name or last_hop(f.get('path', '')) == name


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    tool, snapdir = args[0], args[1]
    here = os.path.dirname(os.path.abspath(__file__))
    manifest = os.path.join(here, 'leak_eval', 'manifest.json')
    seeds, progs, verbose = [1, 2, 3], None, False
    i = 2
    while i < len(args):
        if args[i] == '--manifest':
            manifest = args[i + 1]; i += 2
        elif args[i] == '--seeds':
            seeds = [int(x) for x in args[i + 1].split(',')]; i += 2
        elif args[i] == '--progs':
            progs = args[i + 1].split(','); i += 2
        elif args[i] == '--verbose':
            verbose = True; i += 1
        else:
            print('unknown argument ' + args[i], file=sys.stderr)
            return 2
    with open(manifest) as fh:
        man = json.load(fh)
    if isinstance(man, dict):
        man = man.get('programs', list(man.values()))
    tot = {}  # n -> [series, leaks, found, false flags, suspects, missed-as-suspect]
    rows = []
    for p in man:
        prog = p['prog']
        if progs and prog not in progs:
            continue
        for seed in seeds:
            files = [os.path.join(snapdir, '%s-%d-%d.heapsnapshot' % (prog, seed, k))
                     for k in range(5)]
            if not all(os.path.exists(f) for f in files):
                print('missing snapshots for %s seed %d' % (prog, seed), file=sys.stderr)
                continue
            for n, idx in SERIES:
                cmd = [tool, 'leaks', '--json'] + [files[k] for k in idx]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode not in (0, 1):
                    print('error %d on %s: %s' % (r.returncode, ' '.join(cmd), r.stderr),
                          file=sys.stderr)
                    continue
                out = json.loads(r.stdout)
                finds, sus = out.get('findings', []), out.get('suspects', [])
                t = tot.setdefault(n, [0, 0, 0, 0, 0, 0])
                t[0] += 1
                t[4] += len(sus)
                missed, false = [], []
                for leak in p['leaks']:
                    t[1] += 1
                    if any(matches(f, leak) for f in finds):
                        t[2] += 1
                    else:
                        missed.append(leak['name'])
                        if any(matches(f, leak) for f in sus):
                            t[5] += 1
                for f in finds:
                    if not any(matches(f, leak) for leak in p['leaks']):
                        t[3] += 1
                        false.append('%s (%s, %s) entries %s' % (
                            f.get('name'), f['container'].get('name'), f.get('kind'),
                            f.get('entries')))
                if verbose or missed or false:
                    rows.append('%-18s seed %d snaps %s: missed %s; false %s' % (
                        prog, seed, ''.join(str(k) for k in idx),
                        missed or '-', false or '-'))
    for r in rows:
        print(r)
    print()
    print('| snapshots | series | planted leaks | found | missed (of which suspects) | false flags | suspects listed |')
    print('|---:|---:|---:|---:|---:|---:|---:|')
    for n in sorted(tot):
        s, l, f, ff, su, ms = tot[n]
        print('| %d | %d | %d | %d | %d (%d) | %d | %d |' % (n, s, l, f, l - f, ms, ff, su))
    return 0


if __name__ == '__main__':
    sys.exit(main())
