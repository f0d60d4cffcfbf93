'use strict';
// Rate-limiting API front: every request carries an API key; a token bucket
// per key (refilled by plan), a sliding one-second window per key and route,
// and a temporary ban for keys that keep hitting the limit guard a small
// backend. The population of active keys drifts over time: new clients show
// up, old ones go quiet and their state is evicted.
//
// No planted leaks: every structure here is bounded or expires.
const { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'ratelimit';
const ROUTES = ['search', 'items', 'orders', 'users', 'reports', 'export', 'login', 'status', 'feed', 'tags', 'upload', 'billing'];
const PLANS = { free: { rate: 2, burst: 6 }, pro: { rate: 10, burst: 30 }, enterprise: { rate: 50, burst: 120 } };
const IDLE_MS = 30000;
const WINDOW_MS = 1000;
const BAN_MS = 20000;

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const buckets = new Map();          // apiKey -> {tokens, updatedAt, plan, strikes}
  const slidingWindows = new Map();   // apiKey|route -> [timestamps] (last WINDOW_MS)
  const banList = new Map();          // apiKey -> banned until
  const routeQuotas = new Map(ROUTES.map((r, i) => [r, { perSecond: 3 + (i % 4) * 2, cost: 1 + (i % 3) }]));
  const recentDenials = new Array(256).fill(null);
  let denialPos = 0;
  const stats = { allowed: 0, limited: 0, banned: 0, evicted: 0 };

  function planOf(key) {
    const h = hash32(key) % 10;
    return h < 6 ? 'free' : h < 9 ? 'pro' : 'enterprise';
  }

  function bucketFor(key) {
    let b = buckets.get(key);
    if (!b) { const plan = planOf(key); b = { tokens: PLANS[plan].burst, updatedAt: clock.now(), plan, strikes: 0 }; buckets.set(key, b); }
    const p = PLANS[b.plan];
    const elapsed = (clock.now() - b.updatedAt) / 1000;
    b.tokens = Math.min(p.burst, b.tokens + elapsed * p.rate);
    b.updatedAt = clock.now();
    return b;
  }

  function deny(key, route, reason) {
    recentDenials[denialPos] = { key, route, reason, at: clock.now() };
    denialPos = (denialPos + 1) % recentDenials.length;
    stats.limited++;
    return { status: 429, body: { error: 'rate limited', reason } };
  }

  function admit(key, route) {
    const until = banList.get(key);
    if (until && until > clock.now()) { stats.banned++; return deny(key, route, 'banned'); }
    if (until) banList.delete(key);
    const q = routeQuotas.get(route);
    if (!q) return { status: 404, body: { error: 'unknown route' } };
    const b = bucketFor(key);
    const wkey = key + '|' + route;
    let w = slidingWindows.get(wkey);
    if (!w) { w = []; slidingWindows.set(wkey, w); }
    while (w.length && clock.now() - w[0] >= WINDOW_MS) w.shift();
    if (w.length >= q.perSecond) return deny(key, route, 'route window');
    if (b.tokens < q.cost) {
      if (++b.strikes >= 10) { banList.set(key, clock.now() + BAN_MS); b.strikes = 0; }
      return deny(key, route, 'bucket');
    }
    b.tokens -= q.cost;
    w.push(clock.now());
    stats.allowed++;
    return null;
  }

  function backend(route, key, url) {
    const page = Number(url.searchParams.get('page')) || 0;
    const h = hash32(route + key + page);
    return { route, page, items: [h % 1000, (h >> 10) % 1000, (h >> 20) % 1000], plan: planOf(key) };
  }

  clock.every(5000, (now) => {
    for (const [key, b] of buckets) if (now - b.updatedAt > IDLE_MS) { buckets.delete(key); stats.evicted++; }
    for (const [wkey, w] of slidingWindows) {
      const kept = w.filter((t) => now - t < WINDOW_MS);
      if (kept.length) slidingWindows.set(wkey, kept); else slidingWindows.delete(wkey);
    }
    for (const [key, until] of banList) if (until <= now) banList.delete(key);
  });

  const server = await serve((req, url) => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] === 'health') return { ok: true, keys: buckets.size, windows: slidingWindows.size, bans: banList.size };
    if (parts[0] !== 'api' || !parts[1]) return { status: 404, body: { error: 'no route' } };
    const key = req.headers['x-api-key'];
    if (!key) return { status: 401, body: { error: 'missing key' } };
    const limited = admit(key, parts[1]);
    return limited || backend(parts[1], key, url);
  });
  const client = makeClient(server, 12);
  const level = waveFactory(rng, 3, 20, 33);

  async function step(i) {
    const n = level(i);
    const reqs = [];
    const base = Math.floor(i / 3);   // the active key population drifts
    for (let k = 0; k < n; k++) {
      if (rng.chance(0.01)) { reqs.push(client.request('GET', '/health')); continue; }
      // a few hot keys hammer the API, most are occasional
      const key = 'key-' + (rng.chance(0.25) ? rng.int(8) : 8 + base + rng.int(150));
      const route = ROUTES[rng.zipf(ROUTES.length, 1.0)];
      reqs.push(client.request('GET', `/api/${route}?page=${rng.int(5)}`, null, { 'x-api-key': key }));
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [],
    healthy: [
      ['buckets', () => buckets.size],
      ['slidingWindows', () => slidingWindows.size],
      ['banList', () => banList.size],
      ['routeQuotas', () => routeQuotas.size],
    ],
    shutdown: async () => { if (process.env.LF_DEBUG) console.error(stats); client.close(); server.close(); },
  });
});
