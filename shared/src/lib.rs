//! The Conversations API: the domain, the DynamoDB store, the HTTP boundary and start-up, shared
//! by the Lambda functions.

pub mod app;
pub mod domain;
pub mod error;
pub mod http;
pub mod routes;
pub mod store;

pub use app::{App, AuthMode, Config};
pub use error::{ApiError, FieldError};
pub use lambda_http;
