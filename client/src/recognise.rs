//! How an etag write tells its own write in the resource read back after a retry was refused
//! ([`crate::Safety::Recognised`]): which paths the call set, and whether the resource holds at
//! each of them what the call sent. Pure functions of the JSON sent and read.

use serde_json::Value;

/// The conversation fields that an update writes (the mask's first segment, camelCase).
const CONVERSATION_FIELDS: &[&str] = &[
    "displayName",
    "category",
    "agents",
    "conversationProfile",
    "languageCode",
    "labels",
    "metadata",
    "conversationStage",
    "qualityMetadata",
    "callMetadata",
    "dataSource",
    "sources",
    "phoneNumber",
    "startTime",
    "expireTime",
];

/// Output-only names that a mask may carry and the service ignores (AIP-203).
const CONVERSATION_OUTPUT: &[&str] = &[
    "name",
    "lifecycleState",
    "endTime",
    "createTime",
    "updateTime",
    "lastUsedTime",
    "deleted",
    "deleteTime",
    "purgeTime",
    "messageCount",
    "owner",
    "etag",
    "can",
    "messages",
];

const MESSAGE_OUTPUT: &[&str] = &["name", "order", "createTime", "updateTime", "etag"];

/// A path into a resource's JSON: field names, then a `labels` or `metadata` key as written.
pub(crate) type Path = Vec<String>;

/// The entity tags a write names as its precondition (an `If-Match` list and a body's `etag`),
/// or `None` when it names no version (none given, or `If-Match: *` alone): such a write is not
/// refused when repeated, so it is sent once.
pub(crate) fn etags(if_match: Option<&str>, body: Option<&str>) -> Option<Vec<String>> {
    let mut tags: Vec<String> = if_match
        .into_iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "*")
        .map(str::to_owned)
        .collect();
    tags.extend(body.map(|t| t.trim().to_owned()));
    (!tags.is_empty()).then_some(tags)
}

/// Whether the etag read back moved past every etag the call sent.
pub(crate) fn moved(read: Option<&str>, sent: &[String]) -> bool {
    read.is_some_and(|etag| !sent.iter().any(|s| s == etag))
}

/// `display_name` → `displayName` (a mask's segments may be written in snake_case).
fn camel(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The paths that an update of a conversation with `body` and `mask` sets; `None` when what it
/// sets cannot be compared with a read (`*`, `ttl`, a path the service would refuse).
pub(crate) fn conversation_paths(mask: Option<&[String]>, body: &Value) -> Option<Vec<Path>> {
    if body.get("ttl").is_some_and(|v| !v.is_null()) {
        return None;
    }
    let Some(mask) = mask else {
        let fields = body.as_object()?;
        return Some(
            fields
                .keys()
                .filter(|k| CONVERSATION_FIELDS.contains(&k.as_str()))
                .map(|k| vec![k.clone()])
                .collect(),
        );
    };
    let mut paths = Vec::new();
    for raw in mask {
        let raw = raw.trim();
        let mut segments = raw.split('.');
        let first = camel(segments.next().unwrap_or_default());
        if CONVERSATION_OUTPUT.contains(&first.as_str()) {
            continue;
        }
        if !CONVERSATION_FIELDS.contains(&first.as_str()) {
            return None;
        }
        let rest: Vec<&str> = segments.collect();
        let path = match first.as_str() {
            // One key, taken as written.
            "labels" | "metadata" if rest.len() > 1 => return None,
            "labels" | "metadata" => std::iter::once(first)
                .chain(rest.iter().map(|k| (*k).to_owned()))
                .collect(),
            _ => std::iter::once(first)
                .chain(rest.iter().map(|s| camel(s)))
                .collect(),
        };
        paths.push(path);
    }
    Some(paths)
}

/// The paths that an update of a message with `body` and `mask` sets; `None` when the mask holds
/// a path the service would refuse.
pub(crate) fn message_paths(mask: Option<&[&str]>, body: &Value) -> Option<Vec<Path>> {
    const FIELDS: [&str; 3] = ["content", "metadata", "toolCalls"];
    let Some(mask) = mask else {
        let fields = body.as_object()?;
        return Some(
            fields
                .keys()
                .filter(|k| FIELDS.contains(&k.as_str()))
                .map(|k| vec![k.clone()])
                .collect(),
        );
    };
    let mut paths = Vec::new();
    for raw in mask {
        let raw = raw.trim();
        if raw == "*" {
            paths.extend(FIELDS.iter().map(|f| vec![(*f).to_owned()]));
            continue;
        }
        let (first, key) = match raw.split_once('.') {
            Some((first, key)) => (camel(first), Some(key)),
            None => (camel(raw), None),
        };
        match (first.as_str(), key) {
            (f, None) if MESSAGE_OUTPUT.contains(&f) => {}
            ("content" | "metadata" | "toolCalls", None) => paths.push(vec![first]),
            ("metadata", Some(key)) if !key.contains('.') => {
                paths.push(vec![first, key.to_owned()]);
            }
            _ => return None,
        }
    }
    Some(paths)
}

fn at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, segment| v.get(segment))
}

/// Unset as the service renders it: absent, `null`, `""`, `{}` or `[]` (an empty string clears a
/// field; an empty object or list is not rendered).
fn unset(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// JSON equality, with numbers equal when their values are (`1` and `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|other| same(v, other)))
        }
        _ => a == b,
    }
}

