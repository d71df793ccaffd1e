"""LangChain's chat message history on the Conversations API (issue 25, the ``[langchain]`` extra).

.. code-block:: python

    from conversations_client import AsyncClient, Client
    from conversations_client.langchain import ConversationsChatMessageHistory

    history = ConversationsChatMessageHistory("user_123_session", client=Client(), user="alice")
    history.add_messages([HumanMessage("Hi"), AIMessage("Hello!")])  # one batch append
    history.messages  # [HumanMessage("Hi"), AIMessage("Hello!")]

:class:`ConversationsChatMessageHistory` is a ``BaseChatMessageHistory`` (langchain-core 1.8) as
the backends beside it in LangChain are (``InMemoryChatMessageHistory``, the DynamoDB, Redis, SQL
and file histories): ``messages`` is every message, oldest first, and ``[]`` for a conversation
that is missing or empty (never an error); ``add_messages`` appends them in order; ``clear``
removes every message and leaves the id usable. Each method is written twice, sync (a
:class:`~conversations_client.Client`) and async (an :class:`~conversations_client.AsyncClient`).

The session id maps to a conversation id through :mod:`conversations_client.ids` (an id that
fits passes through unchanged), and the conversation is created, with the session id in its
``metadata``, by the first write that finds it missing. ``user`` is the end user the history
belongs to: every call is made with ``X-On-Behalf-Of: user`` (the client's ``acting_for``).

Messages map one to one (:func:`message_to_api` and :func:`message_from_api`, one function per
direction): a message's class goes to the contract's ``type``, its text to ``content``, an AI
message's ``tool_calls`` to ``toolCalls`` and a tool message's ``tool_call_id`` to ``toolCallId``,
so that other clients (the CLI, ``view=FULL``) read the history as a conversation; everything
else LangChain keeps on a message (its class when it is not the type's usual one, non-text
content blocks, ``additional_kwargs``, ``response_metadata``, ``id``, ``name``,
``usage_metadata``, ``artifact``…) is kept in the message's ``metadata`` under
:data:`METADATA_KEY`, so that every message comes back equal to the one added
(``messages_to_dict`` of both is the same). ``docs/frameworks.md`` has the table.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Sequence
from itertools import islice
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from ._client import AsyncClient, Client
from .errors import AlreadyExists, ConversationsError, NotFound, TransportError
from .ids import conversation_id_for, session_metadata
from .types import Message, MessageInput, MessageType, ToolCall

__all__ = [
    "AGENTS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "METADATA_KEY",
    "ConversationsChatMessageHistory",
    "message_from_api",
    "message_to_api",
]

METADATA_KEY = "langchain"
"""The key of a message's ``metadata`` that keeps what has no field of its own in the contract."""

AGENTS = ["langchain"]
"""``agents`` of a conversation that a history creates."""

MAX_BATCH_MESSAGES = 50
"""The most messages of one batch append (the contract's limit)."""
MAX_BATCH_BYTES = 256 * 1024 - 1024
"""The largest body this history sends in one batch append: the contract's 256 KiB, less room
for the JSON around the messages."""

_PAGE = 1000
"""The largest page of list messages: a whole history is read 1000 messages a request."""

# The contract's limits on one message (shared/API.md, "Resource: Message").
_MAX_CONTENT_BYTES = 64 * 1024
_MAX_OBJECT_BYTES = 16 * 1024
_MAX_TOOL_CALLS = 32
_CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

