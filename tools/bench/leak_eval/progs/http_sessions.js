'use strict';
// Cookie session middleware in front of a small account/site server.
// Planted leaks:
//   `sessions`    -- plain-object session table; the sweeper only expires sessions
//                    that belong to a logged-in user, anonymous visitor sessions stay forever.
//   `openSockets` -- Set of every accepted socket ("for graceful shutdown"); only
//                    emptied on server 'close', so closed sockets pile up.
const http = require('http');
const { run, Load } = require('../lib/snap');
const { httpRequest, listen } = require('../lib/client');

const SESSION_TTL = 2500;     // logical clock ticks (requests)
const PAGES = ['/', '/about', '/pricing', '/docs', '/blog', '/blog/post', '/account', '/account/settings', '/inbox', '/search'];

// ---------------------------------------------------------------- server state
const userDirectory = new Map();    // background: userId -> profile
const sessions = {};                // LEAK (anonymous part): sid -> session
const sessionsByUser = new Map();   // userId -> Set<sid>, fluctuating
const openSockets = new Set();      // LEAK: every socket ever accepted
const activeSockets = new Set();    // correct bookkeeping, fluctuating
const csrfTokens = new Map();       // token -> {sid, expires}, TTL
const loginFailures = {};           // username -> {count, at}, deleted on success or when stale
const pendingLogins = new Map();    // fluctuating: async "password hash" in progress
const recentLogins = [];            // bounded (push/shift, 100)
let clock = 0;
let srng;

