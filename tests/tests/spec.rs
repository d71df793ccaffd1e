//! `openapi.yaml` and the code agree on the fields of Conversation and Message, and the code, the
//! spec, `template.yaml` and the local router on the routes, so a field or route added
//! to one cannot be forgotten in the other.

use std::collections::BTreeSet;

use conversations::domain::conversation::{self, NewConversation, Writable};
use conversations::domain::ids::{ConversationId, Owner};
use conversations::domain::message;
use conversations::domain::time::Timestamp;
use conversations::routes::ROUTES;
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
        set(&conversation::View::Full.fields()),
        "the spec's Conversation vs the fields of the FULL view (OUTPUT_FIELDS and messages)"
    );
    let now = Timestamp::now();
    let body = serde_json::json!({"displayName": "d", "category": "c", "agents": ["a"], "conversationProfile": "p",
        "languageCode": "en", "labels": {"k": "v"}, "metadata": {"m": 1}, "ttl": "60s",
            "qualityMetadata": {"menuPath": "m"}, "callMetadata": {"agentChannel": 1},
            "dataSource": {"gcsSource": {"audioUri": "gs://b/a"}}, "sources": [{"model": "m", "explore": "e"}],
            "phoneNumber": {"phoneNumber": "+14155550100"}});
    let writable =
        Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
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
    let mut rendered: BTreeSet<String> = full.to_json().keys().cloned().collect();
    // The FULL view adds its messages (conversations::http::Reply::full).
    rendered.insert("messages".into());
    let readable: BTreeSet<String> = spec_fields.difference(&write_only).cloned().collect();
    assert_eq!(
        rendered, readable,
        "a rendered conversation (FULL view) vs the spec's readable fields"
    );
}

#[test]
fn the_spec_and_a_fully_populated_message_have_the_same_fields() {
    let (spec_fields, _) = properties(&spec(), "Message");
    assert_eq!(spec_fields, set(&message::OUTPUT_FIELDS));
    let full = message::Message {
        conversation: ConversationId::parse("abc").expect("id"),
        order: 1,
        kind: message::MessageType::Agent,
        content: "x".into(),
        // Never both on one message; here only to render every field.
        tool_calls: vec![message::ToolCall {
            id: "c".into(),
            name: "t".into(),
            arguments: serde_json::Map::new(),
        }],
        tool_call_id: Some("c".into()),
        metadata: Some(serde_json::Map::new()),
        create_time: Timestamp::now(),
        version: conversations::domain::etag::Version(1),
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
    for schema in ["MessageInput", "MessageUpdateInput"] {
        let (input, _) = properties(&spec, schema);
        let mut accepted: BTreeSet<String> = set(&message::WRITABLE);
        accepted.extend(set(&message::OUTPUT_ONLY));
        assert_eq!(
            input, accepted,
            "{schema} vs the fields a message body may carry"
        );
    }
    let (batch, _) = properties(&spec, "BatchAppendInput");
    assert_eq!(batch, set(&["messages", "etag", "conversationMetadata"]));
    let (clear, _) = properties(&spec, "ClearMessagesInput");
    assert_eq!(clear, set(&["throughOrder", "etag"]));
    // Undelete, complete and purge.
    let (etag_only, _) = properties(&spec, "EtagBody");
    assert_eq!(etag_only, set(&["etag"]));
}

/// The methods the local router sends somewhere for every path: RFC 9110's but CONNECT, PATCH,
/// and QUERY (the safe method with a body, draft-ietf-httpbis-safe-method-w-body).
const ALL_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY",
];

type Routes = BTreeSet<(String, String, String)>;

/// `(path, method, function)` of every route `template.yaml` gives API Gateway; `ANY` and the
/// `$default` route (no path) included.
fn template_routes() -> Routes {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let template: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("read")).expect("valid YAML");
    let mut routes = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().expect("resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its binary");
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let props = &event["Properties"];
            let path = props["Path"].as_str().unwrap_or("$default");
            let method = props["Method"].as_str().unwrap_or("ANY");
            routes.insert((path.to_owned(), method.to_owned(), binary.to_owned()));
        }
    }
    routes
}

