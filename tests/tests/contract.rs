//! Contract rules that hold across methods: `fields` on every method, the `ETag` header on every
//! single-resource answer, one `UpdateItem` for any mix of mask paths, paging in either order, and
//! a stale `If-Match` on every write that takes one (the conversation's etag, or the message's).

use api_tests::{Method, Req, TestApp, id, owner};
use serde_json::{Value, json};

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn fields_selects_the_answer_s_fields_on_every_method_and_an_unknown_one_is_400() {
    let t = TestApp::new().await;
    let o = owner();
    let (i, j, k) = (id(), id(), id());
    t.create(&o, &j, json!({"agents": ["a"]})).await;
    t.create(&o, &k, json!({"agents": ["a"]})).await;
    let with = |req: Req, fields: &str| req.owner(&o).query("fields", fields);
    // Methods answering a conversation.
    let created = t
        .call(with(
            Req::new(Method::Create)
                .query("conversationId", &i)
                .json(json!({"agents": ["a"], "displayName": "d"})),
            "name,etag",
        ))
        .await;
    assert_eq!(
        (created.status, keys(&created.body)),
        (201, vec!["etag".into(), "name".into()])
    );
    let conversation_calls = [
        Req::new(Method::Get).id(&i),
        Req::new(Method::Update)
            .id(&i)
            .json(json!({"displayName": "e"})),
        Req::new(Method::Complete).id(&i),
        Req::new(Method::ClearMessages).id(&i),
        Req::new(Method::Delete).id(&i),
        Req::new(Method::Undelete).id(&i),
    ];
    for req in conversation_calls {
        let res = t.call(with(req, "name, etag,displayName")).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(keys(&res.body), ["displayName", "etag", "name"]);
    }
    // List: on each item.
    let listed = t.call(with(Req::new(Method::List), "name")).await;
    assert_eq!(listed.status, 200);
    for item in listed.body["conversations"].as_array().expect("items") {
        assert_eq!(keys(item), ["name"]);
    }
    // Methods answering messages.
    let appended = t
        .call(with(
            Req::new(Method::Append)
                .id(&j)
                .json(json!({"type": "USER", "content": "hi"})),
            "order,content",
        ))
        .await;
    assert_eq!(
        (appended.status, keys(&appended.body)),
        (201, vec!["content".into(), "order".into()])
    );
    let messages = t
        .call(with(Req::new(Method::ListMessages).id(&j), "order"))
        .await;
    assert_eq!(messages.body["messages"][0], json!({"order": 1}));
    // Batch append: on each message; the conversation's etag is not a message field.
    let batch = t
        .call(with(
            Req::new(Method::BatchAppend)
                .id(&k)
                .json(json!({"messages": [{"type": "USER", "content": "a"}, {"type": "AGENT", "content": "b"}]})),
            "order",
        ))
        .await;
    assert_eq!(batch.status, 201, "{}", batch.body);
    assert_eq!(batch.body["messages"], json!([{"order": 1}, {"order": 2}]));
    assert!(batch.body["conversationEtag"].is_string(), "{}", batch.body);
    let message_calls = [
        Req::new(Method::GetMessage).id(&k).order(1),
        Req::new(Method::UpdateMessage)
            .id(&k)
            .order(1)
            .json(json!({"content": "c"})),
        Req::new(Method::DeleteMessage).id(&k).order(2),
    ];
    for req in message_calls {
        let res = t.call(with(req, "order, content")).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(keys(&res.body), ["content", "order"]);
    }
    // Purge answers `{}` whatever `fields` names.
    let purged = t
        .call(with(Req::new(Method::Purge).id(&k), "name,etag"))
        .await;
    assert_eq!((purged.status, purged.body), (200, json!({})));
    // An unknown name is a 400 everywhere, before anything is written.
    let unknown = [
        Req::new(Method::Create).json(json!({"agents": ["a"]})),
        Req::new(Method::Get).id(&j),
        Req::new(Method::List),
        Req::new(Method::Update).id(&j).json(json!({})),
        Req::new(Method::Delete).id(&j),
        Req::new(Method::Undelete).id(&j),
        Req::new(Method::Complete).id(&j),
        Req::new(Method::Append)
            .id(&j)
            .json(json!({"type": "USER", "content": "x"})),
        Req::new(Method::ListMessages).id(&j),
        Req::new(Method::BatchAppend)
            .id(&j)
            .json(json!({"messages": [{"type": "USER", "content": "x"}]})),
        Req::new(Method::GetMessage).id(&j).order(1),
        Req::new(Method::UpdateMessage)
            .id(&j)
            .order(1)
            .json(json!({"content": "x"})),
        Req::new(Method::DeleteMessage).id(&j).order(1),
        Req::new(Method::ClearMessages).id(&j),
        Req::new(Method::Purge).id(&j),
    ];
    for req in unknown {
        t.call(with(req, "name,nosuchfield"))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
    }
    let after = t.call(Req::new(Method::Get).owner(&o).id(&j)).await;
    assert_eq!(after.body["messageCount"], 1, "nothing was written");
    assert_eq!(after.body["lifecycleState"], "IN_PROGRESS");
    let first = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&j).order(1))
        .await;
    assert_eq!(
        first.body["content"], "hi",
        "nor deleted, edited or cleared"
    );
}

