'use strict';
// Webhook dispatcher: domain events fan out to subscriber endpoints over HTTP
// (a local receiver server emulates the subscribers, some healthy, some
// flaky, some slow). Signed payloads, per-endpoint circuit breakers and
// token buckets, bounded delivery logs, and a retry queue with backoff.
const http = require('http');
const crypto = require('crypto');
const { EventEmitter } = require('events');
const { run } = require('../lib/snap');
const { request, readBody, listen } = require('../lib/http_client');

const ENDPOINTS = 60;
const EVENT_TYPES = ['order.created', 'order.paid', 'order.shipped', 'invoice.issued', 'customer.updated', 'refund.created'];
const DELIVERY_LOG_PER_ENDPOINT = 12;
const REPLAY_BUFFER_MAX = 1500;
const BREAKER_THRESHOLD = 5;
const BREAKER_COOLDOWN_MS = 60000;
const RETRY_BATCH = 1;          // per retry-worker run
const RETRY_EVERY = 2;          // worker runs every other tick
const DEAD_LETTER_MAX = 200;

let rng;
let now;

// ------------------------------------------------------------------ receiver
// health: 'ok' | 'flaky' | 'slow' | 'down', random-walking over time
const receiverHealth = new Map();
let receiverRng;
const receiver = http.createServer(async (req, res) => {
  const body = await readBody(req);
  const id = Number(req.url.split('/').pop());
  const h = receiverHealth.get(id) || 'ok';
  const respond = (code) => { res.writeHead(code, { 'content-type': 'text/plain' }); res.end(code === 200 ? `ok ${body.length}` : 'error'); };
  if (h === 'down') return respond(503);
  if (h === 'flaky') return respond(receiverRng.chance(0.6) ? 500 : 200);
  if (h === 'slow') { heldResponses.push({ due: now() + receiverRng.range(2, 8) * 1000, respond }); return; }
  respond(receiverRng.chance(0.05) ? 500 : 200);
});
receiver.keepAliveTimeout = 60000;
const heldResponses = [];   // slow subscribers answer a few seconds later
function releaseHeld() {
  const t = now();
  for (let i = heldResponses.length - 1; i >= 0; i--) {
    if (heldResponses[i].due <= t) heldResponses.splice(i, 1)[0].respond(200);
  }
}

// ------------------------------------------------------------------ dispatcher
const endpoints = new Map();       // id -> endpoint config + state
const subscriptions = {};          // eventType -> [endpointId]
const inflightDeliveries = new Map(); // deliveryId -> {endpointId, attempt, startedAt, timer}
const retryQueue = [];             // deliveries waiting for another attempt
const deadLetters = [];            // bounded: last DEAD_LETTER_MAX given-up deliveries
const openCircuits = new Set();
// recent events, kept so that subscribers can request a replay
const replayBuffer = { items: new Array(REPLAY_BUFFER_MAX), next: 0, count: 0 };
const signatureCache = new Map();  // bounded LRU: payload digest -> signature
const SIGNATURE_CACHE_MAX = 500;
const dispatcher = new EventEmitter();
dispatcher.setMaxListeners(200);
let deliverySeq = 0;
let receiverPort;
let agent;

function registerEndpoints(r) {
  for (let id = 1; id <= ENDPOINTS; id++) {
    const ep = {
      id,
      url: `/hooks/${id}`,
      secret: r.id(32),
      events: [],
      breaker: { state: 'closed', failures: 0, openedAt: 0 },
      bucket: { tokens: 10, updatedAt: 0 },
      log: [],
    };
    for (let k = r.range(1, 2); k > 0; k--) {
      const t = r.pick(EVENT_TYPES);
      if (!ep.events.includes(t)) ep.events.push(t);
    }
    endpoints.set(id, ep);
    for (const t of ep.events) (subscriptions[t] || (subscriptions[t] = [])).push(id);
    receiverHealth.set(id, r.chance(0.75) ? 'ok' : r.pick(['flaky', 'slow', 'slow', 'down']));
  }
}

function sign(ep, payload) {
  const digest = crypto.createHash('sha1').update(payload).digest('hex') + ep.id;
  let sig = signatureCache.get(digest);
  if (!sig) {
    sig = crypto.createHmac('sha256', ep.secret).update(payload).digest('hex');
    signatureCache.set(digest, sig);
    if (signatureCache.size > SIGNATURE_CACHE_MAX) signatureCache.delete(signatureCache.keys().next().value);
  }
  return sig;
}

