//! The typed client (`client/`, crate `conversations-client`) against the running service, as
//! the end-to-end tests run (`make test`: cargo lambda watch; `make staging-test`: a stage):
//! every method with typed answers, paging streams, typed problems, and retries that land
//! exactly once — through a proxy that loses the service's answers. Revision 3's writes (delete
//! message, clear, purge, a batch with the state its turn changed) are at the end: their answers
//! and errors, and each through a lost answer and a retry racing its first attempt.

use std::time::{Duration, Instant};

use api_tests::api_proxy::{ApiProxy, Fault, Rule, Seen};
use api_tests::http_client::{Caller, Target};
use api_tests::id;
use conversations_client::{
    BatchOptions, ClearOptions, Client, Code, Conversation, ConversationInput, ConversationOrder,
    CreateOptions, DeleteMessageOptions, DeleteOptions, Error, LifecycleState, ListConversations,
    ListMessages, Message, MessageInput, MessagePatch, MessageType, PurgeOptions, Retry, ToolCall,
    UpdateOptions, View,
};
use futures_util::TryStreamExt;
use serde_json::json;
use uuid::Uuid;

fn target() -> Target {
    Target::from_env().expect(
        "neither API_BASE_URL nor STAGING_API_URL is set: run these tests with `make test` or \
         `make staging-test`",
    )
}

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().expect("an object").clone()
}

#[tokio::test]
async fn the_client_drives_every_method_with_typed_answers() {
    let t = target();
    let (alice, bob) = t.two_callers();
    let (client, other) = (alice.client(&t.base), bob.client(&t.base));
    let i = id();

    let mut input = ConversationInput::with_agents(["support-bot"]);
    input.display_name = Some("Billing".into());
    input.labels = Some([("team".to_owned(), "billing".to_owned())].into());
    input.metadata = Some(object(json!({"crm": {"ticket": 42}})));
    let created = client
        .create_conversation(&input, CreateOptions::with_id(&i))
        .await
        .expect("create");
    assert_eq!(created.id(), Some(i.as_str()));
    assert_eq!(created.lifecycle_state, Some(LifecycleState::InProgress));
    assert_eq!(created.message_count, Some(0));
    assert_eq!(created.metadata, input.metadata);
    assert!(created.can.expect("can").append_message);

    let got = client.get_conversation(&i, View::Basic).await.expect("get");
    assert_eq!(got, created);
    assert!(
        other
            .get_conversation(&i, View::Basic)
            .await
            .expect_err("another owner's")
            .is_not_found()
    );

    // An update with If-Match from the value read; the same If-Match again is stale (412).
    let rename = ConversationInput {
        display_name: Some("Billing, escalated".into()),
        ..ConversationInput::default()
    };
    let updated = client
        .update_conversation(
            &i,
            &rename,
            UpdateOptions::if_unchanged(&got, &["displayName"]),
        )
        .await
        .expect("update");
    assert_eq!(updated.display_name.as_deref(), Some("Billing, escalated"));
    assert_ne!(updated.etag, got.etag);
    let stale = client
        .update_conversation(
            &i,
            &rename,
            UpdateOptions::if_unchanged(&got, &["displayName"]),
        )
        .await
        .expect_err("a stale If-Match");
    assert!(stale.is_stale_etag(), "{stale}");
    assert_eq!(stale.problem().expect("a problem").status, 412);

    let hello = client
        .append_message(
            &i,
            &MessageInput::new(MessageType::User, "My bill is wrong"),
            None,
        )
        .await
        .expect("append");
    assert_eq!(hello.order, Some(1));
    let mut asks = MessageInput::new(MessageType::Agent, "");
    asks.tool_calls = Some(vec![ToolCall {
        id: "call-1".into(),
        name: "lookup_invoice".into(),
        arguments: object(json!({"month": "2026-11"})),
    }]);
    let mut answer = MessageInput::new(MessageType::Tool, "{\"total\": 12}");
    answer.tool_call_id = Some("call-1".into());
    let now = client.get_conversation(&i, View::Basic).await.expect("get");
    assert_eq!(now.message_count, Some(1));
    let batch = client
        .batch_append_messages(
            &i,
            &[asks, answer],
            BatchOptions {
                etag: now.etag.clone(),
                ..BatchOptions::default()
            },
        )
        .await
        .expect("batch");
    assert_eq!(
        batch.messages.iter().map(|m| m.order).collect::<Vec<_>>(),
        [Some(2), Some(3)]
    );
    assert_eq!(
        batch.messages[0].tool_calls.as_ref().expect("calls")[0].name,
        "lookup_invoice"
    );

    let second = client.get_message(&i, 2).await.expect("get message");
    assert_eq!(second, batch.messages[0]);
    let redact = MessagePatch {
        content: Some("[redacted]".into()),
        ..MessagePatch::default()
    };
    let edited = client
        .update_message(&i, 1, &redact, Some(&["content"]), hello.etag.as_deref())
        .await
        .expect("update message");
    assert_eq!(edited.content.as_deref(), Some("[redacted]"));
    assert_ne!(edited.etag, hello.etag);

    let full = client.get_conversation(&i, View::Full).await.expect("FULL");
    let contents: Vec<_> = full
        .messages
        .expect("messages")
        .into_iter()
        .map(|m| m.content.unwrap_or_default())
        .collect();
    assert_eq!(contents, ["[redacted]", "", "{\"total\": 12}"]);

    let completed = client
        .complete_conversation(&i, None)
        .await
        .expect("complete");
    assert!(completed.is_completed());
    let refused = client
        .append_message(&i, &MessageInput::new(MessageType::User, "late"), None)
        .await
        .expect_err("append to a completed conversation");
    assert_eq!(refused.code(), Some(&Code::FailedPrecondition));

    let deleted = client
        .delete_conversation(&i, DeleteOptions::default())
        .await
        .expect("delete");
    assert_eq!(deleted.deleted, Some(true));
    assert!(deleted.purge_time.is_some());
    let undeleted = client
        .undelete_conversation(&i, deleted.etag.as_deref())
        .await
        .expect("undelete");
    assert_eq!(undeleted.deleted, Some(false));
    client
        .delete_conversation(
            &i,
            DeleteOptions {
                etag: None,
                allow_missing: true,
            },
        )
        .await
        .expect("clean up");
}

#[tokio::test]
async fn list_streams_follow_page_tokens_to_the_last_page() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let label = format!("s{}", &id()[2..14]);
    let mut made = Vec::new();
    for _ in 0..7 {
        let mut input = ConversationInput::with_agents(["bot"]);
        input.labels = Some([("run".to_owned(), label.clone())].into());
        let c = client
            .create_conversation(&input, CreateOptions::default())
            .await
            .expect("create");
        made.push(c.id().expect("id").to_owned());
    }
    let listed: Vec<_> = client
        .list_conversations(ListConversations {
            filter: Some(format!("labels.run = \"{label}\"")),
            order_by: ConversationOrder::CreateTimeAsc,
            show_deleted: false,
            page_size: Some(2),
        })
        .map_ok(|c| c.id().expect("id").to_owned())
        .try_collect()
        .await
        .expect("list");
    assert_eq!(
        listed, made,
        "every conversation once, in creation order, over 4 pages"
    );

    let i = &made[0];
    let messages: Vec<_> = (1..=25)
        .map(|n| MessageInput::new(MessageType::User, format!("m{n}")))
        .collect();
    client
        .batch_append_messages(i, &messages, BatchOptions::default())
        .await
        .expect("batch");
    let all: Vec<_> = client
        .list_messages(
            i,
            ListMessages {
                page_size: Some(4),
                ..ListMessages::default()
            },
        )
        .map_ok(|m| m.order.expect("order"))
        .try_collect()
        .await
        .expect("messages");
    assert_eq!(all, (1..=25).collect::<Vec<_>>());
    let after: Vec<_> = client
        .list_messages(i, ListMessages::after(22))
        .map_ok(|m| m.content.expect("content"))
        .try_collect()
        .await
        .expect("after");
    assert_eq!(after, ["m23", "m24", "m25"]);
    let last = client
        .list_messages_page(i, &ListMessages::last(2), None)
        .await
        .expect("last");
    assert_eq!(
        last.messages.iter().map(|m| m.order).collect::<Vec<_>>(),
        [Some(25), Some(24)]
    );
    for c in &made {
        client
            .delete_conversation(c, DeleteOptions::default())
            .await
            .expect("clean up");
    }
}

