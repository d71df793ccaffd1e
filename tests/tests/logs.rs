//! The log: one structured line per request with method, route, status, latency, request id and
//! DynamoDB request count, and never what callers store or the tokens they hold.

use std::io::Write;
use std::sync::{Arc, Mutex};

use api_tests::{Method, Req, TestApp, id, owner};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_logs_one_json_line_without_content_metadata_or_tokens() {
    let t = TestApp::new().await;
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (o, i) = (owner(), id());
    let created = t
        .create(
            &o,
            &i,
            json!({"agents": ["bot"], "displayName": "secret-display-name",
                "labels": {"team": "secret-label-value"}, "metadata": {"k": "secret-metadata-value"}}),
        )
        .await;
    let etag = created["etag"].as_str().expect("etag").to_owned();
    for n in 0..3 {
        let res = t
            .call(Req::new(Method::Append).owner(&o).id(&i).json(
                json!({"type": "USER", "content": format!("secret-content-{n}"),
                        "metadata": {"m": "secret-message-metadata"}}),
            ))
            .await;
        assert_eq!(res.status, 201);
    }
    let page = t
        .call(
            Req::new(Method::ListMessages)
                .owner(&o)
                .id(&i)
                .query("pageSize", "1"),
        )
        .await;
    let token = page.body["nextPageToken"]
        .as_str()
        .expect("a token")
        .to_owned();
    t.call(
        Req::new(Method::ListMessages)
            .owner(&o)
            .id(&i)
            .query("pageSize", "1")
            .query("pageToken", &token),
    )
    .await;
    let stale = t
        .call(
            Req::new(Method::Update)
                .owner(&o)
                .id(&i)
                .header("if-match", &etag)
                .json(json!({"displayName": "secret-new-name"})),
        )
        .await;
    assert_eq!(stale.status, 412);

    let text = String::from_utf8(capture.0.lock().expect("log").clone()).expect("UTF-8 log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request" || l["message"] == "request failed")
        .collect();
    assert_eq!(requests.len(), 7, "one line per request: {text}");
    for line in &requests {
        for field in [
            "method",
            "route",
            "path",
            "status",
            "latency_ms",
            "request_id",
        ] {
            assert!(!line[field].is_null(), "{field} missing in {line}");
        }
        assert!(line["dynamodb_requests"].as_u64().is_some(), "{line}");
    }
    assert_eq!(requests[0]["route"], "/v1/conversations");
    assert_eq!(requests[0]["dynamodb_requests"], 1, "create is one PutItem");
    assert_eq!(requests[1]["route"], "/v1/conversations/{id}/messages");
    assert_eq!(
        requests[1]["dynamodb_requests"], 2,
        "append reads and transacts"
    );
    assert_eq!(requests[6]["status"], 412);
    for secret in ["secret-", &token, etag.trim_matches('"')] {
        assert!(!text.contains(secret), "the log shows {secret:?}: {text}");
    }
}
