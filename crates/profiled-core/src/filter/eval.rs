//! The reference semantics: does a profile match a filter?

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::time::{canonical_timestamp, format_canonical};
use super::{CompareOp, Context, Field, Filter, Literal, Segment};
use crate::Profile;

impl Filter {
    /// Whether the profile matches. This is the definition every backend's SQL must agree with.
    pub fn matches(&self, profile: &Profile, ctx: &Context) -> bool {
        match self {
            Filter::And(terms) => terms.iter().all(|t| t.matches(profile, ctx)),
            Filter::Or(terms) => terms.iter().any(|t| t.matches(profile, ctx)),
            Filter::Not(inner) => !inner.matches(profile, ctx),
            Filter::Compare {
                field,
                op: CompareOp::Ne,
                value,
            } => !equals_any(&values(field, profile), value, ctx),
            Filter::Compare {
                field,
                op: CompareOp::Eq,
                value,
            } => equals_any(&values(field, profile), value, ctx),
            Filter::Compare { field, op, value } => values(field, profile)
                .iter()
                .any(|v| ordered(v, value, *op, ctx)),
            Filter::In {
                field,
                values: literals,
            } => {
                let found = values(field, profile);
                literals.iter().any(|l| equals_any(&found, l, ctx))
            }
            Filter::Exists { field } => values(field, profile)
                .iter()
                .any(|v| !matches!(v, Scalar::Json(Value::Null))),
            // `segments` is a set of keys: containing one is holding it whole.
            Filter::Contains {
                field: Field::Segments,
                value,
            } => equals_any(&values(&Field::Segments, profile), value, ctx),
            Filter::Contains { field, value } => values(field, profile)
                .iter()
                .any(|v| contains(v, value, ctx)),
            Filter::StartsWith { field, prefix } => values(field, profile)
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.starts_with(prefix.as_str()))),
        }
    }
}

/// A value a field yields: JSON for properties and computed, text or a time otherwise.
enum Scalar<'a> {
    Json(&'a Value),
    Text(&'a str),
    Time(jiff::Timestamp),
}

impl Scalar<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Json(Value::String(s)) => Some(s),
            Scalar::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// The values a field yields: none when missing, one usually, several for an identity kind.
fn values<'a>(field: &Field, profile: &'a Profile) -> Vec<Scalar<'a>> {
    match field {
        Field::Id => vec![Scalar::Text(&profile.id.0)],
        Field::CreatedAt => vec![Scalar::Time(profile.created_at)],
        Field::UpdatedAt => vec![Scalar::Time(profile.updated_at)],
        Field::Identity(kind) => profile
            .identities
            .iter()
            .filter(|i| i.kind.as_str() == kind)
            .map(|i| Scalar::Text(&i.value))
            .collect(),
        Field::Segments => profile
            .segments
            .iter()
            .map(|key| Scalar::Text(key))
            .collect(),
        Field::Property(_) | Field::Computed(_) | Field::Location(_) | Field::Device(_) => field
            .json_path()
            .and_then(|(column, path)| lookup(profile.document(column), path))
            .map(Scalar::Json)
            .into_iter()
            .collect(),
    }
}

