'use strict';
// Multiplayer game lobby and matchmaker over a line-delimited JSON TCP
// protocol. Players connect, queue for a match, get grouped into rooms of
// four by rating, exchange moves, and disconnect.
const net = require('net');
const { EventEmitter } = require('events');
const { run } = require('../lib/snap');

const ROOM_SIZE = 4;
const MOVES_KEPT = 40;
const MATCH_HISTORY = 100;

let rng;
let now;

// ------------------------------------------------------------------ server state
const profiles = new Map();       // accountId -> {rating, wins, losses, name}
const players = new Map();        // playerId -> Player (connected)
const rooms = new Map();          // roomId -> Room
let matchQueue = [];              // [{playerId, rating, since}]
const matchHistory = [];          // ring of finished matches
const lobby = new EventEmitter();
lobby.setMaxListeners(0);
const tickBus = new EventEmitter();
tickBus.setMaxListeners(0);
const lastSeen = new WeakMap();   // socket -> time
let playerSeq = 0;
let roomSeq = 0;

function loadProfiles(r) {
  for (let i = 1; i <= 12000; i++) {
    profiles.set(i, { name: `p_${r.id(6)}`, rating: 800 + r.int(1600), wins: r.int(300), losses: r.int(300), badges: r.chance(0.2) ? [r.id(4), r.id(4)] : [] });
  }
}

class Room {
  constructor(id, memberIds, duration) {
    this.id = id;
    this.members = new Set(memberIds);
    this.moves = [];
    this.scores = {};
    for (const m of memberIds) this.scores[m] = 0;
    this.startedAt = now();
    this.endsAt = now() + duration;
    this.tickCount = 0;
    this.onTick = () => {
      this.tickCount++;
      if (now() >= this.endsAt) closeRoom(this, 'finished');
    };
  }
  broadcast(msg) {
    for (const pid of this.members) {
      const p = players.get(pid);
      if (p) queueOut(p, msg);
    }
  }
}

function queueOut(player, msg) {
  player.outbox.push(msg);
  if (player.outbox.length >= 12) flushPlayer(player);
}

function flushPlayer(player) {
  if (player.outbox.length === 0 || player.socket.destroyed) return;
  player.socket.write(JSON.stringify({ batch: player.outbox }) + '\n');
  player.outbox = [];
}

function closeRoom(room, reason) {
  if (!rooms.has(room.id)) return;
  rooms.delete(room.id);
  tickBus.removeListener('tick', room.onTick);
  matchHistory.push({ roomId: room.id, reason, scores: Object.assign({}, room.scores), moves: room.moves.length, endedAt: now() });
  if (matchHistory.length > MATCH_HISTORY) matchHistory.shift();
  lobby.emit('roomClosed', room.id, reason);
}

function handleHello(conn, msg) {
  const id = ++playerSeq;
  const prof = profiles.get(msg.account);
  const player = { id, account: msg.account, rating: prof.rating, socket: conn.socket, roomId: null, outbox: [], joinedAt: now() };
  conn.player = player;
  players.set(id, player);
  // tell the player when the room they are in closes
  lobby.on('roomClosed', (roomId, reason) => {
    const p = players.get(id);
    if (p && p.roomId === roomId) {
      p.roomId = null;
      queueOut(p, { type: 'roomClosed', roomId, reason });
    }
  });
  return { playerId: id };
}

function handleQueue(conn) {
  const p = conn.player;
  if (p.roomId || matchQueue.some((e) => e.playerId === p.id)) return { queued: false };
  matchQueue.push({ playerId: p.id, rating: p.rating, since: now() });
  return { queued: true, position: matchQueue.length };
}

function handleMove(conn, msg) {
  const p = conn.player;
  const room = p.roomId && rooms.get(p.roomId);
  if (!room) return { ok: false };
  room.moves.push({ pid: p.id, x: msg.x, y: msg.y, at: now() });
  if (room.moves.length > MOVES_KEPT) room.moves.splice(0, room.moves.length - MOVES_KEPT);
  room.scores[p.id] += msg.x % 3;
  room.broadcast({ type: 'move', pid: p.id, x: msg.x, y: msg.y });
  return { ok: true };
}

function leaveRoom(p) {
  const room = p.roomId && rooms.get(p.roomId);
  p.roomId = null;
  if (!room) return;
  room.members.delete(p.id);
  delete room.scores[p.id];
  if (room.members.size === 0) closeRoom(room, 'abandoned');
  else room.broadcast({ type: 'left', pid: p.id });
}

function disconnect(conn) {
  const p = conn.player;
  if (!p) return;
  conn.player = null;
  players.delete(p.id);
  matchQueue = matchQueue.filter((e) => e.playerId !== p.id);
  leaveRoom(p);
}

