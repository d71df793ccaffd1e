//! What the benchmarks run against: seeded conversations, the request each method is measured
//! with, and the raw SDK calls that the same method needs, made directly (the floor of the warm
//! overhead ratio).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, PutRequest, ReturnValue, TransactWriteItem, Update,
    WriteRequest,
};
use conversations::domain::conversation::{Conversation, NewConversation, Writable};
use conversations::domain::etag::Preconditions;
use conversations::domain::ids::{ConversationId, Owner, RequestId};
use conversations::domain::message::{Message, MessageType};
use conversations::domain::page_token::TokenKey;
use conversations::domain::time::Timestamp;
use conversations::store::Store;
use conversations::store::item::{self, Item, attr};
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
    ListMessages,
    ListMessagesLast,
    GetMessage,
    UpdateMessage,
    Fallback,
}

impl Method {
    /// Every method, in the contract's order (several requests of one function each).
    pub const ALL: [Method; 18] = [
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
        Method::ListMessages,
        Method::ListMessagesLast,
        Method::GetMessage,
        Method::UpdateMessage,
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
            Method::BatchAppend => "batch-append-messages",
            Method::ListMessages | Method::ListMessagesLast => "list-messages",
            Method::GetMessage => "get-message",
            Method::UpdateMessage => "update-message",
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
            Method::ListMessages => "GET /v1/conversations/{id}/messages (10 messages)",
            Method::ListMessagesLast => {
                "GET /v1/conversations/{id}/messages?orderBy=order desc&pageSize=5 (of 10)"
            }
            Method::GetMessage => "GET /v1/conversations/{id}/messages/5",
            Method::UpdateMessage => "PATCH /v1/conversations/{id}/messages/5?updateMask=content",
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
            | Method::BatchAppend => 201,
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

    /// Seeds `count` conversations of `owner` (created one microsecond apart) and returns them.
    pub async fn seed(&self, owner: &Owner, count: usize) -> Result<Vec<Conversation>, String> {
        let base = now_micros() - 1_000_000_000;
        let all = (0..count)
            .map(|i| conversation(owner, fresh_id(), base + i as i64))
            .collect::<Result<Vec<_>, _>>()?;
        self.put_all(all.iter().map(item::conversation_item).collect())
            .await?;
        Ok(all)
    }

    /// Seeds one conversation holding `messages` messages.
    pub async fn seed_with_messages(
        &self,
        owner: &Owner,
        messages: u64,
    ) -> Result<Conversation, String> {
        let mut c = conversation(owner, fresh_id(), now_micros() - 1_000_000)?;
        c.message_count = messages;
        let mut items = vec![item::conversation_item(&c)];
        items.extend((1..=messages).map(|order| message(owner, &c, order)));
        self.put_all(items).await?;
        Ok(c)
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
    for _ in 0..100 {
        if requests.is_empty() {
            return Ok(());
        }
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
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
        let mut pools = Vec::new();
        for _ in 0..6 {
            pools.push(db.seed(&owner, uses).await?);
        }
        let ids = |i: usize| pools[i].iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        db.soft_delete(&owner, &ids(2)).await?;
        db.soft_delete(&owner, &ids(3)).await?;
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

    /// The raw SDK calls `method` needs, made directly; `false` when it needs none.
    pub async fn raw(&self, method: Method) -> Result<bool, String> {
        let db = &self.db;
        let c = &db.client;
        let err = |e: String| format!("raw {method:?}: {e}");
        let now = now_micros();
        match method {
            Method::Fallback => return Ok(false),
            Method::Create => {
                let new = conversation(&self.owner, fresh_id(), now)?;
                c.put_item()
                    .table_name(&db.table)
                    .set_item(Some(item::conversation_item(&new)))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", attr::PK)
                    .send()
                    .await
                    .map_err(|e| err(format!("{e:?}")))?;
            }
            Method::Get => {
                c.get_item()
                    .table_name(&db.table)
                    .set_key(Some(Store::key(&self.owner, &self.get)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| err(format!("{e:?}")))?;
            }
            Method::List | Method::ListRecent => {
                let (index, pk) = match method {
                    Method::List => (conversations::store::schema::OWNER_INDEX, attr::GSI_PK),
                    _ => (conversations::store::schema::ACTIVITY_INDEX, attr::GSI2_PK),
                };
                c.query()
                    .table_name(&db.table)
                    .index_name(index)
                    .key_condition_expression("#o = :o")
                    .filter_expression("attribute_not_exists(#d)")
                    .expression_attribute_names("#o", pk)
                    .expression_attribute_names("#d", attr::DELETE)
                    .expression_attribute_values(":o", item::s(self.list_index_key.as_str()))
                    .scan_index_forward(false)
                    .limit(51)
                    .send()
                    .await
                    .map_err(|e| err(format!("{e:?}")))?;
            }
            // The conversation's GetItem and a Query of message keys, sent together, as the
            // message reads and the FULL view make them.
            Method::ListMessages
            | Method::ListMessagesLast
            | Method::GetMessage
            | Method::GetFull => {
                let (from, to, descending, limit) = match method {
                    Method::ListMessages => (1, 9_999_999_999, false, 51),
                    Method::ListMessagesLast => (1, 9_999_999_999, true, 6),
                    Method::GetMessage => (5, 5, false, 4),
                    _ => (1, 9_999_999_999, true, 50),
                };
                let get = c
                    .get_item()
                    .table_name(&db.table)
                    .set_key(Some(Store::key(&self.owner, &self.messages)))
                    .consistent_read(true)
                    .send();
                let query = self.query_messages(&self.messages, from, to, descending, limit);
                let (got, queried) = futures_util::future::join(get, query).await;
                got.map_err(|e| err(format!("{e:?}")))?;
                queried.map_err(err)?;
            }
            Method::Update => self
                .raw_update(
                    &self.raw_update,
                    "SET #x = :x, #v = :v",
                    &[("#x", attr::DISPLAY_NAME)],
                    &[(":x", item::s("raw"))],
                    "attribute_exists(#pk)",
                )
                .await
                .map_err(err)?,
            Method::Delete => {
                let id = self.delete[1].take()?;
                self.raw_update(
                    id,
                    "SET #x = :x, #v = :v",
                    &[("#x", attr::DELETE)],
                    &[(":x", item::n(now))],
                    "attribute_exists(#pk) AND attribute_not_exists(#x)",
                )
                .await
                .map_err(err)?;
            }
            Method::Undelete => {
                let id = self.undelete[1].take()?;
                self.raw_update(
                    id,
                    "REMOVE #x SET #v = :v",
                    &[("#x", attr::DELETE)],
                    &[],
                    "attribute_exists(#x)",
                )
                .await
                .map_err(err)?;
            }
            Method::Complete => {
                let id = self.complete[1].take()?;
                self.raw_update(
                    id,
                    "SET #x = :x, #v = :v",
                    &[("#x", attr::LIFECYCLE)],
                    &[(":x", item::s("COMPLETED"))],
                    "attribute_exists(#pk) AND #x <> :x",
                )
                .await
                .map_err(err)?;
            }
            Method::Append => self
                .raw_append(&self.raw_append, 1, None)
                .await
                .map_err(err)?,
            Method::AppendKeyed => {
                let fresh = RequestId::parse(&uuid::Uuid::new_v4().to_string())
                    .map_err(|e| err(e.to_string()))?;
                self.raw_append(&self.raw_keyed, 1, Some(&fresh))
                    .await
                    .map_err(err)?;
            }
            Method::AppendRepeat => self.raw_repeat().await.map_err(err)?,
            Method::BatchAppend => self
                .raw_append(&self.raw_batch, 4, None)
                .await
                .map_err(err)?,
            Method::UpdateMessage => self.raw_edit().await.map_err(err)?,
        }
        Ok(true)
    }

    async fn raw_update(
        &self,
        id: &ConversationId,
        update: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
        condition: &str,
    ) -> Result<(), String> {
        let mut request = self
            .db
            .client
            .update_item()
            .table_name(&self.db.table)
            .set_key(Some(Store::key(&self.owner, id)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":v", item::n(now_micros()))
            .return_values(ReturnValue::AllNew);
        if condition.contains("#pk") {
            request = request.expression_attribute_names("#pk", attr::PK);
        }
        for (k, v) in names {
            request = request.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            request = request.expression_attribute_values(*k, v.clone());
        }
        request.send().await.map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// Append's calls: the consistent read (with the key's marker: one `BatchGetItem`), then one
    /// transaction of the conversation's update, `count` message puts and the marker's put.
    async fn raw_append(
        &self,
        id: &ConversationId,
        count: u64,
        key: Option<&RequestId>,
    ) -> Result<(), String> {
        let db = &self.db;
        let conversation_key = Store::key(&self.owner, id);
        let current = match key {
            None => {
                let read = db
                    .client
                    .get_item()
                    .table_name(&db.table)
                    .set_key(Some(conversation_key.clone()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                read.item.ok_or("no conversation")?
            }
            Some(request) => {
                let keys = KeysAndAttributes::builder()
                    .keys(conversation_key.clone())
                    .keys(item::marker_key(&self.owner, id, request))
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
                read.responses
                    .and_then(|mut r| r.remove(&db.table))
                    .and_then(|items| {
                        items
                            .into_iter()
                            .find(|i| i.get(attr::SK) == conversation_key.get(attr::SK))
                    })
                    .ok_or("no conversation")?
            }
        };
        let current = item::conversation_from(&current).map_err(|e| e.to_string())?;
        let last = current.message_count + count;
        let update = Update::builder()
            .table_name(&db.table)
            .set_key(Some(conversation_key))
            .update_expression("SET #c = :c, #v = :new")
            .condition_expression("#v = :old")
            .expression_attribute_names("#c", attr::COUNT)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":c", item::n(last))
            .expression_attribute_values(":new", item::n(now_micros().max(current.version.0 + 1)))
            .expression_attribute_values(":old", item::n(current.version.0))
            .build()
            .map_err(|e| e.to_string())?;
        let mut tx = db
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build());
        for order in current.message_count + 1..=last {
            let put = Put::builder()
                .table_name(&db.table)
                .set_item(Some(message(&self.owner, &current, order)))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
                .build()
                .map_err(|e| e.to_string())?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        if let Some(request) = key {
            let marker = item::marker_item(
                &self.owner,
                id,
                current.create_time,
                request,
                (current.message_count + 1, count, "0"),
                Timestamp::now(),
            );
            let put = Put::builder()
                .table_name(&db.table)
                .set_item(Some(marker))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", attr::PK)
                .build()
                .map_err(|e| e.to_string())?;
            tx = tx.transact_items(TransactWriteItem::builder().put(put).build());
        }
        tx.send().await.map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// A repeated key's calls: the read of the conversation and the marker, then the `Query` of
    /// the message it names. The first use appends.
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
            return self.raw_append(id, 1, Some(&self.raw_repeat_key)).await;
        };
        let (first, count, _) = item::marker_contents(&marker).map_err(|e| e.to_string())?;
        self.query_messages(id, first, first + count - 1, false, count as i32 + 4)
            .await
            .map(|_| ())
    }

    /// Update message's calls: the `Query` of the order's keys, then one transaction of the
    /// message's update and the conversation's.
    async fn raw_edit(&self) -> Result<(), String> {
        let db = &self.db;
        let id = &self.raw_edit;
        let found = self.query_messages(id, 5, 5, false, 8).await?;
        let stored = found.into_iter().next().ok_or("no message")?;
        let version = item::get_n(&stored, attr::VERSION).map_err(|e| e.to_string())?;
        let now = now_micros().max(version + 1);
        let message = Update::builder()
            .table_name(&db.table)
            .key(attr::PK, stored[attr::PK].clone())
            .key(attr::SK, stored[attr::SK].clone())
            .update_expression("SET #t = :t, #v = :new")
            .condition_expression("#v = :old")
            .expression_attribute_names("#t", attr::CONTENT)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":t", item::s("[redacted]"))
            .expression_attribute_values(":new", item::n(now))
            .expression_attribute_values(":old", item::n(version))
            .build()
            .map_err(|e| e.to_string())?;
        let conversation = Update::builder()
            .table_name(&db.table)
            .set_key(Some(Store::key(&self.owner, id)))
            .update_expression("SET #v = :new")
            .condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#d) AND #v < :new",
            )
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#d", attr::DELETE)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":new", item::n(now_micros()))
            .build()
            .map_err(|e| e.to_string())?;
        db.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(message).build())
            .transact_items(TransactWriteItem::builder().update(conversation).build())
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    async fn query_messages(
        &self,
        id: &ConversationId,
        from: u64,
        to: u64,
        descending: bool,
        limit: i32,
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
            .limit(limit)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(out.items.unwrap_or_default())
    }
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