#[tokio::test]
async fn errors_are_typed_problems_with_their_fields_and_request_id() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);

    let missing = client
        .get_conversation(&id(), View::Basic)
        .await
        .expect_err("missing");
    let problem = missing.problem().expect("a problem");
    assert_eq!((problem.status, &problem.code), (404, &Code::NotFound));
    assert!(problem.request_id.is_some());

    let bad = ConversationInput {
        display_name: Some("x".repeat(300)),
        ..ConversationInput::default()
    };
    let invalid = client
        .create_conversation(&bad, CreateOptions::default())
        .await
        .expect_err("no agents, a long name");
    let problem = invalid.problem().expect("a problem");
    assert_eq!(
        (problem.status, &problem.code),
        (422, &Code::InvalidArgument)
    );
    let mut fields: Vec<_> = problem.errors.iter().map(|e| e.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["agents", "displayName"]);

    let i = id();
    let options = || CreateOptions::with_id(&i);
    let input = ConversationInput::with_agents(["bot"]);
    client
        .create_conversation(&input, options())
        .await
        .expect("create");
    let taken = client
        .create_conversation(&input, options())
        .await
        .expect_err("a taken id");
    assert_eq!(taken.code(), Some(&Code::AlreadyExists));

    let filter = client
        .list_conversations(ListConversations {
            filter: Some("color = \"red\"".into()),
            ..ListConversations::default()
        })
        .try_collect::<Vec<_>>()
        .await
        .expect_err("a bad filter");
    assert_eq!(filter.code(), Some(&Code::InvalidArgument));
    client
        .delete_conversation(&i, DeleteOptions::default())
        .await
        .expect("clean up");
}

/// The requests a client sent through the proxy with `method`.
fn sent(proxy: &ApiProxy, method: &str) -> Vec<String> {
    proxy
        .seen()
        .into_iter()
        .filter(|(m, _)| m == method)
        .map(|(_, target)| target)
        .collect()
}

/// The idempotency key of a request: present, and a UUID.
fn key(seen: &Seen) -> Uuid {
    let key = seen
        .request_id()
        .unwrap_or_else(|| panic!("{} {} carries no requestId", seen.method, seen.target));
    Uuid::parse_str(key).unwrap_or_else(|e| panic!("requestId {key:?} is not a UUID: {e}"))
}

/// How long a client of these tests waits for an answer, and how long the proxy holds one (or a
/// request) to make it give up.
const TIMEOUT: Duration = Duration::from_millis(1500);
const PAST_TIMEOUT: Duration = Duration::from_millis(2500);

/// The three ways a first attempt can still be in flight when the client sends it again.
fn racing_faults() -> [Fault; 3] {
    [
        Fault::Close,
        Fault::Hold(PAST_TIMEOUT),
        Fault::Late(PAST_TIMEOUT),
    ]
}

/// A client through `proxy` that gives up on an attempt after [`TIMEOUT`].
fn impatient(caller: &Caller, proxy: &ApiProxy) -> Client {
    caller
        .client_builder(proxy.base())
        .timeout(TIMEOUT)
        .build()
        .expect("client")
}

async fn fresh(client: &Client) -> Conversation {
    client
        .create_conversation(
            &ConversationInput::with_agents(["bot"]),
            CreateOptions::with_id(id()),
        )
        .await
        .expect("create")
}

async fn messages_of(client: &Client, i: &str) -> Vec<Message> {
    client
        .list_messages(i, ListMessages::default())
        .try_collect()
        .await
        .expect("list messages")
}

