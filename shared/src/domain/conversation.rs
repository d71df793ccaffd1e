//! The Conversation resource: its stored state, the writable fields a body may carry, and its
//! JSON rendering.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::domain::body::Reader;
use crate::domain::etag::{Etag, Version};
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::rendering::{self, Render, Shown, field};
use crate::domain::seed_fields::{
    self, CallMetadata, DataSource, PhoneNumber, QualityMetadata, Source,
};
use crate::domain::time::Timestamp;
use crate::error::ApiError;

/// Where a conversation is handled (Dialogflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stage {
    /// `VIRTUAL_AGENT_STAGE`, the default.
    #[default]
    VirtualAgent,
    /// `HUMAN_ASSIST_STAGE`.
    HumanAssist,
}

impl Stage {
    /// Every name, for error messages.
    pub const NAMES: [&'static str; 2] = ["VIRTUAL_AGENT_STAGE", "HUMAN_ASSIST_STAGE"];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VirtualAgent => "VIRTUAL_AGENT_STAGE",
            Self::HumanAssist => "HUMAN_ASSIST_STAGE",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "VIRTUAL_AGENT_STAGE" => Some(Self::VirtualAgent),
            "HUMAN_ASSIST_STAGE" => Some(Self::HumanAssist),
            _ => None,
        }
    }
}

/// Whether a conversation is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lifecycle {
    /// `IN_PROGRESS`: messages may be appended.
    #[default]
    InProgress,
    /// `COMPLETED`: set by `complete`; no more messages.
    Completed,
}

impl Lifecycle {
    /// Every name, for error messages.
    pub const NAMES: [&'static str; 2] = ["IN_PROGRESS", "COMPLETED"];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "IN_PROGRESS" => Some(Self::InProgress),
            "COMPLETED" => Some(Self::Completed),
            _ => None,
        }
    }
}

/// Labels: at most 64 entries, keys `^[a-z][a-z0-9_-]{0,62}$`, values at most 63 characters.
pub type Labels = BTreeMap<String, String>;

/// The most labels a conversation may carry.
pub const MAX_LABELS: usize = 64;
/// The longest label value, in characters.
pub const MAX_LABEL_VALUE: usize = 63;

/// Whether a label key is valid.
pub fn is_label_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            first.is_ascii_lowercase()
                && rest.len() <= 62
                && rest.iter().all(|&b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                })
        }
        None => false,
    }
}

/// Whether a language code is a well-formed BCP-47 tag as clients send them (`en`, `en-US`,
/// `pt-BR`, `zh-Hant-TW`, `es-419`).
pub fn is_language_code(code: &str) -> bool {
    let mut parts = code.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && code.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The id, unique per owner.
    pub id: ConversationId,
    /// The identity that created it.
    pub owner: Owner,
    /// Optional, at most 256 characters.
    pub display_name: Option<String>,
    /// Optional, at most 64 characters.
    pub category: Option<String>,
    /// 1–16 agents, each 1–512 characters.
    pub agents: Vec<String>,
    /// Optional, immutable after create.
    pub conversation_profile: Option<String>,
    /// Optional BCP-47 tag.
    pub language_code: Option<String>,
    /// Labels, possibly none.
    pub labels: Labels,
    /// Free-form JSON object.
    pub metadata: Option<Map<String, Value>>,
    /// The stage.
    pub stage: Stage,
    /// CCAI Insights' quality metadata (empty: none).
    pub quality_metadata: QualityMetadata,
    /// CCAI Insights' call metadata (empty: none).
    pub call_metadata: CallMetadata,
    /// CCAI Insights' data source (empty: none).
    pub data_source: DataSource,
    /// Looker's sources (empty: none).
    pub sources: Vec<Source>,
    /// Dialogflow's phone number; immutable after create.
    pub phone_number: Option<PhoneNumber>,
    /// The lifecycle state.
    pub lifecycle: Lifecycle,
    /// Optional; `createTime` is shown when absent.
    pub start_time: Option<Timestamp>,
    /// Set by `complete`.
    pub end_time: Option<Timestamp>,
    /// When the conversation is purged, if ever.
    pub expire_time: Option<Timestamp>,
    /// When it was created.
    pub create_time: Timestamp,
    /// The version of the last write; `updateTime` and the etag come from it.
    pub version: Version,
    /// Moves on create and on each appended message.
    pub last_used_time: Timestamp,
    /// Set while soft-deleted.
    pub delete_time: Option<Timestamp>,
    /// Set while soft-deleted: `deleteTime` + 30 days.
    pub purge_time: Option<Timestamp>,
    /// How many messages it holds now (deleted and cleared ones do not count).
    pub message_count: u64,
    /// The highest order ever assigned: the next append takes the one after it. Equal to
    /// `message_count` until a message is deleted or cleared.
    pub last_order: u64,
    /// Every message up to this order was cleared (0: none): missing for every read and
    /// never assigned again.
    pub cleared_through: u64,
    /// The `requestId` of the create that made it, if any.
    pub request_id: Option<RequestId>,
}

