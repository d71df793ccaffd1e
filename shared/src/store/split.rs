//! Layout 4: a conversation as two items of its collection. The head (sort key `C`) holds what
//! every write moves — counters, times, lifecycle, the version, the writer tokens — and both
//! index keys; the body (sort key `B`, just before it) holds the large fields
//! ([`BODY_ATTRIBUTES`]), written only by what changes them. So an append, a complete or a delete
//! rewrites a head of a few hundred bytes, in the table and in both indexes, however large the
//! conversation's labels, metadata and seed fields are.
//!
//! Each item carries the body's version (`body_version`): a create and every write of a large
//! field set it on both in one transaction, so a read that finds them different has seen one
//! item before such a transaction and the other after (a torn read: `Query`, `BatchGetItem` and
//! the indexes are read-committed per item) and reads again. A head without `body_version` is a
//! whole conversation item of layout 3 (not yet migrated): it is read and written as it was.

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{self, CONVERSATION_SK, Item, attr, get_n};
use super::{MAX_RETRIES, Store, backoff, classify};
use crate::domain::conversation::Conversation;
use crate::domain::etag::Version;
use crate::domain::ids::{ConversationId, Owner};
use crate::domain::time::Timestamp;
use crate::error::ApiError;

/// The sort key of a conversation's body: sorts just before its head (`C`), and before every
/// message (`M#…`) and marker (`R#…`).
pub const BODY_SK: &str = "B";

/// The attributes a body holds: the contract's large fields (`agents`, `conversationProfile`,
/// `labels`, `metadata` with its size, and the seed objects).
pub const BODY_ATTRIBUTES: [&str; 10] = [
    attr::AGENTS,
    attr::PROFILE,
    attr::LABELS,
    attr::METADATA,
    attr::METADATA_BYTES,
    attr::QUALITY,
    attr::CALL,
    attr::DATA_SOURCE,
    attr::SOURCES,
    attr::PHONE,
];

/// The `by-owner` sort key of a body: its head's followed by `#`, which sorts before every
/// character an id holds, so that the two are adjacent in the index (head first).
pub fn body_index_key(head_index_key: &str) -> String {
    format!("{head_index_key}#")
}

/// The key of a conversation's body.
pub fn body_key(owner: &Owner, id: &ConversationId) -> Item {
    Item::from([
        (attr::PK.to_owned(), item::s(item::partition_key(owner, id))),
        (attr::SK.to_owned(), item::s(BODY_SK)),
    ])
}

/// Whether an item is a body.
pub fn is_body(item: &Item) -> bool {
    matches!(item.get(attr::SK), Some(AttributeValue::S(sk)) if sk == BODY_SK)
}

/// Whether a conversation's head item has a body (layout 4), rather than being the whole
/// conversation (layout 3).
pub fn has_body(head: &Item) -> bool {
    head.contains_key(attr::BODY_VERSION)
}

/// The body version an item (a head or a body) carries.
pub fn body_version(item: &Item) -> Option<i64> {
    get_n(item, attr::BODY_VERSION).ok()
}

/// Splits a whole conversation item ([`item::conversation_item`]) into its head and its body,
/// both marked with `version` (a create, a migration, a write of the large fields).
pub fn split(mut whole: Item, version: Version) -> (Item, Item) {
    let mut body = Item::new();
    for name in BODY_ATTRIBUTES {
        if let Some(value) = whole.remove(name) {
            body.insert(name.to_owned(), value);
        }
    }
    for name in [attr::PK, attr::GSI_PK, attr::CREATE] {
        if let Some(value) = whole.get(name) {
            body.insert(name.to_owned(), value.clone());
        }
    }
    body.insert(attr::SK.to_owned(), item::s(BODY_SK));
    if let Some(AttributeValue::S(key)) = whole.get(attr::GSI_SK) {
        body.insert(attr::GSI_SK.to_owned(), item::s(body_index_key(key)));
    }
    for half in [&mut whole, &mut body] {
        half.insert(attr::BODY_VERSION.to_owned(), item::n(version.0));
    }
    (whole, body)
}

