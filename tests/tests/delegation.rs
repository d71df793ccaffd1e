//! Acting for end users (delegation): a caller whose token grants the delegation scope sends
//! `X-On-Behalf-Of: <user>` and owns, as the pair (caller, user), everything it then does — in
//! every method, list, index query and page token, with the pair in the partition and index keys.

use api_tests::{Method, Req, Res, TestApp, attr_s, id, owner};
use aws_sdk_dynamodb::types::AttributeValue;
use conversations::AuthMode;
use serde_json::{Value, json};

const SCOPE: &str = "conversations/act-as";

fn body() -> Value {
    json!({"agents": ["agent-1"], "displayName": "support"})
}

/// An HTTP API (payload 2.0) request context with these JWT claims and `scopes` list.
fn v2(claims: Value, scopes: Value) -> Value {
    json!({"http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
        "authorizer": {"jwt": {"claims": claims, "scopes": scopes}}, "timeEpoch": 0})
}

/// A REST API (payload 1.0) request context with these authorizer claims.
fn v1(claims: Value) -> Value {
    json!({"httpMethod": "GET", "identity": {}, "authorizer": {"claims": claims}, "requestTimeEpoch": 0})
}

/// A JWT caller `sub` granting `scope` (the claim as OAuth writes it: a space-separated string).
fn jwt(sub: &str, scope: &str) -> Value {
    v2(json!({"sub": sub, "scope": scope}), Value::Null)
}

/// A create of `conversation`, the caller still to be set.
fn create_req(conversation: &str) -> Req {
    Req::new(Method::Create)
        .query("conversationId", conversation)
        .json(body())
}

fn create_as(context: Value, user: Option<&str>, conversation: &str) -> Req {
    let req = create_req(conversation).context(context);
    match user {
        Some(user) => req.on_behalf_of(user),
        None => req,
    }
}

/// Who calls, in local runs: `X-Owner-Id`, and `X-On-Behalf-Of` when acting for a user.
#[derive(Debug, Clone, Copy)]
struct As<'a> {
    caller: &'a str,
    user: Option<&'a str>,
}

impl As<'_> {
    fn on(self, req: Req) -> Req {
        let req = req.owner(self.caller);
        match self.user {
            Some(user) => req.on_behalf_of(user),
            None => req,
        }
    }

    /// The owner key (unescaped: header callers hold no `/` or `%`).
    fn key(self) -> String {
        match self.user {
            Some(user) => format!("{}/{user}", self.caller),
            None => self.caller.to_owned(),
        }
    }
}

// ------------------------------------------------------------------ the scope (JWT)

#[tokio::test]
async fn a_caller_granted_the_scope_acts_for_a_user_and_the_pair_owns_what_it_creates() {
    let t = TestApp::with_auth(AuthMode::Jwt).await;
    let (svc, i) = (owner(), id());
    let res = t
        .call(create_as(
            jwt(&svc, &format!("openid {SCOPE}")),
            Some("alice"),
            &i,
        ))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["owner"], format!("{svc}/alice"));
    // Stored under the pair's keys, with the caller and the user kept apart.
    let stored = t
        .stored(&format!("{svc}/alice"), &i)
        .await
        .expect("stored under the pair");
    assert_eq!(attr_s(&stored, "owner"), Some(svc.as_str()));
    assert_eq!(attr_s(&stored, "on_behalf_of"), Some("alice"));
    assert_eq!(
        attr_s(&stored, "gsi1pk"),
        Some(format!("{svc}/alice").as_str())
    );
    assert_eq!(
        attr_s(&stored, "gsi2pk"),
        Some(format!("{svc}/alice").as_str())
    );
    assert!(
        t.stored(&svc, &i).await.is_none(),
        "nothing under the caller"
    );
    // Read back by the pair; the caller alone does not see it.
    let get = |user: Option<&'static str>| {
        let req = Req::new(Method::Get).id(&i).context(jwt(&svc, SCOPE));
        match user {
            Some(u) => req.on_behalf_of(u),
            None => req,
        }
    };
    let read = t.call(get(Some("alice"))).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body, res.body);
    t.call(get(None)).await.assert_problem(404, "NOT_FOUND");
    t.call(get(Some("bob")))
        .await
        .assert_problem(404, "NOT_FOUND");
}

