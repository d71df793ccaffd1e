//! The stream purger, fed the table's own stream records from DynamoDB Local through the
//! template's filters: a TTL removal, and a create that took over an expired conversation's id,
//! lose that incarnation's messages; a clear loses the messages up to its boundary, of that
//! incarnation only; a purge loses that incarnation's messages, idempotency markers and item,
//! and never what a create under the same id wrote since; nothing else loses any. A record that
//! fails is reported so that Lambda retries from it, and a batch that failed for good is
//! replayed from the stream through the purger, from the on-failure queue or invoked directly.

use api_tests::fault_proxy::{Fault, FaultProxy, SERVER_ERROR};
use api_tests::stream::{Record, Stream, passes_purger_filters};
use api_tests::{Method, Req, TestApp, attr_n, attr_s, id, owner};
use aws_sdk_dynamodb::types::AttributeValue;
use conversations::domain::time::Timestamp;
use lambda_runtime::{Context, LambdaEvent};
use purge_messages::Purger;
use serde_json::{Value, json};

/// The purge tests share one table and so one stream, and a replay reads a range of it that
/// may hold another test's records: they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn purger(t: &TestApp) -> Purger {
    let config = conversations::app::sdk_config().await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("DynamoDB Local");
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::config::Builder::from(&config)
            .endpoint_url(endpoint)
            .build(),
    );
    Purger {
        app: t.app.clone(),
        streams,
    }
}

async fn invoke(p: &Purger, event: Value) -> Result<Value, lambda_runtime::Error> {
    purge_messages::handle(p, LambdaEvent::new(event, Context::default())).await
}

/// A Lambda stream event of these records.
fn stream_event(records: &[Record]) -> Value {
    json!({"Records": records.iter().map(|r| r.record.clone()).collect::<Vec<_>>()})
}

/// The records of a conversation that the template's filters let through to the purger.
async fn delivered(t: &TestApp, o: &str, i: &str) -> Vec<Record> {
    Stream::of(&t.table)
        .await
        .records_of(o, i)
        .await
        .into_iter()
        .filter(|r| passes_purger_filters(&r.record))
        .collect()
}

/// What DynamoDB's TTL does: removes the conversation item.
async fn ttl_removal(t: &TestApp, o: &str, i: &str) {
    let stored = t.stored(o, i).await.expect("stored");
    t.raw()
        .delete_item()
        .table_name(&t.table)
        .key(
            "pk",
            AttributeValue::S(attr_s(&stored, "pk").expect("pk").to_owned()),
        )
        .key("sk", AttributeValue::S("C".into()))
        .send()
        .await
        .expect("delete");
}

/// How many message items a conversation's collection holds.
async fn messages(t: &TestApp, o: &str, i: &str) -> usize {
    t.collection(o, i)
        .await
        .iter()
        .filter(|item| attr_s(item, "sk").is_some_and(|sk| sk.starts_with("M#")))
        .count()
}

/// A conversation body for these tests. It carries a label because DynamoDB Local writes an
/// empty map into its stream records as `{}` (no `M`), which the SDK's `GetRecords` parser
/// refuses (a replay reads them); DynamoDB itself writes `{"M": {}}`.
fn conversation() -> Value {
    json!({"agents": ["a"], "labels": {"suite": "purge"}})
}

async fn with_messages(t: &TestApp, o: &str, i: &str, n: usize) {
    t.create(o, i, conversation()).await;
    for k in 0..n {
        assert_eq!(t.append(o, i, format!("m{k}")).await.status, 201);
    }
}

