use profiled_core::Identity;

/// The storage layer's one error type. Constraint violations become domain-shaped variants
/// here, in one place; everything else is an opaque backend failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is already in use (e.g. a workspace name).
    #[error("{0} already exists")]
    Conflict(String),
    /// The identity already points at another profile.
    #[error("identity {0} belongs to another profile")]
    IdentityTaken(Identity),
    /// Stored data could not be decoded: a bug or a corrupted database.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}
