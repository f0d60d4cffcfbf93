#!/usr/bin/env bash
# limit_example.sh CMD... -- CMD must stop with the heap-limit error:
# exit status 134 and V8's message naming the limit and the flag.
set -uo pipefail
err=$("$@" 2>&1 >/dev/null)
rc=$?
if [ $rc -ne 134 ]; then echo "exit status $rc, expected 134" >&2; exit 1; fi
grep -q "FATAL ERROR: Reached heap limit" <<<"$err" || { echo "no heap-limit message: $err" >&2; exit 1; }
grep -q -- "--max-old-space-size" <<<"$err" || { echo "message does not name the flag" >&2; exit 1; }
