//! The Message resource: an ordered entry of a conversation.

use serde_json::{Map, Value};

use crate::domain::body::Reader;
use crate::domain::etag::{Etag, Version};
use crate::domain::ids::ConversationId;
use crate::domain::time::Timestamp;
use crate::error::ApiError;

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

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The conversation it belongs to.
    pub conversation: ConversationId,
    /// 1-based, gap-free per conversation.
    pub order: u64,
    /// Who wrote it.
    pub kind: MessageType,
    /// 1 character to 64 KiB.
    pub content: String,
    /// Optional JSON object, at most 16 KiB serialised.
    pub metadata: Option<Map<String, Value>>,
    /// When it was appended.
    pub create_time: Timestamp,
    /// The version of its last write (the append, or an edit): `updateTime` and its etag.
    pub version: Version,
}

/// The top-level field names of a rendered message, in output order.
pub const OUTPUT_FIELDS: [&str; 8] = [
    "name",
    "order",
    "type",
    "content",
    "metadata",
    "createTime",
    "updateTime",
    "etag",
];
const WRITABLE: [&str; 4] = ["type", "content", "metadata", "etag"];
const OUTPUT_ONLY: [&str; 4] = ["name", "order", "createTime", "updateTime"];

/// The highest order a message can have (ten digits in its key).
pub const MAX_ORDER: u64 = 9_999_999_999;

impl Message {
    /// The resource name, `conversations/{id}/messages/{order}`.
    pub fn name(&self) -> String {
        format!("{}/messages/{}", self.conversation.name(), self.order)
    }

    /// The JSON representation.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("name".into(), self.name().into());
        out.insert("order".into(), self.order.into());
        out.insert("type".into(), self.kind.as_str().into());
        out.insert("content".into(), self.content.as_str().into());
        if let Some(m) = &self.metadata {
            out.insert("metadata".into(), Value::Object(m.clone()));
        }
        out.insert("createTime".into(), self.create_time.to_string().into());
        out.insert("updateTime".into(), self.version.time().to_string().into());
        out.insert("etag".into(), self.version.etag().into());
        out
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
            metadata: new.metadata.clone(),
            create_time: now,
            version: Version(now.micros()),
        }
    }
}

/// A message's order as a path gives it (`/messages/{order}`): `Ok(None)` for an integer that no
/// message can have (0, negative, past [`MAX_ORDER`]), which is a 404 like any missing message;
/// anything that is not an integer is a 400.
pub fn parse_order(text: &str) -> Result<Option<u64>, ApiError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::InvalidArgument(format!(
            "a message order must be an integer, not {:?}",
            crate::domain::ids::shorten(text)
        )));
    }
    if text.starts_with('-') {
        return Ok(None);
    }
    Ok(digits
        .parse::<u64>()
        .ok()
        .filter(|o| (1..=MAX_ORDER).contains(o)))
}

/// A validated message to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Who wrote it.
    pub kind: MessageType,
    /// The content.
    pub content: String,
    /// Optional metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The conversation's etag, as a precondition.
    pub etag: Option<Etag>,
}

impl NewMessage {
    /// Reads and validates a body object: unknown fields → 400, broken values → 422 listing each.
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
        let content = r.required_text("content", MAX_CONTENT_BYTES);
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
                metadata,
                etag,
            }),
            _ => Err(ApiError::internal(
                "a message without type or content passed validation",
            )),
        }
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
    fn orders_in_a_path_are_integers_and_impossible_ones_are_missing() {
        assert_eq!(parse_order("1").expect("valid"), Some(1));
        assert_eq!(parse_order("0042").expect("valid"), Some(42));
        assert_eq!(parse_order("9999999999").expect("valid"), Some(MAX_ORDER));
        for missing in ["0", "-1", "-0", "10000000000", "99999999999999999999999"] {
            assert_eq!(parse_order(missing).expect(missing), None, "{missing}");
        }
        for bad in ["", "-", "one", "1.5", "1e3", " 1", "+1"] {
            assert_eq!(parse_order(bad).expect_err(bad).status(), 400, "{bad}");
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
        assert_eq!(json["etag"], Version(now.micros()).etag());
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
