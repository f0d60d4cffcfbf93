'use strict';
// E-commerce storefront: product pages, carts, stock reservations with TTL,
// checkout with coupons, and asynchronous payment callbacks.
const http = require('http');
const { URL } = require('url');
const { run } = require('../lib/snap');
const { request, readBody, listen } = require('../lib/http_client');

const MAX_HISTORY = 50;
const RESERVATION_TTL_MS = 15 * 60 * 1000;
const RECENT_ORDERS = 120;

class Customer {
  constructor(id, tier) {
    this.id = id;
    this.tier = tier;
    this.cart = new Map();     // sku -> {qty, unitPrice, addedAt}
    this.history = [];         // recently viewed products
    this.orders = 0;
    this.lastSeen = 0;
  }
  recordView(sku, at, source) {
    this.history.push({ sku, at, source });
    if (this.history.length > MAX_HISTORY) {
      // keep only the most recent views
      this.history.slice(-MAX_HISTORY);
    }
  }
}

class Store {
  constructor(rng, now) {
    this.rng = rng;
    this.now = now;
    this.catalog = new Map();
    this.stock = {};
    this.customers = new Map();
    this.reservations = new Map();     // reservationId -> {sku, qty, customerId, expiresAt}
    this.pendingPayments = new Map();  // orderId -> order
    this.recentOrders = [];
    this.couponRedemptions = {};       // `${code}:${orderId}` -> redemption
    this.coupons = { SPRING10: 0.1, WELCOME5: 0.05, VIP20: 0.2, FREESHIP: 0.03 };
    this.orderSeq = 0;
    this.resSeq = 0;
  }

  loadCatalog(r) {
    const adjectives = ['red', 'slim', 'eco', 'pro', 'mini', 'ultra', 'soft', 'smart'];
    const nouns = ['kettle', 'lamp', 'chair', 'mug', 'backpack', 'headset', 'desk', 'cable'];
    for (let i = 0; i < 4000; i++) {
      const sku = `SKU-${100000 + i}`;
      this.catalog.set(sku, {
        sku,
        title: `${r.pick(adjectives)} ${r.pick(nouns)} ${r.id(4)}`,
        price: r.range(199, 19999),
        tags: [r.pick(adjectives), r.pick(nouns)],
        description: `desc ${r.id(48)}`,
      });
      this.stock[sku] = r.range(5, 500);
    }
    this.skus = Array.from(this.catalog.keys());
  }

  customer(id) {
    let c = this.customers.get(id);
    if (!c) {
      c = new Customer(id, id % 13 === 0 ? 'vip' : 'standard');
      this.customers.set(id, c);
    }
    c.lastSeen = this.now();
    return c;
  }

  view(customerId, sku, source) {
    const c = this.customer(customerId);
    c.recordView(sku, this.now(), source);
    const p = this.catalog.get(sku);
    return { sku, title: p.title, price: p.price, inStock: this.stock[sku] > 0 };
  }

  addToCart(customerId, sku, qty) {
    const c = this.customer(customerId);
    if (this.stock[sku] < qty) return { ok: false };
    const line = c.cart.get(sku);
    if (line) line.qty += qty;
    else c.cart.set(sku, { qty, unitPrice: this.catalog.get(sku).price, addedAt: this.now() });
    const id = `r${++this.resSeq}`;
    this.stock[sku] -= qty;
    this.reservations.set(id, { sku, qty, customerId, expiresAt: this.now() + RESERVATION_TTL_MS });
    return { ok: true, reservation: id, lines: c.cart.size };
  }

  removeFromCart(customerId, sku) {
    const c = this.customer(customerId);
    return { ok: c.cart.delete(sku), lines: c.cart.size };
  }

  checkout(customerId, coupon) {
    const c = this.customer(customerId);
    if (c.cart.size === 0) return { ok: false, reason: 'empty' };
    let total = 0;
    const lines = [];
    for (const [sku, l] of c.cart) { total += l.qty * l.unitPrice; lines.push({ sku, qty: l.qty }); }
    const orderId = `o${++this.orderSeq}`;
    let discount = 0;
    if (coupon && this.coupons[coupon] != null) {
      discount = Math.round(total * this.coupons[coupon]);
      this.couponRedemptions[`${coupon}:${orderId}`] = { customerId, discount, at: this.now() };
    }
    const order = { orderId, customerId, lines, total: total - discount, coupon, createdAt: this.now(), status: 'awaiting_payment' };
    this.pendingPayments.set(orderId, order);
    c.cart.clear();
    c.orders++;
    return { ok: true, orderId, total: order.total };
  }

  paymentCallback(orderId, status) {
    const order = this.pendingPayments.get(orderId);
    if (!order) return { ok: false };
    this.pendingPayments.delete(orderId);
    order.status = status;
    if (status !== 'paid') {
      for (const l of order.lines) this.stock[l.sku] += l.qty;
    }
    // redemption bookkeeping is only needed until settlement
    delete this.couponRedemptions[orderId];
    this.recentOrders.push({ orderId, total: order.total, status, at: this.now() });
    if (this.recentOrders.length > RECENT_ORDERS) this.recentOrders.splice(0, this.recentOrders.length - RECENT_ORDERS);
    return { ok: true };
  }

