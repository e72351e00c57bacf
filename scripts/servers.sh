# Starting and stopping servers on loopback, for the scripts that measure or
# test against them (bench-vs-redis.sh, latency-report.sh, redis-compat.sh).
# Not run on its own: a script sources it from the repository root,
#
#   . scripts/servers.sh
#
# which sets an EXIT trap that stops every process started here (a script
# that needs its own trap calls stop_started from it).

# Processes started by start_redis_server and start_demo, stopped on exit.
started_pids=()

stop_started() {
  local pid
  for pid in "${started_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_started EXIT

# install_if_missing COMMAND PACKAGE: installs Debian's PACKAGE when
# COMMAND is not on the PATH.
install_if_missing() {
  if ! command -v "$1" >/dev/null; then
    echo "==> installing $2" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

# wait_for_port PORT: returns once something accepts connections on
# 127.0.0.1:PORT; fails with a message after 60 s.
wait_for_port() {
  local port="$1"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$port after 60 s" >&2
  return 1
}

# start_redis_server PORT DIR: Debian's redis-server on 127.0.0.1:PORT, no
# persistence, its files and its log (redis-server.log) in DIR; returns
# once it listens.
start_redis_server() {
  local port="$1" dir="$2"
  redis-server --port "$port" --save "" --appendonly no --daemonize no --dir "$dir" \
    > "$dir/redis-server.log" 2>&1 &
  started_pids+=($!)
  wait_for_port "$port"
}

# start_redis_cluster PORT DIR: a Redis Cluster of three masters (no
# replicas, no persistence) on 127.0.0.1:PORT, PORT+1 and PORT+2, each
# with its files and log in DIR/redis-cluster-<port>; returns once every
# slot is served.
start_redis_cluster() {
  local port="$1" dir="$2" p
  for p in "$port" $(( port + 1 )) $(( port + 2 )); do
    rm -rf "$dir/redis-cluster-$p"
    mkdir -p "$dir/redis-cluster-$p"
    redis-server --port "$p" --cluster-enabled yes --cluster-config-file nodes.conf \
      --save "" --appendonly no --daemonize no --dir "$dir/redis-cluster-$p" \
      > "$dir/redis-cluster-$p/redis-server.log" 2>&1 &
    started_pids+=($!)
    wait_for_port "$p"
  done
  redis-cli --cluster create "127.0.0.1:$port" "127.0.0.1:$(( port + 1 ))" \
    "127.0.0.1:$(( port + 2 ))" --cluster-replicas 0 --cluster-yes > "$dir/redis-cluster-create.log" 2>&1
  for _ in $(seq 1 150); do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && return 0
    sleep 0.2
  done
  echo "the Redis Cluster on $port..$(( port + 2 )) did not come up: $dir/redis-cluster-create.log" >&2
  return 1
}

# start_demo DIR [DEMO FLAGS...]: `distcache demo` (the release build,
# built here unless DISTCACHE_BIN names a binary) with its data in
# DIR/demo-data and its log in DIR/demo.log, on a port block away from
# other demos and from Redis, with any further flags (`--groups 1`...).
# Sets demo_resp_port to the RESP port the demo printed, demo_http_port to
# node 1's HTTP port and demo_pid, and returns once it listens.
start_demo() {
  local dir="$1"
  shift
  if [ -z "${DISTCACHE_BIN:-}" ]; then
    cargo build --quiet --release -p distcache
    DISTCACHE_BIN="$(pwd)/target/release/distcache"
  fi
  local base attempt
  # The block is chosen at random in the kernel's ephemeral range, where a
  # client connection can hold one of its ports: a start that finds a port
  # taken is tried again on another block.
  for attempt in 1 2 3; do
    # The log goes first: the background start truncates it only when it
    # runs, and the wait below must not read an earlier demo's ports.
    rm -rf "$dir/demo-data" "$dir/demo.log"
    base=$(( 30000 + (RANDOM % 100) * 100 ))
    "$DISTCACHE_BIN" demo --data-dir "$dir/demo-data" --grpc-port "$base" \
      --resp-port $(( base + 40 )) --http-port $(( base + 60 )) "$@" > "$dir/demo.log" 2>&1 &
    demo_pid=$!
    demo_http_port=$(( base + 60 ))
    started_pids+=("$demo_pid")
    demo_resp_port=""
    for _ in $(seq 1 300); do
      demo_resp_port=$(sed -n 's/^  RESP 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$dir/demo.log" | head -n 1)
      [ -n "$demo_resp_port" ] && break
      if ! kill -0 "$demo_pid" 2>/dev/null; then break; fi
      sleep 0.2
    done
    [ -n "$demo_resp_port" ] && break
    grep -q "Address already in use" "$dir/demo.log" || break
    echo "distcache demo: a port of block $base was taken (attempt $attempt of 3)" >&2
  done
  if [ -z "$demo_resp_port" ]; then
    echo "distcache demo printed no RESP address within 60 s; its log:" >&2
    cat "$dir/demo.log" >&2
    return 1
  fi
  wait_for_port "$demo_resp_port"
}
