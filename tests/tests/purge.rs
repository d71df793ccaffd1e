//! The stream purger, fed the table's own stream records from DynamoDB Local through the
//! template's filters: a TTL removal, and a create that took over an expired conversation's id,
//! lose that incarnation's messages; nothing else loses any. A record that fails is reported so
//! that Lambda retries from it, and a batch that failed for good is replayed from the stream
//! through the purger, from the on-failure queue or invoked directly.

use api_tests::fault_proxy::{Fault, FaultProxy, SERVER_ERROR};
use api_tests::stream::{Record, Stream, passes_purger_filters};
use api_tests::{Method, Req, TestApp, attr_s, id, owner};
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
    expiring["ttl"] = json!("0.3s");
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
    with_messages(&t, &o, &i, 2).await;
    for req in [
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
        Req::new(Method::Complete).owner(&o).id(&i),
        Req::new(Method::Delete).owner(&o).id(&i),
        Req::new(Method::Undelete).owner(&o).id(&i),
    ] {
        assert_eq!(t.call(req).await.status, 200);
    }
    let all = Stream::of(&t.table).await.records_of(&o, &i).await;
    assert_eq!(
        all.len(),
        9,
        "create, 2 × (message, count), update, complete, delete, undelete"
    );
    assert!(all.iter().all(|r| !passes_purger_filters(&r.record)));
    let answer = invoke(&p, stream_event(&all)).await.expect("handled");
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(messages(&t, &o, &i).await, 2, "nothing was purged");
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
    assert_eq!(answer, json!({"purged": 4}));
    assert_eq!(messages(&t, &o, &invoked).await, 0);
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
