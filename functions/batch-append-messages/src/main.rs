//! Lambda entry point of `POST /v1/conversations/{id}/messages/batch`.

use conversations::App;
use conversations::lambda_http::{Error, service_fn};
use conversations::runtime::run;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env().await;
    run(service_fn(|req| batch_append_messages::handle(&app, req))).await
}
