'use strict';
// Sanity check of the ground truth against the snapshot graph itself: for each
// planted leak in manifest.json, find the edges named like the leak (property,
// context variable, or event name in an emitter's _events) in the first and last
// snapshot of a series, and print what they point to and how big it is.
// usage: node verify_snapshots.js SNAPDIR [PROG] [SEED]
const fs = require('fs');
const path = require('path');
const [dir, onlyProg, seedArg] = process.argv.slice(2);
const seed = seedArg || '1';
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'manifest.json'), 'utf8'));

function load(file) {
  const s = JSON.parse(fs.readFileSync(file, 'utf8'));
  const m = s.snapshot.meta;
  const NF = m.node_fields.length, EF = m.edge_fields.length;
  const nodeTypes = m.node_fields.indexOf('type'), nodeName = m.node_fields.indexOf('name'), nodeSize = m.node_fields.indexOf('self_size'), nodeEC = m.node_fields.indexOf('edge_count');
  const edgeType = m.edge_fields.indexOf('type'), edgeName = m.edge_fields.indexOf('name_or_index'), edgeTo = m.edge_fields.indexOf('to_node');
  const nTypes = m.node_types[0], eTypes = m.edge_types[0];
  const N = s.nodes.length / NF;
  const firstEdge = new Uint32Array(N + 1);
  for (let i = 0, e = 0; i < N; i++) { firstEdge[i] = e; e += s.nodes[i * NF + nodeEC] * EF; firstEdge[i + 1] = e; }
  const node = (i) => ({ i, type: nTypes[s.nodes[i * NF + nodeTypes]], name: s.strings[s.nodes[i * NF + nodeName]], size: s.nodes[i * NF + nodeSize], edges: s.nodes[i * NF + nodeEC] });
  function* edges(i) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
      const t = eTypes[s.edges[e + edgeType]];
      const nm = (t === 'element' || t === 'hidden') ? s.edges[e + edgeName] : s.strings[s.edges[e + edgeName]];
      yield { type: t, name: nm, to: s.edges[e + edgeTo] / NF };
    }
  }
  return { N, node, edges, strings: s.strings };
}

function measure(g, i) {
  const n = g.node(i);
  let store = null;
  for (const e of g.edges(i)) if (['table', 'elements', 'properties'].includes(e.name)) { const c = g.node(e.to); if (!store || c.edges > store.edges) store = { via: e.name, edges: c.edges, size: c.size }; }
  // linked list: follow head/next
  let chain = 0;
  for (const e of g.edges(i)) {
    if (e.name === 'head') {
      let cur = e.to, guard = 0;
      while (cur !== undefined && guard++ < 1e6) {
        chain++;
        let nxt;
        for (const f of g.edges(cur)) if (f.name === 'next') nxt = f.to;
        if (nxt === undefined || g.node(nxt).type !== 'object') break;
        cur = nxt;
      }
    }
  }
  return `${n.type}:${n.name} self=${n.size} edges=${n.edges}` + (store ? ` ${store.via}: edges=${store.edges} size=${store.size}` : '') + (chain ? ` chain=${chain}` : '');
}

for (const entry of manifest) {
  if (onlyProg && entry.prog !== onlyProg) continue;
  if (!entry.leaks.length) continue;
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(`${entry.prog}-${seed}-`) && f.endsWith('.heapsnapshot')).sort();
  if (files.length < 2) continue;
  for (const f of [files[0], files[files.length - 1]]) {
    const g = load(path.join(dir, f));
    console.log(`${f} (${g.N} nodes)`);
    for (const leak of entry.leaks) {
      const hits = [];
      for (let i = 0; i < g.N; i++) {
        for (const e of g.edges(i)) {
          if (e.name !== leak.name || !['property', 'context', 'internal'].includes(e.type)) continue;
          const to = g.node(e.to);
          if (to.type === 'string' || to.type === 'number' || to.type === 'code' || to.type === 'hidden') continue;
          hits.push(`${e.type} edge from ${g.node(i).type}:${g.node(i).name || '-'} -> ${measure(g, e.to)}`);
        }
      }
      console.log(`  ${leak.name}: ${hits.length ? '' : 'NOT FOUND'}`);
      for (const h of hits.slice(0, 4)) console.log('     ' + h);
      if (hits.length > 4) console.log(`     ... ${hits.length - 4} more`);
    }
  }
}