/// The top-level field names of a rendered conversation, in output order (also what `fields`
/// accepts, with the input-only `ttl`).
pub const OUTPUT_FIELDS: [&str; 29] = [
    "name",
    "displayName",
    "category",
    "agents",
    "conversationProfile",
    "languageCode",
    "labels",
    "metadata",
    "conversationStage",
    "qualityMetadata",
    "callMetadata",
    "dataSource",
    "sources",
    "phoneNumber",
    "lifecycleState",
    "startTime",
    "endTime",
    "expireTime",
    "createTime",
    "updateTime",
    "lastUsedTime",
    "deleted",
    "deleteTime",
    "purgeTime",
    "messageCount",
    "owner",
    "etag",
    "can",
    "ttl",
];

/// How much of a conversation `get` answers (AIP-157).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// `BASIC`, the default: the conversation.
    #[default]
    Basic,
    /// `FULL`: the conversation and its latest messages (at most [`FULL_VIEW_MESSAGES`]).
    Full,
}

/// How many of its latest messages a `FULL` view carries.
pub const FULL_VIEW_MESSAGES: usize = 50;

impl View {
    /// Parses `view`: absent is `BASIC`; `BASIC` or `FULL`; anything else is a 400.
    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text {
            None | Some("BASIC") => Ok(Self::Basic),
            Some("FULL") => Ok(Self::Full),
            Some(other) => Err(ApiError::InvalidArgument(format!(
                "view must be BASIC or FULL, not {:?}",
                crate::domain::ids::shorten(other)
            ))),
        }
    }

    /// The names `fields` may select in this view: `messages` only in the full one.
    pub fn fields(self) -> Vec<&'static str> {
        let mut names = OUTPUT_FIELDS.to_vec();
        if self == Self::Full {
            names.push("messages");
        }
        names
    }
}

/// Fields a body may set.
pub const WRITABLE_FIELDS: [&str; 17] = [
    "displayName",
    "category",
    "agents",
    "conversationProfile",
    "languageCode",
    "labels",
    "metadata",
    "conversationStage",
    "qualityMetadata",
    "callMetadata",
    "dataSource",
    "sources",
    "phoneNumber",
    "startTime",
    "expireTime",
    "ttl",
    "etag",
];

/// Output-only fields, ignored in a body (AIP-203); `messages` is the `FULL` view's.
pub const OUTPUT_ONLY_FIELDS: [&str; 14] = [
    "messages",
    "name",
    "lifecycleState",
    "endTime",
    "createTime",
    "updateTime",
    "lastUsedTime",
    "deleted",
    "deleteTime",
    "purgeTime",
    "messageCount",
    "owner",
    "can",
    "etag",
];

impl Conversation {
    /// Whether a message of this order can be held now: assigned (at most the highest order)
    /// and not cleared.
    pub fn holds(&self, order: u64) -> bool {
        order > self.cleared_through && order <= self.last_order
    }

    /// Whether it is soft-deleted.
    pub fn is_deleted(&self) -> bool {
        self.delete_time.is_some()
    }

    /// The resource name.
    pub fn name(&self) -> String {
        self.id.name()
    }

    /// The JSON representation (every field).
    pub fn to_json(&self) -> Map<String, Value> {
        rendering::to_map(self)
    }
}

/// What a conversation's caller may do with it now (`can`).
struct Can {
    live: bool,
    open: bool,
}

impl serde::Serialize for Can {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("update", &self.live)?;
        map.serialize_entry("delete", &self.live)?;
        map.serialize_entry("undelete", &!self.live)?;
        map.serialize_entry("complete", &self.open)?;
        map.serialize_entry("appendMessage", &self.open)?;
        map.end()
    }
}