/// Appends a message with an idempotency key of its own, which leaves a marker `R#{key}`.
async fn append_keyed(t: &TestApp, o: &str, i: &str, key: &str, content: &str) {
    let body = json!({"type": "USER", "content": content});
    let req = Req::new(Method::Append)
        .owner(o)
        .id(i)
        .query("requestId", key)
        .json(body);
    let res = t.call(req).await;
    assert_eq!(res.status, 201, "{}", res.body);
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn clear(o: &str, i: &str, through: u64) -> Req {
    Req::new(Method::ClearMessages)
        .owner(o)
        .id(i)
        .json(json!({"throughOrder": through}))
}

fn purge(o: &str, i: &str) -> Req {
    Req::new(Method::Purge).owner(o).id(i)
}

/// The live conversation's incarnation (`create_time`, microseconds).
async fn incarnation(t: &TestApp, o: &str, i: &str) -> i64 {
    let stored = t.stored(o, i).await.expect("stored");
    attr_n(&stored, "create_time").expect("create_time")
}

/// The stored messages of a conversation's collection as (incarnation, order), sorted.
async fn stored_messages(t: &TestApp, o: &str, i: &str) -> Vec<(i64, u64)> {
    let mut messages: Vec<(i64, u64)> = t
        .collection(o, i)
        .await
        .iter()
        .filter_map(|item| attr_s(item, "sk"))
        .filter_map(|sk| sk.strip_prefix("M#"))
        .map(|rest| {
            let (order, incarnation) = rest.split_once('#').expect("M#order#incarnation");
            (
                incarnation.parse().expect("an incarnation"),
                order.parse().expect("an order"),
            )
        })
        .collect();
    messages.sort_unstable();
    messages
}

/// The orders of one incarnation's stored messages.
async fn orders_of(t: &TestApp, o: &str, i: &str, incarnation: i64) -> Vec<u64> {
    stored_messages(t, o, i)
        .await
        .into_iter()
        .filter(|(of, _)| *of == incarnation)
        .map(|(_, order)| order)
        .collect()
}

/// The idempotency markers of a conversation's collection: (key, incarnation), sorted.
async fn markers(t: &TestApp, o: &str, i: &str) -> Vec<(String, i64)> {
    let mut markers: Vec<(String, i64)> = t
        .collection(o, i)
        .await
        .iter()
        .filter_map(|item| {
            let key = attr_s(item, "sk")?.strip_prefix("R#")?.to_owned();
            Some((key, attr_n(item, "incarnation").expect("incarnation")))
        })
        .collect();
    markers.sort();
    markers
}

/// The orders list messages answers.
async fn listed(t: &TestApp, o: &str, i: &str) -> Vec<u64> {
    let res = t.call(Req::new(Method::ListMessages).owner(o).id(i)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["order"].as_u64().expect("an order"))
        .collect()
}

fn handled_all() -> Value {
    json!({"batchItemFailures": []})
}

#[tokio::test]
async fn a_ttl_removal_purges_that_conversation_s_messages_and_a_redelivery_is_harmless() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    with_messages(&t, &o, &i, 30).await;
    ttl_removal(&t, &o, &i).await;
    let records = delivered(&t, &o, &i).await;
    assert_eq!(records.len(), 1, "only the removal reaches the purger");
    assert_eq!(records[0].record["eventName"], "REMOVE");
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(t.collection(&o, &i).await.len(), 0);
    let again = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(again, json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn a_create_over_an_expired_conversation_purges_the_old_incarnation_only() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    let mut expiring = conversation();
    // Long enough for its appends to land before it expires on a loaded machine.
    expiring["ttl"] = json!("1s");
    let old = t.create(&o, &i, expiring).await;
    for k in 0..3 {
        assert_eq!(t.append(&o, &i, format!("old{k}")).await.status, 201);
    }
    let expire = Timestamp::parse(old["expireTime"].as_str().expect("expireTime")).expect("ok");
    let wait = expire.micros() - Timestamp::now().micros() + 20_000;
    tokio::time::sleep(std::time::Duration::from_micros(wait.max(0).unsigned_abs())).await;
    t.create(&o, &i, conversation()).await;
    assert_eq!(t.append(&o, &i, "new").await.status, 201);
    assert_eq!(
        messages(&t, &o, &i).await,
        4,
        "the old ones are still stored"
    );

    let records = delivered(&t, &o, &i).await;
    assert_eq!(records.len(), 1, "only the takeover reaches the purger");
    assert_eq!(records[0].record["eventName"], "MODIFY");
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(
        messages(&t, &o, &i).await,
        1,
        "the new conversation's message stays"
    );
    let listed = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(listed.body["messages"][0]["content"], "new");
    assert_eq!(listed.body["messages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn writes_that_leave_nothing_unreachable_neither_pass_the_filters_nor_purge_anything() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    with_messages(&t, &o, &i, 3).await;
    let batch = json!({"messages": [{"type": "USER", "content": "b1"}, {"type": "AGENT", "content": "b2"}]});
    for req in [
        Req::new(Method::BatchAppend).owner(&o).id(&i).json(batch),
        Req::new(Method::UpdateMessage)
            .owner(&o)
            .id(&i)
            .order(2)
            .json(json!({"content": "redacted"})),
        Req::new(Method::DeleteMessage).owner(&o).id(&i).order(1),
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
        Req::new(Method::Complete).owner(&o).id(&i),
        Req::new(Method::Delete).owner(&o).id(&i),
        Req::new(Method::Undelete).owner(&o).id(&i),
    ] {
        let res = t.call(req).await;
        assert!(res.status == 200 || res.status == 201, "{}", res.body);
    }
    // A clear of a conversation that holds nothing moves no boundary (it writes 0).
    let empty = id();
    t.create(&o, &empty, conversation()).await;
    assert_eq!(t.call(clear(&o, &empty, 5)).await.status, 200);

    let stream = Stream::of(&t.table).await;
    let mut all = stream.records_of(&o, &i).await;
    assert_eq!(
        all.len(),
        19,
        "create (head, body), 3 × (message, count), batch (2 messages, count), edit (message, \
         conversation), delete message (message, count), update, complete, delete, undelete"
    );
    all.extend(stream.records_of(&o, &empty).await);
    assert_eq!(
        all.len(),
        22,
        "and the empty one's create (head, body) and clear"
    );
    assert!(all.iter().all(|r| !passes_purger_filters(&r.record)));
    let answer = invoke(&p, stream_event(&all)).await.expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(messages(&t, &o, &i).await, 4, "nothing was purged");
}

// ------------------------------------------------------------------------------------ clear

#[tokio::test]
async fn a_clear_s_record_purges_exactly_the_messages_it_cleared_of_that_incarnation() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    with_messages(&t, &o, &i, 6).await;
    let live = incarnation(&t, &o, &i).await;
    // An earlier conversation of the id left messages at the same orders: not this clear's.
    t.leftovers(&o, &i, 5_000_000, 1..=3).await;
    assert_eq!(t.call(clear(&o, &i, 2)).await.status, 200);
    assert_eq!(t.call(clear(&o, &i, 4)).await.status, 200);
    assert_eq!(
        orders_of(&t, &o, &i, live).await,
        [1, 2, 3, 4, 5, 6],
        "a clear writes nothing per message"
    );

    let records = delivered(&t, &o, &i).await;
    assert_eq!(records.len(), 2, "the two clears reach the purger");
    assert!(records.iter().all(|r| r.record["eventName"] == "MODIFY"));
    let answer = invoke(&p, stream_event(&records[..1]))
        .await
        .expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(orders_of(&t, &o, &i, live).await, [3, 4, 5, 6]);
    let answer = invoke(&p, stream_event(&records[1..]))
        .await
        .expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(orders_of(&t, &o, &i, live).await, [5, 6], "kept: 5 and 6");
    assert_eq!(
        orders_of(&t, &o, &i, live - 5_000_000).await,
        [1, 2, 3],
        "the earlier incarnation's are left to their own record"
    );
    assert_eq!(listed(&t, &o, &i).await, [5, 6]);
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body["messageCount"], 2);

    // Redelivered (Lambda delivers at least once): nothing more goes.
    let again = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(again, handled_all());
    assert_eq!(orders_of(&t, &o, &i, live).await, [5, 6]);
}

#[tokio::test]
async fn later_writes_of_a_cleared_conversation_pass_the_filters_and_purge_nothing_more() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    with_messages(&t, &o, &i, 4).await;
    let live = incarnation(&t, &o, &i).await;
    assert_eq!(t.call(clear(&o, &i, 2)).await.status, 200);
    let stream = Stream::of(&t.table).await;
    let until_clear = stream.records_of(&o, &i).await.len();
    let cleared = delivered(&t, &o, &i).await;
    assert_eq!(cleared.len(), 1);
    assert_eq!(
        invoke(&p, stream_event(&cleared)).await.expect("handled"),
        handled_all()
    );
    assert_eq!(orders_of(&t, &o, &i, live).await, [3, 4]);

    let batch = json!({"messages": [{"type": "USER", "content": "b1"}, {"type": "AGENT", "content": "b2"}]});
    let writes = [
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .json(json!({"type": "USER", "content": "m5"})),
        Req::new(Method::BatchAppend).owner(&o).id(&i).json(batch),
        Req::new(Method::UpdateMessage)
            .owner(&o)
            .id(&i)
            .order(3)
            .json(json!({"content": "redacted"})),
        Req::new(Method::DeleteMessage).owner(&o).id(&i).order(4),
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
        // Through an order already cleared: moves nothing but updateTime and the etag.
        clear(&o, &i, 1),
        Req::new(Method::Complete).owner(&o).id(&i),
    ];
    let n = writes.len();
    for req in writes {
        let res = t.call(req).await;
        assert!(res.status == 200 || res.status == 201, "{}", res.body);
    }
    let later: Vec<Record> = stream.records_of(&o, &i).await[until_clear..].to_vec();
    let passing: Vec<Record> = later
        .iter()
        .filter(|r| passes_purger_filters(&r.record))
        .cloned()
        .collect();
    // The filters cannot compare the boundary with the old one: each write of the conversation
    // item passes (docs/erasure.md, the cost); the message items' records do not.
    assert_eq!(passing.len(), n, "one record per write of the conversation");
    assert!(
        passing
            .iter()
            .all(|r| r.record["dynamodb"]["Keys"]["sk"]["S"] == "C")
    );
    t.counter.take();
    let answer = invoke(&p, stream_event(&passing)).await.expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(
        t.counter.take(),
        Vec::<String>::new(),
        "they cost no DynamoDB request"
    );
    assert_eq!(orders_of(&t, &o, &i, live).await, [3, 5, 6, 7]);
    assert_eq!(listed(&t, &o, &i).await, [3, 5, 6, 7]);
}

