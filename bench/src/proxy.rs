//! A recording proxy in front of DynamoDB Local: it asks every request for its consumed capacity
//! (`ReturnConsumedCapacity: INDEXES`) and keeps, per request, the operation and the capacity
//! units DynamoDB Local reported. The functions under test reach it through
//! `AWS_ENDPOINT_URL_DYNAMODB`; DynamoDB Local does not check signatures, so the rewritten body
//! is accepted.
//!
//! One correction: DynamoDB Local (3.x) under-reports a transaction's units — it counts one item
//! of a `TransactWriteItems`, not each (a batch of four puts reports what one does), and so do
//! its index units (a create of layout 4 puts a head and a body into `by-owner`). So a
//! transaction's units are computed here, from each item it writes as it was before and after
//! the transaction (read around it with `GetItem`s of the proxy's own, not recorded):
//! - the table: 2 per KB (rounded up, at least 1) of the larger of the two;
//! - each index (both project `ALL`, so an index entry is the whole item; an item is in an
//!   index when it holds both of its key attributes): a put of the item after (KB of it) when
//!   it enters the index, a delete of the item before when it leaves, both when its index key
//!   changes, one write of the larger of the two when it stays under the same key and changed.
//!
//! Whether a transaction's index writes are billed twice like its table writes, DynamoDB's
//! documentation does not say (it prices "transactional writes" at 2 WCU per KB); a third-party
//! measurement on DynamoDB found them billed once. Both conventions are kept: `capacity_units`
//! and `units_by_part` bill them twice (the figures this proxy always reported), the
//! `*_index_once` fields once. They differ only for transactions; a transaction's table units
//! are twice its items' KB in both.
//!
//! For plain writes (`PutItem`, `UpdateItem`, `DeleteItem`) DynamoDB Local's own figures are
//! kept, and the same rules are checked against them: a disagreement is printed (stderr).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use conversations::store::item::attr;
use conversations::store::schema;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::Value;
use tokio::net::TcpListener;

/// The indexes, with their key attributes.
const INDEXES: [(&str, &str, &str); 2] = [
    (schema::OWNER_INDEX, attr::GSI_PK, attr::GSI_SK),
    (schema::ACTIVITY_INDEX, attr::GSI2_PK, attr::GSI2_SK),
];

/// One DynamoDB request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    /// The operation (`GetItem`, `TransactWriteItems`, ...).
    pub operation: String,
    /// The capacity units (table and indexes), a transaction's index writes billed twice.
    pub capacity_units: f64,
    /// The same units by where they were spent: `table`, or an index's name.
    pub units_by_part: BTreeMap<String, f64>,
    /// The capacity units with a transaction's index writes billed once.
    pub capacity_units_index_once: f64,
    /// The same by part.
    pub units_by_part_index_once: BTreeMap<String, f64>,
}

/// The requests and capacity units of repeated invocations, one `add` per invocation.
#[derive(Debug, Default)]
pub struct Tally {
    requests: Vec<usize>,
    units: Vec<f64>,
    by_part: BTreeMap<String, f64>,
    units_once: Vec<f64>,
    by_part_once: BTreeMap<String, f64>,
    operations: Vec<String>,
}

impl Tally {
    /// Counts one invocation's calls.
    pub fn add(&mut self, calls: Vec<Call>) {
        self.requests.push(calls.len());
        self.units
            .push(calls.iter().map(|c| c.capacity_units).sum::<f64>());
        self.units_once.push(
            calls
                .iter()
                .map(|c| c.capacity_units_index_once)
                .sum::<f64>(),
        );
        for call in &calls {
            for (part, u) in &call.units_by_part {
                *self.by_part.entry(part.clone()).or_default() += u;
            }
            for (part, u) in &call.units_by_part_index_once {
                *self.by_part_once.entry(part.clone()).or_default() += u;
            }
        }
        self.operations = calls.into_iter().map(|c| c.operation).collect();
    }

