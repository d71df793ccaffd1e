//! `POST /v1/conversations?conversationId=&requestId=`: creates a conversation (201 + `Location`);
//! the `Idempotency-Key` header is another spelling of `requestId`.

use conversations::App;
use conversations::domain::conversation::{NewConversation, OUTPUT_FIELDS, Writable};
use conversations::domain::ids::ConversationId;
use conversations::domain::time::Timestamp;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let query = call.query(&["conversationId", "requestId", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let request_id = call.request_id(&query)?;
        let id = match (query.get("conversationId"), &request_id) {
            (Some(id), _) => ConversationId::parse(id)?,
            (None, Some(request)) => ConversationId::for_request(&owner, request),
            (None, None) => ConversationId::random(),
        };
        let body = Writable::from_json(&call.json()?, Timestamp::now(), true)?;
        let new = NewConversation::try_from(body)?;
        let created = app.store.create(&owner, &id, request_id, new).await?;
        Ok(Reply::created(&created, &fields))
    })
    .await
}
