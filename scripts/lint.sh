#!/usr/bin/env bash
# make lint: rustfmt, clippy (warnings are errors), cfn-lint, sam validate --lint, and ruff and
# mypy --strict over the Python client (python/, in .venv-python: scripts/python.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

log "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path shared/fuzz/Cargo.toml -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p conversations --lib --no-default-features --locked -- -D warnings
ensure_python_tool cfn-lint cfn-lint==1.58.0
ensure_python_tool sam aws-sam-cli==1.170.0
log "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
log "sam validate --lint"
AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-x}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-x}" \
  "$VENV/bin/sam" validate --lint --template template.yaml --region "${AWS_REGION:-us-east-1}"
log "the Python client: ruff check, ruff format --check, mypy --strict"
"$ROOT/scripts/python.sh" lint
