#!/usr/bin/env bash
# test_tenure_server.sh [--reduced] SRC SERVER -- starts tenure-server as a
# user does, with the README's command (SRC/tools/run.sh; TENURE_SERVER=SERVER
# makes run.sh exec that binary without installing or building, so the
# process the test talks to and signals is the one run.sh execs), on a port
# the kernel picks (--listen 127.0.0.1:0; the server prints the port it got),
# with a temporary --static and --upload-dir, and checks every demo route
# with curl: status codes, bodies and key headers; a 200 MB upload and
# download through a server limited to --max-old-space-size=16 (sha256 both
# ways, peak RSS from /proc/PID/status VmHWM); and the graceful stop on
# SIGTERM with a request in flight.
#
# --reduced skips the 200 MB transfers (the stress variant, run with
# TENURE_OPTIONS="--stress-gc --verify-heap", which the server reads itself).
# Stops at the first failed check with a message naming it.
set -euo pipefail

reduced=0
if [ "${1:-}" = --reduced ]; then reduced=1; shift; fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--reduced] SRC SERVER" >&2
  exit 2
fi
src=$1 server=$2
CURL=curl
[ -x /usr/bin/curl ] && CURL=/usr/bin/curl # Debian's
command -v python3 >/dev/null || { echo "FAIL: python3 is needed (tools/deps.sh test)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/tenure-server-test-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

nchecks=0
fail() {
  echo "FAIL: $*" >&2
  if [ -s "$tmp/server.err" ]; then
    echo "--- server stderr (last 20 lines):" >&2
    tail -n 20 "$tmp/server.err" >&2
  fi
  exit 1
}
ok() { nchecks=$((nchecks + 1)); echo "ok $nchecks - $*"; }
step() { echo "# $*"; }

# req ARGS... : one request; sets $code, the body in $tmp/body, the headers
# (of the last response) in $tmp/hdr.
req() {
  : > "$tmp/hdr"
  rm -f "$tmp/body" # curl -o creates no file for an empty body
  code=$("$CURL" -sS --max-time 60 -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' "$@") ||
    fail "curl $* failed (exit $?)"
  [ -f "$tmp/body" ] || : > "$tmp/body"
  tr -d '\r' < "$tmp/hdr" > "$tmp/hdr.lf"
}
# header NAME : the value of NAME in the last response ('' when absent).
header() {
  awk -v n="$(echo "$1" | tr '[:upper:]' '[:lower:]')" '
    /^HTTP\// { v = "" }
    { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
        v = substr($0, i + 1); sub(/^[ \t]+/, "", v) } }
    END { print v }' "$tmp/hdr.lf"
}
body() { cat "$tmp/body"; }
expect_status() { # WANT WHAT
  [ "$code" = "$1" ] || fail "$2: status $code, expected $1; body: $(head -c 300 "$tmp/body")"
}
expect_header() { # NAME ERE WHAT
  local v
  v=$(header "$1")
  [[ $v =~ $2 ]] || fail "$3: header $1 is '$v', expected /$2/"
}
expect_body() { # TEXT WHAT   (exact, byte for byte; TEXT may hold \n as printf does)
  # shellcheck disable=SC2059 # TEXT is a printf format, for its \n
  printf "$1" > "$tmp/want"
  cmp -s "$tmp/want" "$tmp/body" ||
    fail "$2: body is '$(head -c 300 "$tmp/body")', expected '$(cat "$tmp/want")'"
}
expect_body_contains() { # FIXED-STRING WHAT
  grep -qF -- "$1" "$tmp/body" || fail "$2: body lacks '$1': $(head -c 300 "$tmp/body")"
}
# expect_json PYEXPR WHAT : the body parses as JSON (j) and PYEXPR is true.
expect_json() {
  python3 - "$tmp/body" "$1" <<'EOF' || fail "$2: JSON check failed: $1; body: $(head -c 400 "$tmp/body")"
import json, sys
try:
    j = json.load(open(sys.argv[1], encoding="utf-8"))
except ValueError as e:
    print("not JSON:", e, file=sys.stderr); sys.exit(1)
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# --- run.sh itself ----------------------------------------------------------
step "tools/run.sh with TENURE_SERVER=$server"
out=$(TENURE_SERVER="$server" "$src/tools/run.sh" --help 2>/dev/null) ||
  fail "tools/run.sh --help exited $?"
grep -q -- "--listen HOST:PORT" <<<"$out" && grep -q -- "--max-old-space-size=MB" <<<"$out" ||
  fail "tools/run.sh --help does not print tenure-server's flags: $out"
ok "tools/run.sh --help passes through: tenure-server's usage, exit 0"
st=0; TENURE_SERVER="$server" "$src/tools/run.sh" --no-such-flag >/dev/null 2>"$tmp/e" || st=$?
[ $st = 2 ] && grep -q "unknown option --no-such-flag" "$tmp/e" ||
  fail "tools/run.sh --no-such-flag: exit $st, expected 2 and 'unknown option'; stderr: $(cat "$tmp/e")"
ok "tools/run.sh --no-such-flag: exit 2, 'unknown option'"

# --- start ------------------------------------------------------------------
mkdir -p "$tmp/static/sub" "$tmp/up"
printf 'static file content\n' > "$tmp/static/a.txt"
printf '<p>nested</p>\n' > "$tmp/static/sub/page.html"
printf 'SECRET-OUTSIDE-STATIC\n' > "$tmp/secret.txt" # beside the static dir
step "starting: TENURE_SERVER=$server tools/run.sh --listen 127.0.0.1:0 --static $tmp/static --upload-dir $tmp/up --max-old-space-size=16 (TENURE_OPTIONS='${TENURE_OPTIONS:-}')"
TENURE_SESSION_SECRET=test-secret TENURE_SERVER="$server" "$src/tools/run.sh" --listen 127.0.0.1:0 \
  --static "$tmp/static" --upload-dir "$tmp/up" --max-old-space-size=16 \
  > "$tmp/server.out" 2> "$tmp/server.err" &
pid=$!
url=
for _ in $(seq 300); do # 30 s
  url=$(sed -n 's|^tenure-server listening on \(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$tmp/server.out")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || fail "tenure-server exited before listening: $(cat "$tmp/server.out")"
  sleep 0.1
done
[ -n "$url" ] || fail "no 'tenure-server listening on http://127.0.0.1:PORT/' line within 30 s: $(cat "$tmp/server.out")"
port=${url#http://127.0.0.1:}; port=${port%/}
[ "$port" -gt 0 ] || fail "printed port $port"
ok "listening: $url (port $port from the kernel)"
[ "$(readlink "/proc/$pid/exe")" = "$(readlink -f "$server")" ] ||
  fail "pid $pid is $(readlink "/proc/$pid/exe"), not $server: run.sh did not exec the server"
ok "run.sh exec'd the server: pid $pid is tenure-server itself"

# --- GET / ------------------------------------------------------------------
step "GET /"
req "$url"
expect_status 200 "GET /"
expect_header Content-Type '^text/html; charset=utf-8$' "GET /"
expect_header Content-Length "^$(stat -c %s "$tmp/body")\$" "GET / Content-Length = body size"
expect_body_contains "<!doctype html>" "GET /"
for r in /hello /string10k /buffer10k /users /files/ /debug/heap; do
  expect_body_contains "href=\"$r\"" "GET / links $r"
done
ok "GET / -> 200 text/html, the index linking every GET route"

# --- /hello -----------------------------------------------------------------
step "GET /hello"
req "${url}hello"
expect_status 200 "GET /hello"
expect_body 'hello world\n' "GET /hello"
[ "$(stat -c %s "$tmp/body")" = 12 ] || fail "GET /hello: $(stat -c %s "$tmp/body") bytes, expected 12"
expect_header Content-Type '^text/plain; charset=utf-8$' "GET /hello"
expect_header Content-Length '^12$' "GET /hello"
expect_header Connection '^keep-alive$' "GET /hello (HTTP/1.1 keep-alive)"
expect_header X-Response-Time '^[0-9.]+ms$' "GET /hello (response-time middleware)"
ok "GET /hello -> 200, exactly 'hello world\\n' (12 bytes), text/plain, Content-Length 12, keep-alive, X-Response-Time"

# --- /string10k, /buffer10k ---------------------------------------------------
head -c 10240 /dev/zero | tr '\0' a > "$tmp/a10k"
for r in string10k buffer10k; do
  step "GET /$r"
  req "${url}$r"
  expect_status 200 "GET /$r"
  cmp -s "$tmp/a10k" "$tmp/body" || fail "GET /$r: body is not 10240 x 'a' ($(stat -c %s "$tmp/body") bytes)"
  expect_header Content-Length '^10240$' "GET /$r"
  expect_header Content-Type '^text/plain; charset=utf-8$' "GET /$r"
  ok "GET /$r -> 200, 10240 x 'a', Content-Length 10240, text/plain"
done

# --- /users -----------------------------------------------------------------
step "/users/:name"
J='Content-Type: application/json'
req -X PUT -H "$J" --data-binary '{"name":"Ada Lovelace","born":1815,"tags":["math","é"]}' "${url}users/ada"
expect_status 201 "PUT /users/ada (new)"
expect_header Content-Type '^application/json; charset=utf-8$' "PUT /users/ada"
expect_json 'j == {"name":"Ada Lovelace","born":1815,"tags":["math","é"]}' "PUT /users/ada answers the stored user"
ok "PUT /users/ada (new) -> 201, the user as JSON"
req -X PUT -H "$J" --data-binary '{"name":"Ada King","born":1815}' "${url}users/ada"
expect_status 200 "PUT /users/ada (again)"
expect_json 'j == {"name":"Ada King","born":1815}' "PUT /users/ada (again)"
ok "PUT /users/ada again -> 200 (replaced)"
req "${url}users/ada"
expect_status 200 "GET /users/ada"
expect_header Content-Type '^application/json; charset=utf-8$' "GET /users/ada"
expect_json 'j == {"name":"Ada King","born":1815}' "GET /users/ada"
ok "GET /users/ada -> 200, the replaced user"
req -X PUT -H "$J" --data-binary '{"name":"Alan Turing"}' "${url}users/alan"
expect_status 201 "PUT /users/alan"
req "${url}users"
expect_status 200 "GET /users"
expect_json 'j == {"ada":{"name":"Ada King","born":1815},"alan":{"name":"Alan Turing"}}' "GET /users"
ok "GET /users -> 200, every user as one JSON object"
req -X DELETE "${url}users/ada"
expect_status 204 "DELETE /users/ada"
[ ! -s "$tmp/body" ] || fail "DELETE /users/ada: 204 with a body: $(body)"
ok "DELETE /users/ada -> 204, no body"
req -X DELETE "${url}users/ada"
expect_status 404 "DELETE /users/ada (again)"
ok "DELETE /users/ada again -> 404"
req "${url}users/ada"
expect_status 404 "GET /users/ada (deleted)"
expect_json 'j == "no such user"' "GET /users/ada (deleted)"
ok "GET /users/ada after DELETE -> 404 \"no such user\""
req -X PUT -H "$J" --data-binary '{"name":"Bob",}' "${url}users/bob"
expect_status 400 "PUT /users/bob with broken JSON"
expect_header Content-Type '^application/json' "PUT broken JSON (error as JSON for Accept: */*)"
expect_json 'j["status"] == 400 and "offset 14" in j["error"]' "PUT broken JSON: the error names the offset"
ok "PUT /users/bob '{\"name\":\"Bob\",}' -> 400, {\"error\":\"invalid JSON at offset 14: ...\",\"status\":400}"
req -X PUT -H "$J" -H 'Accept: text/plain' --data-binary '{"name":"Bob",}' "${url}users/bob"
expect_status 400 "PUT broken JSON, Accept: text/plain"
expect_header Content-Type '^text/plain' "PUT broken JSON, Accept: text/plain"
expect_body_contains "invalid JSON at offset 14" "PUT broken JSON, Accept: text/plain"
ok "the same with Accept: text/plain -> 400, the message as text"
req -X PUT --data-binary 'name=bob' "${url}users/bob"
expect_status 400 "PUT /users/bob urlencoded"
expect_json '"JSON body" in j["error"]' "PUT /users/bob urlencoded"
ok "PUT /users/bob with a urlencoded body -> 400 'takes a JSON body'"
req "${url}users/bob"
expect_status 404 "GET /users/bob (never stored)"
ok "GET /users/bob -> 404: the failed PUTs stored nothing"

# --- /echo ------------------------------------------------------------------
step "POST /echo"
req -X POST --data-binary 'a=1&b=two+words&c=%C3%A9&d=' -b 'sid=abc123; theme=dark' "${url}echo?x=1&y=z%20w"
expect_status 200 "POST /echo urlencoded"
expect_header Content-Type '^application/json; charset=utf-8$' "POST /echo"
expect_json 'j == {"body":{"a":"1","b":"two words","c":"é","d":""},"query":{"x":"1","y":"z w"},"cookies":{"sid":"abc123","theme":"dark"}}' "POST /echo urlencoded"
ok "POST /echo urlencoded + query + cookies -> the parsed body, query and cookies"
req -H "$J" --data-binary '{"k":[1,2.5,{"n":null}],"t":true,"s":"é\u0041"}' -b 'sid=x' "${url}echo?q=json&q2="
expect_status 200 "POST /echo JSON"
expect_json 'j == {"body":{"k":[1,2.5,{"n":None}],"t":True,"s":"éA"},"query":{"q":"json","q2":""},"cookies":{"sid":"x"}}' "POST /echo JSON"
ok "POST /echo JSON + query + cookie -> the parsed JSON"
printf 'first file\n' > "$tmp/f1.txt"
head -c 70000 /dev/urandom > "$tmp/f2.bin"
req -F 'field=value' -F 'other=ü' -F "f1=@$tmp/f1.txt" -F "f2=@$tmp/f2.bin;type=application/octet-stream" -b 'c=1' "${url}echo?m=multi"
expect_status 200 "POST /echo multipart"
expect_json 'j["body"] == {"field":"value","other":"ü"} and j["query"] == {"m":"multi"} and j["cookies"] == {"c":"1"}' "POST /echo multipart: fields, query, cookies"
expect_json "[(f['field'], f['originalName'], f['size'], f['type'], f['sha256']) for f in j['files']] == [('f1','f1.txt',11,'text/plain','$(sha "$tmp/f1.txt")'), ('f2','f2.bin',70000,'application/octet-stream','$(sha "$tmp/f2.bin")')]" "POST /echo multipart: files"
expect_json "all(f['path'].startswith('$tmp/up/') for f in j['files'])" "POST /echo multipart: files stored in --upload-dir"
ok "POST /echo multipart -> fields, query, cookies, and files (name, size, type, sha256) stored in the upload dir"

# --- /upload ----------------------------------------------------------------
step "POST /upload"
req -F "one=@$tmp/f1.txt" -F "two=@$tmp/f2.bin" -F 'note=two files' "${url}upload"
expect_status 201 "POST /upload"
expect_header Content-Type '^application/json; charset=utf-8$' "POST /upload"
expect_json "[(f['field'], f['originalName'], f['size']) for f in j['files']] == [('one','f1.txt',11), ('two','f2.bin',70000)] and j['fields'] == {'note':'two files'}" "POST /upload"
python3 -c 'import json,sys; [print(f["path"], f["sha256"]) for f in json.load(open(sys.argv[1]))["files"]]' "$tmp/body" > "$tmp/stored"
i=0
while read -r path digest; do
  i=$((i + 1))
  local_file=$tmp/f1.txt; [ $i = 2 ] && local_file=$tmp/f2.bin
  case $path in "$tmp/up/"*) ;; *) fail "POST /upload: stored at $path, outside --upload-dir $tmp/up" ;; esac
  [ -f "$path" ] || fail "POST /upload: $path does not exist"
  [ "$(sha "$path")" = "$(sha "$local_file")" ] || fail "POST /upload: $path's sha256 differs from $local_file's"
  [ "$digest" = "$(sha "$local_file")" ] || fail "POST /upload: the sha256 the server reports for $path is wrong"
done < "$tmp/stored"
[ $i = 2 ] || fail "POST /upload: $i files in the answer, expected 2"
ok "POST /upload -F one=@f1.txt -F two=@f2.bin -> 201; both stored in the upload dir with the right sha256 (sha256sum), the note field parsed"
req -H "$J" --data-binary '{}' "${url}upload"
expect_status 415 "POST /upload JSON"
ok "POST /upload with a JSON body -> 415"

# --- /files/ ----------------------------------------------------------------
step "GET /files/"
req "${url}files/a.txt"
expect_status 200 "GET /files/a.txt"
expect_body 'static file content\n' "GET /files/a.txt"
expect_header Content-Length '^20$' "GET /files/a.txt"
expect_header Content-Type '^text/plain' "GET /files/a.txt"
expect_header ETag '^(W/)?"[^"]+"$' "GET /files/a.txt"
expect_header Last-Modified 'GMT$' "GET /files/a.txt"
expect_header Accept-Ranges '^bytes$' "GET /files/a.txt"
etag=$(header ETag)
ok "GET /files/a.txt -> 200, the file, Content-Length 20, ETag $etag, Last-Modified, Accept-Ranges"
req -H "If-None-Match: $etag" "${url}files/a.txt"
expect_status 304 "GET /files/a.txt If-None-Match"
[ ! -s "$tmp/body" ] || fail "304 with a body: $(body)"
[ "$(header ETag)" = "$etag" ] || fail "304: ETag '$(header ETag)', expected '$etag'"
ok "If-None-Match: $etag -> 304, no body"
req -H 'If-None-Match: "other"' "${url}files/a.txt"
expect_status 200 "GET /files/a.txt If-None-Match other"
ok "If-None-Match: \"other\" -> 200"
req -r 7-10 "${url}files/a.txt"
expect_status 206 "GET /files/a.txt Range: bytes=7-10"
expect_body 'file' "Range: bytes=7-10"
expect_header Content-Range '^bytes 7-10/20$' "Range: bytes=7-10"
expect_header Content-Length '^4$' "Range: bytes=7-10"
ok "Range: bytes=7-10 -> 206 'file', Content-Range bytes 7-10/20, Content-Length 4"
req -H 'Range: bytes=-8' "${url}files/a.txt"
expect_status 206 "Range: bytes=-8"
expect_body 'content\n' "Range: bytes=-8"
ok "Range: bytes=-8 (suffix) -> 206 'content\\n'"
req -r 100-200 "${url}files/a.txt"
expect_status 416 "Range: bytes=100-200"
expect_header Content-Range '^bytes \*/20$' "Range past the end"
ok "Range: bytes=100-200 -> 416, Content-Range bytes */20"
req "${url}files/sub/page.html"
expect_status 200 "GET /files/sub/page.html"
expect_header Content-Type '^text/html' "GET /files/sub/page.html"
expect_body '<p>nested</p>\n' "GET /files/sub/page.html"
ok "GET /files/sub/page.html -> 200 text/html"
req "${url}files/missing.txt"
expect_status 404 "GET /files/missing.txt"
ok "GET /files/missing.txt -> 404"
step "path traversal"
for p in /files/../etc/passwd /files/../../../../../../etc/passwd \
         /files/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd /files/%2E%2E/secret.txt \
         /files/..%2fsecret.txt /files/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd \
         /files/sub/../../secret.txt /files/sub/%2e%2e/%2e%2e/secret.txt \
         /files/..%5csecret.txt /files/%252e%252e/secret.txt /files/.%2e/secret.txt \
         /files/a.txt%00.html /files//etc/passwd "/files/..;/secret.txt" \
         /../secret.txt /%2e%2e/secret.txt; do
  req --path-as-is "${url%/}$p"
  case $code in 400|403|404) ;; *) fail "GET $p: status $code, expected 400, 403 or 404; body: $(head -c 200 "$tmp/body")" ;; esac
  if grep -q -e 'root:' -e 'SECRET-OUTSIDE-STATIC' "$tmp/body"; then
    fail "GET $p: the answer holds the file outside --static"
  fi
  ok "GET $p -> $code, not the file"
