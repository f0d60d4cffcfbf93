'use strict';
// GraphQL-ish HTTP endpoint with per-request DataLoader batching, automatic
// persisted queries (APQ), a parse cache and "live" queries that are held open
// until the watched post changes or the watch times out.
const http = require('http');
const crypto = require('crypto');
const { EventEmitter } = require('events');
const { run } = require('../lib/snap');
const { request, readBody, listen } = require('../lib/http_client');

// ------------------------------------------------------------------ data
const db = { users: new Map(), posts: new Map(), comments: new Map(), postsByAuthor: new Map() };
let rng;
let now;

function seedDatabase(r) {
  const first = ['ana', 'bo', 'cy', 'dee', 'eli', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kai', 'lu'];
  for (let i = 1; i <= 2500; i++) {
    db.users.set(i, {
      id: i,
      name: `${r.pick(first)} ${r.pick(first)}son`,
      email: `user${i}@example.test`,
      friendIds: Array.from({ length: r.range(0, 6) }, () => r.range(1, 2500)),
    });
  }
  for (let i = 1; i <= 6000; i++) {
    const authorId = r.range(1, 2500);
    const post = { id: i, authorId, title: `Post ${i} about ${r.id(6)}`, body: `body-${r.id(40)}`, commentIds: [], version: 1 };
    db.posts.set(i, post);
    if (!db.postsByAuthor.has(authorId)) db.postsByAuthor.set(authorId, []);
    db.postsByAuthor.get(authorId).push(i);
  }
  for (let i = 1; i <= 9000; i++) {
    const postId = r.range(1, 6000);
    db.comments.set(i, { id: i, postId, authorId: r.range(1, 2500), body: `c-${r.id(20)}` });
    db.posts.get(postId).commentIds.push(i);
  }
}

// ------------------------------------------------------------------ parser
function tokenize(src) {
  const re = /\s*([{}():,!$]|\.\.\.|"(?:[^"\\]|\\.)*"|-?\d+|[A-Za-z_][A-Za-z0-9_]*)/gy;
  const out = [];
  let m;
  while ((m = re.exec(src)) !== null) { out.push(m[1]); if (re.lastIndex >= src.length) break; }
  return out;
}

function parse(src) {
  const t = tokenize(src);
  let i = 0;
  const peek = () => t[i];
  const next = () => t[i++];
  const expect = (s) => { if (t[i] !== s) throw new Error(`expected ${s} got ${t[i]}`); i++; };
  function value() {
    const v = next();
    if (v === '$') return { kind: 'Variable', name: next() };
    if (v[0] === '"') return { kind: 'String', value: v.slice(1, -1) };
    if (/^-?\d+$/.test(v)) return { kind: 'Int', value: Number(v) };
    return { kind: 'Enum', value: v };
  }
  function selectionSet() {
    expect('{');
    const sels = [];
    while (peek() !== '}') {
      let name = next();
      let alias = null;
      if (peek() === ':') { next(); alias = name; name = next(); }
      const args = [];
      if (peek() === '(') {
        next();
        while (peek() !== ')') { const an = next(); expect(':'); args.push({ name: an, value: value() }); if (peek() === ',') next(); }
        next();
      }
      const sel = { kind: 'Field', name, alias, args, selections: null };
      if (peek() === '{') sel.selections = selectionSet();
      sels.push(sel);
      if (peek() === ',') next();
    }
    expect('}');
    return sels;
  }
  const doc = { kind: 'Document', operation: 'query', name: null, variables: [], selections: null };
  if (peek() === 'query' || peek() === 'mutation') {
    doc.operation = next();
    if (peek() !== '(' && peek() !== '{') doc.name = next();
    if (peek() === '(') {
      next();
      while (peek() !== ')') { expect('$'); const vn = next(); expect(':'); const ty = next(); if (peek() === '!') next(); doc.variables.push({ name: vn, type: ty }); if (peek() === ',') next(); }
      next();
    }
  }
  doc.selections = selectionSet();
  return doc;
}

