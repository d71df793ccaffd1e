//! Writing messages the way agents produce them: idempotent appends (a repeated key appends
//! nothing and answers what its first call answered), batches (all or none, consecutive orders,
//! one transaction), tool calls and their results, and edits of one message (a redaction).

use std::time::Duration;

use api_tests::{Method, Req, Res, TestApp, attr_n, attr_s, id, owner};
use conversations::domain::time::Timestamp;
use serde_json::{Value, json};

const KEY: &str = "6f1c2a9e-1b7d-4c3e-9a55-0d2f8e4b7c11";

fn append(o: &str, i: &str, body: Value) -> Req {
    Req::new(Method::Append).owner(o).id(i).json(body)
}

fn batch(o: &str, i: &str, messages: Value) -> Req {
    Req::new(Method::BatchAppend)
        .owner(o)
        .id(i)
        .json(json!({ "messages": messages }))
}

fn edit(o: &str, i: &str, order: u64, body: Value) -> Req {
    Req::new(Method::UpdateMessage)
        .owner(o)
        .id(i)
        .order(order)
        .json(body)
}

fn user(content: &str) -> Value {
    json!({"type": "USER", "content": content})
}

/// An agent's whole turn: two tool calls, their results, and the answer.
fn agent_turn() -> Value {
    json!([
        {"type": "AGENT", "toolCalls": [
            {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "call_2", "name": "get_time"}
        ]},
        {"type": "TOOL", "toolCallId": "call_1", "content": "{\"tempC\": 21}"},
        {"type": "TOOL", "toolCallId": "call_2", "content": "{\"time\": \"14:05\"}"},
        {"type": "AGENT", "content": "It is 21 °C and 14:05 in Paris."}
    ])
}

fn orders(res: &Res) -> Vec<u64> {
    res.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {}", res.body))
        .iter()
        .map(|m| m["order"].as_u64().expect("an order"))
        .collect()
}

async fn get(t: &TestApp, o: &str, i: &str) -> Value {
    let res = t.call(Req::new(Method::Get).owner(o).id(i)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.body
}

fn sorted(mut sent: Vec<String>) -> Vec<String> {
    sent.sort();
    sent
}

// ---------------------------------------------------------------- idempotent append

#[tokio::test]
async fn a_repeated_request_id_appends_nothing_and_answers_what_the_first_call_answered() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.counter.take();
    let first = t
        .call(append(&o, &i, user("hello")).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(
        sorted(t.counter.take()),
        ["BatchGetItem", "TransactWriteItems"],
        "a first idempotent append is still one read and one transaction"
    );
    let after_first = get(&t, &o, &i).await;
    t.counter.take();
    let repeat = t
        .call(append(&o, &i, user("hello")).query("requestId", KEY))
        .await;
    assert_eq!((repeat.status, &repeat.body), (201, &first.body));
    assert_eq!(repeat.header("etag"), first.header("etag"));
    let sent = t.counter.take();
    assert!(
        sent.len() <= 3,
        "a repeat makes at most three requests: {sent:?}"
    );
    assert_eq!(sorted(sent), ["BatchGetItem", "Query"]);
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
    assert_eq!(
        get(&t, &o, &i).await,
        after_first,
        "the repeat wrote nothing"
    );
    // A call without a key is a new message.
    let other = t.call(append(&o, &i, user("hello"))).await;
    assert_eq!(other.body["order"], 2);
}

#[tokio::test]
async fn the_idempotency_key_header_is_the_request_id_bare_or_quoted() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t
        .call(append(&o, &i, user("x")).header("idempotency-key", KEY))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let upper = KEY.to_ascii_uppercase();
    for req in [
        append(&o, &i, user("x")).header("idempotency-key", &format!("\"{KEY}\"")),
        append(&o, &i, user("x")).query("requestId", &upper),
        append(&o, &i, user("x"))
            .query("requestId", KEY)
            .header("idempotency-key", &upper),
    ] {
        let res = t.call(req).await;
        assert_eq!((res.status, &res.body), (201, &first.body));
    }
    let other = "0b7e3c1d-2f4a-4e5b-8c6d-7a8b9c0d1e2f";
    for req in [
        append(&o, &i, user("x"))
            .query("requestId", other)
            .header("idempotency-key", KEY),
        append(&o, &i, user("x")).header("idempotency-key", "not-a-uuid"),
        append(&o, &i, user("x")).header("idempotency-key", &format!("W/\"{KEY}\"")),
        append(&o, &i, user("x")).query("requestId", "12345"),
    ] {
        t.call(req).await.assert_problem(400, "INVALID_ARGUMENT");
    }
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
}