impl Render for Conversation {
    fn render_fields<M: SerializeMap>(
        &self,
        map: &mut M,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), M::Error> {
        field!(map, keep, "name", self.id.name());
        if let Some(v) = &self.display_name {
            field!(map, keep, "displayName", v);
        }
        if let Some(v) = &self.category {
            field!(map, keep, "category", v);
        }
        field!(map, keep, "agents", self.agents);
        if let Some(v) = &self.conversation_profile {
            field!(map, keep, "conversationProfile", v);
        }
        if let Some(v) = &self.language_code {
            field!(map, keep, "languageCode", v);
        }
        field!(map, keep, "labels", self.labels);
        if let Some(v) = &self.metadata {
            field!(map, keep, "metadata", v);
        }
        field!(map, keep, "conversationStage", self.stage.as_str());
        if keep("qualityMetadata")
            && let Some(v) = self.quality_metadata.to_json()
        {
            map.serialize_entry("qualityMetadata", &v)?;
        }
        if keep("callMetadata")
            && let Some(v) = self.call_metadata.to_json()
        {
            map.serialize_entry("callMetadata", &v)?;
        }
        if keep("dataSource")
            && let Some(v) = self.data_source.to_json()
        {
            map.serialize_entry("dataSource", &v)?;
        }
        if !self.sources.is_empty() {
            field!(
                map,
                keep,
                "sources",
                self.sources.iter().map(Source::to_json).collect::<Vec<_>>()
            );
        }
        if keep("phoneNumber")
            && let Some(v) = self.phone_number.as_ref().and_then(PhoneNumber::to_json)
        {
            map.serialize_entry("phoneNumber", &v)?;
        }
        field!(map, keep, "lifecycleState", self.lifecycle.as_str());
        field!(
            map,
            keep,
            "startTime",
            Shown(self.start_time.unwrap_or(self.create_time))
        );
        if let Some(t) = self.end_time {
            field!(map, keep, "endTime", Shown(t));
        }
        if let Some(t) = self.expire_time {
            field!(map, keep, "expireTime", Shown(t));
        }
        field!(map, keep, "createTime", Shown(self.create_time));
        field!(map, keep, "updateTime", Shown(self.version.time()));
        field!(map, keep, "lastUsedTime", Shown(self.last_used_time));
        field!(map, keep, "deleted", self.is_deleted());
        if let Some(t) = self.delete_time {
            field!(map, keep, "deleteTime", Shown(t));
        }
        if let Some(t) = self.purge_time {
            field!(map, keep, "purgeTime", Shown(t));
        }
        field!(map, keep, "messageCount", self.message_count);
        field!(map, keep, "owner", self.owner.as_str());
        field!(map, keep, "etag", self.version.etag());
        let live = !self.is_deleted();
        field!(
            map,
            keep,
            "can",
            Can {
                live,
                open: live && self.lifecycle == Lifecycle::InProgress,
            }
        );
        Ok(())
    }
}

/// How a body sets the expiry: an instant, or a time to live from now (resolved at parse time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpirySource {
    /// `expireTime`.
    ExpireTime,
    /// `ttl`.
    Ttl,
}

/// The writable fields of a conversation body, each validated; absent and `null` read as `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Writable {
    /// `displayName`.
    pub display_name: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `agents`.
    pub agents: Option<Vec<String>>,
    /// `conversationProfile`.
    pub conversation_profile: Option<String>,
    /// `languageCode`.
    pub language_code: Option<String>,
    /// `labels`.
    pub labels: Option<Labels>,
    /// `metadata`.
    pub metadata: Option<Map<String, Value>>,
    /// `conversationStage`.
    pub stage: Option<Stage>,
    /// `qualityMetadata`.
    pub quality_metadata: Option<QualityMetadata>,
    /// `callMetadata`.
    pub call_metadata: Option<CallMetadata>,
    /// `dataSource`.
    pub data_source: Option<DataSource>,
    /// `sources`.
    pub sources: Option<Vec<Source>>,
    /// `phoneNumber`.
    pub phone_number: Option<PhoneNumber>,
    /// `startTime`.
    pub start_time: Option<Timestamp>,
    /// `expireTime`, or now + `ttl`.
    pub expire_time: Option<Timestamp>,
    /// The `etag` precondition.
    pub etag: Option<Etag>,
    /// The writable fields the body names (with `null` included), in body order.
    pub present: Vec<String>,
}

