//! Transcripts in and out as JSON Lines: the conversation on the first line, then its messages
//! in order, each as the API renders it.
//!
//! An import is safe to run again, with any `--chunk`. Its create carries a `requestId` and each
//! batch of messages an idempotency key, all derived from the file's content, the target id and
//! (for a batch) the range of messages it carries, so a rerun (after a kill, a lost connection, a
//! timeout) creates nothing new and goes on from the first message the conversation does not
//! hold: its batches are cut from there, so none straddles what is held, and a batch that lands
//! unseen is answered, not appended twice, when it is sent again with the same range.

use std::io::{BufWriter, Write};
use std::path::Path;

use conversations_client::{
    BatchOptions, Client, Conversation, CreateOptions, Error, ListMessages, Message, MessageInput,
    View,
};
use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A batch's body stays well under the API's 256 KiB.
const CHUNK_BYTES: usize = 192 * 1024;

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} messages ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Usage(format!("{}: {e}", path.display()))
}

/// Writes conversation `id` and every message of it, oldest first.
pub async fn export(client: &Client, id: &str, output: Option<&Path>) -> Result<(), Error> {
    let conversation = client.get_conversation(id, View::Basic).await?;
    let mut sink: Box<dyn Write> = match output {
        Some(path) => Box::new(std::fs::File::create(path).map_err(|e| io_error(path, e))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = BufWriter::new(&mut sink);
    let bar = progress(conversation.message_count.unwrap_or(0), "export");
    let write = |sink: &mut BufWriter<_>, line: String| {
        writeln!(sink, "{line}").map_err(|e| Error::Usage(format!("writing the export: {e}")))
    };
    write(&mut sink, to_line(&conversation)?)?;
    let mut messages = client.list_messages(
        id,
        ListMessages {
            page_size: Some(1000),
            ..ListMessages::default()
        },
    );
    while let Some(message) = messages.try_next().await? {
        write(&mut sink, to_line(&message)?)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    sink.flush()
        .map_err(|e| Error::Usage(format!("writing the export: {e}")))
}

fn to_line(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Usage(e.to_string()))
}

/// An export read back.
struct Transcript {
    conversation: Conversation,
    messages: Vec<MessageInput>,
    digest: [u8; 32],
}

fn read(path: &Path) -> Result<Transcript, Error> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let bad = |n: usize, e: &dyn std::fmt::Display| {
        Error::Usage(format!("{}:{}: {e}", path.display(), n + 1))
    };
    let (n, first) = lines
        .next()
        .ok_or_else(|| Error::Usage(format!("{}: empty", path.display())))?;
    let conversation: Conversation = serde_json::from_str(first).map_err(|e| bad(n, &e))?;
    let mut messages = Vec::new();
    for (n, line) in lines {
        let message: Message = serde_json::from_str(line).map_err(|e| bad(n, &e))?;
        messages.push(
            message
                .to_input()
                .ok_or_else(|| bad(n, &"a message without a type"))?,
        );
    }
    Ok(Transcript {
        conversation,
        messages,
        digest,
    })
}

/// A UUID (version 8, RFC 9562) from the file's digest, the target id and what it keys.
fn key(digest: &[u8; 32], target: &str, what: &str) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(digest);
    hash.update(target.as_bytes());
    hash.update([0]);
    hash.update(what.as_bytes());
    let bytes: [u8; 32] = hash.finalize().into();
    let mut first = [0u8; 16];
    first.copy_from_slice(&bytes[..16]);
    Uuid::new_v8(first)
}

/// The key of the batch that carries `range` of the file's messages: the same range has the same
/// key whatever `--chunk` cut it, and two ranges never share one (the service would answer the
/// second with the first's messages, or 422).
fn batch_key(digest: &[u8; 32], target: &str, range: &std::ops::Range<usize>) -> Uuid {
    key(
        digest,
        target,
        &format!("messages {}..{}", range.start, range.end),
    )
}

