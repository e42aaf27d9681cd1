//! Search, count, query plans and declared indexes on PostgreSQL.
//!
//! Sorting reproduces SQLite's order of mixed types: missing and null first, then numbers
//! and booleans (as 0 and 1) by value, then strings, arrays and objects by their text. Each
//! JSON sort key is therefore three columns — a type rank, a number and a text — none of them
//! ever NULL, so keyset pagination compares plain tuples.

use jiff::Timestamp;
use profiled_core::filter::{Field, Filter, JsonColumn, ValueType};
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, AssertSqlSafe, PgConnection, PgPool, Row};

use super::filter::{compile, json_value, number_key, statement, string_key, time_key};
use crate::rows::{ProfileColumns, from_micros, micros};
use crate::search::{Keyset, PropertyIndex, SearchPage, SearchQuery, SortValue, sort_value};
use crate::sql::{Bind, Sql, index_name};
use crate::{Result, StoreError};

/// The columns every profile read selects, in the order [`profile_row`] decodes them. The
/// segments are looked up only when any profile is in any segment: an uncorrelated `EXISTS`,
/// which PostgreSQL evaluates once per statement (an InitPlan), in the statement's snapshot.
pub(super) const PROFILE_COLUMNS: &str = "p.id, p.properties::text AS properties, \
     p.computed::text AS computed, p.created_at, p.updated_at, p.version, p.set_once::text AS set_once, \
     p.location::text AS location, p.device::text AS device, p.activity::text AS activity, p.company_id, \
     p.identities, \
     CASE WHEN EXISTS (SELECT 1 FROM segment_members) THEN \
     (SELECT coalesce(json_agg(s.segment_key ORDER BY s.segment_key), '[]')::text FROM segment_members AS s \
      WHERE s.workspace_id = p.workspace_id AND s.profile_id = p.id) ELSE '[]' END AS segments";

pub(super) fn profile_row(row: &PgRow) -> Result<profiled_core::Profile> {
    columns_of(row)?.decode()
}

/// The columns of a row that selects [`PROFILE_COLUMNS`].
fn columns_of(row: &PgRow) -> Result<ProfileColumns> {
    Ok(ProfileColumns {
        id: row.try_get("id")?,
        properties: row.try_get("properties")?,
        computed: row.try_get("computed")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        set_once: row.try_get("set_once")?,
        identities: row.try_get("identities")?,
        location: row.try_get("location")?,
        device: row.try_get("device")?,
        activity: row.try_get("activity")?,
        company_id: row.try_get("company_id")?,
        segments: row.try_get("segments")?,
    })
}

/// How one sort key is ordered: the expressions it sorts by, and its value as JSON text.
struct SortColumns {
    parts: Vec<String>,
    json: String,
}

fn sort_columns(field: &Field) -> SortColumns {
    let json = |column: JsonColumn, path| {
        let v = format!("({})", json_value("p.", column, path));
        SortColumns {
            parts: vec![
                format!(
                    "(CASE jsonb_typeof({v}) WHEN 'number' THEN 1 WHEN 'boolean' THEN 1 \
                     WHEN 'string' THEN 2 WHEN 'array' THEN 2 WHEN 'object' THEN 2 ELSE 0 END)"
                ),
                format!(
                    "(CASE jsonb_typeof({v}) WHEN 'number' THEN ({v} #>> '{{}}')::numeric \
                     WHEN 'boolean' THEN (CASE WHEN {v} = 'true'::jsonb THEN 1 ELSE 0 END) ELSE 0 END)"
                ),
                format!(
                    "((CASE jsonb_typeof({v}) WHEN 'string' THEN {v} #>> '{{}}' \
                     WHEN 'array' THEN {v}::text WHEN 'object' THEN {v}::text ELSE '' END) COLLATE \"C\")"
                ),
            ],
            json: format!("coalesce({v}::text, 'null')"),
        }
    };
    match field {
        Field::Property(_) | Field::Computed(_) | Field::Location(_) | Field::Device(_) => {
            let (column, path) = field.json_path().expect("a JSON field");
            json(column, path)
        }
        Field::Id => SortColumns {
            parts: vec!["p.id".into()],
            json: "to_jsonb(p.id)::text".into(),
        },
        Field::CreatedAt => SortColumns {
            parts: vec!["p.created_at".into()],
            json: "p.created_at::text".into(),
        },
        Field::UpdatedAt => SortColumns {
            parts: vec!["p.updated_at".into()],
            json: "p.updated_at::text".into(),
        },
        Field::Identity(_) | Field::Segments => {
            unreachable!("the service refuses sorting by identities and segments")
        }
    }
}