# LangChain's message classes (``message_to_dict``'s ``type``) → the contract's types.
_TYPE_OF: dict[str, MessageType] = {
    "human": "USER",
    "HumanMessageChunk": "USER",
    "ai": "AGENT",
    "AIMessageChunk": "AGENT",
    "system": "SYSTEM",
    "SystemMessageChunk": "SYSTEM",
    "tool": "TOOL",
    "ToolMessageChunk": "TOOL",
    # A function's result, without a call id (the tool calls' predecessor).
    "function": "TOOL",
    "FunctionMessageChunk": "TOOL",
    # An instruction to drop a message (LangGraph's reducer), stored as the other histories
    # store it: as a message.
    "remove": "SYSTEM",
}
# A ChatMessage's role → the contract's type; any other role (another speaker: "critic") is AGENT.
_ROLE_OF: dict[str, MessageType] = {
    "user": "USER",
    "human": "USER",
    "assistant": "AGENT",
    "ai": "AGENT",
    "model": "AGENT",
    "system": "SYSTEM",
    "developer": "SYSTEM",
    "tool": "TOOL",
    "function": "TOOL",
}
# The class a message of each type is read as when its metadata names none (written so, or by
# another client).
_CLASS_OF: dict[str, str] = {"USER": "human", "AGENT": "ai", "SYSTEM": "system", "TOOL": "tool"}
_CALLERS = {"ai", "AIMessageChunk"}
"""Classes whose ``tool_calls`` are the contract's ``toolCalls``."""
_RESULTS = {"tool", "ToolMessageChunk"}
"""Classes whose ``tool_call_id`` is the contract's ``toolCallId``."""
# Fields left out of the metadata when they hold their default: a message is rebuilt with them.
_DEFAULTS: dict[str, Any] = {
    "additional_kwargs": {},
    "response_metadata": {},
    "name": None,
    "id": None,
    "tool_calls": [],
    "invalid_tool_calls": [],
    "usage_metadata": None,
    "artifact": None,
    "status": "success",
    "tool_call_chunks": [],
    "chunk_position": None,
}
_REMOVE_ALL = "__remove_all__"


def _compact(value: Any) -> bytes:
    """``value`` as the client sends it (compact JSON, UTF-8): what the contract's byte limits
    count."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _normalised(message: BaseMessage) -> dict[str, Any]:
    """``message_to_dict(message)`` as it comes back from JSON: what the service can keep."""
    try:
        return dict(json.loads(json.dumps(message_to_dict(message), allow_nan=False)))
    except (TypeError, ValueError) as e:
        raise ValueError(
            f"a {type(message).__name__} that is not JSON cannot be stored: {e}"
        ) from e


def _text(content: Any) -> str:
    """The text of a message's content, as ``BaseMessage.text`` reads it: a string, or the text
    blocks of a list joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        block if isinstance(block, str) else block["text"]
        for block in content
        if isinstance(block, str)
        or (
            isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
    )


def _readable(lc_type: str, data: dict[str, Any], calls_native: bool) -> str:
    """The ``content`` a message is stored with: its text, or, where it has none and the
    contract wants some, a short note of what it holds (``[image]``, ``[calls get_weather]``,
    ``[remove message m-1]``)."""
    text = _text(data.get("content"))
    if text or calls_native:
        return text
    content = data.get("content")
    if isinstance(content, list) and content:
        kinds = [
            str(block.get("type", "block")) if isinstance(block, dict) else "text"
            for block in content
        ]
        return f"[{', '.join(kinds)}]"
    if lc_type == "remove":
        target = data.get("id")
        return "[remove all messages]" if target == _REMOVE_ALL else f"[remove message {target}]"
    calls = data.get("tool_calls") or data.get("tool_call_chunks") or []
    names = [str(c.get("name")) for c in calls if isinstance(c, dict)]
    if names:
        return f"[calls {', '.join(names)}]"
    if data.get("invalid_tool_calls"):
        return "[invalid tool calls]"
    return "[empty]"


def _native_calls(lc_type: str, data: dict[str, Any]) -> list[ToolCall] | None:
    """An AI message's ``tool_calls`` as the contract's ``toolCalls``, when every one fits its
    rules (ids and names of their characters, arguments an object of at most 16 KiB, ids unique,
    1–32 of them); ``None`` otherwise (they stay in the metadata)."""
    calls = data.get("tool_calls")
    if lc_type not in _CALLERS or not isinstance(calls, list) or not calls:
        return None
    if len(calls) > _MAX_TOOL_CALLS:
        return None
    out: list[ToolCall] = []
    for call in calls:
        if not isinstance(call, dict) or set(call) != {"name", "args", "id", "type"}:
            return None
        name, args, call_id = call["name"], call["args"], call["id"]
        if call["type"] != "tool_call" or not isinstance(name, str) or not isinstance(args, dict):
            return None
        if not isinstance(call_id, str) or not _CALL_ID.match(call_id):
            return None
        if not _TOOL_NAME.match(name) or len(_compact(args)) > _MAX_OBJECT_BYTES:
            return None
        out.append({"id": call_id, "name": name, "arguments": args})
    if len({c["id"] for c in out}) != len(out):
        return None
    return out


