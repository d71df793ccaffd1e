//! Test helpers: DynamoDB Local, a fresh table per test binary, a request-counting SDK client,
//! hand-built `lambda_http` requests and readable responses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use conversations::app::sdk_config;
use conversations::domain::page_token::TokenKey;
use conversations::lambda_http::{Body, Request, RequestExt, Response};
use conversations::{App, AuthMode, Config};
use serde_json::Value;
use tokio::sync::OnceCell;

pub mod api_proxy;
pub mod fault_proxy;
pub mod http_client;
pub mod serve;
pub mod stream;

/// Records the operation of every DynamoDB call a client makes: one entry per logical call,
/// however many attempts the SDK's retries made of it (a loaded machine's timeout retry must
/// not change what the tests count).
///
/// It also records how many items each `Query` read (`ScannedCount`: before any filter), which
/// proves that a key condition, not a filter, bounds a read.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<Mutex<Vec<(String, u32)>>>, Arc<Mutex<Vec<i32>>>);

impl Counter {
    /// The operations called since the last take, emptied (retries not counted).
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .filter(|(_, attempt)| *attempt == 1)
            .map(|(operation, _)| operation)
            .collect()
    }

    /// The `ScannedCount` of each `Query` answered since the last call, emptied.
    pub fn take_scanned(&self) -> Vec<i32> {
        std::mem::take(&mut *self.1.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    /// Runs once per HTTP request sent: the operation is named by the `X-Amz-Target` header,
    /// e.g. `DynamoDB_20120810.GetItem`, and the attempt by the orchestrator's `RequestAttempts`.
    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = ctx
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown");
        let name = target.rsplit('.').next().unwrap_or(target).to_owned();
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, attempt));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Ok(output) = ctx.output_or_error()
            && let Some(query) = output.downcast_ref::<QueryOutput>()
        {
            self.1
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(query.scanned_count());
        }
        Ok(())
    }
}

fn require_endpoint() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts DynamoDB Local"
    );
}

/// A plain SDK client for DynamoDB Local, with [`patient_timeouts`].
pub async fn client() -> Client {
    require_endpoint();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
        .timeout_config(patient_timeouts())
        .build();
    Client::from_conf(config)
}

/// The timeouts of the tests' own clients and of the in-process apps that do not test timeouts.
/// DynamoDB Local is many times slower than DynamoDB: on a loaded two-core machine, with 50
/// transactions racing on one conversation, a single answer took over the functions' 2 s attempt
/// timeout (a 503 that said nothing of the race the test was about) and a
/// 25-item seed over their 5 s operation timeout. The functions' own timeouts are tested where
/// they are the subject: `faults.rs`, through [`TestApp::through`], which keeps them.
pub fn patient_timeouts() -> aws_sdk_dynamodb::config::timeout::TimeoutConfig {
    aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .operation_timeout(std::time::Duration::from_secs(60))
        .build()
}

static TABLE: OnceCell<String> = OnceCell::const_new();

/// The table of this test binary: created once, fresh for every run.
pub async fn table() -> String {
    TABLE
        .get_or_init(|| async {
            let name = format!("conversations-test-{}", uuid::Uuid::new_v4());
            conversations::store::schema::ensure_table(&client().await, &name)
                .await
                .expect("create the test table");
            name
        })
        .await
        .clone()
}

