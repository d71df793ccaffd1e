//! Field masks: the `updateMask` of update (AIP-134, with AIP-161 paths) and the `fields`
//! response selector (AIP-157).

use serde_json::{Map, Value};

use crate::domain::conversation::{
    Labels, MAX_LABEL_VALUE, OUTPUT_ONLY_FIELDS, Stage, Writable, is_label_key,
};
use crate::domain::ids::shorten;
use crate::domain::mask_text::is_metadata_key;
pub use crate::domain::mask_text::{MAX_MASK_BYTES, MAX_MASK_PATHS, trim_spaces};
use crate::domain::seed_fields::{
    CallMetadata, DataSource, DialogflowSource, GcsSource, Leaf, LeafValue, Object, PhoneNumber,
    QualityMetadata, Source,
};
use crate::domain::time::Timestamp;
use crate::error::{ApiError, FieldError};

/// One updatable path of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskPath {
    /// `displayName`.
    DisplayName,
    /// `category`.
    Category,
    /// `agents`.
    Agents,
    /// `conversationProfile` (immutable: only its current value is accepted).
    ConversationProfile,
    /// `languageCode`.
    LanguageCode,
    /// `labels`: the whole map.
    Labels,
    /// `labels.<key>`: one label.
    Label(String),
    /// `metadata`: the whole object.
    Metadata,
    /// `metadata.<key>`: one top-level key of it.
    MetadataKey(String),
    /// `conversationStage`.
    ConversationStage,
    /// `startTime`.
    StartTime,
    /// `expireTime` or `ttl`.
    Expiry,
    /// `qualityMetadata`, `callMetadata`, `dataSource` or one member of it, whole.
    Object(Object),
    /// One leaf of those (`dataSource.gcsSource.audioUri`).
    Leaf(Leaf),
    /// `sources`.
    Sources,
    /// `phoneNumber` (immutable, as `conversationProfile`).
    PhoneNumber,
    /// `phoneNumber.countryCode` or `phoneNumber.phoneNumber` (immutable).
    Phone(PhoneLeaf),
}

/// A leaf of `phoneNumber`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneLeaf {
    /// `phoneNumber.countryCode`.
    CountryCode,
    /// `phoneNumber.phoneNumber`.
    Number,
}

impl PhoneLeaf {
    /// Its name within `phoneNumber`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CountryCode => "countryCode",
            Self::Number => "phoneNumber",
        }
    }

    /// Its value in a phone number.
    pub fn of(self, phone: Option<&PhoneNumber>) -> Option<LeafValue> {
        let phone = phone?;
        match self {
            Self::CountryCode => phone.country_code.map(LeafValue::Int),
            Self::Number => phone.phone_number.clone().map(LeafValue::Text),
        }
    }
}

/// A segment of a field name as CCAI Insights also spells it, in snake_case
/// (`gcs_source` → `gcsSource`); anything else as written.
pub fn camel_case(segment: &str) -> String {
    let snake = segment.contains('_')
        && segment.starts_with(|c: char| c.is_ascii_lowercase())
        && segment.split('_').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !snake {
        return segment.to_owned();
    }
    let mut out = String::with_capacity(segment.len());
    for (i, word) in segment.split('_').enumerate() {
        let mut chars = word.chars();
        match (i, chars.next()) {
            (0, Some(c)) => out.push(c),
            (_, Some(c)) => out.push(c.to_ascii_uppercase()),
            (_, None) => {}
        }
        out.extend(chars);
    }
    out
}

