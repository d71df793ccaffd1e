//! `GET /v1/conversations/{id}/messages?pageSize=&pageToken=`: lists messages in ascending order.

use conversations::App;
use conversations::domain::message::OUTPUT_FIELDS;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let query = call.query(&["pageSize", "pageToken", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let token = query.get("pageToken").filter(|t| !t.is_empty());
        let page = app
            .store
            .list_messages(&owner, &id, query.page_size()?, token)
            .await?;
        let items = page.items.iter().map(|m| fields.apply(m.to_json()));
        Ok(Reply::page("messages", items, page.next_page_token))
    })
    .await
}
