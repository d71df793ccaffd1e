//! How the seed APIs' structured fields and a conversation's metadata are stored: native maps
//! and lists, never JSON text, in a shape that lets one `UpdateItem` set or remove any leaf an
//! `updateMask` names without reading first.
//!
//! DynamoDB refuses `SET a.b = :v` when `a` does not exist. So the parents a leaf path can name
//! always exist on a conversation item: `quality_metadata` and `call_metadata` are maps (empty
//! when unset), `data_source` is a map holding both members as maps (`gcs_source`,
//! `dialogflow_source`; empty when unset), and `metadata` is a map of top-level key → that
//! key's value as JSON text (empty when unset; a value round-trips as the client's JSON, and is
//! one leaf, so `metadata.<key>` is `SET metadata.#k`). Each key is stored behind
//! [`METADATA_KEY_PREFIX`]: DynamoDB refuses an empty name, which a JSON key may be. Clearing an object writes its empty form
//! instead of removing it. `metadata_bytes` holds the serialised size of the metadata, which the
//! per-key writes' condition bounds. `sources` (a list) and `phoneNumber` (immutable) are never
//! written leaf by leaf and are absent when unset.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use super::attribute::{Item, attr, n, s};
use crate::domain::seed_fields::{
    AgentInfo, CallMetadata, DataSource, DialogflowSource, GcsSource, Leaf, LeafValue, Object,
    PhoneNumber, QualityMetadata, Source,
};
use crate::error::ApiError;

fn corrupt(key: &str) -> ApiError {
    ApiError::internal(format!(
        "stored item has a missing or malformed attribute {key}"
    ))
}

/// A camelCase name as stored, in snake_case (`customerSatisfactionRating` →
/// `customer_satisfaction_rating`).
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The stored path of an object.
pub fn object_path(object: Object) -> Vec<String> {
    object.path().iter().map(|p| snake_case(p)).collect()
}

/// The stored path of a leaf.
pub fn leaf_path(leaf: Leaf) -> Vec<String> {
    let mut path = object_path(leaf.parent());
    path.push(snake_case(leaf.name()));
    path
}

/// A leaf's value as stored.
pub fn leaf_value(value: &LeafValue) -> AttributeValue {
    match value {
        LeafValue::Int(v) => n(*v),
        LeafValue::Text(t) => s(t.as_str()),
        LeafValue::Agents(agents) => AttributeValue::L(agents.iter().map(agent).collect()),
    }
}

fn agent(a: &AgentInfo) -> AttributeValue {
    let mut m = HashMap::from([("agent_id".to_owned(), s(a.agent_id.as_str()))]);
    for (key, value) in [
        ("display_name", &a.display_name),
        ("team", &a.team),
        ("disposition_code", &a.disposition_code),
    ] {
        if let Some(v) = value {
            m.insert(key.to_owned(), s(v.as_str()));
        }
    }
    AttributeValue::M(m)
}

/// Leaves as a stored map (the unset ones left out; none set: an empty map).
fn leaves(values: &[(Leaf, Option<LeafValue>)]) -> AttributeValue {
    AttributeValue::M(
        values
            .iter()
            .filter_map(|(leaf, v)| v.as_ref().map(|v| (snake_case(leaf.name()), leaf_value(v))))
            .collect(),
    )
}

/// `quality_metadata`.
pub fn quality(q: &QualityMetadata) -> AttributeValue {
    leaves(&q.leaves())
}

/// `call_metadata`.
pub fn call(c: &CallMetadata) -> AttributeValue {
    leaves(&c.leaves())
}

/// `data_source.gcs_source`.
pub fn gcs(g: &GcsSource) -> AttributeValue {
    leaves(&g.leaves())
}

/// `data_source.dialogflow_source`.
pub fn dialogflow(d: &DialogflowSource) -> AttributeValue {
    leaves(&d.leaves())
}

/// `data_source`: both members, always.
pub fn data_source(d: &DataSource) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("gcs_source".to_owned(), gcs(&d.gcs)),
        ("dialogflow_source".to_owned(), dialogflow(&d.dialogflow)),
    ]))
}

/// `sources`.
pub fn sources(sources: &[Source]) -> AttributeValue {
    AttributeValue::L(
        sources
            .iter()
            .map(|src| {
                AttributeValue::M(HashMap::from([
                    ("model".to_owned(), s(src.model.as_str())),
                    ("explore".to_owned(), s(src.explore.as_str())),
                ]))
            })
            .collect(),
    )
}

/// `phone_number`.
pub fn phone(p: &PhoneNumber) -> AttributeValue {
    let mut m = HashMap::new();
    if let Some(c) = p.country_code {
        m.insert("country_code".to_owned(), n(c));
    }
    if let Some(number) = &p.phone_number {
        m.insert("phone_number".to_owned(), s(number.as_str()));
    }
    AttributeValue::M(m)
}

/// What every stored metadata key starts with (`""` is stored as `"m:"`).
pub const METADATA_KEY_PREFIX: &str = "m:";

