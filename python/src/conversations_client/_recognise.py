"""How an etag write tells its own write in the resource read back after a retry was refused
(:attr:`~conversations_client.retry.Safety.RECOGNISED`): which paths the call set, and whether
the resource holds at each of them what the call sent. Pure functions of the JSON sent and read,
as the Rust client's ``client/src/recognise.rs``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CONVERSATION_FIELDS = frozenset(
    {
        "displayName",
        "category",
        "agents",
        "conversationProfile",
        "languageCode",
        "labels",
        "metadata",
        "conversationStage",
        "qualityMetadata",
        "callMetadata",
        "dataSource",
        "sources",
        "phoneNumber",
        "startTime",
        "expireTime",
    }
)
"""The conversation fields that an update writes (the mask's first segment, camelCase)."""

CONVERSATION_OUTPUT = frozenset(
    {
        "name",
        "lifecycleState",
        "endTime",
        "createTime",
        "updateTime",
        "lastUsedTime",
        "deleted",
        "deleteTime",
        "purgeTime",
        "messageCount",
        "owner",
        "etag",
        "can",
        "messages",
    }
)
"""Output-only names that a mask may carry and the service ignores (AIP-203)."""

MESSAGE_FIELDS = ("content", "metadata", "toolCalls")
MESSAGE_OUTPUT = frozenset({"name", "order", "createTime", "updateTime", "etag"})

CONVERSATION_DEFAULTS = {"conversationStage": "VIRTUAL_AGENT_STAGE"}
"""A cleared path that reads as a default value instead of unset."""

Path = tuple[str, ...]


def etags(if_match: str | None, body: str | None) -> list[str] | None:
    """The entity tags a write names as its precondition (an ``If-Match`` list and a body's or
    query's ``etag``), or ``None`` when it names no version (none given, or ``If-Match: *``
    alone): such a write is not refused when repeated, so it is sent once."""
    tags = [t.strip() for t in (if_match or "").split(",") if t.strip() and t.strip() != "*"]
    if body is not None:
        tags.append(body.strip())
    return tags or None


def moved(read: str | None, sent: Sequence[str]) -> bool:
    """Whether the etag read back moved past every etag the call sent."""
    return read is not None and read not in sent


def _camel(segment: str) -> str:
    """``display_name`` → ``displayName`` (a mask's segments may be written in snake_case)."""
    head, *rest = segment.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def conversation_paths(mask: Sequence[str] | None, body: dict[str, Any]) -> list[Path] | None:
    """The paths that an update of a conversation with ``body`` and ``mask`` sets; ``None`` when
    what it sets cannot be compared with a read (``*``, ``ttl``, a path the service would
    refuse)."""
    if body.get("ttl") is not None:
        return None
    if mask is None:
        return [(k,) for k in body if k in CONVERSATION_FIELDS]
    paths: list[Path] = []
    for raw in mask:
        segments = raw.strip().split(".")
        first = _camel(segments[0])
        rest = segments[1:]
        if first in CONVERSATION_OUTPUT:
            continue
        if first not in CONVERSATION_FIELDS:
            return None
        if first in ("labels", "metadata"):
            # One key, taken as written.
            if len(rest) > 1:
                return None
            paths.append((first, *rest))
        else:
            paths.append((first, *(_camel(s) for s in rest)))
    return paths


def message_paths(mask: Sequence[str] | None, body: dict[str, Any]) -> list[Path] | None:
    """The paths that an update of a message with ``body`` and ``mask`` sets; ``None`` when the
    mask holds a path the service would refuse."""
    if mask is None:
        return [(k,) for k in body if k in MESSAGE_FIELDS]
    paths: list[Path] = []
    for raw in mask:
        text = raw.strip()
        if text == "*":
            paths.extend((f,) for f in MESSAGE_FIELDS)
            continue
        first, dot, key = text.partition(".")
        first = _camel(first)
        if not dot:
            if first in MESSAGE_OUTPUT:
                continue
            if first in MESSAGE_FIELDS:
                paths.append((first,))
                continue
            return None
        if first == "metadata" and "." not in key:
            paths.append((first, key))
            continue
        return None
    return paths


_MISSING = object()


def _at(value: Any, path: Path) -> Any:
    for segment in path:
        if not isinstance(value, dict) or segment not in value:
            return _MISSING
        value = value[segment]
    return value


def _unset(value: Any) -> bool:
    """Unset as the service renders it: absent, ``null``, ``""``, ``{}`` or ``[]``."""
    return value is _MISSING or value is None or value in ("", {}, [])


def _same(a: Any, b: Any) -> bool:
    """JSON equality, with numbers equal when their values are (``1`` and ``1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return type(a) is type(b) and bool(a == b)


def holds(
    read: dict[str, Any],
    sent: dict[str, Any],
    paths: Sequence[Path],
    defaults: dict[str, str] | None = None,
) -> bool:
    """Whether ``read`` holds, at every path, what ``sent`` holds there: the same value, or
    unset where the call cleared it (``defaults``: a path that a clear sets to a default value
    instead)."""
    defaults = defaults or {}
    for path in paths:
        want, got = _at(sent, path), _at(read, path)
        if _unset(want):
            default = defaults.get(path[0]) if len(path) == 1 else None
            if not (_unset(got) or (default is not None and got == default)):
                return False
        elif got is _MISSING or not _same(want, got):
            return False
    return True
