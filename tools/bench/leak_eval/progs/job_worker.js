'use strict';
// Background job system: producers enqueue jobs into priority queues, a pool of
// workers runs them (simulated durations on a virtual clock), failures are
// retried with backoff through a delay list, exhausted jobs go to a dead-letter list.
// Planted leak:
//   `deadLetter` -- linked-list dead-letter queue (object with head/tail); the
//                   re-drive task takes jobs off the head more slowly than they arrive.
const EventEmitter = require('events');
const { run } = require('../lib/snap');

const JOB_TYPES = ['email.send', 'image.resize', 'report.build', 'webhook.deliver', 'search.index', 'invoice.render', 'cache.warm', 'export.csv'];
const PRIORITIES = ['critical', 'high', 'normal', 'low'];

class Worker {
  constructor(id) { this.id = id; this.job = null; this.busyUntil = 0; this.history = []; this.processed = 0; }
  record(entry) { this.history.push(entry); if (this.history.length > 25) this.history.shift(); }
}

// ---------------------------------------------------------------- state
const queues = {};                  // priority -> [jobs]  (push/shift), random-walk depth
for (const p of PRIORITIES) queues[p] = [];
const running = new Map();          // jobId -> {worker, started}
const delayed = [];                 // retry schedule sorted by runAt (spliced at random positions)
const locks = {};                   // uniqueness key -> jobId, deleted on completion
const idempotency = new Map();      // key -> expiresAt  (TTL)
const statsByType = new Map();      // type -> {ok, failed, totalMs}  bounded (8 types)
const deadLetter = { head: null, tail: null, size: 0 };   // LEAK
const progress = new EventEmitter(); // per-job 'job:<id>' once-listeners (churn)
progress.setMaxListeners(0);
const cronTable = [];               // background: scheduled task definitions
const payloadTemplates = {};        // background
let workers = [];
let clock = 0, jobSeq = 0, load = 5;
let rng;

function appendDead(job, reason) {
  const node = { job, reason, at: clock, next: null };
  if (deadLetter.tail) deadLetter.tail.next = node; else deadLetter.head = node;
  deadLetter.tail = node;
  deadLetter.size++;
}

function redriveOne() {
  const node = deadLetter.head;
  if (!node) return;
  deadLetter.head = node.next;
  if (!deadLetter.head) deadLetter.tail = null;
  deadLetter.size--;
  node.job.attempts = 0;
  enqueue(node.job);
}

function enqueue(job) {
  if (job.unique && locks[job.unique] !== undefined) return false;
  if (job.unique) locks[job.unique] = job.id;
  queues[job.priority].push(job);
  return true;
}

function produce() {
  // arrival rate is a random walk between 1 and 9 jobs per tick
  load = Math.max(1, Math.min(9, load + rng.int(3) - 1));
  const n = rng.int(load + 1);
  for (let i = 0; i < n; i++) {
    const type = rng.pick(JOB_TYPES);
    const id = ++jobSeq;
    const job = { id, type, priority: PRIORITIES[Math.min(3, rng.int(5))], attempts: 0, payload: { ...payloadTemplates[type], ref: rng.hex(12), deadEndpoint: type === 'webhook.deliver' && rng.chance(0.3) }, unique: rng.chance(0.3) ? type + ':' + rng.int(200) : null, created: clock };
    const key = 'idem-' + rng.int(5000);
    if (idempotency.has(key) && rng.chance(0.5)) continue;
    idempotency.set(key, clock + 50 + rng.int(150));
    if (enqueue(job) && rng.chance(0.15)) progress.once('job:' + id, (res) => { job.notified = res.ok; });
  }
}

function nextJob() {
  for (const p of PRIORITIES) if (queues[p].length) return queues[p].shift();
  if (delayed.length && delayed[0].runAt <= clock) return delayed.shift().job;
  return null;
}

function finish(w) {
  const job = w.job;
  w.job = null;
  running.delete(job.id);
  const st = statsByType.get(job.type) || { ok: 0, failed: 0, totalMs: 0 };
  statsByType.set(job.type, st);
  const failed = job.payload.deadEndpoint || rng.chance(job.type === 'webhook.deliver' ? 0.3 : 0.05);
  w.record({ id: job.id, type: job.type, ok: !failed, at: clock });
  if (!failed) {
    st.ok++;
    if (job.unique) delete locks[job.unique];
    progress.emit('job:' + job.id, { ok: true });
    return;
  }
  st.failed++;
  job.attempts++;
  if (job.attempts >= 3) {
    if (job.unique) delete locks[job.unique];
    progress.emit('job:' + job.id, { ok: false });
    appendDead(job, 'max attempts');
    return;
  }
  const runAt = clock + (1 << job.attempts) * (2 + rng.int(6));
  let lo = 0, hi = delayed.length;       // binary search insert
  while (lo < hi) { const mid = (lo + hi) >> 1; if (delayed[mid].runAt <= runAt) lo = mid + 1; else hi = mid; }
  delayed.splice(lo, 0, { runAt, job });
}

function tick() {
  clock++;
  produce();
  for (const w of workers) {
    if (w.job && w.busyUntil <= clock) finish(w);
    if (!w.job) {
      const job = nextJob();
      if (job) {
        w.job = job;
        w.busyUntil = clock + 1 + rng.int(job.type === 'report.build' ? 12 : 5);
        running.set(job.id, { worker: w.id, started: clock });
        w.processed++;
      }
    }
  }
  // operators cancel a few delayed retries at random positions
  if (delayed.length > 5 && rng.chance(0.05)) {
    const [gone] = delayed.splice(rng.int(delayed.length), 1);
    if (gone.job.unique) delete locks[gone.job.unique];
    progress.removeAllListeners('job:' + gone.job.id);
  }
  if (clock % 10 === 0) for (const [k, exp] of idempotency) if (exp < clock) idempotency.delete(k);
  // the re-drive task: one dead job back every 25 ticks (fewer than arrive)
  if (clock % 25 === 0) redriveOne();
  // autoscale the pool between 7 and 16 workers
  if (clock % 20 === 0) {
    const depth = PRIORITIES.reduce((a, p) => a + queues[p].length, 0);
    if (depth > 30 && workers.length < 16) workers.push(new Worker(workers.length));
    else if (depth < 5 && workers.length > 7) workers = workers.filter((w, i) => w.job || i < workers.length - 1);
  }
}

run({
  prog: 'job_worker',
  warmup: 8,
  perInterval: 4,
  setup(r) {
    rng = r;
    const brng = r.fork('bg');
    for (const t of JOB_TYPES) payloadTemplates[t] = { type: t, version: 3, headers: { 'x-team': brng.word(6) }, retries: 3 };
    for (let i = 0; i < 70000; i++) cronTable.push({ id: 'cron-' + i, expr: `${brng.int(60)} ${brng.int(24)} * * ${brng.int(7)}`, type: brng.pick(JOB_TYPES), owner: brng.word(8), args: [brng.word(10), brng.int(1000)], enabled: brng.chance(0.9) });
    for (let i = 0; i < 8; i++) workers.push(new Worker(i));
  },
  step() { for (let i = 0; i < 300; i++) tick(); },
  sizes() {
    const q = {};
    for (const p of PRIORITIES) q['queues.' + p] = queues[p].length;
    const ev = progress.eventNames().length;
    return {
      leak: { deadLetter: deadLetter.size },
      noise: { ...q, running: running.size, delayed: delayed.length, locks: Object.keys(locks).length, idempotency: idempotency.size, 'progress.events': ev, workers: workers.length, statsByType: statsByType.size, cronTable: cronTable.length },
    };
  },
});
