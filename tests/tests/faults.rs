//! When DynamoDB fails, through a fault-injecting proxy in front of DynamoDB Local: throttling is
//! a 429 and an unreachable, hung or failing DynamoDB a 503, both with `Retry-After` and within
//! the SDK's timeouts; anything else a 500 whose body says nothing of the cause. Afterwards
//! nothing is half-written, and a write whose answer was lost (it may have applied) is safe to
//! retry: it never applies twice.

use std::time::{Duration, Instant};

use api_tests::fault_proxy::{Fault, FaultProxy, SERVER_ERROR, THROTTLED};
use api_tests::{Method, Req, Res, TestApp, id, owner};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The SDK's operation timeout (5 s, shared/src/app.rs) with room for a slow machine, and far
/// under the functions' 10 s timeout.
const BOUND: Duration = Duration::from_secs(8);

/// A DynamoDB that answers the answer the SDK lost track of.
const LOST: Fault = Fault::LoseAnswer(500, "InternalServerError");

async fn timed(t: &TestApp, req: Req) -> (Res, Duration) {
    let started = Instant::now();
    let res = t.call(req).await;
    (res, started.elapsed())
}

async fn through_proxy() -> (FaultProxy, TestApp) {
    let proxy = FaultProxy::start().await;
    let t = TestApp::through(proxy.endpoint()).await;
    (proxy, t)
}

fn etag(body: &Value) -> String {
    body["etag"].as_str().expect("etag").to_owned()
}

#[tokio::test]
async fn throttling_after_the_sdk_retries_is_429_with_retry_after_and_writes_nothing() {
    let (proxy, t) = through_proxy().await;
    for throttled in [THROTTLED, Fault::Error(400, "ThrottlingException")] {
        let (o, i) = (owner(), id());
        let created = t
            .create(&o, &i, json!({"agents": ["a"], "displayName": "before"}))
            .await;
        proxy.take_seen();
        // The head's write (the body's read beside it is not throttled).
        proxy.inject("UpdateItem", throttled, 3);
        let patch = Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "after", "etag": etag(&created)}));
        let (res, elapsed) = timed(&t, patch.clone()).await;
        res.assert_problem(429, "RESOURCE_EXHAUSTED");
        assert_eq!(res.header("retry-after"), Some("1"));
        assert!(elapsed < BOUND, "bounded: {elapsed:?}");
        let writes = proxy
            .take_seen()
            .into_iter()
            .filter(|(op, _)| op == "UpdateItem")
            .count();
        assert_eq!(writes, 3, "three attempts, then the 429");
        let stored = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
        assert_eq!(stored.body, created, "the throttled PATCH wrote nothing");
        // Once DynamoDB has capacity again, the same request succeeds.
        let res = t.call(patch).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["displayName"], "after");
    }
}

#[tokio::test]
async fn a_dynamodb_server_error_is_503_with_retry_after() {
    let (proxy, t) = through_proxy().await;
    proxy.inject("*", SERVER_ERROR, 3);
    let res = t
        .call(Req::new(Method::Get).owner(&owner()).id(&id()))
        .await;
    res.assert_problem(503, "UNAVAILABLE");
    assert_eq!(res.header("retry-after"), Some("2"));
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_503_within_the_timeouts() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let t = TestApp::through(&format!("http://127.0.0.1:{port}")).await;
    let (res, elapsed) = timed(&t, Req::new(Method::Get).owner(&owner()).id(&id())).await;
    res.assert_problem(503, "UNAVAILABLE");
    assert_eq!(res.header("retry-after"), Some("2"));
    assert!(elapsed < BOUND, "bounded: {elapsed:?}");
}

#[tokio::test]
async fn a_hung_dynamodb_is_503_within_the_operation_timeout() {
    let (proxy, t) = through_proxy().await;
    proxy.inject("*", Fault::Hang, 10);
    let (res, elapsed) = timed(&t, Req::new(Method::Get).owner(&owner()).id(&id())).await;
    res.assert_problem(503, "UNAVAILABLE");
    assert_eq!(res.header("retry-after"), Some("2"));
    assert!(elapsed < BOUND, "bounded: {elapsed:?}");
}

