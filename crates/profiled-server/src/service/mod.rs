//! Use-cases, each written once over the storage interface. The HTTP layer (native API and
//! every dialect) and the CLI call these; none of them reaches into storage.

mod access;
pub mod changes;
mod key_cache;
mod merges;
mod profiles;
pub mod search;

use std::sync::Arc;

use profiled_core::{DomainError, Limits, Violation};
use profiled_store::{Store, StoreError};

pub use access::{ApiKeyToken, IssuedKey};
pub use merges::{MergeOutcome, Unmerged};
pub use profiles::{Change, Precondition, Upsert, WriteContext, Written};
pub use search::{Page, Search};

/// The service: the store plus the rules that apply to every request.
pub struct Service {
    store: Arc<dyn Store>,
    limits: Limits,
    keys: key_cache::KeyCache,
    /// Woken after every committed change, for long-polling feed readers.
    changed: tokio::sync::Notify,
    /// How long change log entries are kept; `None` keeps them all.
    retention: Option<std::time::Duration>,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        Self {
            store,
            limits,
            keys: key_cache::KeyCache::default(),
            changed: tokio::sync::Notify::new(),
            retention: None,
        }
    }

    /// Keeps change log entries only this long (see [`Service::prune_changes`]).
    pub fn with_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention = retention;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Commits a write transaction, then wakes readers long-polling the change feed. Every
    /// use-case that writes ends here.
    async fn commit(&self, tx: Box<dyn profiled_store::ProfileTx>) -> Result<()> {
        tx.commit().await?;
        self.changed.notify_waiters();
        Ok(())
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
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
    /// The request contradicts the current state (a name or identity already taken).
    #[error("{0}")]
    Conflict(String),
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
            StoreError::IdentityTaken(identity) => {
                Self::Conflict(format!("identity {identity} belongs to another profile"))
            }
            other => Self::Store(other),
        }
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
