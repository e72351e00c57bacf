#!/usr/bin/env bash
# The main job until the server exists: a seeded, randomized fault simulation
# of every layer built so far, with a report per seed.
#
#   scripts/swarm.sh                        # seeds 1..5
#   SEEDS=20 scripts/swarm.sh               # seeds 1..20
#   scripts/swarm.sh --seed 17 --seeds 1    # replay one seed exactly
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- --seeds "${SEEDS:-5}"
fi
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="${SIM_TARGET_DIR:-target/sim}" \
  cargo run -p sim-tests --bin swarm --quiet -- "$@"
