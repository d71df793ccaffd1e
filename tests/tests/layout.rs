//! Layout 4, in-process: a conversation is a small head and a body holding its large fields
//! (`store::split`). What does not change a large field leaves the body as it was — so its cost
//! does not depend on how large the conversation is —; what does moves both to one version in
//! one transaction; a read never answers a head beside a body of another version; a page never
//! splits a conversation; a whole conversation item of layout 3 is still served and written.

use std::collections::HashMap;

use api_tests::{Method, Req, Res, TestApp, attr_n, id, owner};
use aws_sdk_dynamodb::types::AttributeValue;
use conversations::domain::conversation::{NewConversation, Writable};
use conversations::domain::ids::{ConversationId, Owner};
use conversations::domain::time::Timestamp;
use conversations::store::{item, split};
use serde_json::{Value, json};

type Item = HashMap<String, AttributeValue>;

fn sorted(mut sent: Vec<String>) -> Vec<String> {
    sent.sort();
    sent
}

/// A conversation with every large field set.
fn large() -> Value {
    json!({"agents": ["bot", "human"], "displayName": "support", "conversationProfile": "p",
        "labels": {"team": "billing", "tier": "gold"}, "metadata": {"profile": "x".repeat(4000)},
        "qualityMetadata": {"customerSatisfactionRating": 4, "agentInfo": [{"agentId": "a-1"}]},
        "callMetadata": {"customerChannel": 1}, "sources": [{"model": "m", "explore": "e"}],
        "dataSource": {"gcsSource": {"audioUri": "gs://b/a.wav"}},
        "phoneNumber": {"countryCode": 1, "phoneNumber": "+14155550100"}})
}

/// The large fields of a conversation as answered.
fn large_fields(c: &Value) -> Value {
    let pick = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    json!({"agents": pick("agents"), "conversationProfile": pick("conversationProfile"),
        "labels": pick("labels"), "metadata": pick("metadata"), "qualityMetadata": pick("qualityMetadata"),
        "callMetadata": pick("callMetadata"), "sources": pick("sources"), "dataSource": pick("dataSource"),
        "phoneNumber": pick("phoneNumber")})
}

async fn body_item(t: &TestApp, o: &str, i: &str) -> Item {
    t.stored_item(o, i, "B").await.expect("the body is stored")
}

async fn head_item(t: &TestApp, o: &str, i: &str) -> Item {
    t.stored_item(o, i, "C").await.expect("the head is stored")
}

fn call(method: Method, o: &str, i: &str) -> Req {
    Req::new(method).owner(o).id(i)
}

fn ok(res: Res, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.body);
    res.body
}

