//! Segments, their members, and companies.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

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

/// Writes segment entries and exits, one cached statement per membership.
pub(super) fn apply_moves(conn: &Connection, ws: WorkspaceId, moves: &[SegmentMove]) -> Result<()> {
    let mut enter = conn.prepare_cached(
        "INSERT OR IGNORE INTO segment_members (workspace_id, segment_key, profile_id, since) VALUES (?, ?, ?, ?)",
    )?;
    let mut leave = conn.prepare_cached(
        "DELETE FROM segment_members WHERE workspace_id = ? AND segment_key = ? AND profile_id = ?",
    )?;
    for m in moves {
        for key in &m.moves.entered {
            enter.execute(params![ws.0, key, m.profile_id.0, micros(m.at)])?;
        }
        for key in &m.moves.left {
            leave.execute(params![ws.0, key, m.profile_id.0])?;
        }
    }
    Ok(())
}

/// Removes a profile's memberships (it is deleted or merged away).
pub(super) fn forget_profile(conn: &Connection, ws: WorkspaceId, id: &ProfileId) -> Result<()> {
    conn.prepare_cached("DELETE FROM segment_members WHERE workspace_id = ? AND profile_id = ?")?
        .execute(params![ws.0, id.0])?;
    Ok(())
}

const COMPANY_COLUMNS: &str = "id, uid, properties, created_at, updated_at, version";

fn company_row(row: &rusqlite::Row<'_>) -> Result<CompanyRecord> {
    Ok(CompanyRecord {
        id: row.get(0)?,
        uid: row.get(1)?,
        properties: json_object(&row.get::<_, String>(2)?)?,
        created_at: from_micros(row.get(3)?)?,
        updated_at: from_micros(row.get(4)?)?,
        version: row.get(5)?,
    })
}

/// A company by its id (`column = "id"`) or uid (`column = "uid"`).
pub(super) fn company(
    conn: &Connection,
    ws: WorkspaceId,
    column: &'static str,
    value: &str,
) -> Result<Option<CompanyRecord>> {
    debug_assert!(matches!(column, "id" | "uid"));
    conn.prepare_cached(&format!(
        "SELECT {COMPANY_COLUMNS} FROM companies WHERE workspace_id = ? AND {column} = ?"
    ))?
    .query_row(params![ws.0, value], |row| Ok(company_row(row)))
    .optional()?
    .transpose()
}

pub(super) fn companies(
    conn: &Connection,
    ws: WorkspaceId,
    page: &CompanyPage<'_>,
) -> Result<Vec<CompanyRecord>> {
    let order = if page.newest_first { "DESC" } else { "ASC" };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COMPANY_COLUMNS} FROM companies WHERE workspace_id = ? AND id > ? AND id < ? ORDER BY id {order} LIMIT ?"
    ))?;
    let rows = statement.query_map(
        params![
            ws.0,
            page.after.unwrap_or(""),
            page.before.unwrap_or("\u{10FFFF}"),
            i64::from(page.limit)
        ],
        |row| Ok(company_row(row)),
    )?;
    let mut companies = Vec::new();
    for row in rows {
        companies.push(row??);
    }
    Ok(companies)
}

pub(super) fn save_company(conn: &Connection, ws: WorkspaceId, c: &CompanyRecord) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO companies (workspace_id, id, uid, properties, created_at, updated_at, version) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, id) DO UPDATE SET \
         properties = excluded.properties, updated_at = excluded.updated_at, version = excluded.version",
    )?
    .execute(params![
        ws.0,
        c.id,
        c.uid,
        to_json(&c.properties),
        micros(c.created_at),
        micros(c.updated_at),
        c.version,
    ])
    .map_err(|e| {
        if StoreError::is_sqlite_unique_violation(&e) {
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
