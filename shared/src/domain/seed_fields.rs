//! The seed APIs' structured fields of a conversation: CCAI Insights' `qualityMetadata`,
//! `callMetadata` and `dataSource`, Looker's `sources` and Dialogflow's `phoneNumber`. Each is
//! read from a body with every broken leaf named by its full path (`dataSource.gcsSource.audioUri`,
//! `qualityMetadata.agentInfo[2].agentId`), rendered, and — for the first three — addressed leaf
//! by leaf by an `updateMask` (AIP-161, [`Leaf`]).

use serde_json::{Map, Value};

use crate::domain::body::{Reader, kind};
use crate::domain::ids::shorten;
use crate::domain::time::Duration;
use crate::error::ApiError;

/// One agent of a call (CCAI Insights `AgentInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// 1–128 characters.
    pub agent_id: String,
    /// At most 256 characters.
    pub display_name: Option<String>,
    /// At most 128 characters.
    pub team: Option<String>,
    /// At most 128 characters.
    pub disposition_code: Option<String>,
}

/// CCAI Insights' `qualityMetadata`; every leaf optional, empty when none is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QualityMetadata {
    /// 1–5.
    pub customer_satisfaction_rating: Option<i64>,
    /// A duration of at least `0s`, kept as the client wrote it (`"30s"`, `"1.5s"`).
    pub wait_duration: Option<String>,
    /// At most 256 characters.
    pub menu_path: Option<String>,
    /// At most 16; empty is none.
    pub agent_info: Vec<AgentInfo>,
}

/// CCAI Insights' `callMetadata`: the audio channels of each side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallMetadata {
    /// 0–255.
    pub customer_channel: Option<i64>,
    /// 0–255.
    pub agent_channel: Option<i64>,
}

/// `dataSource.gcsSource`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcsSource {
    /// A URI with a scheme, at most 2048 characters.
    pub audio_uri: Option<String>,
    /// A URI with a scheme, at most 2048 characters.
    pub transcript_uri: Option<String>,
}

/// `dataSource.dialogflowSource`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialogflowSource {
    /// The Dialogflow conversation's resource name, at most 2048 characters.
    pub dialogflow_conversation: Option<String>,
    /// A URI with a scheme, at most 2048 characters.
    pub audio_uri: Option<String>,
}

/// CCAI Insights' `dataSource`: at most one member holds anything (setting one clears the
/// other); both empty is no data source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSource {
    /// `gcsSource`.
    pub gcs: GcsSource,
    /// `dialogflowSource`.
    pub dialogflow: DialogflowSource,
}

/// One Looker source: a model and an explore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// 1–256 characters.
    pub model: String,
    /// 1–256 characters.
    pub explore: String,
}

/// Dialogflow's `phoneNumber`; immutable after create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneNumber {
    /// 1–999.
    pub country_code: Option<i64>,
    /// E.164: `^\+[1-9][0-9]{1,14}$`.
    pub phone_number: Option<String>,
}

/// The most agents a `qualityMetadata.agentInfo` holds, and the most `sources`.
pub const MAX_AGENT_INFO: usize = 16;
/// The most Looker sources.
pub const MAX_SOURCES: usize = 16;
/// The longest URI or resource name of a data source, in characters.
pub const MAX_URI: usize = 2048;
/// The schemes a data source's URIs may have.
pub const URI_SCHEMES: [&str; 3] = ["gs://", "s3://", "https://"];

/// A leaf of the objects an `updateMask` may address one field at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// `qualityMetadata.customerSatisfactionRating`.
    Rating,
    /// `qualityMetadata.waitDuration`.
    WaitDuration,
    /// `qualityMetadata.menuPath`.
    MenuPath,
    /// `qualityMetadata.agentInfo` (a list: set or removed whole).
    AgentInfo,
    /// `callMetadata.customerChannel`.
    CustomerChannel,
    /// `callMetadata.agentChannel`.
    AgentChannel,
    /// `dataSource.gcsSource.audioUri`.
    GcsAudioUri,
    /// `dataSource.gcsSource.transcriptUri`.
    GcsTranscriptUri,
    /// `dataSource.dialogflowSource.dialogflowConversation`.
    DialogflowConversation,
    /// `dataSource.dialogflowSource.audioUri`.
    DialogflowAudioUri,
}

