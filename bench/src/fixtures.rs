//! What the benchmarks run against: seeded conversations, the request each method is measured
//! with, and the raw SDK calls that the same method needs, made directly (the floor of the warm
//! overhead ratio).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    Delete, KeysAndAttributes, Put, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use conversations::domain::conversation::{Conversation, NewConversation, Writable};
use conversations::domain::etag::{Preconditions, Version};
use conversations::domain::ids::{ConversationId, Owner, RequestId};
use conversations::domain::message::{MAX_ORDER, Message, MessageType, MetadataKeys};
use conversations::domain::page_token::TokenKey;
use conversations::domain::time::{Duration, Timestamp};
use conversations::store::Store;
use conversations::store::expr::Expr;
use conversations::store::item::{self, Item, attr};
use conversations::store::seed_items;
use conversations::store::split;
use serde_json::json;
use tokio::task::JoinSet;

use crate::events::HttpRequest;

/// The methods measured: every REST function, and the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Create,
    Get,
    GetFull,
    List,
    ListRecent,
    Update,
    Delete,
    Undelete,
    Complete,
    Append,
    AppendKeyed,
    AppendRepeat,
    BatchAppend,
    BatchAppendState,
    ListMessages,
    ListMessagesLast,
    GetMessage,
    UpdateMessage,
    DeleteMessage,
    ClearMessages,
    ClearAll,
    Purge,
    Fallback,
}

impl Method {
    /// Every method, in the contract's order (several requests of one function each).
    pub const ALL: [Method; 23] = [
        Method::Create,
        Method::Get,
        Method::GetFull,
        Method::List,
        Method::ListRecent,
        Method::Update,
        Method::Delete,
        Method::Undelete,
        Method::Complete,
        Method::Append,
        Method::AppendKeyed,
        Method::AppendRepeat,
        Method::BatchAppend,
        Method::BatchAppendState,
        Method::ListMessages,
        Method::ListMessagesLast,
        Method::GetMessage,
        Method::UpdateMessage,
        Method::DeleteMessage,
        Method::ClearMessages,
        Method::ClearAll,
        Method::Purge,
        Method::Fallback,
    ];

    /// The function (binary) that serves it.
    pub fn function(self) -> &'static str {
        match self {
            Method::Create => "create-conversation",
            Method::Get | Method::GetFull => "get-conversation",
            Method::List | Method::ListRecent => "list-conversations",
            Method::Update => "update-conversation",
            Method::Delete => "delete-conversation",
            Method::Undelete => "undelete-conversation",
            Method::Complete => "complete-conversation",
            Method::Append | Method::AppendKeyed | Method::AppendRepeat => "append-message",
            Method::BatchAppend | Method::BatchAppendState => "batch-append-messages",
            Method::ListMessages | Method::ListMessagesLast => "list-messages",
            Method::GetMessage => "get-message",
            Method::UpdateMessage => "update-message",
            Method::DeleteMessage => "delete-message",
            Method::ClearMessages | Method::ClearAll => "clear-messages",
            Method::Purge => "purge-conversation",
            Method::Fallback => "fallback",
        }
    }

    /// The request measured, as a user would write it.
    pub fn label(self) -> &'static str {
        match self {
            Method::Create => "POST /v1/conversations",
            Method::Get => "GET /v1/conversations/{id}",
            Method::GetFull => "GET /v1/conversations/{id}?view=FULL (10 messages)",
            Method::List => "GET /v1/conversations (first page of 100)",
            Method::ListRecent => {
                "GET /v1/conversations?orderBy=lastUsedTime desc (first page of 100)"
            }
            Method::Update => "PATCH /v1/conversations/{id}?updateMask=displayName",
            Method::Delete => "DELETE /v1/conversations/{id}",
            Method::Undelete => "POST /v1/conversations/{id}/undelete",
            Method::Complete => "POST /v1/conversations/{id}/complete",
            Method::Append => "POST /v1/conversations/{id}/messages",
            Method::AppendKeyed => "POST /v1/conversations/{id}/messages?requestId= (a new key)",
            Method::AppendRepeat => {
                "POST /v1/conversations/{id}/messages?requestId= (a repeated key)"
            }
            Method::BatchAppend => {
                "POST /v1/conversations/{id}/messages/batch (4 messages: an agent turn)"
            }
            Method::BatchAppendState => {
                "POST /v1/conversations/{id}/messages/batch (the same turn + conversationMetadata: one key set, one removed)"
            }
            Method::ListMessages => "GET /v1/conversations/{id}/messages (10 messages)",
            Method::ListMessagesLast => {
                "GET /v1/conversations/{id}/messages?orderBy=order desc&pageSize=5 (of 10)"
            }
            Method::GetMessage => "GET /v1/conversations/{id}/messages/5",
            Method::UpdateMessage => "PATCH /v1/conversations/{id}/messages/5?updateMask=content",
            Method::DeleteMessage => {
                "DELETE /v1/conversations/{id}/messages/{order} (the last message: a pop)"
            }
            Method::ClearMessages => {
                "POST /v1/conversations/{id}/messages/clear {throughOrder: 5} (of 10: the last 5 kept)"
            }
            Method::ClearAll => "POST /v1/conversations/{id}/messages/clear {} (all 10)",
            Method::Purge => "POST /v1/conversations/{id}/purge",
            Method::Fallback => "PUT /v1/conversations (405)",
        }
    }

    /// The status a successful run of the request answers.
    pub fn expected(self) -> u16 {
        match self {
            Method::Create
            | Method::Append
            | Method::AppendKeyed
            | Method::AppendRepeat
            | Method::BatchAppend
            | Method::BatchAppendState => 201,
            Method::Fallback => 405,
            _ => 200,
        }
    }
}

/// The table and a client of the harness's own.
#[derive(Debug, Clone)]
pub struct Db {
    /// The client (straight to DynamoDB Local).
    pub client: Client,
    /// The table.
    pub table: String,
}

/// A conversation as the service would store it, created at `micros`.
pub fn conversation(
    owner: &Owner,
    id: ConversationId,
    micros: i64,
) -> Result<Conversation, String> {
    let at = Timestamp::from_micros(micros).ok_or("timestamp out of range")?;
    let fields = Writable {
        display_name: Some("bench".into()),
        agents: Some(vec!["agent-1".into()]),
        ..Writable::default()
    };
    Ok(NewConversation::try_from(fields)
        .map_err(|e| e.to_string())?
        .into_conversation(id, owner.clone(), None, at))
}

