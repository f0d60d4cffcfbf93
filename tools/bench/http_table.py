#!/usr/bin/env python3
"""Summarise a tools/bench/http_vs_peers.sh results folder as markdown (stdout).

usage: http_table.py RESULTS_DIR

Reads what http_vs_peers.sh writes there:
  env.txt        key=value machine facts and settings
  results.tsv    one row per wrk -t1 run (suite server mode pin conns rep rps p50_ms p99_ms
                 errors srv_cpu% wrk_cpu% rps_per_cpu_s other_cpu% rss_kb alive non2xx)
                 then store_cpu% flow_login flow_me flow_logout flow_401 flow_other flows_per_s
                 flow_ok store_p50_ms store_p99_ms store_hits store_misses store_sets
                 store_deletes store_errors ("-" where they do not apply: session, cached)
  c10k.txt       the peers' c10k.py output ('C10K key=value ...' lines)
  gc/            trace.txt (tenure --trace-gc lines), heap_after.json (/debug/heap),
                 wrk.txt (wrk + the USERS line of http_users.lua), rss.tsv, cpu.txt
  problems.txt   checks the shell script found failed
  notes.txt      rows skipped and why (e.g. a tenure-server without memcached://)
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
    "express-session": "express-session",
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

    p(f"# tenure-server vs its HTTP peers (nginx, node, express-session) — {env.get('mode', '?')}")
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
    if env.get("session_settings"):
        p(f"- sessions, /cached: {env['session_settings']}; {env.get('stores', '')}")
    if env.get("express"):
        p(f"- express-session peer (session_express/server.js): {env['express']}; {env.get('flow_lua', '')}")
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
    # session, cached: their own sections below
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

    # ------------------------------------------------------------ sessions, /cached (issue 10)
    def num(r, col):
        try:
            return float(r[col])
        except (KeyError, TypeError, ValueError):
            return None

    def ms3(x):   # the store histogram's 0 µs bucket: under a microsecond
        return "<0.001" if x == 0 else f"{x:.3f}"

    def nvals(k, col):
        return [v for v in (num(r, col) for r in groups.get(k, [])) if v is not None]

    def us_per_req(k, col):
        """µs of CPU (srv% or store%) per request, per run: cpu% × 10^4 / req/s."""
        xs = []
        for r in groups.get(k, []):
            c, rps = num(r, col), num(r, "rps")
            if c is not None and rps:
                xs.append(c * 1e4 / rps)
        return xs

    def ratio_cell(kt, kp, col):
        mt, mp = med(nvals(kt, col)), med(nvals(kp, col))
        r = mt / mp if mt is not None and mp else None
        bt = {x["rep"]: num(x, col) for x in groups.get(kt, [])}
        bp = {x["rep"]: num(x, col) for x in groups.get(kp, [])}
        per = [bt[i] / bp[i] for i in bt if i in bp and bt[i] is not None and bp[i]]
        cell = "–" if r is None else f"{r:.2f}x"
        if len(per) > 1:
            cell += f" ({min(per):.2f}–{max(per):.2f})"
        return r, cell

    def bound(srv, store, wrk, other=None, pin=None):
        """What limited a run, from its CPU: one core is 100%, the machine 200%."""
        if srv is None or wrk is None:
            return "?"
        noisy = f" — others used {other:.0f}% of a core meanwhile: a noisy run" if other is not None and other > 10 else ""
        full = []
        if srv >= 90:
            full.append(f"the server's core (srv {srv:.0f}%)")
        if wrk >= 90:
            full.append(f"wrk's core (wrk {wrk:.0f}%)")
        if full:
            return " and ".join(full) + noisy
        tot = srv + wrk + (store or 0)
        if tot >= 180:
            return f"the two cores, shared (server + store + wrk = {tot:.0f}%)" + noisy
        if pin == "shared" and tot < 125:
            return (f"no core full, but server + store + wrk = {tot:.0f}%: probably packed onto one vCPU "
                    "(the peers' README: shared mode is bimodal)" + noisy)
        return f"no core full (server + store + wrk = {tot:.0f}% of 200%): waiting (round trips, wake-ups)" + noisy

    STORE_ORDER = {"memory": 0, "redis": 1, "near": 2, "memcached": 3}
    notes = []
    npath = os.path.join(d, "notes.txt")
    if os.path.exists(npath):
        notes = [x.strip() for x in open(npath, encoding="utf-8") if x.strip()]

    sk = [k for k in order if k[0] == "session"]
    if sk:
        sk.sort(key=lambda k: (pins.index(k[1]), k[2], STORE_ORDER.get(k[4], 9), k[3] != "tenure"))
        p("## Sessions: login → 10 × GET /me → logout (the peers' session_express/flow.lua, wrk -t1)")
        p("")
        if "flow_rolling" in env.get("flow_lua", ""):
            p("**FLOW_ROLLING=1: wrk ran flow.lua (unchanged) through tools/bench/flow_rolling.lua, which hides from it "
              "a Set-Cookie repeating the cookie the user already holds (tenure-server's rolling sessions renew it on "
              "every GET /me; flow.lua alone counts such an answer as a login). Both servers ran through it.**")
            p("")
        p("tenure-server `--store memory:// | redis:// | memcached://` against the peers' express-session "
          "(node session_express/server.js, same store), on one redis-server / memcached started by the "
          "script (empty before every run). store% = CPU of redis-server / memcached during the run; "
          "µs CPU/req = CPU% × 10⁴ ÷ req/s (server, and store); store op p50/p99 = tenure's own "
          "call-to-answer latency of its store operations, /debug/store right after the run (the last "
          "~65k–131k operations); FLOW = flow.lua's ok_login / ok_me / ok_logout (median over the repeats); "
          "'adds up' = no answer counted twice, every logout after 10 good /me, at most ~2 users per "
          "connection unfinished.")
        p("")
        p("| pin | conns | store | server | req/s median (min–max) | flows/s | p50 ms | p99 ms | srv% | store% | wrk% "
          "| server µs CPU/req | store µs CPU/req | store op p50 / p99 ms | FLOW login / me / logout | 401 / other "
          "| adds up | errors | other% |")
        p("|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|--:|")
        for k in sk:
            g = groups[k]
            err = sum(int(r["errors"]) for r in g)
            dead = sum(1 for r in g if r["alive"] != "1")
            oth = max(float(r["other_cpu%"]) for r in g)
            n401 = sum(int(num(r, "flow_401") or 0) for r in g)
            nother = sum(int(num(r, "flow_other") or 0) for r in g)
            okn = sum(1 for r in g if r.get("flow_ok") == "1")
            adds = "yes" if okn == len(g) else f"**no** ({len(g) - okn} of {len(g)})"
            flow = " / ".join(fnum(med(nvals(k, c))) for c in ("flow_login", "flow_me", "flow_logout"))
            sp50, sp99 = med(nvals(k, "store_p50_ms")), med(nvals(k, "store_p99_ms"))
            sop = "–" if sp50 is None else f"{ms3(sp50)} / {ms3(sp99)}"
            p(f"| {k[1]} | {k[2]} | {k[4]} | {SERVER_TEXT.get(k[3], k[3])} | {spread(vals(k, 'rps'))} "
              f"| {fnum(med(nvals(k, 'flows_per_s')))} | {fnum(med(vals(k, 'p50_ms')), 2)} | {fnum(med(vals(k, 'p99_ms')), 2)} "
              f"| {fnum(med(vals(k, 'srv_cpu%')))} | {fnum(med(nvals(k, 'store_cpu%')))} | {fnum(med(vals(k, 'wrk_cpu%')))} "
              f"| {fnum(med(us_per_req(k, 'srv_cpu%')), 1)} | {fnum(med(us_per_req(k, 'store_cpu%')), 1)} | {sop} "
              f"| {flow} | {n401} / {nother} | {adds} | {err}{' **DIED**' if dead else ''} | {oth:.0f} |")
        p("")
        # ratios against the targets: >= 10x req/s, p99 <= 1/10
        lines = []
        tsum = {}   # (store, metric) -> [(where, cell, met)]
        for pin in pins:
            for c in sorted({k[2] for k in sk if k[1] == pin}):
                for st in sorted({k[4] for k in sk if k[1] == pin and k[2] == c}, key=lambda x: STORE_ORDER.get(x, 9)):
                    kt, kp = ("session", pin, c, "tenure", st), ("session", pin, c, "express-session", st)
                    if kt not in groups or kp not in groups:
                        continue
                    valid = all(r.get("flow_ok") == "1" for r in groups[kt])
                    rr, rcell = ratio_cell(kt, kp, "rps")
                    pr, pcell = ratio_cell(kt, kp, "p99_ms")
                    met_r = None if not valid or rr is None else rr >= 10
                    met_p = None if not valid or pr is None else pr <= 0.1
                    yn = lambda m: "– (flow does not add up)" if m is None else ("yes" if m else "**no**")
                    lines.append(f"| {pin} | {c} | {st} | {rcell} | {yn(met_r)} | {pcell} | {yn(met_p)} |")
                    tsum.setdefault((st, "rps"), []).append((f"{pin} c{c}", rcell.split(" ")[0], met_r))
                    tsum.setdefault((st, "p99"), []).append((f"{pin} c{c}", pcell.split(" ")[0], met_p))
        if lines:
            p("### Sessions: tenure-server / express-session, same run")
            p("")
            p("| pin | conns | store | req/s ratio | ≥ 10x | p99 ratio | ≤ 0.10x |")
            p("|---|--:|---|--:|:-:|--:|:-:|")
            out.extend(lines)
            p("")
            p("Ratios of the medians; in brackets the min–max of the per-repeat ratios. A tenure row whose "
              "FLOW counts do not add up was not the flow: its ratios are shown but not held against the target.")
            p("")
        for st in sorted({x[0] for x in tsum}, key=lambda x: STORE_ORDER.get(x, 9)):
            for metric, text in (("rps", f"session flow, {st}: ≥ 10x express-session's req/s"),
                                 ("p99", f"session flow, {st}: p99 ≤ 1/10 of express-session's")):
                xs = tsum.get((st, metric), [])
                if not xs:
                    continue
                ok = None if any(m is None for _, _, m in xs) else all(m for _, _, m in xs)
                targets.append((text, ", ".join(f"{w} {cell}" for w, cell, _ in xs), ok))
        for st in ("memory", "redis", "memcached"):
            if not any(k[4] == st and k[3] == "tenure" for k in sk) and any(k[4] == st for k in sk):
                targets.append((f"session flow, {st}: tenure-server rows", "none (skipped: see the notes)", None))

    ck = [k for k in order if k[0] == "cached"]
    if ck:
        ck.sort(key=lambda k: (pins.index(k[1]), k[2], STORE_ORDER.get(k[4].split("@")[-1], 9), not k[4].startswith("hello")))
        p("## /cached/:key hit path against /hello (same tenure-server, same run)")
        p("")
        p("GET /cached/<key> on one hot key (X-Cache: hit checked with curl before each run; the value is "
          "computed once in 20 ms and kept 60 s) and GET /hello on the same server, side by side at each conns. "
          "store hits / misses = /debug/store's counters over the run (a miss is a recomputation).")
        p("")
        p("| pin | conns | store | route | req/s median (min–max) | p50 ms | p99 ms | srv% | store% | wrk% "
          "| server µs CPU/req | store µs CPU/req | store hits / misses | store op p50 / p99 ms | errors | other% |")
        p("|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for k in ck:
            g = groups[k]
            route, st = k[4].split("@", 1) if "@" in k[4] else (k[4], "?")
            err = sum(int(r["errors"]) for r in g)
            dead = sum(1 for r in g if r["alive"] != "1")
            oth = max(float(r["other_cpu%"]) for r in g)
            hits, miss = nvals(k, "store_hits"), nvals(k, "store_misses")
            hm = "–" if not hits else f"{fnum(sum(hits))} / {fnum(sum(miss))}"
            sp50, sp99 = med(nvals(k, "store_p50_ms")), med(nvals(k, "store_p99_ms"))
            sop = "–" if sp50 is None else f"{ms3(sp50)} / {ms3(sp99)}"
            p(f"| {k[1]} | {k[2]} | {st} | {'GET /hello' if route == 'hello' else 'GET /cached/:key (hit)'} "
              f"| {spread(vals(k, 'rps'))} | {fnum(med(vals(k, 'p50_ms')), 2)} | {fnum(med(vals(k, 'p99_ms')), 2)} "
              f"| {fnum(med(vals(k, 'srv_cpu%')))} | {fnum(med(nvals(k, 'store_cpu%')))} | {fnum(med(vals(k, 'wrk_cpu%')))} "
              f"| {fnum(med(us_per_req(k, 'srv_cpu%')), 1)} | {fnum(med(us_per_req(k, 'store_cpu%')), 1)} | {hm} | {sop} "
              f"| {err}{' **DIED**' if dead else ''} | {oth:.0f} |")
        p("")
        lines, tsum = [], {}
        for pin in pins:
            for c in sorted({k[2] for k in ck if k[1] == pin}):
                for st in sorted({k[4].split("@")[-1] for k in ck if k[1] == pin and k[2] == c},
                                 key=lambda x: STORE_ORDER.get(x, 9)):
                    kc, kh = ("cached", pin, c, "tenure", f"cached@{st}"), ("cached", pin, c, "tenure", f"hello@{st}")
                    if kc not in groups or kh not in groups:
                        continue
                    rr, rcell = ratio_cell(kc, kh, "rps")
                    _, pcell = ratio_cell(kc, kh, "p99_ms")
                    uc, uh = med(us_per_req(kc, "srv_cpu%")), med(us_per_req(kh, "srv_cpu%"))
                    extra = "–" if uc is None or uh is None else f"{uc - uh:+.1f}"
                    met = None if rr is None else rr >= 0.8
                    lines.append(f"| {pin} | {c} | {st} | {rcell} | {'–' if met is None else ('yes' if met else '**no**')} "
                                 f"| {pcell} | {extra} |")
                    tsum.setdefault(st, []).append((f"{pin} c{c}", rcell.split(" ")[0], met))
        if lines:
            p("### /cached hit ÷ /hello")
            p("")
            p("| pin | conns | store | req/s ratio | ≥ 0.80x | p99 ratio | server µs CPU/req, /cached − /hello |")
            p("|---|--:|---|--:|:-:|--:|--:|")
            out.extend(lines)
            p("")
        for st, xs in sorted(tsum.items(), key=lambda x: STORE_ORDER.get(x[0], 9)):
            ok = None if any(m is None for _, _, m in xs) else all(m for _, _, m in xs)
            targets.append((f"/cached/:key hit, {st}: ≥ 80% of /hello's req/s", ", ".join(f"{w} {cell}" for w, cell, _ in xs), ok))

    if sk or ck:
        p("### Where the time goes (from the rows above, medians)")
        p("")
        for pin in pins:
            for c in sorted({k[2] for k in sk + ck if k[1] == pin}):
                for st in sorted({k[4] for k in sk if k[1] == pin and k[2] == c}, key=lambda x: STORE_ORDER.get(x, 9)):
                    parts = []
                    for srv in ("tenure", "express-session"):
                        k = ("session", pin, c, srv, st)
                        if k not in groups:
                            continue
                        rps = med(vals(k, "rps"))
                        scpu, wcpu = med(vals(k, "srv_cpu%")), med(vals(k, "wrk_cpu%"))
                        kcpu = med(nvals(k, "store_cpu%"))
                        us, kus = med(us_per_req(k, "srv_cpu%")), med(us_per_req(k, "store_cpu%"))
                        t = (f"{SERVER_TEXT[srv]} {fnum(rps)} req/s: {fnum(us, 1)} µs of server CPU per request "
                             f"(srv {fnum(scpu)}%)")
                        if kcpu is not None:
                            t += f", {'redis-server' if st == 'redis' else st} {fnum(kus, 1)} µs per request (store {fnum(kcpu)}%)"
                        sp50, sp99 = med(nvals(k, "store_p50_ms")), med(nvals(k, "store_p99_ms"))
                        if sp50 is not None:
                            t += f", store round trip p50 {ms3(sp50)} / p99 {ms3(sp99)} ms"
                        t += f"; limit: {bound(scpu, kcpu, wcpu, max(vals(k, 'other_cpu%')), pin)}"
                        if srv == "tenure" and not all(r.get("flow_ok") == "1" for r in groups[k]):
                            t += " (**its FLOW counts do not add up: not the flow**)"
                        parts.append(t)
                    if parts:
                        p(f"- session, {st}, {pin} c{c}: " + "; ".join(parts) + ".")
                for st in sorted({k[4].split("@")[-1] for k in ck if k[1] == pin and k[2] == c},
                                 key=lambda x: STORE_ORDER.get(x, 9)):
                    kc, kh = ("cached", pin, c, "tenure", f"cached@{st}"), ("cached", pin, c, "tenure", f"hello@{st}")
                    if kc not in groups or kh not in groups:
                        continue
                    uc, uh = med(us_per_req(kc, "srv_cpu%")), med(us_per_req(kh, "srv_cpu%"))
                    kus = med(us_per_req(kc, "store_cpu%"))
                    t = (f"- /cached hit, {st}, {pin} c{c}: {fnum(uc, 1)} µs of server CPU per request against /hello's "
                         f"{fnum(uh, 1)} µs ({(uc - uh) if uc is not None and uh is not None else 0:+.1f} µs: the store "
                         f"lookup and the value's JSON)")
                    if kus is not None:
                        t += f", {'redis-server' if st in ('redis', 'near') else st} {fnum(kus, 1)} µs per request"
                    sp50, sp99 = med(nvals(kc, "store_p50_ms")), med(nvals(kc, "store_p99_ms"))
                    if sp50 is not None:
                        t += f", store round trip p50 {ms3(sp50)} / p99 {ms3(sp99)} ms"
                    t += (f"; limit of /cached: {bound(med(vals(kc, 'srv_cpu%')), med(nvals(kc, 'store_cpu%')), med(vals(kc, 'wrk_cpu%')), max(vals(kc, 'other_cpu%')), pin)}, "
                          f"of /hello: {bound(med(vals(kh, 'srv_cpu%')), None, med(vals(kh, 'wrk_cpu%')), max(vals(kh, 'other_cpu%')), pin)}.")
                    p(t)
        p("")
        p("A server core at ≥ 90% means its CPU per request sets the rate; wrk's core at ≥ 90% means the client "
          "(one thread, flow.lua's request/response callbacks included) does, and the server's rate is a lower "
          "bound; no core full means the time is spent waiting (store round trips, cross-core wake-ups). "
          "The store round trip is tenure's own measure from a store call to its answer, so on redis:// / "
          "memcached:// it includes the time the answer waits for tenure's loop to read it.")
        p("")
    if notes:
        p("## Notes")
        p("")
        for x in notes:
            p(f"- {x}")
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
        cpu = {}
        if os.path.exists(os.path.join(gd, "cpu.txt")):
            for line in open(os.path.join(gd, "cpu.txt")):
                for kv in line.split():
                    k, _, v = kv.partition("=")
                    cpu[k] = v
        # trace lines before the run (start-up and warm-up) are counted apart
        run_from = int(cpu.get("trace_lines_before_run", cpu.get("trace_lines_before_load", "0")) or 0)
        kinds, before = {}, {}
        rx = re.compile(r"\]\s+([\d.]+) ms: (\S+) ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB, ([\d.]+) /")
        used_after = []
        for i, line in enumerate(open(tp, encoding="utf-8", errors="replace")):
            m = rx.search(line)
            if not m:
                continue
            if i < run_from:
                before.setdefault(m.group(2), []).append(float(m.group(7)))
                continue
            kinds.setdefault(m.group(2), []).append(float(m.group(7)))
            used_after.append(float(m.group(5)))
        wrk = open(os.path.join(gd, "wrk.txt"), encoding="utf-8", errors="replace").read() \
            if os.path.exists(os.path.join(gd, "wrk.txt")) else ""
        rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
        users = re.search(r"^USERS (.*)$", wrk, re.M)
        uv = dict(x.split("=", 1) for x in users.group(1).split()) if users else {}
        lat = {q: re.search(rf"^\s+{q}%\s+(\S+)", wrk, re.M) for q in (50, 99)}
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
            p(f"| --trace-gc lines, the run | {kind} | {len(xs)} | {pctl(xs, 50):.3f} | {pctl(xs, 99):.3f} | {max(xs):.3f} | {sum(xs):.1f} |")
        if not kinds:
            p("| --trace-gc lines, the run | – | 0 | | | | |")
        if "Mark-Sweep" not in kinds:
            p("| --trace-gc lines, the run | Mark-Sweep | 0 | | | | |")
        for kind in sorted(before, key=lambda k: (k != "Scavenge", k)):
            xs = before[kind]
            p(f"| --trace-gc lines, start-up and warm-up | {kind} | {len(xs)} | {pctl(xs, 50):.3f} | {pctl(xs, 99):.3f} | {max(xs):.3f} | {sum(xs):.1f} |")
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
              "(/debug/heap counts every GC of the server's life, start-up and warm-up included; "
              "its percentiles are tenure's own.)")
        p("")
        sc = kinds.get("Scavenge", [])
        full = sum(len(v) for k, v in kinds.items() if k != "Scavenge")
        if sc:
            targets.append(("GC profile: scavenge p99 < 1 ms", f"{pctl(sc, 99):.3f} ms (max {max(sc):.3f} ms, {len(sc)} scavenges)",
                            pctl(sc, 99) < 1.0))
        targets.append((f"GC profile: no full GC in {gdur.group(1) if gdur else 'the run'}", f"{full} full GCs", full == 0))

    # ------------------------------------------------------------ targets, problems
    if targets:
        p("## Targets (issue 9: throughput, C10K, GC; issue 10: sessions, /cached), this run")
        p("")
        p("| target | measured | met |")
        p("|---|---|:-:|")
        for t, m, ok in targets:
            p(f"| {t} | {m} | {'–' if ok is None else ('yes' if ok else '**no**')} |")
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