/// The batches of an import that starts at message `from` (the first one the conversation does
/// not hold): at most `size` messages and [`CHUNK_BYTES`] each, always the same for the same
/// file, `from` and `size`.
fn chunks(messages: &[MessageInput], from: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (from, 0);
    for (i, m) in messages.iter().enumerate().skip(from) {
        let len = serde_json::to_vec(m).map_or(0, |v| v.len()) + 1;
        if i > start && (i - start == size || bytes + len > CHUNK_BYTES) {
            ranges.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < messages.len() {
        ranges.push(start..messages.len());
    }
    ranges
}

/// How many of the file's messages an earlier run of this import appended to `created`: the
/// highest order it holds (the conversation is this import's, so order n is the file's n-th
/// message). Not `messageCount`, which counts what it holds now: a message deleted or cleared
/// since would make the rerun append the last ones again. One read of the last message, only
/// when it holds any. What was deleted from the end of the copy is appended again (at new
/// orders); a copy whose messages all went shows no order, and the rerun starts again from the
/// file's first message.
async fn held(client: &Client, created: &Conversation) -> Result<u64, Error> {
    let (Some(id), Some(1..)) = (created.id(), created.message_count) else {
        return Ok(0);
    };
    let last = client
        .list_messages_page(id, &ListMessages::last(1), None)
        .await?;
    Ok(last.messages.first().and_then(|m| m.order).unwrap_or(0))
}

/// Creates the conversation of the export at `path` (as `id`, else its own id, else one the
/// service picks) and appends its messages in batches of `chunk`; completes it if the original
/// was completed.
pub async fn import(
    client: &Client,
    path: &Path,
    id: Option<&str>,
    chunk: u16,
) -> Result<Conversation, Error> {
    let transcript = read(path)?;
    // The id: `--id`, else the exported one's; a transcript without a name (written by hand)
    // gets one from the service, and a rerun finds it again through the same requestId.
    let chosen = id.or(transcript.conversation.id()).map(str::to_owned);
    let digest = &transcript.digest;
    let created = client
        .create_conversation(
            &transcript.conversation.to_input(),
            CreateOptions {
                request_id: Some(key(digest, chosen.as_deref().unwrap_or(""), "conversation")),
                conversation_id: chosen,
            },
        )
        .await?;
    let Some(target) = created.id().map(str::to_owned) else {
        return Err(Error::Usage(
            "the service answered a conversation without a name".into(),
        ));
    };
    // The conversation holds the messages of an earlier run of this import (its create answered
    // with the conversation that run made): batches are all or none, so it holds a prefix of
    // the file, and this run sends the rest.
    let total = transcript.messages.len();
    let held = usize::try_from(held(client, &created).await?).map_or(total, |h| h.min(total));
    let bar = progress(total as u64, "import");
    bar.set_position(held as u64);
    for range in chunks(&transcript.messages, held, chunk.into()) {
        let batch = &transcript.messages[range.clone()];
        let key = batch_key(digest, &target, &range);
        let options = BatchOptions {
            request_id: Some(key),
            ..BatchOptions::default()
        };
        client
            .batch_append_messages(&target, batch, options)
            .await?;
        bar.set_position(range.end as u64);
    }
    bar.finish_and_clear();
    if transcript.conversation.is_completed() {
        client.complete_conversation(&target, None).await?;
    }
    client.get_conversation(&target, View::Basic).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use conversations_client::MessageType;

    #[test]
    fn batches_hold_at_most_the_chunk_size_and_cover_every_message_once() {
        let messages: Vec<_> = (0..123)
            .map(|i| MessageInput::new(MessageType::User, format!("m{i}")))
            .collect();
        assert_eq!(chunks(&messages, 0, 50), vec![0..50, 50..100, 100..123]);
    }

    #[test]
    fn a_resumed_import_cuts_its_batches_from_the_first_message_not_held() {
        let messages: Vec<_> = (0..60)
            .map(|i| MessageInput::new(MessageType::User, format!("m{i}")))
            .collect();
        // A first run with --chunk 7 left 28 messages; a rerun with 5 or 10 straddles nothing.
        assert_eq!(
            chunks(&messages, 28, 10),
            vec![28..38, 38..48, 48..58, 58..60]
        );
        assert_eq!(chunks(&messages, 28, 5)[0], 28..33);
        assert_eq!(chunks(&messages, 60, 5), vec![]);
    }

    #[test]
    fn large_messages_make_smaller_batches() {
        let messages: Vec<_> = (0..10)
            .map(|_| MessageInput::new(MessageType::User, "x".repeat(60 * 1024)))
            .collect();
        let ranges = chunks(&messages, 0, 50);
        assert!(ranges.iter().all(|r| r.len() <= 3), "{ranges:?}");
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 10);
    }

    #[test]
    fn keys_depend_on_the_file_the_target_and_the_range_only() {
        let a = batch_key(&[1; 32], "conv", &(0..5));
        assert_eq!(a, batch_key(&[1; 32], "conv", &(0..5)));
        assert_ne!(a, batch_key(&[2; 32], "conv", &(0..5)));
        assert_ne!(a, batch_key(&[1; 32], "other", &(0..5)));
        assert_ne!(
            a,
            batch_key(&[1; 32], "conv", &(0..10)),
            "another chunk size"
        );
        assert_ne!(a, batch_key(&[1; 32], "conv", &(5..10)));
        assert_ne!(a, key(&[1; 32], "conv", "conversation"));
        assert_eq!(a.get_version_num(), 8);
    }
}
