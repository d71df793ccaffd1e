//! One change of the table as a stream carries it — in a Lambda event (JSON) or read back with
//! `GetRecords` (SDK types) — reduced to the work it leaves the purger ([`Work`]): every message
//! of an incarnation nothing can reach any more (TTL removed its conversation item, or a create
//! took its id over after it expired), the messages a clear moved its boundary over, or
//! everything of a purged incarnation. Only conversation items (`sk = C`) imply any; the images
//! carry what tells which (`create_time`, `cleared_through`, `purged_at`), so the stream's view
//! type must be `NEW_AND_OLD_IMAGES`.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record};
use conversations::domain::time::Timestamp;
use serde::Deserialize;

/// The sort key of a conversation item (messages have `M#…`, idempotency markers `R#…`).
const CONVERSATION_SK: &str = "C";

/// The attributes of a conversation item that tell the purger what a change left behind, as
/// one image of a record holds them (numbers, as the stream writes them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// `create_time`: the incarnation, in microseconds.
    pub incarnation: Option<String>,
    /// `cleared_through`: the clear boundary (absent: nothing cleared).
    pub cleared_through: Option<String>,
    /// `purged_at`: when a purge made the conversation missing (absent: never purged).
    pub purged_at: Option<String>,
}

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
    /// The item before the change (empty when the record has no old image).
    pub old: Image,
    /// The item after the change (empty when the record has no new image).
    pub new: Image,
}

/// What one change leaves the purger to delete, in one conversation's item collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// `CONV#{owner}#{id}`.
    pub partition: String,
    /// The `createTime` of the incarnation whose items go (message keys carry it, and markers
    /// an attribute of it, so nothing of another incarnation of the id is touched).
    pub incarnation: Timestamp,
    /// Which of its items.
    pub what: What,
}

/// Which items of an incarnation go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// Every message, and the body: TTL removed the conversation item (at its expiry or purge
    /// time), or a create took its id over after it expired (and replaced the body).
    Messages,
    /// The messages of orders `1..=through`: a clear moved the boundary to `through`. From the
    /// first order, not from the old boundary: what an earlier clear's purge left (its record
    /// lost) goes too, at no extra cost, as a `Query` reads only the items still there.
    Cleared {
        /// The new boundary.
        through: u64,
    },
    /// Everything of a purged incarnation: its messages, then its idempotency markers and the
    /// conversation item itself (while it is still that purged incarnation: a create may have
    /// taken the id since).
    Purged,
}

impl What {
    /// A name for the log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::Cleared { .. } => "cleared",
            Self::Purged => "purged",
        }
    }
}

impl Change {
    /// The work this change leaves, if any:
    /// - `REMOVE` of a conversation item: every message of the removed incarnation;
    /// - `MODIFY` that changed `create_time` (a create over an expired conversation): every
    ///   message of the old incarnation;
    /// - `MODIFY` that set `purged_at`: everything of that incarnation;
    /// - `MODIFY` that raised `cleared_through`: the cleared messages of that incarnation;
    /// - anything else (messages, markers, inserts, appends, updates, a clear that moved
    ///   nothing, any later write of a cleared conversation): nothing.
    ///
    /// An error means the record does not carry what the purge needs (the stream's view type
    /// must be `NEW_AND_OLD_IMAGES`).
    pub fn work(&self) -> Result<Option<Work>, String> {
        if self.sort.as_deref() != Some(CONVERSATION_SK) {
            return Ok(None);
        }
        let what = match self.event.as_str() {
            "REMOVE" => What::Messages,
            "MODIFY" => {
                let (old, new) = (self.incarnation(&self.old)?, self.incarnation(&self.new)?);
                if old != new {
                    What::Messages
                } else if self.new.purged_at.is_some() && self.old.purged_at.is_none() {
                    What::Purged
                } else {
                    let (from, to) = (self.cleared(&self.old)?, self.cleared(&self.new)?);
                    if to <= from {
                        return Ok(None);
                    }
                    What::Cleared { through: to }
                }
            }
            _ => return Ok(None),
        };
        let partition = self
            .partition
            .clone()
            .ok_or_else(|| format!("record {} has no partition key", self.sequence))?;
        Ok(Some(Work {
            partition,
            // The incarnation the change ended (a takeover's new one has nothing to lose).
            incarnation: self.incarnation(&self.old)?,
            what,
        }))
    }

