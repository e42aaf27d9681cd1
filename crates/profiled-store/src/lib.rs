//! Storage for profiled: a small transactional interface ([`Store`], [`ProfileTx`]) that
//! every backend implements, so each use-case is written once above it.
//!
//! Backends: [`sqlite`] (embedded, the default) and [`postgres`].

mod error;
pub mod postgres;
pub mod records;
mod rows;
pub mod search;
mod snapshot;
mod sql;
pub mod sqlite;

use async_trait::async_trait;
use jiff::Timestamp;
use profiled_core::change::{Change, NewChange};
use profiled_core::filter::{Field, Filter, ValueType};
use profiled_core::{Identity, Profile, ProfileId, RawProfile, WorkspaceId};

pub use error::StoreError;
pub use records::{
    ApiKeyRecord, CompanyRecord, ComputedRecord, DeletionReceipt, ImportRecord, MergeRecord,
    SegmentMember, SegmentMove, SegmentRecord, SessionRecord, StoredEvent, StoredMerge,
    VerificationRecord, Workspace,
};
/// Which companies a page lists: those whose id lies between `after` and `before` (both
/// exclusive, either open), oldest or newest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompanyPage<'a> {
    pub after: Option<&'a str>,
    pub before: Option<&'a str>,
    pub newest_first: bool,
    pub limit: u32,
}