    /// `requests_min`, `requests_max`, the last invocation's `operations`, and the mean
    /// `capacity_units` and `capacity_units_by_part` per invocation (a transaction's index
    /// writes billed twice), and the same billed once (`capacity_units_index_once`,
    /// `capacity_units_by_part_index_once`).
    pub fn json(&self) -> serde_json::Map<String, Value> {
        let n = self.units.len().max(1) as f64;
        let mut row = serde_json::Map::new();
        row.insert(
            "requests_min".into(),
            self.requests.iter().min().copied().into(),
        );
        row.insert(
            "requests_max".into(),
            self.requests.iter().max().copied().into(),
        );
        row.insert("operations".into(), self.operations.clone().into());
        let (units, by_part) = means(&self.units, &self.by_part, n);
        row.insert("capacity_units".into(), units);
        row.insert("capacity_units_by_part".into(), by_part);
        let (units, by_part) = means(&self.units_once, &self.by_part_once, n);
        row.insert("capacity_units_index_once".into(), units);
        row.insert("capacity_units_by_part_index_once".into(), by_part);
        row
    }
}

/// The mean units per invocation of `n`, in total and by part, as JSON.
pub fn means(units: &[f64], by_part: &BTreeMap<String, f64>, n: f64) -> (Value, Value) {
    // (+ 0.0: an empty sum is -0.0.)
    let total = units.iter().sum::<f64>() / n + 0.0;
    let by_part: serde_json::Map<String, Value> = by_part
        .iter()
        .map(|(part, u)| (part.clone(), serde_json::json!(crate::stats::round(u / n))))
        .collect();
    (crate::stats::round(total).into(), by_part.into())
}

/// A running proxy; dropping it stops it.
pub struct Proxy {
    endpoint: String,
    calls: Arc<Mutex<Vec<Call>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const WITH_CAPACITY: [&str; 10] = [
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let client = reqwest::Client::new();
        let recorded = calls.clone();
        let server = api_tests::serve::spawn(listener, move |req| {
            let (client, upstream, recorded) = (client.clone(), upstream.clone(), recorded.clone());
            async move { forward(&client, &upstream, &recorded, req).await }
        });
        Ok(Self {
            endpoint,
            calls,
            server,
        })
    }

    /// The endpoint URL to give the functions.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Takes the calls recorded so far.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    recorded: &Mutex<Vec<Call>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_owned();
    let body = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut request))
            if WITH_CAPACITY.contains(&operation.as_str()) =>
        {
            request.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
            Bytes::from(serde_json::to_vec(&request).unwrap_or_default())
        }
        _ => body,
    };
    let send = |body: Bytes, target: Option<&str>| {
        let mut request = client.post(upstream).body(body);
        for (name, value) in &parts.headers {
            if name == http::header::HOST || name == http::header::CONTENT_LENGTH {
                continue;
            }
            match target {
                Some(t) if name.as_str() == "x-amz-target" => {
                    request = request.header(name, format!("DynamoDB_20120810.{t}"));
                }
                _ => request = request.header(name, value),
            }
        }
        request.send()
    };
    let transaction = operation == "TransactWriteItems";
    let written = match operation.as_str() {
        "TransactWriteItems" | "PutItem" | "UpdateItem" | "DeleteItem" => {
            written_keys(&operation, &body)
        }
        _ => Vec::new(),
    };
    let before = stored_items(&send, &written).await;
    let Ok(answer) = send(body, None).await else {
        let mut failed = Response::new(Full::new(Bytes::new()));
        *failed.status_mut() = http::StatusCode::BAD_GATEWAY;
        return failed;
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let answer_json = serde_json::from_slice::<Value>(&bytes).ok();
    let consumed = answer_json.as_ref().map(|v| &v["ConsumedCapacity"]);
    let mut capacity_units = consumed.map(capacity).unwrap_or(0.0);
    let mut units_by_part = BTreeMap::new();
    if let Some(consumed) = consumed {
        units_by_part_of(consumed, &mut units_by_part);
    }
    let (mut capacity_units_index_once, mut units_by_part_index_once) =
        (capacity_units, units_by_part.clone());
    if !written.is_empty() && status.is_success() {
        let after = stored_items(&send, &written).await;
        let writes: Vec<Writes> = before
            .iter()
            .zip(&after)
            .map(|(b, a)| Writes::of(b.as_ref(), a.as_ref()))
            .collect();
        if transaction {
            units_by_part = Writes::units(&writes, 2.0, 2.0);
            units_by_part_index_once = Writes::units(&writes, 2.0, 1.0);
            capacity_units = units_by_part.values().sum();
            capacity_units_index_once = units_by_part_index_once.values().sum();
        } else {
            // DynamoDB Local's own figures stand; the rules are checked against them.
            let model = Writes::units(&writes, 1.0, 1.0);
            let of = |m: &BTreeMap<String, f64>, part: &String| m.get(part).copied().unwrap_or(0.0);
            let differs = model
                .keys()
                .chain(units_by_part.keys())
                .any(|part| (of(&model, part) - of(&units_by_part, part)).abs() > 1e-9);
            if differs {
                eprintln!(
                    "bench proxy: {operation}: DynamoDB Local reports {units_by_part:?}, the rules give {model:?}"
                );
            }
        }
    }
    recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Call {
            operation,
            capacity_units,
            units_by_part,
            capacity_units_index_once,
            units_by_part_index_once,
        });
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// The table and key of each item a write request writes: a `TransactWriteItems`'s `Put`s,
/// `Update`s and `Delete`s (not its `ConditionCheck`s), or a `PutItem`'s, `UpdateItem`'s or
/// `DeleteItem`'s one item.
fn written_keys(operation: &str, body: &[u8]) -> Vec<(String, Value)> {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let key_of = |item: &Value| {
        let mut key = serde_json::Map::new();
        for name in [attr::PK, attr::SK] {
            if let Some(v) = item.get(name) {
                key.insert(name.into(), v.clone());
            }
        }
        Value::Object(key)
    };
    let one = |action: &Value, put: bool| {
        let key = if put {
            key_of(&action["Item"])
        } else {
            action["Key"].clone()
        };
        action["TableName"]
            .as_str()
            .map(|table| (table.to_owned(), key))
    };
    match operation {
        "PutItem" => one(&request, true).into_iter().collect(),
        "UpdateItem" | "DeleteItem" => one(&request, false).into_iter().collect(),
        _ => request["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|action| {
                if let Some(put) = action.get("Put") {
                    one(put, true)
                } else {
                    one(
                        action.get("Update").or_else(|| action.get("Delete"))?,
                        false,
                    )
                }
            })
            .collect(),
    }
}

