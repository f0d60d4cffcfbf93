'use strict';
// Product catalog REST API with response caching.
// Planted leak: `memo` -- search results memoized by full request URL, never evicted.
const http = require('http');
const { URL } = require('url');
const { run, Load } = require('../lib/snap');
const { httpRequest, listen } = require('../lib/client');

const WORDS = ('red blue green black white wool cotton linen silk denim shirt jacket coat boot shoe sock hat scarf glove belt ' +
  'bag wallet watch ring lamp chair table desk shelf rug mug plate bowl knife fork spoon pan pot kettle towel pillow ' +
  'blanket sheet candle frame mirror clock vase basket box jar bottle cup glass tray stand hook rail brush comb soap').split(' ');
const CATEGORIES = ['apparel', 'home', 'kitchen', 'garden', 'toys', 'sports', 'books', 'office', 'beauty', 'tools', 'auto', 'pets'];
const REGIONS = 300; // stock-by-region key space

// ---------------------------------------------------------------- server state
const catalog = new Map();          // id -> product (background data)
const byCategory = {};              // category -> [ids]
class LruCache {
  constructor(capacity) { this.capacity = capacity; this.entries = new Map(); this.hits = 0; this.misses = 0; }
  get(key) {
    const v = this.entries.get(key);
    if (v === undefined) { this.misses++; return undefined; }
    this.entries.delete(key); this.entries.set(key, v); this.hits++;
    return v;
  }
  set(key, value) {
    if (this.entries.has(key)) this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value);
  }
}
const renderCache = new LruCache(250);      // bounded: /products/:id bodies
const regionStock = new Map();              // grow-then-flat: region -> stock summary
const memo = new Map();                     // LEAK: url -> search result body
const inflight = new Map();                 // fluctuating: reqId -> request info
const buckets = {};                         // rate limiter: clientId -> {tokens,last}
const carts = {};                           // clientId -> [line items], fluctuating
const latencyRing = new Array(512).fill(0); let ringPos = 0;
let analyticsQueue = [];                    // batch, flushed with `= []`
const shippedBatches = [];                  // bounded history of last batches (shift)
let reqSeq = 0;
let regionHorizon = 40;                     // how many regions are live (grows to REGIONS)

function buildCatalog(rng) {
  for (let id = 0; id < 14000; id++) {
    const cat = CATEGORIES[id % CATEGORIES.length];
    const name = `${rng.pick(WORDS)} ${rng.pick(WORDS)} ${rng.pick(WORDS)}`;
    const p = {
      id, sku: 'SKU-' + rng.hex(10), name, category: cat,
      description: `The ${name} is made of ${rng.pick(WORDS)} and ${rng.pick(WORDS)}; ` + rng.word(40 + rng.int(60)),
      price: Math.round(rng.next() * 20000) / 100, stock: rng.int(500),
      tags: [rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS)],
      reviews: [],
    };
    const nr = rng.int(4);
    for (let r = 0; r < nr; r++) p.reviews.push({ user: 'u' + rng.int(10000), stars: 1 + rng.int(5), text: rng.word(30 + rng.int(40)) });
    catalog.set(id, p);
    (byCategory[cat] || (byCategory[cat] = [])).push(id);
  }
}

