//! Chameleon's segmentation filter items (`{kind, prop, op, value}`), compiled to the native
//! filter language, so search, count and every backend answer them with one meaning.
//!
//! Chameleon sends values as strings (`"3"`, `"true"`), so a string that reads as a number or
//! a boolean also matches that number or boolean. `ex` holds when the property is present and
//! not null (profiled does not tell a stored `null` from a missing key).

use jiff::SignedDuration;
use profiled_core::Violation;
use profiled_core::filter::{CompareOp, Field, Filter, Literal, Segment, TimeLiteral};
use serde_json::{Number, Value};

use super::names::normalize_name;

/// Where each of Chameleon's built-in profile fields lives in profiled.
fn builtin_field(prop: &str) -> Option<Result<Field, &'static str>> {
    let computed = |key: &str| Field::Computed(vec![Segment::Key(key.into())]);
    Some(Ok(match prop {
        "id" => Field::Id,
        "uid" => Field::Identity("uid".into()),
        "email" => Field::Identity("email".into()),
        "created_at" => Field::CreatedAt,
        "updated_at" => Field::UpdatedAt,
        "percent" => computed("percent"),
        "last_seen_at" => computed("last_seen_at"),
        "last_seen_session_count" => computed("session_count"),
        "last_cleared_at" => computed("cleared_at"),
        "browser_k" => Field::Device(vec![Segment::Key("type".into())]),
        "company_id" | "browser_x" | "browser_tz" | "browser_l" | "browser_n" => {
            return Some(Err(
                "is derived when a profile is shown and cannot be filtered on in profiled",
            ));
        }
        _ => return None,
    }))
}

fn field(prop: &str) -> Result<Field, String> {
    if prop.is_empty() {
        return Err("name the property to compare in `prop`".into());
    }
    match builtin_field(prop) {
        Some(Ok(field)) => Ok(field),
        Some(Err(why)) => Err(format!("`{prop}` {why}")),
        None => Ok(Field::Property(vec![Segment::Key(normalize_name(prop))])),
    }
}

/// The literals a Chameleon value can stand for: a string also as the number or boolean it
/// spells.
fn literals(value: &Value) -> Vec<Literal> {
    match value {
        Value::Null => vec![Literal::Null],
        Value::Bool(b) => vec![Literal::Bool(*b)],
        Value::Number(n) => vec![Literal::Number(n.clone())],
        Value::String(s) => {
            let mut all = vec![Literal::String(s.clone())];
            if let Some(n) = number(s) {
                all.push(Literal::Number(n));
            }
            match s.as_str() {
                "true" => all.push(Literal::Bool(true)),
                "false" => all.push(Literal::Bool(false)),
                _ => {}
            }
            all
        }
        Value::Array(_) | Value::Object(_) => Vec::new(),
    }
}

fn number(s: &str) -> Option<Number> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(i.into());
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && !s.is_empty())
        .and_then(Number::from_f64)
}

/// The one literal an ordering compares with: a number, then a timestamp, then a string.
fn ordered(value: &Value) -> Option<Literal> {
    match value {
        Value::Number(n) => Some(Literal::Number(n.clone())),
        Value::String(s) => Some(if let Some(n) = number(s) {
            Literal::Number(n)
        } else if let Ok(t) = s.parse::<jiff::Timestamp>() {
            Literal::Time(TimeLiteral::Absolute(t))
        } else {
            Literal::String(s.clone())
        }),
        _ => None,
    }
}

/// `value` as a number of days before now.
fn days_ago(value: &Value) -> Option<Literal> {
    let days = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => number(s)?.as_f64()?,
        _ => return None,
    };
    if !(0.0..=100_000.0).contains(&days) {
        return None;
    }
    let seconds = (days * 86_400.0).round() as i64;
    Some(Literal::Time(TimeLiteral::Relative(
        SignedDuration::from_secs(-seconds),
    )))
}

/// The items of an `in-v` list: a comma-separated string, or an array.
fn list(value: &Value) -> Vec<Literal> {
    match value {
        Value::String(s) => s
            .split(',')
            .map(|item| Value::String(item.trim().to_owned()))
            .flat_map(|item| literals(&item))
            .collect(),
        Value::Array(items) => items.iter().flat_map(literals).collect(),
        other => literals(other),
    }
}

/// The text a substring test looks for.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn not(filter: Filter) -> Filter {
    Filter::Not(Box::new(filter))
}

fn any_of(terms: Vec<Filter>) -> Filter {
    if terms.len() == 1 {
        terms.into_iter().next().expect("one term")
    } else {
        Filter::Or(terms)
    }
}

