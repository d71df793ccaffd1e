//! A table written by an earlier layout — 1 (before revision 2: message keys
//! `M#{i64::MAX - incarnation}#{order}`, no activity index, owners unescaped) or 2 (metadata as
//! one JSON text, no parents for the seed objects' leaves) — is rewritten by the migration and
//! then served as if this version had written it; the local table tool refuses such a table until
//! then. The migration runs with the service live: what is written while it runs is kept. (This
//! binary has a table of its own, which the first test rewrites whole; the tests that race writes
//! against the migration each make a table of their own.)

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use api_tests::{Method, Req, Res, TestApp, attr_n, attr_s, id, owner};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use conversations::domain::page_token::TokenKey;
use conversations::domain::time::Timestamp;
use conversations::store::{item, migrate, schema, split};
use conversations::{App, AuthMode, Config};
use futures_util::future::join_all;
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
    assert_eq!((report.refused, again.refused), (0, 0), "nothing raced it");
    assert!(report.left.is_empty(), "{report:?}");

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
    // Split by the migration: a write of its large fields reads it and writes head and body.
    assert_eq!(t.counter.take(), ["Query", "TransactWriteItems"]);
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

/// A table of its own (created in this layout, then marked with `layout`, or unmarked) and an
/// app over it: the migration rewrites a whole table, and these tests must not rewrite each
/// other's items or the first test's.
struct OwnTable {
    app: App,
    table: String,
    raw: Client,
}

impl OwnTable {
    async fn new(auth: AuthMode, layout: Option<i64>) -> Self {
        conversations::app::init_tracing();
        let raw = api_tests::client().await;
        let table = format!("conversations-migrate-{}", uuid::Uuid::new_v4());
        schema::ensure_table(&raw, &table)
            .await
            .expect("create the table");
        let mut marker = schema::layout_key();
        match layout {
            Some(layout) => {
                marker.insert("layout".into(), n(layout));
                raw.put_item()
                    .table_name(&table)
                    .set_item(Some(marker))
                    .send()
                    .await
                    .expect("mark the table");
            }
            None => {
                raw.delete_item()
                    .table_name(&table)
                    .set_key(Some(marker))
                    .send()
                    .await
                    .expect("drop the marker");
            }
        }
        let config = Config {
            table: table.clone(),
            auth,
            token_key: TokenKey::new("test-key"),
            delegation_scope: conversations::app::DEFAULT_DELEGATION_SCOPE.into(),
            write_layout: conversations::store::item::LAYOUT,
        };
        Self {
            app: App::new(config, raw.clone()),
            table,
            raw,
        }
    }

    async fn call(&self, req: Req) -> Res {
        TestApp::call_app(&self.app, req).await
    }

    async fn put(&self, items: impl IntoIterator<Item = Item>) {
        for i in items {
            self.raw
                .put_item()
                .table_name(&self.table)
                .set_item(Some(i))
                .send()
                .await
                .expect("an old item");
        }
    }

    /// Every item under a partition key, read consistently (what a scan reads of it).
    async fn collection(&self, pk: &str) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .raw
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("query a collection");
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return items,
            }
        }
    }

    /// A conversation's head with what its body holds (layout 4), or its whole item.
    async fn conversation(&self, pk: &str) -> Option<Item> {
        let mut head = self.item(pk, "C").await?;
        if let Some(body) = self.item(pk, "B").await {
            for name in split::BODY_ATTRIBUTES {
                if let Some(value) = body.get(name) {
                    head.insert(name.to_owned(), value.clone());
                }
            }
        }
        Some(head)
    }

    async fn item(&self, pk: &str, sk: &str) -> Option<Item> {
        self.raw
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .expect("read an item")
            .item
    }

    /// Whether a conversation is stored as layout 4 writes it: a head without the large fields
    /// and a body of the same version, together of layout 3's shapes.
    async fn is_layout_4(&self, pk: &str) -> bool {
        let (Some(head), Some(body)) = (self.item(pk, "C").await, self.item(pk, "B").await) else {
            return false;
        };
        let whole = self.conversation(pk).await.unwrap_or_default();
        head.contains_key("body_version")
            && head.get("body_version") == body.get("body_version")
            && split::BODY_ATTRIBUTES
                .iter()
                .all(|k| !head.contains_key(*k))
            && matches!(whole.get("metadata"), Some(AttributeValue::M(_)))
            && [
                "metadata_bytes",
                "quality_metadata",
                "call_metadata",
                "data_source",
                "gsi2pk",
            ]
            .iter()
            .all(|k| whole.contains_key(*k))
    }
}

