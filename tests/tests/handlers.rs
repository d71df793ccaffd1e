//! In-process tests of every handler against DynamoDB Local: each method, status code and error
//! of the contract, the stored state afterwards, and the DynamoDB requests each method makes.

use api_tests::{Method, Req, TestApp, attr_n, attr_s, id, owner};
use aws_sdk_dynamodb::types::AttributeValue;
use conversations::AuthMode;
use conversations::domain::time::Timestamp;
use serde_json::{Value, json};

fn body() -> Value {
    json!({"displayName": "Support chat", "agents": ["bot-1"], "labels": {"team": "billing"}})
}

// ---------------------------------------------------------------- create

/// Requests sent at once arrive in either order.
fn sorted(mut sent: Vec<String>) -> Vec<String> {
    sent.sort();
    sent
}

#[tokio::test]
async fn create_returns_201_with_location_etag_and_defaults() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let res = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .json(body()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/conversations/{i}").as_str())
    );
    let b = &res.body;
    assert_eq!(b["name"], format!("conversations/{i}"));
    assert_eq!(res.header("etag"), b["etag"].as_str());
    assert_eq!(b["lifecycleState"], "IN_PROGRESS");
    assert_eq!(b["conversationStage"], "VIRTUAL_AGENT_STAGE");
    assert_eq!(b["messageCount"], 0);
    assert_eq!(b["deleted"], false);
    assert_eq!(b["owner"], o);
    assert_eq!(b["createTime"], b["updateTime"]);
    assert_eq!(b["createTime"], b["lastUsedTime"]);
    assert_eq!(b["startTime"], b["createTime"]);
    assert_eq!(
        b["can"],
        json!({"update": true, "delete": true, "undelete": false, "complete": true, "appendMessage": true})
    );
    let ts = b["createTime"].as_str().expect("timestamp");
    assert_eq!(ts.len(), 27, "six fractional digits and Z: {ts}");
    assert!(ts.ends_with('Z'));
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_s(&stored, "display_name"), Some("Support chat"));
    // Its head and its body, both or neither.
    assert_eq!(t.counter.take(), ["TransactWriteItems"]);
}

#[tokio::test]
async fn create_without_an_id_chooses_a_lower_case_uuid() {
    let t = TestApp::new().await;
    let o = owner();
    let res = t
        .call(Req::new(Method::Create).owner(&o).json(body()))
        .await;
    assert_eq!(res.status, 201);
    let name = res.body["name"].as_str().expect("name");
    let id = name.strip_prefix("conversations/").expect("prefix");
    assert!(
        uuid::Uuid::parse_str(id).is_ok() && id == id.to_lowercase(),
        "{id}"
    );
    let got = t.call(Req::new(Method::Get).owner(&o).id(id)).await;
    assert_eq!(got.status, 200);
}

#[tokio::test]
async fn create_with_a_taken_id_is_409_already_exists_and_changes_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let first = t.create(&o, &i, body()).await;
    let res = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .json(json!({"agents": ["other"]})),
        )
        .await;
    res.assert_problem(409, "ALREADY_EXISTS");
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body, first);
}

#[tokio::test]
async fn a_create_retried_with_the_same_request_id_returns_the_first_result() {
    let t = TestApp::new().await;
    let o = owner();
    let request = uuid::Uuid::new_v4().to_string();
    let first = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("requestId", &request)
                .json(body()),
        )
        .await;
    assert_eq!(first.status, 201);
    let again = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("requestId", &request)
                .json(body()),
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    let list = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(list.body["conversations"].as_array().map(Vec::len), Some(1));
    // With an explicit id too.
    let i = id();
    let a = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .query("requestId", &request)
                .json(body()),
        )
        .await;
    let b = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("conversationId", &i)
                .query("requestId", &request)
                .json(body()),
        )
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.body, b.body);
    // Another owner with the same request id gets a conversation of their own.
    let other = t
        .call(
            Req::new(Method::Create)
                .owner(&owner())
                .query("requestId", &request)
                .json(body()),
        )
        .await;
    assert_eq!(other.status, 201);
    assert_ne!(other.body["name"], first.body["name"]);
}

#[tokio::test]
async fn create_validates_every_field_and_lists_each_broken_one() {
    let t = TestApp::new().await;
    let o = owner();
    let res = t
        .call(Req::new(Method::Create).owner(&o).json(json!({
            "displayName": "x".repeat(257), "category": "c".repeat(65), "agents": [], "conversationProfile": "p".repeat(513),
            "languageCode": "not a tag", "labels": {"Bad Key": "v"}, "metadata": [1], "conversationStage": "HUMAN",
            "startTime": "noon", "expireTime": "2020-01-01T00:00:00Z"
        })))
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    let fields: Vec<&str> = res.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in [
        "displayName",
        "category",
        "agents",
        "conversationProfile",
        "languageCode",
        "labels.Bad Key",
        "metadata",
        "conversationStage",
        "startTime",
        "expireTime",
    ] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    assert_eq!(
        res.body["detail"],
        format!("{} fields are invalid", fields.len())
    );
    assert_eq!(
        t.counter.take(),
        Vec::<String>::new(),
        "nothing reaches DynamoDB"
    );
}

