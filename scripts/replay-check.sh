#!/usr/bin/env bash
# Replay from a seed, checked the strict way: run simulation tests twice, in
# two fresh processes, with the same seed and the event log on (RUST_LOG),
# and require the two logs to be identical line by line (every bind, close,
# delay, election, with its simulated timestamp).
#
#   scripts/replay-check.sh SEED TEST...     # e.g. scripts/replay-check.sh 3 server blocking
#
# madsim's own check (MADSIM_TEST_CHECK_DETERMINISM=1) runs a seed twice in
# one process; on some seeds that second run diverges because state left in
# the process by the first run changes it (docs/status.md, "Determinism"),
# while a fresh process replays exactly. This check is what a developer
# relies on when replaying a failure: `MADSIM_TEST_SEED=N cargo test ...`.
# The logs of a failing comparison stay in target/sim/replay-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_TARGET_DIR="${SIM_TARGET_DIR:-target/sim}"
seed="$1"
shift
out="$SIM_TARGET_DIR/replay-check"
mkdir -p "$out"
sim_test() {
  RUSTFLAGS="${RUSTFLAGS:---cfg madsim}" CARGO_TARGET_DIR="$SIM_TARGET_DIR" \
    cargo test -q -p sim-tests --test it "$@"
}
for test in "$@"; do
  # The suites are modules of one test binary (tests/it); libtest's filters
  # match substrings ("raft::" is in "kvraft::..."), so the module's tests
  # are listed and run by their exact names.
  names=$(sim_test -- --list 2>/dev/null | sed -n "s/^\($test::[^:]*\(::[^:]*\)*\): test\$/\1/p")
  if [ -z "$names" ]; then
    echo "replay-check: no simulation tests in a module named $test" >&2
    exit 1
  fi
  for run in 1 2; do
    # Events only (lines with a simulated timestamp); colours stripped.
    # shellcheck disable=SC2086 # one test name per word
    RUST_LOG="${REPLAY_LOG:-debug}" MADSIM_TEST_SEED="$seed" \
      sim_test -- --exact $names --test-threads 1 --nocapture 2>&1 \
      | sed -E 's/\x1b\[[0-9;]*m//g' | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' \
      > "$out/$test-seed$seed-run$run.log" || true
  done
  lines=$(wc -l < "$out/$test-seed$seed-run1.log")
  if [ "$lines" -lt 100 ]; then
    echo "replay-check: $test seed $seed logged only $lines events (is RUST_LOG read?)" >&2
    exit 1
  fi
  if ! cmp -s "$out/$test-seed$seed-run1.log" "$out/$test-seed$seed-run2.log"; then
    echo "replay-check: $test seed $seed: two runs differ (first difference below)" >&2
    diff "$out/$test-seed$seed-run1.log" "$out/$test-seed$seed-run2.log" | head -n 10 >&2
    exit 1
  fi
  echo "replay-check: $test seed $seed: two processes, $lines events, identical"
  rm -f "$out/$test-seed$seed-run1.log" "$out/$test-seed$seed-run2.log"
done
