//! Field masks: the `updateMask` of update (AIP-134) and the `fields` response selector (AIP-157).

use serde_json::{Map, Value};

use crate::domain::conversation::{
    Labels, MAX_LABEL_VALUE, OUTPUT_ONLY_FIELDS, Stage, Writable, is_label_key,
};
use crate::domain::ids::shorten;
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
    /// `metadata`.
    Metadata,
    /// `conversationStage`.
    ConversationStage,
    /// `startTime`.
    StartTime,
    /// `expireTime` or `ttl`.
    Expiry,
}

/// The most paths one `updateMask` may name (after removing duplicates). Each path becomes a
/// clause of the `UpdateItem`'s expressions, which DynamoDB limits to 4 KB each: this bound keeps
/// every mask within it (`store::tests` builds the largest one), so a long mask is a 400 here and
/// never a DynamoDB error.
pub const MAX_MASK_PATHS: usize = 100;
/// The longest `updateMask` accepted, in bytes.
pub const MAX_MASK_BYTES: usize = 4096;

/// A path or field name without the whitespace around it: the six ASCII spaces the spec's
/// patterns allow (`[ \t\n\v\f\r]`), no other (a no-break space is part of the name, so a 400).
pub fn trim_spaces(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
}

impl MaskPath {
    fn parse(path: &str) -> Result<Option<Self>, ApiError> {
        let parsed = match path {
            "displayName" => Self::DisplayName,
            "category" => Self::Category,
            "agents" => Self::Agents,
            "conversationProfile" => Self::ConversationProfile,
            "languageCode" => Self::LanguageCode,
            "labels" => Self::Labels,
            "metadata" => Self::Metadata,
            "conversationStage" => Self::ConversationStage,
            "startTime" => Self::StartTime,
            "expireTime" | "ttl" => Self::Expiry,
            // Output-only paths are ignored (AIP-203).
            p if OUTPUT_ONLY_FIELDS.contains(&p) => return Ok(None),
            p => match p.strip_prefix("labels.") {
                Some(key) if is_label_key(key) => Self::Label(key.to_owned()),
                Some(key) => {
                    return Err(ApiError::InvalidArgument(format!(
                        "updateMask path labels.{} names an invalid label key (keys match ^[a-z][a-z0-9_-]{{0,62}}$)",
                        shorten(key)
                    )));
                }
                None => {
                    return Err(ApiError::InvalidArgument(format!(
                        "updateMask names an unknown path {:?}",
                        shorten(p)
                    )));
                }
            },
        };
        Ok(Some(parsed))
    }
}

/// A parsed `updateMask`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateMask {
    /// `*`: every mutable field is replaced; those absent in the body are cleared.
    All,
    /// These paths, de-duplicated, output-only ones dropped.
    Paths(Vec<MaskPath>),
}

impl UpdateMask {
    /// Parses a comma-separated mask; an unknown path, an empty segment, or a mask longer than
    /// [`MAX_MASK_BYTES`] or with more than [`MAX_MASK_PATHS`] paths is a 400.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if text.len() > MAX_MASK_BYTES {
            return Err(ApiError::InvalidArgument(format!(
                "updateMask is longer than {MAX_MASK_BYTES} bytes"
            )));
        }
        let mut paths = Vec::new();
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
            if let Some(p) = MaskPath::parse(path)?
                && !paths.contains(&p)
            {
                if paths.len() == MAX_MASK_PATHS {
                    return Err(ApiError::InvalidArgument(format!(
                        "updateMask names more than {MAX_MASK_PATHS} paths"
                    )));
                }
                paths.push(p);
            }
        }
        Ok(Self::Paths(paths))
    }

    /// The mask implied by a body without `updateMask`: the writable fields it names.
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
    pub metadata: Option<Option<Map<String, Value>>>,
    /// `conversationStage` (cleared means the default).
    pub stage: Option<Stage>,
    /// `startTime`.
    pub start_time: Option<Option<Timestamp>>,
    /// `expireTime`.
    pub expire_time: Option<Option<Timestamp>>,
}

impl Update {
    /// Applies a mask to a validated body.
    pub fn new(mask: &UpdateMask, body: &Writable) -> Result<Self, ApiError> {
        let all = [
            MaskPath::DisplayName,
            MaskPath::Category,
            MaskPath::Agents,
            MaskPath::LanguageCode,
            MaskPath::Labels,
            MaskPath::Metadata,
            MaskPath::ConversationStage,
            MaskPath::StartTime,
            MaskPath::Expiry,
        ];
        let paths: Vec<MaskPath> = match mask {
            UpdateMask::All => {
                let mut p = all.to_vec();
                if body.names("conversationProfile") {
                    p.push(MaskPath::ConversationProfile);
                }
                p
            }
            UpdateMask::Paths(p) => p.clone(),
        };
        let whole_labels = paths.contains(&MaskPath::Labels);
        let mut update = Update::default();
        let mut keys = Vec::new();
        let mut errors = Vec::new();
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
                MaskPath::Label(key) if !whole_labels => {
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
                    keys.push((key, value));
                }
                MaskPath::Label(_) => {}
                MaskPath::Metadata => update.metadata = Some(body.metadata.clone()),
                MaskPath::ConversationStage => update.stage = Some(body.stage.unwrap_or_default()),
                MaskPath::StartTime => update.start_time = Some(body.start_time),
                MaskPath::Expiry => update.expire_time = Some(body.expire_time),
            }
        }
        if !keys.is_empty() {
            update.labels = LabelsChange::Keys(keys);
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

    /// Keeps only the selected fields.
    pub fn apply(&self, mut map: Map<String, Value>) -> Map<String, Value> {
        if let Some(names) = &self.0 {
            map.retain(|k, _| names.iter().any(|n| n == k));
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Writable {
        Writable::from_json(value.as_object().expect("object"), Timestamp::now()).expect("valid")
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
            "metadata.x",
            "*,displayName",
            "display_name",
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
        let error = Update::new(&UpdateMask::All, &body(json!({}))).expect_err("agents");
        assert_eq!(error.status(), 422);
    }

    #[test]
    fn label_paths_set_or_remove_single_keys_unless_the_whole_map_is_masked() {
        let b = body(json!({"labels": {"a": "1"}}));
        let keys =
            Update::new(&UpdateMask::parse("labels.a,labels.b").expect("mask"), &b).expect("valid");
        assert_eq!(
            keys.labels,
            LabelsChange::Keys(vec![("a".into(), Some("1".into())), ("b".into(), None)])
        );
        let whole =
            Update::new(&UpdateMask::parse("labels.b,labels").expect("mask"), &b).expect("valid");
        assert_eq!(
            whole.labels,
            LabelsChange::Replace(Labels::from([("a".into(), "1".into())]))
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
        assert_eq!(trim_spaces("\x0b\t name \r\n\x0c"), "name");
        assert_eq!(trim_spaces("\u{a0}name"), "\u{a0}name");
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
