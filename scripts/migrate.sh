#!/usr/bin/env bash
# make migrate: rewrites the local table (.local/dynamodb-data, the one make dev serves) into this
# version's layout, when an earlier version wrote it. With AWS_ENDPOINT_URL_DYNAMODB set, that
# endpoint's table instead; for a deployed table see docs/deploy.md ("Upgrading"). Arguments go to
# the tool: scripts/migrate.sh --again scans a table already marked.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export CONVERSATIONS_TABLE="${CONVERSATIONS_TABLE:-conversations}"
DDB_PID=""
cleanup() { stop_pid "$DDB_PID"; }
trap cleanup EXIT

if [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  use_local_aws "$AWS_ENDPOINT_URL_DYNAMODB"
else
  ensure_dynamodb_local
  DDB_PORT="$(free_port)"
  log "starting DynamoDB Local on port $DDB_PORT (data in .local/dynamodb-data)"
  start_dynamodb_local "$DDB_PORT" "$LOCAL/dynamodb-data" "$LOCAL/dynamodb-local.log"
  use_local_aws "http://127.0.0.1:$DDB_PORT"
fi
cargo run --quiet --locked -p api-tests --bin migrate -- "$CONVERSATIONS_TABLE" "$@"
