//! Ids, request ids, owners and `If-Match` headers.
#![no_main]

use conversations::domain::etag::IfMatch;
use conversations::domain::ids::{ConversationId, Owner, RequestId};
use conversations_fuzz::{client_error, text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = text(data);
    if let Some(id) = client_error(ConversationId::parse(&text)) {
        assert_eq!(id.as_str(), text, "a valid id is kept as sent");
    }
    client_error(RequestId::parse(&text));
    client_error(IfMatch::parse(&text));
    let _ = Owner::from_header(&text);
});
