#!/usr/bin/env bash
# make bench: builds the functions (x86_64 release, to run here; arm64 release, for the sizes) and
# a bare lambda_runtime hello-world with the same profile, starts a throwaway DynamoDB Local, runs
# the harness (bench/src) and writes bench/RESULTS.md and bench/chart.png.
#
#   scripts/bench.sh            the full run (~15 min after the builds)
#   scripts/bench.sh --smoke    every scenario with tiny counts on debug builds, into .local/bench-smoke
#                               (make test runs this, so the harness cannot rot)
#   ... --only SCENARIO         one scenario (cold, warm, cost, write_cost, scale, throughput, baselines, load, delegation), with either
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SMOKE=0
PASS=()
for arg in "$@"; do
  if [ "$arg" = "--smoke" ]; then SMOKE=1; else PASS+=("$arg"); fi
done

ensure_dynamodb_local
lock_venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  log "installing matplotlib from PyPI into .venv (for the chart)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "matplotlib==3.10.7"
fi
unlock_venv

# The baselines (bench/baselines): what a team would deploy instead, from PyPI and npm, every
# transitive version pinned (requirements.txt, package-lock.json).
BASELINE_PY="$LOCAL/baselines/python"
BASELINE_REQUIREMENTS="$ROOT/bench/baselines/python/requirements.txt"
if [ ! -x "$BASELINE_PY/bin/python" ] || [ "$BASELINE_REQUIREMENTS" -nt "$BASELINE_PY/installed" ] ||
  ! "$BASELINE_PY/bin/python" -c 'import awslambdaric, boto3' 2>/dev/null; then
  log "installing the Python baseline (bench/baselines/python/requirements.txt) from PyPI into .local/baselines/python"
  python3 -m venv "$BASELINE_PY"
  "$BASELINE_PY/bin/pip" install --quiet --disable-pip-version-check -r "$BASELINE_REQUIREMENTS"
  touch "$BASELINE_PY/installed"
fi
export BENCH_PYTHON="$BASELINE_PY/bin/python"
BASELINE_NODE="$ROOT/bench/baselines/node"
if ! command -v node >/dev/null; then
  echo "bench: node is not installed; the Node.js baseline is left out" >&2
else
  # Exactly the committed package-lock.json, into bench/baselines/node/node_modules (git-ignored).
  if [ ! -f "$BASELINE_NODE/node_modules/.package-lock.json" ] ||
    [ "$BASELINE_NODE/package-lock.json" -nt "$BASELINE_NODE/node_modules/.package-lock.json" ]; then
    log "installing the Node.js baseline (@aws-sdk/client-dynamodb, package-lock.json) from npm"
    npm ci --silent --no-audit --no-fund --prefix "$BASELINE_NODE"
  fi
  export BENCH_NODE="$(command -v node)" BENCH_NODE_MODULES="$BASELINE_NODE/node_modules"
fi

if [ "$SMOKE" = 1 ]; then
  OUT="$LOCAL/bench-smoke"
  log "building (debug) the functions, hello-world and the harness"
  # As make test builds, so that inside make test this is a no-op.
  cargo build --workspace --all-targets --locked
  BINS="$ROOT/target/debug"
  HARNESS="$ROOT/target/debug/bench"
  ARGS=(--smoke)
else
  OUT="$ROOT/bench"
  ensure_cargo_lambda
  log "building the functions and hello-world (x86_64 release, the profile of Cargo.toml)"
  # Built apart from the harness, so that its dependencies' features do not reach the functions.
  cargo build --release --locked --workspace --exclude api-tests --exclude bench --exclude conversations-client
  cargo build --release --locked -p bench
  log "building the arm64 release binaries (for the sizes)"
  "$ROOT/scripts/build.sh"
  cargo lambda build --release --arm64 --locked -p hello-world
  BINS="$ROOT/target/release"
  HARNESS="$ROOT/target/release/bench"
  ARGS=()
fi
mkdir -p "$OUT"

WORK="$(mktemp -d)"
DDB_PID=""
cleanup() {
  stop_pid "$DDB_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

start_throwaway_dynamodb_local "$WORK/dynamodb.log"
export CONVERSATIONS_TABLE="bench-$(date +%s)"
export DYNAMODB_LOCAL_VERSION="3.3.1 (npm ${DYNAMODB_LOCAL_NPM})"

# One scenario (--only) writes results-only.json and no report: it never replaces a full run's.
RESULTS="$OUT/results.json"
[ "${#PASS[@]}" -gt 0 ] && RESULTS="$OUT/results-only.json"
log "running the benchmarks"
"$HARNESS" "${ARGS[@]}" ${PASS[@]+"${PASS[@]}"} --bins "$BINS" --out "$RESULTS" --logs "$WORK/logs" || {
  echo "---- last lines of the function logs ----" >&2
  tail -n 5 "$WORK"/logs/*.log >&2 || true
  exit 1
}
if [ "${#PASS[@]}" -gt 0 ]; then
  log "wrote $RESULTS (one scenario: no report)"
  exit 0
fi
"$VENV/bin/python" bench/report.py "$RESULTS" "$OUT"
