#!/usr/bin/env bash
# Release-build latency report: p50/p99 of get and set through gRPC and
# through RESP on `distcache demo` (in-process, 3 data groups x 3
# replicas), the cost of one forwarding hop, and redis-server through the
# same RESP client, in one run.
#
#   scripts/latency-report.sh                  # 2000 sequential requests per case
#   REQUESTS=5000 scripts/latency-report.sh
#   PROFILE=dev scripts/latency-report.sh       # the test build (opt-level 1), no release build
#
# Prints the date, the machine (cores) and its load average before and
# after, then the bench's table (crates/distcache/benches/grpc_latency.rs);
# the whole output is also kept in target/latency-report/report.txt. Copy
# the numbers with the date and load into docs/status.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/target/latency-report"
mkdir -p "$work"
REQUESTS="${REQUESTS:-2000}"
PROFILE="${PROFILE:-bench}"   # cargo's bench profile is the release one

. scripts/servers.sh
install_if_missing redis-server redis-server

echo "==> building the bench (profile $PROFILE)"
nice cargo bench --quiet --profile "$PROFILE" -p distcache --bench grpc_latency --no-run

redis_port=$(( 22000 + RANDOM % 1000 ))
start_redis_server "$redis_port" "$work"

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine: $(nproc) cores, $(uname -sr)"
  echo "profile: $PROFILE"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  REQUESTS="$REQUESTS" REDIS_PORT="$redis_port" \
    cargo bench --quiet --profile "$PROFILE" -p distcache --bench grpc_latency 2>/dev/null
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$work/report.txt"
