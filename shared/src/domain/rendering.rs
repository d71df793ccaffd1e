//! How a resource is written as JSON: each resource emits its fields, in the contract's order,
//! into any `serde` map, each only when the caller's selection keeps its name. The HTTP replies
//! serialise straight into the response body through it (no intermediate `serde_json::Value`,
//! whose maps hash every key), and `to_json` builds a `Value` map through the same code, so the
//! shape is written once.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// A resource with a JSON rendering.
pub trait Render {
    /// Emits the fields `keep` selects, in the rendered order.
    fn render_fields<M: SerializeMap>(
        &self,
        map: &mut M,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<(), M::Error>;
}

/// A value written through its `Display` (times, names, etags), straight into the output.
pub struct Shown<T>(pub T);

impl<T: fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Every field of a resource, as a `Serialize` value.
pub struct Whole<'a, T>(pub &'a T);

impl<T: Render> Serialize for Whole<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.0.render_fields(&mut map, &|_| true)?;
        map.end()
    }
}

/// Every field of a resource as a JSON object.
pub fn to_map<T: Render>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(Whole(value)) {
        Ok(Value::Object(map)) => map,
        // A map of string keys and values that cannot fail to serialise.
        _ => Map::new(),
    }
}

/// Emits `key` with `value` when `keep` selects it; the value is computed only then.
macro_rules! field {
    ($map:expr, $keep:expr, $key:expr, $value:expr) => {
        if $keep($key) {
            $map.serialize_entry($key, &$value)?;
        }
    };
}
pub(crate) use field;
