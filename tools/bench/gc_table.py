#!/usr/bin/env python3
"""Summarise a gc_vs_peers.sh run as markdown (stdout).

usage: gc_table.py --raw DIR --peers DIR --workloads gcbench,binarytrees21
                   [--labels tenure,boehm,...]

Reads, from the raw folder that gc_vs_peers.sh fills:
  measure.tsv                    measure.py --tsv rows, labels "<workload>/<impl>"
  tenure_stats_<wl>.err          stderr of one `TENURE_STATS=1 <prog> --trace-gc` run
                                 (--trace-gc lines + the statistics JSON as last '{' line)
  trace_<wl>_<impl>.txt          node --trace-gc / Boehm GC_PRINT_STATS=1 logs
  heaplimit.tsv                  heap-limit checks (written by the shell script)
--peers is the copy of ../shared/peers/gc: its gcpauses.py parses the pause logs
(the same parser for node, Boehm and tenure's V8-shaped --trace-gc lines).

Exit status: 0, or 1 when a correctness check in the data failed (stdout
mismatch / non-zero exit in measure.py, a heap-limit check, a missing file).
"""
import argparse
import csv
import json
import os
import sys

IMPL_TEXT = {
    "tenure": "tenure (this repo)",
    "boehm": "Boehm GC 8.2",
    "glibc": "malloc/free, glibc",
    "jemalloc": "malloc/free, jemalloc",
    "node": "node (default GC)",
    "node-stgc": "node --single-threaded-gc",
    "arena": "bump arena, no GC (binary-trees only)",
}

problems = []
# tenure's statistics kinds and the names its --trace-gc lines use
TENURE_KINDS = (("scavenge", "Scavenge"), ("full", "Mark-Sweep"))
FULL_KINDS = ("Mark-Compact", "Mark-Sweep", "Boehm full (STW)")


def fmt(x, nd=3):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    return f"{x:.{nd}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def read_measure(path):
    rows = {}
    if not os.path.exists(path):
        problems.append(f"missing {path}")
        return rows
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            rows[r["label"]] = r
    return rows


def read_tenure(path):
    """-> (stats JSON or None, list of trace-gc lines)"""
    if not os.path.exists(path):
        return None, []
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.readlines()
    js = None
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                js = json.loads(line)
            except ValueError:
                js = None
            break
    return js, lines


