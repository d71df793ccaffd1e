//! `PATCH /v1/conversations/{id}/messages/{order}?updateMask=`: edits (redacts) one message's
//! `content`, `metadata` or `toolCalls`; the message's etag is the precondition.

use conversations::App;
use conversations::domain::etag::Preconditions;
use conversations::domain::message::OUTPUT_FIELDS;
use conversations::domain::message_update::MessageUpdate;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let order = call.order()?;
        let query = call.query(&["updateMask", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let if_match = call.if_match()?;
        let update = MessageUpdate::new(&call.json()?, query.get("updateMask"))?;
        let pre = Preconditions {
            body: update.etag,
            if_match,
        };
        let message = app
            .store
            .update_message(&owner, &id, order, &update, &pre)
            .await?;
        Ok(Reply::message(200, &message, &fields))
    })
    .await
}