#[tokio::test]
async fn a_jwt_sub_holding_a_slash_is_not_the_pair_it_reads_like() {
    let t = TestApp::with_auth(AuthMode::Jwt).await;
    let (svc, i) = (owner(), id());
    let slashed = format!("{svc}/alice");
    // The service acting for alice, and a caller whose own sub is "<svc>/alice".
    let pair = || jwt(&svc, SCOPE);
    let lookalike = || jwt(&slashed, "");
    let of_pair = t.call(create_as(pair(), Some("alice"), &i)).await;
    assert_eq!(of_pair.status, 201, "{}", of_pair.body);
    for req in [
        Req::new(Method::Get).id(&i),
        Req::new(Method::Delete).id(&i),
        Req::new(Method::ListMessages).id(&i),
    ] {
        t.call(req.context(lookalike()))
            .await
            .assert_problem(404, "NOT_FOUND");
    }
    // The same id is free for it: another owner, another key.
    let mut body = body();
    body["displayName"] = json!("the lookalike's");
    let of_lookalike = t
        .call(
            Req::new(Method::Create)
                .query("conversationId", &i)
                .json(body)
                .context(lookalike()),
        )
        .await;
    assert_eq!(of_lookalike.status, 201, "{}", of_lookalike.body);
    assert_eq!(of_lookalike.body["owner"], slashed);
    // Each reads its own; the pair's key is `<sub>/<user>`, the caller's `/` is escaped.
    let got = t
        .call(
            Req::new(Method::Get)
                .id(&i)
                .context(pair())
                .on_behalf_of("alice"),
        )
        .await;
    assert_eq!(got.body["displayName"], of_pair.body["displayName"]);
    let got = t
        .call(Req::new(Method::Get).id(&i).context(lookalike()))
        .await;
    assert_eq!(got.body["displayName"], "the lookalike's");
    assert!(t.stored(&format!("{svc}/alice"), &i).await.is_some());
    assert!(t.stored(&format!("{svc}%2Falice"), &i).await.is_some());
    let listed = t.call(Req::new(Method::List).context(lookalike())).await;
    assert_eq!(listed_ids(&listed), std::slice::from_ref(&i));
    let listed = t
        .call(Req::new(Method::List).context(pair()).on_behalf_of("alice"))
        .await;
    assert_eq!(listed_ids(&listed), [i]);
}

