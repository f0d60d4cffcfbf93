'use strict';
// Job scheduler service: clients submit jobs over HTTP, poll their status and
// upsert cron entries; a fixed worker pool runs queued jobs, failed jobs are
// retried and, after three attempts, parked in a dead-letter queue.
//
// Planted leaks:
//   jobHistoryById  every finished job is recorded "for status lookups" and
//                   never evicted (recentResults is the bounded one)  - fast
//   deadLetters     poison jobs land here faster than the dead-letter
//                   replayer (one every 10 virtual seconds) takes them  - slow
const { Rng, VirtualClock, hash32, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'jobs';
const JOB_TYPES = ['email', 'resize', 'report', 'webhook', 'index', 'export', 'billing', 'cleanup'];

class Scheduler {
  constructor(clock, workerCount) {
    this.clock = clock;
    this.workerCount = workerCount;
    this.readyQueue = [];            // fluctuates with load, drained by workers
    this.runningJobs = new Map();    // in flight, at most workerCount
    this.recentResults = new Map();  // LRU of the last 400 results
    this.recentResultsCap = 400;
    this.cronEntries = new Map();    // bounded: 64 cron names
    this.jobHistoryById = new Map(); // LEAK
    this.deadLetters = [];           // LEAK (queue drained too slowly)
    this.nextId = 1;
    this.stats = { submitted: 0, done: 0, failed: 0, retried: 0, dead: 0, replayed: 0 };
  }

  submit(spec) {
    const id = 'job-' + (this.nextId++).toString(36);
    const job = {
      id,
      type: JOB_TYPES.includes(spec.type) ? spec.type : 'email',
      priority: spec.priority | 0,
      payload: spec.payload,
      cost: Math.max(1, spec.cost | 0),
      attempts: 0,
      submittedAt: this.clock.now(),
      startedAt: 0,
      remaining: 0,
    };
    // high priority jobs jump ahead of normal ones
    if (job.priority > 7) this.readyQueue.unshift(job); else this.readyQueue.push(job);
    this.stats.submitted++;
    return job;
  }

  status(id) {
    const running = this.runningJobs.get(id);
    if (running) return { id, state: 'running', attempts: running.attempts };
    const recent = this.recentResults.get(id);
    if (recent) {
      this.recentResults.delete(id);
      this.recentResults.set(id, recent);
      return recent;
    }
    const hist = this.jobHistoryById.get(id);
    if (hist) return hist;
    if (this.readyQueue.some((j) => j.id === id)) return { id, state: 'queued' };
    return null;
  }

  upsertCron(name, spec) {
    const prev = this.cronEntries.get(name);
    const entry = { name, every: spec.every | 0 || 60, type: spec.type, lastRun: prev ? prev.lastRun : 0, runs: prev ? prev.runs : 0 };
    this.cronEntries.set(name, entry);
    return entry;
  }

  fails(job) {
    if (job.payload && job.payload.poison) return true;
    // transient failures: deterministic from the job id and attempt number
    return hash32(job.id + '#' + job.attempts) % 100 < 6;
  }

  finish(job, ok) {
    this.runningJobs.delete(job.id);
    const rec = {
      id: job.id, type: job.type, state: ok ? 'done' : 'failed',
      attempts: job.attempts, waitedMs: job.startedAt - job.submittedAt,
      finishedAt: this.clock.now(),
    };
    if (ok) {
      this.stats.done++;
    } else if (job.attempts < 3) {
      this.stats.retried++;
      this.readyQueue.push(job);
      return;
    } else {
      this.stats.failed++;
      this.stats.dead++;
      this.deadLetters.push({ job, reason: 'max attempts', parkedAt: this.clock.now() });
    }
    this.recentResults.set(job.id, rec);
    if (this.recentResults.size > this.recentResultsCap) {
      this.recentResults.delete(this.recentResults.keys().next().value);
    }
    this.jobHistoryById.set(job.id, rec);
  }

  // one scheduling tick: advance running jobs, start queued ones
  tick() {
    for (const job of [...this.runningJobs.values()]) {
      job.remaining--;
      if (job.remaining <= 0) this.finish(job, !this.fails(job));
    }
    while (this.runningJobs.size < this.workerCount && this.readyQueue.length) {
      const job = this.readyQueue.shift();
      job.attempts++;
      job.startedAt = this.clock.now();
      job.remaining = job.cost;
      this.runningJobs.set(job.id, job);
    }
  }

  fireCron(now) {
    for (const entry of this.cronEntries.values()) {
      if (now - entry.lastRun >= entry.every * 1000) {
        entry.lastRun = now;
        entry.runs++;
        this.submit({ type: entry.type, priority: 3, cost: 1, payload: { cron: entry.name } });
      }
    }
  }

  replayDeadLetter() {
    const item = this.deadLetters.shift();
    if (item) this.stats.replayed++;
  }
}

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const sched = new Scheduler(clock, 24);
  clock.every(100, () => sched.tick());
  clock.every(5000, (now) => sched.fireCron(now));
  clock.every(10000, () => sched.replayDeadLetter());

  const server = await serve((req, url, body) => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'POST' && parts[0] === 'jobs') {
      const job = sched.submit(body || {});
      return { status: 202, body: { id: job.id } };
    }
    if (req.method === 'GET' && parts[0] === 'jobs' && parts[1]) {
      const st = sched.status(parts[1]);
      return st ? st : { status: 404, body: { error: 'unknown job' } };
    }
    if (req.method === 'PUT' && parts[0] === 'cron' && parts[1]) {
      return sched.upsertCron(parts[1], body || {});
    }
    if (req.method === 'GET' && parts[0] === 'stats') {
      return { ...sched.stats, queued: sched.readyQueue.length, running: sched.runningJobs.size };
    }
    return { status: 404, body: { error: 'no route' } };
  });
  const client = makeClient(server, 12);
  const level = waveFactory(rng, 3, 18, 23);
  const myJobs = new Array(64).fill(null);  // ring of ids this client may poll
  let submitted = 0;

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      const r = rng.float();
      if (r < 0.6) {
        const poison = rng.chance(0.022);
        reqs.push(client.request('POST', '/jobs', {
          type: rng.pick(JOB_TYPES), priority: rng.int(10), cost: rng.range(1, 6),
          payload: { tenant: 't' + rng.int(40), poison, args: rng.hex(24) },
        }).then((res) => { if (res.body && res.body.id) myJobs[submitted++ % myJobs.length] = res.body.id; }));
      } else if (r < 0.92) {
        const id = myJobs[rng.int(myJobs.length)] || 'job-1';
        reqs.push(client.request('GET', '/jobs/' + id));
      } else if (r < 0.98) {
        const name = 'cron-' + rng.int(64);
        reqs.push(client.request('PUT', '/cron/' + name, { every: rng.range(30, 600), type: rng.pick(JOB_TYPES) }));
      } else {
        reqs.push(client.request('GET', '/stats'));
      }
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [
      ['jobHistoryById', () => sched.jobHistoryById.size],
      ['deadLetters', () => sched.deadLetters.length],
    ],
    healthy: [
      ['readyQueue', () => sched.readyQueue.length],
      ['runningJobs', () => sched.runningJobs.size],
      ['recentResults', () => sched.recentResults.size],
      ['cronEntries', () => sched.cronEntries.size],
    ],
    shutdown: async () => { client.close(); server.close(); },
  });
});
