//! A fault-injecting proxy in front of DynamoDB Local. Requests pass through unless a fault was
//! injected for their operation: then the proxy answers an error without forwarding, forwards
//! and loses DynamoDB's answer (the write applied; the caller cannot know), or hangs past the
//! SDK's timeouts, or holds DynamoDB's answer a while. Every request's operation is recorded, with what the proxy did to it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// What happens to one DynamoDB request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered with this HTTP status and DynamoDB error type; DynamoDB never sees it.
    Error(u16, &'static str),
    /// Forwarded (so a write applies), then answered with this status and error type instead of
    /// DynamoDB's answer.
    LoseAnswer(u16, &'static str),
    /// Never answered; DynamoDB never sees it.
    Hang,
    /// Forwarded (so a write applies), then never answered.
    ForwardThenHang,
    /// Forwarded at once, and DynamoDB's answer held for this many milliseconds (a slow network:
    /// what the caller learns is already that old when it arrives).
    Delay(u64),
    /// Forwarded (so a write applies), then held until the test opens the gate
    /// ([`FaultProxy::at_gate`], [`FaultProxy::open_gate`]), then answered with this status and
    /// error type instead of DynamoDB's answer: what the test writes meanwhile lands between
    /// the write and the SDK's retry of it.
    LoseAnswerAtGate(u16, &'static str),
}

/// Where a [`Fault::LoseAnswerAtGate`] request waits: told when one arrives, opened by the test.
#[derive(Default)]
struct Gate {
    arrived: tokio::sync::Notify,
    open: tokio::sync::Notify,
}

/// Throttling, as DynamoDB answers it when a partition or table is over its throughput.
pub const THROTTLED: Fault = Fault::Error(400, "ProvisionedThroughputExceededException");
/// A DynamoDB server error.
pub const SERVER_ERROR: Fault = Fault::Error(500, "InternalServerError");

/// One request the proxy saw: its operation (`GetItem`, ...) and the fault it met, if any.
pub type Seen = (String, Option<Fault>);

#[derive(Default)]
struct State {
    plan: Vec<(String, VecDeque<Fault>)>,
    seen: Vec<Seen>,
}

impl State {
    fn next_fault(&mut self, operation: &str) -> Option<Fault> {
        let fault = self
            .plan
            .iter_mut()
            .find(|(op, faults)| (op == operation || op == "*") && !faults.is_empty())
            .and_then(|(_, faults)| faults.pop_front());
        self.seen.push((operation.to_owned(), fault));
        fault
    }
}

/// A running proxy; dropping it stops it and every connection it holds.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
    gate: Arc<Gate>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port in front of `AWS_ENDPOINT_URL_DYNAMODB`.
    pub async fn start() -> Self {
        let upstream = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .expect("AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local) is set by make test");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let gate = Arc::new(Gate::default());
        let client = reqwest::Client::new();
        let (shared, shared_gate) = (state.clone(), gate.clone());
        let server = crate::serve::spawn(listener, move |req| {
            let (client, upstream, state) = (client.clone(), upstream.clone(), shared.clone());
            let gate = shared_gate.clone();
            async move { handle(&client, &upstream, &state, &gate, req).await }
        });
        Self {
            endpoint,
            state,
            gate,
            server,
        }
    }

    /// Waits until a [`Fault::LoseAnswerAtGate`] request was forwarded (its write applied) and
    /// waits at the gate.
    pub async fn at_gate(&self) {
        self.gate.arrived.notified().await;
    }

    /// Lets the request waiting at the gate go on (its answer lost).
    pub fn open_gate(&self) {
        self.gate.open.notify_one();
    }

    /// The endpoint to give the SDK.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The next `times` requests of `operation` (`"*"`: any) meet `fault`; after them, requests
    /// pass again. Plans are consulted in the order they were made.
    pub fn inject(&self, operation: &str, fault: Fault, times: usize) {
        self.lock().plan.push((
            operation.to_owned(),
            std::iter::repeat_n(fault, times).collect(),
        ));
    }

    /// Every request seen since the last call, emptied.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut self.lock().seen)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn answer(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

fn error(status: u16, error_type: &str) -> Response<Full<Bytes>> {
    let body = format!(
        "{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{error_type}\",\"message\":\"injected by the fault proxy\"}}"
    );
    answer(status, Bytes::from(body))
}

async fn handle(
    client: &reqwest::Client,
    upstream: &str,
    state: &Mutex<State>,
    gate: &Gate,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
    let fault = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .next_fault(&operation);
    match fault {
        Some(Fault::Error(status, error_type)) => return error(status, error_type),
        Some(Fault::Hang) => std::future::pending().await,
        None
        | Some(
            Fault::LoseAnswer(..)
            | Fault::ForwardThenHang
            | Fault::Delay(_)
            | Fault::LoseAnswerAtGate(..),
        ) => {}
    }
    let forwarded = forward(client, upstream, req).await;
    match fault {
        Some(Fault::LoseAnswer(status, error_type)) => error(status, error_type),
        Some(Fault::LoseAnswerAtGate(status, error_type)) => {
            gate.arrived.notify_one();
            gate.open.notified().await;
            error(status, error_type)
        }
        Some(Fault::ForwardThenHang) => std::future::pending().await,
        Some(Fault::Delay(ms)) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            forwarded
        }
        _ => forwarded,
    }
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(500, "ProxyReadError");
    };
    let mut request = client.post(upstream).body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(bytes) => answer(status, bytes),
                Err(_) => error(500, "ProxyReadError"),
            }
        }
        Err(_) => error(500, "ProxyForwardError"),
    }
}