#[tokio::test]
async fn x_on_behalf_of_without_the_scope_is_403_permission_denied_and_writes_nothing() {
    let t = TestApp::with_auth(AuthMode::Jwt).await;
    let svc = owner();
    let contexts = [
        v2(json!({"sub": svc}), Value::Null),
        jwt(&svc, ""),
        jwt(&svc, "openid conversations/read"),
        jwt(&svc, "conversations/act-as-admin"),
        jwt(&svc, "Conversations/act-as"),
        jwt(&svc, "conversations/act-as.x conversations"),
        v2(json!({"sub": svc, "scp": SCOPE}), json!([])),
        v1(json!({"sub": svc})),
        v1(json!({"sub": svc, "scope": "openid"})),
        v1(json!({"sub": svc, "scope": ["openid", "conversations/act"]})),
        // Lookalikes: one scope that holds the delegation scope's text is not that scope
        // (RFC 6749: a string claim is space-separated; only a JSON list is a list).
        jwt(&svc, &format!("x,{SCOPE}")),
        jwt(&svc, &format!("\"{SCOPE}\"")),
        jwt(&svc, &format!("openid,{SCOPE},profile")),
        jwt(&svc, &format!("[\"{SCOPE}\"]")),
        jwt(&svc, &format!("[x,{SCOPE}]")),
        jwt(&svc, &format!("openid\t{SCOPE}")),
        v1(json!({"sub": svc, "scope": format!("x,{SCOPE}")})),
        v1(json!({"sub": svc, "scope": format!("\"{SCOPE}\"")})),
        v1(json!({"sub": svc, "scope": format!("[{SCOPE}]")})),
        v1(json!({"sub": svc, "scope": [format!("x,{SCOPE}")]})),
        v1(json!({"sub": svc, "scope": [format!("\"{SCOPE}\"")]})),
        v1(json!({"sub": svc, "scope": [format!("openid {SCOPE}")]})),
    ];
    for context in contexts {
        let i = id();
        let res = t.call(create_as(context.clone(), Some("alice"), &i)).await;
        res.assert_problem(403, "PERMISSION_DENIED");
        assert!(
            res.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(SCOPE)),
            "{}",
            res.body
        );
        assert!(t.stored(&format!("{svc}/alice"), &i).await.is_none());
        assert!(t.stored(&svc, &i).await.is_none());
        // The rights are checked before the value: a malformed user is 403 too.
        t.call(create_as(context.clone(), Some("a/b"), &i))
            .await
            .assert_problem(403, "PERMISSION_DENIED");
        // Every method refuses it the same way, before any DynamoDB request.
        t.counter.take();
        for method in [
            Method::Get,
            Method::List,
            Method::Delete,
            Method::ListMessages,
        ] {
            let res = t
                .call(
                    Req::new(method)
                        .id(&i)
                        .context(context.clone())
                        .on_behalf_of("alice"),
                )
                .await;
            res.assert_problem(403, "PERMISSION_DENIED");
        }
        assert_eq!(t.counter.take(), Vec::<String>::new());
        // Without the header the same caller acts for itself.
        let own = t.call(create_as(context, None, &i)).await;
        assert_eq!(own.status, 201, "{}", own.body);
        assert_eq!(own.body["owner"], svc);
    }
}

#[tokio::test]
async fn the_scope_is_read_from_a_string_a_rendered_list_a_json_list_and_the_scopes_list() {
    let t = TestApp::with_auth(AuthMode::Jwt).await;
    let svc = owner();
    let contexts = [
        jwt(&svc, SCOPE),
        jwt(&svc, &format!("  openid   {SCOPE} profile ")),
        // An HTTP API renders a list claim as text.
        v2(
            json!({"sub": svc, "scope": format!("[openid {SCOPE}]")}),
            Value::Null,
        ),
        // The HTTP API's own list of the token's scopes.
        v2(json!({"sub": svc}), json!(["openid", SCOPE])),
        // A REST API passes claims as JSON: a string or a list.
        v1(json!({"sub": svc, "scope": format!("email {SCOPE}")})),
        v1(json!({"sub": svc, "scope": ["email", SCOPE]})),
    ];
    for context in contexts {
        let i = id();
        let res = t.call(create_as(context.clone(), Some("alice"), &i)).await;
        assert_eq!(res.status, 201, "{context}: {}", res.body);
        assert_eq!(res.body["owner"], format!("{svc}/alice"));
    }
}

#[tokio::test]
async fn the_delegation_scope_is_the_configured_one() {
    let t = TestApp::with_delegation_scope("https://api.example.com/act").await;
    let svc = owner();
    t.call(create_as(jwt(&svc, SCOPE), Some("alice"), &id()))
        .await
        .assert_problem(403, "PERMISSION_DENIED");
    let res = t
        .call(create_as(
            jwt(&svc, "https://api.example.com/act"),
            Some("alice"),
            &id(),
        ))
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
}

