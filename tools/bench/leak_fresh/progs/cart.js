'use strict';
// E-commerce cart service: product pages, carts with idle expiry, checkout
// that reserves stock while the (simulated) payment settles, and price
// quotes that ask an external tax service with a timeout.
//
// Planted leaks:
//   viewedSkus     each user profile keeps every SKU the user ever viewed;
//                  only the recentlyViewed list shown on the page is cut to 8 -
//                  400 arrays that each grow a little                  - per-user
//   pendingQuotes  quote requests wait in a map for the tax service's
//                  reply; when the tax service drops a request the timeout
//                  answers with a fallback but never deletes the entry  - slow
const { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'cart';
const SKUS = 2000;
const USERS = 400;
const CART_IDLE_MS = 60000;
const PRICE_CACHE_CAP = 300;

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const users = new Map();                  // fixed user base, loaded at start
  const inventory = new Map();              // sku -> {stock, basePrice}
  const priceCache = new Map();             // LRU sku -> computed price
  const carts = new Map();                  // userId -> {items: Map, updatedAt}; idle carts expire
  const reservationsInFlight = new Map();   // orderId -> reserved items, while payment settles
  let recentOrders = [];                    // cut back to the last 50 when it passes 150
  const pendingQuotes = new Map();          // LEAK on the tax-service timeout path
  let nextOrder = 1, nextQuote = 1, taxCalls = 0;
  const stats = { views: 0, adds: 0, checkouts: 0, expired: 0, quotes: 0, quoteTimeouts: 0 };

  for (let s = 0; s < SKUS; s++) inventory.set('sku-' + s, { stock: 50 + (hash32('s' + s) % 200), basePrice: 100 + (hash32('p' + s) % 9900) });
  for (let u = 0; u < USERS; u++) {
    // the profile comes with the recently-viewed list persisted from earlier sessions
    const recentlyViewed = [];
    for (let k = 0; k < 8; k++) recentlyViewed.push('sku-' + (hash32('rv' + u + ':' + k) % SKUS));
    users.set('u' + u, { id: 'u' + u, tier: hash32('t' + u) % 4 === 0 ? 'gold' : 'std', viewedSkus: [], recentlyViewed });
  }

  function price(sku, tier) {
    let p = priceCache.get(sku);
    if (p === undefined) {
      const inv = inventory.get(sku);
      p = Math.round(inv.basePrice * (1 + (hash32(sku + 'promo') % 30 - 15) / 100));
      priceCache.set(sku, p);
      if (priceCache.size > PRICE_CACHE_CAP) priceCache.delete(priceCache.keys().next().value);
    } else {
      priceCache.delete(sku); priceCache.set(sku, p);
    }
    return tier === 'gold' ? Math.round(p * 0.95) : p;
  }

  function cartOf(userId) {
    let c = carts.get(userId);
    if (!c) { c = { items: new Map(), updatedAt: clock.now() }; carts.set(userId, c); }
    c.updatedAt = clock.now();
    return c;
  }

  function viewProduct(userId, sku) {
    const user = users.get(userId);
    const inv = inventory.get(sku);
    if (!user || !inv) return { status: 404, body: { error: 'not found' } };
    user.viewedSkus.push(sku);   // session analytics: never cut
    user.recentlyViewed = [...user.recentlyViewed.filter((s) => s !== sku), sku].slice(-8);
    stats.views++;
    return { sku, price: price(sku, user.tier), inStock: inv.stock > 0, recentlyViewed: user.recentlyViewed.length };
  }

  function taxService(quote) {
    // the external service sheds every 17th request without answering
    return new Promise((resolve) => {
      if (++taxCalls % 17 === 0) return;
      setImmediate(() => resolve({ rate: 0.05 + (hash32(quote.user) % 10) / 100 }));
    });
  }

  async function quote(userId) {
    const user = users.get(userId);
    const c = cartOf(userId);
    let subtotal = 0;
    for (const [sku, qty] of c.items) subtotal += price(sku, user.tier) * qty;
    const id = 'q' + (nextQuote++).toString(36);
    const entry = { id, user: userId, subtotal, createdAt: clock.now() };
    pendingQuotes.set(id, entry);
    stats.quotes++;
    let timer = null;
    const reply = await Promise.race([
      taxService(entry).then((r) => { clearTimeout(timer); pendingQuotes.delete(id); return r; }),
      new Promise((resolve) => { timer = setTimeout(() => { stats.quoteTimeouts++; resolve({ rate: 0.2, fallback: true }); }, 3); }),
    ]);
    return { quote: id, subtotal, tax: Math.round(subtotal * reply.rate), fallback: !!reply.fallback };
  }

  async function checkout(userId) {
    const c = carts.get(userId);
    if (!c || !c.items.size) return { status: 409, body: { error: 'empty cart' } };
    const orderId = 'o' + (nextOrder++).toString(36);
    const reserved = [];
    for (const [sku, qty] of c.items) {
      const inv = inventory.get(sku);
      const take = Math.min(qty, inv.stock);
      inv.stock -= take;
      reserved.push({ sku, qty: take });
    }
    reservationsInFlight.set(orderId, { userId, reserved, at: clock.now() });
    try {
      await new Promise(setImmediate);   // payment settles
      const paid = hash32(orderId) % 20 !== 0;
      if (!paid) { for (const r of reserved) inventory.get(r.sku).stock += r.qty; return { status: 402, body: { error: 'payment declined' } }; }
      carts.delete(userId);
      recentOrders.push({ orderId, userId, lines: reserved.length, at: clock.now() });
      if (recentOrders.length > 150) recentOrders = recentOrders.slice(-50);
      stats.checkouts++;
      return { orderId, lines: reserved.length };
    } finally {
      reservationsInFlight.delete(orderId);
    }
  }

  clock.every(10000, (now) => {
    for (const [u, c] of carts) if (now - c.updatedAt > CART_IDLE_MS) { carts.delete(u); stats.expired++; }
  });
  clock.every(30000, () => {   // restock
    for (const inv of inventory.values()) if (inv.stock < 20) inv.stock += 100;
  });

  const server = await serve((req, url, body) => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && parts[0] === 'products') return viewProduct(url.searchParams.get('user'), parts[1]);
    if (parts[0] === 'cart' && parts[1]) {
      const userId = parts[1];
      if (!users.has(userId)) return { status: 404, body: { error: 'no user' } };
      if (req.method === 'POST' && parts[2] === 'items') {
        const c = cartOf(userId);
        c.items.set(body.sku, (c.items.get(body.sku) || 0) + (body.qty | 0 || 1));
        stats.adds++;
        return { lines: c.items.size };
      }
      if (req.method === 'DELETE' && parts[2] === 'items') { const c = cartOf(userId); c.items.delete(parts[3]); return { lines: c.items.size }; }
      if (req.method === 'POST' && parts[2] === 'checkout') return checkout(userId);
      if (req.method === 'GET' && parts[2] === 'quote') return quote(userId);
    }
    return { status: 404, body: { error: 'no route' } };
  });
  const client = makeClient(server, 12);
  const level = waveFactory(rng, 3, 18, 25);

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      const user = 'u' + rng.int(USERS);
      const sku = 'sku-' + rng.zipf(SKUS, 0.8);
      const r = rng.float();
      if (r < 0.5) reqs.push(client.request('GET', `/products/${sku}?user=${user}`));
      else if (r < 0.72) reqs.push(client.request('POST', `/cart/${user}/items`, { sku, qty: rng.range(1, 3) }));
      else if (r < 0.8) reqs.push(client.request('DELETE', `/cart/${user}/items/${sku}`));
      else if (r < 0.9) reqs.push(client.request('GET', `/cart/${user}/quote`));
      else reqs.push(client.request('POST', `/cart/${user}/checkout`));
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [
      ['viewedSkus', () => { let n = 0; for (const u of users.values()) n += u.viewedSkus.length; return n; }],
      ['pendingQuotes', () => pendingQuotes.size],
    ],
    healthy: [
      ['carts', () => carts.size],
      ['priceCache', () => priceCache.size],
      ['reservationsInFlight', () => reservationsInFlight.size],
      ['recentOrders', () => recentOrders.length],
      ['recentlyViewed', () => { let n = 0; for (const u of users.values()) n += u.recentlyViewed.length; return n; }],
    ],
    shutdown: async () => { if (process.env.LF_DEBUG) console.error(stats); client.close(); server.close(); },
  });
});
