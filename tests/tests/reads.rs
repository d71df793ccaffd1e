//! Reading history the way chat clients and agents read it: messages newest first and by order
//! range (reading only the range), one message by its order, a conversation opened with its
//! latest messages in one round trip, and conversations by recent activity.

use api_tests::{Method, Req, Res, TestApp, id, owner};
use serde_json::{Value, json};

fn orders(res: &Res) -> Vec<u64> {
    res.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {}", res.body))
        .iter()
        .map(|m| m["order"].as_u64().expect("an order"))
        .collect()
}

fn list(o: &str, i: &str) -> Req {
    Req::new(Method::ListMessages).owner(o).id(i)
}

/// Every page of a message list, following `nextPageToken`; the orders of each page.
async fn pages(t: &TestApp, request: impl Fn() -> Req) -> Vec<Vec<u64>> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = request();
        if let Some(tk) = &token {
            req = req.query("pageToken", tk);
        }
        let res = t.call(req).await;
        assert_eq!(res.status, 200, "{}", res.body);
        all.push(orders(&res));
        token = res.body["nextPageToken"].as_str().map(str::to_owned);
        if token.is_none() {
            return all;
        }
    }
}

// ---------------------------------------------------------------- list messages

#[tokio::test]
async fn the_last_messages_come_newest_first_in_one_request_and_page_backwards() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.with_messages(&o, &i, 12).await;
    t.counter.take();
    let last = t
        .call(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("pageSize", "5"),
        )
        .await;
    assert_eq!(orders(&last), [12, 11, 10, 9, 8]);
    let mut sent = t.counter.take();
    sent.sort();
    assert_eq!(sent, ["GetItem", "Query"]);
    let all = pages(&t, || {
        list(&o, &i)
            .query("orderBy", "order desc")
            .query("pageSize", "5")
    })
    .await;
    assert_eq!(
        all,
        [vec![12, 11, 10, 9, 8], vec![7, 6, 5, 4, 3], vec![2, 1]]
    );
}

#[tokio::test]
async fn order_bounds_select_a_range_in_either_order() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.with_messages(&o, &i, 20).await;
    let range =
        |order: &str, filter: &str| list(&o, &i).query("orderBy", order).query("filter", filter);
    let asc = t.call(range("order asc", "order > 3 AND order <= 7")).await;
    assert_eq!(orders(&asc), [4, 5, 6, 7]);
    let desc = t
        .call(range("order desc", "order >= 15 AND order < 18"))
        .await;
    assert_eq!(orders(&desc), [17, 16, 15]);
    let before = t.call(range("order desc", "order < 4")).await;
    assert_eq!(orders(&before), [3, 2, 1]);
    let after = t.call(range("order asc", "order > 18")).await;
    assert_eq!(orders(&after), [19, 20]);
    // Bounds at both ends of every integer (and beyond i128) saturate: never a wrapped bound.
    let (max, min) = (i128::MAX, i128::MIN);
    let huge = format!("{max}{max}");
    for nothing in [
        "order > 30".to_owned(),
        "order > 10 AND order < 5".to_owned(),
        "order <= 0".to_owned(),
        format!("order > {max}"),
        format!("order >= {huge}"),
        format!("order < {min}"),
        format!("order <= -{huge}"),
    ] {
        for order in ["order asc", "order desc"] {
            let res = t.call(range(order, &nothing)).await;
            assert_eq!((res.status, orders(&res)), (200, vec![]), "{nothing}");
            assert!(res.body.get("nextPageToken").is_none());
        }
    }
    for everything in [
        format!("order < {max}"),
        format!("order <= {huge}"),
        format!("order > {min}"),
        format!("order >= -{huge} AND order <= {huge}"),
    ] {
        let res = t.call(range("order asc", &everything)).await;
        assert_eq!(orders(&res), (1..=20).collect::<Vec<u64>>(), "{everything}");
    }
}

