//! Property operations: `set`, `set_once`, `unset`, `increment`, `append`, `remove`, JSON
//! Merge Patch (RFC 7396) and full replace. Every write path in every API reduces to these.
//!
//! Operations are applied to a copy, in the order listed above, and either all succeed or the
//! properties are left as they were.

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::error::{DomainError, Violation, pointer_token};
use crate::path::PropertyPath;

/// A set of property operations, as sent in a request body.
///
/// Keys are property paths: `plan`, `prefs.theme` (nested), or a JSON pointer such as
/// `/key.with.dots` for keys that contain dots.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PropertyOps {
    /// Assign each value, creating intermediate objects as needed.
    #[schema(value_type = Object, example = json!({"plan": "pro", "prefs.theme": "dark"}))]
    pub set: Map<String, Value>,
    /// Assign each value only where the property is missing or null.
    #[schema(value_type = Object, example = json!({"first_plan": "free"}))]
    pub set_once: Map<String, Value>,
    /// Remove these properties. Removing a missing property is not an error.
    #[schema(example = json!(["trial_ends_at"]))]
    pub unset: Vec<String>,
    /// Add a number to each property (a missing one counts as 0). Refused on non-numbers.
    #[schema(value_type = Object, example = json!({"logins": 1}))]
    pub increment: Map<String, Value>,
    /// Append each value, as one element, to an array property (a missing one is created).
    #[schema(value_type = Object, example = json!({"tags": "beta"}))]
    pub append: Map<String, Value>,
    /// Remove every element equal to the value from an array property.
    #[schema(value_type = Object, example = json!({"tags": "trial"}))]
    pub remove: Map<String, Value>,
}

impl PropertyOps {
    /// The operation names, as they appear in request bodies.
    pub const NAMES: [&'static str; 6] =
        ["set", "set_once", "unset", "increment", "append", "remove"];

    /// The top-level keys this request's `set_once` filled, given the properties before and
    /// after applying it (nested `set_once` paths are not tracked).
    pub fn set_once_filled(
        &self,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) -> Vec<String> {
        self.set_once
            .keys()
            .filter(|key| !key.contains('.') && !key.starts_with('/'))
            .filter(|key| {
                before.get(*key).is_none_or(Value::is_null)
                    && after.get(*key).is_some_and(|v| !v.is_null())
            })
            .cloned()
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.set_once.is_empty()
            && self.unset.is_empty()
            && self.increment.is_empty()
            && self.append.is_empty()
            && self.remove.is_empty()
    }

    /// Applies the operations to a copy of `properties`. `base` is the JSON pointer of the
    /// operations in the request body, for error messages (e.g. `""` or `/ops`).
    pub fn apply(
        &self,
        properties: &Map<String, Value>,
        base: &str,
    ) -> Result<Map<String, Value>, DomainError> {
        let mut run = Run {
            out: properties.clone(),
            violations: Vec::new(),
            base,
        };
        for (path, value) in &self.set {
            run.step("set", path, |props, p| {
                *slot(props, p)? = value.clone();
                Ok(())
            });
        }
        for (path, value) in &self.set_once {
            run.step("set_once", path, |props, p| {
                let target = slot(props, p)?;
                if target.is_null() {
                    *target = value.clone();
                }
                Ok(())
            });
        }
        for (i, path) in self.unset.iter().enumerate() {
            // Unset is a list, so its errors point at the index in the request.
            run.step("unset", &i.to_string(), |props, _| {
                let parsed = PropertyPath::parse(path, "").map_err(|_| {
                    format!("`{path}` is not a property path: a path is keys joined by `.` (or a JSON pointer starting with `/`), none of them empty")
                })?;
                unset(props, &parsed);
                Ok(())
            });
        }
        for (path, delta) in &self.increment {
            run.step("increment", path, |props, p| {
                let Value::Number(delta) = delta else {
                    return Err("the amount to increment by must be a number".into());
                };
                let target = slot(props, p)?;
                let current = match target {
                    Value::Null => Number::from(0),
                    Value::Number(n) => n.clone(),
                    other => {
                        return Err(format!(
                            "cannot increment `{p}`: it holds {}, not a number",
                            describe(other)
                        ));
                    }
                };
                *target = Value::Number(add(&current, delta)?);
                Ok(())
            });
        }
        for (path, value) in &self.append {
            run.step("append", path, |props, p| {
                let target = slot(props, p)?;
                match target {
                    Value::Null => *target = Value::Array(vec![value.clone()]),
                    Value::Array(items) => items.push(value.clone()),
                    other => {
                        return Err(format!(
                            "cannot append to `{p}`: it holds {}, not an array",
                            describe(other)
                        ));
                    }
                }
                Ok(())
            });
        }
        for (path, value) in &self.remove {
            run.step("remove", path, |props, p| match existing(props, p) {
                None | Some(Value::Null) => Ok(()),
                Some(Value::Array(items)) => {
                    items.retain(|item| item != value);
                    Ok(())
                }
                Some(other) => Err(format!(
                    "cannot remove from `{p}`: it holds {}, not an array",
                    describe(other)
                )),
            });
        }

        if run.violations.is_empty() {
            Ok(run.out)
        } else {
            Err(DomainError::Invalid(run.violations))
        }
    }
}

/// One application of a set of operations: the copy being changed and what went wrong.
struct Run<'a> {
    out: Map<String, Value>,
    violations: Vec<Violation>,
    base: &'a str,
}

