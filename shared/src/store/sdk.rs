//! Translating SDK failures into API errors at the store boundary.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::error::ApiError;

const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
];

/// Maps an SDK error that no caller handles: throttling → 429, unreachable or timed out → 503,
/// anything else → 500. The source is kept for the log.
pub fn classify<E, R>(error: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            ApiError::Unavailable(Box::new(error))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if THROTTLING.contains(&code) {
                ApiError::Throttled(Box::new(error))
            } else if code == "InternalServerError" || code == "ServiceUnavailable" {
                ApiError::Unavailable(Box::new(error))
            } else {
                ApiError::Internal(Box::new(error))
            }
        }
        _ => ApiError::Internal(Box::new(error)),
    }
}