/// `(path, method, function)` of every route of the `cargo lambda watch` router in Cargo.toml; a
/// path routed for any method is reported with method `ANY`.
fn router_routes() -> Routes {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(path)
        .expect("read")
        .parse()
        .expect("valid TOML");
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("a router");
    let mut routes = BTreeSet::new();
    for (path, target) in router {
        match target {
            toml::Value::String(function) => {
                routes.insert((path.clone(), "ANY".to_owned(), function.clone()));
            }
            toml::Value::Array(entries) => {
                for entry in entries {
                    let field = |name: &str| entry[name].as_str().expect(name).to_owned();
                    routes.insert((path.clone(), field("method"), field("function")));
                }
            }
            other => panic!("unexpected router entry {other:?}"),
        }
    }
    routes
}

#[test]
fn every_route_agrees_across_the_code_the_spec_the_template_and_the_local_router() {
    let code: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .map(|m| (r.path.to_owned(), (*m).to_owned()))
        })
        .collect();

    let spec = spec();
    let mut in_spec = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().expect("paths") {
        for (method, _) in item.as_mapping().expect("a path item") {
            let method = method.as_str().expect("a key");
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method)
            {
                let path = path.as_str().expect("a path").to_owned();
                in_spec.insert((path, method.to_ascii_uppercase()));
            }
        }
    }
    assert_eq!(in_spec, code, "openapi.yaml vs shared/src/routes.rs");

    let template = template_routes();
    let router = router_routes();
    let served = |routes: &Routes| -> Routes {
        routes
            .iter()
            .filter(|(_, method, function)| method != "ANY" && function != "fallback")
            .cloned()
            .collect()
    };
    let served_template = served(&template);
    assert_eq!(
        served_template
            .iter()
            .map(|(p, m, _)| (p.clone(), m.clone()))
            .collect::<BTreeSet<_>>(),
        code,
        "template.yaml vs shared/src/routes.rs"
    );
    assert_eq!(
        served(&router),
        served_template,
        "the same function serves each route in template.yaml and the local router"
    );

    // What no function serves goes to the fallback: ANY per path and $default when deployed; every
    // other method per path and a catch-all locally.
    let mut fallback_template: Routes = ROUTES
        .iter()
        .map(|r| (r.path.to_owned(), "ANY".to_owned(), "fallback".to_owned()))
        .collect();
    fallback_template.insert(("$default".into(), "ANY".into(), "fallback".into()));
    assert_eq!(
        template
            .difference(&served_template)
            .cloned()
            .collect::<Routes>(),
        fallback_template
    );
    let mut fallback_router: Routes = ROUTES
        .iter()
        .flat_map(|r| {
            ALL_METHODS
                .iter()
                .filter(|m| !r.methods.contains(m))
                .map(|m| (r.path.to_owned(), (*m).to_owned(), "fallback".to_owned()))
        })
        .collect();
    fallback_router.insert(("/{*path}".into(), "ANY".into(), "fallback".into()));
    assert_eq!(
        router
            .difference(&served(&router))
            .cloned()
            .collect::<Routes>(),
        fallback_router
    );
}

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("read")).expect("valid YAML")
}

/// The functions that sign or verify page tokens: the two list methods.
const TOKEN_SIGNERS: [&str; 2] = ["ListConversationsFunction", "ListMessagesFunction"];

#[test]
fn deployed_functions_get_the_table_and_only_the_list_functions_the_token_key() {
    let template = template();
    let globals = template["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("global variables");
    let names: Vec<&str> = globals.keys().filter_map(Value::as_str).collect();
    // Without CONVERSATIONS_AUTH the functions read the caller from the JWT authorizer's `sub`
    // and ignore X-Owner-Id (tests/tests/handlers.rs proves the handler side); the delegation
    // scope and the layout creates write are the stack's parameters.
    assert_eq!(
        names,
        [
            "CONVERSATIONS_TABLE",
            "CONVERSATIONS_DELEGATION_SCOPE",
            "CONVERSATIONS_WRITE_LAYOUT"
        ]
    );
    assert_eq!(
        serde_yaml_ng::to_string(&globals[&Value::from("CONVERSATIONS_DELEGATION_SCOPE")])
            .expect("render")
            .trim(),
        "!Ref DelegationScope"
    );
    assert_eq!(
        template["Parameters"]["DelegationScope"]["Default"],
        conversations::app::DEFAULT_DELEGATION_SCOPE
    );
    for (name, resource) in template["Resources"].as_mapping().expect("resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().expect("a name");
        let own = &resource["Properties"]["Environment"]["Variables"];
        if !TOKEN_SIGNERS.contains(&name) {
            assert!(own.is_null(), "{name} sets its own environment: {own:?}");
            continue;
        }
        let vars: Vec<&str> = own
            .as_mapping()
            .expect("variables")
            .keys()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            vars,
            ["CONVERSATIONS_TABLE", "CONVERSATIONS_TOKEN_KEY"],
            "{name}"
        );
        // The page-token key is a secret CloudFormation generates, never a value in the template.
        let key = serde_yaml_ng::to_string(&own["CONVERSATIONS_TOKEN_KEY"]).expect("render");
        assert!(
            key.contains("{{resolve:secretsmanager:${PageTokenKey}:SecretString}}"),
            "{name}: {key}"
        );
    }
    let secret = &template["Resources"]["PageTokenKey"];
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    assert!(secret["Properties"]["GenerateSecretString"]["PasswordLength"].as_u64() >= Some(32));
}

