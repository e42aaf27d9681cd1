//! Search, count, query plans and declared indexes on SQLite.

use jiff::Timestamp;
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{ProfileId, WorkspaceId};
use rusqlite::Connection;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Row, SqliteConnection, SqlitePool};

use super::filter::{Bind, Sql, canonical_time, compile, json_value};
use super::{from_micros, micros};
use crate::rows::ProfileColumns;
use crate::search::{Keyset, PropertyIndex, SearchPage, SearchQuery, SortValue};
use crate::{Result, StoreError};
use profiled_core::{Profile, RawProfile};

/// The columns every profile read selects, in the order `columns_of` reads them: the row's
/// own, then the segments profile `p` is a member of, as a JSON array of keys. (Its identities
/// are a column of its own row: `0011_profile_identities.sql`.) A literal, so that the
/// statements built on it are too, and a read never formats its SQL.
///
/// The segments are looked up only when any profile is in any segment: that `EXISTS` does not
/// depend on the row, so SQLite answers it once per statement, in the statement's own
/// snapshot. Looking them up for every row cost a sixth of a search with no segments at all
/// (docs/benchmarks.md, session 15).
macro_rules! profile_columns {
    () => {
        "p.id, p.properties, p.computed, p.created_at, p.updated_at, p.version, p.set_once, \
         p.location, p.device, p.activity, p.company_id, p.identities, \
         CASE WHEN EXISTS (SELECT 1 FROM segment_members) THEN \
         (SELECT json_group_array(s.segment_key) FROM segment_members AS s \
         WHERE s.workspace_id = p.workspace_id AND s.profile_id = p.id) ELSE '[]' END AS segments"
    };
}
pub(super) use profile_columns;

