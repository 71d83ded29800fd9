#!/usr/bin/env bash
# Fuzzes the Confluent response parsing for a bounded time, for CI or by hand:
#   fuzz/run.sh                     every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=600 fuzz/run.sh decode_responses
# Installs cargo-fuzz from crates.io when missing. cargo-fuzz passes nightly-only flags to rustc
# (-Zsanitizer, coverage options); a stable toolchain accepts them with RUSTC_BOOTSTRAP=1, which
# this script sets (harmless on nightly). FUZZ_SANITIZER: address (default), none (faster build
# and runs: the targets are safe Rust), or any other cargo-fuzz sanitizer.
# A crash, panic, timeout or out-of-memory fails the run; cargo-fuzz then prints the input,
# saved under fuzz/artifacts/TARGET/, and the command that replays it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# the instrumented build is big and slow (minutes on 2 cores): cache it outside the repository
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-/var/cache/cio/fuzz-target}
SANITIZER=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

started=$SECONDS
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
  echo "cargo-fuzz installed in $((SECONDS - started)) s"
fi
cargo fuzz --version

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

step=$SECONDS
echo "==== building ${targets[*]} (sanitizer: $SANITIZER)"
for target in "${targets[@]}"; do
  cargo fuzz build -O --sanitizer "$SANITIZER" --target-dir "$FUZZ_TARGET_DIR" "$target"
done
echo "built in $((SECONDS - step)) s"

for target in "${targets[@]}"; do
  step=$SECONDS
  echo "==== fuzzing $target for ${FUZZ_SECONDS} s"
  # corpus/TARGET collects what the runs find (not committed); seeds/TARGET is read only
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  log="target/fuzz-$target.log"
  mkdir -p target
  if ! cargo fuzz run -O --sanitizer "$SANITIZER" --target-dir "$FUZZ_TARGET_DIR" "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -dict=json.dict -print_final_stats=1 > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "FUZZ FAILURE in $target (full output: fuzz/$log)"
    exit 1
  fi
  grep -E '^(Done |stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)' "$log" || true
  echo "$target: ${FUZZ_SECONDS} s of fuzzing done in $((SECONDS - step)) s"
done
echo "fuzzing passed: ${#targets[@]} targets, $((SECONDS - started)) s in all"
