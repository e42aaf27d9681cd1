//! End users' sessions.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::{PgConnection, PgPool, Row};

use crate::rows::{from_micros, micros};
use crate::{Result, SessionRecord};

pub(super) async fn insert(pool: &PgPool, s: &SessionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, workspace_id, profile_id, secret_hash, csrf_hash, created_by, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

pub(super) async fn load(pool: &PgPool, id: &str) -> Result<Option<SessionRecord>> {
    let row = sqlx::query(
        "SELECT id, workspace_id, profile_id, secret_hash, csrf_hash, created_by, created_at, \
         expires_at, revoked_at FROM sessions WHERE id = $1",
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: Option<&str>,
    profile: Option<&ProfileId>,
    now: Timestamp,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE workspace_id = $2 AND revoked_at IS NULL \
         AND ($3::text IS NULL OR id = $3) AND ($4::text IS NULL OR profile_id = $4)",
    )
    .bind(micros(now))
    .bind(ws.0)
    .bind(id)
    .bind(profile.map(|p| p.0.as_str()))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes a profile's sessions (it is forgotten).
pub(super) async fn forget_profile(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE workspace_id = $1 AND profile_id = $2")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