/// The orders of a collection's message items, and whether every one is keyed as layout 3 writes.
fn message_orders(collection: &[Item]) -> (Vec<i64>, bool) {
    let messages: Vec<&Item> = collection
        .iter()
        .filter(|i| attr_s(i, "sk").is_some_and(|sk| sk.starts_with("M#")))
        .collect();
    let orders = messages.iter().filter_map(|m| attr_n(m, "order")).collect();
    let keyed = messages.iter().all(|m| {
        attr_s(m, "sk").and_then(item::message_key_parts).is_some() && m.contains_key("updated_at")
    });
    (orders, keyed)
}

fn user(content: &str) -> Value {
    json!({"type": "USER", "content": content})
}

#[tokio::test]
async fn a_conversation_written_between_the_scan_and_its_rewrite_keeps_what_was_written() {
    // Arrange: two conversations of layout 2, scanned.
    let t = OwnTable::new(AuthMode::Header, Some(2)).await;
    let o = owner();
    let (appended, expired) = (id(), id());
    let created = Timestamp::now().micros() - 10_000_000;
    t.put([
        layout_2(&o, &appended, created),
        layout_2(&o, &expired, created),
    ])
    .await;
    let (pk, gone_pk) = (
        format!("CONV#{o}#{appended}"),
        format!("CONV#{o}#{expired}"),
    );
    let scanned = vec![
        t.conversation(&pk).await.expect("scanned"),
        t.conversation(&gone_pk).await.expect("scanned"),
    ];
    // Meanwhile the live service appends to one, and TTL deletes the other.
    let first = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&appended)
                .json(user("during")),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["order"], 1);
    let written = t.conversation(&pk).await.expect("stored");
    t.raw
        .delete_item()
        .table_name(&t.table)
        .key("pk", s(&gone_pk))
        .key("sk", s("C"))
        .send()
        .await
        .expect("delete as TTL does");

    // Act: the migration's step on its stale page.
    let report = migrate::migrate_items(&t.raw, &t.table, scanned)
        .await
        .expect("migrated");

    // Assert: both writes were refused and the append is kept, in layout 3, and nothing comes back.
    let stored = t.conversation(&pk).await.expect("stored");
    assert_eq!(
        attr_n(&stored, "message_count"),
        Some(1),
        "the append is kept"
    );
    assert_eq!(
        attr_n(&stored, "updated_at"),
        attr_n(&written, "updated_at"),
        "at the append's version"
    );
    assert_eq!(stored.get("last_used_time"), written.get("last_used_time"));
    assert!(t.is_layout_4(&pk).await, "{stored:?}");
    assert!(t.conversation(&gone_pk).await.is_none(), "not resurrected");
    assert_eq!((report.conversations, report.refused), (1, 2), "{report:?}");
    let next = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&appended)
                .json(user("after")),
        )
        .await;
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(next.body["order"], 2);
    let got = t.call(Req::new(Method::Get).owner(&o).id(&appended)).await;
    assert_eq!(got.body["messageCount"], 2);
    assert_eq!(got.body["metadata"], json!({"channel": "web", "n": [1, 2]}));
}

