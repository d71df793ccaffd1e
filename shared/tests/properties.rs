//! Property tests of everything that parses client input: whatever the bytes, a parser answers
//! (never panics) and a rejection is a 4xx; what the documented grammar allows parses; a page
//! token works only for the caller, the query and the key it was issued with.

use conversations::domain::body;
use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::domain::conversation::View;
use conversations::domain::etag::{Etag, IfMatch, Version};
use conversations::domain::field_mask::{Fields, UpdateMask};
use conversations::domain::filter::{Filter, OrderBy};
use conversations::domain::ids::{ConversationId, Owner, RequestId};
use conversations::domain::message::{Message, NewBatch, NewMessage, parse_order};
use conversations::domain::message_query::{MessageFilter, MessageOrder};
use conversations::domain::message_update::MessageUpdate;
use conversations::domain::page_token::{PageToken, TokenKey};
use conversations::domain::time::Timestamp;
use proptest::prelude::*;

/// Text a client could send: arbitrary Unicode, and strings built from the parsers' own
/// vocabulary, which reach deeper into them than random characters do.
fn client_text() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "labels.",
        "agents",
        "displayName",
        "lifecycleState",
        "createTime",
        "=",
        ">=",
        "<",
        ":",
        " AND ",
        " OR ",
        "\"",
        "\\",
        "*",
        ",",
        " ",
        "COMPLETED",
        "\"2026-01-01T00:00:00Z\"",
        "desc",
        "asc",
        "(",
        ")",
        "-",
        "NOT ",
        "\u{0}",
        "é",
        "W/",
        "\"abc\"",
        "order",
        "type = AGENT",
        "9999999999",
        "-1",
        "content",
        "metadata.",
        "toolCalls",
        "toolCallId",
        "qualityMetadata.",
        "data_source.gcs_source.audio_uri",
        "dataSource.",
        "dialogflowSource.",
        "phoneNumber.",
        "_",
        ".",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(words, 0..12).prop_map(|w| w.concat()),
    ]
}

fn assert_client_error<T>(result: Result<T, conversations::ApiError>) {
    if let Err(e) = result {
        assert!((400..500).contains(&e.status()), "{e} is {}", e.status());
        assert!(!e.to_string().is_empty());
    }
}

