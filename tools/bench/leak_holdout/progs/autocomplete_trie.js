'use strict';
// Search-as-you-type suggestion service backed by a weighted trie. The base
// vocabulary is bulk-loaded in chunks at startup; trending terms are inserted
// with a TTL and pruned when they expire. Prefix results are cached in an LRU
// with a TTL, per-session recent queries personalize suggestions, term
// popularity decays over time, and query logs are batched for shipping.
const { run } = require('../lib/snap');

const TOP_K = 8;
const PREFIX_CACHE_MAX = 1500;
const PREFIX_CACHE_TTL_MS = 60000;
const SESSION_IDLE_MS = 5 * 60000;
const RECENT_PER_SESSION = 10;
const TRENDING_TTL_MS = 20 * 60000;
const LOAD_CHUNK = 100;

let rng;
let now;

class TrieNode {
  constructor() {
    this.children = Object.create(null);
    this.term = null;
    this.weight = 0;
    this.best = 0;          // max weight in subtree (for pruning search)
  }
}

class Trie {
  constructor() {
    this.root = new TrieNode();
    this.nodes = 1;
    this.terms = 0;
  }
  insert(term, weight) {
    let n = this.root;
    for (const ch of term) {
      let c = n.children[ch];
      if (!c) { c = n.children[ch] = new TrieNode(); this.nodes++; }
      if (weight > c.best) c.best = weight;
      n = c;
    }
    if (n.term === null) this.terms++;
    n.term = term;
    n.weight = weight;
  }
  remove(term) {
    const path = [this.root];
    let n = this.root;
    for (const ch of term) {
      n = n.children[ch];
      if (!n) return false;
      path.push(n);
    }
    if (n.term === null) return false;
    n.term = null;
    n.weight = 0;
    this.terms--;
    // prune now-empty branches
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i];
      let hasChild = false;
      for (const _ in node.children) { hasChild = true; break; }
      if (node.term !== null || hasChild) break;
      delete path[i - 1].children[term[i - 1]];
      this.nodes--;
    }
    return true;
  }
  find(prefix) {
    let n = this.root;
    for (const ch of prefix) { n = n.children[ch]; if (!n) return null; }
    return n;
  }
  topK(prefix, k) {
    const start = this.find(prefix);
    if (!start) return [];
    const out = [];
    const stack = [start];
    let visited = 0;
    while (stack.length && visited < 400) {
      const n = stack.pop();
      visited++;
      if (n.term !== null) out.push(n);
      for (const ch in n.children) stack.push(n.children[ch]);
    }
    out.sort((a, b) => b.weight - a.weight);
    return out.slice(0, k).map((n) => n.term);
  }
}

// ------------------------------------------------------------------ state
const trie = new Trie();
let vocabulary = [];            // words still to be bulk-loaded
let loaded = 0;
const trending = new Map();     // term -> expiresAt
const prefixCache = new Map();  // LRU: prefix -> {results, at}
const sessions = new Map();     // sessionId -> {recent:[], lastActive, typed}
const popularity = new Map();   // term -> decayed score
let pendingLogs = [];
let shippedLogs = 0;
let sessionSeq = 0;

function buildVocabulary(r) {
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'pra', 'ston', 'gel', 'dar', 'fin', 'mor', 'qua', 'bel', 'cor'];
  const seen = new Set();
  while (vocabulary.length < 14000) {
    let w = '';
    for (let k = r.range(2, 4); k > 0; k--) w += r.pick(syl);
    if (seen.has(w)) continue;
    seen.add(w);
    vocabulary.push(w);
  }
}

function loadChunk() {
  if (loaded >= vocabulary.length) {
    if (vocabulary.length) vocabulary = []; // release the staging array
    return;
  }
  const end = Math.min(vocabulary.length, loaded + LOAD_CHUNK);
  for (; loaded < end; loaded++) trie.insert(vocabulary[loaded], 1 + rng.int(1000));
}