impl MaskPath {
    /// One path (camelCase or snake_case segments; `labels` and `metadata` keys as written);
    /// `Ok(None)` for an output-only one (ignored, AIP-203).
    fn parse(path: &str) -> Result<Option<Self>, ApiError> {
        let unknown = || {
            Err(ApiError::InvalidArgument(format!(
                "updateMask names an unknown path {:?}",
                shorten(path)
            )))
        };
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (camel_case(h), Some(r)),
            None => (camel_case(path), None),
        };
        let parsed = match (head.as_str(), rest) {
            ("displayName", None) => Self::DisplayName,
            ("category", None) => Self::Category,
            ("agents", None) => Self::Agents,
            ("conversationProfile", None) => Self::ConversationProfile,
            ("languageCode", None) => Self::LanguageCode,
            ("labels", None) => Self::Labels,
            ("labels", Some(key)) if is_label_key(key) => Self::Label(key.to_owned()),
            ("labels", Some(key)) => {
                return Err(ApiError::InvalidArgument(format!(
                    "updateMask path labels.{} names an invalid label key (keys match ^[a-z][a-z0-9_-]{{0,62}}$)",
                    shorten(key)
                )));
            }
            ("metadata", None) => Self::Metadata,
            ("metadata", Some(key)) if is_metadata_key(key) => Self::MetadataKey(key.to_owned()),
            ("metadata", Some(key)) => {
                return Err(ApiError::InvalidArgument(format!(
                    "updateMask path metadata.{} names an invalid key (keys match ^[A-Za-z_][A-Za-z0-9_-]{{0,63}}$)",
                    shorten(key)
                )));
            }
            ("conversationStage", None) => Self::ConversationStage,
            ("startTime", None) => Self::StartTime,
            ("expireTime" | "ttl", None) => Self::Expiry,
            ("sources", None) => Self::Sources,
            ("phoneNumber", None) => Self::PhoneNumber,
            ("phoneNumber", Some(leaf)) => match camel_case(leaf).as_str() {
                "countryCode" => Self::Phone(PhoneLeaf::CountryCode),
                "phoneNumber" => Self::Phone(PhoneLeaf::Number),
                _ => return unknown(),
            },
            // Output-only paths are ignored (AIP-203).
            (p, None) if OUTPUT_ONLY_FIELDS.contains(&p) => return Ok(None),
            _ => {
                let segments: Vec<String> = path.split('.').map(camel_case).collect();
                let same = |want: &[&str]| {
                    segments.len() == want.len() && segments.iter().zip(want).all(|(a, b)| a == b)
                };
                if let Some(object) = Object::ALL.into_iter().find(|o| same(o.path())) {
                    Self::Object(object)
                } else if let Some(leaf) = Leaf::ALL.into_iter().find(|l| same(&l.path())) {
                    Self::Leaf(leaf)
                } else {
                    return unknown();
                }
            }
        };
        Ok(Some(parsed))
    }

    /// The path's camelCase segments: two paths overlap when one's are a prefix of the other's.
    pub fn segments(&self) -> Vec<String> {
        let one = |s: &str| vec![s.to_owned()];
        match self {
            Self::DisplayName => one("displayName"),
            Self::Category => one("category"),
            Self::Agents => one("agents"),
            Self::ConversationProfile => one("conversationProfile"),
            Self::LanguageCode => one("languageCode"),
            Self::Labels => one("labels"),
            Self::Label(k) => vec!["labels".into(), k.clone()],
            Self::Metadata => one("metadata"),
            Self::MetadataKey(k) => vec!["metadata".into(), k.clone()],
            Self::ConversationStage => one("conversationStage"),
            Self::StartTime => one("startTime"),
            Self::Expiry => one("expireTime"),
            Self::Object(o) => o.path().iter().map(|s| (*s).to_owned()).collect(),
            Self::Leaf(l) => l.path().into_iter().map(str::to_owned).collect(),
            Self::Sources => one("sources"),
            Self::PhoneNumber => one("phoneNumber"),
            Self::Phone(l) => vec!["phoneNumber".into(), l.name().into()],
        }
    }
}

/// A parsed `updateMask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateMask {
    /// `*`: every mutable field is replaced; those absent in the body are cleared.
    All,
    /// These paths, de-duplicated, output-only ones dropped; none overlaps another.
    Paths(Vec<MaskPath>),
}

