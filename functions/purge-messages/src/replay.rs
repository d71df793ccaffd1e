//! Replaying a batch that kept failing. When its retries are exhausted, Lambda sends the event
//! source mapping's on-failure destination (an SQS queue) a record naming the batch — stream,
//! shard and sequence range, not the records themselves. The purger takes that record back
//! (from the queue's disabled-by-default event source mapping, or invoked with it) and reads the
//! records from the stream, which keeps them for 24 hours.

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;

use crate::changes::{Change, sequence_after};

/// Lambda's on-failure record for a stream batch.
#[derive(Debug, Clone, Deserialize)]
pub struct FailedBatch {
    /// Where the batch is in the stream.
    #[serde(rename = "DDBStreamBatchInfo")]
    pub batch: BatchInfo,
}

/// The stream range of a failed batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInfo {
    /// The stream.
    pub stream_arn: String,
    /// The shard.
    pub shard_id: String,
    /// The first record of the batch.
    pub start_sequence_number: String,
    /// The last record of the batch.
    pub end_sequence_number: String,
}

/// How many `GetRecords` calls one replay makes at most, and how many empty answers in a row it
/// takes before it decides the range is not there (DynamoDB Streams may answer empty pages).
const MAX_READS: usize = 200;
const MAX_EMPTY_READS: usize = 5;

/// The records of a failed batch, read back from the stream.
pub async fn changes_of(streams: &Client, batch: &BatchInfo) -> Result<Vec<Change>, String> {
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&batch.stream_arn)
        .shard_id(&batch.shard_id)
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .sequence_number(&batch.start_sequence_number)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read shard {} from {}: {} (a stream keeps records for 24 hours)",
                batch.shard_id,
                batch.start_sequence_number,
                aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
            )
        })?
        .shard_iterator;
    let mut changes = Vec::new();
    let mut empty = 0;
    for _ in 0..MAX_READS {
        let Some(current) = iterator.take() else {
            break;
        };
        let page = streams
            .get_records()
            .shard_iterator(current)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot read the failed batch back: {}",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
                )
            })?;
        let records = page.records();
        empty = if records.is_empty() { empty + 1 } else { 0 };
        for record in records {
            let change = Change::from_sdk(record);
            if sequence_after(&change.sequence, &batch.end_sequence_number) {
                return Ok(changes);
            }
            let done = change.sequence == batch.end_sequence_number;
            changes.push(change);
            if done {
                return Ok(changes);
            }
        }
        if empty >= MAX_EMPTY_READS {
            break;
        }
        iterator = page.next_shard_iterator;
    }
    // The shard ended (or stayed empty) before the batch's last record: what was read is all
    // there is, unless nothing was.
    if changes.is_empty() {
        return Err(format!(
            "no record of the failed batch {}..{} is left in shard {}",
            batch.start_sequence_number, batch.end_sequence_number, batch.shard_id
        ));
    }
    Ok(changes)
}
