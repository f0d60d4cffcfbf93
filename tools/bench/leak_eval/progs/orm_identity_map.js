'use strict';
// ORM-style data layer: every request opens a unit of work with its own identity
// map, loads entities (through a second-level LRU cache), mutates some, commits.
// SQL goes through a statement cache and a query-plan cache.  Simulated DB.
// Planted leaks:
//   `planCache` -- Map keyed by SQL text; one finder inlines the literal into the
//                  SQL (WHERE email = '...'), so every distinct email is a new key.
//   `auditLog`  -- append-only array of change records for the users table.
const { run } = require('../lib/snap');

const USERS = 45000;

// ---------------------------------------------------------------- fake database
const tables = { users: new Map(), orders: new Map(), products: new Map() };   // background
const emailIndex = new Map();

class Connection {
  constructor(id) { this.id = id; this.queries = 0; this.prepared = new Map(); }
  query(sql, params) {
    this.queries++;
    queryLog[queryLogPos] = { conn: this.id, sql, n: params ? params.length : 0 };
    queryLogPos = (queryLogPos + 1) % queryLog.length;
    return getPlan(sql);
  }
}

// ---------------------------------------------------------------- data layer state
const idle = [];                       // connection pool: idle stack (push/pop)
let borrowed = 0;
const stmtCache = new Map();           // parameterized SQL -> stmt   grow-then-flat (~200 shapes)
const planCache = new Map();           // LEAK: SQL text -> plan
const auditLog = [];                   // LEAK: append-only
const queryLog = new Array(400); let queryLogPos = 0;
const snapshots = new WeakMap();       // entity -> original field values (dirty checking)
const openUnits = [];                  // units of work still open (long requests), spliced on commit

// second-level cache: LRU as Map + doubly linked list
class Lru {
  constructor(cap) { this.cap = cap; this.map = new Map(); this.head = null; this.tail = null; }
  get(k) {
    const n = this.map.get(k);
    if (!n) return undefined;
    this._unlink(n); this._front(n);
    return n.v;
  }
  set(k, v) {
    let n = this.map.get(k);
    if (n) { n.v = v; this._unlink(n); this._front(n); return; }
    n = { k, v, prev: null, next: null };
    this.map.set(k, n); this._front(n);
    if (this.map.size > this.cap) { const t = this.tail; this._unlink(t); this.map.delete(t.k); }
  }
  evict(k) { const n = this.map.get(k); if (n) { this._unlink(n); this.map.delete(k); } }
  _front(n) { n.next = this.head; n.prev = null; if (this.head) this.head.prev = n; this.head = n; if (!this.tail) this.tail = n; }
  _unlink(n) { if (n.prev) n.prev.next = n.next; else this.head = n.next; if (n.next) n.next.prev = n.prev; else this.tail = n.prev; n.prev = n.next = null; }
}
const entityCache = new Lru(1500);

function getPlan(sql) {
  let plan = planCache.get(sql);
  if (!plan) {
    const m = /FROM (\w+)/.exec(sql);
    plan = { sql, table: m ? m[1] : '?', cost: sql.length * 1.7, steps: [{ op: 'IndexScan', idx: 'pk' }, { op: 'Filter' }], createdAt: Date.now() };
    planCache.set(sql, plan);
  }
  return plan;
}

function prepare(conn, shape) {
  let st = stmtCache.get(shape);
  if (!st) { st = { shape, id: stmtCache.size, uses: 0 }; stmtCache.set(shape, st); }
  st.uses++;
  return st;
}

class UnitOfWork {
  constructor(conn) { this.conn = conn; this.identityMap = new Map(); this.dirty = new Set(); this.created = []; this.removed = []; }
  find(table, id) {
    const key = table + '#' + id;
    let e = this.identityMap.get(key);
    if (e) return e;
    let row = entityCache.get(key);
    if (!row) {
      const sql = `SELECT * FROM ${table} WHERE id = $1`;
      prepare(this.conn, sql); this.conn.query(sql, [id]);
      row = tables[table].get(id);
      if (!row) return null;
      entityCache.set(key, row);
    }
    e = { __table: table, ...row };
    snapshots.set(e, { ...row });
    this.identityMap.set(key, e);
    return e;
  }
  findUserByEmail(email) {
    // BUG: literal inlined instead of a bind parameter
    const sql = `SELECT * FROM users WHERE email = '${email}'`;
    this.conn.query(sql);
    const id = emailIndex.get(email);
    return id === undefined ? null : this.find('users', id);
  }
  findMany(table, cols, ids) {
    const shape = `SELECT ${cols.join(', ')} FROM ${table} WHERE id IN (${ids.map((_, i) => '$' + (i + 1)).join(', ')})`;
    prepare(this.conn, shape); this.conn.query(shape, ids);
    return ids.map((id) => this.find(table, id)).filter(Boolean);
  }
  markDirty(e) { this.dirty.add(e); }
  add(table, row) { this.created.push({ table, row }); }
  remove(e) { this.removed.push(e); }
  commit(clock) {
    for (const e of this.dirty) {
      const before = snapshots.get(e);
      const changes = {};
      for (const k of Object.keys(e)) if (k !== '__table' && e[k] !== before[k]) changes[k] = [before[k], e[k]];
      const row = tables[e.__table].get(e.id);
      if (row) for (const k of Object.keys(row)) row[k] = e[k];
      entityCache.evict(e.__table + '#' + e.id);
      if (e.__table === 'users' && Object.keys(changes).length) auditLog.push({ table: 'users', id: e.id, changes, at: clock, conn: this.conn.id });
    }
    for (const { table, row } of this.created) { tables[table].set(row.id, row); }
    for (const e of this.removed) { tables[e.__table].delete(e.id); entityCache.evict(e.__table + '#' + e.id); }
    this.identityMap.clear();
  }
}

