#!/usr/bin/env bash
# distcache against redis-server, side by side, in one run.
#
#   scripts/bench-vs-redis.sh                 # -c 50 -n 200000 -t set,get,incr -d 100 -r 100000, then with -P 16
#   REQUESTS=20000 scripts/bench-vs-redis.sh  # a quicker run
#   DISTCACHE_PORT=6380 scripts/bench-vs-redis.sh   # an already running distcache RESP port
#   DEMO_FLAGS=--async-replication scripts/bench-vs-redis.sh   # flags for the demo it starts
#   CLUSTER=1 scripts/bench-vs-redis.sh       # cluster mode: clients route each key, as Redis Cluster's do
#
# Starts Debian's redis-server (no persistence) and `distcache demo` (three
# data groups of three replicas: every write is a linearizable Raft write)
# on loopback, runs redis-benchmark against both with the same parameters,
# and prints requests per second, each side's p50 and p99 latency (ms) and
# the throughput ratio distcache / redis; then the
# same for ZRANGE of a 100-member sorted set (ZRANGE=0 skips it). List and
# set tests are redis-benchmark's own, e.g.
# TESTS=lpush,lpop,sadd,hset,zadd,lrange_100 (issue 20).
#
# CLUSTER=1 starts the demo with --cluster-mode and runs redis-benchmark
# with --cluster against it: each client learns the slot map (CLUSTER
# NODES) and sends its commands to the node that leads their group, as a
# Redis Cluster client does, instead of to one node that forwards two
# commands of three to another group's leader. It also starts a Redis
# Cluster of three masters (no replicas, no persistence) and runs the
# same redis-benchmark --cluster against it: the peer in the same client
# mode, printed as a second comparison (`cluster rps`, its p50 and p99,
# and distcache's ratio to it) beside the standalone redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/target/bench-vs-redis"
mkdir -p "$work"

REQUESTS="${REQUESTS:-200000}"
CLIENTS="${CLIENTS:-50}"
TESTS="${TESTS:-set,get,incr}"
VALUE_BYTES="${VALUE_BYTES:-100}"
# redis-benchmark's -r: keys drawn from this many (key:000000000000 ...), so
# the load spreads over the shards and groups as a real one does; without
# it every SET/GET/INCR names one key, which sits in one shard of one group,
# and a pipeline of one client's commands on one key runs in order, one
# after the other (KEYSPACE=0: that single key).
KEYSPACE="${KEYSPACE:-100000}"
keyspace_args=()
[ "$KEYSPACE" -gt 0 ] && keyspace_args=(-r "$KEYSPACE")

. scripts/servers.sh
install_if_missing redis-server redis-server
install_if_missing redis-benchmark redis-tools

redis_port=$(( 22000 + RANDOM % 1000 ))
start_redis_server "$redis_port" "$work"

cluster_args=()
cli_cluster_args=()
demo_cluster_flag=""
redis_cluster_port=""
if [ "${CLUSTER:-0}" = 1 ]; then
  cluster_args=(--cluster)
  cli_cluster_args=(-c)
  demo_cluster_flag=--cluster-mode
  redis_cluster_port=$(( redis_port + 1000 ))
  start_redis_cluster "$redis_cluster_port" "$work"
fi

distcache_port="${DISTCACHE_PORT:-}"
if [ -z "$distcache_port" ]; then
  # shellcheck disable=SC2086 # DEMO_FLAGS is a list of flags
  start_demo "$work" ${DEMO_FLAGS:-} $demo_cluster_flag
  distcache_port="$demo_resp_port"
fi
wait_for_port "$distcache_port"

