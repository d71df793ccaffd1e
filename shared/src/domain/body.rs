//! Reading JSON request bodies field by field, collecting every broken field for one 422.

use serde_json::{Map, Value};

use crate::domain::time::{Duration, Timestamp};
use crate::error::{ApiError, FieldError};

/// The largest serialised `metadata` object, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Parses a request body into a JSON object; anything else is a 400.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::InvalidArgument(format!(
            "the request body must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(e) => Err(ApiError::InvalidArgument(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// A JSON value as text with every object's keys sorted: equal values, however their keys were
/// ordered, give equal text (for fingerprints of request bodies).
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&map[k])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Rejects any key that is neither writable nor output only (output-only keys are ignored, AIP-203).
pub fn reject_unknown(
    map: &Map<String, Value>,
    writable: &[&str],
    output_only: &[&str],
) -> Result<(), ApiError> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !writable.contains(k) && !output_only.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unknown
        .iter()
        .map(|k| format!("{:?}", crate::domain::ids::shorten(k)))
        .collect();
    Err(ApiError::InvalidArgument(format!(
        "unknown field{} in the request body: {}",
        if unknown.len() == 1 { "" } else { "s" },
        names.join(", ")
    )))
}

/// The name of a JSON value's type, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads typed fields out of one JSON object and gathers what is wrong with them.
pub struct Reader<'a> {
    map: &'a Map<String, Value>,
    /// Every broken field seen so far.
    pub errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    /// A reader over a body object.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            errors: Vec::new(),
        }
    }

    /// Whether the body names this field at all (`null` included).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong_type(&mut self, field: &str, expected: &str, got: &Value) {
        self.errors.push(FieldError::new(
            field,
            "invalid_type",
            format!("must be {expected}, not {}", kind(got)),
        ));
    }

    /// An optional string of at most `max` characters; `null` and `""` read as absent.
    pub fn string(&mut self, key: &str, max: usize) -> Option<String> {
        match self.value(key)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => {
                if s.chars().count() > max {
                    self.errors.push(FieldError::new(
                        key,
                        "too_long",
                        format!("must be at most {max} characters"),
                    ));
                    None
                } else {
                    Some(s.clone())
                }
            }
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    /// A required string of 1 to `max` bytes (`max_bytes`) — used for message content.
    pub fn required_text(&mut self, key: &str, max_bytes: usize) -> Option<String> {
        if self.value(key).is_none() {
            self.errors.push(FieldError::new(
                key,
                "required",
                format!("{key} is required"),
            ));
            return None;
        }
        let text = self.optional_text(key, max_bytes)?;
        if text.is_empty() {
            self.errors.push(FieldError::new(
                key,
                "required",
                format!("{key} must not be empty"),
            ));
            return None;
        }
        Some(text)
    }

    /// An optional string of at most `max_bytes` bytes where empty is allowed: absent and `null`
    /// read as `""`; `None` when it is broken.
    pub fn optional_text(&mut self, key: &str, max_bytes: usize) -> Option<String> {
        match self.value(key) {
            None => Some(String::new()),
            Some(Value::String(s)) if s.len() > max_bytes => {
                self.errors.push(FieldError::new(
                    key,
                    "too_long",
                    format!("must be at most {max_bytes} bytes of UTF-8"),
                ));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    /// An optional enum written as its name.
    pub fn enumeration<T>(
        &mut self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        names: &[&str],
    ) -> Option<T> {
        match self.value(key)? {
            Value::String(s) => {
                let parsed = parse(s);
                if parsed.is_none() {
                    self.errors.push(FieldError::new(
                        key,
                        "invalid",
                        format!("must be one of {}", names.join(", ")),
                    ));
                }
                parsed
            }
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    /// An optional RFC 3339 timestamp.
    pub fn timestamp(&mut self, key: &str) -> Option<Timestamp> {
        match self.value(key)? {
            Value::String(s) => {
                let parsed = Timestamp::parse(s);
                if parsed.is_none() {
                    self.errors.push(FieldError::new(
                        key,
                        "invalid",
                        "must be an RFC 3339 timestamp between years 0001 and 9999, e.g. 2026-11-23T08:00:00Z",
                    ));
                }
                parsed
            }
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    /// An optional duration such as `"86400s"`.
    pub fn duration(&mut self, key: &str) -> Option<Duration> {
        match self.value(key)? {
            Value::String(s) => {
                let parsed = Duration::parse(s);
                if parsed.is_none() {
                    self.errors.push(FieldError::new(key, "invalid", "must be a non-negative number of seconds with an s suffix, e.g. \"86400s\""));
                }
                parsed
            }
            other => {
                self.wrong_type(key, "a string", other);
                None
            }
        }
    }

    /// An optional free-form JSON object of at most 16 KiB serialised.
    pub fn metadata(&mut self, key: &str) -> Option<Map<String, Value>> {
        match self.value(key)? {
            Value::Object(map) => {
                let size = serde_json::to_vec(map)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
                if size > MAX_METADATA_BYTES {
                    self.errors.push(FieldError::new(
                        key,
                        "too_large",
                        format!(
                            "must be at most {MAX_METADATA_BYTES} bytes when serialised, not {size}"
                        ),
                    ));
                    None
                } else {
                    Some(map.clone())
                }
            }
            other => {
                self.wrong_type(key, "a JSON object", other);
                None
            }
        }
    }

    /// An optional integer within `range`: a JSON number with no fraction (`5` or `5.0`, as JSON
    /// Schema counts integers).
    pub fn integer(&mut self, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        match self.value(key)? {
            Value::Number(n) => match n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                        .map(|f| f as i64)
                })
                .filter(|v| range.contains(v))
            {
                Some(v) => Some(v),
                None => {
                    self.errors.push(FieldError::new(
                        key,
                        "invalid",
                        format!(
                            "must be an integer from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    ));
                    None
                }
            },
            other => {
                self.wrong_type(key, "an integer", other);
                None
            }
        }
    }

    /// Reads a nested object with `read`, naming its broken fields under `prefix`
    /// (`qualityMetadata.menuPath`, `sources[2].model`).
    pub fn nested<T>(
        &mut self,
        prefix: &str,
        map: &'a Map<String, Value>,
        read: impl FnOnce(&mut Reader<'a>) -> T,
    ) -> T {
        let mut inner = Reader::new(map);
        let value = read(&mut inner);
        self.errors
            .extend(inner.errors.into_iter().map(|e| FieldError {
                field: format!("{prefix}.{}", e.field),
                ..e
            }));
        value
    }

    /// The raw value of a field, `null` read as absent.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.value(key)
    }

    /// Records a broken field.
    pub fn error(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError::new(field, code, message));
    }

    /// Ends reading: a 422 listing every broken field, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidFields(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_400() {
        for bad in [
            &b"["[..],
            b"[]",
            b"\"x\"",
            b"1",
            b"null",
            b"{\"a\":}",
            b"\xff\xfe",
        ] {
            let error = object(bad).expect_err("not an object");
            assert_eq!(error.status(), 400, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(object(b"  ").expect("empty is an empty object"), Map::new());
    }

    #[test]
    fn unknown_keys_are_400_and_output_only_keys_are_ignored() {
        let body = map(json!({"displayName": "x", "createTime": "y"}));
        assert!(reject_unknown(&body, &["displayName"], &["createTime"]).is_ok());
        let error =
            reject_unknown(&map(json!({"colour": 1})), &["displayName"], &[]).expect_err("unknown");
        assert_eq!(error.status(), 400);
        assert!(error.to_string().contains("colour"));
    }

    #[test]
    fn every_broken_field_is_collected() {
        let body = map(json!({"a": 1, "b": "toolong", "c": "nope", "m": [1]}));
        let mut reader = Reader::new(&body);
        assert_eq!(reader.string("a", 5), None);
        assert_eq!(reader.string("b", 3), None);
        assert_eq!(reader.timestamp("c"), None);
        assert_eq!(reader.metadata("m"), None);
        assert_eq!(reader.required_text("missing", 10), None);
        let Err(ApiError::InvalidFields(errors)) = reader.finish() else {
            panic!("expected a 422")
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "b", "c", "m", "missing"]);
    }

    #[test]
    fn metadata_over_16_kib_is_rejected() {
        let big = "x".repeat(MAX_METADATA_BYTES);
        let body = map(json!({"metadata": {"k": big}}));
        let mut reader = Reader::new(&body);
        assert_eq!(reader.metadata("metadata"), None);
        assert_eq!(reader.errors[0].code, "too_large");
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let body = map(json!({"s": "ééé"}));
        let mut reader = Reader::new(&body);
        assert_eq!(reader.string("s", 3).as_deref(), Some("ééé"));
    }
}
