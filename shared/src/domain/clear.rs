//! The body of clear messages: `{"throughOrder"?, "etag"?}`.

use serde_json::{Map, Value};

use crate::domain::etag::Etag;
use crate::domain::message::MAX_ORDER;
use crate::error::{ApiError, FieldError};

/// A validated clear: up to which order (`None`: every message), and the conversation's etag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clear {
    /// Every message up to this order is cleared; `None`, or an order above the highest
    /// assigned, clears them all.
    pub through: Option<u64>,
    /// The conversation's etag, as a precondition.
    pub etag: Option<Etag>,
}

impl Clear {
    /// Reads the body: `throughOrder` a positive integer (a JSON number; `null` or absent:
    /// every message), `etag` a string; any other value of either is a 422 naming it, an
    /// unknown field a 400.
    pub fn from_json(map: &Map<String, Value>) -> Result<Self, ApiError> {
        crate::domain::body::reject_unknown(map, &["throughOrder", "etag"], &[])?;
        let mut errors = Vec::new();
        let through = match map.get("throughOrder") {
            None | Some(Value::Null) => None,
            // An integer as JSON Schema counts one (`1.0` is 1); one past every order there
            // can be is the same as every message.
            Some(Value::Number(n)) if whole(n).is_some() => whole(n).filter(|o| *o <= MAX_ORDER),
            Some(other) => {
                errors.push(FieldError::new(
                    "throughOrder",
                    "invalid",
                    format!(
                        "must be a positive integer, not {}",
                        match other {
                            Value::Number(n) => n.to_string(),
                            other => crate::domain::body::kind(other).to_owned(),
                        }
                    ),
                ));
                None
            }
        };
        let etag = match map.get("etag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Etag::parse(s)),
            Some(other) => {
                errors.push(FieldError::new(
                    "etag",
                    "invalid_type",
                    format!("must be a string, not {}", crate::domain::body::kind(other)),
                ));
                None
            }
        };
        if errors.is_empty() {
            Ok(Self { through, etag })
        } else {
            Err(ApiError::InvalidFields(errors))
        }
    }
}

/// A JSON number that is a positive whole number, as `u64` (saturating: a larger one is
/// `u64::MAX`).
fn whole(n: &serde_json::Number) -> Option<u64> {
    match n.as_u64() {
        Some(o) => (o >= 1).then_some(o),
        None => n
            .as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && *f >= 1.0)
            .map(|f| {
                if f >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    f as u64
                }
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(body: Value) -> Result<Clear, ApiError> {
        Clear::from_json(body.as_object().expect("an object"))
    }

    #[test]
    fn through_order_is_a_positive_integer_or_absent() {
        assert_eq!(read(json!({})).expect("all").through, None);
        assert_eq!(
            read(json!({"throughOrder": null})).expect("all").through,
            None
        );
        assert_eq!(
            read(json!({"throughOrder": 7})).expect("7").through,
            Some(7)
        );
        // Above every order there can be: the same as absent.
        let huge = read(json!({"throughOrder": 99_999_999_999_u64})).expect("all");
        assert_eq!(huge.through, None);
        assert_eq!(
            read(json!({"throughOrder": 1e300})).expect("all").through,
            None
        );
        assert_eq!(
            read(json!({"throughOrder": 3.0})).expect("3").through,
            Some(3)
        );
        let etag = read(json!({"etag": "\"12\""})).expect("an etag").etag;
        assert!(etag.is_some());
    }

    #[test]
    fn anything_else_is_a_422_naming_it_and_unknown_fields_a_400() {
        for bad in [
            json!(0),
            json!(-3),
            json!(2.5),
            json!(0.0),
            json!(-1e300),
            json!("5"),
            json!(true),
            json!([1]),
            json!({"n": 1}),
        ] {
            let err = read(json!({"throughOrder": bad.clone()})).expect_err("refused");
            assert_eq!(err.status(), 422, "{bad}");
            let ApiError::InvalidFields(fields) = err else {
                panic!("field errors");
            };
            assert_eq!(fields[0].field, "throughOrder", "{bad}");
        }
        let both = read(json!({"throughOrder": "x", "etag": 5})).expect_err("two fields");
        let ApiError::InvalidFields(fields) = both else {
            panic!("field errors");
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(
            read(json!({"through": 3})).expect_err("unknown").status(),
            400
        );
    }
}
