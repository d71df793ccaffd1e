//! The command line: global options and one subcommand per method of the API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use conversations_client::{ConversationOrder, Error, JsonObject, MessageType};
use uuid::Uuid;

/// The Conversations API from a shell.
#[derive(Debug, Parser)]
#[command(name = "conversations", version)]
pub struct Cli {
    /// The API's base URL (a stage's invoke URL, or `make dev`'s).
    #[arg(
        long,
        env = "CONVERSATIONS_URL",
        default_value = "http://127.0.0.1:9000",
        global = true
    )]
    pub url: String,
    /// A bearer token (a deployed stack's JWT).
    #[arg(
        long,
        env = "CONVERSATIONS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Call as this owner through `X-Owner-Id` (local stacks only; ignored with a token).
    #[arg(long, env = "CONVERSATIONS_OWNER", global = true)]
    pub owner: Option<String>,
    /// Act for this end user (`X-On-Behalf-Of`; the token must grant the delegation scope).
    #[arg(long, global = true)]
    pub on_behalf_of: Option<String>,
    /// Print JSON (a resource per line for lists) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a conversation.
    Create(Create),
    /// Read a conversation.
    Get {
        id: String,
        /// Also its latest messages (view=FULL).
        #[arg(long)]
        full: bool,
    },
    /// List your conversations.
    List(List),
    /// Update a conversation's fields.
    Update(Update),
    /// Soft-delete a conversation.
    Delete {
        id: String,
        /// The conversation's etag (precondition).
        #[arg(long)]
        etag: Option<String>,
        /// A missing or deleted conversation is not an error.
        #[arg(long)]
        allow_missing: bool,
    },
    /// Undelete a soft-deleted conversation.
    Undelete {
        id: String,
        #[arg(long)]
        etag: Option<String>,
    },
    /// Complete a conversation.
    Complete {
        id: String,
        #[arg(long)]
        etag: Option<String>,
    },
    /// Append a message.
    Append(Append),
    /// Read one message.
    GetMessage { id: String, order: u64 },
    /// Edit (or redact) a message.
    UpdateMessage(UpdateMessage),
    /// Delete a message for good (its order is never given again); prints it as it was.
    DeleteMessage {
        id: String,
        order: u64,
        /// The message's etag (precondition).
        #[arg(long)]
        etag: Option<String>,
    },
    /// Clear a conversation's messages — every one, those up to --through, or all but the last
    /// --keep-last — and print the conversation.
    Clear {
        id: String,
        /// Clear the messages up to this order.
        #[arg(long, conflicts_with = "keep_last")]
        through: Option<u64>,
        /// Keep the last N messages (0–999) and clear those before them (one read of the last
        /// N + 1 first; nothing is written when the conversation holds no more than N).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=999))]
        keep_last: Option<u32>,
        /// The conversation's etag (precondition).
        #[arg(long)]
        etag: Option<String>,
    },
    /// Erase a conversation and every message of it now (live or soft-deleted): its id is free
    /// for a create at once.
    Purge {
        id: String,
        /// A missing conversation is not an error.
        #[arg(long)]
        allow_missing: bool,
        /// The conversation's etag (precondition).
        #[arg(long)]
        etag: Option<String>,
    },
    /// List a conversation's messages, oldest first.
    Messages {
        id: String,
        /// Only the last N.
        #[arg(long)]
        last: Option<u32>,
        /// Only those after this order.
        #[arg(long)]
        after: Option<u64>,
        /// Only messages of this type.
        #[arg(long = "type")]
        kind: Option<MessageType>,
    },
    /// Print the last messages, and with --follow the new ones as they come, until the
    /// conversation completes or Ctrl-C.
    Tail {
        id: String,
        #[arg(long, short)]
        follow: bool,
        /// How many of the latest messages to print first.
        #[arg(long, default_value_t = 10)]
        last: u32,
        /// How often to look for new messages, in milliseconds.
        #[arg(long = "interval-ms", default_value_t = 1000)]
        interval_ms: u64,
    },
    /// Write a conversation and its messages as JSON Lines (the conversation first).
    Export {
        id: String,
        /// The file to write (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Create a conversation from an export and append its messages; safe to run again after
    /// an interruption (nothing is added twice).
    Import {
        file: PathBuf,
        /// The new conversation's id (default: the exported one's).
        #[arg(long)]
        id: Option<String>,
        /// Messages per batch (1–50).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=50))]
        chunk: u16,
    },
}

