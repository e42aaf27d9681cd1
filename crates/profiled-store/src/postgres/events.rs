//! Raw events and the workspace's computed property definitions.

use jiff::Timestamp;
use profiled_core::{ProfileId, WorkspaceId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, QueryBuilder, Row};

use crate::rows::{EventColumns, from_micros, micros, to_json};
use crate::{ComputedRecord, Result, StoreError, StoredEvent};

/// Rows per statement: 8 values each, below PostgreSQL's 65,535.
const ROWS: usize = 1000;

pub(super) async fn insert(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    events: &[StoredEvent],
) -> Result<()> {
    for chunk in events.chunks(ROWS) {
        let mut builder = QueryBuilder::<Postgres>::new(
            "INSERT INTO events (workspace_id, id, profile_id, name, at, received_at, properties, context) ",
        );
        builder.push_values(chunk, |mut row, e| {
            row.push_bind(ws.0)
                .push_bind(&e.id)
                .push_bind(&e.profile_id.0)
                .push_bind(&e.name)
                .push_bind(micros(e.at))
                .push_bind(micros(e.received_at))
                .push_bind(to_json(&e.properties))
                .push_unseparated("::jsonb")
                .push_bind(to_json(&e.context))
                .push_unseparated("::jsonb");
        });
        builder.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn known_ids(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    ids: &[String],
) -> Result<Vec<String>> {
    let mut known = Vec::new();
    for chunk in ids.chunks(ROWS) {
        let mut builder =
            QueryBuilder::<Postgres>::new("SELECT id FROM events WHERE workspace_id = ");
        builder.push_bind(ws.0).push(" AND id IN (");
        let mut list = builder.separated(", ");
        for id in chunk {
            list.push_bind(id);
        }
        builder.push(")");
        known.extend(
            builder
                .build_query_scalar::<String>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(known)
}

const COLUMNS: &str = "id, profile_id, name, at, received_at, properties::text AS properties, context::text AS context";

fn row(r: &PgRow) -> Result<StoredEvent> {
    EventColumns {
        id: r.try_get("id")?,
        profile_id: r.try_get("profile_id")?,
        name: r.try_get("name")?,
        at: r.try_get("at")?,
        received_at: r.try_get("received_at")?,
        properties: r.try_get("properties")?,
        context: r.try_get("context")?,
    }
    .decode()
}

pub(super) async fn since(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: &ProfileId,
    since: Timestamp,
) -> Result<Vec<StoredEvent>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE workspace_id = $1 AND profile_id = $2 AND at >= $3 ORDER BY at, id"
    )))
    .bind(ws.0)
    .bind(&profile.0)
    .bind(micros(since))
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(row)
    .collect()
}

pub(super) async fn list(
    pool: &PgPool,
    ws: WorkspaceId,
    profile: &ProfileId,
    before: Option<(Timestamp, &str)>,
    limit: u32,
) -> Result<Vec<StoredEvent>> {
    let (at, id) = before.map_or((i64::MAX, ""), |(at, id)| (micros(at), id));
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE workspace_id = $1 AND profile_id = $2 \
         AND (at < $3 OR (at = $3 AND id < $4) OR $4 = '') ORDER BY at DESC, id DESC LIMIT $5"
    )))
    .bind(ws.0)
    .bind(&profile.0)
    .bind(at)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?
    .iter()
    .map(row)
    .collect()
}

pub(super) async fn delete_of(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: &ProfileId,
) -> Result<u64> {
    let done = sqlx::query("DELETE FROM events WHERE workspace_id = $1 AND profile_id = $2")
        .bind(ws.0)
        .bind(&profile.0)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Gives the absorbed profile's events to the survivor of a merge.
pub(super) async fn move_to(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    from: &ProfileId,
    to: &ProfileId,
) -> Result<()> {
    sqlx::query("UPDATE events SET profile_id = $1 WHERE workspace_id = $2 AND profile_id = $3")
        .bind(&to.0)
        .bind(ws.0)
        .bind(&from.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn prune(conn: &mut PgConnection, before: Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM events WHERE at < $1")
        .bind(micros(before))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

pub(super) async fn definitions(pool: &PgPool, ws: WorkspaceId) -> Result<Vec<ComputedRecord>> {
    sqlx::query(
        "SELECT key, definition::text AS definition, created_at, updated_at FROM computed_definitions \
         WHERE workspace_id = $1 ORDER BY key",
    )
    .bind(ws.0)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        let text: String = r.try_get("definition")?;
        Ok(ComputedRecord {
            key: r.try_get("key")?,
            definition: serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("computed definition: {e}")))?,
            created_at: from_micros(r.try_get("created_at")?)?,
            updated_at: from_micros(r.try_get("updated_at")?)?,
        })
    })
    .collect()
}

pub(super) async fn save_definition(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    record: &ComputedRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO computed_definitions (workspace_id, key, definition, created_at, updated_at) \
         VALUES ($1, $2, CAST($3 AS jsonb), $4, $5) ON CONFLICT (workspace_id, key) DO UPDATE SET \
         definition = excluded.definition, updated_at = excluded.updated_at",
    )
    .bind(ws.0)
    .bind(&record.key)
    .bind(record.definition.to_string())
    .bind(micros(record.created_at))
    .bind(micros(record.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn delete_definition(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    key: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM computed_definitions WHERE workspace_id = $1 AND key = $2")
        .bind(ws.0)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