/// The stored item of message `order` of `c`.
pub fn message(owner: &Owner, c: &Conversation, order: u64) -> Item {
    item::message_item(
        owner,
        c.create_time,
        &Message {
            conversation: c.id.clone(),
            order,
            kind: MessageType::User,
            content: format!("message {order} of the benchmark"),
            tool_calls: Vec::new(),
            tool_call_id: None,
            metadata: None,
            create_time: c.create_time,
            version: c.version,
        },
    )
}

/// The two items of `c` as the service stores it (layout 4, `store::split`): its head (sort key
/// `C`: counters, times, state, version, both index keys) and its body (sort key `B`: the large
/// fields, in `by-owner` right after the head).
pub fn stored_pair(c: &Conversation) -> [Item; 2] {
    let (head, body) = split::split(item::conversation_item(c), c.version);
    [head, body]
}

/// Microseconds since the epoch, now.
pub fn now_micros() -> i64 {
    Timestamp::now().micros()
}

/// An owner from a fixed name.
pub fn owner(name: &str) -> Result<Owner, String> {
    Owner::from_claim(name).ok_or_else(|| format!("{name} is not an owner"))
}

/// A fresh conversation id.
pub fn fresh_id() -> ConversationId {
    ConversationId::random()
}

impl Db {
    /// Writes items with `BatchWriteItem` (25 a call, 8 calls in flight), retrying unprocessed ones.
    pub async fn put_all(&self, items: Vec<Item>) -> Result<(), String> {
        let mut chunks: Vec<Vec<Item>> = Vec::new();
        for item in items {
            match chunks.last_mut() {
                Some(c) if c.len() < 25 => c.push(item),
                _ => chunks.push(vec![item]),
            }
        }
        let mut running = JoinSet::new();
        for chunk in chunks {
            if running.len() >= 8
                && let Some(done) = running.join_next().await
            {
                done.map_err(|e| e.to_string())??;
            }
            let (client, table) = (self.client.clone(), self.table.clone());
            running.spawn(async move { put_chunk(&client, &table, chunk).await });
        }
        while let Some(done) = running.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// Seeds `count` conversations of `owner` (created one microsecond apart), each as its head
    /// and body ([`stored_pair`]), and returns them.
    pub async fn seed(&self, owner: &Owner, count: usize) -> Result<Vec<Conversation>, String> {
        let base = now_micros() - 1_000_000_000;
        let all = (0..count)
            .map(|i| conversation(owner, fresh_id(), base + i as i64))
            .collect::<Result<Vec<_>, _>>()?;
        self.put_all(all.iter().flat_map(stored_pair).collect())
            .await?;
        Ok(all)
    }

    /// Seeds one conversation holding `messages` messages.
    pub async fn seed_with_messages(
        &self,
        owner: &Owner,
        messages: u64,
    ) -> Result<Conversation, String> {
        let mut seeded = self.seed_each_with_messages(owner, 1, messages).await?;
        seeded.pop().ok_or_else(|| "nothing seeded".into())
    }

    /// Seeds `count` conversations (head and body each) each holding `messages` messages
    /// (orders 1 to `messages`: as many held as ever assigned, none cleared), in one batch of
    /// writes.
    pub async fn seed_each_with_messages(
        &self,
        owner: &Owner,
        count: usize,
        messages: u64,
    ) -> Result<Vec<Conversation>, String> {
        let mut all = Vec::with_capacity(count);
        let mut items = Vec::new();
        for _ in 0..count {
            let mut c = conversation(owner, fresh_id(), now_micros() - 1_000_000)?;
            c.message_count = messages;
            c.last_order = messages;
            items.extend(stored_pair(&c));
            items.extend((1..=messages).map(|order| message(owner, &c, order)));
            all.push(c);
        }
        self.put_all(items).await?;
        Ok(all)
    }

    /// Soft-deletes seeded conversations through the store, as the service does.
    pub async fn soft_delete(&self, owner: &Owner, ids: &[ConversationId]) -> Result<(), String> {
        let store = Store::new(
            Client::from_conf(conversations::app::dynamodb_config().await.build()),
            self.table.clone(),
            TokenKey::new("bench"),
        );
        let mut running = JoinSet::new();
        for id in ids {
            if running.len() >= 8
                && let Some(done) = running.join_next().await
            {
                done.map_err(|e| e.to_string())??;
            }
            let (store, owner, id) = (store.clone(), owner.clone(), id.clone());
            running.spawn(async move {
                store
                    .delete(&owner, &id, &Preconditions::default(), false)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        }
        while let Some(done) = running.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
        Ok(())
    }
}

async fn put_chunk(client: &Client, table: &str, chunk: Vec<Item>) -> Result<(), String> {
    let mut requests: Vec<WriteRequest> = chunk
        .into_iter()
        .map(|item| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("an item is set"),
                )
                .build()
        })
        .collect();
    let mut timeouts = 0;
    for _ in 0..100 {
        if requests.is_empty() {
            return Ok(());
        }
        let out = match client
            .batch_write_item()
            .request_items(table, requests.clone())
            .send()
            .await
        {
            Ok(out) => out,
            // DynamoDB Local on a loaded machine can stall past the client's 5 s operation
            // timeout: the puts are idempotent and nothing here is timed, so send them again.
            Err(SdkError::TimeoutError(_)) if timeouts < 5 => {
                timeouts += 1;
                continue;
            }
            Err(e) => return Err(format!("seeding (BatchWriteItem): {e:?}")),
        };
        requests = out
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
    }
    Err("BatchWriteItem kept leaving items unprocessed".into())
}

/// Ids handed out once each.
#[derive(Debug, Default)]
pub struct Pool {
    ids: Vec<ConversationId>,
    next: AtomicUsize,
}

impl Pool {
    fn new(ids: Vec<ConversationId>) -> Self {
        Self {
            ids,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Result<&ConversationId, String> {
        self.ids
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .ok_or_else(|| "a benchmark pool ran dry: raise its size".into())
    }
}

/// A conversation whose messages are deleted one by one, the last first (each invocation deletes
/// a message that is there: a fresh fixture, seeded beforehand).
#[derive(Debug)]
pub struct Stack {
    id: ConversationId,
    top: AtomicU64,
}

impl Stack {
    fn new(c: &Conversation) -> Self {
        Self {
            id: c.id.clone(),
            top: AtomicU64::new(c.last_order),
        }
    }

    /// The order of the last message left, taken.
    fn pop(&self) -> Result<u64, String> {
        self.top
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(1))
            .ok()
            .filter(|&t| t > 0)
            .ok_or_else(|| "a benchmark stack of messages ran dry: raise its size".into())
    }
}

/// The state one method's measurements need, for the function and for the raw calls.
#[derive(Debug)]
pub struct Fixture {
    db: Db,
    /// The owner of everything but the list.
    pub owner: Owner,
    list_owner: Owner,
    get: ConversationId,
    update: ConversationId,
    append: ConversationId,
    messages: ConversationId,
    list_index_key: String,
    delete: [Pool; 2],
    undelete: [Pool; 2],
    complete: [Pool; 2],
    raw_update: ConversationId,
    raw_append: ConversationId,
    keyed: ConversationId,
    raw_keyed: ConversationId,
    batch: ConversationId,
    raw_batch: ConversationId,
    edit: ConversationId,
    raw_edit: ConversationId,
    batch_state: ConversationId,
    raw_batch_state: ConversationId,
    /// Conversations of 10 messages each, one per clear (function, raw calls).
    clear: [Pool; 2],
    clear_all: [Pool; 2],
    purge: [Pool; 2],
    /// Conversations of `uses` messages, one deleted per use.
    pop: [Stack; 2],
    /// The key every repeat sends (its first use appends; the others repeat it).
    repeat_key: RequestId,
    raw_repeat_key: RequestId,
    seq: AtomicU64,
}

impl Fixture {
    /// Seeds everything for `uses` requests of each method (function and raw calls each).
    pub async fn seed(db: Db, uses: usize) -> Result<Self, String> {
        let owner = owner("bench-warm")?;
        let list_owner = owner_for_list()?;
        let singles = db.seed(&owner, 4).await?;
        let listed = db.seed(&list_owner, 100).await?;
        let messages = db.seed_with_messages(&owner, 10).await?;
        let edit = db.seed_with_messages(&owner, 10).await?;
        let raw_edit = db.seed_with_messages(&owner, 10).await?;
        let more = db.seed(&owner, 4).await?;
        let key = |text: &str| RequestId::parse(text).map_err(|e| e.to_string());
        // One conversation per use, for the function and for the raw calls: delete, undelete,
        // complete and purge (no messages); clear through 5 and clear all (10 messages each).
        let mut pools = Vec::new();
        for _ in 0..8 {
            pools.push(db.seed(&owner, uses).await?);
        }
        for _ in 0..4 {
            pools.push(db.seed_each_with_messages(&owner, uses, 10).await?);
        }
        let ids = |i: usize| pools[i].iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        db.soft_delete(&owner, &ids(2)).await?;
        db.soft_delete(&owner, &ids(3)).await?;
        let stacked = db.seed_each_with_messages(&owner, 2, uses as u64).await?;
        let state = db.seed(&owner, 2).await?;
        Ok(Self {
            list_index_key: listed[0].owner.key(),
            get: singles[0].id.clone(),
            update: singles[1].id.clone(),
            append: singles[2].id.clone(),
            raw_update: singles[3].id.clone(),
            raw_append: db.seed(&owner, 1).await?[0].id.clone(),
            keyed: more[0].id.clone(),
            raw_keyed: more[1].id.clone(),
            batch: more[2].id.clone(),
            raw_batch: more[3].id.clone(),
            edit: edit.id.clone(),
            raw_edit: raw_edit.id.clone(),
            repeat_key: key("7d3c1f0e-5a2b-4c6d-8e9f-0a1b2c3d4e5f")?,
            raw_repeat_key: key("8e4d2a1f-6b3c-4d7e-9f0a-1b2c3d4e5f60")?,
            messages: messages.id.clone(),
            delete: [Pool::new(ids(0)), Pool::new(ids(1))],
            undelete: [Pool::new(ids(2)), Pool::new(ids(3))],
            complete: [Pool::new(ids(4)), Pool::new(ids(5))],
            purge: [Pool::new(ids(6)), Pool::new(ids(7))],
            clear: [Pool::new(ids(8)), Pool::new(ids(9))],
            clear_all: [Pool::new(ids(10)), Pool::new(ids(11))],
            pop: [Stack::new(&stacked[0]), Stack::new(&stacked[1])],
            batch_state: state[0].id.clone(),
            raw_batch_state: state[1].id.clone(),
            db,
            owner,
            list_owner,
            seq: AtomicU64::new(0),
        })
    }