done

# --- HEAD, 405, 404 ----------------------------------------------------------
step "HEAD /hello"
req -I "${url}hello"
expect_status 200 "HEAD /hello"
expect_header Content-Length '^12$' "HEAD /hello (the GET's length)"
expect_header Content-Type '^text/plain' "HEAD /hello"
# curl -I never reads a body: check the bytes on the wire, with a second
# request pipelined behind the HEAD (a body would be read as its status line).
python3 - "$port" > "$tmp/head.raw" <<'EOF' || fail "HEAD /hello on a raw socket: $(cat "$tmp/head.raw")"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
          b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
head, sep, rest = data.partition(b"\r\n\r\n")
ok = head.startswith(b"HTTP/1.1 200 ") and rest.startswith(b"HTTP/1.1 200 ") \
     and rest.endswith(b"\r\n\r\nhello world\n") and rest.count(b"HTTP/1.1") == 1
print(repr(data))
sys.exit(0 if ok else 1)
EOF
ok "HEAD /hello -> 200, Content-Length 12, no body on the wire (a GET pipelined behind it reads cleanly)"
req -X DELETE "${url}hello"
expect_status 405 "DELETE /hello"
expect_header Allow '^GET, HEAD$' "DELETE /hello"
ok "DELETE /hello -> 405, Allow: GET, HEAD"
req -X POST --data-binary 'x' "${url}users"
expect_status 405 "POST /users"
expect_header Allow 'GET' "POST /users"
ok "POST /users -> 405, Allow: $(header Allow)"
req "${url}no/such/route"
expect_status 404 "GET /no/such/route"
ok "GET /no/such/route -> 404"

