//! Profile and identity rows.

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use sqlx::{AssertSqlSafe, SqliteConnection};

use super::micros;
use crate::rows::documents;
use crate::{Result, StoreError};

pub(super) async fn load(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<Profile>> {
    let sql = format!(
        "SELECT {} FROM profiles AS p WHERE p.workspace_id = ? AND p.id = ?",
        super::search::profile_columns()
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(ws.0)
        .bind(&id.0)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| super::search::profile_row(&row))
        .transpose()
}

pub(super) async fn load_by_identity(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    identity: &Identity,
) -> Result<Option<Profile>> {
    let sql = format!(
        "SELECT {} FROM identities AS o JOIN profiles AS p ON p.workspace_id = o.workspace_id AND p.id = o.profile_id \
         WHERE o.workspace_id = ? AND o.kind = ? AND o.value = ?",
        super::search::profile_columns()
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(ws.0)
        .bind(identity.kind.as_str())
        .bind(&identity.value)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| super::search::profile_row(&row))
        .transpose()
}

pub(super) async fn load_by_identities(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    identities: &[Identity],
) -> Result<Vec<Profile>> {
    if identities.is_empty() {
        return Ok(Vec::new());
    }
    // A table of the wanted pairs joined to the identities' primary key: one index lookup per
    // pair, however many (an OR of pairs makes SQLite scan every identity).
    let pairs = vec!["(?, ?)"; identities.len()].join(", ");
    let sql = format!(
        "WITH wanted (kind, value) AS (VALUES {pairs}) \
         SELECT {} FROM profiles AS p WHERE p.workspace_id = ? AND p.id IN \
         (SELECT o.profile_id FROM wanted JOIN identities AS o \
          ON o.workspace_id = ? AND o.kind = wanted.kind AND o.value = wanted.value) ORDER BY p.id",
        super::search::profile_columns()
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for identity in identities {
        query = query.bind(identity.kind.as_str()).bind(&identity.value);
    }
    query = query.bind(ws.0).bind(ws.0);
    query
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(super::search::profile_row)
        .collect()
}

pub(super) async fn insert(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    profile: &Profile,
) -> Result<()> {
    let [properties, computed, set_once, location, device, activity] = documents(profile);
    sqlx::query(
        "INSERT INTO profiles (workspace_id, id, created_at, updated_at, version, company_id, \
         properties, computed, set_once, location, device, activity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .execute(&mut *conn)
    .await?;
    for identity in &profile.identities {
        insert_identity(conn, ws, &profile.id, identity, profile.created_at).await?;
    }
    Ok(())
}

pub(super) async fn update(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    profile: &Profile,
) -> Result<()> {
    let [properties, computed, set_once, location, device, activity] = documents(profile);
    sqlx::query(
        "UPDATE profiles SET created_at = ?, updated_at = ?, version = ?, company_id = ?, properties = ?, \
         computed = ?, set_once = ?, location = ?, device = ?, activity = ? WHERE workspace_id = ? AND id = ?",
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

pub(super) async fn insert_identity(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("INSERT INTO identities (workspace_id, kind, value, profile_id, created_at) VALUES (?, ?, ?, ?, ?)")
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
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM identities WHERE workspace_id = ? AND kind = ? AND value = ? AND profile_id = ?")
        .bind(ws.0)
        .bind(identity.kind.as_str())
        .bind(&identity.value)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn delete(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<bool> {
    sqlx::query("DELETE FROM identities WHERE workspace_id = ? AND profile_id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM profiles WHERE workspace_id = ? AND id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