impl Writable {
    /// Reads and validates a body object: unknown fields (nested ones included) → 400, broken
    /// values → 422 listing each — with `agents` among them when `agents_required` (a create, a
    /// mask naming `agents`) and the body lacks it, however many others are broken.
    pub fn from_json(
        map: &Map<String, Value>,
        now: Timestamp,
        agents_required: bool,
    ) -> Result<Self, ApiError> {
        crate::domain::body::reject_unknown(map, &WRITABLE_FIELDS, &OUTPUT_ONLY_FIELDS)?;
        let mut r = Reader::new(map);
        if agents_required && r.raw("agents").is_none() {
            r.error("agents", "required", "at least one agent is required");
        }
        let mut w = Writable {
            present: map
                .keys()
                .filter(|k| WRITABLE_FIELDS.contains(&k.as_str()) && *k != "etag")
                .cloned()
                .collect(),
            display_name: r.string("displayName", 256),
            category: r.string("category", 64),
            conversation_profile: r.string("conversationProfile", 512),
            ..Writable::default()
        };
        w.agents = read_agents(&mut r);
        w.language_code = r.string("languageCode", 35);
        if let Some(code) = &w.language_code
            && !is_language_code(code)
        {
            r.error(
                "languageCode",
                "invalid",
                "must be a BCP-47 language tag such as en, en-US or pt-BR",
            );
            w.language_code = None;
        }
        w.labels = read_labels(&mut r);
        w.metadata = r.metadata("metadata");
        w.stage = r.enumeration("conversationStage", Stage::parse, &Stage::NAMES);
        w.quality_metadata = seed_fields::read_quality(&mut r, "qualityMetadata")?;
        w.call_metadata = seed_fields::read_call(&mut r, "callMetadata")?;
        w.data_source = seed_fields::read_data_source(&mut r, "dataSource")?;
        w.sources = seed_fields::read_sources(&mut r, "sources")?;
        w.phone_number = seed_fields::read_phone(&mut r, "phoneNumber")?;
        w.start_time = r.timestamp("startTime");
        let expire = r.timestamp("expireTime");
        let ttl = r.duration("ttl");
        if r.raw("expireTime").is_some() && r.raw("ttl").is_some() {
            r.error("ttl", "conflict", "give either ttl or expireTime, not both");
        } else if let Some(expire) = expire {
            if expire <= now {
                r.error("expireTime", "invalid", "must be in the future");
            } else {
                w.expire_time = Some(expire);
            }
        } else if let Some(ttl) = ttl {
            match now.plus(ttl) {
                Some(t) if ttl.micros() > 0 => w.expire_time = Some(t),
                Some(_) => r.error("ttl", "invalid", "must be longer than 0s"),
                None => r.error("ttl", "invalid", "is too long"),
            }
        }
        match r.raw("etag") {
            Some(Value::String(s)) => w.etag = Some(Etag::parse(s)),
            Some(other) => r.error(
                "etag",
                "invalid_type",
                format!("must be a string, not {}", crate::domain::body::kind(other)),
            ),
            None => {}
        }
        r.finish()?;
        Ok(w)
    }

    /// Whether the body names a field (even as `null`).
    pub fn names(&self, field: &str) -> bool {
        self.present.iter().any(|p| p == field)
    }
}

