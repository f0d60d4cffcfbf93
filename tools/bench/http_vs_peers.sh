#!/usr/bin/env bash
# http_vs_peers.sh -- tenure-server (examples/tenure_server.c) against its HTTP peers
# (../shared/peers/http: nginx 1 worker, node 20 hello.js, express-session), side by side in
# ONE run, with the peers' client (wrk -t1 --latency), pin modes and CPU accounting (srv%/wrk%).
#
# usage: tools/bench/http_vs_peers.sh [suite ...]       full run (~25 min with the defaults)
#        tools/bench/http_vs_peers.sh quick [suite ...] smoke run: DUR=3s WARMUP=1s REPEAT=1
#                                                       PINS=shared GC_DUR=3s (~3 min)
# suites: hello  /hello: tenure vs nginx `return 200` vs node hello.js (hello mode)
#         10k    /buffer10k vs nginx /r10k (from memory) vs node hello.js buffer;
#                /string10k vs node hello.js buffer (target 1.5x) and node hello.js string
#         c10k   the peers' c10k.py: C10K_N idle keep-alive connections to tenure-server,
#                nginx and node (RSS per idle connection above the base; all answer 200)
#         gc     tenure-server --trace-gc under PUT/GET /users (http_users.lua, USERS_N
#                names, a steady working set) for GC_DUR after WARMUP of the same load
#                (which creates the users; its GCs are counted apart): scavenge count,
#                pause p50/p99/max, full GCs; /debug/heap's counters at the end; RSS
#                every second
#         session  the peers' session flow (session_express/flow.lua: POST /login, 10 x
#                GET /me, POST /logout per user) against tenure-server --store memory://,
#                redis://, memcached:// and node session_express/server.js with the same
#                store (one redis-server and one memcached started here, no persistence):
#                req/s, p50/p99, the FLOW counts (a 401 or other status from tenure is a
#                problem, and so is a FLOW line that does not add up), store% (CPU of
#                redis-server/memcached), tenure's /debug/store latency after each run.
#                Targets (issue 10): >= 10x express-session req/s, p99 <= 1/10 of its.
#                A tenure-server without memcached:// (unknown scheme) is skipped, noted.
#         cached GET /cached/:key on a hot key (X-Cache: hit checked with curl before each
#                run) vs GET /hello on the same tenure-server, for each of CACHED_STORES;
#                target (issue 10): /cached hit >= 80% of /hello's req/s
#         all    the six suites.  (default: hello 10k c10k gc, in that order; session and
#                cached add about 30 min to a full run, 2-3 min to a quick one)
# env:   DUR=10s WARMUP=5s CONNS="64 256" PINS="shared pinned" (also samecpu) REPEAT=3
#        C10K_N=10000 C10K_HOLD=5  GC_DUR=30s GC_CONNS=64 USERS_N=1000 PUT_PCT=50
#        SESSION_STORES="memory redis memcached"  CACHED_STORES="memory redis near"
#                         (near: near+redis://, in-heap copies in front of the same redis-server)
#        CACHED_KEY=hot  ME_PER_FLOW=10 (flow.lua's /me per login)
#        SESSION_SECRET   tenure-server --session-secret (a fixed benchmark secret by default)
#        FLOW_ROLLING=0   1: wrk runs flow.lua through tools/bench/flow_rolling.lua (both servers),
#                         which loads it unchanged but hides a Set-Cookie repeating the cookie the
#                         user holds: tenure's rolling sessions renew the cookie on GET /me, and
#                         flow.lua counts such an answer as a login (its counts then do not add up)
#        QUIET_PCT=15 QUIET_WAIT=300   before every run wait (at most QUIET_WAIT s) until
#                         processes not started here use under QUIET_PCT% of a core
#        LOAD_MAX=1.0     at the start also wait (at most QUIET_WAIT s) for the 1-min load
#                         average to drop below LOAD_MAX (the table shows it before/after)
#        OTHER_MAX=10 BENCH_TRIES=4   a run during which others used > OTHER_MAX% of a core
#                         is discarded (results_discarded.tsv) and run again, at most
#                         BENCH_TRIES tries in all (the last is kept, with its other%)
#        RESULTS_DIR      raw results + http-bench.md (default: a new /tmp/tenure-http-bench.*)
#        BUILD_DIR=build  tenure-server is $BUILD_DIR/examples/tenure-server; built with
#                         `cmake --build $BUILD_DIR --target tenure-server` when missing
#                         (REBUILD=1: always)
#        PEERS_SRC=<repo>/../shared/peers/http (read only; copied to PEERS_WORK, where
#                         `npm ci` installs session_express's packages for the session suite)
#        PEERS_WORK=/tmp/tenure-peers-http-vs
#        PORT_BASE=18200  tenure +0, nginx +1, node hello +2, node buffer +3, node string +4,
#                         express-session +5, redis-server +6, memcached +7
#        TENURE_ARGS      extra tenure-server arguments (every tenure run); TENURE_OPTIONS
#                         (heap flags) is passed through and shown in the table
#        SKIP_INSTALL=1   do not apt-get install wrk/nginx/redis-server/memcached
# tenure-server always runs with --keep-alive-timeout 65000, nginx's keepalive_timeout (65 s),
# so both keep an idle connection as long. (A connection before its first request waits
# for the headers timeout, 60 s, as node's does.)
# Output: $RESULTS_DIR/results.tsv (one row per wrk run), raw/ (wrk output), logs/ (server
# logs), c10k.txt, gc/ (trace, /debug/heap JSON, RSS samples), notes.txt (rows skipped and
# why), env.txt, http-bench.md (the markdown table, also printed on stdout).
# Exit status: 0; 1 when a check failed (tenure-server died, non-2xx or socket errors from
# tenure-server, a C10K connection unanswered, a session flow with a 401, another status or
# counts that do not add up, /cached not a hit); 2 on a setup error. Missed targets do not
# fail it.
set -u -o pipefail

say() { printf '[http_vs_peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'http_vs_peers: error: %s\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- options
cmd_env=()
for v in DUR WARMUP CONNS PINS REPEAT C10K_N C10K_HOLD GC_DUR GC_CONNS USERS_N PUT_PCT QUIET_PCT \
         QUIET_WAIT LOAD_MAX OTHER_MAX BENCH_TRIES RESULTS_DIR BUILD_DIR REBUILD PEERS_SRC PEERS_WORK \
         PORT_BASE TENURE_ARGS TENURE_OPTIONS SKIP_INSTALL SESSION_STORES CACHED_STORES CACHED_KEY \
         ME_PER_FLOW SESSION_SECRET FLOW_ROLLING; do
  [ -n "${!v+x}" ] && cmd_env+=("$v=$(printf '%q' "${!v}")")
done
CMDLINE="${cmd_env[*]:+${cmd_env[*]} }$0${*:+ $*}"

QUICK=0
SUITES=()
for arg in "$@"; do
  case $arg in
    quick) QUICK=1 ;;
    full) QUICK=0 ;;
    hello|10k|c10k|gc|session|cached) SUITES+=("$arg") ;;
    all) SUITES+=(hello 10k c10k gc session cached) ;;
    -h|--help) sed -n '2,/^set -u/{/^set -u/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (use: quick | full | hello 10k c10k gc session cached | all | --help)" ;;
  esac