// ------------------------------------------------------------------------------------ purge

#[tokio::test]
async fn a_purge_s_record_deletes_its_messages_markers_and_item_and_nothing_else() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i, neighbour) = (owner(), id(), id());
    for c in [&i, &neighbour] {
        t.create(&o, c, conversation()).await;
        for k in 0..3 {
            append_keyed(&t, &o, c, &key(), &format!("m{k}")).await;
        }
    }
    let res = t.call(purge(&o, &i)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        messages(&t, &o, &i).await,
        3,
        "the purge itself writes one item"
    );
    assert_eq!(markers(&t, &o, &i).await.len(), 3);

    let records = delivered(&t, &o, &i).await;
    assert_eq!(records.len(), 1, "only the purge reaches the purger");
    assert_eq!(records[0].record["eventName"], "MODIFY");
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(answer, handled_all());
    assert!(
        t.collection(&o, &i).await.is_empty(),
        "messages, markers and the conversation item are gone"
    );
    assert_eq!(messages(&t, &o, &neighbour).await, 3);
    assert_eq!(markers(&t, &o, &neighbour).await.len(), 3);
    assert!(t.stored(&o, &neighbour).await.is_some());

    // The purger's own delete of the item is a REMOVE the filters pass: it finds nothing left,
    // at the cost of one keys-only Query and one conditional delete of a body already gone.
    let records = delivered(&t, &o, &i).await;
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].record["eventName"], "REMOVE");
    t.counter.take();
    let answer = invoke(&p, stream_event(&records[1..]))
        .await
        .expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(t.counter.take(), ["Query", "DeleteItem"]);
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(answer, handled_all(), "redelivered: harmless");
    assert!(t.collection(&o, &i).await.is_empty());
    assert_eq!(messages(&t, &o, &neighbour).await, 3);
}