#[tokio::test]
async fn a_range_in_the_middle_of_a_long_conversation_reads_only_that_range() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.with_messages(&o, &i, 2000).await;
    t.counter.take_scanned();
    let middle = t
        .call(list(&o, &i).query("filter", "order > 1000 AND order <= 1050"))
        .await;
    assert_eq!(orders(&middle), (1001..=1050).collect::<Vec<_>>());
    assert_eq!(
        t.counter.take_scanned(),
        [50],
        "DynamoDB read 50 items of 2000"
    );
    let last = t
        .call(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("pageSize", "20"),
        )
        .await;
    assert_eq!(orders(&last), (1981..=2000).rev().collect::<Vec<_>>());
    let scanned = t.counter.take_scanned();
    assert_eq!(scanned.len(), 1);
    assert!(
        scanned[0] <= 21,
        "the last 20 (and one to know there are more): {scanned:?}"
    );
}

#[tokio::test]
async fn a_type_filter_keeps_only_that_type_and_combines_with_ranges() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    for (kind, content) in [
        ("USER", "q1"),
        ("AGENT", "a1"),
        ("TOOL", "t1"),
        ("USER", "q2"),
        ("AGENT", "a2"),
    ] {
        let res = t
            .call(
                Req::new(Method::Append)
                    .owner(&o)
                    .id(&i)
                    .json(json!({"type": kind, "content": content})),
            )
            .await;
        assert_eq!(res.status, 201);
    }
    let agents = t.call(list(&o, &i).query("filter", "type = AGENT")).await;
    assert_eq!(orders(&agents), [2, 5]);
    let later = t
        .call(list(&o, &i).query("filter", "type = \"USER\" AND order > 1"))
        .await;
    assert_eq!(orders(&later), [4]);
    let none = t
        .call(list(&o, &i).query("filter", "type = USER AND type = TOOL"))
        .await;
    assert_eq!(orders(&none), Vec::<u64>::new());
    // Across pages: the filter is applied after each page's read, so pages may be short (even
    // empty) but following the tokens finds every AGENT message once, in either order.
    for (order, wanted) in [("order asc", vec![2, 5]), ("order desc", vec![5, 2])] {
        let paged = pages(&t, || {
            list(&o, &i)
                .query("filter", "type = AGENT")
                .query("orderBy", order)
                .query("pageSize", "1")
        })
        .await;
        assert_eq!(paged.concat(), wanted, "{order}");
        assert!(paged.iter().all(|p| p.len() <= 1), "{order}: {paged:?}");
        assert!(
            paged.len() >= 3,
            "{order}: short pages in between: {paged:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_order_or_filter_is_400_before_any_dynamodb_call() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.counter.take();
    for (name, value) in [
        ("orderBy", "order"),
        ("orderBy", "createTime desc"),
        ("orderBy", ""),
        ("filter", "order = 3"),
        ("filter", "order > three"),
        ("filter", "type = BOT"),
        ("filter", "content = \"x\""),
        ("filter", "order > 1 OR order < 3"),
    ] {
        t.call(list(&o, &i).query(name, value))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
    }
    assert!(t.counter.take().is_empty());
}

#[tokio::test]
async fn a_message_page_token_is_bound_to_caller_conversation_order_and_filter() {
    let t = TestApp::new().await;
    let (o, i, j) = (owner(), id(), id());
    t.with_messages(&o, &i, 6).await;
    t.with_messages(&o, &j, 6).await;
    let first = t
        .call(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("filter", "order < 6")
                .query("pageSize", "2"),
        )
        .await;
    let token = first.body["nextPageToken"]
        .as_str()
        .expect("more")
        .to_owned();
    let next = |req: Req| req.query("pageSize", "2").query("pageToken", &token);
    let ok = t
        .call(next(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("filter", "order < 6"),
        ))
        .await;
    assert_eq!(orders(&ok), [3, 2]);
    for wrong in [
        list(&o, &i).query("filter", "order < 6"),
        list(&o, &i)
            .query("orderBy", "order desc")
            .query("filter", "order < 5"),
        list(&o, &j)
            .query("orderBy", "order desc")
            .query("filter", "order < 6"),
        list(&owner(), &i)
            .query("orderBy", "order desc")
            .query("filter", "order < 6"),
    ] {
        t.call(next(wrong))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
    }
}

// ---------------------------------------------------------------- get message

#[tokio::test]
async fn get_message_answers_one_message_with_its_etag_in_two_requests() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let appended = t.append(&o, &i, "first").await;
    assert_eq!(appended.status, 201);
    let etag = appended.body["etag"]
        .as_str()
        .expect("a message etag")
        .to_owned();
    assert_eq!(
        appended.header("etag"),
        Some(etag.as_str()),
        "ETag on the append"
    );
    assert_eq!(appended.body["updateTime"], appended.body["createTime"]);
    t.append(&o, &i, "second").await;
    t.counter.take();
    let got = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body, appended.body);
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    let mut sent = t.counter.take();
    sent.sort();
    assert_eq!(sent, ["GetItem", "Query"]);
    let second = t
        .call(
            Req::new(Method::GetMessage)
                .owner(&o)
                .id(&i)
                .order(2)
                .query("fields", "content,order"),
        )
        .await;
    assert_eq!(second.body, json!({"order": 2, "content": "second"}));
}