/// The objects an `updateMask` may replace whole, and the parents of [`Leaf`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// `qualityMetadata`.
    Quality,
    /// `callMetadata`.
    Call,
    /// `dataSource`.
    DataSource,
    /// `dataSource.gcsSource`.
    Gcs,
    /// `dataSource.dialogflowSource`.
    Dialogflow,
}

impl Object {
    /// Every object, for path lookups.
    pub const ALL: [Object; 5] = [
        Self::Quality,
        Self::Call,
        Self::DataSource,
        Self::Gcs,
        Self::Dialogflow,
    ];

    /// Its path, camelCase segments.
    pub fn path(self) -> &'static [&'static str] {
        match self {
            Self::Quality => &["qualityMetadata"],
            Self::Call => &["callMetadata"],
            Self::DataSource => &["dataSource"],
            Self::Gcs => &["dataSource", "gcsSource"],
            Self::Dialogflow => &["dataSource", "dialogflowSource"],
        }
    }

    /// The other member of `dataSource`, for a member.
    pub fn other_member(self) -> Option<Object> {
        match self {
            Self::Gcs => Some(Self::Dialogflow),
            Self::Dialogflow => Some(Self::Gcs),
            _ => None,
        }
    }
}

impl Leaf {
    /// Every leaf, for path lookups.
    pub const ALL: [Leaf; 10] = [
        Self::Rating,
        Self::WaitDuration,
        Self::MenuPath,
        Self::AgentInfo,
        Self::CustomerChannel,
        Self::AgentChannel,
        Self::GcsAudioUri,
        Self::GcsTranscriptUri,
        Self::DialogflowConversation,
        Self::DialogflowAudioUri,
    ];

    /// The object it belongs to.
    pub fn parent(self) -> Object {
        match self {
            Self::Rating | Self::WaitDuration | Self::MenuPath | Self::AgentInfo => Object::Quality,
            Self::CustomerChannel | Self::AgentChannel => Object::Call,
            Self::GcsAudioUri | Self::GcsTranscriptUri => Object::Gcs,
            Self::DialogflowConversation | Self::DialogflowAudioUri => Object::Dialogflow,
        }
    }

    /// Its name within its parent (camelCase).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rating => "customerSatisfactionRating",
            Self::WaitDuration => "waitDuration",
            Self::MenuPath => "menuPath",
            Self::AgentInfo => "agentInfo",
            Self::CustomerChannel => "customerChannel",
            Self::AgentChannel => "agentChannel",
            Self::GcsAudioUri | Self::DialogflowAudioUri => "audioUri",
            Self::GcsTranscriptUri => "transcriptUri",
            Self::DialogflowConversation => "dialogflowConversation",
        }
    }

    /// Its full path, camelCase segments.
    pub fn path(self) -> Vec<&'static str> {
        let mut path = self.parent().path().to_vec();
        path.push(self.name());
        path
    }
}

/// The value of one leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafValue {
    /// A rating or a channel.
    Int(i64),
    /// A duration, a menu path, a URI or a resource name.
    Text(String),
    /// `agentInfo`.
    Agents(Vec<AgentInfo>),
}

impl LeafValue {
    fn to_json(&self) -> Value {
        match self {
            Self::Int(v) => (*v).into(),
            Self::Text(t) => t.as_str().into(),
            Self::Agents(a) => Value::Array(a.iter().map(AgentInfo::to_json).collect()),
        }
    }
}

impl AgentInfo {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("agentId".into(), self.agent_id.as_str().into());
        for (key, value) in [
            ("displayName", &self.display_name),
            ("team", &self.team),
            ("dispositionCode", &self.disposition_code),
        ] {
            if let Some(v) = value {
                out.insert(key.into(), v.as_str().into());
            }
        }
        Value::Object(out)
    }
}

/// Renders the leaves that are set, in order; `None` when none is.
fn leaves_json(leaves: &[(Leaf, Option<LeafValue>)]) -> Option<Value> {
    let out: Map<String, Value> = leaves
        .iter()
        .filter_map(|(leaf, v)| v.as_ref().map(|v| (leaf.name().to_owned(), v.to_json())))
        .collect();
    (!out.is_empty()).then_some(Value::Object(out))
}

