'use strict';
// IoT telemetry ingester: devices POST reading batches over HTTP, long-poll
// for commands, and get alerts raised/cleared on thresholds. Readings are
// de-duplicated by message id (TTL), kept in a per-device ring, buffered for
// the time-series store, and rolled up per site.
const http = require('http');
const { URL } = require('url');
const { run } = require('../lib/snap');
const { request, readBody, listen } = require('../lib/http_client');

const DEVICES = 900;
const SITES = 40;
const RING = 24;
const DEDUPE_TTL_MS = 60000;
const POLL_TIMEOUT_MS = 90000;
const COMMAND_TTL_MS = 10 * 60000;
const FLUSH_AT = 1500;

let rng;
let now;

class Device {
  constructor(id, site, fw) {
    this.id = id;
    this.site = site;
    this.fw = fw;
    this.ring = new Array(RING).fill(null);
    this.ringPos = 0;
    this.lastSeen = 0;
    this.battery = 100;
    this.online = false;
  }
  record(r) {
    this.ring[this.ringPos] = r;
    this.ringPos = (this.ringPos + 1) % RING;
  }
}

// ------------------------------------------------------------------ state
const devices = new Map();
const recentMsgIds = new Map();     // msgId -> expiresAt
const pendingCommands = new Map();  // deviceId -> [{id, op, createdAt}]
const pollers = new Map();          // deviceId -> {res, since, timer}
const activeAlerts = new Map();     // `${deviceId}:${kind}` -> {since, value}
let writeBuffer = [];               // readings waiting for the TSDB writer
let written = 0;
const siteStats = {};               // site -> {online, readings, lastAt}
const socketDevice = new WeakMap();
const connections = new Set();
let cmdSeq = 0;

function registerFleet(r) {
  for (let i = 1; i <= DEVICES; i++) {
    const d = new Device(`dev-${i}`, `site-${1 + r.int(SITES)}`, r.pick(['1.4.2', '1.5.0', '2.0.1']));
    // prefill the ring from the last known readings in the device registry
    for (let k = 0; k < RING; k++) d.record({ t: 0, temp: 20 + r.int(5), hum: 40 + r.int(20), v: 3.3 });
    devices.set(d.id, d);
  }
}

function checkAlerts(d, r) {
  const checks = [['temp', r.temp > 38 || r.temp < 2], ['hum', r.hum > 90], ['volt', r.v < 3.0]];
  for (const [kind, bad] of checks) {
    const key = `${d.id}:${kind}`;
    if (bad && !activeAlerts.has(key)) activeAlerts.set(key, { since: now(), value: r[kind === 'volt' ? 'v' : kind] });
    else if (!bad && activeAlerts.has(key)) activeAlerts.delete(key);
  }
}

function ingest(body) {
  const msg = JSON.parse(body);
  if (recentMsgIds.has(msg.msgId)) return { status: 200, out: { dup: true } };
  recentMsgIds.set(msg.msgId, now() + DEDUPE_TTL_MS);
  const d = devices.get(msg.deviceId);
  if (!d) return { status: 404, out: {} };
  d.lastSeen = now();
  if (!d.online) {
    d.online = true;
    const st = siteStats[d.site] || (siteStats[d.site] = { online: 0, readings: 0, lastAt: 0 });
    st.online++;
  }
  const st = siteStats[d.site];
  for (const r of msg.readings) {
    d.record(r);
    checkAlerts(d, r);
    writeBuffer.push({ device: d.id, site: d.site, t: r.t, temp: r.temp, hum: r.hum, v: r.v });
    st.readings++;
  }
  st.lastAt = now();
  d.battery = msg.battery;
  if (writeBuffer.length >= FLUSH_AT) flushWrites();
  return { status: 202, out: { accepted: msg.readings.length } };
}

function flushWrites() {
  written += writeBuffer.length;
  writeBuffer = [];
}

function deliverCommands(deviceId) {
  const p = pollers.get(deviceId);
  const q = pendingCommands.get(deviceId);
  if (!p || !q || q.length === 0) return;
  pollers.delete(deviceId);
  pendingCommands.delete(deviceId);
  clearTimeout(p.timer);
  respond(p.res, 200, { commands: q });
}

function respond(res, status, obj) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function markOffline() {
  const t = now();
  for (const d of devices.values()) {
    if (d.online && t - d.lastSeen > 5 * 60000) {
      d.online = false;
      const st = siteStats[d.site];
      if (st && --st.online === 0) delete siteStats[d.site];
    }
  }
}

