//! Chameleon's request parameters: the query string (with Rails-style brackets,
//! `filters[0][prop]=plan`, `expand[profile]=min`) and the JSON body read as one object.

use serde_json::{Map, Value};

/// Nested query keys deeper than this are refused.
const MAX_DEPTH: usize = 8;

/// The query string as a JSON object. `a[b][c]=v` nests; an object whose keys are all
/// indexes (`filters[0]`, `filters[1]`) becomes an array in index order; a value of
/// `filters` or `expand` that is JSON text is parsed (`filters=[{"prop": ...}]`).
pub fn query_object(query: Option<&str>) -> Result<Map<String, Value>, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|e| format!("the query string is not valid: {e}"))?;
    let mut root = Map::new();
    for (key, value) in pairs {
        let path = key_path(&key)?;
        let value = match (
            path.first().map(String::as_str),
            value.trim_start().chars().next(),
        ) {
            (Some("filters" | "expand"), Some('[' | '{')) => serde_json::from_str(&value)
                .map_err(|e| format!("`{key}` is not valid JSON: {e}"))?,
            _ => Value::String(value),
        };
        insert(&mut root, &path, value)
            .map_err(|()| format!("`{key}` is given twice or clashes with another parameter"))?;
    }
    Ok(root.into_iter().map(|(k, v)| (k, arrays(v))).collect())
}

/// `a[b][]` → `["a", "b", ""]`.
fn key_path(key: &str) -> Result<Vec<String>, String> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    let mut path = vec![head.to_owned()];
    while !rest.is_empty() {
        let Some(end) = rest.find(']').filter(|_| rest.starts_with('[')) else {
            return Err(format!(
                "the query parameter `{key}` has unbalanced brackets"
            ));
        };
        path.push(rest[1..end].to_owned());
        rest = &rest[end + 1..];
    }
    if path.len() > MAX_DEPTH {
        return Err(format!("the query parameter `{key}` nests too deep"));
    }
    Ok(path)
}

fn insert(map: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), ()> {
    let (first, rest) = path.split_first().expect("a key has a head");
    if rest.is_empty() {
        return match map.get_mut(first.as_str()) {
            None => {
                map.insert(first.clone(), value);
                Ok(())
            }
            // `tags[]=a&tags[]=b`
            Some(Value::Array(items)) => {
                items.push(value);
                Ok(())
            }
            Some(_) => Err(()),
        };
    }
    if rest.len() == 1 && rest[0].is_empty() {
        let entry = map
            .entry(first.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        return match entry {
            Value::Array(items) => {
                items.push(value);
                Ok(())
            }
            _ => Err(()),
        };
    }
    let entry = map
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    match entry {
        Value::Object(inner) => insert(inner, rest, value),
        _ => Err(()),
    }
}

/// Objects keyed `0`, `1`, ... become arrays, in index order.
fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let indexed = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if indexed {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse().expect("checked"), arrays(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(arrays).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brackets_nest_and_indexes_make_arrays() {
        let q = "filters[1][prop]=role&filters[0][prop]=plan&filters[0][op]=eq&filters[0][value]=pro&expand[profile]=min&limit=5";
        assert_eq!(
            Value::Object(query_object(Some(q)).unwrap()),
            json!({
                "filters": [{"prop": "plan", "op": "eq", "value": "pro"}, {"prop": "role"}],
                "expand": {"profile": "min"},
                "limit": "5"
            })
        );
    }

    #[test]
    fn json_text_and_empty_brackets_are_understood() {
        let q = "filters=%5B%7B%22prop%22%3A%22plan%22%7D%5D&uids[]=a&uids[]=b";
        assert_eq!(
            Value::Object(query_object(Some(q)).unwrap()),
            json!({"filters": [{"prop": "plan"}], "uids": ["a", "b"]})
        );
    }

    #[test]
    fn clashing_or_broken_keys_are_refused() {
        assert!(query_object(Some("a=1&a[b]=2")).is_err());
        assert!(query_object(Some("a[b=2")).is_err());
        assert!(query_object(Some("a=1&a=2")).is_err());
        assert!(query_object(Some("a[1][2][3][4][5][6][7][8]=x")).is_err());
        assert_eq!(query_object(None).unwrap(), Map::new());
    }
}
