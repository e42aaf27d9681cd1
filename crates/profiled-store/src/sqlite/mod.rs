//! The embedded backend: one SQLite file in WAL mode.
//!
//! Profile writes go through one connection (`group_commit.rs`) and start with
//! `BEGIN IMMEDIATE`, so a read-modify-write never races another writer of this process, and
//! another process (the CLI while the server runs) waits on the file lock instead of failing.
//! Reads see every committed write. The hot paths — profile reads, searches, every profile
//! write — drive their connections on the calling thread through rusqlite (`inline.rs`);
//! migrations and the rarely used records (workspaces, keys, settings, segments' definitions,
//! imports, sessions) go through sqlx pools. Both speak to the same libsqlite3.

mod batch;
mod changes;
mod checkpoint;
mod deletions;
mod durable;
mod events;
mod filter;
mod group_commit;
mod imports;
mod inline;
mod merges;
mod profiles;
mod records;
mod search;
mod segments;
mod sessions;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use profiled_core::change::{Change, NewChange};
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{Identity, Profile, ProfileId, RawProfile, WorkspaceId};

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{
    ApiKeyRecord, CompanyPage, CompanyRecord, ComputedRecord, DeletionReceipt, Durable,
    ImportRecord, MergeRecord, ProfileTx, PropertyIndex, Result, SearchPage, SearchQuery,
    SegmentMember, SegmentMove, SegmentRecord, SessionRecord, Store, StoreError, StoredEvent,
    StoredMerge, VerificationRecord, Workspace,
};

/// How hard SQLite syncs a commit to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: an acknowledged write survives a crash of the process and of
    /// the machine.
    #[default]
    Full,
    /// `synchronous = NORMAL`: survives a crash of the process; the last commits may be lost
    /// if the machine loses power.
    Normal,
}

/// Settings of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteSettings {
    pub durability: Durability,
    /// Searches and counts run at once, each on a connection of its own (writes always use
    /// one connection).
    pub read_connections: u32,
    /// How long a write waits for another process holding the file lock.
    pub busy_timeout: Duration,
    /// The page cache of each writing connection, in MiB (SQLite's default is about 2): more
    /// keeps the pages writes touch in memory. Measured on 100,000 profiles, 64 MiB did not
    /// change write throughput (docs/benchmarks.md).
    pub writer_cache_mib: u32,
    /// How much of the database file connections map into memory, in MiB (0: none, SQLite's
    /// default). Reads then come straight from the OS page cache instead of being copied into
    /// each connection's cache; mapped pages count in the process's resident memory.
    pub mmap_mib: u32,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            read_connections: 8,
            busy_timeout: Duration::from_secs(10),
            writer_cache_mib: 2,
            mmap_mib: 0,
        }
    }
}

/// The largest page of a search tried on the calling thread. Larger pages (an export reads
/// 1,000 profiles at a time) would mostly run past the budget and be read twice: that made a
/// 1,000,000-profile export 1.2 times slower.
const SHORT_PAGE: u32 = 100;

/// The SQLite store.
pub struct SqliteStore {
    /// Workspaces, keys and indexes (rare writes) use this pool; profile writes go through
    /// `profile_writes`, which keeps a connection of its own.
    writer: SqlitePool,
    profile_writes: group_commit::GroupCommit,
    /// Reads of profiles, searches and companies, driven on the calling thread.
    readers: std::sync::Arc<inline::Readers>,
    /// At FULL durability: what reads wait for, so that none shows a write not yet on disk.
    wal_sync: Option<std::sync::Arc<durable::WalSync>>,
    reader: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// The database file inside a data directory.
    pub const FILE_NAME: &'static str = "profiled.db";

