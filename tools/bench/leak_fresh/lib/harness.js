'use strict';
// Shared driver for the leak_fresh corpus.
//
//   node --expose-gc progs/<prog>.js OUTDIR SEED NSNAP
//
// A program hands run() its load step (one batch of seeded requests) and
// functions that measure its planted leaks (and, for information, some of its
// healthy structures). run() does a warm-up, then takes NSNAP snapshots with
// the same amount of load between consecutive ones, and writes the
// ground-truth log OUTDIR/<prog>-<seed>.truth.json.
//
// Everything the harness keeps across the run is allocated up front with a
// fixed size, so the harness itself adds no growing collection to the heap.
const http = require('http');
const v8 = require('v8');
const fs = require('fs');
const path = require('path');

function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6D2B79F5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  constructor(seed) { this.next = mulberry32(seed * 2654435761 + 97); }
  float() { return this.next(); }
  int(n) { return Math.floor(this.next() * n); }
  range(lo, hi) { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  chance(p) { return this.next() < p; }
  pick(arr) { return arr[Math.floor(this.next() * arr.length)]; }
  // Zipf-distributed index in [0, n); the CDF is built once per (n, s).
  zipf(n, s) {
    const key = n + ':' + s;
    let cdf = zipfTables.get(key);
    if (!cdf) {
      cdf = new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) { sum += 1 / Math.pow(i + 1, s); cdf[i] = sum; }
      for (let i = 0; i < n; i++) cdf[i] /= sum;
      zipfTables.set(key, cdf);
    }
    const u = this.next();
    let lo = 0, hi = n - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cdf[mid] < u) lo = mid + 1; else hi = mid; }
    return lo;
  }
  hex(len) {
    let s = '';
    while (s.length < len) s += Math.floor(this.next() * 0x100000000).toString(16).padStart(8, '0');
    return s.slice(0, len);
  }
}
const zipfTables = new Map();

// Deterministic "wall clock" for the services: the driver advances it after
// each batch; timers registered with every() fire in virtual time order.
class VirtualClock {
  constructor() { this.t = 1700000000000; this.timers = []; }
  now() { return this.t; }
  every(ms, fn) { this.timers.push({ ms, next: this.t + ms, fn }); }
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let due = null;
      for (const tm of this.timers) if (tm.next <= end && (!due || tm.next < due.next)) due = tm;
      if (!due) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn(this.t);
    }
    this.t = end;
  }
}

