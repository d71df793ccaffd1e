#!/usr/bin/env bash
# Property-based API tests: Schemathesis against a running stack, driven by openapi.yaml.
#
#   make dev &                                              # or any stack with CONVERSATIONS_AUTH=header
#   API_BASE_URL=http://127.0.0.1:9000 scripts/schemathesis.sh [extra `st run` options]
#
# Runs every operation through the examples, coverage, fuzzing and stateful phases with every
# check (and the contract's own, scripts/schemathesis_hooks.py), a fixed seed and 250 examples
# per operation (about 5 minutes on two cores; 400 took 9.5, the largest part of make test, and
# pushed CI past its budget, 2026-12-04). Each run is a new caller (X-Owner-Id:
# schemathesis-<random>), so it never sees another run's data. Any failure or Schemathesis error
# makes the script exit non-zero, except a few responses that cargo lambda watch itself lost whose
# replay passes (scripts/schemathesis_verdict.py). Reports (JUnit, NDJSON) go to a folder of their
# own under $SCHEMATHESIS_REPORT_DIR (default: a temporary folder, printed at the end).
# SCHEMATHESIS_SEED and SCHEMATHESIS_MAX_EXAMPLES override the seed and the per-operation budget.
# SCHEMATHESIS_FUNCTION_LOG names the file the stack's functions log to, as JSON lines at level
# info (make test passes it): what they log during this run is judged with the report, and it
# fails the run if it has no request line, or a 5xx that Schemathesis did not report.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SCHEMATHESIS_VERSION="4.32.5"
: "${API_BASE_URL:?set API_BASE_URL to the stack, e.g. http://127.0.0.1:9000}"
SEED="${SCHEMATHESIS_SEED:-20261123}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-250}"

ensure_python_tool st "schemathesis==$SCHEMATHESIS_VERSION"
installed="$("$VENV/bin/st" --version | awk '{print $NF}')"
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  log "replacing schemathesis $installed with $SCHEMATHESIS_VERSION"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Schemathesis keeps a cache (.schemathesis/) and Hypothesis an example database in the working
# directory: run from a scratch folder so the work tree stays clean.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Each run writes its reports into a folder of its own, so that only this run is judged.
report_dir="${SCHEMATHESIS_REPORT_DIR:-$(mktemp -d)}/run-$(date +%Y%m%dT%H%M%S)-$$"
mkdir -p "$report_dir"
owner="schemathesis-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
# Only what the functions log from here on is this run's: where the log ends now.
log_start=0
if [ -n "${SCHEMATHESIS_FUNCTION_LOG:-}" ]; then
  [ -f "$SCHEMATHESIS_FUNCTION_LOG" ] || { echo "SCHEMATHESIS_FUNCTION_LOG: no file $SCHEMATHESIS_FUNCTION_LOG" >&2; exit 2; }
  log_start="$(wc -c <"$SCHEMATHESIS_FUNCTION_LOG")"
fi

# The configuration. Where the contract makes a schema-valid request fail (an expireTime in the
# past, a stale If-Match, an id no case created), the accepted statuses per operation come from
# the rules table of scripts/schemathesis_hooks.py, whose check `contract_rule` then requires each
# accepted 4xx to name its rule (code, fields, detail). Nothing here accepts a 5xx, a schema
# mismatch or accepted invalid data.
cat >"$work/schemathesis.toml" <<'TOML'
[cache]
enabled = false

# Every check, as `--checks all` would (with its 10 s response time limit), but set here: on the
# command line it would also override the per-operation exceptions below.
[checks]
enabled = true
max_response_time = 10.0

# Two callers that must not see each other's conversations (object_level_authorization); the first
# one runs the tests. Written below, next to this file.
[auth.wfc]
path = "auth.json"
user = "owner"
peers = ["owner", "peer"]

# A page token is valid only as the service issued it (HMAC-signed, bound to caller and query):
# any token a client makes up is 400. Send the empty token (= first page) instead of random ones.
[parameters]
"query.pageToken" = ""

TOML
python3 "$ROOT/scripts/schemathesis_hooks.py" --toml >>"$work/schemathesis.toml"