// ------------------------------------------------------------------ caches
// Parse cache: bounded LRU keyed by query text.
const PARSE_CACHE_MAX = 300;
const parseCache = new Map();
function parseCached(text) {
  let doc = parseCache.get(text);
  if (doc) { parseCache.delete(text); parseCache.set(text, doc); return doc; }
  doc = parse(text);
  parseCache.set(text, doc);
  if (parseCache.size > PARSE_CACHE_MAX) parseCache.delete(parseCache.keys().next().value);
  return doc;
}

// APQ registry: sha256(query) -> parsed document.
const persistedQueries = new Map();

// ------------------------------------------------------------------ DataLoader
class DataLoader {
  constructor(batchFn) {
    this.batchFn = batchFn;
    this.cache = new Map();
    this.queue = [];
  }
  load(key) {
    let p = this.cache.get(key);
    if (p) return p;
    p = new Promise((resolve, reject) => this.queue.push({ key, resolve, reject }));
    this.cache.set(key, p);
    if (this.queue.length === 1) process.nextTick(() => this.dispatch());
    return p;
  }
  dispatch() {
    const batch = this.queue;
    this.queue = [];
    const values = this.batchFn(batch.map((b) => b.key));
    batch.forEach((b, k) => b.resolve(values[k]));
  }
}

function makeLoaders() {
  return {
    user: new DataLoader((ids) => ids.map((id) => db.users.get(id) || null)),
    post: new DataLoader((ids) => ids.map((id) => db.posts.get(id) || null)),
    comment: new DataLoader((ids) => ids.map((id) => db.comments.get(id) || null)),
  };
}

// ------------------------------------------------------------------ execution
const resolverStats = {};
function countField(type, field) {
  const k = `${type}.${field}`;
  const s = resolverStats[k] || (resolverStats[k] = { calls: 0, lastAt: 0 });
  s.calls++;
  s.lastAt = now();
}

function argValue(arg, vars) {
  if (!arg) return undefined;
  return arg.value.kind === 'Variable' ? vars[arg.value.name] : arg.value.value;
}

const resolvers = {
  Query: {
    user: (_, a, l) => l.user.load(Number(a.id)),
    post: (_, a, l) => l.post.load(Number(a.id)),
    search: (_, a, l) => {
      const h = crypto.createHash('md5').update(String(a.term)).digest().readUInt32LE(0);
      const ids = [];
      for (let k = 0; k < (a.first || 5); k++) ids.push(1 + ((h + k * 7919) % 6000));
      return Promise.all(ids.map((id) => l.post.load(id)));
    },
  },
  User: {
    friends: (u, a, l) => Promise.all(u.friendIds.slice(0, a.first || 3).map((id) => l.user.load(id))),
    posts: (u, a, l) => Promise.all((db.postsByAuthor.get(u.id) || []).slice(0, a.first || 3).map((id) => l.post.load(id))),
  },
  Post: {
    author: (p, _, l) => l.user.load(p.authorId),
    comments: (p, a, l) => Promise.all(p.commentIds.slice(0, a.first || 3).map((id) => l.comment.load(id))),
  },
  Comment: {
    author: (c, _, l) => l.user.load(c.authorId),
  },
};
const fieldTypes = { user: 'User', post: 'Post', search: 'Post', friends: 'User', posts: 'Post', author: 'User', comments: 'Comment' };

async function resolveSelections(type, parent, sels, vars, loaders) {
  const out = {};
  await Promise.all(sels.map(async (sel) => {
    const args = {};
    for (const a of sel.args) args[a.name] = argValue(a, vars);
    countField(type, sel.name);
    const fn = resolvers[type] && resolvers[type][sel.name];
    let val = fn ? await fn(parent, args, loaders) : parent[sel.name];
    if (sel.selections && val != null) {
      const childType = fieldTypes[sel.name];
      val = Array.isArray(val)
        ? await Promise.all(val.map((v) => (v ? resolveSelections(childType, v, sel.selections, vars, loaders) : null)))
        : await resolveSelections(childType, val, sel.selections, vars, loaders);
    }
    out[sel.alias || sel.name] = val;
  }));
  return out;
}

