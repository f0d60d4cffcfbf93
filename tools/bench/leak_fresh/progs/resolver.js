'use strict';
// GraphQL-ish API gateway: POST /graphql {query, variables}. Queries are
// parsed (with an LRU of parsed documents), resolved field by field against
// a simulated backend through a per-request batching loader, with a short
// TTL entity cache and de-duplication of concurrent backend fetches.
//
// Planted leak:
//   resultCacheByVars  responses of queries marked @cached are memoised in a
//                      plain object keyed by query + variables, with no
//                      eviction; the variables (ids, page sizes) come from a
//                      huge space, so nearly every request adds a key  - fast
const { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'resolver';
const PARSE_CACHE_CAP = 256;
const ENTITY_TTL_MS = 10000;

// ---- a tiny query language: name(args) { fields } -----------------------
function tokenize(src) {
  const toks = [];
  const re = /\s*([{}():,@]|\$?[A-Za-z_][A-Za-z0-9_]*|-?\d+)/y;
  let m;
  re.lastIndex = 0;
  while (re.lastIndex < src.length && (m = re.exec(src))) toks.push(m[1]);
  return toks;
}
function parse(src) {
  const toks = tokenize(src);
  let i = 0;
  const peek = () => toks[i];
  const take = (t) => { if (t && toks[i] !== t) throw new Error(`expected ${t} at ${i}, got ${toks[i]}`); return toks[i++]; };
  function selection() {
    take('{');
    const fields = [];
    while (peek() !== '}') {
      const f = { name: take(), args: {}, fields: null, cached: false };
      if (peek() === '(') {
        take('(');
        while (peek() !== ')') { const k = take(); take(':'); f.args[k] = take(); if (peek() === ',') take(','); }
        take(')');
      }
      if (peek() === '{') f.fields = selection();
      if (peek() === ',') take(',');
      fields.push(f);
    }
    take('}');
    return fields;
  }
  const doc = { cached: false, fields: null, hash: hash32(src).toString(36) };
  take('query');
  if (peek() !== '@' && peek() !== '{') take();
  if (peek() === '@') { take('@'); doc.cached = take() === 'cached'; }
  doc.fields = selection();
  return doc;
}

// ---- templates the clients use --------------------------------------------
function buildTemplates() {
  const userFields = ['name', 'email', 'avatar', 'createdAt', 'karma'];
  const postFields = ['title', 'likes', 'createdAt', 'body'];
  const out = [];
  for (let a = 0; a < userFields.length; a++) {
    for (let b = a + 1; b < userFields.length; b++) {
      for (let p = 0; p < postFields.length; p++) {
        for (const withComments of [false, true]) {
          const cached = (a + b + p) % 3 === 0;
          const posts = `posts(first: $n) { ${postFields[p]}, id${withComments ? ', comments(first: 2) { text, author { name } }' : ''} }`;
          out.push(`query Q${out.length} ${cached ? '@cached ' : ''}{ user(id: $id) { id, ${userFields[a]}, ${userFields[b]}, ${posts} } }`);
        }
      }
    }
  }
  return out;   // 10 * 4 * 2 = 80 templates
}

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const parsedQueryCache = new Map();   // LRU, PARSE_CACHE_CAP
  const entityCache = new Map();        // "user:1" -> {value, exp}, swept
  const inflightFetches = new Map();    // key -> Promise, deleted when settled
  const resultCacheByVars = {};         // LEAK
  const stats = { requests: 0, parsed: 0, backend: 0, memoHits: 0 };

  clock.every(5000, (now) => { for (const [k, e] of entityCache) if (e.exp <= now) entityCache.delete(k); });

  function getDoc(src) {
    let doc = parsedQueryCache.get(src);
    if (doc) { parsedQueryCache.delete(src); parsedQueryCache.set(src, doc); return doc; }
    doc = parse(src);
    stats.parsed++;
    parsedQueryCache.set(src, doc);
    if (parsedQueryCache.size > PARSE_CACHE_CAP) parsedQueryCache.delete(parsedQueryCache.keys().next().value);
    return doc;
  }

  // simulated backend: deterministic records from ids
  function backendFetch(kind, ids) {
    stats.backend++;
    return new Promise((resolve) => setImmediate(() => resolve(ids.map((id) => {
      const h = hash32(kind + id);
      if (kind === 'user') return { id, name: 'user' + id, email: `u${id}@example.test`, avatar: `/a/${h % 997}.png`, createdAt: 1600000000 + h % 1e7, karma: h % 5000 };
      if (kind === 'post') return { id, title: 'post #' + id, likes: h % 300, createdAt: 1650000000 + h % 1e7, body: 'lorem '.repeat(1 + h % 4), author: h % 100000 };
      return { id, text: 'comment ' + id, author: h % 100000 };
    }))));
  }

  function makeLoader() {
    // per-request batching: collect keys in this tick, fetch once
    const batch = new Map();
    let scheduled = false;
    function flush() {
      scheduled = false;
      const byKind = new Map();
      for (const [key, waiters] of batch) {
        const [kind, id] = key.split(':');
        if (!byKind.has(kind)) byKind.set(kind, []);
        byKind.get(kind).push({ id: Number(id), waiters, key });
      }
      batch.clear();
      for (const [kind, items] of byKind) {
        const need = [];
        for (const it of items) {
          const hit = entityCache.get(it.key);
          if (hit && hit.exp > clock.now()) { for (const w of it.waiters) w(hit.value); continue; }
          const pending = inflightFetches.get(it.key);
          if (pending) { pending.then((v) => { for (const w of it.waiters) w(v); }); continue; }
          need.push(it);
        }
        if (!need.length) continue;
        const p = backendFetch(kind, need.map((it) => it.id));
        need.forEach((it, idx) => {
          const one = p.then((vals) => vals[idx]);
          inflightFetches.set(it.key, one);
          one.then((v) => {
            inflightFetches.delete(it.key);
            entityCache.set(it.key, { value: v, exp: clock.now() + ENTITY_TTL_MS });
            for (const w of it.waiters) w(v);
          });
        });
      }
    }
    return function load(kind, id) {
      return new Promise((resolve) => {
        const key = kind + ':' + id;
        if (!batch.has(key)) batch.set(key, []);
        batch.get(key).push(resolve);
        if (!scheduled) { scheduled = true; process.nextTick(flush); }
      });
    };
  }

  function argValue(v, vars) { return v[0] === '$' ? vars[v.slice(1)] : Number(v); }

  async function resolveFields(fields, obj, kind, vars, load) {
    const out = {};
    await Promise.all(fields.map(async (f) => {
      if (f.name === 'user') {
        const u = await load('user', argValue(f.args.id, vars));
        out.user = await resolveFields(f.fields, u, 'user', vars, load);
      } else if (f.name === 'posts') {
        const n = Math.min(5, argValue(f.args.first, vars) | 0);
        const ids = []; for (let k = 0; k < n; k++) ids.push(obj.id * 10 + k);
        out.posts = await Promise.all(ids.map(async (id) => resolveFields(f.fields, await load('post', id), 'post', vars, load)));
      } else if (f.name === 'comments') {
        const n = Math.min(3, argValue(f.args.first, vars) | 0);
        const ids = []; for (let k = 0; k < n; k++) ids.push(obj.id * 10 + k);
        out.comments = await Promise.all(ids.map(async (id) => resolveFields(f.fields, await load('comment', id), 'comment', vars, load)));
      } else if (f.name === 'author') {
        out.author = await resolveFields(f.fields, await load('user', obj.author), 'user', vars, load);
      } else {
        out[f.name] = obj[f.name];
      }
    }));
    return out;
  }

  async function execute(src, vars) {
    stats.requests++;
    const doc = getDoc(src);
    const memoKey = doc.cached ? doc.hash + ':' + JSON.stringify(vars) : null;
    if (memoKey && memoKey in resultCacheByVars) { stats.memoHits++; return resultCacheByVars[memoKey]; }
    const data = await resolveFields(doc.fields, null, 'root', vars, makeLoader());
    const result = { data };
    if (memoKey) resultCacheByVars[memoKey] = result;
    return result;
  }

  const server = await serve(async (req, url, body) => {
    if (req.method === 'POST' && url.pathname === '/graphql') {
      try { return await execute(String(body.query), body.variables || {}); } catch (e) { return { status: 400, body: { errors: [String(e.message)] } }; }
    }
    if (req.method === 'GET' && url.pathname === '/stats') return { ...stats, parsedDocs: parsedQueryCache.size, entities: entityCache.size };
    return { status: 404, body: { error: 'no route' } };
  });
  const client = makeClient(server, 10);
  const templates = buildTemplates();
  const level = waveFactory(rng, 2, 14, 21);
  const errors = { count: 0 };

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      if (rng.chance(0.02)) { reqs.push(client.request('GET', '/stats')); continue; }
      const query = templates[rng.zipf(templates.length, 0.9)];
      // hot users come back often, the long tail is huge
      const id = rng.chance(0.3) ? 1 + rng.int(200) : 1 + rng.int(100000);
      reqs.push(client.request('POST', '/graphql', { query, variables: { id, n: rng.range(1, 3) } })
        .then((res) => { if (res.status !== 200) errors.count++; }));
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [
      ['resultCacheByVars', () => Object.keys(resultCacheByVars).length],
    ],
    healthy: [
      ['parsedQueryCache', () => parsedQueryCache.size],
      ['entityCache', () => entityCache.size],
      ['inflightFetches', () => inflightFetches.size],
    ],
    shutdown: async () => { if (process.env.LF_DEBUG) console.error(stats, errors); client.close(); server.close(); },
  });
});
