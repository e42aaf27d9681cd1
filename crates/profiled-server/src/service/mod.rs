//! Use-cases, each written once over the storage interface. The HTTP layer (native API and
//! every dialect) and the CLI call these; none of them reaches into storage.

mod access;
pub mod bulk;
pub mod changes;
mod combiner;
pub mod companies;
pub mod compat_settings;
pub mod computed;
pub mod deletions;
mod enrichment;
pub mod events;
pub mod exports;
pub mod identity_provider;
pub mod imports;
mod key_cache;
pub mod loyalty;
mod merges;
mod profiles;
mod rules;
pub mod schema;
pub mod search;
pub mod segments;
pub mod sessions;
pub mod verification;

use std::sync::Arc;

use profiled_core::{DomainError, Limits, Violation};
use profiled_store::{Store, StoreError};

pub use access::{ApiKeyToken, IssuedKey};
pub use companies::{CompanyLink, CompanyUpsert};
pub use computed::{DefinitionBody, EventSettings, StoredDefinition};
pub use enrichment::Enricher;
pub use events::{EventBatch, Ingested, NewEvent};
pub use merges::{MergeOutcome, Unmerged};
pub use profiles::{Change, Precondition, Seen, Upsert, WriteContext, Written};
pub use search::{Page, Search};
pub use segments::{SegmentBody, SegmentSettings, SegmentState, run_segment_worker};

/// The service: the store plus the rules that apply to every request.
pub struct Service {
    store: Arc<dyn Store>,
    limits: Limits,
    keys: key_cache::KeyCache,
    /// Woken after every committed change, for long-polling feed readers.
    changed: tokio::sync::Notify,
    /// How long change log entries are kept; `None` keeps them all.
    retention: Option<std::time::Duration>,
    /// Where upserts go to be combined into batches, once a server started it.
    combiner: std::sync::OnceLock<combiner::Combiner>,
    events: EventSettings,
    enricher: Enricher,
    segments: SegmentSettings,
    sessions: sessions::SessionSettings,
    sender: verification::Sender,
    code_ttl: jiff::SignedDuration,
    rules_cache: rules::RulesCache,
}

impl Service {
    /// A workspace setting decoded from its JSON; `None` when it was never saved. `what`
    /// names it in the error a stored document that no longer decodes gives.
    pub(crate) async fn json_setting<T: serde::de::DeserializeOwned>(
        &self,
        ws: profiled_core::WorkspaceId,
        name: &str,
        what: &str,
    ) -> Result<Option<T>> {
        match self.store.setting(ws, name).await? {
            None => Ok(None),
            Some((value, _)) => serde_json::from_value(value).map(Some).map_err(|e| {
                ServiceError::Store(profiled_store::StoreError::Corrupt(format!("{what}: {e}")))
            }),
        }
    }

    /// Saves a workspace setting as JSON.
    pub(crate) async fn save_json_setting<T: serde::Serialize>(
        &self,
        ws: profiled_core::WorkspaceId,
        name: &str,
        value: &T,
    ) -> Result<()> {
        let value = serde_json::to_value(value).expect("settings serialise");
        self.store
            .save_setting(ws, name, Some(&value), profiles::now())
            .await?;
        Ok(())
    }
}

