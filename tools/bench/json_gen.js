// json_gen.js -- writes a realistic JSON document of about SIZE_MB (default
// 10) megabytes: an array of user records with nested objects and arrays,
// integers, floats (prices, coordinates, full-precision random values,
// exponents), strings with escapes ("quotes", \n, \t, \\, \u0001) and
// non-ASCII UTF-8 text (Latin, Greek, CJK, emoji).  Deterministic (seeded).
//   node json_gen.js OUT [SIZE_MB]
'use strict';
const fs = require('fs');
const out = process.argv[2];
const target = (Number(process.argv[3]) || 10) * 1024 * 1024;
if (!out) {
  console.error('usage: node json_gen.js OUT [SIZE_MB]');
  process.exit(2);
}

let seed = 0x12345678;
function rnd() { // mulberry32
  seed = (seed + 0x6D2B79F5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];

const first = ['Anna', 'Björn', 'Chloé', 'Dmitri', 'Élodie', 'François',
  'Günther', 'Håkon', 'Ines', 'José', 'Katarzyna', 'Łukasz', 'Mikołaj',
  'Nuño', 'Øystein', 'Zoë', '太郎', '花子', 'Αλέξανδρος', 'Σοφία', 'Иван',
  'Ольга', 'محمد', 'Priya', 'Wei'];
const last = ['Smith', 'Müller', 'García', 'Østergaard', 'Nguyễn', 'Kowalski',
  'Dubois', 'O\'Brien', '山田', '李', 'Παπαδόπουλος', 'Иванов', 'Søren',
  'Jørgensen', 'Martínez', 'Rossi', 'Van der Berg'];
const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'consectetur',
  'adipiscing', 'elit', 'sed', 'do', 'eiusmod', 'tempor', 'incididunt',
  'naïve', 'café', 'façade', 'déjà', 'vu', 'Straße', 'über', 'größer',
  '東京', '日本語', 'テキスト', '数据', 'ελληνικά', 'кириллица', '😀', '🚀',
  'emoji👍🏽', 'tab\there', 'line\nbreak', '"quoted"', 'back\\slash',
  'ctrl\u0001char', 'slash/ok', '<tag>', '&amp;'];
const tagsAll = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta',
  'theta', 'iota', 'kappa', 'lambda', 'mu', 'nu', 'xi', 'omicron', 'pi'];
const colors = ['red', 'green', 'blue', 'brown', 'amber', 'hazel'];

function sentence(n) {
  const w = [];
  for (let i = 0; i < n; i++) w.push(pick(words));
  return w.join(' ');
}

function record(id) {
  const friends = [];
  for (let i = int(6); i > 0; i--)
    friends.push({ id: int(100000), name: pick(first) + ' ' + pick(last),
      since: 2000 + int(24) });
  const tags = [];
  for (let i = 1 + int(6); i > 0; i--) tags.push(pick(tagsAll));
  return {
    id,
    guid: [8, 4, 4, 4, 12].map((n) => {
      let s = '';
      for (let i = 0; i < n; i++) s += '0123456789abcdef'[int(16)];
      return s;
    }).join('-'),
    isActive: rnd() < 0.5,
    balance: Math.round(rnd() * 1e6) / 100,
    age: 18 + int(60),
    eyeColor: pick(colors),
    name: { first: pick(first), last: pick(last) },
    email: `user${id}@example.com`,
    phone: `+1 (${100 + int(900)}) ${100 + int(900)}-${1000 + int(9000)}`,
    address: { street: `${int(9999)} ${pick(last)} Street`,
      city: pick(['Zürich', 'München', 'São Paulo', 'Kraków', '東京', 'Αθήνα']),
      zip: String(10000 + int(89999)),
      geo: { lat: Number((rnd() * 180 - 90).toFixed(6)),
        lng: Number((rnd() * 360 - 180).toFixed(6)) } },
    about: sentence(8 + int(24)),
    registered: new Date(1.3e12 + int(4e11)).toISOString(),
    tags,
    friends,
    metrics: { score: rnd(), ratio: rnd() * 1e-7, big: rnd() * 1e22,
      counts: [int(1000), int(1000), -int(1000), 0],
      history: [rnd() * 100, Math.round(rnd() * 1e4) / 1e2, 1.5e-300 * rnd()] },
    flags: { admin: false, beta: rnd() < 0.1, deleted: null },
    greeting: `Hello, ${pick(first)}! You have ${int(20)} unread messages.`,
  };
}

const parts = [];
let size = 2, id = 0;
while (size < target) {
  const s = JSON.stringify(record(id++));
  parts.push(s);
  size += Buffer.byteLength(s) + 1;
}
fs.writeFileSync(out, '[' + parts.join(',') + ']');
console.error(`${out}: ${id} records, ${size} bytes`);
