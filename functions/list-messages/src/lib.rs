//! `GET /v1/conversations/{id}/messages?pageSize=&pageToken=&orderBy=&filter=`: lists messages,
//! oldest or newest first, within an order range.

use conversations::App;
use conversations::domain::message::OUTPUT_FIELDS;
use conversations::domain::message_query::{MessageFilter, MessageOrder};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};
use conversations::store::MessageQuery;

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let id = call.id()?;
        let query = call.query(&["pageSize", "pageToken", "orderBy", "filter", "fields"])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let list = MessageQuery {
            order: query
                .get("orderBy")
                .map(MessageOrder::parse)
                .transpose()?
                .unwrap_or_default(),
            filter: MessageFilter::parse(query.get("filter").unwrap_or_default())?,
            page_size: query.page_size()?,
            page_token: query
                .get("pageToken")
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        };
        let page = app.store.list_messages(&owner, &id, &list).await?;
        Ok(Reply::page(
            "messages",
            &page.items,
            &fields,
            page.next_page_token.as_deref(),
        ))
    })
    .await
}