impl Service {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self {
            store,
            limits,
            keys: key_cache::KeyCache::default(),
            changed: tokio::sync::Notify::new(),
            retention: None,
            combiner: std::sync::OnceLock::new(),
            events: EventSettings::default(),
            enricher: Enricher::default(),
            segments: SegmentSettings::default(),
            sessions: Default::default(),
            sender: verification::Sender::None,
            code_ttl: jiff::SignedDuration::from_mins(10),
            rules_cache: Default::default(),
        }
    }

    /// How segment membership is kept.
    pub fn with_segments(mut self, segments: SegmentSettings) -> Self {
        self.segments = segments;
        self
    }

    /// How end users' sessions travel (the cookie's name).
    pub fn with_sessions(mut self, sessions: sessions::SessionSettings) -> Self {
        self.sessions = sessions;
        self
    }

    /// How verification codes are sent, and how long one is valid.
    pub fn with_verification(
        mut self,
        sender: verification::Sender,
        code_ttl: jiff::SignedDuration,
    ) -> Self {
        self.sender = sender;
        self.code_ttl = code_ttl;
        self
    }

    pub fn session_settings(&self) -> &sessions::SessionSettings {
        &self.sessions
    }

    /// Sessions and retention of events.
    pub fn with_events(mut self, events: EventSettings) -> Self {
        self.events = events;
        self
    }

    /// Where locations and devices come from.
    pub fn with_enricher(mut self, enricher: Enricher) -> Self {
        self.enricher = enricher;
        self
    }

    /// Keeps change log entries only this long (see [`Service::prune_changes`]).
    pub fn with_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Commits a write transaction and waits until it is durable, then wakes readers
    /// long-polling the change feed. Every use-case that writes ends here or in
    /// [`Service::durable`].
    async fn commit(&self, tx: Box<dyn profiled_store::ProfileTx>) -> Result<()> {
        self.durable(tx.commit_early().await?).await
    }

    /// Waits for a commit made with [`ProfileTx::commit_early`] to reach the disk, then wakes
    /// readers long-polling the change feed.
    ///
    /// [`ProfileTx::commit_early`]: profiled_store::ProfileTx::commit_early
    async fn durable(&self, durable: profiled_store::Durable) -> Result<()> {
        durable.await?;
        self.changed.notify_waiters();
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Attempts of a write use-case: another one follows when the database gave up on the last
/// because of a concurrent transaction (only a server database shared by several nodes
/// does). Each attempt is a whole transaction, so none sees a half of the one before.
///
/// [`with_retries!`] runs a use-case's attempts with it.
struct Attempts {
    retry: Retry,
    made: u32,
}

impl Attempts {
    const MAX: u32 = 8;

    fn new(retry: Retry) -> Self {
        Self { retry, made: 1 }
    }

    /// Whether to try again after `error`; pauses first, a short and growing time with
    /// jitter, so colliding writers fall out of step.
    async fn again(&mut self, error: &ServiceError) -> bool {
        if self.made >= Self::MAX || !self.retry.applies_to(error) {
            return false;
        }
        self.made += 1;
        let micros = rand::random_range(0..200u64 << self.made.min(6));
        tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
        true
    }
}

/// Runs attempts of a write use-case (`self.x_once(...)`, re-evaluated each time) until one
/// succeeds or fails for good; see [`Attempts`].
macro_rules! with_retries {
    ($retry:expr, $attempt:expr) => {{
        let mut attempts = $crate::service::Attempts::new($retry);
        loop {
            match $attempt.await {
                Err(e) if attempts.again(&e).await => continue,
                outcome => break outcome,
            }
        }
    }};
}
pub(crate) use with_retries;

/// Which failures of a write use-case are worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Serialization failures and deadlocks.
    OnContention,
    /// Those, and an identity that a concurrent writer attached first.
    AlsoWhenIdentityTaken,
}

impl Retry {
    fn applies_to(self, error: &ServiceError) -> bool {
        match error {
            ServiceError::Store(e) => e.is_transient(),
            ServiceError::IdentityTaken(_) => self == Retry::AlsoWhenIdentityTaken,
            _ => false,
        }
    }
}

/// The service layer's one error type.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing named does not exist (in the caller's workspace).
    #[error("{0} not found")]
    NotFound(String),
    /// The input breaks a rule; nothing changed.
    #[error("invalid input")]
    Invalid(Vec<Violation>),
    /// The caller may not change what the listed places name (an end user writing a
    /// property that is not theirs to write); nothing changed.
    #[error("not allowed")]
    Forbidden(Vec<Violation>),
    /// A verification code is wrong, expired or used up; says which.
    #[error("{0}")]
    BadCode(String),
    /// Too many requests of a kind (codes sent to one profile).
    #[error("{0}")]
    TooManyRequests(String),
    /// Something the request needs is not configured or not reachable.
    #[error("{0}")]
    Unavailable(String),
    /// The request contradicts the current state (a name or identity already taken).
    #[error("{0}")]
    Conflict(String),
    /// The identity belongs to another profile.
    #[error("identity {0} belongs to another profile")]
    IdentityTaken(profiled_core::Identity),
    /// `If-Match` named a version that is no longer current.
    #[error("the profile is at version {current}")]
    PreconditionFailed { current: i64 },
    /// A storage failure: logged, never shown to clients.
    #[error(transparent)]
    Store(StoreError),
}

impl From<DomainError> for ServiceError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid(violations) => Self::Invalid(violations),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            StoreError::IdentityTaken(identity) => Self::IdentityTaken(identity),
            other => Self::Store(other),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use profiled_core::Identity;

    #[tokio::test]
    async fn only_collisions_are_retried_and_a_taken_identity_only_by_upserts() {
        let contended = || ServiceError::Store(StoreError::Contended("deadlock detected".into()));
        let taken = || ServiceError::IdentityTaken(Identity::new_unchecked("user_id", "u1"));

        let mut attempts = Attempts::new(Retry::OnContention);
        assert!(attempts.again(&contended()).await);
        assert!(!attempts.again(&taken()).await);
        assert!(!attempts.again(&ServiceError::Conflict("x".into())).await);

        let mut upsert = Attempts::new(Retry::AlsoWhenIdentityTaken);
        assert!(upsert.again(&taken()).await);

        // Bounded: the eighth attempt is the last.
        let mut attempts = Attempts::new(Retry::OnContention);
        let retried = {
            let mut n = 0;
            while attempts.again(&contended()).await {
                n += 1;
            }
            n
        };
        assert_eq!(retried, Attempts::MAX - 1);
    }
}
