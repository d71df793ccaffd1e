//! The HTTP boundary: extracting what a request carries, rendering replies and RFC 9457
//! problems, and the one wrapper every handler runs in.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures_util::FutureExt;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::app::{App, AuthMode, Config};
use crate::domain::body;
use crate::domain::conversation::Conversation;
use crate::domain::delegation::{self, rendered_scope_words, scope_words};
use crate::domain::etag::{IfMatch, Version};
use crate::domain::field_mask::Fields;
use crate::domain::ids::{ConversationId, Owner, RequestId};
use crate::domain::message::Message;
use crate::domain::rendering::{Render, Whole};
use crate::error::ApiError;
use crate::routes;
use crate::store::Appended;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The default page size.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page size; larger requests are cut to it.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Everything a handler may read from a request, extracted once.
#[derive(Debug)]
pub struct Call {
    /// The Lambda request id, echoed as `x-request-id` and in problems.
    pub request_id: String,
    method: String,
    path: String,
    base: String,
    owner: Result<Owner, ApiError>,
    path_id: Option<String>,
    path_order: Option<String>,
    query: Vec<(String, String)>,
    content_type: Option<String>,
    if_match: Option<String>,
    idempotency_key: Option<String>,
    body: Vec<u8>,
}

impl Call {
    fn new(config: &Config, req: Request) -> Self {
        let request_id = req
            .lambda_context_ref()
            .map(|c| c.request_id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let owner = owner(config, &req);
        let path_param = |name: &str| {
            req.path_parameters_ref()
                .and_then(|p| p.first(name))
                .map(str::to_owned)
        };
        let (path_id, path_order) = (path_param("id"), path_param("order"));
        let mut query: Vec<(String, String)> = Vec::new();
        if let Some(map) = req.query_string_parameters_ref() {
            for (k, v) in map.iter() {
                query.push((k.to_owned(), v.to_owned()));
            }
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let content_type = header("content-type");
        let if_match = header("if-match");
        let idempotency_key = header("idempotency-key");
        let method = req.method().to_string();
        let path = req.uri().path().to_owned();
        let base = stage_prefix(&req, &path);
        let body = match req.into_body() {
            Body::Empty => Vec::new(),
            Body::Text(t) => t.into_bytes(),
            Body::Binary(b) => b,
            _ => Vec::new(),
        };
        Self {
            request_id,
            method,
            path,
            base,
            owner,
            path_id,
            path_order,
            query,
            content_type,
            if_match,
            idempotency_key,
            body,
        }
    }

    /// The request method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request path without the stage prefix, e.g. `/v1/conversations/abc`.
    pub fn route_path(&self) -> &str {
        &self.path[self.base.len()..]
    }

    /// The owner: the caller, or the pair (caller, user) with `X-On-Behalf-Of`. No caller is a
    /// 401; `X-On-Behalf-Of` without the delegation scope a 403, malformed a 400.
    pub fn owner(&self) -> Result<Owner, ApiError> {
        match &self.owner {
            Ok(owner) => Ok(owner.clone()),
            Err(ApiError::PermissionDenied(why)) => Err(ApiError::PermissionDenied(why.clone())),
            Err(ApiError::InvalidArgument(why)) => Err(ApiError::InvalidArgument(why.clone())),
            Err(_) => Err(ApiError::Unauthenticated),
        }
    }

    /// The `{id}` path parameter.
    pub fn id(&self) -> Result<ConversationId, ApiError> {
        let raw = self
            .path_id
            .as_deref()
            .ok_or_else(|| ApiError::InvalidArgument("the path has no conversation id".into()))?;
        ConversationId::parse(&percent_decode(raw))
    }

    /// The `{order}` path parameter of a message. Anything but a positive integer (0, negative,
    /// past the last possible order, not an integer) names no message: a 404 like any missing
    /// one (revision 3).
    pub fn order(&self) -> Result<u64, ApiError> {
        let raw = self
            .path_order
            .as_deref()
            .map(percent_decode)
            .ok_or_else(|| ApiError::InvalidArgument("the path has no message order".into()))?;
        crate::domain::message::parse_order(&raw).ok_or_else(|| {
            let conversation = self.path_id.as_deref().unwrap_or_default();
            ApiError::NotFound(format!(
                "conversations/{}/messages/{}",
                crate::domain::ids::shorten(conversation),
                crate::domain::ids::shorten(&raw)
            ))
        })
    }

    /// The query string, checked against the parameters this method accepts: an unknown or
    /// repeated parameter is a 400.
    pub fn query(&self, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut values = HashMap::new();
        for (k, v) in &self.query {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::InvalidArgument(format!(
                    "unknown query parameter {:?}; this method accepts: {}",
                    crate::domain::ids::shorten(k),
                    allowed.join(", ")
                )));
            }
            if values.insert(k.clone(), v.clone()).is_some() {
                return Err(ApiError::InvalidArgument(format!(
                    "query parameter {k} is given more than once"
                )));
            }
        }
        Ok(Query(values))
    }

