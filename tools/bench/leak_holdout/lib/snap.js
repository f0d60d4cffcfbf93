'use strict';
// Snapshot driver for the held-out leak corpus.
//
//   node --expose-gc progs/<prog>.js OUTDIR SNAPSHOTS SEED
//
// A program calls run(spec). The driver seeds a PRNG, calls spec.setup(ctx),
// runs spec.warmupSteps steps so that the program reaches its steady state,
// then writes SNAPSHOTS heap snapshots with exactly spec.stepsPerInterval
// steps of work between consecutive snapshots:
//
//   <OUTDIR>/<prog>-<seed>-<i>.heapsnapshot   i = 0 .. SNAPSHOTS-1
//
// Before every snapshot it forces a full GC and logs one line to stderr with
// the sizes returned by spec.sizes():
//
//   snap <i> step=<n> heapUsedMB=<x> | name=value name=value ...
//
// Snapshot paths are printed to stdout, one per line, in order.
//
// All randomness goes through ctx.rng (seeded). Time-based behaviour uses the
// simulated clock ctx.now(), which advances spec.tickMs per step, so that TTLs
// and expiry are reproducible regardless of machine speed.

const v8 = require('v8');
const fs = require('fs');
const path = require('path');

// ---------------------------------------------------------------- PRNG
function splitmix32(a) {
  return function () {
    a |= 0; a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16); t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15; t = Math.imul(t, 0x735a2d97);
    return ((t ^= t >>> 15) >>> 0);
  };
}

function makeRng(seed, label) {
  let h = (seed >>> 0) ^ 0x5bd1e995;
  for (const ch of String(label || '')) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  const sm = splitmix32(h);
  let a = sm(), b = sm(), c = sm(), d = sm();
  // sfc32
  function next() {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  const rng = next;
  rng.int = (n) => Math.floor(next() * n);                  // [0, n)
  rng.range = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // [lo, hi]
  rng.chance = (p) => next() < p;
  rng.pick = (arr) => arr[Math.floor(next() * arr.length)];
  rng.id = (len = 8) => {
    const abc = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < len; i++) s += abc[Math.floor(next() * 36)];
    return s;
  };
  // Poisson-ish count with mean m (sum of Bernoullis; fine for small m)
  rng.count = (m) => {
    const whole = Math.floor(m);
    let n = 0;
    for (let i = 0; i < whole * 2; i++) if (next() < 0.5) n++;
    if (next() < m - whole) n++;
    return n;
  };
  // Skewed pick in [0, n): low indices much more likely (hot keys)
  rng.zipf = (n, s = 1.2) => Math.min(n - 1, Math.floor(n * Math.pow(next(), 1 + s)));
  rng.fork = (l) => makeRng((seed * 2654435761) >>> 0, String(label || '') + '/' + l);
  return rng;
}

// ---------------------------------------------------------------- driver
function parseArgs(argv) {
  const [outdir, snaps, seed] = argv;
  if (!outdir || !snaps || !seed) {
    process.stderr.write('usage: node --expose-gc <prog>.js OUTDIR SNAPSHOTS SEED\n');
    process.exit(2);
  }
  return { outdir, snapshots: parseInt(snaps, 10), seed: parseInt(seed, 10) };
}

function fmtSizes(sizes) {
  return Object.entries(sizes).map(([k, v]) => `${k}=${v}`).join(' ');
}

async function run(spec) {
  const args = parseArgs(process.argv.slice(2));
  if (typeof global.gc !== 'function') {
    process.stderr.write('run node with --expose-gc\n');
    process.exit(2);
  }
  const prog = spec.name || path.basename(process.argv[1], '.js');
  fs.mkdirSync(args.outdir, { recursive: true });

  const rng = makeRng(args.seed, prog);
  const S = spec.stepsPerInterval;
  const W = spec.warmupSteps;
  const tickMs = spec.tickMs || 1000;

  // Offered load: a slow "diurnal" wave plus per-step jitter. The period is
  // 2.3..3.2 intervals, so load at snapshot time rises and falls within any
  // series of 4+ snapshots regardless of the random phase.
  const period = S * (2.3 + 0.9 * rng());
  const phase = rng() * 2 * Math.PI;
  const amp = spec.loadAmplitude == null ? 0.45 : spec.loadAmplitude;
  const jitterRng = rng.fork('load');

  let step = 0;
  let clock = 1_700_000_000_000;
  const ctx = {
    rng,
    seed: args.seed,
    prog,
    now: () => clock,
    get step() { return step; },
    loadAt(n) {
      return 1 + amp * Math.sin((2 * Math.PI * (n - W)) / period + phase);
    },
    load() {
      return Math.max(0.2, this.loadAt(step) + (jitterRng() - 0.5) * 0.1);
    },
  };

  await spec.setup(ctx);

  const runStep = async () => {
    clock += tickMs;
    await spec.step(ctx, step);
    step++;
  };

  const t0 = Date.now();
  for (let k = 0; k < W; k++) await runStep();
  const tWarm = Date.now();

  for (let i = 0; i < args.snapshots; i++) {
    if (i > 0) for (let k = 0; k < S; k++) await runStep();
    if (spec.beforeSnapshot) await spec.beforeSnapshot(ctx);
    global.gc();
    global.gc();
    const sizes = spec.sizes(ctx);
    const heapMB = (process.memoryUsage().heapUsed / 1048576).toFixed(1);
    process.stderr.write(`snap ${i} step=${step} heapUsedMB=${heapMB} | ${fmtSizes(sizes)}\n`);
    const file = path.join(args.outdir, `${prog}-${args.seed}-${i}.heapsnapshot`);
    v8.writeHeapSnapshot(file);
    process.stdout.write(file + '\n');
  }
  process.stderr.write(`done warmup=${tWarm - t0}ms total=${Date.now() - t0}ms\n`);

  if (spec.teardown) {
    await Promise.race([spec.teardown(ctx), new Promise((r) => setTimeout(r, 2000))]);
  }
  process.exit(0);
}

function main(spec) {
  run(spec).catch((err) => {
    process.stderr.write(`FATAL ${err && err.stack || err}\n`);
    process.exit(1);
  });
}

module.exports = { run: main, makeRng };