#[tokio::test]
async fn create_without_agents_is_422_required() {
    let t = TestApp::new().await;
    let res = t
        .call(
            Req::new(Method::Create)
                .owner(&owner())
                .json(json!({"displayName": "x"})),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(
        res.body["errors"],
        json!([{"field": "agents", "code": "required", "message": "at least one agent is required"}])
    );
}

#[tokio::test]
async fn create_rejects_bad_bodies_ids_and_parameters_with_400() {
    let t = TestApp::new().await;
    let o = owner();
    let cases = [
        Req::new(Method::Create)
            .owner(&o)
            .raw(b"{not json".to_vec()),
        Req::new(Method::Create).owner(&o).json(json!([1, 2])),
        Req::new(Method::Create)
            .owner(&o)
            .json(json!({"agents": ["a"], "colour": "red"})),
        Req::new(Method::Create)
            .owner(&o)
            .query("conversationId", "Bad_Id")
            .json(body()),
        Req::new(Method::Create)
            .owner(&o)
            .query("requestId", "not-a-uuid")
            .json(body()),
        Req::new(Method::Create)
            .owner(&o)
            .query("fields", "name,nope")
            .json(body()),
        Req::new(Method::Create)
            .owner(&o)
            .query("colour", "red")
            .json(body()),
    ];
    for req in cases {
        let res = t.call(req.clone()).await;
        res.assert_problem(400, "INVALID_ARGUMENT");
    }
    let list = t.call(Req::new(Method::List).owner(&o)).await;
    assert_eq!(list.body["conversations"], json!([]), "nothing was written");
}

#[tokio::test]
async fn create_ignores_output_only_fields_in_the_body() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let b = t.create(&o, &i, json!({"agents": ["a"], "name": "conversations/zzz", "messageCount": 99, "lifecycleState": "COMPLETED", "owner": "mallory", "createTime": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(b["name"], format!("conversations/{i}"));
    assert_eq!(b["messageCount"], 0);
    assert_eq!(b["lifecycleState"], "IN_PROGRESS");
    assert_eq!(b["owner"], o);
}

#[tokio::test]
async fn create_with_ttl_sets_expire_time_and_the_dynamodb_ttl() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let b = t
        .create(&o, &i, json!({"agents": ["a"], "ttl": "3600s"}))
        .await;
    let expire = b["expireTime"].as_str().expect("expireTime");
    let create = b["createTime"].as_str().expect("createTime");
    assert!(expire > create);
    let stored = t.stored(&o, &i).await.expect("stored");
    assert!(attr_n(&stored, "ttl_at").is_some());
    let both = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .json(json!({"agents": ["a"], "ttl": "60s", "expireTime": "2099-01-01T00:00:00Z"})),
        )
        .await;
    both.assert_problem(422, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn bodies_over_256_kib_are_413_and_other_media_types_415() {
    let t = TestApp::new().await;
    let o = owner();
    let big = json!({"agents": ["a"], "displayName": "x".repeat(300 * 1024)});
    t.call(Req::new(Method::Create).owner(&o).json(big))
        .await
        .assert_problem(413, "PAYLOAD_TOO_LARGE");
    let form = Req::new(Method::Create)
        .owner(&o)
        .header("content-type", "text/plain")
        .raw(b"{\"agents\":[\"a\"]}".to_vec());
    t.call(form)
        .await
        .assert_problem(415, "UNSUPPORTED_MEDIA_TYPE");
    let charset = Req::new(Method::Create)
        .owner(&o)
        .header("content-type", "application/json; charset=utf-8")
        .raw(b"{\"agents\":[\"a\"]}".to_vec());
    assert_eq!(t.call(charset).await.status, 201);
}

#[tokio::test]
async fn fields_limits_the_response_to_the_named_fields() {
    let t = TestApp::new().await;
    let o = owner();
    let res = t
        .call(
            Req::new(Method::Create)
                .owner(&o)
                .query("fields", "name,etag")
                .json(body()),
        )
        .await;
    assert_eq!(res.status, 201);
    let keys: Vec<&String> = res.body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["name", "etag"]);
    assert!(res.header("etag").is_some());
}

// ---------------------------------------------------------------- identity and isolation

#[tokio::test]
async fn a_request_without_identity_is_401() {
    let t = TestApp::new().await;
    for method in [Method::Create, Method::List] {
        t.call(Req::new(method).json(body()))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
    }
    for method in [
        Method::Get,
        Method::Update,
        Method::Delete,
        Method::Undelete,
        Method::Complete,
        Method::Purge,
        Method::Append,
        Method::ListMessages,
        Method::BatchAppend,
        Method::ClearMessages,
    ] {
        t.call(Req::new(method).id("abc"))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
    }
    for method in [
        Method::GetMessage,
        Method::UpdateMessage,
        Method::DeleteMessage,
    ] {
        t.call(Req::new(method).id("abc").order(1))
            .await
            .assert_problem(401, "UNAUTHENTICATED");
    }
    t.call(Req::new(Method::Get).id("abc").owner("bad owner!"))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn another_owners_conversation_does_not_exist_for_any_method() {
    let t = TestApp::new().await;
    let (alice, bob, i) = (owner(), owner(), id());
    t.create(&alice, &i, body()).await;
    assert_eq!(t.append(&alice, &i, "alice's").await.status, 201);
    let created = t
        .call(Req::new(Method::Get).owner(&alice).id(&i))
        .await
        .body;
    let etag = created["etag"].as_str().expect("etag").to_owned();
    let cases = [
        Req::new(Method::Get).id(&i),
        Req::new(Method::Update)
            .id(&i)
            .json(json!({"displayName": "mine now"})),
        Req::new(Method::Delete).id(&i),
        Req::new(Method::Undelete).id(&i),
        Req::new(Method::Complete).id(&i),
        Req::new(Method::Purge).id(&i),
        Req::new(Method::Append)
            .id(&i)
            .json(json!({"type": "USER", "content": "hi"})),
        Req::new(Method::BatchAppend)
            .id(&i)
            .json(json!({"messages": [{"type": "USER", "content": "hi"}]})),
        Req::new(Method::ListMessages).id(&i),
        Req::new(Method::GetMessage).id(&i).order(1),
        Req::new(Method::UpdateMessage)
            .id(&i)
            .order(1)
            .json(json!({"content": "mine now"})),
        Req::new(Method::DeleteMessage).id(&i).order(1),
        Req::new(Method::ClearMessages).id(&i),
    ];
    for req in cases {
        t.call(req.owner(&bob))
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    // With Alice's etag, Bob gets what an etag on an id nobody holds gets (412): nothing tells
    // him the conversation is there.
    let nobodys = id();
    for target in [&i, &nobodys] {
        t.call(
            Req::new(Method::Update)
                .owner(&bob)
                .id(target)
                .header("if-match", &etag)
                .json(json!({"displayName": "x"})),
        )
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
        for method in [Method::ClearMessages, Method::Purge] {
            t.call(
                Req::new(method)
                    .owner(&bob)
                    .id(target)
                    .header("if-match", &etag),
            )
            .await
            .assert_problem(412, "FAILED_PRECONDITION");
        }
        // Bob's purge with allowMissing finds nothing of his to purge: `{}`, as for any id.
        let purged = t
            .call(
                Req::new(Method::Purge)
                    .owner(&bob)
                    .id(target)
                    .query("allowMissing", "true")
                    .header("if-match", &etag),
            )
            .await;
        assert_eq!((purged.status, &purged.body), (200, &json!({})));
    }
    let list = t
        .call(
            Req::new(Method::List)
                .owner(&bob)
                .query("showDeleted", "true"),
        )
        .await;
    assert_eq!(list.body["conversations"], json!([]));
    // Bob may use the same id for a conversation of his own.
    let bobs = t.create(&bob, &i, json!({"agents": ["b"]})).await;
    assert_eq!(bobs["owner"], bob);
    let alices = t.call(Req::new(Method::Get).owner(&alice).id(&i)).await;
    assert_eq!(alices.body, created, "alice's conversation is untouched");
    let message = t
        .call(Req::new(Method::GetMessage).owner(&alice).id(&i).order(1))
        .await;
    assert_eq!(message.body["content"], "alice's", "and so is her message");
}

#[tokio::test]
async fn a_page_token_of_another_owner_is_400() {
    let t = TestApp::new().await;
    let (alice, bob) = (owner(), owner());
    for _ in 0..3 {
        t.create(&alice, &id(), body()).await;
    }
    let page = t
        .call(Req::new(Method::List).owner(&alice).query("pageSize", "1"))
        .await;
    let token = page.body["nextPageToken"].as_str().expect("token");
    let res = t
        .call(
            Req::new(Method::List)
                .owner(&bob)
                .query("pageSize", "1")
                .query("pageToken", token),
        )
        .await;
    res.assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn the_jwt_sub_claim_is_the_owner_and_the_header_is_ignored_then() {
    let t = TestApp::with_auth(AuthMode::Jwt).await;
    let sub = owner();
    let v2 = json!({"http": {"method": "POST", "path": "/v1/conversations", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
        "authorizer": {"jwt": {"claims": {"sub": sub}, "scopes": null}}, "timeEpoch": 0});
    let res = t
        .call(Req::new(Method::Create).context(v2).json(body()))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["owner"], sub);
    let id = res.body["name"]
        .as_str()
        .expect("name")
        .trim_start_matches("conversations/")
        .to_owned();
    let spoofed = t.call(Req::new(Method::Get).id(&id).owner(&sub)).await;
    spoofed.assert_problem(401, "UNAUTHENTICATED");
    let v1 = json!({"httpMethod": "GET", "identity": {}, "authorizer": {"claims": {"sub": sub}}, "requestTimeEpoch": 0});
    let rest = t.call(Req::new(Method::Get).id(&id).context(v1)).await;
    assert_eq!(rest.status, 200, "{}", rest.body);
}

// ---------------------------------------------------------------- get

#[tokio::test]
async fn get_returns_the_conversation_with_its_etag_in_one_request() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    t.counter.take();
    let res = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, created);
    assert_eq!(res.header("etag"), created["etag"].as_str());
    // One Query of its head and body.
    assert_eq!(t.counter.take(), ["Query"]);
}

#[tokio::test]
async fn get_of_a_missing_conversation_is_404_and_a_bad_id_400() {
    let t = TestApp::new().await;
    t.call(Req::new(Method::Get).owner(&owner()).id("nothing-here"))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(Req::new(Method::Get).owner(&owner()).id("NOT_VALID"))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
}

// ---------------------------------------------------------------- update

#[tokio::test]
async fn update_with_a_mask_changes_only_the_masked_fields_in_one_request() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(
            &o,
            &i,
            json!({"displayName": "a", "category": "c", "agents": ["x"]}),
        )
        .await;
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "displayName")
                .json(json!({"displayName": "b", "category": "ignored"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["displayName"], "b");
    assert_eq!(res.body["category"], "c");
    assert_ne!(res.body["etag"], created["etag"]);
    assert!(res.body["updateTime"].as_str() > created["updateTime"].as_str());
    assert_eq!(
        res.body["lastUsedTime"], created["lastUsedTime"],
        "lastUsedTime moves only on create and append"
    );
    assert_eq!(res.header("etag"), res.body["etag"].as_str());
    // The head's write, and the body read beside it for the answer.
    assert_eq!(sorted(t.counter.take()), ["GetItem", "UpdateItem"]);
}

#[tokio::test]
async fn update_without_a_mask_uses_the_fields_present_in_the_body() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(
        &o,
        &i,
        json!({"displayName": "a", "category": "c", "agents": ["x"], "labels": {"a": "1"}}),
    )
    .await;
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"category": null, "labels": {"b": "2"}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["displayName"], "a");
    assert!(res.body.get("category").is_none(), "null cleared it");
    assert_eq!(res.body["labels"], json!({"b": "2"}));
}

#[tokio::test]
async fn update_with_star_replaces_every_mutable_field() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"displayName": "a", "category": "c", "agents": ["x"], "conversationProfile": "p", "conversationStage": "HUMAN_ASSIST_STAGE", "metadata": {"k": 1}})).await;
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "*")
                .json(json!({"agents": ["y"]})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.get("displayName").is_none()
            && res.body.get("category").is_none()
            && res.body.get("metadata").is_none()
    );
    assert_eq!(res.body["agents"], json!(["y"]));
    assert_eq!(res.body["conversationStage"], "VIRTUAL_AGENT_STAGE");
    assert_eq!(
        res.body["conversationProfile"], "p",
        "immutable fields survive *"
    );
    let no_agents = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "*")
                .json(json!({})),
        )
        .await;
    no_agents.assert_problem(422, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn update_of_single_labels_sets_and_removes_keys() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(
        &o,
        &i,
        json!({"agents": ["x"], "labels": {"a": "1", "b": "2"}}),
    )
    .await;
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "labels.a,labels.c,labels.b")
                .json(json!({"labels": {"a": "one", "c": "3"}})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["labels"], json!({"a": "one", "c": "3"}));
}

