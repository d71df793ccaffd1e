//! The `filter` of list (a subset of AIP-160) and its `orderBy`.

use crate::domain::conversation::{Lifecycle, Stage, is_label_key};
use crate::domain::ids::shorten;
use crate::domain::time::Timestamp;
use crate::error::ApiError;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;
/// The most terms a filter may join.
pub const MAX_TERMS: usize = 32;

/// One term of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `lifecycleState = X`.
    Lifecycle(Lifecycle),
    /// `conversationStage = X`.
    Stage(Stage),
    /// `category = "x"`.
    Category(String),
    /// `labels.<key> = "v"`.
    Label(String, String),
    /// `agents:"a"`.
    Agent(String),
}

/// A parsed filter: equality terms plus a `createTime` range, all joined by AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The terms other than `createTime`.
    pub terms: Vec<Term>,
    /// `createTime` at or after this many microseconds since the epoch.
    pub created_from: Option<i64>,
    /// `createTime` at or before this many microseconds since the epoch.
    pub created_to: Option<i64>,
}

/// One term as written: a field name, an operator and a value.
pub(crate) type RawTerm = (String, &'static str, Value);

/// Splits a filter into its terms (AIP-160 subset: `field op value` joined by ` AND `); the
/// grammar of list and of list messages. Too long, too many terms, or anything else → 400.
pub(crate) fn terms(text: &str) -> Result<Vec<RawTerm>, ApiError> {
    if text.len() > MAX_FILTER_BYTES {
        return Err(bad(format!(
            "filter is longer than {MAX_FILTER_BYTES} bytes"
        )));
    }
    let mut terms = Vec::new();
    let mut cursor = Cursor { text, pos: 0 };
    cursor.skip_ws();
    if cursor.at_end() {
        return Ok(terms);
    }
    loop {
        if terms.len() == MAX_TERMS {
            return Err(bad(format!("filter has more than {MAX_TERMS} terms")));
        }
        terms.push(cursor.term()?);
        let had_ws = cursor.skip_ws();
        if cursor.at_end() {
            break;
        }
        if !had_ws || !cursor.eat("AND") || !cursor.skip_ws() {
            return Err(bad(format!(
                "filter terms must be joined by \" AND \" (OR, NOT and parentheses are not supported), near {:?}",
                shorten(cursor.rest())
            )));
        }
    }
    Ok(terms)
}

impl Filter {
    /// Parses a filter; anything outside the supported subset is a 400.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut filter = Filter::default();
        for term in terms(text)? {
            filter.add(term)?;
        }
        Ok(filter)
    }

    fn add(&mut self, (field, op, value): RawTerm) -> Result<(), ApiError> {
        let term = match (field.as_str(), op) {
            ("lifecycleState", "=") => {
                Term::Lifecycle(Lifecycle::parse(value.text()).ok_or_else(|| {
                    bad(format!(
                        "lifecycleState must be one of {}",
                        Lifecycle::NAMES.join(", ")
                    ))
                })?)
            }
            ("conversationStage", "=") => {
                Term::Stage(Stage::parse(value.text()).ok_or_else(|| {
                    bad(format!(
                        "conversationStage must be one of {}",
                        Stage::NAMES.join(", ")
                    ))
                })?)
            }
            ("category", "=") => Term::Category(value.into_text()),
            ("agents", ":") => Term::Agent(value.into_text()),
            ("createTime", ">" | ">=" | "<" | "<=") => {
                let Value::Quoted(text) = &value else {
                    return Err(bad(
                        "createTime must be compared with a quoted RFC 3339 timestamp".into(),
                    ));
                };
                let (t, cut) = Timestamp::parse_with_remainder(text).ok_or_else(|| {
                    bad(format!(
                        "createTime {:?} is not an RFC 3339 timestamp",
                        shorten(text)
                    ))
                })?;
                let m = t.micros();
                match (op, cut) {
                    (">", _) | (">=", true) => self.from(m + 1),
                    (">=", false) => self.from(m),
                    ("<", false) => self.to(m - 1),
                    _ => self.to(m),
                }
                return Ok(());
            }
            (f, _) if f.starts_with("labels.") && op == "=" => {
                let key = &f["labels.".len()..];
                if !is_label_key(key) {
                    return Err(bad(format!(
                        "filter names an invalid label key {:?}",
                        shorten(key)
                    )));
                }
                Term::Label(key.to_owned(), value.into_text())
            }
            (f, op) => {
                return Err(bad(format!(
                    "filter term `{} {op} …` is not supported; use lifecycleState =, conversationStage =, category =, labels.<key> =, agents: or createTime >, >=, <, <=",
                    shorten(f)
                )));
            }
        };
        self.terms.push(term);
        Ok(())
    }

    fn from(&mut self, micros: i64) {
        self.created_from = Some(self.created_from.map_or(micros, |m| m.max(micros)));
    }

    fn to(&mut self, micros: i64) {
        self.created_to = Some(self.created_to.map_or(micros, |m| m.min(micros)));
    }

    /// A canonical text of the filter, for binding page tokens to it.
    pub fn canonical(&self) -> String {
        format!("{self:?}")
    }
}

