//! The Message resource: an ordered entry of a conversation.

use serde::ser::SerializeMap;
use serde_json::{Map, Value};

use crate::domain::body::{MAX_METADATA_BYTES, Reader};
use crate::domain::etag::{Etag, Version};
use crate::domain::ids::ConversationId;
use crate::domain::rendering::{self, Render, Shown, field};
use crate::domain::time::Timestamp;
use crate::error::{ApiError, FieldError};

/// The largest message content, in bytes of UTF-8.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// `USER`.
    User,
    /// `AGENT`.
    Agent,
    /// `SYSTEM`.
    System,
    /// `TOOL`.
    Tool,
}

impl MessageType {
    /// Every name, for error messages.
    pub const NAMES: [&'static str; 4] = ["USER", "AGENT", "SYSTEM", "TOOL"];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Agent => "AGENT",
            Self::System => "SYSTEM",
            Self::Tool => "TOOL",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "USER" => Some(Self::User),
            "AGENT" => Some(Self::Agent),
            "SYSTEM" => Some(Self::System),
            "TOOL" => Some(Self::Tool),
            _ => None,
        }
    }
}

/// A tool call an `AGENT` message asks for (the model wants a tool run).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call's id, unique within its message; a `TOOL` message answers it by `toolCallId`.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The tool's arguments, a JSON object (`{}` when none).
    pub arguments: Map<String, Value>,
}

impl ToolCall {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), self.id.as_str().into());
        out.insert("name".into(), self.name.as_str().into());
        out.insert("arguments".into(), Value::Object(self.arguments.clone()));
        Value::Object(out)
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// 1-based, gap-free per conversation.
    pub order: u64,
    /// Who wrote it.
    pub kind: MessageType,
    /// Up to 64 KiB; empty only on an `AGENT` message that carries tool calls.
    pub content: String,
    /// The tools an `AGENT` message asks for (none: empty).
    pub tool_calls: Vec<ToolCall>,
    /// The call a `TOOL` message answers.
    pub tool_call_id: Option<String>,
    /// Optional JSON object, at most 16 KiB serialised.
    pub metadata: Option<Map<String, Value>>,
    /// When it was appended.
    pub create_time: Timestamp,
    /// The version of its last write (the append, or an edit): `updateTime` and its etag.
    pub version: Version,
}

/// The top-level field names of a rendered message, in output order.
pub const OUTPUT_FIELDS: [&str; 10] = [
    "name",
    "order",
    "type",
    "content",
    "toolCalls",
    "toolCallId",
    "metadata",
    "createTime",
    "updateTime",
    "etag",
];
/// The fields a message body may carry.
pub const WRITABLE: [&str; 6] = [
    "type",
    "content",
    "toolCalls",
    "toolCallId",
    "metadata",
    "etag",
];
/// Output-only fields, ignored in a body (AIP-203).
pub const OUTPUT_ONLY: [&str; 4] = ["name", "order", "createTime", "updateTime"];

/// The highest order a message can have (ten digits in its key).
pub const MAX_ORDER: u64 = 9_999_999_999;
/// The most tool calls one message carries.
pub const MAX_TOOL_CALLS: usize = 32;

impl Message {
    /// The resource name, `conversations/{id}/messages/{order}`.
    pub fn name(&self) -> String {
        format!("{}/messages/{}", self.conversation.name(), self.order)
    }

    /// The JSON representation (every field).
    pub fn to_json(&self) -> Map<String, Value> {
        rendering::to_map(self)
    }

    /// A message just appended at `now`: its version is its creation.
    pub fn appended(
        conversation: ConversationId,
        order: u64,
        new: &NewMessage,
        now: Timestamp,
    ) -> Self {
        Self {
            conversation,
            order,
            kind: new.kind,
            content: new.content.clone(),
            tool_calls: new.tool_calls.clone(),
            tool_call_id: new.tool_call_id.clone(),
            metadata: new.metadata.clone(),
            create_time: now,
            version: Version(now.micros()),
        }
    }