#[tokio::test]
async fn update_never_lets_labels_exceed_64() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let labels: serde_json::Map<String, Value> =
        (0..64).map(|n| (format!("k{n}"), json!("v"))).collect();
    t.create(&o, &i, json!({"agents": ["x"], "labels": labels}))
        .await;
    let over = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "labels.extra")
                .json(json!({"labels": {"extra": "v"}})),
        )
        .await;
    over.assert_problem(422, "INVALID_ARGUMENT");
    // Overwriting an existing key keeps 64: allowed.
    let same = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("updateMask", "labels.k1")
                .json(json!({"labels": {"k1": "w"}})),
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.body["labels"]["k1"], "w");
    assert_eq!(same.body["labels"].as_object().map(|m| m.len()), Some(64));
}

#[tokio::test]
async fn update_rejects_unknown_paths_and_a_changed_profile_with_400() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(
            &o,
            &i,
            json!({"agents": ["x"], "conversationProfile": "p1"}),
        )
        .await;
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .query("updateMask", "colour")
            .json(json!({})),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    let changed = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"conversationProfile": "p2"})),
        )
        .await;
    changed.assert_problem(400, "INVALID_ARGUMENT");
    let same = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"conversationProfile": "p1", "displayName": "d"})),
        )
        .await;
    assert_eq!(same.status, 200);
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body["conversationProfile"], "p1");
    assert_ne!(got.body["etag"], created["etag"]);
}

#[tokio::test]
async fn update_validates_values_as_create_does() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"displayName": "x".repeat(300), "agents": [""]})),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(res.body["errors"].as_array().map(Vec::len), Some(2));
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body, created, "a failed update writes nothing");
}

#[tokio::test]
async fn update_of_a_missing_conversation_is_404_or_creates_it_with_allow_missing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    assert!(t.stored(&o, &i).await.is_none());
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true")
                .query("updateMask", "displayName")
                .json(json!({"displayName": "x", "agents": ["a"]})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(
        res.body["agents"],
        json!(["a"]),
        "the mask is ignored when creating"
    );
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/conversations/{i}").as_str())
    );
    // The head's write (refused: missing) with the body's read beside it, then the create.
    assert_eq!(
        sorted(t.counter.take()),
        ["GetItem", "TransactWriteItems", "UpdateItem"]
    );
    let again = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true")
                .json(json!({"displayName": "y"})),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(sorted(t.counter.take()), ["GetItem", "UpdateItem"]);
    let invalid = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&id())
                .query("allowMissing", "true")
                .json(json!({"displayName": "no agents"})),
        )
        .await;
    invalid.assert_problem(422, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn update_of_a_deleted_conversation_is_404_or_409_with_allow_missing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    assert_eq!(
        t.call(Req::new(Method::Delete).owner(&o).id(&i))
            .await
            .status,
        200
    );
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
    let upsert = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true")
                .json(json!({"displayName": "x", "agents": ["a"]})),
        )
        .await;
    upsert.assert_problem(409, "ALREADY_EXISTS");
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(attr_s(&stored, "display_name"), Some("Support chat"));
}