#[tokio::test]
async fn a_create_under_a_purged_id_before_the_purger_ran_keeps_its_own_item_markers_and_messages()
{
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    let (reused, fresh) = (key(), key());
    t.create(&o, &i, conversation()).await;
    let old = incarnation(&t, &o, &i).await;
    append_keyed(&t, &o, &i, &reused, "old1").await;
    append_keyed(&t, &o, &i, &key(), "old2").await;
    append_keyed(&t, &o, &i, &key(), "old3").await;
    assert_eq!(t.call(purge(&o, &i)).await.status, 200);
    // The id is free at once; the old incarnation's keys count as new keys for the new one.
    t.create(&o, &i, conversation()).await;
    let new = incarnation(&t, &o, &i).await;
    assert_ne!(new, old);
    append_keyed(&t, &o, &i, &reused, "new1").await;
    append_keyed(&t, &o, &i, &fresh, "new2").await;
    assert_eq!(stored_messages(&t, &o, &i).await.len(), 5);

    let records = delivered(&t, &o, &i).await;
    assert_eq!(
        records.len(),
        2,
        "the purge, and the create that took the id over"
    );
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(
        stored_messages(&t, &o, &i).await,
        [(new, 1), (new, 2)],
        "only the new conversation's messages"
    );
    let mut kept = vec![(reused, new), (fresh, new)];
    kept.sort();
    assert_eq!(markers(&t, &o, &i).await, kept, "only its markers");
    assert_eq!(incarnation(&t, &o, &i).await, new, "its item stays");
    let body = t.stored_item(&o, &i, "B").await.expect("and its body");
    assert_eq!(attr_n(&body, "create_time"), Some(new), "its own body");
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["messageCount"], 2);
    assert_eq!(listed(&t, &o, &i).await, [1, 2]);
}

