"""The async client as async code uses it: ``async for`` over pages, and calls racing on one
event loop."""

from __future__ import annotations

import asyncio
import uuid

from conversations_client import AsyncClient


async def test_async_for_follows_every_page_of_conversations_and_messages(
    aclient: AsyncClient,
) -> None:
    ids = [f"a-{uuid.uuid4().hex[:12]}" for _ in range(5)]
    for conversation_id in ids:
        await aclient.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    await aclient.batch_append_messages(
        ids[0], [{"type": "USER", "content": str(i)} for i in range(1, 8)]
    )

    conversations = [c.id async for c in aclient.list_conversations(page_size=2)]
    messages = [m.order async for m in aclient.list_messages(ids[0], page_size=3)]
    newest = [m.order async for m in aclient.list_messages(ids[0], order_by="order desc")]

    assert conversations == list(reversed(ids))
    assert messages == list(range(1, 8))
    assert newest == list(range(7, 0, -1))


async def test_appends_racing_on_one_loop_each_land_once_with_their_own_order(
    aclient: AsyncClient,
) -> None:
    conversation_id = f"a-{uuid.uuid4().hex[:12]}"
    await aclient.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    appended = await asyncio.gather(
        *(
            aclient.append_message(conversation_id, {"type": "USER", "content": f"m{i}"})
            for i in range(10)
        )
    )

    orders = sorted(m.order or 0 for m in appended)
    stored = [m async for m in aclient.list_messages(conversation_id)]
    assert orders == list(range(1, 11))
    assert sorted(m.content or "" for m in stored) == sorted(f"m{i}" for i in range(10))
    assert (await aclient.get_conversation(conversation_id)).message_count == 10


async def test_users_acted_for_concurrently_see_only_their_own_sessions(
    aclient: AsyncClient,
) -> None:
    users = [f"user-{i}" for i in range(5)]

    async def session_of(user: str) -> list[str | None]:
        as_user = aclient.acting_for(user)
        await as_user.create_conversation({"agents": ["bot"]}, conversation_id="same-id")
        await as_user.append_message("same-id", {"type": "USER", "content": user})
        return [m.content async for m in as_user.list_messages("same-id")]

    seen = await asyncio.gather(*(session_of(u) for u in users))

    assert seen == [[u] for u in users]
    assert [c async for c in aclient.list_conversations()] == []
