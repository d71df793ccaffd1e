"""Strands Agents session storage over the Conversations API (issue 25): a drop-in
``SessionRepository`` (:class:`ConversationsSessionRepository`) and the session manager over it
(:class:`ConversationsSessionManager`), as Strands' own ``FileSessionManager`` and
``S3SessionManager`` (strands-agents 1.62.0). Imported only with the ``[strands]`` extra.

.. code-block:: python

    from strands import Agent
    from conversations_client import Client
    from conversations_client.strands import ConversationsSessionManager

    manager = ConversationsSessionManager("user_123_session", client=Client(token=service_token),
                                          user="alice")            # X-On-Behalf-Of: alice
    agent = Agent(session_manager=manager)

How Strands' model maps to conversations (``docs/frameworks.md`` has every call):

- A **session** is the conversation ``ids.conversation_id_for(session_id)`` (``support-chat-7``
  stays ``support-chat-7``; ``user_123_session`` becomes ``user-123-session--<hash>``). Its
  ``metadata`` holds ``_sessionId`` (the session id), ``strandsSession`` (``Session.to_dict()``)
  and one key per agent or multi-agent of the session (that member's conversation id, valued
  ``{"strandsAgentId": …}`` or ``{"strandsMultiAgentId": …}``): the registry that
  ``delete_session`` purges. It holds no messages.
- An **agent** of a session is the conversation ``ids.conversation_id_for(f"{session_id}/agents/
  {agent_id}")``, holding that agent's messages; its ``metadata`` holds ``strandsSessionId`` and
  ``strandsAgent`` (``SessionAgent.to_dict()``: state, conversation manager state, internal state).
  A **multi-agent** state is the conversation of ``f"{session_id}/multi_agents/{id}"``, its state
  in ``metadata.strandsMultiAgent``. Every conversation of a session carries the labels
  ``strands-session`` (the session's conversation id) and ``strands-kind``.
- A **message**'s ``message_id`` is its ``order - 1`` in its agent's conversation: the service
  assigns it (``create_message`` writes the assigned id back into the ``SessionMessage``, as the
  manager expects its ``message_id`` to be the stored one), ``read_message`` is one get of
  ``order = message_id + 1``, and ``list_messages(limit, offset)`` counts positions over the
  messages that exist, as the file repository counts its files, exactly even where another
  client deleted or cleared some. :func:`session_message_to_api` and
  :func:`session_message_from_api` are the mapping, one function per direction.

Errors are Strands': a missing thing is ``None`` from ``read_*`` and a ``SessionException`` from
``update_*``, ``delete_session`` and ``list_messages``, as the file repository answers; every
failure of the API (after the client's retries) is a ``SessionException`` whose ``__cause__`` is
the client's exception, as the S3 repository wraps boto's. An id with a path separator is a
``ValueError``, a ``message_id`` that is not an integer too, as both of Strands' repositories
refuse them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

from strands.session.repository_session_manager import RepositorySessionManager
from strands.session.session_repository import SessionRepository
from strands.types.exceptions import SessionException
from strands.types.session import Session, SessionAgent, SessionMessage

from . import ids
from ._client import Client
from .errors import AlreadyExists, ConversationsError, NotFound, StaleEtag
from .types import (
    Conversation,
    ConversationInput,
    JsonObject,
    Message,
    MessageInput,
    MessagePatch,
    MessageType,
    ToolCall,
)

if TYPE_CHECKING:
    from strands.multiagent.base import MultiAgentBase

__all__ = [
    "ConversationsSessionManager",
    "ConversationsSessionRepository",
    "agent_conversation_id",
    "multi_agent_conversation_id",
    "session_conversation_id",
    "session_message_from_api",
    "session_message_to_api",
]

logger = logging.getLogger(__name__)

SESSION_KEY: Final = "strandsSession"
"""The session conversation's ``metadata`` key holding ``Session.to_dict()``."""
AGENT_KEY: Final = "strandsAgent"
"""An agent conversation's ``metadata`` key holding ``SessionAgent.to_dict()``."""
MULTI_AGENT_KEY: Final = "strandsMultiAgent"
"""A multi-agent conversation's ``metadata`` key holding ``MultiAgentBase.serialize_state()``."""
SESSION_ID_KEY: Final = "strandsSessionId"
"""The session id, in the ``metadata`` of an agent's or a multi-agent's conversation."""
MESSAGE_KEY: Final = "strands"
"""A message's ``metadata`` key holding its exact ``SessionMessage`` (see
:func:`session_message_to_api`)."""
SESSION_LABEL: Final = "strands-session"
KIND_LABEL: Final = "strands-kind"

MAX_CONTENT_BYTES: Final = 64 * 1024
"""A message's ``content``, in bytes of UTF-8 (the contract's limit)."""
MAX_METADATA_BYTES: Final = 16 * 1024
"""A conversation's or a message's ``metadata``, serialised (the contract's limit)."""
MAX_TOOL_CALLS: Final = 32
_TOOL_CALL_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_ATTEMPTS: Final = 8
"""Conditional writes tried before giving up on a conversation other writers keep changing."""
_PAGE: Final = 1000
_KNOWN_FIELDS: Final = ("etag", "metadata", "labels")
"""What this repository keeps of a conversation it wrote or read (:class:`_Known`)."""