def _type_of(lc_type: str, data: dict[str, Any]) -> MessageType:
    if lc_type in ("chat", "ChatMessageChunk"):
        return _ROLE_OF.get(str(data.get("role", "")).lower(), "AGENT")
    kind = _TYPE_OF.get(lc_type)
    if kind is None:
        raise ValueError(f"a message of type {lc_type!r} has no mapping")
    return kind


def _encode(lc_type: str, data: dict[str, Any], *, whole: bool) -> MessageInput:
    """The contract's message for a normalised message; ``whole`` keeps every field in the
    metadata, not only those without a native form."""
    kind = _type_of(lc_type, data)
    calls = _native_calls(lc_type, data)
    content = _readable(lc_type, data, calls is not None)
    call_id = data.get("tool_call_id")
    native_id = (
        call_id
        if lc_type in _RESULTS and isinstance(call_id, str) and _CALL_ID.match(call_id)
        else None
    )
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if whole:
            kept[key] = value
        elif key == "type":
            if value != _CLASS_OF[kind]:
                kept[key] = value
        elif key == "content":
            if value != content:
                kept[key] = value
        elif not (
            (key == "tool_calls" and calls is not None)
            or (key == "tool_call_id" and native_id is not None)
            or (key in _DEFAULTS and value == _DEFAULTS[key])
        ):
            kept[key] = value
    out: MessageInput = {"type": kind, "content": content}
    if calls is not None:
        out["toolCalls"] = calls
    if native_id is not None:
        out["toolCallId"] = native_id
    if kept:
        out["metadata"] = {METADATA_KEY: kept}
    return out


def message_to_api(message: BaseMessage) -> MessageInput:
    """A LangChain message as the contract's message (the body of an append).

    ``type``: ``HumanMessage`` → ``USER``, ``AIMessage`` → ``AGENT``, ``SystemMessage`` →
    ``SYSTEM``, ``ToolMessage`` → ``TOOL``, and their chunks alike; a ``FunctionMessage`` →
    ``TOOL`` (without ``toolCallId``: it has no call id); a ``ChatMessage`` by its role (``user``
    → ``USER``, ``assistant`` → ``AGENT``, ``system``/``developer`` → ``SYSTEM``,
    ``tool``/``function`` → ``TOOL``, any other role → ``AGENT``); a ``RemoveMessage`` →
    ``SYSTEM`` (``[remove message <id>]``), stored as every LangChain history stores it.
    ``content``: the text (a list's text blocks joined; ``[image]``-like notes where there is
    none; empty on an AI message that calls tools). ``toolCalls``/``toolCallId`` where they fit
    the contract's rules. Everything else in ``metadata[METADATA_KEY]``; none when nothing else
    is set.

    Raises ``ValueError`` for a message the contract cannot hold: not JSON, content over 64
    KiB, or more than 16 KiB of metadata.
    """
    data = _normalised(message)
    lc_type = str(data["type"])
    fields = dict(data["data"])
    out = _encode(lc_type, fields, whole=False)
    if _rebuilt(out) != data:
        # A message whose defaults or native fields do not rebuild it exactly keeps it whole.
        out = _encode(lc_type, fields, whole=True)
        if _rebuilt(out) != data:
            raise ValueError(f"a {type(message).__name__} cannot be stored losslessly")
    if len(out["content"].encode("utf-8")) > _MAX_CONTENT_BYTES:
        raise ValueError(
            f"a {type(message).__name__}'s text is over the 64 KiB a message's content may hold"
        )
    if "metadata" in out and len(_compact(out["metadata"])) > _MAX_OBJECT_BYTES:
        raise ValueError(
            f"a {type(message).__name__} holds more than the 16 KiB of metadata a message may "
            "keep (its content blocks, additional_kwargs, response_metadata…)"
        )
    return out


