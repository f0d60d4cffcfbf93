'use strict';
// In-process pub/sub broker: publishers send to topics, subscribers have bounded
// credit-based delivery queues with acks and redelivery; subscribers connect
// and disconnect all the time.
// Planted leaks:
//   `seenIds`  -- Set of message id strings used for publisher de-duplication, never pruned.
//   'drain'    -- every subscription registers transport.on('drain', ...) to resume
//                 delivery; unsubscribe() forgets to remove it.
const EventEmitter = require('events');
const { run } = require('../lib/snap');

class Transport extends EventEmitter {}

class Subscriber {
  constructor(id, topics, credits) {
    this.id = id; this.topics = topics; this.credits = credits;
    this.queue = [];            // pending deliveries (push/shift)
    this.unacked = new Map();   // msgId -> {msg, deliveredAt, attempts}
    this.acked = 0;
    this.onDrain = () => this.pump();
  }
  pump() {
    while (this.credits > 0 && this.queue.length) {
      const m = this.queue.shift();
      this.unacked.set(m.id, { msg: m, deliveredAt: broker.clock, attempts: 1 });
      this.credits--;
    }
  }
}

class Broker {
  constructor() {
    this.clock = 0;
    this.topics = new Map();          // topic -> Set<subscriberId>    fluctuating
    this.subscribers = new Map();     // id -> Subscriber              fluctuating
    this.retained = {};               // topic -> [last messages] bounded, shift()
    this.seenIds = new Set();         // LEAK
    this.transport = new Transport();
    this.transport.setMaxListeners(0);
    this.redeliveries = [];           // retry queue, drained every tick
    this.wildcards = {};              // pattern -> {count}, deleted when unused
    this.stats = new Map();           // topic -> {in, out}  bounded by topic space
  }
  subscribe(sub) {
    this.subscribers.set(sub.id, sub);
    for (const t of sub.topics) {
      let set = this.topics.get(t);
      if (!set) this.topics.set(t, (set = new Set()));
      set.add(sub.id);
      if (t.endsWith('*')) (this.wildcards[t] || (this.wildcards[t] = { count: 0 })).count++;
      for (const m of this.retained[t] || []) sub.queue.push(m);
    }
    this.transport.on('drain', sub.onDrain);
  }
  unsubscribe(id) {
    const sub = this.subscribers.get(id);
    if (!sub) return;
    this.subscribers.delete(id);
    for (const t of sub.topics) {
      const set = this.topics.get(t);
      if (set) { set.delete(id); if (set.size === 0) this.topics.delete(t); }
      if (this.wildcards[t] && --this.wildcards[t].count === 0) delete this.wildcards[t];
    }
    // BUG: this.transport.removeListener('drain', sub.onDrain) is missing
    sub.queue.length = 0;
    sub.unacked.clear();
  }
  publish(topic, msg) {
    if (this.seenIds.has(msg.id)) return false;   // duplicate from a publisher retry
    this.seenIds.add(msg.id);
    const st = this.stats.get(topic) || { in: 0, out: 0 };
    st.in++;
    this.stats.set(topic, st);
    const r = this.retained[topic] || (this.retained[topic] = []);
    r.push(msg);
    if (r.length > 5) r.shift();
    const targets = [this.topics.get(topic), this.topics.get(topic.split('.')[0] + '.*')];
    for (const set of targets) {
      if (!set) continue;
      for (const id of set) {
        const sub = this.subscribers.get(id);
        sub.queue.push(msg);
        if (sub.queue.length > 60) sub.queue.shift();     // slow consumer: drop oldest
        st.out++;
      }
    }
    return true;
  }
  tick(rng) {
    this.clock++;
    for (const sub of this.subscribers.values()) {
      // consumers ack a random part of what they hold
      for (const [id, u] of sub.unacked) {
        if (rng.chance(0.3)) { sub.unacked.delete(id); sub.credits++; sub.acked++; }
        else if (this.clock - u.deliveredAt > 8) { sub.unacked.delete(id); this.redeliveries.push({ sub: sub.id, msg: u.msg, attempts: u.attempts + 1 }); sub.credits++; }
      }
    }
    let n = Math.min(this.redeliveries.length, rng.int(6));   // redelivery is rate limited
    while (n-- > 0) {
      const r = this.redeliveries.shift();
      const sub = this.subscribers.get(r.sub);
      if (!sub) continue;
      if (r.attempts < 4) sub.queue.push(r.msg);
    }
    this.transport.emit('drain');
  }
}

