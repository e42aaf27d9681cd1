//! Segments, their members, and companies.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::{from_micros, micros};
use crate::rows::{json_object, to_json};
use crate::{
    CompanyPage, CompanyRecord, Result, SegmentMember, SegmentMove, SegmentRecord, StoreError,
};

const SEGMENT_COLUMNS: &str = "workspace_id, key, name, filter, created_at, updated_at, version, \
     reconciled_version, reconciled_at, moves_with_clock";

fn segment_row(row: &SqliteRow) -> Result<(WorkspaceId, SegmentRecord)> {
    let filter: String = row.try_get("filter")?;
    Ok((
        WorkspaceId(row.try_get("workspace_id")?),
        SegmentRecord {
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            filter: serde_json::from_str(&filter)
                .map_err(|e| StoreError::Corrupt(format!("segment filter: {e}")))?,
            created_at: from_micros(row.try_get("created_at")?)?,
            updated_at: from_micros(row.try_get("updated_at")?)?,
            version: row.try_get("version")?,
            reconciled_version: row.try_get("reconciled_version")?,
            reconciled_at: row
                .try_get::<Option<i64>, _>("reconciled_at")?
                .map(from_micros)
                .transpose()?,
            moves_with_clock: row.try_get("moves_with_clock")?,
        },
    ))
}

pub(super) async fn list(pool: &SqlitePool, ws: WorkspaceId) -> Result<Vec<SegmentRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments WHERE workspace_id = ? ORDER BY key"
    )))
    .bind(ws.0)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| segment_row(r).map(|(_, s)| s))
    .collect()
}

pub(super) async fn save(pool: &SqlitePool, ws: WorkspaceId, s: &SegmentRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO segments (workspace_id, key, name, filter, created_at, updated_at, version, moves_with_clock) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, key) DO UPDATE SET \
         name = excluded.name, filter = excluded.filter, updated_at = excluded.updated_at, \
         version = excluded.version, moves_with_clock = excluded.moves_with_clock",
    )
    .bind(ws.0)
    .bind(&s.key)
    .bind(&s.name)
    .bind(s.filter.to_string())
    .bind(micros(s.created_at))
    .bind(micros(s.updated_at))
    .bind(s.version)
    .bind(s.moves_with_clock)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn delete(
    pool: &SqlitePool,
    ws: WorkspaceId,
    key: &str,
    now: Timestamp,
) -> Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM segment_members WHERE workspace_id = ? AND segment_key = ?")
        .bind(ws.0)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM segments WHERE workspace_id = ? AND key = ?")
        .bind(ws.0)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() > 0 {
        sqlx::query(
            "INSERT INTO segment_tombstones (workspace_id, key, deleted_at) VALUES (?, ?, ?) \
             ON CONFLICT (workspace_id, key) DO UPDATE SET deleted_at = excluded.deleted_at",
        )
        .bind(ws.0)
        .bind(key)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn members(
    pool: &SqlitePool,
    ws: WorkspaceId,
    key: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<SegmentMember>> {
    sqlx::query(
        "SELECT profile_id, since FROM segment_members WHERE workspace_id = ? AND segment_key = ? \
         AND profile_id > ? ORDER BY profile_id LIMIT ?",
    )
    .bind(ws.0)
    .bind(key)
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(SegmentMember {
            profile_id: ProfileId(r.try_get("profile_id")?),
            since: from_micros(r.try_get("since")?)?,
        })
    })
    .collect()
}

pub(super) async fn size(pool: &SqlitePool, ws: WorkspaceId, key: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM segment_members WHERE workspace_id = ? AND segment_key = ?",
    )
    .bind(ws.0)
    .bind(key)
    .fetch_one(pool)
    .await?;
    Ok(n as u64)
}

pub(super) async fn due(
    pool: &SqlitePool,
    now: Timestamp,
    settled: Timestamp,
    stale: Timestamp,
) -> Result<Vec<(WorkspaceId, SegmentRecord)>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {SEGMENT_COLUMNS} FROM segments WHERE (lease_until IS NULL OR lease_until < ?) AND \
         ((reconciled_version < version AND updated_at <= ?) OR (moves_with_clock AND reconciled_at <= ?)) \
         ORDER BY updated_at"
    )))
    .bind(micros(now))
    .bind(micros(settled))
    .bind(micros(stale))
    .fetch_all(pool)
    .await?
    .iter()
    .map(segment_row)
    .collect()
}