    /// The body as a JSON object (an empty body reads as `{}`): too large → 413, not JSON → 415
    /// or 400.
    pub fn json(&self) -> Result<Map<String, Value>, ApiError> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        if !self.body.is_empty()
            && let Some(ct) = &self.content_type
        {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if mime != "application/json" {
                return Err(ApiError::UnsupportedMediaType(crate::domain::ids::shorten(
                    ct,
                )));
            }
        }
        body::object(&self.body)
    }

    /// The call's idempotency key: the `requestId` query parameter or the `Idempotency-Key`
    /// header (400 when both are given and differ).
    pub fn request_id(&self, query: &Query) -> Result<Option<RequestId>, ApiError> {
        RequestId::of_call(query.get("requestId"), self.idempotency_key.as_deref())
    }

    /// The `If-Match` header, if any.
    pub fn if_match(&self) -> Result<Option<IfMatch>, ApiError> {
        self.if_match.as_deref().map(IfMatch::parse).transpose()
    }
}

/// `/{stage}` when the path starts with a named API Gateway stage (not `$default`): the prefix
/// the client's URLs carry, which `Location` keeps and routing ignores.
fn stage_prefix(req: &Request, path: &str) -> String {
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.as_deref(),
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.as_deref(),
        _ => None,
    };
    match stage {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            let prefix = format!("/{stage}");
            let rest = path.strip_prefix(&prefix);
            if rest.is_some_and(|r| r.is_empty() || r.starts_with('/')) {
                prefix
            } else {
                String::new()
            }
        }
        _ => String::new(),
    }
}

/// Percent-decodes a path segment (cargo lambda passes path parameters undecoded).
fn percent_decode(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The owner of a request: the caller ([`identity`]), or with `X-On-Behalf-Of` the pair
/// (caller, user) — when the caller's token grants the delegation scope, or always in local runs
/// (`CONVERSATIONS_AUTH=header`). The rights are checked before the value (AIP-211: a caller
/// without them learns nothing about what it sent).
fn owner(config: &Config, req: &Request) -> Result<Owner, ApiError> {
    let caller = identity(config.auth, req).ok_or(ApiError::Unauthenticated)?;
    let values: Vec<&[u8]> = req
        .headers()
        .get_all("x-on-behalf-of")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if values.is_empty() {
        return Ok(caller);
    }
    let allowed = match config.auth {
        AuthMode::Header => true,
        AuthMode::Jwt => granted_scopes(req).any(|s| s == config.delegation_scope),
    };
    if !allowed {
        return Err(ApiError::PermissionDenied(format!(
            "X-On-Behalf-Of needs a token granting the {} scope",
            config.delegation_scope
        )));
    }
    delegation::acting_for(caller, &values)
}

/// The caller identity: the JWT authorizer's `sub`, or, only when the function runs with
/// `CONVERSATIONS_AUTH=header`, the `X-Owner-Id` header.
fn identity(auth: AuthMode, req: &Request) -> Option<Owner> {
    match auth {
        AuthMode::Header => req
            .headers()
            .get("x-owner-id")
            .and_then(|v| v.to_str().ok())
            .and_then(Owner::from_header),
        AuthMode::Jwt => match req.request_context_ref()? {
            RequestContext::ApiGatewayV2(ctx) => {
                let sub = ctx.authorizer.as_ref()?.jwt.as_ref()?.claims.get("sub")?;
                Owner::from_claim(sub)
            }
            RequestContext::ApiGatewayV1(ctx) => {
                let sub = ctx.authorizer.fields.get("claims")?.get("sub")?.as_str()?;
                Owner::from_claim(sub)
            }
            _ => None,
        },
    }
}

/// The scopes the verified token grants: its `scope` claim (OAuth's space-separated string; an
/// HTTP API renders a list claim as `[a b]`, a REST API passes it as a JSON list, each element
/// one scope), and the HTTP API's `scopes` list.
fn granted_scopes(req: &Request) -> Box<dyn Iterator<Item = &str> + '_> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            let Some(jwt) = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()) else {
                return Box::new(std::iter::empty());
            };
            let claim = jwt.claims.get("scope").map(String::as_str);
            let listed = jwt.scopes.iter().flatten().map(String::as_str);
            Box::new(
                claim
                    .into_iter()
                    .flat_map(rendered_scope_words)
                    .chain(listed),
            )
        }
        Some(RequestContext::ApiGatewayV1(ctx)) => {
            match ctx
                .authorizer
                .fields
                .get("claims")
                .and_then(|c| c.get("scope"))
            {
                Some(Value::String(text)) => Box::new(scope_words(text)),
                Some(Value::Array(list)) => Box::new(list.iter().filter_map(Value::as_str)),
                _ => Box::new(std::iter::empty()),
            }
        }
        _ => Box::new(std::iter::empty()),
    }
}

