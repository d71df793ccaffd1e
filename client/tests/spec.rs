//! The client's types and requests agree with `openapi.yaml`, so that a change of the API cannot
//! be forgotten here (tests/tests/spec.rs does the same for the server):
//!
//! - every schema the client reads or writes has the same properties as the Rust type that
//!   stands for it (a fully populated value, serialised), and those values have the spec's JSON
//!   types, enum values and required fields;
//! - the client reads any answer that holds only the fields the spec requires, and always sends
//!   those the spec requires of a request; every integer the spec allows, from its minimum to its
//!   maximum, fits the Rust type;
//! - every request the client makes (each method with every option, against a recording
//!   stand-in) is an operation of the spec, with query parameters the operation declares and
//!   values of their types and enums, headers it declares and a body of its schema; and every
//!   query parameter of those operations but `fields` is one the client sends;
//! - the enums have the same values, and every error code the spec declares is a [`Code`].

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
    // BatchAppendResponse (with revision 3's conversationEtag): in
    // revision_3_answers_have_the_fields_of_the_spec_waits_for_openapi_yaml.
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

// ---- Types and required fields ----------------------------------------------------------------

type Json = serde_json::Value;

/// `schema`, with a `$ref` followed (`#/components/...`).
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let target = reference
                .strip_prefix("#/")
                .expect("a local $ref")
                .split('/')
                .fold(spec, |v, segment| &v[segment]);
            assert!(!target.is_null(), "{reference} is not in openapi.yaml");
            resolve(spec, target)
        }
        None => schema,
    }
}

/// The JSON Schema type names of `value` (`integer` is also a `number`).
fn json_types(value: &Json) -> &'static [&'static str] {
    match value {
        Json::Null => &["null"],
        Json::Bool(_) => &["boolean"],
        Json::Number(n) if n.is_i64() || n.is_u64() => &["integer", "number"],
        Json::Number(_) => &["number"],
        Json::String(_) => &["string"],
        Json::Array(_) => &["array"],
        Json::Object(_) => &["object"],
    }
}

