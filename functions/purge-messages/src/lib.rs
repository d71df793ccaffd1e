//! The DynamoDB stream consumer: when DynamoDB's TTL removes a conversation item (at its
//! `expireTime`, or at `purgeTime` after a soft delete), deletes that conversation's messages.
//! The event source mapping passes only `REMOVE` records of conversation items (sort key `C`);
//! the stream carries old images, whose `create_time` names the incarnation to purge.

use std::collections::HashMap;

use conversations::App;
use conversations::domain::time::Timestamp;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;

/// A DynamoDB stream event, reduced to what the purge reads.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    /// The records of the batch.
    #[serde(rename = "Records")]
    pub records: Vec<StreamRecord>,
}

/// One change record.
#[derive(Debug, Deserialize)]
pub struct StreamRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName")]
    pub event_name: String,
    /// The change.
    pub dynamodb: Change,
}

/// The keys and old image of a change.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// The item's keys.
    #[serde(rename = "Keys")]
    pub keys: HashMap<String, Attribute>,
    /// The item before the change.
    #[serde(rename = "OldImage", default)]
    pub old_image: HashMap<String, Attribute>,
}

/// A string or number attribute (other types are not read).
#[derive(Debug, Deserialize)]
pub struct Attribute {
    /// A string value.
    #[serde(rename = "S")]
    pub s: Option<String>,
    /// A number value.
    #[serde(rename = "N")]
    pub n: Option<String>,
}

/// Handles one batch; an error makes Lambda retry it (the purge is idempotent).
pub async fn handle(app: &App, event: LambdaEvent<StreamEvent>) -> Result<(), Error> {
    for record in event.payload.records {
        let keys = &record.dynamodb.keys;
        let sort_key = keys.get("sk").and_then(|a| a.s.as_deref());
        if record.event_name != "REMOVE" || sort_key != Some("C") {
            continue;
        }
        let Some(partition) = keys.get("pk").and_then(|a| a.s.as_deref()) else {
            continue;
        };
        let incarnation = record
            .dynamodb
            .old_image
            .get("create_time")
            .and_then(|a| a.n.as_deref())
            .and_then(|n| n.parse().ok())
            .and_then(Timestamp::from_micros)
            .ok_or("a REMOVE record without the old image's create_time: the stream must carry OLD_IMAGE")?;
        let deleted = app.store.purge_messages(partition, incarnation).await?;
        tracing::info!(deleted, "purged the messages of an expired conversation");
    }
    Ok(())
}