/// Every `Resource` a policy document's statements name, rendered as YAML text.
fn statement_resources(document: &Value) -> Vec<(String, String)> {
    document["Statement"]
        .as_sequence()
        .expect("statements")
        .iter()
        .map(|statement| {
            let actions = serde_yaml_ng::to_string(&statement["Action"]).expect("render");
            let resource = serde_yaml_ng::to_string(&statement["Resource"]).expect("render");
            (actions, resource)
        })
        .collect()
}

#[test]
fn the_purger_has_its_own_role_naming_only_its_table_stream_queue_and_log_group() {
    let template = template();
    let function = &template["Resources"]["PurgeMessagesFunction"]["Properties"];
    assert!(
        function["Policies"].is_null(),
        "no SAM policies (and so no managed role)"
    );
    assert_eq!(
        serde_yaml_ng::to_string(&function["Role"])
            .expect("render")
            .trim(),
        "!GetAtt PurgeMessagesRole.Arn"
    );
    let role = &template["Resources"]["PurgeMessagesRole"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert!(
        role["Properties"]["ManagedPolicyArns"].is_null(),
        "no managed policies"
    );
    let policies = role["Properties"]["Policies"]
        .as_sequence()
        .expect("policies");
    let allowed = [
        "!GetAtt PurgeMessagesLogGroup.Arn",
        "!GetAtt Table.Arn",
        "!GetAtt Table.StreamArn",
        "!Sub ${Table.Arn}/stream/*",
        "!GetAtt PurgeFailuresQueue.Arn",
    ];
    for policy in policies {
        for (actions, resource) in statement_resources(&policy["PolicyDocument"]) {
            assert!(
                allowed.contains(&resource.trim()),
                "{actions} on {resource}: not this stack's table, stream, queue or log group"
            );
            assert!(!actions.contains('*'), "no wildcard actions: {actions}");
            if actions.contains("dynamodb:GetRecords") {
                assert_eq!(
                    resource.trim(),
                    "!GetAtt Table.StreamArn",
                    "only this stream"
                );
            }
        }
    }
    // Failed batches go to the queue, whose depth raises an alarm; the replay starts disabled.
    let events = &function["Events"];
    let stream = &events["Expired"]["Properties"];
    assert_eq!(
        serde_yaml_ng::to_string(&stream["DestinationConfig"]["OnFailure"]["Destination"])
            .expect("render")
            .trim(),
        "!GetAtt PurgeFailuresQueue.Arn"
    );
    assert_eq!(stream["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert_eq!(
        stream["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    let replay = &events["Replay"];
    assert_eq!(replay["Type"], "SQS");
    assert_eq!(replay["Properties"]["Enabled"].as_bool(), Some(false));
    let alarm = &template["Resources"]["PurgeFailuresAlarm"]["Properties"];
    assert_eq!(alarm["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(
        template["Resources"]["Table"]["Properties"]["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
}

/// The alternatives of the first `(a|b|c)` group of a `fields` parameter's pattern.
fn field_names(spec: &Value, parameter: &str) -> BTreeSet<String> {
    let pattern = spec["components"]["parameters"][parameter]["schema"]["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{parameter} has a pattern"));
    let start = pattern.find("((").expect("a group") + 2;
    let end = start + pattern[start..].find(')').expect("its end");
    pattern[start..end].split('|').map(str::to_owned).collect()
}

#[test]
fn the_fields_parameters_name_every_rendered_field() {
    let spec = spec();
    assert_eq!(
        field_names(&spec, "MessageFields"),
        set(&message::OUTPUT_FIELDS)
    );
    let mut conversation_fields = set(&conversation::OUTPUT_FIELDS);
    conversation_fields.insert("ttl".into());
    assert_eq!(
        field_names(&spec, "ConversationFields"),
        conversation_fields
    );
}

/// The DynamoDB actions each REST function's policy grants on the table, besides the layout
/// marker's `GetItem` that every function makes at init: what its handler calls, a
/// `TransactWriteItems` counted as the item actions it holds (IAM authorises it item by item).
/// `list-conversations` queries the indexes, and reads bodies from the table (checked with its
/// resources below).
const GRANTS: [(&str, &[&str]); 15] = [
    ("create-conversation", &["dynamodb:PutItem"]),
    ("get-conversation", &["dynamodb:Query"]),
    (
        "list-conversations",
        &["dynamodb:BatchGetItem", "dynamodb:Query"],
    ),
    (
        "update-conversation",
        &[
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
    ),
    (
        "delete-conversation",
        &["dynamodb:GetItem", "dynamodb:UpdateItem"],
    ),
    (
        "undelete-conversation",
        &["dynamodb:GetItem", "dynamodb:UpdateItem"],
    ),
    (
        "complete-conversation",
        &["dynamodb:GetItem", "dynamodb:UpdateItem"],
    ),
    ("purge-conversation", &["dynamodb:UpdateItem"]),
    (
        "append-message",
        &[
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
    ),
    ("list-messages", &["dynamodb:GetItem", "dynamodb:Query"]),
    ("get-message", &["dynamodb:GetItem", "dynamodb:Query"]),
    (
        "batch-append-messages",
        &[
            "dynamodb:BatchGetItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
    ),
    ("update-message", &["dynamodb:Query", "dynamodb:UpdateItem"]),
    (
        "delete-message",
        &[
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
    ),
    (
        "clear-messages",
        &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
    ),
];

/// The actions of a statement's `Action` (one or a list).
fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(one) => vec![one.clone()],
        Value::Sequence(many) => many
            .iter()
            .map(|a| a.as_str().expect("an action").to_owned())
            .collect(),
        other => panic!("unexpected Action {other:?}"),
    }
}

#[test]
fn each_rest_function_is_granted_only_the_dynamodb_actions_its_handler_calls() {
    let template = template();
    let mut seen = BTreeSet::new();
    for (name, resource) in template["Resources"].as_mapping().expect("resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let name = name.as_str().expect("a name");
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("a binary");
        let Some((_, wanted)) = GRANTS.iter().find(|(b, _)| *b == binary) else {
            // The fallback touches no data; the purger has its own role (checked above).
            assert!(
                ["fallback", "purge-messages"].contains(&binary),
                "{binary} has no entry in GRANTS"
            );
            assert!(resource["Properties"]["Policies"].is_null(), "{name}");
            continue;
        };
        seen.insert(binary);
        let policies = resource["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has policies"));
        assert_eq!(policies.len(), 1, "{name}: one inline policy");
        let mut granted = BTreeSet::new();
        let mut warm_up = false;
        for statement in policies[0]["Statement"].as_sequence().expect("statements") {
            assert_eq!(statement["Effect"], "Allow", "{name}");
            let resource = serde_yaml_ng::to_string(&statement["Resource"]).expect("render");
            let on_table = resource.trim() == "!GetAtt Table.Arn";
            let on_indexes = binary == "list-conversations" && resource.contains("/index/by-");
            assert!(on_table || on_indexes, "{name}: {resource}");
            let acts = actions(statement);
            if !statement["Condition"].is_null() {
                // Only the layout marker: the one key every function reads at init.
                assert_eq!(acts, ["dynamodb:GetItem"], "{name}");
                assert_eq!(
                    statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"][0],
                    "#layout",
                    "{name}"
                );
                warm_up = true;
                continue;
            }
            granted.extend(acts);
        }
        let wanted: BTreeSet<String> = wanted.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(granted, wanted, "{name}");
        assert!(
            warm_up || granted.contains("dynamodb:GetItem"),
            "{name} cannot read the layout marker at init"
        );
    }
    assert_eq!(
        seen.len(),
        GRANTS.len(),
        "a function of GRANTS is not in template.yaml"
    );
}