#[tokio::test]
async fn get_message_is_404_for_any_order_that_is_not_a_message_s() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.append(&o, &i, "only").await;
    t.counter.take();
    t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(2))
        .await
        .assert_problem(404, "NOT_FOUND");
    // Past the highest order: the conversation's read tells, no message is read.
    assert_eq!(t.counter.take(), ["GetItem"]);
    // Anything but a positive integer names no message (revision 3): 404 before any request.
    for order in [
        "0",
        "-1",
        "-0",
        "99999999999999999999",
        "one",
        "1.5",
        "+1",
        "1e2",
    ] {
        t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(order))
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    assert_eq!(t.counter.take(), Vec::<String>::new());
    t.call(
        Req::new(Method::GetMessage)
            .owner(&o)
            .id(&i)
            .order(1)
            .query("fields", "nope"),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn get_message_of_a_deleted_missing_or_foreign_conversation_is_404() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.append(&o, &i, "hello").await;
    let get = |who: &str, which: &str| Req::new(Method::GetMessage).owner(who).id(which).order(1);
    t.call(get(&owner(), &i))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(get(&o, &id()))
        .await
        .assert_problem(404, "NOT_FOUND");
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    t.call(get(&o, &i)).await.assert_problem(404, "NOT_FOUND");
}

// ---------------------------------------------------------------- get, view=FULL

#[tokio::test]
async fn the_full_view_opens_a_conversation_with_its_latest_fifty_messages_in_one_call() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let stored = t.with_messages(&o, &i, 60).await;
    t.counter.take();
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(full.status, 200, "{}", full.body);
    assert_eq!(
        orders(&full),
        (11..=60).collect::<Vec<_>>(),
        "the latest 50, ascending"
    );
    // The conversation's head and body, then its messages.
    assert_eq!(t.counter.take(), ["Query", "Query"]);
    let mut without = full.body.clone();
    without.as_object_mut().expect("object").remove("messages");
    assert_eq!(
        without, stored,
        "the rest is the conversation as get answers it"
    );
    assert_eq!(full.header("etag"), stored["etag"].as_str());
    let basic = t
        .call(
            Req::new(Method::Get)
                .owner(&o)
                .id(&i)
                .query("view", "BASIC"),
        )
        .await;
    assert_eq!(basic.body, stored);
    assert_eq!(t.counter.take(), ["Query"], "BASIC stays one read");
}

#[tokio::test]
async fn the_full_view_of_a_new_conversation_has_no_messages_and_of_a_deleted_one_none_at_all() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    let full = || Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL");
    assert_eq!(t.call(full()).await.body["messages"], json!([]));
    t.append(&o, &i, "hi").await;
    assert_eq!(orders(&t.call(full()).await), [1]);
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    let deleted = t.call(full()).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["deleted"], true);
    assert!(deleted.body.get("messages").is_none(), "{}", deleted.body);
}

#[tokio::test]
async fn view_and_fields_are_checked_and_messages_is_a_full_view_field() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    t.append(&o, &i, "hi").await;
    let get = || Req::new(Method::Get).owner(&o).id(&i);
    for view in ["full", "", "COMPACT"] {
        t.call(get().query("view", view))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
    }
    t.call(get().query("fields", "name,messages"))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    let picked = t
        .call(get().query("view", "FULL").query("fields", "name,messages"))
        .await;
    assert_eq!(
        picked
            .body
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["name".to_owned(), "messages".to_owned()])
    );
    // What a FULL view answered can be sent back in a PATCH: `messages` is output only.
    let full = t.call(get().query("view", "FULL")).await.body;
    let patched = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "displayName")
                .json(json!({"displayName": "again", "messages": full["messages"]})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
}

