//! Lambda entry point of `PATCH /v1/conversations/{id}`.

use conversations::App;
use conversations::lambda_http::{Error, service_fn};
use conversations::runtime::run;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env().await;
    run(service_fn(|req| update_conversation::handle(&app, req))).await
}