impl Run<'_> {
    /// Applies one operation to one path, recording a violation at its request pointer.
    fn step(
        &mut self,
        op: &str,
        path: &str,
        f: impl FnOnce(&mut Map<String, Value>, &PropertyPath) -> Result<(), String>,
    ) {
        // Written only when something went wrong: formatting it for every step was a tenth
        // of applying an upsert's ten properties.
        let pointer = || format!("{}/{op}/{}", self.base, pointer_token(path));
        match PropertyPath::parse(path, "") {
            Ok(parsed) => {
                if let Err(message) = f(&mut self.out, &parsed) {
                    self.violations.push(Violation::new(pointer(), message));
                }
            }
            Err(DomainError::Invalid(violations)) => {
                self.violations.extend(
                    violations
                        .into_iter()
                        .map(|v| Violation::new(pointer(), v.message)),
                );
            }
        }
    }
}

/// Applies a JSON Merge Patch (RFC 7396) to a copy of `properties`. The patch must be an
/// object: a patch that would replace the properties with a non-object is refused.
pub fn merge_patch(
    properties: &Map<String, Value>,
    patch: &Value,
) -> Result<Map<String, Value>, DomainError> {
    let Value::Object(members) = patch else {
        return Err(DomainError::invalid(
            "",
            "a merge patch of properties must be a JSON object",
        ));
    };
    if properties.is_empty() {
        // Every new profile of an import lands here: copying the patch once is cheaper than
        // merging it member by member into nothing.
        return Ok(without_nulls(members));
    }
    let mut doc = Value::Object(properties.clone());
    json_patch::merge(&mut doc, patch);
    match doc {
        Value::Object(map) => Ok(map),
        _ => unreachable!("merging an object patch into an object yields an object"),
    }
}

/// A merge patch applied to an empty object (RFC 7396): its members, less those that are
/// null, at every level of nested objects (nulls inside arrays stay: arrays are values).
fn without_nulls(members: &Map<String, Value>) -> Map<String, Value> {
    members
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, value)| {
            let value = match value {
                Value::Object(inner) => Value::Object(without_nulls(inner)),
                other => other.clone(),
            };
            (key.clone(), value)
        })
        .collect()
}

/// The value at `path`, creating missing intermediate objects; the slot is `Null` when the
/// property does not exist yet.
fn slot<'a>(
    props: &'a mut Map<String, Value>,
    path: &PropertyPath,
) -> Result<&'a mut Value, String> {
    let (last, parents) = path.segments().split_last().expect("paths are never empty");
    let mut current = props;
    for (depth, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        current = match entry {
            Value::Object(map) => map,
            other => {
                return Err(format!(
                    "`{}` holds {}, so it cannot contain `{path}`",
                    path.segments()[..=depth].join("."),
                    describe(other)
                ));
            }
        };
    }
    Ok(current.entry(last.clone()).or_insert(Value::Null))
}