// ---------------------------------------------------------------- earlier incarnations

#[tokio::test]
async fn an_earlier_conversation_of_the_same_id_never_shows_in_any_message_read() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let old = t
        .create(&o, &i, json!({"agents": ["a"], "ttl": "4s"}))
        .await;
    for n in 0..5 {
        assert_eq!(t.append(&o, &i, format!("old{n}")).await.status, 201);
    }
    let expire = conversations::domain::time::Timestamp::parse(
        old["expireTime"].as_str().expect("expireTime"),
    )
    .expect("valid");
    let wait = expire.micros() - conversations::domain::time::Timestamp::now().micros() + 20_000;
    tokio::time::sleep(std::time::Duration::from_micros(wait.max(0).unsigned_abs())).await;
    t.create(&o, &i, json!({"agents": ["b"]})).await;
    t.append(&o, &i, "new1").await;
    t.append(&o, &i, "new2").await;
    let contents = |res: &Res| -> Vec<Value> {
        res.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].clone())
            .collect()
    };
    let asc = t.call(list(&o, &i)).await;
    assert_eq!(contents(&asc), [json!("new1"), json!("new2")]);
    let desc = t.call(list(&o, &i).query("orderBy", "order desc")).await;
    assert_eq!(contents(&desc), [json!("new2"), json!("new1")]);
    let range = t.call(list(&o, &i).query("filter", "order >= 2")).await;
    assert_eq!(contents(&range), [json!("new2")]);
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(contents(&full), [json!("new1"), json!("new2")]);
    let first = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!(first.body["content"], "new1");
    t.call(Req::new(Method::GetMessage).owner(&o).id(&i).order(4))
        .await
        .assert_problem(404, "NOT_FOUND");
}

/// The `content` of each message of a list or a full view.
fn contents(res: &Res) -> Vec<String> {
    res.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {}", res.body))
        .iter()
        .map(|m| m["content"].as_str().expect("content").to_owned())
        .collect()
}

#[tokio::test]
async fn leftovers_of_earlier_conversations_never_hide_the_live_messages() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"]})).await;
    assert_eq!(t.append(&o, &i, "live1").await.status, 201);
    // 60 messages of an expired conversation of the same id, and four more earlier ones at
    // order 1, not yet purged.
    t.leftovers(&o, &i, 1_000_000, 1..=60).await;
    for earlier in 2..=5 {
        t.leftovers(&o, &i, earlier * 1_000_000, [1]).await;
    }
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    assert_eq!(full.body["messageCount"], 1);
    assert_eq!(contents(&full), ["live1"], "the full view");
    let one = t
        .call(Req::new(Method::GetMessage).owner(&o).id(&i).order(1))
        .await;
    assert_eq!((one.status, &one.body["content"]), (200, &json!("live1")));
    let last = t
        .call(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("pageSize", "5"),
        )
        .await;
    assert_eq!(
        contents(&last),
        ["live1"],
        "the last messages, newest first"
    );
    assert!(last.body.get("nextPageToken").is_none(), "{}", last.body);
    let first = t.call(list(&o, &i).query("pageSize", "5")).await;
    assert_eq!(contents(&first), ["live1"], "oldest first");

    // A longer live conversation among the leftovers: the full view holds its latest 50.
    for n in 2..=55 {
        assert_eq!(t.append(&o, &i, format!("live{n}")).await.status, 201);
    }
    let full = t
        .call(Req::new(Method::Get).owner(&o).id(&i).query("view", "FULL"))
        .await;
    let wanted: Vec<String> = (6..=55).map(|n| format!("live{n}")).collect();
    assert_eq!(contents(&full), wanted);
    let last = t
        .call(
            list(&o, &i)
                .query("orderBy", "order desc")
                .query("pageSize", "5"),
        )
        .await;
    assert_eq!(
        contents(&last),
        ["live55", "live54", "live53", "live52", "live51"]
    );
    let paged = pages(&t, || list(&o, &i).query("pageSize", "7")).await;
    assert_eq!(paged.concat(), (1..=55).collect::<Vec<u64>>());
    let sizes: Vec<usize> = paged.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [7, 7, 7, 7, 7, 7, 7, 6],
        "full pages among leftovers"
    );
}

// ---------------------------------------------------------------- recent conversations

