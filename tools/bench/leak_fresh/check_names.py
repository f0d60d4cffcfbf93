#!/usr/bin/env python3
"""Sanity check of the manifest against the raw heap snapshots (no tenure-heap):
for each planted leak, find the edges named like it in snapshot 0 and the
last snapshot of one run, and print what they point at and how many
outgoing edges the target (or, for a Map/Set, its backing table) has.

  check_names.py SNAPDIR [SEED]
"""
import json, os, sys

def load(path):
    with open(path) as f:
        snap = json.load(f)
    meta = snap["snapshot"]["meta"]
    nf, ef = meta["node_fields"], meta["edge_fields"]
    ntypes, etypes = meta["node_types"][0], meta["edge_types"][0]
    nodes, edges, strings = snap["nodes"], snap["edges"], snap["strings"]
    N, E = len(nf), len(ef)
    i_type, i_name, i_ec = nf.index("type"), nf.index("name"), nf.index("edge_count")
    e_type, e_name, e_to = ef.index("type"), ef.index("name_or_index"), ef.index("to_node")
    first = []
    pos = 0
    for n in range(0, len(nodes), N):
        first.append(pos)
        pos += nodes[n + i_ec]
    return dict(nodes=nodes, edges=edges, strings=strings, N=N, E=E, first=first,
                i_type=i_type, i_name=i_name, i_ec=i_ec, e_type=e_type, e_name=e_name, e_to=e_to,
                ntypes=ntypes, etypes=etypes)

def out_edges(h, node_ix):
    n = node_ix // h["N"]
    start = h["first"][n] * h["E"]
    for k in range(h["nodes"][node_ix + h["i_ec"]]):
        yield start + k * h["E"]

def describe(h, node_ix):
    t = h["ntypes"][h["nodes"][node_ix + h["i_type"]]]
    name = h["strings"][h["nodes"][node_ix + h["i_name"]]]
    ec = h["nodes"][node_ix + h["i_ec"]]
    extra = ""
    if name in ("Map", "Set"):
        for e in out_edges(h, node_ix):
            en = h["edges"][e + h["e_name"]]
            et = h["etypes"][h["edges"][e + h["e_type"]]]
            if et in ("internal", "property", "hidden") and isinstance(en, int) and h["strings"][en] == "table":
                tix = h["edges"][e + h["e_to"]]
                extra = f", table edges {h['nodes'][tix + h['i_ec']]}"
    return f"{t}:{name[:40]} edges {ec}{extra}"

def edges_named(h, want):
    found = []
    named = {"context", "property", "internal", "shortcut"}
    for e in range(0, len(h["edges"]), h["E"]):
        et = h["etypes"][h["edges"][e + h["e_type"]]]
        if et in named and h["strings"][h["edges"][e + h["e_name"]]] == want:
            found.append((et, describe(h, h["edges"][e + h["e_to"]])))
    return found

def main():
    snapdir = sys.argv[1]
    seed = sys.argv[2] if len(sys.argv) > 2 else "1"
    here = os.path.dirname(os.path.abspath(__file__))
    progs = json.load(open(os.path.join(here, "manifest.json")))["programs"]
    for prog, spec in sorted(progs.items()):
        if not spec["leaks"]:
            continue
        truth = json.load(open(os.path.join(snapdir, f"{prog}-{seed}.truth.json")))
        last = truth["nsnap"] - 1
        heaps = {i: load(os.path.join(snapdir, f"{prog}-{seed}-{i}.heapsnapshot")) for i in (0, last)}
        for leak in spec["leaks"]:
            print(f"{prog}.{leak['name']} (truth {truth['leaks'][leak['name']][0]} -> {truth['leaks'][leak['name']][last]})")
            for i, h in heaps.items():
                hits = edges_named(h, leak["name"])
                shown = "; ".join(f"{et} -> {d}" for et, d in hits[:4]) + (f"; ... ({len(hits)} edges)" if len(hits) > 4 else "")
                print(f"   snap {i}: {shown or 'NO EDGE WITH THIS NAME'}")

main()
