//! A typed async client of the Conversations API (`../shared/API.md`, revision 3).
//!
//! ```no_run
//! use conversations_client::{Client, ConversationInput, MessageInput, MessageType};
//! use futures_util::TryStreamExt;
//!
//! # async fn run() -> conversations_client::Result<()> {
//! let client = Client::builder("http://127.0.0.1:9000").owner("alice").build()?;
//! let created = client
//!     .create_conversation(&ConversationInput::with_agents(["support-bot"]), Default::default())
//!     .await?;
//! let id = created.id().expect("a name");
//! client.append_message(id, &MessageInput::new(MessageType::User, "Hello"), None).await?;
//! let messages: Vec<_> = client.list_messages(id, Default::default()).try_collect().await?;
//! # Ok(()) }
//! ```
//!
//! - Every method of the API, with typed bodies and answers ([`model`]).
//! - Errors are [`Error::Api`] with the problem+json answer as a [`Problem`] (its [`Code`], every
//!   broken field, the request id, `Retry-After`), or [`Error::Transport`].
//! - List methods are [`Stream`]s that follow `nextPageToken`.
//! - Retries ([`Retry`]) only where sending twice cannot write twice: creates, appends and
//!   batches carry an idempotency key made once per call and reused by each retry; reads, a
//!   purge with `allowMissing` and a clear through a given order are retried; writes with an
//!   etag, a delete message and a purge are sent again as they are, and a retry refused because
//!   its own first attempt had applied is recognised by reading the resource back
//!   ([`Safety::Recognised`] says what that can and cannot tell); other writes are sent once.

pub mod error;
pub mod model;
mod recognise;
pub mod retry;

use std::future::Future;
use std::time::Duration;

use futures_util::future;
use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use error::{Code, Error, FieldError, Problem, Result};
pub use model::*;
pub use retry::{Retry, Safety};

/// Who the calls are made as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    /// `Authorization: Bearer <token>` (a deployed stack's JWT authorizer).
    Bearer(String),
    /// `X-Owner-Id` (a local stack, `CONVERSATIONS_AUTH=header`).
    Owner(String),
    None,
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    identity: Identity,
    on_behalf_of: Option<String>,
    retry: Retry,
    timeout: Duration,
}

impl ClientBuilder {
    /// Calls with a bearer token (a deployed stack).
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.identity = Identity::Bearer(token.into());
        self
    }

    /// Calls as `owner` through `X-Owner-Id` (a local stack only).
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.identity = Identity::Owner(owner.into());
        self
    }

    /// Acts for an end user (`X-On-Behalf-Of`; the token must grant the delegation scope).
    pub fn on_behalf_of(mut self, user: impl Into<String>) -> Self {
        self.on_behalf_of = Some(user.into());
        self
    }

    /// The retry policy (default: [`Retry::default`]).
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The timeout of each attempt (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        let mut base = Url::parse(self.base.trim_end_matches('/'))
            .map_err(|e| Error::Usage(format!("the base URL {:?}: {e}", self.base)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Usage(format!(
                "the base URL {:?} is not an http(s) URL",
                self.base
            )));
        }
        // `…/prod` and `…/prod/` both address the stage; a trailing `/v1` is the API's own.
        if base.path().ends_with("/v1") {
            let trimmed = base.path().trim_end_matches("/v1").to_owned();
            base.set_path(&trimmed);
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("conversations-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base,
            identity: self.identity,
            on_behalf_of: self.on_behalf_of,
            retry: self.retry,
        })
    }
}

/// A client of one Conversations API, as one caller. Cheap to clone (the connection pool is
/// shared).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    identity: Identity,
    on_behalf_of: Option<String>,
    retry: Retry,
}

/// `view` of get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Basic,
    /// With the latest messages (at most 50).
    Full,
}

/// Options of create.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The id to give the conversation (else the service picks a UUID).
    pub conversation_id: Option<String>,
    /// The idempotency key; made for the call when `None` (and reused by its retries). Give your
    /// own to make a create that you repeat later, from another process, land once.
    pub request_id: Option<Uuid>,
}

