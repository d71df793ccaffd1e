"""The OpenAI Agents SDK session (``conversations_client.openai_agents``): the item ↔ message
mapping on its own, then every method against the stack — side by side with the SDK's own
``SQLiteSession`` where their answers must agree — the empty and missing cases, concurrency,
lost answers through the fault proxy, users acted for, a 10 000-item session, and real
``Runner`` turns with the SDK's ``ScriptedModel``."""

from __future__ import annotations

import asyncio
import copy
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from agents import (
    Agent,
    RunContextWrapper,
    Runner,
    SessionSettings,
    SQLiteSession,
    TResponseInputItem,
    function_tool,
    set_tracing_disabled,
)
from agents.memory.session import _session_accepts_wrapper
from agents.testing import ScriptedModel, assistant_message, function_call

from api_proxy import CLOSE, LOSE_ANSWER, ApiProxy, Hold, Late, Rule
from conversations_client import AsyncClient, Message, NotFound, Retry
from conversations_client.ids import session_id_of
from conversations_client.openai_agents import (
    METADATA_KEY,
    ConversationsSession,
    _batches,
    item_to_message,
    message_to_items,
)

set_tracing_disabled(True)  # no trace export: the tests never leave the machine

Item = dict[str, Any]


def items_of(*items: Item) -> list[TResponseInputItem]:
    return cast(list[TResponseInputItem], list(items))


def stored(item: Item, order: int = 1) -> Message:
    """The message ``item`` maps to, as the service would answer it (through JSON)."""
    body = json.loads(json.dumps(item_to_message(cast(TResponseInputItem, item))))
    return Message.from_json({**body, "order": order})


# Items of every kind the SDK stores, as a Runner or a user writes them.
CATALOGUE: dict[str, Item] = {
    "user text": {"role": "user", "content": "Hello"},
    "user parts": {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is on"},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"},
            {"type": "input_text", "text": "this picture?"},
        ],
    },
    "image only": {
        "role": "user",
        "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}],
    },
    "empty text": {"role": "user", "content": ""},
    "system": {"role": "system", "content": "Be brief."},
    "developer": {"role": "developer", "content": "Answer in French."},
    "assistant output": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []},
            {"type": "refusal", "refusal": "Not that."},
        ],
    },
    "function call, compact arguments": {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris","days":[1,2.5]}',
        "id": "fc_1",
        "status": "completed",
    },
    "function call, spaced arguments": {
        "type": "function_call",
        "call_id": "call_2",
        "name": "get_weather",
        "arguments": '{"city": "Zürich"}',
    },
    "function call, arguments not reproducible": {
        "type": "function_call",
        "call_id": "call_3",
        "name": "f",
        "arguments": '{ "n" : 1.50 }',
    },
    "function call, arguments not an object": {
        "type": "function_call",
        "call_id": "call_4",
        "name": "f",
        "arguments": "[1, 2]",
    },
    "function call, a name the API refuses": {
        "type": "function_call",
        "call_id": "call 5",
        "name": "ns/f",
        "arguments": "{}",
    },
    "function call output": {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "sunny",
    },
    "function call output, parts": {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": [{"type": "input_text", "text": "sunny"}, {"type": "input_image"}],
    },
    "reasoning": {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "The user greets."}],
        "encrypted_content": "gAAAA" * 400,
    },
    "custom tool call": {
        "type": "custom_tool_call",
        "call_id": "ct_1",
        "name": "shell",
        "input": "ls -la",
    },
    "custom tool call output": {
        "type": "custom_tool_call_output",
        "call_id": "ct_1",
        "output": "total 0",
    },
    "computer call": {
        "type": "computer_call",
        "id": "cu_1",
        "call_id": "cc_1",
        "action": {"type": "click", "x": 1, "y": 2, "button": "left"},
        "pending_safety_checks": [],
        "status": "completed",
    },
    "item reference": {"type": "item_reference", "id": "msg_0"},
    "a type this package does not know": {"type": "hologram", "payload": {"a": [None, True]}},
    "integers past 64 bits": {"role": "user", "content": "n", "n": 2**70 + 1},
    "non-text fields past 16 KiB": {
        "type": "reasoning",
        "id": "rs_2",
        "summary": [],
        "encrypted_content": "e" * 20_000,
    },
}


# The mapping, on its own.


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_kind_of_item_comes_back_exactly_from_its_message(name: str) -> None:
    item = CATALOGUE[name]

    back = message_to_items(stored(item))

    assert back == [item]
    assert list(cast(Item, back[0])) == list(item)  # keys in the same order, too