/// The conversation a head and its body make, or the whole item of layout 3 (`body` is then
/// ignored). `None`: the two are not of one version (a torn read), or the body is missing.
pub fn join(head: &Item, body: Option<&Item>) -> Result<Option<Conversation>, ApiError> {
    let Some(wanted) = head.get(attr::BODY_VERSION) else {
        return item::conversation_from(head).map(Some);
    };
    let Some(body) = body.filter(|b| b.get(attr::BODY_VERSION) == Some(wanted)) else {
        return Ok(None);
    };
    item::conversation_of(head, body).map(Some)
}

/// A conversation from its head alone, the large fields left empty: what the writes that never
/// change them check (version, state, counters, times). Never answered as it is: an answer is
/// [`join`]ed with its body.
pub fn head_from(head: &Item) -> Result<Conversation, ApiError> {
    if !has_body(head) {
        return item::conversation_from(head);
    }
    let empty = Item::from([(attr::AGENTS.to_owned(), AttributeValue::L(Vec::new()))]);
    item::conversation_of(head, &empty)
}

/// An upper bound of the rendered size of a head and its body together.
pub fn rendered_bound(head: Option<&Item>, body: Option<&Item>) -> usize {
    head.map_or(0, item::rendered_bound) + body.map_or(0, item::rendered_bound)
}

