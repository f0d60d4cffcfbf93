'use strict';
// Long-poll chat server: clients POST messages and GET /poll which is held
// until a message arrives in the room or the poll times out.
// Planted leaks:
//   'message' listeners on `bus` -- each held poll subscribes with bus.on('message');
//               the delivery path removes it, the timeout path forgets to.
//   `history` -- append-only array of every message ("for the export endpoint"),
//               the per-room ring buffers are the bounded ones.
const http = require('http');
const EventEmitter = require('events');
const { URL } = require('url');
const { run, Load } = require('../lib/snap');
const { httpRequest, listen } = require('../lib/client');

const ROOMS = 40;
const bus = new EventEmitter();
bus.setMaxListeners(0);             // "too many polls" warnings silenced

// ---------------------------------------------------------------- server state
const rooms = new Map();            // roomId -> {id, topic, recent:[], members:Map user->lastActive, lastId}
const history = [];                 // LEAK: every message ever posted
const waitingPolls = new Map();     // pollId -> {room, since, timer}  fluctuating
const presence = {};                // user -> lastSeen, deleted when idle
const typing = new Map();           // user -> expiresAt (TTL)
const rateWindows = new Map();      // user -> [timestamps], rebuilt with filter
const outbox = [];                  // persistence batch, flushed with length = 0
const emojiIndex = {};              // background: shortcode -> {code, keywords}
let msgSeq = 0, pollSeq = 0, clock = 0;
let srng;

