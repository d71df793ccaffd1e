//! Lambda entry point of `POST /v1/conversations/{id}/messages/clear`.

use conversations::App;
use conversations::lambda_http::{Error, service_fn};
use conversations::runtime::run;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env().await;
    run(service_fn(|req| clear_messages::handle(&app, req))).await
}
