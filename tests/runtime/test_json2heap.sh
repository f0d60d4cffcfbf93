#!/bin/sh
# test_json2heap.sh JSON2HEAP TMPDIR -- json2heap prints one JSON object of
# heap statistics for a valid file, and exits 1 with the byte offset on
# stderr for a malformed one; --snapshot writes a loadable snapshot.
set -eu
bin=$1
dir=$2/json2heap
mkdir -p "$dir"
printf '{"a":[1,2.5,"x\\u00e9"],"b":{"c":null}}' > "$dir/ok.json"
"$bin" "$dir/ok.json" --max-old-space-size=64 > "$dir/out.txt"
grep -q '"used_heap_size":[0-9]' "$dir/out.txt"
[ "$(wc -l < "$dir/out.txt")" -eq 1 ]
if command -v node > /dev/null; then
  node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!(s.used_heap_size > 0)) process.exit(1);' "$dir/out.txt"
fi
printf '{"a":[1,2,}' > "$dir/bad.json"
if "$bin" "$dir/bad.json" > "$dir/bad.out" 2> "$dir/bad.err"; then
  echo "malformed JSON accepted"; exit 1
fi
grep -q 'byte 10' "$dir/bad.err"
if "$bin" "$dir/missing.json" 2> /dev/null; then
  echo "missing file accepted"; exit 1
fi
"$bin" "$dir/ok.json" --snapshot "$dir/ok.heapsnapshot" > /dev/null
if command -v node > /dev/null; then
  node -e 'const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = s.snapshot.meta.node_fields.length;
    if (s.nodes.length / f !== s.snapshot.node_count) process.exit(1);
    const names = new Set(s.strings);
    for (const n of ["Map", "Array", "x\u00e9"]) if (!names.has(n)) {
      console.error("missing", n); process.exit(1); }' "$dir/ok.heapsnapshot"
fi
echo ok
