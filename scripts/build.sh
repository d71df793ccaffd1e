#!/usr/bin/env bash
# make build: every Lambda function's release binary for arm64 (aarch64-unknown-linux-gnu), as
# `sam build` (BuildMethod rust-cargolambda) makes them: cargo lambda build --release --arm64,
# cross-linked with Zig (from cargo-lambda's PyPI package). Binaries land in target/lambda/<name>/.
# Prints each function's binary and zipped size at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_cargo_lambda
TARGET=aarch64-unknown-linux-gnu
if ! rustup target list --installed | grep -qx "$TARGET"; then
  log "adding the Rust target $TARGET"
  rustup target add "$TARGET"
fi

log "cargo lambda build --release --arm64 (every function)"
cargo lambda build --release --arm64 --locked --workspace --exclude api-tests --exclude bench --exclude hello-world --exclude conversations-client

if [ -n "${CARGO_PROFILE_RELEASE_LTO:-}${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-}${CARGO_PROFILE_RELEASE_OPT_LEVEL:-}" ]; then
  log "sizes (built with CARGO_PROFILE_RELEASE_LTO=${CARGO_PROFILE_RELEASE_LTO:-} CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${CARGO_PROFILE_RELEASE_CODEGEN_UNITS:-} CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-}: not the release profile's, so not the deployed sizes)"
else
  log "sizes"
fi
python3 scripts/sizes.py
