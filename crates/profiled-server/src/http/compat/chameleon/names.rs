//! How Chameleon normalises what its webhooks receive: property names lower-cased and
//! underscored (`planName` → `plan_name`), and every string value cut at 768 bytes.

use serde_json::{Map, Value};

/// The most bytes a string value keeps.
pub const MAX_VALUE_BYTES: usize = 768;

/// `planName`, `Plan Name`, `plan-name` and `plan.name` all become `plan_name` (a dot would
/// otherwise be read as a nested path).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous: Option<char> = None;
    for c in name.trim().chars() {
        if c.is_uppercase() {
            if previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if c == ' ' || c == '-' || c == '.' {
            out.push('_');
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out
}

/// A string cut to at most [`MAX_VALUE_BYTES`] bytes, at a character boundary.
fn truncate(s: &mut String) {
    if s.len() > MAX_VALUE_BYTES {
        let mut end = MAX_VALUE_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A value with its strings truncated and its object keys normalised, at every depth.
pub fn normalize_value(value: Value) -> Value {
    match value {
        Value::String(mut s) => {
            truncate(&mut s);
            Value::String(s)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_value).collect()),
        Value::Object(map) => Value::Object(normalize_object(map)),
        other => other,
    }
}

/// An object's keys normalised and its values truncated.
pub fn normalize_object(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| (normalize_name(&k), normalize_value(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn names_become_lower_case_with_underscores() {
        assert_eq!(normalize_name("planName"), "plan_name");
        assert_eq!(normalize_name("Plan Name"), "plan_name");
        assert_eq!(normalize_name("plan-name"), "plan_name");
        assert_eq!(normalize_name("team2Size"), "team2_size");
        assert_eq!(normalize_name("URL"), "url");
        assert_eq!(normalize_name("already_snake"), "already_snake");
    }

    #[test]
    fn long_strings_are_cut_at_a_character_boundary() {
        let long = "é".repeat(500); // 1000 bytes
        let value = normalize_value(json!({"Bio": long, "tags": ["x".repeat(800)]}));
        let bio = value["bio"].as_str().unwrap();
        assert!(bio.len() <= MAX_VALUE_BYTES && bio.len() >= MAX_VALUE_BYTES - 1);
        assert_eq!(value["tags"][0].as_str().unwrap().len(), MAX_VALUE_BYTES);
    }

    proptest! {
        #[test]
        fn normalizing_twice_changes_nothing(name in "[a-zA-Z0-9 ._-]{0,24}") {
            let once = normalize_name(&name);
            prop_assert_eq!(normalize_name(&once), once.clone());
            prop_assert!(!once.chars().any(|c| c.is_uppercase() || c == ' ' || c == '-'));
        }
    }
}
