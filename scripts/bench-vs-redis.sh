#!/usr/bin/env bash
# distcache against redis-server, side by side, in one run.
#
#   scripts/bench-vs-redis.sh                 # -c 50 -n 200000 -t set,get,incr -d 100, then with -P 16
#   REQUESTS=20000 scripts/bench-vs-redis.sh  # a quicker run
#   DISTCACHE_PORT=6380 scripts/bench-vs-redis.sh   # an already running distcache RESP port
#
# Starts Debian's redis-server (no persistence) and `distcache demo` (three
# data groups of three replicas: every write is a linearizable Raft write)
# on loopback, runs redis-benchmark against both with the same parameters,
# and prints requests per second and the ratio distcache / redis.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/target/bench-vs-redis"
mkdir -p "$work"

REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
TESTS="${TESTS:-set,get,incr}"
VALUE_BYTES="${VALUE_BYTES:-100}"

for tool in redis-server redis-benchmark; do
  if ! command -v "$tool" >/dev/null; then
    echo "==> installing redis-server and redis-tools"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
    break
  fi
done

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_for_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

redis_port=$(( 22000 + RANDOM % 1000 ))
redis-server --port "$redis_port" --save "" --appendonly no --dir "$work" > "$work/redis.log" 2>&1 &
pids+=($!)
wait_for_port "$redis_port"

distcache_port="${DISTCACHE_PORT:-}"
if [ -z "$distcache_port" ]; then
  if [ -z "${DISTCACHE_BIN:-}" ]; then
    cargo build --quiet --release -p distcache
    DISTCACHE_BIN="$root/target/release/distcache"
  fi
  rm -rf "$work/demo-data"
  # Port bases away from other demos and from the redis-server above.
  base=$(( 30000 + (RANDOM % 100) * 100 ))
  "$DISTCACHE_BIN" demo --data-dir "$work/demo-data" --grpc-port "$base" \
    --resp-port $(( base + 40 )) --http-port $(( base + 60 )) > "$work/demo.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    distcache_port=$(sed -n 's/^  RESP 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/demo.log" | head -n 1)
    [ -n "$distcache_port" ] && break
    sleep 0.2
  done
  [ -n "$distcache_port" ] || { echo "distcache demo printed no RESP address" >&2; cat "$work/demo.log" >&2; exit 1; }
fi
wait_for_port "$distcache_port"

# Runs redis-benchmark and prints "TEST rps" lines.
bench() {
  local port="$1"; shift
  redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$REQUESTS" -t "$TESTS" \
    -d "$VALUE_BYTES" --csv "$@" 2>/dev/null \
    | awk -F'","' 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $2); print $1, $2 }'
}

printf '\n%-8s %-10s %14s %14s %8s\n' pipeline test "redis rps" "distcache rps" ratio
for pipeline in 1 16; do
  declare -A redis_rps=() distcache_rps=()
  while read -r test rps; do redis_rps[$test]=$rps; done < <(bench "$redis_port" -P "$pipeline")
  while read -r test rps; do distcache_rps[$test]=$rps; done < <(bench "$distcache_port" -P "$pipeline")
  for test in $(echo "$TESTS" | tr 'a-z,' 'A-Z '); do
    [ -n "${redis_rps[$test]+set}" ] || continue
    ours="${distcache_rps[$test]:-0}"
    printf '%-8s %-10s %14s %14s %7.2fx\n' "$pipeline" "$test" "${redis_rps[$test]}" "$ours" \
      "$(awk -v a="$ours" -v b="${redis_rps[$test]}" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  done
  unset redis_rps distcache_rps
done
echo
echo "(-c $CLIENTS -n $REQUESTS -d $VALUE_BYTES, loopback, $(nproc) cores, $(date -u +%Y-%m-%d))"
