//! Etags and preconditions: optimistic concurrency on the stored `updated_at` version.

use crate::domain::time::{MAX_MICROS, Timestamp};
use crate::error::{ApiError, EtagSource};

/// The version a write stores in `updated_at`: microseconds since the epoch of the write, strictly
/// increasing for one conversation. The etag encodes it; `updateTime` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub i64);

impl Version {
    /// The version for a write at `now` over a conversation whose version is `previous`: never
    /// equal to or below a version it had before, even when clocks disagree.
    pub fn next(now: Timestamp, previous: Option<Version>) -> Version {
        match previous {
            // Saturating: a version at the end of time (never issued: etags past it match
            // nothing, see `Etag::parse`) stays there and the write's condition refuses it.
            Some(Version(p)) if p >= now.micros() => Version(p.saturating_add(1)),
            _ => Version(now.micros()),
        }
    }

    /// The etag of this version of a conversation: a quoted string (RFC 9110).
    pub fn etag(self) -> String {
        format!("\"{:x}\"", self.0)
    }

    /// The etag of this version of the message of `order`: `m`, the order, a dot, then the hex
    /// digits — so that it never equals its conversation's etag (an append writes the message
    /// and its conversation with the same version) nor another message's (a batch writes its
    /// messages with one version), and none passes as another's precondition.
    pub fn message_etag(self, order: u64) -> String {
        format!("\"m{order}.{:x}\"", self.0)
    }

    /// The instant this version was written.
    pub fn time(self) -> Timestamp {
        Timestamp::from_micros(self.0).unwrap_or_else(Timestamp::now)
    }
}

/// An entity tag given by a client. One we could not have issued matches nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Etag {
    /// It names this version of a conversation.
    Version(Version),
    /// It names this version of the message of this order (`"m<order>.<hex>"`): never a
    /// conversation's precondition, nor another message's (see [`Preconditions::of_message`]).
    Message(u64, Version),
    /// It cannot name any version: every precondition with it fails.
    Unmatchable,
}

impl Etag {
    /// Parses `"<hex>"` (a conversation's) or `"m<order>.<hex>"` (a message's); the quotes may
    /// be left out in a body field. Versions are microseconds of a write between the epoch and
    /// the year 9999, so anything outside that range is a tag the service never issued.
    pub fn parse(text: &str) -> Self {
        let inner = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        match inner.strip_prefix('m') {
            Some(rest) => {
                let order = rest.split_once('.').and_then(|(order, digits)| {
                    let canonical = !order.starts_with('0')
                        && !order.is_empty()
                        && order.len() <= 10
                        && order.bytes().all(|b| b.is_ascii_digit());
                    canonical
                        .then(|| order.parse::<u64>().ok())
                        .flatten()
                        .zip(version(digits))
                });
                match order {
                    Some((order, v)) => Self::Message(order, v),
                    None => Self::Unmatchable,
                }
            }
            None => version(inner).map_or(Self::Unmatchable, Self::Version),
        }
    }

    /// The same tag read as the precondition of the message of `order`: that message's tag names
    /// its version; a conversation's, or another message's, names none.
    fn of_message(self, order: u64) -> Self {
        match self {
            Self::Message(o, v) if o == order => Self::Version(v),
            _ => Self::Unmatchable,
        }
    }

    fn matches(self, version: Version) -> bool {
        // A message's tag never matches here: conversations compare `Version` tags only.
        self == Self::Version(version)
    }
}

/// The version lowercase hex digits name, if the service could have issued it.
fn version(digits: &str) -> Option<Version> {
    let ok = !digits.is_empty()
        && digits.len() <= 16
        && digits
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    match i64::from_str_radix(digits, 16) {
        Ok(v) if ok && (0..=MAX_MICROS).contains(&v) => Some(Version(v)),
        _ => None,
    }
}

/// An `If-Match` header: `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the conversation must exist.
    Any,
    /// Any of these must be current. Weak tags (`W/"…"`) never match (strong comparison).
    Tags(Vec<Etag>),
}

impl IfMatch {
    /// Parses the header's value (RFC 9110: `*` or `#entity-tag`, where a quoted tag may hold
    /// commas); a malformed header is a 400.
    pub fn parse(header: &str) -> Result<Self, ApiError> {
        let malformed = || {
            ApiError::InvalidArgument(format!(
                "If-Match must be * or a list of quoted entity tags, not {:?}",
                crate::domain::ids::shorten(header)
            ))
        };
        let header = header.trim();
        if header == "*" {
            return Ok(Self::Any);
        }
        let mut tags = Vec::new();
        let mut rest = header;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let (weak, tag) = match rest.strip_prefix("W/") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let inner = tag.strip_prefix('"').ok_or_else(malformed)?;
            let close = inner.find('"').ok_or_else(malformed)?;
            let (value, after) = (&inner[..close], &inner[close + 1..]);
            tags.push(if weak {
                Etag::Unmatchable
            } else {
                Etag::parse(value)
            });
            let after = after.trim_start_matches([' ', '\t']);
            if !(after.is_empty() || after.starts_with(',')) {
                return Err(malformed());
            }
            rest = after;
        }
        if tags.is_empty() || tags.len() > 50 {
            return Err(ApiError::InvalidArgument(
                "If-Match must name between 1 and 50 entity tags".into(),
            ));
        }
        Ok(Self::Tags(tags))
    }
}

