#!/usr/bin/env bash
# make deploy: sam build (arm64 release binaries through cargo lambda), then sam deploy --guided,
# which asks for the stack's parameters the first time and saves them in samconfig.toml.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_cargo_lambda
ensure_python_tool sam aws-sam-cli==1.170.0
"$VENV/bin/sam" build
"$VENV/bin/sam" deploy --guided "$@"
