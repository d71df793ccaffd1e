//! A small HTTP client for the black-box tests against a running stack (cargo lambda watch).

use serde_json::Value;

/// Where the black-box tests send requests, from `API_BASE_URL`.
pub fn base_url() -> Option<String> {
    std::env::var("API_BASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// A response over HTTP.
#[derive(Debug)]
pub struct HttpRes {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl HttpRes {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request as `owner`.
pub async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    owner: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> HttpRes {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url).header("x-owner-id", owner);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    HttpRes {
        status,
        headers,
        body,
    }
}
