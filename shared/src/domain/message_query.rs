//! What list messages reads: its `orderBy` (`order asc`, `order desc`) and its `filter`
//! (`order` bounds and `type`, joined by ` AND `), parsed into an inclusive order range and a
//! type. The range becomes the `Query`'s key condition, so only the messages in it are read.

use crate::domain::filter::{RawTerm, Value, bad, terms};
use crate::domain::ids::shorten;
use crate::domain::message::{MAX_ORDER, MessageType};
use crate::error::ApiError;

/// The order of list messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageOrder {
    /// `order asc`, the default: oldest first.
    #[default]
    Ascending,
    /// `order desc`: newest first (the last N messages of a long conversation in one request).
    Descending,
}

impl MessageOrder {
    /// Parses `orderBy`: exactly `order asc` or `order desc`; anything else is a 400.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "order asc" => Ok(Self::Ascending),
            "order desc" => Ok(Self::Descending),
            _ => Err(bad(format!(
                "orderBy must be \"order asc\" or \"order desc\", not {:?}",
                shorten(text)
            ))),
        }
    }
}

/// A parsed list-messages filter: orders `from..=to` (inclusive), and a type if one is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageFilter {
    /// The lowest order wanted, at least 1.
    pub from: u64,
    /// The highest order wanted, at most [`MAX_ORDER`].
    pub to: u64,
    /// Only messages of this type (applied after the read: a page may be short).
    pub kind: Option<MessageType>,
    /// Whether the terms contradict each other (two types, or an empty range): nothing matches.
    pub contradictory: bool,
}

impl Default for MessageFilter {
    fn default() -> Self {
        Self {
            from: 1,
            to: MAX_ORDER,
            kind: None,
            contradictory: false,
        }
    }
}

impl MessageFilter {
    /// Parses a filter: terms `order > N`, `order >= N`, `order < N`, `order <= N` (N an
    /// integer) and `type = USER|AGENT|SYSTEM|TOOL` (bare or quoted), joined by ` AND `;
    /// anything else is a 400.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for term in terms(text)? {
            filter.add(term)?;
        }
        Ok(filter)
    }

    fn add(&mut self, (field, op, value): RawTerm) -> Result<(), ApiError> {
        match (field.as_str(), op) {
            ("order", ">" | ">=" | "<" | "<=") => {
                let n = match &value {
                    Value::Bare(text) => integer(text),
                    Value::Quoted(_) => None,
                }
                .ok_or_else(|| {
                    bad(format!(
                        "order must be compared with an integer, not {:?}",
                        shorten(value.text())
                    ))
                })?;
                // Saturating arithmetic: no client number can overflow or wrap, and every bound
                // is clamped to the orders that exist.
                let clamp = |n: i128| n.clamp(0, i128::from(MAX_ORDER) + 1) as u64;
                match op {
                    ">" => self.from = self.from.max(clamp(n.saturating_add(1))),
                    ">=" => self.from = self.from.max(clamp(n)),
                    "<" => self.to = self.to.min(clamp(n.saturating_sub(1))),
                    _ => self.to = self.to.min(clamp(n)),
                }
            }
            ("type", "=") => {
                let kind = MessageType::parse(value.text()).ok_or_else(|| {
                    bad(format!(
                        "type must be one of {}",
                        MessageType::NAMES.join(", ")
                    ))
                })?;
                match self.kind {
                    Some(other) if other != kind => self.contradictory = true,
                    _ => self.kind = Some(kind),
                }
            }
            (f, op) => {
                return Err(bad(format!(
                    "filter term `{} {op} …` is not supported; use order >, >=, <, <= (an integer) or type =",
                    shorten(f)
                )));
            }
        }
        Ok(())
    }

    /// Whether no message can match.
    pub fn is_empty(&self) -> bool {
        self.contradictory || self.from > self.to
    }

    /// A canonical text of the filter, for binding page tokens to it.
    pub fn canonical(&self) -> String {
        format!(
            "{}..={}|{}|{}",
            self.from,
            self.to,
            self.kind.map_or("", MessageType::as_str),
            self.is_empty()
        )
    }
}

