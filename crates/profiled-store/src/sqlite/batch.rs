//! Bulk writes (imports, combined upserts): one cached statement run once per row, on the
//! writer's own thread, so a thousand rows cost a thousand statement steps and no round trips.

use std::collections::BTreeMap;

use jiff::Timestamp;
use profiled_core::change::NewChange;
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use rusqlite::{Connection, params};

use super::micros;
use crate::Result;

pub(super) fn insert_profiles(
    conn: &Connection,
    ws: WorkspaceId,
    profiles: &[Profile],
) -> Result<()> {
    for profile in profiles {
        super::profiles::insert(conn, ws, profile)?;
    }
    Ok(())
}

pub(super) fn update_profiles(
    conn: &Connection,
    ws: WorkspaceId,
    profiles: &[Profile],
) -> Result<()> {
    for profile in profiles {
        super::profiles::update(conn, ws, profile)?;
    }
    Ok(())
}

pub(super) fn insert_identities(
    conn: &Connection,
    ws: WorkspaceId,
    identities: &[(ProfileId, Identity)],
    now: Timestamp,
) -> Result<()> {
    for (id, identity) in identities {
        super::profiles::insert_identity_row(conn, ws, id, identity, now)?;
    }
    // Each profile's row is relisted once, however many identities it gained.
    let mut gained: BTreeMap<&ProfileId, Vec<&Identity>> = BTreeMap::new();
    for (id, identity) in identities {
        gained.entry(id).or_default().push(identity);
    }
    for (id, identities) in gained {
        super::profiles::relist_identities(conn, ws, id, |listed| {
            listed.extend(identities.into_iter().cloned())
        })?;
    }
    Ok(())
}

pub(super) fn append_changes(
    conn: &Connection,
    ws: WorkspaceId,
    changes: &[NewChange],
) -> Result<()> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO changes (workspace_id, profile_id, at, actor, operation, changes, origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )?;
    for c in changes {
        statement.execute(params![
            ws.0,
            c.profile_id.0,
            micros(c.at),
            c.actor,
            c.operation.as_str(),
            serde_json::to_string(&c.changes).expect("key changes serialise"),
            c.origin,
        ])?;
    }
    Ok(())
}