/// Each item as stored (`None` when absent), read with the proxy's own consistent `GetItem`s.
async fn stored_items<F, Fut>(send: &F, keys: &[(String, Value)]) -> Vec<Option<Value>>
where
    F: Fn(Bytes, Option<&str>) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut items = Vec::with_capacity(keys.len());
    for (table, key) in keys {
        let request = serde_json::json!({"TableName": table, "Key": key, "ConsistentRead": true});
        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let item = match send(body, Some("GetItem")).await {
            Ok(answer) => answer
                .json::<Value>()
                .await
                .ok()
                .map(|v| v["Item"].clone())
                .filter(Value::is_object),
            Err(_) => None,
        };
        items.push(item);
    }
    items
}

/// The writes one item of a request costs, in KB (each rounded up, at least 1), not doubled:
/// the table's and each index's ([`INDEXES`]).
#[derive(Debug, Clone, PartialEq)]
struct Writes {
    table: u64,
    indexes: Vec<(&'static str, u64)>,
}

impl Writes {
    /// What writing an item that was `before` and is `after` costs (`None`: absent).
    fn of(before: Option<&Value>, after: Option<&Value>) -> Self {
        let size = |i: Option<&Value>| i.map_or(0, item_size);
        let kb = |bytes: usize| bytes.div_ceil(1024).max(1) as u64;
        let (b, a) = (size(before), size(after));
        let indexes = INDEXES
            .iter()
            .map(|&(name, pk, sk)| {
                let key = |i: Option<&Value>| {
                    let i = i?;
                    Some((i.get(pk)?.clone(), i.get(sk)?.clone()))
                };
                let units = match (key(before), key(after)) {
                    (None, None) => 0,
                    // Leaves the index: the old entry's delete.
                    (Some(_), None) => kb(b),
                    // Enters it: the new entry's put.
                    (None, Some(_)) => kb(a),
                    // Moves in it: a delete and a put.
                    (Some(old), Some(new)) if old != new => kb(b) + kb(a),
                    // Stays: rewritten when anything projected (everything) changed.
                    (Some(_), Some(_)) if before != after => kb(b.max(a)),
                    (Some(_), Some(_)) => 0,
                };
                (name, units)
            })
            .collect();
        Self {
            table: kb(b.max(a)),
            indexes,
        }
    }

