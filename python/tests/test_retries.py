"""The retry policy, unit by unit: the core driven by hand (no I/O, no waiting), and both clients
over ``httpx.MockTransport`` answering as a failing service would."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conversations_client import (
    Aborted,
    AlreadyExists,
    AsyncClient,
    Client,
    InternalError,
    NotFound,
    ResourceExhausted,
    Retry,
    TransportError,
    Unavailable,
)
from conversations_client._core import Answer, Call, Config, Core, Failure, Sleep
from conversations_client.retry import Safety, parse_retry_after
from conversations_client.types import Conversation

BASE = "http://api.test"


def answer(status: int, body: Any = None, **headers: str) -> Answer:
    content = b"" if body is None else json.dumps(body).encode()
    return Answer(status, httpx.Headers(headers), content)


def problem(status: int, code: str, **headers: str) -> Answer:
    return answer(status, {"status": status, "code": code, "detail": code.lower()}, **headers)


def core(attempts: int = 4) -> Core:
    return Core(Config(BASE, owner="o", retry=Retry(attempts=attempts)))


def drive(op: Any, answers: list[Answer | Failure]) -> tuple[Any, list[Call], list[float]]:
    """Runs an operation of the core, handing it ``answers`` in turn; gives its result (or the
    exception it raised), the calls it made and the sleeps it asked for."""
    calls: list[Call] = []
    sleeps: list[float] = []
    queue = iter(answers)
    try:
        step = next(op)
        while True:
            if isinstance(step, Sleep):
                sleeps.append(step.seconds)
                step = op.send(None)
            else:
                calls.append(step)
                step = op.send(next(queue))
    except StopIteration as done:
        return done.value, calls, sleeps
    except Exception as error:
        return error, calls, sleeps


CONVERSATION = {"name": "conversations/c", "etag": '"2"', "agents": ["bot"]}


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    retry = Retry()

    assert retry.delay(0, 3.0) == 3.0
    assert retry.delay(0, 999.0) == retry.max_delay


def test_backoff_is_jittered_below_an_exponential_ceiling() -> None:
    retry = Retry()

    for attempt in range(6):
        ceiling = min(retry.base_delay * 2**attempt, retry.max_delay)
        delays = [retry.delay(attempt, None) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert retry.delay(40, None) <= retry.max_delay


def test_retry_after_is_read_as_seconds_only() -> None:
    assert parse_retry_after(" 2 ") == 2.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None
    with pytest.raises(ValueError, match="at least 1"):
        Retry(attempts=0)


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_read_is_retried_after_a_try_later_answer_waiting_its_retry_after(status: int) -> None:
    result, calls, sleeps = drive(
        core().get_conversation("c"),
        [problem(status, "UNAVAILABLE", **{"retry-after": "7"}), answer(200, CONVERSATION)],
    )

    assert isinstance(result, Conversation)
    assert result.id == "c"
    assert len(calls) == 2
    assert sleeps == [7.0]


@pytest.mark.parametrize("status", [400, 404, 409, 412, 422, 500])
def test_an_answer_that_does_not_ask_to_try_later_is_not_retried(status: int) -> None:
    result, calls, sleeps = drive(core().get_conversation("c"), [problem(status, "X")])

    assert result.status == status
    assert len(calls) == 1
    assert sleeps == []


def test_the_last_attempts_error_is_raised_with_its_retry_after() -> None:
    answers: list[Answer | Failure] = [problem(429, "RESOURCE_EXHAUSTED", **{"retry-after": "1"})]

    result, calls, sleeps = drive(core().get_conversation("c"), answers * 4)

    assert isinstance(result, ResourceExhausted)
    assert result.retry_after == 1.0
    assert len(calls) == 4
    assert sleeps == [1.0, 1.0, 1.0]


def test_a_create_carries_one_request_id_made_for_the_call_across_its_attempts() -> None:
    op = core().create_conversation({"agents": ["bot"]}, conversation_id="c")
    answers: list[Answer | Failure] = [
        problem(503, "UNAVAILABLE"),
        Failure(httpx.ReadTimeout("t"), sent=True),
        answer(201, CONVERSATION),
    ]
    result, calls, _ = drive(op, answers)
    other, other_calls, _ = drive(
        core().create_conversation({"agents": ["bot"]}), [answer(201, CONVERSATION)]
    )

    keys = {dict(c.query)["requestId"] for c in calls}
    assert isinstance(result, Conversation)
    assert len(calls) == 3
    assert len(keys) == 1
    assert dict(other_calls[0].query)["requestId"] not in keys
    assert isinstance(other, Conversation)


def test_appends_and_batches_are_retried_with_their_key() -> None:
    message = {"name": "conversations/c/messages/1", "order": 1}
    for op in (
        core().append_message("c", {"type": "USER", "content": "x"}, request_id="k-1"),
        core().batch_append_messages("c", [{"type": "USER", "content": "x"}], request_id="k-1"),
    ):
        result, calls, _ = drive(
            op, [problem(503, "UNAVAILABLE"), answer(201, {"messages": [message], **message})]
        )
        assert [dict(c.query)["requestId"] for c in calls] == ["k-1", "k-1"]
        assert not isinstance(result, Exception)


def test_writes_without_a_key_or_an_etag_are_sent_once() -> None:
    for op in (
        core().update_conversation("c", {"displayName": "x"}),
        core().update_conversation("c", {"displayName": "x"}, if_match="*"),
        core().delete_conversation("c"),
        core().undelete_conversation("c"),
        core().clear_messages("c"),
        core().purge_conversation("c"),
        core().delete_message("c", 1),
        core().delete_message("c", 1, etag='"m1.1"'),
    ):
        result, calls, _ = drive(op, [problem(503, "UNAVAILABLE")])
        assert isinstance(result, Unavailable)
        assert len(calls) == 1
        assert calls[0].safety is Safety.ONCE


def test_writes_that_a_repeat_cannot_double_are_retried() -> None:
    for op, body in (
        (core().complete_conversation("c"), CONVERSATION),
        (core().delete_conversation("c", allow_missing=True), CONVERSATION),
        (core().purge_conversation("c", allow_missing=True), {}),
        (core().clear_messages("c", through_order=3), CONVERSATION),
    ):
        result, calls, _ = drive(op, [problem(503, "UNAVAILABLE"), answer(200, body)])
        assert not isinstance(result, Exception)
        assert len(calls) == 2
        assert calls[0].safety is Safety.RETRYABLE


def test_a_connection_that_never_opened_is_retried_for_every_call() -> None:
    never_opened = Failure(httpx.ConnectError("refused"), sent=False)

    result, calls, _ = drive(
        core().update_conversation("c", {"displayName": "x"}), [never_opened, answer(200, {})]
    )

    assert isinstance(result, Conversation)
    assert len(calls) == 2


def test_a_timeout_of_a_call_sent_once_is_a_transport_error() -> None:
    timeout = httpx.ReadTimeout("slow")

    result, calls, _ = drive(
        core().update_conversation("c", {"displayName": "x"}), [Failure(timeout, sent=True)]
    )

    assert isinstance(result, TransportError)
    assert result.__cause__ is timeout
    assert len(calls) == 1


def test_retries_switched_off_send_every_call_once() -> None:
    result, calls, _ = drive(core(attempts=1).get_conversation("c"), [problem(503, "UNAVAILABLE")])

    assert isinstance(result, Unavailable)
    assert len(calls) == 1


def test_an_etag_update_refused_after_a_lost_answer_is_recognised_by_its_read_back() -> None:
    op = core().update_conversation(
        "c",
        {"displayName": "New", "labels": {"a": "1"}},
        update_mask="displayName,labels.a",
        etag='"1"',
    )
    read = {**CONVERSATION, "displayName": "New", "labels": {"a": "1", "b": "2"}}

    result, calls, _ = drive(
        op, [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), answer(200, read)]
    )

    assert isinstance(result, Conversation)
    assert result.display_name == "New"
    assert [c.method for c in calls] == ["PATCH", "PATCH", "GET"]
    assert calls[0].safety is Safety.RECOGNISED


def test_a_read_back_that_does_not_hold_the_write_answers_the_refusal() -> None:
    op = core().update_conversation("c", {"displayName": "New"}, if_match='"1"')
    someone_else = {**CONVERSATION, "displayName": "Other"}
    unmoved = {**CONVERSATION, "etag": '"1"', "displayName": "New"}

    result, _, _ = drive(
        op,
        [
            problem(503, "UNAVAILABLE"),
            problem(412, "FAILED_PRECONDITION"),
            answer(200, someone_else),
        ],
    )
    same_etag, _, _ = drive(
        core().update_conversation("c", {"displayName": "New"}, if_match='"1"'),
        [problem(503, "UNAVAILABLE"), problem(412, "FAILED_PRECONDITION"), answer(200, unmoved)],
    )
    failed_read, _, _ = drive(
        core().update_conversation("c", {"displayName": "New"}, if_match='"1"'),
        [
            problem(503, "UNAVAILABLE"),
            problem(412, "FAILED_PRECONDITION"),
            problem(404, "NOT_FOUND"),
        ],
    )

    assert result.status == 412
    assert same_etag.status == 412
    assert failed_read.status == 412


def test_a_refusal_of_the_first_attempt_is_answered_without_a_read() -> None:
    result, calls, _ = drive(
        core().update_conversation("c", {"displayName": "x"}, etag='"1"'), [problem(409, "ABORTED")]
    )

    assert isinstance(result, Aborted)
    assert len(calls) == 1


def test_a_mask_of_everything_or_a_ttl_cannot_be_recognised() -> None:
    for op in (
        core().update_conversation("c", {"displayName": "x"}, update_mask="*", etag='"1"'),
        core().update_conversation("c", {"ttl": "60s"}, etag='"1"'),
    ):
        result, calls, _ = drive(
            op, [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), answer(200, CONVERSATION)]
        )
        assert isinstance(result, Aborted)
        assert len(calls) == 3


def test_each_etag_write_recognises_its_own_refusal_and_state() -> None:
    deleted = {**CONVERSATION, "deleted": True}
    live = {**CONVERSATION, "deleted": False}
    completed = {**CONVERSATION, "lifecycleState": "COMPLETED"}
    cases: list[tuple[Any, Answer, Answer]] = [
        (
            core().delete_conversation("c", etag='"1"'),
            problem(404, "NOT_FOUND"),
            answer(200, deleted),
        ),
        (
            core().undelete_conversation("c", etag='"1"'),
            problem(409, "ALREADY_EXISTS"),
            answer(200, live),
        ),
        (
            core().complete_conversation("c", etag='"1"'),
            problem(409, "ABORTED"),
            answer(200, completed),
        ),
    ]
    for op, refusal, read in cases:
        result, calls, _ = drive(op, [problem(503, "UNAVAILABLE"), refusal, read])
        assert isinstance(result, Conversation), result
        assert calls[-1].method == "GET"

    not_deleted, _, _ = drive(
        core().delete_conversation("c", etag='"1"'),
        [problem(503, "UNAVAILABLE"), problem(404, "NOT_FOUND"), answer(200, live)],
    )
    assert isinstance(not_deleted, NotFound)
    still_deleted, _, _ = drive(
        core().undelete_conversation("c", etag='"1"'),
        [problem(503, "UNAVAILABLE"), problem(409, "ALREADY_EXISTS"), answer(200, deleted)],
    )
    assert isinstance(still_deleted, AlreadyExists)


def test_an_etag_purge_is_recognised_when_the_conversation_is_gone() -> None:
    result, calls, _ = drive(
        core().purge_conversation("c", etag='"1"'),
        [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), problem(404, "NOT_FOUND")],
    )
    still_there, _, _ = drive(
        core().purge_conversation("c", etag='"1"'),
        [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), answer(200, CONVERSATION)],
    )

    assert result is None
    assert [c.method for c in calls] == ["POST", "POST", "GET"]
    assert isinstance(still_there, Aborted)


def test_an_etag_clear_is_recognised_by_the_messages_left() -> None:
    emptied = {**CONVERSATION, "messageCount": 0}
    through, calls, _ = drive(
        core().clear_messages("c", through_order=5, etag='"1"'),
        [
            problem(503, "UNAVAILABLE"),
            problem(409, "ABORTED"),
            answer(200, {**CONVERSATION, "messageCount": 3}),
            answer(200, {"messages": []}),
        ],
    )
    everything, _, _ = drive(
        core().clear_messages("c", etag='"1"'),
        [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), answer(200, emptied)],
    )
    left, _, _ = drive(
        core().clear_messages("c", through_order=5, etag='"1"'),
        [
            problem(503, "UNAVAILABLE"),
            problem(409, "ABORTED"),
            answer(200, CONVERSATION),
            answer(200, {"messages": [{"order": 5}]}),
        ],
    )

    assert isinstance(through, Conversation)
    assert through.message_count == 3
    assert dict(calls[-1].query) == {"filter": "order <= 5", "pageSize": "1"}
    assert isinstance(everything, Conversation)
    assert isinstance(left, Aborted)


def test_an_etag_message_edit_is_recognised_by_its_read_back() -> None:
    read = {
        "name": "conversations/c/messages/1",
        "order": 1,
        "content": "[redacted]",
        "metadata": {"k": 1, "other": 2},
        "etag": '"m1.2"',
    }

    result, calls, _ = drive(
        core().update_message(
            "c",
            1,
            {"content": "[redacted]", "metadata": {"k": 1}},
            update_mask=["content", "metadata.k"],
            etag='"m1.1"',
        ),
        [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), answer(200, read)],
    )

    assert not isinstance(result, Exception)
    assert result.content == "[redacted]"
    assert calls[-1].path == ("conversations", "c", "messages", "1")


def test_a_recognised_write_narrows_its_read_back_to_the_fields_asked() -> None:
    read = {**CONVERSATION, "displayName": "New", "category": "c"}

    result, _, _ = drive(
        core().update_conversation("c", {"displayName": "New"}, etag='"1"', fields="name,etag"),
        [problem(503, "UNAVAILABLE"), problem(409, "ABORTED"), answer(200, read)],
    )

    assert isinstance(result, Conversation)
    assert result.to_json() == {"name": "conversations/c", "etag": '"2"'}


@dataclass
class Script:
    """A stand-in service for ``httpx.MockTransport``: answers in turn, requests recorded."""

    answers: list[Callable[[httpx.Request], httpx.Response]]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[min(len(self.requests), len(self.answers)) - 1](request)


def respond(status: int, body: Any, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(status, json=body, headers=headers)


def fail(error: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise error("scripted", request=request)

    return raise_it


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(kind: str, script: Script, call: Callable[[Any], Any], **options: Any) -> Any:
    """``call(client)`` on a client of ``kind`` whose transport is ``script``."""
    options.setdefault("retry", Retry(base_delay=0.0))
    if kind == "sync":
        with Client(
            BASE,
            owner="o",
            http_client=httpx.Client(transport=httpx.MockTransport(script)),
            **options,
        ) as c:
            return call(c)
    import asyncio

    async def go() -> Any:
        transport = httpx.MockTransport(script)
        async with AsyncClient(
            BASE, owner="o", http_client=httpx.AsyncClient(transport=transport), **options
        ) as c:
            result = call(c)
            if hasattr(result, "__anext__"):
                return [item async for item in result]
            return await result

    return asyncio.run(go())


def test_both_clients_retry_a_create_with_one_key_and_the_callers_headers(kind: str) -> None:
    script = Script(
        [respond(503, {"code": "UNAVAILABLE"}, **{"retry-after": "0"}), respond(201, CONVERSATION)]
    )

    created = run(
        kind,
        script,
        lambda c: c.acting_for("u-1").create_conversation({"agents": ["bot"]}),
        token="t-1",
    )

    assert created.id == "c"
    assert len(script.requests) == 2
    keys = {r.url.params["requestId"] for r in script.requests}
    assert len(keys) == 1
    for r in script.requests:
        assert r.headers["authorization"] == "Bearer t-1"
        assert r.headers["x-owner-id"] == "o"
        assert r.headers["x-on-behalf-of"] == "u-1"
        assert r.headers["content-type"] == "application/json"
        assert r.url.path == "/v1/conversations"
        assert json.loads(r.content) == {"agents": ["bot"]}


def test_both_clients_send_a_keyless_update_once_and_raise_the_503(kind: str) -> None:
    script = Script([respond(503, {"code": "UNAVAILABLE"}, **{"retry-after": "3"})])

    with pytest.raises(Unavailable) as raised:
        run(kind, script, lambda c: c.update_conversation("c", {"displayName": "x"}))

    assert len(script.requests) == 1
    assert raised.value.retry_after == 3.0


def test_both_clients_retry_a_connection_that_never_opened_then_give_up(kind: str) -> None:
    script = Script([fail(httpx.ConnectError)])

    with pytest.raises(TransportError) as raised:
        run(kind, script, lambda c: c.delete_conversation("c"))

    assert len(script.requests) == 4
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_both_clients_page_through_a_list_lazily(kind: str) -> None:
    script = Script(
        [
            respond(200, {"conversations": [{"name": "conversations/a"}], "nextPageToken": "t2"}),
            respond(200, {"conversations": [{"name": "conversations/b"}], "nextPageToken": ""}),
        ]
    )

    items = run(kind, script, lambda c: c.list_conversations(page_size=1, filter="x"))

    assert [i.id for i in items] == ["a", "b"]
    assert [r.url.params.get("pageToken") for r in script.requests] == [None, "t2"]
    assert all(r.url.params["pageSize"] == "1" for r in script.requests)


def test_an_answer_that_is_not_a_problem_still_gives_the_code_of_its_status(kind: str) -> None:
    script = Script(
        [lambda _r: httpx.Response(500, text="<html>oops</html>", headers={"x-request-id": "r-9"})]
    )

    with pytest.raises(InternalError) as raised:
        run(kind, script, lambda c: c.get_conversation("c"))

    assert raised.value.code == "INTERNAL"
    assert raised.value.detail == "<html>oops</html>"
    assert raised.value.request_id == "r-9"


def test_a_success_answer_that_is_not_json_is_a_decode_error(kind: str) -> None:
    from conversations_client import DecodeError

    script = Script([lambda _r: httpx.Response(200, text="not json")])

    with pytest.raises(DecodeError):
        run(kind, script, lambda c: c.get_conversation("c"))


def test_path_segments_are_escaped(kind: str) -> None:
    script = Script([respond(200, CONVERSATION)])

    run(kind, script, lambda c: c.get_conversation("a/b?c"))

    assert script.requests[0].url.raw_path == b"/v1/conversations/a%2Fb%3Fc"


def test_the_base_url_and_identity_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVERSATIONS_URL", "https://api.example.com/prod/v1/")
    monkeypatch.setenv("CONVERSATIONS_TOKEN", "tok")
    monkeypatch.setenv("CONVERSATIONS_OWNER", "me")

    with Client() as from_env, Client("http://other:1", token="", owner="you") as given:
        assert from_env.base_url == "https://api.example.com/prod"
        assert from_env._core.config.token == "tok"
        assert from_env.owner == "me"
        assert given.base_url == "http://other:1"
        assert given._core.config.token is None
        assert given.owner == "you"
    monkeypatch.delenv("CONVERSATIONS_URL")
    with Client() as default:
        assert default.base_url == "http://127.0.0.1:9000"
    with pytest.raises(ValueError, match="not an http"):
        Client("ftp://x")
