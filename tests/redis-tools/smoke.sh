#!/usr/bin/env bash
# Debian's redis-cli and redis-benchmark, unchanged, against `distcache demo`.
#
#   tests/redis-tools/smoke.sh            # builds target/debug/distcache
#   DISTCACHE_BIN=target/release/distcache tests/redis-tools/smoke.sh
#
# redis-cli: a few commands whose exact output is checked. redis-benchmark:
# `-n $REQUESTS -q` (10000 by default; the gate passes 2000) over every test
# of its default list that distcache supports (the list, set, hash,
# sorted-set and stream tests wait for the data types);
# a test that prints an error, or no requests-per-second line, fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work="$root/target/redis-tools-smoke"
rm -rf "$work" && mkdir -p "$work"

REQUESTS="${REQUESTS:-10000}"
# redis-benchmark's default list, less what needs the data types issue.
TESTS="${TESTS:-ping_inline,ping_mbulk,set,get,incr,mset}"

for tool in redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/setup.sh" >&2; exit 1; }
done

if [ -z "${DISTCACHE_BIN:-}" ]; then
  cargo build --quiet -p distcache
  DISTCACHE_BIN="$root/target/debug/distcache"
fi

demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ]; then
    kill -INT "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# Below the ephemeral range (32768-60999 here): a port from it can be taken
# by an outgoing connection, the demo's own between its nodes included.
base=$(( 20000 + (RANDOM % 50) * 100 ))
"$DISTCACHE_BIN" demo --data-dir "$work/data" --grpc-port "$base" \
  --resp-port $(( base + 40 )) --http-port $(( base + 60 )) > "$work/demo.log" 2>&1 &
demo_pid=$!
port=""
for _ in $(seq 1 900); do
  if grep -q '^distcache demo: ready' "$work/demo.log"; then
    port=$(sed -n 's/^  RESP 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/demo.log" | head -n 1)
    break
  fi
  kill -0 "$demo_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$port" ]; then
  echo "distcache demo did not become ready with a RESP address:" >&2
  cat "$work/demo.log" >&2
  exit 1
fi

failures=0
expect() {
  local want="$1"; shift
  local got
  got=$(redis-cli -p "$port" "$@" 2>&1)
  if [ "$got" = "$want" ]; then
    echo "ok    redis-cli $*"
  else
    echo "FAIL  redis-cli $*: expected '$want', got '$got'"
    failures=$(( failures + 1 ))
  fi
}
expect PONG ping
expect OK set smoke:key hello
expect hello get smoke:key
expect 5 strlen smoke:key
expect 1 del smoke:key
expect "" get smoke:key
expect "ERR wrong number of arguments for 'get' command" get
expect "ERR unknown command 'nosuchcommand', with args beginning with: " nosuchcommand

echo "==> redis-benchmark -n $REQUESTS -q -t $TESTS"
IFS=',' read -r -a tests <<< "$TESTS"
for test in "${tests[@]}"; do
  output=$(timeout 300 redis-benchmark -p "$port" -n "$REQUESTS" -q -t "$test" 2>&1 | tr '\r' '\n' | grep -v '^$' || true)
  last=$(printf '%s\n' "$output" | tail -n 1)
  if printf '%s\n' "$output" | grep -qi 'error'; then
    echo "FAIL  $test: $(printf '%s\n' "$output" | grep -i error | head -n 1)"
    failures=$(( failures + 1 ))
  elif printf '%s\n' "$last" | grep -q 'requests per second'; then
    echo "ok    $last"
  else
    echo "FAIL  $test: no result line (got '$last')"
    failures=$(( failures + 1 ))
  fi
done

if [ "$failures" -ne 0 ]; then
  echo "redis-tools smoke test: $failures failed (demo log: $work/demo.log)" >&2
  exit 1
fi
echo "redis-tools smoke test: all passed"
