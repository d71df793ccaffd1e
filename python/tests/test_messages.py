"""Every message method against the stack, on both clients (the ``api`` fixture)."""

from __future__ import annotations

import uuid

import pytest

from conversations_client import (
    Aborted,
    AlreadyExists,
    Client,
    InvalidArgument,
    MessageInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
)


def conversation(api: Client) -> str:
    conversation_id = f"m-{uuid.uuid4().hex[:12]}"
    api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    return conversation_id


def fill(api: Client, conversation_id: str, n: int) -> None:
    for start in range(0, n, 50):
        api.batch_append_messages(
            conversation_id,
            [
                {"type": "USER", "content": f"m{i}"}
                for i in range(start + 1, min(n, start + 50) + 1)
            ],
        )


def test_an_append_answers_the_message_and_the_conversations_new_etag(api: Client) -> None:
    conversation_id = conversation(api)

    first = api.append_message(conversation_id, {"type": "USER", "content": "Hi"})
    second = api.append_message(
        conversation_id, {"type": "AGENT", "content": "Hello"}, etag=first.conversation_etag
    )
    read = api.get_conversation(conversation_id)

    assert first.order == 1
    assert second.order == 2
    assert first.name == f"conversations/{conversation_id}/messages/1"
    assert first.conversation_id == conversation_id
    assert first.create_time == first.update_time
    assert first.etag is not None
    assert first.etag != first.conversation_etag
    assert second.conversation_etag == read.etag
    assert read.message_count == 2
    assert "conversation_etag" not in second.to_json()
    with pytest.raises(Aborted):
        api.append_message(
            conversation_id, {"type": "USER", "content": "x"}, etag=first.conversation_etag
        )
    with pytest.raises(PreconditionFailed):
        api.append_message(
            conversation_id, {"type": "USER", "content": "x"}, if_match=first.conversation_etag
        )


def test_an_append_repeated_with_its_request_id_appends_nothing(api: Client) -> None:
    conversation_id = conversation(api)
    key = uuid.uuid4()

    first = api.append_message(conversation_id, {"type": "USER", "content": "once"}, request_id=key)
    again = api.append_message(conversation_id, {"type": "USER", "content": "once"}, request_id=key)
    with pytest.raises(InvalidArgument) as other_body:
        api.append_message(conversation_id, {"type": "USER", "content": "other"}, request_id=key)

    assert again.order == first.order == 1
    assert api.get_conversation(conversation_id).message_count == 1
    assert other_body.value.status == 422
    assert [e.field for e in other_body.value.errors] == ["requestId"]


def test_tool_calls_and_their_results_round_trip(api: Client) -> None:
    conversation_id = conversation(api)

    asked = api.append_message(
        conversation_id,
        {
            "type": "AGENT",
            "toolCalls": [
                {"id": "call_1", "name": "get_weather", "arguments": {"city": "Zürich"}},
                {"id": "call_2", "name": "get_time", "arguments": {"tz": {"nested": [1]}}},
            ],
        },
    )
    result = api.append_message(
        conversation_id, {"type": "TOOL", "toolCallId": "call_1", "content": '{"tempC": 21}'}
    )

    read = api.get_message(conversation_id, asked.order or 0)
    assert read.tool_calls == asked.tool_calls
    assert read.tool_calls is not None
    assert read.tool_calls[0]["arguments"] == {"city": "Zürich"}
    assert read.tool_calls[1]["arguments"] == {"tz": {"nested": [1]}}
    assert api.get_message(conversation_id, 2).tool_call_id == result.tool_call_id == "call_1"


def test_a_batch_appends_all_its_messages_with_the_conversation_metadata(api: Client) -> None:
    conversation_id = conversation(api)
    api.update_conversation(conversation_id, {"metadata": {"keep": 1, "drop": 2}})

    batch = api.batch_append_messages(
        conversation_id,
        [{"type": "USER", "content": "q"}, {"type": "AGENT", "content": "a"}],
        conversation_metadata={"state": {"step": 2, "ü": ["x"]}, "drop": None},
    )
    read = api.get_conversation(conversation_id)

    assert [m.order for m in batch.messages] == [1, 2]
    assert [m.content for m in batch.messages] == ["q", "a"]
    assert batch.conversation_etag == read.etag
    assert read.metadata == {"keep": 1, "state": {"step": 2, "ü": ["x"]}}
    assert read.message_count == 2


