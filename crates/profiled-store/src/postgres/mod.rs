//! The server backend: PostgreSQL, and the engines that speak its protocol and SQL (Citus,
//! CockroachDB, YugabyteDB; see `docs/scaling.md`).
//!
//! Any number of profiled processes may share one database. Write transactions run at READ
//! COMMITTED and lock what they read (`FOR UPDATE`), so a read-modify-write never loses a
//! concurrent update; when the database reports a serialization failure or a deadlock the
//! error is [`StoreError::Contended`] and the service runs the use-case again.

mod batch;
mod changes;
mod deletions;
mod events;
mod filter;
mod imports;
mod merges;
mod profiles;
mod records;
mod search;
mod segments;
mod sessions;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use profiled_core::change::{Change, NewChange};
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{Identity, Profile, ProfileId, RawProfile, WorkspaceId};

use crate::rows::ProfileColumns;
use sqlx::migrate::{Migration, MigrationType, Migrator};
pub use sqlx::postgres::PgSslMode;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Postgres, SqlSafeStr, Transaction};

use crate::{
    ApiKeyRecord, CompanyPage, CompanyRecord, ComputedRecord, DeletionReceipt, ImportRecord,
    MergeRecord, ProfileTx, PropertyIndex, Result, SearchPage, SearchQuery, SegmentMember,
    SegmentMove, SegmentRecord, SessionRecord, Store, StoreError, StoredEvent, StoredMerge,
    VerificationRecord, Workspace,
};

/// Settings of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database?sslmode=…`
    pub url: String,
    /// Connections in the pool, for reads and writes alike.
    pub max_connections: u32,
    /// The longest any statement may run before the database cancels it.
    pub statement_timeout: Option<Duration>,
    /// The schema profiled's tables live in (created if missing); the URL's default when unset.
    pub schema: Option<String>,
    /// TLS to the database; overrides the URL's `sslmode` when set.
    pub ssl_mode: Option<PgSslMode>,
    /// A PEM file of certificate authorities to verify the server with.
    pub ssl_root_cert: Option<PathBuf>,
    /// How long a pooled connection may sit idle and still be handed out untested.
    pub idle_before_test: Duration,
}

impl PostgresSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 16,
            statement_timeout: Some(Duration::from_secs(30)),
            schema: None,
            ssl_mode: None,
            ssl_root_cert: None,
            idle_before_test: Duration::from_secs(5),
        }
    }
}

/// Whether a schema name is a plain identifier (it is written into SQL unquoted).
pub fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects, creates the schema if asked for one, and migrates.
    pub async fn open(settings: &PostgresSettings) -> Result<Self> {
        let configuration =
            |message: String| StoreError::Backend(sqlx::Error::Configuration(message.into()));
        let mut options = PgConnectOptions::from_str(&settings.url)?;
        if let Some(mode) = settings.ssl_mode {
            options = options.ssl_mode(mode);
        }
        if let Some(cert) = &settings.ssl_root_cert {
            options = options.ssl_root_cert(cert);
        }
        let mut startup = Vec::new();
        if let Some(schema) = &settings.schema {
            if !valid_schema_name(schema) {
                return Err(configuration(format!(
                    "schema `{schema}` must be lowercase letters, digits and underscores"
                )));
            }
            startup.push(("search_path", schema.clone()));
        }
        if let Some(timeout) = settings.statement_timeout {
            startup.push(("statement_timeout", format!("{}ms", timeout.as_millis())));
        }
        options = options.options(startup);
        let idle_before_test = settings.idle_before_test;
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // sqlx tests every connection it hands out with a round trip of its own, and again
            // when it takes it back: three round trips for a one-statement read. The test on
            // return suffices for a connection used a moment ago; only one idle for longer is
            // tested again, as the database may have closed it meanwhile. Measured on 100,000
            // profiles: about 10 % more upserts and gets a second (docs/benchmarks.md).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > idle_before_test {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        if let Some(schema) = &settings.schema {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(&pool)
            .await
            .or_else(|e| {
                // Another node created it at the same moment.
                if StoreError::is_unique_violation(&e) {
                    Ok(Default::default())
                } else {
                    Err(e)
                }
            })?;
        }
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Runs the migrations. Without advisory locks (distributed engines lack them), two nodes
/// starting together may race: the loser's DDL fails, and it tries again and finds the work
/// done.
async fn migrate(pool: &PgPool) -> Result<()> {
    let mut attempts = 0;
    loop {
        match migrator().run(pool).await {
            Ok(()) => return Ok(()),
            Err(_) if attempts < 5 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempts)).await;
            }
            Err(e) => return Err(StoreError::Migration(e.to_string())),
        }
    }
}

