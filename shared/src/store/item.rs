//! Mapping between domain values and DynamoDB items. Nothing outside the store sees an
//! `AttributeValue`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use crate::domain::conversation::{Conversation, Labels, Lifecycle, Stage};
use crate::domain::etag::Version;
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::message::{Message, MessageType, ToolCall};
use crate::domain::time::Timestamp;
use crate::error::ApiError;

pub use super::attribute::{Item, attr, n, s};
use super::seed_items;

/// The sort key of a conversation item.
pub const CONVERSATION_SK: &str = "C";

/// The partition key of the table's layout marker: one item saying which layout of keys and
/// attributes the table holds ([`LAYOUT`]). Conversation keys start with `CONV#`, so no
/// conversation ever has it. Functions read it at init, which also opens the connection
/// ([`crate::store::Store::warm_up`]).
pub const LAYOUT_KEY: &str = "#layout";

/// The layout this version writes and reads. 1: message keys `M#{incarnation}#{order}`, one
/// index. 2: message keys `M#{order}#{incarnation}` and a message version, the `by-activity`
/// index, owner keys escaped. 3: a conversation's metadata a map of JSON texts with its size,
/// and the always-present parents of the seed objects (`store::seed_items`). 4: a conversation
/// is a head and a body (`store::split`); a whole item of layout 3 is still read and written as
/// it was, until `migrate` (tests/src/bin) splits it — it rewrites a table of layout 1, 2 or 3.
pub const LAYOUT: i64 = 4;

/// The sort-key prefix of every message.
pub const MESSAGE_PREFIX: &str = "M#";

/// The sort-key prefix of idempotency markers (after every message: no message read sees them).
pub const MARKER_PREFIX: &str = "R#";

/// How long an idempotency marker is kept: a repeated key is recognised for at least this long
/// (DynamoDB's TTL then removes it, lazily).
pub const MARKER_LIFETIME: crate::domain::time::Duration =
    crate::domain::time::Duration::TWENTY_FOUR_HOURS;

/// DynamoDB's largest item.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// A TTL value meaning "never": 9999-12-31T23:59:59Z.
pub const NEVER: i64 = 253_402_300_799;

/// The partition key of a conversation and its messages. The id never holds `#`, so the key is
/// unambiguous whatever the owner key holds.
pub fn partition_key(owner: &Owner, id: &ConversationId) -> String {
    format!("CONV#{}#{}", owner.key(), id.as_str())
}

/// An index sort key: a time (createTime or lastUsedTime) then the id, so that ties keep a
/// stable order.
pub fn index_sort_key(time: Timestamp, id: &ConversationId) -> String {
    format!("{:018}#{}", time.micros().max(0), id.as_str())
}

/// The sort key of one message: its order, then its conversation's incarnation (`createTime`).
/// Order first, so that an order range is a key range; the incarnation keeps what an earlier
/// conversation of the same id left behind (until the purger deletes it) apart from this one's.
pub fn message_sort_key(incarnation: Timestamp, order: u64) -> String {
    format!("M#{order:010}#{:019}", incarnation.micros().max(0))
}

/// The first and last sort keys of messages `from..=to` (any incarnation).
pub fn message_range(from: u64, to: u64) -> (String, String) {
    (format!("M#{from:010}#"), format!("M#{to:010}#~"))
}

/// The order and incarnation (microseconds) a message sort key names, if it is one.
pub fn message_key_parts(sort_key: &str) -> Option<(u64, i64)> {
    let rest = sort_key.strip_prefix(MESSAGE_PREFIX)?;
    let (order, incarnation) = rest.split_once('#')?;
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(order, 10) || !digits(incarnation, 19) {
        return None;
    }
    Some((order.parse().ok()?, incarnation.parse().ok()?))
}

/// The tokens of the last four `UpdateItem`s of a conversation item, newest first: each such
/// write shifts them by one (`Store::sign`).
pub const WRITER_SLOTS: [&str; 4] = [attr::WRITER, "writer_1", "writer_2", "writer_3"];

/// Whether the write with `token` is among the last four that signed `old`: it applied, and
/// `old` holds it and whatever was written after it.
pub fn written_by(old: &Item, token: &str) -> bool {
    WRITER_SLOTS
        .iter()
        .any(|slot| matches!(old.get(*slot), Some(AttributeValue::S(t)) if t == token))
}

