#!/usr/bin/env bash
# All the tests: the one gate (formatting, clippy in both builds, the normal
# tests, the simulation suites over a few seeds, one determinism check, and a
# short swarm). Needs only the Rust toolchain; protoc comes from a crate.
#
#   scripts/test.sh            # default: SEEDS=3
#   SEEDS=20 scripts/test.sh   # more seeds per simulation test
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS="${SEEDS:-3}"
SIM_TARGET_DIR="${SIM_TARGET_DIR:-target/sim}"
started_at=$(date +%s)

step() { printf '\n==> %s (%ss)\n' "$1" "$(( $(date +%s) - started_at ))"; }
sim() { RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" "$@"; }

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (production build)"
cargo clippy --workspace --all-targets -- -D warnings

step "clippy (simulation build)"
sim cargo clippy --workspace --all-targets -- -D warnings

step "normal tests (real tokio, real gRPC on loopback, real files)"
cargo test --workspace

step "simulation suites, ${SEEDS} seeds per test"
MADSIM_TEST_NUM="$SEEDS" sim cargo test -p sim-tests

step "simulation suites under the determinism check"
MADSIM_TEST_CHECK_DETERMINISM=1 sim cargo test -p sim-tests

step "swarm, 2 seeds"
sim cargo run -p sim-tests --bin swarm --quiet -- --seeds 2

step "all passed in $(( $(date +%s) - started_at ))s"
