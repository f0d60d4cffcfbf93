'use strict';
// Upload service: clients POST files, the server stores metadata, queues a
// processing job (thumbnail/scan) and lets clients poll job status.
// Planted leaks:
//   `uploadQueue` -- linked-list job queue; the processing stage dequeues fewer jobs than
//                    arrive (slowly draining: old jobs stay queued for a long time).
//   `hitsByUser`  -- Map userId -> request count (both small integers), never reset;
//                    new user ids keep arriving from signups.
const http = require('http');
const crypto = require('crypto');
const { URL } = require('url');
const { run, Load } = require('../lib/snap');
const { httpRequest, listen } = require('../lib/client');

class LinkedQueue {
  constructor() { this.head = null; this.tail = null; this.length = 0; }
  enqueue(job) {
    const node = { job, next: null };
    if (this.tail) this.tail.next = node; else this.head = node;
    this.tail = node;
    this.length++;
  }
  dequeue() {
    const node = this.head;
    if (!node) return undefined;
    this.head = node.next;
    if (!this.head) this.tail = null;
    this.length--;
    return node.job;
  }
}

// ---------------------------------------------------------------- server state
const uploadQueue = new LinkedQueue();   // LEAK (enqueue outruns dequeue)
const hitsByUser = new Map();            // LEAK: userId -> count (Smi -> Smi)
const jobStatus = new Map();             // jobId -> {state, at}, TTL after completion
const activeUploads = new Map();         // reqId -> {user, received}, fluctuating
const uploadMeta = new WeakMap();        // req -> meta
const quota = {};                        // userId -> bytes this window; deleted on reset
const completed = new Array(200);        // ring buffer of finished job summaries
let completedPos = 0;
const thumbCache = new Map();            // bounded LRU (Map order), 150 entries
const storageIndex = new Map();          // background: blob sha -> {size, refs}
const scanPending = [];                  // virus-scan batch, flushed with `= []`-style reset
let jobSeq = 0, reqSeq = 0, clock = 0, srng;
let scanBatch = scanPending;

function processJobs() {
  // the thumbnailer only gets through about half of the uploads
  const n = srng.chance(0.5) ? 1 : 0;
  for (let i = 0; i < n; i++) {
    const job = uploadQueue.dequeue();
    if (!job) break;
    const blob = storageIndex.get(job.sha);
    if (blob) blob.refs++; else storageIndex.set(job.sha, { size: job.bytes, refs: 1, bucket: 'tmp' });
    jobStatus.set(job.id, { state: 'done', at: clock, thumb: job.sha.slice(0, 12), sha: job.sha });
    completed[completedPos] = { id: job.id, bytes: job.bytes, ms: clock - job.at };
    completedPos = (completedPos + 1) % completed.length;
  }
  if (clock % 50 === 0) {
    for (const [id, st] of jobStatus) {
      if (clock - st.at > 200) {
        jobStatus.delete(id);
        const blob = storageIndex.get(st.sha);
        if (blob && --blob.refs === 0) storageIndex.delete(st.sha);   // temp blobs are dropped
      }
    }
  }
}

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function handle(req, res) {
  clock++;
  const url = new URL(req.url, 'http://x');
  const user = Number(req.headers['x-user-id']);
  hitsByUser.set(user, (hitsByUser.get(user) || 0) + 1);
  if (clock % 400 === 0) for (const k of Object.keys(quota)) if (srng.chance(0.5)) delete quota[k];
  if (req.method === 'POST' && url.pathname === '/upload') {
    const id = ++reqSeq;
    const meta = { user, received: 0, hash: crypto.createHash('sha1') };
    activeUploads.set(id, meta);
    uploadMeta.set(req, meta);
    req.on('data', (c) => { meta.received += c.length; meta.hash.update(c); });
    req.on('end', () => setTimeout(() => {     // "store to disk" then respond
      activeUploads.delete(id);
      quota[user] = (quota[user] || 0) + meta.received;
      const sha = meta.hash.digest('hex');
      const job = { id: ++jobSeq, user, bytes: meta.received, sha, at: clock, name: req.headers['x-file-name'] };
      uploadQueue.enqueue(job);
      processJobs();
      scanBatch.push(sha);
      if (scanBatch.length >= 16) scanBatch.splice(0);
      send(res, 201, { job: job.id });
    }, 1 + srng.int(4)));
    return;
  }
  req.resume();
  req.on('end', () => {
    if (url.pathname === '/status') {
      const jid = Number(url.searchParams.get('job'));
      const st = jobStatus.get(jid) || (jid <= jobSeq ? { state: 'queued-or-expired' } : null);
      return send(res, st ? 200 : 404, st || { error: 'unknown job' });
    }
    if (url.pathname === '/thumb') {
      const key = url.searchParams.get('sha');
      let t = thumbCache.get(key);
      if (t) { thumbCache.delete(key); thumbCache.set(key, t); } else {
        t = { sha: key, w: 128, h: 96, px: srng.hex(64) };
        thumbCache.set(key, t);
        if (thumbCache.size > 150) thumbCache.delete(thumbCache.keys().next().value);
      }
      return send(res, 200, t);
    }
    send(res, 200, { user, quota: quota[user] || 0 });
  });
}

// ---------------------------------------------------------------- client
let server, agent, load, port;
let nextUserId = 3000;       // signups: new user ids keep arriving
const myJobs = [];            // client side: recent job ids (bounded)
const shas = [];

async function client(rng) {
  let user = rng.int(800);
  if (rng.chance(0.04)) user = nextUserId++;
  else if (nextUserId > 3000 && rng.chance(0.1)) user = 3000 + rng.int(nextUserId - 3000);
  const headers = { 'x-user-id': String(user) };
  const r = rng.next();
  if (r < 0.28) {
    const size = 200 + rng.int(3000);
    const content = rng.chance(0.2) ? 'dup-' + rng.int(50) : rng.hex(size);
    headers['x-file-name'] = rng.word(8) + '.jpg';
    const res = await httpRequest(agent, port, 'POST', '/upload', { headers, body: content });
    myJobs.push(JSON.parse(res.body).job);
    if (myJobs.length > 50) myJobs.shift();
  } else if (r < 0.6 && myJobs.length) {
    await httpRequest(agent, port, 'GET', '/status?job=' + rng.pick(myJobs), { headers });
  } else if (r < 0.8) {
    if (shas.length < 400) shas.push(rng.hex(40));
    await httpRequest(agent, port, 'GET', '/thumb?sha=' + rng.pick(shas), { headers });
  } else {
    await httpRequest(agent, port, 'GET', '/me', { headers });
  }
}

run({
  prog: 'http_upload_jobs',
  warmup: 8,
  perInterval: 4,
  async setup(rng) {
    srng = rng.fork('server');
    const brng = rng.fork('bg');
    for (let i = 0; i < 90000; i++) storageIndex.set(brng.hex(40), { size: brng.int(5e6), refs: 1 + brng.int(3), bucket: 'b' + brng.int(16) });
    server = http.createServer(handle);
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const crng = rng.fork('client');
    load = new Load(8, () => client(crng));
  },
  step: () => load.until(300),
  sizes() {
    return {
      leak: { uploadQueue: uploadQueue.length, hitsByUser: hitsByUser.size },
      noise: { jobStatus: jobStatus.size, activeUploads: activeUploads.size, quota: Object.keys(quota).length, thumbCache: thumbCache.size, scanBatch: scanBatch.length, storageIndex: storageIndex.size, completed: completed.filter(Boolean).length },
    };
  },
  async teardown() { load.stop(); agent.destroy(); },
});
