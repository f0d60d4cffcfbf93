#!/usr/bin/env bash
# test_shared_sessions.sh SERVER [redis|memcached|near] -- two tenure-server
# processes on one store with the same secret share sessions: a login on
# one is seen by the other, a change made on one is seen by the next
# request on the other; with the store stopped, session routes answer 503
# (and the rest of the server still answers); with the store back,
# sessions work again; a logout on one ends the session on the other (for
# near+redis://, whose servers answer reads from in-heap copies, that is
# Redis's invalidation message reaching the other).  The store (started
# here on free ports): one real redis-server (the default), the same behind
# near+redis://, or a pool of two memcached servers.
set -euo pipefail
server=$1
kind=${2:-redis}
case $kind in
  redis|near) need=redis-server ;;
  memcached) need=memcached ;;
  *) echo "unknown store $kind"; exit 1 ;;
esac
command -v $need >/dev/null || { echo "$need not installed"; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port)
mports=("$(free_port)" "$(free_port)")
mpids=()
start_redis() {
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no > "$tmp/redis.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  for _ in $(seq 100); do
    redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  fail "redis-server did not start"
}
accepts() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" 2>/dev/null; }
start_memcached() {
  mpids=()
  for p in "${mports[@]}"; do
    memcached -l 127.0.0.1 -p "$p" -U 0 -m 64 -u "$(id -un)" > "$tmp/mc$p.log" 2>&1 &
    mpids+=($!)
    pids+=($!)
  done
  for p in "${mports[@]}"; do
    for _ in $(seq 100); do accepts "$p" && continue 2; sleep 0.05; done
    fail "memcached did not start on $p"
  done
}
start_store() {
  if [ "$kind" != memcached ]; then start_redis; else start_memcached; fi
}
stop_store() {
  if [ "$kind" != memcached ]; then
    kill "$rpid"; wait "$rpid" 2>/dev/null || true
  else
    for p in "${mpids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  fi
}
if [ "$kind" = redis ]; then
  url="redis://127.0.0.1:$rport/0"
elif [ "$kind" = near ]; then
  url="near+redis://127.0.0.1:$rport/0"
else
  url="memcached://127.0.0.1:${mports[0]},127.0.0.1:${mports[1]}"
fi
start_store
# Started in this shell (not in a $(...) subshell), so cleanup knows their
# pids; url_of waits for the URL each prints.
start_server() { # N
  TENURE_SESSION_SECRET=shared-secret "$server" --listen 127.0.0.1:0 \
    --store "$url" > "$tmp/s$1.out" 2> "$tmp/s$1.err" &
  pids+=($!)
}
url_of() { # N
  for _ in $(seq 100); do
    u=$(sed -n 's|^tenure-server listening on \(http://.*/\)$|\1|p' "$tmp/s$1.out")
    [ -n "$u" ] && { echo "$u"; return 0; }
    sleep 0.05
  done
  fail "tenure-server $1 did not start: $(cat "$tmp/s$1.err")"
}
start_server 1
start_server 2
a=$(url_of 1)
b=$(url_of 2)
jar=$tmp/jar
c() { curl -sS --max-time 10 -c "$jar" -b "$jar" "$@"; }
out=$(c -H 'Content-Type: application/json' -d '{"user":"ada"}' "${a}login")
[ "$out" = '{"user":"ada"}' ] || fail "login on A: $out"
out=$(c "${b}me")
[ "$out" = '{"user":"ada"}' ] || fail "/me on B after a login on A: $out"
echo "ok - a login on server A is seen by server B"
out=$(c -X POST "${b}visit"); [ "$out" = '{"visits":1}' ] || fail "visit on B: $out"
out=$(c -X POST "${a}visit"); [ "$out" = '{"visits":2}' ] || fail "visit on A after B: $out"
echo "ok - a change on one server is seen by the next request on the other"
for _ in 1 2 3; do
  out=$(c "${b}me"); [ "$out" = '{"user":"ada"}' ] || fail "/me on B: $out"
done
if [ "$kind" = near ]; then
  nh=$(curl -sS --max-time 10 "${b}debug/store" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nearHits"])')
  [ "$nh" -ge 1 ] || fail "B answered no /me from a near copy (nearHits $nh)"
fi
cp "$jar" "$tmp/jar_before_logout"
out=$(c -X POST "${a}logout"); [ "$out" = '{"ok":true}' ] || fail "logout on A: $out"
# B is asked with the cookie from before the logout (the jar's is cleared).
tries=0
while :; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
    -b "$tmp/jar_before_logout" "${b}me")
  [ "$code" = 401 ] && break
  tries=$((tries + 1))
  # Only near+redis:// may lag, by the invalidation message's trip.
  [ "$kind" = near ] && [ $tries -lt 100 ] || fail "/me on B after a logout on A: $code ($tries tries)"
  sleep 0.01
done
echo "ok - a logout on A ends the session on B ($tries retries)"
# Log in again for the store-stopped checks below.
out=$(c -H 'Content-Type: application/json' -d '{"user":"ada"}' "${a}login")
[ "$out" = '{"user":"ada"}' ] || fail "login on A again: $out"
stop_store
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -b "$jar" "${a}me")
[ "$code" = 503 ] || fail "/me with $kind stopped: $code, expected 503"
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "${a}hello")
[ "$code" = 200 ] || fail "/hello with $kind stopped: $code"
grep -q "503: session store" "$tmp/s1.err" || fail "no log line for the store failure"
echo "ok - $kind stopped: session routes 503 with a log line, /hello still 200"
start_store
# Until both have the store back: a memcached pool's ring heals per
# process (a server a process took out comes back after retry-s), and while
# the two rings differ a login on A can land where B does not look.
ok=0
for _ in $(seq 100); do # redis backs off to 5 s, memcached retries every 2 s
  out=$(c -H 'Content-Type: application/json' -d '{"user":"bob"}' "${a}login" || true)
  if [ "$out" = '{"user":"bob"}' ]; then
    out=$(c "${b}me" || true)
    [ "$out" = '{"user":"bob"}' ] && { ok=1; break; }
  fi
  sleep 0.1
done
[ $ok = 1 ] || fail "no shared login after $kind came back: $out"
echo "ok - $kind back: both servers reconnect and share sessions again"
echo "shared sessions ($kind): all checks passed"
