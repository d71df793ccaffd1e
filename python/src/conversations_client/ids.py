"""Framework session ids ↔ conversation ids (issue 25, "Identity").

An agent framework names a session with any string (``user_123_session``, ``123``, a UUID, an
e-mail address, text in any script); a conversation id chosen by a client must match
``^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$``. :func:`conversation_id_for` maps the one to the other,
deterministically (the same session id always maps to the same conversation id, in every process
and version of this package) and without collisions between distinct session ids:

1. A session id that is already a valid conversation id passes through unchanged
   (``support-chat-7`` → ``support-chat-7``) — unless it ends like a mapped id (rule 2's
   ``--`` and twelve base32 characters), which is mapped as any other string, so that a mapped
   id and a passed-through one can never be equal.
2. Any other string becomes ``<slug>--<hash>``:

   - ``hash``: the first 12 characters of the lower-case base32 of the SHA-256 of the session id's
     UTF-8 bytes (60 bits): it tells the session ids apart, case and punctuation included
     (``User_1`` and ``user-1`` differ);
   - ``slug``: the session id made readable — Unicode decomposed (NFKD) and reduced to ASCII,
     lower-cased, every run of other characters (``-`` included) one ``-``, no ``-`` at either
     end, at most 49 characters (so the id is at most 63), ``s-`` in front when it does not start
     with a letter, ``s`` when nothing is left.

   ``user_123_session`` → ``user-123-session--<hash>``, ``123`` → ``s-123--<hash>``,
   ``Café ☕`` → ``cafe--<hash>``, ``""`` → ``s--<hash>``.

With a ``namespace`` (a framework's app name, for one), every id is mapped (rule 2), and the hash
covers the namespace too: the same session id in two namespaces maps to two conversations.

Going back: the slug and the hash cannot give the session id back, so a conversation created
for a session keeps it in its ``metadata`` under :data:`SESSION_ID_KEY` (:func:`session_metadata`
builds that object, the adapters send it on create), where :func:`session_id_of` reads it; a
passed-through id is its own session id. A session is found again by mapping its id again, never
by a search.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .types import Conversation, JsonObject

CONVERSATION_ID = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
"""A conversation id chosen by a client (AIP-122)."""

HASH_LENGTH = 12
SEPARATOR = "--"
MAX_LENGTH = 63
_SLUG_LENGTH = MAX_LENGTH - len(SEPARATOR) - HASH_LENGTH

_MAPPED_TAIL = re.compile(rf"{SEPARATOR}[a-z2-7]{{{HASH_LENGTH}}}$")
_MAPPED = re.compile(rf"^[a-z](?:[a-z0-9]|-(?!-))*{SEPARATOR}[a-z2-7]{{{HASH_LENGTH}}}$")

SESSION_ID_KEY = "_sessionId"
"""The top-level ``metadata`` key that keeps a mapped conversation's original session id."""
NAMESPACE_KEY = "_sessionNamespace"
"""The top-level ``metadata`` key that keeps the namespace of a mapping, when there was one."""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:HASH_LENGTH]


def slug(text: str) -> str:
    """``text`` as the readable part of a mapped id (rule 2)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not out:
        return "s"
    if not out[0].isalpha():
        out = "s-" + out
    return out[:_SLUG_LENGTH].rstrip("-")


def passes_through(session_id: str) -> bool:
    """Whether ``session_id`` is used as the conversation id as it is (rule 1)."""
    return bool(CONVERSATION_ID.match(session_id)) and not _MAPPED_TAIL.search(session_id)


def conversation_id_for(session_id: str, *, namespace: str | None = None) -> str:
    """The conversation id of a framework's session id (see the module's rules)."""
    if namespace is None and passes_through(session_id):
        return session_id
    hashed = session_id if namespace is None else f"{namespace}\x00{session_id}"
    return f"{slug(session_id)}{SEPARATOR}{_hash(hashed)}"


def is_mapped(conversation_id: str) -> bool:
    """Whether ``conversation_id`` has the form of a mapped id (rule 2)."""
    return bool(_MAPPED.match(conversation_id)) and len(conversation_id) <= MAX_LENGTH


def session_metadata(session_id: str, *, namespace: str | None = None) -> JsonObject:
    """The ``metadata`` keys that keep a session id with its conversation (sent on create)."""
    data: JsonObject = {SESSION_ID_KEY: session_id}
    if namespace is not None:
        data[NAMESPACE_KEY] = namespace
    return data


def session_id_of(conversation: Conversation | Mapping[str, Any]) -> str | None:
    """The session id a conversation was created for: its ``metadata``'s :data:`SESSION_ID_KEY`,
    else its id when that id passes through (rule 1: an id chosen by a client, or a server's
    UUID that starts with a letter); ``None`` otherwise (a mapped id without its metadata)."""
    if isinstance(conversation, Conversation):
        metadata = conversation.metadata or {}
        conversation_id = conversation.id
    else:
        metadata = conversation.get("metadata") or {}
        name = conversation.get("name")
        conversation_id = name.rsplit("/", 1)[-1] if isinstance(name, str) else None
    kept = metadata.get(SESSION_ID_KEY)
    if isinstance(kept, str):
        return kept
    if conversation_id is not None and passes_through(conversation_id):
        return conversation_id
    return None
