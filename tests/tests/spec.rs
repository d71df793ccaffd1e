//! `openapi.yaml` and the code agree on the fields of Conversation and Message, so a field added
//! to one cannot be forgotten in the other.

use std::collections::BTreeSet;

use conversations::domain::conversation::{self, NewConversation, Writable};
use conversations::domain::ids::{ConversationId, Owner};
use conversations::domain::message;
use conversations::domain::time::Timestamp;
use serde_yaml_ng::Value;

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("openapi.yaml"))
        .expect("valid YAML")
}

/// The property names of a component schema, and those of them marked `writeOnly`.
fn properties(spec: &Value, schema: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let props = spec["components"]["schemas"][schema]["properties"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{schema} has properties"));
    let mut all = BTreeSet::new();
    let mut write_only = BTreeSet::new();
    for (name, body) in props {
        let name = name.as_str().expect("a name").to_owned();
        if body["writeOnly"].as_bool() == Some(true) {
            write_only.insert(name.clone());
        }
        all.insert(name);
    }
    (all, write_only)
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn the_spec_and_a_fully_populated_conversation_have_the_same_fields() {
    let (spec_fields, write_only) = properties(&spec(), "Conversation");
    assert_eq!(
        spec_fields,
        set(&conversation::OUTPUT_FIELDS),
        "the spec's Conversation vs OUTPUT_FIELDS"
    );
    let now = Timestamp::now();
    let body = serde_json::json!({"displayName": "d", "category": "c", "agents": ["a"], "conversationProfile": "p",
        "languageCode": "en", "labels": {"k": "v"}, "metadata": {"m": 1}, "ttl": "60s"});
    let writable = Writable::from_json(body.as_object().expect("object"), now).expect("valid");
    let mut full = NewConversation::try_from(writable)
        .expect("new")
        .into_conversation(
            ConversationId::parse("abc").expect("id"),
            Owner::from_header("alice").expect("owner"),
            None,
            now,
        );
    full.end_time = Some(now);
    full.delete_time = Some(now);
    full.purge_time = Some(now);
    let rendered: BTreeSet<String> = full.to_json().keys().cloned().collect();
    let readable: BTreeSet<String> = spec_fields.difference(&write_only).cloned().collect();
    assert_eq!(
        rendered, readable,
        "a rendered conversation vs the spec's readable fields"
    );
}

#[test]
fn the_spec_and_a_fully_populated_message_have_the_same_fields() {
    let (spec_fields, _) = properties(&spec(), "Message");
    assert_eq!(spec_fields, set(&message::OUTPUT_FIELDS));
    let full = message::Message {
        conversation: ConversationId::parse("abc").expect("id"),
        order: 1,
        kind: message::MessageType::User,
        content: "x".into(),
        metadata: Some(serde_json::Map::new()),
        create_time: Timestamp::now(),
    };
    let rendered: BTreeSet<String> = full.to_json().keys().cloned().collect();
    assert_eq!(rendered, spec_fields);
}

#[test]
fn the_spec_accepts_every_writable_field_in_request_bodies() {
    let spec = spec();
    let (input, _) = properties(&spec, "ConversationInput");
    for field in conversation::WRITABLE_FIELDS {
        assert!(input.contains(field), "ConversationInput lacks {field}");
    }
    let (message_input, _) = properties(&spec, "MessageInput");
    for field in ["type", "content", "metadata", "etag"] {
        assert!(message_input.contains(field), "MessageInput lacks {field}");
    }
}
