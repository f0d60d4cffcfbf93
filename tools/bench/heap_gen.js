'use strict';
// Snapshot generator for tools/bench/heap_vs_memlab.sh.
//   node --expose-gc heap_gen.js big OUT.heapsnapshot RECORDS
//     one snapshot of a heap of RECORDS small records (objects, strings,
//     arrays, maps); 1.1M records is about 500 MB / 5M nodes.
//   node --expose-gc heap_gen.js series OUTDIR COUNT RECORDS
//     COUNT snapshots s1..sCOUNT of a server-like heap (RECORDS background
//     records, fluctuating maps, a bounded LRU, churn) with two leaks: a
//     Map cache and an array queue.
const v8 = require('v8');
const path = require('path');

let seed = 42;
function rand() {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 4294967296;
}

class Record {
  constructor(i, parent) {
    this.id = i;
    this.name = 'record-' + i;
    this.tags = ['t' + (i % 100), 'g' + (i % 7)];
    this.parent = parent;
    this.meta = { created: i * 1000, score: i % 1000 };
  }
}

function background(n) {
  const groups = [];
  let group = null;
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) {
      group = { index: new Map(), list: [] };
      groups.push(group);
    }
    const r = new Record(i, group);
    group.list.push(r);
    if (i % 3 === 0) group.index.set(r.name, r);
  }
  return groups;
}

function big(out, n) {
  globalThis.data = background(n);
  global.gc();
  v8.writeHeapSnapshot(out);
}

function series(dir, count, n) {
  globalThis.data = background(n);
  const s = {
    userCache: new Map(), retryQueue: [], active: new Map(), lru: new Map(),
    pending: [], conns: {}, next: 0, conn: 0,
  };
  globalThis.server = s;
  const tick = () => {
    const id = s.next++;
    if (!s.userCache.has(id)) s.userCache.set(id, { id, name: 'user' + id, prefs: { a: 1 } });
    if (rand() < 0.5) s.retryQueue.push({ url: '/hook/' + id, body: 'b'.repeat(40) });
    if (rand() < 0.2) s.retryQueue.shift();
    const target = 300 + Math.floor(rand() * 200);
    while (s.active.size < target) s.active.set('a' + s.next++, { t: id });
    while (s.active.size > target) s.active.delete(s.active.keys().next().value);
    s.lru.set('k' + id, { v: id });
    while (s.lru.size > 1000) s.lru.delete(s.lru.keys().next().value);
    const depth = Math.floor(rand() * 200);
    while (s.pending.length < depth) s.pending.push({ job: s.next++ });
    while (s.pending.length > depth) s.pending.shift();
    const c = s.conn++;
    s.conns['c' + c] = { id };
    delete s.conns['c' + (c - 50)];
  };
  for (let t = 0; t < 2000; t++) tick();
  for (let k = 1; k <= count; k++) {
    for (let t = 0; t < 2000; t++) tick();
    global.gc();
    v8.writeHeapSnapshot(path.join(dir, `s${k}.heapsnapshot`));
  }
}

const [mode, out, a, b] = process.argv.slice(2);
if (mode === 'big') big(out, parseInt(a, 10));
else if (mode === 'series') series(out, parseInt(a, 10), parseInt(b, 10));
else {
  console.error('usage: heap_gen.js big OUT RECORDS | series DIR COUNT RECORDS');
  process.exit(2);
}
