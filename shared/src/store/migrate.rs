//! Rewrites a table of layout 1 (before revision 2), 2 or 3 into this version's layout
//! ([`item::LAYOUT`]). From layout 1: message keys `M#{incarnation}#{order}` become
//! `M#{order}#{incarnation}` and get a version, conversations get the `by-activity` index keys,
//! and owner keys are escaped ([`crate::domain::ids::Owner::key`]; only owners holding `%` or `/`
//! move). From layout 2: a conversation's metadata becomes a map of JSON texts with its size, and
//! it gets the always-present parents of the seed objects (`store::seed_items`). From layout 3:
//! each conversation item becomes a head and a body (`store::split`), in one transaction that
//! puts the head over the whole item only while it is as the scan read it.
//!
//! It runs while the service serves the table, so every write is conditional on the item being
//! as the scan read it (its version, `updated_at`, which every write moves; a layout-1 message
//! has none and is never written again): a same-key rewrite is one conditional `PutItem`; a key
//! move is one transaction that puts the new key only if it is free and deletes the old one only
//! if it is still as read. A refused write reads the item again (consistently) and redoes the
//! rewrite from what it holds, or skips it when it is gone or already in this layout; a refused
//! move of a layout-1 conversation (a function of the earlier version wrote to it) also reads its
//! collection again, so a message written under the old key meanwhile moves with it. A new key
//! that holds another conversation (this version created one of that id while the old one was
//! not visible to it) is never written over: the old conversation and its messages stay under
//! their old key and are reported ([`Report::left`]). Idempotent and resumable: items already in
//! the new layout are left alone, and a rerun finishes what an interrupted run began. The
//! table's marker is written last.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::item::{self, Item, attr};
use super::{MAX_RETRIES, THROTTLED, backoff, schema, seed_items, split};
use crate::domain::ids::Owner;
use crate::domain::time::Timestamp;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Items the scan read.
    pub scanned: usize,
    /// Conversation items rewritten (index keys added, reshaped, or moved to an escaped owner
    /// key).
    pub conversations: usize,
    /// Message items moved to their new keys.
    pub messages: usize,
    /// Writes DynamoDB refused because the item was no longer as read (written by the service
    /// meanwhile, moved or deleted, or locked by a transaction in progress); each item was read
    /// again and rewritten from what it then held, or skipped when nothing was left to do.
    pub refused: usize,
    /// Old partition keys left where they were: their new key holds another conversation of the
    /// same id, which this version created while the old one was not visible to it. The old
    /// conversation and its messages are kept as they were, for the operator to decide.
    pub left: Vec<String>,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.scanned += other.scanned;
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.refused += other.refused;
        for key in other.left {
            self.leave(key);
        }
    }

    fn leave(&mut self, partition: String) {
        if !self.left.contains(&partition) {
            self.left.push(partition);
        }
    }
}

/// Migrates `table` to this version's layout, then marks it.
pub async fn migrate(client: &Client, table: &str) -> Result<Report, BoxError> {
    let mut report = Report::default();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        report.add(migrate_items(client, table, page.items.unwrap_or_default()).await?);
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    schema::mark_layout(client, table).await?;
    Ok(report)
}

/// Rewrites what `scanned` (one page of the scan, in its order: a conversation before its
/// messages) holds in an old layout, each item by one conditional write, redone from a fresh
/// read when refused.
pub async fn migrate_items(
    client: &Client,
    table: &str,
    scanned: Vec<Item>,
) -> Result<Report, BoxError> {
    let mut report = Report {
        scanned: scanned.len(),
        ..Report::default()
    };
    let mut reread = Vec::new();
    for old in scanned {
        let refused = report.refused;
        migrate_item(client, table, old.clone(), &mut report).await?;
        // A layout-1 conversation written since the scan: if a function of the earlier
        // version wrote it, what it appended under old message keys may lie past this page.
        let layout_1 =
            item::sort_key(&old)? == item::CONVERSATION_SK && !old.contains_key(attr::GSI2_PK);
        if layout_1 && report.refused > refused {
            reread.push(item::get_s(&old, attr::PK)?.to_owned());
        }
    }
    for partition in reread {
        for old in collection(client, table, &partition).await? {
            migrate_item(client, table, old, &mut report).await?;
        }
    }
    Ok(report)
}

