//! Profile and identity rows, on the connections driven in place (`inline.rs`).

use jiff::Timestamp;
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::micros;
use super::search::{columns_of, profile_columns};
use crate::rows::{ProfileColumns, documents, identities_json};
use crate::{Result, StoreError};

/// A profile by id, decoded by `decode` ([`ProfileColumns::decode`] or
/// [`ProfileColumns::decode_raw`]).
pub(super) fn load<P>(
    conn: &Connection,
    ws: WorkspaceId,
    id: &ProfileId,
    decode: fn(ProfileColumns) -> Result<P>,
) -> Result<Option<P>> {
    let sql = format!(
        "SELECT {} FROM profiles AS p WHERE p.workspace_id = ? AND p.id = ?",
        profile_columns()
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let row = statement
        .query_row(params![ws.0, id.0], |row| Ok(columns_of(row)))
        .optional()?;
    row.transpose()?.map(decode).transpose()
}

/// The profile carrying an identity, decoded by `decode` ([`ProfileColumns::decode`] or
/// [`ProfileColumns::decode_raw`]).
pub(super) fn load_by_identity<P>(
    conn: &Connection,
    ws: WorkspaceId,
    identity: &Identity,
    decode: fn(ProfileColumns) -> Result<P>,
) -> Result<Option<P>> {
    let sql = format!(
        "SELECT {} FROM identities AS o JOIN profiles AS p ON p.workspace_id = o.workspace_id AND p.id = o.profile_id \
         WHERE o.workspace_id = ? AND o.kind = ? AND o.value = ?",
        profile_columns()
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let row = statement
        .query_row(
            params![ws.0, identity.kind.as_str(), identity.value],
            |row| Ok(columns_of(row)),
        )
        .optional()?;
    row.transpose()?.map(decode).transpose()
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
        // Identities point only at live rows (foreign key), so each owner is found.
        profiles.extend(load(conn, ws, &ProfileId(id), ProfileColumns::decode)?);
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

/// Writes the identities a profile carries into its row again, from the identities table:
/// every change of a profile's identities other than its insert ends with this.
pub(super) fn relist_identities(conn: &Connection, ws: WorkspaceId, id: &ProfileId) -> Result<()> {
    conn.prepare_cached(
        "UPDATE profiles SET identities = (SELECT json_group_array(json_array(i.kind, i.value)) \
         FROM identities AS i WHERE i.workspace_id = ?1 AND i.profile_id = ?2) \
         WHERE workspace_id = ?1 AND id = ?2",
    )?
    .execute(params![ws.0, id.0])?;
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
    relist_identities(conn, ws, id)
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
    let deleted = conn
        .prepare_cached(
            "DELETE FROM identities WHERE workspace_id = ? AND kind = ? AND value = ? AND profile_id = ?",
        )?
        .execute(params![ws.0, identity.kind.as_str(), identity.value, id.0])?;
    if deleted > 0 {
        relist_identities(conn, ws, id)?;
    }
    Ok(deleted > 0)
}

pub(super) fn delete(conn: &Connection, ws: WorkspaceId, id: &ProfileId) -> Result<bool> {
    conn.prepare_cached("DELETE FROM identities WHERE workspace_id = ? AND profile_id = ?")?
        .execute(params![ws.0, id.0])?;
    let deleted = conn
        .prepare_cached("DELETE FROM profiles WHERE workspace_id = ? AND id = ?")?
        .execute(params![ws.0, id.0])?;
    Ok(deleted > 0)
}
