'use strict';
// Ground-truth check over the stderr logs written by gen_all.sh (<outdir>/<prog>-<seed>.log):
//  * every planted leak in manifest.json is logged and grows in every interval;
//  * prints each noise collection's trajectory and flags ones that never go
//    down (monotone non-decreasing and not flat) -- hard negatives worth knowing.
// usage: node check_logs.js LOGDIR
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, 'manifest.json'), 'utf8'));
let bad = 0;
for (const entry of manifest) {
  const logs = fs.readdirSync(dir).filter((f) => f.startsWith(entry.prog + '-') && f.endsWith('.log')).sort();
  if (!logs.length) { console.log(`MISSING logs for ${entry.prog}`); bad++; continue; }
  for (const f of logs) {
    const recs = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.startsWith('SIZES ')).map((l) => JSON.parse(l.slice(6)));
    const heap = recs.map((r) => r.heapUsedMB).join(' ');
    console.log(`${f}: heapMB ${heap}`);
    for (const leak of entry.leaks) {
      const v = recs.map((r) => r.leak[leak.name]);
      const ok = v.every((x) => typeof x === 'number') && v.every((x, i) => i === 0 || x > v[i - 1]);
      if (!ok) bad++;
      console.log(`  ${ok ? 'ok  ' : 'FAIL'} leak  ${leak.name}: ${v.join(' ')}`);
    }
    for (const k of Object.keys(recs[0].leak)) {
      if (!entry.leaks.some((l) => l.name === k)) console.log(`       info  ${k}: ${recs.map((r) => r.leak[k]).join(' ')}`);
    }
    for (const k of Object.keys(recs[0].noise)) {
      const v = recs.map((r) => r.noise[k]);
      const flat = v.every((x) => x === v[0]);
      const up = v.every((x, i) => i === 0 || x >= v[i - 1]);
      const tag = flat ? 'flat' : up ? 'MONO' : 'fluc';
      console.log(`       ${tag}  ${k}: ${v.join(' ')}`);
    }
  }
}
console.log(bad ? `${bad} problem(s)` : 'all planted leaks grow in every interval');
process.exit(bad ? 1 : 0);
