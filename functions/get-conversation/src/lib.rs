//! `GET /v1/conversations/{id}`: reads a conversation, soft-deleted ones included (AIP-164).

use conversations::App;
use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let fields = call.query(&["fields"])?.fields(&OUTPUT_FIELDS)?;
        let conversation = app.store.get(&owner, &id).await?;
        Ok(Reply::conversation(200, &conversation, &fields))
    })
    .await
}
