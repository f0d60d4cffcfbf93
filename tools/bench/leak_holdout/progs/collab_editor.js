'use strict';
// Collaborative document editor backend with operational transformation.
// Clients open documents, submit operations against the revision they last
// saw, the server transforms them against concurrent history, applies them,
// fans changes out to the other clients, and replicates commits through a
// journal to a follower.
const { EventEmitter } = require('events');
const { run } = require('../lib/snap');

const DOC_POOL = 260;
const UNDO_DEPTH = 30;
const PRESENCE_TTL_MS = 8000;
const RENDER_CACHE_MAX = 60;

let rng;
let now;

// ------------------------------------------------------------------ OT
function transform(op, against) {
  // transform `op` so it applies after `against`
  const o = Object.assign({}, op);
  if (against.type === 'ins') {
    if (against.pos <= o.pos) o.pos += against.text.length;
  } else if (against.type === 'del') {
    if (against.pos + against.len <= o.pos) o.pos -= against.len;
    else if (against.pos < o.pos) o.pos = against.pos;
    if (o.type === 'del' && o.pos < against.pos && o.pos + o.len > against.pos) {
      o.len = Math.max(0, o.len - Math.min(o.len - (against.pos - o.pos), against.len));
    }
  }
  return o;
}

function apply(text, op) {
  if (op.type === 'ins') return text.slice(0, op.pos) + op.text + text.slice(op.pos);
  return text.slice(0, op.pos) + text.slice(op.pos + op.len);
}

function invert(op, text) {
  return op.type === 'ins' ? { type: 'del', pos: op.pos, len: op.text.length } : { type: 'ins', pos: op.pos, text: text.substr(op.pos, op.len) };
}

// ------------------------------------------------------------------ storage
const storage = new Map();        // docId -> {text, rev, savedAt}
function loadStorage(r) {
  const words = ['the', 'quarterly', 'plan', 'draft', 'review', 'budget', 'team', 'launch', 'notes', 'risk', 'owner', 'status'];
  for (let d = 1; d <= DOC_POOL; d++) {
    const parts = [];
    const n = r.range(150, 600);
    for (let k = 0; k < n; k++) parts.push(r.pick(words), k % 12 === 11 ? '.\n' : ' ');
    storage.set(`doc-${d}`, { text: parts.join(''), rev: 0, savedAt: 0 });
  }
}

// ------------------------------------------------------------------ accounts and ACLs
const accounts = new Map();       // userId -> profile
const acl = new Map();            // docId -> Map(userId -> role)
function loadAccounts(r) {
  for (let u = 1; u <= 6000; u++) {
    accounts.set(u, { id: u, name: `user ${r.id(6)}`, email: `u${u}@corp.example`, color: `#${r.id(6)}`, teams: [r.int(40), r.int(40)] });
  }
  for (let d = 1; d <= DOC_POOL; d++) {
    const m = new Map();
    for (let k = r.range(5, 40); k > 0; k--) m.set(1 + r.int(6000), r.pick(['owner', 'editor', 'editor', 'commenter', 'viewer']));
    acl.set(`doc-${d}`, m);
  }
}

// ------------------------------------------------------------------ journal (replication)
// Singly linked list of committed operations, trimmed when the follower acks.
let journal = { head: null, tail: null, length: 0, seq: 0 };
const follower = { connected: true, ackedSeq: 0 };

function journalAppend(docId, rev, op) {
  const node = { seq: ++journal.seq, docId, rev, op, at: now(), next: null };
  if (journal.tail) journal.tail.next = node; else journal.head = node;
  journal.tail = node;
  journal.length++;
}

function onFollowerAck(seq) {
  follower.ackedSeq = seq;
  while (journal.head && journal.head.seq <= seq) {
    journal.head = journal.head.next;
    journal.length--;
  }
  if (!journal.head) journal.tail = null;
}

// ------------------------------------------------------------------ live documents
const docs = new Map();           // docId -> Doc
const presence = new Map();       // `${docId}:${clientId}` -> {cursor, expiresAt}
const renderCache = new Map();    // `${docId}@${rev}` -> html
const clientStats = new WeakMap(); // ClientSession -> {ops, bytes}
let clientSeq = 0;

class Doc {
  constructor(id, stored) {
    this.id = id;
    this.text = stored.text;
    this.rev = stored.rev;
    this.history = [];            // ops with rev > this.historyBase
    this.historyBase = this.rev;
    this.clients = new Map();
    this.events = new EventEmitter();
    this.events.setMaxListeners(50);
    this.idleSince = 0;
  }

  submit(client, baseRev, op) {
    let o = op;
    for (let i = baseRev - this.historyBase; i < this.history.length; i++) {
      const h = this.history[i];
      if (h.clientId !== client.id) o = transform(o, h.op);
    }
    if (o.type === 'del' && o.len === 0) return null;
    o.pos = Math.max(0, Math.min(o.pos, this.text.length));
    const before = this.text;
    this.text = apply(this.text, o);
    this.rev++;
    this.history.push({ rev: this.rev, clientId: client.id, op: o });
    client.undo.push(invert(o, before));
    if (client.undo.length > UNDO_DEPTH) client.undo.splice(0, client.undo.length - UNDO_DEPTH);
    journalAppend(this.id, this.rev, o);
    this.events.emit('change', { rev: this.rev, clientId: client.id, op: o });
    const st = clientStats.get(client);
    st.ops++;
    return o;
  }

