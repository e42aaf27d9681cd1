//! Rows that are not profiles: workspaces, API keys, merges, receipts, imports, events.

use jiff::Timestamp;
use profiled_core::{Scope, WorkspaceId};

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: Timestamp,
}

/// A stored API key. The secret itself is never stored, only its SHA-256.
#[derive(Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Public identifier, part of the key text; safe to log and list.
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scope: Scope,
    pub secret_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A merge about to be recorded.
#[derive(Debug, Clone)]
pub struct MergeRecord<'a> {
    pub id: &'a str,
    pub survivor: &'a profiled_core::ProfileId,
    /// The survivor as it was before the merge.
    pub survivor_before: &'a profiled_core::Profile,
    /// The absorbed profiles as they were before the merge.
    pub absorbed: &'a [profiled_core::Profile],
    /// `properties.<key>` → the absorbed profile a value came from.
    pub sources: serde_json::Map<String, serde_json::Value>,
    pub at: Timestamp,
    pub actor: &'a str,
}

/// A recorded merge, with the snapshots it keeps for undo.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMerge {
    pub id: String,
    pub survivor: profiled_core::ProfileId,
    pub survivor_before: profiled_core::Profile,
    pub absorbed: Vec<profiled_core::Profile>,
    pub sources: serde_json::Map<String, serde_json::Value>,
    pub at: Timestamp,
    pub actor: String,
    pub undone_at: Option<Timestamp>,
}

/// Proof that a profile was erased: who asked, when, and the SHA-256 of each identity value
/// it carried (so a later request about a value can be answered without keeping the value).
#[derive(Debug, Clone, PartialEq)]
pub struct DeletionReceipt {
    pub id: String,
    pub profile_id: profiled_core::ProfileId,
    pub requested_at: Timestamp,
    pub completed_at: Timestamp,
    pub requested_by: String,
    /// Lowercase hex SHA-256 of each identity value, sorted.
    pub identifiers: Vec<String>,
}

/// An import job as stored: its state, counts and (the first) failed lines.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    pub id: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// `ndjson` or `csv`, or the vendor endpoint that recorded it (`chameleon`,
    /// `mediarithmics:<import id>`).
    pub format: String,
    pub requested_by: String,
    pub started_at: Timestamp,
    /// When the record was last saved; a running import saves at least every second.
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub counts: profiled_core::import::ImportCounts,
    pub failures: Vec<profiled_core::import::ImportFailure>,
    /// Why the import stopped early, when it did.
    pub error: Option<String>,
}

/// A raw event as kept for the retention period.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The client's id for the event, or one the service drew; unique in a workspace.
    pub id: String,
    pub profile_id: profiled_core::ProfileId,
    pub name: String,
    pub at: Timestamp,
    pub received_at: Timestamp,
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// Where it came from: ip, user agent, page, ... as the client sent it.
    pub context: serde_json::Map<String, serde_json::Value>,
}

impl StoredEvent {
    /// The event as the activity rules see it.
    pub fn to_event(&self) -> profiled_core::activity::Event {
        profiled_core::activity::Event {
            name: self.name.clone(),
            at: self.at,
            properties: self.properties.clone(),
        }
    }
}

/// A computed property a workspace defined, as stored (the service reads the definition).
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedRecord {
    pub key: String,
    pub definition: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A segment as stored; the service parses its filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub key: String,
    pub name: String,
    /// The filter as the client wrote it: a string or a JSON tree.
    pub filter: serde_json::Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Counts changes of the filter, from 1.
    pub version: i64,
    /// The version the members were last brought up to (0: never, the backfill is running).
    pub reconciled_version: i64,
    pub reconciled_at: Option<Timestamp>,
    /// The filter compares with `now`, so membership moves with the clock.
    pub moves_with_clock: bool,
}

/// A segment's member, and since when.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMember {
    pub profile_id: profiled_core::ProfileId,
    pub since: Timestamp,
}

/// The segments one profile entered and left in a write.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMove {
    pub profile_id: profiled_core::ProfileId,
    pub moves: profiled_core::segment::Moves,
    pub at: Timestamp,
}

/// A company: its own identity (`uid`) and properties.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyRecord {
    /// Server-assigned, stable.
    pub id: String,
    /// The client's identifier for the company; unique in a workspace.
    pub uid: String,
    pub properties: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// An end user's session as stored: the token's secret and the CSRF token only as hashes.
#[derive(Clone, PartialEq)]
pub struct SessionRecord {
    /// Public identifier, part of the token.
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub profile_id: profiled_core::ProfileId,
    pub secret_hash: Vec<u8>,
    pub csrf_hash: Vec<u8>,
    /// Who created it: `key:<id>`, or `jwt:<issuer>` for an exchanged token.
    pub created_by: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("profile_id", &self.profile_id)
            .field("created_by", &self.created_by)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// An end user's change waiting for its verification code (hashes only).
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationRecord {
    pub workspace_id: WorkspaceId,
    pub profile_id: profiled_core::ProfileId,
    /// SHA-256 of the verified part of the change, so only the same change is applied.
    pub change_hash: Vec<u8>,
    pub code_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Wrong codes tried so far.
    pub attempts: i64,
}
