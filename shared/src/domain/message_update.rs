//! Update message (an edit, e.g. a redaction): its `updateMask`, and the edited message, which
//! must be a message an append would accept.

use serde_json::{Map, Value};

use crate::domain::body::Reader;
use crate::domain::etag::Etag;
use crate::domain::ids::shorten;
use crate::domain::mask_text::{MAX_MASK_BYTES, MAX_MASK_PATHS, is_metadata_key, trim_spaces};
use crate::domain::message::{
    MAX_CONTENT_BYTES, Message, MessageType, NewMessage, OUTPUT_ONLY, WRITABLE, is_call_id,
    read_tool_calls,
};
use crate::error::ApiError;

/// One path of a message's `updateMask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagePath {
    /// `content`.
    Content,
    /// `metadata`: the whole object.
    Metadata,
    /// `metadata.<key>`: one top-level key of it.
    MetadataKey(String),
    /// `toolCalls`.
    ToolCalls,
}

/// The fields a message keeps for life: its type, and the call it answers.
const FIXED: [&str; 2] = ["type", "toolCallId"];

impl MessagePath {
    /// One path; `Ok(None)` for an output-only one (ignored, AIP-203).
    fn parse(path: &str) -> Result<Option<Self>, ApiError> {
        let bad = |why: String| Err(ApiError::InvalidArgument(why));
        match path {
            "content" => Ok(Some(Self::Content)),
            "metadata" => Ok(Some(Self::Metadata)),
            "toolCalls" | "tool_calls" => Ok(Some(Self::ToolCalls)),
            "type" | "toolCallId" | "tool_call_id" => bad(format!(
                "updateMask names {path}, which cannot change: a message keeps its type and the call it answers"
            )),
            p if OUTPUT_ONLY.contains(&p)
                || p == "etag"
                || p == "update_time"
                || p == "create_time" =>
            {
                Ok(None)
            }
            p => match p.strip_prefix("metadata.") {
                Some(key) if is_metadata_key(key) => Ok(Some(Self::MetadataKey(key.to_owned()))),
                Some(key) => bad(format!(
                    "updateMask path metadata.{} names an invalid key (keys match ^[A-Za-z_][A-Za-z0-9_-]{{0,63}}$)",
                    shorten(key)
                )),
                None => bad(format!("updateMask names an unknown path {:?}", shorten(p))),
            },
        }
    }
}

/// Every field the body carries must be well formed, masked or not (422 listing each): an edit
/// is refused for what it says, whatever it asks to change.
fn check_values(body: &Map<String, Value>) -> Result<(), ApiError> {
    let mut r = Reader::new(body);
    if r.raw("type").is_some() {
        r.enumeration("type", MessageType::parse, &MessageType::NAMES);
    }
    r.optional_text("content", MAX_CONTENT_BYTES);
    if r.raw("toolCalls").is_some() {
        read_tool_calls(&mut r)?;
    }
    match r.raw("toolCallId") {
        None => {}
        Some(Value::String(id)) if is_call_id(id) => {}
        Some(Value::String(_)) => r.error(
            "toolCallId",
            "invalid",
            "must be 1 to 128 characters of [A-Za-z0-9_.:-]",
        ),
        Some(other) => r.error(
            "toolCallId",
            "invalid_type",
            format!("must be a string, not {}", crate::domain::body::kind(other)),
        ),
    }
    r.metadata("metadata");
    r.finish()
}

/// A validated edit: which paths change, with the values the body gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageUpdate {
    paths: Vec<MessagePath>,
    /// `type` or `toolCallId` in a body without a mask: they must equal the stored values.
    kept: Vec<String>,
    body: Map<String, Value>,
    /// The message's etag, as a precondition.
    pub etag: Option<Etag>,
}

