//! Search and count with the filter language; declared indexes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{Profile, ProfileId, RawProfile, Violation, WorkspaceId};
use profiled_store::{Keyset, PropertyIndex, SearchQuery, SortKey, SortValue};
use serde::{Deserialize, Serialize};

use super::{Result, Service, ServiceError};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;
const MAX_SORT_KEYS: usize = 4;

/// A search request, validated except for the cursor.
#[derive(Debug, Clone)]
pub struct Search {
    pub filter: Filter,
    pub sort: Vec<SortKey>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// A page of profiles: decoded, or with their documents as stored ([`RawProfile`]).
#[derive(Debug, Clone)]
pub struct Page<P = Profile> {
    pub profiles: Vec<P>,
    pub next_cursor: Option<String>,
}

/// What an opaque cursor holds: the sort it belongs to and the keyset to continue after.
#[derive(Serialize, Deserialize)]
struct Cursor {
    sort: String,
    values: Vec<serde_json::Value>,
    id: String,
}

fn sort_signature(sort: &[SortKey]) -> String {
    sort.iter()
        .map(|k| format!("{}{}", if k.descending { "-" } else { "+" }, k.field))
        .collect::<Vec<_>>()
        .join(",")
}

fn encode_cursor(sort: &[SortKey], keyset: &Keyset) -> String {
    let values = keyset
        .values
        .iter()
        .map(|v| match v {
            SortValue::Null => serde_json::Value::Null,
            SortValue::Int(i) => serde_json::json!(i),
            SortValue::Real(f) => serde_json::json!({ "real": f }),
            SortValue::Text(s) => serde_json::json!(s),
        })
        .collect();
    let cursor = Cursor {
        sort: sort_signature(sort),
        values,
        id: keyset.id.0.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).expect("a cursor serialises"))
}

fn decode_cursor(text: &str, sort: &[SortKey]) -> Result<Keyset> {
    let invalid = |why: &str| ServiceError::Invalid(vec![Violation::new("/cursor", why)]);
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| invalid("not a cursor of this API: pass `next_cursor` back unchanged"))?;
    let cursor: Cursor = serde_json::from_slice(&bytes)
        .map_err(|_| invalid("not a cursor of this API: pass `next_cursor` back unchanged"))?;
    if cursor.sort != sort_signature(sort) || cursor.values.len() != sort.len() {
        return Err(invalid("this cursor belongs to a search with another sort"));
    }
    let values = cursor
        .values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::Null => Ok(SortValue::Null),
            serde_json::Value::String(s) => Ok(SortValue::Text(s)),
            serde_json::Value::Number(n) => n.as_i64().map(SortValue::Int).ok_or(()),
            serde_json::Value::Object(o) => o
                .get("real")
                .and_then(|f| f.as_f64())
                .map(SortValue::Real)
                .ok_or(()),
            _ => Err(()),
        })
        .collect::<std::result::Result<Vec<_>, ()>>()
        .map_err(|_| invalid("not a cursor of this API: pass `next_cursor` back unchanged"))?;
    Ok(Keyset {
        values,
        id: ProfileId(cursor.id),
    })
}

/// Validates a limit: default 50, at most 1000.
pub fn limit(requested: Option<u32>) -> Result<u32> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ServiceError::Invalid(vec![Violation::new(
            "/limit",
            format!("a limit is 1 to {MAX_LIMIT}"),
        )])),
    }
}

/// Validates sort keys: any field but identities and segments, at most four.
pub fn sort_keys(keys: Vec<(String, bool)>) -> Result<Vec<SortKey>> {
    if keys.len() > MAX_SORT_KEYS {
        return Err(ServiceError::Invalid(vec![Violation::new(
            "/sort",
            format!("sort by at most {MAX_SORT_KEYS} fields"),
        )]));
    }
    keys.into_iter()
        .enumerate()
        .map(|(i, (field, descending))| {
            let pointer = format!("/sort/{i}/field");
            let field = Field::parse(&field).map_err(|m| ServiceError::Invalid(vec![Violation::new(&pointer, m)]))?;
            if matches!(field, Field::Identity(_) | Field::Segments) {
                return Err(ServiceError::Invalid(vec![Violation::new(
                    pointer,
                    "profiles cannot be sorted by identities or segments (a profile may have several)",
                )]));
            }
            Ok(SortKey { field, descending })
        })
        .collect()
}

