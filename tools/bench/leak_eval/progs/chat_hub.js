'use strict';
// WebSocket-style chat hub with simulated connections (EventEmitters standing in
// for sockets).  Connections join rooms, send messages, get fan-out with
// per-connection backpressure buffers, typing indicators and acks.
// NO planted leak: every listener is removed on close, every table is pruned.
const EventEmitter = require('events');
const { run } = require('../lib/snap');

class FakeSocket extends EventEmitter {
  constructor(id) { super(); this.id = id; this.open = true; this.bufferedAmount = 0; this.sent = 0; }
  send(frame) { this.bufferedAmount += frame.length; this.sent++; }
  close() { if (!this.open) return; this.open = false; this.emit('close'); }
}

class Hub {
  constructor() {
    this.connections = new Set();         // fluctuating
    this.rooms = new Map();               // room -> Set<Connection>   fluctuating
    this.byUser = {};                     // user -> [conn]   (splice on close, delete when empty)
    this.typing = new Map();              // "room|user" -> expiresAt  TTL
    this.pendingAcks = new Map();         // frameId -> {conn, at}     fluctuating
    this.reconnectTokens = new Map();     // token -> {user, rooms, expires}  TTL
    this.muted = new WeakSet();           // connection -> muted
    this.meta = new WeakMap();            // socket -> connection info
    this.clock = 0;
    this.frameSeq = 0;
  }
  accept(sock, user, rng) {
    const conn = { sock, user, rooms: new Set(), outbox: [], joinedAt: this.clock, lastPong: this.clock };
    this.connections.add(conn);
    this.meta.set(sock, { ip: '10.0.' + rng.int(255) + '.' + rng.int(255), ua: rng.pick(['web', 'ios', 'android']) });
    (this.byUser[user] || (this.byUser[user] = [])).push(conn);
    conn.onMessage = (raw) => this.onMessage(conn, raw);
    conn.onClose = () => this.drop(conn);
    conn.onPong = () => { conn.lastPong = this.clock; };
    sock.on('message', conn.onMessage);
    sock.on('close', conn.onClose);
    sock.on('pong', conn.onPong);
    if (rng.chance(0.1)) this.muted.add(conn);
    return conn;
  }
  drop(conn) {
    this.connections.delete(conn);
    conn.sock.removeListener('message', conn.onMessage);
    conn.sock.removeListener('close', conn.onClose);
    conn.sock.removeListener('pong', conn.onPong);
    for (const r of conn.rooms) this.leave(conn, r);
    const list = this.byUser[conn.user];
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) delete this.byUser[conn.user];
    for (const [id, a] of this.pendingAcks) if (a.conn === conn) this.pendingAcks.delete(id);
    if (conn.rooms.size || conn.wasInRooms) this.reconnectTokens.set('rt-' + conn.sock.id, { user: conn.user, rooms: [...(conn.wasInRooms || [])], expires: this.clock + 60 });
  }
  join(conn, room) {
    let set = this.rooms.get(room);
    if (!set) this.rooms.set(room, (set = new Set()));
    set.add(conn);
    conn.rooms.add(room);
  }
  leave(conn, room) {
    const set = this.rooms.get(room);
    if (set) { set.delete(conn); if (!set.size) this.rooms.delete(room); }
    conn.wasInRooms = conn.wasInRooms || [];
    conn.wasInRooms.push(room);
    if (conn.wasInRooms.length > 4) conn.wasInRooms = conn.wasInRooms.slice(-4);
    conn.rooms.delete(room);
  }
  onMessage(conn, raw) {
    const msg = JSON.parse(raw);
    if (msg.type === 'join') return this.join(conn, msg.room);
    if (msg.type === 'leave') return this.leave(conn, msg.room);
    if (msg.type === 'typing') return void this.typing.set(msg.room + '|' + conn.user, this.clock + 5);
    if (msg.type === 'say' && !this.muted.has(conn)) {
      this.typing.delete(msg.room + '|' + conn.user);
      const frame = JSON.stringify({ type: 'msg', room: msg.room, from: conn.user, text: msg.text, id: ++this.frameSeq });
      const set = this.rooms.get(msg.room);
      if (!set) return;
      for (const c of set) {
        if (c.outbox.length || c.sock.bufferedAmount > 512) c.outbox.push(frame);   // backpressure
        else c.sock.send(frame);
      }
      this.pendingAcks.set(this.frameSeq, { conn, at: this.clock });
    }
    if (msg.type === 'ack') this.pendingAcks.delete(msg.id);
  }
  tick(rng) {
    this.clock++;
    for (const c of this.connections) {
      // the network drains the socket buffer at a random rate
      c.sock.bufferedAmount = Math.max(0, c.sock.bufferedAmount - rng.int(c.sock.rate));
      while (c.outbox.length && c.sock.bufferedAmount < 512) c.sock.send(c.outbox.shift());
      if (c.outbox.length > 60) c.outbox.splice(0, 30);  // shed load for hopeless clients
    }
    if (this.clock % 5 === 0) {
      for (const [k, exp] of this.typing) if (exp < this.clock) this.typing.delete(k);
      for (const [k, t] of this.reconnectTokens) if (t.expires < this.clock) this.reconnectTokens.delete(k);
      for (const [id, a] of this.pendingAcks) if (this.clock - a.at > 6) this.pendingAcks.delete(id);
    }
  }
}

