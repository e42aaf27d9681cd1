//! Change log rows. Appending takes no lock; numbers (seq) are given to committed rows by
//! [`sequence`] before the log is read (see the `changes` table in the migration).

use profiled_core::change::{Change, NewChange};
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};

use crate::Result;
use crate::rows::{ChangeColumns, micros};

/// Appends an entry; it has no number until [`sequence`] gives it one. Returns its id.
pub(super) async fn append(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    change: &NewChange,
) -> Result<i64> {
    let changes = serde_json::to_string(&change.changes).expect("key changes serialise");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO changes (workspace_id, profile_id, at, actor, operation, changes, origin) \
         VALUES ($1, $2, $3, $4, $5, CAST($6 AS jsonb), $7) RETURNING id",
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
    Ok(id)
}

/// Numbers the workspace's committed, unnumbered entries in id order, after the highest
/// number given so far. Sequencers of one workspace take turns on its counter row; writers
/// never wait for them.
pub(super) async fn sequence(pool: &PgPool, ws: WorkspaceId) -> Result<()> {
    const BATCH: i64 = 10_000;
    loop {
        let mut tx = pool.begin().await?;
        sqlx::query("INSERT INTO change_seqs (workspace_id, last_seq) VALUES ($1, 0) ON CONFLICT (workspace_id) DO NOTHING")
            .bind(ws.0)
            .execute(&mut *tx)
            .await?;
        let last: i64 = sqlx::query_scalar(
            "SELECT last_seq FROM change_seqs WHERE workspace_id = $1 FOR UPDATE",
        )
        .bind(ws.0)
        .fetch_one(&mut *tx)
        .await?;
        // A fresh snapshot, taken after the lock: every row numbered by an earlier turn shows.
        let numbered = sqlx::query(
            "WITH pending AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM changes \
               WHERE workspace_id = $1 AND seq IS NULL ORDER BY id LIMIT $3) \
             UPDATE changes AS c SET seq = $2 + pending.n FROM pending \
             WHERE c.workspace_id = $1 AND c.id = pending.id",
        )
        .bind(ws.0)
        .bind(last)
        .bind(BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        if numbered > 0 {
            sqlx::query("UPDATE change_seqs SET last_seq = $2 WHERE workspace_id = $1")
                .bind(ws.0)
                .bind(last + numbered)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if numbered < BATCH {
            return Ok(());
        }
    }
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
    sequence(pool, ws).await?;
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
    sequence(pool, ws).await?;
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

/// Deletes every workspace's entries older than `before`. Only old entries go, so a feed
/// cursor stays valid.
pub(super) async fn prune(pool: &PgPool, before: jiff::Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM changes WHERE at < $1")
        .bind(micros(before))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
