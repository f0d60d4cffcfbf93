'use strict';
// Market data aggregator: normalizes raw venue ticks, maintains per-symbol
// order books, one-minute candles and rolling VWAP windows, de-duplicates
// trades, fans ticks out to subscribers, and publishes index-constituent
// updates to a rate-limited downstream feed.
const { EventEmitter } = require('events');
const { run } = require('../lib/snap');

const VENUES = ['XNAS', 'XNYS', 'BATS', 'ARCX'];
const CANDLES_KEPT = 20;
const VWAP_WINDOW_MS = 5 * 60 * 1000;
const DEDUPE_BUCKET_MS = 10000;
const DEDUPE_BUCKETS = 3;
const PUBLISH_BUDGET = 24;

let rng;
let now;

class QuoteNormalizer {
  constructor() {
    this.symbolAliases = new Map(); // raw venue symbol -> {symbol, venue, flags}
    this.hits = 0;
    this.misses = 0;
  }
  preload(list) {
    for (const raw of list) this.normalize(raw);
    this.misses = 0;
  }
  normalize(raw) {
    let n = this.symbolAliases.get(raw);
    if (n) { this.hits++; return n; }
    this.misses++;
    const parts = raw.split('.');
    n = { symbol: parts[0], venue: parts[1] || 'XNAS', flags: parts.slice(2) };
    this.symbolAliases.set(raw, n);
    return n;
  }
}

class Book {
  constructor(mid) {
    this.mid = mid;
    this.bids = new Map();
    this.asks = new Map();
    this.baseDepth = 8 + rng.int(20);
    this.targetDepth = this.baseDepth;
  }
  update(side, price, size) {
    const m = side === 'bid' ? this.bids : this.asks;
    if (size === 0) m.delete(price); else m.set(price, size);
  }
  churn(load) {
    // liquidity follows market activity
    this.targetDepth = Math.max(2, Math.round(this.baseDepth * load) + rng.range(-2, 2));
    for (const m of [this.bids, this.asks]) {
      const sign = m === this.bids ? -1 : 1;
      while (m.size < this.targetDepth) m.set((this.mid + sign * (1 + rng.int(60)) / 100).toFixed(2), rng.range(1, 50) * 100);
      let extra = m.size - this.targetDepth;
      for (const k of m.keys()) { if (extra-- <= 0) break; m.delete(k); }
    }
  }
}

// ------------------------------------------------------------------ state
const normalizer = new QuoteNormalizer();
const symbols = [];
const books = new Map();
const candles = new Map();        // symbol -> [{t, o, h, l, c, v}]
const vwapWindows = {};           // symbol -> [{px, qty, at}]
const lastTrade = {};
const dedupe = new Map();         // bucket -> Set(tradeId)
const subscribers = new Map();    // id -> {symbols:Set, buffer:[], onTick}
const ticker = new EventEmitter();
ticker.setMaxListeners(0);
const pendingTicks = [];          // downstream index feed (rate-limited)
const indexMembers = new Set();
let published = 0;
let subSeq = 0;

function initSymbols(r) {
  const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  while (symbols.length < 300) {
    const s = Array.from({ length: r.range(2, 4) }, () => letters[r.int(26)]).join('');
    if (books.has(s)) continue;
    symbols.push(s);
    books.set(s, new Book(10 + r.int(400)));
    candles.set(s, []);
    vwapWindows[s] = [];
  }
  // reference data: every listed symbol on every venue, regular and when-issued
  const ref = [];
  for (const s of symbols) for (const v of VENUES) ref.push(`${s}.${v}`, `${s}.${v}.WI`);
  normalizer.preload(ref);
  for (let k = 0; indexMembers.size < PUBLISH_BUDGET; k++) indexMembers.add(symbols[k * 7 % symbols.length]);
}

function seenTrade(id) {
  for (const set of dedupe.values()) if (set.has(id)) return true;
  const b = Math.floor(now() / DEDUPE_BUCKET_MS);
  let set = dedupe.get(b);
  if (!set) {
    dedupe.set(b, (set = new Set()));
    for (const k of dedupe.keys()) if (k <= b - DEDUPE_BUCKETS) dedupe.delete(k);
  }
  set.add(id);
  return false;
}

function onTrade(sym, px, qty, tradeId) {
  if (seenTrade(tradeId)) return;
  const t = now();
  const cs = candles.get(sym);
  const c = cs[cs.length - 1];
  if (c.v === 0) { c.o = c.h = c.l = px; }
  if (px > c.h) c.h = px;
  if (px < c.l) c.l = px;
  c.c = px;
  c.v += qty;
  vwapWindows[sym].push({ px, qty, at: t });
  lastTrade[sym] = { px, qty, at: t, tradeId };
  ticker.emit('tick', { sym, px, qty, at: t });
}

