//! Lambda entry point of the DynamoDB stream consumer that purges messages (and replays failed
//! batches from the on-failure queue).

use conversations::App;
use lambda_runtime::{Error, run, service_fn};
use purge_messages::Purger;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env().await;
    let streams = aws_sdk_dynamodbstreams::Client::new(&conversations::app::sdk_config().await);
    let purger = Purger { app, streams };
    run(service_fn(|event| purge_messages::handle(&purger, event))).await
}