    /// The incarnation an image names.
    fn incarnation(&self, image: &Image) -> Result<Timestamp, String> {
        image
            .incarnation
            .as_deref()
            .and_then(|n| n.parse().ok())
            .and_then(Timestamp::from_micros)
            .ok_or_else(|| {
                format!(
                    "record {} carries no image with create_time: the stream must be NEW_AND_OLD_IMAGES",
                    self.sequence
                )
            })
    }

    /// The clear boundary an image holds (0 when absent).
    fn cleared(&self, image: &Image) -> Result<u64, String> {
        image.cleared_through.as_deref().map_or(Ok(0), |n| {
            n.parse().map_err(|_| {
                format!(
                    "record {} holds cleared_through {n}, not an order",
                    self.sequence
                )
            })
        })
    }

    /// A record of a Lambda stream event.
    pub fn from_event(record: EventRecord) -> Self {
        let d = record.dynamodb;
        let key = |name: &str| d.keys.get(name).and_then(|a| a.s.clone());
        let image = |image: &HashMap<String, EventAttribute>| {
            let number = |name: &str| image.get(name).and_then(|a| a.n.clone());
            Image {
                incarnation: number("create_time"),
                cleared_through: number("cleared_through"),
                purged_at: number("purged_at"),
            }
        };
        Self {
            event: record.event_name,
            sequence: d.sequence_number,
            partition: key("pk"),
            sort: key("sk"),
            old: image(&d.old_image),
            new: image(&d.new_image),
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
        let image = |map: Option<&HashMap<String, AttributeValue>>| {
            let number = |name: &str| {
                map.and_then(|m| m.get(name))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
            };
            Image {
                incarnation: number("create_time"),
                cleared_through: number("cleared_through"),
                purged_at: number("purged_at"),
            }
        };
        Self {
            event: event.to_owned(),
            sequence: d
                .and_then(|d| d.sequence_number())
                .unwrap_or_default()
                .to_owned(),
            partition: string(d.and_then(|d| d.keys()), "pk"),
            sort: string(d.and_then(|d| d.keys()), "sk"),
            old: image(d.and_then(|d| d.old_image())),
            new: image(d.and_then(|d| d.new_image())),
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

    /// An image of a conversation item: incarnation, clear boundary, purge time.
    fn image(created: Option<&str>, cleared: Option<&str>, purged: Option<&str>) -> Image {
        Image {
            incarnation: created.map(Into::into),
            cleared_through: cleared.map(Into::into),
            purged_at: purged.map(Into::into),
        }
    }

    fn change(event: &str, sort: &str, old: Image, new: Image) -> Change {
        Change {
            event: event.into(),
            sequence: "7".into(),
            partition: Some("CONV#o#c".into()),
            sort: Some(sort.into()),
            old,
            new,
        }
    }

    fn what(change: &Change) -> Option<(What, i64)> {
        change
            .work()
            .expect("readable")
            .map(|w| (w.what, w.incarnation.micros()))
    }

    const NONE: Image = Image {
        incarnation: None,
        cleared_through: None,
        purged_at: None,
    };

    #[test]
    fn removals_and_incarnation_changes_of_conversations_lose_every_message_of_the_old_one() {
        let live = image(Some("1000"), Some("4"), None);
        assert_eq!(
            what(&change("REMOVE", "C", live.clone(), NONE)),
            Some((What::Messages, 1000))
        );
        let taken_over = change("MODIFY", "C", live, image(Some("2000"), None, None));
        assert_eq!(what(&taken_over), Some((What::Messages, 1000)));
        // A purged incarnation taken over: its own purge record deletes the markers and item.
        let purged = image(Some("1000"), None, Some("1500"));
        let after_purge = change("MODIFY", "C", purged, image(Some("2000"), None, None));
        assert_eq!(what(&after_purge), Some((What::Messages, 1000)));
        assert!(change("REMOVE", "C", NONE, NONE).work().is_err());
    }

    #[test]
    fn a_purge_loses_everything_of_its_incarnation() {
        let purge = change(
            "MODIFY",
            "C",
            image(Some("1000"), Some("3"), None),
            image(Some("1000"), Some("3"), Some("1500")),
        );
        assert_eq!(what(&purge), Some((What::Purged, 1000)));
    }

    #[test]
    fn a_clear_loses_the_messages_up_to_its_new_boundary_and_nothing_when_it_moved_none() {
        let first = change(
            "MODIFY",
            "C",
            image(Some("1000"), None, None),
            image(Some("1000"), Some("4"), None),
        );
        assert_eq!(what(&first), Some((What::Cleared { through: 4 }, 1000)));
        let further = change(
            "MODIFY",
            "C",
            image(Some("1000"), Some("4"), None),
            image(Some("1000"), Some("9"), None),
        );
        assert_eq!(what(&further), Some((What::Cleared { through: 9 }, 1000)));
        for nothing in [
            // A later write of a cleared conversation (an append, a clear already covered).
            change(
                "MODIFY",
                "C",
                image(Some("1000"), Some("9"), None),
                image(Some("1000"), Some("9"), None),
            ),
            // A clear of an empty conversation writes a boundary of 0.
            change(
                "MODIFY",
                "C",
                image(Some("1000"), None, None),
                image(Some("1000"), Some("0"), None),
            ),
        ] {
            assert_eq!(nothing.work(), Ok(None), "{nothing:?}");
        }
        let unreadable = change(
            "MODIFY",
            "C",
            image(Some("1000"), None, None),
            image(Some("1000"), Some("-1"), None),
        );
        assert!(unreadable.work().is_err());
    }

    #[test]
    fn other_items_and_other_writes_lose_nothing() {
        let live = image(Some("1000"), None, None);
        for nothing in [
            change("MODIFY", "C", live.clone(), live.clone()),
            change("INSERT", "C", NONE, live.clone()),
            change(
                "REMOVE",
                "M#0000000001#0000000000000001000",
                live.clone(),
                NONE,
            ),
            change(
                "INSERT",
                "M#0000000001#0000000000000001000",
                NONE,
                live.clone(),
            ),
            change("REMOVE", "R#r", live.clone(), NONE),
        ] {
            assert_eq!(nothing.work(), Ok(None), "{nothing:?}");
        }
        // A modified conversation item without images: the stream's view type is wrong.
        assert!(change("MODIFY", "C", NONE, NONE).work().is_err());
    }

    #[test]
    fn lambda_events_and_get_records_pages_read_the_same_change() {
        use aws_sdk_dynamodbstreams::types::StreamRecord;
        let n = |v: &str| AttributeValue::N(v.into());
        let sdk = Record::builder()
            .event_name(OperationType::Modify)
            .dynamodb(
                StreamRecord::builder()
                    .sequence_number("42")
                    .keys("pk", AttributeValue::S("CONV#o#c".into()))
                    .keys("sk", AttributeValue::S("C".into()))
                    .old_image("create_time", n("1000"))
                    .old_image("cleared_through", n("2"))
                    .new_image("create_time", n("1000"))
                    .new_image("cleared_through", n("2"))
                    .new_image("purged_at", n("1500"))
                    .build(),
            )
            .build();
        let event: EventRecord = serde_json::from_value(serde_json::json!({
            "eventName": "MODIFY",
            "userIdentity": null,
            "dynamodb": {
                "SequenceNumber": "42",
                "Keys": {"pk": {"S": "CONV#o#c"}, "sk": {"S": "C"}},
                "OldImage": {"create_time": {"N": "1000"}, "cleared_through": {"N": "2"}, "labels": {}},
                "NewImage": {"create_time": {"N": "1000"}, "cleared_through": {"N": "2"},
                             "purged_at": {"N": "1500"}, "labels": {"M": {}}},
            }
        }))
        .expect("an event record");
        let (from_sdk, from_event) = (Change::from_sdk(&sdk), Change::from_event(event));
        assert_eq!(from_sdk, from_event);
        assert_eq!(from_sdk.new.purged_at.as_deref(), Some("1500"));
        assert_eq!(from_sdk.old.cleared_through.as_deref(), Some("2"));
        assert_eq!(what(&from_sdk), Some((What::Purged, 1000)));
    }

    #[test]
    fn sequence_numbers_order_by_value() {
        assert!(sequence_after("10", "9"));
        assert!(sequence_after("000000000000000000545", "544"));
        assert!(!sequence_after("544", "000544"));
        assert!(!sequence_after("1", "2"));
    }
}