/// The bound values of a sort value, one per part of its [`SortColumns`].
fn sort_binds(field: &Field, value: &SortValue) -> Vec<(Bind, &'static str)> {
    let number = |text: String| (Bind::Text(text), "numeric");
    match field {
        Field::Property(_) | Field::Computed(_) | Field::Location(_) | Field::Device(_) => {
            let (rank, num, text) = match value {
                SortValue::Null => (0, "0".to_owned(), String::new()),
                SortValue::Int(i) => (1, i.to_string(), String::new()),
                SortValue::Real(f) => (1, f.to_string(), String::new()),
                SortValue::Text(s) => (2, "0".to_owned(), s.clone()),
            };
            vec![
                (Bind::Int(rank), "int"),
                number(num),
                (Bind::Text(text), "text"),
            ]
        }
        _ => vec![match value {
            SortValue::Int(i) => (Bind::Int(*i), "bigint"),
            SortValue::Real(f) => (Bind::Int(*f as i64), "bigint"),
            SortValue::Text(s) => (Bind::Text(s.clone()), "text"),
            SortValue::Null => (Bind::Text(String::new()), "text"),
        }],
    }
}

/// Rows strictly after the keyset, in `ORDER BY part0, part1, …, p.id` order. No part is
/// ever NULL, so this is a plain lexicographic comparison.
fn after_keyset(sql: &mut Sql, parts: &[(String, bool, Bind, &str)], id: &ProfileId) {
    let Some(((expr, descending, bind, cast), rest)) = parts.split_first() else {
        sql.push("p.id > ");
        sql.bind(Bind::Text(id.0.clone()));
        return;
    };
    let bound = |sql: &mut Sql| {
        sql.push("CAST(");
        sql.bind(bind.clone());
        sql.push(&format!(" AS {cast})"));
    };
    sql.push(&format!("({expr} {} ", if *descending { "<" } else { ">" }));
    bound(sql);
    sql.push(&format!(" OR ({expr} = "));
    bound(sql);
    sql.push(" AND ");
    after_keyset(sql, rest, id);
    sql.push("))");
}

fn search_sql(ws: WorkspaceId, query: &SearchQuery) -> Sql {
    let keys: Vec<(SortColumns, bool)> = query
        .sort
        .iter()
        .map(|k| (sort_columns(&k.field), k.descending))
        .collect();
    let mut sql = statement();
    sql.push(&format!("SELECT {PROFILE_COLUMNS}"));
    for (i, (columns, _)) in keys.iter().enumerate() {
        sql.push(&format!(", {} AS k{i}", columns.json));
    }
    sql.push(" FROM profiles AS p WHERE p.workspace_id = ");
    sql.bind(Bind::Int(ws.0));
    sql.push(" AND ");
    compile(&query.filter, query.now, &mut sql);
    if let Some(keyset) = &query.after {
        let mut parts = Vec::new();
        for ((columns, descending), (key, value)) in
            keys.iter().zip(query.sort.iter().zip(&keyset.values))
        {
            for (part, (bind, cast)) in columns.parts.iter().zip(sort_binds(&key.field, value)) {
                parts.push((part.clone(), *descending, bind, cast));
            }
        }
        sql.push(" AND ");
        after_keyset(&mut sql, &parts, &keyset.id);
    }
    let mut order: Vec<String> = keys
        .iter()
        .flat_map(|(columns, descending)| {
            columns
                .parts
                .iter()
                .map(move |part| format!("{part} {}", if *descending { "DESC" } else { "ASC" }))
        })
        .collect();
    // Ids are unique, so a sort by id needs no tie-break.
    if !query.sort.iter().any(|k| k.field == Field::Id) {
        order.push("p.id ASC".into());
    }
    sql.push(&format!(" ORDER BY {} LIMIT ", order.join(", ")));
    sql.bind(Bind::Int(i64::from(query.limit)));
    sql
}

pub(super) fn arguments(binds: Vec<Bind>) -> Result<PgArguments> {
    let mut args = PgArguments::default();
    for bind in binds {
        let added = match bind {
            Bind::Int(i) => args.add(i),
            Bind::Real(f) => args.add(f),
            Bind::Text(s) => args.add(s),
        };
        added.map_err(|e| StoreError::Backend(sqlx::Error::Encode(e)))?;
    }
    Ok(args)
}

/// A page of a search, each row decoded by `decode`.
pub(super) async fn search<P>(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    query: &SearchQuery,
    decode: fn(ProfileColumns) -> Result<P>,
) -> Result<SearchPage<P>> {
    let sql = search_sql(ws, query);
    let rows = sqlx::query_with(AssertSqlSafe(sql.text), arguments(sql.binds)?)
        .fetch_all(&mut *conn)
        .await?;
    let mut profiles = Vec::with_capacity(rows.len());
    for row in &rows {
        profiles.push(decode(columns_of(row)?)?);
    }
    let next = match rows.last() {
        Some(last) if rows.len() as u64 == u64::from(query.limit) => {
            let values = (0..query.sort.len())
                .map(|i| sort_value(&last.try_get::<String, _>(format!("k{i}").as_str())?))
                .collect::<Result<Vec<_>>>()?;
            Some(Keyset {
                values,
                id: ProfileId(last.try_get("id")?),
            })
        }
        _ => None,
    };
    Ok(SearchPage { profiles, next })
}