#[tokio::test]
async fn an_unexpected_dynamodb_error_is_a_500_that_leaks_nothing() {
    let (proxy, t) = through_proxy().await;
    proxy.inject("*", Fault::Error(400, "ValidationException"), 1);
    let res = t
        .call(Req::new(Method::Get).owner(&owner()).id(&id()))
        .await;
    res.assert_problem(500, "INTERNAL");
    assert_eq!(res.body["detail"], "internal error");
    assert!(!res.body.to_string().contains("injected"));
    assert!(res.header("retry-after").is_none());
}

#[tokio::test]
async fn an_append_that_dynamodb_never_applies_writes_neither_message_nor_count() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "first").await.status, 201);
    for (fault, status, code, retry_after) in [
        (SERVER_ERROR, 503, "UNAVAILABLE", "2"),
        (THROTTLED, 429, "RESOURCE_EXHAUSTED", "1"),
        (Fault::Hang, 503, "UNAVAILABLE", "2"),
    ] {
        proxy.inject("TransactWriteItems", fault, 3);
        let (res, elapsed) = timed(
            &t,
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": "lost"})),
        )
        .await;
        res.assert_problem(status, code);
        assert_eq!(res.header("retry-after"), Some(retry_after), "{fault:?}");
        assert!(elapsed < BOUND, "{fault:?} bounded: {elapsed:?}");
        assert_eq!(
            t.counted_messages(&o, &i).await,
            (Some(1), 1),
            "after {fault:?}"
        );
    }
    // The conversation takes appends again, in order.
    let res = t.append(&o, &i, "second").await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["order"], 2);
}

#[tokio::test]
async fn a_batch_is_all_or_none_when_dynamodb_fails_or_refuses_one_of_its_items() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "first").await.status, 201);
    let batch = || {
        Req::new(Method::BatchAppend)
            .owner(&o)
            .id(&i)
            .json(json!({"messages": [
                {"type": "USER", "content": "a"},
                {"type": "AGENT", "content": "b"},
                {"type": "USER", "content": "c"}
            ]}))
    };
    // DynamoDB failing the transaction: 503, nothing of the batch written.
    proxy.inject("TransactWriteItems", SERVER_ERROR, 3);
    t.call(batch()).await.assert_problem(503, "UNAVAILABLE");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
    // One item of the transaction refused (a message item already at the order the batch's
    // third message takes, which only a broken table holds): neither of the other two is
    // written, nor the count moved; the append gives up as contended.
    let incarnation =
        conversations::domain::time::Timestamp::parse(created["createTime"].as_str().expect("t"))
            .expect("a timestamp");
    t.raw()
        .put_item()
        .table_name(&t.table)
        .item(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CONV#{o}#{i}")),
        )
        .item(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(
                conversations::store::item::message_sort_key(incarnation, 4),
            ),
        )
        .send()
        .await
        .expect("a stray item");
    t.call(batch()).await.assert_problem(409, "ABORTED");
    let stored = t.collection(&o, &i).await;
    let orders: Vec<&str> = stored
        .iter()
        .filter_map(|item| item.get("sk").and_then(|v| v.as_s().ok()))
        .filter(|sk| sk.starts_with("M#"))
        .map(|sk| &sk[2..12])
        .collect();
    assert_eq!(
        orders,
        ["0000000001", "0000000004"],
        "only the first message and the stray"
    );
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(after.body["messageCount"], 1);
}