done
[ ${#SUITES[@]} -gt 0 ] || SUITES=(hello 10k c10k gc)
if [ "$QUICK" = 1 ]; then
  DUR=${DUR:-3s} WARMUP=${WARMUP:-1s} REPEAT=${REPEAT:-1} PINS=${PINS:-shared} GC_DUR=${GC_DUR:-3s}
  QUIET_WAIT=${QUIET_WAIT:-10} BENCH_TRIES=${BENCH_TRIES:-1}
fi
DUR=${DUR:-10s} WARMUP=${WARMUP:-5s} CONNS=${CONNS:-"64 256"} PINS=${PINS:-"shared pinned"}
REPEAT=${REPEAT:-3} C10K_N=${C10K_N:-10000} C10K_HOLD=${C10K_HOLD:-5}
GC_DUR=${GC_DUR:-30s} GC_CONNS=${GC_CONNS:-64} USERS_N=${USERS_N:-1000} PUT_PCT=${PUT_PCT:-50}
QUIET_PCT=${QUIET_PCT:-15} QUIET_WAIT=${QUIET_WAIT:-300} LOAD_MAX=${LOAD_MAX:-1.0}
OTHER_MAX=${OTHER_MAX:-10} BENCH_TRIES=${BENCH_TRIES:-4}
PORT_BASE=${PORT_BASE:-18200} TENURE_ARGS=${TENURE_ARGS:-}
SESSION_STORES=${SESSION_STORES-"memory redis memcached"} CACHED_STORES=${CACHED_STORES-"memory redis near"}
CACHED_KEY=${CACHED_KEY:-hot} ME_PER_FLOW=${ME_PER_FLOW:-10}
SESSION_SECRET=${SESSION_SECRET:-tenure-bench-session-secret-not-for-production}
FLOW_ROLLING=${FLOW_ROLLING:-0}
case $FLOW_ROLLING in 0|1) ;; *) die "FLOW_ROLLING must be 0 or 1" ;; esac
export ME_PER_FLOW   # read by flow.lua
for n in REPEAT C10K_N GC_CONNS USERS_N PUT_PCT QUIET_PCT QUIET_WAIT OTHER_MAX BENCH_TRIES PORT_BASE ME_PER_FLOW; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer (got '${!n}')"
done
for n in DUR WARMUP GC_DUR; do
  [[ ${!n} =~ ^[0-9]+s?$ ]] || die "$n must be a number of seconds like 10s (got '${!n}')"
done
[[ $C10K_HOLD =~ ^[0-9.]+$ ]] || die "C10K_HOLD must be a number of seconds"
[[ $LOAD_MAX =~ ^[0-9.]+$ ]] || die "LOAD_MAX must be a number"
for p in $PINS; do case $p in shared|pinned|samecpu) ;; *) die "unknown pin mode '$p' (shared pinned samecpu)" ;; esac; done
for st in $SESSION_STORES; do
  case $st in memory|redis|memcached) ;; *) die "unknown store '$st' in SESSION_STORES (memory redis memcached)" ;; esac
done
for st in $CACHED_STORES; do   # near: near+redis://, on this run's redis-server
  case $st in memory|redis|memcached|near) ;; *) die "unknown store '$st' in CACHED_STORES (memory redis memcached near)" ;; esac