function suggest(sessionId, prefix) {
  const s = sessions.get(sessionId);
  s.lastActive = now();
  s.typed = prefix;
  let entry = prefixCache.get(prefix);
  if (entry && now() - entry.at > PREFIX_CACHE_TTL_MS) { prefixCache.delete(prefix); entry = null; }
  if (entry) {
    prefixCache.delete(prefix);
    prefixCache.set(prefix, entry);
  } else {
    entry = { results: trie.topK(prefix, TOP_K), at: now() };
    prefixCache.set(prefix, entry);
    if (prefixCache.size > PREFIX_CACHE_MAX) prefixCache.delete(prefixCache.keys().next().value);
  }
  // personalize: recent queries of this session that match go first
  const mine = s.recent.filter((q) => q.startsWith(prefix));
  return mine.concat(entry.results.filter((t) => !mine.includes(t))).slice(0, TOP_K);
}

function submit(sessionId, query) {
  const s = sessions.get(sessionId);
  s.recent.unshift(query);
  if (s.recent.length > RECENT_PER_SESSION) s.recent.splice(RECENT_PER_SESSION);
  popularity.set(query, (popularity.get(query) || 0) + 1);
  pendingLogs.push({ sessionId, query, at: now(), len: query.length });
}

function decayPopularity() {
  for (const [t, v] of popularity) {
    const nv = v * 0.6;
    if (nv < 1) popularity.delete(t); else popularity.set(t, nv);
  }
}

function promoteTrending() {
  // popular submitted queries that are not in the vocabulary become trending terms
  for (const [t, v] of popularity) {
    if (v >= 2 && !trending.has(t) && !trie.find(t)?.term) {
      trie.insert(t, 2000 + Math.round(v));
      trending.set(t, now() + TRENDING_TTL_MS);
    }
  }
  for (const [t, exp] of trending) {
    if (exp <= now()) { trending.delete(t); trie.remove(t); }
  }
}

function shipLogs() {
  shippedLogs += pendingLogs.length;
  pendingLogs = [];
}

const activeSessions = [];

run({
  warmupSteps: 120,
  stepsPerInterval: 40,
  tickMs: 15000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    buildVocabulary(rng.fork('vocab'));
  },
  async step(ctx, step) {
    const load = ctx.load();
    loadChunk();
    for (let k = rng.count(4 * load); k > 0; k--) {
      const id = `s${++sessionSeq}`;
      sessions.set(id, { recent: [], lastActive: now(), typed: '' });
      activeSessions.push(id);
    }
    const typists = Math.round(30 * load);
    for (let k = 0; k < typists && activeSessions.length; k++) {
      const id = activeSessions[rng.int(activeSessions.length)];
      if (!sessions.has(id)) continue;
      // type a query keystroke by keystroke
      let query;
      if (rng.chance(0.25)) query = `${rng.pick(['new', 'best', 'cheap', 'free'])} ${rng.id(rng.range(3, 5))}`;
      else if (loaded > 0) query = trie.topK(rng.pick(['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo']), 20)[rng.int(20)] || 'kalo';
      else query = 'kalo';
      if (rng.chance(0.3)) query = rng.pick(['news today', 'weather', 'cheap flights', 'ticket sale', 'live score']) + (rng.chance(0.5) ? ` ${rng.int(30)}` : '');
      for (let i = 1; i <= query.length; i++) suggest(id, query.slice(0, i));
      if (rng.chance(0.6)) submit(id, query);
    }
    // sessions end when idle
    for (let i = activeSessions.length - 1; i >= 0; i--) {
      const id = activeSessions[i];
      const s = sessions.get(id);
      if (!s || now() - s.lastActive > SESSION_IDLE_MS || rng.chance(0.02)) {
        sessions.delete(id);
        activeSessions.splice(i, 1);
      }
    }
    if (step % 4 === 0) decayPopularity();
    promoteTrending();
    if (step % 7 === 0) shipLogs();
  },
  sizes() {
    let recent = 0;
    for (const s of sessions.values()) recent += s.recent.length;
    return {
      trieNodes: trie.nodes,
      vocabularyLoaded: loaded,
      trending: trending.size,
      prefixCache: prefixCache.size,
      sessions: sessions.size,
      recent,
      popularity: popularity.size,
      pendingLogs: pendingLogs.length,
    };
  },
});