function takeToken(ep) {
  const t = now();
  const b = ep.bucket;
  b.tokens = Math.min(10, b.tokens + ((t - b.updatedAt) / 1000) * 2);
  b.updatedAt = t;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

function breakerAllows(ep) {
  const br = ep.breaker;
  if (br.state === 'open' && now() - br.openedAt > BREAKER_COOLDOWN_MS) br.state = 'half-open';
  return br.state !== 'open';
}

function recordResult(ep, delivery, ok, status) {
  ep.log.push({ id: delivery.id, attempt: delivery.attempt, status, at: now() });
  if (ep.log.length > DELIVERY_LOG_PER_ENDPOINT) ep.log = ep.log.slice(-DELIVERY_LOG_PER_ENDPOINT);
  const br = ep.breaker;
  if (ok) {
    br.failures = 0;
    if (br.state !== 'closed') { br.state = 'closed'; openCircuits.delete(ep.id); }
  } else if (++br.failures >= BREAKER_THRESHOLD && br.state !== 'open') {
    br.state = 'open';
    br.openedAt = now();
    openCircuits.add(ep.id);
  }
}

function scheduleRetry(delivery) {
  if (delivery.attempt >= 8) {
    deadLetters.push({ id: delivery.id, endpointId: delivery.endpointId, type: delivery.type, failedAt: now() });
    if (deadLetters.length > DEAD_LETTER_MAX) deadLetters.splice(0, deadLetters.length - DEAD_LETTER_MAX);
    return;
  }
  delivery.notBefore = now() + Math.min(300000, 1000 * 2 ** delivery.attempt);
  retryQueue.push(delivery);
}

function attempt(delivery) {
  const ep = endpoints.get(delivery.endpointId);
  if (!breakerAllows(ep) || !takeToken(ep)) {
    scheduleRetry(delivery);
    return Promise.resolve();
  }
  delivery.attempt++;
  const sig = sign(ep, delivery.payload);
  const entry = { endpointId: ep.id, attempt: delivery.attempt, startedAt: now(), timer: null };
  entry.timer = setTimeout(() => inflightDeliveries.delete(delivery.id), 10000);
  inflightDeliveries.set(delivery.id, entry);
  return request(agent, receiverPort, 'POST', ep.url, delivery.payload, {
    'x-webhook-signature': sig, 'x-webhook-id': delivery.id, 'x-webhook-attempt': String(delivery.attempt),
  }).then((resp) => {
    clearTimeout(entry.timer);
    inflightDeliveries.delete(delivery.id);
    const ok = resp.status >= 200 && resp.status < 300;
    recordResult(ep, delivery, ok, resp.status);
    dispatcher.emit('delivered', delivery, ok);
    if (!ok) scheduleRetry(delivery);
  });
}

function publish(type, data) {
  const payload = JSON.stringify({ type, data, createdAt: now() });
  replayBuffer.items[replayBuffer.next] = { type, payload, data, at: now(), subscribers: (subscriptions[type] || []).slice() };
  replayBuffer.next = (replayBuffer.next + 1) % REPLAY_BUFFER_MAX;
  replayBuffer.count = Math.min(REPLAY_BUFFER_MAX, replayBuffer.count + 1);
  const ids = subscriptions[type] || [];
  return ids.map((endpointId) => ({ endpointId, p: attempt({ id: `d${++deliverySeq}`, endpointId, type, payload, attempt: 0, notBefore: 0 }) }));
}

function processRetries() {
  const jobs = [];
  let taken = 0;
  for (let i = 0; i < retryQueue.length && taken < RETRY_BATCH; i++) {
    if (retryQueue[i].notBefore <= now()) {
      const [d] = retryQueue.splice(i, 1);
      i--;
      taken++;
      jobs.push({ endpointId: d.endpointId, p: attempt(d) });
    }
  }
  return jobs;
}

// a batch-level progress tracker subscribes to 'delivered' for one batch
function trackBatch(promises) {
  let done = 0;
  let failed = 0;
  const onDelivered = (_d, ok) => { done++; if (!ok) failed++; };
  dispatcher.on('delivered', onDelivered);
  return Promise.all(promises).then(() => {
    dispatcher.removeListener('delivered', onDelivered);
    return { done, failed };
  });
}

const slowBatches = new Set();

run({
  warmupSteps: 200,
  stepsPerInterval: 40,
  tickMs: 1000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    receiverRng = rng.fork('receiver');
    registerEndpoints(rng.fork('endpoints'));
    receiverPort = await listen(receiver);
    agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 6 });
  },
  async step(ctx, step) {
    const load = ctx.load();
    releaseHeld();
    // endpoint health drifts
    for (let k = 0; k < 2; k++) {
      const id = 1 + rng.int(ENDPOINTS);
      receiverHealth.set(id, rng.chance(0.75) ? 'ok' : rng.pick(['flaky', 'slow', 'slow', 'down']));
    }
    const sent = [];
    for (let k = rng.count(1.5 * load); k > 0; k--) {
      const type = rng.pick(EVENT_TYPES);
      const data = { id: rng.id(10), amount: rng.int(100000), items: Array.from({ length: rng.range(1, 4) }, () => ({ sku: rng.id(6), qty: rng.range(1, 5) })) };
      sent.push(...publish(type, data));
    }
    for (let k = rng.count(10 * load); k > 0; k--) {
      publish('audit.logged', {
        actor: rng.id(8), action: rng.pick(['login', 'export', 'update']), resource: `/tenants/${rng.id(6)}/records/${rng.id(16)}`,
        ip: `10.${rng.int(255)}.${rng.int(255)}.${rng.int(255)}`, userAgent: `Mozilla/5.0 (X11; Linux x86_64) build/${rng.id(12)}`,
        diff: { before: { status: rng.pick(['draft', 'open']), owner: rng.id(8) }, after: { status: rng.pick(['open', 'closed']), owner: rng.id(8) } },
      });
    }
    if (step % RETRY_EVERY === 0) sent.push(...processRetries());
    // deliveries to slow subscribers finish in later steps, together with
    // the batch tracker waiting for them
    const batch = trackBatch(sent.map((s) => s.p));
    slowBatches.add(batch);
    batch.then(() => slowBatches.delete(batch));
    await Promise.all(sent.filter((s) => receiverHealth.get(s.endpointId) !== 'slow').map((s) => s.p));
  },
  async beforeSnapshot() {},
  sizes() {
    let logs = 0;
    for (const ep of endpoints.values()) logs += ep.log.length;
    return {
      retryQueue: retryQueue.length,
      inflightDeliveries: inflightDeliveries.size,
      openCircuits: openCircuits.size,
      deliveredListeners: dispatcher.listenerCount('delivered'),
      replayBuffer: replayBuffer.count,
      signatureCache: signatureCache.size,
      deliveryLogs: logs,
    };
  },
  async teardown() {
    agent.destroy();
    receiver.closeAllConnections();
    receiver.close();
  },
});