/// A fresh, unique owner id.
pub fn owner() -> String {
    format!("user-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh, unique client-chosen conversation id.
pub fn id() -> String {
    format!("c-{}", uuid::Uuid::new_v4().simple())
}

/// Every method, dispatched to its function's handler in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Create,
    Get,
    List,
    Update,
    Delete,
    Undelete,
    Complete,
    Append,
    ListMessages,
    GetMessage,
    BatchAppend,
    UpdateMessage,
    DeleteMessage,
    ClearMessages,
    Purge,
    /// Any method on any path, as API Gateway's `ANY` and `$default` routes deliver them to the
    /// fallback function.
    Unserved(&'static str, &'static str),
}

impl Method {
    fn http(self) -> (&'static str, &'static str) {
        match self {
            Self::Create => ("POST", "/v1/conversations"),
            Self::Get => ("GET", "/v1/conversations/{id}"),
            Self::List => ("GET", "/v1/conversations"),
            Self::Update => ("PATCH", "/v1/conversations/{id}"),
            Self::Delete => ("DELETE", "/v1/conversations/{id}"),
            Self::Undelete => ("POST", "/v1/conversations/{id}/undelete"),
            Self::Complete => ("POST", "/v1/conversations/{id}/complete"),
            Self::Append => ("POST", "/v1/conversations/{id}/messages"),
            Self::ListMessages => ("GET", "/v1/conversations/{id}/messages"),
            Self::GetMessage => ("GET", "/v1/conversations/{id}/messages/{order}"),
            Self::BatchAppend => ("POST", "/v1/conversations/{id}/messages/batch"),
            Self::UpdateMessage => ("PATCH", "/v1/conversations/{id}/messages/{order}"),
            Self::DeleteMessage => ("DELETE", "/v1/conversations/{id}/messages/{order}"),
            Self::ClearMessages => ("POST", "/v1/conversations/{id}/messages/clear"),
            Self::Purge => ("POST", "/v1/conversations/{id}/purge"),
            Self::Unserved(method, path) => (method, path),
        }
    }
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Req {
    method: Method,
    id: Option<String>,
    order: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    context: Option<Value>,
    prefix: String,
}

impl Req {
    /// A request to a method; `id` is the path id for the methods that have one.
    pub fn new(method: Method) -> Self {
        Self {
            method,
            id: None,
            order: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            context: None,
            prefix: String::new(),
        }
    }

    /// Puts `prefix` before the path, as `lambda_http` does with a named API Gateway stage.
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Sets the `{id}` path parameter.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Sets the `{order}` path parameter (get message).
    pub fn order(mut self, order: impl ToString) -> Self {
        self.order = Some(order.to_string());
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: &str) -> Self {
        self.headers.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Calls as this owner (the `X-Owner-Id` header).
    pub fn owner(self, owner: &str) -> Self {
        self.header("x-owner-id", owner)
    }

    /// Acts for this end user (the `X-On-Behalf-Of` header).
    pub fn on_behalf_of(self, user: &str) -> Self {
        self.header("x-on-behalf-of", user)
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: Value) -> Self {
        self.header("content-type", "application/json")
            .raw(body.to_string().into_bytes())
    }

    /// A raw body.
    pub fn raw(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// An API Gateway request context (JSON), e.g. with JWT claims.
    pub fn context(mut self, context: Value) -> Self {
        self.context = Some(context);
        self
    }

    /// The `lambda_http` request, as API Gateway and cargo lambda would deliver it.
    pub fn build(self) -> Request {
        let (method, template) = self.method.http();
        let mut path = match &self.id {
            Some(id) => template.replace("{id}", id),
            None => template.to_owned(),
        };
        if let Some(order) = &self.order {
            path = path.replace("{order}", order);
        }
        let path = format!("{}{path}", self.prefix);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("https://api.example.com{path}"));
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let body = match self.body {
            Some(b) => Body::Binary(b),
            None => Body::Empty,
        };
        let mut query: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in self.query {
            query.entry(k).or_default().push(v);
        }
        let mut req = builder
            .body(body)
            .expect("valid request")
            .with_query_string_parameters(query);
        let mut params = HashMap::new();
        if let Some(id) = self.id {
            params.insert("id".to_owned(), id);
        }
        if let Some(order) = self.order {
            params.insert("order".to_owned(), order);
        }
        if !params.is_empty() {
            req = req.with_path_parameters(params);
        }
        if let Some(context) = self.context {
            req = req.with_request_context(
                serde_json::from_value(context).expect("valid request context"),
            );
        }
        req
    }
}

/// A response, read.
#[derive(Debug, Clone)]
pub struct Res {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Res {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reads a handler's response.
    pub fn from_response(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let bytes: Vec<u8> = match body {
            Body::Empty => Vec::new(),
            Body::Text(t) => t.into_bytes(),
            Body::Binary(b) => b,
            _ => Vec::new(),
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    /// Asserts an RFC 9457 problem with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "body: {}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], "about:blank");
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert_eq!(self.body["requestId"].as_str(), self.header("x-request-id"));
    }
}

/// An app over DynamoDB Local with its own request counter.
pub struct TestApp {
    pub app: App,
    pub counter: Counter,
    pub table: String,
    raw: Client,
}

impl TestApp {
    /// An app reading the owner from `X-Owner-Id`.
    pub async fn new() -> Self {
        Self::with_auth(AuthMode::Header).await
    }

    /// An app with this identity source.
    pub async fn with_auth(auth: AuthMode) -> Self {
        Self::build(auth, None, conversations::app::DEFAULT_DELEGATION_SCOPE).await
    }

    /// An app reading the caller from the JWT authorizer, whose delegation scope is `scope`
    /// (`CONVERSATIONS_DELEGATION_SCOPE`).
    pub async fn with_delegation_scope(scope: &str) -> Self {
        Self::build(AuthMode::Jwt, None, scope).await
    }

    /// An app reading the owner from `X-Owner-Id` whose DynamoDB requests go through `endpoint`
    /// (a [`fault_proxy::FaultProxy`]), with the functions' own timeouts; [`Self::stored`] and
    /// friends still read DynamoDB Local directly.
    pub async fn through(endpoint: &str) -> Self {
        Self::build(
            AuthMode::Header,
            Some(endpoint),
            conversations::app::DEFAULT_DELEGATION_SCOPE,
        )
        .await
    }

    async fn build(auth: AuthMode, endpoint: Option<&str>, delegation_scope: &str) -> Self {
        conversations::app::init_tracing();
        let table = table().await;
        let counter = Counter::default();
        let mut config = conversations::app::dynamodb_config()
            .await
            .interceptor(counter.clone());
        config = match endpoint {
            Some(endpoint) => config.endpoint_url(endpoint),
            None => config.timeout_config(patient_timeouts()),
        };
        let app = App::new(
            Config {
                table: table.clone(),
                auth,
                token_key: TokenKey::new("test-key"),
                delegation_scope: delegation_scope.into(),
                write_layout: conversations::store::item::LAYOUT,
            },
            Client::from_conf(config.build()),
        );
        Self {
            app,
            counter,
            table,
            raw: client().await,
        }
    }

    /// Calls a method's handler in-process.
    pub async fn call_app(app: &App, req: Req) -> Res {
        let method = req.method;
        let req = req.build();
        let response = match method {
            Method::Create => create_conversation::handle(app, req).await,
            Method::Get => get_conversation::handle(app, req).await,
            Method::List => list_conversations::handle(app, req).await,
            Method::Update => update_conversation::handle(app, req).await,
            Method::Delete => delete_conversation::handle(app, req).await,
            Method::Undelete => undelete_conversation::handle(app, req).await,
            Method::Complete => complete_conversation::handle(app, req).await,
            Method::Append => append_message::handle(app, req).await,
            Method::ListMessages => list_messages::handle(app, req).await,
            Method::GetMessage => get_message::handle(app, req).await,
            Method::BatchAppend => batch_append_messages::handle(app, req).await,
            Method::UpdateMessage => update_message::handle(app, req).await,
            Method::DeleteMessage => delete_message::handle(app, req).await,
            Method::ClearMessages => clear_messages::handle(app, req).await,
            Method::Purge => purge_conversation::handle(app, req).await,
            Method::Unserved(..) => fallback::handle(app, req).await,
        };
        Res::from_response(response.expect("handlers answer every request"))
    }

    /// Calls a method's handler in-process.
    pub async fn call(&self, req: Req) -> Res {
        Self::call_app(&self.app, req).await
    }

    /// Creates a conversation for `owner` with id `id` and returns its body.
    pub async fn create(&self, owner: &str, id: &str, body: Value) -> Value {
        let res = self
            .call(
                Req::new(Method::Create)
                    .owner(owner)
                    .query("conversationId", id)
                    .json(body),
            )
            .await;
        assert_eq!(res.status, 201, "create failed: {}", res.body);
        res.body
    }

    /// Appends a `USER` message with this content as `owner`.
    pub async fn append(&self, owner: &str, id: &str, content: impl Into<String>) -> Res {
        let body = serde_json::json!({"type": "USER", "content": content.into()});
        self.call(Req::new(Method::Append).owner(owner).id(id).json(body))
            .await
    }

    /// Creates a conversation holding `n` `USER` messages (contents `m1`, `m2`, …), written as
    /// the store writes them but `BatchWriteItem`s at a time (thousands in seconds), with the
    /// conversation's `messageCount` moved to match. Returns the conversation as then stored.
    pub async fn with_messages(&self, owner: &str, id: &str, n: u64) -> Value {
        use conversations::domain::ids::{ConversationId, Owner};
        use conversations::domain::time::Timestamp;

        let created = self
            .create(owner, id, serde_json::json!({"agents": ["a"]}))
            .await;
        let incarnation = Timestamp::parse(created["createTime"].as_str().expect("createTime"))
            .expect("a timestamp");
        let o = Owner::from_header(owner).expect("an owner");
        let conversation = ConversationId::parse(id).expect("an id");
        let items: Vec<_> = (1..=n)
            .map(|order| {
                let at =
                    Timestamp::from_micros(incarnation.micros() + order as i64).expect("valid");
                user_message_item(
                    &o,
                    &conversation,
                    incarnation,
                    order,
                    format!("m{order}"),
                    at,
                )
            })
            .collect();
        self.put_items(items).await;
        self.raw
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("CONV#{owner}#{id}")))
            .key("sk", AttributeValue::S("C".into()))
            .update_expression("SET message_count = :n, last_order = :n")
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .send()
            .await
            .expect("count the seeded messages");
        self.call(Req::new(Method::Get).owner(owner).id(id))
            .await
            .body
    }

    /// Writes `USER` messages (contents `old{order}`) at `orders` under an earlier incarnation
    /// of the conversation `id` — `earlier` microseconds before the live one's `createTime` —
    /// as a conversation that expired or was purged leaves them behind until the purger deletes
    /// them.
    pub async fn leftovers(
        &self,
        owner: &str,
        id: &str,
        earlier: i64,
        orders: impl IntoIterator<Item = u64>,
    ) {
        use conversations::domain::ids::{ConversationId, Owner};
        use conversations::domain::time::Timestamp;

        let live = self.stored(owner, id).await.expect("the live conversation");
        let created = attr_n(&live, "create_time").expect("create_time");
        let incarnation = Timestamp::from_micros(created - earlier).expect("valid");
        let o = Owner::from_header(owner).expect("an owner");
        let conversation = ConversationId::parse(id).expect("an id");
        let items = orders
            .into_iter()
            .map(|order| {
                let content = format!("old{order}");
                user_message_item(&o, &conversation, incarnation, order, content, incarnation)
            })
            .collect();
        self.put_items(items).await;
    }

    /// Puts items with `BatchWriteItem`s of 25, around the counter.
    async fn put_items(&self, items: Vec<HashMap<String, AttributeValue>>) {
        for chunk in items.chunks(25) {
            let writes = chunk
                .iter()
                .map(|i| {
                    aws_sdk_dynamodb::types::WriteRequest::builder()
                        .put_request(
                            aws_sdk_dynamodb::types::PutRequest::builder()
                                .set_item(Some(i.clone()))
                                .build()
                                .expect("an item"),
                        )
                        .build()
                })
                .collect();
            let mut pending: Vec<_> = writes;
            while !pending.is_empty() {
                pending = self
                    .raw
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .expect("seed messages")
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
            }
        }
    }

    /// The stored conversation, read around the counter: its head item with the large fields
    /// its body holds (layout 4: `store::split`), or its whole item (layout 3). `None` when the
    /// head is gone.
    pub async fn stored(&self, owner: &str, id: &str) -> Option<HashMap<String, AttributeValue>> {
        let mut head = self.stored_item(owner, id, "C").await?;
        if let Some(body) = self.stored_item(owner, id, "B").await {
            for name in conversations::store::split::BODY_ATTRIBUTES {
                if let Some(value) = body.get(name) {
                    head.insert(name.to_owned(), value.clone());
                }
            }
        }
        Some(head)
    }

    /// One stored item of a conversation's collection by its sort key (`C` its head, `B` its
    /// body), read around the counter.
    pub async fn stored_item(
        &self,
        owner: &str,
        id: &str,
        sort_key: &str,
    ) -> Option<HashMap<String, AttributeValue>> {
        self.raw
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("CONV#{owner}#{id}")))
            .key("sk", AttributeValue::S(sort_key.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("read the stored item")
            .item
    }

    /// Every stored item of a conversation's collection (the conversation and its messages),
    /// every page of it.
    pub async fn collection(&self, owner: &str, id: &str) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .raw
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(format!("CONV#{owner}#{id}")))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("query the collection");
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return items,
            }
        }
    }

    /// The stored `message_count` of a conversation and how many message items its collection
    /// holds (the conversation and idempotency markers left out), read around the counter.
    pub async fn counted_messages(&self, owner: &str, id: &str) -> (Option<i64>, usize) {
        let stored = self
            .stored(owner, id)
            .await
            .expect("the conversation is stored");
        let messages = self
            .collection(owner, id)
            .await
            .iter()
            .filter(|item| attr_s(item, "sk").is_some_and(|sk| sk.starts_with("M#")))
            .count();
        (attr_n(&stored, "message_count"), messages)
    }

    /// The raw, uncounted client.
    pub fn raw(&self) -> &Client {
        &self.raw
    }
}

/// The item of a `USER` message with this content, as the store writes it.
fn user_message_item(
    owner: &conversations::domain::ids::Owner,
    conversation: &conversations::domain::ids::ConversationId,
    incarnation: conversations::domain::time::Timestamp,
    order: u64,
    content: String,
    at: conversations::domain::time::Timestamp,
) -> HashMap<String, AttributeValue> {
    use conversations::domain::etag::Version;
    use conversations::domain::message::{Message, MessageType};
    conversations::store::item::message_item(
        owner,
        incarnation,
        &Message {
            conversation: conversation.clone(),
            order,
            kind: MessageType::User,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
            metadata: None,
            create_time: at,
            version: Version(at.micros()),
        },
    )
}

/// A string attribute of a stored item.
pub fn attr_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A number attribute of a stored item.
pub fn attr_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}
