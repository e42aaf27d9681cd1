//! Change log rows.

use profiled_core::change::{Change, NewChange};
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::micros;
use crate::Result;
use crate::rows::ChangeColumns;

pub(super) fn append(
    conn: &rusqlite::Connection,
    ws: WorkspaceId,
    change: &NewChange,
) -> Result<i64> {
    let changes = serde_json::to_string(&change.changes).expect("key changes serialise");
    let seq = conn
        .prepare_cached(
            "INSERT INTO changes (workspace_id, profile_id, at, actor, operation, changes, origin) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        )?
        .query_row(
            rusqlite::params![
                ws.0,
                change.profile_id.0,
                micros(change.at),
                change.actor,
                change.operation.as_str(),
                changes,
                change.origin,
            ],
            |row| row.get(0),
        )?;
    Ok(seq)
}

/// Removes every entry of a profile (it is being deleted: nothing of it may stay behind).
pub(super) fn forget_profile(
    conn: &rusqlite::Connection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    conn.prepare_cached("DELETE FROM changes WHERE workspace_id = ? AND profile_id = ?")?
        .execute(rusqlite::params![ws.0, id.0])?;
    Ok(())
}

const COLUMNS: &str = "seq, profile_id, at, actor, operation, changes, origin";

/// A profile's entries, newest first, older than `before` when given.
pub(super) async fn history(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Change>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM changes WHERE workspace_id = ? AND profile_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
    )))
    .bind(ws.0)
    .bind(&id.0)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(row)
    .collect()
}

/// The workspace's entries after `after`, oldest first.
pub(super) async fn feed(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM changes WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?"
    )))
    .bind(ws.0)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(row)
    .collect()
}

fn row(r: &SqliteRow) -> Result<Change> {
    ChangeColumns {
        seq: r.try_get("seq")?,
        profile_id: r.try_get("profile_id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        operation: r.try_get("operation")?,
        changes: r.try_get("changes")?,
        origin: r.try_get("origin")?,
    }
    .decode()
}

/// Deletes every workspace's entries older than `before`; returns how many went. Only old
/// entries go, so a feed cursor stays valid: it continues at the next entry that remains.
pub(super) async fn prune(conn: &mut SqliteConnection, before: jiff::Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM changes WHERE at < ?")
        .bind(micros(before))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}