def _fields_of(message: MessageInput | Message) -> tuple[str, str, list[ToolCall], str | None, Any]:
    if isinstance(message, Message):
        return (
            message.type or "USER",
            message.content or "",
            message.tool_calls or [],
            message.tool_call_id,
            message.metadata or {},
        )
    return (
        message["type"],
        message.get("content", ""),
        message.get("toolCalls", []),
        message.get("toolCallId"),
        message.get("metadata", {}),
    )


def _decode(message: MessageInput | Message, *, own: bool = True) -> dict[str, Any]:
    """``message_to_dict`` of the LangChain message that a stored message is (``own``: with what
    its metadata keeps)."""
    kind, content, calls, call_id, metadata = _fields_of(message)
    stored = metadata.get(METADATA_KEY) if own and isinstance(metadata, dict) else None
    data: dict[str, Any] = dict(stored) if isinstance(stored, dict) else {}
    lc_type = str(data.get("type") or _CLASS_OF.get(kind, "human"))
    data["type"] = lc_type
    if calls and "tool_calls" not in data and lc_type in _CALLERS:
        data["tool_calls"] = [
            {"name": c["name"], "args": c.get("arguments", {}), "id": c["id"], "type": "tool_call"}
            for c in calls
        ]
    if lc_type in _RESULTS and "tool_call_id" not in data:
        data["tool_call_id"] = call_id or ""
    # The content kept in the metadata, unless another client edited the message's own content
    # since (a redaction wins).
    if "content" not in data or content != _readable(lc_type, data, bool(calls)):
        data["content"] = content
    return {"type": lc_type, "data": data}


def _rebuilt(message: MessageInput) -> dict[str, Any]:
    """What reading ``message`` back gives, normalised as :func:`_normalised` does."""
    try:
        return _normalised(messages_from_dict([_decode(message)])[0])
    except (ValueError, TypeError, KeyError):
        return {}


def message_from_api(message: Message) -> BaseMessage:
    """A stored message as the LangChain message it was added as (the inverse of
    :func:`message_to_api`).

    A message written by another client (no ``metadata[METADATA_KEY]``) is read by its type:
    ``USER`` → ``HumanMessage``, ``AGENT`` → ``AIMessage`` (with its ``toolCalls`` as
    ``tool_calls``), ``SYSTEM`` → ``SystemMessage``, ``TOOL`` → ``ToolMessage`` (``toolCallId``,
    or ``""``); its other metadata is not carried over. A message whose content another client
    edited (a redaction) comes back with that content. Metadata that LangChain cannot read
    (edited by hand) is ignored: the message is read as another client's.
    """
    try:
        return messages_from_dict([_decode(message)])[0]
    except (ValueError, TypeError, KeyError):
        return messages_from_dict([_decode(message, own=False)])[0]