  expireReservations() {
    const t = this.now();
    for (const [id, r] of this.reservations) {
      if (r.expiresAt <= t) {
        this.reservations.delete(id);
        this.stock[r.sku] += r.qty;
        const c = this.customers.get(r.customerId);
        // the reservation lapsed: drop the line from the cart as well
        if (c) c.cart.delete(r.sku);
      }
    }
  }
}

// ------------------------------------------------------------------ HTTP
let store;
const connections = new Set();

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://shop.local');
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : null;
  const cid = Number(req.headers['x-customer-id']);
  let out;
  switch (url.pathname) {
    case '/product': out = store.view(cid, url.searchParams.get('sku'), url.searchParams.get('src') || 'direct'); break;
    case '/cart/add': out = store.addToCart(cid, body.sku, body.qty); break;
    case '/cart/remove': out = store.removeFromCart(cid, body.sku); break;
    case '/checkout': out = store.checkout(cid, body.coupon); break;
    case '/payments/callback': out = store.paymentCallback(body.orderId, body.status); break;
    default: res.statusCode = 404; res.end(); return;
  }
  const text = JSON.stringify(out);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
});
server.on('connection', (s) => { connections.add(s); s.on('close', () => connections.delete(s)); });

let port;
let agent;
let rng;
// Payment provider: callbacks arrive a few steps after checkout.
const paymentSchedule = new Map(); // step -> [orderId]
const SOURCES = ['search', 'home', 'email', 'ads', 'related'];
const CUSTOMERS = 700;

const activeShoppers = []; // customers who recently added something (ring of 60)

function shopperSession(r, step) {
  let cid = 1 + r.int(CUSTOMERS);
  const hdr = { 'x-customer-id': String(cid) };
  const actions = [];
  const roll = r();
  if (roll < 0.4) {
    const sku = store.skus[r.zipf(store.skus.length)];
    actions.push(() => request(agent, port, 'GET', `/product?sku=${sku}&src=${r.pick(SOURCES)}`, null, hdr));
  } else if (roll < 0.75) {
    const sku = store.skus[r.zipf(store.skus.length)];
    actions.push(() => request(agent, port, 'POST', '/cart/add', { sku, qty: r.range(1, 3) }, hdr));
    activeShoppers.push(cid);
    if (activeShoppers.length > 60) activeShoppers.shift();
  } else if (roll < 0.87) {
    const c = store.customers.get(cid);
    const skus = c ? Array.from(c.cart.keys()) : [];
    if (skus.length) actions.push(() => request(agent, port, 'POST', '/cart/remove', { sku: r.pick(skus) }, hdr));
  } else {
    if (activeShoppers.length) cid = activeShoppers[r.int(activeShoppers.length)];
    hdr['x-customer-id'] = String(cid);
    const coupon = r.chance(0.55) ? r.pick(['SPRING10', 'WELCOME5', 'VIP20', 'FREESHIP']) : null;
    actions.push(() => request(agent, port, 'POST', '/checkout', { coupon }, hdr).then((resp) => {
      const o = JSON.parse(resp.text);
      if (o.ok) {
        const due = step + r.range(1, 12);
        if (!paymentSchedule.has(due)) paymentSchedule.set(due, []);
        paymentSchedule.get(due).push(o.orderId);
      }
    }));
  }
  return actions;
}

run({
  warmupSteps: 150,
  stepsPerInterval: 40,
  tickMs: 30000,
  async setup(ctx) {
    rng = ctx.rng;
    store = new Store(rng, ctx.now);
    store.loadCatalog(rng.fork('catalog'));
    // returning customers are loaded up-front from the accounts DB
    for (let id = 1; id <= CUSTOMERS; id++) store.customer(id);
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 10, maxFreeSockets: 3 });
  },
  async step(ctx, step) {
    const load = ctx.load();
    const jobs = [];
    const sessions = Math.round(22 * load);
    for (let k = 0; k < sessions; k++) for (const a of shopperSession(rng, step)) jobs.push(a());
    const due = paymentSchedule.get(step) || [];
    paymentSchedule.delete(step);
    for (const orderId of due) {
      jobs.push(request(agent, port, 'POST', '/payments/callback', { orderId, status: rng.chance(0.9) ? 'paid' : 'declined' }));
    }
    await Promise.all(jobs);
    store.expireReservations();
  },
  sizes() {
    let history = 0;
    let cartLines = 0;
    for (const c of store.customers.values()) { history += c.history.length; cartLines += c.cart.size; }
    return {
      history,
      couponRedemptions: Object.keys(store.couponRedemptions).length,
      cart: cartLines,
      reservations: store.reservations.size,
      pendingPayments: store.pendingPayments.size,
      recentOrders: store.recentOrders.length,
      customers: store.customers.size,
      connections: connections.size,
    };
  },
  async teardown() {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  },
});
