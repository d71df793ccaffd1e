//! The client's types and `openapi.yaml` agree: every schema the client reads or writes has the
//! same properties as the Rust type that stands for it (a fully populated value, serialised),
//! the enums have the same values, and every error code the spec declares is a [`Code`] of the
//! client — so a field added to the API cannot be forgotten here (tests/tests/spec.rs does the
//! same for the server).

use std::collections::BTreeSet;

use conversations_client::error::Code;
use conversations_client::*;
use serde::Serialize;
use serde_json::json;
use serde_yaml_ng::Value;

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("openapi.yaml"))
        .expect("valid YAML")
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    let s = &spec["components"]["schemas"][name];
    assert!(!s.is_null(), "openapi.yaml has no schema {name}");
    s
}

/// The property names of `schema`, without those marked `readOnly` when `input` (a request
/// body's output-only fields are ignored by the service, so a client does not send them).
fn properties(schema: &Value, input: bool) -> BTreeSet<String> {
    schema["properties"]
        .as_mapping()
        .expect("properties")
        .iter()
        .filter(|(_, body)| !(input && body["readOnly"].as_bool() == Some(true)))
        .map(|(name, _)| name.as_str().expect("a name").to_owned())
        .collect()
}

fn keys(value: &impl Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .expect("serialises")
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

fn object() -> JsonObject {
    json!({"k": 1}).as_object().cloned().expect("object")
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn message() -> Message {
    Message {
        name: s("conversations/c/messages/1"),
        order: Some(1),
        kind: Some(MessageType::Agent),
        content: s("c"),
        tool_calls: Some(vec![tool_call()]),
        tool_call_id: s("t"),
        metadata: Some(object()),
        create_time: s("t"),
        update_time: s("t"),
        etag: s("\"e\""),
    }
}

fn tool_call() -> ToolCall {
    ToolCall {
        id: "a".into(),
        name: "n".into(),
        arguments: object(),
    }
}

fn input() -> ConversationInput {
    ConversationInput {
        display_name: s("d"),
        category: s("c"),
        agents: Some(vec!["a".into()]),
        conversation_profile: s("p"),
        language_code: s("en"),
        labels: Some([("k".to_owned(), "v".to_owned())].into()),
        metadata: Some(object()),
        conversation_stage: Some(ConversationStage::HumanAssistStage),
        quality_metadata: Some(QualityMetadata {
            customer_satisfaction_rating: Some(5),
            wait_duration: s("1s"),
            menu_path: s("m"),
            agent_info: Some(vec![agent_info()]),
        }),
        call_metadata: Some(CallMetadata {
            customer_channel: Some(1),
            agent_channel: Some(2),
        }),
        data_source: Some(DataSource {
            gcs_source: Some(GcsSource {
                audio_uri: s("gs://a"),
                transcript_uri: s("gs://t"),
            }),
            dialogflow_source: Some(DialogflowSource {
                dialogflow_conversation: s("d"),
                audio_uri: s("gs://a"),
            }),
        }),
        sources: Some(vec![Source {
            model: "m".into(),
            explore: "e".into(),
        }]),
        phone_number: Some(PhoneNumber {
            country_code: Some(1),
            phone_number: s("+14155550100"),
        }),
        start_time: s("t"),
        expire_time: s("t"),
        ttl: s("1s"),
        etag: s("\"e\""),
    }
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        agent_id: "a".into(),
        display_name: s("d"),
        team: s("t"),
        disposition_code: s("c"),
    }
}

fn conversation() -> Conversation {
    let i = input();
    Conversation {
        name: s("conversations/c"),
        display_name: i.display_name,
        category: i.category,
        agents: i.agents,
        conversation_profile: i.conversation_profile,
        language_code: i.language_code,
        labels: i.labels,
        metadata: i.metadata,
        conversation_stage: i.conversation_stage,
        quality_metadata: i.quality_metadata,
        call_metadata: i.call_metadata,
        data_source: i.data_source,
        sources: i.sources,
        phone_number: i.phone_number,
        lifecycle_state: Some(LifecycleState::Completed),
        start_time: i.start_time,
        end_time: s("t"),
        expire_time: i.expire_time,
        create_time: s("t"),
        update_time: s("t"),
        last_used_time: s("t"),
        deleted: Some(false),
        delete_time: s("t"),
        purge_time: s("t"),
        message_count: Some(1),
        owner: s("o"),
        etag: s("\"e\""),
        can: Some(Can::default()),
        messages: Some(vec![message()]),
    }
}

#[test]
fn a_fully_populated_conversation_has_every_field_of_the_spec_and_no_other() {
    let spec = spec();
    let mut expected = properties(schema(&spec, "Conversation"), false);
    expected.remove("ttl"); // input only (writeOnly)
    assert_eq!(keys(&conversation()), expected);
}

#[test]
fn the_create_and_update_body_has_every_writable_field_of_the_spec() {
    let spec = spec();
    assert_eq!(
        keys(&input()),
        properties(schema(&spec, "ConversationInput"), true)
    );
}

#[test]
fn messages_and_their_bodies_have_the_fields_of_the_spec() {
    let spec = spec();
    assert_eq!(
        keys(&message()),
        properties(schema(&spec, "Message"), false)
    );
    let mut append = message().to_input().expect("typed");
    append.etag = s("\"e\"");
    assert_eq!(
        keys(&append),
        properties(schema(&spec, "MessageInput"), true)
    );
    assert_eq!(
        keys(&tool_call()),
        properties(schema(&spec, "ToolCall"), false)
    );
    let patch = MessagePatch {
        content: s("c"),
        tool_calls: Some(vec![tool_call()]),
        metadata: Some(object()),
        etag: s("\"e\""),
    };
    // `type` and `toolCallId` never change (the service accepts them only unchanged): the
    // client does not send them.
    let mut expected = properties(schema(&spec, "MessageUpdateInput"), true);
    expected.remove("type");
    expected.remove("toolCallId");
    assert_eq!(keys(&patch), expected);
}

#[test]
fn the_nested_objects_have_the_fields_of_the_spec() {
    let spec = spec();
    let i = input();
    let pairs: [(&str, BTreeSet<String>); 7] = [
        ("Can", keys(&Can::default())),
        ("QualityMetadata", keys(&i.quality_metadata)),
        ("AgentInfo", keys(&agent_info())),
        ("CallMetadata", keys(&i.call_metadata)),
        ("DataSource", keys(&i.data_source)),
        ("PhoneNumber", keys(&i.phone_number)),
        (
            "ListConversationsResponse",
            keys(&ConversationPage {
                conversations: vec![],
                next_page_token: s("t"),
            }),
        ),
    ];
    for (name, found) in pairs {
        assert_eq!(found, properties(schema(&spec, name), false), "{name}");
    }
    let data_source = schema(&spec, "DataSource");
    let gcs = i.data_source.clone().and_then(|d| d.gcs_source);
    let dialogflow = i.data_source.and_then(|d| d.dialogflow_source);
    assert_eq!(
        keys(&gcs),
        properties(&data_source["properties"]["gcsSource"], false)
    );
    assert_eq!(
        keys(&dialogflow),
        properties(&data_source["properties"]["dialogflowSource"], false)
    );
    let source = &schema(&spec, "Sources")["items"];
    assert_eq!(
        keys(&i.sources.expect("sources")[0]),
        properties(source, false)
    );
    let messages = MessagePage {
        messages: vec![],
        next_page_token: s("t"),
    };
    assert_eq!(
        keys(&messages),
        properties(schema(&spec, "ListMessagesResponse"), false)
    );
    assert_eq!(
        keys(&Messages { messages: vec![] }),
        properties(schema(&spec, "BatchAppendResponse"), false)
    );
}

fn enum_values(spec: &Value, name: &str) -> Vec<String> {
    schema(spec, name)["enum"]
        .as_sequence()
        .expect("an enum")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn names<T: Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .map(|v| {
            serde_json::to_value(v)
                .expect("a name")
                .as_str()
                .expect("a string")
                .to_owned()
        })
        .collect()
}

#[test]
fn the_enums_have_the_values_of_the_spec() {
    let spec = spec();
    use MessageType::*;
    assert_eq!(
        names(&[User, Agent, System, Tool]),
        enum_values(&spec, "MessageType")
    );
    assert_eq!(
        names(&[
            ConversationStage::VirtualAgentStage,
            ConversationStage::HumanAssistStage
        ]),
        enum_values(&spec, "ConversationStage")
    );
    assert_eq!(
        names(&[LifecycleState::InProgress, LifecycleState::Completed]),
        enum_values(&spec, "LifecycleState")
    );
}

/// Every `code` a response of the spec declares (`const` or `enum`).
fn codes(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                if k.as_str() == Some("code") {
                    if let Some(c) = v["const"].as_str() {
                        found.insert(c.to_owned());
                    }
                    for c in v["enum"].as_sequence().into_iter().flatten() {
                        found.extend(c.as_str().map(str::to_owned));
                    }
                }
                codes(v, found);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| codes(v, found)),
        _ => {}
    }
}

#[test]
fn every_error_code_of_the_spec_is_a_typed_code_of_the_client() {
    let mut declared = BTreeSet::new();
    codes(&spec()["components"]["responses"], &mut declared);
    assert!(declared.len() >= 12, "{declared:?}");
    for code in declared {
        let body = format!(r#"{{"code":"{code}"}}"#);
        let problem = Error::Api(Box::new(Problem::from_answer(
            400,
            body.as_bytes(),
            None,
            None,
        )));
        let typed = problem.code().expect("a code");
        assert!(!matches!(typed, Code::Other(_)), "{code} is not typed");
        assert_eq!(typed.as_str(), code);
    }
}