/// Every way `value` breaks the types, enums, `const`s, required fields and closed property sets
/// of `schema`, each with its path. `$ref`, `allOf`, `anyOf`/`oneOf`, `properties`,
/// `additionalProperties` and `items` are followed; patterns, lengths, bounds and
/// `if`/`then`/`not` (rules on values, not on types) are not checked here.
fn type_errors(spec: &Value, schema: &Value, value: &Json, at: &str, out: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    for part in schema["allOf"].as_sequence().into_iter().flatten() {
        type_errors(spec, part, value, at, out);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(choices) = schema[key].as_sequence() {
            let tried: Vec<Vec<String>> = choices
                .iter()
                .map(|choice| {
                    let mut errors = Vec::new();
                    type_errors(spec, choice, value, at, &mut errors);
                    errors
                })
                .collect();
            if tried.iter().all(|errors| !errors.is_empty()) {
                out.push(format!("{at}: matches none of its {key}: {tried:?}"));
            }
        }
    }
    let declared: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Sequence(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !declared.is_empty() && !json_types(value).iter().any(|t| declared.contains(t)) {
        out.push(format!("{at}: {value} is not {declared:?}"));
        return;
    }
    if let Some(values) = schema["enum"].as_sequence() {
        let allowed: Vec<Json> = values
            .iter()
            .map(|v| serde_json::to_value(v).expect("a JSON value"))
            .collect();
        if !allowed.contains(value) {
            out.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if !schema["const"].is_null() {
        let constant = serde_json::to_value(&schema["const"]).expect("a JSON value");
        if *value != constant {
            out.push(format!("{at}: {value} is not {constant}"));
        }
    }
    match value {
        Json::Object(fields) => {
            for name in schema["required"].as_sequence().into_iter().flatten() {
                let name = name.as_str().expect("a name");
                if !fields.contains_key(name) {
                    out.push(format!("{at}: the required {name} is missing"));
                }
            }
            for (name, field) in fields {
                let property = &schema["properties"][name.as_str()];
                let path = format!("{at}.{name}");
                if !property.is_null() {
                    type_errors(spec, property, field, &path, out);
                } else if schema["additionalProperties"].is_mapping() {
                    type_errors(spec, &schema["additionalProperties"], field, &path, out);
                } else if schema["additionalProperties"].as_bool() == Some(false) {
                    out.push(format!("{path}: not a property of the schema"));
                }
            }
        }
        Json::Array(items) if !schema["items"].is_null() => {
            for (i, item) in items.iter().enumerate() {
                type_errors(spec, &schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn assert_fits(spec: &Value, schema: &Value, value: &impl Serialize, what: &str) {
    let value = serde_json::to_value(value).expect("serialises");
    let mut errors = Vec::new();
    type_errors(spec, schema, &value, what, &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn fully_populated_values_have_the_types_of_the_spec() {
    let spec = spec();
    let named = |name: &str| schema(&spec, name).clone();
    assert_fits(
        &spec,
        &named("Conversation"),
        &conversation(),
        "Conversation",
    );
    assert_fits(
        &spec,
        &named("ConversationCreate"),
        &input(),
        "ConversationCreate",
    );
    assert_fits(&spec, &named("Message"), &message(), "Message");
    let mut append = message().to_input().expect("typed");
    append.etag = s("\"e\"");
    assert_fits(&spec, &named("MessageInput"), &append, "MessageInput");
    let patch = MessagePatch {
        content: s("c"),
        tool_calls: Some(vec![tool_call()]),
        metadata: Some(object()),
        etag: s("\"e\""),
    };
    assert_fits(
        &spec,
        &named("MessageUpdateInput"),
        &patch,
        "MessageUpdateInput",
    );
    let page = ConversationPage {
        conversations: vec![conversation()],
        next_page_token: s("t"),
    };
    assert_fits(
        &spec,
        &named("ListConversationsResponse"),
        &page,
        "ListConversationsResponse",
    );
    let page = MessagePage {
        messages: vec![message()],
        next_page_token: s("t"),
    };
    assert_fits(
        &spec,
        &named("ListMessagesResponse"),
        &page,
        "ListMessagesResponse",
    );
    let batch = Messages {
        messages: vec![message()],
        conversation_etag: s("\"e\""),
    };
    assert_fits(
        &spec,
        &named("BatchAppendResponse"),
        &batch,
        "BatchAppendResponse",
    );
}

#[test]
fn the_type_check_sees_a_wrong_type_a_missing_field_and_an_unknown_one() {
    let spec = spec();
    let mut errors = Vec::new();
    let wrong = json!({"order": "1", "type": "CHAT", "toolCalls": [{"id": 1}], "extra": true});
    type_errors(&spec, schema(&spec, "Message"), &wrong, "m", &mut errors);
    let text = format!("{errors:?}");
    for part in ["m.order", "m.type", "m.toolCalls[0].id", "m.extra"] {
        assert!(text.contains(part), "{part} not reported: {text}");
    }
    errors.clear();
    type_errors(
        &spec,
        schema(&spec, "AgentInfo"),
        &json!({}),
        "a",
        &mut errors,
    );
    assert_eq!(errors, ["a: the required agentId is missing"]);
}

/// The smallest value `schema` allows as far as types and required fields go: an object of its
/// required properties only, each the smallest of its own kind.
fn minimal(spec: &Value, schema: &Value) -> Json {
    let schema = resolve(spec, schema);
    if let Some(first) = schema["enum"].as_sequence().and_then(|v| v.first()) {
        return serde_json::to_value(first).expect("JSON");
    }
    let mut object = serde_json::Map::new();
    let mut parts: Vec<&Value> = vec![schema];
    parts.extend(
        schema["allOf"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|p| resolve(spec, p)),
    );
    let kind = parts.iter().find_map(|p| match &p["type"] {
        Value::String(t) => Some(t.clone()),
        Value::Sequence(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(str::to_owned),
        _ => None,
    });
    match kind.as_deref() {
        Some("string") => return json!("x"),
        Some("integer" | "number") => return json!(schema["minimum"].as_i64().unwrap_or(0)),
        Some("boolean") => return json!(false),
        Some("array") => return json!([]),
        _ => {}
    }
    for part in &parts {
        for name in part["required"].as_sequence().into_iter().flatten() {
            let name = name.as_str().expect("a name");
            let property = parts
                .iter()
                .map(|p| &p["properties"][name])
                .find(|p| !p.is_null())
                .unwrap_or_else(|| panic!("{name} is required but has no schema"));
            object.insert(name.to_owned(), minimal(spec, property));
        }
    }
    Json::Object(object)
}

fn reads<T: serde::de::DeserializeOwned>(spec: &Value, schema: &Value, what: &str) {
    let value = minimal(spec, schema);
    if let Err(e) = serde_json::from_value::<T>(value.clone()) {
        panic!("{what}: the client cannot read {value}, all that the spec requires: {e}");
    }
}

#[test]
fn the_client_reads_any_answer_that_has_only_the_fields_the_spec_requires() {
    let spec = spec();
    let named = |name: &str| schema(&spec, name).clone();
    reads::<Conversation>(&spec, &named("Conversation"), "Conversation");
    reads::<Can>(&spec, &named("Can"), "Can");
    reads::<QualityMetadata>(&spec, &named("QualityMetadata"), "QualityMetadata");
    reads::<AgentInfo>(&spec, &named("AgentInfo"), "AgentInfo");
    reads::<CallMetadata>(&spec, &named("CallMetadata"), "CallMetadata");
    reads::<DataSource>(&spec, &named("DataSource"), "DataSource");
    let data_source = named("DataSource");
    reads::<GcsSource>(&spec, &data_source["properties"]["gcsSource"], "gcsSource");
    reads::<DialogflowSource>(
        &spec,
        &data_source["properties"]["dialogflowSource"],
        "dialogflowSource",
    );
    reads::<Source>(&spec, &named("Sources")["items"], "Sources");
    reads::<PhoneNumber>(&spec, &named("PhoneNumber"), "PhoneNumber");
    reads::<Message>(&spec, &named("Message"), "Message");
    reads::<ToolCall>(
        &spec,
        &named("Message")["properties"]["toolCalls"]["items"],
        "toolCalls[]",
    );
    reads::<ConversationPage>(
        &spec,
        &named("ListConversationsResponse"),
        "ListConversationsResponse",
    );
    reads::<MessagePage>(
        &spec,
        &named("ListMessagesResponse"),
        "ListMessagesResponse",
    );
    reads::<Messages>(&spec, &named("BatchAppendResponse"), "BatchAppendResponse");
    reads::<FieldError>(&spec, &named("FieldError"), "FieldError");
}

#[test]
fn the_client_always_sends_the_fields_the_spec_requires() {
    let spec = spec();
    // The smallest values the client's types can make.
    let bare_message = MessageInput {
        kind: MessageType::User,
        content: None,
        tool_calls: None,
        tool_call_id: None,
        metadata: None,
        etag: None,
    };
    assert!(
        json_schema_required(&spec, "MessageInput")
            .iter()
            .all(|r| keys(&bare_message).contains(r)),
        "MessageInput"
    );
    assert!(
        json_schema_required(&spec, "AgentInfo")
            .iter()
            .all(|r| keys(&AgentInfo::default()).contains(r))
    );
    let tool_call_input = resolve(&spec, &spec["components"]["schemas"]["ToolCallInput"]);
    for r in tool_call_input["required"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        assert!(keys(&ToolCall::default()).contains(r.as_str().expect("name")));
    }
    let source = &schema(&spec, "Sources")["items"];
    for r in source["required"].as_sequence().into_iter().flatten() {
        assert!(keys(&Source::default()).contains(r.as_str().expect("name")));
    }
    // Create and update share `ConversationInput`; create's one required field comes from its
    // constructor (the service answers a create without agents 422, naming `agents`).
    let create = schema(&spec, "ConversationCreate");
    let required: Vec<&str> = create["allOf"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| p["required"].as_sequence().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, ["agents"]);
    assert!(keys(&ConversationInput::with_agents(["a"])).contains("agents"));
}

/// The `required` list of schema `name`.
fn json_schema_required(spec: &Value, name: &str) -> Vec<String> {
    schema(spec, name)["required"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// `value` with every integer the spec types set to `bound` (`maximum`/`minimum`, or ±2^53 - 1
/// when the spec gives none).
fn extremes(spec: &Value, schema: &Value, value: &mut Json, upper: bool) {
    let schema = resolve(spec, schema);
    for part in schema["allOf"].as_sequence().into_iter().flatten() {
        extremes(spec, part, value, upper);
    }
    for choice in ["anyOf", "oneOf"]
        .iter()
        .flat_map(|k| schema[*k].as_sequence().into_iter().flatten())
    {
        extremes(spec, choice, value, upper);
    }
    match value {
        Json::Number(n) if n.is_i64() || n.is_u64() => {
            let (bound, fallback) = if upper {
                ("maximum", 9_007_199_254_740_991)
            } else {
                ("minimum", -9_007_199_254_740_991)
            };
            if schema["type"].as_str() == Some("integer")
                || schema["type"]
                    .as_sequence()
                    .is_some_and(|ts| ts.iter().any(|t| t.as_str() == Some("integer")))
            {
                *value = json!(schema[bound].as_i64().unwrap_or(fallback));
            }
        }
        Json::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                let property = &schema["properties"][name.as_str()];
                if !property.is_null() {
                    extremes(spec, property, field, upper);
                }
            }
        }
        Json::Array(items) if !schema["items"].is_null() => {
            for item in items {
                extremes(spec, &schema["items"], item, upper);
            }
        }
        _ => {}
    }
}

fn holds_extremes<T: Serialize + serde::de::DeserializeOwned>(spec: &Value, name: &str, value: &T) {
    for upper in [true, false] {
        let mut json = serde_json::to_value(value).expect("serialises");
        extremes(spec, schema(spec, name), &mut json, upper);
        let back: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| {
            panic!("{name}: an integer the spec allows does not fit the client's type: {e}")
        });
        assert_eq!(
            serde_json::to_value(back).expect("serialises"),
            json,
            "{name}"
        );
    }
}

#[test]
fn every_integer_of_the_spec_fits_the_clients_type_from_minimum_to_maximum() {
    let spec = spec();
    holds_extremes(&spec, "Conversation", &conversation());
    holds_extremes(&spec, "ConversationInput", &input());
    holds_extremes(&spec, "Message", &message());
    let mut errors = Vec::new();
    let mut json = serde_json::to_value(conversation()).expect("serialises");
    extremes(&spec, schema(&spec, "Conversation"), &mut json, true);
    type_errors(
        &spec,
        schema(&spec, "Conversation"),
        &json,
        "c",
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        json["phoneNumber"]["countryCode"],
        json!(999),
        "bounds are applied"
    );
}

// ---- Requests: operations, query parameters, headers and bodies -------------------------------

/// A request as the client sent it.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    /// Header names, lower-case.
    headers: Vec<String>,
    body: Option<Json>,
}

/// A stand-in service on a loopback port that records each request and answers it `200` with a
/// body every method of the client can read.
fn recorder() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Sent>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            if reader.read_line(&mut head).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').expect("a header");
                let name = name.trim().to_ascii_lowercase();
                if name == "content-length" {
                    length = value.trim().parse().expect("a length");
                }
                headers.push(name);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("the body");
            let mut parts = head.split_whitespace();
            let method = parts.next().expect("a method").to_owned();
            let target = parts.next().expect("a target");
            let url = reqwest::Url::parse(&format!("http://x{target}")).expect("a URL");
            record.lock().expect("lock").push(Sent {
                method,
                path: url.path().to_owned(),
                query: url.query_pairs().into_owned().collect(),
                headers,
                body: (!body.is_empty())
                    .then(|| serde_json::from_slice(&body).expect("a JSON body")),
            });
            let answer = br#"{"conversations":[],"messages":[]}"#;
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(answer);
        }
    });
    (base, seen)
}

/// Calls every method of the client with every option set (and each value of each option's
/// enum), against the recorder.
async fn every_call(client: &Client) -> Result<()> {
    let key = Some(uuid::Uuid::new_v4());
    let id = "c-1";
    client
        .create_conversation(
            &input(),
            CreateOptions {
                conversation_id: s(id),
                request_id: key,
            },
        )
        .await?;
    client.get_conversation(id, View::Basic).await?;
    client.get_conversation(id, View::Full).await?;
    for order_by in [
        ConversationOrder::CreateTimeDesc,
        ConversationOrder::CreateTimeAsc,
        ConversationOrder::LastUsedTimeDesc,
        ConversationOrder::LastUsedTimeAsc,
    ] {
        let params = ListConversations {
            filter: s("lifecycleState = COMPLETED"),
            order_by,
            show_deleted: true,
            page_size: Some(10),
        };
        client.list_conversations_page(&params, Some("t")).await?;
    }
    let options = UpdateOptions {
        update_mask: Some(vec!["displayName".into(), "labels.team".into()]),
        allow_missing: true,
        if_match: s("\"e\""),
    };
    client.update_conversation(id, &input(), options).await?;
    let options = DeleteOptions {
        etag: s("\"e\""),
        allow_missing: true,
    };
    client.delete_conversation(id, options).await?;
    client.undelete_conversation(id, Some("\"e\"")).await?;
    client.complete_conversation(id, Some("\"e\"")).await?;
    let mut append = message().to_input().expect("typed");
    append.etag = s("\"e\"");
    client.append_message(id, &append, key).await?;
    let batch = [message().to_input().expect("typed")];
    let options = BatchOptions {
        etag: s("\"e\""),
        request_id: key,
        conversation_metadata: None,
    };
    client.batch_append_messages(id, &batch, options).await?;
    client.get_message(id, 3).await?;
    let patch = MessagePatch {
        content: s("c"),
        tool_calls: Some(vec![tool_call()]),
        metadata: Some(object()),
        etag: s("\"e\""),
    };
    client
        .update_message(
            id,
            3,
            &patch,
            Some(&["content", "metadata.k"]),
            Some("\"e\""),
        )
        .await?;
    for order_by in [MessageOrder::Ascending, MessageOrder::Descending] {
        let params = ListMessages {
            filter: s("order > 2 AND type = USER"),
            order_by,
            page_size: Some(10),
        };
        client.list_messages_page(id, &params, Some("t")).await?;
    }
    Ok(())
}

/// The spec's path template that `path` takes (the most literal one), and its operation.
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> (&'a str, &'a Value, &'a Value) {
    let segments: Vec<&str> = path.split('/').collect();
    let mut found: Option<(usize, &str, &Value)> = None;
    for (template, item) in spec["paths"].as_mapping().expect("paths") {
        let template = template.as_str().expect("a path");
        let parts: Vec<&str> = template.split('/').collect();
        let fits = parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| p == s || (p.starts_with('{') && !s.is_empty()));
        let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
        if fits && found.is_none_or(|(best, _, _)| literal > best) {
            found = Some((literal, template, item));
        }
    }
    let (_, template, item) =
        found.unwrap_or_else(|| panic!("{method} {path} is no path of openapi.yaml"));
    let op = &item[method.to_ascii_lowercase().as_str()];
    assert!(!op.is_null(), "openapi.yaml has no {method} {template}");
    (template, item, op)
}

/// The parameters of an operation (its path's and its own), `$ref`s followed.
fn parameters<'a>(spec: &'a Value, item: &'a Value, op: &'a Value) -> Vec<&'a Value> {
    item["parameters"]
        .as_sequence()
        .into_iter()
        .flatten()
        .chain(op["parameters"].as_sequence().into_iter().flatten())
        .map(|p| resolve(spec, p))
        .collect()
}

/// Whether `text`, a query or path value, is a value of `schema`'s type and enum.
fn query_value_fits(spec: &Value, schema: &Value, text: &str) -> Result<(), String> {
    let schema = resolve(spec, schema);
    if let Some(values) = schema["enum"].as_sequence()
        && !values.iter().any(|v| v.as_str() == Some(text))
    {
        return Err(format!("{text:?} is not one of {values:?}"));
    }
    if schema["format"].as_str() == Some("uuid") && uuid::Uuid::parse_str(text).is_err() {
        return Err(format!("{text:?} is not a UUID"));
    }
    match schema["type"].as_str() {
        Some("integer") => {
            let n: i64 = text
                .parse()
                .map_err(|_| format!("{text:?} is not an integer"))?;
            if schema["minimum"].as_i64().is_some_and(|min| n < min) {
                return Err(format!("{n} is below the minimum"));
            }
        }
        Some("boolean") if text != "true" && text != "false" => {
            return Err(format!("{text:?} is not a boolean"));
        }
        _ => {}
    }
    Ok(())
}

/// The requests that `calls` makes of a client against the recorder.
async fn recorded<F, Fut>(calls: F) -> Vec<Sent>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let (base, seen) = recorder();
    let client = Client::builder(&base)
        .owner("o")
        .on_behalf_of("u")
        .retry(Retry::none())
        .build()
        .expect("a client");
    calls(client).await.expect("every call answered");
    seen.lock().expect("lock").clone()
}

#[tokio::test]
async fn every_request_is_an_operation_of_the_spec_with_its_parameters_headers_and_body() {
    let spec = spec();
    let sent = recorded(|client| async move { every_call(&client).await }).await;
    assert_eq!(sent.len(), 17, "{sent:#?}");
    requests_fit(&spec, &sent);
}

/// Every request of `sent` is an operation of the spec, with query parameters, path values,
/// headers and a body that the operation declares, and every query parameter of those
/// operations but `fields` is sent by one of them.
fn requests_fit(spec: &Value, sent: &[Sent]) {
    // (operation, query parameter) pairs that the client sends, to find those it never does.
    let mut used = BTreeSet::new();
    for request in sent {
        let what = format!("{} {}", request.method, request.path);
        let (template, item, op) = operation(spec, &request.method, &request.path);
        let params = parameters(spec, item, op);
        let named = |name: &str, place: &str| {
            params.iter().copied().find(|p| {
                p["in"].as_str() == Some(place)
                    && p["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
        };
        for (name, value) in &request.query {
            let param = named(name, "query")
                .unwrap_or_else(|| panic!("{what}: the spec has no query parameter {name}"));
            query_value_fits(spec, &param["schema"], value)
                .unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
            used.insert((template.to_owned(), request.method.clone(), name.clone()));
        }
        for (part, segment) in template.split('/').zip(request.path.split('/')) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let param = named(name, "path").expect("a path parameter");
                query_value_fits(spec, &param["schema"], segment)
                    .unwrap_or_else(|e| panic!("{what}: {{{name}}}: {e}"));
            }
        }
        for header in ["if-match", "x-on-behalf-of"] {
            if request.headers.iter().any(|h| h == header) {
                assert!(
                    named(header, "header").is_some(),
                    "{what}: the spec has no header {header}"
                );
            }
        }
        let body_schema = &op["requestBody"]["content"]["application/json"]["schema"];
        match &request.body {
            Some(body) => {
                assert!(!body_schema.is_null(), "{what}: the spec takes no body");
                let mut errors = Vec::new();
                type_errors(spec, body_schema, body, &what, &mut errors);
                assert!(errors.is_empty(), "{errors:#?}");
            }
            None => assert!(
                op["requestBody"]["required"].as_bool() != Some(true),
                "{what}: the spec requires a body"
            ),
        }
    }

    // Every query parameter of an operation the client calls is one it can send — but `fields`
    // (the client always reads every field).
    for (template, item) in spec["paths"].as_mapping().expect("paths") {
        let template = template.as_str().expect("a path");
        for (method, op) in item.as_mapping().expect("operations") {
            let method = method.as_str().expect("a method").to_ascii_uppercase();
            if !sent
                .iter()
                .any(|r| r.method == method && operation(spec, &method, &r.path).0 == template)
            {
                continue;
            }
            for param in parameters(spec, item, op) {
                let name = param["name"].as_str().expect("a name");
                if param["in"].as_str() != Some("query") || name == "fields" {
                    continue;
                }
                assert!(
                    used.contains(&(template.to_owned(), method.clone(), name.to_owned())),
                    "{method} {template}: the client never sends {name}"
                );
            }
        }
    }
}

// ---- Revision 3: waits for openapi.yaml ---------------------------------------------------------
//
// openapi.yaml does not describe revision 3 yet (delete message, clear messages, purge, a
// batch's `conversationMetadata` and `conversationEtag`, append's `X-Conversation-ETag`): until
// it does, the two tests below fail, naming what it misses. They check the client's revision-3
// requests and answers exactly as the tests above check the rest, and need no change when the
// spec catches up.

/// Calls each method and option that revision 3 added, against the recorder.
async fn every_revision_3_call(client: &Client) -> Result<()> {
    let id = "c-1";
    let options = DeleteMessageOptions {
        etag: s("\"m1\""),
        if_match: s("\"m1\""),
    };
    client.delete_message(id, 3, options).await?;
    let options = ClearOptions {
        through_order: Some(3),
        etag: s("\"e\""),
        if_match: s("\"e\""),
    };
    client.clear_messages(id, options).await?;
    let options = PurgeOptions {
        etag: s("\"e\""),
        if_match: s("\"e\""),
        allow_missing: true,
    };
    client.purge_conversation(id, options).await?;
    let batch = [message().to_input().expect("typed")];
    let options = BatchOptions {
        etag: s("\"e\""),
        request_id: Some(uuid::Uuid::new_v4()),
        conversation_metadata: json!({"step": "closing", "pendingRefund": null})
            .as_object()
            .cloned(),
    };
    client.batch_append_messages(id, &batch, options).await?;
    Ok(())
}

#[tokio::test]
async fn revision_3_requests_are_operations_of_the_spec_waits_for_openapi_yaml() {
    let spec = spec();
    let sent = recorded(|client| async move { every_revision_3_call(&client).await }).await;
    assert_eq!(sent.len(), 4, "{sent:#?}");
    requests_fit(&spec, &sent);
}

/// The schema of the success answer (`status`) of `method path`, `$ref`s followed.
fn answer_schema<'a>(spec: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let (template, _, op) = operation(spec, method, path);
    let answer = resolve(spec, &op["responses"][status]);
    let schema = &answer["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {template}: no {status} answer with a JSON body"
    );
    resolve(spec, schema)
}

#[test]
fn revision_3_answers_have_the_fields_of_the_spec_waits_for_openapi_yaml() {
    let spec = spec();
    let batch = Messages {
        messages: vec![message()],
        conversation_etag: s("\"e\""),
    };
    assert_eq!(
        keys(&batch),
        properties(schema(&spec, "BatchAppendResponse"), false),
        "BatchAppendResponse"
    );
    assert_fits(
        &spec,
        schema(&spec, "BatchAppendResponse"),
        &batch,
        "BatchAppendResponse",
    );
    // The header that append message's answer carries and `Appended::conversation_etag` reads.
    let (_, _, append) = operation(&spec, "POST", "/v1/conversations/c/messages");
    let headers = append["responses"]["201"]["headers"]
        .as_mapping()
        .expect("append message's 201 declares headers");
    assert!(
        headers.keys().any(|h| h
            .as_str()
            .is_some_and(|h| h.eq_ignore_ascii_case("x-conversation-etag"))),
        "append message's 201 does not declare X-Conversation-ETag: {headers:?}"
    );
    // Delete message answers the message as it was, clear the conversation, purge `{}`.
    let deleted = answer_schema(&spec, "DELETE", "/v1/conversations/c/messages/3", "200");
    assert_eq!(
        deleted,
        schema(&spec, "Message"),
        "delete message answers a Message"
    );
    let cleared = answer_schema(&spec, "POST", "/v1/conversations/c/messages/clear", "200");
    assert_eq!(
        cleared,
        schema(&spec, "Conversation"),
        "clear messages answers a Conversation"
    );
    let purged = answer_schema(&spec, "POST", "/v1/conversations/c/purge", "200");
    assert!(
        type_errors_of(&spec, purged, &json!({})).is_empty(),
        "purge answers {{}}: {purged:?}"
    );
}

fn type_errors_of(spec: &Value, schema: &Value, value: &Json) -> Vec<String> {
    let mut errors = Vec::new();
    type_errors(spec, schema, value, "answer", &mut errors);
    errors
}