#[tokio::test]
async fn an_append_whose_answer_is_lost_lands_exactly_once() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for (n, fault) in [LOST, Fault::ForwardThenHang].into_iter().enumerate() {
        // The first attempt applies and its answer is lost; the SDK retries the transaction
        // with the same ClientRequestToken, which DynamoDB recognises as already applied.
        proxy.inject("TransactWriteItems", fault, 1);
        let (res, elapsed) = timed(
            &t,
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": format!("message {n}")})),
        )
        .await;
        assert_eq!(res.status, 201, "{fault:?}: {}", res.body);
        assert_eq!(res.body["order"], n + 1);
        assert!(elapsed < BOUND, "{fault:?} bounded: {elapsed:?}");
        assert_eq!(
            t.counted_messages(&o, &i).await,
            (Some(n as i64 + 1), n + 1),
            "after {fault:?}: one message, counted once"
        );
    }
}

#[tokio::test]
async fn a_create_with_a_request_id_whose_answers_are_lost_makes_one_conversation() {
    let (proxy, t) = through_proxy().await;
    let o = owner();
    let create = |request_id: &str| {
        Req::new(Method::Create)
            .owner(&o)
            .query("requestId", request_id)
            .json(json!({"agents": ["a"], "displayName": "once"}))
    };
    // Every attempt's answer is lost: the first applied, the client sees a 503 and retries.
    proxy.inject("TransactWriteItems", LOST, 3);
    let request_id = uuid::Uuid::new_v4().to_string();
    let res = t.call(create(&request_id)).await;
    res.assert_problem(503, "UNAVAILABLE");
    let retried = t.call(create(&request_id)).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    // One answer is lost: the SDK's own retry finds the conversation this request created.
    proxy.inject("TransactWriteItems", LOST, 1);
    let other_request = uuid::Uuid::new_v4().to_string();
    let second = t.call(create(&other_request)).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_ne!(second.body["name"], retried.body["name"]);
    let listed = t.call(Req::new(Method::List).owner(&o)).await;
    let names: Vec<&Value> = listed.body["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names.len(), 2, "one conversation per requestId: {names:?}");
    assert!(names.contains(&&retried.body["name"]) && names.contains(&&second.body["name"]));
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_answered_by_the_sdk_retry_without_a_request_id() {
    let (proxy, t) = through_proxy().await;
    let o = owner();
    for conversation_id in [Some(id()), None] {
        // The first attempt creates the conversation and its answer is lost; the SDK's retry
        // finds the item that very attempt wrote: 201, not 409 for an id the caller never had.
        proxy.inject("TransactWriteItems", LOST, 1);
        let mut create = Req::new(Method::Create)
            .owner(&o)
            .json(json!({"agents": ["a"], "metadata": {"n": 1.5, "s": "x"}}));
        if let Some(conversation_id) = &conversation_id {
            create = create.query("conversationId", conversation_id);
        }
        let res = t.call(create).await;
        assert_eq!(res.status, 201, "{conversation_id:?}: {}", res.body);
        let name = res.body["name"].as_str().expect("name");
        let id = name.rsplit('/').next().expect("id");
        let stored = t.call(Req::new(Method::Get).owner(&o).id(id)).await;
        assert_eq!(stored.body, res.body);
    }
    // Another create of a taken id is still refused.
    let taken = id();
    t.create(&o, &taken, json!({"agents": ["a"]})).await;
    let again = Req::new(Method::Create)
        .owner(&o)
        .query("conversationId", &taken)
        .json(json!({"agents": ["a"]}));
    t.call(again).await.assert_problem(409, "ALREADY_EXISTS");
}

#[tokio::test]
async fn a_patch_with_an_etag_whose_answer_is_lost_applies_once_and_is_answered_200() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(&o, &i, json!({"agents": ["a"], "displayName": "v0"}))
        .await;
    let patch = Req::new(Method::Update)
        .owner(&o)
        .id(&i)
        .json(json!({"displayName": "v1", "etag": etag(&created)}));
    // The first attempt applies and its answer is lost; the SDK's retry carries the old etag,
    // which no longer matches, so it cannot apply a second time — and its refusal shows the
    // item as this very request wrote it: the PATCH succeeded.
    proxy.inject("UpdateItem", LOST, 1);
    let res = t.call(patch.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["displayName"], "v1");
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(
        after.body, res.body,
        "the answer is the stored conversation"
    );
    assert_ne!(after.body["etag"], created["etag"]);
    // The client's own retry of the same PATCH is another request: refused, changes nothing.
    t.call(patch).await.assert_problem(409, "ABORTED");
    let again = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(again.body, after.body, "applied exactly once");
}

#[tokio::test]
async fn an_undelete_and_a_complete_whose_answers_are_lost_are_answered_200() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let deleted = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    // The undelete lands, its answer is lost, the SDK's retry finds the conversation live —
    // undeleted by this very request, so 200, not 409 ALREADY_EXISTS.
    proxy.inject("UpdateItem", LOST, 1);
    let undeleted = t.call(Req::new(Method::Undelete).owner(&o).id(&i)).await;
    assert_eq!(undeleted.status, 200, "{}", undeleted.body);
    assert_eq!(undeleted.body["deleted"], false);
    let live = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    // With an etag, a completed conversation's refusal would otherwise be a stale etag (409).
    proxy.inject("UpdateItem", LOST, 1);
    let complete = Req::new(Method::Complete)
        .owner(&o)
        .id(&i)
        .json(json!({"etag": etag(&live.body)}));
    let completed = t.call(complete).await;
    assert_eq!(completed.status, 200, "{}", completed.body);
    assert_eq!(completed.body["lifecycleState"], "COMPLETED");
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(after.body, completed.body);
    // Another undelete of the live conversation is still 409.
    t.call(Req::new(Method::Undelete).owner(&o).id(&i))
        .await
        .assert_problem(409, "ALREADY_EXISTS");
}

