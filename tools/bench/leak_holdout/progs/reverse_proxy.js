'use strict';
// Caching reverse proxy in front of an origin server (both real HTTP servers
// on 127.0.0.1). Byte-bounded LRU response cache with max-age freshness and
// ETag revalidation, request coalescing, negative caching of 404s, and
// idempotency-key handling for POSTs.
const http = require('http');
const { URL } = require('url');
const { run } = require('../lib/snap');
const { request, readBody, listen } = require('../lib/http_client');

let rng;
let now;

// ------------------------------------------------------------------ origin
const originVersions = new Map(); // asset path -> version (bumped on deploys)
const ASSET_EXT = ['js', 'css', 'png', 'svg'];
function assetPath(n) { return `/static/asset${n}.${ASSET_EXT[n % 4]}`; }
let originRng;
const origin = http.createServer(async (req, res) => {
  await readBody(req);
  const url = new URL(req.url, 'http://origin.local');
  const p = url.pathname;
  const respond = () => {
    if (req.method === 'POST') {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ created: true, id: originRng.id(10) }));
      return;
    }
    const m = /^\/api\/items\/(\d+)$/.exec(p);
    if (m && Number(m[1]) > 4000) { res.writeHead(404); res.end('not found'); return; }
    const version = originVersions.get(p) || 1;
    const etag = `"${version}-${p.length}"`;
    if (req.headers['if-none-match'] === etag) { res.writeHead(304, { etag }); res.end(); return; }
    let body;
    let maxAge;
    if (p.startsWith('/static/')) {
      const n = Number(p.replace(/\D/g, '')) || 1;
      body = `/* ${p} v${version} */` + 'x'.repeat(200 + (n * 37) % 2800);
      maxAge = 60 + (n % 10) * 60;
    } else if (p.startsWith('/api/search')) {
      body = JSON.stringify({ q: url.searchParams.get('q'), hits: Array.from({ length: 5 }, (_, k) => ({ id: k, score: k / 10 })) });
      maxAge = 0;
    } else {
      body = JSON.stringify({ id: m ? Number(m[1]) : 0, version, name: `item ${p}`, price: (p.length * 97) % 1000, attrs: { color: 'blue', size: 'M' } });
      maxAge = 5 + (p.length % 4) * 10;
    }
    res.writeHead(200, { 'content-type': 'text/plain', etag, 'cache-control': maxAge ? `max-age=${maxAge}` : 'no-store' });
    res.end(body);
  };
  // search fans out to a slow backend and completes a few seconds later
  if (p.startsWith('/api/search')) heldSearches.push({ due: now() + originRng.range(3, 12) * 2000, respond });
  else setTimeout(respond, originRng.int(3));
});
const heldSearches = [];
function releaseSearches() {
  const t = now();
  for (let i = heldSearches.length - 1; i >= 0; i--) {
    if (heldSearches[i].due <= t) heldSearches.splice(i, 1)[0].respond();
  }
}
origin.keepAliveTimeout = 60000;

// ------------------------------------------------------------------ LRU (bounded by entries and bytes)
class LruCache {
  constructor(maxEntries, maxBytes) {
    this.maxEntries = maxEntries;
    this.maxBytes = maxBytes;
    this.bytes = 0;
    this.map = new Map();
    this.head = null; // most recent
    this.tail = null; // least recent
  }
  get size() { return this.map.size; }
  get(key) {
    const e = this.map.get(key);
    if (!e) return null;
    this.unlink(e);
    this.pushFront(e);
    return e;
  }
  set(key, entry) {
    const old = this.map.get(key);
    if (old) this.remove(old);
    entry.key = key;
    this.map.set(key, entry);
    this.pushFront(entry);
    this.bytes += entry.bytes;
    while ((this.bytes > this.maxBytes || this.map.size > this.maxEntries) && this.tail) this.remove(this.tail);
  }
  remove(e) {
    this.unlink(e);
    this.map.delete(e.key);
    this.bytes -= e.bytes;
  }
  unlink(e) {
    if (e.prev) e.prev.next = e.next; else this.head = e.next;
    if (e.next) e.next.prev = e.prev; else this.tail = e.prev;
    e.prev = e.next = null;
  }
  pushFront(e) {
    e.next = this.head;
    e.prev = null;
    if (this.head) this.head.prev = e;
    this.head = e;
    if (!this.tail) this.tail = e;
  }
}

// ------------------------------------------------------------------ proxy
const cache = new LruCache(2200, 4 * 1024 * 1024);
const negativeCache = new Map();   // key -> expiresAt
const NEGATIVE_TTL_MS = 30000;
const inflight = new Map();        // key -> Promise<upstream response>
const seenRequestIds = new Set();  // idempotency keys of POSTs already forwarded
const clientConns = new Set();
const stats = { hit: 0, miss: 0, revalidated: 0, stale: 0, coalesced: 0, negative: 0, duplicate: 0 };
let originPort;
let upstreamAgent;

function normalizeKey(rawUrl) {
  const u = new URL(rawUrl, 'http://proxy.local');
  u.searchParams.sort();
  return u.pathname + (u.search || '');
}

let searchUpstreamAgent;     // long-running search calls get their own pool
function fetchUpstream(method, path, body, headers) {
  const a = path.startsWith('/api/search') ? searchUpstreamAgent : upstreamAgent;
  return request(a, originPort, method, path, body, headers);
}

function parseMaxAge(cc) {
  const m = /max-age=(\d+)/.exec(cc || '');
  return m ? Number(m[1]) * 1000 : 0;
}