def test_the_native_fields_hold_what_other_clients_read() -> None:
    def native(name: str) -> dict[str, Any]:
        message = item_to_message(cast(TResponseInputItem, CATALOGUE[name]))
        return {k: v for k, v in message.items() if k != "metadata"}

    assert native("user text") == {"type": "USER", "content": "Hello"}
    assert native("user parts") == {"type": "USER", "content": "What is on\nthis picture?"}
    assert native("image only") == {"type": "USER", "content": "[input_image]"}
    assert native("system") == {"type": "SYSTEM", "content": "Be brief."}
    assert native("developer") == {"type": "SYSTEM", "content": "Answer in French."}
    assert native("assistant output") == {"type": "AGENT", "content": "Hi!\nNot that."}
    assert native("function call, compact arguments") == {
        "type": "AGENT",
        "toolCalls": [
            {
                "id": "call_1",
                "name": "get_weather",
                "arguments": {"city": "Paris", "days": [1, 2.5]},
            }
        ],
    }
    assert native("function call, a name the API refuses") == {"type": "AGENT", "content": "{}"}
    assert native("function call output") == {
        "type": "TOOL",
        "content": "sunny",
        "toolCallId": "call_1",
    }
    assert native("reasoning") == {"type": "AGENT", "content": "The user greets."}
    assert native("custom tool call output")["type"] == "TOOL"
    assert native("item reference") == {"type": "AGENT", "content": "[item_reference]"}


def test_the_item_is_kept_once_the_text_and_arguments_moved_out() -> None:
    message = item_to_message(cast(TResponseInputItem, CATALOGUE["function call output"]))
    call = item_to_message(cast(TResponseInputItem, CATALOGUE["function call, compact arguments"]))

    assert message.get("metadata") == {
        METADATA_KEY: {
            "item": {"type": "function_call_output", "call_id": "call_1", "output": None},
            "text": [["output", 5]],
        }
    }
    assert cast(Item, call.get("metadata"))[METADATA_KEY]["item"]["arguments"] is None


def test_an_item_whose_other_fields_pass_16_kib_is_kept_as_json_in_content() -> None:
    item = CATALOGUE["non-text fields past 16 KiB"]

    message = item_to_message(cast(TResponseInputItem, item))

    assert json.loads(message.get("content", "")) == item
    assert message.get("metadata") == {METADATA_KEY: {"json": True}}


def test_an_item_that_cannot_fit_one_message_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit one message"):
        item_to_message(cast(TResponseInputItem, {"role": "user", "content": "x" * 70_000}))
    with pytest.raises(ValueError, match="JSON compliant"):
        item_to_message(cast(TResponseInputItem, {"role": "user", "content": float("nan")}))
    with pytest.raises(TypeError):
        item_to_message(cast(TResponseInputItem, "not an object"))


def test_a_redacted_content_reads_back_in_the_item() -> None:
    one = stored({"role": "user", "content": "my card is 4111"})
    one.content = "my card is [redacted]"
    parts = stored(CATALOGUE["user parts"])
    parts.content = "[redacted]"

    assert message_to_items(one) == [{"role": "user", "content": "my card is [redacted]"}]
    texts = [p.get("text") for p in cast(Item, message_to_items(parts)[0])["content"]]
    assert texts == ["[redacted]", None, ""]


def test_messages_other_clients_wrote_read_as_the_items_they_describe() -> None:
    def read(**fields: Any) -> list[Item]:
        return cast(list[Item], message_to_items(Message.from_json({"order": 1, **fields})))

    calls = [
        {"id": "c1", "name": "search", "arguments": {"q": "rust"}},
        {"id": "c2", "name": "fetch", "arguments": {}},
    ]

    assert read(type="USER", content="hi") == [{"role": "user", "content": "hi"}]
    assert read(type="SYSTEM", content="be nice") == [{"role": "system", "content": "be nice"}]
    assert read(type="AGENT", content="hello") == [{"role": "assistant", "content": "hello"}]
    assert read(type="TOOL", content="42", toolCallId="c1") == [
        {"type": "function_call_output", "call_id": "c1", "output": "42"}
    ]
    assert read(type="AGENT", content="Let me look.", toolCalls=calls) == [
        {"role": "assistant", "content": "Let me look."},
        {"type": "function_call", "call_id": "c1", "name": "search", "arguments": '{"q":"rust"}'},
        {"type": "function_call", "call_id": "c2", "name": "fetch", "arguments": "{}"},
    ]


