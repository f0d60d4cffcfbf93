#!/usr/bin/env python3
"""Summarise a tools/bench/http_vs_peers.sh results folder as markdown (stdout).

usage: http_table.py RESULTS_DIR

Reads what http_vs_peers.sh writes there:
  env.txt        key=value machine facts and settings
  results.tsv    one row per wrk -t1 run (suite server mode pin conns rep rps p50_ms p99_ms
                 errors srv_cpu% wrk_cpu% rps_per_cpu_s other_cpu% rss_kb alive non2xx)
  c10k.txt       the peers' c10k.py output ('C10K key=value ...' lines)
  gc/            trace.txt (tenure --trace-gc lines), heap_after.json (/debug/heap),
                 wrk.txt (wrk + the USERS line of http_users.lua), rss.tsv, cpu.txt
  problems.txt   checks the shell script found failed
Medians are over the repeats (interleaved: repeat 1 of every server, then repeat 2 ...),
with the spread as min-max.  Ratios are tenure / peer of the medians, and in brackets the
min-max of the per-repeat ratios (tenure's run i against the peer's run i of the same block).
"""
import csv
import json
import os
import re
import statistics
import sys

SERVER_TEXT = {
    "tenure": "tenure-server",
    "nginx": "nginx 1 worker",
    "node-hello": "node hello.js hello",
    "node-buffer": "node hello.js buffer",
    "node-string": "node hello.js string",
}
MODE_TEXT = {
    ("tenure", "hello"): "GET /hello",
    ("nginx", "hello"): "/hello `return 200`",
    ("node-hello", "hello"): "12 B string",
    ("tenure", "buffer10k"): "GET /buffer10k",
    ("tenure", "string10k"): "GET /string10k",
    ("nginx", "mem10k"): "/r10k (memory)",
    ("node-buffer", "buffer10k"): "10 KB Buffer",
    ("node-string", "string10k"): "10 KB string",
}

out = []
p = out.append


def med(xs):
    return statistics.median(xs) if xs else None


