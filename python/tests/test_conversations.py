"""Every conversation method against the stack, on both clients (the ``api`` fixture)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conversations_client import (
    Aborted,
    AlreadyExists,
    Client,
    ConversationInput,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PreconditionFailed,
    StaleEtag,
    Unauthenticated,
)

EVERY_FIELD: ConversationInput = {
    "displayName": "Billing question",
    "category": "billing",
    "agents": ["support-bot", "alice@example.com"],
    "conversationProfile": "projects/p/conversationProfiles/default",
    "languageCode": "pt-BR",
    "labels": {"team": "a", "tier": "gold"},
    "metadata": {"ticket": {"id": 42, "tags": ["x", "y"]}, "score": 0.5},
    "conversationStage": "HUMAN_ASSIST_STAGE",
    "startTime": "2026-11-23T08:00:00.123456Z",
    "qualityMetadata": {
        "customerSatisfactionRating": 4,
        "waitDuration": "30s",
        "menuPath": "billing/refunds",
        "agentInfo": [{"agentId": "a-1", "displayName": "Alice", "team": "t"}],
    },
    "callMetadata": {"customerChannel": 1, "agentChannel": 2},
    "dataSource": {"gcsSource": {"audioUri": "gs://bucket/a.wav"}},
    "sources": [{"model": "m", "explore": "e"}],
    "phoneNumber": {"countryCode": 1, "phoneNumber": "+14155550100"},
}


def new_id() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def test_a_created_conversation_reads_back_with_every_field_it_was_given(api: Client) -> None:
    conversation_id = new_id()

    created = api.create_conversation(EVERY_FIELD, conversation_id=conversation_id)
    read = api.get_conversation(conversation_id)

    assert created.id == conversation_id
    assert created.name == f"conversations/{conversation_id}"
    assert read == created
    got = read.to_json()
    for key, value in EVERY_FIELD.items():
        assert got[key] == value, key
    assert read.lifecycle_state == "IN_PROGRESS"
    assert read.message_count == 0
    assert read.etag is not None
    assert read.etag.startswith('"')
    assert read.can is not None
    assert read.can["appendMessage"] is True
    assert read.owner == api.owner
    assert read.extra == {}


def test_a_create_without_an_id_gets_a_uuid_from_the_service(api: Client) -> None:
    created = api.create_conversation({"agents": ["bot"]})

    assert created.id is not None
    assert str(uuid.UUID(created.id)) == created.id


def test_a_create_with_a_taken_id_raises_already_exists(api: Client) -> None:
    conversation_id = new_id()
    api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    with pytest.raises(AlreadyExists) as raised:
        api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    assert raised.value.status == 409
    assert raised.value.code == "ALREADY_EXISTS"
    assert raised.value.request_id


def test_a_create_repeated_with_its_request_id_answers_the_first_conversation(
    api: Client,
) -> None:
    key = uuid.uuid4()

    first = api.create_conversation({"agents": ["bot"]}, request_id=key)
    again = api.create_conversation({"agents": ["bot"]}, request_id=str(key))

    assert again.id == first.id
    assert len(list(api.list_conversations())) == 1


def test_get_with_the_full_view_carries_the_latest_messages_and_fields_narrows_it(
    api: Client,
) -> None:
    conversation_id = new_id()
    api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    api.batch_append_messages(
        conversation_id,
        [{"type": "USER", "content": f"m{i}"} for i in range(1, 4)],
    )

    full = api.get_conversation(conversation_id, view="FULL")
    narrow = api.get_conversation(conversation_id, fields=["name", "etag"])
    narrow_text = api.get_conversation(conversation_id, view="FULL", fields="name,messages")

    assert full.messages is not None
    assert [m.content for m in full.messages] == ["m1", "m2", "m3"]
    assert [m.order for m in full.messages] == [1, 2, 3]
    assert narrow.to_json() == {"name": full.name, "etag": full.etag}
    assert narrow_text.agents is None
    assert narrow_text.messages is not None
    assert len(narrow_text.messages) == 3
    assert api.get_conversation(conversation_id, view="BASIC").messages is None


def test_an_unknown_view_or_field_is_invalid_argument(api: Client) -> None:
    conversation_id = new_id()
    api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    with pytest.raises(InvalidArgument) as view:
        api.get_conversation(conversation_id, view="NOPE")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as fields:
        api.get_conversation(conversation_id, fields=["nope"])

    assert view.value.status == 400
    assert fields.value.status == 400


def test_list_follows_the_next_page_token_over_several_pages(api: Client) -> None:
    ids = [new_id() for _ in range(7)]
    for conversation_id in ids:
        api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    newest_first = [c.id for c in api.list_conversations(page_size=2)]
    oldest_first = [c.id for c in api.list_conversations(page_size=3, order_by="createTime asc")]
    first = api.list_conversations_page(page_size=3)
    second = api.list_conversations_page(page_size=3, page_token=first.next_page_token)
    last = api.list_conversations_page(page_size=3, page_token=second.next_page_token)

    assert newest_first == list(reversed(ids))
    assert oldest_first == ids
    assert [c.id for c in first.items + second.items + last.items] == newest_first
    assert first.next_page_token
    assert second.next_page_token
    assert last.next_page_token is None


def test_list_takes_a_filter_an_order_show_deleted_and_fields(api: Client) -> None:
    a, b, c = new_id(), new_id(), new_id()
    api.create_conversation({"agents": ["bot"], "labels": {"team": "x"}}, conversation_id=a)
    api.create_conversation({"agents": ["bot"], "category": "sales"}, conversation_id=b)
    api.create_conversation({"agents": ["other"]}, conversation_id=c)
    api.complete_conversation(b)
    api.delete_conversation(c)
    api.append_message(a, {"type": "USER", "content": "latest activity"})

    labelled = [x.id for x in api.list_conversations(filter='labels.team = "x"')]
    completed = [x.id for x in api.list_conversations(filter="lifecycleState = COMPLETED")]
    both = [x.id for x in api.list_conversations(filter='category = "sales" AND agents:"bot"')]
    live = [x.id for x in api.list_conversations()]
    every = [x.id for x in api.list_conversations(show_deleted=True)]
    recent = [x.id for x in api.list_conversations(order_by="lastUsedTime desc")]
    names = [x.to_json() for x in api.list_conversations(fields="name")]

    assert labelled == [a]
    assert completed == [b]
    assert both == [b]
    assert set(live) == {a, b}
    assert len(live) == 2
    assert set(every) == {a, b, c}
    assert len(every) == 3
    assert recent[0] == a
    assert all(set(n) == {"name"} for n in names)
    with pytest.raises(InvalidArgument):
        list(api.list_conversations(filter="nonsense"))
    with pytest.raises(InvalidArgument):
        api.list_conversations_page(page_size=-1)


def test_update_writes_the_paths_of_its_mask_and_leaves_the_others(api: Client) -> None:
    conversation_id = new_id()
    api.create_conversation(EVERY_FIELD, conversation_id=conversation_id)

    updated = api.update_conversation(
        conversation_id,
        {
            "displayName": "Renamed",
            "category": "ignored: not in the mask",
            "labels": {"new": "v"},
            "metadata": {"ticket": {"id": 43}},
            "qualityMetadata": {"customerSatisfactionRating": 5},
        },
        update_mask=[
            "displayName",
            "labels.new",
            "labels.team",
            "metadata.ticket",
            "quality_metadata.customer_satisfaction_rating",
        ],
    )

    assert updated.display_name == "Renamed"
    assert updated.category == "billing"
    assert updated.labels == {"tier": "gold", "new": "v"}
    assert updated.metadata == {"ticket": {"id": 43}, "score": 0.5}
    assert updated.quality_metadata is not None
    assert updated.quality_metadata["customerSatisfactionRating"] == 5
    assert updated.quality_metadata["menuPath"] == "billing/refunds"
    assert api.get_conversation(conversation_id) == updated


def test_update_without_a_mask_writes_the_fields_present(api: Client) -> None:
    conversation_id = new_id()
    api.create_conversation(EVERY_FIELD, conversation_id=conversation_id)

    updated = api.update_conversation(conversation_id, {"category": "refunds"})

    assert updated.category == "refunds"
    assert updated.display_name == "Billing question"


def test_update_with_allow_missing_creates_the_conversation(api: Client) -> None:
    conversation_id = new_id()

    created = api.update_conversation(
        conversation_id, {"agents": ["bot"], "displayName": "made by update"}, allow_missing=True
    )

    assert created.id == conversation_id
    assert api.get_conversation(conversation_id).display_name == "made by update"
    with pytest.raises(NotFound):
        api.update_conversation(new_id(), {"displayName": "x"})


def test_a_stale_etag_is_aborted_in_the_body_and_precondition_failed_as_if_match(
    api: Client,
) -> None:
    conversation_id = new_id()
    first = api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    current = api.update_conversation(conversation_id, {"displayName": "one"}, etag=first.etag)
    assert first.etag is not None
    assert current.etag is not None

    with pytest.raises(Aborted) as body:
        api.update_conversation(conversation_id, {"displayName": "two"}, etag=first.etag)
    with pytest.raises(PreconditionFailed) as header:
        api.update_conversation(conversation_id, {"displayName": "two"}, if_match=first.etag)
    third = api.update_conversation(
        conversation_id, {"displayName": "three"}, if_match=current.etag
    )

    assert body.value.status == 409
    assert body.value.code == "ABORTED"
    assert header.value.status == 412
    assert header.value.code == "FAILED_PRECONDITION"
    assert isinstance(body.value, StaleEtag)
    assert isinstance(header.value, StaleEtag)
    assert third.display_name == "three"


def test_an_update_of_an_unknown_path_or_an_immutable_field_is_invalid_argument(
    api: Client,
) -> None:
    conversation_id = new_id()
    api.create_conversation(EVERY_FIELD, conversation_id=conversation_id)

    with pytest.raises(InvalidArgument):
        api.update_conversation(conversation_id, {"displayName": "x"}, update_mask="nope")
    with pytest.raises(InvalidArgument):
        api.update_conversation(conversation_id, {"conversationProfile": "another"})


def test_delete_and_undelete_move_a_conversation_out_of_the_list_and_back(api: Client) -> None:
    conversation_id = new_id()
    created = api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    deleted = api.delete_conversation(conversation_id, etag=created.etag)
    listed_while_deleted = [c.id for c in api.list_conversations()]
    read_while_deleted = api.get_conversation(conversation_id)
    with pytest.raises(NotFound):
        api.delete_conversation(conversation_id)
    again = api.delete_conversation(conversation_id, allow_missing=True)
    undeleted = api.undelete_conversation(conversation_id, etag=again.etag)
    with pytest.raises(AlreadyExists):
        api.undelete_conversation(conversation_id)

    assert deleted.deleted is True
    assert deleted.delete_time
    assert deleted.purge_time
    assert listed_while_deleted == []
    assert read_while_deleted.deleted is True
    assert undeleted.deleted is not True
    assert [c.id for c in api.list_conversations()] == [conversation_id]


def test_complete_sets_the_state_once_and_refuses_appends(api: Client) -> None:
    conversation_id = new_id()
    created = api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    completed = api.complete_conversation(conversation_id, if_match=created.etag)
    again = api.complete_conversation(conversation_id)

    assert completed.lifecycle_state == "COMPLETED"
    assert completed.is_completed
    assert completed.end_time is not None
    assert again.etag == completed.etag
    with pytest.raises(FailedPrecondition) as raised:
        api.append_message(conversation_id, {"type": "USER", "content": "late"})
    assert raised.value.status == 400
    assert not isinstance(raised.value, StaleEtag)


def test_purge_removes_the_conversation_at_once_and_frees_its_id(api: Client) -> None:
    conversation_id = new_id()
    api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    api.append_message(conversation_id, {"type": "USER", "content": "personal data"})
    current = api.get_conversation(conversation_id)

    with pytest.raises(Aborted):
        api.purge_conversation(conversation_id, etag='"0"')
    api.purge_conversation(conversation_id, etag=current.etag)
    with pytest.raises(NotFound):
        api.get_conversation(conversation_id)
    with pytest.raises(NotFound):
        api.purge_conversation(conversation_id)
    api.purge_conversation(conversation_id, allow_missing=True)
    again = api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    assert again.message_count == 0
    assert list(api.list_messages(conversation_id)) == []


def test_a_conversation_of_another_owner_does_not_exist(api: Client, make_client: Any) -> None:
    conversation_id = new_id()
    api.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    other = make_client(api.base_url, owner=f"py-{uuid.uuid4().hex}")

    assert list(other.list_conversations()) == []
    with pytest.raises(NotFound):
        other.get_conversation(conversation_id)
    with pytest.raises(NotFound):
        other.append_message(conversation_id, {"type": "USER", "content": "x"})
    with pytest.raises(NotFound):
        other.purge_conversation(conversation_id)
    other.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)
    assert api.get_conversation(conversation_id).owner == api.owner


def test_acting_for_a_user_is_an_owner_of_its_own_sharing_the_pool(api: Client) -> None:
    conversation_id = new_id()
    alice = api.acting_for("alice")
    bob = api.acting_for("bob")

    created = alice.create_conversation({"agents": ["bot"]}, conversation_id=conversation_id)

    assert created.owner == f"{api.owner}/alice"
    assert alice.on_behalf_of == "alice"
    assert [c.id for c in alice.list_conversations()] == [conversation_id]
    assert list(bob.list_conversations()) == []
    assert list(api.list_conversations()) == []
    with pytest.raises(NotFound):
        bob.get_conversation(conversation_id)
    with pytest.raises(NotFound):
        api.get_conversation(conversation_id)
    assert alice.acting_for(None).on_behalf_of is None
    inner = getattr(api, "_inner", api)
    assert getattr(alice, "_inner", alice)._http is inner._http


def test_unicode_and_nested_json_come_back_as_they_were_sent(api: Client) -> None:
    conversation_id = new_id()
    metadata: dict[str, Any] = {
        "text": "héllo wörld — 你好 — مرحبا — 🦀👩‍👩‍👧",
        "nested": {"a": [1, 2.5, -3, True, False, None, {"deep": [[[]], {"x": "ü"}]}]},
        "big": 9007199254740991,
        "empty": {"object": {}, "list": []},
        "escapes": 'quote " backslash \\ newline \n tab \t nul-free',
    }

    created = api.create_conversation(
        {"agents": ["bøt 🤖"], "displayName": "Ünïcödé ✓", "metadata": metadata},
        conversation_id=conversation_id,
    )
    message = api.append_message(
        conversation_id,
        {"type": "USER", "content": metadata["text"], "metadata": metadata},
    )

    read = api.get_conversation(conversation_id)
    assert read.metadata == created.metadata == metadata
    assert read.agents == ["bøt 🤖"]
    assert read.display_name == "Ünïcödé ✓"
    assert api.get_message(conversation_id, 1).metadata == message.metadata == metadata
    assert api.get_message(conversation_id, 1).content == metadata["text"]


def test_a_call_without_an_identity_is_unauthenticated(make_client: Any, stack_url: str) -> None:
    anonymous = make_client(stack_url, owner="", token="")

    with pytest.raises(Unauthenticated) as raised:
        anonymous.list_conversations_page()

    assert raised.value.status == 401
    assert raised.value.code == "UNAUTHENTICATED"
