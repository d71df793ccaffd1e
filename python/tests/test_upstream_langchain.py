# Adapted from langchain-core 1.8.3 (the PyPI sdist langchain_core-1.8.3.tar.gz), files
# tests/unit_tests/chat_history/test_chat_history.py and tests/unit_tests/runnables/test_history.py.
# MIT License, Copyright (c) LangChain, Inc.
"""LangChain's own tests of chat message histories, run against ``ConversationsChatMessageHistory``
on the stack.

Source: langchain-core **1.8.3** (the pinned version), from its sdist on PyPI
(``langchain_core-1.8.3/tests/unit_tests/...``; the GitHub repository was too large to fetch here).
Each test keeps its upstream name and body; only the history is ours: where upstream makes an
``InMemoryChatMessageHistory()``, these make a ``ConversationsChatMessageHistory`` of the test's
own owner (``make_history``), so a session id such as ``"1"`` is a fresh conversation per test.

Changed (and why):

- ``chat_history/test_chat_history.py::test_in_memory_history_initialization``: upstream seeds
  the history with ``InMemoryChatMessageHistory(messages=...)``; ours has no such constructor
  argument (the history is the conversation), so the same messages are added with
  ``aadd_messages`` first. The rest is as upstream.
- ``test_add_message_implementation_only``, ``test_bulk_message_implementation_only``,
  ``test_async_interface``: upstream defines throwaway subclasses of ``BaseChatMessageHistory``
  over a list (``store``) to test the base class's ``add_message``/``add_messages``/async
  defaults; here the history is ours and ``store`` is read back as ``history.messages`` (ours
  overrides ``add_messages``/``aadd_messages``/``aget_messages``/``aclear``, which is what these
  calls then reach).
- ``runnables/test_history.py``: ``_get_get_session_history`` and the hand-written
  ``get_session_history`` functions return our history; ``assert store == {key:
  InMemoryChatMessageHistory(messages=[...])}`` compares each stored history's ``messages``
  instead (ours has no value equality: two objects over one conversation). In
  ``test_using_custom_config_specs``/``_async`` the ``user_id`` goes to ``user=`` (the
  ``X-On-Behalf-Of`` header), so the users' histories are apart in the service, not just in the
  dict. ``store`` got a type annotation (mypy --strict).

Left out (and why):

- ``test_chat_history_deprecated``: checks LangChain's own classes' docstrings, no backend.
- ``test_get_input_schema_input_dict``, ``test_get_output_schema``,
  ``test_get_input_schema_input_messages``: schema of ``RunnableWithMessageHistory`` only; the
  history factory is never called.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import (
    CallbackManagerForLLMRun,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.runnables.base import RunnableBinding, RunnableLambda
from langchain_core.runnables.config import RunnableConfig
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.runnables.utils import ConfigurableFieldSpec, Input, Output
from langchain_core.tracers import Run
from langchain_core.tracers.root_listeners import (
    AsyncListener,
    AsyncRootListenersTracer,
    RootListenersTracer,
)
from typing_extensions import override

from conversations_client import AsyncClient, Client
from conversations_client.langchain import ConversationsChatMessageHistory

# test_history.py is the compatibility suite for the deprecated `RunnableWithMessageHistory`.
pytestmark = pytest.mark.filterwarnings(
    "ignore:RunnableWithMessageHistory is deprecated. Use LangGraph's built-in "
    "persistence instead.:"
    "langchain_core._api.deprecation.LangChainDeprecationWarning"
)

MakeHistory = Callable[..., ConversationsChatMessageHistory]


@pytest.fixture
def make_history(client: Client) -> MakeHistory:
    """Our history in place of ``InMemoryChatMessageHistory()`` in a sync test: a session of the
    test's own owner, on the ``client`` fixture."""

    def make(session_id: str, *, user: str | None = None) -> ConversationsChatMessageHistory:
        return ConversationsChatMessageHistory(session_id, client=client, user=user)

    return make


@pytest.fixture
async def amake_history(client: Client, aclient: AsyncClient) -> MakeHistory:
    """The same in an async test: the async methods on the ``aclient`` fixture (the test's loop),
    the sync ones (``history.messages``) on ``client``."""

    def make(session_id: str, *, user: str | None = None) -> ConversationsChatMessageHistory:
        return ConversationsChatMessageHistory(
            session_id, client=client, async_client=aclient, user=user
        )

    return make