/// An integer written in decimal (an optional sign, then digits), however long: one beyond
/// `i128` is taken as `i128::MAX` or `i128::MIN`, which every bound clamps the same way.
fn integer(text: &str) -> Option<i128> {
    use std::num::IntErrorKind;
    match text.parse::<i128>() {
        Ok(n) => Some(n),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => Some(i128::MAX),
        Err(e) if *e.kind() == IntErrorKind::NegOverflow => Some(i128::MIN),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_bounds_become_an_inclusive_range() {
        let f = MessageFilter::parse("order > 9000 AND order <= 9050").expect("valid");
        assert_eq!((f.from, f.to), (9001, 9050));
        let g = MessageFilter::parse("order >= 3 AND order < 10 AND order > 4").expect("valid");
        assert_eq!((g.from, g.to), (5, 9));
        let all = MessageFilter::parse("").expect("empty");
        assert_eq!((all.from, all.to), (1, MAX_ORDER));
        assert!(!all.is_empty());
    }

    #[test]
    fn impossible_ranges_and_contradictions_match_nothing() {
        for empty in [
            "order > 10 AND order < 5",
            "order < 1",
            "order <= 0",
            "order > 9999999999",
            "order < -99999999999999999999999",
            "type = USER AND type = TOOL",
        ] {
            assert!(
                MessageFilter::parse(empty).expect(empty).is_empty(),
                "{empty}"
            );
        }
        let huge = MessageFilter::parse("order > -170141183460469231731687303715884105728")
            .expect("the smallest i128");
        assert_eq!(huge.from, 1);
    }

    #[test]
    fn bounds_at_both_ends_of_every_integer_saturate_instead_of_overflowing() {
        let max = i128::MAX.to_string();
        let min = i128::MIN.to_string();
        let beyond = format!("{max}000");
        let below = format!("{min}000");
        for nothing in [
            format!("order > {max}"),
            format!("order >= {max}"),
            format!("order > {beyond}"),
            format!("order < {min}"),
            format!("order <= {min}"),
            format!("order < {below}"),
        ] {
            let f = MessageFilter::parse(&nothing).expect(&nothing);
            assert!(f.is_empty(), "{nothing} matches nothing: {f:?}");
        }
        for everything in [
            format!("order < {max}"),
            format!("order <= {beyond}"),
            format!("order > {min}"),
            format!("order >= {below}"),
        ] {
            let f = MessageFilter::parse(&everything).expect(&everything);
            assert_eq!((f.from, f.to), (1, MAX_ORDER), "{everything}");
        }
    }

    #[test]
    fn a_type_term_names_one_type_bare_or_quoted() {
        assert_eq!(
            MessageFilter::parse("type = AGENT").expect("valid").kind,
            Some(MessageType::Agent)
        );
        let both = MessageFilter::parse("type = \"TOOL\" AND order > 2").expect("valid");
        assert_eq!((both.kind, both.from), (Some(MessageType::Tool), 3));
        assert!(
            !MessageFilter::parse("type = USER AND type = USER")
                .expect("same")
                .is_empty()
        );
    }

    #[test]
    fn anything_else_is_a_400() {
        for bad in [
            "order = 5",
            "order > five",
            "order > \"5\"",
            "order > 1.5",
            "type = BOT",
            "type > USER",
            "content = \"x\"",
            "order > 1 OR order < 3",
            "order > 1 and order < 3",
            "order >",
            "(order > 1)",
        ] {
            assert_eq!(
                MessageFilter::parse(bad).expect_err(bad).status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn order_by_is_order_asc_or_desc() {
        assert_eq!(
            MessageOrder::parse("order asc").expect("asc"),
            MessageOrder::Ascending
        );
        assert_eq!(
            MessageOrder::parse("order desc").expect("desc"),
            MessageOrder::Descending
        );
        for bad in ["", "order", "createTime desc", "order  desc", "ORDER DESC"] {
            assert!(MessageOrder::parse(bad).is_err(), "{bad}");
        }
    }
}