# --- Sessions (cache/, memory://) ------------------------------------------------
step "sessions: POST /login, GET /me, POST /visit, POST /logout (curl's cookie jar)"
jar="$tmp/jar"
req -c "$jar" -b "$jar" "${url}me"
expect_status 401 "GET /me without a session"
grep -q sid "$jar" 2>/dev/null && fail "GET /me without a session set a cookie"
req -c "$jar" -b "$jar" -H 'Content-Type: application/json' -d '{"user":"ada"}' "${url}login"
expect_status 200 "POST /login"
expect_body '{"user":"ada"}' "POST /login"
expect_header Set-Cookie '^sid=.*HttpOnly.*SameSite=Lax' "POST /login's cookie"
req -c "$jar" -b "$jar" "${url}me"
expect_status 200 "GET /me after login"
expect_body '{"user":"ada"}' "GET /me after login"
for n in 1 2 3; do
  req -c "$jar" -b "$jar" -X POST "${url}visit"
  expect_body "{\"visits\":$n}" "POST /visit #$n"
done
req -c "$jar" -b "$jar" -d 'user=' "${url}login"
expect_status 400 "POST /login without a user"
req -b 'sid=forged.signature' "${url}me"
expect_status 401 "GET /me with a forged cookie"
req -c "$jar" -b "$jar" -X POST "${url}logout"
expect_body '{"ok":true}' "POST /logout"
expect_header Set-Cookie '^sid=;.*Max-Age=0' "POST /logout clears the cookie"
req -b "$jar" "${url}me"
expect_status 401 "GET /me after logout"
req "${url}debug/store"
expect_json 'j["type"] == "memory" and j["sets"] >= 4 and j["entries"] == 0 and j["countedMsAgo"] == 0' "GET /debug/store"
ok "sessions: no cookie without data, login sets a signed HttpOnly SameSite=Lax sid, /me and /visit see the session, a forged cookie is none, logout clears it and the store"
step "GET /cached/:key: a slow value computed once"
req "${url}cached/k1"
expect_header X-Cache '^miss$' "GET /cached/k1 (first)"
expect_header Content-Type '^application/json; charset=utf-8$' "GET /cached/k1 (first)"
expect_json 'j["key"] == "cached:k1" and j["computedAt"] > 0' "GET /cached/k1 (first)"
cp "$tmp/body" "$tmp/cached_first"
req "${url}cached/k1"
expect_header X-Cache '^hit$' "GET /cached/k1 (again)"
expect_header Content-Type '^application/json; charset=utf-8$' "GET /cached/k1 (again)"
cmp -s "$tmp/body" "$tmp/cached_first" || fail "GET /cached/k1: the hit's body differs from the computed one"
ok "GET /cached/k1: miss, then hit with the same JSON body"