# --- chat_history/test_chat_history.py ----------------------------------------------------------


async def test_in_memory_history_initialization(amake_history: MakeHistory) -> None:
    messages = [HumanMessage(content="Hello")]
    history = amake_history("history")
    await history.aadd_messages(messages)  # upstream: InMemoryChatMessageHistory(messages=...)
    assert await history.aget_messages() == messages
    other_history = amake_history("other-history")
    await other_history.aadd_messages([HumanMessage(content="World")])
    assert history.messages == messages
    await history.aclear()
    assert history.messages == []
    assert other_history.messages == [HumanMessage(content="World")]


def test_add_message_implementation_only(make_history: MakeHistory) -> None:
    """Test implementation of add_message only."""
    chat_history = make_history("add-message")
    chat_history.add_message(HumanMessage(content="Hello"))
    store = chat_history.messages
    assert len(store) == 1
    assert store[0] == HumanMessage(content="Hello")
    chat_history.add_message(HumanMessage(content="World"))
    store = chat_history.messages
    assert len(store) == 2
    assert store[1] == HumanMessage(content="World")

    chat_history.add_messages(
        [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
    )
    store = chat_history.messages
    assert len(store) == 4
    assert store[2] == HumanMessage(content="Hello")
    assert store[3] == HumanMessage(content="World")


def test_bulk_message_implementation_only(make_history: MakeHistory) -> None:
    """Test that SampleChatHistory works as expected."""
    chat_history = make_history("bulk")
    chat_history.add_message(HumanMessage(content="Hello"))
    store = chat_history.messages
    assert len(store) == 1
    assert store[0] == HumanMessage(content="Hello")
    chat_history.add_message(HumanMessage(content="World"))
    store = chat_history.messages
    assert len(store) == 2
    assert store[1] == HumanMessage(content="World")

    chat_history.add_messages(
        [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
    )
    store = chat_history.messages
    assert len(store) == 4
    assert store[2] == HumanMessage(content="Hello")
    assert store[3] == HumanMessage(content="World")


async def test_async_interface(amake_history: MakeHistory) -> None:
    """Test async interface for BaseChatMessageHistory."""
    chat_history = amake_history("async-interface")
    await chat_history.aadd_messages(
        [
            HumanMessage(content="Hello"),
            HumanMessage(content="World"),
        ]
    )
    assert await chat_history.aget_messages() == [
        HumanMessage(content="Hello"),
        HumanMessage(content="World"),
    ]
    await chat_history.aadd_messages([HumanMessage(content="!")])
    assert await chat_history.aget_messages() == [
        HumanMessage(content="Hello"),
        HumanMessage(content="World"),
        HumanMessage(content="!"),
    ]
    await chat_history.aclear()
    assert await chat_history.aget_messages() == []


# --- runnables/test_history.py ------------------------------------------------------------------


def test_interfaces(make_history: MakeHistory) -> None:
    history = make_history("interfaces")
    history.add_message(SystemMessage(content="system"))
    history.add_message(HumanMessage(content="human 1"))
    history.add_message(AIMessage(content="ai"))
    assert str(history) == "System: system\nHuman: human 1\nAI: ai"


def _get_get_session_history(
    make_history: MakeHistory,
    *,
    store: dict[str, ConversationsChatMessageHistory] | None = None,
) -> Callable[..., ConversationsChatMessageHistory]:
    chat_history_store = store if store is not None else {}

    def get_session_history(session_id: str, **_kwargs: Any) -> ConversationsChatMessageHistory:
        if session_id not in chat_history_store:
            chat_history_store[session_id] = make_history(session_id)
        return chat_history_store[session_id]

    return get_session_history


def _stored(store: dict[Any, ConversationsChatMessageHistory]) -> dict[Any, list[BaseMessage]]:
    """``store`` as upstream compares it: each history's messages."""
    return {key: history.messages for key, history in store.items()}


def test_input_messages(make_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, str](
        lambda messages: (
            "you said: "
            + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
        )
    )
    store: dict[str, ConversationsChatMessageHistory] = {}
    get_session_history = _get_get_session_history(make_history, store=store)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {"configurable": {"session_id": "1"}}
    output = with_history.invoke([HumanMessage(content="hello")], config)
    assert output == "you said: hello"
    output = with_history.invoke([HumanMessage(content="good bye")], config)
    assert output == "you said: hello\ngood bye"
    output = [*with_history.stream([HumanMessage(content="hi again")], config)]
    assert output == ["you said: hello\ngood bye\nhi again"]
    assert _stored(store) == {
        "1": [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
            HumanMessage(content="good bye"),
            AIMessage(content="you said: hello\ngood bye"),
            HumanMessage(content="hi again"),
            AIMessage(content="you said: hello\ngood bye\nhi again"),
        ]
    }


async def test_input_messages_async(amake_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, str](
        lambda messages: (
            "you said: "
            + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
        )
    )
    store: dict[str, ConversationsChatMessageHistory] = {}
    get_session_history = _get_get_session_history(amake_history, store=store)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config = {"session_id": "1_async"}
    output = await with_history.ainvoke([HumanMessage(content="hello")], config)  # type: ignore[arg-type]
    assert output == "you said: hello"
    output = await with_history.ainvoke([HumanMessage(content="good bye")], config)  # type: ignore[arg-type]
    assert output == "you said: hello\ngood bye"
    output = [
        c
        async for c in with_history.astream([HumanMessage(content="hi again")], config)  # type: ignore[arg-type]
    ]
    assert output == ["you said: hello\ngood bye\nhi again"]
    assert _stored(store) == {
        "1_async": [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
            HumanMessage(content="good bye"),
            AIMessage(content="you said: hello\ngood bye"),
            HumanMessage(content="hi again"),
            AIMessage(content="you said: hello\ngood bye\nhi again"),
        ]
    }


def test_input_dict(make_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, str](
        lambda params: (
            "you said: "
            + "\n".join(str(m.content) for m in params["messages"] if isinstance(m, HumanMessage))
        )
    )
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(
        runnable, get_session_history, input_messages_key="messages"
    )
    config: RunnableConfig = {"configurable": {"session_id": "2"}}
    output = with_history.invoke({"messages": [HumanMessage(content="hello")]}, config)
    assert output == "you said: hello"
    output = with_history.invoke({"messages": [HumanMessage(content="good bye")]}, config)
    assert output == "you said: hello\ngood bye"


async def test_input_dict_async(amake_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, str](
        lambda params: (
            "you said: "
            + "\n".join(str(m.content) for m in params["messages"] if isinstance(m, HumanMessage))
        )
    )
    get_session_history = _get_get_session_history(amake_history)
    with_history = RunnableWithMessageHistory(
        runnable, get_session_history, input_messages_key="messages"
    )
    config: RunnableConfig = {"configurable": {"session_id": "2_async"}}
    output = await with_history.ainvoke({"messages": [HumanMessage(content="hello")]}, config)
    assert output == "you said: hello"
    output = await with_history.ainvoke({"messages": [HumanMessage(content="good bye")]}, config)
    assert output == "you said: hello\ngood bye"


def test_input_dict_with_history_key(make_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, str](
        lambda params: (
            "you said: "
            + "\n".join(
                [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                + [params["input"]]
            )
        )
    )
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "3"}}
    output = with_history.invoke({"input": "hello"}, config)
    assert output == "you said: hello"
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == "you said: hello\ngood bye"


async def test_input_dict_with_history_key_async(amake_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, str](
        lambda params: (
            "you said: "
            + "\n".join(
                [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                + [params["input"]]
            )
        )
    )
    get_session_history = _get_get_session_history(amake_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "3_async"}}
    output = await with_history.ainvoke({"input": "hello"}, config)
    assert output == "you said: hello"
    output = await with_history.ainvoke({"input": "good bye"}, config)
    assert output == "you said: hello\ngood bye"


def test_output_message(make_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, AIMessage](
        lambda params: AIMessage(
            content="you said: "
            + "\n".join(
                [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                + [params["input"]]
            )
        )
    )
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "4"}}
    output = with_history.invoke({"input": "hello"}, config)
    assert output == AIMessage(content="you said: hello")
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == AIMessage(content="you said: hello\ngood bye")