def test_a_batch_is_all_or_none_and_names_every_broken_message(api: Client) -> None:
    conversation_id = conversation(api)
    broken: list[MessageInput] = [
        {"type": "USER", "content": "fine"},
        {"type": "USER", "content": ""},
        {"type": "TOOL", "content": "x"},
    ]

    with pytest.raises(InvalidArgument) as raised:
        api.batch_append_messages(conversation_id, broken)

    fields = {e.field for e in raised.value.errors}
    assert raised.value.status == 422
    assert "messages[1].content" in fields
    assert api.get_conversation(conversation_id).message_count == 0
    with pytest.raises(InvalidArgument) as metadata:
        api.batch_append_messages(
            conversation_id,
            [{"type": "USER", "content": "x"}],
            conversation_metadata={"bad key!": 1},
        )
    assert [e.field for e in metadata.value.errors] == ["conversationMetadata"]


def test_a_batch_with_a_stale_etag_is_refused(api: Client) -> None:
    conversation_id = conversation(api)
    first = api.batch_append_messages(conversation_id, [{"type": "USER", "content": "1"}])
    api.append_message(conversation_id, {"type": "USER", "content": "2"})

    with pytest.raises(Aborted):
        api.batch_append_messages(
            conversation_id, [{"type": "USER", "content": "3"}], etag=first.conversation_etag
        )
    with pytest.raises(PreconditionFailed):
        api.batch_append_messages(
            conversation_id, [{"type": "USER", "content": "3"}], if_match=first.conversation_etag
        )


def test_a_body_over_256_kib_is_payload_too_large(api: Client) -> None:
    conversation_id = conversation(api)
    big = "x" * 60_000

    with pytest.raises(PayloadTooLarge) as raised:
        api.batch_append_messages(conversation_id, [{"type": "USER", "content": big}] * 5)

    assert raised.value.status == 413


def test_list_messages_pages_both_ways_with_filters(api: Client) -> None:
    conversation_id = conversation(api)
    fill(api, conversation_id, 12)
    api.append_message(conversation_id, {"type": "AGENT", "content": "the agent"})

    ascending = [m.order for m in api.list_messages(conversation_id, page_size=5)]
    descending = [m.order for m in api.list_messages(conversation_id, order_by="order desc")]
    last_three = api.list_messages_page(conversation_id, order_by="order desc", page_size=3)
    window = [
        m.order for m in api.list_messages(conversation_id, filter="order > 3 AND order <= 6")
    ]
    agents = [m.content for m in api.list_messages(conversation_id, filter="type = AGENT")]
    contents = [m.to_json() for m in api.list_messages(conversation_id, fields=["content"])]
    first = api.list_messages_page(conversation_id, page_size=5)
    second = api.list_messages_page(conversation_id, page_size=5, page_token=first.next_page_token)

    assert ascending == list(range(1, 14))
    assert descending == list(range(13, 0, -1))
    assert [m.order for m in last_three.items] == [13, 12, 11]
    assert window == [4, 5, 6]
    assert agents == ["the agent"]
    assert all(set(c) == {"content"} for c in contents)
    assert [m.order for m in second.items] == [6, 7, 8, 9, 10]
    with pytest.raises(InvalidArgument):
        list(api.list_messages(conversation_id, filter="order ~ 3"))
    with pytest.raises(NotFound):
        list(api.list_messages(f"missing-{uuid.uuid4().hex[:8]}"))


