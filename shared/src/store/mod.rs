//! The DynamoDB store: one table, a conversation and its messages in one item collection, two
//! sparse indexes for listing by owner (by creation, by activity). Every write states its
//! condition; a failed condition comes back with the old item (`ALL_OLD`) and is translated here
//! into the API's errors. This file holds what both resources share (the store, visibility,
//! the conditions of every conversation write, pages); `conversations.rs` and `messages.rs` hold
//! each resource's reads and writes.

pub mod attribute;
mod conversations;
pub mod count;
mod erasure;
pub mod expr;
pub mod item;
mod list;
mod messages;
pub mod migrate;
pub mod schema;
mod sdk;
pub mod seed_items;
pub mod split;

use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::domain::conversation::Conversation;
use crate::domain::etag::{Preconditions, Version};
use crate::domain::ids::{ConversationId, Owner};
use crate::domain::page_token::TokenKey;
use crate::domain::time::Timestamp;
use crate::error::ApiError;
use item::{Item, attr};

pub use list::ListQuery;
pub use messages::{Appended, Idempotency, MessageQuery};
pub use sdk::classify;

/// How often a write is retried when its condition failed only because another writer got in
/// between (version ordering or a racing append).
const MAX_RETRIES: usize = 64;

/// The most bytes of rendered JSON one page of a list carries. A page holds `pageSize` items or
/// fewer (AIP-158 allows a short page that is not the last): with the largest items the contract
/// allows (and JSON escapes, which can make a stored byte six), a full page could pass Lambda's
/// 6 MB response limit, and the runtime envelope escapes the body once more. 2 MiB of items leave
/// room for both; a page always holds at least one item.
pub const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// How many of `sizes` (rendered sizes in bytes, in page order) fit in one page: at least one,
/// then as many as keep the total within [`MAX_PAGE_BYTES`].
fn fitting(sizes: impl IntoIterator<Item = usize>) -> usize {
    let mut total = 0;
    let mut count = 0;
    for size in sizes {
        total += size;
        if count > 0 && total > MAX_PAGE_BYTES {
            break;
        }
        count += 1;
    }
    count
}

/// The size of a value's JSON rendering, in bytes.
fn rendered_len(value: &serde_json::Map<String, serde_json::Value>) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX / 2, |v| v.len())
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    token_key: TokenKey,
    /// Whether a create writes a head and a body (layout 4, the default) or one whole item
    /// (layout 3: the first step of moving a deployed stack, docs/deploy.md).
    split_creates: bool,
}

/// A conditional update's result: the new item, or the old one (absent if there was none).
enum Attempt {
    Written(Item),
    Refused(Option<Item>),
}

fn not_found(id: &ConversationId) -> ApiError {
    ApiError::NotFound(id.name())
}

/// The answer for a conversation that is not there (missing, expired or another owner's): 404,
/// unless the client sent an etag or `If-Match`, which cannot hold for what does not exist
/// (RFC 9110): 412 for `If-Match` (`*` included), 409 `ABORTED` for a body etag.
fn missing(id: &ConversationId, pre: &Preconditions) -> ApiError {
    match pre.on_missing() {
        Some(source_kind) => ApiError::PreconditionOnMissing {
            resource: id.name(),
            source_kind,
        },
        None => not_found(id),
    }
}
impl Store {
    /// A store over a table. The client is built once per process, from
    /// [`crate::app::dynamodb_config`] (which counts its requests for the log lines).
    pub fn new(client: Client, table: impl Into<String>, token_key: TokenKey) -> Self {
        Self {
            client,
            table: table.into(),
            token_key,
            split_creates: true,
        }
    }

    /// The layout a create writes: [`item::LAYOUT`] (a head and a body), or 3 (one whole item,
    /// while functions of layout 3 may still be serving the table: they cannot read a head).
    /// Every other write keeps the layout it finds; reads take both.
    pub fn writing_layout(mut self, layout: i64) -> Self {
        self.split_creates = layout >= 4;
        self
    }