def test_batches_are_cut_at_50_messages_and_256_kib() -> None:
    small = item_to_message(cast(TResponseInputItem, {"role": "user", "content": "x"}))
    large = item_to_message(cast(TResponseInputItem, {"role": "user", "content": "x" * 60_000}))

    def body_size(batch: list[Any]) -> int:
        return len(json.dumps({"messages": batch}, separators=(",", ":")).encode())

    assert [len(b) for b in _batches([small] * 120)] == [50, 50, 20]
    cut = _batches([large] * 9)
    assert [len(b) for b in cut] == [4, 4, 1]
    assert all(body_size(b) <= 256 * 1024 for b in cut)
    assert body_size([large] * 5) > 256 * 1024


# Against the stack.


@pytest.fixture
def new_session(aclient: AsyncClient) -> Callable[..., ConversationsSession]:
    """Makes sessions of this test's owner, each under a session id no other test uses."""

    def make(session_id: str | None = None, **options: Any) -> ConversationsSession:
        options.setdefault("client", aclient)
        return ConversationsSession(session_id or f"s-{uuid.uuid4().hex[:12]}", **options)

    return make


@dataclass
class Counted:
    """A client whose requests are counted (method and path)."""

    client: AsyncClient
    requests: list[tuple[str, str]]


@pytest.fixture
async def counted(stack_url: str, owner: str) -> AsyncIterator[Counted]:
    requests: list[tuple[str, str]] = []

    async def record(request: httpx.Request) -> None:
        requests.append((request.method, request.url.path))

    async with (
        httpx.AsyncClient(event_hooks={"request": [record]}) as http,
        AsyncClient(stack_url, owner=owner, token="", http_client=http) as client,
    ):
        yield Counted(client, requests)


def conversation_turns(n: int, prefix: str = "m") -> list[TResponseInputItem]:
    return items_of(
        *(
            {"role": "user" if i % 2 == 0 else "assistant", "content": f"{prefix}{i}"}
            for i in range(n)
        )
    )


