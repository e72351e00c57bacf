#!/usr/bin/env bash
# The Python client test against `distcache demo` (see test_demo.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh
cargo build -p distcache --quiet
exec "${DISTCACHE_PYTHON_VENV:-target/python-venv}/bin/python" tests/python/test_demo.py
