//! The API's failures: one enum, one mapping to RFC 9457 problem responses.

use std::error::Error as StdError;

use serde::Serialize;

/// A boxed source error, kept for the logs and never sent to a client.
pub type Source = Box<dyn StdError + Send + Sync + 'static>;

/// One broken field of a request body, listed in a 422 problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The JSON path of the field, e.g. `agents[2]` or `labels.team`.
    pub field: String,
    /// A short machine-readable code, e.g. `required`, `too_long`, `invalid`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Which precondition a stale etag came from: it decides between 409 and 412.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtagSource {
    /// The `etag` field of the body or the `etag` query parameter (AIP-154): 409 `ABORTED`.
    Body,
    /// The `If-Match` header (RFC 9110): 412 `FAILED_PRECONDITION`.
    IfMatch,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `INVALID_ARGUMENT`: malformed body, unknown field, bad query parameter, mask, filter,
    /// order, page token, `fields` or id.
    #[error("{0}")]
    InvalidArgument(String),
    /// 422 `INVALID_ARGUMENT`: field values that break their rules; lists every broken field.
    #[error("{} invalid", plural(.0.len(), "field is", "fields are"))]
    InvalidFields(Vec<FieldError>),
    /// 400 `FAILED_PRECONDITION`: the state does not allow the operation (append to a completed
    /// conversation).
    #[error("{0}")]
    FailedPrecondition(String),
    /// 401 `UNAUTHENTICATED`: no caller identity.
    #[error("the request carries no caller identity")]
    Unauthenticated,
    /// 403 `PERMISSION_DENIED`: `X-On-Behalf-Of` from a caller without the delegation scope —
    /// about the caller's rights, never about a resource (those are 404).
    #[error("{0}")]
    PermissionDenied(String),
    /// 404 `NOT_FOUND`: missing, deleted where that counts as missing, or another owner's.
    #[error("{0} was not found")]
    NotFound(String),
    /// 405 `METHOD_NOT_ALLOWED`: a path of the API with a method it does not serve; `allow` lists
    /// the methods it does serve (the `Allow` header).
    #[error("{path} does not serve {method}; it serves {}", .allow.join(", "))]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The path asked for.
        path: String,
        /// The methods the path serves.
        allow: &'static [&'static str],
    },
    /// 409 `ALREADY_EXISTS`: create with a taken id; undelete of a live conversation.
    #[error("{0}")]
    AlreadyExists(String),
    /// 409 `ABORTED` (body etag) or 412 `FAILED_PRECONDITION` (`If-Match`): the etag is stale.
    #[error("the etag does not match the current version of {resource}")]
    Stale {
        /// The resource name.
        resource: String,
        /// Where the stale etag came from.
        source_kind: EtagSource,
    },
    /// 409 `ABORTED` (body etag) or 412 `FAILED_PRECONDITION` (`If-Match`): a precondition
    /// named a version of a conversation that does not exist (missing, expired or another
    /// owner's), which no etag can match (RFC 9110); nothing was written or created.
    #[error("{resource} does not exist, so no etag or If-Match precondition can hold")]
    PreconditionOnMissing {
        /// The resource name.
        resource: String,
        /// Where the precondition came from.
        source_kind: EtagSource,
    },
    /// 409 `ABORTED`: too many concurrent writers; safe to retry.
    #[error("{0}")]
    Aborted(String),
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    #[error("a request body must be application/json, not {0}")]
    UnsupportedMediaType(String),
    /// 429 `RESOURCE_EXHAUSTED`: DynamoDB throttled after the SDK's retries.
    #[error("the service is busy; retry later")]
    Throttled(#[source] Source),
    /// 503 `UNAVAILABLE`: DynamoDB unreachable or timed out.
    #[error("the service is unavailable; retry later")]
    Unavailable(#[source] Source),
    /// 500 `INTERNAL`: anything else. The source is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Source),
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl ApiError {
    /// A 500 from anything that can be boxed as an error.
    pub fn internal(source: impl Into<Source>) -> Self {
        Self::Internal(source.into())
    }

    /// A 422 for a single field.
    pub fn field(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidFields(vec![FieldError::new(field, code, message)])
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidArgument(_) | Self::FailedPrecondition(_) => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::AlreadyExists(_) | Self::Aborted(_) => 409,
            Self::Stale { source_kind, .. } | Self::PreconditionOnMissing { source_kind, .. } => {
                match source_kind {
                    EtagSource::Body => 409,
                    EtagSource::IfMatch => 412,
                }
            }
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::InvalidFields(_) => 422,
            Self::Throttled(_) => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The canonical code name of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidArgument(_) | Self::InvalidFields(_) => "INVALID_ARGUMENT",
            Self::FailedPrecondition(_) => "FAILED_PRECONDITION",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::Aborted(_) => "ABORTED",
            Self::Stale { source_kind, .. } | Self::PreconditionOnMissing { source_kind, .. } => {
                match source_kind {
                    EtagSource::Body => "ABORTED",
                    EtagSource::IfMatch => "FAILED_PRECONDITION",
                }
            }
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::Throttled(_) => "RESOURCE_EXHAUSTED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Seconds a client should wait before retrying, for the errors that carry `Retry-After`.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Throttled(_) => Some(1),
            Self::Unavailable(_) => Some(2),
            _ => None,
        }
    }

    /// The methods a 405 names in its `Allow` header.
    pub fn allow(&self) -> Option<String> {
        match self {
            Self::MethodNotAllowed { allow, .. } => Some(allow.join(", ")),
            _ => None,
        }
    }

    /// The RFC 9457 body of this error.
    pub fn problem(&self, request_id: &str) -> serde_json::Value {
        let status = self.status();
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": title(status),
            "status": status,
            "detail": self.to_string(),
            "code": self.code(),
        });
        if let (Self::InvalidFields(errors), Some(map)) = (self, body.as_object_mut()) {
            map.insert(
                "errors".into(),
                serde_json::to_value(errors).unwrap_or_default(),
            );
        }
        if let Some(map) = body.as_object_mut() {
            map.insert("requestId".into(), request_id.into());
        }
        body
    }
}