done
[[ $CACHED_KEY =~ ^[A-Za-z0-9_-]+$ ]] || die "CACHED_KEY must be letters, digits, - or _"
has_suite() { local s; for s in "${SUITES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
# the stores the session and cached suites need running (redis-server, memcached)
NEED_STORES=" "
has_suite session && NEED_STORES+="$SESSION_STORES "
has_suite cached && NEED_STORES+="${CACHED_STORES//near/redis} "
need_store() { case $NEED_STORES in *" $1 "*) return 0 ;; esac; return 1; }
DUR=${DUR%s}s WARMUP=${WARMUP%s}s GC_DUR=${GC_DUR%s}s

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
[ -f "$REPO/CMakeLists.txt" ] && [ -f "$REPO/examples/tenure_server.c" ] || die "cannot find the tenure repo above $SCRIPT_DIR"
abspath() { case $1 in /*) realpath -m -- "$1" ;; *) realpath -m -- "$REPO/$1" ;; esac; }
BUILD_DIR=$(abspath "${BUILD_DIR:-build}")
PEERS_SRC=$(abspath "${PEERS_SRC:-../shared/peers/http}")
PEERS_WORK=$(abspath "${PEERS_WORK:-${TMPDIR:-/tmp}/tenure-peers-http-vs}")
if [ -n "${RESULTS_DIR:-}" ]; then RESULTS_DIR=$(abspath "$RESULTS_DIR"); mkdir -p "$RESULTS_DIR" || die "cannot create $RESULTS_DIR"
else RESULTS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tenure-http-bench.XXXXXX") || die "mktemp failed"; fi
OUT=$RESULTS_DIR
[ -f "$PEERS_SRC/hello.js" ] && [ -f "$PEERS_SRC/c10k.py" ] && [ -f "$PEERS_SRC/nginx/nginx.conf.in" ] ||
  die "peers not found at $PEERS_SRC (set PEERS_SRC)"
case $PEERS_WORK/ in "$PEERS_SRC"/*) die "PEERS_WORK must not be inside PEERS_SRC (read only)" ;; esac
case $RESULTS_DIR/ in "$PEERS_SRC"/*) die "RESULTS_DIR must not be inside PEERS_SRC (read only)" ;; esac

P_TENURE=$PORT_BASE P_NGINX=$((PORT_BASE + 1)) P_NODE_HELLO=$((PORT_BASE + 2))
P_NODE_BUFFER=$((PORT_BASE + 3)) P_NODE_STRING=$((PORT_BASE + 4))
P_EXPRESS=$((PORT_BASE + 5)) P_REDIS=$((PORT_BASE + 6)) P_MEMCACHED=$((PORT_BASE + 7))
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- install (as the peers' run.sh)
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || missing+=(nginx)
  command -v taskset >/dev/null || missing+=(util-linux)
  command -v curl >/dev/null || missing+=(curl)
  need_store redis && { command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server); }
  need_store memcached && { command -v memcached >/dev/null || missing+=(memcached); }
  if ((${#missing[@]})); then
    say "apt-get install -y ${missing[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null ||
      die "apt-get install failed"
  fi
fi
for t in wrk nginx taskset python3 curl cmake; do command -v "$t" >/dev/null || die "$t not found"; done
need_store redis && { command -v redis-server >/dev/null && command -v redis-cli >/dev/null || die "redis-server/redis-cli not found"; }
need_store memcached && { command -v memcached >/dev/null || die "memcached not found"; }
HAVE_NODE=1
command -v node >/dev/null || { HAVE_NODE=0; say "warning: node not on PATH, the node rows are skipped"; }

# ---------------------------------------------------------------- build tenure-server if missing
mkdir -p "$OUT/raw" "$OUT/logs" "$OUT/gc" || die "cannot create $OUT"
: >"$OUT/notes.txt"
TS=$BUILD_DIR/examples/tenure-server
if [ ! -x "$TS" ] || [ "${REBUILD:-0}" = 1 ]; then
  [ -f "$BUILD_DIR/CMakeCache.txt" ] ||
    cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$OUT/build.log" 2>&1 ||
    { tail -n 20 "$OUT/build.log" >&2; die "cmake configure failed (log: $OUT/build.log)"; }
  say "cmake --build $BUILD_DIR --target tenure-server"
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target tenure-server >>"$OUT/build.log" 2>&1 ||
    { tail -n 20 "$OUT/build.log" >&2; die "building tenure-server failed (log: $OUT/build.log)"; }
fi
[ -x "$TS" ] || die "$TS missing after the build"
TS_BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null)
TS_MTIME=$(date -u -r "$TS" +%Y-%m-%dT%H:%M:%SZ)
TENURE_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
TENURE_COMMIT_TIME=$(git -C "$REPO" log -1 --format=%cI 2>/dev/null || echo unknown)

# ---------------------------------------------------------------- peers (on a copy)
mkdir -p "$PEERS_WORK/nginx" || die "cannot create $PEERS_WORK"
cp "$PEERS_SRC/hello.js" "$PEERS_SRC/c10k.py" "$PEERS_WORK/" && cp "$PEERS_SRC/nginx/nginx.conf.in" "$PEERS_WORK/nginx/" ||
  die "copying the peers failed"
chmod -R u+w "$PEERS_WORK"
# session suite: the peers' express-session server and flow.lua, used as they are; their
# packages installed by `npm ci` in the copy (again only when package-lock.json changed)
HAVE_EXPRESS=0
FLOW_LUA=$PEERS_WORK/session_express/flow.lua
export FLOW_LUA   # read by flow_rolling.lua
WRK_FLOW=$FLOW_LUA; [ "$FLOW_ROLLING" = 1 ] && WRK_FLOW=$SCRIPT_DIR/flow_rolling.lua
if has_suite session; then
  for f in package.json package-lock.json server.js flow.lua; do
    [ -f "$PEERS_SRC/session_express/$f" ] || die "peers' session_express/$f not found in $PEERS_SRC"
  done
  mkdir -p "$PEERS_WORK/session_express" &&
    cp -p "$PEERS_SRC"/session_express/{package.json,package-lock.json,server.js,flow.lua} "$PEERS_WORK/session_express/" &&
    chmod -R u+w "$PEERS_WORK/session_express" || die "copying session_express failed"
  if [ "$HAVE_NODE" = 1 ]; then
    HAVE_EXPRESS=1
    if [ ! -f "$PEERS_WORK/session_express/node_modules/.package-lock.json" ] ||
       [ "$PEERS_WORK/session_express/package-lock.json" -nt "$PEERS_WORK/session_express/node_modules/.package-lock.json" ]; then
      say "npm ci in $PEERS_WORK/session_express"
      (cd "$PEERS_WORK/session_express" && npm ci --no-audit --no-fund) >"$OUT/logs/npm_ci.log" 2>&1 ||
        { HAVE_EXPRESS=0; say "warning: npm ci failed (logs/npm_ci.log): the express-session rows are skipped"; }
    fi
  fi
fi

# ---------------------------------------------------------------- file descriptors (C10K)
ulimit -n "$(ulimit -Hn)" 2>/dev/null
ULIMIT_NOTE=""
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((C10K_N + 1024)) ]; then
  ulimit -Hn $((C10K_N + 1024)) 2>/dev/null && ulimit -n $((C10K_N + 1024)) 2>/dev/null
  if [ "$(ulimit -n)" -lt $((C10K_N + 64)) ]; then
    ULIMIT_NOTE="ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)) and could not be raised to $((C10K_N + 1024)): the environment forbids it, C10K is limited by it"
    say "warning: $ULIMIT_NOTE"
  fi
fi

# ---------------------------------------------------------------- process helpers (from the peers' run.sh)
STARTED=()   # PIDs started here and not stopped yet
NGINX_PREFIX=""
PROBLEMS=()
problem() { PROBLEMS+=("$*"); say "PROBLEM: $*"; }
note() {     # a fact for the table's notes (rows skipped and why), once
  grep -qxF -- "$*" "$OUT/notes.txt" 2>/dev/null && return 0
  printf '%s\n' "$*" >>"$OUT/notes.txt"; say "note: $*"
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { local i; for ((i = 0; i < ${2:-100}; i++)); do port_busy "$1" && return 0; sleep 0.1; done; return 1; }
check_free() { port_busy "$1" && die "port $1 on 127.0.0.1 is already in use (not by this script; set PORT_BASE)"; return 0; }
start_bg() {   # start_bg LOGFILE CMD... ; sets SPID (taskset execs its command: the PID is the server's)
  local logf=$1; shift
  "$@" >"$logf" 2>&1 &
  SPID=$!
  STARTED+=("$SPID")
}
stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "PID $pid did not stop in 10 s after SIGTERM, SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
  fi
  wait "$pid" 2>/dev/null
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  STARTED=("${keep[@]}")
}
cleanup() {
  local p
  for p in "${STARTED[@]}"; do stop_pid "$p"; done
  [ -n "$NGINX_PREFIX" ] && rm -rf "$NGINX_PREFIX"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime+stime ticks of PIDs and their direct children (nginx workers)
cpu_ticks() {
  local total=0 pid f
  for pid in "$@"; do
    [ -n "$pid" ] || continue
    for f in /proc/"$pid"/stat $(for c in $(pgrep -P "$pid" 2>/dev/null); do echo /proc/"$c"/stat; done); do
      [ -r "$f" ] || continue
      total=$((total + $(sed 's/.*) //' "$f" | awk '{print $12 + $13}')))
    done
  done
  echo "$total"
}
# VmRSS (kB) of PIDs and their direct children
rss_kb() {
  local total=0 pid f v
  for pid in "$@"; do
    for f in /proc/"$pid"/status $(for c in $(pgrep -P "$pid" 2>/dev/null); do echo /proc/"$c"/status; done); do
      v=$(awk '/^VmRSS:/{print $2}' "$f" 2>/dev/null); total=$((total + ${v:-0}))
    done
  done
  echo "$total"
}
proc_snapshot() {
  awk '{ sub(/^[0-9]+ \(.*\) /, ""); pid = substr(FILENAME, 7); sub(/\/stat$/, "", pid)
         if ($2 != 2 && pid != 2) print pid, $2, $12 + $13 }' /proc/[0-9]*/stat 2>/dev/null
}
foreign_ticks() {  # before_file after_file own_pid...
  local before=$1 after=$2; shift 2
  awk -v own="$* $$ $BASHPID" 'BEGIN { n = split(own, a, " "); for (i = 1; i <= n; i++) if (a[i] != "") mine[a[i]] = 1 }
       FNR == NR { t0[$1] = $3; next }
       { if (($1 in mine) || ($2 in mine)) next; d = $3 - (($1 in t0) ? t0[$1] : 0); if (d > 0) sum += d }
       END { print sum + 0 }' "$before" "$after"
}
wait_quiet() {   # processes not started here below QUIET_PCT% of a core over 1 s, at most QUIET_WAIT s
  local waited=0 f0 f1 busy
  f0=$(mktemp); f1=$(mktemp)
  while :; do
    proc_snapshot >"$f0"; sleep 1; proc_snapshot >"$f1"
    busy=$(( $(foreign_ticks "$f0" "$f1" "${STARTED[@]}") * 100 / CLK_TCK ))
    [ "$busy" -le "$QUIET_PCT" ] && break
    [ "$waited" -ge "$QUIET_WAIT" ] && { say "machine still busy (${busy}% of a core used by others), going on"; break; }
    [ "$waited" -eq 0 ] && say "machine busy (${busy}% of a core used by others), waiting up to ${QUIET_WAIT}s"
    waited=$((waited + 1))
  done
  rm -f "$f0" "$f1"
}
pin_server() { case $1 in pinned|samecpu) echo "taskset -c 0" ;; esac; }
pin_wrk() { case $1 in pinned) echo "taskset -c 1" ;; samecpu) echo "taskset -c 0" ;; esac; }

