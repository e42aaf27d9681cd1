//! Import lines: what one line of an NDJSON or CSV import asks for, parsed and checked
//! before anything is written (a bad line fails alone and changes nothing).
//!
//! NDJSON: `{"operation": "UPSERT" | "DELETE", "identities": {...}, "properties": {...},
//! "mode": "merge" | "replace"}`; `operation` defaults to `UPSERT` and `mode` to `merge`.
//! CSV: a header naming identity columns (`identities.<kind>`, or a well-known kind such as
//! `user_id` or `email`) and property columns (any other name; dots nest,
//! `address.city`); a type may be declared after a colon (`age:number`).

use serde_json::{Map, Value};

use crate::identity::{Identity, IdentityKind, IdentityMap};
use crate::limits::Limits;

/// How an upsert's properties meet the stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A JSON merge patch (RFC 7396): nested objects merge, `null` removes a key.
    Merge,
    /// The properties replace the stored ones.
    Replace,
}

/// One line's command.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportCommand {
    Upsert {
        identities: Vec<Identity>,
        properties: Map<String, Value>,
        mode: Mode,
    },
    Delete {
        identities: Vec<Identity>,
    },
    /// An upsert whose change is property operations: vendors' import formats map onto it.
    /// Without `create`, identities that lead to no profile skip the line.
    Edit {
        identities: Vec<Identity>,
        ops: crate::ops::PropertyOps,
        create: bool,
    },
}

impl ImportCommand {
    pub fn identities(&self) -> &[Identity] {
        match self {
            ImportCommand::Upsert { identities, .. }
            | ImportCommand::Delete { identities }
            | ImportCommand::Edit { identities, .. } => identities,
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    identities: Option<IdentityMap>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
    #[serde(default)]
    mode: Option<String>,
}

/// Parses one NDJSON line; the error is the reason the line fails.
pub fn parse_ndjson(line: &str, limits: &Limits) -> Result<ImportCommand, String> {
    let line: Line = serde_json::from_str(line).map_err(|e| format!("not a JSON command: {e}"))?;
    let identities = match &line.identities {
        Some(map) => map.parse("/identities", limits).map_err(describe)?,
        None => Vec::new(),
    };
    if identities.is_empty() {
        return Err("name at least one identity in `identities`".into());
    }
    match line.operation.as_deref().unwrap_or("UPSERT") {
        "UPSERT" | "upsert" => {
            let mode = match line.mode.as_deref().unwrap_or("merge") {
                "merge" => Mode::Merge,
                "replace" => Mode::Replace,
                other => return Err(format!("`mode` is `merge` or `replace`, not `{other}`")),
            };
            let properties = line.properties.unwrap_or_default();
            limits
                .check_properties(&properties, "/properties")
                .map_err(describe)?;
            Ok(ImportCommand::Upsert {
                identities,
                properties,
                mode,
            })
        }
        "DELETE" | "delete" => {
            if line.properties.is_some() || line.mode.is_some() {
                return Err("a DELETE takes only `identities`".into());
            }
            Ok(ImportCommand::Delete { identities })
        }
        other => Err(format!("`operation` is UPSERT or DELETE, not `{other}`")),
    }
}

fn describe(err: crate::DomainError) -> String {
    match err {
        crate::DomainError::Invalid(violations) => violations
            .iter()
            .map(|v| format!("{}: {}", v.pointer, v.message))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// The type of a CSV property column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    /// Integers and decimals become numbers, `true`/`false` booleans, the rest strings.
    Inferred,
    String,
    Number,
    Boolean,
    /// The cell is JSON.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
enum CsvColumn {
    Identity(String),
    Property(Vec<String>, ColumnType),
}

/// The meaning of a CSV file's columns, read from its header.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvLayout {
    columns: Vec<CsvColumn>,
}

/// Identity kinds a bare CSV column name stands for.
const WELL_KNOWN_KINDS: [&str; 5] = ["user_id", "anonymous_id", "email", "phone", "uid"];

impl CsvLayout {
    pub fn from_header<'a>(header: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut columns = Vec::new();
        for name in header {
            let name = name.trim();
            let (name, declared) = match name.rsplit_once(':') {
                Some((n, t)) if !n.starts_with("identities.") => (n, Some(t)),
                _ => (name, None),
            };
            if let Some(kind) = name.strip_prefix("identities.") {
                IdentityKind::parse(kind)?;
                columns.push(CsvColumn::Identity(kind.to_owned()));
                continue;
            }
            if declared.is_none() && WELL_KNOWN_KINDS.contains(&name) {
                columns.push(CsvColumn::Identity(name.to_owned()));
                continue;
            }
            let ty = match declared {
                None => ColumnType::Inferred,
                Some("string") => ColumnType::String,
                Some("number") => ColumnType::Number,
                Some("boolean") => ColumnType::Boolean,
                Some("json") => ColumnType::Json,
                Some(other) => {
                    return Err(format!(
                        "column `{name}`: type `{other}` is not one of string, number, boolean, json"
                    ));
                }
            };
            let path: Vec<String> = name
                .strip_prefix("properties.")
                .unwrap_or(name)
                .split('.')
                .map(str::to_owned)
                .collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("column `{name}` is not a property path"));
            }
            columns.push(CsvColumn::Property(path, ty));
        }
        if !columns.iter().any(|c| matches!(c, CsvColumn::Identity(_))) {
            return Err(format!(
                "no identity column: name one `identities.<kind>` or one of {}",
                WELL_KNOWN_KINDS.join(", ")
            ));
        }
        Ok(Self { columns })
    }