#[tokio::test]
async fn writes_that_change_no_large_field_leave_the_body_as_it_was() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, large()).await;
    let expected = large_fields(&created);
    let body = body_item(&t, &o, &i).await;
    let head = head_item(&t, &o, &i).await;
    for name in split::BODY_ATTRIBUTES {
        assert!(!head.contains_key(name), "{name} is in the head");
    }
    assert_eq!(
        attr_n(&head, "body_version"),
        attr_n(&body, "body_version"),
        "one version"
    );
    let user = |c: &str| json!({"type": "USER", "content": c});
    let writes: Vec<(&str, Req, u16)> = vec![
        (
            "append",
            call(Method::Append, &o, &i).json(user("one")),
            201,
        ),
        (
            "batch append",
            call(Method::BatchAppend, &o, &i)
                .json(json!({"messages": [user("two"), user("three")]})),
            201,
        ),
        (
            "update message",
            call(Method::UpdateMessage, &o, &i)
                .order(1)
                .query("updateMask", "content")
                .json(json!({"content": "redacted"})),
            200,
        ),
        (
            "delete message",
            call(Method::DeleteMessage, &o, &i).order(3),
            200,
        ),
        (
            "clear",
            call(Method::ClearMessages, &o, &i).json(json!({"throughOrder": 1})),
            200,
        ),
        (
            "update of a small field",
            call(Method::Update, &o, &i)
                .query("updateMask", "displayName,conversationStage")
                .json(json!({"displayName": "renamed", "conversationStage": "HUMAN_ASSIST_STAGE"})),
            200,
        ),
        (
            "complete",
            call(Method::Complete, &o, &i).json(json!({})),
            200,
        ),
        ("delete", call(Method::Delete, &o, &i), 200),
        (
            "undelete",
            call(Method::Undelete, &o, &i).json(json!({})),
            200,
        ),
    ];
    for (what, req, status) in writes {
        t.counter.take();
        let answer = ok(t.call(req).await, status);
        let sent = t.counter.take();
        assert_eq!(body_item(&t, &o, &i).await, body, "{what} rewrote the body");
        let conversation = match what {
            "append" | "batch append" | "update message" | "delete message" => {
                assert!(!sent.iter().any(|op| op == "PutItem"), "{what}: {sent:?}");
                ok(t.call(call(Method::Get, &o, &i)).await, 200)
            }
            _ => answer,
        };
        assert_eq!(
            large_fields(&conversation),
            expected,
            "{what} answers the large fields as they are"
        );
    }
    let head = head_item(&t, &o, &i).await;
    assert_eq!(attr_n(&head, "body_version"), attr_n(&body, "body_version"));
    assert_eq!(attr_n(&head, "message_count"), Some(1));
    // A purge's own write leaves the body to the purger (it is gone for every method at once).
    ok(
        t.call(call(Method::Purge, &o, &i).json(json!({}))).await,
        200,
    );
    assert_eq!(body_item(&t, &o, &i).await, body);
    ok(t.call(call(Method::Get, &o, &i)).await, 404);
}

#[tokio::test]
async fn an_update_of_a_small_field_is_one_write_of_the_head_and_one_read_of_the_body() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, large()).await;
    t.counter.take();
    let res = t
        .call(
            call(Method::Update, &o, &i)
                .query("updateMask", "displayName")
                .json(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(sorted(t.counter.take()), ["GetItem", "UpdateItem"]);
    assert_eq!(res.body["labels"]["team"], "billing");
}

#[tokio::test]
async fn a_write_of_a_large_field_moves_head_and_body_to_its_version_in_one_transaction() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, large()).await;
    let before = body_item(&t, &o, &i).await;
    t.counter.take();
    let res = t
        .call(
            call(Method::Update, &o, &i)
                .query(
                    "updateMask",
                    "labels.tier,displayName,callMetadata.agentChannel",
                )
                .json(json!({"labels": {"tier": "platinum"}, "displayName": "d2",
                    "callMetadata": {"agentChannel": 2}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(t.counter.take(), ["Query", "TransactWriteItems"]);
    let (head, body) = (head_item(&t, &o, &i).await, body_item(&t, &o, &i).await);
    assert_ne!(body, before);
    assert_eq!(attr_n(&head, "body_version"), attr_n(&body, "body_version"));
    assert_eq!(
        attr_n(&head, "body_version"),
        attr_n(&head, "updated_at"),
        "the body is of the update's version"
    );
    assert_eq!(
        res.body["labels"],
        json!({"team": "billing", "tier": "platinum"})
    );
    assert_eq!(res.body["displayName"], "d2");
    assert_eq!(
        res.body["callMetadata"],
        json!({"customerChannel": 1, "agentChannel": 2})
    );
    // What the write answered is what is stored.
    let read = ok(t.call(call(Method::Get, &o, &i)).await, 200);
    assert_eq!(read, res.body);
    // A stale etag is refused by the transaction's condition, and nothing is written.
    let stale = t
        .call(
            call(Method::Update, &o, &i)
                .query("updateMask", "labels")
                .json(json!({"labels": {}, "etag": "\"1\""})),
        )
        .await;
    stale.assert_problem(409, "ABORTED");
    assert_eq!(body_item(&t, &o, &i).await, body);
}

#[tokio::test]
async fn a_read_that_finds_head_and_body_at_different_versions_reads_again() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, large()).await;
    let body = body_item(&t, &o, &i).await;
    let mut torn = body.clone();
    torn.insert("body_version".into(), AttributeValue::N("1".into()));
    torn.insert(
        "labels".into(),
        AttributeValue::M(HashMap::from([(
            "torn".into(),
            AttributeValue::S("yes".into()),
        )])),
    );
    put(&t, torn).await;
    t.counter.take();
    // The body comes back to the head's version a moment later, as the other half of a
    // transaction would.
    let (res, ()) = tokio::join!(t.call(call(Method::Get, &o, &i)), async {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        put(&t, body.clone()).await;
    });
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body, created, "never the torn pair's labels");
    let sent = t.counter.take();
    assert!(
        sent.len() > 1 && sent.iter().all(|op| op == "Query"),
        "read again: {sent:?}"
    );
}