# ---------------------------------------------------------------- servers
nginx_prefix() {
  [ -n "$NGINX_PREFIX" ] && return 0
  NGINX_PREFIX=$(mktemp -d /tmp/tenure-http-nginx.XXXXXX)
  chmod 755 "$NGINX_PREFIX"
  mkdir -p "$NGINX_PREFIX/html" "$NGINX_PREFIX/tmp"
  head -c 10240 /dev/zero | tr '\0' a >"$NGINX_PREFIX/html/a10k.txt"
  chmod 644 "$NGINX_PREFIX/html/a10k.txt"
  local nofile; nofile=$(ulimit -n)
  local wc=$((nofile - 512)); [ "$wc" -gt 16384 ] && wc=16384
  sed -e "s#@PREFIX@#$NGINX_PREFIX#g; s#@NOFILE@#$nofile#; s#@WORKER_CONNECTIONS@#$wc#; s#@PORT@#$P_NGINX#" \
    "$PEERS_WORK/nginx/nginx.conf.in" >"$NGINX_PREFIX/nginx.conf"
  nginx -t -q -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" || die "nginx config test failed"
}
# PIDs of the running servers, by name
declare -A PID_OF=()
# $(pin_server ...) is deliberately unquoted: empty, or the words "taskset -c 0"
# shellcheck disable=SC2046
# try_start_server NAME PIN LOGTAG [ARGS...]: ARGS go to tenure-server (e.g. --store URL) or
# are express-session's store; returns 1 when the server exited before listening (START_LOG
# is its log, START_RC its exit status), dies when it neither listens nor exits
try_start_server() {
  local name=$1 pin=$2 tag=$3 port logf; shift 3
  logf="$OUT/logs/${name}_$tag.log"
  case $name in
    tenure)
      port=$P_TENURE; check_free "$port"
      # shellcheck disable=SC2086   # TENURE_ARGS: words
      start_bg "$logf" $(pin_server "$pin") "$TS" --listen "127.0.0.1:$port" \
        --keep-alive-timeout 65000 $TENURE_ARGS "$@" ;;
    nginx)
      port=$P_NGINX; check_free "$port"; nginx_prefix
      start_bg "$logf" $(pin_server "$pin") nginx -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/nginx.conf" ;;
    node-hello|node-buffer|node-string)
      case $name in node-hello) port=$P_NODE_HELLO ;; node-buffer) port=$P_NODE_BUFFER ;; *) port=$P_NODE_STRING ;; esac
      check_free "$port"
      start_bg "$logf" $(pin_server "$pin") node "$PEERS_WORK/hello.js" "${name#node-}" "$port" ;;
    express-session)   # node session_express/server.js STORE PORT, on this run's redis/memcached
      port=$P_EXPRESS; check_free "$port"
      start_bg "$logf" env REDIS_PORT="$P_REDIS" MEMCACHED_PORT="$P_MEMCACHED" $(pin_server "$pin") \
        node "$PEERS_WORK/session_express/server.js" "$@" "$port" ;;
  esac
  START_LOG=$logf START_RC=0
  local i
  for ((i = 0; i < 100; i++)); do
    port_busy "$port" && { PID_OF[$name]=$SPID; return 0; }
    kill -0 "$SPID" 2>/dev/null || { wait "$SPID" 2>/dev/null; START_RC=$?; stop_pid "$SPID"; return 1; }
    sleep 0.1
  done
  die "$name did not start on port $port in 10 s (log: $logf)"
}
start_server() {   # start_server NAME PIN LOGTAG [ARGS...]: as try_start_server, dies when it exits
  try_start_server "$@" || die "$1 exited (status $START_RC) before listening (log: $START_LOG): $(tail -n 3 "$START_LOG" | tr '\n' ' ')"
}
stop_server() { [ -n "${PID_OF[$1]:-}" ] && stop_pid "${PID_OF[$1]}"; unset "PID_OF[$1]"; }

# ---------------------------------------------------------------- one wrk run
# bench SUITE SERVER MODE PIN CONNS REP URL [extra wrk args]: one row to results.tsv; runs with
# other% > OTHER_MAX go to results_discarded.tsv and are run again (BENCH_TRIES tries in all).
# BENCH_STORE_PID (redis-server/memcached): its CPU during the run is the row's store%;
# BENCH_DEBUG_URL (tenure's /debug/store): read before and after, the row gets the store's
# operation latency p50/p99 at the end and the hits/misses/sets/deletes/errors of the run.
bench() {
  local try row
  for ((try = 1; try <= BENCH_TRIES; try++)); do
    row=$(bench_once "$@")
    if [ "$try" -lt "$BENCH_TRIES" ] && [ "$(printf '%s' "$row" | cut -f14)" -gt "$OTHER_MAX" ]; then
      printf '%s\n' "$row" >>"$OUT/results_discarded.tsv"
      say "discarded (other% $(printf '%s' "$row" | cut -f14) > $OTHER_MAX): $(printf '%s' "$row" | cut -f1-6 | tr '\t' ' ')"
      continue
    fi
    printf '%s\n' "$row" >>"$OUT/results.tsv"
    printf '%s\n' "$row" | awk -F'\t' '{printf "  %-7s %-12s %-10s %-7s c%-4s r%s  %8.0f req/s  p50 %.2f p99 %.2f ms  err %s  srv%% %s wrk%% %s other%% %s", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$14
      if ($18 != "-") printf "  store%% %s", $18
      if ($19 != "-") printf "\n          FLOW login/me/logout %s/%s/%s 401 %s other %s flows/s %s%s", $19,$20,$21,$22,$23,$24, ($25 == "1" ? "" : "  DOES NOT ADD UP")
      if ($26 != "-") printf "  store op p50/p99 %s/%s ms, hits %s misses %s sets %s deletes %s errors %s", $26,$27,$28,$29,$30,$31,$32
      printf "\n"}' >&2
    return 0
  done
}
bench_once() {
  local suite=$1 server=$2 mode=$3 pin=$4 c=$5 rep=$6 url=$7; shift 7
  local pid=${PID_OF[$server]} kpid=${BENCH_STORE_PID:-} dbg=${BENCH_DEBUG_URL:-}
  local raw="$OUT/raw/${suite}_${server}_${mode}_${pin}_c${c}_r${rep}.txt"
  local tf s0 s1 k0=0 k1=0 f0 f1 t0 t1 d0="" d1="" me=$BASHPID
  tf=$(mktemp); f0=$(mktemp); f1=$(mktemp)
  wait_quiet
  [ -n "$dbg" ] && d0=$(curl -fsS --max-time 5 "$dbg" 2>/dev/null)
  proc_snapshot >"$f0"
  s0=$(cpu_ticks "$pid"); [ -n "$kpid" ] && k0=$(cpu_ticks "$kpid"); t0=$(date +%s%N)
  TIMEFORMAT='%U %S'
  { time $(pin_wrk "$pin") wrk -t1 -c"$c" -d"$DUR" --latency "$@" "$url" >"$raw" 2>&1; } 2>"$tf"
  t1=$(date +%s%N); s1=$(cpu_ticks "$pid"); [ -n "$kpid" ] && k1=$(cpu_ticks "$kpid"); proc_snapshot >"$f1"
  [ -n "$dbg" ] && d1=$(curl -fsS --max-time 5 "$dbg" 2>/dev/null)
  local wall; wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
  local wrk_cpu; wrk_cpu=$(awk -v d="$wall" '{printf "%.0f", 100*($1+$2)/d}' "$tf")
  local srv_cpu; srv_cpu=$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v d="$wall" 'BEGIN{printf "%.0f", 100*t/hz/d}')
  local st_cpu=-; [ -n "$kpid" ] && st_cpu=$(awk -v t=$((k1 - k0)) -v hz="$CLK_TCK" -v d="$wall" 'BEGIN{printf "%.0f", 100*t/hz/d}')
  { [ -n "$dbg" ] && [ -z "$d1" ]; } && printf 'GET %s failed after the run\n' "$dbg" >>"$raw"
  local oth_cpu; oth_cpu=$(awk -v t="$(foreign_ticks "$f0" "$f1" "${STARTED[@]}" "$me")" -v hz="$CLK_TCK" -v d="$wall" 'BEGIN{printf "%.0f", 100*t/hz/d}')
  local alive=1; kill -0 "$pid" 2>/dev/null || alive=0
  local rss; rss=$(rss_kb "$pid")
  rm -f "$tf" "$f0" "$f1"
  awk -v suite="$suite" -v server="$server" -v mode="$mode" -v pin="$pin" -v c="$c" -v rep="$rep" \
      -v scpu="$srv_cpu" -v wcpu="$wrk_cpu" -v ocpu="$oth_cpu" -v rss="$rss" -v alive="$alive" \
      -v kcpu="$st_cpu" -v me="$ME_PER_FLOW" -v d0="$(debug_store_fields "$d0")" -v d1="$(debug_store_fields "$d1")" '
    function ms(v,   n) { n = v + 0
      if (v ~ /us$/) return n / 1000; if (v ~ /ms$/) return n; if (v ~ /m$/) return n * 60000; if (v ~ /s$/) return n * 1000; return n }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); serr = $4 + $6 + $8 + $10 }
    /^FLOW / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] + 0 } }
    END {
      # errors: non-2xx (401s included) or, when more, n401 + other of the FLOW line; + socket errors
      err = non2xx + 0; fe = f["n401"] + f["other"]; if (fe > err) err = fe; err += serr + 0
      # the FLOW line (flow.lua) adds up when no answer was counted twice, at least one user
      # logged out, every logout followed ME_PER_FLOW good /me answers, no login had more, and
      # the users still in flight at the end are at most about two per connection
      if ("ok_login" in f) {
        fl = f["ok_login"]; fm = f["ok_me"]; fo = f["ok_logout"]
        fok = (fl <= f["logins_sent"] && fm <= f["me_sent"] && fo <= f["logouts_sent"] && fo >= 1 &&
               fm >= me * fo && fm <= me * fl && fl - fo <= 2 * c + 2) ? 1 : 0
        flow = sprintf("%d\t%d\t%d\t%d\t%d\t%.1f\t%d", fl, fm, fo, f["n401"], f["other"], f["flows_per_s"], fok)
      } else flow = "-\t-\t-\t-\t-\t-\t-"
      # /debug/store: p50 p99 at the end; hits misses sets deletes errors during the run
      n0 = split(d0, a, " "); n1 = split(d1, b, " ")
      if (n0 == 7 && n1 == 7 && a[1] != "-" && b[1] != "-")
        st = sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%d", b[6], b[7], b[1] - a[1], b[2] - a[2], b[3] - a[3], b[4] - a[4], b[5] - a[5])
      else st = "-\t-\t-\t-\t-\t-\t-"
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.3f\t%.3f\t%d\t%s\t%s\t%.0f\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", suite, server, mode, pin, c, rep,
        rps, p50, p99, err, scpu, wcpu, (scpu > 0 ? rps * 100 / scpu : 0), ocpu, rss, alive, non2xx + 0, kcpu, flow, st
    }' "$raw"
}
warm() { wrk -t1 -c64 -d"$WARMUP" "$@" >/dev/null 2>&1; }
# /debug/store's JSON -> "hits misses sets deletes errors p50Ms p99Ms" ("-" when absent)
debug_store_fields() {
  local k v out=()
  for k in hits misses sets deletes errors p50Ms p99Ms; do
    v=$(printf '%s' "$1" | sed -n "s/.*\"$k\":\([0-9.]*\).*/\1/p")
    out+=("${v:--}")
  done
  echo "${out[*]}"
}
check_tenure() {   # after a tenure run: alive, no errors
  local where=$1
  if [ -n "${PID_OF[tenure]:-}" ] && ! kill -0 "${PID_OF[tenure]}" 2>/dev/null; then
    wait "${PID_OF[tenure]}" 2>/dev/null; local rc=$?
    problem "tenure-server died during $where (exit status $rc; log: $(ls -t "$OUT"/logs/tenure_* | head -1))"
    unset "PID_OF[tenure]"; return 1
  fi
  local last; last=$(tail -n 1 "$OUT/results.tsv")
  if [ "$(printf '%s' "$last" | cut -f2)" = tenure ] && [ "$(printf '%s' "$last" | cut -f10)" != 0 ]; then
    local flow=""; [ "$(printf '%s' "$last" | cut -f22)" != - ] &&
      flow="; flow.lua: $(printf '%s' "$last" | cut -f22) 401s, $(printf '%s' "$last" | cut -f23) other statuses"
    problem "tenure-server: $(printf '%s' "$last" | cut -f10) errors (non-2xx $(printf '%s' "$last" | cut -f17) + socket errors$flow) in $where: $(last_raw)"
  fi
  return 0
}

