//! Revision 3's removals, in-process: delete one message (pop the last item), clear a
//! conversation's messages up to an order (whatever their number, one write), purge a
//! conversation now (its id free at once), and what they change elsewhere — `messageCount` is
//! what is held now, orders are never given again, a repeated idempotency key whose messages
//! went is 409, a batch stores the state its turn changed in its own transaction.

use api_tests::{Method, Req, Res, TestApp, attr_n, attr_s, id, owner};
use serde_json::{Value, json};

fn orders(res: &Res) -> Vec<u64> {
    res.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {}", res.body))
        .iter()
        .map(|m| m["order"].as_u64().expect("an order"))
        .collect()
}

fn sorted(mut sent: Vec<String>) -> Vec<String> {
    sent.sort();
    sent
}

fn delete_message(o: &str, i: &str, order: impl ToString) -> Req {
    Req::new(Method::DeleteMessage).owner(o).id(i).order(order)
}

fn clear(o: &str, i: &str, body: Value) -> Req {
    Req::new(Method::ClearMessages).owner(o).id(i).json(body)
}

fn purge(o: &str, i: &str) -> Req {
    Req::new(Method::Purge).owner(o).id(i)
}

fn list(o: &str, i: &str) -> Req {
    Req::new(Method::ListMessages).owner(o).id(i)
}

async fn get(t: &TestApp, o: &str, i: &str) -> Res {
    t.call(Req::new(Method::Get).owner(o).id(i)).await
}

/// A conversation with messages `m1`…`mN` appended through the API.
async fn conversation_of(t: &TestApp, o: &str, i: &str, n: u64) {
    t.create(o, i, json!({"agents": ["a"]})).await;
    for k in 1..=n {
        assert_eq!(t.append(o, i, format!("m{k}")).await.status, 201);
    }
}

/// The orders of the message items stored for a conversation (any incarnation).
async fn stored_orders(t: &TestApp, o: &str, i: &str) -> Vec<u64> {
    t.collection(o, i)
        .await
        .iter()
        .filter_map(|item| attr_s(item, "sk"))
        .filter_map(|sk| sk.strip_prefix("M#"))
        .map(|rest| rest[..10].parse().expect("an order"))
        .collect()
}

// ---------------------------------------------------------------- delete message

#[tokio::test]
async fn deleting_a_message_answers_it_as_it_was_and_its_order_is_never_given_again() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    conversation_of(&t, &o, &i, 3).await;
    let before = get(&t, &o, &i).await.body;
    let last = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(3))
        .await;
    t.counter.take();
    let popped = t.call(delete_message(&o, &i, 3)).await;
    assert_eq!(popped.status, 200, "{}", popped.body);
    assert_eq!(popped.body, last.body, "the message as it was");
    assert_eq!(popped.header("etag"), last.header("etag"));
    // One read of the message, one transaction with the conversation.
    assert_eq!(sorted(t.counter.take()), ["Query", "TransactWriteItems"]);
    t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(3))
        .await
        .assert_problem(404, "NOT_FOUND");
    let after = get(&t, &o, &i).await.body;
    assert_eq!(after["messageCount"], 2);
    assert_ne!(after["etag"], before["etag"]);
    assert_ne!(after["updateTime"], before["updateTime"]);
    assert_eq!(after["lastUsedTime"], before["lastUsedTime"]);
    assert_eq!(stored_orders(&t, &o, &i).await, [1, 2]);
    // The next append takes one more than the highest order ever assigned.
    let next = t.append(&o, &i, "m4").await;
    assert_eq!(next.body["order"], 4);
    assert_eq!(orders(&t.call(list(&o, &i)).await), [1, 2, 4]);
    assert_eq!(get(&t, &o, &i).await.body["messageCount"], 3);
    // A message in the middle too.
    assert_eq!(t.call(delete_message(&o, &i, 1)).await.status, 200);
    assert_eq!(orders(&t.call(list(&o, &i)).await), [2, 4]);
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(orders(&full), [2, 4]);
    assert_eq!(full.body["messageCount"], 2);
}

