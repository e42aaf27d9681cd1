//! End users' sessions.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::{Row, SqlitePool};

use super::{from_micros, micros};
use crate::{Result, SessionRecord, VerificationRecord};

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

/// Deletes a profile's sessions and verifications (it is forgotten).
pub(super) fn forget_profile(
    conn: &rusqlite::Connection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    // Sessions, and codes waiting or sent: nothing of the profile stays behind.
    for table in ["sessions", "verifications", "verification_sends"] {
        conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE workspace_id = ? AND profile_id = ?"
        ))?
        .execute(rusqlite::params![ws.0, id.0])?;
    }
    Ok(())
}

pub(super) async fn verification(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: &ProfileId,
) -> Result<Option<VerificationRecord>> {
    let row = sqlx::query(
        "SELECT change_hash, code_hash, created_at, expires_at, attempts FROM verifications \
         WHERE workspace_id = ? AND profile_id = ?",
    )
    .bind(ws.0)
    .bind(&profile.0)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(VerificationRecord {
            workspace_id: ws,
            profile_id: profile.clone(),
            change_hash: r.try_get("change_hash")?,
            code_hash: r.try_get("code_hash")?,
            created_at: from_micros(r.try_get("created_at")?)?,
            expires_at: from_micros(r.try_get("expires_at")?)?,
            attempts: r.try_get("attempts")?,
        })
    })
    .transpose()
}

/// Saves a pending verification (replacing the profile's previous one), or with `None`
/// removes it.
pub(super) async fn save_verification(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: &ProfileId,
    record: Option<&VerificationRecord>,
) -> Result<()> {
    match record {
        Some(v) => {
            sqlx::query(
                "INSERT INTO verifications (workspace_id, profile_id, change_hash, code_hash, created_at, \
                 expires_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace_id, profile_id) \
                 DO UPDATE SET change_hash = excluded.change_hash, code_hash = excluded.code_hash, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at, attempts = excluded.attempts",
            )
            .bind(ws.0)
            .bind(&profile.0)
            .bind(&v.change_hash)
            .bind(&v.code_hash)
            .bind(micros(v.created_at))
            .bind(micros(v.expires_at))
            .bind(v.attempts)
            .execute(pool)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM verifications WHERE workspace_id = ? AND profile_id = ?")
                .bind(ws.0)
                .bind(&profile.0)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Records a code sent at `at`, and returns how many were sent to the profile since `since`
/// (this one included).
pub(super) async fn count_send(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: &ProfileId,
    at: Timestamp,
    since: Timestamp,
) -> Result<u64> {
    sqlx::query("DELETE FROM verification_sends WHERE at < ?")
        .bind(micros(since))
        .execute(pool)
        .await?;
    sqlx::query("INSERT INTO verification_sends (workspace_id, profile_id, at) VALUES (?, ?, ?)")
        .bind(ws.0)
        .bind(&profile.0)
        .bind(micros(at))
        .execute(pool)
        .await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM verification_sends WHERE workspace_id = ? AND profile_id = ? AND at >= ?",
    )
    .bind(ws.0)
    .bind(&profile.0)
    .bind(micros(since))
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}
