//! Lambda entry point of `GET /v1/conversations/{id}/messages/{order}`.

use conversations::App;
use conversations::lambda_http::{Error, service_fn};
use conversations::runtime::run;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env().await;
    run(service_fn(|req| get_message::handle(&app, req))).await
}
