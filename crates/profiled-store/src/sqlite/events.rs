//! Raw events and the workspace's computed property definitions.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqliteConnection, SqlitePool};

use crate::rows::{EventColumns, from_micros, micros, to_json};
use crate::{ComputedRecord, Result, StoreError, StoredEvent};

pub(super) fn insert(conn: &Connection, ws: WorkspaceId, events: &[StoredEvent]) -> Result<()> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO events (workspace_id, id, profile_id, name, at, received_at, properties, context) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    for e in events {
        statement.execute(params![
            ws.0,
            e.id,
            e.profile_id.0,
            e.name,
            micros(e.at),
            micros(e.received_at),
            to_json(&e.properties),
            to_json(&e.context),
        ])?;
    }
    Ok(())
}

pub(super) fn known_ids(conn: &Connection, ws: WorkspaceId, ids: &[String]) -> Result<Vec<String>> {
    let mut statement =
        conn.prepare_cached("SELECT id FROM events WHERE workspace_id = ? AND id = ?")?;
    let mut known = Vec::new();
    for id in ids {
        known.extend(
            statement
                .query_row(params![ws.0, id], |row| row.get::<_, String>(0))
                .optional()?,
        );
    }
    Ok(known)
}

const COLUMNS: &str = "id, profile_id, name, at, received_at, properties, context";

fn row(r: &SqliteRow) -> Result<StoredEvent> {
    EventColumns {
        id: r.try_get("id")?,
        profile_id: r.try_get("profile_id")?,
        name: r.try_get("name")?,
        at: r.try_get("at")?,
        received_at: r.try_get("received_at")?,
        properties: r.try_get("properties")?,
        context: r.try_get("context")?,
    }
    .decode()
}

pub(super) fn since(
    conn: &Connection,
    ws: WorkspaceId,
    profile: &ProfileId,
    since: Timestamp,
) -> Result<Vec<StoredEvent>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM events WHERE workspace_id = ? AND profile_id = ? AND at >= ? ORDER BY at, id"
    ))?;
    let rows = statement.query_map(params![ws.0, profile.0, micros(since)], |r| {
        Ok(EventColumns {
            id: r.get(0)?,
            profile_id: r.get(1)?,
            name: r.get(2)?,
            at: r.get(3)?,
            received_at: r.get(4)?,
            properties: r.get(5)?,
            context: r.get(6)?,
        })
    })?;
    let mut events = Vec::new();
    for columns in rows {
        events.push(columns?.decode()?);
    }
    Ok(events)
}

pub(super) async fn list(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: &ProfileId,
    before: Option<(Timestamp, &str)>,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let (at, id) = before.map_or((i64::MAX, ""), |(at, id)| (micros(at), id));
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE workspace_id = ? AND profile_id = ? \
         AND (at < ? OR (at = ? AND id < ?) OR ? = '') ORDER BY at DESC, id DESC LIMIT ?"
    )))
    .bind(ws.0)
    .bind(&profile.0)
    .bind(at)
    .bind(at)
    .bind(id)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}

pub(super) fn delete_of(conn: &Connection, ws: WorkspaceId, profile: &ProfileId) -> Result<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM events WHERE workspace_id = ? AND profile_id = ?")?
        .execute(params![ws.0, profile.0])?;
    Ok(deleted as u64)
}

/// Gives the absorbed profile's events to the survivor of a merge.
pub(super) fn move_to(
    conn: &Connection,
    ws: WorkspaceId,
    from: &ProfileId,
    to: &ProfileId,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE events SET profile_id = ? WHERE workspace_id = ? AND profile_id = ?",
    )?
    .execute(params![to.0, ws.0, from.0])?;
    Ok(())
}

pub(super) async fn prune(conn: &mut SqliteConnection, before: Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM events WHERE at < ?")
        .bind(micros(before))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn definitions(pool: &SqlitePool, ws: WorkspaceId) -> Result<Vec<ComputedRecord>> {
    sqlx::query(
        "SELECT key, definition, created_at, updated_at FROM computed_definitions \
         WHERE workspace_id = ? ORDER BY key",
    )
    .bind(ws.0)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let text: String = r.try_get("definition")?;
        Ok(ComputedRecord {
            key: r.try_get("key")?,
            definition: serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("computed definition: {e}")))?,
            created_at: from_micros(r.try_get("created_at")?)?,
            updated_at: from_micros(r.try_get("updated_at")?)?,
        })
    })
    .collect()
}

pub(super) async fn save_definition(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    record: &ComputedRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO computed_definitions (workspace_id, key, definition, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace_id, key) DO UPDATE SET \
         definition = excluded.definition, updated_at = excluded.updated_at",
    )
    .bind(ws.0)
    .bind(&record.key)
    .bind(record.definition.to_string())
    .bind(micros(record.created_at))
    .bind(micros(record.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn delete_definition(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    key: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM computed_definitions WHERE workspace_id = ? AND key = ?")
        .bind(ws.0)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
