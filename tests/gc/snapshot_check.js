// snapshot_check.js -- checks tenure heap snapshots the way DevTools and
// memlab read them.
//
//   node snapshot_check.js ONE TWO EXPECT.json   the known heap of
//        test_snapshot.c: structure of both files, the known objects' edges,
//        the retainer path of a known object, ids stable from ONE to TWO,
//        and (when TENURE_MEMLAB_DIR has memlab installed) memlab's parser.
//   node snapshot_check.js --structure FILE N   structure only, and at
//        least N object nodes.
// Exits 1 with a message on the first failure.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
  console.error('snapshot_check: FAIL: ' + msg);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}

function load(file) {
  const text = fs.readFileSync(file, 'utf8');
  let s;
  try {
    s = JSON.parse(text);
  } catch (e) {
    fail(`${file}: not JSON: ${e.message}`);
  }
  return s;
}

// Checks the document's structure; returns a graph with helpers.
function structure(file, s) {
  check(s.snapshot && s.snapshot.meta, `${file}: no snapshot.meta`);
  const m = s.snapshot.meta;
  check(JSON.stringify(m.node_fields) === JSON.stringify(
      ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id',
       'detachedness']), `${file}: node_fields ${m.node_fields}`);
  check(JSON.stringify(m.edge_fields) ===
      JSON.stringify(['type', 'name_or_index', 'to_node']),
      `${file}: edge_fields`);
  for (const k of ['nodes', 'edges', 'strings', 'trace_function_infos',
                   'trace_tree', 'samples', 'locations'])
    check(Array.isArray(s[k]), `${file}: no ${k} array`);
  const NF = m.node_fields.length, EF = m.edge_fields.length;
  const nodeTypes = m.node_types[0], edgeTypes = m.edge_types[0];
  const N = s.nodes, E = s.edges, S = s.strings;
  check(N.length % NF === 0, `${file}: nodes.length % node_fields`);
  check(E.length % EF === 0, `${file}: edges.length % edge_fields`);
  const n = N.length / NF;
  check(s.snapshot.node_count === n, `${file}: node_count ${s.snapshot.node_count} != ${n}`);
  check(s.snapshot.edge_count === E.length / EF, `${file}: edge_count`);
  check(S[0] === '<dummy>', `${file}: strings[0]`);
  let sum = 0;
  const firstEdge = new Uint32Array(n + 1);
  const ids = new Set();
  for (let i = 0; i < n; i++) {
    const b = i * NF;
    firstEdge[i] = sum * EF;
    check(N[b] >= 0 && N[b] < nodeTypes.length, `${file}: node ${i} type`);
    check(N[b + 1] >= 0 && N[b + 1] < S.length, `${file}: node ${i} name`);
    check(!ids.has(N[b + 2]), `${file}: duplicate id ${N[b + 2]}`);
    ids.add(N[b + 2]);
    sum += N[b + 4];
  }
  firstEdge[n] = sum * EF;
  check(sum * EF === E.length, `${file}: sum of edge_count ${sum} != edges ${E.length / EF}`);
  for (let e = 0; e < E.length; e += EF) {
    const t = edgeTypes[E[e]];
    check(t !== undefined, `${file}: edge ${e / EF} type ${E[e]}`);
    if (t !== 'element' && t !== 'hidden')
      check(E[e + 1] >= 0 && E[e + 1] < S.length, `${file}: edge ${e / EF} name`);
    const to = E[e + 2];
    check(to % NF === 0 && to >= 0 && to < N.length, `${file}: edge ${e / EF} to_node ${to}`);
  }
  check(nodeTypes[N[0]] === 'synthetic' && S[N[1]] === '', `${file}: node 0 is not the synthetic root`);
  const g = {
    n, N, E, S, NF, EF, nodeTypes, edgeTypes, firstEdge,
    type: (i) => nodeTypes[N[i * NF]],
    name: (i) => S[N[i * NF + 1]],
    id: (i) => N[i * NF + 2],
    size: (i) => N[i * NF + 3],
    edges(i) {
      const out = [];
      for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
        const t = edgeTypes[E[e]];
        out.push({type: t,
                  name: t === 'element' || t === 'hidden' ? E[e + 1] : S[E[e + 1]],
                  to: E[e + 2] / NF});
      }
      return out;
    },
  };
  g.byId = new Map();
  for (let i = 0; i < n; i++) g.byId.set(g.id(i), i);
  return g;
}