pub(crate) fn bad(message: String) -> ApiError {
    ApiError::InvalidArgument(message)
}

/// A term's value: quoted (with escapes resolved) or bare.
pub(crate) enum Value {
    Quoted(String),
    Bare(String),
}

impl Value {
    pub(crate) fn text(&self) -> &str {
        match self {
            Self::Quoted(s) | Self::Bare(s) => s,
        }
    }

    pub(crate) fn into_text(self) -> String {
        match self {
            Self::Quoted(s) | Self::Bare(s) => s,
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.rest().starts_with([' ', '\t', '\n', '\r']) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, ok: impl Fn(char) -> bool) -> String {
        let taken: String = self.rest().chars().take_while(|&c| ok(c)).collect();
        self.pos += taken.len();
        taken
    }

    fn term(&mut self) -> Result<(String, &'static str, Value), ApiError> {
        let field =
            self.take_while(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
        if field.is_empty() {
            return Err(bad(format!(
                "filter expects a field name near {:?}",
                shorten(self.rest())
            )));
        }
        self.skip_ws();
        let op = [">=", "<=", "!=", "=", ">", "<", ":"]
            .into_iter()
            .find(|op| self.rest().starts_with(op))
            .ok_or_else(|| {
                bad(format!(
                    "filter expects an operator after {:?}",
                    shorten(&field)
                ))
            })?;
        self.pos += op.len();
        if op == "!=" {
            return Err(bad("filter operator != is not supported".into()));
        }
        self.skip_ws();
        let value = if self.eat("\"") {
            let mut out = String::new();
            let mut chars = self.rest().char_indices();
            loop {
                match chars.next() {
                    None => return Err(bad("filter has an unterminated string".into())),
                    Some((i, '"')) => {
                        self.pos += i + 1;
                        break;
                    }
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\'))) => out.push(c),
                        _ => {
                            return Err(bad("filter strings may only escape \\\" and \\\\".into()));
                        }
                    },
                    Some((_, c)) => out.push(c),
                }
            }
            Value::Quoted(out)
        } else {
            let bare =
                self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            if bare.is_empty() {
                return Err(bad(format!(
                    "filter expects a value after {:?}",
                    shorten(&field)
                )));
            }
            Value::Bare(bare)
        };
        Ok((field, op, value))
    }
}

/// The order of list results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderBy {
    /// `createTime desc`, the default: newest first.
    #[default]
    CreateTimeDesc,
    /// `createTime asc`: oldest first.
    CreateTimeAsc,
    /// `lastUsedTime desc`: most recently active first (a chat client's recent conversations).
    LastUsedTimeDesc,
    /// `lastUsedTime asc`: least recently active first.
    LastUsedTimeAsc,
}

impl OrderBy {
    /// Every accepted text, for the error message.
    const NAMES: [&'static str; 4] = [
        "createTime desc",
        "createTime asc",
        "lastUsedTime desc",
        "lastUsedTime asc",
    ];