    /// The fields an append of this message would carry, as a body (what an edit is checked
    /// against: the result must be a message an append accepts).
    pub fn as_body(&self) -> Map<String, Value> {
        let mut body = self.to_json();
        body.retain(|k, _| WRITABLE.contains(&k.as_str()));
        body
    }
}

/// A message's order as a path gives it (`/messages/{order}`): a positive integer no larger than
/// [`MAX_ORDER`], or `None` for anything else (0, negative, too large, not an integer), which
/// names no message and is a 404 like any missing one (revision 3).
pub fn parse_order(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|o| (1..=MAX_ORDER).contains(o))
}

/// A validated message to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Who wrote it.
    pub kind: MessageType,
    /// The content (empty only with tool calls).
    pub content: String,
    /// The tools an `AGENT` message asks for.
    pub tool_calls: Vec<ToolCall>,
    /// The call a `TOOL` message answers.
    pub tool_call_id: Option<String>,
    /// Optional metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The conversation's etag, as a precondition.
    pub etag: Option<Etag>,
}

/// Whether a tool call id or a `toolCallId` is well formed: 1–128 of `[A-Za-z0-9_.:-]`.
pub(crate) fn is_call_id(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// Whether a tool name is well formed: 1–128 of `[A-Za-z0-9_.-]`.
fn is_tool_name(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl NewMessage {
    /// Reads and validates a body object: unknown fields → 400, broken values → 422 listing each,
    /// a missing required field together with every other broken one.
    pub fn from_json(map: &Map<String, Value>) -> Result<Self, ApiError> {
        crate::domain::body::reject_unknown(map, &WRITABLE, &OUTPUT_ONLY)?;
        let mut r = Reader::new(map);
        let kind = match r.raw("type") {
            None => {
                r.error("type", "required", "type is required");
                None
            }
            Some(_) => r.enumeration("type", MessageType::parse, &MessageType::NAMES),
        };
        let tool_calls = read_tool_calls(&mut r)?;
        if !tool_calls.is_empty() && kind.is_some_and(|k| k != MessageType::Agent) {
            r.error(
                "toolCalls",
                "not_allowed",
                "only AGENT messages carry toolCalls",
            );
        }
        let tool_call_id = match r.raw("toolCallId") {
            None => None,
            Some(Value::String(id)) if is_call_id(id) => Some(id.clone()),
            Some(Value::String(_)) => {
                r.error(
                    "toolCallId",
                    "invalid",
                    "must be 1 to 128 characters of [A-Za-z0-9_.:-]",
                );
                None
            }
            Some(other) => {
                r.error(
                    "toolCallId",
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                );
                None
            }
        };
        if tool_call_id.is_some() && kind.is_some_and(|k| k != MessageType::Tool) {
            r.error(
                "toolCallId",
                "not_allowed",
                "only TOOL messages carry toolCallId",
            );
        }
        // An AGENT message asking for tools may say nothing else (even while its tool calls are
        // broken: they are reported, not a missing content).
        let asks_for_tools =
            matches!(r.raw("toolCalls"), Some(Value::Array(calls)) if !calls.is_empty());
        let content = if kind == Some(MessageType::Agent) && asks_for_tools {
            r.optional_text("content", MAX_CONTENT_BYTES)
        } else {
            r.required_text("content", MAX_CONTENT_BYTES)
        };
        let metadata = r.metadata("metadata");
        let etag = match r.raw("etag") {
            Some(Value::String(s)) => Some(Etag::parse(s)),
            Some(other) => {
                r.error(
                    "etag",
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                );
                None
            }
            None => None,
        };
        r.finish()?;
        match (kind, content) {
            (Some(kind), Some(content)) => Ok(Self {
                kind,
                content,
                tool_calls,
                tool_call_id,
                metadata,
                etag,
            }),
            _ => Err(ApiError::internal(
                "a message without type or content passed validation",
            )),
        }
    }

    /// A digest of what the message says (not its precondition): two requests with one
    /// idempotency key must carry the same messages. Object keys are sorted, so the digest does
    /// not depend on the order a client wrote them in.
    pub fn fingerprint(&self) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), self.kind.as_str().into());
        body.insert("content".into(), self.content.as_str().into());
        let calls = self.tool_calls.iter().map(ToolCall::to_json).collect();
        body.insert("toolCalls".into(), Value::Array(calls));
        body.insert(
            "toolCallId".into(),
            self.tool_call_id.clone().map_or(Value::Null, Value::String),
        );
        body.insert(
            "metadata".into(),
            self.metadata.clone().map_or(Value::Null, Value::Object),
        );
        Value::Object(body)
    }
}

