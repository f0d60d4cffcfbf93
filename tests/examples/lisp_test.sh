#!/usr/bin/env bash
# lisp_test.sh MODE EXPECTED LISP [FLAGS...] FILE.scm -- runs examples/lisp.c
# (either build: lisp or lisp_boehm) on FILE.scm from FILE's directory (so
# messages name the file as FILE's base name) and checks it.
#   MODE output: stdout must equal EXPECTED, stderr be empty, the exit
#                status 0 (the programs of examples/lisp/, the stress input).
#   MODE errors: stdout and stderr together (interleaved as written; the
#                interpreter flushes stdout before each message) must equal
#                EXPECTED, the exit status be 1: every reader or evaluation
#                error printed its message and the later forms still ran.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 output|errors EXPECTED LISP [FLAGS...] FILE.scm" >&2; exit 2; }
mode=$1 expected=$2 lisp=$3
shift 3
args=("$@")
file=${args[-1]}
unset 'args[-1]'
dir=$(cd "$(dirname "$file")" && pwd)
base=$(basename "$file")
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
rc=0
case $mode in
  output) (cd "$dir" && "$lisp" "${args[@]}" "$base") >"$out" 2>"$err" || rc=$? ;;
  errors) (cd "$dir" && "$lisp" "${args[@]}" "$base") >"$out" 2>&1 || rc=$? ;;
  *) echo "$0: unknown mode '$mode'" >&2; exit 2 ;;
esac
fail=0
if ! diff -u "$expected" "$out"; then
  echo "FAIL: the output of $lisp ${args[*]} $base differs from $expected" >&2
  fail=1
fi
want=0
[ "$mode" = errors ] && want=1
if [ "$rc" != "$want" ]; then
  echo "FAIL: exit status $rc, expected $want" >&2
  fail=1
fi
if [ "$mode" = output ] && [ -s "$err" ]; then
  echo "FAIL: unexpected output on stderr:" >&2
  head -n 20 "$err" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "ok: $(basename "$lisp") ${args[*]} $base"
exit "$fail"