fn migrator() -> Migrator {
    let migration = |version, description: &'static str, sql: &'static str| {
        Migration::new(
            version,
            description.into(),
            MigrationType::Simple,
            sql.into_sql_str(),
            false,
        )
    };
    let mut migrator = Migrator::with_migrations(vec![
        migration(1, "init", include_str!("migrations/0001_init.sql")),
        migration(
            2,
            "deletion receipts",
            include_str!("migrations/0002_deletions.sql"),
        ),
        migration(
            3,
            "import jobs",
            include_str!("migrations/0003_imports.sql"),
        ),
        migration(4, "events", include_str!("migrations/0004_events.sql")),
        migration(
            5,
            "segments and companies",
            include_str!("migrations/0005_segments_companies.sql"),
        ),
        migration(
            6,
            "workspace settings and sessions",
            include_str!("migrations/0006_workspace_settings.sql"),
        ),
        migration(
            7,
            "identities in the profile row",
            include_str!("migrations/0007_profile_identities.sql"),
        ),
    ]);
    migrator.set_locking(false);
    migrator
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_workspace(&self, name: &str, now: Timestamp) -> Result<Workspace> {
        records::create_workspace(&self.pool, name, now).await
    }

    async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>> {
        records::workspace_by_id(&self.pool, id).await
    }

    async fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>> {
        records::workspace_by_name(&self.pool, name).await
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        records::list_workspaces(&self.pool).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        records::insert_api_key(&self.pool, key).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        records::api_key(&self.pool, id).await
    }

    async fn list_api_keys(&self, workspace: Option<WorkspaceId>) -> Result<Vec<ApiKeyRecord>> {
        records::list_api_keys(&self.pool, workspace).await
    }

    async fn revoke_api_key(
        &self,
        workspace: Option<WorkspaceId>,
        id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        records::revoke_api_key(&self.pool, workspace, id, now).await
    }

    async fn profile(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<Profile>> {
        profiles::load(&self.pool, ws, id).await
    }

    async fn profile_raw(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<RawProfile>> {
        // Through the decoded form, as `search_raw` is.
        Ok(profiles::load(&self.pool, ws, id)
            .await?
            .map(RawProfile::from))
    }

    async fn profile_by_identity(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Option<Profile>> {
        profiles::load_by_identity(&self.pool, ws, identity).await
    }

    async fn profile_by_identity_raw(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Option<RawProfile>> {
        // Through the decoded form, as `search_raw` is.
        Ok(profiles::load_by_identity(&self.pool, ws, identity)
            .await?
            .map(RawProfile::from))
    }

    async fn search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<SearchPage> {
        let mut conn = self.pool.acquire().await?;
        search::search(&mut conn, ws, query, ProfileColumns::decode).await
    }

    async fn search_raw(
        &self,
        ws: WorkspaceId,
        query: &SearchQuery,
    ) -> Result<SearchPage<RawProfile>> {
        let mut conn = self.pool.acquire().await?;
        // Through the decoded form: `jsonb` text has its own key order and spacing, and
        // profiles are shown the same way whichever read served them.
        search::search(&mut conn, ws, query, |columns| {
            Ok(RawProfile::from(columns.decode()?))
        })
        .await
    }

    async fn count(&self, ws: WorkspaceId, filter: &Filter, now: Timestamp) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        search::count(&mut conn, ws, filter, now).await
    }

    async fn explain_search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<String> {
        let mut conn = self.pool.acquire().await?;
        search::explain(&mut conn, ws, query).await
    }

    async fn declare_index(
        &self,
        ws: WorkspaceId,
        field: &Field,
        value_type: ValueType,
        now: Timestamp,
    ) -> Result<PropertyIndex> {
        search::declare_index(&self.pool, ws, field, value_type, now).await
    }

    async fn drop_index(&self, ws: WorkspaceId, field: &Field) -> Result<bool> {
        search::drop_index(&self.pool, ws, field).await
    }

    async fn property_indexes(&self, ws: WorkspaceId) -> Result<Vec<PropertyIndex>> {
        search::property_indexes(&self.pool, ws).await
    }

    async fn survivor_of(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<ProfileId>> {
        let mut conn = self.pool.acquire().await?;
        merges::survivor_of(&mut conn, ws, id).await
    }

    async fn merges_into(&self, ws: WorkspaceId, survivor: &ProfileId) -> Result<Vec<StoredMerge>> {
        let mut conn = self.pool.acquire().await?;
        merges::into_profile(&mut conn, ws, survivor).await
    }

    async fn history(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Change>> {
        changes::history(&self.pool, ws, id, before, limit).await
    }

    async fn changes(&self, ws: WorkspaceId, after: i64, limit: u32) -> Result<Vec<Change>> {
        changes::feed(&self.pool, ws, after, limit).await
    }

    async fn prune_changes(&self, before: Timestamp) -> Result<u64> {
        changes::prune(&self.pool, before).await
    }

    async fn events(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        before: Option<(Timestamp, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        events::list(&self.pool, ws, profile, before, limit).await
    }

    async fn prune_events(&self, before: Timestamp) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        events::prune(&mut conn, before).await
    }

    async fn computed_definitions(&self, ws: WorkspaceId) -> Result<Vec<ComputedRecord>> {
        events::definitions(&self.pool, ws).await
    }

    async fn save_computed_definition(
        &self,
        ws: WorkspaceId,
        record: &ComputedRecord,
    ) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        events::save_definition(&mut conn, ws, record).await
    }

    async fn delete_computed_definition(&self, ws: WorkspaceId, key: &str) -> Result<bool> {
        let mut conn = self.pool.acquire().await?;
        events::delete_definition(&mut conn, ws, key).await
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<()> {
        sessions::insert(&self.pool, session).await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        sessions::load(&self.pool, id).await
    }

    async fn revoke_sessions(
        &self,
        ws: WorkspaceId,
        id: Option<&str>,
        profile: Option<&ProfileId>,
        now: Timestamp,
    ) -> Result<u64> {
        sessions::revoke(&self.pool, ws, id, profile, now).await
    }

    async fn verification(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Option<VerificationRecord>> {
        sessions::verification(&self.pool, ws, profile).await
    }

    async fn save_verification(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        record: Option<&VerificationRecord>,
    ) -> Result<()> {
        sessions::save_verification(&self.pool, ws, profile, record).await
    }

    async fn count_verification_send(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        at: Timestamp,
        since: Timestamp,
    ) -> Result<u64> {
        sessions::count_send(&self.pool, ws, profile, at, since).await
    }

    async fn setting(
        &self,
        ws: WorkspaceId,
        name: &str,
    ) -> Result<Option<(serde_json::Value, Timestamp)>> {
        records::setting(&self.pool, ws, name).await
    }

    async fn save_setting(
        &self,
        ws: WorkspaceId,
        name: &str,
        value: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Result<bool> {
        records::save_setting(&self.pool, ws, name, value, now).await
    }

    async fn segments(&self, ws: WorkspaceId) -> Result<Vec<SegmentRecord>> {
        segments::list(&self.pool, ws).await
    }

    async fn save_segment(&self, ws: WorkspaceId, segment: &SegmentRecord) -> Result<()> {
        segments::save(&self.pool, ws, segment).await
    }

    async fn delete_segment(&self, ws: WorkspaceId, key: &str, now: Timestamp) -> Result<bool> {
        segments::delete(&self.pool, ws, key, now).await
    }

    async fn segment_members(
        &self,
        ws: WorkspaceId,
        key: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SegmentMember>> {
        segments::members(&self.pool, ws, key, after, limit).await
    }

    async fn segment_size(&self, ws: WorkspaceId, key: &str) -> Result<u64> {
        segments::size(&self.pool, ws, key).await
    }

    async fn segments_due(
        &self,
        now: Timestamp,
        settled: Timestamp,
        stale: Timestamp,
    ) -> Result<Vec<(WorkspaceId, SegmentRecord)>> {
        segments::due(&self.pool, now, settled, stale).await
    }

    async fn lease_segment(
        &self,
        ws: WorkspaceId,
        key: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        segments::lease(&self.pool, ws, key, now, until).await
    }

    async fn segment_reconciled(
        &self,
        ws: WorkspaceId,
        key: &str,
        version: i64,
        at: Timestamp,
    ) -> Result<()> {
        segments::reconciled(&self.pool, ws, key, version, at).await
    }

    async fn sweep_segment_members(&self, before: Timestamp) -> Result<u64> {
        segments::sweep(&self.pool, before).await
    }

    async fn company(&self, ws: WorkspaceId, id: &str) -> Result<Option<CompanyRecord>> {
        let mut conn = self.pool.acquire().await?;
        segments::company(&mut conn, ws, "id", id).await
    }

    async fn company_by_uid(&self, ws: WorkspaceId, uid: &str) -> Result<Option<CompanyRecord>> {
        let mut conn = self.pool.acquire().await?;
        segments::company(&mut conn, ws, "uid", uid).await
    }

    async fn companies(
        &self,
        ws: WorkspaceId,
        page: &CompanyPage<'_>,
    ) -> Result<Vec<CompanyRecord>> {
        segments::companies(&self.pool, ws, page).await
    }

    async fn delete_company(&self, ws: WorkspaceId, id: &str) -> Result<bool> {
        segments::delete_company(&self.pool, ws, id).await
    }

    async fn deletion(&self, ws: WorkspaceId, id: &str) -> Result<Option<DeletionReceipt>> {
        deletions::load(&self.pool, ws, id).await
    }

    async fn deletions(
        &self,
        ws: WorkspaceId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeletionReceipt>> {
        deletions::list(&self.pool, ws, before, limit).await
    }

    async fn save_import(&self, ws: WorkspaceId, record: &ImportRecord) -> Result<()> {
        imports::save(&self.pool, ws, record).await
    }

    async fn import(&self, ws: WorkspaceId, id: &str) -> Result<Option<ImportRecord>> {
        imports::load(&self.pool, ws, id).await
    }

    async fn imports(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<ImportRecord>> {
        imports::list(&self.pool, ws, limit).await
    }

    async fn scrub(&self) -> Result<()> {
        // Dead rows stay in their pages until VACUUM removes them; PostgreSQL has no secure
        // delete, so this is as far as the database itself goes (see docs/scaling.md).
        sqlx::query("VACUUM profiles, identities, changes, merges, merged_ids")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn ProfileTx>> {
        Ok(Box::new(PostgresTx {
            tx: self.pool.begin().await?,
        }))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

struct PostgresTx {
    tx: Transaction<'static, Postgres>,
}

#[async_trait]
impl ProfileTx for PostgresTx {
    async fn profiles_by_identities(
        &mut self,
        ws: WorkspaceId,
        identities: &[Identity],
    ) -> Result<Vec<Profile>> {
        profiles::load_by_identities_for_update(&mut self.tx, ws, identities).await
    }

    async fn profile(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<Profile>> {
        profiles::load_for_update(&mut self.tx, ws, id).await
    }

    async fn insert_profile(&mut self, ws: WorkspaceId, profile: &Profile) -> Result<()> {
        profiles::insert(&mut self.tx, ws, profile).await
    }

    async fn update_profile(&mut self, ws: WorkspaceId, profile: &Profile) -> Result<()> {
        profiles::update(&mut self.tx, ws, profile).await
    }

    async fn insert_identity(
        &mut self,
        ws: WorkspaceId,
        id: &ProfileId,
        identity: &Identity,
        now: Timestamp,
    ) -> Result<()> {
        profiles::insert_identity(&mut self.tx, ws, id, identity, now).await
    }

    async fn delete_identity(
        &mut self,
        ws: WorkspaceId,
        id: &ProfileId,
        identity: &Identity,
    ) -> Result<bool> {
        profiles::delete_identity(&mut self.tx, ws, id, identity).await
    }

    async fn record_merge(&mut self, ws: WorkspaceId, merge: &MergeRecord<'_>) -> Result<()> {
        merges::record(&mut self.tx, ws, merge).await
    }

    async fn survivor_of(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<ProfileId>> {
        merges::survivor_of(&mut self.tx, ws, id).await
    }

    async fn merge_record(&mut self, ws: WorkspaceId, id: &str) -> Result<Option<StoredMerge>> {
        merges::load(&mut self.tx, ws, id, true).await
    }

    async fn mark_merge_undone(&mut self, ws: WorkspaceId, id: &str, at: Timestamp) -> Result<()> {
        merges::mark_undone(&mut self.tx, ws, id, at).await
    }

    async fn move_identity(
        &mut self,
        ws: WorkspaceId,
        identity: &Identity,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<bool> {
        merges::move_identity(&mut self.tx, ws, identity, from, to).await
    }

    async fn append_change(&mut self, ws: WorkspaceId, change: &NewChange) -> Result<i64> {
        changes::append(&mut self.tx, ws, change).await
    }

    async fn move_segments(&mut self, ws: WorkspaceId, moves: &[SegmentMove]) -> Result<()> {
        segments::apply_moves(&mut self.tx, ws, moves).await
    }

    async fn company_by_uid(
        &mut self,
        ws: WorkspaceId,
        uid: &str,
    ) -> Result<Option<CompanyRecord>> {
        segments::company(&mut self.tx, ws, "uid", uid).await
    }

    async fn save_company(&mut self, ws: WorkspaceId, company: &CompanyRecord) -> Result<()> {
        segments::save_company(&mut self.tx, ws, company).await
    }

    async fn insert_events(&mut self, ws: WorkspaceId, new: &[StoredEvent]) -> Result<()> {
        events::insert(&mut self.tx, ws, new).await
    }

    async fn known_event_ids(&mut self, ws: WorkspaceId, ids: &[String]) -> Result<Vec<String>> {
        events::known_ids(&mut self.tx, ws, ids).await
    }

    async fn events_since(
        &mut self,
        ws: WorkspaceId,
        profile: &ProfileId,
        since: Timestamp,
    ) -> Result<Vec<StoredEvent>> {
        events::since(&mut self.tx, ws, profile, since).await
    }

    async fn delete_events(&mut self, ws: WorkspaceId, profile: &ProfileId) -> Result<u64> {
        events::delete_of(&mut self.tx, ws, profile).await
    }

    async fn delete_profile(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<bool> {
        // The profiles merged into this one live on in their change-log entries and in merge
        // snapshots: they go too.
        let absorbed = merges::absorbed_into(&mut self.tx, ws, id).await?;
        for gone in std::iter::once(id).chain(&absorbed) {
            changes::forget_profile(&mut self.tx, ws, gone).await?;
            events::delete_of(&mut self.tx, ws, gone).await?;
            segments::forget_profile(&mut self.tx, ws, gone).await?;
            sessions::forget_profile(&mut self.tx, ws, gone).await?;
            merges::forget_survivor(&mut self.tx, ws, gone).await?;
            merges::forget_absorbed(&mut self.tx, ws, gone).await?;
        }
        profiles::delete(&mut self.tx, ws, id).await
    }

    async fn insert_profiles(&mut self, ws: WorkspaceId, profiles: &[Profile]) -> Result<()> {
        batch::insert_profiles(&mut self.tx, ws, profiles).await
    }

    async fn update_profiles(&mut self, ws: WorkspaceId, profiles: &[Profile]) -> Result<()> {
        batch::update_profiles(&mut self.tx, ws, profiles).await
    }

    async fn insert_identities(
        &mut self,
        ws: WorkspaceId,
        identities: &[(ProfileId, Identity)],
        now: Timestamp,
    ) -> Result<()> {
        batch::insert_identities(&mut self.tx, ws, identities, now).await
    }

    async fn append_changes(&mut self, ws: WorkspaceId, changes: &[NewChange]) -> Result<()> {
        batch::append_changes(&mut self.tx, ws, changes).await
    }

    async fn record_deletion(&mut self, ws: WorkspaceId, receipt: &DeletionReceipt) -> Result<()> {
        deletions::record(&mut self.tx, ws, receipt).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
