//! Merge records and the absorbed-id → survivor map.

use jiff::Timestamp;
use profiled_core::{Identity, ProfileId, WorkspaceId};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{from_micros, micros};
use crate::records::{MergeRecord, StoredMerge};
use crate::snapshot::{restore, snapshot};
use crate::{Result, StoreError};

/// Records a merge: the absorbed profiles' identities move to the survivor, their rows go,
/// and their ids point at the survivor from now on (ids merged into them before follow the
/// chain, so that undoing one merge only unlinks its own ids).
pub(super) fn record(conn: &Connection, ws: WorkspaceId, merge: &MergeRecord<'_>) -> Result<()> {
    let absorbed: Vec<Value> = merge.absorbed.iter().map(snapshot).collect();
    conn.prepare_cached(
        "INSERT INTO merges (workspace_id, id, survivor_id, survivor_before, absorbed, sources, at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        ws.0,
        merge.id,
        merge.survivor.0,
        snapshot(merge.survivor_before).to_string(),
        Value::Array(absorbed).to_string(),
        Value::Object(merge.sources.clone()).to_string(),
        micros(merge.at),
        merge.actor,
    ])?;
    let mut taken = Vec::new();
    for other in merge.absorbed {
        let listed = super::profiles::listed_identities(conn, ws, &other.id)?;
        for identity in listed.unwrap_or_default() {
            if move_identity_row(conn, ws, &identity, &other.id, merge.survivor)? {
                taken.push(identity);
            }
        }
        super::events::move_to(conn, ws, &other.id, merge.survivor)?;
        // The survivor's memberships are decided afresh by whoever writes it.
        super::segments::forget_profile(conn, ws, &other.id)?;
        conn.prepare_cached("DELETE FROM profiles WHERE workspace_id = ? AND id = ?")?
            .execute(params![ws.0, other.id.0])?;
        conn.prepare_cached(
            "INSERT INTO merged_ids (workspace_id, absorbed_id, survivor_id, merge_id) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![ws.0, other.id.0, merge.survivor.0, merge.id])?;
    }
    super::profiles::relist_identities(conn, ws, merge.survivor, |listed| listed.extend(taken))
}

