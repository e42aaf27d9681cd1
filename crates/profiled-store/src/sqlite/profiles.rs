//! Profile and identity rows, on the connections driven in place (`inline.rs`).

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::micros;
use super::search::{Decode, profile_columns, profile_of};
use crate::rows::{documents, identities_json, identities_of};
use crate::{Result, StoreError};

/// A profile by id, decoded by `decode`.
pub(super) fn load<P>(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    decode: Decode<P>,
) -> Result<Option<P>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        profile_columns!(),
        " FROM profiles AS p WHERE p.workspace_id = ? AND p.id = ?"
    ))?;
    let row = statement
        .query_row(params![ws.0, id.0], |row| Ok(decode(row)))
        .optional()?;
    row.transpose()
}

/// The profile carrying an identity, decoded by `decode`.
pub(super) fn load_by_identity<P>(
    conn: &Connection,
    ws: WorkspaceId,
    identity: &Identity,
    decode: Decode<P>,
) -> Result<Option<P>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        profile_columns!(),
        " FROM identities AS o JOIN profiles AS p ON p.workspace_id = o.workspace_id AND p.id = o.profile_id \
         WHERE o.workspace_id = ? AND o.kind = ? AND o.value = ?"
    ))?;
    let row = statement
        .query_row(
            params![ws.0, identity.kind.as_str(), identity.value],
            |row| Ok(decode(row)),
        )
        .optional()?;
    row.transpose()
}

/// The profiles that own any of the identities, each once, by id.
pub(super) fn load_by_identities(
    conn: &Connection,
    ws: WorkspaceId,
    identities: &[Identity],
) -> Result<Vec<Profile>> {
    let mut owners: Vec<String> = Vec::new();
    {
        let mut owner = conn.prepare_cached(
            "SELECT profile_id FROM identities WHERE workspace_id = ? AND kind = ? AND value = ?",
        )?;
        for identity in identities {
            let found: Option<String> = owner
                .query_row(
                    params![ws.0, identity.kind.as_str(), identity.value],
                    |row| row.get(0),
                )
                .optional()?;
            owners.extend(found);
        }
    }
    owners.sort();
    owners.dedup();
    let mut profiles = Vec::with_capacity(owners.len());
    for id in owners {
        // The store deletes a profile's identities with it, so each owner is found.
        profiles.extend(load(conn, ws, &ProfileId(id), profile_of)?);
    }
    Ok(profiles)
}

/// Inserts a new profile with its identities (its row lists them as well).
pub(super) fn insert(conn: &Connection, ws: WorkspaceId, profile: &Profile) -> Result<()> {
    let [properties, computed, set_once, location, device, activity] = documents(profile);
    conn.prepare_cached(
        "INSERT INTO profiles (workspace_id, id, created_at, updated_at, version, company_id, \
         properties, computed, set_once, location, device, activity, identities) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        ws.0,
        profile.id.0,
        micros(profile.created_at),
        micros(profile.updated_at),
        profile.version,
        profile.company,
        properties,
        computed,
        set_once,
        location,
        device,
        activity,
        identities_json(&profile.identities),
    ])?;
    for identity in &profile.identities {
        insert_identity_row(conn, ws, &profile.id, identity, profile.created_at)?;
    }
    Ok(())
}

/// The identities a profile's row lists; `None` when there is no such profile.
pub(super) fn listed_identities(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
) -> Result<Option<Vec<Identity>>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT identities FROM profiles WHERE workspace_id = ? AND id = ?")?
        .query_row(params![ws.0, id.0], |row| row.get(0))
        .optional()?;
    text.map(|text| identities_of(&text)).transpose()
}

/// Edits the identities a profile's row lists: every change of a profile's identities rows
/// other than its insert ends with this, as the row is the only way to a profile's
/// identities (`0012_identities_by_key_only.sql`).
pub(super) fn relist_identities(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    edit: impl FnOnce(&mut Vec<Identity>),
) -> Result<()> {
    let mut listed = listed_identities(conn, ws, id)?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "identities changed for profile {id}, which has no row"
        ))
    })?;
    edit(&mut listed);
    listed.sort();
    listed.dedup();
    conn.prepare_cached("UPDATE profiles SET identities = ? WHERE workspace_id = ? AND id = ?")?
        .execute(params![identities_json(&listed), ws.0, id.0])?;
    Ok(())
}

pub(super) fn update(conn: &Connection, ws: WorkspaceId, profile: &Profile) -> Result<()> {
    let [properties, computed, set_once, location, device, activity] = documents(profile);
    conn.prepare_cached(
        "UPDATE profiles SET created_at = ?, updated_at = ?, version = ?, company_id = ?, properties = ?, \
         computed = ?, set_once = ?, location = ?, device = ?, activity = ? WHERE workspace_id = ? AND id = ?",
    )?
    .execute(params![
        micros(profile.created_at),
        micros(profile.updated_at),
        profile.version,
        profile.company,
        properties,
        computed,
        set_once,
        location,
        device,
        activity,
        ws.0,
        profile.id.0,
    ])?;
    Ok(())
}

/// Attaches an identity to an existing profile.
pub(super) fn insert_identity(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
    now: Timestamp,
) -> Result<()> {
    insert_identity_row(conn, ws, id, identity, now)?;
    relist_identities(conn, ws, id, |listed| listed.push(identity.clone()))
}

/// The identity's row alone: its profile's row must be relisted (or be new).
pub(super) fn insert_identity_row(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
    now: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO identities (workspace_id, kind, value, profile_id, created_at) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![ws.0, identity.kind.as_str(), identity.value, id.0, micros(now)])
    .map_err(|e| {
        if StoreError::is_sqlite_unique_violation(&e) {
            StoreError::IdentityTaken(identity.clone())
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub(super) fn delete_identity(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
) -> Result<bool> {
    let deleted = delete_identity_row(conn, ws, id, identity)?;
    if deleted {
        relist_identities(conn, ws, id, |listed| listed.retain(|i| i != identity))?;
    }
    Ok(deleted)
}

/// The identity's row alone, if it points at the profile: its profile's row must be
/// relisted (or go).
fn delete_identity_row(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    identity: &Identity,
) -> Result<bool> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM identities WHERE workspace_id = ? AND kind = ? AND value = ? AND profile_id = ?",
        )?
        .execute(params![ws.0, identity.kind.as_str(), identity.value, id.0])?;
    Ok(deleted > 0)
}

/// A profile, with the identities its row lists.
pub(super) fn delete(conn: &Connection, ws: WorkspaceId, id: &ProfileId) -> Result<bool> {
    for identity in listed_identities(conn, ws, id)?.unwrap_or_default() {
        delete_identity_row(conn, ws, id, &identity)?;
    }
    let deleted = conn
        .prepare_cached("DELETE FROM profiles WHERE workspace_id = ? AND id = ?")?
        .execute(params![ws.0, id.0])?;
    Ok(deleted > 0)
}