/// A string-list attribute.
pub fn list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.as_str())).collect())
}

/// A string-map attribute.
pub fn labels(values: &Labels) -> AttributeValue {
    AttributeValue::M(
        values
            .iter()
            .map(|(k, v)| (k.clone(), s(v.as_str())))
            .collect(),
    )
}

/// A JSON object, stored as its serialised text so that it round-trips exactly.
pub fn json(value: &Map<String, Value>) -> AttributeValue {
    s(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
}

fn corrupt(key: &str) -> ApiError {
    ApiError::internal(format!(
        "stored item has a missing or malformed attribute {key}"
    ))
}

/// A string attribute.
pub fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, ApiError> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| corrupt(key))
}

fn opt_s(item: &Item, key: &str) -> Result<Option<String>, ApiError> {
    item.get(key)
        .map(|v| v.as_s().cloned().map_err(|_| corrupt(key)))
        .transpose()
}

/// A number attribute as `i64`.
pub fn get_n(item: &Item, key: &str) -> Result<i64, ApiError> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| corrupt(key))
}

fn opt_n(item: &Item, key: &str) -> Result<Option<i64>, ApiError> {
    item.get(key).map(|_| get_n(item, key)).transpose()
}

fn time(item: &Item, key: &str) -> Result<Timestamp, ApiError> {
    Timestamp::from_micros(get_n(item, key)?).ok_or_else(|| corrupt(key))
}

fn opt_time(item: &Item, key: &str) -> Result<Option<Timestamp>, ApiError> {
    item.get(key).map(|_| time(item, key)).transpose()
}

fn opt_json(item: &Item, key: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    match opt_s(item, key)? {
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| corrupt(key)),
        None => Ok(None),
    }
}

/// Whether a conversation item is still visible at `now`: before its `expireTime` and, once
/// soft-deleted, before its `purgeTime`, both to the microsecond. DynamoDB's TTL deletes expired
/// items only eventually (and counts whole seconds), so every read checks this and every write's
/// condition says the same (`Store::visible_at`).
pub fn is_visible(item: &Item, now: Timestamp) -> bool {
    let before = |key: &str| {
        opt_n(item, key)
            .ok()
            .flatten()
            .is_none_or(|end| end > now.micros())
    };
    before(attr::EXPIRE) && before(attr::PURGE)
}

/// The TTL of a conversation: the earlier of its expiry and its purge time, in whole seconds
/// rounded up (never early), or none.
pub fn ttl_of(c: &Conversation) -> Option<i64> {
    [c.expire_time, c.purge_time]
        .into_iter()
        .flatten()
        .min()
        .map(Timestamp::epoch_seconds_ceil)
}

