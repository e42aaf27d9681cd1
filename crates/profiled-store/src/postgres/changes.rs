//! Change log rows, numbered per workspace in commit order (see the `change_seqs` table).

use profiled_core::change::{Change, KeyChange, NewChange, Operation};
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::rows::{from_micros, micros};
use crate::{Result, StoreError};

/// Appends an entry. Taking the next number row-locks the workspace's counter until the
/// transaction ends, so later numbers always commit later.
pub(super) async fn append(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    change: &NewChange,
) -> Result<i64> {
    let changes = serde_json::to_string(&change.changes).expect("key changes serialise");
    let seq: i64 = sqlx::query_scalar(
        "WITH next AS (\
           INSERT INTO change_seqs (workspace_id, last_seq) VALUES ($1, 1) \
           ON CONFLICT (workspace_id) DO UPDATE SET last_seq = change_seqs.last_seq + 1 \
           RETURNING last_seq) \
         INSERT INTO changes (workspace_id, seq, profile_id, at, actor, operation, changes, origin) \
         SELECT $1, next.last_seq, $2, $3, $4, $5, CAST($6 AS jsonb), $7 FROM next RETURNING seq",
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
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM changes WHERE workspace_id = $1 AND profile_id = $2")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const COLUMNS: &str = "seq, profile_id, at, actor, operation, changes::text AS changes, origin";

pub(super) async fn history(
    pool: &PgPool,
    ws: WorkspaceId,
    id: &ProfileId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Change>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM changes WHERE workspace_id = $1 AND profile_id = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
    )))
    .bind(ws.0)
    .bind(&id.0)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}

pub(super) async fn feed(
    pool: &PgPool,
    ws: WorkspaceId,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM changes WHERE workspace_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )))
    .bind(ws.0)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}

fn row(r: &PgRow) -> Result<Change> {
    let operation: String = r.try_get("operation")?;
    let changes: String = r.try_get("changes")?;
    Ok(Change {
        seq: r.try_get("seq")?,
        entry: NewChange {
            profile_id: ProfileId(r.try_get("profile_id")?),
            at: from_micros(r.try_get("at")?)?,
            actor: r.try_get("actor")?,
            operation: Operation::parse(&operation)
                .ok_or_else(|| StoreError::Corrupt(format!("operation {operation}")))?,
            changes: serde_json::from_str::<Vec<KeyChange>>(&changes)
                .map_err(|e| StoreError::Corrupt(format!("changes: {e}")))?,
            origin: r.try_get("origin")?,
        },
    })
}

/// Deletes every workspace's entries older than `before`. Only old entries go, so a feed
/// cursor stays valid.
pub(super) async fn prune(pool: &PgPool, before: jiff::Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM changes WHERE at < $1")
        .bind(micros(before))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
