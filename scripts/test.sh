#!/usr/bin/env bash
# make test: every test. Installs what it needs, starts a throwaway DynamoDB Local on a free port
# and cargo lambda watch (the whole API over HTTP, for the end-to-end tests), then runs the unit,
# in-process handler, concurrency and end-to-end tests, Schemathesis and the Python client's tests
# against the same stack.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# The black-box tests prefer a deployed stage when STAGING_API_URL is set (make staging-test):
# make test runs them against the stack it starts, whatever the shell holds.
unset "${!STAGING_@}"

ensure_cargo_lambda
ensure_dynamodb_local

WORK="$(mktemp -d)"
# The parts after the cargo tests, in the order they run (run_part below).
PARTS=(schemathesis verdict python bench fuzz)
DDB_PID=""
WATCH_PID=""
cleanup() {
  local status=$?
  stop_pid "$WATCH_PID"
  stop_pid "$DDB_PID"
  if [ $status -ne 0 ] && [ -f "$WORK/watch.log" ]; then
    echo "---- errors and warnings in the cargo lambda watch log ----" >&2
    grep -E 'ERROR|WARN|panicked|"status":5' "$WORK/watch.log" | grep -v AWS_LAMBDA_MAX_CONCURRENCY | tail -n 40 >&2 || true
    echo "---- last lines of the cargo lambda watch log ----" >&2
    tail -n 20 "$WORK/watch.log" >&2
  fi
  # What failed comes last, where a CI log cut to its tail still shows it: the failed cargo
  # tests with their panics, the last lines of each failed part, then the closing lines.
  if [ $status -ne 0 ] && [ -f "$WORK/test.log" ]; then
    echo "---- the cargo tests that failed, and their panics ----" >&2
    grep -E '^test .* FAILED$|panicked at|^error: ' "$WORK/test.log" | tail -n 40 >&2 || true
    for part in "${PARTS[@]}"; do
      case "$(cat "$WORK/$part.status" 2>/dev/null || echo 0)" in
        skipped | 0) ;;
        *) echo "---- last lines of the failed part: $part ----" >&2; tail -n 25 "$WORK/$part.log" >&2 ;;
      esac
    done
  fi
  if [ $status -ne 0 ] && [ -f "$WORK/verdict" ]; then
    echo "---- the run's verdict ----" >&2
    cat "$WORK/verdict" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start_throwaway_dynamodb_local "$WORK/dynamodb.log"

log "building the workspace and its tests"
cargo build --workspace --all-targets --locked

TABLE="conversations-e2e-$(date +%s)"
cargo run --quiet -p api-tests --bin create-table -- "$TABLE"
WATCH_PORT="$(free_port)"
log "starting cargo lambda watch on port $WATCH_PORT"
# The functions log one JSON line per request at level info (shared/src/app.rs), whatever the
# shell holds: the Schemathesis verdict reads those lines (status, request id) from this log, and
# fails a run whose log has none.
CONVERSATIONS_TABLE="$TABLE" CONVERSATIONS_AUTH=header CONVERSATIONS_LOG_FORMAT=json RUST_LOG=info \
  cargo lambda watch --ignore-changes --disable-cors -A 127.0.0.1 -P "$WATCH_PORT" >"$WORK/watch.log" 2>&1 &
WATCH_PID=$!
wait_for_port "$WATCH_PORT" 60 "cargo lambda watch"
# Start every function once, one at a time: each start is a `cargo run`, which must not wait on
# the build lock that the test run holds.
for route in "GET /v1/conversations" "POST /v1/conversations" "GET /v1/conversations/warm" \
  "PATCH /v1/conversations/warm" "DELETE /v1/conversations/warm" "POST /v1/conversations/warm/undelete" \
  "POST /v1/conversations/warm/complete" "POST /v1/conversations/warm/messages" "GET /v1/conversations/warm/messages" \
  "GET /v1/conversations/warm/messages/1" "PATCH /v1/conversations/warm/messages/1" \
  "DELETE /v1/conversations/warm/messages/1" "POST /v1/conversations/warm/messages/batch" \
  "POST /v1/conversations/warm/messages/clear" "POST /v1/conversations/warm/purge" "PUT /v1/conversations"; do
  curl --silent --show-error --max-time 120 -o /dev/null -X "${route%% *}" "http://127.0.0.1:$WATCH_PORT${route#* }"
done

export API_BASE_URL="http://127.0.0.1:$WATCH_PORT"
log "running the tests"
set +e
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$WORK/test.log"
status=${PIPESTATUS[0]}
set -e