    /// Opens (creating if needed) the database in `data_dir` and migrates it.
    pub async fn open_dir(data_dir: &Path, settings: &SqliteSettings) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(sqlx::Error::Configuration(
                format!("cannot create data directory {}: {e}", data_dir.display()).into(),
            ))
        })?;
        Self::open_file(&data_dir.join(Self::FILE_NAME), settings).await
    }

    /// Opens a `sqlite://` URL (or a plain path).
    pub async fn open_url(url: &str, settings: &SqliteSettings) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?;
        Self::open_file(options.get_filename(), settings).await
    }

    async fn open_file(path: &Path, settings: &SqliteSettings) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(settings.busy_timeout)
            .pragma("temp_store", "memory")
            // Deleted content is overwritten with zeros, so a forgotten profile is not left
            // behind in free space of the database file.
            .pragma("secure_delete", "on")
            .pragma(
                "mmap_size",
                (u64::from(settings.mmap_mib) << 20).to_string(),
            )
            // Checkpoints run in the background (`checkpoint.rs`); a commit checkpoints by
            // itself only past this much log.
            .pragma(
                "wal_autocheckpoint",
                checkpoint::AUTOCHECKPOINT_PAGES.to_string(),
            );
        // A negative cache size is in KiB.
        let writing = options.clone().pragma(
            "cache_size",
            format!("-{}", u64::from(settings.writer_cache_mib.max(2)) * 1024),
        );
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(writing.clone())
            .await?;
        migrator()
            .run(&writer)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        let opener = inline::Opener::new(path, settings);
        let wal_sync = (settings.durability == Durability::Full)
            .then(|| std::sync::Arc::new(durable::WalSync::new(path)));
        let checkpointer = checkpoint::Checkpointer::start(opener.checkpointer()?)
            .map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;
        let profile_writes = group_commit::GroupCommit::new(
            opener.writer()?,
            opener.busy_timeout(),
            wal_sync.clone(),
            checkpointer,
        );
        let readers = inline::Readers::new(opener, settings.read_connections as usize);
        let reader = SqlitePoolOptions::new()
            .max_connections(settings.read_connections.max(1))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            writer,
            profile_writes,
            readers,
            wal_sync,
            reader,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A page of a search, each row decoded by `decode`. Pages of up to [`SHORT_PAGE`] rows
    /// are tried on the calling thread first ([`inline::Readers::bounded_or_scan`]).
    async fn search_with<P: Send + 'static>(
        &self,
        ws: WorkspaceId,
        query: &SearchQuery,
        decode: search::Decode<P>,
    ) -> Result<SearchPage<P>> {
        let short = query.limit <= SHORT_PAGE;
        let query = query.clone();
        let read = move |conn: &rusqlite::Connection| search::search(conn, ws, &query, decode);
        let page = if short {
            self.readers.bounded_or_scan(read).await
        } else {
            self.readers.scan(read).await
        };
        self.settled(page).await
    }

    /// A read's answer, once every profile write it may have seen is on disk (`durable.rs`).
    async fn settled<T>(&self, read: Result<T>) -> Result<T> {
        if let Some(sync) = &self.wal_sync {
            sync.settled().await;
        }
        read
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
            "property indexes",
            include_str!("migrations/0002_property_indexes.sql"),
        ),
        migration(3, "change log", include_str!("migrations/0003_changes.sql")),
        migration(4, "merges", include_str!("migrations/0004_merges.sql")),
        migration(
            5,
            "set_once keys",
            include_str!("migrations/0005_set_once.sql"),
        ),
        migration(
            6,
            "deletion receipts",
            include_str!("migrations/0006_deletions.sql"),
        ),
        migration(
            7,
            "import jobs",
            include_str!("migrations/0007_imports.sql"),
        ),
        migration(8, "events", include_str!("migrations/0008_events.sql")),
        migration(
            9,
            "segments and companies",
            include_str!("migrations/0009_segments_companies.sql"),
        ),
        migration(
            10,
            "workspace settings and sessions",
            include_str!("migrations/0010_workspace_settings.sql"),
        ),
        migration(
            11,
            "identities in the profile row",
            include_str!("migrations/0011_profile_identities.sql"),
        ),
        migration(
            12,
            "identities by key only",
            include_str!("migrations/0012_identities_by_key_only.sql"),
        ),
    ]);
    migrator.set_locking(false);
    migrator
}