/// The most messages one batch appends.
pub const MAX_BATCH: usize = 50;

/// A validated batch append: its messages, in order, the conversation's etag, and the
/// conversation's metadata keys it sets or removes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBatch {
    /// 1–50 messages.
    pub messages: Vec<NewMessage>,
    /// The conversation's etag, as a precondition.
    pub etag: Option<Etag>,
    /// `conversationMetadata`: top-level keys of the conversation's `metadata` to set
    /// (`Some`) or remove (`None`, a JSON `null`), in the batch's own transaction.
    pub conversation_metadata: Option<MetadataKeys>,
}

/// The most keys one `conversationMetadata` sets or removes.
pub const MAX_METADATA_KEYS: usize = 64;

/// Top-level keys of a conversation's `metadata` to set (`Some`) or remove (`None`), in key
/// order, each following the `metadata.<key>` rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataKeys(pub Vec<(String, Option<Value>)>);

impl MetadataKeys {
    /// Reads `conversationMetadata`: an object of at most 64 keys, each following the
    /// `metadata.<key>` rule, whose values are set (`null` removes the key); anything else is a
    /// 422 naming `conversationMetadata`. A value that alone passes the 16 KiB of a
    /// conversation's metadata is refused here, before any read.
    fn read(value: &Value, errors: &mut Vec<FieldError>) -> Option<Self> {
        let field = "conversationMetadata";
        let Value::Object(map) = value else {
            errors.push(FieldError::new(
                field,
                "invalid_type",
                format!(
                    "must be an object, not {}",
                    crate::domain::body::kind(value)
                ),
            ));
            return None;
        };
        let before = errors.len();
        if map.len() > MAX_METADATA_KEYS {
            errors.push(FieldError::new(
                field,
                "too_many",
                format!("sets at most {MAX_METADATA_KEYS} keys, not {}", map.len()),
            ));
        }
        for (key, value) in map {
            if !crate::domain::mask_text::is_metadata_key(key) {
                errors.push(FieldError::new(
                    field,
                    "invalid_key",
                    format!(
                        "key {:?} must match ^[A-Za-z_][A-Za-z0-9_-]{{0,63}}$",
                        crate::domain::ids::shorten(key)
                    ),
                ));
            } else if value.to_string().len() > MAX_METADATA_BYTES {
                errors.push(FieldError::new(
                    field,
                    "too_large",
                    format!("the value of {key:?} alone passes the {MAX_METADATA_BYTES} bytes of a conversation's metadata"),
                ));
            }
        }
        (errors.len() == before).then(|| {
            Self(
                map.iter()
                    .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| v.clone())))
                    .collect(),
            )
        })
    }

    /// A conversation's `metadata` after these keys are set or removed (`None`: empty).
    pub fn applied(&self, old: Option<&Map<String, Value>>) -> Option<Map<String, Value>> {
        let mut metadata = old.cloned().unwrap_or_default();
        for (k, v) in &self.0 {
            match v {
                Some(v) => metadata.insert(k.clone(), v.clone()),
                None => metadata.remove(k),
            };
        }
        (!metadata.is_empty()).then_some(metadata)
    }

    /// The keys as a JSON object (`null` for a removal), for an idempotency key's fingerprint.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().unwrap_or(Value::Null)))
                .collect(),
        )
    }
}

