"""Schemathesis hooks of scripts/schemathesis.sh: the contract's rules that JSON Schema cannot
state, as one table, and what is done with it.

1. `RULES`: for each operation (by operationId), the 4xx answers the contract gives to a request that the schema
   calls valid (an `expireTime` in the past, a stale `If-Match`, an id nobody created...), each
   naming its rule. `python3 schemathesis_hooks.py --toml` prints the per-operation
   `positive_data_acceptance` statuses of the configuration from it, so the two cannot disagree.
2. The check `contract_rule`: a 4xx that the configuration accepts passes only if its problem
   document says it is that rule: its `code`, and the fields of its `errors` or its `detail`. A
   4xx of the right status for another reason fails the run. Requests the schema calls invalid
   (negative cases) must be refused as invalid input (400/422 INVALID_ARGUMENT, 413, 415), as
   unrouted (405 METHOD_NOT_ALLOWED) or as missing (404 NOT_FOUND).
3. Against the local emulator only (`SCHEMATHESIS_LOCAL_EMULATOR=1`): request bodies that are not
   UTF-8 are left out. cargo lambda watch (1.9.2, the newest release) turns a body whose
   Content-Type is application/json or text/* into a JSON string before any function runs, and
   answers its own `500 text/plain` when those bytes are not UTF-8: no function of ours sees the
   request. The handler's answer to such bodies is proven in-process, where it gets the raw bytes
   (tests/tests/handlers.rs `a_body_that_is_not_utf_8_is_400`).
"""

import json
import os
import re
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rule:
    status: int
    code: str
    why: str
    # A 422's errors: every (field, code) must be one of these; an error's field matches a rule's
    # field once its indexes are dropped (`messages[3].toolCalls[0].id` is
    # `messages.toolCalls.id`) when it is that field or inside it (`labels.team` is in `labels`).
    # ANY_FIELD: at least one, any. None: the detail is matched instead, if given.
    fields: frozenset = None
    detail: str = None
    # Only in these phases (the coverage phase builds header values of [A-Za-z0-9] only, so it
    # cannot build a valid If-Match, and labels its placeholder `If-Match: 0` positive).
    phases: frozenset = None

    def matches(self, status, problem, phase):
        if status != self.status or problem.get("code") != self.code:
            return False
        if self.phases is not None and phase not in self.phases:
            return False
        if self.fields is ANY_FIELD:
            return bool(problem.get("errors"))
        if self.fields is not None:
            errors = problem.get("errors") or []
            return bool(errors) and all(_explained(e, self.fields) for e in errors)
        if self.detail is not None:
            return re.search(self.detail, problem.get("detail", "")) is not None
        return True


def _fields(*pairs):
    return frozenset(pairs)


def _explained(error, fields):
    """Whether one entry of a 422's `errors` is one of the rule's (field, code) pairs."""
    name = re.sub(r"\[[0-9]+\]", "", error.get("field", ""))
    code = error.get("code")
    return any(
        code == want and (name == field or name.startswith(field + "."))
        for field, want in fields
    )


ANY_FIELD = frozenset({("*", "*")})


MISSING = Rule(404, "NOT_FOUND", "an id no case created, or another caller's (404, never 403)")
STALE_BODY = Rule(409, "ABORTED", "a body etag that is stale, or names a conversation that is not there (AIP-154)")
STALE_IF_MATCH = Rule(412, "FAILED_PRECONDITION", "an If-Match that names no current etag (RFC 9110)")
IF_MATCH_PLACEHOLDER = Rule(
    400, "INVALID_ARGUMENT", "the coverage phase's If-Match placeholder, which is not an entity tag",
    detail=r"^If-Match must be \* or a list of quoted entity tags", phases=frozenset({"coverage"}),
)
PRECONDITIONS = [STALE_BODY, STALE_IF_MATCH, IF_MATCH_PLACEHOLDER]
KEY_PLACEHOLDER = Rule(
    400, "INVALID_ARGUMENT", "the coverage phase's Idempotency-Key placeholder, which is not a UUID",
    detail=r"^Idempotency-Key .* is not a UUID", phases=frozenset({"coverage"}),
)
TWO_KEYS = Rule(
    400, "INVALID_ARGUMENT", "requestId and Idempotency-Key given with different keys",
    detail=r"^requestId and Idempotency-Key name different keys",
)
# What JSON Schema cannot say of a message: unique tool call ids, sizes in bytes.
MESSAGE_VALUES = _fields(
    ("toolCalls.id", "duplicate"), ("toolCalls.arguments", "too_large"),
    ("metadata", "too_large"), ("content", "too_long"),
)
# An idempotency key an earlier case used with other messages (the coverage phase repeats
# its example values).
KEY_REUSED = _fields(("requestId", "reused"))
# A message's own rule as a batch names it; and the conversation's metadata after a batch's
# `conversationMetadata`, or one value of it alone, past 16 KiB (its keys' rule and count are the
# schema's).
BATCH_VALUES = (
    frozenset((f"messages.{f}", c) for f, c in MESSAGE_VALUES)
    | KEY_REUSED
    | _fields(("conversationMetadata", "too_large"))
)
MESSAGE_STATES = [
    MISSING,
    *PRECONDITIONS,
    TWO_KEYS,
    KEY_PLACEHOLDER,
    Rule(400, "FAILED_PRECONDITION", "append to a COMPLETED conversation", detail=r"is COMPLETED"),
    # The coverage phase repeats its example keys, and the stateful links delete and clear what
    # they appended.
    Rule(
        409, "ALREADY_EXISTS", "a repeated idempotency key whose messages were deleted or cleared since",
        detail=r"^a message this idempotency key appended to .* was deleted or cleared since",
    ),
]
EXPIRY = _fields(("expireTime", "invalid"), ("ttl", "conflict"), ("ttl", "invalid"))