def pause_dist(gcp, lines):
    """Raw pauses per kind from V8-shaped --trace-gc lines or Boehm's log,
    grouped like gcpauses.summarise does (suffix such as '(reduce)' stripped)."""
    kinds = {}
    for line in lines:
        b = gcp.BOEHM.match(line)
        if b:
            kinds.setdefault("Boehm full (STW)", []).append(int(b["ms"]) + int(b["ns"]) / 1e6)
            continue
        if not line.startswith("[") or " ms: " not in line:
            continue
        m = gcp.LINE.match(line)
        if m:
            kinds.setdefault(m["kind"], []).append(float(m["pause"]))
    out = {}
    for k, v in kinds.items():
        v.sort()
        out[k] = {"count": len(v), "p50": gcp.percentile(v, 50), "p95": gcp.percentile(v, 95),
                  "p99": gcp.percentile(v, 99), "max": v[-1], "total": sum(v)}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--peers", required=True)
    ap.add_argument("--workloads", required=True)
    ap.add_argument("--labels", default="tenure,boehm,glibc,jemalloc,node,node-stgc")
    a = ap.parse_args()
    sys.path.insert(0, a.peers)
    import gcpauses as gcp  # noqa: E402  (the copied peers' parser)

    workloads = a.workloads.split(",")
    labels = a.labels.split(",")
    meas = read_measure(os.path.join(a.raw, "measure.tsv"))
    out = []
    p = out.append
    summary = {}   # for the targets section

    # ------------------------------------------------------------ wall / RSS
    p("## Wall time and peak RSS (interleaved runs, medians)")
    p("")
    p("Ratios are tenure / peer from the same interleaved run: below 1.00x tenure is faster / smaller.")
    p("`check`: every run exited 0 and printed exactly the peers' stdout (measure.py --expect).")
    for wl in workloads:
        t = meas.get(f"{wl}/tenure")
        tw = float(t["wall_median_s"]) if t else None
        tr = float(t["rss_median_mib"]) if t else None
        tc = float(t["cpu_median_s"]) if t else None
        p("")
        p(f"### {wl}")
        p("")
        p("| implementation | wall s (median) | wall min–max | cpu s | peak RSS MiB | tenure/peer wall | "
          "tenure/peer cpu | tenure/peer RSS | runs (redone) | foreign cpu max s | check |")
        p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|")
        for lab in labels:
            r = meas.get(f"{wl}/{lab}")
            if r is None:
                if lab != "arena" or not wl.startswith("gcbench"):
                    p(f"| {IMPL_TEXT.get(lab, lab)} | – | – | – | – | – | – | – | – | – | not run |")
                continue
            w, rss, cpu = float(r["wall_median_s"]), float(r["rss_median_mib"]), float(r["cpu_median_s"])
            summary[(wl, lab)] = (w, rss, cpu)
            ok = r["ok"] == "ok"
            if not ok:
                problems.append(f"{wl}/{lab}: measure.py check failed (exit status or stdout)")
            same = lab == "tenure"
            p(f"| {IMPL_TEXT.get(lab, lab)} | {w:.3f} | {float(r['wall_min_s']):.3f}–{float(r['wall_max_s']):.3f} "
              f"| {cpu:.2f} | {rss:.1f} | {'–' if same else ratio(tw, w)} | {'–' if same else ratio(tc, cpu)} "
              f"| {'–' if same else ratio(tr, rss)} | {r['runs']} ({r['redone']}) | {r['foreign_cpu_max_s']} "
              f"| {'ok' if ok else '**FAIL**'} |")

    # ------------------------------------------------------------ pauses
    p("")
    p("## GC pauses (one extra run each)")
    p("")
    p("tenure: its own statistics (`TENURE_STATS=1`, JSON on stderr), in the same run with `--trace-gc`, "
      "whose V8-shaped lines give the p95 column and a cross-check. node: `node --trace-gc`, main-thread "
      "pause per event, parsed by the peers' gcpauses.py (p99 with its percentile rule). Boehm: "
      "`GC_PRINT_STATS=1` \"Complete collection took\" (stop-the-world mark; lazy sweep not included).")
    pauses = {}
    for wl in workloads:
        p("")
        p(f"### {wl}")
        p("")
        p("| collector | kind | count | p50 ms | p95 ms | p99 ms | max ms | total ms |")
        p("|---|---|--:|--:|--:|--:|--:|--:|")
        js, tlines = read_tenure(os.path.join(a.raw, f"tenure_stats_{wl}.err"))
        td = pause_dist(gcp, tlines)
        if js is None:
            problems.append(f"{wl}: no statistics JSON from tenure (tenure_stats_{wl}.err)")
            p("| tenure | – | no statistics JSON | | | | | |")
        else:
            g = js["gc"]
            for kind, tkind in TENURE_KINDS:
                s = g[kind]
                tp95 = td.get(tkind, {}).get("p95")
                pauses[(wl, "tenure", kind)] = s["max_ms"]
                pauses[(wl, "tenure", kind + "_p99")] = s["p99_ms"]
                p(f"| tenure | {kind} | {s['count']} | {s['p50_ms']:.3f} | {fmt(tp95 if s['count'] else None, 2)} "
                  f"| {s['p99_ms']:.3f} | {s['max_ms']:.3f} | {s['total_ms']:.1f} |")
        for lab in ("node", "node-stgc", "boehm"):
            path = os.path.join(a.raw, f"trace_{wl}_{lab}.txt")
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                d = pause_dist(gcp, fh.readlines())
            if not d:
                p(f"| {IMPL_TEXT.get(lab, lab)} | – | no GC events parsed | | | | | |")
            for kind, s in sorted(d.items()):
                key = "scavenge" if kind == "Scavenge" else "full" if kind in FULL_KINDS else kind
                pauses[(wl, lab, key)] = s["max"]
                p(f"| {IMPL_TEXT.get(lab, lab)} | {kind} | {s['count']} | {s['p50']:.2f} | {s['p95']:.2f} "
                  f"| {s['p99']:.2f} | {s['max']:.2f} | {s['total']:.1f} |")
        if js is not None:
            g = js["gc"]
            live = js.get("used_heap_size", 0) / 1048576.0
            p("")
            p(f"tenure full GC: **{g.get('full_ms_per_live_mb', 0):.4f} ms per MB live** "
              f"({g['full']['count']} full GCs, {g['full']['total_ms']:.1f} ms total); "
              f"gc.scavenges {g.get('scavenges')} (scavenges only; each full GC also scavenges, counted under full), bytes promoted {g.get('bytes_promoted', 0) / 1048576.0:.1f} MB, "
              f"semi_space_size {g.get('semi_space_size', 0) / 1048576.0:.1f} MB, used heap at exit {live:.1f} MB, "
              f"total pause {g.get('total_pause_ms', 0):.1f} ms.")
            # cross-check the JSON against the --trace-gc lines of the same run
            notes = []
            for kind, tkind in TENURE_KINDS:
                n_js = g[kind]["count"]
                n_tr = td.get(tkind, {}).get("count", 0)
                if tlines and n_js != n_tr:
                    notes.append(f"{kind}: JSON count {n_js}, {tkind} lines in --trace-gc {n_tr}")
                if n_tr and n_js and abs(td[tkind]["max"] - g[kind]["max_ms"]) > 0.01 + 0.05 * g[kind]["max_ms"]:
                    notes.append(f"{kind}: JSON max {g[kind]['max_ms']:.2f} ms, --trace-gc max {td[tkind]['max']:.2f} ms")
            if notes:
                p("")
                p("Note (tenure statistics vs its --trace-gc lines): " + "; ".join(notes) + ".")

    # ------------------------------------------------------------ heap limit
    hl = os.path.join(a.raw, "heaplimit.tsv")
    if os.path.exists(hl):
        p("")
        bt = [x for x in workloads if x.startswith("binarytrees")]
        p(f"## Heap limit ({bt[0] if bt else 'binary-trees'}, `--max-old-space-size`)")
        p("")
        p("| command | exit status | expected | wall s | peak RSS MiB | message | result |")
        p("|---|--:|---|--:|--:|---|:-:|")
        with open(hl, newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                ok = r["result"]
                if ok == "FAIL":
                    problems.append(f"heap limit: {r['command']}: {r['why']}")
                p(f"| `{r['command']}` | {r['rc']} | {r['expected']} | {r['wall_s']} | {r['rss_mib']} "
                  f"| {r['message'] or '–'} | {'**FAIL**: ' + r['why'] if ok == 'FAIL' else ok} |")

    # ------------------------------------------------------------ targets
    p("")
    p("## Targets (issues 2 and 8), this run")
    p("")
    p("| target | measured | met |")
    p("|---|---|:-:|")

    def tgt(text, measured, met):
        p(f"| {text} | {measured} | {'–' if met is None else ('yes' if met else '**no**')} |")

    def w(wl, lab, i=0):
        v = summary.get((wl, lab))
        return None if v is None else v[i]

    for wl in workloads:
        tw = w(wl, "tenure")
        if tw is None:
            continue
        bw = w(wl, "boehm")
        if bw:
            tgt(f"{wl}: wall ≤ 0.5x Boehm", f"{tw / bw:.3f}x ({tw:.3f} s vs {bw:.3f} s)", tw <= 0.5 * bw)
        aw = w(wl, "arena")
        if aw:
            tgt(f"{wl}: wall ≤ 3x the bump arena", f"{tw / aw:.2f}x ({tw:.3f} s vs {aw:.3f} s)",
                tw <= 3 * aw)
        peers = ["node"] if wl == "gcbench" else ["node-stgc", "glibc"]
        for lab in peers:
            pw = w(wl, lab)
            if pw:
                tgt(f"{wl}: faster than {IMPL_TEXT[lab]}", f"{tw:.3f} s vs {pw:.3f} s", tw < pw)
        if wl == "gcbench":
            tr, br = w(wl, "tenure", 1), w(wl, "boehm", 1)
            if tr and br:
                tgt("gcbench: peak RSS ≤ 1.5x Boehm", f"{tr / br:.3f}x ({tr:.1f} vs {br:.1f} MiB)", tr <= 1.5 * br)
            s99 = pauses.get((wl, "tenure", "scavenge_p99"))
            if s99 is not None:
                tgt("gcbench: scavenge p99 < 1 ms (default new space)", f"{s99:.3f} ms", s99 < 1.0)
        else:
            for kind in ("scavenge", "full"):
                tm, nm = pauses.get((wl, "tenure", kind)), pauses.get((wl, "node", kind))
                if tm is not None and nm:
                    tgt(f"{wl}: max {kind} pause ≤ 0.5x node's", f"{tm:.1f} ms vs node {nm:.1f} ms",
                        tm <= 0.5 * nm)
    other = [x for x in workloads if x.startswith("binarytrees") and x != "binarytrees21"]
    if other:
        p("")
        p(f"(The binary-trees targets are set for depth 21; the {other[0]} rows are only indicative.)")

    if problems:
        p("")
        p("## Problems")
        p("")
        for x in problems:
            p(f"- {x}")
    print("\n".join(out))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