#[tokio::test]
async fn a_failing_record_is_reported_so_that_lambda_retries_from_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let proxy = FaultProxy::start().await;
    let t = TestApp::through(proxy.endpoint()).await;
    let p = purger(&t).await;
    let o = owner();
    let (first, second) = (id(), id());
    for i in [&first, &second] {
        with_messages(&t, &o, i, 3).await;
        ttl_removal(&t, &o, i).await;
    }
    let mut records = delivered(&t, &o, &first).await;
    records.extend(delivered(&t, &o, &second).await);
    // The first purge's deletes go through; every later one fails.
    proxy.inject("BatchWriteItem", Fault::Delay(0), 1);
    proxy.inject("BatchWriteItem", SERVER_ERROR, 100);
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": records[1].sequence()}]})
    );
    assert_eq!(messages(&t, &o, &first).await, 0);
    assert_eq!(
        messages(&t, &o, &second).await,
        3,
        "not purged, to be retried"
    );
    proxy.take_seen();
    // Lambda's retry from the reported record, with DynamoDB back.
    let proxy_clear = FaultProxy::start().await;
    let healthy = Purger {
        app: TestApp::through(proxy_clear.endpoint()).await.app,
        streams: p.streams.clone(),
    };
    let retried = invoke(&healthy, stream_event(&records[1..]))
        .await
        .expect("handled");
    assert_eq!(retried, json!({"batchItemFailures": []}));
    assert_eq!(messages(&t, &o, &second).await, 0);
}