// ------------------------------------------------------------------ server
const inflight = new Map();          // request id -> {op, startedAt, timer}
const requestMeta = new WeakMap();   // req -> {bytes}
const liveWaiters = new Map();       // postId -> Set<{res, since, reqId}>
const connections = new Set();
const events = new EventEmitter();
let reqSeq = 0;

function finish(reqId, res, status, obj) {
  const f = inflight.get(reqId);
  if (f) { clearTimeout(f.timer); inflight.delete(reqId); }
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function handleGraphql(req, res, body) {
  const reqId = ++reqSeq;
  const timer = setTimeout(() => finish(reqId, res, 504, { errors: [{ message: 'timeout' }] }), 30000);
  inflight.set(reqId, { op: 'query', startedAt: now(), timer });
  const msg = JSON.parse(body);
  let doc;
  const hash = msg.extensions && msg.extensions.persistedQuery && msg.extensions.persistedQuery.sha256Hash;
  if (hash && !msg.query) {
    doc = persistedQueries.get(hash);
    if (!doc) return finish(reqId, res, 200, { errors: [{ message: 'PersistedQueryNotFound' }] });
  } else {
    doc = parseCached(msg.query);
    if (hash) persistedQueries.set(hash, doc);
  }
  if (doc.operation === 'mutation') {
    const postId = Number(msg.variables.id);
    const post = db.posts.get(postId);
    post.version++;
    post.title = msg.variables.title;
    events.emit('postUpdated', postId);
    return finish(reqId, res, 200, { data: { updatePost: { id: postId, version: post.version } } });
  }
  const data = await resolveSelections('Query', null, doc.selections, msg.variables || {}, makeLoaders());
  finish(reqId, res, 200, { data });
}

function handleLive(req, res, body) {
  const reqId = ++reqSeq;
  const { postId } = JSON.parse(body);
  const waiter = { res, since: now(), reqId };
  let set = liveWaiters.get(postId);
  if (!set) liveWaiters.set(postId, (set = new Set()));
  set.add(waiter);
  inflight.set(reqId, { op: 'live', startedAt: now(), timer: null });
  res.on('close', () => {
    const s = liveWaiters.get(postId);
    if (s) { s.delete(waiter); if (s.size === 0) liveWaiters.delete(postId); }
    inflight.delete(reqId);
  });
}

events.on('postUpdated', (postId) => {
  const set = liveWaiters.get(postId);
  if (!set) return;
  liveWaiters.delete(postId);
  const post = db.posts.get(postId);
  for (const w of set) finish(w.reqId, w.res, 200, { data: { post: { id: postId, title: post.title, version: post.version } } });
});

const LIVE_TTL_MS = 20000;
function sweepLive() {
  const cutoff = now() - LIVE_TTL_MS;
  for (const [postId, set] of liveWaiters) {
    for (const w of set) {
      if (w.since < cutoff) { set.delete(w); finish(w.reqId, w.res, 200, { data: null }); }
    }
    if (set.size === 0) liveWaiters.delete(postId);
  }
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  requestMeta.set(req, { bytes: body.length });
  try {
    if (req.url === '/graphql') await handleGraphql(req, res, body);
    else if (req.url === '/graphql/live') handleLive(req, res, body);
    else { res.statusCode = 404; res.end(); }
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err.message));
  }
});
server.keepAliveTimeout = 60000;
server.on('connection', (sock) => { connections.add(sock); sock.on('close', () => connections.delete(sock)); });

