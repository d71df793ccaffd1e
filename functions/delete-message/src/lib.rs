//! `DELETE /v1/conversations/{id}/messages/{order}?etag=`: deletes one message for good (AIP-135;
//! an agent framework's "pop the last item"), answering it as it was; its order is never given
//! again. The message's etag is the precondition.

use conversations::App;
use conversations::domain::etag::{Etag, Preconditions};
use conversations::domain::message::OUTPUT_FIELDS;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let order = call.order()?;
        let query = call.query(&["etag", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let pre = Preconditions {
            body: query.get("etag").map(Etag::parse),
            if_match: call.if_match()?,
        };
        let message = app.store.delete_message(&owner, &id, order, &pre).await?;
        Ok(Reply::message(200, &message, &fields))
    })
    .await
}
