//! What every fuzz target checks: a parser answers any input with a value or a client error
//! (4xx with a message), never a panic and never a server error.

use conversations::ApiError;
use conversations::domain::body;
use conversations::domain::conversation::{NewConversation, Writable};
use conversations::domain::field_mask::{Update, UpdateMask};
use conversations::domain::ids::ConversationId;
use conversations::domain::message::{Message, NewBatch, NewMessage};
use conversations::domain::message_update::MessageUpdate;
use conversations::domain::time::Timestamp;

/// Asserts that a rejection is a 4xx that says why.
pub fn client_error<T>(result: Result<T, ApiError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            assert!((400..500).contains(&e.status()), "{e} is {}", e.status());
            assert!(!e.to_string().is_empty(), "a rejection says why");
            None
        }
    }
}

/// Text as a query parameter or header carries it: the fuzzer's bytes, lossily UTF-8.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A request body through every decoder a method puts it through: create, PATCH (with its
/// implied mask, or with `mask` when given), append, batch append, and update message (with
/// the same mask) applied to a stored message of each kind.
pub fn body(bytes: &[u8], mask: Option<&str>) {
    let Some(map) = client_error(body::object(bytes)) else {
        return;
    };
    if let Some(writable) =
        client_error(Writable::from_json(&map, Timestamp::now(), mask.is_none()))
    {
        let mask = match mask {
            Some(text) => client_error(UpdateMask::parse(text)),
            None => Some(UpdateMask::from_body(&writable)),
        };
        if let Some(mask) = mask {
            client_error(Update::new(&mask, &writable));
        }
        client_error(NewConversation::try_from(writable));
    }
    client_error(NewMessage::from_json(&map));
    client_error(NewBatch::from_json(&map));
    if let Some(update) = client_error(MessageUpdate::new(&map, mask)) {
        for stored in stored_messages() {
            client_error(update.apply(&stored));
        }
    }
}

/// A stored message of each kind, as update message finds them.
fn stored_messages() -> Vec<Message> {
    let bodies = [
        serde_json::json!({"type": "USER", "content": "u", "metadata": {"a": 1}}),
        serde_json::json!({"type": "AGENT", "toolCalls": [{"id": "c", "name": "t"}]}),
        serde_json::json!({"type": "TOOL", "toolCallId": "c", "content": "r"}),
    ];
    let now = Timestamp::now();
    bodies
        .iter()
        .filter_map(|b| b.as_object().and_then(|m| NewMessage::from_json(m).ok()))
        .map(|new| {
            let id = ConversationId::parse("fuzz").expect("a valid id");
            Message::appended(id, 1, &new, now)
        })
        .collect()
}
