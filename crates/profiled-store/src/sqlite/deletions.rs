//! Deletion receipts.

use profiled_core::WorkspaceId;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use crate::rows::{DeletionColumns, micros};
use crate::{DeletionReceipt, Result};

pub(super) fn record(
    conn: &rusqlite::Connection,
    ws: WorkspaceId,
    receipt: &DeletionReceipt,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO deletions (workspace_id, id, profile_id, requested_at, completed_at, requested_by, identifiers) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(rusqlite::params![
        ws.0,
        receipt.id,
        receipt.profile_id.0,
        micros(receipt.requested_at),
        micros(receipt.completed_at),
        receipt.requested_by,
        serde_json::to_string(&receipt.identifiers).expect("strings serialise"),
    ])?;
    Ok(())
}

const COLUMNS: &str = "id, profile_id, requested_at, completed_at, requested_by, identifiers";

fn row(r: &SqliteRow) -> Result<DeletionReceipt> {
    DeletionColumns {
        id: r.try_get("id")?,
        profile_id: r.try_get("profile_id")?,
        requested_at: r.try_get("requested_at")?,
        completed_at: r.try_get("completed_at")?,
        requested_by: r.try_get("requested_by")?,
        identifiers: r.try_get("identifiers")?,
    }
    .decode()
}

pub(super) async fn load(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: &str,
) -> Result<Option<DeletionReceipt>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deletions WHERE workspace_id = ? AND id = ?"
    )))
    .bind(ws.0)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(|r| row(&r))
    .transpose()
}

/// Newest first (receipt ids grow with time); before the receipt `before` when given.
pub(super) async fn list(
    pool: &SqlitePool,
    ws: WorkspaceId,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<DeletionReceipt>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deletions WHERE workspace_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
    )))
    .bind(ws.0)
    .bind(before.unwrap_or("\u{10FFFF}"))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}
