//! `POST /v1/conversations/{id}/messages/batch?requestId=`: appends 1–50 messages, all or none,
//! with consecutive orders, in one transaction with the `conversationMetadata` keys it sets
//! (201 `{"messages": [...], "conversationEtag": "…"}`; AIP-233).

use conversations::App;
use conversations::domain::etag::Preconditions;
use conversations::domain::message::{NewBatch, OUTPUT_FIELDS};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};
use conversations::store::Idempotency;

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let query = call.query(&["requestId", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let request_id = call.request_id(&query)?;
        let if_match = call.if_match()?;
        let batch = NewBatch::from_json(&call.json()?)?;
        let pre = Preconditions {
            body: batch.etag,
            if_match,
        };
        let metadata = batch.conversation_metadata.as_ref();
        let key = request_id.map(|r| Idempotency::of(&r, "batch", &batch.messages, metadata));
        let appended = app
            .store
            .append_messages(&owner, &id, &batch.messages, &pre, key.as_ref(), metadata)
            .await?;
        Ok(Reply::appended(&appended, &fields))
    })
    .await
}