def fnum(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"


def spread(xs, nd=0):
    if not xs:
        return "–"
    m = med(xs)
    if len(xs) == 1:
        return fnum(m, nd)
    return f"{fnum(m, nd)} ({fnum(min(xs), nd)}–{fnum(max(xs), nd)})"


def pctl(xs, q):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


def read_env(d):
    env = {}
    path = os.path.join(d, "env.txt")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    env = read_env(d)
    problems = []
    pp = os.path.join(d, "problems.txt")
    if os.path.exists(pp):
        problems += [x.strip() for x in open(pp, encoding="utf-8") if x.strip()]
    targets = []

    p(f"# tenure-server vs its HTTP peers (nginx, node) — {env.get('mode', '?')}")
    p("")
    if env.get("mode", "").startswith("quick"):
        p("**Smoke run (short runs, one repeat): the numbers check that the script works, they are not measurements.**")
        p("")
    p(f"- date: {env.get('date', '?')} (took {env.get('elapsed', '?')})")
    p(f"- command: `{env.get('command', '?')}`")
    p(f"- machine: {env.get('cores', '?')} cores, {env.get('cpu', '?')}, {env.get('mem', '?')}, {env.get('kernel', '?')}")
    p(f"- load average: {env.get('load_start', '?')} at start, {env.get('load_go', '?')} when measuring began, "
      f"{env.get('load_end', '?')} at the end")
    p(f"- versions: nginx {env.get('nginx', '?')}, node {env.get('node', '?')}, wrk {env.get('wrk', '?')}; "
      f"tenure {env.get('tenure', '?')}")
    p(f"- tenure-server arguments: `{env.get('tenure_args', '').strip()}`"
      + (f"; TENURE_OPTIONS=`{env['tenure_options']}`" if env.get("tenure_options") else ""))
    p(f"- settings: {env.get('settings', '?')}; ulimit -n {env.get('ulimit_n', '?')}")
    if env.get("ulimit_note"):
        p(f"- **{env['ulimit_note']}**")
    p(f"- peers: {env.get('peers', '?')}; raw results: {env.get('results', d)}")
    p("- client: `wrk -t1 -c<conns> -d<DUR> --latency` after a warm-up of each case; srv% / wrk% = CPU time of the "
      "server (nginx: master + worker) / of wrk as % of one core over the run (200% = both cores); "
      "req/CPU-s = req/s ÷ (srv%/100), requests per second of server CPU; other% = CPU of processes not started "
      "by the script during the run (largest over the repeats; above a few % the row is suspect). "
      "Pin modes as the peers': shared = nobody pinned, pinned = servers on CPU 0 and wrk on CPU 1, "
      "samecpu = both on CPU 0.")
    p("")

    # ------------------------------------------------------------ wrk rows
    rows = []
    rp = os.path.join(d, "results.tsv")
    if os.path.exists(rp):
        with open(rp, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    groups = {}
    order = []
    for r in rows:
        k = (r["suite"], r["pin"], int(r["conns"]), r["server"], r["mode"])
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append(r)

    def vals(k, col):
        return [float(r[col]) for r in groups.get(k, [])]

    def by_rep(k, col):
        return {r["rep"]: float(r[col]) for r in groups.get(k, [])}

    pins = []
    for k in order:
        if k[1] not in pins:
            pins.append(k[1])
    for suite, title in (("hello", "/hello (12 bytes)"), ("10k", "10 KB bodies")):
        ks = [k for k in order if k[0] == suite]
        if not ks:
            continue
        p(f"## Throughput: {title}")
        p("")
        p("| pin | conns | server | route | req/s median (min–max) | p50 ms | p99 ms | srv% | wrk% | req/CPU-s median (min–max) | errors | other% | RSS MB |")
        p("|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        ks.sort(key=lambda k: (pins.index(k[1]), k[2], order.index(k)))
        for k in ks:
            g = groups[k]
            err = sum(int(r["errors"]) for r in g)
            oth = max(float(r["other_cpu%"]) for r in g)
            dead = sum(1 for r in g if r["alive"] != "1")
            # shared mode: server and wrk packed onto one vCPU (srv% + wrk% near 100, not ~170)
            packed = sum(1 for r in g if k[1] == "shared" and float(r["srv_cpu%"]) + float(r["wrk_cpu%"]) < 125)
            mark = f" †{packed}" if packed else ""
            p(f"| {k[1]} | {k[2]} | {SERVER_TEXT.get(k[3], k[3])}{mark} | {MODE_TEXT.get((k[3], k[4]), k[4])} "
              f"| {spread(vals(k, 'rps'))} | {fnum(med(vals(k, 'p50_ms')), 2)} | {fnum(med(vals(k, 'p99_ms')), 2)} "
              f"| {fnum(med(vals(k, 'srv_cpu%')))} | {fnum(med(vals(k, 'wrk_cpu%')))} | {spread(vals(k, 'rps_per_cpu_s'))} "
              f"| {err}{' **DIED**' if dead else ''} | {oth:.0f} | {fnum(med(vals(k, 'rss_kb')) / 1024 if vals(k, 'rss_kb') else None, 1)} |")
        p("")

    # ratios
    COMPARE = [
        ("hello", ("tenure", "hello"), ("nginx", "hello"), None),
        ("hello", ("tenure", "hello"), ("node-hello", "hello"), None),
        ("10k", ("tenure", "buffer10k"), ("nginx", "mem10k"), None),
        ("10k", ("tenure", "buffer10k"), ("node-buffer", "buffer10k"), None),
        ("10k", ("tenure", "string10k"), ("node-buffer", "buffer10k"), 1.5),
        ("10k", ("tenure", "string10k"), ("node-string", "string10k"), None),
    ]
    ratio_lines = []
    for suite, (ts, tm), (ps, pm), target in COMPARE:
        for pin in pins:
            conns = sorted({k[2] for k in order if k[0] == suite and k[1] == pin})
            for c in conns:
                kt, kp = (suite, pin, c, ts, tm), (suite, pin, c, ps, pm)
                if kt not in groups or kp not in groups:
                    continue
                cells = []
                for col in ("rps", "rps_per_cpu_s", "p99_ms"):
                    mt, mp = med(vals(kt, col)), med(vals(kp, col))
                    r = mt / mp if mp else None
                    bt, bp = by_rep(kt, col), by_rep(kp, col)
                    per = [bt[i] / bp[i] for i in bt if i in bp and bp[i]]
                    cell = "–" if r is None else f"{r:.2f}x"
                    if len(per) > 1:
                        cell += f" ({min(per):.2f}–{max(per):.2f})"
                    cells.append(cell)
                    if col == "rps" and target is not None and r is not None:
                        targets.append((f"{MODE_TEXT[(ts, tm)]} ≥ {target}x {SERVER_TEXT[ps]} req/s ({pin}, c{c})",
                                        f"{r:.2f}x ({mt:,.0f} vs {mp:,.0f} req/s)", r >= target))
                ratio_lines.append(f"| {pin} | {c} | {MODE_TEXT[(ts, tm)]} | {SERVER_TEXT[ps]} {MODE_TEXT.get((ps, pm), pm)} "
                                   f"| {cells[0]} | {cells[1]} | {cells[2]} |")
    if ratio_lines:
        p("## Ratios (tenure-server / peer, same run)")
        p("")
        p("| pin | conns | tenure-server | vs | req/s | req per server CPU-s | p99 latency |")
        p("|---|--:|---|---|--:|--:|--:|")
        out.extend(ratio_lines)
        p("")
        p("Above 1x is better for tenure in req/s and req/CPU-s, below 1x is better in p99. wrk -t1 is one "
          "thread: against nginx it is the bottleneck (wrk% near 100), so the nginx req/s are client-bound and "
          "req/CPU-s is the fairer comparison there.")
        p("")

    # ------------------------------------------------------------ C10K
    cp = os.path.join(d, "c10k.txt")
    c10k = []
    if os.path.exists(cp):
        for line in open(cp, encoding="utf-8"):
            if line.startswith("C10K "):
                c10k.append(dict(x.split("=", 1) for x in line.split()[1:]))
    if c10k:
        p("## C10K (the peers' c10k.py: idle keep-alive connections, then one GET on each)")
        p("")
        p("| server | connected | answered 200 | server fds idle | RSS MB base | idle | after one request | after close "
          "| B per idle connection | B per connection after a request | all ok |")
        p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|")
        for kv in c10k:
            mb = lambda k: f"{int(kv[k]) / 1024:.1f}"
            p(f"| {kv['label']} | {kv['connected']} | {kv['answered_200']} | {kv['idle_fds']} | {mb('base_rss_kb')} "
              f"| {mb('idle_rss_kb')} | {mb('served_rss_kb')} | {mb('closed_rss_kb')} | {kv['idle_bytes_per_conn']} "
              f"| {kv['served_bytes_per_conn']} | {'yes' if kv['all_ok'] == '1' else '**no**'} |")
        p("")
        p("RSS is VmRSS of the server process (nginx: its worker; its connection slots, worker_connections "
          "up to 16384, are preallocated and in the base). c10k.py opens the connections with at most 256 "
          "connects in flight, holds them C10K_HOLD s, then sends one request on every connection at once.")
        p("")
        t = next((kv for kv in c10k if kv["label"].startswith("tenure")), None)
        if t:
            targets.append(("C10K: all connections held and answered 200",
                            f"{t['connected']} connected, {t['answered_200']} answered 200", t["all_ok"] == "1"))
            for kv in c10k:
                if kv is not t and int(kv["idle_bytes_per_conn"]) > 0:
                    p(f"- tenure-server's idle bytes per connection / {kv['label']}'s: "
                      f"{int(t['idle_bytes_per_conn']) / int(kv['idle_bytes_per_conn']):.2f}x")
            p("")

    # ------------------------------------------------------------ GC profile
    gd = os.path.join(d, "gc")
    tp = os.path.join(gd, "trace.txt")
    if os.path.exists(tp):
        kinds = {}
        rx = re.compile(r"\]\s+([\d.]+) ms: (\S+) ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB, ([\d.]+) /")
        used_after = []
        for line in open(tp, encoding="utf-8", errors="replace"):
            m = rx.search(line)
            if not m:
                continue
            kinds.setdefault(m.group(2), []).append(float(m.group(7)))
            used_after.append(float(m.group(5)))
        wrk = open(os.path.join(gd, "wrk.txt"), encoding="utf-8", errors="replace").read() \
            if os.path.exists(os.path.join(gd, "wrk.txt")) else ""
        rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
        users = re.search(r"^USERS (.*)$", wrk, re.M)
        uv = dict(x.split("=", 1) for x in users.group(1).split()) if users else {}
        lat = {q: re.search(rf"^\s+{q}%\s+(\S+)", wrk, re.M) for q in (50, 99)}
        cpu = {}
        if os.path.exists(os.path.join(gd, "cpu.txt")):
            for line in open(os.path.join(gd, "cpu.txt")):
                for kv in line.split():
                    k, _, v = kv.partition("=")
                    cpu[k] = v
        heap = None
        try:
            heap = json.load(open(os.path.join(gd, "heap_after.json")))
        except (OSError, ValueError):
            problems.append("gc/heap_after.json missing or not JSON")
        rss = []
        if os.path.exists(os.path.join(gd, "rss.tsv")):
            for line in open(os.path.join(gd, "rss.tsv")):
                f = line.split()
                if len(f) == 2 and f[1].isdigit() and int(f[1]) > 0:
                    rss.append(int(f[1]) / 1024)
        settings = env.get("settings", "")
        gdur = re.search(r"GC_DUR=(\S+)", settings)
        gconns = re.search(r"GC_CONNS=(\S+)", settings)
        p(f"## GC profile: PUT/GET /users under load ({gdur.group(1) if gdur else '?'}, wrk -t1 -c{gconns.group(1) if gconns else '?'}, "
          f"http_users.lua, {uv.get('users', '?')} names)")
        p("")
        p(f"Load: {fnum(float(rps.group(1))) if rps else '?'} req/s ({uv.get('put', '?')} PUTs, {uv.get('get', '?')} GETs, "
          f"{uv.get('miss', '?')} GETs answered 404 before their name was PUT, {uv.get('bad', '?')} other statuses); "
          f"latency p50 {lat[50].group(1) if lat[50] else '?'}, p99 {lat[99].group(1) if lat[99] else '?'}; "
          f"server CPU {cpu.get('srv_cpu_pct', '?')}% of a core. "
          + (f"Server RSS (sampled each second): first {rss[0]:.1f} MB, max {max(rss):.1f} MB, last {rss[-1]:.1f} MB. " if rss else "")
          + (f"Heap used after each GC: min {min(used_after):.1f}, max {max(used_after):.1f}, last {used_after[-1]:.1f} MB." if used_after else ""))
        p("")
        p("| source | kind | count | p50 ms | p99 ms | max ms | total ms |")
        p("|---|---|--:|--:|--:|--:|--:|")
        for kind in sorted(kinds, key=lambda k: (k != "Scavenge", k)):
            xs = kinds[kind]
            p(f"| --trace-gc lines | {kind} | {len(xs)} | {pctl(xs, 50):.3f} | {pctl(xs, 99):.3f} | {max(xs):.3f} | {sum(xs):.1f} |")
        if not kinds:
            p("| --trace-gc lines | – | 0 | | | | |")
        g = (heap or {}).get("heap", {}).get("gc")
        if g:
            for kind in ("scavenge", "full"):
                s = g[kind]
                p(f"| /debug/heap at the end | {kind} | {s['count']} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} "
                  f"| {s['max_ms']:.3f} | {s['total_ms']:.1f} |")
            p("")
            p(f"/debug/heap at the end: gc.scavenges {g.get('scavenges')}, full_gcs {g.get('full_gcs')}, bytes promoted "
              f"{g.get('bytes_promoted', 0) / 1048576:.1f} MB, semi_space_size {g.get('semi_space_size', 0) / 1048576:.1f} MB, "
              f"used heap {heap['heap'].get('used_heap_size', 0) / 1048576:.1f} MB, "
              f"rss {heap.get('memoryUsage', {}).get('rss', 0) / 1048576:.1f} MB; server: {json.dumps(heap.get('server', {}))}. "
              "(The trace counts every GC of the server's life, the run's warm-up-free start included; "
              "/debug/heap's percentiles are tenure's own.)")
        p("")
        sc = kinds.get("Scavenge", [])
        full = sum(len(v) for k, v in kinds.items() if k != "Scavenge")
        if sc:
            targets.append(("GC profile: scavenge p99 < 1 ms", f"{pctl(sc, 99):.3f} ms (max {max(sc):.3f} ms, {len(sc)} scavenges)",
                            pctl(sc, 99) < 1.0))
        targets.append((f"GC profile: no full GC in {gdur.group(1) if gdur else 'the run'}", f"{full} full GCs", full == 0))

    # ------------------------------------------------------------ targets, problems
    if targets:
        p("## Targets (issue 9), this run")
        p("")
        p("| target | measured | met |")
        p("|---|---|:-:|")
        for t, m, ok in targets:
            p(f"| {t} | {m} | {'yes' if ok else '**no**'} |")
        p("")
    if problems:
        p("## Problems")
        p("")
        for x in problems:
            p(f"- {x}")
        p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