# ---------------------------------------------------------------- suites
# throughput: for each repeat and pin mode, every server is started (pinned as asked), then each
# case is warmed and measured at each CONNS, servers interleaved case by case
# SUITE:SERVER:MODE:PATH (read through ${!v} in suite_wrk)
# shellcheck disable=SC2034
CASES_hello="hello:tenure:hello:/hello hello:nginx:hello:/hello hello:node-hello:hello:/"
# shellcheck disable=SC2034
CASES_10k="10k:tenure:buffer10k:/buffer10k 10k:nginx:mem10k:/r10k 10k:node-buffer:buffer10k:/ 10k:tenure:string10k:/string10k 10k:node-string:string10k:/"
port_of() { case $1 in tenure) echo "$P_TENURE" ;; nginx) echo "$P_NGINX" ;; node-hello) echo "$P_NODE_HELLO" ;;
  node-buffer) echo "$P_NODE_BUFFER" ;; node-string) echo "$P_NODE_STRING" ;; express-session) echo "$P_EXPRESS" ;; esac; }
suite_wrk() {
  local suites=("$@") rep pin s cs server mode path c servers v x suite
  cs=""
  for s in "${suites[@]}"; do v="CASES_$s"; cs+=" ${!v}"; done
  [ "$HAVE_NODE" = 1 ] || cs=$(printf '%s\n' $cs | grep -v ':node-' | tr '\n' ' ')
  servers=$(printf '%s\n' $cs | cut -d: -f2 | awk '!seen[$0]++' | tr '\n' ' ')
  for rep in $(seq 1 "$REPEAT"); do
    for pin in $PINS; do
      say "throughput (${suites[*]}): repeat $rep/$REPEAT, pin $pin: starting $servers"
      for server in $servers; do start_server "$server" "$pin" "r${rep}_$pin"; done
      for x in $cs; do
        IFS=: read -r suite server mode path <<<"$x"
        [ -n "${PID_OF[$server]:-}" ] || continue
        local url; url="http://127.0.0.1:$(port_of "$server")$path"
        warm "$url"
        for c in $CONNS; do
          bench "$suite" "$server" "$mode" "$pin" "$c" "$rep" "$url"
          [ "$server" = tenure ] && check_tenure "$mode $pin c$c repeat $rep"
        done
      done
      for server in $servers; do stop_server "$server"; done
    done
  done
}

suite_c10k() {
  local f="$OUT/c10k.txt" pid
  for server in tenure nginx node-buffer; do
    [ "$server" = node-buffer ] && [ "$HAVE_NODE" = 0 ] && continue
    start_server "$server" shared c10k
    pid=${PID_OF[$server]}; local path=/ label
    case $server in
      tenure) path=/buffer10k label=tenure-server-buffer10k ;;
      nginx) pid=$(pgrep -P "$pid" | head -1); path=/r10k label="nginx(1w)-mem10k" ;;
      node-buffer) label=hello.js-buffer10k ;;
    esac
    sleep 0.5
    wait_quiet
    say "C10K: $label, $C10K_N connections held ${C10K_HOLD}s"
    python3 "$PEERS_WORK/c10k.py" --port "$(port_of "$server")" --pid "$pid" --n "$C10K_N" --hold "$C10K_HOLD" \
      --path "$path" --label "$label" >>"$f" 2>"$OUT/logs/c10k_$server.err"
    tail -n 1 "$f" | grep -q "label=$label " || { problem "c10k.py failed for $label: $(tail -n 3 "$OUT/logs/c10k_$server.err" | tr '\n' ' ')"; }
    grep "label=$label " "$f" | sed 's/^/  /' >&2
    if [ "$server" = tenure ]; then
      grep "label=$label " "$f" | grep -q 'all_ok=1' || problem "tenure-server C10K: not all $C10K_N connections connected and answered 200 (c10k.txt, logs/c10k_tenure.err)"
      curl -fsS -o /dev/null "http://127.0.0.1:$P_TENURE/hello" || problem "tenure-server does not answer /hello after C10K"
      check_tenure "C10K"
    fi
    stop_server "$server"
  done
}

