'use strict';
// URL shortener with click analytics: POST /api/links creates expiring short
// links, GET /<code> redirects. Hot links are served from an LRU, per-IP
// token buckets throttle creation, per-link hourly counters roll over, click
// events are sampled into an analytics batch and referrers are aggregated.
const http = require('http');
const { URL } = require('url');
const { run } = require('../lib/snap');
const { request, readBody, listen } = require('../lib/http_client');

const LINK_TTL_MS = 6 * 3600 * 1000;
const HOT_CACHE_MAX = 800;
const BUCKET_IDLE_MS = 5 * 60 * 1000;
const CLICK_SAMPLE = 0.3;

let rng;
let now;

// ------------------------------------------------------------------ storage
const links = new Map();             // code -> {url, owner, createdAt, expiresAt, clicks}
const hotCache = new Map();          // LRU: code -> {url, cachedAt}
const rateByIp = new Map();          // ip -> {tokens, last}
let hourlyCounters = {};             // code -> clicks in the current hour
let currentHour = -1;
let previewQueue = [];               // links waiting for a preview thumbnail
const clickLog = [];                 // sampled click events for the warehouse export
let exportedBatches = 0;
const connections = new Set();
const blockedDomains = new Set();    // phishing/malware feed, loaded at startup
const domainPolicies = new Map();    // registrable domain -> {maxTtlHours, requireCaptcha}

function loadPolicyFeeds(r) {
  const tlds = ['com', 'net', 'org', 'io', 'xyz', 'top', 'info', 'biz'];
  for (let i = 0; i < 30000; i++) blockedDomains.add(`${r.id(r.range(6, 14))}.${r.pick(tlds)}`);
  for (let i = 0; i < 4000; i++) {
    domainPolicies.set(`${r.id(8)}.${r.pick(tlds)}`, { maxTtlHours: r.range(1, 48), requireCaptcha: r.chance(0.1), notes: r.chance(0.2) ? `ticket ${r.id(6)}` : '' });
  }
}

const recordReferrer = (() => {
  const referrers = new Map();       // referrer URL -> {count, firstSeen, codes}
  return function (ref, code) {
    let r = referrers.get(ref);
    if (!r) {
      r = { count: 0, firstSeen: now(), codes: [] };
      referrers.set(ref, r);
    }
    r.count++;
    if (r.codes.length < 5 && !r.codes.includes(code)) r.codes.push(code);
    return referrers.size;
  };
})();
let referrerCount = 0;

function newCode() {
  let code;
  do { code = rng.id(7); } while (links.has(code));
  return code;
}

function takeToken(ip) {
  let b = rateByIp.get(ip);
  if (!b) { b = { tokens: 20, last: now() }; rateByIp.set(ip, b); }
  b.tokens = Math.min(20, b.tokens + (now() - b.last) / 3000);
  b.last = now();
  if (b.tokens < 1) return false;
  b.tokens--;
  return true;
}

function resolve(code) {
  const hot = hotCache.get(code);
  if (hot) {
    hotCache.delete(code);
    hotCache.set(code, hot);
    return hot.url;
  }
  const l = links.get(code);
  if (!l || l.expiresAt <= now()) return null;
  hotCache.set(code, { url: l.url, cachedAt: now() });
  if (hotCache.size > HOT_CACHE_MAX) hotCache.delete(hotCache.keys().next().value);
  return l.url;
}

function countClick(code, req) {
  const l = links.get(code);
  if (l) l.clicks++;
  const hour = Math.floor(now() / 3600000);
  if (hour !== currentHour) { currentHour = hour; hourlyCounters = {}; }
  hourlyCounters[code] = (hourlyCounters[code] || 0) + 1;
  const ref = req.headers.referer;
  if (ref) referrerCount = recordReferrer(ref, code);
  if (rng() < CLICK_SAMPLE) {
    clickLog.push({ code, at: now(), ua: req.headers['user-agent'], ref: ref || null, ip: req.headers['x-forwarded-for'] });
  }
}

// Warehouse export: ships the sampled clicks collected so far.
function exportClicks() {
  const batch = clickLog.slice(0);
  if (batch.length) exportedBatches++;
  return batch.length;
}

function sweep() {
  const t = now();
  for (const [code, l] of links) {
    if (l.expiresAt <= t) {
      links.delete(code);
      hotCache.delete(code);
      delete hourlyCounters[code];
    }
  }
  for (const [ip, b] of rateByIp) if (t - b.last > BUCKET_IDLE_MS) rateByIp.delete(ip);
}