function sweep() {
  const t = now();
  for (const [id, exp] of recentMsgIds) if (exp <= t) recentMsgIds.delete(id);
  for (const [devId, p] of pollers) {
    if (t - p.since > POLL_TIMEOUT_MS) { pollers.delete(devId); clearTimeout(p.timer); respond(p.res, 204, {}); }
  }
  for (const [devId, q] of pendingCommands) {
    const keep = q.filter((c) => t - c.createdAt < COMMAND_TTL_MS);
    if (keep.length === 0) pendingCommands.delete(devId);
    else if (keep.length !== q.length) pendingCommands.set(devId, keep);
  }
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  const url = new URL(req.url, 'http://ingest.local');
  if (req.method === 'POST' && url.pathname === '/ingest') {
    const { status, out } = ingest(body);
    return respond(res, status, out);
  }
  if (req.method === 'GET' && url.pathname === '/commands') {
    const deviceId = url.searchParams.get('device');
    socketDevice.set(req.socket, deviceId);
    const old = pollers.get(deviceId);
    if (old) { clearTimeout(old.timer); respond(old.res, 204, {}); }
    const p = { res, since: now(), timer: null };
    p.timer = setTimeout(() => { if (pollers.get(deviceId) === p) { pollers.delete(deviceId); respond(res, 204, {}); } }, 60000);
    pollers.set(deviceId, p);
    res.on('close', () => { if (pollers.get(deviceId) === p) { pollers.delete(deviceId); clearTimeout(p.timer); } });
    deliverCommands(deviceId);
    return;
  }
  respond(res, 404, {});
});
server.on('connection', (s) => { connections.add(s); s.on('close', () => connections.delete(s)); });

// ------------------------------------------------------------------ device simulators
let port;
let agent;
let pollAgent;
const polling = new Set();         // deviceIds with an outstanding poll (client side)
let msgSeq = 0;

function sendBatch(r, d) {
  const n = r.range(3, 8);
  const readings = [];
  for (let k = 0; k < n; k++) {
    readings.push({ t: now() - (n - k) * 1000, temp: +(18 + r() * 10 + (r.chance(0.01) ? 25 : 0)).toFixed(2), hum: +(35 + r() * 30 + (r.chance(0.01) ? 40 : 0)).toFixed(1), v: +(3.1 + r() * 0.3 - (r.chance(0.01) ? 0.3 : 0)).toFixed(2) });
  }
  const msg = { deviceId: d.id, msgId: `${d.id}-${++msgSeq}`, battery: Math.max(5, d.battery - r.int(2)), readings };
  const p = request(agent, port, 'POST', '/ingest', msg);
  // flaky cellular links re-send the same message
  if (r.chance(0.05)) return p.then(() => request(agent, port, 'POST', '/ingest', msg));
  return p;
}

function openPoll(d) {
  if (polling.has(d.id)) return;
  polling.add(d.id);
  request(pollAgent, port, 'GET', `/commands?device=${d.id}`).finally(() => polling.delete(d.id));
}

run({
  warmupSteps: 160,
  stepsPerInterval: 40,
  tickMs: 10000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    registerFleet(rng.fork('fleet'));
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 10, maxFreeSockets: 10 });
    pollAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 4 });
  },
  async step(ctx, step) {
    const load = ctx.load();
    const ids = Array.from(devices.keys());
    const jobs = [];
    // active fraction of the fleet follows the load curve
    const reporting = Math.round(24 * load);
    const activeSpan = Math.round(DEVICES * Math.min(1, 0.55 * load));
    for (let k = 0; k < reporting; k++) jobs.push(sendBatch(rng, devices.get(ids[rng.int(activeSpan)])));
    for (let k = rng.count(2.5 * load); k > 0; k--) openPoll(devices.get(ids[rng.int(activeSpan)]));
    // operators queue commands (firmware checks, config pushes)
    for (let k = rng.count(3); k > 0; k--) {
      const devId = ids[rng.int(DEVICES)];
      const q = pendingCommands.get(devId) || [];
      q.push({ id: ++cmdSeq, op: rng.pick(['reboot', 'set-interval', 'fw-check', 'calibrate']), createdAt: now() });
      pendingCommands.set(devId, q);
      deliverCommands(devId);
    }
    await Promise.all(jobs);
    if (step % 3 === 0) sweep();
    if (step % 6 === 0) markOffline();
    if (step % 11 === 0) flushWrites();
  },
  sizes() {
    return {
      devices: devices.size,
      recentMsgIds: recentMsgIds.size,
      pendingCommands: pendingCommands.size,
      pollers: pollers.size,
      activeAlerts: activeAlerts.size,
      writeBuffer: writeBuffer.length,
      siteStats: Object.keys(siteStats).length,
      connections: connections.size,
    };
  },
  async teardown() {
    agent.destroy();
    pollAgent.destroy();
    server.closeAllConnections();
    server.close();
  },
});