/// The value at `path` if every step of it exists.
fn existing<'a>(props: &'a mut Map<String, Value>, path: &PropertyPath) -> Option<&'a mut Value> {
    let (first, rest) = path.segments().split_first()?;
    let mut current = props.get_mut(first)?;
    for key in rest {
        current = current.as_object_mut()?.get_mut(key)?;
    }
    Some(current)
}

fn unset(props: &mut Map<String, Value>, path: &PropertyPath) {
    let (last, parents) = path.segments().split_last().expect("paths are never empty");
    let mut current = props;
    for key in parents {
        match current.get_mut(key) {
            Some(Value::Object(map)) => current = map,
            _ => return,
        }
    }
    current.remove(last);
}

fn add(a: &Number, b: &Number) -> Result<Number, String> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x
            .checked_add(y)
            .map(Number::from)
            .ok_or_else(|| "the sum overflows a 64-bit integer".to_owned());
    }
    let sum = a.as_f64().unwrap_or(f64::NAN) + b.as_f64().unwrap_or(f64::NAN);
    Number::from_f64(sum).ok_or_else(|| "the sum is not a finite number".to_owned())
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ops(value: Value) -> PropertyOps {
        serde_json::from_value(value).unwrap()
    }

    fn props(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn apply(o: Value, p: Value) -> Result<Value, DomainError> {
        ops(o).apply(&props(p), "").map(Value::Object)
    }

    #[test]
    fn set_creates_nested_objects() {
        let out = apply(
            json!({"set": {"prefs.theme": "dark", "plan": "pro"}}),
            json!({}),
        )
        .unwrap();
        assert_eq!(out, json!({"prefs": {"theme": "dark"}, "plan": "pro"}));
    }

    #[test]
    fn set_through_a_scalar_is_refused_and_changes_nothing() {
        let err = apply(json!({"set": {"plan.tier": 1}}), json!({"plan": "pro"})).unwrap_err();
        assert_eq!(
            err,
            DomainError::invalid(
                "/set/plan.tier",
                "`plan` holds a string, so it cannot contain `plan.tier`"
            )
        );
    }

    #[test]
    fn set_once_fills_only_missing_or_null() {
        let out = apply(
            json!({"set_once": {"a": 1, "b": 2, "c": 3}}),
            json!({"a": "kept", "b": null}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": "kept", "b": 2, "c": 3}));
    }

    #[test]
    fn increment_adds_and_starts_from_zero() {
        let out = apply(
            json!({"increment": {"n": 2, "m": 1.5, "s.deep": -1}}),
            json!({"n": 40}),
        )
        .unwrap();
        assert_eq!(out, json!({"n": 42, "m": 1.5, "s": {"deep": -1}}));
    }

    #[test]
    fn increment_refuses_non_numbers_instead_of_coercing() {
        let err = apply(json!({"increment": {"n": 1}}), json!({"n": "5"})).unwrap_err();
        assert_eq!(
            err,
            DomainError::invalid(
                "/increment/n",
                "cannot increment `n`: it holds a string, not a number"
            )
        );
        assert!(apply(json!({"increment": {"n": "1"}}), json!({})).is_err());
        assert!(apply(json!({"increment": {"n": 1}}), json!({"n": i64::MAX})).is_err());
    }

    #[test]
    fn append_and_remove_work_on_arrays_only() {
        let out = apply(
            json!({"append": {"tags": "b", "new": [1]}}),
            json!({"tags": ["a"]}),
        )
        .unwrap();
        assert_eq!(out, json!({"tags": ["a", "b"], "new": [[1]]}));
        let out = apply(
            json!({"remove": {"tags": "a", "missing": 1}}),
            json!({"tags": ["a", "b", "a"]}),
        )
        .unwrap();
        assert_eq!(out, json!({"tags": ["b"]}));
        assert!(apply(json!({"append": {"tags": 1}}), json!({"tags": {}})).is_err());
        assert!(apply(json!({"remove": {"tags": 1}}), json!({"tags": 3})).is_err());
    }

    #[test]
    fn unset_removes_nested_and_ignores_missing() {
        let out = apply(
            json!({"unset": ["a.b", "zz", "x.y.z"]}),
            json!({"a": {"b": 1, "c": 2}, "x": 1}),
        )
        .unwrap();
        assert_eq!(out, json!({"a": {"c": 2}, "x": 1}));
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let err = apply(
            json!({"increment": {"a": 1}, "append": {"b": 1}, "unset": [""]}),
            json!({"a": true, "b": "x"}),
        )
        .unwrap_err();
        let DomainError::Invalid(v) = err;
        let pointers: Vec<_> = v.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(pointers, ["/unset/0", "/increment/a", "/append/b"]);
    }

    #[test]
    fn unknown_operations_are_refused() {
        assert!(serde_json::from_value::<PropertyOps>(json!({"sett": {}})).is_err());
    }

    #[test]
    fn merge_patch_sets_merges_and_removes() {
        let out = merge_patch(
            &props(json!({"a": 1, "p": {"x": 1, "y": 2}})),
            &json!({"a": null, "p": {"y": 3}, "n": {"z": null}}),
        )
        .unwrap();
        assert_eq!(Value::Object(out), json!({"p": {"x": 1, "y": 3}, "n": {}}));
        assert!(merge_patch(&Map::new(), &json!([1])).is_err());
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1000i64..1000).prop_map(|n| json!(n)),
            "[a-c]{0,3}".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-d]", json_value(), 0..5)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn set_once_never_overwrites_a_present_value(doc in json_object(), key in "[a-d]", v in json_value()) {
            let before = doc.get(&key).cloned();
            let out = PropertyOps { set_once: [(key.clone(), v.clone())].into_iter().collect(), ..Default::default() }
                .apply(&doc, "").unwrap();
            match before {
                Some(old) if !old.is_null() => prop_assert_eq!(out.get(&key), Some(&old)),
                _ => prop_assert_eq!(out.get(&key), Some(&v)),
            }
        }

        #[test]
        fn set_then_read_gives_the_value_and_touches_nothing_else(doc in json_object(), key in "[a-d]", v in json_value()) {
            let out = PropertyOps { set: [(key.clone(), v.clone())].into_iter().collect(), ..Default::default() }
                .apply(&doc, "").unwrap();
            prop_assert_eq!(out.get(&key), Some(&v));
            for (k, old) in &doc {
                if k != &key { prop_assert_eq!(out.get(k), Some(old)); }
            }
        }

        #[test]
        fn increments_compose(start in -1_000_000i64..1_000_000, a in -1000i64..1000, b in -1000i64..1000) {
            let doc: Map<String, Value> = [("n".to_owned(), json!(start))].into_iter().collect();
            let inc = |d: i64, doc: &Map<String, Value>| PropertyOps {
                increment: [("n".to_owned(), json!(d))].into_iter().collect(), ..Default::default()
            }.apply(doc, "").unwrap();
            prop_assert_eq!(inc(b, &inc(a, &doc)), inc(a + b, &doc));
        }

        #[test]
        fn increment_succeeds_exactly_on_numbers_and_missing_values(v in json_value()) {
            let doc: Map<String, Value> = [("n".to_owned(), v.clone())].into_iter().collect();
            let result = PropertyOps { increment: [("n".to_owned(), json!(1))].into_iter().collect(), ..Default::default() }
                .apply(&doc, "");
            prop_assert_eq!(result.is_ok(), v.is_number() || v.is_null());
        }

        #[test]
        fn merge_patch_is_idempotent(doc in json_object(), patch in json_object()) {
            let once = merge_patch(&doc, &Value::Object(patch.clone())).unwrap();
            let twice = merge_patch(&once, &Value::Object(patch)).unwrap();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn merge_patch_onto_nothing_is_rfc_7396(patch in json_object()) {
            let mut expected = json!({});
            json_patch::merge(&mut expected, &Value::Object(patch.clone()));
            prop_assert_eq!(Value::Object(merge_patch(&Map::new(), &Value::Object(patch)).unwrap()), expected);
        }

        #[test]
        fn merge_patch_with_an_empty_object_is_the_identity(doc in json_object()) {
            prop_assert_eq!(merge_patch(&doc, &json!({})).unwrap(), doc);
        }

        #[test]
        fn merge_patch_null_removes_and_values_replace(doc in json_object(), key in "[a-d]", v in json_leaf()) {
            let out = merge_patch(&doc, &json!({ key.clone(): v.clone() })).unwrap();
            if v.is_null() { prop_assert!(!out.contains_key(&key)); }
            else { prop_assert_eq!(out.get(&key), Some(&v)); }
        }
    }
}
