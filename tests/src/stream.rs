//! The test table's DynamoDB stream, read from DynamoDB Local in its wire JSON: the shape in
//! which Lambda hands stream records to the purger, so tests feed it real records.

use serde_json::{Value, json};

/// A table's stream on DynamoDB Local.
pub struct Stream {
    http: reqwest::Client,
    endpoint: String,
    /// The stream's ARN.
    pub arn: String,
}

/// One record and the shard it is in.
#[derive(Debug, Clone)]
pub struct Record {
    /// The shard.
    pub shard: String,
    /// The record, as `GetRecords` answers it (and as Lambda's stream events carry it).
    pub record: Value,
}

impl Record {
    /// The record's sequence number.
    pub fn sequence(&self) -> &str {
        self.record["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
    }

    /// The partition key of the changed item.
    pub fn partition(&self) -> &str {
        self.record["dynamodb"]["Keys"]["pk"]["S"]
            .as_str()
            .unwrap_or_default()
    }
}

impl Stream {
    /// The latest stream of `table`, at `AWS_ENDPOINT_URL_DYNAMODB`.
    pub async fn of(table: &str) -> Self {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("DynamoDB Local");
        let mut stream = Self {
            http: reqwest::Client::new(),
            endpoint,
            arn: String::new(),
        };
        let described = stream
            .call(
                "DynamoDB_20120810.DescribeTable",
                json!({"TableName": table}),
            )
            .await;
        stream.arn = described["Table"]["LatestStreamArn"]
            .as_str()
            .expect("the table has a stream")
            .to_owned();
        stream
    }

    async fn call(&self, target: &str, body: Value) -> Value {
        // DynamoDB Local wants a SigV4-shaped Authorization header; it does not check it.
        let response = self
            .http
            .post(&self.endpoint)
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .expect("DynamoDB Local answers");
        let status = response.status();
        let value: Value = response.json().await.expect("JSON");
        assert!(status.is_success(), "{target}: {status} {value}");
        value
    }

    /// Every record of the stream so far, shard by shard, oldest first.
    pub async fn records(&self) -> Vec<Record> {
        let described = self
            .call(
                "DynamoDBStreams_20120810.DescribeStream",
                json!({"StreamArn": self.arn}),
            )
            .await;
        let mut all = Vec::new();
        for shard in described["StreamDescription"]["Shards"]
            .as_array()
            .expect("shards")
        {
            let shard_id = shard["ShardId"].as_str().expect("a shard id").to_owned();
            let mut iterator = self
                .call(
                    "DynamoDBStreams_20120810.GetShardIterator",
                    json!({"StreamArn": self.arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}),
                )
                .await["ShardIterator"]
                .clone();
            while let Some(current) = iterator.as_str().map(str::to_owned) {
                let page = self
                    .call(
                        "DynamoDBStreams_20120810.GetRecords",
                        json!({"ShardIterator": current}),
                    )
                    .await;
                let records = page["Records"].as_array().cloned().unwrap_or_default();
                if records.is_empty() {
                    break;
                }
                all.extend(records.into_iter().map(|record| Record {
                    shard: shard_id.clone(),
                    record,
                }));
                iterator = page["NextShardIterator"].clone();
            }
        }
        all
    }

    /// The records of one conversation's item collection (`CONV#{owner}#{id}`).
    pub async fn records_of(&self, owner: &str, id: &str) -> Vec<Record> {
        let partition = format!("CONV#{owner}#{id}");
        self.records()
            .await
            .into_iter()
            .filter(|r| r.partition() == partition)
            .collect()
    }
}

/// Whether a Lambda event filter pattern matches an event, by the rules of Lambda's filter
/// syntax (EventBridge's), for the parts the template uses:
/// - a pattern object matches when each of its fields matches the event's field of that name;
/// - a field the event lacks (or holds no object where the pattern goes deeper) matches only a
///   rule holding `{"exists": false}`: a pattern object below it matches when every rule in it
///   does, since every leaf below is missing too;
/// - a rule is a list of alternatives, any of which matches a leaf value (a string, number,
///   boolean or null): a literal (the same JSON value: `"0"` is not `0`), `{"exists": true}`,
///   `{"anything-but": [values]}` or `{"anything-but": value}` (none of them), `{"prefix": "s"}`;
///   an object is no leaf, so only `{"exists": false}` matches one;
/// - an event value that is a list matches when one of its elements does.
///
/// Any other operator (`numeric`, `suffix`, `equals-ignore-case`, `wildcard`, `cidr`, a nested
/// `anything-but` operator) panics: a template using syntax this matcher does not know must not
/// pass or fail its tests by accident. (`numeric` in particular: DynamoDB's numbers are strings
/// in a stream record, `{"N": "3"}`, so the template compares them as strings.)
pub fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| match event.get(key) {
            Some(value) => pattern_matches(sub, value),
            None => matches_missing(sub),
        }),
        Value::Array(alternatives) => match event {
            Value::Array(elements) => elements
                .iter()
                .any(|element| alternatives.iter().any(|alt| rule_matches(alt, element))),
            value => alternatives.iter().any(|alt| rule_matches(alt, value)),
        },
        other => panic!("a pattern's rules are lists of alternatives, not {other}"),
    }
}

