//! Deletion receipts.

use profiled_core::WorkspaceId;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::rows::{DeletionColumns, micros};
use crate::{DeletionReceipt, Result};

pub(super) async fn record(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    receipt: &DeletionReceipt,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deletions (workspace_id, id, profile_id, requested_at, completed_at, requested_by, identifiers) \
         VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS jsonb))",
    )
    .bind(ws.0)
    .bind(&receipt.id)
    .bind(&receipt.profile_id.0)
    .bind(micros(receipt.requested_at))
    .bind(micros(receipt.completed_at))
    .bind(&receipt.requested_by)
    .bind(serde_json::to_string(&receipt.identifiers).expect("strings serialise"))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

const COLUMNS: &str =
    "id, profile_id, requested_at, completed_at, requested_by, identifiers::text AS identifiers";

fn row(r: &PgRow) -> Result<DeletionReceipt> {
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: &str,
) -> Result<Option<DeletionReceipt>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deletions WHERE workspace_id = $1 AND id = $2"
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
    pool: &PgPool,
    ws: WorkspaceId,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<DeletionReceipt>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deletions WHERE workspace_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
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
