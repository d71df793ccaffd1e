//! A small HTTP client for the black-box tests (tests/tests/e2e.rs), which run against either
//! stack:
//!
//! - **local**: `API_BASE_URL` (cargo lambda watch, started by `make test`); callers are
//!   `X-Owner-Id` headers with fresh random owners;
//! - **staging**: `STAGING_API_URL` with `STAGING_TOKEN` and `STAGING_TOKEN_2`, bearer JWTs of two
//!   different users of a deployed stack (`make staging-test`), and optionally
//!   `STAGING_DELEGATED_TOKEN`, a token granting the delegation scope (a backend's service token).

use serde_json::Value;

/// Where the black-box tests send requests, and as whom.
#[derive(Debug, Clone)]
pub struct Target {
    /// The base URL, without a trailing slash (e.g. `https://abc.execute-api.eu-west-1.amazonaws.com/prod`).
    pub base: String,
    tokens: Option<(String, String)>,
    delegated: Option<String>,
}

/// Who sends a request.
#[derive(Debug, Clone)]
pub struct Caller {
    header: (&'static str, String),
    on_behalf_of: Option<String>,
}

impl Caller {
    fn new(name: &'static str, value: String) -> Self {
        Self {
            header: (name, value),
            on_behalf_of: None,
        }
    }

    /// Adds this caller's identity to a request.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let request = request.header(self.header.0, &self.header.1);
        match &self.on_behalf_of {
            Some(user) => request.header("x-on-behalf-of", user),
            None => request,
        }
    }

    /// The same caller acting for `user` (`X-On-Behalf-Of`).
    pub fn acting_for(&self, user: &str) -> Self {
        Self {
            header: self.header.clone(),
            on_behalf_of: Some(user.to_owned()),
        }
    }

    /// A typed client of the API at `base` (`conversations-client`) calling as this caller.
    pub fn client(&self, base: &str) -> conversations_client::Client {
        self.client_builder(base)
            .build()
            .expect("a client of the API under test")
    }

    /// A builder of [`Caller::client`], for other settings (retries).
    pub fn client_builder(&self, base: &str) -> conversations_client::ClientBuilder {
        let builder = conversations_client::Client::builder(base);
        let builder = match self.header.1.strip_prefix("Bearer ") {
            Some(token) if self.header.0 == "authorization" => builder.bearer(token),
            _ => builder.owner(&self.header.1),
        };
        match &self.on_behalf_of {
            Some(user) => builder.on_behalf_of(user),
            None => builder,
        }
    }

    /// The environment that makes the `conversations` command line call as this caller.
    pub fn cli_env(&self, base: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![("CONVERSATIONS_URL", base.to_owned())];
        match self.header.1.strip_prefix("Bearer ") {
            Some(token) if self.header.0 == "authorization" => {
                env.push(("CONVERSATIONS_TOKEN", token.to_owned()));
            }
            _ => env.push(("CONVERSATIONS_OWNER", self.header.1.clone())),
        }
        env
    }

    /// The `X-Owner-Id` of a local caller (none on staging, where the `sub` is the token's).
    pub fn local_id(&self) -> Option<&str> {
        (self.header.0 == "x-owner-id").then_some(self.header.1.as_str())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Target {
    /// The staging stack when `STAGING_API_URL` is set (both tokens are then required), else the
    /// local one at `API_BASE_URL`, else none.
    pub fn from_env() -> Option<Self> {
        if let Some(url) = env("STAGING_API_URL") {
            let token = |name: &str| {
                env(name).unwrap_or_else(|| panic!("{name} must be set with STAGING_API_URL"))
            };
            return Some(Self {
                base: url.trim_end_matches('/').to_owned(),
                tokens: Some((token("STAGING_TOKEN"), token("STAGING_TOKEN_2"))),
                delegated: env("STAGING_DELEGATED_TOKEN"),
            });
        }
        env("API_BASE_URL").map(|url| Self {
            base: url.trim_end_matches('/').to_owned(),
            tokens: None,
            delegated: None,
        })
    }

    /// A caller allowed to act for end users: locally any caller (`CONVERSATIONS_AUTH=header`
    /// always allows `X-On-Behalf-Of`); on staging the holder of `STAGING_DELEGATED_TOKEN`, if
    /// set (a token granting the delegation scope).
    pub fn delegating_caller(&self) -> Option<Caller> {
        match (&self.tokens, &self.delegated) {
            (None, _) => Some(Caller::new("x-owner-id", crate::owner())),
            (Some(_), Some(token)) => Some(Caller::new("authorization", format!("Bearer {token}"))),
            (Some(_), None) => None,
        }
    }

    /// Whether this is a deployed stage (JWT identities, API Gateway in front).
    pub fn is_staging(&self) -> bool {
        self.tokens.is_some()
    }

    /// Two different callers: the two token holders on staging, two fresh owners locally.
    pub fn two_callers(&self) -> (Caller, Caller) {
        match &self.tokens {
            Some((a, b)) => (
                Caller::new("authorization", format!("Bearer {a}")),
                Caller::new("authorization", format!("Bearer {b}")),
            ),
            None => (
                Caller::new("x-owner-id", crate::owner()),
                Caller::new("x-owner-id", crate::owner()),
            ),
        }
    }

    /// The path the base URL carries (a named stage: `/prod`), which `Location` headers keep.
    pub fn path_prefix(&self) -> &str {
        let after_scheme = self.base.split_once("://").map_or(&*self.base, |(_, r)| r);
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    }
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

/// Sends one request as `caller`.
pub async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    caller: &Caller,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> HttpRes {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = caller.apply(client.request(method, url));
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