async def test_a_session_never_written_to_is_empty_and_is_not_created(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()

    assert await session.get_items() == []
    assert await session.get_items(limit=3) == []
    assert await session.pop_item() is None
    await session.clear_session()
    await session.add_items([])

    with pytest.raises(NotFound):
        await aclient.get_conversation(session.conversation_id)


async def test_the_first_add_creates_the_conversation_that_keeps_the_session_id(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session("User_123 session ☕")

    await session.add_items(items_of({"role": "user", "content": "hi"}))

    conversation = await aclient.get_conversation(session.conversation_id)
    assert session.conversation_id.startswith("user-123-session--")
    assert session_id_of(conversation) == "User_123 session ☕"
    assert conversation.agents == ["openai-agents"]
    assert conversation.message_count == 1
    again = new_session("User_123 session ☕")  # a new process finds the session by its id
    assert await again.get_items() == [{"role": "user", "content": "hi"}]


# Each step run on both sessions; (name, argument).
SCRIPT: list[tuple[str, Any]] = [
    ("pop", None),
    ("get", None),
    ("add", conversation_turns(6)),
    ("get", None),
    ("get", 0),
    ("get", 2),
    ("get", 4),
    ("get", 10),
    ("get", -1),
    ("pop", None),
    ("get", None),
    ("add", items_of({"role": "user", "content": "O'Reilly; DROP TABLE x;--"})),
    ("add", items_of(CATALOGUE["function call, compact arguments"])),
    ("add", items_of(CATALOGUE["function call output"], CATALOGUE["assistant output"])),
    ("get", 3),
    ("pop", None),
    ("pop", None),
    ("get", 2),
    ("clear", None),
    ("get", None),
    ("pop", None),
    ("clear", None),
    ("add", conversation_turns(3, prefix="after clear ")),
    ("get", None),
    ("get", 1),
]


async def play(session: Any, script: list[tuple[str, Any]]) -> list[Any]:
    answers: list[Any] = []
    for step, argument in script:
        if step == "get":
            answers.append(await session.get_items(argument))
        elif step == "add":
            answers.append(await session.add_items(copy.deepcopy(argument)))
        elif step == "pop":
            answers.append(await session.pop_item())
        else:
            answers.append(await session.clear_session())
    return answers


async def test_every_method_answers_as_sqlite_session_does(
    new_session: Callable[..., ConversationsSession],
) -> None:
    reference = SQLiteSession("reference")

    expected = await play(reference, SCRIPT)
    answers = await play(new_session(), SCRIPT)

    for (step, argument), want, got in zip(SCRIPT, expected, answers, strict=True):
        assert got == want, f"{step}({argument!r})"
    reference.close()


async def test_session_settings_limit_is_the_default_limit_as_in_sqlite_session(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session(session_settings={"limit": 3})
    reference = SQLiteSession("reference", session_settings=SessionSettings(limit=3))
    for s in (session, reference):
        await s.add_items(conversation_turns(5))

    assert isinstance(session.session_settings, SessionSettings)
    assert await session.get_items() == await reference.get_items()
    assert await session.get_items(limit=1) == await reference.get_items(limit=1)
    assert [i.get("content") for i in await session.get_items()] == ["m2", "m3", "m4"]
    assert new_session().session_settings == SessionSettings()
    reference.close()


async def test_get_items_with_a_limit_is_one_request_of_the_newest_messages(
    counted: Counted,
) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=counted.client)
    await session.add_items(conversation_turns(120))
    counted.requests.clear()

    latest = await session.get_items(limit=20)
    one = len(counted.requests)
    none = await session.get_items(limit=0)
    after_zero = len(counted.requests)
    everything = await session.get_items()

    assert [i.get("content") for i in latest] == [f"m{i}" for i in range(100, 120)]
    assert one == 1
    assert none == []
    assert after_zero == 1  # limit=0 sends nothing
    assert len(everything) == 120
    assert len(counted.requests) == 2  # every item: one page of up to 1000


async def test_add_items_sends_one_batch_per_50_items(counted: Counted) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=counted.client)
    await session.add_items(conversation_turns(1))  # creates the conversation
    counted.requests.clear()

    await session.add_items(conversation_turns(120))

    batches = [r for r in counted.requests if r[1].endswith("/messages/batch")]
    assert len(batches) == 3
    assert len(counted.requests) == 3
    assert len(await session.get_items()) == 121


async def test_pop_item_and_clear_session_are_two_requests_each(counted: Counted) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=counted.client)
    await session.add_items(conversation_turns(4))
    counted.requests.clear()

    popped = await session.pop_item()
    pop_requests = list(counted.requests)
    counted.requests.clear()
    await session.clear_session()

    assert popped == {"role": "assistant", "content": "m3"}
    assert [m for m, _ in pop_requests] == ["GET", "DELETE"]
    assert [m for m, _ in counted.requests] == ["GET", "POST"]
    assert counted.requests[1][1].endswith("/messages/clear")