pub use search::{Keyset, PropertyIndex, SearchPage, SearchQuery, SortKey, SortValue};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Workspaces, API keys and profile reads; profile writes go through [`Store::begin`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend's name, for logs and `/healthz`.
    fn backend(&self) -> &'static str;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Creates a workspace; [`StoreError::Conflict`] when the name is taken.
    async fn create_workspace(&self, name: &str, now: Timestamp) -> Result<Workspace>;
    async fn workspace(&self, id: WorkspaceId) -> Result<Option<Workspace>>;
    async fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>>;
    async fn list_workspaces(&self) -> Result<Vec<Workspace>>;

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// Keys of one workspace, or of all when `workspace` is `None`, oldest first.
    async fn list_api_keys(&self, workspace: Option<WorkspaceId>) -> Result<Vec<ApiKeyRecord>>;
    /// Marks a key revoked; false when no such (unrevoked) key exists in the given scope.
    async fn revoke_api_key(
        &self,
        workspace: Option<WorkspaceId>,
        id: &str,
        now: Timestamp,
    ) -> Result<bool>;

    async fn profile(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<Profile>>;
    /// [`Store::profile`] with the profile's documents as stored, for showing it.
    async fn profile_raw(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<RawProfile>>;

    /// The profile carrying an identity, read in one query.
    async fn profile_by_identity(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Option<Profile>>;
    /// [`Store::profile_by_identity`] with the profile's documents as stored, for showing it.
    async fn profile_by_identity_raw(
        &self,
        ws: WorkspaceId,
        identity: &Identity,
    ) -> Result<Option<RawProfile>>;

    /// Profiles matching a filter, in sort order, one page at a time (keyset pagination).
    async fn search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<SearchPage>;
    /// [`Store::search`] with each profile's documents as stored, for showing them.
    async fn search_raw(
        &self,
        ws: WorkspaceId,
        query: &SearchQuery,
    ) -> Result<SearchPage<RawProfile>>;
    /// The number of profiles matching a filter.
    async fn count(&self, ws: WorkspaceId, filter: &Filter, now: Timestamp) -> Result<u64>;
    /// The database's query plan for a search, for tests and diagnostics.
    async fn explain_search(&self, ws: WorkspaceId, query: &SearchQuery) -> Result<String>;

    /// Declares a property or computed path indexed (replacing its type if declared) and
    /// builds the index.
    async fn declare_index(
        &self,
        ws: WorkspaceId,
        field: &Field,
        value_type: ValueType,
        now: Timestamp,
    ) -> Result<PropertyIndex>;
    /// Removes a declared index; false when it was not declared.
    async fn drop_index(&self, ws: WorkspaceId, field: &Field) -> Result<bool>;
    async fn property_indexes(&self, ws: WorkspaceId) -> Result<Vec<PropertyIndex>>;

    /// The profile an absorbed profile id now belongs to.
    async fn survivor_of(&self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<ProfileId>>;
    /// The merges into a profile, newest first.
    async fn merges_into(&self, ws: WorkspaceId, survivor: &ProfileId) -> Result<Vec<StoredMerge>>;
    /// A profile's change log, newest first; entries older than `before` when given.
    async fn history(
        &self,
        ws: WorkspaceId,
        id: &ProfileId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Change>>;
    /// The workspace's change feed: entries after `after`, oldest first.
    async fn changes(&self, ws: WorkspaceId, after: i64, limit: u32) -> Result<Vec<Change>>;
    /// Deletes change log entries older than `before`, in every workspace.
    async fn prune_changes(&self, before: Timestamp) -> Result<u64>;

    /// A profile's kept events, newest first (by time, then id); those before `before`
    /// (an event's time and id) when given.
    async fn events(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        before: Option<(Timestamp, &str)>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>>;
    /// Deletes events that happened before `before`, in every workspace.
    async fn prune_events(&self, before: Timestamp) -> Result<u64>;

    /// The workspace's computed property definitions, by key.
    async fn computed_definitions(&self, ws: WorkspaceId) -> Result<Vec<ComputedRecord>>;
    /// Creates or replaces a computed property definition.
    async fn save_computed_definition(
        &self,
        ws: WorkspaceId,
        record: &ComputedRecord,
    ) -> Result<()>;
    /// Removes a computed property definition; false when there was none.
    async fn delete_computed_definition(&self, ws: WorkspaceId, key: &str) -> Result<bool>;

    async fn insert_session(&self, session: &SessionRecord) -> Result<()>;
    /// A session by its id, in any workspace (the caller checks the secret).
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>>;
    /// Revokes one session by id, or every session of a profile; returns how many were live.
    async fn revoke_sessions(
        &self,
        ws: WorkspaceId,
        id: Option<&str>,
        profile: Option<&ProfileId>,
        now: Timestamp,
    ) -> Result<u64>;

    /// A profile's change waiting for its verification code.
    async fn verification(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
    ) -> Result<Option<VerificationRecord>>;
    /// Saves a profile's pending verification (replacing any), or removes it (`None`).
    async fn save_verification(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        record: Option<&VerificationRecord>,
    ) -> Result<()>;
    /// Records a code sent to a profile at `at` and returns how many were sent since `since`,
    /// this one included (older records are dropped).
    async fn count_verification_send(
        &self,
        ws: WorkspaceId,
        profile: &ProfileId,
        at: Timestamp,
        since: Timestamp,
    ) -> Result<u64>;

    /// A workspace setting (a JSON document by name) and when it was last saved.
    async fn setting(
        &self,
        ws: WorkspaceId,
        name: &str,
    ) -> Result<Option<(serde_json::Value, Timestamp)>>;
    /// Saves a workspace setting, or removes it (`None`); false when removing one that was
    /// not there.
    async fn save_setting(
        &self,
        ws: WorkspaceId,
        name: &str,
        value: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Result<bool>;

    /// The workspace's segments, by key.
    async fn segments(&self, ws: WorkspaceId) -> Result<Vec<SegmentRecord>>;
    /// Creates a segment or replaces its name, filter, version and `moves_with_clock`.
    async fn save_segment(&self, ws: WorkspaceId, segment: &SegmentRecord) -> Result<()>;
    /// Deletes a segment with its memberships, leaving a tombstone dated `now`; false when
    /// there was none.
    async fn delete_segment(&self, ws: WorkspaceId, key: &str, now: Timestamp) -> Result<bool>;
    /// A segment's members in profile id order; those after the id `after` when given.
    async fn segment_members(
        &self,
        ws: WorkspaceId,
        key: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SegmentMember>>;
    /// How many members a segment has.
    async fn segment_size(&self, ws: WorkspaceId, key: &str) -> Result<u64>;
    /// Segments of every workspace that need reconciling and no node holds at `now`: those
    /// behind their version and unchanged since `settled`, and those moving with the clock
    /// last reconciled before `stale`. Oldest change first.
    async fn segments_due(
        &self,
        now: Timestamp,
        settled: Timestamp,
        stale: Timestamp,
    ) -> Result<Vec<(WorkspaceId, SegmentRecord)>>;
    /// Takes a segment for reconciliation until `until`; false when another node holds it
    /// at `now`.
    async fn lease_segment(
        &self,
        ws: WorkspaceId,
        key: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool>;
    /// Records that a segment's members match its filter at `version` as of `at`, and
    /// releases the lease.
    async fn segment_reconciled(
        &self,
        ws: WorkspaceId,
        key: &str,
        version: i64,
        at: Timestamp,
    ) -> Result<()>;
    /// Deletes memberships of deleted segments (a node writing with an outdated list of
    /// segments may have added some), and forgets tombstones older than `before`; returns
    /// how many memberships went.
    async fn sweep_segment_members(&self, before: Timestamp) -> Result<u64>;

    async fn company(&self, ws: WorkspaceId, id: &str) -> Result<Option<CompanyRecord>>;
    async fn company_by_uid(&self, ws: WorkspaceId, uid: &str) -> Result<Option<CompanyRecord>>;
    /// A page of companies in id (creation) order.
    async fn companies(
        &self,
        ws: WorkspaceId,
        page: &CompanyPage<'_>,
    ) -> Result<Vec<CompanyRecord>>;
    /// Deletes a company; its profiles then belong to none. False when there was none.
    async fn delete_company(&self, ws: WorkspaceId, id: &str) -> Result<bool>;

    /// A deletion receipt.
    async fn deletion(&self, ws: WorkspaceId, id: &str) -> Result<Option<DeletionReceipt>>;
    /// Deletion receipts, newest first; those older than the receipt `before` when given.
    async fn deletions(
        &self,
        ws: WorkspaceId,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeletionReceipt>>;
    /// Creates or updates an import job's record.
    async fn save_import(&self, ws: WorkspaceId, record: &ImportRecord) -> Result<()>;
    async fn import(&self, ws: WorkspaceId, id: &str) -> Result<Option<ImportRecord>>;
    /// Import jobs, newest first.
    async fn imports(&self, ws: WorkspaceId, limit: u32) -> Result<Vec<ImportRecord>>;
    /// Makes committed deletions physically unrecoverable where the backend can: on SQLite
    /// (which zeroes deleted content as it goes) the write-ahead log, which still holds the
    /// old pages, is checkpointed and truncated; on PostgreSQL the tables are vacuumed.
    async fn scrub(&self) -> Result<()>;

    /// Starts a write transaction. Writes of one store are serialised (or, on a server
    /// database, row-locked) so that a read-modify-write inside it never loses an update.
    async fn begin(&self) -> Result<Box<dyn ProfileTx>>;

    /// Closes every connection; pending writes are already committed.
    async fn close(&self);
}

/// One write transaction over profiles and identities. Dropping it without
/// [`ProfileTx::commit`] rolls everything back.
#[async_trait]
pub trait ProfileTx: Send {
    /// The profiles the given identities point at (none, one, or several), with all their
    /// identities, read in one query.
    async fn profiles_by_identities(
        &mut self,
        ws: WorkspaceId,
        identities: &[Identity],
    ) -> Result<Vec<Profile>>;
    /// The profile with its identities, locked for update until the transaction ends.
    async fn profile(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<Profile>>;
    /// Inserts a new profile and its identities ([`StoreError::IdentityTaken`] if one is in use).
    async fn insert_profile(&mut self, ws: WorkspaceId, profile: &Profile) -> Result<()>;
    /// Writes properties, computed, updated_at and version of an existing profile.
    async fn update_profile(&mut self, ws: WorkspaceId, profile: &Profile) -> Result<()>;
    /// Attaches an identity to a profile ([`StoreError::IdentityTaken`] if it is in use).
    async fn insert_identity(
        &mut self,
        ws: WorkspaceId,
        id: &ProfileId,
        identity: &Identity,
        now: Timestamp,
    ) -> Result<()>;
    /// Detaches an identity from a profile; false when the profile did not carry it.
    async fn delete_identity(
        &mut self,
        ws: WorkspaceId,
        id: &ProfileId,
        identity: &Identity,
    ) -> Result<bool>;
    /// Records a merge into `merge.survivor` (whose row the caller updates): moves the absorbed
    /// profiles' identities and events to it, removes their rows, and points their ids at it.
    async fn record_merge(&mut self, ws: WorkspaceId, merge: &MergeRecord<'_>) -> Result<()>;
    /// The profile an absorbed profile id now belongs to.
    async fn survivor_of(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<Option<ProfileId>>;
    /// A recorded merge, locked for undo.
    async fn merge_record(&mut self, ws: WorkspaceId, id: &str) -> Result<Option<StoredMerge>>;
    /// Marks a merge undone and unlinks the ids it absorbed.
    async fn mark_merge_undone(&mut self, ws: WorkspaceId, id: &str, at: Timestamp) -> Result<()>;
    /// Moves an identity between profiles; false when `from` does not carry it.
    async fn move_identity(
        &mut self,
        ws: WorkspaceId,
        identity: &Identity,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<bool>;
    /// Writes segment entries and exits (the profiles' rows are written by the caller).
    async fn move_segments(&mut self, ws: WorkspaceId, moves: &[SegmentMove]) -> Result<()>;
    /// A company by uid, read in the transaction.
    async fn company_by_uid(&mut self, ws: WorkspaceId, uid: &str)
    -> Result<Option<CompanyRecord>>;
    /// Creates a company or updates its properties, times and version (by id);
    /// [`StoreError::Conflict`] when its uid is taken.
    async fn save_company(&mut self, ws: WorkspaceId, company: &CompanyRecord) -> Result<()>;
    /// Appends a change log entry; returns its sequence number.
    async fn append_change(&mut self, ws: WorkspaceId, change: &NewChange) -> Result<i64>;

    /// Inserts new profiles with their identities, as [`ProfileTx::insert_profile`] does for
    /// each; a backend may write them with fewer statements.
    async fn insert_profiles(&mut self, ws: WorkspaceId, profiles: &[Profile]) -> Result<()> {
        for profile in profiles {
            self.insert_profile(ws, profile).await?;
        }
        Ok(())
    }
    /// Writes existing profiles, as [`ProfileTx::update_profile`] does for each.
    async fn update_profiles(&mut self, ws: WorkspaceId, profiles: &[Profile]) -> Result<()> {
        for profile in profiles {
            self.update_profile(ws, profile).await?;
        }
        Ok(())
    }
    /// Attaches identities to existing profiles, as [`ProfileTx::insert_identity`] does for
    /// each.
    async fn insert_identities(
        &mut self,
        ws: WorkspaceId,
        identities: &[(ProfileId, Identity)],
        now: Timestamp,
    ) -> Result<()> {
        for (id, identity) in identities {
            self.insert_identity(ws, id, identity, now).await?;
        }
        Ok(())
    }
    /// Appends change log entries in order.
    async fn append_changes(&mut self, ws: WorkspaceId, changes: &[NewChange]) -> Result<()> {
        for change in changes {
            self.append_change(ws, change).await?;
        }
        Ok(())
    }
    /// Keeps raw events. Their ids must be new (see [`ProfileTx::known_event_ids`]).
    async fn insert_events(&mut self, ws: WorkspaceId, events: &[StoredEvent]) -> Result<()>;
    /// Which of these event ids the workspace already keeps.
    async fn known_event_ids(&mut self, ws: WorkspaceId, ids: &[String]) -> Result<Vec<String>>;
    /// A profile's kept events since `since`, oldest first.
    async fn events_since(
        &mut self,
        ws: WorkspaceId,
        profile: &ProfileId,
        since: Timestamp,
    ) -> Result<Vec<StoredEvent>>;
    /// Erases a profile's kept events; returns how many went.
    async fn delete_events(&mut self, ws: WorkspaceId, profile: &ProfileId) -> Result<u64>;
    /// Deletes a profile with its identities, change log entries and events; false when it
    /// did not exist.
    async fn delete_profile(&mut self, ws: WorkspaceId, id: &ProfileId) -> Result<bool>;
    /// Keeps a deletion receipt.
    async fn record_deletion(&mut self, ws: WorkspaceId, receipt: &DeletionReceipt) -> Result<()>;
    async fn commit(self: Box<Self>) -> Result<()>;
    /// Commits and frees the connection for the next transaction without waiting for the
    /// commit to reach the disk: what it returns resolves once it has (or fails if it could
    /// not). Nothing of the transaction may be acknowledged before that. By default, the
    /// plain commit, durable when it returns.
    async fn commit_early(self: Box<Self>) -> Result<Durable> {
        self.commit().await?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }
}

/// A commit on its way to the disk ([`ProfileTx::commit_early`]).
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;
