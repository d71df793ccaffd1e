"""The OpenAI Agents SDK's session backend (issue 25): :class:`ConversationsSession`, a
``SessionABC`` over the Conversations API (``openai-agents==0.24.0``, the ``[openai-agents]``
extra).

.. code-block:: python

    from agents import Agent, Runner
    from conversations_client import AsyncClient
    from conversations_client.openai_agents import ConversationsSession

    client = AsyncClient(token=service_token)
    session = ConversationsSession("user_123_session", client=client)
    result = await Runner.run(agent, "Hello", session=session)

One session is one conversation, whose id is the session id mapped by
:func:`conversations_client.ids.conversation_id_for`; it is created on the first
:meth:`~ConversationsSession.add_items`. One item is one message: :func:`item_to_message` and
:func:`message_to_items` are the mapping, one function per direction:

- the readable part goes where other clients (the CLI, ``view=FULL``) look: an item's ``role``
  (``user`` → ``USER``, ``assistant`` → ``AGENT``, ``system`` and ``developer`` → ``SYSTEM``) or
  its kind (an ``…_output`` → ``TOOL``, any other call or reasoning → ``AGENT``) becomes the
  message's ``type``; its text (a string ``content``, the text and refusal parts of a list, a
  tool's string output, a reasoning summary) becomes ``content``, the parts joined by a newline; a
  ``function_call`` becomes the ``toolCalls`` of an ``AGENT`` message (``call_id`` → ``id``,
  ``name``, ``arguments`` parsed into an object), a ``function_call_output`` a ``TOOL`` message
  with ``toolCallId``;
- the rest of the item is kept in the message's ``metadata`` under :data:`METADATA_KEY`, with a
  ``null`` where a value was moved to a native field and the recipe to put it back, so that the
  item read back is the item given — equal, keys in the same order. A message whose content was
  edited since (a redaction) reads back with the edited text in the item.

Messages that other clients wrote (no :data:`METADATA_KEY`) read as the items they describe:
``USER``/``SYSTEM`` text as a ``user``/``system`` message, ``AGENT`` text as an ``assistant``
message followed by one ``function_call`` per tool call, ``TOOL`` with ``toolCallId`` as a
``function_call_output`` (without one, as a ``user`` message).

What differs from ``SQLiteSession`` (docs/frameworks.md has the table):
``add_items`` is atomic per batch of at most 50 items and 256 KiB, not per call; an item must fit
one message (its text at most 64 KiB and the rest at most 16 KiB as JSON, or all of it at most
64 KiB as JSON); ``clear_session`` keeps the conversation (empty, its id usable).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

try:
    from agents.items import TResponseInputItem
    from agents.memory.session import SessionABC
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
    from agents.run_context import RunContextWrapper
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "conversations_client.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'conversations-client[openai-agents]'"
    ) from error

from ._client import AsyncClient
from .errors import (
    Aborted,
    AlreadyExists,
    APIError,
    ConversationsError,
    NotFound,
    StaleEtag,
    TransportError,
)
from .ids import conversation_id_for, session_metadata
from .types import JsonObject, Message, MessageInput, MessagePatch, MessageType, ToolCall

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "METADATA_KEY",
    "ConversationsSession",
    "item_to_message",
    "message_to_items",
]

T = TypeVar("T")

METADATA_KEY = "openaiAgents"
"""The key of a message's ``metadata`` that keeps what its native fields do not hold of the item:
``{"item": <the item, null where a value moved>, "text": [[<path>…, <length>], …],
"arguments": [<item separator>, <key separator>, <ensure_ascii>]}``, or ``{"json": true}`` when
``content`` holds the whole item as JSON."""

MAX_BATCH_MESSAGES = 50
"""The most messages one batch append carries (the API's limit)."""
MAX_BATCH_BYTES = 256 * 1024
"""The largest request body (the API's limit): a batch is cut before it would pass it."""
MAX_CONTENT_BYTES = 64 * 1024
MAX_METADATA_BYTES = 16 * 1024
MAX_ARGUMENTS_BYTES = 16 * 1024
MAX_PAGE_SIZE = 1000

TEXT_SEPARATOR = "\n"
"""Between two text parts of one item in ``content``."""

_TOOL_CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ROLES: dict[str, MessageType] = {
    "user": "USER",
    "assistant": "AGENT",
    "system": "SYSTEM",
    "developer": "SYSTEM",
}
_TEXT_PARTS = {"input_text": "text", "output_text": "text", "text": "text", "refusal": "refusal"}
_ARGUMENT_STYLES: tuple[tuple[str, str, bool], ...] = (
    (",", ":", False),
    (", ", ": ", False),
    (",", ":", True),
    (", ", ": ", True),
)
_UNKNOWN_OUTCOME_STATUSES = frozenset({429, 502, 503, 504})
_POP_ROUNDS = 16
_APPEND_ROUNDS = 6

Path = list[str | int]


def _size(value: Any) -> int:
    """Bytes of ``value`` as the client sends it (compact JSON, UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _kind(item: JsonObject) -> str:
    """``message`` for a role message (``type`` absent or ``message``), else the item's type."""
    kind = item.get("type")
    if "role" in item and kind in (None, "message"):
        return "message"
    return kind if isinstance(kind, str) else "unknown"


def _message_type(item: JsonObject, kind: str) -> MessageType:
    if kind == "message":
        return _ROLES.get(str(item.get("role")), "USER")
    if kind.endswith("_output") or kind == "mcp_approval_response":
        return "TOOL"
    return "AGENT"


def _text_paths(item: JsonObject, kind: str) -> list[Path]:
    """Where an item keeps its readable text (each a string), in reading order."""

    def parts(key: str) -> list[Path]:
        value = item.get(key)
        if isinstance(value, str):
            return [[key]]
        found: list[Path] = []
        if isinstance(value, list):
            for i, part in enumerate(value):
                if isinstance(part, dict):
                    field = _TEXT_PARTS.get(str(part.get("type")), "text")
                    if isinstance(part.get(field), str):
                        found.append([key, i, field])
        return found

    if kind == "message":
        return parts("content")
    if kind.endswith("_output"):
        return parts("output")
    if kind == "reasoning":
        return parts("summary") + parts("content")
    if kind == "custom_tool_call":
        return [["input"]] if isinstance(item.get("input"), str) else []
    if kind == "function_call" and isinstance(item.get("arguments"), str):
        return [["arguments"]]
    return []


def _get(data: Any, path: Path) -> Any:
    for step in path:
        data = data[step]
    return data


def _set(data: Any, path: Path, value: Any) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


def _fits_64_bits(value: Any) -> bool:
    """Whether every integer in ``value`` survives the service's JSON (64-bit integers)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return all(_fits_64_bits(v) for v in value.values())
    if isinstance(value, list):
        return all(_fits_64_bits(v) for v in value)
    return True


def _tool_call(item: JsonObject) -> tuple[ToolCall | None, list[Any] | None]:
    """A ``function_call`` as a tool call (when its id and name fit the API's rules), and the
    style that gives its ``arguments`` string back from the object (``None``: keep the
    string)."""
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not (
        isinstance(call_id, str)
        and _TOOL_CALL_ID.match(call_id)
        and isinstance(name, str)
        and _TOOL_NAME.match(name)
    ):
        return None, None
    parsed: Any = None
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
    if not isinstance(parsed, dict) or _size(parsed) > MAX_ARGUMENTS_BYTES:
        return {"id": call_id, "name": name, "arguments": {}}, None
    style: list[Any] | None = None
    if _fits_64_bits(parsed):
        for item_separator, key_separator, ascii_only in _ARGUMENT_STYLES:
            text = json.dumps(
                parsed, separators=(item_separator, key_separator), ensure_ascii=ascii_only
            )
            if text == arguments:
                style = [item_separator, key_separator, ascii_only]
                break
    return {"id": call_id, "name": name, "arguments": parsed}, style


def _placeholder(item: JsonObject, kind: str) -> str:
    """The readable ``content`` of an item without text: what it is."""
    content = item.get("content")
    if kind == "message" and isinstance(content, list) and content:
        return " ".join(
            f"[{part.get('type', 'part')}]" if isinstance(part, dict) else "[part]"
            for part in content
        )
    name = item.get("name")
    return f"[{kind} {name}]" if isinstance(name, str) and name else f"[{kind}]"


def item_to_message(item: TResponseInputItem) -> MessageInput:
    """The message that stores ``item`` (see the module's mapping); :func:`message_to_items`
    gives the item back. Raises ``ValueError`` when the item cannot fit one message (its text
    over 64 KiB and the rest over 16 KiB, or all of it over 64 KiB as JSON), ``TypeError`` when
    it is not a JSON object."""
    if not isinstance(item, dict):
        raise TypeError(f"a session item is a JSON object (a dict), not {type(item).__name__}")
    data = cast(JsonObject, item)
    whole = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    kind = _kind(data)
    message: MessageInput = {"type": _message_type(data, kind)}
    kept = copy.deepcopy(data)
    recipe: JsonObject = {"item": kept}

    call: ToolCall | None = None
    if kind == "function_call":
        call, style = _tool_call(data)
        if call is not None:
            message["toolCalls"] = [call]
        if style is not None:
            kept["arguments"] = None
            recipe["arguments"] = style
    elif message["type"] == "TOOL":
        call_id = data.get("call_id")
        if isinstance(call_id, str) and _TOOL_CALL_ID.match(call_id):
            message["toolCallId"] = call_id

    texts: list[str] = []
    moved: list[list[Any]] = []
    paths = [] if call is not None else _text_paths(data, kind)
    for path in paths:
        text = _get(data, path)
        if not text:
            continue
        joined = TEXT_SEPARATOR.join([*texts, text])
        if len(joined.encode("utf-8")) > MAX_CONTENT_BYTES:
            break
        texts.append(text)
        moved.append([*path, len(text)])
        _set(kept, path, None)
    if texts:
        message["content"] = TEXT_SEPARATOR.join(texts)
        recipe["text"] = moved
    elif call is None:
        message["content"] = _placeholder(data, kind)

    metadata: JsonObject = {METADATA_KEY: recipe}
    if _size(metadata) <= MAX_METADATA_BYTES and _fits_64_bits(kept):
        message["metadata"] = metadata
        return message
    # Too much besides the text for metadata (or integers the service would turn into floats):
    # the whole item as JSON in content instead, which the service keeps as it is.
    if len(whole.encode("utf-8")) > MAX_CONTENT_BYTES:
        raise ValueError(
            f"a {kind} item of {len(whole.encode('utf-8'))} bytes does not fit one message: at "
            f"most {MAX_CONTENT_BYTES} bytes of text and {MAX_METADATA_BYTES} of other fields, "
            f"or {MAX_CONTENT_BYTES} bytes in all"
        )
    message["content"] = whole
    message["metadata"] = {METADATA_KEY: {"json": True}}
    return message


def _put_texts(item: JsonObject, moved: Sequence[Any], content: str) -> None:
    """Puts the texts moved to ``content`` back at their paths. A content edited since (its
    lengths no longer match) goes whole to the first path, the others empty."""
    entries = [(list(m[:-1]), m[-1]) for m in moved if isinstance(m, list) and len(m) >= 2]
    pieces: list[str] = []
    at = 0
    for i, (_, length) in enumerate(entries):
        if i > 0:
            if content[at : at + len(TEXT_SEPARATOR)] != TEXT_SEPARATOR:
                break
            at += len(TEXT_SEPARATOR)
        if not isinstance(length, int) or at + length > len(content):
            break
        pieces.append(content[at : at + length])
        at += length
    if len(pieces) != len(entries) or at != len(content):
        pieces = [content] + [""] * (len(entries) - 1)
    for (path, _), text in zip(entries, pieces, strict=True):
        try:
            _set(item, path, text)
        except (KeyError, IndexError, TypeError):
            continue


def _foreign(message: Message) -> list[JsonObject]:
    """The items of a message that another client wrote."""
    content = message.content or ""
    if message.type == "SYSTEM":
        return [{"role": "system", "content": content}]
    if message.type == "TOOL":
        if message.tool_call_id:
            return [
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": content,
                }
            ]
        return [{"role": "user", "content": content}]
    if message.type == "AGENT":
        items: list[JsonObject] = []
        if content or not message.tool_calls:
            items.append({"role": "assistant", "content": content})
        for call in message.tool_calls or []:
            arguments = json.dumps(
                call.get("arguments") or {}, ensure_ascii=False, separators=(",", ":")
            )
            items.append(
                {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": call["name"],
                    "arguments": arguments,
                }
            )
        return items
    return [{"role": "user", "content": content}]


def message_to_items(message: Message) -> list[TResponseInputItem]:
    """The items a message holds: exactly the one item :func:`item_to_message` stored in it (a
    redacted content included), or, for a message another client wrote, the items it describes
    (one, except an ``AGENT`` message with text and tool calls, or several tool calls: its text,
    then one ``function_call`` per call)."""
    recipe = (message.metadata or {}).get(METADATA_KEY)
    if isinstance(recipe, dict):
        if recipe.get("json") is True:
            try:
                whole = json.loads(message.content or "")
            except ValueError:
                whole = None
            if isinstance(whole, dict):
                return [cast(TResponseInputItem, whole)]
        elif isinstance(recipe.get("item"), dict):
            item = copy.deepcopy(recipe["item"])
            moved = recipe.get("text")
            if isinstance(moved, list) and moved:
                _put_texts(item, moved, message.content or "")
            style = recipe.get("arguments")
            if isinstance(style, list) and len(style) == 3 and message.tool_calls:
                item["arguments"] = json.dumps(
                    message.tool_calls[0].get("arguments") or {},
                    separators=(str(style[0]), str(style[1])),
                    ensure_ascii=bool(style[2]),
                )
            return [cast(TResponseInputItem, item)]
    return [cast(TResponseInputItem, item) for item in _foreign(message)]


def _batches(messages: Sequence[MessageInput]) -> list[list[MessageInput]]:
    """``messages`` cut into batches of at most 50 messages and 256 KiB of request body."""
    envelope = _size({"messages": []})
    batches: list[list[MessageInput]] = []
    current: list[MessageInput] = []
    used = envelope
    for message in messages:
        size = _size(message)
        # A message after the first also costs the comma before it.
        if current and (len(current) == MAX_BATCH_MESSAGES or used + 1 + size > MAX_BATCH_BYTES):
            batches.append(current)
            current, used = [], envelope
        used += size + (1 if current else 0)
        current.append(message)
    if current:
        batches.append(current)
    return batches


def _unknown_outcome(error: ConversationsError) -> bool:
    """Whether a failed write may have applied: no answer, or a "try later" one (a gateway may
    have timed out after the function wrote)."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, APIError) and error.status in _UNKNOWN_OUTCOME_STATUSES


async def _settle(awaitable: Awaitable[T]) -> T:
    """Waits for a write's outcome even when the caller is cancelled meanwhile (then re-raises
    the cancellation), as the SDK's own sessions do: a write half-sent is never abandoned."""
    task = asyncio.ensure_future(awaitable)
    cancellation: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancellation = cancellation or exc
    try:
        result = task.result()
    except BaseException:
        if cancellation is not None:
            raise cancellation from None
        raise
    if cancellation is not None:
        raise cancellation from None
    return result


@dataclass
class _LoopState:
    client: AsyncClient
    lock: asyncio.Lock


def _twin(client: AsyncClient) -> AsyncClient:
    """A new client configured as ``client`` (its own connection pool, for another loop)."""
    config = client._core.config
    return AsyncClient(
        config.base_url,
        # An empty string sends none and reads no variable: the twin has the same identity.
        token=config.token or "",
        owner=config.owner or "",
        on_behalf_of=config.on_behalf_of,
        retry=config.retry,
        timeout=config.timeout,
    )


class ConversationsSession(SessionABC):
    """A session of the OpenAI Agents SDK stored in the Conversations API.

    ``session_id`` is any string: the conversation is ``conversation_id_for(session_id,
    namespace=namespace)`` (:mod:`conversations_client.ids`), created on the first
    :meth:`add_items` with the session id in its ``metadata``. ``client`` is the
    :class:`~conversations_client.AsyncClient` to call with (default: one made from
    ``CONVERSATIONS_URL``, ``CONVERSATIONS_TOKEN`` and ``CONVERSATIONS_OWNER``, closed by
    :meth:`close`).

    End users: ``user`` is sent as ``X-On-Behalf-Of`` (``client.acting_for(user)``), so each user
    has their own conversation under the same session id, invisible to the others. With
    ``user_from_context``, every method also takes the SDK's ``wrapper`` (the run's
    ``RunContextWrapper``, which the ``Runner`` passes to sessions that accept it) and acts for
    ``user_from_context(wrapper.context)`` when that is not ``None`` (else for ``user``).

    ``session_settings`` (``SessionSettings`` or a dict) gives :meth:`get_items` its default
    ``limit``, as in the SDK's own sessions. ``agent`` names the conversation's agent on create.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        *,
        client: AsyncClient | None = None,
        user: str | None = None,
        user_from_context: Callable[[Any], str | None] | None = None,
        namespace: str | None = None,
        agent: str = "openai-agents",
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self.conversation_id = conversation_id_for(session_id, namespace=namespace)
        self._namespace = namespace
        self._agent = agent
        self._user = user
        self._user_from_context = user_from_context
        self._owns_client = client is None
        self._client = client if client is not None else AsyncClient()
        # Per event loop: the client and the lock serialising this object's calls. One loop is
        # the usual case. An httpx connection pool belongs to the loop that opened it, so a
        # session that made its own client and is driven from a new loop each time (the SDK's
        # ``run_sync`` on new loops, a script's ``asyncio.run`` per turn, threads) gets a twin of
        # that client and a lock for each new loop, as ``SQLiteSession`` works from any loop;
        # those of closed loops are dropped. A client given is used on every loop as it is.
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._loops_lock = threading.Lock()
        self._client_bound = False
        self._closed = False

    # Who the calls are made as.

    def user_for(self, wrapper: RunContextWrapper[Any] | None = None) -> str | None:
        """The end user a call acts for (``None``: the client's own identity)."""
        if wrapper is not None and self._user_from_context is not None:
            user = self._user_from_context(wrapper.context)
            if user is not None:
                return user
        return self._user

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            state = self._loops.get(loop)
            if state is None:
                for old in [other for other in self._loops if other.is_closed()]:
                    del self._loops[old]
                if not self._owns_client or not self._client_bound:
                    client = self._client  # a client given, or the first loop's own
                    self._client_bound = True
                else:
                    client = _twin(self._client)
                state = self._loops[loop] = _LoopState(client, asyncio.Lock())
            return state

    @property
    def _lock(self) -> asyncio.Lock:
        """This loop's lock: each call on this object runs alone (as ``RedisSession``'s)."""
        return self._loop_state().lock

    def _client_for(self, user: str | None) -> AsyncClient:
        client = self._loop_state().client
        return client if user is None else client.acting_for(user)

    def _check_not_closed(self) -> None:
        if self._closed:
            raise RuntimeError("ConversationsSession is closed")

    # The Session protocol, in the SDK's order.

    async def get_items(
        self,
        limit: int | None = None,
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> list[TResponseInputItem]:
        """Retrieve the conversation history for this session.

        Args:
            limit: Maximum number of items to retrieve. If None, uses session_settings.limit.
                   When specified, returns the latest N items in chronological order.
            wrapper: The run's context, when ``user_from_context`` picks the user from it.

        Returns:
            List of input items representing the conversation history (none for a session
            never written to)

        The latest ``limit`` items are one request (``orderBy=order desc&pageSize=limit``,
        reversed) up to 1000; every item is one request per 1000. ``limit=0`` is no item and
        no request; a negative limit is every item, as in ``SQLiteSession``.
        """
        session_limit = resolve_session_limit(limit, self.session_settings)
        client = self._client_for(self.user_for(wrapper))
        async with self._lock:
            self._check_not_closed()
            if session_limit == 0:
                return []
            try:
                if session_limit is None or session_limit < 0:
                    messages = [
                        m
                        async for m in client.list_messages(
                            self.conversation_id, page_size=MAX_PAGE_SIZE
                        )
                    ]
                else:
                    messages = await self._latest(client, session_limit)
            except NotFound:
                return []
        items = [item for message in messages for item in message_to_items(message)]
        if session_limit is not None and session_limit > 0:
            return items[-session_limit:]
        return items

    async def _latest(self, client: AsyncClient, limit: int) -> list[Message]:
        """The latest ``limit`` messages, oldest first: one page, newest first, reversed (more
        pages only past 1000, or if the service answers a short page with a next token)."""
        page = await client.list_messages_page(
            self.conversation_id, order_by="order desc", page_size=min(limit, MAX_PAGE_SIZE)
        )
        newest = list(page.items)
        while len(newest) < limit and page.next_page_token is not None:
            page = await client.list_messages_page(
                self.conversation_id,
                order_by="order desc",
                page_size=min(limit - len(newest), MAX_PAGE_SIZE),
                page_token=page.next_page_token,
            )
            newest.extend(page.items)
        return list(reversed(newest[:limit]))

    async def add_items(
        self,
        items: list[TResponseInputItem],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Add new items to the conversation history.

        Args:
            items: List of input items to add to the history
            wrapper: The run's context, when ``user_from_context`` picks the user from it.

        Every item is mapped before anything is sent (an item that cannot fit one message
        raises ``ValueError`` and nothing is written). The items go as batch appends of at most
        50 messages and 256 KiB each, in order, each with its own idempotency key, so a batch
        whose answer was lost lands once. Atomicity: each batch is all or nothing, but a call
        that needs several batches is not: when one fails (the exception is raised), the
        batches before it stay and the ones after it are not sent, and another writer's items
        may land between two batches (never inside one). One call of at most 50 items and 256
        KiB is atomic, as ``SQLiteSession``'s transaction is. The conversation is created when
        the first batch finds it missing.
        """
        self._check_not_closed()
        if not items:
            return
        batches = _batches([item_to_message(item) for item in items])
        keys = [uuid.uuid4() for _ in batches]
        user = self.user_for(wrapper)
        async with self._lock:
            self._check_not_closed()
            await _settle(self._append(user, batches, keys))

    async def _append(
        self, user: str | None, batches: list[list[MessageInput]], keys: list[uuid.UUID]
    ) -> None:
        client = self._client_for(user)
        for batch, key in zip(batches, keys, strict=True):
            await self._append_batch(client, batch, key)

    async def _append_batch(
        self, client: AsyncClient, batch: list[MessageInput], key: uuid.UUID
    ) -> None:
        """Appends one batch with its key; creates the conversation when it is missing."""
        created = False
        for attempt in range(_APPEND_ROUNDS):
            try:
                await client.batch_append_messages(self.conversation_id, batch, request_id=key)
            except NotFound:
                if created:
                    raise  # soft-deleted: a create cannot take the id (undelete or purge it)
                await self._create(client)
                created = True
                continue
            except AlreadyExists:
                pass  # this key's messages landed (a lost answer) and were removed since
            except Aborted:
                # Too many appends at once: the service wrote nothing; the same key again.
                if attempt + 1 == _APPEND_ROUNDS:
                    raise
                await asyncio.sleep(client.retry.delay(attempt, None))
                continue
            return

    async def _create(self, client: AsyncClient) -> None:
        """Creates the conversation (a create that finds it there already is done)."""
        with contextlib.suppress(AlreadyExists):
            await client.create_conversation(
                {
                    "agents": [self._agent],
                    "displayName": self.session_id[:256],
                    "metadata": session_metadata(self.session_id, namespace=self._namespace),
                },
                conversation_id=self.conversation_id,
            )

    async def pop_item(
        self,
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> TResponseInputItem | None:
        """Remove and return the most recent item from the session.

        Args:
            wrapper: The run's context, when ``user_from_context`` picks the user from it.

        Returns:
            The most recent item if it exists, None if the session is empty

        Two requests: the newest message (``orderBy=order desc&pageSize=1``), then delete
        message of its order with its etag. When the delete's answer is lost, the same delete
        is sent again (never a new "newest", which would pop a second item): 404 then means the
        first one removed it, and the item is returned. Another writer who deleted or edited
        that message first makes the pop look again.
        """
        client = self._client_for(self.user_for(wrapper))
        async with self._lock:
            self._check_not_closed()
            return await _settle(self._pop(client))

    async def _pop(self, client: AsyncClient) -> TResponseInputItem | None:
        for _ in range(_POP_ROUNDS):
            try:
                page = await client.list_messages_page(
                    self.conversation_id, order_by="order desc", page_size=1
                )
            except NotFound:
                return None
            if not page.items:
                return None
            newest = page.items[0]
            items = message_to_items(newest)
            try:
                if len(items) > 1:
                    await self._drop_last_tool_call(client, newest)
                elif not await self._delete(client, newest):
                    continue
            except (NotFound, StaleEtag):
                continue  # taken or changed by another writer since the read: look again
            return items[-1]
        raise ConversationsError(
            f"pop_item: {self.conversation_id}'s newest message kept changing; try again"
        )

    async def _delete(self, client: AsyncClient, message: Message) -> bool:
        """Deletes ``message`` (its etag as the precondition): true when it is gone by this
        call, false when another writer took it first. A lost answer sends the same delete
        again: a 404 after an attempt that may have applied is this call's own delete."""
        assert message.order is not None
        unsure = False
        attempts = client.retry.attempts
        for attempt in range(attempts):
            try:
                await client.delete_message(self.conversation_id, message.order, etag=message.etag)
                return True
            except NotFound:
                return unsure
            except ConversationsError as error:
                if not _unknown_outcome(error) or attempt + 1 == attempts:
                    raise
                unsure = True
                retry_after = error.retry_after if isinstance(error, APIError) else None
                await asyncio.sleep(client.retry.delay(attempt, retry_after))
        return False  # pragma: no cover - the loop returns or raises

    async def _drop_last_tool_call(self, client: AsyncClient, message: Message) -> None:
        """Pops the last item of a message that holds several (another client's ``AGENT``
        message with text and tool calls): its last tool call goes, the message stays."""
        assert message.order is not None
        rest = (message.tool_calls or [])[:-1]
        patch: MessagePatch = {"toolCalls": rest} if rest else {}
        await client.update_message(
            self.conversation_id,
            message.order,
            patch,
            update_mask="toolCalls",
            etag=message.etag,
        )

    async def clear_session(
        self,
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Clear all items for this session.

        Args:
            wrapper: The run's context, when ``user_from_context`` picks the user from it.

        Two requests: the newest message's order, then clear messages through it (retried
        safely: clearing through an order already cleared changes nothing). Items added after
        the read stay. The conversation stays, empty: the session id is usable at once.
        """
        client = self._client_for(self.user_for(wrapper))
        async with self._lock:
            self._check_not_closed()
            await _settle(self._clear(client))

    async def _clear(self, client: AsyncClient) -> None:
        try:
            page = await client.list_messages_page(
                self.conversation_id, order_by="order desc", page_size=1, fields="order"
            )
            if page.items and page.items[0].order is not None:
                await client.clear_messages(self.conversation_id, through_order=page.items[0].order)
        except NotFound:
            return

    async def close(self) -> None:
        """Closes the client when this session made it (then the session is closed: its
        methods raise ``RuntimeError``); a client given is left open, as ``RedisSession``
        leaves a client it was given."""
        async with self._lock:
            if not self._owns_client:
                return
            self._closed = True
            current = asyncio.get_running_loop()
            with self._loops_lock:
                states, self._loops = self._loops, {}
            for loop, state in states.items():
                if loop is current:
                    await state.client.aclose()
                elif loop.is_running():  # another thread's loop: close it there
                    asyncio.run_coroutine_threadsafe(state.client.aclose(), loop)
