//! Every request no other function serves: a path of the API with a method it does not serve is
//! 405 with `Allow`; any other path is 404. Both are problems like the rest of the API's errors.

use conversations::lambda_http::{Body, Error, Request, Response};
use conversations::{App, http, routes};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        Err(routes::unserved(call.method(), call.route_path()))
    })
    .await
}