#[tokio::test]
async fn a_key_reused_with_another_message_is_422_naming_request_id_and_writes_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t
        .call(append(&o, &i, user("x")).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201);
    let before = get(&t, &o, &i).await;
    for body in [
        user("y"),
        json!({"type": "SYSTEM", "content": "x"}),
        json!({"type": "USER", "content": "x", "metadata": {"k": 1}}),
    ] {
        let res = t.call(append(&o, &i, body).query("requestId", KEY)).await;
        res.assert_problem(422, "INVALID_ARGUMENT");
        assert_eq!(res.body["errors"][0]["field"], "requestId");
    }
    // A batch is another call than an append, even of the same message.
    let res = t
        .call(batch(&o, &i, json!([user("x")])).query("requestId", KEY))
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(res.body["errors"][0]["field"], "requestId");
    assert_eq!(get(&t, &o, &i).await, before);
    // The same message with its fields in another order is the same message; the precondition
    // is not part of what is compared.
    let same = t
        .call(
            append(
                &o,
                &i,
                json!({"content": "x", "type": "USER", "etag": "\"1\""}),
            )
            .query("requestId", KEY),
        )
        .await;
    assert_eq!((same.status, &same.body), (201, &first.body));
}

#[tokio::test]
async fn a_key_is_the_caller_s_on_one_conversation() {
    let t = TestApp::new().await;
    let (o, other_owner, i, j) = (owner(), owner(), id(), id());
    for (owner, conversation) in [(&o, &i), (&o, &j), (&other_owner, &i)] {
        t.create(owner, conversation, json!({"agents": ["a"]}))
            .await;
    }
    let mut answers = Vec::new();
    for (owner, conversation, content) in [(&o, &i, "a"), (&o, &j, "b"), (&other_owner, &i, "c")] {
        let res = t
            .call(append(owner, conversation, user(content)).query("requestId", KEY))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(
            res.body["content"], content,
            "its own message, not another's"
        );
        answers.push(res.body);
    }
    for (owner, conversation) in [(&o, &i), (&o, &j), (&other_owner, &i)] {
        assert_eq!(t.counted_messages(owner, conversation).await, (Some(1), 1));
    }
}

#[tokio::test]
async fn a_repeat_answers_201_after_the_conversation_moved_on_or_completed() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, json!({"agents": ["a"]})).await;
    let with_etag = json!({"type": "USER", "content": "x", "etag": created["etag"]});
    let first = t
        .call(append(&o, &i, with_etag.clone()).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201);
    assert_eq!(t.append(&o, &i, "later").await.status, 201);
    // The etag it was sent with is stale now, but the call is a repeat: its answer stands.
    let repeat = t
        .call(append(&o, &i, with_etag.clone()).query("requestId", KEY))
        .await;
    assert_eq!((repeat.status, &repeat.body), (201, &first.body));
    let completed = t.call(Req::new(Method::Complete).owner(&o).id(&i)).await;
    assert_eq!(completed.status, 200);
    let repeat = t
        .call(append(&o, &i, with_etag).query("requestId", KEY))
        .await;
    assert_eq!((repeat.status, &repeat.body), (201, &first.body));
    // A new key on the completed conversation is refused as any append is.
    t.call(append(&o, &i, user("y")).query("requestId", "0b7e3c1d-2f4a-4e5b-8c6d-7a8b9c0d1e2f"))
        .await
        .assert_problem(400, "FAILED_PRECONDITION");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(2), 2));
}

