#!/usr/bin/env bash
# ir_per_request.sh -- user-space instructions per HTTP request, by callgrind: a measure
# that does not move with the machine (the wall-clock suites of http_vs_peers.sh do, by
# +-40% within minutes on a shared host).
#
# usage: tools/bench/ir_per_request.sh [tenure|nginx] [PATH ...]    (default: tenure /hello)
#
# The server runs under valgrind --tool=callgrind twice, answering N1 and then N2
# keep-alive requests on one connection (pipelined in batches of 50, each the request
# wrk sends: "GET PATH HTTP/1.1" with one Host header); start-up, the first request of
# each path (a /cached miss) and shutdown are in both runs, so
#   (Ir(N2) - Ir(N1)) / (N2 - N1)
# is what one more request costs in user space: the server, its libraries, libc.  The
# kernel's share (one read and one write per request for both servers, strace -c) is
# not counted.  nginx runs as the peers' nginx.conf.in (1 worker, `return 200` for
# /hello) with master_process off, so that callgrind follows the process that answers.
#
# env: N1=2000 N2=6000 PORT=18113 BUILD_DIR=build (tenure-server is
#      $BUILD_DIR/examples/tenure-server) TENURE_ARGS (extra tenure-server arguments)
#      PEERS_SRC=<repo>/../shared/peers/http KEEP=0 (1: keep the callgrind files, printed)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
server=${1:-tenure}
shift || true
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(/hello)
N1=${N1:-2000} N2=${N2:-6000} PORT=${PORT:-18113}
BUILD_DIR=${BUILD_DIR:-$here/build}
PEERS_SRC=${PEERS_SRC:-$here/../shared/peers/http}
die() { echo "ir_per_request: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is missing (tools/deps.sh test installs it)"
command -v callgrind_annotate >/dev/null || die "callgrind_annotate is missing"
command -v python3 >/dev/null || die "python3 is missing"
work=$(mktemp -d /tmp/tenure-ir.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

case $server in
  tenure)
    bin=$BUILD_DIR/examples/tenure-server
    [ -x "$bin" ] || die "$bin is missing: cmake --build $BUILD_DIR --target tenure-server"
    # shellcheck disable=SC2206
    cmd=("$bin" --listen "127.0.0.1:$PORT" ${TENURE_ARGS:-})
    stop_sig=INT ;;
  nginx)
    command -v nginx >/dev/null || die "nginx is missing (apt-get install nginx)"
    [ -f "$PEERS_SRC/nginx/nginx.conf.in" ] || die "no $PEERS_SRC/nginx/nginx.conf.in"
    mkdir -p "$work/nginx/html" "$work/nginx/tmp"
    sed -e "s#@PREFIX@#$work/nginx#g; s#@NOFILE@#1024#; s#@WORKER_CONNECTIONS@#512#;
            s#@PORT@#$PORT#; s#master_process on;#master_process off;#" \
      "$PEERS_SRC/nginx/nginx.conf.in" >"$work/nginx/nginx.conf"
    cmd=(nginx -p "$work/nginx" -c "$work/nginx/nginx.conf")
    stop_sig=QUIT ;;
  *) die "unknown server '$server' (tenure or nginx)" ;;
esac

cat >"$work/drive.py" <<'EOF'
import socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode()
sent = got = 0
buf = b""
while got < n:
    k = min(50, n - sent)
    if k > 0:
        s.sendall(req * k)
        sent += k
    while got < sent:
        d = s.recv(65536)
        if not d:
            sys.exit("the server closed the connection after %d answers" % got)
        buf += d
        while True:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                break
            head = buf[:i].decode("latin1").split("\r\n")
            if not head[0].startswith("HTTP/1.1 2"):
                sys.exit("unexpected answer: " + head[0])
            cl = 0
            for line in head[1:]:
                name, _, v = line.partition(":")
                if name.lower() == "content-length":
                    cl = int(v)
            if len(buf) < i + 4 + cl:
                break
            buf = buf[i + 4 + cl:]
            got += 1
EOF

# run_once N PATH: prints the run's total Ir
run_once() {
  local n=$1 path=$2 out=$work/cg-$server-$(echo "$path" | tr -c 'a-zA-Z0-9\n' _)-$1.out
  valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" >"$work/server.log" 2>&1 &
  local vp=$! i
  for i in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT$path" && break
    kill -0 "$vp" 2>/dev/null || die "the server exited: $(tail -3 "$work/server.log")"
    sleep 0.2
  done
  python3 "$work/drive.py" "$PORT" "$path" "$n" || { kill "$vp"; die "driving $path failed"; }
  kill -"$stop_sig" "$vp"
  wait "$vp" || true
  if [ "${KEEP:-0}" = 1 ]; then echo "  $out" >&2; fi
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}'
}

for path in "${paths[@]}"; do
  a=$(run_once "$N1" "$path")
  b=$(run_once "$N2" "$path")
  [ -n "$a" ] && [ -n "$b" ] || die "no callgrind totals for $path"
  echo "$server $path: $(( (b - a) / (N2 - N1) )) Ir/request (N=$N1: $a, N=$N2: $b)"
done
