//! Replaying a batch that kept failing. When its retries are exhausted, Lambda sends the event
//! source mapping's on-failure destination (an SQS queue) a record naming the batch — stream,
//! shard and sequence range, not the records themselves. The purger takes that record back
//! (from the queue's disabled-by-default event source mapping, or invoked with it) and reads the
//! records from the stream, which keeps them for 24 hours.

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;

use crate::changes::{Change, EventRecord, sequence_after};

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

/// A `GetRecords` page in its wire JSON, read leniently.
#[derive(Debug, Deserialize)]
struct WirePage {
    #[serde(rename = "Records", default)]
    records: Vec<EventRecord>,
    #[serde(rename = "NextShardIterator")]
    next_shard_iterator: Option<String>,
}

/// The page a `GetRecords` answer holds when the SDK could not parse it: DynamoDB Local 3.x
/// writes an empty map or list in a stream image as `{}`, without its `M`/`L` type
/// (awslabs/amazon-dynamodb-local-samples#37; DynamoDB itself writes `{"M": {}}`), which the
/// SDK refuses, and every conversation item holds empty maps. The purger needs only keys and
/// numbers of each record, which its own reader of Lambda's stream events takes from the same
/// JSON.
fn lenient_page<E>(
    error: &aws_sdk_dynamodbstreams::error::SdkError<
        E,
        aws_sdk_dynamodbstreams::config::http::HttpResponse,
    >,
) -> Option<(Vec<Change>, Option<String>)> {
    let body = error.raw_response()?.body().bytes()?;
    if !error.raw_response()?.status().is_success() {
        return None;
    }
    let page: WirePage = serde_json::from_slice(body).ok()?;
    let changes = page.records.into_iter().map(Change::from_event).collect();
    Some((changes, page.next_shard_iterator))
}

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
        let (page, next) = match streams.get_records().shard_iterator(current).send().await {
            Ok(page) => (
                page.records()
                    .iter()
                    .map(Change::from_sdk)
                    .collect::<Vec<_>>(),
                page.next_shard_iterator,
            ),
            Err(e) => lenient_page(&e).ok_or_else(|| {
                format!(
                    "cannot read the failed batch back: {}",
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
                )
            })?,
        };
        empty = if page.is_empty() { empty + 1 } else { 0 };
        for change in page {
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
        iterator = next;
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
