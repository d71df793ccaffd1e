//! Rewrites a table written by an earlier version of the service into this version's layout:
//! `migrate TABLE`, against `AWS_ENDPOINT_URL_DYNAMODB` or, without it, the AWS account of the
//! environment's credentials (docs/deploy.md, "Upgrading"). Safe to run again.

use aws_sdk_dynamodb::Client;
use conversations::app::sdk_config;
use conversations::store::{item, migrate, schema};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let table = std::env::args().nth(1).ok_or("usage: migrate TABLE")?;
    let client = Client::new(&sdk_config().await);
    if schema::layout(&client, &table).await? == Some(item::LAYOUT) {
        println!("table {table}: already in layout {}", item::LAYOUT);
        return Ok(());
    }
    let report = migrate::migrate(&client, &table).await?;
    println!(
        "table {table}: layout {} ({} items read, {} conversations and {} messages rewritten)",
        item::LAYOUT,
        report.scanned,
        report.conversations,
        report.messages
    );
    Ok(())
}