suite_gc() {
  local d="$OUT/gc" pid
  say "GC profile: tenure-server --trace-gc, PUT/GET /users (USERS_N=$USERS_N, PUT_PCT=$PUT_PCT%), wrk -t1 -c$GC_CONNS -d$GC_DUR"
  check_free "$P_TENURE"
  # shellcheck disable=SC2086
  start_bg "$d/tenure.log" "$TS" --listen "127.0.0.1:$P_TENURE" --keep-alive-timeout 65000 --trace-gc $TENURE_ARGS
  pid=$SPID; PID_OF[tenure]=$pid
  wait_port "$P_TENURE" || die "tenure-server did not start (log: $d/tenure.log)"
  curl -fsS "http://127.0.0.1:$P_TENURE/debug/heap" >"$d/heap_before.json" || problem "GET /debug/heap failed before the GC run"
  wait_quiet
  local ms0; ms0=$(grep -c ' ms: ' "$d/tenure.log")
  # Warm-up: the same load for WARMUP, so that the run measures a steady
  # working set (the users are created here); its GCs are counted apart.
  USERS_N=$USERS_N PUT_PCT=$PUT_PCT wrk -t1 -c"$GC_CONNS" -d"$WARMUP" -s "$SCRIPT_DIR/http_users.lua" \
    "http://127.0.0.1:$P_TENURE/" >"$d/wrk_warmup.txt" 2>&1
  local ms1; ms1=$(grep -c ' ms: ' "$d/tenure.log")
  # RSS every second, in the background, while wrk runs
  ( while kill -0 "$pid" 2>/dev/null; do printf '%s\t%s\n' "$(date +%s.%N | cut -c1-14)" "$(rss_kb "$pid")"; sleep 1; done ) >"$d/rss.tsv" &
  local sampler=$!
  STARTED+=("$sampler")
  local s0 s1 t0 t1; s0=$(cpu_ticks "$pid"); t0=$(date +%s%N)
  USERS_N=$USERS_N PUT_PCT=$PUT_PCT wrk -t1 -c"$GC_CONNS" -d"$GC_DUR" --latency -s "$SCRIPT_DIR/http_users.lua" \
    "http://127.0.0.1:$P_TENURE/" >"$d/wrk.txt" 2>&1
  t1=$(date +%s%N); s1=$(cpu_ticks "$pid")
  awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN{printf "srv_cpu_pct=%.0f wall_s=%.2f\n", 100*t/hz/((b-a)/1e9), (b-a)/1e9}' >"$d/cpu.txt"
  curl -fsS "http://127.0.0.1:$P_TENURE/debug/heap" >"$d/heap_after.json" || problem "GET /debug/heap failed after the GC run"
  stop_pid "$sampler"
  printf 'trace_lines_before_load=%s trace_lines_before_run=%s\n' "$ms0" "$ms1" >>"$d/cpu.txt"
  if ! kill -0 "$pid" 2>/dev/null; then problem "tenure-server died during the GC profile (log: $d/tenure.log)"; fi
  grep -q '^USERS ' "$d/wrk.txt" || problem "the GC profile's wrk run printed no USERS line (gc/wrk.txt)"
  local bad; bad=$(sed -n 's/^USERS .* bad=\([0-9]*\).*/\1/p' "$d/wrk.txt")
  [ "${bad:-0}" = 0 ] || problem "tenure-server answered $bad PUT/GET /users requests with a status other than 200/201/404 (gc/wrk.txt)"
  grep -q 'Socket errors' "$d/wrk.txt" && problem "socket errors in the GC profile: $(grep 'Socket errors' "$d/wrk.txt")"
  stop_pid "$pid"; unset "PID_OF[tenure]"
  grep ' ms: ' "$d/tenure.log" >"$d/trace.txt"
  grep -v ' ms: ' "$d/tenure.log" >"$d/tenure_other.log"
  say "  $(tail -n +$((ms1 + 1)) "$d/trace.txt" | grep -c Scavenge) scavenges, $(tail -n +$((ms1 + 1)) "$d/trace.txt" | grep -c Mark-) full GCs in the run ($(head -n "$ms1" "$d/trace.txt" | grep -c Mark-) before it: start-up and warm-up)"
}

# ---------------------------------------------------------------- stores (session, cached)
# one redis-server and one memcached per (repeat, pin mode), on PORT_BASE+6 / +7, no persistence,
# pinned as the servers are; tenure-server and express-session of that block use the same ones
declare -A STORE_PID=()
start_stores() {   # PIN TAG STORE...: starts redis-server / memcached among STORE..., dies if one does not listen
  local pin=$1 tag=$2 st; shift 2
  for st in "$@"; do
    [ "$st" = near ] && st=redis   # near+redis:// runs on redis-server
    [ -n "${STORE_PID[$st]:-}" ] && continue
    case $st in
      redis)
        check_free "$P_REDIS"
        # shellcheck disable=SC2046
        start_bg "$OUT/logs/redis_$tag.log" $(pin_server "$pin") redis-server --port "$P_REDIS" --bind 127.0.0.1 \
          --save '' --appendonly no --daemonize no --protected-mode yes --dir "$OUT/logs"
        STORE_PID[redis]=$SPID
        wait_port "$P_REDIS" || die "redis-server did not start on $P_REDIS (log: $OUT/logs/redis_$tag.log)" ;;
      memcached)
        check_free "$P_MEMCACHED"
        local mu=(); [ "$(id -u)" = 0 ] && mu=(-u root)
        # shellcheck disable=SC2046
        start_bg "$OUT/logs/memcached_$tag.log" $(pin_server "$pin") memcached -l 127.0.0.1 -p "$P_MEMCACHED" -U 0 "${mu[@]}" -m 256
        STORE_PID[memcached]=$SPID
        wait_port "$P_MEMCACHED" || die "memcached did not start on $P_MEMCACHED (log: $OUT/logs/memcached_$tag.log)" ;;
    esac
  done
}
stop_stores() { local st; for st in "${!STORE_PID[@]}"; do stop_pid "${STORE_PID[$st]}"; unset "STORE_PID[$st]"; done; }
flush_store() {    # as the peers' run.sh: an empty store before each session run
  case $1 in
    redis) redis-cli -p "$P_REDIS" FLUSHALL >/dev/null 2>&1 || say "warning: redis FLUSHALL failed" ;;
    memcached) { exec 3<>"/dev/tcp/127.0.0.1/$P_MEMCACHED" && printf 'flush_all\r\n' >&3 && read -r -t 2 _ <&3; exec 3>&-; } 2>/dev/null ||
      say "warning: memcached flush_all failed" ;;
  esac
}
store_url() { case $1 in memory) echo "memory://" ;; redis) echo "redis://127.0.0.1:$P_REDIS" ;; near) echo "near+redis://127.0.0.1:$P_REDIS" ;; memcached) echo "memcached://127.0.0.1:$P_MEMCACHED" ;; esac; }
# tenure-server on STORE; returns 1 when it exits at once: unknown scheme (memcached:// not in
# this build) is a note, anything else a problem; either way that store's tenure rows are skipped
start_tenure_store() {   # PIN TAG STORE SUITE
  local pin=$1 tag=$2 st=$3 suite=$4 url; url=$(store_url "$st")
  try_start_server tenure "$pin" "$tag" --store "$url" --session-secret "$SESSION_SECRET" && return 0
  if grep -q 'unknown store scheme' "$START_LOG"; then
    note "$suite: tenure-server --store $url exits at once ($(grep -m1 'unknown store scheme' "$START_LOG" | cut -c1-160)): $TS has no ${st}:// yet, its tenure rows are skipped"
  else
    problem "$suite: tenure-server --store $url exited (status $START_RC) before listening: $(tail -n 2 "$START_LOG" | tr '\n' ' ') (log: $START_LOG)"
  fi
  return 1
}

