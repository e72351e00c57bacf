#!/usr/bin/env bash
# Replay from a seed, checked the strict way: run simulation tests twice, in
# two fresh processes, with the same seed and the event log on (RUST_LOG),
# and require every test to pass in both and the two logs to be identical
# line by line (every bind, close, delay, election, with its simulated
# timestamp).
#
#   scripts/replay-check.sh SEED TEST...     # e.g. scripts/replay-check.sh 3 server blocking
#
# madsim's own check (MADSIM_TEST_CHECK_DETERMINISM=1) runs a seed twice in
# one process; on some seeds that second run diverges because state left in
# the process by the first run changes it (docs/status.md, "Determinism"),
# while a fresh process replays exactly. This check is what a developer
# relies on when replaying a failure: `MADSIM_TEST_SEED=N cargo test ...`.
# The two processes run at the same time (each runs its tests one after the
# other, so that its log is one sequence of events). The output of a failing
# run and the logs of a failing comparison stay in target/sim/replay-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_TARGET_DIR="${SIM_TARGET_DIR:-target/sim}"
seed="$1"
shift
out="$SIM_TARGET_DIR/replay-check"
mkdir -p "$out"

# The simulation test binary, built if need be; it is run directly (from the
# package's directory, as cargo runs it) so that two runs can overlap.
export RUSTFLAGS="${RUSTFLAGS:---cfg madsim}" CARGO_TARGET_DIR="$SIM_TARGET_DIR"
binary=$(cargo test -q -p sim-tests --test it --no-run --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" \
            and m["target"]["kind"] == ["test"]:
        print(m["executable"])')
if [ ! -x "$binary" ]; then
  echo "replay-check: could not find the simulation test binary" >&2
  exit 1
fi
sim_test() { (cd crates/sim-tests && "$binary" "$@"); }

# One run: the raw output kept, the events (lines with a simulated
# timestamp, colours stripped) written to the run's log. Fails if a test did.
run() { # test run-number names...
  local test=$1 n=$2 status=0
  shift 2
  local raw="$out/$test-seed$seed-run$n.out"
  # shellcheck disable=SC2068 # one test name per word
  RUST_LOG="${REPLAY_LOG:-debug}" MADSIM_TEST_SEED="$seed" \
    sim_test --exact $@ --test-threads 1 --nocapture >"$raw" 2>&1 || status=$?
  sed -E 's/\x1b\[[0-9;]*m//g' "$raw" | grep -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' \
    > "$out/$test-seed$seed-run$n.log" || true
  return "$status"
}

for test in "$@"; do
  # The suites are modules of one test binary (tests/it); libtest's filters
  # match substrings ("raft::" is in "kvraft::..."), so the module's tests
  # are listed and run by their exact names.
  names=$(sim_test --list 2>/dev/null | sed -n "s/^\($test::[^:]*\(::[^:]*\)*\): test\$/\1/p")
  if [ -z "$names" ]; then
    echo "replay-check: no simulation tests in a module named $test" >&2
    exit 1
  fi
  # shellcheck disable=SC2086 # one test name per word
  run "$test" 1 $names & first=$!
  # shellcheck disable=SC2086
  run "$test" 2 $names & second=$!
  failed=""
  wait "$first" || failed="$failed 1"
  wait "$second" || failed="$failed 2"
  if [ -n "$failed" ]; then
    for n in $failed; do
      tail -n 40 "$out/$test-seed$seed-run$n.out" >&2
    done
    echo "replay-check: $test seed $seed: tests failed (run$failed; output above and in $out)" >&2
    exit 1
  fi
  lines=$(wc -l < "$out/$test-seed$seed-run1.log")
  # Every suite's tests log their events (harness::within turns the log on);
  # nothing logged means nothing would be compared.
  if [ "$lines" -eq 0 ]; then
    echo "replay-check: $test seed $seed logged no events (is RUST_LOG read? does each test run in harness::within?)" >&2
    exit 1
  fi
  if ! cmp -s "$out/$test-seed$seed-run1.log" "$out/$test-seed$seed-run2.log"; then
    echo "replay-check: $test seed $seed: two runs differ (first difference below)" >&2
    diff "$out/$test-seed$seed-run1.log" "$out/$test-seed$seed-run2.log" | head -n 10 >&2
    exit 1
  fi
  echo "replay-check: $test seed $seed: $(echo "$names" | wc -w) test(s) passed in two processes, $lines events, identical"
  rm -f "$out/$test-seed$seed-run"[12].{out,log}
done