/// A metadata key as stored.
pub fn metadata_key(key: &str) -> String {
    format!("{METADATA_KEY_PREFIX}{key}")
}

/// One metadata value as stored: its JSON text.
pub fn metadata_value(value: &Value) -> AttributeValue {
    s(value.to_string())
}

/// `metadata` (an empty map when none).
pub fn metadata(m: Option<&Map<String, Value>>) -> AttributeValue {
    AttributeValue::M(
        m.into_iter()
            .flatten()
            .map(|(k, v)| (metadata_key(k), metadata_value(v)))
            .collect(),
    )
}

/// Sets (`Some`) or removes (`None`) top-level keys of a conversation's `metadata` in place:
/// its stored map always exists, so each key is one path of the write.
pub fn write_metadata_keys(e: &mut super::expr::Expr, keys: &[(String, Option<Value>)]) {
    for (k, v) in keys {
        let path = [attr::METADATA.to_owned(), metadata_key(k)];
        match v {
            Some(v) => e.set_path(&path, metadata_value(v)),
            None => e.remove_path(&path),
        }
    }
}

/// The serialised size of a metadata object, as its 16 KiB limit counts it.
pub fn metadata_size(m: Option<&Map<String, Value>>) -> usize {
    m.map_or(0, |m| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len()))
}

/// At most how many bytes setting these keys adds to a metadata object's serialised size
/// (each as if new: its quoted key, a colon, its value, a comma).
pub fn metadata_growth(keys: &[(String, Option<Value>)]) -> usize {
    keys.iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| Value::from(k.as_str()).to_string().len() + v.to_string().len() + 2)
        })
        .sum()
}

// ---------------------------------------------------------------- reading

fn map<'a>(
    item: &'a HashMap<String, AttributeValue>,
    key: &str,
) -> Option<&'a HashMap<String, AttributeValue>> {
    item.get(key).and_then(|v| v.as_m().ok())
}

fn text(m: &HashMap<String, AttributeValue>, key: &str) -> Result<Option<String>, ApiError> {
    m.get(key)
        .map(|v| v.as_s().cloned().map_err(|_| corrupt(key)))
        .transpose()
}

fn int(m: &HashMap<String, AttributeValue>, key: &str) -> Result<Option<i64>, ApiError> {
    m.get(key)
        .map(|v| {
            v.as_n()
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| corrupt(key))
        })
        .transpose()
}

fn members(item: &Item, key: &str) -> Result<Vec<HashMap<String, AttributeValue>>, ApiError> {
    match item.get(key) {
        None => Ok(Vec::new()),
        Some(v) => v
            .as_l()
            .map_err(|_| corrupt(key))?
            .iter()
            .map(|e| e.as_m().cloned().map_err(|_| corrupt(key)))
            .collect(),
    }
}

/// `quality_metadata` of an item (absent: empty).
pub fn quality_from(item: &Item) -> Result<QualityMetadata, ApiError> {
    let Some(m) = map(item, attr::QUALITY) else {
        return Ok(QualityMetadata::default());
    };
    let agent_info = match m.get("agent_info") {
        None => Vec::new(),
        Some(v) => v
            .as_l()
            .map_err(|_| corrupt(attr::QUALITY))?
            .iter()
            .map(|a| {
                let a = a.as_m().map_err(|_| corrupt(attr::QUALITY))?;
                Ok(AgentInfo {
                    agent_id: text(a, "agent_id")?.ok_or_else(|| corrupt(attr::QUALITY))?,
                    display_name: text(a, "display_name")?,
                    team: text(a, "team")?,
                    disposition_code: text(a, "disposition_code")?,
                })
            })
            .collect::<Result<_, ApiError>>()?,
    };
    Ok(QualityMetadata {
        customer_satisfaction_rating: int(m, "customer_satisfaction_rating")?,
        wait_duration: text(m, "wait_duration")?,
        menu_path: text(m, "menu_path")?,
        agent_info,
    })
}

/// `call_metadata` of an item (absent: empty).
pub fn call_from(item: &Item) -> Result<CallMetadata, ApiError> {
    let Some(m) = map(item, attr::CALL) else {
        return Ok(CallMetadata::default());
    };
    Ok(CallMetadata {
        customer_channel: int(m, "customer_channel")?,
        agent_channel: int(m, "agent_channel")?,
    })
}

/// `data_source` of an item (absent: empty).
pub fn data_source_from(item: &Item) -> Result<DataSource, ApiError> {
    let Some(d) = map(item, attr::DATA_SOURCE) else {
        return Ok(DataSource::default());
    };
    let empty = HashMap::new();
    let gcs = map(d, "gcs_source").unwrap_or(&empty);
    let df = map(d, "dialogflow_source").unwrap_or(&empty);
    Ok(DataSource {
        gcs: GcsSource {
            audio_uri: text(gcs, "audio_uri")?,
            transcript_uri: text(gcs, "transcript_uri")?,
        },
        dialogflow: DialogflowSource {
            dialogflow_conversation: text(df, "dialogflow_conversation")?,
            audio_uri: text(df, "audio_uri")?,
        },
    })
}

