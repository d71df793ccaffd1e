#!/usr/bin/env bash
# make fuzz: runs every cargo-fuzz target of shared/fuzz (field masks, filters, page tokens, ids,
# request bodies) with libFuzzer. Each starts from the committed seeds (shared/fuzz/corpus) plus
# what earlier runs found (.local/fuzz/corpus, kept). A panic or a 5xx-class rejection is a crash:
# the input is saved under shared/fuzz/artifacts/<target>/ and the run fails.
#
#   scripts/fuzz.sh            each target for FUZZ_SECONDS (default 120)
#   scripts/fuzz.sh --smoke    each target for 10 s (make test runs this)
#
# cargo-fuzz needs unstable compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them
# (no nightly download). No sanitizer: the crates forbid unsafe code; the fuzzers hunt panics.
source "$(dirname "$0")/lib.sh"
cd "$ROOT/shared"

SECONDS_EACH="${FUZZ_SECONDS:-120}"
[ "${1:-}" = "--smoke" ] && SECONDS_EACH=10

# Every target there must be: a target that went missing from shared/fuzz/Cargo.toml (or a
# `cargo fuzz list` that found none) fails the run instead of fuzzing less.
EXPECTED_TARGETS="body field_mask filter ids page_token"

ensure_cargo_fuzz
export RUSTC_BOOTSTRAP=1
log "building the fuzz targets"
cargo fuzz build --sanitizer none
found="$(cargo fuzz list | sort | tr '\n' ' ' | sed 's/ $//')"
if [ "$found" != "$EXPECTED_TARGETS" ]; then
  echo "fuzz: expected the targets '$EXPECTED_TARGETS', found '$found'" >&2
  exit 1
fi
for target in $found; do
  corpus="$LOCAL/fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  log "fuzzing $target for ${SECONDS_EACH}s"
  # -max_len: bodies up to 64 KiB; the 10 MB and 100 000-deep cases are unit tests
  # (shared/tests/properties.rs), too slow to find by mutation.
  if ! cargo fuzz run --sanitizer none "$target" "$corpus" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 -print_final_stats=1 \
      >"$LOCAL/fuzz/$target.log" 2>&1; then
    tail -n 40 "$LOCAL/fuzz/$target.log" >&2
    echo "fuzz: $target FAILED; the input is in shared/fuzz/artifacts/$target/" >&2
    echo "  reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $target <that file>" >&2
    exit 1
  fi
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$LOCAL/fuzz/$target.log" | grep -Eo '[0-9]+$' || echo '?')"
  echo "fuzz: $target passed ($runs inputs, 0 crashes)"
done