// ------------------------------------------------------------------ clients
const TEMPLATES = [
  'query User($id: ID!) { user(id: $id) { id name email } }',
  'query UserFriends($id: ID!) { user(id: $id) { name friends(first: 4) { id name } } }',
  'query UserPosts($id: ID!) { user(id: $id) { name posts(first: 3) { id title comments(first: 2) { body author { name } } } } }',
  'query Post($id: ID!) { post(id: $id) { id title body author { id name } } }',
  'query PostComments($id: ID!) { post(id: $id) { title comments(first: 5) { id body author { name email } } } }',
  'query Feed($id: ID!) { user(id: $id) { friends(first: 3) { name posts(first: 2) { title author { name } } } } }',
  'query Search($term: String!) { search(term: $term, first: 5) { id title author { name } } }',
  'query Mini($id: ID!) { p: post(id: $id) { title } }',
];
const templateHashes = TEMPLATES.map((q) => crypto.createHash('sha256').update(q).digest('hex'));
const UPDATE = 'mutation UpdatePost($id: ID!, $title: String!) { updatePost(id: $id, title: $title) { id } }';

let port;
let agent;
let liveAgent;
const outstandingLive = new Set();

function sendTemplate(r) {
  const k = r.int(TEMPLATES.length);
  const vars = k === 6 ? { term: r.pick(['red', 'blue', 'green', 'fast', 'slow', 'big']) } : { id: 1 + r.zipf(2500) };
  // Clients send the hash only; fall back to the full query if unknown.
  return request(agent, port, 'POST', '/graphql', { variables: vars, extensions: { persistedQuery: { sha256Hash: templateHashes[k] } } })
    .then((resp) => {
      if (resp.text.includes('PersistedQueryNotFound')) {
        return request(agent, port, 'POST', '/graphql', { query: TEMPLATES[k], variables: vars, extensions: { persistedQuery: { sha256Hash: templateHashes[k] } } });
      }
      return resp;
    });
}

function sendLegacyInlined(r) {
  // Older mobile builds inline arguments into the query text and still use APQ.
  const q = r.chance(0.5)
    ? `{ search(term: "${r.id(7)}", first: 3) { id title author { name } } }`
    : `{ user(id: ${r.range(1, 2500)}) { name posts(first: ${r.range(1, 4)}) { title } } }`;
  const hash = crypto.createHash('sha256').update(q).digest('hex');
  return request(agent, port, 'POST', '/graphql', { query: q, extensions: { persistedQuery: { sha256Hash: hash } } });
}

function openLive(r) {
  const p = request(liveAgent, port, 'POST', '/graphql/live', { postId: 1 + r.int(250) });
  outstandingLive.add(p);
  p.finally(() => outstandingLive.delete(p));
}

run({
  warmupSteps: 200,
  stepsPerInterval: 50,
  tickMs: 1000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    seedDatabase(rng.fork('db'));
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 8, maxFreeSockets: 8 });
    liveAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 6 });
  },
  async step(ctx) {
    const load = ctx.load();
    const jobs = [];
    const n = Math.round(18 * load);
    for (let k = 0; k < n; k++) jobs.push(rng.chance(0.1) ? sendLegacyInlined(rng) : sendTemplate(rng));
    const nLive = rng.count(3 * load);
    for (let k = 0; k < nLive; k++) openLive(rng);
    for (let k = 0; k < 2; k++) {
      jobs.push(request(agent, port, 'POST', '/graphql', { query: UPDATE, variables: { id: 1 + rng.int(250), title: `t-${rng.id(5)}` } }));
    }
    await Promise.all(jobs);
    sweepLive();
    await new Promise((r) => setImmediate(r));
  },
  sizes() {
    let live = 0;
    for (const s of liveWaiters.values()) live += s.size;
    return {
      persistedQueries: persistedQueries.size,
      parseCache: parseCache.size,
      liveWaiters: live,
      inflight: inflight.size,
      connections: connections.size,
      resolverStats: Object.keys(resolverStats).length,
      postUpdatedListeners: events.listenerCount('postUpdated'),
    };
  },
  async teardown() {
    agent.destroy();
    liveAgent.destroy();
    server.closeAllConnections();
    server.close();
  },
});