/// How a read turns a row that starts with [`profile_columns!`] into a profile:
/// [`profile_of`] or [`raw_profile_of`].
pub(super) type Decode<P> = fn(&rusqlite::Row<'_>) -> Result<P>;

/// A row as a whole [`Profile`].
pub(super) fn profile_of(row: &rusqlite::Row<'_>) -> Result<Profile> {
    columns_of(row, true)?.decode()
}

/// A row as a [`RawProfile`], to be served. The two columns it does not show (`set_once`,
/// `activity`) are not copied out: two strings fewer for every row of a page.
pub(super) fn raw_profile_of(row: &rusqlite::Row<'_>) -> Result<RawProfile> {
    columns_of(row, false)?.decode_raw()
}

/// The columns of a row that starts with [`profile_columns!`]; without `all`, `set_once`
/// and `activity` are left empty.
fn columns_of(row: &rusqlite::Row<'_>, all: bool) -> Result<ProfileColumns> {
    let unless_served =
        |index: usize| -> Result<String> { Ok(if all { row.get(index)? } else { String::new() }) };
    Ok(ProfileColumns {
        id: row.get(0)?,
        properties: row.get(1)?,
        computed: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        version: row.get(5)?,
        set_once: unless_served(6)?,
        location: row.get(7)?,
        device: row.get(8)?,
        activity: unless_served(9)?,
        company_id: row.get(10)?,
        identities: row.get(11)?,
        segments: row.get(12)?,
    })
}

/// Where a search's sort keys start in its rows, after [`profile_columns!`].
const FIRST_SORT_KEY: usize = 13;

/// The SQL expression a sort key orders by.
fn sort_expression(field: &Field) -> String {
    match field {
        Field::Property(_) | Field::Computed(_) | Field::Location(_) | Field::Device(_) => {
            let (column, path) = field.json_path().expect("a JSON field");
            json_value("p.", column, path)
        }
        Field::Id => "p.id".into(),
        Field::CreatedAt => "p.created_at".into(),
        Field::UpdatedAt => "p.updated_at".into(),
        Field::Identity(_) | Field::Segments => {
            unreachable!("the service refuses sorting by identities and segments")
        }
    }
}

fn bind_sort_value(sql: &mut Sql, value: &SortValue) {
    sql.bind(match value {
        SortValue::Null => unreachable!("nulls are compared with IS NULL"),
        SortValue::Int(i) => Bind::Int(*i),
        SortValue::Real(f) => Bind::Real(*f),
        SortValue::Text(s) => Bind::Text(s.clone()),
    });
}

/// Rows strictly after the keyset, in the order `ORDER BY k0, k1, ..., p.id` gives (SQLite
/// puts NULLs first when ascending and last when descending).
fn after_keyset(sql: &mut Sql, keys: &[(String, bool)], keyset: &Keyset, level: usize) {
    if level == keys.len() {
        sql.push("p.id > ");
        sql.bind(Bind::Text(keyset.id.0.clone()));
        return;
    }
    let (expr, descending) = &keys[level];
    let value = &keyset.values[level];
    sql.push("(");
    match (value, descending) {
        (SortValue::Null, false) => sql.push(&format!("{expr} IS NOT NULL")),
        (SortValue::Null, true) => sql.push("0"),
        (v, false) => {
            sql.push(&format!("{expr} > "));
            bind_sort_value(sql, v);
        }
        (v, true) => {
            sql.push(&format!("({expr} < "));
            bind_sort_value(sql, v);
            sql.push(&format!(" OR {expr} IS NULL)"));
        }
    }
    sql.push(" OR (");
    match value {
        SortValue::Null => sql.push(&format!("{expr} IS NULL")),
        v => {
            sql.push(&format!("{expr} = "));
            bind_sort_value(sql, v);
        }
    }
    sql.push(" AND ");
    after_keyset(sql, keys, keyset, level + 1);
    sql.push("))");
}

fn search_sql(ws: WorkspaceId, query: &SearchQuery) -> Sql {
    let keys: Vec<(String, bool)> = query
        .sort
        .iter()
        .map(|k| (sort_expression(&k.field), k.descending))
        .collect();
    let mut sql = Sql::default();
    sql.push(concat!("SELECT ", profile_columns!()));
    for (i, (expr, _)) in keys.iter().enumerate() {
        sql.push(&format!(", json_quote({expr}) AS k{i}"));
    }
    sql.push(" FROM profiles AS p WHERE p.workspace_id = ");
    sql.bind(Bind::Int(ws.0));
    sql.push(" AND ");
    compile(ws, &query.filter, query.now, &mut sql);
    if let Some(keyset) = &query.after {
        sql.push(" AND ");
        after_keyset(&mut sql, &keys, keyset, 0);
    }
    let mut order: Vec<String> = keys
        .iter()
        .map(|(expr, descending)| format!("{expr} {}", if *descending { "DESC" } else { "ASC" }))
        .collect();
    // Ids are unique, so a sort by id needs no tie-break; `p.id DESC, p.id ASC` would also
    // keep SQLite from walking an index backwards (it sorted every match instead).
    if !query.sort.iter().any(|k| k.field == Field::Id) {
        order.push("p.id ASC".into());
    }
    sql.push(&format!(" ORDER BY {} LIMIT ", order.join(", ")));
    sql.bind(Bind::Int(i64::from(query.limit)));
    sql
}

fn arguments(binds: Vec<Bind>) -> Result<SqliteArguments> {
    let mut args = SqliteArguments::default();
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
pub(super) fn search<P>(
    conn: &Connection,
    ws: WorkspaceId,
    query: &SearchQuery,
    decode: Decode<P>,
) -> Result<SearchPage<P>> {
    let sql = search_sql(ws, query);
    let mut statement = conn.prepare_cached(&sql.text)?;
    let mut rows = statement.query(rusqlite::params_from_iter(&sql.binds))?;
    let mut profiles = Vec::with_capacity((query.limit as usize).min(1000));
    // Set only by the row that fills the page (LIMIT stops there).
    let mut next = None;
    while let Some(row) = rows.next()? {
        if profiles.len() + 1 == query.limit as usize {
            // The last row of a full page: the next page starts after its keys.
            let values = (0..query.sort.len())
                .map(|i| crate::search::sort_value(&row.get::<_, String>(FIRST_SORT_KEY + i)?))
                .collect::<Result<Vec<_>>>()?;
            next = Some(Keyset {
                values,
                id: ProfileId(row.get(0)?),
            });
        }
        profiles.push(decode(row)?);
    }
    Ok(SearchPage { profiles, next })
}

pub(super) fn count(
    conn: &Connection,
    ws: WorkspaceId,
    filter: &Filter,
    now: Timestamp,
) -> Result<u64> {
    let mut sql = Sql::default();
    sql.push("SELECT count(*) FROM profiles AS p WHERE p.workspace_id = ");
    sql.bind(Bind::Int(ws.0));
    sql.push(" AND ");
    compile(ws, filter, now, &mut sql);
    let n: i64 = conn
        .prepare_cached(&sql.text)?
        .query_row(rusqlite::params_from_iter(&sql.binds), |row| row.get(0))?;
    Ok(n as u64)
}

/// The query plan SQLite chooses for a search, one step per line.
pub(super) async fn explain(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    query: &SearchQuery,
) -> Result<String> {
    // EXPLAIN QUERY PLAN starts no read transaction, so on a connection opened before an
    // index was declared it would plan with the old schema. A real read reloads it first
    // (real searches do that themselves).
    sqlx::query("SELECT 1 FROM profiles LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let sql = search_sql(ws, query);
    let rows = sqlx::query_with(
        AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", sql.text)),
        arguments(sql.binds)?,
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("detail")?))
        .collect::<Result<Vec<_>>>()
        .map(|lines| lines.join("\n"))
}

/// The indexed expression of a declared field and type, without a table prefix.
fn index_expression(field: &Field, value_type: ValueType) -> Result<String> {
    let (column, path) = field
        .json_path()
        .ok_or_else(|| StoreError::Corrupt(format!("{field} cannot be indexed")))?;
    let value = json_value("", column, path);
    Ok(match value_type {
        ValueType::Timestamp => canonical_time(&value),
        ValueType::String | ValueType::Number | ValueType::Boolean => value,
    })
}

pub(super) async fn declare_index(
    pool: &SqlitePool,
    ws: WorkspaceId,
    field: &Field,
    value_type: ValueType,
    now: Timestamp,
) -> Result<PropertyIndex> {
    let expression = index_expression(field, value_type)?;
    let name = crate::sql::index_name(&expression);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT index_name FROM property_indexes WHERE workspace_id = ? AND field = ?",
    )
    .bind(ws.0)
    .bind(field.to_string())
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO property_indexes (workspace_id, field, value_type, index_name, created_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (workspace_id, field) DO UPDATE SET value_type = excluded.value_type, index_name = excluded.index_name",
    )
    .bind(ws.0)
    .bind(field.to_string())
    .bind(value_type.as_str())
    .bind(&name)
    .bind(micros(now))
    .execute(&mut *tx)
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE INDEX IF NOT EXISTS {name} ON profiles (workspace_id, {expression}, id)"
    )))
    .execute(&mut *tx)
    .await?;
    if let Some(old) = previous.filter(|old| *old != name) {
        drop_if_unused(&mut tx, &old).await?;
    }
    sqlx::query("ANALYZE profiles").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(PropertyIndex {
        field: field.clone(),
        value_type,
        created_at: now,
    })
}

pub(super) async fn drop_index(pool: &SqlitePool, ws: WorkspaceId, field: &Field) -> Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let name: Option<String> = sqlx::query_scalar(
        "DELETE FROM property_indexes WHERE workspace_id = ? AND field = ? RETURNING index_name",
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

async fn drop_if_unused(conn: &mut SqliteConnection, name: &str) -> Result<()> {
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM property_indexes WHERE index_name = ?")
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
    if users == 0 {
        // The name is ours (a hex digest), never client text.
        sqlx::query(AssertSqlSafe(format!("DROP INDEX IF EXISTS {name}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn property_indexes(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
) -> Result<Vec<PropertyIndex>> {
    let rows = sqlx::query("SELECT field, value_type, created_at FROM property_indexes WHERE workspace_id = ? ORDER BY field")
        .bind(ws.0)
        .fetch_all(&mut *conn)
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