function renderPreviews(n) {
  const done = previewQueue.slice(0, n);
  previewQueue = previewQueue.slice(n).filter((p) => links.has(p.code));
  return done.length;
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  const url = new URL(req.url, 'http://sho.rt');
  const ip = req.headers['x-forwarded-for'] || '127.0.0.1';
  if (req.method === 'POST' && url.pathname === '/api/links') {
    if (!takeToken(ip)) { res.writeHead(429); res.end(); return; }
    const { target, ttlHours } = JSON.parse(body);
    const host = new URL(target).hostname;
    if (blockedDomains.has(host)) { res.writeHead(422); res.end(); return; }
    const code = newCode();
    const ttl = Math.min(LINK_TTL_MS, (ttlHours || 6) * 3600 * 1000);
    links.set(code, { url: target, owner: ip, createdAt: now(), expiresAt: now() + ttl, clicks: 0 });
    if (rng.chance(0.3)) previewQueue = previewQueue.concat([{ code, target, requestedAt: now() }]);
    const text = JSON.stringify({ code, short: `https://sho.rt/${code}` });
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  if (req.method === 'GET' && url.pathname.length === 8) {
    const code = url.pathname.slice(1);
    const target = resolve(code);
    if (!target) { res.writeHead(404); res.end(); return; }
    countClick(code, req);
    res.writeHead(302, { location: target, 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(404);
  res.end();
});
server.on('connection', (s) => { connections.add(s); s.on('close', () => connections.delete(s)); });

// ------------------------------------------------------------------ clients
let port;
let agent;
const knownCodes = [];     // client-side: codes recently handed out (bounded)
const KNOWN_MAX = 1500;
const UAS = ['Mozilla/5.0 (iPhone)', 'Mozilla/5.0 (Windows NT 10.0)', 'curl/8.4', 'Slackbot-LinkExpanding 1.0', 'Mozilla/5.0 (Macintosh)'];
const SITES = ['https://news.example.com/a/', 'https://social.example.net/post/', 'https://mail.example.org/', 'https://forum.example.io/t/'];

function referer(r) {
  const roll = r();
  if (roll < 0.4) return null;
  if (roll < 0.8) return r.pick(SITES) + (1 + r.int(40));
  // click-ids make every share URL distinct
  return `${r.pick(SITES)}${1 + r.int(40)}?fbclid=${r.id(16)}`;
}

function createLink(r) {
  const target = `https://shop.example.com/p/${r.id(10)}?utm_source=${r.pick(['tw', 'fb', 'mail'])}&utm_campaign=${r.id(5)}`;
  const ip = `203.0.${r.int(8)}.${r.int(256)}`;
  return request(agent, port, 'POST', '/api/links', { target, ttlHours: r.range(1, 6) }, { 'x-forwarded-for': ip }).then((resp) => {
    if (resp.status === 201) {
      knownCodes.push(JSON.parse(resp.text).code);
      if (knownCodes.length > KNOWN_MAX) knownCodes.splice(0, knownCodes.length - KNOWN_MAX);
    }
  });
}

function click(r) {
  if (!knownCodes.length) return Promise.resolve();
  const code = knownCodes[knownCodes.length - 1 - r.zipf(knownCodes.length, 1.5)];
  const h = { 'user-agent': r.pick(UAS), 'x-forwarded-for': `198.51.${r.int(256)}.${r.int(256)}` };
  const ref = referer(r);
  if (ref) h.referer = ref;
  return request(agent, port, 'GET', `/${code}`, null, h);
}

run({
  warmupSteps: 220,
  stepsPerInterval: 40,
  tickMs: 120000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    loadPolicyFeeds(rng.fork('feeds'));
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 6, maxFreeSockets: 6 });
  },
  async step(ctx, step) {
    const load = ctx.load();
    const jobs = [];
    for (let k = rng.count(6 * load); k > 0; k--) jobs.push(createLink(rng));
    for (let k = Math.round(16 * load); k > 0; k--) jobs.push(click(rng));
    await Promise.all(jobs);
    renderPreviews(rng.range(1, 3));
    if (step % 10 === 0) { sweep(); exportClicks(); }
  },
  sizes() {
    return {
      clickLog: clickLog.length,
      referrers: referrerCount,
      links: links.size,
      hotCache: hotCache.size,
      rateByIp: rateByIp.size,
      hourlyCounters: Object.keys(hourlyCounters).length,
      previewQueue: previewQueue.length,
      connections: connections.size,
    };
  },
  async teardown() {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  },
});
