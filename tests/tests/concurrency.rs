//! Many clients at once against DynamoDB Local: preconditions let exactly one writer win, appends
//! never share or skip an order, creates of one id make one conversation.

use api_tests::{Method, Req, TestApp, attr_n, attr_s, id, owner};
use futures_util::future::join_all;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_with_one_etag_let_exactly_one_win() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let etag = t.create(&o, &i, json!({"agents": ["a"]})).await["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    let results = join_all((0..20).map(|n| {
        let req = Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": format!("writer {n}"), "etag": etag}));
        t.call(req)
    }))
    .await;
    let winners: Vec<_> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter(|r| r.status != 200)
            .all(|r| r.status == 409 && r.body["code"] == "ABORTED")
    );
    let stored = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(stored.body["displayName"], winners[0].body["displayName"]);
    assert_eq!(stored.body["etag"], winners[0].body["etag"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_with_one_if_match_let_exactly_one_win() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let etag = t.create(&o, &i, json!({"agents": ["a"]})).await["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    let results = join_all((0..20).map(|n| {
        t.call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", &etag)
                .json(json!({"displayName": format!("writer {n}")})),
        )
    }))
    .await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        19,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_appends_get_gap_free_orders() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let results = join_all((0..50).map(|n| t.append(&o, &i, format!("m{n}")))).await;
    let mut orders: Vec<u64> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["order"].as_u64().expect("order")
        })
        .collect();
    orders.sort_unstable();
    assert_eq!(orders, (1..=50).collect::<Vec<u64>>());
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_n(&stored, "message_count"), Some(50));
    assert_eq!(
        t.collection(&o, &i).await.len(),
        52,
        "the conversation's head and body and 50 messages, nothing more"
    );
    let listed = t
        .call(
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("pageSize", "100"),
        )
        .await;
    let listed: Vec<u64> = listed.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["order"].as_u64().expect("order"))
        .collect();
    assert_eq!(listed, (1..=50).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_a_complete_never_land_after_it() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let appends = join_all((0..20).map(|n| t.append(&o, &i, format!("m{n}"))));
    let complete = t.call(Req::new(Method::Complete).owner(&o).id(&i));
    let (appends, completed) = tokio::join!(appends, complete);
    assert_eq!(completed.status, 200);
    let accepted = appends.iter().filter(|r| r.status == 201).count();
    assert!(
        appends.iter().all(
            |r| r.status == 201 || (r.status == 400 && r.body["code"] == "FAILED_PRECONDITION")
        )
    );
    let end = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(end.body["lifecycleState"], "COMPLETED");
    assert_eq!(end.body["messageCount"], accepted);
    let end_time = end.body["endTime"].as_str().expect("endTime").to_owned();
    let messages = t
        .call(
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("pageSize", "100"),
        )
        .await;
    for m in messages.body["messages"].as_array().expect("messages") {
        assert!(
            m["createTime"].as_str().expect("time") <= end_time.as_str(),
            "a message landed after completion"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_id_make_one_conversation() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let results = join_all((0..10).map(|n| {
        t.call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .json(json!({"agents": [format!("a{n}")]})),
        )
    }))
    .await;
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        9,
        "{statuses:?}"
    );
    let request = uuid::Uuid::new_v4().to_string();
    let retried = join_all((0..10).map(|_| {
        t.call(
            Req::new(Method::Create)
                .owner(&o)
                .query("requestId", &request)
                .json(json!({"agents": ["a"]})),
        )
    }))
    .await;
    assert!(
        retried.iter().all(|r| r.status == 201),
        "{:?}",
        retried.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(retried.iter().all(|r| r.body == retried[0].body));
    let listed = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(
        listed.body["conversations"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_racing_update_ends_in_a_serial_outcome() {
    let t = TestApp::new().await;
    let o = owner();
    for _ in 0..10 {
        let i = id();
        t.create(&o, &i, json!({"agents": ["a"]})).await;
        let (deleted, updated) = tokio::join!(
            t.call(Req::new(Method::Delete).owner(&o).id(&i)),
            t.call(
                Req::new(Method::Update)
                    .owner(&o)
                    .id(&i)
                    .json(json!({"displayName": "late"}))
            )
        );
        assert_eq!(deleted.status, 200);
        let end = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
        assert_eq!(end.body["deleted"], true);
        // The delete is the last write either way: the conversation's version is the delete's.
        assert_eq!(end.body["updateTime"], end.body["deleteTime"]);
        assert_eq!(end.body["etag"], deleted.body["etag"]);
        match updated.status {
            // Update first, then delete: the update saw a live conversation, an earlier version,
            // and the deleted conversation carries it.
            200 => {
                assert_eq!(updated.body["deleted"], false, "applied to a live one");
                assert!(
                    updated.body["updateTime"].as_str() < end.body["deleteTime"].as_str(),
                    "the update came before the delete: {} vs {}",
                    updated.body["updateTime"],
                    end.body["deleteTime"]
                );
                assert_eq!(end.body["displayName"], "late");
            }
            // Delete first: the update found nothing live and wrote nothing.
            404 => assert!(end.body.get("displayName").is_none()),
            other => panic!("unexpected update status {other}: {}", updated.body),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undelete_racing_delete_ends_in_a_serial_outcome() {
    let t = TestApp::new().await;
    let o = owner();
    for _ in 0..10 {
        let i = id();
        t.create(&o, &i, json!({"agents": ["a"]})).await;
        let (deleted, undeleted) = tokio::join!(
            t.call(Req::new(Method::Delete).owner(&o).id(&i)),
            t.call(Req::new(Method::Undelete).owner(&o).id(&i))
        );
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        let end = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
        match undeleted.status {
            // Delete first, then undelete: live again, as the undelete answered.
            200 => {
                assert_eq!(end.body["deleted"], false);
                assert_eq!(end.body["etag"], undeleted.body["etag"]);
            }
            // Undelete first (nothing to undelete), then delete: deleted, as delete answered.
            409 => {
                undeleted.assert_problem(409, "ALREADY_EXISTS");
                assert_eq!(end.body["deleted"], true);
                assert_eq!(end.body["etag"], deleted.body["etag"]);
            }
            other => panic!("unexpected undelete status {other}: {}", undeleted.body),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_racing_duplicates_append_one_message_and_answer_ten_identical_201s() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for (n, use_header) in [(0, false), (1, true)] {
        let key = uuid::Uuid::new_v4().to_string();
        let results = join_all((0..10).map(|_| {
            let req = Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": format!("once {n}")}));
            t.call(if use_header {
                req.header("idempotency-key", &key)
            } else {
                req.query("requestId", &key)
            })
        }))
        .await;
        for r in &results {
            assert_eq!((r.status, &r.body), (201, &results[0].body));
        }
        assert_eq!(results[0].body["order"], n + 1);
    }
    assert_eq!(
        t.counted_messages(&o, &i).await,
        (Some(2), 2),
        "one message per key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_duplicate_batches_append_one_batch() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let key = uuid::Uuid::new_v4().to_string();
    let results = join_all((0..10).map(|_| {
        t.call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .query("requestId", &key)
                .json(json!({"messages": [
                    {"type": "USER", "content": "a"},
                    {"type": "AGENT", "content": "b"}
                ]})),
        )
    }))
    .await;
    for r in &results {
        assert_eq!((r.status, &r.body), (201, &results[0].body));
    }
    let orders: Vec<&Value> = results[0].body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["order"])
        .collect();
    assert_eq!(orders, [&json!(1), &json!(2)]);
    let end = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(end.body["messageCount"], 2);
    // Stored: the batch's two messages once, and one marker for the key.
    assert_eq!(t.counted_messages(&o, &i).await, (Some(2), 2));
    let markers = t
        .collection(&o, &i)
        .await
        .iter()
        .filter(|item| attr_s(item, "sk").is_some_and(|sk| sk.starts_with("R#")))
        .count();
    assert_eq!(markers, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_calls_with_one_key_and_different_bodies_append_one_and_refuse_the_other() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for round in 0..5 {
        let key = uuid::Uuid::new_v4().to_string();
        let call = |content: &str| {
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .query("requestId", &key)
                .json(json!({"type": "USER", "content": content}))
        };
        let (a, b) = tokio::join!(t.call(call("first")), t.call(call("second")));
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [201, 422],
            "round {round}: {} / {}",
            a.body,
            b.body
        );
        let refused = if a.status == 422 { &a } else { &b };
        refused.assert_problem(422, "INVALID_ARGUMENT");
        assert_eq!(refused.body["errors"][0]["field"], "requestId");
        let won = if a.status == 201 { &a } else { &b };
        assert_eq!(won.body["order"], round + 1);
    }
    assert_eq!(t.counted_messages(&o, &i).await, (Some(5), 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_batches_and_single_appends_stay_gap_free_with_each_batch_consecutive() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let batches = join_all((0..8).map(|b| {
        let messages: Vec<_> = (0..3)
            .map(|m| json!({"type": "USER", "content": format!("b{b}.{m}")}))
            .collect();
        t.call(
            Req::new(Method::BatchAppend)
                .owner(&o)
                .id(&i)
                .json(json!({ "messages": messages })),
        )
    }));
    let singles = join_all((0..16).map(|n| t.append(&o, &i, format!("s{n}"))));
    let (batches, singles) = tokio::join!(batches, singles);
    let mut all = Vec::new();
    for (b, res) in batches.iter().enumerate() {
        assert_eq!(res.status, 201, "{}", res.body);
        let orders: Vec<u64> = res.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                assert!(
                    m["content"]
                        .as_str()
                        .expect("content")
                        .starts_with(&format!("b{b}."))
                );
                m["order"].as_u64().expect("order")
            })
            .collect();
        assert_eq!(
            orders,
            [orders[0], orders[0] + 1, orders[0] + 2],
            "consecutive"
        );
        all.extend(orders);
    }
    for res in &singles {
        assert_eq!(res.status, 201, "{}", res.body);
        all.push(res.body["order"].as_u64().expect("order"));
    }
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>(), "gap-free, none shared");
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_n(&stored, "message_count"), Some(40));
    assert_eq!(
        t.collection(&o, &i).await.len(),
        42,
        "head, body, 40 messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_message_edits_with_one_etag_let_exactly_one_win() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let etag = t.append(&o, &i, "original").await.body["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    for use_header in [false, true] {
        let etag = if use_header {
            t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
                .await
                .body["etag"]
                .as_str()
                .expect("etag")
                .to_owned()
        } else {
            etag.clone()
        };
        let results = join_all((0..10).map(|n| {
            let req = Req::new(Method::UpdateMessage).owner(&o).id(&i).order(1);
            t.call(if use_header {
                req.header("if-match", &etag)
                    .json(json!({"content": format!("edit {n}")}))
            } else {
                req.json(json!({"content": format!("edit {n}"), "etag": etag}))
            })
        }))
        .await;
        let winners: Vec<_> = results.iter().filter(|r| r.status == 200).collect();
        assert_eq!(
            winners.len(),
            1,
            "{:?}",
            results.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        let (lost, code) = if use_header {
            (412, "FAILED_PRECONDITION")
        } else {
            (409, "ABORTED")
        };
        assert!(
            results
                .iter()
                .filter(|r| r.status != 200)
                .all(|r| r.status == lost && r.body["code"] == code)
        );
        let stored = t
            .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
            .await;
        assert_eq!(stored.body, winners[0].body);
    }
    let end = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(end.body["messageCount"], 1);
}

/// The orders of a conversation's listed messages, every page.
async fn listed_orders(t: &TestApp, o: &str, i: &str) -> Vec<u64> {
    let res = t
        .call(
            Req::new(Method::ListMessages)
                .owner(o)
                .id(i)
                .query("pageSize", "1000"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["order"].as_u64().expect("order"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletes_racing_appends_never_give_an_order_twice_and_keep_the_count_exact() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for n in 1..=10 {
        assert_eq!(t.append(&o, &i, format!("m{n}")).await.status, 201);
    }
    // Pop the ten while twenty more are appended.
    let deletes = join_all((1..=10).map(|order| {
        t.call(
            Req::new(Method::DeleteMessage)
                .owner(&o)
                .id(&i)
                .order(order),
        )
    }));
    let appends = join_all((0..20).map(|n| t.append(&o, &i, format!("a{n}"))));
    let (deletes, appends) = tokio::join!(deletes, appends);
    for res in &deletes {
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let mut given: Vec<u64> = appends
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["order"].as_u64().expect("order")
        })
        .collect();
    given.sort_unstable();
    assert_eq!(
        given,
        (11..=30).collect::<Vec<u64>>(),
        "never an order twice"
    );
    assert_eq!(listed_orders(&t, &o, &i).await, given);
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_n(&stored, "message_count"), Some(20));
    assert_eq!(attr_n(&stored, "last_order"), Some(30));
    assert_eq!(t.counted_messages(&o, &i).await, (Some(20), 20));
    assert_eq!(t.append(&o, &i, "next").await.body["order"], 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clears_racing_appends_keep_the_count_equal_to_what_is_held() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for n in 1..=10 {
        assert_eq!(t.append(&o, &i, format!("m{n}")).await.status, 201);
    }
    let clears = join_all((1..=4).map(|k| {
        t.call(
            Req::new(Method::ClearMessages)
                .owner(&o)
                .id(&i)
                .json(json!({"throughOrder": k * 5})),
        )
    }));
    let appends = join_all((0..16).map(|n| t.append(&o, &i, format!("a{n}"))));
    let (clears, appends) = tokio::join!(clears, appends);
    for res in &clears {
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let mut given: Vec<u64> = appends
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.body);
            r.body["order"].as_u64().expect("order")
        })
        .collect();
    given.sort_unstable();
    assert_eq!(
        given,
        (11..=26).collect::<Vec<u64>>(),
        "never an order twice"
    );
    // What is held is every order above the boundary the last clear left, and the count says so.
    let stored = t.stored(&o, &i).await.expect("stored");
    let boundary = attr_n(&stored, "cleared_through").expect("a boundary");
    let held = listed_orders(&t, &o, &i).await;
    let expected: Vec<u64> = (boundary as u64 + 1..=26).collect();
    assert_eq!(held, expected, "boundary {boundary}");
    assert_eq!(attr_n(&stored, "message_count"), Some(held.len() as i64));
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body["messageCount"], held.len());
}