async fn put(t: &TestApp, item: Item) {
    t.raw()
        .put_item()
        .table_name(&t.table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

/// Every id of every page of a listing, with each conversation's labels.
async fn pages(t: &TestApp, o: &str, query: &[(&str, &str)]) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut req = Req::new(Method::List).owner(o);
        for (k, v) in query {
            req = req.query(k, v);
        }
        if let Some(tok) = &token {
            req = req.query("pageToken", tok);
        }
        let page = ok(t.call(req).await, 200);
        for c in page["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let id = c["name"]
                .as_str()
                .expect("a name")
                .rsplit('/')
                .next()
                .expect("an id");
            seen.push((id.to_owned(), c["labels"].clone()));
        }
        match page["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return seen,
        }
    }
    panic!("more than 100 pages");
}

#[tokio::test]
async fn pages_of_every_size_and_order_show_each_conversation_once_and_whole() {
    let t = TestApp::new().await;
    let o = owner();
    let mut ids = Vec::new();
    for k in 0..7 {
        let i = id();
        let labels = json!({"n": k.to_string(), "parity": if k % 2 == 0 { "even" } else { "odd" }});
        t.create(&o, &i, json!({"agents": ["a"], "labels": labels}))
            .await;
        if k % 3 == 0 {
            // Some activity, so that both orders differ.
            assert_eq!(t.append(&o, &i, "hi").await.status, 201);
        }
        ids.push(i);
    }
    for order in [
        "createTime asc",
        "createTime desc",
        "lastUsedTime asc",
        "lastUsedTime desc",
    ] {
        for size in ["1", "2", "3", "1000"] {
            let seen = pages(&t, &o, &[("orderBy", order), ("pageSize", size)]).await;
            let mut got: Vec<String> = seen.iter().map(|(i, _)| i.clone()).collect();
            got.sort();
            let mut want = ids.clone();
            want.sort();
            assert_eq!(got, want, "{order}, pageSize {size}");
            for (i, labels) in &seen {
                let k = ids.iter().position(|x| x == i).expect("one of ours");
                assert_eq!(
                    labels["n"],
                    k.to_string(),
                    "{order}, {size}: the body of {i}"
                );
            }
            // A term on a body field is judged on the joined conversation.
            let filtered = pages(
                &t,
                &o,
                &[
                    ("orderBy", order),
                    ("pageSize", size),
                    ("filter", "labels.parity = \"odd\""),
                ],
            )
            .await;
            assert_eq!(filtered.len(), 3, "{order}, {size}: {filtered:?}");
            assert!(filtered.iter().all(|(_, l)| l["parity"] == "odd"));
        }
    }
    t.counter.take();
    ok(
        t.call(
            Req::new(Method::List)
                .owner(&o)
                .query("orderBy", "lastUsedTime desc"),
        )
        .await,
        200,
    );
    assert_eq!(sorted(t.counter.take()), ["BatchGetItem", "Query"]);
    ok(t.call(Req::new(Method::List).owner(&o)).await, 200);
    assert_eq!(t.counter.take(), ["Query"]);
}