def _batches(bodies: Sequence[MessageInput]) -> list[list[MessageInput]]:
    """``bodies`` cut, in order, into batches of at most :data:`MAX_BATCH_MESSAGES` messages and
    :data:`MAX_BATCH_BYTES` of JSON."""
    out: list[list[MessageInput]] = []
    current: list[MessageInput] = []
    size = 0
    for body in bodies:
        length = len(_compact(body)) + 1
        if length > MAX_BATCH_BYTES:
            raise ValueError("a message is larger than one batch append may carry (256 KiB)")
        if current and (len(current) == MAX_BATCH_MESSAGES or size + length > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(body)
        size += length
    if current:
        out.append(current)
    return out


def _note_partial(error: BaseException, stored: int, batch: int, total: int) -> None:
    """Says on ``error`` what of an ``add_messages`` call was stored before it."""
    unsure = (
        " may or may not have been stored (no answer)"
        if isinstance(error, TransportError)
        else " were not stored"
    )
    error.add_note(
        f"add_messages: the first {stored} of {total} messages were stored (in earlier batches);"
        f" messages {stored}–{stored + batch - 1}{unsure}; the rest were not sent"
    )


class ConversationsChatMessageHistory(BaseChatMessageHistory):
    """Chat message history stored in a conversation of the Conversations API.

    Args:
        conversation_id: the session's id, any string: mapped to a conversation id by
            :func:`conversations_client.ids.conversation_id_for` (an id that already fits the
            contract is used as it is).
        client: the sync client (a ``Client``); by default one like ``async_client`` or, without
            it, one configured from the environment (``CONVERSATIONS_URL``…).
        async_client: the async client (an ``AsyncClient``); by default one like ``client``, or
            one from the environment.
        user: the end user the history belongs to, sent as ``X-On-Behalf-Of`` (isolation per
            user); ``None``: the clients' own identity.
        window: when given, ``messages`` and ``aget_messages()`` return only the latest
            ``window`` messages (one request), as ``get_messages(limit=window)`` does. By
            default they return the whole history, as LangChain expects.

    The clients given stay open; those the history made are closed by :meth:`close` and
    :meth:`aclose`.
    """

    def __init__(
        self,
        conversation_id: str,
        *,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        user: str | None = None,
        window: int | None = None,
    ) -> None:
        super().__init__()
        self.session_id = conversation_id
        """The id given: the framework's session id."""
        self.conversation_id = conversation_id_for(conversation_id)
        """The conversation's id (``session_id`` mapped)."""
        self.user = user
        self.window = window
        self._given = client
        self._given_async = async_client
        self._client: Client | None = None
        self._async_client: AsyncClient | None = None
        self._made: list[Client | AsyncClient] = []
        self._lock = threading.Lock()

    # The clients.

    def _sync(self) -> Client:
        with self._lock:
            if self._client is None:
                base = self._given
                if base is None:
                    base = Client(**_settings(self._given_async))
                    self._made.append(base)
                self._client = base.acting_for(self.user) if self.user is not None else base
            return self._client

    def _async(self) -> AsyncClient:
        with self._lock:
            if self._async_client is None:
                base = self._given_async
                if base is None:
                    base = AsyncClient(**_settings(self._given))
                    self._made.append(base)
                self._async_client = base.acting_for(self.user) if self.user is not None else base
            return self._async_client

    def close(self) -> None:
        """Closes the sync client this history made (the clients given stay open)."""
        for made in [m for m in self._made if isinstance(m, Client)]:
            made.close()

    async def aclose(self) -> None:
        """Closes every client this history made."""
        self.close()
        for made in [m for m in self._made if isinstance(m, AsyncClient)]:
            await made.aclose()

    # Reading.

    @property
    def messages(self) -> list[BaseMessage]:
        """Every message, oldest first (the latest ``window`` when the history has one); ``[]``
        when the conversation is missing or empty. Reads 1000 messages a request."""
        return self.get_messages()

    @messages.setter
    def messages(self, messages: list[BaseMessage]) -> None:
        raise NotImplementedError(
            "Direct assignment to 'messages' is not allowed. Use the 'add_messages' instead."
        )

    def get_messages(self, *, limit: int | None = None) -> list[BaseMessage]:
        """The messages, oldest first; with ``limit`` (else the history's ``window``) only the
        latest ``limit`` of them, read newest first (one request up to 1000). ``[]`` when the
        conversation is missing or empty."""
        limit = self.window if limit is None else limit
        client = self._sync()
        try:
            if limit is None:
                stored = list(client.list_messages(self.conversation_id, page_size=_PAGE))
            elif limit <= 0:
                return []
            else:
                newest = client.list_messages(
                    self.conversation_id, order_by="order desc", page_size=min(limit, _PAGE)
                )
                stored = list(islice(newest, limit))[::-1]
        except NotFound:
            return []
        return [message_from_api(m) for m in stored]

    async def aget_messages(self, *, limit: int | None = None) -> list[BaseMessage]:
        """As :meth:`get_messages`, on the async client."""
        limit = self.window if limit is None else limit
        client = self._async()
        try:
            if limit is None:
                stored = [
                    m async for m in client.list_messages(self.conversation_id, page_size=_PAGE)
                ]
            elif limit <= 0:
                return []
            else:
                stored = []
                async for m in client.list_messages(
                    self.conversation_id, order_by="order desc", page_size=min(limit, _PAGE)
                ):
                    stored.append(m)
                    if len(stored) == limit:
                        break
                stored.reverse()
        except NotFound:
            return []
        return [message_from_api(m) for m in stored]

    # Writing.

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Appends the messages, in order, with one batch append (one idempotency key, kept by
        its retries): all or none, in consecutive orders. More than 50 messages or 256 KiB are
        split into consecutive batches, each all or none; an error in one of them leaves the
        earlier ones stored (the exception's note says how many), and another writer's messages
        may fall between two batches. Creates the conversation when it is missing."""
        bodies = [message_to_api(m) for m in messages]
        client = self._sync()
        stored = 0
        for batch in _batches(bodies):
            key = uuid.uuid4()
            try:
                try:
                    client.batch_append_messages(self.conversation_id, batch, request_id=key)
                except NotFound:
                    self._create(client)
                    # The 404 wrote nothing: the same key is still the batch's own.
                    client.batch_append_messages(self.conversation_id, batch, request_id=key)
            except ConversationsError as e:
                if stored:
                    _note_partial(e, stored, len(batch), len(bodies))
                raise
            stored += len(batch)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """As :meth:`add_messages`, on the async client."""
        bodies = [message_to_api(m) for m in messages]
        client = self._async()
        stored = 0
        for batch in _batches(bodies):
            key = uuid.uuid4()
            try:
                try:
                    await client.batch_append_messages(self.conversation_id, batch, request_id=key)
                except NotFound:
                    await self._acreate(client)
                    await client.batch_append_messages(self.conversation_id, batch, request_id=key)
            except ConversationsError as e:
                if stored:
                    _note_partial(e, stored, len(batch), len(bodies))
                raise
            stored += len(batch)

    def _create(self, client: Client) -> None:
        # AlreadyExists: another worker created it first (or it is soft-deleted: the append
        # that follows says so with its 404).
        with contextlib.suppress(AlreadyExists):
            client.create_conversation(
                {"agents": list(AGENTS), "metadata": session_metadata(self.session_id)},
                conversation_id=self.conversation_id,
                fields="name",
            )

    async def _acreate(self, client: AsyncClient) -> None:
        with contextlib.suppress(AlreadyExists):
            await client.create_conversation(
                {"agents": list(AGENTS), "metadata": session_metadata(self.session_id)},
                conversation_id=self.conversation_id,
                fields="name",
            )

    def clear(self) -> None:
        """Removes every message (one clear through the newest message's order, after reading
        that order; retried safely); the conversation stays, and later messages are appended
        after the cleared ones. Nothing to do, and no error, when it is missing or empty."""
        client = self._sync()
        try:
            newest = client.list_messages_page(
                self.conversation_id, order_by="order desc", page_size=1, fields="order"
            )
            if newest.items and newest.items[0].order is not None:
                client.clear_messages(
                    self.conversation_id, through_order=newest.items[0].order, fields="name"
                )
        except NotFound:
            return

    async def aclear(self) -> None:
        """As :meth:`clear`, on the async client."""
        client = self._async()
        try:
            newest = await client.list_messages_page(
                self.conversation_id, order_by="order desc", page_size=1, fields="order"
            )
            if newest.items and newest.items[0].order is not None:
                await client.clear_messages(
                    self.conversation_id, through_order=newest.items[0].order, fields="name"
                )
        except NotFound:
            return


def _settings(other: Client | AsyncClient | None) -> dict[str, Any]:
    """The configuration of ``other`` (a client of the other kind), to make its twin; ``{}``
    (the environment's) without one."""
    if other is None:
        return {}
    config = other._core.config
    return {
        "base_url": config.base_url,
        # An empty string sends none and reads no variable: the twin has the same identity.
        "token": config.token or "",
        "owner": config.owner or "",
        "on_behalf_of": config.on_behalf_of,
        "retry": config.retry,
        "timeout": config.timeout,
    }
