#!/usr/bin/env bash
# Redis's own test suite against distcache's RESP listener.
#
#   scripts/redis-compat.sh                    # starts `distcache demo`, tests its RESP port
#   scripts/redis-compat.sh --redis            # the same units against Debian's redis-server
#                                              # (checks the harness: Redis 7.0.15 passes them all)
#   scripts/redis-compat.sh --port 6379        # an already running server on 127.0.0.1
#
# What it does:
#   1. installs what is missing: tcl, dpkg-dev (for `apt-get source`), and
#      redis-server/redis-tools for --redis; adds a deb-src entry for the
#      Debian suites this machine uses;
#   2. fetches Redis 7.0.15's source package (`apt-get source redis`) into
#      target/redis-compat/ (never committed);
#   3. runs unit/type/string, unit/type/incr, unit/expire, unit/keyspace and
#      unit/type/zset (REDIS_COMPAT_UNITS="..." picks others) in external mode (--host/--port --singledb --ignore-encoding
#      --ignore-digest), skipping the tags that need a Redis internal
#      (needs:debug, needs:repl, needs:config-maxmemory, needs:save,
#      needs:reset, external:skip);
#      with --durable (a failing test is counted, the run goes on); against
#      the demo, the harness's `FUNCTION FLUSH` is allowed to fail (the
#      fetched copy is patched) and SKIP_TESTS_DEMO names the tests that make
#      the server close the connection (they would end the run);
#   4. prints ok/err counts, and sorts failures into expected (listed below,
#      by name, with the reason) and unexpected. Exit status 0 only if every
#      failure was expected.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/target/redis-compat"
mkdir -p "$work"

mode=demo
port=""
while [ $# -gt 0 ]; do
  case "$1" in
    --redis) mode=redis ;;
    --port) mode=external; port="$2"; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

UNITS=(unit/type/string unit/type/incr unit/expire unit/keyspace unit/type/zset)
# REDIS_COMPAT_UNITS="unit/type/zset" runs only those units.
if [ -n "${REDIS_COMPAT_UNITS:-}" ]; then
  read -r -a UNITS <<< "$REDIS_COMPAT_UNITS"
fi
SKIP_TAGS=(needs:debug needs:repl needs:config-maxmemory needs:save needs:reset external:skip)