// ---------------------------------------------------------------- preconditions

#[tokio::test]
async fn a_stale_body_etag_is_409_aborted_and_a_stale_if_match_412() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    let old = created["etag"].as_str().expect("etag").to_owned();
    let fresh = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"displayName": "v2", "etag": old})),
        )
        .await;
    assert_eq!(fresh.status, 200, "the current etag matches");
    t.counter.take();
    let stale = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"displayName": "v3", "etag": old})),
        )
        .await;
    stale.assert_problem(409, "ABORTED");
    let header = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", &old)
                .json(json!({"displayName": "v3"})),
        )
        .await;
    header.assert_problem(412, "FAILED_PRECONDITION");
    assert_eq!(
        sorted(t.counter.take()),
        ["GetItem", "GetItem", "UpdateItem", "UpdateItem"],
        "the condition is checked in the write itself (each with the body's read beside it)"
    );
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body["displayName"], "v2");
    let current = got.body["etag"].as_str().expect("etag").to_owned();
    let ok = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", &current)
                .json(json!({"displayName": "v3"})),
        )
        .await;
    assert_eq!(ok.status, 200);
    let star = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", "*")
                .json(json!({"displayName": "v4"})),
        )
        .await;
    assert_eq!(star.status, 200);
}

#[tokio::test]
async fn an_etag_that_was_never_issued_is_stale_and_a_malformed_if_match_is_400() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x", "etag": "\"garbage\""})),
    )
    .await
    .assert_problem(409, "ABORTED");
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .header("if-match", "garbage")
            .json(json!({"displayName": "x"})),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn an_etag_at_the_end_of_time_matches_nothing_and_writes_nothing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    for tag in [
        "\"7fffffffffffffff\"",
        "\"384440ccc736000\"",
        "\"384440ccc735fff\"",
    ] {
        t.call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", tag)
                .json(json!({"displayName": "x"})),
        )
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
        t.call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .json(json!({"displayName": "x", "etag": tag})),
        )
        .await
        .assert_problem(409, "ABORTED");
        t.call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": "x", "etag": tag})),
        )
        .await
        .assert_problem(409, "ABORTED");
        t.call(Req::new(Method::Delete).owner(&o).id(&i).query("etag", tag))
            .await
            .assert_problem(409, "ABORTED");
    }
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body, created, "nothing was written");
}

#[tokio::test]
async fn an_etag_on_a_missing_conversation_fails_and_allow_missing_creates_nothing() {
    let t = TestApp::new().await;
    let o = owner();
    let tag = "\"660ef8cd5e780\"";
    for allow in ["false", "true"] {
        let i = id();
        // If-Match naming a tag, and `*` (RFC 9110: false when nothing exists): 412.
        for if_match in [tag, "*"] {
            t.call(
                Req::new(Method::Update)
                    .owner(&o)
                    .id(&i)
                    .query("allowMissing", allow)
                    .header("if-match", if_match)
                    .json(json!({"agents": ["a"]})),
            )
            .await
            .assert_problem(412, "FAILED_PRECONDITION");
        }
        // A body etag: 409 ABORTED.
        t.call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .query("allowMissing", allow)
                .json(json!({"agents": ["a"], "etag": tag})),
        )
        .await
        .assert_problem(409, "ABORTED");
        // delete, with allowMissing as well.
        t.call(
            Req::new(Method::Delete)
                .owner(&o)
                .id(&i)
                .query("allowMissing", allow)
                .query("etag", tag),
        )
        .await
        .assert_problem(409, "ABORTED");
        t.call(
            Req::new(Method::Delete)
                .owner(&o)
                .id(&i)
                .query("allowMissing", allow)
                .header("if-match", "*"),
        )
        .await
        .assert_problem(412, "FAILED_PRECONDITION");
        assert!(t.stored(&o, &i).await.is_none(), "nothing was created");
    }
    let i = id();
    let etag_body = json!({"etag": tag});
    for method in [Method::Undelete, Method::Complete] {
        t.call(Req::new(method).owner(&o).id(&i).json(etag_body.clone()))
            .await
            .assert_problem(409, "ABORTED");
        t.call(Req::new(method).owner(&o).id(&i).header("if-match", tag))
            .await
            .assert_problem(412, "FAILED_PRECONDITION");
    }
    t.call(
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .json(json!({"type": "USER", "content": "x", "etag": tag})),
    )
    .await
    .assert_problem(409, "ABORTED");
    t.call(
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .header("if-match", tag)
            .json(json!({"type": "USER", "content": "x"})),
    )
    .await
    .assert_problem(412, "FAILED_PRECONDITION");
    assert!(t.collection(&o, &i).await.is_empty(), "nothing was written");
    // Without a precondition the same calls are the ordinary 404 (and 200 for an allowMissing
    // delete).
    t.call(Req::new(Method::Complete).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    let deleted = t
        .call(
            Req::new(Method::Delete)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true"),
        )
        .await;
    assert_eq!((deleted.status, deleted.body), (200, json!({})));
}

#[tokio::test]
async fn etags_change_on_every_write_and_never_repeat() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let mut seen = vec![t.create(&o, &i, body()).await["etag"].clone()];
    // Each write's answer, which must succeed and carry the conversation's new etag.
    let write = async |req: Req, status: u16| {
        let res = t.call(req.owner(&o).id(&i)).await;
        assert_eq!(res.status, status, "{}", res.body);
        res
    };
    for n in 0..5 {
        let res = write(
            Req::new(Method::Update).json(json!({"displayName": format!("v{n}")})),
            200,
        )
        .await;
        seen.push(res.body["etag"].clone());
    }
    write(
        Req::new(Method::Append).json(json!({"type": "USER", "content": "hi"})),
        201,
    )
    .await;
    seen.push(write(Req::new(Method::Get), 200).await.body["etag"].clone());
    for method in [Method::Complete, Method::Delete, Method::Undelete] {
        seen.push(write(Req::new(method), 200).await.body["etag"].clone());
    }
    assert!(seen.iter().all(Value::is_string), "{seen:?}");
    let mut unique = seen.clone();
    unique.sort_by_key(Value::to_string);
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
}

// ---------------------------------------------------------------- delete and undelete

