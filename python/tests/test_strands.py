"""The Strands session repository and manager (``conversations_client.strands``) against the
stack: every ``SessionRepository`` method with its empty and missing cases, as Strands' own tests
of ``FileSessionManager`` and ``S3SessionManager`` check them (``tests/strands/session/`` of
strands-agents, written again here against a fresh owner per test), message ids where other
clients left holes, two workers on one agent, lost answers, a 10 000-message session, unicode
and nested JSON, and real ``Agent`` turns with a scripted model (as Strands' ``tests_integ/
test_session.py`` runs them with a live one)."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast
from unittest.mock import Mock

import pytest
from strands import Agent, tool
from strands.agent.conversation_manager.sliding_window_conversation_manager import (
    SlidingWindowConversationManager,
)
from strands.models import Model
from strands.types.content import Message as StrandsMessage
from strands.types.content import Messages
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage, SessionType
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from api_proxy import LOSE_ANSWER, ApiProxy, Rule
from conversations_client import Client, NotFound, Retry
from conversations_client.strands import (
    ConversationsSessionManager,
    ConversationsSessionRepository,
    agent_conversation_id,
    multi_agent_conversation_id,
    session_conversation_id,
    session_message_to_api,
)

# Fixtures and helpers.


@pytest.fixture
def repo(client: Client) -> ConversationsSessionRepository:
    return ConversationsSessionRepository(client=client)


@pytest.fixture
def session_id() -> str:
    """A session id that does not fit a conversation id, so that it is mapped."""
    return f"Session {uuid.uuid4().hex[:8]} of user_123"


def new_session(repo: ConversationsSessionRepository, session_id: str) -> Session:
    session = Session(session_id=session_id, session_type=SessionType.AGENT)
    repo.create_session(session)
    return session


def new_agent(
    repo: ConversationsSessionRepository, session_id: str, agent_id: str = "test-agent"
) -> SessionAgent:
    agent = SessionAgent(agent_id=agent_id, state={"key": "value"}, conversation_manager_state={})
    repo.create_agent(session_id, agent)
    return agent


def text(content: str, role: str = "user") -> StrandsMessage:
    return cast(StrandsMessage, {"role": role, "content": [{"text": content}]})


def add_messages(
    repo: ConversationsSessionRepository, session_id: str, agent_id: str, n: int, start: int = 0
) -> list[SessionMessage]:
    made = []
    for i in range(start, start + n):
        message = SessionMessage(message=text(f"Message {i}"), message_id=i)
        repo.create_message(session_id, agent_id, message)
        made.append(message)
    return made


def texts(messages: list[SessionMessage]) -> list[str]:
    return [cast(str, m.message["content"][0].get("text")) for m in messages]


class ScriptedModel(Model):
    """A model that answers with the messages it was given, one per call (a tool use makes the
    agent call the tool and come back for the next one); ``{"redact": "…", …}`` also asks the
    agent to redact the user's input, as a guardrail does."""

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = list(replies)

    def update_config(self, **model_config: Any) -> None:
        pass

    def get_config(self) -> Any:
        return {}

    async def structured_output(  # type: ignore[override]
        self, output_model: Any, prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError
        yield {}

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[StreamEvent]:
        reply = self.replies.pop(0)
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        stop = "end_turn"
        if "redact" in reply:
            events.append({"redactContent": {"redactUserContentMessage": reply["redact"]}})
            stop = "guardrail_intervened"
        for block in reply["content"]:
            if "text" in block:
                events.append({"contentBlockStart": {"start": {}}})
                events.append({"contentBlockDelta": {"delta": {"text": block["text"]}}})
            else:
                use = block["toolUse"]
                start = {"toolUse": {"name": use["name"], "toolUseId": use["toolUseId"]}}
                events.append({"contentBlockStart": {"start": start}})
                delta = {"toolUse": {"input": json.dumps(use["input"])}}
                events.append({"contentBlockDelta": {"delta": delta}})
                stop = "tool_use"
            events.append({"contentBlockStop": {}})
        events.append({"messageStop": {"stopReason": stop}})
        for event in events:
            yield cast(StreamEvent, event)


@tool
def weather(city: str) -> dict[str, Any]:
    """The weather in a city.

    Args:
        city: The city.
    """
    return {"status": "success", "content": [{"json": {"city": city, "celsius": 22.5}}]}


def says(reply: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"text": reply}]}