/// The reason phrase used as a problem's `title`.
fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_422_lists_every_field_and_counts_them_in_the_detail() {
        let error = ApiError::InvalidFields(vec![
            FieldError::new("agents", "required", "at least one agent is required"),
            FieldError::new("labels.x", "too_long", "too long"),
        ]);
        let body = error.problem("req-1");
        assert_eq!(body["status"], 422);
        assert_eq!(body["title"], "Unprocessable Content");
        assert_eq!(body["code"], "INVALID_ARGUMENT");
        assert_eq!(body["detail"], "2 fields are invalid");
        assert_eq!(body["errors"][0]["field"], "agents");
        assert_eq!(body["errors"][1]["code"], "too_long");
        assert_eq!(body["requestId"], "req-1");
    }

    #[test]
    fn a_stale_etag_is_409_aborted_from_the_body_and_412_from_if_match() {
        let body = ApiError::Stale {
            resource: "conversations/a".into(),
            source_kind: EtagSource::Body,
        };
        let header = ApiError::Stale {
            resource: "conversations/a".into(),
            source_kind: EtagSource::IfMatch,
        };
        assert_eq!((body.status(), body.code()), (409, "ABORTED"));
        assert_eq!(
            (header.status(), header.code()),
            (412, "FAILED_PRECONDITION")
        );
    }

    #[test]
    fn a_500_never_shows_its_source() {
        let error = ApiError::internal("secret table arn:aws:dynamodb:xyz");
        let body = error.problem("r").to_string();
        assert!(!body.contains("arn:aws"), "{body}");
        assert_eq!(error.status(), 500);
    }
}
