#!/usr/bin/env bash
# Clients no one here wrote, against `distcache demo`: every pytest file in
# tests/python (Python grpcio from the published proto, redis-py, the
# dashboard in headless Chromium, schemathesis on the OpenAPI document), then Debian's redis-cli and redis-benchmark
# (tests/redis-tools/smoke.sh) and redis-cli --tls and curl against
# `distcache demo --tls` (tests/redis-tools/tls.sh). Each test file starts its own demo.
#
#   tests/python/run.sh                 # debug build
#   DISTCACHE_BIN=target/release/distcache tests/python/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh
if [ -z "${DISTCACHE_BIN:-}" ]; then
  cargo build -p distcache --quiet
  export DISTCACHE_BIN="$PWD/target/debug/distcache"
fi
python="${DISTCACHE_PYTHON_VENV:-target/python-venv}/bin/python"
"$python" -m pytest -q -p no:cacheprovider -rxs tests/python
# SMOKE_REQUESTS: redis-benchmark's requests per test (the gate runs fewer).
REQUESTS="${SMOKE_REQUESTS:-10000}" tests/redis-tools/smoke.sh
tests/redis-tools/tls.sh