#[tokio::test]
async fn delete_soft_deletes_and_get_still_shows_it() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    t.counter.take();
    let res = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(sorted(t.counter.take()), ["GetItem", "UpdateItem"]);
    assert_eq!(res.body["deleted"], true);
    let delete_time = res.body["deleteTime"].as_str().expect("deleteTime");
    let purge_time = res.body["purgeTime"].as_str().expect("purgeTime");
    let d = conversations::domain::time::Timestamp::parse(delete_time).expect("ts");
    let p = conversations::domain::time::Timestamp::parse(purge_time).expect("ts");
    assert_eq!(p.micros() - d.micros(), 30 * 24 * 3600 * 1_000_000);
    assert_eq!(
        res.body["can"],
        json!({"update": false, "delete": false, "undelete": true, "complete": false, "appendMessage": false})
    );
    let stored = t.stored(&o, &i).await.expect("still stored");
    assert_eq!(attr_n(&stored, "ttl_at"), Some(p.epoch_seconds_ceil()));
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["deleted"], true);
}

#[tokio::test]
async fn delete_of_a_deleted_or_missing_conversation_is_404_or_200_with_allow_missing() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    let first = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    t.call(Req::new(Method::Delete).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    let again = t
        .call(
            Req::new(Method::Delete)
                .owner(&o)
                .id(&i)
                .query("allowMissing", "true"),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body, "unchanged");
    t.call(Req::new(Method::Delete).owner(&o).id("never-was"))
        .await
        .assert_problem(404, "NOT_FOUND");
    let missing = t
        .call(
            Req::new(Method::Delete)
                .owner(&o)
                .id("never-was")
                .query("allowMissing", "true"),
        )
        .await;
    assert_eq!((missing.status, missing.body.clone()), (200, json!({})));
}

#[tokio::test]
async fn delete_honours_the_etag_query_parameter_and_if_match() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "new"})),
    )
    .await;
    let old = created["etag"].as_str().expect("etag");
    t.call(Req::new(Method::Delete).owner(&o).id(&i).query("etag", old))
        .await
        .assert_problem(409, "ABORTED");
    t.call(
        Req::new(Method::Delete)
            .owner(&o)
            .id(&i)
            .header("if-match", old),
    )
    .await
    .assert_problem(412, "FAILED_PRECONDITION");
    assert!(
        attr_n(&t.stored(&o, &i).await.expect("stored"), "delete_time").is_none(),
        "not deleted"
    );
    let current = t.call(Req::new(Method::Get).owner(&o).id(&i)).await.body["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    assert_eq!(
        t.call(
            Req::new(Method::Delete)
                .owner(&o)
                .id(&i)
                .query("etag", &current)
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn undelete_restores_a_deleted_conversation_and_refuses_a_live_one() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, json!({"agents": ["a"], "ttl": "7200s"}))
        .await;
    t.call(Req::new(Method::Undelete).owner(&o).id(&i))
        .await
        .assert_problem(409, "ALREADY_EXISTS");
    let deleted = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    let stale = deleted.body["etag"].as_str().expect("etag").to_owned();
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::Undelete)
                .owner(&o)
                .id(&i)
                .json(json!({"etag": stale})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(sorted(t.counter.take()), ["GetItem", "UpdateItem"]);
    assert_eq!(res.body["deleted"], false);
    assert!(res.body.get("deleteTime").is_none() && res.body.get("purgeTime").is_none());
    let stored = t.stored(&o, &i).await.expect("stored");
    assert_eq!(
        attr_n(&stored, "ttl_at"),
        attr_n(&stored, "expire_at"),
        "TTL goes back to the expiry"
    );
    t.call(Req::new(Method::Undelete).owner(&o).id("never-was"))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(
        Req::new(Method::Undelete)
            .owner(&o)
            .id(&i)
            .json(json!({"colour": 1})),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn undelete_with_a_stale_etag_is_409_and_leaves_it_deleted() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    let res = t
        .call(
            Req::new(Method::Undelete)
                .owner(&o)
                .id(&i)
                .json(json!({"etag": created["etag"]})),
        )
        .await;
    res.assert_problem(409, "ABORTED");
    assert!(attr_n(&t.stored(&o, &i).await.expect("stored"), "delete_time").is_some());
}

// ---------------------------------------------------------------- complete

#[tokio::test]
async fn complete_sets_completed_and_end_time_and_is_idempotent() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    t.counter.take();
    let res = t.call(Req::new(Method::Complete).owner(&o).id(&i)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(sorted(t.counter.take()), ["GetItem", "UpdateItem"]);
    assert_eq!(res.body["lifecycleState"], "COMPLETED");
    assert!(res.body["endTime"].is_string());
    assert_eq!(res.body["can"]["appendMessage"], false);
    let again = t.call(Req::new(Method::Complete).owner(&o).id(&i)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, res.body, "unchanged");
}

#[tokio::test]
async fn complete_of_a_deleted_or_missing_conversation_is_404_and_a_stale_etag_409() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    t.call(
        Req::new(Method::Update)
            .owner(&o)
            .id(&i)
            .json(json!({"displayName": "x"})),
    )
    .await;
    t.call(
        Req::new(Method::Complete)
            .owner(&o)
            .id(&i)
            .json(json!({"etag": created["etag"]})),
    )
    .await
    .assert_problem(409, "ABORTED");
    assert_eq!(
        t.call(Req::new(Method::Get).owner(&o).id(&i)).await.body["lifecycleState"],
        "IN_PROGRESS"
    );
    t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    t.call(Req::new(Method::Complete).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.call(Req::new(Method::Complete).owner(&o).id("never-was"))
        .await
        .assert_problem(404, "NOT_FOUND");
}

// ---------------------------------------------------------------- messages

#[tokio::test]
async fn append_assigns_the_next_order_and_moves_the_conversation() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    t.counter.take();
    let res = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": "hello", "metadata": {"lang": "en"}})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(t.counter.take(), ["GetItem", "TransactWriteItems"]);
    assert_eq!(res.body["name"], format!("conversations/{i}/messages/1"));
    assert_eq!(res.body["order"], 1);
    assert_eq!(res.body["type"], "USER");
    assert_eq!(res.body["content"], "hello");
    assert_eq!(res.body["metadata"], json!({"lang": "en"}));
    let second = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "AGENT", "content": "hi"})),
        )
        .await;
    assert_eq!(second.body["order"], 2);
    let got = t.call(Req::new(Method::Get).owner(&o).id(&i)).await;
    assert_eq!(got.body["messageCount"], 2);
    assert_ne!(got.body["etag"], created["etag"]);
    assert!(got.body["lastUsedTime"].as_str() > created["lastUsedTime"].as_str());
    assert_eq!(got.body["lastUsedTime"], got.body["updateTime"]);
}

#[tokio::test]
async fn append_validates_the_message_and_writes_nothing_when_it_fails() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    let res = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "ROBOT"})),
        )
        .await;
    res.assert_problem(422, "INVALID_ARGUMENT");
    assert_eq!(res.body["errors"].as_array().map(Vec::len), Some(2));
    t.call(
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .json(json!({"type": "USER", "content": "x", "extra": 1})),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    assert_eq!(
        t.collection(&o, &i).await.len(),
        2,
        "only the conversation item"
    );
}

