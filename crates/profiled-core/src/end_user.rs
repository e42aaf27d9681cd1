//! What an end user may see and change of their own profile: a workspace lists writable and
//! hidden property paths; everything else is read-only. Pure rules, checked on the profile
//! before and after an end user's write.

use serde_json::{Map, Value};

use crate::path::PropertyPath;
use crate::{DomainError, Violation};

/// A workspace's rules for end users' own edits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserRules {
    /// Paths the end user may change (with everything below them).
    pub writable: Vec<PropertyPath>,
    /// Paths the end user never sees nor changes (with everything below them).
    pub hidden: Vec<PropertyPath>,
    /// Writable paths whose changes wait for a code sent to the new value.
    pub verified: Vec<PropertyPath>,
}

/// Whether `path` is `prefix` or below it.
fn under(path: &[String], prefix: &PropertyPath) -> bool {
    path.starts_with(prefix.segments())
}

impl EndUserRules {
    /// Parses the two lists; `at` is where they came from, for errors.
    pub fn parse(
        writable: &[String],
        hidden: &[String],
        verified: &[String],
        at: &str,
    ) -> Result<Self, DomainError> {
        let parse = |list: &[String], name: &str| {
            list.iter()
                .enumerate()
                .map(|(i, p)| PropertyPath::parse(p, &format!("{at}/{name}/{i}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            writable: parse(writable, "writable")?,
            hidden: parse(hidden, "hidden")?,
            verified: parse(verified, "verified")?,
        })
    }

    /// The verified paths a write changes, with their new values (`null` when removed),
    /// keyed by path.
    pub fn verified_changes(
        &self,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) -> Map<String, Value> {
        self.verified
            .iter()
            .filter(|path| get(before, path.segments()) != get(after, path.segments()))
            .map(|path| {
                let value = get(after, path.segments()).cloned().unwrap_or(Value::Null);
                (path.to_string(), value)
            })
            .collect()
    }

    fn is_hidden(&self, path: &[String]) -> bool {
        self.hidden.iter().any(|h| under(path, h))
    }

    /// The properties as the end user sees them: hidden paths removed.
    pub fn visible(&self, properties: &Map<String, Value>) -> Map<String, Value> {
        let mut shown = properties.clone();
        for hidden in &self.hidden {
            remove(&mut shown, hidden.segments());
        }
        shown
    }

    /// The properties an end user's replacement leads to: what they sent, plus the hidden
    /// values they could not see (and so could not have sent).
    pub fn with_hidden(
        &self,
        sent: Map<String, Value>,
        current: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut result = sent;
        for hidden in &self.hidden {
            remove(&mut result, hidden.segments());
            if let Some(value) = get(current, hidden.segments()) {
                insert(&mut result, hidden.segments(), value.clone());
            }
        }
        result
    }

    /// Checks that an end user's write changes only writable, visible paths; each other
    /// changed path is a violation at its pointer.
    pub fn check_write(
        &self,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) -> Result<(), DomainError> {
        let mut changed = Vec::new();
        changed_paths(before, after, &mut Vec::new(), &mut changed);
        let violations: Vec<Violation> = changed
            .into_iter()
            .filter(|path| self.is_hidden(path) || !self.writable.iter().any(|w| under(path, w)))
            .map(|path| {
                let pointer: String = path
                    .iter()
                    .map(|k| format!("/{}", crate::error::pointer_token(k)))
                    .collect();
                Violation::new(
                    format!("/properties{pointer}"),
                    "this property cannot be changed here",
                )
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(violations))
        }
    }
}

/// The paths whose values differ between two objects: objects on both sides are compared
/// key by key, anything else whole.
fn changed_paths(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    prefix: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for key in keys {
        prefix.push(key.clone());
        match (before.get(key), after.get(key)) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => changed_paths(a, b, prefix, out),
            (a, b) if a != b => out.push(prefix.clone()),
            _ => {}
        }
        prefix.pop();
    }
}

fn get<'a>(map: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = map.get(first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        get(value.as_object()?, rest)
    }
}

fn remove(map: &mut Map<String, Value>, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            map.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(inner)) = map.get_mut(first) {
                remove(inner, rest);
            }
        }
    }
}

fn insert(map: &mut Map<String, Value>, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rules() -> EndUserRules {
        EndUserRules::parse(
            &["name".into(), "prefs".into(), "phone".into()],
            &["internal".into(), "prefs.flags".into()],
            &["phone".into()],
            "",
        )
        .unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn hidden_paths_are_not_shown_and_survive_a_replacement() {
        let current = map(
            json!({"name": "Ada", "internal": {"score": 9}, "prefs": {"theme": "dark", "flags": [1]}}),
        );
        assert_eq!(
            rules().visible(&current),
            map(json!({"name": "Ada", "prefs": {"theme": "dark"}}))
        );
        let replaced = rules().with_hidden(map(json!({"name": "Bo", "internal": 0})), &current);
        assert_eq!(
            replaced,
            map(json!({"name": "Bo", "internal": {"score": 9}, "prefs": {"flags": [1]}}))
        );
    }

    #[test]
    fn only_writable_visible_paths_may_change() {
        let before =
            map(json!({"name": "Ada", "plan": "free", "prefs": {"theme": "dark", "flags": [1]}}));
        let ok = map(
            json!({"name": "Bo", "plan": "free", "prefs": {"theme": "light", "lang": "en", "flags": [1]}}),
        );
        assert!(rules().check_write(&before, &ok).is_ok());
        let bad =
            map(json!({"name": "Ada", "plan": "pro", "prefs": {"theme": "dark", "flags": []}}));
        let DomainError::Invalid(violations) = rules().check_write(&before, &bad).unwrap_err();
        let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/properties/plan", "/properties/prefs/flags"]);
    }

    #[test]
    fn verified_changes_name_the_paths_and_new_values() {
        let before = map(json!({"name": "Ada", "phone": "+1"}));
        let after = map(json!({"name": "Bo", "phone": "+2"}));
        assert_eq!(
            rules().verified_changes(&before, &after),
            map(json!({"phone": "+2"}))
        );
        let gone = map(json!({"name": "Ada"}));
        assert_eq!(
            rules().verified_changes(&before, &gone),
            map(json!({"phone": null}))
        );
        assert!(rules().verified_changes(&before, &before).is_empty());
    }

    proptest! {
        /// Whatever an end user sends as a replacement, the hidden values come through
        /// untouched, and no hidden path is ever seen.
        #[test]
        fn hidden_values_are_never_seen_nor_lost(
            secret in any::<i64>(),
            sent in proptest::collection::btree_map("(name|internal|prefs|x)", any::<i64>(), 0..4),
        ) {
            let current = map(json!({"internal": {"score": secret}, "name": "Ada"}));
            let sent: Map<String, Value> = sent.into_iter().map(|(k, v)| (k, json!(v))).collect();
            let result = rules().with_hidden(sent, &current);
            prop_assert_eq!(&result["internal"], &json!({"score": secret}));
            prop_assert!(!rules().visible(&result).contains_key("internal"));
        }
    }
}
