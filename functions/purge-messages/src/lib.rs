//! The DynamoDB stream consumer that deletes what no conversation can reach any more: the
//! messages of a conversation item DynamoDB's TTL removed (at its `expireTime`, or `purgeTime`
//! after a soft delete); those of the earlier incarnation when a create took over an expired
//! conversation's id (the item's `create_time` changed); those a clear moved its boundary over
//! (`cleared_through` raised); and everything of a purged incarnation (`purged_at` set): its
//! messages, its idempotency markers and the conversation item itself. The event source
//! mapping's filters (template.yaml) pass those records and few others; what each record implies
//! is decided here ([`changes::Change::work`]), exactly, since a replay reads every record of a
//! range. Message keys carry the incarnation, and markers name it, so nothing of another
//! incarnation of the id is touched.
//!
//! A failing record is reported as the batch's first failure (`ReportBatchItemFailures`), so
//! Lambda retries from it; when the retries are exhausted, Lambda sends the batch's stream range
//! to the on-failure queue, and the same function replays it from there (an SQS event) or when
//! invoked with that record ([`replay`]).

pub mod changes;
pub mod replay;

use conversations::App;
use lambda_runtime::{Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{Value, json};

use changes::{Change, EventRecord, What, Work};
use replay::FailedBatch;

/// What the purger works with: the store, and a DynamoDB Streams client for replays.
#[derive(Debug, Clone)]
pub struct Purger {
    /// The table's store.
    pub app: App,
    /// Reads failed batches back from the table's stream.
    pub streams: aws_sdk_dynamodbstreams::Client,
}

/// One SQS message of the on-failure queue.
#[derive(Debug, Deserialize)]
struct QueueMessage {
    #[serde(rename = "messageId")]
    message_id: String,
    body: String,
}

/// Handles one invocation: a stream batch, a batch of the on-failure queue's messages, or one
/// on-failure record given directly (`aws lambda invoke`).
pub async fn handle(purger: &Purger, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    if payload.get("DDBStreamBatchInfo").is_some() {
        let failed: FailedBatch = serde_json::from_value(payload)?;
        let purged = purger.replay(&failed).await?;
        return Ok(json!({"purged": purged}));
    }
    let records = match payload.get("Records") {
        Some(Value::Array(records)) => records.clone(),
        _ => return Err("expected a DynamoDB stream or SQS event, or an on-failure record".into()),
    };
    let from_queue = records
        .first()
        .and_then(|r| r.get("eventSource"))
        .is_some_and(|s| s == "aws:sqs");
    let failures = if from_queue {
        purger.replay_messages(records).await
    } else {
        purger.purge_records(records).await
    };
    Ok(json!({"batchItemFailures": failures
        .into_iter()
        .map(|id| json!({"itemIdentifier": id}))
        .collect::<Vec<_>>()}))
}

impl Purger {
    /// Purges what each change leaves behind, in stream order. Returns the first change that
    /// failed and every one after it (by sequence number): Lambda retries from the first.
    async fn purge_changes(&self, changes: &[Change]) -> Result<usize, (usize, String)> {
        let mut purged = 0;
        for (i, change) in changes.iter().enumerate() {
            let work = match change.work() {
                Ok(Some(work)) => work,
                Ok(None) => continue,
                Err(e) => return Err((i, e)),
            };
            match self.perform(&work).await {
                Ok(deleted) => {
                    purged += deleted;
                    tracing::info!(
                        deleted,
                        what = work.what.name(),
                        sequence = %change.sequence,
                        "purged unreachable items"
                    );
                }
                Err(e) => return Err((i, format!("{e}: {}", cause(&e)))),
            }
        }
        Ok(purged)
    }

    /// Deletes what one change left behind; returns how many items went. A purge deletes the
    /// messages first: if the rest fails, the conversation item stays with its `purged_at`, and
    /// the retry (or TTL's removal of the item, whose record passes too) finds what is left.
    async fn perform(&self, work: &Work) -> Result<usize, conversations::ApiError> {
        let store = &self.app.store;
        let every = (1, conversations::domain::message::MAX_ORDER);
        let (partition, incarnation) = (work.partition.as_str(), work.incarnation);
        match work.what {
            What::Messages => {
                let messages = store.purge_messages(partition, incarnation, every).await?;
                // Layout 4: the body of a removed incarnation (a create over an expired one
                // replaced it already; then it stays).
                let body = store.purge_body(partition, incarnation).await?;
                Ok(messages + usize::from(body))
            }
            What::Cleared { through } => {
                store
                    .purge_messages(partition, incarnation, (1, through))
                    .await
            }
            What::Purged => {
                let messages = store.purge_messages(partition, incarnation, every).await?;
                let rest = store.purge_rest(partition, incarnation).await?;
                Ok(messages + rest)
            }
        }
    }

    /// A stream batch: the sequence number to retry from (none when everything was purged).
    async fn purge_records(&self, records: Vec<Value>) -> Vec<String> {
        let mut changes = Vec::with_capacity(records.len());
        let mut unreadable = None;
        for record in records {
            let sequence = record
                .pointer("/dynamodb/SequenceNumber")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match serde_json::from_value::<EventRecord>(record) {
                Ok(record) => changes.push(Change::from_event(record)),
                Err(e) => {
                    unreadable = Some((sequence, e.to_string()));
                    break;
                }
            }
        }
        // Everything before an unreadable record is purged; Lambda retries from that record
        // (an empty identifier, when it has no sequence number either, retries the whole batch).
        let failed = match self.purge_changes(&changes).await {
            Ok(_) => unreadable,
            Err((i, error)) => Some((changes[i].sequence.clone(), error)),
        };
        match failed {
            None => Vec::new(),
            Some((sequence, error)) => {
                tracing::error!(%error, %sequence, "purge failed; Lambda retries from this record");
                vec![sequence]
            }
        }
    }

    /// Messages of the on-failure queue: the ids of those not replayed yet. A record the purger
    /// cannot read is one of them, never dropped (Lambda would delete it from the queue, and the
    /// batch it names would never be purged): reported by its `messageId`, or, without one, by
    /// an empty identifier, which makes Lambda count the whole batch as failed so that every
    /// message stays in the queue (its alarm says so).
    async fn replay_messages(&self, records: Vec<Value>) -> Vec<String> {
        let mut failed = Vec::new();
        for record in records {
            let id = record
                .get("messageId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let message: QueueMessage = match serde_json::from_value(record) {
                Ok(message) => message,
                Err(e) => {
                    tracing::error!(error = %e, message = %id, "an SQS record the purger cannot read; it stays in the queue");
                    failed.push(id);
                    continue;
                }
            };
            let replayed = match serde_json::from_str::<FailedBatch>(&message.body) {
                Ok(batch) => self.replay(&batch).await,
                Err(e) => Err(format!("not an on-failure record of a stream batch: {e}").into()),
            };
            if let Err(error) = replayed {
                tracing::error!(%error, message = %message.message_id, "replay failed; the message stays in the queue");
                failed.push(message.message_id);
            }
        }
        failed
    }

    /// Reads a failed batch back from the stream and purges what it left behind.
    pub async fn replay(&self, failed: &FailedBatch) -> Result<usize, Error> {
        let changes = replay::changes_of(&self.streams, &failed.batch).await?;
        let purged = self
            .purge_changes(&changes)
            .await
            .map_err(|(i, e)| format!("record {}: {e}", changes[i].sequence))?;
        tracing::info!(
            records = changes.len(),
            purged,
            shard = %failed.batch.shard_id,
            "replayed a failed batch"
        );
        Ok(purged)
    }
}

/// The causes of a store error, for the log.
fn cause(error: &conversations::ApiError) -> String {
    let mut causes = Vec::new();
    let mut next = std::error::Error::source(error);
    while let Some(c) = next {
        causes.push(c.to_string());
        next = c.source();
    }
    causes.join(": ")
}