#[tokio::test]
async fn append_to_a_completed_conversation_is_400_failed_precondition() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    t.call(Req::new(Method::Complete).owner(&o).id(&i)).await;
    let res = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": "late"})),
        )
        .await;
    res.assert_problem(400, "FAILED_PRECONDITION");
    assert_eq!(t.collection(&o, &i).await.len(), 2, "its head and body");
}

#[tokio::test]
async fn append_to_a_deleted_or_missing_conversation_is_404() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    t.append(&o, &i, "x").await.assert_problem(404, "NOT_FOUND");
    t.call(
        Req::new(Method::Append)
            .owner(&o)
            .id("never-was")
            .json(json!({"type": "USER", "content": "x"})),
    )
    .await
    .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn append_honours_the_conversation_etag() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t.create(&o, &i, body()).await;
    let etag = created["etag"].as_str().expect("etag").to_owned();
    let ok = t
        .call(
            Req::new(Method::Append)
                .owner(&o)
                .id(&i)
                .json(json!({"type": "USER", "content": "1", "etag": etag})),
        )
        .await;
    assert_eq!(ok.status, 201);
    t.call(
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .json(json!({"type": "USER", "content": "2", "etag": etag})),
    )
    .await
    .assert_problem(409, "ABORTED");
    t.call(
        Req::new(Method::Append)
            .owner(&o)
            .id(&i)
            .header("if-match", &etag)
            .json(json!({"type": "USER", "content": "2"})),
    )
    .await
    .assert_problem(412, "FAILED_PRECONDITION");
    assert_eq!(
        t.collection(&o, &i).await.len(),
        3,
        "head, body and one message"
    );
}

#[tokio::test]
async fn list_messages_pages_in_ascending_order_with_one_query_per_page_and_a_read_of_the_conversation()
 {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    for n in 1..=5 {
        t.append(&o, &i, format!("m{n}")).await;
    }
    t.counter.take();
    let mut orders = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = Req::new(Method::ListMessages)
            .owner(&o)
            .id(&i)
            .query("pageSize", "2");
        if let Some(tk) = &token {
            req = req.query("pageToken", tk);
        }
        let res = t.call(req).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let mut sent = t.counter.take();
        sent.sort();
        // Every page: the conversation's GetItem, then one Query of the range it holds.
        assert_eq!(sent, ["GetItem", "Query"], "page {pages}");
        pages += 1;
        for m in res.body["messages"].as_array().expect("messages") {
            orders.push(m["order"].as_u64().expect("order"));
            assert_eq!(m["content"], format!("m{}", m["order"]));
        }
        token = res.body["nextPageToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(orders, [1, 2, 3, 4, 5]);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn list_messages_of_a_missing_deleted_or_foreign_conversation_is_404() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
    t.create(&o, &i, body()).await;
    let empty = t
        .call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await;
    assert_eq!(empty.body, json!({"messages": []}));
    t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    t.call(Req::new(Method::ListMessages).owner(&o).id(&i))
        .await
        .assert_problem(404, "NOT_FOUND");
}

/// The token of the second page of a conversation's messages (one per page).
async fn second_page_token(t: &TestApp, o: &str, i: &str) -> String {
    for n in 0..3 {
        assert_eq!(t.append(o, i, format!("m{n}")).await.status, 201);
    }
    let first = t
        .call(
            Req::new(Method::ListMessages)
                .owner(o)
                .id(i)
                .query("pageSize", "1"),
        )
        .await;
    assert_eq!(first.body["messages"][0]["content"], "m0");
    first.body["nextPageToken"]
        .as_str()
        .expect("a next page")
        .to_owned()
}

/// The second page of a conversation's messages, one per page.
fn next_page(o: &str, i: &str, token: &str) -> Req {
    Req::new(Method::ListMessages)
        .owner(o)
        .id(i)
        .query("pageSize", "1")
        .query("pageToken", token)
}

#[tokio::test]
async fn a_later_page_of_messages_is_one_query_and_one_read_of_the_conversation() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    let token = second_page_token(&t, &o, &i).await;
    t.counter.take();
    let page = t.call(next_page(&o, &i, &token)).await;
    assert_eq!(page.body["messages"][0]["content"], "m1");
    let mut sent = t.counter.take();
    sent.sort();
    assert_eq!(sent, ["GetItem", "Query"]);
}

#[tokio::test]
async fn a_later_page_of_messages_is_404_once_the_conversation_is_soft_deleted() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    let token = second_page_token(&t, &o, &i).await;
    let deleted = t.call(Req::new(Method::Delete).owner(&o).id(&i)).await;
    assert_eq!(deleted.status, 200);
    t.call(next_page(&o, &i, &token))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_later_page_of_messages_is_404_once_the_conversation_expired() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let created = t
        .create(&o, &i, json!({"agents": ["a"], "ttl": "3s"}))
        .await;
    let token = second_page_token(&t, &o, &i).await;
    let expire =
        Timestamp::parse(created["expireTime"].as_str().expect("expireTime")).expect("valid");
    let left = expire.micros() - Timestamp::now().micros() + 20_000;
    tokio::time::sleep(std::time::Duration::from_micros(
        u64::try_from(left.max(0)).expect("positive"),
    ))
    .await;
    t.call(next_page(&o, &i, &token))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_later_page_of_messages_is_400_after_a_purge_and_a_create_under_the_same_id() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    let token = second_page_token(&t, &o, &i).await;
    // What DynamoDB's TTL does at the expiry: the conversation item goes.
    t.raw()
        .delete_item()
        .table_name(&t.table)
        .key("pk", AttributeValue::S(format!("CONV#{o}#{i}")))
        .key("sk", AttributeValue::S("C".into()))
        .send()
        .await
        .expect("TTL's delete");
    t.create(&o, &i, body()).await;
    assert_eq!(t.append(&o, &i, "new").await.status, 201);
    // The token is the earlier conversation's, not one of this conversation (revision 3: 400).
    let res = t.call(next_page(&o, &i, &token)).await;
    res.assert_problem(400, "INVALID_ARGUMENT");
    assert!(
        res.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("earlier conversation")),
        "{}",
        res.body
    );
}