// Node names along the shortest path from the root to node T (BFS over
// non-weak edges, as DevTools' distances).
function retainerPath(g, t) {
  const parent = new Int32Array(g.n).fill(-1);
  parent[0] = 0;
  const q = [0];
  for (let k = 0; k < q.length; k++) {
    const i = q[k];
    for (const e of g.edges(i)) {
      if (e.type === 'weak' || parent[e.to] !== -1) continue;
      parent[e.to] = i;
      q.push(e.to);
    }
  }
  check(parent[t] !== -1, `node ${g.id(t)} is not reachable from the root`);
  const out = [];
  for (let i = t; i !== 0; i = parent[i]) out.unshift(g.name(i));
  out.unshift(g.name(0));
  return out;
}

function node(g, id, what) {
  const i = g.byId.get(id);
  check(i !== undefined, `${what} (id ${id}) is not in the snapshot`);
  return i;
}

function edgeTo(g, from, type, name, to, what) {
  const ok = g.edges(from).some((e) => e.type === type && e.name === name && e.to === to);
  check(ok, `${what}: no ${type} edge ${JSON.stringify(name)} from ${g.name(from)}#${g.id(from)} to ${g.name(to)}#${g.id(to)}; has ` +
        JSON.stringify(g.edges(from).map((e) => [e.type, e.name, g.name(e.to)])));
}

function sub(g, label) {
  const roots = g.edges(0).find((e) => g.name(e.to) === '(GC roots)');
  check(roots && roots.type === 'element', 'root has no element edge to (GC roots)');
  const s = g.edges(roots.to).find((e) => g.name(e.to) === label);
  check(s !== undefined, `(GC roots) has no sub-root ${label}`);
  check(g.type(s.to) === 'synthetic', `${label} is not synthetic`);
  return s.to;
}

function known(file, g, k) {
  const vec = node(g, k.vec, 'vec'), a = node(g, k.a, 'a'), b = node(g, k.b, 'b');
  const blob = node(g, k.blob, 'blob'), buf = node(g, k.buf, 'buf');
  const str = node(g, k.str, 'str'), elems = node(g, k.elems, 'elems');
  const p = node(g, k.p, 'p'), w = node(g, k.w, 'w'), conn = node(g, k.conn, 'conn');
  check(g.type(vec) === 'object' && g.name(vec) === 'Vector', `${file}: vec is ${g.type(vec)} ${g.name(vec)}`);
  check(g.size(vec) === 8 + 8 + 4 * 8, `${file}: vec self size ${g.size(vec)}`);
  check(g.edges(vec).length === 2, `${file}: vec has ${g.edges(vec).length} edges (NULL and immediates are not edges)`);
  edgeTo(g, vec, 'element', 0, a, file);
  edgeTo(g, vec, 'element', 3, elems, file);
  check(g.type(a) === 'object' && g.name(a) === 'Pair', `${file}: a is ${g.name(a)}`);
  edgeTo(g, a, 'property', 'car', blob, file);
  edgeTo(g, a, 'property', 'cdr', b, file);
  edgeTo(g, b, 'property', 'car', buf, file);
  edgeTo(g, b, 'property', 'cdr', str, file);
  check(g.type(str) === 'string', `${file}: str is ${g.type(str)}`);
  const want = 'hello "world"\n\u00e9\u{1f600} \u0001 \ufffd end';
  check(g.name(str) === want, `${file}: string name ${JSON.stringify(g.name(str))}`);
  check(g.type(elems) === 'array' && g.name(elems) === '(object elements)', `${file}: elems is ${g.type(elems)} ${g.name(elems)}`);
  edgeTo(g, elems, 'element', 0, a, file);
  edgeTo(g, elems, 'element', 1, str, file);
  check(g.type(buf) === 'object' && g.name(buf) === 'Buffer', `${file}: buf`);
  const bs = g.edges(buf).find((e) => e.name === 'backing_store');
  check(bs && bs.type === 'internal', `${file}: Buffer has no internal backing_store`);
  check(g.type(bs.to) === 'native' && g.name(bs.to) === 'system / JSArrayBufferData' && g.size(bs.to) === 12345,
        `${file}: backing store is ${g.type(bs.to)} ${g.name(bs.to)} ${g.size(bs.to)}`);
  const path = retainerPath(g, a);
  check(JSON.stringify(path) === JSON.stringify(['', '(GC roots)', 'app sessions', 'Vector', 'Pair']),
        `${file}: retainer path ${JSON.stringify(path)}`);
  const pers = sub(g, '(Persistent handles)');
  check(g.edges(pers).some((e) => e.to === p && e.type === 'internal'), `${file}: persistent handle`);
  const weak = sub(g, '(Weak handles)');
  check(g.edges(weak).some((e) => e.to === w && e.type === 'weak'), `${file}: weak handle`);
  edgeTo(g, sub(g, 'conn table'), 'property', 'conn', conn, file);
  const hs = sub(g, '(Handle scope)');
  check(g.edges(hs).some((e) => g.name(e.to) === 'Blob' && e.type === 'internal' && e.name === '1' &&
                               g.size(e.to) === 8 + 8 + 20000),
        `${file}: handle scope`);
  check(g.edges(hs).some((e) => e.name === '2' && g.type(e.to) === 'string' &&
                               g.name(e.to) === 'x'.repeat(1024) && g.size(e.to) === 8 + 8 + 3000),
        `${file}: a long string is named by its first 1024 characters`);
  check(g.id(0) === 1 && g.id(g.edges(0)[0].to) === 3, `${file}: synthetic ids`);
}