/// One filter item; `at` is its JSON pointer.
fn item(item: &Value, at: &str) -> Result<Filter, Violation> {
    let invalid = |key: &str, message: String| Violation::new(format!("{at}{key}"), message);
    let Some(item) = item.as_object() else {
        return Err(invalid(
            "",
            "a filter is an object `{kind, prop, op, value}`".into(),
        ));
    };
    let get_str = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or_default();
    let value = item.get("value").unwrap_or(&Value::Null);
    match item
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("property")
    {
        "property" => {}
        "segment" => {
            let key = text(value)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| invalid("/value", "name the segment in `value`".into()))?;
            let member = Filter::Contains {
                field: Field::Segments,
                value: Literal::String(key),
            };
            return match get_str("op") {
                "" | "eq" | "in" | "in-a" | "ex" => Ok(member),
                "ne" | "nin" | "nin-a" | "nx" => Ok(not(member)),
                other => Err(invalid(
                    "/op",
                    format!("a segment filter takes `eq` or `ne`, not `{other}`"),
                )),
            };
        }
        other => {
            return Err(invalid(
                "/kind",
                format!(
                    "filters of kind `{other}` are not supported by profiled: use `property` or `segment`"
                ),
            ));
        }
    }
    let field = field(get_str("prop")).map_err(|m| invalid("/prop", m))?;
    let op = get_str("op");
    let bad_value = |what: &str| invalid("/value", format!("`{op}` compares with {what}"));
    let compare = |op: CompareOp, value: Literal| Filter::Compare {
        field: field.clone(),
        op,
        value,
    };
    let equal = || -> Result<Filter, Violation> {
        let values = literals(value);
        if values.is_empty() {
            return Err(bad_value("a string, a number, a boolean or null"));
        }
        Ok(if values.len() == 1 {
            compare(CompareOp::Eq, values.into_iter().next().expect("one"))
        } else {
            Filter::In {
                field: field.clone(),
                values,
            }
        })
    };
    let order = |op: CompareOp| -> Result<Filter, Violation> {
        ordered(value)
            .map(|v| compare(op, v))
            .ok_or_else(|| bad_value("a number, a string or a timestamp"))
    };
    let recent = |op: CompareOp| -> Result<Filter, Violation> {
        days_ago(value)
            .map(|v| compare(op, v))
            .ok_or_else(|| bad_value("a number of days (0 to 100000)"))
    };
    let substring = || -> Result<Filter, Violation> {
        text(value)
            .map(|s| Filter::Contains {
                field: field.clone(),
                value: Literal::String(s),
            })
            .ok_or_else(|| bad_value("a string"))
    };
    let one_of = || -> Result<Filter, Violation> {
        let values = list(value);
        if values.is_empty() {
            return Err(bad_value("a comma-separated list"));
        }
        Ok(Filter::In {
            field: field.clone(),
            values,
        })
    };
    let element = || -> Result<Filter, Violation> {
        let values = literals(value);
        if values.is_empty() {
            return Err(bad_value("a string, a number or a boolean"));
        }
        Ok(any_of(
            values
                .into_iter()
                .map(|value| Filter::Contains {
                    field: field.clone(),
                    value,
                })
                .collect(),
        ))
    };
    let exists = || Filter::Exists {
        field: field.clone(),
    };
    Ok(match op {
        "ex" => exists(),
        "nx" => not(exists()),
        "eq" => equal()?,
        "ne" => not(equal()?),
        "gt" => order(CompareOp::Gt)?,
        "gte" => order(CompareOp::Ge)?,
        "lt" => order(CompareOp::Lt)?,
        "lte" => order(CompareOp::Le)?,
        "gt-d" => recent(CompareOp::Gt)?,
        "lt-d" => recent(CompareOp::Lt)?,
        "in" => substring()?,
        "nin" => not(substring()?),
        "in-v" => one_of()?,
        "nin-v" => not(one_of()?),
        "in-a" => element()?,
        "nin-a" => not(element()?),
        "in-i" | "nin-i" => {
            return Err(invalid(
                "/op",
                format!(
                    "`{op}` (case-insensitive contains) is not supported by profiled; use `in` or `nin`"
                ),
            ));
        }
        "" => return Err(invalid("/op", "name the operation in `op`".into())),
        other => {
            return Err(invalid(
                "/op",
                format!(
                    "unknown operation `{other}`: use ex, nx, eq, ne, gt, gte, lt, lte, gt-d, lt-d, in, nin, in-v, nin-v, in-a or nin-a"
                ),
            ));
        }
    })
}