/// Rewrites one item: until its write is taken, or there is nothing left to do (gone, already
/// in this layout, or left because its new key is taken); a bounded number of refusals.
async fn migrate_item(
    client: &Client,
    table: &str,
    scanned: Item,
    report: &mut Report,
) -> Result<(), BoxError> {
    let key = key_of(&scanned);
    let mut current = Some(scanned);
    for attempt in 0..MAX_RETRIES {
        let Some(old) = current.take() else {
            return Ok(()); // deleted since it was read
        };
        let Some(new) = rewritten(&old)? else {
            return Ok(());
        };
        let conversation = item::sort_key(&new)? == item::CONVERSATION_SK;
        let outcome = match (conversation, key_of(&new) == key) {
            // Layout 4: a conversation is a head and a body, marked with its version.
            (true, same_key) => {
                let version = crate::domain::etag::Version(item::get_n(&new, attr::VERSION)?);
                let (head, body) = split::split(new, version);
                if same_key {
                    split_in_place(client, table, &old, head, body).await?
                } else {
                    relocate(client, table, &old, head, Some(body)).await?
                }
            }
            (false, true) => rewrite(client, table, &old, new).await?,
            (false, false) => relocate(client, table, &old, new, None).await?,
        };
        match outcome {
            Outcome::Written if conversation => report.conversations += 1,
            Outcome::Written => report.messages += 1,
            Outcome::Left => report.leave(item::get_s(&old, attr::PK)?.to_owned()),
            Outcome::Refused => {
                report.refused += 1;
                backoff(attempt).await;
                current = read(client, table, key.clone()).await?;
                continue;
            }
        }
        return Ok(());
    }
    Err(format!(
        "{key:?} kept changing while it was migrated ({MAX_RETRIES} refused writes); run the \
         migration again"
    )
    .into())
}

/// What became of one conditional write.
enum Outcome {
    /// Written (or found done by an earlier run, which this one finished).
    Written,
    /// The item is no longer as read: read it again.
    Refused,
    /// Not moved: its new key holds another conversation (or its conversation was left so).
    Left,
}

/// A condition with the names and values it uses.
struct Condition {
    expression: String,
    names: HashMap<String, String>,
    values: Option<Item>,
}

impl Condition {
    /// The key is free.
    fn absent() -> Self {
        Self {
            expression: "attribute_not_exists(#pk)".into(),
            names: HashMap::from([("#pk".to_owned(), attr::PK.to_owned())]),
            values: None,
        }
    }

    /// The item is there and as `old` was read: at the same version (every write moves it) or,
    /// read without one, still without one (a layout-1 message, which nothing writes again).
    fn as_read(old: &Item) -> Self {
        let names = HashMap::from([
            ("#pk".to_owned(), attr::PK.to_owned()),
            ("#version".to_owned(), attr::VERSION.to_owned()),
        ]);
        match old.get(attr::VERSION) {
            Some(version) => Self {
                expression: "attribute_exists(#pk) AND #version = :read".into(),
                names,
                values: Some(Item::from([(":read".to_owned(), version.clone())])),
            },
            None => Self {
                expression: "attribute_exists(#pk) AND attribute_not_exists(#version)".into(),
                names,
                values: None,
            },
        }
    }
}

/// Puts `new` over `old` (the same key) if nothing was written to it since it was read.
async fn rewrite(client: &Client, table: &str, old: &Item, new: Item) -> Result<Outcome, BoxError> {
    let condition = Condition::as_read(old);
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(new))
        // Nothing the service wrote since the scan is undone, nothing deleted comes back.
        .condition_expression(condition.expression)
        .set_expression_attribute_names(Some(condition.names))
        .set_expression_attribute_values(condition.values)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Outcome::Written),
        Err(e) if is_refusal(&e) => Ok(Outcome::Refused),
        Err(e) => Err(e.into()),
    }
}