impl NewBatch {
    /// Reads `{"messages": [...], "etag"?, "conversationMetadata"?}`: each message as append
    /// reads one, every broken field of every message in one 422 (named
    /// `messages[3].content`), unknown fields a 400.
    pub fn from_json(map: &Map<String, Value>) -> Result<Self, ApiError> {
        crate::domain::body::reject_unknown(
            map,
            &["messages", "etag", "conversationMetadata"],
            &[],
        )?;
        let mut errors = Vec::new();
        let conversation_metadata = match map.get("conversationMetadata") {
            None | Some(Value::Null) => None,
            Some(value) => MetadataKeys::read(value, &mut errors),
        };
        let etag = match map.get("etag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Etag::parse(s)),
            Some(other) => {
                errors.push(FieldError::new(
                    "etag",
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                ));
                None
            }
        };
        let items = match map.get("messages") {
            Some(Value::Array(items)) if (1..=MAX_BATCH).contains(&items.len()) => items.as_slice(),
            Some(Value::Array(items)) => {
                errors.push(FieldError::new(
                    "messages",
                    "invalid",
                    format!("must hold 1 to {MAX_BATCH} messages, not {}", items.len()),
                ));
                &[]
            }
            None | Some(Value::Null) => {
                errors.push(FieldError::new(
                    "messages",
                    "required",
                    "messages is required",
                ));
                &[]
            }
            Some(other) => {
                errors.push(FieldError::new(
                    "messages",
                    "invalid_type",
                    format!(
                        "must be an array of messages, not {}",
                        crate::domain::body::kind(other)
                    ),
                ));
                &[]
            }
        };
        let mut messages = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(body) = item else {
                errors.push(FieldError::new(
                    format!("messages[{i}]"),
                    "invalid_type",
                    format!(
                        "must be a message object, not {}",
                        crate::domain::body::kind(item)
                    ),
                ));
                continue;
            };
            if body.contains_key("etag") {
                return Err(ApiError::InvalidArgument(format!(
                    "messages[{i}] carries an etag: a batch's precondition is the batch's own etag"
                )));
            }
            match NewMessage::from_json(body) {
                Ok(message) => messages.push(message),
                Err(ApiError::InvalidFields(broken)) => {
                    errors.extend(broken.into_iter().map(|e| FieldError {
                        field: format!("messages[{i}].{}", e.field),
                        ..e
                    }));
                }
                Err(ApiError::InvalidArgument(why)) => {
                    return Err(ApiError::InvalidArgument(format!("messages[{i}]: {why}")));
                }
                Err(other) => return Err(other),
            }
        }
        if errors.is_empty() {
            Ok(Self {
                messages,
                etag,
                conversation_metadata,
            })
        } else {
            Err(ApiError::InvalidFields(errors))
        }
    }
}

