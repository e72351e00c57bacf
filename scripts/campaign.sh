#!/usr/bin/env bash
# A long simulation campaign, not part of the gate: every simulation test over
# many fresh seeds, the determinism check over several, and a wide swarm.
# A failure prints its seed; replay it with MADSIM_TEST_SEED=<seed> (see README).
#
#   scripts/campaign.sh                         # 200 seeds from a random base
#   SEEDS=1000 SEED_BASE=42 scripts/campaign.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SEEDS="${SEEDS:-200}"
SEED_BASE="${SEED_BASE:-$(( (RANDOM << 15 | RANDOM) + 1 ))}"
DETERMINISM_SEEDS="${DETERMINISM_SEEDS:-20}"
SWARM_SEEDS="${SWARM_SEEDS:-50}"
SIM_TARGET_DIR="${SIM_TARGET_DIR:-target/sim}"
sim() { RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$SIM_TARGET_DIR" "$@"; }

echo "campaign: seeds ${SEED_BASE}..$(( SEED_BASE + SEEDS - 1 ))"
MADSIM_TEST_SEED="$SEED_BASE" MADSIM_TEST_NUM="$SEEDS" sim cargo test -p sim-tests
for (( seed = SEED_BASE; seed < SEED_BASE + DETERMINISM_SEEDS; seed++ )); do
  echo "campaign: determinism, seed ${seed}: replay in two processes, then madsim's in-process check"
  scripts/replay-check.sh "$seed" $(basename -s .rs crates/sim-tests/tests/it/*.rs | grep -vx main)
  MADSIM_TEST_SEED="$seed" MADSIM_TEST_CHECK_DETERMINISM=1 sim cargo test -p sim-tests --quiet
done
sim cargo run -p sim-tests --bin swarm --quiet -- --seed "$SEED_BASE" --seeds "$SWARM_SEEDS"
echo "campaign: all passed (seeds from ${SEED_BASE})"
