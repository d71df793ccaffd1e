//! Page tokens: any text is a token of this caller and query or a 400; a token issued for one
//! owner never decodes for another.
#![no_main]

use conversations::domain::ids::Owner;
use conversations::domain::page_token::{PageToken, TokenKey};
use conversations_fuzz::{client_error, text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = TokenKey::new("fuzz");
    let (alice, bob) = match (Owner::from_header("alice"), Owner::from_header("bob")) {
        (Some(alice), Some(bob)) => (alice, bob),
        _ => unreachable!("valid owners"),
    };
    let text = text(data);
    client_error(PageToken::decode(&text, &key, &alice, "scope"));
    if text.len() > 512 {
        return; // Positions are sort keys, far shorter; longer tokens are refused as such.
    }
    let token = PageToken {
        position: text.clone(),
    }
    .encode(&key, &alice, "scope");
    let back = PageToken::decode(&token, &key, &alice, "scope");
    assert_eq!(back.map(|t| t.position).ok(), Some(text), "round trip");
    assert!(
        PageToken::decode(&token, &key, &bob, "scope").is_err(),
        "foreign owner"
    );
});
