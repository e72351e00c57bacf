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
#   3. runs unit/type/string, unit/type/incr, unit/expire, unit/keyspace,
#      unit/type/list, unit/type/hash, unit/type/set and unit/type/zset
#      (REDIS_COMPAT_UNITS="..." picks others) in external mode (--host/--port --singledb --ignore-encoding
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

UNITS=(unit/type/string unit/type/incr unit/expire unit/keyspace unit/type/list unit/type/hash unit/type/set unit/type/zset)
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
  ["Linked LMOVEs"]="a blocked client is served after the push is answered (its pop is a log entry of its own), not before as in Redis; the test reads the lists right after the push"
  ["Circular BRPOPLPUSH"]="waits for INFO blocked_clients to be exactly 1, then 2; here it was not within its 1 s (a client of an earlier test still blocked or just finishing; not fully diagnosed)"
  ["BRPOPLPUSH timeout"]="waits for INFO blocked_clients to be exactly 1, then 0: a client left blocked by an earlier failed test counts too"
  ["BLPOP: with 0.001 timeout should not block indefinitely"]="waits for INFO blocked_clients 0: a client left blocked by an earlier failed test counts too"
  ["BRPOP: with 0.001 timeout should not block indefinitely"]="waits for INFO blocked_clients 0: a client left blocked by an earlier failed test counts too"
  ["BLMPOP_LEFT: with 0.001 timeout should not block indefinitely"]="waits for INFO blocked_clients 0: a client left blocked by an earlier failed test counts too"
  ["BLMPOP_RIGHT: with 0.001 timeout should not block indefinitely"]="waits for INFO blocked_clients 0: a client left blocked by an earlier failed test counts too"
  ["BRPOP: with non-integer timeout"]="a 0.1 s timeout: the pop, the wait on the leader and the push take longer than that on the debug build (timing)"
  ["BLMPOP_LEFT: with non-integer timeout"]="a 0.1 s timeout: the pop, the wait on the leader and the push take longer than that on the debug build (timing)"
  ["BLPOP: with non-integer timeout"]="a 0.1 s timeout: the pop, the wait on the leader and the push take longer than that on the debug build (timing)"
  ["BLMPOP_RIGHT: with non-integer timeout"]="a 0.1 s timeout: the pop, the wait on the leader and the push take longer than that on the debug build (timing)"
  ["SMOVE only notify dstset when the addition is successful"]="WATCH/MULTI/EXEC: not built"
  ["BRPOPLPUSH inside a transaction"]="MULTI/EXEC: not built"
  ["BLPOP inside a transaction"]="MULTI/EXEC: not built"
  ["BLMPOP_LEFT inside a transaction"]="MULTI/EXEC: not built"
  ["BLPOP when result key is created by SORT..STORE"]="SORT: not built"
  ["BLMPOP_LEFT when result key is created by SORT..STORE"]="SORT: not built"
  ["BLMPOP_LEFT when new key is moved into place"]="follows 'BLPOP when result key is created by SORT..STORE', which fails (no SORT) with its BLPOP on foo{t} still blocked: the RENAME serves that older client first (hij), this one gets def"
  ["BLMPOP_LEFT: with zero timeout should block indefinitely"]="follows 'with non-integer timeout' (expected above): when that pop timed out before its push, the pushed foo is still in blist1, so this pop finds it and never blocks"
  ["BLMPOP_RIGHT: with zero timeout should block indefinitely"]="follows 'with non-integer timeout' (expected above): when that pop timed out before its push, the pushed foo is still in blist1, so this pop finds it and never blocks"
  ["Hash ziplist of various encodings"]="DUMP/RESTORE: not built"
  ["Hash ziplist of various encodings - sanitize dump"]="DUMP/RESTORE: not built"
  ["List ziplist of various encodings"]="DUMP/RESTORE: not built"
  ["List ziplist of various encodings - sanitize dump"]="DUMP/RESTORE: not built"
  ["BZMPOP should not blocks on non key arguments - #10762"]="waits for INFO blocked_clients to be exactly 1, then 2: a client left blocked by an earlier failed test counts too"
  ["ZRANDMEMBER - listpack"]="the two clients the test above leaves blocked on myzset take its members (listed until a run shows it passing)"
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
  ["COPY basic usage for stream"]="streams: not planned"
  ["COPY basic usage for stream-cgroups"]="streams: not planned"
  ["Regression for pattern matching very long nested loops"]="a 50,000-byte key: over distcache's key limit (1 KiB, refused with an error)"
  ["Very big payload in GET/SET"]="a 4 MB value: over the 1 MiB value limit (answered with an error; the connection stays open)"
)

# Tests not run against distcache, by test name, with the reason: each one
# makes the server close the test client's connection, and the suite stops
# at the first such exception, so one of them would hide every later test.
declare -A SKIP_TESTS_DEMO=(
)
# Tests that leave a deferring client blocked in BLPOP/BZPOPMIN when they fail
# at MULTI (no transactions here): that client stays blocked for the rest of
# the run, and every later test that waits for exactly N blocked clients
# (INFO's blocked_clients) would then fail too.
for pop in BLPOP BLMPOP_LEFT; do
  SKIP_TESTS_DEMO["$pop, LPUSH + DEL should not awake blocked client"]="MULTI: not built; leaves its client blocked"
  SKIP_TESTS_DEMO["$pop, LPUSH + DEL + SET should not awake blocked client"]="MULTI: not built; leaves its client blocked"
  SKIP_TESTS_DEMO["MULTI/EXEC is isolated from the point of view of $pop"]="MULTI: not built; leaves its client blocked"
done
SKIP_TESTS_DEMO["PUSH resulting from BRPOPLPUSH affect WATCH"]="WATCH: not built; leaves its client blocked on srclist{t}, which then takes a later test's elements"
SKIP_TESTS_DEMO["BRPOPLPUSH does not affect WATCH while still blocked"]="WATCH: not built; leaves its client blocked on srclist{t}, which then takes a later test's elements"
SKIP_TESTS_DEMO["client unblock tests"]="CLIENT UNBLOCK: not built; leaves its client blocked"
SKIP_TESTS_DEMO["BLMPOP with multiple blocked clients"]="MULTI: not built; leaves four clients blocked"
SKIP_TESTS_DEMO["BZMPOP with multiple blocked clients"]="MULTI: not built; leaves four clients blocked"
# Two clients block on one list at nearly the same instant, with no wait
# between them: here each pop is its own log entry from its own connection, so
# which one blocked first is not ordered, and if the second is served first the
# test waits forever for the first.
SKIP_TESTS_DEMO["BRPOPLPUSH with multiple blocked clients"]="two clients blocked at the same instant are not ordered; the test then waits forever"
for pop in BZPOPMIN BZMPOP_MIN; do
  SKIP_TESTS_DEMO["$pop, ZADD + DEL should not awake blocked client"]="MULTI: not built; leaves its client blocked"
  SKIP_TESTS_DEMO["$pop, ZADD + DEL + SET should not awake blocked client"]="MULTI: not built; leaves its client blocked"
  SKIP_TESTS_DEMO["MULTI/EXEC is isolated from the point of view of $pop"]="MULTI: not built; leaves its client blocked"
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

. scripts/servers.sh

start_server() {
  case "$mode" in
    redis)
      port=$(( 21000 + RANDOM % 1000 ))
      start_redis_server "$port" "$work"
      ;;
    demo)
      start_demo "$work"
      port="$demo_resp_port"
      ;;
    external)
      wait_for_port "$port"
      ;;
  esac
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
