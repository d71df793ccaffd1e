//! `PATCH /v1/conversations/{id}?updateMask=&allowMissing=`: updates the masked fields (AIP-134);
//! with `allowMissing`, creates a missing conversation (201).

use conversations::App;
use conversations::domain::conversation::{OUTPUT_FIELDS, Writable};
use conversations::domain::etag::Preconditions;
use conversations::domain::field_mask::{Update, UpdateMask};
use conversations::domain::time::Timestamp;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let query = call.query(&["updateMask", "allowMissing", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let allow_missing = query.flag("allowMissing")?;
        let if_match = call.if_match()?;
        let given = query.get("updateMask").map(UpdateMask::parse).transpose()?;
        // A mask naming agents needs them: reported with every other broken field.
        let needs_agents = given.as_ref().is_some_and(UpdateMask::requires_agents);
        let body = Writable::from_json(&call.json()?, Timestamp::now(), needs_agents)?;
        let mask = given.unwrap_or_else(|| UpdateMask::from_body(&body));
        let update = Update::new(&mask, &body)?;
        let pre = Preconditions {
            body: body.etag,
            if_match,
        };
        let (conversation, created) = app
            .store
            .update(&owner, &id, &update, &pre, allow_missing.then_some(&body))
            .await?;
        Ok(if created {
            Reply::created(&conversation, &fields)
        } else {
            Reply::conversation(200, &conversation, &fields)
        })
    })
    .await
}
