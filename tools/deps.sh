#!/usr/bin/env bash
# deps.sh [test|run] -- installs the Debian packages tenure needs that are
# missing (nothing when all are there).  `test` adds what the test suite
# uses (curl and python3: the tenure-server test; redis-server and
# memcached: the redis:// and memcached:// stores' tests start real
# servers), `run` what tools/run.sh and the benchmarks against the peers use
# (curl: the README's session with tenure-server; memcached: to try
# tenure-server --store memcached://).
set -euo pipefail
what=${1:-test}
pkgs=(gcc make cmake pkg-config libjemalloc-dev libcmocka-dev valgrind libuv1-dev node-llhttp libssl-dev
  libhiredis-dev libmemcached-dev)
case $what in
  test) pkgs+=(clang libclang-rt-14-dev libgc-dev curl python3 redis-server memcached) ;;
  run) pkgs+=(libgc-dev hyperfine time python3 curl memcached) ;;
esac
need=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v node >/dev/null 2>&1 || need+=(nodejs)
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${need[@]}"
fi
