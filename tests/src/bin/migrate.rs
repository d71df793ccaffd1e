//! Rewrites a table written by an earlier version of the service into this version's layout:
//! `migrate TABLE [--again]`, against `AWS_ENDPOINT_URL_DYNAMODB` or, without it, the AWS account
//! of the environment's credentials (docs/deploy.md, "Upgrading"). Safe to run again, and while
//! the service serves the table; a table already marked is left alone unless `--again` asks for
//! another pass (after a function of the earlier version may have written during a run).

use aws_sdk_dynamodb::Client;
use conversations::app::sdk_config;
use conversations::store::{item, migrate, schema};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: migrate TABLE [--again]";
    let table = args.next().ok_or(usage)?;
    let again = match args.next().as_deref() {
        None => false,
        Some("--again") => true,
        Some(_) => return Err(usage.into()),
    };
    let client = Client::new(&sdk_config().await);
    if !again && schema::layout(&client, &table).await? == Some(item::LAYOUT) {
        println!("table {table}: already in layout {}", item::LAYOUT);
        return Ok(());
    }
    let report = migrate::migrate(&client, &table).await?;
    println!(
        "table {table}: layout {} ({} items read, {} conversations and {} messages rewritten, \
         {} writes refused because the item had changed since it was read, each read again and \
         redone or skipped)",
        item::LAYOUT,
        report.scanned,
        report.conversations,
        report.messages,
        report.refused
    );
    if !report.left.is_empty() {
        return Err(format!(
            "left under their old keys, because this version has created another conversation \
             of the same id under the new key (docs/deploy.md, \"Upgrading\"): {}",
            report.left.join(", ")
        )
        .into());
    }
    Ok(())
}
