"""conversations_client.adk: ADK's session service on the stack, held to what ADK's own session
services promise (the behaviours of google/adk-python's shared session-service contract tests,
restated here), and the event ↔ message mapping on its own."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import httpx
import pytest

pytest.importorskip("google.adk")

from google.adk.agents.llm_agent import LlmAgent
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.sessions.base_session_service import GetSessionConfig
from google.adk.sessions.session import Session
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.genai import types
from pydantic import Field

from api_proxy import LOSE_ANSWER, ApiProxy, Rule
from conversations_client import AsyncClient, Message, MessageInput, NotFound, Retry
from conversations_client.adk import (
    STALE_SESSION_ERROR_MESSAGE,
    ConversationsSessionService,
    event_to_messages,
    messages_to_event,
    metadata_to_state,
    state_to_metadata,
)

APP = "my_app"


@pytest.fixture
async def aclient_for(stack_url: str, owner: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(stack_url, owner=owner, token="") as client:
        yield client


@pytest.fixture
def service(aclient_for: AsyncClient) -> ConversationsSessionService:
    return ConversationsSessionService(client=aclient_for)


def text_event(text: str, *, author: str = "user", **fields: Any) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        invocation_id=fields.pop("invocation_id", "inv"),
        author=author,
        content=types.Content(role=role, parts=[types.Part(text=text)]),
        **fields,
    )


def delta_event(delta: dict[str, Any], **fields: Any) -> Event:
    return Event(
        invocation_id="inv", author="user", actions=EventActions(state_delta=delta), **fields
    )


async def reload(service: ConversationsSessionService, session: Session) -> Session:
    got = await service.get_session(
        app_name=session.app_name, user_id=session.user_id, session_id=session.id
    )
    assert got is not None
    return got


# The mapping on its own: what the service would store and give back.


def as_stored(messages: Sequence[MessageInput], first_order: int = 1) -> list[Message]:
    """``messages`` as the service answers them, after checking them against the contract's
    rules for a message and a batch."""
    assert 1 <= len(messages) <= 50
    stored = []
    for offset, message in enumerate(messages):
        content = message.get("content", "")
        if not (message["type"] == "AGENT" and message.get("toolCalls")):
            assert 1 <= len(content.encode()) <= 64 * 1024, message["type"]
        for call in message.get("toolCalls", []):
            assert call["id"]
            assert call["name"]
        if "toolCallId" in message:
            assert message["type"] == "TOOL"
        metadata = message.get("metadata", {})
        assert (
            len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
            <= 16 * 1024
        )
        order = first_order + offset
        stored.append(
            Message.from_json(
                {
                    **message,
                    "name": f"conversations/c/messages/{order}",
                    "order": order,
                    "createTime": "2026-12-02T08:00:00.000000Z",
                }
            )
        )
    return stored


def round_trip(event: Event) -> tuple[list[MessageInput], Event]:
    messages = event_to_messages(event)
    return messages, messages_to_event(as_stored(messages))


def sample_events() -> dict[str, Event]:
    call = types.FunctionCall(
        id="adk-1", name="get_weather", args={"city": "Zürich", "days": [1, 2]}
    )
    return {
        "user text in any script": text_event('Grüß dich — 你好 — مرحبا ☕ \u0000 \n"quoted"'),
        "model text with a call and a thought": Event(
            invocation_id="inv",
            author="bot",
            content=types.Content(
                role="model",
                parts=[
                    types.Part(text="thinking…", thought=True, thought_signature=b"\x00sig"),
                    types.Part(text="Let me look. "),
                    types.Part(text=""),
                    types.Part(text="One moment."),
                    types.Part(function_call=call),
                ],
            ),
            long_running_tool_ids={"adk-1"},
        ),
        "two function responses": Event(
            invocation_id="inv",
            author="bot",
            content=types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            id="adk-1", name="get_weather", response={"t": 21.5, "n": {"a": [None]}}
                        )
                    ),
                    types.Part(
                        function_response=types.FunctionResponse(
                            id="not a valid id!", name="other", response={"ok": True}
                        )
                    ),
                ],
            ),
        ),
        "state only": delta_event({"k": {"nested": [1, {"x": None}]}, "app:a": 1, "user:u": "é"}),
        "bytes and grounding": Event(
            invocation_id="inv",
            author="user",
            content=types.Content(
                role="user", parts=[types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")]
            ),
            grounding_metadata=types.GroundingMetadata(
                search_entry_point=types.SearchEntryPoint(sdk_blob=b"blob")
            ),
        ),
        "every field": Event(
            invocation_id="invocation",
            author="user",
            content=types.Content(role="user", parts=[types.Part(text="test_text")]),
            turn_complete=True,
            partial=False,
            actions=EventActions(
                artifact_delta={"file": 0},
                transfer_to_agent="agent",
                escalate=True,
                requested_tool_confirmations={
                    "call-1": ToolConfirmation(hint="sure?", confirmed=False, payload={"id": 1})
                },
            ),
            long_running_tool_ids={"tool1"},
            error_code="error_code",
            error_message="error_message",
            interrupted=True,
            grounding_metadata=types.GroundingMetadata(web_search_queries=["query1"]),
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=1, candidates_token_count=1, total_token_count=2
            ),
            citation_metadata=types.CitationMetadata(),
            custom_metadata={"custom_key": "custom_value"},
            timestamp=1700000000.123,
            input_transcription=types.Transcription(text="in", finished=True),
            output_transcription=types.Transcription(text="out", finished=True),
        ),
        "a call the contract cannot name": Event(
            invocation_id="inv",
            author="bot",
            content=types.Content(
                role="model",
                parts=[
                    types.Part(function_call=types.FunctionCall(id="c1", name="bad name!", args={}))
                ],
            ),
        ),
        "a call without an id": Event(
            invocation_id="inv",
            author="bot",
            content=types.Content(
                role="model", parts=[types.Part.from_function_call(name="f", args={"a": 1})]
            ),
        ),
        "text over 64 KiB": text_event("é" * 40_000, author="bot"),
        "empty text": text_event("", author="bot"),
        "large nested metadata": text_event(
            "hi",
            author="bot",
            custom_metadata={"rows": [{"i": i, "s": 'x"y\\z' * 20} for i in range(800)]},
        ),
        "a repeated local hour": text_event("dst", timestamp=1730613600.0),
    }


@pytest.mark.parametrize("name", list(sample_events()))
def test_an_event_comes_back_exactly_from_its_messages(name: str) -> None:
    event = sample_events()[name]

    _, back = round_trip(event)

    assert back == event
    assert back.model_dump(mode="json") == event.model_dump(mode="json")


def test_an_event_takes_the_native_forms_other_clients_read() -> None:
    events = sample_events()

    user, _ = round_trip(events["user text in any script"])
    model, _ = round_trip(events["model text with a call and a thought"])
    tools, _ = round_trip(events["two function responses"])
    state, _ = round_trip(events["state only"])
    odd, _ = round_trip(events["a call the contract cannot name"])
    long, _ = round_trip(events["text over 64 KiB"])

    assert [m["type"] for m in user] == ["USER"]
    assert user[0]["content"] == 'Grüß dich — 你好 — مرحبا ☕ \u0000 \n"quoted"'
    assert model[0]["type"] == "AGENT"
    assert model[0]["content"] == "Let me look. One moment."  # the thought is not content
    assert model[0]["toolCalls"] == [
        {"id": "adk-1", "name": "get_weather", "arguments": {"city": "Zürich", "days": [1, 2]}}
    ]
    assert [(m["type"], m.get("toolCallId")) for m in tools] == [("TOOL", "adk-1"), ("TOOL", None)]
    assert tools[0]["content"] == '{"t": 21.5, "n": {"a": [null]}}'
    assert [m["type"] for m in state] == ["SYSTEM"]
    assert state[0]["content"].startswith("[user: state k, app:a, user:u")
    assert "toolCalls" not in odd[0]
    assert "call bad name!" in odd[0]["content"]
    assert len(long) > 1
    assert long[0]["content"].startswith("[bot: text of 40000 characters")
    assert all(m["metadata"]["adk"]["parts"] == len(long) for m in long)


def test_an_event_larger_than_one_batch_is_refused() -> None:
    event = text_event("big", author="bot", custom_metadata={"blob": "x" * 900_000})

    with pytest.raises(ValueError, match="more than one batch append takes"):
        event_to_messages(event)


def test_a_message_of_another_client_reads_as_an_event_of_its_own() -> None:
    def message(**fields: Any) -> Message:
        return Message.from_json(
            {"order": 7, "createTime": "2026-12-02T08:00:00.500000Z", **fields}
        )

    user = messages_to_event([message(type="USER", content="hello from the CLI")])
    agent = messages_to_event(
        [
            message(
                type="AGENT",
                content="",
                toolCalls=[{"id": "c", "name": "f", "arguments": {"a": 1}}],
            )
        ]
    )
    tool = messages_to_event([message(type="TOOL", content='{"ok": 1}', toolCallId="c")])

    created = datetime.fromisoformat("2026-12-02T08:00:00.500000+00:00").timestamp()
    assert (user.author, user.id, user.timestamp) == ("user", "message-7", created)
    assert user.content is not None
    assert user.content.parts is not None
    assert user.content.parts[0].text == "hello from the CLI"
    assert agent.get_function_calls()[0].args == {"a": 1}
    assert tool.get_function_responses()[0].response == {"ok": 1}
    assert tool.get_function_responses()[0].id == "c"


def test_state_keys_of_any_form_are_kept_apart_in_metadata() -> None:
    state = {"plain": 1, "with space": None, "a:b": {"x": [1]}, "é": False, "k" * 100: "long"}

    metadata = state_to_metadata(state)

    assert metadata_to_state({**metadata, "_sessionId": "s", "other": 1}) == state
    assert len(metadata) == len(state)
    assert all(len(key) <= 64 for key in metadata)
    assert metadata["s_plain"] == {"key": "plain", "value": 1}


# The service on the stack: what ADK's session services promise.


async def test_a_missing_session_reads_as_none(service: ConversationsSessionService) -> None:
    assert await service.get_session(app_name=APP, user_id="u1", session_id="123") is None
    assert await service.get_session(app_name=APP, user_id="u1", session_id="") is None


async def test_a_session_is_created_read_back_equal_deleted_and_created_again_at_once(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", state={"key": "value"})

    got = await service.get_session(app_name=APP, user_id="u1", session_id=session.id)
    await service.delete_session(app_name=APP, user_id="u1", session_id=session.id)
    gone = await service.get_session(app_name=APP, user_id="u1", session_id=session.id)
    await service.delete_session(app_name=APP, user_id="u1", session_id=session.id)  # missing: fine
    again = await service.create_session(app_name=APP, user_id="u1", session_id=session.id)

    assert uuid.UUID(session.id)
    assert (session.app_name, session.user_id, session.state) == (APP, "u1", {"key": "value"})
    assert session.last_update_time <= time.time()
    assert got == session
    assert gone is None
    assert again.id == session.id
    assert again.state == {}
    assert again.events == []


async def test_an_existing_session_id_raises_already_exists(
    service: ConversationsSessionService,
) -> None:
    await service.create_session(app_name=APP, user_id="u1", session_id="existing_session")

    with pytest.raises(AlreadyExistsError, match="Session with id existing_session already exists"):
        await service.create_session(app_name=APP, user_id="u1", session_id="existing_session")


async def test_a_padded_session_id_is_stripped_and_a_blank_one_is_generated(
    service: ConversationsSessionService,
) -> None:
    created = await service.create_session(
        app_name=APP, user_id="u1", session_id="order-42\n", state={"cart": "book"}
    )
    got = await service.get_session(app_name=APP, user_id="u1", session_id=" order-42 ")
    blank = await service.create_session(app_name=APP, user_id="u1", session_id="   ")
    await service.delete_session(app_name=APP, user_id="u1", session_id="order-42\t")

    assert created.id == "order-42"
    assert got is not None
    assert got.state == {"cart": "book"}
    assert blank.id.strip()
    assert blank.id != "   "
    assert await service.get_session(app_name=APP, user_id="u1", session_id="order-42") is None


async def test_sessions_are_listed_least_recently_updated_first_with_merged_state_and_no_events(
    service: ConversationsSessionService,
) -> None:
    for session_id in ("a", "b", "c"):
        await service.create_session(
            app_name=APP, user_id="u1", session_id=session_id, state={"key": session_id}
        )
    await service.create_session(
        app_name=APP, user_id="u2", session_id="d", state={"app:shared": 1, "user:mine": 2}
    )
    session_a = await service.get_session(app_name=APP, user_id="u1", session_id="a")
    assert session_a is not None
    await asyncio.sleep(0.01)
    await service.append_event(session_a, text_event("hi"))

    mine = await service.list_sessions(app_name=APP, user_id="u1")
    everyone = await service.list_sessions(app_name=APP)
    nobody = await service.list_sessions(app_name=APP, user_id="unknown")
    other_app = await service.list_sessions(app_name="other_app")

    assert [s.id for s in mine.sessions] == ["b", "c", "a"]
    assert [s.state for s in mine.sessions] == [
        {"key": "b", "app:shared": 1},
        {"key": "c", "app:shared": 1},
        {"key": "a", "app:shared": 1},
    ]
    assert all(s.events == [] for s in mine.sessions + everyone.sessions)
    assert [(s.user_id, s.id) for s in everyone.sessions] == [
        ("u1", "b"),
        ("u1", "c"),
        ("u2", "d"),
        ("u1", "a"),
    ]
    assert everyone.sessions[2].state == {"app:shared": 1, "user:mine": 2}
    assert nobody.sessions == []
    assert other_app.sessions == []


async def test_app_state_is_shared_by_every_user_user_state_by_a_users_sessions_only(
    service: ConversationsSessionService,
) -> None:
    s1 = await service.create_session(
        app_name=APP,
        user_id="u1",
        session_id="s1",
        state={"app:k1": "v1", "user:k1": "v1", "sk1": 1},
    )
    await service.append_event(s1, delta_event({"app:k2": "v2", "user:k2": "v2", "sk2": 2}))

    s1b = await service.create_session(app_name=APP, user_id="u1", session_id="s1b")
    s2 = await service.create_session(app_name=APP, user_id="u2", session_id="s2")
    s1_again = await reload(service, s1)

    assert s1b.state == {"app:k1": "v1", "app:k2": "v2", "user:k1": "v1", "user:k2": "v2"}
    assert s2.state == {"app:k1": "v1", "app:k2": "v2"}
    assert s1_again.state == {**s1b.state, "sk1": 1, "sk2": 2}
    assert s1_again.state == s1.state


async def test_a_state_delta_replaces_values_stores_none_and_keeps_types(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(
        app_name=APP,
        user_id="u1",
        session_id="s1",
        state={
            "profile": {"name": "ada", "role": "admin"},
            "flag": True,
            "off": False,
            "user:pref": "dark",
        },
    )
    await service.append_event(
        session,
        delta_event({"profile": {"name": "bob"}, "flag": None, "new": True, "user:pref": None}),
    )

    reloaded = await reload(service, session)
    other = await service.create_session(app_name=APP, user_id="u1", session_id="s2")

    expected = {
        "profile": {"name": "bob"},
        "flag": None,
        "off": False,
        "new": True,
        "user:pref": None,
    }
    assert reloaded.state == expected
    assert session.state == expected
    assert "user:pref" in other.state
    assert other.state["user:pref"] is None


async def test_temp_state_stays_in_memory_and_out_of_storage(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    event = delta_event({"temp:k1": "v1", "sk": "v2"})

    await service.append_event(session, event)
    reloaded = await reload(service, session)

    assert session.state == {"temp:k1": "v1", "sk": "v2"}
    assert event.actions.state_delta == {"sk": "v2"}
    assert reloaded.state == {"sk": "v2"}
    assert reloaded.events[0].actions.state_delta == {"sk": "v2"}


async def test_a_value_json_cannot_hold_is_stored_as_its_text(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")

    await service.append_event(session, delta_event({"callback": lambda: 1, "ok": 2}))
    reloaded = await reload(service, session)

    assert len(reloaded.events) == 1
    assert reloaded.state["ok"] == 2
    assert isinstance(reloaded.state["callback"], str)


async def test_get_session_keeps_the_latest_events_and_those_from_a_time_on(
    service: ConversationsSessionService,
) -> None:
    base = int(time.time())
    session = await service.create_session(app_name=APP, user_id="u1")
    for i in range(1, 6):
        await service.append_event(session, Event(author="user", timestamp=base + i))

    async def stamps(**config: Any) -> list[float]:
        got = await service.get_session(
            app_name=APP, user_id="u1", session_id=session.id, config=GetSessionConfig(**config)
        )
        assert got is not None
        return [e.timestamp - base for e in got.events]

    assert await stamps() == [1, 2, 3, 4, 5]
    assert await stamps(num_recent_events=0) == []
    assert await stamps(num_recent_events=3) == [3, 4, 5]
    assert await stamps(num_recent_events=99) == [1, 2, 3, 4, 5]
    assert await stamps(after_timestamp=base + 4) == [4, 5]  # inclusive
    assert await stamps(after_timestamp=base + 4.5) == [5]
    assert await stamps(after_timestamp=base + 50) == []
    assert await stamps(after_timestamp=base + 4, num_recent_events=3) == [4, 5]
    assert await stamps(after_timestamp=base + 1, num_recent_events=2) == [4, 5]
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        GetSessionConfig(num_recent_events=-1)


async def test_a_partial_event_is_not_stored(service: ConversationsSessionService) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")

    returned = await service.append_event(session, Event(author="user", partial=True))

    assert returned.partial
    assert session.events == []
    assert (await reload(service, session)).events == []


@pytest.mark.parametrize("name", list(sample_events()))
async def test_an_appended_event_reads_back_exactly(
    service: ConversationsSessionService, name: str
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")
    event = sample_events()[name]

    await service.append_event(session, event)
    reloaded = await reload(service, session)

    assert reloaded.events == [event]
    assert reloaded == session


async def test_an_event_delivered_twice_is_stored_once_and_distinct_events_sharing_an_id_twice(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")
    event = delta_event({"counter": 1})
    first, second = Event(id="shared", author="user"), Event(id="shared", author="agent")

    await service.append_event(session, event)
    await service.append_event(session, event)
    await service.append_event(session, event.model_copy(deep=True))
    await service.append_event(session, first)
    await service.append_event(session, second)
    reloaded = await reload(service, session)

    assert [e.id for e in reloaded.events] == [event.id, "shared", "shared"]
    assert [e.author for e in reloaded.events] == ["user", "user", "agent"]
    assert reloaded.state == {"counter": 1}


async def test_last_update_time_is_the_event_timestamp(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")
    created = session.last_update_time

    await service.append_event(session, Event(author="user", timestamp=created + 10))
    reloaded = await reload(service, session)

    assert session.last_update_time == created + 10
    assert reloaded.last_update_time == created + 10


async def test_a_stale_session_is_refused_with_adks_message_and_stores_nothing(
    service: ConversationsSessionService,
) -> None:
    now = time.time()
    original = await service.create_session(app_name=APP, user_id="u1")
    await service.append_event(original, delta_event({"sk1": "v1"}, timestamp=now + 1))
    updated = await reload(service, original)
    await service.append_event(updated, delta_event({"sk2": "v2"}, timestamp=now + 2))

    with pytest.raises(StaleSessionError, match="modified in storage") as refused:
        await service.append_event(original, delta_event({"sk3": "v3"}, timestamp=now + 3))
    final = await reload(service, original)

    assert str(refused.value) == STALE_SESSION_ERROR_MESSAGE
    assert isinstance(refused.value, ValueError)
    assert len(original.events) == 1
    assert "sk3" not in original.state
    assert [e.actions.state_delta for e in final.events] == [{"sk1": "v1"}, {"sk2": "v2"}]
    assert final.state == {"sk1": "v1", "sk2": "v2"}


async def test_of_two_copies_of_one_session_appending_at_once_one_is_refused(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")
    for i in range(4):
        latest = await reload(service, session)
        copies = [latest.model_copy(deep=True), latest.model_copy(deep=True)]
        results = await asyncio.gather(
            service.append_event(copies[0], delta_event({f"sk{i}-1": 1})),
            service.append_event(copies[1], delta_event({f"sk{i}-2": 2})),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], StaleSessionError)

    final = await reload(service, session)
    assert len(final.events) == 4
    assert len(final.state) == 4


async def test_a_session_without_a_marker_is_checked_as_the_database_service_checks_it(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    await service.append_event(
        session, Event(invocation_id="inv1", author="user", timestamp=session.last_update_time + 10)
    )
    behind = session.model_copy(deep=True)
    behind._storage_update_marker = None

    session._storage_update_marker = None
    session.last_update_time -= 0.0001  # a float that drifted: still the stored revision
    await service.append_event(
        session, Event(invocation_id="inv2", author="user", timestamp=session.last_update_time + 10)
    )
    behind.last_update_time -= 0.0001
    with pytest.raises(StaleSessionError):
        await service.append_event(behind, Event(invocation_id="inv3", author="user"))

    reloaded = await reload(service, session)
    assert [e.invocation_id for e in reloaded.events] == ["inv1", "inv2"]


async def test_an_append_to_a_deleted_session_raises_session_not_found(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")
    markerless = session.model_copy(deep=True)
    markerless._storage_update_marker = None
    await service.delete_session(app_name=APP, user_id="u1", session_id=session.id)

    with pytest.raises(SessionNotFoundError, match=f"Session {session.id} not found"):
        await service.append_event(session, Event(author="user"))
    with pytest.raises(SessionNotFoundError):
        await service.append_event(markerless, Event(author="user"))


async def test_user_state_is_read_without_a_session_and_kept_per_user_and_app(
    service: ConversationsSessionService,
) -> None:
    assert await service.get_user_state(app_name=APP, user_id="u1") == {}
    session = await service.create_session(app_name=APP, user_id="u1")
    await service.append_event(session, delta_event({"user:profile": {"name": "Alice"}, "sk": 1}))
    await service.append_event(session, delta_event({"user:counter": 2}))

    assert await service.get_user_state(app_name=APP, user_id="u1") == {
        "profile": {"name": "Alice"},
        "counter": 2,
    }
    assert await service.get_user_state(app_name=APP, user_id="u2") == {}
    assert await service.get_user_state(app_name="other_app", user_id="u1") == {}


async def test_users_and_apps_see_only_their_own_sessions(
    service: ConversationsSessionService, aclient_for: AsyncClient
) -> None:
    s1 = await service.create_session(app_name=APP, user_id="u1", session_id="s1")
    await service.append_event(s1, text_event("u1's secret"))
    await service.create_session(app_name=APP, user_id="u2", session_id="s1")
    await service.create_session(app_name="other_app", user_id="u1", session_id="s1")
    odd_user = "Ünïcode user / with spaces"
    await service.create_session(app_name=APP, user_id=odd_user, session_id="s1", state={"x": 1})

    u2 = await service.get_session(app_name=APP, user_id="u2", session_id="s1")
    other_app = await service.get_session(app_name="other_app", user_id="u1", session_id="s1")
    odd = await service.get_session(app_name=APP, user_id=odd_user, session_id="s1")
    conversation_id = service.conversation_id(APP, "s1")

    assert u2 is not None
    assert u2.user_id == "u2"
    assert u2.events == []
    assert other_app is not None
    assert other_app.events == []
    assert odd is not None
    assert odd.state == {"x": 1}
    assert odd.user_id == odd_user
    assert service.on_behalf_of(odd_user).startswith("adk:")
    # Through the API itself: the session belongs to the pair (caller, u1) only.
    got = await aclient_for.acting_for("u1").get_conversation(conversation_id)
    assert got.owner is not None
    assert got.owner.endswith("/u1")
    for stranger in (aclient_for, aclient_for.acting_for("u3")):
        with pytest.raises(NotFound):
            await stranger.get_conversation(conversation_id)


async def test_two_workers_appending_to_one_session_lose_and_double_nothing(
    service: ConversationsSessionService, aclient_for: AsyncClient
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="shared")

    async def same_object(worker: str) -> None:
        for i in range(10):
            await service.append_event(session, text_event(f"{worker}-{i}"))

    async def own_copy(worker: str, client: AsyncClient) -> None:
        # Another process: its own service and its own copy, reloaded when it is refused.
        other = ConversationsSessionService(client=client)
        mine = await reload(other, session)
        for i in range(10):
            event = text_event(f"{worker}-{i}")
            while True:
                try:
                    await other.append_event(mine, event)
                    break
                except StaleSessionError:
                    mine = await reload(other, mine)

    await asyncio.gather(same_object("a"), same_object("b"))
    await asyncio.gather(
        own_copy("c", aclient_for.with_options()), own_copy("d", aclient_for.with_options())
    )
    texts = [
        e.content.parts[0].text or ""
        for e in (await reload(service, session)).events
        if e.content and e.content.parts
    ]

    assert sorted(texts) == sorted(f"{w}-{i}" for w in "abcd" for i in range(10))
    for worker in "abcd":
        assert [t for t in texts if t.startswith(worker)] == [f"{worker}-{i}" for i in range(10)]


async def test_a_lost_answer_is_sent_again_and_stored_once(
    proxy: ApiProxy, service: ConversationsSessionService, owner: str
) -> None:
    async with AsyncClient(
        proxy.base_url, owner=owner, token="", retry=Retry(base_delay=0.05), timeout=5.0
    ) as faulty_client:
        faulty = ConversationsSessionService(client=faulty_client)
        session = await faulty.create_session(app_name=APP, user_id="u1")
        proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/messages/batch"))
        proxy.add(Rule("PATCH", LOSE_ANSWER))  # the user-state write

        await faulty.append_event(session, delta_event({"sk": 1, "user:visits": 1}))
        await faulty.append_event(session, delta_event({"sk": 2}))  # chained on the etag
        proxy.wait_idle()

    batches = proxy.requests("POST", "/messages/batch")
    reloaded = await reload(service, session)
    assert len(batches) == 3
    assert len({b.request_id for b in batches[:2]}) == 1
    assert all(b.status == 201 for b in batches)
    assert len(proxy.requests("PATCH")) == 3  # create's registration, then the lost one twice
    assert [e.actions.state_delta for e in reloaded.events] == [
        {"sk": 1, "user:visits": 1},
        {"sk": 2},
    ]
    assert reloaded.state == {"sk": 2, "user:visits": 1}


async def test_a_delta_of_more_keys_than_one_batch_sets_is_stored_whole(
    service: ConversationsSessionService,
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1")
    delta = {f"key{i}": i for i in range(100)}

    await service.append_event(session, delta_event(delta))
    reloaded = await reload(service, session)

    assert reloaded.state == delta
    assert reloaded == session


async def test_an_edit_of_a_message_through_the_api_shows_in_the_event_read_back(
    service: ConversationsSessionService, aclient_for: AsyncClient
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="redact")
    await service.append_event(session, sample_events()["model text with a call and a thought"])
    await service.append_event(session, sample_events()["two function responses"])
    as_user = aclient_for.acting_for("u1")
    conversation_id = service.conversation_id(APP, "redact")

    await as_user.update_message(conversation_id, 1, {"content": "[redacted]"})
    await as_user.update_message(conversation_id, 2, {"content": '{"t": "[redacted]"}'})
    await as_user.update_message(conversation_id, 3, {"content": "not JSON any more"})
    events = (await reload(service, session)).events

    assert events[0].content is not None
    assert [p.text for p in events[0].content.parts or []][:4] == [
        "thinking…",
        "[redacted]",
        "",
        "",
    ]
    assert [r.response for r in events[1].get_function_responses()] == [
        {"t": "[redacted]"},
        {"result": "not JSON any more"},
    ]


async def test_a_session_reads_well_to_other_clients(
    service: ConversationsSessionService, aclient_for: AsyncClient
) -> None:
    session = await service.create_session(app_name=APP, user_id="u1", session_id="chat")
    for event in [
        sample_events()["user text in any script"],
        sample_events()["model text with a call and a thought"],
        sample_events()["two function responses"],
        text_event("Done.", author="bot"),
    ]:
        await service.append_event(session, event)

    full = await aclient_for.acting_for("u1").get_conversation(
        service.conversation_id(APP, "chat"), view="FULL"
    )

    assert full.display_name == "chat"
    assert [(m.type, m.tool_call_id) for m in full.messages or []] == [
        ("USER", None),
        ("AGENT", None),
        ("TOOL", "adk-1"),
        ("TOOL", None),
        ("AGENT", None),
    ]
    assert [m.content for m in full.messages or []][-1] == "Done."
    assert (full.messages or [])[1].tool_calls == [
        {"id": "adk-1", "name": "get_weather", "arguments": {"city": "Zürich", "days": [1, 2]}}
    ]


async def test_a_long_session_gives_its_latest_events_in_one_round_trip_as_fast_as_a_short_one(
    stack_url: str, owner: str
) -> None:
    requests: list[str] = []

    async def count(request: httpx.Request) -> None:
        requests.append(f"{request.method} {request.url.path}")

    async with (
        httpx.AsyncClient(event_hooks={"request": [count]}) as http,
        AsyncClient(stack_url, owner=owner, token="", http_client=http) as client,
    ):
        service = ConversationsSessionService(client=client)
        base = time.time()
        sessions = {}
        for size in (10, 10_000):
            session = await service.create_session(
                app_name=APP, user_id="u1", session_id=f"s{size}"
            )
            as_user = client.acting_for("u1")
            conversation_id = service.conversation_id(APP, session.id)
            for start in range(0, size, 50):
                messages = [
                    message
                    for i in range(start, min(start + 50, size))
                    for message in event_to_messages(
                        text_event(
                            f"event {i}", author="user" if i % 2 else "bot", timestamp=base + i
                        )
                    )
                ]
                await as_user.batch_append_messages(conversation_id, messages)
            sessions[size] = session

        async def latest(size: int) -> tuple[list[str], float, list[str]]:
            requests.clear()
            started = time.perf_counter()
            got = await service.get_session(
                app_name=APP,
                user_id="u1",
                session_id=f"s{size}",
                config=GetSessionConfig(num_recent_events=20),
            )
            elapsed = time.perf_counter() - started
            assert got is not None
            texts = [
                e.content.parts[0].text or "" for e in got.events if e.content and e.content.parts
            ]
            return texts, elapsed, list(requests)

        timings: dict[int, list[float]] = {10: [], 10_000: []}
        for _ in range(5):
            for size in (10, 10_000):
                texts, elapsed, sent = await latest(size)
                timings[size].append(elapsed)
                assert texts == [f"event {i}" for i in range(max(0, size - 20), size)]
                # The session with its latest 50 messages, the app's and the user's state.
                assert len(sent) == 3, sent
        everything = await service.get_session(app_name=APP, user_id="u1", session_id="s10000")
        await client.acting_for("u1").purge_conversation(service.conversation_id(APP, "s10000"))

    assert everything is not None
    assert len(everything.events) == 10_000
    assert [e.timestamp - base for e in everything.events[:3]] == [0, 1, 2]
    short, long = statistics.median(timings[10]), statistics.median(timings[10_000])
    # The same requests, each reading what it reads on a short session: as fast, give or take
    # the noise of a shared machine.
    assert long < short * 2 + 0.25, (short, long)


class ScriptedModel(BaseLlm):
    """A model that gives its scripted answers in turn."""

    model: str = "scripted"
    script: list[types.Content] = Field(default_factory=list)
    turn: int = 0

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        content = self.script[self.turn]
        self.turn += 1
        yield LlmResponse(
            content=content,
            usage_metadata=types.GenerateContentResponseUsageMetadata(total_token_count=0),
        )


async def test_a_runner_turn_with_a_scripted_model_is_stored_and_read_back(
    service: ConversationsSessionService, aclient_for: AsyncClient
) -> None:
    def get_weather(city: str) -> dict[str, Any]:
        """The weather in a city."""
        return {"city": city, "celsius": 21}

    agent = LlmAgent(
        name="weather_agent",
        model=ScriptedModel(
            script=[
                types.Content(
                    role="model",
                    parts=[
                        types.Part.from_function_call(name="get_weather", args={"city": "Lisbon"})
                    ],
                ),
                types.Content(role="model", parts=[types.Part(text="Sunny, 21 °C.")]),
            ]
        ),
        tools=[get_weather],
        output_key="last_answer",
    )
    runner = Runner(app_name=APP, agent=agent, session_service=service)
    await service.create_session(app_name=APP, user_id="u1", session_id="turn")

    produced = [
        event
        async for event in runner.run_async(
            user_id="u1",
            session_id="turn",
            new_message=types.Content(role="user", parts=[types.Part(text="Weather in Lisbon?")]),
        )
    ]
    session = await service.get_session(app_name=APP, user_id="u1", session_id="turn")
    messages = [
        m
        async for m in aclient_for.acting_for("u1").list_messages(
            service.conversation_id(APP, "turn")
        )
    ]

    assert session is not None
    assert session.events[1:] == produced  # the first is the user's message
    assert session.events[0].content == types.Content(
        role="user", parts=[types.Part(text="Weather in Lisbon?")]
    )
    assert session.state["last_answer"] == "Sunny, 21 °C."
    assert [m.type for m in messages] == ["USER", "AGENT", "TOOL", "AGENT"]
    call_id = (messages[1].tool_calls or [])[0]["id"]
    assert call_id
    assert messages[2].tool_call_id == call_id
    assert messages[3].content == "Sunny, 21 °C."