# Failures expected until other work lands, by test name, with the reason.
# A name here that passes is reported (so the list shrinks as work lands).
# Generated from the units' sources (tests that use another data type or a
# command outside issue 16's list), then checked by hand; grow it only with
# a reason.
declare -A EXPECTED=(
  ["SETBIT against non-existing key"]="bit commands: not in the issue's command list"
  ["SETBIT against string-encoded key"]="bit commands: not in the issue's command list"
  ["SETBIT against integer-encoded key"]="bit commands: not in the issue's command list"
  ["SETBIT against key with wrong type"]="bit commands: not in the issue's command list"
  ["SETBIT with out of range bit offset"]="bit commands: not in the issue's command list"
  ["SETBIT with non-bit argument"]="bit commands: not in the issue's command list"
  ["SETBIT fuzzing"]="bit commands: not in the issue's command list"
  ["GETBIT against non-existing key"]="bit commands: not in the issue's command list"
  ["GETBIT against string-encoded key"]="bit commands: not in the issue's command list"
  ["GETBIT against integer-encoded key"]="bit commands: not in the issue's command list"
  ["COPY basic usage for list"]="OBJECT REFCOUNT: OBJECT is not served (the copy itself works: tests/python/test_types.py)"
  ["COPY basic usage for intset set"]="OBJECT REFCOUNT: OBJECT is not served"
  ["COPY basic usage for hashtable set"]="OBJECT REFCOUNT: OBJECT is not served"
  ["COPY basic usage for listpack sorted set"]="OBJECT REFCOUNT: OBJECT is not served (ZADD and CONFIG SET of encoding thresholds, which stopped it earlier, now work)"
  ["COPY basic usage for skiplist sorted set"]="OBJECT REFCOUNT: OBJECT is not served (ZADD and CONFIG SET of encoding thresholds, which stopped it earlier, now work)"
  ["COPY basic usage for listpack hash"]="OBJECT REFCOUNT: OBJECT is not served"
  ["COPY basic usage for hashtable hash"]="OBJECT REFCOUNT: OBJECT is not served (ZADD and CONFIG SET of encoding thresholds, which stopped it earlier, now work)"
  ["COPY basic usage for stream"]="streams: not planned"
  ["BZMPOP should not blocks on non key arguments - #10762"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP with illegal argument"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP with multiple blocked clients"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN with variadic ZADD"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN with zero timeout should block indefinitely"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN, ZADD + DEL + SET should not awake blocked client"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN, ZADD + DEL should not awake blocked client"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN/BZMPOP_MAX second sorted set has members - listpack"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN/BZMPOP_MAX second sorted set has members - skiplist"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN/BZMPOP_MAX with a single existing sorted set - listpack"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN/BZMPOP_MAX with a single existing sorted set - skiplist"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN/BZMPOP_MAX with multiple existing sorted sets - listpack"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZMPOP_MIN/BZMPOP_MAX with multiple existing sorted sets - skiplist"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOP/BZMPOP against wrong type"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN with same key multiple times should work"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN with variadic ZADD"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN with zero timeout should block indefinitely"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN, ZADD + DEL + SET should not awake blocked client"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN, ZADD + DEL should not awake blocked client"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN/BZPOPMAX second sorted set has members - listpack"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN/BZPOPMAX second sorted set has members - skiplist"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN/BZPOPMAX with a single existing sorted set - listpack"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN/BZPOPMAX with a single existing sorted set - skiplist"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN/BZPOPMAX with multiple existing sorted sets - listpack"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["BZPOPMIN/BZPOPMAX with multiple existing sorted sets - skiplist"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["Basic ZMPOP_MIN/ZMPOP_MAX with a single key - listpack"]="ZMPOP: not built"
  ["Basic ZMPOP_MIN/ZMPOP_MAX with a single key - skiplist"]="ZMPOP: not built"
  ["MULTI/EXEC is isolated from the point of view of BZMPOP_MIN"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["MULTI/EXEC is isolated from the point of view of BZPOPMIN"]="blocking sorted-set pops (BZPOPMIN/BZPOPMAX/BZMPOP): not built"
  ["ZMPOP with illegal argument"]="ZMPOP: not built"
  ["ZMPOP_MIN/ZMPOP_MAX with count - listpack"]="ZMPOP: not built"
  ["ZMPOP_MIN/ZMPOP_MAX with count - skiplist"]="ZMPOP: not built"
  ["ZPOP/ZMPOP against wrong type"]="ZMPOP: not built"
  ["COPY basic usage for stream-cgroups"]="streams: not planned"
  ["Regression for pattern matching very long nested loops"]="a 50,000-byte key: over distcache's key limit (1 KiB, refused with an error)"
  ["Very big payload in GET/SET"]="a 4 MB value: over the 1 MiB value limit (answered with an error; the connection stays open)"
)

# Tests not run against distcache, by test name, with the reason: each one
# makes the server close the test client's connection, and the suite stops
# at the first such exception, so one of them would hide every later test.
declare -A SKIP_TESTS_DEMO=(
)
# Tests that switch the shared connection to RESP3 (HELLO 3) or to raw
# replies and switch back only if they pass: a command distcache lacks
# (ZMPOP, BZPOPMIN, BZMPOP: not built) fails them half-way and every later
# test then reads the wrong protocol.
for encoding in listpack skiplist; do
  for name in "Basic ZMPOP_MIN/ZMPOP_MAX" "ZMPOP_MIN/ZMPOP_MAX with count" "BZPOPMIN/BZPOPMAX" "BZMPOP_MIN/BZMPOP_MAX"; do
    SKIP_TESTS_DEMO["$name - $encoding RESP3"]="leaves the connection in RESP3 when it fails (ZMPOP/BZPOP*/BZMPOP not built)"
  done
done
for name in "BZPOPMIN/BZPOPMAX readraw in RESP3" "ZMPOP readraw in RESP3" "BZMPOP readraw in RESP3" \
  "BZPOPMIN/BZPOPMAX readraw in RESP2" "ZMPOP readraw in RESP2" "BZMPOP readraw in RESP2"; do
  SKIP_TESTS_DEMO["$name"]="leaves the connection in raw mode when it fails (ZMPOP/BZPOP*/BZMPOP not built)"
done

install_missing() {
  local packages=()
  command -v tclsh >/dev/null || packages+=(tcl)
  command -v dpkg-source >/dev/null || packages+=(dpkg-dev)
  if [ "$mode" = redis ]; then
    command -v redis-server >/dev/null || packages+=(redis-server)
    command -v redis-cli >/dev/null || packages+=(redis-tools)
  fi
  local source_list=/etc/apt/sources.list.d/distcache-deb-src.sources
  if [ ! -f "$source_list" ]; then
    # The same suites and mirror as this machine's binary entries.
    sed -n '/^Types: deb$/,/^$/p' /etc/apt/sources.list.d/debian.sources \
      | sed 's/^Types: deb$/Types: deb-src/' > "$source_list"
    apt-get update -qq
  fi
  if [ ${#packages[@]} -gt 0 ]; then
    echo "==> installing ${packages[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  fi
}

fetch_suite() {
  local source_dir
  source_dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'redis-7.0.15*' | head -n 1)
  if [ -z "$source_dir" ]; then
    # To stderr: the caller reads the directory from stdout.
    echo "==> fetching the redis source package (apt-get source)" >&2
    (cd "$work" && apt-get source -qq redis >/dev/null 2>&1)
    source_dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' | head -n 1)
  fi
  case "$source_dir" in
    */redis-7.0.15*) ;;
    *) echo "expected Redis 7.0.15's source package, found: ${source_dir:-nothing}" >&2; exit 1 ;;
  esac
  echo "$source_dir"
}

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

wait_for_port() {
  local port="$1"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$port" >&2
  return 1
}

start_server() {
  case "$mode" in
    redis)
      port=$(( 21000 + RANDOM % 1000 ))
      redis-server --port "$port" --save "" --appendonly no --daemonize no \
        --dir "$work" > "$work/redis-server.log" 2>&1 &
      server_pid=$!
      ;;
    demo)
      if [ -z "${DISTCACHE_BIN:-}" ]; then
        cargo build --quiet --release -p distcache
        DISTCACHE_BIN="$root/target/release/distcache"
      fi
      rm -rf "$work/demo-data"
      # Port bases away from other demos and from a local Redis.
      base=$(( 30000 + (RANDOM % 100) * 100 ))
      "$DISTCACHE_BIN" demo --data-dir "$work/demo-data" --grpc-port "$base" \
        --resp-port $(( base + 40 )) --http-port $(( base + 60 )) > "$work/demo.log" 2>&1 &
      server_pid=$!
      for _ in $(seq 1 300); do
        port=$(sed -n 's/^  RESP 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/demo.log" | head -n 1)
        [ -n "$port" ] && break
        sleep 0.2
      done
      if [ -z "$port" ]; then
        echo "distcache demo printed no RESP address; its log:" >&2
        cat "$work/demo.log" >&2
        exit 1
      fi
      ;;
  esac
  wait_for_port "$port"
}

