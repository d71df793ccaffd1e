//! A conversation's messages: append (one read, one transaction), get one by order, list in
//! either order and by order range, the newest for the `FULL` view, and the purge of what an
//! earlier conversation of the same id left behind. Message keys are
//! `M#{order}#{incarnation}` ([`item::message_sort_key`]): an order range is a key range, and
//! every read keeps only the items of the conversation's own incarnation.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    DeleteRequest, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update as TxUpdate,
    WriteRequest,
};

use super::expr::Expr;
use super::item::{self, Item, attr};
use super::{
    MAX_PAGE_BYTES, MAX_RETRIES, Page, Store, THROTTLED, backoff, classify, missing, not_found,
    rendered_len,
};
use crate::domain::conversation::{Conversation, Lifecycle};
use crate::domain::etag::{Preconditions, Version};
use crate::domain::ids::{ConversationId, Owner};
use crate::domain::message::{MAX_ORDER, Message, NewMessage};
use crate::domain::message_query::{MessageFilter, MessageOrder};
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

impl Store {
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
            let message = Message::appended(id.clone(), conversation.message_count + 1, &new, now);
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
        // The conversation moves up the by-activity index.
        e.set(
            attr::GSI2_SK,
            item::s(item::index_sort_key(now, &conversation.id)),
        );
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
        let (header, out) = futures_util::future::join(
            self.read(owner, id),
            self.messages_query(owner, id, &lo, &hi, false, 4, None),
        )
        .await;
        let conversation = Self::live(header?, id)?;
        let message_not_found = || ApiError::NotFound(format!("{}/messages/{order}", id.name()));
        if order > conversation.message_count {
            return Err(message_not_found());
        }
        out?.items
            .unwrap_or_default()
            .iter()
            .find(|i| item::of_incarnation(i, conversation.create_time))
            .map(|i| item::message_from(id, i))
            .transpose()?
            .ok_or_else(message_not_found)
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
        let out = out?;
        let more_in_table = out.last_evaluated_key.is_some();
        let items = out.items.unwrap_or_default();
        let last_read = items
            .last()
            .and_then(|i| item::sort_key(i).ok().map(str::to_owned));
        // As for conversations: messages are measured only when the page could pass the budget.
        let could_overflow = items.iter().map(item::rendered_bound).sum::<usize>() > MAX_PAGE_BYTES;
        let mut messages = Vec::new();
        let mut bytes = 0;
        let mut last_kept = None;
        for i in &items {
            if !item::of_incarnation(i, incarnation) {
                continue;
            }
            let message = item::message_from(id, i)?;
            if filter.kind.is_some_and(|k| k != message.kind) {
                continue;
            }
            if could_overflow {
                bytes += rendered_len(&message.to_json());
            }
            let over_budget = !messages.is_empty() && bytes > MAX_PAGE_BYTES;
            if messages.len() == query.page_size || over_budget {
                // More than the page holds: the next page starts after the last kept message.
                return Ok(self.message_page(owner, &scope, incarnation, messages, last_kept));
            }
            last_kept = Some(item::sort_key(i)?.to_owned());
            messages.push(message);
        }
        let next = if more_in_table { last_read } else { None };
        Ok(self.message_page(owner, &scope, incarnation, messages, next))
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

    /// The newest `limit` message items of a conversation, any incarnation, newest first (the
    /// `FULL` view's half of its round trip).
    pub(super) async fn latest_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        limit: usize,
    ) -> Result<Vec<Item>, ApiError> {
        let (lo, hi) = item::message_range(1, MAX_ORDER);
        let out = self
            .messages_query(owner, id, &lo, &hi, true, limit, None)
            .await?;
        Ok(out.items.unwrap_or_default())
    }

    /// One consistent `Query` of a conversation's message keys `lo..=hi`.
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
            .scan_index_forward(!descending)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
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
