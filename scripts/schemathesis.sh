#!/usr/bin/env bash
# Property-based API tests: Schemathesis against a running stack, driven by openapi.yaml.
#
#   make dev &                                              # or any stack with CONVERSATIONS_AUTH=header
#   API_BASE_URL=http://127.0.0.1:9000 scripts/schemathesis.sh [extra `st run` options]
#
# Runs every operation through the examples, coverage, fuzzing and stateful phases with every
# check, a fixed seed and a budget that stays under 5 minutes on a 2-core machine. Each run is a
# new caller (X-Owner-Id: schemathesis-<random>), so it never sees another run's data. Any failure
# (a 5xx included) makes the script exit non-zero, except responses that cargo lambda watch itself
# lost when the functions' log proves the service answered them (scripts/schemathesis_verdict.py). Reports (JUnit, NDJSON) go to
# $SCHEMATHESIS_REPORT_DIR (default: a temporary folder, printed at the end).
# SCHEMATHESIS_SEED and SCHEMATHESIS_MAX_EXAMPLES override the seed and the per-operation budget.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SCHEMATHESIS_VERSION="4.32.5"
: "${API_BASE_URL:?set API_BASE_URL to the stack, e.g. http://127.0.0.1:9000}"
SEED="${SCHEMATHESIS_SEED:-20261123}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-400}"

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
report_dir="${SCHEMATHESIS_REPORT_DIR:-$(mktemp -d)}"
mkdir -p "$report_dir"
owner="schemathesis-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# Where the contract overrides a check's default verdict, operation by operation. Nothing here
# accepts a 5xx, a schema mismatch or accepted invalid data; each entry names the contract rule
# that makes a schema-valid request fail, which JSON Schema cannot express.
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

# Invalid data may also be rejected as a whole: a body over 256 KiB is 413 (the schema's
# per-field limits allow more than that in total, e.g. 64 Ki characters of content).
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# AIP-164 soft delete: GET of a deleted conversation is 200 with deleted=true (list messages,
# update and append are still expected to be 404 after a delete).
[[operations]]
include-operation-id = "getConversation"
checks.use_after_free.enabled = false

# expireTime must be in the future (422), which JSON Schema cannot say.
[[operations]]
include-operation-id = "createConversation"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

# update: a schema-valid If-Match naming no current etag is 412; conversationProfile is immutable
# (a different value is 400); expireTime must be in the future and a mask naming agents needs
# agents in the body (422).
[[operations]]
include-operation-id = "updateConversation"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "422", "429"]

# delete, undelete, complete: a schema-valid If-Match naming no current etag is 412. The coverage
# phase makes header values of [A-Za-z0-9] only, so it cannot build an If-Match (which needs
# quotes or *) and sends a placeholder `If-Match: 0` that it labels positive: 400. (update and
# append already accept 400 for their own reasons.)
[[operations]]
include-operation-id = ["deleteConversation", "undeleteConversation", "completeConversation"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429"]
phases.coverage.checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "429"]

# append: 412 as above; appending to a COMPLETED conversation is 400 FAILED_PRECONDITION.
[[operations]]
include-operation-id = "appendMessage"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "412", "429"]
TOML

# ignored_auth is excluded below: the local identity is any well-formed X-Owner-Id, so its
# "invalid credentials" probe (X-Owner-Id: SCHEMATHESIS-INVALID-VALUE) is just another caller, who
# gets 404 or their own data. Its other half is checked here: no identity -> 401 problem.
log "checking that every operation answers 401 without X-Owner-Id"
probe_id="schemathesis-probe"
unauthenticated=0
for route in "POST /v1/conversations" "GET /v1/conversations" "GET /v1/conversations/$probe_id" \
  "PATCH /v1/conversations/$probe_id" "DELETE /v1/conversations/$probe_id" \
  "POST /v1/conversations/$probe_id/undelete" "POST /v1/conversations/$probe_id/complete" \
  "POST /v1/conversations/$probe_id/messages" "GET /v1/conversations/$probe_id/messages"; do
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

# Against the local emulator only: drop generated bodies that are not UTF-8, which cargo lambda
# watch itself cannot carry to a function (see the hook file for why and where that case is tested).
case "$API_BASE_URL" in
  http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*)
    export SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis_hooks.py"
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

# Tell the service's failures from responses the local emulator lost (see
# scripts/schemathesis_verdict.py): with SCHEMATHESIS_FUNCTION_LOG (the functions' log, which
# make test passes), a run whose only failures are lost responses passes if no function answered
# 5xx or panicked.
if [ "$status" != 0 ]; then
  report="$(ls -t "$report_dir"/ndjson-*.ndjson 2>/dev/null | head -n 1 || true)"
  if [ -n "$report" ]; then
    log "classifying the failures"
    verdict=0
    python3 "$ROOT/scripts/schemathesis_verdict.py" "$report" ${SCHEMATHESIS_FUNCTION_LOG:+"$SCHEMATHESIS_FUNCTION_LOG"} || verdict=$?
    if [ "$verdict" = 3 ]; then
      log "every failure was a response lost by cargo lambda watch; the service answered every request below 500"
      status=0
    fi
  fi
fi
[ "$unauthenticated" = 0 ] || status=1
exit "$status"
