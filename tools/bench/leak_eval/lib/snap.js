'use strict';
// Snapshot driver for the leak-eval corpus.
//
// A program calls run({...}) with its workload.  The driver parses
//   node --expose-gc progs/<prog>.js OUTDIR SNAPSHOTS SEED
// runs `warmup` steps, then writes SNAPSHOTS heap snapshots with exactly
// `perInterval` steps of work between consecutive snapshots, each after a
// full global.gc().  Files: <OUTDIR>/<prog>-<seed>-<i>.heapsnapshot.
// Before each snapshot it prints the program's collection sizes (ground truth)
// to stderr, as a human readable line and as a `SIZES {json}` line.

const fs = require('fs');
const path = require('path');
const v8 = require('v8');

// ---- seeded PRNG (mulberry32 over a splitmix-style seed hash) ----
function hashSeed(str) {
  let h = 1779033703 ^ str.length;
  for (let i = 0; i < str.length; i++) {
    h = Math.imul(h ^ str.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  h = Math.imul(h ^ (h >>> 16), 2246822507);
  h = Math.imul(h ^ (h >>> 13), 3266489909);
  return (h ^= h >>> 16) >>> 0;
}

function makeRng(seed) {
  let a = hashSeed(String(seed));
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng = {
    next,
    int(n) { return Math.floor(next() * n); },           // 0..n-1
    range(lo, hi) { return lo + Math.floor(next() * (hi - lo + 1)); }, // lo..hi
    chance(p) { return next() < p; },
    pick(arr) { return arr[Math.floor(next() * arr.length)]; },
    // strings are assembled with join() so they are flat (no deep cons-string
    // chains that V8 would flatten later, shrinking the heap between snapshots)
    hex(len) {
      const parts = [];
      for (let have = 0; have < len; have += 8) {
        const chunk = Math.floor(next() * 4294967296).toString(16).padStart(8, '0');
        parts.push(len - have >= 8 ? chunk : chunk.slice(0, len - have));
      }
      return parts.join('');
    },
    word(len) {
      const abc = 'abcdefghijklmnopqrstuvwxyz';
      const out = new Array(len);
      for (let i = 0; i < len; i++) out[i] = abc[Math.floor(next() * 26)];
      return out.join('');
    },
    // derive an independent stream (e.g. one for the server, one for clients)
    fork(tag) { return makeRng(String(seed) + '/' + tag + '/' + Math.floor(next() * 1e9)); },
  };
  return rng;
}

// ---- closed-loop load generator for in-process HTTP clients ----
// `concurrency` workers each loop `await fn(rng)`.  until(n) resolves once n
// more requests have completed.  Workers never pause, so snapshots are taken
// with requests in flight (the snapshot itself is synchronous).
class Load {
  constructor(concurrency, fn) {
    this.concurrency = concurrency;
    this.fn = fn;
    this.done = 0;
    this.errors = 0;
    this.target = 0;
    this.waiter = null;
    this.stopped = false;
    this.started = false;
  }
  _start() {
    this.started = true;
    for (let w = 0; w < this.concurrency; w++) this._worker(w);
  }
  async _worker(w) {
    while (!this.stopped) {
      try { await this.fn(w); } catch (e) { this.errors++; if (this.errors < 5) console.error('load error:', e.message); }
      this.done++;
      if (this.waiter && this.done >= this.target) { const r = this.waiter; this.waiter = null; r(); }
    }
  }
  until(n) {
    this.target = Math.max(this.target, this.done) + n;
    if (!this.started) this._start();
    if (this.done >= this.target) return Promise.resolve();
    return new Promise((r) => { this.waiter = r; });
  }
  stop() { this.stopped = true; }
}

function fmtSizes(obj) {
  return Object.entries(obj || {}).map(([k, v]) => `${k}=${v}`).join(' ');
}

async function run(spec) {
  const [outdir, nArg, seedArg] = process.argv.slice(2);
  if (!outdir || !nArg || seedArg === undefined) {
    console.error(`usage: node --expose-gc ${process.argv[1]} OUTDIR SNAPSHOTS SEED`);
    process.exit(2);
  }
  if (typeof global.gc !== 'function') {
    console.error('run node with --expose-gc');
    process.exit(2);
  }
  const n = parseInt(nArg, 10);
  const seed = parseInt(seedArg, 10);
  const prog = spec.prog;
  fs.mkdirSync(outdir, { recursive: true });
  const rng = makeRng(`${prog}:${seed}`);
  const t0 = Date.now();

  await spec.setup(rng);
  for (let s = 0; s < spec.warmup; s++) await spec.step(rng, s);
  let stepNo = spec.warmup;
  const files = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) {
      for (let s = 0; s < spec.perInterval; s++) await spec.step(rng, stepNo++);
    }
    global.gc();
    global.gc();
    const sz = spec.sizes();
    const mem = process.memoryUsage();
    const rec = { prog, seed, snap: i, step: stepNo, heapUsedMB: +(mem.heapUsed / 1048576).toFixed(1), leak: sz.leak || {}, noise: sz.noise || {} };
    console.error(`[${prog} seed=${seed} snap=${i} heap=${rec.heapUsedMB}MB] leak: ${fmtSizes(rec.leak) || '(none)'} | noise: ${fmtSizes(rec.noise)}`);
    console.error('SIZES ' + JSON.stringify(rec));
    const file = path.join(outdir, `${prog}-${seed}-${i}.heapsnapshot`);
    v8.writeHeapSnapshot(file);
    files.push(file);
    console.log(file);
  }
  if (spec.teardown) await spec.teardown();
  console.error(`[${prog} seed=${seed}] done in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  // servers, agents and timers may keep the loop alive; we are done.
  process.exit(0);
}

module.exports = { run, makeRng, Load };