function takeToken(client) {
  const now = Date.now();
  let b = buckets[client];
  if (!b) b = buckets[client] = { tokens: 50, last: now };
  b.tokens = Math.min(50, b.tokens + (now - b.last) / 10);
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

function search(q, page) {
  const terms = q.split(' ');
  const hits = [];
  for (const p of catalog.values()) {
    if (terms.every((t) => p.name.includes(t) || p.tags.includes(t))) hits.push(p);
    if (hits.length >= 200) break;
  }
  return { q, page, total: hits.length, items: hits.slice((page - 1) * 5, page * 5).map((p) => ({ id: p.id, name: p.name, price: p.price })) };
}

function handle(req, res, body, srng) {
  const url = new URL(req.url, 'http://x');
  const client = req.headers['x-client'] || 'anon';
  if (!takeToken(client)) { res.writeHead(429); res.end(); return; }
  const parts = url.pathname.split('/').filter(Boolean);
  let out;
  if (parts[0] === 'products') {
    const id = Number(parts[1]);
    out = renderCache.get(id);
    if (out === undefined) {
      const p = catalog.get(id);
      if (!p) { res.writeHead(404); res.end(); return; }
      out = JSON.stringify(p);
      renderCache.set(id, out);
    }
  } else if (parts[0] === 'category') {
    const ids = byCategory[parts[1]] || [];
    const off = Number(url.searchParams.get('offset') || 0);
    out = JSON.stringify(ids.slice(off, off + 20).map((id) => catalog.get(id).name));
  } else if (parts[0] === 'search') {
    const key = req.url;
    out = memo.get(key);
    if (out === undefined) {
      out = JSON.stringify(search(url.searchParams.get('q') || '', Number(url.searchParams.get('page') || 1)));
      memo.set(key, out);
    }
  } else if (parts[0] === 'stock') {
    const region = Number(parts[1]);
    let s = regionStock.get(region);
    if (!s) {
      s = { region, updated: Date.now(), levels: Array.from({ length: 16 }, () => srng.int(100)) };
      regionStock.set(region, s);
    }
    out = JSON.stringify(s);
  } else if (parts[0] === 'cart') {
    const cart = carts[client] || (carts[client] = []);
    const msg = body ? JSON.parse(body) : {};
    if (msg.op === 'add') cart.push({ id: msg.id, qty: msg.qty, added: Date.now() });
    else if (msg.op === 'remove' && cart.length) cart.splice(srng.int(cart.length), 1);
    else if (msg.op === 'checkout') { delete carts[client]; }
    out = JSON.stringify({ items: cart.length });
  } else {
    res.writeHead(404); res.end(); return;
  }
  analyticsQueue.push({ client, path: url.pathname, t: Date.now() });
  if (analyticsQueue.length >= 40 + srng.int(40)) {
    shippedBatches.push({ n: analyticsQueue.length, first: analyticsQueue[0].t });
    if (shippedBatches.length > 20) shippedBatches.shift();
    analyticsQueue = [];
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(out);
}

// ---------------------------------------------------------------- client side
let server, agent, load, port;
const clientCarts = new Map(); // client-side view: client -> cart size

let sent = 0;
async function oneRequest(rng) {
  sent++;
  const client = 'c' + rng.int(48);
  const r = rng.next();
  const headers = { 'x-client': client };
  if (r < 0.55) {
    await httpRequest(agent, port, 'GET', '/products/' + Math.floor(Math.abs(rng.next() + rng.next() - 1) * 500), { headers });
  } else if (r < 0.67) {
    await httpRequest(agent, port, 'GET', `/category/${rng.pick(CATEGORIES)}?offset=${rng.int(20) * 20}`, { headers });
  } else if (r < 0.73) {
    const q = `${rng.pick(WORDS)} ${rng.pick(WORDS)}`;
    await httpRequest(agent, port, 'GET', `/search?q=${encodeURIComponent(q)}&page=${1 + rng.int(3)}`, { headers });
  } else if (r < 0.85) {
    // new regions come online during the first few thousand requests
    const horizon = Math.min(REGIONS, 40 + Math.floor(sent / 16));
    const region = horizon > regionHorizon ? regionHorizon++ : rng.int(regionHorizon);
    await httpRequest(agent, port, 'GET', '/stock/' + region, { headers });
  } else {
    const n = clientCarts.get(client) || 0;
    const op = rng.chance(Math.min(0.85, n * 0.17)) ? (rng.chance(0.12) ? 'checkout' : 'remove') : 'add';
    await httpRequest(agent, port, 'POST', '/cart', { headers, body: { op, id: rng.int(14000), qty: 1 + rng.int(3) } });
    clientCarts.set(client, op === 'add' ? n + 1 : op === 'remove' ? n - 1 : 0);
  }
}

run({
  prog: 'http_api_cache',
  warmup: 6,
  perInterval: 4,
  async setup(rng) {
    buildCatalog(rng.fork('catalog'));
    const srng = rng.fork('server');
    server = http.createServer((req, res) => {
      const id = ++reqSeq;
      const t0 = process.hrtime.bigint();
      inflight.set(id, { url: req.url, method: req.method, start: Date.now(), client: req.headers['x-client'] });
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        setTimeout(() => {
          handle(req, res, chunks.length ? Buffer.concat(chunks).toString() : '', srng);
          inflight.delete(id);
          latencyRing[ringPos] = Number(process.hrtime.bigint() - t0) / 1e6;
          ringPos = (ringPos + 1) % latencyRing.length;
        }, srng.int(4));
      });
    });
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
    const crng = rng.fork('client');
    load = new Load(10, () => oneRequest(crng));
  },
  step: () => load.until(400),
  sizes() {
    return {
      leak: { memo: memo.size },
      noise: {
        'renderCache.entries': renderCache.entries.size, regionStock: regionStock.size, inflight: inflight.size,
        carts: Object.keys(carts).length, cartItems: Object.values(carts).reduce((a, c) => a + c.length, 0),
        analyticsQueue: analyticsQueue.length, buckets: Object.keys(buckets).length, catalog: catalog.size,
      },
    };
  },
  async teardown() { load.stop(); agent.destroy(); server.close(); },
});