/// JSON a client could send as a message, a batch or an edit: the fields' own names with values
/// of every JSON type, nested.
fn message_json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "USER", "AGENT", "TOOL", "SYSTEM", "", "c1", "a b", "\u{0}"
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    let keys = prop::sample::select(vec![
        "type",
        "content",
        "toolCalls",
        "toolCallId",
        "metadata",
        "etag",
        "id",
        "name",
        "arguments",
        "messages",
        "order",
        "x",
    ]);
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// A stored message to edit.
fn stored(body: serde_json::Value) -> Message {
    let new = NewMessage::from_json(body.as_object().expect("an object")).expect("valid");
    let id = ConversationId::parse("c").expect("an id");
    Message::appended(id, 3, &new, Timestamp::now())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_parsed_mask_never_holds_two_paths_of_which_one_holds_the_other(
        paths in prop::collection::vec(prop::sample::select(vec![
            "metadata", "metadata.a", "metadata.b", "labels", "labels.a", "dataSource",
            "data_source.gcs_source", "dataSource.gcsSource.audioUri", "dataSource.dialogflowSource",
            "dataSource.dialogflowSource.audioUri", "qualityMetadata", "quality_metadata.menu_path",
            "callMetadata.agentChannel", "phoneNumber", "phoneNumber.countryCode", "displayName",
            "display_name", "createTime",
        ]), 1..8),
    ) {
        match UpdateMask::parse(&paths.join(",")) {
            Ok(UpdateMask::Paths(parsed)) => {
                for (i, a) in parsed.iter().enumerate() {
                    for b in &parsed[i + 1..] {
                        let (a, b) = (a.segments(), b.segments());
                        let n = a.len().min(b.len());
                        prop_assert!(a[..n] != b[..n], "{:?} and {:?} overlap", a, b);
                    }
                }
            }
            Ok(UpdateMask::All) => prop_assert!(false, "no * was given"),
            Err(e) => prop_assert_eq!(e.status(), 400),
        }
    }

    #[test]
    fn every_message_decoder_answers_any_json_with_a_value_or_a_4xx(
        value in message_json(),
        mask in prop::option::of(client_text()),
    ) {
        let Some(map) = value.as_object() else { return Ok(()); };
        assert_client_error(NewMessage::from_json(map));
        assert_client_error(NewBatch::from_json(map));
        let wrapped = serde_json::json!({"messages": [value.clone(), value.clone()]});
        assert_client_error(NewBatch::from_json(wrapped.as_object().expect("an object")));
        if let Ok(update) = MessageUpdate::new(map, mask.as_deref()) {
            for old in [
                stored(serde_json::json!({"type": "USER", "content": "u"})),
                stored(serde_json::json!({"type": "AGENT", "toolCalls": [{"id": "c", "name": "t"}]})),
                stored(serde_json::json!({"type": "TOOL", "toolCallId": "c", "content": "r"})),
            ] {
                assert_client_error(update.apply(&old));
            }
        }
    }

    #[test]
    fn every_parser_answers_any_text_with_a_value_or_a_4xx(text in client_text()) {
        assert_client_error(UpdateMask::parse(&text));
        assert_client_error(Fields::parse(Some(&text), &OUTPUT_FIELDS));
        assert_client_error(Filter::parse(&text));
        assert_client_error(OrderBy::parse(&text));
        assert_client_error(MessageFilter::parse(&text));
        assert_client_error(MessageOrder::parse(&text));
        assert_client_error(View::parse(Some(&text)));
        if let Some(order) = parse_order(&text) {
            prop_assert!(order >= 1 && text.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_client_error(ConversationId::parse(&text));
        assert_client_error(RequestId::parse(&text));
        assert_client_error(RequestId::of_call(None, Some(&text)));
        assert_client_error(RequestId::of_call(Some(&text), Some(&text)));
        assert_client_error(MessageUpdate::new(&serde_json::Map::new(), Some(&text)));
        assert_client_error(IfMatch::parse(&text));
        let key = TokenKey::new("k");
        let owner = Owner::from_header("alice").expect("owner");
        assert_client_error(PageToken::decode(&text, &key, &owner, "scope"));
    }

    #[test]
    fn no_etag_a_client_sends_makes_the_next_version_overflow(
        hex in "[0-9a-f]{1,16}",
        quoted in any::<bool>(),
    ) {
        let text = if quoted { format!("\"{hex}\"") } else { hex };
        let now = Timestamp::now();
        for tag in [Etag::parse(&text)]
            .into_iter()
            .chain(match IfMatch::parse(&format!("\"{}\"", text.trim_matches('"'))) {
                Ok(IfMatch::Tags(tags)) => tags,
                _ => Vec::new(),
            })
        {
            if let Etag::Version(v) = tag {
                prop_assert!(Version::next(now, Some(v)) > v);
            }
        }
    }

    #[test]
    fn any_body_is_an_object_or_a_400(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = body::object(&bytes) {
            prop_assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn ids_of_the_documented_form_parse(id in "[a-z]([a-z0-9-]{0,61}[a-z0-9])?") {
        let parsed = ConversationId::parse(&id).expect("valid");
        prop_assert_eq!(parsed.as_str(), id.as_str());
    }

    #[test]
    fn order_ranges_are_parsed_into_the_orders_they_name(lo in -20i64..20, hi in -20i64..20) {
        let f = MessageFilter::parse(&format!("order >= {lo} AND order <= {hi}")).expect("valid");
        let expected: Vec<u64> = (lo.max(1)..=hi).map(|o| o as u64).collect();
        let named: Vec<u64> = if f.is_empty() { Vec::new() } else { (f.from..=f.to).collect() };
        prop_assert_eq!(named, expected);
    }

    #[test]
    fn supported_filters_parse(
        state in prop::sample::select(vec!["IN_PROGRESS", "COMPLETED"]),
        key in "[a-z][a-z0-9_-]{0,20}",
        value in "[ -~]{0,30}",
    ) {
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        let text = format!("lifecycleState = {state} AND labels.{key} = \"{quoted}\"");
        prop_assert!(Filter::parse(&text).is_ok(), "{}", text);
    }

    #[test]
    fn a_page_token_works_only_for_its_caller_query_and_key(
        position in "[ -~]{1,80}",
        scope in "[a-z|]{1,20}",
        flip in any::<prop::sample::Index>(),
    ) {
        let key = TokenKey::new("secret");
        let alice = Owner::from_header("alice").expect("owner");
        let bob = Owner::from_header("bob").expect("owner");
        let token = PageToken { position: position.clone() }.encode(&key, &alice, &scope);
        let back = PageToken::decode(&token, &key, &alice, &scope).expect("round trip");
        prop_assert_eq!(back.position, position);
        let foreign = PageToken::decode(&token, &key, &bob, &scope);
        prop_assert_eq!(foreign.expect_err("another owner").status(), 400);
        let other_query = PageToken::decode(&token, &key, &alice, &format!("{scope}x"));
        prop_assert_eq!(other_query.expect_err("another query").status(), 400);
        let other_key = PageToken::decode(&token, &TokenKey::new("other"), &alice, &scope);
        prop_assert_eq!(other_key.expect_err("another key").status(), 400);
        // One character changed: the token no longer authenticates.
        let mut chars: Vec<char> = token.chars().collect();
        let i = flip.index(chars.len());
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        prop_assert!(PageToken::decode(&tampered, &key, &alice, &scope).is_err());
    }
}

#[test]
fn hostile_bodies_are_400_or_one_object_never_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_objects = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let huge_number = format!("{{\"n\": 1{}}}", "0".repeat(100_000));
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        deep_objects.into_bytes(),
        b"{\"a\": \"\\u0000\"}".to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        b"{\"a\": 1, \"a\": 2}".to_vec(),
        huge_number.into_bytes(),
        b"{\"a\": \"\xed\xa0\x80\"}".to_vec(),
        b"{\"a\": \"\\ud800\"}".to_vec(),
    ];
    for bytes in cases {
        match body::object(&bytes) {
            Ok(map) => assert!(map.len() <= 1),
            Err(e) => assert_eq!(e.status(), 400, "{e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// X-On-Behalf-Of: any header text is the pair (when it has the contract's form) or a 400,
    /// and no pair ever shares a key with a caller or with another pair.
    #[test]
    fn a_user_header_is_a_pair_with_its_own_key_or_a_400(
        caller in "[ -~]{1,40}",
        user in "[ -~]{0,130}",
        other in "[A-Za-z0-9._@:-]{1,20}",
    ) {
        use conversations::domain::delegation::acting_for;
        let valid = (1..=128).contains(&user.len())
            && user.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b));
        let me = Owner::from_claim(&caller).expect("a caller");
        match acting_for(me.clone(), &[user.as_bytes()]) {
            Ok(pair) => {
                prop_assert!(valid);
                prop_assert_eq!(pair.as_str(), format!("{caller}/{user}"));
                prop_assert_ne!(pair.key(), me.key());
                // The caller whose sub reads like the pair keeps another key.
                let lookalike = Owner::from_claim(&format!("{caller}/{user}")).expect("a caller");
                prop_assert_ne!(pair.key(), lookalike.key());
                let sibling = acting_for(me.clone(), &[other.as_bytes()]).expect("a pair");
                prop_assert_eq!(sibling.key() == pair.key(), other == user);
            }
            Err(e) => {
                prop_assert!(!valid);
                prop_assert_eq!(e.status(), 400);
            }
        }
    }

    /// The scopes of a claim: every space-separated scope-token (RFC 6749's characters, commas
    /// and quotes' neighbours included) is found, whether the claim is OAuth's string or a list an
    /// HTTP API rendered as `[a b]`; and a token that merely contains the delegation scope's text
    /// (`x,conversations/act-as`) is never read as it.
    #[test]
    fn every_scope_of_a_claim_is_read_in_each_rendering_and_nothing_more(
        scopes in prop::collection::vec("[!#-Z^-~]{1,20}", 0..6),
        prefix in "[!#-Z^-~]{0,5}",
        separator in "[,;|\"]",
    ) {
        use conversations::domain::delegation::{rendered_scope_words, scope_words};
        let wanted: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let joined = scopes.join(" ");
        let string: Vec<&str> = scope_words(&joined).collect();
        prop_assert_eq!(&string, &wanted);
        let rendered = format!("[{}]", scopes.join(" "));
        let listed: Vec<&str> = rendered_scope_words(&rendered).collect();
        prop_assert_eq!(&listed, &wanted);
        let lookalike = format!("{prefix}{separator}conversations/act-as");
        prop_assert!(scope_words(&lookalike).all(|s| s != "conversations/act-as"));
        prop_assert!(rendered_scope_words(&lookalike).all(|s| s != "conversations/act-as"));
    }
}
