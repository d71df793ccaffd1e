//! `POST /v1/conversations/{id}/messages?requestId=`: appends a message with the next order (201);
//! a repeated `requestId` (or `Idempotency-Key`) answers what its first call appended. The
//! conversation's etag after the append comes as `X-Conversation-ETag`.

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
        let query = call.query(&["requestId", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let request_id = call.request_id(&query)?;
        let if_match = call.if_match()?;
        let new = NewMessage::from_json(&call.json()?)?;
        let pre = Preconditions {
            body: new.etag,
            if_match,
        };
        let (message, conversation_version) = app
            .store
            .append(&owner, &id, new, &pre, request_id.as_ref())
            .await?;
        Ok(Reply::message(201, &message, &fields).with_conversation_etag(conversation_version))
    })
    .await
}
