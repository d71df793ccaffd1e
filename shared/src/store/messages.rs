//! A conversation's messages: append (one read, one transaction), get one by order, list in
//! either order and by order range, the newest for the `FULL` view, and the purge of what an
//! earlier conversation of the same id left behind. Message keys are
//! `M#{order}#{incarnation}` ([`item::message_sort_key`]): an order range is a key range, and
//! every read keeps only the items of the conversation's own incarnation.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update as TxUpdate, WriteRequest,
};

use super::expr::Expr;
use super::item::{self, Item, attr};
use super::{
    MAX_PAGE_BYTES, MAX_RETRIES, Page, Store, THROTTLED, backoff, classify, missing, not_found,
    rendered_len,
};
use crate::domain::conversation::{Conversation, Lifecycle};
use crate::domain::etag::{Preconditions, Version};
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::message::{MAX_ORDER, Message, NewMessage};
use crate::domain::message_query::{MessageFilter, MessageOrder};
use crate::domain::message_update::MessageUpdate;
use crate::domain::page_token::PageToken;
use crate::domain::time::Timestamp;
use crate::error::ApiError;

/// What to list of a conversation's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageQuery {
    /// The order.
    pub order: MessageOrder,
    /// The order range and type.
    pub filter: MessageFilter,
    /// The page size, 1–1000.
    pub page_size: usize,
    /// Where to continue.
    pub page_token: Option<String>,
}

/// An idempotent call: its key, and a digest of what it asks for (the same key with other
/// messages is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The key.
    pub request_id: RequestId,
    /// SHA-256 of the call's kind and its messages (canonical JSON), hex.
    pub fingerprint: String,
}

