//! Import job records.

use profiled_core::WorkspaceId;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Row};

use crate::rows::{ImportColumns, micros};
use crate::{ImportRecord, Result};

pub(super) async fn save(pool: &PgPool, ws: WorkspaceId, record: &ImportRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO imports (workspace_id, id, status, format, requested_by, started_at, updated_at, finished_at, counts, failures, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CAST($9 AS jsonb), CAST($10 AS jsonb), $11) \
         ON CONFLICT (workspace_id, id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at, \
         finished_at = excluded.finished_at, counts = excluded.counts, failures = excluded.failures, error = excluded.error",
    )
    .bind(ws.0)
    .bind(&record.id)
    .bind(&record.status)
    .bind(&record.format)
    .bind(&record.requested_by)
    .bind(micros(record.started_at))
    .bind(micros(record.updated_at))
    .bind(record.finished_at.map(micros))
    .bind(serde_json::to_string(&record.counts).expect("counts serialise"))
    .bind(serde_json::to_string(&record.failures).expect("failures serialise"))
    .bind(&record.error)
    .execute(pool)
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, status, format, requested_by, started_at, updated_at, finished_at, counts::text AS counts, failures::text AS failures, error";

fn row(r: &PgRow) -> Result<ImportRecord> {
    ImportColumns {
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        format: r.try_get("format")?,
        requested_by: r.try_get("requested_by")?,
        started_at: r.try_get("started_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: r.try_get("counts")?,
        failures: r.try_get("failures")?,
        error: r.try_get("error")?,
    }
    .decode()
}

pub(super) async fn load(pool: &PgPool, ws: WorkspaceId, id: &str) -> Result<Option<ImportRecord>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM imports WHERE workspace_id = $1 AND id = $2"
    )))
    .bind(ws.0)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(|r| row(&r))
    .transpose()
}

/// Newest first (job ids grow with time).
pub(super) async fn list(pool: &PgPool, ws: WorkspaceId, limit: u32) -> Result<Vec<ImportRecord>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM imports WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2"
    )))
    .bind(ws.0)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}