impl Service {
    pub async fn search(&self, ws: WorkspaceId, search: Search) -> Result<Page> {
        let query = query(search)?;
        let page = self.store.search(ws, &query).await?;
        Ok(Page {
            profiles: page.profiles,
            next_cursor: page.next.map(|keyset| encode_cursor(&query.sort, &keyset)),
        })
    }

    /// [`Service::search`] for showing the profiles: their documents stay as stored.
    pub async fn search_raw(&self, ws: WorkspaceId, search: Search) -> Result<Page<RawProfile>> {
        let query = query(search)?;
        let page = self.store.search_raw(ws, &query).await?;
        Ok(Page {
            profiles: page.profiles,
            next_cursor: page.next.map(|keyset| encode_cursor(&query.sort, &keyset)),
        })
    }

    pub async fn count(&self, ws: WorkspaceId, filter: &Filter) -> Result<u64> {
        Ok(self.store.count(ws, filter, Timestamp::now()).await?)
    }

    /// Declares a `properties.*` or `computed.*` path indexed and builds the index.
    pub async fn declare_index(
        &self,
        ws: WorkspaceId,
        field: &str,
        value_type: ValueType,
    ) -> Result<PropertyIndex> {
        let field = indexable(field)?;
        Ok(self
            .store
            .declare_index(
                ws,
                &field,
                value_type,
                profiled_core::profile::to_micros(Timestamp::now()),
            )
            .await?)
    }

    pub async fn drop_index(&self, ws: WorkspaceId, field: &str) -> Result<()> {
        let field = indexable(field)?;
        if self.store.drop_index(ws, &field).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!("index on {field}")))
        }
    }

    pub async fn indexes(&self, ws: WorkspaceId) -> Result<Vec<PropertyIndex>> {
        Ok(self.store.property_indexes(ws).await?)
    }
}

/// The store's query for a search, its cursor decoded.
fn query(search: Search) -> Result<SearchQuery> {
    let after = search
        .cursor
        .as_deref()
        .map(|c| decode_cursor(c, &search.sort))
        .transpose()?;
    Ok(SearchQuery {
        filter: search.filter,
        now: Timestamp::now(),
        sort: search.sort,
        after,
        limit: search.limit,
    })
}

fn indexable(field: &str) -> Result<Field> {
    let invalid = |m: String| ServiceError::Invalid(vec![Violation::new("/field", m)]);
    let field = Field::parse(field).map_err(invalid)?;
    if field.json_path().is_none() {
        return Err(invalid(format!(
            "{field} needs no declaration: id, created_at, updated_at and identities are always indexed"
        )));
    }
    Ok(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort(text: &str, descending: bool) -> Vec<SortKey> {
        sort_keys(vec![(text.into(), descending)]).unwrap()
    }

    #[test]
    fn cursors_round_trip_every_sort_value() {
        let sort = sort_keys(vec![
            ("properties.a".into(), false),
            ("properties.b".into(), true),
            ("properties.c".into(), false),
            ("created_at".into(), false),
        ])
        .unwrap();
        let keyset = Keyset {
            values: vec![
                SortValue::Null,
                SortValue::Int(-3),
                SortValue::Real(2.0),
                SortValue::Text("x".into()),
            ],
            id: ProfileId("p1".into()),
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&sort, &keyset), &sort).unwrap(),
            keyset
        );
    }

    #[test]
    fn a_cursor_of_another_sort_or_garbage_is_refused() {
        let keyset = Keyset {
            values: vec![SortValue::Int(1)],
            id: ProfileId("p".into()),
        };
        let cursor = encode_cursor(&sort("properties.a", false), &keyset);
        assert!(decode_cursor(&cursor, &sort("properties.a", true)).is_err());
        assert!(decode_cursor("not-a-cursor!", &sort("properties.a", false)).is_err());
        assert!(
            decode_cursor(&URL_SAFE_NO_PAD.encode("{}"), &sort("properties.a", false)).is_err()
        );
    }

    #[test]
    fn limits_and_sorts_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert!(limit(Some(0)).is_err() && limit(Some(1001)).is_err());
        assert!(sort_keys(vec![("identities.email".into(), false)]).is_err());
        assert!(sort_keys(vec![("x".into(), false); 5]).is_err());
    }
}
