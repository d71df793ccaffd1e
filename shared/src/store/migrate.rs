//! Rewrites a table of layout 1 (before revision 2) or 2 into this version's layout
//! ([`item::LAYOUT`]). From layout 1: message keys `M#{incarnation}#{order}` become
//! `M#{order}#{incarnation}` and get a version, conversations get the `by-activity` index keys,
//! and owner keys are escaped ([`crate::domain::ids::Owner::key`]; only owners holding `%` or `/`
//! move). From layout 2: a conversation's metadata becomes a map of JSON texts with its size, and
//! it gets the always-present parents of the seed objects (`store::seed_items`). Idempotent and
//! resumable: items already in the new layout are left alone, and a rerun finishes what an
//! interrupted run began. The table's marker is written last.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use super::item::{self, Item, attr};
use super::{schema, seed_items};
use crate::domain::ids::Owner;
use crate::domain::time::Timestamp;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a migration did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Items read.
    pub scanned: usize,
    /// Conversation items rewritten (index keys added, or moved to an escaped owner key).
    pub conversations: usize,
    /// Message items moved to their new keys.
    pub messages: usize,
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
        let done = migrate_items(client, table, page.items.unwrap_or_default()).await?;
        report.scanned += done.scanned;
        report.conversations += done.conversations;
        report.messages += done.messages;
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => break,
        }
    }
    schema::mark_layout(client, table).await?;
    Ok(report)
}

/// Rewrites what `scanned` (one page of the scan) holds in an old layout.
pub async fn migrate_items(
    client: &Client,
    table: &str,
    scanned: Vec<Item>,
) -> Result<Report, BoxError> {
    let mut report = Report::default();
    let mut puts = Vec::new();
    let mut deletes = Vec::new();
    for old in scanned {
        report.scanned += 1;
        let Some(new) = rewritten(&old)? else {
            continue;
        };
        if item::sort_key(&new)? == item::CONVERSATION_SK {
            report.conversations += 1;
        } else {
            report.messages += 1;
        }
        if key_of(&new) != key_of(&old) {
            deletes.push(key_of(&old));
        }
        puts.push(new);
    }
    // New items first: an interrupted run leaves both, never neither, and a rerun ends it.
    write(client, table, puts, false).await?;
    write(client, table, deletes, true).await?;
    Ok(report)
}

fn key_of(item: &Item) -> Item {
    [attr::PK, attr::SK]
        .into_iter()
        .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect()
}

/// The item in the new layout, or `None` when it already is.
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
    let mut new = old.clone();
    if sk == item::CONVERSATION_SK {
        let reshaped = layout_3(&mut new)?;
        if old.contains_key(attr::GSI2_PK) {
            return Ok(reshaped.then_some(new));
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
    if item::message_key_parts(&sk).is_some() {
        return Ok(None);
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

/// Puts (or, with `delete`, deletes by key) items 25 at a time, retrying unprocessed ones.
async fn write(
    client: &Client,
    table: &str,
    items: Vec<Item>,
    delete: bool,
) -> Result<(), BoxError> {
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| -> Result<WriteRequest, BoxError> {
                Ok(if delete {
                    WriteRequest::builder()
                        .delete_request(DeleteRequest::builder().set_key(Some(i.clone())).build()?)
                        .build()
                } else {
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(i.clone())).build()?)
                        .build()
                })
            })
            .collect::<Result<_, _>>()?;
        for attempt in 0..20 {
            if requests.is_empty() {
                break;
            }
            let out = client
                .batch_write_item()
                .request_items(table, std::mem::take(&mut requests))
                .send()
                .await?;
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
            super::backoff(attempt).await;
        }
        if !requests.is_empty() {
            return Err("DynamoDB kept leaving writes unprocessed; run the migration again".into());
        }
    }
    Ok(())
}