#[tokio::test]
async fn a_marker_a_new_conversation_wrote_under_a_reused_key_while_the_purger_ran_stays() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let proxy = FaultProxy::start().await;
    let p = Purger {
        app: TestApp::through(proxy.endpoint()).await.app,
        streams: purger(&t).await.streams,
    };
    let (o, i, reused) = (owner(), id(), key());
    t.create(&o, &i, conversation()).await;
    append_keyed(&t, &o, &i, &reused, "old").await;
    assert_eq!(t.call(purge(&o, &i)).await.status, 200);
    let records = delivered(&t, &o, &i).await;
    assert_eq!(records.len(), 1);

    // The purger reads the old marker; its answer is held while a create takes the id and an
    // append under the same key writes the new conversation's marker over it.
    proxy.inject("Query", Fault::Delay(0), 1);
    proxy.inject("Query", Fault::Delay(1500), 1);
    let running = tokio::spawn(async move { invoke(&p, stream_event(&records)).await });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    t.create(&o, &i, conversation()).await;
    let new = incarnation(&t, &o, &i).await;
    append_keyed(&t, &o, &i, &reused, "new").await;
    let answer = running.await.expect("joined").expect("handled");
    assert_eq!(answer, handled_all());
    let seen = proxy.take_seen();
    assert_eq!(
        seen.iter().map(|(op, _)| op.as_str()).collect::<Vec<_>>()[..3],
        ["Query", "BatchWriteItem", "Query"],
        "the messages' read and delete, then the markers' read: {seen:?}"
    );
    assert_eq!(seen[2].1, Some(Fault::Delay(1500)), "the one held");

    assert_eq!(
        markers(&t, &o, &i).await,
        [(reused.clone(), new)],
        "the new conversation's marker stays"
    );
    // So the key still answers the new conversation's first call, appending nothing again.
    append_keyed(&t, &o, &i, &reused, "new").await;
    assert_eq!(stored_messages(&t, &o, &i).await, [(new, 1)]);
}

#[tokio::test]
async fn a_clear_or_purge_that_fails_is_reported_and_lambda_s_retry_finishes_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let proxy = FaultProxy::start().await;
    let t = TestApp::through(proxy.endpoint()).await;
    let p = purger(&t).await;
    let o = owner();
    let (cleared, purged) = (id(), id());
    with_messages(&t, &o, &cleared, 3).await;
    let live = incarnation(&t, &o, &cleared).await;
    assert_eq!(t.call(clear(&o, &cleared, 2)).await.status, 200);
    t.create(&o, &purged, conversation()).await;
    append_keyed(&t, &o, &purged, &key(), "m1").await;
    append_keyed(&t, &o, &purged, &key(), "m2").await;
    assert_eq!(t.call(purge(&o, &purged)).await.status, 200);
    let mut records = delivered(&t, &o, &cleared).await;
    records.extend(delivered(&t, &o, &purged).await);
    assert_eq!(records.len(), 2);
    // The purge's two markers go; the delete of its conversation item fails, every attempt.
    proxy.inject("DeleteItem", Fault::Delay(0), 2);
    proxy.inject("DeleteItem", SERVER_ERROR, 100);
    let answer = invoke(&p, stream_event(&records)).await.expect("handled");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": records[1].sequence()}]})
    );
    assert_eq!(
        orders_of(&t, &o, &cleared, live).await,
        [3],
        "the clear went through"
    );
    assert_eq!(messages(&t, &o, &purged).await, 0, "messages go first");
    assert!(markers(&t, &o, &purged).await.is_empty());
    let stored = t
        .stored(&o, &purged)
        .await
        .expect("the item stays, for the retry");
    assert!(attr_n(&stored, "purged_at").is_some());

    // Lambda's retry from the reported record, with DynamoDB back.
    let healthy_proxy = FaultProxy::start().await;
    let healthy = Purger {
        app: TestApp::through(healthy_proxy.endpoint()).await.app,
        streams: p.streams.clone(),
    };
    let retried = invoke(&healthy, stream_event(&records[1..]))
        .await
        .expect("handled");
    assert_eq!(retried, handled_all());
    assert!(t.collection(&o, &purged).await.is_empty());
}

/// A stream event of one record written by hand, as docs/erasure.md tells an operator to when a
/// clear's or purge's record is gone from the stream (24 hours) before it was replayed.
fn hand_written(partition: &str, incarnation: i64, new: Value) -> Value {
    let mut new_image = json!({"create_time": {"N": incarnation.to_string()}});
    new_image
        .as_object_mut()
        .expect("an object")
        .extend(new.as_object().expect("an object").clone());
    json!({"Records": [{"eventName": "MODIFY", "dynamodb": {
        "SequenceNumber": "0",
        "Keys": {"pk": {"S": partition}, "sk": {"S": "C"}},
        "OldImage": {"create_time": {"N": incarnation.to_string()}},
        "NewImage": new_image,
    }}]})
}

