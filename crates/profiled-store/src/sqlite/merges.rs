//! Merge records and the absorbed-id → survivor map.

use profiled_core::{Profile, ProfileId, WorkspaceId};
use serde_json::{Value, json};
use sqlx::SqliteConnection;

use super::micros;
use crate::Result;
use crate::records::MergeRecord;

/// A profile as a JSON snapshot (kept for undo).
fn snapshot(p: &Profile) -> Value {
    json!({
        "id": p.id.0,
        "identities": p.identities.iter().map(|i| [i.kind.as_str(), i.value.as_str()]).collect::<Vec<_>>(),
        "properties": p.properties,
        "computed": p.computed,
        "created_at": micros(p.created_at),
        "updated_at": micros(p.updated_at),
        "version": p.version,
    })
}

/// Records a merge: the absorbed profiles' identities move to the survivor, their rows go,
/// and their ids (and ids merged into them before) point at the survivor from now on.
pub(super) async fn record(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    merge: &MergeRecord<'_>,
) -> Result<()> {
    let absorbed: Vec<Value> = merge.absorbed.iter().map(snapshot).collect();
    sqlx::query(
        "INSERT INTO merges (workspace_id, id, survivor_id, survivor_before, absorbed, sources, at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            "UPDATE identities SET profile_id = ? WHERE workspace_id = ? AND profile_id = ?",
        )
        .bind(&merge.survivor.0)
        .bind(ws.0)
        .bind(&other.id.0)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM profiles WHERE workspace_id = ? AND id = ?")
            .bind(ws.0)
            .bind(&other.id.0)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE merged_ids SET survivor_id = ? WHERE workspace_id = ? AND survivor_id = ?",
        )
        .bind(&merge.survivor.0)
        .bind(ws.0)
        .bind(&other.id.0)
        .execute(&mut *conn)
        .await?;
        sqlx::query("INSERT INTO merged_ids (workspace_id, absorbed_id, survivor_id, merge_id) VALUES (?, ?, ?, ?)")
            .bind(ws.0)
            .bind(&other.id.0)
            .bind(&merge.survivor.0)
            .bind(merge.id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(super) async fn survivor_of(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<ProfileId>> {
    let survivor: Option<String> = sqlx::query_scalar(
        "SELECT survivor_id FROM merged_ids WHERE workspace_id = ? AND absorbed_id = ?",
    )
    .bind(ws.0)
    .bind(&id.0)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(survivor.map(ProfileId))
}

/// A deleted profile takes its merge trail with it.
pub(super) async fn forget_survivor(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<()> {
    sqlx::query("DELETE FROM merged_ids WHERE workspace_id = ? AND survivor_id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM merges WHERE workspace_id = ? AND survivor_id = ?")
        .bind(ws.0)
        .bind(&id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
