'use strict';
// Rate-limiting middleware for an API edge: token buckets per API key, sliding
// windows per IP, per-route concurrency limits with wait queues, temporary bans.
// Requests are simulated (no sockets).
// Planted leaks:
//   `violations` -- Map userId -> violation count (small integers both), never decays;
//                   abusive sign-ups keep bringing new user ids.
//   `banned`     -- array held only in the closure of createBanList(); expired bans
//                   are never removed.
const { run } = require('../lib/snap');

function createBanList(now) {
  let banned = [];
  return {
    ban(ip, seconds, reason) { banned.push({ ip, until: now() + seconds, reason }); },
    isBanned(ip) {
      const t = now();
      for (let i = banned.length - 1; i >= 0; i--) if (banned[i].ip === ip && banned[i].until > t) return true;
      return false;
    },
    count() { return banned.length; },      // for the stderr ground-truth log only
  };
}

class TokenBucketStore {
  constructor(rate, burst) { this.rate = rate; this.burst = burst; this.buckets = new Map(); }
  take(key, now) {
    let b = this.buckets.get(key);
    if (!b) { b = { tokens: this.burst, last: now }; this.buckets.set(key, b); }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.last) * this.rate);
    b.last = now;
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }
  evictIdle(now) { for (const [k, b] of this.buckets) if (now - b.last > 40) this.buckets.delete(k); }
}

class RouteLimiter {
  constructor(route, max) { this.route = route; this.max = max; this.active = 0; this.waiting = []; }
  acquire(req) {
    if (this.active < this.max) { this.active++; return true; }
    if (this.waiting.length >= 50) return false;
    this.waiting.push(req);
    return null;
  }
  release() {
    this.active--;
    if (this.waiting.length) { this.waiting.shift().admitted = true; this.active++; }
  }
}

let clock = 0;
const now = () => clock;
const bans = createBanList(now);
const violations = new Map();        // LEAK: userId -> count
const keyBuckets = new TokenBucketStore(0.5, 20);
const ipWindows = {};                // ip -> [timestamps]  (rebuilt with filter, deleted when empty)
const routes = {};
const inProgress = [];               // admitted requests still running (spliced at random)
const recentDecisions = new Array(256); let decisionPos = 0;
const allowlist = new Set();         // background
const apiKeys = new Map();           // background: key -> plan
let nextAbuser = 100000;

function handle(req, rng) {
  if (allowlist.has(req.ip)) return 'allow';
  if (bans.isBanned(req.ip)) return 'banned';
  const w = (ipWindows[req.ip] || []).filter((t) => clock - t < 10);
  w.push(clock);
  ipWindows[req.ip] = w;
  if (w.length > 25) {
    violations.set(req.user, (violations.get(req.user) || 0) + 1);
    if (violations.get(req.user) >= 3) bans.ban(req.ip, 5 + rng.int(20), 'ip window');
    return 'throttled';
  }
  if (!keyBuckets.take(req.key, clock)) {
    violations.set(req.user, (violations.get(req.user) || 0) + 1);
    return 'throttled';
  }
  const lim = routes[req.route];
  const got = lim.acquire(req);
  if (got === false) return 'busy';
  if (got === true) req.admitted = true;
  inProgress.push(req);
  return 'queued';
}

function tick(rng) {
  clock++;
  // finish a random subset of in-flight requests
  for (let i = inProgress.length - 1; i >= 0; i--) {
    const req = inProgress[i];
    if (req.admitted && rng.chance(0.35)) { inProgress.splice(i, 1); routes[req.route].release(); }
    else if (!req.admitted && clock - req.at > 15) { inProgress.splice(i, 1); const q = routes[req.route].waiting; const j = q.indexOf(req); if (j >= 0) q.splice(j, 1); }
  }
  if (clock % 10 === 0) {
    keyBuckets.evictIdle(clock);
    for (const ip of Object.keys(ipWindows)) if (clock - ipWindows[ip][ipWindows[ip].length - 1] > 10) delete ipWindows[ip];
  }
  // traffic: normal users plus bursts from abusive accounts
  const normal = 20 + rng.int(30);
  for (let i = 0; i < normal; i++) {
    const user = rng.chance(0.4) ? rng.int(20) : rng.int(2000);   // a few power users
    const req = { user, ip: '10.1.' + (user % 250) + '.' + (user % 7), key: 'k' + user, route: rng.pick(Object.keys(routes)), at: clock };
    recentDecisions[decisionPos++ & 255] = handle(req, rng);
  }
  if (rng.chance(0.12)) {
    // a freshly created account hammers one route from one address
    const user = nextAbuser++;
    const ip = '172.16.' + rng.int(255) + '.' + rng.int(255);
    for (let i = 0; i < 30 + rng.int(30); i++) {
      const req = { user, ip, key: 'k' + user, route: 'POST /login', at: clock };
      recentDecisions[decisionPos++ & 255] = handle(req, rng);
    }
  }
}

run({
  prog: 'rate_limiter',
  warmup: 8,
  perInterval: 4,
  setup(rng) {
    const brng = rng.fork('bg');
    for (const r of ['GET /search', 'GET /items', 'POST /login', 'POST /orders', 'GET /feed', 'PUT /profile']) routes[r] = new RouteLimiter(r, 10 + brng.int(20));
    for (let i = 0; i < 70000; i++) apiKeys.set('key_' + brng.hex(24), { plan: brng.pick(['free', 'pro', 'enterprise']), owner: brng.word(10), limits: { rpm: 60 * (1 + brng.int(50)), burst: 10 + brng.int(90) }, scopes: [brng.word(5), brng.word(6)] });
    for (let i = 0; i < 500; i++) allowlist.add('192.168.' + brng.int(255) + '.' + brng.int(255));
  },
  step(rng) { for (let i = 0; i < 100; i++) tick(rng); },
  sizes() {
    let waiting = 0;
    for (const r of Object.values(routes)) waiting += r.waiting.length;
    return {
      leak: { violations: violations.size, banned: bans.count() },
      noise: { 'keyBuckets.buckets': keyBuckets.buckets.size, ipWindows: Object.keys(ipWindows).length, inProgress: inProgress.length, 'routes.waiting(total)': waiting, apiKeys: apiKeys.size, allowlist: allowlist.size },
    };
  },
});