impl Idempotency {
    /// The idempotency of a call of `kind` (`append`, `batch`) appending `messages`.
    pub fn of(request_id: &RequestId, kind: &str, messages: &[NewMessage]) -> Self {
        use sha2::{Digest, Sha256};
        let body = serde_json::json!({
            "kind": kind,
            "messages": messages.iter().map(NewMessage::fingerprint).collect::<Vec<_>>(),
        });
        let digest = Sha256::digest(crate::domain::body::canonical(&body).as_bytes());
        Self {
            request_id: request_id.clone(),
            fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// How an append's transaction ended when it did not commit.
enum Cancelled {
    /// It committed.
    No,
    /// The key's marker is there: a repeat, with the marker.
    Repeat(Item),
    /// The conversation changed since it was read (with its current item, when DynamoDB gave it).
    Changed(Option<Item>),
}

/// DynamoDB's limits on one `TransactWriteItems`.
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

impl MessageQuery {
    fn scope(&self, id: &ConversationId) -> String {
        format!(
            "messages|{}|{:?}|{}",
            id.as_str(),
            self.order,
            self.filter.canonical()
        )
    }
}

/// Where a page of messages continues: the incarnation it was read from, and the last key read.
/// The incarnation travels apart from the key because the last key read may be an earlier
/// incarnation's leftover.
fn position(incarnation: Timestamp, sort_key: &str) -> String {
    format!("{}|{sort_key}", incarnation.micros())
}

fn from_position(text: &str, filter: &MessageFilter) -> Result<(i64, String), ApiError> {
    let invalid = || ApiError::InvalidArgument("pageToken is invalid".into());
    let (incarnation, sort_key) = text.split_once('|').ok_or_else(invalid)?;
    let incarnation: i64 = incarnation.parse().map_err(|_| invalid())?;
    let (order, _) = item::message_key_parts(sort_key).ok_or_else(invalid)?;
    if !(filter.from..=filter.to).contains(&order) {
        return Err(invalid());
    }
    Ok((incarnation, sort_key.to_owned()))
}

/// How many more `Query`s one page of messages (or the `FULL` view) may make to read past an
/// earlier conversation's leftovers; past them it answers a short page (with a token).
const MAX_READS_ON: usize = 8;

/// Where a read of a conversation's messages goes on after it met an earlier conversation's
/// leftovers: the rest of the order range `from..=to`, clipped to the orders the live
/// conversation holds (`1..=messageCount` of its incarnation), as the key range and the key to
/// start after (none: the range's first key). `None` when nothing of the live conversation can
/// be left in it.
fn read_on(
    (from, to): (u64, u64),
    live: &Conversation,
    descending: bool,
    last_read: &str,
) -> Option<(String, String, Option<String>)> {
    read_on_within(
        (from, to.min(live.message_count)),
        live.create_time,
        descending,
        last_read,
    )
}

/// [`read_on`] within `from..=top`, the live conversation's orders of the range, of
/// `incarnation`.
fn read_on_within(
    (from, top): (u64, u64),
    incarnation: Timestamp,
    descending: bool,
    last_read: &str,
) -> Option<(String, String, Option<String>)> {
    if from > top {
        return None;
    }
    let (lo, hi) = item::message_range(from, top);
    if descending {
        // Leftovers above the live conversation's orders were all that was read: start at the
        // top of what it holds.
        let after = (last_read < hi.as_str()).then(|| last_read.to_owned());
        Some((lo, hi, after))
    } else {
        let live_last = item::message_sort_key(incarnation, top);
        (last_read < live_last.as_str()).then(|| {
            let after = (last_read > lo.as_str()).then(|| last_read.to_owned());
            (lo, hi, after)
        })
    }
}

/// DynamoDB refuses a transaction of more than 100 items or 4 MB: refused here first, as a 400
/// before any write (the body and batch limits keep every request below both — 52 items, under
/// 2 MB — but a 500 must never be the way to find out).
fn within_transaction_limits(items: usize, bytes: usize) -> Result<(), ApiError> {
    if items <= MAX_TRANSACTION_ITEMS && bytes <= MAX_TRANSACTION_BYTES {
        return Ok(());
    }
    Err(ApiError::InvalidArgument(format!(
        "this batch would need a transaction of {items} items and about {bytes} bytes; DynamoDB \
         allows {MAX_TRANSACTION_ITEMS} items and {MAX_TRANSACTION_BYTES} bytes: send fewer or \
         smaller messages"
    )))
}

/// Refuses a message whose item would pass DynamoDB's item limit (400 KB, names and values):
/// each field of a message has its own limit, but together — content, metadata and up to 32 tool
/// calls' arguments, numbers counted as re-serialised (`1e15` is stored as
/// `1000000000000000.0`) — they can make a larger item, which DynamoDB would refuse with a
/// `ValidationException` (a 500). A 400 before the write instead, naming the batch's message.
fn fits_in_an_item(stored: &Item, index: Option<usize>) -> Result<(), ApiError> {
    let size = item::stored_size(stored);
    if size <= item::MAX_ITEM_BYTES {
        return Ok(());
    }
    let which = index.map_or_else(|| "the message".to_owned(), |i| format!("messages[{i}]"));
    Err(ApiError::InvalidArgument(format!(
        "{which} would be stored as {size} bytes, and DynamoDB stores at most 400 KB \
         ({} bytes) per message: its content, metadata and tool calls together (arguments as \
         re-serialised JSON) must fit; send less or split it over several messages",
        item::MAX_ITEM_BYTES
    )))
}

impl Store {
    /// Appends one message: see [`Store::append_messages`].
    pub async fn append(
        &self,
        owner: &Owner,
        id: &ConversationId,
        new: NewMessage,
        pre: &Preconditions,
        request_id: Option<&RequestId>,
    ) -> Result<Message, ApiError> {
        let key = request_id.map(|r| Idempotency::of(r, "append", std::slice::from_ref(&new)));
        let mut appended = self
            .append_messages(owner, id, &[new], pre, key.as_ref())
            .await?;
        appended
            .pop()
            .ok_or_else(|| ApiError::internal("an append answered no message"))
    }

    /// Appends messages, all or none, with consecutive orders: one consistent read of the
    /// conversation (with the idempotency marker, in one `BatchGetItem`, when the call has a key),
    /// then one transaction that moves the conversation's count and version only if that read is
    /// still current, puts every message (each key written once: an order is never reused), and
    /// puts the marker (written once per key and incarnation). A repeated key answers what its
    /// first call appended: from the marker, with one `Query` of those messages.
    pub async fn append_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        news: &[NewMessage],
        pre: &Preconditions,
        key: Option<&Idempotency>,
    ) -> Result<Vec<Message>, ApiError> {
        // Every message's item within DynamoDB's limit, measured before any request: the item
        // of the highest order there can be is the largest this message can make.
        let probe = Timestamp::now();
        for (index, new) in news.iter().enumerate() {
            let largest = Message::appended(id.clone(), MAX_ORDER, new, probe);
            let which = (news.len() > 1).then_some(index);
            fits_in_an_item(&item::message_item(owner, probe, &largest), which)?;
        }
        let mut seen: Option<(Option<Item>, Option<Item>)> = None;
        for attempt in 0..MAX_RETRIES {
            let (current, marker) = match seen.take() {
                Some(read) => read,
                None => self.read_for_append(owner, id, key).await?,
            };
            let now = Timestamp::now();
            let Some(conversation) = Self::visible(current, now)? else {
                return Err(missing(id, pre));
            };
            if conversation.is_deleted() {
                return Err(not_found(id));
            }
            if let (Some(key), Some(marker)) = (key, marker)
                && item::marker_incarnation(&marker) == Some(conversation.create_time.micros())
            {
                return self.repeated(owner, &conversation, key, &marker).await;
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
            let messages: Vec<Message> = news
                .iter()
                .zip(conversation.message_count + 1..)
                .map(|(new, order)| Message::appended(id.clone(), order, new, now))
                .collect();
            match self
                .append_transaction(owner, &conversation, &messages, key, now)
                .await?
            {
                Cancelled::No => return Ok(messages),
                Cancelled::Repeat(marker) => {
                    let key = key.ok_or_else(|| ApiError::internal("a marker without a key"))?;
                    return self.repeated(owner, &conversation, key, &marker).await;
                }
                Cancelled::Changed(refreshed) => seen = refreshed.map(|item| (Some(item), None)),
            }
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(format!(
            "too many concurrent appends to {}; retry",
            id.name()
        )))
    }

    /// The conversation, and the call's idempotency marker when it has a key: one consistent
    /// `GetItem`, or one consistent `BatchGetItem` of both.
    async fn read_for_append(
        &self,
        owner: &Owner,
        id: &ConversationId,
        key: Option<&Idempotency>,
    ) -> Result<(Option<Item>, Option<Item>), ApiError> {
        let Some(key) = key else {
            return Ok((self.read(owner, id).await?, None));
        };
        let conversation = Self::key(owner, id);
        let marker = item::marker_key(owner, id, &key.request_id);
        let mut keys = KeysAndAttributes::builder()
            .keys(conversation.clone())
            .keys(marker.clone())
            .consistent_read(true)
            .build()
            .map_err(ApiError::internal)?;
        let mut found: Vec<Item> = Vec::new();
        for attempt in 0..MAX_RETRIES {
            let out = self
                .client
                .batch_get_item()
                .request_items(self.table.clone(), keys)
                .send()
                .await
                .map_err(classify)?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(left) if !left.keys().is_empty() => keys = left,
                _ => {
                    let is = |wanted: &Item| {
                        found.iter().find(|i| {
                            i.get(attr::SK) == wanted.get(attr::SK)
                                && i.get(attr::PK) == wanted.get(attr::PK)
                        })
                    };
                    return Ok((is(&conversation).cloned(), is(&marker).cloned()));
                }
            }
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(
            "DynamoDB kept reads unprocessed; retry".into(),
        ))
    }

    /// The answer to a repeated idempotency key: what its first call appended (the marker names
    /// the orders; one `Query` reads them), or 422 when the key came with other messages.
    async fn repeated(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        key: &Idempotency,
        marker: &Item,
    ) -> Result<Vec<Message>, ApiError> {
        let (first, count, fingerprint) = item::marker_contents(marker)?;
        if fingerprint != key.fingerprint {
            return Err(ApiError::field(
                "requestId",
                "reused",
                "this idempotency key was used with other messages; a new call needs a new key",
            ));
        }
        let last = first + count - 1;
        let (lo, hi) = item::message_range(first, last);
        // Every page of the key's orders: messages grown by edits, or an earlier conversation's
        // leftovers at the same orders, can take more than the 1 MB one Query returns.
        let mut messages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let out = self
                .messages_query(
                    owner,
                    &conversation.id,
                    &lo,
                    &hi,
                    false,
                    0,
                    after.as_deref(),
                )
                .await?;
            for i in out.items.unwrap_or_default() {
                if item::of_incarnation(&i, conversation.create_time) {
                    messages.push(item::message_from(&conversation.id, &i)?);
                }
            }
            match out.last_evaluated_key {
                Some(key) => after = Some(item::sort_key(&key)?.to_owned()),
                None => break,
            }
        }
        if messages.len() as u64 != count {
            return Err(ApiError::internal(
                "an idempotency marker names messages that are not stored",
            ));
        }
        Ok(messages)
    }

    /// Runs the append transaction: the conversation's update, every message's put, and the
    /// marker's put when the call has a key.
    async fn append_transaction(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        messages: &[Message],
        key: Option<&Idempotency>,
        now: Timestamp,
    ) -> Result<Cancelled, ApiError> {
        let last = messages
            .last()
            .ok_or_else(|| ApiError::internal("an append of no message"))?;
        let new = Version::next(now, Some(conversation.version));
        let mut e = Expr::new();
        let ver = e.name(attr::VERSION);
        let read = e.value(item::n(conversation.version.0));
        // The read is still current: same version, so same count, state and etag.
        e.condition(format!("{ver} = {read}"));
        // And the conversation has not expired since it was read.
        let visible = Self::visible_at(&mut e, now);
        e.condition(visible);
        e.set(attr::COUNT, item::n(last.order));
        e.set(attr::LAST_USED, item::n(now.micros()));
        // The conversation moves up the by-activity index.
        e.set(
            attr::GSI2_SK,
            item::s(item::index_sort_key(now, &conversation.id)),
        );
        e.set(attr::VERSION, item::n(new.0));
        let mut items = vec![self.tx_update(Self::key(owner, &conversation.id), &e, true)?];
        let mut size = item::MAX_ITEM_BYTES;
        for message in messages {
            let stored = item::message_item(owner, conversation.create_time, message);
            size += item::stored_size(&stored);
            let mut m = Expr::new();
            let pk = m.name(attr::PK);
            // A message is written once: its order is never reused.
            m.condition(format!("attribute_not_exists({pk})"));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(stored))
                .set_condition_expression(m.condition_expression())
                .set_expression_attribute_names(m.names())
                .build()
                .map_err(ApiError::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(key) = key {
            let first = messages[0].order;
            let marker = item::marker_item(
                owner,
                &conversation.id,
                conversation.create_time,
                &key.request_id,
                (first, messages.len() as u64, &key.fingerprint),
                now,
            );
            size += item::stored_size(&marker);
            let mut m = Expr::new();
            let (pk, inc) = (m.name(attr::PK), m.name(attr::INCARNATION));
            let this = m.value(item::n(conversation.create_time.micros()));
            // One call per key and conversation: a marker an earlier conversation of this id
            // left behind does not count.
            m.condition(format!("attribute_not_exists({pk}) OR {inc} <> {this}"));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(marker))
                .set_condition_expression(m.condition_expression())
                .set_expression_attribute_names(m.names())
                .set_expression_attribute_values(m.values())
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(ApiError::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        within_transaction_limits(items.len(), size)?;
        let with_marker = key.is_some();
        match self.transact(items).await? {
            None => Ok(Cancelled::No),
            Some(reasons) => {
                let marker = with_marker.then(|| reasons.last()).flatten();
                if let Some((code, Some(old))) = marker
                    && code == "ConditionalCheckFailed"
                {
                    return Ok(Cancelled::Repeat(old.clone()));
                }
                match reasons.first() {
                    Some((code, old)) if code == "ConditionalCheckFailed" => {
                        Ok(Cancelled::Changed(old.clone()))
                    }
                    _ => Ok(Cancelled::Changed(None)),
                }
            }
        }
    }

    /// One conditional update of a transaction; `report` asks DynamoDB for the item when the
    /// condition fails (`ALL_OLD`).
    fn tx_update(&self, key: Item, e: &Expr, report: bool) -> Result<TransactWriteItem, ApiError> {
        let mut update = TxUpdate::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values());
        if report {
            update = update.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        let update = update.build().map_err(ApiError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a transaction (with its own `ClientRequestToken`). `None`: committed. `Some`: it was
    /// cancelled by a failed condition or a conflicting transaction, with each action's
    /// cancellation code and, where it asked for `ALL_OLD`, the item that failed.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<(String, Option<Item>)>>, ApiError> {
        // The SDK fills in a ClientRequestToken from a generator seeded with the clock, which
        // two instances started in the same tick share: their transactions then carry equal
        // tokens and DynamoDB refuses the second (IdempotentParameterMismatch). A token from the
        // OS's random source, made here, is unique; the SDK's retries of this call reuse it, so
        // an attempt whose answer was lost is not applied twice.
        let result = self
            .client
            .transact_write_items()
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .set_transact_items(Some(items))
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
                let reasons: Vec<(String, Option<Item>)> = cancel
                    .cancellation_reasons()
                    .iter()
                    .map(|r| (r.code().unwrap_or("None").to_owned(), r.item().cloned()))
                    .collect();
                if reasons.iter().any(|(c, _)| THROTTLED.contains(&c.as_str())) {
                    return Err(ApiError::Throttled(Box::new(cancel)));
                }
                let expected = ["None", "ConditionalCheckFailed", "TransactionConflict"];
                if reasons.iter().all(|(c, _)| expected.contains(&c.as_str())) {
                    Ok(Some(reasons))
                } else {
                    Err(ApiError::Internal(Box::new(cancel)))
                }
            }
            Err(other) => Err(classify(other)),
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

    /// Reads one message by its order: the conversation's `GetItem` and a `Query` of that
    /// order's key prefix, sent together (one round trip). 404 when the conversation is missing,
    /// soft-deleted or another owner's, or has no message of that order.
    pub async fn get_message(
        &self,
        owner: &Owner,
        id: &ConversationId,
        order: u64,
    ) -> Result<Message, ApiError> {
        let (lo, hi) = item::message_range(order, order);
        // The newest incarnations first: the live conversation is the newest, so its message is
        // the first item, whatever earlier conversations of the id left at this order.
        let (header, out) = futures_util::future::join(
            self.read(owner, id),
            self.messages_query(owner, id, &lo, &hi, true, 2, None),
        )
        .await;
        let conversation = Self::live(header?, id)?;
        let message_not_found = || ApiError::NotFound(format!("{}/messages/{order}", id.name()));
        if order > conversation.message_count {
            return Err(message_not_found());
        }
        let live = conversation.create_time.micros().max(0);
        let mut out = out?;
        loop {
            for i in out.items.as_deref().unwrap_or_default() {
                let incarnation = item::sort_key(i)
                    .ok()
                    .and_then(item::message_key_parts)
                    .map(|(_, inc)| inc);
                match incarnation {
                    Some(inc) if inc == live => return item::message_from(id, i),
                    // An earlier conversation's: the live one has nothing at this order.
                    Some(inc) if inc < live => return Err(message_not_found()),
                    // A later one than the live conversation (clocks): read on.
                    _ => {}
                }
            }
            let Some(key) = out.last_evaluated_key else {
                return Err(message_not_found());
            };
            let after = item::sort_key(&key)?.to_owned();
            out = self
                .messages_query(owner, id, &lo, &hi, true, 2, Some(&after))
                .await?;
        }
    }

    /// Edits one message (a redaction, say): one consistent `Query` of that order's keys (the
    /// message, and any earlier incarnation's leftover at that order), then one transaction that
    /// updates the message (only if the version just read is still its version) and moves the
    /// conversation's version (only if it is the live conversation of that incarnation). Its
    /// order, the conversation's count and `lastUsedTime` stay. Allowed on a completed
    /// conversation; 404 on a missing, expired or soft-deleted one.
    pub async fn update_message(
        &self,
        owner: &Owner,
        id: &ConversationId,
        order: u64,
        update: &MessageUpdate,
        pre: &Preconditions,
    ) -> Result<Message, ApiError> {
        // The message's etag is the precondition; a conversation's names none of its versions.
        let pre = &pre.of_message();
        let (lo, hi) = item::message_range(order, order);
        // The incarnation the conversation turned out to have, once a refusal said so.
        let mut incarnation: Option<i64> = None;
        let mut pinned: Option<Version> = None;
        for attempt in 0..MAX_RETRIES {
            let out = self
                .messages_query(owner, id, &lo, &hi, true, 8, None)
                .await?;
            let items = out.items.unwrap_or_default();
            // Newest incarnation first (the key's suffix): the live one unless a refusal said.
            let mut candidates: Vec<&Item> = items.iter().collect();
            candidates.sort_by_key(|i| {
                std::cmp::Reverse(
                    item::sort_key(i)
                        .ok()
                        .and_then(item::message_key_parts)
                        .map(|(_, inc)| inc),
                )
            });
            let found = candidates.into_iter().find(|i| {
                incarnation.is_none_or(|want| {
                    item::sort_key(i)
                        .ok()
                        .and_then(item::message_key_parts)
                        .is_some_and(|(_, inc)| inc == want)
                })
            });
            // Missing conversation or missing message alike: 404 (update message's own rule).
            let Some(stored) = found else {
                return Err(ApiError::NotFound(format!(
                    "{}/messages/{order}",
                    id.name()
                )));
            };
            let sort_key = item::sort_key(stored)?.to_owned();
            let (_, this_incarnation) = item::message_key_parts(&sort_key)
                .ok_or_else(|| ApiError::internal("a message key without its parts"))?;
            let old = item::message_from(id, stored)?;
            let resource = old.name();
            pre.check(old.version)
                .map_err(|source_kind| ApiError::Stale {
                    resource: resource.clone(),
                    source_kind,
                })?;
            let mut edited = update.apply(&old)?;
            let now = Timestamp::now();
            let created = Timestamp::from_micros(this_incarnation)
                .ok_or_else(|| ApiError::internal("an incarnation out of range"))?;
            fits_in_an_item(&item::message_item(owner, created, &edited), None)?;
            edited.version = Version::next(now, Some(old.version));
            let conversation_version = Version::next(now, pinned);
            let items = vec![
                self.message_edit(owner, id, &sort_key, &old, &edited)?,
                self.conversation_touch(
                    owner,
                    id,
                    this_incarnation,
                    now,
                    pinned,
                    conversation_version,
                )?,
            ];
            let Some(reasons) = self.transact(items).await? else {
                return Ok(edited);
            };
            match reasons.get(1) {
                Some((code, old_conversation)) if code == "ConditionalCheckFailed" => {
                    let live = Self::visible(old_conversation.clone(), now)?
                        .filter(|c| !c.is_deleted())
                        .ok_or_else(|| not_found(id))?;
                    if live.create_time.micros() != this_incarnation {
                        // The message read was an earlier conversation's leftover.
                        incarnation = Some(live.create_time.micros());
                    } else {
                        // Only the version order refused it (clocks): nothing may have happened.
                        pinned = Some(live.version);
                    }
                }
                _ => backoff(attempt).await,
            }
        }
        Err(ApiError::Aborted(format!(
            "{}/messages/{order} is changing too fast; retry",
            id.name()
        )))
    }

    /// The message half of an edit: the new values, the new version, and the condition that the
    /// version read is still the message's.
    fn message_edit(
        &self,
        owner: &Owner,
        id: &ConversationId,
        sort_key: &str,
        old: &Message,
        edited: &Message,
    ) -> Result<TransactWriteItem, ApiError> {
        let mut e = Expr::new();
        let ver = e.name(attr::VERSION);
        let read = e.value(item::n(old.version.0));
        // The message read is still current: the edit was checked against it.
        e.condition(format!("{ver} = {read}"));
        e.set(attr::CONTENT, item::s(edited.content.as_str()));
        if edited.tool_calls.is_empty() {
            e.remove(attr::TOOL_CALLS);
        } else {
            e.set(attr::TOOL_CALLS, item::tool_calls(&edited.tool_calls));
        }
        match &edited.metadata {
            Some(m) => e.set(attr::METADATA, item::json(m)),
            None => e.remove(attr::METADATA),
        }
        e.set(attr::VERSION, item::n(edited.version.0));
        let key = Item::from([
            (attr::PK.to_owned(), item::s(item::partition_key(owner, id))),
            (attr::SK.to_owned(), item::s(sort_key)),
        ]);
        self.tx_update(key, &e, false)
    }

    /// The conversation half of an edit: a new version (so its etag moves), only while it is the
    /// live, visible conversation of the message's incarnation.
    fn conversation_touch(
        &self,
        owner: &Owner,
        id: &ConversationId,
        incarnation: i64,
        now: Timestamp,
        pinned: Option<Version>,
        new: Version,
    ) -> Result<TransactWriteItem, ApiError> {
        let mut e = Expr::new();
        let (pk, del, create) = (e.name(attr::PK), e.name(attr::DELETE), e.name(attr::CREATE));
        let visible = Self::visible_at(&mut e, now);
        let this = e.value(item::n(incarnation));
        e.condition(format!(
            "attribute_exists({pk}) AND {visible} AND attribute_not_exists({del}) AND {create} = {this}"
        ));
        let ver = e.name(attr::VERSION);
        match pinned {
            // A version learnt from a refusal: nothing may have happened since.
            Some(v) => {
                let v = e.value(item::n(v.0));
                e.condition(format!("{ver} = {v}"));
            }
            // Versions never go back or repeat, even when clocks disagree.
            None => {
                let v = e.value(item::n(new.0));
                e.condition(format!("{ver} < {v}"));
            }
        }
        e.set(attr::VERSION, item::n(new.0));
        self.tx_update(Self::key(owner, id), &e, true)
    }

    /// Lists a conversation's messages in either order, within an order range: one `Query` of
    /// that key range per page, and the conversation's `GetItem` sent alongside (so every page,
    /// not just the first, is 404 once the conversation was deleted, expired, or purged and
    /// created again). Only the range's items are read; a `type` filter and an earlier
    /// incarnation's leftovers are dropped after the read, so a page may be short.
    pub async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        query: &MessageQuery,
    ) -> Result<Page<Message>, ApiError> {
        let scope = query.scope(id);
        let start = match &query.page_token {
            Some(text) => {
                let token = PageToken::decode(text, &self.token_key, owner, &scope)?;
                Some(from_position(&token.position, &query.filter)?)
            }
            None => None,
        };
        let filter = &query.filter;
        if filter.is_empty() {
            // Nothing can match; the conversation must still be there.
            Self::live(self.read(owner, id).await?, id)?;
            return Ok(Page {
                items: Vec::new(),
                next_page_token: None,
            });
        }
        let (lo, hi) = item::message_range(filter.from, filter.to);
        let descending = query.order == MessageOrder::Descending;
        let limit = query.page_size + 1;
        let (header, out) = futures_util::future::join(
            self.read(owner, id),
            self.messages_query(
                owner,
                id,
                &lo,
                &hi,
                descending,
                limit,
                start.as_ref().map(|(_, key)| key.as_str()),
            ),
        )
        .await;
        let conversation = Self::live(header?, id)?;
        let incarnation = conversation.create_time;
        if start
            .as_ref()
            .is_some_and(|(i, _)| *i != incarnation.micros())
        {
            // The token belongs to an earlier conversation of this id.
            return Err(not_found(id));
        }
        let mut out = out?;
        let mut messages = Vec::new();
        let mut bytes = 0;
        let mut last_kept = None;
        for reads in 0.. {
            let more_in_table = out.last_evaluated_key.is_some();
            let items = out.items.take().unwrap_or_default();
            let Some(last) = items.last() else {
                break;
            };
            let last_read = item::sort_key(last)?.to_owned();
            // As for conversations: messages are measured only when the page could pass the
            // budget; until then their bound counts.
            let bounds: usize = items.iter().map(item::rendered_bound).sum();
            let could_overflow = bytes + bounds > MAX_PAGE_BYTES;
            let mut leftovers = false;
            for i in &items {
                if !item::of_incarnation(i, incarnation) {
                    leftovers = true;
                    continue;
                }
                let message = item::message_from(id, i)?;
                if filter.kind.is_some_and(|k| k != message.kind) {
                    continue;
                }
                bytes += if could_overflow {
                    rendered_len(&message.to_json())
                } else {
                    item::rendered_bound(i)
                };
                let over_budget = !messages.is_empty() && bytes > MAX_PAGE_BYTES;
                if messages.len() == query.page_size || over_budget {
                    // More than the page holds: the next page starts after the last kept one.
                    return Ok(self.message_page(owner, &scope, incarnation, messages, last_kept));
                }
                last_kept = Some(item::sort_key(i)?.to_owned());
                messages.push(message);
            }
            if !more_in_table {
                break;
            }
            // Only an earlier conversation's leftovers make a page read on (a `type` filter
            // makes a short page, the contract's rule), and only so far: then a short page
            // continues where the read stopped.
            if !leftovers || reads == MAX_READS_ON {
                let next = Some(last_read);
                return Ok(self.message_page(owner, &scope, incarnation, messages, next));
            }
            match read_on(
                (filter.from, filter.to),
                &conversation,
                descending,
                &last_read,
            ) {
                Some((lo, hi, after)) => {
                    out = self
                        .messages_query(owner, id, &lo, &hi, descending, limit, after.as_deref())
                        .await?;
                }
                // Nothing of the live conversation is left in the range.
                None => break,
            }
        }
        Ok(self.message_page(owner, &scope, incarnation, messages, None))
    }

    fn message_page(
        &self,
        owner: &Owner,
        scope: &str,
        incarnation: Timestamp,
        messages: Vec<Message>,
        next: Option<String>,
    ) -> Page<Message> {
        Page {
            items: messages,
            next_page_token: next.map(|key| {
                PageToken {
                    position: position(incarnation, &key),
                }
                .encode(&self.token_key, owner, scope)
            }),
        }
    }

    /// The newest `limit` message items of a conversation, any incarnation, newest first: the
    /// `FULL` view's `Query`, sent alongside the conversation's read ([`Store::latest_of`] keeps
    /// the live conversation's).
    pub(super) async fn latest_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        limit: usize,
    ) -> Result<QueryOutput, ApiError> {
        let (lo, hi) = item::message_range(1, MAX_ORDER);
        self.messages_query(owner, id, &lo, &hi, true, limit, None)
            .await
    }

    /// The live conversation's latest `limit` messages, newest first, from the `FULL` view's
    /// first `Query` ([`Store::latest_messages`]). Where an earlier conversation of the id left
    /// messages the purger has not deleted yet, they took room in that page: the read goes on
    /// below them, within the orders the live conversation holds, until `limit` are kept or none
    /// is left (at most [`MAX_READS_ON`] more `Query`s; never without leftovers).
    pub(super) async fn latest_of(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        first: QueryOutput,
        limit: usize,
    ) -> Result<Vec<Message>, ApiError> {
        let id = &conversation.id;
        let mut out = first;
        let mut kept = Vec::new();
        for _ in 0..=MAX_READS_ON {
            let items = out.items.take().unwrap_or_default();
            let mut leftovers = false;
            for i in &items {
                if !item::of_incarnation(i, conversation.create_time) {
                    leftovers = true;
                } else if kept.len() < limit {
                    kept.push(item::message_from(id, i)?);
                }
            }
            let last_read = match items.last() {
                Some(i) => item::sort_key(i)?.to_owned(),
                None => break,
            };
            if kept.len() >= limit || out.last_evaluated_key.is_none() || !leftovers {
                break;
            }
            let Some((lo, hi, after)) = read_on((1, MAX_ORDER), conversation, true, &last_read)
            else {
                break;
            };
            out = self
                .messages_query(owner, id, &lo, &hi, true, limit, after.as_deref())
                .await?;
        }
        Ok(kept)
    }

    /// One consistent `Query` of a conversation's message keys `lo..=hi`, at most `limit` items
    /// (0: as many as one answer holds, 1 MB), after the key `after`.
    #[allow(clippy::too_many_arguments)]
    async fn messages_query(
        &self,
        owner: &Owner,
        id: &ConversationId,
        lo: &str,
        hi: &str,
        descending: bool,
        limit: usize,
        after: Option<&str>,
    ) -> Result<QueryOutput, ApiError> {
        let mut e = Expr::new();
        let (pk, sk) = (e.name(attr::PK), e.name(attr::SK));
        let partition = item::partition_key(owner, id);
        let (pk_v, lo_v, hi_v) = (
            e.value(item::s(partition.as_str())),
            e.value(item::s(lo)),
            e.value(item::s(hi)),
        );
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("{pk} = {pk_v} AND {sk} BETWEEN {lo_v} AND {hi_v}"))
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .consistent_read(true)
            .scan_index_forward(!descending);
        if limit > 0 {
            request = request.limit(i32::try_from(limit).unwrap_or(i32::MAX));
        }
        if let Some(after) = after {
            request = request
                .exclusive_start_key(attr::PK, item::s(partition))
                .exclusive_start_key(attr::SK, item::s(after));
        }
        request.send().await.map_err(classify)
    }

    /// The conversation a message read is about: visible and not soft-deleted, else 404.
    fn live(header: Option<Item>, id: &ConversationId) -> Result<Conversation, ApiError> {
        Self::visible(header, Timestamp::now())?
            .filter(|c| !c.is_deleted())
            .ok_or_else(|| not_found(id))
    }

    /// Deletes the messages of one incarnation of a conversation that nothing can reach any more
    /// (the stream purger): one consistent keys-only `Query` of the conversation's messages per
    /// page, and `BatchWriteItem`s of 25 of those whose key names that incarnation. A later
    /// conversation of the same id has other keys, so its messages are never touched. Returns
    /// how many it deleted; a retried purge deletes what is left.
    pub async fn purge_messages(
        &self,
        partition: &str,
        incarnation: Timestamp,
    ) -> Result<usize, ApiError> {
        let (lo, hi) = item::message_range(1, MAX_ORDER);
        let mut deleted = 0;
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::new();
            let (pk, sk) = (e.name(attr::PK), e.name(attr::SK));
            let (pk_v, lo_v, hi_v) = (
                e.value(item::s(partition)),
                e.value(item::s(lo.as_str())),
                e.value(item::s(hi.as_str())),
            );
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!(
                    "{pk} = {pk_v} AND {sk} BETWEEN {lo_v} AND {hi_v}"
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
            let keys: Vec<Item> = out
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(|k| item::of_incarnation(k, incarnation))
                .collect();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(incarnation: i64, order: u64) -> String {
        item::message_sort_key(Timestamp::from_micros(incarnation).expect("valid"), order)
    }

    #[test]
    fn a_transaction_past_dynamodb_s_limits_is_a_400() {
        assert!(within_transaction_limits(100, MAX_TRANSACTION_BYTES).is_ok());
        for (items, bytes) in [(101, 1), (1, MAX_TRANSACTION_BYTES + 1)] {
            let refused = within_transaction_limits(items, bytes).expect_err("past a limit");
            assert_eq!(refused.status(), 400, "{items} items, {bytes} bytes");
            assert!(refused.to_string().contains("DynamoDB allows 100 items"));
        }
    }

    #[test]
    fn reading_on_newest_first_starts_at_the_live_conversation_s_top_below_leftovers_above_it() {
        let live = Timestamp::from_micros(2_000).expect("valid");
        let (lo, hi) = item::message_range(1, 5);
        // Only leftovers above order 5 were read: start at the top of 1..=5.
        assert_eq!(
            read_on_within((1, 5), live, true, &key(1_000, 60)),
            Some((lo.clone(), hi.clone(), None))
        );
        // Within the range: go on below the last key read.
        let last = key(1_000, 4);
        assert_eq!(
            read_on_within((1, 5), live, true, &last),
            Some((lo, hi, Some(last)))
        );
        // A range above what the live conversation holds has nothing to read.
        assert_eq!(read_on_within((7, 5), live, true, &key(1_000, 9)), None);
    }

    #[test]
    fn reading_on_oldest_first_stops_once_past_the_live_conversation_s_last_key() {
        let live = Timestamp::from_micros(2_000).expect("valid");
        let (lo, hi) = item::message_range(1, 5);
        let last = key(1_000, 3);
        assert_eq!(
            read_on_within((1, 5), live, false, &last),
            Some((lo, hi, Some(last)))
        );
        // A leftover at the top order sorts before the live message there: read on.
        assert!(read_on_within((1, 5), live, false, &key(1_000, 5)).is_some());
        // The live conversation's last message, or anything after it: done.
        assert_eq!(read_on_within((1, 5), live, false, &key(2_000, 5)), None);
        assert_eq!(read_on_within((1, 5), live, false, &key(1_000, 6)), None);
    }
}