# --- /debug/heap ------------------------------------------------------------
step "GET /debug/heap"
req "${url}debug/heap"
expect_status 200 "GET /debug/heap"
expect_header Content-Type '^application/json' "GET /debug/heap"
expect_header Cache-Control '^no-store$' "GET /debug/heap"
expect_json 'j["heap"]["total_heap_size"] > 0 and j["heap"]["used_heap_size"] > 0 and 0 < j["heap"]["heap_size_limit"] < 64*2**20 and {s["space_name"] for s in j["heap"]["spaces"]} >= {"new_space","old_space","large_object_space"} and "scavenges" in j["heap"]["gc"]' "GET /debug/heap: heap statistics (limit from --max-old-space-size=16)"
expect_json 'j["memoryUsage"]["rss"] > 0 and j["memoryUsage"]["heapTotal"] > 0 and j["memoryUsage"]["heapUsed"] > 0 and j["memoryUsage"]["external"] >= 10240 and j["memoryUsage"]["arrayBuffers"] >= 10240' "GET /debug/heap: memoryUsage"
expect_json 'j["server"]["requests"] >= 40 and j["server"]["accepted"] >= 40' "GET /debug/heap: server counters"
case " ${TENURE_OPTIONS:-} " in
  *" --stress-gc "*)
    expect_json 'j["heap"]["gc"]["scavenges"] + j["heap"]["gc"]["full_gcs"] >= 100' "GET /debug/heap: TENURE_OPTIONS=--stress-gc reached the server (a GC at every allocation)"
    ok "TENURE_OPTIONS reached the server: $(python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["heap"]["gc"]; print(g["scavenges"], "scavenges,", g["full_gcs"], "full GCs so far")' "$tmp/body")" ;;
