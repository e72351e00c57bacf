#!/usr/bin/env bash
# Debian's redis-cli and curl against `distcache demo --tls --requirepass`:
# TLS with the demo's throwaway CA (<data-dir>/tls/ca.pem) works, a
# plaintext client gets no answer, the password is required and checked;
# the peer ports take only mutual TLS with a node's peer certificate, and
# count the refusals.
#
#   tests/redis-tools/tls.sh            # builds target/debug/distcache
#   DISTCACHE_BIN=target/release/distcache tests/redis-tools/tls.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work="$root/target/redis-tools-tls"
rm -rf "$work" && mkdir -p "$work"
password="tls-demo-password"

for tool in redis-cli curl; do
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
base=$(( 25000 + (RANDOM % 50) * 100 ))
"$DISTCACHE_BIN" demo --tls --requirepass "$password" --groups 1 --data-dir "$work/data" \
  --grpc-port "$base" --resp-port $(( base + 40 )) --http-port $(( base + 60 )) \
  > "$work/demo.log" 2>&1 &
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
  echo "distcache demo --tls did not become ready with a RESP address:" >&2
  cat "$work/demo.log" >&2
  exit 1
fi
ca="$work/data/tls/ca.pem"
http_port=$(( base + 60 ))

passed=0
failures=0
check() {
  local name="$1" want="$2" got="$3"
  if [ "$got" == "$want" ]; then
    passed=$(( passed + 1 ))
  else
    echo "FAIL $name: want [$want] got [$got]" >&2
    failures=$(( failures + 1 ))
  fi
}
tls_cli() { redis-cli --tls --cacert "$ca" -h 127.0.0.1 -p "$port" "$@" 2>&1; }

check "ca.pem written" "yes" "$([ -s "$ca" ] && echo yes || echo no)"
check "the demo says how to connect" "yes" \
  "$(grep -qF -- "redis-cli --tls --cacert $ca" "$work/demo.log" && echo yes || echo no)"
check "no password" "NOAUTH Authentication required." "$(tls_cli GET k)"
check "wrong password" "AUTH failed: WRONGPASS invalid username-password pair or user is disabled." \
  "$(tls_cli --no-auth-warning -a wrong PING | head -n 1)"
check "PING" "PONG" "$(tls_cli --no-auth-warning -a "$password" PING)"
check "SET" "OK" "$(tls_cli --no-auth-warning -a "$password" SET tls:k hello)"
check "GET" "hello" "$(tls_cli --no-auth-warning -a "$password" GET tls:k)"
# Plaintext on the TLS port: no RESP answer.
plain=$(timeout 5 redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning -a "$password" PING 2>&1 || true)
check "plaintext refused" "no" "$([ "$plain" == "PONG" ] && echo yes || echo no)"
# The CA is required: the system roots do not know it.
untrusted=$(redis-cli --tls -h 127.0.0.1 -p "$port" --no-auth-warning -a "$password" PING 2>&1 || true)
check "unknown CA refused" "no" "$([ "$untrusted" == "PONG" ] && echo yes || echo no)"
# HTTPS with the same CA and password.
check "https livez" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "https://127.0.0.1:$http_port/livez")"
check "https key without credentials" "401" \
  "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "https://127.0.0.1:$http_port/v1/keys/tls:k")"
check "https key with bearer" "hello" \
  "$(curl -s --cacert "$ca" -H "Authorization: Bearer $password" "https://127.0.0.1:$http_port/v1/keys/tls:k")"
# Peer traffic (Raft, migration) is mutual TLS with the demo's CA: node 1's
# data peer port answers no plaintext and no client without a peer
# certificate; with node 1's own peer certificate the handshake succeeds
# and gRPC answers (HTTP 200, the call itself refused in the trailers).
peer_port=$(sed -n 's/^  node  1 .*group 1 (peer \([0-9]*\)).*/\1/p' "$work/demo.log" | head -n 1)
check "peer port listed" "yes" "$([ -n "$peer_port" ] && echo yes || echo no)"
grpc_call() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST -H 'content-type: application/grpc' \
    --data-binary '' "$@" 2>/dev/null || true
}
check "peer port: plaintext refused" "000" \
  "$(grpc_call --http2-prior-knowledge "http://127.0.0.1:$peer_port/labrpc.LabRpc/Call")"
check "peer port: no client certificate refused" "000" \
  "$(grpc_call --http2 --cacert "$ca" "https://127.0.0.1:$peer_port/labrpc.LabRpc/Call")"
check "peer port: a node's peer certificate admitted" "200" \
  "$(grpc_call --http2 --cacert "$ca" --cert "$work/data/tls/peer-node-2.pem" \
    --key "$work/data/tls/peer-node-2-key.pem" "https://127.0.0.1:$peer_port/labrpc.LabRpc/Call")"
handshakes=$(curl -s --cacert "$ca" -H "Authorization: Bearer $password" \
  "https://127.0.0.1:$http_port/metrics" \
  | sed -n 's/^distcache_peer_calls_refused_total{reason="tls_handshake"} \([0-9]*\).*/\1/p')
check "peer refusals counted" "yes" "$([ "${handshakes:-0}" -ge 2 ] && echo yes || echo no)"
if grep -q "$password" "$work/demo.log"; then
  echo "FAIL the password reached the demo's log" >&2
  failures=$(( failures + 1 ))
fi
echo "tls: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