# Runs redis-benchmark and prints "TEST rps p50 p99" lines (its CSV:
# test, rps, avg, min, p50, p95, p99, max latency in ms).
bench() {
  local port="$1"; shift
  redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$REQUESTS" -t "$TESTS" \
    -d "$VALUE_BYTES" "${keyspace_args[@]}" --csv "$@" 2>/dev/null \
    | awk -F, '/^"/ && !/^"test"/ { gsub(/"/, ""); split($1, name, " "); print name[1], $2, $5, $7 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > 0 ? a / b : 0) }'; }

printf '\n%-8s %-10s %12s %9s %9s %14s %9s %9s %8s' pipeline test "redis rps" p50 p99 \
  "distcache rps" p50 p99 ratio
[ -n "$redis_cluster_port" ] && printf ' %12s %9s %9s %8s' "cluster rps" p50 p99 ratio
echo
for pipeline in 1 16; do
  declare -A redis_rps=() distcache_rps=() cluster_rps=() redis_lat=() distcache_lat=() cluster_lat=()
  while read -r test rps p50 p99; do
    redis_rps[$test]=$rps; redis_lat[$test]="$p50 $p99"
  done < <(bench "$redis_port" -P "$pipeline")
  while read -r test rps p50 p99; do
    distcache_rps[$test]=$rps; distcache_lat[$test]="$p50 $p99"
  done < <(bench "$distcache_port" "${cluster_args[@]}" -P "$pipeline")
  if [ -n "$redis_cluster_port" ]; then
    while read -r test rps p50 p99; do
      cluster_rps[$test]=$rps; cluster_lat[$test]="$p50 $p99"
    done < <(bench "$redis_cluster_port" --cluster -P "$pipeline")
  fi
  for test in $(echo "$TESTS" | tr 'a-z,' 'A-Z '); do
    [ -n "${redis_rps[$test]+set}" ] || continue
    ours="${distcache_rps[$test]:-0}"
    # shellcheck disable=SC2086
    printf '%-8s %-10s %12s %9s %9s %14s %9s %9s %7.2fx' "$pipeline" "$test" \
      "${redis_rps[$test]}" ${redis_lat[$test]} "$ours" ${distcache_lat[$test]:-- -} \
      "$(ratio "$ours" "${redis_rps[$test]}")"
    if [ -n "$redis_cluster_port" ]; then
      # shellcheck disable=SC2086
      printf ' %12s %9s %9s %7.2fx' "${cluster_rps[$test]:-0}" ${cluster_lat[$test]:-- -} \
        "$(ratio "$ours" "${cluster_rps[$test]:-0}")"
    fi
    echo
  done
  unset redis_rps distcache_rps cluster_rps redis_lat distcache_lat cluster_lat
  # ZRANGE over a 100-member sorted set (redis-benchmark has no test of its
  # own for it): the same command line against both servers.
  if [ "${ZRANGE:-1}" = 1 ]; then
    redis-cli -h 127.0.0.1 -p "$redis_port" del bench:zset >/dev/null
    redis-cli "${cli_cluster_args[@]}" -h 127.0.0.1 -p "$distcache_port" del bench:zset >/dev/null
    for port in "$redis_port" "$distcache_port"; do
      # shellcheck disable=SC2046
      redis-cli "${cli_cluster_args[@]}" -h 127.0.0.1 -p "$port" zadd bench:zset $(seq 1 100 | awk '{ printf "%d m%d ", $1, $1 }') >/dev/null
    done
    zrange() {
      redis-benchmark -h 127.0.0.1 -p "$1" -c "$CLIENTS" -n "$REQUESTS" -P "$pipeline" --csv \
        zrange bench:zset 0 99 2>/dev/null | awk -F, '/^"/ && !/^"test"/ { gsub(/"/, ""); print $2, $5, $7 }'
    }
    read -r theirs their_p50 their_p99 < <(zrange "$redis_port")
    # In cluster mode, straight to the node that leads the key's group
    # (redis-benchmark --cluster routes only the keys it makes up itself).
    zrange_port="$distcache_port"
    owner=$(redis-cli -h 127.0.0.1 -p "$distcache_port" type bench:zset 2>&1 || true)
    case "$owner" in *MOVED*) zrange_port="${owner##*:}" ;; esac
    read -r ours our_p50 our_p99 < <(zrange "$zrange_port") || true
    printf '%-8s %-10s %12s %9s %9s %14s %9s %9s %7.2fx\n' "$pipeline" "ZRANGE_100" \
      "$theirs" "$their_p50" "$their_p99" "${ours:-0}" "${our_p50:--}" "${our_p99:--}" \
      "$(awk -v a="${ours:-0}" -v b="$theirs" 'BEGIN { print (b > 0 ? a / b : 0) }')"
  fi
done
echo
mode="proxy: every command to one node"
[ "${CLUSTER:-0}" = 1 ] && mode="cluster mode: clients route by slot; cluster = a Redis Cluster of three masters, no replicas"
echo "(-c $CLIENTS -n $REQUESTS -d $VALUE_BYTES -r $KEYSPACE, distcache $mode, loopback, $(nproc) cores, $(date -u +%Y-%m-%d))"