esac
ok "GET /debug/heap -> 200, JSON: heap.total_heap_size, heap_size_limit < 64 MB (16 MB old space), spaces, gc; memoryUsage.rss/heapTotal/heapUsed/external/arrayBuffers; server counters"

# --- 200 MB through a 16 MB heap ----------------------------------------------
if [ $reduced = 0 ]; then
  step "200 MB up and down through --max-old-space-size=16"
  head -c 200M /dev/urandom > "$tmp/static/big.bin"
  big_sha=$(sha "$tmp/static/big.bin")
  req -F "big=@$tmp/static/big.bin" "${url}upload"
  expect_status 201 "POST /upload 200 MB"
  expect_json "len(j['files']) == 1 and j['files'][0]['size'] == 209715200 and j['files'][0]['sha256'] == '$big_sha'" "POST /upload 200 MB"
  stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"][0]["path"])' "$tmp/body")
  [ "$(sha "$stored")" = "$big_sha" ] || fail "POST /upload 200 MB: the stored file's sha256 differs"
  rm -f "$stored"
  ok "POST /upload -F big=@200MB -> 201, stored file's sha256 = the original's"
  got=$("$CURL" -sS --max-time 120 -D "$tmp/hdr" "${url}files/big.bin" | sha256sum | cut -d' ' -f1)
  tr -d '\r' < "$tmp/hdr" > "$tmp/hdr.lf"
  expect_header Content-Length '^209715200$' "GET /files/big.bin"
  [ "$got" = "$big_sha" ] || fail "GET /files/big.bin: sha256 $got, expected $big_sha"
  ok "GET /files/big.bin (200 MB) -> Content-Length 209715200, same sha256"
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
  [ "$hwm" -lt $((64 * 1024)) ] || fail "peak RSS (VmHWM) $hwm kB: not well under the 200 MB file (limit 64 MB)"
  ok "server peak RSS (VmHWM) $((hwm / 1024)) MB < 64 MB while moving 200 MB each way"
  rm -f "$tmp/static/big.bin"