const broker = new Broker();
const TOPICS = [];
let subSeq = 0, msgSeq = 0;
let targetSubs = 120;
const publishers = [];        // each publisher keeps an outbox of unconfirmed messages
const schemaRegistry = {};    // background: topic -> schema

function step(rng) {
  for (let t = 0; t < 40; t++) {
    // subscriber population follows a random walk around 120
    targetSubs = Math.max(60, Math.min(180, targetSubs + rng.int(7) - 3));
    while (broker.subscribers.size < targetSubs && rng.chance(0.7)) {
      const topics = [];
      const k = 1 + rng.int(4);
      for (let i = 0; i < k; i++) topics.push(rng.chance(0.15) ? rng.pick(TOPICS).split('.')[0] + '.*' : rng.pick(TOPICS));
      broker.subscribe(new Subscriber('s' + ++subSeq, topics, 2 + rng.int(8)));
    }
    if (broker.subscribers.size > targetSubs || rng.chance(0.05)) {
      const ids = [...broker.subscribers.keys()];
      broker.unsubscribe(ids[rng.int(ids.length)]);
    }
    for (const p of publishers) {
      if (rng.chance(0.35)) {
        const msg = { id: p.name + ':' + ++msgSeq, body: { v: rng.int(1e6), note: rng.word(rng.int(20)) }, at: broker.clock };
        p.outbox.push({ topic: rng.pick(TOPICS), msg });
      }
      // confirm or retry (retries re-send the same id: de-duplicated by seenIds)
      while (p.outbox.length && rng.chance(0.8)) {
        const { topic, msg } = p.outbox.shift();
        broker.publish(topic, msg);
        if (rng.chance(0.1)) p.outbox.push({ topic, msg });
      }
    }
    broker.tick(rng);
  }
}

run({
  prog: 'pubsub_broker',
  warmup: 8,
  perInterval: 4,
  setup(rng) {
    const brng = rng.fork('bg');
    for (const a of ['orders', 'payments', 'inventory', 'users', 'shipping', 'audit']) {
      for (let i = 0; i < 12; i++) TOPICS.push(a + '.' + brng.word(6));
    }
    for (let i = 0; i < 11000; i++) {
      const fields = [];
      for (let f = 0; f < 8; f++) fields.push({ name: brng.word(8), type: brng.pick(['string', 'int', 'bool', 'ts']), optional: brng.chance(0.3), doc: brng.word(30) });
      schemaRegistry['schema-' + i] = { id: i, subject: brng.pick(TOPICS), version: 1 + brng.int(9), fields };
    }
    for (let i = 0; i < 3; i++) publishers.push({ name: 'pub' + i, outbox: [] });
  },
  step,
  sizes() {
    let queued = 0, unacked = 0;
    for (const s of broker.subscribers.values()) { queued += s.queue.length; unacked += s.unacked.size; }
    return {
      leak: { seenIds: broker.seenIds.size, drain: broker.transport.listenerCount('drain') },
      noise: { subscribers: broker.subscribers.size, topics: broker.topics.size, 'queue(total)': queued, 'unacked(total)': unacked, redeliveries: broker.redeliveries.length, retained: Object.keys(broker.retained).length, wildcards: Object.keys(broker.wildcards).length, outboxes: publishers.reduce((a, p) => a + p.outbox.length, 0), schemaRegistry: Object.keys(schemaRegistry).length },
    };
  },
});
