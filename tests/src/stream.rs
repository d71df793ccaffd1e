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

/// Whether a Lambda event filter pattern matches an event (the subset the template uses:
/// nested objects, lists of alternatives, literal strings, `anything-but`, `exists`, `prefix`).
pub fn pattern_matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| match event.get(key) {
            Some(value) => pattern_matches(sub, value),
            None => sub
                .as_array()
                .is_some_and(|alts| alts.iter().any(|a| a == &json!({"exists": false}))),
        }),
        Value::Array(alternatives) => alternatives.iter().any(|alt| match alt {
            Value::Object(op) => match op.iter().next() {
                Some((name, arg)) if name == "anything-but" => {
                    !arg.as_array().is_some_and(|list| list.contains(event))
                }
                Some((name, arg)) if name == "exists" => arg.as_bool() == Some(true),
                Some((name, Value::String(prefix))) if name == "prefix" => event
                    .as_str()
                    .is_some_and(|s| s.starts_with(prefix.as_str())),
                _ => false,
            },
            literal => literal == event,
        }),
        _ => false,
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