/// `sources` of an item (absent: none).
pub fn sources_from(item: &Item) -> Result<Vec<Source>, ApiError> {
    members(item, attr::SOURCES)?
        .iter()
        .map(|m| {
            Ok(Source {
                model: text(m, "model")?.ok_or_else(|| corrupt(attr::SOURCES))?,
                explore: text(m, "explore")?.ok_or_else(|| corrupt(attr::SOURCES))?,
            })
        })
        .collect()
}

/// `phone_number` of an item.
pub fn phone_from(item: &Item) -> Result<Option<PhoneNumber>, ApiError> {
    let Some(m) = map(item, attr::PHONE) else {
        return Ok(None);
    };
    Ok(Some(PhoneNumber {
        country_code: int(m, "country_code")?,
        phone_number: text(m, "phone_number")?,
    }))
}

/// `metadata` of an item: a map of JSON texts, or (written before layout 3) one JSON text;
/// empty or absent is none.
pub fn metadata_from(item: &Item) -> Result<Option<Map<String, Value>>, ApiError> {
    let out: Map<String, Value> = match item.get(attr::METADATA) {
        None => return Ok(None),
        Some(AttributeValue::S(text)) => {
            serde_json::from_str(text).map_err(|_| corrupt(attr::METADATA))?
        }
        Some(AttributeValue::M(m)) => m
            .iter()
            .map(|(k, v)| {
                let key = k
                    .strip_prefix(METADATA_KEY_PREFIX)
                    .ok_or_else(|| corrupt(attr::METADATA))?;
                let text = v.as_s().map_err(|_| corrupt(attr::METADATA))?;
                let value = serde_json::from_str(text).map_err(|_| corrupt(attr::METADATA))?;
                Ok((key.to_owned(), value))
            })
            .collect::<Result<_, ApiError>>()?,
        Some(_) => return Err(corrupt(attr::METADATA)),
    };
    Ok((!out.is_empty()).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_names_are_the_snake_case_of_the_api_s() {
        assert_eq!(
            leaf_path(Leaf::GcsAudioUri),
            ["data_source", "gcs_source", "audio_uri"]
        );
        assert_eq!(
            leaf_path(Leaf::Rating),
            ["quality_metadata", "customer_satisfaction_rating"]
        );
        assert_eq!(
            object_path(Object::Dialogflow),
            ["data_source", "dialogflow_source"]
        );
    }

    #[test]
    fn every_field_round_trips_through_its_attribute() {
        let q = QualityMetadata {
            customer_satisfaction_rating: Some(4),
            wait_duration: Some("1.5s".into()),
            menu_path: None,
            agent_info: vec![AgentInfo {
                agent_id: "a".into(),
                display_name: None,
                team: Some("t".into()),
                disposition_code: None,
            }],
        };
        let d = DataSource {
            gcs: GcsSource::default(),
            dialogflow: DialogflowSource {
                dialogflow_conversation: Some("projects/p/conversations/c".into()),
                audio_uri: None,
            },
        };
        let meta = json!({"n": u64::MAX, "deep": {"x": [1.5, null]}, "": "an empty key"})
            .as_object()
            .cloned();
        let item = Item::from([
            (attr::QUALITY.to_owned(), quality(&q)),
            (attr::DATA_SOURCE.to_owned(), data_source(&d)),
            (attr::METADATA.to_owned(), metadata(meta.as_ref())),
            (
                attr::PHONE.to_owned(),
                phone(&PhoneNumber {
                    country_code: Some(44),
                    phone_number: Some("+442071234567".into()),
                }),
            ),
        ]);
        assert_eq!(quality_from(&item).expect("quality"), q);
        assert_eq!(data_source_from(&item).expect("data source"), d);
        assert_eq!(metadata_from(&item).expect("metadata"), meta);
        assert_eq!(call_from(&item).expect("call"), CallMetadata::default());
        assert_eq!(
            phone_from(&item)
                .expect("phone")
                .and_then(|p| p.country_code),
            Some(44)
        );
        let legacy = Item::from([(attr::METADATA.to_owned(), s("{\"a\":1}"))]);
        assert_eq!(
            metadata_from(&legacy).expect("legacy"),
            json!({"a": 1}).as_object().cloned()
        );
        let empty = Item::from([(attr::METADATA.to_owned(), metadata(None))]);
        assert_eq!(metadata_from(&empty).expect("empty"), None);
    }

    #[test]
    fn metadata_growth_never_undercounts_a_key_set() {
        let mut m = json!({"a": "x".repeat(100)})
            .as_object()
            .cloned()
            .expect("object");
        let before = metadata_size(Some(&m));
        let keys = vec![
            ("b".to_owned(), Some(json!({"k": [1, 2]}))),
            ("a".to_owned(), None),
        ];
        m.insert("b".into(), json!({"k": [1, 2]}));
        assert!(metadata_size(Some(&m)) <= before + metadata_growth(&keys));
    }
}
