//! One change of the table as a stream carries it — in a Lambda event (JSON) or read back with
//! `GetRecords` (SDK types) — reduced to what the purge needs: which incarnation's messages it
//! leaves unreachable.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record};
use conversations::domain::time::Timestamp;
use serde::Deserialize;

/// The sort key of a conversation item (messages have `M#…`).
const CONVERSATION_SK: &str = "C";

/// A change record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event: String,
    /// The stream's sequence number: the record's identity in partial batch responses.
    pub sequence: String,
    /// The item's partition key.
    pub partition: Option<String>,
    /// The item's sort key.
    pub sort: Option<String>,
    /// `create_time` of the item before the change (its incarnation), if the record carries it.
    pub old_incarnation: Option<String>,
    /// `create_time` of the item after the change.
    pub new_incarnation: Option<String>,
}

/// The messages a change leaves unreachable: a conversation's partition and incarnation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphans {
    /// `CONV#{owner}#{id}`.
    pub partition: String,
    /// The `createTime` of the incarnation whose messages go.
    pub incarnation: Timestamp,
}

impl Change {
    /// What this change leaves behind: for a conversation item that TTL removed, its messages;
    /// for one that a create overwrote after its expiry (a new `create_time`), the old
    /// incarnation's. Anything else (messages, appends, updates) leaves nothing. An error means
    /// the stream does not carry what the purge needs (its view type must be NEW_AND_OLD_IMAGES).
    pub fn orphans(&self) -> Result<Option<Orphans>, String> {
        if self.sort.as_deref() != Some(CONVERSATION_SK) {
            return Ok(None);
        }
        let replaced = match self.event.as_str() {
            "REMOVE" => true,
            "MODIFY" => self.new_incarnation != self.old_incarnation,
            _ => false,
        };
        if !replaced {
            return Ok(None);
        }
        let partition = self
            .partition
            .clone()
            .ok_or_else(|| format!("record {} has no partition key", self.sequence))?;
        let incarnation = self
            .old_incarnation
            .as_deref()
            .and_then(|n| n.parse().ok())
            .and_then(Timestamp::from_micros)
            .ok_or_else(|| {
                format!(
                    "record {} carries no old image with create_time: the stream must be NEW_AND_OLD_IMAGES",
                    self.sequence
                )
            })?;
        Ok(Some(Orphans {
            partition,
            incarnation,
        }))
    }

    /// A record of a Lambda stream event.
    pub fn from_event(record: EventRecord) -> Self {
        let d = record.dynamodb;
        let key = |name: &str| d.keys.get(name).and_then(|a| a.s.clone());
        let created = |image: &HashMap<String, EventAttribute>| {
            image.get("create_time").and_then(|a| a.n.clone())
        };
        Self {
            event: record.event_name,
            sequence: d.sequence_number,
            partition: key("pk"),
            sort: key("sk"),
            old_incarnation: created(&d.old_image),
            new_incarnation: created(&d.new_image),
        }
    }

    /// A record read back with `GetRecords`.
    pub fn from_sdk(record: &Record) -> Self {
        let event = match record.event_name() {
            Some(OperationType::Insert) => "INSERT",
            Some(OperationType::Modify) => "MODIFY",
            Some(OperationType::Remove) => "REMOVE",
            _ => "UNKNOWN",
        };
        let d = record.dynamodb();
        let string = |map: Option<&HashMap<String, AttributeValue>>, name: &str| {
            map.and_then(|m| m.get(name))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        let number = |map: Option<&HashMap<String, AttributeValue>>| {
            map.and_then(|m| m.get("create_time"))
                .and_then(|v| v.as_n().ok())
                .cloned()
        };
        Self {
            event: event.to_owned(),
            sequence: d
                .and_then(|d| d.sequence_number())
                .unwrap_or_default()
                .to_owned(),
            partition: string(d.and_then(|d| d.keys()), "pk"),
            sort: string(d.and_then(|d| d.keys()), "sk"),
            old_incarnation: number(d.and_then(|d| d.old_image())),
            new_incarnation: number(d.and_then(|d| d.new_image())),
        }
    }
}

/// A record of a Lambda DynamoDB stream event, reduced to what the purge reads.
#[derive(Debug, Deserialize)]
pub struct EventRecord {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    #[serde(rename = "eventName")]
    pub event_name: String,
    /// The change.
    pub dynamodb: EventChange,
}

/// The keys and images of a change.
#[derive(Debug, Deserialize)]
pub struct EventChange {
    /// The item's keys.
    #[serde(rename = "Keys", default)]
    pub keys: HashMap<String, EventAttribute>,
    /// The item before the change.
    #[serde(rename = "OldImage", default)]
    pub old_image: HashMap<String, EventAttribute>,
    /// The item after the change.
    #[serde(rename = "NewImage", default)]
    pub new_image: HashMap<String, EventAttribute>,
    /// The record's position in its shard.
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: String,
}

/// A string or number attribute (other types are not read).
#[derive(Debug, Deserialize)]
pub struct EventAttribute {
    /// A string value.
    #[serde(rename = "S")]
    pub s: Option<String>,
    /// A number value.
    #[serde(rename = "N")]
    pub n: Option<String>,
}

/// Orders stream sequence numbers (decimal strings of any length).
pub fn sequence_after(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) > (b.len(), b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(event: &str, sort: &str, old: Option<&str>, new: Option<&str>) -> Change {
        Change {
            event: event.into(),
            sequence: "7".into(),
            partition: Some("CONV#o#c".into()),
            sort: Some(sort.into()),
            old_incarnation: old.map(Into::into),
            new_incarnation: new.map(Into::into),
        }
    }

    #[test]
    fn removals_and_incarnation_changes_of_conversations_leave_orphans() {
        let removed = change("REMOVE", "C", Some("1000"), None);
        assert_eq!(
            removed
                .orphans()
                .expect("ok")
                .map(|o| o.incarnation.micros()),
            Some(1000)
        );
        let replaced = change("MODIFY", "C", Some("1000"), Some("2000"));
        assert_eq!(
            replaced
                .orphans()
                .expect("ok")
                .map(|o| o.incarnation.micros()),
            Some(1000)
        );
        for nothing in [
            change("MODIFY", "C", Some("1000"), Some("1000")),
            change("INSERT", "C", None, Some("1000")),
            change("REMOVE", "M#1#1", Some("1000"), None),
            change("INSERT", "M#1#1", None, Some("1000")),
        ] {
            assert_eq!(nothing.orphans(), Ok(None), "{nothing:?}");
        }
        assert!(change("REMOVE", "C", None, None).orphans().is_err());
    }

    #[test]
    fn sequence_numbers_order_by_value() {
        assert!(sequence_after("10", "9"));
        assert!(sequence_after("000000000000000000545", "544"));
        assert!(!sequence_after("544", "000544"));
        assert!(!sequence_after("1", "2"));
    }
}
