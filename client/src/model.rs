//! The resources of `../shared/API.md` (revision 3) as Rust types: what the service answers
//! (`Conversation`, `Message`, pages) and what a request body carries (`ConversationInput`,
//! `MessageInput`). Field names are the API's lowerCamelCase; a response may leave any field out
//! (the request's `fields`, or the field is unset), so every response field is optional.
//! Timestamps stay the RFC 3339 strings the service sends (`2026-11-23T08:00:00.123456Z`), so an
//! export writes back exactly what was read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A free-form JSON object (`metadata`, a tool call's `arguments`).
pub type JsonObject = Map<String, Value>;

/// `conversationStage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConversationStage {
    VirtualAgentStage,
    HumanAssistStage,
}

/// `lifecycleState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleState {
    InProgress,
    Completed,
}

/// A message's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageType {
    User,
    Agent,
    System,
    Tool,
}

impl MessageType {
    /// The name the API uses (`USER`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Agent => "AGENT",
            Self::System => "SYSTEM",
            Self::Tool => "TOOL",
        }
    }
}

impl std::str::FromStr for MessageType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "USER" => Ok(Self::User),
            "AGENT" => Ok(Self::Agent),
            "SYSTEM" => Ok(Self::System),
            "TOOL" => Ok(Self::Tool),
            _ => Err(format!(
                "{text:?} is not a message type (USER, AGENT, SYSTEM or TOOL)"
            )),
        }
    }
}

/// `can`: what the caller may do now, given the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Can {
    pub update: bool,
    pub delete: bool,
    pub undelete: bool,
    pub complete: bool,
    pub append_message: bool,
}

/// `qualityMetadata` (CCAI Insights).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_satisfaction_rating: Option<u8>,
    /// A duration string such as `"30s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_info: Option<Vec<AgentInfo>>,
}

/// One entry of `qualityMetadata.agentInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfo {
    pub agent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition_code: Option<String>,
}

/// `callMetadata` (CCAI Insights): the audio channel of each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_channel: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_channel: Option<u8>,
}

/// `dataSource` (CCAI Insights): exactly one member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs_source: Option<GcsSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialogflow_source: Option<DialogflowSource>,
}

/// `dataSource.gcsSource`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GcsSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript_uri: Option<String>,
}

/// `dataSource.dialogflowSource`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogflowSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialogflow_conversation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_uri: Option<String>,
}

/// One of Looker's `sources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub model: String,
    pub explore: String,
}

/// `phoneNumber` (Dialogflow); immutable after create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumber {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<u16>,
    /// E.164 (`+14155550100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// A conversation as the service answers it (`conversations/{id}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_stage: Option<ConversationStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_metadata: Option<QualityMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_metadata: Option<CallMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Source>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<LifecycleState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can: Option<Can>,
    /// Only in get's `view=FULL`: the latest messages (at most 50), ascending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
}

impl Conversation {
    /// The id: the last segment of `name` (`conversations/{id}`).
    pub fn id(&self) -> Option<&str> {
        self.name.as_deref()?.strip_prefix("conversations/")
    }

    /// Whether `complete` has been called.
    pub fn is_completed(&self) -> bool {
        self.lifecycle_state == Some(LifecycleState::Completed)
    }

    /// The writable fields of this conversation as a request body: what create would need to
    /// make a copy of it (an import), or an update to write it back whole (`updateMask=*`).
    pub fn to_input(&self) -> ConversationInput {
        ConversationInput {
            display_name: self.display_name.clone(),
            category: self.category.clone(),
            agents: self.agents.clone(),
            conversation_profile: self.conversation_profile.clone(),
            language_code: self.language_code.clone(),
            labels: self.labels.clone(),
            metadata: self.metadata.clone(),
            conversation_stage: self.conversation_stage,
            quality_metadata: self.quality_metadata.clone(),
            call_metadata: self.call_metadata,
            data_source: self.data_source.clone(),
            sources: self.sources.clone(),
            phone_number: self.phone_number.clone(),
            start_time: self.start_time.clone(),
            expire_time: self.expire_time.clone(),
            ttl: None,
            etag: None,
        }
    }
}

/// The body of create and update: the writable fields. A field left `None` is absent from the
/// body; in an update whose mask names it, absent means cleared (AIP-134).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Required on create: 1–16 agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_stage: Option<ConversationStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_metadata: Option<QualityMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_metadata: Option<CallMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<Source>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<PhoneNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Input only: `expireTime = now + ttl` (`"86400s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// The conversation's etag as the update's precondition (a stale one is 409 `ABORTED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ConversationInput {
    /// A create body with its one required field.
    pub fn with_agents<I: IntoIterator<Item = S>, S: Into<String>>(agents: I) -> Self {
        Self {
            agents: Some(agents.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }
}

/// A tool call of an `AGENT` message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub arguments: JsonObject,
}

/// A message as the service answers it (`conversations/{id}/messages/{order}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl Message {
    /// The writable fields of this message as an append body (an import).
    pub fn to_input(&self) -> Option<MessageInput> {
        Some(MessageInput {
            kind: self.kind?,
            content: self.content.clone(),
            tool_calls: self.tool_calls.clone(),
            tool_call_id: self.tool_call_id.clone(),
            metadata: self.metadata.clone(),
            etag: None,
        })
    }
}

/// The body of append message and of each message of a batch; of update message too (with the
/// message's etag as `etag`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageInput {
    #[serde(rename = "type")]
    pub kind: MessageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    /// Append: the conversation's etag (precondition). Not allowed inside a batch (the batch has
    /// its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl MessageInput {
    /// A message of `kind` with `content`.
    pub fn new(kind: MessageType, content: impl Into<String>) -> Self {
        Self {
            kind,
            content: Some(content.into()),
            tool_calls: None,
            tool_call_id: None,
            metadata: None,
            etag: None,
        }
    }
}

/// The body of update message: the fields it may change, and the message's etag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonObject>,
    /// The message's etag (precondition; stale is 409 `ABORTED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// A page of list conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPage {
    #[serde(default)]
    pub conversations: Vec<Conversation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A page of list messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The answer of batch append: the messages appended, and the conversation's etag after the
/// batch (to chain the next precondition without another read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Messages {
    /// Absent only when `fields` left it out (the spec requires no field of an answer).
    #[serde(default)]
    pub messages: Vec<Message>,
    /// The conversation's etag after the batch (revision 3). A repeat answered from its key
    /// carries the etag the first call left, which a write since has made stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_etag: Option<String>,
}

/// The answer of append message: the message, and the conversation's etag after the append (its
/// `X-Conversation-ETag` header), to chain the next precondition without another read. It
/// dereferences to the message (`appended.order`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Appended {
    pub message: Message,
    /// `X-Conversation-ETag` (revision 3); `None` from a service that does not send it. A
    /// repeat answered from its key carries the etag the first call left, which a write since
    /// has made stale.
    pub conversation_etag: Option<String>,
}

impl std::ops::Deref for Appended {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.message
    }
}

impl From<Appended> for Message {
    fn from(appended: Appended) -> Self {
        appended.message
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchBody<'a> {
    pub messages: &'a [MessageInput],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_metadata: Option<&'a JsonObject>,
}

/// The body of clear messages.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ClearBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through_order: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct EtagBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
}

/// The answer of purge: `{}`.
#[derive(Deserialize)]
pub(crate) struct Empty {}
