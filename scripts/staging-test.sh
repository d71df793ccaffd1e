#!/usr/bin/env bash
# make staging-test: the black-box HTTP suite (tests/tests/e2e.rs, the same tests make test runs
# against cargo lambda watch) against a deployed stage.
#
#   STAGING_API_URL=https://<api>.execute-api.<region>.amazonaws.com/prod \
#   STAGING_TOKEN=<JWT of one user> STAGING_TOKEN_2=<JWT of another user> make staging-test
#
# The two tokens must belong to different users (different `sub`): the isolation tests use one
# as the owner and the other as an intruder. Optional: STAGING_DELEGATED_TOKEN, a token granting
# the delegation scope (a client-credentials token of a backend), runs the delegation test as a
# service acting for two users; STAGING_TOKEN_HAS_NO_DELEGATION_SCOPE=1 says STAGING_TOKEN lacks
# it, which runs the 403 PERMISSION_DENIED test (ignored by a plain cargo test). Without one of
# them its test is left out by name, and the script says so: run on a stage without its token,
# either test fails rather than pass having tested nothing. The suite touches only conversations
# it creates and deletes them (soft delete; DynamoDB's TTL purges them at their purgeTime).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

missing=()
for name in STAGING_API_URL STAGING_TOKEN STAGING_TOKEN_2; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "staging tests skipped: ${missing[*]} not set (they need a deployed stack and bearer tokens of two users; see docs/deploy.md)"
  exit 0
fi
if [ "$STAGING_TOKEN" = "$STAGING_TOKEN_2" ]; then
  echo "STAGING_TOKEN and STAGING_TOKEN_2 must be tokens of two different users" >&2
  exit 2
fi
case "$STAGING_API_URL" in
  https://*) ;;
  *) echo "STAGING_API_URL must be an https:// URL, not $STAGING_API_URL" >&2; exit 2 ;;
esac

log "black-box tests against $STAGING_API_URL"
unset API_BASE_URL
delegated=one_service_identity_acting_for_two_users_keeps_them_apart_in_every_method_and_list
unscoped=on_staging_a_token_without_the_delegation_scope_is_403_with_x_on_behalf_of
left_out=()
not_run=()
if [ -z "${STAGING_DELEGATED_TOKEN:-}" ]; then
  left_out=(--skip "$delegated")
  not_run+=("$delegated (set STAGING_DELEGATED_TOKEN, a token granting the delegation scope)")
fi
# The raw HTTP tests, then the typed client and the `conversations` command line against the
# same stage (the command line's binary is built first: the CLI tests run it).
cargo build --locked -p conversations-client
cargo test --locked -p api-tests --test e2e --test client --test cli -- "${left_out[@]}"
if [ "${STAGING_TOKEN_HAS_NO_DELEGATION_SCOPE:-}" = 1 ]; then
  cargo test --locked -p api-tests --test e2e -- --ignored --exact "$unscoped"
else
  not_run+=("$unscoped (set STAGING_TOKEN_HAS_NO_DELEGATION_SCOPE=1 when STAGING_TOKEN lacks the delegation scope)")
fi
for test in "${not_run[@]}"; do echo "not run: $test"; done