    /// The units of `writes` by part: the table's KB times `table_factor` (2 in a transaction,
    /// 1 for a plain write), each index's times `index_factor`. Parts with no unit are left
    /// out.
    fn units(writes: &[Writes], table_factor: f64, index_factor: f64) -> BTreeMap<String, f64> {
        let mut parts = BTreeMap::new();
        for w in writes {
            *parts.entry("table".to_owned()).or_insert(0.0) += table_factor * w.table as f64;
            for &(name, units) in &w.indexes {
                if units > 0 {
                    *parts.entry(name.to_owned()).or_insert(0.0) += index_factor * units as f64;
                }
            }
        }
        parts
    }
}

/// Whether an operation writes (its units are write units; every other one's are reads).
pub fn is_write(operation: &str) -> bool {
    matches!(
        operation,
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
    )
}

/// An item's stored size as DynamoDB counts it ([`item_size`]'s rules, on the SDK's form).
pub fn stored_bytes(item: &conversations::store::item::Item) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue;
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(t) => t.len(),
            AttributeValue::N(t) => number_size(t),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + value(i)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>()
            }
            AttributeValue::Ss(items) | AttributeValue::Ns(items) => {
                items.iter().map(String::len).sum()
            }
            AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// A number's size: half its significant digits, rounded up, plus one.
fn number_size(text: &str) -> usize {
    let digits = text.trim_start_matches('-').replace('.', "");
    digits.trim_start_matches('0').len().div_ceil(2) + 1
}

/// An item's size as DynamoDB counts it: each attribute's name and value (a number: half its
/// digits, rounded up, plus one; a list or map: 3 bytes, plus 1 per element and its size).
fn item_size(item: &serde_json::Value) -> usize {
    fn value(v: &serde_json::Value) -> usize {
        let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
            return 0;
        };
        match (kind.as_str(), inner) {
            ("S", serde_json::Value::String(t)) => t.len(),
            ("N", serde_json::Value::String(t)) => number_size(t),
            ("B", serde_json::Value::String(t)) => t.len() * 3 / 4,
            ("BOOL" | "NULL", _) => 1,
            ("L", serde_json::Value::Array(items)) => {
                3 + items.iter().map(|i| 1 + value(i)).sum::<usize>()
            }
            ("M", serde_json::Value::Object(m)) => {
                3 + m.iter().map(|(k, v)| 1 + k.len() + value(v)).sum::<usize>()
            }
            ("SS" | "NS" | "BS", serde_json::Value::Array(items)) => {
                items.iter().map(|i| i.as_str().map_or(0, str::len)).sum()
            }
            _ => 0,
        }
    }
    item.as_object()
        .map_or(0, |o| o.iter().map(|(k, v)| k.len() + value(v)).sum())
}

/// Adds a `ConsumedCapacity`'s units by part: the table's, and each index's.
fn units_by_part_of(
    consumed: &serde_json::Value,
    into: &mut std::collections::BTreeMap<String, f64>,
) {
    match consumed {
        serde_json::Value::Array(items) => items.iter().for_each(|c| units_by_part_of(c, into)),
        serde_json::Value::Object(o) => {
            let units = |v: &serde_json::Value| v["CapacityUnits"].as_f64().unwrap_or(0.0);
            if let Some(table) = o.get("Table") {
                *into.entry("table".into()).or_default() += units(table);
            }
            if let Some(serde_json::Value::Object(indexes)) = o.get("GlobalSecondaryIndexes") {
                for (name, index) in indexes {
                    *into.entry(name.clone()).or_default() += units(index);
                }
            }
        }
        _ => {}
    }
}

