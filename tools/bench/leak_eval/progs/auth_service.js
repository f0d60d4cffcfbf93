'use strict';
// Authentication/token service (simulated requests): password + MFA login, access
// token verification with a token cache, refresh-token rotation, revocation,
// lazily loaded user profiles, permission cache, JWKS key rotation.
// Planted leak:
//   `profiles` -- plain object userId -> profile, filled lazily from the directory
//                 and never evicted; long-tail users keep adding keys.
const { run } = require('../lib/snap');

const ROLES = ['viewer', 'editor', 'admin', 'billing', 'support', 'owner'];
const PERMS = { viewer: ['read'], editor: ['read', 'write'], admin: ['read', 'write', 'delete', 'invite'], billing: ['read', 'pay'], support: ['read', 'impersonate'], owner: ['read', 'write', 'delete', 'invite', 'pay', 'transfer'] };

// ---------------------------------------------------------------- state
const directory = new Map();          // background: userId -> directory record
const profiles = {};                  // LEAK
const tokenCache = new Map();         // access token -> {claims, exp}  TTL
const refreshTokens = {};             // refresh token -> {user, family, exp}; rotation deletes
const revoked = new Set();            // token ids, pruned after exp
const revokedExp = [];                // [{jti, exp}] sorted by exp, shifted when expired
let jwks = [];                        // signing keys, rotated with concat/slice
const loginAttempts = new Map();      // user -> [ticks] sliding window, deleted when empty
const mfaChallenges = new Map();      // challengeId -> {user, code, exp}
const lookupQueue = { head: null, tail: null, length: 0 };   // pending directory lookups (drains)
const permissionCache = new Map();    // roles-key|resource -> decision   LRU 400
let auditBuffer = [];                 // flushed with `= []`
const sessionsByUser = {};            // user -> count of live refresh tokens (delete at 0)
let clock = 0, seq = 0, rng;

function loadProfile(id) {
  let p = profiles[id];
  if (p) return p;
  const d = directory.get(id);
  p = { id, displayName: d.first + ' ' + d.last, roles: d.roles, perms: [...new Set(d.roles.flatMap((r) => PERMS[r]))], avatar: `https://cdn.example.com/a/${d.avatar}.png`, locale: d.locale, loadedAt: clock };
  profiles[id] = p;
  return p;
}

function enqueueLookup(user, cb) {
  const node = { user, cb, next: null };
  if (lookupQueue.tail) lookupQueue.tail.next = node; else lookupQueue.head = node;
  lookupQueue.tail = node;
  lookupQueue.length++;
}

function drainLookups(max) {
  for (let i = 0; i < max && lookupQueue.head; i++) {
    const n = lookupQueue.head;
    lookupQueue.head = n.next;
    if (!lookupQueue.head) lookupQueue.tail = null;
    lookupQueue.length--;
    n.cb(loadProfile(n.user));
  }
}

function issue(user, family) {
  const jti = 'at_' + (++seq).toString(36) + rng.hex(6);
  const prof = profiles[user] || loadProfile(user);
  tokenCache.set(jti, { claims: { sub: user, roles: prof.roles, kid: jwks[jwks.length - 1].kid }, exp: clock + 30 + rng.int(30) });
  const rt = 'rt_' + rng.hex(20);
  refreshTokens[rt] = { user, family: family || rng.hex(8), exp: clock + 150 + rng.int(100) };
  sessionsByUser[user] = (sessionsByUser[user] || 0) + 1;
  return { jti, rt };
}

function dropRefresh(rt) {
  const r = refreshTokens[rt];
  if (!r) return;
  delete refreshTokens[rt];
  if (--sessionsByUser[r.user] === 0) delete sessionsByUser[r.user];
}

function authorize(roles, resource) {
  const key = roles.join(',') + '|' + resource;
  let d = permissionCache.get(key);
  if (d === undefined) {
    d = roles.some((r) => PERMS[r].includes(resource.split(':')[0]));
    permissionCache.set(key, d);
    if (permissionCache.size > 400) permissionCache.delete(permissionCache.keys().next().value);
  } else { permissionCache.delete(key); permissionCache.set(key, d); }
  return d;
}

const live = [];   // client side: tokens held by active clients (spliced when logged out)

function pickUser() {
  return rng.chance(0.9) ? rng.int(600) : 600 + rng.int(59000);   // regulars + long tail
}