/// The whole item of a conversation as layout 3 stored it.
fn layout_3_item(o: &str, i: &str) -> (Item, Value) {
    let now = Timestamp::now();
    let body = large();
    let w = Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
    let c = NewConversation::try_from(w)
        .expect("new")
        .into_conversation(
            ConversationId::parse(i).expect("id"),
            Owner::from_claim(o).expect("owner"),
            None,
            now,
        );
    (item::conversation_item(&c), c.to_json().into())
}

#[tokio::test]
async fn a_whole_conversation_of_layout_3_is_read_and_written_as_it_was() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let (whole, rendered) = layout_3_item(&o, &i);
    put(&t, whole).await;
    let read = ok(t.call(call(Method::Get, &o, &i)).await, 200);
    assert_eq!(large_fields(&read), large_fields(&rendered));
    let listed = pages(&t, &o, &[("orderBy", "lastUsedTime desc")]).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, rendered["labels"]);
    assert_eq!(pages(&t, &o, &[]).await.len(), 1);
    assert_eq!(t.append(&o, &i, "one").await.status, 201);
    let relabelled = ok(
        t.call(
            call(Method::Update, &o, &i)
                .query("updateMask", "labels.tier")
                .json(json!({"labels": {"tier": "silver"}})),
        )
        .await,
        200,
    );
    assert_eq!(relabelled["labels"]["tier"], "silver");
    assert_eq!(relabelled["messageCount"], 1);
    let renamed = ok(
        t.call(
            call(Method::Update, &o, &i)
                .query("updateMask", "displayName")
                .json(json!({"displayName": "d"})),
        )
        .await,
        200,
    );
    assert_eq!(renamed["labels"]["tier"], "silver");
    let head = head_item(&t, &o, &i).await;
    assert!(
        !head.contains_key("body_version") && head.contains_key("labels"),
        "still one whole item"
    );
    assert!(t.stored_item(&o, &i, "B").await.is_none());
}

#[tokio::test]
async fn while_the_write_layout_is_3_a_create_writes_one_whole_item_that_layout_4_then_serves() {
    let t = TestApp::new().await;
    let mut config = t.app.config.clone();
    config.write_layout = 3;
    let earlier = conversations::App::new(config, t.raw().clone());
    let (o, i) = (owner(), id());
    let created = TestApp::call_app(
        &earlier,
        Req::new(Method::Create)
            .owner(&o)
            .query("conversationId", &i)
            .json(large()),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let whole = head_item(&t, &o, &i).await;
    assert!(whole.contains_key("labels") && !whole.contains_key("body_version"));
    assert!(t.stored_item(&o, &i, "B").await.is_none(), "no body");
    // The same create again is the taken id; the layout 4 app reads and writes it.
    let again = TestApp::call_app(
        &earlier,
        Req::new(Method::Create)
            .owner(&o)
            .query("conversationId", &i)
            .json(large()),
    )
    .await;
    again.assert_problem(409, "ALREADY_EXISTS");
    assert_eq!(
        ok(t.call(call(Method::Get, &o, &i)).await, 200),
        created.body
    );
    assert_eq!(t.append(&o, &i, "one").await.status, 201);
    let completed = ok(
        t.call(call(Method::Complete, &o, &i).json(json!({}))).await,
        200,
    );
    assert_eq!(large_fields(&completed), large_fields(&created.body));
}

#[tokio::test]
async fn a_purged_conversation_whose_body_the_purger_deleted_first_is_missing_at_once() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, large()).await;
    ok(
        t.call(call(Method::Purge, &o, &i).json(json!({}))).await,
        200,
    );
    // The purger deletes the body before the head: a read in between finds a head alone.
    t.raw()
        .delete_item()
        .table_name(&t.table)
        .key("pk", AttributeValue::S(format!("CONV#{o}#{i}")))
        .key("sk", AttributeValue::S("B".into()))
        .send()
        .await
        .expect("the purger's delete of the body");
    t.counter.take();
    let started = std::time::Instant::now();
    t.call(call(Method::Get, &o, &i))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(t.counter.take(), ["Query"], "not read again as a torn pair");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(
        pages(&t, &o, &[("orderBy", "lastUsedTime desc")])
            .await
            .is_empty()
    );
}
