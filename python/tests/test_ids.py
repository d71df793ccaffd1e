"""The session-id mapping (``conversations_client.ids``): its rules, and a round trip through the
stack."""

from __future__ import annotations

import random
import string
import uuid

import pytest

from conversations_client import Client
from conversations_client.ids import (
    CONVERSATION_ID,
    SESSION_ID_KEY,
    conversation_id_for,
    is_mapped,
    passes_through,
    session_id_of,
    session_metadata,
)

ODD_IDS = [
    "user_123_session",
    "123",
    "User_123_Session",
    "user-123-session",
    "550E8400-E29B-41D4-A716-446655440000",
    "0d8b1f9e-3c5a-4b8e-9f1a-2b3c4d5e6f70",
    "alice@example.com/chat 1",
    "Café ☕ — 会話",
    "",
    "-",
    "a" * 200,
    "x" * 63 + "y",
    "session--abcdefghijkl",
    "ends-with-",
    "UPPER",
    "a.b.c",
    "a/b",
    "a b",
]


def test_an_id_that_already_fits_passes_through_unchanged() -> None:
    for session_id in [
        "support-chat-7",
        "a",
        "abc123",
        "a" * 63,
        "a1b2c3d4-0000-4000-8000-000000000000",
    ]:
        assert conversation_id_for(session_id) == session_id
        assert passes_through(session_id)
        assert not is_mapped(session_id)


def test_any_other_id_becomes_a_readable_slug_and_a_hash() -> None:
    assert conversation_id_for("user_123_session").startswith("user-123-session--")
    assert conversation_id_for("123").startswith("s-123--")
    assert conversation_id_for("Café ☕ — 会話").startswith("cafe--")
    assert conversation_id_for("").startswith("s--")
    assert conversation_id_for("550E8400-E29B-41D4-A716-446655440000").startswith(
        "s-550e8400-e29b-41d4-a716-446655440000--"
    )
    for session_id in ODD_IDS:
        mapped = conversation_id_for(session_id)
        assert CONVERSATION_ID.match(mapped), (session_id, mapped)
        assert len(mapped) <= 63
        assert is_mapped(mapped) or mapped == session_id == "user-123-session", mapped


def test_the_mapping_is_deterministic_and_never_maps_two_ids_to_one() -> None:
    rng = random.Random(25)
    alphabet = string.ascii_letters + string.digits + "_-.@:/ é☕"
    ids = set(ODD_IDS)
    ids.update(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(5000)
    )
    ids.update(str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000))
    ids.update(str(n) for n in range(2000))

    mapped = {session_id: conversation_id_for(session_id) for session_id in ids}

    assert len(set(mapped.values())) == len(ids)
    assert all(conversation_id_for(s) == m for s, m in mapped.items())
    assert all(CONVERSATION_ID.match(m) for m in mapped.values())


def test_an_id_shaped_like_a_mapped_one_is_mapped_so_it_cannot_collide() -> None:
    taken = conversation_id_for("User_1")
    assert is_mapped(taken)

    assert conversation_id_for(taken) != taken
    assert not passes_through(taken)
    assert conversation_id_for("User_1") != conversation_id_for("user-1")
    assert conversation_id_for("user-1") == "user-1"


def test_a_namespace_maps_the_same_session_id_apart() -> None:
    one = conversation_id_for("s1", namespace="app-one")
    two = conversation_id_for("s1", namespace="app-two")

    assert one != two != "s1"
    assert one.startswith("s1--")
    assert two.startswith("s1--")
    assert conversation_id_for("s1", namespace="app-one") == one


def test_the_hash_is_stable_across_versions() -> None:
    # Pinned: a change here would lose every session a deployed adapter created.
    assert conversation_id_for("user_123_session") == "user-123-session--ie6lmyom4c32"
    assert conversation_id_for("123") == "s-123--uzs2iwjaiixz"


@pytest.mark.parametrize("session_id", ["user_123_session", "123", "Café ☕", "plain-id", ""])
def test_a_session_is_found_again_by_its_own_id_and_its_id_read_back(
    client: Client, session_id: str
) -> None:
    conversation_id = conversation_id_for(session_id)
    client.create_conversation(
        {"agents": ["bot"], "metadata": session_metadata(session_id)},
        conversation_id=conversation_id,
    )

    found = client.get_conversation(conversation_id_for(session_id))

    assert session_id_of(found) == session_id
    assert session_id_of(found.to_json()) == session_id
    assert found.metadata == {SESSION_ID_KEY: session_id}


def test_a_conversation_without_the_key_gives_its_id_only_when_it_passes_through() -> None:
    assert session_id_of({"name": "conversations/plain-id"}) == "plain-id"
    assert session_id_of({"name": f"conversations/{conversation_id_for('x_y')}"}) is None
    assert session_metadata("s", namespace="app") == {
        SESSION_ID_KEY: "s",
        "_sessionNamespace": "app",
    }
