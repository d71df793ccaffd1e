//! The DynamoDB store: one table, a conversation and its messages in one item collection, a
//! sparse index for listing by owner. Every write states its condition; a failed condition comes
//! back with the old item (`ALL_OLD`) and is translated here into the API's errors.

pub mod count;
pub mod expr;
pub mod item;
pub mod schema;
mod sdk;

use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update as TxUpdate, WriteRequest,
};

use crate::domain::conversation::{Conversation, Lifecycle, MAX_LABELS, NewConversation, Writable};
use crate::domain::etag::{Preconditions, Version};
use crate::domain::field_mask::{LabelsChange, Update};
use crate::domain::filter::{Filter, OrderBy, Term};
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::message::{Message, NewMessage};
use crate::domain::page_token::{PageToken, TokenKey};
use crate::domain::time::{Duration, Timestamp};
use crate::error::ApiError;
use item::{Item, attr};

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

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The filter.
    pub filter: Filter,
    /// The order.
    pub order: OrderBy,
    /// Whether soft-deleted conversations are included.
    pub show_deleted: bool,
    /// The page size, 1–1000.
    pub page_size: usize,
    /// Where to continue.
    pub page_token: Option<String>,
}

impl ListQuery {
    fn scope(&self) -> String {
        format!(
            "conversations|{}|{:?}|{}",
            self.filter.canonical(),
            self.order,
            self.show_deleted
        )
    }
}

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    token_key: TokenKey,
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
        }
    }

    /// Opens the connection to DynamoDB during a function's init, so that the first request
    /// finds it open: one eventually consistent `GetItem` of a key no conversation ever has
    /// ([`item::WARM_UP_KEY`]), which also resolves the credentials and the endpoint and loads
    /// the TLS roots. The IAM policy lets every function read that one key (template.yaml). A
    /// failure is logged and otherwise ignored: the first request then opens the connection.
    pub async fn warm_up(&self) {
        let started = std::time::Instant::now();
        let result = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::PK, item::s(item::WARM_UP_KEY))
            .key(attr::SK, item::s(item::CONVERSATION_SK))
            .projection_expression("#pk")
            .expression_attribute_names("#pk", attr::PK)
            .send()
            .await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(_) => tracing::debug!(latency_ms = ms, "DynamoDB connection opened at init"),
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

    /// The old item of a refused write as a visible conversation, if it is one.
    fn visible(old: Option<Item>, now: Timestamp) -> Result<Option<Conversation>, ApiError> {
        match old {
            Some(old) if item::is_visible(&old, now) => item::conversation_from(&old).map(Some),
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

    async fn try_update(&self, key: Item, e: Expr) -> Result<Attempt, ApiError> {
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
                Ok(Attempt::Refused(ccf.item))
            }
            Err(other) => Err(classify(other)),
        }
    }

    /// Creates a conversation; a taken id is a 409 unless it was taken by this same `requestId`
    /// or by this very request (an attempt whose answer was lost), in which case the conversation
    /// it created is returned.
    pub async fn create(
        &self,
        owner: &Owner,
        id: &ConversationId,
        request_id: Option<RequestId>,
        new: NewConversation,
    ) -> Result<Conversation, ApiError> {
        let now = Timestamp::now();
        let conversation =
            new.into_conversation(id.clone(), owner.clone(), request_id.clone(), now);
        let mut e = Expr::new();
        let (pk, expire, purge) = (e.name(attr::PK), e.name(attr::EXPIRE), e.name(attr::PURGE));
        let now_v = e.value(item::n(now.micros()));
        // An id is taken while its conversation is visible: a create never overwrites one, but an
        // expired or purged conversation is missing although TTL has not removed its item yet.
        // Its messages stay behind the old incarnation's keys; the purger deletes them.
        e.condition(format!(
            "attribute_not_exists({pk}) OR {expire} <= {now_v} OR {purge} <= {now_v}"
        ));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::conversation_item(&conversation)))
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(conversation),
            Err(SdkError::ServiceError(s))
                if matches!(s.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(ccf) = s.into_err() else {
                    return Err(ApiError::internal("unreachable: matched above"));
                };
                let old = ccf.item.as_ref().map(item::conversation_from).transpose()?;
                match old {
                    // A retry of the create that made it (AIP-155): its result, nothing new.
                    Some(old) if request_id.is_some() && old.request_id == request_id => Ok(old),
                    // The SDK's retry of this very write after its answer was lost: the item is
                    // the one this request wrote, every field equal down to the microsecond.
                    Some(old) if old == conversation => Ok(old),
                    _ => Err(ApiError::AlreadyExists(format!(
                        "{} already exists",
                        id.name()
                    ))),
                }
            }
            Err(other) => Err(classify(other)),
        }
    }

    /// Reads a conversation, soft-deleted ones included.
    pub async fn get(&self, owner: &Owner, id: &ConversationId) -> Result<Conversation, ApiError> {
        let item = self.read(owner, id).await?;
        Self::visible(item, Timestamp::now())?.ok_or_else(|| not_found(id))
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

    /// Updates the masked fields. With `upsert` (allowMissing) a missing conversation is created
    /// from the body instead; the flag says whether that happened.
    pub async fn update(
        &self,
        owner: &Owner,
        id: &ConversationId,
        update: &Update,
        pre: &Preconditions,
        upsert: Option<&Writable>,
    ) -> Result<(Conversation, bool), ApiError> {
        let label_sets = match &update.labels {
            LabelsChange::Keys(keys) => keys.iter().filter(|(_, v)| v.is_some()).count(),
            _ => 0,
        };
        if label_sets > MAX_LABELS {
            return Err(ApiError::field(
                "labels",
                "too_many",
                format!("a conversation holds at most {MAX_LABELS} labels"),
            ));
        }
        let mut pinned = pre.pinned();
        let mut counted_labels = false;
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let del = e.name(attr::DELETE);
            // Soft-deleted conversations are not updated (404, or 409 with allowMissing).
            e.condition(format!("attribute_not_exists({del})"));
            Self::write_update(&mut e, update, label_sets, counted_labels);
            let old = match self.try_update(Self::key(owner, id), e).await? {
                Attempt::Written(new) => return Ok((item::conversation_from(&new)?, false)),
                Attempt::Refused(old) => Self::visible(old, now)?,
            };
            let Some(old) = old else {
                let Some(body) = upsert.filter(|_| pre.on_missing().is_none()) else {
                    // allowMissing creates nothing when a precondition names a version.
                    return Err(missing(id, pre));
                };
                let new = NewConversation::try_from(body.clone())?;
                match self.create(owner, id, None, new).await {
                    Ok(created) => return Ok((created, true)),
                    // Created meanwhile by someone else: update it instead.
                    Err(ApiError::AlreadyExists(_)) => continue,
                    Err(e) => return Err(e),
                }
            };
            if old.is_deleted() {
                return Err(match upsert {
                    Some(_) => ApiError::AlreadyExists(format!(
                        "{} is soft-deleted; undelete it first",
                        id.name()
                    )),
                    None => not_found(id),
                });
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            if let Some(required) = &update.profile_must_be
                && old.conversation_profile != *required
            {
                return Err(ApiError::InvalidArgument(
                    "conversationProfile is immutable after create".into(),
                ));
            }
            if let LabelsChange::Keys(keys) = &update.labels {
                let mut labels = old.labels.clone();
                for (k, v) in keys {
                    match v {
                        Some(v) => labels.insert(k.clone(), v.clone()),
                        None => labels.remove(k),
                    };
                }
                if labels.len() > MAX_LABELS {
                    return Err(ApiError::field(
                        "labels",
                        "too_many",
                        format!("a conversation holds at most {MAX_LABELS} labels"),
                    ));
                }
                // The conservative size condition refused a valid update: redo it pinned to
                // the version just seen, with the exact count known.
                counted_labels = true;
            }
            pinned = Some(old.version);
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    fn write_update(e: &mut Expr, u: &Update, label_sets: usize, counted_labels: bool) {
        fn text(e: &mut Expr, attribute: &str, value: &Option<Option<String>>) {
            match value {
                Some(Some(v)) => e.set(attribute, item::s(v.as_str())),
                Some(None) => e.remove(attribute),
                None => {}
            }
        }
        text(e, attr::DISPLAY_NAME, &u.display_name);
        text(e, attr::CATEGORY, &u.category);
        text(e, attr::LANGUAGE, &u.language_code);
        if let Some(agents) = &u.agents {
            e.set(attr::AGENTS, item::list(agents));
        }
        if let Some(required) = &u.profile_must_be {
            let p = e.name(attr::PROFILE);
            // conversationProfile is immutable: the mask may only repeat its current value.
            match required {
                Some(v) => {
                    let v = e.value(item::s(v.as_str()));
                    e.condition(format!("{p} = {v}"));
                }
                None => e.condition(format!("attribute_not_exists({p})")),
            }
        }
        match &u.labels {
            LabelsChange::Keep => {}
            LabelsChange::Replace(labels) => e.set(attr::LABELS, item::labels(labels)),
            LabelsChange::Keys(keys) => {
                if label_sets > 0 && !counted_labels {
                    // At most 64 labels after the update, counting every set key as new.
                    let l = e.name(attr::LABELS);
                    let limit = e.value(item::n(MAX_LABELS - label_sets));
                    e.condition(format!("size({l}) <= {limit}"));
                }
                for (k, v) in keys {
                    match v {
                        Some(v) => e.set_entry(attr::LABELS, k, item::s(v.as_str())),
                        None => e.remove_entry(attr::LABELS, k),
                    }
                }
            }
        }
        match &u.metadata {
            Some(Some(m)) => e.set(attr::METADATA, item::json(m)),
            Some(None) => e.remove(attr::METADATA),
            None => {}
        }
        if let Some(stage) = u.stage {
            e.set(attr::STAGE, item::s(stage.as_str()));
        }
        match u.start_time {
            Some(Some(t)) => e.set(attr::START, item::n(t.micros())),
            Some(None) => e.remove(attr::START),
            None => {}
        }
        match u.expire_time {
            Some(Some(t)) => {
                e.set(attr::EXPIRE, item::n(t.micros()));
                e.set(attr::EXPIRE_AT, item::n(t.epoch_seconds_ceil()));
                e.set(attr::TTL, item::n(t.epoch_seconds_ceil()));
            }
            Some(None) => {
                e.remove(attr::EXPIRE);
                e.remove(attr::EXPIRE_AT);
                e.remove(attr::TTL);
            }
            None => {}
        }
    }

    /// Soft-deletes a conversation (AIP-164). With `allow_missing`, a missing or already deleted
    /// conversation is a success: the latter is returned as it is, the former as `None`.
    pub async fn delete(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
        allow_missing: bool,
    ) -> Result<Option<Conversation>, ApiError> {
        let mut pinned = pre.pinned();
        let mut ttl_at_expiry = false;
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let purge = now
                .plus(Duration::THIRTY_DAYS)
                .ok_or_else(|| ApiError::internal("purge time overflow"))?;
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let del = e.name(attr::DELETE);
            // Only a live conversation can be deleted.
            e.condition(format!("attribute_not_exists({del})"));
            e.set(attr::DELETE, item::n(now.micros()));
            e.set(attr::PURGE, item::n(purge.micros()));
            // TTL removes it at the earlier of purgeTime and expireTime: a soft delete never
            // postpones the expiry. DynamoDB has no min(), so the first attempt assumes no
            // earlier expiry and says so in its condition; if the conversation expires first, the
            // retry (pinned to the version that refusal returned) leaves the TTL at the expiry.
            if ttl_at_expiry {
                let (ttl, expire_at) = (e.name(attr::TTL), e.name(attr::EXPIRE_AT));
                e.set_clause(format!("{ttl} = {expire_at}"));
            } else {
                let expire = e.name(attr::EXPIRE);
                let purge_v = e.value(item::n(purge.micros()));
                e.condition(format!(
                    "attribute_not_exists({expire}) OR {expire} >= {purge_v}"
                ));
                e.set(attr::TTL, item::n(purge.epoch_seconds_ceil()));
            }
            let old = match self.try_update(Self::key(owner, id), e).await? {
                Attempt::Written(new) => return item::conversation_from(&new).map(Some),
                Attempt::Refused(old) => Self::visible(old, now)?,
            };
            match old {
                None if allow_missing && pre.on_missing().is_none() => return Ok(None),
                None => return Err(missing(id, pre)),
                Some(old) if old.is_deleted() => {
                    return if allow_missing {
                        Ok(Some(old))
                    } else {
                        Err(not_found(id))
                    };
                }
                Some(old) => {
                    pre.check(old.version)
                        .map_err(|source_kind| ApiError::Stale {
                            resource: id.name(),
                            source_kind,
                        })?;
                    ttl_at_expiry = old.expire_time.is_some_and(|t| t < purge);
                    pinned = Some(old.version);
                }
            }
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// Restores a soft-deleted conversation; a live one is a 409 `ALREADY_EXISTS`.
    pub async fn undelete(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
    ) -> Result<Conversation, ApiError> {
        let mut pinned = pre.pinned();
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let del = e.name(attr::DELETE);
            // Only a soft-deleted conversation can be undeleted.
            e.condition(format!("attribute_exists({del})"));
            e.remove(attr::DELETE);
            e.remove(attr::PURGE);
            // The TTL goes back to the expiry, or to "never" when there is none.
            let (ttl, expire_at) = (e.name(attr::TTL), e.name(attr::EXPIRE_AT));
            let never = e.value(item::n(item::NEVER));
            e.set_clause(format!("{ttl} = if_not_exists({expire_at}, {never})"));
            let old = match self.try_update(Self::key(owner, id), e).await? {
                Attempt::Written(new) => return item::conversation_from(&new),
                Attempt::Refused(old) => Self::visible(old, now)?,
            };
            let Some(old) = old else {
                return Err(missing(id, pre));
            };
            if !old.is_deleted() {
                return Err(ApiError::AlreadyExists(format!(
                    "{} is not deleted",
                    id.name()
                )));
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            pinned = Some(old.version);
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// Completes a conversation; completing a completed one returns it unchanged.
    pub async fn complete(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
    ) -> Result<Conversation, ApiError> {
        let mut pinned = pre.pinned();
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            let (del, life) = (e.name(attr::DELETE), e.name(attr::LIFECYCLE));
            let in_progress = e.value(item::s(Lifecycle::InProgress.as_str()));
            // Only a live conversation in progress is completed; a completed one stays as it is.
            e.condition(format!(
                "attribute_not_exists({del}) AND {life} = {in_progress}"
            ));
            e.set(attr::LIFECYCLE, item::s(Lifecycle::Completed.as_str()));
            e.set(attr::END, item::n(now.micros()));
            let old = match self.try_update(Self::key(owner, id), e).await? {
                Attempt::Written(new) => return item::conversation_from(&new),
                Attempt::Refused(old) => Self::visible(old, now)?,
            };
            let Some(old) = old else {
                return Err(missing(id, pre));
            };
            if old.is_deleted() {
                return Err(not_found(id));
            }
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            if old.lifecycle == Lifecycle::Completed {
                return Ok(old);
            }
            pinned = Some(old.version);
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// Appends a message: one consistent read, then one transaction that writes the message and
    /// moves the conversation's count and version only if that read is still current.
    pub async fn append(
        &self,
        owner: &Owner,
        id: &ConversationId,
        new: NewMessage,
        pre: &Preconditions,
    ) -> Result<Message, ApiError> {
        let mut seen: Option<Item> = None;
        for attempt in 0..MAX_RETRIES {
            let current = match seen.take() {
                Some(item) => Some(item),
                None => self.read(owner, id).await?,
            };
            let now = Timestamp::now();
            let Some(conversation) = Self::visible(current, now)? else {
                return Err(missing(id, pre));
            };
            if conversation.is_deleted() {
                return Err(not_found(id));
            }
            pre.check(conversation.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: id.name(),
                    source_kind,
                })?;
            if conversation.lifecycle == Lifecycle::Completed {
                return Err(ApiError::FailedPrecondition(format!(
                    "{} is COMPLETED: no more messages can be appended",
                    id.name()
                )));
            }
            let message = Message {
                conversation: id.clone(),
                order: conversation.message_count + 1,
                kind: new.kind,
                content: new.content.clone(),
                metadata: new.metadata.clone(),
                create_time: now,
            };
            match self
                .append_transaction(owner, &conversation, &message, now)
                .await?
            {
                None => return Ok(message),
                Some(refreshed) => seen = refreshed,
            }
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(format!(
            "too many concurrent appends to {}; retry",
            id.name()
        )))
    }

    /// Runs the append transaction. `None`: written. `Some(item)`: the conversation changed
    /// since it was read (with its current item when DynamoDB returned it).
    async fn append_transaction(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        message: &Message,
        now: Timestamp,
    ) -> Result<Option<Option<Item>>, ApiError> {
        let new = Version::next(now, Some(conversation.version));
        let mut e = Expr::new();
        let ver = e.name(attr::VERSION);
        let read = e.value(item::n(conversation.version.0));
        // The read is still current: same version, so same count, state and etag.
        e.condition(format!("{ver} = {read}"));
        // And the conversation has not expired since it was read.
        let visible = Self::visible_at(&mut e, now);
        e.condition(visible);
        e.set(attr::COUNT, item::n(message.order));
        e.set(attr::LAST_USED, item::n(now.micros()));
        e.set(attr::VERSION, item::n(new.0));
        let update = TxUpdate::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(owner, &conversation.id)))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(ApiError::internal)?;
        let mut m = Expr::new();
        let pk = m.name(attr::PK);
        // A message is written once: its order is never reused.
        m.condition(format!("attribute_not_exists({pk})"));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item::message_item(
                owner,
                conversation.create_time,
                message,
            )))
            .set_condition_expression(m.condition_expression())
            .set_expression_attribute_names(m.names())
            .build()
            .map_err(ApiError::internal)?;
        // The SDK fills in a ClientRequestToken from a generator seeded with the clock, which
        // two instances started in the same tick share: their appends then carry equal tokens and
        // DynamoDB refuses the second (IdempotentParameterMismatch). A token from the OS's random
        // source, made here, is unique; the SDK's retries of this call reuse it, so an attempt
        // whose answer was lost is not applied twice.
        let result = self
            .client
            .transact_write_items()
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(s))
                if matches!(
                    s.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancel) = s.into_err()
                else {
                    return Err(ApiError::internal("unreachable: matched above"));
                };
                let reasons = cancel.cancellation_reasons();
                let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
                match (code(0), code(1)) {
                    ("ConditionalCheckFailed", _) => {
                        Ok(Some(reasons.first().and_then(|r| r.item().cloned())))
                    }
                    ("TransactionConflict", _) | (_, "TransactionConflict") => Ok(Some(None)),
                    (a, b) if THROTTLED.contains(&a) || THROTTLED.contains(&b) => {
                        Err(ApiError::Throttled(Box::new(cancel)))
                    }
                    _ => Err(ApiError::Internal(Box::new(cancel))),
                }
            }
            Err(other) => Err(classify(other)),
        }
    }

    /// Lists the caller's conversations: one `Query` of the owner index per page.
    pub async fn list(
        &self,
        owner: &Owner,
        query: &ListQuery,
    ) -> Result<Page<Conversation>, ApiError> {
        let scope = query.scope();
        let start = match &query.page_token {
            Some(text) => Some(PageToken::decode(text, &self.token_key, owner, &scope)?),
            None => None,
        };
        let now = Timestamp::now();
        let mut e = Expr::new();
        let gpk = e.name(attr::GSI_PK);
        let owner_v = e.value(item::s(owner.as_str()));
        let mut key_condition = format!("{gpk} = {owner_v}");
        let from = query
            .filter
            .created_from
            .map(|m| format!("{:018}", m.max(0)));
        let to = match query.filter.created_to {
            Some(m) if m < 0 => {
                return Ok(Page {
                    items: Vec::new(),
                    next_page_token: None,
                });
            }
            // `$` sorts after `#`: every key of that microsecond is at or below it.
            Some(m) => Some(format!("{m:018}$")),
            None => None,
        };
        match (from, to) {
            (Some(lo), Some(hi)) if lo > hi => {
                return Ok(Page {
                    items: Vec::new(),
                    next_page_token: None,
                });
            }
            (Some(lo), Some(hi)) => {
                let (gsk, lo, hi) = (
                    e.name(attr::GSI_SK),
                    e.value(item::s(lo)),
                    e.value(item::s(hi)),
                );
                key_condition.push_str(&format!(" AND {gsk} BETWEEN {lo} AND {hi}"));
            }
            (Some(lo), None) => {
                let (gsk, lo) = (e.name(attr::GSI_SK), e.value(item::s(lo)));
                key_condition.push_str(&format!(" AND {gsk} >= {lo}"));
            }
            (None, Some(hi)) => {
                let (gsk, hi) = (e.name(attr::GSI_SK), e.value(item::s(hi)));
                key_condition.push_str(&format!(" AND {gsk} <= {hi}"));
            }
            (None, None) => {}
        }
        let visible = Self::visible_at(&mut e, now);
        e.condition(visible);
        if !query.show_deleted {
            let del = e.name(attr::DELETE);
            e.condition(format!("attribute_not_exists({del})"));
        }
        for term in &query.filter.terms {
            let clause = match term {
                Term::Lifecycle(l) => (e.name(attr::LIFECYCLE), "=", e.value(item::s(l.as_str()))),
                Term::Stage(s) => (e.name(attr::STAGE), "=", e.value(item::s(s.as_str()))),
                Term::Category(c) => (e.name(attr::CATEGORY), "=", e.value(item::s(c.as_str()))),
                Term::Label(k, v) => (
                    format!("{}.{}", e.name(attr::LABELS), e.name(k)),
                    "=",
                    e.value(item::s(v.as_str())),
                ),
                Term::Agent(a) => {
                    let (agents, a) = (e.name(attr::AGENTS), e.value(item::s(a.as_str())));
                    e.condition(format!("contains({agents}, {a})"));
                    continue;
                }
            };
            e.condition(format!("{} {} {}", clause.0, clause.1, clause.2));
        }
        let exclusive_start = match &start {
            Some(token) => Some(self.index_start_key(owner, &token.position)?),
            None => None,
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(schema::OWNER_INDEX)
            .key_condition_expression(key_condition)
            .set_filter_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(query.order == OrderBy::CreateTimeAsc)
            .limit(i32::try_from(query.page_size + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(exclusive_start)
            .send()
            .await
            .map_err(classify)?;
        let mut items = out.items.unwrap_or_default();
        let position = |i: &Item| i.get(attr::GSI_SK).and_then(|v| v.as_s().ok()).cloned();
        let mut cut = items.len() > query.page_size;
        items.truncate(query.page_size);
        let mut conversations = items
            .iter()
            .map(item::conversation_from)
            .collect::<Result<Vec<_>, _>>()?;
        // Measuring each item by rendering it costs as much as the answer does: only a page
        // whose stored size could render past the budget is measured.
        let could_overflow = items.iter().map(item::rendered_bound).sum::<usize>() > MAX_PAGE_BYTES;
        let keep = if could_overflow {
            fitting(conversations.iter().map(|c| rendered_len(&c.to_json())))
        } else {
            conversations.len()
        };
        if keep < conversations.len() {
            conversations.truncate(keep);
            items.truncate(keep);
            cut = true;
        }
        let next = if cut {
            items.last().and_then(position)
        } else {
            out.last_evaluated_key.as_ref().and_then(position)
        };
        Ok(Page {
            items: conversations,
            next_page_token: next
                .map(|position| PageToken { position }.encode(&self.token_key, owner, &scope)),
        })
    }

    fn index_start_key(&self, owner: &Owner, position: &str) -> Result<Item, ApiError> {
        let invalid = || ApiError::InvalidArgument("pageToken is invalid".into());
        let (micros, id) = position.split_once('#').ok_or_else(invalid)?;
        if micros.len() != 18 || !micros.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let id = ConversationId::parse(id).map_err(|_| invalid())?;
        let mut key = Self::key(owner, &id);
        key.insert(attr::GSI_PK.into(), item::s(owner.as_str()));
        key.insert(attr::GSI_SK.into(), item::s(position));
        Ok(key)
    }

    /// Lists a conversation's messages in ascending order: one `Query` per page. The first page
    /// reads the conversation item too, which sorts before its messages, to check it is live;
    /// a later page reads it with a `GetItem` sent alongside its `Query` (one round trip), so
    /// that it too is 404 once the conversation was deleted, expired, or purged and created
    /// again (a new incarnation: other message keys).
    pub async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        page_size: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Message>, ApiError> {
        let scope = format!("messages|{}", id.as_str());
        let start = match page_token {
            Some(text) => Some(PageToken::decode(text, &self.token_key, owner, &scope)?),
            None => None,
        };
        let mut e = Expr::new();
        let pk = e.name(attr::PK);
        let pk_v = e.value(item::s(item::partition_key(owner, id)));
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(true);
        let prefix = match &start {
            Some(token) => {
                let prefix = token
                    .position
                    .rsplit_once('#')
                    .map(|(p, _)| format!("{p}#"))
                    .filter(|p| p.starts_with("M#"));
                let prefix = prefix
                    .ok_or_else(|| ApiError::InvalidArgument("pageToken is invalid".into()))?;
                let (sk, prefix_v) = (e.name(attr::SK), e.value(item::s(prefix.as_str())));
                request = request
                    .key_condition_expression(format!(
                        "{pk} = {pk_v} AND begins_with({sk}, {prefix_v})"
                    ))
                    .exclusive_start_key(attr::PK, item::s(item::partition_key(owner, id)))
                    .exclusive_start_key(attr::SK, item::s(token.position.as_str()))
                    .limit(i32::try_from(page_size + 1).unwrap_or(i32::MAX));
                Some(prefix)
            }
            None => {
                request = request
                    .key_condition_expression(format!("{pk} = {pk_v}"))
                    .limit(i32::try_from(page_size + 2).unwrap_or(i32::MAX));
                None
            }
        };
        let query = request
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .send();
        let out = match &prefix {
            None => query.await.map_err(classify)?,
            Some(prefix) => {
                let (out, header) = futures_util::future::join(query, self.read(owner, id)).await;
                let (out, header) = (out.map_err(classify)?, header?);
                let live = Self::visible(header, Timestamp::now())?
                    .filter(|c| !c.is_deleted())
                    .filter(|c| item::message_prefix(c.create_time) == *prefix);
                if live.is_none() {
                    return Err(not_found(id));
                }
                out
            }
        };
        let items = out.items.unwrap_or_default();
        // As in `list`: messages are measured only when the page could pass the budget.
        let could_overflow = items.iter().map(item::rendered_bound).sum::<usize>() > MAX_PAGE_BYTES;
        let mut items = items.into_iter();
        let more_in_table = out.last_evaluated_key.is_some();
        let prefix = match prefix {
            Some(p) => p,
            None => {
                let header = items
                    .next()
                    .filter(|i| item::sort_key(i).is_ok_and(|sk| sk == item::CONVERSATION_SK));
                let conversation = Self::visible(header, Timestamp::now())?
                    .filter(|c| !c.is_deleted())
                    .ok_or_else(|| not_found(id))?;
                item::message_prefix(conversation.create_time)
            }
        };
        let mut messages = Vec::new();
        let mut last_key = None;
        let mut left_incarnation = false;
        let mut bytes = 0;
        for i in items {
            let key = item::sort_key(&i)?.to_owned();
            if !key.starts_with(&prefix) {
                // An earlier incarnation's leftovers: this one's messages end here.
                left_incarnation = true;
                break;
            }
            let message = item::message_from(id, &i)?;
            if could_overflow {
                bytes += rendered_len(&message.to_json());
            }
            let over_budget = !messages.is_empty() && bytes > MAX_PAGE_BYTES;
            if messages.len() == page_size || over_budget {
                // More than the page holds: the page ends at the last kept message.
                return Ok(Page {
                    next_page_token: last_key.map(|position| {
                        PageToken { position }.encode(&self.token_key, owner, &scope)
                    }),
                    items: messages,
                });
            }
            messages.push(message);
            last_key = Some(key);
        }
        let next = if more_in_table && !left_incarnation {
            last_key
        } else {
            None
        };
        Ok(Page {
            items: messages,
            next_page_token: next
                .map(|position| PageToken { position }.encode(&self.token_key, owner, &scope)),
        })
    }
}

impl Store {
    /// Deletes the messages of one incarnation of a conversation that nothing can reach any more
    /// (the stream purger): one consistent keys-only `Query` per page and `BatchWriteItem`s of 25.
    /// Returns how many messages it deleted. Idempotent: a retried purge deletes what is left.
    pub async fn purge_messages(
        &self,
        partition: &str,
        incarnation: Timestamp,
    ) -> Result<usize, ApiError> {
        let prefix = item::message_prefix(incarnation);
        let mut deleted = 0;
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::new();
            let (pk, sk) = (e.name(attr::PK), e.name(attr::SK));
            let (pk_v, prefix_v) = (
                e.value(item::s(partition)),
                e.value(item::s(prefix.as_str())),
            );
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!(
                    "{pk} = {pk_v} AND begins_with({sk}, {prefix_v})"
                ))
                .projection_expression(format!("{pk}, {sk}"))
                // Consistent: a message appended just before its conversation expired is seen.
                .consistent_read(true)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            let keys = out.items.unwrap_or_default();
            for chunk in keys.chunks(25) {
                deleted += chunk.len();
                self.delete_keys(chunk.to_vec()).await?;
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(deleted),
            }
        }
    }

    async fn delete_keys(&self, keys: Vec<Item>) -> Result<(), ApiError> {
        let mut pending: Vec<WriteRequest> = keys
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        for attempt in 0..MAX_RETRIES {
            if pending.is_empty() {
                return Ok(());
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(self.table.clone(), std::mem::take(&mut pending))
                .send()
                .await
                .map_err(classify)?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(
            "DynamoDB left deletes unprocessed; the purge will be retried".into(),
        ))
    }
}

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
    use crate::domain::etag::{Etag, IfMatch};
    use crate::domain::field_mask::{MAX_MASK_PATHS, UpdateMask};

    /// DynamoDB's limit on each expression string.
    const EXPRESSION_LIMIT: usize = 4096;

    #[test]
    fn the_largest_update_a_client_can_send_stays_within_dynamodb_s_expression_limit() {
        // Every other path, 64 label keys set (more is a 422) and removals up to the mask's bound.
        let mut paths = vec![
            "displayName",
            "category",
            "agents",
            "conversationProfile",
            "languageCode",
            "metadata",
            "conversationStage",
            "startTime",
            "expireTime",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        let sets = MAX_LABELS;
        let removals = MAX_MASK_PATHS - paths.len() - sets;
        paths.extend((0..sets + removals).map(|i| format!("labels.k{i}")));
        let mask = UpdateMask::parse(&paths.join(",")).expect("the largest mask");
        let labels: serde_json::Map<String, serde_json::Value> =
            (0..sets).map(|i| (format!("k{i}"), "v".into())).collect();
        let now = Timestamp::now();
        let body = serde_json::json!({"displayName": "d", "category": "c", "agents": ["a"], "conversationProfile": "p",
            "languageCode": "en", "metadata": {"m": 1}, "conversationStage": "HUMAN_ASSIST_STAGE",
            "startTime": "2026-01-01T00:00:00Z", "ttl": "60s", "labels": labels});
        let body = Writable::from_json(body.as_object().expect("object"), now).expect("valid");
        let update = Update::new(&mask, &body).expect("valid");
        // The most preconditions: 50 If-Match tags and a body etag.
        let tags = (0..50).map(|i| Etag::Version(Version(i))).collect();
        let pre = Preconditions {
            body: Some(Etag::Version(Version(1))),
            if_match: Some(IfMatch::Tags(tags)),
        };
        for (counted, pinned) in [(false, None), (true, Some(Version(7)))] {
            let mut e = Expr::new();
            Store::guard(&mut e, now, &pre, pinned, Version::next(now, pinned));
            let del = e.name(attr::DELETE);
            e.condition(format!("attribute_not_exists({del})"));
            Store::write_update(&mut e, &update, sets, counted);
            let update_len = e.update_expression().expect("an update").len();
            let condition_len = e.condition_expression().expect("a condition").len();
            assert!(
                update_len < EXPRESSION_LIMIT,
                "update expression {update_len} bytes"
            );
            assert!(
                condition_len < EXPRESSION_LIMIT,
                "condition expression {condition_len} bytes"
            );
        }
    }

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
