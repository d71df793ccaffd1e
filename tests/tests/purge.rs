//! The stream purger: when DynamoDB's TTL removes a conversation item, its messages go too, and
//! only that incarnation's.

use api_tests::{Method, Req, TestApp, attr_n, attr_s, id, owner};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

/// What DynamoDB's TTL does: removes the conversation item, and the stream's REMOVE record.
async fn expire(t: &TestApp, owner: &str, id: &str) -> serde_json::Value {
    let stored = t.stored(owner, id).await.expect("stored");
    t.raw()
        .delete_item()
        .table_name(&t.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(
                attr_s(&stored, "pk").expect("pk").to_owned(),
            ),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("C".into()))
        .send()
        .await
        .expect("delete");
    json!({"Records": [{
        "eventID": "1", "eventName": "REMOVE", "eventSource": "aws:dynamodb",
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
        "dynamodb": {
            "Keys": {"pk": {"S": attr_s(&stored, "pk")}, "sk": {"S": "C"}},
            "OldImage": {"pk": {"S": attr_s(&stored, "pk")}, "sk": {"S": "C"}, "agents": {"L": [{"S": "a"}]},
                          "create_time": {"N": attr_n(&stored, "create_time").expect("create_time").to_string()}},
            "StreamViewType": "OLD_IMAGE"
        }
    }]})
}

async fn purge(t: &TestApp, event: serde_json::Value) {
    let event = serde_json::from_value(event).expect("a stream event");
    purge_messages::handle(&t.app, LambdaEvent::new(event, Context::default()))
        .await
        .expect("purged");
}

#[tokio::test]
async fn a_purged_conversation_loses_its_messages() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for n in 0..30 {
        t.append(&o, &i, format!("m{n}")).await;
    }
    assert_eq!(t.collection(&o, &i).await.len(), 31);
    let event = expire(&t, &o, &i).await;
    purge(&t, event.clone()).await;
    assert_eq!(t.collection(&o, &i).await.len(), 0);
    purge(&t, event).await;
}

#[tokio::test]
async fn a_conversation_recreated_under_the_purged_id_keeps_its_own_messages() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.append(&o, &i, "old").await;
    let event = expire(&t, &o, &i).await;
    t.create(&o, &i, json!({"agents": ["b"]})).await;
    let fresh = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(
        fresh.body["messages"],
        json!([]),
        "the old incarnation's messages are not shown"
    );
    t.append(&o, &i, "new").await;
    purge(&t, event).await;
    let listed = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(listed.body["messages"][0]["content"], "new");
    assert_eq!(
        t.collection(&o, &i).await.len(),
        2,
        "the new conversation and its message"
    );
}

#[tokio::test]
async fn records_other_than_conversation_removals_are_ignored() {
    let t = TestApp::new().await;
    let event = json!({"Records": [
        {"eventName": "MODIFY", "dynamodb": {"Keys": {"pk": {"S": "CONV#x#y"}, "sk": {"S": "C"}}}},
        {"eventName": "REMOVE", "dynamodb": {"Keys": {"pk": {"S": "CONV#x#y"}, "sk": {"S": "M#1#1"}}}}
    ]});
    purge(&t, event).await;
}