#[tokio::test]
async fn every_single_conversation_answer_carries_its_etag_header() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let calls = [
        (
            Req::new(Method::Create)
                .query("conversationId", &i)
                .json(json!({"agents": ["a"]})),
            201,
        ),
        (Req::new(Method::Get).id(&i), 200),
        (
            Req::new(Method::Update)
                .id(&i)
                .json(json!({"category": "c"})),
            200,
        ),
        (Req::new(Method::Complete).id(&i), 200),
        (Req::new(Method::ClearMessages).id(&i), 200),
        (Req::new(Method::Delete).id(&i), 200),
        (Req::new(Method::Undelete).id(&i), 200),
        (
            Req::new(Method::Update)
                .id(&id())
                .query("allowMissing", "true")
                .json(json!({"agents": ["a"]})),
            201,
        ),
    ];
    for (req, status) in calls {
        let res = t.call(req.owner(&o)).await;
        assert_eq!(res.status, status, "{}", res.body);
        let tag = res.body["etag"].as_str().expect("an etag in the body");
        assert_eq!(res.header("etag"), Some(tag), "{}", res.body["name"]);
        assert!(tag.starts_with('"') && tag.ends_with('"'), "quoted: {tag}");
    }
}

#[tokio::test]
async fn every_single_message_answer_carries_its_etag_header_and_append_the_conversation_s() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let appended = t.append(&o, &i, "one").await;
    assert_eq!(appended.status, 201, "{}", appended.body);
    // The conversation's etag after the append, to chain the next precondition.
    let current = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(
        appended.header("x-conversation-etag"),
        current.body["etag"].as_str()
    );
    let calls = [
        (Req::new(Method::GetMessage).order(1), 200),
        (
            Req::new(Method::UpdateMessage)
                .order(1)
                .json(json!({"content": "edited"})),
            200,
        ),
        (Req::new(Method::DeleteMessage).order(1), 200),
    ];
    let mut answers = vec![appended];
    for (req, status) in calls {
        let res = t.call(req.owner(&o).id(&i)).await;
        assert_eq!(res.status, status, "{}", res.body);
        answers.push(res);
    }
    for res in answers {
        let tag = res.body["etag"].as_str().expect("an etag in the body");
        assert_eq!(res.header("etag"), Some(tag), "{}", res.body);
        assert!(
            tag.starts_with("\"m") && tag.ends_with('"'),
            "a message's: {tag}"
        );
    }
    // A batch's answer is no single resource: its conversation's etag is in the body.
    let batch = t
        .call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .json(json!({"messages": [{"type": "USER", "content": "two"}]})),
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.body);
    let current = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(batch.body["conversationEtag"], current.body["etag"]);
    assert_eq!(batch.header("etag"), None);
}

#[tokio::test]
async fn a_mask_of_many_kinds_of_paths_is_one_read_and_one_transaction() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(
        &o,
        &i,
        json!({"agents": ["a"], "labels": {"a": "1", "b": "2"}, "category": "old", "languageCode": "en"}),
    )
    .await;
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query(
                    "updateMask",
                    "displayName,category,labels.a,labels.b,labels.c,metadata,conversationStage,startTime,ttl,languageCode,agents",
                )
                .json(json!({
                    "displayName": "new", "labels": {"a": "9", "c": "3"}, "metadata": {"k": [1, 2]},
                    "conversationStage": "HUMAN_ASSIST_STAGE", "startTime": "2026-01-01T00:00:00Z",
                    "ttl": "3600s", "agents": ["x", "y"]
                })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    // Large fields among them: the conversation read, then head and body in one transaction.
    assert_eq!(t.counter.take(), ["Query", "TransactWriteItems"]);
    let b = &res.body;
    assert_eq!(b["displayName"], "new");
    assert!(
        b.get("category").is_none() && b.get("languageCode").is_none(),
        "cleared"
    );
    assert_eq!(
        b["labels"],
        json!({"a": "9", "c": "3"}),
        "a set, b removed, c added"
    );
    assert_eq!(b["metadata"], json!({"k": [1, 2]}));
    assert_eq!(b["conversationStage"], "HUMAN_ASSIST_STAGE");
    assert_eq!(b["startTime"], "2026-01-01T00:00:00.000000Z");
    assert!(b["expireTime"].is_string());
    assert_eq!(b["agents"], json!(["x", "y"]));
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(&got.body, b, "stored as answered");
}