#[tokio::test]
async fn a_message_delete_is_preconditioned_on_the_message_s_etag() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    conversation_of(&t, &o, &i, 2).await;
    let first = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    let etag = first.body["etag"].as_str().expect("etag").to_owned();
    let edited = t
        .call(
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(&i)
                .order(1)
                .json(json!({"content": "edited"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    // The etag read before the edit is stale: 409 as a query parameter, 412 as If-Match.
    t.call(delete_message(&o, &i, 1).query("etag", &etag))
        .await
        .assert_problem(409, "ABORTED");
    t.call(delete_message(&o, &i, 1).header("if-match", &etag))
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
    // The conversation's etag names no version of a message.
    let conversation_etag = get(&t, &o, &i).await.body["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    t.call(delete_message(&o, &i, 1).query("etag", &conversation_etag))
        .await
        .assert_problem(409, "ABORTED");
    assert_eq!(
        t.counted_messages(&o, &i).await,
        (Some(2), 2),
        "nothing written"
    );
    let current = edited.body["etag"].as_str().expect("etag");
    let deleted = t
        .call(delete_message(&o, &i, 1).header("if-match", current))
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["content"], "edited");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(1), 1));
}

#[tokio::test]
async fn delete_message_is_404_for_what_is_not_there_and_allowed_on_completed_conversations() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    conversation_of(&t, &o, &i, 2).await;
    for order in ["3", "0", "-1", "abc", "1.5", "99999999999"] {
        t.call(delete_message(&o, &i, order))
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    assert_eq!(t.call(delete_message(&o, &i, 2)).await.status, 200);
    t.call(delete_message(&o, &i, 2))
        .await
        .assert_problem(404, "NOT_FOUND");
    // Another owner's, and a missing conversation.
    t.call(delete_message(&owner(), &i, 1))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(delete_message(&o, &id(), 1))
        .await
        .assert_problem(404, "NOT_FOUND");
    // Completed: allowed. Soft-deleted: 404, and nothing is removed.
    let done = t.call(Req::new(Method::Complete).owner(&o).id(&i)).await;
    assert_eq!(done.status, 200);
    conversation_of(&t, &o, &format!("{i}-2"), 1).await;
    let other = format!("{i}-2");
    assert_eq!(t.call(delete_message(&o, &i, 1)).await.status, 200);
    assert_eq!(get(&t, &o, &i).await.body["messageCount"], 0);
    t.call(Req::new(Method::Delete).owner(&o).id(&other)).await;
    t.call(delete_message(&o, &other, 1))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(stored_orders(&t, &o, &other).await, [1]);
}

// ---------------------------------------------------------------- clear

#[tokio::test]
async fn a_clear_keeps_what_follows_its_order_and_no_read_returns_or_reads_the_rest() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.with_messages(&o, &i, 20).await;
    let before = get(&t, &o, &i).await.body;
    let cleared = t.call(clear(&o, &i, json!({"throughOrder": 10}))).await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["messageCount"], 10);
    assert_ne!(cleared.body["etag"], before["etag"]);
    assert_eq!(cleared.header("etag"), cleared.body["etag"].as_str());
    assert_eq!(cleared.body["lastUsedTime"], before["lastUsedTime"]);
    assert_eq!(
        get(&t, &o, &i).await.body,
        cleared.body,
        "stored as answered"
    );
    for order in [1, 5, 10] {
        t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(order))
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    t.counter.take_scanned();
    assert_eq!(
        orders(&t.call(list(&o, &i)).await),
        (11..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        t.counter.take_scanned(),
        [10],
        "only the kept range is read"
    );
    let newest = t
        .call(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("pageSize", "30"),
        )
        .await;
    assert_eq!(orders(&newest), (11..=20).rev().collect::<Vec<_>>());
    let range = t.call(list(&o, &i).query("filter", "order <= 12")).await;
    assert_eq!(orders(&range), [11, 12]);
    let none = t.call(list(&o, &i).query("filter", "order <= 10")).await;
    assert_eq!((none.status, orders(&none)), (200, vec![]));
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(orders(&full), (11..=20).collect::<Vec<_>>());
    // Orders are never given again.
    assert_eq!(t.append(&o, &i, "next").await.body["order"], 21);
    // Clearing what is already cleared moves only updateTime and the etag.
    let again = t.call(clear(&o, &i, json!({"throughOrder": 4}))).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["messageCount"], 11);
    let now = get(&t, &o, &i).await.body;
    assert_eq!(now["messageCount"], 11);
    assert_eq!(
        orders(&t.call(list(&o, &i).query("pageSize", "100")).await),
        (11..=21).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_clear_without_an_order_or_past_the_highest_clears_everything() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    for (n, body) in [
        (0, json!({})),
        (1, json!({"throughOrder": 999})),
        (2, json!({"throughOrder": null})),
    ] {
        let i = format!("{i}-{n}");
        conversation_of(&t, &o, &i, 4).await;
        let res = t.call(clear(&o, &i, body.clone())).await;
        assert_eq!(res.status, 200, "{body}: {}", res.body);
        assert_eq!(res.body["messageCount"], 0, "{body}");
        assert_eq!(orders(&t.call(list(&o, &i)).await), Vec::<u64>::new());
        assert_eq!(t.append(&o, &i, "after").await.body["order"], 5);
    }
    // An empty body is every message too.
    let i = format!("{i}-empty");
    conversation_of(&t, &o, &i, 2).await;
    let res = t
        .call(Req::new(Method::ClearMessages).owner(&o).id(&i))
        .await;
    assert_eq!(
        (res.status, &res.body["messageCount"]),
        (200, &json!(0)),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn a_clear_counts_what_it_keeps_around_deleted_messages_and_earlier_leftovers() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    conversation_of(&t, &o, &i, 10).await;
    // Holes: 3 and 8 deleted; leftovers of an earlier conversation at every order.
    assert_eq!(t.call(delete_message(&o, &i, 3)).await.status, 200);
    assert_eq!(t.call(delete_message(&o, &i, 8)).await.status, 200);
    t.leftovers(&o, &i, 1_000_000, 1..=12).await;
    // Keeps 9..10 (the shorter range: counted) — 2 messages.
    let res = t.call(clear(&o, &i, json!({"throughOrder": 8}))).await;
    assert_eq!(res.body["messageCount"], 2, "{}", res.body);
    // Clears 9 of the kept 2 — now every message.
    let res = t.call(clear(&o, &i, json!({"throughOrder": 9}))).await;
    assert_eq!(res.body["messageCount"], 1, "{}", res.body);
    let (o2, i2) = (owner(), id());
    conversation_of(&t, &o2, &i2, 10).await;
    assert_eq!(t.call(delete_message(&o2, &i2, 2)).await.status, 200);
    t.leftovers(&o2, &i2, 1_000_000, 1..=12).await;
    // Clears 1..3 (the shorter range: counted and taken from the count) — keeps 7.
    let res = t.call(clear(&o2, &i2, json!({"throughOrder": 3}))).await;
    assert_eq!(res.body["messageCount"], 7, "{}", res.body);
    assert_eq!(
        orders(&t.call(list(&o2, &i2)).await),
        (4..=10).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_clear_of_thousands_of_messages_makes_the_requests_of_a_clear_of_ten() {
    let t = TestApp::new().await;
    let o = owner();
    let mut costs = Vec::new();
    for n in [10, 2_000] {
        let i = id();
        t.with_messages(&o, &i, n).await;
        t.counter.take();
        t.counter.take_scanned();
        // Keep the last 5: the kept range is the shorter one, counted by one keys-only Query.
        let res = t.call(clear(&o, &i, json!({"throughOrder": n - 5}))).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["messageCount"], 5);
        costs.push((sorted(t.counter.take()), t.counter.take_scanned()));
        assert_eq!(
            orders(&t.call(list(&o, &i)).await),
            (n - 4..=n).collect::<Vec<_>>()
        );
    }
    assert_eq!(costs[0], costs[1], "the same requests and items read");
    assert_eq!(
        costs[0],
        (
            vec!["Query".to_owned(), "Query".into(), "UpdateItem".into()],
            // The conversation's head and body, then the kept range.
            vec![2, 5]
        )
    );
}

#[tokio::test]
async fn page_tokens_issued_before_a_clear_skip_what_it_removed() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.with_messages(&o, &i, 20).await;
    let page = |req: Req, token: Option<&str>| match token {
        Some(tk) => req.query("pageSize", "3").query("pageToken", tk),
        None => req.query("pageSize", "3"),
    };
    let first = t.call(page(list(&o, &i), None)).await;
    assert_eq!(orders(&first), [1, 2, 3]);
    let oldest_first = first.body["nextPageToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let desc = || list(&o, &i).query("orderBy", "order desc");
    let newest = t.call(page(desc(), None)).await;
    assert_eq!(orders(&newest), [20, 19, 18]);
    let newest_first = newest.body["nextPageToken"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        t.call(clear(&o, &i, json!({"throughOrder": 6})))
            .await
            .status,
        200
    );
    let next = t.call(page(list(&o, &i), Some(&oldest_first))).await;
    assert_eq!((next.status, orders(&next)), (200, vec![7, 8, 9]));
    let next = t.call(page(desc(), Some(&newest_first))).await;
    assert_eq!(orders(&next), [17, 16, 15]);
    // A newest-first token whose next page lies wholly in what was cleared: the end.
    let low = t
        .call(page(desc().query("filter", "order <= 10"), None))
        .await;
    assert_eq!(orders(&low), [10, 9, 8]);
    let low_token = low.body["nextPageToken"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        t.call(clear(&o, &i, json!({"throughOrder": 7})))
            .await
            .status,
        200
    );
    let rest = t
        .call(page(
            desc().query("filter", "order <= 10"),
            Some(&low_token),
        ))
        .await;
    assert_eq!((rest.status, orders(&rest)), (200, vec![]));
    assert!(rest.body.get("nextPageToken").is_none());
}

#[tokio::test]
async fn a_clear_is_preconditioned_checked_and_404_where_there_is_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    conversation_of(&t, &o, &i, 3).await;
    let stale = get(&t, &o, &i).await.body["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    assert_eq!(t.append(&o, &i, "moves the etag").await.status, 201);
    t.call(clear(&o, &i, json!({"etag": stale})))
        .await
        .assert_problem(409, "ABORTED");
    t.call(clear(&o, &i, json!({})).header("if-match", &stale))
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
    for bad in [json!(0), json!(-2), json!(1.5), json!("3"), json!(true)] {
        let res = t.call(clear(&o, &i, json!({ "throughOrder": bad }))).await;
        res.assert_problem(422, "INVALID_ARGUMENT");
        assert_eq!(res.body["errors"][0]["field"], "throughOrder", "{bad}");
    }
    t.call(clear(&o, &i, json!({"through": 2})))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    assert_eq!(
        get(&t, &o, &i).await.body["messageCount"],
        4,
        "nothing written"
    );
    t.call(clear(&owner(), &i, json!({})))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(clear(&o, &id(), json!({})))
        .await
        .assert_problem(404, "NOT_FOUND");
    // A precondition on a conversation that is not there cannot hold.
    t.call(clear(&o, &id(), json!({"etag": stale})))
        .await
        .assert_problem(409, "ABORTED");
    let current = get(&t, &o, &i).await.body["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    t.call(Req::new(Method::Complete).owner(&o).id(&i)).await;
    let completed = t.call(clear(&o, &i, json!({"throughOrder": 2}))).await;
    assert_eq!(
        completed.status, 200,
        "allowed on COMPLETED: {}",
        completed.body
    );
    assert_ne!(completed.body["etag"], json!(current));
    t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    t.call(clear(&o, &i, json!({})))
        .await
        .assert_problem(404, "NOT_FOUND");
}

// ---------------------------------------------------------------- purge

#[tokio::test]
async fn a_purged_conversation_is_missing_at_once_and_its_id_free_for_a_create_that_sees_nothing_old()
 {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let key = uuid::Uuid::new_v4().to_string();
    conversation_of(&t, &o, &i, 3).await;
    let keyed = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .query("requestId", &key)
                .json(json!({"type": "USER", "content": "keyed"})),
        )
        .await;
    assert_eq!(keyed.body["order"], 4);
    let token = t.call(list(&o, &i).query("pageSize", "1")).await.body["nextPageToken"]
        .as_str()
        .expect("token")
        .to_owned();
    t.counter.take();
    let res = t.call(purge(&o, &i)).await;
    assert_eq!((res.status, &res.body), (200, &json!({})));
    assert_eq!(t.counter.take(), ["UpdateItem"], "one conditional write");
    // Missing for every method at once.
    get(&t, &o, &i).await.assert_problem(404, "NOT_FOUND");
    t.call(list(&o, &i)).await.assert_problem(404, "NOT_FOUND");
    t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await
        .assert_problem(404, "NOT_FOUND");
    for order_by in ["createTime desc", "lastUsedTime desc"] {
        let listed = t
            .call(
                Req::new(Method::List)
                    .owner(&o)
                    .query("orderBy", order_by)
                    .query("showDeleted", "true"),
            )
            .await;
        assert_eq!(listed.body, json!({"conversations": []}), "{order_by}");
    }
    t.call(purge(&o, &i)).await.assert_problem(404, "NOT_FOUND");
    // Out of both indexes, its TTL now; its items go with the purger.
    let stored = t.stored(&o, &i).await.expect("until the purger deletes it");
    for key in ["gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"] {
        assert!(!stored.contains_key(key), "{key}");
    }
    assert!(attr_n(&stored, "purged_at").is_some());
    // The id is free: a create sees none of the old conversation.
    let created = t.create(&o, &i, json!({"agents": ["b"]})).await;
    assert_eq!(created["messageCount"], 0);
    assert_eq!(orders(&t.call(list(&o, &i)).await), Vec::<u64>::new());
    t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await
        .assert_problem(404, "NOT_FOUND");
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(full.body["messages"], json!([]));
    // The old idempotency key is a new key here.
    let again = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .query("requestId", &key)
                .json(json!({"type": "USER", "content": "keyed"})),
        )
        .await;
    assert_eq!((again.status, &again.body["order"]), (201, &json!(1)));
    // A page token of the purged conversation is 400 on the new one.
    t.call(
        list(&o, &i)
            .query("pageSize", "1")
            .query("pageToken", &token),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn purge_takes_etags_and_allow_missing_and_reaches_soft_deleted_conversations() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    conversation_of(&t, &o, &i, 1).await;
    let stale = get(&t, &o, &i).await.body["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    assert_eq!(t.append(&o, &i, "moves the etag").await.status, 201);
    t.call(purge(&o, &i).json(json!({"etag": stale})))
        .await
        .assert_problem(409, "ABORTED");
    t.call(purge(&o, &i).header("if-match", &stale))
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
    t.call(purge(&o, &i).json(json!({"etag": 5})))
        .await
        .assert_problem(422, "INVALID_ARGUMENT");
    t.call(purge(&o, &i).json(json!({"other": 1})))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    assert!(get(&t, &o, &i).await.status == 200, "nothing written");
    // Soft-deleted, with its current etag: purged.
    let deleted = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    let current = deleted.body["etag"].as_str().expect("etag");
    let res = t.call(purge(&o, &i).json(json!({"etag": current}))).await;
    assert_eq!((res.status, &res.body), (200, &json!({})));
    get(&t, &o, &i).await.assert_problem(404, "NOT_FOUND");
    // Missing (or another owner's): 404, or 200 {} with allowMissing whatever etag was given.
    let missing = id();
    t.call(purge(&o, &missing))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(purge(&owner(), &i))
        .await
        .assert_problem(404, "NOT_FOUND");
    for req in [
        purge(&o, &missing),
        purge(&o, &i).json(json!({"etag": stale})),
        purge(&o, &missing).header("if-match", "\"1\""),
    ] {
        let res = t.call(req.query("allowMissing", "true")).await;
        assert_eq!((res.status, &res.body), (200, &json!({})));
    }
    assert!(t.stored(&o, &missing).await.is_none(), "nothing created");
}

// ---------------------------------------------------------------- the changed meanings

#[tokio::test]
async fn a_repeated_key_whose_messages_were_deleted_or_cleared_since_is_409() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let batch = |key: &str| {
        Req::new(Method::BatchAppend)
            .owner(&o)
            .id(&i)
            .query("requestId", key)
            .json(json!({"messages": [
                {"type": "USER", "content": "q"},
                {"type": "AGENT", "content": "a"}
            ]}))
    };
    let (deleted_key, cleared_key, kept_key) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    assert_eq!(t.call(batch(&cleared_key)).await.status, 201); // 1, 2
    assert_eq!(t.call(batch(&deleted_key)).await.status, 201); // 3, 4
    let kept = t.call(batch(&kept_key)).await; // 5, 6
    assert_eq!(orders(&kept), [5, 6]);
    assert_eq!(t.call(delete_message(&o, &i, 4)).await.status, 200);
    assert_eq!(
        t.call(clear(&o, &i, json!({"throughOrder": 1})))
            .await
            .status,
        200
    );
    for key in [&deleted_key, &cleared_key] {
        let res = t.call(batch(key)).await;
        res.assert_problem(409, "ALREADY_EXISTS");
    }
    // A key whose messages are all there answers them as they are now.
    let repeat = t.call(batch(&kept_key)).await;
    assert_eq!(repeat.status, 201, "{}", repeat.body);
    assert_eq!(repeat.body["messages"], kept.body["messages"]);
    // Nothing appended again: 2, 3, 5, 6 held (1 is cleared; its item waits for the purger).
    assert_eq!(orders(&t.call(list(&o, &i)).await), [2, 3, 5, 6]);
    assert_eq!(t.counted_messages(&o, &i).await, (Some(4), 5));
}

#[tokio::test]
async fn a_batch_stores_its_messages_and_the_state_it_changed_atomically() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(
        &o,
        &i,
        json!({"agents": ["a"], "metadata": {"keep": 1, "drop": true}}),
    )
    .await;
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "messages": [{"type": "USER", "content": "hi"}, {"type": "AGENT", "content": "hello"}],
        "conversationMetadata": {"user:name": null, "drop": null, "turns": 1, "state": {"step": "greeted"}}
    });
    // A key that breaks the rule: 422 naming conversationMetadata, nothing written.
    let res = t
        .call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .json(body.clone()),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(res.body["errors"][0]["field"], "conversationMetadata");
    assert_eq!(t.counted_messages(&o, &i).await, (Some(0), 0));
    let mut body = body;
    body["conversationMetadata"]
        .as_object_mut()
        .expect("an object")
        .remove("user:name");
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .query("requestId", &key)
                .json(body.clone()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    // The same two requests as any batch with a key.
    assert_eq!(
        sorted(t.counter.take()),
        ["BatchGetItem", "TransactWriteItems"]
    );
    let now = get(&t, &o, &i).await.body;
    assert_eq!(
        now["metadata"],
        json!({"keep": 1, "turns": 1, "state": {"step": "greeted"}})
    );
    assert_eq!(res.body["conversationEtag"], now["etag"]);
    assert_eq!(now["messageCount"], 2);
    // A repeated key applies nothing again, even after the state moved on.
    let set = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "metadata.turns")
                .json(json!({"metadata": {"turns": 5}})),
        )
        .await;
    assert_eq!(set.status, 200);
    let repeat = t
        .call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .query("requestId", &key)
                .json(body),
        )
        .await;
    assert_eq!(repeat.status, 201, "{}", repeat.body);
    assert_eq!(
        repeat.body["conversationEtag"],
        res.body["conversationEtag"]
    );
    assert_eq!(get(&t, &o, &i).await.body["metadata"]["turns"], 5);
    assert_eq!(t.counted_messages(&o, &i).await, (Some(2), 2));
}

