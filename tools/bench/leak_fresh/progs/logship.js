'use strict';
// Log shipper: applications POST batches of log lines to the shipper, which
// de-duplicates them, buffers them, and ships them in batches over a
// keep-alive HTTP connection to a collector (a second server in the same
// process). The collector refuses some batches (503); refused batches are
// retried with a bounded retry queue (oldest dropped when full).
//
// No planted leaks: every structure here is bounded, swapped out or expires.
const { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'logship';
const FLUSH_LINES = 300;
const RETRY_CAP = 40;
const SOURCES = 40;
const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'tyrell', 'cyberdyne', 'wonka', 'soylent', 'oscorp'];

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();

  // ---- collector (downstream) ---------------------------------------------
  const tenantTotals = new Map();               // tenant -> {lines, bytes}; 12 tenants
  const collectorRecent = new Array(128).fill(null);
  let collectorPos = 0;
  const collector = await serve((req, url, body) => {
    if (req.method !== 'POST' || url.pathname !== '/ingest') return { status: 404, body: null };
    if (hash32(body.batchId + ':' + body.attempt) % 10 === 0) return { status: 503, body: { error: 'busy' } };
    for (const l of body.lines) {
      let t = tenantTotals.get(l.tenant);
      if (!t) { t = { lines: 0, bytes: 0 }; tenantTotals.set(l.tenant, t); }
      t.lines++; t.bytes += l.msg.length;
    }
    collectorRecent[collectorPos] = { batchId: body.batchId, n: body.lines.length };
    collectorPos = (collectorPos + 1) % collectorRecent.length;
    return { ok: true };
  });
  const upstream = makeClient(collector, 4);

  // ---- shipper ------------------------------------------------------------
  let pendingLines = [];                 // swapped out on each flush
  const inflightBatches = new Map();     // batchId -> batch, until acked or refused
  const retryQueue = [];                 // refused batches, at most RETRY_CAP
  const sourceOffsets = new Map();       // source -> {offset, lines}; 40 sources
  let dedupeCurrent = new Set();         // line hashes of this 10 s generation
  let dedupePrevious = new Set();        // ... and of the previous one
  let nextBatch = 1;
  const stats = { received: 0, duplicates: 0, shipped: 0, refused: 0, dropped: 0, batches: 0 };

  function send(batch) {
    batch.attempt++;
    inflightBatches.set(batch.id, batch);
    return upstream.request('POST', '/ingest', { batchId: batch.id, attempt: batch.attempt, lines: batch.lines }).then((res) => {
      inflightBatches.delete(batch.id);
      if (res.status === 200) { stats.shipped += batch.lines.length; return; }
      stats.refused++;
      batch.retryAt = clock.now() + 1000 * Math.min(8, 2 ** batch.attempt);
      retryQueue.push(batch);
      if (retryQueue.length > RETRY_CAP) { const lost = retryQueue.shift(); stats.dropped += lost.lines.length; }
    });
  }

  function flush() {
    if (!pendingLines.length) return null;
    const lines = pendingLines;
    pendingLines = [];
    stats.batches++;
    return send({ id: 'b' + (nextBatch++).toString(36), lines, attempt: 0, retryAt: 0 });
  }

  clock.every(2000, () => { flush(); });
  clock.every(1000, (now) => {
    let n = 0;
    for (let i = 0; i < retryQueue.length && n < 6;) {
      if (retryQueue[i].retryAt <= now) { send(retryQueue.splice(i, 1)[0]); n++; } else i++;
    }
  });
  clock.every(10000, () => { dedupePrevious = dedupeCurrent; dedupeCurrent = new Set(); });

  const shipper = await serve((req, url, body) => {
    if (req.method === 'POST' && url.pathname === '/logs') {
      const src = String(body.source);
      let off = sourceOffsets.get(src);
      if (!off) { off = { offset: 0, lines: 0 }; sourceOffsets.set(src, off); }
      let accepted = 0;
      for (const line of body.lines) {
        const h = hash32(src + '|' + line.seq);
        off.offset = Math.max(off.offset, line.seq);
        if (dedupeCurrent.has(h) || dedupePrevious.has(h)) { stats.duplicates++; continue; }
        dedupeCurrent.add(h);
        pendingLines.push({ tenant: body.tenant, source: src, level: line.level, msg: line.msg, ts: clock.now() });
        accepted++;
      }
      off.lines += accepted;
      stats.received += accepted;
      if (pendingLines.length >= FLUSH_LINES) flush();
      return { status: 202, body: { accepted } };
    }
    if (req.method === 'GET' && url.pathname === '/status') {
      return { ...stats, pending: pendingLines.length, inflight: inflightBatches.size, retrying: retryQueue.length };
    }
    return { status: 404, body: { error: 'no route' } };
  });
  const apps = makeClient(shipper, 10);
  const level = waveFactory(rng, 2, 16, 35);
  const seqBySource = new Array(SOURCES).fill(0);
  const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
  const MSGS = ['request served', 'cache miss', 'retrying upstream', 'user signed in', 'slow query', 'job finished', 'connection reset', 'payload too large'];

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      if (rng.chance(0.02)) { reqs.push(apps.request('GET', '/status')); continue; }
      const si = rng.int(SOURCES);
      const lines = [];
      const m = rng.range(5, 40);
      // agents re-send the tail of their previous batch now and then
      if (rng.chance(0.2)) seqBySource[si] = Math.max(0, seqBySource[si] - rng.range(1, 5));
      for (let j = 0; j < m; j++) {
        lines.push({ seq: ++seqBySource[si], level: rng.pick(LEVELS), msg: `${rng.pick(MSGS)} id=${rng.hex(8)} dur=${rng.int(900)}ms` });
      }
      reqs.push(apps.request('POST', '/logs', { source: 'host' + (si % 10) + ':/var/log/app' + si + '.log', tenant: TENANTS[si % TENANTS.length], lines }));
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [],
    healthy: [
      ['pendingLines', () => pendingLines.length],
      ['inflightBatches', () => inflightBatches.size],
      ['retryQueue', () => retryQueue.length],
      ['sourceOffsets', () => sourceOffsets.size],
      ['dedupeCurrent', () => dedupeCurrent.size],
      ['tenantTotals', () => tenantTotals.size],
    ],
    shutdown: async () => { if (process.env.LF_DEBUG) console.error(stats); apps.close(); upstream.close(); shipper.close(); collector.close(); },
  });
});
