"""The Strands message mapping, both directions (``session_message_to_api`` and
``session_message_from_api``), without the stack: each kind of message comes back exactly, the
transcript reads well, the limits hold. The same round trips through the stack are in
``test_strands.py``."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from strands.types.exceptions import SessionException
from strands.types.session import SessionMessage

from conversations_client import Message, MessageInput
from conversations_client.strands import (
    MAX_CONTENT_BYTES,
    MAX_METADATA_BYTES,
    session_message_from_api,
    session_message_to_api,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)

MESSAGES: dict[str, Any] = {
    "user text": {"role": "user", "content": [{"text": "Hello!"}]},
    "several texts": {"role": "user", "content": [{"text": "one"}, {"text": ""}, {"text": "3"}]},
    "assistant text": {"role": "assistant", "content": [{"text": "Hi, how can I help?"}]},
    "tool use": {
        "role": "assistant",
        "content": [
            {"text": "Let me look."},
            {
                "toolUse": {
                    "toolUseId": "tooluse_Ab3:x.y-z",
                    "name": "get_weather",
                    "input": {"city": "Zürich", "days": [1, 2], "opts": {"unit": "C", "x": None}},
                }
            },
        ],
    },
    "tool use alone": {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": "t1", "name": "now", "input": {}}}],
    },
    "parallel tool uses": {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "a", "name": "f", "input": {"n": 1}}},
            {"toolUse": {"toolUseId": "b", "name": "f", "input": {"n": 2}}},
        ],
    },
    "tool use the contract cannot carry": {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "id with spaces", "name": "weird name!", "input": [1, 2]}},
            {"toolUse": {"toolUseId": "dup", "name": "f", "input": {}}},
            {"toolUse": {"toolUseId": "dup", "name": "g", "input": {"again": True}}},
        ],
    },
    "tool result": {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "tooluse_Ab3:x.y-z",
                    "status": "success",
                    "content": [{"text": "22°C"}, {"json": {"t": 22.5, "list": [{"a": [None]}]}}],
                }
            }
        ],
    },
    "several tool results": {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "a", "status": "success", "content": [{"text": "1"}]}},
            {"toolResult": {"toolUseId": "b", "status": "error", "content": [{"text": "boom"}]}},
        ],
    },
    "image": {
        "role": "user",
        "content": [
            {"text": "What is this?"},
            {"image": {"format": "png", "source": {"bytes": PNG}}},
        ],
    },
    "document": {
        "role": "user",
        "content": [
            {"document": {"format": "txt", "name": "notes", "source": {"bytes": b"hello\x00"}}}
        ],
    },
    "reasoning": {
        "role": "assistant",
        "content": [
            {"reasoningContent": {"reasoningText": {"text": "thinking…", "signature": "sig"}}},
            {"text": "Answer."},
        ],
    },
    "guard and citations": {
        "role": "user",
        "content": [
            {"guardContent": {"text": {"text": "check this", "qualifiers": ["query"]}}},
            {
                "citationsContent": {
                    "citations": [{"title": "doc", "location": {"documentChar": {"start": 0}}}],
                    "content": [{"text": "cited text"}],
                }
            },
            {"cachePoint": {"type": "default"}},
        ],
    },
    "empty": {"role": "user", "content": []},
    "only a cache point": {"role": "assistant", "content": [{"cachePoint": {"type": "default"}}]},
    "unicode": {
        "role": "user",
        "content": [
            {"text": "日本語 · العربية · עברית · 😀👩‍👩‍👧 · e\u0301 · \u0000\u001f · a\r\nb\tc"}
        ],
    },
    "tracking id and metadata": {
        "role": "assistant",
        "content": [{"text": "ok"}],
        "tracking_id": "6f1c2b7e-2a0b-4f55-9d51-0c5b1f8e9a10",
        "metadata": {"usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}},
    },
}


def over_the_wire(body: MessageInput, order: int) -> Message:
    """What the service would answer for ``body`` appended at ``order`` (JSON both ways)."""
    wire: dict[str, Any] = json.loads(json.dumps(body))
    wire["content"] = wire.get("content", "")
    for call in wire.get("toolCalls", []):
        call.setdefault("arguments", {})
    wire.update(
        name=f"conversations/c/messages/{order}",
        order=order,
        createTime="2026-12-03T10:00:00.000000Z",
        updateTime="2026-12-03T10:00:00.000000Z",
        etag=f'"m{order}.1"',
    )
    return Message.from_json(wire)


def round_trip(session_message: SessionMessage, order: int | None = None) -> SessionMessage:
    if order is None:
        order = session_message.message_id + 1
    return session_message_from_api(over_the_wire(session_message_to_api(session_message), order))


@pytest.mark.parametrize("name", list(MESSAGES))
def test_each_kind_of_message_comes_back_exactly(name: str) -> None:
    original = SessionMessage.from_message(MESSAGES[name], 6)

    back = round_trip(original, order=7)

    assert back.to_dict() == original.to_dict()
    assert back.to_message() == MESSAGES[name]


@pytest.mark.parametrize("name", list(MESSAGES))
def test_a_redacted_message_keeps_both_and_shows_the_redaction(name: str) -> None:
    original = SessionMessage.from_message(MESSAGES[name], 0)
    original.redact_message = {"role": "user", "content": [{"text": "[User input redacted.]"}]}

    body = session_message_to_api(original)
    back = round_trip(original, order=1)

    assert body.get("content") == "[User input redacted.]"
    assert back.to_dict() == original.to_dict()
    assert back.to_message() == original.redact_message


def test_the_transcript_reads_as_types_content_tool_calls_and_results() -> None:
    def body(name: str) -> MessageInput:
        return session_message_to_api(SessionMessage.from_message(MESSAGES[name], 0))

    user, tool_use, alone = body("user text"), body("tool use"), body("tool use alone")
    result, results, image = body("tool result"), body("several tool results"), body("image")

    assert (user["type"], user.get("content")) == ("USER", "Hello!")
    assert (tool_use["type"], tool_use.get("content")) == ("AGENT", "Let me look.")
    assert tool_use.get("toolCalls") == [
        {
            "id": "tooluse_Ab3:x.y-z",
            "name": "get_weather",
            "arguments": {"city": "Zürich", "days": [1, 2], "opts": {"unit": "C", "x": None}},
        }
    ]
    assert "content" not in alone
    assert alone.get("toolCalls") == [{"id": "t1", "name": "now", "arguments": {}}]
    assert result["type"] == "TOOL"
    assert result.get("toolCallId") == "tooluse_Ab3:x.y-z"
    assert result.get("content") == '22°C\n{"t": 22.5, "list": [{"a": [null]}]}'
    assert results["type"] == "TOOL"
    assert "toolCallId" not in results
    assert results.get("content") == "[result of a] 1\n\n[result of b] [error] boom"
    assert image.get("content") == "What is this?\n\n[image png]"
    assert body("empty").get("content") == "[empty message]"
    assert body("only a cache point").get("content") == "[cachePoint]"


def test_tool_uses_the_contract_cannot_carry_are_shown_in_the_content() -> None:
    body = session_message_to_api(
        SessionMessage.from_message(MESSAGES["tool use the contract cannot carry"], 0)
    )

    assert body.get("toolCalls") == [{"id": "dup", "name": "f", "arguments": {}}]
    assert body.get("content") == (
        '[tool call weird name!] [1, 2]\n\n[tool call g] {"again": true}'
    )


def test_the_text_moves_into_content_so_a_long_message_fits() -> None:
    long_text = "ä" * 30_000  # 60 000 bytes: far over the 16 KiB of a message's metadata
    original = SessionMessage.from_message(
        {"role": "assistant", "content": [{"text": long_text}]}, 0
    )

    body = session_message_to_api(original)

    assert body.get("content") == long_text
    assert len(json.dumps(body.get("metadata"))) < 1_000
    assert round_trip(original).to_dict() == original.to_dict()


def test_text_over_the_content_limit_stays_in_the_exact_copy_while_it_fits() -> None:
    big = "x" * (MAX_CONTENT_BYTES - 20)
    original = SessionMessage.from_message(
        {"role": "user", "content": [{"text": big}, {"text": "the rest " * 5}]}, 0
    )

    body = session_message_to_api(original)

    assert body.get("content") == big + "\n\n[…]"
    assert round_trip(original).to_dict() == original.to_dict()


def test_a_message_whose_exact_form_is_over_the_limits_is_refused() -> None:
    image: Any = {"image": {"format": "png", "source": {"bytes": bytes(MAX_METADATA_BYTES)}}}
    original = SessionMessage.from_message({"role": "user", "content": [image]}, 3)

    with pytest.raises(SessionException, match="message_id=<3>"):
        session_message_to_api(original)


def test_a_message_edited_by_another_client_reads_from_its_fields() -> None:
    original = SessionMessage.from_message(MESSAGES["tool use"], 0)
    wire = over_the_wire(session_message_to_api(original), 1)
    wire.content = "Let me look. (my phone number removed)"

    back = session_message_from_api(wire)

    assert back.message == {
        "role": "assistant",
        "content": [
            {"text": "Let me look. (my phone number removed)"},
            {
                "toolUse": {
                    "toolUseId": "tooluse_Ab3:x.y-z",
                    "name": "get_weather",
                    "input": {"city": "Zürich", "days": [1, 2], "opts": {"unit": "C", "x": None}},
                }
            },
        ],
    }
    assert back.created_at == original.created_at
    assert back.message_id == 0


def test_messages_written_by_other_clients_read_as_strands_messages() -> None:
    def foreign(**fields: Any) -> SessionMessage:
        return session_message_from_api(
            Message.from_json({"order": 3, "createTime": "2026-12-03T10:00:00.000000Z", **fields})
        )

    user = foreign(type="USER", content="hi")
    agent = foreign(
        type="AGENT", content="", toolCalls=[{"id": "c1", "name": "f", "arguments": {"a": 1}}]
    )
    tool = foreign(type="TOOL", content="42", toolCallId="c1")

    assert user.message == {"role": "user", "content": [{"text": "hi"}]}
    assert user.message_id == 2
    assert user.created_at == "2026-12-03T10:00:00.000000Z"
    assert agent.message == {
        "role": "assistant",
        "content": [{"toolUse": {"toolUseId": "c1", "name": "f", "input": {"a": 1}}}],
    }
    assert tool.message == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "c1", "status": "success", "content": [{"text": "42"}]}}
        ],
    }


def test_an_update_keeps_the_stored_type() -> None:
    changed = SessionMessage.from_message(MESSAGES["tool use"], 0)

    body = session_message_to_api(changed, kind="USER")

    assert body["type"] == "USER"
    assert "toolCalls" not in body
    assert body.get("content", "").startswith("Let me look.\n\n[tool call get_weather] ")
    assert session_message_from_api(over_the_wire(body, 1)).to_dict() == changed.to_dict()