    /// Opens the connection to DynamoDB during a function's init, so that the first request
    /// finds it open: one eventually consistent `GetItem` of the table's layout marker
    /// ([`item::LAYOUT_KEY`], a key no conversation ever has), which also resolves the
    /// credentials and the endpoint and loads the TLS roots. The IAM policy lets every function
    /// read that one key (template.yaml). A table marked with another layout than this
    /// version's is logged as an error (it must be migrated, docs/deploy.md); a failure is
    /// logged and otherwise ignored: the first request then opens the connection.
    pub async fn warm_up(&self) {
        let started = std::time::Instant::now();
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(schema::layout_key()))
            .projection_expression("#layout")
            .expression_attribute_names("#layout", attr::LAYOUT)
            .send()
            .await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(out) => {
                let layout = out.item.and_then(|i| item::get_n(&i, attr::LAYOUT).ok());
                if layout == Some(item::LAYOUT) {
                    tracing::debug!(latency_ms = ms, "DynamoDB connection opened at init");
                } else {
                    tracing::error!(
                        table = %self.table,
                        found = ?layout,
                        wanted = item::LAYOUT,
                        "the table is not marked with this version's layout: migrate it (docs/deploy.md)"
                    );
                }
            }
            Err(e) => tracing::warn!(
                latency_ms = ms,
                error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e),
                "could not open the DynamoDB connection at init; the first request will"
            ),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The key of a conversation's item.
    pub fn key(owner: &Owner, id: &ConversationId) -> Item {
        Item::from([
            (attr::PK.to_owned(), item::s(item::partition_key(owner, id))),
            (attr::SK.to_owned(), item::s(item::CONVERSATION_SK)),
        ])
    }

    /// A head (the old item of a refused write, or a read) as a visible conversation, if it is
    /// one: its own fields, the large ones empty when it has a body ([`split::head_from`]) — what
    /// writes check, never an answer.
    fn visible(old: Option<Item>, now: Timestamp) -> Result<Option<Conversation>, ApiError> {
        match old {
            Some(old) if item::is_visible(&old, now) => split::head_from(&old).map(Some),
            _ => Ok(None),
        }
    }

    /// The condition that a conversation item is visible at `now`: not past its `expireTime` nor,
    /// once soft-deleted, its `purgeTime`, to the microsecond. DynamoDB's TTL removes items only
    /// eventually and in whole seconds, so every write says this itself ([`item::is_visible`]
    /// is the same rule for reads).
    fn visible_at(e: &mut Expr, now: Timestamp) -> String {
        let (expire, purge) = (e.name(attr::EXPIRE), e.name(attr::PURGE));
        let now_v = e.value(item::n(now.micros()));
        format!(
            "(attribute_not_exists({expire}) OR {expire} > {now_v}) AND (attribute_not_exists({purge}) OR {purge} > {now_v})"
        )
    }

    /// Adds the conditions every write to an existing conversation shares: it exists and has not
    /// expired, the client's etags match (`updated_at` checked by DynamoDB in the write itself),
    /// and the new version is above the stored one.
    fn guard(
        e: &mut Expr,
        now: Timestamp,
        pre: &Preconditions,
        pinned: Option<Version>,
        new: Version,
    ) {
        let (pk, ver) = (e.name(attr::PK), e.name(attr::VERSION));
        let visible = Self::visible_at(e, now);
        // The conversation exists and is not past its expiry or purge time (TTL deletes lazily).
        e.condition(format!("attribute_exists({pk}) AND {visible}"));
        // Optimistic concurrency: the stored version equals every etag the client sent.
        for versions in pre.required_versions() {
            let placeholders: Vec<String> = versions
                .into_iter()
                .map(|v| e.value(item::n(v.map_or(-1, |v| v.0))))
                .collect();
            e.condition(format!("{ver} IN ({})", placeholders.join(", ")));
        }
        match pinned {
            // A version learnt from a refused write: nothing may have happened since.
            Some(v) if pre.pinned() != Some(v) => {
                let old = e.value(item::n(v.0));
                e.condition(format!("{ver} = {old}"));
            }
            Some(_) => {}
            // Versions never go back or repeat, even when clocks disagree.
            None => {
                let new_v = e.value(item::n(new.0));
                e.condition(format!("{ver} < {new_v}"));
            }
        }
        e.set(attr::VERSION, item::n(new.0));
    }

    /// Signs a conversation write with this call's random `token`: it becomes the newest of the
    /// item's last four writers' tokens ([`item::WRITER_SLOTS`]; the oldest falls off), and the
    /// write holds only while the token is not among them. So a call applies at most once: when
    /// DynamoDB applied an attempt whose answer was lost and the SDK sends it again, DynamoDB
    /// refuses the repeat even after other writes landed in between (a keyless update would
    /// otherwise apply again over a later writer's 200, a delete again after an undelete) — as
    /// long as fewer than four other signed writes came between (appends do not sign).
    fn sign(e: &mut Expr, token: &str) {
        let t = e.value(item::s(token));
        let slots: Vec<String> = item::WRITER_SLOTS.iter().map(|s| e.name(s)).collect();
        for slot in &slots {
            // Never this call twice.
            e.condition(format!("attribute_not_exists({slot}) OR {slot} <> {t}"));
        }
        let none = e.value(item::s("-"));
        for pair in slots.windows(2).rev() {
            let (newer, older) = (&pair[0], &pair[1]);
            e.set_clause(format!("{older} = if_not_exists({newer}, {none})"));
        }
        e.set_clause(format!("{} = {t}", slots[0]));
    }

    /// One conditional `UpdateItem` of a conversation item, signed with a
    /// random token of this call ([`Store::sign`]): when the refusal's old item carries the token,
    /// the refusal is this very call's earlier attempt, applied with its answer lost and sent
    /// again by the SDK — it is answered as written, with the item as it is now (this write and
    /// whatever came after it), not as refused and never applied twice.
    async fn try_update(&self, key: Item, mut e: Expr) -> Result<Attempt, ApiError> {
        let token = format!("{:016x}", uuid::Uuid::new_v4().as_u64_pair().0);
        Self::sign(&mut e, &token);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Attempt::Written(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(s))
                if matches!(s.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let UpdateItemError::ConditionalCheckFailedException(ccf) = s.into_err() else {
                    return Err(ApiError::internal("unreachable: matched above"));
                };
                Ok(match ccf.item {
                    Some(old) if item::written_by(&old, &token) => Attempt::Written(old),
                    old => Attempt::Refused(old),
                })
            }
            Err(other) => Err(classify(other)),
        }
    }

    /// The stored item of a conversation, if any (one consistent `GetItem`).
    async fn read(&self, owner: &Owner, id: &ConversationId) -> Result<Option<Item>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(owner, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }
}

/// Cancellation reasons of a transaction that mean throttling.
const THROTTLED: [&str; 2] = ["ThrottlingError", "ProvisionedThroughputExceeded"];

/// Sleeps a random time that grows with the attempt (full jitter, capped at 64 ms).
async fn backoff(attempt: usize) {
    let cap_ms = 1u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms * 1000)) as u64;
    tokio::time::sleep(StdDuration::from_micros(jitter)).await;
}

use expr::Expr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_keeps_items_while_they_fit_and_always_at_least_one() {
        assert_eq!(fitting([]), 0);
        assert_eq!(fitting([10, 20, 30]), 3);
        assert_eq!(fitting([MAX_PAGE_BYTES * 3, 1]), 1, "one huge item");
        let half = MAX_PAGE_BYTES / 2;
        assert_eq!(fitting([half, half, 1]), 2, "exactly the budget fits");
        assert_eq!(fitting([half, half + 1, 1]), 1);
    }
}
