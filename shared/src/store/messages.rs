//! A conversation's messages: append (one read, one transaction), get one by order, list in
//! either order and by order range, the newest for the `FULL` view, and the purge of what an
//! earlier conversation of the same id left behind. Message keys are
//! `M#{order}#{incarnation}` ([`item::message_sort_key`]): an order range is a key range, and
//! every read keeps only the items of the conversation's own incarnation.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update as TxUpdate,
};

use super::expr::Expr;
use super::item::{self, Item, attr};
use super::seed_items;
use super::split;
use super::{
    MAX_PAGE_BYTES, MAX_RETRIES, Page, Store, THROTTLED, backoff, classify, missing, not_found,
    rendered_len,
};
use crate::domain::body::MAX_METADATA_BYTES;
use crate::domain::conversation::{Conversation, Lifecycle};
use crate::domain::etag::{Preconditions, Version};
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::message::{MAX_ORDER, Message, MetadataKeys, NewMessage};
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
    /// The idempotency of a call of `kind` (`append`, `batch`) appending `messages` (and, for a
    /// batch, setting `conversationMetadata`: the same key with other state is another call).
    pub fn of(
        request_id: &RequestId,
        kind: &str,
        messages: &[NewMessage],
        metadata: Option<&MetadataKeys>,
    ) -> Self {
        use sha2::{Digest, Sha256};
        let mut body = serde_json::json!({
            "kind": kind,
            "messages": messages.iter().map(NewMessage::fingerprint).collect::<Vec<_>>(),
        });
        if let Some(keys) = metadata {
            body["conversationMetadata"] = keys.to_json();
        }
        let digest = Sha256::digest(crate::domain::body::canonical(&body).as_bytes());
        Self {
            request_id: request_id.clone(),
            fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// What an append answers: its messages, and the conversation's version after it (the
/// `conversationEtag` of a batch, the `X-Conversation-ETag` of an append).
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// The conversation's version once they were appended.
    pub conversation_version: Version,
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
/// earlier conversation's leftovers (which the purger has not deleted yet) within the range it
/// reads; past them it answers a short page (with a token).
const MAX_READS_ON: usize = 8;

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
    ) -> Result<(Message, Version), ApiError> {
        let key =
            request_id.map(|r| Idempotency::of(r, "append", std::slice::from_ref(&new), None));
        let mut appended = self
            .append_messages(owner, id, &[new], pre, key.as_ref(), None)
            .await?;
        let message = appended
            .messages
            .pop()
            .ok_or_else(|| ApiError::internal("an append answered no message"))?;
        Ok((message, appended.conversation_version))
    }

    /// Appends messages, all or none, with consecutive orders after the highest ever assigned:
    /// one consistent read of the conversation (with the idempotency marker, in one
    /// `BatchGetItem`, when the call has a key), then one transaction that moves the
    /// conversation's count, highest order and version — and sets or removes the
    /// `conversationMetadata` keys, merged within 16 KiB as that read shows them — only if that
    /// read is still current, puts every message (each key written once: an order is never
    /// reused), and puts the marker (written once per key and incarnation). A repeated key
    /// answers what its first call appended: from the marker, with one `Query` of those messages.
    pub async fn append_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        news: &[NewMessage],
        pre: &Preconditions,
        key: Option<&Idempotency>,
        metadata: Option<&MetadataKeys>,
    ) -> Result<Appended, ApiError> {
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
            let (current, body, marker) = match seen.take() {
                Some((current, marker)) => (current, None, marker),
                None => {
                    self.read_for_append(owner, id, key, metadata.is_some())
                        .await?
                }
            };
            let now = Timestamp::now();
            let head = current.clone();
            let Some(mut conversation) = Self::visible(current, now)? else {
                return Err(missing(id, pre));
            };
            // The state the turn changes is merged with the metadata the body holds.
            let body_version = head.as_ref().and_then(split::body_version);
            if metadata.is_some()
                && let Some(head) = &head
                && body_version.is_some()
            {
                match split::join(head, body.as_ref())? {
                    Some(whole) => conversation = whole,
                    None => {
                        // Torn, or a refusal's head without its body: read both again.
                        backoff(attempt).await;
                        continue;
                    }
                }
            }
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
            let state = match metadata {
                Some(keys) => {
                    let merged = keys.applied(conversation.metadata.as_ref());
                    let size = seed_items::metadata_size(merged.as_ref());
                    if size > MAX_METADATA_BYTES {
                        return Err(ApiError::field(
                            "conversationMetadata",
                            "too_large",
                            format!(
                                "the conversation's metadata would be {size} bytes when serialised; \
                                 at most {MAX_METADATA_BYTES}"
                            ),
                        ));
                    }
                    Some((keys, size))
                }
                None => None,
            };
            let messages: Vec<Message> = news
                .iter()
                .zip(conversation.last_order + 1..)
                .map(|(new, order)| Message::appended(id.clone(), order, new, now))
                .collect();
            let new = Version::next(now, Some(conversation.version));
            match self
                .append_transaction(
                    owner,
                    (&conversation, body_version),
                    &messages,
                    key,
                    state,
                    (now, new),
                )
                .await?
            {
                Cancelled::No => {
                    return Ok(Appended {
                        messages,
                        conversation_version: new,
                    });
                }
                Cancelled::Repeat(marker) => {
                    let key = key.ok_or_else(|| ApiError::internal("a marker without a key"))?;
                    return self.repeated(owner, &conversation, key, &marker).await;
                }
                // The refusal's head is the next read, unless the body is needed too.
                Cancelled::Changed(refreshed) if metadata.is_none() => {
                    seen = refreshed.map(|item| (Some(item), None))
                }
                Cancelled::Changed(_) => {}
            }
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(format!(
            "too many concurrent appends to {}; retry",
            id.name()
        )))
    }

    /// The conversation's head, its body when `with_body` (a batch with `conversationMetadata`
    /// merges it), and the call's idempotency marker when it has a key: one consistent
    /// `GetItem` of the head alone, or one consistent `BatchGetItem` of them all.
    async fn read_for_append(
        &self,
        owner: &Owner,
        id: &ConversationId,
        key: Option<&Idempotency>,
        with_body: bool,
    ) -> Result<(Option<Item>, Option<Item>, Option<Item>), ApiError> {
        if key.is_none() && !with_body {
            return Ok((self.read(owner, id).await?, None, None));
        }
        let conversation = Self::key(owner, id);
        let body = with_body.then(|| split::body_key(owner, id));
        let marker = key.map(|key| item::marker_key(owner, id, &key.request_id));
        let mut keys = KeysAndAttributes::builder()
            .set_keys(Some(
                [Some(conversation.clone()), body.clone(), marker.clone()]
                    .into_iter()
                    .flatten()
                    .collect(),
            ))
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
                    let is = |wanted: &Option<Item>| {
                        let wanted = wanted.as_ref()?;
                        found
                            .iter()
                            .find(|i| {
                                i.get(attr::SK) == wanted.get(attr::SK)
                                    && i.get(attr::PK) == wanted.get(attr::PK)
                            })
                            .cloned()
                    };
                    return Ok((is(&Some(conversation)), is(&body), is(&marker)));
                }
            }
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(
            "DynamoDB kept reads unprocessed; retry".into(),
        ))
    }

    /// The answer to a repeated idempotency key: what its first call appended, each message as
    /// it is now (the marker names the orders; one `Query` reads them, one more per further MB),
    /// with the conversation's version the first call left; 422 when the key came with another
    /// body; 409 `ALREADY_EXISTS` when a message it appended was deleted or cleared since —
    /// told by the clear boundary, or by the `Query` finding fewer messages than the marker names.
    async fn repeated(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        key: &Idempotency,
        marker: &Item,
    ) -> Result<Appended, ApiError> {
        let (first, count, fingerprint) = item::marker_contents(marker)?;
        if fingerprint != key.fingerprint {
            return Err(ApiError::field(
                "requestId",
                "reused",
                "this idempotency key was used with another body; a new call needs a new key",
            ));
        }
        let gone = || {
            ApiError::AlreadyExists(format!(
                "a message this idempotency key appended to {} was deleted or cleared since: its \
                 first call cannot be answered again; a new call needs a new key",
                conversation.id.name()
            ))
        };
        if first <= conversation.cleared_through {
            return Err(gone());
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
            return Err(gone());
        }
        Ok(Appended {
            messages,
            // Markers written before revision 3 do not hold it: the version now.
            conversation_version: item::marker_version(marker).unwrap_or(conversation.version),
        })
    }

    /// Runs the append transaction: the conversation's update (with the `conversationMetadata`
    /// keys and the merged metadata's size, when given), every message's put, and the marker's
    /// put when the call has a key.
    async fn append_transaction(
        &self,
        owner: &Owner,
        (conversation, body_version): (&Conversation, Option<i64>),
        messages: &[Message],
        key: Option<&Idempotency>,
        metadata: Option<(&MetadataKeys, usize)>,
        (now, new): (Timestamp, Version),
    ) -> Result<Cancelled, ApiError> {
        let last = messages
            .last()
            .ok_or_else(|| ApiError::internal("an append of no message"))?;
        let mut e = Expr::new();
        let ver = e.name(attr::VERSION);
        let read = e.value(item::n(conversation.version.0));
        // The read is still current: same version, so same count, state and etag.
        e.condition(format!("{ver} = {read}"));
        // And the conversation has not expired since it was read.
        let visible = Self::visible_at(&mut e, now);
        e.condition(visible);
        e.set(
            attr::COUNT,
            item::n(conversation.message_count + messages.len() as u64),
        );
        e.set(attr::LAST_ORDER, item::n(last.order));
        e.set(attr::LAST_USED, item::n(now.micros()));
        // The state the turn changed, in the turn's own transaction: on the body, which moves
        // to this version (so does the head's mark of it), only while it is the body read; or on
        // a whole item of layout 3.
        let mut body = None;
        match (metadata, body_version) {
            (Some((keys, size)), Some(read)) => {
                let mut b = Expr::new();
                let (bv, read) = (b.name(attr::BODY_VERSION), b.value(item::n(read)));
                b.condition(format!("{bv} = {read}"));
                seed_items::write_metadata_keys(&mut b, &keys.0);
                b.set(attr::METADATA_BYTES, item::n(size));
                b.set(attr::BODY_VERSION, item::n(new.0));
                e.set(attr::BODY_VERSION, item::n(new.0));
                body = Some(self.tx_update(split::body_key(owner, &conversation.id), &b, false)?);
            }
            (Some((keys, size)), None) => {
                seed_items::write_metadata_keys(&mut e, &keys.0);
                e.set(attr::METADATA_BYTES, item::n(size));
            }
            (None, _) => {}
        }
        // The conversation moves up the by-activity index.
        e.set(
            attr::GSI2_SK,
            item::s(item::index_sort_key(now, &conversation.id)),
        );
        e.set(attr::VERSION, item::n(new.0));
        let mut items = vec![self.tx_update(Self::key(owner, &conversation.id), &e, true)?];
        let mut size = item::MAX_ITEM_BYTES;
        if let Some(body) = body {
            items.push(body);
            size += item::MAX_ITEM_BYTES;
        }
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
                (now, new),
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
    pub(super) fn tx_update(
        &self,
        key: Item,
        e: &Expr,
        report: bool,
    ) -> Result<TransactWriteItem, ApiError> {
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

    /// Reads one message by its order: the conversation's `GetItem`, then — only for an order
    /// it holds (above its clear boundary, at most its highest order) — a `Query` of that
    /// order's keys, newest incarnation first. 404 when the conversation is missing,
    /// soft-deleted or another owner's, or has no message of that order (never assigned,
    /// deleted or cleared).
    pub async fn get_message(
        &self,
        owner: &Owner,
        id: &ConversationId,
        order: u64,
    ) -> Result<Message, ApiError> {
        let conversation = Self::live(self.read(owner, id).await?, id)?;
        let message_not_found = || ApiError::NotFound(format!("{}/messages/{order}", id.name()));
        if !conversation.holds(order) {
            return Err(message_not_found());
        }
        let (lo, hi) = item::message_range(order, order);
        // The live conversation is the newest incarnation, so its message is the first item,
        // whatever earlier conversations of the id left at this order.
        let live = conversation.create_time.micros().max(0);
        let mut after: Option<String> = None;
        loop {
            let out = self
                .messages_query(owner, id, &lo, &hi, true, 2, after.as_deref())
                .await?;
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
            after = Some(item::sort_key(&key)?.to_owned());
        }
    }

    /// The error for a message whose etag the client sent is not its version: the message is
    /// stale (409/412) only while the conversation holds it — live, not soft-deleted, this
    /// incarnation, the order not cleared; otherwise it is not there (404), as it is without a
    /// precondition. One read of the conversation, on this error path only.
    pub(super) async fn stale_message(
        &self,
        owner: &Owner,
        id: &ConversationId,
        message: &Message,
        incarnation: i64,
        source_kind: crate::error::EtagSource,
    ) -> ApiError {
        let conversation = match self.read(owner, id).await {
            Ok(item) => Self::live(item, id),
            Err(e) => return e,
        };
        match conversation {
            Ok(c) if c.create_time.micros() == incarnation && c.holds(message.order) => {
                ApiError::Stale {
                    resource: message.name(),
                    source_kind,
                }
            }
            Ok(_) | Err(ApiError::NotFound(_)) => ApiError::NotFound(message.name()),
            Err(other) => other,
        }
    }

    /// The stored message of an order and its sort key: one consistent `Query` of that order's
    /// keys, newest incarnation first — the live conversation's, unless a refusal named another
    /// (`incarnation`). `None` when there is none (a conversation that is not there has none).
    pub(super) async fn message_of_order(
        &self,
        owner: &Owner,
        id: &ConversationId,
        order: u64,
        incarnation: Option<i64>,
    ) -> Result<Option<(String, Message)>, ApiError> {
        let (lo, hi) = item::message_range(order, order);
        let out = self
            .messages_query(owner, id, &lo, &hi, true, 8, None)
            .await?;
        let items = out.items.unwrap_or_default();
        let inc = |i: &Item| {
            item::sort_key(i)
                .ok()
                .and_then(item::message_key_parts)
                .map(|(_, inc)| inc)
        };
        let mut candidates: Vec<&Item> = items.iter().collect();
        candidates.sort_by_key(|i| std::cmp::Reverse(inc(i)));
        let found = candidates
            .into_iter()
            .find(|i| incarnation.is_none_or(|want| inc(i) == Some(want)));
        match found {
            Some(stored) => Ok(Some((
                item::sort_key(stored)?.to_owned(),
                item::message_from(id, stored)?,
            ))),
            None => Ok(None),
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
        let pre = &pre.of_message(order);
        // The incarnation the conversation turned out to have, once a refusal said so.
        let mut incarnation: Option<i64> = None;
        let mut pinned: Option<Version> = None;
        for attempt in 0..MAX_RETRIES {
            // Missing conversation or missing message alike: 404 (update message's own rule).
            let Some((sort_key, old)) =
                self.message_of_order(owner, id, order, incarnation).await?
            else {
                return Err(ApiError::NotFound(format!(
                    "{}/messages/{order}",
                    id.name()
                )));
            };
            let (_, this_incarnation) = item::message_key_parts(&sort_key)
                .ok_or_else(|| ApiError::internal("a message key without its parts"))?;
            if let Err(source_kind) = pre.check(old.version) {
                return Err(self
                    .stale_message(owner, id, &old, this_incarnation, source_kind)
                    .await);
            }
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
                    (this_incarnation, order),
                    now,
                    pinned,
                    conversation_version,
                    false,
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
                    if !live.holds(order) {
                        // Cleared since it was read.
                        return Err(ApiError::NotFound(format!(
                            "{}/messages/{order}",
                            id.name()
                        )));
                    }
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

    /// The conversation half of a message's edit or deletion: a new version (so its etag
    /// moves) and, for a deletion, one message less in its count — only while it is the live,
    /// visible conversation of the message's incarnation and still holds the message's order
    /// (not cleared since).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conversation_touch(
        &self,
        owner: &Owner,
        id: &ConversationId,
        (incarnation, order): (i64, u64),
        now: Timestamp,
        pinned: Option<Version>,
        new: Version,
        deletes: bool,
    ) -> Result<TransactWriteItem, ApiError> {
        let mut e = Expr::new();
        let (pk, del, create) = (e.name(attr::PK), e.name(attr::DELETE), e.name(attr::CREATE));
        let visible = Self::visible_at(&mut e, now);
        let this = e.value(item::n(incarnation));
        e.condition(format!(
            "attribute_exists({pk}) AND {visible} AND attribute_not_exists({del}) AND {create} = {this}"
        ));
        let cleared = e.name(attr::CLEARED_THROUGH);
        let order_v = e.value(item::n(order));
        // The message was not cleared since it was read.
        e.condition(format!(
            "attribute_not_exists({cleared}) OR {cleared} < {order_v}"
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
        if deletes {
            // `messageCount` is the messages held now; the highest order stays.
            let (count, one) = (e.name(attr::COUNT), e.value(item::n(1)));
            e.set_clause(format!("{count} = {count} - {one}"));
        }
        self.tx_update(Self::key(owner, id), &e, true)
    }

    /// Lists a conversation's messages in either order, within an order range: the
    /// conversation's `GetItem`, then one `Query` per page of the range clipped to what the
    /// conversation holds — above its clear boundary, up to its highest order — so a cleared
    /// range is never read, and every page (not just the first) is 404 once the conversation
    /// was deleted or expired, and its tokens 400 once it was purged and created again. A `type`
    /// filter and an earlier incarnation's leftovers are dropped after the read (a page may be
    /// short); where leftovers took room in a page, it reads on (at most [`MAX_READS_ON`]).
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
        let conversation = Self::live(self.read(owner, id).await?, id)?;
        let incarnation = conversation.create_time;
        if start
            .as_ref()
            .is_some_and(|(i, _)| *i != incarnation.micros())
        {
            // The token belongs to an earlier conversation of this id (purged or expired, then
            // created again): it is not a token of this one.
            return Err(ApiError::InvalidArgument(format!(
                "pageToken was issued for an earlier conversation of {}",
                id.name()
            )));
        }
        let filter = &query.filter;
        let empty = || Page {
            items: Vec::new(),
            next_page_token: None,
        };
        let from = filter.from.max(conversation.cleared_through + 1);
        let to = filter.to.min(conversation.last_order);
        if filter.is_empty() || from > to {
            return Ok(empty());
        }
        let (lo, hi) = item::message_range(from, to);
        let descending = query.order == MessageOrder::Descending;
        // Where the token's page ended, within the range as it is now: a clear since then may
        // have moved its start past it (oldest first: start at the boundary; newest first:
        // nothing is left below it).
        let mut after = match start.map(|(_, key)| key) {
            Some(key) if key.as_str() < lo.as_str() => match descending {
                true => return Ok(empty()),
                false => None,
            },
            Some(key) if key.as_str() > hi.as_str() => match descending {
                true => None,
                false => return Ok(empty()),
            },
            other => other,
        };
        let limit = query.page_size + 1;
        let mut messages = Vec::new();
        let mut bytes = 0;
        let mut last_kept = None;
        for reads in 0.. {
            let out = self
                .messages_query(owner, id, &lo, &hi, descending, limit, after.as_deref())
                .await?;
            let more_in_table = out.last_evaluated_key.is_some();
            let items = out.items.unwrap_or_default();
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
            after = Some(last_read);
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

    /// The latest `limit` messages a conversation holds, newest first (the `FULL` view's
    /// half): one `Query` of its orders above the clear boundary, up to its highest order,
    /// newest first — reading on where an earlier conversation's leftovers took room in it
    /// (at most [`MAX_READS_ON`] more).
    pub(super) async fn latest_messages(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<Message>, ApiError> {
        let id = &conversation.id;
        let mut kept = Vec::new();
        let from = conversation.cleared_through + 1;
        if from > conversation.last_order {
            return Ok(kept);
        }
        let (lo, hi) = item::message_range(from, conversation.last_order);
        let mut after: Option<String> = None;
        for _ in 0..=MAX_READS_ON {
            let out = self
                .messages_query(owner, id, &lo, &hi, true, limit, after.as_deref())
                .await?;
            let items = out.items.unwrap_or_default();
            let mut leftovers = false;
            for i in &items {
                if !item::of_incarnation(i, conversation.create_time) {
                    leftovers = true;
                } else if kept.len() < limit {
                    kept.push(item::message_from(id, i)?);
                }
            }
            let (Some(key), true) = (out.last_evaluated_key, leftovers) else {
                break;
            };
            if kept.len() >= limit {
                break;
            }
            after = Some(item::sort_key(&key)?.to_owned());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_past_dynamodb_s_limits_is_a_400() {
        assert!(within_transaction_limits(100, MAX_TRANSACTION_BYTES).is_ok());
        for (items, bytes) in [(101, 1), (1, MAX_TRANSACTION_BYTES + 1)] {
            let refused = within_transaction_limits(items, bytes).expect_err("past a limit");
            assert_eq!(refused.status(), 400, "{items} items, {bytes} bytes");
            assert!(refused.to_string().contains("DynamoDB allows 100 items"));
        }
    }
}
