// json_node_bench.js -- node's side of the in-process JSON benchmark: times
// JSON.parse and JSON.stringify on FILE, ITERATIONS times (default 10), and
// prints the same JSON line as json_bench.
//   node json_node_bench.js FILE [ITERATIONS]
'use strict';
const fs = require('fs');
const file = process.argv[2];
const iters = Math.max(1, Number(process.argv[3]) || 10);
const text = fs.readFileSync(file, 'utf8');
const tp = [], ts = [];
let outBytes = 0;
for (let i = 0; i < iters; i++) {
  const t0 = process.hrtime.bigint();
  const v = JSON.parse(text);
  const t1 = process.hrtime.bigint();
  const s = JSON.stringify(v);
  const t2 = process.hrtime.bigint();
  outBytes = Buffer.byteLength(s);
  tp.push(Number(t1 - t0) / 1e6);
  ts.push(Number(t2 - t1) / 1e6);
}
tp.sort((a, b) => a - b);
ts.sort((a, b) => a - b);
const r = (x) => Math.round(x * 100) / 100;
console.log(JSON.stringify({
  parse_ms: { best: r(tp[0]), median: r(tp[iters >> 1]) },
  stringify_ms: { best: r(ts[0]), median: r(ts[iters >> 1]) },
  bytes: fs.statSync(file).size, out_bytes: outBytes }));