/// A parsed query string.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter: `true` or `false`; absent is false.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::InvalidArgument(format!(
                "{key} must be true or false, not {:?}",
                crate::domain::ids::shorten(v)
            ))),
        }
    }

    /// `pageSize`: absent or 0 → 50, above 1000 → 1000, negative or not a number → 400.
    pub fn page_size(&self) -> Result<usize, ApiError> {
        let Some(text) = self.get("pageSize") else {
            return Ok(DEFAULT_PAGE_SIZE);
        };
        let bad = || {
            ApiError::InvalidArgument(format!(
                "pageSize must be a non-negative integer, not {:?}",
                crate::domain::ids::shorten(text)
            ))
        };
        let digits = text.strip_prefix('+').unwrap_or(text);
        if digits.starts_with('-') {
            return Err(bad());
        }
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.is_empty() {
            return Ok(DEFAULT_PAGE_SIZE);
        }
        Ok(trimmed
            .parse::<usize>()
            .map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)))
    }

    /// `fields`, checked against the resource's field names.
    pub fn fields(&self, known: &[&str]) -> Result<Fields, ApiError> {
        Fields::parse(self.get("fields"), known)
    }
}

/// A successful reply, its body already rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    status: u16,
    body: String,
    etag: Option<String>,
    location: Option<String>,
    conversation_etag: Option<String>,
}

/// The fields of a resource `fields` selects, as a `Serialize` value.
struct Selected<'a, T> {
    value: &'a T,
    fields: &'a Fields,
}

impl<T: Render> Serialize for Selected<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.value
            .render_fields(&mut map, &|name| self.fields.selects(name))?;
        map.end()
    }
}

/// A conversation in its `FULL` view: its fields, then its messages (each whole).
struct Full<'a> {
    conversation: &'a Conversation,
    messages: Option<&'a [Message]>,
    fields: &'a Fields,
}

impl Serialize for Full<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.conversation
            .render_fields(&mut map, &|name| self.fields.selects(name))?;
        if let Some(messages) = self.messages
            && self.fields.selects("messages")
        {
            let whole: Vec<Whole<'_, Message>> = messages.iter().map(Whole).collect();
            map.serialize_entry("messages", &whole)?;
        }
        map.end()
    }
}

/// One page of a list: `{"<key>": [...], "nextPageToken": "..."}`.
struct Page<'a, T> {
    key: &'a str,
    items: &'a [T],
    fields: &'a Fields,
    next_page_token: Option<&'a str>,
}