/// The ids of a conversation list, in order.
fn names(res: &Res) -> Vec<String> {
    res.body["conversations"]
        .as_array()
        .unwrap_or_else(|| panic!("conversations in {}", res.body))
        .iter()
        .map(|c| {
            c["name"]
                .as_str()
                .and_then(|n| n.strip_prefix("conversations/"))
                .expect("a name")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn recent_conversations_come_by_last_activity_in_one_query_per_page() {
    let t = TestApp::new().await;
    let o = owner();
    let (a, b, c) = (id(), id(), id());
    for x in [&a, &b, &c] {
        t.create(&o, x, json!({"agents": ["a"]})).await;
    }
    // `a` is the oldest conversation but the latest to be used.
    assert_eq!(t.append(&o, &a, "back again").await.status, 201);
    t.counter.take();
    let recent = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("orderBy", "lastUsedTime desc"),
        )
        .await;
    assert_eq!(names(&recent), [a.clone(), c.clone(), b.clone()]);
    // The heads of the page, then their bodies.
    assert_eq!(t.counter.take(), ["Query", "BatchGetItem"]);
    let oldest = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("orderBy", "lastUsedTime asc"),
        )
        .await;
    assert_eq!(names(&oldest), [b.clone(), c.clone(), a.clone()]);
    let by_creation = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(names(&by_creation), [c.clone(), b.clone(), a.clone()]);
    let paged: Vec<Vec<String>> = {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = Req::new(Method::List)
                .owner(&o)
                .query("orderBy", "lastUsedTime desc")
                .query("pageSize", "2");
            if let Some(tk) = &token {
                req = req.query("pageToken", tk);
            }
            let res = t.call(req).await;
            assert_eq!(res.status, 200, "{}", res.body);
            all.push(names(&res));
            token = res.body["nextPageToken"].as_str().map(str::to_owned);
            if token.is_none() {
                break all;
            }
        }
    };
    assert_eq!(paged, [vec![a, c], vec![b]], "pages of pageSize");
}

#[tokio::test]
async fn recent_conversations_take_every_filter_show_deleted_and_their_own_page_tokens() {
    let t = TestApp::new().await;
    let o = owner();
    let (a, b, c) = (id(), id(), id());
    t.create(&o, &a, json!({"agents": ["x"], "labels": {"team": "one"}}))
        .await;
    let b_created = t
        .create(&o, &b, json!({"agents": ["y"], "labels": {"team": "one"}}))
        .await;
    t.create(&o, &c, json!({"agents": ["x"], "labels": {"team": "two"}}))
        .await;
    t.append(&o, &a, "latest").await;
    assert_eq!(
        t.call(Req::new(Method::Complete).owner(&o).id(&c))
            .await
            .status,
        200
    );
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&b))
            .await
            .status,
        200
    );
    let recent = |filter: &str, deleted: bool| {
        let mut req = Req::new(Method::List)
            .owner(&o)
            .query("orderBy", "lastUsedTime desc")
            .query("filter", filter);
        if deleted {
            req = req.query("showDeleted", "true");
        }
        req
    };
    // `a` was used last (its append); completing or deleting moves no lastUsedTime.
    assert_eq!(
        names(&t.call(recent("", false)).await),
        [a.clone(), c.clone()]
    );
    assert_eq!(
        names(&t.call(recent("", true)).await),
        [a.clone(), c.clone(), b.clone()]
    );
    assert_eq!(
        names(&t.call(recent("labels.team = \"one\"", true)).await),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        names(
            &t.call(recent("agents:\"x\" AND lifecycleState = COMPLETED", false))
                .await
        ),
        std::slice::from_ref(&c)
    );
    let since = format!(
        "createTime >= \"{}\"",
        b_created["createTime"].as_str().expect("createTime")
    );
    assert_eq!(
        names(&t.call(recent(&since, true)).await),
        [c.clone(), b.clone()],
        "a createTime range is a filter in this order"
    );
    // A token of one order is refused by another.
    let first = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("orderBy", "lastUsedTime desc")
                .query("pageSize", "1"),
        )
        .await;
    let token = first.body["nextPageToken"]
        .as_str()
        .expect("more")
        .to_owned();
    t.call(
        Req::new(Method::List)
            .owner(&o)
            .query("pageSize", "1")
            .query("pageToken", &token),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}
