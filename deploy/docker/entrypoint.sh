#!/bin/sh
# The image's entrypoint: runs `distcache "$@"`, after turning a
# configuration template into the node's configuration when
# DISTCACHE_CONFIG_TEMPLATE is set (Kubernetes, deploy/k8s):
#
#   - every `host = "NAME"` of the template's [[nodes]] table that is not an
#     IP address is resolved (getent; waits until it resolves, at most
#     DISTCACHE_RESOLVE_TIMEOUT_S seconds, default 300), because distcache
#     reads IP addresses only. On Kubernetes the names are the per-pod
#     Services (`<pod>-addr`, deploy/k8s/base/addresses.yaml): each
#     resolves to its Service's ClusterIP, which stays the same when the
#     pod moves, so what every pod resolves here stays right (a pod's own
#     DNS name would give its pod IP, which does not);
#   - DISTCACHE_NODE_ID, when unset, becomes the id of the entry whose host
#     is this pod's Service: this pod's name (`hostname`, or
#     DISTCACHE_POD_NAME) followed by `-addr`, alone or followed by a dot
#     and more (`<pod>-addr.<namespace>.svc`);
#   - the result is written to DISTCACHE_CONFIG (default
#     /run/distcache/node.toml);
#   - a node that would serve no other host is refused: without a
#     password (DISTCACHE_REQUIREPASS, or `requirepass` in the template)
#     and without `protected_mode = false`, distcache keeps its client
#     listeners, and so the probes, on 127.0.0.1.
#
# DISTCACHE_ENTRYPOINT_DRY_RUN=1 prints the exports and the generated file
# instead of starting distcache (deploy/check.sh tests it that way).
set -eu

fail() {
  echo "distcache-entrypoint: $*" >&2
  exit 2
}

is_ip() {
  case "$1" in
    *:*) return 0 ;;
    *[!0-9.]*) return 1 ;;
    *.*.*.*) return 0 ;;
    *) return 1 ;;
  esac
}

resolve() {
  name=$1
  deadline=$(( $(date +%s) + ${DISTCACHE_RESOLVE_TIMEOUT_S:-300} ))
  while :; do
    address=$(getent ahostsv4 "$name" 2>/dev/null | awk 'NR == 1 { print $1 }')
    if [ -n "$address" ]; then
      echo "$address"
      return 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      fail "cannot resolve $name within ${DISTCACHE_RESOLVE_TIMEOUT_S:-300}s"
    fi
    sleep 2
  done
}

if [ -n "${DISTCACHE_CONFIG_TEMPLATE:-}" ]; then
  template=$DISTCACHE_CONFIG_TEMPLATE
  [ -r "$template" ] || fail "cannot read the template $template"
  output=${DISTCACHE_CONFIG:-/run/distcache/node.toml}
  me=${DISTCACHE_POD_NAME:-$(hostname)}

  if [ -z "${DISTCACHE_REQUIREPASS:-}" ] \
     && ! grep -Eq '^[[:space:]]*(requirepass[[:space:]]*=|protected_mode[[:space:]]*=[[:space:]]*false)' "$template"; then
    fail "no password: DISTCACHE_REQUIREPASS (the distcache-auth Secret's password) is empty and $template sets no requirepass; without one distcache serves clients and its probes on 127.0.0.1 only (protected mode). Put a password in the Secret (deploy/README.md), or set requirepass or protected_mode = false in the table"
  fi

  if [ -z "${DISTCACHE_NODE_ID:-}" ]; then
    DISTCACHE_NODE_ID=$(awk -v me="$me" '
      /^\[\[nodes\]\]/ { id = "" }
      /^[ \t]*id[ \t]*=/ { id = $3 }
      /^[ \t]*host[ \t]*=/ {
        host = $3; gsub(/"/, "", host)
        if ((host == me "-addr" || index(host, me "-addr.") == 1) && id != "") { print id; exit }
      }' "$template")
    [ -n "$DISTCACHE_NODE_ID" ] || fail "no [[nodes]] entry has the host $me-addr or $me-addr.*"
  fi

  temporary="$output.partial"
  mkdir -p "$(dirname "$output")"
  : > "$temporary"
  # Line by line: host lines with a name get its address, the rest is copied.
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      host*=*\"*\"*)
        name=${line#*\"}
        name=${name%%\"*}
        if is_ip "$name"; then
          printf '%s\n' "$line" >> "$temporary"
        else
          address=$(resolve "$name") || exit 2
          printf 'host = "%s"  # %s\n' "$address" "$name" >> "$temporary"
        fi
        ;;
      *) printf '%s\n' "$line" >> "$temporary" ;;
    esac
  done < "$template"
  mv "$temporary" "$output"
  export DISTCACHE_CONFIG="$output" DISTCACHE_NODE_ID
fi

if [ "${DISTCACHE_ENTRYPOINT_DRY_RUN:-0}" = 1 ]; then
  echo "DISTCACHE_CONFIG=${DISTCACHE_CONFIG:-}"
  echo "DISTCACHE_NODE_ID=${DISTCACHE_NODE_ID:-}"
  [ -n "${DISTCACHE_CONFIG:-}" ] && cat "$DISTCACHE_CONFIG"
  exit 0
fi
exec /usr/local/bin/distcache "$@"
