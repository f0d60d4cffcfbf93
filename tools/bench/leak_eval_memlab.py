#!/usr/bin/env python3
"""Scores memlab's `analyze unbound-collection` on the blind corpus, the
same way leak_eval_score.py scores tenure-heap, for a side-by-side table.

Usage: leak_eval_memlab.py MEMLAB TENURE_HEAP SNAPDIR [--manifest FILE]
                           [--seeds 1,2,3] [--snaps 5] [--verbose]

memlab reads a directory of s1..sN.heapsnapshot; each series is linked
into a temporary one.  memlab names a finding only by its node id
(`Map [object](@123)`), so the id is named with `tenure-heap path` on the
last snapshot: the last hop of the shortest retainer path, which is what
the manifest names.  Only 5-snapshot series by default (memlab takes about
8 s for each).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

FIND = re.compile(r'^\s*\S+\s+(.*?)\s*\(@(\d+)\):\s*(.*)$')


def last_hop(path):
    return path.split(' -> ')[-1].split(' (')[0]


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    memlab, tool, snapdir = args[0], args[1], args[2]
    here = os.path.dirname(os.path.abspath(__file__))
    manifest = os.path.join(here, 'leak_eval', 'manifest.json')
    seeds, nsnaps, verbose = [1, 2, 3], 5, False
    i = 3
    while i < len(args):
        if args[i] == '--manifest':
            manifest = args[i + 1]; i += 2
        elif args[i] == '--seeds':
            seeds = [int(x) for x in args[i + 1].split(',')]; i += 2
        elif args[i] == '--snaps':
            nsnaps = int(args[i + 1]); i += 2
        elif args[i] == '--verbose':
            verbose = True; i += 1
        else:
            print('unknown argument ' + args[i], file=sys.stderr)
            return 2
    with open(manifest) as fh:
        man = json.load(fh)
    series = leaks = found = false = 0
    for p in man:
        prog = p['prog']
        for seed in seeds:
            files = [os.path.join(snapdir, '%s-%d-%d.heapsnapshot' % (prog, seed, k))
                     for k in range(nsnaps)]
            if not all(os.path.exists(f) for f in files):
                continue
            with tempfile.TemporaryDirectory() as d:
                for k, f in enumerate(files):
                    os.symlink(os.path.abspath(f), os.path.join(d, 's%d.heapsnapshot' % (k + 1)))
                r = subprocess.run([memlab, 'analyze', 'unbound-collection',
                                    '--snapshot-dir', d], capture_output=True, text=True)
            names = []
            for line in (r.stdout + r.stderr).splitlines():
                m = FIND.match(line.replace('\x1b[K', ''))
                if not m:
                    continue
                nid = m.group(2)
                q = subprocess.run([tool, 'path', files[-1], nid, '--json', '--max', '1'],
                                   capture_output=True, text=True)
                try:
                    paths = json.loads(q.stdout).get('paths', [])
                except ValueError:
                    paths = []
                names.append((last_hop(paths[0]) if paths else '@' + nid, m.group(1), m.group(3)))
            series += 1
            missed = []
            for leak in p['leaks']:
                leaks += 1
                if any(n == leak['name'] for n, _, _ in names):
                    found += 1
                else:
                    missed.append(leak['name'])
            fl = [n for n in names if not any(n[0] == l['name'] for l in p['leaks'])]
            false += len(fl)
            if verbose or missed or fl:
                print('%-18s seed %d: missed %s; false %s' % (
                    prog, seed, missed or '-',
                    ['%s (%s) %s' % x for x in fl] or '-'))
    print()
    print('| snapshots | series | planted leaks | memlab found | missed | false flags |')
    print('|---:|---:|---:|---:|---:|---:|')
    print('| %d | %d | %d | %d | %d | %d |' % (nsnaps, series, leaks, found, leaks - found, false))
    return 0


if __name__ == '__main__':
    sys.exit(main())
