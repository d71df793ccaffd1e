//! `POST /v1/conversations/{id}/messages`: appends a message with the next order (201).

use conversations::App;
use conversations::domain::etag::Preconditions;
use conversations::domain::message::{NewMessage, OUTPUT_FIELDS};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let fields = call.query(&["fields"])?.fields(&OUTPUT_FIELDS)?;
        let if_match = call.if_match()?;
        let new = NewMessage::from_json(&call.json()?)?;
        let pre = Preconditions {
            body: new.etag,
            if_match,
        };
        let message = app.store.append(&owner, &id, new, &pre).await?;
        Ok(Reply::message(201, &message, &fields))
    })
    .await
}