pub(crate) use crate::rows::{from_micros, micros};

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn create_workspace(&self, name: &str, now: Timestamp) -> Result<Workspace> {
        records::create_workspace(&self.writer, name, now).await
    }

    async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>> {
        records::workspace(&self.reader, "id = ?", id.0.to_string()).await
    }

    async fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>> {
        records::workspace(&self.reader, "name = ?", name.to_owned()).await
    }

    async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        records::list_workspaces(&self.reader).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        records::insert_api_key(&self.writer, key).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        records::api_key(&self.reader, id).await
    }

    async fn list_api_keys(&self, workspace: Option<WorkspaceId>) -> Result<Vec<ApiKeyRecord>> {
        records::list_api_keys(&self.reader, workspace).await
    }

    async fn revoke_api_key(
        &self,
        workspace: Option<WorkspaceId>,
        id: &str,
        now: Timestamp,
    ) -> Result<bool> {
        records::revoke_api_key(&self.writer, workspace, id, now).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn profile(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<Profile>> {
        let read = self
            .readers
            .read(|conn| profiles::load(conn, ws, id, search::profile_of));
        self.settled(read).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn profile_raw(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<RawProfile>> {
        let read = self
            .readers
            .read(|conn| profiles::load(conn, ws, id, search::raw_profile_of));
        self.settled(read).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn profile_by_identity(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Option<Profile>> {
        let read = self
            .readers
            .read(|conn| profiles::load_by_identity(conn, ws, identity, search::profile_of));
        self.settled(read).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn profile_by_identity_raw(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Option<RawProfile>> {
        let read = self
            .readers
            .read(|conn| profiles::load_by_identity(conn, ws, identity, search::raw_profile_of));
        self.settled(read).await
    }

    #[tracing::instrument(level = "debug", skip(self, query))]
    async fn search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<SearchPage> {
        self.search_with(ws, query, search::profile_of).await
    }

    #[tracing::instrument(level = "debug", skip(self, query))]
    async fn search_raw(
        &self,
        ws: WorkspaceId,
        query: &SearchQuery,
    ) -> Result<SearchPage<RawProfile>> {
        self.search_with(ws, query, search::raw_profile_of).await
    }

    #[tracing::instrument(level = "debug", skip(self, filter))]
    async fn count(&self, ws: WorkspaceId, filter: &Filter, now: Timestamp) -> Result<u64> {
        let read = {
            let filter = filter.clone();
            self.readers
                .scan(move |conn| search::count(conn, ws, &filter, now))
                .await
        };
        self.settled(read).await
    }

    async fn explain_search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<String> {
        let mut conn = self.reader.acquire().await?;
        search::explain(&mut conn, ws, query).await
    }

    async fn declare_index(
        &self,
        ws: WorkspaceId,
        field: &Field,
        value_type: ValueType,
        now: Timestamp,
    ) -> Result<PropertyIndex> {
        search::declare_index(&self.writer, ws, field, value_type, now).await
    }

    async fn drop_index(&self, ws: WorkspaceId, field: &Field) -> Result<bool> {
        search::drop_index(&self.writer, ws, field).await
    }

    async fn property_indexes(&self, ws: WorkspaceId) -> Result<Vec<PropertyIndex>> {
        let mut conn = self.reader.acquire().await?;
        search::property_indexes(&mut conn, ws).await
    }

    async fn survivor_of(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<ProfileId>> {
        let read = self.readers.read(|conn| merges::survivor_of(conn, ws, id));
        self.settled(read).await
    }

    async fn merges_into(&self, ws: WorkspaceId, survivor: &ProfileId) -> Result<Vec<StoredMerge>> {
        let read = self
            .readers
            .read(|conn| merges::into_profile(conn, ws, survivor));
        self.settled(read).await
    }

    async fn history(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Change>> {
        let mut conn = self.reader.acquire().await?;
        let read = changes::history(&mut conn, ws, id, before, limit).await;
        self.settled(read).await
    }

    async fn changes(&self, ws: WorkspaceId, after: i64, limit: u32) -> Result<Vec<Change>> {
        let mut conn = self.reader.acquire().await?;
        let read = changes::feed(&mut conn, ws, after, limit).await;
        self.settled(read).await
    }

    async fn prune_changes(&self, before: Timestamp) -> Result<u64> {
        let mut conn = self.writer.acquire().await?;
        changes::prune(&mut conn, before).await
    }

    async fn events(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        before: Option<(Timestamp, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>> {
        let read = events::list(&self.reader, ws, profile, before, limit).await;
        self.settled(read).await
    }

    async fn prune_events(&self, before: Timestamp) -> Result<u64> {
        let mut conn = self.writer.acquire().await?;
        events::prune(&mut conn, before).await
    }

    async fn computed_definitions(&self, ws: WorkspaceId) -> Result<Vec<ComputedRecord>> {
        events::definitions(&self.reader, ws).await
    }

    async fn save_computed_definition(
        &self,
        ws: WorkspaceId,
        record: &ComputedRecord,
    ) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        events::save_definition(&mut conn, ws, record).await
    }

    async fn delete_computed_definition(&self, ws: WorkspaceId, key: &str) -> Result<bool> {
        let mut conn = self.writer.acquire().await?;
        events::delete_definition(&mut conn, ws, key).await
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<()> {
        sessions::insert(&self.writer, session).await
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        sessions::load(&self.reader, id).await
    }

    async fn revoke_sessions(
        &self,
        ws: WorkspaceId,
        id: Option<&str>,
        profile: Option<&ProfileId>,
        now: Timestamp,
    ) -> Result<u64> {
        sessions::revoke(&self.writer, ws, id, profile, now).await
    }

    async fn verification(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Option<VerificationRecord>> {
        sessions::verification(&self.writer, ws, profile).await
    }

    async fn save_verification(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        record: Option<&VerificationRecord>,
    ) -> Result<()> {
        sessions::save_verification(&self.writer, ws, profile, record).await
    }

    async fn count_verification_send(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        at: Timestamp,
        since: Timestamp,
    ) -> Result<u64> {
        sessions::count_send(&self.writer, ws, profile, at, since).await
    }

    async fn setting(
        &self,
        ws: WorkspaceId,
        name: &str,
    ) -> Result<Option<(serde_json::Value, Timestamp)>> {
        records::setting(&self.reader, ws, name).await
    }

    async fn save_setting(
        &self,
        ws: WorkspaceId,
        name: &str,
        value: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Result<bool> {
        records::save_setting(&self.writer, ws, name, value, now).await
    }

    async fn segments(&self, ws: WorkspaceId) -> Result<Vec<SegmentRecord>> {
        segments::list(&self.reader, ws).await
    }

    async fn save_segment(&self, ws: WorkspaceId, segment: &SegmentRecord) -> Result<()> {
        segments::save(&self.writer, ws, segment).await
    }

    async fn delete_segment(&self, ws: WorkspaceId, key: &str, now: Timestamp) -> Result<bool> {
        segments::delete(&self.writer, ws, key, now).await
    }

    async fn segment_members(
        &self,
        ws: WorkspaceId,
        key: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SegmentMember>> {
        let read = segments::members(&self.reader, ws, key, after, limit).await;
        self.settled(read).await
    }

    async fn segment_size(&self, ws: WorkspaceId, key: &str) -> Result<u64> {
        let read = segments::size(&self.reader, ws, key).await;
        self.settled(read).await
    }

    async fn segments_due(
        &self,
        now: Timestamp,
        settled: Timestamp,
        stale: Timestamp,
    ) -> Result<Vec<(WorkspaceId, SegmentRecord)>> {
        segments::due(&self.reader, now, settled, stale).await
    }

    async fn lease_segment(
        &self,
        ws: WorkspaceId,
        key: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        segments::lease(&self.writer, ws, key, now, until).await
    }

    async fn segment_reconciled(
        &self,
        ws: WorkspaceId,
        key: &str,
        version: i64,
        at: Timestamp,
    ) -> Result<()> {
        segments::reconciled(&self.writer, ws, key, version, at).await
    }

    async fn sweep_segment_members(&self, before: Timestamp) -> Result<u64> {
        segments::sweep(&self.writer, before).await
    }

    async fn company(&self, ws: WorkspaceId, id: &str) -> Result<Option<CompanyRecord>> {
        let read = self
            .readers
            .read(|conn| segments::company(conn, ws, "id", id));
        self.settled(read).await
    }

    async fn company_by_uid(&self, ws: WorkspaceId, uid: &str) -> Result<Option<CompanyRecord>> {
        let read = self
            .readers
            .read(|conn| segments::company(conn, ws, "uid", uid));
        self.settled(read).await
    }

    async fn companies(
        &self,
        ws: WorkspaceId,
        page: &CompanyPage<'_>,
    ) -> Result<Vec<CompanyRecord>> {
        let read = self
            .readers
            .read(|conn| segments::companies(conn, ws, page));
        self.settled(read).await
    }

    async fn delete_company(&self, ws: WorkspaceId, id: &str) -> Result<bool> {
        segments::delete_company(&self.writer, ws, id).await
    }

    async fn deletion(&self, ws: WorkspaceId, id: &str) -> Result<Option<DeletionReceipt>> {
        let read = deletions::load(&self.reader, ws, id).await;
        self.settled(read).await
    }

    async fn deletions(
        &self,
        ws: WorkspaceId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeletionReceipt>> {
        let read = deletions::list(&self.reader, ws, before, limit).await;
        self.settled(read).await
    }

    async fn save_import(&self, ws: WorkspaceId, record: &ImportRecord) -> Result<()> {
        imports::save(&self.writer, ws, record).await
    }

    async fn import(&self, ws: WorkspaceId, id: &str) -> Result<Option<ImportRecord>> {
        imports::load(&self.reader, ws, id).await
    }

    async fn imports(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<ImportRecord>> {
        imports::list(&self.reader, ws, limit).await
    }

    async fn scrub(&self) -> Result<()> {
        // secure_delete has zeroed what was deleted in the database's pages; the WAL still holds
        // the pages as they were. A TRUNCATE checkpoint copies the new pages into the database
        // and empties the WAL file. It waits for readers still on older snapshots, and reports
        // (busy = 1) when it could not finish.
        let busy: i64 = sqlx::query_scalar("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.writer)
            .await?;
        if busy != 0 {
            return Err(StoreError::Contended(
                "the write-ahead log could not be truncated while readers held it".into(),
            ));
        }
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn ProfileTx>> {
        Ok(Box::new(SqliteTx {
            slot: self.profile_writes.begin().await?,
        }))
    }

    async fn close(&self) {
        self.reader.close().await;
        self.profile_writes.close().await;
        self.writer.close().await;
    }
}

struct SqliteTx {
    slot: group_commit::Slot,
}

#[async_trait]
impl ProfileTx for SqliteTx {
    async fn profiles_by_identities(
        &mut self,
        ws: WorkspaceId,
        identities: &[Identity],
    ) -> Result<Vec<Profile>> {
        profiles::load_by_identities(self.slot.conn(), ws, identities)
    }

    async fn profile(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<Profile>> {
        // BEGIN IMMEDIATE already holds the write lock: nothing else can change the row.
        profiles::load(self.slot.conn(), ws, id, search::profile_of)
    }

    async fn insert_profile(&mut self, ws: WorkspaceId, profile: &Profile) -> Result<()> {
        profiles::insert(self.slot.conn(), ws, profile)
    }

    async fn update_profile(&mut self, ws: WorkspaceId, profile: &Profile) -> Result<()> {
        profiles::update(self.slot.conn(), ws, profile)
    }

    async fn insert_identity(
        &mut self,
        ws: WorkspaceId,
        id: &ProfileId,
        identity: &Identity,
        now: Timestamp,
    ) -> Result<()> {
        profiles::insert_identity(self.slot.conn(), ws, id, identity, now)
    }

    async fn delete_identity(
        &mut self,
        ws: WorkspaceId,
        id: &ProfileId,
        identity: &Identity,
    ) -> Result<bool> {
        profiles::delete_identity(self.slot.conn(), ws, id, identity)
    }

    async fn record_merge(&mut self, ws: WorkspaceId, merge: &MergeRecord<'_>) -> Result<()> {
        merges::record(self.slot.conn(), ws, merge)
    }

    async fn survivor_of(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<ProfileId>> {
        merges::survivor_of(self.slot.conn(), ws, id)
    }

    async fn merge_record(&mut self, ws: WorkspaceId, id: &str) -> Result<Option<StoredMerge>> {
        merges::load(self.slot.conn(), ws, id)
    }

    async fn mark_merge_undone(&mut self, ws: WorkspaceId, id: &str, at: Timestamp) -> Result<()> {
        merges::mark_undone(self.slot.conn(), ws, id, at)
    }

    async fn move_identity(
        &mut self,
        ws: WorkspaceId,
        identity: &Identity,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<bool> {
        merges::move_identity(self.slot.conn(), ws, identity, from, to)
    }

    async fn append_change(&mut self, ws: WorkspaceId, change: &NewChange) -> Result<i64> {
        changes::append(self.slot.conn(), ws, change)
    }

    async fn move_segments(&mut self, ws: WorkspaceId, moves: &[SegmentMove]) -> Result<()> {
        segments::apply_moves(self.slot.conn(), ws, moves)
    }

    async fn company_by_uid(
        &mut self,
        ws: WorkspaceId,
        uid: &str,
    ) -> Result<Option<CompanyRecord>> {
        segments::company(self.slot.conn(), ws, "uid", uid)
    }

    async fn save_company(&mut self, ws: WorkspaceId, company: &CompanyRecord) -> Result<()> {
        segments::save_company(self.slot.conn(), ws, company)
    }

    async fn insert_events(&mut self, ws: WorkspaceId, new: &[StoredEvent]) -> Result<()> {
        events::insert(self.slot.conn(), ws, new)
    }

    async fn known_event_ids(&mut self, ws: WorkspaceId, ids: &[String]) -> Result<Vec<String>> {
        events::known_ids(self.slot.conn(), ws, ids)
    }

    async fn events_since(
        &mut self,
        ws: WorkspaceId,
        profile: &ProfileId,
        since: Timestamp,
    ) -> Result<Vec<StoredEvent>> {
        events::since(self.slot.conn(), ws, profile, since)
    }

    async fn delete_events(&mut self, ws: WorkspaceId, profile: &ProfileId) -> Result<u64> {
        events::delete_of(self.slot.conn(), ws, profile)
    }

    async fn delete_profile(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<bool> {
        // The profiles merged into this one live on in their change-log entries and in merge
        // snapshots: they go too.
        let absorbed = merges::absorbed_into(self.slot.conn(), ws, id)?;
        for gone in std::iter::once(id).chain(&absorbed) {
            changes::forget_profile(self.slot.conn(), ws, gone)?;
            events::delete_of(self.slot.conn(), ws, gone)?;
            segments::forget_profile(self.slot.conn(), ws, gone)?;
            sessions::forget_profile(self.slot.conn(), ws, gone)?;
            merges::forget_survivor(self.slot.conn(), ws, gone)?;
            merges::forget_absorbed(self.slot.conn(), ws, gone)?;
        }
        profiles::delete(self.slot.conn(), ws, id)
    }

    async fn insert_profiles(&mut self, ws: WorkspaceId, profiles: &[Profile]) -> Result<()> {
        batch::insert_profiles(self.slot.conn(), ws, profiles)
    }

    async fn update_profiles(&mut self, ws: WorkspaceId, profiles: &[Profile]) -> Result<()> {
        batch::update_profiles(self.slot.conn(), ws, profiles)
    }

    async fn insert_identities(
        &mut self,
        ws: WorkspaceId,
        identities: &[(ProfileId, Identity)],
        now: Timestamp,
    ) -> Result<()> {
        batch::insert_identities(self.slot.conn(), ws, identities, now)
    }

    async fn append_changes(&mut self, ws: WorkspaceId, changes: &[NewChange]) -> Result<()> {
        batch::append_changes(self.slot.conn(), ws, changes)
    }

    async fn record_deletion(&mut self, ws: WorkspaceId, receipt: &DeletionReceipt) -> Result<()> {
        deletions::record(self.slot.conn(), ws, receipt)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.slot.commit().await
    }

    async fn commit_early(self: Box<Self>) -> Result<Durable> {
        self.slot.commit_early()
    }
}