#[tokio::test]
async fn a_repeat_on_a_deleted_conversation_is_404_and_after_an_edit_answers_the_message_as_it_is()
{
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t
        .call(append(&o, &i, user("my card is 4111")).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201);
    let redacted = t
        .call(edit(&o, &i, 1, json!({"content": "[redacted]"})).query("updateMask", "content"))
        .await;
    assert_eq!(redacted.status, 200, "{}", redacted.body);
    let repeat = t
        .call(append(&o, &i, user("my card is 4111")).query("requestId", KEY))
        .await;
    assert_eq!(repeat.status, 201);
    assert_eq!(
        repeat.body, redacted.body,
        "the marker holds no content: the message as it is now"
    );
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    t.call(append(&o, &i, user("my card is 4111")).query("requestId", KEY))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_key_of_an_earlier_conversation_with_the_same_id_does_not_count() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let old = t
        .create(&o, &i, json!({"agents": ["a"], "ttl": "2s"}))
        .await;
    let first = t
        .call(append(&o, &i, user("old")).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201);
    let at = Timestamp::parse(old["expireTime"].as_str().expect("expireTime")).expect("valid");
    let wait = at.micros() - Timestamp::now().micros() + 20_000;
    if wait > 0 {
        tokio::time::sleep(Duration::from_micros(wait.unsigned_abs())).await;
    }
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let new = t
        .call(append(&o, &i, user("new")).query("requestId", KEY))
        .await;
    assert_eq!(new.status, 201, "{}", new.body);
    assert_eq!(
        (new.body["order"].as_u64(), new.body["content"].as_str()),
        (Some(1), Some("new"))
    );
    let repeat = t
        .call(append(&o, &i, user("new")).query("requestId", KEY))
        .await;
    assert_eq!((repeat.status, &repeat.body), (201, &new.body));
}

#[tokio::test]
async fn markers_are_never_messages_and_expire_after_a_day() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let before = Timestamp::now().micros() / 1_000_000;
    t.call(append(&o, &i, user("a")).query("requestId", KEY))
        .await;
    t.call(
        batch(&o, &i, json!([user("b"), user("c")]))
            .header("idempotency-key", "0b7e3c1d-2f4a-4e5b-8c6d-7a8b9c0d1e2f"),
    )
    .await;
    let markers: Vec<_> = t
        .collection(&o, &i)
        .await
        .into_iter()
        .filter(|item| attr_s(item, "sk").is_some_and(|sk| sk.starts_with("R#")))
        .collect();
    assert_eq!(markers.len(), 2);
    for marker in &markers {
        let expires = attr_n(marker, "ttl_at").expect("a marker expires by TTL");
        assert!(
            (before + 86_400..=before + 86_402).contains(&expires),
            "{expires}"
        );
        assert!(
            marker.get("gsi1pk").is_none() && marker.get("gsi2pk").is_none(),
            "in no index"
        );
    }
    let listed = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(orders(&listed), [1, 2, 3]);
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(orders(&full), [1, 2, 3]);
    assert_eq!(full.body["messageCount"], 3);
}

#[tokio::test]
async fn create_takes_the_idempotency_key_header_as_its_request_id() {
    let t = TestApp::new().await;
    let o = owner();
    let create = || {
        Req::new(Method::Create)
            .owner(&o)
            .json(json!({"agents": ["a"]}))
    };
    let first = t.call(create().header("idempotency-key", KEY)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    for req in [
        create().header("idempotency-key", &format!("\"{KEY}\"")),
        create().query("requestId", KEY),
    ] {
        let res = t.call(req).await;
        assert_eq!((res.status, &res.body), (201, &first.body));
    }
    t.call(
        create()
            .query("requestId", KEY)
            .header("idempotency-key", "0b7e3c1d-2f4a-4e5b-8c6d-7a8b9c0d1e2f"),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    let listed = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(
        listed.body["conversations"].as_array().map(Vec::len),
        Some(1)
    );
}

// ---------------------------------------------------------------- batch append

#[tokio::test]
async fn a_batch_appends_an_agent_turn_with_consecutive_orders_in_one_transaction() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "what is the weather?").await.status, 201);
    let before = get(&t, &o, &i).await;
    t.counter.take();
    let res = t.call(batch(&o, &i, agent_turn())).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(sorted(t.counter.take()), ["GetItem", "TransactWriteItems"]);
    assert_eq!(orders(&res), [2, 3, 4, 5]);
    let messages = res.body["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["content"], "");
    assert_eq!(messages[0]["toolCalls"][1]["arguments"], json!({}));
    assert_eq!(messages[1]["toolCallId"], "call_1");
    let times: Vec<&Value> = messages.iter().map(|m| &m["createTime"]).collect();
    assert!(
        times.iter().all(|t| *t == times[0]),
        "one transaction, one instant"
    );
    let after = get(&t, &o, &i).await;
    assert_eq!(after["messageCount"], 5);
    assert_ne!(after["etag"], before["etag"]);
    assert_eq!(after["lastUsedTime"], messages[0]["createTime"]);
    assert_eq!(t.counted_messages(&o, &i).await, (Some(5), 5));
    // Every read renders them as the batch answered them.
    let listed = t
        .call(
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("filter", "order >= 2"),
        )
        .await;
    assert_eq!(listed.body["messages"], res.body["messages"]);
    assert_ne!(created["etag"], after["etag"]);
}

