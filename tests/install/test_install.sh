#!/usr/bin/env bash
# test_install.sh SRC BUILD -- installs the build into a temporary prefix,
# then builds and runs examples/embed.c out of tree against it, once with
# CMake's find_package(tenure) and once with pkg-config.
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d /tmp/tenure-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
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
  -DEMBED_SOURCE="$src/examples/embed.c" > "$tmp/cm.log"
cmake --build "$tmp/cm" > "$tmp/cmb.log"
LD_LIBRARY_PATH="$libdir" "$tmp/cm/embed_cmake" | grep -q "kept tree: 2047 nodes"
# 2. pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -O2 -o "$tmp/embed_pc" "$src/examples/embed.c" $(pkg-config --cflags --libs tenure)
LD_LIBRARY_PATH="$libdir" "$tmp/embed_pc" --max-old-space-size=32 | grep -q "kept tree: 2047 nodes"
# 3. Boehm GC's <gc.h> and tenure's headers in one file, tenure's include
# directory first on the path.
cc -O2 -Wall -Werror -I"$tmp/prefix/include" -o "$tmp/both" \
  "$src/tests/install/boehm_and_tenure.c" $(pkg-config --cflags --libs tenure) -lgc
LD_LIBRARY_PATH="$libdir" "$tmp/both" | grep -q ": ok$"
echo "install: find_package and pkg-config builds of embed.c run; Boehm <gc.h> and <tenure/tenure.h> together"
