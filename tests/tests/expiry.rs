//! Expiry: from `expireTime` (to the microsecond) and from `purgeTime` on, a conversation is
//! missing for every method, writes included, although DynamoDB's TTL removes its item only
//! later; a create with its id succeeds in one conditional write, and a soft delete never
//! postpones the expiry.

use std::time::Duration;

use api_tests::fault_proxy::{Fault, FaultProxy};
use api_tests::{Method, Req, TestApp, attr_n, id, owner};
use conversations::domain::time::Timestamp;
use serde_json::{Value, json};

/// Waits until `expire_time` (an RFC 3339 answer field) has passed by a few milliseconds.
async fn until_past(expire_time: &Value) {
    let at = Timestamp::parse(expire_time.as_str().expect("an expireTime")).expect("RFC 3339");
    let wait = at.micros() - Timestamp::now().micros() + 20_000;
    if wait > 0 {
        tokio::time::sleep(Duration::from_micros(wait.unsigned_abs())).await;
    }
}

/// An `expireTime` just past a whole second and at least `lead` from now, so that DynamoDB's TTL
/// (whole seconds, rounded up) stays almost a second later than the expiry itself.
fn just_past_a_second(lead: Duration) -> String {
    let lead = i64::try_from(lead.as_micros()).expect("short");
    let micros = (Timestamp::now().micros() + lead) / 1_000_000 * 1_000_000 + 1_000_000 + 1;
    Timestamp::from_micros(micros).expect("valid").to_string()
}

/// Creates a conversation that expires in two seconds, with two messages, and waits until it has
/// expired. Returns its body as created. (The create and both appends must land before the
/// expiry: on a loaded machine they took longer than the 0.4 s this once allowed.)
async fn expired_conversation(t: &TestApp, o: &str, i: &str) -> Value {
    let created = t
        .create(
            o,
            i,
            json!({"agents": ["old"], "displayName": "old", "ttl": "2s"}),
        )
        .await;
    assert_eq!(t.append(o, i, "one").await.status, 201);
    assert_eq!(t.append(o, i, "two").await.status, 201);
    until_past(&created["expireTime"]).await;
    created
}

#[tokio::test]
async fn an_expired_conversation_is_missing_for_every_method() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    expired_conversation(&t, &o, &i).await;
    assert!(t.stored(&o, &i).await.is_some(), "TTL has not removed it");
    let calls = [
        Req::new(Method::Get).owner(&o).id(&i),
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
        Req::new(Method::Delete).owner(&o).id(&i),
        Req::new(Method::Undelete).owner(&o).id(&i),
        Req::new(Method::Complete).owner(&o).id(&i),
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .json(json!({"type": "USER", "content": "late"})),
        Req::new(Method::ListMessages).owner(&o).id(&i),
    ];
    for call in calls {
        t.call(call).await.assert_problem(404, "NOT_FOUND");
    }
    let listed = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(listed.body["conversations"], json!([]));
    let deleted = t
        .call(
            Req::new(Method::Delete)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true"),
        )
        .await;
    assert_eq!((deleted.status, &deleted.body), (200, &json!({})));
    let stored = t.stored(&o, &i).await.expect("still stored");
    assert_eq!(attr_n(&stored, "message_count"), Some(2), "nothing written");
    assert!(!stored.contains_key("delete_time"), "nothing written");
}