/// The (order, content) of each message.
fn contents(messages: &[Message]) -> Vec<(u64, String)> {
    messages
        .iter()
        .map(|m| {
            (
                m.order.expect("order"),
                m.content.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn creates_and_appends_whose_answers_are_lost_are_retried_with_their_key_and_land_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = alice.client(proxy.base());

    let i = id();
    proxy.lose_answers("POST", 1);
    let created = client
        .create_conversation(
            &ConversationInput::with_agents(["bot"]),
            CreateOptions::with_id(&i),
        )
        .await
        .expect("the retry answers as the first call would have");
    assert_eq!(created.id(), Some(i.as_str()));

    proxy.lose_answers("POST", 1);
    let appended = client
        .append_message(&i, &MessageInput::new(MessageType::User, "once"), None)
        .await
        .expect("append through a lost answer");
    assert_eq!(appended.order, Some(1));

    proxy.lose_answers("POST", 2);
    let batch: Vec<_> = (0..3)
        .map(|n| MessageInput::new(MessageType::Agent, format!("b{n}")))
        .collect();
    let appended_batch = client
        .batch_append_messages(&i, &batch, BatchOptions::default())
        .await
        .expect("batch through two lost answers");
    assert_eq!(
        appended_batch
            .messages
            .iter()
            .map(|m| m.order)
            .collect::<Vec<_>>(),
        [Some(2), Some(3), Some(4)]
    );

    let stored = direct.get_conversation(&i, View::Basic).await.expect("get");
    assert_eq!(
        stored.message_count,
        Some(4),
        "each write landed exactly once"
    );
    assert_eq!(
        contents(&messages_of(&direct, &i).await),
        [
            (1, "once".to_owned()),
            (2, "b0".to_owned()),
            (3, "b1".to_owned()),
            (4, "b2".to_owned())
        ]
    );
    let posts: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2 + 2 + 3, "{posts:#?}");
    // Every attempt of one call carried the same key, a UUID; each call its own.
    let keys: Vec<Uuid> = posts.iter().map(key).collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[2], keys[3]);
    assert!(keys[4..].iter().all(|k| *k == keys[4]));
    assert!(keys[0] != keys[2] && keys[2] != keys[4] && keys[0] != keys[4]);
    // The service applied the first attempt of each and answered every repeat as it.
    assert!(posts.iter().all(|s| s.status == Some(201)), "{posts:#?}");
    direct
        .delete_conversation(&i, DeleteOptions::default())
        .await
        .expect("clean up");
}

#[tokio::test]
async fn keyed_writes_whose_retry_races_the_first_attempt_land_once_with_one_key() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = impatient(&alice, &proxy);

    for fault in racing_faults() {
        let i = id();
        let mut calls = Vec::new();
        let mut mark = proxy.requests().len();
        let mut attempts = |proxy: &ApiProxy| {
            let all = proxy.requests();
            let these: Vec<Seen> = all[mark..].to_vec();
            mark = all.len();
            these
        };

        proxy.inject(Rule::new("POST", fault));
        let created = client
            .create_conversation(
                &ConversationInput::with_agents(["bot"]),
                CreateOptions::with_id(&i),
            )
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: create: {e}"));
        assert_eq!(created.id(), Some(i.as_str()));
        calls.push(attempts(&proxy));

        proxy.inject(Rule::new("POST", fault));
        let appended = client
            .append_message(&i, &MessageInput::new(MessageType::User, "once"), None)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: append: {e}"));
        assert_eq!(appended.order, Some(1), "{fault:?}");
        calls.push(attempts(&proxy));

        proxy.inject(Rule::new("POST", fault));
        let batch: Vec<_> = (0..3)
            .map(|n| MessageInput::new(MessageType::Agent, format!("b{n}")))
            .collect();
        let appended = client
            .batch_append_messages(&i, &batch, BatchOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: batch: {e}"));
        assert_eq!(
            appended
                .messages
                .iter()
                .map(|m| m.order)
                .collect::<Vec<_>>(),
            [Some(2), Some(3), Some(4)],
            "{fault:?}"
        );
        calls.push(attempts(&proxy));

        // Every attempt has reached the service (a late first attempt too) before the reads.
        proxy.settled().await;
        let mut keys = Vec::new();
        for attempts in &proxy_calls(&proxy, &calls) {
            assert!(attempts.len() >= 2, "{fault:?}: retried: {attempts:#?}");
            assert_eq!(attempts[0].fault, Some(fault));
            let first = key(&attempts[0]);
            assert!(
                attempts.iter().all(|a| key(a) == first),
                "{fault:?}: one key on every attempt: {attempts:#?}"
            );
            assert!(
                attempts.iter().all(|a| a.status == Some(201)),
                "{fault:?}: the service answered every attempt as the first: {attempts:#?}"
            );
            keys.push(first);
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 3, "{fault:?}: a key per call");

        let stored = direct.get_conversation(&i, View::Basic).await.expect("get");
        assert_eq!(stored.message_count, Some(4), "{fault:?}");
        assert_eq!(stored.create_time, created.create_time, "{fault:?}");
        assert_eq!(
            contents(&messages_of(&direct, &i).await),
            [
                (1, "once".to_owned()),
                (2, "b0".to_owned()),
                (3, "b1".to_owned()),
                (4, "b2".to_owned())
            ],
            "{fault:?}: each message once"
        );
        direct
            .delete_conversation(&i, DeleteOptions::default())
            .await
            .expect("clean up");
    }
}

/// The attempts of each call as the service saw them once settled (statuses filled in).
fn proxy_calls(proxy: &ApiProxy, calls: &[Vec<Seen>]) -> Vec<Vec<Seen>> {
    let all = proxy.requests();
    calls
        .iter()
        .map(|attempts| {
            attempts
                .iter()
                .map(|a| {
                    all.iter()
                        .find(|s| s.at == a.at && s.target == a.target)
                        .cloned()
                        .unwrap_or_else(|| a.clone())
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn writes_without_a_key_or_an_etag_are_sent_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = alice.client(proxy.base());
    let created = fresh(&direct).await;
    let i = created.id().expect("id");

    // No etag: the update may have landed, so the client reports the 503 instead of guessing.
    proxy.lose_answers("PATCH", 1);
    let rename = ConversationInput {
        display_name: Some("once".into()),
        ..ConversationInput::default()
    };
    let lost = client
        .update_conversation(i, &rename, UpdateOptions::default())
        .await
        .expect_err("not retried");
    let problem = lost.problem().expect("a problem");
    assert_eq!(problem.code, Code::Unavailable);
    assert_eq!(problem.retry_after, Some(Duration::ZERO));
    assert_eq!(sent(&proxy, "PATCH").len(), 1);
    let stored = direct.get_conversation(i, View::Basic).await.expect("get");
    assert_eq!(
        stored.display_name.as_deref(),
        Some("once"),
        "the write whose answer was lost had landed"
    );
    assert_ne!(stored.etag, created.etag);

    // `If-Match: *` names no version: a repeat would apply again, so it is sent once too.
    proxy.lose_answers("PATCH", 1);
    let lost = client
        .update_conversation(
            i,
            &rename,
            UpdateOptions {
                if_match: Some("*".into()),
                ..UpdateOptions::default()
            },
        )
        .await
        .expect_err("not retried");
    assert_eq!(lost.code(), Some(&Code::Unavailable));
    assert_eq!(sent(&proxy, "PATCH").len(), 2);

    // So are a delete and an undelete without an etag.
    proxy.lose_answers("DELETE", 1);
    let lost = client
        .delete_conversation(i, DeleteOptions::default())
        .await
        .expect_err("not retried");
    assert_eq!(lost.code(), Some(&Code::Unavailable));
    assert_eq!(sent(&proxy, "DELETE").len(), 1);
    let stored = direct.get_conversation(i, View::Basic).await.expect("get");
    assert_eq!(stored.deleted, Some(true));

    // A client with retries off sends even a read once.
    let once = alice
        .client_builder(proxy.base())
        .retry(Retry::none())
        .build()
        .expect("client");
    proxy.lose_answers("GET", 1);
    let failed = once
        .get_conversation(i, View::Basic)
        .await
        .expect_err("no retry");
    assert_eq!(failed.code(), Some(&Code::Unavailable));
    assert_eq!(sent(&proxy, "GET").len(), 1);
}

/// An etag write's call through `proxy`, and what it must have left in the conversation.
struct EtagCase {
    name: &'static str,
    method: &'static str,
    ending: &'static str,
}

const ETAG_WRITES: [EtagCase; 7] = [
    EtagCase {
        name: "update with If-Match (412 on a repeat)",
        method: "PATCH",
        ending: "",
    },
    EtagCase {
        name: "update with a body etag (409 ABORTED on a repeat)",
        method: "PATCH",
        ending: "",
    },
    EtagCase {
        name: "update message with If-Match",
        method: "PATCH",
        ending: "/messages/1",
    },
    EtagCase {
        name: "update message with a body etag",
        method: "PATCH",
        ending: "/messages/1",
    },
    EtagCase {
        name: "complete with an etag",
        method: "POST",
        ending: "/complete",
    },
    EtagCase {
        name: "delete with an etag (404 on a repeat)",
        method: "DELETE",
        ending: "",
    },
    EtagCase {
        name: "undelete with an etag (409 ALREADY_EXISTS on a repeat)",
        method: "POST",
        ending: "/undelete",
    },
];

/// Runs etag write `n` of [`ETAG_WRITES`] on conversation `i` through `client` and checks its
/// answer against what the service stored (read with `direct`).
async fn etag_write(n: usize, client: &Client, direct: &Client, i: &str, tag: &str) {
    let case = &ETAG_WRITES[n];
    let now = direct.get_conversation(i, View::Basic).await.expect("get");
    let etag = now.etag.clone().expect("etag");
    match n {
        0 | 1 => {
            let mut rename = ConversationInput {
                display_name: Some(format!("renamed {tag}")),
                labels: Some([("step".to_owned(), tag.to_owned())].into()),
                ..ConversationInput::default()
            };
            let mut options = UpdateOptions {
                update_mask: Some(vec!["display_name".into(), "labels.step".into()]),
                ..UpdateOptions::default()
            };
            if n == 0 {
                options.if_match = Some(etag.clone());
            } else {
                rename.etag = Some(etag.clone());
            }
            let answered = client
                .update_conversation(i, &rename, options)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let stored = direct.get_conversation(i, View::Basic).await.expect("get");
            assert_eq!(answered, stored, "{}: answers what is stored", case.name);
            assert_eq!(stored.display_name, rename.display_name, "{}", case.name);
            assert_eq!(
                stored.labels.as_ref().and_then(|l| l.get("step")),
                Some(&tag.to_owned())
            );
            assert_ne!(stored.etag.as_deref(), Some(etag.as_str()));
        }
        2 | 3 => {
            let message = direct.get_message(i, 1).await.expect("get message");
            let message_etag = message.etag.clone().expect("etag");
            let mut patch = MessagePatch {
                content: Some(format!("edited {tag}")),
                metadata: json!({"by": tag}).as_object().cloned(),
                ..MessagePatch::default()
            };
            let if_match = if n == 2 {
                Some(message_etag.as_str())
            } else {
                patch.etag = Some(message_etag.clone());
                None
            };
            let answered = client
                .update_message(i, 1, &patch, Some(&["content", "metadata"]), if_match)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let stored = direct.get_message(i, 1).await.expect("get message");
            assert_eq!(answered, stored, "{}: answers what is stored", case.name);
            assert_eq!(stored.content, patch.content, "{}", case.name);
            assert_eq!(stored.metadata, patch.metadata, "{}", case.name);
            assert_ne!(stored.etag.as_deref(), Some(message_etag.as_str()));
            let count = direct.get_conversation(i, View::Basic).await.expect("get");
            assert_eq!(
                count.message_count,
                Some(1),
                "{}: edited, not appended",
                case.name
            );
        }
        4 => {
            let answered = client
                .complete_conversation(i, Some(&etag))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let stored = direct.get_conversation(i, View::Basic).await.expect("get");
            assert_eq!(answered, stored, "{}: answers what is stored", case.name);
            assert!(stored.is_completed(), "{}", case.name);
        }
        5 => {
            let answered = client
                .delete_conversation(
                    i,
                    DeleteOptions {
                        etag: Some(etag.clone()),
                        allow_missing: false,
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let stored = direct.get_conversation(i, View::Basic).await.expect("get");
            assert_eq!(answered, stored, "{}: answers what is stored", case.name);
            assert_eq!(stored.deleted, Some(true), "{}", case.name);
        }
        _ => {
            let answered = client
                .undelete_conversation(i, Some(&etag))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let stored = direct.get_conversation(i, View::Basic).await.expect("get");
            assert_eq!(answered, stored, "{}: answers what is stored", case.name);
            assert_eq!(stored.deleted, Some(false), "{}", case.name);
        }
    }
}

/// The rule that makes the next attempt of etag write `n` on `i` meet `fault`.
fn etag_rule(n: usize, i: &str, fault: Fault) -> Rule {
    let case = &ETAG_WRITES[n];
    Rule::new(case.method, fault).path_ending(&format!("/conversations/{i}{}", case.ending))
}

/// A conversation with one message, ready for [`ETAG_WRITES`] in their order.
async fn with_a_message(direct: &Client) -> String {
    let created = fresh(direct).await;
    let i = created.id().expect("id").to_owned();
    direct
        .append_message(&i, &MessageInput::new(MessageType::User, "hello"), None)
        .await
        .expect("append");
    i
}

#[tokio::test]
async fn etag_writes_whose_answers_are_lost_are_recognised_in_what_is_read_back() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = alice.client(proxy.base());
    let i = with_a_message(&direct).await;

    for (n, case) in ETAG_WRITES.iter().enumerate() {
        let before = proxy.requests().len();
        proxy.inject(etag_rule(n, &i, Fault::LoseAnswer));
        etag_write(n, &client, &direct, &i, &format!("lost-{n}")).await;
        let attempts: Vec<_> = proxy.requests()[before..].to_vec();
        let writes: Vec<_> = attempts
            .iter()
            .filter(|s| s.method == case.method)
            .collect();
        assert_eq!(writes.len(), 2, "{}: {attempts:#?}", case.name);
        assert_eq!(
            writes[0].status.map(|s| (200..300).contains(&s)),
            Some(true),
            "{}: the first attempt applied",
            case.name
        );
        assert!(
            writes[1]
                .status
                .is_some_and(|s| s == 404 || s == 409 || s == 412),
            "{}: the retry was refused: {attempts:#?}",
            case.name
        );
        assert_eq!(
            attempts.last().map(|s| s.method.as_str()),
            Some("GET"),
            "{}: then read back",
            case.name
        );
    }
    direct
        .delete_conversation(
            &i,
            DeleteOptions {
                etag: None,
                allow_missing: true,
            },
        )
        .await
        .expect("clean up");
}

#[tokio::test]
async fn etag_writes_whose_retry_races_the_first_attempt_are_recognised_or_applied_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = impatient(&alice, &proxy);

    for fault in racing_faults() {
        let i = with_a_message(&direct).await;
        for (n, case) in ETAG_WRITES.iter().enumerate() {
            let before = proxy.requests().len();
            proxy.inject(etag_rule(n, &i, fault));
            etag_write(n, &client, &direct, &i, &format!("{fault:?}-{n}")).await;
            // Whichever attempt the service applied, it applied one: the other was refused.
            proxy.settled().await;
            let writes: Vec<_> = proxy.requests()[before..]
                .iter()
                .filter(|s| s.method == case.method)
                .cloned()
                .collect();
            let applied = writes
                .iter()
                .filter(|s| s.status.is_some_and(|s| (200..300).contains(&s)))
                .count();
            assert_eq!(applied, 1, "{fault:?}, {}: {writes:#?}", case.name);
        }
        direct
            .delete_conversation(
                &i,
                DeleteOptions {
                    etag: None,
                    allow_missing: true,
                },
            )
            .await
            .expect("clean up");
    }
}

#[tokio::test]
async fn an_etag_write_is_answered_refused_when_the_state_read_back_does_not_show_it() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = impatient(&alice, &proxy);
    let created = fresh(&direct).await;
    let i = created.id().expect("id");
    let rename = |name: &str| ConversationInput {
        display_name: Some(name.into()),
        ..ConversationInput::default()
    };

    // A stale etag refused on the first attempt: nothing was unknown, nothing is read back.
    direct
        .update_conversation(i, &rename("moved"), UpdateOptions::default())
        .await
        .expect("another writer");
    let stale = client
        .update_conversation(
            i,
            &rename("mine"),
            UpdateOptions::if_unchanged(&created, &["displayName"]),
        )
        .await
        .expect_err("a stale etag");
    assert!(stale.is_stale_etag(), "{stale}");
    assert_eq!(sent(&proxy, "GET").len(), 0, "no read back");

    // The first attempt applies, its answer is held; another writer renames it before the
    // retry, which is refused; the read shows the other name: the refusal, though this call's
    // write did apply once (then was overwritten).
    let now = direct.get_conversation(i, View::Basic).await.expect("get");
    proxy.inject(Rule::new("PATCH", Fault::Hold(PAST_TIMEOUT)));
    let call = tokio::spawn({
        let client = client.clone();
        let (i, now) = (i.to_owned(), now.clone());
        async move {
            client
                .update_conversation(
                    &i,
                    &rename("mine"),
                    UpdateOptions::if_unchanged(&now, &["displayName"]),
                )
                .await
        }
    });
    wait_until(&proxy, |seen| {
        seen.iter()
            .any(|s| s.method == "PATCH" && s.status == Some(200))
    })
    .await;
    direct
        .update_conversation(i, &rename("theirs"), UpdateOptions::default())
        .await
        .expect("another writer");
    let refused = call
        .await
        .expect("joined")
        .expect_err("overwritten before the read back");
    assert!(refused.is_stale_etag(), "{refused}");
    let stored = direct.get_conversation(i, View::Basic).await.expect("get");
    assert_eq!(stored.display_name.as_deref(), Some("theirs"));
    direct
        .delete_conversation(i, DeleteOptions::default())
        .await
        .expect("clean up");
}

#[tokio::test]
async fn another_writer_making_the_same_change_makes_a_refused_etag_write_look_done() {
    // The limit of what a read can tell (Safety::Recognised): this call's own write never
    // applies, yet the state read back holds what it asked for at a newer etag.
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = impatient(&alice, &proxy);
    let created = fresh(&direct).await;
    let i = created.id().expect("id");
    let rename = ConversationInput {
        display_name: Some("same".into()),
        ..ConversationInput::default()
    };
    proxy.inject(Rule::new("PATCH", Fault::Late(PAST_TIMEOUT)));
    let call = tokio::spawn({
        let (client, i, rename, created) = (
            client.clone(),
            i.to_owned(),
            rename.clone(),
            created.clone(),
        );
        async move {
            client
                .update_conversation(
                    &i,
                    &rename,
                    UpdateOptions::if_unchanged(&created, &["displayName"]),
                )
                .await
        }
    });
    wait_until(&proxy, |seen| seen.iter().any(|s| s.method == "PATCH")).await;
    direct
        .update_conversation(i, &rename, UpdateOptions::default())
        .await
        .expect("another writer, the same change");
    let answered = call.await.expect("joined").expect("looks done");
    assert_eq!(answered.display_name.as_deref(), Some("same"));
    proxy.settled().await;
    let patches: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert!(
        patches.iter().all(|s| s.status == Some(412)),
        "none of this call's attempts applied: {patches:#?}"
    );
    direct
        .delete_conversation(i, DeleteOptions::default())
        .await
        .expect("clean up");
}

/// Waits (at most 10 s) until what the proxy saw satisfies `done`.
async fn wait_until(proxy: &ApiProxy, done: impl Fn(&[Seen]) -> bool) {
    let started = Instant::now();
    while !done(&proxy.requests()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the proxy never saw it: {:#?}",
            proxy.requests()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- Revision 3: delete message, clear messages, purge, a batch with state ---------------------

/// The status, code and field names of an error's problem.
fn problem_of(error: &Error) -> (u16, Code, Vec<String>) {
    let p = error
        .problem()
        .unwrap_or_else(|| panic!("a problem, not {error}"));
    let fields = p.errors.iter().map(|e| e.field.clone()).collect();
    (p.status, p.code.clone(), fields)
}

/// A conversation of `n` messages (`m1`…), appended in one batch.
async fn with_messages(direct: &Client, n: usize) -> String {
    let created = fresh(direct).await;
    let i = created.id().expect("id").to_owned();
    let batch: Vec<_> = (1..=n)
        .map(|k| MessageInput::new(MessageType::User, format!("m{k}")))
        .collect();
    direct
        .batch_append_messages(&i, &batch, BatchOptions::default())
        .await
        .expect("batch");
    i
}

#[tokio::test]
async fn the_removals_answer_typed_values_and_each_write_chains_the_next_etag() {
    let t = target();
    let (alice, bob) = t.two_callers();
    let (client, other) = (alice.client(&t.base), bob.client(&t.base));
    let i = id();
    let mut input = ConversationInput::with_agents(["bot"]);
    input.metadata = Some(object(
        json!({"step": "greeting", "pendingRefund": true, "keep": 1}),
    ));
    client
        .create_conversation(&input, CreateOptions::with_id(&i))
        .await
        .expect("create");

    // An append answers the conversation's etag after it (X-Conversation-ETag), not its own.
    let hello = client
        .append_message(&i, &MessageInput::new(MessageType::User, "hello"), None)
        .await
        .expect("append");
    let now = client.get_conversation(&i, View::Basic).await.expect("get");
    assert!(hello.conversation_etag.is_some());
    assert_eq!(hello.conversation_etag, now.etag);
    assert_ne!(hello.conversation_etag, hello.etag);

    // It chains the batch's precondition; the batch stores its two messages and the state its
    // turn changed, and answers the etag after it.
    let turn = [
        MessageInput::new(MessageType::User, "refund please"),
        MessageInput::new(MessageType::Agent, "done"),
    ];
    let batch = client
        .batch_append_messages(
            &i,
            &turn,
            BatchOptions {
                etag: hello.conversation_etag.clone(),
                conversation_metadata: Some(object(
                    json!({"step": "closing", "pendingRefund": null}),
                )),
                ..BatchOptions::default()
            },
        )
        .await
        .expect("batch");
    assert_eq!(
        batch.messages.iter().map(|m| m.order).collect::<Vec<_>>(),
        [Some(2), Some(3)]
    );
    let now = client.get_conversation(&i, View::Basic).await.expect("get");
    assert_eq!(batch.conversation_etag, now.etag);
    assert_eq!(
        now.metadata,
        Some(object(json!({"step": "closing", "keep": 1})))
    );
    assert_eq!(now.message_count, Some(3));

    // Another owner's view: none of it is there.
    let missing = [
        other
            .delete_message(&i, 1, DeleteMessageOptions::default())
            .await
            .map(drop),
        other
            .clear_messages(&i, ClearOptions::default())
            .await
            .map(drop),
        other.purge_conversation(&i, PurgeOptions::default()).await,
    ];
    for result in missing {
        let error = result.expect_err("another owner's");
        assert_eq!(problem_of(&error).0, 404, "{error}");
    }

    // Pop the last message with its etag: answered as it was; its order is never given again.
    let popped = client
        .delete_message(
            &i,
            3,
            DeleteMessageOptions {
                etag: batch.messages[1].etag.clone(),
                ..DeleteMessageOptions::default()
            },
        )
        .await
        .expect("delete message");
    assert_eq!(popped, batch.messages[1]);
    assert!(
        client
            .get_message(&i, 3)
            .await
            .expect_err("deleted")
            .is_not_found()
    );
    let next = client
        .append_message(&i, &MessageInput::new(MessageType::User, "again"), None)
        .await
        .expect("append");
    assert_eq!(next.order, Some(4), "order 3 is not given again");

    // Clear through 2 with If-Match: the count is what is kept.
    let cleared = client
        .clear_messages(
            &i,
            ClearOptions {
                through_order: Some(2),
                if_match: next.conversation_etag.clone(),
                ..ClearOptions::default()
            },
        )
        .await
        .expect("clear");
    assert_eq!(cleared.message_count, Some(1));
    assert_ne!(cleared.etag, next.conversation_etag);
    assert_eq!(
        contents(&messages_of(&client, &i).await),
        [(4, "again".to_owned())]
    );
    assert_eq!(
        client.get_conversation(&i, View::Basic).await.expect("get"),
        cleared
    );

    // Purge with the etag: missing at once, its id free for a create that sees nothing old.
    client
        .purge_conversation(
            &i,
            PurgeOptions {
                etag: cleared.etag.clone(),
                ..PurgeOptions::default()
            },
        )
        .await
        .expect("purge");
    assert!(
        client
            .get_conversation(&i, View::Basic)
            .await
            .expect_err("purged")
            .is_not_found()
    );
    let again = client
        .create_conversation(
            &ConversationInput::with_agents(["bot"]),
            CreateOptions::with_id(&i),
        )
        .await
        .expect("the id is free");
    assert_eq!(again.message_count, Some(0));
    assert!(again.metadata.unwrap_or_default().is_empty());
    assert!(messages_of(&client, &i).await.is_empty());
    assert!(
        client
            .get_message(&i, 4)
            .await
            .expect_err("an old message")
            .is_not_found()
    );
    for _ in 0..2 {
        client
            .purge_conversation(
                &i,
                PurgeOptions {
                    allow_missing: true,
                    ..PurgeOptions::default()
                },
            )
            .await
            .expect("allowMissing: purged, then already missing");
    }
}

#[tokio::test]
async fn the_removals_refusals_are_typed_problems_and_write_nothing() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let i = with_messages(&client, 1).await;
    let message = client.get_message(&i, 1).await.expect("get message");
    let before = client.get_conversation(&i, View::Basic).await.expect("get");
    let nowhere = id();

    // Delete message: 404 for what is not there; a stale etag (the conversation's is not the
    // message's) 409 in the query, 412 as If-Match.
    for (order, on) in [(0, &i), (2, &i), (99, &i), (1, &nowhere)] {
        let error = client
            .delete_message(on, order, DeleteMessageOptions::default())
            .await
            .expect_err("not there");
        assert_eq!(
            problem_of(&error),
            (404, Code::NotFound, vec![]),
            "order {order}"
        );
    }
    let stale = client
        .delete_message(
            &i,
            1,
            DeleteMessageOptions {
                etag: before.etag.clone(),
                ..DeleteMessageOptions::default()
            },
        )
        .await
        .expect_err("the conversation's etag");
    assert_eq!(problem_of(&stale), (409, Code::Aborted, vec![]));
    assert!(stale.is_stale_etag());
    let stale = client
        .delete_message(
            &i,
            1,
            DeleteMessageOptions {
                if_match: before.etag.clone(),
                ..DeleteMessageOptions::default()
            },
        )
        .await
        .expect_err("the conversation's etag as If-Match");
    assert_eq!(problem_of(&stale), (412, Code::FailedPrecondition, vec![]));

    // Clear: an order that is not positive is a 422 naming it; stale etags 409 / 412; 404.
    let error = client
        .clear_messages(
            &i,
            ClearOptions {
                through_order: Some(0),
                ..ClearOptions::default()
            },
        )
        .await
        .expect_err("order 0");
    assert_eq!(
        problem_of(&error),
        (422, Code::InvalidArgument, vec!["throughOrder".to_owned()])
    );
    let error = client
        .clear_messages(
            &i,
            ClearOptions {
                etag: message.etag.clone(),
                ..ClearOptions::default()
            },
        )
        .await
        .expect_err("a message's etag");
    assert_eq!(problem_of(&error), (409, Code::Aborted, vec![]));
    let error = client
        .clear_messages(
            &i,
            ClearOptions {
                if_match: message.etag.clone(),
                ..ClearOptions::default()
            },
        )
        .await
        .expect_err("a message's etag as If-Match");
    assert_eq!(problem_of(&error), (412, Code::FailedPrecondition, vec![]));
    let error = client
        .clear_messages(&nowhere, ClearOptions::default())
        .await
        .expect_err("missing");
    assert_eq!(problem_of(&error), (404, Code::NotFound, vec![]));

    // Purge: 404, or a success with allowMissing; stale etags 409 / 412.
    let error = client
        .purge_conversation(&nowhere, PurgeOptions::default())
        .await
        .expect_err("missing");
    assert_eq!(problem_of(&error), (404, Code::NotFound, vec![]));
    client
        .purge_conversation(
            &nowhere,
            PurgeOptions {
                allow_missing: true,
                etag: before.etag.clone(),
                ..PurgeOptions::default()
            },
        )
        .await
        .expect("allowMissing, whatever etag");
    let error = client
        .purge_conversation(
            &i,
            PurgeOptions {
                etag: message.etag.clone(),
                ..PurgeOptions::default()
            },
        )
        .await
        .expect_err("stale");
    assert_eq!(problem_of(&error), (409, Code::Aborted, vec![]));
    let error = client
        .purge_conversation(
            &i,
            PurgeOptions {
                if_match: message.etag.clone(),
                ..PurgeOptions::default()
            },
        )
        .await
        .expect_err("stale If-Match");
    assert_eq!(problem_of(&error), (412, Code::FailedPrecondition, vec![]));

    // A batch whose conversationMetadata breaks its rule: 422 naming it.
    let error = client
        .batch_append_messages(
            &i,
            &[MessageInput::new(MessageType::User, "x")],
            BatchOptions {
                conversation_metadata: Some(object(json!({"not a key!": 1}))),
                ..BatchOptions::default()
            },
        )
        .await
        .expect_err("a bad key");
    let (status, code, fields) = problem_of(&error);
    assert_eq!((status, code), (422, Code::InvalidArgument));
    assert!(
        fields.iter().all(|f| f.starts_with("conversationMetadata")) && !fields.is_empty(),
        "{fields:?}"
    );

    // Nothing of it was written.
    assert_eq!(
        client.get_conversation(&i, View::Basic).await.expect("get"),
        before
    );
    assert_eq!(client.get_message(&i, 1).await.expect("get"), message);

    // A key repeated after its message was deleted: 409 ALREADY_EXISTS, nothing appended.
    let key = Uuid::new_v4();
    let keyed = client
        .append_message(&i, &MessageInput::new(MessageType::User, "k"), Some(key))
        .await
        .expect("append");
    client
        .delete_message(&i, 2, DeleteMessageOptions::default())
        .await
        .expect("delete message");
    let error = client
        .append_message(&i, &MessageInput::new(MessageType::User, "k"), Some(key))
        .await
        .expect_err("its message went");
    assert_eq!(problem_of(&error), (409, Code::AlreadyExists, vec![]));
    assert_eq!(keyed.order, Some(2));
    assert_eq!(contents(&messages_of(&client, &i).await).len(), 1);
    client
        .purge_conversation(&i, PurgeOptions::default())
        .await
        .expect("clean up");
}

#[tokio::test]
async fn a_batch_stores_two_messages_and_a_state_key_together_or_neither() {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let created = client
        .create_conversation(
            &ConversationInput {
                metadata: Some(object(json!({"step": "a", "keep": true}))),
                ..ConversationInput::with_agents(["bot"])
            },
            CreateOptions::with_id(id()),
        )
        .await
        .expect("create");
    let i = created.id().expect("id");
    let turn = [
        MessageInput::new(MessageType::User, "next"),
        MessageInput::new(MessageType::Agent, "ok"),
    ];
    let state = |value: serde_json::Value| BatchOptions {
        conversation_metadata: Some(object(value)),
        ..BatchOptions::default()
    };

    // A message refused: the state is not written either.
    let refused = [
        MessageInput::new(MessageType::User, "next"),
        MessageInput::new(MessageType::User, ""),
    ];
    let error = client
        .batch_append_messages(i, &refused, state(json!({"step": "b"})))
        .await
        .expect_err("an empty message");
    assert_eq!(
        problem_of(&error),
        (
            422,
            Code::InvalidArgument,
            vec!["messages[1].content".to_owned()]
        )
    );
    // The state refused (past 16 KiB): the messages are not appended either.
    let error = client
        .batch_append_messages(i, &turn, state(json!({"big": "x".repeat(17 * 1024)})))
        .await
        .expect_err("state past 16 KiB");
    assert_eq!(
        problem_of(&error),
        (
            422,
            Code::InvalidArgument,
            vec!["conversationMetadata".to_owned()]
        )
    );
    assert_eq!(
        client.get_conversation(i, View::Basic).await.expect("get"),
        created,
        "nothing written"
    );

    // Both: two messages and the state key, at one new etag.
    let stored = client
        .batch_append_messages(i, &turn, state(json!({"step": "b", "keep": null})))
        .await
        .expect("batch");
    let now = client.get_conversation(i, View::Basic).await.expect("get");
    assert_eq!(now.message_count, Some(2));
    assert_eq!(now.metadata, Some(object(json!({"step": "b"}))));
    assert_eq!(stored.conversation_etag, now.etag);
    assert_eq!(stored.messages, messages_of(&client, i).await);
    client
        .purge_conversation(i, PurgeOptions::default())
        .await
        .expect("clean up");
}

/// A revision-3 write that the proxy tests make on a conversation of three messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    DeleteMessageWithEtag,
    DeleteMessage,
    ClearThroughWithEtag,
    ClearAllWithIfMatch,
    ClearThrough,
    PurgeWithEtag,
    Purge,
    PurgeAllowMissing,
    BatchWithState,
}

const REMOVALS: [Removal; 9] = [
    Removal::DeleteMessageWithEtag,
    Removal::DeleteMessage,
    Removal::ClearThroughWithEtag,
    Removal::ClearAllWithIfMatch,
    Removal::ClearThrough,
    Removal::PurgeWithEtag,
    Removal::Purge,
    Removal::PurgeAllowMissing,
    Removal::BatchWithState,
];

impl Removal {
    /// The rule that makes the next attempt of this write on `i` meet `fault`.
    fn rule(self, i: &str, fault: Fault) -> Rule {
        let (method, ending) = match self {
            Self::DeleteMessageWithEtag | Self::DeleteMessage => ("DELETE", "/messages/3"),
            Self::ClearThroughWithEtag | Self::ClearAllWithIfMatch | Self::ClearThrough => {
                ("POST", "/messages/clear")
            }
            Self::PurgeWithEtag | Self::Purge | Self::PurgeAllowMissing => ("POST", "/purge"),
            Self::BatchWithState => ("POST", "/messages/batch"),
        };
        Rule::new(method, fault).path_ending(&format!("/conversations/{i}{ending}"))
    }

    /// Whether a repeat of an attempt that applied is refused (and the client reads back),
    /// rather than answered.
    fn refused_when_repeated(self) -> bool {
        !matches!(
            self,
            Self::ClearThrough | Self::PurgeAllowMissing | Self::BatchWithState
        )
    }

    /// Makes this write on `i` (three messages) through `client`, and checks its answer and
    /// what the service stored (read with `direct`).
    async fn run(self, client: &Client, direct: &Client, i: &str) {
        let now = direct.get_conversation(i, View::Basic).await.expect("get");
        let third = direct.get_message(i, 3).await.expect("get message");
        let what = format!("{self:?}");
        match self {
            Self::DeleteMessageWithEtag | Self::DeleteMessage => {
                let options = DeleteMessageOptions {
                    etag: (self == Self::DeleteMessageWithEtag)
                        .then(|| third.etag.clone())
                        .flatten(),
                    ..DeleteMessageOptions::default()
                };
                let answered = client
                    .delete_message(i, 3, options)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                // The message as it was, or — when the answer of the attempt that deleted it was
                // lost — its name and order only.
                let recognised = Message {
                    name: third.name.clone(),
                    order: Some(3),
                    ..Message::default()
                };
                assert!(
                    answered == third || answered == recognised,
                    "{what}: {answered:?}"
                );
                assert!(
                    direct
                        .get_message(i, 3)
                        .await
                        .expect_err(&what)
                        .is_not_found(),
                    "{what}"
                );
                let stored = direct.get_conversation(i, View::Basic).await.expect("get");
                assert_eq!(stored.message_count, Some(2), "{what}: deleted once");
            }
            Self::ClearThroughWithEtag | Self::ClearAllWithIfMatch | Self::ClearThrough => {
                let options = match self {
                    Self::ClearThroughWithEtag => ClearOptions {
                        through_order: Some(2),
                        etag: now.etag.clone(),
                        ..ClearOptions::default()
                    },
                    Self::ClearAllWithIfMatch => ClearOptions {
                        if_match: now.etag.clone(),
                        ..ClearOptions::default()
                    },
                    _ => ClearOptions {
                        through_order: Some(2),
                        ..ClearOptions::default()
                    },
                };
                let answered = client
                    .clear_messages(i, options)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let stored = direct.get_conversation(i, View::Basic).await.expect("get");
                let kept: Vec<u64> = messages_of(direct, i)
                    .await
                    .iter()
                    .filter_map(|m| m.order)
                    .collect();
                if self == Self::ClearAllWithIfMatch {
                    assert_eq!(kept, Vec::<u64>::new(), "{what}");
                } else {
                    assert_eq!(kept, [3], "{what}");
                }
                assert_eq!(stored.message_count, Some(kept.len() as u64), "{what}");
                if self.refused_when_repeated() {
                    assert_eq!(answered, stored, "{what}: answers what is stored");
                } else {
                    // A repeat writes a new version, and answers it.
                    assert_eq!(answered.message_count, stored.message_count, "{what}");
                }
            }
            Self::PurgeWithEtag | Self::Purge | Self::PurgeAllowMissing => {
                let options = PurgeOptions {
                    etag: (self == Self::PurgeWithEtag)
                        .then(|| now.etag.clone())
                        .flatten(),
                    allow_missing: self == Self::PurgeAllowMissing,
                    ..PurgeOptions::default()
                };
                client
                    .purge_conversation(i, options)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(
                    direct
                        .get_conversation(i, View::Basic)
                        .await
                        .expect_err(&what)
                        .is_not_found(),
                    "{what}"
                );
            }
            Self::BatchWithState => {
                let turn = [
                    MessageInput::new(MessageType::User, "q"),
                    MessageInput::new(MessageType::Agent, "a"),
                ];
                let options = BatchOptions {
                    etag: now.etag.clone(),
                    conversation_metadata: Some(object(json!({"step": "answered"}))),
                    ..BatchOptions::default()
                };
                let answered = client
                    .batch_append_messages(i, &turn, options)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    answered
                        .messages
                        .iter()
                        .map(|m| m.order)
                        .collect::<Vec<_>>(),
                    [Some(4), Some(5)],
                    "{what}"
                );
                let stored = direct.get_conversation(i, View::Basic).await.expect("get");
                assert_eq!(stored.message_count, Some(5), "{what}: appended once");
                assert_eq!(
                    stored.metadata,
                    Some(object(json!({"step": "answered"}))),
                    "{what}"
                );
                assert_eq!(
                    answered.conversation_etag, stored.etag,
                    "{what}: nothing written after the batch"
                );
            }
        }
    }
}

#[tokio::test]
async fn removals_whose_answers_are_lost_are_retried_and_recognised_or_answered_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = alice.client(proxy.base());

    for removal in REMOVALS {
        let i = with_messages(&direct, 3).await;
        let before = proxy.requests().len();
        proxy.inject(removal.rule(&i, Fault::LoseAnswer));
        removal.run(&client, &direct, &i).await;
        let attempts: Vec<Seen> = proxy.requests()[before..].to_vec();
        let writes: Vec<&Seen> = attempts.iter().filter(|s| s.method != "GET").collect();
        assert_eq!(writes.len(), 2, "{removal:?}: retried once: {attempts:#?}");
        assert!(
            writes[0].status.is_some_and(|s| (200..300).contains(&s)),
            "{removal:?}: the first attempt applied: {attempts:#?}"
        );
        if removal.refused_when_repeated() {
            assert!(
                writes[1]
                    .status
                    .is_some_and(|s| s == 404 || s == 409 || s == 412),
                "{removal:?}: the retry was refused: {attempts:#?}"
            );
            assert_eq!(
                attempts.last().map(|s| s.method.as_str()),
                Some("GET"),
                "{removal:?}: then read back"
            );
        } else {
            assert!(
                writes[1].status.is_some_and(|s| (200..300).contains(&s)),
                "{removal:?}: the retry was answered: {attempts:#?}"
            );
            assert!(
                attempts.iter().all(|s| s.method != "GET"),
                "{removal:?}: nothing read back: {attempts:#?}"
            );
        }
        if removal == Removal::BatchWithState {
            assert_eq!(key(writes[0]), key(writes[1]), "one key");
        }
        direct
            .purge_conversation(
                &i,
                PurgeOptions {
                    allow_missing: true,
                    ..PurgeOptions::default()
                },
            )
            .await
            .expect("clean up");
    }
}

#[tokio::test]
async fn removals_whose_retry_races_the_first_attempt_apply_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = impatient(&alice, &proxy);

    for fault in racing_faults() {
        for removal in REMOVALS {
            let i = with_messages(&direct, 3).await;
            let before = proxy.requests().len();
            proxy.inject(removal.rule(&i, fault));
            removal.run(&client, &direct, &i).await;
            proxy.settled().await;
            let writes: Vec<Seen> = proxy.requests()[before..]
                .iter()
                .filter(|s| s.method != "GET")
                .cloned()
                .collect();
            assert!(
                writes.len() >= 2,
                "{fault:?}, {removal:?}: retried: {writes:#?}"
            );
            let applied = writes
                .iter()
                .filter(|s| s.status.is_some_and(|s| (200..300).contains(&s)))
                .count();
            if removal.refused_when_repeated() {
                // Whichever attempt the service applied, it applied one: the other was refused.
                assert_eq!(applied, 1, "{fault:?}, {removal:?}: {writes:#?}");
            } else {
                assert_eq!(
                    applied,
                    writes.len(),
                    "{fault:?}, {removal:?}: every attempt answered: {writes:#?}"
                );
            }
            direct
                .purge_conversation(
                    &i,
                    PurgeOptions {
                        allow_missing: true,
                        ..PurgeOptions::default()
                    },
                )
                .await
                .expect("clean up");
        }
    }
}

#[tokio::test]
async fn a_clear_of_every_message_without_an_etag_is_sent_once() {
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = alice.client(proxy.base());
    let i = with_messages(&direct, 3).await;

    // A repeat would also clear what another writer appended after the first attempt: the
    // client reports the lost answer instead.
    proxy.lose_answers("POST", 1);
    let lost = client
        .clear_messages(&i, ClearOptions::default())
        .await
        .expect_err("not retried");
    assert_eq!(lost.code(), Some(&Code::Unavailable));
    assert_eq!(sent(&proxy, "POST").len(), 1);
    let stored = direct.get_conversation(&i, View::Basic).await.expect("get");
    assert_eq!(stored.message_count, Some(0), "the clear had landed");
    direct
        .purge_conversation(&i, PurgeOptions::default())
        .await
        .expect("clean up");
}

#[tokio::test]
async fn a_purge_repeated_after_the_id_was_created_again_purges_the_new_one_unless_it_names_an_etag()
 {
    // The limit of a purge without an etag (Safety::Recognised): its repeat cannot tell the
    // conversation it purged from one created under the id between its attempts.
    let t = target();
    let (alice, _) = t.two_callers();
    let direct = alice.client(&t.base);
    let proxy = ApiProxy::start(&t.base).await;
    let client = impatient(&alice, &proxy);

    for with_etag in [false, true] {
        let created = fresh(&direct).await;
        let i = created.id().expect("id").to_owned();
        let before = proxy.requests().len();
        proxy.inject(
            Rule::new("POST", Fault::Hold(PAST_TIMEOUT))
                .path_ending(&format!("/conversations/{i}/purge")),
        );
        let call = tokio::spawn({
            let (client, i) = (client.clone(), i.clone());
            let etag = created.etag.clone().filter(|_| with_etag);
            async move {
                client
                    .purge_conversation(
                        &i,
                        PurgeOptions {
                            etag,
                            ..PurgeOptions::default()
                        },
                    )
                    .await
            }
        });
        wait_until(&proxy, |seen| {
            seen[before..]
                .iter()
                .any(|s| s.path().ends_with("/purge") && s.status == Some(200))
        })
        .await;
        // The first attempt purged it; another caller creates the id again before the retry.
        direct
            .create_conversation(
                &ConversationInput::with_agents(["bot"]),
                CreateOptions::with_id(&i),
            )
            .await
            .expect("created again");
        let answered = call.await.expect("joined");
        let now = direct.get_conversation(&i, View::Basic).await;
        if with_etag {
            let refused = answered.expect_err("the etag names the purged conversation");
            assert!(refused.is_stale_etag(), "{refused}");
            assert!(now.is_ok(), "the new conversation stays");
        } else {
            answered.expect("a purge of whatever holds the id");
            assert!(
                now.expect_err("the new conversation was purged too")
                    .is_not_found()
            );
        }
        direct
            .purge_conversation(
                &i,
                PurgeOptions {
                    allow_missing: true,
                    ..PurgeOptions::default()
                },
            )
            .await
            .expect("clean up");
    }
}

#[tokio::test]
async fn a_repeated_append_answers_the_etag_its_first_call_left_so_a_chain_past_another_write_is_refused()
 {
    let t = target();
    let (alice, _) = t.two_callers();
    let client = alice.client(&t.base);
    let created = fresh(&client).await;
    let i = created.id().expect("id");
    let key = Uuid::new_v4();
    let hello = MessageInput::new(MessageType::User, "hello");
    let first = client
        .append_message(i, &hello, Some(key))
        .await
        .expect("append");
    let after = client.get_conversation(i, View::Basic).await.expect("get");
    assert_eq!(first.conversation_etag, after.etag);

    // Another writer, then the same call again (a retry, or a rerun): the first call's etag.
    client
        .update_conversation(
            i,
            &ConversationInput {
                display_name: Some("theirs".into()),
                ..ConversationInput::default()
            },
            UpdateOptions::default(),
        )
        .await
        .expect("another writer");
    let repeat = client
        .append_message(i, &hello, Some(key))
        .await
        .expect("answered from its key");
    assert_eq!(repeat.message, first.message);
    assert_eq!(repeat.conversation_etag, first.conversation_etag);
    let chained = client
        .batch_append_messages(
            i,
            &[MessageInput::new(MessageType::Agent, "hi")],
            BatchOptions {
                etag: repeat.conversation_etag.clone(),
                ..BatchOptions::default()
            },
        )
        .await
        .expect_err("a chain past another write");
    assert!(chained.is_stale_etag(), "{chained}");
    client
        .purge_conversation(i, PurgeOptions::default())
        .await
        .expect("clean up");
}