    /// The next event that measures `method` through its function.
    pub fn event(&self, method: Method) -> Result<serde_json::Value, String> {
        let path = |id: &ConversationId| format!("/v1/conversations/{}", id.as_str());
        let request = match method {
            Method::Create => HttpRequest::new("POST", "/v1/conversations").body(json!({
                "displayName": "bench",
                "agents": ["agent-1"],
                "labels": {"team": "bench"}
            })),
            Method::Get => HttpRequest::new("GET", path(&self.get)),
            Method::GetFull => HttpRequest::new("GET", path(&self.messages)).query("view", "FULL"),
            Method::List => {
                return Ok(HttpRequest::new("GET", "/v1/conversations")
                    .event(self.list_owner.as_str()));
            }
            Method::ListRecent => {
                return Ok(HttpRequest::new("GET", "/v1/conversations")
                    .query("orderBy", "lastUsedTime desc")
                    .event(self.list_owner.as_str()));
            }
            Method::Update => HttpRequest::new("PATCH", path(&self.update))
                .query("updateMask", "displayName")
                .body(json!({"displayName": format!("bench {}", self.seq.fetch_add(1, Ordering::Relaxed))})),
            Method::Delete => HttpRequest::new("DELETE", path(self.delete[0].take()?)),
            Method::Undelete => {
                HttpRequest::new("POST", format!("{}/undelete", path(self.undelete[0].take()?)))
            }
            Method::Complete => {
                HttpRequest::new("POST", format!("{}/complete", path(self.complete[0].take()?)))
            }
            Method::Append => HttpRequest::new("POST", format!("{}/messages", path(&self.append)))
                .body(json!({"type": "USER", "content": "hello from the benchmark"})),
            Method::AppendKeyed => HttpRequest::new("POST", format!("{}/messages", path(&self.keyed)))
                .query("requestId", uuid::Uuid::new_v4().to_string())
                .body(json!({"type": "USER", "content": "hello from the benchmark"})),
            Method::AppendRepeat => HttpRequest::new("POST", format!("{}/messages", path(&self.keyed)))
                .query("requestId", self.repeat_key.as_str())
                .body(json!({"type": "USER", "content": "hello from the benchmark"})),
            Method::BatchAppend => {
                HttpRequest::new("POST", format!("{}/messages/batch", path(&self.batch)))
                    .body(json!({ "messages": agent_turn() }))
            }
            Method::BatchAppendState => {
                HttpRequest::new("POST", format!("{}/messages/batch", path(&self.batch_state)))
                    .body(json!({
                        "messages": agent_turn(),
                        "conversationMetadata": self.state_keys().to_json(),
                    }))
            }
            Method::DeleteMessage => {
                let stack = &self.pop[0];
                HttpRequest::new("DELETE", format!("{}/messages/{}", path(&stack.id), stack.pop()?))
            }
            Method::ClearMessages => {
                HttpRequest::new("POST", format!("{}/messages/clear", path(self.clear[0].take()?)))
                    .body(json!({"throughOrder": 5}))
            }
            Method::ClearAll => HttpRequest::new(
                "POST",
                format!("{}/messages/clear", path(self.clear_all[0].take()?)),
            )
            .body(json!({})),
            Method::Purge => {
                HttpRequest::new("POST", format!("{}/purge", path(self.purge[0].take()?)))
            }
            Method::UpdateMessage => {
                HttpRequest::new("PATCH", format!("{}/messages/5", path(&self.edit)))
                    .query("updateMask", "content")
                    .body(json!({"content": format!("[redacted {}]", self.seq.fetch_add(1, Ordering::Relaxed))}))
            }
            Method::ListMessages => {
                HttpRequest::new("GET", format!("{}/messages", path(&self.messages)))
            }
            Method::ListMessagesLast => {
                HttpRequest::new("GET", format!("{}/messages", path(&self.messages)))
                    .query("orderBy", "order desc")
                    .query("pageSize", "5")
            }
            Method::GetMessage => {
                HttpRequest::new("GET", format!("{}/messages/5", path(&self.messages)))
            }
            Method::Fallback => HttpRequest::new("PUT", "/v1/conversations"),
        };
        Ok(request.event(self.owner.as_str()))
    }