#[tokio::test]
async fn a_batch_with_broken_messages_appends_none_and_names_every_field() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "one").await.status, 201);
    let before = get(&t, &o, &i).await;
    let res = t
        .call(batch(
            &o,
            &i,
            json!([
                user("fine"),
                {"type": "USER", "content": ""},
                {"type": "AGENT", "toolCalls": [{"id": "a", "name": "t"}, {"id": "a", "name": "t"}]},
                {"type": "WIZARD", "content": "x"},
                "not a message"
            ]),
        ))
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    let mut fields: Vec<&str> = res.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("a field"))
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "messages[1].content",
            "messages[2].toolCalls[1].id",
            "messages[3].type",
            "messages[4]"
        ]
    );
    assert_eq!(get(&t, &o, &i).await, before, "nothing was appended");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
}

#[tokio::test]
async fn a_batch_holds_1_to_50_messages_and_fits_the_body_limit() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for messages in [
        json!([]),
        Value::Array((0..51).map(|n| user(&n.to_string())).collect()),
    ] {
        let res = t.call(batch(&o, &i, messages)).await;
        res.assert_problem(422, "INVALID_ARGUMENT");
        assert_eq!(res.body["errors"][0]["field"], "messages");
    }
    for body in [
        json!({}),
        json!({"messages": "x"}),
        json!({"messages": null}),
    ] {
        let res = t
            .call(Req::new(Method::BatchAppend).owner(&o).id(&i).json(body))
            .await;
        res.assert_problem(422, "INVALID_ARGUMENT");
    }
    // Fifty messages of 5 000 bytes: 250 000 bytes of content, under 256 KiB of body.
    let fifty: Vec<Value> = (0..50).map(|_| user(&"x".repeat(5_000))).collect();
    let res = t.call(batch(&o, &i, Value::Array(fifty))).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(orders(&res), (1..=50).collect::<Vec<_>>());
    // Past the body limit: 413, before anything is read.
    let big: Vec<Value> = (0..50).map(|_| user(&"x".repeat(6_000))).collect();
    t.counter.take();
    t.call(batch(&o, &i, Value::Array(big)))
        .await
        .assert_problem(413, "PAYLOAD_TOO_LARGE");
    assert!(t.counter.take().is_empty());
    assert_eq!(t.counted_messages(&o, &i).await, (Some(50), 50));
}

