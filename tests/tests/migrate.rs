//! A table written by an earlier layout — 1 (before revision 2: message keys
//! `M#{i64::MAX - incarnation}#{order}`, no activity index, owners unescaped) or 2 (metadata as
//! one JSON text, no parents for the seed objects' leaves) — is rewritten by the migration and
//! then served as if this version had written it; the local table tool refuses such a table until
//! then. (This binary has a table of its own, which it rewrites whole.)

use std::collections::HashMap;

use api_tests::{Method, Req, TestApp, attr_s};
use aws_sdk_dynamodb::types::AttributeValue;
use conversations::AuthMode;
use conversations::store::{item, migrate, schema};
use serde_json::{Value, json};

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A conversation item as layout 1 wrote it, with `messages` messages.
fn layout_1(owner: &str, id: &str, created: i64, messages: i64) -> Vec<Item> {
    let pk = format!("CONV#{owner}#{id}");
    let conversation: Item = [
        ("pk", s(&pk)),
        ("sk", s("C")),
        ("gsi1pk", s(owner)),
        ("gsi1sk", s(&format!("{created:018}#{id}"))),
        ("id", s(id)),
        ("owner", s(owner)),
        ("agents", AttributeValue::L(vec![s("bot")])),
        ("labels", AttributeValue::M(HashMap::new())),
        ("conversation_stage", s("VIRTUAL_AGENT_STAGE")),
        ("lifecycle_state", s("IN_PROGRESS")),
        ("create_time", n(created)),
        ("updated_at", n(created + messages)),
        ("last_used_time", n(created + messages)),
        ("message_count", n(messages)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut items = vec![conversation];
    for order in 1..=messages {
        let message: Item = [
            ("pk", s(&pk)),
            (
                "sk",
                s(&format!("M#{:019}#{order:010}", i64::MAX - created)),
            ),
            ("order", n(order)),
            ("type", s("USER")),
            ("content", s(&format!("old {order}"))),
            ("create_time", n(created + order)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        items.push(message);
    }
    items
}

/// A conversation item as layout 2 wrote it: metadata as JSON text, no seed objects.
fn layout_2(owner: &str, id: &str, created: i64) -> Item {
    let mut conversation = layout_1(owner, id, created, 0).remove(0);
    conversation.insert("gsi2pk".into(), s(owner));
    conversation.insert("gsi2sk".into(), s(&format!("{created:018}#{id}")));
    conversation.insert("metadata".into(), s("{\"channel\":\"web\",\"n\":[1,2]}"));
    conversation
}

fn jwt(sub: &str) -> Value {
    json!({"http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
        "authorizer": {"jwt": {"claims": {"sub": sub}, "scopes": null}}, "timeEpoch": 0})
}

#[tokio::test]
async fn a_layout_1_table_is_migrated_in_place_and_then_read_as_written_by_this_version() {
    let t = TestApp::with_auth(AuthMode::Jwt).await;
    // A table of layout 1 has no marker.
    t.raw()
        .delete_item()
        .table_name(&t.table)
        .set_key(Some(schema::layout_key()))
        .send()
        .await
        .expect("drop the marker");
    let created = conversations::domain::time::Timestamp::now().micros() - 10_000_000;
    let (plain, slashed) = ("migrated-user", "tenant/migrated-user");
    for (owner, id) in [(plain, "old-one"), (slashed, "old-two")] {
        for i in layout_1(owner, id, created, 3) {
            t.raw()
                .put_item()
                .table_name(&t.table)
                .set_item(Some(i))
                .send()
                .await
                .expect("a layout 1 item");
        }
    }
    t.raw()
        .put_item()
        .table_name(&t.table)
        .set_item(Some(layout_2(plain, "old-three", created)))
        .send()
        .await
        .expect("a layout 2 item");
    assert_eq!(schema::layout(t.raw(), &t.table).await.expect("read"), None);

    let report = migrate::migrate(t.raw(), &t.table).await.expect("migrated");
    assert_eq!((report.conversations, report.messages), (3, 6));
    assert_eq!(
        schema::layout(t.raw(), &t.table).await.expect("read"),
        Some(item::LAYOUT)
    );
    let again = migrate::migrate(t.raw(), &t.table).await.expect("again");
    assert_eq!((again.conversations, again.messages), (0, 0), "idempotent");

    for (owner, id) in [(plain, "old-one"), (slashed, "old-two")] {
        let as_owner = |req: Req| req.context(jwt(owner));
        let got = t.call(as_owner(Req::new(Method::Get).id(id))).await;
        assert_eq!(got.status, 200, "{owner}: {}", got.body);
        assert_eq!(got.body["owner"], owner);
        assert_eq!(got.body["messageCount"], 3);
        let listed = t
            .call(as_owner(
                Req::new(Method::ListMessages)
                    .id(id)
                    .query("orderBy", "order desc"),
            ))
            .await;
        let contents: Vec<&str> = listed.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().expect("content"))
            .collect();
        assert_eq!(contents, ["old 3", "old 2", "old 1"], "{owner}");
        let one = t
            .call(as_owner(Req::new(Method::GetMessage).id(id).order(2)))
            .await;
        assert_eq!(one.body["content"], "old 2");
        assert_eq!(one.body["updateTime"], one.body["createTime"]);
        let recent = t
            .call(as_owner(
                Req::new(Method::List).query("orderBy", "lastUsedTime desc"),
            ))
            .await;
        assert_eq!(
            recent.body["conversations"][0]["name"],
            format!("conversations/{id}")
        );
        let appended = t
            .call(as_owner(
                Req::new(Method::Append)
                    .id(id)
                    .json(json!({"type": "AGENT", "content": "new"})),
            ))
            .await;
        assert_eq!(appended.body["order"], 4);
    }
    // Layout 2's conversation keeps its metadata, now a map its keys are written into in place,
    // and takes a seed object's leaf at once.
    let as_plain = |req: Req| req.context(jwt(plain));
    let got = t
        .call(as_plain(Req::new(Method::Get).id("old-three")))
        .await;
    assert_eq!(got.body["metadata"], json!({"channel": "web", "n": [1, 2]}));
    t.counter.take();
    let patched = t
        .call(as_plain(
            Req::new(Method::Update)
                .id("old-three")
                .query("updateMask", "metadata.channel,data_source.gcs_source.audio_uri")
                .json(json!({"metadata": {"channel": "phone"}, "dataSource": {"gcsSource": {"audioUri": "gs://b/a"}}})),
        ))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(t.counter.take(), ["UpdateItem"]);
    assert_eq!(
        patched.body["metadata"],
        json!({"channel": "phone", "n": [1, 2]})
    );
    assert_eq!(
        patched.body["dataSource"],
        json!({"gcsSource": {"audioUri": "gs://b/a"}})
    );
    // The owner holding `/` moved to its escaped key; nothing is left under the old one.
    let old = t
        .raw()
        .query()
        .table_name(&t.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(&format!("CONV#{slashed}#old-two")))
        .send()
        .await
        .expect("query");
    assert_eq!(old.count(), 0);
    let moved = t
        .raw()
        .get_item()
        .table_name(&t.table)
        .key("pk", s("CONV#tenant%2Fmigrated-user#old-two"))
        .key("sk", s("C"))
        .send()
        .await
        .expect("get")
        .item
        .expect("the moved conversation");
    assert_eq!(attr_s(&moved, "gsi2pk"), Some("tenant%2Fmigrated-user"));
}
