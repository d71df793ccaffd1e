//! `POST /v1/conversations/{id}/purge?allowMissing=`: erases a conversation — live or
//! soft-deleted — and everything of it now: missing for every method from the answer on, its id
//! free for a create; its items go in the background. 200 `{}`.

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
        let query = call.query(&["allowMissing", "fields"])?;
        // The answer is `{}`; `fields` is checked as every method checks it.
        query.fields(&OUTPUT_FIELDS)?;
        let pre = Preconditions {
            if_match: call.if_match()?,
            body: etag_body(&call.json()?)?,
        };
        app.store
            .purge(&owner, &id, &pre, query.flag("allowMissing")?)
            .await?;
        Ok(Reply::empty())
    })
    .await
}