async def test_output_message_async(amake_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, AIMessage](
        lambda params: AIMessage(
            content="you said: "
            + "\n".join(
                [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                + [params["input"]]
            )
        )
    )
    get_session_history = _get_get_session_history(amake_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "4_async"}}
    output = await with_history.ainvoke({"input": "hello"}, config)
    assert output == AIMessage(content="you said: hello")
    output = await with_history.ainvoke({"input": "good bye"}, config)
    assert output == AIMessage(content="you said: hello\ngood bye")


class LengthChatModel(BaseChatModel):
    """A fake chat model that returns the length of the messages passed in."""

    @override
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Top Level call."""
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content=str(len(messages))))]
        )

    @property
    def _llm_type(self) -> str:
        return "length-fake-chat-model"


def test_input_messages_output_message(make_history: MakeHistory) -> None:
    runnable = LengthChatModel()
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
    )
    config: RunnableConfig = {"configurable": {"session_id": "5"}}
    output = with_history.invoke([HumanMessage(content="hi")], config)
    assert output.content == "1"
    output = with_history.invoke([HumanMessage(content="hi")], config)
    assert output.content == "3"


async def test_input_messages_output_message_async(amake_history: MakeHistory) -> None:
    runnable = LengthChatModel()
    get_session_history = _get_get_session_history(amake_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
    )
    config: RunnableConfig = {"configurable": {"session_id": "5_async"}}
    output = await with_history.ainvoke([HumanMessage(content="hi")], config)
    assert output.content == "1"
    output = await with_history.ainvoke([HumanMessage(content="hi")], config)
    assert output.content == "3"


def test_output_messages(make_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, list[AIMessage]](
        lambda params: [
            AIMessage(
                content="you said: "
                + "\n".join(
                    [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                    + [params["input"]]
                )
            )
        ]
    )
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "6"}}
    output = with_history.invoke({"input": "hello"}, config)
    assert output == [AIMessage(content="you said: hello")]
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == [AIMessage(content="you said: hello\ngood bye")]


async def test_output_messages_async(amake_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, list[AIMessage]](
        lambda params: [
            AIMessage(
                content="you said: "
                + "\n".join(
                    [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                    + [params["input"]]
                )
            )
        ]
    )
    get_session_history = _get_get_session_history(amake_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
    )
    config: RunnableConfig = {"configurable": {"session_id": "6_async"}}
    output = await with_history.ainvoke({"input": "hello"}, config)
    assert output == [AIMessage(content="you said: hello")]
    output = await with_history.ainvoke({"input": "good bye"}, config)
    assert output == [AIMessage(content="you said: hello\ngood bye")]


def test_output_dict(make_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, dict[str, list[AIMessage]]](
        lambda params: {
            "output": [
                AIMessage(
                    content="you said: "
                    + "\n".join(
                        [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                        + [params["input"]]
                    )
                )
            ]
        }
    )
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
        output_messages_key="output",
    )
    config: RunnableConfig = {"configurable": {"session_id": "7"}}
    output = with_history.invoke({"input": "hello"}, config)
    assert output == {"output": [AIMessage(content="you said: hello")]}
    output = with_history.invoke({"input": "good bye"}, config)
    assert output == {"output": [AIMessage(content="you said: hello\ngood bye")]}


async def test_output_dict_async(amake_history: MakeHistory) -> None:
    runnable = RunnableLambda[Any, dict[str, list[AIMessage]]](
        lambda params: {
            "output": [
                AIMessage(
                    content="you said: "
                    + "\n".join(
                        [str(m.content) for m in params["history"] if isinstance(m, HumanMessage)]
                        + [params["input"]]
                    )
                )
            ]
        }
    )
    get_session_history = _get_get_session_history(amake_history)
    with_history = RunnableWithMessageHistory(
        runnable,
        get_session_history,
        input_messages_key="input",
        history_messages_key="history",
        output_messages_key="output",
    )
    config: RunnableConfig = {"configurable": {"session_id": "7_async"}}
    output = await with_history.ainvoke({"input": "hello"}, config)
    assert output == {"output": [AIMessage(content="you said: hello")]}
    output = await with_history.ainvoke({"input": "good bye"}, config)
    assert output == {"output": [AIMessage(content="you said: hello\ngood bye")]}


def test_using_custom_config_specs(make_history: MakeHistory) -> None:
    """Test that we can configure which keys should be passed to the session factory."""

    def _fake_llm(params: dict[str, Any]) -> list[BaseMessage]:
        messages = params["messages"]
        return [
            AIMessage(
                content="you said: "
                + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
            )
        ]

    runnable = RunnableLambda(_fake_llm)
    store: dict[tuple[str, str], ConversationsChatMessageHistory] = {}

    def get_session_history(user_id: str, conversation_id: str) -> ConversationsChatMessageHistory:
        if (user_id, conversation_id) not in store:
            store[user_id, conversation_id] = make_history(conversation_id, user=user_id)
        return store[user_id, conversation_id]

    with_message_history = RunnableWithMessageHistory(
        runnable,
        get_session_history=get_session_history,
        input_messages_key="messages",
        history_messages_key="history",
        history_factory_config=[
            ConfigurableFieldSpec(
                id="user_id",
                annotation=str,
                name="User ID",
                description="Unique identifier for the user.",
                default="",
                is_shared=True,
            ),
            ConfigurableFieldSpec(
                id="conversation_id",
                annotation=str,
                name="Conversation ID",
                description="Unique identifier for the conversation.",
                default=None,
                is_shared=True,
            ),
        ],
    )
    result = with_message_history.invoke(
        {
            "messages": [HumanMessage(content="hello")],
        },
        {"configurable": {"user_id": "user1", "conversation_id": "1"}},
    )
    assert result == [
        AIMessage(content="you said: hello"),
    ]
    assert _stored(store) == {
        ("user1", "1"): [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
        ]
    }

    result = with_message_history.invoke(
        {
            "messages": [HumanMessage(content="goodbye")],
        },
        {"configurable": {"user_id": "user1", "conversation_id": "1"}},
    )
    assert result == [
        AIMessage(content="you said: goodbye"),
    ]
    assert _stored(store) == {
        ("user1", "1"): [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
            HumanMessage(content="goodbye"),
            AIMessage(content="you said: goodbye"),
        ]
    }

    result = with_message_history.invoke(
        {
            "messages": [HumanMessage(content="meow")],
        },
        {"configurable": {"user_id": "user2", "conversation_id": "1"}},
    )
    assert result == [
        AIMessage(content="you said: meow"),
    ]
    assert _stored(store) == {
        ("user1", "1"): [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
            HumanMessage(content="goodbye"),
            AIMessage(content="you said: goodbye"),
        ],
        ("user2", "1"): [
            HumanMessage(content="meow"),
            AIMessage(content="you said: meow"),
        ],
    }


async def test_using_custom_config_specs_async(amake_history: MakeHistory) -> None:
    """Test that we can configure which keys should be passed to the session factory."""

    def _fake_llm(params: dict[str, Any]) -> list[BaseMessage]:
        messages = params["messages"]
        return [
            AIMessage(
                content="you said: "
                + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
            )
        ]

    runnable = RunnableLambda(_fake_llm)
    store: dict[tuple[str, str], ConversationsChatMessageHistory] = {}

    def get_session_history(user_id: str, conversation_id: str) -> ConversationsChatMessageHistory:
        if (user_id, conversation_id) not in store:
            store[user_id, conversation_id] = amake_history(conversation_id, user=user_id)
        return store[user_id, conversation_id]

    with_message_history = RunnableWithMessageHistory(
        runnable,
        get_session_history=get_session_history,
        input_messages_key="messages",
        history_messages_key="history",
        history_factory_config=[
            ConfigurableFieldSpec(
                id="user_id",
                annotation=str,
                name="User ID",
                description="Unique identifier for the user.",
                default="",
                is_shared=True,
            ),
            ConfigurableFieldSpec(
                id="conversation_id",
                annotation=str,
                name="Conversation ID",
                description="Unique identifier for the conversation.",
                default=None,
                is_shared=True,
            ),
        ],
    )
    result = await with_message_history.ainvoke(
        {
            "messages": [HumanMessage(content="hello")],
        },
        {"configurable": {"user_id": "user1_async", "conversation_id": "1_async"}},
    )
    assert result == [
        AIMessage(content="you said: hello"),
    ]
    assert _stored(store) == {
        ("user1_async", "1_async"): [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
        ]
    }

    result = await with_message_history.ainvoke(
        {
            "messages": [HumanMessage(content="goodbye")],
        },
        {"configurable": {"user_id": "user1_async", "conversation_id": "1_async"}},
    )
    assert result == [
        AIMessage(content="you said: goodbye"),
    ]
    assert _stored(store) == {
        ("user1_async", "1_async"): [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
            HumanMessage(content="goodbye"),
            AIMessage(content="you said: goodbye"),
        ]
    }

    result = await with_message_history.ainvoke(
        {
            "messages": [HumanMessage(content="meow")],
        },
        {"configurable": {"user_id": "user2_async", "conversation_id": "1_async"}},
    )
    assert result == [
        AIMessage(content="you said: meow"),
    ]
    assert _stored(store) == {
        ("user1_async", "1_async"): [
            HumanMessage(content="hello"),
            AIMessage(content="you said: hello"),
            HumanMessage(content="goodbye"),
            AIMessage(content="you said: goodbye"),
        ],
        ("user2_async", "1_async"): [
            HumanMessage(content="meow"),
            AIMessage(content="you said: meow"),
        ],
    }


def test_ignore_session_id(make_history: MakeHistory) -> None:
    """Test without config."""

    def _fake_llm(messages: list[BaseMessage]) -> list[BaseMessage]:
        return [
            AIMessage(
                content="you said: "
                + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
            )
        ]

    runnable = RunnableLambda(_fake_llm)
    history = make_history("ignore-session-id")
    with_message_history = RunnableWithMessageHistory(runnable, lambda: history)
    _ = with_message_history.invoke("hello")
    _ = with_message_history.invoke("hello again")
    assert len(history.messages) == 4


class _RunnableLambdaWithRaiseError(RunnableLambda[Input, Output]):
    def with_listeners(
        self,
        *,
        on_start: Callable[[Run], None] | Callable[[Run, RunnableConfig], None] | None = None,
        on_end: Callable[[Run], None] | Callable[[Run, RunnableConfig], None] | None = None,
        on_error: Callable[[Run], None] | Callable[[Run, RunnableConfig], None] | None = None,
    ) -> Runnable[Input, Output]:
        def create_tracer(config: RunnableConfig) -> RunnableConfig:
            tracer = RootListenersTracer(
                config=config,
                on_start=on_start,
                on_end=on_end,
                on_error=on_error,
            )
            tracer.raise_error = True
            return {
                "callbacks": [tracer],
            }

        return RunnableBinding(
            bound=self,
            config_factories=[create_tracer],
        )

    def with_alisteners(
        self,
        *,
        on_start: AsyncListener | None = None,
        on_end: AsyncListener | None = None,
        on_error: AsyncListener | None = None,
    ) -> Runnable[Input, Output]:
        def create_tracer(config: RunnableConfig) -> RunnableConfig:
            tracer = AsyncRootListenersTracer(
                config=config,
                on_start=on_start,
                on_end=on_end,
                on_error=on_error,
            )
            tracer.raise_error = True
            return {
                "callbacks": [tracer],
            }

        return RunnableBinding(
            bound=self,
            config_factories=[create_tracer],
        )


def test_get_output_messages_no_value_error(make_history: MakeHistory) -> None:
    runnable = _RunnableLambdaWithRaiseError[Any, str](
        lambda messages: (
            "you said: "
            + "\n".join(str(m.content) for m in messages if isinstance(m, HumanMessage))
        )
    )
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)
    config: RunnableConfig = {
        "configurable": {"session_id": "1", "message_history": get_session_history("1")}
    }
    may_catch_value_error = None
    try:
        with_history.bound.invoke([HumanMessage(content="hello")], config)
    except ValueError as e:
        may_catch_value_error = e
    assert may_catch_value_error is None


def test_get_output_messages_with_value_error(make_history: MakeHistory) -> None:
    illegal_bool_message = False
    runnable = _RunnableLambdaWithRaiseError[Any, bool](lambda _: illegal_bool_message)
    get_session_history = _get_get_session_history(make_history)
    with_history = RunnableWithMessageHistory(runnable, get_session_history)  # type: ignore[arg-type]
    config: RunnableConfig = {
        "configurable": {"session_id": "1", "message_history": get_session_history("1")}
    }

    with pytest.raises(
        ValueError,
        match=re.escape(
            "Expected str, BaseMessage, list[BaseMessage], or tuple[BaseMessage]."
            f" Got {illegal_bool_message}."
        ),
    ):
        with_history.bound.invoke([HumanMessage(content="hello")], config)

    illegal_int_message = 123
    runnable2 = _RunnableLambdaWithRaiseError[Any, int](lambda _: illegal_int_message)
    with_history = RunnableWithMessageHistory(runnable2, get_session_history)  # type: ignore[arg-type]

    with pytest.raises(
        ValueError,
        match=re.escape(
            "Expected str, BaseMessage, list[BaseMessage], or tuple[BaseMessage]."
            f" Got {illegal_int_message}."
        ),
    ):
        with_history.bound.invoke([HumanMessage(content="hello")], config)
