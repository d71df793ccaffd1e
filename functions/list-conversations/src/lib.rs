//! `GET /v1/conversations?pageSize=&pageToken=&filter=&orderBy=&showDeleted=`: lists the caller's
//! conversations.

use conversations::App;
use conversations::domain::conversation::OUTPUT_FIELDS;
use conversations::domain::filter::{Filter, OrderBy};
use conversations::http::{self, Reply};
use conversations::lambda_http::{Body, Error, Request, Response};
use conversations::store::ListQuery;

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Error> {
    http::serve(app, req, |call| async move {
        let owner = call.owner()?;
        let query = call.query(&[
            "pageSize",
            "pageToken",
            "filter",
            "orderBy",
            "showDeleted",
            "fields",
        ])?;
        let fields = query.fields(&OUTPUT_FIELDS)?;
        let list = ListQuery {
            filter: Filter::parse(query.get("filter").unwrap_or_default())?,
            order: query
                .get("orderBy")
                .map(OrderBy::parse)
                .transpose()?
                .unwrap_or_default(),
            show_deleted: query.flag("showDeleted")?,
            page_size: query.page_size()?,
            page_token: query
                .get("pageToken")
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        };
        let page = app.store.list(&owner, &list).await?;
        Ok(Reply::page(
            "conversations",
            &page.items,
            &fields,
            page.next_page_token.as_deref(),
        ))
    })
    .await
}
