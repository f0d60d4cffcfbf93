'use strict';
// API gateway in front of three upstream services (users, orders, billing), all
// real HTTP servers on 127.0.0.1 in this process.  The gateway proxies with
// retries and backoff, has per-upstream circuit breakers and a TTL response cache.
// Planted leak:
//   `billingQueue` -- one usage record per proxied request; the flusher ships at
//                     most 9 records per 10 requests (fast draining: every record is
//                     replaced between snapshots, but the queue grows).
const http = require('http');
const { run, Load } = require('../lib/snap');
const { httpRequest, listen } = require('../lib/client');

const USERS = 40000;

// ---------------------------------------------------------------- upstreams
const usersDb = new Map();         // background
const ordersDb = new Map();        // churn at constant size
const billingLedger = [];          // bounded (splice when > 2000)
let orderSeq = 0;

function makeUpstream(name, failRate, rng, handler) {
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      setTimeout(() => {
        if (rng.chance(failRate)) { res.writeHead(503, { 'retry-after': '0' }); res.end('{"error":"unavailable"}'); return; }
        const out = handler(req, chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : null);
        const body = JSON.stringify(out === undefined ? null : out);
        res.writeHead(out === undefined ? 404 : 200, { 'content-type': 'application/json', 'x-upstream': name });
        res.end(body);
      }, rng.int(3));
    });
  });
}

// ---------------------------------------------------------------- gateway state
const routes = [];                 // background: route table
const inflight = new Map();        // gwReqId -> {route, attempt, start}, fluctuating
const retryQueue = [];             // pending retries, drained by timer (fluctuating)
const responseCache = new Map();   // path -> {body, expires}  TTL
const breakers = {};               // upstream -> {failures: [clock...], open, openedAt}
const latency = {};                // route -> [ms...] trimmed with splice
const billingQueue = [];           // LEAK: usage records
let billingInFlight = 0;
let gwSeq = 0, clock = 0, sinceFlush = 0;
let upstreamAgent, ports = {}, grng;

function breakerFor(name) {
  return breakers[name] || (breakers[name] = { failures: [], open: false, openedAt: 0 });
}

function recordFailure(name) {
  const b = breakerFor(name);
  b.failures.push(clock);
  b.failures = b.failures.filter((t) => clock - t < 100);
  if (b.failures.length > 12) { b.open = true; b.openedAt = clock; }
}

function callUpstream(name, method, path, body) {
  return httpRequest(upstreamAgent, ports[name], method, path, body === undefined ? {} : { body });
}

function proxy(route, req, body, res, attempt) {
  const id = ++gwSeq;
  const b = breakerFor(route.upstream);
  if (b.open && clock - b.openedAt > 30) { b.open = false; b.failures.length = 0; }
  if (b.open) { res.writeHead(503); res.end('{"error":"circuit open"}'); return; }
  inflight.set(id, { route: route.name, attempt, start: Date.now(), path: req.url });
  const t0 = Date.now();
  callUpstream(route.upstream, req.method, route.rewrite(req.url), body).then((r) => {
    inflight.delete(id);
    const lat = latency[route.name] || (latency[route.name] = []);
    lat.push(Date.now() - t0);
    if (lat.length > 300) lat.splice(0, lat.length - 200);
    if (r.status === 503 && attempt < 3) {
      recordFailure(route.upstream);
      retryQueue.push({ route, req, body, res, attempt: attempt + 1, notBefore: Date.now() + 2 * attempt });
      scheduleRetries();
      return;
    }
    if (req.method === 'GET' && r.status === 200 && route.cacheTtl) responseCache.set(req.url, { body: r.body, expires: clock + route.cacheTtl });
    res.writeHead(r.status, { 'content-type': 'application/json' });
    res.end(r.body);
  }, (err) => {
    inflight.delete(id);
    res.writeHead(502); res.end(JSON.stringify({ error: err.message }));
  });
}

let retryTimer = null;
function scheduleRetries() {
  if (retryTimer) return;
  retryTimer = setTimeout(() => {
    retryTimer = null;
    const now = Date.now();
    let n = retryQueue.length;
    while (n-- > 0) {
      const item = retryQueue.shift();
      if (item.notBefore > now) { retryQueue.push(item); continue; }
      proxy(item.route, item.req, item.body, item.res, item.attempt);
    }
    if (retryQueue.length) scheduleRetries();
  }, 2);
}

function flushBilling() {
  // the billing API accepts at most 9 records per call
  const batch = [];
  for (let i = 0; i < 9 && billingQueue.length; i++) batch.push(billingQueue.shift());
  if (!batch.length) return;
  billingInFlight++;
  callUpstream('billing', 'POST', '/usage', { records: batch }).then(
    (r) => { billingInFlight--; if (r.status !== 200) for (const rec of batch) retryBilling(rec); },
    () => { billingInFlight--; });
}
const billingRetries = [];         // stack of records to re-send (push/pop), drained each flush
function retryBilling(rec) { billingRetries.push(rec); }