/// The filter `filters` (an array of items) and `filters_op` (`and`, the default, or `or`)
/// ask for.
pub fn compile(filters: Option<&Value>, filters_op: Option<&Value>) -> Result<Filter, Violation> {
    let or = match filters_op {
        None | Some(Value::Null) => false,
        Some(Value::String(op)) if op == "and" => false,
        Some(Value::String(op)) if op == "or" => true,
        Some(_) => {
            return Err(Violation::new(
                "/filters_op",
                "`filters_op` is `and` or `or`",
            ));
        }
    };
    let items = match filters {
        None | Some(Value::Null) => return Ok(Filter::all()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(Violation::new(
                "/filters",
                "`filters` is an array of `{kind, prop, op, value}` items",
            ));
        }
    };
    if items.len() > 100 {
        return Err(Violation::new("/filters", "send at most 100 filters"));
    }
    let terms = items
        .iter()
        .enumerate()
        .map(|(i, it)| item(it, &format!("/filters/{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if or && !terms.is_empty() {
        Filter::Or(terms)
    } else {
        Filter::And(terms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use profiled_core::filter::Context;
    use profiled_core::{Identity, Profile, ProfileId};
    use serde_json::json;

    fn profile(properties: Value) -> Profile {
        let now: Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        let mut p = Profile::new(ProfileId("p".into()), now, 40.0);
        p.properties = properties.as_object().unwrap().clone();
        p.attach([Identity::new_unchecked("uid", "u-1")]);
        p
    }

    fn holds(filters: Value, p: &Profile) -> bool {
        let filter = compile(Some(&filters), None).unwrap();
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        filter.matches(p, &Context { now })
    }

    fn one(prop: &str, op: &str, value: Value) -> Value {
        json!([{"kind": "property", "prop": prop, "op": op, "value": value}])
    }

    #[test]
    fn strings_from_query_strings_also_match_numbers_and_booleans() {
        let p = profile(json!({"team_size": 25, "admin": true, "plan": "pro"}));
        assert!(holds(one("team_size", "eq", json!("25")), &p));
        assert!(holds(one("team_size", "eq", json!(25)), &p));
        assert!(holds(one("admin", "eq", json!("true")), &p));
        assert!(holds(one("plan", "eq", json!("pro")), &p));
        assert!(!holds(one("plan", "ne", json!("pro")), &p));
        assert!(holds(one("team_size", "gt", json!("9")), &p));
        assert!(!holds(one("team_size", "lt", json!("9")), &p));
    }

    #[test]
    fn property_names_are_normalized_as_writes_are() {
        let p = profile(json!({"plan_name": "pro"}));
        assert!(holds(one("planName", "eq", json!("pro")), &p));
    }

    #[test]
    fn substring_list_and_array_operators_keep_chameleons_meanings() {
        let p =
            profile(json!({"email_domain": "acme.io", "role": "admin", "flags": ["beta_ui", "x"]}));
        assert!(holds(one("email_domain", "in", json!("acme")), &p));
        assert!(!holds(one("email_domain", "nin", json!("acme")), &p));
        assert!(holds(one("role", "in-v", json!("owner, admin")), &p));
        assert!(!holds(one("role", "nin-v", json!("owner,admin")), &p));
        assert!(holds(one("flags", "in-a", json!("beta_ui")), &p));
        assert!(holds(one("flags", "nin-a", json!("gamma")), &p));
        assert!(holds(one("role", "ex", Value::Null), &p));
        assert!(holds(one("missing", "nx", Value::Null), &p));
    }

    #[test]
    fn day_operators_count_back_from_now() {
        let p = profile(json!({"last_login_at": "2026-11-28T12:00:00Z"}));
        // Three days before "now" in `holds`.
        assert!(holds(one("last_login_at", "gt-d", json!(7)), &p));
        assert!(!holds(one("last_login_at", "gt-d", json!("2")), &p));
        assert!(holds(one("last_login_at", "lt-d", json!(2)), &p));
        assert!(holds(one("created_at", "lt-d", json!(0.5)), &p));
    }

    #[test]
    fn built_in_fields_map_to_identities_and_computed_values() {
        let p = profile(json!({}));
        assert!(holds(one("uid", "eq", json!("u-1")), &p));
        assert!(holds(one("percent", "lt", json!(50)), &p));
        assert!(holds(one("percent", "gte", json!("40")), &p));
        assert!(compile(Some(&one("browser_x", "gt", json!(3))), None).is_err());
    }

    #[test]
    fn filters_op_or_needs_only_one_item() {
        let p = profile(json!({"plan": "pro"}));
        let filters = json!([
            {"prop": "plan", "op": "eq", "value": "free"},
            {"prop": "plan", "op": "eq", "value": "pro"}
        ]);
        assert!(!holds(filters.clone(), &p));
        let filter = compile(Some(&filters), Some(&json!("or"))).unwrap();
        assert!(filter.matches(
            &p,
            &Context {
                now: Timestamp::now()
            }
        ));
    }

    #[test]
    fn bad_items_name_the_offending_key() {
        let cases = [
            (
                json!([{"prop": "plan", "op": "like", "value": "x"}]),
                "/filters/0/op",
            ),
            (json!([{"kind": "tour", "value": "t1"}]), "/filters/0/kind"),
            (json!([{"op": "eq", "value": "x"}]), "/filters/0/prop"),
            (
                json!([{"prop": "n", "op": "gt-d", "value": "soon"}]),
                "/filters/0/value",
            ),
            (
                json!([{"prop": "n", "op": "gt", "value": [1]}]),
                "/filters/0/value",
            ),
            (json!(["x"]), "/filters/0"),
            (json!({"prop": "n"}), "/filters"),
        ];
        for (filters, pointer) in cases {
            let err = compile(Some(&filters), None).unwrap_err();
            assert_eq!(err.pointer, pointer, "{filters}");
        }
        assert_eq!(
            compile(None, Some(&json!("xor"))).unwrap_err().pointer,
            "/filters_op"
        );
    }
}