#[tokio::test]
async fn list_pages_through_create_time_ascending_without_gaps_or_repeats() {
    let t = TestApp::new().await;
    let o = owner();
    let mut created = Vec::new();
    for _ in 0..7 {
        let i = id();
        created.push(t.create(&o, &i, json!({"agents": ["a"]})).await["name"].clone());
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = Req::new(Method::List)
            .owner(&o)
            .query("orderBy", "createTime asc")
            .query("pageSize", "3");
        if let Some(tk) = &token {
            req = req.query("pageToken", tk);
        }
        let res = t.call(req).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let page = res.body["conversations"].as_array().expect("items");
        sizes.push(page.len());
        seen.extend(page.iter().map(|c| c["name"].clone()));
        token = res.body["nextPageToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, created, "oldest first, each once");
    assert_eq!(sizes, [3, 3, 1], "pages of pageSize");
}

#[tokio::test]
async fn a_stale_if_match_is_412_on_every_write_that_takes_one_and_writes_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let first = t.create(&o, &i, json!({"agents": ["a"]})).await;
    let stale = first["etag"].as_str().expect("etag").to_owned();
    let updated = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"displayName": "now"})),
        )
        .await;
    assert_eq!(updated.status, 200);
    for req in [
        Req::new(Method::Update).json(json!({"displayName": "x"})),
        Req::new(Method::Complete),
        Req::new(Method::Append).json(json!({"type": "USER", "content": "x"})),
        Req::new(Method::BatchAppend).json(json!({"messages": [{"type": "USER", "content": "x"}]})),
        Req::new(Method::ClearMessages),
        Req::new(Method::Purge),
        Req::new(Method::Delete),
    ] {
        t.call(req.owner(&o).id(&i).header("if-match", &stale))
            .await
            .assert_problem(412, "FAILED_PRECONDITION");
    }
    let current = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(current.body, updated.body, "nothing was written");
    // Undelete, on a deleted conversation, with the etag it had before the delete.
    let live_etag = current.body["etag"].as_str().expect("etag").to_owned();
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    t.call(
        Req::new(Method::Undelete)
            .owner(&o)
            .id(&i)
            .header("if-match", &live_etag),
    )
    .await
    .assert_problem(412, "FAILED_PRECONDITION");
    let still = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(still.body["deleted"], true, "still deleted");
}

#[tokio::test]
async fn a_stale_message_if_match_is_412_on_every_message_write_and_writes_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t.append(&o, &i, "one").await;
    let stale = first.body["etag"].as_str().expect("etag").to_owned();
    let edited = t
        .call(
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(&i)
                .order(1)
                .json(json!({"content": "edited"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let conversation = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    let conversation_etag = conversation.body["etag"].as_str().expect("etag").to_owned();
    // The message's earlier etag, and the conversation's (which names no version of a message).
    for tag in [&stale, &conversation_etag] {
        for req in [
            Req::new(Method::UpdateMessage).json(json!({"content": "x"})),
            Req::new(Method::DeleteMessage),
        ] {
            t.call(req.owner(&o).id(&i).order(1).header("if-match", tag))
                .await
                .assert_problem(412, "FAILED_PRECONDITION");
        }
    }
    let message = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(message.body, edited.body, "nothing was written");
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(after.body, conversation.body);
}

#[tokio::test]
async fn json_numbers_in_metadata_and_tool_arguments_come_back_exactly() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    // Decimals a client writes every day (time.time(), coordinates), and the extremes of f64.
    let numbers = r#"[1796293596.3136277, 0.1, 0.30000000000000004, 1e-7, 2.5e300,
        -45.123456789012345, 1.7976931348623157e308, 5e-324, 9007199254740993, -9223372036854775808,
        18446744073709551615]"#;
    let values: Value = serde_json::from_str(numbers).expect("JSON");
    let body = format!(r#"{{"agents": ["a"], "metadata": {{"n": {numbers}}}}}"#);
    let created = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .header("content-type", "application/json")
                .raw(body.into_bytes()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body["metadata"]["n"], values, "conversation metadata");
    let message = format!(
        r#"{{"type": "AGENT", "toolCalls": [{{"id": "c", "name": "f", "arguments": {{"n": {numbers}}}}}],
            "metadata": {{"n": {numbers}}}}}"#
    );
    let appended = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .header("content-type", "application/json")
                .raw(message.into_bytes()),
        )
        .await;
    assert_eq!(appended.status, 201, "{}", appended.body);
    let read = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(read.body["metadata"]["n"], values, "message metadata");
    assert_eq!(
        read.body["toolCalls"][0]["arguments"]["n"], values,
        "tool call arguments"
    );
    // And as text: the digits a client sent are the digits it reads back.
    let text = serde_json::to_string(&read.body["metadata"]["n"]).expect("JSON");
    assert!(text.contains("1796293596.3136277"), "{text}");
}
