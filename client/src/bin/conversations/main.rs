//! `conversations`: the Conversations API from a shell. Every method as a subcommand, `--json`
//! for scripts, `tail --follow`, and transcripts exported to and imported from JSON Lines.
//!
//! Configuration: `CONVERSATIONS_URL` (default `http://127.0.0.1:9000`, what `make dev` serves),
//! `CONVERSATIONS_TOKEN` (a bearer token, for a deployed stack) or `--owner` / `CONVERSATIONS_OWNER`
//! (`X-Owner-Id`, for a local stack). An error prints one line (its code, its fields, the
//! request id) and exits with status 1; a usage error exits with 2.

mod args;
mod output;
mod tail;
mod transfer;

use std::process::ExitCode;

use clap::Parser;
use conversations_client::{
    ClearOptions, Client, ConversationInput, CreateOptions, DeleteMessageOptions, DeleteOptions,
    Error, ListConversations, ListMessages, MessageInput, MessagePatch, PurgeOptions,
    UpdateOptions, View,
};
use futures_util::{StreamExt, TryStreamExt};

use args::{Cli, Command};
use output::Out;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let hint = if e.code() == Some(&conversations_client::Code::Unauthenticated) {
                " (set CONVERSATIONS_TOKEN, or --owner / CONVERSATIONS_OWNER for a local stack)"
            } else {
                ""
            };
            eprintln!("conversations: {e}{hint}");
            ExitCode::FAILURE
        }
    }
}

fn client(cli: &Cli) -> Result<Client, Error> {
    let mut builder = Client::builder(&cli.url);
    if let Some(token) = &cli.token {
        builder = builder.bearer(token);
    } else if let Some(owner) = &cli.owner {
        builder = builder.owner(owner);
    }
    if let Some(user) = &cli.on_behalf_of {
        builder = builder.on_behalf_of(user);
    }
    builder.build()
}

async fn run(cli: Cli) -> Result<(), Error> {
    let client = client(&cli)?;
    let out = Out { json: cli.json };
    match cli.command {
        Command::Create(a) => {
            let input = a.fields.input(a.agents)?;
            let options = CreateOptions {
                conversation_id: a.id,
                request_id: a.request_id,
            };
            out.conversation(&client.create_conversation(&input, options).await?);
        }
        Command::Get { id, full } => {
            let view = if full { View::Full } else { View::Basic };
            out.conversation(&client.get_conversation(&id, view).await?);
        }
        Command::List(a) => {
            let params = ListConversations {
                filter: a.filter,
                order_by: a.order_by.into(),
                show_deleted: a.show_deleted,
                page_size: Some(a.limit.clamp(1, 1000)),
            };
            let stream = client.list_conversations(params);
            let found: Vec<_> = stream.take(a.limit as usize).try_collect().await?;
            out.conversations(&found);
        }
        Command::Update(a) => {
            let mut input = a.fields.input(a.agents)?;
            input.etag = a.etag;
            let options = UpdateOptions {
                update_mask: a.mask.map(|m| m.split(',').map(str::to_owned).collect()),
                allow_missing: a.allow_missing,
                if_match: a.if_match,
            };
            out.conversation(&client.update_conversation(&a.id, &input, options).await?);
        }
        Command::Delete {
            id,
            etag,
            allow_missing,
        } => {
            let options = DeleteOptions {
                etag,
                allow_missing,
            };
            out.conversation(&client.delete_conversation(&id, options).await?);
        }
        Command::Undelete { id, etag } => {
            out.conversation(&client.undelete_conversation(&id, etag.as_deref()).await?);
        }
        Command::Complete { id, etag } => {
            out.conversation(&client.complete_conversation(&id, etag.as_deref()).await?);
        }
        Command::Append(a) => {
            let content = if a.content == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Error::Usage(format!("reading standard input: {e}")))?
            } else {
                a.content
            };
            let mut message = MessageInput::new(a.kind, content);
            message.metadata = args::json_object("--metadata", a.metadata.as_deref())?;
            message.tool_call_id = a.tool_call_id;
            message.etag = a.etag;
            let appended = client.append_message(&a.id, &message, a.request_id).await?;
            out.message(&appended.message);
        }
        Command::GetMessage { id, order } => {
            out.message(&client.get_message(&id, order).await?);
        }
        Command::UpdateMessage(a) => {
            let patch = MessagePatch {
                content: a.content,
                tool_calls: None,
                metadata: args::json_object("--metadata", a.metadata.as_deref())?,
                etag: a.etag,
            };
            let mask: Option<Vec<&str>> = a.mask.as_deref().map(|m| m.split(',').collect());
            let updated = client
                .update_message(&a.id, a.order, &patch, mask.as_deref(), None)
                .await?;
            out.message(&updated);
        }
        Command::DeleteMessage { id, order, etag } => {
            let options = DeleteMessageOptions {
                etag,
                if_match: None,
            };
            out.message(&client.delete_message(&id, order, options).await?);
        }
        Command::Clear {
            id,
            through,
            keep_last,
            etag,
        } => {
            let through = match keep_last {
                // --keep-last 0: every message, as without an order.
                None | Some(0) => through,
                Some(n) => match before_last(&client, &id, n).await? {
                    Some(through) => Some(through),
                    // Nothing before the last N: nothing to clear.
                    None => {
                        out.conversation(&client.get_conversation(&id, View::Basic).await?);
                        return Ok(());
                    }
                },
            };
            let options = ClearOptions {
                through_order: through,
                etag,
                if_match: None,
            };
            out.conversation(&client.clear_messages(&id, options).await?);
        }
        Command::Purge {
            id,
            allow_missing,
            etag,
        } => {
            let options = PurgeOptions {
                etag,
                if_match: None,
                allow_missing,
            };
            client.purge_conversation(&id, options).await?;
            out.purged(&id);
        }
        Command::Messages {
            id,
            last,
            after,
            kind,
        } => {
            let messages = messages(&client, &id, last, after, kind).await?;
            out.messages(&messages);
        }
        Command::Tail {
            id,
            follow,
            last,
            interval_ms,
        } => tail::run(&client, &out, &id, last, follow, interval_ms).await?,
        Command::Export { id, output } => {
            transfer::export(&client, &id, output.as_deref()).await?;
        }
        Command::Import { file, id, chunk } => {
            let imported = transfer::import(&client, &file, id.as_deref(), chunk).await?;
            out.conversation(&imported);
        }
    }
    Ok(())
}