#[tokio::test]
async fn a_batch_follows_every_precondition_and_state_rule_of_append() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "moves the etag").await.status, 201);
    let stale = created["etag"].as_str().expect("etag");
    let two = json!([user("a"), user("b")]);
    let with_body_etag = Req::new(Method::BatchAppend)
        .owner(&o)
        .id(&i)
        .json(json!({"messages": two, "etag": stale}));
    t.call(with_body_etag).await.assert_problem(409, "ABORTED");
    t.call(batch(&o, &i, two.clone()).header("if-match", stale))
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
    let current = get(&t, &o, &i).await["etag"].clone();
    let ok = t
        .call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .json(json!({"messages": two, "etag": current})),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    // A message's own etag is not the batch's precondition.
    t.call(batch(
        &o,
        &i,
        json!([{"type": "USER", "content": "x", "etag": current}]),
    ))
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    t.call(
        Req::new(Method::BatchAppend)
            .owner(&o)
            .id(&i)
            .json(json!({"messages": [user("x")], "colour": 1})),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    // Another caller, a missing conversation: 404.
    t.call(batch(&owner(), &i, two.clone()))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(batch(&o, &id(), two.clone()))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(
        t.call(Req::new(Method::Complete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    t.call(batch(&o, &i, two.clone()))
        .await
        .assert_problem(400, "FAILED_PRECONDITION");
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    t.call(batch(&o, &i, two))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(3), 3));
}

#[tokio::test]
async fn a_repeated_batch_answers_its_first_messages() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t
        .call(batch(&o, &i, agent_turn()).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(t.append(&o, &i, "next").await.status, 201);
    t.counter.take();
    let repeat = t
        .call(batch(&o, &i, agent_turn()).header("idempotency-key", KEY))
        .await;
    assert_eq!((repeat.status, &repeat.body), (201, &first.body));
    assert_eq!(sorted(t.counter.take()), ["BatchGetItem", "Query"]);
    assert_eq!(t.counted_messages(&o, &i).await, (Some(5), 5));
    let mut changed = agent_turn();
    changed[3]["content"] = json!("It is sunny.");
    let res = t.call(batch(&o, &i, changed).query("requestId", KEY)).await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(res.body["errors"][0]["field"], "requestId");
}

#[tokio::test]
async fn a_repeated_batch_whose_messages_grew_past_a_megabyte_answers_them_all() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let messages: Vec<Value> = (1..=20).map(|n| user(&format!("m{n}"))).collect();
    let first = t
        .call(batch(&o, &i, json!(messages)).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    // Each message edited to 60 KiB: the key's messages now take 1.2 MB, two Query pages.
    for order in 1..=20 {
        let big = format!("{order}:{}", "x".repeat(60 * 1024));
        let res = t.call(edit(&o, &i, order, json!({"content": big}))).await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
    t.counter.take();
    let repeat = t
        .call(batch(&o, &i, json!(messages)).query("requestId", KEY))
        .await;
    assert_eq!(repeat.status, 201, "{}", repeat.body);
    assert_eq!(orders(&repeat), (1..=20).collect::<Vec<u64>>());
    for (n, m) in repeat.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .enumerate()
    {
        let content = m["content"].as_str().expect("content");
        assert!(content.starts_with(&format!("{}:x", n + 1)), "as edited");
        assert_eq!(content.len(), 60 * 1024 + format!("{}:", n + 1).len());
    }
    // At most three requests, plus one read per further MB of its messages.
    assert_eq!(sorted(t.counter.take()), ["BatchGetItem", "Query", "Query"]);
    assert_eq!(t.counted_messages(&o, &i).await, (Some(20), 20));
}

#[tokio::test]
async fn a_repeated_key_finds_its_messages_among_an_earlier_conversation_s_leftovers() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t
        .call(batch(&o, &i, agent_turn()).query("requestId", KEY))
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    // Five earlier conversations of the same id left messages at the same orders (the purger
    // has not run: locally it never does).
    for earlier in 1..=5 {
        t.leftovers(&o, &i, earlier * 1_000_000, 1..=4).await;
    }
    let repeat = t
        .call(batch(&o, &i, agent_turn()).query("requestId", KEY))
        .await;
    assert_eq!((repeat.status, &repeat.body), (201, &first.body));
}

// ---------------------------------------------------------------- tool calls

#[tokio::test]
async fn tool_calls_and_results_are_stored_and_rendered_by_every_read() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let calls = json!([
        {"id": "call_1", "name": "search.web", "arguments": {"q": "rust", "n": [1, 2], "deep": {"x": null}}},
        {"id": "ns:call-2", "name": "noop", "arguments": null}
    ]);
    let asked = t
        .call(append(&o, &i, json!({"type": "AGENT", "toolCalls": calls})))
        .await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    assert_eq!(asked.body["content"], "");
    assert_eq!(
        asked.body["toolCalls"],
        json!([
            {"id": "call_1", "name": "search.web", "arguments": {"q": "rust", "n": [1, 2], "deep": {"x": null}}},
            {"id": "ns:call-2", "name": "noop", "arguments": {}}
        ])
    );
    assert!(asked.body.get("toolCallId").is_none());
    let answered = t
        .call(append(
            &o,
            &i,
            json!({"type": "TOOL", "toolCallId": "call_1", "content": "42 results"}),
        ))
        .await;
    assert_eq!(answered.status, 201, "{}", answered.body);
    assert_eq!(answered.body["toolCallId"], "call_1");
    assert!(answered.body.get("toolCalls").is_none());
    let with_content = t
        .call(append(&o, &i, json!({"type": "AGENT", "content": "Let me look.", "toolCalls": [{"id": "c", "name": "t"}]})))
        .await;
    assert_eq!(with_content.body["content"], "Let me look.");
    let one = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(one.body, asked.body);
    let listed = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(listed.body["messages"][0], asked.body);
    assert_eq!(listed.body["messages"][1], answered.body);
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(full.body["messages"][0], asked.body);
    let some = t
        .call(
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("fields", "order,toolCalls,toolCallId"),
        )
        .await;
    assert_eq!(
        some.body["messages"],
        json!([
            {"order": 1, "toolCalls": asked.body["toolCalls"]},
            {"order": 2, "toolCallId": "call_1"},
            {"order": 3, "toolCalls": [{"id": "c", "name": "t", "arguments": {}}]}
        ])
    );
}

