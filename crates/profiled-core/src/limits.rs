//! Bounds on everything a client controls. Every bound is configurable; the defaults are
//! generous for real profiles and small enough that no single request can hurt the service.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{DomainError, Violation, pointer_token};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Deepest nesting of objects and arrays inside `properties` (the properties object is 1).
    pub max_depth: usize,
    /// Most object keys in a profile's properties, counted at every depth.
    pub max_properties: usize,
    /// Longest property key, in bytes.
    pub max_key_length: usize,
    /// Longest string value, in bytes.
    pub max_string_length: usize,
    /// Most identities one profile may carry.
    pub max_identities: usize,
    /// Longest identity value, in bytes.
    pub max_identity_length: usize,
    /// Identity values refused as junk (compared trimmed and case-insensitively): the
    /// placeholders that buggy clients send and that would otherwise join unrelated people.
    pub blocked_identity_values: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_depth: 32,
            max_properties: 1000,
            max_key_length: 256,
            max_string_length: 64 * 1024,
            max_identities: 100,
            max_identity_length: 1024,
            blocked_identity_values: [
                "null",
                "undefined",
                "0",
                "anonymous",
                "guest",
                "none",
                "nan",
                "[object Object]",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

impl Limits {
    /// Whether an identity value is on the block list.
    pub fn is_blocked(&self, value: &str) -> bool {
        let value = value.trim();
        self.blocked_identity_values
            .iter()
            .any(|b| b.trim().eq_ignore_ascii_case(value))
    }

    /// The deepest nesting any configuration may allow: JSON parsers (serde_json's included)
    /// refuse documents nested deeper than 128, so stored properties must stay well below.
    pub const MAX_DEPTH: usize = 100;

    /// Checks a whole properties object against the limits. `base` is the JSON pointer the
    /// violations are reported under (usually `/properties`).
    pub fn check_properties(
        &self,
        properties: &Map<String, Value>,
        base: &str,
    ) -> Result<(), DomainError> {
        let mut walk = Walk {
            limits: self,
            base,
            path: Vec::new(),
            keys: 0,
            violations: Vec::new(),
        };
        walk.object(properties, 1);
        if walk.keys > self.max_properties {
            walk.violations.push(Violation::new(
                base,
                format!(
                    "a profile holds at most {} properties (counting nested keys); this one would hold {}",
                    self.max_properties, walk.keys
                ),
            ));
        }
        if walk.violations.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(walk.violations))
        }
    }
}

/// One step of the walk into the properties.
enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

struct Walk<'a, 'v> {
    limits: &'a Limits,
    base: &'a str,
    /// Where the walk is; written out as a JSON pointer only for a violation, since every
    /// write walks every key.
    path: Vec<Step<'v>>,
    keys: usize,
    violations: Vec<Violation>,
}

impl<'v> Walk<'_, 'v> {
    /// Stops collecting after a handful of violations: one bad value repeated a thousand
    /// times needs one message, not a thousand.
    const MAX_REPORTED: usize = 20;

    fn object(&mut self, object: &'v Map<String, Value>, depth: usize) {
        if !self.depth_ok(depth) {
            return;
        }
        self.keys += object.len();
        for (key, value) in object {
            self.path.push(Step::Key(key));
            if key.len() > self.limits.max_key_length {
                self.report(format!(
                    "a key is at most {} bytes",
                    self.limits.max_key_length
                ));
            }
            self.value(value, depth);
            self.path.pop();
        }
    }

    fn value(&mut self, value: &'v Value, depth: usize) {
        match value {
            Value::Object(object) => self.object(object, depth + 1),
            Value::Array(items) if self.depth_ok(depth + 1) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    self.value(item, depth + 1);
                    self.path.pop();
                }
            }
            Value::String(s) if s.len() > self.limits.max_string_length => self.report(format!(
                "a string is at most {} bytes",
                self.limits.max_string_length
            )),
            _ => {}
        }
    }

    fn depth_ok(&mut self, depth: usize) -> bool {
        if depth > self.limits.max_depth {
            self.report(format!(
                "properties nest at most {} levels deep",
                self.limits.max_depth
            ));
            false
        } else {
            true
        }
    }

    fn pointer(&self) -> String {
        let mut pointer = self.base.to_owned();
        for step in &self.path {
            pointer.push('/');
            match step {
                Step::Key(key) => pointer.push_str(&pointer_token(key)),
                Step::Index(i) => pointer.push_str(&i.to_string()),
            }
        }
        pointer
    }

    fn report(&mut self, message: String) {
        if self.violations.len() < Self::MAX_REPORTED {
            self.violations
                .push(Violation::new(self.pointer(), message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(limits: &Limits, value: Value) -> Result<(), DomainError> {
        limits.check_properties(value.as_object().unwrap(), "/properties")
    }

    fn nested(depth: usize) -> Value {
        (1..depth).fold(json!(1), |inner, _| json!({ "k": inner }))
    }

    #[test]
    fn depth_counts_the_properties_object_as_one() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        assert!(check(&limits, json!({"a": {"b": 1}})).is_ok());
        assert!(check(&limits, json!({"a": {"b": {"c": 1}}})).is_ok());
        let err = check(&limits, json!({"a": {"b": {"c": {"d": 1}}}})).unwrap_err();
        assert_eq!(
            err,
            DomainError::invalid("/properties/a/b/c", "properties nest at most 3 levels deep")
        );
        assert!(check(&limits, json!({"a": [[[1]]]})).is_err());
        assert!(check(&Limits::default(), json!({"a": nested(40)})).is_err());
    }

    #[test]
    fn keys_are_counted_at_every_depth() {
        let limits = Limits {
            max_properties: 3,
            ..Limits::default()
        };
        assert!(check(&limits, json!({"a": {"b": 1}, "c": 2})).is_ok());
        assert!(check(&limits, json!({"a": {"b": 1, "d": 1}, "c": 2})).is_err());
    }

    #[test]
    fn long_keys_and_strings_are_refused_with_their_pointer() {
        let limits = Limits {
            max_key_length: 4,
            max_string_length: 5,
            ..Limits::default()
        };
        let DomainError::Invalid(v) = check(
            &limits,
            json!({"toolong": 1, "s": "abcdef", "arr": ["abcdefg"]}),
        )
        .unwrap_err();
        let pointers: Vec<_> = v.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/properties/toolong"));
        assert!(pointers.contains(&"/properties/s"));
        assert!(pointers.contains(&"/properties/arr/0"));
    }
}
