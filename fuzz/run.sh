#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes outside input, bounded in time:
# builds all targets once (cargo fuzz, nightly, no sanitizer: the parsers are safe Rust,
# and the speed goes into executions), then runs each for FUZZ_SECONDS (default 20)
# starting from the seeds in fuzz/corpus/<target>. New inputs go to a temp dir, so the
# repository is not changed; a crash fails the run and names its input file, which then
# becomes a unit test beside the parser.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

TARGETS=(secret_name reference schedule agent_frame sealed_blob wrapped_key recovery_code dotenv inject_template)
echo "== building ${#TARGETS[@]} fuzz targets"
cargo +nightly fuzz build --sanitizer none -O --debug-assertions >/dev/null

WORK="$(mktemp -d -t coffer-fuzz-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
failed=0
for target in "${TARGETS[@]}"; do
  mkdir -p "$WORK/$target" "$WORK/artifacts/$target"
  if cargo +nightly fuzz run --sanitizer none -O --debug-assertions "$target" \
      "$WORK/$target" "corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -rss_limit_mb=2048 \
      -artifact_prefix="$WORK/artifacts/$target/" -print_final_stats=1 \
      >"$WORK/$target.log" 2>&1; then
    runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$WORK/$target.log" | grep -o '[0-9]*$' || echo '?')"
    echo "fuzz $target: ok, $runs inputs in ${SECONDS_PER_TARGET}s"
  else
    failed=1
    echo "fuzz $target: FAILED" >&2
    tail -n 40 "$WORK/$target.log" >&2
    for crash in "$WORK/artifacts/$target"/*; do
      [ -f "$crash" ] || continue
      echo "crashing input ($crash), base64:" >&2
      base64 -w0 "$crash" >&2
      echo >&2
    done
  fi
done
exit "$failed"