/// A conversation item as layout 3 wrote it: the whole conversation in one item.
fn layout_3(owner: &str, id: &str, created: i64) -> Item {
    use conversations::domain::conversation::{NewConversation, Writable};
    use conversations::domain::ids::{ConversationId, Owner};
    let at = Timestamp::from_micros(created).expect("valid");
    let body = json!({"agents": ["bot"], "labels": {"team": "billing"}, "metadata": {"channel": "web"},
        "callMetadata": {"customerChannel": 1}});
    let w = Writable::from_json(body.as_object().expect("object"), at, false).expect("valid");
    let c = NewConversation::try_from(w)
        .expect("new")
        .into_conversation(
            ConversationId::parse(id).expect("id"),
            Owner::from_claim(owner).expect("owner"),
            None,
            at,
        );
    item::conversation_item(&c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_the_migration_from_layout_2_are_all_kept_and_every_conversation_ends_in_layout_4()
 {
    appends_racing_the_migration(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_the_migration_from_layout_3_are_all_kept_and_every_conversation_ends_in_layout_4()
 {
    appends_racing_the_migration(3).await;
}

async fn appends_racing_the_migration(layout: i64) {
    // Arrange: a table of 40 conversations of that layout.
    const CONVERSATIONS: usize = 40;
    const WRITERS: usize = 4;
    let t = OwnTable::new(AuthMode::Header, Some(layout)).await;
    let o = owner();
    let ids: Vec<String> = (0..CONVERSATIONS).map(|_| id()).collect();
    let created = Timestamp::now().micros() - 10_000_000;
    let old = |i: &String| match layout {
        2 => layout_2(&o, i, created),
        _ => layout_3(&o, i, created),
    };
    t.put(ids.iter().map(old)).await;
    let done = AtomicBool::new(false);

    // Act: writers append (some with an idempotency key) until the migration has finished.
    let writer = |w: usize| {
        let (t, o, ids, done) = (&t, &o, &ids, &done);
        async move {
            let mut answers = Vec::new();
            let mut k = 0;
            while !done.load(Ordering::Acquire) {
                let i = (w * 5 + k) % CONVERSATIONS;
                let content = format!("w{w} k{k}");
                let mut req = Req::new(Method::Append)
                    .owner(o)
                    .id(&ids[i])
                    .json(user(&content));
                if w.is_multiple_of(3) {
                    req = req.header("idempotency-key", &uuid::Uuid::new_v4().to_string());
                }
                let res = t.call(req).await;
                answers.push((i, content, res));
                k += 1;
            }
            answers
        }
    };
    let migration = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let report = migrate::migrate(&t.raw, &t.table).await;
        done.store(true, Ordering::Release);
        report
    };
    let (report, answers) = tokio::join!(migration, join_all((0..WRITERS).map(writer)));
    let report = report.expect("migrated");
    let answers: Vec<_> = answers.into_iter().flatten().collect();

    // Assert: every append that answered 201 is stored, every count matches the messages stored,
    // and the next append takes the next order. A 503 is DynamoDB Local timing out under the load
    // (that write may or may not be stored); a 409 is what appends answered once the migration had
    // put an old count back.
    let statuses: Vec<u16> = answers.iter().map(|(_, _, r)| r.status).collect();
    assert!(
        statuses.iter().all(|s| [201, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 201).count() > CONVERSATIONS,
        "the writers ran: {statuses:?}"
    );
    assert_eq!(
        schema::layout(&t.raw, &t.table).await.expect("read"),
        Some(item::LAYOUT)
    );
    for (i, conversation) in ids.iter().enumerate() {
        let pk = format!("CONV#{o}#{conversation}");
        let collection = t.collection(&pk).await;
        let stored = t.conversation(&pk).await.expect("stored");
        assert!(t.is_layout_4(&pk).await, "{conversation}: {stored:?}");
        let (orders, keyed) = message_orders(&collection);
        assert!(keyed, "{conversation}");
        let count = attr_n(&stored, "message_count").expect("a count");
        assert_eq!(
            orders.iter().copied().collect::<BTreeSet<_>>(),
            (1..=count).collect(),
            "{conversation}: message_count {count} and the messages stored"
        );
        let created = answers
            .iter()
            .filter(|(c, _, r)| *c == i && r.status == 201);
        for (_, content, res) in created {
            let order = res.body["order"].as_i64().expect("an order");
            let message = collection.iter().find(|m| {
                attr_n(m, "order") == Some(order)
                    && attr_s(m, "sk").is_some_and(|k| k.starts_with("M#"))
            });
            assert_eq!(
                message.and_then(|m| attr_s(m, "content")),
                Some(content.as_str()),
                "{conversation}: the 201 of order {order} is stored"
            );
        }
        let next = t
            .call(
                Req::new(Method::Append)
                    .owner(&o)
                    .id(conversation)
                    .json(user("after")),
            )
            .await;
        assert_eq!(next.status, 201, "{}", next.body);
        assert_eq!(next.body["order"], count + 1);
    }
    assert!(report.left.is_empty(), "{report:?}");
    assert!(
        report.refused > 0,
        "the appends raced the migration: {report:?}"
    );
    println!("{report:?} with {} appends racing it", answers.len());
}

#[tokio::test]
async fn an_owner_key_moved_while_an_old_writer_appends_keeps_the_append() {
    // Arrange: a conversation of layout 1 whose owner holds `/` (its key moves), scanned.
    let t = OwnTable::new(AuthMode::Jwt, None).await;
    let o = format!("tenant/{}", owner());
    let conversation = id();
    let created = Timestamp::now().micros() - 10_000_000;
    t.put(layout_1(&o, &conversation, created, 3)).await;
    let old_pk = format!("CONV#{o}#{conversation}");
    let new_pk = format!("CONV#{}#{conversation}", o.replace('/', "%2F"));
    let scanned = t.collection(&old_pk).await;
    assert_eq!(scanned.len(), 4);
    // Meanwhile a function of the earlier version (still serving while the deployment rolls
    // out) appends message 4 under the old key, as layout 1 did: one transaction at the read
    // version.
    let message_4 = layout_1(&o, &conversation, created, 4).remove(4);
    let update = aws_sdk_dynamodb::types::Update::builder()
        .table_name(&t.table)
        .key("pk", s(&old_pk))
        .key("sk", s("C"))
        .update_expression("SET message_count = :n, updated_at = :v, last_used_time = :v")
        .condition_expression("updated_at = :read")
        .expression_attribute_values(":n", n(4))
        .expression_attribute_values(":v", n(created + 4))
        .expression_attribute_values(":read", n(created + 3))
        .build()
        .expect("an update");
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(&t.table)
        .set_item(Some(message_4))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("a put");
    t.raw
        .transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .update(update)
                .build(),
        )
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build(),
        )
        .send()
        .await
        .expect("the earlier version's append");

    // Act: the migration's step on its stale page.
    let report = migrate::migrate_items(&t.raw, &t.table, scanned)
        .await
        .expect("migrated");

    // Assert: all four messages moved with the conversation; nothing is left under the old key.
    assert_eq!(
        t.collection(&old_pk).await.len(),
        0,
        "nothing left under the old key"
    );
    let moved = t.conversation(&new_pk).await.expect("moved");
    assert_eq!(attr_n(&moved, "message_count"), Some(4));
    assert_eq!(attr_n(&moved, "updated_at"), Some(created + 4));
    assert!(t.is_layout_4(&new_pk).await, "{moved:?}");
    assert_eq!(
        (report.conversations, report.messages),
        (1, 4),
        "{report:?}"
    );
    assert!(report.refused >= 1, "{report:?}");
    let (orders, keyed) = message_orders(&t.collection(&new_pk).await);
    assert_eq!(
        orders.into_iter().collect::<BTreeSet<_>>(),
        (1..=4).collect()
    );
    assert!(keyed);
    let as_owner = |req: Req| req.context(jwt(&o));
    let listed = t
        .call(as_owner(Req::new(Method::ListMessages).id(&conversation)))
        .await;
    assert_eq!(
        listed.body["messages"].as_array().map(Vec::len),
        Some(4),
        "{}",
        listed.body
    );
    let next = t
        .call(as_owner(
            Req::new(Method::Append)
                .id(&conversation)
                .json(user("after")),
        ))
        .await;
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(next.body["order"], 5);
}

#[tokio::test]
async fn an_old_conversation_whose_new_key_this_version_took_is_left_where_it_was() {
    // Arrange: a conversation of layout 1 whose owner holds `/`; before the migration this
    // version does not see it, and its owner creates another conversation of the same id (under
    // the escaped key).
    let t = OwnTable::new(AuthMode::Jwt, None).await;
    let o = format!("tenant/{}", owner());
    let conversation = id();
    let created = Timestamp::now().micros() - 10_000_000;
    t.put(layout_1(&o, &conversation, created, 2)).await;
    let as_owner = |req: Req| req.context(jwt(&o));
    let made = t
        .call(as_owner(
            Req::new(Method::Create)
                .query("conversationId", &conversation)
                .json(json!({"agents": ["a"]})),
        ))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let appended = t
        .call(as_owner(
            Req::new(Method::Append).id(&conversation).json(user("new")),
        ))
        .await;
    assert_eq!(appended.status, 201, "{}", appended.body);

    // Act
    let report = migrate::migrate(&t.raw, &t.table).await.expect("migrated");

    // Assert: the new conversation is as its owner wrote it; the old one, with its messages,
    // is left under its old key (and reported) rather than written over it.
    let got = t
        .call(as_owner(Req::new(Method::Get).id(&conversation)))
        .await;
    assert_eq!(
        got.body["createTime"], made.body["createTime"],
        "{}",
        got.body
    );
    assert_eq!(got.body["messageCount"], 1);
    let listed = t
        .call(as_owner(Req::new(Method::ListMessages).id(&conversation)))
        .await;
    let contents: Vec<&str> = listed.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, ["new"]);
    let old_pk = format!("CONV#{o}#{conversation}");
    assert_eq!(t.collection(&old_pk).await.len(), 3, "left where it was");
    assert_eq!(report.left, [old_pk], "{report:?}");
    assert_eq!(
        (report.conversations, report.messages),
        (0, 0),
        "{report:?}"
    );
}
