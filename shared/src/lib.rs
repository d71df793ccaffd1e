//! The Conversations API: the domain, the DynamoDB store, the HTTP boundary and start-up, shared
//! by the Lambda functions.

#[cfg(feature = "service")]
pub mod app;
pub mod domain;
pub mod error;
#[cfg(feature = "service")]
pub mod http;
#[cfg(feature = "service")]
pub mod routes;
#[cfg(feature = "service")]
pub mod runtime;
#[cfg(feature = "service")]
pub mod store;

#[cfg(feature = "service")]
pub use app::{App, AuthMode, Config};
pub use error::{ApiError, FieldError};
#[cfg(feature = "service")]
pub use lambda_http;