#[tokio::test]
async fn conversation_metadata_is_checked_and_bounded_with_nothing_written_when_refused() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(
        &o,
        &i,
        json!({"agents": ["a"], "metadata": {"big": "x".repeat(15 * 1024)}}),
    )
    .await;
    let before = t.stored(&o, &i).await.expect("stored");
    let batch = |metadata: Value| {
        Req::new(Method::BatchAppend).owner(&o).id(&i).json(json!({
            "messages": [{"type": "USER", "content": "hi"}],
            "conversationMetadata": metadata
        }))
    };
    let many: serde_json::Map<String, Value> =
        (0..65).map(|n| (format!("k{n}"), json!(n))).collect();
    for bad in [
        json!("not an object"),
        json!([1, 2]),
        json!({"bad key": 1}),
        json!({"9lives": 1}),
        Value::Object(many),
        json!({"huge": "x".repeat(17 * 1024)}),
        // Within every rule alone, but the merged metadata would pass 16 KiB.
        json!({"more": "x".repeat(2 * 1024)}),
    ] {
        let res = t.call(batch(bad.clone())).await;
        res.assert_problem(422, "INVALID_ARGUMENT");
        assert_eq!(
            res.body["errors"][0]["field"], "conversationMetadata",
            "{}",
            res.body
        );
    }
    assert_eq!(
        t.stored(&o, &i).await.expect("stored"),
        before,
        "nothing written"
    );
    // Removing the big key makes room in the same transaction.
    let res = t
        .call(batch(json!({"big": null, "more": "x".repeat(2 * 1024)})))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let now = get(&t, &o, &i).await.body;
    assert_eq!(now["metadata"].as_object().map(|m| m.len()), Some(1));
}