const hub = new Hub();
const ROOMS = [];
const emojiTable = {};      // background
const profanity = new Set(); // background word list
let sockSeq = 0, target = 300;
const sockets = [];         // client side: open FakeSockets (spliced when closed)

function step(rng) {
  for (let t = 0; t < 30; t++) {
    target = Math.max(150, Math.min(450, target + rng.int(21) - 10));
    while (sockets.length < target && rng.chance(0.8)) {
      const s = new FakeSocket(++sockSeq);
      s.rate = rng.pick([60, 150, 400, 2000, 4000]);   // slow mobile links ... fast desktops
      hub.accept(s, 'user' + rng.int(600), rng);
      sockets.push(s);
      const k = 1 + rng.int(3);
      for (let i = 0; i < k; i++) s.emit('message', JSON.stringify({ type: 'join', room: rng.pick(ROOMS) }));
    }
    const closes = sockets.length > target ? 1 + rng.int(8) : rng.int(3);
    for (let i = 0; i < closes && sockets.length; i++) {
      const [s] = sockets.splice(rng.int(sockets.length), 1);
      s.close();
    }
    for (let i = 0; i < 40; i++) {
      const s = sockets[rng.int(sockets.length)];
      const r = rng.next();
      if (r < 0.5) s.emit('message', JSON.stringify({ type: 'say', room: rng.pick(ROOMS), text: rng.word(5 + rng.int(60)) }));
      else if (r < 0.7) s.emit('message', JSON.stringify({ type: 'typing', room: rng.pick(ROOMS) }));
      else if (r < 0.85) s.emit('message', JSON.stringify({ type: 'ack', id: hub.frameSeq - rng.int(10) }));
      else if (r < 0.93) s.emit('message', JSON.stringify({ type: 'join', room: rng.pick(ROOMS) }));
      else s.emit('message', JSON.stringify({ type: 'leave', room: rng.pick(ROOMS) }));
      if (rng.chance(0.3)) s.emit('pong');
    }
    hub.tick(rng);
  }
}

run({
  prog: 'chat_hub',
  warmup: 8,
  perInterval: 4,
  setup(rng) {
    const brng = rng.fork('bg');
    for (let i = 0; i < 60; i++) ROOMS.push('#' + brng.word(7));
    for (let i = 0; i < 80000; i++) emojiTable[':' + brng.word(3 + brng.int(8)) + '_' + i + ':'] = { cp: 0x1f000 + i, aliases: [brng.word(5)], category: brng.pick(['faces', 'food', 'travel', 'objects', 'symbols']) };
    for (let i = 0; i < 20000; i++) profanity.add(brng.word(4 + brng.int(6)));
  },
  step,
  sizes() {
    let outbox = 0, members = 0;
    for (const c of hub.connections) outbox += c.outbox.length;
    for (const s of hub.rooms.values()) members += s.size;
    return {
      leak: {},
      noise: { 'hub.connections': hub.connections.size, 'hub.rooms': hub.rooms.size, 'rooms.members(total)': members, 'hub.byUser': Object.keys(hub.byUser).length, 'outbox(total)': outbox, 'hub.typing': hub.typing.size, 'hub.pendingAcks': hub.pendingAcks.size, 'hub.reconnectTokens': hub.reconnectTokens.size, sockets: sockets.length, emojiTable: Object.keys(emojiTable).length },
    };
  },
});
