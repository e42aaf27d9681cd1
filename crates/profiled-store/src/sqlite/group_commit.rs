//! Group commit: concurrent profile writes share one SQLite transaction, and so one
//! `COMMIT` and one fsync, without weakening durability — no writer is told its write is done
//! before the `COMMIT` that contains it has returned.
//!
//! Each logical transaction runs inside `SAVEPOINT w` on the one writer connection, so a
//! failing write rolls back only its own changes. When it commits it releases the savepoint;
//! if other writers are already waiting for the connection it leaves the real `COMMIT` to the
//! last of them (at most [`MAX_GROUP`] writes in a group), then waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use crate::{Result, StoreError};

/// The most logical transactions one `COMMIT` carries.
const MAX_GROUP: usize = 64;

pub(super) struct GroupCommit {
    state: Arc<Mutex<Writer>>,
    /// Writers waiting for the connection; a committing writer defers to them.
    waiting: Arc<AtomicUsize>,
}

pub(super) struct Writer {
    conn: SqliteConnection,
    /// An outer transaction is open.
    open: bool,
    /// Writers whose savepoint is released and who wait for the outer `COMMIT`.
    pending: Vec<oneshot::Sender<std::result::Result<(), String>>>,
    /// A logical transaction was dropped without committing: roll its savepoint back first.
    abandoned: bool,
}

/// One logical transaction: holds the writer connection until it commits or is dropped.
pub(super) struct Slot {
    guard: Option<OwnedMutexGuard<Writer>>,
    group: Arc<Mutex<Writer>>,
    waiting: Arc<AtomicUsize>,
}

impl GroupCommit {
    pub fn new(conn: SqliteConnection) -> Self {
        Self {
            state: Arc::new(Mutex::new(Writer {
                conn,
                open: false,
                pending: Vec::new(),
                abandoned: false,
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Starts a logical transaction: waits for the connection, opens the outer transaction
    /// if none is open, and sets the savepoint.
    pub async fn begin(&self) -> Result<Slot> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.state.clone().lock_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        guard.recover().await?;
        if !guard.open {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut guard.conn)
                .await?;
            guard.open = true;
        }
        sqlx::query("SAVEPOINT w").execute(&mut guard.conn).await?;
        Ok(Slot {
            guard: Some(guard),
            group: self.state.clone(),
            waiting: self.waiting.clone(),
        })
    }

    /// Closes the connection (after a last flush of pending commits).
    pub async fn close(&self) {
        let mut guard = self.state.lock().await;
        let _ = guard.recover().await;
        let _ = guard.commit_group().await;
    }
}

impl Writer {
    /// Rolls back an abandoned savepoint; commits the group if the rollback leaves it idle.
    async fn recover(&mut self) -> Result<()> {
        if self.abandoned {
            self.abandoned = false;
            sqlx::query("ROLLBACK TO w").execute(&mut self.conn).await?;
            sqlx::query("RELEASE w").execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Commits the outer transaction and tells every pending writer how it went.
    async fn commit_group(&mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        let outcome = sqlx::query("COMMIT")
            .execute(&mut self.conn)
            .await
            .map(|_| ());
        if outcome.is_err() {
            // Whatever state the failed COMMIT left, start clean.
            let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
        }
        for writer in self.pending.drain(..) {
            let _ = writer.send(outcome.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
        Ok(outcome?)
    }
}

impl Slot {
    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self
            .guard
            .as_mut()
            .expect("a live slot holds the writer")
            .conn
    }

    /// Releases the savepoint and waits until a `COMMIT` containing it is durable.
    pub async fn commit(mut self) -> Result<()> {
        let mut guard = self.guard.take().expect("a live slot holds the writer");
        sqlx::query("RELEASE w").execute(&mut guard.conn).await?;
        let (done, wait) = oneshot::channel();
        guard.pending.push(done);
        if self.waiting.load(Ordering::SeqCst) == 0 || guard.pending.len() >= MAX_GROUP {
            // Errors reach every pending writer, this one included, through the channel.
            let _ = guard.commit_group().await;
        }
        drop(guard);
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Backend(sqlx::Error::Protocol(format!(
                "group commit failed: {message}"
            )))),
            Err(_) => Err(StoreError::Backend(sqlx::Error::Protocol(
                "group commit abandoned".into(),
            ))),
        }
    }
}

impl Drop for Slot {
    /// A slot dropped without committing: its savepoint must be rolled back, and if nobody
    /// else is coming for the connection, the writers already pending must still be committed.
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        guard.abandoned = true;
        drop(guard);
        let group = self.group.clone();
        let waiting = self.waiting.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut guard = group.lock().await;
                if guard.recover().await.is_ok() && waiting.load(Ordering::SeqCst) == 0 {
                    let _ = guard.commit_group().await;
                }
            });
        }
    }
}