# run_part NAME SKIP_VARIABLE WHAT COMMAND...: one more part of the run, unless SKIP_VARIABLE=1.
# Its output goes to the screen and $WORK/NAME.log, its exit status (or "skipped") to
# $WORK/NAME.status; a failing part does not stop the others.
run_part() {
  local name="$1" skip="$2" what="$3"
  shift 3
  if [ "${!skip:-0}" = 1 ]; then
    echo skipped >"$WORK/$name.status"
    return
  fi
  log "$what"
  set +e
  "$@" 2>&1 | tee "$WORK/$name.log"
  echo "${PIPESTATUS[0]}" >"$WORK/$name.status"
  set -e
}

# report NAME LABEL SKIP_VARIABLE PASSED_TEXT: the part's closing line.
report() {
  local result
  result="$(cat "$WORK/$1.status")"
  case "$result" in
    skipped) echo "$2: skipped ($3=1)" ;;
    0) echo "$2: passed ($4)" ;;
    *) echo "$2: FAILED (exit $result; see the log above)" ;;
  esac
}

# Property-based tests of the whole API over HTTP, driven by openapi.yaml (skip with
# SKIP_SCHEMATHESIS=1 when iterating on Rust tests).
run_part schemathesis SKIP_SCHEMATHESIS "running schemathesis against the same stack" \
  env SCHEMATHESIS_REPORT_DIR="${SCHEMATHESIS_REPORT_DIR:-$WORK/schemathesis}" \
  SCHEMATHESIS_FUNCTION_LOG="$WORK/watch.log" "$ROOT/scripts/schemathesis.sh"

# The verdict that judges Schemathesis runs, on made-up reports against the same stack: errors,
# service failures, the cap on excused responses, a replay that passes and one that fails.
run_part verdict SKIP_SCHEMATHESIS "testing the Schemathesis verdict" \
  "$VENV/bin/python" -W ignore -m unittest scripts/test_schemathesis_verdict.py

# The Python client (python/) against the same stack: its own venv (.venv-python, reused when
# python/pyproject.toml and python/requirements-dev.txt are unchanged), then pytest (.ci/run
# unsets SKIP_PYTHON).
run_part python SKIP_PYTHON "running the Python client's tests against the same stack" \
  env -u CONVERSATIONS_TOKEN -u CONVERSATIONS_OWNER CONVERSATIONS_URL="$API_BASE_URL" \
  "$ROOT/scripts/python.sh" test

# The benchmark harness in smoke mode (every scenario, a few invocations each, seconds): make bench
# must keep working. Its figures are not looked at; its load test's read-back is.
run_part bench SKIP_BENCH_SMOKE "running the benchmarks in smoke mode" "$ROOT/scripts/bench.sh" --smoke

# Every fuzz target for a few seconds from the committed seeds: make fuzz must keep working, and
# the parsers must not have learnt to panic.
run_part fuzz SKIP_FUZZ_SMOKE "running the fuzz targets in smoke mode" "$ROOT/scripts/fuzz.sh" --smoke

# One closing line for the whole run, summed over every test binary, then one per part; kept in
# $WORK/verdict, which cleanup prints once more, last, when the run failed.
{
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { printf "all tests: %d passed, %d failed\n", p, f }' "$WORK/test.log"
  generated="$(grep -Eo '[0-9]+ generated' "$WORK/schemathesis.log" 2>/dev/null | tail -1 || true)"
  lost="$(grep -Eo '^[0-9]+ response\(s\) lost by the emulator' "$WORK/schemathesis.log" 2>/dev/null | grep -Eo '^[0-9]+' || echo 0)"
  logged="$(grep -Eo '^function log: [0-9]+ request lines, [0-9]+ answered 5xx' "$WORK/schemathesis.log" 2>/dev/null | tail -1 | sed 's/^function log: //' || true)"
  report schemathesis schemathesis SKIP_SCHEMATHESIS \
    "$generated test cases, 0 service failures, $lost response(s) lost by the emulator; functions' log: $logged"
  report verdict "schemathesis verdict tests" SKIP_SCHEMATHESIS "made-up reports judged as they must be"
  pytest_line="$(grep -E '^=*[ ]*[0-9]+ passed' "$WORK/python.log" 2>/dev/null | tail -1 | sed -E 's/^=+ //; s/ =+$//' || true)"
  report python "python client tests" SKIP_PYTHON "${pytest_line:-no pytest summary}"
  report bench "bench smoke" SKIP_BENCH_SMOKE "every scenario ran; .local/bench-smoke/RESULTS.md"
  targets="$(grep -c '^fuzz: .* passed' "$WORK/fuzz.log" 2>/dev/null || true)"
  report fuzz "fuzz smoke" SKIP_FUZZ_SMOKE "$targets targets, 10 s each, 0 crashes"
} | tee "$WORK/verdict"
[ "$status" = 0 ] || exit "$status"
for part in "${PARTS[@]}"; do
  result="$(cat "$WORK/$part.status")"
  case "$result" in skipped | 0) ;; *) exit "$result" ;; esac
done
