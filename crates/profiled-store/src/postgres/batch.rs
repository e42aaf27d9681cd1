//! Many rows per statement, for bulk writes (imports, combined upserts): one round trip
//! for a thousand rows instead of one each.

use jiff::Timestamp;
use profiled_core::change::NewChange;
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::Result;
use crate::rows::micros;
use crate::rows::{documents, identities_json};

/// Rows per statement: PostgreSQL binds at most 65,535 values.
const ROWS: usize = 1000;

const PROFILE_COLUMNS: &str = "INSERT INTO profiles (workspace_id, id, created_at, updated_at, version, \
     company_id, properties, computed, set_once, location, device, activity, identities) ";

fn profile_values(builder: &mut QueryBuilder<Postgres>, ws: WorkspaceId, profiles: &[Profile]) {
    builder.push_values(profiles, |mut row, p| {
        row.push_bind(ws.0)
            .push_bind(&p.id.0)
            .push_bind(micros(p.created_at))
            .push_bind(micros(p.updated_at))
            .push_bind(p.version)
            .push_bind(p.company.clone());
        for document in documents(p) {
            row.push_bind(document).push_unseparated("::jsonb");
        }
        // Written for new rows only: an update's conflict clause leaves the list as it is.
        row.push_bind(identities_json(&p.identities));
    });
}

pub(super) async fn insert_profiles(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profiles: &[Profile],
) -> Result<()> {
    for chunk in profiles.chunks(ROWS) {
        let mut builder = QueryBuilder::<Postgres>::new(PROFILE_COLUMNS);
        profile_values(&mut builder, ws, chunk);
        builder.build().execute(&mut *conn).await?;
    }
    let identities: Vec<(ProfileId, Identity)> = profiles
        .iter()
        .flat_map(|p| p.identities.iter().map(|i| (p.id.clone(), i.clone())))
        .collect();
    let now = profiles.first().map(|p| p.created_at);
    if let Some(now) = now {
        insert_identity_rows(conn, ws, &identities, now).await?;
    }
    Ok(())
}

/// Writes existing profiles' rows in place (an upsert on the primary key, which always finds
/// the row; the rows are already locked by the read that found them).
pub(super) async fn update_profiles(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profiles: &[Profile],
) -> Result<()> {
    for chunk in profiles.chunks(ROWS) {
        let mut builder = QueryBuilder::<Postgres>::new(PROFILE_COLUMNS);
        profile_values(&mut builder, ws, chunk);
        builder.push(
            " ON CONFLICT (workspace_id, id) DO UPDATE SET properties = excluded.properties, \
             computed = excluded.computed, created_at = excluded.created_at, updated_at = excluded.updated_at, \
             version = excluded.version, set_once = excluded.set_once, company_id = excluded.company_id, \
             location = excluded.location, device = excluded.device, activity = excluded.activity",
        );
        builder.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Attaches identities to existing profiles, and lists them in those profiles' rows.
pub(super) async fn insert_identities(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    identities: &[(ProfileId, Identity)],
    now: Timestamp,
) -> Result<()> {
    insert_identity_rows(conn, ws, identities, now).await?;
    let mut gained: Vec<&str> = identities.iter().map(|(id, _)| id.0.as_str()).collect();
    gained.sort_unstable();
    gained.dedup();
    for chunk in gained.chunks(ROWS) {
        super::profiles::relist_identities(conn, ws, chunk).await?;
    }
    Ok(())
}

/// The identity rows alone (of new profiles, whose rows list them already).
async fn insert_identity_rows(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    identities: &[(ProfileId, Identity)],
    now: Timestamp,
) -> Result<()> {
    for chunk in identities.chunks(ROWS) {
        let mut builder = QueryBuilder::<Postgres>::new(
            "INSERT INTO identities (workspace_id, kind, value, profile_id, created_at) ",
        );
        builder.push_values(chunk, |mut row, (id, identity)| {
            row.push_bind(ws.0)
                .push_bind(identity.kind.as_str())
                .push_bind(&identity.value)
                .push_bind(&id.0)
                .push_bind(micros(now));
        });
        builder.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn append_changes(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    changes: &[NewChange],
) -> Result<()> {
    for chunk in changes.chunks(ROWS) {
        let mut builder = QueryBuilder::<Postgres>::new(
            "INSERT INTO changes (workspace_id, profile_id, at, actor, operation, changes, origin) ",
        );
        builder.push_values(chunk, |mut row, c| {
            row.push_bind(ws.0)
                .push_bind(&c.profile_id.0)
                .push_bind(micros(c.at))
                .push_bind(&c.actor)
                .push_bind(c.operation.as_str())
                .push_bind(serde_json::to_string(&c.changes).expect("key changes serialise"))
                .push_unseparated("::jsonb")
                .push_bind(&c.origin);
        });
        builder.build().execute(&mut *conn).await?;
    }
    Ok(())
}
