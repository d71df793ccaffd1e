//! When DynamoDB fails: throttling is a 429 and an unreachable or failing DynamoDB a 503, both
//! with `Retry-After`; anything else a 500 whose body says nothing of the cause.

use std::time::{Duration, Instant};

use api_tests::{Method, Req, Res, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A stand-in for DynamoDB that answers every request with one status and error type.
async fn failing_dynamodb(status: u16, error_type: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buffer).await;
                let body = format!(
                    "{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{error_type}\",\"message\":\"injected\"}}"
                );
                let response = format!(
                    "HTTP/1.1 {status} Injected\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

async fn get_through(endpoint: &str) -> (Res, Duration) {
    let app = TestApp::app_at(endpoint).await;
    let started = Instant::now();
    let res = TestApp::call_app(&app, Req::new(Method::Get).owner("alice").id("abc")).await;
    (res, started.elapsed())
}

#[tokio::test]
async fn throttling_after_the_sdk_retries_is_429_with_retry_after() {
    let endpoint = failing_dynamodb(400, "ThrottlingException").await;
    let (res, elapsed) = get_through(&endpoint).await;
    res.assert_problem(429, "RESOURCE_EXHAUSTED");
    assert_eq!(res.header("retry-after"), Some("1"));
    assert!(elapsed < Duration::from_secs(8), "bounded: {elapsed:?}");
}

#[tokio::test]
async fn a_dynamodb_server_error_is_503_with_retry_after() {
    let endpoint = failing_dynamodb(500, "InternalServerError").await;
    let (res, _) = get_through(&endpoint).await;
    res.assert_problem(503, "UNAVAILABLE");
    assert_eq!(res.header("retry-after"), Some("2"));
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_503_within_the_timeouts() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let (res, elapsed) = get_through(&format!("http://127.0.0.1:{port}")).await;
    res.assert_problem(503, "UNAVAILABLE");
    assert!(elapsed < Duration::from_secs(8), "bounded: {elapsed:?}");
}

#[tokio::test]
async fn an_unexpected_dynamodb_error_is_a_500_that_leaks_nothing() {
    let endpoint = failing_dynamodb(400, "ValidationException").await;
    let (res, _) = get_through(&endpoint).await;
    res.assert_problem(500, "INTERNAL");
    assert_eq!(res.body["detail"], "internal error");
    assert!(!res.body.to_string().contains("injected"));
    assert!(res.header("retry-after").is_none());
}
