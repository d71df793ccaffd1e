//! `POST /v1/conversations/{id}/messages/clear`: clears every message up to `throughOrder` (all
//! of them without it) in one conditional write of the conversation, whatever their number;
//! answers the conversation, its `messageCount` the messages kept.

use conversations::App;
use conversations::domain::clear::Clear;
use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::domain::etag::Preconditions;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let fields = call.query(&["fields"])?.fields(&OUTPUT_FIELDS)?;
        let if_match = call.if_match()?;
        let clear = Clear::from_json(&call.json()?)?;
        let pre = Preconditions {
            body: clear.etag,
            if_match,
        };
        let conversation = app
            .store
            .clear_messages(&owner, &id, clear.through, &pre)
            .await?;
        Ok(Reply::conversation(200, &conversation, &fields))
    })
    .await
}
