"""Problem answers as exceptions, and answers as dataclasses that keep what they do not know."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import conversations_client
from conversations_client import (
    Aborted,
    AlreadyExists,
    APIError,
    Conversation,
    FailedPrecondition,
    FieldError,
    InvalidArgument,
    Message,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionFailed,
    ResourceExhausted,
    StaleEtag,
    Unauthenticated,
    Unavailable,
    UnsupportedMedia,
)
from conversations_client.errors import error_from_answer

PROBLEM = b"""{"type":"about:blank","title":"Unprocessable Content","status":422,
"detail":"2 fields are invalid","code":"INVALID_ARGUMENT",
"errors":[{"field":"agents","code":"required","message":"at least one agent is required"}],
"requestId":"r-1"}"""


def test_a_problem_body_gives_its_code_fields_and_request_id() -> None:
    error = error_from_answer(422, PROBLEM, request_id="header-id", retry_after=None)

    assert isinstance(error, InvalidArgument)
    assert error.errors == [FieldError("agents", "required", "at least one agent is required")]
    assert error.request_id == "r-1"
    assert str(error) == (
        "422 INVALID_ARGUMENT: 2 fields are invalid — agents (required): at least one agent "
        "is required [request r-1]"
    )
    assert error.body["title"] == "Unprocessable Content"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "INVALID_ARGUMENT", InvalidArgument),
        (400, "FAILED_PRECONDITION", FailedPrecondition),
        (401, "UNAUTHENTICATED", Unauthenticated),
        (403, "PERMISSION_DENIED", PermissionDenied),
        (404, "NOT_FOUND", NotFound),
        (409, "ALREADY_EXISTS", AlreadyExists),
        (409, "ABORTED", Aborted),
        (412, "FAILED_PRECONDITION", PreconditionFailed),
        (413, "PAYLOAD_TOO_LARGE", PayloadTooLarge),
        (415, "UNSUPPORTED_MEDIA_TYPE", UnsupportedMedia),
        (429, "RESOURCE_EXHAUSTED", ResourceExhausted),
        (503, "UNAVAILABLE", Unavailable),
    ],
)
def test_each_code_is_its_own_exception(status: int, code: str, kind: type[APIError]) -> None:
    error = error_from_answer(status, f'{{"code":"{code}"}}'.encode(), retry_after=2.0)

    assert type(error) is kind
    assert error.status == status
    assert error.code == code
    assert error.retry_after == 2.0
    assert isinstance(error, conversations_client.ConversationsError)
    assert isinstance(error, StaleEtag) == (code == "ABORTED" or status == 412)


def test_an_unknown_code_is_a_plain_api_error_keeping_the_code() -> None:
    error = error_from_answer(409, b'{"code":"NEW_THING"}')

    assert type(error) is APIError
    assert error.code == "NEW_THING"


def test_a_gateway_page_without_a_problem_takes_its_code_from_the_status() -> None:
    error = error_from_answer(502, b"<html>bad gateway</html>", request_id="x")

    assert isinstance(error, Unavailable)
    assert error.detail == "<html>bad gateway</html>"
    assert error.request_id == "x"


def test_an_answer_keeps_the_fields_this_client_does_not_know() -> None:
    data = {
        "name": "conversations/c",
        "messageCount": 3,
        "futureField": {"x": [1]},
        "messages": [{"name": "conversations/c/messages/1", "order": 1, "newThing": True}],
    }

    conversation = Conversation.from_json(data)

    assert conversation.id == "c"
    assert conversation.message_count == 3
    assert conversation.extra == {"futureField": {"x": [1]}}
    assert conversation.messages is not None
    assert conversation.messages[0].extra == {"newThing": True}
    assert conversation.messages[0].conversation_id == "c"
    assert conversation.to_json() == data
    assert Message.from_json({}).to_json() == {}


def test_importing_the_package_pulls_in_no_framework() -> None:
    code = (
        "import sys, conversations_client, conversations_client.ids;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('agents', 'google', 'strands', 'langchain_core', 'pydantic')];"
        "print(','.join(bad))"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == ""


def test_the_package_is_typed() -> None:
    assert (Path(conversations_client.__file__).parent / "py.typed").is_file()