impl CreateOptions {
    /// A create of the conversation `id` (its key made for the call).
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            conversation_id: Some(id.into()),
            request_id: None,
        }
    }
}

/// Options of update.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// `updateMask`; `None` = the fields present in the body.
    pub update_mask: Option<Vec<String>>,
    /// Create the conversation from the body if it does not exist (201).
    pub allow_missing: bool,
    /// `If-Match`: write only if the conversation's etag is still this one (412 otherwise).
    pub if_match: Option<String>,
}

impl UpdateOptions {
    /// An update of `mask` that writes only if the conversation is still as `read`.
    pub fn if_unchanged(read: &Conversation, mask: &[&str]) -> Self {
        Self {
            update_mask: Some(mask.iter().map(|p| (*p).to_owned()).collect()),
            allow_missing: false,
            if_match: read.etag.clone(),
        }
    }
}

/// Options of delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// The conversation's etag (precondition).
    pub etag: Option<String>,
    /// A missing or already deleted conversation answers 200 instead of 404.
    pub allow_missing: bool,
}

/// Options of batch append.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// The conversation's etag (precondition: 409 `ABORTED` if stale).
    pub etag: Option<String>,
    /// The idempotency key; made for the call when `None` (and reused by its retries).
    pub request_id: Option<Uuid>,
    /// `conversationMetadata`: top-level keys of the conversation's `metadata` set in the batch's
    /// own transaction (a JSON `null` removes the key; other keys stay): the state an agent's
    /// turn changed, stored with it or not at all.
    pub conversation_metadata: Option<JsonObject>,
}

/// Options of delete message. The message's etag (not the conversation's) is the precondition.
#[derive(Debug, Clone, Default)]
pub struct DeleteMessageOptions {
    /// The message's etag as the `etag` query parameter (409 `ABORTED` if stale).
    pub etag: Option<String>,
    /// The message's etag as `If-Match` (412 if stale).
    pub if_match: Option<String>,
}

/// Options of clear messages.
#[derive(Debug, Clone, Default)]
pub struct ClearOptions {
    /// `throughOrder`: clear every message up to this order; `None` clears them all.
    pub through_order: Option<u64>,
    /// The conversation's etag in the body (409 `ABORTED` if stale).
    pub etag: Option<String>,
    /// The conversation's etag as `If-Match` (412 if stale).
    pub if_match: Option<String>,
}

/// Options of purge.
#[derive(Debug, Clone, Default)]
pub struct PurgeOptions {
    /// The conversation's etag in the body (409 `ABORTED` if stale, or if it does not exist).
    pub etag: Option<String>,
    /// The conversation's etag as `If-Match` (412 if stale, or if it does not exist).
    pub if_match: Option<String>,
    /// A conversation that is not there answers 200 too, whatever etag was given.
    pub allow_missing: bool,
}

/// `orderBy` of list conversations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConversationOrder {
    #[default]
    CreateTimeDesc,
    CreateTimeAsc,
    /// Most recently active first.
    LastUsedTimeDesc,
    LastUsedTimeAsc,
}

impl ConversationOrder {
    fn as_str(self) -> &'static str {
        match self {
            Self::CreateTimeDesc => "createTime desc",
            Self::CreateTimeAsc => "createTime asc",
            Self::LastUsedTimeDesc => "lastUsedTime desc",
            Self::LastUsedTimeAsc => "lastUsedTime asc",
        }
    }
}

/// Parameters of list conversations.
#[derive(Debug, Clone, Default)]
pub struct ListConversations {
    /// An AIP-160 filter (`lifecycleState = COMPLETED AND labels.team = "a"`).
    pub filter: Option<String>,
    pub order_by: ConversationOrder,
    pub show_deleted: bool,
    /// Items per page (the service's default 50, at most 1000).
    pub page_size: Option<u32>,
}