/// The capacity units of a `ConsumedCapacity` (one object, or a list of them for transactions).
fn capacity(consumed: &serde_json::Value) -> f64 {
    match consumed {
        serde_json::Value::Array(items) => items.iter().map(capacity).sum(),
        serde_json::Value::Object(o) => o
            .get("CapacityUnits")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_sizes_follow_dynamodb_s_rules() {
        // "pk" 2 + "abc" 3; "n" 1 + 12345 (5 digits: 3 + 1); "l" 1 + 3 + (1 + 1) + (1 + 2).
        let item = json!({"pk": {"S": "abc"}, "n": {"N": "12345"}, "l": {"L": [{"BOOL": true}, {"S": "xy"}]}});
        assert_eq!(item_size(&item), 5 + 5 + 9);
    }

    #[test]
    fn a_transaction_s_written_items_are_its_puts_updates_and_deletes() {
        let body = json!({"TransactItems": [
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "C"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "M#1"}, "x": {"S": "y"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "Z"}}}}
        ]});
        let keys = written_keys(
            "TransactWriteItems",
            &serde_json::to_vec(&body).expect("json"),
        );
        assert_eq!(
            keys,
            [
                ("t".to_owned(), json!({"pk": {"S": "a"}, "sk": {"S": "C"}})),
                (
                    "t".to_owned(),
                    json!({"pk": {"S": "a"}, "sk": {"S": "M#1"}})
                ),
            ]
        );
    }

    #[test]
    fn a_plain_write_s_item_is_its_key_or_its_item_s_key() {
        let put = json!({"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "C"}, "x": {"S": "y"}}});
        let update = json!({"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"S": "B"}}});
        let key = |sk: &str| vec![("t".to_owned(), json!({"pk": {"S": "a"}, "sk": {"S": sk}}))];
        let bytes = |v: &Value| serde_json::to_vec(v).expect("json");
        assert_eq!(written_keys("PutItem", &bytes(&put)), key("C"));
        assert_eq!(written_keys("UpdateItem", &bytes(&update)), key("B"));
        assert_eq!(written_keys("DeleteItem", &bytes(&update)), key("B"));
    }

    /// An item of about `kb` KB in the indexes named by their key attributes.
    fn item(kb: usize, keys: &[(&str, &str)]) -> Value {
        let mut item = json!({"pk": {"S": "p"}, "sk": {"S": "C"}});
        for (k, v) in keys {
            item[*k] = json!({"S": v});
        }
        let pad = (kb * 1024).saturating_sub(item_size(&item) + 3);
        item["pad"] = json!({"S": "x".repeat(pad)});
        item
    }

    #[test]
    fn an_index_is_written_per_kb_when_the_item_enters_leaves_moves_or_changes_in_it() {
        let owner = [("gsi1pk", "o"), ("gsi1sk", "1#a")];
        let both = [
            ("gsi1pk", "o"),
            ("gsi1sk", "1#a"),
            ("gsi2pk", "o"),
            ("gsi2sk", "1#a"),
        ];
        let moved = [
            ("gsi1pk", "o"),
            ("gsi1sk", "1#a"),
            ("gsi2pk", "o"),
            ("gsi2sk", "2#a"),
        ];
        let of = |b: Option<&Value>, a: Option<&Value>| Writes::of(b, a);
        let w = |table, owner, activity| Writes {
            table,
            indexes: vec![("by-owner", owner), ("by-activity", activity)],
        };
        // A put of a 3 KB head: in both indexes.
        assert_eq!(of(None, Some(&item(3, &both))), w(3, 3, 3));
        // A body (by-owner only) put.
        assert_eq!(of(None, Some(&item(2, &owner))), w(2, 2, 0));
        // An append: 1 KB head moved in by-activity (delete + put), rewritten in by-owner.
        assert_eq!(
            of(Some(&item(1, &both)), Some(&item(1, &moved))),
            w(1, 1, 2)
        );
        // A purge: the keys removed, the old entries deleted (their size).
        assert_eq!(of(Some(&item(2, &both)), Some(&item(1, &[]))), w(2, 2, 2));
        // Nothing changed: no index write; an item in no index: none either.
        assert_eq!(of(Some(&item(1, &both)), Some(&item(1, &both))), w(1, 0, 0));
        assert_eq!(of(None, Some(&item(4, &[]))), w(4, 0, 0));
    }

    #[test]
    fn a_transaction_s_index_writes_are_billed_twice_or_once() {
        let head = [
            ("gsi1pk", "o"),
            ("gsi1sk", "1#a"),
            ("gsi2pk", "o"),
            ("gsi2sk", "1#a"),
        ];
        let create = [
            Writes::of(None, Some(&item(1, &head))),
            Writes::of(None, Some(&item(5, &[("gsi1pk", "o"), ("gsi1sk", "1#a#")]))),
        ];
        let parts = |t: f64, o: f64, a: f64| {
            BTreeMap::from([
                ("table".to_owned(), t),
                ("by-owner".to_owned(), o),
                ("by-activity".to_owned(), a),
            ])
        };
        assert_eq!(Writes::units(&create, 2.0, 2.0), parts(12.0, 12.0, 2.0));
        assert_eq!(Writes::units(&create, 2.0, 1.0), parts(12.0, 6.0, 1.0));
    }
}
