//! `POST /v1/conversations/{id}/undelete`: restores a soft-deleted conversation (AIP-164).

use conversations::App;
use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::domain::etag::{Preconditions, etag_body};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let fields = call.query(&["fields"])?.fields(&OUTPUT_FIELDS)?;
        let pre = Preconditions {
            if_match: call.if_match()?,
            body: etag_body(&call.json()?)?,
        };
        let conversation = app.store.undelete(&owner, &id, &pre).await?;
        Ok(Reply::conversation(200, &conversation, &fields))
    })
    .await
}
