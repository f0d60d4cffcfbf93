'use strict';
// Metrics ingestion server (statsd-over-HTTP style).  Agents POST batches of
// points; the aggregator rolls them into per-series ring buffers and flushes
// windows to a (simulated) time-series store.  Dashboards poll /query and
// long-wait on /watch for the next flush.
// NO planted leak: only fluctuating, bounded, churning and grow-then-flat state.
const http = require('http');
const EventEmitter = require('events');
const { URL } = require('url');
const { run, Load } = require('../lib/snap');
const { httpRequest, listen } = require('../lib/client');

const METRICS = ['http.requests', 'http.latency', 'db.query', 'db.pool.wait', 'cache.hit', 'cache.miss', 'queue.depth', 'gc.pause', 'cpu.user', 'mem.rss'];
const HOSTS = 40;       // metric key space = METRICS x HOSTS = 400 series

class Series {
  constructor(key, name, host) {
    this.key = key; this.name = name; this.host = host;
    this.ring = new Array(60).fill(0); this.pos = 0; this.count = 0; this.created = Date.now();
  }
  add(v) { this.ring[this.pos] = v; this.pos = (this.pos + 1) % this.ring.length; this.count++; }
}

class Aggregator extends EventEmitter {
  constructor() {
    super();
    this.series = new Map();        // grow-then-flat (hosts come online over time)
    this.window = {};               // churn: replaced with {} on every flush
    this.flushQueue = [];           // fluctuating: windows waiting for the TSDB writer
    this.topK = [];                 // bounded: rebuilt with sort/slice
    this.activeAlerts = new Set();  // fluctuating
    this.pointsSinceFlush = 0;
  }
  ingest(p) {
    const key = p.name + '|' + p.host;
    let s = this.series.get(key);
    if (!s) { s = new Series(key, p.name, p.host); this.series.set(key, s); }
    s.add(p.value);
    const w = this.window[key] || (this.window[key] = { sum: 0, count: 0, min: Infinity, max: -Infinity });
    w.sum += p.value; w.count++; if (p.value < w.min) w.min = p.value; if (p.value > w.max) w.max = p.value;
    const alertKey = key + ':high';
    if (p.value > 950) this.activeAlerts.add(alertKey);
    else if (p.value < 700 && this.activeAlerts.has(alertKey)) this.activeAlerts.delete(alertKey);
    if (++this.pointsSinceFlush >= this.flushEvery) this.flush();
  }
  flush() {
    const w = this.window;
    this.window = {};
    this.pointsSinceFlush = 0;
    this.flushQueue.push({ at: Date.now(), window: w });
    this.topK = Object.entries(w).sort((a, b) => b[1].count - a[1].count).slice(0, 20).map(([k, v]) => ({ k, n: v.count }));
    this.emit('flush', this.topK);
  }
}

// ---------------------------------------------------------------- server state
const agg = new Aggregator();
agg.setMaxListeners(100);
const pendingBatches = new Map();   // batchId -> {points, at}   fluctuating
const clientsSeen = new Map();      // agentId -> lastSeen (TTL)
const dashboards = {};              // background: saved dashboards
let batchSeq = 0, clock = 0, srng;

function tsdbWriter() {
  // the writer gets a random share of time per flush: drains 0..3 windows
  const n = srng.pick([0, 0, 1, 1, 1, 2, 3]);
  for (let i = 0; i < n && agg.flushQueue.length; i++) agg.flushQueue.shift();
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function handle(req, res, body) {
  clock++;
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/ingest') {
    const msg = JSON.parse(body);
    clientsSeen.set(msg.agent, clock);
    if (clock % 40 === 0) for (const [a, t] of clientsSeen) if (clock - t > 150) clientsSeen.delete(a);
    const id = ++batchSeq;
    pendingBatches.set(id, { points: msg.points, at: Date.now() });
    setTimeout(() => {
      const b = pendingBatches.get(id);
      pendingBatches.delete(id);
      for (const p of b.points) agg.ingest(p);
    }, srng.int(6));
    return send(res, 202, { id });
  }
  if (url.pathname === '/query') {
    const s = agg.series.get(url.searchParams.get('key'));
    return send(res, s ? 200 : 404, s ? { key: s.key, ring: s.ring, count: s.count } : { error: 'no series' });
  }
  if (url.pathname === '/watch') {
    const onFlush = (top) => { clearTimeout(t); send(res, 200, { top }); };
    const t = setTimeout(() => { agg.removeListener('flush', onFlush); send(res, 204, {}); }, 20);
    agg.once('flush', onFlush);
    return;
  }
  if (url.pathname === '/dashboards') {
    return send(res, 200, dashboards[url.searchParams.get('id')] || null);
  }
  send(res, 404, {});
}

// ---------------------------------------------------------------- client
let server, agent, load, port, sent = 0;
async function client(rng) {
  sent++;
  const r = rng.next();
  if (r < 0.6) {
    // hosts come online over the first few thousand requests (series grow, then flat)
    const live = Math.min(HOSTS, 8 + Math.floor(sent / 120));
    const host = 'host' + rng.int(live);
    const points = [];
    const n = 5 + rng.int(30);
    for (let i = 0; i < n; i++) points.push({ name: rng.pick(METRICS), host, value: Math.round(rng.next() * 1000) });
    await httpRequest(agent, port, 'POST', '/ingest', { body: { agent: host + '/' + rng.int(8), points } });
  } else if (r < 0.85) {
    await httpRequest(agent, port, 'GET', '/query?key=' + encodeURIComponent(rng.pick(METRICS) + '|host' + rng.int(HOSTS)));
  } else if (r < 0.93) {
    await httpRequest(agent, port, 'GET', '/watch');
  } else {
    await httpRequest(agent, port, 'GET', '/dashboards?id=d' + rng.int(9000));
  }
}

run({
  prog: 'http_metrics',
  warmup: 8,
  perInterval: 4,
  async setup(rng) {
    srng = rng.fork('server');
    agg.flushEvery = 600;
    const brng = rng.fork('bg');
    for (let i = 0; i < 9000; i++) {
      const panels = [];
      for (let j = 0; j < 6; j++) panels.push({ title: brng.word(10), query: `avg(${brng.pick(METRICS)}{host="host${brng.int(HOSTS)}"})`, viz: brng.pick(['line', 'bar', 'heat']), thresholds: [brng.int(500), 500 + brng.int(500)] });
      dashboards['d' + i] = { id: 'd' + i, owner: brng.word(7), title: brng.word(14), panels, tags: [brng.word(4), brng.word(5)] };
    }
    server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
    });
    port = await listen(server);
    agg.on('flush', tsdbWriter);
    agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const crng = rng.fork('client');
    load = new Load(8, () => client(crng));
  },
  step: () => load.until(350),
  sizes() {
    return {
      leak: {},
      noise: { 'agg.series': agg.series.size, 'agg.window': Object.keys(agg.window).length, 'agg.flushQueue': agg.flushQueue.length, 'agg.activeAlerts': agg.activeAlerts.size, 'agg.topK': agg.topK.length, 'flush(watchers)': agg.listenerCount('flush') - 1, pendingBatches: pendingBatches.size, clientsSeen: clientsSeen.size, dashboards: Object.keys(dashboards).length },
    };
  },
  async teardown() { load.stop(); agent.destroy(); },
});