def test_update_message_edits_content_and_metadata_keys_with_its_etag(api: Client) -> None:
    conversation_id = conversation(api)
    message = api.append_message(
        conversation_id,
        {"type": "USER", "content": "my card is 4111", "metadata": {"a": 1, "b": 2}},
    )

    redacted = api.update_message(
        conversation_id,
        1,
        {"content": "my card is [redacted]", "metadata": {"a": 10}},
        update_mask=["content", "metadata.a"],
        etag=message.etag,
    )
    with pytest.raises(Aborted):
        api.update_message(conversation_id, 1, {"content": "again"}, etag=message.etag)
    with pytest.raises(PreconditionFailed):
        api.update_message(conversation_id, 1, {"content": "again"}, if_match=message.etag)
    without_mask = api.update_message(conversation_id, 1, {"metadata": {"c": 3}})
    with pytest.raises(InvalidArgument):
        api.update_message(conversation_id, 1, {"content": "x"}, update_mask="type")

    assert redacted.content == "my card is [redacted]"
    assert redacted.metadata == {"a": 10, "b": 2}
    assert redacted.etag != message.etag
    assert redacted.update_time != redacted.create_time
    assert without_mask.metadata == {"c": 3}
    assert without_mask.content == "my card is [redacted]"
    assert api.get_message(conversation_id, 1) == without_mask


def test_get_message_answers_not_found_for_orders_that_do_not_exist(api: Client) -> None:
    conversation_id = conversation(api)
    api.append_message(conversation_id, {"type": "USER", "content": "x"})

    for order in (0, -1, 2):
        with pytest.raises(NotFound):
            api.get_message(conversation_id, order)
    assert api.get_message(conversation_id, 1, fields="order").to_json() == {"order": 1}


def test_delete_message_pops_it_and_its_order_is_never_given_again(api: Client) -> None:
    conversation_id = conversation(api)
    fill(api, conversation_id, 3)
    last = api.get_message(conversation_id, 3)

    with pytest.raises(Aborted):
        api.delete_message(conversation_id, 3, etag=api.get_message(conversation_id, 2).etag)
    popped = api.delete_message(conversation_id, 3, etag=last.etag)
    with pytest.raises(NotFound):
        api.delete_message(conversation_id, 3)
    api.delete_message(conversation_id, 1, if_match=api.get_message(conversation_id, 1).etag)
    after = api.append_message(conversation_id, {"type": "USER", "content": "next"})

    assert popped.content == "m3"
    assert popped.order == 3
    assert after.order == 4
    assert [m.order for m in api.list_messages(conversation_id)] == [2, 4]
    assert api.get_conversation(conversation_id).message_count == 2


def test_clear_messages_removes_a_prefix_or_everything(api: Client) -> None:
    conversation_id = conversation(api)
    fill(api, conversation_id, 15)

    kept = api.clear_messages(conversation_id, through_order=5)
    again = api.clear_messages(conversation_id, through_order=5)
    with pytest.raises(Aborted):
        api.clear_messages(conversation_id, etag=kept.etag)
    with pytest.raises(InvalidArgument) as bad:
        api.clear_messages(conversation_id, through_order=0)
    orders = [m.order for m in api.list_messages(conversation_id)]
    everything = api.clear_messages(conversation_id, if_match=again.etag)
    next_one = api.append_message(conversation_id, {"type": "USER", "content": "fresh"})

    assert kept.message_count == 10
    assert again.message_count == 10
    assert again.etag != kept.etag
    assert [e.field for e in bad.value.errors] == ["throughOrder"]
    assert orders == list(range(6, 16))
    assert everything.message_count == 0
    assert next_one.order == 16
    with pytest.raises(NotFound):
        api.get_message(conversation_id, 15)


def test_a_reused_key_whose_message_was_deleted_is_already_exists(api: Client) -> None:
    conversation_id = conversation(api)
    key = uuid.uuid4()
    api.append_message(conversation_id, {"type": "USER", "content": "x"}, request_id=key)
    api.delete_message(conversation_id, 1)

    with pytest.raises(AlreadyExists):
        api.append_message(conversation_id, {"type": "USER", "content": "x"}, request_id=key)


def test_messages_of_another_user_do_not_exist(api: Client) -> None:
    alice, bob = api.acting_for("alice"), api.acting_for("bob")
    conversation_id = conversation(alice)
    alice.append_message(conversation_id, {"type": "USER", "content": "private"})

    for call in (
        lambda: bob.get_message(conversation_id, 1),
        lambda: list(bob.list_messages(conversation_id)),
        lambda: bob.delete_message(conversation_id, 1),
        lambda: bob.clear_messages(conversation_id),
        lambda: bob.update_message(conversation_id, 1, {"content": "x"}),
    ):
        with pytest.raises(NotFound):
            call()
    assert alice.get_message(conversation_id, 1).content == "private"