RULES = {
    "createConversation": [
        TWO_KEYS,
        KEY_PLACEHOLDER,
        Rule(409, "ALREADY_EXISTS", "a conversationId an earlier case created", detail=r"already exists$"),
        Rule(422, "INVALID_ARGUMENT", "expireTime must be in the future; ttl and expireTime are exclusive", fields=EXPIRY),
    ],
    "listConversations": [],
    "getConversation": [
        MISSING,
        Rule(400, "INVALID_ARGUMENT", "fields may name messages only with view=FULL", detail=r'^fields names an unknown field "messages"'),
    ],
    "updateConversation": [
        MISSING,
        *PRECONDITIONS,
        Rule(400, "INVALID_ARGUMENT", "conversationProfile is immutable after create", detail=r"^conversationProfile is immutable"),
        Rule(400, "INVALID_ARGUMENT", "phoneNumber is immutable after create", detail=r"^phoneNumber is immutable"),
        Rule(400, "INVALID_ARGUMENT", "two mask paths of which one holds the other (AIP-161)", detail=r"^updateMask paths .* overlap"),
        Rule(400, "INVALID_ARGUMENT", "a mask of more than 100 distinct paths", detail=r"^updateMask names more than 100 paths"),
        Rule(409, "ALREADY_EXISTS", "allowMissing on a soft-deleted conversation", detail=r"is soft-deleted"),
        Rule(
            422, "INVALID_ARGUMENT", "expireTime in the future; a mask naming agents needs agents; at most 64 labels",
            fields=EXPIRY | _fields(("agents", "required"), ("labels", "too_many"), ("metadata", "too_large")),
        ),
    ],
    "deleteConversation": [MISSING, *PRECONDITIONS],
    "undeleteConversation": [
        MISSING,
        *PRECONDITIONS,
        Rule(409, "ALREADY_EXISTS", "undelete of a live conversation", detail=r"is not deleted$"),
    ],
    "completeConversation": [MISSING, *PRECONDITIONS],
    "appendMessage": [
        *MESSAGE_STATES,
        Rule(422, "INVALID_ARGUMENT", "tool call ids unique, sizes in bytes, a key reused", fields=MESSAGE_VALUES | KEY_REUSED),
    ],
    "batchAppendMessages": [
        *MESSAGE_STATES,
        Rule(422, "INVALID_ARGUMENT", "each message's byte sizes and unique tool call ids, a key reused", fields=BATCH_VALUES),
    ],
    "updateMessage": [
        MISSING,
        *PRECONDITIONS,
        Rule(
            400, "INVALID_ARGUMENT", "type or toolCallId in a body without a mask, other than the stored ones",
            detail=r"^(type|toolCallId) cannot change",
        ),
        Rule(
            400, "INVALID_ARGUMENT", "a mask naming metadata and metadata.<key>",
            detail=r"^updateMask paths metadata and metadata\.<key> overlap",
        ),
        Rule(
            422, "INVALID_ARGUMENT", "the edited message must be one an append accepts",
            fields=MESSAGE_VALUES | _fields(
                ("content", "required"), ("toolCalls", "not_allowed"), ("toolCalls", "invalid"),
            ),
        ),
    ],
    "listMessages": [
        MISSING,
        Rule(
            400, "INVALID_ARGUMENT", "a page token issued before a purge, on the conversation created again under its id",
            detail=r"^pageToken was issued for an earlier conversation of ",
        ),
    ],
    # An order that is not a positive integer names no message: 404, as a missing one.
    "getMessage": [MISSING],
    "deleteMessage": [MISSING, *PRECONDITIONS],
    "clearMessages": [MISSING, *PRECONDITIONS],
    "purgeConversation": [MISSING, *PRECONDITIONS],
}

# Output-only fields of request bodies: the schema marks them readOnly, so Schemathesis calls a
# body that carries them invalid, but the contract ignores them (AIP-203).
READ_ONLY = {
    "name", "lifecycleState", "endTime", "createTime", "updateTime", "lastUsedTime", "deleted",
    "deleteTime", "purgeTime", "messageCount", "owner", "can", "messages", "order",
}
MESSAGE_READ_ONLY = {"name", "order", "createTime", "updateTime"}