/// The writable fields that create and update take as flags.
#[derive(Debug, Args)]
pub struct Fields {
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub language_code: Option<String>,
    /// A label, `key=value` (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// A JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// A time to live, e.g. `86400s`.
    #[arg(long)]
    pub ttl: Option<String>,
    /// A whole request body: JSON, or `@FILE`; the flags above override its fields.
    #[arg(long)]
    pub body: Option<String>,
}

#[derive(Debug, Args)]
pub struct Create {
    /// The id to give it (default: a UUID the service picks).
    #[arg(long)]
    pub id: Option<String>,
    /// An agent (repeatable; at least one, here or in --body).
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    /// The idempotency key (default: a new one, reused by the client's retries).
    #[arg(long)]
    pub request_id: Option<Uuid>,
    #[command(flatten)]
    pub fields: Fields,
}

#[derive(Debug, Args)]
pub struct Update {
    pub id: String,
    /// The fields to write, comma-separated (default: those given).
    #[arg(long)]
    pub mask: Option<String>,
    /// The conversation's etag (precondition: 409 if stale).
    #[arg(long)]
    pub etag: Option<String>,
    /// The etag as If-Match (precondition: 412 if stale).
    #[arg(long)]
    pub if_match: Option<String>,
    /// Create it if it does not exist.
    #[arg(long)]
    pub allow_missing: bool,
    /// The agents (repeatable).
    #[arg(long = "agent")]
    pub agents: Vec<String>,
    #[command(flatten)]
    pub fields: Fields,
}

#[derive(Debug, Args)]
pub struct List {
    /// An AIP-160 filter, e.g. `lifecycleState = COMPLETED`.
    #[arg(long)]
    pub filter: Option<String>,
    #[arg(long, value_enum, default_value_t = Order::CreatedDesc)]
    pub order_by: Order,
    #[arg(long)]
    pub show_deleted: bool,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Order {
    CreatedDesc,
    CreatedAsc,
    LastUsedDesc,
    LastUsedAsc,
}

impl From<Order> for ConversationOrder {
    fn from(order: Order) -> Self {
        match order {
            Order::CreatedDesc => Self::CreateTimeDesc,
            Order::CreatedAsc => Self::CreateTimeAsc,
            Order::LastUsedDesc => Self::LastUsedTimeDesc,
            Order::LastUsedAsc => Self::LastUsedTimeAsc,
        }
    }
}

#[derive(Debug, Args)]
pub struct Append {
    pub id: String,
    /// USER, AGENT, SYSTEM or TOOL.
    #[arg(long = "type", default_value = "USER")]
    pub kind: MessageType,
    /// The text (`-` reads standard input).
    #[arg(long)]
    pub content: String,
    /// A JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// The tool call a TOOL message answers.
    #[arg(long)]
    pub tool_call_id: Option<String>,
    /// The conversation's etag (precondition).
    #[arg(long)]
    pub etag: Option<String>,
    /// The idempotency key (default: a new one, reused by the client's retries).
    #[arg(long)]
    pub request_id: Option<Uuid>,
}

#[derive(Debug, Args)]
pub struct UpdateMessage {
    pub id: String,
    pub order: u64,
    #[arg(long)]
    pub content: Option<String>,
    /// A JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// The fields to write, comma-separated (default: those given).
    #[arg(long)]
    pub mask: Option<String>,
    /// The message's etag (precondition).
    #[arg(long)]
    pub etag: Option<String>,
}

/// An argument's text, or the file's when it is `@FILE`.
pub fn read_arg(text: &str) -> Result<String, Error> {
    match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("{path}: {e}")))
        }
        None => Ok(text.to_owned()),
    }
}

/// A flag that holds a JSON object.
pub fn json_object(flag: &str, text: Option<&str>) -> Result<Option<JsonObject>, Error> {
    text.map(|t| {
        serde_json::from_str::<JsonObject>(&read_arg(t)?)
            .map_err(|e| Error::Usage(format!("{flag}: not a JSON object: {e}")))
    })
    .transpose()
}
