//! A proxy in front of the API under test (cargo lambda watch, or a stage) that loses answers
//! the ways a network does, so that a client's retries meet its own first attempt:
//!
//! - [`Fault::LoseAnswer`]: forwarded (a write applies), then answered `503 UNAVAILABLE` with
//!   `Retry-After: 0` instead of the service's answer — a gateway that timed out after the
//!   function wrote;
//! - [`Fault::Close`]: forwarded, and the connection closed at once without an answer: the
//!   client's retry races its first attempt at the service;
//! - [`Fault::Hold`]: forwarded at once, its answer held past the client's timeout: the retry
//!   meets a first attempt that has applied;
//! - [`Fault::Late`]: held before it is forwarded: the retry that the client sends after its
//!   timeout reaches the service first, and the first attempt arrives after it.
//!
//! A request is forwarded on a task of its own, so it reaches the service even when the client
//! gave up on it. Every request is recorded with the fault it met and the status the service
//! answered it with, so a test can count what a client sent and see what the service did.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What happens to a request that a [`Rule`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded; the client gets `503 UNAVAILABLE` (`Retry-After: 0`) instead of the answer.
    LoseAnswer,
    /// Forwarded; the connection is closed at once, without an answer.
    Close,
    /// Forwarded at once; the answer is sent only after this long.
    Hold(Duration),
    /// Forwarded only after this long (then answered, if the client still listens).
    Late(Duration),
}

/// Which requests meet a fault: those with a method (and a path ending), after the first
/// `skip` of them, `times` of them.
#[derive(Debug, Clone)]
pub struct Rule {
    method: String,
    path_ending: Option<String>,
    skip: usize,
    times: usize,
    fault: Fault,
}

impl Rule {
    /// The next request with `method` meets `fault`.
    pub fn new(method: &str, fault: Fault) -> Self {
        Self {
            method: method.to_owned(),
            path_ending: None,
            skip: 0,
            times: 1,
            fault,
        }
    }

    /// Only requests whose path (without its query) ends with `ending`.
    pub fn path_ending(mut self, ending: &str) -> Self {
        self.path_ending = Some(ending.to_owned());
        self
    }

    /// The first `n` requests that match go through untouched.
    pub fn after(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    /// `n` requests meet the fault (default 1).
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method == method
            && self
                .path_ending
                .as_deref()
                .is_none_or(|ending| path.ends_with(ending))
    }
}

/// A request the proxy received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The fault it met, if any.
    pub fault: Option<Fault>,
    /// The status the service answered it with, once it did (`None` while in flight, or if the
    /// service could not be reached).
    pub status: Option<u16>,
    /// When the proxy received it.
    pub at: Instant,
}

impl Seen {
    /// The `requestId` query parameter, when there is one.
    pub fn request_id(&self) -> Option<&str> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("requestId="))
    }

    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    seen: Vec<Seen>,
    /// Requests forwarded whose answer has not come back yet.
    in_flight: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running proxy; dropping it stops it.
pub struct ApiProxy {
    base: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The handler's verdict: an answer, or a connection to close without one.
struct CloseWithoutAnswer;

impl std::fmt::Display for CloseWithoutAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed by the API proxy without an answer")
    }
}

impl std::fmt::Debug for CloseWithoutAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for CloseWithoutAnswer {}

impl ApiProxy {
    /// A proxy on a free loopback port in front of `upstream` (a base URL).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state: Shared = Arc::default();
        let (client, upstream, shared) = (
            reqwest::Client::new(),
            upstream.trim_end_matches('/').to_owned(),
            state.clone(),
        );
        // The accept loop of `crate::serve`, but a handler may also close a connection without
        // answering (hyper closes it when the service fails).
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (client, upstream, state) = (client.clone(), upstream.clone(), shared.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (client, upstream, state) =
                            (client.clone(), upstream.clone(), state.clone());
                        async move { handle(client, upstream, state, req).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self {
            base,
            state,
            server,
        }
    }

    /// The base URL to give a client.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Requests that `rule` picks meet its fault (rules are tried in the order given; the first
    /// that matches and is not used up decides).
    pub fn inject(&self, rule: Rule) {
        lock(&self.state).rules.push(rule);
    }

    /// The next `times` requests with `method` are forwarded and their answers lost (503).
    pub fn lose_answers(&self, method: &str, times: usize) {
        self.inject(Rule::new(method, Fault::LoseAnswer).times(times));
    }

    /// Every request seen so far: (method, path and query).
    pub fn seen(&self) -> Vec<(String, String)> {
        lock(&self.state)
            .seen
            .iter()
            .map(|s| (s.method.clone(), s.target.clone()))
            .collect()
    }

    /// Every request seen so far, with its fault and the service's status.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// Waits until every request forwarded so far has its answer from the service (at most
    /// 30 s), so that what a test reads afterwards includes every attempt's effect.
    pub async fn settled(&self) {
        let started = Instant::now();
        while lock(&self.state).in_flight > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "requests still in flight through the API proxy after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn unavailable() -> Response<Full<Bytes>> {
    let body = r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"injected by the API proxy","code":"UNAVAILABLE"}"#;
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/problem+json"),
    );
    headers.insert("retry-after", http::HeaderValue::from_static("0"));
    response
}

async fn handle(
    client: reqwest::Client,
    upstream: String,
    state: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, CloseWithoutAnswer> {
    let method = req.method().as_str().to_owned();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let (index, fault) = {
        let mut state = lock(&state);
        let path = target.split('?').next().unwrap_or_default().to_owned();
        let mut fault = None;
        if let Some(rule) = state
            .rules
            .iter_mut()
            .find(|r| r.times > 0 && r.matches(&method, &path))
        {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else {
                rule.times -= 1;
                fault = Some(rule.fault);
            }
        }
        state.seen.push(Seen {
            method: method.clone(),
            target: target.clone(),
            fault,
            status: None,
            at: Instant::now(),
        });
        state.in_flight += 1;
        (state.seen.len() - 1, fault)
    };
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).ok();
    // Forwarded on a task of its own: it reaches the service even if the client has gone.
    let forwarded = tokio::spawn({
        let state = state.clone();
        async move {
            if let Some(Fault::Late(wait)) = fault {
                tokio::time::sleep(wait).await;
            }
            let answer = forward(&client, &upstream, &method, &target, &parts.headers, body).await;
            let mut state = lock(&state);
            state.in_flight -= 1;
            state.seen[index].status = answer.as_ref().map(|a| a.status().as_u16());
            answer
        }
    });
    match fault {
        Some(Fault::Close) => return Err(CloseWithoutAnswer),
        Some(Fault::Hold(wait)) => {
            let answer = forwarded.await.ok().flatten();
            tokio::time::sleep(wait).await;
            return Ok(answer.unwrap_or_else(unavailable));
        }
        _ => {}
    }
    let answer = forwarded.await.ok().flatten();
    match (fault, answer) {
        (Some(Fault::LoseAnswer), _) | (_, None) => Ok(unavailable()),
        (_, Some(answer)) => Ok(answer),
    }
}

/// The service's answer to the request, or `None` when it could not be had.
async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    method: &str,
    target: &str,
    headers: &http::HeaderMap,
    body: Option<Bytes>,
) -> Option<Response<Full<Bytes>>> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).ok()?;
    let mut request = client
        .request(method, format!("{upstream}{target}"))
        .body(body?);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.ok()?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.ok()?;
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response.headers_mut().append(name, value.clone());
        }
    }
    Some(response)
}
