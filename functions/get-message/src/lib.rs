//! `GET /v1/conversations/{id}/messages/{order}`: one message by its order, with its `ETag`.

use conversations::App;
use conversations::domain::message::OUTPUT_FIELDS;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let order = call.order()?;
        let fields = call.query(&["fields"])?.fields(&OUTPUT_FIELDS)?;
        let message = app.store.get_message(&owner, &id, order).await?;
        Ok(Reply::message(200, &message, &fields))
    })
    .await
}
