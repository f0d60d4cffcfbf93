'use strict';
// Metrics aggregator: agents POST batches of points (name, host tags, value,
// optional trace id); the aggregator keeps a one-minute raw window per
// series, rolls it up into a fixed ring of 10-second buckets, and serves
// queries and its own health endpoint.
//
// Planted leaks:
//   latencySamples  the ingest timer closure keeps every request duration
//                   to compute a p99 and never trims them             - fast
//   exemplars       each series keeps trace exemplars for outliers; the
//                   list was meant to hold the last few, but nothing
//                   trims it: ~320 arrays that each grow a little      - per-series, slow each
const { Rng, VirtualClock, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'metrics';
const METRIC_NAMES = [];
for (const sys of ['cpu', 'mem', 'disk', 'net', 'http', 'db', 'queue', 'cache']) {
  for (const m of ['usage', 'errors', 'latency', 'count', 'saturation']) METRIC_NAMES.push(sys + '.' + m);
}
const HOSTS = ['web-1', 'web-2', 'web-3', 'api-1', 'api-2', 'worker-1', 'worker-2', 'db-1'];
const WINDOW_MS = 60000;
const RING = 30;

class Series {
  constructor(name, host) {
    this.name = name;
    this.host = host;
    this.window = [];                          // raw points of the last minute, replaced on roll-up
    this.rollup = new Float64Array(RING * 3);  // ring of [count, sum, max]
    this.ringPos = 0;
    this.exemplars = [];                       // LEAK: never trimmed
    this.last = 0;
  }
  add(p) {
    this.window.push({ ts: p.ts, value: p.value });
    this.last = p.value;
    if (p.traceId && p.value > 40) this.exemplars.push({ traceId: p.traceId, value: p.value, ts: p.ts });
  }
  roll(now) {
    const base = this.ringPos * 3;
    let count = 0, sum = 0, max = -Infinity;
    for (const pt of this.window) if (now - pt.ts < 10000) { count++; sum += pt.value; if (pt.value > max) max = pt.value; }
    this.rollup[base] = count; this.rollup[base + 1] = sum; this.rollup[base + 2] = count ? max : 0;
    this.ringPos = (this.ringPos + 1) % RING;
    this.window = this.window.filter((pt) => now - pt.ts < WINDOW_MS);
  }
  summary() {
    let count = 0, sum = 0, max = 0;
    for (let i = 0; i < RING; i++) { count += this.rollup[i * 3]; sum += this.rollup[i * 3 + 1]; max = Math.max(max, this.rollup[i * 3 + 2]); }
    return { name: this.name, host: this.host, count, mean: count ? sum / count : 0, max, last: this.last };
  }
}

function makeIngestTimer() {
  const latencySamples = [];   // LEAK (captured by the closures below)
  return {
    record(ms) { latencySamples.push(ms); },
    p99() {
      if (!latencySamples.length) return 0;
      const recent = latencySamples.slice(-2000).sort((a, b) => a - b);
      return recent[Math.floor(recent.length * 0.99)];
    },
    count() { return latencySamples.length; },
  };
}

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const seriesIndex = new Map();   // bounded: 40 names x 8 hosts
  let flushBuffer = [];            // points waiting for the downstream flush, swapped out each flush
  const ingestTimer = makeIngestTimer();
  const stats = { batches: 0, points: 0, flushed: 0, queries: 0 };

  function seriesFor(name, host) {
    const key = name + '|' + host;
    let s = seriesIndex.get(key);
    if (!s) { s = new Series(name, host); seriesIndex.set(key, s); }
    return s;
  }
  clock.every(10000, (now) => { for (const s of seriesIndex.values()) s.roll(now); });
  clock.every(2000, () => {
    const out = flushBuffer;
    flushBuffer = [];
    let bytes = 0;
    for (const p of out) bytes += p.name.length + 16;
    stats.flushed += out.length;
    return bytes;
  });

  const server = await serve((req, url, body) => {
    if (req.method === 'POST' && url.pathname === '/ingest') {
      const t0 = process.hrtime.bigint();
      const pts = (body && body.points) || [];
      for (const p of pts) {
        const s = seriesFor(String(p.name), String(p.host));
        const point = { name: s.name, ts: clock.now(), value: +p.value, traceId: p.traceId || null };
        s.add(point);
        flushBuffer.push(point);
      }
      stats.batches++; stats.points += pts.length;
      ingestTimer.record(Number(process.hrtime.bigint() - t0) / 1e6);
      return { status: 202, body: { accepted: pts.length } };
    }
    if (req.method === 'GET' && url.pathname === '/query') {
      stats.queries++;
      const name = url.searchParams.get('name');
      const out = [];
      for (const h of HOSTS) { const s = seriesIndex.get(name + '|' + h); if (s) out.push(s.summary()); }
      return { series: out };
    }
    if (req.method === 'GET' && url.pathname === '/health') {
      return { ...stats, series: seriesIndex.size, ingestP99Ms: ingestTimer.p99(), pendingFlush: flushBuffer.length };
    }
    return { status: 404, body: { error: 'no route' } };
  });
  const client = makeClient(server, 10);
  const level = waveFactory(rng, 2, 14, 19);

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      const r = rng.float();
      if (r < 0.8) {
        const host = rng.pick(HOSTS);
        const points = [];
        const m = rng.range(4, 24);
        for (let j = 0; j < m; j++) {
          const name = METRIC_NAMES[rng.int(METRIC_NAMES.length)];
          const value = Math.round(rng.float() * rng.float() * 100 + (name.endsWith('usage') ? 20 : 0));
          points.push({ name, host, value, traceId: rng.chance(0.1) ? rng.hex(16) : undefined });
        }
        reqs.push(client.request('POST', '/ingest', { points }));
      } else if (r < 0.98) {
        reqs.push(client.request('GET', '/query?name=' + encodeURIComponent(rng.pick(METRIC_NAMES))));
      } else {
        reqs.push(client.request('GET', '/health'));
      }
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  const exemplarTotal = () => { let n = 0; for (const s of seriesIndex.values()) n += s.exemplars.length; return n; };
  const windowTotal = () => { let n = 0; for (const s of seriesIndex.values()) n += s.window.length; return n; };
  await run({
    prog: PROG, args, warmup: 300, interval: 200, step,
    leaks: [
      ['latencySamples', () => ingestTimer.count()],
      ['exemplars', exemplarTotal],
    ],
    healthy: [
      ['seriesIndex', () => seriesIndex.size],
      ['window', windowTotal],
      ['flushBuffer', () => flushBuffer.length],
    ],
    shutdown: async () => { client.close(); server.close(); },
  });
});
