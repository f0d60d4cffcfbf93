'use strict';
// Snapshot generator for tools/bench/heap_vs_memlab.sh.
//   node --expose-gc heap_gen.js big OUT.heapsnapshot [SCALE]
//     one snapshot of a heap shaped like a node service's (see service()
//     below): generated modules of code, a few hundred model classes,
//     entities with cross references, parsed JSON payloads, closures over
//     per-connection state, EventEmitters, Maps/Sets, strings of every
//     kind, number arrays and Buffers.  SCALE 1 (the default) is about
//     5.0M nodes, 15M edges and 394 MB with node 20.  Deterministic (seeded).
//   node --expose-gc heap_gen.js records OUT.heapsnapshot RECORDS
//     the old `big`: RECORDS copies of one small record shape (objects,
//     strings, arrays, maps); 850000 records is about 470 MB / 6.7M nodes.
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

function records(out, n) {
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

// --- `big`: a heap shaped like a node service's ---
//
// What a heap snapshot of a real service holds, in rough proportions
// (by node count): strings (a third: ids, interned keys and enum values,
// concatenations, slices of request bodies, module sources), plain and
// class-instance objects (a quarter, of hundreds of shapes, many in
// dictionary mode), code (SharedFunctionInfos, bytecode, feedback, scope
// infos for tens of thousands of functions), closures and their contexts,
// arrays (of objects, of Smis, of doubles), Maps and Sets, numbers,
// Buffers and their backing stores.  Objects reference each other across
// the graph (an order points at its user and its items at products), so
// the dominator tree is not the spanning tree.

const WORDS = ('id name status type user account order item product price ' +
  'amount currency created updated deleted owner group role permission ' +
  'token session request response header body query path method host ' +
  'port timeout retry limit offset cursor page size count total score ' +
  'rank level tier region zone cluster node shard replica primary ' +
  'secondary cache store queue topic event handler listener payload ' +
  'message channel stream buffer chunk batch job task worker pool ' +
  'client server proxy route service config option flag feature ' +
  'version build release deploy metric gauge counter histogram span ' +
  'trace log error warning info debug label tag note comment address ' +
  'city country phone email avatar image file upload download ').trim()
  .split(/\s+/);

function int(n) { return Math.floor(rand() * n); }
function pick(a) { return a[int(a.length)]; }
function cap(w) { return w[0].toUpperCase() + w.slice(1); }
// A flat (sequential) string of n hex digits: built from char codes, not
// by +=, which past 13 characters makes a chain of cons strings.
const HEX = [...'0123456789abcdef'].map((c) => c.charCodeAt(0));
function hex(n) {
  const c = [];
  for (let i = 0; i < n; i++) c.push(HEX[int(16)]);
  return String.fromCharCode.apply(null, c);
}

// A module: 10..50 functions of varied bodies, compiled from one source
// string (kept alive by its Script, as a real module's is), some called
// (bytecode, feedback vectors), some only lazily parsed.  Some functions
// are factories whose closures capture a context.
function makeModule(m) {
  const nf = 10 + int(40);
  let src = "'use strict';\nconst exports = {};\nlet calls = 0;\n";
  const names = [];
  for (let f = 0; f < nf; f++) {
    const name = `${pick(WORDS)}${cap(pick(WORDS))}_${m}_${f}`;
    names.push(name);
    const k = int(6);
    src += `exports.${name} = function ${name}(a, b) {\n  calls++;\n` +
      `  const x = (a | 0) * ${int(1000)} + ${f};\n`;
    if (k === 0) src += `  if (typeof b === 'string') return b.length + x;\n`;
    else if (k === 1) src += `  return { k${f}: x, m: '${pick(WORDS)}', b };\n`;
    else if (k === 2) src += `  let s = 0;\n  for (let i = 0; i < ${2 + int(5)}; i++) s += i * x;\n  return s;\n`;
    else if (k === 3) src += `  return [x, '${pick(WORDS)}-${m}', b];\n`;
    else if (k === 4) src += `  const state = { n: x, seen: [] };\n` +
      `  return function ${name}_cb(v) { state.seen.push(v); return state.n + v + calls; };\n`;
    else src += `  const tag = '${pick(WORDS)}:' + x;\n  return (v) => tag + v;\n`;
    src += `  return x;\n};\n`;
  }
  src += 'return exports;\n';
  const mod = new Function(src)();
  const made = [];
  for (const name of names)
    if (rand() < 0.6) {
      const r = mod[name](int(10), 's');
      if (typeof r === 'function') made.push(r);
    }
  return { exports: mod, made };
}

// A model class with 3..14 fields of fixed kinds and a few methods.
function makeClass(c) {
  const name = `${cap(pick(WORDS))}${cap(pick(WORDS))}${c}`;
  const n = 3 + int(12);
  const fields = [], kinds = [];
  for (let i = 0; i < n; i++) {
    fields.push(`${pick(WORDS)}${i}`);
    kinds.push(i === 0 ? 0 : int(10));
  }
  let src = `return class ${name} {\n  constructor(v) {\n`;
  fields.forEach((f, i) => { src += `    this.${f} = v[${i}];\n`; });
  src += '  }\n';
  const nm = 1 + int(5);
  for (let k = 0; k < nm; k++)
    src += `  ${pick(WORDS)}${k}(x) { return this.${fields[k % n]} + x + ${k}; }\n`;
  src += '};\n';
  return { ctor: new Function(src)(), name, fields, kinds, all: [] };
}

// Text that request bodies and log lines are sliced from.
let corpus = '';
function text(n) {
  let s = '';
  while (s.length < n) s += pick(WORDS) + (rand() < 0.1 ? '. ' : ' ');
  return s;
}

function fieldValue(kind, cls, entities) {
  switch (kind) {
  case 0: return `${cls.name.slice(0, 3).toLowerCase()}_${hex(12)}`;
  case 1: return pick(WORDS);                          // interned
  case 2: return int(100000);                          // Smi
  case 3: return rand() * 1000;                        // heap number
  case 4: return rand() < 0.5;
  case 5: {                                            // nested object
    return { at: int(1e9), by: pick(WORDS), n: rand() };
  }
  case 6: {                                            // array of Smis
    const a = [];
    for (let i = int(12); i > 0; i--) a.push(int(1e6));
    return a;
  }
  case 7:                                              // cons string
    return (pick(WORDS) + '/') + hex(12);
  case 8: {                                            // sliced string
    const at = int(corpus.length - 200);
    return corpus.substring(at, at + 20 + int(150));
  }
  default:                                             // a cross reference
    return entities.length ? entities[int(entities.length)] : null;
  }
}

// A JSON payload as a client would send it: nested objects and arrays of
// records, parsed (so its objects are V8's JSON.parse shapes, some in
// dictionary mode).
function payloadText(depth) {
  if (depth <= 0 || rand() < 0.25) {
    const r = int(5);
    if (r === 0) return String(int(1e6));
    if (r === 1) return String(rand() * 100);
    if (r === 2) return rand() < 0.5 ? 'true' : 'null';
    return JSON.stringify(rand() < 0.5 ? pick(WORDS) : text(8 + int(60)));
  }
  if (rand() < 0.35) {
    const n = 1 + int(8), items = [];
    for (let i = 0; i < n; i++) items.push(payloadText(depth - 1));
    return '[' + items.join(',') + ']';
  }
  const n = 2 + int(8), props = [];
  for (let i = 0; i < n; i++)
    props.push(JSON.stringify(rand() < 0.8 ? pick(WORDS) : pick(WORDS) + '_' + int(50)) +
               ':' + payloadText(depth - 1));
  return '{' + props.join(',') + '}';
}

// Endpoints: each request body follows its endpoint's schema (the same
// keys in the same order, so its objects share hidden classes, as a
// service's payloads do); values and array lengths vary.
function instance(t) {
  if (Array.isArray(t)) {
    const a = [];
    for (let i = 1 + int(2 * t.length); i > 0; i--) a.push(instance(t[0]));
    return a;
  }
  if (t && typeof t === 'object') {
    const o = {};
    for (const k of Object.keys(t)) o[k] = instance(t[k]);
    return o;
  }
  if (typeof t === 'number') return Number.isInteger(t) ? int(1e6) : rand() * 100;
  if (typeof t === 'string') return t.length > 12 ? text(8 + int(60)) : pick(WORDS);
  return t;
}

const HEADERS = ['host', 'user-agent', 'accept', 'content-type',
  'content-length', 'x-request-id', 'x-forwarded-for', 'authorization',
  'cookie', 'accept-encoding', 'x-trace-id', 'if-none-match'];

function service(out, scale) {
  const EventEmitter = require('events');
  const S = scale * 0.33; // SCALE 1: ~5M nodes (measured with node 20)
  corpus = text(2e6);
  const app = { corpus };
  globalThis.app = app;

  // Code: ~1500 modules, ~45000 functions at scale 1.
  app.modules = [];
  for (let m = Math.round(1500 * S); m > 0; m--) app.modules.push(makeModule(m));

  // Model: 300 classes, 700k entities, stored by id per class, plus
  // secondary indexes (Map of Sets).
  const classes = [];
  for (let c = 0; c < 300; c++) classes.push(makeClass(c));
  const entities = [];
  app.stores = new Map();
  app.indexes = new Map();
  for (const cls of classes) app.stores.set(cls.name, new Map());
  for (let i = Math.round(700000 * S); i > 0; i--) {
    // a few classes are common, most rare (Zipf-like)
    const cls = classes[Math.floor(classes.length * Math.pow(rand(), 3))];
    const v = cls.kinds.map((k) => fieldValue(k, cls, entities));
    const e = new cls.ctor(v);
    if (rand() < 0.1) e['x_' + WORDS[int(20)]] = int(100);         // a shape change
    if (rand() < 0.02) delete e[cls.fields[1]];                    // dictionary mode
    entities.push(e);
    app.stores.get(cls.name).set(v[0], e);
    if (rand() < 0.3) {
      const key = cls.name + ':' + pick(WORDS);
      let set = app.indexes.get(key);
      if (!set) app.indexes.set(key, (set = new Set()));
      set.add(e);
    }
  }
  app.recent = entities.filter(() => rand() < 0.05);

  // Requests: 60k parsed payloads, some with their raw text kept, and
  // slices of their bodies (sliced strings into the raw text).
  app.requests = [];
  const endpoints = [];
  for (let i = 0; i < 200; i++) endpoints.push(JSON.parse(payloadText(3)));
  for (let i = Math.round(60000 * S); i > 0; i--) {
    const raw = JSON.stringify(instance(pick(endpoints)));
    const req = {
      id: 'req-' + hex(16), method: pick(['GET', 'POST', 'PUT', 'DELETE']),
      path: '/' + pick(WORDS) + '/' + int(1e5), headers: {},
      body: JSON.parse(raw), receivedAt: int(1e9), user: pick(entities),
    };
    for (let h = 3 + int(HEADERS.length - 2); h-- > 0;) req.headers[HEADERS[h]] = hex(8 + int(24));
    if (rand() < 0.2) { req.raw = raw; req.preview = raw.substring(1, 1 + Math.min(raw.length - 1, 40)); }
    app.requests.push(req);
  }

  // Connections: EventEmitters with listeners that close over per-
  // connection state, a Buffer or two each, counters in a Map.
  app.connections = [];
  const made = [];
  for (const m of app.modules) for (const f of m.made) made.push(f);
  for (let i = Math.round(40000 * S); i > 0; i--) {
    const conn = new EventEmitter();
    const state = { id: i, bytes: 0, lastSeen: rand() * 1e12, peer: '10.' + int(256) + '.' + int(256) + '.' + int(256) };
    const label = 'conn#' + i + '@' + state.peer;
    conn.on('data', (chunk) => { state.bytes += chunk.length; return label; });
    conn.on('end', () => state.bytes);
    if (rand() < 0.5) conn.on('error', function onError(err) { state.err = err; conn.emit('close'); });
    conn.handler = made[int(made.length)];
    conn.inbox = Buffer.alloc(64 + int(4000));
    if (rand() < 0.3) conn.header = Buffer.from(hex(32));      // pooled slice
    conn.counters = new Map();
    for (let k = int(10); k > 0; k--) conn.counters.set(pick(WORDS), int(1000));
    conn.session = { user: pick(entities), token: hex(32), scopes: new Set([pick(WORDS), pick(WORDS)]) };
    app.connections.push(conn);
  }

  // Caches: an LRU of rendered strings (concatenations), a Map of
  // payload fragments, memoized closures.
  app.rendered = new Map();
  for (let i = Math.round(120000 * S); i > 0; i--) {
    const e = pick(entities);
    app.rendered.set('r:' + i, '<li class="' + pick(WORDS) + '">' + String(Object.values(e)[0]) + '</li>');
  }
  app.memo = [];
  for (let i = Math.round(60000 * S); i > 0; i--) {
    const key = hex(10), hit = pick(entities);
    app.memo.push(() => key + hit);
  }

  // Metrics: arrays of doubles and Smis, typed arrays.
  app.metrics = {};
  for (let i = Math.round(8000 * S); i > 0; i--) {
    const name = pick(WORDS) + '.' + pick(WORDS) + '.' + i;
    const samples = [];
    for (let k = 8 + int(120); k > 0; k--) samples.push(rand() * 100);
    app.metrics[name] = { samples, buckets: new Float64Array(16), counts: [int(9), int(9), int(9)] };
  }

  // Log lines: concatenated strings kept in a ring.
  app.log = [];
  for (let i = Math.round(100000 * S); i > 0; i--)
    app.log.push('[' + int(1e9) + '] ' + pick(['info', 'warn', 'error']) + ' ' + pick(WORDS) + ': ' + corpus.substring(int(1e6), int(1e6) + 30 + int(60)));

  global.gc();
  v8.writeHeapSnapshot(out);
}

const [mode, out, a, b] = process.argv.slice(2);
if (mode === 'big') service(out, a === undefined ? 1 : parseFloat(a));
else if (mode === 'records') records(out, parseInt(a, 10));
else if (mode === 'series') series(out, parseInt(a, 10), parseInt(b, 10));
else {
  console.error('usage: heap_gen.js big OUT [SCALE] | records OUT RECORDS | ' +
                'series DIR COUNT RECORDS');
  process.exit(2);
}