/// The version preconditions of one write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    /// The `etag` of the body or query string.
    pub body: Option<Etag>,
    /// The `If-Match` header.
    pub if_match: Option<IfMatch>,
}

impl Preconditions {
    /// True when the client named no version.
    pub fn is_empty(&self) -> bool {
        self.body.is_none() && self.if_match.as_ref().is_none_or(|m| *m == IfMatch::Any)
    }

    /// Checks a stored version against the preconditions; `If-Match` is checked first.
    pub fn check(&self, current: Version) -> Result<(), EtagSource> {
        if let Some(IfMatch::Tags(tags)) = &self.if_match
            && !tags.iter().any(|t| t.matches(current))
        {
            return Err(EtagSource::IfMatch);
        }
        match self.body {
            Some(tag) if !tag.matches(current) => Err(EtagSource::Body),
            _ => Ok(()),
        }
    }

    /// The versions the stored one must equal: one list per precondition, every list must hold it.
    pub fn required_versions(&self) -> Vec<Vec<Option<Version>>> {
        let as_version = |t: &Etag| match t {
            Etag::Version(v) => Some(*v),
            Etag::Message(..) | Etag::Unmatchable => None,
        };
        let mut lists = Vec::new();
        if let Some(IfMatch::Tags(tags)) = &self.if_match {
            lists.push(tags.iter().map(as_version).collect());
        }
        if let Some(tag) = &self.body {
            lists.push(vec![as_version(tag)]);
        }
        lists
    }

    /// How a write on a conversation that does not exist fails when the client named a version:
    /// an `If-Match` (even `*`) is false when nothing exists (RFC 9110), and so is a body etag.
    /// `None`: no precondition, the ordinary 404 (or `allowMissing`) applies.
    pub fn on_missing(&self) -> Option<EtagSource> {
        if self.if_match.is_some() {
            Some(EtagSource::IfMatch)
        } else if self.body.is_some() {
            Some(EtagSource::Body)
        } else {
            None
        }
    }

    /// The same preconditions read for the message of `order` (update and delete message): its
    /// tags (`"m<order>.<hex>"`) name its versions; a conversation's tag, or another message's —
    /// even one holding the same version, as an append or a batch gives them — matches nothing.
    pub fn of_message(&self, order: u64) -> Self {
        Self {
            body: self.body.map(|t| t.of_message(order)),
            if_match: self.if_match.as_ref().map(|m| match m {
                IfMatch::Any => IfMatch::Any,
                IfMatch::Tags(tags) => {
                    IfMatch::Tags(tags.iter().map(|t| t.of_message(order)).collect())
                }
            }),
        }
    }

    /// The version a successful conditional write replaces, when the preconditions pin it.
    pub fn pinned(&self) -> Option<Version> {
        let body = match self.body {
            Some(Etag::Version(v)) => Some(v),
            _ => None,
        };
        let single_if_match = match &self.if_match {
            Some(IfMatch::Tags(tags)) if tags.len() == 1 => match tags[0] {
                Etag::Version(v) => Some(v),
                Etag::Message(..) | Etag::Unmatchable => None,
            },
            _ => None,
        };
        body.or(single_if_match)
    }
}