#[tokio::test]
async fn an_operator_s_hand_written_record_purges_what_a_lost_clear_or_purge_left() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let o = owner();
    let (cleared, purged) = (id(), id());
    with_messages(&t, &o, &cleared, 5).await;
    let live = incarnation(&t, &o, &cleared).await;
    assert_eq!(t.call(clear(&o, &cleared, 3)).await.status, 200);
    t.create(&o, &purged, conversation()).await;
    let gone = incarnation(&t, &o, &purged).await;
    append_keyed(&t, &o, &purged, &key(), "m1").await;
    assert_eq!(t.call(purge(&o, &purged)).await.status, 200);
    // Neither record reaches the purger (lost); the operator writes them from the items.
    let clear_record = hand_written(
        &format!("CONV#{o}#{cleared}"),
        live,
        json!({"cleared_through": {"N": "3"}}),
    );
    let answer = invoke(&p, clear_record).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(orders_of(&t, &o, &cleared, live).await, [4, 5]);
    let purge_record = hand_written(
        &format!("CONV#{o}#{purged}"),
        gone,
        json!({"purged_at": {"N": "1"}}),
    );
    let answer = invoke(&p, purge_record).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert!(t.collection(&o, &purged).await.is_empty());
}

/// Lambda's on-failure record for the stream range `first..=last` of one shard.
fn failure_record(stream: &Stream, first: &Record, last: &Record) -> Value {
    assert_eq!(first.shard, last.shard);
    json!({
        "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:1:function:purge",
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 21},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-01T00:00:00.000Z",
        "DDBStreamBatchInfo": {
            "shardId": first.shard,
            "startSequenceNumber": first.sequence(),
            "endSequenceNumber": last.sequence(),
            "approximateArrivalOfFirstRecord": "2026-12-01T00:00:00Z",
            "approximateArrivalOfLastRecord": "2026-12-01T00:00:00Z",
            "batchSize": 2,
            "streamArn": stream.arn,
        }
    })
}

#[tokio::test]
async fn a_batch_that_failed_for_good_is_replayed_from_the_stream_through_the_purger() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let o = owner();
    let (queued, invoked) = (id(), id());
    for i in [&queued, &invoked] {
        with_messages(&t, &o, i, 4).await;
        ttl_removal(&t, &o, i).await;
    }
    let stream = Stream::of(&t.table).await;

    // From the on-failure queue, through the Replay mapping (an SQS event), next to a message
    // that is no failure record: that one stays in the queue.
    let records = stream.records_of(&o, &queued).await;
    let (first, last) = (&records[0], &records[records.len() - 1]);
    let event = json!({"Records": [
        {"messageId": "m-1", "eventSource": "aws:sqs", "body": failure_record(&stream, first, last).to_string()},
        {"messageId": "m-2", "eventSource": "aws:sqs", "body": "{\"not\": \"a failure record\"}"},
    ]});
    let answer = invoke(&p, event).await.expect("handled");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
    );
    assert_eq!(messages(&t, &o, &queued).await, 0);

    // SQS records the purger cannot read are reported, never dropped (a dropped one is deleted
    // from the queue, and the batch it names is never purged): by their id, and one without an
    // id fails the whole batch (an empty identifier), which then stays in the queue.
    let unreadable = json!({"Records": [
        {"messageId": "m-3", "eventSource": "aws:sqs", "body": 42},
        {"messageId": "m-4", "eventSource": "aws:sqs"},
    ]});
    let answer = invoke(&p, unreadable).await.expect("handled");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-3"}, {"itemIdentifier": "m-4"}]})
    );
    let without_id = json!({"Records": [
        {"eventSource": "aws:sqs", "body": "{}"},
        {"messageId": "m-5", "eventSource": "aws:sqs", "body": "{}"},
    ]});
    let answer = invoke(&p, without_id).await.expect("handled");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": ""}, {"itemIdentifier": "m-5"}]})
    );

    // Invoked directly with the record (aws lambda invoke --payload file://record.json).
    let records = stream.records_of(&o, &invoked).await;
    let (first, last) = (&records[0], &records[records.len() - 1]);
    let answer = invoke(&p, failure_record(&stream, first, last))
        .await
        .expect("replayed");
    assert_eq!(answer, json!({"purged": 5}), "four messages and the body");
    assert_eq!(messages(&t, &o, &invoked).await, 0);
    assert!(t.collection(&o, &invoked).await.is_empty());
}