#[tokio::test]
async fn a_create_over_an_expired_conversation_succeeds_in_one_conditional_write() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let old = expired_conversation(&t, &o, &i).await;
    t.counter.take();
    let created = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .json(json!({"agents": ["new"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Head and body put over the expired ones, in one transaction.
    assert_eq!(t.counter.take(), ["TransactWriteItems"]);
    assert_eq!(created.body["agents"], json!(["new"]));
    assert_eq!(created.body["messageCount"], 0);
    assert!(
        created.body.get("displayName").is_none(),
        "nothing of the old one"
    );
    assert!(created.body.get("expireTime").is_none());
    assert_ne!(created.body["createTime"], old["createTime"]);
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body, created.body);
    let messages = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(messages.status, 200);
    assert_eq!(
        messages.body["messages"],
        json!([]),
        "the old messages stay hidden"
    );
    let first = t.append(&o, &i, "fresh").await;
    assert_eq!(first.body["order"], 1, "orders start again");
}

#[tokio::test]
async fn allow_missing_over_an_expired_conversation_creates_it_without_looping() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    expired_conversation(&t, &o, &i).await;
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true")
                .json(json!({"agents": ["new"], "displayName": "again"})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    // The mask names agents: the read finds it expired, and the create follows.
    assert_eq!(t.counter.take(), ["Query", "TransactWriteItems"]);
    assert_eq!(res.body["displayName"], "again");
    assert_eq!(res.body["messageCount"], 0);
}

#[tokio::test]
async fn a_request_id_create_over_its_own_expired_conversation_creates_a_new_one() {
    let t = TestApp::new().await;
    let o = owner();
    let request = uuid::Uuid::new_v4().to_string();
    let create = |body: Value| {
        Req::new(Method::Create)
            .owner(&o)
            .query("requestId", &request)
            .json(body)
    };
    let first = t
        .call(create(json!({"agents": ["a"], "ttl": "0.3s"})))
        .await;
    assert_eq!(first.status, 201);
    until_past(&first.body["expireTime"]).await;
    let second = t.call(create(json!({"agents": ["b"]}))).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(
        second.body["name"], first.body["name"],
        "the same derived id"
    );
    assert_eq!(second.body["agents"], json!(["b"]), "a new conversation");
    assert_ne!(second.body["createTime"], first.body["createTime"]);
}

#[tokio::test]
async fn expiry_holds_to_the_microsecond_not_the_rounded_up_ttl() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let expire = just_past_a_second(Duration::from_millis(300));
    let created = t
        .create(&o, &i, json!({"agents": ["a"], "expireTime": expire}))
        .await;
    assert_eq!(created["expireTime"], expire.as_str());
    let stored = t.stored(&o, &i).await.expect("stored");
    let ttl = attr_n(&stored, "ttl_at").expect("ttl_at");
    until_past(&created["expireTime"]).await;
    assert!(
        Timestamp::now().micros() < ttl * 1_000_000,
        "the test runs before DynamoDB's rounded-up TTL"
    );
    t.call(Req::new(Method::Get).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "late"})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    t.append(&o, &i, "late")
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(Req::new(Method::Complete).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    let again = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .json(json!({"agents": ["b"]})),
        )
        .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

#[tokio::test]
async fn an_append_whose_read_answers_after_the_expiry_writes_nothing() {
    let proxy = FaultProxy::start().await;
    let t = TestApp::through(proxy.endpoint()).await;
    let (o, i) = (owner(), id());
    let expire = just_past_a_second(Duration::from_millis(300));
    t.create(&o, &i, json!({"agents": ["a"], "expireTime": expire}))
        .await;
    let left = Timestamp::parse(&expire).expect("valid").micros() - Timestamp::now().micros();
    let hold = u64::try_from(left / 1000 + 100).expect("in the future");
    // DynamoDB reads it live; the answer arrives after the expiry (TTL still a second away).
    proxy.inject("GetItem", Fault::Delay(hold), 1);
    t.append(&o, &i, "after the end")
        .await
        .assert_problem(404, "NOT_FOUND");
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_n(&stored, "message_count"), Some(0));
    assert_eq!(
        t.collection(&o, &i).await.len(),
        2,
        "its head and body, no message item"
    );
}

#[tokio::test]
async fn a_soft_delete_never_postpones_the_expiry() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(&o, &i, json!({"agents": ["a"], "ttl": "3600s"}))
        .await;
    let expire =
        Timestamp::parse(created["expireTime"].as_str().expect("expireTime")).expect("valid");
    let deleted = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["expireTime"], created["expireTime"]);
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(
        attr_n(&stored, "ttl_at"),
        Some(expire.epoch_seconds_ceil()),
        "TTL stays at the expiry, the earlier of expireTime and purgeTime"
    );
    let undeleted = t.call(Req::new(Method::Undelete).owner(&o).id(&i)).await;
    assert_eq!(undeleted.status, 200);
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_n(&stored, "ttl_at"), Some(expire.epoch_seconds_ceil()));

    // An expiry after the would-be purge time: the purge time is the earlier one.
    let far_id = id();
    t.create(&o, &far_id, json!({"agents": ["a"], "ttl": "7776000s"}))
        .await;
    let deleted = t.call(Req::new(Method::Delete).owner(&o).id(&far_id)).await;
    let purge =
        Timestamp::parse(deleted.body["purgeTime"].as_str().expect("purgeTime")).expect("valid");
    let stored = t.stored(&o, &far_id).await.expect("stored");
    assert_eq!(attr_n(&stored, "ttl_at"), Some(purge.epoch_seconds_ceil()));
}

#[tokio::test]
async fn a_deleted_conversation_past_its_expiry_is_missing_and_cannot_be_undeleted() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(&o, &i, json!({"agents": ["a"], "ttl": "2s"}))
        .await;
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    until_past(&created["expireTime"]).await;
    t.call(Req::new(Method::Get).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(Req::new(Method::Undelete).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    let shown = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("showDeleted", "true"),
        )
        .await;
    assert_eq!(shown.body["conversations"], json!([]));
    let stored = t.stored(&o, &i).await.expect("still stored");
    assert!(
        stored.contains_key("delete_time"),
        "the undelete wrote nothing"
    );
}
