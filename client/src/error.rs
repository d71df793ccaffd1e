//! Errors: a problem+json answer of the service (RFC 9457, `../shared/API.md` "Errors") as a
//! typed [`Problem`] with its canonical [`Code`], or a transport failure.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The canonical error codes of the API (`code` of a problem).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Code {
    /// 400 (bad input) or 422 (a field breaks its rule; see [`Problem::errors`]).
    InvalidArgument,
    /// 400: append to a completed conversation; 412: a stale `If-Match`.
    FailedPrecondition,
    /// 401: no caller identity.
    Unauthenticated,
    /// 403: `X-On-Behalf-Of` without the delegation scope.
    PermissionDenied,
    /// 404: missing, deleted where that counts as missing, or another owner's.
    NotFound,
    /// 409: a taken id, or undelete of a live conversation.
    AlreadyExists,
    /// 409: a stale body `etag`.
    Aborted,
    /// 413: a body over 256 KiB.
    PayloadTooLarge,
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType,
    /// 429: DynamoDB throttled; retried by the client where safe.
    ResourceExhausted,
    /// 503: DynamoDB unreachable; retried by the client where safe.
    Unavailable,
    /// 500.
    Internal,
    /// A code this client does not know (a newer service), as sent.
    Other(String),
}

impl Code {
    fn parse(text: &str) -> Self {
        match text {
            "INVALID_ARGUMENT" => Self::InvalidArgument,
            "FAILED_PRECONDITION" => Self::FailedPrecondition,
            "UNAUTHENTICATED" => Self::Unauthenticated,
            "PERMISSION_DENIED" => Self::PermissionDenied,
            "NOT_FOUND" => Self::NotFound,
            "ALREADY_EXISTS" => Self::AlreadyExists,
            "ABORTED" => Self::Aborted,
            "PAYLOAD_TOO_LARGE" => Self::PayloadTooLarge,
            "UNSUPPORTED_MEDIA_TYPE" => Self::UnsupportedMediaType,
            "RESOURCE_EXHAUSTED" => Self::ResourceExhausted,
            "UNAVAILABLE" => Self::Unavailable,
            "INTERNAL" => Self::Internal,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code when an answer has no problem body: what the status means in the API.
    fn of_status(status: u16) -> Self {
        match status {
            400 | 422 => Self::InvalidArgument,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            409 => Self::Aborted,
            412 => Self::FailedPrecondition,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::ResourceExhausted,
            502..=504 => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// The canonical name (`NOT_FOUND`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::Aborted => "ABORTED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field-level problem of a 422 (or 400) answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    /// The field's path, as `agents` or `messages[3].content`.
    pub field: String,
    /// A short machine-readable reason (`required`, `too_long`, …).
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// An error answer of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status.
    pub status: u16,
    pub code: Code,
    pub title: String,
    pub detail: String,
    /// The fields that broke their rules (422), every one of them.
    pub errors: Vec<FieldError>,
    /// The service's request id (`requestId`, also the `x-request-id` header): quote it when
    /// asking about a failure.
    pub request_id: Option<String>,
    /// How long the service asked to wait (`Retry-After`, on 429 and 503).
    pub retry_after: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    title: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    errors: Vec<FieldError>,
    #[serde(default)]
    request_id: Option<String>,
}

impl Problem {
    /// The problem of an answer with `status`, its body and headers. A body that is not a problem
    /// (a proxy's HTML page) still gives a problem: the code from the status, the body's start as
    /// the detail.
    pub fn from_answer(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        match serde_json::from_slice::<Body>(body) {
            Ok(parsed) => Self {
                status,
                code: parsed
                    .code
                    .as_deref()
                    .map_or_else(|| Code::of_status(status), Code::parse),
                title: parsed.title,
                detail: parsed.detail,
                errors: parsed.errors,
                request_id: parsed.request_id.or(request_id),
                retry_after,
            },
            Err(_) => Self {
                status,
                code: Code::of_status(status),
                title: String::new(),
                detail: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
                errors: Vec::new(),
                request_id,
                retry_after,
            },
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        let detail = if self.detail.is_empty() {
            &self.title
        } else {
            &self.detail
        };
        if !detail.is_empty() {
            write!(f, ": {detail}")?;
        }
        for (i, e) in self.errors.iter().enumerate() {
            let sep = if i == 0 { " — " } else { "; " };
            write!(f, "{sep}{} ({}): {}", e.field, e.code, e.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request {id}]")?;
        }
        Ok(())
    }
}

/// What a call of the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with a problem.
    #[error("{0}")]
    Api(Box<Problem>),
    /// The service could not be reached, or the connection broke (after the retries allowed).
    #[error("cannot reach the service: {0}")]
    Transport(#[from] reqwest::Error),
    /// A success answer this client cannot read (a service of another version).
    #[error("unexpected answer (HTTP {status}): {message}")]
    Decode { status: u16, message: String },
    /// A value given to the client that the API cannot take (a bad base URL).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The problem, when the service answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Api(problem) => Some(problem),
            _ => None,
        }
    }

    /// The canonical code, when the service answered with a problem.
    pub fn code(&self) -> Option<&Code> {
        self.problem().map(|p| &p.code)
    }

    /// A 404 `NOT_FOUND`.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(&Code::NotFound)
    }

    /// A failed precondition on the etag: 409 `ABORTED` (body etag) or 412 (`If-Match`): read
    /// the resource again and decide.
    pub fn is_stale_etag(&self) -> bool {
        matches!(self.problem(), Some(p) if p.code == Code::Aborted || p.status == 412)
    }
}

/// The result of a call of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_body_gives_its_code_fields_and_request_id() {
        let body = br#"{"type":"about:blank","title":"Unprocessable Content","status":422,
            "detail":"2 fields are invalid","code":"INVALID_ARGUMENT",
            "errors":[{"field":"agents","code":"required","message":"at least one agent is required"}],
            "requestId":"r-1"}"#;
        let p = Problem::from_answer(422, body, None, None);
        assert_eq!(p.code, Code::InvalidArgument);
        assert_eq!(p.errors[0].field, "agents");
        assert_eq!(p.request_id.as_deref(), Some("r-1"));
        assert_eq!(
            p.to_string(),
            "422 INVALID_ARGUMENT: 2 fields are invalid — agents (required): at least one agent is required [request r-1]"
        );
    }

    #[test]
    fn a_body_that_is_not_a_problem_still_gives_the_status_code() {
        let p = Problem::from_answer(
            503,
            b"<html>bad gateway</html>",
            Some("x".into()),
            Some(Duration::from_secs(2)),
        );
        assert_eq!(p.code, Code::Unavailable);
        assert_eq!(p.detail, "<html>bad gateway</html>");
        assert_eq!(p.request_id.as_deref(), Some("x"));
    }

    #[test]
    fn an_unknown_code_is_kept_as_sent() {
        let p = Problem::from_answer(409, br#"{"code":"NEW_THING"}"#, None, None);
        assert_eq!(p.code, Code::Other("NEW_THING".into()));
        assert_eq!(p.code.as_str(), "NEW_THING");
    }
}
