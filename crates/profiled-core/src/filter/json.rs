//! The JSON form:
//!
//! ```json
//! {"and": [
//!   {"field": "properties.plan", "op": "=", "value": "pro"},
//!   {"or": [{"field": "properties.age", "op": ">=", "value": 18},
//!           {"not": {"field": "properties.tags", "op": "contains", "value": "beta"}}]},
//!   {"field": "computed.last_seen_at", "op": ">", "value": {"$time": "now-7d"}}
//! ]}
//! ```
//! `op` is one of `=`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`, `exists`, `not exists`,
//! `contains`, `not contains`, `starts_with`, `not starts_with`. A time literal is
//! `{"$time": "2026-01-02T03:04:05Z" | "now-7d"}` (on `created_at`/`updated_at` a plain string
//! is read as a time too).

use serde_json::{Map, Value};

use super::parse::{MAX_PREDICATES, Op, ParseError, build};
use super::{CompareOp, Field, Filter, Literal, TimeLiteral};
use crate::error::pointer_token;

fn error(pointer: &str, message: impl Into<String>) -> ParseError {
    ParseError {
        position: None,
        pointer: Some(pointer.to_owned()),
        message: message.into(),
    }
}

pub(super) fn from_json(value: &Value) -> Result<Filter, ParseError> {
    let mut count = 0;
    node(value, "", 0, &mut count)
}

fn node(value: &Value, at: &str, depth: usize, count: &mut usize) -> Result<Filter, ParseError> {
    if depth > 64 {
        return Err(error(at, "filters nest at most 64 levels deep"));
    }
    let object = value
        .as_object()
        .ok_or_else(|| error(at, "a filter is a JSON object"))?;
    let only = |key: &str| object.len() == 1 && object.contains_key(key);
    if only("and") || only("or") {
        let key = if only("and") { "and" } else { "or" };
        let items = object[key]
            .as_array()
            .ok_or_else(|| error(&format!("{at}/{key}"), "expected a list of filters"))?;
        let terms = items
            .iter()
            .enumerate()
            .map(|(i, item)| node(item, &format!("{at}/{key}/{i}"), depth + 1, count))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if key == "and" {
            Filter::And(terms)
        } else {
            Filter::Or(terms)
        });
    }
    if only("not") {
        return Ok(Filter::Not(Box::new(node(
            &object["not"],
            &format!("{at}/not"),
            depth + 1,
            count,
        )?)));
    }
    *count += 1;
    if *count > MAX_PREDICATES {
        return Err(error(
            at,
            format!("a filter has at most {MAX_PREDICATES} conditions"),
        ));
    }
    predicate(object, at)
}