#[tokio::test]
async fn a_message_page_token_is_bound_to_its_conversation() {
    let t = TestApp::new().await;
    let (o, a, b) = (owner(), id(), id());
    t.create(&o, &a, body()).await;
    t.create(&o, &b, body()).await;
    for _ in 0..3 {
        t.append(&o, &a, "x").await;
    }
    let page = t
        .call(
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&a)
                .query("pageSize", "1"),
        )
        .await;
    let token = page.body["nextPageToken"].as_str().expect("token");
    t.call(
        Req::new(Method::ListMessages)
            .owner(&o)
            .id(&b)
            .query("pageToken", token),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    t.call(
        Req::new(Method::ListMessages)
            .owner(&o)
            .id(&a)
            .query("pageToken", "tampered"),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    t.call(
        Req::new(Method::ListMessages)
            .owner(&o)
            .id(&a)
            .query("pageSize", "-1"),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
}

// ---------------------------------------------------------------- list

#[tokio::test]
async fn list_pages_through_the_callers_conversations_newest_first() {
    let t = TestApp::new().await;
    let o = owner();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let i = id();
        t.create(&o, &i, body()).await;
        ids.push(format!("conversations/{i}"));
    }
    t.create(&owner(), &id(), body()).await;
    t.counter.take();
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = Req::new(Method::List).owner(&o).query("pageSize", "2");
        if let Some(tk) = &token {
            req = req.query("pageToken", tk);
        }
        let res = t.call(req).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let page = res.body["conversations"].as_array().expect("conversations");
        assert!(page.len() <= 2);
        names.extend(
            page.iter()
                .map(|c| c["name"].as_str().expect("name").to_owned()),
        );
        token = res.body["nextPageToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let counted = t.counter.take();
    assert!(counted.iter().all(|op| op == "Query"), "{counted:?}");
    assert_eq!(counted.len(), 3);
    ids.reverse();
    assert_eq!(names, ids);
    let asc = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("orderBy", "createTime asc"),
        )
        .await;
    let first = asc.body["conversations"][0]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    assert_eq!(first, *ids.last().expect("last"));
}

#[tokio::test]
async fn list_hides_deleted_conversations_unless_show_deleted() {
    let t = TestApp::new().await;
    let (o, live, gone) = (owner(), id(), id());
    t.create(&o, &live, body()).await;
    t.create(&o, &gone, body()).await;
    t.call(Req::new(Method::Delete).owner(&o).id(&gone)).await;
    let names = |res: &api_tests::Res| {
        res.body["conversations"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&t.call(Req::new(Method::List).owner(&o)).await),
        [format!("conversations/{live}")]
    );
    let all = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("showDeleted", "true"),
        )
        .await;
    assert_eq!(
        names(&all),
        [
            format!("conversations/{gone}"),
            format!("conversations/{live}")
        ]
    );
}

#[tokio::test]
async fn list_filters_by_every_supported_term() {
    let t = TestApp::new().await;
    let o = owner();
    let a = id();
    t.create(&o, &a, json!({"agents": ["bot", "human"], "category": "billing", "labels": {"team": "x"}, "conversationStage": "HUMAN_ASSIST_STAGE"})).await;
    let b = id();
    t.create(&o, &b, json!({"agents": ["bot"], "category": "sales"}))
        .await;
    t.call(Req::new(Method::Complete).owner(&o).id(&b)).await;
    let names = |res: api_tests::Res| -> Vec<String> {
        assert_eq!(res.status, 200, "{}", res.body);
        res.body["conversations"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| {
                c["name"]
                    .as_str()
                    .expect("name")
                    .trim_start_matches("conversations/")
                    .to_owned()
            })
            .collect()
    };
    let filter = |f: &str| Req::new(Method::List).owner(&o).query("filter", f);
    assert_eq!(
        names(t.call(filter("lifecycleState = COMPLETED")).await),
        vec![b.clone()]
    );
    assert_eq!(
        names(
            t.call(filter("conversationStage = HUMAN_ASSIST_STAGE"))
                .await
        ),
        vec![a.clone()]
    );
    assert_eq!(
        names(t.call(filter("category = \"billing\"")).await),
        vec![a.clone()]
    );
    assert_eq!(
        names(t.call(filter("labels.team = \"x\"")).await),
        vec![a.clone()]
    );
    assert_eq!(
        names(t.call(filter("agents:\"human\"")).await),
        vec![a.clone()]
    );
    assert_eq!(
        names(
            t.call(filter("agents:\"bot\" AND category = \"sales\""))
                .await
        ),
        vec![b.clone()]
    );
    let created_b = t.call(Req::new(Method::Get).owner(&o).id(&b)).await.body["createTime"]
        .as_str()
        .expect("time")
        .to_owned();
    assert_eq!(
        names(
            t.call(filter(&format!("createTime >= \"{created_b}\"")))
                .await
        ),
        vec![b.clone()]
    );
    assert_eq!(
        names(
            t.call(filter(&format!("createTime < \"{created_b}\"")))
                .await
        ),
        vec![a.clone()]
    );
    assert_eq!(
        names(
            t.call(filter(&format!("createTime > \"{created_b}\"")))
                .await
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            t.call(filter(&format!(
                "createTime <= \"{created_b}\" AND createTime > \"2000-01-01T00:00:00Z\""
            )))
            .await
        ),
        [b.clone(), a.clone()]
    );
}

#[tokio::test]
async fn list_rejects_bad_parameters_with_400() {
    let t = TestApp::new().await;
    let o = owner();
    t.create(&o, &id(), body()).await;
    let page = t
        .call(Req::new(Method::List).owner(&o).query("pageSize", "1"))
        .await;
    let cases = [
        ("pageSize", "-1"),
        ("pageSize", "ten"),
        ("orderBy", "displayName"),
        ("orderBy", ""),
        ("orderBy", "createTime  desc"),
        ("filter", "owner = \"x\""),
        ("filter", "category = \"x\" OR category = \"y\""),
        ("pageToken", "not-a-token"),
        ("showDeleted", "maybe"),
        ("fields", "nope"),
        ("unknown", "1"),
    ];
    for (k, v) in cases {
        t.call(Req::new(Method::List).owner(&o).query(k, v))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
    }
    assert!(
        page.body.get("nextPageToken").is_none(),
        "one conversation fits a page of one: no token"
    );
}

#[tokio::test]
async fn a_page_token_reused_with_another_filter_or_order_is_400() {
    let t = TestApp::new().await;
    let o = owner();
    for _ in 0..3 {
        t.create(&o, &id(), body()).await;
    }
    let page = t
        .call(Req::new(Method::List).owner(&o).query("pageSize", "1"))
        .await;
    let token = page.body["nextPageToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let base = || {
        Req::new(Method::List)
            .owner(&o)
            .query("pageSize", "1")
            .query("pageToken", &token)
    };
    assert_eq!(t.call(base()).await.status, 200);
    t.call(base().query("orderBy", "createTime asc"))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    t.call(base().query("filter", "category = \"x\""))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    t.call(base().query("showDeleted", "true"))
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
}

#[tokio::test]
async fn page_sizes_above_1000_are_cut_and_fields_apply_to_each_item() {
    let t = TestApp::new().await;
    let o = owner();
    t.create(&o, &id(), body()).await;
    let res = t
        .call(
            Req::new(Method::List)
                .owner(&o)
                .query("pageSize", "5000")
                .query("fields", "name"),
        )
        .await;
    assert_eq!(res.status, 200);
    let item = &res.body["conversations"][0];
    assert_eq!(
        item.as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["name".to_owned()])
    );
}

#[tokio::test]
async fn if_match_tags_may_hold_commas() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let etag = t.create(&o, &i, body()).await["etag"]
        .as_str()
        .expect("etag")
        .to_owned();
    let stale = t
        .call(
            Req::new(Method::Complete)
                .owner(&o)
                .id(&i)
                .header("if-match", "\"a,b\""),
        )
        .await;
    stale.assert_problem(412, "FAILED_PRECONDITION");
    let listed = t
        .call(
            Req::new(Method::Complete)
                .owner(&o)
                .id(&i)
                .header("if-match", &format!("\"x,y\", {etag}")),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
}