# Ids.


def _validate(value: str, kind: str) -> str:
    """Strands' own rule for session and agent ids (``strands._identifier.validate``)."""
    if os.path.basename(value) != value:
        raise ValueError(f"{kind}_id={value} | id cannot contain path separators")
    return value


def _validate_message_id(message_id: Any) -> int:
    if not isinstance(message_id, int):
        raise ValueError(f"message_id=<{message_id}> | message id must be an integer")
    return message_id


def session_conversation_id(session_id: str) -> str:
    """The id of the conversation of a Strands session (``ids.conversation_id_for``)."""
    return ids.conversation_id_for(_validate(session_id, "session"))


def agent_conversation_id(session_id: str, agent_id: str) -> str:
    """The id of the conversation holding an agent's messages in a session."""
    _validate(session_id, "session")
    return ids.conversation_id_for(f"{session_id}/agents/{_validate(agent_id, 'agent')}")


def multi_agent_conversation_id(session_id: str, multi_agent_id: str) -> str:
    """The id of the conversation holding a multi-agent's state in a session."""
    _validate(session_id, "session")
    return ids.conversation_id_for(
        f"{session_id}/multi_agents/{_validate(multi_agent_id, 'agent')}"
    )


# Messages: Strands ↔ API, one function per direction.


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _size(value: Any) -> int:
    """Bytes of ``value`` serialised as the service measures it (compact JSON, UTF-8)."""
    return len(_compact(value).encode("utf-8"))