/// A write whose answer is lost at the gate, another write landing before the SDK retries it.
const LOST_AT_GATE: Fault = Fault::LoseAnswerAtGate(500, "InternalServerError");

#[tokio::test]
async fn a_keyless_patch_whose_answer_is_lost_is_not_applied_again_over_a_later_writer() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"], "displayName": "v0"}))
        .await;
    let patch = |name: &str| {
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .query("updateMask", "displayName")
            .json(json!({ "displayName": name }))
    };
    // A's PATCH applies and its answer is held; B's PATCH lands; then A's answer is lost and
    // the SDK sends A again. A must not apply a second time over B (B was answered 200).
    proxy.inject("UpdateItem", LOST_AT_GATE, 1);
    let (a, b) = tokio::join!(t.call(patch("A")), async {
        proxy.at_gate().await;
        let b = t.call(patch("B")).await;
        proxy.open_gate();
        b
    });
    assert_eq!((b.status, &b.body["displayName"]), (200, &json!("B")));
    assert_eq!(a.status, 200, "A applied once: {}", a.body);
    let stored = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(stored.body["displayName"], "B", "B's write stands");
    // A is answered with the conversation as it is now: A's write and what came after it.
    assert_eq!(a.body, stored.body);
}

#[tokio::test]
async fn a_delete_whose_answer_is_lost_is_not_applied_again_after_an_undelete() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    proxy.inject("UpdateItem", LOST_AT_GATE, 1);
    let (deleted, undeleted) =
        tokio::join!(t.call(Req::new(Method::Delete).owner(&o).id(&i)), async {
            proxy.at_gate().await;
            let res = t.call(Req::new(Method::Undelete).owner(&o).id(&i)).await;
            proxy.open_gate();
            res
        });
    assert_eq!(undeleted.status, 200, "{}", undeleted.body);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let stored = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(stored.body["deleted"], false, "the undelete stands");
    assert_eq!(deleted.body, stored.body);
}

