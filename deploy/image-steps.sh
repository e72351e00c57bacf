#!/usr/bin/env bash
# The Dockerfile's steps without a container builder (this machine can run
# buildah, but cannot pull the Rust and Debian base images: no registry is
# reachable). Same steps, same files, checked on the host:
#
#   1. build stage: copy the build context the Dockerfile COPYs (what
#      .dockerignore leaves of Cargo.toml Cargo.lock rustfmt.toml clippy.toml
#      crates proto) and run its `cargo build --locked --release -p distcache`
#      there, then `install` the binary as /out/distcache;
#   2. run stage: lay out the files the run stage copies (binary, entrypoint,
#      default config) under a root directory, as the image has them;
#   3. smoke: `distcache --version`; the entrypoint's template step (dry
#      run); the node started through the entrypoint with the image's default
#      configuration (ports moved to free ones) answers `distcache status`
#      and, if the node serves HTTP, the HEALTHCHECK's GET /livez.
#
#   deploy/image-steps.sh [OUT]   # default OUT=target/image-steps
#
# IMAGE_STEPS_TARGET_DIR: cargo's target directory for step 1 (default:
# OUT/target, its own). Not the repository's target/: cargo would record
# the copied context's files as the sources of the repository's release
# artifacts, and a later `cargo build --release` in the repository would
# find them fresh whatever changed since, and link stale code.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${1:-target/image-steps}
mkdir -p "$out"
out=$(cd "$out" && pwd)
target_dir=${IMAGE_STEPS_TARGET_DIR:-$out/target}

say() { printf 'image-steps: %s\n' "$*"; }

# --- 1. build stage -------------------------------------------------------
context=$out/context
rm -rf "$context" "$out/rootfs"
mkdir -p "$context"
say "build context in $context"
cp Cargo.toml Cargo.lock rustfmt.toml clippy.toml "$context/"
# .dockerignore drops every target/ directory.
tar -C "$root" --exclude=target --exclude='*/target' -cf - crates proto | tar -C "$context" -xf -
say "cargo build --locked --release -p distcache (CARGO_TARGET_DIR=$target_dir)"
(cd "$context" && CARGO_TARGET_DIR="$target_dir" nice cargo build --locked --release -p distcache)
install -D -m 0755 "$target_dir/release/distcache" "$out/out/distcache"

# --- 2. run stage ---------------------------------------------------------
rootfs=$out/rootfs
install -D -m 0755 "$out/out/distcache" "$rootfs/usr/local/bin/distcache"
install -D -m 0755 deploy/docker/entrypoint.sh "$rootfs/usr/local/bin/distcache-entrypoint"
install -D -m 0644 deploy/docker/single.toml "$rootfs/etc/distcache/node.toml"
install -d "$rootfs/var/lib/distcache"
say "run stage laid out in $rootfs"

# --- 3. smoke -------------------------------------------------------------
"$rootfs/usr/local/bin/distcache" --version

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc=$(free_port); resp=$(free_port); http=$(free_port); ctrl=$(free_port); data=$(free_port)
log=$out/node.log
# A fresh data directory, removed before the node starts (removed after,
# it raced the node's first writes: "replica state but no IDENTITY").
rm -rf "$out/data"
# The entrypoint execs /usr/local/bin/distcache; point it at the laid-out
# binary by running a copy whose exec line names the rootfs.
sed "s#exec /usr/local/bin/distcache#exec $rootfs/usr/local/bin/distcache#" \
  "$rootfs/usr/local/bin/distcache-entrypoint" > "$out/entrypoint-here.sh"
DISTCACHE_CONFIG="$rootfs/etc/distcache/node.toml" \
DISTCACHE_DATA_DIR="$out/data" DISTCACHE_HOST=127.0.0.1 \
DISTCACHE_GRPC_PORT=$grpc DISTCACHE_RESP_PORT=$resp DISTCACHE_HTTP_PORT=$http \
DISTCACHE_CONTROLLER_PORT=$ctrl DISTCACHE_DATA_PORT=$data \
  sh "$out/entrypoint-here.sh" node > "$log" 2>&1 &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
ok=0
for _ in $(seq 1 100); do
  if "$rootfs/usr/local/bin/distcache" status --addr "127.0.0.1:$grpc" > "$out/status.txt" 2>/dev/null \
     && grep -q "LEADER" "$out/status.txt"; then
    ok=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; say "FAIL: the node exited"; exit 1; }
  sleep 0.3
done
[ "$ok" = 1 ] || { cat "$log" >&2; say "FAIL: no leader within 30s"; exit 1; }
say "node through the entrypoint serves: $(head -1 "$out/status.txt")"
"$rootfs/usr/local/bin/distcache" set --addr "127.0.0.1:$grpc" image-steps works
[ "$("$rootfs/usr/local/bin/distcache" get --addr "127.0.0.1:$grpc" image-steps)" = works ]
if curl --fail --silent --show-error --max-time 2 "http://127.0.0.1:$http/livez" > "$out/livez.txt" 2>&1; then
  say "HEALTHCHECK command: GET /livez answered: $(head -c 200 "$out/livez.txt")"
elif curl --silent --max-time 2 -o /dev/null "http://127.0.0.1:$http/" ; then
  say "FAIL: the node serves HTTP but /livez failed: $(cat "$out/livez.txt")"
  exit 1
else
  say "note: this build serves no HTTP yet, so the HEALTHCHECK's /livez was not checked"
fi
say "all steps passed"
