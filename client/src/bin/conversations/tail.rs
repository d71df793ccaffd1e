//! `tail ID [--follow]`: the latest messages, then (following) each new one as it is appended —
//! a poll of `order > last seen` every interval — until the conversation completes, is deleted,
//! or Ctrl-C.

use std::time::Duration;

use conversations_client::{Client, Error, ListMessages, Message, View};
use futures_util::TryStreamExt;

use crate::output::Out;

pub async fn run(
    client: &Client,
    out: &Out,
    id: &str,
    last: u32,
    follow: bool,
    interval_ms: u64,
) -> Result<(), Error> {
    let mut latest: Vec<Message> = client
        .list_messages_page(id, &ListMessages::last(last.clamp(1, 1000)), None)
        .await?
        .messages;
    latest.reverse();
    out.messages(&latest);
    if !follow {
        return Ok(());
    }
    let mut seen = latest.last().and_then(|m| m.order).unwrap_or(0);
    let interval = Duration::from_millis(interval_ms.max(50));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        // Whether the conversation had ended before this poll: then this poll's messages are
        // the last ones.
        let ended = match client.get_conversation(id, View::Basic).await {
            Ok(c) => c.is_completed() || c.deleted == Some(true),
            Err(e) if e.is_not_found() => true,
            Err(e) => return Err(e),
        };
        let new: Vec<Message> = client
            .list_messages(id, ListMessages::after(seen))
            .try_collect()
            .await
            .or_else(|e| {
                if e.is_not_found() {
                    Ok(Vec::new())
                } else {
                    Err(e)
                }
            })?;
        if let Some(order) = new.last().and_then(|m| m.order) {
            seen = order;
        }
        out.messages(&new);
        if ended {
            return Ok(());
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}
