//! The table's attribute names and the constructors of the values most written: what the item
//! mapping (`item`) and the stored shapes of nested fields (`seed_items`) both build items with.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Attribute names. Every expression refers to them through `ExpressionAttributeNames`.
pub mod attr {
    /// Partition key: `CONV#{owner key}#{id}` for a conversation and its messages.
    pub const PK: &str = "pk";
    /// Sort key: `C` for the conversation, `M#{order, 10 digits}#{incarnation, 19 digits}` for a
    /// message.
    pub const SK: &str = "sk";
    /// `by-owner` index partition key (conversations only): the owner key.
    pub const GSI_PK: &str = "gsi1pk";
    /// `by-owner` index sort key (conversations only): `{createTime micros, 18 digits}#{id}`.
    pub const GSI_SK: &str = "gsi1sk";
    /// `by-activity` index partition key (conversations only): the owner key.
    pub const GSI2_PK: &str = "gsi2pk";
    /// `by-activity` index sort key (conversations only): `{lastUsedTime micros, 18 digits}#{id}`.
    pub const GSI2_SK: &str = "gsi2sk";
    /// The DynamoDB TTL attribute, epoch seconds rounded up: the earlier of `expireTime` and (while
    /// soft-deleted) `purgeTime`. Only the physical removal follows it; what is visible is decided
    /// to the microsecond by [`crate::store::item::is_visible`] and the write conditions.
    pub const TTL: &str = "ttl_at";
    pub const ID: &str = "id";
    /// The caller (a JWT `sub` or an `X-Owner-Id`).
    pub const OWNER: &str = "owner";
    /// The end user the caller acted for (`X-On-Behalf-Of`); absent when it acted for itself.
    pub const ON_BEHALF_OF: &str = "on_behalf_of";
    pub const DISPLAY_NAME: &str = "display_name";
    pub const CATEGORY: &str = "category";
    pub const AGENTS: &str = "agents";
    pub const PROFILE: &str = "conversation_profile";
    pub const LANGUAGE: &str = "language_code";
    pub const LABELS: &str = "labels";
    pub const METADATA: &str = "metadata";
    pub const STAGE: &str = "conversation_stage";
    pub const LIFECYCLE: &str = "lifecycle_state";
    pub const START: &str = "start_time";
    pub const END: &str = "end_time";
    pub const EXPIRE: &str = "expire_time";
    /// `expireTime` in epoch seconds (rounded up), copied into `ttl_at` by undelete.
    pub const EXPIRE_AT: &str = "expire_at";
    pub const CREATE: &str = "create_time";
    /// The version of a conversation or a message: microseconds of its last write, strictly
    /// increasing.
    pub const VERSION: &str = "updated_at";
    /// A random token of the `UpdateItem` that last wrote the conversation item: a call refused
    /// by its own earlier attempt (applied, its answer lost, sent again by the SDK) knows itself
    /// by it (`Store::try_update`). The three before it are kept in `writer_1`..`writer_3`
    /// ([`crate::store::item::WRITER_SLOTS`]).
    pub const WRITER: &str = "writer";
    pub const LAST_USED: &str = "last_used_time";
    pub const DELETE: &str = "delete_time";
    pub const PURGE: &str = "purge_time";
    pub const COUNT: &str = "message_count";
    /// The highest message order ever assigned (absent on items written before revision 3,
    /// where it is `message_count`).
    pub const LAST_ORDER: &str = "last_order";
    /// The clear boundary: every message up to this order is cleared (absent: none).
    pub const CLEARED_THROUGH: &str = "cleared_through";
    /// When a purge made the conversation missing (microseconds): the purger's signal to delete
    /// everything of that incarnation (template.yaml's stream filter).
    pub const PURGED: &str = "purged_at";
    /// An idempotency marker's conversation version after its call (its `conversationEtag`).
    pub const CONVERSATION_VERSION: &str = "conversation_version";
    /// Layout 4: the version of a conversation's body, on the body and on its head alike
    /// (`store::split`); absent on a layout 3 item, which is the whole conversation.
    pub const BODY_VERSION: &str = "body_version";
    pub const REQUEST_ID: &str = "request_id";
    pub const ORDER: &str = "order";
    pub const TYPE: &str = "type";
    pub const CONTENT: &str = "content";
    /// A message's tool calls: a list of maps `{id, name, arguments}` (`arguments` as JSON text).
    pub const TOOL_CALLS: &str = "tool_calls";
    pub const TOOL_CALL_ID: &str = "tool_call_id";
    /// The layout marker's version ([`crate::store::item::LAYOUT_KEY`]).
    pub const LAYOUT: &str = "layout";
    /// An idempotency marker's conversation incarnation (its `createTime`, microseconds).
    pub const INCARNATION: &str = "incarnation";
    /// An idempotency marker's first order and number of messages.
    pub const FIRST_ORDER: &str = "first_order";
    pub const MESSAGES: &str = "messages";
    /// An idempotency marker's digest of its call.
    pub const FINGERPRINT: &str = "fingerprint";
    /// The serialised size of a conversation's `metadata`, bounded by per-key writes.
    pub const METADATA_BYTES: &str = "metadata_bytes";
    /// CCAI Insights' objects and Looker's and Dialogflow's fields (see `store::seed_items`).
    pub const QUALITY: &str = "quality_metadata";
    pub const CALL: &str = "call_metadata";
    pub const DATA_SOURCE: &str = "data_source";
    pub const SOURCES: &str = "sources";
    pub const PHONE: &str = "phone_number";
}

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}
