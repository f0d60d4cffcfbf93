'use strict';
// Auth / token service: password login issues opaque bearer tokens with a
// TTL, /verify checks them, /refresh rotates them, /logout revokes them.
// Per-IP failed-login windows throttle brute force; signing keys rotate.
//
// Planted leaks:
//   revokedJtis  logout puts the token id in a deny-list Set that is never
//                pruned, although a revoked token is useless once expired  - slow
//   auditTail    tamper-evident audit log: each event links to the previous
//                one (hash chain); the exporter records how far it got but
//                nothing ever cuts the chain                              - medium
const crypto = require('crypto');
const { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'auth';
const TOKEN_TTL_MS = 60000;
const FAIL_WINDOW_MS = 20000;
const USERS = 500;

const clock = new VirtualClock();
const sessionsByToken = new Map();   // token -> session, expired by the sweeper
const failedLogins = new Map();      // ip -> [timestamps], trimmed, emptied ones dropped
const userCache = new Map();         // LRU of user records, capped at USER_CACHE_CAP
const USER_CACHE_CAP = 256;
let jwksKeys = [];                   // replaced by a new array on each rotation (last 3)
const revokedJtis = new Set();       // LEAK
let auditTail = null;                // LEAK (linked list through .prev)
let auditSeq = 0;
let exportedSeq = 0;
const counters = { logins: 0, denied: 0, verified: 0, refreshed: 0, revoked: 0, swept: 0 };

function audit(event, user, detail) {
  const prevHash = auditTail ? auditTail.hash : '0';
  const at = clock.now();
  const entry = {
    seq: ++auditSeq, event, user, at, detail,
    hash: (hash32(prevHash + event + user + at + detail) >>> 0).toString(16),
    prev: auditTail,
  };
  auditTail = entry;
}

function exportAudit() {
  // "ships" new entries since the last export; keeps every entry for verification
  let n = 0;
  for (let e = auditTail; e && e.seq > exportedSeq; e = e.prev) n++;
  if (auditTail) exportedSeq = auditTail.seq;
  return n;
}

function rotateKeys() {
  const kid = 'k' + clock.now().toString(36);
  jwksKeys = [{ kid, secret: crypto.createHash('sha256').update(kid).digest('hex'), createdAt: clock.now() }, ...jwksKeys.slice(0, 2)];
}

function loadUser(name) {
  let u = userCache.get(name);
  if (u) {
    userCache.delete(name);
    userCache.set(name, u);
  } else {
    const salt = name.length.toString(16) + hash32(name).toString(16);
    u = { name, salt, pwHash: hash32(salt + 'pw-' + name), roles: hash32(name) % 7 === 0 ? ['admin', 'user'] : ['user'], loadedAt: clock.now() };
    userCache.set(name, u);
    if (userCache.size > USER_CACHE_CAP) userCache.delete(userCache.keys().next().value);
  }
  return u;
}

function issue(user) {
  const key = jwksKeys[0];
  const jti = (++counters.logins).toString(36) + '.' + (hash32(user.name + clock.now() + counters.logins) >>> 0).toString(36);
  const token = key.kid + '.' + jti + '.' + (hash32(key.secret + jti) >>> 0).toString(16);
  sessionsByToken.set(token, { user: user.name, jti, roles: user.roles, exp: clock.now() + TOKEN_TTL_MS, issuedAt: clock.now() });
  return { token, jti, expiresIn: TOKEN_TTL_MS / 1000 };
}

function noteFailure(ip) {
  const now = clock.now();
  let list = failedLogins.get(ip);
  if (!list) { list = []; failedLogins.set(ip, list); }
  list.push(now);
  if (list.length > 20) failedLogins.set(ip, list.filter((t) => now - t < FAIL_WINDOW_MS).slice(-20));
}

function throttled(ip) {
  const list = failedLogins.get(ip);
  return list ? list.filter((t) => clock.now() - t < FAIL_WINDOW_MS).length >= 15 : false;
}

function sweep() {
  const now = clock.now();
  for (const [token, s] of sessionsByToken) if (s.exp <= now) { sessionsByToken.delete(token); counters.swept++; }
  for (const [ip, list] of failedLogins) {
    const kept = list.filter((t) => now - t < FAIL_WINDOW_MS);
    if (kept.length) failedLogins.set(ip, kept); else failedLogins.delete(ip);
  }
}

function bearer(req) {
  const h = req.headers.authorization || '';
  return h.startsWith('Bearer ') ? h.slice(7) : '';
}

function session(token) {
  const s = sessionsByToken.get(token);
  if (!s || s.exp <= clock.now() || revokedJtis.has(s.jti)) return null;
  return s;
}

function handle(req, url, body) {
  const ip = req.headers['x-forwarded-for'] || '127.0.0.1';
  switch (req.method + ' ' + url.pathname) {
    case 'POST /login': {
      if (throttled(ip)) { counters.denied++; return { status: 429, body: { error: 'too many attempts' } }; }
      const u = loadUser(String(body && body.user));
      if (hash32(u.salt + body.password) !== u.pwHash) {
        noteFailure(ip);
        audit('login-failed', u.name, ip);
        return { status: 401, body: { error: 'bad credentials' } };
      }
      audit('login', u.name, ip);
      return issue(u);
    }
    case 'GET /verify': {
      const s = session(bearer(req));
      if (!s) return { status: 401, body: { error: 'invalid token' } };
      counters.verified++;
      return { user: s.user, roles: s.roles, exp: s.exp };
    }
    case 'POST /refresh': {
      const token = bearer(req);
      const s = session(token);
      if (!s) return { status: 401, body: { error: 'invalid token' } };
      sessionsByToken.delete(token);
      counters.refreshed++;
      audit('refresh', s.user, s.jti);
      return issue(loadUser(s.user));
    }
    case 'POST /logout': {
      const token = bearer(req);
      const s = sessionsByToken.get(token);
      if (s) {
        revokedJtis.add(s.jti);
        sessionsByToken.delete(token);
        counters.revoked++;
        audit('logout', s.user, s.jti);
      }
      return { ok: true };
    }
    case 'GET /jwks':
      return { keys: jwksKeys.map((k) => ({ kid: k.kid, createdAt: k.createdAt })) };
    default:
      return { status: 404, body: { error: 'no route' } };
  }
}

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  rotateKeys();
  clock.every(5000, sweep);
  clock.every(60000, rotateKeys);
  clock.every(15000, exportAudit);

  const server = await serve(handle);
  const client = makeClient(server, 12);
  const level = waveFactory(rng, 4, 20, 31);
  const wallet = new Array(200).fill(null);   // tokens held by simulated clients

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      const r = rng.float();
      const slot = rng.int(wallet.length);
      const ip = '10.0.' + rng.int(16) + '.' + rng.int(16);
      const held = wallet[slot];
      if (r < 0.16 || !held) {
        const name = 'user' + rng.int(USERS);
        // the toy password scheme is 'pw-' + name; a wrong guess is anything else
        const password = rng.chance(0.85) ? 'pw-' + name : 'guess-' + rng.hex(6);
        reqs.push(client.request('POST', '/login', { user: name, password }, { 'x-forwarded-for': ip })
          .then((res) => { if (res.status === 200) wallet[slot] = res.body.token; }));
      } else if (r < 0.84) {
        reqs.push(client.request('GET', '/verify', null, { authorization: 'Bearer ' + held })
          .then((res) => { if (res.status === 401) wallet[slot] = null; }));
      } else if (r < 0.95) {
        reqs.push(client.request('POST', '/refresh', null, { authorization: 'Bearer ' + held })
          .then((res) => { wallet[slot] = res.status === 200 ? res.body.token : null; }));
      } else if (r < 0.956) {
        wallet[slot] = null;
        reqs.push(client.request('POST', '/logout', null, { authorization: 'Bearer ' + held }));
      } else {
        reqs.push(client.request('GET', '/jwks'));
      }
    }
    await Promise.all(reqs);
    clock.advance(200);
  }

  const chainLength = () => { let n = 0; for (let e = auditTail; e; e = e.prev) n++; return n; };
  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [
      ['revokedJtis', () => revokedJtis.size],
      ['auditTail', chainLength],
    ],
    healthy: [
      ['sessionsByToken', () => sessionsByToken.size],
      ['failedLogins', () => failedLogins.size],
      ['userCache', () => userCache.size],
      ['jwksKeys', () => jwksKeys.length],
    ],
    shutdown: async () => { client.close(); server.close(); },
  });
});
