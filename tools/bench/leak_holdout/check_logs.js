'use strict';
// Sanity-check generated size logs against manifest.json (ground truth for
// the corpus generator itself, not for any detector):
//   node check_logs.js OUTDIR [SEEDS=1,2,3]
// - every planted leak grows in every interval of every seed
// - fluctuating / per-entity fluctuating noise goes both up and down
// - bounded noise is not increasing in every interval
// - churn noise stays within 5% of its maximum
// - grow-then-flat noise is flat (within 1%) over the last three snapshots
const fs = require('fs');
const path = require('path');

const outdir = process.argv[2];
const seeds = (process.argv[3] || '1,2,3').split(',');
if (!outdir) { console.error('usage: node check_logs.js OUTDIR [SEEDS]'); process.exit(2); }
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'manifest.json'), 'utf8'));

function parseLog(file) {
  const rows = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^snap (\d+) step=(\d+) heapUsedMB=([\d.]+) \| (.*)$/.exec(line);
    if (!m) continue;
    const sizes = {};
    for (const kv of m[4].split(' ')) { const [k, v] = kv.split('='); sizes[k] = Number(v); }
    rows.push({ snap: +m[1], heapMB: +m[3], sizes });
  }
  return rows;
}

let failures = 0;
const fail = (msg) => { failures++; console.log('  FAIL ' + msg); };

for (const p of manifest) {
  console.log(`${p.prog}`);
  const growth = {};
  for (const seed of seeds) {
    const file = path.join(outdir, `${p.prog}-${seed}.log`);
    if (!fs.existsSync(file)) { fail(`missing ${file}`); continue; }
    const rows = parseLog(file);
    if (rows.length < 3) { fail(`${file}: only ${rows.length} snapshots`); continue; }
    const series = (name) => rows.map((r) => r.sizes[name]);
    for (const leak of p.leaks) {
      const v = series(leak.name);
      if (v.some((x) => x === undefined || Number.isNaN(x))) { fail(`seed ${seed} leak ${leak.name} not logged`); continue; }
      for (let i = 1; i < v.length; i++) {
        if (!(v[i] > v[i - 1])) fail(`seed ${seed} leak ${leak.name} did not grow in interval ${i - 1}->${i}: ${v.join(',')}`);
        (growth[leak.name] || (growth[leak.name] = [])).push(v[i] - v[i - 1]);
      }
    }
    for (const n of p.noise) {
      const [name, cls] = n.split(':').map((s) => s.trim());
      const v = series(name);
      if (v.some((x) => x === undefined || Number.isNaN(x))) { fail(`seed ${seed} noise ${name} not logged`); continue; }
      const d = v.slice(1).map((x, i) => x - v[i]);
      const ups = d.filter((x) => x > 0).length;
      const downs = d.filter((x) => x < 0).length;
      const max = Math.max(...v);
      const min = Math.min(...v);
      if (cls === 'fluctuating' || cls === 'per-entity fluctuating') {
        if (!(ups && downs)) fail(`seed ${seed} noise ${name} (${cls}) not up and down: ${v.join(',')}`);
      } else if (cls === 'bounded') {
        if (ups === d.length) fail(`seed ${seed} noise ${name} (bounded) grew every interval: ${v.join(',')}`);
      } else if (cls === 'churn') {
        if (max - min > 0.05 * max) fail(`seed ${seed} noise ${name} (churn) varies > 5%: ${v.join(',')}`);
      } else if (cls === 'grow-then-flat') {
        const t = v.slice(-3);
        if (Math.max(...t) - Math.min(...t) > 0.01 * Math.max(...t)) fail(`seed ${seed} noise ${name} (grow-then-flat) not flat at the end: ${v.join(',')}`);
      } else {
        fail(`unknown noise class ${cls}`);
      }
    }
    console.log(`  seed ${seed}: heapUsedMB ${rows.map((r) => r.heapMB).join(' ')}`);
  }
  for (const [name, g] of Object.entries(growth)) {
    const mean = g.reduce((a, b) => a + b, 0) / g.length;
    console.log(`  leak ${name}: growth/interval min ${Math.min(...g)} mean ${mean.toFixed(0)} max ${Math.max(...g)}`);
  }
}
console.log(failures ? `${failures} FAILURES` : 'all checks passed');
process.exit(failures ? 1 : 0);