/// Whether a pattern matches a field the event does not have.
fn matches_missing(pattern: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.values().all(matches_missing),
        Value::Array(alternatives) => alternatives
            .iter()
            .any(|alt| alt == &json!({"exists": false})),
        other => panic!("a pattern's rules are lists of alternatives, not {other}"),
    }
}

/// Whether one alternative of a rule matches a value the event has.
fn rule_matches(alternative: &Value, value: &Value) -> bool {
    let leaf = !value.is_object() && !value.is_array();
    let Value::Object(operator) = alternative else {
        return leaf && alternative == value;
    };
    let mut ops = operator.iter();
    let (Some((name, argument)), None) = (ops.next(), ops.next()) else {
        panic!("an operator object holds one operator: {alternative}");
    };
    match (name.as_str(), argument) {
        ("exists", Value::Bool(wanted)) => leaf == *wanted,
        ("anything-but", Value::Array(excluded)) => {
            assert!(
                excluded.iter().all(|e| !e.is_object() && !e.is_array()),
                "anything-but with a nested operator is not supported here: {alternative}"
            );
            leaf && !excluded.contains(value)
        }
        ("anything-but", Value::Object(_)) => {
            panic!("anything-but with a nested operator is not supported here: {alternative}")
        }
        ("anything-but", excluded) => leaf && excluded != value,
        ("prefix", Value::String(prefix)) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        _ => panic!("filter syntax this matcher does not know: {alternative}"),
    }
}

/// The filter patterns of the purger's stream event source in `template.yaml`.
pub fn purger_filters() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let template: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("read")).expect("YAML");
    let events = &template["Resources"]["PurgeMessagesFunction"]["Properties"]["Events"];
    let mut patterns = Vec::new();
    for (_, event) in events.as_mapping().expect("events") {
        if event["Type"].as_str() != Some("DynamoDB") {
            continue;
        }
        for filter in event["Properties"]["FilterCriteria"]["Filters"]
            .as_sequence()
            .expect("filters")
        {
            let text = filter["Pattern"].as_str().expect("a pattern string");
            patterns.push(serde_json::from_str(text).expect("a JSON pattern"));
        }
    }
    patterns
}

/// Whether the purger's filters let a record through.
pub fn passes_purger_filters(record: &Value) -> bool {
    purger_filters().iter().any(|p| pattern_matches(p, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: Value, event: Value) -> bool {
        pattern_matches(&pattern, &event)
    }

    #[test]
    fn literals_match_equal_leaves_only() {
        assert!(matches(json!({"a": ["x", "y"]}), json!({"a": "y", "b": 1})));
        assert!(!matches(json!({"a": ["0"]}), json!({"a": 0})));
        assert!(!matches(json!({"a": ["x"]}), json!({"a": {"x": 1}})));
        assert!(matches(json!({"a": ["x"]}), json!({"a": ["w", "x"]})));
        assert!(!matches(json!({"a": ["x"]}), json!({})));
    }

    #[test]
    fn exists_looks_at_leaves_at_any_depth() {
        let has = json!({"d": {"New": {"p": {"N": [{"exists": true}]}}}});
        assert!(matches(
            has.clone(),
            json!({"d": {"New": {"p": {"N": "1"}}}})
        ));
        assert!(!matches(
            has.clone(),
            json!({"d": {"New": {"q": {"N": "1"}}}})
        ));
        assert!(!matches(has, json!({"d": {"New": {"p": {"M": {}}}}})));
        let lacks = json!({"d": {"Old": {"p": {"N": [{"exists": false}]}}}});
        assert!(matches(
            lacks.clone(),
            json!({"d": {"Old": {"q": {"N": "1"}}}})
        ));
        // No old image at all (an INSERT): the leaf is missing too.
        assert!(matches(lacks.clone(), json!({"d": {"New": {}}})));
        assert!(matches(lacks.clone(), json!({})));
        assert!(!matches(lacks, json!({"d": {"Old": {"p": {"N": "1"}}}})));
        // An exists rule only matters where the field is missing: another rule still must hold.
        assert!(!matches(
            json!({"x": ["a"], "y": [{"exists": false}]}),
            json!({})
        ));
    }

    #[test]
    fn anything_but_needs_the_field() {
        let rule = json!({"n": {"N": [{"anything-but": ["0"]}]}});
        assert!(matches(rule.clone(), json!({"n": {"N": "3"}})));
        assert!(!matches(rule.clone(), json!({"n": {"N": "0"}})));
        assert!(!matches(rule.clone(), json!({"m": {"N": "3"}})));
        assert!(!matches(rule, json!({"n": {"S": "3"}})));
        assert!(matches(
            json!({"s": [{"anything-but": "x"}]}),
            json!({"s": "y"})
        ));
        assert!(matches(
            json!({"s": [{"prefix": "M#"}]}),
            json!({"s": "M#1"})
        ));
    }

    #[test]
    #[should_panic(expected = "does not know")]
    fn syntax_it_does_not_know_is_refused_not_guessed() {
        matches(json!({"n": [{"numeric": [">", 0]}]}), json!({"n": 1}));
    }
}