/// `orderBy` of list messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MessageOrder {
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// Parameters of list messages.
#[derive(Debug, Clone, Default)]
pub struct ListMessages {
    /// `order > N`, `order <= N`, `type = USER`, joined by ` AND `.
    pub filter: Option<String>,
    pub order_by: MessageOrder,
    pub page_size: Option<u32>,
}

impl ListMessages {
    /// The messages after `order`, oldest first.
    pub fn after(order: u64) -> Self {
        Self {
            filter: Some(format!("order > {order}")),
            ..Self::default()
        }
    }

    /// The last `n` messages, newest first, in one page.
    pub fn last(n: u32) -> Self {
        Self {
            filter: None,
            order_by: MessageOrder::Descending,
            page_size: Some(n),
        }
    }
}

/// One request as the client sends it, as often as its retries allow.
struct Call {
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    if_match: Option<String>,
    safety: Safety,
}

impl Call {
    fn new(method: Method, segments: &[&str], safety: Safety) -> Self {
        Self {
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            if_match: None,
            safety,
        }
    }

    fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    fn query_opt(self, name: &'static str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    fn json(mut self, body: &impl Serialize) -> Result<Self> {
        self.body = Some(serde_json::to_vec(body).map_err(|e| Error::Usage(e.to_string()))?);
        Ok(self)
    }
}

/// What became of a call after its attempts.
struct Sent {
    result: Result<Vec<u8>>,
    /// An attempt before the last may have applied: its answer was lost (a "try later" answer,
    /// a timeout, a connection that broke after the request went out).
    unsure: bool,
    /// The success answer's `X-Conversation-ETag` (append message).
    conversation_etag: Option<String>,
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        status: 200,
        message: e.to_string(),
    })
}

/// A stale etag: 409 `ABORTED` (a body etag) or 412 (`If-Match`).
fn stale(problem: &Problem) -> bool {
    problem.code == Code::Aborted || problem.status == 412
}

fn as_json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// What a read back that is the resource itself shows: the resource, when it was read and
/// `done` finds the call's write in it.
fn shows<T>(done: impl Fn(&T) -> bool) -> impl FnOnce(Result<T>) -> Option<T> {
    move |read| read.ok().filter(|now| done(now))
}

impl Client {
    /// A builder for the API at `base_url` (`http://127.0.0.1:9000`, or a stage's invoke URL).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            identity: Identity::None,
            on_behalf_of: None,
            retry: Retry::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The same client acting for another end user (`X-On-Behalf-Of`).
    pub fn acting_for(&self, user: impl Into<String>) -> Self {
        Self {
            on_behalf_of: Some(user.into()),
            ..self.clone()
        }
    }

