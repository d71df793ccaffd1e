//! What the benchmarks run against: seeded conversations, the request each method is measured
//! with, and the raw SDK calls that the same method needs, made directly (the floor of the warm
//! overhead ratio).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, ReturnValue, TransactWriteItem, Update, WriteRequest,
};
use conversations::domain::conversation::{Conversation, NewConversation, Writable};
use conversations::domain::etag::Preconditions;
use conversations::domain::ids::{ConversationId, Owner};
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
    ListMessages,
    ListMessagesLast,
    GetMessage,
    Fallback,
}

impl Method {
    /// Every method, in the contract's order (several requests of one function each).
    pub const ALL: [Method; 14] = [
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
        Method::ListMessages,
        Method::ListMessagesLast,
        Method::GetMessage,
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
            Method::Append => "append-message",
            Method::ListMessages | Method::ListMessagesLast => "list-messages",
            Method::GetMessage => "get-message",
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
            Method::ListMessages => "GET /v1/conversations/{id}/messages (10 messages)",
            Method::ListMessagesLast => {
                "GET /v1/conversations/{id}/messages?orderBy=order desc&pageSize=5 (of 10)"
            }
            Method::GetMessage => "GET /v1/conversations/{id}/messages/5",
            Method::Fallback => "PUT /v1/conversations (405)",
        }
    }

    /// The status a successful run of the request answers.
    pub fn expected(self) -> u16 {
        match self {
            Method::Create | Method::Append => 201,
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
                let (lo, hi) = item::message_range(from, to);
                let get = c
                    .get_item()
                    .table_name(&db.table)
                    .set_key(Some(Store::key(&self.owner, &self.messages)))
                    .consistent_read(true)
                    .send();
                let query = c
                    .query()
                    .table_name(&db.table)
                    .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                    .expression_attribute_names("#pk", attr::PK)
                    .expression_attribute_names("#sk", attr::SK)
                    .expression_attribute_values(
                        ":pk",
                        item::s(item::partition_key(&self.owner, &self.messages)),
                    )
                    .expression_attribute_values(":lo", item::s(lo))
                    .expression_attribute_values(":hi", item::s(hi))
                    .consistent_read(true)
                    .scan_index_forward(!descending)
                    .limit(limit)
                    .send();
                let (got, queried) = futures_util::future::join(get, query).await;
                got.map_err(|e| err(format!("{e:?}")))?;
                queried.map_err(|e| err(format!("{e:?}")))?;
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
            Method::Append => self.raw_append().await.map_err(err)?,
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

    async fn raw_append(&self) -> Result<(), String> {
        let db = &self.db;
        let key = Store::key(&self.owner, &self.raw_append);
        let read = db
            .client
            .get_item()
            .table_name(&db.table)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let current = item::conversation_from(&read.item.ok_or("no conversation")?)
            .map_err(|e| e.to_string())?;
        let order = current.message_count + 1;
        let update = Update::builder()
            .table_name(&db.table)
            .set_key(Some(key))
            .update_expression("SET #c = :c, #v = :new")
            .condition_expression("#v = :old")
            .expression_attribute_names("#c", attr::COUNT)
            .expression_attribute_names("#v", attr::VERSION)
            .expression_attribute_values(":c", item::n(order))
            .expression_attribute_values(":new", item::n(now_micros().max(current.version.0 + 1)))
            .expression_attribute_values(":old", item::n(current.version.0))
            .build()
            .map_err(|e| e.to_string())?;
        let put = Put::builder()
            .table_name(&db.table)
            .set_item(Some(message(&self.owner, &current, order)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", attr::PK)
            .build()
            .map_err(|e| e.to_string())?;
        db.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(())
    }
}

fn owner_for_list() -> Result<Owner, String> {
    owner("bench-list")
}