# The harness's external mode runs `FUNCTION FLUSH` before each unit; distcache
# has no scripting (FUNCTION/EVAL), so that call aborted the whole run at the
# first unit. Tolerate its error in the fetched copy (target/, never committed);
# tests that use functions still fail on their own.
patch_harness() {
  local server_tcl="$1/tests/support/server.tcl"
  if grep -q '^    r function flush$' "$server_tcl"; then
    sed -i 's/^    r function flush$/    catch {r function flush}/' "$server_tcl"
  fi
}

install_missing
source_dir=$(fetch_suite)
patch_harness "$source_dir"
start_server
echo "==> Redis $(basename "$source_dir") test suite against 127.0.0.1:$port ($mode)"

tags=""
for tag in "${SKIP_TAGS[@]}"; do tags+="-$tag "; done
singles=()
for unit in "${UNITS[@]}"; do singles+=(--single "$unit"); done
skips=()
if [ "$mode" = demo ]; then
  for name in "${!SKIP_TESTS_DEMO[@]}"; do
    skips+=(--skiptest "$name")
    echo "    skipped: $name (${SKIP_TESTS_DEMO[$name]})"
  done
fi

log="$work/run-$mode.log"
# The harness's ports (its clients' port is just below --baseport), away
# from other runs on this machine (the default, 21079, is shared by all).
set +e
(cd "$source_dir" && tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" \
  --singledb --ignore-encoding --ignore-digest --durable --tags "$tags" --clients 1 \
  --baseport $(( 22100 + (RANDOM % 40) * 100 )) \
  "${singles[@]}" "${skips[@]}") 2>&1 | tee "$log.raw"
set -e
# The suite colours its tags; strip the escapes before counting.
sed 's/\x1b\[[0-9;]*m//g' "$log.raw" > "$log"

ok=$(grep -c '^\[ok\]' "$log" || true)
errors=$(grep -E '^\[(err|exception)\]' "$log" | sed -E 's/^\[(err|exception)\]: (.*) in tests\/.*$/\2/' || true)
err_count=$(printf '%s' "$errors" | grep -c . || true)
expected=0
unexpected=()
while IFS= read -r name; do
  [ -z "$name" ] && continue
  if [ -n "${EXPECTED[$name]+set}" ]; then
    expected=$((expected + 1))
  else
    unexpected+=("$name")
  fi
done <<< "$errors"

echo
echo "==> redis-compat ($mode): ok $ok, err $err_count (expected $expected, unexpected ${#unexpected[@]})"
for name in "${unexpected[@]}"; do echo "    unexpected: $name"; done
for name in "${!EXPECTED[@]}"; do
  [ "$mode" = redis ] && break
  if grep -qxF "[ok]: $name" <(sed -E 's/ \([0-9]+ ms\)$//' "$log"); then
    echo "    now passes, remove from EXPECTED: $name"
  fi
done
if grep -q '^\[exception\]' "$log"; then
  echo "    the run stopped at an exception; later tests did not run"
fi
echo "$ok passed, $err_count failed"
if [ "$ok" -eq 0 ] && [ "$err_count" -eq 0 ]; then
  echo "redis-compat: the suite ran no test (see $log.raw): a failure, not a pass" >&2
  exit 1
fi
[ ${#unexpected[@]} -eq 0 ]