let clock = 0, orderSeq = 0, rng;
const PRESETS = [];
let presetsUsed = 0;
const COLS = { users: ['id', 'email', 'name', 'plan', 'credits', 'lastLogin'], orders: ['id', 'user', 'total', 'status', 'items'], products: ['id', 'title', 'price', 'stock'] };

function borrow() { borrowed++; return idle.pop() || new Connection(borrowed + idle.length); }
function giveBack(c) { borrowed--; idle.push(c); if (idle.length > 12) idle.shift(); }

function request() {
  const conn = borrow();
  const uow = new UnitOfWork(conn);
  const r = rng.next();
  if (r < 0.35) {
    const o = uow.find('orders', orderSeq - rng.int(25000));
    if (o) uow.find('users', o.user);
    if (o && rng.chance(0.2)) { o.status = rng.pick(['paid', 'shipped', 'delivered']); uow.markDirty(o); }
  } else if (r < 0.55) {
    // report builder: column presets are rolled out gradually (statement shapes grow, then stay flat)
    const live = Math.min(PRESETS.length, 1 + Math.floor(clock / 30));
    const preset = live > presetsUsed ? PRESETS[presetsUsed++] : PRESETS[rng.int(live)];
    const ids = [];
    for (let i = 0, n = rng.pick([1, 5, 10]); i < n; i++) ids.push(rng.int(preset.table === 'users' ? USERS : 8000));
    uow.findMany(preset.table, preset.cols, ids);
  } else if (r < 0.61) {
    // login lookup by email
    const u = uow.findUserByEmail(rng.chance(0.8) ? 'user' + rng.int(USERS) + '@example.com' : rng.word(8) + '@gmail.com');
    if (u && rng.chance(0.8)) { u.lastLogin = clock; uow.markDirty(u); }
  } else if (r < 0.8) {
    const id = ++orderSeq;
    uow.add('orders', { id, user: rng.int(USERS), total: rng.int(90000), status: 'new', items: [rng.int(8000), rng.int(8000)] });
    const old = uow.find('orders', id - 25000);
    if (old) uow.remove(old);                       // archive: orders table stays constant size
  } else {
    const p = uow.find('products', rng.int(8000));
    if (p) { p.stock = Math.max(0, p.stock - 1); uow.markDirty(p); }
  }
  if (rng.chance(0.2)) { openUnits.push({ uow, conn, until: clock + 1 + rng.int(20) }); return; }   // long request
  uow.commit(clock);
  giveBack(conn);
}

function tick() {
  clock++;
  const n = 5 + rng.int(10);
  for (let i = 0; i < n; i++) request();
  for (let i = openUnits.length - 1; i >= 0; i--) {
    if (openUnits[i].until <= clock) { const [u] = openUnits.splice(i, 1); u.uow.commit(clock); giveBack(u.conn); }
  }
}

run({
  prog: 'orm_identity_map',
  warmup: 8,
  perInterval: 4,
  setup(r) {
    rng = r;
    const brng = r.fork('bg');
    for (let id = 0; id < USERS; id++) {
      const email = 'user' + id + '@example.com';
      tables.users.set(id, { id, email, name: brng.word(6) + ' ' + brng.word(8), plan: brng.pick(['free', 'pro']), credits: brng.int(100), lastLogin: 0 });
      emailIndex.set(email, id);
    }
    for (let i = 0; i < 40; i++) {
      const table = i % 3 ? 'users' : 'products';
      const cols = COLS[table].filter((c, j) => j === 0 || brng.chance(0.6));
      PRESETS.push({ table, cols });
    }
    for (let id = 0; id < 8000; id++) tables.products.set(id, { id, title: brng.word(12), price: brng.int(10000), stock: brng.int(300) });
    for (let i = 0; i < 25000; i++) { const id = ++orderSeq; tables.orders.set(id, { id, user: brng.int(USERS), total: brng.int(90000), status: 'paid', items: [brng.int(8000)] }); }
  },
  step() { for (let i = 0; i < 80; i++) tick(); },
  sizes() {
    return {
      leak: { planCache: planCache.size, auditLog: auditLog.length },
      noise: { 'entityCache.map': entityCache.map.size, stmtCache: stmtCache.size, openUnits: openUnits.length, 'openUnits.identityMap(total)': openUnits.reduce((a, u) => a + u.uow.identityMap.size, 0), idle: idle.length, borrowed, 'tables.orders': tables.orders.size },
    };
  },
});