function send(res, status, obj) {
  const body = obj === undefined ? '' : JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function post(roomId, from, text) {
  const room = rooms.get(roomId);
  const msg = { id: ++msgSeq, room: roomId, from, text, at: Date.now() };
  room.recent.push(msg);
  if (room.recent.length > 5) room.recent.shift();
  room.lastId = msg.id;
  room.members.set(from, clock);
  history.push(msg);
  outbox.push(msg);
  if (outbox.length >= 25) outbox.length = 0;    // "written to the database"
  bus.emit('message', msg);
  return msg;
}

function poll(req, res, roomId, since, user, wait) {
  const room = rooms.get(roomId);
  room.members.set(user, clock);
  const pending = room.recent.filter((m) => m.id > since);
  if (pending.length) return send(res, 200, { messages: pending });
  const id = ++pollSeq;
  const entry = { room: roomId, since, user, timer: null, started: Date.now() };
  const onMessage = (msg) => {
    if (msg.room !== roomId || res.writableEnded) return;
    clearTimeout(entry.timer);
    waitingPolls.delete(id);
    bus.removeListener('message', onMessage);
    send(res, 200, { messages: [msg] });
  };
  if (wait) {
    // mobile clients choose their own wait time
    armTimeout(id, entry, res, Math.min(wait, 40));
  } else {
    entry.timer = setTimeout(() => {
      waitingPolls.delete(id);
      bus.removeListener('message', onMessage);
      send(res, 204);
    }, 12 + srng.int(20));
  }
  waitingPolls.set(id, entry);
  bus.on('message', onMessage);
}

function armTimeout(id, entry, res, ms) {
  entry.timer = setTimeout(() => {
    waitingPolls.delete(id);
    // BUG: the listener registered by poll() is never removed on this path
    send(res, 204);
  }, ms);
}

function allowed(user) {
  const now = clock;
  const w = (rateWindows.get(user) || []).filter((t) => now - t < 200);
  if (w.length >= 8) { rateWindows.set(user, w); return false; }
  if (clock % 7 === 0) {  // occasionally drop idle windows
    for (const [u, ts] of rateWindows) if (!ts.length || now - ts[ts.length - 1] > 200) rateWindows.delete(u);
  }
  w.push(now);
  rateWindows.set(user, w);
  return true;
}

function handle(req, res, body) {
  clock++;
  const url = new URL(req.url, 'http://x');
  const user = req.headers['x-user'];
  presence[user] = clock;
  if (clock % 100 === 0) {
    for (const u in presence) {
      if (clock - presence[u] > 300) {
        delete presence[u];
        rateWindows.delete(u);
        for (const r of rooms.values()) r.members.delete(u);
      }
    }
    for (const r of rooms.values()) for (const [u, t] of r.members) if (clock - t > 250) r.members.delete(u);
    for (const [u, exp] of typing) if (exp < clock) typing.delete(u);
  }
  if (url.pathname === '/poll') {
    return poll(req, res, Number(url.searchParams.get('room')), Number(url.searchParams.get('since')), user, Number(url.searchParams.get('wait') || 0));
  }
  if (url.pathname === '/archive') {
    const arch = rooms.get(Number(url.searchParams.get('room'))).archive || [];
    const page = Number(url.searchParams.get('page'));
    return send(res, 200, { messages: arch.slice(page * 10, page * 10 + 10) });
  }
  if (url.pathname === '/typing') {
    typing.set(user, clock + 20 + srng.int(60));
    return send(res, 200, { ok: true });
  }
  if (url.pathname === '/send' && req.method === 'POST') {
    if (!allowed(user)) return send(res, 429, { error: 'slow down' });
    const m = JSON.parse(body);
    typing.delete(user);
    const msg = post(m.room, user, m.text);
    return send(res, 200, { id: msg.id });
  }
  send(res, 404, { error: 'nope' });
}

// ---------------------------------------------------------------- clients
let server, agent, load, port;

const userRoom = new Map();   // client side: user -> {room, since}

async function client(rng) {
  const user = 'u' + rng.int(150);
  let cur = userRoom.get(user);
  if (!cur || rng.chance(0.05)) { cur = { room: rng.int(ROOMS), since: 0, mobile: rng.chance(0.25) }; userRoom.set(user, cur); }
  const room = cur.room;
  const headers = { 'x-user': user };
  const r = rng.next();
  if (r < 0.55) {
    const since = cur.since || rooms.get(room).lastId;
    const wait = cur.mobile ? `&wait=${15 + rng.int(25)}` : '';
    const res = await httpRequest(agent, port, 'GET', `/poll?room=${room}&since=${since}${wait}`, { headers });
    if (res.status === 200) {
      const msgs = JSON.parse(res.body).messages;
      cur.since = msgs[msgs.length - 1].id;
    }
  } else if (r < 0.62) {
    await httpRequest(agent, port, 'GET', '/typing', { headers });
  } else if (r < 0.80) {
    await httpRequest(agent, port, 'GET', `/archive?room=${room}&page=${rng.int(20)}`, { headers });
  } else {
    const words = 3 + rng.int(15);
    let text = '';
    for (let i = 0; i < words; i++) text += rng.word(2 + rng.int(7)) + ' ';
    await httpRequest(agent, port, 'POST', '/send', { headers, body: { room, text } });
  }
}

run({
  prog: 'http_chat_sse',
  warmup: 12,
  perInterval: 4,
  async setup(rng) {
    srng = rng.fork('server');
    const brng = rng.fork('bg');
    for (let i = 0; i < 9000; i++) emojiIndex[':' + brng.word(4 + brng.int(8)) + i + ':'] = { code: 0x1f300 + i, keywords: [brng.word(5), brng.word(6), brng.word(4)], skin: brng.chance(0.2) ? [1, 2, 3, 4, 5] : null };
    for (let i = 0; i < ROOMS; i++) {
      const room = { id: i, topic: brng.word(12), recent: [], members: new Map(), lastId: 0, created: Date.now() };
      rooms.set(i, room);
    }
    // seed each room with some old backlog that clients can scroll through
    for (let i = 0; i < 80000; i++) {
      const r = rooms.get(brng.int(ROOMS));
      (r.archive || (r.archive = [])).push({ id: -i, from: 'u' + brng.int(500), text: brng.word(20 + brng.int(80)), at: 1700000000000 + i });
    }
    server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
    });
    port = await listen(server);
    agent = new http.Agent({ keepAlive: true, maxSockets: 12 });
    const crng = rng.fork('client');
    load = new Load(12, () => client(crng));
  },
  step: () => load.until(150),
  sizes() {
    let recent = 0, members = 0;
    for (const r of rooms.values()) { recent += r.recent.length; members += r.members.size; }
    return {
      leak: { message: bus.listenerCount('message'), history: history.length },
      noise: { waitingPolls: waitingPolls.size, 'rooms.recent(total)': recent, 'rooms.members(total)': members, presence: Object.keys(presence).length, typing: typing.size, rateWindows: rateWindows.size, outbox: outbox.length, userRoom: userRoom.size },
    };
  },
  async teardown() { load.stop(); agent.destroy(); },
});