#[tokio::test]
async fn a_malformed_x_on_behalf_of_is_400_with_the_scope_and_in_local_runs() {
    let jwt_app = TestApp::with_auth(AuthMode::Jwt).await;
    let local = TestApp::new().await;
    let svc = owner();
    let long = "u".repeat(129);
    for bad in ["", " ", "a/b", "a b", "a%2Fb", "a#b", "a,b", long.as_str()] {
        let i = id();
        jwt_app
            .call(create_as(jwt(&svc, SCOPE), Some(bad), &i))
            .await
            .assert_problem(400, "INVALID_ARGUMENT");
        let res = local
            .call(
                Req::new(Method::Create)
                    .owner(&svc)
                    .on_behalf_of(bad)
                    .query("conversationId", &i)
                    .json(body()),
            )
            .await;
        res.assert_problem(400, "INVALID_ARGUMENT");
        assert!(
            res.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("X-On-Behalf-Of")),
            "{}",
            res.body
        );
        assert!(local.collection(&svc, &i).await.is_empty());
    }
    // Two users at once is malformed too.
    local
        .call(
            Req::new(Method::List)
                .owner(&svc)
                .on_behalf_of("alice")
                .on_behalf_of("bob"),
        )
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
    let longest = "u".repeat(128);
    let res = local
        .call(
            Req::new(Method::Create)
                .owner(&svc)
                .on_behalf_of(&longest)
                .json(body()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["owner"], format!("{svc}/{longest}"));
}

#[tokio::test]
async fn without_a_caller_x_on_behalf_of_is_401() {
    let local = TestApp::new().await;
    local
        .call(Req::new(Method::List).on_behalf_of("alice"))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    let jwt_app = TestApp::with_auth(AuthMode::Jwt).await;
    jwt_app
        .call(Req::new(Method::List).on_behalf_of("alice"))
        .await
        .assert_problem(401, "UNAUTHENTICATED");
    jwt_app
        .call(
            Req::new(Method::List)
                .context(v2(json!({"scope": SCOPE}), Value::Null))
                .on_behalf_of("alice"),
        )
        .await
        .assert_problem(401, "UNAUTHENTICATED");
}

// ------------------------------------------------------------------ isolation (local runs)

/// Every single-resource method as `who` on conversation `i` (message 1 exists).
async fn every_method(t: &TestApp, who: As<'_>, i: &str) -> Vec<(&'static str, Res)> {
    let call = |req: Req| t.call(who.on(req));
    vec![
        ("get", call(Req::new(Method::Get).id(i)).await),
        (
            "get FULL",
            call(Req::new(Method::Get).id(i).query("view", "FULL")).await,
        ),
        (
            "update",
            call(
                Req::new(Method::Update)
                    .id(i)
                    .query("updateMask", "displayName")
                    .json(json!({"displayName": "taken over"})),
            )
            .await,
        ),
        (
            "append",
            call(
                Req::new(Method::Append)
                    .id(i)
                    .json(json!({"type": "USER", "content": "hi"})),
            )
            .await,
        ),
        (
            "batch",
            call(
                Req::new(Method::BatchAppend)
                    .id(i)
                    .json(json!({"messages": [{"type": "USER", "content": "a"}]})),
            )
            .await,
        ),
        (
            "list messages",
            call(Req::new(Method::ListMessages).id(i)).await,
        ),
        (
            "get message",
            call(Req::new(Method::GetMessage).id(i).order(1)).await,
        ),
        (
            "update message",
            call(
                Req::new(Method::UpdateMessage)
                    .id(i)
                    .order(1)
                    .json(json!({"content": "redacted"})),
            )
            .await,
        ),
        ("complete", call(Req::new(Method::Complete).id(i)).await),
        ("delete", call(Req::new(Method::Delete).id(i)).await),
        ("undelete", call(Req::new(Method::Undelete).id(i)).await),
    ]
}

