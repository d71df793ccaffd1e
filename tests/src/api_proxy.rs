//! A proxy in front of the API under test (cargo lambda watch, or a stage) that can lose
//! answers: the next `n` requests of a method are forwarded (so a write applies) and then
//! answered `503 UNAVAILABLE` with `Retry-After: 0` instead of the service's answer — what a
//! client sees when a gateway times out after the function wrote. Every request is recorded, so
//! a test can count what a client sent.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    /// (method, answers still to lose).
    lose: Vec<(String, usize)>,
    /// (method, path and query) of every request.
    seen: Vec<(String, String)>,
}

/// A running proxy; dropping it stops it.
pub struct ApiProxy {
    base: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl ApiProxy {
    /// A proxy on a free loopback port in front of `upstream` (a base URL).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(State::default()));
        let (client, upstream, shared) = (
            reqwest::Client::new(),
            upstream.trim_end_matches('/').to_owned(),
            state.clone(),
        );
        let server = crate::serve::spawn(listener, move |req| {
            let (client, upstream, state) = (client.clone(), upstream.clone(), shared.clone());
            async move { handle(&client, &upstream, &state, req).await }
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

    /// The next `times` requests with `method` are forwarded and their answers lost (503).
    pub fn lose_answers(&self, method: &str, times: usize) {
        self.lock().lose.push((method.to_owned(), times));
    }

    /// Every request seen so far: (method, path and query).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
    client: &reqwest::Client,
    upstream: &str,
    state: &Mutex<State>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let lose = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.seen.push((method.clone(), target.clone()));
        match state.lose.iter_mut().find(|(m, n)| *m == method && *n > 0) {
            Some((_, n)) => {
                *n -= 1;
                true
            }
            None => false,
        }
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return unavailable();
    };
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return unavailable();
    };
    let mut request = client
        .request(method, format!("{upstream}{target}"))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return unavailable();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(bytes) = answer.bytes().await else {
        return unavailable();
    };
    if lose {
        return unavailable();
    }
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