/// Reads `toolCalls`: 1–32 objects of `id`, `name` and `arguments`, ids unique. A field unknown
/// to a tool call is a 400, as anywhere in a body.
pub(crate) fn read_tool_calls(r: &mut Reader<'_>) -> Result<Vec<ToolCall>, ApiError> {
    let Some(value) = r.raw("toolCalls") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        r.error(
            "toolCalls",
            "invalid_type",
            format!(
                "must be an array of tool calls, not {}",
                crate::domain::body::kind(value)
            ),
        );
        return Ok(Vec::new());
    };
    if items.is_empty() || items.len() > MAX_TOOL_CALLS {
        r.error(
            "toolCalls",
            "invalid",
            format!(
                "must hold 1 to {MAX_TOOL_CALLS} tool calls, not {}",
                items.len()
            ),
        );
        return Ok(Vec::new());
    }
    let mut calls = Vec::with_capacity(items.len());
    let mut broken = false;
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("toolCalls[{i}].{name}");
        let Value::Object(call) = item else {
            r.error(
                format!("toolCalls[{i}]"),
                "invalid_type",
                format!("must be an object, not {}", crate::domain::body::kind(item)),
            );
            broken = true;
            continue;
        };
        if let Some(unknown) = call
            .keys()
            .find(|k| !["id", "name", "arguments"].contains(&k.as_str()))
        {
            return Err(ApiError::InvalidArgument(format!(
                "unknown field {:?} in toolCalls[{i}]",
                crate::domain::ids::shorten(unknown)
            )));
        }
        let mut text = |name: &str, ok: fn(&str) -> bool, rule: &str| match call.get(name) {
            Some(Value::String(v)) if ok(v) => Some(v.clone()),
            Some(Value::String(_)) => {
                r.error(field(name), "invalid", rule.to_owned());
                None
            }
            None | Some(Value::Null) => {
                r.error(field(name), "required", format!("{name} is required"));
                None
            }
            Some(other) => {
                r.error(
                    field(name),
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                );
                None
            }
        };
        let id = text(
            "id",
            is_call_id,
            "must be 1 to 128 characters of [A-Za-z0-9_.:-]",
        );
        let name = text(
            "name",
            is_tool_name,
            "must be 1 to 128 characters of [A-Za-z0-9_.-]",
        );
        let arguments = match call.get("arguments") {
            None | Some(Value::Null) => Some(Map::new()),
            Some(Value::Object(args)) => {
                let size = serde_json::to_vec(args).map_or(usize::MAX, |v| v.len());
                if size > MAX_METADATA_BYTES {
                    r.error(
                        field("arguments"),
                        "too_large",
                        format!(
                            "must be at most {MAX_METADATA_BYTES} bytes when serialised, not {size}"
                        ),
                    );
                    None
                } else {
                    Some(args.clone())
                }
            }
            Some(other) => {
                r.error(
                    field("arguments"),
                    "invalid_type",
                    format!(
                        "must be a JSON object, not {}",
                        crate::domain::body::kind(other)
                    ),
                );
                None
            }
        };
        if let Some(id) = &id
            && calls.iter().any(|c: &ToolCall| c.id == *id)
        {
            r.error(
                field("id"),
                "duplicate",
                "tool call ids are unique within a message",
            );
            broken = true;
        }
        match (id, name, arguments) {
            (Some(id), Some(name), Some(arguments)) => calls.push(ToolCall {
                id,
                name,
                arguments,
            }),
            _ => broken = true,
        }
    }
    Ok(if broken { Vec::new() } else { calls })
}