#[tokio::test]
async fn tool_calls_follow_their_rules_with_every_broken_field_listed() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let big = "x".repeat(16 * 1024);
    for (body, expected) in [
        (
            json!({"type": "USER", "content": "x", "toolCalls": [{"id": "a", "name": "t"}]}),
            vec!["toolCalls"],
        ),
        (
            json!({"type": "AGENT", "content": "x", "toolCallId": "a"}),
            vec!["toolCallId"],
        ),
        (
            json!({"type": "TOOL", "content": "x", "toolCallId": "bad id"}),
            vec!["toolCallId"],
        ),
        (json!({"type": "TOOL", "toolCallId": "a"}), vec!["content"]),
        (
            json!({"type": "AGENT", "toolCalls": []}),
            vec!["content", "toolCalls"],
        ),
        (
            json!({"type": "AGENT", "toolCalls": [{"id": "", "name": "a/b", "arguments": []}]}),
            vec![
                "toolCalls[0].arguments",
                "toolCalls[0].id",
                "toolCalls[0].name",
            ],
        ),
        (
            json!({"type": "AGENT", "toolCalls": [{"name": "t", "arguments": {"k": big}}]}),
            vec!["toolCalls[0].arguments", "toolCalls[0].id"],
        ),
        (
            json!({"type": "AGENT", "toolCalls": (0..33).map(|n| json!({"id": n.to_string(), "name": "t"})).collect::<Vec<_>>()}),
            // Broken calls are reported as such, not as a missing content.
            vec!["toolCalls"],
        ),
        (
            json!({"type": "AGENT", "toolCalls": "call"}),
            vec!["content", "toolCalls"],
        ),
        (
            json!({"type": "AGENT", "toolCalls": [{"id": "a".repeat(129), "name": "n".repeat(129)}]}),
            vec!["toolCalls[0].id", "toolCalls[0].name"],
        ),
    ] {
        let res = t.call(append(&o, &i, body.clone())).await;
        res.assert_problem(422, "INVALID_ARGUMENT");
        let mut fields: Vec<&str> = res.body["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("field"))
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, expected, "{body}");
    }
    // A field a tool call does not have is unknown, as anywhere in a body.
    t.call(append(
        &o,
        &i,
        json!({"type": "AGENT", "toolCalls": [{"id": "a", "name": "t", "colour": 1}]}),
    ))
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    // Thirty-two calls with 16 KiB of arguments each would pass the body limit: 413.
    let widest: Vec<Value> = (0..32)
        .map(|n| json!({"id": n.to_string(), "name": "t", "arguments": {"k": "x".repeat(16_000)}}))
        .collect();
    t.call(append(
        &o,
        &i,
        json!({"type": "AGENT", "toolCalls": widest}),
    ))
    .await
    .assert_problem(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(0), 0));
}

// ---------------------------------------------------------------- update message

#[tokio::test]
async fn a_redaction_moves_both_etags_and_keeps_order_count_and_last_used_time() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.call(append(&o, &i, json!({"type": "USER", "content": "my card is 4111 1111", "metadata": {"pii": true, "lang": "en"}})))
        .await;
    assert_eq!(t.append(&o, &i, "thanks").await.status, 201);
    let before = get(&t, &o, &i).await;
    let message = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await
        .body;
    t.counter.take();
    let res = t
        .call(
            edit(
                &o,
                &i,
                1,
                json!({"content": "my card is [redacted]", "metadata": {}}),
            )
            .query("updateMask", "content,metadata.pii")
            .header("if-match", message["etag"].as_str().expect("etag")),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        sorted(t.counter.take()),
        ["Query", "TransactWriteItems"],
        "update message makes at most two requests"
    );
    assert_eq!(res.body["content"], "my card is [redacted]");
    assert_eq!(res.body["metadata"], json!({"lang": "en"}));
    assert_eq!(
        (&res.body["order"], &res.body["createTime"]),
        (&message["order"], &message["createTime"])
    );
    assert_ne!(res.body["etag"], message["etag"]);
    assert_ne!(res.body["updateTime"], message["updateTime"]);
    assert_eq!(res.header("etag"), res.body["etag"].as_str());
    let after = get(&t, &o, &i).await;
    assert_ne!(after["etag"], before["etag"]);
    assert_ne!(after["updateTime"], before["updateTime"]);
    for kept in ["messageCount", "lastUsedTime", "createTime"] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    let stored = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(stored.body, res.body);
    let untouched = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(2))
        .await;
    assert_eq!(untouched.body["content"], "thanks");
    // The conversation's etag is a precondition on the conversation again.
    let patched = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", before["etag"].as_str().expect("etag"))
                .json(json!({"displayName": "x"})),
        )
        .await;
    patched.assert_problem(412, "FAILED_PRECONDITION");
}

