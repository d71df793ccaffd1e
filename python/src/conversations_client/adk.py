"""Google ADK's session service on the Conversations API (issue 25, the ADK part).

.. code-block:: python

    from google.adk.runners import Runner
    from conversations_client import AsyncClient
    from conversations_client.adk import ConversationsSessionService

    service = ConversationsSessionService(client=AsyncClient(token=service_token))
    runner = Runner(app_name="support", agent=root_agent, session_service=service)

:class:`ConversationsSessionService` is a ``BaseSessionService`` (``google-adk==2.13.0``, the
``[adk]`` extra) that answers as ADK's own ``DatabaseSessionService`` does — the same return
values, the same exceptions for missing and stale sessions, the same state scoping — with the
exceptions listed in ``docs/frameworks.md``.

Where things live:

- **A session** is a conversation owned by the pair (the client's caller, the ADK ``user_id``)
  (``X-On-Behalf-Of``, :meth:`~conversations_client.AsyncClient.acting_for`), with the id
  :func:`~conversations_client.ids.conversation_id_for` gives the session id in the app's
  namespace. Its ``metadata`` holds the session-scoped state (one top-level key per state key,
  :func:`state_to_metadata`) and the session's ``last_update_time``; its messages are the
  session's events (:func:`event_to_messages`, :func:`messages_to_event`).
- **``user:`` state** lives in the metadata of one conversation per (app, user), and **``app:``
  state** in one conversation per app, both owned by the caller itself: state that every session
  of a user, or every user of an app, shares. The per-user conversation also lists the app's users
  (``list_sessions`` without a user).
- **``append_event``** stores the event (its messages) and its session-scoped ``state_delta`` in
  one batch append with ``conversationMetadata`` and the session's etag as precondition: both or
  neither, refused when the session changed since it was read (``StaleSessionError``). The
  contract's batch stores the metadata of one conversation only, so the event's ``user:`` and
  ``app:`` deltas follow in one write each (an update with ``allowMissing`` naming only the keys
  set), after the event: they are not atomic with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import weakref
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.platform import time as platform_time
from google.adk.platform import uuid as platform_uuid
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic import ValidationError

from . import ids
from ._client import AsyncClient
from .errors import (
    Aborted,
    AlreadyExists,
    InternalError,
    NotFound,
    ResourceExhausted,
    TransportError,
    Unavailable,
)
from .types import (
    Conversation,
    ConversationInput,
    JsonObject,
    Message,
    MessageInput,
    MessageType,
    ToolCall,
)

__all__ = [
    "STALE_SESSION_ERROR_MESSAGE",
    "ConversationsSessionService",
    "event_to_messages",
    "messages_to_event",
    "metadata_to_state",
    "state_to_metadata",
]

T = TypeVar("T")

STALE_SESSION_ERROR_MESSAGE: Final = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)
"""The message of the ``StaleSessionError`` raised for a stale session: ADK's own
``DatabaseSessionService`` message, word for word."""

# Limits of the contract (shared/API.md, revision 3).
_CONTENT_LIMIT = 64 * 1024  # a message's content, UTF-8 bytes
_METADATA_LIMIT = 16 * 1024  # a message's or a conversation's metadata, compact JSON bytes
_ARGUMENTS_LIMIT = 16 * 1024  # a tool call's arguments
_BATCH_MESSAGES = 50
_BATCH_METADATA_KEYS = 64
_TOOL_CALLS = 32
_TOOL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ON_BEHALF_OF = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")
_MAX_PAGE = 1000

# What this module keeps in a conversation's metadata besides state (ids.py keeps the session id
# and the app name under ids.SESSION_ID_KEY and ids.NAMESPACE_KEY).
_UPDATE_TIME_KEY = "_adkUpdateTime"
_USER_KEY = "_adkUserId"
_APP_KEY = "_adkApp"
# Labels that find an app's conversations again (list_sessions): the app, and what each holds.
_APP_LABEL = "adk_app"
_KIND_LABEL = "adk_kind"
_SESSION_KIND = "session"
_USER_STATE_KIND = "user-state"
_APP_STATE_KIND = "app-state"
# The key of a message's own metadata that holds what it keeps of its event.
_EVENT_KEY = "adk"


def _hash(text: str, length: int = 26) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:length]


def _json_size(value: Any) -> int:
    """The size the service measures: compact JSON, UTF-8."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


# State ↔ conversation metadata.

_PLAIN_STATE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,62}$")


def _metadata_key(state_key: str) -> str:
    """The top-level metadata key of a state key: ``s_<key>`` when the key fits the contract's
    ``metadata.<key>`` rule, else ``h_<hash of the key>``."""
    if _PLAIN_STATE_KEY.match(state_key):
        return f"s_{state_key}"
    return f"h_{_hash(state_key)}"


