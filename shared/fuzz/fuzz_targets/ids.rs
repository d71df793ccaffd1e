//! Ids, request ids, owners and `X-On-Behalf-Of` users, the scopes of a `scope` claim, etags
//! and `If-Match` headers, and the version a write after such an etag would store (it must not
//! overflow, whatever the client sent).
#![no_main]

use conversations::domain::delegation;
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
    // X-On-Behalf-Of as raw header bytes, once and split in two values: a pair whose key holds
    // exactly one unescaped `/` (the caller's are escaped), or a 400.
    let caller = Owner::from_claim("svc/1%").expect("a caller");
    if let Some(pair) = client_error(delegation::acting_for(caller.clone(), &[data])) {
        assert_eq!(pair.user(), Some(text.as_str()));
        assert_eq!(pair.key(), format!("svc%2F1%25/{text}"));
        assert_ne!(pair.key(), caller.key());
    }
    let (head, rest) = data.split_at(data.len() / 2);
    assert!(delegation::acting_for(caller, &[head, rest]).is_err());
    // Scopes are split on spaces and nothing else (RFC 6749): each is a non-empty run of
    // the text, and the rendered-list reading only ever drops the brackets around it.
    for scope in delegation::scope_words(&text) {
        assert!(!scope.is_empty() && !scope.contains(' '));
        assert!(text.contains(scope));
    }
    for scope in delegation::rendered_scope_words(&text) {
        assert!(!scope.is_empty() && !scope.contains(' '));
        assert!(text.contains(scope));
    }
});