# the flow once with curl (POST /login, GET /me, POST /logout, GET /me again): PROBE_MSG says
# what failed; PROBE_ME_COOKIE=1 when GET /me answers with a Set-Cookie: sid=... (which flow.lua
# counts as a login answer: its counts then do not add up)
PROBE_MSG="" PROBE_ME_COOKIE=0 TENURE_ME_COOKIE=0
probe_session() {   # PORT
  local base="http://127.0.0.1:$1" h c st
  h=$(mktemp); PROBE_MSG="" PROBE_ME_COOKIE=0
  st=$(curl -sS --max-time 5 -o /dev/null -D "$h" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"user":"probe"}' "$base/login" 2>&1)
  c=$(sed -n 's/^[Ss][Ee][Tt]-[Cc][Oo][Oo][Kk][Ii][Ee]: *\(sid=[^;]*\).*/\1/p' "$h" | tr -d '\r' | head -1)
  if [ "$st" != 200 ] || [ -z "$c" ]; then PROBE_MSG="POST /login answered $st $([ -n "$c" ] && echo with || echo without) a sid cookie"; rm -f "$h"; return 1; fi
  st=$(curl -sS --max-time 5 -o /dev/null -D "$h" -w '%{http_code}' -H "Cookie: $c" "$base/me" 2>&1)
  grep -qi '^set-cookie: *sid=[^;]' "$h" && PROBE_ME_COOKIE=1
  [ "$st" = 200 ] || { PROBE_MSG="GET /me with the login's cookie answered $st"; rm -f "$h"; return 1; }
  st=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST -H "Cookie: $c" "$base/logout" 2>&1)
  [ "$st" = 200 ] || { PROBE_MSG="POST /logout answered $st"; rm -f "$h"; return 1; }
  st=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -H "Cookie: $c" "$base/me" 2>&1)
  [ "$st" = 401 ] || { PROBE_MSG="GET /me after the logout answered $st, not 401"; rm -f "$h"; return 1; }
  rm -f "$h"; return 0
}
last_raw() { tail -n 1 "$OUT/results.tsv" | awk -F'\t' '{printf "raw/%s_%s_%s_%s_c%s_r%s.txt", $1,$2,$3,$4,$5,$6}'; }
check_flow() {   # after a session run (any server): a tenure-server 401/other/counts off is a problem
  local where=$1 last server n401 oth fok line
  last=$(tail -n 1 "$OUT/results.tsv")
  IFS=$'\t' read -r server n401 oth fok <<<"$(printf '%s' "$last" | cut -f2,22,23,25)"
  line=$(grep -m1 '^FLOW ' "$OUT/$(last_raw)" 2>/dev/null)
  if [ -z "$line" ]; then
    [ "$server" = tenure ] && problem "no FLOW line from flow.lua in $where ($(last_raw))"
    return 0
  fi
  local why=""
  [ "$server" = tenure ] && [ "$TENURE_ME_COOKIE" = 1 ] && [ "$FLOW_ROLLING" = 0 ] &&
    why="; tenure-server answers GET /me with Set-Cookie: sid=... (its rolling expiry renews the cookie), and flow.lua counts every 200 with a user and a sid cookie as a login answer, so the run was not the flow"
  if [ "$server" = tenure ]; then   # (its 401s and other statuses are errors: check_tenure)
    [ "$fok" = 1 ] || problem "the FLOW counts do not add up for tenure-server in $where: $line$why"
  elif [ "$n401" != 0 ] || [ "$oth" != 0 ] || [ "$fok" != 1 ]; then
    note "session: $server in $where: $line$([ "$fok" = 1 ] || echo ' (counts do not add up)')"
  fi
  return 0
}