impl UpdateMask {
    /// Parses a comma-separated mask; an unknown path, an empty segment, two paths of which one
    /// holds the other, or a mask longer than [`MAX_MASK_BYTES`] or with more than
    /// [`MAX_MASK_PATHS`] paths is a 400.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.len() > MAX_MASK_BYTES {
            return Err(ApiError::InvalidArgument(format!(
                "updateMask is longer than {MAX_MASK_BYTES} bytes"
            )));
        }
        let mut paths: Vec<MaskPath> = Vec::new();
        for raw in text.split(',') {
            let path = trim_spaces(raw);
            if path.is_empty() {
                return Err(ApiError::InvalidArgument(
                    "updateMask has an empty path".into(),
                ));
            }
            if path == "*" {
                return if text.split(',').all(|p| trim_spaces(p) == "*") {
                    Ok(Self::All)
                } else {
                    Err(ApiError::InvalidArgument(
                        "updateMask * cannot be combined with other paths".into(),
                    ))
                };
            }
            let Some(p) = MaskPath::parse(path)? else {
                continue;
            };
            if paths.contains(&p) {
                continue;
            }
            let segments = p.segments();
            if let Some(other) = paths.iter().find(|q| {
                let theirs = q.segments();
                let n = theirs.len().min(segments.len());
                theirs[..n] == segments[..n]
            }) {
                return Err(ApiError::InvalidArgument(format!(
                    "updateMask paths {} and {} overlap: name one of them",
                    other.segments().join("."),
                    segments.join(".")
                )));
            }
            if paths.len() == MAX_MASK_PATHS {
                return Err(ApiError::InvalidArgument(format!(
                    "updateMask names more than {MAX_MASK_PATHS} paths"
                )));
            }
            paths.push(p);
        }
        Ok(Self::Paths(paths))
    }

    /// The mask implied by a body without `updateMask`: the writable fields it names (an object
    /// named is replaced whole).
    pub fn from_body(body: &Writable) -> Self {
        let mut paths = Vec::new();
        for name in &body.present {
            if let Ok(Some(p)) = MaskPath::parse(name)
                && !paths.contains(&p)
            {
                paths.push(p);
            }
        }
        Self::Paths(paths)
    }

    /// Whether the mask needs the body's `agents` (`*`, or `agents` named).
    pub fn requires_agents(&self) -> bool {
        match self {
            Self::All => true,
            Self::Paths(p) => p.contains(&MaskPath::Agents),
        }
    }
}

/// What an update does to the labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LabelsChange {
    /// Leaves them.
    #[default]
    Keep,
    /// Replaces the whole map.
    Replace(Labels),
    /// Sets (`Some`) or removes (`None`) single keys.
    Keys(Vec<(String, Option<String>)>),
}

/// What an update does to the metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum MetadataChange {
    /// Leaves it.
    #[default]
    Keep,
    /// Replaces the whole object (`None`: clears it).
    Replace(Option<Map<String, Value>>),
    /// Sets (`Some`) or removes (`None`) single top-level keys.
    Keys(Vec<(String, Option<Value>)>),
}

/// One write into the seed objects (`qualityMetadata`, `callMetadata`, `dataSource`). Their
/// stored parents always exist, so a leaf is set or removed in place, never by a read first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NestedWrite {
    /// `qualityMetadata` replaced (empty: cleared).
    Quality(QualityMetadata),
    /// `callMetadata` replaced (empty: cleared).
    Call(CallMetadata),
    /// `dataSource` replaced (empty: cleared).
    DataSource(DataSource),
    /// `dataSource.gcsSource` replaced (empty: cleared).
    Gcs(GcsSource),
    /// `dataSource.dialogflowSource` replaced (empty: cleared).
    Dialogflow(DialogflowSource),
    /// One leaf set (`Some`) or removed (`None`).
    Leaf(Leaf, Option<LeafValue>),
}

impl NestedWrite {
    /// The member of `dataSource` this write gives a value to, if any: that member's setting
    /// clears the other.
    fn sets_member(&self) -> Option<Object> {
        match self {
            Self::Gcs(g) if *g != GcsSource::default() => Some(Object::Gcs),
            Self::Dialogflow(d) if *d != DialogflowSource::default() => Some(Object::Dialogflow),
            Self::Leaf(l, Some(_)) if matches!(l.parent(), Object::Gcs | Object::Dialogflow) => {
                Some(l.parent())
            }
            _ => None,
        }
    }