impl MessageUpdate {
    /// Reads a body and its mask (`None`: the writable fields the body names). Unknown fields
    /// and paths, overlapping paths, and `type`/`toolCallId` in the mask are 400.
    pub fn new(body: &Map<String, Value>, mask: Option<&str>) -> Result<Self, ApiError> {
        crate::domain::body::reject_unknown(body, &WRITABLE, &OUTPUT_ONLY)?;
        check_values(body)?;
        let etag = match body.get("etag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Etag::parse(s)),
            Some(other) => {
                return Err(ApiError::field(
                    "etag",
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                ));
            }
        };
        let named: Vec<String> = match mask {
            Some(text) => {
                if text.len() > MAX_MASK_BYTES {
                    return Err(ApiError::InvalidArgument("updateMask is too long".into()));
                }
                text.split(',').map(|p| trim_spaces(p).to_owned()).collect()
            }
            // No mask: the fields the body names. A body read back from a get carries `type`
            // (and `toolCallId`): they are accepted when they say what the message already says.
            None => body
                .keys()
                .filter(|k| *k != "etag" && !FIXED.contains(&k.as_str()))
                .cloned()
                .collect(),
        };
        let kept = match mask {
            Some(_) => Vec::new(),
            None => FIXED
                .iter()
                .filter(|k| body.contains_key(**k))
                .map(|k| (*k).to_owned())
                .collect(),
        };
        let mut paths = Vec::new();
        for path in &named {
            if path.is_empty() {
                return Err(ApiError::InvalidArgument(
                    "updateMask has an empty path".into(),
                ));
            }
            // `*`: every field an edit may change (those the body leaves out are cleared); alone,
            // as in a conversation's mask.
            let expanded = if path == "*" {
                if named.iter().any(|p| p != "*") {
                    return Err(ApiError::InvalidArgument(
                        "updateMask * cannot be combined with other paths".into(),
                    ));
                }
                vec![
                    MessagePath::Content,
                    MessagePath::Metadata,
                    MessagePath::ToolCalls,
                ]
            } else {
                MessagePath::parse(path)?.into_iter().collect()
            };
            for p in expanded {
                if paths.contains(&p) {
                    continue;
                }
                if paths.len() == MAX_MASK_PATHS {
                    return Err(ApiError::InvalidArgument(format!(
                        "updateMask names more than {MAX_MASK_PATHS} paths"
                    )));
                }
                paths.push(p);
            }
        }
        let whole = paths.contains(&MessagePath::Metadata);
        if whole
            && paths
                .iter()
                .any(|p| matches!(p, MessagePath::MetadataKey(_)))
        {
            return Err(ApiError::InvalidArgument(
                "updateMask paths metadata and metadata.<key> overlap".into(),
            ));
        }
        Ok(Self {
            paths,
            kept,
            body: body.clone(),
            etag,
        })
    }