impl QualityMetadata {
    /// Each leaf with its value.
    pub fn leaves(&self) -> Vec<(Leaf, Option<LeafValue>)> {
        vec![
            (
                Leaf::Rating,
                self.customer_satisfaction_rating.map(LeafValue::Int),
            ),
            (
                Leaf::WaitDuration,
                self.wait_duration.clone().map(LeafValue::Text),
            ),
            (Leaf::MenuPath, self.menu_path.clone().map(LeafValue::Text)),
            (
                Leaf::AgentInfo,
                (!self.agent_info.is_empty()).then(|| LeafValue::Agents(self.agent_info.clone())),
            ),
        ]
    }

    /// The JSON representation; `None` when nothing is set.
    pub fn to_json(&self) -> Option<Value> {
        leaves_json(&self.leaves())
    }
}

impl CallMetadata {
    /// Each leaf with its value.
    pub fn leaves(&self) -> Vec<(Leaf, Option<LeafValue>)> {
        vec![
            (
                Leaf::CustomerChannel,
                self.customer_channel.map(LeafValue::Int),
            ),
            (Leaf::AgentChannel, self.agent_channel.map(LeafValue::Int)),
        ]
    }

    /// The JSON representation; `None` when nothing is set.
    pub fn to_json(&self) -> Option<Value> {
        leaves_json(&self.leaves())
    }
}

impl GcsSource {
    /// Each leaf with its value.
    pub fn leaves(&self) -> Vec<(Leaf, Option<LeafValue>)> {
        vec![
            (
                Leaf::GcsAudioUri,
                self.audio_uri.clone().map(LeafValue::Text),
            ),
            (
                Leaf::GcsTranscriptUri,
                self.transcript_uri.clone().map(LeafValue::Text),
            ),
        ]
    }
}

impl DialogflowSource {
    /// Each leaf with its value.
    pub fn leaves(&self) -> Vec<(Leaf, Option<LeafValue>)> {
        vec![
            (
                Leaf::DialogflowConversation,
                self.dialogflow_conversation.clone().map(LeafValue::Text),
            ),
            (
                Leaf::DialogflowAudioUri,
                self.audio_uri.clone().map(LeafValue::Text),
            ),
        ]
    }
}

impl DataSource {
    /// The JSON representation: the member that holds something; `None` when neither does.
    pub fn to_json(&self) -> Option<Value> {
        let mut out = Map::new();
        if let Some(gcs) = leaves_json(&self.gcs.leaves()) {
            out.insert("gcsSource".into(), gcs);
        }
        if let Some(df) = leaves_json(&self.dialogflow.leaves()) {
            out.insert("dialogflowSource".into(), df);
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

impl Source {
    /// The JSON representation.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"model": self.model, "explore": self.explore})
    }
}

impl PhoneNumber {
    /// The JSON representation; `None` when nothing is set.
    pub fn to_json(&self) -> Option<Value> {
        let mut out = Map::new();
        if let Some(c) = self.country_code {
            out.insert("countryCode".into(), c.into());
        }
        if let Some(p) = &self.phone_number {
            out.insert("phoneNumber".into(), p.as_str().into());
        }
        (!out.is_empty()).then_some(Value::Object(out))
    }
}

// ---------------------------------------------------------------- reading a body

/// Refuses a key of a nested object that the object does not have (a 400, as an unknown field
/// anywhere in a body).
fn only(path: &str, map: &Map<String, Value>, names: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !names.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::InvalidArgument(format!(
            "unknown field {path}.{} in the request body",
            shorten(unknown)
        ))),
        None => Ok(()),
    }
}

/// The object at `key`, or an `invalid_type` error.
fn object<'a>(r: &mut Reader<'a>, key: &str) -> Option<&'a Map<String, Value>> {
    match r.raw(key)? {
        Value::Object(map) => Some(map),
        other => {
            r.error(
                key,
                "invalid_type",
                format!("must be an object, not {}", kind(other)),
            );
            None
        }
    }
}

/// A required string of 1 to `max` characters.
fn required(r: &mut Reader<'_>, key: &str, max: usize) -> Option<String> {
    if r.raw(key).is_none() || r.raw(key).and_then(Value::as_str) == Some("") {
        r.error(key, "required", format!("{key} is required"));
        return None;
    }
    r.string(key, max)
}