function matchmake() {
  const t = now();
  matchQueue.sort((a, b) => a.rating - b.rating);
  const matched = new Set();
  for (let i = 0; i + ROOM_SIZE <= matchQueue.length; i++) {
    const group = matchQueue.slice(i, i + ROOM_SIZE);
    const waited = t - group[0].since;
    const window = 150 + waited / 200;
    if (group[ROOM_SIZE - 1].rating - group[0].rating > window) continue;
    const room = new Room(`room-${++roomSeq}`, group.map((e) => e.playerId), rng.range(6, 20) * 1000);
    rooms.set(room.id, room);
    tickBus.on('tick', room.onTick);
    for (const e of group) {
      matched.add(e.playerId);
      const p = players.get(e.playerId);
      p.roomId = room.id;
      queueOut(p, { type: 'matched', roomId: room.id, members: group.map((g) => g.playerId) });
    }
    i += ROOM_SIZE - 1;
  }
  if (matched.size) matchQueue = matchQueue.filter((e) => !matched.has(e.playerId));
}

const server = net.createServer((socket) => {
  const conn = { socket, buf: '', player: null };
  socket.setNoDelay(true);
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    lastSeen.set(socket, now());
    conn.buf += chunk;
    let nl;
    while ((nl = conn.buf.indexOf('\n')) >= 0) {
      const line = conn.buf.slice(0, nl);
      conn.buf = conn.buf.slice(nl + 1);
      const msg = JSON.parse(line);
      let reply;
      if (msg.type === 'hello') reply = handleHello(conn, msg);
      else if (msg.type === 'queue') reply = handleQueue(conn);
      else if (msg.type === 'move') reply = handleMove(conn, msg);
      else if (msg.type === 'leave') { leaveRoom(conn.player); reply = { ok: true }; }
      socket.write(JSON.stringify({ ack: msg.seq, reply }) + '\n');
    }
  });
  socket.on('close', () => disconnect(conn));
  socket.on('error', () => {});
});

// ------------------------------------------------------------------ clients
let port;
const clients = new Set();

class GameClient {
  constructor(account, life) {
    this.account = account;
    this.life = life;
    this.seq = 0;
    this.pending = new Map();
    this.buf = '';
    this.inRoom = false;
    this.received = 0;
  }
  connect() {
    return new Promise((resolve) => {
      this.socket = net.connect({ port, host: '127.0.0.1', noDelay: true }, resolve);
      this.socket.setEncoding('utf8');
      this.socket.on('data', (chunk) => this.onData(chunk));
      this.socket.on('error', () => {});
    });
  }
  onData(chunk) {
    this.buf += chunk;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(this.buf.slice(0, nl));
      this.buf = this.buf.slice(nl + 1);
      if (msg.ack != null) {
        const res = this.pending.get(msg.ack);
        this.pending.delete(msg.ack);
        if (res) res(msg.reply);
      } else if (msg.batch) {
        this.received += msg.batch.length;
        for (const m of msg.batch) {
          if (m.type === 'matched') this.inRoom = true;
          else if (m.type === 'roomClosed') this.inRoom = false;
        }
      }
    }
  }
  send(msg) {
    msg.seq = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(msg.seq, resolve);
      this.socket.write(JSON.stringify(msg) + '\n');
    });
  }
}

async function clientStep(c) {
  if (c.life-- <= 0) {
    clients.delete(c);
    c.socket.end();
    return;
  }
  if (c.inRoom) {
    if (rng.chance(0.08)) { c.inRoom = false; await c.send({ type: 'leave' }); }
    else if (rng.chance(0.8)) await c.send({ type: 'move', x: rng.int(64), y: rng.int(64) });
  } else if (rng.chance(0.6)) {
    await c.send({ type: 'queue' });
  }
}

run({
  warmupSteps: 120,
  stepsPerInterval: 20,
  tickMs: 1000,
  async setup(ctx) {
    rng = ctx.rng;
    now = ctx.now;
    loadProfiles(rng.fork('profiles'));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    port = server.address().port;
  },
  async step(ctx) {
    const load = ctx.load();
    const arrivals = rng.count(3.2 * load);
    const joins = [];
    for (let k = 0; k < arrivals; k++) {
      const c = new GameClient(1 + rng.int(12000), rng.range(8, 32));
      clients.add(c);
      joins.push(c.connect().then(() => c.send({ type: 'hello', account: c.account })));
    }
    await Promise.all(joins);
    await Promise.all(Array.from(clients, (c) => clientStep(c)));
    matchmake();
    tickBus.emit('tick');
    for (const p of players.values()) if (rng.chance(0.3)) flushPlayer(p);
    // let socket closes and batched pushes propagate
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  },
  sizes() {
    let members = 0;
    for (const r of rooms.values()) members += r.members.size;
    let outbox = 0;
    for (const p of players.values()) outbox += p.outbox.length;
    return {
      roomClosed: lobby.listenerCount('roomClosed'),
      players: players.size,
      rooms: rooms.size,
      members,
      matchQueue: matchQueue.length,
      outbox,
      tickListeners: tickBus.listenerCount('tick'),
      matchHistory: matchHistory.length,
    };
  },
  async teardown() {
    for (const c of clients) c.socket.destroy();
    server.close();
  },
});
