//! Creates the Conversations table (schema as in template.yaml) unless it exists:
//! `create-table [TABLE]`, with the endpoint from `AWS_ENDPOINT_URL_DYNAMODB`. A table that is
//! there must hold this version's layout: one written by an earlier version is refused with what
//! to do (exit 2), rather than served wrongly.

use aws_sdk_dynamodb::Client;
use conversations::app::sdk_config;
use conversations::store::item::LAYOUT;
use conversations::store::schema::{ensure_table, is_empty, layout, mark_layout};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let table = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CONVERSATIONS_TABLE").ok())
        .unwrap_or_else(|| "conversations".into());
    let client = Client::new(&sdk_config().await);
    // DynamoDB Local may still be starting: retry for a few seconds.
    let mut last = None;
    for _ in 0..50 {
        match ensure_table(&client, &table).await {
            Ok(true) => {
                println!("table {table}: created");
                return Ok(());
            }
            Ok(false) => return check_layout(&client, &table).await,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(last.unwrap_or_else(|| "table creation failed".into()))
}

async fn check_layout(client: &Client, table: &str) -> Result<(), BoxError> {
    match layout(client, table).await? {
        Some(found) if found == LAYOUT => {
            println!("table {table}: already there");
            Ok(())
        }
        None if is_empty(client, table).await? => {
            mark_layout(client, table).await?;
            println!("table {table}: already there (empty; marked with layout {LAYOUT})");
            Ok(())
        }
        found => {
            eprintln!(
                "table {table} holds the data of an earlier version of the service (layout {}; this \
                 version reads layout {LAYOUT}).\n  Rewrite it in place: make migrate\n  or start \
                 afresh: rm -rf .local/dynamodb-data",
                found.map_or("1".into(), |f| f.to_string())
            );
            std::process::exit(2);
        }
    }
}