/// The value at a path inside a JSON object (`properties` or `computed`), if there is one.
pub fn lookup<'a>(root: &'a serde_json::Map<String, Value>, path: &[Segment]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let Segment::Key(first) = first else {
        return None;
    };
    let mut current = root.get(first)?;
    for segment in rest {
        current = match (segment, current) {
            (Segment::Key(k), Value::Object(o)) => o.get(k)?,
            (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// `=` over every value a field yields. `= null` holds when there is no value or a null one.
fn equals_any(values: &[Scalar<'_>], literal: &Literal, ctx: &Context) -> bool {
    if let Literal::Null = literal {
        return values.is_empty()
            || values
                .iter()
                .any(|v| matches!(v, Scalar::Json(Value::Null)));
    }
    values.iter().any(|v| equals(v, literal, ctx))
}

fn equals(value: &Scalar<'_>, literal: &Literal, ctx: &Context) -> bool {
    match (value, literal) {
        (Scalar::Json(Value::Null), Literal::Null) => true,
        (Scalar::Json(Value::Bool(a)), Literal::Bool(b)) => a == b,
        (Scalar::Json(Value::Number(a)), Literal::Number(b)) => {
            compare_numbers(a, b) == Some(Ordering::Equal)
        }
        (Scalar::Time(t), Literal::Time(l)) => *t == l.resolve(ctx.now),
        (v, Literal::Time(l)) => {
            v.as_str().and_then(canonical_timestamp) == Some(format_canonical(l.resolve(ctx.now)))
        }
        (v, Literal::String(s)) => v.as_str() == Some(s.as_str()),
        _ => false,
    }
}

fn ordered(value: &Scalar<'_>, literal: &Literal, op: CompareOp, ctx: &Context) -> bool {
    let ordering = match (value, literal) {
        (Scalar::Json(Value::Number(a)), Literal::Number(b)) => compare_numbers(a, b),
        (Scalar::Time(t), Literal::Time(l)) => Some(t.cmp(&l.resolve(ctx.now))),
        (v, Literal::Time(l)) => v.as_str().and_then(canonical_timestamp).map(|s| {
            s.as_str()
                .cmp(format_canonical(l.resolve(ctx.now)).as_str())
        }),
        (v, Literal::String(s)) => v.as_str().map(|v| v.as_bytes().cmp(s.as_bytes())),
        _ => None,
    };
    ordering.is_some_and(|o| match op {
        CompareOp::Lt => o.is_lt(),
        CompareOp::Le => o.is_le(),
        CompareOp::Gt => o.is_gt(),
        CompareOp::Ge => o.is_ge(),
        CompareOp::Eq => o.is_eq(),
        CompareOp::Ne => o.is_ne(),
    })
}

fn contains(value: &Scalar<'_>, literal: &Literal, ctx: &Context) -> bool {
    match value {
        Scalar::Json(Value::Array(items)) => items.iter().any(|item| {
            if let Literal::Null = literal {
                item.is_null()
            } else {
                equals(&Scalar::Json(item), literal, ctx)
            }
        }),
        v => match (v.as_str(), literal) {
            (Some(s), Literal::String(needle)) => s.contains(needle.as_str()),
            _ => false,
        },
    }
}

/// Integers compare exactly; anything involving a float compares as floats.
pub(crate) fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Pushes `Not` down to the predicates; `negate` says whether an odd number of `Not`s is
/// above. An empty `And` is true and an empty `Or` false, so they negate into each other.
pub(super) fn push_not(filter: Filter, negate: bool) -> Filter {
    match filter {
        Filter::And(terms) => {
            let terms = terms.into_iter().map(|t| push_not(t, negate)).collect();
            if negate {
                Filter::Or(terms)
            } else {
                Filter::And(terms)
            }
        }
        Filter::Or(terms) => {
            let terms = terms.into_iter().map(|t| push_not(t, negate)).collect();
            if negate {
                Filter::And(terms)
            } else {
                Filter::Or(terms)
            }
        }
        Filter::Not(inner) => push_not(*inner, !negate),
        predicate if negate => Filter::Not(Box::new(predicate)),
        predicate => predicate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, ProfileId};
    use serde_json::json;

    fn profile(properties: Value) -> Profile {
        let now: jiff::Timestamp = "2026-11-22T12:00:00Z".parse().unwrap();
        let mut p = Profile::new(ProfileId("p1".into()), now, 50.0);
        p.properties = properties.as_object().unwrap().clone();
        p.identities = vec![
            Identity::new_unchecked("email", "a@x.io"),
            Identity::new_unchecked("email", "b@y.io"),
        ];
        p.segments = ["trial".to_owned(), "vip".to_owned()].into();
        p
    }

    fn check(filter: &str, properties: Value) -> bool {
        let ctx = Context {
            now: "2026-11-22T12:00:00Z".parse().unwrap(),
        };
        let f = Filter::parse(filter).unwrap();
        let result = f.matches(&profile(properties.clone()), &ctx);
        assert_eq!(
            f.clone().normalized().matches(&profile(properties), &ctx),
            result,
            "normal form differs: {filter}"
        );
        result
    }

    #[test]
    fn comparisons_are_type_strict() {
        assert!(check(r#"properties.n = 5"#, json!({"n": 5.0})));
        assert!(!check(r#"properties.n = "5""#, json!({"n": 5})));
        assert!(!check(r#"properties.b = 1"#, json!({"b": true})));
        assert!(!check(r#"properties.s > 1"#, json!({"s": "2"})));
        assert!(
            check(r#"properties.s > "10""#, json!({"s": "9"})),
            "strings compare as text"
        );
        assert!(!check(r#"properties.o = "{}""#, json!({"o": {}})));
    }

    #[test]
    fn missing_and_null_are_equal_to_null_and_not_equal_to_values() {
        assert!(check("properties.x = null", json!({})));
        assert!(check("properties.x = null", json!({"x": null})));
        assert!(check(r#"properties.x != "a""#, json!({})));
        assert!(!check("properties.x exists", json!({"x": null})));
        assert!(!check("properties.x < 5", json!({})));
        assert!(check("not properties.x < 5", json!({})));
    }

    #[test]
    fn contains_means_array_membership_or_substring() {
        assert!(check(
            r#"properties.tags contains "b""#,
            json!({"tags": ["a", "b"]})
        ));
        assert!(check(
            r#"properties.tags contains 2"#,
            json!({"tags": [1, 2]})
        ));
        assert!(check(
            r#"properties.name contains "da L""#,
            json!({"name": "Ada Lovelace"})
        ));
        assert!(!check(
            r#"properties.tags contains "b""#,
            json!({"tags": {"b": 1}})
        ));
        assert!(check(
            r#"properties.name starts_with "Ada""#,
            json!({"name": "Ada Lovelace"})
        ));
    }

    #[test]
    fn identity_fields_hold_when_any_value_does() {
        assert!(check(r#"identities.email = "b@y.io""#, json!({})));
        assert!(check(r#"identities.email starts_with "a@""#, json!({})));
        assert!(!check(r#"identities.email != "b@y.io""#, json!({})));
        assert!(check(r#"identities.phone = null"#, json!({})));
        assert!(!check(r#"identities.phone exists"#, json!({})));
    }

    #[test]
    fn segments_hold_whole_keys() {
        assert!(check(r#"segments contains "vip""#, json!({})));
        assert!(!check(r#"segments contains "vi""#, json!({})));
        assert!(check(r#"segments = "trial""#, json!({})));
        assert!(check(r#"segments in ["x", "vip"]"#, json!({})));
        assert!(check(r#"not segments contains "churned""#, json!({})));
        assert!(check("segments exists", json!({})));
        assert!(!check("segments = null", json!({})));
    }

    #[test]
    fn a_filter_knows_whether_the_clock_moves_it() {
        let moves = |text: &str| Filter::parse(text).unwrap().depends_on_now();
        assert!(moves("computed.last_seen_at < now-30d"));
        assert!(moves(
            r#"properties.plan = "pro" or not updated_at > now-1h"#
        ));
        assert!(!moves("created_at > 2026-01-01T00:00:00Z"));
        assert!(!moves(r#"properties.plan = "pro""#));
        let names_segments = |text: &str| {
            Filter::parse(text)
                .unwrap()
                .names_field(&|f| matches!(f, Field::Segments))
        };
        assert!(names_segments(r#"properties.a = 1 and not segments = "x""#));
        assert!(!names_segments("properties.a = 1"));
    }

    #[test]
    fn times_compare_with_created_at_and_canonical_strings() {
        assert!(check("created_at = 2026-11-22T12:00:00Z", json!({})));
        assert!(check(
            "created_at > now-1d and created_at <= now",
            json!({})
        ));
        assert!(check(
            "properties.t > 2026-01-01T00:00:00Z",
            json!({"t": "2026-06-01T00:00:00.000Z"})
        ));
        assert!(check(
            "properties.t = 2026-06-01T00:00:00Z",
            json!({"t": "2026-06-01T00:00:00.000Z"})
        ));
        assert!(!check(
            "properties.t > 2026-01-01T00:00:00Z",
            json!({"t": "June 1st"})
        ));
        assert!(check(
            "properties.t < now",
            json!({"t": "2026-11-22T11:59:59.999999Z"})
        ));
    }

    #[test]
    fn nested_paths_and_indexes() {
        assert!(check(
            r#"properties.a.b[1].c = "x""#,
            json!({"a": {"b": [{}, {"c": "x"}]}})
        ));
        assert!(!check(
            r#"properties.a.b[5] exists"#,
            json!({"a": {"b": [1]}})
        ));
    }
}