    /// The raw SDK calls `method` needs, made directly; `false` when it needs none. Each makes
    /// the requests the function makes on layout 4 (a conversation as its head and its body,
    /// `store::split`), in the same order, the concurrent ones at once (`tokio::join!`):
    /// - create: one `TransactWriteItems` of the head's conditional put and the body's put;
    /// - get: one consistent `Query` of the pair (sort keys `B` to `C`); `view=FULL`: that
    ///   `Query`, then the messages' `Query`;
    /// - list by `createTime`: one `Query` of `by-owner` (heads and bodies, `Limit` 2 × 51); by
    ///   `lastUsedTime`: one `Query` of `by-activity` (heads, `Limit` 51), then one consistent
    ///   `BatchGetItem` of their bodies (at most 100 keys a request);
    /// - update naming no large field, delete, undelete, complete: the head's conditional
    ///   `UpdateItem` and, sent with it, the body's consistent `GetItem`;
    /// - append, batch append, a repeated key: the head's consistent `GetItem` (with the
    ///   marker: `BatchGetItem`), then one `TransactWriteItems`; with `conversationMetadata`
    ///   the `BatchGetItem` of head and body, and the transaction updates the body too;
    /// - list messages, get message: the head's `GetItem`, then the messages' `Query`;
    /// - update message, delete message: the `Query` of the order's keys, then one transaction
    ///   of the message and the head;
    /// - clear: the pair's `Query`, the count `Query`s, the head's `UpdateItem`; purge: the
    ///   head's `UpdateItem`.
    pub async fn raw(&self, method: Method) -> Result<bool, String> {
        let db = &self.db;
        let c = &db.client;
        let err = |e: String| format!("raw {method:?}: {e}");
        let now = now_micros();
        match method {
            Method::Fallback => return Ok(false),
            Method::Create => {
                // One transaction: the head's put, only while no visible conversation holds
                // the id (the store's condition), and the body's.
                let new = conversation(&self.owner, fresh_id(), now)?;
                let [head, body] = stored_pair(&new);
                let mut e = Expr::new();
                let (pk, expire, purge) =
                    (e.name(attr::PK), e.name(attr::EXPIRE), e.name(attr::PURGE));
                let now_v = e.value(item::n(now));
                e.condition(format!(
                    "attribute_not_exists({pk}) OR {expire} <= {now_v} OR {purge} <= {now_v}"
                ));
                let put_head = Put::builder()
                    .table_name(&db.table)
                    .set_item(Some(head))
                    .set_condition_expression(e.condition_expression())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(|e| err(e.to_string()))?;
                let put_body = Put::builder()
                    .table_name(&db.table)
                    .set_item(Some(body))
                    .build()
                    .map_err(|e| err(e.to_string()))?;
                self.transact(vec![
                    TransactWriteItem::builder().put(put_head).build(),
                    TransactWriteItem::builder().put(put_body).build(),
                ])
                .await
                .map_err(err)?;
            }
            Method::Get => {
                self.raw_pair(&self.get).await.map_err(err)?;
            }
            // By creation: one Query of by-owner, where a conversation is its head and its body
            // (adjacent keys): a page of 50 and one more is 102 items; bodies pass the filter
            // (their heads are judged). By activity: one Query of by-activity (heads only),
            // then the bodies of the page's heads, by key.
            Method::List => {
                c.query()
                    .table_name(&db.table)
                    .index_name(conversations::store::schema::OWNER_INDEX)
                    .key_condition_expression("#o = :o")
                    .filter_expression("#sk = :body OR attribute_not_exists(#d)")
                    .expression_attribute_names("#o", attr::GSI_PK)
                    .expression_attribute_names("#sk", attr::SK)
                    .expression_attribute_names("#d", attr::DELETE)
                    .expression_attribute_values(":o", item::s(self.list_index_key.as_str()))
                    .expression_attribute_values(":body", item::s(split::BODY_SK))
                    .scan_index_forward(false)
                    .limit(2 * 51)
                    .send()
                    .await
                    .map_err(|e| err(format!("{e:?}")))?;
            }
            Method::ListRecent => {
                let heads = c
                    .query()
                    .table_name(&db.table)
                    .index_name(conversations::store::schema::ACTIVITY_INDEX)
                    .key_condition_expression("#o = :o")
                    .filter_expression("attribute_not_exists(#d)")
                    .expression_attribute_names("#o", attr::GSI2_PK)
                    .expression_attribute_names("#d", attr::DELETE)
                    .expression_attribute_values(":o", item::s(self.list_index_key.as_str()))
                    .scan_index_forward(false)
                    .limit(51)
                    .send()
                    .await
                    .map_err(|e| err(format!("{e:?}")))?;
                // The head past the page's end says only that more follow: no body read for it.
                let bodies: Vec<Item> = heads
                    .items()
                    .iter()
                    .take(50)
                    .filter(|h| split::has_body(h))
                    .filter_map(|h| h.get(attr::PK).cloned())
                    .map(|pk| {
                        Item::from([
                            (attr::PK.to_owned(), pk),
                            (attr::SK.to_owned(), item::s(split::BODY_SK)),
                        ])
                    })
                    .collect();
                self.batch_get(bodies).await.map_err(err)?;
            }
            // The conversation's read — the head's consistent GetItem, or for the FULL view the
            // pair's Query — then, only for a range it holds (above its clear boundary, up to
            // its highest order), one Query of those message keys: two round trips, as the
            // message reads and the FULL view make them.
            Method::ListMessages
            | Method::ListMessagesLast
            | Method::GetMessage
            | Method::GetFull => {
                // (first, last, newest first, Limit) as the functions ask: a page of 50 and one
                // more, a page of 5 and one more, the order's newest two incarnations, the
                // FULL view's 50 newest.
                let (from, to, descending, limit) = match method {
                    Method::ListMessages => (1, MAX_ORDER, false, 51),
                    Method::ListMessagesLast => (1, MAX_ORDER, true, 6),
                    Method::GetMessage => (5, 5, true, 2),
                    _ => (1, MAX_ORDER, true, 50),
                };
                let current = if method == Method::GetFull {
                    let (head, body) = self.raw_pair(&self.messages).await.map_err(err)?;
                    split::join(&head.ok_or("no conversation")?, body.as_ref())
                        .map_err(|e| err(e.to_string()))?
                        .ok_or("a torn pair")?
                } else {
                    let read = c
                        .get_item()
                        .table_name(&db.table)
                        .set_key(Some(Store::key(&self.owner, &self.messages)))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(|e| err(format!("{e:?}")))?;
                    split::head_from(&read.item.ok_or("no conversation")?)
                        .map_err(|e| err(e.to_string()))?
                };
                let from = from.max(current.cleared_through + 1);
                let to = to.min(current.last_order);
                if from <= to {
                    self.query_messages(&self.messages, (from, to), descending, Some(limit))
                        .await
                        .map_err(err)?;
                }
            }
            // Each as the store writes it (`Store::update_in_place`, `delete`, `undelete`,
            // `complete`): the guard, then the method's own conditions and changes.
            Method::Update => self
                .raw_update(&self.raw_update, |e, _| {
                    let del = e.name(attr::DELETE);
                    e.condition(format!("attribute_not_exists({del})"));
                    e.set(attr::DISPLAY_NAME, item::s("raw"));
                })
                .await
                .map_err(err)?,
            Method::Delete => {
                let id = self.delete[1].take()?;
                self.raw_update(id, |e, now| {
                    let purge = now.plus(Duration::THIRTY_DAYS).unwrap_or(now);
                    let (del, expire) = (e.name(attr::DELETE), e.name(attr::EXPIRE));
                    let purge_v = e.value(item::n(purge.micros()));
                    e.condition(format!("attribute_not_exists({del})"));
                    e.condition(format!(
                        "attribute_not_exists({expire}) OR {expire} >= {purge_v}"
                    ));
                    e.set(attr::DELETE, item::n(now.micros()));
                    e.set(attr::PURGE, item::n(purge.micros()));
                    e.set(attr::TTL, item::n(purge.epoch_seconds_ceil()));
                })
                .await
                .map_err(err)?;
            }
            Method::Undelete => {
                let id = self.undelete[1].take()?;
                self.raw_update(id, |e, _| {
                    let del = e.name(attr::DELETE);
                    e.condition(format!("attribute_exists({del})"));
                    e.remove(attr::DELETE);
                    e.remove(attr::PURGE);
                    let (ttl, expire_at) = (e.name(attr::TTL), e.name(attr::EXPIRE_AT));
                    let never = e.value(item::n(item::NEVER));
                    e.set_clause(format!("{ttl} = if_not_exists({expire_at}, {never})"));
                })
                .await
                .map_err(err)?;
            }
            Method::Complete => {
                let id = self.complete[1].take()?;
                self.raw_update(id, |e, now| {
                    let (del, life) = (e.name(attr::DELETE), e.name(attr::LIFECYCLE));
                    let in_progress = e.value(item::s("IN_PROGRESS"));
                    e.condition(format!(
                        "attribute_not_exists({del}) AND {life} = {in_progress}"
                    ));
                    e.set(attr::LIFECYCLE, item::s("COMPLETED"));
                    e.set(attr::END, item::n(now.micros()));
                })
                .await
                .map_err(err)?;
            }
            Method::Append => self
                .raw_append(&self.raw_append, 1, None, None)
                .await
                .map_err(err)?,
            Method::AppendKeyed => {
                let fresh = RequestId::parse(&uuid::Uuid::new_v4().to_string())
                    .map_err(|e| err(e.to_string()))?;
                self.raw_append(&self.raw_keyed, 1, Some(&fresh), None)
                    .await
                    .map_err(err)?;
            }
            Method::AppendRepeat => self.raw_repeat().await.map_err(err)?,
            Method::BatchAppend => self
                .raw_append(&self.raw_batch, 4, None, None)
                .await
                .map_err(err)?,
            Method::BatchAppendState => self
                .raw_append(&self.raw_batch_state, 4, None, Some(&self.state_keys()))
                .await
                .map_err(err)?,
            Method::UpdateMessage => self.raw_edit().await.map_err(err)?,
            Method::DeleteMessage => self.raw_delete_message().await.map_err(err)?,
            Method::ClearMessages => {
                let id = self.clear[1].take()?;
                self.raw_clear(id, Some(5)).await.map_err(err)?;
            }
            Method::ClearAll => {
                let id = self.clear_all[1].take()?;
                self.raw_clear(id, None).await.map_err(err)?;
            }
            Method::Purge => {
                let id = self.purge[1].take()?;
                self.raw_purge(id).await.map_err(err)?;
            }
        }
        Ok(true)
    }