/// The item of a conversation.
pub fn conversation_item(c: &Conversation) -> Item {
    let mut item = Item::new();
    let mut put = |k: &str, v: AttributeValue| {
        item.insert(k.to_owned(), v);
    };
    put(attr::PK, s(partition_key(&c.owner, &c.id)));
    put(attr::SK, s(CONVERSATION_SK));
    put(attr::GSI_PK, s(c.owner.key()));
    put(attr::GSI_SK, s(index_sort_key(c.create_time, &c.id)));
    put(attr::GSI2_PK, s(c.owner.key()));
    put(attr::GSI2_SK, s(index_sort_key(c.last_used_time, &c.id)));
    put(attr::ID, s(c.id.as_str()));
    put(attr::OWNER, s(c.owner.caller_id()));
    if let Some(user) = c.owner.user() {
        put(attr::ON_BEHALF_OF, s(user));
    }
    if let Some(v) = &c.display_name {
        put(attr::DISPLAY_NAME, s(v.as_str()));
    }
    if let Some(v) = &c.category {
        put(attr::CATEGORY, s(v.as_str()));
    }
    put(attr::AGENTS, list(&c.agents));
    if let Some(v) = &c.conversation_profile {
        put(attr::PROFILE, s(v.as_str()));
    }
    if let Some(v) = &c.language_code {
        put(attr::LANGUAGE, s(v.as_str()));
    }
    put(attr::LABELS, labels(&c.labels));
    put(attr::METADATA, seed_items::metadata(c.metadata.as_ref()));
    put(
        attr::METADATA_BYTES,
        n(seed_items::metadata_size(c.metadata.as_ref())),
    );
    put(attr::STAGE, s(c.stage.as_str()));
    put(attr::QUALITY, seed_items::quality(&c.quality_metadata));
    put(attr::CALL, seed_items::call(&c.call_metadata));
    put(attr::DATA_SOURCE, seed_items::data_source(&c.data_source));
    if !c.sources.is_empty() {
        put(attr::SOURCES, seed_items::sources(&c.sources));
    }
    if let Some(p) = &c.phone_number {
        put(attr::PHONE, seed_items::phone(p));
    }
    put(attr::LIFECYCLE, s(c.lifecycle.as_str()));
    if let Some(t) = c.start_time {
        put(attr::START, n(t.micros()));
    }
    if let Some(t) = c.end_time {
        put(attr::END, n(t.micros()));
    }
    if let Some(t) = c.expire_time {
        put(attr::EXPIRE, n(t.micros()));
        put(attr::EXPIRE_AT, n(t.epoch_seconds_ceil()));
    }
    put(attr::CREATE, n(c.create_time.micros()));
    put(attr::VERSION, n(c.version.0));
    put(attr::LAST_USED, n(c.last_used_time.micros()));
    if let Some(t) = c.delete_time {
        put(attr::DELETE, n(t.micros()));
    }
    if let Some(t) = c.purge_time {
        put(attr::PURGE, n(t.micros()));
    }
    if let Some(ttl) = ttl_of(c) {
        put(attr::TTL, n(ttl));
    }
    put(attr::COUNT, n(c.message_count));
    put(attr::LAST_ORDER, n(c.last_order));
    if c.cleared_through > 0 {
        put(attr::CLEARED_THROUGH, n(c.cleared_through));
    }
    if let Some(r) = &c.request_id {
        put(attr::REQUEST_ID, s(r.as_str()));
    }
    item
}

/// A conversation from its item.
pub fn conversation_from(item: &Item) -> Result<Conversation, ApiError> {
    conversation_of(item, item)
}

/// A conversation from the item holding its large fields (`store::split::BODY_ATTRIBUTES`:
/// the body of layout 4) and the one holding the rest (its head), read in place, neither
/// copied: for a whole item of layout 3 both are that item.
pub fn conversation_of(item: &Item, large: &Item) -> Result<Conversation, ApiError> {
    let agents = large
        .get(attr::AGENTS)
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| corrupt(attr::AGENTS))?
        .iter()
        .map(|v| v.as_s().cloned().map_err(|_| corrupt(attr::AGENTS)))
        .collect::<Result<Vec<_>, _>>()?;
    let labels = match large.get(attr::LABELS) {
        Some(v) => v
            .as_m()
            .map_err(|_| corrupt(attr::LABELS))?
            .iter()
            .map(|(k, v)| {
                v.as_s()
                    .map(|v| (k.clone(), v.clone()))
                    .map_err(|_| corrupt(attr::LABELS))
            })
            .collect::<Result<Labels, _>>()?,
        None => Labels::new(),
    };
    let message_count =
        u64::try_from(get_n(item, attr::COUNT)?).map_err(|_| corrupt(attr::COUNT))?;
    Ok(Conversation {
        id: ConversationId::parse(get_s(item, attr::ID)?).map_err(|_| corrupt(attr::ID))?,
        owner: Owner::from_stored(
            get_s(item, attr::OWNER)?.to_owned(),
            opt_s(item, attr::ON_BEHALF_OF)?,
        ),
        display_name: opt_s(item, attr::DISPLAY_NAME)?,
        category: opt_s(item, attr::CATEGORY)?,
        agents,
        conversation_profile: opt_s(large, attr::PROFILE)?,
        language_code: opt_s(item, attr::LANGUAGE)?,
        labels,
        metadata: seed_items::metadata_from(large)?,
        stage: Stage::parse(get_s(item, attr::STAGE)?).ok_or_else(|| corrupt(attr::STAGE))?,
        quality_metadata: seed_items::quality_from(large)?,
        call_metadata: seed_items::call_from(large)?,
        data_source: seed_items::data_source_from(large)?,
        sources: seed_items::sources_from(large)?,
        phone_number: seed_items::phone_from(large)?,
        lifecycle: Lifecycle::parse(get_s(item, attr::LIFECYCLE)?)
            .ok_or_else(|| corrupt(attr::LIFECYCLE))?,
        start_time: opt_time(item, attr::START)?,
        end_time: opt_time(item, attr::END)?,
        expire_time: opt_time(item, attr::EXPIRE)?,
        create_time: time(item, attr::CREATE)?,
        version: Version(get_n(item, attr::VERSION)?),
        last_used_time: time(item, attr::LAST_USED)?,
        delete_time: opt_time(item, attr::DELETE)?,
        purge_time: opt_time(item, attr::PURGE)?,
        message_count,
        last_order: match opt_n(item, attr::LAST_ORDER)? {
            Some(n) => u64::try_from(n).map_err(|_| corrupt(attr::LAST_ORDER))?,
            // Written before revision 3: nothing was ever deleted or cleared.
            None => message_count,
        },
        cleared_through: u64::try_from(opt_n(item, attr::CLEARED_THROUGH)?.unwrap_or(0))
            .map_err(|_| corrupt(attr::CLEARED_THROUGH))?,
        request_id: opt_s(item, attr::REQUEST_ID)?.map(RequestId::from_stored),
    })
}