def _fingerprint(content: str, tool_calls: list[ToolCall]) -> str:
    """What a message's exact copy was written with: an edit by another client changes it."""
    text = json.dumps([content, tool_calls], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _set(root: Any, path: list[Any], value: Any) -> None:
    for step in path[:-1]:
        root = root[step]
    root[path[-1]] = value


class _Transcript:
    """The readable ``content`` being built, at most :data:`MAX_CONTENT_BYTES`, and where each
    piece of the exact copy moved into it lies (offsets in code points)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.bytes = 0
        self.refs: list[list[Any]] = []
        self._new_block = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, text: str) -> tuple[int, int] | None:
        """Appends ``text`` (after a blank line when it starts a block) and answers where it
        lies; ``None`` when it does not fit."""
        separator = "\n\n" if self._new_block and self.length else ""
        size = len((separator + text).encode("utf-8"))
        if self.bytes + size > MAX_CONTENT_BYTES:
            return None
        self.parts.append(separator + text)
        start = self.length + len(separator)
        self.length = start + len(text)
        self.bytes += size
        self._new_block = False
        return start, self.length

    def block(self) -> None:
        """Starts a block: the next piece comes after a blank line."""
        self._new_block = True

    def move(self, exact: JsonObject, path: list[Any], text: str) -> None:
        """Shows ``text`` (the string at ``path`` of the exact copy) and takes it out of the copy,
        which points at it instead; when it does not fit, it stays in the copy."""
        span = self.add(text)
        if span is None:
            self.add("[…]")
            return
        self.refs.append([path, ["content", *span]])
        _set(exact, path, None)

    def move_json(self, exact: JsonObject, path: list[Any], value: Any) -> None:
        """As :meth:`move`, for a JSON value shown as JSON text."""
        try:
            text = json.dumps(value, ensure_ascii=False)
            same = json.loads(text) == value
        except (TypeError, ValueError):
            same = False
        if not same:  # NaN, or something JSON does not give back as it was: left in the copy
            self.add("[…]")
            return
        span = self.add(text)
        if span is None:
            self.add("[…]")
            return
        self.refs.append([path, ["json", *span]])
        _set(exact, path, None)


def _type_of(message: Any) -> MessageType:
    """A Strands message's type: ``assistant`` → ``AGENT``; ``user`` → ``TOOL`` when it carries
    a tool result, else ``USER``."""
    role = message.get("role") if isinstance(message, dict) else None
    if role == "assistant":
        return "AGENT"
    if role == "system":
        return "SYSTEM"
    blocks = message.get("content") if isinstance(message, dict) else None
    if isinstance(blocks, list) and any(isinstance(b, dict) and "toolResult" in b for b in blocks):
        return "TOOL"
    return "USER"


def _native_call(use: Any, calls: list[ToolCall]) -> ToolCall | None:
    """``toolUse`` as one of the API's ``toolCalls``, when it fits the contract's rules."""
    if not isinstance(use, dict) or len(calls) >= MAX_TOOL_CALLS:
        return None
    call_id, name, arguments = use.get("toolUseId"), use.get("name"), use.get("input")
    if not (isinstance(call_id, str) and _TOOL_CALL_ID.fullmatch(call_id)):
        return None
    if not (isinstance(name, str) and _TOOL_NAME.fullmatch(name)):
        return None
    if not isinstance(arguments, dict) or _size(arguments) > MAX_METADATA_BYTES:
        return None
    if any(c["id"] == call_id for c in calls):
        return None
    return {"id": call_id, "name": name, "arguments": arguments}


def _render(
    t: _Transcript,
    exact: JsonObject,
    path: list[Any],
    block: Any,
    kind: MessageType,
    calls: list[ToolCall],
    several_results: bool,
) -> None:
    """One content block: its readable form appended to ``t``, its large strings moved there."""
    if not isinstance(block, dict):
        return
    if isinstance(block.get("text"), str):
        t.block()
        t.move(exact, [*path, "text"], block["text"])
    elif "toolUse" in block:
        use = block["toolUse"]
        call = _native_call(use, calls) if kind == "AGENT" else None
        if call is not None:  # shown by the API's own toolCalls; the copy points there
            calls.append(call)
            t.refs.append([[*path, "toolUse", "input"], ["toolCall", len(calls) - 1]])
            _set(exact, [*path, "toolUse", "input"], None)
            return
        name = use.get("name") if isinstance(use, dict) else None
        t.block()
        t.add(f"[tool call {name}] ")
        if isinstance(use, dict) and "input" in use:
            t.move_json(exact, [*path, "toolUse", "input"], use["input"])
    elif "toolResult" in block:
        result = block["toolResult"]
        if not isinstance(result, dict):
            return
        t.block()
        if several_results:
            t.add(f"[result of {result.get('toolUseId')}] ")
        if result.get("status") == "error":
            t.add("[error] ")
        items = result.get("content")
        for j, item in enumerate(items if isinstance(items, list) else []):
            if j:
                t.add("\n")
            item_path = [*path, "toolResult", "content", j]
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                t.move(exact, [*item_path, "text"], item["text"])
            elif isinstance(item, dict) and "json" in item:
                t.move_json(exact, [*item_path, "json"], item["json"])
            elif isinstance(item, dict) and item:
                t.add(f"[{next(iter(item))}]")
    elif "reasoningContent" in block:
        reasoning = block["reasoningContent"]
        text = reasoning.get("reasoningText") if isinstance(reasoning, dict) else None
        t.block()
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            t.add("[reasoning] ")
            t.move(exact, [*path, "reasoningContent", "reasoningText", "text"], text["text"])
        else:
            t.add("[reasoning]")
    elif "guardContent" in block:
        guarded = block["guardContent"]
        text = guarded.get("text") if isinstance(guarded, dict) else None
        t.block()
        if isinstance(text, dict) and isinstance(text.get("text"), str):
            t.move(exact, [*path, "guardContent", "text", "text"], text["text"])
        else:
            t.add("[guardContent]")
    elif "citationsContent" in block:
        cited = block["citationsContent"]
        items = cited.get("content") if isinstance(cited, dict) else None
        t.block()
        for j, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                t.move(exact, [*path, "citationsContent", "content", j, "text"], item["text"])
    elif "image" in block:
        image = block["image"]
        fmt = image.get("format") if isinstance(image, dict) else None
        t.block()
        t.add(f"[image {fmt}]" if fmt else "[image]")
    elif "document" in block:
        document = block["document"]
        t.block()
        name = document.get("name") if isinstance(document, dict) else None
        t.add(f"[document {name}]" if name else "[document]")
    elif "cachePoint" in block:
        return
    elif block:
        t.block()
        t.add(f"[{next(iter(block))}]")


def session_message_to_api(
    session_message: SessionMessage, *, kind: MessageType | None = None
) -> MessageInput:
    """A Strands ``SessionMessage`` as the API's message (what append and update send).

    - ``type``: ``assistant`` → ``AGENT``; ``user`` → ``TOOL`` when it carries a ``toolResult``,
      else ``USER`` (of the original ``message``; ``kind`` forces it, as an update must keep it).
    - ``content``: the visible message (``redact_message`` when there is one, else ``message``)
      made readable — text blocks as they are, tool results as their text or JSON, a blank line
      between blocks, other blocks as a short mark (``[image png]``) — at most 64 KiB.
    - ``toolCalls``: each ``toolUse`` of an ``AGENT`` message that fits the contract's rules
      (id, name, an object of ≤ 16 KiB, ≤ 32 calls); ``toolCallId``: the ``toolUseId`` of a
      ``TOOL`` message's single ``toolResult``.
    - ``metadata.strands``: the exact ``SessionMessage.to_dict()`` (bytes already base64, as
      Strands writes its files) but ``message_id`` (the order gives it); every string it shows
      in ``content`` (texts, tool results) and every tool input sent as ``toolCalls`` is taken
      out of it and replaced by a reference (``refs``: ``[path, ["content", start, end]]``,
      ``["json", start, end]`` or ``["toolCall", i]``), so that the 16 KiB of a message's
      metadata hold the structure and the content's 64 KiB the text; ``fingerprint`` tells an
      edit by another client. :func:`session_message_from_api` reverses it.

    Raises ``SessionException`` when the message cannot be held by one API message (its exact
    form is over 16 KiB once its text has moved to ``content``: large images or documents).
    """
    exact = session_message.to_dict()
    exact.pop("message_id", None)
    original = exact.get("message")
    visible_key = "redact_message" if exact.get("redact_message") is not None else "message"
    visible = exact.get(visible_key)
    kind = kind or _type_of(original)

    t = _Transcript()
    calls: list[ToolCall] = []
    blocks = visible.get("content") if isinstance(visible, dict) else None
    blocks = blocks if isinstance(blocks, list) else []
    results = [b["toolResult"] for b in blocks if isinstance(b, dict) and "toolResult" in b]
    for i, block in enumerate(blocks):
        _render(t, exact, [visible_key, "content", i], block, kind, calls, len(results) > 1)

    content = t.text
    if not content and not (kind == "AGENT" and calls):
        content = "[empty message]" if not blocks else "[" + ", ".join(_kinds(blocks)) + "]"
    body: MessageInput = {"type": kind}
    if content:
        body["content"] = content
    if calls:
        body["toolCalls"] = calls
    if kind == "TOOL" and len(results) == 1 and isinstance(results[0], dict):
        call_id = results[0].get("toolUseId")
        if isinstance(call_id, str) and _TOOL_CALL_ID.fullmatch(call_id):
            body["toolCallId"] = call_id
    body["metadata"] = {
        MESSAGE_KEY: {
            "v": 1,
            "sessionMessage": exact,
            "refs": t.refs,
            "fingerprint": _fingerprint(content, calls),
        }
    }
    size = _size(body["metadata"])
    if size > MAX_METADATA_BYTES:
        raise SessionException(
            f"message_id=<{session_message.message_id}> | the message's exact form is {size} bytes"
            f" once its text is in content; a message's metadata holds at most {MAX_METADATA_BYTES}"
        )
    return body


def _kinds(blocks: list[Any]) -> list[str]:
    return [next(iter(b)) for b in blocks if isinstance(b, dict) and b]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def session_message_from_api(message: Message) -> SessionMessage:
    """The ``SessionMessage`` that :func:`session_message_to_api` wrote (``message_id`` =
    ``order - 1``), exactly.

    A message written by another client (the CLI, another framework), or whose ``content`` or
    ``toolCalls`` another client edited since, is read from its fields instead: ``AGENT`` as an
    ``assistant`` message with its text and each tool call as a ``toolUse``, a ``TOOL`` message
    with a ``toolCallId`` as a ``user`` message with that ``toolResult``, anything else as a
    ``user`` text; ``created_at``/``updated_at`` from the exact copy when there is one, else the
    message's ``createTime``/``updateTime``.
    """
    message_id = (message.order or 0) - 1
    content = message.content or ""
    calls = list(message.tool_calls or [])
    stored: Any = (message.metadata or {}).get(MESSAGE_KEY)
    exact = stored.get("sessionMessage") if isinstance(stored, dict) else None
    if isinstance(exact, dict) and stored.get("fingerprint") == _fingerprint(content, calls):
        data = copy.deepcopy(exact)
        for path, source in stored.get("refs") or []:
            if source[0] == "content":
                value: Any = content[source[1] : source[2]]
            elif source[0] == "json":
                value = json.loads(content[source[1] : source[2]])
            else:
                value = calls[source[1]].get("arguments", {})
            _set(data, path, value)
        data["message_id"] = message_id
        return SessionMessage.from_dict(data)

    # Written or edited by another client: read from its fields.
    role = "assistant" if message.type == "AGENT" else "user"
    if isinstance(exact, dict) and isinstance(exact.get("message"), dict):
        role = exact["message"].get("role", role)
    blocks: list[JsonObject] = []
    if message.type == "TOOL" and message.tool_call_id:
        result = {"toolUseId": message.tool_call_id, "status": "success"}
        blocks.append({"toolResult": {**result, "content": [{"text": content}]}})
    elif content:
        blocks.append({"text": content})
    for call in calls:
        use = {"toolUseId": call["id"], "name": call["name"], "input": call.get("arguments", {})}
        blocks.append({"toolUse": use})
    data = {"message": {"role": role, "content": blocks}, "message_id": message_id}
    if isinstance(exact, dict):
        data["created_at"] = exact.get("created_at") or message.create_time or _now()
    else:
        data["created_at"] = message.create_time or _now()
    data["updated_at"] = message.update_time or data["created_at"]
    return SessionMessage.from_dict(data)


# The repository.


@dataclass
class _Known:
    """A conversation as this repository last wrote or read it: its etag (the precondition of
    the next write) and its metadata at that etag."""

    etag: str
    metadata: JsonObject
    labels: dict[str, str]

    @classmethod
    def of(cls, conversation: Conversation) -> _Known | None:
        if conversation.etag is None:
            return None
        return cls(conversation.etag, conversation.metadata or {}, conversation.labels or {})

    @property
    def is_strands_session(self) -> bool:
        """Made by this module for a session (the ``strands-kind`` label)."""
        return self.labels.get(KIND_LABEL) == "session"


class ConversationsSessionRepository(SessionRepository):
    """Strands' ``SessionRepository`` over the Conversations API (see the module's mapping).

    ``client`` is the :class:`~conversations_client.Client` to call with (default: ``Client()``,
    configured from ``CONVERSATIONS_URL``, ``CONVERSATIONS_TOKEN`` and ``CONVERSATIONS_OWNER``,
    closed by :meth:`close`). Strands' repository API names no user; ``user`` acts for one
    (``client.acting_for(user)``: ``X-On-Behalf-Of``), so that one service token keeps each end
    user's sessions apart; without it the sessions are the caller's own.
    """

    def __init__(self, *, client: Client | None = None, user: str | None = None) -> None:
        self._own_client = client is None
        self._root_client = client if client is not None else Client()
        self._client = self._root_client.acting_for(user) if user is not None else self._root_client
        self._known: dict[str, _Known] = {}

    def close(self) -> None:
        """Closes the client when this repository made it."""
        if self._own_client:
            self._root_client.close()

    # Sessions.

    def create_session(self, session: Session, **kwargs: Any) -> Session:
        """Create a new session (``SessionException`` when it exists)."""
        session_id = session.session_id
        conversation_id = session_conversation_id(session_id)
        record = session.to_dict()
        body = self._conversation_body(session_id, "session", ["strands"], f"Strands {session_id}")
        body["metadata"] = {**ids.session_metadata(session_id), SESSION_KEY: record}
        with _failures(f"creating session {session_id}"):
            try:
                created = self._client.create_conversation(
                    body, conversation_id=conversation_id, fields=_KNOWN_FIELDS
                )
            except AlreadyExists:
                # The conversation can exist without a session record: an agent was created in
                # it first (as the file and S3 repositories allow); then the session adopts it.
                def adopt(known: _Known) -> JsonObject:
                    if SESSION_KEY in known.metadata or not known.is_strands_session:
                        raise SessionException(f"Session {session_id} already exists") from None
                    return {**ids.session_metadata(session_id), SESSION_KEY: record}

                self._update_metadata(
                    conversation_id,
                    adopt,
                    missing=lambda: SessionException(f"Session {session_id} already exists"),
                )
                return session
        self._remember(conversation_id, created)
        return session

    def read_session(self, session_id: str, **kwargs: Any) -> Session | None:
        """Read a session (``None`` when it does not exist)."""
        conversation_id = session_conversation_id(session_id)
        known = self._read(conversation_id, f"reading session {session_id}")
        record = known.metadata.get(SESSION_KEY) if known is not None else None
        return Session.from_dict(record) if isinstance(record, dict) else None

    def delete_session(self, session_id: str, **kwargs: Any) -> None:
        """Delete a session and all its data: every agent's and multi-agent's conversation, then
        the session's own (``SessionException`` when it does not exist)."""
        conversation_id = session_conversation_id(session_id)
        with _failures(f"deleting session {session_id}"):
            for _ in range(_ATTEMPTS):
                try:
                    current = self._client.get_conversation(conversation_id, fields=_KNOWN_FIELDS)
                except NotFound:
                    raise SessionException(f"Session {session_id} does not exist") from None
                members = [key for key, value in (current.metadata or {}).items() if _member(value)]
                for member in members:
                    self._client.purge_conversation(member, allow_missing=True)
                    self._known.pop(member, None)
                try:
                    # Conditional: an agent registered since the read is purged on the next round.
                    self._client.purge_conversation(conversation_id, etag=current.etag)
                except StaleEtag:
                    continue
                except NotFound:
                    pass  # another caller deleted it meanwhile: it is gone, as asked
                self._known.pop(conversation_id, None)
                return
        raise SessionException(f"Session {session_id}: other writers kept changing it")

    # Agents.

    def create_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Create a new agent in a session; an agent that exists is written over (as the file
        and S3 repositories do), its messages kept."""
        agent_id = session_agent.agent_id
        conversation_id = agent_conversation_id(session_id, agent_id)
        record = session_agent.to_dict()
        body = self._conversation_body(
            session_id, "agent", [agent_id], f"Strands {session_id} / {agent_id}"
        )
        body["metadata"] = {SESSION_ID_KEY: session_id, AGENT_KEY: record}
        _check_metadata(body["metadata"], f"agent {agent_id}")
        self._register(session_id, conversation_id, {"strandsAgentId": agent_id})
        with _failures(f"creating agent {agent_id} in session {session_id}"):
            try:
                created = self._client.create_conversation(
                    body, conversation_id=conversation_id, fields=_KNOWN_FIELDS
                )
            except AlreadyExists:
                self._update_metadata(
                    conversation_id,
                    lambda _: {AGENT_KEY: record},
                    missing=lambda: _agent_missing(session_id, agent_id),
                )
                return
        self._remember(conversation_id, created)

    def read_agent(self, session_id: str, agent_id: str, **kwargs: Any) -> SessionAgent | None:
        """Read an agent (``None`` when it does not exist)."""
        conversation_id = agent_conversation_id(session_id, agent_id)
        known = self._read(conversation_id, f"reading agent {agent_id} in session {session_id}")
        record = known.metadata.get(AGENT_KEY) if known is not None else None
        return SessionAgent.from_dict(record) if isinstance(record, dict) else None

    def update_agent(self, session_id: str, session_agent: SessionAgent, **kwargs: Any) -> None:
        """Update an agent (``SessionException`` when it does not exist); its ``created_at``
        stays the stored one, and is set on ``session_agent`` as the file repository does."""
        agent_id = session_agent.agent_id
        conversation_id = agent_conversation_id(session_id, agent_id)

        def values(known: _Known) -> JsonObject:
            previous = known.metadata.get(AGENT_KEY)
            if not isinstance(previous, dict):
                raise _agent_missing(session_id, agent_id)
            session_agent.created_at = previous.get("created_at", session_agent.created_at)
            record = session_agent.to_dict()
            _check_metadata({**known.metadata, AGENT_KEY: record}, f"agent {agent_id}")
            return {AGENT_KEY: record}

        with _failures(f"updating agent {agent_id} in session {session_id}"):
            self._update_metadata(
                conversation_id, values, missing=lambda: _agent_missing(session_id, agent_id)
            )

    # Messages.

    def create_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Create a new message for the agent: appended (once, whatever the retries) at the next
        order, whose ``order - 1`` becomes ``session_message.message_id`` when it differs (another
        writer appended meanwhile, or the id asked for is not the next one)."""
        _validate_message_id(session_message.message_id)
        conversation_id = agent_conversation_id(session_id, agent_id)
        body = session_message_to_api(session_message)
        with _failures(f"creating message in agent {agent_id} of session {session_id}"):
            try:
                appended = self._client.append_message(conversation_id, body, fields=("order",))
            except NotFound:
                raise _agent_missing(session_id, agent_id) from None
        assigned = (appended.order or 0) - 1
        if assigned != session_message.message_id:
            logger.debug(
                "session_id=<%s>, agent_id=<%s>, message_id=<%s> | stored as message %s",
                session_id,
                agent_id,
                session_message.message_id,
                assigned,
            )
            session_message.message_id = assigned
        known = self._known.get(conversation_id)
        if known is not None and appended.conversation_etag:
            # An append leaves the metadata as it was: the next update_agent can use this etag.
            known.etag = appended.conversation_etag

    def read_message(
        self, session_id: str, agent_id: str, message_id: int, **kwargs: Any
    ) -> SessionMessage | None:
        """Read a message (``None`` when it, its agent or its session does not exist)."""
        _validate_message_id(message_id)
        conversation_id = agent_conversation_id(session_id, agent_id)
        if message_id < 0:
            return None
        with _failures(f"reading message {message_id} of agent {agent_id}"):
            try:
                message = self._client.get_message(conversation_id, message_id + 1)
            except NotFound:
                return None
        return session_message_from_api(message)

    def update_message(
        self, session_id: str, agent_id: str, session_message: SessionMessage, **kwargs: Any
    ) -> None:
        """Update a message (a redaction, usually): ``content``, ``toolCalls`` and its exact copy,
        with the message's etag as precondition (``SessionException`` when it does not exist);
        its ``created_at`` stays the stored one, set on ``session_message`` as the file
        repository does."""
        message_id = _validate_message_id(session_message.message_id)
        conversation_id = agent_conversation_id(session_id, agent_id)
        missing = SessionException(f"Message {message_id} does not exist")
        if message_id < 0:
            raise missing
        with _failures(f"updating message {message_id} of agent {agent_id}"):
            for _ in range(_ATTEMPTS):
                try:
                    current = self._client.get_message(conversation_id, message_id + 1)
                except NotFound:
                    raise missing from None
                session_message.created_at = session_message_from_api(current).created_at
                body = session_message_to_api(session_message, kind=current.type)
                patch: MessagePatch = {"content": body.get("content", "")}
                if "toolCalls" in body:
                    patch["toolCalls"] = body["toolCalls"]
                patch["metadata"] = {MESSAGE_KEY: body.get("metadata", {}).get(MESSAGE_KEY)}
                try:
                    self._client.update_message(
                        conversation_id,
                        message_id + 1,
                        patch,
                        update_mask=("content", "toolCalls", f"metadata.{MESSAGE_KEY}"),
                        etag=current.etag,
                        fields=("order",),
                    )
                except StaleEtag:
                    continue
                except NotFound:
                    raise missing from None
                self._known.pop(conversation_id, None)  # its etag moved
                return
        raise SessionException(f"Message {message_id}: other writers kept changing it")

    def list_messages(
        self,
        session_id: str,
        agent_id: str,
        limit: int | None = None,
        offset: int = 0,
        **kwargs: Any,
    ) -> list[SessionMessage]:
        """List an agent's messages, ordered by ``message_id``, from position ``offset`` (as
        Python slices them: ``messages[offset:offset + limit]``); ``SessionException`` when the
        agent does not exist.

        One request when the window lies in the latest 50 messages (``view=FULL``, which also
        gives the count), else one more for the window (its orders, when no message is missing
        below it); where another client deleted or cleared messages, the positions are counted
        from the nearer end."""
        conversation_id = agent_conversation_id(session_id, agent_id)
        with _failures(f"listing messages of agent {agent_id} in session {session_id}"):
            try:
                head = self._client.get_conversation(
                    conversation_id, view="FULL", fields=("messageCount", "messages", "deleted")
                )
            except NotFound:
                raise _agent_missing(session_id, agent_id) from None
            if head.deleted:
                raise _agent_missing(session_id, agent_id)
            count = head.message_count or 0
            tail = head.messages or []
            positions = (
                range(count)[offset:] if limit is None else range(count)[offset : offset + limit]
            )
            if not positions:
                return []
            window = self._window(conversation_id, count, tail, positions.start, positions.stop)
        return [session_message_from_api(m) for m in window]

    def _window(
        self, conversation_id: str, count: int, tail: list[Message], start: int, stop: int
    ) -> list[Message]:
        """The messages at positions ``start`` to ``stop`` (exclusive) of ``count``."""
        in_tail = count - len(tail)
        if start >= in_tail:
            return tail[start - in_tail : stop - in_tail]
        highest = (tail[-1].order or count) if tail else count
        below = 0  # orders before the first message
        if highest != count:
            first = self._client.list_messages_page(conversation_id, page_size=1, fields="order")
            lowest = first.items[0].order if first.items else None
            if lowest is None or highest - lowest + 1 != count:
                return self._walk(conversation_id, count, highest, start, stop)
            below = lowest - 1
        window = list(
            self._client.list_messages(
                conversation_id,
                filter=f"order > {below + start} AND order <= {below + stop}",
                page_size=min(stop - start, _PAGE),
            )
        )
        if [m.order for m in window] != list(range(below + start + 1, below + stop + 1)):
            return self._walk(conversation_id, count, highest, start, stop)  # changed meanwhile
        return window

    def _walk(
        self, conversation_id: str, count: int, highest: int, start: int, stop: int
    ) -> list[Message]:
        """Positions counted from the nearer end, where some orders are missing: the message at
        position ``p`` has an order between ``p + 1`` and ``p + 1 + (highest - count)``."""
        holes = max(highest - count, 0)
        if start <= count - stop:
            items = self._client.list_messages(
                conversation_id, filter=f"order <= {stop + holes}", page_size=min(stop, _PAGE)
            )
            return list(islice(items, stop))[start:]
        newest: Iterator[Message] = self._client.list_messages(
            conversation_id,
            order_by="order desc",
            filter=f"order >= {start + 1} AND order <= {highest}",
            page_size=min(count - start, _PAGE),
        )
        window = list(islice(newest, count - start))
        window.reverse()
        return window[: stop - start]

    # Multi-agents.

    def create_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Create a new multi-agent state in a session (written over when it exists)."""
        multi_agent_id = multi_agent.id
        conversation_id = multi_agent_conversation_id(session_id, multi_agent_id)
        state = multi_agent.serialize_state()
        body = self._conversation_body(
            session_id, "multi-agent", [multi_agent_id], f"Strands {session_id} / {multi_agent_id}"
        )
        body["metadata"] = {SESSION_ID_KEY: session_id, MULTI_AGENT_KEY: state}
        _check_metadata(body["metadata"], f"multi-agent {multi_agent_id}")
        self._register(session_id, conversation_id, {"strandsMultiAgentId": multi_agent_id})
        with _failures(f"creating multi-agent {multi_agent_id} in session {session_id}"):
            try:
                created = self._client.create_conversation(
                    body, conversation_id=conversation_id, fields=_KNOWN_FIELDS
                )
            except AlreadyExists:
                self._update_metadata(
                    conversation_id,
                    lambda _: {MULTI_AGENT_KEY: state},
                    missing=lambda: _multi_agent_missing(session_id, multi_agent_id),
                )
                return
        self._remember(conversation_id, created)

    def read_multi_agent(
        self, session_id: str, multi_agent_id: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Read a multi-agent state (``None`` when it does not exist)."""
        conversation_id = multi_agent_conversation_id(session_id, multi_agent_id)
        known = self._read(conversation_id, f"reading multi-agent {multi_agent_id}")
        state = known.metadata.get(MULTI_AGENT_KEY) if known is not None else None
        return state if isinstance(state, dict) else None

    def update_multi_agent(
        self, session_id: str, multi_agent: MultiAgentBase, **kwargs: Any
    ) -> None:
        """Update a multi-agent state (``SessionException`` when it does not exist)."""
        multi_agent_id = multi_agent.id
        conversation_id = multi_agent_conversation_id(session_id, multi_agent_id)
        state = multi_agent.serialize_state()

        def values(known: _Known) -> JsonObject:
            if not isinstance(known.metadata.get(MULTI_AGENT_KEY), dict):
                raise _multi_agent_missing(session_id, multi_agent_id)
            _check_metadata({**known.metadata, MULTI_AGENT_KEY: state}, "multi-agent")
            return {MULTI_AGENT_KEY: state}

        with _failures(f"updating multi-agent {multi_agent_id} in session {session_id}"):
            self._update_metadata(
                conversation_id,
                values,
                missing=lambda: _multi_agent_missing(session_id, multi_agent_id),
            )

    # Helpers.

    def _conversation_body(
        self, session_id: str, kind: str, agents: list[str], display_name: str
    ) -> ConversationInput:
        return {
            "agents": [a[:512] or "strands" for a in agents],
            "displayName": display_name[:256],
            "category": "strands",
            "labels": {SESSION_LABEL: session_conversation_id(session_id), KIND_LABEL: kind},
        }

    def _remember(self, conversation_id: str, conversation: Conversation) -> None:
        known = _Known.of(conversation)
        if known is not None:
            self._known[conversation_id] = known

    def _load(self, conversation_id: str, what: str) -> Conversation | None:
        """The conversation's etag, metadata and ``deleted`` (``None``: missing)."""
        with _failures(what):
            try:
                return self._client.get_conversation(
                    conversation_id, fields=(*_KNOWN_FIELDS, "deleted")
                )
            except NotFound:
                self._known.pop(conversation_id, None)
                return None

    def _read(self, conversation_id: str, what: str) -> _Known | None:
        """The conversation's etag and metadata (``None``: missing or soft-deleted)."""
        current = self._load(conversation_id, what)
        known = _Known.of(current) if current is not None and not current.deleted else None
        if known is not None:
            self._known[conversation_id] = known
        return known

    def _update_metadata(
        self,
        conversation_id: str,
        values: Callable[[_Known], JsonObject],
        *,
        missing: Callable[[], SessionException],
        create: ConversationInput | None = None,
    ) -> None:
        """Sets top-level ``metadata`` keys (``values``, from the conversation as it is) with the
        conversation's etag as precondition: the etag this repository last saw when it has one
        (no read), else a read's. A refusal (another writer in between) reads again and writes
        again; a lost answer is retried and recognised by the client. ``create``: the body that
        creates the conversation when it is missing (else ``missing()`` is raised)."""
        for _ in range(_ATTEMPTS):
            known = self._known.get(conversation_id)
            if known is None:
                current = self._load(conversation_id, f"reading {conversation_id}")
                if current is not None and (current.deleted or current.etag is None):
                    raise missing()  # soft-deleted: neither written nor created again
                if current is not None:
                    known = _Known.of(current)
            if known is None:
                if create is None:
                    raise missing()
                try:
                    created = self._client.create_conversation(
                        create, conversation_id=conversation_id, fields=_KNOWN_FIELDS
                    )
                except AlreadyExists:
                    continue  # created meanwhile (or soft-deleted: the read says so next)
                self._remember(conversation_id, created)
                return
            update = values(known)
            try:
                updated = self._client.update_conversation(
                    conversation_id,
                    {"metadata": update},
                    update_mask=[f"metadata.{key}" for key in update],
                    etag=known.etag,
                    fields=_KNOWN_FIELDS,
                )
            except StaleEtag:
                self._known.pop(conversation_id, None)
                continue
            except NotFound:
                self._known.pop(conversation_id, None)
                raise missing() from None
            self._remember(conversation_id, updated)
            return
        raise SessionException(f"{conversation_id}: other writers kept changing it")

    def _register(self, session_id: str, member_id: str, entry: JsonObject) -> None:
        """Records a member conversation in the session's, so that ``delete_session`` finds it;
        a session that does not exist yet is created without its record (the file and S3
        repositories create an agent without a session too; ``create_session`` adopts it)."""
        conversation_id = session_conversation_id(session_id)
        shell = self._conversation_body(session_id, "session", ["strands"], f"Strands {session_id}")
        shell["metadata"] = {**ids.session_metadata(session_id), member_id: entry}

        def record(known: _Known) -> JsonObject:
            if not known.is_strands_session:
                raise SessionException(
                    f"Session {session_id}: conversation {conversation_id} exists and is not a"
                    " Strands session"
                )
            return {member_id: entry}

        with _failures(f"recording {member_id} in session {session_id}"):
            self._update_metadata(
                conversation_id,
                record,
                missing=lambda: SessionException(f"Session {session_id} is soft-deleted"),
                create=shell,
            )


