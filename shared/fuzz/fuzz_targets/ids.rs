//! Ids, request ids, owners, etags and `If-Match` headers, and the version a write after such
//! an etag would store (it must not overflow, whatever the client sent).
#![no_main]

use conversations::domain::etag::{Etag, IfMatch, Version};
use conversations::domain::ids::{ConversationId, Owner, RequestId};
use conversations::domain::time::Timestamp;
use conversations_fuzz::{client_error, text};

fn next_after(tag: Etag) {
    if let Etag::Version(v) = tag {
        let next = Version::next(Timestamp::now(), Some(v));
        assert!(next >= v, "versions never go back");
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = text(data);
    if let Some(id) = client_error(ConversationId::parse(&text)) {
        assert_eq!(id.as_str(), text, "a valid id is kept as sent");
    }
    client_error(RequestId::parse(&text));
    if let Some(IfMatch::Tags(tags)) = client_error(IfMatch::parse(&text)) {
        tags.into_iter().for_each(next_after);
    }
    next_after(Etag::parse(&text));
    let _ = Owner::from_header(&text);
});