    fn url(&self, call: &Call) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(&call.segments);
        }
        if !call.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&call.query);
        }
        url
    }

    /// Sends `call`, again after a "try later" answer or a failed connection where its safety
    /// allows, and gives the success answer's body, or the error, with whether an attempt
    /// before the last may have applied.
    async fn send(&self, call: &Call) -> Sent {
        let url = self.url(call);
        let mut attempt = 0;
        let mut unsure = false;
        let mut conversation_etag = None;
        let retries = call.safety != Safety::Once;
        let result = loop {
            let mut request = self.http.request(call.method.clone(), url.clone());
            request = match &self.identity {
                Identity::Bearer(token) => request.bearer_auth(token),
                Identity::Owner(owner) => request.header("x-owner-id", owner),
                Identity::None => request,
            };
            if let Some(user) = &self.on_behalf_of {
                request = request.header("x-on-behalf-of", user);
            }
            if let Some(etag) = &call.if_match {
                request = request.header("if-match", etag);
            }
            if let Some(body) = &call.body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            let more = attempt + 1 < self.retry.attempts;
            let answer = match request.send().await {
                Ok(answer) => answer,
                // A connection that never opened sent nothing: any call may go again.
                Err(e) if more && e.is_connect() => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                // A timeout or a connection that broke after the request went out: it may have
                // applied.
                Err(_) if more && retries => {
                    unsure = true;
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => break Err(e.into()),
            };
            let status = answer.status().as_u16();
            let header = |name: &str| {
                answer
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header("retry-after").and_then(|v| retry::parse_retry_after(&v));
            let request_id = header("x-request-id");
            conversation_etag = header("x-conversation-etag");
            let body = match answer.bytes().await {
                Ok(body) => body,
                Err(_) if more && retries => {
                    unsure = true;
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => break Err(e.into()),
            };
            if (200..300).contains(&status) {
                break Ok(body.to_vec());
            }
            if more && retries && Retry::retryable_status(status) {
                unsure = true;
                tokio::time::sleep(self.retry.delay(attempt, retry_after)).await;
                attempt += 1;
                continue;
            }
            break Err(Error::Api(Box::new(Problem::from_answer(
                status,
                &body,
                request_id,
                retry_after,
            ))));
        };
        Sent {
            result,
            unsure,
            conversation_etag,
        }
    }

    async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        decode(&self.send(&call).await.result?)
    }

    /// Sends a write ([`Safety::Recognised`]). When it is refused as `refused` says after an
    /// attempt whose outcome is unknown, reads the resource back with `read` and answers what
    /// `applied` makes of the read when it finds this call's write in it; otherwise the
    /// refusal.
    async fn recognised<T, R, Fut>(
        &self,
        call: Call,
        refused: impl Fn(&Problem) -> bool,
        read: impl FnOnce() -> Fut,
        applied: impl FnOnce(R) -> Option<T>,
    ) -> Result<T>
    where
        T: DeserializeOwned,
        Fut: Future<Output = R>,
    {
        let sent = self.send(&call).await;
        let error = match sent.result {
            Ok(body) => return decode(&body),
            Err(error) => error,
        };
        if !(call.safety == Safety::Recognised
            && sent.unsure
            && error.problem().is_some_and(refused))
        {
            return Err(error);
        }
        applied(read().await).ok_or(error)
    }

    /// Creates a conversation (201). Retried safely: the call's `requestId` is made once.
    pub async fn create_conversation(
        &self,
        input: &ConversationInput,
        options: CreateOptions,
    ) -> Result<Conversation> {
        let key = options.request_id.unwrap_or_else(Uuid::new_v4);
        let call = Call::new(Method::POST, &["conversations"], Safety::Retryable)
            .query_opt("conversationId", options.conversation_id)
            .query("requestId", key)
            .json(input)?;
        self.call(call).await
    }

    /// Reads a conversation (soft-deleted ones too, with `deleted: true`).
    pub async fn get_conversation(&self, id: &str, view: View) -> Result<Conversation> {
        let call = Call::new(Method::GET, &["conversations", id], Safety::Retryable);
        let call = match view {
            View::Basic => call,
            View::Full => call.query("view", "FULL"),
        };
        self.call(call).await
    }

    /// One page of list conversations.
    pub async fn list_conversations_page(
        &self,
        params: &ListConversations,
        page_token: Option<&str>,
    ) -> Result<ConversationPage> {
        let call = Call::new(Method::GET, &["conversations"], Safety::Retryable)
            .query_opt("filter", params.filter.as_deref())
            .query("orderBy", params.order_by.as_str())
            .query_opt("showDeleted", params.show_deleted.then_some("true"))
            .query_opt("pageSize", params.page_size)
            .query_opt("pageToken", page_token);
        self.call(call).await
    }

    /// Every conversation of the caller that `params` selects, page after page.
    pub fn list_conversations(
        &self,
        params: ListConversations,
    ) -> impl Stream<Item = Result<Conversation>> + Send + 'static {
        let client = self.clone();
        pages(move |token| {
            let (client, params) = (client.clone(), params.clone());
            async move {
                let page = client
                    .list_conversations_page(&params, token.as_deref())
                    .await?;
                Ok((page.conversations, page.next_page_token))
            }
        })
    }

    /// Updates a conversation (200), or creates it with `allow_missing` (201). Without an etag
    /// (`if_match`, or `etag` in the body) it is sent once; with one it is retried, and a retry
    /// refused because its first attempt had applied answers the conversation as read back when
    /// every path it set holds the value sent ([`Safety::Recognised`]).
    pub async fn update_conversation(
        &self,
        id: &str,
        input: &ConversationInput,
        options: UpdateOptions,
    ) -> Result<Conversation> {
        let sent = recognise::etags(options.if_match.as_deref(), input.etag.as_deref());
        let safety = match sent {
            Some(_) => Safety::Recognised,
            None => Safety::Once,
        };
        let body = as_json(input);
        let paths = recognise::conversation_paths(options.update_mask.as_deref(), &body);
        let mut call = Call::new(Method::PATCH, &["conversations", id], safety)
            .query_opt("updateMask", options.update_mask.map(|m| m.join(",")))
            .query_opt("allowMissing", options.allow_missing.then_some("true"))
            .json(input)?;
        call.if_match = options.if_match;
        let sent = sent.unwrap_or_default();
        self.recognised(
            call,
            stale,
            || self.get_conversation(id, View::Basic),
            shows(|now: &Conversation| {
                now.deleted != Some(true)
                    && recognise::moved(now.etag.as_deref(), &sent)
                    && paths.as_deref().is_some_and(|paths| {
                        recognise::holds(
                            &as_json(now),
                            &body,
                            paths,
                            &[("conversationStage", "VIRTUAL_AGENT_STAGE")],
                        )
                    })
            }),
        )
        .await
    }

    /// Soft-deletes a conversation and answers it. Retried with an etag or `allow_missing`
    /// (a repeat of a delete that landed is then a precondition failure or a 200); with an etag,
    /// a retry refused because its first attempt had applied answers the conversation read back
    /// when it is deleted at another etag ([`Safety::Recognised`]).
    pub async fn delete_conversation(
        &self,
        id: &str,
        options: DeleteOptions,
    ) -> Result<Conversation> {
        let sent = recognise::etags(None, options.etag.as_deref());
        let safety = match (&sent, options.allow_missing) {
            (Some(_), _) => Safety::Recognised,
            (None, true) => Safety::Retryable,
            (None, false) => Safety::Once,
        };
        let call = Call::new(Method::DELETE, &["conversations", id], safety)
            .query_opt("etag", options.etag)
            .query_opt("allowMissing", options.allow_missing.then_some("true"));
        let sent = sent.unwrap_or_default();
        self.recognised(
            call,
            // The conversation that this call deleted answers a repeat 404.
            |p| stale(p) || p.code == Code::NotFound,
            || self.get_conversation(id, View::Basic),
            shows(|now: &Conversation| {
                now.deleted == Some(true) && recognise::moved(now.etag.as_deref(), &sent)
            }),
        )
        .await
    }

    /// Undeletes a soft-deleted conversation. Sent once without an etag; with one, retried, and a
    /// retry refused because its first attempt had applied answers the conversation read back
    /// when it is live at another etag ([`Safety::Recognised`]).
    pub async fn undelete_conversation(
        &self,
        id: &str,
        etag: Option<&str>,
    ) -> Result<Conversation> {
        let sent = recognise::etags(None, etag);
        let safety = match sent {
            Some(_) => Safety::Recognised,
            None => Safety::Once,
        };
        let call = Call::new(Method::POST, &["conversations", id, "undelete"], safety)
            .json(&model::EtagBody { etag })?;
        let sent = sent.unwrap_or_default();
        self.recognised(
            call,
            // The conversation that this call undeleted answers a repeat "not deleted".
            |p| stale(p) || p.code == Code::AlreadyExists,
            || self.get_conversation(id, View::Basic),
            shows(|now: &Conversation| {
                now.deleted != Some(true) && recognise::moved(now.etag.as_deref(), &sent)
            }),
        )
        .await
    }

    /// Completes a conversation. Retried: without an etag, completing a completed conversation
    /// answers it unchanged; with one, a retry refused because its first attempt had applied
    /// answers the conversation read back when it is completed at another etag
    /// ([`Safety::Recognised`]).
    pub async fn complete_conversation(
        &self,
        id: &str,
        etag: Option<&str>,
    ) -> Result<Conversation> {
        let sent = recognise::etags(None, etag);
        let safety = match sent {
            Some(_) => Safety::Recognised,
            None => Safety::Retryable,
        };
        let call = Call::new(Method::POST, &["conversations", id, "complete"], safety)
            .json(&model::EtagBody { etag })?;
        let sent = sent.unwrap_or_default();
        self.recognised(
            call,
            stale,
            || self.get_conversation(id, View::Basic),
            shows(|now: &Conversation| {
                now.is_completed()
                    && now.deleted != Some(true)
                    && recognise::moved(now.etag.as_deref(), &sent)
            }),
        )
        .await
    }

    /// Appends a message (201), and answers it with the conversation's etag after the append
    /// (`X-Conversation-ETag`). Retried safely: `request_id` (made for the call when `None`) is
    /// the idempotency key of every attempt. A retry whose first attempt applied and whose
    /// message was deleted or cleared before the retry arrived answers 409 `ALREADY_EXISTS`:
    /// appended once, and gone since.
    pub async fn append_message(
        &self,
        id: &str,
        message: &MessageInput,
        request_id: Option<Uuid>,
    ) -> Result<Appended> {
        let key = request_id.unwrap_or_else(Uuid::new_v4);
        let call = Call::new(
            Method::POST,
            &["conversations", id, "messages"],
            Safety::Retryable,
        )
        .query("requestId", key)
        .json(message)?;
        let sent = self.send(&call).await;
        Ok(Appended {
            message: decode(&sent.result?)?,
            conversation_etag: sent.conversation_etag,
        })
    }

    /// Appends 1–50 messages at once, all or none (201), with the `conversationMetadata` keys
    /// they change in the same transaction, and answers them with the conversation's etag after
    /// the batch. Retried safely, as append (a repeat applies neither the messages nor the
    /// metadata again).
    pub async fn batch_append_messages(
        &self,
        id: &str,
        messages: &[MessageInput],
        options: BatchOptions,
    ) -> Result<Messages> {
        let key = options.request_id.unwrap_or_else(Uuid::new_v4);
        let call = Call::new(
            Method::POST,
            &["conversations", id, "messages", "batch"],
            Safety::Retryable,
        )
        .query("requestId", key)
        .json(&model::BatchBody {
            messages,
            etag: options.etag.as_deref(),
            conversation_metadata: options.conversation_metadata.as_ref(),
        })?;
        self.call(call).await
    }

    /// Reads one message.
    pub async fn get_message(&self, id: &str, order: u64) -> Result<Message> {
        let order = order.to_string();
        let call = Call::new(
            Method::GET,
            &["conversations", id, "messages", &order],
            Safety::Retryable,
        );
        self.call(call).await
    }

    /// Edits a message (`update_mask`: `content`, `metadata`, `metadata.<key>`, `toolCalls`;
    /// `None` = the fields present). Sent once without the message's etag (in `patch` or
    /// `if_match`); with it, retried, and a retry refused because its first attempt had applied
    /// answers the message read back when every path it set holds the value sent
    /// ([`Safety::Recognised`]).
    pub async fn update_message(
        &self,
        id: &str,
        order: u64,
        patch: &MessagePatch,
        update_mask: Option<&[&str]>,
        if_match: Option<&str>,
    ) -> Result<Message> {
        let sent = recognise::etags(if_match, patch.etag.as_deref());
        let safety = match sent {
            Some(_) => Safety::Recognised,
            None => Safety::Once,
        };
        let body = as_json(patch);
        let paths = recognise::message_paths(update_mask, &body);
        let path_order = order.to_string();
        let mut call = Call::new(
            Method::PATCH,
            &["conversations", id, "messages", &path_order],
            safety,
        )
        .query_opt("updateMask", update_mask.map(|m| m.join(",")))
        .json(patch)?;
        call.if_match = if_match.map(str::to_owned);
        let sent = sent.unwrap_or_default();
        self.recognised(
            call,
            stale,
            || self.get_message(id, order),
            shows(|now: &Message| {
                recognise::moved(now.etag.as_deref(), &sent)
                    && paths
                        .as_deref()
                        .is_some_and(|paths| recognise::holds(&as_json(now), &body, paths, &[]))
            }),
        )
        .await
    }

    /// Deletes a message for good and answers it as it was; its order is never given again.
    /// Retried with or without the message's etag, since a repeat can meet only the message
    /// this call deleted (orders are never reused): a repeat of a delete that applied is 404,
    /// and after an attempt whose outcome is unknown the client reads the conversation and the
    /// message back and answers the call as done when the conversation is live and the message
    /// is gone — with the message's name and order only, since what it held cannot be read any
    /// more ([`Safety::Recognised`]).
    pub async fn delete_message(
        &self,
        id: &str,
        order: u64,
        options: DeleteMessageOptions,
    ) -> Result<Message> {
        let path_order = order.to_string();
        let mut call = Call::new(
            Method::DELETE,
            &["conversations", id, "messages", &path_order],
            Safety::Recognised,
        )
        .query_opt("etag", options.etag);
        call.if_match = options.if_match;
        self.recognised(
            call,
            // The message that this call deleted answers a repeat 404.
            |p| p.code == Code::NotFound,
            || {
                future::join(
                    self.get_conversation(id, View::Basic),
                    self.get_message(id, order),
                )
            },
            |(conversation, message)| {
                // A soft-deleted conversation still holds its messages (undelete brings them
                // back): its 404 says nothing of this call.
                let live = conversation.is_ok_and(|c| c.deleted != Some(true));
                let gone = message.is_err_and(|e| e.is_not_found());
                (live && gone).then(|| Message {
                    name: Some(format!("conversations/{id}/messages/{order}")),
                    order: Some(order),
                    ..Message::default()
                })
            },
        )
        .await
    }

    /// Clears a conversation's messages up to `through_order` (every one without it) and
    /// answers the conversation, its `messageCount` the messages kept. With an etag it is
    /// retried, and a retry refused because its first attempt had applied answers the
    /// conversation read back when it is live at another etag and holds no message up to
    /// `through_order` (none at all without it) ([`Safety::Recognised`]). Without an etag, a
    /// clear through a given order is retried (clearing again through the same order changes
    /// nothing but `updateTime` and the etag); a clear of every message is sent once (a repeat
    /// would also clear what was appended between the attempts).
    pub async fn clear_messages(&self, id: &str, options: ClearOptions) -> Result<Conversation> {
        let sent = recognise::etags(options.if_match.as_deref(), options.etag.as_deref());
        let through = options.through_order;
        let safety = match (&sent, through) {
            (Some(_), _) => Safety::Recognised,
            (None, Some(_)) => Safety::Retryable,
            (None, None) => Safety::Once,
        };
        let mut call = Call::new(
            Method::POST,
            &["conversations", id, "messages", "clear"],
            safety,
        )
        .json(&model::ClearBody {
            through_order: through,
            etag: options.etag.as_deref(),
        })?;
        call.if_match = options.if_match;
        let sent = sent.unwrap_or_default();
        self.recognised(
            call,
            stale,
            || async move {
                let now = self.get_conversation(id, View::Basic).await;
                let below = match through {
                    Some(n) => {
                        let first = ListMessages {
                            filter: Some(format!("order <= {n}")),
                            order_by: MessageOrder::Ascending,
                            page_size: Some(1),
                        };
                        Some(self.list_messages_page(id, &first, None).await)
                    }
                    None => None,
                };
                (now, below)
            },
            |(now, below)| {
                let now = now.ok()?;
                let cleared = match below {
                    Some(page) => page.is_ok_and(|p| p.messages.is_empty()),
                    None => now.message_count == Some(0),
                };
                (now.deleted != Some(true)
                    && recognise::moved(now.etag.as_deref(), &sent)
                    && cleared)
                    .then_some(now)
            },
        )
        .await
    }

    /// Purges a conversation — live or soft-deleted — and every message of it now: from the
    /// answer on it is missing for every method and its id is free for a create. With
    /// `allow_missing` it is retried (a repeat answers 200). Without it, it is retried too: a
    /// repeat of a purge that applied is refused (404, or 409/412 with an etag, the conversation
    /// being gone), and after an attempt whose outcome is unknown the client reads the
    /// conversation back and answers the call as done when it is missing
    /// ([`Safety::Recognised`]). Without an etag, a repeat that arrives after another caller
    /// created the id again purges the new conversation: give the etag to have it refused.
    pub async fn purge_conversation(&self, id: &str, options: PurgeOptions) -> Result<()> {
        let safety = if options.allow_missing {
            Safety::Retryable
        } else {
            Safety::Recognised
        };
        let mut call = Call::new(Method::POST, &["conversations", id, "purge"], safety)
            .query_opt("allowMissing", options.allow_missing.then_some("true"))
            .json(&model::EtagBody {
                etag: options.etag.as_deref(),
            })?;
        call.if_match = options.if_match;
        let _: model::Empty = self
            .recognised(
                call,
                // The conversation that this call purged answers a repeat as a missing one.
                |p| p.code == Code::NotFound || stale(p),
                || self.get_conversation(id, View::Basic),
                |now| match now {
                    Err(e) if e.is_not_found() => Some(model::Empty {}),
                    _ => None,
                },
            )
            .await?;
        Ok(())
    }

    /// One page of list messages.
    pub async fn list_messages_page(
        &self,
        id: &str,
        params: &ListMessages,
        page_token: Option<&str>,
    ) -> Result<MessagePage> {
        let order = match params.order_by {
            MessageOrder::Ascending => "order asc",
            MessageOrder::Descending => "order desc",
        };
        let call = Call::new(
            Method::GET,
            &["conversations", id, "messages"],
            Safety::Retryable,
        )
        .query("orderBy", order)
        .query_opt("filter", params.filter.as_deref())
        .query_opt("pageSize", params.page_size)
        .query_opt("pageToken", page_token);
        self.call(call).await
    }

    /// Every message of a conversation that `params` selects, page after page.
    pub fn list_messages(
        &self,
        id: &str,
        params: ListMessages,
    ) -> impl Stream<Item = Result<Message>> + Send + 'static {
        let (client, id) = (self.clone(), id.to_owned());
        pages(move |token| {
            let (client, id, params) = (client.clone(), id.clone(), params.clone());
            async move {
                let page = client
                    .list_messages_page(&id, &params, token.as_deref())
                    .await?;
                Ok((page.messages, page.next_page_token))
            }
        })
    }
}

/// The items of every page that `fetch` gives, following its next page token until there is
/// none (absent or empty). An error ends the stream after it is yielded.
fn pages<T, F, Fut>(fetch: F) -> impl Stream<Item = Result<T>> + Send + 'static
where
    T: Send + 'static,
    F: Fn(Option<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'static,
{
    // The state: the token of the next page, or `None` once the last page was read.
    stream::try_unfold(Some(None::<String>), move |state| {
        let next = state.map(&fetch);
        async move {
            let Some(fetching) = next else {
                return Ok::<_, Error>(None);
            };
            let (items, token) = fetching.await?;
            let state = token.filter(|t| !t.is_empty()).map(Some);
            Ok(Some((stream::iter(items.into_iter().map(Ok)), state)))
        }
    })
    .try_flatten()
    .boxed()
}