    /// The member of `dataSource` this write touches, if any.
    fn member(&self) -> Option<Object> {
        match self {
            Self::Gcs(_) => Some(Object::Gcs),
            Self::Dialogflow(_) => Some(Object::Dialogflow),
            Self::Leaf(l, _) if matches!(l.parent(), Object::Gcs | Object::Dialogflow) => {
                Some(l.parent())
            }
            _ => None,
        }
    }
}

/// A validated update: for each field, `None` leaves it, `Some(None)` clears it, `Some(Some(v))`
/// sets it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    /// `displayName`.
    pub display_name: Option<Option<String>>,
    /// `category`.
    pub category: Option<Option<String>>,
    /// `agents` (never cleared: required).
    pub agents: Option<Vec<String>>,
    /// The value the immutable `conversationProfile` must already have.
    pub profile_must_be: Option<Option<String>>,
    /// `languageCode`.
    pub language_code: Option<Option<String>>,
    /// `labels`.
    pub labels: LabelsChange,
    /// `metadata`.
    pub metadata: MetadataChange,
    /// `conversationStage` (cleared means the default).
    pub stage: Option<Stage>,
    /// `startTime`.
    pub start_time: Option<Option<Timestamp>>,
    /// `expireTime`.
    pub expire_time: Option<Option<Timestamp>>,
    /// Writes into `qualityMetadata`, `callMetadata` and `dataSource`, none overlapping another.
    pub nested: Vec<NestedWrite>,
    /// `sources` (empty: cleared).
    pub sources: Option<Vec<Source>>,
    /// The values the immutable `phoneNumber`'s leaves must already have.
    pub phone_must_be: Vec<(PhoneLeaf, Option<LeafValue>)>,
}