let currentMinute = -1;
function rollCandles() {
  const minute = Math.floor(now() / 60000) * 60000;
  if (minute === currentMinute) return;
  currentMinute = minute;
  for (const sym of symbols) {
    const cs = candles.get(sym);
    const prev = cs[cs.length - 1];
    const close = prev ? prev.c : books.get(sym).mid;
    cs.push({ t: minute, o: close, h: close, l: close, c: close, v: 0 });
    if (cs.length > CANDLES_KEPT) cs.shift();
  }
}

function rawTick(r) {
  const sym = symbols[r.zipf(symbols.length, 0.6)];
  const venue = r.pick(VENUES);
  let raw = `${sym}.${venue}`;
  // odd-lot and when-issued prints carry a per-print suffix on some venues
  if (r.chance(0.02)) raw += `.OL.${r.id(8)}`;
  else if (r.chance(0.1)) raw += '.WI';
  return raw;
}

function expireVwap() {
  const cutoff = now() - VWAP_WINDOW_MS;
  for (const sym of symbols) {
    const w = vwapWindows[sym];
    if (w.length && w[0].at < cutoff) vwapWindows[sym] = w.filter((e) => e.at >= cutoff);
  }
}

function addSubscriber() {
  const id = `sub${++subSeq}`;
  const sub = { id, symbols: new Set(), buffer: [], flushEvery: rng.range(1, 5), life: rng.range(10, 80) };
  for (let k = rng.range(3, 25); k > 0; k--) sub.symbols.add(rng.pick(symbols));
  sub.onTick = (t) => { if (sub.symbols.has(t.sym)) sub.buffer.push(t); };
  ticker.on('tick', sub.onTick);
  subscribers.set(id, sub);
}

function removeSubscriber(sub) {
  ticker.removeListener('tick', sub.onTick);
  subscribers.delete(sub.id);
}

function publishDownstream() {
  const batch = pendingTicks.splice(0, PUBLISH_BUDGET);
  published += batch.length;
  return batch;
}

run({
  warmupSteps: 160,
  stepsPerInterval: 60,
  tickMs: 10000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    initSymbols(rng.fork('symbols'));
  },
  async step(ctx, step) {
    const load = ctx.load();
    rollCandles();
    const n = Math.round(70 * load);
    for (let k = 0; k < n; k++) {
      const norm = normalizer.normalize(rawTick(rng));
      const book = books.get(norm.symbol);
      if (rng.chance(0.6)) {
        book.update(rng.chance(0.5) ? 'bid' : 'ask', (book.mid + rng.range(-50, 50) / 100).toFixed(2), rng.chance(0.3) ? 0 : rng.range(1, 50) * 100);
      } else {
        const px = +(book.mid + rng.range(-20, 20) / 100).toFixed(2);
        // exchanges re-send some prints; the same trade id may show up twice
        const tradeId = rng.chance(0.05) ? `${norm.symbol}-${step}-0` : `${norm.symbol}-${step}-${rng.id(6)}`;
        onTrade(norm.symbol, px, rng.range(1, 20) * 100, tradeId);
        book.mid = Math.max(1, book.mid + rng.range(-5, 5) / 100);
      }
    }
    for (const b of books.values()) if (rng.chance(0.3)) b.churn(load);
    // index feed: one conflated update per constituent per step, plus
    // corrections; the downstream accepts PUBLISH_BUDGET messages per step
    for (const sym of indexMembers) {
      const lt = lastTrade[sym];
      pendingTicks.push({ sym, px: lt ? lt.px : books.get(sym).mid, seq: step, kind: 'index' });
    }
    for (let k = rng.count(1); k > 0; k--) pendingTicks.push({ sym: rng.pick(Array.from(indexMembers)), px: 0, seq: step, kind: 'correction' });
    publishDownstream();

    for (let k = rng.count(1.2 * load); k > 0; k--) addSubscriber();
    for (const sub of subscribers.values()) {
      if (sub.life-- <= 0) { removeSubscriber(sub); continue; }
      if (step % sub.flushEvery === 0) sub.buffer = [];
    }
    expireVwap();
  },
  sizes() {
    let levels = 0;
    for (const b of books.values()) levels += b.bids.size + b.asks.size;
    let vwap = 0;
    for (const s of symbols) vwap += vwapWindows[s].length;
    let buffered = 0;
    for (const s of subscribers.values()) buffered += s.buffer.length;
    let dd = 0;
    for (const s of dedupe.values()) dd += s.size;
    let cn = 0;
    for (const c of candles.values()) cn += c.length;
    return {
      symbolAliases: normalizer.symbolAliases.size,
      pendingTicks: pendingTicks.length,
      books: levels,
      vwapWindows: vwap,
      subscribers: subscribers.size,
      subscriberBuffers: buffered,
      dedupe: dd,
      candles: cn,
      tickListeners: ticker.listenerCount('tick'),
    };
  },
});