#[tokio::test]
async fn an_edit_is_preconditioned_on_the_message_s_etag() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let first = t.append(&o, &i, "v1").await.body;
    let v2 = t
        .call(edit(
            &o,
            &i,
            1,
            json!({"content": "v2", "etag": first["etag"]}),
        ))
        .await;
    assert_eq!(v2.status, 200, "{}", v2.body);
    let stale = first["etag"].as_str().expect("etag");
    t.call(edit(&o, &i, 1, json!({"content": "v3", "etag": stale})))
        .await
        .assert_problem(409, "ABORTED");
    t.call(edit(&o, &i, 1, json!({"content": "v3"})).header("if-match", stale))
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
    t.call(edit(&o, &i, 1, json!({"content": "v3"})).header("if-match", "not a tag"))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    let star = t
        .call(edit(&o, &i, 1, json!({"content": "v3"})).header("if-match", "*"))
        .await;
    assert_eq!(star.status, 200);
    let stored = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(stored.body["content"], "v3");
}

#[tokio::test]
async fn the_conversation_s_etag_is_never_a_message_s_precondition() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let appended = t.append(&o, &i, "v1").await;
    assert_eq!(appended.status, 201, "{}", appended.body);
    let after_append = get(&t, &o, &i).await["etag"].clone();
    assert_ne!(
        appended.body["etag"], after_append,
        "two resources, two etags"
    );
    let batched = t.call(batch(&o, &i, json!([user("a"), user("b")]))).await;
    assert_eq!(batched.status, 201, "{}", batched.body);
    let current = get(&t, &o, &i).await["etag"].clone();
    for m in batched.body["messages"].as_array().expect("messages") {
        assert_ne!(m["etag"], current, "{m}");
    }
    // The conversation's etag, sent as a message's precondition: refused as stale.
    for (order, tag) in [
        (1, after_append),
        (2, current.clone()),
        (3, current.clone()),
    ] {
        t.call(edit(&o, &i, order, json!({"content": "x", "etag": tag})))
            .await
            .assert_problem(409, "ABORTED");
        let tag = tag.as_str().expect("a tag").to_owned();
        t.call(edit(&o, &i, order, json!({"content": "x"})).header("if-match", &tag))
            .await
            .assert_problem(412, "FAILED_PRECONDITION");
    }
    // Nor another message's: a batch writes its messages with one version.
    let [second, third] = [0, 1].map(|n| batched.body["messages"][n]["etag"].clone());
    assert_ne!(second, third);
    t.call(edit(&o, &i, 3, json!({"content": "x", "etag": second})))
        .await
        .assert_problem(409, "ABORTED");
    let second = second.as_str().expect("a tag").to_owned();
    t.call(edit(&o, &i, 3, json!({"content": "x"})).header("if-match", &second))
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
    assert_eq!(get(&t, &o, &i).await["etag"], current, "nothing written");
    let own = t
        .call(edit(&o, &i, 3, json!({"content": "x", "etag": third})))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
}

