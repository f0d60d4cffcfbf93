'use strict';
// Presence tracker for a websocket-like gateway (long-lived "connections"
// over HTTP): clients connect to a room, heartbeat to keep the connection
// alive and collect their outbox of presence updates, change their status,
// and disconnect. Connections that stop heartbeating are timed out.
//
// Planted leak:
//   presenceChanged  each connection subscribes a listener to the presence
//                    bus; /disconnect unsubscribes it, but the timeout sweep
//                    only marks the connection closed and leaves the listener
//                    (and the connection it closes over) on the bus     - slow
const { EventEmitter } = require('events');
const { Rng, VirtualClock, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'presence';
const ROOMS = 20;
const USERS = 300;
const BEAT_TIMEOUT_MS = 30000;
const OUTBOX_CAP = 100;
const STATUSES = ['online', 'away', 'busy', 'in a call', 'presenting'];

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const connections = new Map();    // connId -> Conn
  const rosterByRoom = new Map();   // room -> Set(connId), dropped when empty
  const statusByUser = new Map();   // user -> {status, since}, for users with a live connection
  let nextConn = 1;
  const stats = { connects: 0, disconnects: 0, timeouts: 0, updates: 0 };

  function connect(user, room) {
    const conn = {
      id: 'c' + (nextConn++).toString(36), user, room, closed: false,
      outbox: [], lastBeat: clock.now(), connectedAt: clock.now(), onPresence: null,
    };
    conn.onPresence = (ev) => {
      if (conn.closed || ev.room !== conn.room || ev.user === conn.user) return;
      conn.outbox.push(ev);
      if (conn.outbox.length > OUTBOX_CAP) conn.outbox.splice(0, conn.outbox.length - OUTBOX_CAP);
    };
    bus.on('presenceChanged', conn.onPresence);
    connections.set(conn.id, conn);
    let r = rosterByRoom.get(room);
    if (!r) { r = new Set(); rosterByRoom.set(room, r); }
    r.add(conn.id);
    stats.connects++;
    setStatus(conn, 'online');
    return conn;
  }

  function detach(conn) {
    conn.closed = true;
    connections.delete(conn.id);
    const r = rosterByRoom.get(conn.room);
    if (r) { r.delete(conn.id); if (!r.size) rosterByRoom.delete(conn.room); }
    let stillOnline = false;
    for (const c of connections.values()) if (c.user === conn.user) { stillOnline = true; break; }
    if (!stillOnline) statusByUser.delete(conn.user);
  }

  function disconnect(conn) {
    bus.removeListener('presenceChanged', conn.onPresence);
    detach(conn);
    stats.disconnects++;
    bus.emit('presenceChanged', { user: conn.user, room: conn.room, status: 'offline', at: clock.now() });
  }

  function setStatus(conn, status) {
    statusByUser.set(conn.user, { status, since: clock.now() });
    stats.updates++;
    bus.emit('presenceChanged', { user: conn.user, room: conn.room, status, at: clock.now() });
  }

  clock.every(5000, (now) => {
    for (const conn of [...connections.values()]) {
      if (now - conn.lastBeat > BEAT_TIMEOUT_MS) {
        detach(conn);   // BUG: listener stays subscribed
        stats.timeouts++;
        bus.emit('presenceChanged', { user: conn.user, room: conn.room, status: 'offline', at: now });
      }
    }
  });

  const server = await serve((req, url, body) => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'POST' && parts[0] === 'connect') {
      const conn = connect(String(body.user), String(body.room));
      return { connId: conn.id, roster: rosterByRoom.get(conn.room).size };
    }
    if (parts[0] === 'roster') {
      const ids = rosterByRoom.get(parts[1]) || new Set();
      return { room: parts[1], users: [...ids].map((id) => { const c = connections.get(id); return { user: c.user, status: (statusByUser.get(c.user) || {}).status }; }) };
    }
    const conn = connections.get(parts[1]);
    if (!conn) return { status: 404, body: { error: 'no such connection' } };
    if (parts[0] === 'heartbeat') {
      conn.lastBeat = clock.now();
      const delivered = conn.outbox;
      conn.outbox = [];
      return { updates: delivered.length, last: delivered.length ? delivered[delivered.length - 1].status : null };
    }
    if (parts[0] === 'status') { setStatus(conn, String(body.status)); return { ok: true }; }
    if (parts[0] === 'disconnect') { disconnect(conn); return { ok: true }; }
    return { status: 404, body: { error: 'no route' } };
  });
  const client = makeClient(server, 12);
  const level = waveFactory(rng, 3, 16, 37);
  // the simulated client population: up to 160 sockets
  const slots = new Array(160).fill(null);

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      const si = rng.int(slots.length);
      const s = slots[si];
      if (rng.chance(0.03)) { reqs.push(client.request('GET', '/roster/room-' + rng.int(ROOMS))); continue; }
      if (!s) {
        if (!rng.chance(0.3)) continue;
        const user = 'user' + rng.int(USERS), room = 'room-' + rng.zipf(ROOMS, 0.7);
        const slot = { connId: null, endsAt: i + rng.range(40, 400), abandon: rng.chance(0.15) };
        slots[si] = slot;
        reqs.push(client.request('POST', '/connect', { user, room }).then((res) => { slot.connId = res.body.connId; }));
        continue;
      }
      if (!s.connId) continue;
      if (i >= s.endsAt) {
        slots[si] = null;
        // most clients say goodbye; some just vanish (closed laptop, lost network)
        if (!s.abandon) reqs.push(client.request('POST', '/disconnect/' + s.connId));
        continue;
      }
      if (rng.chance(0.15)) reqs.push(client.request('POST', '/status/' + s.connId, { status: rng.pick(STATUSES) }));
      else reqs.push(client.request('POST', '/heartbeat/' + s.connId).then((res) => { if (res.status === 404) slots[si] = null; }));
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 300, interval: 200, step,
    leaks: [
      ['presenceChanged', () => bus.listenerCount('presenceChanged') - connections.size],
    ],
    healthy: [
      ['presenceChanged listeners incl. live ones', () => bus.listenerCount('presenceChanged')],
      ['connections', () => connections.size],
      ['rosterByRoom', () => rosterByRoom.size],
      ['statusByUser', () => statusByUser.size],
      ['outbox', () => { let n = 0; for (const c of connections.values()) n += c.outbox.length; return n; }],
    ],
    shutdown: async () => { if (process.env.LF_DEBUG) console.error(stats); client.close(); server.close(); },
  });
});