/// Whether `read` holds, at every path, what `sent` holds there: the same value, or unset where
/// the call cleared it (`defaults`: a path that a clear sets to a default value instead).
pub(crate) fn holds(read: &Value, sent: &Value, paths: &[Path], defaults: &[(&str, &str)]) -> bool {
    paths.iter().all(|path| {
        let (want, got) = (at(sent, path), at(read, path));
        if unset(want) {
            let default = defaults
                .iter()
                .find(|(field, _)| path.len() == 1 && path[0] == *field)
                .map(|(_, value)| *value);
            unset(got) || (default.is_some() && got.and_then(Value::as_str) == default)
        } else {
            matches!((want, got), (Some(w), Some(g)) if same(w, g))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(list: &[&[&str]]) -> Vec<Path> {
        list.iter()
            .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    fn mask(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_etags_of_a_precondition_leave_out_a_wildcard() {
        assert_eq!(etags(None, None), None);
        assert_eq!(etags(Some("*"), None), None, "If-Match: * names no version");
        assert_eq!(
            etags(Some(" \"a\", \"b\" "), Some("\"c\"")),
            Some(vec!["\"a\"".into(), "\"b\"".into(), "\"c\"".into()])
        );
        assert_eq!(etags(Some("*"), Some("\"c\"")), Some(vec!["\"c\"".into()]));
        assert!(moved(Some("\"d\""), &["\"a\"".into()]));
        assert!(!moved(Some("\"a\""), &["\"a\"".into()]));
        assert!(!moved(None, &["\"a\"".into()]));
    }

    #[test]
    fn a_conversation_mask_gives_camel_case_paths_and_keys_as_written() {
        let body = json!({"displayName": "x"});
        let got = conversation_paths(
            Some(&mask(&[
                " display_name ",
                "data_source.gcs_source.audio_uri",
                "labels.team_a",
                "metadata.some_key",
                "updateTime",
            ])),
            &body,
        );
        assert_eq!(
            got,
            Some(paths(&[
                &["displayName"],
                &["dataSource", "gcsSource", "audioUri"],
                &["labels", "team_a"],
                &["metadata", "some_key"],
            ]))
        );
        assert_eq!(
            conversation_paths(None, &json!({"displayName": "x", "etag": "\"e\""})),
            Some(paths(&[&["displayName"]])),
            "without a mask: the fields of the body, the etag left out"
        );
    }

    #[test]
    fn what_the_service_rewrites_cannot_be_compared() {
        let body = json!({"displayName": "x"});
        assert_eq!(conversation_paths(Some(&mask(&["*"])), &body), None);
        assert_eq!(conversation_paths(None, &json!({"ttl": "60s"})), None);
        assert_eq!(conversation_paths(Some(&mask(&["nope"])), &body), None);
        assert_eq!(
            conversation_paths(Some(&mask(&["labels.a.b"])), &body),
            None
        );
    }

    #[test]
    fn a_message_mask_gives_its_three_fields() {
        let body = json!({"content": "x", "etag": "\"e\""});
        assert_eq!(
            message_paths(Some(&["*"]), &body),
            Some(paths(&[&["content"], &["metadata"], &["toolCalls"]]))
        );
        assert_eq!(
            message_paths(Some(&["tool_calls", "metadata.k", "order"]), &body),
            Some(paths(&[&["toolCalls"], &["metadata", "k"]]))
        );
        assert_eq!(message_paths(None, &body), Some(paths(&[&["content"]])));
        assert_eq!(message_paths(Some(&["type"]), &body), None);
    }

    #[test]
    fn a_read_holds_a_write_when_every_path_has_the_value_sent() {
        let sent = json!({
            "displayName": "Billing",
            "labels": {"team": "a"},
            "metadata": {"n": 1}
        });
        let read = json!({
            "displayName": "Billing",
            "labels": {"team": "a", "other": "b"},
            "metadata": {"n": 1.0},
            "category": "kept"
        });
        let p = paths(&[&["displayName"], &["labels", "team"], &["metadata"]]);
        assert!(holds(&read, &sent, &p, &[]));
        let other = json!({"displayName": "Sales", "labels": {"team": "a"}, "metadata": {"n": 1}});
        assert!(!holds(&other, &sent, &p, &[]));
    }

    #[test]
    fn a_cleared_path_must_read_as_unset_or_as_its_default() {
        let sent = json!({"displayName": ""});
        let p = paths(&[
            &["displayName"],
            &["labels", "gone"],
            &["conversationStage"],
        ]);
        assert!(holds(&json!({"labels": {}}), &sent, &p, &[]));
        assert!(!holds(&json!({"displayName": "still"}), &sent, &p, &[]));
        let staged = json!({"conversationStage": "VIRTUAL_AGENT_STAGE"});
        let defaults = [("conversationStage", "VIRTUAL_AGENT_STAGE")];
        assert!(holds(&staged, &sent, &p, &defaults));
        assert!(!holds(&staged, &sent, &p, &[]));
        let human = json!({"conversationStage": "HUMAN_ASSIST_STAGE"});
        assert!(!holds(&human, &sent, &p, &defaults));
    }
}