async def test_clear_session_keeps_the_conversation_and_its_id_usable(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()
    await session.add_items(conversation_turns(4))

    await session.clear_session()
    after_clear = await session.get_items()
    await session.add_items(items_of({"role": "user", "content": "again"}))

    assert after_clear == []
    assert await session.get_items() == [{"role": "user", "content": "again"}]
    conversation = await aclient.get_conversation(session.conversation_id)
    assert conversation.message_count == 1
    assert session_id_of(conversation) == session.session_id


async def test_the_transcript_reads_well_to_other_clients(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()
    await session.add_items(
        items_of(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            CATALOGUE["function call, compact arguments"],
            CATALOGUE["function call output"],
            CATALOGUE["assistant output"],
        )
    )

    full = await aclient.get_conversation(session.conversation_id, view="FULL")

    readable = [(m.type, m.content, m.tool_calls, m.tool_call_id) for m in full.messages or []]
    assert readable == [
        ("SYSTEM", "Be brief.", None, None),
        ("USER", "Weather in Paris?", None, None),
        (
            "AGENT",
            "",
            [
                {
                    "id": "call_1",
                    "name": "get_weather",
                    "arguments": {"city": "Paris", "days": [1, 2.5]},
                }
            ],
            None,
        ),
        ("TOOL", "sunny", None, "call_1"),
        ("AGENT", "Hi!\nNot that.", None, None),
    ]


async def test_every_kind_of_item_round_trips_through_the_stack(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session()
    items = items_of(*CATALOGUE.values())

    await session.add_items(copy.deepcopy(items))

    back = await session.get_items()
    assert back == items
    assert [list(cast(Item, i)) for i in back] == [list(cast(Item, i)) for i in items]


async def test_unicode_and_nested_json_come_back_exactly(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session("会話 🙂")
    items = items_of(
        {"role": "user", "content": "こんにちは 👋🏽 Привет שלום e\u0301 \u2028 \x00\x1f\ttab"},
        {"role": "assistant", "content": "😊👍", "extra": {"ключ": ["ü", {"ß": None}]}},
        {
            "type": "function_call",
            "call_id": "call_ü",
            "name": "lookup",
            "arguments": json.dumps(
                {"q": "Zürich ☕", "deep": {"a": [1, -0.5, 1e300, True, None]}}
            ),
        },
        {
            "type": "function_call",
            "call_id": "call_7",
            "name": "lookup",
            "arguments": json.dumps({"q": "Zürich ☕"}, ensure_ascii=False),
        },
        {
            "type": "function_call_output",
            "call_id": "call_7",
            "output": json.dumps({"nested": {"list": [[], {}, [{"x": "y"}]], "n": 12345678901}}),
        },
        {"role": "user", "content": "deep", "d": {"a": {"b": {"c": {"d": [1.5, "🙂", False]}}}}},
    )

    await session.add_items(copy.deepcopy(items))

    assert await session.get_items() == items
    assert await session.pop_item() == items[-1]
    assert await session.get_items(limit=2) == items[3:5]


async def test_pop_item_takes_one_item_off_another_clients_message_of_several(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()
    await session.add_items(items_of({"role": "user", "content": "search"}))
    await aclient.append_message(
        session.conversation_id,
        {
            "type": "AGENT",
            "content": "Looking.",
            "toolCalls": [
                {"id": "c1", "name": "search", "arguments": {"q": "a"}},
                {"id": "c2", "name": "search", "arguments": {"q": "b"}},
            ],
        },
    )

    first = await session.pop_item()
    second = await session.pop_item()
    third = await session.pop_item()

    assert first == {
        "type": "function_call",
        "call_id": "c2",
        "name": "search",
        "arguments": '{"q":"b"}',
    }
    assert second == {
        "type": "function_call",
        "call_id": "c1",
        "name": "search",
        "arguments": '{"q":"a"}',
    }
    assert third == {"role": "assistant", "content": "Looking."}
    assert await session.get_items() == [{"role": "user", "content": "search"}]


async def test_an_item_too_large_is_refused_before_anything_is_written(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()

    with pytest.raises(ValueError, match="does not fit one message"):
        await session.add_items(
            items_of({"role": "user", "content": "ok"}, {"role": "user", "content": "x" * 70_000})
        )

    with pytest.raises(NotFound):
        await aclient.get_conversation(session.conversation_id)


async def test_a_call_larger_than_one_batch_lands_whole_and_in_order(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()
    items = items_of(*({"role": "user", "content": f"{i}:" + "x" * 30_000} for i in range(20)))

    await session.add_items(copy.deepcopy(items))

    assert await session.get_items() == items
    assert (await aclient.get_conversation(session.conversation_id)).message_count == 20


# Concurrency.


async def test_two_workers_adding_to_one_session_lose_and_double_nothing(
    stack_url: str, owner: str
) -> None:
    session_id = f"s-{uuid.uuid4().hex[:12]}"

    async def worker(name: str) -> None:
        async with AsyncClient(stack_url, owner=owner, token="") as client:
            session = ConversationsSession(session_id, client=client)  # a process of its own
            for i in range(0, 30, 3):
                await session.add_items(
                    items_of(*({"role": "user", "content": f"{name}-{j}"} for j in range(i, i + 3)))
                )

    await asyncio.gather(worker("a"), worker("b"))

    async with AsyncClient(stack_url, owner=owner, token="") as client:
        items = await ConversationsSession(session_id, client=client).get_items()
    contents = [cast(Item, i)["content"] for i in items]
    assert sorted(contents) == sorted(f"{w}-{j}" for w in "ab" for j in range(30))
    for w in "ab":  # each worker's items in its own order
        assert [c for c in contents if c.startswith(w)] == [f"{w}-{j}" for j in range(30)]


async def test_calls_on_one_session_object_run_one_at_a_time(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session()

    await asyncio.gather(
        *(session.add_items(items_of({"role": "user", "content": f"m{i}"})) for i in range(10))
    )
    popped = await asyncio.gather(*(session.pop_item() for _ in range(4)))

    assert len(await session.get_items()) == 6
    assert len({json.dumps(p) for p in popped}) == 4


async def test_two_workers_popping_one_session_each_take_distinct_items(
    stack_url: str, owner: str
) -> None:
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    async with AsyncClient(stack_url, owner=owner, token="") as client:
        await ConversationsSession(session_id, client=client).add_items(conversation_turns(16))

    async def worker() -> list[Any]:
        async with AsyncClient(stack_url, owner=owner, token="") as client:
            session = ConversationsSession(session_id, client=client)
            return [await session.pop_item() for _ in range(10)]

    a, b = await asyncio.gather(worker(), worker())

    taken = [cast(Item, i)["content"] for i in a + b if i is not None]
    assert sorted(taken) == sorted(f"m{i}" for i in range(16))
    assert a.count(None) + b.count(None) == 4
    for popped in (a, b):  # each worker pops newest first
        orders = [int(cast(Item, i)["content"][1:]) for i in popped if i is not None]
        assert orders == sorted(orders, reverse=True)


async def test_a_cancelled_add_items_waits_for_its_write_then_raises(
    proxy: ApiProxy, owner: str
) -> None:
    async with AsyncClient(proxy.base_url, owner=owner, token="") as client:
        session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=client)
        await session.add_items(items_of({"role": "user", "content": "first"}))
        proxy.add(Rule("POST", Hold(1.0), path_ending="/messages/batch"))
        task = asyncio.create_task(session.add_items(items_of({"role": "user", "content": "x"})))
        await asyncio.sleep(0.3)

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert [cast(Item, i)["content"] for i in await session.get_items()] == ["first", "x"]


# Lost answers, through the fault proxy.

FAST = Retry(base_delay=0.05)


@pytest.fixture
async def faulty(proxy: ApiProxy, owner: str) -> AsyncIterator[AsyncClient]:
    """A client through the proxy; 2 s per attempt, so that a held answer outlasts it."""
    async with AsyncClient(proxy.base_url, owner=owner, token="", retry=FAST, timeout=2.0) as c:
        yield c


FAULTS = [LOSE_ANSWER, CLOSE, Hold(3.0), Late(2.5)]


@pytest.mark.parametrize("fault", [LOSE_ANSWER, CLOSE, Hold(3.0)], ids=str)
async def test_add_items_whose_answer_is_lost_lands_once(
    faulty: AsyncClient, aclient: AsyncClient, proxy: ApiProxy, fault: Any
) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=faulty)
    await session.add_items(conversation_turns(2))
    before = len(proxy.requests("POST", "/messages/batch"))
    proxy.add(Rule("POST", fault, path_ending="/messages/batch"))

    await session.add_items(conversation_turns(3, prefix="n"))
    proxy.wait_idle()

    direct = ConversationsSession(session.session_id, client=aclient)
    contents = [cast(Item, i)["content"] for i in await direct.get_items()]
    assert contents == ["m0", "m1", "n0", "n1", "n2"]
    sent = proxy.requests("POST", "/messages/batch")[before:]
    assert len(sent) == 2
    assert sent[0].request_id == sent[1].request_id


async def test_the_first_add_whose_create_answer_is_lost_creates_once(
    faulty: AsyncClient, aclient: AsyncClient, proxy: ApiProxy
) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=faulty)
    proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/v1/conversations"))
    proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/messages/batch", skip=1))

    await session.add_items(conversation_turns(2))
    proxy.wait_idle()

    assert await ConversationsSession(session.session_id, client=aclient).get_items() == (
        conversation_turns(2)
    )


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_pop_item_whose_answer_is_lost_pops_once_and_returns_the_item(
    faulty: AsyncClient, aclient: AsyncClient, proxy: ApiProxy, fault: Any
) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=faulty)
    await session.add_items(conversation_turns(4))
    proxy.add(Rule("DELETE", fault))

    popped = await session.pop_item()
    proxy.wait_idle()

    assert popped == {"role": "assistant", "content": "m3"}
    direct = ConversationsSession(session.session_id, client=aclient)
    assert [cast(Item, i)["content"] for i in await direct.get_items()] == ["m0", "m1", "m2"]
    deletes = proxy.requests("DELETE")
    assert len(deletes) == 2
    assert deletes[0].path == deletes[1].path  # the same message again, never the next one


async def test_a_pop_whose_answer_is_lost_and_a_new_item_added_meanwhile_pops_the_same_item(
    faulty: AsyncClient, aclient: AsyncClient, proxy: ApiProxy
) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=faulty)
    await session.add_items(conversation_turns(2))
    direct = ConversationsSession(session.session_id, client=aclient)
    proxy.add(Rule("DELETE", Late(2.5)))  # the first delete reaches the service after the retry

    async def add_meanwhile() -> None:
        await asyncio.sleep(0.5)
        await direct.add_items(items_of({"role": "user", "content": "new"}))

    popped, _ = await asyncio.gather(session.pop_item(), add_meanwhile())
    proxy.wait_idle()

    assert popped == {"role": "assistant", "content": "m1"}
    assert [cast(Item, i)["content"] for i in await direct.get_items()] == ["m0", "new"]


@pytest.mark.parametrize("fault", [LOSE_ANSWER, CLOSE], ids=str)
async def test_clear_session_whose_answer_is_lost_clears_once_and_keeps_later_items(
    faulty: AsyncClient, aclient: AsyncClient, proxy: ApiProxy, fault: Any
) -> None:
    session = ConversationsSession(f"s-{uuid.uuid4().hex[:12]}", client=faulty)
    direct = ConversationsSession(session.session_id, client=aclient)
    await session.add_items(conversation_turns(3))
    proxy.add(Rule("POST", fault, path_ending="/messages/clear"))

    await session.clear_session()
    proxy.wait_idle()
    await direct.add_items(items_of({"role": "user", "content": "after"}))

    assert await direct.get_items() == [{"role": "user", "content": "after"}]
    assert len(proxy.requests("POST", "/messages/clear")) == 2


# Users and owners.


async def test_users_each_have_their_own_session_under_one_id(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    alice = new_session("shared-id", user="alice")
    bob = new_session("shared-id", user="bob")

    await alice.add_items(items_of({"role": "user", "content": "I am Alice"}))
    await bob.add_items(items_of({"role": "user", "content": "I am Bob"}))
    await bob.add_items(items_of({"role": "user", "content": "Bob again"}))
    popped = await alice.pop_item()

    assert popped == {"role": "user", "content": "I am Alice"}
    assert await alice.get_items() == []
    assert len(await bob.get_items()) == 2
    assert await new_session("shared-id").get_items() == []  # the caller itself: none
    owner = (await aclient.acting_for("bob").get_conversation("shared-id")).owner
    assert owner is not None
    assert owner.endswith("/bob")


async def test_owners_do_not_see_each_others_sessions(stack_url: str) -> None:
    async with (
        AsyncClient(stack_url, owner=f"py-{uuid.uuid4().hex}", token="") as one,
        AsyncClient(stack_url, owner=f"py-{uuid.uuid4().hex}", token="") as other,
    ):
        await ConversationsSession("same", client=one).add_items(conversation_turns(2))
        theirs = ConversationsSession("same", client=other)

        assert await theirs.get_items() == []
        assert await theirs.pop_item() is None
        await theirs.clear_session()
        assert len(await ConversationsSession("same", client=one).get_items()) == 2


@dataclass
class Tenant:
    user_id: str


async def test_the_wrapper_picks_the_user_when_user_from_context_is_given(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session(user_from_context=lambda context: context.user_id)
    plain = new_session(session.session_id)
    alice = RunContextWrapper(context=Tenant("alice"))
    bob = RunContextWrapper(context=Tenant("bob"))

    await session.add_items(items_of({"role": "user", "content": "a"}), wrapper=alice)
    await session.add_items(items_of({"role": "user", "content": "b"}), wrapper=bob)

    assert _session_accepts_wrapper(session)
    assert session.user_for(alice) == "alice"
    assert await session.get_items(wrapper=alice) == [{"role": "user", "content": "a"}]
    assert await session.pop_item(wrapper=bob) == {"role": "user", "content": "b"}
    await session.clear_session(wrapper=alice)
    assert await session.get_items(wrapper=alice) == []
    assert await plain.get_items() == []


# The SDK's Runner, with its scripted model.


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def weather_script() -> ScriptedModel:
    return ScriptedModel(
        [
            [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
            [assistant_message("It is sunny in Paris.")],
            [assistant_message("You're welcome.")],
        ]
    )


async def two_turns(session: Any, **run: Any) -> ScriptedModel:
    model = weather_script()
    agent = Agent(name="weather", model=model, tools=[get_weather])
    first = await Runner.run(agent, "Weather in Paris?", session=session, **run)
    second = await Runner.run(agent, "Thanks!", session=session, **run)
    assert (first.final_output, second.final_output) == ("It is sunny in Paris.", "You're welcome.")
    return model


async def test_a_runner_turn_is_stored_replayed_and_readable_as_with_sqlite_session(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()
    reference = SQLiteSession("reference")

    model = await two_turns(session)
    reference_model = await two_turns(reference)

    assert await session.get_items() == await reference.get_items()
    assert [c.input for c in model.calls] == [c.input for c in reference_model.calls]
    last_input = cast(list[Item], model.calls[-1].input)
    assert len(last_input) == 5  # the first turn's four items from the session, then "Thanks!"
    messages = [m async for m in aclient.list_messages(session.conversation_id)]
    assert [(m.type, m.content, m.tool_call_id) for m in messages] == [
        ("USER", "Weather in Paris?", None),
        ("AGENT", "", None),
        ("TOOL", "sunny in Paris", "call_1"),
        ("AGENT", "It is sunny in Paris.", None),
        ("USER", "Thanks!", None),
        ("AGENT", "You're welcome.", None),
    ]
    assert messages[1].tool_calls == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    reference.close()


async def test_the_runner_passes_its_context_so_each_user_has_their_own_history(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session(user_from_context=lambda context: context.user_id)

    await two_turns(session, context=Tenant("alice"))
    model = ScriptedModel([[assistant_message("Hello Bob.")]])
    await Runner.run(Agent(name="a", model=model), "Hi", session=session, context=Tenant("bob"))

    alice = await session.get_items(wrapper=RunContextWrapper(context=Tenant("alice")))
    bob = await session.get_items(wrapper=RunContextWrapper(context=Tenant("bob")))
    assert len(alice) == 6
    assert model.calls[0].input == [{"role": "user", "content": "Hi"}]  # nothing of Alice's
    assert [cast(Item, i).get("role") for i in bob] == ["user", "assistant"]
    assert await session.get_items() == []


async def test_a_runner_with_session_settings_limit_sends_the_latest_items(
    new_session: Callable[..., ConversationsSession],
) -> None:
    session = new_session(session_settings=SessionSettings(limit=2))
    await session.add_items(conversation_turns(6))
    model = ScriptedModel([[assistant_message("ok")]])

    await Runner.run(Agent(name="a", model=model), "next", session=session)

    assert model.calls[0].input == [
        {"role": "user", "content": "m4"},
        {"role": "assistant", "content": "m5"},
        {"role": "user", "content": "next"},
    ]


# A long session.


async def seconds_of(call: Callable[[], Awaitable[Any]], times: int = 7) -> float:
    """The median duration of ``call``."""
    durations = []
    for _ in range(times):
        start = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


async def test_a_10000_item_session_reads_its_latest_20_in_one_request_as_fast_as_a_short_one(
    counted: Counted,
) -> None:
    long = ConversationsSession(f"long-{uuid.uuid4().hex[:12]}", client=counted.client)
    short = ConversationsSession(f"short-{uuid.uuid4().hex[:12]}", client=counted.client)
    await long.add_items(conversation_turns(10_000))  # 200 batch appends of 50
    await short.add_items(conversation_turns(10))
    counted.requests.clear()

    latest = await long.get_items(20)
    requests = list(counted.requests)
    long_time = await seconds_of(lambda: long.get_items(20))
    short_time = await seconds_of(lambda: short.get_items(20))

    print(
        f"get_items(20): {long_time * 1000:.1f} ms on 10 000 items, {short_time * 1000:.1f} on 10"
    )
    assert [cast(Item, i)["content"] for i in latest] == [f"m{i}" for i in range(9980, 10_000)]
    assert len(requests) == 1
    assert requests[0][0] == "GET"
    assert long_time < max(2 * short_time, short_time + 0.05), (long_time, short_time)
    assert (await counted.client.get_conversation(long.conversation_id)).message_count == 10_000


async def test_a_session_that_made_its_client_is_closed_by_close(stack_url: str) -> None:
    session = ConversationsSession("closing")  # a client of its own, from the environment

    await session.close()

    with pytest.raises(RuntimeError, match="closed"):
        await session.get_items()
    with pytest.raises(RuntimeError, match="closed"):
        await session.add_items([])


async def test_a_session_given_a_client_leaves_it_open(
    new_session: Callable[..., ConversationsSession], aclient: AsyncClient
) -> None:
    session = new_session()

    await session.close()

    assert await session.get_items() == []
    await aclient.list_conversations_page()
