//! Merge records and the absorbed-id → survivor map.

use jiff::Timestamp;
use profiled_core::{Identity, ProfileId, WorkspaceId};
use serde_json::Value;
use sqlx::{PgConnection, Row};

use crate::records::{MergeRecord, StoredMerge};
use crate::rows::{from_micros, micros};
use crate::snapshot::{restore, snapshot};
use crate::{Result, StoreError};

/// Records a merge: the absorbed profiles' identities move to the survivor, their rows go,
/// and their ids point at the survivor from now on (ids merged into them before follow the
/// chain, so that undoing one merge only unlinks its own ids).
pub(super) async fn record(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    merge: &MergeRecord<'_>,
) -> Result<()> {
    let absorbed: Vec<Value> = merge.absorbed.iter().map(snapshot).collect();
    sqlx::query(
        "INSERT INTO merges (workspace_id, id, survivor_id, survivor_before, absorbed, sources, at, actor) VALUES ($1, $2, $3, CAST($4 AS jsonb), CAST($5 AS jsonb), CAST($6 AS jsonb), $7, $8)",
    )
        .bind(ws.0)
        .bind(merge.id)
        .bind(&merge.survivor.0)
        .bind(snapshot(merge.survivor_before).to_string())
        .bind(Value::Array(absorbed).to_string())
        .bind(Value::Object(merge.sources.clone()).to_string())
        .bind(micros(merge.at))
        .bind(merge.actor)
        .execute(&mut *conn)
        .await?;
    for other in merge.absorbed {
        sqlx::query(
            "UPDATE identities SET profile_id = $1 WHERE workspace_id = $2 AND profile_id = $3",
        )
        .bind(&merge.survivor.0)
        .bind(ws.0)
        .bind(&other.id.0)
        .execute(&mut *conn)
        .await?;
        super::events::move_to(conn, ws, &other.id, merge.survivor).await?;
        // The survivor's memberships are decided afresh by whoever writes it.
        super::segments::forget_profile(conn, ws, &other.id).await?;
        sqlx::query("DELETE FROM profiles WHERE workspace_id = $1 AND id = $2")
            .bind(ws.0)
            .bind(&other.id.0)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO merged_ids (workspace_id, absorbed_id, survivor_id, merge_id) VALUES ($1, $2, $3, $4)")
            .bind(ws.0)
            .bind(&other.id.0)
            .bind(&merge.survivor.0)
            .bind(merge.id)
            .execute(&mut *conn)
            .await?;
    }
    super::profiles::relist_identities(conn, ws, &[&merge.survivor.0]).await
}

/// The live profile an absorbed id leads to, following merges of merges.
pub(super) async fn survivor_of(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<ProfileId>> {
    let mut current = id.clone();
    let mut found = None;
    // A chain is as long as the merges of merges; 64 steps is far beyond any real one.
    for _ in 0..64 {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT survivor_id FROM merged_ids WHERE workspace_id = $1 AND absorbed_id = $2",
        )
        .bind(ws.0)
        .bind(&current.0)
        .fetch_optional(&mut *conn)
        .await?;
        match next {
            Some(next) => {
                current = ProfileId(next);
                found = Some(current.clone());
            }
            None => break,
        }
    }
    Ok(found)
}

/// A recorded merge, snapshots included.
pub(super) async fn load(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &str,
    lock: bool,
) -> Result<Option<StoredMerge>> {
    let sql = format!(
        "SELECT survivor_id, survivor_before::text AS survivor_before, absorbed::text AS absorbed, \
         sources::text AS sources, at, actor, undone_at FROM merges WHERE workspace_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ws.0)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let json = |column: &str| -> Result<Value> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("merge {column}: {e}")))
    };
    let absorbed = match json("absorbed")? {
        Value::Array(items) => items.iter().map(restore).collect::<Result<Vec<_>>>()?,
        _ => return Err(StoreError::Corrupt("merge absorbed".into())),
    };
    Ok(Some(StoredMerge {
        id: id.to_owned(),
        survivor: ProfileId(row.try_get("survivor_id")?),
        survivor_before: restore(&json("survivor_before")?)?,
        absorbed,
        sources: json("sources")?.as_object().cloned().unwrap_or_default(),
        at: from_micros(row.try_get("at")?)?,
        actor: row.try_get("actor")?,
        undone_at: row
            .try_get::<Option<i64>, _>("undone_at")?
            .map(from_micros)
            .transpose()?,
    }))
}

/// The merges into a profile, newest first.
pub(super) async fn into_profile(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    survivor: &ProfileId,
) -> Result<Vec<StoredMerge>> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM merges WHERE workspace_id = $1 AND survivor_id = $2 ORDER BY at DESC, id DESC LIMIT 1000")
        .bind(ws.0)
        .bind(&survivor.0)
        .fetch_all(&mut *conn)
        .await?;
    let mut merges = Vec::with_capacity(ids.len());
    for id in ids {
        merges.extend(load(conn, ws, &id, false).await?);
    }
    Ok(merges)
}

/// Marks a merge undone and unlinks the ids it absorbed.
pub(super) async fn mark_undone(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE merges SET undone_at = $1 WHERE workspace_id = $2 AND id = $3")
        .bind(micros(at))
        .bind(ws.0)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM merged_ids WHERE workspace_id = $1 AND merge_id = $2")
        .bind(ws.0)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves an identity from one profile to another; false when `from` does not carry it.
pub(super) async fn move_identity(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    identity: &Identity,
    from: &ProfileId,
    to: &ProfileId,
) -> Result<bool> {
    let moved = sqlx::query("UPDATE identities SET profile_id = $1 WHERE workspace_id = $2 AND kind = $3 AND value = $4 AND profile_id = $5")
        .bind(&to.0)
        .bind(ws.0)
        .bind(identity.kind.as_str())
        .bind(&identity.value)
        .bind(&from.0)
        .execute(&mut *conn)
        .await?;
    if moved.rows_affected() > 0 {
        super::profiles::relist_identities(conn, ws, &[&from.0, &to.0]).await?;
    }
    Ok(moved.rows_affected() > 0)
}

/// A deleted profile takes its merge trail with it.
pub(super) async fn forget_survivor(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM merged_ids WHERE workspace_id = $1 AND survivor_id = $2")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM merges WHERE workspace_id = $1 AND survivor_id = $2")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every id merged into a profile, directly or through merges of merges (still linked, not
/// undone).
pub(super) async fn absorbed_into(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Vec<ProfileId>> {
    let mut found: Vec<ProfileId> = Vec::new();
    let mut next = 0;
    let mut current = id.clone();
    loop {
        let absorbed: Vec<String> = sqlx::query_scalar(
            "SELECT absorbed_id FROM merged_ids WHERE workspace_id = $1 AND survivor_id = $2",
        )
        .bind(ws.0)
        .bind(&current.0)
        .fetch_all(&mut *conn)
        .await?;
        found.extend(absorbed.into_iter().map(ProfileId).filter(|a| a != id));
        found.dedup();
        match found.get(next) {
            Some(more) => {
                current = more.clone();
                next += 1;
            }
            None => return Ok(found),
        }
    }
}

/// Removes the (undone) merges that keep a snapshot of a profile they had absorbed.
pub(super) async fn forget_absorbed(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM merges WHERE workspace_id = $1 AND absorbed @> jsonb_build_array(jsonb_build_object('id', CAST($2 AS text)))",
    )
    .bind(ws.0)
    .bind(&id.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