function coalesced(key, fn) {
  let p = inflight.get(key);
  if (p) { stats.coalesced++; return p; }
  p = fn().finally(() => inflight.delete(key));
  inflight.set(key, p);
  return p;
}

async function handleGet(req, key) {
  const neg = negativeCache.get(key);
  if (neg) {
    if (neg > now()) { stats.negative++; return { status: 404, headers: {}, text: 'not found' }; }
    negativeCache.delete(key);
  }
  const e = cache.get(key);
  if (e && e.expiresAt > now()) { stats.hit++; return e; }
  if (e) {
    stats.stale++;
    const up = await coalesced(key, () => fetchUpstream('GET', key, null, { 'if-none-match': e.etag }));
    if (up.status === 304) {
      stats.revalidated++;
      e.expiresAt = now() + parseMaxAge(e.cacheControl);
      return e;
    }
    return store(key, up);
  }
  stats.miss++;
  const up = await coalesced(key, () => fetchUpstream('GET', key));
  return store(key, up);
}

function store(key, up) {
  if (up.status === 404) {
    negativeCache.set(key, now() + NEGATIVE_TTL_MS);
    return up;
  }
  const cc = up.headers['cache-control'];
  const maxAge = parseMaxAge(cc);
  if (up.status !== 200 || maxAge === 0) return up;
  const entry = {
    status: 200, text: up.text, etag: up.headers.etag, cacheControl: cc,
    headers: { 'content-type': up.headers['content-type'], etag: up.headers.etag },
    storedAt: now(), expiresAt: now() + maxAge, bytes: up.text.length + key.length + 200,
    prev: null, next: null, key: null,
  };
  cache.set(key, entry);
  return entry;
}

const proxy = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    let out;
    if (req.method === 'POST') {
      const idem = req.headers['x-request-id'];
      if (idem && seenRequestIds.has(idem)) {
        stats.duplicate++;
        out = { status: 409, headers: {}, text: 'duplicate request' };
      } else {
        if (idem) seenRequestIds.add(idem);
        out = await fetchUpstream('POST', req.url, body);
      }
    } else {
      out = await handleGet(req, normalizeKey(req.url));
    }
    const h = Object.assign({ 'content-length': Buffer.byteLength(out.text) }, out.headers && out.headers.etag ? { etag: out.headers.etag } : {});
    res.writeHead(out.status, h);
    res.end(out.text);
  } catch (err) {
    res.writeHead(502);
    res.end(String(err.message));
  }
});
proxy.keepAliveTimeout = 60000;
proxy.on('connection', (s) => { clientConns.add(s); s.on('close', () => clientConns.delete(s)); });

// ------------------------------------------------------------------ clients
let proxyPort;
let clientAgent;
let searchAgent;
const slowOutstanding = new Set();

function randomGet(r) {
  if (r.chance(0.45)) {
    const n = r.zipf(3000);
    return assetPath(n);
  }
  const id = 1 + r.zipf(4400, 0.8);
  return r.chance(0.3) ? `/api/items/${id}?lang=en&fields=all` : `/api/items/${id}?fields=all&lang=en`;
}

run({
  warmupSteps: 200,
  stepsPerInterval: 50,
  tickMs: 2000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    originRng = rng.fork('origin');
    for (let n = 0; n < 3000; n++) originVersions.set(assetPath(n), 1);
    originPort = await listen(origin);
    proxyPort = await listen(proxy);
    upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 24, maxFreeSockets: 4 });
    searchUpstreamAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 4 });
    clientAgent = new http.Agent({ keepAlive: true, maxSockets: 8, maxFreeSockets: 8 });
    searchAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 2 });
  },
  async step(ctx) {
    const load = ctx.load();
    releaseSearches();
    const jobs = [];
    const n = Math.round(22 * load);
    for (let k = 0; k < n; k++) {
      if (rng.chance(0.08)) {
        // order submissions carry an idempotency key; some clients retry
        const id = `req-${rng.id(12)}`;
        jobs.push(request(clientAgent, proxyPort, 'POST', '/api/orders', { sku: rng.int(4000), qty: 1 }, { 'x-request-id': id }));
        if (rng.chance(0.1)) jobs.push(request(clientAgent, proxyPort, 'POST', '/api/orders', { sku: 1, qty: 1 }, { 'x-request-id': id }));
      } else {
        jobs.push(request(clientAgent, proxyPort, 'GET', randomGet(rng)));
      }
    }
    // slow search requests are not awaited: they stay in flight across steps
    const nSearch = rng.count(1.5 * load);
    for (let k = 0; k < nSearch; k++) {
      const p = request(searchAgent, proxyPort, 'GET', `/api/search?q=${rng.id(4)}`);
      slowOutstanding.add(p);
      p.finally(() => slowOutstanding.delete(p));
    }
    // deploys bump asset versions so revalidation sometimes fetches new bodies
    if (rng.chance(0.2)) { const a = assetPath(rng.zipf(3000)); originVersions.set(a, originVersions.get(a) + 1); }
    await Promise.all(jobs);
    for (const [k, exp] of negativeCache) if (exp <= now()) negativeCache.delete(k);
  },
  sizes() {
    return {
      seenRequestIds: seenRequestIds.size,
      cache: cache.size,
      cacheKB: Math.round(cache.bytes / 1024),
      negativeCache: negativeCache.size,
      inflight: inflight.size,
      clientConns: clientConns.size,
      slowOutstanding: slowOutstanding.size,
    };
  },
  async teardown() {
    clientAgent.destroy(); searchAgent.destroy(); upstreamAgent.destroy(); searchUpstreamAgent.destroy();
    proxy.closeAllConnections(); origin.closeAllConnections();
    proxy.close(); origin.close();
  },
});
