//! Building DynamoDB expressions: attribute names always travel as `ExpressionAttributeNames`
//! and values as `ExpressionAttributeValues`, never pasted into the expression text.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// Placeholders and the clauses of one request's expressions.
#[derive(Debug, Default)]
pub struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    set: Vec<String>,
    remove: Vec<String>,
    conditions: Vec<String>,
}

impl Expr {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The placeholder of an attribute name (one per distinct name).
    pub fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| a.as_str() == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// The placeholder of a value.
    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `SET attribute = value`.
    pub fn set(&mut self, attribute: &str, value: AttributeValue) {
        let (n, v) = (self.name(attribute), self.value(value));
        self.set.push(format!("{n} = {v}"));
    }

    /// `SET map.key = value`.
    pub fn set_entry(&mut self, map: &str, key: &str, value: AttributeValue) {
        let (m, k, v) = (self.name(map), self.name(key), self.value(value));
        self.set.push(format!("{m}.{k} = {v}"));
    }

    /// A document path (`a.b.c`) of placeholders.
    pub fn path(&mut self, segments: &[String]) -> String {
        segments
            .iter()
            .map(|s| self.name(s))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// `SET a.b.c = value`.
    pub fn set_path(&mut self, segments: &[String], value: AttributeValue) {
        let (p, v) = (self.path(segments), self.value(value));
        self.set.push(format!("{p} = {v}"));
    }

    /// `REMOVE a.b.c`.
    pub fn remove_path(&mut self, segments: &[String]) {
        let p = self.path(segments);
        self.remove.push(p);
    }

    /// A raw `SET` clause built from placeholders this builder handed out.
    pub fn set_clause(&mut self, clause: String) {
        self.set.push(clause);
    }

    /// `REMOVE attribute`.
    pub fn remove(&mut self, attribute: &str) {
        let n = self.name(attribute);
        self.remove.push(n);
    }

    /// `REMOVE map.key`.
    pub fn remove_entry(&mut self, map: &str, key: &str) {
        let (m, k) = (self.name(map), self.name(key));
        self.remove.push(format!("{m}.{k}"));
    }

    /// Adds a condition clause (joined with AND), built from placeholders of this builder.
    pub fn condition(&mut self, clause: String) {
        self.conditions.push(clause);
    }

    /// The update expression.
    pub fn update_expression(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// The condition expression (or filter expression).
    pub fn condition_expression(&self) -> Option<String> {
        (!self.conditions.is_empty()).then(|| {
            self.conditions
                .iter()
                .map(|c| format!("({c})"))
                .collect::<Vec<_>>()
                .join(" AND ")
        })
    }

    /// The names map, if any name was used.
    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// The values map, if any value was used.
    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_input_only_reaches_the_placeholder_maps() {
        let mut e = Expr::new();
        e.set("display_name", AttributeValue::S("x) OR (1=1".into()));
        e.set_entry("labels", "team = :v0", AttributeValue::S("v".into()));
        e.remove("category");
        let n = e.name("updated_at");
        let v = e.value(AttributeValue::N("1".into()));
        e.condition(format!("{n} = {v}"));
        let update = e.update_expression().expect("update");
        assert_eq!(update, "SET #n0 = :v0, #n1.#n2 = :v1 REMOVE #n3");
        assert_eq!(e.condition_expression().as_deref(), Some("(#n4 = :v2)"));
        assert_eq!(e.names().expect("names")["#n2"], "team = :v0");
    }
}