#[tokio::test]
async fn a_delete_whose_answer_is_lost_is_answered_200_by_the_sdk_retry() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    // The first attempt soft-deletes and its answer is lost; the SDK's retry is refused (already
    // deleted) and its refusal shows this very attempt's version: the delete succeeded.
    proxy.inject("UpdateItem", LOST, 1);
    let res = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["deleted"], true);
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(after.body["etag"], res.body["etag"]);
    // A later delete of the deleted conversation is still 404.
    t.call(Req::new(Method::Delete).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn appends_land_even_when_instances_sdk_token_generators_collide() {
    // Two instances whose SDK idempotency-token generators were seeded alike (the SDK seeds them
    // from the clock) would send equal ClientRequestTokens; a fixed token stands for that here.
    let t = TestApp::new().await;
    let config = conversations::app::dynamodb_config()
        .await
        .idempotency_token_provider("00000000-0000-4000-8000-000000000000")
        .build();
    let app = conversations::App::new(
        conversations::Config {
            table: t.table.clone(),
            auth: conversations::AuthMode::Header,
            token_key: conversations::domain::page_token::TokenKey::new("test-key"),
            delegation_scope: conversations::app::DEFAULT_DELEGATION_SCOPE.into(),
            write_layout: conversations::store::item::LAYOUT,
        },
        aws_sdk_dynamodb::Client::from_conf(config),
    );
    let o = owner();
    for i in [id(), id()] {
        t.create(&o, &i, json!({"agents": ["a"]})).await;
        for n in 1..=2 {
            let append = Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": format!("m{n}")}));
            let res = TestApp::call_app(&app, append).await;
            assert_eq!(res.status, 201, "{}", res.body);
            assert_eq!(res.body["order"], n);
        }
        assert_eq!(t.counted_messages(&o, &i).await, (Some(2), 2));
    }
}

#[tokio::test]
async fn the_tests_request_counter_counts_calls_not_the_sdk_s_retries() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.counter.take();
    proxy.take_seen();
    // One attempt fails as a timeout would on a loaded machine; the SDK's retry succeeds.
    proxy.inject("Query", SERVER_ERROR, 1);
    let res = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(res.status, 200);
    assert_eq!(proxy.take_seen().len(), 2, "two attempts reached DynamoDB");
    assert_eq!(t.counter.take(), ["Query"], "one call");
}

#[tokio::test]
async fn an_idempotent_append_whose_answers_are_all_lost_is_answered_by_the_client_s_retry() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let key = uuid::Uuid::new_v4().to_string();
    let call = || {
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .header("idempotency-key", &key)
            .json(json!({"type": "USER", "content": "exactly once"}))
    };
    // Every attempt the SDK makes applies (the first) or is recognised (its retries), and every
    // answer is lost: the client sees a 503 and cannot know whether the message landed.
    proxy.inject("TransactWriteItems", LOST, 3);
    let (res, elapsed) = timed(&t, call()).await;
    res.assert_problem(503, "UNAVAILABLE");
    assert!(elapsed < BOUND, "bounded: {elapsed:?}");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1), "it landed");
    // The client retries blindly with the same key: the first call's 201, nothing appended.
    let retried = t.call(call()).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(
        (
            retried.body["order"].as_u64(),
            retried.body["content"].as_str()
        ),
        (Some(1), Some("exactly once"))
    );
    let again = t.call(call()).await;
    assert_eq!((again.status, &again.body), (201, &retried.body));
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
}

#[tokio::test]
async fn an_idempotent_append_that_never_applied_is_appended_by_the_retry() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let key = uuid::Uuid::new_v4().to_string();
    let call = || {
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .query("requestId", &key)
            .json(json!({"type": "USER", "content": "x"}))
    };
    proxy.inject("TransactWriteItems", SERVER_ERROR, 3);
    t.call(call()).await.assert_problem(503, "UNAVAILABLE");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(0), 0));
    // A failed call spends no key.
    let res = t.call(call()).await;
    assert_eq!((res.status, res.body["order"].as_u64()), (201, Some(1)));
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
}

