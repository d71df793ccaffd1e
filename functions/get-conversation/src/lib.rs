//! `GET /v1/conversations/{id}?view=`: reads a conversation, soft-deleted ones included (AIP-164);
//! `view=FULL` adds its latest messages (AIP-157).

use conversations::App;
use conversations::domain::conversation::{FULL_VIEW_MESSAGES, View};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let query = call.query(&["view", "fields"])?;
        let view = View::parse(query.get("view"))?;
        let fields = query.fields(&view.fields())?;
        Ok(match view {
            View::Basic => Reply::conversation(200, &app.store.get(&owner, &id).await?, &fields),
            View::Full => {
                let (conversation, messages) =
                    app.store.get_full(&owner, &id, FULL_VIEW_MESSAGES).await?;
                Reply::full(&conversation, messages.as_deref(), &fields)
            }
        })
    })
    .await
}