/// The item of a message.
pub fn message_item(owner: &Owner, incarnation: Timestamp, m: &Message) -> Item {
    let mut item = Item::new();
    item.insert(attr::PK.into(), s(partition_key(owner, &m.conversation)));
    item.insert(attr::SK.into(), s(message_sort_key(incarnation, m.order)));
    item.insert(attr::ORDER.into(), n(m.order));
    item.insert(attr::TYPE.into(), s(m.kind.as_str()));
    item.insert(attr::CONTENT.into(), s(m.content.as_str()));
    if !m.tool_calls.is_empty() {
        item.insert(attr::TOOL_CALLS.into(), tool_calls(&m.tool_calls));
    }
    if let Some(id) = &m.tool_call_id {
        item.insert(attr::TOOL_CALL_ID.into(), s(id.as_str()));
    }
    if let Some(meta) = &m.metadata {
        item.insert(attr::METADATA.into(), json(meta));
    }
    item.insert(attr::CREATE.into(), n(m.create_time.micros()));
    item.insert(attr::VERSION.into(), n(m.version.0));
    item
}

/// A message from its item.
pub fn message_from(conversation: &ConversationId, item: &Item) -> Result<Message, ApiError> {
    Ok(Message {
        conversation: conversation.clone(),
        order: u64::try_from(get_n(item, attr::ORDER)?).map_err(|_| corrupt(attr::ORDER))?,
        kind: MessageType::parse(get_s(item, attr::TYPE)?).ok_or_else(|| corrupt(attr::TYPE))?,
        content: get_s(item, attr::CONTENT)?.to_owned(),
        tool_calls: tool_calls_from(item)?,
        tool_call_id: opt_s(item, attr::TOOL_CALL_ID)?,
        metadata: opt_json(item, attr::METADATA)?,
        create_time: time(item, attr::CREATE)?,
        version: Version(get_n(item, attr::VERSION)?),
    })
}

/// Tool calls as a list attribute.
pub fn tool_calls(calls: &[ToolCall]) -> AttributeValue {
    AttributeValue::L(
        calls
            .iter()
            .map(|c| {
                AttributeValue::M(HashMap::from([
                    ("id".to_owned(), s(c.id.as_str())),
                    ("name".to_owned(), s(c.name.as_str())),
                    ("arguments".to_owned(), json(&c.arguments)),
                ]))
            })
            .collect(),
    )
}

fn tool_calls_from(item: &Item) -> Result<Vec<ToolCall>, ApiError> {
    let Some(list) = item.get(attr::TOOL_CALLS) else {
        return Ok(Vec::new());
    };
    let broken = || corrupt(attr::TOOL_CALLS);
    list.as_l()
        .map_err(|_| broken())?
        .iter()
        .map(|call| {
            let call = call.as_m().map_err(|_| broken())?;
            let text = |k: &str| {
                call.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .ok_or_else(broken)
            };
            Ok(ToolCall {
                id: text("id")?,
                name: text("name")?,
                arguments: serde_json::from_str(&text("arguments")?).map_err(|_| broken())?,
            })
        })
        .collect()
}