impl<T: Render> Serialize for Page<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items: Vec<Selected<'_, T>> = self
            .items
            .iter()
            .map(|value| Selected {
                value,
                fields: self.fields,
            })
            .collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(self.key, &items)?;
        if let Some(token) = self.next_page_token {
            map.serialize_entry("nextPageToken", token)?;
        }
        map.end()
    }
}

/// Messages just appended together: `{"messages": [...], "conversationEtag": "…"}`.
struct AppendedBody<'a> {
    messages: Vec<Selected<'a, Message>>,
    conversation_etag: String,
}

impl Serialize for AppendedBody<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("messages", &self.messages)?;
        map.serialize_entry("conversationEtag", &self.conversation_etag)?;
        map.end()
    }
}

/// A body's JSON text. Every value rendered here has string keys and serialises without error;
/// were one ever to fail, the reply says so rather than sending a truncated body.
fn text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a reply could not be rendered");
        r#"{"error":"the reply could not be rendered"}"#.to_owned()
    })
}

impl Reply {
    /// A conversation, with its `ETag` header.
    pub fn conversation(status: u16, conversation: &Conversation, fields: &Fields) -> Self {
        Self {
            status,
            body: text(&Selected {
                value: conversation,
                fields,
            }),
            etag: Some(conversation.version.etag()),
            location: None,
            conversation_etag: None,
        }
    }

    /// A conversation just created, with its `Location`.
    pub fn created(conversation: &Conversation, fields: &Fields) -> Self {
        Self {
            location: Some(format!("/v1/{}", conversation.name())),
            conversation_etag: None,
            ..Self::conversation(201, conversation, fields)
        }
    }

    /// A conversation in its `FULL` view: with `messages` (its latest, ascending) unless it is
    /// soft-deleted.
    pub fn full(
        conversation: &Conversation,
        messages: Option<&[Message]>,
        fields: &Fields,
    ) -> Self {
        Self {
            status: 200,
            body: text(&Full {
                conversation,
                messages,
                fields,
            }),
            etag: Some(conversation.version.etag()),
            location: None,
            conversation_etag: None,
        }
    }

    /// A message, with its `ETag`.
    pub fn message(status: u16, message: &Message, fields: &Fields) -> Self {
        Self {
            status,
            body: text(&Selected {
                value: message,
                fields,
            }),
            etag: Some(message.version.message_etag(message.order)),
            location: None,
            conversation_etag: None,
        }
    }

    /// Messages just appended together: `201 {"messages": [...]}`.
    pub fn appended(appended: &Appended, fields: &Fields) -> Self {
        let body = AppendedBody {
            messages: appended
                .messages
                .iter()
                .map(|value| Selected { value, fields })
                .collect(),
            conversation_etag: appended.conversation_version.etag(),
        };
        Self::rendered(201, text(&body))
    }

    /// The same answer with the conversation's etag after the write as an
    /// `X-Conversation-ETag` header (append message), so that a client can chain its next
    /// precondition without another read.
    pub fn with_conversation_etag(mut self, version: Version) -> Self {
        self.conversation_etag = Some(version.etag());
        self
    }

    /// One page of a list: `{"<key>": [...], "nextPageToken": "..."}` (no token on the last
    /// page), each item with the fields `fields` selects.
    pub fn page<T: Render>(
        key: &str,
        items: &[T],
        fields: &Fields,
        next_page_token: Option<&str>,
    ) -> Self {
        Self::rendered(
            200,
            text(&Page {
                key,
                items,
                fields,
                next_page_token,
            }),
        )
    }

    /// `200 {}`: success with nothing to show.
    pub fn empty() -> Self {
        Self::rendered(200, "{}".to_owned())
    }

    /// Any JSON body.
    pub fn json(status: u16, body: Value) -> Self {
        Self::rendered(status, body.to_string())
    }

    fn rendered(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            etag: None,
            location: None,
            conversation_etag: None,
        }
    }

    /// The status.
    pub fn status(&self) -> u16 {
        self.status
    }
}

fn response(status: u16, content_type: &str, request_id: &str) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-request-id", request_id)
        .header("cache-control", "no-store")
}