suite_session() {
  local rep pin st c server url tag servers
  local stores=(); for st in $SESSION_STORES; do stores+=("$st"); done
  [ ${#stores[@]} -gt 0 ] || { say "session: SESSION_STORES is empty"; return 0; }
  check_free "$P_TENURE"; [ "$HAVE_EXPRESS" = 1 ] && check_free "$P_EXPRESS"
  [ "$HAVE_EXPRESS" = 1 ] || note "session: no express-session rows (node or its packages missing: logs/npm_ci.log)"
  TENURE_ME_COOKIE=0
  for rep in $(seq 1 "$REPEAT"); do
    for pin in $PINS; do
      say "session (flow.lua): repeat $rep/$REPEAT, pin $pin: stores ${stores[*]}"
      start_stores "$pin" "session_r${rep}_$pin" "${stores[@]}"
      for st in "${stores[@]}"; do
        tag="session_${st}_r${rep}_$pin" servers=""
        flush_store "$st"
        if start_tenure_store "$pin" "$tag" "$st" session; then
          if probe_session "$P_TENURE"; then servers+=" tenure"
          else problem "session: tenure-server --store $(store_url "$st"): the flow by curl failed: $PROBE_MSG (log: $START_LOG)"; stop_server tenure; fi
          if [ "$PROBE_ME_COOKIE" = 1 ]; then
            TENURE_ME_COOKIE=1
            if [ "$FLOW_ROLLING" = 1 ]; then
              note "session: tenure-server answers GET /me with Set-Cookie: sid=... (rolling expiry: the same id, renewed); FLOW_ROLLING=1: wrk runs flow.lua through tools/bench/flow_rolling.lua, which hides that repeated cookie from it (raw/: ROLLING renewed=N)"
            else
              note "session: tenure-server answers GET /me with Set-Cookie: sid=... (rolling expiry: the same id, renewed); flow.lua takes such an answer for a login's, so its counts cannot add up for tenure-server (FLOW_ROLLING=1 runs it through tools/bench/flow_rolling.lua)"
            fi
          fi
        fi
        if [ "$HAVE_EXPRESS" = 1 ]; then
          if try_start_server express-session "$pin" "$tag" "$st"; then
            if probe_session "$P_EXPRESS"; then servers+=" express-session"
            else note "session: express-session $st: the flow by curl failed: $PROBE_MSG, its rows are skipped"; stop_server express-session; fi
          else note "session: express-session $st exited (status $START_RC) before listening: $(tail -n 2 "$START_LOG" | tr '\n' ' ')"; fi
        fi
        BENCH_STORE_PID=${STORE_PID[$st]:-}
        for server in $servers; do
          url="http://127.0.0.1:$(port_of "$server")/"
          BENCH_DEBUG_URL=""; [ "$server" = tenure ] && BENCH_DEBUG_URL="${url}debug/store"
          flush_store "$st"
          warm -s "$WRK_FLOW" "$url"
          for c in $CONNS; do
            flush_store "$st"
            bench session "$server" "$st" "$pin" "$c" "$rep" "$url" -s "$WRK_FLOW"
            check_flow "session $st $pin c$c repeat $rep"
            [ "$server" = tenure ] && { check_tenure "session $st $pin c$c repeat $rep" || break; }
          done
        done
        BENCH_STORE_PID="" BENCH_DEBUG_URL=""
        stop_server tenure; stop_server express-session
      done
      stop_stores
    done
  done
}

# /cached/:key answers X-Cache: hit? (one GET warms a cold key: the computation takes 20 ms)
cached_hit() {   # URL
  local x i
  for i in 1 2; do
    x=$(curl -sS --max-time 5 -o /dev/null -D - "$1" 2>/dev/null | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ache: *//p')
    [ "$x" = hit ] && return 0
  done
  CACHED_SAW=${x:-no X-Cache header}
  return 1
}
suite_cached() {
  local rep pin st c tag hello cached
  local stores=(); for st in $CACHED_STORES; do stores+=("$st"); done
  [ ${#stores[@]} -gt 0 ] || { say "cached: CACHED_STORES is empty"; return 0; }
  check_free "$P_TENURE"
  hello="http://127.0.0.1:$P_TENURE/hello" cached="http://127.0.0.1:$P_TENURE/cached/$CACHED_KEY"
  for rep in $(seq 1 "$REPEAT"); do
    for pin in $PINS; do
      say "cached (/cached/$CACHED_KEY vs /hello): repeat $rep/$REPEAT, pin $pin: stores ${stores[*]}"
      start_stores "$pin" "cached_r${rep}_$pin" "${stores[@]}"
      for st in "${stores[@]}"; do
        tag="cached_${st}_r${rep}_$pin"
        start_tenure_store "$pin" "$tag" "$st" cached || continue
        if ! cached_hit "$cached"; then
          problem "cached: tenure-server --store $(store_url "$st"): GET /cached/$CACHED_KEY twice, the second answered X-Cache: $CACHED_SAW, not hit"
          stop_server tenure; continue
        fi
        BENCH_STORE_PID=${STORE_PID[${st/near/redis}]:-}
        warm "$hello"; warm "$cached"
        for c in $CONNS; do   # the pair side by side at each conns
          BENCH_DEBUG_URL=""
          bench cached tenure "hello@$st" "$pin" "$c" "$rep" "$hello"
          check_tenure "cached: /hello ($st) $pin c$c repeat $rep" || break
          if ! cached_hit "$cached"; then   # the key's TTL is 60 s: warm it again if it expired
            problem "cached: /cached/$CACHED_KEY ($st) answered X-Cache: $CACHED_SAW before the $pin c$c run, not hit: row skipped"; continue
          fi
          BENCH_DEBUG_URL="http://127.0.0.1:$P_TENURE/debug/store"
          bench cached tenure "cached@$st" "$pin" "$c" "$rep" "$cached"
          check_tenure "cached: /cached/$CACHED_KEY ($st) $pin c$c repeat $rep" || break
        done
        BENCH_STORE_PID="" BENCH_DEBUG_URL=""
        stop_server tenure
      done
      stop_stores
    done
  done
}

# ---------------------------------------------------------------- main
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
waited=0
while awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$LOAD_MAX" 'BEGIN{exit !(l >= m)}' && [ "$waited" -lt "$QUIET_WAIT" ]; do
  [ "$waited" = 0 ] && say "1-min load average $(cut -d' ' -f1 /proc/loadavg) >= LOAD_MAX=$LOAD_MAX, waiting up to ${QUIET_WAIT}s"
  sleep 5; waited=$((waited + 5))
done
LOAD_GO=$(cut -d' ' -f1-3 /proc/loadavg)
wait_quiet
DATE_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$SECONDS
{
  echo "date=$DATE_START"
  echo "mode=$([ "$QUICK" = 1 ] && echo 'quick smoke run' || echo 'full run')"
  echo "command=$CMDLINE"
  echo "cores=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "mem=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "load_start=$LOAD_START"
  echo "load_go=$LOAD_GO (after waiting ${waited}s for LOAD_MAX=$LOAD_MAX)"
  echo "node=$([ "$HAVE_NODE" = 1 ] && node -v || echo absent)"
  echo "nginx=$(nginx -v 2>&1 | cut -d/ -f2)"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "tenure=$TENURE_REV (commit time $TENURE_COMMIT_TIME), $TS built $TS_MTIME, CMAKE_BUILD_TYPE=${TS_BUILD_TYPE:-?}"
  echo "tenure_args=--keep-alive-timeout 65000 $TENURE_ARGS"
  echo "tenure_options=${TENURE_OPTIONS:-}"
  echo "settings=DUR=$DUR WARMUP=$WARMUP CONNS='$CONNS' PINS='$PINS' REPEAT=$REPEAT C10K_N=$C10K_N C10K_HOLD=$C10K_HOLD GC_DUR=$GC_DUR GC_CONNS=$GC_CONNS USERS_N=$USERS_N PUT_PCT=$PUT_PCT QUIET_PCT=$QUIET_PCT QUIET_WAIT=$QUIET_WAIT OTHER_MAX=$OTHER_MAX BENCH_TRIES=$BENCH_TRIES"
  echo "suites=${SUITES[*]}"
  if has_suite session || has_suite cached; then
    echo "session_settings=SESSION_STORES='$SESSION_STORES' CACHED_STORES='$CACHED_STORES' CACHED_KEY=$CACHED_KEY ME_PER_FLOW=$ME_PER_FLOW; tenure-server --store <memory://|redis://127.0.0.1:$P_REDIS|memcached://127.0.0.1:$P_MEMCACHED> --session-secret <fixed>"
    echo "stores=redis $(need_store redis && redis-server --version | awk '{print $3}' | sed 's/^v=//' || echo unused) on $P_REDIS (--save '' --appendonly no), memcached $(need_store memcached && memcached -V | awk '{print $2}' || echo unused) on $P_MEMCACHED (-m 256)"
  fi
  if has_suite session; then
    echo "express=$([ "$HAVE_EXPRESS" = 1 ] && (cd "$PEERS_WORK/session_express" && node -e 'const fs=require("fs"), v=n=>JSON.parse(fs.readFileSync("node_modules/"+n+"/package.json")).version; console.log(["express","express-session","connect-redis","redis","connect-memcached","memcached"].map(n=>n+" "+v(n)).join(", "))' 2>/dev/null) || echo absent)"
    echo "flow_lua=$FLOW_LUA (sha256 $(sha256sum "$FLOW_LUA" | cut -c1-16), the peers' as is)$([ "$FLOW_ROLLING" = 1 ] && echo ", run through tools/bench/flow_rolling.lua (FLOW_ROLLING=1: a renewed cookie on a /me answer hidden from it)")"
  fi
  echo "ulimit_n=$(ulimit -n)"
  echo "ulimit_note=$ULIMIT_NOTE"
  echo "peers=$PEERS_SRC (copied to $PEERS_WORK)"
  echo "results=$OUT"
} >"$OUT/env.txt"
sed 's/^/  /' "$OUT/env.txt" >&2
printf 'suite\tserver\tmode\tpin\tconns\trep\trps\tp50_ms\tp99_ms\terrors\tsrv_cpu%%\twrk_cpu%%\trps_per_cpu_s\tother_cpu%%\trss_kb\talive\tnon2xx\tstore_cpu%%\tflow_login\tflow_me\tflow_logout\tflow_401\tflow_other\tflows_per_s\tflow_ok\tstore_p50_ms\tstore_p99_ms\tstore_hits\tstore_misses\tstore_sets\tstore_deletes\tstore_errors\n' >"$OUT/results.tsv"
: >"$OUT/c10k.txt"

wrk_suites=()
for s in "${SUITES[@]}"; do case $s in hello|10k) wrk_suites+=("$s") ;; esac; done
[ ${#wrk_suites[@]} -gt 0 ] && suite_wrk "${wrk_suites[@]}"
for s in "${SUITES[@]}"; do
  case $s in
    c10k) suite_c10k ;;
    gc) suite_gc ;;
    session) suite_session ;;
    cached) suite_cached ;;
  esac
done

ELAPSED=$((SECONDS - T0))
{
  echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "elapsed=$((ELAPSED / 60)) min $((ELAPSED % 60)) s"
} >>"$OUT/env.txt"
printf '%s\n' "${PROBLEMS[@]}" | sed '/^$/d' >"$OUT/problems.txt"
python3 "$SCRIPT_DIR/http_table.py" "$OUT" >"$OUT/http-bench.md.tmp" || PROBLEMS+=("http_table.py failed")
mv "$OUT/http-bench.md.tmp" "$OUT/http-bench.md"
cat "$OUT/http-bench.md"
say "results in $OUT ($([ ${#PROBLEMS[@]} = 0 ] && echo 'all checks passed' || echo "${#PROBLEMS[@]} PROBLEMS, see the table"))"
[ ${#PROBLEMS[@]} = 0 ]