function parseCookies(h) {
  const out = {};
  if (!h) return out;
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

function newSession(res) {
  const sid = srng.hex(24);
  const s = { sid, userId: null, created: clock, lastSeen: clock, views: 0, flash: [], prefs: { theme: srng.pick(['light', 'dark']), lang: srng.pick(['en', 'de', 'fr', 'ja']) } };
  sessions[sid] = s;
  res.setHeader('set-cookie', `sid=${sid}; HttpOnly; Path=/`);
  return s;
}

function sweep() {
  for (const sid in sessions) {
    const s = sessions[sid];
    // BUG: anonymous sessions are never considered for expiry
    if (s.userId !== null && clock - s.lastSeen > SESSION_TTL) {
      const set = sessionsByUser.get(s.userId);
      if (set) { set.delete(sid); if (set.size === 0) sessionsByUser.delete(s.userId); }
      delete sessions[sid];
    }
  }
  for (const [tok, t] of csrfTokens) if (t.expires < clock) csrfTokens.delete(tok);
  for (const name of Object.keys(loginFailures)) if (clock - loginFailures[name].at > 600) delete loginFailures[name];
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function handle(req, res, body) {
  clock++;
  if (clock % 150 === 0) sweep();
  const cookies = parseCookies(req.headers.cookie);
  let s = cookies.sid && sessions[cookies.sid];
  if (!s) s = newSession(res);
  s.lastSeen = clock;
  s.views++;
  const url = req.url;
  if (req.method === 'POST' && url === '/login') {
    const msg = JSON.parse(body);
    const key = srng.hex(8);
    pendingLogins.set(key, { user: msg.user, sid: s.sid, started: clock });
    setTimeout(() => {
      pendingLogins.delete(key);
      const u = userDirectory.get(msg.user);
      if (!u || msg.password !== u.password) {
        const f = loginFailures[msg.user] || (loginFailures[msg.user] = { count: 0, at: 0 });
        f.count++; f.at = clock;
        return send(res, 401, { error: 'bad credentials' });
      }
      delete loginFailures[msg.user];
      s.userId = u.id;
      let set = sessionsByUser.get(u.id);
      if (!set) sessionsByUser.set(u.id, (set = new Set()));
      set.add(s.sid);
      recentLogins.push({ user: u.id, at: clock, ip: req.socket.remoteAddress });
      if (recentLogins.length > 100) recentLogins.shift();
      s.flash.push('Welcome back, ' + u.name);
      send(res, 200, { ok: true });
    }, 1 + srng.int(5));
    return;
  }
  if (req.method === 'POST' && url === '/logout') {
    if (s.userId !== null) {
      const set = sessionsByUser.get(s.userId);
      if (set) { set.delete(s.sid); if (set.size === 0) sessionsByUser.delete(s.userId); }
    }
    delete sessions[s.sid];
    res.setHeader('set-cookie', 'sid=; Max-Age=0');
    return send(res, 200, { ok: true });
  }
  if (url === '/csrf') {
    const tok = srng.hex(16);
    csrfTokens.set(tok, { sid: s.sid, expires: clock + 200 + srng.int(400) });
    return send(res, 200, { token: tok });
  }
  const flash = s.flash.splice(0, s.flash.length);
  const user = s.userId !== null ? userDirectory.get('user' + s.userId) : null;
  send(res, 200, { page: url, views: s.views, user: user ? user.name : null, flash, prefs: s.prefs });
}

// ---------------------------------------------------------------- browsers (client)
let server, agent, load, port;
const browsers = [];

async function browse(rng) {
  const b = rng.pick(browsers);
  if (b.busy) return;          // that tab is still loading; count as a no-op tick
  b.busy = true;
  try {
    const headers = {};
    if (b.cookie) headers.cookie = b.cookie;
    if (rng.chance(0.02)) headers.connection = 'close';
    let r;
    if (b.cookie && !b.loggedIn && b.wantsLogin && rng.chance(0.3)) {
      const ok = rng.chance(0.85);
      r = await httpRequest(agent, port, 'POST', '/login', { headers, body: { user: 'user' + b.user, password: ok ? 'pw' + b.user : 'nope' } });
      if (r.status === 200) b.loggedIn = true;
    } else if (b.loggedIn && b.remaining <= 1 && rng.chance(0.6)) {
      r = await httpRequest(agent, port, 'POST', '/logout', { headers, body: {} });
      b.remaining = 0;
    } else if (rng.chance(0.08)) {
      r = await httpRequest(agent, port, 'GET', '/csrf', { headers });
    } else {
      r = await httpRequest(agent, port, 'GET', rng.pick(PAGES), { headers });
    }
    const sc = r.headers['set-cookie'];
    if (sc && sc[0].startsWith('sid=') && !sc[0].startsWith('sid=;')) b.cookie = sc[0].split(';')[0];
    if (--b.remaining <= 0) resetBrowser(b, rng);   // visitor leaves (maybe without logging out)
  } finally {
    b.busy = false;
  }
}

function resetBrowser(b, rng) {
  b.cookie = null;
  b.loggedIn = false;
  b.wantsLogin = rng.chance(0.5);
  b.user = rng.int(24000);
  b.remaining = 4 + rng.int(20);
}

run({
  prog: 'http_sessions',
  warmup: 10,
  perInterval: 4,
  async setup(rng) {
    srng = rng.fork('server');
    const drng = rng.fork('users');
    const cities = Array.from({ length: 200 }, () => drng.word(6 + drng.int(6)));
    for (let i = 0; i < 24000; i++) {
      userDirectory.set('user' + i, {
        id: i, name: drng.word(5) + ' ' + drng.word(8), email: drng.word(7) + '@example.com', password: 'pw' + i,
        roles: drng.chance(0.1) ? ['admin', 'user'] : ['user'], created: 1600000000000 + drng.int(1e10),
        address: { street: drng.int(999) + ' ' + drng.word(9) + ' St', city: drng.pick(cities), zip: String(10000 + drng.int(89999)) },
        lastOrders: [drng.int(1e6), drng.int(1e6), drng.int(1e6)],
      });
    }
    server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
    });
    server.on('connection', (sock) => {
      openSockets.add(sock);
      activeSockets.add(sock);
      sock.on('close', () => activeSockets.delete(sock));
    });
    server.on('close', () => openSockets.clear());
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const crng = rng.fork('client');
    for (let i = 0; i < 40; i++) { const b = {}; resetBrowser(b, crng); browsers.push(b); }
    load = new Load(8, () => browse(crng));
  },
  step: () => load.until(400),
  sizes() {
    const all = Object.values(sessions);
    return {
      leak: { sessions: all.length, 'sessions(anonymous)': all.filter((s) => s.userId === null).length, openSockets: openSockets.size },
      noise: { 'sessions(logged-in)': all.filter((s) => s.userId !== null).length, sessionsByUser: sessionsByUser.size, activeSockets: activeSockets.size, csrfTokens: csrfTokens.size, loginFailures: Object.keys(loginFailures).length, pendingLogins: pendingLogins.size, recentLogins: recentLogins.length, userDirectory: userDirectory.size },
    };
  },
  async teardown() { load.stop(); agent.destroy(); },
});
