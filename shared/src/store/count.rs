//! Counts the DynamoDB requests one API request makes, for its log line: an SDK interceptor adds
//! one per HTTP request sent (retries included) to a counter that lives as long as the request's
//! task scope.

use std::cell::Cell;
use std::future::Future;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

tokio::task_local! {
    static REQUESTS: Cell<u32>;
}

/// Runs `work`, returning its output and how many DynamoDB requests it sent.
pub async fn counting<F: Future>(work: F) -> (F::Output, u32) {
    REQUESTS
        .scope(Cell::new(0), async {
            let output = work.await;
            (output, REQUESTS.with(Cell::get))
        })
        .await
}

/// The interceptor every store client carries; outside [`counting`] it does nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestCount;

impl Intercept for RequestCount {
    fn name(&self) -> &'static str {
        "RequestCount"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = REQUESTS.try_with(|n| n.set(n.get() + 1));
        Ok(())
    }
}