#[tokio::test]
async fn an_append_sends_the_conversation_s_new_etag_to_chain_the_next_precondition() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let res = t.append(&o, &i, "hi").await;
    let chained = res
        .header("x-conversation-etag")
        .expect("the header")
        .to_owned();
    assert_eq!(json!(chained), get(&t, &o, &i).await.body["etag"]);
    assert_ne!(
        json!(chained),
        res.body["etag"],
        "the message's etag is its own"
    );
    let next = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .header("if-match", &chained)
                .json(json!({"type": "AGENT", "content": "hello"})),
        )
        .await;
    assert_eq!(next.status, 201, "{}", next.body);
}

#[tokio::test]
async fn a_stale_message_etag_on_a_message_that_is_not_there_any_more_is_404() {
    let t = TestApp::new().await;
    let o = owner();
    // Three conversations whose message 1 the client read, then: soft-deleted, purged, cleared.
    let mut cases = Vec::new();
    for what in ["soft-deleted", "purged", "cleared"] {
        let i = id();
        conversation_of(&t, &o, &i, 2).await;
        let read = t
            .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
            .await;
        let etag = read.body["etag"].as_str().expect("etag").to_owned();
        let edited = t
            .call(
                Req::new(Method::UpdateMessage)
                    .owner(&o)
                    .id(&i)
                    .order(1)
                    .json(json!({"content": "edited since"})),
            )
            .await;
        assert_eq!(edited.status, 200, "{}", edited.body);
        let res = match what {
            "soft-deleted" => t.call(Req::new(Method::Delete).owner(&o).id(&i)).await,
            "purged" => t.call(purge(&o, &i)).await,
            _ => t.call(clear(&o, &i, json!({"throughOrder": 1}))).await,
        };
        assert_eq!(res.status, 200, "{what}: {}", res.body);
        cases.push((what, i, etag));
    }
    for (what, i, etag) in &cases {
        for req in [
            delete_message(&o, i, 1).query("etag", etag),
            delete_message(&o, i, 1).header("if-match", etag),
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(i)
                .order(1)
                .json(json!({"content": "x", "etag": etag})),
            Req::new(Method::UpdateMessage)
                .owner(&o)
                .id(i)
                .order(1)
                .header("if-match", etag)
                .json(json!({"content": "x"})),
        ] {
            let res = t.call(req).await;
            assert_eq!(
                (res.status, res.body["code"].as_str()),
                (404, Some("NOT_FOUND")),
                "{what}: {}",
                res.body
            );
        }
    }
}
