//! Search, count and declared indexes: the storage side of the filter language.

use jiff::Timestamp;
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{Profile, ProfileId};

/// One sort key. Ties (and an empty sort) are broken by profile id, ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub field: Field,
    pub descending: bool,
}

/// The value of a sort key in a row, as the database holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// Where a page ends: the last row's sort values and id. The next page starts after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyset {
    pub values: Vec<SortValue>,
    pub id: ProfileId,
}

#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub filter: Filter,
    /// The moment relative times (`now-7d`) count from.
    pub now: Timestamp,
    pub sort: Vec<SortKey>,
    pub after: Option<Keyset>,
    pub limit: u32,
}

/// A page of profiles: decoded ([`Profile`]) or with their documents as stored
/// ([`profiled_core::RawProfile`]).
#[derive(Debug, Clone)]
pub struct SearchPage<P = Profile> {
    pub profiles: Vec<P>,
    /// Set when the page is full: the keyset to continue after.
    pub next: Option<Keyset>,
}

/// A property path a workspace declared indexed, with the type of values it is queried with.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyIndex {
    pub field: Field,
    pub value_type: ValueType,
    pub created_at: Timestamp,
}

/// A sort value selected as JSON text (`json_quote(…)` on SQLite, `jsonb::text` on
/// PostgreSQL). Booleans sort as 0 and 1, arrays and objects by their JSON text.
pub(crate) fn sort_value(quoted: &str) -> crate::Result<SortValue> {
    use serde_json::Value;
    let corrupt = || crate::StoreError::Corrupt(format!("sort value {quoted}"));
    Ok(match serde_json::from_str(quoted).map_err(|_| corrupt())? {
        Value::Null => SortValue::Null,
        Value::Bool(b) => SortValue::Int(i64::from(b)),
        Value::String(s) => SortValue::Text(s),
        Value::Number(n) if quoted.contains(['.', 'e', 'E']) => {
            SortValue::Real(n.as_f64().unwrap_or_default())
        }
        Value::Number(n) => SortValue::Int(n.as_i64().ok_or_else(corrupt)?),
        Value::Array(_) | Value::Object(_) => SortValue::Text(quoted.to_owned()),
    })
}
