'use strict';
// Database connection pool under a fluctuating application load (virtual time).
// Connections are created on demand up to a max and reaped when idle; callers
// wait in a FIFO with timeouts; each connection has a prepared-statement LRU and
// a pipelined query queue; timers live in a timer wheel.
// NO planted leak.
const EventEmitter = require('events');
const { run } = require('../lib/snap');

const SQL = [];   // background-ish: statement texts (bounded set of 300)

class Conn {
  constructor(id, now) { this.id = id; this.created = now; this.lastUsed = now; this.stmts = new Map(); this.pipeline = []; this.inTx = false; this.savepoints = []; }
  prepare(sql) {
    let s = this.stmts.get(sql);
    if (s) { this.stmts.delete(sql); this.stmts.set(sql, s); return s; }
    s = { sql, handle: 'st' + this.id + '_' + this.stmts.size };
    this.stmts.set(sql, s);
    if (this.stmts.size > 24) this.stmts.delete(this.stmts.keys().next().value);
    return s;
  }
}

class TimerWheel {
  constructor(slots) { this.slots = Array.from({ length: slots }, () => []); this.pos = 0; this.count = 0; }
  add(delay, fn) { const e = { fn, dead: false }; this.slots[(this.pos + Math.max(1, delay)) % this.slots.length].push(e); this.count++; return e; }
  cancel(e) { if (!e.dead) { e.dead = true; this.count--; } }
  advance() {
    this.pos = (this.pos + 1) % this.slots.length;
    const due = this.slots[this.pos];
    this.slots[this.pos] = [];
    for (const e of due) if (!e.dead) { e.dead = true; this.count--; e.fn(); }
  }
}

class Pool extends EventEmitter {
  constructor(opts) {
    super();
    this.min = opts.min; this.max = opts.max; this.idleTimeout = opts.idleTimeout;
    this.all = new Set();        // every open connection (grows and shrinks)
    this.idle = [];              // idle stack: push / pop
    this.waiters = [];           // FIFO of {cb, timer}; spliced out on timeout
    this.leases = new Map();     // leaseId -> {conn, at, tag}
    this.seq = 0; this.leaseSeq = 0;
    this.setMaxListeners(0);
  }
  acquire(tag, cb) {
    const conn = this.idle.pop();
    if (conn) return cb(null, this._lease(conn, tag));
    if (this.all.size < this.max) { const c = new Conn(++this.seq, clock); this.all.add(c); return cb(null, this._lease(c, tag)); }
    const w = { cb, tag, timer: null };
    w.onAvailable = () => {
      const i = this.waiters.indexOf(w);
      if (i < 0) return;
      const c = this.idle.pop();
      if (!c) { this.once('available', w.onAvailable); return; }
      this.waiters.splice(i, 1);
      wheel.cancel(w.timer);
      cb(null, this._lease(c, tag));
    };
    w.timer = wheel.add(20, () => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
      this.removeListener('available', w.onAvailable);
      cb(new Error('acquire timeout'));
    });
    this.waiters.push(w);
    this.once('available', w.onAvailable);
  }
  _lease(conn, tag) { const id = ++this.leaseSeq; this.leases.set(id, { conn, at: clock, tag }); return id; }
  release(id) {
    const l = this.leases.get(id);
    this.leases.delete(id);
    l.conn.lastUsed = clock;
    l.conn.pipeline.length = 0;
    this.idle.push(l.conn);
    this.emit('available');
  }
  reap() {
    // close connections idle too long, keeping at least `min`
    const keep = [];
    for (const c of this.idle) {
      if (this.all.size > this.min && clock - c.lastUsed > this.idleTimeout) this.all.delete(c);
      else keep.push(c);
    }
    this.idle = keep;
  }
}

let clock = 0, rng, concurrency = 20;
const wheel = new TimerWheel(64);
const pool = new Pool({ min: 4, max: 36, idleTimeout: 15 });
const requests = new Map();       // app request id -> {lease, queries left}
const errors = [];                // recent acquire errors, bounded to 50 (shift)
const resultCache = new Map();    // sql|param -> rows, LRU bounded to 2500
const schemaCatalog = {};         // background: table -> {columns, indexes}
let reqSeq = 0;

function startRequest() {
  const id = ++reqSeq;
  const r = { id, lease: null, left: 1 + rng.int(6), tx: rng.chance(0.3), started: clock };
  requests.set(id, r);
  pool.acquire('req' + id, (err, lease) => {
    if (err) { requests.delete(id); errors.push({ id, at: clock, msg: err.message }); if (errors.length > 50) errors.shift(); return; }
    r.lease = lease;
    const conn = pool.leases.get(lease).conn;
    if (r.tx) { conn.inTx = true; conn.savepoints.push('sp' + id); }
    runQuery(r, conn);
  });
}

function runQuery(r, conn) {
  const sql = SQL[Math.floor(Math.pow(rng.next(), 2) * SQL.length)];
  const st = conn.prepare(sql);
  const key = sql.length + '|' + rng.int(4000);
  const hit = resultCache.get(key);
  if (hit) { resultCache.delete(key); resultCache.set(key, hit); } else {
    resultCache.set(key, [{ id: rng.int(1e6), v: rng.word(6) }, { id: rng.int(1e6), v: rng.word(6) }]);
    if (resultCache.size > 2500) resultCache.delete(resultCache.keys().next().value);
  }
  conn.pipeline.push({ st, at: clock });
  wheel.add(1 + rng.int(6), () => {
    conn.pipeline.shift();
    if (--r.left > 0) return runQuery(r, conn);
    if (r.tx) { conn.savepoints.pop(); conn.inTx = false; }
    requests.delete(r.id);
    pool.release(r.lease);
  });
}

function tick() {
  clock++;
  concurrency = Math.max(4, Math.min(60, concurrency + rng.int(5) - 2));
  let starts = 0;
  while (requests.size < concurrency && starts++ < 8) startRequest();
  wheel.advance();
  if (clock % 5 === 0) pool.reap();
}

run({
  prog: 'conn_pool',
  warmup: 8,
  perInterval: 4,
  setup(r) {
    rng = r;
    const brng = r.fork('bg');
    for (let t = 0; t < 10000; t++) {
      const name = brng.word(10);
      const columns = [];
      for (let c = 0; c < 12; c++) columns.push({ name: brng.word(7), type: brng.pick(['int', 'text', 'bool', 'timestamptz', 'jsonb', 'numeric']), nullable: brng.chance(0.4), default: brng.chance(0.2) ? brng.word(4) : null });
      schemaCatalog[name] = { name, columns, indexes: [{ cols: [columns[0].name], unique: true }, { cols: [columns[1].name, columns[2].name], unique: false }], rows: brng.int(1e7) };
      if (SQL.length < 300) SQL.push(`SELECT ${columns.slice(0, 4).map((c) => c.name).join(', ')} FROM ${name} WHERE ${columns[0].name} = $1`);
    }
  },
  step() { for (let i = 0; i < 400; i++) tick(); },
  sizes() {
    let pipelined = 0, stmts = 0;
    for (const c of pool.all) { pipelined += c.pipeline.length; stmts += c.stmts.size; }
    return {
      leak: {},
      noise: { 'pool.all': pool.all.size, 'pool.idle': pool.idle.length, 'pool.waiters': pool.waiters.length, 'pool.leases': pool.leases.size, available: pool.listenerCount('available'), requests: requests.size, 'wheel.count': wheel.count, 'stmts(total)': stmts, 'pipeline(total)': pipelined, errors: errors.length, resultCache: resultCache.size },
    };
  },
});