function gateway(req, res) {
  clock++;
  if (clock % 50 === 0) for (const [k, v] of responseCache) if (v.expires < clock) responseCache.delete(k);
  const route = routes.find((r) => r.method === req.method && r.re.test(req.url));
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (!route) { res.writeHead(404); res.end(); return; }
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    billingQueue.push({ tenant: req.headers['x-tenant'], route: route.name, bytes: req.headers['content-length'] | 0, at: Date.now(), id: 'u' + clock });
    if (++sinceFlush === 10) {
      sinceFlush = 0;
      flushBilling();
      // re-sent records bypass the 9-per-call limit (they are already counted)
      while (billingRetries.length) {
        const rec = billingRetries.pop();
        callUpstream('billing', 'POST', '/usage', { records: [rec] }).catch(() => {});
      }
    }
    const cached = req.method === 'GET' && responseCache.get(req.url);
    if (cached && cached.expires >= clock) { res.writeHead(200, { 'x-cache': 'hit' }); res.end(cached.body); return; }
    proxy(route, req, body, res, 1);
  });
}

// ---------------------------------------------------------------- client
let gwServer, servers = [], clientAgent, load, gwPort;

async function client(rng) {
  const tenant = 't' + rng.int(30);
  const r = rng.next();
  const headers = { 'x-tenant': tenant };
  if (r < 0.4) await httpRequest(clientAgent, gwPort, 'GET', '/api/users/' + rng.int(USERS), { headers });
  else if (r < 0.72) await httpRequest(clientAgent, gwPort, 'GET', '/api/orders/' + (orderSeq - rng.int(15000)), { headers });
  else if (r < 0.85) await httpRequest(clientAgent, gwPort, 'POST', '/api/orders', { headers, body: { user: rng.int(USERS), items: [rng.int(900), rng.int(900)], note: rng.word(rng.int(30)) } });
  else await httpRequest(clientAgent, gwPort, 'GET', '/api/catalog/page/' + rng.int(40), { headers });
}

run({
  prog: 'http_gateway',
  warmup: 10,
  perInterval: 4,
  async setup(rng) {
    const brng = rng.fork('bg');
    for (let i = 0; i < USERS; i++) usersDb.set(i, { id: i, login: brng.word(8), name: brng.word(6) + ' ' + brng.word(9), plan: brng.pick(['free', 'pro', 'team']), flags: { beta: brng.chance(0.2), mfa: brng.chance(0.5) } });
    for (let i = 0; i < 15000; i++) { const id = ++orderSeq; ordersDb.set(id, { id, user: brng.int(USERS), total: brng.int(50000), items: [brng.int(900), brng.int(900)], status: 'open' }); }
    const urng = rng.fork('upstreams');
    servers.push(makeUpstream('users', 0.04, urng, (req) => usersDb.get(Number(req.url.split('/')[2]))));
    servers.push(makeUpstream('orders', 0.06, urng, (req, body) => {
      if (req.method === 'POST') {
        const id = ++orderSeq;
        ordersDb.set(id, { id, user: body.user, total: urng.int(50000), items: body.items, status: 'open', note: body.note });
        ordersDb.delete(id - 15000);                 // archive the oldest: constant size
        return { id };
      }
      if (req.url.startsWith('/catalog')) return { page: req.url, items: Array.from({ length: 10 }, (_, i) => ({ sku: i, price: urng.int(9999) })) };
      return ordersDb.get(Number(req.url.split('/')[2]));
    }));
    servers.push(makeUpstream('billing', 0.03, urng, (req, body) => {
      for (const rec of body.records) billingLedger.push(rec);
      if (billingLedger.length > 2000) billingLedger.splice(0, 1000);
      return { ok: body.records.length };
    }));
    const names = ['users', 'orders', 'billing'];
    for (let i = 0; i < servers.length; i++) ports[names[i]] = await listen(servers[i]);
    upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    routes.push({ name: 'users.get', method: 'GET', re: /^\/api\/users\/\d+$/, upstream: 'users', rewrite: (u) => u.slice(4), cacheTtl: 0 });
    routes.push({ name: 'orders.get', method: 'GET', re: /^\/api\/orders\/-?\d+$/, upstream: 'orders', rewrite: (u) => u.slice(4), cacheTtl: 0 });
    routes.push({ name: 'orders.create', method: 'POST', re: /^\/api\/orders$/, upstream: 'orders', rewrite: (u) => u.slice(4), cacheTtl: 0 });
    routes.push({ name: 'catalog.page', method: 'GET', re: /^\/api\/catalog\/page\/\d+$/, upstream: 'orders', rewrite: (u) => u.slice(4), cacheTtl: 80 });
    // the long tail of the route table (background): legacy versioned routes
    for (let i = 0; i < 3000; i++) {
      const seg = brng.word(6);
      routes.push({ name: `legacy.v${i % 7}.${seg}`, method: brng.pick(['GET', 'PUT', 'DELETE']), re: new RegExp(`^/v${i % 7}/${seg}/(\\w+)$`), upstream: brng.pick(names), rewrite: (u) => u, cacheTtl: brng.int(100), middleware: [brng.word(5), brng.word(7)] });
    }
    grng = rng.fork('gateway');
    gwServer = http.createServer(gateway);
    gwPort = await listen(gwServer);
    clientAgent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    const crng = rng.fork('client');
    load = new Load(10, () => client(crng));
  },
  step: () => load.until(350),
  sizes() {
    return {
      leak: { billingQueue: billingQueue.length },
      noise: { inflight: inflight.size, retryQueue: retryQueue.length, responseCache: responseCache.size, billingLedger: billingLedger.length, billingRetries: billingRetries.length, ordersDb: ordersDb.size, 'latency(total)': Object.values(latency).reduce((a, l) => a + l.length, 0), 'breakers.failures': Object.values(breakers).reduce((a, b) => a + b.failures.length, 0) },
    };
  },
  async teardown() { load.stop(); clientAgent.destroy(); upstreamAgent.destroy(); },
});
