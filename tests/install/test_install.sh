#!/usr/bin/env bash
# test_install.sh SRC BUILD -- installs the build into a temporary prefix,
# then builds and runs examples/embed.c out of tree against it, once with
# CMake's find_package(tenure) and once with pkg-config.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d /tmp/tenure-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/include/gc/gc.h"
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
# 1. find_package
cmake -S "$src/tests/install" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DEMBED_SOURCE="$src/examples/embed.c" > "$tmp/cm.log"
cmake --build "$tmp/cm" > "$tmp/cmb.log"
LD_LIBRARY_PATH="$libdir" "$tmp/cm/embed_cmake" | grep -q "kept tree: 2047 nodes"
# 2. pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -O2 -o "$tmp/embed_pc" "$src/examples/embed.c" $(pkg-config --cflags --libs tenure)
LD_LIBRARY_PATH="$libdir" "$tmp/embed_pc" --max-old-space-size=32 | grep -q "kept tree: 2047 nodes"
echo "install: find_package and pkg-config builds of embed.c run"