/// Puts a whole conversation's head over it and its body beside it (layout 4), in one
/// transaction, if nothing was written to it since it was read. A layout 3 item has no body, and
/// a conversation created since by this version under the id is no longer as read: the body is
/// put without a condition.
async fn split_in_place(
    client: &Client,
    table: &str,
    old: &Item,
    head: Item,
    body: Item,
) -> Result<Outcome, BoxError> {
    let as_read = Condition::as_read(old);
    let put_head = Put::builder()
        .table_name(table)
        .set_item(Some(head))
        // Nothing the service wrote since the scan is undone, nothing deleted comes back.
        .condition_expression(as_read.expression)
        .set_expression_attribute_names(Some(as_read.names))
        .set_expression_attribute_values(as_read.values)
        .build()?;
    let put_body = Put::builder()
        .table_name(table)
        .set_item(Some(body))
        .build()?;
    transact(
        client,
        vec![
            TransactWriteItem::builder().put(put_head).build(),
            TransactWriteItem::builder().put(put_body).build(),
        ],
    )
    .await
    .map(|reasons| match reasons {
        None => Outcome::Written,
        Some(_) => Outcome::Refused,
    })
}

/// Runs a migration transaction: `None` when it committed, the cancellation reasons when a
/// condition failed or another transaction was in the way (throttling included: read again and
/// redo), an error for anything else.
async fn transact(
    client: &Client,
    actions: Vec<TransactWriteItem>,
) -> Result<Option<Vec<aws_sdk_dynamodb::types::CancellationReason>>, BoxError> {
    let result = client
        .transact_write_items()
        // A token of its own: the SDK's clock-seeded one can repeat across processes.
        .client_request_token(uuid::Uuid::new_v4().to_string())
        .set_transact_items(Some(actions))
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
            let TransactWriteItemsError::TransactionCanceledException(cancel) = s.into_err() else {
                return Err("unreachable: matched above".into());
            };
            let retried = ["None", "ConditionalCheckFailed", "TransactionConflict"];
            let codes = cancel
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"));
            if !codes
                .clone()
                .all(|c| retried.contains(&c) || THROTTLED.contains(&c))
            {
                return Err(cancel.into());
            }
            Ok(Some(cancel.cancellation_reasons().to_vec()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Moves `old` to `new`'s key in one transaction (with `body` beside it, for a conversation):
/// the new key is put only if it is free, the old one deleted only if it is still as read, and a
/// message whose partition moves goes only once its conversation has left the old partition (so
/// that one left there keeps its messages).
async fn relocate(
    client: &Client,
    table: &str,
    old: &Item,
    new: Item,
    body: Option<Item>,
) -> Result<Outcome, BoxError> {
    let message = item::sort_key(old)? != item::CONVERSATION_SK;
    let old_partition = item::get_s(old, attr::PK)?.to_owned();
    let moves_partition = item::get_s(&new, attr::PK)? != old_partition;
    let free = Condition::absent();
    // Nothing this version wrote under the new key is overwritten.
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(new))
        .condition_expression(free.expression)
        .set_expression_attribute_names(Some(free.names))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()?;
    let as_read = Condition::as_read(old);
    // Nothing written to the old item since the scan is lost, nothing deleted comes back.
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key_of(old)))
        .condition_expression(as_read.expression)
        .set_expression_attribute_names(Some(as_read.names))
        .set_expression_attribute_values(as_read.values)
        .build()?;
    let mut actions = vec![
        TransactWriteItem::builder().put(put).build(),
        TransactWriteItem::builder().delete(delete).build(),
    ];
    if let Some(body) = body {
        // A conversation's body (a conversation has no check: a message's stays third).
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(body))
            .build()?;
        actions.push(TransactWriteItem::builder().put(put).build());
    }
    if message && moves_partition {
        let gone = Condition::absent();
        // A message follows its conversation: never away from one left under the old key.
        let check = ConditionCheck::builder()
            .table_name(table)
            .key(attr::PK, item::s(&old_partition))
            .key(attr::SK, item::s(item::CONVERSATION_SK))
            .condition_expression(gone.expression)
            .set_expression_attribute_names(Some(gone.names))
            .build()?;
        actions.push(TransactWriteItem::builder().condition_check(check).build());
    }
    let Some(reasons) = transact(client, actions).await? else {
        return Ok(Outcome::Written);
    };
    let failed = |i: usize| {
        reasons
            .get(i)
            .is_some_and(|r| r.code() == Some("ConditionalCheckFailed"))
    };
    if failed(0) {
        let there = reasons[0].item().cloned().unwrap_or_default();
        return taken(client, table, old, &there).await;
    }
    if failed(2) {
        return Ok(Outcome::Left);
    }
    Ok(Outcome::Refused)
}