fn render(
    result: Result<Reply, ApiError>,
    request_id: &str,
    base: &str,
) -> Result<Response<Body>, Error> {
    let response = match result {
        Ok(reply) => {
            let mut builder = response(reply.status, "application/json", request_id);
            if let Some(etag) = &reply.etag {
                builder = builder.header("etag", etag);
            }
            if let Some(location) = &reply.location {
                builder = builder.header("location", format!("{base}{location}"));
            }
            if let Some(etag) = &reply.conversation_etag {
                builder = builder.header("x-conversation-etag", etag);
            }
            builder.body(Body::Text(reply.body))?
        }
        Err(error) => {
            let body = error.problem(request_id);
            let mut builder = response(error.status(), "application/problem+json", request_id);
            if let Some(seconds) = error.retry_after() {
                builder = builder.header("retry-after", seconds.to_string());
            }
            if let Some(allow) = error.allow() {
                builder = builder.header("allow", allow);
            }
            builder.body(Body::Text(body.to_string()))?
        }
    };
    Ok(response)
}

/// The chain of causes of an error, for the log (never for the client).
fn cause_chain(error: &ApiError) -> String {
    let mut causes = Vec::new();
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    causes.join(": ")
}

/// Runs one request: extracts the call, runs the handler (a panic becomes a 500 problem),
/// renders the reply or the problem, and logs one line.
pub async fn serve<F, Fut>(app: &App, req: Request, handler: F) -> Result<Response<Body>, Error>
where
    F: FnOnce(Call) -> Fut,
    Fut: Future<Output = Result<Reply, ApiError>>,
{
    let started = Instant::now();
    let call = Call::new(&app.config, req);
    let request_id = call.request_id.clone();
    let method = call.method.clone();
    let path = call.path.clone();
    let base = call.base.clone();
    let route = routes::find(call.route_path()).map_or("-", |r| r.path);
    // Boxed: the handler's state (SDK futures included) lives on the heap, so whatever awaits
    // this one — the runtime loop, a test — holds a pointer, not tens of kilobytes of futures.
    // A method the path does not serve is 405 whichever function API Gateway chose: its
    // routing may hand `GET …/messages/batch` to get message (`{order}` matches `batch`).
    let unserved = routes::find(call.route_path())
        .filter(|r| !r.methods.contains(&call.method()))
        .map(|_| routes::unserved(call.method(), call.route_path()));
    let work = Box::pin(
        AssertUnwindSafe(async move {
            match unserved {
                Some(error) => Err(error),
                None => handler(call).await,
            }
        })
        .catch_unwind(),
    );
    let (result, dynamodb_requests) = crate::store::count::counting(work).await;
    let result = match result {
        Ok(result) => result,
        Err(_) => Err(ApiError::internal("the handler panicked")),
    };
    let status = match &result {
        Ok(reply) => reply.status,
        Err(e) => e.status(),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Err(e) if status >= 500 => {
            let cause = cause_chain(e);
            tracing::error!(%method, route, %path, status, latency_ms, dynamodb_requests, request_id = %request_id, error = %e, cause = %cause, "request failed");
        }
        _ => {
            tracing::info!(%method, route, %path, status, latency_ms, dynamodb_requests, request_id = %request_id, "request")
        }
    }
    render(result, &request_id, &base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn page_sizes_default_clamp_and_reject_negatives() {
        assert_eq!(query(&[]).page_size().expect("default"), 50);
        assert_eq!(query(&[("pageSize", "0")]).page_size().expect("zero"), 50);
        assert_eq!(query(&[("pageSize", "7")]).page_size().expect("seven"), 7);
        assert_eq!(
            query(&[("pageSize", "1001")]).page_size().expect("big"),
            1000
        );
        assert_eq!(
            query(&[("pageSize", "99999999999999999999999")])
                .page_size()
                .expect("huge"),
            1000
        );
        for bad in ["-1", "abc", "1.5", ""] {
            assert_eq!(
                query(&[("pageSize", bad)])
                    .page_size()
                    .expect_err(bad)
                    .status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn flags_are_true_or_false() {
        assert!(
            query(&[("allowMissing", "true")])
                .flag("allowMissing")
                .expect("true")
        );
        assert!(!query(&[]).flag("allowMissing").expect("absent"));
        assert!(
            query(&[("allowMissing", "yes")])
                .flag("allowMissing")
                .is_err()
        );
    }

    /// A conversation with every field the rendering writes, and two of its messages.
    fn full_conversation() -> (Conversation, Vec<Message>) {
        use crate::domain::conversation::{NewConversation, Writable};
        use crate::domain::time::Timestamp;
        let now = Timestamp::parse("2026-11-23T08:00:00.5Z").expect("valid");
        let body = serde_json::json!({"displayName": "d\"q", "category": "c", "agents": ["a", "b"],
            "conversationProfile": "p", "languageCode": "en", "labels": {"k": "v", "a": "w"},
            "metadata": {"z": 1.5, "a": {"x": [1, "two", null]}}, "conversationStage": "HUMAN_ASSIST_STAGE",
            "startTime": "2026-11-23T07:00:00Z", "ttl": "3600s",
            "qualityMetadata": {"customerSatisfactionRating": 4}, "callMetadata": {"agentChannel": 2},
            "dataSource": {"gcsSource": {"audioUri": "gs://b/a"}}, "sources": [{"model": "m", "explore": "e"}],
            "phoneNumber": {"countryCode": 1, "phoneNumber": "+15555550100"}});
        let w = Writable::from_json(body.as_object().expect("object"), now, false).expect("valid");
        let mut c = NewConversation::try_from(w)
            .expect("new")
            .into_conversation(
                ConversationId::parse("conv-1").expect("id"),
                Owner::from_claim("o").expect("owner"),
                None,
                now,
            );
        c.end_time = Some(now);
        c.delete_time = Some(now);
        c.purge_time = Some(now);
        let message = |order| Message {
            conversation: c.id.clone(),
            order,
            kind: crate::domain::message::MessageType::User,
            content: format!("m{order}"),
            tool_calls: Vec::new(),
            tool_call_id: None,
            metadata: None,
            create_time: now,
            version: Version(now.micros()),
        };
        let messages = vec![message(1), message(2)];
        (c, messages)
    }

    #[test]
    fn replies_render_the_selected_fields_of_the_resource_s_json_in_its_order() {
        let (c, messages) = full_conversation();
        let all = c.to_json();
        let keys: Vec<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 28, "every field is rendered: {keys:?}");
        assert_eq!(keys.first(), Some(&"name"));
        assert_eq!(keys.last(), Some(&"can"));
        let mut known = crate::domain::conversation::OUTPUT_FIELDS.to_vec();
        known.push("messages");
        for selection in [
            None,
            Some("name,etag,labels"),
            Some("can,metadata,messages"),
        ] {
            let fields = Fields::parse(selection, &known).expect("known fields");
            let expected = Value::Object(fields.apply(c.to_json())).to_string();
            assert_eq!(Reply::conversation(200, &c, &fields).body, expected);
            let mut full = c.to_json();
            full.insert(
                "messages".into(),
                messages
                    .iter()
                    .map(|m| Value::Object(m.to_json()))
                    .collect(),
            );
            let expected = Value::Object(fields.apply(full)).to_string();
            assert_eq!(Reply::full(&c, Some(&messages), &fields).body, expected);
            let page = Reply::page("conversations", &[c.clone(), c.clone()], &fields, Some("t"));
            let item = Value::Object(fields.apply(c.to_json()));
            let expected =
                serde_json::json!({"conversations": [item.clone(), item], "nextPageToken": "t"});
            assert_eq!(page.body, expected.to_string());
        }
        let fields =
            Fields::parse(Some("content,order"), &["content", "order", "name"]).expect("ok");
        let expected = Value::Object(fields.apply(messages[0].to_json())).to_string();
        assert_eq!(Reply::message(200, &messages[0], &fields).body, expected);
        assert_eq!(
            Reply::page("messages", &messages, &fields, None).body,
            r#"{"messages":[{"order":1,"content":"m1"},{"order":2,"content":"m2"}]}"#
        );
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decode("a%62c"), "abc");
        assert_eq!(percent_decode("a%zz"), "a%zz");
    }
}