    /// One row as an upsert (merge mode). Empty cells are left out.
    pub fn row<'a>(
        &self,
        cells: impl IntoIterator<Item = &'a str>,
        limits: &Limits,
    ) -> Result<ImportCommand, String> {
        let mut identities = Vec::new();
        let mut properties = Map::new();
        let mut count = 0;
        for (column, cell) in self.columns.iter().zip(cells) {
            count += 1;
            if cell.is_empty() {
                continue;
            }
            match column {
                CsvColumn::Identity(kind) => {
                    identities.push(Identity::parse(kind, cell, limits)?);
                }
                CsvColumn::Property(path, ty) => {
                    let value = typed(cell, *ty).map_err(|e| format!("{}: {e}", path.join(".")))?;
                    insert_at(&mut properties, path, value);
                }
            }
        }
        if count != self.columns.len() {
            return Err(format!(
                "the row has {count} cells; the header names {}",
                self.columns.len()
            ));
        }
        if identities.is_empty() {
            return Err("the row has no identity".into());
        }
        limits
            .check_properties(&properties, "/properties")
            .map_err(describe)?;
        Ok(ImportCommand::Upsert {
            identities,
            properties,
            mode: Mode::Merge,
        })
    }
}

fn typed(cell: &str, ty: ColumnType) -> Result<Value, String> {
    let number = |cell: &str| -> Option<Value> {
        if let Ok(i) = cell.parse::<i64>() {
            return Some(Value::from(i));
        }
        cell.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
    };
    match ty {
        ColumnType::String => Ok(Value::String(cell.to_owned())),
        ColumnType::Number => number(cell).ok_or_else(|| format!("`{cell}` is not a number")),
        ColumnType::Boolean => match cell {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{cell}` is not true or false")),
        },
        ColumnType::Json => serde_json::from_str(cell).map_err(|e| format!("not JSON: {e}")),
        ColumnType::Inferred => Ok(match cell {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            // Leading zeros (zip codes, ids) stay text.
            _ if cell.len() > 1 && cell.starts_with('0') && !cell.starts_with("0.") => {
                Value::String(cell.to_owned())
            }
            _ => number(cell).unwrap_or_else(|| Value::String(cell.to_owned())),
        }),
    }
}

fn insert_at(root: &mut Map<String, Value>, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("paths are not empty");
    let mut current = root;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = entry.as_object_mut().expect("made an object above");
    }
    current.insert(last.clone(), value);
}

/// What an import did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportCounts {
    /// Lines read (CSV: rows, the header not counted; blank lines not counted).
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    /// Upserts that changed nothing (a re-run of the same file).
    pub unchanged: u64,
    pub deleted: u64,
    /// Deletes of identities that lead to no profile.
    pub skipped: u64,
    pub failed: u64,
}

/// A line that failed, and why. Nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportFailure {
    /// 1-based, counting every line of the file (a CSV header is line 1).
    pub line: u64,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn ndjson_lines_default_to_a_merging_upsert() {
        let command = parse_ndjson(
            r#"{"identities": {"email": "Ada@X.io"}, "properties": {"plan": "pro"}}"#,
            &limits(),
        )
        .unwrap();
        assert_eq!(
            command,
            ImportCommand::Upsert {
                identities: vec![Identity::new_unchecked("email", "ada@x.io")],
                properties: json!({"plan": "pro"}).as_object().unwrap().clone(),
                mode: Mode::Merge,
            }
        );
        let delete = parse_ndjson(
            r#"{"operation": "DELETE", "identities": {"user_id": "u1"}}"#,
            &limits(),
        );
        assert!(matches!(delete, Ok(ImportCommand::Delete { .. })));
    }

    #[test]
    fn bad_ndjson_lines_say_why() {
        for (line, reason) in [
            ("{", "not a JSON command"),
            (r#"{"properties": {}}"#, "at least one identity"),
            (r#"{"identities": {"email": "nope"}}"#, "/identities/email"),
            (
                r#"{"identities": {"user_id": "u"}, "operation": "MERGE"}"#,
                "UPSERT or DELETE",
            ),
            (
                r#"{"identities": {"user_id": "u"}, "mode": "deep"}"#,
                "merge` or `replace",
            ),
            (
                r#"{"identities": {"user_id": "u"}, "extra": 1}"#,
                "unknown field",
            ),
            (
                r#"{"operation": "DELETE", "identities": {"user_id": "u"}, "properties": {}}"#,
                "only `identities`",
            ),
        ] {
            let err = parse_ndjson(line, &limits()).unwrap_err();
            assert!(err.contains(reason), "{line}: {err}");
        }
    }

    #[test]
    fn csv_columns_are_identities_or_typed_properties() {
        let layout = CsvLayout::from_header([
            "email",
            "identities.crm_id",
            "plan",
            "age:number",
            "zip",
            "address.city",
            "vip",
            "tags:json",
        ])
        .unwrap();
        let command = layout
            .row(
                [
                    "A@x.io", "c-7", "pro", "42", "01234", "Oslo", "true", r#"["a"]"#,
                ],
                &limits(),
            )
            .unwrap();
        let ImportCommand::Upsert {
            identities,
            properties,
            mode,
        } = command
        else {
            panic!("an upsert")
        };
        assert_eq!(mode, Mode::Merge);
        assert_eq!(
            identities,
            vec![
                Identity::new_unchecked("email", "a@x.io"),
                Identity::new_unchecked("crm_id", "c-7")
            ]
        );
        assert_eq!(
            Value::Object(properties),
            json!({"plan": "pro", "age": 42, "zip": "01234", "address": {"city": "Oslo"}, "vip": true, "tags": ["a"]})
        );
        // Empty cells are left out; a wrong type fails the row.
        let sparse = layout
            .row(["", "c-8", "", "", "", "", "", ""], &limits())
            .unwrap();
        assert_eq!(
            sparse,
            ImportCommand::Upsert {
                identities: vec![Identity::new_unchecked("crm_id", "c-8")],
                properties: Map::new(),
                mode: Mode::Merge
            }
        );
        let err = layout
            .row(["a@x.io", "", "", "forty", "", "", "", ""], &limits())
            .unwrap_err();
        assert!(err.contains("age"), "{err}");
        assert!(layout.row(["a@x.io"], &limits()).is_err());
        assert!(CsvLayout::from_header(["plan", "age"]).is_err());
        assert!(CsvLayout::from_header(["email", "age:date"]).is_err());
    }
}
