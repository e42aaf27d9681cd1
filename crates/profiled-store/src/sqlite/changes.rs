//! Change log rows.

use profiled_core::change::{Change, NewChange};
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::micros;
use crate::Result;
use crate::rows::ChangeColumns;

pub(super) async fn append(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    change: &NewChange,
) -> Result<i64> {
    let changes = serde_json::to_string(&change.changes).expect("key changes serialise");
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO changes (workspace_id, profile_id, at, actor, operation, changes, origin) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(ws.0)
    .bind(&change.profile_id.0)
    .bind(micros(change.at))
    .bind(&change.actor)
    .bind(change.operation.as_str())
    .bind(changes)
    .bind(&change.origin)
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq)
}

/// Removes every entry of a profile (it is being deleted: nothing of it may stay behind).
pub(super) async fn forget_profile(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM changes WHERE workspace_id = ? AND profile_id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
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