/// Whether a message item belongs to this incarnation of its conversation (and not to an
/// earlier conversation of the same id, whose leftovers the purger has not deleted yet).
pub fn of_incarnation(item: &Item, incarnation: Timestamp) -> bool {
    sort_key(item)
        .ok()
        .and_then(message_key_parts)
        .is_some_and(|(_, i)| i == incarnation.micros().max(0))
}

/// The key of the idempotency marker of `request` in a conversation's collection.
pub fn marker_key(owner: &Owner, id: &ConversationId, request: &RequestId) -> Item {
    Item::from([
        (attr::PK.to_owned(), s(partition_key(owner, id))),
        (
            attr::SK.to_owned(),
            s(format!("{MARKER_PREFIX}{}", request.as_str())),
        ),
    ])
}

/// An idempotency marker: which incarnation it was written for, the orders its call appended
/// (`first`, and how many), and the call's fingerprint. It holds no content, so a later edit
/// (a redaction) is never undone by a repeated key.
pub fn marker_item(
    owner: &Owner,
    id: &ConversationId,
    incarnation: Timestamp,
    request: &RequestId,
    (first, count, fingerprint): (u64, u64, &str),
    (now, conversation_version): (Timestamp, Version),
) -> Item {
    let mut item = marker_key(owner, id, request);
    item.insert(attr::INCARNATION.into(), n(incarnation.micros()));
    item.insert(attr::FIRST_ORDER.into(), n(first));
    item.insert(attr::MESSAGES.into(), n(count));
    item.insert(attr::FINGERPRINT.into(), s(fingerprint));
    item.insert(attr::CONVERSATION_VERSION.into(), n(conversation_version.0));
    let expires = now.plus(MARKER_LIFETIME).unwrap_or(now);
    item.insert(attr::TTL.into(), n(expires.epoch_seconds_ceil()));
    item
}

/// The incarnation a marker was written for.
pub fn marker_incarnation(item: &Item) -> Option<i64> {
    get_n(item, attr::INCARNATION).ok()
}

/// The conversation's version a marker's call left (absent on markers written before
/// revision 3).
pub fn marker_version(item: &Item) -> Option<Version> {
    get_n(item, attr::CONVERSATION_VERSION).ok().map(Version)
}

/// A marker's first order, number of messages and fingerprint.
pub fn marker_contents(item: &Item) -> Result<(u64, u64, String), ApiError> {
    let first =
        u64::try_from(get_n(item, attr::FIRST_ORDER)?).map_err(|_| corrupt(attr::FIRST_ORDER))?;
    let count = u64::try_from(get_n(item, attr::MESSAGES)?).map_err(|_| corrupt(attr::MESSAGES))?;
    if count == 0 {
        return Err(corrupt(attr::MESSAGES));
    }
    Ok((first, count, get_s(item, attr::FINGERPRINT)?.to_owned()))
}

/// The size of an item as DynamoDB counts it (names and values; lists and maps a few bytes more).
pub fn stored_size(item: &Item) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(t) | AttributeValue::N(t) => t.len(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value(v)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>()
            }
            AttributeValue::Ss(set) | AttributeValue::Ns(set) => set.iter().map(String::len).sum(),
            _ => 8,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// The sort key of an item.
pub fn sort_key(item: &Item) -> Result<&str, ApiError> {
    get_s(item, attr::SK)
}