pub(super) async fn count(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    filter: &Filter,
    now: Timestamp,
) -> Result<u64> {
    let mut sql = statement();
    sql.push("SELECT count(*) FROM profiles AS p WHERE p.workspace_id = ");
    sql.bind(Bind::Int(ws.0));
    sql.push(" AND ");
    compile(filter, now, &mut sql);
    let n: i64 = sqlx::query_scalar_with(AssertSqlSafe(sql.text), arguments(sql.binds)?)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n as u64)
}

/// The plan PostgreSQL chooses for a search, one node per line.
pub(super) async fn explain(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    query: &SearchQuery,
) -> Result<String> {
    let sql = search_sql(ws, query);
    let rows = sqlx::query_with(
        AssertSqlSafe(format!("EXPLAIN {}", sql.text)),
        arguments(sql.binds)?,
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>(0)?))
        .collect::<Result<Vec<_>>>()
        .map(|lines| lines.join("\n"))
}

/// The indexed expression of a declared field and type, without a table prefix: JSONB for
/// numbers and booleans, "C"-collated text for strings, the canonical form for timestamps —
/// each exactly the expression the filter compiler writes for that type, type check included.
fn index_expression(field: &Field, value_type: ValueType) -> Result<String> {
    let (column, path) = field
        .json_path()
        .ok_or_else(|| StoreError::Corrupt(format!("{field} cannot be indexed")))?;
    Ok(match value_type {
        ValueType::String => string_key("", column, path),
        ValueType::Number => number_key("", column, path),
        ValueType::Boolean => format!("({})", json_value("", column, path)),
        ValueType::Timestamp => time_key("", column, path),
    })
}

pub(super) async fn declare_index(
    pool: &PgPool,
    ws: WorkspaceId,
    field: &Field,
    value_type: ValueType,
    now: Timestamp,
) -> Result<PropertyIndex> {
    let expression = index_expression(field, value_type)?;
    let name = index_name(&expression);
    let mut tx = pool.begin().await?;
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT index_name FROM property_indexes WHERE workspace_id = $1 AND field = $2 FOR UPDATE",
    )
    .bind(ws.0)
    .bind(field.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO property_indexes (workspace_id, field, value_type, index_name, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, field) DO UPDATE SET value_type = excluded.value_type, index_name = excluded.index_name",
    )
    .bind(ws.0)
    .bind(field.to_string())
    .bind(value_type.as_str())
    .bind(&name)
    .bind(micros(now))
    .execute(&mut *tx)
    .await?;
    // The name is ours (a hex digest) and the expression is built from a validated path.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE INDEX IF NOT EXISTS {name} ON profiles (workspace_id, {expression}, id)"
    )))
    .execute(&mut *tx)
    .await?;
    if let Some(old) = previous.filter(|old| *old != name) {
        drop_if_unused(&mut tx, &old).await?;
    }
    tx.commit().await?;
    sqlx::query("ANALYZE profiles").execute(pool).await?;
    Ok(PropertyIndex {
        field: field.clone(),
        value_type,
        created_at: now,
    })
}

pub(super) async fn drop_index(pool: &PgPool, ws: WorkspaceId, field: &Field) -> Result<bool> {
    let mut tx = pool.begin().await?;
    let name: Option<String> = sqlx::query_scalar(
        "DELETE FROM property_indexes WHERE workspace_id = $1 AND field = $2 RETURNING index_name",
    )
    .bind(ws.0)
    .bind(field.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(name) = &name {
        drop_if_unused(&mut tx, name).await?;
    }
    tx.commit().await?;
    Ok(name.is_some())
}

async fn drop_if_unused(conn: &mut PgConnection, name: &str) -> Result<()> {
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM property_indexes WHERE index_name = $1")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    if users == 0 {
        sqlx::query(AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn property_indexes(pool: &PgPool, ws: WorkspaceId) -> Result<Vec<PropertyIndex>> {
    let rows = sqlx::query(
        "SELECT field, value_type, created_at FROM property_indexes WHERE workspace_id = $1 ORDER BY field COLLATE \"C\"",
    )
    .bind(ws.0)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let field: String = r.try_get("field")?;
            let value_type: String = r.try_get("value_type")?;
            Ok(PropertyIndex {
                field: Field::parse(&field).map_err(StoreError::Corrupt)?,
                value_type: ValueType::parse(&value_type)
                    .ok_or_else(|| StoreError::Corrupt(format!("index type {value_type}")))?,
                created_at: from_micros(r.try_get("created_at")?)?,
            })
        })
        .collect()
}