pub(super) async fn lease(
    pool: &SqlitePool,
    ws: WorkspaceId,
    key: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE segments SET lease_until = ? WHERE workspace_id = ? AND key = ? \
         AND (lease_until IS NULL OR lease_until < ?)",
    )
    .bind(micros(until))
    .bind(ws.0)
    .bind(key)
    .bind(micros(now))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn reconciled(
    pool: &SqlitePool,
    ws: WorkspaceId,
    key: &str,
    version: i64,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE segments SET reconciled_version = max(reconciled_version, ?), reconciled_at = ?, \
         lease_until = NULL WHERE workspace_id = ? AND key = ?",
    )
    .bind(version)
    .bind(micros(at))
    .bind(ws.0)
    .bind(key)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn sweep(pool: &SqlitePool, before: Timestamp) -> Result<u64> {
    // Only the keys of deleted segments are looked at (an index range each), never the
    // whole membership table; a key deleted and then defined again is left alone.
    let done = sqlx::query(
        "DELETE FROM segment_members WHERE EXISTS (SELECT 1 FROM segment_tombstones AS t \
         WHERE t.workspace_id = segment_members.workspace_id AND t.key = segment_members.segment_key \
         AND NOT EXISTS (SELECT 1 FROM segments AS s WHERE s.workspace_id = t.workspace_id AND s.key = t.key))",
    )
    .execute(pool)
    .await?;
    sqlx::query("DELETE FROM segment_tombstones WHERE deleted_at < ?")
        .bind(micros(before))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Writes segment entries and exits: one statement for all entries, one for all exits.
pub(super) async fn apply_moves(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    moves: &[SegmentMove],
) -> Result<()> {
    let entered: Vec<(&ProfileId, &String, Timestamp)> = moves
        .iter()
        .flat_map(|m| {
            m.moves
                .entered
                .iter()
                .map(move |k| (&m.profile_id, k, m.at))
        })
        .collect();
    for chunk in entered.chunks(1000) {
        let mut builder = QueryBuilder::<Sqlite>::new(
            "INSERT OR IGNORE INTO segment_members (workspace_id, segment_key, profile_id, since) ",
        );
        builder.push_values(chunk, |mut row, (id, key, at)| {
            row.push_bind(ws.0)
                .push_bind(key.as_str())
                .push_bind(id.0.as_str())
                .push_bind(micros(*at));
        });
        builder.build().execute(&mut *conn).await?;
    }
    let left: Vec<(&ProfileId, &String)> = moves
        .iter()
        .flat_map(|m| m.moves.left.iter().map(move |k| (&m.profile_id, k)))
        .collect();
    // An OR of whole primary keys: SQLite looks each up. (A row-value IN list, or the
    // workspace tested outside the OR, makes it scan the workspace's memberships.) Short
    // chunks keep the expression tree shallow.
    for chunk in left.chunks(100) {
        let mut builder = QueryBuilder::<Sqlite>::new("DELETE FROM segment_members WHERE ");
        let mut pairs = builder.separated(" OR ");
        for (id, key) in chunk {
            pairs.push("(workspace_id = ");
            pairs.push_bind_unseparated(ws.0);
            pairs.push_unseparated(" AND segment_key = ");
            pairs.push_bind_unseparated(key.as_str());
            pairs.push_unseparated(" AND profile_id = ");
            pairs.push_bind_unseparated(id.0.as_str());
            pairs.push_unseparated(")");
        }
        builder.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes a profile's memberships (it is deleted or merged away).
pub(super) async fn forget_profile(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM segment_members WHERE workspace_id = ? AND profile_id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const COMPANY_COLUMNS: &str = "id, uid, properties, created_at, updated_at, version";

fn company_row(row: &SqliteRow) -> Result<CompanyRecord> {
    let properties: String = row.try_get("properties")?;
    Ok(CompanyRecord {
        id: row.try_get("id")?,
        uid: row.try_get("uid")?,
        properties: json_object(&properties)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
        version: row.try_get("version")?,
    })
}

/// A company by its id (`column = "id"`) or uid (`column = "uid"`).
pub(super) async fn company(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    column: &'static str,
    value: &str,
) -> Result<Option<CompanyRecord>> {
    debug_assert!(matches!(column, "id" | "uid"));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COMPANY_COLUMNS} FROM companies WHERE workspace_id = ? AND {column} = ?"
    )))
    .bind(ws.0)
    .bind(value)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(company_row)
    .transpose()
}

pub(super) async fn companies(
    pool: &SqlitePool,
    ws: WorkspaceId,
    page: &CompanyPage<'_>,
) -> Result<Vec<CompanyRecord>> {
    let before = if page.before.is_some() {
        " AND id < ?"
    } else {
        ""
    };
    let order = if page.newest_first { "DESC" } else { "ASC" };
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COMPANY_COLUMNS} FROM companies WHERE workspace_id = ? AND id > ?{before} ORDER BY id {order} LIMIT ?"
    )))
    .bind(ws.0)
    .bind(page.after.unwrap_or(""));
    if let Some(before) = page.before {
        query = query.bind(before);
    }
    query
        .bind(i64::from(page.limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(company_row)
        .collect()
}

pub(super) async fn save_company(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    c: &CompanyRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO companies (workspace_id, id, uid, properties, created_at, updated_at, version) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, id) DO UPDATE SET \
         properties = excluded.properties, updated_at = excluded.updated_at, version = excluded.version",
    )
    .bind(ws.0)
    .bind(&c.id)
    .bind(&c.uid)
    .bind(to_json(&c.properties))
    .bind(micros(c.created_at))
    .bind(micros(c.updated_at))
    .bind(c.version)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if StoreError::is_unique_violation(&e) {
            StoreError::Conflict(format!("company `{}`", c.uid))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub(super) async fn delete_company(pool: &SqlitePool, ws: WorkspaceId, id: &str) -> Result<bool> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE profiles SET company_id = NULL WHERE workspace_id = ? AND company_id = ?")
        .bind(ws.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM companies WHERE workspace_id = ? AND id = ?")
        .bind(ws.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}
