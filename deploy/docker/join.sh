#!/bin/sh
# distcache-join (in the image): joins one data group to the shard
# controller once the group is up. Used by the Job of deploy/k8s/groups/.
#
#   DISTCACHE_ADDR        any node's gRPC address (the client Service)
#   DISTCACHE_JOIN_GID    the group id
#   DISTCACHE_JOIN_PEERS  the group's replicas' host names, in Raft id order:
#                         their per-pod Services (<pod>-addr), whose
#                         ClusterIPs the controller records and keeps
#   DISTCACHE_DATA_PORT   their data (Raft) port (default 7101)
#   DISTCACHE_HTTP_PORT   their HTTP port, for /livez (default 8080)
#
# Exits 0 when the group is in the controller's configuration (joined now
# or before), 1 when it should be retried (a replica not resolvable or not
# up yet, the controller unreachable), 2 on bad input.
set -eu
gid=${DISTCACHE_JOIN_GID:?DISTCACHE_JOIN_GID is required}
peers=${DISTCACHE_JOIN_PEERS:?DISTCACHE_JOIN_PEERS is required}
case "$gid" in ''|*[!0-9]*|0) echo "distcache-join: bad group id $gid" >&2; exit 2 ;; esac
data_port=${DISTCACHE_DATA_PORT:-7101}
http_port=${DISTCACHE_HTTP_PORT:-8080}

status=$(distcache status) || { echo "distcache-join: controller unreachable; retry" >&2; exit 1; }
if printf '%s\n' "$status" | grep -q "^group $gid "; then
  echo "distcache-join: group $gid is already joined"
  exit 0
fi

addresses=""
for name in $(printf '%s' "$peers" | tr ',' ' '); do
  address=$(getent ahostsv4 "$name" 2>/dev/null | awk 'NR == 1 { print $1 }')
  if [ -z "$address" ]; then
    echo "distcache-join: $name does not resolve yet; retry" >&2
    exit 1
  fi
  if ! curl --fail --silent --max-time 3 -o /dev/null "http://$address:$http_port/livez"; then
    echo "distcache-join: $name ($address) is not up yet (/livez); retry" >&2
    exit 1
  fi
  addresses="$addresses${addresses:+,}$address:$data_port"
done
echo "distcache-join: joining group $gid: $addresses"
distcache admin join --group "$gid" --peers "$addresses"
