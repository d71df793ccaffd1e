//! The contract's limits (sizes, counts, page sizes, id forms) are enforced before any DynamoDB
//! call: every method refuses over-limit input with a 4xx problem and sends DynamoDB nothing.

use api_tests::{Method, Req, TestApp, id, owner};
use serde_json::{Value, json};

fn labels(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect())
}

fn ten_megabytes() -> Value {
    json!({"agents": ["a"], "type": "USER", "content": "x".repeat(10 * 1024 * 1024)})
}

#[tokio::test]
async fn over_limit_input_is_refused_before_any_dynamodb_call() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let create = || Req::new(Method::Create).owner(&o);
    let update = || Req::new(Method::Update).owner(&o).id(&i);
    let append = || Req::new(Method::Append).owner(&o).id(&i);
    let cases: Vec<(&str, Req, u16)> = vec![
        ("create, 10 MB body", create().json(ten_megabytes()), 413),
        (
            "create, 17 agents",
            create().json(json!({"agents": vec!["a"; 17]})),
            422,
        ),
        (
            "create, agent of 513 characters",
            create().json(json!({"agents": ["a".repeat(513)]})),
            422,
        ),
        (
            "create, displayName of 257 characters",
            create().json(json!({"agents": ["a"], "displayName": "d".repeat(257)})),
            422,
        ),
        (
            "create, 65 labels",
            create().json(json!({"agents": ["a"], "labels": labels(65)})),
            422,
        ),
        (
            "create, metadata over 16 KiB",
            create().json(json!({"agents": ["a"], "metadata": {"m": "x".repeat(17 * 1024)}})),
            422,
        ),
        (
            "create, conversationId of 64 characters",
            create()
                .query("conversationId", &"a".repeat(64))
                .json(json!({"agents": ["a"]})),
            400,
        ),
        (
            "create, requestId that is not a UUID",
            create()
                .query("requestId", "not-a-uuid")
                .json(json!({"agents": ["a"]})),
            400,
        ),
        (
            "get, id of 64 characters",
            Req::new(Method::Get).owner(&o).id(&"a".repeat(64)),
            400,
        ),
        (
            "list, pageSize -1",
            Req::new(Method::List).owner(&o).query("pageSize", "-1"),
            400,
        ),
        (
            "list, page token of 2000 characters",
            Req::new(Method::List)
                .owner(&o)
                .query("pageToken", &"A".repeat(2000)),
            400,
        ),
        (
            "list, unsupported filter",
            Req::new(Method::List)
                .owner(&o)
                .query("filter", "displayName = \"x\" OR agentId = \"y\""),
            400,
        ),
        ("update, 10 MB body", update().json(ten_megabytes()), 413),
        (
            "update, 65 labels",
            update()
                .query("updateMask", "labels")
                .json(json!({"labels": labels(65)})),
            422,
        ),
        (
            "update, unknown mask path",
            update()
                .query("updateMask", "nosuchField")
                .json(json!({"displayName": "x"})),
            400,
        ),
        (
            "update, 400 labels.<key> removal paths (past DynamoDB's 4 KB expression limit)",
            update()
                .query(
                    "updateMask",
                    &(0..400)
                        .map(|n| format!("labels.k{n}"))
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .json(json!({})),
            400,
        ),
        (
            "update, an updateMask of 20 000 characters",
            update()
                .query("updateMask", &"displayName,".repeat(1700))
                .json(json!({"displayName": "x"})),
            400,
        ),
        (
            "delete, id with upper case",
            Req::new(Method::Delete).owner(&o).id("ABC"),
            400,
        ),
        (
            "undelete, id with upper case",
            Req::new(Method::Undelete).owner(&o).id("ABC"),
            400,
        ),
        (
            "complete, id with upper case",
            Req::new(Method::Complete).owner(&o).id("ABC"),
            400,
        ),
        ("append, 10 MB body", append().json(ten_megabytes()), 413),
        (
            "append, content over 64 KiB",
            append().json(json!({"type": "USER", "content": "x".repeat(64 * 1024 + 1)})),
            422,
        ),
        (
            "append, metadata over 16 KiB",
            append().json(
                json!({"type": "USER", "content": "x", "metadata": {"m": "x".repeat(17 * 1024)}}),
            ),
            422,
        ),
        (
            "list messages, page token of 2000 characters",
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("pageToken", &"A".repeat(2000)),
            400,
        ),
        (
            "list messages, pageSize that is not a number",
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("pageSize", "ten"),
            400,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, req, status) in cases {
        t.counter.take();
        let res = t.call(req).await;
        let sent = t.counter.take();
        if res.status != status || !sent.is_empty() || res.body["status"] != status {
            wrong.push(format!(
                "{what}: {} (wanted {status}), DynamoDB requests {sent:?}: {}",
                res.status, res.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(t.stored(&o, &i).await.is_none(), "nothing was written");
}

/// Arguments that JSON writes in 4 bytes per number and serde_json re-serialises in 18
/// (`1e15` → `1000000000000000.0`): 860 of them measure 16 347 bytes as stored, within the
/// 16 KiB an `arguments` object may have.
fn inflating_arguments() -> String {
    format!("{{\"n\":[{}]}}", vec!["1e15"; 860].join(","))
}

/// An `AGENT` message of 32 such tool calls: a 139 KB body whose item would be about 524 KB,
/// past DynamoDB's 400 KB item limit.
fn oversized_agent_message() -> String {
    let calls: Vec<String> = (0..32)
        .map(|n| {
            format!(
                "{{\"id\":\"call_{n}\",\"name\":\"tool\",\"arguments\":{}}}",
                inflating_arguments()
            )
        })
        .collect();
    format!("{{\"type\":\"AGENT\",\"toolCalls\":[{}]}}", calls.join(","))
}

fn raw_json(req: Req, body: String) -> Req {
    req.header("content-type", "application/json")
        .raw(body.into_bytes())
}

#[tokio::test]
async fn a_message_whose_item_would_pass_dynamodbs_400_kb_is_400_and_writes_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "kept").await.status, 201);
    let body = oversized_agent_message();
    assert!(
        body.len() < 256 * 1024,
        "within the body limit: {}",
        body.len()
    );

    // Append: refused before any DynamoDB request.
    t.counter.take();
    let res = t
        .call(raw_json(
            Req::new(Method::Append).owner(&o).id(&i),
            body.clone(),
        ))
        .await;
    res.assert_problem(400, "INVALID_ARGUMENT");
    let detail = res.body["detail"].as_str().expect("detail");
    assert!(detail.contains("400 KB"), "{detail}");
    assert_eq!(t.counter.take(), Vec::<String>::new());

    // Batch append: the message is named by its index, and none of the batch is written.
    let batch = format!("{{\"messages\":[{{\"type\":\"USER\",\"content\":\"fine\"}},{body}]}}");
    let res = t
        .call(raw_json(
            Req::new(Method::BatchAppend).owner(&o).id(&i),
            batch,
        ))
        .await;
    res.assert_problem(400, "INVALID_ARGUMENT");
    let detail = res.body["detail"].as_str().expect("detail");
    assert!(detail.contains("messages[1]"), "{detail}");
    assert_eq!(t.counter.take(), Vec::<String>::new());

    // Update message: an AGENT message edited to carry those tool calls would pass the limit;
    // the message and its conversation stay as they were.
    let agent = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "AGENT", "content": "thinking"})),
        )
        .await;
    assert_eq!(agent.status, 201, "{}", agent.body);
    let before = t.stored(&o, &i).await.expect("stored");
    let calls = &body[body.find('[').expect("a list")..body.len() - 1];
    let res = t
        .call(raw_json(
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(&i)
                .order(2)
                .query("updateMask", "toolCalls"),
            format!("{{\"toolCalls\":{calls}}}"),
        ))
        .await;
    res.assert_problem(400, "INVALID_ARGUMENT");
    let after = t.stored(&o, &i).await.expect("stored");
    assert_eq!(after.get("updated_at"), before.get("updated_at"));
    let got = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(2))
        .await;
    assert_eq!(got.body["content"], "thinking");
    assert!(got.body.get("toolCalls").is_none(), "{}", got.body);
    assert_eq!(got.body["etag"], agent.body["etag"]);

    // Nothing of the refused appends was written.
    assert_eq!(t.counted_messages(&o, &i).await, (Some(2), 2));
}