impl Store {
    /// A conversation's head and body as one consistent `Query` reads them (sort keys `B` to
    /// `C`); for a layout 3 conversation the body is `None` and the head the whole item.
    pub(super) async fn read_pair(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<(Option<Item>, Option<Item>), ApiError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :body AND :head")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":pk", item::s(item::partition_key(owner, id)))
            .expression_attribute_values(":body", item::s(BODY_SK))
            .expression_attribute_values(":head", item::s(CONVERSATION_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let (mut head, mut body) = (None, None);
        for found in out.items.unwrap_or_default() {
            if is_body(&found) {
                body = Some(found);
            } else {
                head = Some(found);
            }
        }
        Ok((head, body))
    }

    /// A conversation's body alone (one consistent `GetItem`).
    pub(super) async fn read_body(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<Item>, ApiError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(body_key(owner, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    /// A conversation as one version: [`Store::read_pair`], read again while torn. Returns the
    /// head (to decide visibility and for the writes' checks) with the conversation it makes;
    /// `None` when there is no head. A head that is no longer visible (expired, or purged: the
    /// purger may have deleted its body already) comes with its own fields alone: it is missing
    /// for every method, and no answer shows it.
    pub(super) async fn read_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<(Item, Conversation)>, ApiError> {
        for attempt in 0..MAX_RETRIES {
            let (head, body) = self.read_pair(owner, id).await?;
            let Some(head) = head else {
                return Ok(None);
            };
            if !item::is_visible(&head, Timestamp::now()) {
                let conversation = head_from(&head)?;
                return Ok(Some((head, conversation)));
            }
            if let Some(conversation) = join(&head, body.as_ref())? {
                return Ok(Some((head, conversation)));
            }
            backoff(attempt).await;
        }
        Err(torn(id))
    }

    /// The conversation a head just written or read belongs to: joined with `body` (read
    /// alongside it) when that is of the head's version; otherwise the body read again while a
    /// write of the large fields is between them, and when the body has moved past the head,
    /// the conversation as it is now (one version, later than the head).
    pub(super) async fn with_body(
        &self,
        owner: &Owner,
        id: &ConversationId,
        head: Item,
        body: Option<Item>,
    ) -> Result<Conversation, ApiError> {
        if let Some(conversation) = join(&head, body.as_ref())? {
            return Ok(conversation);
        }
        let wanted = body_version(&head);
        for attempt in 0..MAX_RETRIES {
            let body = self.read_body(owner, id).await?;
            if let Some(conversation) = join(&head, body.as_ref())? {
                return Ok(conversation);
            }
            if body.as_ref().and_then(body_version) > wanted {
                // A later write of the large fields: the conversation as it is now.
                if let Some((_, now)) = self.read_conversation(owner, id).await? {
                    return Ok(now);
                }
            }
            backoff(attempt).await;
        }
        Err(torn(id))
    }

    /// The visible conversation (soft-deleted ones included) as one version, with its head.
    pub(super) async fn visible_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<(Item, Conversation)>, ApiError> {
        let read = self.read_conversation(owner, id).await?;
        let now = Timestamp::now();
        Ok(read.filter(|(head, _)| item::is_visible(head, now)))
    }
}

fn torn(id: &ConversationId) -> ApiError {
    ApiError::Aborted(format!(
        "{} is changing too fast to be read as one version; retry",
        id.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::{NewConversation, Writable};
    use serde_json::json;

    fn largest() -> Conversation {
        let now = Timestamp::parse("2026-12-03T08:00:00.5Z").expect("valid");
        let body = json!({"displayName": "d", "agents": ["a", "b"], "conversationProfile": "p",
            "labels": {"k": "v"}, "metadata": {"n": 1.5}, "sources": [{"model": "m", "explore": "e"}],
            "phoneNumber": {"countryCode": 1, "phoneNumber": "+14155550100"},
            "qualityMetadata": {"customerSatisfactionRating": 5, "agentInfo": [{"agentId": "a"}]},
            "callMetadata": {"customerChannel": 1},
            "dataSource": {"gcsSource": {"audioUri": "gs://a/b"}}, "ttl": "60s"});
        let w = Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
        NewConversation::try_from(w)
            .expect("new")
            .into_conversation(
                ConversationId::parse("conv-1").expect("id"),
                Owner::from_claim("o").expect("owner"),
                None,
                now,
            )
    }

    #[test]
    fn a_head_and_its_body_join_into_the_conversation_they_were_split_from() {
        let c = largest();
        let (head, body) = split(item::conversation_item(&c), c.version);
        assert_eq!(join(&head, Some(&body)).expect("valid"), Some(c.clone()));
        for name in BODY_ATTRIBUTES {
            assert!(!head.contains_key(name), "{name} left in the head");
        }
        assert!(is_body(&body) && !is_body(&head));
        let key = |i: &Item, k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned();
        assert_eq!(
            key(&body, attr::GSI_SK),
            key(&head, attr::GSI_SK).map(|k| format!("{k}#"))
        );
        assert!(
            !body.contains_key(attr::GSI2_SK),
            "bodies stay out of by-activity"
        );
        assert!(!body.contains_key(attr::TTL));
    }

    #[test]
    fn a_torn_pair_or_a_missing_body_joins_into_nothing() {
        let c = largest();
        let (head, body) = split(item::conversation_item(&c), c.version);
        let (_, later) = split(item::conversation_item(&c), Version(c.version.0 + 1));
        assert_eq!(join(&head, Some(&later)).expect("valid"), None);
        assert_eq!(join(&head, None).expect("valid"), None);
        // A whole item of layout 3 needs no body.
        let whole = item::conversation_item(&c);
        assert_eq!(join(&whole, Some(&body)).expect("valid"), Some(c));
    }

    #[test]
    fn a_head_alone_has_the_small_fields_and_empty_large_ones() {
        let c = largest();
        let (head, _) = split(item::conversation_item(&c), c.version);
        let small = head_from(&head).expect("valid");
        assert_eq!(
            (small.version, small.create_time, small.display_name.clone()),
            (c.version, c.create_time, c.display_name.clone())
        );
        assert!(small.agents.is_empty() && small.labels.is_empty() && small.metadata.is_none());
    }

    #[test]
    fn a_body_sorts_right_before_its_head_in_by_owner() {
        let head = item::index_sort_key(Timestamp::from_micros(5).expect("valid"), &id("a"));
        let body = body_index_key(&head);
        for other in ["a-b", "a0", "aa", "a-0"] {
            let next = item::index_sort_key(Timestamp::from_micros(5).expect("valid"), &id(other));
            assert!(head < body && body < next, "{other}");
        }
    }

    fn id(text: &str) -> ConversationId {
        ConversationId::parse(text).expect("id")
    }
}
