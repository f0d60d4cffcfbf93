#!/usr/bin/env bash
# test_install.sh SRC BUILD -- installs the build into a temporary prefix,
# then builds and runs examples/embed.c out of tree against it, once with
# CMake's find_package(tenure) and once with pkg-config; and
# tests/install/http_app.c, an HTTP application on the installed runtime
# (find_package's tenure::runtime, and cc with pkg-config's
# tenure-runtime), each started on a port the kernel picks, asked with
# curl, and stopped with SIGTERM.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d /tmp/tenure-install-XXXXXX)
app_pid=
trap '[ -z "$app_pid" ] || kill -KILL "$app_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "install: FAIL: $*" >&2; exit 1; }
# serve_check BIN: runs the http_app BIN, curls its route, stops it.
serve_check() {
  local bin=$1 url='' st=0
  LD_LIBRARY_PATH="$libdir" "$bin" > "$tmp/app.out" 2> "$tmp/app.err" &
  app_pid=$!
  for _ in $(seq 100); do
    url=$(sed -n 's|^http_app listening on \(http://127\.0\.0\.1:[0-9]*/\)$|\1|p' "$tmp/app.out")
    [ -n "$url" ] && break
    kill -0 "$app_pid" 2>/dev/null || fail "$bin exited: $(cat "$tmp/app.out" "$tmp/app.err")"
    sleep 0.1
  done
  [ -n "$url" ] || fail "$bin printed no 'listening on' line in 10 s"
  [ "$(curl -sS --max-time 10 -D "$tmp/app.hdr" "${url}hi/ada%20lovelace")" = "hi ada lovelace" ] ||
    fail "$bin: GET /hi/ada%20lovelace did not answer 'hi ada lovelace'"
  tr -d '\r' < "$tmp/app.hdr" | grep -qx 'X-App: http_app' || fail "$bin: no X-App header from the middleware"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${url}nope")" = 404 ] || fail "$bin: GET /nope is not 404"
  kill -TERM "$app_pid"
  wait "$app_pid" || st=$?
  app_pid=
  [ $st = 0 ] || fail "$bin exited $st after SIGTERM"
}
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/include/tenure/gc.h"
test -f "$tmp/prefix/include/tenure/tenure.h"
# Nothing may shadow another library's header: no gc.h, gc/ or rt/ at the top.
if [ -e "$tmp/prefix/include/gc.h" ] || [ -e "$tmp/prefix/include/gc" ] ||
   [ -e "$tmp/prefix/include/rt" ]; then
  echo "install: a header outside include/tenure/" >&2; exit 1
fi
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
# 1. find_package
cmake -S "$src/tests/install" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DEMBED_SOURCE="$src/examples/embed.c" \
  -DHTTP_APP_SOURCE="$src/tests/install/http_app.c" > "$tmp/cm.log"
cmake --build "$tmp/cm" > "$tmp/cmb.log" || { cat "$tmp/cmb.log" >&2; fail "find_package build"; }
LD_LIBRARY_PATH="$libdir" "$tmp/cm/embed_cmake" | grep -q "kept tree: 2047 nodes"
serve_check "$tmp/cm/http_app_cmake"
# 2. pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -O2 -o "$tmp/embed_pc" "$src/examples/embed.c" $(pkg-config --cflags --libs tenure)
LD_LIBRARY_PATH="$libdir" "$tmp/embed_pc" --max-old-space-size=32 | grep -q "kept tree: 2047 nodes"
# tenure-runtime.pc: the runtime (and, through Requires, the collector).
cc -O2 -Wall -Wextra -Werror -o "$tmp/http_app_pc" "$src/tests/install/http_app.c" \
  $(pkg-config --cflags --libs tenure-runtime)
serve_check "$tmp/http_app_pc"
# The installed tenure-server starts (its flags).
LD_LIBRARY_PATH="$libdir" "$tmp/prefix/bin/tenure-server" --help | grep -q -- "--listen HOST:PORT" ||
  fail "the installed tenure-server --help"
# 3. Boehm GC's <gc.h> and tenure's headers in one file, tenure's include
# directory first on the path.
cc -O2 -Wall -Werror -I"$tmp/prefix/include" -o "$tmp/both" \
  "$src/tests/install/boehm_and_tenure.c" $(pkg-config --cflags --libs tenure) -lgc
LD_LIBRARY_PATH="$libdir" "$tmp/both" | grep -q ": ok$"
echo "install: find_package and pkg-config builds of embed.c run; http_app.c built both ways serves GET /hi/:name through its middleware and stops on SIGTERM; the installed tenure-server runs; Boehm <gc.h> and <tenure/tenure.h> together"