class ConversationsSessionManager(RepositorySessionManager, ConversationsSessionRepository):
    """Strands' ``RepositorySessionManager`` over :class:`ConversationsSessionRepository`, as
    ``FileSessionManager`` is over its files: ``Agent(session_manager=
    ConversationsSessionManager(session_id))`` restores the agent from the session (created when
    it does not exist) and stores every message and state change as it happens. The manager is
    its own repository (``manager.list_messages(...)``, ``manager.delete_session(...)``).

    ``client`` and ``user`` as for :class:`ConversationsSessionRepository`.
    """

    def __init__(
        self,
        session_id: str,
        *,
        client: Client | None = None,
        user: str | None = None,
        **kwargs: Any,
    ) -> None:
        ConversationsSessionRepository.__init__(self, client=client, user=user)
        RepositorySessionManager.__init__(
            self, session_id=session_id, session_repository=self, **kwargs
        )


# Errors.


def _agent_missing(session_id: str, agent_id: str) -> SessionException:
    return SessionException(f"Agent {agent_id} in session {session_id} does not exist")


def _multi_agent_missing(session_id: str, multi_agent_id: str) -> SessionException:
    return SessionException(
        f"MultiAgent state {multi_agent_id} in session {session_id} does not exist"
    )


def _member(value: Any) -> bool:
    """Whether a session's metadata entry records a member conversation."""
    return isinstance(value, dict) and ("strandsAgentId" in value or "strandsMultiAgentId" in value)


def _check_metadata(metadata: JsonObject, what: str) -> None:
    size = _size(metadata)
    if size > MAX_METADATA_BYTES:
        raise SessionException(
            f"{what}: its record is {size} bytes serialised; a conversation's metadata holds at"
            f" most {MAX_METADATA_BYTES}"
        )


class _failures:
    """Turns the client's errors into Strands' ``SessionException`` (the cause kept)."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: Any
    ) -> None:
        if isinstance(value, ConversationsError):
            raise SessionException(f"{self.what}: {value}") from value