function tick() {
  clock++;
  const n = 6 + rng.int(8);
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.18 || live.length < 20) {
      // password login (with MFA for some)
      const user = pickUser();
      const w = (loginAttempts.get(user) || []).filter((t) => clock - t < 30);
      w.push(clock);
      loginAttempts.set(user, w);
      if (w.length > 5) continue;
      if (rng.chance(0.3)) { mfaChallenges.set('mfa_' + ++seq, { user, code: rng.int(1e6), exp: clock + 10 }); continue; }
      enqueueLookup(user, (prof) => { live.push({ user, ...issue(user) }); auditBuffer.push({ ev: 'login', user, at: clock, name: prof.displayName }); });
    } else if (r < 0.23 && mfaChallenges.size) {
      const id = mfaChallenges.keys().next().value;
      const c = mfaChallenges.get(id);
      mfaChallenges.delete(id);
      if (c.exp >= clock) enqueueLookup(c.user, () => live.push({ user: c.user, ...issue(c.user) }));
    } else if (r < 0.75) {
      // verify an access token on an API call
      const s = live[rng.int(live.length)];
      const t = tokenCache.get(s.jti);
      if (!t || revoked.has(s.jti)) continue;
      authorize(t.claims.roles, rng.pick(['read', 'write', 'delete', 'pay', 'invite']) + ':' + rng.pick(['doc', 'project', 'invoice', 'team']));
      if (rng.chance(0.15)) loadProfile(t.claims.sub);      // /me
    } else if (r < 0.9) {
      // refresh: rotate the refresh token
      const i = rng.int(live.length);
      const s = live[i];
      const old = refreshTokens[s.rt];
      if (!old) { live.splice(i, 1); continue; }
      dropRefresh(s.rt);
      tokenCache.delete(s.jti);
      Object.assign(s, issue(s.user, old.family));
    } else {
      // logout: revoke
      const i = rng.int(live.length);
      const [s] = live.splice(i, 1);
      revoked.add(s.jti);
      revokedExp.push({ jti: s.jti, exp: clock + 60 });
      tokenCache.delete(s.jti);
      dropRefresh(s.rt);
      auditBuffer.push({ ev: 'logout', user: s.user, at: clock });
    }
  }
  drainLookups(rng.int(5));
  if (auditBuffer.length > 30) auditBuffer = [];
  if (clock % 10 === 0) {
    for (const [k, t] of tokenCache) if (t.exp < clock) tokenCache.delete(k);
    for (const rt of Object.keys(refreshTokens)) if (refreshTokens[rt].exp < clock) dropRefresh(rt);
    while (revokedExp.length && revokedExp[0].exp < clock) revoked.delete(revokedExp.shift().jti);
    for (const [u, w] of loginAttempts) if (clock - w[w.length - 1] > 30) loginAttempts.delete(u);
    for (const [id, c] of mfaChallenges) if (c.exp < clock) mfaChallenges.delete(id);
    // client side: drop sessions whose refresh token expired
    for (let i = live.length - 1; i >= 0; i--) if (!refreshTokens[live[i].rt]) live.splice(i, 1);
  }
  if (clock % 120 === 0) {
    jwks = jwks.concat([{ kid: 'k' + clock, alg: 'RS256', n: rng.hex(64) }]).slice(-3);
  }
}

run({
  prog: 'auth_service',
  warmup: 8,
  perInterval: 4,
  setup(r) {
    rng = r;
    const brng = r.fork('bg');
    for (let id = 0; id < 59600; id++) {
      directory.set(id, { id, first: brng.word(5), last: brng.word(8), email: brng.word(9) + '@corp.example', roles: brng.chance(0.1) ? [brng.pick(ROLES), brng.pick(ROLES)] : [brng.pick(ROLES)], avatar: brng.hex(12), locale: brng.pick(['en-US', 'de-DE', 'ja-JP', 'fr-FR']) });
    }
    jwks = [{ kid: 'k0', alg: 'RS256', n: brng.hex(64) }];
  },
  step() { for (let i = 0; i < 120; i++) tick(); },
  sizes() {
    return {
      leak: { profiles: Object.keys(profiles).length },
      noise: { tokenCache: tokenCache.size, refreshTokens: Object.keys(refreshTokens).length, revoked: revoked.size, loginAttempts: loginAttempts.size, mfaChallenges: mfaChallenges.size, lookupQueue: lookupQueue.length, permissionCache: permissionCache.size, auditBuffer: auditBuffer.length, sessionsByUser: Object.keys(sessionsByUser).length, jwks: jwks.length, live: live.length, directory: directory.size },
    };
  },
});