/// The messages that `messages` prints, oldest first: the last `last`, or those after
/// `after`, or all.
async fn messages(
    client: &Client,
    id: &str,
    last: Option<u32>,
    after: Option<u64>,
    kind: Option<conversations_client::MessageType>,
) -> Result<Vec<conversations_client::Message>, Error> {
    let type_term = kind.map(|k| format!("type = {}", k.as_str()));
    let mut params = match (last, after) {
        (Some(n), _) => ListMessages::last(n.clamp(1, 1000)),
        (None, Some(order)) => ListMessages::after(order),
        (None, None) => ListMessages::default(),
    };
    if let (Some(n), Some(order)) = (last, after) {
        params.filter = Some(format!("order > {order}"));
        params.page_size = Some(n.clamp(1, 1000));
    }
    params.filter = match (params.filter.take(), type_term) {
        (Some(a), Some(b)) => Some(format!("{a} AND {b}")),
        (a, b) => a.or(b),
    };
    let stream = client.list_messages(id, params);
    let mut found: Vec<_> = match last {
        Some(n) => stream.take(n as usize).try_collect().await?,
        None => stream.try_collect().await?,
    };
    found.sort_by_key(|m| m.order);
    Ok(found)
}

/// The order to clear through to keep the last `keep` (1–999) messages: that of the newest
/// message before them, or `None` when the conversation holds no more than `keep`. One request:
/// the last `keep + 1` messages, newest first. A message appended meanwhile has a higher order,
/// and is kept too.
async fn before_last(client: &Client, id: &str, keep: u32) -> Result<Option<u64>, Error> {
    let page = client
        .list_messages_page(id, &ListMessages::last(keep + 1), None)
        .await?;
    Ok(page.messages.get(keep as usize).and_then(|m| m.order))
}

impl args::Fields {
    /// The body that the flags make (`--body` first, then each flag over it).
    fn input(self, agents: Vec<String>) -> Result<ConversationInput, Error> {
        let mut input: ConversationInput = match self.body.as_deref() {
            Some(text) => serde_json::from_str(&args::read_arg(text)?)
                .map_err(|e| Error::Usage(format!("--body: {e}")))?,
            None => ConversationInput::default(),
        };
        if !agents.is_empty() {
            input.agents = Some(agents);
        }
        input.display_name = self.display_name.or(input.display_name);
        input.category = self.category.or(input.category);
        input.language_code = self.language_code.or(input.language_code);
        input.ttl = self.ttl.or(input.ttl);
        if !self.labels.is_empty() {
            let labels = input.labels.get_or_insert_with(Default::default);
            for pair in self.labels {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| Error::Usage(format!("--label {pair:?}: expected key=value")))?;
                labels.insert(key.to_owned(), value.to_owned());
            }
        }
        if let Some(metadata) = args::json_object("--metadata", self.metadata.as_deref())? {
            input.metadata = Some(metadata);
        }
        Ok(input)
    }
}
