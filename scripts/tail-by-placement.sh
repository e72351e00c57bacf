#!/usr/bin/env bash
# GET's tail at 50 clients by where the processes run: distcache's demo in
# cluster mode against a Redis Cluster of three masters, in one run. The
# measurement behind docs/status.md's "GET's p99 is the cores'
# time-sharing" (2026-12-07, fifth session).
#
#   scripts/tail-by-placement.sh
#   RUNS=3 REQUESTS=300000 scripts/tail-by-placement.sh
#   DISTCACHE_BIN=target/release/distcache scripts/tail-by-placement.sh
#
# Placements (`taskset`, every thread of a server):
#   - free:   nothing pinned;
#   - pinned: the servers on core 0, redis-benchmark on core 1;
# and for distcache also with one tokio worker (TOKIO_WORKER_THREADS=1).
# Each server is filled first (100,000 SETs over 100,000 keys, 100-byte
# values), then `redis-benchmark --cluster -c 50 -t get -d 100 -r 100000`
# runs RUNS times. Printed per run: GET/s, p50 and p99 in ms.
#
# Needs two cores at least (the placements use cores 0 and 1).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(pwd)/target/tail-by-placement"
mkdir -p "$work"
RUNS="${RUNS:-2}"
REQUESTS="${REQUESTS:-200000}"
. scripts/servers.sh
install_if_missing redis-server redis-server
install_if_missing redis-cli redis-tools
install_if_missing taskset util-linux
if [ "$(nproc)" -lt 2 ]; then
  echo "needs at least two cores (it pins servers to core 0 and the client to core 1)" >&2
  exit 1
fi

# pin CORE PID...: every thread of each PID on CORE (threads started
# later inherit it).
pin() {
  local core="$1" pid
  shift
  for pid in "$@"; do taskset -a -pc "$core" "$pid" > /dev/null; done
}

# fill PORT: the keys the GETs read.
fill() {
  redis-benchmark -p "$1" --cluster -c 50 -n 100000 -t set -d 100 -r 100000 -q > /dev/null 2>&1
}

# gets SERVER PLACEMENT PORT CLIENT_CORE: RUNS runs of GETs, one line each.
gets() {
  local server="$1" placement="$2" port="$3" client_core="$4" run client=()
  [ "$client_core" != any ] && client=(taskset -c "$client_core")
  for run in $(seq 1 "$RUNS"); do
    "${client[@]}" redis-benchmark -p "$port" --cluster -c 50 -n "$REQUESTS" -t get -d 100 \
        -r 100000 --csv 2>/dev/null |
      awk -F, -v s="$server" -v p="$placement" -v r="$run" '/^"GET"/ {
        gsub(/"/, ""); printf "%-28s %-7s %3d %10.0f %8.3f %8.3f\n", s, p, r, $2, $5, $7 }'
  done
}

# stop PID...: stops servers started here before the next ones run.
stop() {
  local pid
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

printf '%-28s %-7s %3s %10s %8s %8s\n' server placement run "GET/s" "p50 ms" "p99 ms"

first=${#started_pids[@]}
start_redis_cluster 23301 "$work"
cluster_pids=("${started_pids[@]:$first}")
fill 23301
gets "Redis Cluster (3 masters)" free 23301 any
pin 0 "${cluster_pids[@]}"
gets "Redis Cluster (3 masters)" pinned 23301 1
stop "${cluster_pids[@]}"

for workers in default 1; do
  for placement in free pinned; do
    if [ "$workers" = default ]; then
      start_demo "$work" --cluster-mode
      label="distcache"
    else
      TOKIO_WORKER_THREADS=1 start_demo "$work" --cluster-mode
      label="distcache, 1 worker"
    fi
    client_core=any
    if [ "$placement" = pinned ]; then
      pin 0 "$demo_pid"
      client_core=1
    fi
    fill "$demo_resp_port"
    gets "$label" "$placement" "$demo_resp_port" "$client_core"
    stop "$demo_pid"
  done
done