// Loads FILE with memlab's full parser (dominators and retained sizes, as
// `memlab analyze` computes them) and checks the known objects there.
function memlab(file, k) {
  const dir = process.env.TENURE_MEMLAB_DIR;
  if (!dir) {
    console.log('SKIP: memlab (set TENURE_MEMLAB_DIR to a dir with `npm install memlab`)');
    return Promise.resolve();
  }
  let analysis;
  try {
    analysis = require(path.join(dir, 'node_modules', '@memlab', 'heap-analysis'));
  } catch (e) {
    console.log(`SKIP: memlab not loadable from ${dir}: ${e.message}`);
    return Promise.resolve();
  }
  check(typeof analysis.getFullHeapFromFile === 'function', 'memlab has no getFullHeapFromFile');
  return analysis.getFullHeapFromFile(file).then((heap) => {
    let n = 0, found = false;
    heap.nodes.forEach((nd) => {
      n++;
      if (nd.name === 'app sessions') found = true;
    });
    check(n > 10, `memlab: only ${n} nodes`);
    check(found, 'memlab: no "app sessions" node');
    const vec = heap.getNodeById(k.vec), a = heap.getNodeById(k.a);
    check(vec && vec.name === 'Vector', 'memlab: no Vector by id');
    check(a && a.name === 'Pair', 'memlab: no Pair by id');
    // The Vector is the only strong holder of a's subtree (a, blob, elems;
    // b and the rest are shared with the persistent handle's pair).
    check(vec.retainedSize > vec.self_size, `memlab: Vector retains ${vec.retainedSize}`);
    check(a.retainedSize >= a.self_size, `memlab: Pair retains ${a.retainedSize}`);
    const refs = [];
    a.forEachReferrer((e) => { refs.push(e.fromNode.name); });
    check(refs.includes('Vector') && refs.includes('(object elements)'),
          `memlab: a's referrers ${JSON.stringify(refs)}`);
    console.log(`memlab: loaded ${n} nodes, Vector retains ${vec.retainedSize} bytes`);
  });
}

function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--structure') {
    const g = structure(args[1], load(args[1]));
    let objects = 0;
    for (let i = 0; i < g.n; i++) if (g.type(i) !== 'synthetic') objects++;
    check(objects >= Number(args[2]), `${args[1]}: ${objects} object nodes, want ${args[2]}`);
    console.log(`snapshot_check: ${args[1]}: ${g.n} nodes ok`);
    return;
  }
  const [one, two, expect] = args;
  const k = JSON.parse(fs.readFileSync(expect, 'utf8'));
  const g1 = structure(one, load(one)), g2 = structure(two, load(two));
  known(one, g1, k);
  known(two, g2, k);
  // Every object in both snapshots keeps its id and its name.
  let common = 0;
  for (let i = 0; i < g1.n; i++) {
    const j = g2.byId.get(g1.id(i));
    if (j === undefined) continue;
    common++;
    check(g1.name(i) === g2.name(j) && g1.type(i) === g2.type(j),
          `id ${g1.id(i)} is ${g1.name(i)} in ${one} but ${g2.name(j)} in ${two}`);
  }
  check(common >= 12, `only ${common} ids in common`);
  memlab(one, k).then(() => console.log('snapshot_check: ok'),
                   (e) => fail(`memlab: ${e.stack || e}`));
}

main();