else
  step "(--reduced: the 200 MB transfers are skipped)"
fi

# --- graceful stop ----------------------------------------------------------
step "SIGTERM with a request in flight and an idle keep-alive connection"
python3 - "$port" "$pid" > "$tmp/stop.log" 2>&1 <<'EOF' || fail "graceful stop: $(cat "$tmp/stop.log")"
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=5)
def read_all(s):
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d
idle = conn()                     # answered, then idle (keep-alive)
idle.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
got = b""
while not got.endswith(b"hello world\n"):
    d = idle.recv(4096)
    if not d:
        sys.exit("idle connection closed before its answer")
    got += d
slow = conn()                     # in flight: half its body sent
slow.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
             b"Content-Length: 10\r\n\r\nhello")
time.sleep(0.3)
t0 = time.monotonic()
os.kill(pid, signal.SIGTERM)
idle_rest = read_all(idle)
idle.close() # a client closes on EOF (the server lingers up to 2 s for that)
if idle_rest != b"":
    sys.exit("the idle connection got %r after SIGTERM, expected a close" % idle_rest)
print("idle keep-alive connection closed %.3f s after SIGTERM" % (time.monotonic() - t0))
time.sleep(0.3)
slow.sendall(b"world")
answer = read_all(slow)
slow.close()
if not (answer.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close\r\n" in answer
        and answer.endswith(b'{"body":"helloworld","query":{},"cookies":{}}')):
    sys.exit("in-flight request after SIGTERM got %r" % answer)
