//! A local Lambda Runtime API (the 2018-06-01 interface a function's runtime loop polls): it hands
//! out queued events on `GET /next`, takes answers on `POST /response` or `/error`, and records
//! when each happened. One emulator stands for one function; any number of processes may poll it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};

/// What came back for one invocation.
#[derive(Debug)]
pub struct Outcome {
    /// When the event left the emulator (the answer to `GET /next`).
    pub delivered: Instant,
    /// When the function's answer arrived.
    pub answered: Instant,
    /// `false` when the function reported an invocation error.
    pub ok: bool,
    /// The answer's body.
    pub body: Bytes,
}

impl Outcome {
    /// The function's time for this event: from handing it out to its answer.
    pub fn latency(&self) -> Duration {
        self.answered - self.delivered
    }

    /// The answer as JSON (an API Gateway proxy response for the REST functions).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct Queued {
    id: String,
    event: Bytes,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    pending: Mutex<HashMap<String, (Instant, oneshot::Sender<Outcome>)>>,
    polls: Mutex<Vec<Instant>>,
    polled: Notify,
    init_errors: Mutex<Vec<String>>,
}

/// A running emulator; dropping it stops the server and every connection.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Queued>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self._server.abort();
    }
}

impl RuntimeApi {
    /// Starts an emulator on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(rx),
            pending: Mutex::new(HashMap::new()),
            polls: Mutex::new(Vec::new()),
            polled: Notify::new(),
            init_errors: Mutex::new(Vec::new()),
        });
        let state = shared.clone();
        let server = api_tests::serve::spawn(listener, move |req| {
            let state = state.clone();
            async move { route(&state, req).await }
        });
        Ok(Self {
            addr,
            shared,
            queue,
            _server: server,
        })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for functions polling this emulator.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: &serde_json::Value) -> Result<Outcome, String> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            id: uuid::Uuid::new_v4().to_string(),
            event: Bytes::from(serde_json::to_vec(event).map_err(|e| e.to_string())?),
            reply,
        };
        self.queue
            .send(queued)
            .map_err(|_| "the emulator stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the invocation was dropped".to_owned())
    }

    /// Waits until some process polls `GET /next` at or after `since`; returns when it did.
    pub async fn first_poll_after(&self, since: Instant) -> Instant {
        loop {
            let notified = self.shared.polled.notified();
            if let Some(at) = lock(&self.shared.polls)
                .iter()
                .copied()
                .find(|t| *t >= since)
            {
                return at;
            }
            notified.await;
        }
    }

    /// Init errors the functions reported.
    pub fn init_errors(&self) -> Vec<String> {
        lock(&self.shared.init_errors).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}

async fn route(state: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    };
    if rest == "invocation/next" {
        let polled = Instant::now();
        lock(&state.polls).push(polled);
        state.polled.notify_waiters();
        let next = state.queue.lock().await.recv().await;
        let Some(queued) = next else {
            return reply(StatusCode::GONE, Bytes::new());
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            + 30_000;
        lock(&state.pending).insert(queued.id.clone(), (Instant::now(), queued.reply));
        let mut response = reply(StatusCode::OK, queued.event);
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        set("lambda-runtime-aws-request-id", queued.id);
        set("lambda-runtime-deadline-ms", deadline.to_string());
        set(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
        );
        set("content-type", "application/json".into());
        return response;
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if rest == "init/error" {
        lock(&state.init_errors).push(String::from_utf8_lossy(&body).into_owned());
        return reply(StatusCode::ACCEPTED, Bytes::new());
    }
    let answered = Instant::now();
    let parsed = rest
        .strip_prefix("invocation/")
        .and_then(|r| r.rsplit_once('/'));
    let Some((id, kind @ ("response" | "error"))) = parsed else {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    };
    let Some((delivered, sender)) = lock(&state.pending).remove(id) else {
        return reply(StatusCode::BAD_REQUEST, Bytes::new());
    };
    let _ = sender.send(Outcome {
        delivered,
        answered,
        ok: kind == "response",
        body,
    });
    reply(StatusCode::ACCEPTED, Bytes::new())
}
