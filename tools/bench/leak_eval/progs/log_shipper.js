'use strict';
// Log shipper agent: tails log files (simulated), parses and classifies lines,
// batches them and ships batches to a remote collector that sometimes fails.
// Planted leaks:
//   `backlog`      -- array queue of lines from failed shipments; the retry pump
//                     shifts far fewer lines than failures push (slowly draining).
//   `fingerprints` -- Map held only in the closure of the error classifier; the
//                     normalizer strips digits but not hex ids, so keys keep coming.
const { run } = require('../lib/snap');

const SERVICES = ['api', 'auth', 'billing', 'search', 'worker', 'cron', 'edge', 'db-proxy'];
const FORMATS = ['json', 'logfmt', 'nginx', 'syslog', 'apache', 'klog'];

const classify = (() => {
  let fingerprints = new Map();
  function classify(rec) {
    if (rec.level !== 'ERROR') return null;
    const fp = rec.msg.replace(/\d+/g, '#');        // BUG: hex ids survive normalization
    let e = fingerprints.get(fp);
    if (!e) { e = { fp, count: 0, first: rec.ts, sample: rec.msg, source: rec.source }; fingerprints.set(fp, e); }
    e.count++;
    return e;
  }
  classify.stats = () => ({ distinct: fingerprints.size });   // used by /debug/vars
  return classify;
})();

// ---------------------------------------------------------------- agent state
const tails = {};                     // path -> tailer state; deleted on rotation
let batch = [];                       // current batch; reset with length = 0 after cloning
const inflight = new Map();           // shipmentId -> {lines, sentAt}
const backlog = [];                   // LEAK: lines awaiting re-shipment
const ring = new Array(1000); let ringPos = 0;     // recent lines for the debug endpoint
const levelCounts = new Map();        // level -> count (bounded)
const parsers = {};                   // format -> parser (bounded, lazily built)
let sampledCur = new Set(), sampledPrev = new Set();   // trace sampling, rotated generations
const sourceWindows = new Map();      // source -> [ticks] (filter-rebuilt), per-source throttle
const geoDb = new Map();              // background: ip prefix -> location
let clock = 0, shipSeq = 0, fileSeq = 0, rng;

function parserFor(fmt) {
  return parsers[fmt] || (parsers[fmt] = { fmt, re: new RegExp('^(\\S+) (\\w+) (.*)$'), parsed: 0 });
}

function openTail(svc) {
  const path = `/var/log/${svc}/${svc}.${++fileSeq}.log`;
  tails[path] = { path, svc, fmt: rng.pick(FORMATS), offset: 0, partial: '', multiline: [], rotateAt: 200 + rng.int(600) };
}

function makeLine(t) {
  const r = rng.next();
  const ts = 1700000000 + clock;
  if (r < 0.7) return `${ts} INFO ${t.svc} handled request ${rng.int(99999)} in ${rng.int(900)}ms`;
  if (r < 0.9) return `${ts} WARN ${t.svc} slow query on shard ${rng.int(32)} took ${rng.int(5000)}ms`;
  const e = rng.next();
  if (e < 0.6) return `${ts} ERROR ${t.svc} timeout calling ${rng.pick(SERVICES)} after ${rng.int(30000)}ms`;
  if (e < 0.95) return `${ts} ERROR ${t.svc} upstream ${rng.pick(SERVICES)} returned ${rng.pick([500, 502, 503, 504])}`;
  return `${ts} ERROR ${t.svc} unhandled rejection in job ${rng.hex(12)}`;
}

function ingest(t, line) {
  const p = parserFor(t.fmt);
  const m = p.re.exec(line);
  p.parsed++;
  const rec = { ts: Number(m[1]), level: m[2], msg: m[3], source: t.path };
  levelCounts.set(rec.level, (levelCounts.get(rec.level) || 0) + 1);
  ring[ringPos] = line; ringPos = (ringPos + 1) % ring.length;
  const fp = classify(rec);
  if (fp && fp.count === 1) rec.firstOfKind = true;
  if (rng.chance(0.02)) sampledCur.add(rng.hex(16));
  const w = (sourceWindows.get(t.path) || []).filter((x) => clock - x < 5);
  if (w.length > 12 && rec.level === 'INFO') { sourceWindows.set(t.path, w); return; }   // throttle chatty sources
  w.push(clock);
  sourceWindows.set(t.path, w);
  batch.push(rec);
}

function flush() {
  const lines = batch.slice();
  batch.length = 0;
  const id = ++shipSeq;
  inflight.set(id, { lines, sentAt: clock, bytes: lines.reduce((a, l) => a + l.msg.length, 0) });
}

function tick() {
  clock++;
  // each tailer reads a random number of lines; multi-line stack traces are glued
  for (const path of Object.keys(tails)) {
    const t = tails[path];
    const n = rng.int(3);
    for (let i = 0; i < n; i++) {
      const line = makeLine(t);
      if (rng.chance(0.05)) { t.multiline.push(line); continue; }
      if (t.multiline.length) { for (const l of t.multiline) ingest(t, l); t.multiline = []; }
      ingest(t, line);
      t.offset += line.length + 1;
    }
    if (t.offset > t.rotateAt * 60) { delete tails[path]; sourceWindows.delete(path); openTail(t.svc); }
  }
  // occasionally a service scales out/in (number of tailed files fluctuates)
  if (rng.chance(0.05) && Object.keys(tails).length < 20) openTail(rng.pick(SERVICES));
  if (rng.chance(0.05)) { const ks = Object.keys(tails); if (ks.length > 8) { const k = rng.pick(ks); delete tails[k]; sourceWindows.delete(k); } }
  if (batch.length >= 40 + rng.int(40)) flush();
  // collector acks / failures
  for (const [id, s] of inflight) {
    if (clock - s.sentAt < 1 + rng.int(4)) continue;
    inflight.delete(id);
    // the collector throttles individual records; those go back to the backlog
    for (const l of s.lines) if (rng.chance(0.015)) backlog.push(l);
  }
  // retry pump: one backlog line rides along with every 20th tick
  if (clock % 20 === 0 && backlog.length) batch.push(backlog.shift());
  if (clock % 70 === 0) { sampledPrev = sampledCur; sampledCur = new Set(); }
}

run({
  prog: 'log_shipper',
  warmup: 8,
  perInterval: 4,
  setup(r) {
    rng = r;
    const brng = r.fork('bg');
    for (let i = 0; i < 160000; i++) geoDb.set(`${brng.int(224)}.${brng.int(256)}.${brng.int(256)}`, { cc: brng.pick(['US', 'DE', 'JP', 'BR', 'IN', 'FR']), city: brng.word(8), asn: brng.int(65000) });
    for (const s of SERVICES) { openTail(s); openTail(s); }
  },
  step() { for (let i = 0; i < 250; i++) tick(); },
  sizes() {
    return {
      leak: { backlog: backlog.length, fingerprints: classify.stats().distinct },
      noise: { tails: Object.keys(tails).length, batch: batch.length, inflight: inflight.size, sourceWindows: sourceWindows.size, sampledCur: sampledCur.size, levelCounts: levelCounts.size, parsers: Object.keys(parsers).length, geoDb: geoDb.size },
    };
  },
});
