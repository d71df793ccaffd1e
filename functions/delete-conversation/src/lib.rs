//! `DELETE /v1/conversations/{id}?etag=&allowMissing=`: soft-deletes a conversation (AIP-164).

use conversations::App;
use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::domain::etag::{Etag, Preconditions};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let query = call.query(&["etag", "allowMissing", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let pre = Preconditions {
            body: query.get("etag").map(Etag::parse),
            if_match: call.if_match()?,
        };
        let deleted = app
            .store
            .delete(&owner, &id, &pre, query.flag("allowMissing")?)
            .await?;
        Ok(match deleted {
            Some(conversation) => Reply::conversation(200, &conversation, &fields),
            // allowMissing and nothing there: success with nothing to show (AIP-135).
            None => Reply::empty(),
        })
    })
    .await
}
