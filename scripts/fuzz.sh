#!/usr/bin/env bash
# Fuzzes distcache's parsers of hostile input with cargo-fuzz (libFuzzer):
#
#   resp/decode                 the RESP decoders and command parser
#                               (crates/resp/fuzz)
#   distcache/peer_messages     every peer message type a node decodes
#   distcache/node_config       the node configuration parser + validation
#                               (crates/distcache/fuzz; the checks are
#                               distcache::hostile, which the gate also runs
#                               as property tests: tests/hostile_input.rs)
#
#   scripts/fuzz.sh                       # every target, 60 s each
#   scripts/fuzz.sh 600                   # every target, ten minutes each
#   scripts/fuzz.sh 300 resp/decode       # one target
#   FUZZ_DEV=1 scripts/fuzz.sh 20 resp/decode   # unoptimised: builds in half
#                                         # the time, runs slower (the gate)
#
# cargo fuzz needs a nightly compiler (for -Zsanitizer and the fuzzer's
# coverage flags). It uses the nightly toolchain when rustup has one, and
# otherwise the stable one with RUSTC_BOOTSTRAP=1, which unlocks the same
# flags on a stable compiler. cargo-fuzz itself is installed if missing.
# A crash leaves its input in <crate>/fuzz/artifacts/<target>/ and the
# script fails; replay it with
#   cargo fuzz run <target> <that file>   (in the crate's directory)
# and turn it into a regression test next to the crate's other tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SECONDS_TO_RUN="${1:-60}"
shift || true
case "$SECONDS_TO_RUN" in
  ''|*[!0-9]*) echo "usage: $0 [SECONDS] [crate/target ...]" >&2; exit 2 ;;
esac
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
  TARGETS=(resp/decode distcache/peer_messages distcache/node_config)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked --debug   # a thin wrapper: unoptimised builds in half the CPU
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi

build=()
[ "${FUZZ_DEV:-0}" = 1 ] && build=(--dev)

for target in "${TARGETS[@]}"; do
  crate="${target%%/*}"
  name="${target#*/}"
  if [ ! -f "$ROOT/crates/$crate/fuzz/Cargo.toml" ]; then
    echo "fuzz.sh: no fuzz crate at crates/$crate/fuzz (targets: resp/decode, distcache/peer_messages, distcache/node_config)" >&2
    exit 2
  fi
  # Keep the corpus out of the repository (fuzz/corpus is git-ignored).
  echo "==> fuzzing $target for ${SECONDS_TO_RUN}s"
  (cd "$ROOT/crates/$crate" && \
    cargo "${toolchain[@]}" fuzz run "${build[@]}" "$name" -- -max_total_time="$SECONDS_TO_RUN" -max_len=4096)
done