#[tokio::test]
async fn an_edit_s_mask_names_only_what_may_change_and_the_result_must_be_a_valid_message() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.call(append(
        &o,
        &i,
        json!({"type": "TOOL", "toolCallId": "c1", "content": "result", "metadata": {"a": 1}}),
    ))
    .await;
    let before = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await
        .body;
    for (mask, body) in [
        (Some("type"), json!({"type": "USER"})),
        (Some("toolCallId"), json!({"toolCallId": "c2"})),
        (Some("content,colour"), json!({"content": "x"})),
        (Some("metadata,metadata.a"), json!({})),
        (Some("metadata.1a"), json!({})),
        (Some(""), json!({"content": "x"})),
        (None, json!({"type": "USER", "content": "x"})),
        (None, json!({"toolCallId": "c2"})),
        (None, json!({"colour": "x"})),
    ] {
        let mut req = edit(&o, &i, 1, body.clone());
        if let Some(mask) = mask {
            req = req.query("updateMask", mask);
        }
        t.call(req).await.assert_problem(400, "INVALID_ARGUMENT");
    }
    for (mask, body, field) in [
        ("content", json!({}), "content"),
        (
            "toolCalls",
            json!({"toolCalls": [{"id": "a", "name": "t"}]}),
            "toolCalls",
        ),
        (
            "metadata",
            json!({"metadata": {"k": "x".repeat(17 * 1024)}}),
            "metadata",
        ),
    ] {
        let res = t
            .call(edit(&o, &i, 1, body).query("updateMask", mask))
            .await;
        res.assert_problem(422, "INVALID_ARGUMENT");
        assert_eq!(res.body["errors"][0]["field"], field);
    }
    let unchanged = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await
        .body;
    assert_eq!(unchanged, before, "no refused edit wrote anything");
    // A message read back, edited and sent whole (no mask): type and toolCallId as stored pass.
    let mut whole = before.clone();
    whole["content"] = json!("edited");
    let res = t.call(edit(&o, &i, 1, whole)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (
            res.body["content"].as_str(),
            res.body["toolCallId"].as_str()
        ),
        (Some("edited"), Some("c1"))
    );
    // Metadata keys one by one; output-only paths ignored.
    let res = t
        .call(
            edit(&o, &i, 1, json!({"metadata": {"b": 2}}))
                .query("updateMask", "metadata.a, metadata.b, createTime"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["metadata"], json!({"b": 2}));
    assert_eq!(res.body["createTime"], before["createTime"]);
    let res = t
        .call(edit(&o, &i, 1, json!({})).query("updateMask", "metadata"))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.get("metadata").is_none(), "{}", res.body);
    // What the answers said is what is stored.
    let stored = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(stored.body, res.body);
}

#[tokio::test]
async fn an_edit_with_many_broken_fields_is_one_422_listing_every_one() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let turn = t.call(batch(&o, &i, agent_turn())).await;
    assert_eq!(turn.status, 201, "{}", turn.body);
    let before = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    let res = t
        .call(
            edit(
                &o,
                &i,
                1,
                json!({
                    "content": "x".repeat(64 * 1024 + 1),
                    "metadata": {"m": "x".repeat(17 * 1024)},
                    "toolCalls": [
                        {"id": "no spaces allowed", "name": "", "arguments": 5},
                        {"id": "call_2", "name": "ok"}
                    ]
                }),
            )
            .query("updateMask", "content,metadata,toolCalls"),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    let mut fields: Vec<&str> = res.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field"))
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "content",
            "metadata",
            "toolCalls[0].arguments",
            "toolCalls[0].id",
            "toolCalls[0].name"
        ],
        "{}",
        res.body
    );
    let after = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(after.body, before.body, "nothing written");
}

#[tokio::test]
async fn tool_calls_can_be_redacted_and_an_agent_message_keeps_content_or_calls() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let turn = t.call(batch(&o, &i, agent_turn())).await;
    assert_eq!(turn.status, 201);
    let res = t
        .call(
            edit(&o, &i, 1, json!({"toolCalls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "[redacted]"}}]}))
                .query("updateMask", "tool_calls"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["toolCalls"][0]["arguments"]["city"], "[redacted]");
    assert_eq!(res.body["toolCalls"].as_array().map(Vec::len), Some(1));
    // Without tool calls it would be an AGENT message with no content: 422.
    t.call(edit(&o, &i, 1, json!({})).query("updateMask", "toolCalls"))
        .await
        .assert_problem(422, "INVALID_ARGUMENT");
    let res = t
        .call(edit(&o, &i, 1, json!({"content": "I looked it up."})).query("updateMask", "*"))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.get("toolCalls").is_none());
}

#[tokio::test]
async fn an_edit_is_allowed_on_completed_conversations_and_404_where_there_is_no_message() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "one").await.status, 201);
    assert_eq!(
        t.call(Req::new(Method::Complete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    let res = t
        .call(edit(&o, &i, 1, json!({"content": "[redacted]"})))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    for order in ["0", "2", "-1", "99999999999"] {
        t.call(
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(&i)
                .order(order)
                .json(json!({"content": "x"})),
        )
        .await
        .assert_problem(404, "NOT_FOUND");
    }
    t.call(
        Req::new(Method::UpdateMessage)
            .owner(&o)
            .id(&i)
            .order("one")
            .json(json!({"content": "x"})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    t.call(edit(&owner(), &i, 1, json!({"content": "x"})))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(edit(&o, &id(), 1, json!({"content": "x"})))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    let deleted = get(&t, &o, &i).await;
    t.call(edit(&o, &i, 1, json!({"content": "x"})))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(
        get(&t, &o, &i).await,
        deleted,
        "the refused edit touched nothing"
    );
}