/// A URI with one of the [`URI_SCHEMES`], at most [`MAX_URI`] characters.
fn uri(r: &mut Reader<'_>, key: &str) -> Option<String> {
    let text = r.string(key, MAX_URI)?;
    if URI_SCHEMES
        .iter()
        .any(|s| text.len() > s.len() && text.starts_with(s))
    {
        Some(text)
    } else {
        r.error(
            key,
            "invalid",
            "must be a URI starting with gs://, s3:// or https://",
        );
        None
    }
}

/// Reads `qualityMetadata`.
pub fn read_quality(r: &mut Reader<'_>, key: &str) -> Result<Option<QualityMetadata>, ApiError> {
    let Some(map) = object(r, key) else {
        return Ok(None);
    };
    only(
        key,
        map,
        &[
            "customerSatisfactionRating",
            "waitDuration",
            "menuPath",
            "agentInfo",
        ],
    )?;
    let errors = r.errors.len();
    let mut q = QualityMetadata::default();
    let agents = r.nested(key, map, |n| {
        q.customer_satisfaction_rating = n.integer("customerSatisfactionRating", 1..=5);
        q.wait_duration = match n.raw("waitDuration") {
            Some(Value::String(t)) if Duration::parse(t).is_some() => Some(t.clone()),
            Some(Value::String(_)) => {
                n.error(
                    "waitDuration",
                    "invalid",
                    "must be a duration of at least 0s with an s suffix, e.g. \"30s\"",
                );
                None
            }
            Some(other) => {
                n.error(
                    "waitDuration",
                    "invalid_type",
                    format!("must be a string, not {}", kind(other)),
                );
                None
            }
            None => None,
        };
        q.menu_path = n.string("menuPath", 256);
        read_agent_info(n)
    })?;
    q.agent_info = agents;
    Ok((r.errors.len() == errors).then_some(q))
}

fn read_agent_info(r: &mut Reader<'_>) -> Result<Vec<AgentInfo>, ApiError> {
    let Some(value) = r.raw("agentInfo") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        r.error(
            "agentInfo",
            "invalid_type",
            format!("must be an array of objects, not {}", kind(value)),
        );
        return Ok(Vec::new());
    };
    if items.len() > MAX_AGENT_INFO {
        r.error(
            "agentInfo",
            "too_many",
            format!(
                "must hold at most {MAX_AGENT_INFO} agents, not {}",
                items.len()
            ),
        );
        return Ok(Vec::new());
    }
    let mut agents = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("agentInfo[{i}]");
        let Value::Object(map) = item else {
            r.error(
                path,
                "invalid_type",
                format!("must be an object, not {}", kind(item)),
            );
            continue;
        };
        only(
            &path,
            map,
            &["agentId", "displayName", "team", "dispositionCode"],
        )?;
        let agent = r.nested(&path, map, |n| {
            let agent_id = required(n, "agentId", 128);
            let display_name = n.string("displayName", 256);
            let team = n.string("team", 128);
            let disposition_code = n.string("dispositionCode", 128);
            agent_id.map(|agent_id| AgentInfo {
                agent_id,
                display_name,
                team,
                disposition_code,
            })
        });
        agents.extend(agent);
    }
    Ok(agents)
}

/// Reads `callMetadata`.
pub fn read_call(r: &mut Reader<'_>, key: &str) -> Result<Option<CallMetadata>, ApiError> {
    let Some(map) = object(r, key) else {
        return Ok(None);
    };
    only(key, map, &["customerChannel", "agentChannel"])?;
    let errors = r.errors.len();
    let call = r.nested(key, map, |n| CallMetadata {
        customer_channel: n.integer("customerChannel", 0..=255),
        agent_channel: n.integer("agentChannel", 0..=255),
    });
    Ok((r.errors.len() == errors).then_some(call))
}

