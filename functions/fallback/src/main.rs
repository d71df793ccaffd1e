//! Lambda entry point of every method and path no other function serves (405 or 404).

use conversations::App;
use conversations::lambda_http::{Error, service_fn};
use conversations::runtime::run;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = App::from_env_unconnected().await;
    run(service_fn(|req| fallback::handle(&app, req))).await
}
