//! Removing what clients ask to remove (revision 3): one message (delete message), a
//! conversation's oldest messages up to an order (clear), and a whole conversation now (purge).
//! Each is one conditional write of the conversation (with the message's delete, for delete
//! message); what it leaves unreachable is deleted in the background by the stream purger
//! (`functions/purge-messages`), with the store's `purge_*` functions at the end of this file.

use aws_sdk_dynamodb::types::{
    Delete, DeleteRequest, ReturnValuesOnConditionCheckFailure, TransactWriteItem, WriteRequest,
};

use super::expr::Expr;
use super::item::{self, Item, attr};
use super::split;
use super::{Attempt, MAX_RETRIES, Store, backoff, classify, missing, not_found};
use crate::domain::conversation::Conversation;
use crate::domain::etag::{Preconditions, Version};
use crate::domain::ids::{ConversationId, Owner};
use crate::domain::message::{MAX_ORDER, Message};
use crate::domain::time::Timestamp;
use crate::error::ApiError;

impl Store {
    /// Deletes one message for good: one consistent `Query` of its order's keys (newest
    /// incarnation first: the live conversation's), then one transaction that deletes it only
    /// if it is still as read (and the message's etag holds) and moves the conversation — one
    /// message less, a new version, `lastUsedTime` untouched, the highest order kept (never
    /// given again) — only while it is the live, visible conversation of that incarnation and
    /// still holds the order. Answers the message as it was. Allowed on a completed
    /// conversation; 404 for a message or conversation that is not there (deleted, cleared,
    /// soft-deleted, another owner's).
    pub async fn delete_message(
        &self,
        owner: &Owner,
        id: &ConversationId,
        order: u64,
        pre: &Preconditions,
    ) -> Result<Message, ApiError> {
        // The message's etag is the precondition; a conversation's names none of its versions.
        let pre = &pre.of_message(order);
        let message_not_found = || ApiError::NotFound(format!("{}/messages/{order}", id.name()));
        // The incarnation the conversation turned out to have, once a refusal said so.
        let mut incarnation: Option<i64> = None;
        let mut pinned: Option<Version> = None;
        for attempt in 0..MAX_RETRIES {
            let Some((sort_key, old)) =
                self.message_of_order(owner, id, order, incarnation).await?
            else {
                return Err(message_not_found());
            };
            let (_, this_incarnation) = item::message_key_parts(&sort_key)
                .ok_or_else(|| ApiError::internal("a message key without its parts"))?;
            if let Err(source_kind) = pre.check(old.version) {
                return Err(self
                    .stale_message(owner, id, &old, this_incarnation, source_kind)
                    .await);
            }
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut m = Expr::new();
            let (pk, ver) = (m.name(attr::PK), m.name(attr::VERSION));
            let read = m.value(item::n(old.version.0));
            // The message is still as read (so the answer is what was deleted).
            m.condition(format!("attribute_exists({pk}) AND {ver} = {read}"));
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Item::from([
                    (attr::PK.to_owned(), item::s(item::partition_key(owner, id))),
                    (attr::SK.to_owned(), item::s(&sort_key)),
                ])))
                .set_condition_expression(m.condition_expression())
                .set_expression_attribute_names(m.names())
                .set_expression_attribute_values(m.values())
                .build()
                .map_err(ApiError::internal)?;
            let items = vec![
                TransactWriteItem::builder().delete(delete).build(),
                self.conversation_touch(
                    owner,
                    id,
                    (this_incarnation, order),
                    now,
                    pinned,
                    new,
                    true,
                )?,
            ];
            let Some(reasons) = self.transact(items).await? else {
                return Ok(old);
            };
            match reasons.get(1) {
                Some((code, old_conversation)) if code == "ConditionalCheckFailed" => {
                    let live = Self::visible(old_conversation.clone(), now)?
                        .filter(|c| !c.is_deleted())
                        .ok_or_else(|| not_found(id))?;
                    if !live.holds(order) {
                        return Err(message_not_found());
                    }
                    if live.create_time.micros() != this_incarnation {
                        // The message read was an earlier conversation's leftover.
                        incarnation = Some(live.create_time.micros());
                    } else {
                        // Only the version order refused it (clocks): nothing may have happened.
                        pinned = Some(live.version);
                    }
                }
                // The message changed since it was read (an edit, a delete): read it again.
                _ => backoff(attempt).await,
            }
        }
        Err(ApiError::Aborted(format!(
            "{}/messages/{order} is changing too fast; retry",
            id.name()
        )))
    }

    /// Clears a conversation's messages up to `through` (all of them when `None`, or when it
    /// passes the highest order): one consistent read of the conversation, keys-only `Query`s of
    /// the shorter of the range it keeps and the range it newly clears (one per MB read: the
    /// count of what is kept, or of what goes), and one `UpdateItem` that moves the clear
    /// boundary and sets the count only if the conversation is still as read. Whatever the
    /// number of messages cleared, nothing is written per message: every read honours the
    /// boundary in its key condition at once, and the purger deletes the items in the
    /// background. Clearing through an order already cleared moves only `updateTime` and the
    /// etag. Allowed on a completed conversation.
    pub async fn clear_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        through: Option<u64>,
        pre: &Preconditions,
    ) -> Result<Conversation, ApiError> {
        let mut seen: Option<Option<Item>> = None;
        let mut body = None;
        for attempt in 0..MAX_RETRIES {
            let read = match seen.take() {
                Some(read) => read,
                None => {
                    let (head, read_body) = self.read_pair(owner, id).await?;
                    body = read_body;
                    head
                }
            };
            let now = Timestamp::now();
            let Some(conversation) = Self::visible(read, now)? else {
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
            let (boundary, count) = self.cleared(owner, &conversation, through).await?;
            let new = Version::next(now, Some(conversation.version));
            let mut e = Expr::new();
            // The conversation is as read: the count just taken is exact.
            Self::guard(&mut e, now, pre, Some(conversation.version), new);
            let del = e.name(attr::DELETE);
            e.condition(format!("attribute_not_exists({del})"));
            e.set(attr::CLEARED_THROUGH, item::n(boundary));
            e.set(attr::COUNT, item::n(count));
            match self.try_update(Self::key(owner, id), e).await? {
                Attempt::Written(new) => return self.with_body(owner, id, new, body).await,
                // Written since it was read (an append, say): count again from what it is now.
                Attempt::Refused(old) => seen = Some(old),
            }
            backoff(attempt).await;
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    /// The clear boundary and message count after clearing `conversation` up to `through`:
    /// the count of the kept range, or the count now less the newly cleared range's, whichever
    /// range is shorter.
    async fn cleared(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        through: Option<u64>,
    ) -> Result<(u64, u64), ApiError> {
        let (last, boundary) = (conversation.last_order, conversation.cleared_through);
        let through = through.map_or(last, |t| t.min(last));
        if through <= boundary {
            return Ok((boundary, conversation.message_count));
        }
        let (newly, kept) = (through - boundary, last - through);
        let count = if kept <= newly {
            self.count_messages(owner, conversation, (through + 1, last))
                .await?
        } else {
            let going = self
                .count_messages(owner, conversation, (boundary + 1, through))
                .await?;
            conversation.message_count.saturating_sub(going)
        };
        Ok((through, count))
    }

    /// How many messages of `conversation` (its own incarnation, not an earlier one's leftovers)
    /// hold orders `from..=to`: consistent keys-only `Query`s of that key range, one per MB.
    async fn count_messages(
        &self,
        owner: &Owner,
        conversation: &Conversation,
        (from, to): (u64, u64),
    ) -> Result<u64, ApiError> {
        if from > to {
            return Ok(0);
        }
        let partition = item::partition_key(owner, &conversation.id);
        let keys = self.message_keys(&partition, (from, to)).await?;
        Ok(keys
            .iter()
            .filter(|k| item::of_incarnation(k, conversation.create_time))
            .count() as u64)
    }

    /// Purges a conversation — live or soft-deleted — now: one conditional `UpdateItem` of its
    /// head that makes it missing for every method at once (its purge time is now, so its id is
    /// free for a create), takes it out of both indexes (their keys removed), sets its TTL to now,
    /// and marks it purged (`purged_at`), which the purger's stream filter passes: it deletes the
    /// conversation's messages, idempotency markers, body and head in the background. With
    /// `allow_missing`, a conversation that is not there is a success whatever etag was given.
    pub async fn purge(
        &self,
        owner: &Owner,
        id: &ConversationId,
        pre: &Preconditions,
        allow_missing: bool,
    ) -> Result<(), ApiError> {
        let mut pinned = pre.pinned();
        for _ in 0..MAX_RETRIES {
            let now = Timestamp::now();
            let new = Version::next(now, pinned);
            let mut e = Expr::new();
            Self::guard(&mut e, now, pre, pinned, new);
            e.set(attr::PURGE, item::n(now.micros()));
            e.set(attr::PURGED, item::n(now.micros()));
            e.set(attr::TTL, item::n(now.epoch_seconds_ceil()));
            for key in [attr::GSI_PK, attr::GSI_SK, attr::GSI2_PK, attr::GSI2_SK] {
                // Out of both indexes at once: no list reads it, even before the purger runs.
                e.remove(key);
            }
            match self.try_update(Self::key(owner, id), e).await? {
                Attempt::Written(_) => return Ok(()),
                Attempt::Refused(old) => match Self::visible(old, now)? {
                    None if allow_missing => return Ok(()),
                    None => return Err(missing(id, pre)),
                    Some(old) => {
                        pre.check(old.version)
                            .map_err(|source_kind| ApiError::Stale {
                                resource: id.name(),
                                source_kind,
                            })?;
                        // Only the version order refused it (clocks): nothing may happen since.
                        pinned = Some(old.version);
                    }
                },
            }
        }
        Err(ApiError::Aborted(format!(
            "{} is changing too fast; retry",
            id.name()
        )))
    }

    // ------------------------------------------------------------------ the purger's half

    /// Deletes the messages of one incarnation of a conversation that nothing can reach any more
    /// (the stream purger), those of orders `from..=to` — every order for an expired, replaced or
    /// purged incarnation, up to the boundary for a clear: consistent keys-only `Query`s of that
    /// key range, and `BatchWriteItem`s of 25 of those whose key names that incarnation. A later
    /// conversation of the same id has other keys, so its messages are never touched. Returns
    /// how many it deleted; a retried purge deletes what is left.
    pub async fn purge_messages(
        &self,
        partition: &str,
        incarnation: Timestamp,
        (from, to): (u64, u64),
    ) -> Result<usize, ApiError> {
        let keys: Vec<Item> = self
            .message_keys(partition, (from.max(1), to.min(MAX_ORDER)))
            .await?
            .into_iter()
            .filter(|k| item::of_incarnation(k, incarnation))
            .collect();
        for chunk in keys.chunks(25) {
            self.delete_keys(chunk.to_vec()).await?;
        }
        Ok(keys.len())
    }

    /// Deletes what a purge left of an incarnation besides its messages: its idempotency
    /// markers (they expire in a day anyway), its body ([`Store::purge_body`]), and its head while
    /// it is still that purged incarnation (a create may have taken the id meanwhile: then both
    /// stay). Each
    /// marker goes by a conditional `DeleteItem`, 25 in flight, only while it still names this
    /// incarnation: an append to a conversation created since under the same id, with a key the
    /// old one used, may write its own marker over the old one between this read and the
    /// delete (a `BatchWriteItem` has no condition: it deleted that new marker, and a repeat of
    /// the key appended again).
    /// Returns how many items it deleted.
    pub async fn purge_rest(
        &self,
        partition: &str,
        incarnation: Timestamp,
    ) -> Result<usize, ApiError> {
        let markers: Vec<Item> = self
            .keys_between(
                partition,
                (
                    item::MARKER_PREFIX.to_owned(),
                    format!("{}~", item::MARKER_PREFIX),
                ),
                Some(attr::INCARNATION),
            )
            .await?
            .into_iter()
            .filter(|m| item::marker_incarnation(m) == Some(incarnation.micros()))
            .map(|mut m| {
                m.remove(attr::INCARNATION);
                m
            })
            .collect();
        let mut deleted = 0;
        for chunk in markers.chunks(25) {
            let deletes = chunk.iter().map(|key| {
                let mut e = Expr::new();
                let (inc, this) = (
                    e.name(attr::INCARNATION),
                    e.value(item::n(incarnation.micros())),
                );
                // Only this incarnation's marker: a new conversation's under the same key stays.
                e.condition(format!("{inc} = {this}"));
                self.delete_if(key.clone(), e)
            });
            for gone in futures_util::future::join_all(deletes).await {
                deleted += usize::from(gone?);
            }
        }
        deleted += usize::from(self.purge_body(partition, incarnation).await?);
        let mut e = Expr::new();
        let (create, purged) = (e.name(attr::CREATE), e.name(attr::PURGED));
        let this = e.value(item::n(incarnation.micros()));
        // Only the purged incarnation: a conversation created under the id since stays.
        e.condition(format!("{create} = {this} AND attribute_exists({purged})"));
        let key = Item::from([
            (attr::PK.to_owned(), item::s(partition)),
            (attr::SK.to_owned(), item::s(item::CONVERSATION_SK)),
        ]);
        deleted += usize::from(self.delete_if(key, e).await?);
        Ok(deleted)
    }

    /// Deletes the body of one incarnation of a conversation (layout 4), while it is still
    /// that incarnation's: a create under the id since wrote its own, which stays. One
    /// conditional `DeleteItem`; whether it deleted one.
    pub async fn purge_body(
        &self,
        partition: &str,
        incarnation: Timestamp,
    ) -> Result<bool, ApiError> {
        let mut e = Expr::new();
        let create = e.name(attr::CREATE);
        let this = e.value(item::n(incarnation.micros()));
        e.condition(format!("{create} = {this}"));
        let key = Item::from([
            (attr::PK.to_owned(), item::s(partition)),
            (attr::SK.to_owned(), item::s(split::BODY_SK)),
        ]);
        self.delete_if(key, e).await
    }

    /// Deletes one item while `e`'s condition holds: whether it did.
    async fn delete_if(&self, key: Item, e: Expr) -> Result<bool, ApiError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::None)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(s))
                if s.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(other) => Err(classify(other)),
        }
    }

    /// The keys of a partition's messages of orders `from..=to`, any incarnation.
    async fn message_keys(
        &self,
        partition: &str,
        (from, to): (u64, u64),
    ) -> Result<Vec<Item>, ApiError> {
        if from > to {
            return Ok(Vec::new());
        }
        self.keys_between(partition, item::message_range(from, to), None)
            .await
    }

    /// The keys (and `extra`, when named) of a partition's items with sort keys `lo..=hi`:
    /// consistent keys-only `Query`s, every page.
    async fn keys_between(
        &self,
        partition: &str,
        (lo, hi): (String, String),
        extra: Option<&str>,
    ) -> Result<Vec<Item>, ApiError> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut e = Expr::new();
            let (pk, sk) = (e.name(attr::PK), e.name(attr::SK));
            let (pk_v, lo_v, hi_v) = (
                e.value(item::s(partition)),
                e.value(item::s(lo.as_str())),
                e.value(item::s(hi.as_str())),
            );
            let projection = match extra {
                Some(name) => format!("{pk}, {sk}, {}", e.name(name)),
                None => format!("{pk}, {sk}"),
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!(
                    "{pk} = {pk_v} AND {sk} BETWEEN {lo_v} AND {hi_v}"
                ))
                .projection_expression(projection)
                // Consistent: a message appended just before is counted, or deleted.
                .consistent_read(true)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(classify)?;
            keys.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(keys),
            }
        }
    }

    /// Deletes items by key, 25 to a `BatchWriteItem`, retrying what DynamoDB left unprocessed.
    pub(super) async fn delete_keys(&self, keys: Vec<Item>) -> Result<(), ApiError> {
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