    /// The `conversationMetadata` of a batch that stores an agent's state with its turn: one key
    /// set (a new value each time), one removed.
    fn state_keys(&self) -> MetadataKeys {
        let turn = self.seq.fetch_add(1, Ordering::Relaxed);
        MetadataKeys(vec![
            ("draft".into(), None),
            (
                "state".into(),
                Some(json!({"turn": turn, "step": "answered"})),
            ),
        ])
    }

    /// Update's, delete's, undelete's and complete's calls, as the store sends them: the head's
    /// conditional `UpdateItem` (the guard every write of an existing conversation carries —
    /// it exists, is visible, its version is below the new one — then `op`'s own conditions and
    /// changes, signed, answering `ALL_NEW`) and, sent with it, the body's consistent `GetItem`.
    async fn raw_update(
        &self,
        id: &ConversationId,
        op: impl FnOnce(&mut Expr, Timestamp),
    ) -> Result<(), String> {
        let now = Timestamp::now();
        let mut e = guarded(now);
        op(&mut e, now);
        let (written, body) = tokio::join!(self.update_signed(id, e), self.read_body(id));
        written?;
        body.map(|_| ())
    }

    /// A conversation's head and body: one consistent `Query` of its sort keys `B` to `C`.
    async fn raw_pair(&self, id: &ConversationId) -> Result<(Option<Item>, Option<Item>), String> {
        let out = self
            .db
            .client
            .query()
            .table_name(&self.db.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :body AND :head")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", item::s(item::partition_key(&self.owner, id)))
            .expression_attribute_values(":body", item::s(split::BODY_SK))
            .expression_attribute_values(":head", item::s(item::CONVERSATION_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (mut head, mut body) = (None, None);
        for found in out.items.unwrap_or_default() {
            if split::is_body(&found) {
                body = Some(found);
            } else {
                head = Some(found);
            }
        }
        Ok((head, body))
    }

    /// A conversation's body: one consistent `GetItem`.
    async fn read_body(&self, id: &ConversationId) -> Result<Option<Item>, String> {
        let out = self
            .db
            .client
            .get_item()
            .table_name(&self.db.table)
            .set_key(Some(split::body_key(&self.owner, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(out.item)
    }

    /// Items by key: consistent `BatchGetItem`s of at most 100 keys, each sending again what
    /// DynamoDB left unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, String> {
        let db = &self.db;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut wanted = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| e.to_string())?;
            loop {
                let out = db
                    .client
                    .batch_get_item()
                    .request_items(&db.table, wanted)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(&db.table))
                        .unwrap_or_default(),
                );
                match out.unprocessed_keys.and_then(|mut u| u.remove(&db.table)) {
                    Some(left) if !left.keys().is_empty() => wanted = left,
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// One conditional `UpdateItem` of a conversation, as the store sends it: signed with a
    /// random token of the call, answering the item (`ALL_NEW`, `ALL_OLD` on a refusal).
    async fn update_signed(&self, id: &ConversationId, mut e: Expr) -> Result<(), String> {
        sign(&mut e);
        self.db
            .client
            .update_item()
            .table_name(&self.db.table)
            .set_key(Some(Store::key(&self.owner, id)))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// Runs a transaction with a random `ClientRequestToken`, as the store does.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), String> {
        self.db
            .client
            .transact_write_items()
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// Append's calls: the head's consistent read (with the key's marker, or with the body
    /// when the batch carries `conversationMetadata`: one `BatchGetItem`), then one transaction
    /// of the head's update (count, highest order, `lastUsedTime` and its `by-activity` key,
    /// version), the body's update when `metadata` is given (its keys and size and the body's
    /// version, only while the body is the one read; the head marks the new body version),
    /// `count` message puts and the marker's put.
    async fn raw_append(
        &self,
        id: &ConversationId,
        count: u64,
        key: Option<&RequestId>,
        metadata: Option<&MetadataKeys>,
    ) -> Result<(), String> {
        let db = &self.db;
        let conversation_key = Store::key(&self.owner, id);
        let (head, body) = if key.is_none() && metadata.is_none() {
            let read = db
                .client
                .get_item()
                .table_name(&db.table)
                .set_key(Some(conversation_key.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            (read.item.ok_or("no conversation")?, None)
        } else {
            let body_key = metadata.map(|_| split::body_key(&self.owner, id));
            let marker_key = key.map(|request| item::marker_key(&self.owner, id, request));
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(
                    [Some(conversation_key.clone()), body_key.clone(), marker_key]
                        .into_iter()
                        .flatten()
                        .collect(),
                ))
                .consistent_read(true)
                .build()
                .map_err(|e| e.to_string())?;
            let read = db
                .client
                .batch_get_item()
                .request_items(&db.table, keys)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let found = read
                .responses
                .and_then(|mut r| r.remove(&db.table))
                .unwrap_or_default();
            let sk = |i: &Item| i.get(attr::SK).cloned();
            let of = |wanted: &Item| found.iter().find(|i| sk(i) == sk(wanted)).cloned();
            let head = of(&conversation_key).ok_or("no conversation")?;
            (head, body_key.as_ref().and_then(of))
        };
        let body_version = split::body_version(&head);
        let current = match &body {
            Some(body) => split::join(&head, Some(body))
                .map_err(|e| e.to_string())?
                .ok_or("a torn pair")?,
            None => split::head_from(&head).map_err(|e| e.to_string())?,
        };
        let now = Timestamp::now();
        let new = Version::next(now, Some(current.version));
        let last = current.last_order + count;
        let mut e = Expr::new();
        let ver = e.name(attr::VERSION);
        let read = e.value(item::n(current.version.0));
        e.condition(format!("{ver} = {read}"));
        let visible = visible_at(&mut e, now);
        e.condition(visible);
        e.set(attr::COUNT, item::n(current.message_count + count));
        e.set(attr::LAST_ORDER, item::n(last));
        e.set(attr::LAST_USED, item::n(now.micros()));
        let mut body_update = None;
        if let Some(keys) = metadata {
            let mut b = Expr::new();
            let (bv, read) = (
                b.name(attr::BODY_VERSION),
                b.value(item::n(body_version.ok_or("a body without its version")?)),
            );
            b.condition(format!("{bv} = {read}"));
            seed_items::write_metadata_keys(&mut b, &keys.0);
            let merged = keys.applied(current.metadata.as_ref());
            b.set(
                attr::METADATA_BYTES,
                item::n(seed_items::metadata_size(merged.as_ref())),
            );
            b.set(attr::BODY_VERSION, item::n(new.0));
            e.set(attr::BODY_VERSION, item::n(new.0));
            let update = Update::builder()
                .table_name(&db.table)
                .set_key(Some(split::body_key(&self.owner, id)))
                .set_update_expression(b.update_expression())
                .set_condition_expression(b.condition_expression())
                .set_expression_attribute_names(b.names())
                .set_expression_attribute_values(b.values())
                .build()
                .map_err(|e| e.to_string())?;
            body_update = Some(TransactWriteItem::builder().update(update).build());
        }
        e.set(attr::GSI2_SK, item::s(item::index_sort_key(now, id)));
        e.set(attr::VERSION, item::n(new.0));
        let update = Update::builder()
            .table_name(&db.table)
            .set_key(Some(conversation_key))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| e.to_string())?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(body_update);
        for order in current.last_order + 1..=last {
            let put = Put::builder()
                .table_name(&db.table)
                .set_item(Some(message(&self.owner, &current, order)))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
                .build()
                .map_err(|e| e.to_string())?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(request) = key {
            let marker = item::marker_item(
                &self.owner,
                id,
                current.create_time,
                request,
                (current.last_order + 1, count, "0"),
                (now, new),
            );
            let put = Put::builder()
                .table_name(&db.table)
                .set_item(Some(marker))
                .condition_expression("attribute_not_exists(#pk) OR #i <> :i")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#i", attr::INCARNATION)
                .expression_attribute_values(":i", item::n(current.create_time.micros()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(|e| e.to_string())?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        self.transact(items).await
    }

    /// A repeated key's calls: the read of the conversation and the marker, then the `Query` of
    /// the messages it names. The first use appends.
    async fn raw_repeat(&self) -> Result<(), String> {
        let db = &self.db;
        let id = &self.raw_keyed;
        let marker_key = item::marker_key(&self.owner, id, &self.raw_repeat_key);
        let keys = KeysAndAttributes::builder()
            .keys(Store::key(&self.owner, id))
            .keys(marker_key.clone())
            .consistent_read(true)
            .build()
            .map_err(|e| e.to_string())?;
        let read = db
            .client
            .batch_get_item()
            .request_items(&db.table, keys)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let found = read
            .responses
            .and_then(|mut r| r.remove(&db.table))
            .and_then(|items| {
                items
                    .into_iter()
                    .find(|i| i.get(attr::SK) == marker_key.get(attr::SK))
            });
        let Some(marker) = found else {
            return self
                .raw_append(id, 1, Some(&self.raw_repeat_key), None)
                .await;
        };
        let (first, count, _) = item::marker_contents(&marker).map_err(|e| e.to_string())?;
        self.query_messages(id, (first, first + count - 1), false, None)
            .await
            .map(|_| ())
    }

    /// The stored message of `order` (the newest incarnation's) and its incarnation, as update
    /// and delete message read it: one consistent `Query` of the order's keys, newest first.
    async fn raw_message_of_order(
        &self,
        id: &ConversationId,
        order: u64,
    ) -> Result<(Item, i64), String> {
        let found = self
            .query_messages(id, (order, order), true, Some(8))
            .await?;
        let stored = found.into_iter().next().ok_or("no message")?;
        let sort_key = item::sort_key(&stored).map_err(|e| e.to_string())?;
        let (_, incarnation) = item::message_key_parts(sort_key).ok_or("not a message key")?;
        Ok((stored, incarnation))
    }

    /// Update message's calls: the `Query` of the order's keys, then one transaction of the
    /// message's update and the conversation's.
    async fn raw_edit(&self) -> Result<(), String> {
        let db = &self.db;
        let id = &self.raw_edit;
        let (stored, incarnation) = self.raw_message_of_order(id, 5).await?;
        let version = item::get_n(&stored, attr::VERSION).map_err(|e| e.to_string())?;
        let now = Timestamp::now();
        let new = Version::next(now, Some(Version(version)));
        let message = Update::builder()
            .table_name(&db.table)
            .key(attr::PK, stored[attr::PK].clone())
            .key(attr::SK, stored[attr::SK].clone())
            .update_expression("SET #t = :t, #v = :new")
            .condition_expression("#v = :old")
            .expression_attribute_names("#t", attr::CONTENT)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":t", item::s("[redacted]"))
            .expression_attribute_values(":new", item::n(new.0))
            .expression_attribute_values(":old", item::n(version))
            .build()
            .map_err(|e| e.to_string())?;
        let conversation = self.touch(id, (incarnation, 5), now, new, false)?;
        self.transact(vec![
            TransactWriteItem::builder().update(message).build(),
            conversation,
        ])
        .await
    }

    /// Delete message's calls: the `Query` of the order's keys, then one transaction of the
    /// message's conditional delete and the conversation's update (one message less).
    async fn raw_delete_message(&self) -> Result<(), String> {
        let db = &self.db;
        let stack = &self.pop[1];
        let (id, order) = (&stack.id, stack.pop()?);
        let (stored, incarnation) = self.raw_message_of_order(id, order).await?;
        let version = item::get_n(&stored, attr::VERSION).map_err(|e| e.to_string())?;
        let now = Timestamp::now();
        let delete = Delete::builder()
            .table_name(&db.table)
            .key(attr::PK, stored[attr::PK].clone())
            .key(attr::SK, stored[attr::SK].clone())
            .condition_expression("attribute_exists(#pk) AND #v = :old")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":old", item::n(version))
            .build()
            .map_err(|e| e.to_string())?;
        let conversation = self.touch(
            id,
            (incarnation, order),
            now,
            Version::next(now, None),
            true,
        )?;
        self.transact(vec![
            TransactWriteItem::builder().delete(delete).build(),
            conversation,
        ])
        .await
    }

    /// The conversation's half of a message's edit or deletion, with the store's conditions
    /// (live, visible, this incarnation, the order not cleared, versions only go up).
    fn touch(
        &self,
        id: &ConversationId,
        (incarnation, order): (i64, u64),
        now: Timestamp,
        new: Version,
        deletes: bool,
    ) -> Result<TransactWriteItem, String> {
        let mut e = Expr::new();
        let (pk, del, create) = (e.name(attr::PK), e.name(attr::DELETE), e.name(attr::CREATE));
        let visible = visible_at(&mut e, now);
        let this = e.value(item::n(incarnation));
        e.condition(format!(
            "attribute_exists({pk}) AND {visible} AND attribute_not_exists({del}) AND {create} = {this}"
        ));
        let (cleared, order_v) = (e.name(attr::CLEARED_THROUGH), e.value(item::n(order)));
        e.condition(format!(
            "attribute_not_exists({cleared}) OR {cleared} < {order_v}"
        ));
        let (ver, new_v) = (e.name(attr::VERSION), e.value(item::n(new.0)));
        e.condition(format!("{ver} < {new_v}"));
        e.set(attr::VERSION, item::n(new.0));
        if deletes {
            let (count, one) = (e.name(attr::COUNT), e.value(item::n(1)));
            e.set_clause(format!("{count} = {count} - {one}"));
        }
        let update = Update::builder()
            .table_name(&self.db.table)
            .set_key(Some(Store::key(&self.owner, id)))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Clear's calls: the pair's consistent `Query` (head and body: the answer joins them),
    /// keys-only consistent `Query`s of the shorter of the range kept and the range newly
    /// cleared (one per MB; none when that range is empty), then one conditional `UpdateItem`
    /// of the head's boundary and count.
    async fn raw_clear(&self, id: &ConversationId, through: Option<u64>) -> Result<(), String> {
        let (head, _) = self.raw_pair(id).await?;
        let current =
            split::head_from(&head.ok_or("no conversation")?).map_err(|e| e.to_string())?;
        let (last, boundary) = (current.last_order, current.cleared_through);
        let through = through.map_or(last, |t| t.min(last));
        let (boundary, count) = if through <= boundary {
            (boundary, current.message_count)
        } else if last - through <= through - boundary {
            (
                through,
                self.count_keys(&current, (through + 1, last)).await?,
            )
        } else {
            let going = self.count_keys(&current, (boundary + 1, through)).await?;
            (through, current.message_count.saturating_sub(going))
        };
        let now = Timestamp::now();
        let new = Version::next(now, Some(current.version));
        let mut e = Expr::new();
        let (pk, ver, del) = (
            e.name(attr::PK),
            e.name(attr::VERSION),
            e.name(attr::DELETE),
        );
        let visible = visible_at(&mut e, now);
        e.condition(format!("attribute_exists({pk}) AND {visible}"));
        let old = e.value(item::n(current.version.0));
        e.condition(format!("{ver} = {old}"));
        e.set(attr::VERSION, item::n(new.0));
        e.condition(format!("attribute_not_exists({del})"));
        e.set(attr::CLEARED_THROUGH, item::n(boundary));
        e.set(attr::COUNT, item::n(count));
        self.update_signed(id, e).await
    }

    /// How many of `conversation`'s own messages hold orders `from..=to`: keys-only consistent
    /// `Query`s of that key range, every page.
    async fn count_keys(
        &self,
        conversation: &Conversation,
        (from, to): (u64, u64),
    ) -> Result<u64, String> {
        if from > to {
            return Ok(0);
        }
        let (lo, hi) = item::message_range(from, to);
        let partition = item::partition_key(&self.owner, &conversation.id);
        let (mut counted, mut start) = (0, None);
        loop {
            let out = self
                .db
                .client
                .query()
                .table_name(&self.db.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#pk", attr::PK)
                .expression_attribute_names("#sk", attr::SK)
                .expression_attribute_values(":pk", item::s(partition.as_str()))
                .expression_attribute_values(":lo", item::s(lo.as_str()))
                .expression_attribute_values(":hi", item::s(hi.as_str()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            counted += out
                .items()
                .iter()
                .filter(|k| item::of_incarnation(k, conversation.create_time))
                .count() as u64;
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(counted),
            }
        }
    }

    /// Purge's call: one conditional `UpdateItem` of the head that makes the conversation
    /// missing (purge time, TTL and `purged_at` now) and takes it out of both indexes (the body
    /// stays in `by-owner` until the purger deletes it: a list skips a body without its head).
    async fn raw_purge(&self, id: &ConversationId) -> Result<(), String> {
        let now = Timestamp::now();
        let mut e = guarded(now);
        e.set(attr::PURGE, item::n(now.micros()));
        e.set(attr::PURGED, item::n(now.micros()));
        e.set(attr::TTL, item::n(now.epoch_seconds_ceil()));
        for key in [attr::GSI_PK, attr::GSI_SK, attr::GSI2_PK, attr::GSI2_SK] {
            e.remove(key);
        }
        self.update_signed(id, e).await
    }

    /// One consistent `Query` of a conversation's messages of orders `from..=to`, at most
    /// `limit` items (`None`: as many as one answer holds).
    async fn query_messages(
        &self,
        id: &ConversationId,
        (from, to): (u64, u64),
        descending: bool,
        limit: Option<i32>,
    ) -> Result<Vec<Item>, String> {
        let (lo, hi) = item::message_range(from, to);
        let out = self
            .db
            .client
            .query()
            .table_name(&self.db.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", item::s(item::partition_key(&self.owner, id)))
            .expression_attribute_values(":lo", item::s(lo))
            .expression_attribute_values(":hi", item::s(hi))
            .consistent_read(true)
            .scan_index_forward(!descending)
            .set_limit(limit)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(out.items.unwrap_or_default())
    }
}

/// An `UpdateItem` of a conversation's head with the guard every store write of an existing
/// conversation carries (`Store::guard` without preconditions): it exists and is visible at
/// `now`, and its version is below the new one, which it sets.
fn guarded(now: Timestamp) -> Expr {
    let new = Version::next(now, None);
    let mut e = Expr::new();
    let (pk, ver) = (e.name(attr::PK), e.name(attr::VERSION));
    let visible = visible_at(&mut e, now);
    e.condition(format!("attribute_exists({pk}) AND {visible}"));
    let new_v = e.value(item::n(new.0));
    e.condition(format!("{ver} < {new_v}"));
    e.set(attr::VERSION, item::n(new.0));
    e
}

/// The condition that a conversation item is visible at `now` (the store's `visible_at`).
fn visible_at(e: &mut Expr, now: Timestamp) -> String {
    let (expire, purge) = (e.name(attr::EXPIRE), e.name(attr::PURGE));
    let now_v = e.value(item::n(now.micros()));
    format!(
        "(attribute_not_exists({expire}) OR {expire} > {now_v}) AND (attribute_not_exists({purge}) OR {purge} > {now_v})"
    )
}

/// Signs an `UpdateItem` of a conversation as the store does (`Store::sign`): a random token
/// of the call becomes the newest of the item's four writer slots, and the write holds only
/// while the token is not among them.
fn sign(e: &mut Expr) {
    let token = format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0);
    let t = e.value(item::s(token));
    let slots: Vec<String> = item::WRITER_SLOTS.iter().map(|s| e.name(s)).collect();
    for slot in &slots {
        e.condition(format!("attribute_not_exists({slot}) OR {slot} <> {t}"));
    }
    let none = e.value(item::s("-"));
    for pair in slots.windows(2).rev() {
        e.set_clause(format!("{} = if_not_exists({}, {none})", pair[1], pair[0]));
    }
    e.set_clause(format!("{} = {t}", slots[0]));
}

/// An agent's turn: two tool calls, their results, and the answer.
/// An agent's whole turn: two tool calls, their results and the answer.
pub(crate) fn agent_turn() -> serde_json::Value {
    json!([
        {"type": "AGENT", "toolCalls": [
            {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "call_2", "name": "get_time", "arguments": {"tz": "Europe/Paris"}}
        ]},
        {"type": "TOOL", "toolCallId": "call_1", "content": "{\"tempC\": 21}"},
        {"type": "TOOL", "toolCallId": "call_2", "content": "{\"time\": \"14:05\"}"},
        {"type": "AGENT", "content": "It is 21 °C and 14:05 in Paris."}
    ])
}

fn owner_for_list() -> Result<Owner, String> {
    owner("bench-list")
}