#[tokio::test]
async fn a_body_that_is_not_utf_8_is_400() {
    let t = TestApp::new().await;
    let res = t
        .call(
            Req::new(Method::Create)
                .owner(&owner())
                .header("content-type", "application/json")
                .raw(vec![0xff, 0xfe]),
        )
        .await;
    res.assert_problem(400, "INVALID_ARGUMENT");
}

// ---------------------------------------------------------------- routing

#[tokio::test]
async fn a_method_a_path_does_not_serve_is_405_with_allow_and_touches_nothing() {
    let t = TestApp::new().await;
    let cases = [
        ("PUT", "/v1/conversations", "GET, POST"),
        ("TRACE", "/v1/conversations/abc", "GET, PATCH, DELETE"),
        ("POST", "/v1/conversations/abc", "GET, PATCH, DELETE"),
        ("GET", "/v1/conversations/abc/complete", "POST"),
        ("DELETE", "/v1/conversations/abc/messages", "GET, POST"),
        ("GET", "/v1/conversations/abc/messages/batch", "POST"),
        (
            "POST",
            "/v1/conversations/abc/messages/1",
            "GET, PATCH, DELETE",
        ),
        ("GET", "/v1/conversations/abc/messages/clear", "POST"),
        ("DELETE", "/v1/conversations/abc/purge", "POST"),
    ];
    for (method, path, allow) in cases {
        let res = t
            .call(Req::new(Method::Unserved(method, path)).owner(&owner()))
            .await;
        res.assert_problem(405, "METHOD_NOT_ALLOWED");
        assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(res.body["title"], "Method Not Allowed");
    }
    assert!(t.counter.take().is_empty());
}

#[tokio::test]
async fn a_function_handed_a_path_it_does_not_serve_answers_405() {
    let t = TestApp::new().await;
    // API Gateway may route GET …/messages/batch to get message ({order} matches "batch"),
    // PATCH …/messages/batch to update message and DELETE …/messages/clear to delete message:
    // each answers as the fallback would.
    for method in [
        Method::GetMessage,
        Method::UpdateMessage,
        Method::DeleteMessage,
    ] {
        for literal in ["batch", "clear"] {
            let res = t
                .call(Req::new(method).owner(&owner()).id("abc").order(literal))
                .await;
            res.assert_problem(405, "METHOD_NOT_ALLOWED");
            assert_eq!(res.header("allow"), Some("POST"), "{method:?} {literal}");
        }
    }
    assert!(t.counter.take().is_empty());
}

#[tokio::test]
async fn a_path_outside_the_api_is_404_behind_a_stage_too() {
    let t = TestApp::new().await;
    for path in ["/", "/v2/conversations", "/v1/conversations/a/b/c"] {
        let res = t
            .call(Req::new(Method::Unserved("GET", path)).owner(&owner()))
            .await;
        res.assert_problem(404, "NOT_FOUND");
        assert_eq!(res.header("allow"), None);
    }
    let staged = json!({"stage": "prod", "http": {"method": "PUT", "path": "/prod/v1/conversations", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}, "timeEpoch": 0});
    let res = t
        .call(
            Req::new(Method::Unserved("PUT", "/v1/conversations"))
                .path_prefix("/prod")
                .context(staged)
                .owner(&owner()),
        )
        .await;
    res.assert_problem(405, "METHOD_NOT_ALLOWED");
    assert!(t.counter.take().is_empty());
}

#[tokio::test]
async fn behind_a_named_stage_location_keeps_the_stage_prefix() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    let staged = json!({"stage": "prod", "http": {"method": "POST", "path": "/prod/v1/conversations", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"}, "timeEpoch": 0});
    let res = t
        .call(
            Req::new(Method::Create)
                .path_prefix("/prod")
                .context(staged)
                .owner(&o)
                .query("conversationId", &i)
                .json(body()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(
        res.header("location"),
        Some(format!("/prod/v1/conversations/{i}").as_str())
    );
    assert_eq!(res.body["name"], format!("conversations/{i}"));
}

/// Follows `nextPageToken` from the first page to the last, checking that each page is a 200 of
/// at most 2 MiB (and a little for the envelope); returns the `key` items of each page.
async fn every_page(t: &TestApp, key: &str, request: impl Fn(&str) -> Req) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let res = t.call(request(&token)).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let rendered = res.body.to_string().len();
        assert!(
            rendered <= 2 * 1024 * 1024 + 1024,
            "page of {rendered} bytes"
        );
        pages.push(res.body[key].as_array().expect("items").clone());
        match res.body["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn a_message_page_stops_at_2_mib_and_the_next_page_goes_on_from_there() {
    let t = TestApp::new().await;
    let (o, i) = (owner(), id());
    t.create(&o, &i, body()).await;
    // Each message renders to about 240 kB (a control character is six bytes in JSON) but is
    // stored in 40 kB: all twelve come back from one Query, far over the page budget.
    let content = "\u{1}".repeat(40_000);
    for _ in 0..12 {
        let res = t
            .call(
                Req::new(Method::Append)
                    .owner(&o)
                    .id(&i)
                    .json(json!({"type": "USER", "content": content})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
    }
    let pages = every_page(&t, "messages", |token| {
        Req::new(Method::ListMessages)
            .owner(&o)
            .id(&i)
            .query("pageSize", "1000")
            .query("pageToken", token)
    })
    .await;
    let orders: Vec<i64> = pages
        .iter()
        .flatten()
        .map(|m| m["order"].as_i64().expect("order"))
        .collect();
    assert_eq!(orders, (1..=12).collect::<Vec<_>>());
    assert_eq!(
        pages.len(),
        2,
        "8 messages fit in the first page, 4 in the second"
    );
}

#[tokio::test]
async fn a_conversation_page_stops_at_2_mib_and_the_next_page_goes_on_from_there() {
    let t = TestApp::new().await;
    let o = owner();
    // 64 labels of 63 control characters: about 25 kB rendered each, under 5 kB stored.
    let labels: serde_json::Map<String, Value> = (0..64)
        .map(|n| (format!("k{n}"), Value::from("\u{1}".repeat(63))))
        .collect();
    for _ in 0..100 {
        t.create(&o, &id(), json!({"agents": ["a"], "labels": labels}))
            .await;
    }
    let pages = every_page(&t, "conversations", |token| {
        Req::new(Method::List)
            .owner(&o)
            .query("pageSize", "1000")
            .query("pageToken", token)
    })
    .await;
    let mut names = std::collections::BTreeSet::new();
    for c in pages.iter().flatten() {
        assert!(
            names.insert(c["name"].to_string()),
            "listed twice: {}",
            c["name"]
        );
    }
    let pages: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(names.len(), 100);
    assert!(pages.len() >= 2 && pages[0] < 100, "pages: {pages:?}");
}
