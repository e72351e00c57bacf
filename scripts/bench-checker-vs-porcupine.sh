#!/usr/bin/env bash
# Our linearizability checker against porcupine (Go), same run, on porcupine's
# own test histories: the 6.824 key/value logs (test_data/kv, c01..c50 ok/bad)
# and the Jepsen etcd logs (test_data/jepsen). Prints one row per history: our
# verdict and time, porcupine's verdict and time, and ours / porcupine's.
#
#   scripts/bench-checker-vs-porcupine.sh              # every history, best of 5 runs each
#   RUNS=10 scripts/bench-checker-vs-porcupine.sh      # best of 10
#   HISTORIES="c50-bad etcd_002" scripts/bench-checker-vs-porcupine.sh
#
# Needs Go (Debian: apt-get install -y golang-go) and porcupine's sources:
# PORCUPINE_GIT (a git directory, by default the mirror under /work/.mirror)
# or PORCUPINE_URL (cloned when the git directory is absent). Everything is
# written under target/porcupine-bench; nothing of porcupine is committed.
#
# Times: ours is what `linearizability check` prints (from the start of the
# process's work: reading and parsing the file, then the search, up to the
# verdict; the explanation of a violation comes after and is not counted).
# porcupine's is measured by a small Go test the script writes, with
# porcupine's own log parsers and models, around parse + CheckEvents. Both
# are the best of RUNS. Exit status 1 if any verdict differs.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
PORCUPINE_GIT="${PORCUPINE_GIT:-/work/.mirror/anishathalye+porcupine/repo}"
PORCUPINE_URL="${PORCUPINE_URL:-https://github.com/anishathalye/porcupine}"
WORK=target/porcupine-bench
SOURCE="$WORK/porcupine"

command -v go >/dev/null || { echo "go not found: apt-get install -y golang-go" >&2; exit 2; }

# 1. porcupine's sources and test data, fresh each run.
rm -rf "$SOURCE"
mkdir -p "$SOURCE"
if [ -d "$PORCUPINE_GIT" ]; then
  git --git-dir="$PORCUPINE_GIT" archive HEAD | tar -x -C "$SOURCE"
  porcupine_commit=$(git --git-dir="$PORCUPINE_GIT" rev-parse --short HEAD)
else
  git clone --quiet --depth 1 "$PORCUPINE_URL" "$SOURCE"
  porcupine_commit=$(git -C "$SOURCE" rev-parse --short HEAD)
fi

# 2. The Go driver: porcupine's parsers and models are in its test file, so
# the driver is a test in the same package.
cat >"$SOURCE/driver_timing_test.go" <<'GO'
package porcupine

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Prints "DRIVER name verdict seconds" per history in DRIVER_HISTORIES:
// porcupine's verdict, and the best of DRIVER_RUNS times of parse + check.
func TestDriverTiming(t *testing.T) {
	runs, err := strconv.Atoi(os.Getenv("DRIVER_RUNS"))
	if err != nil || runs < 1 {
		runs = 1
	}
	for _, name := range strings.Fields(os.Getenv("DRIVER_HISTORIES")) {
		var best time.Duration
		verdict := false
		for run := 0; run < runs; run++ {
			started := time.Now()
			if strings.HasPrefix(name, "etcd_") {
				verdict = CheckEvents(etcdModel, parseJepsenLog("test_data/jepsen/"+name+".log"))
			} else {
				verdict = CheckEvents(kvModel, parseKvLog("test_data/kv/"+name+".txt"))
			}
			if elapsed := time.Since(started); run == 0 || elapsed < best {
				best = elapsed
			}
		}
		fmt.Printf("DRIVER %s %t %.6f\n", name, verdict, best.Seconds())
	}
}
GO
(cd "$SOURCE" && go test -c -o driver.test . >/dev/null)

# 3. Ours.
cargo build --release --quiet -p linearizability --bin linearizability
ours=target/release/linearizability

if [ -z "${HISTORIES:-}" ]; then
  HISTORIES="$(cd "$SOURCE/test_data" && ls kv/*.txt jepsen/*.log | sed -E 's#^(kv|jepsen)/##; s#\.(txt|log)$##' | sort | tr '\n' ' ')"
fi

file_of() { # name -> format and path
  case "$1" in
    etcd_*) echo "jepsen-etcd $SOURCE/test_data/jepsen/$1.log" ;;
    *) echo "porcupine-kv $SOURCE/test_data/kv/$1.txt" ;;
  esac
}

# Our verdict (true / false / unknown) and best time in ms.
run_ours() { # name
  local format path best="" verdict="" line status ms
  read -r format path < <(file_of "$1")
  for _ in $(seq "$RUNS"); do
    status=0
    line=$("$ours" check --format "$format" --timeout-ms 60000 "$path" 2>/dev/null) || status=$?
    case $status in
      0) verdict=true ;; 1) verdict=false ;; 2) verdict=unknown ;; *) verdict="error($status)" ;;
    esac
    ms=$(grep -oE '[0-9.]+ ms$' <<<"$line" | cut -d' ' -f1 || true)
    ms=${ms:-0}
    if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$ms; fi
  done
  echo "$verdict $best"
}

porcupine_results=$(cd "$SOURCE" && DRIVER_HISTORIES="$HISTORIES" DRIVER_RUNS="$RUNS" ./driver.test \
  -test.run TestDriverTiming | grep '^DRIVER' || true)

echo "our checker ($(git rev-parse --short HEAD)) vs porcupine ($porcupine_commit), best of $RUNS runs"
echo "load: $(uptime | sed 's/.*load average/load average/')"
printf '%-10s | %-7s %11s | %-7s %11s | %8s\n' history ours ms porcupine ms ratio
disagreements=0
ours_total=0
porcupine_total=0
for name in $HISTORIES; do
  read -r our_verdict our_ms < <(run_ours "$name")
  read -r _ _ porcupine_verdict porcupine_seconds < <(grep " $name " <<<"$porcupine_results" || echo "DRIVER $name missing 0")
  porcupine_ms=$(awk -v s="$porcupine_seconds" 'BEGIN { printf "%.3f", s * 1000 }')
  ratio=$(awk -v a="$our_ms" -v b="$porcupine_ms" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
  mark=""
  if [ "$our_verdict" != "$porcupine_verdict" ]; then mark="  VERDICTS DIFFER"; disagreements=$((disagreements + 1)); fi
  printf '%-10s | %-7s %11.3f | %-7s %11.3f | %8s%s\n' \
    "$name" "$our_verdict" "$our_ms" "$porcupine_verdict" "$porcupine_ms" "$ratio" "$mark"
  ours_total=$(awk -v a="$ours_total" -v b="$our_ms" 'BEGIN { print a + b }')
  porcupine_total=$(awk -v a="$porcupine_total" -v b="$porcupine_ms" 'BEGIN { print a + b }')
done
printf '%-10s | %-7s %11.1f | %-7s %11.1f | %8s\n' total "" "$ours_total" "" "$porcupine_total" \
  "$(awk -v a="$ours_total" -v b="$porcupine_total" 'BEGIN { printf "%.2f", a / b }')"
if [ "$disagreements" -gt 0 ]; then
  echo "$disagreements histories with different verdicts" >&2
  exit 1
fi
