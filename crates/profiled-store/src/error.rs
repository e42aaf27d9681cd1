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
    /// The database gave up on the transaction because it collided with a concurrent one
    /// (a serialization failure or a deadlock); running it again is safe and expected.
    #[error("transaction collided with a concurrent one: {0}")]
    Contended(String),
    #[error("database error: {0}")]
    Backend(sqlx::Error),
    /// A commit failed, or could not be made durable: nothing of it may be acknowledged.
    #[error("the commit failed: {0}")]
    CommitFailed(String),
    /// An error of the SQLite connections the store drives on the calling thread.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            // SQLSTATE serialization_failure and deadlock_detected (PostgreSQL and the engines
            // that speak its protocol); SQLite's codes are small numbers, never these.
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40001" | "40P01")) =>
            {
                StoreError::Contended(db.message().to_owned())
            }
            _ => StoreError::Backend(err),
        }
    }
}

impl StoreError {
    /// Whether the failed transaction can simply be run again.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Contended(_))
    }

    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }

    pub(crate) fn is_sqlite_unique_violation(err: &rusqlite::Error) -> bool {
        matches!(
            err.sqlite_error().map(|e| e.extended_code),
            Some(
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        )
    }
}
