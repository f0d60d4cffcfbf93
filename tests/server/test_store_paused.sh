#!/usr/bin/env bash
# test_store_paused.sh SERVER -- the store's calls never block the event
# loop: tenure-server on a real memcached (started here on a free port),
# a login, then memcached paused with SIGSTOP while requests that need the
# store (/me with the session cookie) wait on it; meanwhile every GET /hello
# answers within 10 ms (100 samples, all of them, taken while the /me
# requests are still pending); the /me requests end with 503 at the
# store's timeout; after SIGCONT the session still works.
set -euo pipefail
server=$1
command -v memcached >/dev/null || { echo "memcached not installed"; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
accepts() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" 2>/dev/null; }
SAMPLES=100
LIMIT_MS=10
TIMEOUT_MS=3000 # the store's: the samples take well under a second
mport=$(free_port)
memcached -l 127.0.0.1 -p "$mport" -U 0 -m 64 -u "$(id -un)" > "$tmp/mc.log" 2>&1 &
mpid=$!
pids+=("$mpid")
for _ in $(seq 100); do accepts "$mport" && break; sleep 0.05; done
accepts "$mport" || fail "memcached did not start"
TENURE_SESSION_SECRET=paused-secret "$server" --listen 127.0.0.1:0 \
  --store "memcached://127.0.0.1:$mport?timeout-ms=$TIMEOUT_MS" \
  > "$tmp/s.out" 2> "$tmp/s.err" &
pids+=($!)
u=
for _ in $(seq 100); do
  u=$(sed -n 's|^tenure-server listening on \(http://.*/\)$|\1|p' "$tmp/s.out")
  [ -n "$u" ] && break
  sleep 0.05
done
[ -n "$u" ] || fail "tenure-server did not start: $(cat "$tmp/s.err")"
jar=$tmp/jar
out=$(curl -sS --max-time 10 -c "$jar" -b "$jar" -H 'Content-Type: application/json' \
  -d '{"user":"ada"}' "${u}login")
[ "$out" = '{"user":"ada"}' ] || fail "login: $out"
out=$(curl -sS --max-time 10 -b "$jar" "${u}me")
[ "$out" = '{"user":"ada"}' ] || fail "/me: $out"
# Warm the /hello path (its first connection) before timing it.
curl -sS -o /dev/null --max-time 10 "${u}hello"

kill -STOP "$mpid"
waiting=()
for i in $(seq 8); do
  curl -sS -o /dev/null -w '%{http_code}\n' --max-time 30 -b "$jar" "${u}me" \
    > "$tmp/me$i" 2>&1 &
  waiting+=($!)
done
sleep 0.2 # they reach the server and wait on the store
# The samples: one curl on one keep-alive connection, so what is timed is
# the server's answer, not a process starting on a busy machine.
args=()
for _ in $(seq $SAMPLES); do args+=(-o /dev/null "${u}hello"); done
curl -sS --max-time 30 -w '%{http_code} %{time_total}\n' "${args[@]}" > "$tmp/times"
[ "$(grep -c '^200 ' "$tmp/times")" = $SAMPLES ] || fail "/hello while paused: $(sort "$tmp/times" | uniq -c | head -3)"
read -r slow max < <(awk -v lim=$((LIMIT_MS * 1000)) \
  '{ us = int($2 * 1000000); if (us > m) m = us; if (us > lim) { k++; print "/hello " NR " took " us " us" > "/dev/stderr" } }
   END { print k + 0, m + 0 }' "$tmp/times")
pending=0
for p in "${waiting[@]}"; do kill -0 "$p" 2>/dev/null && pending=$((pending + 1)); done
[ "$pending" = ${#waiting[@]} ] || fail "only $pending of ${#waiting[@]} /me requests still waited on the store after the samples"
[ "$slow" = 0 ] || fail "$slow of $SAMPLES /hello requests took more than $LIMIT_MS ms (max $max us)"
echo "ok - memcached paused: $SAMPLES GET /hello within $LIMIT_MS ms each (max $max us) while ${#waiting[@]} /me requests waited on the store"
for p in "${waiting[@]}"; do wait "$p" || true; done
for i in $(seq 8); do
  [ "$(cat "$tmp/me$i")" = 503 ] || fail "/me $i while paused: $(cat "$tmp/me$i"), expected 503"
done
grep -q "503: session store" "$tmp/s.err" || fail "no log line for the store timeout"
echo "ok - the /me requests answered 503 at the store's timeout, with a log line"
kill -CONT "$mpid"
ok=0
for _ in $(seq 50); do
  out=$(curl -sS --max-time 10 -b "$jar" "${u}me" || true)
  [ "$out" = '{"user":"ada"}' ] && { ok=1; break; }
  sleep 0.1
done
[ $ok = 1 ] || fail "/me after SIGCONT: $out"
echo "ok - memcached resumed: the session still works"
echo "store paused: all checks passed"