def calls_weather(city: str, use_id: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": [
            {"text": f"Let me check {city}."},
            {"toolUse": {"toolUseId": use_id, "name": "weather", "input": {"city": city}}},
        ],
    }


def make_agent(manager: ConversationsSessionManager, *replies: dict[str, Any], **kw: Any) -> Agent:
    return Agent(
        model=ScriptedModel(list(replies)),
        tools=[weather],
        session_manager=manager,
        callback_handler=None,
        **kw,
    )


# Sessions (as Strands' test_create_session, test_read_session, test_delete_session, …).


def test_a_session_is_created_and_read_back(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    session = new_session(repo, session_id)

    read = repo.read_session(session_id)

    assert read is not None
    assert read.to_dict() == session.to_dict()
    stored = client.get_conversation(session_conversation_id(session_id))
    assert stored.metadata is not None
    assert stored.metadata["_sessionId"] == session_id
    assert stored.labels == {
        "strands-session": session_conversation_id(session_id),
        "strands-kind": "session",
    }


def test_creating_a_session_that_exists_is_a_session_exception(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)

    with pytest.raises(SessionException, match="already exists"):
        new_session(repo, session_id)


def test_a_missing_session_reads_as_none(repo: ConversationsSessionRepository) -> None:
    assert repo.read_session("nonexistent-session") is None


def test_deleting_a_session_removes_its_agents_and_messages(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    new_session(repo, session_id)
    for agent_id in ("a", "b"):
        new_agent(repo, session_id, agent_id)
        add_messages(repo, session_id, agent_id, 3)
    multi = Mock(id="swarm")
    multi.serialize_state.return_value = {"id": "swarm", "state": {"k": 1}}
    repo.create_multi_agent(session_id, multi)

    repo.delete_session(session_id)

    assert repo.read_session(session_id) is None
    assert repo.read_agent(session_id, "a") is None
    assert repo.read_multi_agent(session_id, "swarm") is None
    for conversation_id in (
        session_conversation_id(session_id),
        agent_conversation_id(session_id, "a"),
        agent_conversation_id(session_id, "b"),
        multi_agent_conversation_id(session_id, "swarm"),
    ):
        with pytest.raises(NotFound):
            client.get_conversation(conversation_id)


def test_deleting_a_missing_session_is_a_session_exception(
    repo: ConversationsSessionRepository,
) -> None:
    with pytest.raises(SessionException, match="does not exist"):
        repo.delete_session("nonexistent-session")


def test_a_session_deleted_and_created_again_starts_empty(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    add_messages(repo, session_id, "test-agent", 3)
    repo.delete_session(session_id)

    new_session(repo, session_id)
    new_agent(repo, session_id)
    again = add_messages(repo, session_id, "test-agent", 1)

    assert again[0].message_id == 0
    assert texts(repo.list_messages(session_id, "test-agent")) == ["Message 0"]


def test_an_agent_created_before_its_session_is_adopted_and_deleted_with_it(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    # The file and S3 repositories write an agent whatever the session; S3 then creates the
    # session (its session.json is still missing): so does this one.
    new_agent(repo, session_id)
    assert repo.read_session(session_id) is None

    new_session(repo, session_id)
    repo.delete_session(session_id)

    assert repo.read_session(session_id) is None
    assert repo.read_agent(session_id, "test-agent") is None


def test_a_conversation_of_another_client_under_the_session_id_is_left_alone(
    repo: ConversationsSessionRepository, client: Client
) -> None:
    # A session id that is a conversation id already is used as it is (ids.conversation_id_for).
    assert session_conversation_id("support-chat-7") == "support-chat-7"
    client.create_conversation(
        {"agents": ["someone"], "metadata": {"theirs": 1}}, conversation_id="support-chat-7"
    )

    assert repo.read_session("support-chat-7") is None
    with pytest.raises(SessionException, match="already exists"):
        new_session(repo, "support-chat-7")
    with pytest.raises(SessionException, match="not a Strands session"):
        new_agent(repo, "support-chat-7")
    assert client.get_conversation("support-chat-7").metadata == {"theirs": 1}


# Agents.


def test_an_agent_is_created_and_read_back(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    new_session(repo, session_id)
    agent = new_agent(repo, session_id)

    read = repo.read_agent(session_id, "test-agent")

    assert read is not None
    assert read.to_dict() == agent.to_dict()
    stored = client.get_conversation(agent_conversation_id(session_id, "test-agent"))
    assert stored.agents == ["test-agent"]
    assert stored.labels == {
        "strands-session": session_conversation_id(session_id),
        "strands-kind": "agent",
    }


def test_a_missing_agent_reads_as_none(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)

    assert repo.read_agent(session_id, "nonexistent_agent") is None
    assert repo.read_agent("nonexistent-session", "nonexistent_agent") is None


def test_an_agent_is_updated_and_keeps_its_created_at(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    agent = new_agent(repo, session_id)
    created_at = agent.created_at

    changed = SessionAgent(
        agent_id="test-agent",
        state={"updated": "value"},
        conversation_manager_state={"removed_message_count": 2},
    )
    repo.update_agent(session_id, changed)

    read = repo.read_agent(session_id, "test-agent")
    assert read is not None
    assert read.state == {"updated": "value"}
    assert read.conversation_manager_state == {"removed_message_count": 2}
    assert read.created_at == created_at == changed.created_at


def test_updating_a_missing_agent_is_a_session_exception(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)

    with pytest.raises(SessionException, match="does not exist"):
        repo.update_agent(
            session_id, SessionAgent(agent_id="ghost", state={}, conversation_manager_state={})
        )


def test_an_update_by_another_writer_in_between_is_written_over_not_lost_silently(
    client: Client, session_id: str
) -> None:
    first, second = (ConversationsSessionRepository(client=client) for _ in range(2))
    new_session(first, session_id)
    new_agent(first, session_id)
    assert second.read_agent(session_id, "test-agent") is not None

    first.update_agent(
        session_id,
        SessionAgent(agent_id="test-agent", state={"by": 1}, conversation_manager_state={}),
    )
    second.update_agent(  # its etag is stale: refused, read again, written again
        session_id,
        SessionAgent(agent_id="test-agent", state={"by": 2}, conversation_manager_state={}),
    )

    read = first.read_agent(session_id, "test-agent")
    assert read is not None
    assert read.state == {"by": 2}


def test_creating_an_agent_that_exists_writes_it_over_and_keeps_its_messages(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    add_messages(repo, session_id, "test-agent", 2)

    again = SessionAgent(agent_id="test-agent", state={"new": 1}, conversation_manager_state={})
    repo.create_agent(session_id, again)

    read = repo.read_agent(session_id, "test-agent")
    assert read is not None
    assert read.state == {"new": 1}
    assert len(repo.list_messages(session_id, "test-agent")) == 2


# Messages.


def test_a_message_is_created_and_read_back(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    message = SessionMessage.from_message(text("Hello world"), 0)
    repo.create_message(session_id, "test-agent", message)
    message.message_id += 1
    repo.create_message(session_id, "test-agent", message)

    read = repo.read_message(session_id, "test-agent", 1)

    assert read is not None
    assert read.to_dict() == message.to_dict()


def test_missing_messages_read_as_none(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)

    assert repo.read_message(session_id, "test-agent", 999) is None
    assert repo.read_message(session_id, "test-agent", 0) is None
    assert repo.read_message(session_id, "test-agent", -1) is None
    assert repo.read_message("nonexistent-session", "test-agent", 0) is None


def test_the_service_assigns_message_ids_and_writes_them_back(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    asked_for_five = SessionMessage(message=text("first"), message_id=5)

    repo.create_message(session_id, "test-agent", asked_for_five)

    assert asked_for_five.message_id == 0
    read = repo.read_message(session_id, "test-agent", 0)
    assert read is not None
    assert texts([read]) == ["first"]


def test_a_message_for_a_missing_agent_is_a_session_exception(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)

    with pytest.raises(SessionException, match="does not exist"):
        add_messages(repo, session_id, "ghost", 1)


def test_messages_are_listed_by_id_with_limit_and_offset(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    add_messages(repo, session_id, "test-agent", 10)
    every = [f"Message {i}" for i in range(10)]

    assert texts(repo.list_messages(session_id, "test-agent")) == every
    assert texts(repo.list_messages(session_id, "test-agent", limit=3)) == every[:3]
    assert texts(repo.list_messages(session_id, "test-agent", offset=5)) == every[5:]
    for limit, offset in [(3, 2), (100, 8), (2, 10), (0, 0), (5, 50), (2, -3), (-2, 1)]:
        listed = repo.list_messages(session_id, "test-agent", limit=limit, offset=offset)
        assert texts(listed) == every[offset : offset + limit], (limit, offset)
    assert [m.message_id for m in repo.list_messages(session_id, "test-agent", 2, 4)] == [4, 5]


def test_a_new_agent_lists_no_messages_and_a_missing_one_is_a_session_exception(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)

    assert repo.list_messages(session_id, "test-agent") == []
    with pytest.raises(SessionException, match="does not exist"):
        repo.list_messages(session_id, "ghost")


def test_a_message_is_updated_and_keeps_its_created_at(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    [message] = add_messages(repo, session_id, "test-agent", 1)
    created_at = message.created_at

    updated = SessionMessage(message=text("Updated content"), message_id=0)
    repo.update_message(session_id, "test-agent", updated)

    read = repo.read_message(session_id, "test-agent", 0)
    assert read is not None
    assert texts([read]) == ["Updated content"]
    assert read.created_at == created_at == updated.created_at
    stored = client.get_message(agent_conversation_id(session_id, "test-agent"), 1)
    assert stored.content == "Updated content"


def test_a_redaction_shows_in_the_transcript_and_keeps_the_original(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    [message] = add_messages(repo, session_id, "test-agent", 1)

    message.redact_message = text("[User input redacted.]")
    repo.update_message(session_id, "test-agent", message)

    read = repo.read_message(session_id, "test-agent", 0)
    assert read is not None
    assert read.to_dict() == message.to_dict()
    assert read.to_message() == text("[User input redacted.]")
    stored = client.get_message(agent_conversation_id(session_id, "test-agent"), 1)
    assert stored.content == "[User input redacted.]"


def test_updating_a_missing_message_is_a_session_exception(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)

    for message_id in (0, 7, -1):
        with pytest.raises(SessionException, match=f"Message {message_id} does not exist"):
            repo.update_message(
                session_id, "test-agent", SessionMessage(message=text("x"), message_id=message_id)
            )


@pytest.mark.parametrize("bad", ["a/../b", "a/b"])
def test_ids_with_path_separators_are_a_value_error(
    repo: ConversationsSessionRepository, bad: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"session_id={bad} | id cannot contain")):
        repo.read_session(bad)
    with pytest.raises(ValueError, match=re.escape(f"agent_id={bad} | id cannot contain")):
        repo.read_agent("session1", bad)


@pytest.mark.parametrize("bad", ["../escape", "not_an_int", None, [], 1.5])
def test_a_message_id_that_is_not_an_integer_is_a_value_error(
    repo: ConversationsSessionRepository, bad: Any
) -> None:
    with pytest.raises(ValueError, match=r"message_id=<.*> \| message id must be an integer"):
        repo.read_message("session1", "agent1", bad)
    with pytest.raises(ValueError, match=r"message_id=<.*> \| message id must be an integer"):
        repo.create_message("session1", "agent1", SessionMessage(text("x"), message_id=bad))


def test_ids_and_offsets_stay_exact_where_other_clients_deleted_or_cleared_messages(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    new_session(repo, session_id)
    new_agent(repo, session_id)
    add_messages(repo, session_id, "test-agent", 80)
    conversation_id = agent_conversation_id(session_id, "test-agent")
    client.clear_messages(conversation_id, through_order=5)  # ids 0-4
    for message_id in (10, 11, 40, 79):
        client.delete_message(conversation_id, message_id + 1)
    kept = [i for i in range(80) if i >= 5 and i not in (10, 11, 40, 79)]

    assert repo.read_message(session_id, "test-agent", 11) is None
    read = repo.read_message(session_id, "test-agent", 12)
    assert read is not None
    assert read.message_id == 12
    for limit, offset in [(None, 0), (10, 0), (5, 3), (20, 30), (None, 60), (3, 70), (4, 72)]:
        listed = repo.list_messages(session_id, "test-agent", limit=limit, offset=offset)
        want = kept[offset:] if limit is None else kept[offset : offset + limit]
        assert [m.message_id for m in listed] == want, (limit, offset)
        assert texts(listed) == [f"Message {i}" for i in want]

    # Cleared at the front only: the rest is contiguous again.
    client.clear_messages(conversation_id, through_order=41)
    kept = [i for i in kept if i > 40]
    for limit, offset in [(5, 0), (10, 2), (None, 20)]:
        listed = repo.list_messages(session_id, "test-agent", limit=limit, offset=offset)
        want = kept[offset:] if limit is None else kept[offset : offset + limit]
        assert [m.message_id for m in listed] == want, (limit, offset)


# Multi-agents (as Strands' test_create_multi_agent, test_read_multi_agent, …).


def test_a_multi_agent_state_is_created_read_and_updated(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    multi = Mock(id="test-multi-agent")
    multi.serialize_state.return_value = {"id": "test-multi-agent", "state": {"key": "value"}}

    repo.create_multi_agent(session_id, multi)
    assert repo.read_multi_agent(session_id, "test-multi-agent") == {
        "id": "test-multi-agent",
        "state": {"key": "value"},
    }

    multi.serialize_state.return_value = {"id": "test-multi-agent", "state": {"updated": 1}}
    repo.update_multi_agent(session_id, multi)
    read = repo.read_multi_agent(session_id, "test-multi-agent")
    assert read is not None
    assert read["state"] == {"updated": 1}

    assert repo.read_multi_agent(session_id, "nonexistent") is None
    with pytest.raises(SessionException, match="does not exist"):
        repo.update_multi_agent(session_id, Mock(id="nonexistent", serialize_state=dict))


# Users, unicode, JSON.


def test_each_user_acted_for_has_sessions_of_their_own(client: Client, session_id: str) -> None:
    alice = ConversationsSessionRepository(client=client, user="alice")
    bob = ConversationsSessionRepository(client=client, user="bob")
    new_session(alice, session_id)
    new_agent(alice, session_id)

    assert bob.read_session(session_id) is None
    with pytest.raises(NotFound):
        client.get_conversation(session_conversation_id(session_id))
    new_session(bob, session_id)  # the same session id, another user: no clash
    assert alice.read_agent(session_id, "test-agent") is not None
    assert bob.read_agent(session_id, "test-agent") is None
    stored = client.acting_for("alice").get_conversation(session_conversation_id(session_id))
    assert stored.owner is not None
    assert stored.owner.endswith("/alice")


UNICODE = [
    "日本語のテキスト",
    "مرحبا بالعالم",
    "שלום עולם",
    "emoji 😀👩‍👩‍👧🏳️‍🌈 and e\u0301 vs é",
    "controls \u0000\u0007\u001f, CRLF\r\nand tabs\t",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP",
]
NESTED: dict[str, Any] = {
    "a": [1, 2.5, -3e-7, True, None, {"b": {"c": [[], {}, [{"d": "é"}]]}}],
    "big": 2**62,
    "text": 'line\nbreak "quoted" \\ back',
    "🔑": {"nested": {"deeper": {"deepest": ["x"] * 3}}},
}


def test_unicode_and_nested_json_come_back_exactly(
    repo: ConversationsSessionRepository, session_id: str
) -> None:
    new_session(repo, session_id)
    agent = SessionAgent(
        agent_id="ünïcödé agent 😀",
        state={"nested": NESTED, "texts": UNICODE},
        conversation_manager_state={"__name__": "X", "summary": UNICODE[0]},
    )
    repo.create_agent(session_id, agent)
    messages = [
        SessionMessage(message=text(t, role), message_id=i)
        for i, (t, role) in enumerate(zip(UNICODE, ["user", "assistant"] * 3, strict=True))
    ]
    messages.append(
        SessionMessage(
            message=cast(
                StrandsMessage,
                {
                    "role": "assistant",
                    "content": [
                        {"toolUse": {"toolUseId": "t-1", "name": "f", "input": NESTED}},
                        {"toolUse": {"toolUseId": "t 2", "name": "g", "input": NESTED}},
                    ],
                },
            ),
            message_id=len(messages),
        )
    )
    messages.append(
        SessionMessage(
            message=cast(
                StrandsMessage,
                {
                    "role": "user",
                    "content": [
                        {
                            "toolResult": {
                                "toolUseId": "t-1",
                                "status": "success",
                                "content": [{"json": NESTED}, {"text": UNICODE[3]}],
                            }
                        },
                        {
                            "toolResult": {
                                "toolUseId": "t 2",
                                "status": "error",
                                "content": [{"text": UNICODE[4]}],
                            }
                        },
                    ],
                },
            ),
            message_id=len(messages),
        )
    )
    for m in messages:
        repo.create_message(session_id, agent.agent_id, m)

    read_agent = repo.read_agent(session_id, agent.agent_id)
    listed = repo.list_messages(session_id, agent.agent_id)

    assert read_agent is not None
    assert read_agent.to_dict() == agent.to_dict()
    assert [m.to_dict() for m in listed] == [m.to_dict() for m in messages]
    for m in messages:
        read = repo.read_message(session_id, agent.agent_id, m.message_id)
        assert read is not None
        assert read.to_dict() == m.to_dict()


def test_a_record_over_the_metadata_limit_is_a_session_exception_and_writes_nothing(
    repo: ConversationsSessionRepository, client: Client, session_id: str
) -> None:
    new_session(repo, session_id)
    huge = SessionAgent(agent_id="big", state={"x": "y" * 20_000}, conversation_manager_state={})

    with pytest.raises(SessionException, match="at most 16384"):
        repo.create_agent(session_id, huge)
    with pytest.raises(SessionException, match="does not exist"):
        repo.update_agent(session_id, huge)
    session = client.get_conversation(session_conversation_id(session_id))
    assert agent_conversation_id(session_id, "big") not in (session.metadata or {})


# Two workers, lost answers.


def test_two_workers_adding_messages_to_one_agent_lose_and_double_nothing(
    stack_url: str, owner: str, session_id: str
) -> None:
    with Client(stack_url, owner=owner, token="") as setup:
        repo = ConversationsSessionRepository(client=setup)
        new_session(repo, session_id)
        new_agent(repo, session_id)
    per_worker = 15
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: str) -> None:
        try:
            with Client(stack_url, owner=owner, token="") as mine:
                own = ConversationsSessionRepository(client=mine)
                for i in range(per_worker):  # each counts from its own last id, as a manager does
                    message = SessionMessage(message=text(f"{worker} {i}"), message_id=i)
                    own.create_message(session_id, "test-agent", message)
                    with lock:
                        ids.append(message.message_id)
        except BaseException as e:
            errors.append(e)

    workers = [threading.Thread(target=work, args=(name,)) for name in ("A", "B")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    with Client(stack_url, owner=owner, token="") as check:
        listed = ConversationsSessionRepository(client=check).list_messages(
            session_id, "test-agent"
        )
    assert errors == []
    assert sorted(ids) == list(range(2 * per_worker))
    assert [m.message_id for m in listed] == list(range(2 * per_worker))
    assert sorted(texts(listed)) == sorted(f"{w} {i}" for w in "AB" for i in range(per_worker))
    for worker in "AB":  # each worker's own messages in its order
        mine = [t for t in texts(listed) if t.startswith(worker)]
        assert mine == [f"{worker} {i}" for i in range(per_worker)]


def test_two_managers_on_one_session_keep_every_turn(
    stack_url: str, owner: str, session_id: str
) -> None:
    with (
        Client(stack_url, owner=owner, token="") as one,
        Client(stack_url, owner=owner, token="") as two,
    ):
        make_agent(ConversationsSessionManager(session_id, client=one))  # the session, its agent
        managers = [ConversationsSessionManager(session_id, client=c) for c in (one, two)]
        agents = [make_agent(m, says(f"answer {i}")) for i, m in enumerate(managers)]
        workers = [threading.Thread(target=agents[i], args=(f"question {i}",)) for i in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        listed = managers[0].list_messages(session_id, agents[0].agent_id)

    assert sorted(texts(listed)) == ["answer 0", "answer 1", "question 0", "question 1"]
    assert [m.message_id for m in listed] == [0, 1, 2, 3]


def test_a_message_whose_answer_is_lost_is_stored_once(
    proxy: ApiProxy, client: Client, owner: str, session_id: str
) -> None:
    with Client(proxy.base_url, owner=owner, token="", retry=Retry(base_delay=0.05)) as faulty:
        repo = ConversationsSessionRepository(client=faulty)
        new_session(repo, session_id)
        new_agent(repo, session_id)
        proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/messages"))
        proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/messages"))

        made = add_messages(repo, session_id, "test-agent", 2)
        proxy.wait_idle()

    appends = proxy.requests("POST", "/messages")
    assert [m.message_id for m in made] == [0, 1]
    assert len(appends) == 4
    assert len({a.request_id for a in appends}) == 2
    listed = ConversationsSessionRepository(client=client).list_messages(session_id, "test-agent")
    assert texts(listed) == ["Message 0", "Message 1"]


def test_a_session_agent_and_update_whose_answers_are_lost_land_once(
    proxy: ApiProxy, client: Client, owner: str, session_id: str
) -> None:
    session = f"/conversations/{session_conversation_id(session_id)}"
    agent = f"/conversations/{agent_conversation_id(session_id, 'test-agent')}"
    proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/conversations"))  # create_session
    proxy.add(Rule("PATCH", LOSE_ANSWER, path_ending=session))  # create_agent's record of it
    proxy.add(Rule("PATCH", LOSE_ANSWER, path_ending=agent))  # update_agent
    with Client(proxy.base_url, owner=owner, token="", retry=Retry(base_delay=0.05)) as faulty:
        repo = ConversationsSessionRepository(client=faulty)
        new_session(repo, session_id)
        new_agent(repo, session_id)
        repo.update_agent(
            session_id,
            SessionAgent(agent_id="test-agent", state={"turn": 1}, conversation_manager_state={}),
        )
        proxy.wait_idle()

    assert len([s for s in proxy.requests() if s.fault == LOSE_ANSWER]) == 3
    direct = ConversationsSessionRepository(client=client)
    read = direct.read_agent(session_id, "test-agent")
    assert direct.read_session(session_id) is not None
    assert read is not None
    assert read.state == {"turn": 1}
    assert len(list(client.list_conversations())) == 2


# Long sessions.


def seed(client: Client, conversation_id: str, n: int) -> None:
    """``n`` messages as the repository writes them, 50 to a batch."""
    for start in range(0, n, 50):
        batch = [
            session_message_to_api(SessionMessage(message=text(f"Message {i}"), message_id=i))
            for i in range(start, min(start + 50, n))
        ]
        client.batch_append_messages(conversation_id, batch)


def timed(*calls: Any, runs: int = 7) -> list[float]:
    """The median time of each call, the calls taking turns (a load that comes and goes slows
    each of them alike)."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, spent in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def test_the_last_twenty_of_ten_thousand_messages_are_one_request_and_as_fast(
    proxy: ApiProxy, client: Client, owner: str
) -> None:
    direct = ConversationsSessionRepository(client=client)
    for session_id, n in (("long", 10_000), ("short", 30)):
        new_session(direct, session_id)
        new_agent(direct, session_id)
        seed(client, agent_conversation_id(session_id, "test-agent"), n)
    with Client(proxy.base_url, owner=owner, token="") as through:
        repo = ConversationsSessionRepository(client=through)

        def last_twenty(session_id: str, n: int) -> list[SessionMessage]:
            return repo.list_messages(session_id, "test-agent", limit=20, offset=n - 20)

        before = len(proxy.requests())
        listed = last_twenty("long", 10_000)
        assert len(proxy.requests()) - before == 1
        before = len(proxy.requests())
        middle = repo.list_messages("long", "test-agent", limit=20, offset=5_000)
        assert len(proxy.requests()) - before == 2
        before = len(proxy.requests())
        read = repo.read_message("long", "test-agent", 7_777)
        assert len(proxy.requests()) - before == 1

        long_time, short_time = timed(
            lambda: last_twenty("long", 10_000), lambda: last_twenty("short", 30)
        )

    assert [m.message_id for m in listed] == list(range(9_980, 10_000))
    assert texts(listed) == [f"Message {i}" for i in range(9_980, 10_000)]
    assert [m.message_id for m in middle] == list(range(5_000, 5_020))
    assert read is not None
    assert texts([read]) == ["Message 7777"]
    print(f"last 20 of 10 000: {long_time * 1000:.1f} ms; of 30: {short_time * 1000:.1f} ms")
    assert long_time < 2 * short_time + 0.1, (long_time, short_time)


# Real agents (as Strands' tests_integ/test_session.py, with a scripted model).


def test_an_agent_turn_with_a_tool_is_stored_and_restored(client: Client, session_id: str) -> None:
    manager = ConversationsSessionManager(session_id, client=client)
    agent = make_agent(
        manager, calls_weather("Paris", "tooluse_p1"), says("It is 22.5 °C in Paris.")
    )

    agent("What is the weather in Paris?")

    stored = manager.list_messages(session_id, agent.agent_id)
    assert [m.to_message() for m in stored] == agent.messages
    assert [m.message_id for m in stored] == [0, 1, 2, 3]
    full = client.get_conversation(agent_conversation_id(session_id, agent.agent_id), view="FULL")
    assert [(m.type, m.content) for m in full.messages or []] == [
        ("USER", "What is the weather in Paris?"),
        ("AGENT", "Let me check Paris."),
        ("TOOL", '{"city": "Paris", "celsius": 22.5}'),
        ("AGENT", "It is 22.5 °C in Paris."),
    ]
    assert (full.messages or [])[1].tool_calls == [
        {"id": "tooluse_p1", "name": "weather", "arguments": {"city": "Paris"}}
    ]
    assert (full.messages or [])[2].tool_call_id == "tooluse_p1"

    restored = make_agent(ConversationsSessionManager(session_id, client=client))
    assert restored.messages == agent.messages
    assert restored.state.get() == agent.state.get()


def test_an_agent_is_restored_and_runs_again(client: Client, session_id: str) -> None:
    manager = ConversationsSessionManager(session_id, client=client)
    try:
        agent = make_agent(manager, says("Hi!"))
        agent("Hello!")
        agent.state.set("visits", 1)
        assert len(manager.list_messages(session_id, agent.agent_id)) == 2

        manager_2 = ConversationsSessionManager(session_id, client=client)
        agent_2 = make_agent(manager_2, says("Hi again!"))
        assert len(agent_2.messages) == 2
        agent_2("Hello!")
        assert len(agent_2.messages) == 4
        assert len(manager_2.list_messages(session_id, agent_2.agent_id)) == 4
    finally:
        manager.delete_session(session_id)
        assert manager.read_session(session_id) is None


def test_an_agent_with_a_sliding_window_restores_what_it_kept(
    client: Client, session_id: str
) -> None:
    manager = ConversationsSessionManager(session_id, client=client)
    window = SlidingWindowConversationManager(window_size=2)
    agent = make_agent(manager, says("one"), says("two"), conversation_manager=window)
    agent("Hello!")
    agent("Hi again!")
    assert len(agent.messages) == 2
    assert agent.conversation_manager.removed_message_count == 2
    assert len(manager.list_messages(session_id, agent.agent_id)) == 4

    manager_2 = ConversationsSessionManager(session_id, client=client)
    agent_2 = make_agent(
        manager_2,
        says("three"),
        conversation_manager=SlidingWindowConversationManager(window_size=2),
    )
    assert agent_2.messages == agent.messages
    assert agent_2.conversation_manager.removed_message_count == 2
    agent_2("Hello!")
    assert agent_2.conversation_manager.removed_message_count == 4
    assert len(manager_2.list_messages(session_id, agent_2.agent_id)) == 6


def test_an_agent_with_an_image_is_stored_and_restored(client: Client, session_id: str) -> None:
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4a10000000049454e44ae426082"
    )
    manager = ConversationsSessionManager(session_id, client=client)
    agent = make_agent(manager, says("A yellow pixel."))
    image: Any = {"image": {"format": "png", "source": {"bytes": png}}}
    agent([image])

    restored = make_agent(ConversationsSessionManager(session_id, client=client))

    assert restored.messages == agent.messages
    assert restored.messages[0]["content"][0]["image"]["source"]["bytes"] == png


def test_a_guardrail_redaction_is_stored(client: Client, session_id: str) -> None:
    manager = ConversationsSessionManager(session_id, client=client)
    agent = make_agent(
        manager,
        {"redact": "[User input redacted.]", "content": [{"text": "I can't help with that."}]},
    )

    agent("my card number is 4111 1111 1111 1111")

    conversation_id = agent_conversation_id(session_id, agent.agent_id)
    assert client.get_message(conversation_id, 1).content == "[User input redacted.]"
    restored = make_agent(ConversationsSessionManager(session_id, client=client))
    assert restored.messages[0]["content"] == [{"text": "[User input redacted.]"}]
    assert restored.messages == agent.messages


def test_a_manager_acting_for_a_user_keeps_the_session_to_that_user(
    client: Client, session_id: str
) -> None:
    agent = make_agent(
        ConversationsSessionManager(session_id, client=client, user="alice"), says("hi")
    )
    agent("hello")

    as_bob = ConversationsSessionManager(session_id, client=client, user="bob")
    assert as_bob.read_agent(session_id, agent.agent_id) is None
    as_alice = ConversationsSessionManager(session_id, client=client, user="alice")
    assert len(as_alice.list_messages(session_id, agent.agent_id)) == 2