    /// The message as this edit leaves it: every masked path takes the body's value, or is
    /// cleared when the body leaves it out. The result must be a message an append accepts
    /// (422 listing every broken field otherwise); `type`, `toolCallId`, order and times stay.
    pub fn apply(&self, old: &Message) -> Result<Message, ApiError> {
        let mut body = old.as_body();
        for field in &self.kept {
            let given = self.body.get(field).filter(|v| !v.is_null());
            if given != body.get(field) {
                return Err(ApiError::InvalidArgument(format!(
                    "{field} cannot change: a message keeps its type and the call it answers \
                     (leave {field} out of the body)"
                )));
            }
        }
        let value = |key: &str| self.body.get(key).filter(|v| !v.is_null()).cloned();
        for path in &self.paths {
            match path {
                MessagePath::Content => {
                    body.insert(
                        "content".into(),
                        value("content").unwrap_or(Value::from("")),
                    );
                }
                MessagePath::Metadata | MessagePath::ToolCalls => {
                    let key = if *path == MessagePath::Metadata {
                        "metadata"
                    } else {
                        "toolCalls"
                    };
                    match value(key) {
                        Some(v) => body.insert(key.into(), v),
                        None => body.remove(key),
                    };
                }
                MessagePath::MetadataKey(key) => {
                    let given = match self.body.get("metadata") {
                        Some(Value::Object(m)) => m.get(key).cloned(),
                        None | Some(Value::Null) => None,
                        Some(other) => {
                            return Err(ApiError::field(
                                "metadata",
                                "invalid_type",
                                format!(
                                    "must be a JSON object, not {}",
                                    crate::domain::body::kind(other)
                                ),
                            ));
                        }
                    };
                    let mut metadata = match body.remove("metadata") {
                        Some(Value::Object(m)) => m,
                        _ => Map::new(),
                    };
                    match given {
                        Some(v) => metadata.insert(key.clone(), v),
                        None => metadata.remove(key),
                    };
                    if !metadata.is_empty() {
                        body.insert("metadata".into(), Value::Object(metadata));
                    }
                }
            }
        }
        let checked = NewMessage::from_json(&body)?;
        Ok(Message {
            content: checked.content,
            tool_calls: checked.tool_calls,
            metadata: checked.metadata,
            ..old.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::etag::Version;
    use crate::domain::ids::ConversationId;
    use crate::domain::message::MessageType;
    use crate::domain::time::Timestamp;
    use serde_json::json;

    fn message(body: Value) -> Message {
        let new = NewMessage::from_json(body.as_object().expect("object")).expect("valid");
        let now = Timestamp::parse("2026-12-01T10:00:00Z").expect("valid");
        Message::appended(ConversationId::parse("c").expect("id"), 7, &new, now)
    }

    fn edit(old: &Message, body: Value, mask: Option<&str>) -> Result<Message, ApiError> {
        MessageUpdate::new(body.as_object().expect("object"), mask)?.apply(old)
    }

    #[test]
    fn a_redaction_replaces_the_content_and_keeps_the_rest() {
        let old = message(
            json!({"type": "USER", "content": "my card is 4111…", "metadata": {"lang": "en"}}),
        );
        let new = edit(&old, json!({"content": "[redacted]"}), Some("content")).expect("valid");
        assert_eq!(new.content, "[redacted]");
        assert_eq!(
            (new.order, new.kind, new.version),
            (old.order, old.kind, old.version)
        );
        assert_eq!(new.metadata, old.metadata);
        let implied = edit(&old, json!({"content": "[x]", "etag": "\"1\""}), None).expect("valid");
        assert_eq!(implied.content, "[x]");
    }

    #[test]
    fn metadata_keys_are_set_or_removed_one_by_one() {
        let old = message(json!({"type": "USER", "content": "x", "metadata": {"a": 1, "b": 2}}));
        let new = edit(
            &old,
            json!({"metadata": {"a": 9, "c": 3}}),
            Some("metadata.a,metadata.b,metadata.c"),
        )
        .expect("valid");
        assert_eq!(new.metadata, json!({"a": 9, "c": 3}).as_object().cloned());
        let gone = edit(&old, json!({}), Some("metadata")).expect("valid");
        assert_eq!(gone.metadata, None);
        let emptied = edit(&old, json!({}), Some("metadata.a,metadata.b")).expect("valid");
        assert_eq!(
            emptied.metadata, None,
            "the last key removed leaves no metadata"
        );
    }

    #[test]
    fn the_result_must_be_a_message_an_append_accepts() {
        let user = message(json!({"type": "USER", "content": "x"}));
        let cleared = edit(&user, json!({}), Some("content")).expect_err("no content");
        assert_eq!(cleared.status(), 422);
        let calls = edit(
            &user,
            json!({"toolCalls": [{"id": "a", "name": "b"}]}),
            Some("toolCalls"),
        )
        .expect_err("not an AGENT");
        assert_eq!(calls.status(), 422);
        let agent = message(json!({"type": "AGENT", "toolCalls": [{"id": "a", "name": "b"}]}));
        assert_eq!(agent.kind, MessageType::Agent);
        let no_calls_no_content = edit(&agent, json!({}), Some("toolCalls")).expect_err("empty");
        assert_eq!(no_calls_no_content.status(), 422);
        let replaced = edit(
            &agent,
            json!({"toolCalls": [{"id": "z", "name": "y", "arguments": {"k": "[redacted]"}}]}),
            Some("toolCalls"),
        )
        .expect("valid");
        assert_eq!(replaced.tool_calls[0].id, "z");
    }

    #[test]
    fn masks_refuse_what_cannot_change_and_what_they_do_not_know() {
        let old = message(json!({"type": "TOOL", "content": "x", "toolCallId": "c"}));
        for (mask, body) in [
            (Some("type"), json!({"type": "USER"})),
            (Some("toolCallId"), json!({})),
            (Some("tool_call_id"), json!({})),
            (None, json!({"type": "USER", "content": "y"})),
            (
                None,
                json!({"type": "TOOL", "toolCallId": "other", "content": "y"}),
            ),
            (
                None,
                json!({"type": "TOOL", "toolCallId": null, "content": "y"}),
            ),
            (Some("colour"), json!({})),
            (Some("metadata,metadata.a"), json!({})),
            (Some("metadata.9bad"), json!({})),
            (Some("content,,metadata"), json!({})),
        ] {
            let error = edit(&old, body.clone(), mask).expect_err("refused");
            assert_eq!(error.status(), 400, "{mask:?} {body}");
        }
        let read_back = json!({"type": "TOOL", "toolCallId": "c", "content": "z", "order": 7});
        let same = edit(&old, read_back, None).expect("type and toolCallId as stored are accepted");
        assert_eq!((same.content.as_str(), same.kind), ("z", MessageType::Tool));
        let ignored = edit(
            &old,
            json!({"content": "y", "createTime": "t"}),
            Some("content,createTime,name,order,etag"),
        )
        .expect("output-only paths are ignored");
        assert_eq!(ignored.content, "y");
        assert_eq!(
            MessageUpdate::new(json!({"colour": 1}).as_object().expect("o"), None)
                .expect_err("unknown")
                .status(),
            400
        );
        assert_eq!(old.version, Version(old.create_time.micros()));
    }

    #[test]
    fn every_field_of_the_body_is_checked_masked_or_not() {
        let old = message(json!({"type": "USER", "content": "x"}));
        for body in [
            json!({"content": "y", "toolCalls": 5}),
            json!({"content": "y", "type": "WIZARD"}),
            json!({"content": "y", "toolCallId": "bad id"}),
            json!({"content": "y", "metadata": []}),
            json!({"content": 1}),
        ] {
            let error = edit(&old, body.clone(), Some("content")).expect_err("broken");
            assert_eq!(error.status(), 422, "{body}");
        }
    }

    #[test]
    fn a_star_mask_replaces_every_editable_field() {
        let old = message(json!({"type": "USER", "content": "x", "metadata": {"a": 1}}));
        let new = edit(&old, json!({"content": "y"}), Some("*")).expect("valid");
        assert_eq!((new.content.as_str(), new.metadata.clone()), ("y", None));
        let combined =
            edit(&old, json!({"content": "y"}), Some("*,metadata.a")).expect_err("alone");
        assert_eq!(combined.status(), 400);
        assert!(edit(&old, json!({"content": "y"}), Some("*, *")).is_ok());
    }
}