// Cheap deterministic string hash (FNV-1a), for decisions that must not
// depend on the order in which concurrent requests arrive.
function hash32(str) {
  let h = 0x811c9dc5;
  for (let i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h >>> 0;
}

// A JSON http server on 127.0.0.1, ephemeral port. handler(req, url, body)
// returns (or resolves to) {status, body} or a plain body (status 200).
function serve(handler) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = null;
      if (chunks.length) {
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) { body = null; }
      }
      const url = new URL(req.url, 'http://local');
      Promise.resolve()
        .then(() => handler(req, url, body))
        .then((out) => {
          let status = 200, payload = out;
          if (out && typeof out === 'object' && 'status' in out && 'body' in out) { status = out.status; payload = out.body; }
          const data = Buffer.from(JSON.stringify(payload === undefined ? null : payload));
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': data.length });
          res.end(data);
        }, (err) => {
          const data = Buffer.from(JSON.stringify({ error: String(err && err.message || err) }));
          res.writeHead(500, { 'content-type': 'application/json', 'content-length': data.length });
          res.end(data);
        });
    });
  });
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 130000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Keep-alive JSON client bound to one server.
function makeClient(server, maxSockets = 16) {
  const port = server.address().port;
  const agent = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 60000 });
  function request(method, p, body, headers) {
    return new Promise((resolve, reject) => {
      const data = body === undefined || body === null ? null : Buffer.from(JSON.stringify(body));
      const h = Object.assign({ 'content-type': 'application/json' }, headers || {});
      h['content-length'] = data ? data.length : 0;
      const req = http.request({ host: '127.0.0.1', port, method, path: p, agent, headers: h }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const txt = Buffer.concat(chunks).toString('utf8');
          let parsed = null;
          try { parsed = txt ? JSON.parse(txt) : null; } catch (e) { parsed = txt; }
          resolve({ status: res.statusCode, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(data || undefined);
    });
  }
  return { request, agent, close() { agent.destroy(); } };
}

// Load that rises and falls: a value in [lo, hi] following two superposed
// sine waves whose periods are not multiples of the snapshot interval.
function waveFactory(rng, lo, hi, period) {
  const p1 = period, p2 = period * 2.7, ph1 = rng.float() * 6.283, ph2 = rng.float() * 6.283;
  return function level(step) {
    const w = 0.65 * Math.sin(6.283 * step / p1 + ph1) + 0.35 * Math.sin(6.283 * step / p2 + ph2);
    return Math.max(lo, Math.round(lo + (hi - lo) * (w + 1) / 2));
  };
}

function parseArgs(prog) {
  const [outDir, seedStr, nsnapStr] = process.argv.slice(2);
  if (!outDir || !seedStr || !nsnapStr) {
    console.error(`usage: node --expose-gc ${prog}.js OUTDIR SEED NSNAP`);
    process.exit(2);
  }
  if (typeof global.gc !== 'function') {
    console.error(`${prog}: run with node --expose-gc`);
    process.exit(2);
  }
  return { outDir, seed: Number(seedStr), nsnap: Number(nsnapStr) };
}

// opts: {
//   prog, args: parseArgs() result,
//   warmup: steps before snapshot 0, interval: steps between snapshots,
//   step: async (i) => void             one batch of load,
//   leaks: [[name, () => size], ...]    planted leaks,
//   healthy: [[name, () => size], ...]  some healthy structures (information),
//   shutdown: async () => void
// }
// The sizes are kept in plain arrays indexed by position, and the named
// truth object is only built after the last snapshot, so that no edge in
// any snapshot carries a leak's name except the leak itself.
async function run(opts) {
  const { prog, args } = opts;
  const { outDir, seed, nsnap } = args;
  fs.mkdirSync(outDir, { recursive: true });
  const leakNames = opts.leaks.map((p) => p[0]);
  const leakFns = opts.leaks.map((p) => p[1]);
  const healthyNames = (opts.healthy || []).map((p) => p[0]);
  const healthyFns = (opts.healthy || []).map((p) => p[1]);
  opts.leaks = null;
  opts.healthy = null;
  const leakSizes = leakNames.map(() => new Array(nsnap).fill(-1));
  const healthySizes = healthyNames.map(() => new Array(nsnap).fill(-1));
  const t0 = Date.now();
  let stepNo = 0;
  const steps = async (count) => { for (let k = 0; k < count; k++) await opts.step(stepNo++); };
  await steps(opts.warmup);
  for (let i = 0; i < nsnap; i++) {
    if (i > 0) await steps(opts.interval);
    for (let k = 0; k < leakFns.length; k++) leakSizes[k][i] = leakFns[k]();
    for (let k = 0; k < healthyFns.length; k++) healthySizes[k][i] = healthyFns[k]();
    global.gc();
    v8.writeHeapSnapshot(path.join(outDir, `${prog}-${seed}-${i}.heapsnapshot`));
  }
  const elapsed = Date.now() - t0;
  if (opts.shutdown) await opts.shutdown();
  const truth = {
    program: prog, seed, nsnap,
    warmup_steps: opts.warmup, interval_steps: opts.interval,
    snapshots: [],
    leaks: {}, healthy: {},
    elapsed_ms: elapsed,
  };
  for (let i = 0; i < nsnap; i++) truth.snapshots.push(`${prog}-${seed}-${i}.heapsnapshot`);
  leakNames.forEach((n, k) => { truth.leaks[n] = leakSizes[k]; });
  healthyNames.forEach((n, k) => { truth.healthy[n] = healthySizes[k]; });
  fs.writeFileSync(path.join(outDir, `${prog}-${seed}.truth.json`), JSON.stringify(truth, null, 1) + '\n');
  process.stdout.write(`${prog} seed ${seed}: ${nsnap} snapshots in ${elapsed} ms; leaks ` +
    (leakNames.map((n) => `${n}=${truth.leaks[n].join('/')}`).join(' ') || 'none') + '\n');
}

function main(fn) {
  fn().then(() => process.exit(0), (err) => { console.error(err && err.stack || err); process.exit(1); });
}

module.exports = { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main };
