#!/usr/bin/env bash
# Fuzzes the RESP decoder and command parser (crates/resp/fuzz) for a while.
#
#   scripts/fuzz-resp.sh            # 60 seconds
#   scripts/fuzz-resp.sh 600        # ten minutes
#
# cargo fuzz needs a nightly compiler (for -Zsanitizer and the fuzzer's
# coverage flags). It uses the nightly toolchain when rustup has one, and
# otherwise the stable one with RUSTC_BOOTSTRAP=1, which unlocks the same
# flags on a stable compiler. cargo-fuzz itself is installed if missing.
# A crash leaves its input in crates/resp/fuzz/artifacts/decode/ and the
# script fails; replay it with
#   cargo fuzz run decode <that file>   (in crates/resp)
set -euo pipefail
cd "$(dirname "$0")/../crates/resp"

SECONDS_TO_RUN="${1:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi

# Keep the corpus out of the repository (fuzz/corpus is git-ignored).
echo "==> fuzzing the RESP decoder for ${SECONDS_TO_RUN}s"
cargo "${toolchain[@]}" fuzz run decode -- -max_total_time="$SECONDS_TO_RUN" -max_len=4096