/// Reads `dataSource`: exactly one of its members.
pub fn read_data_source(r: &mut Reader<'_>, key: &str) -> Result<Option<DataSource>, ApiError> {
    let Some(map) = object(r, key) else {
        return Ok(None);
    };
    only(key, map, &["gcsSource", "dialogflowSource"])?;
    let errors = r.errors.len();
    let mut source = DataSource::default();
    let mut members = 0;
    r.nested(key, map, |n| -> Result<(), ApiError> {
        if let Some(gcs) = object(n, "gcsSource") {
            members += 1;
            only(
                &format!("{key}.gcsSource"),
                gcs,
                &["audioUri", "transcriptUri"],
            )?;
            source.gcs = n.nested("gcsSource", gcs, |m| GcsSource {
                audio_uri: uri(m, "audioUri"),
                transcript_uri: uri(m, "transcriptUri"),
            });
        } else if n.has("gcsSource") && n.raw("gcsSource").is_some() {
            members += 1;
        }
        if let Some(df) = object(n, "dialogflowSource") {
            members += 1;
            only(
                &format!("{key}.dialogflowSource"),
                df,
                &["dialogflowConversation", "audioUri"],
            )?;
            source.dialogflow = n.nested("dialogflowSource", df, |m| DialogflowSource {
                dialogflow_conversation: m.string("dialogflowConversation", MAX_URI),
                audio_uri: uri(m, "audioUri"),
            });
        } else if n.has("dialogflowSource") && n.raw("dialogflowSource").is_some() {
            members += 1;
        }
        Ok(())
    })?;
    if members != 1 {
        r.error(
            key,
            "invalid",
            "must hold exactly one of gcsSource and dialogflowSource",
        );
    }
    Ok((r.errors.len() == errors).then_some(source))
}

/// Reads `sources`: at most 16 of `{model, explore}`.
pub fn read_sources(r: &mut Reader<'_>, key: &str) -> Result<Option<Vec<Source>>, ApiError> {
    let Some(value) = r.raw(key) else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        r.error(
            key,
            "invalid_type",
            format!("must be an array of objects, not {}", kind(value)),
        );
        return Ok(None);
    };
    if items.len() > MAX_SOURCES {
        r.error(
            key,
            "too_many",
            format!(
                "must hold at most {MAX_SOURCES} sources, not {}",
                items.len()
            ),
        );
        return Ok(None);
    }
    let errors = r.errors.len();
    let mut sources = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let Value::Object(map) = item else {
            r.error(
                path,
                "invalid_type",
                format!("must be an object, not {}", kind(item)),
            );
            continue;
        };
        only(&path, map, &["model", "explore"])?;
        let source = r.nested(&path, map, |n| {
            let model = required(n, "model", 256);
            let explore = required(n, "explore", 256);
            model
                .zip(explore)
                .map(|(model, explore)| Source { model, explore })
        });
        sources.extend(source);
    }
    Ok((r.errors.len() == errors).then_some(sources))
}

