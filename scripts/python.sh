#!/usr/bin/env bash
# The Python client (python/): its own virtual environment, lint and tests.
#
#   scripts/python.sh setup        .venv-python with ./python[all] (editable) and the pinned dev tools
#   scripts/python.sh lint         ruff check, ruff format --check, mypy --strict
#   scripts/python.sh test [ARGS]  pytest (ARGS passed on) against CONVERSATIONS_URL
#
# setup reinstalls only when python/pyproject.toml or python/requirements-dev.txt changed since
# the last install (their hash is kept in .venv-python/.installed), so a rerun costs nothing.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

PY_VENV="$ROOT/.venv-python"

ensure_python_client_venv() {
  local want have=""
  want="$(cat python/pyproject.toml python/requirements-dev.txt | sha256sum | cut -d' ' -f1)"
  [ -f "$PY_VENV/.installed" ] && have="$(cat "$PY_VENV/.installed")"
  if [ -x "$PY_VENV/bin/python" ] && [ "$want" = "$have" ]; then
    return 0
  fi
  local start=$SECONDS
  if [ ! -x "$PY_VENV/bin/python" ]; then
    log "creating .venv-python"
    python3 -m venv "$PY_VENV"
    log "created .venv-python in $((SECONDS - start)) s"
  fi
  log "installing ./python[all] and the dev tools into .venv-python"
  "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check \
    -r python/requirements-dev.txt -e "./python[all]"
  echo "$want" >"$PY_VENV/.installed"
  log "installed in $((SECONDS - start)) s"
}

case "${1:-}" in
  setup)
    ensure_python_client_venv
    ;;
  lint)
    ensure_python_client_venv
    cd python
    log "ruff check python/"
    "$PY_VENV/bin/ruff" check .
    log "ruff format --check python/"
    "$PY_VENV/bin/ruff" format --check .
    log "mypy --strict python/"
    "$PY_VENV/bin/mypy"
    ;;
  test)
    shift
    ensure_python_client_venv
    cd python
    "$PY_VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: scripts/python.sh setup | lint | test [pytest arguments]" >&2
    exit 2
    ;;
esac
