#!/usr/bin/env bash
# Campaigns of the chaos harness (crates/chaos, issue 19): N runs of
# distcache-chaos with consecutive seeds against real distcache processes,
# then one summary (runs, operations, faults, violations, lost writes,
# unknown outcomes, the longest unavailability after each fault kind).
#
#   scripts/chaos.sh --runs 20 --seconds 120            # seeds 1..20
#   scripts/chaos.sh --runs 5 --seconds 60 --seed-base 100
#
# Each run's directory (history, report, plot, logs) is kept under
# target/chaos/campaign-<seed-base>/seed-<seed>; the exit status is 1 when
# any run found something.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=20
SECONDS_PER_RUN=120
SEED_BASE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --seconds) SECONDS_PER_RUN="$2"; shift 2 ;;
    --seed-base) SEED_BASE="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--seconds S] [--seed-base B]" >&2; exit 2 ;;
  esac
done
case "$RUNS$SECONDS_PER_RUN$SEED_BASE" in
  *[!0-9]*) echo "chaos.sh: --runs, --seconds and --seed-base take numbers" >&2; exit 2 ;;
esac
if [ "$SECONDS_PER_RUN" -le 15 ]; then
  echo "chaos.sh: --seconds must be more than 15 (10 s of it heal)" >&2
  exit 2
fi

cargo build --quiet -p distcache -p chaos
CAMPAIGN="target/chaos/campaign-${SEED_BASE}"
rm -rf "$CAMPAIGN"
mkdir -p "$CAMPAIGN"
for (( seed = SEED_BASE; seed < SEED_BASE + RUNS; seed++ )); do
  target/debug/distcache-chaos --seed "$seed" --seconds "$SECONDS_PER_RUN" \
    --out "$CAMPAIGN/seed-$seed" 2>"$CAMPAIGN/seed-$seed.stderr" \
    | tail -n 1 | tee -a "$CAMPAIGN/verdicts.txt" || true
done

python3 - "$CAMPAIGN" <<'PY'
import json, pathlib, sys
campaign = pathlib.Path(sys.argv[1])
runs = [json.loads(p.read_text()) for p in sorted(campaign.glob("seed-*/summary.json"))]
expected = len(list(campaign.glob("seed-*.stderr")))
total = lambda field: sum(run[field] for run in runs)
longest = {}
for run in runs:
    for gap in run["unavailability"]:
        longest[gap["kind"]] = max(longest.get(gap["kind"], 0), gap["longest_us"])
lines = [
    f"runs: {len(runs)} finished of {expected} started, {sum(not r['passed'] for r in runs)} with findings",
    f"operations: {total('operations')} ({total('ok')} ok, {total('failed')} failed, {total('unknown')} unknown)",
    f"faults injected: {total('faults')}",
    f"reshapes during the faults (moves, leaves, joins): {total('reshapes_applied')} applied of {total('reshapes')} sent",
    f"violations: {total('violations')}",
    f"acknowledged writes lost: {total('lost_writes')}",
    "longest unavailability on one key after each fault kind:",
] + [f"  {kind}: {us / 1e6:.2f} s" for kind, us in sorted(longest.items())]
for run in runs:
    if not run["passed"]:
        lines.append(f"seed {run['seed']}: " + "; ".join(run["problems"][:3]))
text = "\n".join(lines)
(campaign / "summary.txt").write_text(text + "\n")
print(text)
sys.exit(0 if len(runs) == expected and all(r["passed"] for r in runs) else 1)
PY