#[tokio::test]
async fn a_batch_whose_answer_is_lost_lands_exactly_once() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let turn = json!({"messages": [
        {"type": "AGENT", "toolCalls": [{"id": "c1", "name": "lookup"}]},
        {"type": "TOOL", "toolCallId": "c1", "content": "found"},
        {"type": "AGENT", "content": "Here it is."}
    ]});
    // Without a key: the SDK's own retry (same ClientRequestToken) answers it.
    for (n, fault) in [LOST, Fault::ForwardThenHang].into_iter().enumerate() {
        proxy.inject("TransactWriteItems", fault, 1);
        let res = t
            .call(
                Req::new(Method::BatchAppend)
                    .owner(&o)
                    .id(&i)
                    .json(turn.clone()),
            )
            .await;
        assert_eq!(res.status, 201, "{fault:?}: {}", res.body);
        let first = 3 * n as u64 + 1;
        let orders: Vec<u64> = res.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["order"].as_u64().expect("order"))
            .collect();
        assert_eq!(orders, [first, first + 1, first + 2]);
        assert_eq!(
            t.counted_messages(&o, &i).await,
            (Some(3 * (n as i64 + 1)), 3 * (n + 1))
        );
    }
    // With a key, when every answer is lost: the client's retry gets the batch.
    let key = uuid::Uuid::new_v4().to_string();
    proxy.inject("TransactWriteItems", LOST, 3);
    let call = || {
        Req::new(Method::BatchAppend)
            .owner(&o)
            .id(&i)
            .query("requestId", &key)
            .json(turn.clone())
    };
    t.call(call()).await.assert_problem(503, "UNAVAILABLE");
    let retried = t.call(call()).await;
    assert_eq!(retried.status, 201, "{}", retried.body);
    assert_eq!(retried.body["messages"][0]["order"], 7);
    assert_eq!(retried.body["messages"][2]["content"], "Here it is.");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(9), 9));
}

#[tokio::test]
async fn a_message_edit_whose_answer_is_lost_applies_once() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let appended = t.append(&o, &i, "secret").await.body;
    proxy.inject("TransactWriteItems", LOST, 1);
    let res = t
        .call(
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(&i)
                .order(1)
                .header("if-match", appended["etag"].as_str().expect("etag"))
                .json(json!({"content": "[redacted]"})),
        )
        .await;
    // The SDK's retry of the transaction is recognised as applied: 200, not a stale 412.
    assert_eq!(res.status, 200, "{}", res.body);
    let stored = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(stored.body, res.body);
}

#[tokio::test]
async fn a_message_delete_a_clear_and_a_purge_whose_answers_are_lost_are_answered_as_done() {
    let (proxy, t) = through_proxy().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for n in 1..=5 {
        assert_eq!(t.append(&o, &i, format!("m{n}")).await.status, 201);
    }
    let last = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(5))
        .await;
    // Delete message: the transaction applied, its answer lost; the SDK sends it again with the
    // same ClientRequestToken and DynamoDB answers it as done: 200 with the message, not 404.
    proxy.inject("TransactWriteItems", LOST, 1);
    let popped = t
        .call(
            Req::new(Method::DeleteMessage)
                .owner(&o)
                .id(&i)
                .order(5)
                .header("if-match", last.body["etag"].as_str().expect("etag")),
        )
        .await;
    assert_eq!((popped.status, &popped.body), (200, &last.body));
    assert_eq!(
        t.counted_messages(&o, &i).await,
        (Some(4), 4),
        "deleted once"
    );
    // Clear with the conversation's etag: its UpdateItem applied, the retry refused (stale etag)
    // and recognised by its token: 200 with the conversation as written.
    let before = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    proxy.inject("UpdateItem", LOST, 1);
    let cleared = t
        .call(
            Req::new(Method::ClearMessages)
                .owner(&o)
                .id(&i)
                .json(json!({"throughOrder": 2, "etag": before.body["etag"]})),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["messageCount"], 2);
    let after = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(after.body, cleared.body);
    // Purge: applied, answer lost, the retry refused (already missing) and recognised: 200 {},
    // not 404.
    proxy.inject("UpdateItem", LOST, 1);
    let purged = t
        .call(
            Req::new(Method::Purge)
                .owner(&o)
                .id(&i)
                .json(json!({"etag": after.body["etag"]})),
        )
        .await;
    assert_eq!((purged.status, &purged.body), (200, &json!({})));
    t.call(Req::new(Method::Get).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
}
