'use strict';
// Image thumbnail pipeline (in-process simulation, no HTTP): uploads are
// decoded, resized (the bytes really are averaged down), encoded and written
// to an object store fronted by an LRU of thumbnails. Stages are fed by
// queues drained by a fixed number of workers per tick, so queues swell and
// shrink with the upload waves.
//
// Planted leaks:
//   uploadsInFlight  upload records (with their original bytes) are deleted
//                    once handed to the store; the decode-error path forgets
//                    to delete them                                       - medium
//   retryBacklog     after a while the object store starts refusing a share
//                    of writes; refused writes wait in a retry backlog that
//                    the retrier drains more slowly than it fills          - starts late
const { Rng, hash32, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'thumbs';
const MAGIC = 0x89;
const DEGRADE_AT_STEP = 230;
const THUMB_CACHE_BYTES = 256 * 1024;

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  let now = 0;
  let stepNo = 0;

  const uploadsInFlight = new Map();   // LEAK on the error path
  const decodeQueue = [];
  const resizeQueue = [];
  const encodeQueue = [];
  const decodeJobs = new Map();        // in-flight decodes, bounded by DECODERS
  const thumbCache = new Map();        // key -> thumb Buffer, LRU by total bytes
  let thumbCacheBytes = 0;
  const retryBacklog = [];             // LEAK once the store degrades
  const recentErrors = [];             // last 50 errors
  const stageStats = { received: 0, decoded: 0, resized: 0, encoded: 0, stored: 0, corrupt: 0, refused: 0, retried: 0 };
  const DECODERS = 10, RESIZERS = 11, ENCODERS = 12, RETRIES_PER_TICK = 1;

  function receive(id, user, bytes) {
    uploadsInFlight.set(id, { id, user, bytes, receivedAt: now, stage: 'queued' });
    decodeQueue.push(id);
    stageStats.received++;
  }

  function noteError(id, err) {
    recentErrors.push({ id, err, at: now });
    if (recentErrors.length > 50) recentErrors.shift();
  }

  async function decode(id) {
    const up = uploadsInFlight.get(id);
    decodeJobs.set(id, { id, startedAt: now });
    await new Promise(setImmediate);
    decodeJobs.delete(id);
    if (up.bytes[0] !== MAGIC) {
      stageStats.corrupt++;
      noteError(id, 'bad magic');
      return;   // BUG: uploadsInFlight entry stays behind
    }
    up.stage = 'decoded';
    const w = up.bytes.readUInt16BE(1), h = up.bytes.readUInt16BE(3);
    resizeQueue.push({ id, w, h, pixels: up.bytes.subarray(5) });
    stageStats.decoded++;
  }

  function resize(job) {
    const factor = 16;
    const out = Buffer.allocUnsafe(Math.ceil(job.pixels.length / factor));
    for (let o = 0; o < out.length; o++) {
      let sum = 0, n = 0;
      for (let k = o * factor; k < Math.min(job.pixels.length, (o + 1) * factor); k++) { sum += job.pixels[k]; n++; }
      out[o] = n ? (sum / n) | 0 : 0;
    }
    encodeQueue.push({ id: job.id, w: Math.max(1, job.w >> 4), h: Math.max(1, job.h >> 4), thumb: out });
    stageStats.resized++;
  }

  function encode(job) {
    const header = Buffer.from(`THMB${job.w}x${job.h};`);
    const thumb = Buffer.concat([header, job.thumb]);
    stageStats.encoded++;
    const up = uploadsInFlight.get(job.id);
    uploadsInFlight.delete(job.id);   // handed to the store
    store({ key: job.id + '@' + job.w + 'x' + job.h, user: up ? up.user : '?', thumb, attempts: 0 });
  }

  function storeRefuses(item) {
    return stepNo >= DEGRADE_AT_STEP && hash32(item.key + '/' + item.attempts) % 100 < 30;
  }

  function store(item) {
    item.attempts++;
    if (storeRefuses(item)) {
      stageStats.refused++;
      retryBacklog.push(item);
      return false;
    }
    thumbCache.set(item.key, item.thumb);
    thumbCacheBytes += item.thumb.length;
    while (thumbCacheBytes > THUMB_CACHE_BYTES) {
      const [k, v] = thumbCache.entries().next().value;
      thumbCache.delete(k);
      thumbCacheBytes -= v.length;
    }
    stageStats.stored++;
    return true;
  }

  async function tick() {
    const decodes = [];
    for (let i = 0; i < DECODERS && decodeQueue.length; i++) decodes.push(decode(decodeQueue.shift()));
    await Promise.all(decodes);
    for (let i = 0; i < RESIZERS && resizeQueue.length; i++) resize(resizeQueue.shift());
    await new Promise(setImmediate);
    for (let i = 0; i < ENCODERS && encodeQueue.length; i++) encode(encodeQueue.shift());
    for (let i = 0; i < RETRIES_PER_TICK && retryBacklog.length; i++) {
      const item = retryBacklog.shift();
      stageStats.retried++;
      store(item);
    }
  }

  const level = waveFactory(rng, 2, 17, 27);
  let uploadNo = 0;
  function makeUpload() {
    const w = rng.range(320, 1920), h = rng.range(240, 1080);
    const size = rng.range(1024, 4096);
    const bytes = Buffer.alloc(size, rng.int(256));
    bytes[0] = rng.chance(0.05) ? 0x00 : MAGIC;
    bytes.writeUInt16BE(w, 1);
    bytes.writeUInt16BE(h, 3);
    for (let k = 5; k < size; k += 61) bytes[k] = rng.int(256);
    return { id: 'img-' + (++uploadNo).toString(36) + '-' + rng.hex(6), user: 'user' + rng.int(300), bytes };
  }

  async function step(i) {
    stepNo = i;
    const n = level(i);
    for (let k = 0; k < n; k++) { const u = makeUpload(); receive(u.id, u.user, u.bytes); }
    await tick();
    now += 250;
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [
      ['uploadsInFlight', () => uploadsInFlight.size],
      ['retryBacklog', () => retryBacklog.length],
    ],
    healthy: [
      ['decodeQueue', () => decodeQueue.length],
      ['resizeQueue', () => resizeQueue.length],
      ['encodeQueue', () => encodeQueue.length],
      ['thumbCache', () => thumbCache.size],
      ['recentErrors', () => recentErrors.length],
    ],
  });
});