fn predicate(object: &Map<String, Value>, at: &str) -> Result<Filter, ParseError> {
    if let Some(unknown) = object
        .keys()
        .find(|k| !["field", "op", "value"].contains(&k.as_str()))
    {
        return Err(error(
            &format!("{at}/{}", pointer_token(unknown)),
            "unknown key: a condition is {\"field\", \"op\", \"value\"}; groups are {\"and\": [...]}, {\"or\": [...]}, {\"not\": {...}}",
        ));
    }
    let field_at = format!("{at}/field");
    let field = object.get("field").and_then(Value::as_str).ok_or_else(|| {
        error(
            &field_at,
            "expected the field as a string, e.g. \"properties.plan\"",
        )
    })?;
    let field = Field::parse(field).map_err(|m| error(&field_at, m))?;
    let op_at = format!("{at}/op");
    let op_text = object
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| error(&op_at, "expected the operator as a string"))?;
    let value_at = format!("{at}/value");
    let value = || {
        object
            .get("value")
            .ok_or_else(|| error(&value_at, "this operator needs a value"))
    };
    let (negated, op_name) = match op_text.strip_prefix("not ") {
        Some(rest) => (true, rest.trim()),
        None => (false, op_text),
    };
    let compare =
        |op| -> Result<Op, ParseError> { Ok(Op::Compare(op, literal(value()?, &value_at)?)) };
    let op = match (negated, op_name) {
        (false, "=" | "==") => compare(CompareOp::Eq)?,
        (false, "!=") => compare(CompareOp::Ne)?,
        (false, "<") => compare(CompareOp::Lt)?,
        (false, "<=") => compare(CompareOp::Le)?,
        (false, ">") => compare(CompareOp::Gt)?,
        (false, ">=") => compare(CompareOp::Ge)?,
        (_, "in") => {
            let items = value()?
                .as_array()
                .ok_or_else(|| error(&value_at, "`in` takes a list"))?;
            if items.len() > MAX_PREDICATES {
                return Err(error(
                    &value_at,
                    format!("a list has at most {MAX_PREDICATES} values"),
                ));
            }
            Op::In(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| literal(v, &format!("{value_at}/{i}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        (_, "exists") => Op::Exists,
        (_, "contains") => Op::Contains(literal(value()?, &value_at)?),
        (_, "starts_with") => Op::StartsWith(literal(value()?, &value_at)?),
        _ => return Err(error(&op_at, format!("unknown operator `{op_text}`"))),
    };
    let filter = build(field, op).map_err(|m| error(&op_at, m))?;
    Ok(if negated {
        Filter::Not(Box::new(filter))
    } else {
        filter
    })
}

fn literal(value: &Value, at: &str) -> Result<Literal, ParseError> {
    Ok(match value {
        Value::Null => Literal::Null,
        Value::Bool(b) => Literal::Bool(*b),
        Value::Number(n) => Literal::Number(n.clone()),
        Value::String(s) => Literal::String(s.clone()),
        Value::Object(o) if o.len() == 1 && o.contains_key("$time") => {
            let text = o["$time"].as_str().unwrap_or_default();
            Literal::Time(TimeLiteral::parse(text).ok_or_else(|| {
                error(
                    &format!("{at}/$time"),
                    "expected an RFC 3339 timestamp or now-7d",
                )
            })?)
        }
        _ => {
            return Err(error(
                at,
                "a value is a string, number, boolean, null or {\"$time\": ...}",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_json_form_equals_the_string_form() {
        let pairs = [
            (
                json!({"and": [{"field": "properties.plan", "op": "=", "value": "pro"}, {"not": {"field": "properties.tags", "op": "contains", "value": "x"}}]}),
                r#"properties.plan = "pro" and not properties.tags contains "x""#,
            ),
            (
                json!({"field": "properties.plan", "op": "not in", "value": ["a", 1]}),
                r#"properties.plan not in ["a", 1]"#,
            ),
            (
                json!({"field": "created_at", "op": ">", "value": "2026-01-01T00:00:00Z"}),
                "created_at > 2026-01-01T00:00:00Z",
            ),
            (
                json!({"field": "properties.t", "op": "<", "value": {"$time": "now-7d"}}),
                "properties.t < now-7d",
            ),
            (json!({"or": []}), "properties.a in []"),
        ];
        for (json, text) in pairs.iter().take(4) {
            assert_eq!(
                from_json(json).unwrap(),
                super::super::parse::parse(text).unwrap(),
                "{text}"
            );
        }
        assert_eq!(from_json(&pairs[4].0).unwrap(), Filter::Or(vec![]));
    }

    #[test]
    fn json_errors_carry_a_pointer() {
        let err = from_json(&json!({"and": [{"field": "properties.a", "op": "=", "value": 1}, {"field": "plan", "op": "=", "value": 1}]})).unwrap_err();
        assert_eq!(err.pointer.as_deref(), Some("/and/1/field"));
        let err = from_json(&json!({"field": "properties.a", "op": "~", "value": 1})).unwrap_err();
        assert_eq!(err.pointer.as_deref(), Some("/op"));
        let err =
            from_json(&json!({"field": "properties.a", "op": "=", "value": [1]})).unwrap_err();
        assert_eq!(err.pointer.as_deref(), Some("/value"));
        let err = from_json(&json!({"field": "properties.a", "op": "=", "valeu": 1})).unwrap_err();
        assert_eq!(err.pointer.as_deref(), Some("/valeu"));
    }
}
