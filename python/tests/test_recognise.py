"""How an etag write tells its own write in a read back (``_recognise``), as the Rust client's
``client/src/recognise.rs`` tests it."""

from __future__ import annotations

from conversations_client._recognise import (
    conversation_paths,
    etags,
    holds,
    message_paths,
    moved,
)


def test_the_etags_of_a_precondition_leave_out_a_wildcard() -> None:
    assert etags(None, None) is None
    assert etags("*", None) is None
    assert etags(' "a", "b" ', '"c"') == ['"a"', '"b"', '"c"']
    assert etags("*", '"c"') == ['"c"']
    assert moved('"d"', ['"a"'])
    assert not moved('"a"', ['"a"'])
    assert not moved(None, ['"a"'])


def test_a_conversation_mask_gives_camel_case_paths_and_keys_as_written() -> None:
    got = conversation_paths(
        [
            " display_name ",
            "data_source.gcs_source.audio_uri",
            "labels.team_a",
            "metadata.some_key",
            "updateTime",
        ],
        {"displayName": "x"},
    )

    assert got == [
        ("displayName",),
        ("dataSource", "gcsSource", "audioUri"),
        ("labels", "team_a"),
        ("metadata", "some_key"),
    ]
    assert conversation_paths(None, {"displayName": "x", "etag": '"e"'}) == [("displayName",)]


def test_what_the_service_rewrites_cannot_be_compared() -> None:
    body = {"displayName": "x"}

    assert conversation_paths(["*"], body) is None
    assert conversation_paths(None, {"ttl": "60s"}) is None
    assert conversation_paths(["nope"], body) is None
    assert conversation_paths(["labels.a.b"], body) is None


def test_a_message_mask_gives_its_three_fields() -> None:
    body = {"content": "x", "etag": '"e"'}

    assert message_paths(["*"], body) == [("content",), ("metadata",), ("toolCalls",)]
    assert message_paths(["tool_calls", "metadata.k", "order"], body) == [
        ("toolCalls",),
        ("metadata", "k"),
    ]
    assert message_paths(None, body) == [("content",)]
    assert message_paths(["type"], body) is None


def test_a_read_holds_a_write_when_every_path_has_the_value_sent() -> None:
    sent = {"displayName": "Billing", "labels": {"team": "a"}, "metadata": {"n": 1}}
    read = {
        "displayName": "Billing",
        "labels": {"team": "a", "other": "b"},
        "metadata": {"n": 1.0},
        "category": "kept",
    }
    paths = [("displayName",), ("labels", "team"), ("metadata",)]

    assert holds(read, sent, paths)
    other = {"displayName": "Sales", "labels": {"team": "a"}, "metadata": {"n": 1}}
    assert not holds(other, sent, paths)
    assert not holds({**read, "metadata": {"n": True}}, sent, paths)


def test_a_cleared_path_must_read_as_unset_or_as_its_default() -> None:
    sent = {"displayName": ""}
    paths = [("displayName",), ("labels", "gone"), ("conversationStage",)]
    defaults = {"conversationStage": "VIRTUAL_AGENT_STAGE"}

    assert holds({"labels": {}}, sent, paths)
    assert not holds({"displayName": "still"}, sent, paths)
    staged = {"conversationStage": "VIRTUAL_AGENT_STAGE"}
    assert holds(staged, sent, paths, defaults)
    assert not holds(staged, sent, paths)
    assert not holds({"conversationStage": "HUMAN_ASSIST_STAGE"}, sent, paths, defaults)