    /// Parses `orderBy`: exactly one of `createTime desc`, `createTime asc`, `lastUsedTime desc`
    /// or `lastUsedTime asc`; anything else (an empty value included) is a 400. An absent
    /// `orderBy` is the default, `createTime desc`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "createTime desc" => Ok(Self::CreateTimeDesc),
            "createTime asc" => Ok(Self::CreateTimeAsc),
            "lastUsedTime desc" => Ok(Self::LastUsedTimeDesc),
            "lastUsedTime asc" => Ok(Self::LastUsedTimeAsc),
            _ => Err(bad(format!(
                "orderBy must be one of {}, not {:?}",
                Self::NAMES.map(|n| format!("\"{n}\"")).join(", "),
                shorten(text)
            ))),
        }
    }

    /// Whether the newest come first.
    pub fn descending(self) -> bool {
        matches!(self, Self::CreateTimeDesc | Self::LastUsedTimeDesc)
    }

    /// Whether it orders by `lastUsedTime` (the activity index) rather than `createTime`.
    pub fn by_activity(self) -> bool {
        matches!(self, Self::LastUsedTimeDesc | Self::LastUsedTimeAsc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> i64 {
        Timestamp::parse(text).expect("valid").micros()
    }

    #[test]
    fn every_supported_term_parses() {
        let f = Filter::parse(
            r#"lifecycleState = COMPLETED AND conversationStage="HUMAN_ASSIST_STAGE" AND category = "a \"b\"" AND labels.team = "x y" AND agents:"bot 1""#,
        )
        .expect("valid");
        assert_eq!(
            f.terms,
            vec![
                Term::Lifecycle(Lifecycle::Completed),
                Term::Stage(Stage::HumanAssist),
                Term::Category("a \"b\"".into()),
                Term::Label("team".into(), "x y".into()),
                Term::Agent("bot 1".into()),
            ]
        );
    }

    #[test]
    fn create_time_comparisons_become_an_inclusive_microsecond_range() {
        let f = Filter::parse(r#"createTime > "2026-01-01T00:00:00Z" AND createTime <= "2026-02-01T00:00:00.0000005Z""#).expect("valid");
        assert_eq!(f.created_from, Some(micros("2026-01-01T00:00:00Z") + 1));
        assert_eq!(f.created_to, Some(micros("2026-02-01T00:00:00Z")));
        let g = Filter::parse(r#"createTime >= "2026-01-01T00:00:00.0000001Z" AND createTime < "2026-02-01T00:00:00Z""#).expect("valid");
        assert_eq!(g.created_from, Some(micros("2026-01-01T00:00:00Z") + 1));
        assert_eq!(g.created_to, Some(micros("2026-02-01T00:00:00Z") - 1));
    }

    #[test]
    fn a_string_containing_and_is_one_value() {
        let f = Filter::parse(r#"category = "x AND y""#).expect("valid");
        assert_eq!(f.terms, vec![Term::Category("x AND y".into())]);
    }

    #[test]
    fn anything_outside_the_subset_is_a_400() {
        for bad in [
            "lifecycleState = DONE",
            "owner = \"x\"",
            "category != \"x\"",
            "category = \"x\" OR category = \"y\"",
            "(category = \"x\")",
            "NOT category = \"x\"",
            "category = \"x\" and category = \"y\"",
            "category = \"x\"AND category = \"y\"",
            "category = \"unterminated",
            "labels.Bad = \"x\"",
            "createTime > 2026",
            "createTime = \"2026-01-01T00:00:00Z\"",
            "createTime > \"yesterday\"",
            "agents = \"a\"",
            "category =",
            "= \"x\"",
            "category = \"x\" AND",
        ] {
            assert_eq!(Filter::parse(bad).expect_err(bad).status(), 400, "{bad}");
        }
        assert_eq!(Filter::parse("  ").expect("empty"), Filter::default());
    }

    #[test]
    fn order_by_accepts_create_time_and_last_used_time_either_way_only() {
        assert_eq!(
            OrderBy::parse("createTime desc").expect("desc"),
            OrderBy::CreateTimeDesc
        );
        assert_eq!(
            OrderBy::parse("createTime asc").expect("asc"),
            OrderBy::CreateTimeAsc
        );
        assert_eq!(
            OrderBy::parse("lastUsedTime desc").expect("desc"),
            OrderBy::LastUsedTimeDesc
        );
        assert_eq!(
            OrderBy::parse("lastUsedTime asc").expect("asc"),
            OrderBy::LastUsedTimeAsc
        );
        assert!(OrderBy::LastUsedTimeDesc.by_activity() && OrderBy::LastUsedTimeDesc.descending());
        assert!(!OrderBy::CreateTimeAsc.by_activity() && !OrderBy::CreateTimeAsc.descending());
        for bad in [
            "",
            " ",
            "createTime  asc",
            " createTime desc",
            "updateTime desc",
            "createTime up",
            "createTime desc, name",
            "createTime",
            "createtime asc",
            "lastUsedTime",
            "lastUsedTime  desc",
            "updateTime desc",
        ] {
            assert!(OrderBy::parse(bad).is_err(), "{bad:?}");
        }
    }
}
