#!/usr/bin/env bash
# run_example.sh EXPECTED_FILE CMD... -- runs an example and compares its
# stdout with the output the peer implementations (../shared/peers/gc) print.
set -euo pipefail
expected=$1; shift
out=$("$@")
if ! diff <(printf '%s\n' "$out") "$expected"; then
  echo "output of $* differs from $expected" >&2
  exit 1
fi
