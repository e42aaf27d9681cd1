//! Profile and identity rows. Reads inside a write transaction lock what they return
//! (`FOR UPDATE`), so a read-modify-write never loses a concurrent node's update.

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use super::search::{PROFILE_COLUMNS, profile_row};
use crate::rows::{documents, identities_json, micros};
use crate::{Result, StoreError};

pub(super) async fn load(
    pool: &PgPool,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<Profile>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles AS p WHERE p.workspace_id = $1 AND p.id = $2"
    )))
    .bind(ws.0)
    .bind(&id.0)
    .fetch_optional(pool)
    .await?
    .map(|row| profile_row(&row))
    .transpose()
}

pub(super) async fn load_for_update(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<Profile>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles AS p WHERE p.workspace_id = $1 AND p.id = $2 FOR UPDATE"
    )))
    .bind(ws.0)
    .bind(&id.0)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| profile_row(&row))
    .transpose()
}

pub(super) async fn load_by_identity(
    pool: &PgPool,
    ws: WorkspaceId,
    identity: &Identity,
) -> Result<Option<Profile>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM identities AS o JOIN profiles AS p ON p.workspace_id = o.workspace_id AND p.id = o.profile_id \
         WHERE o.workspace_id = $1 AND o.kind = $2 AND o.value = $3"
    )))
    .bind(ws.0)
    .bind(identity.kind.as_str())
    .bind(&identity.value)
    .fetch_optional(pool)
    .await?
    .map(|row| profile_row(&row))
    .transpose()
}

/// The profiles the identities point at, locked: first the identity rows (so none moves
/// away meanwhile), then the profiles in id order.
pub(super) async fn load_by_identities_for_update(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    identities: &[Identity],
) -> Result<Vec<Profile>> {
    if identities.is_empty() {
        return Ok(Vec::new());
    }
    let kinds: Vec<&str> = identities.iter().map(|i| i.kind.as_str()).collect();
    let values: Vec<&str> = identities.iter().map(|i| i.value.as_str()).collect();
    let mut owners: Vec<String> = sqlx::query_scalar(
        "SELECT o.profile_id FROM identities AS o \
         JOIN unnest($2::text[], $3::text[]) AS wanted (kind, value) \
           ON o.kind = wanted.kind COLLATE \"C\" AND o.value = wanted.value COLLATE \"C\" \
         WHERE o.workspace_id = $1 ORDER BY o.kind, o.value FOR UPDATE OF o",
    )
    .bind(ws.0)
    .bind(&kinds)
    .bind(&values)
    .fetch_all(&mut *conn)
    .await?;
    owners.sort();
    owners.dedup();
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM profiles AS p WHERE p.workspace_id = $1 AND p.id = ANY($2) ORDER BY p.id FOR UPDATE"
    )))
    .bind(ws.0)
    .bind(&owners)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(profile_row)
    .collect()
}

/// Inserts a new profile with its identities (its row lists them as well).
pub(super) async fn insert(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: &Profile,
) -> Result<()> {
    let [properties, computed, set_once, location, device, activity] = documents(profile);
    sqlx::query(
        "INSERT INTO profiles (workspace_id, id, created_at, updated_at, version, company_id, \
         properties, computed, set_once, location, device, activity, identities) VALUES ($1, $2, $3, $4, $5, $6, \
         CAST($7 AS jsonb), CAST($8 AS jsonb), CAST($9 AS jsonb), CAST($10 AS jsonb), CAST($11 AS jsonb), CAST($12 AS jsonb), $13)",
    )
    .bind(ws.0)
    .bind(&profile.id.0)
    .bind(micros(profile.created_at))
    .bind(micros(profile.updated_at))
    .bind(profile.version)
    .bind(&profile.company)
    .bind(properties)
    .bind(computed)
    .bind(set_once)
    .bind(location)
    .bind(device)
    .bind(activity)
    .bind(identities_json(&profile.identities))
    .execute(&mut *conn)
    .await?;
    for identity in &profile.identities {
        insert_identity_row(conn, ws, &profile.id, identity, profile.created_at).await?;
    }
    Ok(())
}

/// Writes the identities these profiles carry into their rows again, from the identities
/// table: every change of a profile's identities other than its insert ends with this. Safe
/// with concurrent writers because each of them reads the profile first, and that read locks
/// its row (`FOR UPDATE`): a second writer waits, and its later statements see the first one's
/// committed identities.
pub(super) async fn relist_identities(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    ids: &[&str],
) -> Result<()> {
    sqlx::query(
        "UPDATE profiles AS p SET identities = (SELECT coalesce(json_agg(json_build_array(i.kind, i.value)), '[]')::text \
         FROM identities AS i WHERE i.workspace_id = p.workspace_id AND i.profile_id = p.id) \
         WHERE p.workspace_id = $1 AND p.id = ANY($2)",
    )
    .bind(ws.0)
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn update(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: &Profile,
) -> Result<()> {
    let [properties, computed, set_once, location, device, activity] = documents(profile);
    sqlx::query(
        "UPDATE profiles SET created_at = $1, updated_at = $2, version = $3, company_id = $4, \
         properties = CAST($5 AS jsonb), computed = CAST($6 AS jsonb), set_once = CAST($7 AS jsonb), \
         location = CAST($8 AS jsonb), device = CAST($9 AS jsonb), activity = CAST($10 AS jsonb) \
         WHERE workspace_id = $11 AND id = $12",
    )
    .bind(micros(profile.created_at))
    .bind(micros(profile.updated_at))
    .bind(profile.version)
    .bind(&profile.company)
    .bind(properties)
    .bind(computed)
    .bind(set_once)
    .bind(location)
    .bind(device)
    .bind(activity)
    .bind(ws.0)
    .bind(&profile.id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Attaches an identity to an existing profile.
pub(super) async fn insert_identity(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
    now: Timestamp,
) -> Result<()> {
    insert_identity_row(conn, ws, id, identity, now).await?;
    relist_identities(conn, ws, &[&id.0]).await
}

/// The identity's row alone: its profile's row must be relisted (or be new).
async fn insert_identity_row(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO identities (workspace_id, kind, value, profile_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ws.0)
    .bind(identity.kind.as_str())
    .bind(&identity.value)
    .bind(&id.0)
    .bind(micros(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        if StoreError::is_unique_violation(&e) {
            StoreError::IdentityTaken(identity.clone())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub(super) async fn delete_identity(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM identities WHERE workspace_id = $1 AND kind = $2 AND value = $3 AND profile_id = $4",
    )
    .bind(ws.0)
    .bind(identity.kind.as_str())
    .bind(&identity.value)
    .bind(&id.0)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() > 0 {
        relist_identities(conn, ws, &[&id.0]).await?;
    }
    Ok(done.rows_affected() > 0)
}

pub(super) async fn delete(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<bool> {
    sqlx::query("DELETE FROM identities WHERE workspace_id = $1 AND profile_id = $2")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM profiles WHERE workspace_id = $1 AND id = $2")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