/// Reads the body of undelete and complete: `{}` or `{"etag": "…"}`.
pub fn etag_body(
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Etag>, ApiError> {
    crate::domain::body::reject_unknown(map, &["etag"], &[])?;
    match map.get("etag") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(Etag::parse(s))),
        Some(other) => Err(ApiError::field(
            "etag",
            "invalid_type",
            format!("must be a string, not {}", crate::domain::body::kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_round_trips_through_its_quoted_form() {
        let v = Version(1_763_884_800_123_456);
        assert_eq!(Etag::parse(&v.etag()), Etag::Version(v));
        assert_eq!(Etag::parse(v.etag().trim_matches('"')), Etag::Version(v));
    }

    #[test]
    fn a_message_s_etag_passes_for_no_other_resource() {
        let v = Version(1_763_884_800_123_456);
        assert_ne!(v.etag(), v.message_etag(3));
        assert_ne!(v.message_etag(3), v.message_etag(4));
        assert_eq!(Etag::parse(&v.message_etag(3)), Etag::Message(3, v));
        assert_eq!(Etag::parse(&format!("m3.{:x}", v.0)), Etag::Message(3, v));
        let sent = |tag: &str| Preconditions {
            body: Some(Etag::parse(tag)),
            if_match: Some(IfMatch::parse(tag).expect("a tag")),
        };
        // A conversation's write: only the conversation's tag holds.
        assert_eq!(sent(&v.etag()).check(v), Ok(()));
        assert_eq!(sent(&v.message_etag(3)).check(v), Err(EtagSource::IfMatch));
        assert_eq!(sent(&v.message_etag(3)).pinned(), None);
        assert_eq!(
            sent(&v.message_etag(3)).required_versions(),
            [vec![None], vec![None]]
        );
        // A message's write: only that message's tag holds.
        assert_eq!(sent(&v.message_etag(3)).of_message(3).check(v), Ok(()));
        assert_eq!(
            sent(&v.message_etag(4)).of_message(3).check(v),
            Err(EtagSource::IfMatch)
        );
        assert_eq!(
            sent(&v.etag()).of_message(3).check(v),
            Err(EtagSource::IfMatch)
        );
        let body_only = Preconditions {
            body: Some(Etag::parse(&v.etag())),
            if_match: Some(IfMatch::Any),
        };
        assert_eq!(body_only.of_message(3).check(v), Err(EtagSource::Body));
        for bad in [
            "\"mm12\"",
            "\"m\"",
            "\"m3\"",
            "\"m03.12\"",
            "\"m.12\"",
            "\"m3.\"",
            "\"m3.1G\"",
        ] {
            assert_eq!(Etag::parse(bad), Etag::Unmatchable, "{bad}");
        }
    }

    #[test]
    fn etags_we_could_not_have_issued_match_nothing() {
        for bad in [
            "",
            "\"\"",
            "\"xyz\"",
            "\"ABC\"",
            "\"-1\"",
            "\"11111111111111111\"",
            "W/\"12\"",
            "\"7fffffffffffffff\"",
            "\"ffffffffffffffff\"",
            "\"384440ccc736000\"",
        ] {
            assert_eq!(Etag::parse(bad), Etag::Unmatchable, "{bad}");
        }
    }

    #[test]
    fn a_version_at_the_end_of_time_does_not_overflow() {
        let now = Timestamp::from_micros(100).expect("valid");
        assert_eq!(
            Version::next(now, Some(Version(i64::MAX))),
            Version(i64::MAX)
        );
        assert_eq!(
            Etag::parse("\"384440ccc735fff\""),
            Etag::Version(Version(MAX_MICROS))
        );
    }

    #[test]
    fn versions_only_move_forward() {
        let now = Timestamp::from_micros(100).expect("valid");
        assert_eq!(Version::next(now, None), Version(100));
        assert_eq!(Version::next(now, Some(Version(50))), Version(100));
        assert_eq!(Version::next(now, Some(Version(100))), Version(101));
        assert_eq!(Version::next(now, Some(Version(500))), Version(501));
    }

    #[test]
    fn if_match_accepts_star_and_lists_and_rejects_garbage() {
        assert_eq!(IfMatch::parse("*").expect("star"), IfMatch::Any);
        let IfMatch::Tags(tags) = IfMatch::parse("\"a\", W/\"b\" ,\"c\"").expect("list") else {
            panic!("tags")
        };
        assert_eq!(
            tags,
            vec![
                Etag::Version(Version(10)),
                Etag::Unmatchable,
                Etag::Version(Version(12))
            ]
        );
        for bad in ["", "abc", "\"a", "\"a\"b\"", "\"a\" \"b\"", ","] {
            assert!(IfMatch::parse(bad).is_err(), "{bad}");
        }
        let IfMatch::Tags(commas) = IfMatch::parse("\"x,y\", \"c\"").expect("a comma inside a tag")
        else {
            panic!("tags")
        };
        assert_eq!(commas, vec![Etag::Unmatchable, Etag::Version(Version(12))]);
    }

    #[test]
    fn a_missing_conversation_fails_every_precondition_if_match_first() {
        let tag = Etag::Version(Version(1));
        let none = Preconditions::default();
        assert_eq!(none.on_missing(), None);
        let star = Preconditions {
            body: None,
            if_match: Some(IfMatch::Any),
        };
        assert_eq!(star.on_missing(), Some(EtagSource::IfMatch));
        let body = Preconditions {
            body: Some(tag),
            if_match: None,
        };
        assert_eq!(body.on_missing(), Some(EtagSource::Body));
        let both = Preconditions {
            body: Some(tag),
            if_match: Some(IfMatch::Tags(vec![tag])),
        };
        assert_eq!(both.on_missing(), Some(EtagSource::IfMatch));
    }

    #[test]
    fn if_match_is_checked_before_the_body_etag() {
        let pre = Preconditions {
            body: Some(Etag::Version(Version(1))),
            if_match: Some(IfMatch::Tags(vec![Etag::Version(Version(2))])),
        };
        assert_eq!(pre.check(Version(3)), Err(EtagSource::IfMatch));
        assert_eq!(pre.check(Version(2)), Err(EtagSource::Body));
        let ok = Preconditions {
            body: Some(Etag::Version(Version(2))),
            if_match: None,
        };
        assert_eq!(ok.check(Version(2)), Ok(()));
        assert_eq!(ok.pinned(), Some(Version(2)));
    }
}