/// `old`'s new key already holds `there`. The same message, or the same conversation (the same
/// `create_time`): an earlier run put it and stopped before deleting the old item, and this
/// version may have written it since; it is kept, and the old item deleted if still as read.
/// Another conversation of the same id: `old` is left where it is.
async fn taken(
    client: &Client,
    table: &str,
    old: &Item,
    there: &Item,
) -> Result<Outcome, BoxError> {
    let conversation = item::sort_key(old)? == item::CONVERSATION_SK;
    if there.is_empty() {
        return Ok(Outcome::Refused); // no old item came back: read again
    }
    if conversation && there.get(attr::CREATE) != old.get(attr::CREATE) {
        return Ok(Outcome::Left);
    }
    let as_read = Condition::as_read(old);
    let result = client
        .delete_item()
        .table_name(table)
        .set_key(Some(key_of(old)))
        // Nothing written to the old item since the scan is lost.
        .condition_expression(as_read.expression)
        .set_expression_attribute_names(Some(as_read.names))
        .set_expression_attribute_values(as_read.values)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Outcome::Written),
        Err(e) if is_refusal(&e) => Ok(Outcome::Refused),
        Err(e) => Err(e.into()),
    }
}

/// Whether a single write was refused because its item was not as read, or was locked by a
/// transaction in progress: both mean "read again and redo".
fn is_refusal<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    matches!(
        error.code(),
        Some("ConditionalCheckFailedException" | "TransactionConflictException")
    )
}

/// An item as stored now (one consistent `GetItem`), if it is there.
async fn read(client: &Client, table: &str, key: Item) -> Result<Option<Item>, BoxError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await?;
    Ok(out.item)
}

/// Every item under a partition key now (consistent `Query` pages).
async fn collection(client: &Client, table: &str, partition: &str) -> Result<Vec<Item>, BoxError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_values(":pk", item::s(partition))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(items),
        }
    }
}

fn key_of(item: &Item) -> Item {
    [attr::PK, attr::SK]
        .into_iter()
        .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect()
}

/// The item in layout 3's shape (a conversation is then split into layout 4's head and body), or
/// `None` when it needs nothing.
fn rewritten(old: &Item) -> Result<Option<Item>, BoxError> {
    let pk = item::get_s(old, attr::PK)?;
    let Some(rest) = pk.strip_prefix("CONV#") else {
        return Ok(None); // the layout marker
    };
    // The id holds no `#`: the owner is everything before the last one.
    let (owner, id) = rest
        .rsplit_once('#')
        .ok_or("a partition key without an id")?;
    let sk = item::sort_key(old)?.to_owned();
    if sk == split::BODY_SK || split::has_body(old) {
        return Ok(None); // a conversation of layout 4, head or body
    }
    if old.contains_key(attr::PURGED) {
        return Ok(None); // purged (out of both indexes): the purger deletes it
    }
    let mut new = old.clone();
    if sk == item::CONVERSATION_SK {
        layout_3(&mut new)?;
        if old.contains_key(attr::GSI2_PK) {
            // A whole conversation of layout 2 or 3: reshaped, then split.
            return Ok(Some(new));
        }
        // Layouts 1 and 2 predate delegation: every owner is a caller.
        let owner = Owner::from_stored(item::get_s(old, attr::OWNER)?.to_owned(), None);
        let last_used = Timestamp::from_micros(item::get_n(old, attr::LAST_USED)?)
            .ok_or("a last_used_time out of range")?;
        let id = crate::domain::ids::ConversationId::parse(id).map_err(|e| e.to_string())?;
        new.insert(attr::PK.into(), item::s(item::partition_key(&owner, &id)));
        new.insert(attr::GSI_PK.into(), item::s(owner.key()));
        new.insert(attr::GSI2_PK.into(), item::s(owner.key()));
        new.insert(
            attr::GSI2_SK.into(),
            item::s(item::index_sort_key(last_used, &id)),
        );
        return Ok(Some(new));
    }
    if item::message_key_parts(&sk).is_some() || sk.starts_with(item::MARKER_PREFIX) {
        return Ok(None); // a message of layout 2 or 3, or an idempotency marker (any layout)
    }
    // Layout 1: M#{i64::MAX - incarnation, 19 digits}#{order, 10 digits}.
    let (inverted, order) = sk
        .strip_prefix(item::MESSAGE_PREFIX)
        .and_then(|r| r.split_once('#'))
        .ok_or_else(|| format!("an unknown sort key {sk:?}"))?;
    let incarnation = i64::MAX
        - inverted
            .parse::<i64>()
            .map_err(|_| format!("an unknown sort key {sk:?}"))?;
    let order: u64 = order
        .parse()
        .map_err(|_| format!("an unknown sort key {sk:?}"))?;
    let incarnation = Timestamp::from_micros(incarnation).ok_or("an incarnation out of range")?;
    let escaped = Owner::from_stored(owner.to_owned(), None).key();
    new.insert(attr::PK.into(), item::s(format!("CONV#{escaped}#{id}")));
    new.insert(
        attr::SK.into(),
        item::s(item::message_sort_key(incarnation, order)),
    );
    if !new.contains_key(attr::VERSION) {
        let created = item::get_n(old, attr::CREATE)?;
        new.insert(attr::VERSION.into(), item::n(created));
    }
    Ok(Some(new))
}