  trimHistory() {
    let minBase = this.rev;
    for (const c of this.clients.values()) if (c.baseRev < minBase) minBase = c.baseRev;
    const drop = minBase - this.historyBase;
    if (drop > 0) {
      this.history = this.history.filter((h) => h.rev > minBase);
      this.historyBase = minBase;
    }
  }
}

class ClientSession {
  constructor(doc) {
    this.id = `c${++clientSeq}`;
    this.doc = doc;
    this.baseRev = doc.rev;
    this.inbox = [];
    this.undo = [];
    this.cursor = 0;
    this.user = null;
    this.syncEvery = rng.range(1, 15);
    this.life = rng.range(5, 40);
    this.onChange = (ch) => { if (ch.clientId !== this.id) this.inbox.push(ch); };
    doc.events.on('change', this.onChange);
    doc.clients.set(this.id, this);
    clientStats.set(this, { ops: 0, bytes: 0 });
  }
  sync() {
    const last = this.inbox[this.inbox.length - 1];
    if (last) this.baseRev = last.rev;
    this.inbox.length = 0;
    this.baseRev = Math.max(this.baseRev, this.doc.rev);
  }
  leave() {
    this.doc.events.removeListener('change', this.onChange);
    this.doc.clients.delete(this.id);
    presence.delete(`${this.doc.id}:${this.id}`);
    this.doc.idleSince = now();
  }
}

function openDoc(docId) {
  let d = docs.get(docId);
  if (!d) { d = new Doc(docId, storage.get(docId)); docs.set(docId, d); }
  return d;
}

function closeIdleDocs() {
  for (const [id, d] of docs) {
    if (d.clients.size === 0 && now() - d.idleSince > 5000) {
      storage.set(id, { text: d.text, rev: d.rev, savedAt: now() });
      docs.delete(id);
    }
  }
}

function render(doc) {
  const key = `${doc.id}@${doc.rev}`;
  let html = renderCache.get(key);
  if (html === undefined) {
    html = '<article>' + doc.text.split('\n').map((p) => `<p>${p}</p>`).join('') + '</article>';
    renderCache.set(key, html);
    if (renderCache.size > RENDER_CACHE_MAX) renderCache.delete(renderCache.keys().next().value);
  }
  return html;
}

function randomOp(client) {
  const doc = client.doc;
  const len = doc.text.length;
  const pos = Math.min(len, Math.max(0, client.cursor + rng.range(-20, 20)));
  client.cursor = pos;
  const delBias = len > 4000 ? 0.7 : len < 1500 ? 0.2 : 0.45;
  if (rng.chance(delBias) && len > 10) return { type: 'del', pos: Math.min(pos, len - 1), len: rng.range(1, 12) };
  return { type: 'ins', pos, text: rng.pick(['a', 'the ', 'and ', 'review ', 'TODO: ', 'x', '\n', 'budget ']) + rng.id(rng.range(0, 6)) };
}

const sessions = new Set();

run({
  warmupSteps: 150,
  stepsPerInterval: 25,
  tickMs: 1000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    loadStorage(rng.fork('storage'));
    loadAccounts(rng.fork('accounts'));
  },
  async step(ctx, step) {
    const load = ctx.load();
    // replication link drops during warm-up and the reconnect path never
    // re-arms the follower; acks only arrive while it is connected
    if (step === 40) follower.connected = false;
    if (follower.connected) onFollowerAck(journal.seq - rng.int(5));

    const joins = rng.count(2.6 * load);
    for (let k = 0; k < joins; k++) {
      const doc = openDoc(`doc-${1 + rng.zipf(DOC_POOL, 2.5)}`);
      const members = acl.get(doc.id);
      const user = rng.chance(0.8) ? Array.from(members.keys())[rng.int(members.size)] : 1 + rng.int(6000);
      if (!members.has(user) && !rng.chance(0.3)) continue; // access denied (30% are share-link guests)
      const session = new ClientSession(doc);
      session.user = accounts.get(user);
      sessions.add(session);
    }
    let ops = 0;
    for (const c of sessions) {
      if (c.life-- <= 0) { c.leave(); sessions.delete(c); continue; }
      if (ops < 8 && rng.chance(0.12)) {
        c.doc.submit(c, c.baseRev, randomOp(c));
        ops++;
      }
      if (rng.chance(0.5)) {
        presence.set(`${c.doc.id}:${c.id}`, { cursor: c.cursor, expiresAt: now() + PRESENCE_TTL_MS });
      }
      if (step % c.syncEvery === 0) c.sync();
      if (rng.chance(0.05)) render(c.doc);
    }
    for (const d of docs.values()) d.trimHistory();
    for (const [k, p] of presence) if (p.expiresAt <= now()) presence.delete(k);
    closeIdleDocs();
  },
  sizes() {
    let history = 0;
    let clients = 0;
    let inbox = 0;
    let changeListeners = 0;
    for (const d of docs.values()) {
      history += d.history.length;
      clients += d.clients.size;
      changeListeners += d.events.listenerCount('change');
    }
    for (const c of sessions) inbox += c.inbox.length;
    return {
      journal: journal.length,
      docs: docs.size,
      history,
      clients,
      inbox,
      presence: presence.size,
      renderCache: renderCache.size,
      changeListeners,
    };
  },
});
