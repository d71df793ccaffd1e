//! A recording proxy in front of DynamoDB Local: it asks every request for its consumed capacity
//! (`ReturnConsumedCapacity: INDEXES`) and keeps, per request, the operation and the capacity
//! units DynamoDB Local reported. The functions under test reach it through
//! `AWS_ENDPOINT_URL_DYNAMODB`; DynamoDB Local does not check signatures, so the rewritten body
//! is accepted.
//!
//! One correction: DynamoDB Local (3.x) under-reports a transaction's table units — it counts
//! one item of a `TransactWriteItems`, not each (a batch of four puts reports what one does). So
//! the table units of a transaction are computed here as DynamoDB bills them: 2 per KB (rounded
//! up) of each item written, the larger of its sizes before and after, read around the
//! transaction with reads of the proxy's own (not recorded). The index units stay DynamoDB
//! Local's (right for the service's transactions, which write one indexed item each).

use std::sync::{Arc, Mutex};

use conversations::store::item::attr;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// One DynamoDB request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    /// The operation (`GetItem`, `TransactWriteItems`, ...).
    pub operation: String,
    /// The capacity units DynamoDB Local reported (table and indexes).
    pub capacity_units: f64,
    /// The same units by where they were spent: `table`, or an index's name.
    pub units_by_part: std::collections::BTreeMap<String, f64>,
}

/// The requests and capacity units of repeated invocations, one `add` per invocation.
#[derive(Debug, Default)]
pub struct Tally {
    requests: Vec<usize>,
    units: Vec<f64>,
    by_part: std::collections::BTreeMap<String, f64>,
    operations: Vec<String>,
}

impl Tally {
    /// Counts one invocation's calls.
    pub fn add(&mut self, calls: Vec<Call>) {
        self.requests.push(calls.len());
        self.units
            .push(calls.iter().map(|c| c.capacity_units).sum::<f64>());
        for call in &calls {
            for (part, u) in &call.units_by_part {
                *self.by_part.entry(part.clone()).or_default() += u;
            }
        }
        self.operations = calls.into_iter().map(|c| c.operation).collect();
    }

    /// `requests_min`, `requests_max`, the last invocation's `operations`, and the mean
    /// `capacity_units` and `capacity_units_by_part` per invocation.
    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let n = self.units.len().max(1) as f64;
        // (+ 0.0: an empty sum is -0.0.)
        let units = self.units.iter().sum::<f64>() / n + 0.0;
        let by_part: serde_json::Map<String, serde_json::Value> = self
            .by_part
            .iter()
            .map(|(part, u)| (part.clone(), serde_json::json!(crate::stats::round(u / n))))
            .collect();
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
        row.insert("capacity_units".into(), crate::stats::round(units).into());
        row.insert("capacity_units_by_part".into(), by_part.into());
        row
    }
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
    let written = if operation == "TransactWriteItems" {
        written_keys(&body)
    } else {
        Vec::new()
    };
    let before = item_sizes(&send, &written).await;
    let Ok(answer) = send(body, None).await else {
        let mut failed = Response::new(Full::new(Bytes::new()));
        *failed.status_mut() = http::StatusCode::BAD_GATEWAY;
        return failed;
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let answer_json = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
    let consumed = answer_json.as_ref().map(|v| &v["ConsumedCapacity"]);
    let capacity_units = consumed.map(capacity).unwrap_or(0.0);
    let mut units_by_part = std::collections::BTreeMap::new();
    if let Some(consumed) = consumed {
        units_by_part_of(consumed, &mut units_by_part);
    }
    let mut capacity_units = capacity_units;
    if !written.is_empty() && status.is_success() {
        let after = item_sizes(&send, &written).await;
        let table: f64 = before
            .iter()
            .zip(&after)
            .map(|(b, a)| 2.0 * (*b.max(a)).div_ceil(1024).max(1) as f64)
            .sum();
        let reported = units_by_part.insert("table".into(), table).unwrap_or(0.0);
        capacity_units += table - reported;
    }
    recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Call {
            operation,
            capacity_units,
            units_by_part,
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

/// The table and key of each item a `TransactWriteItems` request writes (its `Put`s, `Update`s
/// and `Delete`s).
fn written_keys(body: &[u8]) -> Vec<(String, serde_json::Value)> {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let key_of = |item: &serde_json::Value| {
        let mut key = serde_json::Map::new();
        for name in [attr::PK, attr::SK] {
            if let Some(v) = item.get(name) {
                key.insert(name.into(), v.clone());
            }
        }
        serde_json::Value::Object(key)
    };
    let mut keys = Vec::new();
    for action in request["TransactItems"].as_array().into_iter().flatten() {
        let (table, key) = if let Some(put) = action.get("Put") {
            (&put["TableName"], key_of(&put["Item"]))
        } else if let Some(write) = action.get("Update").or_else(|| action.get("Delete")) {
            (&write["TableName"], write["Key"].clone())
        } else {
            continue;
        };
        if let Some(table) = table.as_str() {
            keys.push((table.to_owned(), key));
        }
    }
    keys
}

/// The stored size of each item (0 when absent), read with the proxy's own `GetItem`s.
async fn item_sizes<F, Fut>(send: &F, keys: &[(String, serde_json::Value)]) -> Vec<usize>
where
    F: Fn(Bytes, Option<&str>) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let mut sizes = Vec::with_capacity(keys.len());
    for (table, key) in keys {
        let request = serde_json::json!({"TableName": table, "Key": key, "ConsistentRead": true});
        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let item = match send(body, Some("GetItem")).await {
            Ok(answer) => answer
                .json::<serde_json::Value>()
                .await
                .ok()
                .map(|v| v["Item"].clone()),
            Err(_) => None,
        };
        sizes.push(item.as_ref().map_or(0, item_size));
    }
    sizes
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
            ("N", serde_json::Value::String(t)) => {
                let digits = t.trim_start_matches('-').replace('.', "");
                digits.trim_start_matches('0').len().div_ceil(2) + 1
            }
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
        let keys = written_keys(&serde_json::to_vec(&body).expect("json"));
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
}