def _moves(value: Any) -> bool:
    """Whether the service could give ``value`` back changed: it holds a float (the service's
    JSON parser can round one differently in its last bit) or an integer beyond 64 bits."""
    if isinstance(value, float):
        return True
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(_moves(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_moves(v) for v in value)
    return False


def _state_entry(key: str, value: Any) -> JsonObject:
    if _moves(value):
        return {"key": key, "json": json.dumps(value, ensure_ascii=False)}
    return {"key": key, "value": value}


def state_to_metadata(state: Mapping[str, Any]) -> JsonObject:
    """State (keys without their ``app:``/``user:`` prefix) as top-level metadata keys, one per
    state key, each ``{"key": <the state key>, "value": <its value>}``: the contract's
    ``conversationMetadata`` sets and keeps top-level keys one by one (so that two writers of
    different keys never overwrite each other) and removes a key whose value is ``null``, while a
    state value may be ``None`` and a state key any string. A value holding a float (or an
    integer beyond 64 bits) is kept as JSON text instead, ``{"key": …, "json": "<value>"}``, so
    that it comes back to the last bit."""
    return {_metadata_key(key): _state_entry(key, value) for key, value in state.items()}


def metadata_to_state(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The state kept in a conversation's metadata by :func:`state_to_metadata`."""
    state: dict[str, Any] = {}
    for name, entry in (metadata or {}).items():
        if not (
            name.startswith(("s_", "h_"))
            and isinstance(entry, dict)
            and isinstance(entry.get("key"), str)
        ):
            continue
        if isinstance(entry.get("json"), str):
            state[entry["key"]] = json.loads(entry["json"])
        elif "value" in entry:
            state[entry["key"]] = entry["value"]
    return state


# Event ↔ messages.


def _describe(data: Mapping[str, Any]) -> str:
    """A short text for an event whose own text cannot be a message's content (none, or too
    long): what it carries, so that a reader of the conversation sees something true."""
    what: list[str] = []
    for part in (data.get("content") or {}).get("parts") or []:
        if part.get("function_call"):
            what.append(f"call {part['function_call'].get('name', '?')}")
        elif part.get("function_response"):
            what.append(f"result of {part['function_response'].get('name', '?')}")
        elif part.get("inline_data"):
            what.append(f"inline {part['inline_data'].get('mime_type', 'data')}")
        elif part.get("file_data"):
            what.append(f"file {part['file_data'].get('file_uri', '')}".strip())
        elif part.get("thought"):
            what.append("thought")
        elif isinstance(part.get("text"), str):
            what.append(f"text of {len(part['text'])} characters")
        else:
            what.append(next(iter(part), "part"))
    actions = data.get("actions") or {}
    if actions.get("state_delta"):
        what.append("state " + ", ".join(actions["state_delta"]))
    if actions.get("transfer_to_agent"):
        what.append(f"transfer to {actions['transfer_to_agent']}")
    if actions.get("escalate"):
        what.append("escalate")
    if data.get("error_code") or data.get("error_message"):
        what.append(f"error {data.get('error_code', '')} {data.get('error_message', '')}".strip())
    text = f"[{data.get('author') or 'event'}: {'; '.join(what) or 'event'}]"
    return text if len(text) <= 1000 else text[:999] + "…"


def _tool_calls(calls: Sequence[Mapping[str, Any]]) -> list[ToolCall] | None:
    """An event's function calls as the contract's ``toolCalls``, or ``None`` when one of them
    breaks the contract's rules (an id or a name the contract does not take, arguments over
    16 KiB, more than 32 calls): then none of them is native, all are kept in the event."""
    if not calls or len(calls) > _TOOL_CALLS:
        return None
    out: list[ToolCall] = []
    seen: set[str] = set()
    for call in calls:
        call_id, name, arguments = call.get("id"), call.get("name"), call.get("args") or {}
        if (
            not isinstance(call_id, str)
            or not _TOOL_ID.match(call_id)
            or call_id in seen
            or not isinstance(name, str)
            or not _TOOL_NAME.match(name)
            or not isinstance(arguments, dict)
            or _json_size(arguments) > _ARGUMENTS_LIMIT
        ):
            return None
        seen.add(call_id)
        out.append({"id": call_id, "name": name, "arguments": arguments})
    return out


def _fits_content(text: str) -> bool:
    return 0 < len(text.encode("utf-8")) <= _CONTENT_LIMIT


def _char_cost(char: str) -> int:
    """The bytes a character takes inside a compact JSON string (UTF-8, escapes)."""
    code = ord(char)
    if char in '"\\':
        return 2
    if code < 0x20:
        return 6
    if code < 0x80:
        return 1
    if code < 0x800:
        return 2
    return 3 if code < 0x10000 else 4


def _cut(text: str, budget: int) -> list[str]:
    """``text`` cut into pieces whose JSON strings take at most ``budget`` bytes each."""
    pieces: list[str] = []
    start, used = 0, 0
    for index, char in enumerate(text):
        cost = _char_cost(char)
        if used + cost > budget:
            pieces.append(text[start:index])
            start, used = index, 0
        used += cost
    pieces.append(text[start:])
    return pieces


def event_to_messages(event: Event) -> list[MessageInput]:
    """An ADK event as the messages that store it (one batch), the inverse of
    :func:`messages_to_event`.

    What has a native form takes it, so that other clients (the CLI, ``view=FULL``) read the
    session: an event with function responses is one ``TOOL`` message per response (the response
    as JSON in ``content``, the call's id as ``toolCallId``); an event of the user is a ``USER``
    message, any other event with content an ``AGENT`` message (its function calls as
    ``toolCalls``), an event without content (state, a transfer, an error) a ``SYSTEM`` message;
    the event's text (its text parts that are not thoughts) is the ``content``. The whole event
    (``model_dump(mode="json", exclude_none=True)``, as ADK's ``DatabaseSessionService`` stores
    it), without the text and the responses already in ``content``, is kept as JSON text in
    ``metadata["adk"]["json"]`` — text, because the service reads a JSON number into a double
    the way its parser does, which can move a float such as a timestamp by its last bit; when it
    does not fit one message's 16 KiB it is cut into pieces over the metadata of the event's
    messages, with ``SYSTEM`` messages added after them when they are not enough. Every message
    also names its event and its place in it (``eventId``, ``part``, ``parts``).

    Raises ``ValueError`` for an event that would need more than one batch's 50 messages (the
    service refuses a batch over 256 KiB before that: an event over about 240 KiB of JSON
    cannot be stored).
    """
    data = event.model_dump(mode="json", exclude_none=True)
    content = data.get("content") or {}
    parts: list[JsonObject] = content.get("parts") or []
    envelope: JsonObject = {"event": data}
    messages: list[MessageInput] = []

    responses = [
        (i, p["function_response"]) for i, p in enumerate(parts) if p.get("function_response")
    ]
    if responses:
        moved: list[list[int]] = []
        for index, (part_index, response) in enumerate(responses):
            body = response.get("response")
            text = json.dumps(body, ensure_ascii=False) if body is not None else ""
            message: MessageInput = {"type": "TOOL"}
            call_id = response.get("id")
            if isinstance(call_id, str) and _TOOL_ID.match(call_id):
                message["toolCallId"] = call_id
            if body is not None and _fits_content(text):
                message["content"] = text
                del response["response"]
                moved.append([part_index, index])
            else:
                message["content"] = _describe(
                    {"author": data.get("author"), "content": {"parts": [parts[part_index]]}}
                )
            messages.append(message)
        if moved:
            envelope["responses"] = moved
    else:
        texts = [p for p in parts if isinstance(p.get("text"), str) and not p.get("thought")]
        joined = "".join(p["text"] for p in texts)
        calls = [p["function_call"] for p in parts if p.get("function_call")]
        tool_calls = _tool_calls(calls) if data.get("author") != "user" else None
        kind: MessageType
        if not parts:
            kind = "SYSTEM"
        elif data.get("author") == "user":
            kind = "USER"
        else:
            kind = "AGENT"
        message = {"type": kind}
        if tool_calls is not None:
            message["toolCalls"] = tool_calls
        if _fits_content(joined):
            message["content"] = joined
            envelope["text"] = [len(p["text"]) for p in texts]
            for p in texts:
                p["text"] = ""
        elif tool_calls is None:
            message["content"] = _describe(data)
        messages.append(message)

    event_id = str(data.get("id", ""))
    text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    tag_size = _json_size({_EVENT_KEY: {"eventId": event_id, "part": 99, "parts": 99, "json": ""}})
    pieces = _cut(text, _METADATA_LIMIT - tag_size - 16)
    for number in range(len(messages), len(pieces)):
        messages.append(
            {
                "type": "SYSTEM",
                "content": f"[ADK event {event_id}, continued ({number + 1}/{len(pieces)})]",
            }
        )
    if len(messages) > _BATCH_MESSAGES:
        raise ValueError(
            f"event {event_id} needs {len(messages)} messages, more than one batch append takes "
            f"({_BATCH_MESSAGES}): it cannot be stored atomically"
        )
    for number, message in enumerate(messages):
        tag: JsonObject = {"eventId": event_id, "part": number, "parts": len(messages)}
        if number < len(pieces):
            tag["json"] = pieces[number]
        message["metadata"] = {_EVENT_KEY: tag}
    return messages


def _tag(message: Message) -> JsonObject | None:
    """What a message keeps of its event (``metadata["adk"]``), or ``None`` for a message that
    another client appended."""
    tag = (message.metadata or {}).get(_EVENT_KEY)
    if (
        isinstance(tag, dict)
        and isinstance(tag.get("eventId"), str)
        and isinstance(tag.get("part"), int)
        and isinstance(tag.get("parts"), int)
    ):
        return tag
    return None


def _timestamp(rfc3339: str | None) -> float:
    if not rfc3339:
        return 0.0
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _foreign_event(message: Message) -> Event:
    """A message appended by another client (the CLI, a person) as an event: a ``USER``
    message is the user's text, an ``AGENT`` message text (and function calls) of the author
    ``agent``, a ``TOOL`` message the response of its ``toolCallId``, a ``SYSTEM`` message text of
    the author ``system``. Its id is ``message-<order>``, its time the message's ``createTime``."""
    text = message.content or ""
    parts: list[JsonObject] = []
    if message.type == "TOOL":
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        response = (
            body if isinstance(body, dict) else {"result": body if body is not None else text}
        )
        function_response: JsonObject = {"response": response}
        if message.tool_call_id:
            function_response["id"] = message.tool_call_id
        parts.append({"function_response": function_response})
        author, role = "tool", "user"
    else:
        if text:
            parts.append({"text": text})
        for call in message.tool_calls or []:
            parts.append(
                {
                    "function_call": {
                        "id": call["id"],
                        "name": call["name"],
                        "args": call.get("arguments", {}),
                    }
                }
            )
        author = {"USER": "user", "AGENT": "agent"}.get(str(message.type), "system")
        role = "model" if message.type == "AGENT" else "user"
    return Event.model_validate(
        {
            "id": f"message-{message.order}",
            "invocation_id": "",
            "author": author,
            "timestamp": _timestamp(message.create_time),
            "content": {"role": role, "parts": parts},
        }
    )


def messages_to_event(messages: Sequence[Message]) -> Event:
    """The event that :func:`event_to_messages` stored as ``messages`` (read back in ascending
    order), exactly as it was given (``model_dump`` equal); a single message appended by another
    client becomes an event of its own (:func:`_foreign_event`). A message whose content was
    edited since (update message, e.g. a redaction) gives the event its new text or response.

    Raises ``ValueError`` when the messages do not hold a whole event (one was deleted or
    cleared)."""
    if not messages:
        raise ValueError("no messages")
    tags = [_tag(m) for m in messages]
    first = tags[0]
    if first is None:
        if len(messages) != 1:
            raise ValueError("messages of another client are one event each")
        return _foreign_event(messages[0])
    pieces = [t.get("json") if t is not None else None for t in tags]
    if first["parts"] != len(messages) or not isinstance(pieces[0], str):
        raise ValueError(f"the messages of event {first['eventId']} do not hold it whole")
    envelope = json.loads("".join(p for p in pieces if isinstance(p, str)))
    data: JsonObject = envelope["event"]
    parts: list[JsonObject] = (data.get("content") or {}).get("parts") or []
    lengths = envelope.get("text")
    if isinstance(lengths, list):
        text = messages[0].content or ""
        start = 0
        texts = [p for p in parts if isinstance(p.get("text"), str) and not p.get("thought")]
        if len(texts) != len(lengths):
            raise ValueError(f"the text of event {first['eventId']} does not match its parts")
        if sum(lengths) != len(text):
            # The message was edited (update message: a redaction): its content is the text.
            lengths = [len(text)] + [0] * (len(texts) - 1)
        for part, length in zip(texts, lengths, strict=True):
            part["text"] = text[start : start + length]
            start += length
    for part_index, message_index in envelope.get("responses") or []:
        content = messages[message_index].content or ""
        try:
            response = json.loads(content)
        except ValueError:
            response = None
        # An edited response that is no longer a JSON object is kept as its text.
        parts[part_index]["function_response"]["response"] = (
            response if isinstance(response, dict) else {"result": content}
        )
    return Event.model_validate(data)


# The service.


def _user_header(user_id: str) -> str:
    """The ``X-On-Behalf-Of`` value of an ADK user id: the id itself when the header takes it,
    else ``adk:`` and a hash of it (``adk:`` ids are always hashed, so the two cannot meet)."""
    if _ON_BEHALF_OF.match(user_id) and not user_id.startswith("adk:"):
        return user_id
    return f"adk:{_hash(user_id)}"


def _update_time(metadata: Mapping[str, Any] | None) -> float | None:
    """A session's ``last_update_time``, kept as the text of the float (``repr``) so that it
    comes back to the last bit."""
    value = (metadata or {}).get(_UPDATE_TIME_KEY)
    try:
        return float(value) if isinstance(value, str | int | float) else None
    except ValueError:
        return None


def _normalise(session_id: str | None) -> str | None:
    """A session id as ADK's in-memory and SQLite services take it: stripped, blank → none."""
    return session_id.strip() or None if session_id else None


class ConversationsSessionService(BaseSessionService):
    """An ADK session service on the Conversations API.

    ``client`` is the :class:`~conversations_client.AsyncClient` to call with (one service token
    for every end user: each ADK ``user_id`` is sent as ``X-On-Behalf-Of``); by default one made
    from the environment (``CONVERSATIONS_URL``, ``CONVERSATIONS_TOKEN``,
    ``CONVERSATIONS_OWNER``), closed by :meth:`close`. See the module for where sessions, events
    and state live.
    """

    def __init__(self, *, client: AsyncClient | None = None) -> None:
        self._client = client if client is not None else AsyncClient()
        self._owns_client = client is None
        # One lock per session serialises this process's appends to it, as DatabaseSessionService
        # does: two tasks holding the same Session object chain their etags instead of refusing
        # each other.
        self._locks: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def close(self) -> None:
        """Closes the client, when the service made it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> ConversationsSessionService:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Where things are.

    @staticmethod
    def conversation_id(app_name: str, session_id: str) -> str:
        """The id of the conversation that holds a session (the session id, stripped, mapped
        in the app's namespace by :func:`~conversations_client.ids.conversation_id_for`)."""
        return ids.conversation_id_for(_normalise(session_id) or "", namespace=app_name)

    @staticmethod
    def on_behalf_of(user_id: str) -> str:
        """The ``X-On-Behalf-Of`` value of an ADK user id: the id itself when the header takes
        it (``^[A-Za-z0-9._@:-]{1,128}$``), else ``adk:`` and a hash of it (an id that starts
        with ``adk:`` is hashed too, so that the two forms never meet)."""
        return _user_header(user_id)

    def _as_user(self, user_id: str) -> AsyncClient:
        return self._client.acting_for(_user_header(user_id))

    @staticmethod
    def _user_state_id(app_name: str, user_id: str) -> str:
        return ids.conversation_id_for(f"user-state {user_id}", namespace=app_name)

    @staticmethod
    def _app_state_id(app_name: str) -> str:
        return ids.conversation_id_for("app-state", namespace=app_name)

    @staticmethod
    def _labels(app_name: str, kind: str) -> dict[str, str]:
        return {_APP_LABEL: ids.conversation_id_for(app_name), _KIND_LABEL: kind}

    @staticmethod
    def _agents(app_name: str) -> list[str]:
        return [app_name[:512] or "adk"]

    def _filter(self, app_name: str, kind: str) -> str:
        labels = self._labels(app_name, kind)
        return f'labels.{_APP_LABEL} = "{labels[_APP_LABEL]}" AND labels.{_KIND_LABEL} = "{kind}"'

    # State conversations.

    async def _read_state(self, conversation_id: str) -> dict[str, Any]:
        try:
            conversation = await self._client.get_conversation(conversation_id, fields="metadata")
        except NotFound:
            return {}
        return metadata_to_state(conversation.metadata)

    async def _upsert_state(
        self, conversation_id: str, body: ConversationInput, keys: Sequence[str]
    ) -> dict[str, Any]:
        """Sets ``keys`` of ``body["metadata"]`` on the conversation (created from ``body`` when
        it is missing) in one update, and answers the state it holds then.

        An update without an etag is sent once by the client (a repeat could land after another
        writer's change); setting the same keys to the same values again is what this call
        means, so it is sent again here after an unknown outcome, at most three times in all."""
        mask = [f"metadata.{key}" for key in keys]
        for attempt in range(3):
            try:
                conversation = await self._client.update_conversation(
                    conversation_id, body, update_mask=mask, allow_missing=True, fields="metadata"
                )
                return metadata_to_state(conversation.metadata)
            except (
                TransportError,
                Unavailable,
                ResourceExhausted,
                InternalError,
                AlreadyExists,
            ) as e:
                # AlreadyExists: a concurrent upsert created it first; the next attempt updates.
                if attempt == 2:
                    raise
                retry_after = getattr(e, "retry_after", None)
                await asyncio.sleep(min(retry_after or 0.1 * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    async def _write_user_state(
        self, app_name: str, user_id: str, delta: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Sets ``delta`` in the user's state (and registers the user with the app, which
        ``list_sessions`` without a user reads); answers the user's state."""
        entries = state_to_metadata(delta)
        body: ConversationInput = {
            "agents": self._agents(app_name),
            "displayName": f"ADK user state: {user_id}"[:256],
            "labels": self._labels(app_name, _USER_STATE_KIND),
            "metadata": {_APP_KEY: app_name, _USER_KEY: user_id, **entries},
        }
        return await self._upsert_state(
            self._user_state_id(app_name, user_id), body, [_USER_KEY, *entries]
        )

    async def _write_app_state(self, app_name: str, delta: Mapping[str, Any]) -> dict[str, Any]:
        entries = state_to_metadata(delta)
        body: ConversationInput = {
            "agents": self._agents(app_name),
            "displayName": f"ADK app state: {app_name}"[:256],
            "labels": self._labels(app_name, _APP_STATE_KIND),
            "metadata": {_APP_KEY: app_name, **entries},
        }
        return await self._upsert_state(self._app_state_id(app_name), body, list(entries))

    @staticmethod
    def _merge(
        app_state: Mapping[str, Any],
        user_state: Mapping[str, Any],
        session_state: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The state of a returned session, as ADK merges it (session, then ``app:``, then
        ``user:`` keys)."""
        merged = dict(session_state)
        for key, value in app_state.items():
            merged[State.APP_PREFIX + key] = value
        for key, value in user_state.items():
            merged[State.USER_PREFIX + key] = value
        return merged

    @staticmethod
    def _session(
        conversation: Conversation,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any],
        events: list[Event] | None = None,
    ) -> Session:
        update_time = _update_time(conversation.metadata)
        session = Session(
            id=ids.session_id_of(conversation) or "",
            app_name=app_name,
            user_id=user_id,
            state=state,
            events=events or [],
            last_update_time=(
                update_time if update_time is not None else _timestamp(conversation.update_time)
            ),
        )
        session._storage_update_marker = conversation.etag
        return session

    # BaseSessionService.

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Creates a session: a conversation, with the session state in its metadata; ``app:``
        and ``user:`` keys of ``state`` go to the app's and the user's state. A ``session_id``
        is stripped (blank: a generated one, as ADK's in-memory service does); one that exists
        raises ``AlreadyExistsError``."""
        given = _normalise(session_id)
        session_id = given or platform_uuid.new_uuid()
        deltas = _session_util.extract_json_safe_state_delta(state or {})
        now = platform_time.get_time()
        metadata: JsonObject = {
            **ids.session_metadata(session_id, namespace=app_name),
            _USER_KEY: user_id,
            _UPDATE_TIME_KEY: repr(now),
            **state_to_metadata(deltas["session"]),
        }
        try:
            conversation = await self._as_user(user_id).create_conversation(
                {
                    "agents": self._agents(app_name),
                    "displayName": session_id[:256],
                    "labels": self._labels(app_name, _SESSION_KIND),
                    "metadata": metadata,
                },
                conversation_id=self.conversation_id(app_name, session_id),
            )
        except AlreadyExists:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        app_state, user_state = await asyncio.gather(
            self._write_app_state(app_name, deltas["app"])
            if deltas["app"]
            else self._read_state(self._app_state_id(app_name)),
            self._write_user_state(app_name, user_id, deltas["user"]),
        )
        return self._session(
            conversation,
            app_name=app_name,
            user_id=user_id,
            state=self._merge(app_state, user_state, deltas["session"]),
        )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its events, oldest first (``None`` when it does not exist):
        ``config.num_recent_events`` keeps the latest N (0: none), ``config.after_timestamp``
        those from that time on (inclusive), read newest first and only as far as needed — the
        session and its latest 50 messages in one request (``view=FULL``), with the app's and
        the user's state read beside it."""
        session_id = _normalise(session_id) or ""
        limit = config.num_recent_events if config else None
        after = config.after_timestamp if config else None
        client = self._as_user(user_id)
        conversation_id = self.conversation_id(app_name, session_id)
        try:
            conversation, app_state, user_state = await asyncio.gather(
                client.get_conversation(conversation_id, view="BASIC" if limit == 0 else "FULL"),
                self._read_state(self._app_state_id(app_name)),
                self._read_state(self._user_state_id(app_name, user_id)),
            )
        except NotFound:
            return None
        if conversation.deleted:
            return None
        events: list[Event] = []
        if limit != 0:
            latest = conversation.messages or []
            more = (conversation.message_count or 0) > len(latest)
            events = await self._read_events(client, conversation_id, latest, more, limit, after)
        return self._session(
            conversation,
            app_name=app_name,
            user_id=user_id,
            state=self._merge(app_state, user_state, metadata_to_state(conversation.metadata)),
            events=events,
        )

    async def _read_events(
        self,
        client: AsyncClient,
        conversation_id: str,
        latest: list[Message],
        more: bool,
        limit: int | None,
        after: float | None,
    ) -> list[Event]:
        """The session's events, newest first until ``limit`` of them or one older than
        ``after``, from ``latest`` (its newest messages, ascending) and then pages of older
        messages; answered oldest first."""
        pending = list(reversed(latest))  # newest first
        oldest = pending[-1].order if pending else None
        events: list[Event] = []  # newest first
        while True:
            while pending:
                group = self._take_group(pending, more)
                if group is None:
                    break
                event = self._event_of(group)
                if after is not None and event.timestamp < after:
                    return events[::-1]
                events.append(event)
                if limit is not None and len(events) >= limit:
                    return events[::-1]
            if not more or oldest is None:
                return events[::-1]
            size = _MAX_PAGE if limit is None else min(_MAX_PAGE, limit - len(events) + 8)
            page = await client.list_messages_page(
                conversation_id, order_by="order desc", filter=f"order < {oldest}", page_size=size
            )
            pending.extend(page.items)
            more = bool(page.next_page_token) and bool(page.items)
            if page.items:
                oldest = page.items[-1].order

    @staticmethod
    def _take_group(pending: list[Message], more: bool) -> list[Message] | None:
        """Removes the messages of the newest event from ``pending`` (newest first) and gives
        them in ascending order; ``None`` when its older messages are still to be read."""
        head = _tag(pending[0])
        if head is None:
            return [pending.pop(0)]
        count = 1
        while count < len(pending):
            newer, older = _tag(pending[count - 1]), _tag(pending[count])
            if (
                newer is None
                or older is None
                or older["eventId"] != newer["eventId"]
                or older["part"] != newer["part"] - 1
            ):
                break
            count += 1
        last = _tag(pending[count - 1])
        if last is not None and last["part"] != 0 and count == len(pending) and more:
            return None
        group = pending[:count]
        del pending[:count]
        return group[::-1]

    @staticmethod
    def _event_of(group: list[Message]) -> Event:
        try:
            return messages_to_event(group)
        except (ValueError, KeyError, IndexError, TypeError, ValidationError):
            # Part of the event was deleted or cleared: what is left reads as another client's.
            return _foreign_event(group[0])

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """The app's sessions of ``user_id`` (every user's when ``None``), without events, with
        their merged state, least recently updated first (ties by user, then id), as ADK's
        ``DatabaseSessionService`` lists them."""
        if user_id is not None:
            app_state, user_state, conversations = await asyncio.gather(
                self._read_state(self._app_state_id(app_name)),
                self._read_state(self._user_state_id(app_name, user_id)),
                self._session_conversations(app_name, user_id),
            )
            sessions = self._listed(app_name, user_id, app_state, user_state, conversations)
        else:
            app_state, users = await asyncio.gather(
                self._read_state(self._app_state_id(app_name)), self._users(app_name)
            )
            limit = asyncio.Semaphore(4)

            async def one(user: str, user_state: dict[str, Any]) -> list[Session]:
                async with limit:
                    conversations = await self._session_conversations(app_name, user)
                return self._listed(app_name, user, app_state, user_state, conversations)

            found = await asyncio.gather(*(one(u, s) for u, s in users.items()))
            sessions = [s for group in found for s in group]
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    async def _users(self, app_name: str) -> dict[str, dict[str, Any]]:
        """The app's users (those that have a user-state conversation) and their state."""
        users: dict[str, dict[str, Any]] = {}
        async for conversation in self._client.list_conversations(
            filter=self._filter(app_name, _USER_STATE_KIND),
            page_size=_MAX_PAGE,
            fields=["name", "metadata"],
        ):
            metadata = conversation.metadata or {}
            user = metadata.get(_USER_KEY)
            if isinstance(user, str) and metadata.get(_APP_KEY) == app_name:
                users[user] = metadata_to_state(metadata)
        return users

    async def _session_conversations(self, app_name: str, user_id: str) -> list[Conversation]:
        """The conversations of the user's sessions in the app (pages of 1000)."""
        return [
            conversation
            async for conversation in self._as_user(user_id).list_conversations(
                filter=self._filter(app_name, _SESSION_KIND),
                page_size=_MAX_PAGE,
                fields=["name", "metadata", "etag", "updateTime"],
            )
            if (conversation.metadata or {}).get(ids.NAMESPACE_KEY) == app_name
            and ids.SESSION_ID_KEY in (conversation.metadata or {})
        ]

    def _listed(
        self,
        app_name: str,
        user_id: str,
        app_state: Mapping[str, Any],
        user_state: Mapping[str, Any],
        conversations: Sequence[Conversation],
    ) -> list[Session]:
        return [
            self._session(
                conversation,
                app_name=app_name,
                user_id=user_id,
                state=self._merge(app_state, user_state, metadata_to_state(conversation.metadata)),
            )
            for conversation in conversations
        ]

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Deletes the session and its events for good (purge): its id can be created again at
        once. A missing session is not an error. The app's and the user's state stay."""
        session_id = _normalise(session_id) or ""
        await self._as_user(user_id).purge_conversation(
            self.conversation_id(app_name, session_id), allow_missing=True
        )

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's state (keys without ``user:``), ``{}`` when there is none."""
        return await self._read_state(self._user_state_id(app_name, user_id))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Appends ``event`` to the session, as ADK's ``DatabaseSessionService`` does: a partial
        event is not stored; ``temp:`` keys of its ``state_delta`` are applied to ``session`` and
        removed from the event; the event and its session-scoped delta are stored in one batch
        append whose precondition is the etag the session was read with, so that a session
        changed since raises ``StaleSessionError`` (with DatabaseSessionService's message) and
        stores nothing; a missing session raises ``SessionNotFoundError``. Then the ``app:`` and
        ``user:`` deltas are stored, and ``session`` takes the event, its delta, the new etag and
        the event's timestamp as ``last_update_time``. An event equal to one the session already
        holds is not stored again (as ADK's in-memory service)."""
        if event.partial:
            return event
        if any(e == event for e in session.events if e.id == event.id):
            # The same event again (a caller that retried the call): stored once, as ADK's
            # in-memory service dedupes an equal re-delivery.
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        deltas = _session_util.extract_json_safe_state_delta(event.actions.state_delta or {})
        messages = event_to_messages(event)
        key = (session.app_name, session.user_id, session.id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            client = self._as_user(session.user_id)
            conversation_id = self.conversation_id(session.app_name, session.id)
            etag = session._storage_update_marker
            if etag is None:
                etag = await self._check_markerless(client, conversation_id, session)
            entries: JsonObject = {
                **state_to_metadata(deltas["session"]),
                _UPDATE_TIME_KEY: repr(event.timestamp),
            }
            etag = await self._write_overflow(client, conversation_id, entries, etag)
            try:
                result = await client.batch_append_messages(
                    conversation_id, messages, conversation_metadata=entries, etag=etag
                )
            except NotFound:
                raise SessionNotFoundError(f"Session {session.id} not found.") from None
            except Aborted:
                await self._raise_stale_or_missing(client, conversation_id, session)
                raise
            session._storage_update_marker = result.conversation_etag
            session.last_update_time = event.timestamp
            try:
                await self._gather_all(
                    self._write_app_state(session.app_name, deltas["app"])
                    if deltas["app"]
                    else None,
                    self._write_user_state(session.app_name, session.user_id, deltas["user"])
                    if deltas["user"]
                    else None,
                )
            finally:
                # The event is stored: the session takes it even when a shared delta failed.
                self._commit_event_to_session(session, event)
        return event

    @staticmethod
    async def _gather_all(*calls: Awaitable[Any] | None) -> None:
        await asyncio.gather(*(c for c in calls if c is not None))

    async def _check_markerless(
        self, client: AsyncClient, conversation_id: str, session: Session
    ) -> str | None:
        """The etag to append with for a session that carries none (built by hand, or by another
        service), checked as DatabaseSessionService checks such a session: refused when the
        stored session was updated after it and its latest event is not the session's latest."""
        try:
            conversation = await client.get_conversation(
                conversation_id, fields=["metadata", "etag"]
            )
        except NotFound:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        stored = _update_time(conversation.metadata)
        if stored is not None and stored > session.last_update_time:
            page = await client.list_messages_page(
                conversation_id, order_by="order desc", page_size=1, fields="metadata"
            )
            if session.events:
                tag = _tag(page.items[0]) if page.items else None
                matches = tag is not None and tag["eventId"] == session.events[-1].id
            else:
                matches = not page.items
            if not matches:
                raise StaleSessionError(STALE_SESSION_ERROR_MESSAGE)
        return conversation.etag

    async def _write_overflow(
        self, client: AsyncClient, conversation_id: str, entries: JsonObject, etag: str | None
    ) -> str | None:
        """A batch sets at most 64 metadata keys: the keys of a larger delta beyond the first 63
        are set first, by an update with the session's etag as precondition, and the batch then
        takes the etag that update answers — the delta is then not atomic with the event (an
        update that lands and a batch that fails leave those keys set)."""
        if len(entries) <= _BATCH_METADATA_KEYS:
            return etag
        names = [k for k in entries if k != _UPDATE_TIME_KEY]
        overflow = names[_BATCH_METADATA_KEYS - 1 :]
        body: ConversationInput = {"metadata": {k: entries.pop(k) for k in overflow}}
        try:
            conversation = await client.update_conversation(
                conversation_id,
                body,
                update_mask=[f"metadata.{k}" for k in overflow],
                etag=etag,
                fields="etag",
            )
        except Aborted:
            raise StaleSessionError(STALE_SESSION_ERROR_MESSAGE) from None
        return conversation.etag

    async def _raise_stale_or_missing(
        self, client: AsyncClient, conversation_id: str, session: Session
    ) -> None:
        """A batch refused for its etag: the session changed since it was read, or it is gone
        (an etag precondition on a missing conversation is refused the same way)."""
        try:
            await client.get_conversation(conversation_id, fields="etag")
        except NotFound:
            raise SessionNotFoundError(f"Session {session.id} not found.") from None
        raise StaleSessionError(STALE_SESSION_ERROR_MESSAGE)