/// Gives a conversation item layout 3's shapes (metadata a map of JSON texts and its size, the
/// seed objects' parents); whether anything changed.
fn layout_3(conversation: &mut Item) -> Result<bool, BoxError> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut changed = false;
    let metadata = seed_items::metadata_from(conversation).map_err(|e| e.to_string())?;
    if !matches!(conversation.get(attr::METADATA), Some(AttributeValue::M(_))) {
        conversation.insert(
            attr::METADATA.into(),
            seed_items::metadata(metadata.as_ref()),
        );
        changed = true;
    }
    if !conversation.contains_key(attr::METADATA_BYTES) {
        let size = seed_items::metadata_size(metadata.as_ref());
        conversation.insert(attr::METADATA_BYTES.into(), item::n(size));
        changed = true;
    }
    let empty = || AttributeValue::M(Default::default());
    for key in [attr::QUALITY, attr::CALL] {
        if !conversation.contains_key(key) {
            conversation.insert(key.into(), empty());
            changed = true;
        }
    }
    let source = seed_items::data_source_from(conversation).map_err(|e| e.to_string())?;
    let members_present = conversation
        .get(attr::DATA_SOURCE)
        .and_then(|v| v.as_m().ok())
        .is_some_and(|m| m.contains_key("gcs_source") && m.contains_key("dialogflow_source"));
    if !members_present {
        conversation.insert(attr::DATA_SOURCE.into(), seed_items::data_source(&source));
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_marker_is_in_no_old_layout() {
        let marker = Item::from([
            (attr::PK.to_owned(), item::s("CONV#user-1#c-1")),
            (attr::SK.to_owned(), item::s("R#0a1b2c3d")),
            (attr::INCARNATION.to_owned(), item::n(1)),
        ]);
        assert_eq!(rewritten(&marker).ok(), Some(None));
    }

    #[test]
    fn a_write_is_conditional_on_the_version_read_or_on_its_absence() {
        let read = Item::from([(attr::VERSION.to_owned(), item::n(7))]);
        let at = Condition::as_read(&read);
        assert_eq!(at.expression, "attribute_exists(#pk) AND #version = :read");
        assert_eq!(
            at.values,
            Some(Item::from([(":read".to_owned(), item::n(7))]))
        );
        let unversioned = Condition::as_read(&Item::new());
        assert_eq!(
            unversioned.expression,
            "attribute_exists(#pk) AND attribute_not_exists(#version)"
        );
        assert_eq!(unversioned.values, None);
    }
}
