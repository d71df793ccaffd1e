//! A recording proxy in front of DynamoDB Local: it asks every request for its consumed capacity
//! (`ReturnConsumedCapacity: INDEXES`) and keeps, per request, the operation and the capacity
//! units DynamoDB Local reported. The functions under test reach it through
//! `AWS_ENDPOINT_URL_DYNAMODB`; DynamoDB Local does not check signatures, so the rewritten body
//! is accepted.

use std::sync::{Arc, Mutex};

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
    let mut upstream_request = client.post(upstream).body(body);
    for (name, value) in &parts.headers {
        if name != http::header::HOST && name != http::header::CONTENT_LENGTH {
            upstream_request = upstream_request.header(name, value);
        }
    }
    let Ok(answer) = upstream_request.send().await else {
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