impl Update {
    /// Applies a mask to a validated body.
    pub fn new(mask: &UpdateMask, body: &Writable) -> Result<Self, ApiError> {
        let paths: Vec<MaskPath> = match mask {
            UpdateMask::All => {
                let mut p = vec![
                    MaskPath::DisplayName,
                    MaskPath::Category,
                    MaskPath::Agents,
                    MaskPath::LanguageCode,
                    MaskPath::Labels,
                    MaskPath::Metadata,
                    MaskPath::ConversationStage,
                    MaskPath::StartTime,
                    MaskPath::Expiry,
                    MaskPath::Object(Object::Quality),
                    MaskPath::Object(Object::Call),
                    MaskPath::Object(Object::DataSource),
                    MaskPath::Sources,
                ];
                // Immutable fields: checked only when the body names them.
                if body.names("conversationProfile") {
                    p.push(MaskPath::ConversationProfile);
                }
                if body.names("phoneNumber") {
                    p.push(MaskPath::PhoneNumber);
                }
                p
            }
            UpdateMask::Paths(p) => p.clone(),
        };
        let mut update = Update::default();
        let mut label_keys = Vec::new();
        let mut metadata_keys = Vec::new();
        let mut errors = Vec::new();
        let quality = body.quality_metadata.clone().unwrap_or_default();
        let call = body.call_metadata.clone().unwrap_or_default();
        let source = body.data_source.clone().unwrap_or_default();
        for path in paths {
            match path {
                MaskPath::DisplayName => update.display_name = Some(body.display_name.clone()),
                MaskPath::Category => update.category = Some(body.category.clone()),
                MaskPath::Agents => match &body.agents {
                    Some(a) => update.agents = Some(a.clone()),
                    None => errors.push(FieldError::new(
                        "agents",
                        "required",
                        "at least one agent is required",
                    )),
                },
                MaskPath::ConversationProfile => {
                    update.profile_must_be = Some(body.conversation_profile.clone())
                }
                MaskPath::LanguageCode => update.language_code = Some(body.language_code.clone()),
                MaskPath::Labels => {
                    update.labels = LabelsChange::Replace(body.labels.clone().unwrap_or_default())
                }
                MaskPath::Label(key) => {
                    let value = body.labels.as_ref().and_then(|l| l.get(&key)).cloned();
                    if value
                        .as_ref()
                        .is_some_and(|v| v.chars().count() > MAX_LABEL_VALUE)
                    {
                        errors.push(FieldError::new(
                            format!("labels.{key}"),
                            "too_long",
                            "label values must be at most 63 characters",
                        ));
                    }
                    label_keys.push((key, value));
                }
                MaskPath::Metadata => {
                    update.metadata = MetadataChange::Replace(body.metadata.clone())
                }
                MaskPath::MetadataKey(key) => {
                    let value = body.metadata.as_ref().and_then(|m| m.get(&key)).cloned();
                    metadata_keys.push((key, value));
                }
                MaskPath::ConversationStage => update.stage = Some(body.stage.unwrap_or_default()),
                MaskPath::StartTime => update.start_time = Some(body.start_time),
                MaskPath::Expiry => update.expire_time = Some(body.expire_time),
                MaskPath::Object(o) => update.nested.push(match o {
                    Object::Quality => NestedWrite::Quality(quality.clone()),
                    Object::Call => NestedWrite::Call(call.clone()),
                    Object::DataSource => NestedWrite::DataSource(source.clone()),
                    Object::Gcs => NestedWrite::Gcs(source.gcs.clone()),
                    Object::Dialogflow => NestedWrite::Dialogflow(source.dialogflow.clone()),
                }),
                MaskPath::Leaf(leaf) => {
                    let leaves = match leaf.parent() {
                        Object::Quality => quality.leaves(),
                        Object::Call => call.leaves(),
                        Object::Gcs => source.gcs.leaves(),
                        _ => source.dialogflow.leaves(),
                    };
                    let value = leaves
                        .into_iter()
                        .find(|(l, _)| *l == leaf)
                        .and_then(|(_, v)| v);
                    update.nested.push(NestedWrite::Leaf(leaf, value));
                }
                MaskPath::Sources => {
                    update.sources = Some(body.sources.clone().unwrap_or_default())
                }
                MaskPath::PhoneNumber => {
                    for leaf in [PhoneLeaf::CountryCode, PhoneLeaf::Number] {
                        update
                            .phone_must_be
                            .push((leaf, leaf.of(body.phone_number.as_ref())));
                    }
                }
                MaskPath::Phone(leaf) => {
                    update
                        .phone_must_be
                        .push((leaf, leaf.of(body.phone_number.as_ref())));
                }
            }
        }
        // Setting a member of dataSource removes the other member: whatever else the mask said
        // of that other member is replaced by its removal (one write per stored path).
        if let Some(set) = update.nested.iter().find_map(NestedWrite::sets_member) {
            let other = set.other_member();
            update
                .nested
                .retain(|w| w.member().is_none() || w.member() != other);
            update.nested.push(match other {
                Some(Object::Gcs) => NestedWrite::Gcs(GcsSource::default()),
                _ => NestedWrite::Dialogflow(DialogflowSource::default()),
            });
        }
        if !label_keys.is_empty() {
            update.labels = LabelsChange::Keys(label_keys);
        }
        if !metadata_keys.is_empty() {
            update.metadata = MetadataChange::Keys(metadata_keys);
        }
        if errors.is_empty() {
            Ok(update)
        } else {
            Err(ApiError::InvalidFields(errors))
        }
    }
}

/// The `fields` parameter: which top-level fields a response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Option<Vec<String>>);

impl Fields {
    /// Parses `fields`; absent or empty means every field, an unknown name is a 400.
    pub fn parse(text: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let Some(text) = text.filter(|t| !trim_spaces(t).is_empty()) else {
            return Ok(Self(None));
        };
        let mut names = Vec::new();
        for name in text.split(',').map(trim_spaces) {
            if !known.contains(&name) {
                return Err(ApiError::InvalidArgument(format!(
                    "fields names an unknown field {:?}; known fields: {}",
                    shorten(name),
                    known.join(", ")
                )));
            }
            names.push(name.to_owned());
        }
        Ok(Self(Some(names)))
    }

    /// Whether a response carries the field `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }

    /// Keeps only the selected fields.
    pub fn apply(&self, mut map: Map<String, Value>) -> Map<String, Value> {
        map.retain(|k, _| self.selects(k));
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Writable {
        Writable::from_json(value.as_object().expect("object"), Timestamp::now(), false)
            .expect("valid")
    }

    #[test]
    fn masks_parse_paths_and_ignore_output_only_ones() {
        let mask =
            UpdateMask::parse("displayName, labels.team,createTime,displayName").expect("valid");
        assert_eq!(
            mask,
            UpdateMask::Paths(vec![MaskPath::DisplayName, MaskPath::Label("team".into())])
        );
        assert_eq!(UpdateMask::parse("*").expect("star"), UpdateMask::All);
        assert_eq!(
            UpdateMask::parse("ttl").expect("ttl"),
            UpdateMask::Paths(vec![MaskPath::Expiry])
        );
    }

    #[test]
    fn unknown_or_malformed_mask_paths_are_a_400() {
        for bad in [
            "colour",
            "displayName,,category",
            "",
            "labels.Bad",
            "labels.",
            "metadata.9x",
            "metadata.",
            "*,displayName",
            "displayName.x",
            "qualityMetadata.agentInfo.agentId",
            "dataSource.gcsSource.audio",
            "dataSource.gcs_Source",
            "phoneNumber.extension",
            "labels,labels.team",
            "metadata.a,metadata",
            "dataSource,data_source.gcs_source.audio_uri",
            "dataSource.gcsSource,dataSource.gcsSource.transcriptUri",
            "quality_metadata,qualityMetadata.menuPath",
        ] {
            assert_eq!(
                UpdateMask::parse(bad).expect_err(bad).status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_mask_is_bounded_in_length_and_paths() {
        let keys = |n: usize| {
            (0..n)
                .map(|i| format!("labels.k{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(UpdateMask::parse(&keys(MAX_MASK_PATHS)).is_ok());
        assert_eq!(
            UpdateMask::parse(&keys(MAX_MASK_PATHS + 1))
                .expect_err("too many")
                .status(),
            400
        );
        let repeated = vec!["displayName"; 300].join(",");
        assert!(
            UpdateMask::parse(&repeated).is_ok(),
            "duplicates count once"
        );
        assert_eq!(
            UpdateMask::parse(&"a".repeat(MAX_MASK_BYTES + 1))
                .expect_err("long")
                .status(),
            400
        );
    }

    #[test]
    fn without_a_mask_the_body_fields_are_the_mask() {
        let b = body(
            json!({"displayName": null, "labels": {"a": "b"}, "etag": "\"1\"", "createTime": "x"}),
        );
        assert_eq!(
            UpdateMask::from_body(&b),
            UpdateMask::Paths(vec![MaskPath::DisplayName, MaskPath::Labels])
        );
    }

    #[test]
    fn a_star_mask_clears_what_the_body_leaves_out_and_requires_agents() {
        let update = Update::new(&UpdateMask::All, &body(json!({"agents": ["a"]}))).expect("valid");
        assert_eq!(update.display_name, Some(None));
        assert_eq!(update.stage, Some(Stage::VirtualAgent));
        assert_eq!(update.labels, LabelsChange::Replace(Labels::new()));
        assert_eq!(update.profile_must_be, None);
        assert!(update.phone_must_be.is_empty());
        assert!(
            update
                .nested
                .contains(&NestedWrite::DataSource(DataSource::default()))
        );
        assert_eq!(update.sources, Some(Vec::new()));
        let error = Update::new(&UpdateMask::All, &body(json!({}))).expect_err("agents");
        assert_eq!(error.status(), 422);
    }

    #[test]
    fn label_and_metadata_paths_set_or_remove_single_keys() {
        let b = body(json!({"labels": {"a": "1"}, "metadata": {"x": [1], "Y": null}}));
        let keys =
            Update::new(&UpdateMask::parse("labels.a,labels.b").expect("mask"), &b).expect("valid");
        assert_eq!(
            keys.labels,
            LabelsChange::Keys(vec![("a".into(), Some("1".into())), ("b".into(), None)])
        );
        let whole = Update::new(&UpdateMask::parse("labels").expect("mask"), &b).expect("valid");
        assert_eq!(
            whole.labels,
            LabelsChange::Replace(Labels::from([("a".into(), "1".into())]))
        );
        let meta = Update::new(
            &UpdateMask::parse("metadata.x,metadata.Y,metadata.z").expect("mask"),
            &b,
        )
        .expect("valid");
        assert_eq!(
            meta.metadata,
            MetadataChange::Keys(vec![
                ("x".into(), Some(json!([1]))),
                ("Y".into(), Some(Value::Null)),
                ("z".into(), None)
            ])
        );
    }

    #[test]
    fn nested_paths_take_camel_or_snake_case_segments_and_keys_as_written() {
        let mask = UpdateMask::parse(
            "data_source.gcs_source.audio_uri, qualityMetadata.customer_satisfaction_rating, \
             call_metadata, display_name, phone_number.country_code, create_time, labels.a_b, metadata.Snake_Key",
        )
        .expect("valid");
        assert_eq!(
            mask,
            UpdateMask::Paths(vec![
                MaskPath::Leaf(Leaf::GcsAudioUri),
                MaskPath::Leaf(Leaf::Rating),
                MaskPath::Object(Object::Call),
                MaskPath::DisplayName,
                MaskPath::Phone(PhoneLeaf::CountryCode),
                MaskPath::Label("a_b".into()),
                MaskPath::MetadataKey("Snake_Key".into()),
            ])
        );
        assert_eq!(camel_case("gcs_source"), "gcsSource");
        assert_eq!(camel_case("gcsSource"), "gcsSource");
        assert_eq!(camel_case("a__b"), "a__b");
    }

    #[test]
    fn a_leaf_sets_or_removes_itself_and_setting_a_member_clears_the_other() {
        let b = body(
            json!({"dataSource": {"gcsSource": {"audioUri": "gs://b/a"}},
            "qualityMetadata": {"menuPath": "m"}}),
        );
        let update = Update::new(
            &UpdateMask::parse(
                "dataSource.gcsSource.audioUri,dataSource.gcsSource.transcriptUri,\
                 dataSource.dialogflowSource.audioUri,qualityMetadata.menuPath,qualityMetadata.waitDuration",
            )
            .expect("mask"),
            &b,
        )
        .expect("valid");
        assert_eq!(
            update.nested,
            vec![
                NestedWrite::Leaf(Leaf::GcsAudioUri, Some(LeafValue::Text("gs://b/a".into()))),
                NestedWrite::Leaf(Leaf::GcsTranscriptUri, None),
                NestedWrite::Leaf(Leaf::MenuPath, Some(LeafValue::Text("m".into()))),
                NestedWrite::Leaf(Leaf::WaitDuration, None),
                NestedWrite::Dialogflow(DialogflowSource::default()),
            ]
        );
        // Removing leaves of a member leaves the other member alone.
        let removal = Update::new(
            &UpdateMask::parse("dataSource.dialogflowSource.audioUri").expect("mask"),
            &body(json!({})),
        )
        .expect("valid");
        assert_eq!(
            removal.nested,
            vec![NestedWrite::Leaf(Leaf::DialogflowAudioUri, None)]
        );
    }

    #[test]
    fn fields_selects_top_level_names_and_rejects_unknown_ones() {
        let f = Fields::parse(Some("name, etag"), &["name", "etag", "agents"]).expect("valid");
        let out = f.apply(
            json!({"name": 1, "etag": 2, "agents": 3})
                .as_object()
                .cloned()
                .expect("object"),
        );
        assert_eq!(Value::Object(out), json!({"name": 1, "etag": 2}));
        assert_eq!(
            Fields::parse(Some("name,nope"), &["name"])
                .expect_err("unknown")
                .status(),
            400
        );
        assert_eq!(
            Fields::parse(Some(""), &["name"]).expect("empty"),
            Fields::default()
        );
    }

    #[test]
    fn only_ascii_spaces_around_a_name_are_ignored() {
        let known = ["name"];
        assert!(Fields::parse(Some("\x0bname\x0c"), &known).is_ok());
        assert_eq!(
            Fields::parse(Some("\u{a0}name"), &known)
                .expect_err("a no-break space is part of the name")
                .status(),
            400
        );
    }
}
