#!/usr/bin/env bash
# make dev: the whole API on http://127.0.0.1:${PORT:-9000}/v1/... through cargo lambda watch,
# backed by DynamoDB Local (data kept in .local/dynamodb-data) unless AWS_ENDPOINT_URL_DYNAMODB
# names another endpoint. Ctrl-C stops everything it started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PORT="${PORT:-9000}"
export CONVERSATIONS_TABLE="${CONVERSATIONS_TABLE:-conversations}"
ensure_cargo_lambda

DDB_PID=""
cleanup() { stop_pid "$DDB_PID"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  log "using DynamoDB at $AWS_ENDPOINT_URL_DYNAMODB"
  use_local_aws "$AWS_ENDPOINT_URL_DYNAMODB"
else
  ensure_dynamodb_local
  DDB_PORT="${DYNAMODB_PORT:-8000}"
  if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $DDB_PORT)) != 0)"; then
    DDB_PORT="$(free_port)"
  fi
  log "starting DynamoDB Local on port $DDB_PORT (data in .local/dynamodb-data)"
  start_dynamodb_local "$DDB_PORT" "$LOCAL/dynamodb-data" "$LOCAL/dynamodb-local.log"
  use_local_aws "http://127.0.0.1:$DDB_PORT"
fi

log "creating table $CONVERSATIONS_TABLE if missing"
cargo run --quiet -p api-tests --bin create-table -- "$CONVERSATIONS_TABLE"

log "serving the API on http://127.0.0.1:$PORT/v1/conversations (identity: X-Owner-Id header)"
CONVERSATIONS_AUTH=header cargo lambda watch --disable-cors -A 127.0.0.1 -P "$PORT"