#[tokio::test]
async fn clears_purges_and_takeovers_that_failed_for_good_are_replayed_from_the_queue() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let o = owner();
    let (cleared, purged, taken) = (id(), id(), id());
    with_messages(&t, &o, &cleared, 4).await;
    let live = incarnation(&t, &o, &cleared).await;
    assert_eq!(t.call(clear(&o, &cleared, 3)).await.status, 200);
    // Written after the clear: a replay reads every record of the range, filters or not.
    assert_eq!(t.append(&o, &cleared, "m5").await.status, 201);

    t.create(&o, &purged, conversation()).await;
    append_keyed(&t, &o, &purged, &key(), "m1").await;
    append_keyed(&t, &o, &purged, &key(), "m2").await;
    assert_eq!(t.call(purge(&o, &purged)).await.status, 200);

    let mut expiring = conversation();
    // Long enough for its appends to land before it expires on a loaded machine.
    expiring["ttl"] = json!("1s");
    let old = t.create(&o, &taken, expiring).await;
    for k in 0..2 {
        assert_eq!(t.append(&o, &taken, format!("old{k}")).await.status, 201);
    }
    let expire = Timestamp::parse(old["expireTime"].as_str().expect("expireTime")).expect("ok");
    let wait = expire.micros() - Timestamp::now().micros() + 20_000;
    tokio::time::sleep(std::time::Duration::from_micros(wait.max(0).unsigned_abs())).await;
    t.create(&o, &taken, conversation()).await;
    let new = incarnation(&t, &o, &taken).await;
    assert_eq!(t.append(&o, &taken, "new").await.status, 201);

    // Each conversation's whole range, as Lambda would name three failed batches.
    let stream = Stream::of(&t.table).await;
    let mut event = Vec::new();
    for (k, c) in [&cleared, &purged, &taken].into_iter().enumerate() {
        let records = stream.records_of(&o, c).await;
        let (first, last) = (&records[0], &records[records.len() - 1]);
        event.push(
            json!({"messageId": format!("m-{k}"), "eventSource": "aws:sqs",
                          "body": failure_record(&stream, first, last).to_string()}),
        );
    }
    let answer = invoke(&p, json!({"Records": event}))
        .await
        .expect("handled");
    assert_eq!(answer, handled_all());
    assert_eq!(orders_of(&t, &o, &cleared, live).await, [4, 5]);
    assert_eq!(listed(&t, &o, &cleared).await, [4, 5]);
    assert!(t.collection(&o, &purged).await.is_empty());
    assert_eq!(stored_messages(&t, &o, &taken).await, [(new, 1)]);
    assert_eq!(listed(&t, &o, &taken).await, [1]);
}

#[tokio::test]
async fn a_replay_of_records_the_stream_no_longer_holds_fails_and_says_so() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestApp::new().await;
    let p = purger(&t).await;
    let (o, i) = (owner(), id());
    with_messages(&t, &o, &i, 1).await;
    let stream = Stream::of(&t.table).await;
    let records = stream.records_of(&o, &i).await;
    let mut gone = failure_record(&stream, &records[0], &records[0]);
    gone["DDBStreamBatchInfo"]["startSequenceNumber"] = json!("999999999999999999999999");
    gone["DDBStreamBatchInfo"]["endSequenceNumber"] = json!("999999999999999999999999");
    let error = invoke(&p, gone).await.expect_err("nothing to replay");
    assert!(error.to_string().contains("shard"), "{error}");
}
