//! Workspace and API key rows.

use jiff::Timestamp;
use profiled_core::{Scope, WorkspaceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::{from_micros, micros};
use crate::{ApiKeyRecord, Result, StoreError, Workspace};

pub(super) async fn create_workspace(
    pool: &SqlitePool,
    name: &str,
    now: Timestamp,
) -> Result<Workspace> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO workspaces (name, created_at) VALUES (?, ?) RETURNING id")
            .bind(name)
            .bind(micros(now))
            .fetch_one(pool)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    StoreError::Conflict(format!("workspace `{name}`"))
                } else {
                    e.into()
                }
            })?;
    Ok(Workspace {
        id: WorkspaceId(id),
        name: name.to_owned(),
        created_at: now,
    })
}

/// One workspace chosen by a fixed condition (`id = ?` or `name = ?`) and its bound value.
pub(super) async fn workspace(
    pool: &SqlitePool,
    condition: &'static str,
    value: String,
) -> Result<Option<Workspace>> {
    let sql = format!("SELECT id, name, created_at FROM workspaces WHERE {condition}");
    sqlx::query(AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(pool)
        .await?
        .map(|r| workspace_row(&r))
        .transpose()
}

pub(super) async fn list_workspaces(pool: &SqlitePool) -> Result<Vec<Workspace>> {
    sqlx::query("SELECT id, name, created_at FROM workspaces ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(workspace_row)
        .collect()
}

fn workspace_row(r: &SqliteRow) -> Result<Workspace> {
    Ok(Workspace {
        id: WorkspaceId(r.try_get("id")?),
        name: r.try_get("name")?,
        created_at: from_micros(r.try_get("created_at")?)?,
    })
}

pub(super) async fn insert_api_key(pool: &SqlitePool, key: &ApiKeyRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, scope, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(key.workspace_id.0)
    .bind(&key.name)
    .bind(key.scope.as_str())
    .bind(&key.secret_hash)
    .bind(micros(key.created_at))
    .bind(key.revoked_at.map(micros))
    .execute(pool)
    .await
    .map_err(|e| {
        if StoreError::is_unique_violation(&e) {
            StoreError::Conflict(format!("API key `{}`", key.id))
        } else {
            e.into()
        }
    })?;
    Ok(())
}

const KEY_COLUMNS: &str = "id, workspace_id, name, scope, secret_hash, created_at, revoked_at";

pub(super) async fn api_key(pool: &SqlitePool, id: &str) -> Result<Option<ApiKeyRecord>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(|r| api_key_row(&r))
    .transpose()
}

pub(super) async fn list_api_keys(
    pool: &SqlitePool,
    workspace: Option<WorkspaceId>,
) -> Result<Vec<ApiKeyRecord>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR workspace_id = ?1 ORDER BY created_at, id"
    )))
    .bind(workspace.map(|w| w.0))
    .fetch_all(pool)
    .await?
    .iter()
    .map(api_key_row)
    .collect()
}

pub(super) async fn revoke_api_key(
    pool: &SqlitePool,
    workspace: Option<WorkspaceId>,
    id: &str,
    now: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND (?3 IS NULL OR workspace_id = ?3) AND revoked_at IS NULL",
    )
    .bind(micros(now))
    .bind(id)
    .bind(workspace.map(|w| w.0))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

fn api_key_row(r: &SqliteRow) -> Result<ApiKeyRecord> {
    let scope: String = r.try_get("scope")?;
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        workspace_id: WorkspaceId(r.try_get("workspace_id")?),
        name: r.try_get("name")?,
        scope: Scope::parse(&scope)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown key scope `{scope}`")))?,
        secret_hash: r.try_get("secret_hash")?,
        created_at: from_micros(r.try_get("created_at")?)?,
        revoked_at: r
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_micros)
            .transpose()?,
    })
}

pub(super) async fn setting(
    pool: &SqlitePool,
    ws: WorkspaceId,
    name: &str,
) -> Result<Option<(serde_json::Value, Timestamp)>> {
    let row = sqlx::query(
        "SELECT value, updated_at FROM workspace_settings WHERE workspace_id = ? AND name = ?",
    )
    .bind(ws.0)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let text: String = r.try_get("value")?;
        let value = serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("setting {name}: {e}")))?;
        Ok((value, super::from_micros(r.try_get("updated_at")?)?))
    })
    .transpose()
}

pub(super) async fn save_setting(
    pool: &SqlitePool,
    ws: WorkspaceId,
    name: &str,
    value: Option<&serde_json::Value>,
    now: Timestamp,
) -> Result<bool> {
    let done = match value {
        Some(value) => {
            sqlx::query(
                "INSERT INTO workspace_settings (workspace_id, name, value, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (workspace_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(ws.0)
            .bind(name)
            .bind(value.to_string())
            .bind(super::micros(now))
            .execute(pool)
            .await?
        }
        None => {
            sqlx::query("DELETE FROM workspace_settings WHERE workspace_id = ? AND name = ?")
                .bind(ws.0)
                .bind(name)
                .execute(pool)
                .await?
        }
    };
    Ok(done.rows_affected() > 0)
}
