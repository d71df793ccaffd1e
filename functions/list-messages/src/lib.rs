//! `GET /v1/conversations/{id}/messages?pageSize=&pageToken=`: lists messages in ascending order.

use conversations::App;
use conversations::domain::message::OUTPUT_FIELDS;
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};
use serde_json::{Map, Value};

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
        let mut body = Map::new();
        let items = page
            .items
            .iter()
            .map(|m| Value::Object(fields.apply(m.to_json())))
            .collect();
        body.insert("messages".into(), Value::Array(items));
        if let Some(token) = page.next_page_token {
            body.insert("nextPageToken".into(), token.into());
        }
        Ok(Reply::json(200, Value::Object(body)))
    })
    .await
}