fn read_agents(r: &mut Reader<'_>) -> Option<Vec<String>> {
    let value = r.raw("agents")?;
    let Value::Array(items) = value else {
        r.error(
            "agents",
            "invalid_type",
            format!(
                "must be an array of strings, not {}",
                crate::domain::body::kind(value)
            ),
        );
        return None;
    };
    if items.is_empty() || items.len() > 16 {
        r.error(
            "agents",
            "invalid",
            format!("must hold 1 to 16 agents, not {}", items.len()),
        );
        return None;
    }
    let mut agents = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if !s.is_empty() && s.chars().count() <= 512 => agents.push(s.clone()),
            Value::String(_) => {
                r.error(
                    format!("agents[{i}]"),
                    "invalid",
                    "each agent must be 1 to 512 characters",
                );
                ok = false;
            }
            other => {
                r.error(
                    format!("agents[{i}]"),
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(agents)
}

fn read_labels(r: &mut Reader<'_>) -> Option<Labels> {
    let value = r.raw("labels")?;
    let Value::Object(map) = value else {
        r.error(
            "labels",
            "invalid_type",
            format!(
                "must be an object of strings, not {}",
                crate::domain::body::kind(value)
            ),
        );
        return None;
    };
    let mut ok = true;
    if map.len() > MAX_LABELS {
        r.error(
            "labels",
            "too_many",
            format!("must hold at most {MAX_LABELS} labels, not {}", map.len()),
        );
        ok = false;
    }
    let mut labels = Labels::new();
    for (key, value) in map {
        if !is_label_key(key) {
            r.error(
                format!("labels.{}", crate::domain::ids::shorten(key)),
                "invalid_key",
                "label keys must match ^[a-z][a-z0-9_-]{0,62}$",
            );
            ok = false;
            continue;
        }
        match value {
            Value::String(s) if s.chars().count() <= MAX_LABEL_VALUE => {
                labels.insert(key.clone(), s.clone());
            }
            Value::String(_) => {
                r.error(
                    format!("labels.{key}"),
                    "too_long",
                    format!("label values must be at most {MAX_LABEL_VALUE} characters"),
                );
                ok = false;
            }
            other => {
                r.error(
                    format!("labels.{key}"),
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(labels)
}

/// A validated conversation to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation {
    /// The writable fields; `agents` is present.
    pub fields: Writable,
    /// The agents, required on create.
    pub agents: Vec<String>,
}

impl TryFrom<Writable> for NewConversation {
    type Error = ApiError;

    fn try_from(fields: Writable) -> Result<Self, ApiError> {
        match fields.agents.clone() {
            Some(agents) => Ok(Self { fields, agents }),
            None => Err(ApiError::field(
                "agents",
                "required",
                "at least one agent is required",
            )),
        }
    }
}

impl NewConversation {
    /// The stored state of this conversation when created at `now` by `owner`.
    pub fn into_conversation(
        self,
        id: ConversationId,
        owner: Owner,
        request_id: Option<RequestId>,
        now: Timestamp,
    ) -> Conversation {
        let f = self.fields;
        Conversation {
            id,
            owner,
            display_name: f.display_name,
            category: f.category,
            agents: self.agents,
            conversation_profile: f.conversation_profile,
            language_code: f.language_code,
            labels: f.labels.unwrap_or_default(),
            metadata: f.metadata,
            stage: f.stage.unwrap_or_default(),
            quality_metadata: f.quality_metadata.unwrap_or_default(),
            call_metadata: f.call_metadata.unwrap_or_default(),
            data_source: f.data_source.unwrap_or_default(),
            sources: f.sources.unwrap_or_default(),
            phone_number: f.phone_number,
            lifecycle: Lifecycle::InProgress,
            start_time: f.start_time,
            end_time: None,
            expire_time: f.expire_time,
            create_time: now,
            version: Version(now.micros()),
            last_used_time: now,
            delete_time: None,
            purge_time: None,
            message_count: 0,
            last_order: 0,
            cleared_through: 0,
            request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-11-23T08:00:00Z").expect("valid")
    }

    fn read(value: Value) -> Result<Writable, ApiError> {
        Writable::from_json(value.as_object().expect("object"), now(), false)
    }

    #[test]
    fn a_full_body_reads_every_field() {
        let w = read(json!({
            "displayName": "Support", "category": "billing", "agents": ["bot"], "conversationProfile": "p",
            "languageCode": "pt-BR", "labels": {"team": "a"}, "metadata": {"k": [1]},
            "conversationStage": "HUMAN_ASSIST_STAGE", "startTime": "2026-11-23T07:00:00+01:00", "ttl": "60s",
            "etag": "\"10\"", "name": "ignored", "createTime": "ignored"
        }))
        .expect("valid");
        assert_eq!(w.display_name.as_deref(), Some("Support"));
        assert_eq!(w.agents, Some(vec!["bot".to_owned()]));
        assert_eq!(w.stage, Some(Stage::HumanAssist));
        assert_eq!(
            w.start_time.map(|t| t.to_string()).as_deref(),
            Some("2026-11-23T06:00:00.000000Z")
        );
        assert_eq!(
            w.expire_time.map(|t| t.to_string()).as_deref(),
            Some("2026-11-23T08:01:00.000000Z")
        );
        assert_eq!(w.etag, Some(Etag::Version(Version(16))));
        assert!(w.names("ttl") && !w.names("name") && !w.names("etag"));
    }

    #[test]
    fn every_broken_field_is_reported_in_one_422() {
        let error = read(json!({
            "displayName": "x".repeat(257), "agents": [], "languageCode": "english!", "labels": {"Bad": "v", "ok": "x".repeat(64)},
            "conversationStage": "NOPE", "startTime": "soon", "metadata": "text"
        }))
        .expect_err("invalid");
        let ApiError::InvalidFields(errors) = error else {
            panic!("expected 422")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "displayName",
            "agents",
            "languageCode",
            "labels.Bad",
            "labels.ok",
            "conversationStage",
            "startTime",
            "metadata",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn ttl_and_expire_time_together_are_a_422() {
        let error = read(json!({"ttl": "60s", "expireTime": "2030-01-01T00:00:00Z"}))
            .expect_err("conflict");
        assert_eq!(error.status(), 422);
    }

    #[test]
    fn an_expiry_in_the_past_is_a_422() {
        assert_eq!(
            read(json!({"expireTime": "2020-01-01T00:00:00Z"}))
                .expect_err("past")
                .status(),
            422
        );
        assert_eq!(read(json!({"ttl": "0s"})).expect_err("zero").status(), 422);
    }

    #[test]
    fn agents_are_required_to_create() {
        let w = read(json!({"displayName": "x"})).expect("valid body");
        let error = NewConversation::try_from(w).expect_err("no agents");
        let ApiError::InvalidFields(errors) = error else {
            panic!("422")
        };
        assert_eq!(errors[0].field, "agents");
        assert_eq!(errors[0].code, "required");
    }

    #[test]
    fn a_create_without_agents_lists_agents_with_every_other_broken_field() {
        let body = json!({"displayName": "x".repeat(300), "qualityMetadata": {"customerSatisfactionRating": 9},
            "dataSource": {"gcsSource": {"audioUri": "nowhere"}}, "phoneNumber": {"phoneNumber": "555"}});
        let error = Writable::from_json(body.as_object().expect("object"), now(), true)
            .expect_err("invalid");
        let ApiError::InvalidFields(errors) = error else {
            panic!("expected 422")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "agents",
                "displayName",
                "qualityMetadata.customerSatisfactionRating",
                "dataSource.gcsSource.audioUri",
                "phoneNumber.phoneNumber"
            ]
        );
    }

    #[test]
    fn view_is_basic_or_full_and_only_full_selects_messages() {
        assert_eq!(View::parse(None).expect("absent"), View::Basic);
        assert_eq!(View::parse(Some("BASIC")).expect("basic"), View::Basic);
        assert_eq!(View::parse(Some("FULL")).expect("full"), View::Full);
        for bad in ["", "full", "VIEW_FULL", "BASIC,FULL"] {
            assert_eq!(
                View::parse(Some(bad)).expect_err(bad).status(),
                400,
                "{bad}"
            );
        }
        assert!(View::Full.fields().contains(&"messages"));
        assert!(!View::Basic.fields().contains(&"messages"));
    }

    #[test]
    fn unknown_fields_are_a_400() {
        assert_eq!(
            read(json!({"agents": ["a"], "colour": "red"}))
                .expect_err("unknown")
                .status(),
            400
        );
    }

    #[test]
    fn language_codes_follow_bcp_47() {
        for good in ["en", "en-US", "pt-BR", "zh-Hant-TW", "es-419"] {
            assert!(is_language_code(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "english",
            "en_US",
            "en-",
            "-en",
            "en-toolongsubtag",
        ] {
            assert!(!is_language_code(bad), "{bad}");
        }
    }

    #[test]
    fn a_rendered_conversation_has_every_output_field_when_fully_populated() {
        let w = read(json!({"displayName": "d", "category": "c", "agents": ["a"], "conversationProfile": "p", "languageCode": "en",
            "labels": {"k": "v"}, "metadata": {"m": 1}, "ttl": "60s",
            "qualityMetadata": {"menuPath": "m"}, "callMetadata": {"agentChannel": 1},
            "dataSource": {"gcsSource": {"audioUri": "gs://b/a"}}, "sources": [{"model": "m", "explore": "e"}],
            "phoneNumber": {"phoneNumber": "+14155550100"}}))
        .expect("valid");
        let mut c = NewConversation::try_from(w)
            .expect("new")
            .into_conversation(
                ConversationId::parse("abc").expect("id"),
                Owner::from_header("alice").expect("owner"),
                None,
                now(),
            );
        c.end_time = Some(now());
        c.delete_time = Some(now());
        c.purge_time = Some(now());
        let rendered = c.to_json();
        let keys: Vec<&str> = rendered.keys().map(String::as_str).collect();
        let expected: Vec<&str> = OUTPUT_FIELDS
            .iter()
            .copied()
            .filter(|f| *f != "ttl")
            .collect();
        assert_eq!(keys, expected);
        assert_eq!(
            rendered["can"],
            json!({"update": false, "delete": false, "undelete": true, "complete": false, "appendMessage": false})
        );
    }
}
