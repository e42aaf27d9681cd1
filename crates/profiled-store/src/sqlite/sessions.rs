//! End users' sessions.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::{from_micros, micros};
use crate::{Result, SessionRecord};

pub(super) async fn insert(pool: &SqlitePool, s: &SessionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, workspace_id, profile_id, secret_hash, csrf_hash, created_by, \
         created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.id)
    .bind(s.workspace_id.0)
    .bind(&s.profile_id.0)
    .bind(&s.secret_hash)
    .bind(&s.csrf_hash)
    .bind(&s.created_by)
    .bind(micros(s.created_at))
    .bind(micros(s.expires_at))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn load(pool: &SqlitePool, id: &str) -> Result<Option<SessionRecord>> {
    let row = sqlx::query(
        "SELECT id, workspace_id, profile_id, secret_hash, csrf_hash, created_by, created_at, \
         expires_at, revoked_at FROM sessions WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(SessionRecord {
            id: r.try_get("id")?,
            workspace_id: WorkspaceId(r.try_get("workspace_id")?),
            profile_id: ProfileId(r.try_get("profile_id")?),
            secret_hash: r.try_get("secret_hash")?,
            csrf_hash: r.try_get("csrf_hash")?,
            created_by: r.try_get("created_by")?,
            created_at: from_micros(r.try_get("created_at")?)?,
            expires_at: from_micros(r.try_get("expires_at")?)?,
            revoked_at: r
                .try_get::<Option<i64>, _>("revoked_at")?
                .map(from_micros)
                .transpose()?,
        })
    })
    .transpose()
}

/// Revokes one session (`id`) or every session of a profile; returns how many.
pub(super) async fn revoke(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: Option<&str>,
    profile: Option<&ProfileId>,
    now: Timestamp,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = ? WHERE workspace_id = ? AND revoked_at IS NULL \
         AND (? IS NULL OR id = ?) AND (? IS NULL OR profile_id = ?)",
    )
    .bind(micros(now))
    .bind(ws.0)
    .bind(id)
    .bind(id)
    .bind(profile.map(|p| p.0.as_str()))
    .bind(profile.map(|p| p.0.as_str()))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes a profile's sessions (it is forgotten).
pub(super) async fn forget_profile(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE workspace_id = ? AND profile_id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