fn listed_ids(res: &Res) -> Vec<String> {
    res.body["conversations"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|c| c["name"].as_str())
                .map(|n| n.trim_start_matches("conversations/").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_method_serves_the_pair_and_every_other_owner_sees_nothing_of_it() {
    let t = TestApp::new().await;
    let (svc, other, i) = (owner(), owner(), id());
    let alice = As {
        caller: &svc,
        user: Some("alice"),
    };
    let created = t.call(alice.on(create_req(&i))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["owner"], format!("{svc}/alice"));
    let appended = t
        .call(
            alice.on(Req::new(Method::Append)
                .id(&i)
                .json(json!({"type": "USER", "content": "my card is 4111"}))),
        )
        .await;
    assert_eq!(appended.status, 201, "{}", appended.body);
    let before = t.stored(&alice.key(), &i).await.expect("stored");
    let outsiders = [
        As {
            caller: &svc,
            user: None,
        },
        As {
            caller: &svc,
            user: Some("bob"),
        },
        As {
            caller: &other,
            user: Some("alice"),
        },
        As {
            caller: "alice",
            user: None,
        },
    ];
    for who in outsiders {
        for (method, res) in every_method(&t, who, &i).await {
            assert_eq!(
                (res.status, res.body["code"].as_str()),
                (404, Some("NOT_FOUND")),
                "{method} as {who:?}: {}",
                res.body
            );
        }
        let list = t.call(who.on(Req::new(Method::List))).await;
        assert_eq!(list.status, 200);
        assert!(!listed_ids(&list).contains(&i), "{who:?} lists it");
        let by_activity = t
            .call(who.on(Req::new(Method::List).query("orderBy", "lastUsedTime desc")))
            .await;
        assert!(!listed_ids(&by_activity).contains(&i), "{who:?} lists it");
    }
    assert_eq!(
        t.stored(&alice.key(), &i).await.expect("stored"),
        before,
        "no outsider changed anything"
    );
    // The same id is free for each outsider: another owner's conversation, another key.
    for who in outsiders {
        let res = t.call(who.on(create_req(&i))).await;
        assert_eq!(res.status, 201, "{who:?}: {}", res.body);
        assert_eq!(res.body["owner"], who.key());
    }
    // And every method works for the pair itself.
    let results = every_method(&t, alice, &i).await;
    let statuses: Vec<(&str, u16)> = results.iter().map(|(m, r)| (*m, r.status)).collect();
    assert_eq!(
        statuses,
        [
            ("get", 200),
            ("get FULL", 200),
            ("update", 200),
            ("append", 201),
            ("batch", 201),
            ("list messages", 200),
            ("get message", 200),
            ("update message", 200),
            ("complete", 200),
            ("delete", 200),
            ("undelete", 200),
        ],
        "{results:?}"
    );
    for (_, res) in &results {
        if res.body.get("owner").is_some() {
            assert_eq!(res.body["owner"], format!("{svc}/alice"));
        }
    }
    let list = t.call(alice.on(Req::new(Method::List))).await;
    assert_eq!(listed_ids(&list), vec![i]);
}

#[tokio::test]
async fn page_tokens_are_bound_to_the_pair() {
    let t = TestApp::new().await;
    let (svc, other) = (owner(), owner());
    let alice = As {
        caller: &svc,
        user: Some("alice"),
    };
    let first = id();
    for i in [first.clone(), id(), id()] {
        let res = t.call(alice.on(create_req(&i))).await;
        assert_eq!(res.status, 201);
    }
    for _ in 0..3 {
        let res = t
            .call(
                alice.on(Req::new(Method::Append)
                    .id(&first)
                    .json(json!({"type": "USER", "content": "x"}))),
            )
            .await;
        assert_eq!(res.status, 201);
    }
    let page = t
        .call(alice.on(Req::new(Method::List).query("pageSize", "1")))
        .await;
    let token = page.body["nextPageToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let messages = t
        .call(
            alice.on(Req::new(Method::ListMessages)
                .id(&first)
                .query("pageSize", "1")),
        )
        .await;
    let message_token = messages.body["nextPageToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    let outsiders = [
        As {
            caller: &svc,
            user: None,
        },
        As {
            caller: &svc,
            user: Some("bob"),
        },
        As {
            caller: &other,
            user: Some("alice"),
        },
    ];
    for who in outsiders {
        t.call(
            who.on(Req::new(Method::List)
                .query("pageSize", "1")
                .query("pageToken", &token)),
        )
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
        // Another owner's token is a 400 (the contract's rule for tokens), before the
        // conversation — which is not theirs either — is even read.
        t.counter.take();
        t.call(
            who.on(Req::new(Method::ListMessages)
                .id(&first)
                .query("pageSize", "1")
                .query("pageToken", &message_token)),
        )
        .await
        .assert_problem(400, "INVALID_ARGUMENT");
        assert_eq!(t.counter.take(), Vec::<String>::new(), "{who:?}");
    }
    // A caller's own token does not open the pair's pages either.
    let svc_alone = outsiders[0];
    for i in [id(), id()] {
        t.call(svc_alone.on(create_req(&i))).await;
    }
    let own = t
        .call(svc_alone.on(Req::new(Method::List).query("pageSize", "1")))
        .await;
    let own_token = own.body["nextPageToken"].as_str().expect("a token");
    t.call(
        alice.on(Req::new(Method::List)
            .query("pageSize", "1")
            .query("pageToken", own_token)),
    )
    .await
    .assert_problem(400, "INVALID_ARGUMENT");
    let next = t
        .call(
            alice.on(Req::new(Method::List)
                .query("pageSize", "1")
                .query("pageToken", &token)),
        )
        .await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(listed_ids(&next).len(), 1);
}

#[tokio::test]
async fn the_pair_is_part_of_the_partition_and_index_keys_not_a_filter() {
    let t = TestApp::new().await;
    let svc = owner();
    let alice = As {
        caller: &svc,
        user: Some("alice"),
    };
    let bob = As {
        caller: &svc,
        user: Some("bob"),
    };
    let me = As {
        caller: &svc,
        user: None,
    };
    for who in [alice, bob, me] {
        let res = t.call(who.on(create_req(&id()))).await;
        assert_eq!(res.status, 201);
    }
    // A Query of each index partition holds exactly one owner's conversation: nothing is
    // filtered after the read.
    for (index, pk) in [("by-owner", "gsi1pk"), ("by-activity", "gsi2pk")] {
        for who in [alice, bob, me] {
            let out = t
                .raw()
                .query()
                .table_name(&t.table)
                .index_name(index)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk)
                .expression_attribute_values(":pk", AttributeValue::S(who.key()))
                .send()
                .await
                .expect("query the index");
            let items = out.items.unwrap_or_default();
            // by-owner holds the conversation's head and body, by-activity its head.
            let wanted = if index == "by-owner" { 2 } else { 1 };
            assert_eq!(items.len(), wanted, "{index} {who:?}");
            let head = items
                .iter()
                .find(|i| attr_s(i, "sk") == Some("C"))
                .expect("the head");
            assert_eq!(attr_s(head, "on_behalf_of"), who.user);
            assert_eq!(attr_s(head, "owner"), Some(svc.as_str()));
            assert!(
                items.iter().all(
                    |i| attr_s(i, "gsi1pk").or(attr_s(i, "gsi2pk")) == Some(who.key().as_str())
                )
            );
        }
    }
}

#[tokio::test]
async fn an_idempotency_key_of_the_pair_is_its_own() {
    let t = TestApp::new().await;
    let svc = owner();
    let key = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
    let create = |who: As<'_>| {
        who.on(Req::new(Method::Create)
            .query("requestId", key)
            .json(body()))
    };
    let alice = As {
        caller: &svc,
        user: Some("alice"),
    };
    let me = As {
        caller: &svc,
        user: None,
    };
    let a = t.call(create(alice)).await;
    let m = t.call(create(me)).await;
    assert_eq!((a.status, m.status), (201, 201));
    assert_ne!(a.body["name"], m.body["name"]);
    assert_eq!(a.body["owner"], format!("{svc}/alice"));
    assert_eq!(m.body["owner"], svc);
    let again = t.call(create(alice)).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, a.body);
}
