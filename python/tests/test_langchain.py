"""LangChain's chat message history (``conversations_client.langchain``) against the stack.

The ``side`` fixture runs a test twice: once through the history's sync methods (``messages``,
``add_messages``, ``clear`` on a :class:`~conversations_client.Client`) and once through its
async ones (``aget_messages``, ``aadd_messages``, ``aclear`` on an
:class:`~conversations_client.AsyncClient`, each coroutine run to its end on the test's own
loop), so that every method is tested both ways with one test body. The mapping of messages is
tested without the stack, one function per direction, and through it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    ToolMessageChunk,
    messages_from_dict,
    messages_to_dict,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from api_proxy import LOSE_ANSWER, ApiProxy, Before, Rule
from conversations_client import (
    AsyncClient,
    Client,
    FailedPrecondition,
    Message,
    NotFound,
    Retry,
)
from conversations_client.ids import conversation_id_for
from conversations_client.langchain import (
    MAX_BATCH_BYTES,
    METADATA_KEY,
    ConversationsChatMessageHistory,
    _batches,
    message_from_api,
    message_to_api,
)

T = TypeVar("T")
FAST = Retry(base_delay=0.05)


# The mapping, without the stack.


def every_kind_of_message() -> list[BaseMessage]:
    """One of each message class, with each field LangChain keeps on it."""
    return [
        HumanMessage("Hello"),
        HumanMessage(
            "with everything",
            id="h-1",
            name="alice",
            additional_kwargs={"lc_source": "summary", "nested": {"a": [1, 2.5, None, True]}},
            response_metadata={"x": "y"},
        ),
        HumanMessage(
            content=[
                {"type": "text", "text": "What is in "},
                {"type": "image", "url": "https://example.com/cat.png"},
                {"type": "text", "text": "this picture?"},
            ]
        ),
        HumanMessage(content=[{"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "x/y"}]),
        HumanMessage(""),
        AIMessage("Hi! How can I help?"),
        AIMessage(
            "",
            id="lc_run--1",
            tool_calls=[
                {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"},
                {"name": "get_time", "args": {}, "id": "call_2"},
            ],
            usage_metadata={"input_tokens": 10, "output_tokens": 3, "total_tokens": 13},
            response_metadata={"model_name": "fake", "finish_reason": "tool_calls"},
        ),
        AIMessage(
            "Let me check.",
            tool_calls=[{"name": "search", "args": {"q": {"nested": ["x"]}}, "id": "c-3"}],
        ),
        AIMessage("", tool_calls=[{"name": "has space", "args": {}, "id": "id with space"}]),
        AIMessage(
            "",
            invalid_tool_calls=[
                {"name": "f", "args": "{broken", "id": "c9", "error": "bad JSON"},
            ],
        ),
        AIMessage(""),
        AIMessage(
            content=[{"type": "reasoning", "reasoning": "…"}, {"type": "text", "text": "ok"}]
        ),
        ToolMessage("18 °C", tool_call_id="call_1"),
        ToolMessage(
            "failed", tool_call_id="call 2", status="error", artifact={"trace": [1, 2]}, name="t"
        ),
        SystemMessage("You are terse."),
        ChatMessage(content="Looks fine.", role="critic"),
        ChatMessage(content="from a user", role="user"),
        ChatMessage(content="from the model", role="assistant"),
        FunctionMessage(content='{"temp": 18}', name="get_weather"),
        RemoveMessage(id="h-1"),
        AIMessageChunk(content="partial", id="chunk-1"),
        HumanMessageChunk(content="chunk"),
        ToolMessageChunk(content="out", tool_call_id="call_1"),
    ]


def stored(body: Any, order: int = 1) -> Message:
    """A message as the service answers it after storing ``body``."""
    return Message.from_json({**body, "name": f"conversations/c/messages/{order}", "order": order})


@pytest.mark.parametrize("message", every_kind_of_message(), ids=lambda m: type(m).__name__)
def test_every_message_class_round_trips_through_its_api_form(message: BaseMessage) -> None:
    back = message_from_api(stored(message_to_api(message)))

    assert back == message
    assert type(back) is type(message)
    assert messages_to_dict([back]) == messages_to_dict([message])


def test_classes_map_to_the_contracts_types_and_fields() -> None:
    ai = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}])

    assert message_to_api(HumanMessage("hi")) == {"type": "USER", "content": "hi"}
    assert message_to_api(SystemMessage("be brief")) == {"type": "SYSTEM", "content": "be brief"}
    assert message_to_api(AIMessage("hello")) == {"type": "AGENT", "content": "hello"}
    assert message_to_api(ai) == {
        "type": "AGENT",
        "content": "",
        "toolCalls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}}],
    }
    assert message_to_api(ToolMessage("4 °C", tool_call_id="c1")) == {
        "type": "TOOL",
        "content": "4 °C",
        "toolCallId": "c1",
    }
    assert message_to_api(FunctionMessage(content="x", name="f"))["type"] == "TOOL"
    assert message_to_api(ChatMessage(content="x", role="assistant"))["type"] == "AGENT"
    assert message_to_api(ChatMessage(content="x", role="developer"))["type"] == "SYSTEM"
    assert message_to_api(ChatMessage(content="x", role="critic"))["type"] == "AGENT"
    assert message_to_api(RemoveMessage(id="m-7"))["content"] == "[remove message m-7]"


def test_what_has_no_field_of_its_own_is_kept_in_the_metadata_and_readable_text_in_content() -> (
    None
):
    picture = HumanMessage(
        content=[{"type": "text", "text": "see"}, {"type": "image", "url": "https://x/y.png"}],
        id="m-1",
    )
    only_image = HumanMessage(content=[{"type": "image", "url": "https://x/y.png"}])

    body = message_to_api(picture)

    assert body["content"] == "see"
    assert body["metadata"] == {METADATA_KEY: {"content": picture.content, "id": "m-1"}}
    assert message_to_api(only_image)["content"] == "[image]"
    assert message_to_api(HumanMessage(""))["content"] == "[empty]"


def test_a_message_written_by_another_client_reads_as_its_type() -> None:
    calls = [{"id": "c1", "name": "lookup", "arguments": {"q": "x"}}]

    read = [
        message_from_api(stored({"type": "USER", "content": "q", "metadata": {"app": 1}})),
        message_from_api(stored({"type": "AGENT", "toolCalls": calls})),
        message_from_api(stored({"type": "TOOL", "content": "r", "toolCallId": "c1"})),
        message_from_api(stored({"type": "TOOL", "content": "r"})),
        message_from_api(stored({"type": "SYSTEM", "content": "s"})),
    ]

    assert read == [
        HumanMessage("q"),
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1"}]),
        ToolMessage("r", tool_call_id="c1"),
        ToolMessage("r", tool_call_id=""),
        SystemMessage("s"),
    ]


def test_metadata_that_langchain_cannot_read_falls_back_to_the_messages_type() -> None:
    broken = {"type": "AGENT", "content": "hi", "metadata": {METADATA_KEY: {"type": "chat"}}}

    assert message_from_api(stored(broken)) == AIMessage("hi")


def test_a_message_the_contract_cannot_hold_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="64 KiB"):
        message_to_api(HumanMessage("x" * (64 * 1024 + 1)))
    with pytest.raises(ValueError, match="16 KiB"):
        message_to_api(HumanMessage("x", additional_kwargs={"blob": "y" * 17000}))
    with pytest.raises(ValueError, match="not JSON"):
        message_to_api(HumanMessage("x", additional_kwargs={"when": object()}))


def test_batches_hold_at_most_50_messages_and_256_kib() -> None:
    small = [message_to_api(HumanMessage(str(i))) for i in range(120)]
    big = [message_to_api(HumanMessage("é" * 30000)) for _ in range(10)]  # 60 000 bytes each

    assert [len(b) for b in _batches(small)] == [50, 50, 20]
    assert [len(b) for b in _batches(big)] == [4, 4, 2]
    assert all(sum(len(str(m)) for m in b) < MAX_BATCH_BYTES for b in _batches(big))
    assert [m for b in _batches(small) for m in b] == small


# The history against the stack, through its sync and its async methods.


class Side:
    """A history seen through its sync methods, or through its async ones."""

    def __init__(self, history: ConversationsChatMessageHistory, loop: Any) -> None:
        self.history = history
        self.loop: asyncio.AbstractEventLoop | None = loop

    @property
    def is_async(self) -> bool:
        return self.loop is not None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None
        return self.loop.run_until_complete(coroutine)

    def messages(self) -> list[BaseMessage]:
        if self.loop is None:
            return self.history.messages
        return self.run(self.history.aget_messages())

    def get(self, limit: int | None = None) -> list[BaseMessage]:
        if self.loop is None:
            return self.history.get_messages(limit=limit)
        return self.run(self.history.aget_messages(limit=limit))

    def add(self, messages: Sequence[BaseMessage]) -> None:
        if self.loop is None:
            self.history.add_messages(messages)
        else:
            self.run(self.history.aadd_messages(messages))

    def clear(self) -> None:
        if self.loop is None:
            self.history.clear()
        else:
            self.run(self.history.aclear())


Histories = Callable[..., Side]


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def histories(kind: str, stack_url: str, owner: str) -> Iterator[Histories]:
    """Makes histories of the test's kind, each with its own client of the test's owner (another
    ``base_url``: a proxy's), closed after the test."""
    loop = asyncio.new_event_loop() if kind == "async" else None
    sync_clients: list[Client] = []
    async_clients: list[AsyncClient] = []

    def make(
        session_id: str | None = None,
        *,
        base_url: str | None = None,
        **options: Any,
    ) -> Side:
        settings: dict[str, Any] = {"owner": owner, "token": ""}
        if base_url is not None:
            settings.update(retry=FAST, timeout=5.0)
        session = session_id if session_id is not None else f"lc session {uuid.uuid4()}"
        if loop is None:
            client = Client(base_url or stack_url, **settings)
            sync_clients.append(client)
            history = ConversationsChatMessageHistory(session, client=client, **options)
        else:
            aclient = AsyncClient(base_url or stack_url, **settings)
            async_clients.append(aclient)
            history = ConversationsChatMessageHistory(session, async_client=aclient, **options)
        return Side(history, loop)

    yield make
    for c in sync_clients:
        c.close()
    if loop is not None:
        for a in async_clients:
            loop.run_until_complete(a.aclose())
        loop.close()


def turn(i: int) -> list[BaseMessage]:
    return [HumanMessage(f"question {i}"), AIMessage(f"answer {i}")]


def test_a_missing_history_is_empty_without_an_error_and_clearing_it_creates_nothing(
    histories: Histories, client: Client
) -> None:
    side = histories()

    assert side.messages() == []
    assert side.get(limit=5) == []
    side.clear()

    assert side.messages() == []
    with pytest.raises(NotFound):
        client.get_conversation(side.history.conversation_id)


def test_an_empty_history_reads_empty_and_clears_without_a_write(
    histories: Histories, client: Client
) -> None:
    side = histories()
    client.create_conversation({"agents": ["x"]}, conversation_id=side.history.conversation_id)
    etag = client.get_conversation(side.history.conversation_id).etag

    assert side.messages() == []
    side.clear()

    assert client.get_conversation(side.history.conversation_id).etag == etag


def test_every_message_class_comes_back_equal_and_in_order(histories: Histories) -> None:
    side = histories()
    sent = every_kind_of_message()

    side.add(sent)

    back = side.messages()
    assert back == sent
    assert messages_to_dict(back) == messages_to_dict(sent)
    assert messages_from_dict(messages_to_dict(back)) == sent


def test_the_first_write_creates_the_conversation_with_the_session_id(
    histories: Histories, client: Client
) -> None:
    side = histories("user_123_session")

    side.add([HumanMessage("hi")])

    conversation = client.get_conversation(conversation_id_for("user_123_session"))
    assert side.history.conversation_id == "user-123-session--ie6lmyom4c32"
    assert conversation.metadata == {"_sessionId": "user_123_session"}
    assert conversation.agents == ["langchain"]
    assert conversation.message_count == 1


def test_add_message_and_the_base_class_helpers_append_one_message_each(
    histories: Histories,
) -> None:
    side = histories()
    history = side.history

    # The base class's helpers are sync: they call add_messages (one batch each).
    history.add_message(SystemMessage("be brief"))
    history.add_user_message("hi")
    history.add_user_message(HumanMessage("again", id="u-2"))
    history.add_ai_message("hello")
    history.add_ai_message(AIMessage("bye", id="a-2"))

    assert side.messages() == [
        SystemMessage("be brief"),
        HumanMessage("hi"),
        HumanMessage("again", id="u-2"),
        AIMessage("hello"),
        AIMessage("bye", id="a-2"),
    ]
    assert str(history) == "System: be brief\nHuman: hi\nHuman: again\nAI: hello\nAI: bye"


def test_adding_nothing_sends_nothing(histories: Histories, proxy: ApiProxy) -> None:
    side = histories(base_url=proxy.base_url)

    side.add([])

    assert proxy.requests() == []


def test_add_messages_is_one_batch_append_and_more_than_50_are_split_in_order(
    histories: Histories, proxy: ApiProxy, client: Client
) -> None:
    side = histories(base_url=proxy.base_url)
    side.add(turn(0))  # creates the conversation
    first = proxy.requests("POST", "/messages/batch")

    many = [HumanMessage(f"m{i}") for i in range(120)]
    side.add(many)

    batches = proxy.requests("POST", "/messages/batch")[len(first) :]
    assert len(batches) == 3
    assert len({b.request_id for b in batches}) == 3
    assert all(b.request_id for b in batches)
    stored = list(client.list_messages(side.history.conversation_id))
    assert [m.order for m in stored] == list(range(1, 123))
    assert side.messages() == turn(0) + many


def test_a_batch_that_fails_after_earlier_ones_says_what_was_stored(
    histories: Histories, proxy: ApiProxy, client: Client
) -> None:
    side = histories(base_url=proxy.base_url)
    side.add(turn(0))
    conversation_id = side.history.conversation_id

    def complete() -> None:
        client.complete_conversation(conversation_id)

    # The conversation completes between the first and the second batch of the call.
    proxy.add(
        Rule(
            "POST",
            Before(complete),
            path_ending="/messages/batch",
            skip=1,  # the call's first batch goes through
        )
    )

    with pytest.raises(FailedPrecondition) as raised:
        side.add([HumanMessage(f"m{i}") for i in range(60)])

    assert "the first 50 of 60 messages were stored" in "".join(raised.value.__notes__)
    assert len(side.messages()) == 52


def test_clear_removes_every_message_and_later_ones_are_appended_after(
    histories: Histories, client: Client
) -> None:
    side = histories()
    side.add(turn(1) + turn(2))

    side.clear()
    assert side.messages() == []
    side.add(turn(3))

    assert side.messages() == turn(3)
    stored = list(client.list_messages(side.history.conversation_id))
    assert [m.order for m in stored] == [5, 6]
    assert client.get_conversation(side.history.conversation_id).message_count == 2


def test_clear_is_two_requests_and_retried_through_a_lost_answer(
    histories: Histories, proxy: ApiProxy
) -> None:
    side = histories(base_url=proxy.base_url)
    side.add(turn(1))
    before = len(proxy.requests())
    proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/messages/clear"))

    side.clear()
    proxy.wait_idle()

    assert [(s.method, s.status) for s in proxy.requests()[before:]] == [
        ("GET", 200),
        ("POST", 200),
        ("POST", 200),
    ]
    assert side.messages() == []


def test_a_window_or_a_limit_reads_only_the_latest_messages_oldest_first(
    histories: Histories,
) -> None:
    side = histories()
    session_id = side.history.session_id
    side.add(turn(1) + turn(2) + turn(3))
    windowed = histories(session_id, window=3)

    assert side.get(limit=2) == turn(3)
    assert side.get(limit=0) == []
    assert side.get(limit=100) == turn(1) + turn(2) + turn(3)
    assert windowed.messages() == turn(2)[1:] + turn(3)


def test_assigning_messages_is_refused_as_the_dynamodb_and_redis_histories_do(
    histories: Histories,
) -> None:
    history = histories().history

    with pytest.raises(NotImplementedError):
        history.messages = []


def test_a_soft_deleted_conversation_reads_empty_and_refuses_appends(
    histories: Histories, client: Client
) -> None:
    side = histories()
    side.add(turn(1))
    client.delete_conversation(side.history.conversation_id)

    assert side.messages() == []
    with pytest.raises(NotFound):
        side.add(turn(2))


def test_unicode_and_nested_json_round_trip(histories: Histories) -> None:
    nested = {"a": {"b": [1, -2.5, None, True, {"c": "ü"}]}, "emoji": "🦜🔗", "empty": {}}
    sent: list[BaseMessage] = [
        HumanMessage('Grüße, 世界! 🦜 \u0000 \n\t"quoted" \\ back'),
        AIMessage(
            "مرحبا",
            tool_calls=[{"name": "lookup", "args": nested, "id": "call:ü-1".replace("ü", "u")}],
            additional_kwargs={"nested": nested},
            response_metadata={"ключ": ["значение", {"深い": nested}]},
        ),
        ToolMessage(content=[{"type": "text", "text": "‮RTL"}, nested], tool_call_id="call:u-1"),
        HumanMessage("𝔘𝔫𝔦𝔠𝔬𝔡𝔢", name="名前", id="ид-1"),
    ]
    side = histories("Café ☕ session")

    side.add(sent)

    assert side.messages() == sent


def test_a_redaction_by_another_client_shows_in_the_messages(
    histories: Histories, client: Client
) -> None:
    side = histories()
    side.add(
        [
            HumanMessage("my card is 4111", id="u-1"),
            HumanMessage(content=[{"type": "text", "text": "secret"}]),
        ]
    )
    conversation_id = side.history.conversation_id

    client.update_message(conversation_id, 1, {"content": "[redacted]"})
    client.update_message(conversation_id, 2, {"content": "[redacted]"})

    assert side.messages() == [HumanMessage("[redacted]", id="u-1"), HumanMessage("[redacted]")]


def test_the_history_reads_well_to_other_clients(histories: Histories, client: Client) -> None:
    side = histories()
    side.add(
        [
            HumanMessage("Weather in Paris?"),
            AIMessage(
                "", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]
            ),
            ToolMessage("18 °C", tool_call_id="c1"),
            AIMessage("It is 18 °C.", response_metadata={"model_name": "fake"}),
        ]
    )

    full = client.get_conversation(side.history.conversation_id, view="FULL")

    assert [(m.type, m.content) for m in full.messages or []] == [
        ("USER", "Weather in Paris?"),
        ("AGENT", ""),
        ("TOOL", "18 °C"),
        ("AGENT", "It is 18 °C."),
    ]
    messages = full.messages or []
    assert messages[1].tool_calls == [
        {"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert messages[2].tool_call_id == "c1"
    assert messages[0].metadata is None
    assert messages[3].metadata == {METADATA_KEY: {"response_metadata": {"model_name": "fake"}}}


def test_users_of_one_client_are_isolated(histories: Histories, client: Client) -> None:
    alice = histories("shared-session", user="alice")
    bob = histories("shared-session", user="bob")
    caller = histories("shared-session")

    alice.add([HumanMessage("from alice")])
    bob.add([HumanMessage("from bob")])

    assert alice.messages() == [HumanMessage("from alice")]
    assert bob.messages() == [HumanMessage("from bob")]
    assert caller.messages() == []
    bob.clear()
    assert alice.messages() == [HumanMessage("from alice")]
    assert list(client.list_conversations()) == []


def test_two_workers_adding_to_one_history_lose_and_double_nothing(
    histories: Histories,
) -> None:
    # Two workers, each with its own history object and client, on a history that does not
    # exist yet: both race to create it.
    workers = [histories("racing session"), histories("racing session")]
    turns = 15

    def work(side: Side, name: str) -> None:
        for i in range(turns):
            side.history.add_messages([HumanMessage(f"{name} q{i}"), AIMessage(f"{name} a{i}")])

    async def awork(side: Side, name: str) -> None:
        for i in range(turns):
            await side.history.aadd_messages(
                [HumanMessage(f"{name} q{i}"), AIMessage(f"{name} a{i}")]
            )

    if workers[0].is_async:

        async def both() -> None:
            await asyncio.gather(awork(workers[0], "w0"), awork(workers[1], "w1"))

        workers[0].run(both())
    else:
        threads = [threading.Thread(target=work, args=(w, f"w{n}")) for n, w in enumerate(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    read = [str(m.content) for m in workers[0].messages()]
    assert len(read) == 2 * 2 * turns
    assert sorted(read) == sorted(
        f"w{n} {x}{i}" for n in range(2) for i in range(turns) for x in "qa"
    )
    # Each call's batch is contiguous, and each worker's calls keep their order.
    pairs = list(zip(read[::2], read[1::2], strict=True))
    assert all(q.replace(" q", " a") == a for q, a in pairs)
    for name in ("w0", "w1"):
        mine = [q for q, _ in pairs if q.startswith(name)]
        assert mine == [f"{name} q{i}" for i in range(turns)]


def test_an_append_whose_answer_is_lost_lands_once(
    histories: Histories, proxy: ApiProxy, client: Client
) -> None:
    side = histories(base_url=proxy.base_url)
    # The history is missing: its first batch is answered 404, the conversation is created (that
    # answer lost too), and the batch's second send (its answer lost) is retried with its key.
    proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/conversations"))
    proxy.add(Rule("POST", LOSE_ANSWER, path_ending="/messages/batch", skip=1))

    side.add(turn(1))
    proxy.wait_idle()

    assert side.messages() == turn(1)
    batches = proxy.requests("POST", "/messages/batch")
    assert [b.status for b in batches] == [404, 201, 201]
    assert len({b.request_id for b in batches}) == 1
    assert [s.status for s in proxy.requests("POST", "/conversations")] == [201, 201]
    assert client.get_conversation(side.history.conversation_id).message_count == 2


@pytest.mark.filterwarnings("ignore::langchain_core._api.LangChainDeprecationWarning")
def test_a_turn_of_runnable_with_message_history_uses_the_history(
    histories: Histories,
) -> None:
    side = histories()
    seen: list[list[BaseMessage]] = []

    def record(messages: list[BaseMessage]) -> list[BaseMessage]:
        seen.append(list(messages))
        return messages

    model = FakeMessagesListChatModel(
        responses=[AIMessage("Hello Ada!", id="r-1"), AIMessage("You are Ada.", id="r-2")]
    )
    chain = RunnableWithMessageHistory(
        RunnableLambda(record) | model, lambda session_id: side.history
    )
    config: Any = {"configurable": {"session_id": side.history.session_id}}

    if side.is_async:
        first = side.run(chain.ainvoke([HumanMessage("I am Ada.")], config))
        second = side.run(chain.ainvoke([HumanMessage("Who am I?")], config))
    else:
        first = chain.invoke([HumanMessage("I am Ada.")], config)
        second = chain.invoke([HumanMessage("Who am I?")], config)

    assert (first.content, second.content) == ("Hello Ada!", "You are Ada.")
    assert [m.content for m in seen[1]] == ["I am Ada.", "Hello Ada!", "Who am I?"]
    assert [(type(m), m.content) for m in side.messages()] == [
        (HumanMessage, "I am Ada."),
        (AIMessage, "Hello Ada!"),
        (HumanMessage, "Who am I?"),
        (AIMessage, "You are Ada."),
    ]
    assert side.messages()[3] == second
    # The async turn went through the async methods only (no sync twin was made), and the other
    # way round.
    assert (side.history._client is None) == side.is_async
    assert (side.history._async_client is None) != side.is_async


@pytest.mark.filterwarnings("ignore::langchain_core._api.LangChainDeprecationWarning")
def test_the_history_behaves_as_langchains_in_memory_history(histories: Histories) -> None:
    side = histories()
    memory = InMemoryChatMessageHistory()

    for history in (side.history, memory):
        history.add_user_message("one")
        history.add_messages(turn(2))
        history.clear()
        history.add_ai_message("after clear")
        history.add_messages([])

    assert side.messages() == memory.messages
    assert str(side.history) == str(memory)


def test_a_history_made_without_clients_uses_the_environment_and_closes_them(
    stack_url: str, owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVERSATIONS_URL", stack_url)
    monkeypatch.setenv("CONVERSATIONS_OWNER", owner)
    monkeypatch.delenv("CONVERSATIONS_TOKEN", raising=False)
    history = ConversationsChatMessageHistory("env session")

    history.add_messages(turn(1))
    seen_async = asyncio.run(_read_and_close(history))
    history.close()

    assert seen_async == turn(1)
    with Client(stack_url, owner=owner, token="") as c:
        assert c.get_conversation(history.conversation_id).message_count == 2


async def _read_and_close(history: ConversationsChatMessageHistory) -> list[BaseMessage]:
    try:
        return await history.aget_messages()
    finally:
        await history.aclose()


def test_the_async_methods_of_a_history_given_a_sync_client_use_its_twin(
    stack_url: str, owner: str
) -> None:
    with Client(stack_url, owner=owner, token="") as c:
        history = ConversationsChatMessageHistory("twin", client=c, user="alice")
        history.add_messages(turn(1))

        async def both() -> list[BaseMessage]:
            await history.aadd_messages(turn(2))
            try:
                return await history.aget_messages()
            finally:
                await history.aclose()

        assert asyncio.run(both()) == turn(1) + turn(2)
        assert list(c.list_conversations()) == []  # all of it is alice's


def test_a_long_history_reads_whole_in_pages_of_1000_and_its_latest_in_one_request(
    stack_url: str, owner: str, proxy: ApiProxy
) -> None:
    # Seeded once, directly (add_messages: 200 batch appends); read through the proxy (which
    # counts the requests) and directly (which times them), by the sync and the async methods.
    count = 10_000
    seed = [HumanMessage(f"m{i}") if i % 2 == 0 else AIMessage(f"m{i}") for i in range(count)]
    with (
        Client(stack_url, owner=owner, token="") as direct,
        Client(proxy.base_url, owner=owner, token="") as proxied,
    ):
        history = ConversationsChatMessageHistory("long", client=direct)
        small = ConversationsChatMessageHistory("short", client=direct)
        counted = ConversationsChatMessageHistory("long", client=proxied)
        start = time.perf_counter()
        history.add_messages(seed)
        seeded = time.perf_counter() - start
        small.add_messages([HumanMessage(f"m{i}") for i in range(10)])

        def timed(read: Callable[[], T]) -> tuple[T, float]:
            start = time.perf_counter()
            value = read()
            return value, time.perf_counter() - start

        everything, whole = timed(lambda: history.messages)
        everything_async, whole_async = timed(lambda: asyncio.run(_read_and_close(history)))
        latest, latest_time = timed(lambda: history.get_messages(limit=20))
        _, small_time = timed(lambda: small.get_messages(limit=20))
        assert len(counted.messages) == count
        pages = len(proxy.requests("GET"))
        counted.get_messages(limit=20)

    print(
        f"\n10 000 messages: seeded by add_messages in {seeded:.1f} s; messages in {whole:.2f} s,"
        f" aget_messages() in {whole_async:.2f} s ({pages} requests);"
        f" get_messages(limit=20) in {latest_time * 1000:.0f} ms"
        f" (on 10 messages: {small_time * 1000:.0f} ms)"
    )
    assert everything == seed
    assert everything_async == seed
    assert pages == 10
    assert latest == seed[-20:]
    last = proxy.requests("GET")[-1]
    assert len(proxy.requests("GET")) == pages + 1
    assert (last.query["orderBy"], last.query["pageSize"]) == (["order desc"], ["20"])
    assert latest_time < small_time * 5 + 0.5