/// An upper bound of the size of an item's JSON rendering (a conversation's or a message's
/// `to_json`), from what is stored: every stored byte rendered as a six-byte escape, one more per
/// map or list entry (quotes, colon, comma), and 1 KiB for the field names and what is derived
/// (names, etags, timestamps, defaults). Cheap: nothing is rendered.
pub fn rendered_bound(item: &Item) -> usize {
    fn stored(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(text) | AttributeValue::N(text) => text.len(),
            AttributeValue::L(list) => list.iter().map(|v| stored(v) + 1).sum(),
            AttributeValue::M(map) => map.iter().map(|(k, v)| k.len() + stored(v) + 1).sum(),
            AttributeValue::Ss(set) | AttributeValue::Ns(set) => {
                set.iter().map(|text| text.len() + 1).sum()
            }
            _ => 8,
        }
    }
    1024 + 6 * item
        .iter()
        .map(|(k, v)| k.len() + stored(v) + 1)
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::conversation::{NewConversation, Writable};
    use crate::domain::time::Duration;
    use serde_json::json;

    fn rendered(map: &serde_json::Map<String, serde_json::Value>) -> usize {
        serde_json::to_vec(map).expect("renders").len()
    }

    #[test]
    fn the_rendered_bound_is_never_below_the_rendering() {
        let now = Timestamp::parse("2026-11-23T08:00:00.5Z").expect("valid");
        let control = "\u{1}".repeat(200);
        let short = "\u{1}".repeat(60);
        let bodies = [
            json!({"agents": ["a"]}),
            json!({"agents": vec![control.clone(); 16], "displayName": control.clone(), "category": short.clone(),
                "labels": (0..64).map(|i| (format!("k{i}"), json!(short.clone()))).collect::<serde_json::Map<_, _>>(),
                "metadata": {"": "", "n": [1e300, -0.0, 12345678901234567890u64, null, true, {}], "s": control.clone()}}),
        ];
        for body in bodies {
            let w =
                Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
            let mut c = NewConversation::try_from(w)
                .expect("new")
                .into_conversation(
                    ConversationId::parse("c").expect("id"),
                    Owner::from_claim("o").expect("owner"),
                    None,
                    now,
                );
            let item = conversation_item(&c);
            assert!(rendered(&c.to_json()) <= rendered_bound(&item));
            c.delete_time = Some(now);
            c.purge_time = Some(now);
            c.end_time = Some(now);
            let item = conversation_item(&c);
            assert!(rendered(&c.to_json()) <= rendered_bound(&item));
        }
        for (content, metadata) in [
            ("x", None),
            (control.as_str(), Some(json!({"a": [control.clone(), {}]}))),
        ] {
            let calls = (0..32)
                .map(|i| ToolCall {
                    id: format!("call-{i}"),
                    name: "t".repeat(128),
                    arguments: json!({"q": control.clone(), "n": [1, {}]})
                        .as_object()
                        .cloned()
                        .expect("object"),
                })
                .collect();
            let m = Message {
                conversation: ConversationId::parse("c").expect("id"),
                order: u64::from(u32::MAX),
                kind: MessageType::Tool,
                content: content.into(),
                tool_calls: calls,
                tool_call_id: Some("x".repeat(128)),
                metadata: metadata.and_then(|m| m.as_object().cloned()),
                create_time: now,
                version: Version(now.micros()),
            };
            let item = message_item(&Owner::from_claim("o").expect("owner"), now, &m);
            assert!(rendered(&m.to_json()) <= rendered_bound(&item));
        }
    }

    #[test]
    fn the_layout_key_is_no_conversation_s_partition_key() {
        let c = conversation();
        assert!(partition_key(&c.owner, &c.id).starts_with("CONV#"));
        assert!(!LAYOUT_KEY.starts_with("CONV#"));
    }

    fn conversation() -> Conversation {
        let now = Timestamp::parse("2026-11-23T08:00:00.5Z").expect("valid");
        let body = json!({"displayName": "d", "category": "c", "agents": ["a", "b"], "conversationProfile": "p", "languageCode": "en",
            "labels": {"k": "v"}, "metadata": {"n": 1.5, "deep": {"x": [1, "two", null]}}, "conversationStage": "HUMAN_ASSIST_STAGE",
            "startTime": "2026-11-23T07:00:00Z", "ttl": "3600s"});
        let w = Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
        let request = RequestId::parse("6f9619ff-8b86-d011-b42d-00c04fc964ff").expect("uuid");
        let mut c = NewConversation::try_from(w)
            .expect("new")
            .into_conversation(
                ConversationId::parse("conv-1").expect("id"),
                Owner::from_claim("auth0|abc#def").expect("owner"),
                Some(request),
                now,
            );
        c.end_time = Some(now);
        c.message_count = 7;
        c
    }

    #[test]
    fn a_conversation_round_trips_through_its_item() {
        let c = conversation();
        assert_eq!(
            conversation_from(&conversation_item(&c)).expect("valid item"),
            c
        );
    }

    #[test]
    fn a_deleted_conversation_without_an_expiry_stores_its_purge_time_as_ttl() {
        let mut c = conversation();
        c.expire_time = None;
        let purge = Timestamp::parse("2026-12-23T08:00:00.1Z").expect("valid");
        c.delete_time = Some(c.create_time);
        c.purge_time = Some(purge);
        let item = conversation_item(&c);
        assert_eq!(
            get_n(&item, attr::TTL).expect("ttl"),
            purge.epoch_seconds() + 1
        );
        assert_eq!(conversation_from(&item).expect("valid"), c);
    }

    #[test]
    fn a_message_round_trips_through_its_item() {
        let c = conversation();
        let m = Message {
            conversation: c.id.clone(),
            order: 42,
            kind: MessageType::Agent,
            content: "".into(),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "search".into(),
                arguments: json!({"q": "rust", "deep": {"n": [1.5, null]}})
                    .as_object()
                    .cloned()
                    .expect("object"),
            }],
            tool_call_id: Some("call_0".into()),
            metadata: Some(json!({"a": 1}).as_object().cloned().expect("object")),
            create_time: c.create_time,
            version: Version(c.create_time.micros() + 5),
        };
        let item = message_item(&c.owner, c.create_time, &m);
        assert_eq!(message_from(&c.id, &item).expect("valid"), m);
        assert!(of_incarnation(&item, c.create_time));
        let later = Timestamp::from_micros(c.create_time.micros() + 1).expect("valid");
        assert!(!of_incarnation(&item, later));
    }

    #[test]
    fn message_keys_sort_by_order_and_an_order_range_is_a_key_range() {
        let early = Timestamp::from_micros(1_000).expect("valid");
        let late = Timestamp::from_micros(2_000).expect("valid");
        assert!(message_sort_key(early, 9) < message_sort_key(early, 10));
        assert!(message_sort_key(late, 9) < message_sort_key(early, 10));
        assert!(CONVERSATION_SK < message_sort_key(late, 1).as_str());
        let (lo, hi) = message_range(9001, 9050);
        for (order, inside) in [(9000, false), (9001, true), (9050, true), (9051, false)] {
            for incarnation in [early, late] {
                let key = message_sort_key(incarnation, order);
                assert_eq!(lo <= key && key <= hi, inside, "{key}");
            }
        }
        assert_eq!(
            message_key_parts(&message_sort_key(late, 77)),
            Some((77, 2_000))
        );
        for not_a_message in [
            "C",
            "M#",
            "M#1#2",
            "M#00000000001#0000000000000002000",
            "X#0000000001#0000000000000002000",
        ] {
            assert_eq!(message_key_parts(not_a_message), None, "{not_a_message}");
        }
    }

    #[test]
    fn items_are_invisible_from_their_expiry_or_purge_time_to_the_microsecond() {
        let mut c = conversation();
        let expire = c.expire_time.expect("an expiry");
        let just_before = Timestamp::from_micros(expire.micros() - 1).expect("valid");
        let item = conversation_item(&c);
        assert!(is_visible(&item, just_before));
        assert!(!is_visible(&item, expire));
        assert!(
            get_n(&item, attr::TTL).expect("ttl") * 1_000_000 > expire.micros(),
            "the TTL itself is later: visibility must not follow it"
        );
        c.expire_time = None;
        c.delete_time = Some(c.create_time);
        c.purge_time = Some(expire);
        let item = conversation_item(&c);
        assert!(is_visible(&item, just_before));
        assert!(!is_visible(&item, expire));
    }

    #[test]
    fn the_ttl_is_the_earlier_of_expiry_and_purge_time() {
        let mut c = conversation();
        let expire = c.expire_time.expect("an expiry");
        let later = expire.plus(Duration::THIRTY_DAYS).expect("valid");
        c.delete_time = Some(c.create_time);
        c.purge_time = Some(later);
        assert_eq!(ttl_of(&c), Some(expire.epoch_seconds_ceil()));
        c.expire_time = later.plus(Duration::THIRTY_DAYS);
        assert_eq!(ttl_of(&c), Some(later.epoch_seconds_ceil()));
        c.purge_time = None;
        c.delete_time = None;
        c.expire_time = None;
        assert_eq!(ttl_of(&c), None);
    }
}