print("in-flight request answered 200 with Connection: close %.3f s after SIGTERM" % (time.monotonic() - t0))
def state():
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
while state() not in ("Z", "gone"):
    if time.monotonic() - t0 > 2.0:
        sys.exit("still running 2 s after SIGTERM (state %s)" % state())
    time.sleep(0.01)
print("exited %.3f s after SIGTERM" % (time.monotonic() - t0))
try:
    conn().close()
    sys.exit("port %d still accepts connections after the exit" % port)
except ConnectionRefusedError:
    print("port %d refuses connections" % port)
EOF
sed 's/^/  /' "$tmp/stop.log"
st=0; wait "$pid" || st=$?
pid=
[ $st = 0 ] || fail "tenure-server exited $st after SIGTERM, expected 0"
grep -q "SIGTERM: stopping" "$tmp/server.err" || fail "no 'SIGTERM: stopping' on stderr"
ok "SIGTERM: idle connection closed, in-flight request finished (200, Connection: close), exit 0 within 2 s, port closed"
if grep -Eiv '^(run\.sh: starting|tenure-server: SIGTERM: stopping)' "$tmp/server.err" | grep -q .; then
  fail "unexpected lines on the server's stderr: $(cat "$tmp/server.err")"
fi
ok "nothing unexpected on the server's stderr"
echo "server: all $nchecks checks passed$([ $reduced = 1 ] && echo ' (reduced set)')"