impl Render for Message {
    fn render_fields<M: SerializeMap>(
        &self,
        map: &mut M,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), M::Error> {
        field!(map, keep, "name", self.name());
        field!(map, keep, "order", self.order);
        field!(map, keep, "type", self.kind.as_str());
        field!(map, keep, "content", self.content);
        if !self.tool_calls.is_empty() {
            field!(
                map,
                keep,
                "toolCalls",
                self.tool_calls
                    .iter()
                    .map(ToolCall::to_json)
                    .collect::<Vec<_>>()
            );
        }
        if let Some(id) = &self.tool_call_id {
            field!(map, keep, "toolCallId", id);
        }
        if let Some(m) = &self.metadata {
            field!(map, keep, "metadata", m);
        }
        field!(map, keep, "createTime", Shown(self.create_time));
        field!(map, keep, "updateTime", Shown(self.version.time()));
        field!(map, keep, "etag", self.version.message_etag(self.order));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<NewMessage, ApiError> {
        NewMessage::from_json(value.as_object().expect("object"))
    }

    #[test]
    fn a_message_needs_a_type_and_content() {
        let Err(ApiError::InvalidFields(errors)) = read(json!({})) else {
            panic!("422")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["type", "content"]);
    }

    #[test]
    fn content_is_limited_to_64_kib() {
        assert!(read(json!({"type": "USER", "content": "x".repeat(MAX_CONTENT_BYTES)})).is_ok());
        assert_eq!(
            read(json!({"type": "USER", "content": "x".repeat(MAX_CONTENT_BYTES + 1)}))
                .expect_err("long")
                .status(),
            422
        );
        assert_eq!(
            read(json!({"type": "USER", "content": ""}))
                .expect_err("empty")
                .status(),
            422
        );
    }

    #[test]
    fn an_order_in_a_path_is_a_positive_integer_and_anything_else_names_no_message() {
        assert_eq!(parse_order("1"), Some(1));
        assert_eq!(parse_order("0042"), Some(42));
        assert_eq!(parse_order("9999999999"), Some(MAX_ORDER));
        for missing in [
            "0",
            "-1",
            "-0",
            "10000000000",
            "99999999999999999999999",
            "",
            "-",
            "one",
            "1.5",
            "1e3",
            " 1",
            "+1",
        ] {
            assert_eq!(parse_order(missing), None, "{missing}");
        }
    }

    #[test]
    fn a_rendered_message_carries_its_update_time_and_etag() {
        let now = Timestamp::parse("2026-12-01T10:00:00Z").expect("valid");
        let new = read(json!({"type": "USER", "content": "hi"})).expect("valid");
        let m = Message::appended(ConversationId::parse("c").expect("id"), 3, &new, now);
        let json = m.to_json();
        let keys: Vec<&str> = json.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "name",
                "order",
                "type",
                "content",
                "createTime",
                "updateTime",
                "etag"
            ]
        );
        assert_eq!(json["updateTime"], json["createTime"]);
        assert_eq!(
            json["etag"],
            Version(now.micros()).message_etag(json["order"].as_u64().expect("an order"))
        );
    }

    fn fields(result: Result<NewMessage, ApiError>) -> Vec<(String, &'static str)> {
        match result {
            Err(ApiError::InvalidFields(errors)) => {
                errors.into_iter().map(|e| (e.field, e.code)).collect()
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn an_agent_turn_asking_for_tools_needs_no_content() {
        let m = read(json!({"type": "AGENT", "toolCalls": [
            {"id": "call_1", "name": "get_weather", "arguments": {"city": "Lisbon"}},
            {"id": "call:2", "name": "search.web"}
        ]}))
        .expect("valid");
        assert_eq!(m.content, "");
        assert_eq!(m.tool_calls.len(), 2);
        assert_eq!(
            m.tool_calls[1].arguments,
            Map::new(),
            "arguments default to {{}}"
        );
        let answer = read(json!({"type": "TOOL", "toolCallId": "call_1", "content": "18°C"}))
            .expect("valid");
        assert_eq!(answer.tool_call_id.as_deref(), Some("call_1"));
        let rendered = Message::appended(
            ConversationId::parse("c").expect("id"),
            1,
            &m,
            Timestamp::parse("2026-12-01T10:00:00Z").expect("valid"),
        )
        .to_json();
        assert_eq!(
            rendered["toolCalls"][1],
            json!({"id": "call:2", "name": "search.web", "arguments": {}})
        );
        assert_eq!(rendered["content"], "");
    }

    #[test]
    fn tool_calls_and_tool_call_ids_follow_their_rules_every_broken_one_listed() {
        let errors = fields(read(json!({"type": "AGENT", "toolCalls": [
            {"id": "", "name": "ok"},
            {"id": "a b", "name": "bad name!", "arguments": []},
            {"id": "dup", "name": "x"},
            {"id": "dup", "name": "y"},
            {"name": "no-id"}
        ], "metadata": "x"})));
        for expected in [
            ("toolCalls[0].id", "invalid"),
            ("toolCalls[1].id", "invalid"),
            ("toolCalls[1].name", "invalid"),
            ("toolCalls[1].arguments", "invalid_type"),
            ("toolCalls[3].id", "duplicate"),
            ("toolCalls[4].id", "required"),
            ("metadata", "invalid_type"),
        ] {
            assert!(
                errors.iter().any(|(f, c)| (f.as_str(), *c) == expected),
                "{expected:?} missing from {errors:?}"
            );
        }
        assert!(
            !errors.iter().any(|(f, _)| f == "content"),
            "content may be left out next to tool calls, even broken ones: {errors:?}"
        );
        let wrong_types = fields(read(json!({"type": "USER", "content": "x",
            "toolCalls": [{"id": "c", "name": "n"}], "toolCallId": "c"})));
        assert_eq!(
            wrong_types,
            [
                ("toolCalls".to_owned(), "not_allowed"),
                ("toolCallId".to_owned(), "not_allowed")
            ]
        );
        let too_many = (0..33)
            .map(|i| json!({"id": format!("c{i}"), "name": "n"}))
            .collect::<Vec<_>>();
        assert_eq!(
            fields(read(json!({"type": "AGENT", "toolCalls": too_many})))[0],
            ("toolCalls".to_owned(), "invalid")
        );
        assert_eq!(
            fields(read(json!({"type": "AGENT", "toolCalls": []}))),
            [
                ("toolCalls".to_owned(), "invalid"),
                ("content".to_owned(), "required")
            ]
        );
        let big = json!({"type": "AGENT", "toolCalls": [{"id": "c", "name": "n", "arguments": {"a": "x".repeat(17 * 1024)}}]});
        assert_eq!(
            fields(read(big))[0],
            ("toolCalls[0].arguments".to_owned(), "too_large")
        );
        assert_eq!(
            read(json!({"type": "AGENT", "toolCalls": [{"id": "c", "name": "n", "extra": 1}]}))
                .expect_err("unknown")
                .status(),
            400
        );
    }

    #[test]
    fn a_missing_type_is_listed_with_every_other_broken_field() {
        let errors = fields(read(
            json!({"content": "", "metadata": [1], "toolCallId": "bad id"}),
        ));
        let names: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(names, ["type", "toolCallId", "content", "metadata"]);
    }

    #[test]
    fn a_batch_names_every_broken_field_by_its_message() {
        let batch = |v: Value| NewBatch::from_json(v.as_object().expect("object"));
        let ok = batch(json!({"messages": [
            {"type": "AGENT", "toolCalls": [{"id": "c1", "name": "search"}, {"id": "c2", "name": "fetch"}]},
            {"type": "TOOL", "toolCallId": "c1", "content": "found"},
            {"type": "TOOL", "toolCallId": "c2", "content": "fetched"},
            {"type": "AGENT", "content": "Here it is."}
        ], "etag": "\"1\""}))
        .expect("a turn");
        assert_eq!(ok.messages.len(), 4);
        let Err(ApiError::InvalidFields(errors)) = batch(json!({"messages": [
            {"type": "USER", "content": "fine"},
            {"content": ""},
            "text",
            {"type": "AGENT", "toolCalls": [{"id": "bad id", "name": "n"}]}
        ]})) else {
            panic!("a 422")
        };
        let named: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            named,
            [
                "messages[1].type",
                "messages[1].content",
                "messages[2]",
                "messages[3].toolCalls[0].id"
            ]
        );
        for (body, status) in [
            (json!({"messages": []}), 422),
            (
                json!({"messages": vec![json!({"type": "USER", "content": "x"}); 51]}),
                422,
            ),
            (json!({}), 422),
            (json!({"messages": {}}), 422),
            (
                json!({"messages": [{"type": "USER", "content": "x", "etag": "\"1\""}]}),
                400,
            ),
            (
                json!({"messages": [{"type": "USER", "content": "x", "colour": 1}]}),
                400,
            ),
            (
                json!({"messages": [{"type": "USER", "content": "x"}], "extra": 1}),
                400,
            ),
        ] {
            assert_eq!(
                batch(body.clone()).expect_err("refused").status(),
                status,
                "{body}"
            );
        }
    }

    #[test]
    fn a_fingerprint_ignores_key_order_and_the_etag() {
        let a = read(
            json!({"type": "USER", "content": "x", "metadata": {"a": 1, "b": 2}, "etag": "\"1\""}),
        )
        .expect("valid");
        let b = read(json!({"metadata": {"b": 2, "a": 1}, "content": "x", "type": "USER"}))
            .expect("valid");
        let canon = |m: &NewMessage| crate::domain::body::canonical(&m.fingerprint());
        assert_eq!(canon(&a), canon(&b));
        let c = read(json!({"type": "USER", "content": "y"})).expect("valid");
        assert_ne!(canon(&a), canon(&c));
    }

    #[test]
    fn unknown_types_and_fields_are_rejected() {
        assert_eq!(
            read(json!({"type": "BOT", "content": "x"}))
                .expect_err("type")
                .status(),
            422
        );
        assert_eq!(
            read(json!({"type": "USER", "content": "x", "sender": "y"}))
                .expect_err("field")
                .status(),
            400
        );
        assert!(
            read(json!({"type": "USER", "content": "x", "order": 9, "createTime": "t"})).is_ok()
        );
    }
}
