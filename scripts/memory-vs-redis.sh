#!/usr/bin/env bash
# Memory per element, distcache against redis-server, in one run.
#
#   scripts/memory-vs-redis.sh                 # 100,000 elements per type
#   ELEMENTS=20000 scripts/memory-vs-redis.sh  # a quicker run
#   DISTCACHE_BIN=target/release/distcache scripts/memory-vs-redis.sh
#   TYPES="string" scripts/memory-vs-redis.sh  # some types only
#   RSS_TRACE=1 scripts/memory-vs-redis.sh     # also distcache's RSS every
#                                              # second of the load, in
#                                              # target/memory-vs-redis/rss-TYPE.tsv
#
# For each type (strings; hashes, lists, sets and sorted sets of 100
# elements each) a fresh redis-server (no persistence) and a fresh
# `distcache demo --groups 1 --replicas 1` (one data replica, so the
# process holds each element once, beside a controller replica) are loaded
# with the same commands through `redis-cli --pipe`: 16-byte keys or
# members, 100-byte values. Printed per element:
#   - redis-server: the growth of INFO's used_memory and of its RSS;
#   - distcache: the growth of the process's RSS once settled (the store,
#     the Raft log kept until the next snapshot at 8 MiB, allocator slack:
#     what a user pays between snapshots), its peak during the load
#     (VmHWM: a snapshot being encoded and written copies the state, so
#     this is what a host must have room for), and the store's own
#     accounting (distcache_shard_bytes summed, the figure capacity and
#     eviction use).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/target/memory-vs-redis"
mkdir -p "$work"

ELEMENTS="${ELEMENTS:-100000}"
TYPES="${TYPES:-string hash list set zset}"
RSS_TRACE="${RSS_TRACE:-0}"
PER_KEY=100

. scripts/servers.sh
install_if_missing redis-server redis-server
install_if_missing redis-cli redis-tools

rss_bytes() { awk '/^VmRSS:/ { printf "%d\n", $2 * 1024 }' "/proc/$1/status"; }
peak_rss_bytes() { awk '/^VmHWM:/ { printf "%d\n", $2 * 1024 }' "/proc/$1/status"; }

# settled_rss_bytes PID: the lowest RSS over 20 s after the load, sampled
# every second: a snapshot the load's last writes started (its copies
# double RSS for up to about 10 s at 1M keys) has been written by then,
# and what the allocator still holds afterwards counts.
settled_rss_bytes() {
  local lowest current
  lowest=$(rss_bytes "$1")
  for _ in $(seq 1 20); do
    sleep 1
    current=$(rss_bytes "$1")
    [ "$current" -lt "$lowest" ] && lowest=$current
  done
  echo "$lowest"
}

# commands TYPE: the load for TYPE as redis-cli --pipe input (RESP).
commands() {
  awk -v type="$1" -v n="$ELEMENTS" -v per="$PER_KEY" 'BEGIN {
    value = sprintf("%0100d", 7)
    for (i = 0; i < n; i++) {
      key = sprintf("k:%014d", int(i / per)); member = sprintf("m:%014d", i)
      if (type == "string") { args[1] = "SET"; args[2] = sprintf("k:%014d", i); args[3] = value; c = 3 }
      else if (type == "hash") { args[1] = "HSET"; args[2] = key; args[3] = member; args[4] = value; c = 4 }
      else if (type == "list") { args[1] = "RPUSH"; args[2] = key; args[3] = value; c = 3 }
      else if (type == "set") { args[1] = "SADD"; args[2] = key; args[3] = member; c = 3 }
      else { args[1] = "ZADD"; args[2] = key; args[3] = i; args[4] = member; c = 4 }
      printf "*%d\r\n", c
      for (j = 1; j <= c; j++) printf "$%d\r\n%s\r\n", length(args[j]), args[j]
    }
  }'
}

load() {
  local port="$1" file="$2"
  local answer
  answer=$(redis-cli -p "$port" --pipe < "$file" 2>&1 | tail -n 1)
  case "$answer" in
    *"errors: 0, replies: $ELEMENTS"*) ;;
    *) echo "load on port $port: $answer" >&2; exit 1 ;;
  esac
}

redis_used_memory() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }

store_bytes() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^distcache_shard_bytes\{/ { sum += $2 } END { printf "%d\n", sum }'
}

printf '\n%-7s %10s %12s %12s %14s %14s %14s %9s\n' type elements "redis used" "redis RSS" "distcache RSS" "distcache peak" "store bytes" "RSS ratio"
for type in $TYPES; do
  file="$work/$type.resp"
  commands "$type" > "$file"

  redis_port=$(( 22000 + RANDOM % 1000 ))
  start_redis_server "$redis_port" "$work"
  redis_pid=${started_pids[-1]}
  used_before=$(redis_used_memory "$redis_port"); rss_before=$(rss_bytes "$redis_pid")
  load "$redis_port" "$file"
  used_after=$(redis_used_memory "$redis_port"); rss_after=$(rss_bytes "$redis_pid")

  start_demo "$work" --groups 1 --replicas 1
  # The group elects and takes its shards before the first write is served.
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$demo_resp_port" set memory-probe 1 2>/dev/null)" = OK ] && break
    sleep 0.2
  done
  redis-cli -p "$demo_resp_port" del memory-probe > /dev/null
  sleep 1
  demo_before=$(rss_bytes "$demo_pid"); store_before=$(store_bytes "$demo_http_port")
  tracer_pid=
  if [ "$RSS_TRACE" = 1 ]; then
    # Seconds since the load began, then the RSS in bytes.
    ( started=$(date +%s)
      while kill -0 "$demo_pid" 2>/dev/null; do
        printf '%d\t%d\n' $(( $(date +%s) - started )) "$(rss_bytes "$demo_pid")"
        sleep 1
      done ) > "$work/rss-$type.tsv" 2>/dev/null &
    tracer_pid=$!
  fi
  load "$demo_resp_port" "$file"
  sleep 2
  demo_after=$(settled_rss_bytes "$demo_pid"); demo_peak=$(peak_rss_bytes "$demo_pid")
  store_after=$(store_bytes "$demo_http_port")
  if [ -n "$tracer_pid" ]; then
    curl -s "http://127.0.0.1:$demo_http_port/metrics" > "$work/metrics-$type.txt"
    kill "$tracer_pid" 2>/dev/null || true
  fi
  stop_started
  started_pids=()

  awk -v t="$type" -v n="$ELEMENTS" -v ru=$(( used_after - used_before )) -v rr=$(( rss_after - rss_before )) \
      -v dr=$(( demo_after - demo_before )) -v dp=$(( demo_peak - demo_before )) \
      -v ds=$(( store_after - store_before )) 'BEGIN {
    printf "%-7s %10d %12.1f %12.1f %14.1f %14.1f %14.1f %8.2fx\n", t, n, ru / n, rr / n, dr / n, dp / n, ds / n, (rr > 0 ? dr / rr : 0)
  }'
done
echo
echo "(bytes per element; $ELEMENTS elements per type, $PER_KEY per collection key; $(nproc) cores, $(date -u +%Y-%m-%d))"
