//! The events the benchmarks send: API Gateway HTTP API (payload 2.0) requests as the deployed
//! stage delivers them, with the caller in the JWT authorizer's claims.

use serde_json::{Map, Value, json};

/// One HTTP request to a function.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: &'static str,
    /// The path, e.g. `/v1/conversations/abc`.
    pub path: String,
    /// Query string pairs.
    pub query: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Option<Value>,
}

impl HttpRequest {
    /// A request without query or body.
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    /// With a query pair.
    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }

    /// With a JSON body.
    pub fn body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// The API Gateway event for `owner` (the JWT `sub`).
    pub fn event(&self, owner: &str) -> Value {
        self.event_for(owner, None)
    }

    /// The API Gateway event for the JWT `sub`, acting for `user` when given: the token then
    /// grants the delegation scope and the request carries `X-On-Behalf-Of`.
    pub fn event_for(&self, sub: &str, user: Option<&str>) -> Value {
        let raw_query = self
            .query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let query: Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
            .collect();
        let segments: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        let mut path_parameters = Map::new();
        if segments.len() >= 3 {
            path_parameters.insert("id".into(), segments[2].into());
        }
        // /v1/conversations/{id}/messages/{order}, not the routes .../messages/batch and
        // .../messages/clear (API Gateway gives those no {order}).
        if segments.len() == 5
            && segments[3] == "messages"
            && !matches!(segments[4], "batch" | "clear")
        {
            path_parameters.insert("order".into(), segments[4].into());
        }
        let mut headers = Map::new();
        headers.insert(
            "host".into(),
            "bench.execute-api.us-east-1.amazonaws.com".into(),
        );
        headers.insert("user-agent".into(), "bench".into());
        if self.body.is_some() {
            headers.insert("content-type".into(), "application/json".into());
        }
        let mut claims = json!({"sub": sub});
        if let Some(user) = user {
            headers.insert("x-on-behalf-of".into(), user.into());
            claims["scope"] = conversations::app::DEFAULT_DELEGATION_SCOPE.into();
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "bench",
                "domainName": "bench.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "bench",
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "bench"
                },
                "requestId": request_id,
                "routeKey": "$default",
                "stage": "$default",
                "time": "23/Nov/2026:00:00:00 +0000",
                "timeEpoch": 1_795_392_000_000_u64,
                "authorizer": {"jwt": {"claims": claims, "scopes": null}}
            },
            "isBase64Encoded": false
        });
        if !query.is_empty() {
            event["queryStringParameters"] = Value::Object(query);
        }
        if !path_parameters.is_empty() {
            event["pathParameters"] = Value::Object(path_parameters);
        }
        if let Some(body) = &self.body {
            event["body"] = Value::from(body.to_string());
        }
        event
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The status code of a function's API Gateway response.
pub fn status(response: &Value) -> u16 {
    response["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0)
}

/// The JSON body of a function's API Gateway response; `null` when it has none or it is not JSON.
pub fn body(response: &Value) -> Value {
    response["body"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_the_caller_path_query_and_body_as_api_gateway_sends_them() {
        let event = HttpRequest::new("PATCH", "/v1/conversations/abc")
            .query("updateMask", "displayName,labels")
            .body(json!({"displayName": "x"}))
            .event("user-1");
        assert_eq!(event["rawQueryString"], "updateMask=displayName%2Clabels");
        assert_eq!(
            event["queryStringParameters"]["updateMask"],
            "displayName,labels"
        );
        assert_eq!(event["pathParameters"]["id"], "abc");
        assert_eq!(event["requestContext"]["http"]["method"], "PATCH");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "user-1"
        );
        assert_eq!(event["body"], r#"{"displayName":"x"}"#);
        assert!(event["headers"].get("x-on-behalf-of").is_none());
        let message = HttpRequest::new("DELETE", "/v1/conversations/abc/messages/7").event("u");
        assert_eq!(message["pathParameters"]["order"], "7");
        let clear = HttpRequest::new("POST", "/v1/conversations/abc/messages/clear").event("u");
        assert_eq!(clear["pathParameters"]["id"], "abc");
        assert!(clear["pathParameters"].get("order").is_none());
        let delegated = HttpRequest::new("GET", "/v1/conversations").event_for("svc", Some("u1"));
        assert_eq!(delegated["headers"]["x-on-behalf-of"], "u1");
        assert_eq!(
            delegated["requestContext"]["authorizer"]["jwt"]["claims"]["scope"],
            conversations::app::DEFAULT_DELEGATION_SCOPE
        );
    }
}