def ignored_violation(operation_id, case):
    """Whether a negative case may be invalid only in a way the contract ignores: an unknown
    header (HTTP ignores it) or output-only body fields. The operation's own rules then apply
    too: such a request reaches them like a valid one."""
    headers = {k.lower() for k in (case.headers or {})}
    if any(h.startswith("x-schemathesis-unknown") for h in headers):
        return True
    body = case.body if isinstance(case.body, dict) else {}
    if operation_id == "batchAppendMessages":
        items = body.get("messages") if isinstance(body.get("messages"), list) else []
        return any(isinstance(m, dict) and MESSAGE_READ_ONLY & set(m) for m in items)
    names = MESSAGE_READ_ONLY if operation_id in ("appendMessage", "updateMessage") else READ_ONLY
    return bool(names & set(body))


# What a request the schema calls invalid may get.
NEGATIVE = [
    Rule(400, "INVALID_ARGUMENT", "invalid input"),
    Rule(422, "INVALID_ARGUMENT", "invalid field values, each listed", fields=ANY_FIELD),
    Rule(413, "PAYLOAD_TOO_LARGE", "a body over 256 KiB"),
    Rule(415, "UNSUPPORTED_MEDIA_TYPE", "a body that is not application/json"),
    Rule(405, "METHOD_NOT_ALLOWED", "a method the path does not serve"),
    Rule(
        404, "NOT_FOUND",
        "an order that is not a positive integer names no message; or the invalid part never reached the wire (an empty query parameter name)",
    ),
]


def toml():
    """The per-operation positive_data_acceptance statuses, from RULES."""
    blocks = []
    for operation_id, rules in RULES.items():
        extra = ""
        if operation_id == "getConversation":
            # AIP-164 soft delete: GET of a deleted conversation is 200 with deleted=true (list
            # messages, update and append are still expected to be 404 after a delete).
            extra = "checks.use_after_free.enabled = false\n"
        statuses = ["2xx"] + sorted({str(r.status) for r in rules if r.phases is None})
        blocks.append(
            "[[operations]]\n"
            f'include-operation-id = "{operation_id}"\n' + extra
            + f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}\n"
        )
        # A negative case invalid only where the contract ignores it reaches the operation's
        # rules (`ignored_violation`); contract_rule tells those apart from the others.
        negative = sorted({str(r.status) for r in NEGATIVE + rules})
        blocks[-1] += f"checks.negative_data_rejection.expected-statuses = {json.dumps(negative)}\n"
        coverage = ["2xx"] + sorted({str(r.status) for r in rules})
        if coverage != statuses:
            blocks[-1] += (
                f"phases.coverage.checks.positive_data_acceptance.expected-statuses = {json.dumps(coverage)}\n"
            )
    negative = sorted({str(r.status) for r in NEGATIVE})
    return (
        "[checks.negative_data_rejection]\n"
        f"expected-statuses = {json.dumps(negative)}\n\n" + "\n".join(blocks)
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--toml"]:
        print(toml())
        sys.exit(0)
    sys.exit("usage: schemathesis_hooks.py --toml")


import schemathesis  # noqa: E402  (only the hooks need it; --toml runs without it)


def _problem(response):
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None


@schemathesis.check
def contract_rule(ctx, response, case):
    """A 4xx must be the contract rule its status stands for, not just any 4xx of that status."""
    status = response.status_code
    meta = case.meta
    if meta is None or not 400 <= status < 500:
        return None
    label = f"{case.method.upper()} {case.operation.path}"
    operation_id = case.operation.schema.get_operation_id(case.operation)
    phase = str(meta.phase.name)
    positive = meta.generation.mode.is_positive
    rules = RULES.get(operation_id, [])
    if not positive:
        rules = NEGATIVE + (rules if ignored_violation(operation_id, case) else [])
    problem = _problem(response)
    if problem is None:
        raise AssertionError(f"{label} answered {status} without a JSON problem document")
    if any(rule.matches(status, problem, phase) for rule in rules):
        return None
    listed = "; ".join(f"{r.status} {r.code}: {r.why}" for r in rules) or "none"
    raise AssertionError(
        f"{label} refused a {'valid' if positive else 'invalid'} request ({phase} phase) with "
        f"{status} {problem.get('code')} ({problem.get('detail')!r}, errors "
        f"{[(e.get('field'), e.get('code')) for e in problem.get('errors', [])]}), which no contract "
        f"rule for it explains. The rules: {listed}"
    )


if os.environ.get("SCHEMATHESIS_LOCAL_EMULATOR") == "1":

    @schemathesis.hook
    def filter_body(context, body):
        if isinstance(body, (bytes, bytearray)):
            try:
                bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                return False
        return True


ON_BEHALF_OF = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")


@schemathesis.hook
def before_call(context, case, **kwargs):
    """A well-formed `X-On-Behalf-Of` makes the request another owner's (the pair caller/user):
    a conversation created with one value is, rightly, 404 to calls with another value or none,
    which the stateful links cannot know. So only malformed values are sent (the 400 of negative
    cases); delegation itself is proven by tests/tests/delegation.rs and e2e.rs."""
    headers = case.headers or {}
    for name in [k for k in headers if k.lower() == "x-on-behalf-of"]:
        value = headers[name]
        if isinstance(value, str) and ON_BEHALF_OF.match(value):
            del headers[name]
