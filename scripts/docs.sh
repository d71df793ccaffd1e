#!/usr/bin/env bash
# make docs: renders openapi.yaml to one static HTML page (.local/docs/index.html) with Redocly's
# CLI from npm, installed into .local/node.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

REDOCLY_VERSION="2.77.0"
if [ ! -x "$LOCAL/node/node_modules/.bin/redocly" ]; then
  log "installing @redocly/cli $REDOCLY_VERSION from npm into .local/node"
  mkdir -p "$LOCAL/node"
  npm install --silent --no-audit --no-fund --prefix "$LOCAL/node" "@redocly/cli@$REDOCLY_VERSION" >/dev/null
fi
mkdir -p "$LOCAL/docs"
"$LOCAL/node/node_modules/.bin/redocly" build-docs openapi.yaml -o "$LOCAL/docs/index.html"
log "open $LOCAL/docs/index.html in a browser"
