//! Creates the Conversations table (schema as in template.yaml) unless it exists:
//! `create-table [TABLE]`, with the endpoint from `AWS_ENDPOINT_URL_DYNAMODB`.

use aws_sdk_dynamodb::Client;
use conversations::app::sdk_config;
use conversations::store::schema::ensure_table;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let table = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("CONVERSATIONS_TABLE").ok())
        .unwrap_or_else(|| "conversations".into());
    let client = Client::new(&sdk_config().await);
    // DynamoDB Local may still be starting: retry for a few seconds.
    let mut last = None;
    for _ in 0..50 {
        match ensure_table(&client, &table).await {
            Ok(created) => {
                println!(
                    "table {table}: {}",
                    if created { "created" } else { "already there" }
                );
                return Ok(());
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(last.unwrap_or_else(|| "table creation failed".into()))
}
