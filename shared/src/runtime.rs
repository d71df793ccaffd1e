//! The runtime loop every REST function runs: `lambda_http`'s adapter, with the API Gateway event
//! read as an HTTP API (payload 2.0) event first, and no tracing span per invocation.
//!
//! `lambda_http::run` reads each event as a REST API (payload 1.0) event first and, when that
//! fails, again as an HTTP API one, so every request of the stack's HTTP API was parsed twice;
//! and it wraps each invocation in a tracing span that every log line then repeats. The request
//! line already carries the request id, and the span and the second parse together cost about
//! 0.03 ms of every request (docs/performance.md, "Warm overhead, round 4"). REST API events
//! still work: they are read second.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_http::lambda_runtime::{Diagnostic, Runtime};
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Error, IntoResponse, LambdaEvent, Request, Service, service_fn};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// An API Gateway proxy event: an HTTP API (payload 2.0) event, else a REST API (payload 1.0)
/// one. Anything else is not an event these functions serve: the invocation fails, as it does
/// with `lambda_http::run`.
#[derive(Debug)]
pub struct GatewayEvent(LambdaRequest);

impl GatewayEvent {
    /// Whether it came from an HTTP API (payload 2.0).
    pub fn is_http_api(&self) -> bool {
        matches!(self.0, LambdaRequest::ApiGatewayV2(_))
    }
}

impl<'de> Deserialize<'de> for GatewayEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        if let Ok(event) = serde_json::from_str::<ApiGatewayV2httpRequest>(text) {
            check_body(event.body.as_deref(), event.is_base64_encoded)?;
            return Ok(Self(LambdaRequest::ApiGatewayV2(event)));
        }
        match serde_json::from_str::<ApiGatewayProxyRequest>(text) {
            Ok(event) => {
                check_body(event.body.as_deref(), event.is_base64_encoded)?;
                Ok(Self(LambdaRequest::ApiGatewayV1(event)))
            }
            Err(_) => Err(D::Error::custom(
                "this function expects an Amazon API Gateway event (an HTTP API's or a REST API's)",
            )),
        }
    }
}

/// A body the event marks as base64 must be base64: `lambda_http` decodes it with `expect`, so
/// one that is not would panic inside the invocation. API Gateway only marks bodies it encoded
/// itself; this is for any other invoker, whose invocation fails with a reason instead.
fn check_body<E: serde::de::Error>(body: Option<&str>, base64: bool) -> Result<(), E> {
    match body {
        Some(body) if base64 && STANDARD.decode(body).is_err() => Err(E::custom(
            "the event's body is marked as base64 (isBase64Encoded) but is not valid base64",
        )),
        _ => Ok(()),
    }
}

/// Starts the Lambda runtime loop with `handler` answering every request: `lambda_http::run`,
/// with the event read by [`GatewayEvent`] and without the per-invocation span.
pub async fn run<'a, R, S, E>(handler: S) -> Result<(), Error>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'a,
    R: IntoResponse,
    E: fmt::Debug + Into<Diagnostic>,
{
    let mut adapter = Adapter::from(handler);
    Runtime::new(service_fn(move |event: LambdaEvent<GatewayEvent>| {
        adapter.call(LambdaEvent::new(event.payload.0, event.context))
    }))
    .run()
    .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(event: serde_json::Value) -> Result<GatewayEvent, serde_json::Error> {
        serde_json::from_slice(event.to_string().as_bytes())
    }

    #[test]
    fn an_http_api_event_is_read_as_payload_2_and_a_rest_api_event_as_payload_1() {
        let http_api = json!({
            "version": "2.0", "routeKey": "GET /v1/conversations/{id}",
            "rawPath": "/v1/conversations/a", "rawQueryString": "view=FULL",
            "headers": {"x-owner-id": "alice"}, "pathParameters": {"id": "a"},
            "requestContext": {"http": {"method": "GET", "path": "/v1/conversations/a"},
                               "stage": "$default", "requestId": "r", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        assert!(read(http_api).expect("an HTTP API event").is_http_api());
        // An HTTP API's payload 1.0 is a REST API's event too.
        let rest_api = json!({
            "version": "1.0", "resource": "/v1/conversations/{id}",
            "path": "/v1/conversations/a", "httpMethod": "GET",
            "headers": {"X-Owner-Id": "alice"}, "multiValueHeaders": {"X-Owner-Id": ["alice"]},
            "pathParameters": {"id": "a"},
            "requestContext": {"httpMethod": "GET", "stage": "prod", "identity": {},
                               "requestTimeEpoch": 0},
            "isBase64Encoded": false
        });
        assert!(!read(rest_api).expect("a REST API event").is_http_api());
    }

    #[test]
    fn a_body_marked_base64_that_is_not_fails_the_invocation_instead_of_panicking() {
        let event = |body: &str| {
            json!({
                "version": "2.0", "routeKey": "POST /v1/conversations",
                "rawPath": "/v1/conversations", "rawQueryString": "",
                "headers": {"x-owner-id": "alice"},
                "requestContext": {"http": {"method": "POST", "path": "/v1/conversations"},
                                   "stage": "$default", "requestId": "r", "timeEpoch": 0},
                "body": body, "isBase64Encoded": true
            })
        };
        let error = read(event("not base64!")).expect_err("a body that is not base64");
        assert!(error.to_string().contains("isBase64Encoded"), "{error}");
        // The same event, its body encoded, converts into a request with the decoded body.
        let request: Request = read(event("e30=")).expect("a base64 body").0.into();
        assert_eq!(request.body().as_ref(), b"{}");
    }

    #[test]
    fn anything_but_an_api_gateway_event_fails_the_invocation() {
        for other in [
            json!({}),
            json!({"Records": []}),
            json!([1, 2]),
            json!("text"),
        ] {
            let error = read(other).expect_err("not an API Gateway event");
            assert!(error.to_string().contains("API Gateway"), "{error}");
        }
    }
}
