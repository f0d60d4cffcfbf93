'use strict';
// Chat / pub-sub hub: users join rooms, publish messages and long-poll for
// new ones. Every message is also queued for a read replica in another
// region; rooms get archived now and then.
//
// Planted leaks:
//   roomClosed     each /join registers a 'roomClosed' listener on the hub
//                  (to tell that member the room was archived); /leave
//                  forgets to remove it                                  - medium
//   mirrorBacklog  replication queue to the remote replica, which accepts
//                  fewer messages per second than the hub publishes at
//                  anything but the lowest load                          - medium/fast
const { EventEmitter } = require('events');
const { Rng, VirtualClock, serve, makeClient, waveFactory, parseArgs, run, main } = require('../lib/harness');

const PROG = 'pubsub';
const ROOMS = 30;
const HISTORY = 20;
const IDLE_MS = 30000;

main(async () => {
  const args = parseArgs(PROG);
  const rng = new Rng(args.seed);
  const clock = new VirtualClock();
  const hub = new EventEmitter();
  hub.setMaxListeners(0);
  const historyByRoom = new Map();   // room -> last HISTORY messages
  const waitersByRoom = new Map();   // room -> Set of parked long-polls, dropped when empty
  const membersByRoom = new Map();   // room -> Set of users
  const onlineUsers = new Map();     // user -> last seen, swept when idle
  const mirrorBacklog = [];          // LEAK: replica drains too slowly
  let nextSeq = 1;
  let archivedRooms = 0;
  const notices = { closed: 0, replicated: 0 };

  function roomState(room) {
    let h = historyByRoom.get(room);
    if (!h) { h = []; historyByRoom.set(room, h); }
    return h;
  }

  function publish(room, user, text) {
    const msg = { seq: nextSeq++, room, user, text, at: clock.now() };
    const h = roomState(room);
    h.push(msg);
    if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
    hub.emit('roomMessage', room, msg);
    mirrorBacklog.push({ msg, enqueuedAt: clock.now(), attempts: 0 });
    return msg;
  }

  function since(room, seq) {
    const h = historyByRoom.get(room) || [];
    return h.filter((m) => m.seq > seq);
  }

  function poll(room, seq) {
    const ready = since(room, seq);
    if (ready.length) return Promise.resolve({ messages: ready });
    return new Promise((resolve) => {
      let set = waitersByRoom.get(room);
      if (!set) { set = new Set(); waitersByRoom.set(room, set); }
      const waiter = { seq, resolve: null };
      const done = (messages) => {
        clearTimeout(timer);
        hub.removeListener('roomMessage', onMessage);
        set.delete(waiter);
        if (set.size === 0 && waitersByRoom.get(room) === set) waitersByRoom.delete(room);
        resolve({ messages });
      };
      const onMessage = (r, msg) => { if (r === room && msg.seq > seq) done([msg]); };
      const timer = setTimeout(() => done([]), 4);
      waiter.resolve = done;
      set.add(waiter);
      hub.on('roomMessage', onMessage);
    });
  }

  function join(room, user) {
    onlineUsers.set(user, clock.now());
    let m = membersByRoom.get(room);
    if (!m) { m = new Set(); membersByRoom.set(room, m); }
    m.add(user);
    hub.on('roomClosed', (closed) => {
      if (closed === room) notices.closed++;   // would push a notice to `user`
    });
  }

  function leave(room, user) {
    const m = membersByRoom.get(room);
    if (m) { m.delete(user); if (!m.size) membersByRoom.delete(room); }
  }

  clock.every(1000, () => {   // the replica accepts 5 messages a second
    for (let i = 0; i < 5 && mirrorBacklog.length; i++) { mirrorBacklog.shift(); notices.replicated++; }
  });
  clock.every(10000, (now) => {
    for (const [user, seen] of onlineUsers) {
      if (now - seen > IDLE_MS) {
        onlineUsers.delete(user);
        for (const [room, m] of membersByRoom) { m.delete(user); if (!m.size) membersByRoom.delete(room); }
      }
    }
  });
  clock.every(45000, (now) => {   // archive a room; its history starts over
    const room = 'room-' + (now / 1000 % ROOMS | 0);
    historyByRoom.delete(room);
    archivedRooms++;
    hub.emit('roomClosed', room);
  });

  const server = await serve((req, url, body) => {
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'rooms' || !parts[1]) return { status: 404, body: { error: 'no route' } };
    const room = parts[1];
    const user = (body && body.user) || url.searchParams.get('user') || 'anon';
    onlineUsers.set(user, clock.now());
    if (req.method === 'POST' && parts[2] === 'messages') return { status: 201, body: publish(room, user, String(body.text)) };
    if (req.method === 'GET' && parts[2] === 'poll') return poll(room, Number(url.searchParams.get('since')) || 0);
    if (req.method === 'POST' && parts[2] === 'join') { join(room, user); return { ok: true, members: membersByRoom.get(room).size }; }
    if (req.method === 'POST' && parts[2] === 'leave') { leave(room, user); return { ok: true }; }
    if (req.method === 'GET' && parts[2] === 'members') return { members: [...(membersByRoom.get(room) || [])] };
    return { status: 404, body: { error: 'no route' } };
  });
  const client = makeClient(server, 24);
  const level = waveFactory(rng, 2, 18, 29);
  const lastSeen = new Array(ROOMS).fill(0);
  const memberships = new Array(120).fill(null);   // (room, user) pairs this client joined
  let joinCursor = 0;
  const WORDS = ['hi', 'ok', 'lunch?', 'deploying', 'LGTM', 'brb', 'ship it', 'on call', 'rollback', 'thanks', 'merged', 'flaky test'];

  async function step(i) {
    const n = level(i);
    const reqs = [];
    for (let k = 0; k < n; k++) {
      const r = rng.float();
      const ri = rng.zipf(ROOMS, 0.5);
      const room = 'room-' + ri;
      const user = 'u' + rng.int(400);
      if (r < 0.35) {
        const text = rng.pick(WORDS) + ' ' + rng.pick(WORDS) + ' #' + rng.int(1000);
        reqs.push(client.request('POST', `/rooms/${room}/messages`, { user, text }));
      } else if (r < 0.85) {
        reqs.push(client.request('GET', `/rooms/${room}/poll?since=${lastSeen[ri]}&user=${user}`).then((res) => {
          const ms = (res.body && res.body.messages) || [];
          if (ms.length) lastSeen[ri] = Math.max(lastSeen[ri], ms[ms.length - 1].seq);
        }));
      } else if (r < 0.9) {
        // join; when the client's membership ring is full, leave the oldest first
        const slot = joinCursor++ % memberships.length;
        const old = memberships[slot];
        if (old) reqs.push(client.request('POST', `/rooms/${old.room}/leave`, { user: old.user }));
        memberships[slot] = { room, user };
        reqs.push(client.request('POST', `/rooms/${room}/join`, { user }));
      } else if (r < 0.93) {
        const slot = rng.int(memberships.length);
        const m = memberships[slot];
        if (m) { memberships[slot] = null; reqs.push(client.request('POST', `/rooms/${m.room}/leave`, { user: m.user })); }
      } else {
        reqs.push(client.request('GET', `/rooms/${room}/members`));
      }
    }
    await Promise.all(reqs);
    clock.advance(250);
  }

  await run({
    prog: PROG, args, warmup: 260, interval: 190, step,
    leaks: [
      ['roomClosed', () => hub.listenerCount('roomClosed')],
      ['mirrorBacklog', () => mirrorBacklog.length],
    ],
    healthy: [
      ['roomMessage', () => hub.listenerCount('roomMessage')],
      ['historyByRoom', () => { let n = 0; for (const h of historyByRoom.values()) n += h.length; return n; }],
      ['waitersByRoom', () => waitersByRoom.size],
      ['membersByRoom', () => { let n = 0; for (const m of membersByRoom.values()) n += m.size; return n; }],
      ['onlineUsers', () => onlineUsers.size],
    ],
    shutdown: async () => { client.close(); server.close(); },
  });
  void archivedRooms;
});