/// The live profile an absorbed id leads to, following merges of merges.
pub(super) fn survivor_of(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<ProfileId>> {
    let mut statement = conn.prepare_cached(
        "SELECT survivor_id FROM merged_ids WHERE workspace_id = ? AND absorbed_id = ?",
    )?;
    let mut current = id.clone();
    let mut found = None;
    // A chain is as long as the merges of merges; 64 steps is far beyond any real one.
    for _ in 0..64 {
        let next: Option<String> = statement
            .query_row(params![ws.0, current.0], |row| row.get(0))
            .optional()?;
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

/// A merge row's columns, before decoding.
struct MergeColumns {
    survivor_id: String,
    survivor_before: String,
    absorbed: String,
    sources: String,
    at: i64,
    actor: String,
    undone_at: Option<i64>,
}

/// A recorded merge, snapshots included.
pub(super) fn load(conn: &Connection, ws: WorkspaceId, id: &str) -> Result<Option<StoredMerge>> {
    let Some(row) = conn
        .prepare_cached("SELECT survivor_id, survivor_before, absorbed, sources, at, actor, undone_at FROM merges WHERE workspace_id = ? AND id = ?")?
        .query_row(params![ws.0, id], |r| {
            Ok(MergeColumns {
                survivor_id: r.get(0)?,
                survivor_before: r.get(1)?,
                absorbed: r.get(2)?,
                sources: r.get(3)?,
                at: r.get(4)?,
                actor: r.get(5)?,
                undone_at: r.get(6)?,
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    let json = |column: &str, text: &str| -> Result<Value> {
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("merge {column}: {e}")))
    };
    let absorbed = match json("absorbed", &row.absorbed)? {
        Value::Array(items) => items.iter().map(restore).collect::<Result<Vec<_>>>()?,
        _ => return Err(StoreError::Corrupt("merge absorbed".into())),
    };
    Ok(Some(StoredMerge {
        id: id.to_owned(),
        survivor: ProfileId(row.survivor_id),
        survivor_before: restore(&json("survivor_before", &row.survivor_before)?)?,
        absorbed,
        sources: json("sources", &row.sources)?
            .as_object()
            .cloned()
            .unwrap_or_default(),
        at: from_micros(row.at)?,
        actor: row.actor,
        undone_at: row.undone_at.map(from_micros).transpose()?,
    }))
}

/// The merges into a profile, newest first.
pub(super) fn into_profile(
    conn: &Connection,
    ws: WorkspaceId,
    survivor: &ProfileId,
) -> Result<Vec<StoredMerge>> {
    let ids = conn
        .prepare_cached("SELECT id FROM merges WHERE workspace_id = ? AND survivor_id = ? ORDER BY at DESC, id DESC LIMIT 1000")?
        .query_map(params![ws.0, survivor.0], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut merges = Vec::with_capacity(ids.len());
    for id in ids {
        merges.extend(load(conn, ws, &id)?);
    }
    Ok(merges)
}

/// Marks a merge undone and unlinks the ids it absorbed.
pub(super) fn mark_undone(
    conn: &Connection,
    ws: WorkspaceId,
    id: &str,
    at: Timestamp,
) -> Result<()> {
    conn.prepare_cached("UPDATE merges SET undone_at = ? WHERE workspace_id = ? AND id = ?")?
        .execute(params![micros(at), ws.0, id])?;
    conn.prepare_cached("DELETE FROM merged_ids WHERE workspace_id = ? AND merge_id = ?")?
        .execute(params![ws.0, id])?;
    Ok(())
}

/// Moves an identity from one profile to another; false when `from` does not carry it.
pub(super) fn move_identity(
    conn: &Connection,
    ws: WorkspaceId,
    identity: &Identity,
    from: &ProfileId,
    to: &ProfileId,
) -> Result<bool> {
    let moved = move_identity_row(conn, ws, identity, from, to)?;
    if moved {
        super::profiles::relist_identities(conn, ws, from, |listed| {
            listed.retain(|i| i != identity)
        })?;
        super::profiles::relist_identities(conn, ws, to, |listed| listed.push(identity.clone()))?;
    }
    Ok(moved)
}

/// The identity's row alone: both profiles' rows must be relisted (or go).
fn move_identity_row(
    conn: &Connection,
    ws: WorkspaceId,
    identity: &Identity,
    from: &ProfileId,
    to: &ProfileId,
) -> Result<bool> {
    let moved = conn
        .prepare_cached("UPDATE identities SET profile_id = ? WHERE workspace_id = ? AND kind = ? AND value = ? AND profile_id = ?")?
        .execute(params![to.0, ws.0, identity.kind.as_str(), identity.value, from.0])?;
    Ok(moved > 0)
}

/// A deleted profile takes its merge trail with it.
pub(super) fn forget_survivor(conn: &Connection, ws: WorkspaceId, id: &ProfileId) -> Result<()> {
    conn.prepare_cached("DELETE FROM merged_ids WHERE workspace_id = ? AND survivor_id = ?")?
        .execute(params![ws.0, id.0])?;
    conn.prepare_cached("DELETE FROM merges WHERE workspace_id = ? AND survivor_id = ?")?
        .execute(params![ws.0, id.0])?;
    Ok(())
}

/// Every id merged into a profile, directly or through merges of merges (still linked, not
/// undone).
pub(super) fn absorbed_into(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Vec<ProfileId>> {
    let mut statement = conn.prepare_cached(
        "SELECT absorbed_id FROM merged_ids WHERE workspace_id = ? AND survivor_id = ?",
    )?;
    let mut found: Vec<ProfileId> = Vec::new();
    let mut next = 0;
    let mut current = id.clone();
    loop {
        let absorbed = statement
            .query_map(params![ws.0, current.0], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
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
pub(super) fn forget_absorbed(conn: &Connection, ws: WorkspaceId, id: &ProfileId) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM merges WHERE workspace_id = ? AND EXISTS (SELECT 1 FROM json_each(merges.absorbed) AS a WHERE json_extract(a.value, '$.id') = ?)",
    )?
    .execute(params![ws.0, id.0])?;
    Ok(())
}
