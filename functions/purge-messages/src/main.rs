//! Lambda entry point of the DynamoDB stream consumer that purges messages.

use conversations::App;
use lambda_runtime::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env().await;
    run(service_fn(|event| purge_messages::handle(&app, event))).await
}