# ignored_auth is excluded below: the local identity is any well-formed X-Owner-Id, so its
# "invalid credentials" probe (X-Owner-Id: SCHEMATHESIS-INVALID-VALUE) is just another caller, who
# gets 404 or their own data. Its other half is checked here: no identity -> 401 problem.
log "checking that every operation answers 401 without X-Owner-Id"
probe_id="schemathesis-probe"
unauthenticated=0
for route in "POST /v1/conversations" "GET /v1/conversations" "GET /v1/conversations/$probe_id" \
  "PATCH /v1/conversations/$probe_id" "DELETE /v1/conversations/$probe_id" \
  "POST /v1/conversations/$probe_id/undelete" "POST /v1/conversations/$probe_id/complete" \
  "POST /v1/conversations/$probe_id/messages" "GET /v1/conversations/$probe_id/messages" \
  "GET /v1/conversations/$probe_id/messages/1" "PATCH /v1/conversations/$probe_id/messages/1" \
  "DELETE /v1/conversations/$probe_id/messages/1" "POST /v1/conversations/$probe_id/messages/batch" \
  "POST /v1/conversations/$probe_id/messages/clear" "POST /v1/conversations/$probe_id/purge"; do
  read -r method path <<<"$route"
  body=()
  if [ "$method" = POST ] || [ "$method" = PATCH ]; then body=(-H 'Content-Type: application/json' --data '{}'); fi
  got="$(curl -s -o /dev/null -w '%{http_code} %{content_type}' --max-time 180 -X "$method" "${body[@]}" "$API_BASE_URL$path" || true)"
  if [ "$got" != "401 application/problem+json" ]; then
    echo "FAIL: $method $path without X-Owner-Id answered '$got', expected '401 application/problem+json'" >&2
    unauthenticated=1
  fi
done

cat >"$work/auth.json" <<JSON
{"auth": [
  {"name": "owner", "fixedHeaders": [{"name": "X-Owner-Id", "value": "$owner"}]},
  {"name": "peer", "fixedHeaders": [{"name": "X-Owner-Id", "value": "$owner-peer"}]}
]}
JSON

# The contract's rules (a custom check) always; against the local emulator only, also leave out
# generated bodies that are not UTF-8, which cargo lambda watch itself cannot carry to a function
# (see the hook file for why and where that case is tested).
export SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis_hooks.py"
case "$API_BASE_URL" in
  http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*)
    export SCHEMATHESIS_LOCAL_EMULATOR=1
    log "local emulator: non-UTF-8 bodies are left out (scripts/schemathesis_hooks.py)"
    ;;
esac

log "schemathesis $SCHEMATHESIS_VERSION against $API_BASE_URL as $owner (seed $SEED, $MAX_EXAMPLES examples per operation)"
cd "$work"
status=0
"$VENV/bin/st" --config-file "$work/schemathesis.toml" run "$ROOT/openapi.yaml" \
  --url "$API_BASE_URL" \
  --exclude-checks ignored_auth \
  --phases examples,coverage,fuzzing,stateful \
  --mode all \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --generation-database none \
  --generation-with-security-parameters false \
  --continue-on-failure \
  --workers 1 \
  --request-timeout 15 \
  --report junit,ndjson \
  --report-dir "$report_dir" \
  --output-sanitize false \
  --no-color \
  "$@" || status=$?
log "reports in $report_dir"

# The verdict (scripts/schemathesis_verdict.py) judges this run's report: every failure and every
# Schemathesis error fails the run. With SCHEMATHESIS_FUNCTION_LOG, what the functions logged during
# this run (the probe above included) is judged with it: no request line, an unreadable line, a
# panic, a response missing from the log, or a 5xx that Schemathesis did not report fails the run.
# A response that cargo lambda watch itself lost is excused (3 at most) only when that log passes
# and the request's replay passes every check.
report="$(ls "$report_dir"/ndjson-*.ndjson 2>/dev/null | head -n 1 || true)"
function_log=()
if [ -n "${SCHEMATHESIS_FUNCTION_LOG:-}" ]; then
  tail -c +"$((log_start + 1))" "$SCHEMATHESIS_FUNCTION_LOG" >"$work/functions.log"
  function_log=("$work/functions.log")
fi
if [ -z "$report" ]; then
  echo "schemathesis wrote no NDJSON report (exit $status)" >&2
  status=1
else
  log "judging $report"
  verdict=0
  "$VENV/bin/python" "$ROOT/scripts/schemathesis_verdict.py" "$report" "$ROOT/openapi.yaml" \
    "$API_BASE_URL" "$status" "${function_log[@]}" || verdict=$?
  status=$verdict
fi
[ "$unauthenticated" = 0 ] || status=1
exit "$status"