/// Whether a phone number is E.164: `^\+[1-9][0-9]{1,14}$`.
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Reads `phoneNumber`.
pub fn read_phone(r: &mut Reader<'_>, key: &str) -> Result<Option<PhoneNumber>, ApiError> {
    let Some(map) = object(r, key) else {
        return Ok(None);
    };
    only(key, map, &["countryCode", "phoneNumber"])?;
    let errors = r.errors.len();
    let phone = r.nested(key, map, |n| {
        let country_code = n.integer("countryCode", 1..=999);
        let phone_number = match n.raw("phoneNumber") {
            None => None,
            Some(Value::String(p)) if is_e164(p) => Some(p.clone()),
            Some(Value::String(_)) => {
                n.error(
                    "phoneNumber",
                    "invalid",
                    "must be an E.164 number such as +14155550100",
                );
                None
            }
            Some(other) => {
                n.error(
                    "phoneNumber",
                    "invalid_type",
                    format!("must be a string, not {}", kind(other)),
                );
                None
            }
        };
        PhoneNumber {
            country_code,
            phone_number,
        }
    });
    Ok((r.errors.len() == errors).then_some(phone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What a reader answered, and the (field, code) of each error it recorded.
    type Read<T> = (Result<Option<T>, ApiError>, Vec<(String, &'static str)>);

    fn read<T>(
        body: Value,
        f: impl FnOnce(&mut Reader<'_>) -> Result<Option<T>, ApiError>,
    ) -> Read<T> {
        let map = body.as_object().expect("an object").clone();
        let map: &'static Map<String, Value> = Box::leak(Box::new(map));
        let mut r = Reader::new(map);
        let value = f(&mut r);
        let errors = r.errors.iter().map(|e| (e.field.clone(), e.code)).collect();
        (value, errors)
    }

    #[test]
    fn quality_metadata_reads_every_leaf_and_names_each_broken_one() {
        let (q, errors) = read(
            json!({"q": {"customerSatisfactionRating": 5, "waitDuration": "1.5s", "menuPath": "a>b",
                "agentInfo": [{"agentId": "a1", "team": "t"}]}}),
            |r| read_quality(r, "q"),
        );
        assert!(errors.is_empty(), "{errors:?}");
        let q = q.expect("valid").expect("present");
        assert_eq!(q.customer_satisfaction_rating, Some(5));
        assert_eq!(q.wait_duration.as_deref(), Some("1.5s"));
        assert_eq!(q.agent_info[0].team.as_deref(), Some("t"));
        assert_eq!(
            q.to_json(),
            Some(
                json!({"customerSatisfactionRating": 5, "waitDuration": "1.5s", "menuPath": "a>b",
                "agentInfo": [{"agentId": "a1", "team": "t"}]})
            )
        );
        let (q, errors) = read(
            json!({"q": {"customerSatisfactionRating": 6, "waitDuration": "-1s", "menuPath": "x".repeat(257),
                "agentInfo": [{"team": "t"}, {"agentId": "x".repeat(129)}, 3]}}),
            |r| read_quality(r, "q"),
        );
        assert_eq!(q.expect("no 400"), None);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "q.customerSatisfactionRating",
                "q.waitDuration",
                "q.menuPath",
                "q.agentInfo[0].agentId",
                "q.agentInfo[1].agentId",
                "q.agentInfo[2]"
            ]
        );
        let (unknown, _) = read(
            json!({"q": {"agentInfo": [{"agentId": "a", "x": 1}]}}),
            |r| read_quality(r, "q"),
        );
        assert_eq!(unknown.expect_err("unknown").status(), 400);
    }

    #[test]
    fn a_data_source_holds_exactly_one_member_with_scheme_uris() {
        let (d, errors) = read(
            json!({"d": {"gcsSource": {"audioUri": "gs://b/a.wav"}}}),
            |r| read_data_source(r, "d"),
        );
        assert!(errors.is_empty());
        let d = d.expect("valid").expect("present");
        assert_eq!(
            d.to_json(),
            Some(json!({"gcsSource": {"audioUri": "gs://b/a.wav"}}))
        );
        for (body, field) in [
            (json!({"d": {}}), "d"),
            (
                json!({"d": {"gcsSource": {}, "dialogflowSource": {"audioUri": "s3://b/a"}}}),
                "d",
            ),
            (
                json!({"d": {"gcsSource": {"audioUri": "a.wav"}}}),
                "d.gcsSource.audioUri",
            ),
            (
                json!({"d": {"gcsSource": {"transcriptUri": "gs://"}}}),
                "d.gcsSource.transcriptUri",
            ),
            (json!({"d": {"dialogflowSource": 3}}), "d.dialogflowSource"),
        ] {
            let (d, errors) = read(body.clone(), |r| read_data_source(r, "d"));
            assert_eq!(d.expect("no 400"), None, "{body}");
            assert!(errors.iter().any(|(f, _)| f == field), "{body}: {errors:?}");
        }
    }

    #[test]
    fn sources_phone_numbers_and_call_metadata_follow_their_rules() {
        let (s, errors) = read(
            json!({"s": [{"model": "m", "explore": "e"}, {"model": ""}]}),
            |r| read_sources(r, "s"),
        );
        assert_eq!(s.expect("no 400"), None);
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["s[1].model", "s[1].explore"]);
        let (p, errors) = read(
            json!({"p": {"countryCode": 1, "phoneNumber": "+14155550100"}}),
            |r| read_phone(r, "p"),
        );
        assert!(errors.is_empty());
        assert_eq!(
            p.expect("valid").and_then(|p| p.to_json()),
            Some(json!({"countryCode": 1, "phoneNumber": "+14155550100"}))
        );
        for bad in ["14155550100", "+0123", "+1", "+1234567890123456"] {
            let (p, errors) = read(json!({"p": {"phoneNumber": bad}}), |r| read_phone(r, "p"));
            assert_eq!(p.expect("no 400"), None, "{bad}");
            assert_eq!(errors[0].0, "p.phoneNumber", "{bad}");
        }
        let (c, errors) = read(
            json!({"c": {"customerChannel": 256, "agentChannel": 1.5}}),
            |r| read_call(r, "c"),
        );
        assert_eq!(c.expect("no 400"), None);
        assert_eq!(errors.len(), 2);
    }
}
